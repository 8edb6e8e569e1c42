//! Markup both ways: the room's markup (`crate::markup`) and message color become IRC
//! formatting codes, and an IRC member's formatted text becomes markup and a color.
//!
//! This module owns the mapping and nothing else: it never splits lines (`split`), never
//! encodes a command (`encode`), and never panics on any text.
//!
//! # The mapping
//! | markup | IRC |
//! | --- | --- |
//! | `**bold**` | `0x02` bold |
//! | `__italic__` | `0x1D` italic |
//! | `~~strike~~` | `0x1E` strikethrough |
//! | `` `code` `` | `0x11` monospace |
//! | the message's color | `0x03` with the mIRC number, around the whole text |
//!
//! Strike-through and monospace are the two codes many IRC clients do not render: irssi 1.4
//! shows the code itself, a reverse `^` or `Q` around the words, and weechat before 4.6 shows
//! strike-through's as `^`. So
//! towards IRC they go as codes with [`IrcStyles::All`] (the contract, and the server's
//! default), and with [`IrcStyles::Basic`] as their markup characters, `~~strike~~` and
//! `` `code` ``, which every client shows as typed. Coming from IRC, both codes are always
//! read.
//!
//! The eight colors are mIRC 0 white, 1 black, 2 blue, 3 green, 4 red, 6 magenta, 8 yellow and
//! 10 cyan; coming from IRC, the light variants 9, 11, 12 and 13 count as green, cyan, blue and
//! magenta. A color reaches the room only when it covers the whole visible text (a room
//! message has one color); any other color, backgrounds, hex colors (`0x04`), underline (`0x1F`)
//! and reverse (`0x16`) are removed, as markup has nothing for them. Text from IRC is also
//! sanitized (`crate::sanitize`): no code or control character reaches another member.
//!
//! IRC styles can start and stop anywhere, while markup's markers work only at word edges and
//! never cross. [`irc_to_markup`] therefore writes markers, checks that the markup parses back
//! to exactly the styled text, escapes marker characters when that fixes it, and otherwise
//! keeps the text without styles: the words always arrive, the styles when markup can hold
//! them. For text that came from markup the trip is the identity (a property test below).

use std::borrow::Cow;
use std::collections::HashSet;

use crate::markup::{self, Style};
use crate::protocol::Color;
use crate::sanitize;

/// Toggles bold.
pub const BOLD: char = '\x02';
/// Toggles italics.
pub const ITALIC: char = '\x1D';
/// Toggles strikethrough.
pub const STRIKE: char = '\x1E';
/// Toggles monospace (code).
pub const MONOSPACE: char = '\x11';
/// Sets a color (`0x03` then up to two digits, and `,` and up to two digits for the
/// background), or resets it when no digit follows.
pub const COLOR: char = '\x03';
/// Sets a hex color (`0x04` then six hex digits, optional `,` and six more); removed.
pub const HEX_COLOR: char = '\x04';
/// Toggles reverse video; removed.
pub const REVERSE: char = '\x16';
/// Toggles underline; removed.
pub const UNDERLINE: char = '\x1F';
/// Resets every style and color.
pub const RESET: char = '\x0F';

/// Which of markup's styles reach IRC members as formatting codes (see the module's mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IrcStyles {
    /// Every style as its code (clients that render `0x1E` and `0x11`: HexChat, TheLounge,
    /// weechat 4.6 and later).
    #[default]
    All,
    /// Bold, italic and the color as codes; strike-through and code as their markup
    /// characters (`~~`, `` ` ``), which every client shows as typed.
    Basic,
}

/// The mIRC color number written for `color`.
pub fn mirc_number(color: Color) -> u8 {
    match color {
        Color::White => 0,
        Color::Black => 1,
        Color::Blue => 2,
        Color::Green => 3,
        Color::Red => 4,
        Color::Magenta => 6,
        Color::Yellow => 8,
        Color::Cyan => 10,
    }
}

/// The room color for mIRC color `number`, if it is one of the eight (or a light variant).
pub fn color_from_mirc(number: u8) -> Option<Color> {
    Some(match number {
        0 => Color::White,
        1 => Color::Black,
        2 | 12 => Color::Blue,
        3 | 9 => Color::Green,
        4 => Color::Red,
        6 | 13 => Color::Magenta,
        8 => Color::Yellow,
        10 | 11 => Color::Cyan,
        _ => return None,
    })
}

