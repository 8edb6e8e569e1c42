//! Remembered members (protocol version 3): who holds a token, who approved them, when they
//! were last seen, and the rule of when a token still admits.
//!
//! Owns the records the core consults for `RESUME`, `members`, `forget`, kicks and renames.
//! The store keeps a copy on disk (the core hands it every change); this module never touches
//! the disk, a clock or a socket: times are passed in, as ms since the Unix epoch.

use std::collections::HashMap;
use std::time::Duration;

use super::durable::MemberRecord;
use crate::token::TokenHash;

/// Why a token admits nobody. The wire text is the same for all (`ERROR bad-token`), so a
/// guesser learns nothing; the console and the log may tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No member of that name is remembered (never was, forgotten, kicked).
    Unknown,
    /// The token is not the name's current one.
    Mismatch,
    /// The member was last seen longer ago than `--remember`.
    Expired,
}

/// The remembered members, by lower-case name.
#[derive(Debug, Default)]
pub struct Remembered {
    by_name: HashMap<String, MemberRecord>,
    /// `--remember`: how long after its last session a token still admits (zero: only within
    /// the resume window, which the core checks before asking here).
    keep: Duration,
}

impl Remembered {
    /// The records loaded from the store, kept for `keep` after each member's last session.
    pub fn new(records: Vec<MemberRecord>, keep: Duration) -> Remembered {
        Remembered {
            by_name: records
                .into_iter()
                .map(|r| (r.name.to_ascii_lowercase(), r))
                .collect(),
            keep,
        }
    }

    /// The record for `name` if `token` is its current token and it has not expired (unless
    /// `any_age`: the member is within its resume window).
    pub fn check(
        &self,
        name: &str,
        token: &str,
        now_ms: u64,
        any_age: bool,
    ) -> Result<&MemberRecord, Refusal> {
        let record = self
            .by_name
            .get(&name.to_ascii_lowercase())
            .ok_or(Refusal::Unknown)?;
        if !record.token_hash.admits(token) {
            return Err(Refusal::Mismatch);
        }
        let keep = u64::try_from(self.keep.as_millis()).unwrap_or(u64::MAX);
        if !any_age && now_ms.saturating_sub(record.last_seen_ms) > keep {
            return Err(Refusal::Expired);
        }
        Ok(record)
    }

    /// Remembers `name` with a new token hash (a first admission, or a resume that replaced
    /// the token); who approved it first and when are kept from an earlier record. Returns the
    /// record to hand to the store.
    pub fn remember(
        &mut self,
        name: &str,
        hash: TokenHash,
        approved_by: &str,
        now_ms: u64,
    ) -> MemberRecord {
        let key = name.to_ascii_lowercase();
        let record = match self.by_name.remove(&key) {
            Some(old) => MemberRecord {
                name: name.to_owned(),
                token_hash: hash,
                last_seen_ms: now_ms,
                ..old
            },
            None => MemberRecord {
                name: name.to_owned(),
                token_hash: hash,
                approved_by: approved_by.to_owned(),
                approved_at_ms: now_ms,
                last_seen_ms: now_ms,
            },
        };
        self.by_name.insert(key, record.clone());
        record
    }

    /// Marks `name` seen now (its session ended or it is active).
    pub fn seen(&mut self, name: &str, now_ms: u64) -> bool {
        match self.by_name.get_mut(&name.to_ascii_lowercase()) {
            Some(r) => {
                r.last_seen_ms = r.last_seen_ms.max(now_ms);
                true
            }
            None => false,
        }
    }

    /// Forgets `name` (its token is void); whether it was remembered.
    pub fn forget(&mut self, name: &str) -> Option<MemberRecord> {
        self.by_name.remove(&name.to_ascii_lowercase())
    }

    /// Moves `old`'s record to `new` (a rename carries the token). Returns the new record.
    pub fn rename(&mut self, old: &str, new: &str) -> Option<MemberRecord> {
        let mut record = self.by_name.remove(&old.to_ascii_lowercase())?;
        record.name = new.to_owned();
        self.by_name
            .insert(new.to_ascii_lowercase(), record.clone());
        Some(record)
    }

    /// The record of `name` (any case), if any.
    pub fn get(&self, name: &str) -> Option<&MemberRecord> {
        self.by_name.get(&name.to_ascii_lowercase())
    }

    /// Keeps `record` as it is (another server's, newer than this one's), replacing any
    /// record of its name.
    pub fn put(&mut self, record: MemberRecord) {
        self.by_name
            .insert(record.name.to_ascii_lowercase(), record);
    }

    /// Every record, sorted by name.
    pub fn list(&self) -> Vec<&MemberRecord> {
        let mut all: Vec<&MemberRecord> = self.by_name.values().collect();
        all.sort_by_key(|r| r.name.to_ascii_lowercase());
        all
    }

    /// Forgets members last seen before `before_ms`.
    pub fn expire(&mut self, before_ms: u64) {
        self.by_name.retain(|_, r| r.last_seen_ms >= before_ms);
    }

    /// Whether `name` (any case) is remembered.
    pub fn knows(&self, name: &str) -> bool {
        self.by_name.contains_key(&name.to_ascii_lowercase())
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether nobody is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::token::Token;

    const DAY: u64 = 86_400_000;

    #[test]
    fn a_token_admits_its_name_until_it_expires_is_replaced_or_forgotten() {
        let mut r = Remembered::new(Vec::new(), Duration::from_secs(30 * 86_400));
        let t1 = Token::generate().unwrap();
        r.remember("Alice", t1.hash(), "console 0", 1000);
        assert_eq!(
            r.check("alice", t1.expose(), 1000 + DAY, false)
                .unwrap()
                .name,
            "Alice"
        );
        assert_eq!(
            r.check("bob", t1.expose(), 1000, false).unwrap_err(),
            Refusal::Unknown
        );
        assert_eq!(
            r.check("alice", t1.expose(), 1000 + 31 * DAY, false)
                .unwrap_err(),
            Refusal::Expired
        );
        let t2 = Token::generate().unwrap();
        let rec = r.remember("alice", t2.hash(), "ignored", 2000);
        assert_eq!(rec.approved_by, "console 0", "the first approver is kept");
        assert_eq!(rec.approved_at_ms, 1000);
        assert_eq!(
            r.check("alice", t1.expose(), 2000, false).unwrap_err(),
            Refusal::Mismatch
        );
        assert!(r.check("ALICE", t2.expose(), 2000, false).is_ok());
        let moved = r.rename("alice", "Alicia").unwrap();
        assert_eq!(moved.name, "Alicia");
        assert!(r.check("alicia", t2.expose(), 2000, false).is_ok());
        assert_eq!(
            r.check("alice", t2.expose(), 2000, false).unwrap_err(),
            Refusal::Unknown
        );
        assert!(r.forget("alicia").is_some());
        assert!(r.is_empty());
    }

    #[test]
    fn seen_extends_and_expire_drops_the_old() {
        let mut r = Remembered::new(Vec::new(), Duration::from_secs(86_400));
        let t = Token::generate().unwrap();
        r.remember("al", t.hash(), "auto-approve", 0);
        r.remember("bo", t.hash(), "auto-approve", 0);
        assert!(r.seen("AL", 5 * DAY));
        assert!(r.check("al", t.expose(), 5 * DAY + 1, false).is_ok());
        r.expire(DAY);
        assert_eq!(r.list().len(), 1);
        assert_eq!(r.len(), 1);
    }
}
