//! The text of a load message: who sent it, its sequence number and when it was sent.
//!
//! A sender writes `L <sender> <seq> <sent_ns>[ <padding>]`, all decimal; `sent_ns` is monotonic
//! nanoseconds since the generator started, so any receiver in the same process can compute the
//! latency and check per-sender order from the text alone, whatever the server puts around it.
//! This module only formats and parses text; it never touches a socket.

use std::io::Write;

/// The fields a load message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sending member.
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u64,
    /// Monotonic nanoseconds since the generator started: when the message went out, or in a
    /// paced run when it was due (so a late send shows as latency).
    pub sent_ns: u64,
}

/// The filler byte appended by `--pad`: plain ASCII that no server rewrites.
const PAD_BYTE: u8 = b'x';

/// Appends the message text (no line terminator) to `out`, with `pad` filler bytes after it.
pub fn encode(stamp: Stamp, pad: usize, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "L {} {} {}", stamp.sender, stamp.seq, stamp.sent_ns);
    if pad > 0 {
        out.push(b' ');
        out.resize(out.len() + pad, PAD_BYTE);
    }
}

/// Parses a message text written by [`encode`]; `None` for any other text (a person typing in
/// the room, a server notice), which the caller counts as foreign.
///
/// Works on bytes (the caller need not check UTF-8): it runs once per delivery, and
/// `str::split` costs several times as much.
pub fn decode(text: &[u8]) -> Option<Stamp> {
    let rest = text.strip_prefix(b"L ")?;
    let (sender, rest) = parse_u64(rest)?;
    let rest = rest.strip_prefix(b" ")?;
    let (seq, rest) = parse_u64(rest)?;
    let rest = rest.strip_prefix(b" ")?;
    let (sent_ns, rest) = parse_u64(rest)?;
    if !(rest.is_empty() || rest[0] == b' ') {
        return None;
    }
    Some(Stamp {
        sender: u32::try_from(sender).ok()?,
        seq,
        sent_ns,
    })
}

/// The text of a chat-protocol `MSG <from> <color> <text>` line whose text is a load message,
/// without the full parse; `None` for any other line, which then goes through
/// `chat_common::protocol::ServerMsg::parse`.
///
/// Why not always `ServerMsg::parse`: it validates the name and color fields and costs about
/// 40 ns a line, as much as all the rest of a delivery's handling, and the generator shares
/// one core's worth of time with nothing but itself while the server it measures gets
/// faster. The fields skipped here (sender name, color) are ones the load text does not
/// depend on, and their grammar is the server tests' business; the unit tests check that this
/// agrees with `ServerMsg::parse` on well-formed lines and declines every other kind of line.
pub fn chat_msg_text(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"MSG ")?;
    let from = rest.iter().position(|&b| b == b' ')?;
    let rest = &rest[from + 1..];
    let color = rest.iter().position(|&b| b == b' ')?;
    let text = &rest[color + 1..];
    if from == 0 || color == 0 || !text.starts_with(b"L ") {
        return None;
    }
    Some(text)
}

/// The text of an IRC `:<source> PRIVMSG <target> :<text>` line (tags allowed before it, CR
/// allowed after it) whose text is a load message, without the full parse; `None` for any
/// other line, which then goes through `crate::irc::IrcLine::parse`. The same reason as
/// [`chat_msg_text`]: the full parse costs as much as the rest of a delivery, and with IRC
/// members the generator's core, not the server, was what limited deliveries per second.
pub fn irc_privmsg_text(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = match line.first() {
        Some(b'@') => &line[line.iter().position(|&b| b == b' ')? + 1..],
        _ => line,
    };
    let rest = line.strip_prefix(b":")?;
    let source = rest.iter().position(|&b| b == b' ')?;
    let rest = rest[source + 1..].strip_prefix(b"PRIVMSG ")?;
    let target = rest.iter().position(|&b| b == b' ')?;
    let text = rest[target + 1..].strip_prefix(b":")?;
    if source == 0 || target == 0 || !text.starts_with(b"L ") {
        return None;
    }
    Some(text)
}

/// Strict decimal at the start of `s`: at least one digit, no sign, no overflow. Returns the
/// value and what follows the digits. No overflow checks for the first 19 digits (which always
/// fit), and eight digits at a time where there are eight: it runs three times per delivery,
/// and the send time has 10 to 12 digits.
fn parse_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    let mut i = 0;
    while i + 8 <= s.len() && i + 8 <= 19 {
        let Some(eight) = eight_digits(&s[i..i + 8]) else {
            break;
        };
        v = v * 100_000_000 + eight;
        i += 8;
    }
    while i < s.len() && i < 19 {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
    if i == 0 {
        return None;
    }
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(s[i] - b'0'))?;
        i += 1;
    }
    Some((v, &s[i..]))
}

