//! Integration tests of the operator console: every command typed on the server's piped stdin,
//! the announcements it prints, what clients see as a result, and the server's behaviour once
//! stdin is at end of file (`/dev/null` from the start, or a pipe the test closes).
//!
//! Console output is matched on the stable prefixes the lead documented; every announcement that
//! carries peer data is checked for the peer's real `127.0.0.1:PORT` and for control characters.
#![allow(clippy::unwrap_used)]

use chat_testkit::{has_control, Console, Server};

#[test]
fn approve_without_name_takes_the_oldest_first() {
    let mut server = Server::start(&[]);
    let (mut first, _) = server.join_waiting("first");
    let (mut second, _) = server.join_waiting("second");
    server.console("approve");
    server.expect_console("approved first (by stdin; 1 online)");
    assert_eq!(first.expect_welcome("first"), 1);
    server.console("approve");
    server.expect_console("approved second (by stdin; 2 online)");
    assert_eq!(second.expect_welcome("second"), 2);
    first.expect_exact("JOIN second");
    server.console("approve");
    server.expect_console("error: nobody is waiting");
}

#[test]
fn approve_by_name_skips_the_queue() {
    let mut server = Server::start(&[]);
    let (mut old, _) = server.join_waiting("old");
    let (mut young, _) = server.join_waiting("young");
    server.console("approve young");
    server.expect_console("approved young (by stdin; 1 online)");
    assert_eq!(young.expect_welcome("young"), 1);
    server.console("approve ghost");
    server.expect_console("error: nobody named ghost is waiting");
    // A member is not waiting either.
    server.console("approve young");
    server.expect_console("error: nobody named young is waiting");
    server.console("approve");
    server.expect_console("approved old (by stdin; 2 online)");
    assert_eq!(old.expect_welcome("old"), 2);
    young.expect_exact("JOIN old");
}

#[test]
fn deny_with_and_without_name_closes_the_join() {
    let mut server = Server::start(&[]);
    let (mut a, _) = server.join_waiting("a");
    let (mut b, _) = server.join_waiting("b");
    let (mut c, _) = server.join_waiting("c");
    server.console("deny b");
    server.expect_console("denied b");
    b.expect("DENIED ");
    b.expect_eof();
    server.console("deny");
    server.expect_console("denied a");
    a.expect("DENIED ");
    a.expect_eof();
    server.console("deny ghost");
    server.expect_console("error: nobody named ghost is waiting");
    // c was untouched by all this and can still be approved.
    server.console("approve");
    server.expect_console("approved c (by stdin; 1 online)");
    assert_eq!(c.expect_welcome("c"), 1);
    server.console("deny");
    server.expect_console("error: nobody is waiting");
}

#[test]
fn join_announcement_names_the_peer_address_and_no_control_characters() {
    let mut server = Server::start(&[]);
    // A name with ESC is refused outright, so it is never announced.
    let mut evil = server.connect_prompted();
    evil.send_line("ev\u{1b}[2Jil");
    evil.expect("ERROR bad-name ");
    evil.expect("NAME? ");
    evil.send_raw(b"bi\xe2\x80\xaedi\n"); // U+202E inside a name
    evil.expect("ERROR bad-name ");
    evil.expect("NAME? ");

    let (good, announced) = server.join_waiting("good_name-1");
    let addr = good.local_addr().to_string();
    assert!(addr.starts_with("127.0.0.1:"));
    assert_eq!(
        announced,
        format!("join request: good_name-1 from {addr} (approve good_name-1 / deny good_name-1)")
    );

    let pending = server.pending();
    assert_eq!(pending.len(), 2, "pending reply {pending:?}");
    assert_eq!(pending[0], "pending: 1 waiting");
    let entry = format!("  good_name-1 from {addr}, waiting ");
    assert!(
        pending[1].starts_with(&entry) && pending[1].ends_with('s'),
        "pending entry {:?}",
        pending[1]
    );
    for line in server.console_history() {
        assert!(
            !has_control(line),
            "control character on the console: {line:?}"
        );
    }
}

