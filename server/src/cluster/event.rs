//! The room's events as they travel through the Redis stream: their encoding (the types are the
//! core's, `crate::chat::bus`). Pure data and encoding: no I/O here.
//!
//! A stream entry has the fields `o` (origin server id), `k` (kind, one letter), `t` (the
//! origin's wall clock, ms since the Unix epoch) and up to three arguments `a`, `b`, `c`.
//! Anything that does not decode is skipped by the reader, never a panic: Redis is trusted, but a
//! stray writer to the same key must not take the servers down.

use std::borrow::Cow;

use chat_common::protocol::{validate_name, LeaveReason};

use crate::chat::bans::IpNet;
use crate::chat::durable::MemberRecord;
use crate::token::TokenHash;

use crate::config::BRIDGE_ENTRY_OVERHEAD;

pub use crate::chat::bus::{
    from_wall_ms, wall_ms, Entry, Event, FromBridge, LogId, RemoteEntry, ToBridge,
};

impl Event {
    /// The kind letter and the arguments `a`, `b`, `c` of the stream entry (borrowed, except
    /// for the shared records' numbers and hashes, which are written out).
    ///
    /// The shared records (`T` member, `F` forget, `B` ban, `O` unban) all carry their stamp
    /// (ms) as `b`, so Redis's script can keep the newest of each without parsing more: `T`:
    /// name, last seen, `hash \t approved at \t approved by`; `F`: name, when; `B`: range,
    /// when, `until (0: none) \t by \t reason`; `O`: range, when.
    pub fn encode(&self) -> (&'static str, [Cow<'_, [u8]>; 3]) {
        fn b(v: &[u8]) -> Cow<'_, [u8]> {
            Cow::Borrowed(v)
        }
        let none = || Cow::Borrowed(&b""[..]);
        let owned = |v: String| -> Cow<'_, [u8]> { Cow::Owned(v.into_bytes()) };
        match self {
            Event::Join { name } => ("J", [b(name.as_bytes()), none(), none()]),
            Event::Leave {
                name,
                reason,
                owner,
            } => (
                "L",
                [
                    b(name.as_bytes()),
                    b(reason.as_str().as_bytes()),
                    owner.as_deref().map_or_else(none, |o| b(o.as_bytes())),
                ],
            ),
            Event::Nick { old, new, owner } => (
                "N",
                [
                    b(old.as_bytes()),
                    b(new.as_bytes()),
                    owner.as_deref().map_or_else(none, |o| b(o.as_bytes())),
                ],
            ),
            Event::Msg { line, id } => ("M", [b(line), none(), b(id.as_bytes())]),
            Event::Info { line } => ("I", [b(line), none(), none()]),
            Event::Priv { to, line, id } => ("P", [b(to.as_bytes()), b(line), b(id.as_bytes())]),
            Event::Request { name, addr } => {
                ("R", [b(name.as_bytes()), b(addr.as_bytes()), none()])
            }
            Event::Decided { name, how } => ("D", [b(name.as_bytes()), b(how.as_bytes()), none()]),
            Event::Approve { server, name, by } => (
                "A",
                [b(server.as_bytes()), b(name.as_bytes()), b(by.as_bytes())],
            ),
            Event::Deny { server, name, by } => (
                "X",
                [b(server.as_bytes()), b(name.as_bytes()), b(by.as_bytes())],
            ),
            Event::Kick { server, name, note } => (
                "K",
                [b(server.as_bytes()), b(name.as_bytes()), b(note.as_bytes())],
            ),
            Event::Takeover { server, name } => {
                ("H", [b(server.as_bytes()), b(name.as_bytes()), none()])
            }
            Event::Handover { name, to } => ("V", [b(name.as_bytes()), b(to.as_bytes()), none()]),
            Event::Down { server } => ("G", [b(server.as_bytes()), none(), none()]),
            Event::Joined { server } => ("U", [b(server.as_bytes()), none(), none()]),
            Event::Member { record } => (
                "T",
                [
                    b(record.name.as_bytes()),
                    owned(record.last_seen_ms.to_string()),
                    owned(format!(
                        "{}\t{}\t{}",
                        hex(&record.token_hash.0),
                        record.approved_at_ms,
                        record.approved_by
                    )),
                ],
            ),
            Event::Forget { name, at_ms } => {
                ("F", [b(name.as_bytes()), owned(at_ms.to_string()), none()])
            }
            Event::Ban {
                net,
                at_ms,
                until_ms,
                by,
                reason,
            } => (
                "B",
                [
                    b(net.as_bytes()),
                    owned(at_ms.to_string()),
                    owned(format!("{until_ms}\t{by}\t{reason}")),
                ],
            ),
            Event::Unban { net, at_ms } => {
                ("O", [b(net.as_bytes()), owned(at_ms.to_string()), none()])
            }
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
        // A range as the ban list writes it (so one range is one key everywhere).
        let net = |v: &[u8]| {
            let t = std::str::from_utf8(v).ok()?;
            let parsed: IpNet = t.parse().ok()?;
            (parsed.to_string() == t).then(|| t.to_owned())
        };
        // Text whose only control characters are the tabs between its fields.
        let text_tabs = |v: &[u8]| {
            let t = std::str::from_utf8(v).ok()?;
            (!t.chars().any(|ch| ch.is_control() && ch != '\t')).then(|| t.to_owned())
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
                id: msg_id(c)?,
            },
            b"I" => Event::Info {
                line: line(a, &[b"INFO "])?,
            },
            b"P" => Event::Priv {
                to: name(a)?,
                line: line(b, &[b"PRIV "])?,
                id: msg_id(c)?,
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
            b"H" => Event::Takeover {
                server: text(a)?,
                name: name(b)?,
            },
            b"V" => Event::Handover {
                name: name(a)?,
                to: text(b)?,
            },
            b"G" => Event::Down { server: text(a)? },
            b"U" => Event::Joined { server: text(a)? },
            b"T" => {
                let c = text_tabs(c)?;
                let mut parts = c.splitn(3, '\t');
                let hash = unhex(parts.next()?)?;
                let approved_at_ms = number(parts.next()?.as_bytes())?;
                let approved_by = parts.next()?.to_owned();
                Event::Member {
                    record: MemberRecord {
                        name: name(a)?,
                        token_hash: TokenHash(hash),
                        approved_by,
                        approved_at_ms,
                        last_seen_ms: number(b)?,
                    },
                }
            }
            b"F" => Event::Forget {
                name: name(a)?,
                at_ms: number(b)?,
            },
            b"B" => {
                let c = text_tabs(c)?;
                let mut parts = c.splitn(3, '\t');
                let until_ms = number(parts.next()?.as_bytes())?;
                let by = parts.next()?.to_owned();
                let reason = parts.next()?.to_owned();
                Event::Ban {
                    net: net(a)?,
                    at_ms: number(b)?,
                    until_ms,
                    by,
                    reason,
                }
            }
            b"O" => Event::Unban {
                net: net(a)?,
                at_ms: number(b)?,
            },
            _ => return None,
        })
    }

    /// Bytes this event holds, for the bridge queue's accounting.
    pub fn cost(&self) -> usize {
        match self {
            // The hot path: no encoding to count a line.
            Event::Msg { line, id } => BRIDGE_ENTRY_OVERHEAD + line.len() + id.len(),
            Event::Info { line } => BRIDGE_ENTRY_OVERHEAD + line.len(),
            _ => {
                let (_, args) = self.encode();
                BRIDGE_ENTRY_OVERHEAD + args.iter().map(|a| a.len()).sum::<usize>()
            }
        }
    }
}

