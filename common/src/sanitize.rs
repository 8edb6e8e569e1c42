//! Removal of characters that must never reach another person's terminal.
//!
//! This module owns one rule of the protocol: control characters (C0, DEL, C1; a tab becomes a
//! space), the bidirectional override and isolate characters (U+202A-U+202E, U+2066-U+2069)
//! and the line and paragraph separators (U+2028, U+2029) never reach another member. The
//! server applies it to every line a peer sends; the client
//! applies it again to every line it prints, so a hostile server cannot paint the terminal
//! either. It never allocates when the text is already clean, which is the common case.

use std::borrow::Cow;

/// Whether `c` is forbidden in text shown to people: C0 controls (except tab, which is
/// replaced), DEL, C1 controls, the bidi embedding, override and isolate characters, and the
/// line and paragraph separators, which break a line in two in logs and non-terminal viewers.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether `c` is one of the bidirectional embedding/override (U+202A-U+202E) or isolate
/// (U+2066-U+2069) characters, which can make a line read differently from what it holds.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Returns `text` with every tab turned into a space and every other forbidden character
/// removed. Borrows when there is nothing to change.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    // Fast path: ASCII without controls needs no work and no allocation.
    if !text.chars().any(is_forbidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\t' {
            out.push(' ');
        } else if !is_forbidden(c) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether a sanitized line says nothing: empty or only whitespace (Unicode `White_Space`, so
/// no-break and ideographic spaces too). The server ignores such a line; the client neither
/// sends nor echoes it, so both sides agree on what was said.
pub fn is_blank(clean: &str) -> bool {
    clean.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blank_is_only_whitespace() {
        for blank in ["", " ", "   ", "\u{a0}", "\u{3000} \u{2003}"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for said in ["a", " a ", "\u{a0}.", "\u{200b}"] {
            assert!(!is_blank(said), "{said:?}");
        }
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(sanitize("hello, wörld ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn tab_becomes_space() {
        assert_eq!(sanitize("a\tb"), "a b");
    }

    #[test]
    fn c0_del_and_c1_are_removed() {
        assert_eq!(sanitize("a\u{1b}[31mred\u{7}\u{7f}b"), "a[31mredb");
        assert_eq!(sanitize("x\u{9b}31my\u{85}z"), "x31myz");
        assert_eq!(sanitize("\r\n\0"), "");
    }

    #[test]
    fn osc_title_change_is_defused() {
        // ESC ] 0 ; title BEL: without ESC and BEL it is inert text.
        assert_eq!(sanitize("\u{1b}]0;pwned\u{7}hi"), "]0;pwnedhi");
    }

    #[test]
    fn bidi_overrides_and_isolates_are_removed() {
        for c in ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}'] {
            assert_eq!(sanitize(&format!("a{c}b")), "ab");
        }
        for c in ['\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'] {
            assert_eq!(sanitize(&format!("a{c}b")), "ab");
        }
        // Neighbours of the ranges are ordinary text.
        assert_eq!(
            sanitize("\u{2027}\u{202F}\u{206A}"),
            "\u{2027}\u{202F}\u{206A}"
        );
    }

    #[test]
    fn line_and_paragraph_separators_are_removed() {
        assert_eq!(sanitize("one\u{2028}two\u{2029}three"), "onetwothree");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn output_never_holds_a_forbidden_char(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}\\u{2028}\\u{2029}a ]*") {
            let out = sanitize(&s);
            prop_assert!(!out.chars().any(is_forbidden));
        }

        #[test]
        fn sanitize_is_idempotent(s in any::<String>()) {
            let once = sanitize(&s).into_owned();
            prop_assert_eq!(sanitize(&once), once.as_str());
        }
    }
}
