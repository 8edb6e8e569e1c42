//! Hardening, round 2 (issue 10; the contract's "Limits, version 2") against the real
//! `chat-server` binary over real sockets: queue accounting that counts each line's bookkeeping,
//! `--stall-timeout`, byte pacing (`--burst-bytes`, `--rate-bytes`) and its start-up check,
//! `--max-pending-per-ip`, the name cool-down, the console's `ban`/`unban`/`bans`, coalesced
//! console announcements and churn that leaves no memory behind, the memory of idle and parked
//! members, replies kept across a half-close, and U+2028/U+2029 removed.
//!
//! Different hosts are played by binding client sockets to other loopback source addresses
//! (127.0.0.2, 127.0.0.3, 127.0.1.x: Linux routes all of 127/8 to lo) with the local [`Remote`]
//! client. Memory is read from /proc (VmRSS, VmHWM) and every bound asserted is stated beside the
//! assertion; figures are printed (`--nocapture`). Heavy tests take the shared lock of
//! `chat_testkit` so they never overlap another test's timing on a small machine.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use chat_common::protocol::ServerMsg;
use chat_testkit::{filler, Client, End, Server, TIMEOUT};
use chat_testkit::{heavy, light, peak_rss_kib, rss_kib};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

// ---- a client from another loopback host -----------------------------------------------------

/// The loopback address `127.0.0.last`.
fn host(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A connection from a chosen loopback source address, optionally with a small receive buffer
/// (`SO_RCVBUF`, set before connecting, so a member that never reads fills the server's side
/// quickly). Written when the shared `Client` could not bind before connecting, so this is its
/// small twin: every line is read with a deadline and checked against the shared grammar.
/// (`chat_testkit::Client::connect_from_with` now does the same.)
#[derive(Debug)]
struct Remote {
    stream: TcpStream,
    /// Bytes received but not yet returned as lines.
    pending: Vec<u8>,
    /// Name for failure messages.
    name: String,
}

impl Remote {
    /// Connects from `from` (port chosen by the kernel) to `server`.
    #[track_caller]
    fn connect(from: Ipv4Addr, server: SocketAddr) -> Remote {
        Remote::connect_with(from, server, None)
    }

    /// Connects from `from` to `server` with `rcvbuf` as `SO_RCVBUF` when given.
    #[track_caller]
    fn connect_with(from: Ipv4Addr, server: SocketAddr, rcvbuf: Option<usize>) -> Remote {
        assert!(
            from.is_loopback() && server.ip().is_loopback(),
            "tests only use 127.0.0.0/8"
        );
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket
            .bind(&SockAddr::from(SocketAddrV4::new(from, 0)))
            .unwrap_or_else(|e| panic!("cannot bind to {from}: {e}"));
        socket
            .connect_timeout(&SockAddr::from(server), TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect from {from} to {server}: {e}"));
        socket.set_nodelay(true).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_write_timeout(Some(TIMEOUT * 2)).unwrap();
        Remote {
            stream,
            pending: Vec::new(),
            name: format!("{from}"),
        }
    }

    /// The source address and port, as the server sees the peer.
    fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    #[track_caller]
    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("[{}] write failed: {e}", self.name));
    }

    #[track_caller]
    fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// The next line (without LF), or how the read ended, waiting at most `within`.
    fn try_next_line(&mut self, within: Duration) -> Result<String, End> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
                line.pop();
                return Ok(String::from_utf8(line).expect("the server sent invalid UTF-8"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(End::Eof),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(End::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Error(e.kind())),
            }
        }
    }

    /// The next line, grammar-checked; fails the test on timeout or close.
    #[track_caller]
    fn next_line(&mut self) -> String {
        match self.try_next_line(TIMEOUT) {
            Ok(line) => {
                if let Err(e) = ServerMsg::parse(&line) {
                    panic!(
                        "[{}] server line {line:?} breaks the grammar: {e}",
                        self.name
                    );
                }
                line
            }
            Err(end) => panic!(
                "[{}] expected a line within {TIMEOUT:?}, got {end:?}",
                self.name
            ),
        }
    }

    #[track_caller]
    fn expect(&mut self, prefix: &str) -> String {
        let line = self.next_line();
        assert!(
            line.starts_with(prefix),
            "[{}] expected a line starting with {prefix:?}, got {line:?}",
            self.name
        );
        line
    }

    #[track_caller]
    fn expect_exact(&mut self, want: &str) {
        let line = self.next_line();
        assert_eq!(line, want, "[{}] unexpected line", self.name);
    }

    /// The server closes the connection (FIN or reset) within [`TIMEOUT`]; lines before the
    /// close are returned.
    #[track_caller]
    fn expect_closed(&mut self) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            match self.try_next_line(TIMEOUT) {
                Ok(line) => skipped.push(line),
                Err(End::Eof | End::Error(_)) => return skipped,
                Err(End::Timeout) => panic!(
                    "[{}] expected the connection to close; still open after {skipped:?}",
                    self.name
                ),
            }
        }
    }

    /// `NAME?`, `name`, `WELCOME name N` (the server must auto-approve).
    #[track_caller]
    fn login(&mut self, name: &str) {
        self.name = name.to_owned();
        self.expect("NAME? ");
        self.send_line(name);
        self.expect(&format!("WELCOME {name} "));
    }

    /// Reads everything up to the server's close and returns how many bytes came (those already
    /// buffered included) and whether the close was a clean end of file (not a reset).
    #[track_caller]
    fn drain_to_close(&mut self, within: Duration) -> (usize, bool) {
        let deadline = Instant::now() + within;
        let mut total = std::mem::take(&mut self.pending).len();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "[{}] still open after {within:?} ({total} bytes read)",
                self.name
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return (total, true),
                Ok(n) => total += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (total, false),
            }
        }
    }
}

