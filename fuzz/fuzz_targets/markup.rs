//! Fuzz target for `chat_common::markup`, checked through the public API only.
//!
//! Spans borrow from the text, so their offsets locate what the parser dropped: the gaps between
//! spans, which must be exactly the reported removed ranges. Properties: spans are non-empty, in
//! order and non-overlapping; every removed range is a whole marker token (`**`, `__`, `~~`), a
//! run of backticks (a code delimiter), or one backslash before an escapable character; marker
//! tokens of each kind and code delimiters come in open/close pairs, and since a kind is never
//! opened twice and ranges never cross, a span has an attribute exactly when an odd number of
//! that attribute's tokens precede it; spans that touch have different styles; `unstyled` is the
//! text without the escaping backslashes; text without any special character is one plain span.
//! The input is the message text as UTF-8.
#![no_main]

use chat_common::markup::{parse_detailed, unstyled, Removed, Style};
use libfuzzer_sys::fuzz_target;

/// Delimiters seen so far: bold, italic, strike tokens and code delimiters.
#[derive(Debug, Default)]
struct Tokens([usize; 4]);

impl Tokens {
    /// The style that the delimiters seen so far leave on.
    fn style(&self) -> Style {
        Style {
            bold: self.0[0] % 2 == 1,
            italic: self.0[1] % 2 == 1,
            strike: self.0[2] % 2 == 1,
            code: self.0[3] % 2 == 1,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_detailed(text);
    let base = text.as_ptr() as usize;
    let bytes = text.as_bytes();
    let mut tokens = Tokens::default();
    let mut removed = parsed.removed.iter().peekable();
    let mut escapes = 0;
    let mut at = 0;
    let mut previous: Option<(usize, Style)> = None;
    let mut take_gap = |tokens: &mut Tokens, from: usize, to: usize| {
        let mut at = from;
        while at < to {
            let (range, kind) = removed.next().expect("a gap that was not reported removed");
            assert_eq!(range.start, at, "a gap that is not a removed range");
            assert!(range.end <= to, "a removed range overlaps a span");
            let token = &bytes[range.clone()];
            match kind {
                Removed::Marker => {
                    let kind = match token {
                        b"**" => 0,
                        b"__" => 1,
                        b"~~" => 2,
                        _ => panic!("dropped {:?}, not a marker", String::from_utf8_lossy(token)),
                    };
                    tokens.0[kind] += 1;
                }
                Removed::CodeDelimiter => {
                    assert!(!token.is_empty() && token.iter().all(|&b| b == b'`'));
                    tokens.0[3] += 1;
                }
                Removed::Escape => {
                    assert_eq!(token, b"\\");
                    assert!(matches!(
                        bytes.get(range.end),
                        Some(b'\\' | b'*' | b'_' | b'~' | b'`')
                    ));
                    escapes += 1;
                }
            }
            at = range.end;
        }
    };
    for span in &parsed.spans {
        assert!(!span.text.is_empty(), "empty span");
        let start = (span.text.as_ptr() as usize)
            .checked_sub(base)
            .expect("span before the text");
        let end = start + span.text.len();
        assert!(
            start >= at && end <= text.len(),
            "span out of order or outside the text"
        );
        take_gap(&mut tokens, at, start);
        assert_eq!(
            span.style,
            tokens.style(),
            "style differs from the delimiters around {start}"
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
    take_gap(&mut tokens, at, text.len());
    drop(take_gap);
    assert!(removed.next().is_none(), "a removed range past the end");
    assert_eq!(
        tokens.style(),
        Style::default(),
        "a delimiter without its pair"
    );
    assert_eq!(unstyled(text).len() + escapes, text.len());
    if !text
        .bytes()
        .any(|b| matches!(b, b'*' | b'_' | b'~' | b'`' | b'\\'))
    {
        let plain: Vec<_> = parsed.spans.iter().map(|s| (s.text, s.style)).collect();
        let want: Vec<_> = Some((text, Style::default()))
            .filter(|_| !text.is_empty())
            .into_iter()
            .collect();
        assert_eq!(plain, want, "text without markers is one plain span");
    }
});
