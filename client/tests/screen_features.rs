//! Issue 25's display and input defects, each through a pseudo-terminal read back by `vt100`
//! at 20, 40, 80 and 200 columns, with `NO_COLOR` and without, asserting what the screen
//! shows: look-alike names never shown alike, the name column following the members present,
//! 60 joins as one row and a 65-name `/who` as one entry, the status line keeping the
//! reconnect reason and the paste question, a paste over the input cap refused whole, an
//! over-long line sent in pieces, a line the server refuses marked `✗ not delivered`, a paste
//! without brackets running no command, Ctrl-Z giving the terminal back and taking it again,
//! and line mode on a terminal ringing and marking a mention.
//!
//! One table per defect: every test runs its body in each terminal of
//! [`terminals::every`], one after the other, and names the terminal when it fails. At 20
//! columns the text area is 5 cells wide, so words are short and texts are compared without
//! spaces ([`flat`]).
#![allow(clippy::unwrap_used)]

mod util;

use util::terminals::{
    self, entries, entries_with, flat, separator_column, status, wait_entry, Term,
};
use util::{fake_server, Console, Peer, Server};

/// Rows of the terminals that need no more.
const ROWS: u16 = 16;

#[test]
fn look_alike_names_never_show_alike() {
    let server = Server::start(true, Console::Closed);
    let mut real = Peer::join(&server.addr, "trustedadminbot_real");
    let mut fake = Peer::join(&server.addr, "trustedadminbot_fake");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let (screen, _dir) = terminals::joined(term, 30, &term.name("u"), &server.addr);
        real.send(&format!("real{n}"));
        fake.send(&format!("fake{n}"));
        let rows = screen.wait_text(&format!("fake{n}"));
        let a = entries_with(&rows, &format!("real{n}"));
        let b = entries_with(&rows, &format!("fake{n}"));
        let label = term.label();
        assert_eq!((a.len(), b.len()), (1, 1), "{label}: {rows:#?}");
        assert_ne!(
            a[0].prefix, b[0].prefix,
            "{label} shows both as {:?}: {rows:#?}",
            a[0].prefix
        );
        assert!(
            a[0].prefix.contains("real") || a[0].prefix.ends_with('l'),
            "{label}: {rows:#?}"
        );
        if term.cols >= 200 {
            assert_eq!(a[0].prefix, "trustedadminbot_real", "{label}: {rows:#?}");
        }
    }
}

#[test]
fn the_name_column_follows_the_members_present() {
    // Issue 25: one long name once seen widened the column for the rest of the session.
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let (screen, _dir) = terminals::joined(term, 30, &term.name("u"), &server.addr);
        let long = format!("a_very_long_name_of_32_chars_{n:03}");
        let mut visitor = Peer::join(&server.addr, &long);
        visitor.send(&format!("wd{n}"));
        alice.send(&format!("bf{n}"));
        let rows = screen.wait_text(&format!("bf{n}"));
        let wide = separator_column(&rows, &format!("bf{n}"));
        visitor.send("/leave");
        // Once alice saw the leave, the server has done it: her next line comes after.
        alice.expect(&format!("LEAVE {long}"));
        alice.send(&format!("af{n}"));
        let rows = screen.wait_text(&format!("af{n}"));
        let narrow = separator_column(&rows, &format!("af{n}"));
        let label = term.label();
        assert!(narrow <= wide, "{label}: {rows:#?}");
        if term.cols >= 40 {
            assert!(narrow < wide, "{label}: the column stayed wide: {rows:#?}");
        }
        // alice is shown whole once the column follows the names present.
        let after = entries_with(&rows, &format!("af{n}"));
        assert_eq!(after[0].prefix, "alice", "{label}: {rows:#?}");
    }
}

