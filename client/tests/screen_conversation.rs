//! The conversation view (`/query NAME`, irssi's and weechat's query) through a
//! pseudo-terminal read back by `vt100`, at 20, 40, 80 and 200 columns, with `NO_COLOR` and
//! without: the privates with one member without the room's noise, plain lines going to that
//! member only, the status line saying where you are and what the room said meanwhile, Esc
//! going back to the room; and `/search` finding only what the view shows.
#![allow(clippy::unwrap_used)]

mod util;

use util::terminals::{self, entries_with, status, wait_entry};
use util::{Console, Peer, Server};

#[test]
fn a_query_follows_one_member_privately_and_esc_goes_back_to_the_room() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let mut carol = Peer::join(&server.addr, "carol");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let name = term.name("u");
        let label = term.label();
        let (mut screen, _dir) = terminals::joined(term, 30, &name, &server.addr);
        alice.expect(&format!("JOIN {name}"));
        carol.expect(&format!("JOIN {name}"));
        carol.send(&format!("bf{n}"));
        wait_entry(&screen, &format!("bf{n}"));

        screen.keys("/query alice\r");
        let rows = screen.wait_for("the conversation's prompt", |rows| {
            rows.iter().any(|r| r.starts_with("[alice]"))
        });
        // The room's lines are gone from the pane.
        assert!(
            entries_with(&rows, &format!("bf{n}")).is_empty(),
            "{label}: {rows:#?}"
        );
        let bar = status(&rows, "[alice]");
        assert!(bar.contains("alice"), "{label}: {bar:?}");

        // What the room says is counted, not shown.
        carol.send(&format!("nz{n}"));
        let rows = screen.wait_for("the room's line counted", |rows| {
            let bar = status(rows, "[alice]");
            bar.contains("+1") || bar.contains("room: 1 new")
        });
        assert!(
            entries_with(&rows, &format!("nz{n}")).is_empty(),
            "{label}: {rows:#?}"
        );

        // Her privates are shown; a plain line answers her alone.
        alice.send(&format!("/private {name} ps{n}"));
        wait_entry(&screen, &format!("ps{n}"));
        screen.keys(&format!("an{n}\r"));
        assert_eq!(
            alice.expect("PRIV "),
            format!("PRIV {name} alice - an{n}"),
            "{label}"
        );
        let rows = wait_entry(&screen, &format!("an{n}"));
        let answer = entries_with(&rows, &format!("an{n}"));
        assert_eq!(answer.len(), 1, "{label}: {rows:#?}");
        if term.cols >= 80 {
            let psst = entries_with(&rows, &format!("ps{n}"));
            assert_eq!(psst[0].prefix, "*alice*", "{label}: {rows:#?}");
            assert_eq!(answer[0].prefix, "→*alice*", "{label}: {rows:#?}");
        }

        // Esc: back in the room, where everything is, and plain lines go to the room.
        screen.keys("\x1b");
        let rows = screen.wait_for("the room again", |rows| {
            rows.iter().any(|r| r.starts_with("> "))
                && !entries_with(rows, &format!("nz{n}")).is_empty()
        });
        let back = entries_with(&rows, "back in the room");
        assert!(
            back.last().is_some_and(|e| e.text.contains("1 new")),
            "{label}: {rows:#?}"
        );
        screen.keys(&format!("pu{n}\r"));
        // carol never got the private answer: the first line from this client is this one.
        assert_eq!(
            carol.expect(&format!("MSG {name} ")),
            format!("MSG {name} - pu{n}"),
            "{label}"
        );
    }
}

#[test]
fn search_in_a_query_finds_only_what_the_query_shows() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    for (n, term) in terminals::every().into_iter().enumerate() {
        let name = term.name("u");
        let label = term.label();
        let (mut screen, _dir) = terminals::joined(term, 30, &name, &server.addr);
        alice.expect(&format!("JOIN {name}"));
        alice.send(&format!("/private {name} k{n} sec"));
        alice.send(&format!("k{n} pub"));
        wait_entry(&screen, &format!("k{n} pub"));
        screen.keys("/query alice\r");
        screen.wait_text("[alice]");
        screen.keys(&format!("/search k{n}\r"));
        // The match is marked with `»`; the room's newer line is not found.
        let rows = screen.wait_for("the private marked", |rows| {
            rows.iter()
                .any(|r| r.contains('»') && r.contains(&format!("k{n}")))
        });
        let hit: Vec<_> = rows.iter().filter(|r| r.contains('»')).collect();
        assert!(
            hit.iter().all(|r| !r.contains("public")),
            "{label}: {rows:#?}"
        );
        screen.keys("/search\r");
        wait_entry(&screen, "no older match");
    }
}
