//! Markup parsing: message text with `**bold**`, `__italic__` and `~~strike~~` becomes a list of
//! styled [`Span`]s that borrow from the text. This module owns the markup rules below and nothing
//! else: it never renders, never touches a terminal or writes an escape sequence (the client maps
//! [`Style`] to terminal attributes), and never panics, whatever a peer sent.
//!
//! # Rules
//! - A *marker run* is a maximal run of one of the characters `*`, `_` or `~`. A run of exactly
//!   two is a marker: `**` bold, `__` italic, `~~` strike. A run of three is a marker plus one
//!   literal character on the outside: the marker is the last two characters when it opens and the
//!   first two when it closes, so `***bold***` is `*`, bold `bold`, `*`. Runs of one, or of four
//!   or more, are literal: `****` is an empty pair, and a line of `~~~~~~` is a separator.
//! - An opening marker matches the nearest following marker of the same kind inside the range
//!   being parsed, and the text between them is parsed the same way with that attribute added. A
//!   marker with no such closer stays literal. Ranges therefore never cross: in `**a __b** c__`
//!   the bold range is `a __b`, where `__` has no closer and stays literal, then ` c__` is literal.
//! - An attribute that is already on is never opened again: the next marker of its kind closes
//!   it, so each marker toggles. `**a **b** c**` is bold `a `, plain `b`, bold ` c`. This also
//!   bounds nesting to three levels, one per attribute.
//! - No span is empty, and adjacent spans with the same style are merged when they touch in the
//!   text. Spans borrow from the text, so two spans separated only by consumed markers can share
//!   a style: `**__a__**__**b**__` is bold+italic `a`, then bold+italic `b`.
//!
//! Parsing is linear in the length of the text and recurses at most three levels deep.

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
}

/// A run of text with one style; `text` borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<'a> {
    /// The text, a slice of the parsed input with the consumed markers left out.
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

/// Parses `text` into spans, in order. Adjacent spans with the same style are merged when they
/// touch in `text` (see the module doc for the one case where they cannot); no span is empty.
pub fn parse(text: &str) -> Vec<Span<'_>> {
    parse_with_markers(text).0
}

/// Like [`parse`], and also returns the byte ranges of the marker tokens it consumed, in order.
/// Each range covers exactly one two-byte token and they come in pairs, so deleting them from
/// `text` leaves exactly the concatenation of the spans' texts.
pub(crate) fn parse_with_markers(text: &str) -> (Vec<Span<'_>>, Vec<Range<usize>>) {
    let mut parser = Parser {
        runs: marker_runs(text.as_bytes()),
        spans: Vec::new(),
        markers: Vec::new(),
    };
    let all_runs = 0..parser.runs.len();
    parser.level(all_runs, 0..text.len(), Style::default());
    let spans = parser
        .spans
        .into_iter()
        .filter_map(|(range, style)| text.get(range).map(|text| Span { text, style }))
        .collect();
    let mut markers = parser.markers;
    markers.sort_unstable_by_key(|range| range.start);
    (spans, markers)
}

/// A marker run of two or three characters: the only runs that can open or close a range.
#[derive(Debug, Clone, Copy)]
struct Run {
    marker: Marker,
    /// Byte offset of the run's first character.
    start: usize,
    /// Byte offset just past the run's last character.
    end: usize,
    /// Index (in the run list) of the next run of the same marker, which is this run's closer
    /// when it opens.
    next_same: Option<usize>,
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

/// Finds the marker runs of two or three characters and links each to the next of its kind.
/// Markers are ASCII and never occur inside a multi-byte character, so every offset found here
/// is a char boundary.
fn marker_runs(bytes: &[u8]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let start = i;
        i += 1;
        let Some(marker) = Marker::from_byte(byte) else {
            continue;
        };
        while bytes.get(i) == Some(&byte) {
            i += 1;
        }
        if matches!(i - start, 2 | 3) {
            runs.push(Run {
                marker,
                start,
                end: i,
                next_same: None,
            });
        }
    }
    let (mut bold, mut italic, mut strike) = (None, None, None);
    for (index, run) in runs.iter_mut().enumerate().rev() {
        let next = match run.marker {
            Marker::Bold => &mut bold,
            Marker::Italic => &mut italic,
            Marker::Strike => &mut strike,
        };
        run.next_same = next.replace(index);
    }
    runs
}

/// The state of one parse: the runs found up front, and the output built so far.
struct Parser {
    runs: Vec<Run>,
    /// Byte ranges of the spans, in order, merged when they touch and share a style.
    spans: Vec<(Range<usize>, Style)>,
    /// Byte ranges of the consumed tokens, in the order they were matched.
    markers: Vec<Range<usize>>,
}

