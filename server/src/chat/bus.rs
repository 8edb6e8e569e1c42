//! The room's events as the core emits and hears them, and the messages between the core and
//! whatever carries them to other servers (today the Redis bridge in `crate::cluster`, which
//! imports these types and owns their encoding; the core never imports the bridge).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_common::protocol::LeaveReason;

use super::durable::MemberRecord;
use super::ConnId;

/// One event of the room, as every server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member was admitted.
    Join { name: String },
    /// A member or a waiting join is gone; `owner`: the member's address, for whom every
    /// server holds the name for `--name-hold` (`None`: nobody, e.g. a waiting join).
    Leave {
        name: String,
        reason: LeaveReason,
        owner: Option<String>,
    },
    /// A member renamed itself; every server holds `old` for `owner`'s address.
    Nick {
        old: String,
        new: String,
        owner: Option<String>,
    },
    /// A `MSG` or `ACT` line (LF included), exactly as members get it, and the id the origin
    /// gave it (empty: none), which version 3 members of every server see in its tags.
    Msg { line: Vec<u8>, id: String },
    /// An `INFO` line (LF included): an operator's `say`.
    Info { line: Vec<u8> },
    /// A `PRIV` line (LF included) for the member named `to`, wherever it is, and the id the
    /// origin gave it (empty: none), which a version 3 recipient sees in its tags.
    Priv {
        to: String,
        line: Vec<u8>,
        id: String,
    },
    /// A join waits for an operator on the origin server.
    Request { name: String, addr: String },
    /// A waiting join was decided (`how`: approved, denied, withdrawn, timed out).
    Decided { name: String, how: String },
    /// A console asks server `server` to approve its waiting join `name`.
    /// `by`: the console that asked (`control:3 on server one`; empty from older servers).
    Approve {
        server: String,
        name: String,
        by: String,
    },
    /// A console asks server `server` to deny its waiting join `name`.
    Deny {
        server: String,
        name: String,
        by: String,
    },
    /// A console asks server `server` to kick its member `name`.
    /// `note`: the console that asked and what the operator said, a tab apart
    /// ([`kick_note`], [`split_kick_note`]; empty from older servers).
    Kick {
        server: String,
        name: String,
        note: String,
    },
    /// A `RESUME` on the origin server with a valid token asks server `server` to hand over
    /// its member `name` (live, or within its resume window there): that server closes the
    /// session (`BYE resumed elsewhere`), frees the name and answers [`Event::Handover`].
    Takeover { server: String, name: String },
    /// The origin server's member `name` moves to server `to` (a cross-server takeover): no
    /// `LEAVE` or `JOIN`; every server's view moves it, and `to` admits its `RESUME`.
    Handover { name: String, to: String },
    /// Server `server` is gone from the room (written after its members' `Leave`s).
    Down { server: String },
    /// Server `server` joined the room (written by its join).
    Joined { server: String },
    /// A remembered member's record as the server that changed it has it (approved, resumed
    /// with a new token, renamed to, last seen): every server keeps the newest
    /// (`last_seen_ms`), and Redis keeps it in the room's `members` hash.
    Member { record: MemberRecord },
    /// A member's token is void everywhere as of `at_ms` (kick, `forget`, a rename's old name).
    Forget { name: String, at_ms: u64 },
    /// An address or range is banned everywhere as of `at_ms`; `until_ms` 0: until `unban`.
    Ban {
        net: String,
        at_ms: u64,
        until_ms: u64,
        by: String,
        reason: String,
    },
    /// A ban is lifted everywhere as of `at_ms`.
    Unban { net: String, at_ms: u64 },
}

impl Event {
    /// The time a shared record (member, forget, ban, unban) was made: of two records of one
    /// name or range the later wins, on every server and in Redis. `None` for other events.
    pub fn stamp(&self) -> Option<u64> {
        match self {
            Event::Member { record } => Some(record.last_seen_ms),
            Event::Forget { at_ms, .. } | Event::Ban { at_ms, .. } | Event::Unban { at_ms, .. } => {
                Some(*at_ms)
            }
            _ => None,
        }
    }
}

