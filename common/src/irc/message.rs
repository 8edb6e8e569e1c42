//! One IRC line from a client, parsed: tags, source, command and parameters, as
//! modern.ircdocs.horse ("Messages") and IRCv3 message-tags define them, with the limits a server
//! enforces.
//!
//! This module owns the syntax of a client's line and its two size limits, and nothing of what a
//! command means: it never answers, never touches a socket, never allocates (the parameters are
//! slices of the line, held in a fixed array) and never panics, whatever a peer sent. Framing
//! (finding the LF) is `crate::framing`'s work with [`MAX_WIRE_LINE`] as the limit; this module
//! takes one framed line.
//!
//! # Limits
//! - The line without its tags (source, command, parameters) is at most [`MAX_BODY`] bytes (512
//!   with the CR LF, RFC 1459). Longer is [`ParseError::BodyTooLong`]: the server answers `417`
//!   (ERR_INPUTTOOLONG) and drops the line, which modern.ircdocs.horse allows beside cutting it.
//! - The tag data a client sends (without the `@` and the space) is at most [`MAX_CLIENT_TAGS`]
//!   bytes (IRCv3 message-tags): longer is [`ParseError::TagsTooLong`], also `417`.
//! - At most [`MAX_PARAMS`] parameters (RFC 1459): the last one then holds the rest of the line,
//!   spaces included, as RFC 2812 says for a fifteenth parameter.

use std::fmt;

use crate::scan::{split_space, trim_start_spaces};

/// Longest line body (everything after the tags) in bytes, without the CR LF: 512 - 2.
pub const MAX_BODY: usize = 510;

/// Longest tag data a client may send, in bytes, without the leading `@` and the space after it
/// (IRCv3 message-tags: 4094).
pub const MAX_CLIENT_TAGS: usize = 4094;

/// The framer's limit for an IRC connection: the longest tag section (`@`, tags, space) plus the
/// longest body. A line beyond it is not even stored (`crate::framing`); the server answers
/// `417` as for a body that is too long.
pub const MAX_WIRE_LINE: usize = MAX_CLIENT_TAGS + 2 + MAX_BODY;

/// Longest tag data a server may send, in bytes, without the `@` and the space (IRCv3
/// message-tags: 8191 with them). What a client reading a server's lines accepts.
pub const MAX_SERVER_TAGS: usize = 8189;

/// Most parameters in one line (RFC 1459).
pub const MAX_PARAMS: usize = 15;

/// Why a line could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but spaces, tags or a source: there is no command.
    NoCommand,
    /// The command is neither letters nor a three-digit numeric; the offending command.
    BadCommand,
    /// The line without its tags is longer than [`MAX_BODY`]; its length.
    BodyTooLong(usize),
    /// The tag data is longer than [`MAX_CLIENT_TAGS`]; its length.
    TagsTooLong(usize),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NoCommand => f.write_str("the line has no command"),
            ParseError::BadCommand => f.write_str("a command is letters or a three-digit numeric"),
            ParseError::BodyTooLong(n) => {
                write!(f, "input line too long ({n} bytes; at most {MAX_BODY})")
            }
            ParseError::TagsTooLong(n) => {
                write!(
                    f,
                    "tag data too long ({n} bytes; at most {MAX_CLIENT_TAGS})"
                )
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// One parsed line, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The raw tag data without `@` (escaped values); empty when there are none. Read it with
    /// [`Message::tags`].
    tags: &'a str,
    /// The source without its `:`, when the client sent one (servers ignore it).
    pub source: Option<&'a str>,
    /// The command as sent (compare with [`Message::is`], commands are case-insensitive).
    pub command: &'a str,
    params: [&'a str; MAX_PARAMS],
    len: usize,
}

impl<'a> Message<'a> {
    /// Parses one line a client sent, without its CR LF, within the client limits
    /// ([`MAX_CLIENT_TAGS`], [`MAX_BODY`]).
    pub fn parse(line: &'a str) -> Result<Message<'a>, ParseError> {
        Message::parse_within(line, MAX_CLIENT_TAGS, MAX_BODY)
    }

    /// Parses one line a server sent (what a client such as chat-load reads): tags up to
    /// [`MAX_SERVER_TAGS`], a body of any length (the framer bounds the line).
    pub fn parse_from_server(line: &'a str) -> Result<Message<'a>, ParseError> {
        Message::parse_within(line, MAX_SERVER_TAGS, usize::MAX)
    }

    fn parse_within(
        line: &'a str,
        max_tags: usize,
        max_body: usize,
    ) -> Result<Message<'a>, ParseError> {
        let mut rest = line;
        let mut tags = "";
        if let Some(after) = rest.strip_prefix('@') {
            let (t, r) = split_space(after).unwrap_or((after, ""));
            if t.len() > max_tags {
                return Err(ParseError::TagsTooLong(t.len()));
            }
            tags = t;
            rest = r;
        }
        rest = trim_start_spaces(rest);
        if rest.len() > max_body {
            return Err(ParseError::BodyTooLong(rest.len()));
        }
        let mut source = None;
        if let Some(after) = rest.strip_prefix(':') {
            let (s, r) = split_space(after).unwrap_or((after, ""));
            source = Some(s);
            rest = trim_start_spaces(r);
        }
        let (command, mut rest) = split_space(rest).unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        let numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
        if !numeric && !command.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ParseError::BadCommand);
        }
        let mut params = [""; MAX_PARAMS];
        let mut len = 0;
        loop {
            rest = trim_start_spaces(rest);
            if rest.is_empty() {
                break;
            }
            let Some(slot) = params.get_mut(len) else {
                break;
            };
            len += 1;
            if let Some(trailing) = rest.strip_prefix(':') {
                *slot = trailing;
                break;
            }
            if len == MAX_PARAMS {
                *slot = rest;
                break;
            }
            let (p, r) = split_space(rest).unwrap_or((rest, ""));
            *slot = p;
            rest = r;
        }
        Ok(Message {
            tags,
            source,
            command,
            params,
            len,
        })
    }

    /// Whether the command is `name` (ASCII, without regard to case).
    pub fn is(&self, name: &str) -> bool {
        self.command.eq_ignore_ascii_case(name)
    }

    /// The parameters, in order; the trailing one keeps its spaces.
    pub fn params(&self) -> &[&'a str] {
        self.params.get(..self.len).unwrap_or(&[])
    }

    /// The parameter at `index`, if there is one.
    pub fn param(&self, index: usize) -> Option<&'a str> {
        self.params().get(index).copied()
    }

    /// The tags, in order, with their values unescaped lazily.
    pub fn tags(&self) -> Tags<'a> {
        Tags { rest: self.tags }
    }

    /// The raw value of tag `key` (the first one), escaped as sent; `Some("")` for a tag
    /// without a value.
    pub fn tag(&self, key: &str) -> Option<&'a str> {
        self.tags().find(|t| t.key == key).map(|t| t.raw_value)
    }
}

