//! Protocol version 3 under `--cluster`: other servers' lines carry their ids and times in the
//! tags; remembered members and bans are the cluster's: an operator approves a person once, on
//! any server, and a ban on one server holds on all of them; a Redis restarted empty is filled
//! again by the servers, so no member needs the operator again.
//!
//! Real `chat-server` binaries (`--data-dir none`, from the test kit) and a real `redis-server`
//! (the test kit's, on a free port, no persistence) over real sockets. Every wait is a read
//! with a deadline: a client's line or a console's.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Shutdown};
use std::time::Duration;

use chat_common::protocol::v3::split_tags;
use chat_testkit as util;
use util::redis::Redis;
use util::{Client, Console, Server};

/// `--cluster-timeout` of the tests that restart Redis: short, so they end soon.
const SHORT: &str = "2";

/// A server of the room on `redis`, its console piped, once it is in the room.
fn node(redis: &Redis, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--cluster", url.as_str(), "--rate", "0"];
    args.extend_from_slice(extra);
    let mut s = Server::start_with(&args, Console::Piped);
    s.expect_console("cluster: in the room as server ");
    s
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A version 3 join that the operator of `server` approves: the member and its token.
#[track_caller]
fn approved_v3(server: &mut Server, name: &str) -> (Client, String) {
    let mut c = server.hello3();
    c.send_line(name);
    c.expect("WAIT ");
    server.expect_console(&format!("join request: {name} from "));
    server.console(&format!("approve {name}"));
    c.expect_welcome(name);
    let token = c.expect("TOKEN ");
    (c, token.trim_start_matches("TOKEN ").to_owned())
}

/// `RESUME name token -` on `server`: the client once it is welcomed (no operator asked).
#[track_caller]
fn resumed(server: &Server, name: &str, token: &str) -> Client {
    let mut c = server.hello3();
    c.send_line(&format!("RESUME {name} {token} -"));
    c.expect_welcome(name);
    c.expect("TOKEN ");
    c
}

/// Cuts a client's connection as a network would (no `/leave`).
fn cut(c: Client) {
    c.stream().shutdown(Shutdown::Both).unwrap_or(());
}

#[test]
fn a_member_approved_on_one_server_resumes_on_another_with_no_operator() {
    let redis = Redis::start();
    // No resume window: a dropped member leaves at once, and comes back as a remembered one.
    let mut s1 = node(&redis, &["--resume-window", "0"]);
    let mut s2 = node(&redis, &["--resume-window", "0"]);
    let mut alice = s2.approved("alice");
    let (mut bob, token) = approved_v3(&mut s1, "bob");
    alice.skip_until("JOIN bob");
    // The record went out before bob's first line, so s2 has it once alice sees the line.
    bob.send_line("hi");
    alice.expect_exact("MSG bob - hi");
    cut(bob);
    alice.expect_exact("LEAVE bob quit");

    // WELCOME at once: nobody typed `approve` (a join that needed it would get WAIT).
    let mut again = resumed(&s2, "bob", &token);
    s2.expect_console("remembered bob joined");
    alice.expect_exact("JOIN bob");
    again.skip_until("INFO online (2)");
    again.send_line("back");
    alice.expect_exact("MSG bob - back");
}

#[test]
fn a_member_forgotten_on_one_server_is_refused_by_every_server() {
    let redis = Redis::start();
    let mut s1 = node(&redis, &["--resume-window", "0"]);
    let mut s2 = node(&redis, &["--resume-window", "0"]);
    let (bob, token) = approved_v3(&mut s1, "bob");
    cut(bob);
    s1.expect_console("left bob");
    s1.console("forget bob");
    s1.expect_console("forgot bob (by stdin)");
    s2.expect_console("forgot bob (on server ");
    for server in [&s1, &s2] {
        let mut c = server.hello3();
        c.send_line(&format!("RESUME bob {token} -"));
        c.expect("ERROR bad-token ");
        c.expect("NAME? ");
    }
}

#[test]
fn a_member_whose_server_died_resumes_on_another_once_the_room_frees_its_name() {
    let redis = Redis::start();
    let timeout = ["--cluster-timeout", SHORT, "--resume-window", "60"];
    let mut s1 = node(&redis, &timeout);
    let mut s2 = node(&redis, &timeout);
    let mut alice = s2.approved("alice");
    let (mut bob, token) = approved_v3(&mut s1, "bob");
    alice.skip_until("JOIN bob");
    bob.send_line("hi");
    alice.expect_exact("MSG bob - hi");
    s1.signal("KILL");
    // bob's client goes to s2 at once: its name is s1's until s1 is declared dead, so the
    // RESUME waits for it rather than being refused.
    let mut again = s2.hello3();
    again.send_line(&format!("RESUME bob {token} -"));
    let within = Duration::from_secs(3 * 2 + 5);
    match again.try_next_line(within) {
        Ok(line) => assert!(line.starts_with("WELCOME bob "), "{line}"),
        Err(e) => panic!("no WELCOME within {within:?}: {e:?}"),
    }
    again.expect("TOKEN ");
    s2.expect_console("remembered bob joined");
    alice.skip_until("JOIN bob");
}

#[test]
fn a_remembered_name_resumed_while_another_server_has_it_takes_that_session_over() {
    let redis = Redis::start();
    let timeout = ["--cluster-timeout", SHORT, "--resume-window", "0"];
    let mut s1 = node(&redis, &timeout);
    let mut s2 = node(&redis, &timeout);
    let mut alice = s2.approved("alice");
    let (mut bob, token) = approved_v3(&mut s1, "bob");
    alice.skip_until("JOIN bob");
    bob.send_line("hi");
    alice.expect_exact("MSG bob - hi");
    // bob is still a member on s1: its token on s2 takes that session over through the room's
    // log (never a second bob in the room), long before the name could be freed otherwise.
    let mut twin = s2.hello3();
    let asked = std::time::Instant::now();
    twin.send_line(&format!("RESUME bob {token} -"));
    match twin.try_next_line(Duration::from_secs(2 * 2 + 5)) {
        Ok(line) => assert!(line.starts_with("WELCOME bob "), "{line}"),
        Err(e) => panic!("no answer: {e:?}"),
    }
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "it did not wait for a timeout"
    );
    twin.expect("TOKEN ");
    bob.skip_until("BYE resumed elsewhere");
    s1.expect_console("bob resumed on server ");
    s2.expect_console("resumed bob");
    twin.skip_until("INFO online (2)");
    // The room saw nothing of the move: alice's next line is bob's, from its new server.
    twin.send_line("still one");
    alice.expect_exact("MSG bob - still one");
}

