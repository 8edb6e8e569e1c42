//! Line mode's view: a stored [`Entry`] (what the shared brain decided to show, from the
//! server or the user's own) becomes one styled line of output in any [`WriteColor`]. Runs of spaces in peer text are shortened to one, so a
//! terminal's own wrapping cannot start a row that looks like a new line; without styles, markup
//! stays visible as typed ([`markup::unstyled`]). This module owns how the chat looks, and it is pure: it never
//! reads a socket or a terminal, never decides whether colors are wanted (the caller hands it a
//! `termcolor::Buffer::ansi()` or `Buffer::no_color()`), and never writes a character a peer
//! sent without passing it through [`sanitize`]. Only [`span_spec`] and the fixed styles below
//! produce style sequences, and every styled run is followed by a reset, so nothing bleeds into
//! the next span or line.
//!
//! The look, one line each:
//! - `<alice> text` a room message; `[private] <alice -> you> text` a private one;
//! - `* bob joined`, `* bob left`, `* bob left (kicked)`;
//! - `-- text` notices (INFO, WAIT, WELCOME, BYE, the client's own);
//! - `! error (code): text` and `! denied: text` in red;
//! - `?? raw line` for a line the client could not parse, sanitized.

use std::borrow::Cow;
use std::io;

use chat_common::markup::{self, Style};
use chat_common::protocol::Color;
use chat_common::sanitize::sanitize;
use termcolor::{ColorSpec, WriteColor};

use crate::core::store::{Entry, Kind};

/// The word shown instead of the user's own name in private messages.
pub const YOU: &str = "you";

/// Maps a chat color to the terminal's color of the same name.
pub fn term_color(color: Color) -> termcolor::Color {
    match color {
        Color::Black => termcolor::Color::Black,
        Color::Red => termcolor::Color::Red,
        Color::Green => termcolor::Color::Green,
        Color::Yellow => termcolor::Color::Yellow,
        Color::Blue => termcolor::Color::Blue,
        Color::Magenta => termcolor::Color::Magenta,
        Color::Cyan => termcolor::Color::Cyan,
        Color::White => termcolor::Color::White,
    }
}

/// The terminal style of one markup span in a message of `color`.
pub fn span_spec(style: Style, color: Option<Color>) -> ColorSpec {
    let mut spec = ColorSpec::new();
    spec.set_fg(color.map(term_color))
        .set_bold(style.bold)
        .set_italic(style.italic)
        .set_strikethrough(style.strike)
        .set_dimmed(style.code);
    spec
}

/// Errors and refusals: red.
fn error_spec() -> ColorSpec {
    let mut spec = ColorSpec::new();
    spec.set_fg(Some(termcolor::Color::Red));
    spec
}

/// The `[private]` tag: bold magenta, so a private line stands out from room chatter.
fn private_spec() -> ColorSpec {
    let mut spec = ColorSpec::new();
    spec.set_fg(Some(termcolor::Color::Magenta)).set_bold(true);
    spec
}

/// Writes `text` in `spec`, then resets; plain text gets no sequence at all.
fn styled<W: WriteColor + ?Sized>(out: &mut W, spec: &ColorSpec, text: &str) -> io::Result<()> {
    if spec.is_none() {
        return out.write_all(text.as_bytes());
    }
    out.set_color(spec)?;
    out.write_all(text.as_bytes())?;
    out.reset()
}

/// Shortens every run of whitespace (any kind: no-break, ideographic, ...) to one space, so
/// padding cannot push the rest of a line onto a row of its own. Borrows when nothing changes.
pub fn shorten_spaces(text: &str) -> Cow<'_, str> {
    let mut previous_space = false;
    let needs = text.chars().any(|c| {
        let space = c.is_whitespace();
        let needs = space && (previous_space || c != ' ');
        previous_space = space;
        needs
    });
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut previous_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !previous_space {
                out.push(' ');
            }
            previous_space = true;
        } else {
            out.push(c);
            previous_space = false;
        }
    }
    Cow::Owned(out)
}

