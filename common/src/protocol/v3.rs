//! The version 3 additions to the wire: tags and message ids, tokens, resume.
//!
//! Owns the syntax only: the tag prefix (`@id=<id>;time=<time> ` in the IRCv3 message-tags
//! form) in front of a version 2 line, the new server lines [`V3Msg`] (`HELLO`, `TOKEN`, `ECHO`,
//! `GAP`), and the lines a connection may open with before its name ([`Opening`]: `HELLO 3`,
//! `RESUME <name> <token> <last-id>`, or the name itself). It never decides what an id means,
//! makes or checks a token's secret, or touches a socket; it never panics on any input.
//!
//! Version 2 lines keep their type ([`super::ServerMsg`]): a version 3 client strips the prefix
//! with [`split_tags`], then tries [`V3Msg::parse`] and [`super::ServerMsg::parse`]. The new lines
//! have a type of their own so that no version 2 reader has to learn them.

use std::fmt;

use super::names::{validate_name, NameError};
use super::word;

/// The protocol version this crate speaks (`HELLO 3`).
pub const VERSION: u32 = 3;
/// Longest message id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Shortest token a peer may present: 22 characters of a 64-letter alphabet hold 132 bits,
/// the least above the contract's 128.
pub const MIN_TOKEN_LEN: usize = 22;
/// Longest token a peer may present (ours are shorter; this bounds what a peer may send).
pub const MAX_TOKEN_LEN: usize = 128;
/// The tag that carries a message's id.
pub const TAG_ID: &str = "id";
/// The tag that carries when the server relayed a message.
pub const TAG_TIME: &str = "time";
/// Longest tag prefix a reader accepts (`@` to the space), so a hostile prefix is bounded.
pub const MAX_TAGS_LEN: usize = 512;

/// A character of ids and tokens: `A-Z a-z 0-9 _ -`.
pub fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether `s` is a message id: 1 to [`MAX_ID_LEN`] of `A-Z a-z 0-9 _ -`.
pub fn is_id(s: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&s.len()) && s.bytes().all(is_id_char)
}

/// Whether `s` has the shape of a token: [`MIN_TOKEN_LEN`] to [`MAX_TOKEN_LEN`] of
/// `A-Z a-z 0-9 _ -`. Says nothing of whether it admits anyone.
pub fn is_token(s: &str) -> bool {
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&s.len()) && s.bytes().all(is_id_char)
}

/// The tag prefix of one line: `key=value` pairs separated by `;`, borrowed from the line.
///
/// Values are returned raw: the IRCv3 escapes (`\:` `\s` ...) are not undone, because the
/// values this protocol sends (ids, RFC 3339 times) never need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags<'a> {
    raw: &'a str,
}

impl<'a> Tags<'a> {
    /// Every `(key, value)` pair, in order; a key without `=` has the value `""`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.raw
            .split(';')
            .filter(|t| !t.is_empty())
            .map(|t| t.split_once('=').unwrap_or((t, "")))
    }

    /// The value of the first tag named `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The message id (`id=`), when it is a well-formed id.
    pub fn id(&self) -> Option<&'a str> {
        self.get(TAG_ID).filter(|v| is_id(v))
    }

    /// The relay time (`time=`), unchecked text.
    pub fn time(&self) -> Option<&'a str> {
        self.get(TAG_TIME).filter(|v| !v.is_empty())
    }

    /// The prefix as received, without its `@` and its space.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

/// Splits a server line into its tag prefix, if any, and the line after it.
///
/// A line that starts with `@` and holds a space within [`MAX_TAGS_LEN`] bytes has a prefix;
/// anything else is returned whole with no tags (a version 2 line never starts with `@`).
pub fn split_tags(line: &str) -> (Option<Tags<'_>>, &str) {
    let Some(body) = line.strip_prefix('@') else {
        return (None, line);
    };
    match body.find(' ') {
        Some(end) if end < MAX_TAGS_LEN => (Some(Tags { raw: &body[..end] }), &body[end + 1..]),
        _ => (None, line),
    }
}

