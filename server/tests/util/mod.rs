//! Helpers shared by the integration tests: a [`Server`] guard that runs the real `chat-server`
//! binary on a free port with a piped console, and a [`Client`] that speaks the wire protocol over
//! a real socket.
//!
//! Every wait here is a read with a deadline, never a bare sleep, so a broken server makes a test
//! fail with a message instead of hanging. Helpers that assert are `#[track_caller]` so a failure
//! points at the test line, not at this file. Every line a client receives is also checked against
//! the shared grammar (`ServerMsg::parse`), so any malformed server line fails the test that saw it.
//! This module never starts anything but the binary under test and never talks to anything but
//! 127.0.0.1.
#![allow(dead_code)] // Each test crate uses a different subset of the helpers.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chat_common::protocol::ServerMsg;

/// How long a test waits for one expected line (from a socket or the console). Generous because
/// two cores are shared with builds; a correct server answers in milliseconds.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How long the binary may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How much of the server's stderr is kept for failure reports.
const STDERR_KEEP: usize = 64 * 1024;

/// What the server's standard input is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// A pipe the test writes console commands into (and may close).
    Piped,
    /// `/dev/null`: the console is at end of file from the start.
    Null,
}

/// A running `chat-server`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
    stdin: Option<ChildStdin>,
    /// Console lines (stdout) after the `listening on` line, as the reader thread saw them.
    console: Receiver<String>,
    /// Every console line received so far, for control-character checks and failure reports.
    history: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<thread::JoinHandle<()>>,
}

/// Path of the binary under test.
pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_chat-server")
}

