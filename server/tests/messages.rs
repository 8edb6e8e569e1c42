//! Room and private messages and the commands that send them, against the real `chat-server`
//! binary: `/me` and `ACT`, the `/msg` and `/quit` aliases, and private messages that reach
//! exactly their recipient under load.
//!
//! "Nothing arrives" is proven with a marker: after the action that must not reach a member, a
//! room message is sent and must be that member's very next line.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::thread;
use std::time::Duration;

use chat_testkit::{
    expect_fds_back, expect_memory_bounded, fd_baseline, heavy, marker, room, rss_kib, Client,
    Failures, Server, FAULT_RSS_BUDGET_KIB, SETTLE,
};

#[test]
fn private_messages_reach_exactly_their_recipient_under_load() {
    let _lock = heavy();
    const MEMBERS: usize = 50;
    const ROUNDS: usize = 120;
    let server = Server::start(&["--auto-approve", "--rate", "0"]);
    let pid = server.pid();
    let rss_before = rss_kib(pid);
    let baseline = fd_baseline(&server);
    // Names in mixed case; the same name in another case cannot join while the first is there.
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("Pm{i:02}")).collect();
    let mut clients: Vec<Client> = names.iter().map(|n| server.login(n)).collect();
    let mut bob = server.login("Bob");
    let mut other = server.connect_prompted();
    for taken in ["bob", "BOB", "pm07", "PM49"] {
        other.send_line(taken);
        other.expect("ERROR name-taken ");
        other.expect("NAME? ");
    }
    drop(other);
    // Whoever joined later, every member has read everything so far.
    bob.send_line("/leave");
    bob.skip_until("BYE ");
    drop(bob);
    for c in clients.iter_mut() {
        c.skip_until("LEAVE Bob left");
    }

    // Member i sends, in round r, a private message to member (i + 1 + r) % 50 (addressed in
    // another case every other time) and every 4th round a room message; then `done`.
    let target = |i: usize, r: usize| (i + 1 + r % (MEMBERS - 1)) % MEMBERS;
    let failures = Failures::default();
    let mut handles = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let names = names.clone();
        let failures = failures.clone();
        let writer = c.stream().try_clone().unwrap();
        let send_names = names.clone();
        // The writer runs alongside the reader so private and room traffic interleave.
        handles.push(thread::spawn(move || {
            let mut w = writer;
            for r in 0..ROUNDS {
                let to = &send_names[target(i, r)];
                let addressed = if r % 2 == 0 {
                    to.to_ascii_uppercase()
                } else {
                    to.to_ascii_lowercase()
                };
                let mut out = format!("/private {addressed} p {i} {r}\n");
                if r % 4 == 0 {
                    out.push_str(&format!("room {i} {r}\n"));
                }
                w.write_all(out.as_bytes()).unwrap();
            }
            w.write_all(format!("done {i}\n").as_bytes()).unwrap();
        }));
        handles.push(thread::spawn(move || {
            let mut c = c;
            let me = names[i].clone();
            let mut privs = vec![0usize; MEMBERS];
            let mut rooms = vec![0usize; MEMBERS];
            let mut done = 0;
            while done < MEMBERS - 1 {
                let line = match c.try_next_line(Duration::from_secs(20)) {
                    Ok(l) => l,
                    Err(e) => {
                        failures.push(format!("{me}: {e:?} with {done} done"));
                        return;
                    }
                };
                let words: Vec<&str> = line.split(' ').collect();
                match words.as_slice() {
                    ["PRIV", from, to, "-", "p", si, sr] => {
                        let (si, sr): (usize, usize) = (si.parse().unwrap(), sr.parse().unwrap());
                        if *to != me || target(si, sr) != i || *from != names[si] {
                            failures.push(format!("{me} got someone else's {line:?}"));
                        }
                        privs[si] += 1;
                    }
                    ["MSG", from, "-", "room", si, sr] => {
                        let (si, sr): (usize, usize) = (si.parse().unwrap(), sr.parse().unwrap());
                        if *from != names[si] || sr != rooms[si] * 4 {
                            failures.push(format!("{me}: room message out of order {line:?}"));
                        }
                        rooms[si] += 1;
                    }
                    ["MSG", _, "-", "done", _] => done += 1,
                    _ => failures.push(format!("{me}: unexpected {line:?}")),
                }
            }
            for s in 0..MEMBERS {
                if s == i {
                    continue;
                }
                let want = (0..ROUNDS).filter(|&r| target(s, r) == i).count();
                if privs[s] != want {
                    failures.push(format!("{me} got {} of {want} from {}", privs[s], names[s]));
                }
                if rooms[s] != ROUNDS.div_ceil(4) {
                    failures.push(format!(
                        "{me} got {} room lines from {}",
                        rooms[s], names[s]
                    ));
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    failures.assert_none("privacy under load");
    expect_fds_back(&server, baseline, SETTLE);
    expect_memory_bounded(
        &server,
        "privacy under load",
        rss_before,
        FAULT_RSS_BUDGET_KIB,
    );
    eprintln!(
        "privacy: {MEMBERS} members, {} private and {} room messages, each private to exactly its recipient",
        MEMBERS * ROUNDS,
        MEMBERS * ROUNDS.div_ceil(4)
    );
}

#[test]
fn me_sends_act_to_every_other_member_but_not_the_sender() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "b", "c"]);
    c[0].send_line("/me waves **hard** at ~~everyone~~");
    c[1].expect_exact("ACT a waves **hard** at ~~everyone~~");
    c[2].expect_exact("ACT a waves **hard** at ~~everyone~~");
    // Leading spaces after the command are not part of the action.
    c[2].send_line("/me   nods");
    c[0].expect_exact("ACT c nods");
    c[1].expect_exact("ACT c nods");
    // Neither actor got its own ACT back: each one's next line is a marker from someone else.
    let (a, rest) = c.split_at_mut(1);
    let (b, cc) = rest.split_at_mut(1);
    marker(&mut b[0], &mut [&mut a[0], &mut cc[0]], "after the actions");
}

#[test]
fn me_without_text_is_a_usage_error_and_reaches_nobody() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "b"]);
    for line in ["/me", "/me ", "/me    "] {
        c[0].send_line(line);
        let got = c[0].next_line();
        assert!(
            got.starts_with("ERROR usage "),
            "{line:?} should give ERROR usage, got {got:?}"
        );
    }
    let (a, b) = c.split_at_mut(1);
    marker(&mut a[0], &mut [&mut b[0]], "no ACT came first");
}

