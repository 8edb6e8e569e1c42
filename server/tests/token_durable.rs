//! A member's first `TOKEN` is durable before it is delivered (issue 21): the server sends it
//! only once the member's record (the token's hash) is in the store, so a client never holds a
//! token that a server restarted after `kill -9` does not know. The real binary over real
//! sockets, on a real data directory.

use std::time::Duration;

use chat_testkit::{Server, TempDir};

/// How many times the kill is tried: a token sent before its record is on disk would be lost
/// in some of them (the kill lands within a millisecond or two of the `TOKEN` line).
const ROUNDS: usize = 8;

/// How long a killed server may take to be gone.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Kills the server with `kill -9` and waits until it is gone.
#[track_caller]
fn kill_9(server: &mut Server) {
    server.signal("KILL");
    let status = server.wait_exit(EXIT_WITHIN);
    assert!(!status.success(), "the server was killed, not stopped");
}

#[test]
fn a_first_token_survives_a_kill_9_right_after_it_arrives() {
    let dir = TempDir::new("token-durable-first");
    let args = ["--auto-approve", "--data-dir", dir.arg()];
    for round in 0..ROUNDS {
        let name = format!("m{round}");
        let mut server = Server::start(&args);
        // A member in the room already, so the newcomer's admission has company (a JOIN to
        // hold) as in real use.
        let (_watcher, _) = {
            let mut w = server.hello3();
            w.send_line(&format!("w{round}"));
            w.expect_welcome(&format!("w{round}"));
            let t = w.expect("TOKEN ");
            (w, t)
        };
        let mut c = server.hello3();
        c.send_line(&name);
        c.expect_welcome(&name);
        let token = c.expect("TOKEN ")["TOKEN ".len()..].to_owned();
        kill_9(&mut server);
        drop(server);

        let mut server = Server::start(&args);
        let mut again = server.hello3();
        again.send_line(&format!("RESUME {name} {token} -"));
        let first = again.next_line();
        assert!(
            first.starts_with(&format!("WELCOME {name} ")),
            "round {round}: the token the server sent before its kill admits nobody after \
             the restart: {first:?}"
        );
        again.expect("TOKEN ");
        server.console("members");
        server.expect_console(&format!("  {name} "));
        kill_9(&mut server);
    }
}

#[test]
fn a_waiting_join_approved_gets_a_token_that_survives_a_kill_9() {
    let dir = TempDir::new("token-durable-approved");
    let args = ["--data-dir", dir.arg()];
    let mut server = Server::start(&args);
    let mut c = server.hello3();
    c.send_line("alice");
    c.expect("WAIT ");
    server.console("approve alice");
    c.expect_welcome("alice");
    let token = c.expect("TOKEN ")["TOKEN ".len()..].to_owned();
    kill_9(&mut server);
    drop(server);

    let mut server = Server::start(&args);
    let mut again = server.hello3();
    again.send_line(&format!("RESUME alice {token} -"));
    again.expect_welcome("alice");
    again.expect("TOKEN ");
    server.expect_console("remembered alice joined");
}