#[test]
fn a_ban_on_one_server_cuts_and_refuses_the_address_on_every_server() {
    let redis = Redis::start();
    let mut s1 = node(&redis, &["--auto-approve"]);
    let mut s2 = node(&redis, &["--auto-approve"]);
    let mut watcher = s2.login("watcher");
    let mut there = Client::connect_from(s2.addr(), ip("127.0.0.3"));
    there.login("there");
    watcher.skip_until("JOIN there");
    s1.console("ban 127.0.0.3 1h spamming");
    s1.expect_console("banned 127.0.0.3 ");
    let line = s2.expect_console("banned 127.0.0.3 ");
    assert!(
        line.contains("(by stdin on server ") && line.contains("1 connections cut here"),
        "{line}"
    );
    there.skip_until("BYE your address was banned: spamming");
    watcher.skip_until("LEAVE there kicked");
    let mut again = Client::connect_from(s2.addr(), ip("127.0.0.3"));
    again.expect("DENIED your address is banned");
    let bans = s2.console_reply("bans");
    assert_eq!(bans[0], "bans: 1", "{bans:?}");
    assert!(
        bans[1].contains("left"),
        "the end of the ban is shared: {bans:?}"
    );

    s1.console("unban 127.0.0.3");
    s2.expect_console("unbanned 127.0.0.3");
    let mut back = Client::connect_from(s2.addr(), ip("127.0.0.3"));
    back.login("back");
}