#[test]
fn sixty_joins_are_one_row_and_a_65_name_who_is_one_entry() {
    for term in terminals::every() {
        let (addr, script) = fake_server(|mut conn| {
            conn.send("NAME? name please");
            conn.expect("bob");
            conn.send("WELCOME bob 66");
            conn.expect("/who");
            // Short names, so no word of the reply is cut at 20 columns.
            let names: Vec<String> = (0..65).map(|i| format!("m{i:02}")).collect();
            conn.send(&format!(
                "INFO online (66): bob, {},",
                names[..20].join(", ")
            ));
            conn.send(&format!("INFO  {},", names[20..45].join(", ")));
            conn.send(&format!("INFO  {}", names[45..].join(", ")));
            for i in 0..60 {
                conn.send(&format!("JOIN j{i}"));
            }
            conn.send("INFO end of joins");
            conn.expect("/leave");
            conn.send("BYE bye");
        });
        // Tall enough for the whole reply at 20 columns.
        let (mut screen, _dir) = terminals::start(term, 120, &["--name", "bob", &addr]);
        let rows = wait_entry(&screen, "end of joins");
        let label = term.label();
        let joins = entries_with(&rows, "joined");
        assert_eq!(joins.len(), 1, "{label}: {rows:#?}");
        assert!(
            flat(&joins[0].text).starts_with(&flat("60 joined: j0, j1, j2, j3, j4 and 55 more")),
            "{label}: {rows:#?}"
        );
        let who = entries_with(&rows, "online (66)");
        assert_eq!(who.len(), 1, "{label}: {rows:#?}");
        // Every name, in order, with no stray space where the server split its reply.
        let names: Vec<String> = (0..65).map(|i| format!("m{i:02}")).collect();
        let expected = format!("online (66): bob, {}", names.join(", "));
        assert_eq!(flat(&who[0].text), flat(&expected), "{label}: {rows:#?}");
        if term.cols >= 40 {
            assert_eq!(who[0].text, expected, "{label}: {rows:#?}");
        }
        assert!(
            who[0].rows.iter().all(|r| !r.starts_with(' ')),
            "{label}: {rows:#?}"
        );
        screen.keys("/quit\r");
        assert_eq!(screen.wait_exit(), 0, "{label}");
        script.join().unwrap();
    }
}

#[test]
fn the_status_line_keeps_the_reconnect_reason() {
    // Issue 25: at 40 columns the state went first; at 100 the reason was cut.
    let mut terms = terminals::every();
    terms.push(Term {
        cols: 100,
        no_color: true,
    });
    for term in terms {
        let server = Server::start(true, Console::Closed);
        let (screen, _dir) = terminals::joined(term, ROWS, "bob", &server.addr);
        drop(server);
        let label = term.label();
        let rows = screen.wait_for("the retry in the status line", |rows| {
            let status = status(rows, ">");
            status.contains("retry") || status.contains("reconnecting in")
        });
        let status = status(&rows, ">");
        // Why, in full or in a word, never cut (first `closed`, or `reset` when the killed
        // server's socket answered with a reset, then `refused`).
        assert!(
            ["closed", "reset", "refused"]
                .iter()
                .any(|why| status.contains(why)),
            "{label}: {rows:#?}"
        );
        assert!(!status.contains('…'), "{label}, cut: {status:?}");
    }
}

#[test]
fn the_status_line_keeps_the_paste_question() {
    let server = Server::start(true, Console::Closed);
    for term in terminals::every() {
        let (mut screen, _dir) = terminals::joined(term, 20, &term.name("u"), &server.addr);
        let block: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
        screen.paste(&block.join("\n"));
        screen.wait_text("… p7");
        screen.keys("\r");
        let label = term.label();
        let rows = screen.wait_for("the paste question", |rows| {
            rows.iter().any(|r| r.contains("8 lines"))
        });
        let question = rows.iter().find(|r| r.contains("8 lines")).unwrap();
        assert!(
            question.contains("Enter") && question.contains("Esc"),
            "{label}: {rows:#?}"
        );
        assert!(!question.contains('…'), "{label}, cut: {question:?}");
        // Esc goes back: the question goes and the block stays for editing.
        screen.keys("\x1b");
        screen.wait_for("the question gone", |rows| {
            !rows.iter().any(|r| r.contains("8 lines"))
        });
        assert!(screen.running(), "{label}");
    }
}

