//! Helpers for the integration tests: a [`Server`] guard that runs the real `chat-server`
//! binary (the sibling of `chat-load` in the target directory) on a free port, and [`run_load`],
//! which runs `chat-load --json` against it and returns the report's fields.
//!
//! Every wait is a channel receive with a deadline, never a bare sleep; the server is killed
//! when the guard drops, whatever the test did. Only 127.0.0.1 is used.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long the server may take to print its `listening on` line (two shared cores, builds).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Path of the generator under test.
pub fn load_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chat-load"))
}

/// Path of `chat-server` next to `chat-load`; fails the test with a clear message when it was
/// not built.
#[track_caller]
pub fn server_bin() -> PathBuf {
    let path = load_bin().with_file_name("chat-server");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p chat-server` (same profile as the tests)",
        path.display()
    );
    path
}

/// A running `chat-server`, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Kept open: the console stays attached for the whole test.
    _stdin: ChildStdin,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Server {
    /// Starts `chat-server --listen 127.0.0.1:0` with `args`, and waits for its address.
    #[track_caller]
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(server_bin())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining the console so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chat-server printed no `listening on` line in {START_TIMEOUT:?}");
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        Server {
            child,
            _stdin: stdin,
            addr,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A report of `chat-load --json`: its fields by key.
#[derive(Debug)]
pub struct LoadReport {
    /// The exit status code of chat-load.
    pub code: Option<i32>,
    /// The JSON object as printed.
    pub json: String,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl LoadReport {
    #[track_caller]
    fn value(&self, key: &str) -> &serde_json::Value {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key:?} in {}", self.json))
    }

    /// The value of `key` as JSON text (`true`, `null`, `"a string"`); fails the test when
    /// absent.
    #[track_caller]
    pub fn get(&self, key: &str) -> String {
        self.value(key).to_string()
    }

    /// The value of `key` as an integer.
    #[track_caller]
    pub fn int(&self, key: &str) -> u64 {
        let v = self.value(key);
        v.as_u64()
            .unwrap_or_else(|| panic!("{key} = {v} is no integer in {}", self.json))
    }

    /// The value of `key` as a number.
    #[track_caller]
    pub fn num(&self, key: &str) -> f64 {
        let v = self.value(key);
        v.as_f64()
            .unwrap_or_else(|| panic!("{key} = {v} is no number in {}", self.json))
    }
}

/// Command-line arguments written as one string, split at spaces (no argument has one).
pub fn args(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

/// Runs `chat-load --json ARGS ADDR` and returns its report; fails the test if it does not end
/// within `limit`.
#[track_caller]
pub fn run_load(addr: &str, args: &[&str], limit: Duration) -> LoadReport {
    let mut child = Command::new(load_bin())
        .arg("--json")
        .args(args)
        .arg(addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    let (out, err) = match rx.recv_timeout(limit) {
        Ok(o) => o,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-load did not finish within {limit:?}");
        }
    };
    let status = child.wait().unwrap();
    let json = out.trim().to_owned();
    let fields = serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!("chat-load printed no JSON object ({e}): stdout {out:?}, stderr {err:?}")
    });
    LoadReport {
        code: status.code(),
        fields,
        json,
    }
}
