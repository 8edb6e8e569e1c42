//! The name rule: what a member may be called.
//!
//! A name is 1 to [`MAX_NAME_LEN`] of `A-Z a-z 0-9 _ -`, and never `you` in any case, so no
//! client ever has to show a member's line as the reader's own. Uniqueness (without regard to
//! case) is the server's business; this module only judges one name.

use std::fmt;

/// Longest member name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 32;

/// The name nobody may take, in any case: clients write it for the reader.
pub const RESERVED_NAME: &str = "you";

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// No characters.
    Empty,
    /// More than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// A character outside `A-Z a-z 0-9 _ -` (the first such one).
    BadChar(char),
    /// [`RESERVED_NAME`] in some case.
    Reserved,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("a name needs at least one character"),
            NameError::TooLong => write!(f, "a name is at most {MAX_NAME_LEN} characters"),
            NameError::BadChar(c) if c.is_control() || crate::sanitize::is_forbidden(*c) => {
                write!(
                    f,
                    "a name may hold only A-Z a-z 0-9 _ - (not U+{:04X})",
                    *c as u32
                )
            }
            NameError::BadChar(c) => {
                write!(f, "a name may hold only A-Z a-z 0-9 _ - (not {c:?})")
            }
            NameError::Reserved => {
                write!(f, "the name {RESERVED_NAME:?} is reserved; choose another")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// Checks a wanted name: 1 to [`MAX_NAME_LEN`] of `A-Z a-z 0-9 _ -`, not [`RESERVED_NAME`].
/// Surrounding spaces are not part of a name and are trimmed; the trimmed name is returned.
pub fn validate_name(raw: &str) -> Result<&str, NameError> {
    let name = crate::scan::trim_spaces(raw);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(c) = name.chars().find(|&c| !is_name_char(c)) {
        return Err(NameError::BadChar(c));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if name.eq_ignore_ascii_case(RESERVED_NAME) {
        return Err(NameError::Reserved);
    }
    Ok(name)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert_eq!(validate_name("bob"), Ok("bob"));
        assert_eq!(validate_name("  Bob_1-x "), Ok("Bob_1-x"));
        assert_eq!(validate_name(&"a".repeat(32)), Ok("a".repeat(32).as_str()));
        assert_eq!(validate_name(&"a".repeat(33)), Err(NameError::TooLong));
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("   "), Err(NameError::Empty));
        assert_eq!(validate_name("bo b"), Err(NameError::BadChar(' ')));
        assert_eq!(validate_name("bøb"), Err(NameError::BadChar('ø')));
        assert_eq!(validate_name("b\u{1b}b"), Err(NameError::BadChar('\u{1b}')));
        assert_eq!(
            validate_name("a\u{200b}b"),
            Err(NameError::BadChar('\u{200b}'))
        );
        assert_eq!(validate_name("a.b"), Err(NameError::BadChar('.')));
    }

    #[test]
    fn you_is_reserved_in_any_case() {
        for n in ["you", "You", "YOU", " yOu "] {
            assert_eq!(validate_name(n), Err(NameError::Reserved), "{n:?}");
        }
        assert_eq!(validate_name("you2"), Ok("you2"));
        assert_eq!(validate_name("yo"), Ok("yo"));
    }

    #[test]
    fn name_errors_never_echo_control_characters() {
        let text = NameError::BadChar('\u{1b}').to_string();
        assert!(text.contains("U+001B"), "{text}");
        assert!(!text.contains('\u{1b}'));
        let text = NameError::BadChar('\u{202e}').to_string();
        assert!(!text.contains('\u{202e}'), "{text}");
    }
}
