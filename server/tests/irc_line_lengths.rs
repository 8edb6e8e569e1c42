//! The 512-byte rule over raw sockets, at its edges: a line body (tags aside) of exactly 510
//! bytes plus CR LF reaches the room, one byte more is `417` and dropped, and client tags of up
//! to 4094 bytes do not count against the body; the connection stays through all of it.
//!
//! The real binary on real sockets (127.0.0.1); every wait is a read with a deadline.
#![allow(clippy::unwrap_used)]

mod irc_kit;

use chat_common::irc::message::{MAX_BODY, MAX_CLIENT_TAGS};
use irc_kit::{irc_member, native, server};

#[test]
fn a_body_of_510_bytes_passes_511_is_417_and_tags_do_not_count() {
    let (mut server, addr) = server(&[]);
    let mut bob = native(&mut server, "bob");
    let mut irc = irc_member(&mut server, addr, "alice", "");
    bob.expect("JOIN alice");

    let head = "PRIVMSG #chat :";
    let fits = "a".repeat(MAX_BODY - head.len());
    irc.send(&format!("{head}{fits}"));
    bob.expect_exact(&format!("MSG alice - {fits}"));

    let over = "b".repeat(MAX_BODY - head.len() + 1);
    irc.send(&format!("{head}{over}"));
    irc.expect(":chat.server 417 alice :");

    // The longest tag data a client may send, then a body that fits: the tags aside.
    let tags = format!("+x={}", "t".repeat(MAX_CLIENT_TAGS - 3));
    assert_eq!(tags.len(), MAX_CLIENT_TAGS);
    let fits = "c".repeat(MAX_BODY - head.len());
    irc.send(&format!("@{tags} {head}{fits}"));
    bob.expect_exact(&format!("MSG alice - {fits}"));

    irc.send("PING :still");
    irc.expect("PONG chat.server :still");
}
