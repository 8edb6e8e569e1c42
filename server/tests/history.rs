//! The room history (`--history N`, `HIST <time> <line>`), against the real `chat-server` binary:
//! exactly the last N room messages, oldest first, only `MSG` and `ACT`, the original bytes with
//! the relay time, and no gap or repeat between history and live lines.
//!
//! History is checked against a witness: a member who was present and received the live lines,
//! so a `HIST` payload must equal, byte for byte, a line the witness got.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_testkit::{marker, marker_as, room, Client, Server};

/// Splits `HIST <time> <line>` into its time and line; fails the test on anything else.
#[track_caller]
fn split_hist(line: &str) -> (&str, &str) {
    line.strip_prefix("HIST ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("expected `HIST <time> <line>`, got {line:?}"))
}

/// Milliseconds since the Unix epoch of a time in exactly the form
/// `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$` (RFC 3339, UTC, milliseconds), or `None` when the
/// text has any other form or an impossible field.
fn parse_hist_time(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 24 {
        return None;
    }
    let shape_ok = b.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        19 => c == b'.',
        23 => c == b'Z',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let num = |from: usize, to: usize| -> i64 { t[from..to].parse().unwrap() };
    let (y, mo, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (h, mi, s, ms) = (num(11, 13), num(14, 16), num(17, 19), num(20, 23));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian calendar.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

#[test]
fn the_history_time_checker_accepts_exactly_the_contract_form() {
    // A check of this file's own helper, so a HIST failure is never the checker's fault.
    assert_eq!(parse_hist_time("1970-01-01T00:00:00.000Z"), Some(0));
    assert_eq!(
        parse_hist_time("2026-12-01T16:05:09.123Z"),
        Some(1_796_141_109_123)
    );
    assert_eq!(
        parse_hist_time("2000-02-29T23:59:59.999Z"),
        Some(951_868_799_999)
    );
    for bad in [
        "2026-12-01T16:05:09Z",
        "2026-12-01T16:05:09.12Z",
        "2026-12-01T16:05:09.1234Z",
        "2026-12-01 16:05:09.123Z",
        "2026-12-01T16:05:09.123+00:00",
        "2026-12-01T16:05:09.123z",
        "2026-13-01T16:05:09.123Z",
        "2026-12-01T24:05:09.123Z",
        "",
    ] {
        assert_eq!(parse_hist_time(bad), None, "{bad:?}");
    }
}

/// Milliseconds since the Unix epoch now, by this machine's clock (the server's too).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap()
}

/// Reads the lines a newcomer gets right after `WELCOME` up to the marker line `end` (which a
/// present member sent after the newcomer's WELCOME), and returns them without the marker.
#[track_caller]
fn lines_until(c: &mut Client, end: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let line = c.next_line();
        if line == end {
            return got;
        }
        assert!(got.len() < 10_000, "[{}] no {end:?} after {got:?}", c.name);
        got.push(line);
    }
}

#[test]
fn history_is_exactly_the_last_n_room_messages_oldest_first() {
    const N: usize = 5;
    let server = Server::start(&["--auto-approve", "--history", &N.to_string()]);
    let mut c = room(&server, &["alice", "witness"]);
    let mut seen = Vec::new();
    for i in 0..N + 5 {
        c[0].send_line(&format!("message {i}"));
        seen.push(c[1].next_line());
    }
    assert_eq!(seen[N + 4], format!("MSG alice - message {}", N + 4));

    let mut carol = server.connect();
    assert_eq!(carol.login("carol"), 3);
    c[0].expect_exact("JOIN carol");
    c[1].expect_exact("JOIN carol");
    // Carol reads up to the live line; the others get it as their next line.
    let (alice, witness) = c.split_at_mut(1);
    marker(&mut witness[0], &mut [&mut alice[0]], "live");
    let got = lines_until(&mut carol, "MSG witness - live");
    let payloads: Vec<&str> = got.iter().map(|l| split_hist(l).1).collect();
    assert_eq!(
        payloads,
        seen[5..].iter().map(String::as_str).collect::<Vec<_>>(),
        "history of {N} after {} messages",
        N + 5
    );
}

#[test]
fn history_default_is_fifty() {
    let server = Server::start(&["--auto-approve"]);
    let mut c = room(&server, &["alice", "witness"]);
    let batch: String = (0..55).map(|i| format!("m{i:02}\n")).collect();
    c[0].send_raw(batch.as_bytes());
    for i in 0..55 {
        c[1].expect_exact(&format!("MSG alice - m{i:02}"));
    }
    let mut carol = server.login("carol");
    c[1].expect_exact("JOIN carol");
    c[1].send_line("live");
    let got = lines_until(&mut carol, "MSG witness - live");
    let payloads: Vec<&str> = got.iter().map(|l| split_hist(l).1).collect();
    let want: Vec<String> = (5..55).map(|i| format!("MSG alice - m{i:02}")).collect();
    assert_eq!(payloads, want, "default history");
}

#[test]
fn history_holds_msg_and_act_but_never_priv_join_leave_nick_or_info() {
    let mut server = Server::start(&["--auto-approve", "--history", "50"]);
    let mut c = room(&server, &["alice", "bob"]);
    let (alice, rest) = c.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut rest[0]);
    let mut want = Vec::new();

    alice.send_line("hello **room**");
    want.push(bob.expect("MSG alice - hello **room**"));
    alice.send_line("/me waves");
    want.push(bob.expect("ACT alice waves"));
    alice.send_line("/color red in red");
    want.push(bob.expect("MSG alice red in red"));
    alice.send_line("/private bob never in history");
    bob.expect_exact("PRIV alice bob - never in history");
    alice.send_line("/msg bob nor this");
    bob.expect_exact("PRIV alice bob - nor this");
    bob.send_line("before rename");
    want.push(alice.expect("MSG bob - before rename"));
    // JOIN and LEAVE of a passer-by, an operator notice, a rename, an error.
    let passer = server.login("passer");
    alice.expect_exact("JOIN passer");
    bob.expect_exact("JOIN passer");
    drop(passer);
    alice.expect_exact("LEAVE passer quit");
    bob.expect_exact("LEAVE passer quit");
    server.console("say operator notice");
    alice.expect_exact("INFO operator: operator notice");
    bob.expect_exact("INFO operator: operator notice");
    bob.send_line("/nick bobby");
    alice.expect_exact("NICK bob bobby");
    want.push(bob.expect("NICK bob bobby")); // issue 20: bob spoke, so his rename is history
    bob.send_line("/dance");
    bob.expect("ERROR unknown-command ");
    bob.send_line("after rename");
    want.push(alice.expect("MSG bobby - after rename"));
    bob.send_line("/me grins");
    want.push(alice.expect("ACT bobby grins"));

    let mut carol = server.login("carol");
    alice.expect_exact("JOIN carol");
    bob.expect_exact("JOIN carol");
    marker_as(bob, "bobby", &mut [alice], "live");
    let got = lines_until(&mut carol, "MSG bobby - live");
    let payloads: Vec<&str> = got.iter().map(|l| split_hist(l).1).collect();
    // Old lines keep the old name: they are exactly what members got then.
    assert_eq!(payloads, want, "history, whole: {got:#?}");
}

