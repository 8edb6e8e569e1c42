//! Integration tests of every limit flag of `chat-server`, at and past its value: line length,
//! connection count, waiting-room size, login and approval timeouts, pacing, the output queue, and
//! the memory a newline-free flood may cost.
//!
//! Timeouts under test are set to half a second so the suite stays fast; the assertions on time
//! are loose lower bounds (the limit really waited) and generous upper bounds (it fired at all).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::{filler, Client, Server, TIMEOUT};

/// Logs in `a` and `b` on an auto-approving server and consumes b's JOIN at a.
#[track_caller]
fn pair(server: &Server) -> (Client, Client) {
    let mut a = server.login("a");
    let b = server.login("b");
    a.expect_exact("JOIN b");
    (a, b)
}

#[test]
fn max_line_passes_at_the_limit_and_refuses_past_it_once() {
    let server = Server::start(&["--auto-approve", "--max-line", "64"]);
    let (mut a, mut b) = pair(&server);
    let exact = filler("exact", 64);
    a.send_line(&exact);
    b.expect_exact(&format!("MSG a - {exact}"));
    // The CR of a CRLF is the terminator's, not the line's.
    a.send_raw(format!("{exact}\r\n").as_bytes());
    b.expect_exact(&format!("MSG a - {exact}"));

    let over = filler("over", 65);
    a.send_line(&over);
    a.expect("ERROR line-too-long ");
    a.send_line("after");
    // The long line was discarded whole, not truncated and delivered.
    b.expect_exact("MSG a - after");
    b.send_line("ping");
    // Exactly one error: the next line a gets is b's.
    a.expect_exact("MSG b - ping");
}

#[test]
fn megabyte_line_without_newline_gets_one_error_and_the_connection_works() {
    let server = Server::start(&["--auto-approve", "--max-line", "64"]);
    let (mut a, mut b) = pair(&server);
    a.send_raw(&vec![b'z'; 1 << 20]);
    a.send_raw(b"\nhello\n");
    a.expect("ERROR line-too-long ");
    b.expect_exact("MSG a - hello");
    b.send_line("ping");
    a.expect_exact("MSG b - ping");
}

#[test]
fn max_clients_refuses_the_connection_beyond_and_frees_slots() {
    let server = Server::start(&["--auto-approve", "--max-clients", "3"]);
    let (mut a, mut b) = pair(&server);
    // A connection that has not named itself still holds a slot.
    let mut unnamed = server.connect_prompted();
    let mut fourth = server.connect();
    fourth.expect("ERROR server-full ");
    fourth.expect_eof();
    // The refusal changed nothing for the others.
    unnamed.send_line("c");
    assert_eq!(unnamed.expect_welcome("c"), 3);
    a.expect_exact("JOIN c");
    b.expect_exact("JOIN c");
    // After one leaves, a new connection is accepted. The server may hold the leaver's slot
    // until it has seen the peer close too (a polite close, so BYE is not lost to a reset), and
    // nothing tells the test when it has; hence a bounded retry rather than a single attempt.
    a.send_line("/leave");
    a.expect("BYE ");
    a.expect_eof();
    drop(a);
    b.expect_exact("LEAVE a left");
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut e = loop {
        let mut e = server.connect();
        let first = e.next_line();
        if first.starts_with("NAME? ") {
            break e;
        }
        assert!(first.starts_with("ERROR server-full "), "got {first:?}");
        assert!(
            Instant::now() < deadline,
            "still server-full 4 s after a member left and closed"
        );
        thread::sleep(Duration::from_millis(20));
    };
    e.send_line("e");
    assert_eq!(e.expect_welcome("e"), 3);
    b.expect_exact("JOIN e");
}

#[test]
fn max_pending_refuses_the_join_beyond_the_waiting_room() {
    let mut server = Server::start(&["--max-pending", "2"]);
    let (mut w1, _) = server.join_waiting("w1");
    let (_w2, _) = server.join_waiting("w2");
    let mut third = server.connect();
    // The contract leaves open whether the refusal comes at connect or at naming time.
    let first = third.next_line();
    if first.starts_with("NAME? ") {
        third.send_line("w3");
        third.expect("ERROR server-full ");
    } else {
        assert!(first.starts_with("ERROR server-full "), "got {first:?}");
    }
    third.expect_eof();
    // Deciding one join makes room for another.
    server.console("approve w1");
    server.expect_console("approved w1 (by stdin; 1 online)");
    assert_eq!(w1.expect_welcome("w1"), 1);
    let (mut w4, _) = server.join_waiting("w4");
    w4.send_line("still waiting");
    w4.expect("ERROR not-admitted ");
}

