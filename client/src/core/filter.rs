//! What the user chose to see and to be told about: the ignore list (irssi's and weechat's
//! `/ignore NAME`: no message, action, private, join or leave of that name is shown), hiding
//! joins and leaves (irssi's `/ignore * JOINS PARTS QUITS`), and highlight words (irssi's
//! `/hilight`, weechat's `highlight_words`): a line that holds one of them, or your name, as a
//! whole word in any case is a mention (marked, and it rings the bell). Names are compared
//! without regard to ASCII case, as the server compares them. Pure; bounded by
//! [`MAX_IGNORED`] and [`MAX_WORDS`].

use std::collections::BTreeMap;

use chat_common::protocol::validate_name;

/// The most names on the ignore list.
pub const MAX_IGNORED: usize = 1000;
/// The most highlight words.
pub const MAX_WORDS: usize = 1000;

/// Why `/ignore` refused a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreError {
    /// Not a name by the protocol's rule.
    BadName(String),
    /// The list holds [`MAX_IGNORED`] names already.
    Full,
}

impl std::fmt::Display for IgnoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreError::BadName(why) => write!(f, "cannot ignore that: {why}"),
            IgnoreError::Full => write!(f, "the ignore list holds {MAX_IGNORED} names already"),
        }
    }
}

impl std::error::Error for IgnoreError {}

/// The ignore list, the join/leave switch and the highlight words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lowercased name -> name as the user typed it.
    ignored: BTreeMap<String, String>,
    hide_joins: bool,
    /// Lowercased words, non-empty.
    words: Vec<String>,
}

impl Filter {
    /// A filter from the configuration: names to ignore (bad ones and those past the bound
    /// are skipped: the configuration file was checked already), whether to hide joins and
    /// leaves, highlight words.
    pub fn new(ignore: &[String], hide_joins: bool, highlight: &[String]) -> Self {
        let mut filter = Filter {
            hide_joins,
            ..Filter::default()
        };
        for name in ignore {
            let _ = filter.ignore(name);
        }
        filter.words = highlight
            .iter()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .take(MAX_WORDS)
            .collect();
        filter
    }

    /// Adds `name` to the ignore list; `Ok(false)` when it was there already.
    pub fn ignore(&mut self, name: &str) -> Result<bool, IgnoreError> {
        let name = validate_name(name).map_err(|e| IgnoreError::BadName(e.to_string()))?;
        let key = name.to_ascii_lowercase();
        if self.ignored.contains_key(&key) {
            return Ok(false);
        }
        if self.ignored.len() >= MAX_IGNORED {
            return Err(IgnoreError::Full);
        }
        self.ignored.insert(key, name.to_owned());
        Ok(true)
    }

    /// Takes `name` off the ignore list; whether it was on it.
    pub fn unignore(&mut self, name: &str) -> bool {
        self.ignored
            .remove(&name.trim().to_ascii_lowercase())
            .is_some()
    }

    /// The ignored names, in order, as typed.
    pub fn ignored(&self) -> impl Iterator<Item = &str> {
        self.ignored.values().map(String::as_str)
    }

    /// Whether lines from `name` are hidden.
    pub fn is_ignored(&self, name: &str) -> bool {
        !self.ignored.is_empty() && self.ignored.contains_key(&name.to_ascii_lowercase())
    }

    /// Whether a join, leave or rename of `name` is shown.
    pub fn shows_membership(&self, name: &str) -> bool {
        !self.hide_joins && !self.is_ignored(name)
    }

    /// Whether joins and leaves are hidden.
    pub fn hides_joins(&self) -> bool {
        self.hide_joins
    }

    /// Hides (or shows again) joins, leaves and renames.
    pub fn set_hide_joins(&mut self, hide: bool) {
        self.hide_joins = hide;
    }

    /// The highlight words, lowercased.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether `text` mentions `me` or holds a highlight word, as a whole word in any case.
    pub fn highlights(&self, text: &str, me: &str) -> bool {
        if text.is_empty() {
            return false;
        }
        let hay = text.to_lowercase();
        (!me.is_empty() && has_word(&hay, &me.to_lowercase()))
            || self.words.iter().any(|w| has_word(&hay, w))
    }
}

/// A character that continues a word: a name character, or any letter or digit.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Whether `needle` occurs in `hay` with no word character right before or after it.
pub fn has_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        // A needle that itself starts or ends with a non-word character (`c++`, `@ops`)
        // needs no boundary on that side.
        let open = needle.chars().next().is_none_or(|c| !is_word_char(c));
        let close = needle.chars().next_back().is_none_or(|c| !is_word_char(c));
        (open || !before.is_some_and(is_word_char)) && (close || !after.is_some_and(is_word_char))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ignoring_is_by_name_in_any_case() {
        let mut f = Filter::new(&["Spam".into()], false, &[]);
        assert!(f.is_ignored("spam") && f.is_ignored("SPAM"));
        assert!(!f.is_ignored("spammer"));
        assert_eq!(f.ignore("sPaM"), Ok(false));
        assert_eq!(f.ignore("eve"), Ok(true));
        assert_eq!(f.ignored().collect::<Vec<_>>(), ["eve", "Spam"]);
        assert!(!f.shows_membership("eve"));
        assert!(f.unignore(" EVE "));
        assert!(!f.unignore("eve"));
        assert!(f.shows_membership("eve"));
        assert!(matches!(f.ignore("a b"), Err(IgnoreError::BadName(_))));
    }

    #[test]
    fn the_ignore_list_is_bounded() {
        let mut f = Filter::default();
        for i in 0..MAX_IGNORED {
            assert_eq!(f.ignore(&format!("n{i}")), Ok(true));
        }
        assert_eq!(f.ignore("one_more"), Err(IgnoreError::Full));
        // Names already there are still fine.
        assert_eq!(f.ignore("n0"), Ok(false));
    }

    #[test]
    fn joins_can_be_hidden() {
        let mut f = Filter::new(&[], true, &[]);
        assert!(f.hides_joins() && !f.shows_membership("bob"));
        f.set_hide_joins(false);
        assert!(f.shows_membership("bob"));
    }

    #[test]
    fn highlight_words_and_the_name_are_whole_words_in_any_case() {
        let f = Filter::new(
            &[],
            false,
            &["deploy".into(), "c++".into(), "Straße".into()],
        );
        assert!(f.highlights("hi Alice!", "alice"));
        assert!(!f.highlights("hi alice2", "alice"));
        assert!(!f.highlights("jim-alice", "alice"));
        assert!(f.highlights("DEPLOY now", "alice"));
        assert!(f.highlights("the deploy.", "alice"));
        assert!(!f.highlights("redeployed", "alice"));
        assert!(f.highlights("who knows C++?", "alice"));
        assert!(f.highlights("die STRAßE", "alice"));
        assert!(!f.highlights("", "alice"));
        assert!(!f.highlights("anything", ""));
    }
}
