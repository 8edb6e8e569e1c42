//! What the core hands the store to keep: log entries, remembered members, bans, and the
//! changes to them ([`Write`]).
//!
//! The types live in the core because both sides need them and the core must not import the
//! store (the store imports these). Plain data: no disk, no socket, no clock.

use super::bans::{Ban, IpNet};
use crate::token::TokenHash;

/// What kind of message a log entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `MSG`.
    Msg = 0,
    /// `ACT`.
    Act = 1,
    /// `PRIV` (kept only as long as a resume needs it).
    Priv = 2,
    /// Not a message: a hole (`--cluster`). The server was out of the room's log before this
    /// point (it started, or rejoined after a cut-off), so lines other servers logged meanwhile
    /// are not here; a replay that crosses it says `GAP`. Pruned like a room message.
    Gap = 3,
}

impl Kind {
    /// The kind stored as `b`, if any.
    pub fn from_u8(b: u8) -> Option<Kind> {
        [Kind::Msg, Kind::Act, Kind::Priv, Kind::Gap]
            .into_iter()
            .find(|k| *k as u8 == b)
    }

    /// Whether the entry belongs in the room's history (`MSG`, `ACT`).
    pub fn in_history(self) -> bool {
        matches!(self, Kind::Msg | Kind::Act)
    }
}

/// One message of the room's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its sequence number (the id's second half).
    pub seq: u64,
    /// When the server relayed it, in ms since the Unix epoch.
    pub time_ms: u64,
    /// What it is.
    pub kind: Kind,
    /// The sender's name.
    pub from: String,
    /// The recipient's name (privates), else empty.
    pub to: String,
    /// The version 2 line, without its LF (`MSG al - hi`).
    pub line: String,
    /// Under `--cluster`: the id the origin server gave the message (this server's own lines
    /// included), which is not `<this epoch>-<seq>` there: every server keeps every server's
    /// lines in the room log's order, each at a sequence number of its own. `None`: the id is
    /// this log's `<epoch>-<seq>` (a single server).
    pub origin_id: Option<String>,
}

impl Entry {
    /// What the entry costs while it waits for the disk: its text and a fixed overhead.
    pub fn cost(&self) -> usize {
        self.line.len()
            + self.from.len()
            + self.to.len()
            + self.origin_id.as_ref().map_or(0, String::len)
            + 64
    }
}

/// A remembered member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The name, as the member spells it.
    pub name: String,
    /// The hash of its current token.
    pub token_hash: TokenHash,
    /// Who approved it first (an operator console's description, or `auto-approve`).
    pub approved_by: String,
    /// When, in ms since the Unix epoch.
    pub approved_at_ms: u64,
    /// When its last session ended or was last active, in ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// A change the core hands the store (applied with the rest of its round in one commit).
#[derive(Debug, Clone)]
pub enum Write {
    /// Appends log entries (their sequence numbers were given by the caller).
    Append(Vec<Entry>),
    /// Sequence numbers below this were given as ids (under `--cluster`, to lines that are
    /// logged only once the room's log brings them back): the counter goes past them in this
    /// commit, so an id another server may have seen is never given again after a crash.
    Reserve(u64),
    /// Adds or replaces a remembered member.
    Member(MemberRecord),
    /// Marks a member seen at this time (ms).
    Seen {
        /// The name, any case.
        name: String,
        /// When.
        at_ms: u64,
    },
    /// Forgets a member (its token is void).
    Forget(String),
    /// Adds a ban, or replaces the ban of the same range: kept whole (range, reason, the
    /// console that made it, since and until), so `bans` shows the same after a restart.
    Ban(Ban),
    /// Lifts the ban of exactly this range.
    Unban(IpNet),
    /// Drops room entries before `room_before_ms`, private ones before `priv_before_ms`,
    /// members last seen before `members_before_ms`, bans that ended by `bans_ended_ms`, and
    /// log entries beyond `max_entries`.
    Prune {
        /// Room messages older than this go.
        room_before_ms: u64,
        /// Private messages older than this go.
        priv_before_ms: u64,
        /// Members last seen before this are forgotten.
        members_before_ms: u64,
        /// Bans whose end is at or before this go (an expired ban never comes back).
        bans_ended_ms: u64,
        /// At most this many log entries stay (the oldest go first).
        max_entries: u64,
    },
}
