//! The messages of the full-screen interface, stored as what was said (never as screen rows),
//! so every view, at any width, is laid out again from them (`layout.rs`). Bounded by
//! [`MAX_ENTRIES`]: the oldest go first. Pure: no terminal, no socket, no clock (times come in
//! as arguments).

use std::collections::VecDeque;

use chat_common::protocol::Color;
use chat_common::sanitize::sanitize;

/// The most entries kept for scrolling back.
pub const MAX_ENTRIES: usize = 5000;

/// Who or what a stored line is; decides its prefix column, which only the client writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A room message.
    Msg {
        /// The sender.
        from: String,
    },
    /// A private message from `from` to `to`.
    Private {
        /// The sender.
        from: String,
        /// The recipient.
        to: String,
    },
    /// An action: `* alice waves`.
    Act {
        /// Who acts.
        from: String,
    },
    /// Joins, leaves, renames: client-written words around names.
    Event,
    /// Notices: the server's INFO lines and the client's own.
    Notice,
    /// Errors and refusals.
    Error,
    /// A line the client could not parse, shown sanitized.
    Unparsed,
    /// The line between the room's history and live lines.
    Separator,
}

/// One stored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// A serial number, unique in this run, so a later event can find this entry.
    pub id: u64,
    /// `14:02`, local time.
    pub time: String,
    /// What it is.
    pub kind: Kind,
    /// The text, sanitized; message text keeps its markup as typed.
    pub text: String,
    /// The sender's chosen color, if any.
    pub color: Option<Color>,
    /// The user's own line.
    pub own: bool,
    /// It mentions the user, or is a private to the user.
    pub highlight: bool,
    /// From the room's history (HIST): shown dimmed.
    pub history: bool,
    /// Why the server refused it (an own private to nobody), shown against it.
    pub failed: Option<String>,
    /// The local date it was said on, for day-change lines (`None`: today, as it arrives).
    pub date: Option<chrono::NaiveDate>,
}

impl Entry {
    /// An entry of `kind` with `text` (sanitized here), at `time`, with every flag off.
    pub fn new(time: &str, kind: Kind, text: &str) -> Self {
        Entry {
            id: 0,
            time: time.to_owned(),
            kind,
            text: sanitize(text).into_owned(),
            color: None,
            own: false,
            highlight: false,
            history: false,
            failed: None,
            date: None,
        }
    }

    /// Whether the text is message text whose markup is rendered.
    pub fn has_markup(&self) -> bool {
        matches!(
            self.kind,
            Kind::Msg { .. } | Kind::Private { .. } | Kind::Act { .. }
        )
    }
}

/// The stored lines, oldest first.
#[derive(Debug, Default)]
pub struct Store {
    entries: VecDeque<Entry>,
    next_id: u64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Store::default()
    }

    /// Adds `entry` (dropping the oldest beyond [`MAX_ENTRIES`]); returns its id.
    pub fn push(&mut self, mut entry: Entry) -> u64 {
        self.next_id += 1;
        entry.id = self.next_id;
        if self.entries.len() == MAX_ENTRIES {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        self.next_id
    }

    /// The entry with `id`, if still kept.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        // Ids ascend with position, so a binary search finds it.
        let at = self.entries.partition_point(|e| e.id < id);
        self.entries.get_mut(at).filter(|e| e.id == id)
    }

    /// Removes the entry with `id`, if still kept.
    pub fn remove(&mut self, id: u64) -> Option<Entry> {
        let at = self.entries.partition_point(|e| e.id < id);
        if self.entries.get(at).is_some_and(|e| e.id == id) {
            self.entries.remove(at)
        } else {
            None
        }
    }

    /// Forgets every entry (`/clear`); ids keep ascending.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entry `back` places from the newest (0 is the newest).
    pub fn newest(&self, back: usize) -> Option<&Entry> {
        let index = self.entries.len().checked_sub(back + 1)?;
        self.entries.get(index)
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> + ExactSizeIterator {
        self.entries.iter()
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_bounded_and_finds_entries_by_id() {
        let mut store = Store::new();
        let mut ids = Vec::new();
        for i in 0..MAX_ENTRIES + 10 {
            ids.push(store.push(Entry::new("10:00", Kind::Notice, &format!("n{i}"))));
        }
        assert_eq!(store.len(), MAX_ENTRIES);
        assert!(store.get_mut(ids[0]).is_none());
        let last = *ids.last().unwrap();
        assert_eq!(
            store.get_mut(last).unwrap().text,
            format!("n{}", MAX_ENTRIES + 9)
        );
        assert_eq!(store.get_mut(ids[20]).unwrap().text, "n20");
        assert_eq!(store.remove(ids[20]).unwrap().text, "n20");
        assert!(store.remove(ids[20]).is_none());
        assert_eq!(store.get_mut(ids[21]).unwrap().text, "n21");
        store.clear();
        assert!(store.is_empty());
        assert!(store.push(Entry::new("", Kind::Notice, "x")) > last);
    }

    #[test]
    fn text_is_sanitized_on_the_way_in() {
        let e = Entry::new("10:00", Kind::Notice, "a\x1b[2Jb\u{202e}c");
        assert_eq!(e.text, "a[2Jbc");
    }
}