/// The state of IRC formatting at some point of a line: the four styles markup knows and the
/// foreground color (mIRC number), which is what [`crate::irc::split`] must reopen on a new line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IrcState {
    /// Bold, italic, strike and code (monospace).
    pub style: Style,
    /// The foreground color's mIRC number, when one is set.
    pub color: Option<u8>,
}

/// One piece of IRC text: a formatting code (with its digits) or one character of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// A formatting code, `len` bytes long, applied to the state.
    Code {
        /// Bytes the code takes, digits included.
        len: usize,
    },
    /// One character of text.
    Char(char),
}

/// Walks IRC text token by token, tracking the formatting state.
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    rest: &'a str,
    /// The state after the tokens returned so far.
    pub state: IrcState,
}

impl<'a> Tokens<'a> {
    /// Starts at the beginning of `text` with no formatting on.
    pub fn new(text: &'a str) -> Self {
        Tokens {
            rest: text,
            state: IrcState::default(),
        }
    }
}

/// Counts up to `max` leading bytes of `s` for which `accept` holds.
fn leading(s: &str, max: usize, accept: impl Fn(u8) -> bool) -> usize {
    s.bytes().take(max).take_while(|&b| accept(b)).count()
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let c = self.rest.chars().next()?;
        let after = self.rest.get(c.len_utf8()..).unwrap_or("");
        let mut len = c.len_utf8();
        let state = &mut self.state;
        match c {
            BOLD => state.style.bold = !state.style.bold,
            ITALIC => state.style.italic = !state.style.italic,
            STRIKE => state.style.strike = !state.style.strike,
            MONOSPACE => state.style.code = !state.style.code,
            REVERSE | UNDERLINE => {}
            RESET => *state = IrcState::default(),
            COLOR => {
                let fg = leading(after, 2, |b| b.is_ascii_digit());
                if fg == 0 {
                    state.color = None;
                } else {
                    state.color = after.get(..fg).and_then(|d| d.parse::<u8>().ok());
                    if state.color == Some(99) {
                        state.color = None;
                    }
                    len += fg;
                    let rest = after.get(fg..).unwrap_or("");
                    if let Some(bg) = rest.strip_prefix(',') {
                        let digits = leading(bg, 2, |b| b.is_ascii_digit());
                        if digits > 0 {
                            len += 1 + digits;
                        }
                    }
                }
            }
            HEX_COLOR => {
                let fg = leading(after, 6, |b| b.is_ascii_hexdigit());
                if fg == 6 {
                    len += fg;
                    let rest = after.get(fg..).unwrap_or("");
                    if let Some(bg) = rest.strip_prefix(',') {
                        if leading(bg, 6, |b| b.is_ascii_hexdigit()) == 6 {
                            len += 7;
                        }
                    }
                }
            }
            c => {
                self.rest = after;
                return Some(Token::Char(c));
            }
        }
        self.rest = self.rest.get(len..).unwrap_or("");
        Some(Token::Code { len })
    }
}

/// Appends the codes that turn formatting `state` on from nothing (color first).
pub fn push_state(state: IrcState, out: &mut String) {
    if let Some(n) = state.color {
        push_color(n, out);
    }
    push_toggles(Style::default(), state.style, out);
}

fn push_color(n: u8, out: &mut String) {
    out.push(COLOR);
    out.push(char::from(b'0' + (n / 10) % 10));
    out.push(char::from(b'0' + n % 10));
}

/// Appends the toggles that change `from` into `to`.
fn push_toggles(from: Style, to: Style, out: &mut String) {
    for (a, b, code) in [
        (from.bold, to.bold, BOLD),
        (from.italic, to.italic, ITALIC),
        (from.strike, to.strike, STRIKE),
        (from.code, to.code, MONOSPACE),
    ] {
        if a != b {
            out.push(code);
        }
    }
}

/// Whether text that follows a color code would be read as a background (`,` then a digit).
pub fn looks_like_background(text: &str) -> bool {
    let b = text.as_bytes();
    b.first() == Some(&b',') && b.get(1).is_some_and(u8::is_ascii_digit)
}

