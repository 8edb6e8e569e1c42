//! The long-run test (issue 7, "Long runs"): hundreds of members chatting on one real
//! `chat-server` for `SOAK_SECS` seconds (10 by default, `scripts/soak.sh` runs it for longer in
//! release mode) while others join and leave, and others stall until the server drops them.
//!
//! Twenty senders send numbered room messages at a modest rate; every healthy member (senders
//! included) checks each sender's numbers arrive without a gap, in order, up to the sender's
//! final count. Churners join, listen a little and leave (`/leave`, close or reset); stallers
//! join with a small receive buffer and stop reading, and must be dropped (`LEAVE name dropped`)
//! by the small `--max-queue`. Every second the server's RSS and descriptor count are sampled.
//! The test asserts no message lost to any healthy member, RSS flat after warm-up, descriptors
//! back to the baseline at the end, and prints one summary line with the figures.
//!
//! Knobs (environment): `SOAK_SECS`, `SOAK_SENDERS` (20), `SOAK_READERS` (180), `SOAK_RATE`
//! (messages per second per sender, 10).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::{
    expect_fds_back, fd_baseline, fd_count, peak_rss_kib, rss_kib, Failures, Peer, Rng,
};
use chat_testkit::{Client, End, Server, TIMEOUT};

/// Bytes of padding per message, so stalled members fill their queue in a second or two.
const PAD: usize = 120;
/// Output a member may have waiting before it is dropped.
const MAX_QUEUE: &str = "131072";
/// Longest line: room for the blasters' private messages.
const MAX_LINE: &str = "65536";
/// Receive buffer of a staller: small, so the server's queue (not the kernel) fills.
const STALLER_RCVBUF: usize = 4096;
/// A staller must be dropped this soon after its blaster starts.
const MUST_DROP_WITHIN: Duration = Duration::from_secs(10);
/// Bytes of text in one of the blaster's private messages (`--max-line` is raised for them).
const BLAST_LINE: usize = 60_000;
/// Longest a healthy member waits for a line before its check fails.
const SILENCE: Duration = Duration::from_secs(20);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Shared counters and flags of the run.
#[derive(Debug, Default)]
struct Shared {
    /// Set when the senders should send their final `fin`.
    stop: AtomicBool,
    /// Set when churners and stallers should stop starting new members.
    stop_churn: AtomicBool,
    /// Messages sent by all senders.
    sent: AtomicU64,
    /// Messages received by all healthy members from senders.
    delivered: AtomicU64,
    /// Messages a healthy member missed (gaps and missing tails).
    lost: AtomicU64,
    /// Churn members that joined.
    churn_joins: AtomicU64,
    /// Stallers that joined, and that were dropped.
    stalls: AtomicU64,
    dropped: AtomicU64,
    /// Bytes the blasters sent to stalled members until they were dropped.
    blasted: AtomicU64,
}

/// What one healthy member checks in one line: each sender's numbers in order from 0 (`next`),
/// its `fin` count (`fins`), and that only churners and stallers ever leave.
fn check_line(
    me: &str,
    line: &str,
    senders: usize,
    next: &mut [u64],
    fins: &mut [bool],
    shared: &Shared,
    failures: &Failures,
) {
    let mut words = line.splitn(4, ' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("MSG"), Some(from), Some("-"), Some(body)) => {
            let Some(s) = from
                .strip_prefix('s')
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&s| s < senders)
            else {
                failures.push(format!("{me}: message from a non-sender: {line:?}"));
                return;
            };
            let mut parts = body.split(' ');
            match (parts.next(), parts.next()) {
                (Some("fin"), Some(n)) => {
                    let n: u64 = n.parse().unwrap_or(u64::MAX);
                    if next[s] != n {
                        failures.push(format!("{me}: {from} sent {n}, {me} got {}", next[s]));
                        shared
                            .lost
                            .fetch_add(n.saturating_sub(next[s]), Ordering::Relaxed);
                    }
                    fins[s] = true;
                }
                (Some(tag), Some(n)) if tag == from => {
                    let n: u64 = n.parse().unwrap_or(u64::MAX);
                    if n != next[s] {
                        failures.push(format!(
                            "{me}: from {from} expected {} got {n}: {line:?}",
                            next[s]
                        ));
                        shared
                            .lost
                            .fetch_add(n.saturating_sub(next[s]), Ordering::Relaxed);
                    }
                    next[s] = n + 1;
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                }
                _ => failures.push(format!("{me}: malformed {line:?}")),
            }
        }
        (Some("JOIN"), Some(_), None, None) => {}
        (Some("LEAVE"), Some(who), Some(reason), None) => {
            let ok = if who.starts_with("st") {
                reason == "dropped"
            } else if who.starts_with('c') || who.starts_with('b') {
                reason == "left" || reason == "quit"
            } else {
                false
            };
            if !ok {
                failures.push(format!("{me}: unexpected {line:?}"));
            }
        }
        _ => failures.push(format!("{me}: unexpected {line:?}")),
    }
}