#[test]
fn a_paste_over_the_input_cap_is_refused_whole() {
    let server = Server::start(true, Console::Closed);
    let paste = "a line of a long paste, the same line six thousand times\n".repeat(6000);
    for term in terminals::every() {
        let (mut screen, _dir) = terminals::joined(term, 40, &term.name("u"), &server.addr);
        screen.keys("kept draft");
        screen.wait_text("> kept draft");
        screen.paste(&paste);
        let rows = wait_entry(&screen, "paste refused");
        let label = term.label();
        let said = entries_with(&rows, "paste refused");
        assert_eq!(said.len(), 1, "{label}: {rows:#?}");
        let text = flat(&said[0].text);
        let size = format!("6001 lines, {} KiB", paste.len().div_ceil(1024));
        assert!(text.contains(&flat(&size)), "{label}: {rows:#?}");
        assert!(text.contains(&flat("Nothing of it")), "{label}: {rows:#?}");
        // Not a character of it went in: the draft is as it was.
        let input = rows.iter().rposition(|r| r.starts_with(">")).unwrap();
        assert_eq!(rows[input].trim_end(), "> kept draft", "{label}: {rows:#?}");
        assert!(
            rows[input + 1..].iter().all(|r| r.trim().is_empty()),
            "{label}"
        );
    }
}

#[test]
fn an_over_long_line_reaches_the_room_in_pieces_that_fit() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let words: Vec<String> = (0..900).map(|i| format!("w{i}")).collect();
    for term in terminals::every() {
        let name = term.name("u");
        let (mut screen, _dir) = terminals::joined(term, ROWS, &name, &server.addr);
        alice.expect(&format!("JOIN {name}"));
        screen.paste(&words.join(" "));
        screen.keys("\r");
        let prefix = format!("MSG {name} - ");
        let mut got = Vec::new();
        while got.len() < words.len() {
            let line = alice.expect(&prefix);
            assert!(line.len() <= 4096 + 20, "{}", line.len());
            got.extend(line[prefix.len()..].split(' ').map(str::to_owned));
        }
        assert_eq!(got, words, "{}", term.label());
        let rows = screen.wait_text("w899");
        assert!(
            !rows.concat().contains("not delivered"),
            "{}: {rows:#?}",
            term.label()
        );
    }
}

#[test]
fn a_line_the_server_refuses_is_marked_not_delivered() {
    // Issue 25: a line over the server's limit was shown as sent, then only `!! line
    // longer than ... discarded`. A server with a lower limit than the client's `max_line`.
    let server = Server::start_with("127.0.0.1:0", true, Console::Closed, &["--max-line", "200"]);
    let long = "x".repeat(300);
    for term in terminals::every() {
        let (mut screen, _dir) = terminals::joined(term, 80, &term.name("u"), &server.addr);
        screen.paste(&long);
        screen.keys("\r");
        let rows = wait_entry(&screen, "not delivered");
        let label = term.label();
        let marked = entries_with(&rows, "not delivered");
        assert_eq!(marked.len(), 1, "{label}: {rows:#?}");
        // The mark is under the own line, in the same entry, with the server's reason.
        let text = flat(&marked[0].text);
        assert!(text.starts_with(&long[..5]), "{label}: {rows:#?}");
        assert!(
            text.contains(&flat("✗ not delivered")),
            "{label}: {rows:#?}"
        );
        assert!(text.contains(&flat("line limit")), "{label}: {rows:#?}");
    }
}

#[test]
fn a_paste_without_brackets_runs_no_command() {
    // Issue 25: a terminal that does not bracket pastes made a pasted `/leave` run; irssi
    // tells a paste by its speed. The keys go in one write: faster than anyone types.
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let name = term.name("u");
        let (mut screen, _dir) = terminals::joined(term, 20, &name, &server.addr);
        alice.expect(&format!("JOIN {name}"));
        screen.keys(&format!("one{n}\r/leave\rtri{n}"));
        screen.wait_text(&format!("… tri{n}"));
        let label = term.label();
        assert!(screen.running(), "{label}");
        screen.keys("\r");
        for text in [format!("one{n}"), "/leave".to_owned(), format!("tri{n}")] {
            let line = alice.expect(&format!("MSG {name} - "));
            assert_eq!(line, format!("MSG {name} - {text}"), "{label}");
        }
        let rows = wait_entry(&screen, &format!("tri{n}"));
        assert!(screen.running(), "{label}: {rows:#?}");
        let own = entries(&rows);
        assert!(
            own.iter()
                .any(|e| e.prefix == name && flat(&e.text) == "/leave"),
            "{label}: {rows:#?}"
        );
    }
}

