//! Exact `RESUME` across the servers of a cluster: every server delivers the room's messages in
//! one order (the room log's), keeps every server's lines under their origin's ids, and so a
//! member cut off on one server resumes on another and gets exactly the `MSG`/`ACT`/`PRIV` it
//! missed, once each, in the order the others saw them, with no `GAP`.
//!
//! Real `chat-server` binaries and a real `redis-server` (the test kit's, on a free port) over
//! real sockets. Every wait is a read with a deadline.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::Shutdown;
use std::time::Duration;

use chat_common::protocol::v3::split_tags;
use chat_testkit as util;
use util::redis::Redis;
use util::{Client, Console, Server, TempDir};

/// A server of the room on `redis` that admits joins by itself, once it is in the room.
fn node(redis: &Redis, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--cluster", url.as_str(), "--rate", "0", "--auto-approve"];
    args.extend_from_slice(extra);
    let mut s = Server::start_with(&args, Console::Piped);
    s.expect_console("cluster: in the room as server ");
    s
}

/// One message as a member got it: its id, and the line after the tags (`ECHO` for the echo
/// of its own).
type Seen = (String, String);

/// Reads `c`'s lines until it has seen `n` messages (tagged lines, and echoes of its own);
/// other lines (`JOIN`, `LEAVE`, `INFO`) are passed over.
#[track_caller]
fn seen(c: &mut Client, n: usize) -> Vec<Seen> {
    let mut got = Vec::new();
    while got.len() < n {
        let line = c.next_line();
        if let Some(id) = line.strip_prefix("ECHO ") {
            got.push((id.to_owned(), "ECHO".to_owned()));
            continue;
        }
        let (tags, rest) = split_tags(&line);
        if let Some(id) = tags.and_then(|t| t.id()) {
            got.push((id.to_owned(), rest.to_owned()));
        }
    }
    got
}

fn ids(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|(id, _)| id.clone()).collect()
}

/// The room's messages among `seen` (privates left out: each member sees only its own).
fn room(seen: &[Seen], privates: &HashSet<String>) -> Vec<String> {
    seen.iter()
        .filter(|(id, rest)| !rest.starts_with("PRIV ") && !privates.contains(id))
        .map(|(id, _)| id.clone())
        .collect()
}

/// The ids of every private any of `views` got (the recipient sees it tagged).
fn privates(views: &[&[Seen]]) -> HashSet<String> {
    views
        .iter()
        .flat_map(|v| v.iter())
        .filter(|(_, rest)| rest.starts_with("PRIV "))
        .map(|(id, _)| id.clone())
        .collect()
}

/// `RESUME name token last` on `server`: the member and its replay (each line's id and text),
/// read up to the member list that ends it. Fails on a `GAP`, or a replayed line without an id.
#[track_caller]
fn resume(
    server: &Server,
    name: &str,
    token: &str,
    last: &str,
    within: Duration,
) -> (Client, Vec<Seen>) {
    let mut c = server.hello3();
    c.send_line(&format!("RESUME {name} {token} {last}"));
    match c.try_next_line(within) {
        Ok(line) => assert!(line.starts_with(&format!("WELCOME {name} ")), "{line}"),
        Err(e) => panic!("no WELCOME within {within:?}: {e:?}"),
    }
    c.expect("TOKEN ");
    let mut replay = Vec::new();
    loop {
        let line = c.next_line();
        if line.starts_with("INFO online") {
            return (c, replay);
        }
        assert!(!line.starts_with("GAP"), "no message was lost: {line}");
        let (tags, rest) = split_tags(&line);
        let id = tags
            .and_then(|t| t.id())
            .unwrap_or_else(|| panic!("a replayed line without an id: {line:?}"));
        assert!(rest.starts_with("HIST "), "{line}");
        replay.push((id.to_owned(), rest.to_owned()));
    }
}

/// Several members on both servers talk at once (`MSG`, `ACT`, privates to and from `alice`),
/// each read by every member: what each saw, in its order.
struct Burst {
    alice: Vec<Seen>,
    bob: Vec<Seen>,
    carol: Vec<Seen>,
    dave: Vec<Seen>,
}

