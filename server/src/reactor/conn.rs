//! One connection as the shell sees it: its stream, its buffers, its rate allowance and the
//! flags that say where its bytes are.
//!
//! A connection never reaches into the room or another connection, and knows nothing of names
//! or members: that is the core's (`crate::chat`). This module owns the byte-level work (the
//! output queue and its gathered writes) and the bookkeeping that must stay bounded.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chat_common::framing::LineFramer;

use super::stream::Stream;
use crate::bucket::Bucket;
use crate::chat::{ConnId, Dialect, Outgoing, Replay};
use crate::config::{Config, PACED_READ_CHUNK, QUEUE_LINE_OVERHEAD, READ_CHUNK, REPLAY_SLICE};
use crate::metrics::Transport;

/// Output waiting for one connection: shared, immutable messages, sent as their encoding in
/// the connection's [`Dialect`] (encoded once per dialect and shared, see [`Outgoing`]).
///
/// Invariant: `bytes` is the number of unsent bytes, `chunks[0][head..]` plus every later
/// chunk; its [`OutQueue::cost`] (bytes plus [`QUEUE_LINE_OVERHEAD`] per line) never exceeds
/// the server's `--max-queue` (the reactor drops the connection instead). Storage left after a burst is released by the reactor once the queue has stayed
/// empty for a while (not at once: freeing and regrowing it every round cost page faults).
#[derive(Debug, Default)]
pub struct OutQueue {
    /// What is written next (with a replay: the slice of it taken last).
    chunks: VecDeque<Rc<[u8]>>,
    head: usize,
    /// Unsent bytes in `chunks` and the replay's `behind`.
    bytes: usize,
    /// The wire syntax every queued message is written in.
    dialect: Dialect,
    /// `dialect`'s [`Dialect::index`], kept beside it: a fan-out reads it per recipient, and
    /// asking the dialect (a match on a fat pointer) cost IRC deliveries 10 instructions each.
    slot: u8,
    /// A paced replay and what waits behind it, boxed: it is rare, and inline it made every
    /// queue 170 bytes, so that a fan-out to 100 members touched more cache lines than L1
    /// holds on every delivery (server CPU per delivery 1.8x 1b43220's, docs/PERFORMANCE.md).
    replay: Option<Box<Replaying>>,
    /// Bytes written since the queue was made (for the stall clock: did anything move?).
    written: u64,
}

/// A replay running in an [`OutQueue`].
#[derive(Debug)]
struct Replaying {
    /// Once `chunks` is written, its next [`REPLAY_SLICE`] bytes are taken.
    replay: Replay,
    /// Lines queued while the replay runs, sent after it.
    behind: VecDeque<Rc<[u8]>>,
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

    /// What the queue holds in memory terms, as `--max-queue` counts it: the unsent bytes plus
    /// [`QUEUE_LINE_OVERHEAD`] per queued line.
    pub fn cost(&self) -> usize {
        self.bytes
            + self.chunks.len() * QUEUE_LINE_OVERHEAD
            + self.replay.as_ref().map_or(0, |r| {
                r.behind.len() * QUEUE_LINE_OVERHEAD + r.replay.cost()
            })
    }

    /// Bytes of slot storage the queue holds (what [`OutQueue::clear`] frees, the lines apart).
    pub fn storage(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Rc<[u8]>>()
    }

    /// What queuing `line` would add to [`OutQueue::cost`] (its bytes in this queue's dialect,
    /// which this encodes if no queue of that dialect did yet).
    pub fn cost_of(&self, line: &Outgoing) -> usize {
        line.encoded(self.dialect).len() + QUEUE_LINE_OVERHEAD
    }

    /// The dialect this queue writes.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// [`OutQueue::dialect`]'s [`Dialect::index`], without asking the dialect.
    #[inline]
    pub fn slot(&self) -> usize {
        usize::from(self.slot)
    }

    /// Switches the dialect (before anything is queued: a `HELLO` is a connection's first line).
    pub fn set_dialect(&mut self, dialect: Dialect) {
        self.dialect = dialect;
        self.slot = u8::try_from(dialect.index()).unwrap_or(0);
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0 && self.replay.is_none()
    }

    /// Whether a replay is still being written.
    pub fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// Appends a message shared with other queues (no copy); behind the replay if one runs.
    pub fn push(&mut self, line: &Outgoing) {
        self.push_bytes(line.shared(self.dialect));
    }

