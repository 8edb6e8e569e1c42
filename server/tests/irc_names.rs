//! An IRC member's `NAMES` replies over raw sockets: the join burst's names and every explicit
//! `NAMES` (bare, `#chat` in any case, another channel, a list, with a target server) end with
//! exactly one `366`, whichever way the member came in (approved by the operator, waiting for
//! it, `--auto-approve` with `NAMES` sent during registration, a token given as `PASS` or with
//! SASL `PLAIN`).
//!
//! The real binary on real sockets (127.0.0.1); every wait is a read with a deadline: each
//! reply is read up to a `PONG` sent behind it, so a second `366` cannot hide after the check.
#![allow(clippy::unwrap_used)]

mod irc_kit;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use irc_kit::{irc_member, native, server, Irc};

/// Sends `PING :mark` and returns every line before its `PONG`.
#[track_caller]
fn lines_until_pong(irc: &mut Irc, mark: &str) -> Vec<String> {
    irc.send(&format!("PING :{mark}"));
    let mut lines = Vec::new();
    loop {
        let line = irc.line();
        if line.contains(" PONG ") && line.ends_with(mark) {
            return lines;
        }
        lines.push(line);
    }
}

/// The numerics (`353`, `366`, ...) among `lines`, in order.
fn numerics(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
        .collect()
}

/// Every `NAMES` form a client sends, each answered by one reply that ends with one `366`.
#[track_caller]
fn every_names_form(irc: &mut Irc, nick: &str) {
    for (i, (command, want)) in [
        ("NAMES", vec!["353", "366"]),
        ("NAMES #chat", vec!["353", "366"]),
        ("NAMES #CHAT", vec!["353", "366"]),
        ("NAMES #chat chat.server", vec!["353", "366"]),
        ("NAMES #other", vec!["366"]),
        // A list: one reply per channel, each with its own end.
        ("NAMES #other,#chat", vec!["366", "353", "366"]),
    ]
    .into_iter()
    .enumerate()
    {
        irc.send(command);
        let reply = lines_until_pong(irc, &format!("names{i}"));
        assert_eq!(numerics(&reply), want, "{nick}: {command}: {reply:#?}");
    }
}

#[test]
fn an_approved_member_gets_one_366_per_names_reply() {
    let (mut server, addr) = server(&[]);
    let _bob = native(&mut server, "bob");
    let mut irc = Irc::connect(addr, "alice");
    irc.register("alice", "");
    server.expect_console("join request: alice");
    // Waiting: not in the channel yet, so the end of an empty list, once.
    irc.send("NAMES #chat");
    let waiting = lines_until_pong(&mut irc, "waiting");
    assert_eq!(numerics(&waiting), ["366"], "{waiting:#?}");
    server.console("approve alice");
    let burst = lines_until_pong(&mut irc, "burst");
    assert_eq!(numerics(&burst), ["331", "353", "366"], "{burst:#?}");
    every_names_form(&mut irc, "alice");
}

#[test]
fn names_during_registration_and_a_token_login_get_one_366_each() {
    let (_server, addr) = server(&["--auto-approve"]);
    // weechat's order, with NAMES before the registration ends: answered after the join.
    let mut wee = Irc::connect(addr, "wee");
    wee.send("NICK wee");
    wee.send("USER wee 0 * :WeeChat");
    wee.send("NAMES #chat");
    let burst = lines_until_pong(&mut wee, "burst");
    let after_welcome: Vec<&str> = numerics(&burst)
        .into_iter()
        .skip_while(|c| *c != "422")
        .collect();
    assert_eq!(
        after_welcome,
        ["422", "331", "353", "366", "353", "366"],
        "{burst:#?}"
    );
    let token = burst
        .iter()
        .find_map(|l| l.split("Your token is ").nth(1))
        .unwrap()
        .to_owned();
    wee.send("QUIT :bye");
    wee.expect_error_then_close();

    let mut again = Irc::connect(addr, "wee");
    again.send(&format!("PASS {token}"));
    again.send("NICK wee");
    again.send("USER wee 0 * :WeeChat");
    let burst = lines_until_pong(&mut again, "again");
    let after_welcome: Vec<&str> = numerics(&burst)
        .into_iter()
        .skip_while(|c| *c != "422")
        .collect();
    assert_eq!(after_welcome, ["422", "331", "353", "366"], "{burst:#?}");
    every_names_form(&mut again, "wee");
}

#[test]
fn a_sasl_login_gets_one_366() {
    let (mut server, addr) = server(&[]);
    let mut first = irc_member(&mut server, addr, "sasly", "");
    let token = first.token.clone().unwrap();
    first.send("QUIT :later");
    first.expect_error_then_close();
    let mut irc = Irc::connect(addr, "sasly");
    irc.send("CAP LS 302");
    irc.send("NICK sasly");
    irc.send("USER sasly sasly localhost :Real Name");
    irc.expect(" CAP * LS ");
    irc.send("CAP REQ :sasl");
    irc.expect(" CAP * ACK :sasl");
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!(
        "AUTHENTICATE {}",
        STANDARD.encode(format!("sasly\0sasly\0{token}"))
    ));
    irc.expect(" 900 ");
    irc.expect(" 903 ");
    irc.send("CAP END");
    let burst = lines_until_pong(&mut irc, "burst");
    let after_welcome: Vec<&str> = numerics(&burst)
        .into_iter()
        .skip_while(|c| *c != "422")
        .collect();
    assert_eq!(after_welcome, ["422", "331", "353", "366"], "{burst:#?}");
    every_names_form(&mut irc, "sasly");
}
