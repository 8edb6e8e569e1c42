//! Names after login, against the real `chat-server` binary: `/nick` and `NICK` (the name rule,
//! uniqueness without regard to case, a change of case, the reserved name `you`, the rename
//! limit), and everything keyed by the name following a rename (PRIV routing, `/who`, the
//! console's `who` and `kick`).
//!
//! "Nothing arrives" is proven with a marker: after the action that must not reach a member, a
//! room message is sent and must be that member's very next line.
#![allow(clippy::unwrap_used)]

use chat_testkit::{marker, marker_as, room, Server};

/// The rename limit the lead documented: this many renames in quick succession, then one per
/// 20 s.
const RENAMES_IN_A_ROW: usize = 3;

#[test]
fn nick_tells_every_member_including_the_renamer() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "b", "c"]);
    c[1].send_line("/nick bobby");
    for m in c.iter_mut() {
        m.expect_exact("NICK b bobby");
    }
    // The renamer now speaks under the new name, and /who lists it instead of the old one.
    let (a, rest) = c.split_at_mut(1);
    let (b, cc) = rest.split_at_mut(1);
    marker_as(&mut b[0], "bobby", &mut [&mut a[0], &mut cc[0]], "new name");
    b[0].send_line("/me is renamed");
    a[0].expect_exact("ACT bobby is renamed");
    cc[0].expect_exact("ACT bobby is renamed");
    a[0].send_line("/who");
    let who = a[0].expect("INFO online (3): ");
    let mut names: Vec<&str> = who["INFO online (3): ".len()..].split(", ").collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "bobby", "c"], "in {who:?}");
}

#[test]
fn nick_may_change_only_the_case() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["alice", "bob"]);
    c[0].send_line("/nick Alice");
    c[0].expect_exact("NICK alice Alice");
    c[1].expect_exact("NICK alice Alice");
    let (a, b) = c.split_at_mut(1);
    marker_as(&mut a[0], "Alice", &mut [&mut b[0]], "capitalised");
    b[0].send_line("/who");
    let who = b[0].expect("INFO online (2): ");
    assert!(
        who.contains("Alice") && !who.contains("alice"),
        "/who after the rename: {who:?}"
    );
}

#[test]
fn nick_into_a_members_name_in_any_case_is_refused_and_changes_nothing() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["Alice", "bob"]);
    for taken in ["Alice", "alice", "ALICE", "aLiCe"] {
        c[1].send_line(&format!("/nick {taken}"));
        let got = c[1].next_line();
        assert!(
            got.starts_with("ERROR name-taken "),
            "/nick {taken} should give ERROR name-taken, got {got:?}"
        );
    }
    // No NICK went out and bob is still bob.
    let (a, b) = c.split_at_mut(1);
    marker(&mut b[0], &mut [&mut a[0]], "still bob");
    a[0].send_line("/private bob still reachable");
    b[0].expect_exact("PRIV Alice bob - still reachable");
}

#[test]
fn nick_into_the_name_of_a_waiting_join_is_refused() {
    let mut server = Server::start(&[]);
    let (mut a, _) = server.join_waiting("a");
    server.console("approve a");
    server.expect_console("approved a (by stdin; 1 online)");
    assert_eq!(a.expect_welcome("a"), 1);
    let (mut carol, _) = server.join_waiting("carol");
    a.send_line("/nick Carol");
    a.expect("ERROR name-taken ");
    // The waiting join still holds its name and is admitted under it.
    server.console("approve carol");
    server.expect_console("approved carol (by stdin; 2 online)");
    assert_eq!(carol.expect_welcome("carol"), 2);
    a.expect_exact("JOIN carol");
    marker(&mut a, &mut [&mut carol], "a is still a");
}

#[test]
fn nick_to_a_bad_name_is_refused_and_you_is_reserved() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "b"]);
    // Control characters are left out: a member's line is sanitized before it is parsed, so
    // whether `/nick ev<ESC>il` is refused or renames to `evil` is not fixed by the contract.
    let too_long = "n".repeat(33);
    let bad = [
        "bad.name",
        "bøb",
        too_long.as_str(),
        "you",
        "You",
        "YOU",
        "yOu",
    ];
    for name in bad {
        c[0].send_line(&format!("/nick {name}"));
        let got = c[0].next_line();
        assert!(
            got.starts_with("ERROR bad-name "),
            "/nick {name:?} should give ERROR bad-name, got {got:?}"
        );
    }
    // A rename with no name at all is refused too (its code is not fixed by the contract).
    c[0].send_line("/nick");
    let got = c[0].next_line();
    assert!(
        got.starts_with("ERROR usage ") || got.starts_with("ERROR bad-name "),
        "/nick without a name gave {got:?}"
    );
    // Names that merely contain `you` are fine.
    c[0].send_line("/nick you2");
    c[0].expect_exact("NICK a you2");
    c[1].expect_exact("NICK a you2");
    let (a, b) = c.split_at_mut(1);
    marker_as(
        &mut a[0],
        "you2",
        &mut [&mut b[0]],
        "no other NICK went out",
    );
}