    /// [`OutQueue::push`] of a message's bytes in this queue's dialect (the caller took them
    /// from the message: `line.shared(queue.dialect())`).
    #[inline]
    pub fn push_bytes(&mut self, line: &Rc<[u8]>) {
        let line = Rc::clone(line);
        self.bytes += line.len();
        if let Some(r) = &mut self.replay {
            r.behind.push_back(line);
        } else {
            self.chunks.push_back(line);
        }
    }

    /// Appends a message ahead of a running replay (right after what was queued before it):
    /// a dialect's own lines that must precede the replay (IRC's names after its `JOIN`).
    /// Without a replay this is [`OutQueue::push`].
    pub fn push_ahead(&mut self, line: &Outgoing) {
        let line = Rc::clone(line.shared(self.dialect));
        self.bytes += line.len();
        self.chunks.push_back(line);
    }

    /// Starts a paced replay after everything queued so far. A replay already running is
    /// extended when nothing was queued behind it; otherwise the new one is queued whole
    /// behind (it cannot jump ahead of those lines).
    pub fn start_replay(&mut self, replay: Replay) {
        if replay.is_empty() {
            return;
        }
        match &mut self.replay {
            None => {
                self.replay = Some(Box::new(Replaying {
                    replay,
                    behind: VecDeque::new(),
                }))
            }
            Some(running) if running.behind.is_empty() => running.replay.extend(replay),
            Some(_) => {
                let mut replay = replay;
                while let Some(m) = replay.next_message() {
                    self.push(&m);
                }
            }
        }
    }

