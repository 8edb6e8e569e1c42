//! Who gets in, against the real `chat-server` binary over real sockets: the login timeout
//! against a slowloris flood, `--max-per-ip`, the waiting room under a flood (`--max-pending`)
//! and per address (`--max-pending-per-ip`), the name cool-down after a deny or an approval
//! timeout, the console's `ban`/`unban`, and join churn coalesced on the console.
//!
//! Different hosts are played by binding client sockets to other loopback source addresses
//! (127.0.0.2, 127.0.1.x: Linux routes all of 127/8 to lo). Fault tests also check that healthy
//! members keep receiving everything in order (`chat_testkit::Healthy`), that memory stays
//! bounded and that no descriptor leaks. Figures are printed (`--nocapture`).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::{
    churn_once, expect_fds_back, expect_memory_bounded, fd_count, heavy, host, join_from, light,
    offer_from, rss_kib, skip_to, Client, Healthy, Server, FAULT_RSS_BUDGET_KIB, SETTLE, TIMEOUT,
};

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
    server.expect_console(&format!("approved {name} (by stdin; 4 online)"));
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
    let _w: Vec<Client> = (1..=3)
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
    let mut again = Client::connect_from(server.addr(), host(2));
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
    let mut again = Client::connect_from(server.addr(), host(2));
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
    server.expect_console("approved x (by stdin; 1 online)");
    assert_eq!(x.expect_welcome("x"), 1);
    let mut y = join_from(&mut server, host(2), "y");
    server.console("approve y");
    server.expect_console("approved y (by stdin; 2 online)");
    y.expect_exact("WELCOME y 2");
    x.expect_exact("JOIN y");
    let mut w = join_from(&mut server, host(2), "w");
    let mut v = Client::connect_from(server.addr(), host(3));
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
    let mut n = Client::connect_from(server.addr(), host(2));
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
    let mut back = Client::connect_from(server.addr(), host(2));
    back.expect("NAME? ");
    back.send_line("back");
    back.expect("WAIT ");
    let bans = server.console_reply("bans");
    assert!(bans.iter().any(|l| l == "bans: 0"), "{bans:?}");

    server.console("ban nonsense");
    server.expect_console("error: ");
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
