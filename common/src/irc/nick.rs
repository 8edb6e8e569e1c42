//! The nick rule for IRC members: a nick is a room name (`crate::protocol::validate_name`:
//! 1 to 32 of `A-Z a-z 0-9 _ -`, not `you`), so formatting codes, bidi characters and anything
//! else outside the rule get `432` (ERR_ERRONEUSNICKNAME). Uniqueness (`433`) is the room's
//! business. This module only judges one nick and never panics.

use crate::protocol::{validate_name, NameError, MAX_NAME_LEN};

/// The `NICKLEN` this server announces in `005`: the room's name limit.
pub const NICKLEN: usize = MAX_NAME_LEN;

/// Checks a wanted nick; the error's `Display` is the text of the `432` reply. Unlike a room
/// name, a nick is never trimmed: a space cannot be in one.
pub fn validate_nick(nick: &str) -> Result<&str, NameError> {
    if nick.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(c) = nick.chars().find(|&c| c == ' ') {
        return Err(NameError::BadChar(c));
    }
    validate_name(nick)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nicks_follow_the_name_rule() {
        for good in ["alice", "Bob_2", "x", "a-b", &"n".repeat(NICKLEN)] {
            assert_eq!(validate_nick(good), Ok(good));
        }
        assert_eq!(validate_nick(""), Err(NameError::Empty));
        assert_eq!(
            validate_nick(&"n".repeat(NICKLEN + 1)),
            Err(NameError::TooLong)
        );
        assert_eq!(validate_nick("You"), Err(NameError::Reserved));
    }

    #[test]
    fn formatting_codes_and_bidi_are_erroneous() {
        for (bad, c) in [
            ("\x02bold", '\x02'),
            ("a\x0304b", '\x03'),
            ("ev\u{202e}il", '\u{202e}'),
            ("iso\u{2066}", '\u{2066}'),
            ("with space", ' '),
            (" lead", ' '),
            ("#chan", '#'),
            ("a:b", ':'),
        ] {
            assert_eq!(validate_nick(bad), Err(NameError::BadChar(c)), "{bad:?}");
        }
        // The reply names the character without printing it.
        let text = validate_nick("ev\u{202e}il").unwrap_err().to_string();
        assert!(text.contains("U+202E"), "{text}");
        assert!(!text.contains('\u{202e}'));
    }
}
