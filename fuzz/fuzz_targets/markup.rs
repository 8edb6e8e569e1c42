//! Fuzz target for `chat_common::markup::parse`, checked through the public API only.
//!
//! Spans borrow from the text, so their offsets locate what the parser dropped: the gaps between
//! spans. Properties: spans are non-empty, in order and non-overlapping; every gap is a sequence
//! of whole tokens `**`, `__`, `~~` (so the concatenated spans are the text minus whole markers,
//! and only `*_~` are ever removed); tokens of each kind come in open/close pairs, and since an
//! attribute is never opened twice and ranges never cross, a span has an attribute exactly when
//! an odd number of that attribute's tokens precede it; spans that touch have different styles.
//! The input is the message text as UTF-8.
#![no_main]

use chat_common::markup::{parse, Style};
use libfuzzer_sys::fuzz_target;

/// Token counts seen so far, per attribute: bold, italic, strike.
#[derive(Debug, Default)]
struct Tokens([usize; 3]);

impl Tokens {
    /// Consumes `gap`, text the parser dropped, which must be whole two-character tokens.
    fn take_gap(&mut self, gap: &[u8]) {
        assert!(
            gap.len().is_multiple_of(2),
            "odd gap {:?}",
            String::from_utf8_lossy(gap)
        );
        for pair in gap.chunks(2) {
            let kind = match pair {
                b"**" => 0,
                b"__" => 1,
                b"~~" => 2,
                _ => panic!("dropped {:?}, not a marker", String::from_utf8_lossy(pair)),
            };
            self.0[kind] += 1;
        }
    }

    /// The style that the tokens seen so far leave on.
    fn style(&self) -> Style {
        Style {
            bold: self.0[0] % 2 == 1,
            italic: self.0[1] % 2 == 1,
            strike: self.0[2] % 2 == 1,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spans = parse(text);
    let base = text.as_ptr() as usize;
    let bytes = text.as_bytes();
    let mut tokens = Tokens::default();
    let mut at = 0;
    let mut previous: Option<(usize, Style)> = None;
    for span in &spans {
        assert!(!span.text.is_empty(), "empty span");
        let start = (span.text.as_ptr() as usize)
            .checked_sub(base)
            .expect("span before the text");
        let end = start + span.text.len();
        assert!(
            start >= at && end <= text.len(),
            "span out of order or outside the text"
        );
        tokens.take_gap(&bytes[at..start]);
        assert_eq!(
            span.style,
            tokens.style(),
            "style differs from the markers around {start}"
        );
        if let Some((prev_end, prev_style)) = previous {
            assert!(
                prev_end < start || prev_style != span.style,
                "touching spans with one style are not merged"
            );
        }
        previous = Some((end, span.style));
        at = end;
    }
    tokens.take_gap(&bytes[at..]);
    assert_eq!(
        tokens.style(),
        Style::default(),
        "a marker without its pair"
    );
    if !text.bytes().any(|b| matches!(b, b'*' | b'_' | b'~')) {
        let plain: Vec<_> = spans.iter().map(|s| (s.text, s.style)).collect();
        let want: Vec<_> = Some((text, Style::default()))
            .filter(|_| !text.is_empty())
            .into_iter()
            .collect();
        assert_eq!(plain, want, "text without markers is one plain span");
    }
});
