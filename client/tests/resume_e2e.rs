//! Protocol version 3 end to end (issue 21): the real client and the real server with its
//! store. A remembered member's next run skips the operator and sees what it missed once; the
//! full screen resumes by itself after the server is killed (`kill -9`) and started again on the
//! same data directory.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

use chat_testkit::{Console, Server, ServerBuilder};
use util::screen::Screen;
use util::{free_addr, Client};

/// The test kit's server launcher (`CHAT_TEST_SERVER_BIN` runs another build of the server).
fn builder(addr: &str, data: &Path) -> ServerBuilder {
    let builder = Server::builder()
        .listen(addr)
        .args(&["--data-dir", data.to_str().unwrap(), "--history", "0"])
        .console(Console::Piped);
    match std::env::var_os("CHAT_TEST_SERVER_BIN") {
        Some(bin) => builder.bin(bin),
        None => builder,
    }
}

#[test]
fn a_remembered_member_skips_the_operator_and_sees_what_it_missed_once() {
    let data = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let mut server = builder("127.0.0.1:0", data.path()).start();
    let addr = server.addr().to_string();
    let env = [("CHAT_CONFIG_DIR", config.path().to_str().unwrap())];
    let mut alice = server.approved("alice");

    // First run: the operator approves bob.
    let mut bob = Client::start(&["--name", "bob", &addr], &env);
    server.expect_console("join request: bob");
    server.console("approve bob");
    bob.stdout.expect("-- you are in as bob");
    alice.expect("JOIN bob");
    alice.send_line("hello bob");
    bob.stdout.expect("<alice> hello bob");
    bob.close_stdin();
    assert_eq!(bob.wait().0, 0);
    alice.expect("LEAVE bob");
    let kept = std::fs::read_to_string(config.path().join("tokens")).unwrap();
    assert!(kept.contains(&format!("{addr} bob ")), "{kept}");

    alice.send_line("while you were away");
    // Second run: no operator, and only what was missed.
    let mut bob = Client::start(&["--name", "bob", &addr], &env);
    bob.stdout.expect("-- you are in as bob");
    let missed = bob.stdout.expect("while you were away");
    assert!(missed.starts_with('[') && missed.ends_with("] <alice> while you were away"));
    alice.expect("JOIN bob");
    alice.send_line("live again");
    bob.stdout.expect("<alice> live again");
    bob.close_stdin();
    assert_eq!(bob.wait().0, 0);
    assert!(
        !bob.stdout.seen.iter().any(|l| l.contains("hello bob")),
        "{:#?}",
        bob.stdout.seen
    );
}

#[test]
fn the_full_screen_resumes_by_itself_after_the_server_is_killed_and_restarted() {
    let data = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let server = builder(&addr, data.path())
        .args(&["--auto-approve"])
        .start();
    let mut screen = Screen::start(
        &["--name", "bob", &addr],
        &[
            ("CHAT_CONFIG_DIR", config.path().to_str().unwrap()),
            ("NO_COLOR", "1"),
        ],
        30,
        100,
    );
    screen.wait_text("you are in as bob");
    let mut alice = server.login("alice");
    alice.send_line("before the restart");
    screen.wait_text("before the restart");
    // kill -9, then the same data directory again, with no --auto-approve: bob needs nobody.
    drop(alice);
    drop(server);
    let mut server = builder(&addr, data.path()).start();
    let mut alice = server.approved("alice");
    alice.send_line("after the restart");
    let rows = screen.wait_text("after the restart");
    let count = |needle: &str| rows.iter().filter(|r| r.contains(needle)).count();
    assert_eq!(count("before the restart"), 1, "{rows:#?}");
    assert_eq!(count("after the restart"), 1, "{rows:#?}");
    assert!(
        !rows.iter().any(|r| r.contains("waiting for approval")),
        "{rows:#?}"
    );
    server.expect_console("remembered bob joined");
    screen.keys("/quit\r");
    assert_eq!(screen.wait_exit(), 0);
}