#[test]
fn msg_is_the_same_as_private() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "Bob", "c"]);
    c[0].send_line("/msg bob psst **secret**");
    c[1].expect_exact("PRIV a Bob - psst **secret**");
    c[0].send_line("/MSG Bob /color Red red secret");
    c[1].expect_exact("PRIV a Bob red red secret");
    c[0].send_line("/msg ghost hello");
    c[0].expect("ERROR no-such-user ");
    for (line, code) in [
        ("/msg", "ERROR usage "),
        ("/msg bob", "ERROR usage "),
        ("/msg bob /color pink hi", "ERROR bad-color "),
    ] {
        c[0].send_line(line);
        let got = c[0].next_line();
        assert!(
            got.starts_with(code),
            "{line:?} gave {got:?}, want {code:?}"
        );
    }
    let (a, rest) = c.split_at_mut(1);
    let (b, cc) = rest.split_at_mut(1);
    marker(&mut b[0], &mut [&mut a[0], &mut cc[0]], "only bob got them");
}

#[test]
fn quit_is_the_same_as_leave() {
    let mut server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "b", "c"]);
    c[0].send_line("/quit now");
    c[0].expect("ERROR usage ");
    c[0].send_line("/quit");
    c[0].expect("BYE ");
    c[0].expect_eof();
    c[1].expect_exact("LEAVE a left");
    c[2].expect_exact("LEAVE a left");
    server.expect_console("left a (left)");
    c[1].send_line("/who");
    let who = c[1].expect("INFO online (2): ");
    assert!(!who.contains(" a,") && !who.ends_with(" a"), "{who:?}");
}
