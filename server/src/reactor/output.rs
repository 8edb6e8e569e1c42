//! Output: the [`Outbox`] the core writes its effects to, the per-connection queues, and the
//! end-of-round flush.
//!
//! A queue is bounded by `--max-queue` in memory terms (bytes plus a per-line overhead); a
//! connection whose queue would pass it is doomed instead. A queue whose bytes have not moved
//! for `--stall-timeout` dooms its connection too, however small it is; records a TLS stream
//! holds count as queue bytes here (they are all that is left once rustls took the lines). WRITABLE interest is on
//! exactly while a queue holds bytes the socket would not take, or a TLS stream holds records it
//! would not take; a failed `reregister` dooms the connection, since it would never be woken
//! again.

use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use chat_common::protocol::LeaveReason;
use mio::Interest;

use super::{irc, token_of, Shell};
use crate::chat::{Audience, ConnId, ConsoleId, CoreTimer, Dialect, Outbox, Outgoing, Replay};
use crate::config::{CLOSE_LINGER, QUEUE_LINE_OVERHEAD, QUEUE_RELEASE_DELAY};
use crate::console::control::Written;
use crate::metrics::DropReason;
use crate::timers::{TimerKind, NO_CONN};

/// Memory is given back to the system once queue storage of at least this much has been freed
/// since the last time (a join storm leaves every member's queue with spare capacity that its
/// release timer frees a second after it drains) ...
const TRIM_AFTER_FREED: usize = 8 * 1024 * 1024;
/// ... and the queues hold less than this in all, a second later.
const TRIM_LOW: usize = 1024 * 1024;

impl Outbox for Shell {
    fn send(&mut self, to: ConnId, line: &Rc<Outgoing>) {
        self.send_all(std::iter::once(to), line);
    }

    /// The hot path: one message to many connections. What is the same for every recipient
    /// (the metrics, whether an IRC session must read the line) is decided once; each
    /// recipient then costs one slab lookup, the cost check and a refcount in its queue.
    fn send_all(&mut self, to: impl IntoIterator<Item = ConnId>, line: &Rc<Outgoing>) {
        // A message counts once as relayed, however many it goes to; it may also come as
        // consecutive calls (its address and time tell it from the one before, even at a
        // reused address).
        let key = (Rc::as_ptr(line) as usize, line.wall);
        if key != self.last_sent && line.wall.is_some() {
            self.last_sent = key;
            if [&b"MSG "[..], b"ACT ", b"PRIV "]
                .iter()
                .any(|tag| line.line().starts_with(tag))
            {
                self.metrics.relayed += 1;
            }
        }
        let moment = irc::is_a_moment(line.line());
        // Only a session in this round's join bursts holds lines (and reading whether one does
        // costs a cache line per IRC recipient, behind its box).
        let bursting = !self.irc_bursts.is_empty();
        let irc_reads = moment || bursting;
        let max_queue = self.config.max_queue;
        // Each dialect's bytes, looked up in the message once per fan-out, not per recipient
        // (by the queue's slot: every recipient costs the same whatever its dialect).
        let mut encoded: [Option<&Rc<[u8]>>; Dialect::COUNT] = [None; Dialect::COUNT];
        encoded[Dialect::Line.index()] = Some(line.shared(Dialect::Line));
        let mut delivered = 0;
        for id in to {
            let Some(conn) = self.conns.get_mut(id.key) else {
                continue;
            };
            if conn.doomed || conn.id.serial != id.serial {
                continue;
            }
            // An IRC session reads the room's own moments, and holds lines while it has not
            // joined yet: those go the dialect's way (rare; everything else is queued here).
            if irc_reads && conn.irc.as_ref().is_some_and(|s| moment || s.holding()) {
                self.irc_push(id, line);
                continue;
            }
            let slot = conn.out.slot();
            let bytes = match encoded.get(slot) {
                Some(Some(bytes)) => *bytes,
                _ => {
                    let bytes = line.shared(conn.out.dialect());
                    if let Some(cached) = encoded.get_mut(slot) {
                        *cached = Some(bytes);
                    }
                    bytes
                }
            };
            let cost = bytes.len() + QUEUE_LINE_OVERHEAD;
            if conn.out.cost() + cost > max_queue {
                self.overflow(id);
                continue;
            }
            conn.out.push_bytes(bytes);
            self.queued += cost;
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(id.key);
            }
            delivered += 1;
        }
        self.metrics.deliveries += delivered;
    }

    fn replay(&mut self, to: ConnId, replay: Replay) {
        let Some(conn) = self.conns.get_mut(to.key) else {
            return;
        };
        if conn.doomed || conn.id.serial != to.serial {
            return;
        }
        let before = conn.out.cost();
        conn.out.start_replay(replay);
        let added = conn.out.cost().saturating_sub(before);
        if conn.out.cost() > self.config.max_queue {
            log::debug!(
                "#{}: the replay does not fit its queue: dropping",
                to.serial
            );
            self.doom(to, LeaveReason::Dropped);
            return;
        }
        self.queued += added;
        self.mark_dirty(to.key);
    }

    fn close(&mut self, id: ConnId) {
        self.close_conn(id, Instant::now());
    }

    fn console(&mut self, to: Audience, line: fmt::Arguments<'_>) {
        match to {
            Audience::All => {
                self.console_out.line(&self.registry, line);
                let running = self.running;
                for (key, control) in self.controls.iter_mut() {
                    // A quiet console hears only what its own commands cause.
                    if control.quiet && running != Some(ConsoleId(key + 1)) {
                        continue;
                    }
                    if control.line(&self.registry, line) == Written::CutOff {
                        self.cut_controls.push(key);
                    }
                }
            }
            Audience::One(ConsoleId(0)) => self.console_out.line(&self.registry, line),
            Audience::One(ConsoleId(id)) => {
                let key = id - 1;
                if let Some(control) = self.controls.get_mut(key) {
                    if control.line(&self.registry, line) == Written::CutOff {
                        self.cut_controls.push(key);
                    }
                }
            }
        }
    }

    fn arm(&mut self, at: Instant, id: ConnId, timer: CoreTimer) {
        let (key, serial) = match timer {
            CoreTimer::Announce | CoreTimer::Sweep => (NO_CONN, 0),
            _ => (id.key, id.serial),
        };
        self.timers.arm(at, key, serial, TimerKind::Core(timer));
    }

    fn quit(&mut self) {
        self.quit_requested = true;
    }

    fn close_console(&mut self, id: ConsoleId) {
        if id == ConsoleId(0) {
            self.stdin_exit = true;
        } else {
            self.finish_control(id.0 - 1);
        }
    }

    fn cluster(&mut self, msg: crate::cluster::event::ToBridge) {
        if let Some(link) = self.cluster.as_mut() {
            link.send(msg);
        }
    }

    fn dialect(&mut self, id: ConnId, dialect: crate::chat::Dialect) {
        if let Some(conn) = self.conns.get_mut(id.key) {
            if conn.id.serial == id.serial {
                conn.out.set_dialect(dialect);
            }
        }
    }
}

