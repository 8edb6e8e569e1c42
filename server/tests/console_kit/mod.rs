//! Helpers shared by the console tests (`console_*.rs`, `ctl.rs`): a temporary directory for a
//! control socket, an operator on that socket, and `chat-server ctl` run as a script would.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chat_testkit::{Console, Server, TIMEOUT};

/// A fresh directory for one test's files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("chat-console-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn sock(&self) -> PathBuf {
        self.0.join("console.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server with standard input on a pipe the test holds open (so no `console closed` from it
/// races the control console's lines) and a control socket in `dir`.
#[track_caller]
pub fn start_controlled(dir: &TempDir, extra: &[&str]) -> Server {
    let sock = dir.sock();
    let mut args = vec!["--control", sock.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::builder()
        .console(Console::Piped)
        .args(&args)
        .start()
}

/// One operator on the control socket.
pub struct Operator {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Every line received, for failure messages.
    pub seen: Vec<String>,
}

impl Operator {
    #[track_caller]
    pub fn connect(path: &Path) -> Operator {
        let stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Operator {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
            seen: Vec::new(),
        }
    }

    /// Connects and waits for its own `console N connected` line; returns N.
    #[track_caller]
    pub fn connect_numbered(path: &Path) -> (Operator, usize) {
        let mut op = Operator::connect(path);
        let line = op.expect("console ");
        let n = line
            .strip_prefix("console ")
            .and_then(|r| r.strip_suffix(" connected"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a connected line: {line:?}"));
        (op, n)
    }

    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Ends its input (as `nc -N` does at end of file).
    pub fn shutdown_write(&self) {
        self.writer.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// The next line, or `None` at end of file.
    #[track_caller]
    pub fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                let line = line.trim_end_matches('\n').to_owned();
                self.seen.push(line.clone());
                Some(line)
            }
            Err(e) => panic!("console read failed: {e}; seen {:#?}", self.seen),
        }
    }

    /// Skips lines until one starts with `prefix`; returns it.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        loop {
            match self.next() {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => {}
                None => panic!("console closed before {prefix:?}; seen {:#?}", self.seen),
            }
        }
    }

    /// Every line until the server closes the connection.
    #[track_caller]
    pub fn until_closed(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(line) = self.next() {
            lines.push(line);
        }
        lines
    }
}

/// Runs `chat-server ctl --control SOCK ARGS...` to the end (its own timeout bounds it).
#[track_caller]
pub fn ctl(sock: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("ctl")
        .arg("--control")
        .arg(sock)
        .args(args)
        .output()
        .unwrap()
}

/// `ctl`'s exit status and standard output lines.
#[track_caller]
pub fn ctl_lines(sock: &Path, args: &[&str]) -> (i32, Vec<String>) {
    let out = ctl(sock, args);
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout);
    (code, text.lines().map(str::to_owned).collect())
}
