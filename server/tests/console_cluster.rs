//! The consoles of a cluster (`--cluster`): servers named by `--cluster-name`, a waiting join
//! that shows its server, a line when a server joins or leaves, a duplicate name refused
//! loudly, and a start with Redis unreachable said on the console. Real servers and a real
//! `redis-server` (scripts/test.sh installs it).
#![allow(clippy::unwrap_used)]

use chat_testkit::redis::Redis;
use chat_testkit::{Console, Server};

#[track_caller]
fn node(redis: &Redis, name: &str, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec![
        "--cluster",
        url.as_str(),
        "--cluster-name",
        name,
        "--cluster-timeout",
        "2",
    ];
    args.extend_from_slice(extra);
    let mut s = Server::start_with(&args, Console::Piped);
    s.expect_console(&format!("cluster: in the room as server {name} "));
    s
}

#[test]
fn servers_are_named_and_their_comings_and_goings_are_shown() {
    let redis = Redis::start();
    let mut one = node(&redis, "one", &[]);
    let mut two = node(&redis, "two", &[]);
    one.expect_console("cluster: server two joined the room");
    // A join waiting on two shows its server on one's console.
    let (_joiner, _) = two.join_waiting("uma");
    let line = one.expect_console("join request: uma from ");
    assert!(line.contains(" on server two "), "{line}");
    one.console("pending");
    let row = one.expect_console("  uma from ");
    assert!(row.ends_with("on server two"), "{row}");
    // A second server with a live name does not join, and says why.
    let url = redis.url();
    let mut dup = Server::start_with(
        &["--cluster", &url, "--cluster-name", "two"],
        Console::Piped,
    );
    let why = dup.expect_console("cluster: cannot join the room: ");
    assert!(why.contains("named two"), "{why}");
    drop(dup);
    // two stops: one says so.
    two.console("quit");
    one.expect_console("cluster: server two left the room");
}

#[test]
fn a_start_with_redis_unreachable_is_said_on_the_console() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let url = format!("redis://127.0.0.1:{port}");
    let mut s = Server::start_with(
        &["--cluster", &url, "--cluster-name", "lonely"],
        Console::Piped,
    );
    let line = s.expect_console("cluster: cannot join the room: ");
    assert!(line.contains("joins are refused until it can"), "{line}");
}

#[test]
fn cluster_names_are_checked_at_start() {
    let (status, _, stderr) = Server::run_to_exit(
        &["--cluster", "redis://127.0.0.1:1", "--cluster-name", "a b"],
        chat_testkit::TIMEOUT,
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--cluster-name"), "{stderr}");
}

#[test]
fn decisions_across_servers_carry_the_console_and_the_reason() {
    let redis = Redis::start();
    let mut one = node(&redis, "one", &[]);
    let mut two = node(&redis, "two", &[]);
    let (mut uma, _) = two.join_waiting("uma");
    one.expect_console("join request: uma from ");
    one.console("approve uma");
    one.expect_console("approve uma: asked server two, where it waits");
    two.expect_console("approved uma (by stdin on server one; ");
    uma.expect_welcome("uma");
    // one knows uma as a member of two once the room's log says so.
    one.expect_console("approved uma on server two");
    one.console("kick uma spamming");
    uma.skip_until("BYE kicked by the operator: spamming");
    two.expect_console("kicked uma (by stdin on server one): spamming");
}