impl Server {
    /// Starts the server on `127.0.0.1:0` with `args` and a piped console.
    #[track_caller]
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, Console::Piped)
    }

    /// Starts the server on `127.0.0.1:0` with `args` and the given console.
    #[track_caller]
    pub fn start_with(args: &[&str], console: Console) -> Server {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Server::spawn(&all, console)
    }

    /// Starts the binary with exactly `args` (no `--listen` added).
    #[track_caller]
    pub fn spawn(args: &[&str], console: Console) -> Server {
        Server::spawn_wrapped(&[], args, console)
    }

    /// Starts `wrapper... chat-server args...`, for wrappers that exec the server in place (so
    /// the pid is the server's), such as `prlimit --nofile=64:64`.
    #[track_caller]
    pub fn spawn_wrapped(wrapper: &[&str], args: &[&str], console: Console) -> Server {
        let stdin = match console {
            Console::Piped => Stdio::piped(),
            Console::Null => Stdio::null(),
        };
        let (program, pre): (&str, &[&str]) = match wrapper.split_first() {
            Some((first, rest)) => (first, rest),
            None => (server_bin(), &[]),
        };
        let mut command = Command::new(program);
        command.args(pre);
        if !wrapper.is_empty() {
            command.arg(server_bin());
        }
        let mut child = command
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_bin()));
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();
        let stdin = child.stdin.take();

        // Console replies are awaited with timeouts, so a thread turns the blocking pipe into a
        // channel. Lines keep everything but their LF, so a stray CR or ESC stays visible.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        let text = String::from_utf8_lossy(&line).into_owned();
                        if tx.send(text).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        // Logs go to stderr; it must be drained or a chatty server would block on a full pipe.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let stderr_thread = thread::spawn(move || {
            let mut pipe = stderr_pipe;
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut kept = sink.lock().unwrap();
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > STDERR_KEEP {
                            let cut = kept.len() - STDERR_KEEP;
                            kept.drain(..cut);
                        }
                    }
                }
            }
        });

        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            stdin,
            console: rx,
            history: Vec::new(),
            stderr,
            stderr_thread: Some(stderr_thread),
        };
        let first = match server.console.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "server printed no first line ({e:?}); exit status {status:?}; stderr:\n{}",
                    server.stderr_text()
                );
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| {
                panic!("first stdout line should be `listening on 127.0.0.1:PORT`, got {first:?}")
            });
        assert_eq!(
            addr.ip().to_string(),
            "127.0.0.1",
            "listening address {addr}"
        );
        assert_ne!(addr.port(), 0, "the server must print the real port");
        server.addr = addr;
        server
    }

    /// Starts the binary with `args` and returns its exit status and full stderr, for runs that
    /// are expected to fail before listening.
    #[track_caller]
    pub fn run_to_exit(args: &[&str], within: Duration) -> (ExitStatus, String, String) {
        let mut child = Command::new(server_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?} did not exit within {within:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        let mut err = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, out, err)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far (the last [`STDERR_KEEP`] bytes).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Opens a connection (no reading yet).
    #[track_caller]
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Connects and expects the first line to be `NAME?`.
    #[track_caller]
    pub fn connect_prompted(&self) -> Client {
        let mut c = self.connect();
        c.expect("NAME? ");
        c
    }

    /// Connects and logs in as `name` (the server must run with `--auto-approve`).
    #[track_caller]
    pub fn login(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.login(name);
        c
    }

    /// Connects, offers `name` and expects `WAIT` (no `--auto-approve`); also awaits the console's
    /// join announcement, which is returned.
    #[track_caller]
    pub fn join_waiting(&mut self, name: &str) -> (Client, String) {
        let mut c = self.connect_prompted();
        c.send_line(name);
        c.expect("WAIT ");
        let announced = self.expect_console(&format!("join request: {name} from "));
        (c, announced)
    }

    /// Types one console command.
    #[track_caller]
    pub fn console(&mut self, command: &str) {
        let stdin = self
            .stdin
            .as_mut()
            .expect("the console is not piped or was closed");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot type {command:?} on the console: {e}"));
    }

    /// Closes the console pipe: the server sees end of file on stdin.
    pub fn close_console(&mut self) {
        self.stdin = None;
    }

    /// The next console line, whatever it is.
    #[track_caller]
    pub fn next_console(&mut self) -> String {
        match self.console.recv_timeout(TIMEOUT) {
            Ok(line) => {
                self.history.push(line.clone());
                line
            }
            Err(e) => panic!(
                "no console line within {TIMEOUT:?} ({e:?}); console so far: {:#?}",
                self.history
            ),
        }
    }

    /// Skips console lines until one starts with `prefix`, and returns it. Announcements arrive
    /// asynchronously (joins, leaves), so unrelated lines in between are allowed; they stay in the
    /// history.
    #[track_caller]
    pub fn expect_console(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.console.recv_timeout(left) {
                Ok(line) => {
                    self.history.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no console line starting with {prefix:?} within {TIMEOUT:?} ({e:?}); \
                     console so far: {:#?}\nstderr:\n{}",
                    self.history,
                    self.stderr_text()
                ),
            }
        }
    }

    /// Like [`Server::expect_console`] for several lines whose relative order is not fixed (an
    /// operator's reply and the announcement it causes): each prefix must match one line.
    #[track_caller]
    pub fn expect_console_all(&mut self, prefixes: &[&str]) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.console.recv_timeout(left) {
                Ok(line) => {
                    self.history.push(line.clone());
                    if let Some(slot) = prefixes
                        .iter()
                        .zip(found.iter_mut())
                        .find(|(p, f)| f.is_none() && line.starts_with(**p))
                        .map(|(_, f)| f)
                    {
                        *slot = Some(line);
                    }
                }
                Err(e) => panic!(
                    "console lines {prefixes:?} not all seen within {TIMEOUT:?} ({e:?}); \
                     console so far: {:#?}",
                    self.history
                ),
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Types `pending` and returns its reply lines only (`pending: N waiting` and the indented
    /// entries), leaving out announcements that happened to arrive in between.
    #[track_caller]
    pub fn pending(&mut self) -> Vec<String> {
        self.console_reply("pending")
            .into_iter()
            .filter(|l| l.starts_with("pending: ") || l.starts_with("  "))
            .collect()
    }

    /// Types `command` and returns every console line up to (not including) the reply of a
    /// following `who` (`online: N`), which serves as an end marker for multi-line replies.
    #[track_caller]
    pub fn console_reply(&mut self, command: &str) -> Vec<String> {
        self.console(command);
        self.console("who");
        let deadline = Instant::now() + TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.console.recv_timeout(left) {
                Ok(line) => {
                    self.history.push(line.clone());
                    if line.starts_with("online: ") {
                        return lines;
                    }
                    lines.push(line);
                }
                Err(e) => panic!(
                    "no end of the reply to {command:?} ({e:?}); got {lines:#?}; history {:#?}",
                    self.history
                ),
            }
        }
    }

    /// Every console line received so far.
    pub fn console_history(&self) -> &[String] {
        &self.history
    }

    /// Collects console lines that have already arrived (or arrive within `grace`).
    pub fn drain_console(&mut self, grace: Duration) {
        while let Ok(line) = self.console.recv_timeout(grace) {
            self.history.push(line);
        }
    }

    /// Waits for the process to exit by itself.
    #[track_caller]
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {within:?}; stderr:\n{}",
                self.stderr_text()
            );
            // Polling a child's exit has no blocking-with-timeout form in std.
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`TERM`, `INT`, ...) with the `kill` command, which needs no unsafe code.
    #[track_caller]
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// CPU time the server has used so far (user + system), from `/proc/PID/stat`.
    #[track_caller]
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which is in parentheses and may hold spaces).
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based 11, 12).
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // USER_HZ is 100 on every Linux this runs on.
        Duration::from_millis(ticks * 10)
    }

    /// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    #[track_caller]
    pub fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        if thread::panicking() {
            eprintln!(
                "--- server console ---\n{}\n--- server stderr (tail) ---\n{}",
                self.history.join("\n"),
                self.stderr_text()
            );
        }
    }
}

