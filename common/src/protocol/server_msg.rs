//! Every line the server sends ([`ServerMsg`]): exact formatting and strict parsing.
//!
//! Formatting writes into a caller's buffer, so the server formats a line once and shares the
//! bytes; parsing borrows from the line. Parsing never panics: a malformed line is a
//! [`ParseError`].

use std::fmt;

use super::names::validate_name;
use super::tokens::{Color, ErrorCode, LeaveReason};
use super::word;

/// A line from the server. Text fields borrow from wherever the message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMsg<'a> {
    /// `NAME? <prompt>`: send a name.
    NameQuery {
        /// Words for people.
        prompt: &'a str,
    },
    /// `WAIT <text>`: the name is reserved; the operator must approve.
    Wait {
        /// Words for people.
        text: &'a str,
    },
    /// `WELCOME <name> <online>`: admitted.
    Welcome {
        /// The member's name.
        name: &'a str,
        /// Members online, the newcomer included.
        online: usize,
    },
    /// `DENIED <text>`: refused; the server closes next.
    Denied {
        /// Words for people.
        text: &'a str,
    },
    /// `JOIN <name>`: another member was admitted.
    Join {
        /// Who joined.
        name: &'a str,
    },
    /// `LEAVE <name> <reason>`: a member is gone.
    Leave {
        /// Who left.
        name: &'a str,
        /// Why.
        reason: LeaveReason,
    },
    /// `MSG <from> <color> <text>`: a room message.
    Msg {
        /// The sender.
        from: &'a str,
        /// The color, or `None` (`-` on the wire).
        color: Option<Color>,
        /// The text with its markup as typed.
        text: &'a str,
    },
    /// `PRIV <from> <to> <color> <text>`: a private message.
    Priv {
        /// The sender.
        from: &'a str,
        /// The one recipient.
        to: &'a str,
        /// The color, or `None`.
        color: Option<Color>,
        /// The text with its markup as typed.
        text: &'a str,
    },
    /// `ACT <from> <text>`: an action (`/me waves`), shown as `* alice waves`.
    Act {
        /// Who acts.
        from: &'a str,
        /// The action's text, markup as typed.
        text: &'a str,
    },
    /// `NICK <old> <new>`: a member was renamed (sent to every member, the renamer included).
    Nick {
        /// The name before.
        old: &'a str,
        /// The name after.
        new: &'a str,
    },
    /// `HIST <time> <line>`: one message of the room's history, sent right after `WELCOME`
    /// (and, in version 3, a resume's replay, which may hold the member's `PRIV`s).
    Hist {
        /// When the server relayed it: RFC 3339 UTC with milliseconds.
        time: &'a str,
        /// The original `MSG` or `ACT` line (or the `LEAVE` or `NICK` of a member who spoke in
        /// the history; or, in a version 3 resume's replay, a `PRIV`), without its LF; parse it
        /// with [`ServerMsg::parse`].
        line: &'a str,
    },
    /// `INFO <text>`: a notice for people.
    Info {
        /// Words for people.
        text: &'a str,
    },
    /// `ERROR <code> <text>`: a request failed.
    Error {
        /// What failed, for programs.
        code: ErrorCode,
        /// What failed, for people.
        text: &'a str,
    },
    /// `BYE <text>`: the server closes this connection next.
    Bye {
        /// Words for people.
        text: &'a str,
    },
}

/// Why a server line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The first word is no known tag.
    UnknownTag(String),
    /// A field is missing or malformed.
    BadField {
        /// The line's tag.
        tag: &'static str,
        /// The offending field.
        field: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownTag(t) => write!(f, "unknown server line tag {t:?}"),
            ParseError::BadField { tag, field } => write!(f, "malformed {tag} line near {field:?}"),
        }
    }
}

impl std::error::Error for ParseError {}

fn color_field(c: Option<Color>) -> &'static str {
    c.map_or("-", Color::as_str)
}