/// Appends message `text` (markup, already sanitized) in `color` as IRC formatted text, its
/// styles written as `styles` says.
pub fn markup_to_irc(text: &str, color: Option<Color>, styles: IrcStyles, out: &mut String) {
    if let Some(color) = color {
        push_color(mirc_number(color), out);
    }
    if markup::is_plain(text) {
        // One unstyled span, as `markup::parse` would give, without parsing.
        if color.is_some() && looks_like_background(text) {
            out.push(BOLD);
            out.push(BOLD);
        }
        out.push_str(text);
        return;
    }
    let spans = markup::parse(text);
    let mut style = Style::default();
    let start = out.len();
    for span in &spans {
        push_styles(style, span.style, styles, out);
        style = span.style;
        if color.is_some() && out.len() == start && looks_like_background(span.text) {
            // An empty bold pair ends the color code before a `,5` of the text.
            out.push(BOLD);
            out.push(BOLD);
        }
        out.push_str(span.text);
    }
    // Codes end with the line; markup characters are closed.
    if styles == IrcStyles::Basic {
        let closed = Style {
            bold: style.bold,
            italic: style.italic,
            ..Style::default()
        };
        push_styles(style, closed, styles, out);
    }
}

/// Appends what changes markup style `from` into `to`: codes, or with [`IrcStyles::Basic`] the
/// markup characters of strike-through and code (closers first, innermost first, so that
/// nested markers read as markup would write them).
fn push_styles(from: Style, to: Style, styles: IrcStyles, out: &mut String) {
    let marks = styles == IrcStyles::Basic;
    let changes = [
        (from.bold, to.bold, BOLD, None),
        (from.italic, to.italic, ITALIC, None),
        (from.strike, to.strike, STRIKE, Some("~~")),
        (from.code, to.code, MONOSPACE, Some("`")),
    ];
    let mut push = |code: char, mark: Option<&str>| match mark.filter(|_| marks) {
        Some(mark) => out.push_str(mark),
        None => out.push(code),
    };
    for &(was, is, code, mark) in changes.iter().rev() {
        if was && !is {
            push(code, mark);
        }
    }
    for &(was, is, code, mark) in &changes {
        if is && !was {
            push(code, mark);
        }
    }
}

/// An IRC member's text as the room takes it: markup and the color of the whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromIrc<'a> {
    /// Markup text, sanitized; empty when the line held nothing visible. Plain words are
    /// borrowed from the IRC text as they are (the usual line costs no copy).
    pub text: Cow<'a, str>,
    /// The message color, when one of the eight covered the whole visible text.
    pub color: Option<Color>,
}

/// Styled runs of visible, sanitized text; adjacent runs of one style merged.
fn runs(text: &str) -> (Vec<(String, Style)>, Option<Color>) {
    let mut runs: Vec<(String, Style)> = Vec::new();
    let mut tokens = Tokens::new(text);
    // The one color of every visible character so far: None before the first one.
    let mut color: Option<Option<u8>> = None;
    let mut uniform = true;
    while let Some(token) = tokens.next() {
        let Token::Char(c) = token else { continue };
        let c = if c == '\t' { ' ' } else { c };
        if sanitize::is_forbidden(c) {
            continue;
        }
        match color {
            None => color = Some(tokens.state.color),
            Some(seen) => uniform &= seen == tokens.state.color,
        }
        let style = tokens.state.style;
        match runs.last_mut() {
            Some((s, st)) if *st == style => s.push(c),
            _ => runs.push((c.to_string(), style)),
        }
    }
    let color = color
        .flatten()
        .filter(|_| uniform)
        .and_then(color_from_mirc);
    (runs, color)
}

/// Characters that can mean markup.
fn is_special(c: char) -> bool {
    matches!(c, '\\' | '*' | '_' | '~' | '`')
}

/// Where a byte of candidate markup came from: the text of run `.0` at byte `.1`, or (`None`)
/// markup this module wrote.
type Origin = Option<(usize, usize)>;

/// Which text characters get a backslash: all special ones, or those found to need one.
#[derive(Debug, Clone, Copy)]
enum Escapes<'a> {
    All,
    Some(&'a HashSet<(usize, usize)>),
}

