//! Markup parsing: message text with `**bold**`, `__italic__`, `~~strike~~` and `` `code` `` becomes
//! a list of styled [`Span`]s that borrow from the text, and [`unstyled`] gives the text as a
//! reader without styles should see it. This module owns the markup rules below and nothing
//! else: it never renders, never touches a terminal or writes an escape sequence (the client maps
//! [`Style`] to terminal attributes), and never panics, whatever a peer sent.
//!
//! # Rules
//! - **Code.** A run of one or more backticks opens a code span that ends at the next run of
//!   exactly as many backticks. Everything between is literal: no marker and no backslash
//!   means anything inside, so `` `__init__.py` `` and `` `2**10` `` show as typed. A run with no
//!   such closer is literal text.
//! - **Escapes.** Outside code, a backslash before one of `` \ * _ ~ ` `` is dropped and keeps
//!   that character literal: `\*\*not bold\*\*`. Any other backslash is an ordinary character,
//!   so `C:\Users` needs no escaping.
//! - **Markers.** A *marker run* is a maximal run of one of the characters `*`, `_` or `~`
//!   (escaped characters end a run). A run of exactly two is a marker: `**` bold, `__` italic,
//!   `~~` strike. A run of three is a marker plus one literal character on the outside: the
//!   marker is the last two characters when it opens and the first two when it closes, so
//!   `***bold***` is `*`, bold `bold`, `*`. Runs of one, or of four or more, are literal.
//! - **Markers work at the edges of words only.** A run can open when the character after it is
//!   not whitespace and, looking back over opening punctuation (`( [ { " '`) and other marker
//!   characters, it starts a word (text start or whitespace before). A run can close when the
//!   character before it is not whitespace and, looking ahead over closing punctuation
//!   (`. , ; : ! ? ) ] } " '`) and marker characters, it ends a word. So `2**10 and 3**4`,
//!   `snake__case__name` and `__init__.py` are literal, while `**bold**,` and `(~~gone~~)` work.
//! - An opening run matches the nearest following run of the same kind that can close, inside
//!   the range being parsed, and the text between them is parsed the same way with that
//!   attribute added. A run with no such closer stays literal. Ranges therefore never cross: in
//!   `**a __b** c__` the bold range is `a __b`, where `__` has no closer and stays literal. A run
//!   of a kind that is already on inside its range is literal.
//! - No span is empty, and adjacent spans with the same style are merged when they touch in the
//!   text. Spans borrow from the text, so two spans separated only by removed bytes (markers,
//!   code delimiters, escaping backslashes) can share a style.
//! - **Without styles** (a terminal without colors, `NO_COLOR`, a pipe), [`unstyled`] keeps every
//!   marker and code delimiter visible, since they carry meaning (`~~cancelled~~` is not
//!   `cancelled`), and drops only the escaping backslashes.
//!
//! Parsing takes O(n log n) time in the length of the text and recurses at most three levels
//! deep.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

/// Text attributes of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Style {
    /// Bold, from `**`.
    pub bold: bool,
    /// Italic, from `__`.
    pub italic: bool,
    /// Struck through, from `~~`.
    pub strike: bool,
    /// Literal code, from backticks.
    pub code: bool,
}

/// A run of text with one style; `text` borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<'a> {
    /// The text, a slice of the parsed input with the removed bytes left out.
    pub text: &'a str,
    /// The attributes that apply to the whole of `text`.
    pub style: Style,
}

/// The markers: `**` bold, `__` italic, `~~` strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `**`, sets [`Style::bold`].
    Bold,
    /// `__`, sets [`Style::italic`].
    Italic,
    /// `~~`, sets [`Style::strike`].
    Strike,
}

