//! What an idle WebSocket member costs the server, against a plain member: the contract says
//! within twice as much. Both kinds are logged in on one auto-approving server, 400 at a time,
//! and the server's resident memory is read from /proc after each group (the debug build;
//! allocator rounding included, 128 KiB of slack per group). The plain member's cost is taken
//! as at least 1 KiB (the contract's figure), so a lucky plain measurement cannot fail the test.
//! Measured: 1320 B per plain member, 1126 B per WebSocket member (allocator rounding makes
//! either the larger).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use chat_testkit::ws::Ws;
use chat_testkit::{rss_kib, Client, Server};

const MEMBERS: u64 = 400;
/// Members logged in before the measurements (see the test).
const ABSORB: usize = 1000;
const SLACK: u64 = 128 * 1024;

#[test]
fn an_idle_websocket_member_costs_at_most_twice_a_plain_one() {
    let mut server = Server::start(&[
        "--auto-approve",
        "--http-listen",
        "127.0.0.1:0",
        "--max-per-ip",
        "0",
        "--history",
        "0",
        "--max-clients",
        "3000",
    ]);
    let line = server.expect_console("listening on ");
    let web: SocketAddr = line
        .trim_start_matches("listening on ")
        .trim_end_matches(" (HTTP)")
        .parse()
        .unwrap();
    let mut ctl = server.login("ctl");
    // `/sync` is an unknown command: its error answers after everything sent before it.
    let sync = |ctl: &mut Client| {
        ctl.send_line("/sync");
        ctl.skip_until("ERROR unknown-command ");
    };
    // Warm up both paths once (first-use allocations are not per member).
    let mut warm = Ws::connect(web);
    warm.expect("NAME?");
    warm.send_text("warm");
    warm.expect("WELCOME");
    // Heap the server freed at start (its store's set-up) is resident already and would take
    // the first members' allocations unseen: a group of members that is not measured uses it up.
    let absorb: Vec<Client> = (0..ABSORB)
        .map(|i| server.login(&format!("a{i:04}")))
        .collect();
    sync(&mut ctl);
    // Output queues keep spare storage for a second after draining (a time-based limit of the
    // server, not a synchronisation).
    let settle = || thread::sleep(Duration::from_millis(1500));
    settle();
    let rss = |s: &Server| rss_kib(s.pid()) * 1024;
    let empty = rss(&server);
    let mut plain = Vec::new();
    for i in 0..MEMBERS {
        plain.push(server.login(&format!("p{i:03}")));
    }
    sync(&mut ctl);
    settle();
    let with_plain = rss(&server);
    let mut webs = Vec::new();
    for i in 0..MEMBERS {
        let mut w = Ws::connect(web);
        w.expect("NAME?");
        w.send_text(&format!("w{i:03}"));
        w.expect("WELCOME");
        webs.push(w);
    }
    sync(&mut ctl);
    settle();
    let with_web = rss(&server);
    let per_plain = with_plain.saturating_sub(empty) / MEMBERS;
    let per_web = with_web.saturating_sub(with_plain) / MEMBERS;
    eprintln!(
        "RSS empty {} KiB, +{MEMBERS} plain {} KiB, +{MEMBERS} WebSocket {} KiB: \
         {per_plain} B per plain member, {per_web} B per WebSocket member",
        empty / 1024,
        with_plain / 1024,
        with_web / 1024
    );
    assert!(
        with_web.saturating_sub(with_plain)
            <= 2 * with_plain.saturating_sub(empty).max(MEMBERS * 1024) + SLACK,
        "a WebSocket member costs {per_web} B, a plain one {per_plain} B"
    );
    assert!(
        with_plain > empty && with_web > with_plain,
        "the measurement saw no growth: RSS is not measuring the members"
    );
    drop((absorb, plain, webs));
}
