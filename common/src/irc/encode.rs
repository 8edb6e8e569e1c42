//! Server lines written: optional tags, source, command, middle parameters, a trailing
//! parameter, CR LF; numerics; `PRIVMSG`/`NOTICE` of long text cut into several lines.
//!
//! This module owns the wire syntax of what the server sends and nothing of what a line means.
//! It never panics and never lets a peer's bytes break a line: CR, LF and NUL are left out of
//! every parameter, and a middle parameter never holds a space or starts with `:` (those bytes
//! are replaced by `_`, and an empty one is written `*`). Text is expected sanitized already;
//! this is the last guard, not the sanitizer.

use super::ctcp::{ACTION_CLOSE, ACTION_OPEN};
use super::message::{escape_tag_value, MAX_BODY};
use super::split::pieces;

/// Whether any byte of `bytes` is `max` or below: a screen for the bytes a parameter must not
/// hold, all of them control characters or the space. It reads every byte, no early exit,
/// so the compiler makes it a vector loop (a byte at a time with four comparisons each was
/// a tenth of an IRC message's encoding).
fn any_at_most(bytes: &[u8], max: u8) -> bool {
    bytes.iter().fold(false, |found, &b| found | (b <= max))
}

fn push_clean(text: &str, out: &mut Vec<u8>) {
    if !any_at_most(text.as_bytes(), b'\r') {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.extend(text.bytes().filter(|b| !matches!(b, b'\r' | b'\n' | b'\0')));
}

fn push_middle(param: &str, out: &mut Vec<u8>) {
    if param.is_empty() {
        out.push(b'*');
        return;
    }
    if !param.starts_with(':') && !any_at_most(param.as_bytes(), b' ') {
        // Nothing to replace (the usual case): one copy, not a push per byte.
        out.extend_from_slice(param.as_bytes());
        return;
    }
    for (i, b) in param.bytes().enumerate() {
        match b {
            b'\r' | b'\n' | b'\0' => {}
            b' ' => out.push(b'_'),
            b':' if i == 0 => out.push(b'_'),
            b => out.push(b),
        }
    }
}

/// Appends `@k=v;k=v ` for `tags` (values escaped; a tag with an empty value is written
/// without `=`); nothing when there are none.
pub fn push_tags(tags: &[(&str, &str)], out: &mut Vec<u8>) {
    push_tag_list(tags.iter(), out);
}

/// [`push_tags`] of tags from several places (no list gathered for them).
fn push_tag_list<'a>(tags: impl Iterator<Item = &'a (&'a str, &'a str)>, out: &mut Vec<u8>) {
    let mut any = false;
    for (key, value) in tags {
        out.push(if any { b';' } else { b'@' });
        any = true;
        push_middle(key, out);
        if !value.is_empty() {
            out.push(b'=');
            escape_tag_value(value, out);
        }
    }
    if any {
        out.push(b' ');
    }
}