#[test]
fn login_timeout_closes_only_connections_without_a_valid_name() {
    let server = Server::start(&["--auto-approve", "--login-timeout", "0.5"]);
    let start = Instant::now();
    let mut idle = server.connect_prompted();
    let mut bad = server.connect_prompted();
    let mut named = server.connect_prompted();
    named.send_line("named");
    assert_eq!(named.expect_welcome("named"), 1);
    bad.send_line("bad name!");
    bad.expect("ERROR bad-name ");
    bad.expect("NAME? ");

    idle.expect("BYE ");
    idle.expect_eof();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}, before the 0.5 s login timeout"
    );
    // Bad names do not count as a name given.
    bad.expect("BYE ");
    bad.expect_eof();
    // The one that named itself in time is still served after the timeout passed.
    named.send_line("/who");
    named.expect_exact("INFO online (1): named");
}

#[test]
fn login_timeout_spares_a_join_waiting_for_approval() {
    let mut server = Server::start(&["--login-timeout", "0.5"]);
    let (mut waiting, _) = server.join_waiting("waiting");
    let mut idle = server.connect_prompted();
    idle.expect("BYE ");
    idle.expect_eof();
    // The idle one was cut, so 0.5 s have passed for `waiting` too; it still waits.
    server.console("approve waiting");
    server.expect_console("approved waiting (by stdin; 1 online)");
    assert_eq!(waiting.expect_welcome("waiting"), 1);
}

#[test]
fn approval_timeout_denies_an_undecided_join() {
    let mut server = Server::start(&["--approval-timeout", "0.5"]);
    let start = Instant::now();
    let (mut w, _) = server.join_waiting("w");
    w.expect("DENIED ");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "denied after {waited:?}, before the 0.5 s approval timeout"
    );
    w.expect_eof();
    assert_eq!(server.pending(), ["pending: 0 waiting"]);
    // Approving it now finds nobody.
    server.console("approve w");
    server.expect_console("error: nobody named w is waiting");
}

#[test]
fn rate_paces_a_burst_without_losing_or_reordering_lines() {
    let server = Server::start(&["--auto-approve", "--rate", "5", "--burst", "5"]);
    let (mut a, mut b) = pair(&server);
    let batch: String = (0..30).map(|i| format!("line {i:02}\n")).collect();
    let start = Instant::now();
    a.send_raw(batch.as_bytes());
    for i in 0..30 {
        match b.try_next_line(TIMEOUT) {
            Ok(line) => assert_eq!(line, format!("MSG a - line {i:02}")),
            Err(end) => panic!(
                "only {i} of 30 paced lines arrived ({end:?} after {:?})",
                start.elapsed()
            ),
        }
    }
    let took = start.elapsed();
    eprintln!("30 lines at --rate 5 --burst 5 took {took:?}");
    // 30 lines at 5/s after a burst of 5 need about 5 s; 3 s proves pacing with slack.
    assert!(
        took > Duration::from_secs(3),
        "30 lines at --rate 5 --burst 5 arrived in {took:?}: not paced"
    );
    assert!(took < Duration::from_secs(20), "pacing took {took:?}");
    // The paced sender got no error and is still a member.
    b.send_line("ping");
    a.expect_exact("MSG b - ping");
}

/// How far (in lines of about 1 KB) the flooder may run ahead of the slowest healthy reader. The
/// server may rightly drop any reader that falls more than `--max-queue` (64 KiB here) behind, so
/// a "healthy" member is one that keeps within this window; 32 KB stays inside the queue limit
/// even if the kernel buffered nothing.
const WINDOW: u64 = 32;

/// Reads room messages `MSG flooder - NNNNNNNN ...` until the `end` marker, checking that the
/// numbers run 0, 1, 2, ... without a gap; publishes its progress in `read`, raises `dropped` on
/// `LEAVE slow dropped`, and returns the client, how many messages arrived and whether the LEAVE
/// was seen.
fn read_flood(
    mut c: Client,
    read: Arc<AtomicU64>,
    dropped: Arc<AtomicBool>,
) -> (Client, u64, bool) {
    let mut next = 0u64;
    let mut saw_drop = false;
    loop {
        let line = c.next_line();
        if line == "LEAVE slow dropped" {
            saw_drop = true;
            dropped.store(true, Ordering::SeqCst);
            continue;
        }
        let text = line
            .strip_prefix("MSG flooder - ")
            .unwrap_or_else(|| panic!("[{}] unexpected line {line:?}", c.name));
        if text == "end" {
            return (c, next, saw_drop);
        }
        let n: u64 = text[..8].parse().unwrap();
        assert_eq!(n, next, "[{}] message out of order or lost", c.name);
        next += 1;
        read.store(next, Ordering::SeqCst);
    }
}

