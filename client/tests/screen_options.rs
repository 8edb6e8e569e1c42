//! Issue 25's everyday features through a pseudo-terminal read back by `vt100`, at 20, 40, 80
//! and 200 columns, with `NO_COLOR` and without: `/ignore` and `/unignore`, `/r` answering the
//! last private, the configuration file's `time_format` (seconds) and `hide_joins`, the "new
//! since you scrolled up" line and the unread count, `/log on|off`, and day-change lines
//! dating old history.
#![allow(clippy::unwrap_used)]

mod util;

use util::screen::Screen;
use util::terminals::{self, entries, entries_with, wait_entry, Term};
use util::{Console, Peer, Server};

/// A client named `name` in `addr`'s room in `term`, with `config` as its config.toml.
fn joined_with(term: Term, name: &str, addr: &str, config: &str) -> (Screen, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("chat-client");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("config.toml"), config).unwrap();
    let path = dir.path().to_str().unwrap().to_owned();
    let mut envs: Vec<(&str, &str)> = vec![("XDG_CONFIG_HOME", &path), ("XDG_STATE_HOME", &path)];
    if term.no_color {
        envs.push(("NO_COLOR", "1"));
    }
    let screen = Screen::start(&["--name", name, addr], &envs, 30, term.cols);
    screen.wait_text("connected");
    (screen, dir)
}

#[test]
fn ignore_hides_a_name_until_unignore() {
    let server = Server::start(true, Console::Closed);
    let mut spam = Peer::join(&server.addr, "spam");
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let label = term.label();
        let (mut screen, _dir) = terminals::joined(term, 30, &term.name("u"), &server.addr);
        screen.keys("/ignore spam\r");
        wait_entry(&screen, "ignoring spam");
        spam.send(&format!("s{n}"));
        spam.send(&format!("/private {} p{n}", term.name("u")));
        alice.send(&format!("a{n}"));
        let rows = wait_entry(&screen, &format!("a{n}"));
        assert!(
            entries_with(&rows, &format!("s{n}")).is_empty(),
            "{label}: {rows:#?}"
        );
        assert!(
            entries_with(&rows, &format!("p{n}")).is_empty(),
            "{label}: {rows:#?}"
        );
        screen.keys("/unignore spam\r");
        wait_entry(&screen, "no longer ignoring spam");
        spam.send(&format!("t{n}"));
        let rows = wait_entry(&screen, &format!("t{n}"));
        let back = entries_with(&rows, &format!("t{n}"));
        assert_eq!(back[0].prefix, "spam", "{label}: {rows:#?}");
    }
}

#[test]
fn r_answers_whoever_wrote_privately_last() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut carol = Peer::join(&server.addr, "carol");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let name = term.name("u");
        let (mut screen, _dir) = terminals::joined(term, 30, &name, &server.addr);
        alice.expect(&format!("JOIN {name}"));
        alice.send(&format!("/private {name} q{n}"));
        wait_entry(&screen, &format!("q{n}"));
        carol.send(&format!("/private {name} c{n}"));
        wait_entry(&screen, &format!("c{n}"));
        screen.keys(&format!("/r ok{n}\r"));
        assert_eq!(
            carol.expect("PRIV "),
            format!("PRIV {name} carol - ok{n}"),
            "{}",
            term.label()
        );
        let rows = wait_entry(&screen, &format!("ok{n}"));
        if term.cols >= 80 {
            let own = entries_with(&rows, &format!("ok{n}"));
            assert_eq!(own[0].prefix, "→*carol*", "{}: {rows:#?}", term.label());
        }
    }
}

#[test]
fn the_time_format_shows_seconds_and_hide_joins_hides_joins() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let config = "time_format = \"%H:%M:%S\"\nhide_joins = true\n";
    for (n, term) in terminals::every().into_iter().enumerate() {
        let label = term.label();
        let (screen, _dir) = joined_with(term, &term.name("u"), &server.addr, config);
        let _visitor = Peer::join(&server.addr, &format!("v{n}"));
        alice.send(&format!("x{n}"));
        let rows = wait_entry(&screen, &format!("x{n}"));
        assert!(
            entries(&rows).iter().all(|e| !e.text.contains("joined")),
            "{label}: {rows:#?}"
        );
        let said = entries_with(&rows, &format!("x{n}"));
        // The time column is left out below 40 columns of text, to leave room for it.
        if term.cols >= 40 {
            let time = said[0].head.split(' ').next().unwrap();
            let b = time.as_bytes();
            assert!(
                time.len() == 8 && b[2] == b':' && b[5] == b':',
                "{label}: {time:?} in {rows:#?}"
            );
        }
    }
}