impl Marker {
    /// The two-character token that opens and closes this marker.
    pub fn token(self) -> &'static str {
        match self {
            Marker::Bold => "**",
            Marker::Italic => "__",
            Marker::Strike => "~~",
        }
    }

    /// Returns `style` with this marker's attribute turned on.
    pub fn apply(self, style: Style) -> Style {
        match self {
            Marker::Bold => Style {
                bold: true,
                ..style
            },
            Marker::Italic => Style {
                italic: true,
                ..style
            },
            Marker::Strike => Style {
                strike: true,
                ..style
            },
        }
    }

    /// Whether this marker's attribute is already on in `style`.
    fn is_on(self, style: Style) -> bool {
        match self {
            Marker::Bold => style.bold,
            Marker::Italic => style.italic,
            Marker::Strike => style.strike,
        }
    }

    /// The marker whose token repeats `byte`, if any.
    fn from_byte(byte: u8) -> Option<Marker> {
        match byte {
            b'*' => Some(Marker::Bold),
            b'_' => Some(Marker::Italic),
            b'~' => Some(Marker::Strike),
            _ => None,
        }
    }
}

/// What a removed byte range was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// A two-character marker token (`**`, `__`, `~~`) that opened or closed a range.
    Marker,
    /// The backticks that open or close a code span.
    CodeDelimiter,
    /// A backslash that keeps the next character literal.
    Escape,
}

/// The whole result of a parse: the spans, and every byte range left out of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The spans, in order; see [`parse`].
    pub spans: Vec<Span<'a>>,
    /// The removed byte ranges, in order and disjoint, with what each was. Deleting them from
    /// the text leaves exactly the concatenation of the spans' texts.
    pub removed: Vec<(Range<usize>, Removed)>,
}

/// Parses `text` into spans, in order. Adjacent spans with the same style are merged when they
/// touch in `text`; no span is empty.
pub fn parse(text: &str) -> Vec<Span<'_>> {
    parse_detailed(text).spans
}

/// The text as shown without styles: every marker and code delimiter stays visible (they carry
/// meaning), and only the backslashes of escapes are dropped. Borrows when there is no escape.
pub fn unstyled(text: &str) -> Cow<'_, str> {
    let parsed = parse_detailed(text);
    let mut escapes = parsed
        .removed
        .iter()
        .filter(|(_, kind)| *kind == Removed::Escape)
        .map(|(range, _)| range.clone())
        .peekable();
    if escapes.peek().is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for range in escapes {
        out.push_str(text.get(at..range.start).unwrap_or(""));
        at = range.end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Cow::Owned(out)
}

/// Whether `text` holds none of the characters markup gives a meaning to (`` * _ ~ ` `` and the
/// backslash): then it parses as one unstyled span of the whole text (none when empty). Callers
/// use it to skip parsing the usual message.
pub fn is_plain(text: &str) -> bool {
    !text.bytes().any(is_escapable)
}

/// Like [`parse`], and also returns every byte range the spans leave out, and why.
pub fn parse_detailed(text: &str) -> Parsed<'_> {
    let units = tokenize(text);
    let mut parser = Parser {
        runs: link_runs(&units),
        units,
        spans: Vec::new(),
        removed: Vec::new(),
    };
    let all = 0..parser.units.len();
    parser.level(all, Style::default());
    let spans = parser
        .spans
        .into_iter()
        .filter_map(|(range, style)| text.get(range).map(|text| Span { text, style }))
        .collect();
    let mut removed = parser.removed;
    removed.sort_unstable_by_key(|(range, _)| range.start);
    Parsed { spans, removed }
}

/// Characters a backslash can escape.
fn is_escapable(byte: u8) -> bool {
    matches!(byte, b'\\' | b'*' | b'_' | b'~' | b'`')
}

/// One piece of the text, found by [`tokenize`].
#[derive(Debug, Clone)]
enum Unit {
    /// Literal bytes.
    Text(Range<usize>),
    /// A backslash (removed) and the literal character after it.
    Escape(usize),
    /// A code span: opening backticks, literal content, closing backticks.
    Code {
        open: Range<usize>,
        content: Range<usize>,
        close: Range<usize>,
    },
    /// A marker run of two or three characters, which may open or close a range.
    Run(Run),
}

/// A marker run of two or three characters.
#[derive(Debug, Clone)]
struct Run {
    marker: Marker,
    /// Byte offsets of the run.
    start: usize,
    end: usize,
    can_open: bool,
    can_close: bool,
}

impl Run {
    /// The token's bytes when this run opens: its last two characters, next to the content.
    fn opener(&self) -> Range<usize> {
        self.end.saturating_sub(2)..self.end
    }