impl Shell {
    /// Queues a message for one connection (`ahead`: before a running replay); a connection
    /// whose queue would pass `--max-queue` is doomed instead (a slow reader must not make the
    /// server hold unbounded memory).
    pub(super) fn queue(&mut self, id: ConnId, line: &Rc<Outgoing>, ahead: bool) {
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        if conn.doomed || conn.id.serial != id.serial {
            return;
        }
        let cost = conn.out.cost_of(line);
        if conn.out.cost() + cost > self.config.max_queue {
            return self.overflow(id);
        }
        self.metrics.deliveries += 1;
        if ahead {
            conn.out.push_ahead(line);
        } else {
            conn.out.push(line);
        }
        self.queued += cost;
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(id.key);
        }
    }

    /// A connection whose queue would pass `--max-queue`: doomed (a slow reader must not make
    /// the server hold unbounded memory).
    fn overflow(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get(id.key) {
            log::debug!(
                "#{} is {} bytes behind: dropping",
                id.serial,
                conn.out.bytes()
            );
        }
        self.metrics.dropped(DropReason::QueueFull);
        self.doom(id, LeaveReason::Dropped);
    }

    pub(super) fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Writes every dirty queue; keeps WRITABLE interest exactly while bytes remain.
    pub(super) fn flush(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.doomed {
                continue;
            }
            let id = conn.id;
            let before = conn.out.cost();
            let written_before = conn.out.written();
            let result = match conn.out.write_to(&mut conn.stream, &mut self.gather) {
                // Lines handed to a TLS stream may still be records it holds: blocked until sent.
                Ok(true) => conn.stream.flush_pending(),
                other => other,
            };
            // A replay's slices enter the queue as it is written: the cost may have grown.
            let after = conn.out.cost();
            self.queued = (self.queued + after.saturating_sub(before))
                .saturating_sub(before.saturating_sub(after));
            let written = conn.out.written() - written_before;
            self.metrics.bytes_out += written;
            let moved = written != 0;
            let mut interest = None;
            match result {
                Ok(true) => {
                    conn.waiting_since = None;
                    if conn.out.drained() && !conn.release_armed {
                        conn.release_armed = true;
                        let at = now + QUEUE_RELEASE_DELAY;
                        self.timers.arm(at, key, id.serial, TimerKind::Release);
                    }
                    if conn.wants_write {
                        conn.wants_write = false;
                        interest = Some(Interest::READABLE);
                    }
                    if conn.closing && !conn.write_shut {
                        conn.write_shut = true;
                        let _ = conn.stream.shutdown_write();
                        if conn.read_closed || self.shutting_down {
                            self.doom(id, LeaveReason::Quit);
                        }
                    }
                }
                Ok(false) => {
                    if moved || conn.waiting_since.is_none() {
                        conn.waiting_since = Some(now);
                    }
                    if !conn.stall_armed {
                        conn.stall_armed = true;
                        let at = now + self.config.stall_timeout;
                        self.timers.arm(at, key, id.serial, TimerKind::Stall);
                    }
                    if !conn.wants_write {
                        conn.wants_write = true;
                        interest = Some(Interest::READABLE | Interest::WRITABLE);
                    }
                }
                Err(e) => {
                    log::debug!("write error on #{}: {e}", id.serial);
                    self.doom(id, LeaveReason::Quit);
                }
            }
            if let Some(interest) = interest {
                self.reregister(id, interest);
            }
        }
    }

    fn reregister(&mut self, id: ConnId, interest: Interest) {
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        if let Err(e) = self
            .registry
            .reregister(&mut conn.stream, token_of(id.key), interest)
        {
            // Without the right interest it would never be woken again: cut it.
            log::warn!("cannot reregister #{}: {e}", id.serial);
            self.doom(id, LeaveReason::Dropped);
        }
    }

    /// The stall timer of `key` fired: cut it if its queue has not moved for the stall timeout,
    /// else look again when it could have.
    pub(super) fn check_stall(&mut self, key: usize, now: Instant) {
        let stall = self.config.stall_timeout;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.stall_armed = false;
        // Bytes a TLS stream still holds count as queued: its reader has taken none of them.
        let holding = !conn.out.is_empty() || conn.stream.wants_write();
        let Some(since) = conn.waiting_since.filter(|_| holding) else {
            return;
        };
        let id = conn.id;
        if now.saturating_duration_since(since) >= stall {
            log::debug!(
                "#{}'s output has not moved for {stall:?}: dropping",
                id.serial
            );
            self.metrics.dropped(DropReason::Stalled);
            self.doom(id, LeaveReason::Dropped);
        } else {
            conn.stall_armed = true;
            self.timers
                .arm(since + stall, key, id.serial, TimerKind::Stall);
        }
    }

    /// Gives freed memory back to the system if the queues are still small (after a join storm
    /// or a burst, glibc would otherwise keep the freed pages): the storage of every drained
    /// queue is released, then the allocator's free pages.
    pub(super) fn trim(&mut self) {
        self.trim_armed = false;
        if self.queued >= TRIM_LOW {
            return;
        }
        self.freed = 0;
        // Storage of drained queues first (their own release timers may not have fired yet),
        // so that what is given back includes it: one pass over the connections, once a storm.
        for (_, conn) in self.conns.iter_mut() {
            if conn.out.is_empty() {
                conn.out.clear();
            }
        }
        crate::memory::give_back();
    }

    /// Counts queue storage just freed; enough of it arms a [`TimerKind::Trim`] a second later.
    pub(super) fn freed(&mut self, bytes: usize, now: Instant) {
        self.freed += bytes;
        if self.freed >= TRIM_AFTER_FREED && !self.trim_armed {
            self.trim_armed = true;
            self.timers
                .arm(now + QUEUE_RELEASE_DELAY, NO_CONN, 0, TimerKind::Trim);
        }
    }

    /// Lets a connection leave politely: what is queued goes out, then its write half is shut
    /// and it is closed when the peer closes too or the linger timer fires.
    pub(super) fn close_conn(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        if conn.id.serial != id.serial || conn.doomed || conn.closing {
            return;
        }
        conn.closing = true;
        self.timers
            .arm(now + CLOSE_LINGER, id.key, id.serial, TimerKind::Linger);
        self.mark_dirty(id.key);
    }

    /// Whether nothing is waiting to be written anywhere (queues, TLS records).
    pub(super) fn all_flushed(&self) -> bool {
        self.conns
            .iter()
            .all(|(_, c)| c.out.is_empty() && !c.stream.wants_write())
    }
}