/// Markup for `runs`: markers nest (a marker closed under another closes that one first and
/// reopens it), code is fenced by one backtick more than its longest run of backticks. Returns
/// the markup and the origin of each of its bytes.
fn write_markup(
    runs: &[(String, Style)],
    styled: bool,
    escapes: Escapes<'_>,
) -> (String, Vec<Origin>) {
    let mut out = String::new();
    let mut origin: Vec<Origin> = Vec::new();
    let ours = |out: &mut String, origin: &mut Vec<Origin>, s: &str| {
        out.push_str(s);
        origin.resize(out.len(), None);
    };
    let text = |out: &mut String, origin: &mut Vec<Origin>, run: usize, text: &str| {
        for (at, c) in text.char_indices() {
            let escape = is_special(c)
                && match escapes {
                    Escapes::All => true,
                    Escapes::Some(set) => set.contains(&(run, at)),
                };
            if escape {
                out.push('\\');
                origin.push(None);
            }
            out.push(c);
            origin.resize(out.len(), Some((run, at)));
        }
    };
    // Open markers, innermost last.
    let mut open: Vec<markup::Marker> = Vec::new();
    let on = |m: markup::Marker, s: Style| match m {
        markup::Marker::Bold => s.bold,
        markup::Marker::Italic => s.italic,
        markup::Marker::Strike => s.strike,
    };
    for (index, (t, style)) in runs.iter().enumerate() {
        if !styled {
            text(&mut out, &mut origin, index, t);
            continue;
        }
        if let Some(deepest) = open.iter().position(|&m| !on(m, *style)) {
            let closed: Vec<_> = open.drain(deepest..).collect();
            for m in closed.iter().rev() {
                ours(&mut out, &mut origin, m.token());
            }
            for &m in closed.iter().filter(|&&m| on(m, *style)) {
                ours(&mut out, &mut origin, m.token());
                open.push(m);
            }
        }
        for m in [
            markup::Marker::Bold,
            markup::Marker::Italic,
            markup::Marker::Strike,
        ] {
            if on(m, *style) && !open.contains(&m) {
                ours(&mut out, &mut origin, m.token());
                open.push(m);
            }
        }
        if style.code {
            let mut longest = 0;
            let mut run = 0;
            for c in t.chars() {
                run = if c == '`' { run + 1 } else { 0 };
                longest = longest.max(run);
            }
            let fence = "`".repeat(longest + 1);
            ours(&mut out, &mut origin, &fence);
            ours(&mut out, &mut origin, t);
            ours(&mut out, &mut origin, &fence);
        } else {
            text(&mut out, &mut origin, index, t);
        }
    }
    for m in open.iter().rev() {
        ours(&mut out, &mut origin, m.token());
    }
    (out, origin)
}

/// Most rounds of escaping what the parser took for markup before giving up on minimal
/// escaping (each round escapes at least one more character, and one round is the rule).
const ESCAPE_ROUNDS: usize = 8;

/// How far `candidate` parses as `runs` (text and styles; where spans meet does not matter):
/// `None` when it parses to exactly `runs`, else the index of the first character that differs.
fn mismatch(candidate: &str, runs: &[(String, Style)]) -> Option<usize> {
    let mut want = runs
        .iter()
        .flat_map(|(t, s)| t.chars().map(move |c| (c, *s)));
    let spans = markup::parse(candidate);
    let mut got = spans
        .iter()
        .flat_map(|span| span.text.chars().map(move |c| (c, span.style)));
    let mut at = 0;
    loop {
        match (want.next(), got.next()) {
            (None, None) => return None,
            (a, b) if a == b => at += 1,
            _ => return Some(at),
        }
    }
}

/// Text characters the parser took for markers, code fences or escapes in `candidate`: each
/// needs a backslash.
fn taken_for_markup(candidate: &str, origin: &[Origin]) -> Vec<(usize, usize)> {
    markup::parse_detailed(candidate)
        .removed
        .into_iter()
        .flat_map(|(range, _)| origin.get(range).unwrap_or(&[]).iter().flatten().copied())
        .collect()
}

/// Text characters that touch a marker or code fence this module wrote and repeat its
/// character (a text `` ` `` before a fence makes it two backticks, a text `*` after `**` a run
/// of three): the parser then reads our markup otherwise without taking any text character
/// for markup. Some of them need a backslash; which ones depends on the rest (a backslash
/// before an opening marker stops it from opening), so they are tried one at a time.
fn touching_ours(candidate: &str, origin: &[Origin]) -> Vec<(usize, usize)> {
    let bytes = candidate.as_bytes();
    let mut found = Vec::new();
    for (at, &b) in bytes.iter().enumerate() {
        let ours = origin.get(at).is_some_and(Option::is_none);
        if !ours || !matches!(b, b'*' | b'_' | b'~' | b'`') {
            continue;
        }
        for next in [at.checked_sub(1), at.checked_add(1)].into_iter().flatten() {
            if bytes.get(next) == Some(&b) {
                if let Some(Some(o)) = origin.get(next) {
                    if !found.contains(o) {
                        found.push(*o);
                    }
                }
            }
        }
    }
    found
}

