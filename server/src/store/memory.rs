//! The store in plain memory (`--data-dir none`): the room's log, remembered members and bans
//! in maps, with the same writes, reads and pruning as the redb file (`db.rs`), and nothing
//! that outlives the process.
//!
//! Owns only its maps; called from the disk thread (and once at start) exactly as the file is.
//! Bounded like the file: the log's room lines by the prune's `max_entries`
//! ([`super::MAX_LOG_ENTRIES_IN_MEMORY`] with `none`), members by `--remember`, bans by the
//! core's `MAX_BANS`. Privates have a bound of their own ([`MAX_PRIVATES_IN_MEMORY`]), so a
//! flood of privates cannot push room lines out of what a resume can replay.

use std::collections::{BTreeMap, HashMap};

use super::db::Loaded;
use super::{Entry, Kind, MemberRecord, Write};
use crate::chat::bans::Ban;

/// Privates kept at most in memory (`--data-dir none`), beside and apart from the room lines'
/// bound: the oldest go first, and a resume from before one that went is told `GAP`. With at
/// most 4 KiB each they cost at most about 8 MiB.
pub const MAX_PRIVATES_IN_MEMORY: u64 = 2_000;

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
    /// Every entry from this sequence number on is still kept: one past the newest private
    /// that the count bound dropped (0 while none was). A resume from before it may have
    /// missed a private of its own, so [`MemLog::first_seq`] reports it and the core says
    /// `GAP`. Privates past the resume window (the timed prune) do not move it.
    whole_from: u64,
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
            first_seq: self.first_seq().unwrap_or(next_seq),
            members: self.members.values().cloned().collect(),
            bans: bans.into_iter().map(|(_, b)| b.clone()).collect(),
            recent: recent_rev,
        })
    }

    /// Applies `writes` in order, keeping them (moved, not copied: the disk thread hands them
    /// over, and copying each entry's three strings cost as much as the rest of a commit); the
    /// next sequence number goes past every entry written.
    pub fn commit(&mut self, writes: impl IntoIterator<Item = Write>, next_seq: u64) {
        let mut next = self.next.max(next_seq);
        for w in writes {
            match w {
                Write::Append(entries) => {
                    for e in entries {
                        next = next.max(e.seq.saturating_add(1));
                        if let Some(id) = &e.origin_id {
                            self.by_origin.insert(id.clone(), e.seq);
                        }
                        self.log.insert(e.seq, e);
                    }
                }
                Write::Reserve(n) => next = next.max(n),
                Write::Member(m) => {
                    self.members.insert(m.name.to_ascii_lowercase(), m);
                }
                Write::Seen { name, at_ms } => {
                    if let Some(m) = self.members.get_mut(&name.to_ascii_lowercase()) {
                        m.last_seen_ms = m.last_seen_ms.max(at_ms);
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
                    self.bans.insert(key, (place, ban));
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
                        .retain(|_, e| e.kind != Kind::Priv || e.time_ms >= priv_before_ms);
                    // Room lines beyond `max_entries` or older than `--retain`, oldest first;
                    // privates are not counted against them.
                    let is_room = |e: &Entry| e.kind != Kind::Priv;
                    let privates = self.log.values().filter(|e| !is_room(e)).count() as u64;
                    let rooms = self.log.len() as u64 - privates;
                    let excess = rooms.saturating_sub(max_entries);
                    let mut old: Vec<u64> = self
                        .log
                        .iter()
                        .filter(|(_, e)| is_room(e))
                        .enumerate()
                        .take_while(|(i, (_, e))| {
                            (*i as u64) < excess || e.time_ms < room_before_ms
                        })
                        .map(|(_, (seq, _))| *seq)
                        .collect();
                    // Privates beyond their own bound, oldest first.
                    let excess = privates.saturating_sub(MAX_PRIVATES_IN_MEMORY);
                    let privs_old = self
                        .log
                        .iter()
                        .filter(|(_, e)| !is_room(e))
                        .take(usize::try_from(excess).unwrap_or(usize::MAX))
                        .map(|(seq, _)| *seq);
                    let before = old.len();
                    old.extend(privs_old);
                    if let Some(newest) = old[before..].iter().max() {
                        self.whole_from = self.whole_from.max(newest.saturating_add(1));
                    }
                    for seq in old {
                        self.log.remove(&seq);
                    }
                    if !self.by_origin.is_empty() {
                        let log = &self.log;
                        self.by_origin.retain(|_, seq| log.contains_key(seq));
                    }
                    self.members
                        .retain(|_, m| m.last_seen_ms >= members_before_ms);
                    let at = std::time::SystemTime::UNIX_EPOCH
                        + std::time::Duration::from_millis(bans_ended_ms);
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

    /// The oldest sequence number from which on every entry is kept, if any is kept (to tell
    /// a gap): the oldest kept, or past a private the count bound dropped.
    pub fn first_seq(&self) -> Option<u64> {
        self.log
            .keys()
            .next()
            .map(|first| (*first).max(self.whole_from))
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
        m.commit([Write::Append(entries)], 1);
        m.commit(
            [
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
            [Write::Prune {
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

    /// A flood of privates pushed room lines out of the shared bound: what a resume could
    /// replay of the room was whatever the privates left.
    #[test]
    fn privates_have_their_own_bound_and_never_evict_room_lines() {
        let mut m = MemLog::default();
        m.load(0).unwrap();
        let rooms: Vec<Entry> = (1..=100).map(|s| entry(s, Kind::Msg, s)).collect();
        m.commit([Write::Append(rooms)], 1);
        let flood = 3 * MAX_PRIVATES_IN_MEMORY;
        let privates: Vec<Entry> = (101..101 + flood)
            .map(|s| entry(s, Kind::Priv, s))
            .collect();
        m.commit([Write::Append(privates)], 101);
        let prune = |max_entries| Write::Prune {
            room_before_ms: 0,
            priv_before_ms: 0,
            members_before_ms: 0,
            bans_ended_ms: 0,
            max_entries,
        };
        m.commit([prune(100)], 0);
        let (kept, _) = m.read_after(None, usize::MAX);
        let room: Vec<u64> = kept
            .iter()
            .filter(|e| e.kind == Kind::Msg)
            .map(|e| e.seq)
            .collect();
        assert_eq!(room, (1..=100).collect::<Vec<_>>(), "every room line kept");
        let privs: Vec<u64> = kept
            .iter()
            .filter(|e| e.kind == Kind::Priv)
            .map(|e| e.seq)
            .collect();
        assert_eq!(privs.len() as u64, MAX_PRIVATES_IN_MEMORY);
        let first_private_kept = 101 + flood - MAX_PRIVATES_IN_MEMORY;
        assert_eq!(privs[0], first_private_kept, "the oldest privates went");
        // A resume from before a dropped private is told a gap; one after it is not.
        assert_eq!(m.first_seq(), Some(first_private_kept));
        assert_eq!(m.load(0).unwrap().first_seq, first_private_kept);

        // Room lines still go by their own bound (oldest first), privates untouched.
        let more: Vec<Entry> = (101 + flood..111 + flood)
            .map(|s| entry(s, Kind::Act, s))
            .collect();
        m.commit([Write::Append(more), prune(100)], 0);
        let (kept, _) = m.read_after(None, usize::MAX);
        let rooms = kept.iter().filter(|e| e.kind != Kind::Priv).count();
        assert_eq!(rooms, 100);
        assert_eq!(kept[0].seq, 11);
        assert_eq!(kept.len() as u64, 100 + MAX_PRIVATES_IN_MEMORY);
    }
}