/// A kick's note: `by`, then a tab and the reason when there is one (neither holds a tab).
pub fn kick_note(by: &str, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("{by}\t{r}"),
        None => by.to_owned(),
    }
}

/// A kick's note as (who asked, the reason); who asked is empty from older servers.
pub fn split_kick_note(note: &str) -> (&str, Option<&str>) {
    match note.split_once('\t') {
        Some((by, reason)) => (by, Some(reason).filter(|r| !r.is_empty())),
        None => (note, None),
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn wall_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall time of `ms` since the Unix epoch.
pub fn from_wall_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// What the core asks of the cluster (through [`crate::chat::Outbox::cluster`]).
///
/// Every request that writes carries `epoch`: the bridge epoch the core was in when it asked
/// ([`FromBridge::Up`]'s). It is carried out only under that epoch's server id, and Redis
/// refuses it (atomically with the write) once that id is out of the room, so a request made
/// before a cut-off can never land under the id of the rejoin that followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToBridge {
    /// Append an event to the room's log, stamped with the origin's wall clock (ms).
    Publish {
        event: Event,
        wall_ms: u64,
        epoch: u64,
    },
    /// Claim `name` for this server for connection `id`; with `release`, free that name of this
    /// server in the same step (a rename). Answered by [`FromBridge::Claimed`].
    Claim {
        id: ConnId,
        name: String,
        release: Option<String>,
        epoch: u64,
    },
    /// Free `name` if this server holds it.
    Release { name: String, epoch: u64 },
    /// The server is stopping: leave the room now (members announced as gone, names freed).
    Leave,
}

impl ToBridge {
    /// The epoch a writing request was made in (`None` for [`ToBridge::Leave`]).
    pub fn epoch(&self) -> Option<u64> {
        match self {
            ToBridge::Publish { epoch, .. }
            | ToBridge::Claim { epoch, .. }
            | ToBridge::Release { epoch, .. } => Some(*epoch),
            ToBridge::Leave => None,
        }
    }
}

/// A stream entry id (`ms-seq`), ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogId(pub u64, pub u64);

impl LogId {
    /// Parses `ms-seq`; `None` for anything else.
    pub fn parse(s: &str) -> Option<LogId> {
        let (ms, seq) = s.split_once('-')?;
        Some(LogId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

/// A member or waiting join of another server, as the room's snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The server it is on.
    pub server: String,
    /// Its name as typed.
    pub name: String,
    /// `Some(address)` for a waiting join, `None` for a member.
    pub waiting: Option<String>,
}

/// One entry of the log, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The server that wrote it.
    pub origin: String,
    /// The origin's wall clock when it wrote it.
    pub wall: SystemTime,
    /// What happened.
    pub event: Event,
}

/// What the bridge tells the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromBridge {
    /// The server is (again) in the room as `server`, in epoch `epoch`: the other servers'
    /// members and waiting joins, and the room's history (oldest first) up to now: each
    /// message's time, line and id (empty: none).
    Up {
        epoch: u64,
        server: String,
        at: LogId,
        remote: Vec<RemoteEntry>,
        history: Vec<(SystemTime, Vec<u8>, String)>,
        /// The room's shared records (remembered members, forgets, bans, unbans) as Redis
        /// has them: the core adopts the newer ones and writes back what Redis lacks.
        shared: Vec<Event>,
    },
    /// Entries of the log after the snapshot of epoch `epoch`, in the log's order (this
    /// server's own left out), and the id of the last entry read.
    Entries {
        epoch: u64,
        entries: Vec<Entry>,
        last: LogId,
    },
    /// The answer to a [`ToBridge::Claim`], with the log's last id at that moment.
    Claimed {
        id: ConnId,
        name: String,
        ok: bool,
        tip: LogId,
    },
    /// The server is cut off from the room (Redis unreachable past the interval, the other
    /// servers declared it dead, or its queue to Redis overflowed).
    Down { why: String },
    /// The server cannot join the room yet (Redis unreachable, or its name still in the
    /// room): said once per reason, so the consoles know why joins are refused.
    NotJoined { why: String },
}
