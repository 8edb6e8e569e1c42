//! Helpers for chat-load's integration tests: [`run_load`] runs `chat-load --json` against a
//! server and returns the report's fields; [`fan_out_whole`] and [`slow_readers_get_joins`] are
//! the two runs every transport (TLS, WebSocket) must pass, given its members' flags. The server itself is `chat_testkit::Server` (the real
//! `chat-server` binary, the sibling of `chat-load` in the target directory, on a free port,
//! killed when the guard drops).
//!
//! Every wait is a channel receive with a deadline, never a bare sleep. Only 127.0.0.1 is used.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::fmt::Display;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Path of the generator under test.
pub fn load_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chat-load"))
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
pub fn run_load(addr: impl Display, args: &[&str], limit: Duration) -> LoadReport {
    let mut child = Command::new(load_bin())
        .arg("--json")
        .args(args)
        .arg(addr.to_string())
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

/// The longest a transport's shared run may take.
pub const TRANSPORT_LIMIT: Duration = Duration::from_secs(60);

/// A fan-out whose members connect with `transport` flags (`--tls --ca F`, `--ws`): it must
/// arrive whole, once and in order, and the report must say the transport (`flag`: its key).
#[track_caller]
pub fn fan_out_whole(addr: impl Display, transport: &[&str], flag: &str) {
    let mut all = transport.to_vec();
    all.extend_from_slice(&["-n", "12", "-s", "4", "-m", "40", "-w", "8"]);
    let r = run_load(addr, &all, TRANSPORT_LIMIT);
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.get(flag), "true", "{}", r.json);
    assert_eq!(r.int("delivered"), 4 * 40 * 11, "{}", r.json);
    assert_eq!(r.int("joins_received"), 12 * 11 / 2, "{}", r.json);
}

/// A join storm of slow readers connecting with `transport` flags: every join notice must
/// arrive (a short read of a framed or encrypted stream does not mean the socket is drained).
#[track_caller]
pub fn slow_readers_get_joins(addr: impl Display, transport: &[&str]) {
    let mut all = transport.to_vec();
    all.extend_from_slice(&[
        "--scenario",
        "join-storm",
        "-n",
        "25",
        "--read-rate",
        "40",
        "--hold",
        "0",
        "--timeout",
        "30",
    ]);
    let r = run_load(addr, &all, TRANSPORT_LIMIT);
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("joins_received"), 25 * 24 / 2, "{}", r.json);
}

/// A chat-server started with `args`, and the address of the listener it announces as
/// `listening on ADDR (what)` (`HTTP`, `metrics`).
#[track_caller]
pub fn server_and_listener(
    args: &[&str],
    what: &str,
) -> (chat_testkit::Server, std::net::SocketAddr) {
    let mut server = chat_testkit::Server::start(args);
    let suffix = format!(" ({what})");
    let line = server.expect_console("listening on ");
    let addr = line
        .trim_start_matches("listening on ")
        .trim_end_matches(suffix.as_str())
        .parse()
        .unwrap_or_else(|e| panic!("no {what} address in {line:?}: {e}"));
    (server, addr)
}
