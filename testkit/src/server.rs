//! The real `chat-server` binary as a test fixture: [`ServerBuilder`] spawns it with flags
//! (on `127.0.0.1:0` unless told otherwise), waits for its `listening on ADDR` line with a
//! deadline, and hands back a [`Server`] guard that types console commands, awaits console
//! lines, reads the server's `/proc` figures, and kills and waits for the process when dropped
//! (printing the console and stderr tail when the test panicked).
//!
//! Finding the binary: [`server_bin`] is `$CHAT_SERVER_BIN` when set, else `chat-server` in the
//! test executable's target directory (`target/<profile>/`, the parent of `deps/`), which is
//! exactly `CARGO_BIN_EXE_chat-server` for the server's own tests (cargo builds the binary before
//! them); other crates' tests need `cargo build -p chat-server` first and fail with that hint
//! when it is missing. [`ServerBuilder::bin`] takes an explicit path (e.g.
//! `env!("CARGO_BIN_EXE_chat-server")`) instead.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::pipe::pipe_lines;
use crate::TIMEOUT;

/// The environment variable that, when set, names the `chat-server` binary to test.
pub const SERVER_BIN_VAR: &str = "CHAT_SERVER_BIN";

/// The path of binary `name` built by cargo beside the running test: the test executable lives
/// in `target/<profile>/deps/`, binaries in `target/<profile>/`. Fails the test with a hint when
/// it was not built.
#[track_caller]
pub fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no current_exe: {e}"));
    let dir = exe
        .parent()
        .filter(|d| d.ends_with("deps"))
        .and_then(|d| d.parent())
        .or_else(|| exe.parent())
        .unwrap_or_else(|| panic!("{} has no directory", exe.display()));
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --bin {name}` (same profile as the tests)",
        path.display()
    );
    path
}

/// The `chat-server` binary under test: `$CHAT_SERVER_BIN`, else [`target_bin`]`("chat-server")`.
#[track_caller]
pub fn server_bin() -> PathBuf {
    match std::env::var_os(SERVER_BIN_VAR) {
        Some(path) => PathBuf::from(path),
        None => target_bin("chat-server"),
    }
}

/// How a server is started; [`ServerBuilder::start`] starts it. Built by [`Server::builder`].
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    bin: Option<PathBuf>,
    wrapper: Vec<String>,
    listen: Option<String>,
    args: Vec<String>,
    console: Console,
    stdout: Output,
    stderr: Output,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            bin: None,
            wrapper: Vec::new(),
            listen: Some("127.0.0.1:0".to_owned()),
            args: Vec::new(),
            console: Console::Piped,
            stdout: Output::Read,
            stderr: Output::Read,
        }
    }
}

impl ServerBuilder {
    /// Runs this binary instead of [`server_bin`].
    pub fn bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.bin = Some(path.into());
        self
    }

    /// Adds flags (after `--listen`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Listens on `addr` (a loopback address, port 0 for a free one) instead of `127.0.0.1:0`.
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = Some(addr.to_owned());
        self
    }

    /// Adds no `--listen` flag: the arguments say it all (or the default address is tested).
    pub fn no_listen(mut self) -> Self {
        self.listen = None;
        self
    }

    /// What standard input is.
    pub fn console(mut self, console: Console) -> Self {
        self.console = console;
        self
    }

    /// Leaves standard output (the console) unread after the `listening on` lines, so it fills
    /// up as under a paused terminal; console lines can no longer be awaited.
    pub fn stall_stdout(mut self) -> Self {
        self.stdout = Output::Stalled;
        self
    }

    /// Leaves standard error (the log) unread, so it fills up as under a stuck pipe.
    pub fn stall_stderr(mut self) -> Self {
        self.stderr = Output::Stalled;
        self
    }

    /// Serves TLS too: `--tls-listen 127.0.0.1:0 --tls-cert CERT --tls-key KEY`; the TLS
    /// address is then [`Server::tls_addr`].
    pub fn tls(self, cert: &std::path::Path, key: &std::path::Path) -> Self {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        self.args(&[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ])
    }

    /// Whether the flags ask for a plain listener (not `--listen off`) and a TLS one.
    fn listeners(&self) -> (bool, bool) {
        let flag = |name: &str| {
            self.args
                .windows(2)
                .rev()
                .find(|w| w[0] == name)
                .map(|w| w[1].clone())
        };
        let plain = match &self.listen {
            Some(addr) => addr != "off" && flag("--listen").as_deref() != Some("off"),
            None => flag("--listen").as_deref() != Some("off"),
        };
        (plain, flag("--tls-listen").is_some())
    }

    /// Runs `wrapper... chat-server args...`; the wrapper must exec the server in place (so the
    /// pid is the server's), as `prlimit --nofile=64:64` does.
    pub fn wrapper(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Spawns the server and waits for its `listening on 127.0.0.1:PORT` line.
    #[track_caller]
    pub fn start(self) -> Server {
        let bin = self.bin.clone().unwrap_or_else(server_bin);
        let stdin = match self.console {
            Console::Piped => Stdio::piped(),
            Console::Null => Stdio::null(),
        };
        let mut command = match self.wrapper.split_first() {
            Some((program, pre)) => {
                let mut c = Command::new(program);
                c.args(pre).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        if let Some(addr) = &self.listen {
            command.args(["--listen", addr]);
        }
        // Servers under test keep nothing on disk unless the test says where: the default data
        // directory is the user's, and one server per directory may run.
        if !self
            .args
            .iter()
            .any(|a| a == "--data-dir" || a.starts_with("--data-dir="))
        {
            command.args(["--data-dir", "none"]);
        }
        let (wants_plain, wants_tls) = self.listeners();
        let mut child = command
            .args(&self.args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stdin = child.stdin.take();

        // Console replies are awaited with timeouts, so a thread turns the blocking pipe into a
        // channel. Lines keep everything but their LF, so a stray CR or ESC stays visible. A
        // stalled console is read only up to its `listening on` lines.
        let heads = usize::from(wants_plain) + usize::from(wants_tls);
        let (console, stalled_stdout) = match self.stdout {
            Output::Read => (pipe_lines(stdout), None),
            Output::Stalled => read_head(stdout, heads),
        };
        // Logs go to stderr; it must be drained or a chatty server would block on a full pipe
        // (unless that is what the test wants).
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (stderr_thread, stalled_stderr) = match self.stderr {
            Output::Read => (Some(drain_stderr(stderr_pipe, Arc::clone(&stderr))), None),
            Output::Stalled => (None, Some(stderr_pipe)),
        };

        let mut server = Server {
            child,
            addr: None,
            tls_addr: None,
            stdin,
            console,
            history: Vec::new(),
            stderr,
            stderr_thread,
            _stalled: (stalled_stdout, stalled_stderr),
        };
        if wants_plain {
            let addr = server.listening_line(false);
            assert!(addr.ip().is_loopback(), "listening address {addr}");
            server.addr = Some(addr);
        }
        if wants_tls {
            server.tls_addr = Some(server.listening_line(true));
        }
        server
    }
}

/// Reads `source` up to its `lines`-th LF on a thread (byte by byte, so nothing past them is
/// taken from the pipe) and hands back those lines as a channel and the pipe itself, kept open
/// and unread.
fn read_head(mut source: ChildStdout, lines: usize) -> (Receiver<String>, Option<ChildStdout>) {
    let (tx, rx) = mpsc::channel();
    let (pipe_tx, pipe_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = Vec::new();
        let mut seen = 0;
        let mut byte = [0u8; 1];
        while seen < lines {
            match source.read(&mut byte) {
                Ok(1) if byte[0] == b'\n' => {
                    let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
                    line.clear();
                    seen += 1;
                }
                Ok(1) => line.push(byte[0]),
                _ => break,
            }
        }
        let _ = pipe_tx.send(source);
    });
    let head: Vec<String> = (0..lines)
        .map_while(|_| rx.recv_timeout(START_TIMEOUT).ok())
        .collect();
    let pipe = pipe_rx.recv_timeout(START_TIMEOUT).ok();
    let (again, rx) = mpsc::channel();
    for line in head {
        let _ = again.send(line);
    }
    (rx, pipe)
}

/// Keeps the last [`STDERR_KEEP`] bytes of the server's stderr in `sink`, on a thread.
fn drain_stderr(mut pipe: ChildStderr, sink: Arc<Mutex<Vec<u8>>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > STDERR_KEEP {
                        let cut = kept.len() - STDERR_KEEP;
                        kept.drain(..cut);
                    }
                }
            }
        }
    })
}

/// Whether the test reads one of the server's output pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Read by a thread (console lines can be awaited; stderr is kept for failure reports).
    Read,
    /// Left unread after the `listening on` lines, so it fills up.
    Stalled,
}

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
    /// The plain listener (`None` with `--listen off`).
    addr: Option<SocketAddr>,
    /// The TLS listener, when asked for.
    tls_addr: Option<SocketAddr>,
    stdin: Option<ChildStdin>,
    /// Console lines (stdout) after the `listening on` line, as the reader thread saw them.
    console: Receiver<String>,
    /// Every console line received so far, for control-character checks and failure reports.
    history: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<thread::JoinHandle<()>>,
    /// Output pipes the test leaves unread (kept open so that they fill up).
    _stalled: (Option<ChildStdout>, Option<ChildStderr>),
}

impl Server {
    /// A builder: `chat-server --listen 127.0.0.1:0` with no further flags and a piped console.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Starts the server on `127.0.0.1:0` with `args` and a piped console.
    #[track_caller]
    pub fn start(args: &[&str]) -> Server {
        Server::builder().args(args).start()
    }

    /// Starts the server on `127.0.0.1:0` with `args` and the given console.
    #[track_caller]
    pub fn start_with(args: &[&str], console: Console) -> Server {
        Server::builder().args(args).console(console).start()
    }

    /// Starts the binary with exactly `args` (no `--listen` added).
    #[track_caller]
    pub fn spawn(args: &[&str], console: Console) -> Server {
        Server::builder()
            .no_listen()
            .args(args)
            .console(console)
            .start()
    }

    /// Starts `wrapper... chat-server args...`, for wrappers that exec the server in place (so
    /// the pid is the server's), such as `prlimit --nofile=64:64`.
    #[track_caller]
    pub fn spawn_wrapped(wrapper: &[&str], args: &[&str], console: Console) -> Server {
        Server::builder()
            .no_listen()
            .wrapper(wrapper)
            .args(args)
            .console(console)
            .start()
    }

    /// Starts the binary with `args` and returns its exit status and full stderr, for runs that
    /// are expected to fail before listening.
    #[track_caller]
    pub fn run_to_exit(args: &[&str], within: Duration) -> (ExitStatus, String, String) {
        Server::run_wrapped_to_exit(&[], args, within)
    }

    /// [`Server::run_to_exit`] of `wrapper... chat-server args...` (a wrapper that runs the
    /// server, as `unshare -m sh -c '...; exec "$@"'` does).
    #[track_caller]
    pub fn run_wrapped_to_exit(
        wrapper: &[&str],
        args: &[&str],
        within: Duration,
    ) -> (ExitStatus, String, String) {
        let mut command = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(server_bin());
                c
            }
            None => Command::new(server_bin()),
        };
        command.args(args);
        // As in `start`: the user's data directory is never touched by a test.
        if !args
            .iter()
            .any(|a| *a == "--data-dir" || a.starts_with("--data-dir="))
        {
            command.args(["--data-dir", "none"]);
        }
        let mut child = command
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

    /// The address the server listens on (its plain listener).
    #[track_caller]
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| panic!("the server has no plain listener (--listen off)"))
    }

    /// Whether the server has a plain listener (not `--listen off`).
    pub fn has_plain(&self) -> bool {
        self.addr.is_some()
    }

    /// The address of the server's TLS listener ([`ServerBuilder::tls`] or `--tls-listen`).
    #[track_caller]
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
            .unwrap_or_else(|| panic!("the server has no TLS listener"))
    }

    /// The next `listening on ADDR` line (`listening on ADDR (TLS)` when `tls`), as an address.
    #[track_caller]
    fn listening_line(&mut self, tls: bool) -> SocketAddr {
        let line = match self.console.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "server printed no `listening on` line ({e:?}); exit status {status:?}; \
                     stderr:\n{}",
                    self.stderr_text()
                );
            }
        };
        let rest = line.strip_prefix("listening on ");
        let addr = if tls {
            rest.and_then(|a| a.strip_suffix(" (TLS)"))
        } else {
            rest
        };
        let addr = addr
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| {
                let want = if tls { "ADDR (TLS)" } else { "ADDR" };
                panic!("expected a line `listening on {want}`, got {line:?}")
            });
        assert_ne!(addr.port(), 0, "the server must print the real port");
        addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far (the last `STDERR_KEEP` bytes, 64 KiB).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Opens a connection (no reading yet).
    #[track_caller]
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// Opens a connection from the loopback address `source` (e.g. `127.0.0.2`), so the server
    /// sees another host.
    #[track_caller]
    pub fn connect_from(&self, source: IpAddr) -> Client {
        Client::connect_from(self.addr(), source)
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

    /// Connects and says `HELLO 3`, awaiting its answer (the `NAME?` comes first, as for
    /// anyone): a version 3 session, not yet named.
    #[track_caller]
    pub fn hello3(&self) -> Client {
        let mut c = self.connect_prompted();
        c.send_line("HELLO 3");
        c.expect_exact("HELLO 3");
        c
    }

    /// [`Server::hello3`], then logs in as `name` (the server must run with `--auto-approve`):
    /// the member and its token (the `TOKEN` line's word).
    #[track_caller]
    pub fn login_v3(&self, name: &str) -> (Client, String) {
        let mut c = self.hello3();
        c.send_line(name);
        c.expect_welcome(name);
        let token = c.expect("TOKEN ");
        (c, token.trim_start_matches("TOKEN ").trim().to_owned())
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

    /// Connects, offers `name`, and has the operator approve it (no `--auto-approve`); reads no
    /// console line, so it works with a stalled console too.
    #[track_caller]
    pub fn approved(&mut self, name: &str) -> Client {
        let mut c = self.connect_prompted();
        c.send_line(name);
        c.expect("WAIT ");
        self.console(&format!("approve {name}"));
        c.expect_welcome(name);
        c
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
        crate::proc::cpu_time(self.pid())
    }

    /// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    #[track_caller]
    pub fn proc_status_kib(&self, field: &str) -> u64 {
        crate::proc::status_kib(self.pid(), field)
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
