//! One connection: its socket, its state in the login/admission/membership life, its buffers
//! and its rate allowance.
//!
//! A connection never reaches into the room or another connection: the reactor does that. This
//! module owns the byte-level work (the output queue and its vectored writes) and the
//! bookkeeping that must stay bounded.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use chat_common::framing::LineFramer;
use mio::net::TcpStream;

/// Where a connection is in its life. Changed only by the reactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Connected; no valid name offered yet. The login timer runs.
    AwaitingName,
    /// Offered a valid name, reserved in the room; the operator decides. The approval timer runs.
    Waiting {
        /// The reserved name.
        name: Rc<str>,
        /// When the join started waiting.
        since: Instant,
    },
    /// In the room.
    Member {
        /// The member's name.
        name: Rc<str>,
    },
    /// Leaving: no more requests are read, queued output is flushed, then the socket is shut
    /// down and closed (or cut when the linger timer fires).
    Closing,
}

/// Output waiting for one connection: shared, immutable lines.
///
/// Invariant: `bytes` is the number of unsent bytes, `chunks[0][head..]` plus every later
/// chunk; it never exceeds the server's `--max-queue` (the reactor drops the connection
/// instead). Storage left after a burst is released by the reactor once the queue has stayed
/// empty for a while (not at once: freeing and regrowing it every round cost page faults).
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Rc<[u8]>>,
    head: usize,
    bytes: usize,
}

/// Most bytes gathered for one `write` (a longer single line goes whole). Gathering replaced a
/// `writev` of the shared lines themselves (up to 1024 per call): with lines of a few dozen
/// bytes the kernel's per-segment copy (`_copy_from_iter`) was half the server's CPU on
/// fan-out, while copying them here first costs a few ns each; server CPU per delivery on
/// fanout-100 went from 55 to 25-30 ns (docs/PERFORMANCE.md).
pub const GATHER_BYTES: usize = 64 * 1024;
/// Storage of at most this many slots (16 bytes each) is freed as soon as the queue drains:
/// cheap to grow again, and an idle member then holds none. Larger storage is kept until the
/// reactor's release timer, because freeing and regrowing it every round cost page faults.
const FREE_AT_ONCE_SLOTS: usize = 64;

impl OutQueue {
    /// Unsent bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Appends a line shared with other queues (no copy).
    pub fn push(&mut self, line: Rc<[u8]>) {
        self.bytes += line.len();
        self.chunks.push_back(line);
    }

    /// To be called when the queue has just drained: frees small storage at once and says
    /// whether large storage is left for the release timer.
    pub fn drained(&mut self) -> bool {
        debug_assert!(self.is_empty());
        if self.chunks.capacity() <= FREE_AT_ONCE_SLOTS {
            self.clear();
            false
        } else {
            true
        }
    }

    /// Drops everything queued and frees the storage.
    pub fn clear(&mut self) {
        *self = OutQueue::default();
    }

