//! Issue 25's display defects and features through a pseudo-terminal read back by `vt100`, at
//! 20, 40, 80 and 200 columns, with `NO_COLOR` and without: look-alike names never shown alike,
//! 60 joins as one row, a 65-name `/who` as one entry, the status line keeping the reconnect
//! reason, a paste over the input cap refused whole, an over-long line sent in pieces, Ctrl-Z
//! giving the terminal back and taking it again.
#![allow(clippy::unwrap_used)]

mod util;

use util::screen::Screen;
use util::{fake_server, Console, Peer, Server};

/// The terminal widths every test runs at.
const WIDTHS: [u16; 4] = [20, 40, 80, 200];

/// Every width, with and without `NO_COLOR`: (columns, extra environment).
fn terminals() -> Vec<(u16, Vec<(&'static str, &'static str)>)> {
    let mut out = Vec::new();
    for cols in WIDTHS {
        out.push((cols, vec![]));
        out.push((cols, vec![("NO_COLOR", "1")]));
    }
    out
}

/// A client named `name` in `server`'s room in a `rows` x `cols` terminal, its own
/// configuration directory empty.
fn start(
    server: &str,
    name: &str,
    rows: u16,
    cols: u16,
    envs: &[(&str, &str)],
) -> (Screen, tempfile::TempDir) {
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().to_str().unwrap().to_owned();
    let mut all: Vec<(&str, &str)> = vec![("XDG_CONFIG_HOME", &dir), ("XDG_STATE_HOME", &dir)];
    all.extend_from_slice(envs);
    let screen = Screen::start(&["--name", name, server], &all, rows, cols);
    screen.wait_text("connected");
    (screen, config)
}

/// The prefix column of the rows that hold `text`: what stands left of the separator.
fn prefixes(rows: &[String], text: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r.contains(text))
        .filter_map(|r| r.split(['│', '┃']).next())
        .map(|p| p.trim().to_owned())
        .collect()
}

#[test]
fn look_alike_names_never_show_alike() {
    let server = Server::start(true, Console::Closed);
    let mut real = Peer::join(&server.addr, "trustedadminbot_real");
    let mut fake = Peer::join(&server.addr, "trustedadminbot_fake");
    for (n, (cols, envs)) in terminals().into_iter().enumerate() {
        let (screen, _dir) = start(&server.addr, &format!("u{n}"), 30, cols, &envs);
        real.send(&format!("real{n}"));
        fake.send(&format!("fake{n}"));
        let rows = screen.wait_text(&format!("fake{n}"));
        let a = prefixes(&rows, &format!("real{n}"));
        let b = prefixes(&rows, &format!("fake{n}"));
        assert_eq!((a.len(), b.len()), (1, 1), "{cols}: {rows:#?}");
        assert_ne!(
            a[0], b[0],
            "{cols} columns show both as {:?}: {rows:#?}",
            a[0]
        );
        assert!(a[0].contains("real") || a[0].ends_with('l'), "{rows:#?}");
        if cols >= 200 {
            assert!(a[0].ends_with("trustedadminbot_real"), "{rows:#?}");
        }
    }
}

#[test]
fn sixty_joins_are_one_row_and_a_65_name_who_is_one_entry() {
    let (addr, script) = fake_server(|mut conn| {
        conn.send("NAME? name please");
        conn.expect("bob");
        conn.send("WELCOME bob 66");
        conn.expect("/who");
        let names: Vec<String> = (0..65).map(|i| format!("member{i:02}")).collect();
        conn.send(&format!(
            "INFO online (66): bob, {},",
            names[..20].join(", ")
        ));
        conn.send(&format!("INFO  {},", names[20..45].join(", ")));
        conn.send(&format!("INFO  {}", names[45..].join(", ")));
        for i in 0..60 {
            conn.send(&format!("JOIN joiner{i}"));
        }
        conn.send("INFO end of joins");
        conn.expect("/leave");
        conn.send("BYE bye");
    });
    let mut screen = Screen::start(&["--name", "bob", &addr], &[("NO_COLOR", "1")], 40, 80);
    let rows = screen.wait_text("end of joins");
    let joins: Vec<&String> = rows.iter().filter(|r| r.contains("joiner")).collect();
    assert_eq!(joins.len(), 1, "{rows:#?}");
    assert!(
        joins[0].contains("60 joined: joiner0, joiner1"),
        "{rows:#?}"
    );
    // One entry: only its first row has a prefix; no row starts with a stray space.
    let who: Vec<&String> = rows.iter().filter(|r| r.contains("online (66)")).collect();
    assert_eq!(who.len(), 1, "{rows:#?}");
    assert!(rows.iter().any(|r| r.contains("member64")), "{rows:#?}");
    assert!(!rows.iter().any(|r| r.contains("│  member")), "{rows:#?}");
    screen.keys("/quit\r");
    assert_eq!(screen.wait_exit(), 0);
    script.join().unwrap();
}

