//! Fault and abuse tests of the real `chat-server` binary over real sockets (issue 7, "Faults
//! and abuse"): slowloris, peers that vanish or reset (mid-line, mid-write), accept storms and
//! connect bursts, running out of descriptors, per-address and waiting-room limits under a
//! flood, SIGPIPE, a log file on a full disk, privacy and terminal-escape injection under load,
//! stalled console and log pipes, and ten thousand members on one server.
//!
//! Besides its own assertions, each fault test checks that healthy members keep receiving
//! everything in order (a background sender and receivers, `chat_testkit::Healthy`), that the
//! server's memory stays bounded (VmRSS/VmHWM from /proc) and that no descriptor leaks (the
//! count of /proc/PID/fd comes back to its baseline, polled with a deadline). Heavy tests take
//! a lock so they never overlap another test's timing on a small machine. Figures are printed
//! (`--nocapture`) and recorded in docs/RELIABILITY.md. Two tests here first failed and
//! pinned down server bugs, since fixed: the listen backlog of 128 and a stalled stderr blocking
//! the reactor.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chat_common::sanitize::is_forbidden;
use chat_testkit::{
    collect_leaves, expect_alive, expect_fds_back, fd_baseline, fd_count, fd_list, heavy,
    ignores_sigpipe, light, listen_backlog, peak_rss_kib, require_nofile, rss_kib, skip_to,
    Failures, Healthy, Peer,
};
use chat_testkit::{filler, Client, Console, End, Server, TIMEOUT};

/// How long the server may take to notice closes and free descriptors.
const SETTLE: Duration = Duration::from_secs(10);

/// Memory a fault may add to the server's peak, in KiB: "tens of MiB whatever peers send".
const FAULT_RSS_BUDGET_KIB: u64 = 24 * 1024;

/// Reads the first line of a raw socket (or how the read ended), waiting at most `within`.
fn first_line(stream: &TcpStream, within: Duration) -> Result<String, End> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if let Some(pos) = got.iter().position(|&b| b == b'\n') {
            got.truncate(pos);
            return Ok(String::from_utf8_lossy(&got).into_owned());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(End::Timeout);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match (&*stream).read(&mut buf) {
            Ok(0) => return Err(End::Eof),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(End::Error(e.kind())),
        }
    }
}

/// Asserts the server's peak memory grew by less than `budget_kib` since `before_kib`.
#[track_caller]
fn expect_memory_bounded(server: &Server, what: &str, before_kib: u64, budget_kib: u64) {
    let peak = peak_rss_kib(server.pid());
    let now = rss_kib(server.pid());
    eprintln!("{what}: RSS before {before_kib} KiB, peak {peak} KiB, now {now} KiB");
    assert!(
        peak.saturating_sub(before_kib) < budget_kib,
        "{what}: peak RSS {peak} KiB grew more than {budget_kib} KiB over {before_kib} KiB"
    );
}

// ---- slowloris -----------------------------------------------------------------------------------

#[test]
fn slowloris_connections_are_closed_at_the_login_timeout() {
    let _lock = light();
    const LORIS: usize = 200;
    let server = Server::start(&["--auto-approve", "--login-timeout", "1"]);
    let pid = server.pid();
    let healthy = Healthy::start(&server, "h", 2);
    let baseline = fd_count(pid);
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    let mut loris: Vec<Client> = (0..LORIS).map(|_| server.connect()).collect();
    let mut namer = server.connect();
    // A thread trickles one byte every 100 ms into every connection (never a newline), and the
    // name `alice` one byte every 300 ms into `namer`, so its newline comes 1.8 s in: past the
    // timeout. It keeps going after the server said BYE: the server must cut them anyway.
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<TcpStream> = loris
        .iter()
        .map(|c| c.stream().try_clone().unwrap())
        .collect();
    let name_stream = namer.stream().try_clone().unwrap();
    let stop2 = Arc::clone(&stop);
    let trickler = thread::spawn(move || {
        let name = b"alice\n";
        let mut tick = 0usize;
        while !stop2.load(Ordering::Relaxed) {
            for mut s in &streams {
                // Errors are expected once the server has cut the connection.
                let _ = s.write(b"x");
            }
            if tick % 3 == 0 {
                if let Some(byte) = name.get(tick / 3) {
                    let _ = (&name_stream).write(std::slice::from_ref(byte));
                }
            }
            tick += 1;
            thread::sleep(Duration::from_millis(100));
        }
    });

    // Every connection gets the prompt at once, BYE at the timeout (not before), then the close.
    for c in loris.iter_mut() {
        c.expect("NAME? ");
    }
    namer.expect("NAME? ");
    loris[0].expect_exact("BYE no name given in time");
    let first_bye = started.elapsed();
    for c in loris.iter_mut().skip(1) {
        c.expect_exact("BYE no name given in time");
    }
    namer.expect_exact("BYE no name given in time");
    let last_bye = started.elapsed();
    for c in loris.iter_mut() {
        c.expect_closed();
    }
    namer.expect_closed();
    eprintln!("slowloris: {LORIS} + 1 trickling connections got BYE between {first_bye:?} and {last_bye:?}");
    assert!(
        first_bye >= Duration::from_millis(900),
        "BYE came before the 1 s login timeout: {first_bye:?}"
    );
    assert!(
        last_bye < Duration::from_secs(5),
        "the last BYE came {last_bye:?} after connecting (timeout 1 s)"
    );

    // The peers still trickle and never close: the server must cut them itself (after its
    // close linger), so its descriptors return to the baseline while ours are still open.
    expect_fds_back(&server, baseline, SETTLE);
    stop.store(true, Ordering::Relaxed);
    trickler.join().unwrap();
    drop(loris);
    drop(namer);

    // The trickled name was never taken.
    let mut alice = server.login("alice");
    alice.send_line("/who");
    let who = skip_to(&mut alice, "INFO online (", TIMEOUT);
    assert!(who.starts_with("INFO online (4): "), "{who}");
    drop(alice);
    expect_fds_back(&server, baseline, SETTLE);
    let report = healthy.finish();
    assert!(!report.any_saw_prefix("LEAVE h"), "{report:?}");
    expect_memory_bounded(&server, "slowloris", rss_before, FAULT_RSS_BUDGET_KIB);
    eprintln!(
        "slowloris: healthy members got all {} messages in order",
        report.sent
    );
}

