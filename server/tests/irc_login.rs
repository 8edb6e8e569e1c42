//! An IRC member's token login over raw sockets: the token the server gives an IRC member after
//! its approval, used as the server password (`PASS`) or with SASL `PLAIN`, admits it again
//! without the operator (the waiting room skipped), is never rotated, and is void after a kick;
//! a bad one (`904` for SASL) sends the member through the waiting room as usual. Also the SASL
//! numerics (`900`, `903`-`908`) and a kick's `KICK` with the operator's reason.
//!
//! The real binary on real sockets (127.0.0.1); every wait is a read with a deadline.
#![allow(clippy::unwrap_used)]

mod irc_kit;

use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chat_testkit::Server;
use irc_kit::{irc_member, native, server, Irc};

/// `AUTHENTICATE`'s payload for SASL `PLAIN`: base64 of `authzid NUL authcid NUL password`.
fn plain(authcid: &str, password: &str) -> String {
    STANDARD.encode(format!("{authcid}\0{authcid}\0{password}"))
}

/// Connects with `PASS token`, `NICK`, `USER` (weechat's order); with `good`, reads through
/// `422`, else the notice that the password is no token, then through `422`.
#[track_caller]
fn connect_with_pass(addr: SocketAddr, nick: &str, token: &str, good: bool) -> Irc {
    let mut irc = Irc::connect(addr, nick);
    irc.send(&format!("PASS {token}"));
    irc.send(&format!("NICK {nick}"));
    irc.send(&format!("USER {nick} 0 * :Real Name"));
    if !good {
        let notice = irc.expect(":chat.server NOTICE * :That password is not a token");
        assert!(notice.contains("the operator decides"), "{notice}");
    }
    irc.expect(&format!(" 001 {nick} :"));
    irc.until(" 422 ");
    irc
}

/// Logs in with SASL `PLAIN` as irssi does (caps first), up to the `903` or `904`; returns
/// the SASL verdict's line. Registration then ends with `CAP END`.
#[track_caller]
fn sasl(irc: &mut Irc, nick: &str, token: &str) -> String {
    irc.send("CAP LS 302");
    irc.send(&format!("NICK {nick}"));
    irc.send(&format!("USER {nick} {nick} localhost :Real Name"));
    irc.expect(":chat.server CAP * LS :server-time message-tags echo-message sasl=PLAIN");
    irc.send("CAP REQ :sasl");
    irc.expect(":chat.server CAP * ACK :sasl");
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!("AUTHENTICATE {}", plain(nick, token)));
    let verdict = irc.line();
    if verdict.contains(" 900 ") {
        assert_eq!(
            verdict,
            format!(":chat.server 900 * * {nick} :You are now logged in as {nick}")
        );
        return irc.expect(":chat.server 903 * :SASL authentication successful");
    }
    verdict
}

/// The join burst of a member admitted by its token: `JOIN`, `331`, names; no waiting notice.
#[track_caller]
fn joined_without_waiting(irc: &mut Irc, nick: &str) {
    let join = irc.line();
    assert_eq!(join, format!(":{nick}!{nick}@chat.server JOIN #chat"));
    irc.expect(" 331 ");
    irc.until(" 366 ");
}

/// A member approved once, its token kept, then gone.
#[track_caller]
fn remembered(server: &mut Server, addr: SocketAddr, nick: &str) -> String {
    let mut irc = irc_member(server, addr, nick, "");
    let token = irc.token.clone().unwrap();
    irc.send("QUIT :later");
    irc.expect_error_then_close();
    token
}

#[test]
fn a_remembered_member_logs_in_with_pass_and_skips_the_waiting_room() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let token = remembered(&mut server, addr, "alice");
    bob.expect("JOIN alice");
    bob.expect("LEAVE alice");

    let mut irc = connect_with_pass(addr, "alice", &token, true);
    joined_without_waiting(&mut irc, "alice");
    server.expect_console("remembered alice joined");
    bob.expect("JOIN alice");
    irc.send("PRIVMSG #chat :back again");
    bob.expect("MSG alice - back again");

    // Not rotated: the same password works again, and again.
    for _ in 0..2 {
        irc.send("QUIT :bye");
        irc.expect_error_then_close();
        bob.expect("LEAVE alice");
        irc = connect_with_pass(addr, "alice", &token, true);
        joined_without_waiting(&mut irc, "alice");
        bob.expect("JOIN alice");
    }
}

#[test]
fn sasl_plain_with_the_token_skips_the_waiting_room() {
    let (mut server, addr) = server(&[]);
    let token = remembered(&mut server, addr, "carol");
    let mut irc = Irc::connect(addr, "carol");
    sasl(&mut irc, "carol", &token);
    // Once logged in, another AUTHENTICATE is 907 and the login stands.
    irc.send("AUTHENTICATE PLAIN");
    irc.expect(":chat.server 907 * :You have already authenticated using SASL");
    irc.send("CAP END");
    irc.expect(" 001 carol :");
    irc.until(" 422 ");
    joined_without_waiting(&mut irc, "carol");
    server.expect_console("remembered carol joined");
}

