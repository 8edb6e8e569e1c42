//! Long formatted text cut into pieces that each fit an IRC line, at word boundaries, with
//! nothing lost.
//!
//! A room line may be up to `--max-line` bytes, an IRC line 512. This module owns where such a
//! text is cut and nothing else: it never writes a command around a piece (`encode`) and never
//! panics. Rules:
//! - A piece is at most the byte budget the caller gives (what is left of 510 bytes after the
//!   source, command and target), the formatting it reopens included.
//! - A cut falls after a space when one is in reach, so words stay whole and the space stays at
//!   the end of the earlier piece: the pieces' visible text, joined, is exactly the original.
//! - A word longer than a whole piece is cut between two characters (never inside one, never
//!   inside a formatting code and its digits).
//! - Each piece after the first starts by reopening the formatting on at its cut (IRC clients
//!   reset formatting at each line), so every character keeps its style and color.
//!
//! No allocation: a piece borrows its text, and its reopening codes sit in a small array.

use super::format::{looks_like_background, push_state, IrcState, Token, Tokens};

/// The longest prefix a piece may need to reopen formatting: a color (3 bytes), four toggles
/// and a bold pair that guards a `,` after the color.
const MAX_REOPEN: usize = 9;

/// The smallest budget [`pieces`] honours: room for the longest reopening prefix and one
/// character of four bytes. A smaller budget is raised to it.
pub const MIN_BUDGET: usize = MAX_REOPEN + 4;

/// One piece: the codes that reopen its formatting, then its text (a slice of the original).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    reopen: [u8; MAX_REOPEN],
    reopen_len: usize,
    /// The piece's part of the original text.
    pub text: &'a str,
}

