//! Remote operator consoles (`--control PATH`): the real binary, a real Unix socket.
//!
//! Each test starts the server with standard input at /dev/null (as a service runs) and a control
//! socket in its own temporary directory, and speaks the console's commands over it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chat_testkit::{Console, Server, TIMEOUT};

/// A fresh directory for one test's socket, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("chat-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn sock(&self) -> PathBuf {
        self.0.join("console.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One operator on the control socket.
struct Operator {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Operator {
    #[track_caller]
    fn connect(path: &Path) -> Operator {
        let stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Operator {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// The next console line, or `None` at end of file.
    #[track_caller]
    fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
            Err(e) => panic!("no console line within {TIMEOUT:?}: {e}"),
        }
    }

    /// Skips lines until one starts with `prefix`.
    #[track_caller]
    fn expect(&mut self, prefix: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.next() {
                Some(line) if line.starts_with(prefix) => return line,
                Some(line) => seen.push(line),
                None => panic!("console closed before {prefix:?}; saw {seen:?}"),
            }
        }
    }

    /// Reads until no line comes for `quiet`; returns them.
    fn drain(&mut self, quiet: Duration) -> Vec<String> {
        self.reader.get_ref().set_read_timeout(Some(quiet)).unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => lines.push(line.trim_end_matches('\n').to_owned()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("{e}"),
            }
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(TIMEOUT))
            .unwrap();
        lines
    }
}

fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let sock = dir.sock();
    let mut args = vec!["--control", sock.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start_with(&args, Console::Null)
}

#[test]
fn the_control_socket_is_mode_0600_and_removed_at_exit() {
    let dir = TempDir::new("mode");
    let mut server = start(&dir, &[]);
    let mode = std::fs::metadata(dir.sock()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let mut op = Operator::connect(&dir.sock());
    op.expect("console 1 connected");
    op.send("quit now");
    op.expect("shutting down");
    assert!(server.wait_exit(TIMEOUT).success());
    assert!(!dir.sock().exists(), "the socket file is left behind");
}

#[test]
fn two_consoles_both_see_a_join_and_either_decides() {
    let dir = TempDir::new("two");
    let server = start(&dir, &[]);
    let mut a = Operator::connect(&dir.sock());
    let mut b = Operator::connect(&dir.sock());
    a.expect("console 2 connected");
    let mut alice = server.connect_prompted();
    alice.send_line("alice");
    alice.expect("WAIT ");
    assert!(a
        .expect("join request: alice from ")
        .ends_with("(approve alice / deny alice)"));
    b.expect("join request: alice from ");
    b.send("approve alice");
    assert_eq!(
        b.expect("approved "),
        "approved alice (by control:2; 1 online)"
    );
    assert_eq!(
        a.expect("approved "),
        "approved alice (by control:2; 1 online)"
    );
    alice.expect_welcome("alice");
    // A reply goes to the console that asked, events to all.
    a.send("who");
    assert_eq!(a.next().as_deref(), Some("online: 1"));
    assert!(a.next().unwrap().starts_with("  alice from 127.0.0.1:"));
    a.send("say hello");
    assert_eq!(a.expect("said to "), "said to 1 members (by control:1)");
    assert_eq!(
        b.drain(Duration::from_millis(300)),
        ["said to 1 members (by control:1)"]
    );
    alice.expect_exact("INFO operator: hello");
}

#[test]
fn joins_wait_while_a_control_console_is_open_and_are_denied_when_none_is() {
    let dir = TempDir::new("none");
    let server = start(&dir, &[]);
    // Standard input is at end of file and no console is open: refused at once.
    let mut early = server.connect_prompted();
    early.send_line("early");
    early.expect("DENIED no operator is present");
    let mut op = Operator::connect(&dir.sock());
    op.expect("console 1 connected");
    let mut bob = server.connect_prompted();
    bob.send_line("bob");
    bob.expect("WAIT ");
    op.expect("join request: bob ");
    // The last console goes: the waiting join is denied, and so are new ones.
    drop(op);
    bob.expect("DENIED no operator is present");
    let mut late = server.connect_prompted();
    late.send_line("late");
    late.expect("DENIED no operator is present");
}

#[test]
fn a_console_that_stops_reading_is_cut_off_and_nothing_stalls() {
    let dir = TempDir::new("stall");
    let server = start(&dir, &["--auto-approve"]);
    let mut watcher = Operator::connect(&dir.sock());
    let mut mute = UnixStream::connect(dir.sock()).unwrap();
    watcher.expect("console 2 connected");
    // 3000 `help`s ask for about 2 MB of replies that the mute console never reads.
    let helps = "help\n".repeat(3000);
    mute.write_all(helps.as_bytes()).unwrap();
    watcher.expect("console 2 closed");
    // The server serves on: chat and the other console work.
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_exact("JOIN b");
    b.send_line("still here");
    a.expect_exact("MSG b - still here");
    watcher.send("who");
    assert_eq!(watcher.expect("online: "), "online: 2");
    // The mute console gets its backlog up to the cut, then end of file.
    mute.set_read_timeout(Some(TIMEOUT)).unwrap();
    let deadline = Instant::now() + TIMEOUT * 2;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    loop {
        assert!(
            Instant::now() < deadline,
            "the cut console never saw end of file"
        );
        match std::io::Read::read(&mut mute, &mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(got < 3 * 1024 * 1024, "{got} bytes");
}

#[test]
fn a_stale_socket_is_replaced_and_a_foreign_file_is_refused() {
    let dir = TempDir::new("stale");
    // A socket file nobody listens on (a server that was killed).
    drop(std::os::unix::net::UnixListener::bind(dir.sock()).unwrap());
    let server = start(&dir, &[]);
    Operator::connect(&dir.sock()).expect("console 1 connected");
    drop(server);
    let _ = std::fs::remove_file(dir.sock());
    std::fs::write(dir.sock(), b"not a socket").unwrap();
    let sock = dir.sock();
    let (status, _, stderr) = Server::run_to_exit(
        &[
            "--listen",
            "127.0.0.1:0",
            "--control",
            sock.to_str().unwrap(),
        ],
        TIMEOUT * 2,
    );
    assert!(!status.success());
    assert!(stderr.contains("control socket"), "{stderr}");
    assert_eq!(std::fs::read(dir.sock()).unwrap(), b"not a socket");
}