#[test]
fn history_lines_are_the_original_bytes_with_the_relay_time() {
    let server = Server::start(&["--auto-approve", "--history", "10"]);
    let mut c = room(&server, &["alice", "witness"]);
    let sent = [
        "plain",
        "  spaced   out  ",
        "ünïcödé ✓ 漢字 **bold __and italic__**",
        "esc\u{1b}[31mape\u{7} and bidi\u{202E}x and sep\u{2028}arator",
        "/color Magenta colored ~~strike~~",
        "//slash",
        "/me acts **loudly**",
    ];
    let before = now_ms();
    let mut seen = Vec::new();
    for s in sent {
        c[0].send_line(s);
        seen.push(c[1].next_line());
    }
    let after = now_ms();
    assert_eq!(seen[3], "MSG alice - esc[31mape and bidix and separator");

    let mut carol = server.login("carol");
    c[1].expect_exact("JOIN carol");
    c[1].send_line("live");
    let got = lines_until(&mut carol, "MSG witness - live");
    assert_eq!(got.len(), sent.len(), "{got:#?}");
    let mut last = i64::MIN;
    for (line, witnessed) in got.iter().zip(&seen) {
        let (time, payload) = split_hist(line);
        assert_eq!(
            payload, witnessed,
            "HIST payload must be the line as relayed"
        );
        let t = parse_hist_time(time).unwrap_or_else(|| {
            panic!("time {time:?} in {line:?} is not RFC 3339 UTC with milliseconds")
        });
        // The server relayed each line between our first send and the witness's last read
        // (a second of slack for clock granularity).
        assert!(
            t >= before - 1000 && t <= after + 1000,
            "time {time:?} ({t} ms) outside the relay window {before}..{after} ms"
        );
        assert!(t >= last, "history times go backwards at {line:?}");
        last = t;
    }
}

