//! The console's `forget NAME` through a real server console: it answers with the member as
//! the room knows it (its own spelling, as `kick` and `approve` do), whatever case the operator
//! typed, for a member gone and for one kept within its resume window; a name nobody holds is
//! refused with the operator's spelling.
//!
//! The real binary over real sockets (127.0.0.1); every wait is a read with a deadline.

use std::net::Shutdown;

use chat_testkit::{login_v3, Client, Server};

/// A version 3 member admitted by `--auto-approve` (it has a token).
#[track_caller]
fn v3_login(server: &Server, name: &str) -> Client {
    let mut c = server.connect();
    login_v3(&mut c, name);
    c
}

#[test]
fn forget_names_the_member_as_the_room_knows_it() {
    let mut server = Server::start(&["--auto-approve", "--log-level", "warn"]);
    let mut watcher = server.login("watcher");

    // Gone for good (it left): remembered, not in the room.
    let mut gone = v3_login(&server, "MiXed");
    watcher.expect("JOIN MiXed");
    gone.send_line("/leave");
    gone.skip_until("BYE ");
    watcher.expect("LEAVE MiXed");
    server.console("forget mixed");
    let said = server.expect_console("forgot ");
    assert!(said.starts_with("forgot MiXed (by "), "{said}");

    // Cut off: kept within its resume window, the room sees it leave now.
    let kept = v3_login(&server, "Kept2");
    watcher.expect("JOIN Kept2");
    kept.stream().shutdown(Shutdown::Both).unwrap_or(());
    server.expect_console("dropped Kept2: kept in the room");
    server.console("forget KEPT2");
    let said = server.expect_console("forgot ");
    assert!(said.starts_with("forgot Kept2 (by "), "{said}");
    watcher.expect("LEAVE Kept2");

    server.console("forget Nobody");
    server.expect_console("error: Nobody is not remembered");
}
