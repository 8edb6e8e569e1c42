//! The room's history: its last N entries, for newcomers: the `MSG` and `ACT` lines, and the
//! `LEAVE` and `NICK` lines where they matter (a member who has a line in the history left or
//! was renamed), so a newcomer can tell two speakers of one name apart.
//!
//! Each entry is the very message the members' queues got (the same shared [`Outgoing`], with
//! the wall-clock time it was relayed). Memory is bounded by N entries of at most `--max-line`
//! plus the line's prefix each, and a count per name that has spoken in them; N = 0 keeps
//! nothing.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::SystemTime;

use super::outgoing::Outgoing;

/// The last messages, oldest first.
#[derive(Debug)]
pub struct History {
    /// Each entry and who spoke it (`None` for a `LEAVE` or `NICK`).
    entries: VecDeque<(Rc<Outgoing>, Option<Rc<str>>)>,
    capacity: usize,
    /// Lowercased name -> how many entries it spoke.
    speakers: HashMap<Box<str>, usize>,
}

fn fold(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

impl History {
    /// A history that keeps `capacity` messages (0: none).
    pub fn new(capacity: usize) -> History {
        History {
            entries: VecDeque::new(),
            capacity,
            speakers: HashMap::new(),
        }
    }

    /// Records a relayed message spoken by `speaker`, forgetting the oldest past the capacity.
    /// No copy of the bytes.
    pub fn record(&mut self, msg: &Rc<Outgoing>, speaker: &Rc<str>) {
        if self.capacity == 0 {
            return;
        }
        self.make_room();
        let key = fold(speaker);
        match self.speakers.get_mut(&*key) {
            Some(count) => *count += 1,
            None => {
                self.speakers.insert(key.into(), 1);
            }
        }
        self.entries
            .push_back((Rc::clone(msg), Some(Rc::clone(speaker))));
    }

    /// Records a `LEAVE` or `NICK` line of a member who has spoken in the history (the caller
    /// checked [`History::has_spoken`]).
    pub fn record_event(&mut self, msg: &Rc<Outgoing>) {
        if self.capacity == 0 {
            return;
        }
        self.make_room();
        self.entries.push_back((Rc::clone(msg), None));
    }

    /// Whether `name` (without regard to case) spoke an entry still held.
    pub fn has_spoken(&self, name: &str) -> bool {
        self.speakers.contains_key(&*fold(name))
    }

    fn make_room(&mut self) {
        if self.entries.len() < self.capacity {
            return;
        }
        if let Some((_, Some(speaker))) = self.entries.pop_front() {
            let key = fold(&speaker);
            if let Some(count) = self.speakers.get_mut(&*key) {
                *count -= 1;
                if *count == 0 {
                    self.speakers.remove(&*key);
                }
            }
        }
    }

    /// The entries held, oldest first (shared: a refcount each), for a paced replay.
    pub fn snapshot(&self) -> impl ExactSizeIterator<Item = Rc<Outgoing>> + '_ {
        self.entries.iter().map(|(m, _)| Rc::clone(m))
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `HIST <time> <line>` for a recorded message (no time recorded: the Unix epoch).
pub fn hist(msg: &Outgoing, buf: &mut Vec<u8>) -> Rc<Outgoing> {
    let at = msg.wall.unwrap_or(SystemTime::UNIX_EPOCH);
    buf.clear();
    buf.extend_from_slice(b"HIST ");
    buf.extend_from_slice(humantime::format_rfc3339_millis(at).to_string().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(msg.line());
    let mut out = Outgoing::from_line(buf, msg.wall);
    if let Some(id) = &msg.id {
        if let Some(o) = Rc::get_mut(&mut out) {
            o.id = Some(id.clone());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn keeps_the_last_n_in_order_with_millisecond_utc_times() {
        let mut h = History::new(2);
        let t = UNIX_EPOCH + Duration::from_millis(1_764_605_109_123);
        for i in 0..3 {
            let line = Outgoing::from_line(format!("MSG a - {i}\n").as_bytes(), Some(t));
            h.record(&line, &Rc::from("a"));
        }
        let mut got = Vec::new();
        for m in h.snapshot() {
            got.push(String::from_utf8(hist(&m, &mut Vec::new()).line().to_vec()).unwrap());
        }
        assert_eq!(
            got,
            vec![
                "HIST 2025-12-01T16:05:09.123Z MSG a - 1\n",
                "HIST 2025-12-01T16:05:09.123Z MSG a - 2\n"
            ]
        );
    }

    #[test]
    fn it_knows_who_spoke_what_it_still_holds() {
        let mut h = History::new(2);
        let line = |l: &str| Outgoing::from_line(l.as_bytes(), None);
        h.record(&line("MSG Al - x\n"), &Rc::from("Al"));
        assert!(h.has_spoken("al") && h.has_spoken("AL"));
        h.record_event(&line("LEAVE Al quit\n"));
        h.record(&line("MSG bo - y\n"), &Rc::from("bo"));
        assert!(!h.has_spoken("al"), "Al's line is forgotten");
        assert!(h.has_spoken("bo"));
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut h = History::new(0);
        h.record(&Outgoing::from_line(b"MSG a - x\n", None), &Rc::from("a"));
        assert!(h.is_empty());
    }
}
