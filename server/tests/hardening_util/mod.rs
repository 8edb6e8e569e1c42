//! Helpers for the fault, abuse and long-run tests (`hardening.rs`, `soak.rs`) that the shared
//! `tests/util` module does not offer: reading the server's resource use from `/proc` (open
//! descriptors, RSS, CPU), waiting for the descriptor count to settle with a deadline, raw
//! sockets with options `std` lacks (small receive buffers, reset on close), a group of healthy
//! members that keep chatting in the background and check that they receive everything in
//! order while a test abuses the server, and a test-wide lock that keeps the CPU-heavy tests
//! from running at the same time on a small machine.
//!
//! It builds on `tests/util` (the [`Server`] guard and [`Client`]), which it only uses. Every wait
//! is a read or a poll with a deadline; nothing here talks to anything but 127.0.0.1.
#![allow(dead_code)] // Each test crate uses a different subset of the helpers.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::util::{Client, End, Server, TIMEOUT};

// ---- the server's resource use, from /proc ---------------------------------------------------

/// Number of open descriptors of process `pid` (entries of `/proc/PID/fd`).
#[track_caller]
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
        .count()
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`), or `None` when the process is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory of `pid` now, in KiB.
#[track_caller]
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS").unwrap_or_else(|| panic!("process {pid} is gone"))
}

/// Peak resident memory of `pid` so far (`VmHWM`), in KiB.
#[track_caller]
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM").unwrap_or_else(|| panic!("process {pid} is gone"))
}

/// Whether `pid` ignores SIGPIPE (bit 13 of the `SigIgn` mask in `/proc/PID/status`).
#[track_caller]
pub fn ignores_sigpipe(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (13 - 1)) != 0
}

/// Polls `pid`'s descriptor count until it is at most `want`, and returns it: closing is
/// asynchronous (the server notices a peer's close on its next event, or at a linger deadline),
/// so a test waits for the count to settle instead of sleeping a guessed time. Fails with both
/// counts when `within` passes first.
#[track_caller]
pub fn await_fds(pid: u32, want: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let now = fd_count(pid);
        if now <= want {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "server descriptors did not settle: {now} open, want {want} (after {within:?})"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The server's descriptor count at rest: measured while one probe connection is open and has
/// its prompt (so the reactor has finished setting up), minus the probe.
#[track_caller]
pub fn fd_baseline(server: &Server) -> usize {
    let probe = server.connect_prompted();
    let with_probe = fd_count(server.pid());
    drop(probe);
    await_fds(server.pid(), with_probe - 1, TIMEOUT)
}

/// Asserts that the server's descriptors come back to exactly `baseline` within `within`.
#[track_caller]
pub fn expect_fds_back(server: &Server, baseline: usize, within: Duration) {
    let settled = await_fds(server.pid(), baseline, within);
    assert_eq!(
        settled, baseline,
        "server holds {settled} descriptors, baseline {baseline}"
    );
}

/// Asserts the server process is still running (it did not crash or get killed by a signal).
#[track_caller]
pub fn expect_alive(server: &Server) {
    assert!(
        std::fs::metadata(format!("/proc/{}/fd", server.pid())).is_ok()
            && status_kib(server.pid(), "VmRSS").is_some(),
        "the server process {} is gone; stderr:\n{}",
        server.pid(),
        server.stderr_text()
    );
}

/// The listen backlog of the socket listening on 127.0.0.1:`port` (Send-Q of a listening socket
/// in `ss -ltn`), or `None` when `ss` cannot tell.
pub fn listen_backlog(port: u16) -> Option<usize> {
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("LISTEN"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Raises this process's open-file soft limit to `needed` (children started later inherit it).
/// Returns the hard limit when that is too low, so the caller can skip loudly.
pub fn raise_nofile(needed: u64) -> Result<(), u64> {
    let got = rlimit::increase_nofile_limit(needed).unwrap_or(0);
    if got >= needed {
        Ok(())
    } else {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap_or((0, 0));
        Err(hard)
    }
}

// ---- a lock between tests --------------------------------------------------------------------

static HEAVY: RwLock<()> = RwLock::new(());

/// Held by a test while it runs: light tests share it, heavy ones (thousands of sockets, load)
/// take it alone, so that on two cores a heavy test never distorts another test's timings.
#[derive(Debug)]
pub enum TestLock {
    /// Other light tests may run alongside.
    Light(RwLockReadGuard<'static, ()>),
    /// Nothing else runs alongside.
    Heavy(RwLockWriteGuard<'static, ()>),
}

/// Takes the lock for a light test. A failed (panicked) test does not poison the others.
pub fn light() -> TestLock {
    TestLock::Light(HEAVY.read().unwrap_or_else(|e| e.into_inner()))
}

/// Takes the lock for a heavy test.
pub fn heavy() -> TestLock {
    TestLock::Heavy(HEAVY.write().unwrap_or_else(|e| e.into_inner()))
}

// ---- raw peers ---------------------------------------------------------------------------------

/// A connection built with `socket2`, for what `util::Client` cannot do: a small receive buffer
/// (so a member that stops reading makes the server queue output quickly) and a close that
/// sends a reset (`SO_LINGER` 0).
#[derive(Debug)]
pub struct Peer {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Bytes of a line received so far (kept across timeouts).
    partial: Vec<u8>,
    /// The name given at login, if any.
    pub name: String,
}

impl Peer {
    /// Connects to `addr`; `rcvbuf` sets `SO_RCVBUF` before connecting (the kernel doubles it and
    /// has a floor of a few KiB).
    #[track_caller]
    pub fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> Peer {
        assert!(addr.ip().is_loopback(), "tests only talk to 127.0.0.1");
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket
            .connect_timeout(&SockAddr::from(addr), TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        socket.set_nodelay(true).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_write_timeout(Some(TIMEOUT * 2)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Peer {
            stream,
            reader,
            partial: Vec::new(),
            name: String::new(),
        }
    }

    /// The socket, for raw writes and shutdowns.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends bytes as they are; errors are returned (a peer under test may be cut off).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `line` and an LF; fails the test on error.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("[{}] cannot send {line:?}: {e}", self.name));
    }

    /// The next line as raw bytes (without LF), or how the read ended, waiting at most `within`.
    pub fn next_raw(&mut self, within: Duration) -> Result<Vec<u8>, End> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => return Err(End::Eof),
                Ok(_) if self.partial.last() == Some(&b'\n') => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.pop();
                    return Ok(line);
                }
                Ok(_) => return Err(End::Eof), // a last line without LF, then end of stream
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Error(e.kind())),
            }
        }
    }

    /// The next line, or how the read ended.
    pub fn try_line(&mut self, within: Duration) -> Result<String, End> {
        self.next_raw(within)
            .map(|l| String::from_utf8(l).expect("the server sent invalid UTF-8"))
    }

    /// The next line, which must start with `prefix`.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        match self.try_line(TIMEOUT) {
            Ok(line) if line.starts_with(prefix) => line,
            other => panic!("[{}] expected {prefix:?}..., got {other:?}", self.name),
        }
    }

    /// Skips lines until one starts with `prefix`.
    #[track_caller]
    pub fn skip_until(&mut self, prefix: &str) -> String {
        loop {
            match self.try_line(TIMEOUT) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                other => panic!("[{}] expected {prefix:?}..., got {other:?}", self.name),
            }
        }
    }

    /// `NAME?`, name, `WELCOME` (the server must auto-approve).
    #[track_caller]
    pub fn login(&mut self, name: &str) {
        self.name = name.to_owned();
        self.expect("NAME? ");
        self.send_line(name);
        self.expect(&format!("WELCOME {name} "));
    }

    /// Reads until the server closes the connection (end of file or reset), returning how many
    /// bytes arrived; fails the test when it stays open for `within`.
    #[track_caller]
    pub fn drain_to_close(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut total = self.partial.len();
        self.partial.clear();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "[{}] still open after {within:?} ({total} bytes read)",
                self.name
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.reader.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return total,
            }
        }
    }

    /// Closes with a reset instead of a FIN: `SO_LINGER` 0, then close.
    pub fn reset(self) {
        let socket = Socket::from(self.stream);
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(socket);
        drop(self.reader);
    }
}

// ---- reading with an overall deadline ------------------------------------------------------------

/// Skips lines until one starts with `prefix`, like `Client::skip_until`, but with a deadline
/// for the whole search: a member that keeps receiving other traffic cannot wait forever.
#[track_caller]
pub fn skip_to(c: &mut Client, prefix: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.try_next_line(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(e) => panic!(
                "[{}] no line starting with {prefix:?} within {within:?}: {e:?}",
                c.name
            ),
        }
    }
}

/// Collects the `LEAVE` lines of every name in `names`, in whatever order they come (the server
/// notices simultaneous departures in any order), and returns them by name, with every other
/// line read meanwhile.
#[track_caller]
pub fn collect_leaves(
    c: &mut Client,
    names: &[&str],
    within: Duration,
) -> (Vec<String>, Vec<String>) {
    let deadline = Instant::now() + within;
    let mut skipped = Vec::new();
    let mut found: Vec<Option<String>> = vec![None; names.len()];
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = c.try_next_line(left).unwrap_or_else(|e| {
            panic!(
                "[{}] LEAVE lines missing after {within:?} ({e:?}): got {found:?} of {names:?}",
                c.name
            )
        });
        if let Some(rest) = line.strip_prefix("LEAVE ") {
            let who = rest.split(' ').next().unwrap_or("");
            if let Some(i) = names.iter().position(|n| *n == who) {
                assert!(found[i].is_none(), "[{}] two LEAVE lines for {who}", c.name);
                found[i] = Some(line);
                continue;
            }
        }
        skipped.push(line);
    }
    (found.into_iter().flatten().collect(), skipped)
}

// ---- healthy members ----------------------------------------------------------------------------

/// How long a healthy member may go without a line before its check fails: the sender sends
/// every few milliseconds, so silence this long means the server stopped serving it.
const HEALTHY_SILENCE: Duration = Duration::from_secs(15);
/// Pause between two healthy messages: 40 per second, under the default `--rate` of 50, so the
/// server never has to pace the sender and its last message arrives promptly.
const HEALTHY_INTERVAL: Duration = Duration::from_millis(25);
/// Shortest run of the healthy sender, so that every check covers a few dozen messages.
const HEALTHY_MIN_RUN: Duration = Duration::from_millis(500);

/// A sender and some receivers, all members, chatting in the background while a test abuses the
/// server. The sender sends `hseq 0`, `hseq 1`, ... until [`Healthy::finish`], then `hend N`;
/// each receiver checks it gets exactly `0..N` in order, whatever else happens meanwhile.
#[derive(Debug)]
pub struct Healthy {
    stop: Arc<AtomicBool>,
    /// Set once the receivers are done: the sender may close.
    release: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    started: Instant,
    sender: Option<JoinHandle<Result<u64, String>>>,
    receivers: Vec<(String, Receiver)>,
}

/// A receiver's thread: its other lines, or what went wrong.
type Receiver = JoinHandle<Result<Vec<String>, String>>;

/// What the healthy members saw besides their sequence: `JOIN`/`LEAVE` lines, per receiver.
#[derive(Debug)]
pub struct HealthReport {
    /// Messages the sender sent (and every receiver got, in order).
    pub sent: u64,
    /// Per receiver (name, lines other than the sequence).
    pub others: Vec<(String, Vec<String>)>,
}

impl HealthReport {
    /// Whether every receiver saw exactly `line` among its other lines.
    pub fn all_saw(&self, line: &str) -> bool {
        self.others
            .iter()
            .all(|(_, lines)| lines.iter().any(|l| l == line))
    }

    /// Whether any receiver saw a line starting with `prefix`.
    pub fn any_saw_prefix(&self, prefix: &str) -> bool {
        self.others
            .iter()
            .any(|(_, lines)| lines.iter().any(|l| l.starts_with(prefix)))
    }
}

impl Healthy {
    /// Logs in `{prefix}0` (the sender) and `{prefix}1..=receivers` on an auto-approving server
    /// and starts them.
    #[track_caller]
    pub fn start(server: &Server, prefix: &str, receivers: usize) -> Healthy {
        let clients: Vec<Client> = (0..=receivers)
            .map(|i| server.login(&format!("{prefix}{i}")))
            .collect();
        Healthy::run(clients)
    }

    /// Starts members already logged in: the first is the sender, the rest receive.
    pub fn run(mut clients: Vec<Client>) -> Healthy {
        assert!(clients.len() >= 2, "a sender and at least one receiver");
        let stop = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut sender = clients.remove(0);
        let sender_name = sender.name.clone();
        let receivers = clients
            .into_iter()
            .map(|c| {
                let name = c.name.clone();
                let from = sender_name.clone();
                (name, thread::spawn(move || receive(c, &from)))
            })
            .collect();
        let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
        let release2 = Arc::clone(&release);
        let sender = thread::spawn(move || {
            let mut seq = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                sender
                    .stream()
                    .write_all(format!("hseq {seq}\n").as_bytes())
                    .map_err(|e| format!("sender cannot send hseq {seq}: {e}"))?;
                seq += 1;
                sent2.store(seq, Ordering::Relaxed);
                // Reading what others send (JOIN/LEAVE, floods) keeps the sender's own queue
                // short; reading until the next send time is the pacing.
                let next = Instant::now() + HEALTHY_INTERVAL;
                loop {
                    let left = next.saturating_duration_since(Instant::now());
                    if left.is_zero() || sender.try_next_line(left).is_err() {
                        break;
                    }
                }
            }
            sender
                .stream()
                .write_all(format!("hend {seq}\n").as_bytes())
                .map_err(|e| format!("sender cannot send hend: {e}"))?;
            // Keep the connection open until the receivers are done (dropping it would be a
            // LEAVE in their streams, which is fine, but a reset could lose the last line).
            while !release2.load(Ordering::Relaxed) {
                if let Err(End::Eof | End::Error(_)) = sender.try_next_line(HEALTHY_INTERVAL) {
                    break;
                }
            }
            Ok(seq)
        });
        Healthy {
            stop,
            release,
            sent,
            started: Instant::now(),
            sender: Some(sender),
            receivers,
        }
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until at least `more` further messages were sent, proving the sender runs.
    #[track_caller]
    pub fn wait_progress(&self, more: u64) {
        let target = self.sent() + more;
        let deadline = Instant::now() + TIMEOUT;
        while self.sent() < target {
            assert!(Instant::now() < deadline, "the healthy sender is stuck");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the sender and checks every receiver got the whole sequence in order.
    #[track_caller]
    pub fn finish(mut self) -> HealthReport {
        // A fault that was over in milliseconds would leave the check with next to nothing:
        // the sender runs for at least half a second in all.
        let floor = self.started + HEALTHY_MIN_RUN;
        thread::sleep(floor.saturating_duration_since(Instant::now()));
        self.stop.store(true, Ordering::Relaxed);
        let mut others = Vec::new();
        let mut failures = Vec::new();
        for (name, handle) in self.receivers.drain(..) {
            match handle.join() {
                Ok(Ok(lines)) => others.push((name, lines)),
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: receiver panicked")),
            }
        }
        // The receivers are done: let the sender's connection go.
        self.release.store(true, Ordering::Relaxed);
        let sent = match self.sender.take().map(JoinHandle::join) {
            Some(Ok(Ok(n))) => n,
            Some(Ok(Err(e))) => {
                failures.push(e);
                0
            }
            _ => {
                failures.push("sender panicked".into());
                0
            }
        };
        assert!(
            failures.is_empty(),
            "healthy members were disturbed: {failures:#?}"
        );
        // Each receiver's last "other" entry is its `hend N` marker.
        for (name, lines) in &mut others {
            let end = lines.pop().unwrap_or_default();
            assert_eq!(end, format!("hend {sent}"), "{name} saw the wrong end");
        }
        assert!(sent > 0, "the healthy sender sent nothing");
        HealthReport { sent, others }
    }
}

/// A healthy receiver: every `MSG from - hseq N` must come in order from 0; ends at `hend`.
/// Returns the lines that were not part of the sequence, then `hend N` last.
fn receive(mut c: Client, from: &str) -> Result<Vec<String>, String> {
    let seq_prefix = format!("MSG {from} - hseq ");
    let end_prefix = format!("MSG {from} - hend ");
    let mut next = 0u64;
    let mut others = Vec::new();
    loop {
        let line = match c.try_next_line(HEALTHY_SILENCE) {
            Ok(line) => line,
            Err(end) => {
                return Err(format!(
                    "after hseq {next}: {end:?}; other lines so far {others:?}"
                ))
            }
        };
        if let Some(n) = line.strip_prefix(&seq_prefix) {
            let n: u64 = n.parse().map_err(|_| format!("bad line {line:?}"))?;
            if n != next {
                return Err(format!("expected hseq {next}, got {line:?}"));
            }
            next += 1;
        } else if let Some(n) = line.strip_prefix(&end_prefix) {
            let n: u64 = n.parse().map_err(|_| format!("bad line {line:?}"))?;
            if n != next {
                return Err(format!("hend {n} after only {next} messages"));
            }
            others.push(format!("hend {n}"));
            return Ok(others);
        } else if line.starts_with("JOIN ") || line.starts_with("LEAVE ") {
            others.push(line);
        } else if line.starts_with("MSG ") {
            // Another member's room traffic (a flood under test): not this check's business.
        } else {
            return Err(format!("unexpected line {line:?}"));
        }
    }
}

impl Drop for Healthy {
    fn drop(&mut self) {
        // A test that failed before `finish`: let the threads end on their own.
        self.stop.store(true, Ordering::Relaxed);
        self.release.store(true, Ordering::Relaxed);
    }
}

// ---- misc --------------------------------------------------------------------------------------

/// A tiny deterministic random generator (xorshift64*), so runs can be replayed from the seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from the clock, printed by the caller so a failure can be replayed.
    pub fn clock_seed() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Collects messages from many threads for one assertion at the end.
#[derive(Debug, Default, Clone)]
pub struct Failures(Arc<Mutex<Vec<String>>>, Arc<AtomicU64>);

impl Failures {
    /// Records one failure (the first hundred are kept, the rest only counted).
    pub fn push(&self, what: String) {
        let mut list = self.lock();
        if list.len() < 100 {
            list.push(what);
        } else {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails the test when anything was recorded (showing the first few).
    #[track_caller]
    pub fn assert_none(&self, context: &str) {
        let list = self.lock();
        assert!(
            list.is_empty(),
            "{context}: {} failures, first: {:#?}",
            list.len() as u64 + self.1.load(Ordering::Relaxed),
            &list[..list.len().min(10)]
        );
    }
}

/// The server's descriptors and what they point at, for failure messages.
pub fn fd_list(pid: u32) -> Vec<String> {
    let dir = format!("/proc/{pid}/fd");
    let mut list: Vec<(usize, String)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let n = e
                        .file_name()
                        .to_string_lossy()
                        .parse()
                        .unwrap_or(usize::MAX);
                    let target = std::fs::read_link(e.path())
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    (n, target)
                })
                .collect()
        })
        .unwrap_or_default();
    list.sort();
    list.into_iter().map(|(n, t)| format!("{n}:{t}")).collect()
}