/// alice and bob are on one server, carol and dave on the other.
fn burst(alice: &mut Client, bob: &mut Client, carol: &mut Client, dave: &mut Client) -> Burst {
    for i in 1..=3 {
        bob.send_line(&format!("b{i}"));
        carol.send_line(&format!("c{i}"));
    }
    alice.send_line("/private bob from alice");
    carol.send_line("/private alice from carol");
    dave.send_line("/me d1");
    // Room: b1-3, c1-3, d1 (7); alice's private (1); carol's private (1).
    Burst {
        alice: seen(alice, 9),
        bob: seen(bob, 8),
        carol: seen(carol, 8),
        dave: seen(dave, 7),
    }
}

#[test]
fn a_member_cut_off_on_one_server_resumes_on_another_and_gets_exactly_what_it_missed() {
    let redis = Redis::start();
    let mut s1 = node(&redis, &["--resume-window", "60"]);
    let data = TempDir::new("cluster-resume");
    let s2 = node(&redis, &["--resume-window", "60", "--data-dir", data.arg()]);
    let (mut alice, token) = s1.login_v3("alice");
    let (mut bob, _) = s1.login_v3("bob");
    let (mut carol, _) = s2.login_v3("carol");
    let (mut dave, _) = s2.login_v3("dave");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.skip_until("JOIN dave");
    }
    bob.send_line("x");
    let last = seen(&mut alice, 1)[0].0.clone();
    for c in [&mut bob, &mut carol, &mut dave] {
        seen(c, 1);
    }

    let before = burst(&mut alice, &mut bob, &mut carol, &mut dave);
    let privs = privates(&[&before.alice, &before.bob]);
    assert_eq!(privs.len(), 2, "{:?} {:?}", before.alice, before.bob);
    // One order for the whole room: every member of both servers saw the same sequence (its
    // own lines in it as their echoes).
    let order = room(&before.dave, &privs);
    assert_eq!(order.len(), 7);
    assert_eq!(room(&before.alice, &privs), order, "alice (server 1)");
    assert_eq!(room(&before.bob, &privs), order, "bob (server 1)");
    assert_eq!(room(&before.carol, &privs), order, "carol (server 2)");

    alice.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(alice);
    // Kept in the room within its window on server 1: nobody sees it leave, and a private
    // to it from the other server is kept for it.
    s1.expect_console("dropped alice: kept in the room");
    bob.send_line("b4");
    carol.send_line("/private alice while you were away");
    carol.send_line("c4");
    dave.send_line("/me d2");
    // carol sees the three room lines and the echo of its private, in the room's order.
    let after = seen(&mut carol, 4);
    let dave_after = ids(&seen(&mut dave, 3));
    assert_eq!(ids(&seen(&mut bob, 3)), dave_after, "one order");
    let carol_room: Vec<String> = ids(&after)
        .into_iter()
        .filter(|id| dave_after.contains(id))
        .collect();
    assert_eq!(carol_room, dave_after, "one order");
    assert_eq!(after.len(), 4, "and carol's private: {after:?}");

    // alice saw everything of the burst; say it saw only `x`: the replay on the other server
    // is what it saw after `x` on its own (its privates both ways included), then what was
    // said while it was away, each once, in the room's order. Its session on server 1 (within
    // its window there) is handed over at once: no waiting for the window to end.
    let (mut again, replay) = resume(&s2, "alice", &token, &last, Duration::from_secs(10));
    s1.expect_console("alice resumed on server ");
    let mut want = ids(&before.alice);
    want.extend(ids(&after));
    assert_eq!(ids(&replay), want, "{replay:#?}");
    let texts: Vec<&str> = replay
        .iter()
        .map(|(_, rest)| rest.split_once(' ').map_or("", |(_, r)| r))
        .map(|r| r.split_once(' ').map_or("", |(_, r)| r))
        .collect();
    for line in [
        "MSG bob - b1",
        "MSG carol - c3",
        "ACT dave d1",
        "PRIV alice bob - from alice",
        "PRIV carol alice - from carol",
        "MSG bob - b4",
        "PRIV carol alice - while you were away",
        "ACT dave d2",
    ] {
        assert_eq!(
            texts.iter().filter(|t| **t == line).count(),
            1,
            "{line} once in {texts:?}"
        );
    }
    // Nobody saw alice leave or join: the next line each member gets is alice's.
    again.send_line("back");
    for c in [&mut bob, &mut carol, &mut dave] {
        assert_eq!(split_tags(&c.next_line()).1, "MSG alice - back");
    }
}

