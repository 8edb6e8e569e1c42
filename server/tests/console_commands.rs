//! The console's commands of round 2, over standard input and the control socket: `approve
//! all` / `deny all`, `kick NAME [reason]`, bans on addresses and CIDR ranges with a duration
//! and a reason, `who` sorted with address, transport and time, `quit` confirmed on a control
//! console, `exit`, and who made each decision. Bad commands get a clear error and change
//! nothing.
#![allow(clippy::unwrap_used)]

mod console_kit;

use std::net::IpAddr;

use chat_testkit::{Client, Server, TIMEOUT};
use console_kit::{ctl_lines, start_controlled, Operator, TempDir};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn approve_all_and_deny_all_decide_every_waiting_join_and_name_the_console() {
    let mut server = Server::start(&[]);
    let (mut a, _) = server.join_waiting("ann");
    let (mut b, _) = server.join_waiting("bob");
    server.console("approve all");
    let lines = server.expect_console_all(&["approved ann (by stdin", "approved bob (by stdin"]);
    assert!(lines[0].ends_with("1 online)"), "{lines:?}");
    a.expect_welcome("ann");
    b.expect_welcome("bob");
    let (mut c, _) = server.join_waiting("cat");
    let (mut d, _) = server.join_waiting("dan");
    server.console("deny all");
    server.expect_console_all(&["denied cat (by stdin)", "denied dan (by stdin)"]);
    c.expect("DENIED ");
    d.expect("DENIED ");
    // Nobody left: a clear error.
    let reply = server.console_reply("deny all");
    assert_eq!(reply, ["error: nobody is waiting"]);
}

#[test]
fn decisions_on_a_control_console_name_it() {
    let dir = TempDir::new("by-control");
    let mut server = start_controlled(&dir, &[]);
    let (mut op, n) = Operator::connect_numbered(&dir.sock());
    let (mut uma, _) = server.join_waiting("uma");
    op.send("approve uma");
    let line = op.expect("approved uma");
    assert_eq!(line, format!("approved uma (by control:{n}; 1 online)"));
    server.expect_console(&format!("approved uma (by control:{n}; 1 online)"));
    uma.expect_welcome("uma");
}

#[test]
fn kick_with_a_reason_tells_the_member_and_the_room() {
    let mut server = Server::start(&["--auto-approve"]);
    let mut eve = server.login("eve");
    let mut bob = server.login("bob");
    eve.skip_until("JOIN bob");
    server.console("kick eve spamming the room");
    eve.skip_until("BYE kicked by the operator: spamming the room");
    bob.expect_exact("INFO eve was kicked by the operator: spamming the room");
    bob.expect_exact("LEAVE eve kicked");
    server.expect_console("kicked eve (by stdin): spamming the room");
    // Kicking nobody: a clear error, nothing changes.
    let reply = server.console_reply("kick nobody because");
    assert_eq!(reply, ["error: no member named nobody"]);
    bob.send_line("/who");
    bob.expect("INFO online (1): bob");
}

#[test]
fn who_is_sorted_and_shows_address_transport_and_time() {
    let mut server = Server::start(&["--auto-approve"]);
    let _zed = server.login("zed");
    let _amy = server.login("Amy");
    let _bob = server.login("bob");
    server.console("who");
    server.expect_console("online: 3");
    let rows = [
        server.next_console(),
        server.next_console(),
        server.next_console(),
    ];
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r.trim_start().split(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["Amy", "bob", "zed"], "{rows:?}");
    for row in &rows {
        assert!(row.contains(" from 127.0.0.1:"), "{row}");
        assert!(row.contains(" (tcp), "), "{row}");
        assert!(row.ends_with("s in the room"), "{row}");
    }
}

