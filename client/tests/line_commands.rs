//! `/search`, `/clear` and `/query` in line mode (`--plain`, pipes): the same brain as the full
//! screen, shown as lines. `/search` prints the kept lines holding a text with their times;
//! `/clear` clears a terminal with the standard escapes and never writes one into a pipe;
//! `/query NAME` sends plain lines to NAME and shows it in the prompt.
#![allow(clippy::unwrap_used)]

mod util;

use util::terminals::{self, Term};
use util::{Client, Console, Peer, Server};

/// A line-mode client named `name` on `server`, admitted.
fn joined(server: &Server, name: &str) -> Client {
    let mut client = Client::start(&["--plain", "--name", name, &server.addr], &[]);
    client.stdout.expect(&format!("you are in as {name}"));
    client
}

/// Whether `line` is `  HH:MM ` followed by `rest`.
fn timed(line: &str, rest: &str) -> bool {
    let b = line.as_bytes();
    line.len() > 8
        && line.starts_with("  ")
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4] == b':'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && line[7..] == format!(" {rest}")
}

#[test]
fn search_prints_the_kept_lines_holding_the_text_with_their_times() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = joined(&server, "bob");
    alice.expect("JOIN bob");
    for line in ["deploy at 5", "lunch?", "DEPLOY done"] {
        alice.send(line);
    }
    bob.stdout.expect("<alice> DEPLOY done");
    bob.type_line("/search deploy");
    assert_eq!(
        bob.stdout.expect("-- /search"),
        "-- /search deploy: 2 kept line(s), oldest first:"
    );
    let found = |l: &str| l.starts_with("  ");
    let first = bob.stdout.expect_by("a line found", found);
    assert!(timed(&first, "<alice> deploy at 5"), "{first:?}");
    let second = bob.stdout.expect_by("a line found", found);
    assert!(timed(&second, "<alice> DEPLOY done"), "{second:?}");
    bob.type_line("/search nothing like it");
    assert_eq!(
        bob.stdout.expect("-- /search"),
        "-- /search nothing like it: no match"
    );
    // Searching again does not find what the search itself said.
    bob.type_line("/search nothing like it");
    assert_eq!(
        bob.stdout.expect("-- /search"),
        "-- /search nothing like it: no match"
    );
    bob.type_line("/leave");
    assert_eq!(bob.wait().0, 0);
}

#[test]
fn clear_in_a_pipe_writes_no_escape_and_forgets_the_kept_lines() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = joined(&server, "bob");
    alice.expect("JOIN bob");
    alice.send("before the clear");
    bob.stdout.expect("<alice> before the clear");
    bob.type_line("/clear");
    assert_eq!(
        bob.stdout.expect("-- /clear"),
        "-- /clear: standard output is not a terminal"
    );
    bob.type_line("/search before");
    assert_eq!(
        bob.stdout.expect("-- /search"),
        "-- /search before: no match"
    );
    bob.type_line("/leave");
    assert_eq!(bob.wait().0, 0);
    let all = bob.stdout.rest().concat();
    assert!(!all.contains('\x1b'), "{all:?}");
}

#[test]
fn query_sends_plain_lines_to_one_member_until_query_alone() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = joined(&server, "bob");
    alice.expect("JOIN bob");
    bob.type_line("/query alice");
    bob.stdout.expect("-- talking privately with alice");
    bob.type_line("just for you");
    bob.type_line("/color red in red");
    assert_eq!(alice.expect("PRIV "), "PRIV bob alice - just for you");
    assert_eq!(alice.expect("PRIV "), "PRIV bob alice red in red");
    assert_eq!(
        bob.stdout.expect("[private]"),
        "[private] <you -> alice> just for you"
    );
    // /me cannot go privately: refused, not said to the room.
    bob.type_line("/me waves");
    bob.stdout.expect("! /me cannot go privately to alice");
    bob.type_line("/query");
    bob.stdout.expect("-- back in the room");
    bob.type_line("for everyone");
    assert_eq!(alice.expect("MSG "), "MSG bob - for everyone");
    bob.type_line("/leave");
    assert_eq!(bob.wait().0, 0);
}

#[test]
fn on_a_terminal_clear_clears_it_and_the_prompt_names_the_query() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let name = term.name("u");
        let label = term.label();
        let (mut screen, _dir) = start_plain(term, &name, &server.addr);
        alice.expect(&format!("JOIN {name}"));
        // Unique to this run: the room's history replays the earlier runs' lines.
        let old = format!("<alice> old{n}");
        alice.send(&old["<alice> ".len()..]);
        screen.wait_text(&old);
        let before = screen.raw().len();
        screen.keys("/clear\r");
        screen.wait_raw("the clearing escapes", |raw| {
            raw[before.min(raw.len())..]
                .windows(11)
                .any(|w| w == b"\x1b[H\x1b[2J\x1b[3J")
        });
        let rows = screen.wait_for("an empty screen", |rows| {
            !rows.iter().any(|r| r.contains("<alice> old"))
        });
        assert!(!rows.concat().contains("you are in"), "{label}: {rows:#?}");
        screen.keys("/query alice\r");
        screen.wait_for("the query in the prompt", |rows| {
            rows.iter().any(|r| r.starts_with("[alice]"))
        });
        screen.keys("hi\r");
        assert_eq!(
            alice.expect("PRIV "),
            format!("PRIV {name} alice - hi"),
            "{label}"
        );
    }
}

/// A line-mode client in a pseudo-terminal (standard input and output both terminals).
fn start_plain(term: Term, name: &str, addr: &str) -> (util::screen::Screen, tempfile::TempDir) {
    let (screen, dir) = terminals::start(term, 12, &["--plain", "--name", name, addr]);
    // A line wraps at 20 columns: read the rows as one text.
    let admitted = format!("you are in as {name}");
    screen.wait_for(&admitted, |rows| rows.concat().contains(&admitted));
    (screen, dir)
}