#[test]
fn a_member_whose_server_was_killed_resumes_on_another_with_exactly_what_it_missed() {
    let redis = Redis::start();
    let timeout = ["--cluster-timeout", "3", "--resume-window", "60"];
    let s1 = node(&redis, &timeout);
    let data = TempDir::new("cluster-resume-kill");
    let mut args = timeout.to_vec();
    args.extend_from_slice(&["--data-dir", data.arg()]);
    let s2 = node(&redis, &args);
    let (mut alice, token) = s1.login_v3("alice");
    let (mut bob, _) = s1.login_v3("bob");
    let (mut carol, _) = s2.login_v3("carol");
    let (mut dave, _) = s2.login_v3("dave");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.skip_until("JOIN dave");
    }
    bob.send_line("x");
    let last = seen(&mut alice, 1)[0].0.clone();
    for c in [&mut bob, &mut carol, &mut dave] {
        seen(c, 1);
    }
    let before = burst(&mut alice, &mut bob, &mut carol, &mut dave);
    let privs = privates(&[&before.alice, &before.bob]);
    assert_eq!(room(&before.alice, &privs), room(&before.dave, &privs));

    s1.signal("KILL");
    alice.expect_closed();
    // Server 1 is not yet declared dead (that takes the cluster timeout): alice is still a
    // member of the room, and a private to it is kept for its resume.
    carol.send_line("/private alice while you were out");
    carol.send_line("after the crash");
    let after = seen(&mut carol, 2);
    assert!(after.iter().all(|(_, what)| what == "ECHO"), "{after:?}");

    let (_, replay) = resume(&s2, "alice", &token, &last, Duration::from_secs(3 * 2 + 5));
    let mut want = ids(&before.alice);
    want.extend(ids(&after));
    assert_eq!(ids(&replay), want, "{replay:#?}");
    assert!(
        replay[replay.len() - 2]
            .1
            .ends_with(" PRIV carol alice - while you were out"),
        "{replay:#?}"
    );
}

#[test]
fn a_resume_across_a_time_its_server_was_out_of_the_room_says_gap() {
    let redis = Redis::start();
    let s1 = node(&redis, &["--resume-window", "0"]);
    let data = TempDir::new("cluster-resume-hole");
    let args = ["--resume-window", "0", "--data-dir", data.arg()];
    let s2 = node(&redis, &args);
    let (mut alice, token) = s1.login_v3("alice");
    let (mut bob, _) = s1.login_v3("bob");
    let (mut carol, _) = s2.login_v3("carol");
    alice.skip_until("JOIN carol");
    bob.skip_until("JOIN carol");
    bob.send_line("x");
    let last = seen(&mut alice, 1)[0].0.clone();
    seen(&mut carol, 1); // server 2 logged it
    s2.signal("KILL");
    drop(s2);
    carol.expect_closed();
    bob.send_line("while server 2 was down");
    seen(&mut alice, 1);
    // Server 2 again, on its directory: its log has `x`, then a hole, then what follows.
    let s2 = node(&redis, &args);
    let (mut dave, _) = s2.login_v3("dave");
    bob.send_line("after");
    // dave's history first (server 2 seeds it from the room), then the line: logged there.
    while split_tags(&dave.next_line()).1 != "MSG bob - after" {}
    alice.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(alice);
    dave.skip_until("LEAVE alice");

    let mut again = s2.hello3();
    again.send_line(&format!("RESUME alice {token} {last}"));
    again.expect_welcome("alice");
    again.expect("TOKEN ");
    let mut got = Vec::new();
    loop {
        let line = again.next_line();
        if line.starts_with("INFO online") {
            break;
        }
        got.push(split_tags(&line).1.to_owned());
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("GAP "),
        "the line sent meanwhile is not here: {got:?}"
    );
    assert!(got[1].ends_with(" MSG bob - after"), "{got:?}");
}