#[test]
fn the_name_you_is_refused_at_login_in_any_case() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = server.connect_prompted();
    for name in ["you", "You", "YOU", " yoU "] {
        c.send_line(name);
        c.expect("ERROR bad-name ");
        c.expect("NAME? ");
    }
    c.send_line("youth");
    assert_eq!(c.expect_welcome("youth"), 1);
}

#[test]
fn renames_over_the_limit_get_rate_limited_and_change_nothing() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["n0", "watcher"]);
    let mut current = "n0".to_owned();
    for i in 1..=RENAMES_IN_A_ROW {
        let next = format!("n{i}");
        c[0].send_line(&format!("/nick {next}"));
        let line = format!("NICK {current} {next}");
        c[0].expect_exact(&line);
        c[1].expect_exact(&line);
        current = next;
    }
    c[0].send_line("/nick toomany");
    c[0].expect("ERROR rate-limited ");
    // Nothing changed: no NICK reached the watcher (the marker is its next line), the name is
    // the last accepted one, and `toomany` is not taken.
    let (a, w) = c.split_at_mut(1);
    marker_as(&mut a[0], &current, &mut [&mut w[0]], "over the limit");
    w[0].send_line("/who");
    let who = w[0].expect("INFO online (2): ");
    assert!(
        who.contains(&current) && !who.contains("toomany"),
        "{who:?}"
    );
    let mut late = server.connect_prompted();
    late.send_line("toomany");
    assert_eq!(late.expect_welcome("toomany"), 3);
}

#[test]
fn private_and_msg_reach_a_member_by_the_new_name_only() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "b", "c"]);
    c[1].send_line("/nick bobby");
    for m in c.iter_mut() {
        m.expect_exact("NICK b bobby");
    }
    c[0].send_line("/private bobby psst");
    c[1].expect_exact("PRIV a bobby - psst");
    c[0].send_line("/msg BOBBY /color green hi");
    c[1].expect_exact("PRIV a bobby green hi");
    c[0].send_line("/private b old name");
    c[0].expect("ERROR no-such-user ");
    c[0].send_line("/msg b old name");
    c[0].expect("ERROR no-such-user ");
    // Privates from the renamed member carry the new name.
    c[1].send_line("/private a back");
    c[0].expect_exact("PRIV bobby a - back");
    // The third member saw none of it.
    let (a, rest) = c.split_at_mut(1);
    let (b, cc) = rest.split_at_mut(1);
    marker(
        &mut a[0],
        &mut [&mut b[0], &mut cc[0]],
        "after the privates",
    );
}

#[test]
fn a_rename_frees_the_old_name() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["a", "b"]);
    c[1].send_line("/nick bee");
    c[0].expect_exact("NICK b bee");
    c[1].expect_exact("NICK b bee");
    let mut newcomer = server.connect_prompted();
    newcomer.send_line("B");
    assert_eq!(newcomer.expect_welcome("B"), 3);
    c[0].expect_exact("JOIN B");
    c[1].expect_exact("JOIN B");
    c[0].send_line("/private B hello new B");
    newcomer.expect_exact("PRIV a B - hello new B");
}

#[test]
fn console_announces_a_rename_and_who_and_kick_follow_it() {
    let mut server = Server::start(&["--auto-approve"]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    let b_addr = b.local_addr();
    a.expect_exact("JOIN b");
    server.expect_console("joined b from ");
    b.send_line("/nick bobby");
    b.expect_exact("NICK b bobby");
    a.expect_exact("NICK b bobby");
    assert_eq!(server.expect_console("renamed "), "renamed b bobby");

    server.console("who");
    server.expect_console("online: 2");
    // Sorted by name, each with its transport and time in the room.
    let rows = [server.next_console(), server.next_console()];
    assert!(
        rows[0].starts_with(&format!("  a from {} (tcp), ", a.local_addr())),
        "{rows:?}"
    );
    assert!(
        rows[1].starts_with(&format!("  bobby from {b_addr} (tcp), ")),
        "{rows:?}"
    );

    server.console("kick b");
    server.expect_console("error: no member named b");
    server.console("kick bobby");
    server.expect_console_all(&["kicked bobby", "left bobby (kicked)"]);
    b.expect("BYE ");
    b.expect_closed();
    a.expect_exact("LEAVE bobby kicked");
}
