//! Input over a limit is never cut short silently. Two limits meet what the user types:
//! - the server's line limit (`--max-line`, 4096 bytes by default, the client's `max_line`):
//!   a message line longer than it is split at word boundaries into several messages to the
//!   same target that each fit ([`split_request`]), so it is sent whole in pieces; a line
//!   that is no message (`/nick`, an unknown command) cannot be split and is refused before
//!   sending, with the reason;
//! - the input area's cap ([`crate::tui::editor::MAX_INPUT`]): a paste that would take the input
//!   past it is **refused whole** ([`check_paste`]): nothing of it is inserted and the user is
//!   told its size and the cap, so the clipboard still holds all of it. Cutting it at the cap
//!   (the old behaviour: 4,520 of 6,000 lines, mid-line, without a word) is what this
//!   prevents; sending it in full would need an unbounded input.
//!
//! Pure: text in, lines or a refusal out.

use std::fmt;

use chat_common::protocol::{parse_request, Request};
use unicode_segmentation::UnicodeSegmentation;

/// The smallest `max_line` the client accepts: room for the longest command prefix
/// (`/private ` + a 32-byte name + ` /color magenta `) and some text.
pub const MIN_MAX_LINE: usize = 128;

/// Why a line cannot be sent, said before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooLong {
    /// The line is over the limit and is not a message that can go in pieces.
    NotSplittable {
        /// The line's length in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TooLong::NotSplittable { bytes, max } => write!(
                f,
                "not sent: the line is {bytes} bytes and the server takes at most {max}; only a message can be split"
            ),
        }
    }
}

impl std::error::Error for TooLong {}

/// The request `line` (sanitized, one line) as wire lines of at most `max` bytes each: the
/// line itself when it fits; a message (room, `/color`, `/me`, `/private`) too long for one
/// line becomes several messages to the same target, split at spaces (the spaces at a split
/// are dropped; a word longer than a whole line is cut between characters). Every piece
/// parses back to the same kind of request. `max` below [`MIN_MAX_LINE`] is taken as that.
pub fn split_request(line: &str, max: usize) -> Result<Vec<String>, TooLong> {
    let max = max.max(MIN_MAX_LINE);
    if line.len() <= max {
        return Ok(vec![line.to_owned()]);
    }
    let refuse = TooLong::NotSplittable {
        bytes: line.len(),
        max,
    };
    let request = match parse_request(line) {
        Ok(r @ (Request::Say { .. } | Request::Private { .. } | Request::Me { .. })) => r,
        _ => return Err(refuse),
    };
    let text = match request {
        Request::Say { text, .. } | Request::Private { text, .. } | Request::Me { text } => text,
        _ => return Err(refuse),
    };
    // The bytes a piece costs beyond its text: the command around it, and for an uncolored
    // room message a `/` more when the piece itself starts with `/` (sent as `//...`).
    let with = |piece: &str| rebuild(&request, piece);
    let overhead = with("x").len() - 1;
    let slash_extra = usize::from(matches!(request, Request::Say { color: None, .. }));
    let budget = max.saturating_sub(overhead + slash_extra);
    if budget == 0 {
        return Err(refuse);
    }
    Ok(pieces(text, budget).into_iter().map(with).collect())
}

/// The request with `text` in place of its own.
fn rebuild(request: &Request<'_>, text: &str) -> String {
    match *request {
        Request::Say { color, .. } => Request::Say { color, text }.to_line(),
        Request::Private { to, color, .. } => Request::Private { to, color, text }.to_line(),
        _ => Request::Me { text }.to_line(),
    }
}

/// `text` cut into pieces of at most `budget` bytes at spaces, words longer than `budget` cut
/// between graphemes (or characters, for a grapheme longer than `budget`). No piece is blank.
fn pieces(text: &str, budget: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text.trim_matches(' ');
    while !rest.is_empty() {
        if rest.len() <= budget {
            out.push(rest);
            break;
        }
        // The last space at or before the budget (a space at `budget` ends a full piece).
        let cut = match rest[..floor_char(rest, budget + 1)].rfind(' ') {
            Some(at) if !rest[..at].trim_end_matches(' ').is_empty() => at,
            _ => word_cut(rest, budget),
        };
        let (piece, tail) = rest.split_at(cut);
        out.push(piece.trim_end_matches(' '));
        rest = tail.trim_start_matches(' ');
    }
    out
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Where to cut a word longer than `budget`: after the last whole grapheme that fits, else
/// after the last whole character that fits (never 0: at least one character goes).
fn word_cut(s: &str, budget: usize) -> usize {
    let mut end = 0;
    for (at, g) in s.grapheme_indices(true) {
        if at + g.len() > budget {
            break;
        }
        end = at + g.len();
    }
    if end == 0 {
        end = floor_char(s, budget);
    }
    if end == 0 {
        end = s.chars().next().map_or(s.len(), char::len_utf8);
    }
    end
}

/// A paste refused because the input would pass its cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasteTooBig {
    /// The paste's size in bytes.
    pub bytes: usize,
    /// Its lines.
    pub lines: usize,
    /// The room left in the input, in bytes.
    pub room: usize,
    /// The input's cap.
    pub cap: usize,
}

impl fmt::Display for PasteTooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "paste refused: {} lines, {} KiB; the input holds at most {} KiB ({} KiB free). Nothing of it was inserted",
            self.lines,
            self.bytes.div_ceil(1024),
            self.cap / 1024,
            self.room / 1024
        )
    }
}