/// Appends the prefix `@id=<id>;time=<time> ` to `out`. Both must be tag-safe (no space, `;`,
/// `\`, CR or LF): ids are, by [`is_id`], and so are RFC 3339 times.
pub fn write_tags(out: &mut Vec<u8>, id: &str, time: &str) {
    out.reserve(id.len() + time.len() + 11);
    out.push(b'@');
    out.extend_from_slice(TAG_ID.as_bytes());
    out.push(b'=');
    out.extend_from_slice(id.as_bytes());
    out.push(b';');
    out.extend_from_slice(TAG_TIME.as_bytes());
    out.push(b'=');
    out.extend_from_slice(time.as_bytes());
    out.push(b' ');
}

/// A server line that only version 3 sessions get. Its `Debug` shows a `TOKEN`'s length,
/// never the secret, so no log line or test failure can print a member's token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum V3Msg<'a> {
    /// `HELLO <version>`: the answer to a client's `HELLO`.
    Hello {
        /// The version the session speaks from now on.
        version: u32,
    },
    /// `TOKEN <secret>`: the member's proof of approval; the previous one is void.
    Token {
        /// The secret: keep it, show it to nobody.
        secret: &'a str,
    },
    /// `ECHO <id>`: the id the room gave the sender's last `MSG`, `ACT` or `PRIV`.
    Echo {
        /// The id.
        id: &'a str,
    },
    /// `GAP <text>`: messages after the resumed id are no longer kept; some were missed.
    Gap {
        /// Words for people.
        text: &'a str,
    },
}

impl fmt::Debug for V3Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V3Msg::Hello { version } => f.debug_struct("Hello").field("version", version).finish(),
            V3Msg::Token { secret } => f
                .debug_struct("Token")
                .field("secret", &Redacted(secret))
                .finish(),
            V3Msg::Echo { id } => f.debug_struct("Echo").field("id", id).finish(),
            V3Msg::Gap { text } => f.debug_struct("Gap").field("text", text).finish(),
        }
    }
}

/// A secret in a `Debug` output: its length only.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// Why a version 3 server line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V3ParseError {
    /// The first word is none of `HELLO`, `TOKEN`, `ECHO`, `GAP` (maybe a version 2 line).
    NotV3,
    /// A field is missing or malformed.
    BadField {
        /// The line's tag.
        tag: &'static str,
        /// The offending field.
        field: String,
    },
}

impl fmt::Display for V3ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V3ParseError::NotV3 => f.write_str("not a version 3 line"),
            V3ParseError::BadField { tag, field } => {
                write!(f, "malformed {tag} line near {field:?}")
            }
        }
    }
}

impl std::error::Error for V3ParseError {}

/// A version number: plain decimal digits (no sign, at most 9 of them).
fn version_field(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl<'a> V3Msg<'a> {
    /// The line's tag, its first word.
    pub fn tag(&self) -> &'static str {
        match self {
            V3Msg::Hello { .. } => "HELLO",
            V3Msg::Token { .. } => "TOKEN",
            V3Msg::Echo { .. } => "ECHO",
            V3Msg::Gap { .. } => "GAP",
        }
    }

    /// Appends the line, LF included, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        // Writing into a Vec cannot fail.
        let _ = writeln!(out, "{self}");
    }

    /// Parses one line (without its LF and without a tag prefix).
    pub fn parse(line: &'a str) -> Result<V3Msg<'a>, V3ParseError> {
        let (tag, rest) = word(line);
        let bad = |tag: &'static str, field: &str| V3ParseError::BadField {
            tag,
            field: field.to_owned(),
        };
        Ok(match tag {
            "HELLO" => V3Msg::Hello {
                version: version_field(rest).ok_or_else(|| bad("HELLO", rest))?,
            },
            "TOKEN" if is_token(rest) => V3Msg::Token { secret: rest },
            // Never quote a malformed secret back: it may be most of a real one.
            "TOKEN" => return Err(bad("TOKEN", "<secret>")),
            "ECHO" if is_id(rest) => V3Msg::Echo { id: rest },
            "ECHO" => return Err(bad("ECHO", rest)),
            // `GAP <text>`: the text says what is missing, so a bare `GAP` is malformed (and
            // could not be written back as it came).
            "GAP" if !rest.is_empty() => V3Msg::Gap { text: rest },
            "GAP" => return Err(bad("GAP", rest)),
            _ => return Err(V3ParseError::NotV3),
        })
    }
}