// ---- vanishing and resetting peers -----------------------------------------------------------------

#[test]
fn vanished_reset_and_half_closed_peers_leave_as_quit_without_leaks() {
    let _lock = light();
    let server = Server::start(&["--auto-approve", "--rate", "0", "--max-queue", "16777216"]);
    let pid = server.pid();
    let healthy = Healthy::start(&server, "h", 2);
    let mut obs = server.login("obs");
    let mut flooder = server.login("flooder");
    let baseline = fd_count(pid);
    let rss_before = rss_kib(pid);
    let mut gone = Vec::new();

    // Connect and vanish before giving a name: plain close, close after reading the prompt, and
    // reset. They were never members, so nobody hears of them.
    for i in 0..60 {
        match i % 3 {
            0 => drop(server.connect()),
            1 => drop(server.connect_prompted()),
            _ => Peer::connect(server.addr(), None).reset(),
        }
    }

    // Mid-write: a member with a small receive buffer stops reading while 2 MB is sent to the
    // room, then closes (with unread data, so the kernel resets) or resets outright. One at a
    // time, so each LEAVE is the next one obs sees.
    for (name, reset) in [("vbulk", false), ("vbulkrst", true)] {
        let mut victim = Peer::connect(server.addr(), Some(4096));
        victim.login(name);
        skip_to(&mut obs, &format!("JOIN {name}"), TIMEOUT);
        let line = filler("bulk", 4000);
        for _ in 0..500 {
            flooder.send_line(&line);
        }
        // When obs has them all, the server has queued them all for the victim too.
        let want = format!("MSG flooder - {line}");
        let mut got = 0;
        while got < 500 {
            if obs.next_line() == want {
                got += 1;
            }
        }
        if reset {
            victim.reset();
        } else {
            drop(victim);
        }
        let leave = skip_to(&mut obs, &format!("LEAVE {name} "), SETTLE);
        assert_eq!(leave, format!("LEAVE {name} quit"));
        gone.push(name);
    }

    // A member that closes (FIN) with nothing unread.
    let mut fin = server.login("vfin");
    fin.send_line("/who");
    skip_to(&mut fin, "INFO ", TIMEOUT);
    drop(fin);

    // A member that resets (SO_LINGER 0).
    let mut rst = Peer::connect(server.addr(), None);
    rst.login("vrst");
    rst.reset();

    // A member that vanishes mid-line: half a line, then close. The half line is never a message.
    let mut half = server.login("vhalf");
    half.send_raw(b"half a li");
    drop(half);

    // A member that half-closes (shuts its write side) and keeps reading: the server treats the
    // end of its input as leaving and closes.
    let mut shut = server.login("vshut");
    shut.shutdown_write();
    shut.expect_closed();

    // Each departure is announced as quit (in the order the server noticed them), and nothing
    // of the half line leaked.
    let at_once = ["vfin", "vrst", "vhalf", "vshut"];
    let (leaves, skipped) = collect_leaves(&mut obs, &at_once, SETTLE);
    for (name, line) in at_once.iter().zip(&leaves) {
        assert_eq!(*line, format!("LEAVE {name} quit"));
    }
    assert!(
        !skipped.iter().any(|l| l.starts_with("MSG vhalf ")),
        "the half line was delivered: {skipped:?}"
    );
    gone.extend(at_once);
    obs.send_line("/who");
    let who = skip_to(&mut obs, "INFO online (", TIMEOUT);
    assert!(who.starts_with("INFO online (5): "), "{who}");

    drop(flooder);
    skip_to(&mut obs, "LEAVE flooder quit", TIMEOUT);
    expect_fds_back(&server, baseline - 1, SETTLE);
    drop(obs);
    let report = healthy.finish();
    for name in &gone {
        assert!(
            report.all_saw(&format!("LEAVE {name} quit")),
            "not every healthy member saw {name} quit: {report:?}"
        );
    }
    expect_alive(&server);
    expect_memory_bounded(&server, "vanishing peers", rss_before, FAULT_RSS_BUDGET_KIB);
    eprintln!(
        "vanishing peers: 60 nameless + {} members gone, all `quit`; healthy got {} in order",
        gone.len(),
        report.sent
    );
}

// ---- accept storm ----------------------------------------------------------------------------------

