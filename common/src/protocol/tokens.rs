//! The protocol's fixed vocabularies: colors, leave reasons and error codes.
//!
//! Each is an enum whose every value has exactly one lowercase wire token. One macro writes the
//! list of values, the token of each, parsing and `Display`, so a new value is one line and a
//! token can never be spelled two ways. Nothing here allocates.

use std::fmt;

/// Declares a wire-token enum: `ALL` (every value, in wire order), `as_str`, `parse` (exact
/// tokens, or any ASCII case with `any_case`) and `Display`.
macro_rules! wire_tokens {
    (@eq exact, $a:expr, $b:expr) => { $a == $b };
    (@eq any_case, $a:expr, $b:expr) => { $a.eq_ignore_ascii_case($b) };
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($case:ident) {
            $( $(#[$vmeta:meta])* $variant:ident => $token:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: [$name; [$($token),+].len()] = [$($name::$variant),+];

            /// The lowercase wire token.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $token, )+
                }
            }

            /// Parses a wire token (see the type's documentation for case rules).
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL
                    .into_iter()
                    .find(|v| wire_tokens!(@eq $case, v.as_str(), s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_tokens! {
    /// Chat colors, as accepted by `/color` (any case) and written on the wire (lowercase).
    pub enum Color (any_case) {
        /// `black`
        Black => "black",
        /// `red`
        Red => "red",
        /// `green`
        Green => "green",
        /// `yellow`
        Yellow => "yellow",
        /// `blue`
        Blue => "blue",
        /// `magenta`
        Magenta => "magenta",
        /// `cyan`
        Cyan => "cyan",
        /// `white`
        White => "white",
    }
}

wire_tokens! {
    /// Why a member left the room, as carried by `LEAVE` (exact lowercase tokens).
    pub enum LeaveReason (exact) {
        /// The member sent `/leave` or `/quit`.
        Left => "left",
        /// The member's connection closed.
        Quit => "quit",
        /// The operator kicked the member (or banned its address).
        Kicked => "kicked",
        /// The server cut the member off (slow or stalled reader, flood, protocol abuse).
        Dropped => "dropped",
    }
}

wire_tokens! {
    /// The code of an `ERROR` line: one lowercase token a program can branch on (exact).
    pub enum ErrorCode (exact) {
        /// The offered name breaks the name rule.
        BadName => "bad-name",
        /// The offered name is in use by a member or a waiting join (or cooling down).
        NameTaken => "name-taken",
        /// `/private` named nobody in the room.
        NoSuchUser => "no-such-user",
        /// An unknown color.
        BadColor => "bad-color",
        /// A line starting with `/` that is no command.
        UnknownCommand => "unknown-command",
        /// A command with missing or extra arguments.
        Usage => "usage",
        /// A line longer than the server's limit; it was discarded.
        LineTooLong => "line-too-long",
        /// A line that is not UTF-8; it was dropped.
        BadUtf8 => "bad-utf8",
        /// A request sent before the operator admitted the sender.
        NotAdmitted => "not-admitted",
        /// The server (or its waiting room, for this address) has no room for another join.
        ServerFull => "server-full",
        /// A request over a per-member limit (renames); nothing changed.
        RateLimited => "rate-limited",
        /// A `RESUME` token that admits nobody (unknown, void, expired, revoked, or of the
        /// wrong shape); `NAME?` follows.
        BadToken => "bad-token",
        /// The server cannot keep what it would relay (a full or failing disk); nothing was sent.
        Unavailable => "unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_parse_any_case_and_print_lowercase() {
        assert_eq!(Color::parse("RED"), Some(Color::Red));
        assert_eq!(Color::parse("Magenta"), Some(Color::Magenta));
        assert_eq!(Color::parse("purple"), None);
        assert_eq!(Color::parse(""), None);
        for c in Color::ALL {
            assert_eq!(Color::parse(c.as_str()), Some(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        assert_eq!(Color::ALL.len(), 8);
    }

    #[test]
    fn every_error_code_and_reason_round_trips_exactly() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(ErrorCode::parse(&code.as_str().to_uppercase()), None);
        }
        for r in LeaveReason::ALL {
            assert_eq!(LeaveReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            ErrorCode::parse("rate-limited"),
            Some(ErrorCode::RateLimited)
        );
        assert_eq!(LeaveReason::parse("Left"), None);
    }
}
