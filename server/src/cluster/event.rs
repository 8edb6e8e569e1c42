//! The room's events as they travel through the Redis stream, and the messages between the core
//! and the bridge threads. Pure data and encoding: no I/O here.
//!
//! A stream entry has the fields `o` (origin server id), `k` (kind, one letter), `t` (the
//! origin's wall clock, ms since the Unix epoch) and up to three arguments `a`, `b`, `c`.
//! Anything that does not decode is skipped by the reader, never a panic: Redis is trusted, but a
//! stray writer to the same key must not take the servers down.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_common::protocol::{validate_name, LeaveReason};

use crate::chat::ConnId;

/// One event of the room, as every server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member was admitted.
    Join { name: String },
    /// A member or a waiting join is gone.
    Leave { name: String, reason: LeaveReason },
    /// A member renamed itself.
    Nick { old: String, new: String },
    /// A `MSG` or `ACT` line (LF included), exactly as members get it.
    Msg { line: Vec<u8> },
    /// An `INFO` line (LF included): an operator's `say`.
    Info { line: Vec<u8> },
    /// A `PRIV` line (LF included) for the member named `to`, wherever it is.
    Priv { to: String, line: Vec<u8> },
    /// A join waits for an operator on the origin server.
    Request { name: String, addr: String },
    /// A waiting join was decided (`how`: approved, denied, withdrawn, timed out).
    Decided { name: String, how: String },
    /// A console asks server `server` to approve its waiting join `name`.
    Approve { server: String, name: String },
    /// A console asks server `server` to deny its waiting join `name`.
    Deny { server: String, name: String },
    /// A console asks server `server` to kick its member `name`.
    Kick { server: String, name: String },
    /// Server `server` is gone from the room (written after its members' `Leave`s).
    Down { server: String },
}

impl Event {
    /// The kind letter and the arguments `a`, `b`, `c` of the stream entry.
    pub fn encode(&self) -> (&'static str, [&[u8]; 3]) {
        let none: &[u8] = b"";
        match self {
            Event::Join { name } => ("J", [name.as_bytes(), none, none]),
            Event::Leave { name, reason } => {
                ("L", [name.as_bytes(), reason.as_str().as_bytes(), none])
            }
            Event::Nick { old, new } => ("N", [old.as_bytes(), new.as_bytes(), none]),
            Event::Msg { line } => ("M", [line, none, none]),
            Event::Info { line } => ("I", [line, none, none]),
            Event::Priv { to, line } => ("P", [to.as_bytes(), line, none]),
            Event::Request { name, addr } => ("R", [name.as_bytes(), addr.as_bytes(), none]),
            Event::Decided { name, how } => ("D", [name.as_bytes(), how.as_bytes(), none]),
            Event::Approve { server, name } => ("A", [server.as_bytes(), name.as_bytes(), none]),
            Event::Deny { server, name } => ("X", [server.as_bytes(), name.as_bytes(), none]),
            Event::Kick { server, name } => ("K", [server.as_bytes(), name.as_bytes(), none]),
            Event::Down { server } => ("G", [server.as_bytes(), none, none]),
        }
    }

    /// Decodes an entry's kind and arguments; `None` for anything malformed: names must follow
    /// the name rule and lines be one protocol line of the right kind, so even a stray writer
    /// cannot make a server send its members something outside the grammar.
    pub fn decode(kind: &[u8], a: &[u8], b: &[u8], _c: &[u8]) -> Option<Event> {
        let text = |v: &[u8]| {
            let t = std::str::from_utf8(v).ok()?;
            (!t.chars().any(char::is_control)).then(|| t.to_owned())
        };
        let name = |v: &[u8]| {
            let t = std::str::from_utf8(v).ok()?;
            (validate_name(t).ok()? == t).then(|| t.to_owned())
        };
        let line = |v: &[u8], tags: &[&[u8]]| {
            let body = v.strip_suffix(b"\n")?;
            let ok = tags.iter().any(|t| body.starts_with(t))
                && std::str::from_utf8(body).is_ok_and(|t| !t.chars().any(char::is_control));
            ok.then(|| v.to_vec())
        };
        Some(match kind {
            b"J" => Event::Join { name: name(a)? },
            b"L" => Event::Leave {
                name: name(a)?,
                reason: LeaveReason::parse(std::str::from_utf8(b).ok()?)?,
            },
            b"N" => Event::Nick {
                old: name(a)?,
                new: name(b)?,
            },
            b"M" => Event::Msg {
                line: line(a, &[b"MSG ", b"ACT "])?,
            },
            b"I" => Event::Info {
                line: line(a, &[b"INFO "])?,
            },
            b"P" => Event::Priv {
                to: name(a)?,
                line: line(b, &[b"PRIV "])?,
            },
            b"R" => Event::Request {
                name: name(a)?,
                addr: text(b)?,
            },
            b"D" => Event::Decided {
                name: name(a)?,
                how: text(b)?,
            },
            b"A" => Event::Approve {
                server: text(a)?,
                name: name(b)?,
            },
            b"X" => Event::Deny {
                server: text(a)?,
                name: name(b)?,
            },
            b"K" => Event::Kick {
                server: text(a)?,
                name: name(b)?,
            },
            b"G" => Event::Down { server: text(a)? },
            _ => return None,
        })
    }

