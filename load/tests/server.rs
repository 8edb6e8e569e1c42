//! chat-load against the real chat-server: a small fan-out must arrive whole, once and in order,
//! and the admission scenarios must check out. These are the generator's end-to-end tests and a
//! cheap regression test of the server's delivery guarantees.
//!
//! Needs `target/<profile>/chat-server` (found by `chat_testkit::server_bin`): run
//! `cargo build -p chat-server` first.
#![allow(clippy::unwrap_used)]

mod util;

use std::time::Duration;

use chat_testkit::Server;
use util::{args, run_load};

/// chat-load stops itself at --timeout; this bounds the test if it did not.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn small_fanout_arrives_whole_once_and_in_order() {
    let server = Server::start(&["--auto-approve", "--rate", "0"]);
    let pid = server.pid().to_string();
    let r = run_load(
        server.addr(),
        &[
            "-n",
            "20",
            "-s",
            "5",
            "-m",
            "50",
            "-w",
            "8",
            "--timeout",
            "30",
            "--server-pid",
            &pid,
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.code, Some(0), "{}", r.json);
    assert_eq!(r.int("admitted"), 20);
    assert_eq!(r.int("sent"), 250);
    assert_eq!(r.int("expected"), 250 * 19);
    assert_eq!(r.int("delivered"), 250 * 19);
    assert_eq!(r.int("lost"), 0);
    assert_eq!(r.int("duplicated"), 0);
    assert_eq!(r.int("out_of_order"), 0);
    assert_eq!(r.int("foreign"), 0);
    assert_eq!(r.int("joins_received"), 20 * 19 / 2);
    assert!(r.num("lat_p50_us") > 0.0 && r.num("lat_p99_us") >= r.num("lat_p50_us"));
    assert!(r.num("server_hwm_kib") > 0.0);
}

#[test]
fn paced_senders_arrive_whole() {
    let server = Server::start(&["--auto-approve", "--rate", "0"]);
    let r = run_load(
        server.addr(),
        &args("-n 10 -s 3 --rate 40 --duration 0.5 --timeout 30"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("sent"), 3 * 20);
    assert_eq!(r.int("delivered"), 3 * 20 * 9);
    // 20 messages 25 ms apart take about half a second: pacing happened.
    assert!(r.num("send_s") >= 0.4, "{}", r.json);
}

/// The stall check used to count the pause between two paced messages, with everything
/// delivered, as silence: a rate slower than 1/--stall always "stalled".
#[test]
fn a_pause_between_paced_sends_is_no_stall() {
    let server = Server::start(&["--auto-approve", "--rate", "0"]);
    let r = run_load(
        server.addr(),
        &args("-n 3 -s 1 --rate 2 --duration 1 --stall 0.3 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.get("stalled"), "false", "{}", r.json);
    assert_eq!(r.int("delivered"), 2 * 2, "{}", r.json);
}

#[test]
fn join_storm_tells_every_earlier_member() {
    let server = Server::start(&["--auto-approve"]);
    let r = run_load(
        server.addr(),
        &["--scenario", "join-storm", "-n", "30", "--timeout", "30"],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("admitted"), 30);
    assert_eq!(r.int("joins_received"), 30 * 29 / 2);
    assert_eq!(r.int("joins_missing"), 0);
    assert_eq!(r.int("joins_out_of_order"), 0);
    assert_eq!(r.int("joins_duplicated"), 0);
}

#[test]
fn idle_members_report_memory() {
    let server = Server::start(&["--auto-approve"]);
    let pid = server.pid().to_string();
    let r = run_load(
        server.addr(),
        &[
            "--scenario",
            "idle",
            "-n",
            "50",
            "--hold",
            "0.1",
            "--timeout",
            "30",
            "--server-pid",
            &pid,
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("admitted"), 50);
    assert!(r.get("rss_per_member_b") != "null", "{}", r.json);
}

/// RSS per member used to be divided by -n even when fewer got in (the anchors' idle runs stop
/// at their time limit), making a server look smaller by the share that was left out.
#[test]
fn rss_per_member_counts_only_members_admitted() {
    let server = Server::start(&["--auto-approve", "--max-clients", "200"]);
    let pid = server.pid().to_string();
    let r = run_load(
        server.addr(),
        &[
            "--scenario",
            "idle",
            "-n",
            "400",
            "--hold",
            "0",
            "--timeout",
            "30",
            "--server-pid",
            &pid,
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.int("admitted"), 200, "{}", r.json);
    assert_eq!(r.int("failed"), 200, "{}", r.json);
    // The server said why: ERROR server-full.
    assert_eq!(r.int("server_errors"), 200, "{}", r.json);
    let grown = r.num("server_rss_after_kib") - r.num("server_rss_before_kib");
    assert!(grown > 0.0, "200 members took no memory? {}", r.json);
    let want = grown * 1024.0 / 200.0;
    assert!(
        (r.num("rss_per_member_b") - want).abs() < 0.01,
        "want {want}: {}",
        r.json
    );
}

#[test]
fn a_server_that_is_not_there_fails_fast() {
    // Bind then drop a listener: nothing listens on that port any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let r = run_load(&addr, &["-n", "3", "--timeout", "10"], LIMIT);
    assert_eq!(r.get("ok"), "false");
    assert_eq!(r.code, Some(1));
    assert_eq!(r.int("failed"), 3);
    assert!(r.get("error").contains("connect"), "{}", r.json);
}

/// Slow readers (`--read-rate`) must still get every JOIN notice once admission is over, and the
/// storm's memory figures (peak and kept per member) must be there.
#[test]
fn slow_readers_get_every_join_notice_and_memory_is_reported() {
    let server = Server::start(&["--auto-approve"]);
    let pid = server.pid().to_string();
    let r = run_load(
        server.addr(),
        &[
            "--scenario",
            "join-storm",
            "-n",
            "40",
            "--read-rate",
            "50",
            "--recv-buffer",
            "4096",
            "--hold",
            "0.1",
            "--timeout",
            "30",
            "--server-pid",
            &pid,
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("read_rate"), 50);
    assert_eq!(r.int("recv_buffer"), 4096);
    assert_eq!(r.int("joins_received"), 40 * 39 / 2);
    assert!(
        r.num("rss_peak_per_member_b") >= r.num("rss_per_member_b"),
        "{}",
        r.json
    );
}

/// `--addr` repeated spreads members round-robin: with a live server and a dead address, the
/// members sent to the dead one (every second) fail, and only they.
#[test]
fn repeated_addr_spreads_members_round_robin() {
    let server = Server::start(&["--auto-approve"]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let live = server.addr().to_string();
    let mut cmd = std::process::Command::new(util::load_bin());
    let out = cmd
        .args(["--json", "--scenario", "idle", "-n", "6", "--hold", "0"])
        .args(["--timeout", "10", "--parallel", "1"])
        .args(["--addr", &live, "--addr", &dead])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["failed"], 3, "{r}");
    assert_eq!(r["admitted"], 3, "{r}");
    assert_eq!(r["addr"], format!("{live},{dead}"), "{r}");
    assert!(r["error"].as_str().unwrap().contains(&dead), "{r}");
}