    /// Takes the replay's next slice into `chunks` (at least one message, then up to
    /// [`REPLAY_SLICE`] bytes); when the replay is done, what waited behind it moves up.
    /// Returns whether there is anything to write.
    fn refill(&mut self) -> bool {
        if let Some(running) = &mut self.replay {
            let mut taken = 0;
            while taken < REPLAY_SLICE {
                let Some(m) = running.replay.next_message() else {
                    break;
                };
                let bytes = Rc::clone(m.shared(self.dialect));
                taken += bytes.len();
                self.bytes += bytes.len();
                self.chunks.push_back(bytes);
            }
            if running.replay.is_empty() {
                if let Some(mut done) = self.replay.take() {
                    if self.chunks.is_empty() {
                        std::mem::swap(&mut self.chunks, &mut done.behind);
                    } else {
                        self.chunks.append(&mut done.behind);
                    }
                }
            }
        }
        !self.chunks.is_empty()
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

    /// Drops everything queued (a replay too) and frees the storage (the dialect stays).
    pub fn clear(&mut self) {
        *self = OutQueue {
            dialect: self.dialect,
            slot: self.slot,
            written: self.written,
            ..OutQueue::default()
        };
    }

    /// Writes as much as the socket takes, many lines per system call: one line as it is,
    /// several gathered into `gather` (at most [`GATHER_BYTES`] per call, plus one line).
    /// Returns `Ok(true)` when the queue is empty afterwards, `Ok(false)` when the socket is full.
    pub fn write_to<W: Write>(&mut self, sink: &mut W, gather: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            if self.chunks.is_empty() && !self.refill() {
                break;
            }
            let Some(front) = self.chunks.front() else {
                break;
            };
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

    /// Bytes written since the queue was made: a change means output moved.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn advance(&mut self, mut written: usize) {
        self.bytes -= written;
        self.written += written as u64;
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

/// A connection's sending allowance: lines (`--rate`/`--burst`) and bytes
/// (`--rate-bytes`/`--burst-bytes`), both token buckets. A line needs one line token and at least
/// one byte token; its bytes are then spent whole (the byte bucket may go into debt), so input is
/// never split by pacing.
#[derive(Debug, Clone)]
pub struct Allowance {
    lines: Bucket,
    bytes: Bucket,
}

impl Allowance {
    /// Full buckets.
    pub fn new(config: &Config, now: Instant) -> Self {
        Allowance {
            lines: Bucket::full(f64::from(config.burst), now),
            bytes: Bucket::full(config.burst_bytes as f64, now),
        }
    }

    /// Adds what the rates earned since the last refill, up to the bursts.
    pub fn refill(&mut self, config: &Config, now: Instant) {
        let burst = f64::from(config.burst.max(1));
        self.lines.refill(f64::from(config.rate), burst, now);
        let burst_bytes = config.burst_bytes.max(1) as f64;
        self.bytes
            .refill(config.rate_bytes as f64, burst_bytes, now);
    }

    /// Takes one line's worth if there is one (and the byte bucket is not in debt).
    pub fn try_take_line(&mut self) -> bool {
        self.bytes.has(1.0) && self.lines.take(1.0)
    }

    /// Returns a line's worth taken by [`Allowance::try_take_line`] but not used.
    pub fn give_back_line(&mut self) {
        self.lines.give_back(1.0);
    }

    /// Spends `n` bytes (possibly into debt).
    pub fn spend_bytes(&mut self, n: usize) {
        self.bytes.spend(n as f64);
    }

    /// Whether another line may be handled now.
    pub fn has_one(&self) -> bool {
        self.lines.has(1.0) && self.bytes.has(1.0)
    }

    /// Time until another line may be handled.
    pub fn wait_for_one(&self, config: &Config) -> Duration {
        let lines = self.lines.wait_for(1.0, f64::from(config.rate.max(1)));
        let bytes = self.bytes.wait_for(1.0, config.rate_bytes.max(1) as f64);
        lines.max(bytes)
    }

    /// How many bytes to read in one call: less as the allowance runs low, so what pacing holds
    /// back unframed stays small (between [`PACED_READ_CHUNK`] and [`READ_CHUNK`]).
    pub fn read_limit(&self) -> usize {
        let by_lines = self.lines.tokens().max(0.0) as usize * 256;
        let by_bytes = self.bytes.tokens().max(0.0) as usize;
        by_lines.min(by_bytes).clamp(PACED_READ_CHUNK, READ_CHUNK)
    }
}

/// One connection's whole state, as the shell keeps it.
///
/// `repr(C)` keeps the fields in the order written: what a fan-out touches per recipient
/// (`id`, `doomed`, `dirty`, `irc`, `out`) comes first, together. In Rust's own order it was
/// spread over the struct: cachegrind counted 2.17 L1 read misses per delivery in the fan-out
/// at fanout-100, 0.48 with this order (docs/PERFORMANCE.md).
#[derive(Debug)]
#[repr(C)]
pub struct Conn {
    /// Who it is, for the core and for timers.
    pub id: ConnId,
    /// Whether the connection is to be cut at the end of this round: it gets no more output and
    /// its input is ignored.
    pub doomed: bool,
    /// Whether the key is in the shell's list of connections to flush this round.
    pub dirty: bool,
    /// The IRC dialect's state, for a connection from an IRC listener (`None`: the line
    /// protocol).
    pub irc: Option<Box<super::irc::IrcSession>>,
    /// Output waiting to be written.
    pub out: OutQueue,
    /// The byte stream (non-blocking).
    pub stream: Stream,
    /// The peer's address.
    pub addr: SocketAddr,
    /// How it reached the server (for the metrics; set by whoever accepted it).
    pub transport: Transport,
    /// Splits input into lines; holds at most one incomplete line (bounded by `--max-line`).
    pub framer: LineFramer,
    /// Bytes read but not yet framed because the sender ran out of allowance. Invariant: at
    /// most one read ([`Allowance::read_limit`]); empty (and unallocated) unless paced.
    pub inbuf: Vec<u8>,
    /// Rate allowance for `--rate`/`--burst` and `--rate-bytes`/`--burst-bytes`.
    pub allowance: Allowance,
    /// Leaving: no more requests are handled, queued output is flushed, then the write half is
    /// shut and the connection closed when the peer closes too (or the linger timer fires).
    pub closing: bool,
    /// The peer closed its sending side: once the queue is flushed the connection is closed.
    pub read_closed: bool,
    /// Since when queued output has waited without moving (`None` while the queue is empty or
    /// moving); the stall timer cuts the connection when this is `--stall-timeout` old.
    pub waiting_since: Option<Instant>,
    /// Whether WRITABLE interest is registered: exactly while `out` is not empty after a write
    /// that hit `WouldBlock`.
    pub wants_write: bool,
    /// Whether the key is in the reactor's queue of connections with input left to process.
    pub queued_for_input: bool,
    /// Whether a refill timer is armed for it.
    pub refill_armed: bool,
    /// Whether a stall timer is armed for it.
    pub stall_armed: bool,
    /// Whether the write half was shut down (after the last polite line went out).
    pub write_shut: bool,
    /// Whether a timer is armed to release the output queue's spare storage.
    pub release_armed: bool,
}

impl Conn {
    /// A fresh connection.
    pub fn new(stream: Stream, addr: SocketAddr, id: ConnId, config: &Config) -> Self {
        let transport = match &stream {
            Stream::Tls(_) => Transport::Tls,
            _ => Transport::Tcp,
        };
        Conn {
            transport,
            stream,
            id,
            addr,
            framer: LineFramer::new(config.max_line),
            inbuf: Vec::new(),
            out: OutQueue::default(),
            allowance: Allowance::new(config, Instant::now()),
            closing: false,
            read_closed: false,
            waiting_since: None,
            wants_write: false,
            dirty: false,
            queued_for_input: false,
            refill_armed: false,
            stall_armed: false,
            write_shut: false,
            release_armed: false,
            doomed: false,
            irc: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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

    fn line(s: &str) -> Rc<Outgoing> {
        Outgoing::from_line(s.as_bytes(), None)
    }

    #[test]
    fn coalesces_many_lines_into_one_write() {
        let mut q = OutQueue::default();
        for i in 0..10 {
            q.push(&line(&format!("MSG a - {i}\n")));
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
                q.push(&line(&l));
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
        q.push(&line("hello\n"));
        q.push(&line("world\n"));
        let mut sink = Sink::new(4, 7);
        assert!(!q.write_to(&mut sink, &mut Vec::new()).unwrap());
        assert_eq!(q.bytes(), 5);
        sink.room = 100;
        assert!(q.write_to(&mut sink, &mut Vec::new()).unwrap());
        assert_eq!(sink.got, b"hello\nworld\n");
    }

    #[test]
    fn a_replay_goes_out_a_slice_at_a_time_before_the_lines_queued_after_it() {
        let mut q = OutQueue::default();
        q.push(&line("WELCOME bo 2\n"));
        let long = format!("MSG al - {}\n", "x".repeat(4000));
        let history: Vec<Rc<Outgoing>> = (0..100).map(|_| line(&long)).collect();
        q.start_replay(Replay::messages(history));
        assert!(q.replaying());
        q.push(&line("JOIN cy\n"));
        // Nothing of the replay is queued as bytes: only its slots count.
        assert!(q.cost() < 2 * 1024, "{}", q.cost());
        let mut sink = Sink::new(usize::MAX, 0);
        let mut gather = Vec::new();
        assert!(!q.write_to(&mut sink, &mut gather).unwrap());
        sink.room = REPLAY_SLICE / 2;
        assert!(!q.write_to(&mut sink, &mut gather).unwrap());
        assert!(
            q.bytes() <= REPLAY_SLICE + long.len() + 100,
            "at most one slice queued: {}",
            q.bytes()
        );
        sink.room = usize::MAX;
        assert!(q.write_to(&mut sink, &mut gather).unwrap());
        assert!(q.is_empty() && !q.replaying());
        let got = String::from_utf8(sink.got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 102);
        assert_eq!(lines[0], "WELCOME bo 2");
        assert!(lines[1..101].iter().all(|l| l.len() == long.len() - 1));
        assert_eq!(lines[101], "JOIN cy");
        assert_eq!(q.written(), got.len() as u64);
    }

    #[test]
    fn allowance_paces_lines_and_bytes() {
        let config = Config {
            rate: 10,
            burst: 2,
            rate_bytes: 1000,
            burst_bytes: 1000,
            ..Config::default()
        };
        let t0 = Instant::now();
        let mut a = Allowance::new(&config, t0);
        assert!(a.try_take_line() && a.try_take_line());
        assert!(!a.try_take_line(), "out of lines");
        assert_eq!(a.wait_for_one(&config), Duration::from_millis(100));
        a.refill(&config, t0 + Duration::from_millis(100));
        assert!(a.try_take_line());
        a.spend_bytes(3000);
        a.refill(&config, t0 + Duration::from_secs(100));
        assert!(a.has_one(), "a long wait pays the debt");
        a.spend_bytes(3000);
        assert!(!a.has_one(), "bytes in debt hold lines back");
        let wait = a.wait_for_one(&config).as_secs_f64();
        assert!((2.0..2.01).contains(&wait), "{wait}");
    }

    #[test]
    fn reads_shrink_as_the_allowance_runs_low() {
        let config = Config::default();
        let mut a = Allowance::new(&config, Instant::now());
        assert_eq!(a.read_limit(), READ_CHUNK);
        a.spend_bytes(config.burst_bytes - 10);
        assert_eq!(a.read_limit(), PACED_READ_CHUNK);
    }

    #[test]
    fn cost_counts_each_line_s_overhead() {
        let mut q = OutQueue::default();
        q.push(&line("x\n"));
        q.push(&line("y\n"));
        assert_eq!(q.cost(), 4 + 2 * QUEUE_LINE_OVERHEAD);
        assert_eq!(q.cost_of(&line("x\n")), 2 + QUEUE_LINE_OVERHEAD);
    }
}