#[test]
fn a_redis_restarted_empty_is_filled_again_and_no_member_needs_the_operator() {
    let mut redis = Redis::start();
    let timeout = ["--cluster-timeout", SHORT, "--resume-window", "0"];
    let mut s1 = node(&redis, &timeout);
    let mut s2 = node(&redis, &timeout);
    let (dave, dave_token) = approved_v3(&mut s1, "dave");
    cut(dave);
    s1.expect_console("left dave");
    let (mut bob, bob_token) = approved_v3(&mut s1, "bob");

    redis.restart_empty();
    bob.skip_until("BYE the server lost its cluster; reconnect");
    s1.expect_console("cluster: in the room as server ");
    s2.expect_console("cluster: in the room as server ");
    // Back in the room: bob comes back with no operator. s1's claim for it went to Redis after
    // s1 wrote back what Redis had lost, so the records are in Redis once bob is welcomed.
    let mut bob = resumed(&s1, "bob", &bob_token);
    s1.expect_console("remembered bob joined");
    // A server that never saw dave learns it from Redis alone (the log of before is gone).
    let mut s3 = node(&redis, &timeout);
    let mut dave = resumed(&s3, "dave", &dave_token);
    s3.expect_console("remembered dave joined");
    bob.skip_until("JOIN dave");
    dave.send_line("no operator needed");
    let line = bob.next_line();
    assert_eq!(split_tags(&line).1, "MSG dave - no operator needed");
    drop(s2);
}

#[test]
fn lines_from_another_server_carry_the_origin_s_id_and_time_in_the_tags_and_privates_an_echo() {
    let redis = Redis::start();
    let s1 = node(&redis, &["--auto-approve"]);
    let s2 = node(&redis, &["--auto-approve"]);
    let mut far = s2.hello3();
    far.send_line("far");
    far.expect_welcome("far");
    far.expect("TOKEN ");
    let mut near = s1.hello3();
    near.send_line("near");
    near.expect_welcome("near");
    near.expect("TOKEN ");
    far.skip_until("JOIN near");
    near.send_line("hello over there");
    let echo = near.skip_until("ECHO ");
    let id = echo.trim_start_matches("ECHO ");
    let line = far.skip_until("@");
    let (tags, rest) = split_tags(&line);
    let tags = tags.unwrap_or_else(|| panic!("no tags in {line:?}"));
    assert_eq!(rest, "MSG near - hello over there");
    assert_eq!(tags.id(), Some(id), "the origin's id: {line}");
    assert!(tags.time().is_some(), "{line}");
    // A private across servers: kept and echoed like any, tagged with the same id.
    near.send_line("/private far psst");
    let echo = near.skip_until("ECHO ");
    let id = echo.trim_start_matches("ECHO ");
    let line = far.skip_until("@");
    let (tags, rest) = split_tags(&line);
    assert_eq!(rest, "PRIV near far - psst");
    assert_eq!(tags.and_then(|t| t.id()), Some(id), "{line}");
    // A version 2 member of either server sees no tags.
    let mut plain = s2.login("plain");
    near.send_line("again");
    plain.skip_until("MSG near - again");
}

#[test]
fn forget_records_older_than_the_remember_bound_are_dropped_from_redis() {
    let redis = Redis::start();
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let day = 86_400_000;
    let members = "chat:{chat}:members";
    let records = [
        // Forgotten 31 days ago: past --remember 30, no server admits its token any more.
        ("gone", format!("{}\tF\tgone\t", now_ms - 31 * day)),
        // Forgotten 29 days ago: a server may still hold a record it must void.
        ("kept", format!("{}\tF\tkept\t", now_ms - 29 * day)),
        // A remembered member, however old, is no forget.
        (
            "member",
            format!(
                "{}\tT\tmember\t{}\t5\tstdin",
                now_ms - 40 * day,
                "ab".repeat(32)
            ),
        ),
    ];
    for (name, value) in &records {
        let _: () = redis::cmd("HSET")
            .arg(members)
            .arg(name)
            .arg(value)
            .query(&mut con)
            .unwrap();
    }
    let s1 = node(&redis, &["--auto-approve", "--remember", "30"]);
    // The writer prunes right after its join, before any later request of the server: once a
    // join has claimed its name in Redis, the prune has run.
    s1.login("someone");
    let left: Vec<String> = redis::cmd("HKEYS")
        .arg(members)
        .query::<Vec<String>>(&mut con)
        .unwrap()
        .into_iter()
        .filter(|k| k != "someone")
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["kept", "member"]);
}