/// Writes peer-controlled text with its control characters removed and its space runs
/// shortened.
fn clean<W: WriteColor + ?Sized>(out: &mut W, text: &str) -> io::Result<()> {
    out.write_all(shorten_spaces(&sanitize(text)).as_bytes())
}

/// Writes message text: sanitized, spaces shortened, then its markup rendered as terminal
/// styles in `color`, or kept visible as typed when the output takes no styles.
pub fn chat_text<W: WriteColor + ?Sized>(
    out: &mut W,
    text: &str,
    color: Option<Color>,
) -> io::Result<()> {
    let text = sanitize(text);
    let text = shorten_spaces(&text);
    if !out.supports_color() {
        return out.write_all(markup::unstyled(&text).as_bytes());
    }
    for span in markup::parse(&text) {
        styled(out, &span_spec(span.style, color), span.text)?;
    }
    Ok(())
}

/// `name`, or [`YOU`] when it is the user's own (names are unique without regard to case).
fn person<'a>(name: &'a str, me: Option<&str>) -> &'a str {
    match me {
        Some(me) if me.eq_ignore_ascii_case(name) => YOU,
        _ => name,
    }
}

/// A whole red line: `! ` then what `body` writes, then a reset before the newline.
fn red_line<W, F>(out: &mut W, body: F) -> io::Result<()>
where
    W: WriteColor + ?Sized,
    F: FnOnce(&mut W) -> io::Result<()>,
{
    out.set_color(&error_spec())?;
    out.write_all(b"! ")?;
    body(out)?;
    out.reset()?;
    out.write_all(b"\n")
}

/// `[private] <from -> to> text`.
fn private_line<W: WriteColor + ?Sized>(
    out: &mut W,
    from: &str,
    to: &str,
    color: Option<Color>,
    text: &str,
) -> io::Result<()> {
    styled(out, &private_spec(), "[private]")?;
    out.write_all(b" <")?;
    clean(out, from)?;
    out.write_all(b" -> ")?;
    clean(out, to)?;
    out.write_all(b"> ")?;
    chat_text(out, text, color)?;
    out.write_all(b"\n")
}

/// Renders one stored entry as one line. `me` is the user's name once known, shown as "you"
/// in privates. The separator between history and live lines has no line of its own here.
pub fn entry<W: WriteColor + ?Sized>(
    out: &mut W,
    entry: &Entry,
    me: Option<&str>,
) -> io::Result<()> {
    if entry.kind == Kind::Separator {
        return Ok(());
    }
    if let Some(stamp) = entry.stamp.as_deref().filter(|_| entry.history) {
        out.write_all(b"[")?;
        clean(out, stamp)?;
        out.write_all(b"] ")?;
    }
    match &entry.kind {
        Kind::Msg { from } => {
            out.write_all(b"<")?;
            clean(out, from)?;
            out.write_all(b"> ")?;
            chat_text(out, &entry.text, entry.color)?;
            out.write_all(b"\n")
        }
        Kind::Private { from, to } => private_line(
            out,
            person(from, me),
            person(to, me),
            entry.color,
            &entry.text,
        ),
        Kind::Act { from } => {
            out.write_all(b"* ")?;
            clean(out, from)?;
            out.write_all(b" ")?;
            chat_text(out, &entry.text, None)?;
            out.write_all(b"\n")
        }
        Kind::Event => {
            out.write_all(b"* ")?;
            clean(out, &entry.text)?;
            out.write_all(b"\n")
        }
        Kind::Rename | Kind::Notice => notice(out, &entry.text),
        Kind::Error => problem(out, &entry.text),
        Kind::Unparsed => unparsed(out, &entry.text),
        Kind::Separator => Ok(()),
    }
}

/// A kept entry that `/search` found, with its time first (`  14:02 <alice> text`; a
/// history line keeps its full time as well), indented under the search's notice.
pub fn found<W: WriteColor + ?Sized>(
    out: &mut W,
    found: &Entry,
    me: Option<&str>,
) -> io::Result<()> {
    out.write_all(b"  ")?;
    clean(out, &found.time)?;
    out.write_all(b" ")?;
    entry(out, found, me)
}