impl Parser {
    /// Parses the bytes in `bytes`, whose marker runs are those indexed by `runs`, with `style`
    /// already on. Recurses only with an attribute added that was off, so at most three deep.
    fn level(&mut self, runs: Range<usize>, bytes: Range<usize>, style: Style) {
        let mut literal_start = bytes.start;
        let mut index = runs.start;
        while index < runs.end {
            let Some(open) = self.runs.get(index).copied() else {
                break;
            };
            let close = match open.next_same {
                Some(close) if close < runs.end && !open.marker.is_on(style) => {
                    self.runs.get(close).copied().map(|run| (close, run))
                }
                _ => None,
            };
            let Some((close_index, close)) = close else {
                // No closer in this range: the run stays in the literal text.
                index += 1;
                continue;
            };
            let marker = open.marker;
            let (open, close) = (open.opener(), close.closer());
            self.emit(literal_start..open.start, style);
            self.markers.push(open.clone());
            self.markers.push(close.clone());
            self.level(
                index + 1..close_index,
                open.end..close.start,
                marker.apply(style),
            );
            literal_start = close.end;
            index = close_index + 1;
        }
        self.emit(literal_start..bytes.end, style);
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
    fn code(style: Style) -> &'static str {
        match (style.bold, style.italic, style.strike) {
            (false, false, false) => "",
            (true, false, false) => "b",
            (false, true, false) => "i",
            (false, false, true) => "s",
            (true, true, false) => "bi",
            (true, false, true) => "bs",
            (false, true, true) => "is",
            (true, true, true) => "bis",
        }
    }

    fn p(text: &str) -> Vec<(&str, &'static str)> {
        parse(text)
            .iter()
            .map(|s| (s.text, code(s.style)))
            .collect()
    }

    /// Byte offset of `part` inside `whole`, which it borrows from.
    fn offset(whole: &str, part: &str) -> usize {
        part.as_ptr() as usize - whole.as_ptr() as usize
    }

    #[test]
    fn plain_text_is_one_unstyled_span() {
        assert_eq!(p("hello world"), [("hello world", "")]);
        assert_eq!(p(""), []);
    }

    #[test]
    fn each_marker_alone() {
        assert_eq!(p("**bold**"), [("bold", "b")]);
        assert_eq!(p("__italic__"), [("italic", "i")]);
        assert_eq!(p("~~strike~~"), [("strike", "s")]);
        assert_eq!(p("a **b** c"), [("a ", ""), ("b", "b"), (" c", "")]);
    }

    #[test]
    fn nested_markers_add_attributes() {
        assert_eq!(
            p("**bold __both__ bold**"),
            [("bold ", "b"), ("both", "bi"), (" bold", "b")]
        );
    }

    #[test]
    fn all_three_combine() {
        assert_eq!(p("**__~~all~~__**"), [("all", "bis")]);
        assert_eq!(
            p("~~s **sb __sbi__ sb** s~~"),
            [
                ("s ", "s"),
                ("sb ", "bs"),
                ("sbi", "bis"),
                (" sb", "bs"),
                (" s", "s")
            ]
        );
    }

    #[test]
    fn unclosed_markers_stay_literal() {
        assert_eq!(p("**open"), [("**open", "")]);
        assert_eq!(p("a __b"), [("a __b", "")]);
        assert_eq!(p("~~x ** y"), [("~~x ** y", "")]);
        assert_eq!(p("**a** **b"), [("a", "b"), (" **b", "")]);
    }

    #[test]
    fn adjacent_pairs() {
        assert_eq!(p("**a**__b__"), [("a", "b"), ("b", "i")]);
        assert_eq!(p("**a**~~b~~**c**"), [("a", "b"), ("b", "s"), ("c", "b")]);
    }

    #[test]
    fn markers_at_start_and_end() {
        assert_eq!(
            p("**start** middle __end__"),
            [("start", "b"), (" middle ", ""), ("end", "i")]
        );
    }

    #[test]
    fn empty_pairs_and_long_runs_stay_literal() {
        assert_eq!(p("****"), [("****", "")]);
        assert_eq!(p("____"), [("____", "")]);
        assert_eq!(p("~~~~~~~~"), [("~~~~~~~~", "")]);
        assert_eq!(p("a****b"), [("a****b", "")]);
        // A run of four inside a range is literal, not a closer and a new opener.
        assert_eq!(p("**a****b**"), [("a****b", "b")]);
    }

    #[test]
    fn crossing_markers_first_opened_wins() {
        assert_eq!(p("**a __b** c__"), [("a __b", "b"), (" c__", "")]);
        assert_eq!(p("__x **y__ z**"), [("x **y", "i"), (" z**", "")]);
    }

    #[test]
    fn reapplied_attribute_toggles() {
        assert_eq!(p("**a **b** c**"), [("a ", "b"), ("b", ""), (" c", "b")]);
        assert_eq!(p("__a __b__"), [("a ", "i"), ("b__", "")]);
    }

    #[test]
    fn unicode_inside_and_around_markers() {
        assert_eq!(p("**héllo 世界**"), [("héllo 世界", "b")]);
        assert_eq!(p("é__😀__ü"), [("é", ""), ("😀", "i"), ("ü", "")]);
        assert_eq!(p("~~ß**"), [("~~ß**", "")]);
    }

    #[test]
    fn lone_marker_characters_are_literal() {
        assert_eq!(p("2 * 3 = 6"), [("2 * 3 = 6", "")]);
        assert_eq!(p("snake_case_name"), [("snake_case_name", "")]);
        assert_eq!(p("~5 minutes"), [("~5 minutes", "")]);
        assert_eq!(p("*_~*_~"), [("*_~*_~", "")]);
    }

