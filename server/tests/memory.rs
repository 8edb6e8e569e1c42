//! What members cost the server in memory, against the real `chat-server` binary: stalled members
//! fed tiny lines (at most `--max-queue` each), join churn that leaves no memory behind, and the
//! memory of idle, trickling and paced ("parked") members. Memory is read from /proc (VmRSS,
//! VmHWM) and every bound asserted is stated beside the assertion; figures are printed
//! (`--nocapture`). Heavy tests take the shared lock of `chat_testkit`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::{
    churn_once, filler, heavy, host, peak_rss_kib, rss_bytes, rss_kib, send_tiny_and_sync, Client,
    Server, TIMEOUT,
};

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
        let mut z = Client::connect_from_with(server.addr(), host(1), Some(4096));
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