/// Connects from `from`, offers `name`, expects `WAIT`, and awaits the console's announcement
/// `join request: NAME from IP:PORT ...` with the real source address (no `--auto-approve`).
#[track_caller]
fn join_from(server: &mut Server, from: Ipv4Addr, name: &str) -> Remote {
    let mut c = Remote::connect(from, server.addr());
    c.name = name.to_owned();
    c.expect("NAME? ");
    c.send_line(name);
    c.expect("WAIT ");
    let announced = server.expect_console(&format!("join request: {name} from "));
    assert!(
        announced.starts_with(&format!("join request: {name} from {} ", c.local_addr())),
        "announcement {announced:?} does not name {}",
        c.local_addr()
    );
    c
}

/// Offers `name` on a connection from `from` and returns the reply: `WAIT ...`, or an `ERROR`
/// (the refusal may also come before the prompt, at connect time; then that line is returned).
#[track_caller]
fn offer_from(server: &Server, from: Ipv4Addr, name: &str) -> (Remote, String) {
    let mut c = Remote::connect(from, server.addr());
    c.name = format!("{name}@{from}");
    let first = c.next_line();
    if !first.starts_with("NAME? ") {
        return (c, first);
    }
    c.send_line(name);
    let reply = c.next_line();
    (c, reply)
}

/// `/who` from `c` lists exactly `names` (in any order); any line before the answer (such as a
/// `LEAVE ... dropped`) fails the test.
#[track_caller]
fn expect_online(c: &mut Client, names: &[&str]) {
    c.send_line("/who");
    let prefix = format!("INFO online ({}): ", names.len());
    let who = c.expect(&prefix);
    let mut listed: Vec<&str> = who[prefix.len()..].split(", ").collect();
    listed.sort_unstable();
    assert_eq!(listed, names, "in {who:?}");
}

/// Memory of the server now, in bytes.
fn rss_bytes(server: &Server) -> u64 {
    rss_kib(server.pid()) * 1024
}

// ---- queue accounting ------------------------------------------------------------------------------

/// Sends `lines` one-character room messages in one write, then `/sync` (an unknown command,
/// answered in order), and returns every line `s` got before the answer.
#[track_caller]
fn send_tiny_and_sync(s: &mut Client, lines: usize) -> Vec<String> {
    s.send_raw("x\n".repeat(lines).as_bytes());
    s.send_line("/sync");
    let mut got = Vec::new();
    loop {
        let line = s.next_line();
        if line.starts_with("ERROR unknown-command ") {
            return got;
        }
        got.push(line);
    }
}

/// [`send_tiny_and_sync`] for a version 3 sender: also waits for the `ECHO` of every line, which
/// the server sends when the line has been delivered (durable before delivered: the `/sync`
/// error comes back at once, the lines once the store has them).
fn send_tiny_and_sync_v3(s: &mut Client, lines: usize) -> Vec<String> {
    s.send_raw("x\n".repeat(lines).as_bytes());
    s.send_line("/sync");
    let (mut got, mut echoes, mut synced) = (Vec::new(), 0, false);
    while echoes < lines || !synced {
        let line = s.next_line();
        if line.starts_with("ERROR unknown-command ") {
            synced = true;
        } else if line.starts_with("ECHO ") {
            echoes += 1;
        } else {
            got.push(line);
        }
    }
    got
}

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
    // A version 3 sender, so a batch is known delivered (its ECHOs) before the next is sent.
    let mut s = server.connect();
    s.expect("NAME? ");
    s.send_line("HELLO 3");
    s.expect_exact("HELLO 3");
    s.send_line("s");
    s.expect_welcome("s");
    s.expect("TOKEN ");
    let mut z = Remote::connect_with(host(1), server.addr(), Some(4096));
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

