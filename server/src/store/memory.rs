//! The store in plain memory (`--data-dir none`): the room's log, remembered members and bans
//! in maps, with the same writes, reads and pruning as the redb file (`db.rs`), and nothing
//! that outlives the process.
//!
//! Owns only its maps; called from the disk thread (and once at start) exactly as the file is.
//! Bounded like the file: the log by the prune's `max_entries` ([`super::MAX_LOG_ENTRIES_IN_MEMORY`]
//! with `none`), members by `--remember`, bans by the core's `MAX_BANS`.

use std::collections::{BTreeMap, HashMap};

use super::db::Loaded;
use super::{Entry, Kind, MemberRecord, Write};
use crate::chat::bans::Ban;

/// Everything an in-memory store holds.
#[derive(Debug, Default)]
pub struct MemLog {
    epoch: u32,
    /// The next sequence number (never lowered).
    next: u64,
    /// seq -> entry, oldest first.
    log: BTreeMap<u64, Entry>,
    /// Origin id -> seq of the entries logged with one (`--cluster`); pruned with the log.
    by_origin: HashMap<String, u64>,
    /// Remembered members by their name in lower case.
    members: HashMap<String, MemberRecord>,
    /// Bans by their range written out, with their place in the list.
    bans: HashMap<String, (u64, Ban)>,
    next_ban_place: u64,
}

impl MemLog {
    /// Gives the log its epoch (once) and reads what start needs.
    pub fn load(&mut self, recent: usize) -> Result<Loaded, super::StoreError> {
        if self.epoch == 0 {
            self.epoch = super::new_epoch()
                .map_err(|_| super::StoreError::Disk("no random bytes from the OS".into()))?;
        }
        let next_seq = self.next.max(1);
        let mut recent_rev: Vec<Entry> = self
            .log
            .values()
            .rev()
            .filter(|e| e.kind.in_history())
            .take(recent)
            .cloned()
            .collect();
        recent_rev.reverse();
        let mut bans: Vec<&(u64, Ban)> = self.bans.values().collect();
        bans.sort_by_key(|(place, _)| *place);
        Ok(Loaded {
            epoch: self.epoch,
            next_seq,
            first_seq: self.log.keys().next().copied().unwrap_or(next_seq),
            members: self.members.values().cloned().collect(),
            bans: bans.into_iter().map(|(_, b)| b.clone()).collect(),
            recent: recent_rev,
        })
    }

    /// Applies `writes` in order; the next sequence number goes past every entry written.
    pub fn commit(&mut self, writes: &[Write], next_seq: u64) {
        let mut next = self.next.max(next_seq);
        for w in writes {
            match w {
                Write::Append(entries) => {
                    for e in entries {
                        next = next.max(e.seq.saturating_add(1));
                        if let Some(id) = &e.origin_id {
                            self.by_origin.insert(id.clone(), e.seq);
                        }
                        self.log.insert(e.seq, e.clone());
                    }
                }
                Write::Reserve(n) => next = next.max(*n),
                Write::Member(m) => {
                    self.members.insert(m.name.to_ascii_lowercase(), m.clone());
                }
                Write::Seen { name, at_ms } => {
                    if let Some(m) = self.members.get_mut(&name.to_ascii_lowercase()) {
                        m.last_seen_ms = m.last_seen_ms.max(*at_ms);
                    }
                }
                Write::Forget(name) => {
                    self.members.remove(&name.to_ascii_lowercase());
                }
                Write::Ban(ban) => {
                    let key = ban.net.to_string();
                    let place = match self.bans.get(&key) {
                        Some((place, _)) => *place,
                        None => {
                            self.next_ban_place += 1;
                            self.next_ban_place - 1
                        }
                    };
                    self.bans.insert(key, (place, ban.clone()));
                }
                Write::Unban(net) => {
                    self.bans.remove(&net.to_string());
                }
                Write::Prune {
                    room_before_ms,
                    priv_before_ms,
                    members_before_ms,
                    bans_ended_ms,
                    max_entries,
                } => {
                    self.log
                        .retain(|_, e| e.kind != Kind::Priv || e.time_ms >= *priv_before_ms);
                    let excess = (self.log.len() as u64).saturating_sub(*max_entries);
                    let old: Vec<u64> = self
                        .log
                        .iter()
                        .enumerate()
                        .take_while(|(i, (_, e))| {
                            (*i as u64) < excess || e.time_ms < *room_before_ms
                        })
                        .map(|(_, (seq, _))| *seq)
                        .collect();
                    for seq in old {
                        self.log.remove(&seq);
                    }
                    if !self.by_origin.is_empty() {
                        let log = &self.log;
                        self.by_origin.retain(|_, seq| log.contains_key(seq));
                    }
                    self.members
                        .retain(|_, m| m.last_seen_ms >= *members_before_ms);
                    let at = std::time::SystemTime::UNIX_EPOCH
                        + std::time::Duration::from_millis(*bans_ended_ms);
                    self.bans.retain(|_, (_, b)| !b.expired(at));
                }
            }
        }
        self.next = next;
    }

