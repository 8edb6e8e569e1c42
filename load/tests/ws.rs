//! chat-load's `--ws` members against the real chat-server's web listener: a fan-out over
//! WebSocket must arrive whole, once and in order, slow WebSocket readers must get every join
//! notice, and a member beyond `--max-clients` (counted when the upgrade completes) is refused.
//!
//! Needs `target/<profile>/chat-server`: run `cargo build -p chat-server` first.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use chat_testkit::Server;
use util::run_load;

const LIMIT: Duration = Duration::from_secs(60);

fn web_server(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec![
        "--auto-approve",
        "--rate",
        "0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut server = Server::start(&args);
    let line = server.expect_console("listening on ");
    let addr = line
        .trim_start_matches("listening on ")
        .trim_end_matches(" (HTTP)")
        .parse()
        .unwrap();
    (server, addr)
}

#[test]
fn ws_members_fan_out_whole_once_and_in_order() {
    let (_server, addr) = web_server(&[]);
    let r = run_load(
        addr,
        &["--ws", "-n", "12", "-s", "4", "-m", "40", "-w", "8"],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.get("ws"), "true", "{}", r.json);
    assert_eq!(r.int("delivered"), 4 * 40 * 11, "{}", r.json);
    assert_eq!(r.int("joins_received"), 12 * 11 / 2, "{}", r.json);
}

#[test]
fn slow_ws_readers_get_every_join_notice() {
    let (_server, addr) = web_server(&[]);
    let r = run_load(
        addr,
        &[
            "--ws",
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
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("joins_received"), 25 * 24 / 2, "{}", r.json);
}

#[test]
fn a_websocket_member_over_max_clients_is_refused_and_fails_the_run() {
    let (_server, addr) = web_server(&["--max-clients", "1"]);
    let r = run_load(
        addr,
        &["--ws", "-n", "2", "-s", "1", "-m", "1", "--timeout", "10"],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.int("admitted"), 1, "{}", r.json);
    assert!(
        r.int("server_errors") + r.int("failed") >= 1,
        "the second member was refused: {}",
        r.json
    );
}
