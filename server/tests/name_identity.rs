//! Names are identities (issue 20, "`/nick` borrows identities"): a name that left stays its
//! owner's for `--name-hold`, a rename cannot take a name the operator just refused, a rename
//! to a name with a control or bidi character is `ERROR bad-name`, and the history shows where
//! one speaker of a name ends. Real binary, real sockets (members on distinct 127.0.0.x
//! addresses), bounded in time.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use chat_testkit::{light, Client, Server};

fn host(n: u8) -> IpAddr {
    format!("127.0.0.{n}").parse().unwrap()
}

/// Connects from `127.0.0.n` and logs in as `name` (with `--auto-approve`).
fn login_from(server: &Server, n: u8, name: &str) -> Client {
    let mut c = server.connect_from(host(n));
    c.login(name);
    c
}

#[test]
fn a_name_that_left_cannot_be_taken_by_another_address_by_join_or_rename() {
    let _lock = light();
    let server = Server::start(&["--auto-approve"]);
    let mut witness = login_from(&server, 5, "witness");
    let mut alice = login_from(&server, 2, "alice");
    witness.expect_exact("JOIN alice");
    let mut mallory = login_from(&server, 3, "mallory");
    witness.expect_exact("JOIN mallory");
    alice.expect_exact("JOIN mallory");
    alice.send_line("/leave");
    alice.expect("BYE ");
    witness.expect_exact("LEAVE alice left");
    // A rename into it, at once: refused, and nobody hears of it.
    mallory.expect_exact("LEAVE alice left");
    mallory.send_line("/nick alice");
    let reply = mallory.expect("ERROR name-taken ");
    assert!(reply.contains("kept for its owner"), "{reply}");
    // A join as it from another address: refused, asked again.
    let mut other = server.connect_from(host(4));
    other.expect("NAME? ");
    other.send_line("alice");
    other.expect("ERROR name-taken ");
    other.expect("NAME? ");
    // Its owner (same address) may come back.
    let _alice = login_from(&server, 2, "alice");
    witness.expect_exact("JOIN alice");
    // Nothing happened in between.
    witness.send_line("/who");
    let who = witness.expect("INFO online (");
    assert!(who.contains("mallory") && who.contains("alice"), "{who}");
}

#[test]
fn a_name_renamed_away_is_held_too_and_frees_after_the_hold() {
    let _lock = light();
    let server = Server::start(&["--auto-approve", "--name-hold", "1"]);
    let mut alice = login_from(&server, 2, "alice");
    let mut mallory = login_from(&server, 3, "mallory");
    alice.expect_exact("JOIN mallory");
    alice.send_line("/nick alicia");
    alice.expect_exact("NICK alice alicia");
    mallory.expect_exact("NICK alice alicia");
    mallory.send_line("/nick alice");
    mallory.expect("ERROR name-taken ");
    // After the hold (1 s) it is anyone's: retry until it is, within a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        mallory.send_line("/nick alice");
        let reply = mallory.next_line();
        if reply == "NICK mallory alice" {
            break;
        }
        assert!(reply.starts_with("ERROR "), "{reply}");
        assert!(
            std::time::Instant::now() < deadline,
            "still held after 5 s: {reply}"
        );
        // Waiting out the hold itself (a server timer), not synchronising with a peer.
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    alice.expect_exact("NICK mallory alice");
}

#[test]
fn a_rename_to_a_name_the_operator_refused_is_refused_under_the_same_cool_down() {
    let _lock = light();
    let mut server = Server::start(&[]);
    // root asks from 127.0.0.3 and is denied: root cools down for that address.
    let mut squatter = server.connect_from(host(3));
    squatter.expect("NAME? ");
    squatter.send_line("root");
    squatter.expect("WAIT ");
    server.expect_console("join request: root");
    server.console("deny root");
    squatter.expect("DENIED ");
    server.expect_console("denied root");
    // The same address joins as someone else, is approved, then renames to root.
    let mut m = server.connect_from(host(3));
    m.expect("NAME? ");
    m.send_line("mallory");
    m.expect("WAIT ");
    server.expect_console("join request: mallory");
    server.console("approve mallory");
    m.expect_welcome("mallory");
    m.send_line("/nick root");
    let reply = m.expect("ERROR name-taken ");
    assert!(reply.contains("refused"), "{reply}");
}

#[test]
fn a_rename_to_a_name_with_a_control_or_bidi_character_is_bad_name() {
    let _lock = light();
    let server = Server::start(&["--auto-approve"]);
    let mut mallory = login_from(&server, 3, "mallory");
    let mut witness = login_from(&server, 5, "witness");
    mallory.expect_exact("JOIN witness");
    for typed in ["ali\u{202E}ce", "ali\u{7}ce", "ali\u{2067}ce"] {
        mallory.send_line(&format!("/nick {typed}"));
        mallory.expect("ERROR bad-name ");
    }
    witness.send_line("/who");
    assert_eq!(
        witness.expect("INFO online ("),
        "INFO online (2): mallory, witness"
    );
}

#[test]
fn the_history_shows_where_a_speaker_of_a_name_left_and_was_renamed() {
    let _lock = light();
    let server = Server::start(&["--auto-approve", "--name-hold", "0"]);
    let mut witness = login_from(&server, 5, "witness");
    let mut alice = login_from(&server, 2, "alice");
    witness.expect_exact("JOIN alice");
    alice.send_line("I am alice");
    witness.expect_exact("MSG alice - I am alice");
    alice.send_line("/leave");
    witness.expect_exact("LEAVE alice left");
    // A passer-by who never spoke leaves no trace in the history.
    drop(login_from(&server, 6, "passer"));
    witness.expect_exact("JOIN passer");
    witness.expect_exact("LEAVE passer quit");
    let mut mallory = login_from(&server, 3, "mallory");
    witness.expect_exact("JOIN mallory");
    mallory.send_line("/nick alice");
    witness.expect_exact("NICK mallory alice");
    mallory.send_line("I am alice too");
    witness.expect_exact("MSG alice - I am alice too");
    let mut newcomer = login_from(&server, 7, "newcomer");
    let mut got = Vec::new();
    for _ in 0..3 {
        let line = newcomer.expect("HIST ");
        got.push(line.splitn(3, ' ').nth(2).unwrap().to_owned());
    }
    assert_eq!(
        got,
        [
            "MSG alice - I am alice",
            "LEAVE alice left",
            "MSG alice - I am alice too"
        ]
    );
}