#[test]
fn stalled_members_fed_tiny_lines_cost_no_more_than_max_queue_each() {
    // 100 members that never read, fed one-character messages until every one is dropped: the
    // server's memory must grow by at most --max-queue plus 4 KiB per stalled member, plus 1 MiB
    // for everything else. Counting only the bytes of each line, a 64 KiB queue of 10-byte
    // lines holds 6,500 slots (about 128 KiB of slot storage), which breaks this bound.
    let _lock = heavy();
    const STALLED: usize = 100;
    const MAX_QUEUE: u64 = 64 * 1024;
    let server = Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--max-queue",
        &MAX_QUEUE.to_string(),
        "--send-buffer",
        "4096",
    ]);
    let pid = server.pid();
    let mut s = server.login("s");
    let mut stalled = Vec::new();
    for i in 0..STALLED {
        let name = format!("z{i:03}");
        let mut z = Remote::connect_with(host(1), server.addr(), Some(4096));
        z.login(&name);
        s.expect_exact(&format!("JOIN {name}"));
        stalled.push(z);
    }
    let before = rss_kib(pid);
    let mut gone = BTreeSet::new();
    let mut sent = 0usize;
    while gone.len() < STALLED {
        assert!(
            sent < 300_000,
            "after {sent} messages only {} of {STALLED} stalled members were dropped",
            gone.len()
        );
        for line in send_tiny_and_sync(&mut s, 256) {
            let name = line
                .strip_prefix("LEAVE ")
                .and_then(|l| l.strip_suffix(" dropped"))
                .unwrap_or_else(|| panic!("s got {line:?}"));
            assert!(gone.insert(name.to_owned()), "two LEAVEs of {name}");
        }
        sent += 256;
    }
    let peak = peak_rss_kib(pid);
    let growth = peak.saturating_sub(before);
    let bound = STALLED as u64 * (MAX_QUEUE / 1024 + 4) + 1024;
    eprintln!(
        "{STALLED} stalled members dropped after {sent} tiny messages: RSS before {before} KiB, \
         peak {peak} KiB, growth {growth} KiB ({} KiB per member), bound {bound} KiB",
        growth / STALLED as u64
    );
    assert!(
        growth <= bound,
        "stalled members cost {growth} KiB in all, more than {bound} KiB"
    );
    drop(stalled);
}

// ---- stall timeout ---------------------------------------------------------------------------------

#[test]
fn stall_timeout_drops_a_member_whose_output_does_not_move() {
    let _lock = light();
    let server = Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--stall-timeout",
        "1",
        "--send-buffer",
        "4096",
    ]);
    let mut s = server.login("s");
    let mut h = server.login("h");
    s.expect_exact("JOIN h");
    let mut z = Remote::connect_with(host(1), server.addr(), Some(4096));
    z.login("z");
    s.expect_exact("JOIN z");
    h.expect_exact("JOIN z");

    // 100 KB: far below --max-queue (1 MiB) but far above what the kernel holds for z.
    let pad = filler("", 996);
    let burst: String = (0..100).map(|i| format!("{i:03} {pad}\n")).collect();
    let start = Instant::now();
    s.send_raw(burst.as_bytes());
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
    let server = Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--stall-timeout",
        "1",
        "--send-buffer",
        "4096",
    ]);
    let mut s = server.login("s");
    let mut r = Remote::connect_with(host(1), server.addr(), Some(16 * 1024));
    r.login("r");
    s.expect_exact("JOIN r");
    let pad = filler("", 996);
    let burst: String = (0..300).map(|i| format!("{i:03} {pad}\n")).collect();
    let start = Instant::now();
    s.send_raw(burst.as_bytes());
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

// ---- byte pacing -----------------------------------------------------------------------------------