impl ServerMsg<'_> {
    /// The line's tag, its first word.
    pub fn tag(&self) -> &'static str {
        match self {
            ServerMsg::NameQuery { .. } => "NAME?",
            ServerMsg::Wait { .. } => "WAIT",
            ServerMsg::Welcome { .. } => "WELCOME",
            ServerMsg::Denied { .. } => "DENIED",
            ServerMsg::Join { .. } => "JOIN",
            ServerMsg::Leave { .. } => "LEAVE",
            ServerMsg::Msg { .. } => "MSG",
            ServerMsg::Priv { .. } => "PRIV",
            ServerMsg::Act { .. } => "ACT",
            ServerMsg::Nick { .. } => "NICK",
            ServerMsg::Hist { .. } => "HIST",
            ServerMsg::Info { .. } => "INFO",
            ServerMsg::Error { .. } => "ERROR",
            ServerMsg::Bye { .. } => "BYE",
        }
    }

    /// Appends the line, LF included, to `out`. Allocates only if `out` must grow.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = writeln!(out, "{self}");
    }

    /// The line, LF included, as a new byte vector.
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

impl fmt::Display for ServerMsg<'_> {
    /// The line without its LF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = self.tag();
        match *self {
            ServerMsg::NameQuery { prompt: text }
            | ServerMsg::Wait { text }
            | ServerMsg::Denied { text }
            | ServerMsg::Info { text }
            | ServerMsg::Bye { text } => write!(f, "{tag} {text}"),
            ServerMsg::Welcome { name, online } => write!(f, "{tag} {name} {online}"),
            ServerMsg::Join { name } => write!(f, "{tag} {name}"),
            ServerMsg::Leave { name, reason } => write!(f, "{tag} {name} {}", reason.as_str()),
            ServerMsg::Msg { from, color, text } => {
                write!(f, "{tag} {from} {} {text}", color_field(color))
            }
            ServerMsg::Priv {
                from,
                to,
                color,
                text,
            } => write!(f, "{tag} {from} {to} {} {text}", color_field(color)),
            ServerMsg::Act { from, text } => write!(f, "{tag} {from} {text}"),
            ServerMsg::Nick { old, new } => write!(f, "{tag} {old} {new}"),
            ServerMsg::Hist { time, line } => write!(f, "{tag} {time} {line}"),
            ServerMsg::Error { code, text } => write!(f, "{tag} {} {text}", code.as_str()),
        }
    }
}

