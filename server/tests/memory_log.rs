//! The in-memory log of `--data-dir none` over real sockets: privates have a bound of their
//! own, so a flood of privates between two members does not push room lines out of what a
//! member cut off can resume (it did: one bound for both, the oldest entries went first).
//!
//! The real binary on real sockets (127.0.0.1); every wait is a read with a deadline.

use std::net::Shutdown;

use chat_common::protocol::v3::split_tags;
use chat_testkit::{login_v3, Server};

/// Privates in the flood: more than the in-memory log's bound for room lines and privates
/// together (2,000, pruned every 500 appended), so the old shared bound lost the room line.
const FLOOD: usize = 3_000;

#[test]
fn a_flood_of_privates_does_not_evict_room_lines_a_resume_needs() {
    let server = Server::start(&["--auto-approve", "--rate", "0", "--resume-window", "60"]);
    let mut alice = server.connect();
    let token = login_v3(&mut alice, "alice");
    let mut bob = server.login("bob");
    let mut carol = server.login("carol");
    alice.expect("JOIN bob");
    alice.expect("JOIN carol");
    bob.send_line("before");
    let line = alice.next_line();
    let (tags, rest) = split_tags(&line);
    assert_eq!(rest, "MSG bob - before");
    let last = tags
        .and_then(|t| t.id())
        .unwrap_or_else(|| panic!("no id in {line:?}"))
        .to_owned();
    alice.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(alice);

    bob.send_line("the room line");
    for i in 0..FLOOD {
        bob.send_line(&format!("/private carol p{i}"));
    }
    carol.skip_until(&format!("PRIV bob carol - p{}", FLOOD - 1));

    let mut again = server.connect();
    again.expect("NAME? ");
    again.send_line("HELLO 3");
    again.expect_exact("HELLO 3");
    again.send_line(&format!("RESUME alice {token} {last}"));
    again.expect_welcome("alice");
    let mut replayed = Vec::new();
    loop {
        let line = again.next_line();
        if line.starts_with("INFO online") {
            break;
        }
        replayed.push(line);
    }
    assert!(
        replayed
            .iter()
            .any(|l| l.ends_with(" MSG bob - the room line")),
        "the room line is replayed: {replayed:#?}"
    );
    assert!(
        !replayed.iter().any(|l| l.contains("PRIV ")),
        "no one else's private: {replayed:#?}"
    );
    // Privates after alice's last id went (the oldest of the flood): the log cannot tell
    // whose, so it says so rather than risk a silent loss of one of hers.
    assert!(
        replayed.iter().any(|l| l.starts_with("GAP ")),
        "a gap is told: {replayed:#?}"
    );
}
