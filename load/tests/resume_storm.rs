//! chat-load's resume storm and store figures against the real chat-server: members cut at
//! once all resume (nobody sees a `JOIN` or `LEAVE`), with the store on disk the run reports
//! messages made durable and flushes per second from the server's metrics.
//!
//! Needs `target/<profile>/chat-server`: run `cargo build -p chat-server` first.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use chat_testkit::{Server, TempDir};
use util::run_load;

const LIMIT: Duration = Duration::from_secs(60);

/// A server with `extra` flags and its metrics listener, and that listener's address.
fn server_with_metrics(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec![
        "--auto-approve",
        "--rate",
        "0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    util::server_and_listener(&args, "metrics")
}

#[test]
fn members_cut_at_once_all_resume_and_nobody_sees_them_leave() {
    let dir = TempDir::new("load-resume");
    let (server, metrics) = server_with_metrics(&["--data-dir", dir.arg()]);
    let pid = server.pid().to_string();
    let m = metrics.to_string();
    let r = run_load(
        server.addr(),
        &[
            "--scenario",
            "resume-storm",
            "-n",
            "40",
            "--parallel",
            "64",
            "--timeout",
            "30",
            "--server-pid",
            &pid,
            "--metrics",
            &m,
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("admitted"), 40, "{}", r.json);
    assert_eq!(r.int("resumed"), 40, "{}", r.json);
    assert_eq!(r.int("resume_notices"), 0, "{}", r.json);
    assert!(r.num("resume_s") > 0.0, "{}", r.json);
    // Each resume gives a new token, whose record the store commits.
    assert!(r.num("store_flushes_per_s") > 0.0, "{}", r.json);
}

#[test]
fn a_fan_out_with_the_store_on_disk_reports_durable_messages_and_flushes() {
    let dir = TempDir::new("load-durable");
    let (server, metrics) = server_with_metrics(&["--data-dir", dir.arg()]);
    let m = metrics.to_string();
    let r = run_load(
        server.addr(),
        &[
            "-n",
            "10",
            "-s",
            "5",
            "-m",
            "40",
            "-w",
            "8",
            "--metrics",
            &m,
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert!(r.num("store_durable_per_s") > 0.0, "{}", r.json);
    assert!(r.num("store_flushes_per_s") > 0.0, "{}", r.json);
    // One flush serves a round: never more flushes than messages.
    assert!(
        r.num("store_flushes_per_s") <= r.num("store_durable_per_s"),
        "{}",
        r.json
    );
    assert!(r.num("store_flush_ms") > 0.0, "{}", r.json);
}
