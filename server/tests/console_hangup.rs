//! Terminal hang-up: the server started in a terminal (a pseudo-terminal here) whose window is
//! closed. Without a control socket it shuts down politely (BYE to members) instead of holding
//! the port headless; with `--control` it goes on and says where its console is; and a plain
//! SIGHUP with no hung-up terminal still only reloads (the server stays up).
#![allow(clippy::unwrap_used)]

mod console_kit;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use chat_testkit::{Client, TIMEOUT};
use console_kit::{ctl_lines, TempDir};
use portable_pty::{native_pty_system, Child, CommandBuilder, PtySize};

/// A server running in a pseudo-terminal whose master end the test holds.
struct InTerminal {
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
    child: Box<dyn Child + Send + Sync>,
    addr: SocketAddr,
}

impl InTerminal {
    /// Starts the server in a new terminal and reads its `listening on` line. The reader thread
    /// stops there and drops its copy of the master, so closing `master` hangs the terminal up.
    #[track_caller]
    fn start(args: &[&str]) -> InTerminal {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 200,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_chat-server"));
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir", "none"]);
        cmd.args(args);
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    let _ = tx.send(Err(String::from_utf8_lossy(&seen).into_owned()));
                    return;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).into_owned();
                let found = text.lines().find_map(|l| {
                    l.trim_end_matches('\r')
                        .strip_prefix("listening on ")
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                });
                if let Some(addr) = found {
                    let _ = tx.send(Ok(addr));
                    return;
                }
            }
        });
        let addr = match rx.recv_timeout(TIMEOUT) {
            Ok(Ok(addr)) => addr,
            other => panic!("no `listening on` in the terminal: {other:?}"),
        };
        InTerminal {
            master: Some(pair.master),
            child,
            addr,
        }
    }

    /// Closes the terminal, as closing its window does.
    fn hang_up(&mut self) {
        self.master.take();
    }

    /// Waits (bounded) for the server to exit; its exit status.
    #[track_caller]
    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server still runs after its terminal hung up"
            );
            // Polling an exit status: there is no event to wait on for a non-child pty process.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for InTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_hung_up_terminal_without_a_control_socket_shuts_down_politely() {
    let mut server = InTerminal::start(&["--auto-approve"]);
    let mut member = Client::connect(server.addr);
    member.login("alice");
    server.hang_up();
    member.skip_until("BYE server shutting down");
    member.expect_eof();
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    // The port is free again: a new server can take it at once.
    std::net::TcpListener::bind(server.addr).unwrap();
}

#[test]
fn a_hung_up_terminal_with_a_control_socket_goes_on_and_says_where_the_console_is() {
    let dir = TempDir::new("hangup");
    let sock = dir.sock();
    let log = dir.0.join("server.log");
    let mut server = InTerminal::start(&[
        "--auto-approve",
        "--control",
        sock.to_str().unwrap(),
        "--log-file",
        log.to_str().unwrap(),
    ]);
    let mut member = Client::connect(server.addr);
    member.login("alice");
    server.hang_up();
    // Still serving: the member stays, the console answers, and the log says where it is.
    let (code, lines) = ctl_lines(&sock, &["who"]);
    assert_eq!(code, 0, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("alice")), "{lines:?}");
    member.send_line("/who");
    member.expect("INFO online (1)");
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&format!(
            "the terminal hung up; the console goes on at {}",
            sock.display()
        )) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "log: {text}");
        // ctl answered after the hang-up was handled (one thread), so this is already written;
        // the loop only covers the file system's visibility.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.child.try_wait().unwrap().is_none(), "it must go on");
}

#[test]
fn sighup_without_a_hung_up_terminal_is_only_a_reload() {
    // Standard input is a pipe here: no terminal to hang up, so SIGHUP is `systemctl reload`.
    let mut server = chat_testkit::Server::builder()
        .args(&["--auto-approve"])
        .start();
    let mut member = Client::connect(server.addr());
    member.login("alice");
    server.signal("HUP");
    // Two console round trips: the second is answered in a later round than the signal's.
    server.console_reply("pending");
    server.console_reply("pending");
    chat_testkit::proc::expect_alive(&server);
    member.send_line("/who");
    member.expect("INFO online (1)");
}
