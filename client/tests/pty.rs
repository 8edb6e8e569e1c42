//! The real `chat-client` under a pseudo-terminal, as a person would run it: the line editor,
//! the name prompt, styles written as SGR sequences around the right words, incoming lines
//! printed without losing the line being typed, and the terminal put back after an end the
//! server decided. The test plays the terminal: it answers the editor's cursor-position query.
#![allow(clippy::unwrap_used)]

mod util;

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, LocalFlags};
use util::{client_bin, Console, Peer, Server, TIMEOUT};

/// The editor asks where the cursor is; a terminal answers `ESC [ row ; col R`.
const CURSOR_QUERY: &[u8] = b"\x1b[6n";
const CURSOR_REPLY: &[u8] = b"\x1b[1;1R";

/// The client running in a pseudo-terminal; killed on drop.
struct Terminal {
    child: Child,
    master: File,
    rx: Receiver<Vec<u8>>,
    /// Everything the client wrote so far.
    output: Vec<u8>,
    /// How much of `output` earlier `expect` calls consumed.
    mark: usize,
}

impl Terminal {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let size = Winsize {
            ws_row: 24,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).unwrap();
        let mut cmd = Command::new(client_bin());
        cmd.args(args)
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .envs(envs.iter().copied())
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave));
        let child = cmd.spawn().unwrap();
        // Our copies of the slave end must go, so reads end when the client exits.
        drop(cmd);
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let mut answerer = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut all = Vec::new();
            let mut answered = 0;
            let mut chunk = [0u8; 4096];
            // Ends with EIO once the client, the last holder of the slave end, exits.
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                all.extend_from_slice(&chunk[..n]);
                let asked = all
                    .windows(CURSOR_QUERY.len())
                    .filter(|w| *w == CURSOR_QUERY)
                    .count();
                while answered < asked {
                    let _ = answerer.write_all(CURSOR_REPLY);
                    answered += 1;
                }
                if tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            master,
            rx,
            output: Vec::new(),
            mark: 0,
        }
    }

    /// Waits until the output after the last match holds `needle`; consumes up to its end.
    #[track_caller]
    fn expect(&mut self, needle: &str) {
        let needle = needle.as_bytes();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(at) = self.output[self.mark..]
                .windows(needle.len())
                .position(|w| w == needle)
            {
                self.mark += at + needle.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.output.extend_from_slice(&bytes),
                Err(_) => panic!(
                    "no {:?} in the terminal; after the last match it shows {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.output[self.mark..])
                ),
            }
        }
    }

    /// Types keys.
    fn keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits for the client to exit; returns its status.
    #[track_caller]
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("killed by a signal");
            }
            assert!(
                Instant::now() < deadline,
                "client did not exit; terminal shows {:?}",
                String::from_utf8_lossy(&self.output)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything written until the client closed the terminal (bounded by [`TIMEOUT`]).
    fn rest(&mut self) -> String {
        let deadline = Instant::now() + TIMEOUT;
        while let Ok(bytes) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.output.extend_from_slice(&bytes);
        }
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn styles_wrap_the_right_words_and_typing_survives_incoming_lines() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut term = Terminal::start(&[&server.addr], &[]);

    // Asked for a name; a taken one is explained and asked again.
    term.expect("name: ");
    term.keys("alice\r");
    term.expect("name-taken");
    term.expect("name: ");
    term.keys("bob\r");
    term.expect("you are in as bob");
    alice.expect("JOIN bob");

    // A half-typed line, then a colored message with markup arrives.
    term.expect("> ");
    term.keys("draft");
    term.expect("draft");
    alice.send("/color green plain **big** news");
    term.expect("<alice> \x1b[0m\x1b[32mplain \x1b[0m\x1b[0m\x1b[1m\x1b[32mbig\x1b[0m\x1b[0m\x1b[32m news\x1b[0m");
    // The editor redraws the half-typed line below the message, and it is still there.
    term.expect("draft");
    term.keys(" more\r");
    assert_eq!(alice.expect("MSG "), "MSG bob - draft more");

    alice.send("/private bob __quiet__");
    term.expect("\x1b[0m\x1b[1m\x1b[35m[private]\x1b[0m <alice -> you> \x1b[0m\x1b[3mquiet\x1b[0m");

    term.keys("/leave\r");
    assert_eq!(term.wait(), 0);
    alice.expect("LEAVE bob left");
}

#[test]
fn no_color_means_no_style_sequence_and_ctrl_d_leaves() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut term = Terminal::start(&["--name", "bob", &server.addr], &[("NO_COLOR", "1")]);
    term.expect("you are in as bob");
    alice.expect("JOIN bob");
    alice.send("/color red **loud** ~~gone~~");
    term.expect("<alice> loud gone");
    alice.send("/private bob hi");
    term.expect("[private] <alice -> you> hi");
    term.expect("> ");
    term.keys("\x04");
    assert_eq!(term.wait(), 0);
    alice.expect("LEAVE bob left");
    // The line editor moves the cursor, but nothing sets a color or a style.
    let all = term.rest();
    assert!(!all.contains("m\x1b") && !all.contains("\x1b[0m") && !all.contains("\x1b[1m"));
    let sgr = all.match_indices("\x1b[").any(|(i, _)| {
        let rest = &all[i + 2..];
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_some_and(|e| rest[e..].starts_with('m'))
    });
    assert!(!sgr, "an SGR sequence was written: {all:?}");
}

#[test]
fn a_kick_while_typing_restores_the_terminal() {
    let mut server = Server::start(true, Console::Piped);
    let mut term = Terminal::start(&["--name", "bob", &server.addr], &[]);
    term.expect("you are in as bob");
    term.expect("> ");
    term.keys("half a thought");
    term.expect("half a thought");
    server.console("kick bob");
    term.expect("kicked by the operator");
    assert_eq!(term.wait(), 5);
    let flags = tcgetattr(&term.master).unwrap().local_flags;
    assert!(
        flags.contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "the terminal was left raw: {flags:?}"
    );
}