/// The mark before a line that mentions the user or is a private to them, on a terminal with
/// colors (issue 25: a mention stands out in line mode too); nothing without colors, so a
/// pipe or `NO_COLOR` gets the line exactly as before.
pub fn mention_mark<W: WriteColor + ?Sized>(out: &mut W) -> io::Result<()> {
    if !out.supports_color() {
        return Ok(());
    }
    let mut spec = ColorSpec::new();
    spec.set_fg(Some(termcolor::Color::Yellow)).set_bold(true);
    out.set_color(&spec)?;
    out.write_all("▶".as_bytes())?;
    out.reset()?;
    out.write_all(b" ")
}

/// An own line the server could not deliver (`entry.failed`: a private to nobody, a message
/// the room could not keep), as a red line of its own.
pub fn failure<W: WriteColor + ?Sized>(out: &mut W, entry: &Entry) -> io::Result<()> {
    match (&entry.kind, &entry.failed) {
        (Kind::Private { to, .. }, Some(why)) => red_line(out, |out| {
            out.write_all(b"not delivered to ")?;
            clean(out, to)?;
            out.write_all(b": ")?;
            clean(out, why)
        }),
        (_, Some(why)) => red_line(out, |out| {
            out.write_all(b"not delivered: ")?;
            clean(out, why)
        }),
        _ => Ok(()),
    }
}

/// A line from the server that did not parse: shown, sanitized, rather than dropped silently.
pub fn unparsed<W: WriteColor + ?Sized>(out: &mut W, raw: &str) -> io::Result<()> {
    out.write_all(b"?? ")?;
    clean(out, raw)?;
    out.write_all(b"\n")
}

/// A notice from the client or the server: `-- text`.
pub fn notice<W: WriteColor + ?Sized>(out: &mut W, text: &str) -> io::Result<()> {
    out.write_all(b"-- ")?;
    clean(out, text)?;
    out.write_all(b"\n")
}