#[test]
fn a_byte_burst_does_not_drop_a_reader_at_a_modest_pace() {
    // Default limits: 500 lines of 4000 bytes at once are within the line burst (500), but 2 MB
    // would overflow the 1 MiB queue of a reader taking about 500 KB/s. Byte pacing must slow
    // the sender instead, so the reader gets all 500 lines and is never dropped.
    let _lock = light();
    let server = Server::start(&["--auto-approve"]);
    let mut s = server.login("s");
    let mut r = Remote::connect_with(host(1), server.addr(), Some(64 * 1024));
    r.login("r");
    s.expect_exact("JOIN r");

    let pad = filler("", 3996);
    let burst: String = (0..500).map(|i| format!("{i:03} {pad}\n")).collect();
    let mut writer = s.stream().try_clone().unwrap();
    // The server may rightly stop reading the sender for several seconds.
    writer
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let start = Instant::now();
    let sender = thread::spawn(move || writer.write_all(burst.as_bytes()));

    let mut read_bytes = 0usize;
    for i in 0..500 {
        let line = match r.try_next_line(Duration::from_secs(15)) {
            Ok(line) => line,
            Err(e) => panic!("the reader got only {i} of 500 lines: {e:?}"),
        };
        let want = format!("MSG s - {i:03} {pad}");
        assert!(line == want, "line {i} differs: {:?}", &line[..40]);
        // About 16 KiB every 30 ms: a modest reader (the reading pace is what is tested).
        let before = read_bytes / (16 * 1024);
        read_bytes += line.len() + 1;
        if read_bytes / (16 * 1024) > before {
            thread::sleep(Duration::from_millis(30));
        }
    }
    sender.join().unwrap().unwrap();
    eprintln!(
        "2 MB burst reached a ~500 KB/s reader whole in {:?}",
        start.elapsed()
    );
    s.send_line("end");
    r.expect_exact("MSG s - end");
    // No LEAVE r dropped came before the answer.
    expect_online(&mut s, &["r", "s"]);
}

#[test]
fn rate_bytes_paces_a_sender_by_bytes_without_losing_lines() {
    let _lock = light();
    let server = Server::start(&[
        "--auto-approve",
        "--burst-bytes",
        "10000",
        "--rate-bytes",
        "20000",
    ]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_exact("JOIN b");
    // 50 lines of 1000 bytes: 10 kB at once, then 40 kB at 20 kB/s, about 2 s. The line limits
    // (50 per second, burst 500) would let all of them through at once.
    let pad = filler("", 996);
    let batch: String = (0..50).map(|i| format!("{i:03} {pad}\n")).collect();
    let start = Instant::now();
    a.send_raw(batch.as_bytes());
    for i in 0..50 {
        b.expect_exact(&format!("MSG a - {i:03} {pad}"));
    }
    let took = start.elapsed();
    eprintln!("50 kB at --burst-bytes 10000 --rate-bytes 20000 took {took:?}");
    assert!(
        took >= Duration::from_millis(1200),
        "50 kB arrived in {took:?}: not paced by bytes"
    );
    b.send_line("ping");
    a.expect_exact("MSG b - ping");
}

#[test]
fn rate_zero_turns_byte_pacing_off_too() {
    let _lock = light();
    let server = Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--burst-bytes",
        "10000",
        "--rate-bytes",
        "20000",
    ]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_exact("JOIN b");
    // The same 50 kB as above, which byte pacing would spread over about 2 s.
    let pad = filler("", 996);
    let batch: String = (0..50).map(|i| format!("{i:03} {pad}\n")).collect();
    let start = Instant::now();
    a.send_raw(batch.as_bytes());
    for i in 0..50 {
        b.expect_exact(&format!("MSG a - {i:03} {pad}"));
    }
    let took = start.elapsed();
    eprintln!("50 kB with --rate 0 took {took:?}");
    assert!(
        took < Duration::from_millis(1000),
        "50 kB took {took:?} with --rate 0: still paced by bytes"
    );
}

#[test]
fn burst_bytes_that_do_not_fit_the_queue_refuse_to_start() {
    // A burst that fits starts (this also proves the flags exist): 5000 bytes plus 10 lines of
    // prefix and bookkeeping (80 + 64 each) is 6440 <= 8192. The default 500 lines would not fit.
    let _lock = light();
    let server = Server::start(&[
        "--max-queue",
        "8192",
        "--burst",
        "10",
        "--burst-bytes",
        "5000",
        "--rate-bytes",
        "1000",
    ]);
    drop(server);
    // ...one that does not is refused with a message, before listening. The first case is also
    // refused for its tiny queue alone, so only there the message may be about the queue.
    for (args, about_burst) in [
        (&["--max-queue", "1000", "--burst-bytes", "5000"][..], false),
        (&["--max-queue", "8192", "--burst-bytes", "9000"][..], true),
        (&["--max-queue", "8192", "--burst-bytes", "5000"][..], true),
        (&["--burst-bytes", "2097152"][..], true),
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let (status, out, err) = Server::run_to_exit(&all, TIMEOUT * 2);
        assert!(!status.success(), "{args:?} started: {out}");
        assert!(
            !out.contains("listening on"),
            "{args:?} listened before refusing: {out}"
        );
        assert!(!err.trim().is_empty(), "{args:?}: refused without a word");
        assert!(
            !about_burst || err.to_lowercase().contains("burst"),
            "{args:?}: stderr should say what is wrong with the burst: {err:?}"
        );
    }
}

