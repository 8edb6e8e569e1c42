//! The server's own outputs when nobody reads them or they fail, against the real `chat-server`
//! binary: a log file on a full disk, a console (stdout) nobody reads and a log pipe (stderr)
//! nobody reads. None of them may freeze the room. The second test first failed and pinned down
//! a server bug, since fixed: a stalled stderr blocked the reactor.
#![allow(clippy::unwrap_used)]

use chat_testkit::{
    expect_alive, expect_fds_back, fd_count, filler, light, skip_to, Client, Healthy, Server,
    SETTLE, TIMEOUT,
};

#[test]
fn log_file_on_a_full_disk_does_not_disturb_serving() {
    let _lock = light();
    let server = Server::start(&[
        "--auto-approve",
        "--log-file",
        "/dev/full",
        "--log-level",
        "debug",
    ]);
    let pid = server.pid();
    let healthy = Healthy::start(&server, "h", 2);
    let baseline = fd_count(pid);
    // Traffic that logs at every level: logins, bad names, over-long lines, leaves, refusals.
    for i in 0..50 {
        let mut c = server.connect_prompted();
        c.send_line("bad name!");
        c.expect("ERROR bad-name ");
        c.expect("NAME? ");
        let name = format!("d{i}");
        c.send_line(&name);
        c.expect_welcome(&name);
        c.send_line(&filler("long", 5000));
        skip_to(&mut c, "ERROR line-too-long ", TIMEOUT);
        c.send_line("/leave");
        skip_to(&mut c, "BYE ", TIMEOUT);
    }
    expect_fds_back(&server, baseline, SETTLE);
    let report = healthy.finish();
    assert!(report.all_saw("LEAVE d49 left"), "{report:?}");
    expect_alive(&server);
    assert!(
        server.stderr_text().is_empty(),
        "stderr: {}",
        server.stderr_text()
    );
    eprintln!(
        "log on /dev/full: 50 sessions served, healthy got {} in order",
        report.sent
    );
}

#[test]
fn a_stalled_console_does_not_freeze_the_room() {
    let _lock = light();
    let server = Server::builder()
        .args(&["--auto-approve"])
        .stall_stdout()
        .start();
    let mut a = Client::connect(server.addr());
    a.login("a");
    let mut b = Client::connect(server.addr());
    b.login("b");
    a.expect_exact("JOIN b");
    // Each join and leave prints a console line; 1500 of each is far past a pipe's 64 KiB.
    for i in 0..1500 {
        let mut c = Client::connect(server.addr());
        let name = format!("churn{i}");
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("NAME? ") => {}
            other => panic!("connection {i} got {other:?}: the server froze on its console"),
        }
        c.send_line(&name);
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("WELCOME ") => {}
            other => panic!("join {i} got {other:?}: the server froze on its console"),
        }
    }
    b.send_line("still here");
    a.skip_until("MSG b - still here");
    eprintln!("stalled console: 1500 joins and leaves served with nobody reading stdout");
}

// Regression test. Log records used to be written to stderr with a blocking write in the
// reactor thread, and a peer can make the server log at the default level: every join refused
// for --max-pending is a warning, as is every refusal for lack of descriptors. With stderr not
// being read (a terminal paused with Ctrl-S, a stuck pipe), about 800 refused joins filled the
// 64 KiB pipe and the whole server froze for every member. Fixed by writing the log through a
// non-blocking stderr (`NonBlockingStderr` in server/src/main.rs).
#[test]
fn a_stalled_log_pipe_does_not_freeze_the_room() {
    let _lock = light();
    let mut server = Server::builder()
        .args(&["--max-pending", "1"])
        .stall_stderr()
        .start();
    let mut a = server.approved("a");
    let mut b = server.approved("b");
    a.expect_exact("JOIN b");
    server.expect_console("approved b");
    // One join waits, so every further join is refused with a warning in the log.
    let mut waiting = Client::connect(server.addr());
    waiting.expect("NAME? ");
    waiting.send_line("w0");
    waiting.expect("WAIT ");
    for i in 0..3000 {
        let mut c = Client::connect(server.addr());
        c.send_line(&format!("x{i}"));
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("NAME? ") => {}
            other => panic!("join {i} got {other:?}: the server froze on its log"),
        }
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("ERROR server-full ") => {}
            other => panic!("join {i} got {other:?}: the server froze on its log"),
        }
    }
    b.send_line("still here");
    a.skip_until("MSG b - still here");
}
