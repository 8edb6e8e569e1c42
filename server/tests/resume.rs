//! Sessions that outlive a connection (protocol version 3): `HELLO 3`, tags and ids, `ECHO`,
//! `TOKEN`, `RESUME` within the window (the member never left) and after it (a remembered
//! member skips the operator), takeover of a live session, `kick`/`forget` voiding the token,
//! and bad or guessed tokens. The real binary over real sockets.

use std::net::Shutdown;
use std::time::Duration;

use chat_common::protocol::v3::split_tags;
use chat_testkit::{Server, TempDir};

fn token_of(line: &str) -> String {
    line.strip_prefix("TOKEN ").unwrap_or_default().to_owned()
}

/// The tag prefix's id and the line after it; fails when there is no id.
#[track_caller]
fn tagged(line: &str) -> (String, String) {
    let (tags, rest) = split_tags(line);
    let id = tags
        .and_then(|t| t.id())
        .unwrap_or_else(|| panic!("no id tag in {line:?}"));
    (id.to_owned(), rest.to_owned())
}

#[test]
fn v3_sessions_get_tags_echo_and_a_token_while_v2_sees_version_2() {
    let server = Server::start(&["--auto-approve"]);
    let (mut alice, token) = server.login_v3("alice");
    assert!(token.len() >= 22, "{token}");
    let mut bob = server.login("bob");
    alice.expect("JOIN bob");
    bob.send_line("hi");
    let (id1, rest) = tagged(&alice.next_line());
    assert_eq!(rest, "MSG bob - hi");
    alice.send_line("/me waves");
    let echo = alice.expect("ECHO ");
    assert_eq!(
        bob.next_line(),
        "ACT alice waves",
        "a version 2 member sees no tags"
    );
    let id2 = echo.strip_prefix("ECHO ").unwrap_or_default().to_owned();
    assert_ne!(id1, id2);
    alice.send_line("/private bob psst");
    alice.expect("ECHO ");
    assert_eq!(bob.next_line(), "PRIV alice bob - psst");
    bob.send_line("/private alice back");
    let (_, rest) = tagged(&alice.next_line());
    assert_eq!(rest, "PRIV bob alice - back");
    // History for a newcomer in version 3 carries the original ids.
    let (mut carol, _) = server.login_v3("carol");
    let (hid, rest) = tagged(&carol.next_line());
    assert_eq!(hid, id1);
    assert!(
        rest.starts_with("HIST ") && rest.ends_with(" MSG bob - hi"),
        "{rest}"
    );
    let (hid, rest) = tagged(&carol.next_line());
    assert_eq!(hid, id2);
    assert!(rest.ends_with(" ACT alice waves"), "{rest}");
}

#[test]
fn a_member_cut_off_resumes_within_the_window_and_misses_nothing() {
    let server = Server::start(&["--auto-approve", "--resume-window", "30"]);
    let (mut alice, token) = server.login_v3("alice");
    let mut bob = server.login("bob");
    alice.expect("JOIN bob");
    bob.send_line("one");
    let (last, _) = tagged(&alice.next_line());
    alice.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(alice);
    bob.send_line("two");
    bob.send_line("/me three");
    bob.send_line("/private alice four");
    bob.send_line("/who");
    let who = bob.skip_until("INFO ");
    assert!(who.contains("alice"), "the member never left: {who}");

    let mut again = server.hello3();
    again.send_line(&format!("RESUME alice {token} {last}"));
    again.expect_welcome("alice");
    let new_token = token_of(&again.expect("TOKEN "));
    assert_ne!(new_token, token);
    let mut missed = Vec::new();
    loop {
        let line = again.next_line();
        if line.starts_with("INFO online") {
            break;
        }
        let (_, rest) = tagged(&line);
        missed.push(rest);
    }
    let bodies: Vec<&str> = missed
        .iter()
        .map(|l| {
            l.split_once(' ')
                .map_or("", |(_, b)| b.split_once(' ').map_or("", |x| x.1))
        })
        .collect();
    assert_eq!(
        bodies,
        ["MSG bob - two", "ACT bob three", "PRIV bob alice - four"],
        "{missed:?}"
    );
    again.send_line("back");
    assert_eq!(
        bob.next_line(),
        "MSG alice - back",
        "bob saw no LEAVE or JOIN for alice"
    );
    // The old token is void.
    let mut thief = server.hello3();
    thief.send_line(&format!("RESUME alice {token} -"));
    thief.expect("ERROR bad-token ");
    thief.expect("NAME? ");
}

#[test]
fn after_the_window_a_remembered_member_is_admitted_with_no_operator() {
    let dir = TempDir::new("resume-remember");
    let mut server = Server::start(&["--data-dir", dir.arg(), "--resume-window", "1"]);
    let mut alice = server.hello3();
    alice.send_line("alice");
    alice.expect("WAIT ");
    server.expect_console("join request: alice");
    server.console("approve alice");
    alice.expect_welcome("alice");
    let token = token_of(&alice.expect("TOKEN "));
    alice.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(alice);
    server.expect_console("left alice (quit)");

    let mut again = server.hello3();
    again.send_line(&format!("RESUME alice {token} -"));
    again.expect_welcome("alice");
    let token = token_of(&again.expect("TOKEN "));
    server.expect_console("remembered alice");
    again.send_line("/leave");
    again.skip_until("BYE ");
    drop(again);
    drop(server);

    // And after a restart on the same directory.
    let mut server = Server::start(&["--data-dir", dir.arg()]);
    let mut again = server.hello3();
    again.send_line(&format!("RESUME alice {token} -"));
    again.expect_welcome("alice");
    server.expect_console("remembered alice");
    server.console("members");
    server.expect_console("  alice");
}

