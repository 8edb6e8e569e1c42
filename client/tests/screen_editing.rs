//! The input line as a person sees it, through a pseudo-terminal read back by `vt100`, at 20,
//! 40, 80 and 200 columns, with `NO_COLOR` and without (issue 25): the cursor's cell at a
//! wrap and before a wide character that starts a row, Ctrl-R saying it found nothing,
//! Home and End editing, `nick: ` completion at the start of a line.
#![allow(clippy::unwrap_used)]

mod util;

use util::screen::Screen;
use util::{Console, Peer, Server};

/// The terminal widths every test runs at.
const WIDTHS: [u16; 4] = [20, 40, 80, 200];
/// Rows of every test terminal.
const ROWS: u16 = 12;

/// Runs `test` in a client joined to `server` at every width, with and without `NO_COLOR`.
fn each_terminal(server: &Server, mut test: impl FnMut(&mut Screen, u16, &str)) {
    for cols in WIDTHS {
        for no_color in [false, true] {
            let config = tempfile::tempdir().unwrap();
            let name = format!("u{cols}{}", u8::from(no_color));
            let mut envs = vec![("XDG_CONFIG_HOME", config.path().to_str().unwrap())];
            if no_color {
                envs.push(("NO_COLOR", "1"));
            }
            let mut screen = Screen::start(&["--name", &name, &server.addr], &envs, ROWS, cols);
            screen.wait_text("connected");
            test(&mut screen, cols, &name);
            screen.keys("\x03\x03");
            drop(screen);
        }
    }
}

/// The row index of the last row holding `needle`.
#[track_caller]
fn row_of(rows: &[String], needle: &str) -> u16 {
    let at = rows
        .iter()
        .rposition(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in {rows:#?}"));
    u16::try_from(at).unwrap()
}

#[test]
fn the_cursor_is_on_the_first_cell_of_a_wrapped_row() {
    let server = Server::start(true, Console::Closed);
    each_terminal(&server, |screen, cols, _| {
        // The prompt `> ` and cols-2 b fill the first row; xyz wraps (issue 25 at 100
        // columns: 98 b and xyz, Left three times).
        let bs = "b".repeat(usize::from(cols) - 2);
        screen.keys(&format!("{bs}xyz"));
        let rows = screen.wait_text("xyz");
        let row = row_of(&rows, "xyz");
        assert!(rows[usize::from(row) - 1].ends_with('b'), "{rows:#?}");
        screen.keys("\x1b[D\x1b[D\x1b[D");
        screen.wait_cursor("before the x, at the start of its row", (row, 0));
        // One more Left: the last b, in the last column of the row above.
        screen.keys("\x1b[D");
        screen.wait_cursor("on the last b", (row - 1, cols - 1));
        screen.keys("\x05\x15");
    });
}

#[test]
fn the_cursor_before_a_wide_character_that_starts_a_row_is_on_that_row() {
    let server = Server::start(true, Console::Closed);
    each_terminal(&server, |screen, cols, _| {
        // One cell is left at the end of the first row: 日 (two cells) starts the next.
        let a = "a".repeat(usize::from(cols) - 3);
        screen.keys(&format!("{a}日本"));
        let rows = screen.wait_text("日本");
        let row = row_of(&rows, "日本");
        assert!(rows[usize::from(row)].starts_with("日本"), "{rows:#?}");
        screen.keys("\x1b[D\x1b[D");
        screen.wait_cursor("before 日", (row, 0));
        screen.keys("\x1b[C");
        screen.wait_cursor("between 日 and 本", (row, 2));
        screen.keys("\x05\x15");
    });
}

#[test]
fn reverse_search_says_when_nothing_matches() {
    let server = Server::start(true, Console::Closed);
    each_terminal(&server, |screen, _, name| {
        // One word: it must not wrap at 20 columns. Its own echo, not a predecessor's line
        // in the room's history, says it was sent.
        screen.keys("hellohist\r");
        screen.wait_text(&format!("{name} │ hellohist"));
        screen.keys("draft");
        screen.keys("\x12hel");
        screen.wait_text("(search) 'hel'");
        screen.keys("zz");
        let rows = screen.wait_text("no match");
        // The stale match is gone from the input: the line shows the draft again.
        let prompt = row_of(&rows, "no match");
        let input: String = rows[usize::from(prompt)..].concat();
        assert!(!input.contains("hellohist"), "{rows:#?}");
        assert!(input.contains("draft"), "{rows:#?}");
        // Esc puts the draft back.
        screen.keys("\x1b");
        screen.wait_for("the draft back", |rows| {
            rows.last().unwrap().starts_with("> draft")
        });
        screen.keys("\x05\x15");
    });
}

#[test]
fn home_and_end_edit_the_line() {
    let server = Server::start(true, Console::Closed);
    each_terminal(&server, |screen, _, _| {
        screen.keys("ello");
        screen.wait_text("> ello");
        // Home: ESC [ H; End: ESC [ F (xterm).
        screen.keys("\x1b[Hh\x1b[F!");
        screen.wait_text("> hello!");
        screen.keys("\x05\x15");
    });
}

#[test]
fn a_name_completed_at_the_start_of_a_line_is_addressed() {
    let server = Server::start(true, Console::Closed);
    let _alice = Peer::join(&server.addr, "alice");
    each_terminal(&server, |screen, _, _| {
        // Tab knows the names once the answer to /who is in.
        screen.wait_text("alice, u");
        screen.keys("al\t");
        screen.wait_text("> alice:");
        screen.keys("hi al\t");
        // In the middle of a line a name is just the name.
        screen.wait_text("> alice: hi alice");
        screen.keys("\x05\x15");
    });
}