/// One tag of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The key, with its client-only `+` and vendor prefix, e.g. `+draft/reply`.
    pub key: &'a str,
    /// The value as sent, still escaped; empty for a tag without `=` or with `=` and nothing.
    pub raw_value: &'a str,
}

impl Tag<'_> {
    /// The value with IRCv3 escapes undone (`\:` `;`, `\s` space, `\\` `\`, `\r` CR, `\n`
    /// LF; any other escaped character stands for itself and a lone trailing `\` is dropped).
    pub fn value(&self) -> String {
        unescape_tag_value(self.raw_value)
    }
}

/// Iterator over the tags of a [`Message`]; empty keys (`@;;a`) are skipped.
#[derive(Debug, Clone)]
pub struct Tags<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (tag, rest) = self.rest.split_once(';').unwrap_or((self.rest, ""));
            self.rest = rest;
            let (key, raw_value) = tag.split_once('=').unwrap_or((tag, ""));
            if !key.is_empty() {
                return Some(Tag { key, raw_value });
            }
        }
    }
}

/// Undoes the IRCv3 tag value escapes (see [`Tag::value`]).
pub fn unescape_tag_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Appends `value` escaped for a tag value (the inverse of [`unescape_tag_value`]).
pub fn escape_tag_value(value: &str, out: &mut Vec<u8>) {
    for b in value.bytes() {
        match b {
            b';' => out.extend_from_slice(b"\\:"),
            b' ' => out.extend_from_slice(b"\\s"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::framing::{Frame, LineFramer};
    use proptest::prelude::*;

    fn params(line: &str) -> Vec<&str> {
        Message::parse(line).unwrap().params().to_vec()
    }

    #[test]
    fn parses_the_lines_clients_send() {
        let m = Message::parse("PRIVMSG #chat :hello there, world").unwrap();
        assert!(m.is("privmsg"));
        assert_eq!(m.params(), ["#chat", "hello there, world"]);
        assert_eq!(
            params("USER alice 0 * :Alice Liddell"),
            ["alice", "0", "*", "Alice Liddell"]
        );
        assert_eq!(params("CAP LS 302"), ["LS", "302"]);
        assert_eq!(
            params("CAP REQ :server-time echo-message"),
            ["REQ", "server-time echo-message"]
        );
        assert_eq!(params("NICK alice"), ["alice"]);
        // irssi's probe: JOIN with an empty trailing parameter.
        assert_eq!(params("JOIN :"), [""]);
        assert_eq!(params("QUIT"), Vec::<&str>::new());
        assert_eq!(params("PING  a   b  :c d "), ["a", "b", "c d "]);
        assert_eq!(params("MODE #chat b"), ["#chat", "b"]);
    }

    #[test]
    fn a_source_is_kept_and_skipped() {
        let m = Message::parse(":alice!a@h PRIVMSG bob :hi").unwrap();
        assert_eq!(m.source, Some("alice!a@h"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params(), ["bob", "hi"]);
    }

    #[test]
    fn tags_are_read_and_unescaped() {
        let m = Message::parse("@+draft/reply=a\\sb\\:c;label=x;;flag PRIVMSG #c :t").unwrap();
        let tags: Vec<_> = m.tags().map(|t| (t.key, t.value())).collect();
        assert_eq!(
            tags,
            [
                ("+draft/reply", "a b;c".to_owned()),
                ("label", "x".to_owned()),
                ("flag", String::new())
            ]
        );
        assert_eq!(m.tag("label"), Some("x"));
        assert_eq!(m.tag("flag"), Some(""));
        assert_eq!(m.tag("none"), None);
        assert_eq!(unescape_tag_value("a\\\\b\\r\\n\\x\\"), "a\\b\r\nx");
    }

    #[test]
    fn tag_values_escape_and_unescape() {
        let value = "a; b\\c\r\nd";
        let mut out = Vec::new();
        escape_tag_value(value, &mut out);
        let escaped = String::from_utf8(out).unwrap();
        assert_eq!(escaped, "a\\:\\sb\\\\c\\r\\nd");
        assert_eq!(unescape_tag_value(&escaped), value);
    }

    #[test]
    fn refuses_lines_without_a_good_command() {
        for line in ["", "   ", ":src", ":src   ", "@a=b", "@a=b  "] {
            assert_eq!(Message::parse(line), Err(ParseError::NoCommand), "{line:?}");
        }
        for line in ["PRIV-MSG x", "12 x", "1234", "NICK\u{e9} x", "\u{2}B x"] {
            assert_eq!(
                Message::parse(line),
                Err(ParseError::BadCommand),
                "{line:?}"
            );
        }
        assert!(Message::parse("001 x").is_ok());
    }

    #[test]
    fn the_body_limit_leaves_tags_aside() {
        let body = format!("PRIVMSG #c :{}", "x".repeat(MAX_BODY - 12));
        assert_eq!(body.len(), MAX_BODY);
        assert!(Message::parse(&body).is_ok());
        let over = format!("{body}y");
        assert_eq!(
            Message::parse(&over),
            Err(ParseError::BodyTooLong(MAX_BODY + 1))
        );
        let tagged = format!("@{} {body}", "k=v;".repeat(1000));
        assert!(Message::parse(&tagged).is_ok());
        let fat = format!("@k={} {body}", "v".repeat(MAX_CLIENT_TAGS));
        assert_eq!(
            Message::parse(&fat),
            Err(ParseError::TagsTooLong(MAX_CLIENT_TAGS + 2))
        );
    }

    #[test]
    fn a_fifteenth_parameter_holds_the_rest() {
        let line = format!(
            "CMD {}",
            (1..=17)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let p = params(&line);
        assert_eq!(p.len(), MAX_PARAMS);
        assert_eq!(p[13], "14");
        assert_eq!(p[14], "15 16 17");
    }

    #[test]
    fn lines_fed_one_byte_at_a_time() {
        let wire = b"CAP LS 302\r\nJOIN :\r\nNICK alice\r\nUSER a 0 * :A\r\n@t=1 PRIVMSG #chat :hi there\nPING x\r\n";
        let mut framer = LineFramer::new(MAX_WIRE_LINE);
        let mut got = Vec::new();
        for b in wire {
            let (consumed, frame) = framer.feed(std::slice::from_ref(b));
            assert_eq!(consumed, 1);
            match frame {
                Some(Frame::Line(line)) => {
                    let m = Message::parse(line).unwrap();
                    got.push(format!("{}{:?}", m.command, m.params()));
                }
                Some(other) => panic!("{other:?}"),
                None => {}
            }
        }
        assert_eq!(
            got,
            [
                "CAP[\"LS\", \"302\"]",
                "JOIN[\"\"]",
                "NICK[\"alice\"]",
                "USER[\"a\", \"0\", \"*\", \"A\"]",
                "PRIVMSG[\"#chat\", \"hi there\"]",
                "PING[\"x\"]",
            ]
        );
    }

    #[test]
    fn an_over_long_wire_line_is_too_long_for_the_framer() {
        let mut framer = LineFramer::new(MAX_WIRE_LINE);
        let line = vec![b'x'; MAX_WIRE_LINE + 1];
        assert_eq!(framer.feed(&line).1, Some(Frame::TooLong));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_and_params_come_from_the_line(line in "\\PC{0,600}|[@:; =a-zA-Z0-9\\\\]{0,80}") {
            if let Ok(m) = Message::parse(&line) {
                prop_assert!(m.params().len() <= MAX_PARAMS);
                for p in m.params() {
                    prop_assert!(line.contains(p));
                }
                for t in m.tags() {
                    let _ = t.value();
                }
            }
        }

        #[test]
        fn tag_escaping_round_trips(value in "\\PC{0,40}|[; \\\\\r\na]{0,20}") {
            let mut out = Vec::new();
            escape_tag_value(&value, &mut out);
            let escaped = String::from_utf8(out).unwrap();
            prop_assert!(!escaped.contains([';', ' ', '\r', '\n']));
            prop_assert_eq!(unescape_tag_value(&escaped), value);
        }
    }
}
