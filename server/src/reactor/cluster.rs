//! The cluster bridge's side of the loop (`--cluster`): its messages are handed to the core, at
//! most [`INBOX_PER_ROUND`] a round so sockets keep their turn, and an overflowing queue to Redis
//! cuts the server off.
//!
//! Other servers' entries are *paced* (issue 20): after a Redis outage the reader hands over up
//! to [`READ_COUNT`](crate::config::READ_COUNT) entries at once (megabytes), and fanning them out
//! in one round overflowed healthy readers' queues. So a batch of entries is held here and given
//! to the core a slice at a time (at most [`CATCHUP_SLICE`] bytes of queue cost, and at most a
//! quarter of `--max-queue`), and the next slice only once every reader whose output is moving
//! has drained below half its `--max-queue`. A reader whose output has not moved for
//! [`CATCHUP_PATIENCE`] does not hold the room back (its `--stall-timeout` and `--max-queue`
//! deal with it). While entries are held nothing more is taken from the bridge (its bounded
//! channel fills and Redis keeps the log), so the order of the room's events is kept.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Reactor, Shell};
use crate::chat::bus::{Entry, Event, LogId};
use crate::chat::Now;
use crate::cluster::event::FromBridge;
use crate::config::{CATCHUP_PATIENCE, CATCHUP_SLICE, INBOX_PER_ROUND, QUEUE_LINE_OVERHEAD};

/// A batch of other servers' entries being handed to the core a slice at a time.
#[derive(Debug)]
pub(super) struct HeldEntries {
    epoch: u64,
    entries: VecDeque<Entry>,
    /// The log id the whole batch was read up to: told to the core with the last slice.
    last: LogId,
}

/// What an entry can cost in each member's queue when fanned out.
fn entry_cost(entry: &Entry) -> usize {
    let bytes = match &entry.event {
        Event::Msg { line, .. } | Event::Info { line } => line.len(),
        _ => 0,
    };
    bytes + QUEUE_LINE_OVERHEAD * 2
}

impl Shell {
    /// Whether every reader whose output is moving has room for another slice of entries.
    fn room_for_a_slice(&self, now: Instant) -> bool {
        let half = self.config.max_queue / 2;
        self.conns.iter().all(|(_, c)| {
            c.doomed
                || c.out.cost() <= half
                || c.waiting_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= CATCHUP_PATIENCE)
        })
    }
}

impl Reactor {
    /// Hands the bridge's waiting messages to the core.
    pub(super) fn drive_cluster(&mut self, now: Now) {
        let Some(link) = self.shell.cluster.as_mut() else {
            self.shell.cluster_busy = false;
            return;
        };
        if link.take_overflow() {
            let why = "its queue to Redis overflowed".to_owned();
            self.cluster_held = None;
            self.core
                .cluster_input(FromBridge::Down { why }, now, &mut self.shell);
        }
        if self.cluster_held.is_some() {
            self.feed_held(now);
            if self.cluster_held.is_some() {
                return;
            }
        }
        if !self.shell.cluster_busy {
            return;
        }
        self.shell.cluster_busy = false;
        for _ in 0..INBOX_PER_ROUND {
            let Some(msg) = self.shell.cluster.as_ref().and_then(|l| l.try_recv()) else {
                return;
            };
            match msg {
                FromBridge::Entries {
                    epoch,
                    entries,
                    last,
                } => {
                    self.cluster_held = Some(HeldEntries {
                        epoch,
                        entries: entries.into(),
                        last,
                    });
                    self.feed_held(now);
                    if self.cluster_held.is_some() {
                        // The rest waits for the readers; more may wait in the bridge.
                        self.shell.cluster_busy = true;
                        return;
                    }
                }
                other => self.core.cluster_input(other, now, &mut self.shell),
            }
        }
        // There may be more: come back next round without waiting.
        self.shell.cluster_busy = true;
    }

    /// Gives the core the next slice of held entries if the readers have room for it.
    fn feed_held(&mut self, now: Now) {
        if !self.shell.room_for_a_slice(now.at) {
            return;
        }
        let Some(held) = self.cluster_held.as_mut() else {
            return;
        };
        let budget = CATCHUP_SLICE.min(self.shell.config.max_queue / 4).max(1);
        let mut cost = 0;
        let mut slice = Vec::new();
        while let Some(entry) = held.entries.front() {
            let c = entry_cost(entry);
            if !slice.is_empty() && cost + c > budget {
                break;
            }
            cost += c;
            if let Some(entry) = held.entries.pop_front() {
                slice.push(entry);
            }
        }
        let done = held.entries.is_empty();
        let msg = FromBridge::Entries {
            epoch: held.epoch,
            entries: slice,
            // The read position moves only with the batch's last slice.
            last: if done { held.last } else { LogId::default() },
        };
        if done {
            self.cluster_held = None;
        }
        self.core.cluster_input(msg, now, &mut self.shell);
    }
}
