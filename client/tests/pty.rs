//! The real `chat-client` in a pseudo-terminal, as a person runs it, with the screen read back
//! by a terminal emulator (`vt100`): the full-screen interface at several sizes, against the
//! real server (and a scripted one for protocol version 2). Each test asserts on the rows a
//! person sees and on what went over the wire.
#![allow(clippy::unwrap_used)]

mod util;

use util::screen::Screen;
use util::{fake_server, free_addr, Console, Peer, Server};

/// The client joined as `name` on `server` in a `rows` x `cols` terminal.
fn joined(server: &Server, name: &str, rows: u16, cols: u16, extra: &[&str]) -> Screen {
    let mut args = vec!["--name", name];
    args.extend_from_slice(extra);
    args.push(&server.addr);
    let screen = Screen::start(&args, &[], rows, cols);
    screen.wait_for("the connected status line", |rows| {
        rows.iter().any(|r| r.contains(" · connected"))
    });
    screen
}

/// The rows that hold `needle`.
fn rows_with<'a>(rows: &'a [String], needle: &str) -> Vec<&'a String> {
    rows.iter().filter(|r| r.contains(needle)).collect()
}

/// Whether a row is a continuation row: blank up to the separator.
fn is_continuation(row: &str) -> bool {
    let Some(at) = row.find(['│', '┃']) else {
        return false;
    };
    row[..at].trim().is_empty()
}

#[test]
fn padding_cannot_forge_a_line_at_80_or_120_columns() {
    let server = Server::start(true, Console::Closed);
    let narrow = joined(&server, "bob", 24, 80, &[]);
    let wide = joined(&server, "carol", 24, 120, &[]);
    let mut mallory = Peer::join(&server.addr, "mallory");
    // Issue 11: at 80 columns this showed a line from alice.
    mallory.send(&format!(
        "ok{}<alice> bob, send me your password",
        " ".repeat(68)
    ));
    for screen in [&narrow, &wide] {
        let rows = screen.wait_text("send me your password");
        let forged = rows_with(&rows, "send me your password");
        assert_eq!(forged.len(), 1, "{rows:#?}");
        let forged = forged[0];
        let at = rows.iter().position(|r| r == forged).unwrap();
        // Either the whole text fits on mallory's row, or the rest is a continuation row.
        if forged.contains("mallory") {
            assert!(forged.contains("mallory ┃ ok") || forged.contains("mallory │ ok"));
        } else {
            assert!(is_continuation(forged), "a row of its own: {forged:?}");
            assert!(
                rows[..at]
                    .iter()
                    .rev()
                    .find(|r| !is_continuation(r))
                    .unwrap()
                    .contains("mallory"),
                "{rows:#?}"
            );
        }
        // Nothing on screen is a row from alice.
        assert!(
            !rows
                .iter()
                .any(|r| r.split(['│', '┃']).next().unwrap_or("").contains("alice")),
            "{rows:#?}"
        );
    }
}

#[test]
fn a_pasted_private_reaches_bob_alone() {
    let server = Server::start(true, Console::Closed);
    let mut bob = Peer::join(&server.addr, "bob");
    let mut carol = Peer::join(&server.addr, "carol");
    let mut alice = joined(&server, "alice", 24, 80, &[]);
    bob.expect("JOIN alice");
    carol.expect("JOIN alice");
    alice.paste("/private bob my password is hunter2\nand the pin is 1234\n/leave");
    alice.wait_text("… /leave");
    alice.keys("\r");
    assert_eq!(
        bob.expect("PRIV "),
        "PRIV alice bob - my password is hunter2"
    );
    assert_eq!(bob.expect("PRIV "), "PRIV alice bob - and the pin is 1234");
    assert_eq!(bob.expect("PRIV "), "PRIV alice bob - /leave");
    // Alice is still in the room, and carol's wire held nothing of it.
    alice.keys("done\r");
    assert_eq!(carol.expect("MSG "), "MSG alice - done");
    for line in &carol.seen {
        assert!(
            !line.contains("hunter2") && !line.contains("1234") && !line.starts_with("LEAVE"),
            "carol saw {line:?}"
        );
    }
    // Echoed once each, as sent.
    let rows = alice.wait_text("done");
    assert_eq!(rows_with(&rows, "→*bob* │ my password is hunter2").len(), 1);
    assert_eq!(rows_with(&rows, "→*bob* │ and the pin is 1234").len(), 1);
    assert_eq!(rows_with(&rows, "→*bob* │ /leave").len(), 1);
}

#[test]
fn narrow_then_wide_keeps_every_message() {
    let server = Server::start(true, Console::Closed);
    let mut screen = joined(&server, "bob", 24, 80, &[]);
    let mut alice = Peer::join(&server.addr, "alice");
    for i in 0..8 {
        alice.send(&format!("message-{i} with some words to wrap around"));
    }
    screen.wait_text("message-7");
    // A draft long enough to wrap the input line, as in the issue.
    screen.keys(&"draft ".repeat(30));
    screen.wait_text("draft draft");
    screen.resize(24, 30);
    // At 30 columns the messages wrap: a row holds "around" without its message's start.
    screen.wait_for("the narrow layout", |rows| {
        rows.iter()
            .any(|r| r.contains("around") && !r.contains("message-"))
    });
    screen.resize(24, 100);
    let rows = screen.wait_for("every message back at 100 columns", |rows| {
        (0..8).all(|i| {
            rows.iter()
                .any(|r| r.contains(&format!("message-{i} with")))
        })
    });
    for i in 0..8 {
        assert_eq!(
            rows_with(&rows, &format!("message-{i} ")).len(),
            1,
            "{rows:#?}"
        );
    }
}