// ---- the waiting room: per address, cool-down, bans ---------------------------------------------------

#[test]
fn max_pending_per_ip_refuses_the_join_beyond_it_from_that_address_only() {
    let _lock = light();
    let mut server = Server::start(&["--max-pending-per-ip", "2"]);
    let mut p1 = join_from(&mut server, host(2), "p1");
    let _p2 = join_from(&mut server, host(2), "p2");
    let (_p3, reply) = offer_from(&server, host(2), "p3");
    assert!(
        reply.starts_with("ERROR server-full "),
        "third join from 127.0.0.2 got {reply:?}"
    );
    // Another host is not locked out.
    let _q1 = join_from(&mut server, host(3), "q1");
    // Deciding one of 127.0.0.2's joins makes room for another from there.
    server.console("deny p1");
    server.expect_console("denied p1");
    p1.expect("DENIED ");
    p1.expect_closed();
    let _p4 = join_from(&mut server, host(2), "p4");
    let pending = server.pending();
    assert_eq!(pending[0], "pending: 3 waiting", "{pending:?}");
}

#[test]
fn max_pending_per_ip_defaults_to_three() {
    let _lock = light();
    let mut server = Server::start(&[]);
    let _w: Vec<Remote> = (1..=3)
        .map(|i| join_from(&mut server, host(2), &format!("w{i}")))
        .collect();
    let (_w4, reply) = offer_from(&server, host(2), "w4");
    assert!(
        reply.starts_with("ERROR server-full "),
        "fourth join from 127.0.0.2 got {reply:?}"
    );
    let _other = join_from(&mut server, host(3), "w4");
}

#[test]
fn a_denied_name_cools_down_for_the_same_address_only() {
    let _lock = light();
    let mut server = Server::start(&[]);
    let mut bob = join_from(&mut server, host(2), "bob");
    server.console("deny bob");
    server.expect_console("denied bob");
    bob.expect("DENIED ");
    bob.expect_closed();

    // The squatter comes back at once from the same address: the name is not free for it.
    let mut again = Remote::connect(host(2), server.addr());
    again.expect("NAME? ");
    for name in ["bob", "BOB", "Bob"] {
        again.send_line(name);
        again.expect("ERROR name-taken ");
        again.expect("NAME? ");
    }
    // The connection stays usable for another name.
    again.send_line("bob2");
    again.expect("WAIT ");
    server.expect_console("join request: bob2 from 127.0.0.2:");
    // Someone else, elsewhere, may have the name.
    let _other = join_from(&mut server, host(3), "bob");
}

#[test]
fn an_approval_timeout_starts_the_name_cooldown_too() {
    let _lock = light();
    let mut server = Server::start(&["--approval-timeout", "0.5"]);
    let mut tim = join_from(&mut server, host(2), "tim");
    tim.expect("DENIED ");
    tim.expect_closed();
    let (_again, reply) = offer_from(&server, host(2), "tim");
    assert!(
        reply.starts_with("ERROR name-taken "),
        "tim from the same address after the timeout got {reply:?}"
    );
}

#[test]
fn name_cooldown_ends_after_its_time() {
    let _lock = light();
    let mut server = Server::start(&["--name-cooldown", "1"]);
    let mut bob = join_from(&mut server, host(2), "bob");
    let denied_at = Instant::now();
    server.console("deny bob");
    server.expect_console("denied bob");
    bob.expect("DENIED ");
    let mut again = Remote::connect(host(2), server.addr());
    again.expect("NAME? ");
    again.send_line("bob");
    again.expect("ERROR name-taken ");
    again.expect("NAME? ");
    // Offer it again every 100 ms until the cool-down is over (a time-based limit).
    let waited = loop {
        thread::sleep(Duration::from_millis(100));
        again.send_line("bob");
        let reply = again.next_line();
        if reply.starts_with("WAIT ") {
            break denied_at.elapsed();
        }
        assert!(reply.starts_with("ERROR name-taken "), "got {reply:?}");
        again.expect("NAME? ");
        assert!(
            denied_at.elapsed() < Duration::from_secs(10),
            "bob is still refused 10 s after a 1 s cool-down"
        );
    };
    eprintln!("bob was free again {waited:?} after the deny");
    assert!(
        waited >= Duration::from_millis(900),
        "bob was free again after {waited:?}, before the 1 s cool-down"
    );
    server.expect_console("join request: bob from 127.0.0.2:");
}