impl fmt::Display for V3Msg<'_> {
    /// The line without its LF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = self.tag();
        match *self {
            V3Msg::Hello { version } => write!(f, "{tag} {version}"),
            V3Msg::Token { secret } => write!(f, "{tag} {secret}"),
            V3Msg::Echo { id } => write!(f, "{tag} {id}"),
            V3Msg::Gap { text } => write!(f, "{tag} {text}"),
        }
    }
}

/// A line a connection sends before it is admitted: `HELLO`, `RESUME`, or its wanted name.
/// Its `Debug` shows a `RESUME` token's length, never the token (its `Display` is the wire
/// line, token included: for the wire only).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Opening<'a> {
    /// `HELLO <version>`.
    Hello {
        /// The highest version the client speaks.
        version: u32,
    },
    /// `RESUME <name> <token> <last-id>`.
    Resume {
        /// The name the token was given for (validated by the name rule).
        name: &'a str,
        /// The token, of a valid shape (see [`is_token`]); whether it admits is the server's
        /// business.
        token: &'a str,
        /// The last id the client has, or `None` for `-`.
        last: Option<&'a str>,
    },
    /// Anything else: the wanted name, as in version 1 (judged by the caller's name rule).
    Name(&'a str),
}

impl fmt::Debug for Opening<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opening::Hello { version } => {
                f.debug_struct("Hello").field("version", version).finish()
            }
            Opening::Resume { name, token, last } => f
                .debug_struct("Resume")
                .field("name", name)
                .field("token", &Redacted(token))
                .field("last", last)
                .finish(),
            Opening::Name(name) => f.debug_tuple("Name").field(name).finish(),
        }
    }
}

/// Why a `HELLO` or `RESUME` line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpeningError {
    /// `HELLO` without a plain decimal version.
    BadHello,
    /// `RESUME` without exactly three fields.
    ResumeUsage,
    /// `RESUME` with a name that breaks the name rule.
    BadName(NameError),
    /// `RESUME` with a token of the wrong length or alphabet.
    BadToken,
    /// `RESUME` with a last id that is neither `-` nor an id.
    BadLastId,
}

impl fmt::Display for OpeningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpeningError::BadHello => f.write_str("usage: HELLO <version>"),
            OpeningError::ResumeUsage => f.write_str("usage: RESUME <name> <token> <last-id|->"),
            OpeningError::BadName(e) => write!(f, "RESUME: {e}"),
            OpeningError::BadToken => write!(
                f,
                "a token is {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} of A-Z a-z 0-9 _ -"
            ),
            OpeningError::BadLastId => write!(
                f,
                "RESUME: the last id is - or 1 to {MAX_ID_LEN} of A-Z a-z 0-9 _ -"
            ),
        }
    }
}

impl std::error::Error for OpeningError {}

/// Parses a line sent before admission (without its LF; sanitized like any line).
///
/// `HELLO` and `RESUME` are matched exactly (upper case, one space between fields): neither
/// `HELLO 3` nor a `RESUME` line can be a name, since names hold no spaces, so a version 1
/// client's name is never taken for one. A bare `HELLO` or `RESUME` is a name.
pub fn parse_opening(line: &str) -> Result<Opening<'_>, OpeningError> {
    if let Some(v) = line.strip_prefix("HELLO ") {
        return version_field(v)
            .map(|version| Opening::Hello { version })
            .ok_or(OpeningError::BadHello);
    }
    let Some(args) = line.strip_prefix("RESUME ") else {
        return Ok(Opening::Name(line));
    };
    let mut fields = args.split(' ');
    let (Some(name), Some(token), Some(last), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(OpeningError::ResumeUsage);
    };
    let name = validate_name(name).map_err(OpeningError::BadName)?;
    if name.is_empty() || token.is_empty() || last.is_empty() {
        return Err(OpeningError::ResumeUsage);
    }
    if !is_token(token) {
        return Err(OpeningError::BadToken);
    }
    let last = match last {
        "-" => None,
        id if is_id(id) => Some(id),
        _ => return Err(OpeningError::BadLastId),
    };
    Ok(Opening::Resume { name, token, last })
}