#[test]
fn scrolled_up_new_lines_are_counted_and_marked() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let label = term.label();
        let name = term.name("u");
        let (mut screen, _dir) = terminals::joined(term, 12, &name, &server.addr);
        alice.expect(&format!("JOIN {name}"));
        for i in 0..30 {
            alice.send(&format!("{n}o{i}"));
        }
        // Unique to this run: the room's history holds the earlier runs' lines.
        let last = format!("{n}o29");
        wait_entry(&screen, &last);
        // PgUp: the view stays where it is while alice goes on.
        screen.keys("\x1b[5~");
        screen.wait_for("scrolled up", |rows| entries_with(rows, &last).is_empty());
        alice.send(&format!("n{n}"));
        let rows = screen.wait_for("the new line counted", |rows| {
            rows.iter().any(|r| r.contains("1 new"))
        });
        assert!(
            entries_with(&rows, &format!("n{n}")).is_empty(),
            "{label}: {rows:#?}"
        );
        // Ctrl-End: back to the newest, with the marker above what came meanwhile.
        screen.keys("\x1b[1;5F");
        let rows = wait_entry(&screen, &format!("n{n}"));
        let shown = entries(&rows);
        let marker = shown
            .iter()
            .position(|e| e.text.contains("new since you scrolled up"))
            .unwrap_or_else(|| panic!("{label}: no marker in {rows:#?}"));
        assert!(
            shown[marker + 1].text == format!("n{n}"),
            "{label}: {rows:#?}"
        );
    }
}

#[test]
fn log_on_writes_plain_lines_with_times_to_a_file() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let label = term.label();
        let (mut screen, dir) = terminals::joined(term, 20, &term.name("u"), &server.addr);
        screen.keys("/log on\r");
        wait_entry(&screen, "logging to");
        alice.send(&format!("**l{n}**"));
        wait_entry(&screen, &format!("l{n}"));
        screen.keys("/log off\r");
        wait_entry(&screen, "stopped logging");
        let logs = dir.path().join("chat-client").join("logs");
        let file = std::fs::read_dir(&logs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains('\x1b'), "{label}: {text:?}");
        let line = text
            .lines()
            .find(|l| l.ends_with(&format!("<alice> **l{n}**")))
            .unwrap_or_else(|| panic!("{label}: {text}"));
        // `2026-12-06 09:56:01 <alice> ...`: the date and the time to the second.
        let b = line.as_bytes();
        assert!(
            b[4] == b'-' && b[13] == b':' && b[16] == b':',
            "{label}: {line:?}"
        );
        assert!(
            text.lines().last().unwrap().starts_with("--- log closed"),
            "{label}"
        );
    }
}

#[test]
fn old_history_is_dated_by_day_change_lines() {
    for term in terminals::every() {
        let label = term.label();
        let (addr, script) = util::fake_server(|mut conn| {
            conn.send("NAME? name please");
            conn.expect("bob");
            conn.send("WELCOME bob 2");
            conn.send("HIST 2026-01-02T10:00:00.000Z MSG alice - h1");
            conn.send("HIST 2026-01-03T10:00:00.000Z MSG alice - h2");
            conn.send("INFO end");
            conn.expect("/leave");
            conn.send("BYE bye");
        });
        let (mut screen, _dir) = terminals::start(term, 40, &["--name", "bob", &addr]);
        let rows = wait_entry(&screen, "end");
        let shown: Vec<String> = entries(&rows).into_iter().map(|e| e.text).collect();
        let at = |text: &str| {
            shown
                .iter()
                .position(|t| terminals::flat(t).contains(&terminals::flat(text)))
                .unwrap_or_else(|| panic!("{label}: no {text:?} in {rows:#?}"))
        };
        // TZ=UTC in the test terminal: the days are the history's own.
        let (d1, h1) = (at("day changed to Fri 02 Jan 2026"), at("h1"));
        let (d2, h2) = (at("day changed to Sat 03 Jan 2026"), at("h2"));
        assert!(d1 < h1 && h1 < d2 && d2 < h2, "{label}: {rows:#?}");
        screen.keys("/quit\r");
        assert_eq!(screen.wait_exit(), 0, "{label}");
        script.join().unwrap();
    }
}