/// The value of exactly eight ASCII digits, or `None` if any byte is not one; SWAR: the eight
/// bytes as one little-endian u64, checked and combined in a few multiplications.
fn eight_digits(b: &[u8]) -> Option<u64> {
    let chunk = u64::from_le_bytes(b.try_into().ok()?);
    // Every byte 0x30..=0x39: high nibble 3, and still 3 after adding 6.
    let high = chunk & 0xF0F0_F0F0_F0F0_F0F0;
    let high6 = chunk.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0;
    if high != 0x3030_3030_3030_3030 || high6 != 0x3030_3030_3030_3030 {
        return None;
    }
    let mut v = chunk - 0x3030_3030_3030_3030;
    // Pairs of digits, then quads, then the eight: the first digit is the lowest byte.
    v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v * 10_000 + (v >> 32)) & 0xFFFF_FFFF;
    Some(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn enc(stamp: Stamp, pad: usize) -> String {
        let mut out = Vec::new();
        encode(stamp, pad, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn round_trips() {
        let s = Stamp {
            sender: 7,
            seq: 123,
            sent_ns: 987_654_321,
        };
        assert_eq!(enc(s, 0), "L 7 123 987654321");
        assert_eq!(decode(enc(s, 0).as_bytes()), Some(s));
        assert_eq!(enc(s, 3), "L 7 123 987654321 xxx");
        assert_eq!(decode(enc(s, 3).as_bytes()), Some(s));
        let max = Stamp {
            sender: u32::MAX,
            seq: u64::MAX,
            sent_ns: u64::MAX,
        };
        assert_eq!(decode(enc(max, 0).as_bytes()), Some(max));
    }

    #[test]
    fn msg_fast_path_agrees_with_the_protocol_parser() {
        use chat_common::protocol::ServerMsg;
        for line in [
            "MSG u1 - L 1 2 3",
            "MSG u1 red L 1 2 3 xx",
            "MSG u1 - hello",
            "MSG u1 - L",
            "MSG u1 -  L 1 2 3",
            "MSG  u1 - L 1 2 3",
            "MSG u1 -",
            "MSG u1",
            "MSG ",
            "JOIN u1",
            "INFO MSG u1 - L 1 2 3",
            "MSG u1 - L 1 2 3 \u{e9}\u{1F600}",
            "NAME? MSG u1 - L 1 2 3",
            "WELCOME u1 3",
        ] {
            let fast = chat_msg_text(line.as_bytes());
            if let Some(text) = fast {
                match ServerMsg::parse(line) {
                    Ok(ServerMsg::Msg { text: t, .. }) => {
                        assert_eq!(text, t.as_bytes(), "{line:?}")
                    }
                    other => panic!("{line:?}: fast path said {text:?}, parser {other:?}"),
                }
            }
            let wanted = matches!(
                ServerMsg::parse(line),
                Ok(ServerMsg::Msg { text, .. }) if text.starts_with("L ")
            );
            assert_eq!(fast.is_some(), wanted, "{line:?}");
        }
    }

    #[test]
    fn privmsg_fast_path_agrees_with_the_irc_parser() {
        use crate::irc::IrcLine;
        for line in [
            ":u1!u1@h PRIVMSG #load :L 1 2 3",
            ":u1!u1@h PRIVMSG #load :L 1 2 3\r",
            "@time=2026-12-06T10:00:00.000Z;msgid=a :u1!u1@h PRIVMSG #load :L 1 2 3 xx",
            ":u1!u1@h PRIVMSG #load :hello",
            ":u1!u1@h PRIVMSG #load L",
            ":u1!u1@h PRIVMSG  #load :L 1 2 3",
            ":u1 NOTICE #load :L 1 2 3",
            "PRIVMSG #load :L 1 2 3",
            ": PRIVMSG #load :L 1 2 3",
            ":srv 001 u1 :L 1 2 3",
            ":u1!u1@h PRIVMSG #load :\x01ACTION L 1 2 3\x01",
        ] {
            let fast = irc_privmsg_text(line.as_bytes());
            let parsed = IrcLine::parse(line.trim_end_matches('\r'))
                .filter(|l| l.command == "PRIVMSG")
                .and_then(|l| l.param(1))
                .filter(|t| t.starts_with("L "));
            // The fast path may decline a line the parser takes (the slow path then has it),
            // never take one differently.
            if fast.is_some() {
                assert_eq!(fast, parsed.map(str::as_bytes), "{line:?}");
            }
        }
        for hit in [
            ":u1!u1@h PRIVMSG #load :L 1 2 3",
            ":u1!u1@h PRIVMSG #load :L 1 2 3\r",
            "@time=2026-12-06T10:00:00.000Z;msgid=a :u1!u1@h PRIVMSG #load :L 1 2 3 xx",
        ] {
            assert!(irc_privmsg_text(hit.as_bytes()).is_some(), "{hit:?}");
        }
    }

    #[test]
    fn numbers_of_every_length() {
        let mut n: u64 = 0;
        for digits in 1..=20 {
            n = n * 10 + (digits % 10);
            let text = format!("{n} rest");
            assert_eq!(
                parse_u64(text.as_bytes()),
                Some((n, &b" rest"[..])),
                "{text}"
            );
        }
        assert_eq!(
            parse_u64(b"18446744073709551615"),
            Some((u64::MAX, &b""[..]))
        );
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"x1"), None);
        assert_eq!(eight_digits(b"01234567"), Some(1_234_567));
        assert_eq!(eight_digits(b"99999999"), Some(99_999_999));
        for bad in [
            b"0123456/",
            b"0123456:",
            b"/1234567",
            b"012 4567",
            b"0123456\xff",
        ] {
            assert_eq!(eight_digits(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn refuses_foreign_text() {
        for text in [
            "",
            "hello",
            "L",
            "L 1 2",
            "L 1 2 ",
            "L 1 2 x",
            "L 1 2 3x",
            "L 1 2 3\tx",
            "L -1 2 3",
            "L +1 2 3",
            "l 1 2 3",
            "L 1  2 3",
            "L 4294967296 0 0",
            "L 1 2 18446744073709551616",
            " L 1 2 3",
        ] {
            assert_eq!(decode(text.as_bytes()), None, "{text:?}");
        }
    }
}
