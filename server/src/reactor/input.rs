//! Reading: each connection's socket drained (within a per-wake cap), paced by its allowance,
//! framed into lines, and each line handed to the core.
//!
//! Nothing is read from a paced connection: TCP slows the sender down and nothing is lost. A
//! peer that closes its sending side leaves the room at once, but what is queued for it still
//! goes out before the connection is closed (a half-close gets every reply).

use std::io::{self, Read};

use chat_common::framing::{Frame, LineFramer};
use chat_common::protocol::LeaveReason;

use super::Reactor;
use crate::chat::{ConnId, Now};
use crate::config::READS_PER_WAKE;
use crate::metrics::DropReason;
use crate::timers::TimerKind;

impl Reactor {
    /// Reads and handles a connection's input until the socket is drained, the read cap is
    /// reached (then it is queued for another turn) or its allowance runs out (then a refill
    /// timer is armed).
    ///
    /// `until_block`: keep reading until `WouldBlock` even after a short read. Without it a
    /// read that returns less than the buffer ends the turn, saving the `read` that would only
    /// say `WouldBlock`: with edge-triggered polling any byte that arrives later raises a new
    /// event. It is needed when the peer has closed (the end of file must be read now, no
    /// further event will come) and on turns not started by an event.
    pub(super) fn drive_input(&mut self, key: usize, until_block: bool, now: Now) {
        let Some(conn) = self.shell.conns.get_mut(key) else {
            return;
        };
        if conn.doomed || conn.read_closed {
            return;
        }
        conn.queued_for_input = false;
        let id = conn.id;
        // Move the buffers out so that lines can borrow them while the core changes the shell.
        // Neither move allocates.
        let mut framer = std::mem::replace(&mut conn.framer, LineFramer::new(1));
        let mut inbuf = std::mem::take(&mut conn.inbuf);
        let mut scratch = std::mem::take(&mut self.scratch);
        self.input_loop(id, &mut framer, &mut inbuf, &mut scratch, until_block, now);
        self.scratch = scratch;
        // Connections are only removed when reaped, so the key still names this connection.
        if let Some(conn) = self.shell.conns.get_mut(key) {
            framer.release_idle();
            conn.framer = framer;
            conn.inbuf = inbuf;
            if conn.stream.handshake_just_finished() {
                self.handshakes.end(conn.addr.ip());
            }
            // A TLS handshake reply (or alert) is sent by the end-of-round flush.
            if conn.stream.wants_write() {
                self.shell.mark_dirty(key);
            }
        }
    }

    fn input_loop(
        &mut self,
        id: ConnId,
        framer: &mut LineFramer,
        inbuf: &mut Vec<u8>,
        scratch: &mut [u8],
        until_block: bool,
        now: Now,
    ) {
        let paced = self.shell.config.rate > 0;
        let mut reads = 0;
        loop {
            // What the allowance earned since last time comes first: bytes held back by pacing
            // are handled with it before anything new is read.
            if paced {
                if let Some(conn) = self.shell.conns.get_mut(id.key) {
                    conn.allowance.refill(&self.shell.config, now.at);
                }
            }
            if !inbuf.is_empty() {
                let used = self.process_bytes(id, framer, inbuf, now);
                inbuf.drain(..used);
            }
            // Durable before delivered: while too many messages wait for the store, read
            // nothing more (TCP slows the sender); the store's answers give the turn back.
            if self.park_for_store(id) {
                return;
            }
            let Some(conn) = self.shell.conns.get_mut(id.key) else {
                return;
            };
            if conn.doomed {
                return;
            }
            let closing = conn.closing;
            if closing {
                // Nothing more is handled from a leaving connection.
                *inbuf = Vec::new();
            } else if !inbuf.is_empty() {
                // Stopped for want of allowance: wait for a refill, read nothing meanwhile.
                inbuf.shrink_to_fit();
                self.pace(id, now);
                return;
            } else if inbuf.capacity() > 0 {
                *inbuf = Vec::new();
            }
            if !closing && paced && !conn.allowance.has_one() {
                self.pace(id, now);
                return;
            }
            if reads >= READS_PER_WAKE {
                self.requeue(id);
                return;
            }
            let limit = if paced && !closing {
                conn.allowance.read_limit().min(scratch.len())
            } else {
                scratch.len()
            };
            match conn.stream.read(&mut scratch[..limit]) {
                Ok(0) => {
                    self.end_of_input(id, now);
                    return;
                }
                Ok(n) => {
                    reads += 1;
                    self.shell.metrics.bytes_in += n as u64;
                    let drained = n < limit && !until_block && !conn.stream.input_pending();
                    if !closing {
                        let data = &scratch[..n];
                        let used = self.process_bytes(id, framer, data, now);
                        if used < n {
                            inbuf.extend_from_slice(&data[used..]);
                        }
                    }
                    if drained && inbuf.is_empty() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    // The peer broke its protocol (a WebSocket violation, a bad TLS record):
                    // cut off, as the contract's `dropped` says.
                    log::debug!("protocol error on #{}: {e}", id.serial);
                    self.shell.metrics.dropped(DropReason::Protocol);
                    self.shell.doom(id, LeaveReason::Dropped);
                    return;
                }
                Err(e) => {
                    log::debug!("read error on #{}: {e}", id.serial);
                    self.shell.doom(id, LeaveReason::Quit);
                    return;
                }
            }
        }
    }

