//! Integration tests of how `chat-server` ends: the console's `quit`, SIGTERM and SIGINT (each
//! says `BYE` to every connection, whatever its state, and exits 0 promptly), and a failed bind
//! (non-zero exit with a one-line message, no panic).
#![allow(clippy::unwrap_used)]

use chat_testkit::{Client, Console, Server};
use std::time::{Duration, Instant};

/// How long an orderly shutdown may take.
const EXIT_BOUND: Duration = Duration::from_secs(5);

/// A server with two members, one waiting join and one connection that has not named itself.
#[track_caller]
fn busy_server() -> (Server, Vec<Client>) {
    let mut server = Server::start(&[]);
    let (mut a, _) = server.join_waiting("a");
    server.console("approve a");
    assert_eq!(a.expect_welcome("a"), 1);
    let (mut b, _) = server.join_waiting("b");
    server.console("approve b");
    assert_eq!(b.expect_welcome("b"), 2);
    a.expect_exact("JOIN b");
    let (waiting, _) = server.join_waiting("waiting");
    let unnamed = server.connect_prompted();
    (server, vec![a, b, waiting, unnamed])
}

/// Every client's next line is the shutdown BYE, then the stream ends; the server exits 0.
#[track_caller]
fn expect_orderly_exit(server: &mut Server, clients: Vec<Client>, started: Instant) {
    for mut c in clients {
        c.expect_exact("BYE server shutting down");
        c.expect_eof();
    }
    let status = server.wait_exit(EXIT_BOUND);
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    assert!(
        started.elapsed() < EXIT_BOUND,
        "shutdown took {:?}",
        started.elapsed()
    );
    let stderr = server.stderr_text();
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn quit_says_bye_to_every_connection_and_exits_zero() {
    let (mut server, clients) = busy_server();
    let started = Instant::now();
    server.console("quit");
    expect_orderly_exit(&mut server, clients, started);
}

#[test]
fn sigterm_acts_like_quit() {
    let (mut server, clients) = busy_server();
    let started = Instant::now();
    server.signal("TERM");
    expect_orderly_exit(&mut server, clients, started);
}

#[test]
fn sigint_acts_like_quit() {
    let (mut server, clients) = busy_server();
    let started = Instant::now();
    server.signal("INT");
    expect_orderly_exit(&mut server, clients, started);
}

#[test]
fn sigterm_with_console_at_eof_exits_zero() {
    // With stdin at EOF the console can no longer quit; a signal is the only way out.
    let mut server = Server::start_with(&["--auto-approve"], Console::Null);
    server.expect_console("console closed");
    let a = server.login("a");
    let started = Instant::now();
    server.signal("TERM");
    expect_orderly_exit(&mut server, vec![a], started);
}

#[test]
fn quit_with_a_member_that_never_reads_still_exits() {
    // A member whose socket buffers are full must not hold the shutdown hostage.
    let mut server = Server::start(&["--auto-approve", "--rate", "0"]);
    let mut talker = server.login("talker");
    let mut deaf = server.login("deaf");
    talker.expect_exact("JOIN deaf");
    let line = format!("{}\n", "x".repeat(1000));
    for _ in 0..2000 {
        talker.send_raw(line.as_bytes());
    }
    let started = Instant::now();
    server.console("quit");
    talker.skip_until("BYE ");
    let status = server.wait_exit(EXIT_BOUND);
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    assert!(started.elapsed() < EXIT_BOUND);
    // Whatever the deaf member gets, its connection ends.
    deaf.expect_closed();
}

#[test]
fn bind_failure_exits_nonzero_with_one_line_and_no_panic() {
    let first = Server::start(&["--auto-approve"]);
    let taken = first.addr().to_string();
    let (status, stdout, stderr) =
        Server::run_to_exit(&["--listen", &taken], Duration::from_secs(10));
    assert!(
        !status.success(),
        "second server on {taken} exited {status:?}"
    );
    assert!(
        !stdout.contains("listening on"),
        "second server claims to listen: {stdout:?}"
    );
    assert!(!stderr.contains("panicked"), "panic on stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr should be one line, got {stderr:?}");
    assert!(
        lines[0].contains(&taken) || lines[0].to_lowercase().contains("address"),
        "the error should say what could not be bound: {:?}",
        lines[0]
    );
}

#[test]
fn bad_flag_value_exits_nonzero_without_panic() {
    for bad in [
        &["--max-line", "many"][..],
        &["--max-line", "0"],
        &["--max-queue", "10"],
        &["--send-buffer", "4294967297"],
        &["--login-timeout=-1"],
    ] {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(bad);
        let (status, _, stderr) = Server::run_to_exit(&args, Duration::from_secs(10));
        assert_eq!(status.code(), Some(2), "{bad:?} exited {status:?}");
        assert!(!stderr.contains("panicked"), "panic on stderr: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        let flag = bad[0].split('=').next().unwrap_or_default();
        assert!(
            first.contains(flag),
            "{bad:?}: the first line does not say which flag: {stderr}"
        );
    }
}