/// A healthy member that only reads, until every sender's `fin`.
fn reader(mut c: Client, senders: usize, shared: Arc<Shared>, failures: Failures) {
    let me = c.name.clone();
    let mut next = vec![0u64; senders];
    let mut fins = vec![false; senders];
    while !fins.iter().all(|&f| f) {
        match c.try_next_line(SILENCE) {
            Ok(line) => check_line(
                &me, &line, senders, &mut next, &mut fins, &shared, &failures,
            ),
            Err(e) => {
                failures.push(format!("{me}: {e:?} before every fin ({fins:?})"));
                return;
            }
        }
    }
}

/// A sender: sends `sNN seq pad` every `interval` until told to stop, then `fin count`; reads
/// and checks the others' messages all along, until every other sender's `fin`.
fn sender(
    mut c: Client,
    index: usize,
    senders: usize,
    interval: Duration,
    shared: Arc<Shared>,
    failures: Failures,
) {
    let me = c.name.clone();
    let pad = "p".repeat(PAD);
    let mut next = vec![0u64; senders];
    let mut fins = vec![false; senders];
    fins[index] = true; // a sender does not get its own messages
    let mut seq = 0u64;
    let mut next_send = Instant::now();
    let mut finished = false;
    loop {
        let now = Instant::now();
        if !finished && now >= next_send {
            if shared.stop.load(Ordering::Relaxed) {
                c.send_line(&format!("fin {seq}"));
                finished = true;
            } else {
                c.send_line(&format!("{me} {seq} {pad}"));
                seq += 1;
                shared.sent.fetch_add(1, Ordering::Relaxed);
                next_send += interval;
            }
        }
        if finished && fins.iter().all(|&f| f) {
            return;
        }
        let wait = if finished {
            SILENCE
        } else {
            next_send.saturating_duration_since(Instant::now())
        };
        match c.try_next_line(wait.max(Duration::from_millis(1))) {
            Ok(line) => check_line(
                &me, &line, senders, &mut next, &mut fins, &shared, &failures,
            ),
            Err(End::Timeout) if !finished => {}
            Err(e) => {
                failures.push(format!("{me}: {e:?} (finished {finished}, fins {fins:?})"));
                return;
            }
        }
    }
}

/// Joins, listens for a random while, leaves in one of three ways; again until stopped.
fn churner(
    server_addr: std::net::SocketAddr,
    id: usize,
    seed: u64,
    shared: Arc<Shared>,
    failures: Failures,
) {
    let mut rng = Rng::new(seed);
    let mut k = 0;
    while !shared.stop_churn.load(Ordering::Relaxed) {
        let name = format!("c{id}x{k}");
        k += 1;
        let mut c = Peer::connect(server_addr, None);
        c.login(&name);
        shared.churn_joins.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + Duration::from_millis(100 + rng.below(400));
        while Instant::now() < until {
            match c.try_line(until.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("PRIV ") => {
                    failures.push(format!("{name} got {line:?}"));
                }
                Ok(_) | Err(End::Timeout) => {}
                Err(e) => {
                    failures.push(format!("{name}: {e:?}"));
                    return;
                }
            }
        }
        match rng.below(3) {
            0 => {
                c.send_line("/leave");
                c.skip_until("BYE ");
                c.drain_to_close(TIMEOUT);
            }
            1 => drop(c),
            _ => c.reset(),
        }
    }
}