#[test]
fn slow_reader_past_max_queue_is_dropped_and_the_others_get_everything() {
    let sent = flood_until_slow_is_dropped(&["--max-queue", "65536"]);
    eprintln!("slow reader dropped after {sent} lines of about 1 KB (default --send-buffer)");
}

#[test]
fn send_buffer_bounds_what_a_stalled_reader_costs() {
    // What the server holds for a member that stopped reading: its own queue (--max-queue), the
    // kernel's send buffer (--send-buffer, which Linux doubles) and what already moved into the
    // reader's receive buffer (at most twice tcp_rmem's default, since it never reads).
    // Without the send-buffer cap the kernel autotunes up to tcp_wmem's maximum (4 MiB here):
    // the drop then came only after about 2.8 MB.
    let rmem_default: u64 = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(131_072);
    let (queue, sndbuf) = (65_536u64, 65_536u64);
    let sent = flood_until_slow_is_dropped(&[
        "--max-queue",
        &queue.to_string(),
        "--send-buffer",
        &sndbuf.to_string(),
    ]);
    let held = sent * 1024; // "MSG flooder - " + 8 digits + space + 1000 + LF
    let bound = queue + 2 * sndbuf + 2 * rmem_default + 64 * 1024;
    eprintln!("stalled reader dropped after {held} bytes (bound {bound})");
    assert!(
        held <= bound,
        "a stalled reader took {held} bytes before being dropped (bound {bound})"
    );
}

