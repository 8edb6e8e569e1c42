//! `/search` in the scrollback, for both views (issue 25): which stored entries hold a text
//! (any case; the sender's and the recipient's names count too), the full screen's step from
//! the newest match to older ones ([`Search::step`]), and line mode's list of every match
//! ([`matches`](fn@matches), at most [`MAX_LISTED`]). Pure: it reads the [`Store`] and never changes it;
//! the brain keeps the [`Search`] state, the views only show what it found.

use super::store::{Entry, Kind, Store};

/// Line mode prints at most this many matches of one `/search` (the newest), and says how
/// many older ones it left out: a search for `e` in 5000 kept lines should not flood the
/// terminal (irssi's `/lastlog` asks for `-force` past 1000).
pub const MAX_LISTED: usize = 200;

/// How the client's own notices about a search start; they are never matches themselves
/// (searching again for the same text must not find the "no match" just said).
pub const NOTE: &str = "/search ";

/// Whether `entry` holds `needle` (already lowercase): its text, or a name it is from or to.
/// Separators and the search's own notices never match.
pub fn holds(entry: &Entry, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let (from, to) = match &entry.kind {
        Kind::Msg { from } | Kind::Act { from } => (Some(from), None),
        Kind::Private { from, to } => (Some(from), Some(to)),
        Kind::Separator => return false,
        Kind::Notice if entry.text.starts_with(NOTE) => return false,
        _ => (None, None),
    };
    entry.text.to_lowercase().contains(needle)
        || [from, to]
            .into_iter()
            .flatten()
            .any(|n| n.to_lowercase().contains(needle))
}

/// Every kept entry holding `query`, oldest first: at most the newest [`MAX_LISTED`], and how
/// many older matches were left out.
pub fn matches<'a>(store: &'a Store, query: &str) -> (Vec<&'a Entry>, usize) {
    let needle = query.to_lowercase();
    let mut found: Vec<&Entry> = store.iter().rev().filter(|e| holds(e, &needle)).collect();
    let left_out = found.len().saturating_sub(MAX_LISTED);
    found.truncate(MAX_LISTED);
    found.reverse();
    (found, left_out)
}

/// What one step of `/search` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The entry with this id: the newest match (older than the last one, when stepping).
    Found(u64),
    /// Nothing kept holds the text.
    NoMatch,
    /// Nothing older than the last match holds it.
    NoOlder,
}

/// The full screen's `/search`: the text, and the entry found last (the next step looks older).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// What is searched for, as typed.
    pub query: String,
    /// The match shown now, if any.
    pub at: Option<u64>,
}

impl Search {
    /// One `/search TEXT` (or `/search` alone, `text` empty: the next older match of the last
    /// search). The same text (any case) as the last search steps on too. `None` when there
    /// is nothing to search for (no text and no earlier search); `shown` limits matches to
    /// what the view shows (the conversation view hides the room).
    pub fn step(
        last: Option<&Search>,
        text: &str,
        store: &Store,
        shown: impl Fn(&Entry) -> bool,
    ) -> Option<(Search, Step)> {
        let (query, before) = match (last, text.is_empty()) {
            (Some(s), true) => (s.query.clone(), s.at),
            (Some(s), false) if s.query.eq_ignore_ascii_case(text) => (s.query.clone(), s.at),
            (_, false) => (text.to_owned(), None),
            (None, true) => return None,
        };
        let needle = query.to_lowercase();
        let found = store
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.id < b))
            .find(|e| shown(e) && holds(e, &needle))
            .map(|e| e.id);
        Some(match found {
            Some(id) => (
                Search {
                    query,
                    at: Some(id),
                },
                Step::Found(id),
            ),
            None => {
                let step = if before.is_some() {
                    Step::NoOlder
                } else {
                    Step::NoMatch
                };
                (Search { query, at: before }, step)
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store() -> (Store, Vec<u64>) {
        let mut store = Store::new();
        let ids = vec![
            store.push(Entry::new(
                "10:00",
                Kind::Msg {
                    from: "alice".into(),
                },
                "Deploy at 5",
            )),
            store.push(Entry::new("10:01", Kind::Event, "bob joined")),
            store.push(Entry::new(
                "10:02",
                Kind::Private {
                    from: "carol".into(),
                    to: "me".into(),
                },
                "the deploy moved",
            )),
            store.push(Entry::new(
                "10:03",
                Kind::Notice,
                "/search deploy: no match",
            )),
            store.push(Entry::new("10:04", Kind::Separator, "──── deploy ────")),
        ];
        (store, ids)
    }

    #[test]
    fn text_and_names_match_in_any_case_and_the_searchs_own_notes_never() {
        let (store, ids) = store();
        let (found, left_out) = matches(&store, "DEPLOY");
        let found: Vec<u64> = found.iter().map(|e| e.id).collect();
        assert_eq!((found, left_out), (vec![ids[0], ids[2]], 0));
        let (found, _) = matches(&store, "carol");
        assert_eq!(found.len(), 1, "the sender's name counts");
        assert!(matches(&store, "").0.is_empty());
    }

    #[test]
    fn a_step_finds_the_newest_then_older_then_says_no_older() {
        let (store, ids) = store();
        let all = |_: &Entry| true;
        let (s, step) = Search::step(None, "deploy", &store, all).unwrap();
        assert_eq!(step, Step::Found(ids[2]));
        let (s, step) = Search::step(Some(&s), "", &store, all).unwrap();
        assert_eq!(step, Step::Found(ids[0]));
        let (s, step) = Search::step(Some(&s), "Deploy", &store, all).unwrap();
        assert_eq!(step, Step::NoOlder);
        assert_eq!(s.at, Some(ids[0]), "the last match stays shown");
        let (_, step) = Search::step(Some(&s), "nothing", &store, all).unwrap();
        assert_eq!(step, Step::NoMatch);
        assert!(Search::step(None, "", &store, all).is_none());
        // What the view hides is not found.
        let rooms = |e: &Entry| !matches!(e.kind, Kind::Private { .. });
        let (_, step) = Search::step(None, "moved", &store, rooms).unwrap();
        assert_eq!(step, Step::NoMatch);
    }

    #[test]
    fn line_mode_lists_the_newest_matches_and_counts_the_rest() {
        let mut store = Store::new();
        for i in 0..MAX_LISTED + 7 {
            store.push(Entry::new("10:00", Kind::Notice, &format!("hit {i}")));
        }
        let (found, left_out) = matches(&store, "hit");
        assert_eq!((found.len(), left_out), (MAX_LISTED, 7));
        assert_eq!(found[0].text, "hit 7", "oldest of the listed first");
        assert_eq!(
            found.last().unwrap().text,
            format!("hit {}", MAX_LISTED + 6)
        );
    }
}
