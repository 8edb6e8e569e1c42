//! What hostile peers get from the TLS listener (issue 20), against the real `chat-server` binary
//! over real sockets: half-done handshakes (a ClientHello that claims 65,520 bytes, sent in
//! three records, then silence) are bounded in what they make the server hold and give it back
//! when they go; one address may have at most `MAX_HANDSHAKES_PER_IP` handshakes under way; a
//! TLS member that stops reading is dropped by `--stall-timeout` although the TLS engine, not
//! the server's queue, holds its bytes; and a TLS member costs no more than rustls's own state
//! beside a plain member, idle and after an over-long line.
//!
//! Other hosts are played by binding to other loopback source addresses. Memory is the
//! server's VmRSS from /proc; every bound is stated beside its assertion and the figures are
//! printed (`--nocapture`; docs/SECURITY.md and docs/PROTOCOL.md record them).
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use chat_server::config::{MAX_HANDSHAKES_PER_IP, MAX_HANDSHAKE_INPUT};
use chat_testkit::{
    expect_fds_back, fd_baseline, heavy, host, light, plain, require_nofile, rss_kib, tcp_from,
    tls_over, try_tls_over, Member, Pki, Server, TlsMember, SETTLE, TIMEOUT,
};

/// The size of the handshake message the probe claims, header included (the probe).
const CLAIMED: usize = 65_520;

/// TLS records carrying the start of a ClientHello that claims [`CLAIMED`] bytes: `records`
/// records of `per_record` bytes of it each. Never completed: the peer then falls silent.
fn claimed_hello(records: usize, per_record: usize) -> Vec<u8> {
    let body = (CLAIMED - 4) as u32;
    let mut message = vec![0x01, (body >> 16) as u8, (body >> 8) as u8, body as u8];
    message.resize(records * per_record, 0x41);
    let mut wire = Vec::new();
    for chunk in message.chunks(per_record) {
        wire.extend_from_slice(&[0x16, 0x03, 0x01]);
        wire.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        wire.extend_from_slice(chunk);
    }
    wire
}

/// The loopback address `127.0.2.i`, one of many hosts for probes.
fn probe_host(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 2, (i + 1) as u8))
}

/// A TLS-only server (`--listen off`) with `--auto-approve` and `extra` flags, and its PKI.
fn start(test: &str, plain_too: bool, extra: &[&str]) -> (Server, Pki) {
    let pki = Pki::new(test);
    pki.install(&pki.leaf(test));
    let builder = if plain_too {
        Server::builder()
    } else {
        Server::builder().listen("off")
    };
    let server = builder
        .args(&["--auto-approve"])
        .tls(&pki.cert_path(), &pki.key_path())
        .args(extra)
        .start();
    (server, pki)
}

