//! Fuzz target for everything an IRC peer sends: `chat_common::irc`.
//!
//! The input is a byte stream cut into lines by the framer with the IRC limit, as the server
//! reads a connection. Properties: a parsed line has at most 15 parameters, a body within the
//! limit and parameters that are slices of the line; the registration machine takes any line
//! in any order and every reply it writes is whole lines (CR LF at the end, no CR, LF or NUL
//! inside); the text of every line, read as a member's formatted text, becomes markup with no
//! forbidden character and the same words; written back as IRC and cut into pieces, the pieces
//! fit their budget, are whole lines and lose no character.
#![no_main]

use chat_common::framing::{Frame, LineFramer};
use chat_common::irc::caps::CapSet;
use chat_common::irc::encode::TextLines;
use chat_common::irc::format::{irc_to_markup, markup_to_irc, strip_codes, IrcStyles};
use chat_common::irc::registration::Registration;
use chat_common::irc::{Message, ParseError, MAX_BODY, MAX_PARAMS, MAX_WIRE_LINE};
use chat_common::markup;
use chat_common::protocol::Color;
use chat_common::sanitize::is_forbidden;
use libfuzzer_sys::fuzz_target;

/// Every reply is whole lines: each ends in CR LF and holds no other CR, LF or NUL.
fn whole_lines(out: &[u8]) {
    assert!(out.is_empty() || out.ends_with(b"\r\n"), "{out:?}");
    for line in out.split(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(!body.iter().any(|&b| matches!(b, b'\r' | b'\0')), "{out:?}");
    }
}

fn check_text(text: &str) {
    let from = irc_to_markup(text);
    assert!(!from.text.chars().any(is_forbidden), "{:?}", from.text);
    let words: String = strip_codes(text)
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|&c| !is_forbidden(c))
        .collect();
    let shown: String = markup::parse(&from.text).iter().map(|s| s.text).collect();
    assert_eq!(shown, words, "words changed: {text:?} -> {:?}", from.text);

    let mut irc = String::new();
    markup_to_irc(
        &from.text,
        from.color.or(Some(Color::Red)),
        IrcStyles::All,
        &mut irc,
    );
    let frame = TextLines {
        source: "nick!nick@127.0.0.1",
        command: "PRIVMSG",
        target: "#chat",
        action: text.len() % 2 == 0,
    };
    let mut out = Vec::new();
    let n = frame.push(&[], &[], &irc, &mut out);
    whole_lines(&out);
    let wire = String::from_utf8(out).expect("pieces are cut between characters");
    let mut joined = String::new();
    for line in wire.split_terminator("\r\n") {
        assert!(line.len() <= MAX_BODY, "{} bytes", line.len());
        let m = Message::parse(line).expect("a piece parses");
        let t = m.param(1).unwrap_or("");
        let t = t.strip_prefix("\u{1}ACTION ").unwrap_or(t);
        let t = t.strip_suffix('\u{1}').unwrap_or(t);
        joined.push_str(&strip_codes(t));
    }
    assert_eq!(n, wire.split_terminator("\r\n").count());
    assert_eq!(joined, strip_codes(&irc), "pieces lost text");
}

fuzz_target!(|data: &[u8]| {
    let mut framer = LineFramer::new(MAX_WIRE_LINE);
    let mut reg = Registration::new("chat.test", CapSet::all());
    let mut rest = data;
    while !rest.is_empty() {
        let (consumed, frame) = framer.feed(rest);
        rest = rest.get(consumed..).unwrap_or(&[]);
        let Some(Frame::Line(line)) = frame else {
            continue;
        };
        match Message::parse(line) {
            Ok(m) => {
                assert!(m.params().len() <= MAX_PARAMS);
                let start = line.as_ptr() as usize;
                for p in m.params() {
                    let at = p.as_ptr() as usize;
                    assert!(at >= start && at + p.len() <= start + line.len());
                }
                let mut out = Vec::new();
                let _ = reg.handle(&m, &mut out);
                if m.is("NICK") || m.is("USER") {
                    reg.nick_refused();
                }
                whole_lines(&out);
                if let Some(text) = m.param(1) {
                    check_text(text);
                }
            }
            Err(ParseError::BodyTooLong(n)) => assert!(n > MAX_BODY),
            Err(_) => {}
        }
    }
});