#[test]
fn pending_lists_every_waiting_join_oldest_first() {
    let mut server = Server::start(&[]);
    assert_eq!(server.pending(), ["pending: 0 waiting"]);
    let (x, _) = server.join_waiting("x");
    let (y, _) = server.join_waiting("y");
    let pending = server.pending();
    assert_eq!(pending.len(), 3, "{pending:?}");
    assert_eq!(pending[0], "pending: 2 waiting");
    assert!(pending[1].starts_with(&format!("  x from {}, waiting ", x.local_addr())));
    assert!(pending[2].starts_with(&format!("  y from {}, waiting ", y.local_addr())));
}

#[test]
fn who_lists_members_with_addresses() {
    let mut server = Server::start(&["--auto-approve"]);
    server.console("who");
    server.expect_console("online: 0");
    let p = server.login("p");
    let joined = server.expect_console("joined p from ");
    assert_eq!(
        joined,
        format!("joined p from {} (1 online)", p.local_addr())
    );
    let q = server.login("q");
    server.expect_console(&format!("joined q from {} (2 online)", q.local_addr()));
    server.console("who");
    server.expect_console("online: 2");
    // Sorted by name, each with its address, transport and time in the room.
    let rows = vec![server.next_console(), server.next_console()];
    assert!(
        rows[0].starts_with(&format!("  p from {} (tcp), ", p.local_addr())),
        "{rows:?}"
    );
    assert!(
        rows[1].starts_with(&format!("  q from {} (tcp), ", q.local_addr())),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| r.ends_with("s in the room")),
        "{rows:?}"
    );
}

#[test]
fn kick_says_bye_to_the_member_and_kicked_to_others() {
    let mut server = Server::start(&["--auto-approve"]);
    let mut a = server.login("a");
    let mut b = server.login("Bully");
    a.expect_exact("JOIN Bully");
    server.console("kick Bully");
    server.expect_console_all(&["kicked Bully", "left Bully (kicked)"]);
    b.expect("BYE ");
    b.expect_eof();
    a.expect_exact("LEAVE Bully kicked");
    server.console("kick ghost");
    server.expect_console("error: no member named ghost");
    // Only members can be kicked; the kick of a gone member is an error too.
    server.console("kick Bully");
    server.expect_console("error: no member named Bully");
    a.send_line("/who");
    a.expect_exact("INFO online (1): a");
}

#[test]
fn leave_reasons_are_announced_on_the_console() {
    let mut server = Server::start(&["--auto-approve"]);
    let mut a = server.login("a");
    let b = server.login("b");
    a.expect_exact("JOIN b");
    drop(b);
    a.expect_exact("LEAVE b quit");
    server.expect_console("left b (quit)");
    a.send_line("/leave");
    a.expect("BYE ");
    server.expect_console("left a (left)");
}

#[test]
fn say_sends_info_to_members_only() {
    let mut server = Server::start(&[]);
    let (mut m1, _) = server.join_waiting("m1");
    server.console("approve m1");
    assert_eq!(m1.expect_welcome("m1"), 1);
    let (mut m2, _) = server.join_waiting("m2");
    server.console("approve m2");
    assert_eq!(m2.expect_welcome("m2"), 2);
    m1.expect_exact("JOIN m2");
    let (mut waiting, _) = server.join_waiting("waiting");
    let mut unnamed = server.connect_prompted();

    server.console("say the **room** closes at 5");
    server.expect_console("said to 2 members");
    m1.expect_exact("INFO operator: the **room** closes at 5");
    m2.expect_exact("INFO operator: the **room** closes at 5");
    // The waiting join did not get it: its next line is the WELCOME.
    server.console("approve waiting");
    assert_eq!(waiting.expect_welcome("waiting"), 3);
    // Nor the connection that has not named itself: its next line answers its name.
    unnamed.send_line("m1");
    unnamed.expect("ERROR name-taken ");
}