/// Appends one line: `:source COMMAND middle... :trailing\r\n` (no source when `None`, no
/// trailing parameter when `None`).
pub fn push_line(
    source: Option<&str>,
    command: &str,
    middle: &[&str],
    trailing: Option<&str>,
    out: &mut Vec<u8>,
) {
    if let Some(source) = source {
        out.push(b':');
        push_middle(source, out);
        out.push(b' ');
    }
    push_middle(command, out);
    for param in middle {
        out.push(b' ');
        push_middle(param, out);
    }
    if let Some(trailing) = trailing {
        out.extend_from_slice(b" :");
        push_clean(trailing, out);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a numeric reply from `server` to `target` (the client's nick, `*` before it has
/// one): `:server CODE target middle... :trailing`.
pub fn push_numeric(
    server: &str,
    code: &str,
    target: &str,
    middle: &[&str],
    trailing: &str,
    out: &mut Vec<u8>,
) {
    out.push(b':');
    push_middle(server, out);
    out.push(b' ');
    out.extend_from_slice(code.as_bytes());
    out.push(b' ');
    push_middle(target, out);
    for param in middle {
        out.push(b' ');
        push_middle(param, out);
    }
    out.extend_from_slice(b" :");
    push_clean(trailing, out);
    out.extend_from_slice(b"\r\n");
}

/// The frame of a text message: `:source COMMAND target :text`, the text maybe a CTCP action.
#[derive(Debug, Clone, Copy)]
pub struct TextLines<'a> {
    /// `nick!user@host` of the sender, or the server's name.
    pub source: &'a str,
    /// `PRIVMSG` or `NOTICE`.
    pub command: &'a str,
    /// The channel or the recipient's nick.
    pub target: &'a str,
    /// Whether each piece is wrapped in CTCP `ACTION` (`/me`).
    pub action: bool,
}

impl TextLines<'_> {
    /// Appends the lines carrying IRC formatted `text`, cut at word boundaries so each line
    /// fits in 512 bytes without its tags. `first_line_tags` go on the first line (`msgid`),
    /// `every_line_tags` on every line (`time`). Returns how many lines were written (0 for an
    /// empty text).
    pub fn push(
        &self,
        every_line_tags: &[(&str, &str)],
        first_line_tags: &[(&str, &str)],
        text: &str,
        out: &mut Vec<u8>,
    ) -> usize {
        let TextLines {
            source,
            command,
            target,
            action,
        } = *self;
        // `:source COMMAND target :` and the CTCP wrapping.
        let overhead = 1 + source.len() + 1 + command.len() + 1 + target.len() + 2;
        let wrap = if action {
            ACTION_OPEN.len() + ACTION_CLOSE.len()
        } else {
            0
        };
        let budget = MAX_BODY.saturating_sub(overhead + wrap);
        let mut lines = 0;
        for piece in pieces(text, budget) {
            let first: &[(&str, &str)] = if lines == 0 { first_line_tags } else { &[] };
            push_tag_list(every_line_tags.iter().chain(first), out);
            out.push(b':');
            push_middle(source, out);
            out.push(b' ');
            push_middle(command, out);
            out.push(b' ');
            push_middle(target, out);
            out.extend_from_slice(b" :");
            if action {
                out.extend_from_slice(ACTION_OPEN.as_bytes());
            }
            push_clean(piece.reopen(), out);
            push_clean(piece.text, out);
            if action {
                out.extend_from_slice(ACTION_CLOSE.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            lines += 1;
        }
        lines
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::format::strip_codes;
    use super::super::message::Message;
    use super::*;

    fn s(out: Vec<u8>) -> String {
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_lines_and_numerics() {
        let mut out = Vec::new();
        push_line(Some("alice!alice@h"), "JOIN", &["#chat"], None, &mut out);
        push_line(None, "PING", &[], Some("chat.server"), &mut out);
        push_numeric("srv", "001", "alice", &[], "Welcome, alice", &mut out);
        push_numeric(
            "srv",
            "353",
            "alice",
            &["=", "#chat"],
            "alice bob",
            &mut out,
        );
        push_numeric("srv", "451", "*", &[], "You have not registered", &mut out);
        assert_eq!(
            s(out),
            ":alice!alice@h JOIN #chat\r\nPING :chat.server\r\n:srv 001 alice :Welcome, alice\r\n\
             :srv 353 alice = #chat :alice bob\r\n:srv 451 * :You have not registered\r\n"
        );
    }

    #[test]
    fn no_parameter_can_break_a_line() {
        let mut out = Vec::new();
        push_line(
            Some("a b"),
            "X",
            &[":x y", ""],
            Some("t\r\nQUIT\0"),
            &mut out,
        );
        assert_eq!(s(out), ":a_b X _x_y * :tQUIT\r\n");
    }

    #[test]
    fn writes_tags() {
        let mut out = Vec::new();
        push_tags(
            &[
                ("time", "2026-12-01T16:05:09.123Z"),
                ("msgid", "a;b c"),
                ("x", ""),
            ],
            &mut out,
        );
        assert_eq!(s(out), "@time=2026-12-01T16:05:09.123Z;msgid=a\\:b\\sc;x ");
    }

    #[test]
    fn long_text_becomes_lines_that_fit() {
        let words = "lorem ipsum dolor sit amet ".repeat(60);
        let text = format!("\x02{words}");
        let mut out = Vec::new();
        let frame = TextLines {
            source: "alice!alice@127.0.0.1",
            command: "PRIVMSG",
            target: "#chat",
            action: true,
        };
        let n = frame.push(&[("time", "T")], &[("msgid", "m1")], &text, &mut out);
        let wire = s(out);
        let lines: Vec<&str> = wire.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), n);
        assert!(n >= 4);
        let mut joined = String::new();
        for (i, line) in lines.iter().enumerate() {
            let body = line.split_once(' ').unwrap().1;
            assert!(body.len() <= MAX_BODY, "{} bytes", body.len());
            assert_eq!(line.contains("msgid=m1"), i == 0);
            let m = Message::parse(line).unwrap();
            assert_eq!(m.tag("time"), Some("T"));
            assert_eq!(m.params()[0], "#chat");
            let t = m.params()[1];
            assert!(
                t.starts_with("\x01ACTION \x02") && t.ends_with('\x01'),
                "{t:?}"
            );
            joined.push_str(&strip_codes(&t[8..t.len() - 1]));
        }
        assert_eq!(joined, words);
    }
}