#[test]
fn kick_and_forget_void_the_token() {
    let dir = TempDir::new("resume-void");
    let mut server = Server::start(&["--auto-approve", "--data-dir", dir.arg()]);
    let (alice, token) = server.login_v3("alice");
    server.console("kick alice");
    server.expect_console("kicked alice");
    drop(alice);
    let mut again = server.hello3();
    again.send_line(&format!("RESUME alice {token} -"));
    again.expect("ERROR bad-token ");
    again.expect("NAME? ");

    let (bob, token) = server.login_v3("bob");
    drop(bob);
    server.console("forget bob");
    server.expect_console("forgot bob");
    let mut again = server.hello3();
    again.send_line(&format!("RESUME bob {token} -"));
    again.expect("ERROR bad-token ");
    again.expect("NAME? ");
}

#[test]
fn a_live_session_is_taken_over_by_its_resume() {
    let server = Server::start(&["--auto-approve"]);
    let (mut alice, token) = server.login_v3("alice");
    let mut again = server.hello3();
    again.send_line(&format!("RESUME alice {token} -"));
    again.expect_welcome("alice");
    alice.skip_until("BYE resumed elsewhere");
    alice.expect_eof();
}

#[test]
fn a_thousand_guessed_tokens_find_nothing() {
    let server = Server::start(&["--auto-approve", "--rate", "0"]);
    let (_alice, _) = server.login_v3("alice");
    let mut guesser = server.hello3();
    for i in 0..1000u32 {
        guesser.send_line(&format!("RESUME alice guess{i:0>28} -"));
    }
    for _ in 0..1000 {
        guesser.expect("ERROR bad-token ");
        guesser.expect("NAME? ");
    }
    // Malformed lines get clear errors too.
    guesser.send_line("RESUME alice short -");
    guesser.expect("ERROR bad-token ");
    guesser.expect("NAME? ");
    guesser.send_line("HELLO x");
    guesser.expect("ERROR usage ");
    guesser.expect("NAME? ");
    guesser.expect_nothing(Duration::from_millis(100));
}

#[test]
fn nick_carries_the_token_and_a_foreign_last_id_gets_a_gap() {
    let server = Server::start(&["--auto-approve"]);
    let (mut alice, _) = server.login_v3("alice");
    alice.send_line("/nick alicia");
    alice.expect("NICK alice alicia");
    alice.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(alice);
    // The token was issued to alice; /nick moved it to alicia.
    let (mut bob, _) = server.login_v3("bob");
    bob.send_line("/who");
    let who = bob.skip_until("INFO online");
    assert!(who.contains("alicia"), "{who}");
    drop(bob);
    let (_, token) = {
        let mut c = server.hello3();
        c.send_line("carol");
        c.expect_welcome("carol");
        let t = token_of(&c.expect("TOKEN "));
        (c, t)
    };
    let mut again = server.hello3();
    again.send_line(&format!("RESUME carol {token} 00000000-5"));
    again.expect_welcome("carol");
    again.expect("TOKEN ");
    again.expect("GAP ");
}

#[test]
fn a_banned_address_never_reaches_resume() {
    let mut server = Server::start(&["--auto-approve"]);
    let (alice, token) = {
        let mut c = server.connect_from(
            "127.0.0.7"
                .parse()
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 7])),
        );
        c.expect("NAME? ");
        c.send_line("HELLO 3");
        c.expect_exact("HELLO 3");
        c.send_line("alice");
        c.expect_welcome("alice");
        let t = token_of(&c.expect("TOKEN "));
        (c, t)
    };
    drop(alice);
    server.console("ban 127.0.0.7");
    server.expect_console("banned 127.0.0.7");
    let mut c = server.connect_from(std::net::IpAddr::from([127, 0, 0, 7]));
    c.expect("DENIED ");
    let _ = token;
}

/// A resume storm: many version 3 members cut off at once resume at once; every one is back
/// (its replay and `INFO online` read) within a bound, and nobody else saw a `LEAVE`.
#[test]
fn a_resume_storm_settles_quickly() {
    const N: usize = 300;
    let server = Server::start(&["--auto-approve", "--rate", "0", "--max-clients", "2000"]);
    let mut watcher = server.login("watcher");
    let mut members = Vec::new();
    for i in 0..N {
        let (c, token) = server.login_v3(&format!("m{i}"));
        members.push((c, token));
    }
    for i in 0..N {
        watcher.expect(&format!("JOIN m{i}"));
    }
    for (c, _) in &members {
        c.stream().shutdown(Shutdown::Both).unwrap_or(());
    }
    let tokens: Vec<String> = members.into_iter().map(|(_, t)| t).collect();
    let started = std::time::Instant::now();
    let mut again = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let mut c = server.connect();
        c.expect("NAME? ");
        c.send_line("HELLO 3");
        c.send_line(&format!("RESUME m{i} {token} -"));
        again.push(c);
    }
    for (i, c) in again.iter_mut().enumerate() {
        c.expect_exact("HELLO 3");
        c.expect_welcome(&format!("m{i}"));
        c.skip_until("INFO online");
    }
    let took = started.elapsed();
    eprintln!("resume storm: {N} members back in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    watcher.send_line("/who");
    let who = watcher.skip_until("INFO online");
    assert!(
        who.starts_with(&format!("INFO online ({})", N + 1)),
        "{who}"
    );
}