impl<'a> ServerMsg<'a> {
    /// Parses one line (without its LF) as the server sends it.
    pub fn parse(line: &'a str) -> Result<ServerMsg<'a>, ParseError> {
        let (tag, rest) = word(line);
        let bad = |tag: &'static str, field: &str| ParseError::BadField {
            tag,
            field: field.to_owned(),
        };
        let name_field = |tag: &'static str, s: &'a str| -> Result<&'a str, ParseError> {
            validate_name(s)
                .ok()
                .filter(|n| n.len() == s.len())
                .ok_or_else(|| bad(tag, s))
        };
        let color_field = |tag: &'static str, s: &str| -> Result<Option<Color>, ParseError> {
            if s == "-" {
                return Ok(None);
            }
            match Color::parse(s) {
                Some(c) if c.as_str() == s => Ok(Some(c)),
                _ => Err(bad(tag, s)),
            }
        };
        Ok(match tag {
            "NAME?" => ServerMsg::NameQuery { prompt: rest },
            "WAIT" => ServerMsg::Wait { text: rest },
            "DENIED" => ServerMsg::Denied { text: rest },
            "INFO" => ServerMsg::Info { text: rest },
            "BYE" => ServerMsg::Bye { text: rest },
            "WELCOME" => {
                let (name, online) = word(rest);
                ServerMsg::Welcome {
                    name: name_field("WELCOME", name)?,
                    online: online.parse().map_err(|_| bad("WELCOME", online))?,
                }
            }
            "JOIN" => ServerMsg::Join {
                name: name_field("JOIN", rest)?,
            },
            "LEAVE" => {
                let (name, reason) = word(rest);
                ServerMsg::Leave {
                    name: name_field("LEAVE", name)?,
                    reason: LeaveReason::parse(reason).ok_or_else(|| bad("LEAVE", reason))?,
                }
            }
            "MSG" => {
                let (from, rest) = word(rest);
                let (color, text) = word(rest);
                ServerMsg::Msg {
                    from: name_field("MSG", from)?,
                    color: color_field("MSG", color)?,
                    text,
                }
            }
            "PRIV" => {
                let (from, rest) = word(rest);
                let (to, rest) = word(rest);
                let (color, text) = word(rest);
                ServerMsg::Priv {
                    from: name_field("PRIV", from)?,
                    to: name_field("PRIV", to)?,
                    color: color_field("PRIV", color)?,
                    text,
                }
            }
            "ACT" => {
                let (from, text) = word(rest);
                ServerMsg::Act {
                    from: name_field("ACT", from)?,
                    text,
                }
            }
            "NICK" => {
                let (old, new) = word(rest);
                ServerMsg::Nick {
                    old: name_field("NICK", old)?,
                    new: name_field("NICK", new)?,
                }
            }
            "HIST" => {
                let (time, line) = word(rest);
                if time.is_empty() {
                    return Err(bad("HIST", time));
                }
                // Only room messages, the departures and renames of those who spoke them, and (in
                // a version 3 resume's replay) privates are ever history: anything else is a
                // malformed line.
                match ServerMsg::parse(line) {
                    Ok(
                        ServerMsg::Msg { .. }
                        | ServerMsg::Act { .. }
                        | ServerMsg::Priv { .. }
                        | ServerMsg::Leave { .. }
                        | ServerMsg::Nick { .. },
                    ) => {}
                    _ => return Err(bad("HIST", line)),
                }
                ServerMsg::Hist { time, line }
            }
            "ERROR" => {
                let (code, text) = word(rest);
                ServerMsg::Error {
                    code: ErrorCode::parse(code).ok_or_else(|| bad("ERROR", code))?,
                    text,
                }
            }
            other => return Err(ParseError::UnknownTag(other.to_owned())),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_lines_format_exactly() {
        let cases: Vec<(ServerMsg<'_>, &str)> = vec![
            (
                ServerMsg::NameQuery {
                    prompt: "your name?",
                },
                "NAME? your name?\n",
            ),
            (ServerMsg::Wait { text: "waiting" }, "WAIT waiting\n"),
            (
                ServerMsg::Welcome {
                    name: "bob",
                    online: 3,
                },
                "WELCOME bob 3\n",
            ),
            (ServerMsg::Denied { text: "no" }, "DENIED no\n"),
            (ServerMsg::Join { name: "al" }, "JOIN al\n"),
            (
                ServerMsg::Leave {
                    name: "al",
                    reason: LeaveReason::Dropped,
                },
                "LEAVE al dropped\n",
            ),
            (
                ServerMsg::Msg {
                    from: "al",
                    color: None,
                    text: "hi **there**",
                },
                "MSG al - hi **there**\n",
            ),
            (
                ServerMsg::Msg {
                    from: "al",
                    color: Some(Color::Red),
                    text: "x",
                },
                "MSG al red x\n",
            ),
            (
                ServerMsg::Priv {
                    from: "al",
                    to: "bo",
                    color: Some(Color::Cyan),
                    text: "psst",
                },
                "PRIV al bo cyan psst\n",
            ),
            (
                ServerMsg::Act {
                    from: "al",
                    text: "waves **hard**",
                },
                "ACT al waves **hard**\n",
            ),
            (
                ServerMsg::Nick {
                    old: "al",
                    new: "Al",
                },
                "NICK al Al\n",
            ),
            (
                ServerMsg::Hist {
                    time: "2026-12-01T16:05:09.123Z",
                    line: "MSG al - hi",
                },
                "HIST 2026-12-01T16:05:09.123Z MSG al - hi\n",
            ),
            (ServerMsg::Info { text: "2 online" }, "INFO 2 online\n"),
            (
                ServerMsg::Error {
                    code: ErrorCode::NoSuchUser,
                    text: "nobody named x",
                },
                "ERROR no-such-user nobody named x\n",
            ),
            (ServerMsg::Bye { text: "bye" }, "BYE bye\n"),
        ];
        for (msg, line) in cases {
            assert_eq!(String::from_utf8(msg.to_line()).unwrap(), line);
            assert_eq!(ServerMsg::parse(line.trim_end_matches('\n')), Ok(msg));
        }
    }

    #[test]
    fn malformed_server_lines_are_errors() {
        assert!(matches!(
            ServerMsg::parse("HELLO x"),
            Err(ParseError::UnknownTag(_))
        ));
        assert!(ServerMsg::parse("WELCOME bob many").is_err());
        assert!(ServerMsg::parse("LEAVE bob vanished").is_err());
        assert!(ServerMsg::parse("MSG bob purple hi").is_err());
        assert!(ServerMsg::parse("MSG bob RED hi").is_err());
        assert!(ServerMsg::parse("ERROR oops x").is_err());
        assert!(ServerMsg::parse("JOIN b\u{1b}b").is_err());
        assert!(ServerMsg::parse("NICK al").is_err());
        assert!(ServerMsg::parse("NICK al a.b").is_err());
        assert!(ServerMsg::parse("ACT a.b waves").is_err());
        assert!(ServerMsg::parse("").is_err());
    }

    #[test]
    fn history_holds_only_room_messages_and_their_speakers_departures_and_renames() {
        for good in [
            "HIST 2026-12-01T16:05:09.123Z ACT al waves",
            "HIST 2026-12-01T16:05:09.123Z LEAVE al quit",
            "HIST 2026-12-01T16:05:09.123Z NICK al bo",
            // Version 3: a resume's replay carries the member's privates.
            "HIST 2026-12-01T16:05:09.123Z PRIV al bo - hi",
        ] {
            assert!(ServerMsg::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "HIST 2026-12-01T16:05:09.123Z JOIN al",
            "HIST 2026-12-01T16:05:09.123Z HIST x MSG al - hi",
            "HIST  MSG al - hi",
            "HIST",
        ] {
            assert!(ServerMsg::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,32}".prop_filter("reserved", |n| !n.eq_ignore_ascii_case("you"))
    }
    fn text() -> impl Strategy<Value = String> {
        // Anything the server could send after sanitizing: no controls, no LF.
        "[^\\p{Cc}\u{202a}-\u{202e}\u{2066}-\u{2069}]{0,60}"
    }
    fn color() -> impl Strategy<Value = Option<Color>> {
        prop::option::of(prop::sample::select(Color::ALL.to_vec()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn format_then_parse_is_identity(
            kind in 0usize..14, a in name(), b in name(), t in text(), c in color(),
            n in any::<usize>(), r in prop::sample::select(LeaveReason::ALL.to_vec()),
            code in prop::sample::select(ErrorCode::ALL.to_vec()),
        ) {
            let inner = format!("MSG {a} - {t}");
            let msg = match kind {
                0 => ServerMsg::NameQuery { prompt: &t },
                1 => ServerMsg::Wait { text: &t },
                2 => ServerMsg::Welcome { name: &a, online: n },
                3 => ServerMsg::Denied { text: &t },
                4 => ServerMsg::Join { name: &a },
                5 => ServerMsg::Leave { name: &a, reason: r },
                6 => ServerMsg::Msg { from: &a, color: c, text: &t },
                7 => ServerMsg::Priv { from: &a, to: &b, color: c, text: &t },
                8 => ServerMsg::Info { text: &t },
                9 => ServerMsg::Error { code, text: &t },
                10 => ServerMsg::Act { from: &a, text: &t },
                11 => ServerMsg::Nick { old: &a, new: &b },
                12 => ServerMsg::Hist { time: "2026-12-01T16:05:09.123Z", line: &inner },
                _ => ServerMsg::Bye { text: &t },
            };
            let line = msg.to_string();
            prop_assert!(!line.contains('\n'));
            prop_assert_eq!(ServerMsg::parse(&line), Ok(msg));
        }

        #[test]
        fn parser_never_panics(s in any::<String>()) {
            let _ = ServerMsg::parse(&s);
        }
    }
}