impl fmt::Display for Opening<'_> {
    /// The line as a client sends it, without its LF.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Opening::Hello { version } => write!(f, "HELLO {version}"),
            Opening::Resume { name, token, last } => {
                write!(f, "RESUME {name} {token} {}", last.unwrap_or("-"))
            }
            Opening::Name(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::ServerMsg;
    use proptest::prelude::*;

    const TOKEN: &str = "abcdefghijklmnopqrstuvwxyz012345";

    /// A derived `Debug` printed the token of a parsed `RESUME` and of a `TOKEN` line into any
    /// log line or test failure that formatted them.
    #[test]
    fn debug_shows_a_tokens_length_never_the_token() {
        let line = format!("RESUME alice {TOKEN} 42");
        let resume = parse_opening(&line).unwrap();
        let shown = format!("{resume:?} {resume:#?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(
            shown.contains("<32 bytes>") && shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("\"42\""), "{shown}");
        let line = format!("TOKEN {TOKEN}");
        let token = V3Msg::parse(&line).unwrap();
        let shown = format!("{token:?} {token:#?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(
            shown.contains("Token") && shown.contains("<32 bytes>"),
            "{shown}"
        );
        // The other variants read as a derived Debug would.
        assert_eq!(format!("{:?}", parse_opening("bob")), "Ok(Name(\"bob\"))");
        assert_eq!(
            format!("{:?}", V3Msg::parse("ECHO 7")),
            "Ok(Echo { id: \"7\" })"
        );
    }

    /// Found by the `v3` fuzz target: a bare `GAP` parsed, and was written back as `GAP `.
    #[test]
    fn a_gap_without_text_is_malformed() {
        for line in ["GAP", "GAP "] {
            assert!(
                matches!(
                    V3Msg::parse(line),
                    Err(V3ParseError::BadField { tag: "GAP", .. })
                ),
                "{line:?}"
            );
        }
        let gap = V3Msg::parse("GAP some messages are missing").unwrap();
        assert_eq!(gap.to_string(), "GAP some messages are missing");
    }

    #[test]
    fn tagged_lines_split_into_tags_and_a_version_2_line() {
        let line = "@id=e1-42;time=2026-12-01T16:05:09.123Z MSG al - hi there";
        let (tags, rest) = split_tags(line);
        let tags = tags.unwrap();
        assert_eq!(tags.id(), Some("e1-42"));
        assert_eq!(tags.time(), Some("2026-12-01T16:05:09.123Z"));
        assert_eq!(tags.get("other"), None);
        assert_eq!(
            ServerMsg::parse(rest).unwrap(),
            ServerMsg::Msg {
                from: "al",
                color: None,
                text: "hi there"
            }
        );
        assert_eq!(split_tags("MSG al - @x y"), (None, "MSG al - @x y"));
        assert_eq!(split_tags("@nospace").0, None);
        let (tags, rest) = split_tags("@a;b=;id=x.y;k=v=w JOIN al");
        let tags = tags.unwrap();
        assert_eq!(rest, "JOIN al");
        assert_eq!(tags.get("a"), Some(""));
        assert_eq!(tags.get("k"), Some("v=w"));
        assert_eq!(tags.id(), None, "an id outside the alphabet is no id");
        let long = format!("@{} MSG al - x", "a".repeat(MAX_TAGS_LEN));
        assert_eq!(split_tags(&long).0, None);
    }

    #[test]
    fn tags_write_exactly() {
        let mut out = Vec::new();
        write_tags(&mut out, "e1-7", "2026-12-01T16:05:09.123Z");
        ServerMsg::Act {
            from: "al",
            text: "waves",
        }
        .write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "@id=e1-7;time=2026-12-01T16:05:09.123Z ACT al waves\n"
        );
    }

    #[test]
    fn v3_lines_format_and_parse_exactly() {
        let cases = [
            (V3Msg::Hello { version: 3 }, "HELLO 3\n"),
            (
                V3Msg::Token { secret: TOKEN },
                "TOKEN abcdefghijklmnopqrstuvwxyz012345\n",
            ),
            (V3Msg::Echo { id: "e1-9" }, "ECHO e1-9\n"),
            (
                V3Msg::Gap {
                    text: "older messages are gone",
                },
                "GAP older messages are gone\n",
            ),
        ];
        for (msg, line) in cases {
            let mut out = Vec::new();
            msg.write_to(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), line);
            assert_eq!(V3Msg::parse(line.trim_end()), Ok(msg));
        }
        for bad in [
            "HELLO",
            "HELLO x",
            "HELLO +3",
            "HELLO 3 4",
            "HELLO 9999999999",
            "TOKEN short",
            "TOKEN abcdefghijklmnopqrstuvwxyz01234.",
            "ECHO",
            "ECHO a b",
        ] {
            assert!(
                matches!(V3Msg::parse(bad), Err(V3ParseError::BadField { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(V3Msg::parse("MSG al - hi"), Err(V3ParseError::NotV3));
        assert_eq!(V3Msg::parse(""), Err(V3ParseError::NotV3));
        let shown = V3Msg::parse("TOKEN abcdefghijklmnopqrstuvwxyz0123%")
            .unwrap_err()
            .to_string();
        assert!(!shown.contains("abcdefgh"), "{shown}");
    }

    #[test]
    fn openings_parse_strictly() {
        assert_eq!(parse_opening("HELLO 3"), Ok(Opening::Hello { version: 3 }));
        assert_eq!(
            parse_opening("HELLO 12"),
            Ok(Opening::Hello { version: 12 })
        );
        assert_eq!(parse_opening("HELLO"), Ok(Opening::Name("HELLO")));
        assert_eq!(parse_opening("alice"), Ok(Opening::Name("alice")));
        assert_eq!(parse_opening("hello 3"), Ok(Opening::Name("hello 3")));
        assert_eq!(parse_opening("HELLO three"), Err(OpeningError::BadHello));
        assert_eq!(parse_opening("HELLO "), Err(OpeningError::BadHello));
        let resume = format!("RESUME alice {TOKEN} e1-4");
        assert_eq!(
            parse_opening(&resume),
            Ok(Opening::Resume {
                name: "alice",
                token: TOKEN,
                last: Some("e1-4")
            })
        );
        assert_eq!(parse_opening(&resume).unwrap().to_string(), resume);
        let none = format!("RESUME alice {TOKEN} -");
        assert_eq!(
            parse_opening(&none),
            Ok(Opening::Resume {
                name: "alice",
                token: TOKEN,
                last: None
            })
        );
        assert_eq!(parse_opening(&none).unwrap().to_string(), none);
        for (line, err) in [
            ("RESUME alice", OpeningError::ResumeUsage),
            ("RESUME alice tok", OpeningError::ResumeUsage),
            (
                &format!("RESUME alice {TOKEN} - x") as &str,
                OpeningError::ResumeUsage,
            ),
            (
                &format!("RESUME alice  {TOKEN} -"),
                OpeningError::ResumeUsage,
            ),
            ("RESUME alice short -", OpeningError::BadToken),
            (&format!("RESUME alice {TOKEN}. -"), OpeningError::BadToken),
            (
                &format!("RESUME alice {} -", "a".repeat(MAX_TOKEN_LEN + 1)),
                OpeningError::BadToken,
            ),
            (
                &format!("RESUME alice {TOKEN} a.b"),
                OpeningError::BadLastId,
            ),
            (
                &format!("RESUME al.ce {TOKEN} -"),
                OpeningError::BadName(NameError::BadChar('.')),
            ),
            (
                &format!("RESUME you {TOKEN} -"),
                OpeningError::BadName(NameError::Reserved),
            ),
        ] {
            assert_eq!(parse_opening(line), Err(err), "{line:?}");
        }
    }

    #[test]
    fn ids_and_tokens_have_their_alphabet_and_length() {
        assert!(is_id("a"));
        assert!(is_id(&"Z".repeat(MAX_ID_LEN)));
        assert!(!is_id(&"Z".repeat(MAX_ID_LEN + 1)));
        assert!(!is_id(""));
        assert!(!is_id("a b"));
        assert!(!is_id("é"));
        assert!(is_token(&"_".repeat(MIN_TOKEN_LEN)));
        assert!(!is_token(&"_".repeat(MIN_TOKEN_LEN - 1)));
        assert!(!is_token(&"a".repeat(MAX_TOKEN_LEN + 1)));
    }

    /// Feeds every prefix (one byte more each time, as a framer would hand over a line that
    /// arrived byte by byte): no prefix panics, and only the whole line parses as the whole.
    #[test]
    fn fed_byte_by_byte_nothing_panics_and_only_the_whole_line_matches() {
        let lines = [
            format!("RESUME alice {TOKEN} e1-4"),
            "HELLO 3".to_owned(),
            "@id=e1-2;time=2026-12-01T16:05:09.123Z PRIV al bo - psst".to_owned(),
            format!("TOKEN {TOKEN}"),
        ];
        for line in &lines {
            let whole_opening = parse_opening(line);
            let whole_v3 = V3Msg::parse(line);
            let whole_tags = split_tags(line);
            for end in 0..line.len() {
                let Some(part) = line.get(..end) else {
                    continue;
                };
                let _ = split_tags(part);
                if whole_opening.is_ok() && !matches!(whole_opening, Ok(Opening::Name(_))) {
                    assert_ne!(parse_opening(part), whole_opening, "{part:?}");
                }
                if whole_v3.is_ok() {
                    assert_ne!(V3Msg::parse(part), whole_v3, "{part:?}");
                }
                if whole_tags.0.is_some() {
                    assert_ne!(split_tags(part), whole_tags, "{part:?}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsers_never_panic(s in any::<String>()) {
            let _ = parse_opening(&s);
            let _ = V3Msg::parse(&s);
            let (tags, rest) = split_tags(&s);
            if let Some(t) = tags {
                let _ = (t.id(), t.time(), t.iter().count());
                prop_assert!(rest.len() < s.len());
            }
        }

        #[test]
        fn resume_round_trips(
            name in "[A-Za-z0-9_-]{1,32}".prop_filter("reserved", |n| !n.eq_ignore_ascii_case("you")),
            token in "[A-Za-z0-9_-]{22,128}",
            // A last id of `-` is written for none, so `-` itself is no id.
            last in prop::option::of("[A-Za-z0-9_-]{1,64}".prop_filter("- means none", |l| l != "-")),
        ) {
            let line = Opening::Resume { name: &name, token: &token, last: last.as_deref() }
                .to_string();
            prop_assert_eq!(
                parse_opening(&line),
                Ok(Opening::Resume { name: &name, token: &token, last: last.as_deref() })
            );
        }

        #[test]
        fn tagged_lines_round_trip(id in "[A-Za-z0-9_-]{1,64}", text in "[a-z ]{0,20}") {
            let mut out = Vec::new();
            write_tags(&mut out, &id, "2026-12-01T16:05:09.123Z");
            ServerMsg::Msg { from: "al", color: None, text: &text }.write_to(&mut out);
            let line = String::from_utf8(out).unwrap();
            let (tags, rest) = split_tags(line.trim_end_matches('\n'));
            prop_assert_eq!(tags.and_then(|t| t.id()), Some(id.as_str()));
            prop_assert!(ServerMsg::parse(rest).is_ok());
        }
    }
}