    /// The token's bytes when this run closes: its first two characters, next to the content.
    fn closer(&self) -> Range<usize> {
        self.start..self.start.saturating_add(2)
    }
}

/// Splits the text into units: escapes and code spans first (left to right, as a reader reads),
/// marker runs with their word-edge flags, and literal text between. Every offset is a char
/// boundary, since all the special characters are ASCII.
fn tokenize(text: &str) -> Vec<Unit> {
    let bytes = text.as_bytes();
    let backticks = BacktickRuns::new(bytes);
    let mut units = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    let flush = |units: &mut Vec<Unit>, start: usize, end: usize| {
        if start < end {
            units.push(Unit::Text(start..end));
        }
    };
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'\\' if bytes.get(i + 1).copied().is_some_and(is_escapable) => {
                flush(&mut units, literal_start, i);
                units.push(Unit::Escape(i));
                i += 2;
                literal_start = i;
            }
            b'`' => {
                let len = bytes[i..].iter().take_while(|&&b| b == b'`').count();
                match backticks.closer(i + len, len) {
                    Some(close) => {
                        flush(&mut units, literal_start, i);
                        units.push(Unit::Code {
                            open: i..i + len,
                            content: i + len..close,
                            close: close..close + len,
                        });
                        i = close + len;
                        literal_start = i;
                    }
                    None => i += len,
                }
            }
            _ => match Marker::from_byte(byte) {
                Some(marker) => {
                    let len = bytes[i..].iter().take_while(|&&b| b == byte).count();
                    if matches!(len, 2 | 3) {
                        flush(&mut units, literal_start, i);
                        units.push(Unit::Run(Run {
                            marker,
                            start: i,
                            end: i + len,
                            can_open: opens_word(text, i, i + len),
                            can_close: closes_word(text, i, i + len),
                        }));
                        literal_start = i + len;
                    }
                    i += len;
                }
                None => i += 1,
            },
        }
    }
    flush(&mut units, literal_start, bytes.len());
    units
}

/// Every maximal run of backticks, by length, so a code span's closer is found by a search.
struct BacktickRuns {
    /// Run length -> start offsets of the runs of that length, ascending.
    by_len: BTreeMap<usize, Vec<usize>>,
}

impl BacktickRuns {
    fn new(bytes: &[u8]) -> Self {
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'`' {
                let len = bytes[i..].iter().take_while(|&&b| b == b'`').count();
                by_len.entry(len).or_default().push(i);
                i += len;
            } else {
                i += 1;
            }
        }
        BacktickRuns { by_len }
    }

    /// The start of the first run of exactly `len` backticks at or after `from`.
    fn closer(&self, from: usize, len: usize) -> Option<usize> {
        let starts = self.by_len.get(&len)?;
        let at = starts.partition_point(|&s| s < from);
        starts.get(at).copied()
    }
}

/// Opening punctuation a marker may follow at the start of a word.
fn is_opening_punct(c: char) -> bool {
    matches!(c, '(' | '[' | '{' | '"' | '\'' | '*' | '_' | '~' | '`')
}

/// Closing punctuation a marker may precede at the end of a word.
fn is_closing_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '"' | '\'' | '*' | '_' | '~' | '`'
    )
}

/// Whether the run at `start..end` starts a word and is followed by something that is not
/// whitespace.
fn opens_word(text: &str, start: usize, end: usize) -> bool {
    let next = text.get(end..).and_then(|t| t.chars().next());
    if next.is_none_or(char::is_whitespace) {
        return false;
    }
    let before = text.get(..start).unwrap_or("");
    match before.chars().rev().find(|&c| !is_opening_punct(c)) {
        None => true,
        Some(c) => c.is_whitespace(),
    }
}

/// Whether the run at `start..end` ends a word and follows something that is not whitespace.
fn closes_word(text: &str, start: usize, end: usize) -> bool {
    let previous = text.get(..start).and_then(|t| t.chars().next_back());
    if previous.is_none_or(char::is_whitespace) {
        return false;
    }
    let after = text.get(end..).unwrap_or("");
    match after.chars().find(|&c| !is_closing_punct(c)) {
        None => true,
        Some(c) => c.is_whitespace(),
    }
}