#[test]
fn a_bad_token_is_904_and_the_waiting_room_as_usual() {
    let (mut server, addr) = server(&[]);
    let _token = remembered(&mut server, addr, "dave");
    let mut irc = Irc::connect(addr, "dave");
    let verdict = sasl(&mut irc, "dave", "not-the-token-at-all-0123456789");
    assert_eq!(verdict, ":chat.server 904 * :SASL authentication failed");
    irc.send("CAP END");
    irc.expect(" 001 dave :");
    irc.until(" 422 ");
    let notice = irc.expect(":chat.server NOTICE dave :");
    assert!(notice.contains("operator"), "{notice}");
    server.expect_console("join request: dave from ");
    server.console("approve dave");
    irc.expect(":dave!dave@chat.server JOIN #chat");
    irc.until(" 366 ");
    // A new approval, a new token.
    let new = irc.read_token();
    assert_ne!(new, _token);
}

#[test]
fn a_wrong_password_says_so_and_waits_for_the_operator() {
    let (mut server, addr) = server(&[]);
    let mut irc = connect_with_pass(addr, "erin", "hunter2", false);
    let notice = irc.expect(":chat.server NOTICE erin :");
    assert!(notice.contains("operator"), "{notice}");
    server.expect_console("join request: erin from ");
}

#[test]
fn a_kick_reaches_the_member_as_kick_with_its_reason_and_voids_the_password() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let mut irc = irc_member(&mut server, addr, "frank", "");
    let token = irc.token.clone().unwrap();
    bob.expect("JOIN frank");
    server.console("kick frank spamming the room");
    bob.expect_exact("INFO frank was kicked by the operator: spamming the room");
    irc.expect(":chat.server KICK #chat frank :kicked by the operator: spamming the room");
    let error = irc.expect_error_then_close();
    assert_eq!(error, "ERROR :kicked by the operator: spamming the room");
    bob.expect("LEAVE frank kicked");

    // The kick voided the token: the password now leads to the waiting room.
    let _again = connect_with_pass(addr, "frank", &token, false);
    server.expect_console("join request: frank from ");
}

#[test]
fn a_ban_is_no_kick() {
    let (mut server, addr) = server(&[]);
    let mut irc = irc_member(&mut server, addr, "gina", "");
    server.console("ban 127.0.0.1 testing");
    let error = irc.expect_error_then_close();
    assert!(
        error.starts_with("ERROR :your address was banned"),
        "{error}"
    );
}

#[test]
fn sasl_numerics() {
    let (_server, addr) = server(&[]);
    let mut irc = Irc::connect(addr, "hal");
    irc.send("CAP LS 302");
    irc.expect(" CAP * LS :");
    // Before the cap is enabled: 904.
    irc.send("AUTHENTICATE PLAIN");
    irc.expect(":chat.server 904 * :");
    irc.send("CAP REQ :sasl");
    irc.expect(" CAP * ACK :sasl");
    // An unknown mechanism: 908 (the list) and 904.
    irc.send("AUTHENTICATE EXTERNAL");
    irc.expect(":chat.server 908 * PLAIN :are available SASL mechanisms");
    irc.expect(":chat.server 904 * :");
    // Aborted: 906.
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send("AUTHENTICATE *");
    irc.expect(":chat.server 906 * :");
    // Too long: 905.
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    let chunk = "A".repeat(400);
    for _ in 0..4 {
        irc.send(&format!("AUTHENTICATE {chunk}"));
    }
    irc.expect(":chat.server 905 * :");
    // Not base64: 904.
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send("AUTHENTICATE !!!!");
    irc.expect(":chat.server 904 * :");
}

#[test]
fn a_token_login_gets_the_rooms_recent_history_not_every_kept_message() {
    let (mut server, addr) = server(&["--history", "3"]);
    let mut bob = native(&mut server, "bob");
    let token = remembered(&mut server, addr, "dave");
    bob.skip_until("LEAVE dave");
    for i in 0..10 {
        bob.send_line(&format!("line {i}"));
    }
    // A third member sees the tenth line, so all ten are in the log before dave logs in.
    let mut carol = native(&mut server, "carol");
    while !carol.next_line().ends_with("MSG bob - line 9") {}

    let mut irc = connect_with_pass(addr, "dave", &token, true);
    joined_without_waiting(&mut irc, "dave");
    irc.send("PING :end-of-history");
    let mut got = Vec::new();
    loop {
        let line = irc.line();
        if line.contains("PONG") && line.contains("end-of-history") {
            break;
        }
        // Without `server-time` a history line starts with its time: `[2026-12-06 14:25] `.
        if let Some((_, text)) = line.split_once(" PRIVMSG #chat :") {
            got.push(text.split_once("] ").map_or(text, |(_, t)| t).to_owned());
        }
    }
    assert_eq!(
        got,
        ["line 7", "line 8", "line 9"],
        "--history 3, as any join"
    );
}