#[test]
fn the_status_line_keeps_the_reconnect_reason_at_40_and_100_columns() {
    for cols in [40u16, 100] {
        let server = Server::start(true, Console::Closed);
        let (screen, _dir) = start(&server.addr, "bob", 12, cols, &[("NO_COLOR", "1")]);
        drop(server);
        let rows = screen.wait_for("the reason in the status line", |rows| {
            rows.iter()
                .any(|r| r.starts_with('[') && r.contains("refused"))
        });
        let status = rows
            .iter()
            .find(|r| r.starts_with('[') && r.contains("refused"))
            .unwrap();
        assert!(
            status.contains("retry in") || status.contains("reconnecting in"),
            "{rows:#?}"
        );
        assert!(!status.contains('…'), "cut at {cols}: {status:?}");
    }
}

#[test]
fn a_paste_over_the_input_cap_is_refused_whole() {
    let server = Server::start(true, Console::Closed);
    let (mut screen, _dir) = start(&server.addr, "bob", 20, 80, &[]);
    screen.keys("kept draft");
    screen.wait_text("> kept draft");
    let paste = "a line of a long paste, fifty-eight bytes with its LF...\n".repeat(6000);
    screen.paste(&paste);
    let rows = screen.wait_text("paste refused");
    assert!(rows.concat().contains("6001 lines"), "{rows:#?}");
    assert!(
        rows.last().unwrap().starts_with("> kept draft"),
        "{rows:#?}"
    );
}

#[test]
fn an_over_long_line_reaches_the_room_in_pieces_that_fit() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let (mut screen, _dir) = start(&server.addr, "bob", 20, 80, &[]);
    alice.expect("JOIN bob");
    let words: Vec<String> = (0..900).map(|i| format!("w{i}")).collect();
    screen.paste(&words.join(" "));
    screen.keys("\r");
    let mut got = Vec::new();
    while got.len() < words.len() {
        let line = alice.expect("MSG bob - ");
        assert!(line.len() <= 4096 + 20, "{}", line.len());
        got.extend(line["MSG bob - ".len()..].split(' ').map(str::to_owned));
    }
    assert_eq!(got, words);
    let rows = screen.wait_text("w899");
    assert!(!rows.concat().contains("not delivered"), "{rows:#?}");
}

#[test]
fn ctrl_z_gives_the_terminal_back_and_takes_it_again() {
    let server = Server::start(true, Console::Closed);
    let (mut screen, _dir) = start(&server.addr, "bob", 12, 80, &[]);
    let before = screen.raw().len();
    // The test's pseudo-terminal has no job control (an orphaned process group), so the
    // client is not stopped: it leaves the alternate screen, and comes straight back.
    screen.keys("\x1a");
    screen.wait_raw("the alternate screen left and entered again", |raw| {
        let after = String::from_utf8_lossy(&raw[before.min(raw.len())..]).into_owned();
        let left = after.find("\x1b[?1049l");
        let back = after.rfind("\x1b[?1049h");
        matches!((left, back), (Some(l), Some(b)) if b > l)
    });
    screen.keys("still here\r");
    screen.wait_text("bob │ still here");
}