/// For each unit that is a run that can open, the index of the next run of the same kind that
/// can close (its closer when it opens).
fn link_runs(units: &[Unit]) -> Vec<Option<usize>> {
    let mut next = vec![None; units.len()];
    let (mut bold, mut italic, mut strike) = (None, None, None);
    for (index, unit) in units.iter().enumerate().rev() {
        let Unit::Run(run) = unit else {
            continue;
        };
        let slot = match run.marker {
            Marker::Bold => &mut bold,
            Marker::Italic => &mut italic,
            Marker::Strike => &mut strike,
        };
        next[index] = *slot;
        if run.can_close {
            *slot = Some(index);
        }
    }
    next
}

/// The state of one parse: the units found up front, and the output built so far.
struct Parser {
    units: Vec<Unit>,
    /// Per unit: the closer of the run there, when it opens.
    runs: Vec<Option<usize>>,
    /// Byte ranges of the spans, in order, merged when they touch and share a style.
    spans: Vec<(Range<usize>, Style)>,
    /// Byte ranges removed from the spans, in the order they were found.
    removed: Vec<(Range<usize>, Removed)>,
}

impl Parser {
    /// Parses the units in `units` with `style` already on. Recurses only with an attribute
    /// added that was off, so at most three deep.
    fn level(&mut self, units: Range<usize>, style: Style) {
        let mut index = units.start;
        while index < units.end {
            let Some(unit) = self.units.get(index).cloned() else {
                break;
            };
            match unit {
                Unit::Text(range) => self.emit(range, style),
                Unit::Escape(at) => {
                    self.removed.push((at..at + 1, Removed::Escape));
                    self.emit(at + 1..at + 2, style);
                }
                Unit::Code {
                    open,
                    content,
                    close,
                } => {
                    self.removed.push((open, Removed::CodeDelimiter));
                    self.emit(
                        content,
                        Style {
                            code: true,
                            ..style
                        },
                    );
                    self.removed.push((close, Removed::CodeDelimiter));
                }
                Unit::Run(run) => {
                    let close = match self.runs.get(index).copied().flatten() {
                        Some(close)
                            if run.can_open && close < units.end && !run.marker.is_on(style) =>
                        {
                            match self.units.get(close) {
                                Some(Unit::Run(closer)) => Some((close, closer.closer())),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    match close {
                        Some((close_index, closer)) => {
                            let opener = run.opener();
                            self.emit(run.start..opener.start, style);
                            self.removed.push((opener, Removed::Marker));
                            self.level(index + 1..close_index, run.marker.apply(style));
                            self.removed.push((closer.clone(), Removed::Marker));
                            if let Some(Unit::Run(closing)) = self.units.get(close_index) {
                                let tail = closer.end..closing.end;
                                self.emit(tail, style);
                            }
                            index = close_index;
                        }
                        // No closer in this range: the run stays in the literal text.
                        None => self.emit(run.start..run.end, style),
                    }
                }
            }
            index += 1;
        }
    }

    /// Appends a span, merging it into the previous one when they touch and share a style.
    fn emit(&mut self, range: Range<usize>, style: Style) {
        if range.start >= range.end {
            return;
        }
        if let Some((last, last_style)) = self.spans.last_mut() {
            if *last_style == style && last.end == range.start {
                last.end = range.end;
                return;
            }
        }
        self.spans.push((range, style));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A short code for a style, so expectations read as `("text", "bi")`.
    fn code(style: Style) -> String {
        let mut s = String::new();
        for (on, c) in [
            (style.bold, 'b'),
            (style.italic, 'i'),
            (style.strike, 's'),
            (style.code, 'c'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }

    fn p(text: &str) -> Vec<(&str, String)> {
        parse(text)
            .iter()
            .map(|s| (s.text, code(s.style)))
            .collect()
    }

    /// Expectations as `&[("text", "codes")]`.
    fn want<'a>(pairs: &[(&'a str, &str)]) -> Vec<(&'a str, String)> {
        pairs.iter().map(|(t, c)| (*t, (*c).to_owned())).collect()
    }

    /// Byte offset of `part` inside `whole`, which it borrows from.
    fn offset(whole: &str, part: &str) -> usize {
        part.as_ptr() as usize - whole.as_ptr() as usize
    }

    #[test]
    fn plain_text_is_one_unstyled_span() {
        assert_eq!(p("hello world"), want(&[("hello world", "")]));
        assert_eq!(p(""), want(&[]));
    }

    #[test]
    fn each_marker_alone() {
        assert_eq!(p("**bold**"), want(&[("bold", "b")]));
        assert_eq!(p("__italic__"), want(&[("italic", "i")]));
        assert_eq!(p("~~strike~~"), want(&[("strike", "s")]));
        assert_eq!(p("`code`"), want(&[("code", "c")]));
        assert_eq!(p("a **b** c"), want(&[("a ", ""), ("b", "b"), (" c", "")]));
    }

    #[test]
    fn nested_markers_add_attributes() {
        assert_eq!(
            p("**bold __both__ bold**"),
            want(&[("bold ", "b"), ("both", "bi"), (" bold", "b")])
        );
        assert_eq!(p("**__~~all~~__**"), want(&[("all", "bis")]));
        assert_eq!(
            p("~~s **sb __sbi__ sb** s~~"),
            want(&[
                ("s ", "s"),
                ("sb ", "bs"),
                ("sbi", "bis"),
                (" sb", "bs"),
                (" s", "s")
            ])
        );
        assert_eq!(p("**see `x**y`**"), want(&[("see ", "b"), ("x**y", "bc")]));
    }

    #[test]
    fn unclosed_markers_stay_literal() {
        assert_eq!(p("**open"), want(&[("**open", "")]));
        assert_eq!(p("a __b"), want(&[("a __b", "")]));
        assert_eq!(p("~~x ** y"), want(&[("~~x ** y", "")]));
        assert_eq!(p("**a** **b"), want(&[("a", "b"), (" **b", "")]));
        assert_eq!(p("`open"), want(&[("`open", "")]));
    }

    #[test]
    fn markers_work_only_at_word_edges() {
        // Regressions from issue 11: these were mangled.
        assert_eq!(p("__init__.py"), want(&[("__init__.py", "")]));
        assert_eq!(p("2**10"), want(&[("2**10", "")]));
        assert_eq!(p("2**10 and 3**4"), want(&[("2**10 and 3**4", "")]));
        assert_eq!(p("snake__case__name"), want(&[("snake__case__name", "")]));
        assert_eq!(p("a ** b ** c"), want(&[("a ** b ** c", "")]));
        // Punctuation around a word is fine.
        assert_eq!(
            p("(**bold**), \"__it__\"!"),
            want(&[
                ("(", ""),
                ("bold", "b"),
                ("), \"", ""),
                ("it", "i"),
                ("\"!", "")
            ])
        );
        assert_eq!(
            p("the meeting is ~~cancelled~~ on"),
            want(&[("the meeting is ", ""), ("cancelled", "s"), (" on", "")])
        );
    }

    #[test]
    fn code_is_literal() {
        assert_eq!(p("`__init__.py`"), want(&[("__init__.py", "c")]));
        assert_eq!(p("`2**10`"), want(&[("2**10", "c")]));
        assert_eq!(p("`a\\*b`"), want(&[("a\\*b", "c")]));
        // A longer fence holds a shorter one.
        assert_eq!(p("``a`b``"), want(&[("a`b", "c")]));
        assert_eq!(p("`a``b"), want(&[("`a``b", "")]));
        assert_eq!(
            p("run `ls` then `cd`"),
            want(&[("run ", ""), ("ls", "c"), (" then ", ""), ("cd", "c")])
        );
    }

    #[test]
    fn backslash_keeps_the_next_marker_literal() {
        assert_eq!(
            p("\\*\\*not bold\\*\\*"),
            want(&[("*", ""), ("*not bold", ""), ("*", ""), ("*", "")])
        );
        let joined = |t: &str| parse(t).iter().map(|s| s.text).collect::<String>();
        assert_eq!(joined("\\*\\*not bold\\*\\*"), "**not bold**");
        assert_eq!(joined("\\~~x~~"), "~~x~~");
        assert_eq!(joined("\\`code\\`"), "`code`");
        assert_eq!(joined("a\\\\b"), "a\\b");
        // Other backslashes are ordinary.
        assert_eq!(p("C:\\Users\\n"), want(&[("C:\\Users\\n", "")]));
        assert_eq!(p("end\\"), want(&[("end\\", "")]));
    }

    #[test]
    fn unstyled_keeps_markers_and_drops_escapes() {
        assert_eq!(
            unstyled("the meeting is ~~cancelled~~ on"),
            "the meeting is ~~cancelled~~ on"
        );
        assert_eq!(unstyled("`x` **y**"), "`x` **y**");
        assert_eq!(unstyled("\\*\\*a\\*\\*"), "**a**");
        assert_eq!(unstyled("`\\*`"), "`\\*`");
        assert!(matches!(unstyled("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn adjacent_pairs() {
        assert_eq!(p("**a** __b__"), want(&[("a", "b"), (" ", ""), ("b", "i")]));
        // Without a space the closer does not end a word: literal, like `__init__.py`.
        assert_eq!(p("**a**__b__"), want(&[("**a**__b__", "")]));
        assert_eq!(p("**__a__**"), want(&[("a", "bi")]));
    }

    #[test]
    fn empty_pairs_and_long_runs_stay_literal() {
        assert_eq!(p("****"), want(&[("****", "")]));
        assert_eq!(p("~~~~~~~~"), want(&[("~~~~~~~~", "")]));
        assert_eq!(p("a****b"), want(&[("a****b", "")]));
        assert_eq!(p("**a****b**"), want(&[("a****b", "b")]));
    }

    #[test]
    fn crossing_markers_first_opened_wins() {
        assert_eq!(p("**a __b** c__"), want(&[("a __b", "b"), (" c__", "")]));
        assert_eq!(p("__x **y__ z**"), want(&[("x **y", "i"), (" z**", "")]));
    }

    #[test]
    fn a_kind_already_on_is_literal_inside() {
        assert_eq!(p("**a **b** c**"), want(&[("a **b", "b"), (" c**", "")]));
    }

    #[test]
    fn unicode_inside_and_around_markers() {
        assert_eq!(p("**héllo 世界**"), want(&[("héllo 世界", "b")]));
        assert_eq!(
            p("é __😀__ ü"),
            want(&[("é ", ""), ("😀", "i"), (" ü", "")])
        );
        assert_eq!(p("~~ß**"), want(&[("~~ß**", "")]));
    }

    #[test]
    fn lone_marker_characters_are_literal() {
        assert_eq!(p("2 * 3 = 6"), want(&[("2 * 3 = 6", "")]));
        assert_eq!(p("~5 minutes"), want(&[("~5 minutes", "")]));
        assert_eq!(p("*_~*_~"), want(&[("*_~*_~", "")]));
    }

    #[test]
    fn triples_keep_the_extra_character_outside() {
        assert_eq!(
            p("***bold***"),
            want(&[("*", ""), ("bold", "b"), ("*", "")])
        );
        assert_eq!(p("___it___"), want(&[("_", ""), ("it", "i"), ("_", "")]));
        assert_eq!(p("***a**"), want(&[("*", ""), ("a", "b")]));
        assert_eq!(p("**a***"), want(&[("a", "b"), ("*", "")]));
    }

    #[test]
    fn reports_removed_ranges() {
        let parsed = parse_detailed("x **a** `c` \\*");
        let removed: Vec<_> = parsed
            .removed
            .iter()
            .map(|(r, k)| (r.clone(), *k))
            .collect();
        assert_eq!(
            removed,
            [
                (2..4, Removed::Marker),
                (5..7, Removed::Marker),
                (8..9, Removed::CodeDelimiter),
                (10..11, Removed::CodeDelimiter),
                (12..13, Removed::Escape),
            ]
        );
        assert!(parse_detailed("**a").removed.is_empty());
    }

    #[test]
    fn hostile_lines_parse() {
        // Shapes that would hurt a naive matcher; 4096 bytes, the default line limit.
        let shapes = [
            "**".repeat(2048),
            "**a ".repeat(1024),
            "**__~~".repeat(682),
            " **a__b~~c".repeat(409),
            "*_~".repeat(1365),
            "__a **b ~~c ".repeat(341),
            "é**".repeat(1024),
            "`".repeat(4096),
            "`a``b```c".repeat(455),
            "\\".repeat(4096),
            "\\*".repeat(2048),
        ];
        for text in &shapes {
            let parsed = parse_detailed(text);
            let total: usize = parsed.spans.iter().map(|s| s.text.len()).sum();
            let removed: usize = parsed.removed.iter().map(|(r, _)| r.len()).sum();
            assert_eq!(total + removed, text.len());
        }
    }

    /// Strings built mostly from marker characters, spaces, punctuation and multi-byte characters.
    fn markupish() -> impl Strategy<Value = String> {
        "[*_~` \\\\.(a\u{e9}\u{4e16}\u{1F600}]{0,64}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn text_with_a_markup_character_is_not_plain(text in markupish()) {
            let special = text.bytes().any(|b| matches!(b, b'*' | b'_' | b'~' | b'`' | b'\\'));
            prop_assert_eq!(is_plain(&text), !special);
        }

        #[test]
        fn never_panics(text in any::<String>(), marked in markupish()) {
            let _ = parse(&text);
            let _ = parse(&marked);
            let _ = unstyled(&text);
        }

        #[test]
        fn spans_are_input_minus_removed_ranges(text in markupish()) {
            let parsed = parse_detailed(&text);
            let mut kept = String::new();
            let mut at = 0;
            let mut markers = 0;
            for (range, kind) in &parsed.removed {
                prop_assert!(range.start >= at);
                let token = text.get(range.clone()).unwrap();
                match kind {
                    Removed::Marker => {
                        markers += 1;
                        prop_assert!(matches!(token, "**" | "__" | "~~"), "token {:?}", token);
                    }
                    Removed::CodeDelimiter => prop_assert!(token.bytes().all(|b| b == b'`')),
                    Removed::Escape => {
                        prop_assert_eq!(token, "\\");
                        prop_assert!(text.as_bytes().get(range.end).copied().is_some_and(is_escapable));
                    }
                }
                kept.push_str(text.get(at..range.start).unwrap());
                at = range.end;
            }
            prop_assert_eq!(markers % 2, 0);
            kept.push_str(text.get(at..).unwrap());
            let joined: String = parsed.spans.iter().map(|s| s.text).collect();
            prop_assert_eq!(joined, kept);
        }

        #[test]
        fn spans_are_non_empty_and_merged_when_touching(text in markupish()) {
            let parsed = parse_detailed(&text);
            let mut previous: Option<(usize, Style)> = None;
            for span in &parsed.spans {
                prop_assert!(!span.text.is_empty());
                let start = offset(&text, span.text);
                if let Some((end, style)) = previous {
                    prop_assert!(start >= end);
                    if style == span.style {
                        prop_assert!(start > end);
                    }
                }
                previous = Some((start + span.text.len(), span.style));
            }
        }

        #[test]
        fn unstyled_is_the_text_without_escaping_backslashes(text in markupish()) {
            let parsed = parse_detailed(&text);
            let escapes = parsed.removed.iter().filter(|(_, k)| *k == Removed::Escape).count();
            let shown = unstyled(&text);
            prop_assert_eq!(shown.len() + escapes, text.len());
            prop_assert_eq!(shown.replace('\\', ""), text.replace('\\', ""));
        }

        #[test]
        fn text_without_special_characters_is_one_plain_span(text in "[^*_~`\\\\]{0,64}") {
            prop_assert!(is_plain(&text));
            let spans = parse(&text);
            if text.is_empty() {
                prop_assert!(spans.is_empty());
            } else {
                prop_assert_eq!(spans, vec![Span { text: &text, style: Style::default() }]);
            }
        }

        #[test]
        fn code_content_is_never_parsed(inner in "[*_~ a\\\\]{1,32}") {
            let wrapped = format!("`{inner}`");
            prop_assert_eq!(
                parse(&wrapped),
                vec![Span { text: &inner, style: Style { code: true, ..Style::default() } }]
            );
        }
    }
}
