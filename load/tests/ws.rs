//! chat-load's `--ws` members against the real chat-server's web listener: a fan-out over
//! WebSocket must arrive whole, once and in order, slow WebSocket readers must get every join
//! notice, and a member beyond `--max-clients` (counted when the upgrade completes) is refused.
//!
//! Needs `target/<profile>/chat-server`: run `cargo build -p chat-server` first.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::SocketAddr;

use chat_testkit::Server;
use util::{run_load, TRANSPORT_LIMIT as LIMIT};

fn web_server(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec![
        "--auto-approve",
        "--rate",
        "0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    util::server_and_listener(&args, "HTTP")
}

#[test]
fn ws_members_fan_out_whole_once_and_in_order() {
    let (_server, addr) = web_server(&[]);
    util::fan_out_whole(addr, &["--ws"], "ws");
}

#[test]
fn slow_ws_readers_get_every_join_notice() {
    let (_server, addr) = web_server(&[]);
    util::slow_readers_get_joins(addr, &["--ws"]);
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