#[test]
fn ban_cuts_off_an_address_until_unban() {
    let _lock = light();
    let mut server = Server::start(&[]);
    let (mut x, _) = server.join_waiting("x");
    server.console("approve x");
    server.expect_console("approved x (1 online)");
    assert_eq!(x.expect_welcome("x"), 1);
    let mut y = join_from(&mut server, host(2), "y");
    server.console("approve y");
    server.expect_console("approved y (2 online)");
    y.expect_exact("WELCOME y 2");
    x.expect_exact("JOIN y");
    let mut w = join_from(&mut server, host(2), "w");
    let mut v = Remote::connect(host(3), server.addr());
    v.expect("NAME? ");

    server.console("ban 127.0.0.2");
    server.expect_console("banned 127.0.0.2");
    // Its member is kicked, its waiting join denied.
    y.expect("BYE ");
    y.expect_closed();
    x.expect_exact("LEAVE y kicked");
    w.expect("DENIED ");
    w.expect_closed();
    // Its new connections are denied at once and closed.
    let mut n = Remote::connect(host(2), server.addr());
    n.expect("DENIED ");
    n.expect_closed();
    // Other hosts are untouched.
    v.send_line("vee");
    v.expect("WAIT ");
    server.expect_console("join request: vee from 127.0.0.3:");
    x.send_line("/who");
    x.expect_exact("INFO online (1): x");

    let bans = server.console_reply("bans");
    let at = bans
        .iter()
        .position(|l| l == "bans: 1")
        .unwrap_or_else(|| panic!("no `bans: 1` in {bans:?}"));
    assert!(
        bans[at + 1..].iter().any(|l| l.contains("127.0.0.2")),
        "bans does not list 127.0.0.2: {bans:?}"
    );

    server.console("unban 127.0.0.2");
    server.expect_console("unbanned 127.0.0.2");
    let mut back = Remote::connect(host(2), server.addr());
    back.expect("NAME? ");
    back.send_line("back");
    back.expect("WAIT ");
    let bans = server.console_reply("bans");
    assert!(bans.iter().any(|l| l == "bans: 0"), "{bans:?}");

    server.console("ban nonsense");
    server.expect_console("error: ");
}

// ---- the console under churn ---------------------------------------------------------------------------

/// One connect-name-disconnect cycle from `127.0.1.(i % 200 + 1)`: the join is registered (its
/// `WAIT` is read) and withdrawn (the socket is closed).
#[track_caller]
fn churn_once(server: SocketAddr, i: usize) {
    let from = Ipv4Addr::new(127, 0, 1, (i % 200 + 1) as u8);
    let mut c = Remote::connect(from, server);
    c.name = format!("churn{i}");
    c.expect("NAME? ");
    c.send_line(&format!("churn{i}"));
    c.expect("WAIT ");
}

/// Waits until `pending` says `want` (the server has seen every withdrawal).
#[track_caller]
fn await_pending(server: &mut Server, want: &str) {
    let deadline = Instant::now() + TIMEOUT * 2;
    loop {
        let pending = server.pending();
        if pending.first().map(String::as_str) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pending still {pending:?}, want {want:?}"
        );
    }
}