/// How a read ended without a line.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Nothing arrived in time.
    Timeout,
    /// The server closed the connection (read returned 0).
    Eof,
    /// The server reset the connection or another error occurred.
    Error(ErrorKind),
}

/// One connection to the server.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    /// Bytes received but not yet returned as lines.
    pending: Vec<u8>,
    /// The name given at login, if any.
    pub name: String,
}

impl Client {
    /// Connects to `addr` (loopback only).
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        assert!(addr.ip().is_loopback(), "tests only talk to 127.0.0.1");
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        // Small writes are sent as written, so split-line tests really split.
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(TIMEOUT * 2)).unwrap();
        Client {
            stream,
            pending: Vec::new(),
            name: String::new(),
        }
    }

    /// The client's own address, as the server sees it as the peer address.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// The underlying socket (for raw writes or shutdowns).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends `line` and an LF.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Sends bytes as they are.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write of {} bytes failed: {e}", bytes.len()));
    }

    /// The next line (without LF), or how the read ended, waiting at most `within`.
    pub fn try_next_line(&mut self, within: Duration) -> Result<String, End> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
                line.pop();
                let line = String::from_utf8(line)
                    .unwrap_or_else(|e| panic!("server sent invalid UTF-8: {e}"));
                return Ok(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(End::Eof);
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(End::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Error(e.kind())),
            }
        }
    }

    /// The next line; fails the test on timeout or close, or when the line breaks the grammar.
    #[track_caller]
    pub fn next_line(&mut self) -> String {
        match self.try_next_line(TIMEOUT) {
            Ok(line) => {
                check_grammar(&line);
                line
            }
            Err(end) => panic!(
                "[{}] expected a line within {TIMEOUT:?}, got {end:?} (unterminated bytes: {:?})",
                self.name,
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }

    /// The next line, which must start with `prefix`; returns it whole.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        let line = self.next_line();
        assert!(
            line.starts_with(prefix),
            "[{}] expected a line starting with {prefix:?}, got {line:?}",
            self.name
        );
        line
    }

    /// The next line, which must be exactly `line`.
    #[track_caller]
    pub fn expect_exact(&mut self, line: &str) {
        let got = self.next_line();
        assert_eq!(got, line, "[{}] unexpected line", self.name);
    }

    /// Skips lines until one starts with `prefix` (e.g. past `JOIN`s), returning it.
    #[track_caller]
    pub fn skip_until(&mut self, prefix: &str) -> String {
        loop {
            let line = self.next_line();
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The server closed the connection: read returns 0 with no line before it.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        match self.try_next_line(TIMEOUT) {
            Err(End::Eof) => {}
            other => panic!("[{}] expected end of stream, got {other:?}", self.name),
        }
    }

    /// The server closed the connection, by FIN or by reset (the latter happens when it closes
    /// with unread input). Lines still arriving before the close are skipped and returned.
    #[track_caller]
    pub fn expect_closed(&mut self) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            match self.try_next_line(TIMEOUT) {
                Ok(line) => skipped.push(line),
                Err(End::Eof) | Err(End::Error(_)) => return skipped,
                Err(End::Timeout) => panic!(
                    "[{}] expected the connection to close; still open after {} lines",
                    self.name,
                    skipped.len()
                ),
            }
        }
    }

    /// No complete line arrives within `quiet`. Prefer a marker message where one is possible;
    /// this is for the few cases where no later message can serve as one.
    #[track_caller]
    pub fn expect_nothing(&mut self, quiet: Duration) {
        match self.try_next_line(quiet) {
            Err(End::Timeout) => {}
            other => panic!("[{}] expected nothing, got {other:?}", self.name),
        }
    }

    /// `NAME?` -> name -> `WELCOME name N` (needs `--auto-approve`); returns N.
    #[track_caller]
    pub fn login(&mut self, name: &str) -> usize {
        self.name = name.to_owned();
        self.expect("NAME? ");
        self.send_line(name);
        self.expect_welcome(name)
    }

    /// The next line is `WELCOME name N`; returns N.
    #[track_caller]
    pub fn expect_welcome(&mut self, name: &str) -> usize {
        self.name = name.to_owned();
        let line = self.expect(&format!("WELCOME {name} "));
        line[format!("WELCOME {name} ").len()..]
            .parse()
            .unwrap_or_else(|_| panic!("bad online count in {line:?}"))
    }

    /// Half-closes the writing side (the server sees end of file).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Every server line must parse with the shared grammar.