    /// Writes as much as the socket takes, many lines per system call: one line as it is,
    /// several gathered into `gather` (at most [`GATHER_BYTES`] per call, plus one line).
    /// Returns `Ok(true)` when the queue is empty afterwards, `Ok(false)` when the socket is full.
    pub fn write_to<W: Write>(&mut self, sink: &mut W, gather: &mut Vec<u8>) -> io::Result<bool> {
        while let Some(front) = self.chunks.front() {
            let result = if self.chunks.len() == 1 {
                sink.write(&front[self.head..])
            } else {
                self.gather(gather);
                sink.write(gather)
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.advance(written),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Copies the unsent bytes of the first lines into `buf`, up to [`GATHER_BYTES`] (and at
    /// least the first line).
    fn gather(&self, buf: &mut Vec<u8>) {
        buf.clear();
        for (i, chunk) in self.chunks.iter().enumerate() {
            let bytes = if i == 0 {
                &chunk[self.head..]
            } else {
                &chunk[..]
            };
            if !buf.is_empty() && buf.len() + bytes.len() > GATHER_BYTES {
                break;
            }
            buf.extend_from_slice(bytes);
        }
    }

    fn advance(&mut self, mut written: usize) {
        self.bytes -= written;
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.head;
            if written >= left {
                written -= left;
                self.head = 0;
                self.chunks.pop_front();
            } else {
                self.head += written;
                written = 0;
            }
        }
    }
}

/// A token bucket: `rate` lines per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct Allowance {
    tokens: f64,
    last: Instant,
}

impl Allowance {
    /// A full bucket.
    pub fn new(burst: u32, now: Instant) -> Self {
        Allowance {
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Adds what `rate` earned since the last refill, up to `burst`.
    pub fn refill(&mut self, rate: u32, burst: u32, now: Instant) {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * f64::from(rate);
        self.tokens = (self.tokens + earned).min(f64::from(burst.max(1)));
        self.last = now;
    }

    /// Takes one line's worth if there is one.
    pub fn try_take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Returns a line's worth taken by [`Allowance::try_take`] but not used.
    pub fn give_back(&mut self) {
        self.tokens += 1.0;
    }

    /// Whether at least one line's worth is available.
    pub fn has_one(&self) -> bool {
        self.tokens >= 1.0
    }

    /// Time until one line's worth has been earned at `rate` (> 0).
    pub fn wait_for_one(&self, rate: u32) -> std::time::Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        std::time::Duration::from_secs_f64(missing / f64::from(rate.max(1)))
    }
}

/// One connection's whole state.
#[derive(Debug)]
pub struct Conn {
    /// The socket (non-blocking).
    pub stream: TcpStream,
    /// The peer's address, as shown to the operator.
    pub addr: SocketAddr,
    /// Unique for the server's life: tells this connection from a later one in the same slab slot.
    pub serial: u64,
    /// Where it is in its life.
    pub state: State,
    /// Splits input into lines; holds at most one incomplete line (bounded by `--max-line`).
    pub framer: LineFramer,
    /// Bytes read but not yet framed because the sender ran out of allowance. Invariant: at
    /// most one read chunk ([`crate::config::READ_CHUNK`]); empty (and unallocated) unless paced.
    pub inbuf: Vec<u8>,
    /// Output waiting to be written.
    pub out: OutQueue,
    /// Rate allowance for `--rate`/`--burst`.
    pub allowance: Allowance,
    /// Whether WRITABLE interest is registered: exactly while `out` is not empty after a write
    /// that hit `WouldBlock`.
    pub wants_write: bool,
    /// Whether the key is in the reactor's list of connections to flush this round.
    pub dirty: bool,
    /// Whether the key is in the reactor's queue of connections with input left to process.
    pub queued_for_input: bool,
    /// Whether a refill timer is armed for it.
    pub refill_armed: bool,
    /// Whether the write half was shut down (after the last polite line went out).
    pub write_shut: bool,
    /// Whether a timer is armed to release the output queue's spare storage.
    pub release_armed: bool,
    /// Whether the connection is to be cut at the end of this round: it gets no more output and
    /// its input is ignored.
    pub doomed: bool,
}

impl Conn {
    /// A fresh connection awaiting its name.
    pub fn new(stream: TcpStream, addr: SocketAddr, serial: u64, config: &crate::Config) -> Self {
        let now = Instant::now();
        Conn {
            stream,
            addr,
            serial,
            state: State::AwaitingName,
            framer: LineFramer::new(config.max_line),
            inbuf: Vec::new(),
            out: OutQueue::default(),
            allowance: Allowance::new(config.burst, now),
            wants_write: false,
            dirty: false,
            queued_for_input: false,
            refill_armed: false,
            write_shut: false,
            release_armed: false,
            doomed: false,
        }
    }

    /// The member's or waiting join's name, if it has one.
    pub fn name(&self) -> Option<&Rc<str>> {
        match &self.state {
            State::Waiting { name, .. } | State::Member { name } => Some(name),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A sink that takes at most `per_call` bytes per call and `room` bytes in all, then says
    /// WouldBlock; it counts its calls.
    struct Sink {
        got: Vec<u8>,
        per_call: usize,
        room: usize,
        calls: usize,
    }

    impl Sink {
        fn new(per_call: usize, room: usize) -> Self {
            Sink {
                got: Vec::new(),
                per_call,
                room,
                calls: 0,
            }
        }
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.per_call).min(self.room);
            self.got.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(s: &str) -> Rc<[u8]> {
        Rc::from(s.as_bytes())
    }

    #[test]
    fn coalesces_many_lines_into_one_write() {
        let mut q = OutQueue::default();
        for i in 0..10 {
            q.push(line(&format!("MSG a - {i}\n")));
        }
        let mut sink = Sink::new(usize::MAX, usize::MAX);
        assert!(q.write_to(&mut sink, &mut Vec::new()).unwrap());
        assert_eq!(sink.calls, 1);
        assert!(q.is_empty());
        assert_eq!(String::from_utf8(sink.got).unwrap().lines().count(), 10);
    }

    #[test]
    fn each_queue_size_goes_out_whole_in_as_few_writes_as_possible() {
        // (lines, bytes of text per line, writes): one line goes as it is; more are gathered,
        // at most GATHER_BYTES per write unless a single line is longer.
        let big = GATHER_BYTES + 10;
        for (lines, len, writes) in [
            (1, 10, 1),
            (2, 10, 1),
            (2500, 10, 1),
            (100, 1000, 2),
            (1, big, 1),
            (3, big, 3),
        ] {
            let mut q = OutQueue::default();
            let mut want = Vec::new();
            for i in 0..lines {
                let digits = i.to_string();
                let l = format!("{}{digits}\n", "0".repeat(len - digits.len()));
                want.extend_from_slice(l.as_bytes());
                q.push(line(&l));
            }
            let mut sink = Sink::new(usize::MAX, usize::MAX);
            assert!(q.write_to(&mut sink, &mut Vec::new()).unwrap());
            assert_eq!(sink.got, want, "{lines} lines of {len}");
            assert_eq!(sink.calls, writes, "{lines} lines of {len}");
            assert!(q.is_empty());
        }
    }

    #[test]
    fn partial_writes_resume_mid_line_in_order() {
        let mut q = OutQueue::default();
        q.push(line("hello\n"));
        q.push(line("world\n"));
        let mut sink = Sink::new(4, 7);
        assert!(!q.write_to(&mut sink, &mut Vec::new()).unwrap());
        assert_eq!(q.bytes(), 5);
        sink.room = 100;
        assert!(q.write_to(&mut sink, &mut Vec::new()).unwrap());
        assert_eq!(sink.got, b"hello\nworld\n");
    }

    #[test]
    fn allowance_paces_and_refills() {
        let t0 = Instant::now();
        let mut a = Allowance::new(2, t0);
        assert!(a.try_take() && a.try_take());
        assert!(!a.try_take());
        assert_eq!(a.wait_for_one(10), Duration::from_millis(100));
        a.refill(10, 2, t0 + Duration::from_millis(100));
        assert!(a.try_take());
        a.refill(10, 2, t0 + Duration::from_secs(100));
        assert!(
            a.try_take() && a.try_take() && !a.try_take(),
            "capped at burst"
        );
    }
}