/// Markup for `runs` with as few backslashes as it takes, when there is such markup. Each
/// round escapes what made the last candidate parse otherwise, choosing among: every text
/// character the parser took for markup at once, or any one of those or of the text characters
/// that touch our own markup. The first choice that parses right wins; else the one that parses
/// right the furthest (an escape can also break markup: a backslash after a closing marker
/// stops it from closing, so escaping all suspects is not always right).
fn minimal_markup(runs: &[(String, Style)], styled: bool) -> Option<String> {
    let target: Vec<(String, Style)>;
    let check = if styled {
        runs
    } else {
        target = vec![(
            runs.iter().map(|(t, _)| t.as_str()).collect(),
            Style::default(),
        )];
        &target
    };
    let mut escapes: HashSet<(usize, usize)> = HashSet::new();
    let mut budget = MAX_ATTEMPTS;
    for _ in 0..ESCAPE_ROUNDS {
        if budget == 0 {
            break;
        }
        budget -= 1;
        let (candidate, origin) = write_markup(runs, styled, Escapes::Some(&escapes));
        if mismatch(&candidate, check).is_none() {
            return Some(candidate);
        }
        let taken = taken_for_markup(&candidate, &origin);
        let mut singles = taken.clone();
        singles.extend(touching_ours(&candidate, &origin));
        let mut choices: Vec<Vec<(usize, usize)>> = Vec::new();
        if taken.len() > 1 {
            choices.push(taken);
        }
        let mut seen = HashSet::new();
        choices.extend(
            singles
                .into_iter()
                .filter(|c| !escapes.contains(c) && seen.insert(*c))
                .take(MAX_TRIES)
                .map(|c| vec![c]),
        );
        let mut best: Option<(usize, usize)> = None;
        for (index, choice) in choices.iter().enumerate() {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let mut with = escapes.clone();
            with.extend(choice.iter().copied());
            if with.len() == escapes.len() {
                continue;
            }
            let (tried, _) = write_markup(runs, styled, Escapes::Some(&with));
            match mismatch(&tried, check) {
                None => return Some(tried),
                Some(at) if best.is_none_or(|(_, b)| at > b) => best = Some((index, at)),
                Some(_) => {}
            }
        }
        match best.and_then(|(index, _)| choices.get(index)) {
            Some(choice) => escapes.extend(choice.iter().copied()),
            None => break,
        }
    }
    // Next to our own markers an escape can be what separates them from the text's: escape
    // every special character of the text.
    let (candidate, _) = write_markup(runs, styled, Escapes::All);
    (styled && mismatch(&candidate, runs).is_none()).then_some(candidate)
}

/// Most single escapes tried in one round of [`minimal_markup`].
const MAX_TRIES: usize = 16;

/// Most candidates [`minimal_markup`] writes and parses for one line, over all its rounds (a
/// 510-byte line takes about 40 us each): bounds what a line full of marker characters costs
/// the server (then every special character is escaped, or the styles dropped).
const MAX_ATTEMPTS: usize = 12;

/// An IRC member's formatted `text` as markup and a color (see the module's rules).
pub fn irc_to_markup(text: &str) -> FromIrc<'_> {
    // The common case, plain words: no code, no control character, nothing markup reads.
    // Printable ASCII is told byte by byte; other text char by char.
    let plain_ascii = |b: u8| (b' '..=b'~').contains(&b) && !is_special(char::from(b));
    if text.bytes().all(plain_ascii)
        || !text
            .chars()
            .any(|c| is_special(c) || sanitize::is_forbidden(c))
    {
        return FromIrc {
            text: Cow::Borrowed(text),
            color: None,
        };
    }
    let (runs, color) = runs(text);
    let styled_at_all = runs.iter().any(|(_, s)| *s != Style::default());
    let text = styled_at_all
        .then(|| minimal_markup(&runs, true))
        .flatten()
        .or_else(|| minimal_markup(&runs, false))
        // Every special character escaped: always plain text (never reached in practice).
        .unwrap_or_else(|| write_markup(&runs, false, Escapes::All).0);
    FromIrc {
        text: Cow::Owned(text),
        color,
    }
}