#[test]
fn history_zero_sends_none() {
    let server = Server::start(&["--auto-approve", "--history", "0"]);
    let mut c = room(&server, &["alice", "witness"]);
    c[0].send_line("said before");
    c[1].expect_exact("MSG alice - said before");
    c[0].send_line("/me acted before");
    c[1].expect_exact("ACT alice acted before");
    let mut carol = server.login("carol");
    c[0].expect_exact("JOIN carol");
    c[1].expect_exact("JOIN carol");
    // Carol's very next line after WELCOME is the live marker.
    let (alice, witness) = c.split_at_mut(1);
    marker(&mut alice[0], &mut [&mut carol, &mut witness[0]], "live");
}

#[test]
fn history_comes_before_live_lines_with_no_gap_or_repeat() {
    // Alice talks steadily while carol joins: carol must get HIST lines first, then live lines,
    // and together they must run on without a message lost or given twice.
    const TOTAL: usize = 300;
    const N: usize = 20;
    let server = Server::start(&["--auto-approve", "--history", &N.to_string(), "--rate", "0"]);
    let mut c = room(&server, &["alice", "witness"]);
    let mut alice = c.remove(0);
    let mut witness = c.remove(0);
    let stream = alice.stream().try_clone().unwrap();
    let talker = thread::spawn(move || {
        let mut s = stream;
        for i in 0..TOTAL {
            s.write_all(format!("n{i:03}\n").as_bytes()).unwrap();
            // Pacing the load (not synchronising): the join must land mid-conversation.
            thread::sleep(Duration::from_millis(2));
        }
    });
    // Join once the room is well past N messages.
    for i in 0..50 {
        witness.expect_exact(&format!("MSG alice - n{i:03}"));
    }
    let mut carol = server.login("carol");
    talker.join().unwrap();

    let mut hist = Vec::new();
    let mut live = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while live.last().map(String::as_str) != Some("MSG alice - n299") {
        assert!(Instant::now() < deadline, "carol never got n299");
        let line = carol.next_line();
        if line.starts_with("HIST ") {
            assert!(live.is_empty(), "HIST {line:?} after live lines {live:?}");
            hist.push(split_hist(&line).1.to_owned());
        } else {
            live.push(line);
        }
    }
    assert_eq!(hist.len(), N, "history length: {hist:#?}");
    let all: Vec<&String> = hist.iter().chain(&live).collect();
    let first: usize = all[0]
        .strip_prefix("MSG alice - n")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {:?}", all[0]));
    for (k, line) in all.iter().enumerate() {
        assert_eq!(
            **line,
            format!("MSG alice - n{:03}", first + k),
            "line {k} of carol's history+live stream ({} HIST)",
            hist.len()
        );
    }
    eprintln!(
        "carol joined after n{:03}: {} HIST, {} live",
        first + N - 1,
        hist.len(),
        live.len()
    );
    // The rest of the witness's stream is intact too.
    witness.skip_until("MSG alice - n299");
    alice.send_line("/who");
    alice.skip_until("INFO online (3): ");
}
