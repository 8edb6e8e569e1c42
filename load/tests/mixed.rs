//! chat-load's mixed room against the real chat-server: half the members on the native
//! listener, half on the IRC listener (`--proto mixed --irc-addr`), one room; every message must
//! reach every other member once and in order, whichever protocol either side speaks.
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
fn a_mixed_room_gets_every_message_whole_once_and_in_order() {
    let mut server = Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--irc-listen",
        "127.0.0.1:0",
        "--irc-channel",
        "#load",
    ]);
    let line = server.expect_console("listening on ");
    let irc = line
        .strip_prefix("listening on ")
        .and_then(|l| l.strip_suffix(" (IRC)"))
        .unwrap_or_else(|| panic!("no IRC address in {line:?}"))
        .to_owned();
    let mut load = args("--proto mixed -n 10 -s 10 -m 30 -w 8 --timeout 30 --irc-addr");
    load.push(&irc);
    let r = run_load(server.addr(), &load, LIMIT);
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.code, Some(0), "{}", r.json);
    assert_eq!(r.get("proto"), "\"mixed\"", "{}", r.json);
    assert_eq!(r.int("admitted"), 10);
    assert_eq!(r.int("delivered"), 300 * 9);
    assert_eq!(r.int("lost"), 0);
    assert_eq!(r.int("duplicated"), 0);
    assert_eq!(r.int("out_of_order"), 0);
    assert_eq!(r.int("foreign"), 0);
    assert_eq!(r.int("joins_received"), 10 * 9 / 2);
}