impl std::error::Error for PasteTooBig {}

/// Whether a paste of `paste` fits in an input holding `current` bytes under `cap`: it goes in
/// whole or not at all.
pub fn check_paste(current: usize, paste: &str, cap: usize) -> Result<(), PasteTooBig> {
    let room = cap.saturating_sub(current);
    if paste.len() <= room {
        Ok(())
    } else {
        Err(PasteTooBig {
            bytes: paste.len(),
            lines: paste.split('\n').count(),
            room,
            cap,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every piece fits, parses as the same kind of request, and the texts put together with
    /// single spaces give the original words back.
    fn check(line: &str, max: usize) -> Vec<String> {
        let out = split_request(line, max).unwrap();
        for piece in &out {
            assert!(piece.len() <= max, "{} > {max}: {piece:?}", piece.len());
            assert!(!piece.trim().is_empty());
        }
        let kind = |l: &str| match parse_request(l).unwrap() {
            Request::Say { color, .. } => format!("say {color:?}"),
            Request::Private { to, color, .. } => format!("private {to} {color:?}"),
            Request::Me { .. } => "me".to_owned(),
            other => panic!("{other:?}"),
        };
        assert!(out.iter().all(|p| kind(p) == kind(line)), "{out:?}");
        out
    }

    fn text_of(line: &str) -> String {
        match parse_request(line).unwrap() {
            Request::Say { text, .. } | Request::Private { text, .. } | Request::Me { text } => {
                text.to_owned()
            }
            _ => panic!("not a message"),
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_line_that_fits_goes_as_it_is() {
        assert_eq!(check("hello  there", 128), ["hello  there"]);
        assert_eq!(check(&"x".repeat(128), 128).len(), 1);
    }

    #[test]
    fn long_messages_split_at_words_to_the_same_target() {
        let body = (0..400)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        for line in [
            body.clone(),
            format!("/color red {body}"),
            format!("/private bob {body}"),
            format!("/msg bob /color blue {body}"),
            format!("/me {body}"),
        ] {
            for max in [128, 200, 4096] {
                let out = check(&line, max);
                assert!(out.len() > 1 || line.len() <= max);
                let joined: Vec<String> = out.iter().flat_map(|p| words(&text_of(p))).collect();
                assert_eq!(joined, words(&text_of(&line)), "{line:.20} at {max}");
                // Splits are at word boundaries: no word is cut.
                for p in &out {
                    for w in words(&text_of(p)) {
                        assert!(w.starts_with("word"), "{w:?}");
                    }
                }
            }
        }
        let out = check(&format!("/private bob {body}"), 200);
        assert!(out.iter().all(|p| p.starts_with("/private bob ")));
    }

    #[test]
    fn slashes_are_kept_as_text() {
        let line = format!("{} /leave now", "a".repeat(125));
        let out = check(&line, 128);
        assert_eq!(out, ["a".repeat(125), "//leave now".to_owned()]);
        let out = check(&format!("//{}", "b ".repeat(100)), 128);
        assert!(out[0].starts_with("//b"));
    }

    #[test]
    fn a_word_longer_than_a_line_is_cut_between_characters() {
        let long = "é".repeat(300);
        let out = check(&long, 128);
        assert_eq!(out.concat(), long);
        // Graphemes stay whole: e + combining acute, two bytes + two bytes.
        let g = "e\u{301}".repeat(100);
        let out = check(&g, 128);
        assert!(out.iter().all(|p| p.starts_with('e')));
        assert_eq!(out.concat(), g);
    }

    #[test]
    fn lines_that_are_not_messages_are_refused_before_sending() {
        let e = split_request(&format!("/nick {}", "x".repeat(200)), 128).unwrap_err();
        assert_eq!(
            e,
            TooLong::NotSplittable {
                bytes: 206,
                max: 128
            }
        );
        assert!(e.to_string().contains("206 bytes"));
        assert!(split_request(&format!("/bogus {}", "x ".repeat(100)), 128).is_err());
    }

    #[test]
    fn a_tiny_limit_is_raised_to_the_minimum() {
        let line = "y ".repeat(200);
        for p in split_request(&line, 3).unwrap() {
            assert!(p.len() <= MIN_MAX_LINE);
        }
    }

    #[test]
    fn split_by_every_budget_keeps_every_word() {
        let line = "the quick brown fox jumps over the lazy dog, again and again ".repeat(10);
        for max in MIN_MAX_LINE..MIN_MAX_LINE + 40 {
            let out = check(&line, max);
            let joined: Vec<String> = out.iter().flat_map(|p| words(p)).collect();
            assert_eq!(joined, words(&line));
        }
    }

    #[test]
    fn a_paste_goes_in_whole_or_not_at_all() {
        assert!(check_paste(0, "abc", 3).is_ok());
        assert!(check_paste(1, "abc", 3).is_err());
        let big = "a line of a paste, 58 bytes long with its line feed....\n".repeat(6000);
        let e = check_paste(0, &big, 256 * 1024).unwrap_err();
        assert_eq!(e.lines, 6001);
        assert_eq!(e.bytes, big.len());
        let text = e.to_string();
        assert!(
            text.contains("6001 lines") && text.contains("256 KiB"),
            "{text}"
        );
        assert!(text.contains("Nothing of it was inserted"));
    }
}
