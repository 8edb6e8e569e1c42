//! One WebSocket member's stream: frames over a plain or TLS stream, seen by the reactor as the
//! line stream of any other member ([`super::stream::Stream::Ws`]).
//!
//! Reads decode client frames in place in the reactor's own buffer (no buffer of its own), so a
//! text message comes out as its line and an LF, and pacing, `--max-line` and the framer work as
//! for everyone. Writes turn each queued line into one text frame: complete lines are taken
//! only while nothing of an earlier write is left, so what this stream holds beyond the output
//! queue is at most one write's frames (bounded by the queue's gather size) plus one pong; a
//! full socket is `WouldBlock` to the queue, whose stall and size limits apply as ever. A
//! protocol violation or a close frame is answered with a close frame at once (best effort: the
//! socket nearly always has room for four bytes) and ends the input. This module never blocks,
//! never panics on what a peer sends, and knows nothing of members.

use std::cell::RefCell;
use std::io::{self, Read, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use super::stream::Stream;
use crate::web::ws::{self, Decoder, Event};

thread_local! {
    /// Where a write's frames are encoded before the socket takes them (reused: the fan-out's
    /// hot path does not allocate per member). Only what the socket refuses is copied out.
    static ENCODE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encode buffer capacity kept between writes; a larger one (after a huge line) is freed.
const ENCODE_KEEP: usize = 128 * 1024;

/// A WebSocket connection after its handshake.
#[derive(Debug)]
pub struct WsStream {
    inner: Stream,
    decoder: Decoder,
    /// Bytes read with the request head, not yet decoded (empty after the first reads).
    early: Vec<u8>,
    /// Encoded frames the socket has not taken yet (empty, and unallocated, when idle).
    out: Vec<u8>,
    /// Bytes of `out` already sent.
    sent: usize,
    /// A close frame was queued: nothing more is sent after it.
    close_sent: bool,
    /// The input ended (close frame, violation or end of file): reads return `Ok(0)`.
    input_done: bool,
    /// The end of input was seen after a read returned data; the next read reports it.
    eof_pending: bool,
    /// The last read of the socket filled the buffer, so more may be waiting although fewer
    /// bytes came out (headers are not output): the reactor must read on without an event.
    maybe_more: bool,
}

impl WsStream {
    /// Wraps a stream whose handshake is done; `early` holds bytes the client sent right after
    /// its request head (read together with it), decoded before anything new is read; `limit`
    /// is `--max-line`.
    pub fn new(inner: Stream, limit: usize, early: &[u8]) -> Self {
        WsStream {
            inner,
            decoder: Decoder::new(limit),
            early: early.to_vec(),
            out: Vec::new(),
            sent: 0,
            close_sent: false,
            input_done: false,
            eof_pending: false,
            maybe_more: false,
        }
    }

    /// Whether frames are waiting for the socket.
    pub fn wants_write(&self) -> bool {
        self.sent < self.out.len() || self.decoder.pong_pending() || self.inner.wants_write()
    }

    /// Whether a read would return something no readiness event will announce.
    pub fn input_pending(&self) -> bool {
        self.decoder.newline_pending()
            || !self.early.is_empty()
            || self.eof_pending
            || self.maybe_more
            || self.inner.input_pending()
    }

    /// Pushes waiting frames (and a pong that is owed) to the socket: `Ok(true)` when nothing
    /// is left.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        if self.sent == self.out.len() {
            if let Some(payload) = self.decoder.take_pong().filter(|_| !self.close_sent) {
                self.reset_out();
                ws::encode_pong(&payload, &mut self.out);
            }
        }
        while self.sent < self.out.len() {
            match self.inner.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.reset_out();
        self.inner.flush_pending()
    }

    /// Sends a normal close (1000) as far as the socket takes it now, then shuts the write half.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.close(Some(1000));
        self.inner.shutdown_write()
    }

    /// Closes with `code` (best effort) and shuts the write half: for a connection refused
    /// before it becomes a member.
    pub fn close_with(&mut self, code: u16) {
        self.close(Some(code));
        let _ = self.inner.shutdown_write();
    }

    /// Queues a close frame (once) and tries to send it at once.
    fn close(&mut self, code: Option<u16>) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        if self.sent == self.out.len() {
            self.reset_out();
        }
        ws::encode_close(code, &mut self.out);
        let _ = self.flush_pending();
    }

    /// Frees `out` once everything in it is sent.
    fn reset_out(&mut self) {
        self.out = Vec::new();
        self.sent = 0;
    }

    /// The mio source underneath (the TCP socket).
    fn source(&mut self) -> &mut Stream {
        &mut self.inner
    }
}

impl Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.input_done {
            self.eof_pending = false;
            return Ok(0);
        }
        if self.decoder.newline_pending() {
            let (n, _) = self.decoder.decode(buf, 0);
            return Ok(n);
        }
        loop {
            let n = if self.early.is_empty() {
                let n = self.inner.read(buf)?;
                self.maybe_more = n == buf.len();
                n
            } else {
                let n = self.early.len().min(buf.len());
                buf[..n].copy_from_slice(&self.early[..n]);
                self.early.drain(..n);
                if self.early.is_empty() {
                    self.early = Vec::new();
                }
                n
            };
            if n == 0 {
                self.input_done = true;
                return Ok(0);
            }
            let (written, event) = self.decoder.decode(buf, n);
            match event {
                Event::Data => {}
                Event::Close(code) => {
                    self.close(code);
                    self.input_done = true;
                    self.eof_pending = written > 0;
                    return Ok(written);
                }
                Event::Fail(violation) => {
                    log::debug!("websocket peer failed: {violation}");
                    self.close(Some(violation.close_code()));
                    self.input_done = true;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, violation));
                }
            }
            if written > 0 {
                return Ok(written);
            }
            // Only headers or control frames (a pong owed goes out with the next flush, which
            // the reactor arranges when `wants_write` says so): read on, since returning zero
            // would mean the end of the input.
        }
    }
}

impl Write for WsStream {
    fn write(&mut self, lines: &[u8]) -> io::Result<usize> {
        if !self.flush_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.close_sent {
            // Nothing may follow a close frame: lines still queued are dropped.
            return Ok(lines.len());
        }
        ENCODE.with(|cell| {
            let mut frames = cell.borrow_mut();
            frames.clear();
            let used = ws::encode_lines(lines, &mut frames);
            let mut sent = 0;
            let result = loop {
                if sent == frames.len() {
                    break Ok(());
                }
                match self.inner.write(&frames[sent..]) {
                    Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            if sent < frames.len() {
                self.out.extend_from_slice(&frames[sent..]);
            }
            if frames.capacity() > ENCODE_KEEP {
                *frames = Vec::new();
            }
            result.map(|()| used)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.flush_pending()? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Source for WsStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.source().register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.source().reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.source().deregister(registry)
    }
}