#[test]
fn join_churn_is_coalesced_on_the_console_and_a_real_join_stands_out() {
    let _lock = heavy();
    const CYCLES: usize = 200;
    let mut server = Server::start(&[]);
    let start = Instant::now();
    let first = server.console_history().len();
    for i in 0..CYCLES {
        churn_once(server.addr(), i);
    }
    let churned = start.elapsed();
    // Let the coalescing second pass so the summaries are printed (a time-based limit).
    thread::sleep(Duration::from_millis(1500));
    let (_bob, _) = server.join_waiting("realbob");
    let secs = start.elapsed().as_secs() + 1;
    let lines: Vec<String> = server.console_history()[first..].to_vec();
    let real = lines
        .iter()
        .position(|l| l.starts_with("join request: realbob from "))
        .unwrap();
    let during = &lines[..real];
    let (summaries, single): (Vec<&String>, Vec<&String>) =
        during.iter().partition(|l| l.starts_with("... "));
    eprintln!(
        "{CYCLES} churn cycles in {churned:?}: {} single console lines and {} summaries in \
         {secs} s; summaries: {summaries:#?}",
        single.len(),
        summaries.len()
    );
    // About 10 a second: 12 per started second, plus one second's worth.
    let bound = 12 * secs as usize + 12;
    assert!(
        single.len() <= bound,
        "{} console lines for {CYCLES} churned joins in {secs} s (bound {bound}); first ones: \
         {:#?}",
        single.len(),
        &single[..single.len().min(20)]
    );
    // The summaries give counts that account at least for the join requests not shown singly.
    let shown = single
        .iter()
        .filter(|l| l.starts_with("join request: "))
        .count();
    let counted: usize = summaries
        .iter()
        .flat_map(|l| l.split(|c: char| !c.is_ascii_digit()))
        .filter_map(|w| w.parse::<usize>().ok())
        .sum();
    assert!(
        shown + counted >= CYCLES,
        "{shown} join requests shown and {counted} counted in summaries, of {CYCLES}: \
         {summaries:?}"
    );
    // `pending` still lists every waiting join: only the real one is left.
    let pending = server.pending();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert_eq!(pending[0], "pending: 1 waiting");
    assert!(
        pending[1].starts_with("  realbob from 127.0.0.1:"),
        "{pending:?}"
    );
}

#[test]
fn join_churn_leaves_no_memory_behind() {
    // Timers of gone connections must not stay: after a warm-up, 4,000 more churned joins may
    // grow the server by at most 192 KiB (under 50 bytes a join; keeping the login and approval
    // timers of each costs about 96 bytes a join, some 380 KiB here).
    let _lock = heavy();
    const WARM: usize = 200;
    const MORE: usize = 4000;
    let mut server = Server::start(&[]);
    for i in 0..WARM {
        churn_once(server.addr(), i);
    }
    await_pending(&mut server, "pending: 0 waiting");
    let warm = rss_kib(server.pid());
    let start = Instant::now();
    for i in WARM..WARM + MORE {
        churn_once(server.addr(), i);
    }
    await_pending(&mut server, "pending: 0 waiting");
    let after = rss_kib(server.pid());
    let growth = after.saturating_sub(warm);
    eprintln!(
        "{MORE} churned joins in {:?}: RSS after {WARM} {warm} KiB, after {} {after} KiB \
         (+{growth} KiB)",
        start.elapsed(),
        WARM + MORE
    );
    assert!(
        growth <= 192,
        "RSS grew by {growth} KiB over {MORE} churned joins (bound 192 KiB)"
    );
}

// ---- memory per member -----------------------------------------------------------------------------

/// Members that are parked on input in [`parked_members`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parking {
    /// A 4095-byte partial line, trickled in pieces of 512 bytes (the server reads each piece
    /// on its own, so its input buffer grows step by step).
    Trickled,
    /// 16 complete lines of about 1 KB (unknown commands, so nothing fans out), then a 4095-byte
    /// partial line, all at once, from a member paced to one line a second: the server may not
    /// hold the waiting lines; the kernel can.
    Paced,
}

