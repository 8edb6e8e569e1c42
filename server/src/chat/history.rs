//! The room's history: its last N messages (`MSG` and `ACT` lines only), for newcomers.
//!
//! Each entry is the very message the members' queues got (the same shared [`Outgoing`], with
//! the wall-clock time it was relayed). Memory is bounded by N entries of at most `--max-line`
//! plus the line's prefix each; N = 0 keeps nothing.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::SystemTime;

use super::outgoing::Outgoing;

/// The last messages, oldest first.
#[derive(Debug)]
pub struct History {
    entries: VecDeque<Rc<Outgoing>>,
    capacity: usize,
}

impl History {
    /// A history that keeps `capacity` messages (0: none).
    pub fn new(capacity: usize) -> History {
        History {
            entries: VecDeque::new(),
            capacity,
        }
    }

    /// Records a relayed message, forgetting the oldest past the capacity. No copy of the bytes.
    pub fn record(&mut self, msg: &Rc<Outgoing>) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(Rc::clone(msg));
    }

    /// Calls `each` with every entry as a `HIST <time> <line>` message (written with `buf` as
    /// scratch), oldest first; the replayed message keeps the original's time and id.
    pub fn replay(&self, buf: &mut Vec<u8>, mut each: impl FnMut(Rc<Outgoing>)) {
        for msg in &self.entries {
            each(hist(msg, buf));
        }
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
            h.record(&Outgoing::from_line(
                format!("MSG a - {i}\n").as_bytes(),
                Some(t),
            ));
        }
        let mut got = Vec::new();
        h.replay(&mut Vec::new(), |l| {
            got.push(String::from_utf8(l.line().to_vec()).unwrap())
        });
        assert_eq!(
            got,
            vec![
                "HIST 2025-12-01T16:05:09.123Z MSG a - 1\n",
                "HIST 2025-12-01T16:05:09.123Z MSG a - 2\n"
            ]
        );
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut h = History::new(0);
        h.record(&Outgoing::from_line(b"MSG a - x\n", None));
        assert!(h.is_empty());
    }
}
