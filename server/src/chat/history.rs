//! The room's history: its last N messages (`MSG` and `ACT` lines only), for newcomers.
//!
//! Each entry is the very line the members' queues got (the same shared bytes, LF included) and
//! the wall-clock time it was relayed. Memory is bounded by N entries of at most `--max-line`
//! plus the line's prefix each; N = 0 keeps nothing.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::SystemTime;

/// The last messages, oldest first.
#[derive(Debug)]
pub struct History {
    entries: VecDeque<(SystemTime, Rc<[u8]>)>,
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

    /// Records a relayed line, forgetting the oldest past the capacity. No copy of the bytes.
    pub fn record(&mut self, at: SystemTime, line: &Rc<[u8]>) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((at, Rc::clone(line)));
    }

    /// Writes every entry as a `HIST <time> <line>` line into `buf` (cleared first), oldest
    /// first, calling `each` with the bytes of one line at a time.
    pub fn replay(&self, buf: &mut Vec<u8>, mut each: impl FnMut(&[u8])) {
        for (at, line) in &self.entries {
            buf.clear();
            buf.extend_from_slice(b"HIST ");
            buf.extend_from_slice(humantime::format_rfc3339_millis(*at).to_string().as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(line);
            each(buf);
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
            let line: Rc<[u8]> = Rc::from(format!("MSG a - {i}\n").as_bytes());
            h.record(t, &line);
        }
        let mut got = Vec::new();
        h.replay(&mut Vec::new(), |l| {
            got.push(String::from_utf8(l.to_vec()).unwrap())
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
        h.record(SystemTime::now(), &Rc::from(&b"MSG a - x\n"[..]));
        assert!(h.is_empty());
    }
}
