//! Splitting protocol lines at spaces, byte by byte.
//!
//! The fields these split (a command, a name, a color, a channel) are a few bytes long, and
//! the standard library's `split_once(' ')` and `trim_matches(' ')` set up a general character
//! searcher for each call: that set-up cost more than the search (about 130 instructions a call,
//! five calls a relayed IRC message; docs/PERFORMANCE.md). A plain loop over the bytes finds the
//! same space: ASCII space is never part of another UTF-8 character, so every cut here is a
//! character boundary.

/// `s` cut at its first space: the part before and the part after (the space dropped);
/// `None` without a space. The same as `s.split_once(' ')`.
pub fn split_space(s: &str) -> Option<(&str, &str)> {
    let at = s.bytes().position(|b| b == b' ')?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// `s` without its leading spaces. The same as `s.trim_start_matches(' ')`.
pub fn trim_start_spaces(s: &str) -> &str {
    let start = s.bytes().position(|b| b != b' ').unwrap_or(s.len());
    s.get(start..).unwrap_or("")
}

/// `s` without its leading and trailing spaces. The same as `s.trim_matches(' ')`.
pub fn trim_spaces(s: &str) -> &str {
    let s = trim_start_spaces(s);
    let end = s.bytes().rposition(|b| b != b' ').map_or(0, |i| i + 1);
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_and_trims() {
        assert_eq!(split_space("MSG al - hi"), Some(("MSG", "al - hi")));
        assert_eq!(split_space(" x"), Some(("", "x")));
        assert_eq!(split_space("x "), Some(("x", "")));
        assert_eq!(split_space("x"), None);
        assert_eq!(split_space("é ü"), Some(("é", "ü")));
        assert_eq!(trim_start_spaces("  a b "), "a b ");
        assert_eq!(trim_spaces("  a b  "), "a b");
        assert_eq!(trim_spaces("   "), "");
        assert_eq!(trim_spaces(""), "");
    }

    proptest! {
        #[test]
        fn the_same_as_the_standard_library(s in "[ a-zé\u{3000}\t]{0,12}") {
            prop_assert_eq!(split_space(&s), s.split_once(' '));
            prop_assert_eq!(trim_start_spaces(&s), s.trim_start_matches(' '));
            prop_assert_eq!(trim_spaces(&s), s.trim_matches(' '));
        }
    }
}
