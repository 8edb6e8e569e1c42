//! The input line of the full-screen interface: the text being typed (which may hold several
//! lines after a paste), the cursor, history (Up/Down), incremental reverse search (Ctrl-R) and
//! Tab completion cycling. Pure: keys come in as method calls, nothing here draws or sends; the
//! text is handed over by [`Editor::take`] when the user presses Enter.

use std::collections::VecDeque;

use unicode_segmentation::UnicodeSegmentation;

use crate::core::split::{check_paste, PasteTooBig};

/// Lines of history kept (in memory only: chat history is nobody's file).
pub const HISTORY_SIZE: usize = 1000;

/// The longest input kept: a paste that would take the input beyond it is refused whole
/// (`split.rs`), never cut.
pub const MAX_INPUT: usize = 256 * 1024;

/// An incremental reverse search through the history (Ctrl-R).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// What was typed to search for.
    pub query: String,
    /// The history index of the current match, if any.
    pub found: Option<usize>,
    /// The last search found nothing (nothing matches the query, or no older match than the
    /// one shown): the prompt says so.
    pub failing: bool,
    /// The line as it was before the search, restored on cancel.
    saved: String,
}

/// Tab completion in progress: repeated Tabs cycle through the candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Completion {
    /// Byte offset where the completed word starts.
    start: usize,
    candidates: Vec<String>,
    index: usize,
}

/// The input line.
#[derive(Debug, Default)]
pub struct Editor {
    text: String,
    /// Byte offset of the cursor, always on a grapheme boundary.
    cursor: usize,
    /// Sent lines, oldest first, at most [`HISTORY_SIZE`].
    history: VecDeque<String>,
    /// While browsing: the index shown, and the draft to come back to.
    browsing: Option<(usize, String)>,
    search: Option<Search>,
    completion: Option<Completion>,
}