#[test]
fn accept_storm_of_thousands_is_served_and_released() {
    let _lock = heavy();
    const THREADS: usize = 4;
    const PER_THREAD: usize = 750;
    const STORM: usize = THREADS * PER_THREAD;
    if !require_nofile(STORM as u64 + 256, "accept_storm") {
        return;
    }
    let server = Server::start(&["--auto-approve"]);
    let pid = server.pid();
    let healthy = Healthy::start(&server, "h", 2);
    let baseline = fd_count(pid);
    let rss_before = rss_kib(pid);
    let addr = server.addr();

    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(20)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut streams = Vec::new();
    let mut failed = Vec::new();
    for h in handles {
        for r in h.join().unwrap() {
            match r {
                Ok(s) => streams.push(s),
                Err(e) => failed.push(e.to_string()),
            }
        }
    }
    let connected_after = started.elapsed();
    assert!(
        failed.is_empty(),
        "{} of {STORM} connects failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    // Every connection the server kept (all: --max-clients is 10000) is answered.
    let mut prompted = 0;
    for s in &streams {
        match first_line(s, Duration::from_secs(20)) {
            Ok(line) if line.starts_with("NAME? ") => prompted += 1,
            other => panic!("connection {prompted} of the storm got {other:?}"),
        }
    }
    let answered_after = started.elapsed();
    assert_eq!(
        fd_count(pid),
        baseline + STORM,
        "one descriptor per connection"
    );
    let peak = peak_rss_kib(pid);
    drop(streams);
    expect_fds_back(&server, baseline, SETTLE);
    let released_after = started.elapsed();
    let report = healthy.finish();
    expect_alive(&server);
    eprintln!(
        "accept storm: {STORM} connects in {connected_after:?}, all {prompted} prompted by \
         {answered_after:?}, released by {released_after:?}; RSS {rss_before} -> peak {peak} KiB; \
         healthy got {} in order",
        report.sent
    );
    expect_memory_bounded(&server, "accept storm", rss_before, FAULT_RSS_BUDGET_KIB);
}

// Regression test. The listener used to be bound with std's `TcpListener::bind`, whose listen
// backlog is 128: a burst of more connects than that overflowed the accept queue although the
// reactor accepted quickly (the kernel dropped the excess SYNs, the client retried after 1 s,
// then 3 s, 7 s..., and under SYN cookies some connections the client thought open were reset).
// Measured then: 3000 connects from 4 threads took 10 s, and waves of 400 connects in the
// ten-thousand test got resets. Fixed by binding through socket2 with a backlog of 1024
// (`LISTEN_BACKLOG` in server/src/main.rs).
#[test]
fn a_burst_of_a_thousand_connects_is_accepted_without_retries() {
    let _lock = heavy();
    const THREADS: usize = 8;
    const PER_THREAD: usize = 125;
    if !require_nofile((THREADS * PER_THREAD) as u64 + 256, "connect burst") {
        return;
    }
    let server = Server::start(&["--auto-approve"]);
    let addr = server.addr();
    let go = Arc::new(std::sync::Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let go = Arc::clone(&go);
            thread::spawn(move || {
                go.wait();
                (0..PER_THREAD)
                    .map(|_| {
                        let t = Instant::now();
                        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(20));
                        (s, t.elapsed())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut streams = Vec::new();
    for h in handles {
        for (s, took) in h.join().unwrap() {
            slowest = slowest.max(took);
            streams.push(s.unwrap_or_else(|e| panic!("a connect of the burst failed: {e}")));
        }
    }
    for (i, s) in streams.iter().enumerate() {
        match first_line(s, TIMEOUT) {
            Ok(l) if l.starts_with("NAME? ") => {}
            other => panic!("connection {i} of the burst got {other:?}"),
        }
    }
    eprintln!(
        "connect burst: {} connects, slowest {slowest:?}, listen backlog {:?}",
        streams.len(),
        listen_backlog(addr.port())
    );
    // A dropped SYN is retried after one second: anything near that is a retry.
    assert!(
        slowest < Duration::from_millis(900),
        "a connect took {slowest:?}: the listen backlog overflowed"
    );
}

// ---- running out of descriptors ----------------------------------------------------------------

#[test]
fn out_of_descriptors_refuses_the_excess_without_spinning_and_recovers() {
    let _lock = light();
    const OPEN: usize = 100;
    let server = Server::spawn_wrapped(
        &["prlimit", "--nofile=64:64"],
        &[
            "--listen",
            "127.0.0.1:0",
            "--auto-approve",
            "--max-clients",
            "1000",
        ],
        Console::Piped,
    );
    let pid = server.pid();
    let healthy = Healthy::start(&server, "h", 2);
    let baseline = fd_count(pid);
    let rss_before = rss_kib(pid);

    // Descriptors inherited above the limit (a test harness's pipes) do not take a slot.
    let below_limit = fd_list(pid)
        .iter()
        .filter(|e| e.split(':').next().and_then(|n| n.parse::<usize>().ok()) < Some(64))
        .count();
    let free = 64 - below_limit;

    let mut clients: Vec<Client> = (0..OPEN).map(|_| server.connect()).collect();
    let (mut kept, mut refused, mut cut) = (Vec::new(), 0, 0);
    for (i, mut c) in clients.drain(..).enumerate() {
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("NAME? ") => kept.push(c),
            Ok(l) if l.starts_with("ERROR server-full ") => {
                c.expect_closed();
                refused += 1;
            }
            Err(End::Eof | End::Error(_)) => cut += 1,
            other => panic!("connection {i} got {other:?}"),
        }
    }
    eprintln!(
        "descriptors: limit 64, {baseline} in use before; of {OPEN} connections {} kept, \
         {refused} refused with server-full, {cut} closed",
        kept.len()
    );
    assert!(kept.len() <= free, "{} kept with {free} free", kept.len());
    assert_eq!(kept.len() + refused + cut, OPEN);
    assert!(refused > 0, "nobody got ERROR server-full");

    // While every descriptor is taken and further connections keep arriving, the server must
    // idle: the measurement window itself is the one second of wall time.
    let cpu_before = server.cpu_time();
    let window = Instant::now();
    let mut late: Vec<Client> = (0..10).map(|_| server.connect()).collect();
    for c in &mut late {
        match c.try_next_line(TIMEOUT) {
            Ok(l) => assert!(l.starts_with("ERROR server-full "), "{l}"),
            Err(End::Eof | End::Error(_)) => {}
            Err(End::Timeout) => panic!("a connection past the limit was left waiting"),
        }
    }
    thread::sleep(Duration::from_secs(1).saturating_sub(window.elapsed()));
    let used = server.cpu_time() - cpu_before;
    eprintln!("descriptors: server CPU over 1 s at the limit: {used:?}");
    assert!(
        used < Duration::from_millis(500),
        "the server used {used:?} of CPU in 1 s while out of descriptors"
    );

    // Freeing descriptors serves new connections again.
    drop(kept);
    drop(late);
    expect_fds_back(&server, baseline, SETTLE);
    let mut again = server.login("again");
    again.send_line("/who");
    let who = skip_to(&mut again, "INFO online (", TIMEOUT);
    assert!(who.starts_with("INFO online (4): "), "{who}");
    drop(again);
    expect_fds_back(&server, baseline, SETTLE);
    let report = healthy.finish();
    expect_memory_bounded(&server, "descriptors", rss_before, FAULT_RSS_BUDGET_KIB);
    eprintln!("descriptors: healthy got {} in order", report.sent);
}

// ---- per-address limit ----------------------------------------------------------------------------

#[test]
fn max_per_ip_refuses_the_fourth_and_admits_again_after_a_close() {
    let _lock = light();
    let server = Server::start(&["--auto-approve", "--max-per-ip", "3"]);
    let pid = server.pid();
    // Two healthy members and `third` are the three connections 127.0.0.1 may hold.
    let healthy = Healthy::start(&server, "h", 1);
    let baseline = fd_count(pid);
    let third = server.login("third");
    let mut fourth = server.connect();
    fourth.expect("ERROR server-full ");
    fourth.expect_closed();
    drop(fourth);
    drop(third);
    // Until the server has seen `third` close, a new connection may still be refused.
    let deadline = Instant::now() + TIMEOUT;
    let mut refusals = 0;
    let mut again = loop {
        let mut c = server.connect();
        match c.try_next_line(TIMEOUT) {
            Ok(l) if l.starts_with("NAME? ") => break c,
            Ok(l) if l.starts_with("ERROR server-full ") => refusals += 1,
            other => panic!("got {other:?}"),
        }
        assert!(Instant::now() < deadline, "never admitted after a close");
        thread::sleep(Duration::from_millis(20));
    };
    again.send_line("again");
    again.expect_welcome("again");
    let mut fifth = server.connect();
    fifth.expect("ERROR server-full ");
    drop(fifth);
    drop(again);
    expect_fds_back(&server, baseline, SETTLE);
    let report = healthy.finish();
    assert!(report.all_saw("LEAVE third quit"), "{report:?}");
    eprintln!(
        "max-per-ip 3: 4th refused, admitted again after a close ({refusals} retries); healthy got {} in order",
        report.sent
    );
}

// ---- waiting-room flood ---------------------------------------------------------------------------

#[test]
fn waiting_room_flood_keeps_max_pending_and_the_operator_can_still_approve() {
    let _lock = light();
    const FLOOD: usize = 20;
    // Every join comes from 127.0.0.1: lift the per-address share (3 by default) so that this
    // tests the waiting room's total, --max-pending.
    let mut server = Server::start(&["--max-pending", "5", "--max-pending-per-ip", "100"]);
    let pid = server.pid();
    // Healthy members, approved by the operator one by one.
    let mut members = Vec::new();
    for i in 0..3 {
        let name = format!("h{i}");
        let (mut c, _) = server.join_waiting(&name);
        server.console(&format!("approve {name}"));
        server.expect_console(&format!("approved {name} "));
        c.expect_welcome(&name);
        members.push(c);
    }
    let healthy = Healthy::run(members);
    let baseline = fd_count(pid);
    let rss_before = rss_kib(pid);

    let mut joins: Vec<Client> = (0..FLOOD).map(|_| server.connect_prompted()).collect();
    for (i, c) in joins.iter_mut().enumerate() {
        c.send_line(&format!("w{i:02}"));
    }
    let mut waiting = Vec::new();
    let mut full = 0;
    for (i, mut c) in joins.into_iter().enumerate() {
        let line = c.next_line();
        if line.starts_with("WAIT ") {
            c.name = format!("w{i:02}");
            waiting.push(c);
        } else {
            assert!(
                line.starts_with("ERROR server-full "),
                "w{i:02} got {line:?}"
            );
            c.expect_closed();
            full += 1;
        }
    }
    assert_eq!((waiting.len(), full), (5, FLOOD - 5));
    let pending = server.pending();
    assert_eq!(pending[0], "pending: 5 waiting", "{pending:?}");
    assert_eq!(pending.len(), 6, "{pending:?}");
    // The operator was told of the five only.
    let announced = server
        .console_history()
        .iter()
        .filter(|l| l.starts_with("join request: w"))
        .count();
    assert_eq!(announced, 5, "{:#?}", server.console_history());

    // The operator still approves; the freed slot takes a new join; the rest are denied.
    let mut first = waiting.remove(0);
    let name = first.name.clone();
    server.console(&format!("approve {name}"));
    server.expect_console(&format!("approved {name} (4 online)"));
    first.expect_welcome(&name);
    let (mut late, _) = server.join_waiting("late");
    for c in waiting.iter_mut().chain(std::iter::once(&mut late)) {
        server.console(&format!("deny {}", c.name));
        c.expect("DENIED ");
        c.expect_closed();
    }
    server.expect_console("denied late");
    drop(waiting);
    drop(late);
    drop(first);
    expect_fds_back(&server, baseline, SETTLE);
    let report = healthy.finish();
    assert!(report.all_saw(&format!("JOIN {name}")), "{report:?}");
    expect_memory_bounded(&server, "waiting room", rss_before, FAULT_RSS_BUDGET_KIB);
    eprintln!(
        "waiting room: {FLOOD} joins, 5 waited, {full} server-full; healthy got {} in order",
        report.sent
    );
}

// ---- SIGPIPE ---------------------------------------------------------------------------------------

#[test]
fn resets_while_the_server_writes_a_large_queue_do_not_kill_it() {
    let _lock = heavy();
    const ROUNDS: usize = 3;
    // Debug logs name each connection's read or write error, to see which path each reset took.
    let server = Server::start(&[
        "--auto-approve",
        "--rate",
        "0",
        "--max-queue",
        "33554432",
        "--log-level",
        "debug",
    ]);
    let pid = server.pid();
    assert!(ignores_sigpipe(pid), "the server must ignore SIGPIPE");
    let healthy = Healthy::start(&server, "h", 2);
    let mut obs = server.login("obs");
    let flooder = server.login("flooder");
    let baseline = fd_count(pid);
    let rss_before = rss_kib(pid);

    // The flood goes on during the resets, so the server keeps writing to each victim (its
    // queue is never empty) when the reset arrives. The flooder writes as fast as the server
    // reads; it reads nothing itself (it only gets a few JOIN/LEAVE lines).
    // Between a reset and the next round the flood pauses, so that `obs`, which must read its
    // way through everything queued before the LEAVE, is not outrun by it on a busy machine.
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let (stop2, paused2, flooded2) = (Arc::clone(&stop), Arc::clone(&paused), Arc::clone(&flooded));
    let flood = thread::spawn(move || {
        let mut flooder = flooder;
        let line = format!("{}\n", filler("flood", 2000)).repeat(8);
        while !stop2.load(Ordering::Relaxed) {
            if paused2.load(Ordering::Relaxed) {
                // Idle until the next round; nothing waits on this thread meanwhile.
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            flooder.send_raw(line.as_bytes());
            flooded2.fetch_add(8, Ordering::Relaxed);
        }
        flooder
    });
    let mut queued_kib = 0;
    for round in 0..ROUNDS {
        let name = format!("victim{round}");
        let mut victim = Peer::connect(server.addr(), Some(4096));
        victim.login(&name);
        paused.store(false, Ordering::Relaxed);
        skip_to(&mut obs, &format!("JOIN {name}"), TIMEOUT);
        // 4000 lines of 2 KB after the JOIN, 8 MB: the victim reads none, and the kernel holds
        // at most its small receive buffer plus the server's send buffer (4 MB at most here),
        // so megabytes wait for it in the server when it resets.
        let mut seen = 0;
        while seen < 4000 {
            if obs.next_line().starts_with("MSG flooder ") {
                seen += 1;
            }
        }
        if round == 0 {
            queued_kib = peak_rss_kib(pid).saturating_sub(rss_before);
        }
        victim.reset();
        paused.store(true, Ordering::Relaxed);
        let line = skip_to(&mut obs, &format!("LEAVE {name} "), SETTLE);
        assert_eq!(line, format!("LEAVE {name} quit"));
        expect_alive(&server);
    }
    assert!(
        queued_kib >= 2048,
        "the server's memory grew by {queued_kib} KiB only: the victim's queue was not large"
    );
    stop.store(true, Ordering::Relaxed);
    let flooder = flood.join().unwrap();
    drop(flooder);
    skip_to(&mut obs, "LEAVE flooder quit", TIMEOUT);
    drop(obs);
    expect_fds_back(&server, baseline - 2, SETTLE);
    let report = healthy.finish();
    expect_alive(&server);
    assert!(
        !server.stderr_text().contains("panicked"),
        "{}",
        server.stderr_text()
    );
    // Which path noticed each reset (printed, not asserted: it is a race): the read, or a
    // write into the large queue. On Linux the first write after a reset fails with
    // ECONNRESET, only a later one with EPIPE (and SIGPIPE); the server stops at the first.
    let log = server.stderr_text();
    eprintln!(
        "SIGPIPE: resets met by a write {}, by a read {} (members and flooder)",
        log.matches("write error on #").count(),
        log.matches("read error on #").count()
    );
    // A SIGPIPE itself (as an EPIPE write would raise) is ignored, not fatal.
    server.signal("PIPE");
    let mut after = server.login("after");
    after.send_line("/who");
    skip_to(&mut after, "INFO online (", TIMEOUT);
    expect_alive(&server);
    drop(after);
    eprintln!(
        "SIGPIPE: {ROUNDS} members reset with a large queue ({queued_kib} KiB the first time) \
         during a flood of {} lines; server up; healthy got {} in order",
        flooded.load(Ordering::Relaxed),
        report.sent
    );
    expect_memory_bounded(&server, "resets under flood", rss_before, 48 * 1024);
}

// ---- full disk ---------------------------------------------------------------------------------------

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

// ---- privacy under load ------------------------------------------------------------------------------

#[test]
fn private_messages_reach_exactly_their_recipient_under_load() {
    let _lock = heavy();
    const MEMBERS: usize = 50;
    const ROUNDS: usize = 120;
    let server = Server::start(&["--auto-approve", "--rate", "0"]);
    let pid = server.pid();
    let rss_before = rss_kib(pid);
    let baseline = fd_baseline(&server);
    // Names in mixed case; the same name in another case cannot join while the first is there.
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("Pm{i:02}")).collect();
    let mut clients: Vec<Client> = names.iter().map(|n| server.login(n)).collect();
    let mut bob = server.login("Bob");
    let mut other = server.connect_prompted();
    for taken in ["bob", "BOB", "pm07", "PM49"] {
        other.send_line(taken);
        other.expect("ERROR name-taken ");
        other.expect("NAME? ");
    }
    drop(other);
    // Whoever joined later, every member has read everything so far.
    bob.send_line("/leave");
    bob.skip_until("BYE ");
    drop(bob);
    for c in clients.iter_mut() {
        c.skip_until("LEAVE Bob left");
    }

    // Member i sends, in round r, a private message to member (i + 1 + r) % 50 (addressed in
    // another case every other time) and every 4th round a room message; then `done`.
    let target = |i: usize, r: usize| (i + 1 + r % (MEMBERS - 1)) % MEMBERS;
    let failures = Failures::default();
    let mut handles = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let names = names.clone();
        let failures = failures.clone();
        let writer = c.stream().try_clone().unwrap();
        let send_names = names.clone();
        // The writer runs alongside the reader so private and room traffic interleave.
        handles.push(thread::spawn(move || {
            let mut w = writer;
            for r in 0..ROUNDS {
                let to = &send_names[target(i, r)];
                let addressed = if r % 2 == 0 {
                    to.to_ascii_uppercase()
                } else {
                    to.to_ascii_lowercase()
                };
                let mut out = format!("/private {addressed} p {i} {r}\n");
                if r % 4 == 0 {
                    out.push_str(&format!("room {i} {r}\n"));
                }
                w.write_all(out.as_bytes()).unwrap();
            }
            w.write_all(format!("done {i}\n").as_bytes()).unwrap();
        }));
        handles.push(thread::spawn(move || {
            let mut c = c;
            let me = names[i].clone();
            let mut privs = vec![0usize; MEMBERS];
            let mut rooms = vec![0usize; MEMBERS];
            let mut done = 0;
            while done < MEMBERS - 1 {
                let line = match c.try_next_line(Duration::from_secs(20)) {
                    Ok(l) => l,
                    Err(e) => {
                        failures.push(format!("{me}: {e:?} with {done} done"));
                        return;
                    }
                };
                let words: Vec<&str> = line.split(' ').collect();
                match words.as_slice() {
                    ["PRIV", from, to, "-", "p", si, sr] => {
                        let (si, sr): (usize, usize) = (si.parse().unwrap(), sr.parse().unwrap());
                        if *to != me || target(si, sr) != i || *from != names[si] {
                            failures.push(format!("{me} got someone else's {line:?}"));
                        }
                        privs[si] += 1;
                    }
                    ["MSG", from, "-", "room", si, sr] => {
                        let (si, sr): (usize, usize) = (si.parse().unwrap(), sr.parse().unwrap());
                        if *from != names[si] || sr != rooms[si] * 4 {
                            failures.push(format!("{me}: room message out of order {line:?}"));
                        }
                        rooms[si] += 1;
                    }
                    ["MSG", _, "-", "done", _] => done += 1,
                    _ => failures.push(format!("{me}: unexpected {line:?}")),
                }
            }
            for s in 0..MEMBERS {
                if s == i {
                    continue;
                }
                let want = (0..ROUNDS).filter(|&r| target(s, r) == i).count();
                if privs[s] != want {
                    failures.push(format!("{me} got {} of {want} from {}", privs[s], names[s]));
                }
                if rooms[s] != ROUNDS.div_ceil(4) {
                    failures.push(format!(
                        "{me} got {} room lines from {}",
                        rooms[s], names[s]
                    ));
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    failures.assert_none("privacy under load");
    expect_fds_back(&server, baseline, SETTLE);
    expect_memory_bounded(
        &server,
        "privacy under load",
        rss_before,
        FAULT_RSS_BUDGET_KIB,
    );
    eprintln!(
        "privacy: {MEMBERS} members, {} private and {} room messages, each private to exactly its recipient",
        MEMBERS * ROUNDS,
        MEMBERS * ROUNDS.div_ceil(4)
    );
}

// ---- terminal escapes ---------------------------------------------------------------------------------

/// Raw bytes that must never reach a member or the console from a peer.
fn hostile_texts() -> Vec<String> {
    vec![
        "\u{1b}[2J\u{1b}[Hcleared".into(),       // CSI: clear screen, home
        "\u{1b}]0;pwned title\u{7}after".into(), // OSC title + BEL
        "\u{1b}]8;;http://evil/\u{1b}\\link\u{1b}]8;;\u{1b}\\".into(), // OSC 8 hyperlink, ST
        "bell\u{7}\u{7}\u{7}".into(),            // BEL
        "c1 \u{9b}31m red \u{9d}0;t\u{9c} \u{85}".into(), // C1 CSI, OSC, ST, NEL
        "bidi \u{202e}desrever\u{202c} \u{2066}iso\u{2069}".into(),
        "del\u{7f}and nul\u{0} and cr\r mid".into(),
        "/color red \u{1b}[5mblink".into(),
        "//\u{1b}[31mslash".into(),
    ]
}

#[test]
fn terminal_escapes_never_reach_members_or_the_console() {
    let _lock = light();
    let mut server = Server::start(&[]);
    // Names with escapes, controls, bidi and zero-width characters are refused, and the refusal
    // itself carries none of them; none is announced to the operator.
    let mut probe = server.connect_prompted();
    let bad_names = [
        "ev\u{1b}[31mil",
        "\u{1b}]0;x\u{7}",
        "a\u{7}b",
        "c1\u{9b}x",
        "\u{202e}kcab",
        "zero\u{200b}width",
        "zw\u{200d}j",
        "bom\u{feff}",
        "wj\u{2060}x",
    ];
    for name in bad_names {
        probe.send_line(name);
        let err = probe.expect("ERROR bad-name ");
        assert!(!err.chars().any(is_forbidden), "the refusal echoes {err:?}");
        assert!(
            !err.contains(['\u{200b}', '\u{200d}', '\u{feff}', '\u{2060}']),
            "the refusal echoes an invisible character: {err:?}"
        );
        probe.expect("NAME? ");
    }
    // Mallory, who tried them all, now asks with a valid name; alice and bob join too.
    let mut mallory = probe;
    mallory.send_line("mallory");
    mallory.expect("WAIT ");
    let announced = server.expect_console("join request: mallory from ");
    assert!(!announced.chars().any(is_forbidden), "{announced:?}");
    server.console("approve mallory");
    server.expect_console("approved mallory ");
    mallory.expect_welcome("mallory");
    let mut admit = |name: &str| {
        let (mut c, announced) = server.join_waiting(name);
        assert!(!announced.chars().any(is_forbidden), "{announced:?}");
        server.console(&format!("approve {name}"));
        server.expect_console(&format!("approved {name} "));
        c.expect_welcome(name);
        c
    };
    let mut alice = admit("alice");
    let mut bob = admit("bob");
    alice.skip_until("JOIN bob");
    mallory.skip_until("JOIN bob");
    let baseline = fd_count(server.pid());
    let rss_before = rss_kib(server.pid());

    for text in hostile_texts() {
        mallory.send_raw(format!("{text}\n").as_bytes());
        mallory.send_raw(format!("/private alice {text}\n").as_bytes());
        mallory.send_raw(format!("/private \u{1b}[2Jalice {text}\n").as_bytes());
    }
    mallory.send_line("marker");
    for c in [&mut alice, &mut bob] {
        let mut lines = Vec::new();
        loop {
            let line = c.next_line();
            if line == "MSG mallory - marker" {
                break;
            }
            lines.push(line);
        }
        for line in &lines {
            assert!(
                !line.chars().any(is_forbidden),
                "[{}] received {line:?}",
                c.name
            );
        }
        // Everything was delivered, defused: nine room lines each, nine private ones for alice.
        let rooms = lines
            .iter()
            .filter(|l| l.starts_with("MSG mallory "))
            .count();
        let privs = lines.iter().filter(|l| l.starts_with("PRIV ")).count();
        assert_eq!(rooms, hostile_texts().len(), "[{}] {lines:#?}", c.name);
        let want_privs = if c.name == "alice" {
            hostile_texts().len()
        } else {
            0
        };
        assert_eq!(privs, want_privs, "[{}] {lines:#?}", c.name);
        assert!(lines.iter().any(|l| l.contains("cleared")), "{lines:#?}");
    }
    // Mallory's error replies (the escape-laden recipient) carry no controls either.
    let mut errors = 0;
    loop {
        match mallory.try_next_line(Duration::from_millis(300)) {
            Ok(line) => {
                assert!(!line.chars().any(is_forbidden), "mallory got {line:?}");
                errors += 1;
            }
            Err(End::Timeout) => break,
            Err(e) => panic!("mallory: {e:?}"),
        }
    }
    assert!(errors > 0, "no error for the escape-laden recipient");

    // The console never showed a control character, whatever the peers did.
    server.console("who");
    server.console("pending");
    server.expect_console("pending: ");
    drop(mallory);
    server.expect_console("left mallory (quit)");
    server.drain_console(Duration::from_millis(100));
    for line in server.console_history() {
        assert!(!line.chars().any(is_forbidden), "console showed {line:?}");
        assert!(
            !["[31m", "kcab", "width", "bom", "wjx"]
                .iter()
                .any(|part| line.contains(part)),
            "console named a refused name: {line:?}"
        );
    }
    expect_fds_back(&server, baseline - 1, SETTLE);
    expect_memory_bounded(&server, "escapes", rss_before, FAULT_RSS_BUDGET_KIB);
    drop((alice, bob));
}

// ---- stalled console and log pipes ---------------------------------------------------------------------

/// A server whose stdout (the operator console) or stderr (the log) nobody reads, as when the
/// operator's terminal is paused (Ctrl-S) or piped into a stuck program. Console lines that are
/// read go to a channel. Killed when dropped.
struct StalledPipes {
    child: std::process::Child,
    addr: SocketAddr,
    console: Option<std::sync::mpsc::Receiver<String>>,
}

impl StalledPipes {
    /// Starts the server with `args`; `read_stdout` and `read_stderr` say which pipes are read
    /// (the other ones are left to fill up). Standard input is a pipe kept open.
    fn start(args: &[&str], read_stdout: bool, read_stderr: bool) -> StalledPipes {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(chat_testkit::server_bin())
            .args(["--listen", "127.0.0.1:0", "--data-dir", "none"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("first line {first:?}"));
        let console = read_stdout.then(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            thread::spawn(move || {
                for line in stdout.lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        if read_stderr {
            let mut err = child.stderr.take().unwrap();
            thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        }
        StalledPipes {
            child,
            addr,
            console,
        }
    }

    /// Types a console command.
    fn console(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{command}\n").as_bytes()).unwrap();
    }

    /// Waits for a console line starting with `prefix`.
    #[track_caller]
    fn expect_console(&mut self, prefix: &str) {
        let rx = self.console.as_ref().expect("stdout is not read");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return,
                Ok(_) => {}
                Err(e) => panic!("no console line {prefix:?}: {e:?}"),
            }
        }
    }

    /// Joins as `name` and has the operator approve it.
    #[track_caller]
    fn approved(&mut self, name: &str) -> Client {
        let mut c = Client::connect(self.addr);
        c.expect("NAME? ");
        c.send_line(name);
        c.expect("WAIT ");
        self.console(&format!("approve {name}"));
        c.expect_welcome(name);
        c
    }
}

impl Drop for StalledPipes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stalled_console_does_not_freeze_the_room() {
    let _lock = light();
    let server = StalledPipes::start(&["--auto-approve"], false, true);
    let mut a = Client::connect(server.addr);
    a.login("a");
    let mut b = Client::connect(server.addr);
    b.login("b");
    a.expect_exact("JOIN b");
    // Each join and leave prints a console line; 1500 of each is far past a pipe's 64 KiB.
    for i in 0..1500 {
        let mut c = Client::connect(server.addr);
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
    let mut server = StalledPipes::start(&["--max-pending", "1"], true, false);
    let mut a = server.approved("a");
    let mut b = server.approved("b");
    a.expect_exact("JOIN b");
    server.expect_console("approved b");
    // One join waits, so every further join is refused with a warning in the log.
    let mut waiting = Client::connect(server.addr);
    waiting.expect("NAME? ");
    waiting.send_line("w0");
    waiting.expect("WAIT ");
    for i in 0..3000 {
        let mut c = Client::connect(server.addr);
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

// ---- ten thousand members ------------------------------------------------------------------------------

/// Where one of the many members is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The non-blocking connect is in progress.
    Connecting,
    /// The name is sent; the prompt and WELCOME are being read.
    Naming,
    /// Admitted: counting the bytes that follow WELCOME.
    Member,
}

/// One of the many members, driven by the test's own poll loop.
#[derive(Debug)]
struct Many {
    stream: mio::net::TcpStream,
    phase: Phase,
    /// Bytes before WELCOME's end (prompt and WELCOME lines).
    head: Vec<u8>,
    /// `N` of `WELCOME name N`: how many were in before it, itself included.
    online: usize,
    /// Bytes received after the WELCOME line.
    body: usize,
    /// The last bytes received, to check the final line.
    tail: Vec<u8>,
    /// Whether all its bytes arrived (counted in `complete`).
    done: bool,
}

/// Whether member `i` has received everything it should: member k (k = `online` in its
/// WELCOME) gets a JOIN for each of the n - k admitted after it, then, unless it sent it, the
/// hello. Fails on a byte too many or a wrong last line.
#[track_caller]
fn check_many(m: &Many, i: usize, sender: usize, n: usize, join_len: usize, msg: &str) -> bool {
    let joins = (n - m.online) * join_len;
    let want = if i == sender {
        joins
    } else {
        joins + msg.len()
    };
    assert!(
        m.body <= want,
        "member {i} got {} bytes, want {want}",
        m.body
    );
    if m.body < want {
        return false;
    }
    if i != sender {
        assert!(
            m.tail.ends_with(msg.as_bytes()),
            "member {i} ended with {:?}",
            String::from_utf8_lossy(&m.tail)
        );
    }
    true
}

/// The name of member `i` (fixed width, so every `JOIN` line has the same length).
fn many_name(i: usize) -> String {
    format!("m{i:05}")
}

#[test]
fn ten_thousand_members_are_admitted_and_all_receive_one_message() {
    let _lock = heavy();
    let n: usize = std::env::var("CHAT_MANY_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    assert!(
        (2..100_000).contains(&n),
        "CHAT_MANY_MEMBERS must be 2..100000"
    );
    // This process holds one socket per member; the server (which inherits the limit) one
    // more each plus a few of its own. Both stay far below the 20000 we ask for.
    let need = n as u64 + 512;
    if !require_nofile(need, &format!("ten_thousand_members ({n} members)")) {
        return;
    }
    let max = n.to_string();
    let server = Server::start(&["--auto-approve", "--rate", "0", "--max-clients", &max]);
    let pid = server.pid();
    let baseline = fd_baseline(&server);
    let rss_before = rss_kib(pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);

    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(4096);
    let mut many: Vec<Many> = Vec::with_capacity(n);
    let mut buf = vec![0u8; 256 * 1024];
    // Members log in in waves: a wave's connects and names reach the server together, so it
    // admits the whole wave in a round or two, and each round ends with one pass of writes to
    // every member. One at a time would cost a pass per member: n^2 system calls. A wave stays
    // under the listen backlog (128 with std's `TcpListener::bind`): past it, connects are
    // dropped and retried a second later, or even reset under SYN cookies.
    let backlog = listen_backlog(server.addr().port());
    let wave: usize = std::env::var("CHAT_MANY_WAVE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| backlog.map_or(100, |b| (b * 3 / 4).clamp(16, 1000)));
    let mut in_flight = 0;
    let mut admitted = 0;
    // Members whose expected bytes have all arrived.
    let mut complete = 0;
    let mut sent_msg = false;
    let mut swept = false;
    let msg_text = "hello ten thousand";
    let mut sender = usize::MAX;
    let join_len = format!("JOIN {}\n", many_name(0)).len();
    let mut msg_line = String::new();

    while complete < n {
        assert!(
            Instant::now() < deadline,
            "stuck: {} connected, {admitted} admitted, {complete} complete after {:?}",
            many.len(),
            started.elapsed()
        );
        let wave_end = if in_flight == 0 {
            (many.len() + wave).min(n)
        } else {
            0
        };
        while many.len() < wave_end {
            let i = many.len();
            let mut stream = mio::net::TcpStream::connect(server.addr()).unwrap();
            poll.registry()
                .register(
                    &mut stream,
                    mio::Token(i),
                    mio::Interest::READABLE | mio::Interest::WRITABLE,
                )
                .unwrap();
            many.push(Many {
                stream,
                phase: Phase::Connecting,
                head: Vec::new(),
                online: 0,
                body: 0,
                tail: Vec::new(),
                done: false,
            });
            in_flight += 1;
        }
        if admitted == n && !sent_msg {
            // Everyone is in: the first admitted says hello once.
            sender = many.iter().position(|m| m.online == 1).unwrap();
            msg_line = format!("MSG {} - {msg_text}\n", many_name(sender));
            many[sender]
                .stream
                .write_all(format!("{msg_text}\n").as_bytes())
                .unwrap();
            sent_msg = true;
            eprintln!(
                "{n} members: all admitted after {:?} (waves of {wave}, listen backlog \
                 {backlog:?}); server RSS {} KiB, {} descriptors, CPU {:?}",
                started.elapsed(),
                rss_kib(pid),
                fd_count(pid),
                server.cpu_time()
            );
            assert_eq!(fd_count(pid), baseline + n, "one descriptor per member");
        }
        poll.poll(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        for event in events.iter() {
            let i = event.token().0;
            let m = &mut many[i];
            if m.phase == Phase::Connecting {
                if !event.is_writable() && !event.is_error() {
                    continue;
                }
                match m.stream.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => panic!("connect {i} failed: {e}"),
                }
                match m.stream.peer_addr() {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotConnected => continue,
                    Err(e) => panic!("connect {i}: {e}"),
                }
                // The name goes out before the prompt is read: the server reads it after
                // sending NAME?, as a client typing ahead.
                m.stream
                    .write_all(format!("{}\n", many_name(i)).as_bytes())
                    .unwrap();
                m.phase = Phase::Naming;
                poll.registry()
                    .reregister(&mut m.stream, mio::Token(i), mio::Interest::READABLE)
                    .unwrap();
            }
            loop {
                let got = match m.stream.read(&mut buf) {
                    Ok(0) => panic!("member {i} was closed by the server"),
                    Ok(k) => k,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => panic!("member {i}: {e}"),
                };
                // A short read means the socket is drained for now: with edge-triggered
                // polling any later byte raises a new event (the server relies on the same),
                // and it saves one `read` per wake-up on ten thousand sockets.
                let drained = got < buf.len();
                let mut data = &buf[..got];
                if m.phase == Phase::Naming {
                    m.head.extend_from_slice(data);
                    let newlines: Vec<usize> = m
                        .head
                        .iter()
                        .enumerate()
                        .filter(|(_, &b)| b == b'\n')
                        .map(|(p, _)| p)
                        .take(2)
                        .collect();
                    if newlines.len() < 2 {
                        if drained {
                            break;
                        }
                        continue;
                    }
                    let head = String::from_utf8_lossy(&m.head[..newlines[1]]).into_owned();
                    let (prompt, welcome) = head.split_once('\n').unwrap();
                    assert!(prompt.starts_with("NAME? "), "member {i}: {prompt:?}");
                    let want = format!("WELCOME {} ", many_name(i));
                    m.online = welcome
                        .strip_prefix(&want)
                        .and_then(|k| k.parse().ok())
                        .unwrap_or_else(|| panic!("member {i}: {welcome:?}"));
                    let rest = m.head.split_off(newlines[1] + 1);
                    m.head = Vec::new();
                    m.body = rest.len();
                    m.tail = rest;
                    m.phase = Phase::Member;
                    in_flight -= 1;
                    admitted += 1;
                    data = &[];
                }
                m.body += data.len();
                m.tail.extend_from_slice(data);
                if m.tail.len() > 128 {
                    let cut = m.tail.len() - 64;
                    m.tail.drain(..cut);
                }
                if drained {
                    break;
                }
            }
            if m.phase == Phase::Member && sent_msg && !m.done {
                m.done = check_many(m, i, sender, n, join_len, &msg_line);
                if m.done {
                    complete += 1;
                    poll.registry().deregister(&mut m.stream).unwrap();
                }
            }
        }
        if sent_msg && !swept {
            // Members with nothing more to come (the sender, once its JOINs are in) get no
            // further event: check everyone once after the hello went out.
            swept = true;
            for (i, m) in many.iter_mut().enumerate() {
                if !m.done && check_many(m, i, sender, n, join_len, &msg_line) {
                    m.done = true;
                    complete += 1;
                    poll.registry().deregister(&mut m.stream).unwrap();
                }
            }
        }
    }
    let delivered = started.elapsed();
    let peak = peak_rss_kib(pid);
    eprintln!(
        "{n} members: one message reached all {} others after {delivered:?}; server RSS \
         {rss_before} KiB idle, peak {peak} KiB",
        n - 1
    );
    drop(many);
    expect_fds_back(&server, baseline, Duration::from_secs(60));
    let total = started.elapsed();
    eprintln!("{n} members: all closed and released after {total:?}");
    // The peak is the join storm's backlog, not a leak: every admission sends JOIN to every
    // member, and members that have not yet read the earlier JOINs hold them in their queues
    // (16 bytes of queue per line, the line itself shared). With 10,000 members arriving in
    // waves faster than these test clients read, that reaches 130-160 MiB (measured); each
    // member's share stays under --max-queue. 256 MiB catches a leak or a per-recipient copy.
    assert!(
        peak < 256 * 1024,
        "peak RSS {peak} KiB for {n} members: more than the join-storm backlog explains"
    );
}
