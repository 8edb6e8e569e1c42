//! Every deadline of the server in one min-heap, which also sets the poll timeout.
//!
//! Timers are not cancelled one by one: each entry names the connection by slab key *and* serial
//! number, and the reactor ignores an entry whose connection is gone or has moved on (lazy
//! deletion), so arming a timer is one heap push. So that a churn of short connections leaves
//! nothing behind, the reactor sweeps out the entries of gone connections whenever the heap has
//! grown past twice the live connections ([`Timers::sweep`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::chat::CoreTimer;

/// The key of timers that belong to no connection.
pub const NO_CONN: usize = usize::MAX;

/// What a timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// One of the core's deadlines (login, approval, announcements).
    Core(CoreTimer),
    /// A paced connection has earned a line again: resume reading it.
    Refill,
    /// A politely closing connection has had its chance: cut it.
    Linger,
    /// Release the output queue's spare storage if the queue is still empty.
    Release,
    /// Cut the connection if its queued output has not moved for `--stall-timeout`.
    Stall,
    /// Give freed memory back to the system if the queues are still small.
    Trim,
    /// An IRC connection's silence check (`--irc-ping`): ping it, or drop it.
    IrcPing,
}

/// One armed deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    /// When it fires.
    pub at: Instant,
    /// Orders timers with the same deadline by arming order.
    seq: u64,
    /// The connection's slab key.
    pub key: usize,
    /// The connection's serial number, to tell a reused slab key from the original.
    pub serial: u64,
    /// What to do.
    pub kind: TimerKind,
}

/// The heap of deadlines.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

impl Timers {
    /// Arms a timer.
    pub fn arm(&mut self, at: Instant, key: usize, serial: u64, kind: TimerKind) {
        self.seq += 1;
        self.heap.push(Reverse(Timer {
            at,
            seq: self.seq,
            key,
            serial,
            kind,
        }));
    }

    /// Removes and returns the earliest timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse(t)) if t.at <= now => self.heap.pop().map(|Reverse(t)| t),
            _ => None,
        }
    }

    /// Time from `now` until the earliest deadline, or `None` when no timer is armed.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse(t)| t.at.saturating_duration_since(now))
    }

    /// Drops every entry for which `live(key, serial)` is false (timers of gone connections)
    /// once the heap holds more than twice `live_count` entries plus some slack, and frees the
    /// storage it no longer needs. Amortised O(1) per armed timer.
    pub fn sweep(&mut self, live_count: usize, live: impl Fn(usize, u64) -> bool) {
        const SLACK: usize = 1024;
        if self.heap.len() <= 2 * live_count + SLACK {
            return;
        }
        self.heap
            .retain(|Reverse(t)| t.key == NO_CONN || live(t.key, t.serial));
        self.heap.shrink_to(2 * self.heap.len() + SLACK);
    }

    /// Number of armed timers (stale ones included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.arm(
            t0 + Duration::from_secs(3),
            1,
            1,
            TimerKind::Core(CoreTimer::Login),
        );
        timers.arm(t0 + Duration::from_secs(1), 2, 2, TimerKind::Refill);
        timers.arm(t0 + Duration::from_secs(1), 3, 3, TimerKind::Linger);
        timers.arm(t0 + Duration::from_secs(5), NO_CONN, 0, TimerKind::Trim);
        assert_eq!(timers.next_timeout(t0), Some(Duration::from_secs(1)));
        assert!(timers.pop_due(t0).is_none());
        let now = t0 + Duration::from_secs(2);
        let a = timers.pop_due(now).map(|t| t.key);
        let b = timers.pop_due(now).map(|t| t.key);
        assert_eq!((a, b), (Some(2), Some(3)), "same deadline: arming order");
        assert!(timers.pop_due(now).is_none());
        assert_eq!(timers.len(), 2);
        assert_eq!(
            timers.next_timeout(t0 + Duration::from_secs(9)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn sweeping_drops_gone_connections_only_when_the_heap_has_grown() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for key in 0..5000 {
            timers.arm(t0, key, key as u64, TimerKind::Linger);
        }
        timers.arm(t0, NO_CONN, 0, TimerKind::Trim);
        timers.sweep(5000, |_, _| false);
        assert_eq!(timers.len(), 5001, "not grown past twice the live ones");
        timers.sweep(10, |key, _| key < 10);
        assert_eq!(timers.len(), 11, "live ones and connectionless ones stay");
    }
}