impl Editor {
    /// An empty line with no history.
    pub fn new() -> Self {
        Editor::default()
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor's byte offset in [`Editor::text`].
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether the line is empty.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The search in progress, if any.
    pub fn search(&self) -> Option<&Search> {
        self.search.as_ref()
    }

    /// Replaces the whole text, cursor at the end.
    pub fn set(&mut self, text: &str) {
        self.text = text.to_owned();
        self.cursor = self.text.len();
        self.reset_modes();
    }

    fn reset_modes(&mut self) {
        self.completion = None;
        self.browsing = None;
    }

    /// Inserts `s` at the cursor (a typed character or a paste; CRLF and CR become LF), whole
    /// or not at all: when it would take the input past [`MAX_INPUT`] nothing is inserted and
    /// the refusal says how big it was, for the user.
    pub fn try_insert(&mut self, s: &str) -> Result<(), PasteTooBig> {
        let s = s.replace("\r\n", "\n").replace('\r', "\n");
        check_paste(self.text.len(), &s, MAX_INPUT)?;
        self.accept_search();
        self.completion = None;
        self.text.insert_str(self.cursor, &s);
        self.cursor += s.len();
        Ok(())
    }

    /// [`Editor::try_insert`] for callers with nobody to tell (a typed key into a full input
    /// is simply not taken).
    pub fn insert(&mut self, s: &str) {
        let _ = self.try_insert(s);
    }

    fn prev_boundary(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map_or(self.cursor, |g| self.cursor + g.len())
    }

    /// Backspace.
    pub fn backspace(&mut self) {
        if let Some(search) = &mut self.search {
            search.query.pop();
            self.research(false);
            return;
        }
        self.completion = None;
        let at = self.prev_boundary();
        self.text.replace_range(at..self.cursor, "");
        self.cursor = at;
    }

    /// Delete.
    pub fn delete(&mut self) {
        self.accept_search();
        self.completion = None;
        let end = self.next_boundary();
        self.text.replace_range(self.cursor..end, "");
    }

    /// Left.
    pub fn left(&mut self) {
        self.accept_search();
        self.completion = None;
        self.cursor = self.prev_boundary();
    }

    /// Right.
    pub fn right(&mut self) {
        self.accept_search();
        self.completion = None;
        self.cursor = self.next_boundary();
    }

    /// Ctrl-A: start of the line.
    pub fn home(&mut self) {
        self.accept_search();
        self.completion = None;
        self.cursor = 0;
    }

    /// Ctrl-E: end of the line.
    pub fn end(&mut self) {
        self.accept_search();
        self.completion = None;
        self.cursor = self.text.len();
    }

    /// Start of the word before the cursor.
    fn word_start(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        trimmed.rfind(char::is_whitespace).map_or(0, |i| {
            i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
        })
    }

    /// Ctrl-Left / Alt-B: one word left.
    pub fn word_left(&mut self) {
        self.accept_search();
        self.completion = None;
        self.cursor = self.word_start();
    }

    /// Ctrl-Right / Alt-F: one word right.
    pub fn word_right(&mut self) {
        self.accept_search();
        self.completion = None;
        let after = &self.text[self.cursor..];
        let skip = after.len() - after.trim_start().len();
        let rest = &after[skip..];
        let word = rest.find(char::is_whitespace).unwrap_or(rest.len());
        self.cursor += skip + word;
    }

    /// Ctrl-W: deletes the word before the cursor.
    pub fn delete_word(&mut self) {
        self.accept_search();
        self.completion = None;
        let start = self.word_start();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Ctrl-U: deletes everything before the cursor.
    pub fn kill_before(&mut self) {
        self.accept_search();
        self.completion = None;
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Ctrl-K: deletes everything after the cursor.
    pub fn kill_after(&mut self) {
        self.accept_search();
        self.completion = None;
        self.text.truncate(self.cursor);
    }

    /// Clears the line (Ctrl-C on a non-empty line); the history stays.
    pub fn clear(&mut self) {
        self.search = None;
        self.set("");
    }

    /// Takes the text for sending: the line empties and a non-blank text joins the history.
    pub fn take(&mut self) -> String {
        self.accept_search();
        let text = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.reset_modes();
        if !text.trim().is_empty() && self.history.back() != Some(&text) {
            if self.history.len() == HISTORY_SIZE {
                self.history.pop_front();
            }
            self.history.push_back(text.clone());
        }
        text
    }

    /// Up: the previous history line (the draft is kept to come back to).
    pub fn up(&mut self) {
        self.accept_search();
        self.completion = None;
        let index = match &self.browsing {
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
            None if self.history.is_empty() => return,
            None => {
                self.browsing = Some((self.history.len(), self.text.clone()));
                self.history.len() - 1
            }
        };
        if let Some((shown, _)) = &mut self.browsing {
            *shown = index;
        }
        self.text = self.history.get(index).cloned().unwrap_or_default();
        self.cursor = self.text.len();
    }

    /// Down: the next history line, then the draft.
    pub fn down(&mut self) {
        self.accept_search();
        self.completion = None;
        let Some((index, draft)) = self.browsing.take() else {
            return;
        };
        if index + 1 >= self.history.len() {
            self.text = draft;
        } else {
            self.text = self.history.get(index + 1).cloned().unwrap_or_default();
            self.browsing = Some((index + 1, draft));
        }
        self.cursor = self.text.len();
    }

    /// Ctrl-R: starts a search, or finds the next older match.
    pub fn search_back(&mut self) {
        self.completion = None;
        if self.search.is_some() {
            self.research(true);
        } else {
            self.search = Some(Search {
                query: String::new(),
                found: None,
                failing: false,
                saved: self.text.clone(),
            });
        }
    }

    /// Adds to the search query (a key typed while searching).
    pub fn search_type(&mut self, s: &str) {
        if let Some(search) = &mut self.search {
            search.query.push_str(s);
            self.research(false);
        }
    }

    /// Finds the newest match of the query (older than the current one when `older`).
    fn research(&mut self, older: bool) {
        let Some(search) = &mut self.search else {
            return;
        };
        let below = match (older, search.found) {
            (true, Some(i)) => i,
            (false, Some(i)) => i + 1,
            _ => self.history.len(),
        };
        let query = search.query.to_lowercase();
        let found = (0..below.min(self.history.len()))
            .rev()
            .find(|&i| self.history[i].to_lowercase().contains(&query));
        // Nothing older: the match stays, marked failing. Nothing at all for what was typed:
        // no match is shown (an old one would be a lie), the line as it was comes back.
        search.failing = found.is_none() && !search.query.is_empty();
        if found.is_some() || !older || search.query.is_empty() {
            search.found = found;
        }
        let shown = search
            .found
            .and_then(|i| self.history.get(i).cloned())
            .unwrap_or_else(|| search.saved.clone());
        self.text = shown;
        self.cursor = self.text.len();
    }

    /// Ends a search keeping the match in the line (Enter, or any editing key).
    pub fn accept_search(&mut self) {
        self.search = None;
    }

    /// Ends a search putting the line back as it was (Esc, Ctrl-G).
    pub fn cancel_search(&mut self) {
        if let Some(search) = self.search.take() {
            self.text = search.saved;
            self.cursor = self.text.len();
        }
    }

    /// Tab: completes the word before the cursor with `complete(text before cursor)`, which
    /// returns where the word starts and the candidates; repeated Tabs cycle.
    pub fn tab(&mut self, complete: impl FnOnce(&str) -> (usize, Vec<String>)) {
        self.accept_search();
        if let Some(c) = &mut self.completion {
            if c.candidates.len() > 1 {
                let old = c.candidates[c.index].len();
                c.index = (c.index + 1) % c.candidates.len();
                let new = c.candidates[c.index].clone();
                self.text.replace_range(c.start..c.start + old, &new);
                self.cursor = c.start + new.len();
            }
            return;
        }
        let (start, candidates) = complete(&self.text[..self.cursor]);
        let Some(first) = candidates.first().cloned() else {
            return;
        };
        if start > self.cursor || !self.text.is_char_boundary(start) {
            return;
        }
        self.text.replace_range(start..self.cursor, &first);
        self.cursor = start + first.len();
        self.completion = Some(Completion {
            start,
            candidates,
            index: 0,
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::new();
        e.insert(s);
        e
    }

    #[test]
    fn editing_moves_by_graphemes() {
        let mut e = typed("añb👍🏽c");
        e.left();
        e.backspace();
        assert_eq!(e.text(), "añbc");
        e.home();
        e.delete();
        assert_eq!(e.text(), "ñbc");
        e.end();
        e.insert("!");
        assert_eq!(e.text(), "ñbc!");
    }

    #[test]
    fn word_keys() {
        let mut e = typed("hello big world");
        e.delete_word();
        assert_eq!(e.text(), "hello big ");
        e.word_left();
        assert_eq!(e.cursor(), 6);
        e.kill_after();
        assert_eq!(e.text(), "hello ");
        e.insert("x");
        e.kill_before();
        assert_eq!(e.text(), "");
    }

    #[test]
    fn paste_keeps_lines_and_normalizes_line_ends() {
        let e = typed("a\r\nb\rc\nd");
        assert_eq!(e.text(), "a\nb\nc\nd");
    }

    #[test]
    fn history_browses_and_keeps_the_draft() {
        let mut e = Editor::new();
        for line in ["one", "two"] {
            e.insert(line);
            e.take();
        }
        e.insert("draft");
        e.up();
        assert_eq!(e.text(), "two");
        e.up();
        assert_eq!(e.text(), "one");
        e.up();
        assert_eq!(e.text(), "one");
        e.down();
        e.down();
        assert_eq!(e.text(), "draft");
    }

    #[test]
    fn reverse_search_finds_and_cancels() {
        let mut e = Editor::new();
        for line in ["hello alice", "hi bob", "hello carol"] {
            e.insert(line);
            e.take();
        }
        e.insert("draft");
        e.search_back();
        e.search_type("hel");
        assert_eq!(e.text(), "hello carol");
        e.search_back();
        assert_eq!(e.text(), "hello alice");
        e.search_back();
        assert_eq!(e.text(), "hello alice");
        e.cancel_search();
        assert_eq!(e.text(), "draft");
        e.search_back();
        e.search_type("bob");
        e.accept_search();
        assert_eq!(e.text(), "hi bob");
        assert!(e.search().is_none());
    }

    #[test]
    fn tab_cycles_through_candidates() {
        let mut e = typed("hi al");
        let complete = |_: &str| (3, vec!["albert ".to_owned(), "alice ".to_owned()]);
        e.tab(complete);
        assert_eq!(e.text(), "hi albert ");
        e.tab(complete);
        assert_eq!(e.text(), "hi alice ");
        e.tab(complete);
        assert_eq!(e.text(), "hi albert ");
        e.insert("x");
        assert_eq!(e.text(), "hi albert x");
    }

    #[test]
    fn input_is_bounded_and_a_paste_goes_in_whole_or_not_at_all() {
        let mut e = Editor::new();
        e.insert("draft ");
        let big = "line of a big paste\n".repeat(20_000);
        let refused = e.try_insert(&big).unwrap_err();
        assert_eq!(refused.lines, 20_001);
        assert_eq!(e.text(), "draft ");
        e.insert(&"é".repeat(MAX_INPUT));
        assert_eq!(e.text(), "draft ");
        let fits = "x".repeat(MAX_INPUT - 6);
        assert!(e.try_insert(&fits).is_ok());
        assert_eq!(e.text().len(), MAX_INPUT);
        assert!(e.try_insert("y").is_err());
    }

    #[test]
    fn a_search_that_finds_nothing_says_so_and_shows_no_old_match() {
        let mut e = Editor::new();
        for line in ["hello alice", "hi bob"] {
            e.insert(line);
            e.take();
        }
        e.insert("draft");
        e.search_back();
        e.search_type("hel");
        assert_eq!(e.text(), "hello alice");
        assert!(!e.search().unwrap().failing);
        // No older match: the match stays, marked failing.
        e.search_back();
        assert_eq!(e.text(), "hello alice");
        assert!(e.search().unwrap().failing);
        // Nothing matches what is typed: the draft, not the old match.
        e.search_type("zzz");
        assert_eq!(e.text(), "draft");
        assert!(e.search().unwrap().failing);
        assert_eq!(e.search().unwrap().found, None);
        // Back to a query that matches.
        for _ in 0..3 {
            e.backspace();
        }
        assert_eq!(e.text(), "hello alice");
        assert!(!e.search().unwrap().failing);
    }
}
