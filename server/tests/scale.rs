//! Integration test of scale: a thousand members in one room, each logged in over its own socket,
//! and one room message reaching all 999 others, within a bounded time.
//!
//! The test is single-threaded on purpose: it connects everyone first, logs them in one by one,
//! then walks the sockets in turn with read timeouts; the kernel's socket buffers hold what a
//! socket has not read yet (at most a thousand short `JOIN` lines each).
#![allow(clippy::unwrap_used)]

use chat_testkit::{ensure_nofile, Client, Server};
use std::time::{Duration, Instant};

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
    // The list may continue on further INFO lines; an error reply marks its end.
    clients[0].send_line("/no-such-command");
    let mut listed = std::collections::BTreeSet::new();
    let first = clients[0].expect("INFO online (1000): ");
    let mut line = first;
    loop {
        assert!(line.len() <= 4096, "a /who line of {} bytes", line.len());
        let text = line.strip_prefix("INFO online (1000): ").unwrap_or(&line);
        listed.extend(
            text.split([',', ' '])
                .filter(|w| w.len() == 5 && w.starts_with('m'))
                .map(str::to_owned),
        );
        line = clients[0].next_line();
        if line.starts_with("ERROR unknown-command ") {
            break;
        }
        assert!(line.starts_with("INFO "), "in the /who reply: {line:?}");
    }
    assert_eq!(
        listed.len(),
        MEMBERS,
        "/who listed {} members",
        listed.len()
    );
    let total = started.elapsed();
    eprintln!("{MEMBERS} logins took {logged_in:?}; all delivered after {total:?}");
    assert!(
        total < Duration::from_secs(40),
        "1000 logins took {logged_in:?}, delivery done after {total:?}"
    );
}
