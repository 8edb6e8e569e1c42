//! The server's own outputs when nobody reads them or they fail, against the real `chat-server`
//! binary: a log file on a full disk, a console (stdout) nobody reads and a log pipe (stderr)
//! nobody reads. None of them may freeze the room. The second test first failed and pinned down
//! a server bug, since fixed: a stalled stderr blocked the reactor.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::thread;
use std::time::Instant;

use chat_testkit::{
    expect_alive, expect_fds_back, fd_count, filler, light, skip_to, Client, Healthy, Server,
    SETTLE, TIMEOUT,
};

#[test]
fn log_file_on_a_full_disk_does_not_disturb_serving() {
    let _lock = light();
    let server = Server::start(&[
        "--auto-approve",
        "--log-file",
        "/dev/full",
        "--log-level",
        "debug",
    ]);
    let pid = server.pid();
    let healthy = Healthy::start(&server, "h", 2);
    let baseline = fd_count(pid);
    // Traffic that logs at every level: logins, bad names, over-long lines, leaves, refusals.
    for i in 0..50 {
        let mut c = server.connect_prompted();
        c.send_line("bad name!");
        c.expect("ERROR bad-name ");
        c.expect("NAME? ");
        let name = format!("d{i}");
        c.send_line(&name);
        c.expect_welcome(&name);
        c.send_line(&filler("long", 5000));
        skip_to(&mut c, "ERROR line-too-long ", TIMEOUT);
        c.send_line("/leave");
        skip_to(&mut c, "BYE ", TIMEOUT);
    }
    expect_fds_back(&server, baseline, SETTLE);
    let report = healthy.finish();
    assert!(report.all_saw("LEAVE d49 left"), "{report:?}");
    expect_alive(&server);
    assert!(
        server.stderr_text().is_empty(),
        "stderr: {}",
        server.stderr_text()
    );
    eprintln!(
        "log on /dev/full: 50 sessions served, healthy got {} in order",
        report.sent
    );
}

/// A server whose stdout (the operator console) or stderr (the log) nobody reads, as when the
/// operator's terminal is paused (Ctrl-S) or piped into a stuck program. Console lines that are
/// read go to a channel. Killed when dropped.
struct StalledPipes {
    child: std::process::Child,
    addr: SocketAddr,
    console: Option<std::sync::mpsc::Receiver<String>>,
}

impl StalledPipes {
    /// Starts the server with `args`; `read_stdout` and `read_stderr` say which pipes are read
    /// (the other ones are left to fill up). Standard input is a pipe kept open.
    fn start(args: &[&str], read_stdout: bool, read_stderr: bool) -> StalledPipes {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(chat_testkit::server_bin())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("first line {first:?}"));
        let console = read_stdout.then(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            thread::spawn(move || {
                for line in stdout.lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        if read_stderr {
            let mut err = child.stderr.take().unwrap();
            thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        }
        StalledPipes {
            child,
            addr,
            console,
        }
    }

    /// Types a console command.
    fn console(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).unwrap();
    }

    /// Waits for a console line starting with `prefix`.
    #[track_caller]
    fn expect_console(&mut self, prefix: &str) {
        let rx = self.console.as_ref().expect("stdout is not read");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(e) => panic!("no console line {prefix:?}: {e:?}"),
            }
        }
    }

    /// Joins as `name` and has the operator approve it.
    #[track_caller]
    fn approved(&mut self, name: &str) -> Client {
        let mut c = Client::connect(self.addr);
        c.expect("NAME? ");
        c.send_line(name);
        c.expect("WAIT ");
        self.console(&format!("approve {name}"));
        c.expect_welcome(name);
        c
    }
}

impl Drop for StalledPipes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stalled_console_does_not_freeze_the_room() {
    let _lock = light();
    let server = StalledPipes::start(&["--auto-approve"], false, true);
    let mut a = Client::connect(server.addr);
    a.login("a");
    let mut b = Client::connect(server.addr);
    b.login("b");
    a.expect_exact("JOIN b");
    // Each join and leave prints a console line; 1500 of each is far past a pipe's 64 KiB.
    for i in 0..1500 {
        let mut c = Client::connect(server.addr);
        let name = format!("churn{i}");
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("NAME? ") => {}
            other => panic!("connection {i} got {other:?}: the server froze on its console"),
        }
        c.send_line(&name);
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("WELCOME ") => {}
            other => panic!("join {i} got {other:?}: the server froze on its console"),
        }
    }
    b.send_line("still here");
    a.skip_until("MSG b - still here");
    eprintln!("stalled console: 1500 joins and leaves served with nobody reading stdout");
}

// Regression test. Log records used to be written to stderr with a blocking write in the
// reactor thread, and a peer can make the server log at the default level: every join refused
// for --max-pending is a warning, as is every refusal for lack of descriptors. With stderr not
// being read (a terminal paused with Ctrl-S, a stuck pipe), about 800 refused joins filled the
// 64 KiB pipe and the whole server froze for every member. Fixed by writing the log through a
// non-blocking stderr (`NonBlockingStderr` in server/src/main.rs).
#[test]
fn a_stalled_log_pipe_does_not_freeze_the_room() {
    let _lock = light();
    let mut server = StalledPipes::start(&["--max-pending", "1"], true, false);
    let mut a = server.approved("a");
    let mut b = server.approved("b");
    a.expect_exact("JOIN b");
    server.expect_console("approved b");
    // One join waits, so every further join is refused with a warning in the log.
    let mut waiting = Client::connect(server.addr);
    waiting.expect("NAME? ");
    waiting.send_line("w0");
    waiting.expect("WAIT ");
    for i in 0..3000 {
        let mut c = Client::connect(server.addr);
        c.send_line(&format!("x{i}"));
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("NAME? ") => {}
            other => panic!("join {i} got {other:?}: the server froze on its log"),
        }
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("ERROR server-full ") => {}
            other => panic!("join {i} got {other:?}: the server froze on its log"),
        }
    }
    b.send_line("still here");
    a.skip_until("MSG b - still here");
}
