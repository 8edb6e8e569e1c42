//! The disk thread: takes the loop's requests, folds every waiting commit into one redb
//! transaction (one fsync for all of them), answers through the loop's inbox and waker.
//!
//! Owns the open database after start. Never decides anything about the room; never blocks the
//! loop (the loop only `try_send`s to it). When a commit fails it drops the database, answers
//! `Failed` for the batches and `Down` once, keeps the records that did not land, and tries
//! again every [`RETRY_INTERVAL`] until a commit goes through (`Up`).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use super::db::Db;
use super::Write;
use super::{Answer, Request, Stats, MAX_REQUESTS_PER_COMMIT, RETRY_INTERVAL};

/// The thread's state.
pub(super) struct Disk {
    /// The database; `None` after a failure until it is reopened.
    pub db: Option<Db>,
    /// The database file (`None`: in memory).
    pub path: Option<PathBuf>,
    pub requests: Receiver<Request>,
    pub answers: SyncSender<Answer>,
    pub waker: std::sync::Arc<mio::Waker>,
    pub stats: Arc<Stats>,
    /// Records (not messages) whose commit failed: written first once the disk is back.
    pub retry: Vec<Write>,
    pub down: bool,
}

impl Disk {
    pub fn run(mut self) {
        let mut next_seq = 0;
        loop {
            let first = if self.down {
                match self.requests.recv_timeout(RETRY_INTERVAL) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match self.requests.recv() {
                    Ok(r) => Some(r),
                    Err(_) => return,
                }
            };
            let mut work: Vec<Request> = first.into_iter().collect();
            while work.len() < MAX_REQUESTS_PER_COMMIT {
                match self.requests.try_recv() {
                    Ok(r) => work.push(r),
                    Err(_) => break,
                }
            }
            let mut batches = Vec::new();
            let mut writes = std::mem::take(&mut self.retry);
            let mut reads = Vec::new();
            for r in work {
                match r {
                    Request::Commit {
                        batch,
                        writes: w,
                        next_seq: n,
                    } => {
                        batches.push(batch);
                        writes.extend(w);
                        next_seq = next_seq.max(n);
                    }
                    Request::Read {
                        request,
                        after,
                        find,
                        max,
                    } => reads.push((request, after, find, max)),
                }
            }
            // What these writes cost in the loop's byte bound is released here, whatever
            // becomes of them.
            let bytes: usize = writes
                .iter()
                .map(|w| match w {
                    Write::Append(e) => e.iter().map(super::Entry::cost).sum(),
                    _ => 0,
                })
                .sum();
            let _ =
                self.stats
                    .queued_bytes
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                        Some(q.saturating_sub(bytes))
                    });
            if self.down && !self.reopen() {
                self.fail(batches, writes, None);
                for (request, ..) in reads {
                    self.answer(Answer::Page {
                        request,
                        entries: Vec::new(),
                        more: false,
                        first_seq: None,
                        missing: false,
                    });
                }
                continue;
            }
            if !writes.is_empty() || self.down {
                let entries: u64 = writes
                    .iter()
                    .map(|w| match w {
                        Write::Append(e) => e.len() as u64,
                        _ => 0,
                    })
                    .sum();

                let started = Instant::now();
                let result = match &self.db {
                    Some(db) => db.commit(&mut writes, next_seq),
                    None => Err(super::StoreError::Disk("the store is not open".into())),
                };

                match result {
                    Ok(()) => {
                        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(0);
                        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
                        self.stats.durable.fetch_add(entries, Ordering::Relaxed);
                        self.stats.flush_micros.fetch_add(micros, Ordering::Relaxed);
                        if self.down {
                            self.down = false;
                            log::warn!("store: the disk works again");
                            self.answer(Answer::Up);
                        }
                        // In memory (`--data-dir none`) no message waits for its batch (they
                        // were delivered at once): no answer, so no wake-up of the loop and no
                        // extra round for it on the hot path.
                        if self.path.is_some() {
                            for batch in batches {
                                self.answer(Answer::Durable { batch });
                            }
                        }
                    }
                    Err(e) => {
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                        // The consoles say `store: cannot write (WHY)`: the reason alone.
                        let why = match e {
                            super::StoreError::Disk(what) => what,
                            other => other.to_string(),
                        };
                        self.fail(batches, writes, Some(why));
                    }
                }
            }
            for (request, after, find, max) in reads {
                let mut missing = false;
                let page = self.db.as_ref().map(|db| {
                    let after = match &find {
                        Some(id) => {
                            let at = db.locate(id, after)?;
                            // Not kept, or something after it no longer is (the in-memory
                            // log's bound on privates).
                            missing = match at {
                                None => true,
                                Some(seq) => db
                                    .first_seq()?
                                    .is_some_and(|first| first > seq.saturating_add(1)),
                            };
                            at
                        }
                        None => after,
                    };
                    let first = db.first_seq();
                    db.read_after(after, max).map(|(e, m)| (e, m, first))
                });
                let (entries, more, first_seq) = match page {
                    Some(Ok((entries, more, first))) => (entries, more, first.ok().flatten()),
                    Some(Err(e)) => {
                        log::warn!("store: a read failed: {e}");
                        (Vec::new(), false, None)
                    }
                    None => (Vec::new(), false, None),
                };
                self.answer(Answer::Page {
                    request,
                    entries,
                    more,
                    first_seq,
                    missing,
                });
            }
        }
    }

    /// Answers `Failed` for `batches`, keeps the records, and goes (or stays) down.
    fn fail(&mut self, batches: Vec<u64>, writes: Vec<Write>, why: Option<String>) {
        self.retry = writes
            .into_iter()
            .filter(|w| !matches!(w, Write::Append(_)))
            .collect();
        if !self.down {
            let why = why.unwrap_or_else(|| "the store is not open".into());
            log::error!("store: cannot write: {why}; refusing messages until it works again");
            self.down = true;
            // redb asks for a fresh handle after an I/O error; reopen on the next try.
            if self.path.is_some() {
                self.db = None;
            }
            self.answer(Answer::Down { why });
        }
        for batch in batches {
            self.answer(Answer::Failed { batch });
        }
    }

    /// Opens the database again after a failure; true when it is open.
    fn reopen(&mut self) -> bool {
        if self.db.is_some() {
            return true;
        }
        let Some(path) = &self.path else {
            return false;
        };
        match Db::open(path) {
            Ok(db) => {
                self.db = Some(db);
                true
            }
            Err(e) => {
                log::debug!("store: still failing: {e}");
                false
            }
        }
    }

    fn answer(&self, a: Answer) {
        if self.answers.send(a).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::warn!("store: cannot wake the loop: {e}");
            }
        }
    }
}