#[test]
fn a_cidr_ban_with_a_reason_cuts_the_range_and_refuses_it_until_unban() {
    let mut server = Server::start(&["--auto-approve"]);
    let mut inside = Client::connect_from(server.addr(), ip("127.0.0.2"));
    inside.login("inside");
    let mut outside = Client::connect_from(server.addr(), ip("127.1.0.1"));
    outside.login("outside");
    server.console("ban 127.0.0.0/16 2h flooding");
    let line = server.expect_console("banned 127.0.0.0/16 ");
    assert!(
        line.starts_with("banned 127.0.0.0/16 (by stdin, "),
        "{line}"
    );
    assert!(line.contains("h") && line.contains("m left"), "{line}");
    assert!(line.ends_with("; 1 connections cut): flooding"), "{line}");
    inside.skip_until("BYE your address was banned: flooding");
    let mut again = Client::connect_from(server.addr(), ip("127.0.9.9"));
    again.expect("DENIED your address is banned");
    outside.skip_until("LEAVE inside kicked");
    outside.send_line("/who");
    outside.expect("INFO online (1)");
    let bans = server.console_reply("bans");
    assert_eq!(bans.len(), 2, "{bans:?}");
    assert_eq!(bans[0], "bans: 1");
    assert!(
        bans[1].starts_with("  127.0.0.0/16 (by stdin, "),
        "{bans:?}"
    );
    assert!(bans[1].ends_with(" left): flooding"), "{bans:?}");
    server.console("unban 127.0.0.0/16");
    server.expect_console("unbanned 127.0.0.0/16 (by stdin)");
    let mut back = Client::connect_from(server.addr(), ip("127.0.9.9"));
    back.login("back");
}

#[test]
fn bad_bans_and_unknown_commands_are_clear_errors_and_change_nothing() {
    let mut server = Server::start(&["--auto-approve"]);
    for (command, error) in [
        (
            "ban 300.1.2.3/40",
            "error: not an IP address or CIDR range: \"300.1.2.3/40\"",
        ),
        (
            "ban 1.2.3.4/33",
            "error: not an IP address or CIDR range: \"1.2.3.4/33\"",
        ),
        ("ban 1.2.3.4 400d", "error: usage: ban <ip|cidr>"),
        ("unban 10.0.0.0/8", "error: 10.0.0.0/8 is not banned"),
        ("dance", "error: unknown command \"dance\"; type help"),
        ("kick", "error: usage: kick <name> [reason]"),
        ("exit now", "error: usage: exit"),
    ] {
        let reply = server.console_reply(command);
        assert_eq!(reply.len(), 1, "{command}: {reply:?}");
        assert!(reply[0].starts_with(error), "{command}: {reply:?}");
    }
    assert_eq!(server.console_reply("bans"), ["bans: 0"]);
    let mut member = server.login("still");
    member.send_line("/who");
    member.expect("INFO online (1)");
}

#[test]
fn quit_on_a_control_console_asks_first_and_exit_closes_only_that_console() {
    let dir = TempDir::new("quit-confirm");
    let mut server = start_controlled(&dir, &["--auto-approve"]);
    let mut member = server.login("stay");
    let (mut op, n) = Operator::connect_numbered(&dir.sock());
    op.send("quit");
    let ask = op.expect("quit stops the server");
    assert!(ask.contains("type quit again"), "{ask}");
    // Something else in between: the question lapses; the next quit asks again.
    op.send("who");
    op.expect("online: 1");
    op.send("quit");
    op.expect("quit stops the server");
    // exit closes this console only.
    op.send("exit");
    let rest = op.until_closed();
    assert_eq!(rest.last().map(String::as_str), Some(".end ok"), "{rest:?}");
    server.expect_console(&format!("console {n} closed"));
    member.send_line("/who");
    member.expect("INFO online (1)");
    // quit twice stops it, saying who did.
    let (mut op, n) = Operator::connect_numbered(&dir.sock());
    op.send("quit");
    op.expect("quit stops the server");
    op.send("quit");
    op.expect(&format!("stopping the server (by control:{n})"));
    member.skip_until("BYE server shutting down");
    assert!(server.wait_exit(TIMEOUT).success());
}

#[test]
fn ctl_quit_now_stops_the_server_and_exits_0() {
    let dir = TempDir::new("quit-now");
    let mut server = start_controlled(&dir, &["--auto-approve"]);
    let mut member = server.login("m");
    let (code, lines) = ctl_lines(&dir.sock(), &["quit", "now"]);
    assert_eq!(code, 0, "{lines:?}");
    assert!(
        lines[0].starts_with("stopping the server (by control:"),
        "{lines:?}"
    );
    member.skip_until("BYE server shutting down");
    assert!(server.wait_exit(TIMEOUT).success());
}

#[test]
fn exit_on_standard_input_closes_that_console_and_the_server_goes_on() {
    let mut server = Server::start(&["--auto-approve"]);
    let mut member = server.login("m");
    server.console("exit");
    server.expect_console("console closed");
    member.send_line("/who");
    member.expect("INFO online (1)");
}