/// A problem the client itself reports, in red: `! text`.
pub fn problem<W: WriteColor + ?Sized>(out: &mut W, text: &str) -> io::Result<()> {
    red_line(out, |out| clean(out, text))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::core::brain::{Brain, Msg, Now, Settings};
    use crate::net::Incoming;
    use chat_common::protocol::{ErrorCode, LeaveReason};
    use termcolor::Buffer;

    /// A brain as line mode runs it.
    fn brain() -> Brain {
        Brain::new(Settings {
            addr: "127.0.0.1:55555".into(),
            name: None,
            bell: false,
            reconnect: false,
            ask_again: true,
            who_on_join: false,
            keys_help: None,
            hello: false,
            tokens: Vec::new(),
            prefs: crate::config_file::FileConfig::default(),
            log_dir: None,
            coalesce: false,
        })
    }

    fn newest(brain: &Brain) -> u64 {
        brain.store.newest(0).map_or(0, |e| e.id)
    }

    /// What line mode shows of the entries after `seen`.
    fn shown(brain: &Brain, seen: u64) -> (String, String) {
        let me = brain.me().map(str::to_owned);
        both(|b| {
            for e in brain.store.iter().filter(|e| e.id > seen) {
                entry(b, e, me.as_deref())?;
            }
            Ok(())
        })
    }

    /// A brain in the room as `me` (or still logging in without one).
    fn joined(me: Option<&str>) -> Brain {
        let mut brain = brain();
        if let Some(me) = me {
            let welcome = Msg::Line(Incoming::Line(format!("WELCOME {me} 1")));
            brain.update(welcome, &Now::read());
        }
        brain
    }

    const RESET: &str = "\x1b[0m";

    /// Renders into an ANSI buffer and a no-color buffer; returns both as strings.
    fn both<F: FnMut(&mut Buffer) -> io::Result<()>>(mut f: F) -> (String, String) {
        let mut ansi = Buffer::ansi();
        f(&mut ansi).unwrap();
        let mut plain = Buffer::no_color();
        f(&mut plain).unwrap();
        (
            String::from_utf8(ansi.into_inner()).unwrap(),
            String::from_utf8(plain.into_inner()).unwrap(),
        )
    }

    fn msg(line: &str, me: Option<&str>) -> (String, String) {
        let login = ["NAME?", "WAIT", "WELCOME"]
            .iter()
            .any(|p| line.starts_with(p));
        let mut brain = joined(if login { None } else { me });
        let seen = newest(&brain);
        brain.update(Msg::Line(Incoming::Line(line.to_owned())), &Now::read());
        shown(&brain, seen)
    }

    /// The ANSI rendering of one MSG line, checked to hold no sequence but SGR.
    fn ansi(line: &str) -> String {
        let (ansi, _) = msg(line, Some("me"));
        strip_sgr(&ansi);
        ansi
    }

    /// Removes `ESC [ digits/semicolons m` sequences; panics on any other escape, so a test
    /// also proves that no other sequence was written.
    fn strip_sgr(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\x1b' {
                out.push(c);
                continue;
            }
            assert_eq!(chars.next(), Some('['), "only CSI sequences in {s:?}");
            loop {
                match chars.next() {
                    Some('m') => break,
                    Some(d) if d.is_ascii_digit() || d == ';' => {}
                    other => panic!("not an SGR sequence ({other:?}) in {s:?}"),
                }
            }
        }
        out
    }

    #[test]
    fn every_server_message_kind_plain() {
        let cases = [
            ("NAME? choose a name", "-- choose a name\n"),
            (
                "WAIT waiting for the operator to approve bob",
                "-- waiting for approval... (waiting for the operator to approve bob)\n",
            ),
            (
                "WELCOME bob 3",
                "-- you are in as bob; 3 online, you included\n",
            ),
            (
                "WELCOME bob 1",
                "-- you are in as bob; nobody else is here yet\n",
            ),
            ("JOIN carol", "* carol joined\n"),
            ("LEAVE carol left", "* carol left\n"),
            ("LEAVE carol quit", "* carol left (quit)\n"),
            ("LEAVE carol kicked", "* carol left (kicked)\n"),
            ("LEAVE carol dropped", "* carol left (dropped)\n"),
            ("MSG alice - hello there", "<alice> hello there\n"),
            ("MSG alice red hello", "<alice> hello\n"),
            ("PRIV alice bob - psst", "[private] <alice -> you> psst\n"),
            (
                "PRIV alice carol - psst",
                "[private] <alice -> carol> psst\n",
            ),
            ("INFO online (2): alice, bob", "-- online (2): alice, bob\n"),
            (
                "ERROR no-such-user nobody named zed",
                "! error (no-such-user): nobody named zed\n",
            ),
        ];
        for (line, want) in cases {
            let (_, plain) = msg(line, Some("bob"));
            assert_eq!(plain, want, "for {line:?}");
        }
    }

    #[test]
    fn own_name_matches_without_regard_to_case() {
        let (_, plain) = msg("PRIV Alice BOB - hi", Some("bob"));
        assert_eq!(plain, "[private] <Alice -> you> hi\n");
        let (_, plain) = msg("PRIV alice bob - hi", None);
        assert_eq!(plain, "[private] <alice -> bob> hi\n");
    }

    #[test]
    fn every_server_message_kind_ansi() {
        let plain_kinds = [
            "NAME? choose",
            "WAIT wait",
            "WELCOME bob 2",
            "JOIN carol",
            "LEAVE carol kicked",
            "MSG alice - hi",
            "INFO hello",
        ];
        for line in plain_kinds {
            let (ansi, plain) = msg(line, Some("bob"));
            assert_eq!(ansi, plain, "{line:?} has no style");
        }
        let (ansi, _) = msg("ERROR bad-color unknown color", None);
        assert_eq!(
            ansi,
            format!("{RESET}\x1b[31m! error (bad-color): unknown color{RESET}\n")
        );
        let (ansi, _) = msg("PRIV alice bob - hi", Some("bob"));
        assert_eq!(
            ansi,
            format!("{RESET}\x1b[1m\x1b[35m[private]{RESET} <alice -> you> hi\n")
        );
    }

    #[test]
    fn each_color() {
        for (i, color) in Color::ALL.into_iter().enumerate() {
            let got = ansi(&format!("MSG alice {color} hi"));
            assert_eq!(
                got,
                format!("<alice> {RESET}\x1b[3{i}mhi{RESET}\n"),
                "{color}"
            );
        }
    }

    #[test]
    fn each_style() {
        assert_eq!(
            ansi("MSG a - x **b** y"),
            format!("<a> x {RESET}\x1b[1mb{RESET} y\n")
        );
        assert_eq!(
            ansi("MSG a - __i__"),
            format!("<a> {RESET}\x1b[3mi{RESET}\n")
        );
        assert_eq!(
            ansi("MSG a - ~~s~~"),
            format!("<a> {RESET}\x1b[9ms{RESET}\n")
        );
    }

    #[test]
    fn nested_styles_combine_and_reset_between_spans() {
        assert_eq!(
            ansi("MSG a - **b __bi__ b**"),
            format!(
                "<a> {RESET}\x1b[1mb {RESET}{RESET}\x1b[1m\x1b[3mbi{RESET}{RESET}\x1b[1m b{RESET}\n"
            )
        );
        assert_eq!(
            ansi("MSG a - **__~~all~~__**"),
            format!("<a> {RESET}\x1b[1m\x1b[3m\x1b[9mall{RESET}\n")
        );
    }

    #[test]
    fn styles_combine_with_color() {
        assert_eq!(
            ansi("MSG a green x **y** z"),
            format!(
                "<a> {RESET}\x1b[32mx {RESET}{RESET}\x1b[1m\x1b[32my{RESET}{RESET}\x1b[32m z{RESET}\n"
            )
        );
        let (got, _) = msg("PRIV a me blue ~~gone~~", Some("me"));
        assert_eq!(
            got,
            format!(
                "{RESET}\x1b[1m\x1b[35m[private]{RESET} <a -> you> {RESET}\x1b[9m\x1b[34mgone{RESET}\n"
            )
        );
    }

    #[test]
    fn unclosed_markers_stay_literal() {
        assert_eq!(ansi("MSG a - **open"), "<a> **open\n");
        assert_eq!(ansi("MSG a - a __b ~~c"), "<a> a __b ~~c\n");
        assert_eq!(
            ansi("MSG a red **x"),
            format!("<a> {RESET}\x1b[31m**x{RESET}\n")
        );
    }

    #[test]
    fn without_styles_markup_stays_visible_and_spaces_are_shortened() {
        let (_, plain) = msg("MSG a - the meeting is ~~cancelled~~ on", None);
        assert_eq!(plain, "<a> the meeting is ~~cancelled~~ on\n");
        let (_, plain) = msg("MSG a - `2**10` \\*x\\*", None);
        assert_eq!(plain, "<a> `2**10` *x*\n");
        // Issue 11: padding to the terminal's width could forge a row.
        let forged = format!("MSG mallory - ok{}<alice> hi", " ".repeat(68));
        let (ansi, plain) = msg(&forged, None);
        assert_eq!(plain, "<mallory> ok <alice> hi\n");
        assert_eq!(ansi, plain);
        let (_, plain) = msg("INFO a \u{3000}\u{a0}  b", None);
        assert_eq!(plain, "-- a b\n");
    }

    #[test]
    fn no_color_buffer_writes_no_escape_at_all() {
        for line in [
            "MSG a red **__~~x~~__** y",
            "PRIV a b cyan hi",
            "ERROR usage x",
            "DENIED x",
        ] {
            let (_, plain) = msg(line, None);
            assert!(!plain.contains('\x1b'), "{line:?} -> {plain:?}");
        }
    }

    /// Control characters a hostile server might put in any free-text field.
    const HOSTILE: &str =
        "a\x1b[2J\x1b]0;pwned\x07b\u{9b}31mc\u{85}\u{202e}d\u{2066}e\x7f\r\x08f\tg";

    fn assert_harmless(rendered: &str) {
        let text = strip_sgr(rendered);
        let body = text.strip_suffix('\n').unwrap();
        assert!(
            !body.chars().any(chat_common::sanitize::is_forbidden),
            "forbidden char in {rendered:?}"
        );
        assert!(!body.contains('\n'));
    }

    #[test]
    fn hostile_control_characters_never_appear() {
        let lines = [
            format!("NAME? {HOSTILE}"),
            format!("WAIT {HOSTILE}"),
            format!("MSG alice - {HOSTILE}"),
            format!("MSG alice red **{HOSTILE}**"),
            format!("PRIV alice bob green {HOSTILE}"),
            format!("INFO {HOSTILE}"),
            format!("ERROR usage {HOSTILE}"),
        ];
        for line in &lines {
            let (ansi, plain) = msg(line, Some("bob"));
            assert_harmless(&ansi);
            assert_harmless(&plain);
            assert!(plain.contains("]0;pwnedb31mcdef g"), "{plain:?}");
        }
        let (ansi, plain) = both(|b| unparsed(b, &format!("XYZZY {HOSTILE}")));
        assert_harmless(&ansi);
        assert_eq!(plain, "?? XYZZY a[2J]0;pwnedb31mcdef g\n");
        let (ansi, _) = both(|b| notice(b, HOSTILE));
        assert_harmless(&ansi);
        let (ansi, _) = both(|b| problem(b, HOSTILE));
        assert_harmless(&ansi);
    }

    #[test]
    fn own_requests_echo_as_others_see_them() {
        let echo = |line: &str| {
            let mut brain = joined(Some("bob"));
            let seen = newest(&brain);
            let text = line.to_owned();
            let effects = brain.update(
                Msg::Enter {
                    text,
                    confirmed: true,
                },
                &Now::read(),
            );
            assert!(!effects.is_empty(), "{line:?} does something");
            let (ansi, plain) = shown(&brain, seen);
            (!plain.is_empty(), ansi, plain)
        };
        assert_eq!(echo("hello").2, "<bob> hello\n");
        assert_eq!(echo("//slash").2, "<bob> /slash\n");
        assert_eq!(
            echo("/private alice psst").2,
            "[private] <you -> alice> psst\n"
        );
        let (_, ansi, _) = echo("/color red **hi**");
        assert_eq!(ansi, format!("<bob> {RESET}\x1b[1m\x1b[31mhi{RESET}\n"));
        let (_, ansi, plain) = echo("/private alice /color cyan yo");
        assert_eq!(plain, "[private] <you -> alice> yo\n");
        assert!(ansi.ends_with(&format!("{RESET}\x1b[36myo{RESET}\n")));
        for silent in ["/who", "/help", "/leave"] {
            let (wrote, ansi, _) = echo(silent);
            assert!(!wrote && ansi.is_empty(), "{silent}");
        }
    }

    #[test]
    fn unparsed_lines_are_shown() {
        let (ansi, plain) = both(|b| unparsed(b, "HELLO world"));
        assert_eq!(plain, "?? HELLO world\n");
        assert_eq!(ansi, plain);
    }

    #[test]
    fn problems_are_red() {
        let (ansi, plain) = both(|b| problem(b, "oops"));
        assert_eq!(plain, "! oops\n");
        assert_eq!(ansi, format!("{RESET}\x1b[31m! oops{RESET}\n"));
    }

    #[test]
    fn every_leave_reason_and_error_code_renders() {
        for reason in LeaveReason::ALL {
            let (_, plain) = msg(&format!("LEAVE zed {}", reason.as_str()), None);
            assert!(plain.starts_with("* zed left"), "{plain}");
        }
        for code in ErrorCode::ALL {
            let (_, plain) = msg(&format!("ERROR {code} why"), Some("bob"));
            assert_eq!(plain, format!("! error ({code}): why\n"));
        }
    }
}
