//! Integration test of scale: a thousand members in one room, each logged in over its own socket,
//! and one room message reaching all 999 others, within a bounded time.
//!
//! The test is single-threaded on purpose: it connects everyone first, logs them in one by one,
//! then walks the sockets in turn with read timeouts; the kernel's socket buffers hold what a
//! socket has not read yet (at most a thousand short `JOIN` lines each).
#![allow(clippy::unwrap_used)]

mod util;

use std::time::{Duration, Instant};
use util::{ensure_nofile, Client, Server};

const MEMBERS: usize = 1000;

#[test]
fn a_thousand_members_all_receive_one_message() {
    // Our sockets plus the test harness's own descriptors.
    ensure_nofile(MEMBERS as u64 + 64);
    let server = Server::start(&["--auto-approve"]);
    let started = Instant::now();

    let mut clients: Vec<Client> = (0..MEMBERS).map(|_| server.connect()).collect();
    // One login at a time, so admission order (hence WELCOME counts and JOIN order) is fixed.
    for (i, c) in clients.iter_mut().enumerate() {
        c.expect("NAME? ");
        c.send_line(&format!("m{i:04}"));
        assert_eq!(c.expect_welcome(&format!("m{i:04}")), i + 1, "online count");
    }
    let logged_in = started.elapsed();

    clients[0].send_line("hello, thousand");
    // Member i first gets one JOIN for every later member, in order, then the message.
    for (i, c) in clients.iter_mut().enumerate().skip(1) {
        for j in i + 1..MEMBERS {
            c.expect_exact(&format!("JOIN m{j:04}"));
        }
        c.expect_exact("MSG m0000 - hello, thousand");
    }
    // The sender got nothing of its own: after its JOINs, its next line answers /who.
    clients[0].send_line("/who");
    for j in 1..MEMBERS {
        clients[0].expect_exact(&format!("JOIN m{j:04}"));
    }
    let who = clients[0].expect("INFO online (1000): ");
    assert!(who.contains("m0000") || who.contains("m0999"), "{who:?}");
    let total = started.elapsed();
    assert!(
        total < Duration::from_secs(30),
        "1000 logins took {logged_in:?}, delivery done after {total:?}"
    );
}