impl Piece<'_> {
    /// The formatting codes to write before [`Piece::text`] (empty for the first piece).
    pub fn reopen(&self) -> &str {
        self.reopen
            .get(..self.reopen_len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The piece's length on the wire: reopening codes and text.
    pub fn len(&self) -> usize {
        self.reopen_len + self.text.len()
    }

    /// Whether the piece holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Iterator over the pieces of a text; see [`pieces`].
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    text: &'a str,
    /// Byte offset of the next piece.
    at: usize,
    /// Formatting on at `at`.
    state: IrcState,
    budget: usize,
}

/// Cuts IRC formatted `text` into pieces of at most `budget` bytes each (see the module's
/// rules). An empty text has no pieces.
pub fn pieces(text: &str, budget: usize) -> Pieces<'_> {
    Pieces {
        text,
        at: 0,
        state: IrcState::default(),
        budget: budget.max(MIN_BUDGET),
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        let rest = self.text.get(self.at..).filter(|r| !r.is_empty())?;
        let mut reopen = [0u8; MAX_REOPEN];
        let mut codes = String::new();
        if self.at > 0 {
            push_state(self.state, &mut codes);
            if self.state.color.is_some() && codes.len() == 3 && looks_like_background(rest) {
                codes.push_str("\x02\x02");
            }
        }
        let reopen_len = codes.len().min(MAX_REOPEN);
        if let (Some(dst), Some(src)) = (
            reopen.get_mut(..reopen_len),
            codes.as_bytes().get(..reopen_len),
        ) {
            dst.copy_from_slice(src);
        }
        let room = self.budget.saturating_sub(reopen_len);
        if rest.len() <= room {
            // The rest fits whole: no cut to look for, and no formatting state to carry on,
            // since no piece follows (most messages are one piece: no token scan for them).
            self.at = self.text.len();
            return Some(Piece {
                reopen,
                reopen_len,
                text: rest,
            });
        }
        let mut tokens = Tokens::new(rest);
        tokens.state = self.state;
        // The end of the last whole token in reach, and the end of the last space in reach,
        // each with the formatting state there.
        let mut pos = 0;
        let mut last_fit = (0, self.state);
        let mut last_space: Option<(usize, IrcState)> = None;
        let mut whole = true;
        while let Some(token) = tokens.next() {
            let len = match token {
                Token::Code { len } => len,
                Token::Char(c) => c.len_utf8(),
            };
            if pos + len > room {
                whole = false;
                break;
            }
            pos += len;
            last_fit = (pos, tokens.state);
            if token == Token::Char(' ') {
                last_space = Some((pos, tokens.state));
            }
        }
        let (end, state) = if whole {
            (rest.len(), tokens.state)
        } else {
            match last_space {
                Some(cut) => cut,
                // A word longer than a piece; at least one token so the text always moves on.
                None if last_fit.0 > 0 => last_fit,
                None => {
                    let mut t = Tokens::new(rest);
                    t.state = self.state;
                    let len = match t.next() {
                        Some(Token::Code { len }) => len,
                        Some(Token::Char(c)) => c.len_utf8(),
                        None => rest.len(),
                    };
                    (len, t.state)
                }
            }
        };
        let piece = rest.get(..end)?;
        self.at += end;
        self.state = state;
        Some(Piece {
            reopen,
            reopen_len,
            text: piece,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::format::{strip_codes, COLOR};
    use super::*;
    use proptest::prelude::*;

    fn cut(text: &str, budget: usize) -> Vec<String> {
        pieces(text, budget)
            .map(|p| format!("{}{}", p.reopen(), p.text))
            .collect()
    }

    /// (char, state) for every visible character of one line.
    fn styled(line: &str) -> Vec<(char, IrcState)> {
        let mut t = Tokens::new(line);
        let mut out = Vec::new();
        while let Some(tok) = t.next() {
            if let Token::Char(c) = tok {
                out.push((c, t.state));
            }
        }
        out
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(cut("hello world", 100), ["hello world"]);
        assert!(cut("", 100).is_empty());
    }

    #[test]
    fn cuts_after_the_last_space_in_reach() {
        assert_eq!(
            cut("the quick brown fox jumps", 16),
            ["the quick brown ", "fox jumps"]
        );
        assert_eq!(cut("aaaa bbbb cccc", 14), ["aaaa bbbb cccc"]);
        assert_eq!(cut("aaaa bbbb cccc", 13), ["aaaa bbbb ", "cccc"]);
    }

    #[test]
    fn a_long_word_is_cut_between_characters() {
        assert_eq!(
            cut(&"x".repeat(30), 13),
            ["x".repeat(13), "x".repeat(13), "x".repeat(4)]
        );
        // Four-byte characters are never split.
        let emoji = "\u{1F600}".repeat(5);
        let got = cut(&emoji, 14);
        assert_eq!(got.concat(), emoji);
        assert!(got.iter().all(|p| p.len() <= 14));
    }

    #[test]
    fn formatting_is_reopened_on_each_piece() {
        let text = "\x0304\x02bold red words here";
        let got = cut(text, 18);
        assert_eq!(got[0], "\x0304\x02bold red ");
        assert!(got[1].starts_with("\x0304\x02"), "{:?}", got[1]);
        assert_eq!(strip_codes(&got.concat()), "bold red words here");
    }

    #[test]
    fn a_color_code_is_never_cut_from_its_digits() {
        let text = format!("aaaaaaaaaaa{COLOR}04,02bbbb");
        for budget in MIN_BUDGET..30 {
            for piece in cut(&text, budget) {
                assert!(!piece.ends_with(COLOR), "{piece:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn nothing_is_lost_and_every_piece_fits(
            text in "[\x02\x03\x0f\x1d0-9, a-c\u{e9}\u{1F600}]{0,200}",
            budget in MIN_BUDGET..80usize,
        ) {
            let got = cut(&text, budget);
            let mut joined = Vec::new();
            for piece in &got {
                prop_assert!(piece.len() <= budget, "{:?} over {}", piece, budget);
                prop_assert!(!piece.is_empty());
                joined.extend(styled(piece));
            }
            prop_assert_eq!(joined, styled(&text));
        }

        #[test]
        fn cuts_fall_after_spaces_when_words_fit(words in proptest::collection::vec("[a-z]{1,8}", 1..40)) {
            let text = words.join(" ");
            let got = cut(&text, 20);
            prop_assert_eq!(got.concat(), text.clone());
            for piece in got.iter().take(got.len().saturating_sub(1)) {
                prop_assert!(piece.ends_with(' '), "{:?}", piece);
            }
        }
    }
}