/// Whether the server closes `sock` (end of file or reset) within `within`; whatever it sends
/// before is read and dropped.
fn closed_within(sock: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Whether `sock` is still open with nothing to read: a non-blocking read says it would block.
fn still_open(sock: &mut TcpStream) -> bool {
    sock.set_nonblocking(true).unwrap();
    let open = matches!(sock.read(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
    sock.set_nonblocking(false).unwrap();
    open
}

/// The server's memory settles after connections come or go: polls VmRSS until two reads a
/// round apart agree within 64 KiB, and returns it.
fn settled_rss(server: &Server) -> u64 {
    let deadline = Instant::now() + SETTLE;
    let mut last = rss_kib(server.pid());
    loop {
        // Sampling memory over time has no event to wait on.
        std::thread::sleep(Duration::from_millis(200));
        let now = rss_kib(server.pid());
        if now.abs_diff(last) < 64 || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[test]
fn a_client_hello_claiming_64_kib_is_cut_off_past_the_handshake_budget() {
    let _lock = light();
    let (server, pki) = start("claim", false, &[]);
    // The probe: three full records of a ClientHello claiming 65,520 bytes. rustls
    // would join up to 64 KiB of it; the server stops after MAX_HANDSHAKE_INPUT.
    let probe = claimed_hello(3, 16 * 1024);
    assert!(probe.len() > MAX_HANDSHAKE_INPUT);
    for i in 0..20 {
        let mut sock = tcp_from(server.tls_addr(), host(1), None);
        // The server may close before it took all of it: a failed write is part of that.
        let _ = sock.write_all(&probe);
        assert!(
            closed_within(&mut sock, TIMEOUT),
            "probe {i}: still open after sending {} bytes of a handshake",
            probe.len()
        );
    }
    // A real member is not affected.
    let mut ok = tls_over(
        tcp_from(server.tls_addr(), host(1), None),
        &pki.client_config(),
    );
    ok.login("erin");
    ok.send("/who");
    assert!(ok.expect("INFO ").contains("erin"));
}

#[test]
fn one_address_may_have_at_most_max_handshakes_per_ip_under_way() {
    let _lock = light();
    if !require_nofile(2 * MAX_HANDSHAKES_PER_IP as u64 + 256, "handshakes per ip") {
        return;
    }
    let (server, pki) = start("per-ip", false, &[]);
    let config = pki.client_config();
    let crowded = host(7);
    // Connections that never say a word: each is a handshake under way.
    let mut silent: Vec<TcpStream> = (0..MAX_HANDSHAKES_PER_IP)
        .map(|_| tcp_from(server.tls_addr(), crowded, None))
        .collect();
    // The next one from that address is closed at once, before any handshake.
    let refused = try_tls_over(tcp_from(server.tls_addr(), crowded, None), &config);
    assert!(
        refused.is_err(),
        "handshake {} from {crowded} was served",
        MAX_HANDSHAKES_PER_IP + 1
    );
    // Another address is not affected ...
    let mut other = tls_over(tcp_from(server.tls_addr(), host(8), None), &config);
    other.login("other");
    // ... and the silent ones were all kept (none was closed meanwhile).
    for (i, sock) in silent.iter_mut().enumerate() {
        assert!(still_open(sock), "silent connection {i} was closed");
    }
    // One goes: its slot is free again (the server notices the close in its own time).
    drop(silent.pop());
    let deadline = Instant::now() + TIMEOUT;
    let mut back = loop {
        match try_tls_over(tcp_from(server.tls_addr(), crowded, None), &config) {
            Ok(member) => break member,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no handshake from {crowded} after one of its connections closed: {e}"
            ),
        }
    };
    back.login("back");
    assert_eq!(other.expect("JOIN "), "JOIN back");
}

/// The probe, kept within the handshake budget so that it stays pending: how much a
/// half-done handshake costs the server while it waits, and that the memory is given back once
/// they go. `CHAT_HANDSHAKES` changes how many (default 1000; the issue measured 4000).
#[test]
fn half_done_handshakes_cost_bounded_memory_and_give_it_back() {
    let _lock = heavy();
    let n: usize = std::env::var("CHAT_HANDSHAKES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    if !require_nofile(2 * n as u64 + 256, "half-done handshakes") {
        return;
    }
    let (server, pki) = start(
        "pending",
        true,
        &["--max-clients", "20000", "--login-timeout", "600"],
    );
    let baseline = fd_baseline(&server);
    // Three records of 4000 bytes: 12,015 bytes, just within MAX_HANDSHAKE_INPUT.
    let probe = claimed_hello(3, 4000);
    assert!(probe.len() <= MAX_HANDSHAKE_INPUT);
    let before = settled_rss(&server);
    let per_host = MAX_HANDSHAKES_PER_IP;
    let mut probes: Vec<TcpStream> = (0..n)
        .map(|i| {
            let mut sock = tcp_from(server.tls_addr(), probe_host(i / per_host), None);
            sock.write_all(&probe).unwrap();
            sock
        })
        .collect();
    // A member who finishes a handshake afterwards proves the server read every probe first
    // (one loop, connections served in turn); the probes are all still open.
    let mut witness = tls_over(
        tcp_from(server.tls_addr(), host(9), None),
        &pki.client_config(),
    );
    witness.login("witness");
    for (i, sock) in probes.iter_mut().enumerate() {
        assert!(still_open(sock), "probe {i} was closed");
    }
    let held = settled_rss(&server);
    let per = (held.saturating_sub(before) * 1024) / n as u64;
    eprintln!(
        "{n} half-done handshakes ({} bytes each, claiming {CLAIMED}): RSS {before} -> {held} KiB, \
         {:.1} KiB each",
        probe.len(),
        per as f64 / 1024.0
    );
    // The bound: the 12 KiB of input in a read buffer grown to exactly that, the engine and
    // rustls's state (2 KiB) and the connection's: 16 KiB (14.1 measured; the issue measured
    // 58.6 KiB each, and rustls's buffered connection, with its 16 KiB buffer, 18.6).
    assert!(
        per <= 16 * 1024,
        "a half-done handshake costs {per} bytes, more than 16 KiB"
    );
    drop(probes);
    expect_fds_back(&server, baseline + 1, SETTLE);
    // Memory goes back to the system once they are gone (the shell trims the heap a second
    // after much was freed): within a quarter of what they held, or 2 MiB.
    let deadline = Instant::now() + SETTLE;
    let slack = ((held - before) / 4).max(2048);
    let after = loop {
        let now = settled_rss(&server);
        if now <= before + slack || Instant::now() > deadline {
            break now;
        }
    };
    eprintln!("after they closed: RSS {after} KiB (before {before} KiB)");
    assert!(
        after <= before + slack,
        "RSS {after} KiB after the handshakes went, {before} KiB before them (slack {slack} KiB)"
    );
    witness.send("/who");
    assert!(witness.expect("INFO ").contains("witness"));
}

#[test]
fn a_tls_member_that_stops_reading_is_dropped_by_the_stall_timeout_with_an_empty_queue() {
    let _lock = light();
    // Everything sent to sleepy fits in the TLS engine's records and the kernels': the server's
    // own queue is empty, only the engine holds bytes. The stall clock must count those.
    let (server, pki) = start(
        "stall",
        true,
        &[
            "--rate",
            "0",
            "--stall-timeout",
            "1",
            "--send-buffer",
            "4096",
        ],
    );
    let mut sleepy: TlsMember = tls_over(
        tcp_from(server.tls_addr(), host(1), Some(4096)),
        &pki.client_config(),
    );
    sleepy.login("sleepy");
    let mut talker: Member<TcpStream> = plain(server.addr());
    talker.login("talker");
    let started = Instant::now();
    // 40 lines of 1000 bytes: well under --max-queue (1 MiB) and one write's 64 KiB.
    let line = "z".repeat(1000);
    for _ in 0..40 {
        talker.send(&line);
    }
    talker.send("/who");
    assert!(talker.expect("INFO online (2)").contains("sleepy"));
    let left = talker.expect("LEAVE ");
    assert_eq!(left, "LEAVE sleepy dropped");
    let took = started.elapsed();
    eprintln!("a TLS member that stopped reading was dropped after {took:?} (--stall-timeout 1)");
    assert!(took >= Duration::from_millis(900), "dropped after {took:?}");
}

/// Memory of `n` members of one kind, idle and after each sent one over-long line, in bytes
/// per member: logs them in on a fresh server and reads VmRSS before, after the logins, and
/// after the over-long lines.
fn member_memory(use_tls: bool, n: usize) -> (u64, u64) {
    let (server, pki) = start(if use_tls { "mem-tls" } else { "mem-plain" }, true, &[]);
    let config = pki.client_config();
    let before = settled_rss(&server);
    let mut tls_members = Vec::new();
    let mut plain_members = Vec::new();
    for i in 0..n {
        let name = format!("m{i}");
        if use_tls {
            let mut m = tls_over(tcp_from(server.tls_addr(), host(1), None), &config);
            m.login(&name);
            tls_members.push(m);
        } else {
            let mut m = plain(server.addr());
            m.login(&name);
            plain_members.push(m);
        }
    }
    let idle = settled_rss(&server);
    // One line past --max-line (4096) from each: the server refuses it with an ERROR.
    let long = "o".repeat(16 * 1024);
    for m in tls_members.iter_mut() {
        m.send(&long);
        m.skip_until("ERROR ");
    }
    for m in plain_members.iter_mut() {
        m.send(&long);
        m.skip_until("ERROR ");
    }
    let after = settled_rss(&server);
    let per = |kib: u64| kib.saturating_sub(before) * 1024 / n as u64;
    (per(idle), per(after))
}

/// What rustls's state costs per TLS member once its handshake is done, beyond a plain member:
/// the engine (`TlsStream`, 1240 bytes: rustls's connection and about 140 of the engine's own),
/// the record layer's two AEAD keys (560 bytes each), the handshake deframer's span list that
/// rustls allocates up front and keeps (640), the traffic state (224), two emptied queues (96
/// each) and the client's SNI name: 3.4 KiB measured on the heap, about 3.5 with the allocator's
/// headers. The read, write and plaintext buffers are freed whenever they are empty, so nothing
/// else stays (docs/SECURITY.md).
///
/// The margin: six runs of this test (1000 members of each kind, 2 cores at load average 4-6
/// from builds beside it) measured TLS minus plain at 3.56 to 3.72 KiB idle and 3.59 to 3.75
/// KiB after an over-long line: a spread of 0.19 KiB (RSS settles within 64 KiB, 0.06 KiB a
/// member, and the allocator's arenas vary). 4 KiB left 0.25 KiB over the worst run. 4.5 KiB
/// leaves 0.75 KiB, four times the spread, so a loaded CI machine does not flake on it, while
/// anything the server might wrongly keep per TLS member is far bigger than the margin: the
/// first read's buffer alone is 4 KiB (`TLS_READ_FIRST`), rustls's buffered connection held
/// 9.2 KiB more.
const TLS_STATE_BOUND: u64 = 4 * 1024 + 512;

/// What a TLS member costs beside a plain one. Issue 20 asked for at most twice as much; the
/// issue measured 11.4 KiB vs 1.9 KiB idle and 42-60 KiB vs 10 KiB after an over-long line, and
/// rustls's buffered connection still held 9.2-9.5 KiB. With the unbuffered API no buffer
/// stays, idle or after an over-long line, and what is left is rustls's own state
/// ([`TLS_STATE_BOUND`]): more than a plain member's whole cost (under 1 KiB), so twice a plain
/// member is out of reach while rustls keeps it. The bound asserted is that state, and that an
/// over-long line leaves nothing behind.
#[test]
fn a_tls_member_costs_only_rustlss_state_more_idle_and_after_an_over_long_line() {
    let _lock = heavy();
    const N: usize = 1000;
    if !require_nofile(2 * N as u64 + 256, "member memory") {
        return;
    }
    let (plain_idle, plain_long) = member_memory(false, N);
    let (tls_idle, tls_long) = member_memory(true, N);
    let kib = |b: u64| b as f64 / 1024.0;
    eprintln!(
        "per member, {N} members: plain {:.2} KiB idle, {:.2} KiB after an over-long line; \
         TLS {:.2} KiB idle, {:.2} KiB after an over-long line",
        kib(plain_idle),
        kib(plain_long),
        kib(tls_idle),
        kib(tls_long)
    );
    assert!(
        tls_idle <= plain_idle + TLS_STATE_BOUND,
        "idle: TLS {tls_idle} bytes, plain {plain_idle} bytes"
    );
    assert!(
        tls_long <= plain_long + TLS_STATE_BOUND,
        "after an over-long line: TLS {tls_long} bytes, plain {plain_long} bytes"
    );
    // The 16 KiB record the line came in (and the read buffer grown for it) is given back: what
    // stays is within the measurement's resolution (64 KiB over N members) of the idle figure.
    assert!(
        tls_long <= tls_idle + 512,
        "an over-long line left {} bytes per TLS member behind",
        tls_long.saturating_sub(tls_idle)
    );
}
