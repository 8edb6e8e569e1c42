//! Replays: messages a member gets at once but that must be paced, never dumped (the history on
//! join today; the resumes of version 3 next).
//!
//! The core hands the shell a [`Replay`] (through [`Outbox::replay`](super::Outbox::replay))
//! instead of queuing its lines: the shell writes it as the member reads, a slice at a time
//! ([`REPLAY_SLICE`](crate::config::REPLAY_SLICE) bytes whenever the member's queue has
//! drained), and holds live lines for that member behind it so the order stays the contract's
//! (the replay right after `WELCOME`, then live lines). A replay holds shared messages (a
//! refcount each, [`Replay::cost`] counts them), never their bytes, so a long history of long
//! lines can no longer overflow a newcomer's `--max-queue` and get it dropped.
//!
//! No socket here: this is a cursor over messages.

use std::collections::VecDeque;
use std::rc::Rc;

use super::history::hist;
use super::outgoing::Outgoing;

/// A cursor over the messages still to replay to one member, oldest first.
#[derive(Debug, Default)]
pub struct Replay {
    items: VecDeque<Rc<Outgoing>>,
    /// Each item goes out wrapped as `HIST <time> <line>` (the history) rather than as it is.
    as_hist: bool,
    /// Scratch for the `HIST` wrapping.
    buf: Vec<u8>,
}

impl Replay {
    /// The room's history: each message sent as `HIST <time> <line>`.
    pub fn history(items: impl IntoIterator<Item = Rc<Outgoing>>) -> Replay {
        Replay {
            items: items.into_iter().collect(),
            as_hist: true,
            buf: Vec::new(),
        }
    }

    /// Messages sent as they are (a resume's replay builds its own).
    pub fn messages(items: impl IntoIterator<Item = Rc<Outgoing>>) -> Replay {
        Replay {
            items: items.into_iter().collect(),
            as_hist: false,
            buf: Vec::new(),
        }
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Messages left.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// What the cursor holds in memory terms (its slots; the messages are shared), for
    /// `--max-queue`.
    pub fn cost(&self) -> usize {
        self.items.len() * std::mem::size_of::<Rc<Outgoing>>()
    }

    /// Appends another replay's messages after this one's (both must wrap alike; a mismatch
    /// keeps the other's messages as they are).
    pub fn extend(&mut self, other: Replay) {
        if other.as_hist == self.as_hist {
            self.items.extend(other.items);
        } else {
            let mut other = other;
            while let Some(m) = other.next_message() {
                self.items.push_back(m);
            }
        }
    }

    /// The next message to send, as it goes on the wire.
    pub fn next_message(&mut self) -> Option<Rc<Outgoing>> {
        let item = self.items.pop_front()?;
        if self.as_hist {
            Some(hist(&item, &mut self.buf))
        } else {
            Some(item)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_history_replay_wraps_each_message_once_in_order() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_605_109_123);
        let msgs: Vec<Rc<Outgoing>> = (0..3)
            .map(|i| Outgoing::from_line(format!("MSG a - {i}\n").as_bytes(), Some(t)))
            .collect();
        let mut r = Replay::history(msgs.iter().cloned());
        assert_eq!(r.len(), 3);
        assert_eq!(r.cost(), 3 * std::mem::size_of::<Rc<Outgoing>>());
        r.extend(Replay::history([Rc::clone(&msgs[0])]));
        let mut got = Vec::new();
        while let Some(m) = r.next_message() {
            got.push(String::from_utf8(m.line().to_vec()).unwrap());
        }
        assert_eq!(got[0], "HIST 2025-12-01T16:05:09.123Z MSG a - 0\n");
        assert_eq!(got[3], "HIST 2025-12-01T16:05:09.123Z MSG a - 0\n");
        assert_eq!(got.len(), 4);
        assert!(r.is_empty());
    }
}