/// Logs in 400 members on an auto-approving server started with `args`, parks each on input as
/// `how` says, and checks the memory per member, measured as RSS differences of the debug build:
/// idle at most 2 KiB (the contract says about 1 KiB plus the name; the rest is allocator
/// rounding), parking at most 4096 + 1024 bytes more, and both together at most
/// 4096 + 1024 + 1024 bytes; each with 128 KiB of slack for the whole group.
fn parked_members(args: &[&str], how: Parking) {
    const MEMBERS: u64 = 400;
    const SLACK: u64 = 128 * 1024;
    let mut all = vec!["--auto-approve"];
    all.extend_from_slice(args);
    let server = Server::start(&all);
    let mut ctl = server.login("ctl");
    // `/sync` is an unknown command: its error answers after everything sent before it.
    let sync = |ctl: &mut Client| {
        ctl.send_line("/sync");
        ctl.skip_until("ERROR unknown-command ");
    };
    sync(&mut ctl);
    let empty = rss_bytes(&server);
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        members.push(server.login(&format!("p{i:03}")));
    }
    sync(&mut ctl);
    // Output queues keep spare storage for a second after draining (a time-based limit).
    thread::sleep(Duration::from_millis(1500));
    let idle = rss_bytes(&server);
    let partial = filler("parked", 4095);
    match how {
        Parking::Trickled => {
            for piece in partial.as_bytes().chunks(512) {
                for m in members.iter_mut() {
                    m.send_raw(piece);
                }
                // Each piece is in the server's socket buffers before ctl's request; the server
                // reads them before (or with) it.
                sync(&mut ctl);
            }
        }
        Parking::Paced => {
            let lines: String = (0..16)
                .map(|i| format!("/z{i} {}\n", filler("", 1000)))
                .collect();
            for m in members.iter_mut() {
                m.send_raw(format!("{lines}{partial}").as_bytes());
            }
            sync(&mut ctl);
        }
    }
    let parked = rss_bytes(&server);
    let per_idle = idle.saturating_sub(empty) / MEMBERS;
    let per_parked = parked.saturating_sub(idle) / MEMBERS;
    let per_all = parked.saturating_sub(empty) / MEMBERS;
    eprintln!(
        "{how:?}: RSS empty {} KiB, {MEMBERS} idle {} KiB, parked {} KiB: {per_idle} B idle, \
         +{per_parked} B parked, {per_all} B in all per member",
        empty / 1024,
        idle / 1024,
        parked / 1024
    );
    assert!(
        idle.saturating_sub(empty) <= MEMBERS * 2048 + SLACK,
        "an idle member costs {per_idle} bytes (bound 2048)"
    );
    assert!(
        parked.saturating_sub(idle) <= MEMBERS * (4096 + 1024) + SLACK,
        "{how:?}: parking costs {per_parked} bytes a member (bound 5120)"
    );
    assert!(
        parked.saturating_sub(empty) <= MEMBERS * (4096 + 1024 + 1024) + SLACK,
        "{how:?}: a parked member costs {per_all} bytes in all (bound 6144)"
    );
    if how == Parking::Trickled {
        // They are all still members, and finishing the line sends it.
        members[0].send_raw(b"\n");
        ctl.expect_exact(&format!("MSG p000 - {partial}"));
    }
}

#[test]
fn idle_and_trickled_parked_members_cost_bounded_memory() {
    let _lock = heavy();
    parked_members(&[], Parking::Trickled);
}

#[test]
fn paced_members_hold_no_more_than_a_partial_line_of_input() {
    let _lock = heavy();
    parked_members(&["--rate", "1", "--burst", "1"], Parking::Paced);
}

// ---- half-close, separators ------------------------------------------------------------------------

#[test]
fn half_closed_peers_get_every_reply_before_the_close() {
    let _lock = light();
    let server = Server::start(&["--auto-approve"]);
    // What /help says, from a member who reads normally (a /who after it marks the end).
    let mut reference = server.login("reference");
    reference.send_line("/help");
    reference.send_line("/who");
    let mut help = Vec::new();
    loop {
        let line = reference.expect("INFO ");
        if line.starts_with("INFO online (") {
            break;
        }
        help.push(line);
    }
    reference.send_line("/leave");
    reference.expect("BYE ");
    reference.expect_eof();

    for trial in 0..20 {
        let mut c = server.connect();
        c.name = format!("trial {trial}");
        c.send_raw(b"alice\n/help\n");
        c.shutdown_write();
        c.expect("NAME? ");
        c.expect_exact("WELCOME alice 1");
        for line in &help {
            c.expect_exact(line);
        }
        match c.try_next_line(TIMEOUT) {
            Err(End::Eof) => {}
            other => panic!("trial {trial}: expected the close after /help, got {other:?}"),
        }
    }
}

#[test]
fn line_and_paragraph_separators_are_removed() {
    let _lock = light();
    let server = Server::start(&["--auto-approve"]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_exact("JOIN b");
    a.send_line("one\u{2028}two\u{2029}three");
    b.expect_exact("MSG a - onetwothree");
    a.send_line("/color red r\u{2028}ed");
    b.expect_exact("MSG a red red");
    a.send_line("/me wa\u{2029}ves");
    b.expect_exact("ACT a waves");
    a.send_line("/private b p\u{2028}s\u{2029}st");
    b.expect_exact("PRIV a b - psst");
    // A line of separators only is blank after removal: nothing is sent.
    a.send_line("\u{2028}\u{2029}");
    a.send_line("marker");
    b.expect_exact("MSG a - marker");
    let mut c = server.connect_prompted();
    c.send_line("li\u{2028}ne");
    c.expect("ERROR bad-name ");
}