    /// Frames and hands lines from `data` to the core while the connection may go on; returns
    /// how many bytes were used. Stops early when the allowance runs out or the connection is
    /// leaving.
    fn process_bytes(
        &mut self,
        id: ConnId,
        framer: &mut LineFramer,
        data: &[u8],
        now: Now,
    ) -> usize {
        let paced = self.shell.config.rate > 0;
        let mut pos = 0;
        while pos < data.len() {
            let Some(conn) = self.shell.conns.get_mut(id.key) else {
                return pos;
            };
            if conn.doomed || conn.closing {
                return pos;
            }
            if paced && !conn.allowance.try_take_line() {
                return pos;
            }
            let (used, frame) = framer.feed(&data[pos..]);
            pos += used;
            let Some(frame) = frame else {
                // No line came out: give the line back.
                if paced {
                    conn.allowance.give_back_line();
                }
                continue;
            };
            // A line to relay spends its bytes; the bytes of a discarded over-long line cost
            // nobody's queue anything, so only its ERROR reply (one line) counts.
            if let (true, Frame::Line(line)) = (paced, &frame) {
                conn.allowance.spend_bytes(line.len() + 1);
            }
            if conn.irc.is_some() {
                self.irc_input(id, frame, now);
            } else {
                self.core.input(id, frame, now, &mut self.shell);
            }
        }
        pos
    }

    /// The peer closed its sending side: it leaves the room now; what is queued for it is still
    /// flushed, then the connection is closed.
    fn end_of_input(&mut self, id: ConnId, now: Now) {
        self.core.gone(id, LeaveReason::Quit, now, &mut self.shell);
        let Some(conn) = self.shell.conns.get_mut(id.key) else {
            return;
        };
        conn.read_closed = true;
        if (conn.out.is_empty() && !conn.stream.wants_write()) || conn.write_shut {
            self.shell.doom(id, LeaveReason::Quit);
        } else {
            self.shell.close_conn(id, now.at);
        }
    }

    fn pace(&mut self, id: ConnId, now: Now) {
        let Some(conn) = self.shell.conns.get_mut(id.key) else {
            return;
        };
        if conn.refill_armed {
            return;
        }
        conn.refill_armed = true;
        let at = now.at + conn.allowance.wait_for_one(&self.shell.config);
        self.shell
            .timers
            .arm(at, id.key, id.serial, TimerKind::Refill);
    }

    pub(super) fn requeue(&mut self, id: ConnId) {
        if let Some(conn) = self.shell.conns.get_mut(id.key) {
            if !conn.queued_for_input {
                conn.queued_for_input = true;
                self.ready.push_back(id);
            }
        }
    }

    pub(super) fn drive_ready(&mut self, now: Now) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            if self
                .shell
                .conns
                .get(id.key)
                .is_some_and(|c| c.id.serial == id.serial)
            {
                self.drive_input(id.key, true, now);
            }
        }
    }
}