/// The visible text of IRC formatted `text`, every code removed (not sanitized).
pub fn strip_codes(text: &str) -> String {
    Tokens::new(text)
        .filter_map(|t| match t {
            Token::Char(c) => Some(c),
            Token::Code { .. } => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every style as its code: what the round trip's identity is about.
    fn to_irc(text: &str, color: Option<Color>) -> String {
        let mut out = String::new();
        markup_to_irc(text, color, IrcStyles::All, &mut out);
        out
    }

    fn to_basic_irc(text: &str, color: Option<Color>) -> String {
        let mut out = String::new();
        markup_to_irc(text, color, IrcStyles::Basic, &mut out);
        out
    }

    fn from_irc(text: &str) -> (String, Option<Color>) {
        let f = irc_to_markup(text);
        (f.text.into_owned(), f.color)
    }

    /// The styled text a markup line shows: (char, style) pairs.
    fn shown(text: &str) -> Vec<(char, Style)> {
        markup::parse(text)
            .iter()
            .flat_map(|s| s.text.chars().map(move |c| (c, s.style)))
            .collect()
    }

    #[test]
    fn markup_becomes_codes() {
        assert_eq!(to_irc("plain", None), "plain");
        assert_eq!(
            to_irc("**b** __i__ ~~s~~ `c`", None),
            "\x02b\x02 \x1di\x1d \x1es\x1e \x11c"
        );
        assert_eq!(to_irc("**bold __both__**", None), "\x02bold \x1dboth");
        assert_eq!(to_irc("hi", Some(Color::Red)), "\x0304hi");
        assert_eq!(to_irc("5 apples", Some(Color::Cyan)), "\x03105 apples");
        // A leading ",5" is not read as a background.
        assert_eq!(to_irc(",5", Some(Color::Blue)), "\x0302\x02\x02,5");
        assert_eq!(to_irc("2**10", None), "2**10");
    }

    #[test]
    fn basic_styles_write_strike_and_code_as_markup() {
        assert_eq!(
            to_basic_irc("**b** __i__ ~~s~~ `c`", None),
            "\x02b\x02 \x1di\x1d ~~s~~ `c`"
        );
        // Nested markers close innermost first; bold and italic stay codes around them.
        assert_eq!(
            to_basic_irc("**~~`x`~~** y", Some(Color::Red)),
            "\x0304\x02~~`x`~~\x02 y"
        );
        assert_eq!(to_basic_irc("a ~~gone~~", None), "a ~~gone~~");
        assert_eq!(to_basic_irc("plain", None), "plain");
        // Read back, the characters are an IRC member's own: literal, not styles.
        assert_eq!(from_irc("a ~~gone~~").0, "a \\~\\~gone\\~\\~");
    }

    #[test]
    fn codes_become_markup() {
        assert_eq!(from_irc("plain"), ("plain".into(), None));
        assert_eq!(
            from_irc("\x02bold\x02 text"),
            ("**bold** text".into(), None)
        );
        assert_eq!(
            from_irc("\x1dit\x0f \x1estruck"),
            ("__it__ ~~struck~~".into(), None)
        );
        assert_eq!(
            from_irc("run \x11ls -l\x11 now"),
            ("run `ls -l` now".into(), None)
        );
        assert_eq!(
            from_irc("\x0304red text"),
            ("red text".into(), Some(Color::Red))
        );
        assert_eq!(
            from_irc("\x0312,01light blue"),
            ("light blue".into(), Some(Color::Blue))
        );
        // Partial, unknown and hex colors are removed; the words stay.
        assert_eq!(
            from_irc("a \x0304red\x03 word"),
            ("a red word".into(), None)
        );
        assert_eq!(from_irc("\x0307orange"), ("orange".into(), None));
        assert_eq!(from_irc("\x04ff0000hex\x04"), ("hex".into(), None));
        // Underline and reverse are removed.
        assert_eq!(from_irc("\x1fund\x1f \x16rev"), ("und rev".into(), None));
    }

    #[test]
    fn literal_markers_from_irc_stay_literal() {
        assert_eq!(
            from_irc("2**10 and __init__.py"),
            ("2**10 and __init__.py".into(), None)
        );
        assert_eq!(
            from_irc("**not bold** 2**10"),
            ("\\*\\*not bold\\*\\* 2**10".into(), None)
        );
        assert_eq!(from_irc("\x02**\x02"), ("**\\*\\***".into(), None));
        assert_eq!(
            from_irc("a `b` c\\*d*"),
            ("a \\`b\\` c\\\\*d*".into(), None)
        );
    }

    #[test]
    fn styles_markup_cannot_hold_are_dropped_not_the_words() {
        // Bold in the middle of a word: markers would not work there.
        assert_eq!(from_irc("a\x02b\x02c"), ("abc".into(), None));
        // Italic that starts at a space cannot be written as markup.
        assert_eq!(from_irc("\x02a \x1db\x02 c\x1d"), ("a b c".into(), None));
        // Styles that close in another order than they opened are nested.
        assert_eq!(
            from_irc("\x02a \x1db\x02\x1d \x1dc\x1d"),
            ("**a __b__** __c__".into(), None)
        );
    }

    #[test]
    fn controls_and_bidi_from_irc_are_removed() {
        assert_eq!(
            from_irc("a\x07b\x1b[31mc\u{202e}d\te"),
            ("ab[31mcd e".into(), None)
        );
        assert_eq!(from_irc("\x01ACTION x\x01"), ("ACTION x".into(), None));
    }

    #[test]
    fn tokens_know_where_codes_end() {
        let text = "\x0304,12a\x03b\x039c\x04abcdefd";
        let tokens: Vec<_> = Tokens::new(text).collect();
        assert_eq!(
            tokens,
            [
                Token::Code { len: 6 },
                Token::Char('a'),
                Token::Code { len: 1 },
                Token::Char('b'),
                Token::Code { len: 2 },
                Token::Char('c'),
                Token::Code { len: 7 },
                Token::Char('d'),
            ]
        );
        assert_eq!(strip_codes(text), "abcd");
    }

    /// Cases the round-trip property found (see `markup_round_trips_through_irc`): each must
    /// come back from IRC as it went, styles and all.
    #[test]
    fn round_trip_regressions() {
        for markup in [
            // Strike over a lone `*`, an escaped backtick, a code span of a space: the text's
            // backtick ran into the code fence and made it two (2026-12-06).
            "~~*~~* \\`` `",
            // Bold over an escaped `*` after a literal one: the literal one must stay bare, as
            // part of the run of three whose last two open the bold.
            "***\\*** ",
            // Strike over a backtick, then a backtick: escaping both stops the strike from
            // closing (a backslash after a closer); only the first may be.
            "~~\\`~~`",
        ] {
            let irc = to_irc(markup, None);
            let back = irc_to_markup(&irc).text.into_owned();
            assert_eq!(
                shown(&back),
                shown(markup),
                "{markup:?} -> {irc:?} -> {back:?}"
            );
        }
    }

    /// Markup-ish text: marker characters, spaces, punctuation, letters, multi-byte characters.
    fn markupish() -> impl Strategy<Value = String> {
        "[*_~` \\\\.,(a-c\u{e9}\u{4e16}5]{0,48}"
    }

    fn any_color() -> impl Strategy<Value = Option<Color>> {
        proptest::option::of(proptest::sample::select(Color::ALL.to_vec()))
    }

    /// The property's cases: `PROPTEST_CASES` when set (a long run to be sure, say 200000),
    /// else 2048 per run, each run with a random seed.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2048)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: cases(),
            ..ProptestConfig::default()
        })]

        /// Markup -> IRC -> markup is the identity for what IRC can carry: the text, its four
        /// styles and the message's color.
        #[test]
        fn markup_round_trips_through_irc(text in markupish(), color in any_color()) {
            let clean = sanitize::sanitize(&text).into_owned();
            let irc = to_irc(&clean, color);
            let back = irc_to_markup(&irc);
            prop_assert_eq!(shown(&back.text), shown(&clean), "irc {:?} back {:?}", irc, back.text);
            let visible = !shown(&clean).is_empty();
            prop_assert_eq!(back.color, color.filter(|_| visible));
        }

        /// Whatever an IRC peer sends keeps its words, and no control character survives.
        #[test]
        fn irc_text_keeps_its_words(text in "[\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f0-9,a-c *_~`\\\\\u{202e}]{0,48}") {
            let back = irc_to_markup(&text);
            prop_assert!(!back.text.chars().any(sanitize::is_forbidden));
            let words: String = runs(&text).0.iter().map(|(t, _)| t.as_str()).collect();
            let got: String = shown(&back.text).iter().map(|(c, _)| *c).collect();
            prop_assert_eq!(got, words);
        }
    }
}