    /// Up to `max` entries after `after` (from the start with `None`), and whether more follow.
    pub fn read_after(&self, after: Option<u64>, max: usize) -> (Vec<Entry>, bool) {
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        for e in self.log.range(start..).map(|(_, e)| e) {
            if out.len() >= max {
                return (out, true);
            }
            out.push(e.clone());
        }
        (out, false)
    }

    /// The oldest sequence number kept, if any.
    pub fn first_seq(&self) -> Option<u64> {
        self.log.keys().next().copied()
    }

    /// See [`super::db::Db::locate`].
    pub fn locate(&self, id: &str, own: Option<u64>) -> Option<u64> {
        if let Some(seq) = self.by_origin.get(id) {
            return Some(*seq);
        }
        let seq = own?;
        self.log
            .get(&seq)
            .filter(|e| e.origin_id.is_none())
            .map(|_| seq)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn entry(seq: u64, kind: Kind, time_ms: u64) -> Entry {
        Entry {
            seq,
            time_ms,
            kind,
            from: "al".into(),
            to: String::new(),
            line: format!("MSG al - {seq}"),
            origin_id: None,
        }
    }

    fn ban(net: &str, until_s: Option<u64>) -> Ban {
        Ban {
            net: net.parse().unwrap(),
            reason: None,
            by: "stdin".into(),
            since: SystemTime::UNIX_EPOCH,
            until: until_s.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
        }
    }

    #[test]
    fn keeps_reads_and_prunes_like_the_file() {
        let mut m = MemLog::default();
        let loaded = m.load(10).unwrap();
        assert_ne!(loaded.epoch, 0);
        assert_eq!(loaded.next_seq, 1);
        let entries: Vec<Entry> = (1..=10)
            .map(|s| entry(s, if s == 2 { Kind::Priv } else { Kind::Msg }, s * 100))
            .collect();
        m.commit(&[Write::Append(entries)], 1);
        m.commit(
            &[
                Write::Ban(ban("10.0.0.9", None)),
                Write::Ban(ban("1.1.1.1", Some(60))),
                Write::Ban(ban("10.0.0.9", None)),
            ],
            11,
        );
        let (page, more) = m.read_after(Some(3), 4);
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert!(more);
        let loaded = m.load(3).unwrap();
        assert_eq!(loaded.next_seq, 11, "past every entry, never lowered");
        assert_eq!(
            loaded.recent.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [8, 9, 10]
        );
        let order: Vec<String> = loaded.bans.iter().map(|b| b.net.to_string()).collect();
        assert_eq!(
            order,
            ["10.0.0.9", "1.1.1.1"],
            "in the order made, a replace keeps its place"
        );
        // Privates before 300 ms, room entries before 400 ms, beyond 5 entries, bans ended.
        m.commit(
            &[Write::Prune {
                room_before_ms: 400,
                priv_before_ms: 300,
                members_before_ms: 0,
                bans_ended_ms: 60_000,
                max_entries: 5,
            }],
            0,
        );
        assert_eq!(m.first_seq(), Some(6));
        assert_eq!(m.read_after(None, 100).0.len(), 5);
        let loaded = m.load(0).unwrap();
        assert_eq!(loaded.bans.len(), 1);
        assert_eq!(loaded.next_seq, 11);
    }
}