    /// Bytes this event holds, for the bridge queue's accounting.
    pub fn cost(&self) -> usize {
        let (_, args) = self.encode();
        64 + args.iter().map(|a| a.len()).sum::<usize>()
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToBridge {
    /// Append an event to the room's log, stamped with the origin's wall clock (ms).
    Publish { event: Event, wall_ms: u64 },
    /// Claim `name` for this server for connection `id`; with `release`, free that name of this
    /// server in the same step (a rename). Answered by [`FromBridge::Claimed`].
    Claim {
        id: ConnId,
        name: String,
        release: Option<String>,
    },
    /// Free `name` if this server holds it.
    Release { name: String },
    /// The server is stopping: leave the room now (members announced as gone, names freed).
    Leave,
}

impl ToBridge {
    /// Bytes this message holds, for the queue's accounting.
    pub fn cost(&self) -> usize {
        match self {
            ToBridge::Publish { event, .. } => event.cost(),
            ToBridge::Claim { name, .. } | ToBridge::Release { name } => 64 + 2 * name.len(),
            ToBridge::Leave => 64,
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
    /// members and waiting joins, and the room's history (oldest first) up to now.
    Up {
        epoch: u64,
        server: String,
        at: LogId,
        remote: Vec<RemoteEntry>,
        history: Vec<(SystemTime, Vec<u8>)>,
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_encoding() {
        let s = String::from;
        let events = [
            Event::Join { name: s("al") },
            Event::Leave {
                name: s("al"),
                reason: LeaveReason::Kicked,
            },
            Event::Nick {
                old: s("al"),
                new: s("Bo"),
            },
            Event::Msg {
                line: b"MSG al - hi there\n".to_vec(),
            },
            Event::Info {
                line: b"INFO operator: x\n".to_vec(),
            },
            Event::Priv {
                to: s("bo"),
                line: b"PRIV al bo - psst\n".to_vec(),
            },
            Event::Request {
                name: s("cy"),
                addr: s("127.0.0.1:4000"),
            },
            Event::Decided {
                name: s("cy"),
                how: s("denied"),
            },
            Event::Approve {
                server: s("s1"),
                name: s("cy"),
            },
            Event::Deny {
                server: s("s1"),
                name: s("cy"),
            },
            Event::Kick {
                server: s("s1"),
                name: s("al"),
            },
            Event::Down { server: s("s1") },
        ];
        for e in events {
            let (k, [a, b, c]) = e.encode();
            assert_eq!(Event::decode(k.as_bytes(), a, b, c), Some(e));
        }
    }

    #[test]
    fn log_ids_order_as_redis_orders_them() {
        assert!(LogId::parse("10-2") < LogId::parse("11-0"));
        assert!(LogId::parse("10-2") > LogId::parse("10-1"));
        assert_eq!(LogId::parse("0-0"), Some(LogId(0, 0)));
        assert_eq!(LogId::parse("x"), None);
    }

    #[test]
    fn malformed_entries_are_refused() {
        assert_eq!(Event::decode(b"Z", b"", b"", b""), None);
        assert_eq!(Event::decode(b"L", b"al", b"bored", b""), None);
        assert_eq!(Event::decode(b"M", b"MSG a - x", b"", b""), None, "no LF");
        assert_eq!(Event::decode(b"M", b"MSG a\n - x\n", b"", b""), None);
        assert_eq!(Event::decode(b"J", b"\xff", b"", b""), None);
        assert_eq!(Event::decode(b"J", b"a b", b"", b""), None, "not a name");
        assert_eq!(Event::decode(b"M", b"BYE x\n", b"", b""), None, "not a MSG");
        assert_eq!(Event::decode(b"M", b"MSG a - \x1b[2J\n", b"", b""), None);
        assert_eq!(Event::decode(b"R", b"al", b"1.2.3.4:5\x07", b""), None);
    }
}