/// Joins with a small receive buffer, reads a little, then stops reading; a second member (the
/// blaster) sends it large private messages until the server drops it for `--max-queue`. Room
/// traffic alone would take minutes: the kernel's send buffer for the stalled socket grows to
/// `tcp_wmem`'s maximum (4 MiB here) before the server's own queue even starts.
fn staller(server_addr: std::net::SocketAddr, k: u64, shared: Arc<Shared>, failures: Failures) {
    let name = format!("st{k}");
    let mut victim = Peer::connect(server_addr, Some(STALLER_RCVBUF));
    victim.login(&name);
    shared.stalls.fetch_add(1, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        let _ = victim.try_line(until.saturating_duration_since(Instant::now()));
    }
    // Stalled from here on.
    let mut blaster = Peer::connect(server_addr, None);
    blaster.login(&format!("b{k}"));
    let big = format!("/private {name} {}\n", "x".repeat(BLAST_LINE));
    let dropped = format!("LEAVE {name} dropped");
    let deadline = Instant::now() + MUST_DROP_WITHIN;
    let mut blasts = 0u64;
    'blast: loop {
        if Instant::now() > deadline {
            failures.push(format!("{name} was never dropped ({blasts} blasts)"));
            return;
        }
        if blaster.send_raw(big.as_bytes()).is_err() {
            failures.push(format!("b{k} could not send"));
            return;
        }
        blasts += 1;
        // Read what arrived (room traffic, JOIN/LEAVE) until the line for the victim.
        loop {
            match blaster.try_line(Duration::from_millis(2)) {
                Ok(line) if line == dropped => break 'blast,
                Ok(line) if line.starts_with(&format!("LEAVE {name} ")) => {
                    failures.push(format!("{name} left as {line:?}"));
                    return;
                }
                Ok(_) => {}
                Err(End::Timeout) => break,
                Err(e) => {
                    failures.push(format!("b{k}: {e:?}"));
                    return;
                }
            }
        }
    }
    shared.dropped.fetch_add(1, Ordering::Relaxed);
    shared
        .blasted
        .fetch_add(blasts * big.len() as u64, Ordering::Relaxed);
    // The server has closed the victim: what is left in the buffers, then the end.
    victim.drain_to_close(TIMEOUT);
    blaster.send_line("/leave");
    blaster.skip_until("BYE ");
}

/// A long series in a line: its range and its two ends.
fn summarize<T: Copy + Ord + std::fmt::Debug>(values: &[T]) -> String {
    let (Some(min), Some(max)) = (values.iter().min(), values.iter().max()) else {
        return "none".into();
    };
    if values.len() <= 20 {
        return format!("{values:?}");
    }
    format!(
        "{} samples in {min:?}..={max:?}: first {:?}, last {:?}",
        values.len(),
        &values[..5],
        &values[values.len() - 5..]
    )
}

fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[test]
fn soak_many_members_chatting_churning_and_stalling() {
    let secs = env_or("SOAK_SECS", 10);
    let senders = env_or("SOAK_SENDERS", 20) as usize;
    let readers = env_or("SOAK_READERS", 180) as usize;
    let rate = env_or("SOAK_RATE", 10).max(1);
    let seed = env_or("SOAK_SEED", Rng::clock_seed());
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let members = senders + readers;
    chat_testkit::raise_nofile(members as u64 * 2 + 256).unwrap_or_else(|hard| {
        panic!(
            "the soak needs {} open files; hard limit {hard}",
            members * 2 + 256
        )
    });

    let server = Server::start(&[
        "--auto-approve",
        "--max-queue",
        MAX_QUEUE,
        "--max-line",
        MAX_LINE,
    ]);
    let pid = server.pid();
    let addr = server.addr();
    let baseline = fd_baseline(&server);
    let shared = Arc::new(Shared::default());
    let failures = Failures::default();

    // Everyone healthy logs in first, so each sees every sender's message from number 0.
    let mut clients: Vec<Client> = Vec::with_capacity(members);
    for i in 0..senders {
        clients.push(server.login(&format!("s{i:02}")));
    }
    for i in 0..readers {
        clients.push(server.login(&format!("r{i:03}")));
    }
    // Everyone has JOIN lines waiting for the later ones: the checkers accept JOIN.
    let start = Arc::new(Barrier::new(members + 1));
    let mut healthy = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        let (shared, failures, start) = (Arc::clone(&shared), failures.clone(), Arc::clone(&start));
        healthy.push(
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    start.wait();
                    if i < senders {
                        sender(c, i, senders, interval, shared, failures);
                    } else {
                        reader(c, senders, shared, failures);
                    }
                })
                .unwrap(),
        );
    }
    start.wait();
    let began = Instant::now();

    let mut others = Vec::new();
    for id in 0..2 {
        let (shared, failures) = (Arc::clone(&shared), failures.clone());
        let seed = seed.wrapping_add(id as u64 + 1);
        others.push(thread::spawn(move || {
            churner(addr, id, seed, shared, failures)
        }));
    }

    // One sample a second; a staller every second.
    let mut rss = Vec::new();
    let mut fds = Vec::new();
    let mut stallers = 0u64;
    for second in 0..secs {
        let tick = began + Duration::from_secs(second + 1);
        if second + 3 < secs {
            let (shared, failures) = (Arc::clone(&shared), failures.clone());
            let k = stallers;
            stallers += 1;
            others.push(thread::spawn(move || staller(addr, k, shared, failures)));
        }
        // The one-second tick is the sampling period itself, not a synchronisation.
        thread::sleep(tick.saturating_duration_since(Instant::now()));
        rss.push(rss_kib(pid));
        fds.push(fd_count(pid));
    }
    shared.stop_churn.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    for h in healthy {
        h.join().unwrap();
    }
    for h in others {
        h.join().unwrap();
    }
    let ran = began.elapsed();
    expect_fds_back(&server, baseline, Duration::from_secs(15));
    let peak = peak_rss_kib(pid);

    let sent = shared.sent.load(Ordering::Relaxed);
    let delivered = shared.delivered.load(Ordering::Relaxed);
    let lost = shared.lost.load(Ordering::Relaxed);
    let warm = rss.len() / 3;
    let steady = &rss[warm..];
    let med = median(steady);
    let last = rss.last().copied().unwrap_or(0);
    eprintln!("soak: RSS samples (KiB) {}", summarize(&rss));
    eprintln!("soak: descriptor samples {}", summarize(&fds));
    eprintln!(
        "soak summary: {secs} s (ran {:.1} s), {senders} senders x {rate}/s, {members} healthy \
         members, sent {sent}, delivered {delivered} (expected {}), lost {lost}; churn joins {}, \
         stallers {} of which dropped {} (after {} KiB each on average); RSS median {med} KiB, last {last} KiB, peak {peak} \
         KiB; fds baseline {baseline}, max {}, end {}; seed {seed}",
        ran.as_secs_f64(),
        sent * (members as u64 - 1),
        shared.churn_joins.load(Ordering::Relaxed),
        shared.stalls.load(Ordering::Relaxed),
        shared.dropped.load(Ordering::Relaxed),
        shared.blasted.load(Ordering::Relaxed) / shared.dropped.load(Ordering::Relaxed).max(1) / 1024,
        fds.iter().max().copied().unwrap_or(0),
        fd_count(pid),
    );
    failures.assert_none("soak");
    assert_eq!(lost, 0, "messages lost to healthy members");
    assert_eq!(
        delivered,
        sent * (members as u64 - 1),
        "every healthy member gets every other sender's every message"
    );
    assert!(
        shared.dropped.load(Ordering::Relaxed) > 0,
        "no staller was ever dropped: the test did not exercise --max-queue"
    );
    // Flat: after warm-up the last sample is within a quarter (plus allocator slack) of the
    // median; a leak grows steadily and fails this on long runs.
    assert!(
        last <= med + med / 4 + 2048,
        "RSS not flat: median {med} KiB after warm-up, last {last} KiB; samples {rss:?}"
    );
}