#[test]
fn help_lists_the_commands_and_unknown_commands_are_errors() {
    let mut server = Server::start(&[]);
    let help = server.console_reply("help");
    let all = help.join("\n");
    for cmd in [
        "approve", "deny", "pending", "who", "kick", "say", "quit", "help",
    ] {
        assert!(all.contains(cmd), "help does not mention {cmd}: {all}");
    }
    server.console("dance");
    server.expect_console("error: unknown command \"dance\"; type help");
    // Commands missing their argument are errors too, not crashes or silent no-ops.
    server.console("kick");
    server.expect_console("error: ");
    // The console goes on working after an error.
    assert_eq!(server.pending(), ["pending: 0 waiting"]);
}

#[test]
fn console_at_eof_from_the_start_denies_joins_at_once() {
    let mut server = Server::start_with(&[], Console::Null);
    server.expect_console("console closed");
    let mut c = server.connect_prompted();
    c.send_line("alice");
    let mut line = c.next_line();
    if line.starts_with("WAIT ") {
        line = c.next_line();
    }
    assert!(line.starts_with("DENIED "), "got {line:?}");
    c.expect_eof();
    // And it keeps serving: another connection still gets its prompt and the same answer.
    let mut d = server.connect_prompted();
    d.send_line("bob");
    d.skip_until("DENIED ");
}

#[test]
fn console_closed_later_keeps_members_and_denies_new_joins() {
    let mut server = Server::start(&[]);
    let (mut m, _) = server.join_waiting("member");
    server.console("approve");
    assert_eq!(m.expect_welcome("member"), 1);
    server.close_console();
    server.expect_console("console closed");
    let mut late = server.connect_prompted();
    late.send_line("late");
    late.skip_until("DENIED ");
    late.expect_eof();
    // The member is still served.
    m.send_line("/who");
    m.expect_exact("INFO online (1): member");
}

#[test]
fn waiting_joins_are_denied_when_the_console_closes() {
    // "Every join is then refused at once": one already waiting has nobody left to approve it,
    // so it is refused rather than left hanging until the approval timeout (300 s by default).
    let mut server = Server::start(&[]);
    let (mut w, _) = server.join_waiting("waiter");
    server.close_console();
    server.expect_console("console closed");
    w.expect("DENIED ");
    w.expect_eof();
}

#[test]
fn console_at_eof_with_auto_approve_still_admits() {
    let mut server = Server::start_with(&["--auto-approve"], Console::Null);
    server.expect_console("console closed");
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_exact("JOIN b");
    b.send_line("hi");
    a.expect_exact("MSG b - hi");
}

#[test]
fn a_denied_join_is_not_announced_as_withdrawn() {
    // The operator refused it (or a timeout did): "withdrawn" would say the peer gave up.
    let mut server = Server::start(&["--approval-timeout", "0.5"]);
    let (mut d, _) = server.join_waiting("d");
    server.console("deny d");
    server.expect_console("denied d");
    d.expect("DENIED ");
    let (mut t, _) = server.join_waiting("t");
    t.expect("DENIED ");
    t.expect_eof();
    // Everything the console printed about both is in before the reply to a later command.
    server.console_reply("pending");
    let withdrawn: Vec<&String> = server
        .console_history()
        .iter()
        .filter(|l| l.contains("withdrawn"))
        .collect();
    assert!(withdrawn.is_empty(), "console said {withdrawn:?}");
}

#[test]
fn a_waiting_join_that_disconnects_leaves_the_queue() {
    let mut server = Server::start(&[]);
    let (gone, _) = server.join_waiting("gone");
    let (mut stays, _) = server.join_waiting("stays");
    drop(gone);
    // The oldest is gone, so a bare approve takes the next one (after the server saw the close,
    // which the console's reply to `pending` proves by no longer listing it).
    let deadline = std::time::Instant::now() + chat_testkit::TIMEOUT;
    while server.pending().len() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "gone is still pending"
        );
    }
    server.console("approve");
    server.expect_console("approved stays (by stdin; 1 online)");
    assert_eq!(stays.expect_welcome("stays"), 1);
}