/// Logs in a flooder, two healthy readers and `slow` (which never reads) on a server started
/// with `args`; floods 1 KB room lines until `slow` is dropped; checks that the healthy readers
/// got everything in order and `slow` is gone. Returns how many lines it took.
fn flood_until_slow_is_dropped(args: &[&str]) -> u64 {
    let mut all = vec!["--auto-approve", "--rate", "0"];
    all.extend_from_slice(args);
    let server = Server::start(&all);
    let mut flooder = server.login("flooder");
    let mut h1 = server.login("h1");
    let mut slow = server.login("slow");
    let h2 = server.login("h2");
    flooder.expect_exact("JOIN h1");
    flooder.expect_exact("JOIN slow");
    flooder.expect_exact("JOIN h2");
    h1.expect_exact("JOIN slow");
    h1.expect_exact("JOIN h2");
    slow.expect_exact("JOIN h2");

    let dropped = Arc::new(AtomicBool::new(false));
    let progress: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let readers: Vec<_> = [h1, h2]
        .into_iter()
        .zip(&progress)
        .map(|(c, read)| {
            let (read, dropped) = (Arc::clone(read), Arc::clone(&dropped));
            thread::spawn(move || read_flood(c, read, dropped))
        })
        .collect();

    // Flood until a healthy member has seen the slow one dropped. The kernel's socket buffers
    // absorb some megabytes before the server's queue for `slow` grows, so the amount is not
    // fixed; the cap turns a server that never drops into a failure instead of a hang.
    let pad = filler("", 1000);
    let cap = 100_000u64; // about 100 MB
    let mut sent = 0u64;
    let mut stalled_since = Instant::now();
    while !dropped.load(Ordering::SeqCst) {
        assert!(
            sent < cap,
            "slow reader not dropped after {sent} lines of 1 KB"
        );
        let slowest = progress
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .min()
            .unwrap_or(0);
        if sent - slowest >= WINDOW {
            // Waiting for the readers, who own the sockets; there is nothing to block on here.
            assert!(
                stalled_since.elapsed() < TIMEOUT,
                "healthy readers stuck at {slowest} of {sent} messages"
            );
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        stalled_since = Instant::now();
        flooder.send_line(&format!("{sent:08} {pad}"));
        sent += 1;
    }
    flooder.send_line("end");
    // The healthy members stay connected until the end: their leaving would be a LEAVE line.
    let mut healthy = Vec::new();
    for r in readers {
        let (c, got, saw_drop) = r.join().unwrap();
        healthy.push(c);
        assert_eq!(got, sent, "a healthy member missed messages");
        assert!(saw_drop, "a healthy member did not get LEAVE slow dropped");
    }
    flooder.expect_exact("LEAVE slow dropped");
    // The slow member's connection is closed (after whatever was already in its buffers).
    slow.expect_closed();
    flooder.send_line("/who");
    let who = flooder.expect("INFO online (3): ");
    assert!(!who.contains("slow"), "{who:?}");
    drop(healthy);
    sent
}

#[test]
fn newline_free_flood_keeps_memory_bounded_and_others_served() {
    let server = Server::start(&["--auto-approve"]);
    let (mut a, mut f) = pair(&server);
    let before = server.proc_status_kib("VmRSS");
    let chunk = vec![b'x'; 64 * 1024];
    // 800 x 64 KiB = 50 MiB with no LF anywhere.
    for i in 0..800 {
        f.send_raw(&chunk);
        if i % 200 == 199 {
            // Mid-flood, everyone else is still answered.
            a.send_line("/who");
            a.expect("INFO online (2): ");
        }
    }
    f.send_raw(b"\n/who\n");
    // One error for the whole over-long line, then the flooder is served normally.
    f.expect("ERROR line-too-long ");
    f.expect("INFO online (2): ");
    let peak = server.proc_status_kib("VmHWM");
    let after = server.proc_status_kib("VmRSS");
    let growth_kib = peak.saturating_sub(before);
    eprintln!("50 MiB flood: RSS before {before} KiB, peak {peak} KiB, after {after} KiB");
    assert!(
        growth_kib < 16 * 1024,
        "peak RSS grew by {growth_kib} KiB (before {before} KiB, peak {peak} KiB, after {after} KiB)"
    );
    f.send_line("bye");
    a.expect_exact("MSG b - bye");
}

#[test]
fn max_per_ip_refuses_connections_beyond_it() {
    let server = Server::start(&["--auto-approve", "--max-per-ip", "2"]);
    let (mut a, _b) = pair(&server);
    let mut third = server.connect();
    third.expect("ERROR server-full ");
    third.expect_eof();
    a.send_line("/who");
    a.expect("INFO online (2): ");
}

#[test]
fn default_max_line_is_4096() {
    let server = Server::start(&["--auto-approve"]);
    let (mut a, mut b) = pair(&server);
    let exact = filler("d", 4096);
    a.send_line(&exact);
    b.expect_exact(&format!("MSG a - {exact}"));
    a.send_line(&filler("e", 4097));
    a.expect("ERROR line-too-long ");
    b.send_line("ping");
    a.expect_exact("MSG b - ping");
}

#[test]
fn out_of_descriptors_refuses_connections_and_does_not_spin() {
    // Hard limit 64 too, so the server cannot raise it: connections past the descriptors it has
    // must still be answered (not left in the backlog) and the loop must not busy-wait.
    let server = Server::spawn_wrapped(
        &["prlimit", "--nofile=64:64"],
        &["--listen", "127.0.0.1:0", "--auto-approve"],
        chat_testkit::Console::Piped,
    );
    let mut clients: Vec<Client> = (0..80).map(|_| server.connect()).collect();
    let (mut admitted, mut refused) = (0, 0);
    for (i, c) in clients.iter_mut().enumerate() {
        let first = c.try_next_line(TIMEOUT).unwrap_or_else(|end| {
            let before = server.cpu_time();
            thread::sleep(Duration::from_secs(1));
            panic!(
                "connection {i} of 80 got no first line ({end:?}); the server used {:?} of CPU \
                 in the following second",
                server.cpu_time() - before
            )
        });
        if first.starts_with("NAME? ") {
            admitted += 1;
        } else {
            assert!(first.starts_with("ERROR server-full "), "got {first:?}");
            c.expect_eof();
            refused += 1;
        }
    }
    eprintln!("with 64 descriptors: {admitted} admitted, {refused} refused of 80");
    assert!(
        admitted > 0 && refused > 0,
        "{admitted} admitted, {refused} refused"
    );
    // The server is idle now (the refused are closed, the others wait for a name): it must not
    // burn CPU. One second of wall time is the measurement itself, not a synchronisation.
    let before = server.cpu_time();
    thread::sleep(Duration::from_secs(1));
    let used = server.cpu_time() - before;
    assert!(
        used < Duration::from_millis(300),
        "idle server used {used:?} CPU in 1 s"
    );
    // Freeing descriptors lets new connections in again.
    drop(clients);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = server.connect();
        if c.next_line().starts_with("NAME? ") {
            c.send_line("late");
            c.expect_welcome("late");
            break;
        }
        assert!(Instant::now() < deadline, "never accepted again");
        thread::sleep(Duration::from_millis(20));
    }
}
