//! The messages of the full-screen interface, stored as what was said (never as screen rows),
//! so every view, at any width, is laid out again from them (`tui/layout.rs`, `line/render.rs`). Bounded by
//! [`MAX_ENTRIES`]: the oldest go first. Pure: no terminal, no socket, no clock (times come in
//! as arguments).

use std::collections::VecDeque;

use chat_common::protocol::Color;
use chat_common::sanitize::sanitize;

/// The most entries kept for scrolling back.
pub const MAX_ENTRIES: usize = 5000;

/// The most bytes the kept entries may hold (their text, names and times, plus
/// [`ENTRY_OVERHEAD`] each): the oldest go first past it, so a server that floods long lines
/// (5000 of 64 KiB would be 320 MiB) cannot make the client hold more than this.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// What one entry costs beyond its strings: the struct and its place in the queue, rounded up.
pub const ENTRY_OVERHEAD: usize = 256;

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
    /// Joins and leaves: client-written words around names.
    Event,
    /// Renames: client-written words around names.
    Rename,
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
    /// The server's own time of the line (RFC 3339, sanitized), when it gave one (HIST).
    pub stamp: Option<String>,
    /// The room's id of the message (protocol version 3), when known.
    pub msg_id: Option<String>,
    /// The local date it was said on, for day-change lines (`None`: the day it arrived).
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
            stamp: None,
            msg_id: None,
            date: None,
        }
    }

    /// What the entry costs against [`MAX_BYTES`].
    pub fn cost(&self) -> usize {
        let names = match &self.kind {
            Kind::Msg { from } | Kind::Act { from } => from.len(),
            Kind::Private { from, to } => from.len() + to.len(),
            _ => 0,
        };
        let extra = self.failed.as_ref().map_or(0, String::len)
            + self.stamp.as_ref().map_or(0, String::len)
            + self.msg_id.as_ref().map_or(0, String::len);
        ENTRY_OVERHEAD + self.time.len() + self.text.len() + names + extra
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
    /// The sum of the kept entries' [`Entry::cost`]: at most [`MAX_BYTES`] once the newest
    /// entry is in (a single entry larger than that is kept alone).
    bytes: usize,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Store::default()
    }

    /// Adds `entry` (dropping the oldest beyond [`MAX_ENTRIES`] or [`MAX_BYTES`]); returns its
    /// id.
    pub fn push(&mut self, mut entry: Entry) -> u64 {
        self.next_id += 1;
        entry.id = self.next_id;
        let cost = entry.cost();
        while !self.entries.is_empty()
            && (self.entries.len() >= MAX_ENTRIES || self.bytes + cost > MAX_BYTES)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.cost());
            }
        }
        self.bytes += cost;
        self.entries.push_back(entry);
        self.next_id
    }

    /// Sets why the server refused the entry with `id` (an own private to nobody), if it is
    /// still kept; returns whether it is.
    pub fn fail(&mut self, id: u64, why: &str) -> bool {
        let at = self.entries.partition_point(|e| e.id < id);
        let Some(entry) = self.entries.get_mut(at).filter(|e| e.id == id) else {
            return false;
        };
        let before = entry.cost();
        entry.failed = Some(sanitize(why).into_owned());
        let after = entry.cost();
        self.bytes = self.bytes.saturating_sub(before) + after;
        true
    }

    /// Gives the kept entry with `id` its message id (known once the server's `ECHO` says it).
    pub fn set_msg_id(&mut self, id: u64, msg_id: &str) {
        let at = self.entries.partition_point(|e| e.id < id);
        if let Some(entry) = self.entries.get_mut(at).filter(|e| e.id == id) {
            let before = entry.cost();
            entry.msg_id = Some(msg_id.to_owned());
            self.bytes = self.bytes.saturating_sub(before) + entry.cost();
        }
    }

    /// Replaces the text of the kept entry with `id` (a `/who` reply or a run of joins that
    /// grew); returns whether it is kept.
    pub fn set_text(&mut self, id: u64, text: &str) -> bool {
        let at = self.entries.partition_point(|e| e.id < id);
        let Some(entry) = self.entries.get_mut(at).filter(|e| e.id == id) else {
            return false;
        };
        let before = entry.cost();
        entry.text = sanitize(text).into_owned();
        self.bytes = self.bytes.saturating_sub(before) + entry.cost();
        true
    }

    /// Removes the entry with `id`, if still kept.
    pub fn remove(&mut self, id: u64) -> Option<Entry> {
        let at = self.entries.partition_point(|e| e.id < id);
        if self.entries.get(at).is_none_or(|e| e.id != id) {
            return None;
        }
        let entry = self.entries.remove(at)?;
        self.bytes = self.bytes.saturating_sub(entry.cost());
        Some(entry)
    }

    /// Forgets every entry (`/clear`); ids keep ascending.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entry with `id`, if still kept.
    pub fn get(&self, id: u64) -> Option<&Entry> {
        // Ids ascend with position, so a binary search finds it.
        let at = self.entries.partition_point(|e| e.id < id);
        self.entries.get(at).filter(|e| e.id == id)
    }

    /// The bytes the kept entries hold, as counted against [`MAX_BYTES`].
    pub fn bytes(&self) -> usize {
        self.bytes
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
        assert!(store.get(ids[0]).is_none());
        let last = *ids.last().unwrap();
        assert_eq!(
            store.get(last).unwrap().text,
            format!("n{}", MAX_ENTRIES + 9)
        );
        assert_eq!(store.get(ids[20]).unwrap().text, "n20");
        assert!(store.fail(ids[20], "why"));
        assert_eq!(store.get(ids[20]).unwrap().failed.as_deref(), Some("why"));
        assert!(!store.fail(ids[0], "gone"));
    }

    #[test]
    fn the_store_is_bounded_in_bytes() {
        // Issue 20: 5000 lines of 64 KiB were kept whole (294-302 MiB).
        let mut store = Store::new();
        let long = "x".repeat(64 * 1024);
        // 300 of them are 19 MiB, more than twice the bound (the 5000 of the finding are the
        // integration test's, tests/memory.rs).
        for _ in 0..300 {
            store.push(Entry::new("10:00", Kind::Msg { from: "al".into() }, &long));
            assert!(store.bytes() <= MAX_BYTES);
        }
        let counted: usize = store.iter().map(Entry::cost).sum();
        assert_eq!(counted, store.bytes());
        assert!(store.bytes() > MAX_BYTES - 70 * 1024, "{}", store.bytes());
        assert_eq!(store.len(), MAX_BYTES / (64 * 1024 + ENTRY_OVERHEAD + 7));
        // One entry larger than the bound is kept alone, then goes first.
        store.push(Entry::new("10:00", Kind::Notice, &"y".repeat(MAX_BYTES)));
        assert_eq!(store.len(), 1);
        store.push(Entry::new("10:00", Kind::Notice, "small"));
        assert_eq!(store.len(), 1);
        assert_eq!(store.newest(0).unwrap().text, "small");
    }

    #[test]
    fn text_is_sanitized_on_the_way_in() {
        let e = Entry::new("10:00", Kind::Notice, "a\x1b[2Jb\u{202e}c");
        assert_eq!(e.text, "a[2Jbc");
    }
}