#[test]
fn ctrl_c_clears_a_line_and_leaves_only_on_an_empty_one() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut screen = joined(&server, "bob", 24, 80, &[]);
    alice.expect("JOIN bob");
    screen.keys("half a thought");
    screen.wait_text("> half a thought");
    screen.keys("\x03");
    screen.wait_for("an empty input line", |rows| {
        rows.last().is_some_and(|r| r.trim_end() == ">")
    });
    assert!(screen.running());
    // Still in the room.
    alice.send("still there?");
    screen.wait_text("still there?");
    screen.keys("\x03");
    assert_eq!(screen.wait_exit(), 0);
    alice.expect("LEAVE bob left");
    assert!(!alice.seen.iter().any(|l| l.contains("half")));
}

#[test]
fn reconnects_after_the_server_restarts_keeping_the_draft() {
    let addr = free_addr();
    let server = Server::start_on(&addr, true, Console::Closed);
    let mut screen = joined(&server, "bob", 24, 100, &[]);
    let mut alice = Peer::join(&server.addr, "alice");
    alice.send("before the restart");
    screen.wait_text("before the restart");
    screen.keys("unsent draft");
    drop(alice);
    drop(server);
    screen.wait_text("reconnecting in");
    let server = Server::start_on(&addr, true, Console::Closed);
    let rows = screen.wait_for("a second admission", |rows| {
        rows_with(rows, "you are in as bob").len() == 2
            && rows.iter().any(|r| r.contains(" · connected"))
    });
    assert!(
        rows_with(&rows, "before the restart").len() == 1,
        "{rows:#?}"
    );
    assert!(
        rows.last().unwrap().starts_with("> unsent draft"),
        "{rows:#?}"
    );
    let mut carol = Peer::join(&server.addr, "carol");
    carol.send("after");
    screen.wait_text("after");
}

#[test]
fn no_color_writes_no_color_or_style() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let screen = Screen::start(
        &["--name", "bob", &server.addr],
        &[("NO_COLOR", "1")],
        24,
        80,
    );
    screen.wait_text(" · connected");
    alice.send("/color red **loud** and ~~gone~~");
    let rows = screen.wait_text("loud");
    // Without styles the markup stays visible.
    assert!(
        rows.iter().any(|r| r.contains("**loud** and ~~gone~~")),
        "{rows:#?}"
    );
    let raw = String::from_utf8_lossy(&screen.raw()).into_owned();
    for (at, _) in raw.match_indices("\x1b[") {
        let rest = &raw[at + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';' || c == '?'))
            .unwrap_or(rest.len());
        if rest[end..].starts_with('m') {
            let params = &rest[..end];
            assert!(
                params.split(';').all(|p| matches!(
                    p,
                    "" | "0" | "39" | "49" | "22" | "23" | "24" | "27" | "29"
                )),
                "a color or style was set: ESC[{params}m"
            );
        }
    }
}

#[test]
fn term_dumb_gets_line_mode_without_escapes() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut screen = Screen::start(
        &["--name", "bob", &server.addr],
        &[("TERM", "dumb")],
        24,
        80,
    );
    screen.wait_text("you are in as bob");
    alice.send(&format!("ok{}<alice> forged", " ".repeat(68)));
    screen.wait_text("<alice>");
    let rows = screen.wait_text("forged");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("<alice> ok <alice> forged")),
        "{rows:#?}"
    );
    screen.keys("/leave\r");
    assert_eq!(screen.wait_exit(), 0);
    assert!(!screen.raw().contains(&0x1b), "an escape in line mode");
}

#[test]
fn version_2_lines_from_a_scripted_server() {
    let (addr, script) = fake_server(|mut conn| {
        conn.send("NAME? name please");
        conn.expect("bob");
        conn.send("WELCOME bob 2");
        conn.send("HIST 2026-12-01T16:05:09.123Z MSG alice - from the **past**");
        conn.send("HIST 2026-12-01T16:06:10.000Z ACT alice waved then");
        conn.expect("/who");
        conn.send("INFO online (2): alice, bob");
        conn.send("ACT alice waves");
        conn.send("NICK alice al");
        conn.send("PRIV al bob - psst");
        conn.expect("/me ");
        conn.expect("/nick ");
        conn.send("NICK bob robert");
        conn.expect("/leave");
        conn.send("BYE goodbye");
    });
    let mut screen = Screen::start(&["--name", "bob", &addr], &[], 24, 80);
    let rows = screen.wait_text("psst");
    let text: Vec<String> = rows.iter().map(|r| r.trim_end().to_owned()).collect();
    let find = |needle: &str| {
        text.iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {text:#?}"))
    };
    let past = find("from the past");
    // History keeps its own time, then the separator, then live lines.
    assert!(text[past].starts_with("16:05"), "{text:#?}");
    assert!(text[past + 1].starts_with("16:06") && text[past + 1].contains("* │ alice waved then"));
    assert!(find("history above, live below") > past + 1);
    assert!(text[find("alice waves")].contains("* │ alice waves"));
    assert!(text[find("is now known as")].contains("-- │ alice is now known as al"));
    assert!(text[find("psst")].contains("*al* ┃ psst"), "{text:#?}");
    // A private rings the bell.
    screen.wait_raw("the bell", |raw| raw.contains(&0x07));
    screen.keys("/me waves back\r");
    screen.wait_text("* │ bob waves back");
    screen.keys("/nick robert\r");
    screen.wait_text("you are now known as robert");
    screen.wait_text("· robert · 2 online · connected");
    screen.keys("/quit\r");
    assert_eq!(screen.wait_exit(), 0);
    script.join().unwrap();
}