/// A message id as the tags allow it, or empty (none: older servers wrote none).
fn msg_id(v: &[u8]) -> Option<String> {
    match std::str::from_utf8(v).ok()? {
        "" => Some(String::new()),
        id if chat_common::protocol::v3::is_id(id) => Some(id.to_owned()),
        _ => None,
    }
}

/// A decimal number of at most 20 digits.
fn number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// 32 bytes from 64 lower-case hexadecimal digits.
fn unhex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        *o = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
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
                id: s("1a2b3c4d-17"),
            },
            Event::Msg {
                line: b"ACT al waves\n".to_vec(),
                id: String::new(),
            },
            Event::Info {
                line: b"INFO operator: x\n".to_vec(),
            },
            Event::Priv {
                to: s("bo"),
                line: b"PRIV al bo - psst\n".to_vec(),
                id: s("00c0ffee-9"),
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
            Event::Takeover {
                server: s("s1"),
                name: s("al"),
            },
            Event::Handover {
                name: s("al"),
                to: s("vm:5556"),
            },
            Event::Down { server: s("s1") },
            Event::Joined { server: s("s1") },
            Event::Member {
                record: MemberRecord {
                    name: s("Al"),
                    token_hash: TokenHash([0xa7; 32]),
                    approved_by: s("control:3\ton server s1"),
                    approved_at_ms: 1_700_000_000_000,
                    last_seen_ms: 1_700_000_000_500,
                },
            },
            Event::Forget {
                name: s("al"),
                at_ms: 12,
            },
            Event::Ban {
                net: s("10.0.0.0/8"),
                at_ms: 5,
                until_ms: 0,
                by: s("stdin on server s1"),
                reason: s("flood\tand more"),
            },
            Event::Unban {
                net: s("2001:db8::/32"),
                at_ms: 6,
            },
        ];
        for e in events {
            let (k, [a, b, c]) = e.encode();
            assert_eq!(Event::decode(k.as_bytes(), &a, &b, &c), Some(e));
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
        assert_eq!(
            Event::decode(b"M", b"MSG a - x\n", b"", b"id with space"),
            None
        );
        assert_eq!(Event::decode(b"R", b"al", b"1.2.3.4:5\x07", b""), None);
        let hash = "ab".repeat(32);
        let record = format!("{hash}\t1\tstdin");
        assert!(Event::decode(b"T", b"al", b"2", record.as_bytes()).is_some());
        assert_eq!(Event::decode(b"T", b"al", b"x", record.as_bytes()), None);
        assert_eq!(
            Event::decode(b"T", b"al", b"2", b"abcd\t1\tstdin"),
            None,
            "short"
        );
        let upper = format!("{}\t1\tstdin", "AB".repeat(32));
        assert_eq!(Event::decode(b"T", b"al", b"2", upper.as_bytes()), None);
        assert_eq!(
            Event::decode(b"B", b"10.0.0.1/8", b"1", b"0\tx\t"),
            None,
            "not canonical"
        );
        assert_eq!(
            Event::decode(b"B", b"10.0.0.0/8", b"1", b"0\tx"),
            None,
            "no reason field"
        );
        assert_eq!(Event::decode(b"O", b"nowhere", b"1", b""), None);
        assert_eq!(Event::decode(b"F", b"al", b"", b""), None);
    }
}
