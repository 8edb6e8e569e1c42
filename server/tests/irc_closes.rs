//! Every way the server closes an IRC connection ends with an IRC `ERROR` line, then the
//! close: a login timeout (never registered), an approval timeout, too many connections from
//! one address, a banned address, a full server, and the server stopping (for a member in the
//! room and for one waiting). QUIT, a denial, a kick, a ban of a member and a ping timeout are
//! in `irc.rs` and `irc_login.rs`.
//!
//! The real binary on real sockets (127.0.0.x); every wait is a read with a deadline.
#![allow(clippy::unwrap_used)]

mod irc_kit;

use chat_testkit::{host, tcp_from};
use irc_kit::{irc_member, server, Irc};

/// An IRC connection from 127.0.0.`last`.
#[track_caller]
fn from(addr: std::net::SocketAddr, last: u8, name: &str) -> Irc {
    Irc::over(tcp_from(addr, host(last), None), name)
}

#[test]
fn the_timeouts_end_with_an_error_line() {
    let (_server, addr) = server(&["--login-timeout", "1", "--approval-timeout", "1"]);
    let mut silent = from(addr, 3, "silent");
    let error = silent.expect_error_then_close();
    assert_eq!(error, "ERROR :no name given in time");

    let mut waiting = from(addr, 4, "waiting");
    waiting.register("waiting", "");
    let error = waiting.expect_error_then_close();
    assert_eq!(error, "ERROR :no operator approved you in time");
}

#[test]
fn refusals_and_the_server_stopping_end_with_an_error_line() {
    let (mut server, addr) = server(&["--max-per-ip", "2"]);
    let _first = from(addr, 5, "first");
    let _second = from(addr, 5, "second");
    let mut third = from(addr, 5, "third");
    let error = third.expect_error_then_close();
    assert_eq!(error, "ERROR :too many connections from your address");

    server.console("ban 127.0.0.6");
    server.expect_console("banned 127.0.0.6");
    let mut banned = from(addr, 6, "banned");
    let error = banned.expect_error_then_close();
    assert_eq!(error, "ERROR :your address is banned");

    let mut alice = irc_member(&mut server, addr, "alice", "");
    let mut wanting = from(addr, 7, "wanting");
    wanting.register("wanting", "");
    server.expect_console("join request: wanting");
    server.console("quit now");
    assert_eq!(
        alice.expect_error_then_close(),
        "ERROR :server shutting down"
    );
    assert_eq!(
        wanting.expect_error_then_close(),
        "ERROR :server shutting down"
    );
}

#[test]
fn a_full_server_says_so_in_an_error_line() {
    let (_server, addr) = server(&["--max-clients", "1"]);
    let _first = from(addr, 5, "first");
    let mut second = from(addr, 5, "second");
    let error = second.expect_error_then_close();
    assert_eq!(error, "ERROR :the server is full; try again later");
}
