//! The store's side of the loop (`--data-dir`): each round's writes go to the disk thread in
//! one hand-over, its answers go to the core (messages delivered once durable, refused when
//! not), and resume replays are read from the log a page at a time, the next page asked for
//! only once the member's queue has drained below half of `--max-queue`.
//!
//! Owns the store handle and the replays' read requests. Decides nothing about the room: the
//! core does (chat/v3.rs); the disk thread keeps and reads (store/).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::Reactor;
use crate::chat::{replay_page_len, ConnId, Now, ReadFrom, Restored};
use crate::config::MAX_HELD_MESSAGES;
use crate::store::{Answer, Opened, Store, PRUNE_INTERVAL};

/// Answers from the disk thread handled in one round before sockets get their turn.
const ANSWERS_PER_ROUND: usize = 256;

/// An attached store and the loop's bookkeeping for it.
#[derive(Debug)]
pub struct Attached {
    store: Store,
    /// The disk thread may have more answers than one round took.
    pub busy: bool,
    /// Page reads in flight: request number -> the member replaying.
    reads: HashMap<u64, ConnId>,
    /// Replays whose next page waits for the member's queue to drain: member -> where from.
    waiting: HashMap<ConnId, ReadFrom>,
    last_prune: Instant,
    /// Connections whose input waits until the store's backlog drains (see
    /// [`MAX_HELD_MESSAGES`]).
    parked: Vec<ConnId>,
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Reactor {
    /// Attaches an opened store: its contents go to the core, its disk thread starts, and from
    /// now on room messages are delivered once durable.
    pub fn attach_store(&mut self, mut opened: Opened) -> std::io::Result<()> {
        let loaded = std::mem::take(&mut opened.loaded);
        // A ban that ran out while the server was down does not come back (the next prune
        // removes its record).
        let wall = std::time::SystemTime::now();
        let bans = loaded
            .bans
            .into_iter()
            .filter(|b| !b.expired(wall))
            .collect();
        self.core.restore(Restored {
            epoch: loaded.epoch,
            next_seq: loaded.next_seq,
            members: loaded.members,
            bans,
            recent: loaded.recent,
            durable: opened.on_disk(),
        });
        let store = opened.start(Arc::clone(&self.waker))?;
        self.shell.store = Some(Attached {
            store,
            busy: false,
            reads: HashMap::new(),
            waiting: HashMap::new(),
            last_prune: Instant::now(),
            parked: Vec::new(),
        });
        Ok(())
    }

    /// Hands the disk thread's answers to the core.
    pub(super) fn drive_store(&mut self, now: Now) {
        let Some(s) = self.shell.store.as_mut() else {
            return;
        };
        if !s.busy {
            return;
        }
        s.busy = false;
        for _ in 0..ANSWERS_PER_ROUND {
            let Some(answer) = self.shell.store.as_ref().and_then(|s| s.store.try_recv()) else {
                return;
            };
            match answer {
                Answer::Durable { batch } => {
                    self.core.store_durable(batch, now, &mut self.shell);
                    self.unpark();
                }
                Answer::Failed { batch } => {
                    self.core.store_failed(batch, now, &mut self.shell);
                    self.unpark();
                }
                Answer::Down { why } => self.core.store_down(&why, &mut self.shell),
                Answer::Up => self.core.store_up(&mut self.shell),
                Answer::Page {
                    request,
                    entries,
                    more,
                    first_seq,
                    missing,
                } => {
                    let Some(id) = self
                        .shell
                        .store
                        .as_mut()
                        .and_then(|s| s.reads.remove(&request))
                    else {
                        continue;
                    };
                    let next = self.core.replay_page(
                        id,
                        &entries,
                        more,
                        first_seq,
                        missing,
                        &mut self.shell,
                    );
                    if let (Some(after), Some(s)) = (next, self.shell.store.as_mut()) {
                        s.waiting.insert(id, ReadFrom { after, find: None });
                    }
                }
            }
        }
        if let Some(s) = self.shell.store.as_mut() {
            s.busy = true;
        }
    }

    /// Whether the store's backlog is full: the caller parks `id`'s input (it is read again
    /// once the backlog is below half).
    pub(super) fn park_for_store(&mut self, id: ConnId) -> bool {
        if self.core.store_backlog() < MAX_HELD_MESSAGES {
            return false;
        }
        if let Some(s) = self.shell.store.as_mut() {
            if !s.parked.contains(&id) {
                s.parked.push(id);
            }
        }
        true
    }

    /// Gives parked connections their input back once the backlog is below half.
    fn unpark(&mut self) {
        if self.core.store_backlog() >= MAX_HELD_MESSAGES / 2 {
            return;
        }
        let parked = match self.shell.store.as_mut() {
            Some(s) if !s.parked.is_empty() => std::mem::take(&mut s.parked),
            _ => return,
        };
        for id in parked {
            self.requeue(id);
        }
    }

    /// End of round: the round's writes go to the disk thread in one request; replays whose
    /// member has room ask for their next page; old entries are pruned now and then.
    pub(super) fn hand_to_store(&mut self, now: Now) {
        let Some(s) = self.shell.store.as_mut() else {
            return;
        };
        let writes = self.core.take_store_writes();
        if !writes.is_empty() {
            for w in writes {
                s.store.write(w);
            }
            match s.store.flush_round() {
                Ok(Some(batch)) => self.core.store_sealed(batch),
                Ok(None) => {}
                Err(_) => {
                    // On disk the round's messages are refused (ERROR unavailable); in memory
                    // they were delivered and only miss the log. A flood can hit this every
                    // round: debug, not warn.
                    log::debug!("store: the store thread is too far behind for this round");
                    self.core.store_refused_round(now, &mut self.shell);
                }
            }
        }
        for (id, from) in self.core.take_replay_reads() {
            if let Some(s) = self.shell.store.as_mut() {
                s.waiting.insert(id, from);
            }
        }
        let half = self.shell.config.max_queue / 2;
        let page = replay_page_len(self.shell.config.max_queue, self.shell.config.max_line);
        let Some(s) = self.shell.store.as_mut() else {
            return;
        };
        if !s.waiting.is_empty() {
            let ready: Vec<(ConnId, ReadFrom)> = s
                .waiting
                .iter()
                .filter(|(id, _)| {
                    self.shell
                        .conns
                        .get(id.key)
                        .is_some_and(|c| c.id.serial == id.serial && c.out.cost() < half)
                })
                .map(|(id, from)| (*id, from.clone()))
                .collect();
            for (id, from) in ready {
                if let Some(request) = s.store.read(from.after, from.find.as_deref(), page) {
                    s.waiting.remove(&id);
                    s.reads.insert(request, id);
                }
            }
            // Replays of connections that are gone are dropped.
            let conns = &self.shell.conns;
            s.waiting
                .retain(|id, _| conns.get(id.key).is_some_and(|c| c.id.serial == id.serial));
        }
        if s.last_prune.elapsed() >= PRUNE_INTERVAL || s.store.prune_due() {
            s.last_prune = Instant::now();
            s.store.prune(wall_ms());
            let _ = s.store.flush_round();
        }
    }

    /// Whether the loop should come back without waiting: answers are pending. (A replay
    /// waiting for its member's queue is woken by that socket's WRITABLE events.)
    pub(super) fn store_busy(&self) -> bool {
        self.shell.store.as_ref().is_some_and(|s| s.busy)
    }

    /// The store's counters for `/metrics`, when there is a store.
    pub(super) fn store_counters(&self) -> Option<crate::metrics::StoreCounters> {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.shell.store.as_ref()?.store.stats();
        Some(crate::metrics::StoreCounters {
            durable: stats.durable.load(Relaxed),
            flushes: stats.flushes.load(Relaxed),
            flush_micros: stats.flush_micros.load(Relaxed),
            failures: stats.failures.load(Relaxed),
        })
    }

    /// At shutdown: what is pending goes to disk (bounded wait).
    pub(super) fn close_store(&mut self, within: Duration) {
        if let Some(s) = self.shell.store.as_mut() {
            s.store.close(within);
        }
    }
}