    #[test]
    fn triples_keep_the_extra_character_outside() {
        assert_eq!(p("***bold***"), [("*", ""), ("bold", "b"), ("*", "")]);
        assert_eq!(p("___it___"), [("_", ""), ("it", "i"), ("_", "")]);
        assert_eq!(p("***a**"), [("*", ""), ("a", "b")]);
        assert_eq!(p("**a***"), [("a", "b"), ("*", "")]);
        assert_eq!(p("**a***b**"), [("a", "b"), ("*b**", "")]);
    }

    #[test]
    fn other_punctuation_is_untouched() {
        let text = "// see https://x.y/a-b?c=d#e, 50% off! (#1) `code` [x] <y> ==";
        assert_eq!(p(text), [(text, "")]);
        assert_eq!(p("--strike-- //italic//"), [("--strike-- //italic//", "")]);
    }

    #[test]
    fn same_style_spans_split_only_by_markers() {
        // The one case where equal styles follow each other: no borrowed slice covers both.
        assert_eq!(p("**__a__**__**b**__"), [("a", "bi"), ("b", "bi")]);
    }

    #[test]
    fn reports_consumed_marker_ranges() {
        let (spans, markers) = parse_with_markers("x**a**y");
        assert_eq!(spans.len(), 3);
        assert_eq!(markers, [1..3, 4..6]);
        let (_, markers) = parse_with_markers("***a***");
        assert_eq!(markers, [1..3, 4..6]);
        let (_, markers) = parse_with_markers("**__a__**");
        assert_eq!(markers, [0..2, 2..4, 5..7, 7..9]);
        assert_eq!(parse_with_markers("**a").1, []);
    }

    #[test]
    fn hostile_lines_parse() {
        // Shapes that would hurt a naive matcher; 4096 bytes, the default line limit.
        let shapes = [
            "**".repeat(2048),
            "**a".repeat(1365),
            "**__~~".repeat(682),
            "**a__b~~c".repeat(455),
            "*_~".repeat(1365),
            "__a **b ~~c ".repeat(341),
            "é**".repeat(1024),
        ];
        for text in &shapes {
            let (spans, markers) = parse_with_markers(text);
            let total: usize = spans.iter().map(|s| s.text.len()).sum();
            assert_eq!(total + 2 * markers.len(), text.len());
        }
    }

    /// Strings built mostly from marker characters, spaces and multi-byte characters.
    fn markupish() -> impl Strategy<Value = String> {
        "[*_~ a\u{e9}\u{4e16}\u{1F600}]{0,64}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics(text in any::<String>(), marked in markupish()) {
            let _ = parse(&text);
            let _ = parse(&marked);
        }

        #[test]
        fn spans_are_input_minus_whole_marker_pairs(text in markupish()) {
            let (spans, markers) = parse_with_markers(&text);
            prop_assert_eq!(markers.len() % 2, 0);
            let mut kept = String::new();
            let mut at = 0;
            for range in &markers {
                prop_assert!(range.start >= at);
                let token = text.get(range.clone()).unwrap();
                prop_assert!(matches!(token, "**" | "__" | "~~"), "token {:?}", token);
                kept.push_str(text.get(at..range.start).unwrap());
                at = range.end;
            }
            kept.push_str(text.get(at..).unwrap());
            let joined: String = spans.iter().map(|s| s.text).collect();
            prop_assert_eq!(joined, kept);
        }

        #[test]
        fn spans_are_non_empty_and_merged_when_touching(text in markupish()) {
            let (spans, markers) = parse_with_markers(&text);
            let mut previous: Option<(usize, Style)> = None;
            for span in &spans {
                prop_assert!(!span.text.is_empty());
                let start = offset(&text, span.text);
                if let Some((end, style)) = previous {
                    prop_assert!(start >= end);
                    if style == span.style {
                        // Equal styles in a row only with a consumed marker between them.
                        prop_assert!(start > end);
                        prop_assert!(markers.iter().any(|m| m.start >= end && m.end <= start));
                    }
                }
                previous = Some((start + span.text.len(), span.style));
            }
        }

        #[test]
        fn text_without_marker_characters_is_one_plain_span(text in "[^*_~]{0,64}") {
            let spans = parse(&text);
            if text.is_empty() {
                prop_assert!(spans.is_empty());
            } else {
                prop_assert_eq!(spans, vec![Span { text: &text, style: Style::default() }]);
            }
        }

        #[test]
        fn wrapping_in_bold_adds_bold_everywhere(text in "[_~ a\u{e9}]{1,32}") {
            let wrapped = format!("**{text}**");
            let outer: Vec<_> = parse(&wrapped).iter().map(|s| (s.text, s.style)).collect();
            let inner: Vec<_> = parse(&text)
                .iter()
                .map(|s| (s.text, Marker::Bold.apply(s.style)))
                .collect();
            prop_assert_eq!(outer, inner);
        }
    }
}