#[track_caller]
fn check_grammar(line: &str) {
    if let Err(e) = ServerMsg::parse(line) {
        panic!("server line {line:?} breaks the protocol grammar: {e}");
    }
}

/// Whether `s` holds a character no terminal should receive from a peer.
pub fn has_control(s: &str) -> bool {
    s.chars().any(chat_common::sanitize::is_forbidden)
}

/// The soft limit on open files of this process.
pub fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| {
            if w == "unlimited" {
                Some(u64::MAX)
            } else {
                w.parse().ok()
            }
        })
        .collect();
    match nums.as_slice() {
        [soft, hard, ..] => (*soft, *hard),
        _ => (0, 0),
    }
}

/// Makes sure this process may open `needed` files, raising the soft limit with the `prlimit`
/// command (std has no setrlimit and the crate forbids unsafe code). Fails with a clear message when
/// the hard limit is too low.
#[track_caller]
pub fn ensure_nofile(needed: u64) {
    let (soft, hard) = nofile_limits();
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "this test needs {needed} open files but the hard limit is {hard}; raise it (ulimit -Hn)"
    );
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={needed}:{hard}"))
        .status();
    let (soft, _) = nofile_limits();
    assert!(
        soft >= needed,
        "this test needs {needed} open files; soft limit is {soft} and prlimit gave {status:?}"
    );
}

/// A line of `len` bytes of printable ASCII, recognisable by its `tag`.
pub fn filler(tag: &str, len: usize) -> String {
    let mut s = String::with_capacity(len);
    s.push_str(tag);
    while s.len() < len {
        s.push((b'a' + (s.len() % 26) as u8) as char);
    }
    s.truncate(len);
    s
}