#[test]
fn ctrl_z_gives_the_terminal_back_and_takes_it_again() {
    let server = Server::start(true, Console::Closed);
    for (n, term) in terminals::every().into_iter().enumerate() {
        let name = term.name("u");
        let (mut screen, _dir) = terminals::joined(term, ROWS, &name, &server.addr);
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
        screen.keys(&format!("back{n}\r"));
        let rows = wait_entry(&screen, &format!("back{n}"));
        let own = entries_with(&rows, &format!("back{n}"));
        assert_eq!(own.len(), 1, "{}: {rows:#?}", term.label());
    }
}

#[test]
fn line_mode_on_a_terminal_rings_and_marks_a_mention() {
    // Issue 25: `--plain` on a terminal neither rang nor marked a mention.
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let name = term.name("u");
        let (screen, _dir) =
            terminals::start(term, ROWS, &["--plain", "--name", &name, &server.addr]);
        // A line wraps at 20 columns: read the rows as one text.
        let admitted = format!("you are in as {name}");
        screen.wait_for(&admitted, |rows| rows.concat().contains(&admitted));
        let before = screen.raw().len();
        // Short, so that no line wraps at 20 columns: `▶ <alice> u20c: h0!` is 19.
        let (quiet, loud) = (format!("p{n}."), format!("h{n}!"));
        alice.send(&quiet);
        alice.send(&format!("{name}: {loud}"));
        let rows = screen.wait_text(&loud);
        // The bell is written after the line, in a write of its own: wait for it.
        screen.wait_raw("a bell after the mention", |raw| {
            let text = String::from_utf8_lossy(raw.get(before..).unwrap_or_default());
            text.find(&loud).is_some_and(|m| text[m..].contains('\x07'))
        });
        let label = term.label();
        let raw = screen.raw()[before..].to_vec();
        let text = String::from_utf8_lossy(&raw);
        let bell = text.find('\x07');
        let mention = text.find(&loud).unwrap();
        let plain = text.find(&quiet).unwrap();
        assert!(
            bell.is_some_and(|b| b > plain),
            "{label}: no bell after the mention"
        );
        let row = rows.iter().find(|r| r.contains(&loud)).unwrap();
        let quiet = rows.iter().find(|r| r.contains(&quiet)).unwrap();
        assert!(quiet.starts_with("<alice>"), "{label}: {rows:#?}");
        if term.no_color {
            // No styles, no mark: the line as a pipe would get it.
            assert!(row.starts_with("<alice>"), "{label}: {rows:#?}");
            assert!(!text[plain..mention].contains('\x1b'), "{label}: {text:?}");
        } else {
            assert!(row.starts_with("▶ <alice>"), "{label}: {rows:#?}");
        }
    }
}

#[test]
fn a_client_command_ending_a_burst_of_keys_is_drawn_at_once() {
    // Found in tmux: `send-keys '/clear' Enter` arrives as one burst, whose Enter is settled
    // by a timer; a command that sends nothing to the server was drawn only at the next key.
    let server = Server::start(true, Console::Closed);
    for term in terminals::every() {
        let (mut screen, _dir) = terminals::joined(term, ROWS, &term.name("u"), &server.addr);
        wait_entry(&screen, "you are in");
        screen.keys("/clear\r");
        let rows = screen.wait_for("an empty pane", |rows| entries(rows).is_empty());
        let input = rows.iter().rposition(|r| r.starts_with('>')).unwrap();
        assert_eq!(rows[input].trim_end(), ">", "{}: {rows:#?}", term.label());
    }
}
