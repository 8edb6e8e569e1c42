//! The output queue of a member, against the real `chat-server` binary: queue accounting that
//! counts each line's bookkeeping, and `--stall-timeout`, which drops a member whose output does
//! not move and spares a slow reader whose output does.
//!
//! A member that never reads is a client socket with a small receive buffer (`SO_RCVBUF`) from
//! another loopback address.
#![allow(clippy::unwrap_used)]

use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::{
    expect_online, filler, host, light, login_v3, send_tiny_and_sync_v3, Client, Server, TIMEOUT,
};

#[test]
fn tiny_lines_to_a_stalled_member_are_counted_with_their_bookkeeping() {
    // A member that never reads, fed one-character messages: each queued line must cost its
    // bookkeeping too (the lead counts 64 bytes), so the 4096-byte queue holds about
    // 4096 / (10 + 64) = 55 lines, not 4096 / 10 = 409. What the kernel held for the member is
    // measured by reading it after the drop, so only the server's own queue is counted.
    let _lock = light();
    const MAX_QUEUE: usize = 4096;
    const LINE: usize = "MSG s - x\n".len();
    const BATCH: usize = 8;
    let server = Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--max-queue",
        &MAX_QUEUE.to_string(),
        // A queue must hold at least one longest line (plus its bookkeeping).
        "--max-line",
        "1000",
        "--send-buffer",
        "4096",
    ]);
    // A version 3 sender: its ECHOs say a batch was delivered (lines are delivered once the
    // store has them) before the next batch is sent, so `sent` counts what reached z's queue.
    let mut s = server.connect();
    login_v3(&mut s, "s");
    let mut z = Client::connect_from_with(server.addr(), host(1), Some(4096));
    z.login("z");
    s.expect_exact("JOIN z");

    let mut sent = 0usize;
    loop {
        assert!(
            sent < 50_000,
            "z never read and was not dropped after {sent} messages"
        );
        let got = send_tiny_and_sync_v3(&mut s, BATCH);
        sent += BATCH;
        if got.iter().any(|l| l == "LEAVE z dropped") {
            break;
        }
        assert!(got.is_empty(), "s got {got:?}");
    }
    let (bytes, clean) = z.drain_to_close(TIMEOUT * 2);
    assert!(
        clean,
        "the dropped member's connection was reset: what the kernel held for it cannot be \
         measured by reading it, which this test needs ({bytes} bytes read)"
    );
    assert_eq!(
        bytes % LINE,
        0,
        "z received {bytes} bytes: not whole messages"
    );
    let in_kernel = bytes / LINE;
    let queued = sent
        .checked_sub(in_kernel)
        .unwrap_or_else(|| panic!("z received {in_kernel} messages but only {sent} were sent"));
    eprintln!(
        "stalled member dropped after {sent} messages of {LINE} bytes: {in_kernel} were in the \
         kernel, at most {queued} in the server's queue (--max-queue {MAX_QUEUE})"
    );
    // At least 64 bytes counted per queued line, plus the batch still being sent at the drop.
    let bound = MAX_QUEUE / 64 + BATCH + 1;
    assert!(
        queued <= bound,
        "{queued} one-character lines were queued before the drop: the queue counts fewer than \
         64 bytes per line (bound {bound})"
    );
    s.send_line("/who");
    s.expect_exact("INFO online (1): s");
}

/// A server that drops a member whose output has not moved for 1 s, with small socket buffers
/// so a member that stops reading is noticed quickly.
fn stall_timeout_server() -> Server {
    Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--stall-timeout",
        "1",
        "--send-buffer",
        "4096",
    ])
}

/// `n` numbered lines of 1000 bytes each (`000 xxx...`), sent as one burst.
fn kilobyte_lines(n: usize) -> String {
    let pad = filler("", 996);
    (0..n).map(|i| format!("{i:03} {pad}\n")).collect()
}

#[test]
fn stall_timeout_drops_a_member_whose_output_does_not_move() {
    let _lock = light();
    let server = stall_timeout_server();
    let mut s = server.login("s");
    let mut h = server.login("h");
    s.expect_exact("JOIN h");
    let mut z = Client::connect_from_with(server.addr(), host(1), Some(4096));
    z.login("z");
    s.expect_exact("JOIN z");
    h.expect_exact("JOIN z");

    // 100 KB: far below --max-queue (1 MiB) but far above what the kernel holds for z.
    let start = Instant::now();
    s.send_raw(kilobyte_lines(100).as_bytes());
    for i in 0..100 {
        h.expect(&format!("MSG s - {i:03} "));
    }
    let line = match h.try_next_line(Duration::from_secs(10)) {
        Ok(line) => line,
        Err(e) => panic!("no LEAVE z dropped within 10 s of the stall ({e:?})"),
    };
    let took = start.elapsed();
    assert_eq!(line, "LEAVE z dropped");
    eprintln!("stalled member dropped {took:?} after its output stopped moving");
    assert!(
        took >= Duration::from_millis(900),
        "dropped after {took:?}, before the 1 s stall timeout"
    );
    s.skip_until("LEAVE z dropped");
    z.drain_to_close(TIMEOUT);
    // The healthy member was untouched.
    s.send_line("after");
    h.expect_exact("MSG s - after");
}

#[test]
fn stall_timeout_spares_a_slow_reader_whose_output_moves() {
    // A reader that takes 32 lines (about 32 KB) every 250 ms keeps its output moving, so a 1 s
    // stall timeout must not drop it even though its queue stays long for seconds.
    let _lock = light();
    let server = stall_timeout_server();
    let mut s = server.login("s");
    let mut r = Client::connect_from_with(server.addr(), host(1), Some(16 * 1024));
    r.login("r");
    s.expect_exact("JOIN r");
    let start = Instant::now();
    s.send_raw(kilobyte_lines(300).as_bytes());
    let mut next = 0;
    let mut pauses = 0;
    while next < 300 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the slow reader got only {next} of 300 lines"
        );
        match r.try_next_line(TIMEOUT) {
            Ok(line) => {
                assert!(
                    line.starts_with(&format!("MSG s - {next:03} ")),
                    "line {next}: {line:?}"
                );
                next += 1;
            }
            Err(e) => panic!("the slow reader was cut off after {next} lines: {e:?}"),
        }
        if next % 32 == 0 {
            // The reader's pace is the behaviour under test, not a synchronisation.
            thread::sleep(Duration::from_millis(250));
            pauses += 1;
        }
    }
    eprintln!(
        "slow reader got 300 lines in {:?} with {pauses} pauses",
        start.elapsed()
    );
    expect_online(&mut s, &["r", "s"]);
}
