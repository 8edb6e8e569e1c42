//! The room's events as they travel through the Redis stream: their encoding (the types are the
//! core's, `crate::chat::bus`). Pure data and encoding: no I/O here.
//!
//! A stream entry has the fields `o` (origin server id), `k` (kind, one letter), `t` (the
//! origin's wall clock, ms since the Unix epoch) and up to three arguments `a`, `b`, `c`.
//! Anything that does not decode is skipped by the reader, never a panic: Redis is trusted, but a
//! stray writer to the same key must not take the servers down.

use chat_common::protocol::{validate_name, LeaveReason};

use crate::config::BRIDGE_ENTRY_OVERHEAD;

pub use crate::chat::bus::{
    from_wall_ms, wall_ms, Entry, Event, FromBridge, LogId, RemoteEntry, ToBridge,
};

impl Event {
    /// The kind letter and the arguments `a`, `b`, `c` of the stream entry.
    pub fn encode(&self) -> (&'static str, [&[u8]; 3]) {
        let none: &[u8] = b"";
        match self {
            Event::Join { name } => ("J", [name.as_bytes(), none, none]),
            Event::Leave {
                name,
                reason,
                owner,
            } => (
                "L",
                [
                    name.as_bytes(),
                    reason.as_str().as_bytes(),
                    owner.as_deref().map_or(none, str::as_bytes),
                ],
            ),
            Event::Nick { old, new, owner } => (
                "N",
                [
                    old.as_bytes(),
                    new.as_bytes(),
                    owner.as_deref().map_or(none, str::as_bytes),
                ],
            ),
            Event::Msg { line } => ("M", [line, none, none]),
            Event::Info { line } => ("I", [line, none, none]),
            Event::Priv { to, line } => ("P", [to.as_bytes(), line, none]),
            Event::Request { name, addr } => ("R", [name.as_bytes(), addr.as_bytes(), none]),
            Event::Decided { name, how } => ("D", [name.as_bytes(), how.as_bytes(), none]),
            Event::Approve { server, name, by } => {
                ("A", [server.as_bytes(), name.as_bytes(), by.as_bytes()])
            }
            Event::Deny { server, name, by } => {
                ("X", [server.as_bytes(), name.as_bytes(), by.as_bytes()])
            }
            Event::Kick { server, name, note } => {
                ("K", [server.as_bytes(), name.as_bytes(), note.as_bytes()])
            }
            Event::Down { server } => ("G", [server.as_bytes(), none, none]),
            Event::Joined { server } => ("U", [server.as_bytes(), none, none]),
        }
    }

    /// Decodes an entry's kind and arguments; `None` for anything malformed: names must follow
    /// the name rule and lines be one protocol line of the right kind, so even a stray writer
    /// cannot make a server send its members something outside the grammar.
    pub fn decode(kind: &[u8], a: &[u8], b: &[u8], c: &[u8]) -> Option<Event> {
        // An owner's address: absent (older servers, waiting joins) or an IP address.
        let owner = |v: &[u8]| -> Option<Option<String>> {
            if v.is_empty() {
                return Some(None);
            }
            let t = std::str::from_utf8(v).ok()?;
            t.parse::<std::net::IpAddr>().ok()?;
            Some(Some(t.to_owned()))
        };
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
                owner: owner(c)?,
            },
            b"N" => Event::Nick {
                old: name(a)?,
                new: name(b)?,
                owner: owner(c)?,
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
                by: text(c)?,
            },
            b"X" => Event::Deny {
                server: text(a)?,
                name: name(b)?,
                by: text(c)?,
            },
            b"K" => Event::Kick {
                server: text(a)?,
                name: name(b)?,
                // The note's tab is its one allowed control character.
                note: std::str::from_utf8(c)
                    .ok()
                    .filter(|t| !t.chars().any(|ch| ch.is_control() && ch != '\t'))?
                    .to_owned(),
            },
            b"G" => Event::Down { server: text(a)? },
            b"U" => Event::Joined { server: text(a)? },
            _ => return None,
        })
    }

    /// Bytes this event holds, for the bridge queue's accounting.
    pub fn cost(&self) -> usize {
        let (_, args) = self.encode();
        BRIDGE_ENTRY_OVERHEAD + args.iter().map(|a| a.len()).sum::<usize>()
    }
}

impl ToBridge {
    /// Bytes this message holds, for the queue's accounting.
    pub fn cost(&self) -> usize {
        match self {
            ToBridge::Publish { event, .. } => event.cost(),
            ToBridge::Claim { name, .. } | ToBridge::Release { name, .. } => {
                BRIDGE_ENTRY_OVERHEAD + 2 * name.len()
            }
            ToBridge::Leave => BRIDGE_ENTRY_OVERHEAD,
        }
    }
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
                owner: None,
            },
            Event::Leave {
                name: s("al"),
                reason: LeaveReason::Quit,
                owner: Some(s("127.0.0.2")),
            },
            Event::Nick {
                old: s("al"),
                new: s("Bo"),
                owner: Some(s("::1")),
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
                by: s("control:3 on server s2"),
            },
            Event::Deny {
                server: s("s1"),
                name: s("cy"),
                by: s(""),
            },
            Event::Kick {
                server: s("s1"),
                name: s("al"),
                note: s("stdin on server s2\tspamming"),
            },
            Event::Down { server: s("s1") },
            Event::Joined { server: s("s1") },
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
