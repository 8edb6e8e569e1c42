//! Replays are paced, never dumped (issue 20, "one member can lock the room"): a history of long
//! lines longer than a newcomer's `--max-queue` reaches the newcomer whole, in order, before any
//! live line, and nobody is dropped for it. Real binary, real sockets, bounded in time.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chat_testkit::{filler, light, Client, End, Server};

/// Lines in the history, and bytes of text each: 400 x ~4 KiB is ~1.6 MB, past the default
/// 1 MiB `--max-queue` (on main 1b43220 every newcomer was dropped before its `WELCOME`).
const LINES: usize = 400;
const TEXT: usize = 4000;
/// The whole test's bound.
const BOUND: Duration = Duration::from_secs(30);

/// Has `alice` post `LINES` long lines that a witness reads, so all are in the history.
fn fill_history(server: &Server) -> (Client, Client) {
    let mut alice = server.login("alice");
    let mut witness = server.login("witness");
    alice.expect("JOIN witness");
    for i in 0..LINES {
        alice.send_line(&format!("{i:04} {}", filler("h", TEXT)));
    }
    for i in 0..LINES {
        let line = witness.expect("MSG alice - ");
        assert!(line.starts_with(&format!("MSG alice - {i:04} ")), "{i}");
    }
    (alice, witness)
}

/// Reads lines until `done` says so, within `BOUND`; panics on end of stream.
fn read_until(c: &mut Client, mut done: impl FnMut(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + BOUND;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.try_next_line(left) {
            Ok(line) => {
                let stop = done(&line);
                got.push(line);
                if stop {
                    return got;
                }
            }
            Err(e @ (End::Eof | End::Timeout | End::Error(_))) => {
                panic!("after {} lines: {e:?}; last {:?}", got.len(), got.last())
            }
        }
    }
}

#[test]
fn a_history_of_long_lines_reaches_a_newcomer_whole_and_in_order() {
    let _lock = light();
    let history = LINES.to_string();
    let server = Server::start(&["--auto-approve", "--rate", "0", "--history", &history]);
    let (mut alice, _witness) = fill_history(&server);
    let mut newcomer = server.connect();
    newcomer.expect("NAME? ");
    newcomer.send_line("newcomer");
    // A live line right away: whether it lands before the admission (then it is history) or
    // after, it must come after every HIST line.
    alice.send_line("live one");
    newcomer.expect_welcome("newcomer");
    let got = read_until(&mut newcomer, |l| l == "MSG alice - live one");
    let hist: Vec<&String> = got.iter().filter(|l| l.starts_with("HIST ")).collect();
    assert_eq!(hist.len(), LINES, "the whole history, nothing dropped");
    let first_live = got.iter().position(|l| !l.starts_with("HIST ")).unwrap();
    assert!(
        got[first_live..].iter().all(|l| !l.starts_with("HIST ")),
        "a HIST line after a live one: {:?}",
        &got[first_live..first_live + 3.min(got.len() - first_live)]
    );
    // In order: each HIST carries the line as relayed, numbered.
    let mut last = None;
    for line in &hist {
        let body = line.splitn(3, ' ').nth(2).unwrap();
        assert!(body.starts_with("MSG alice - "), "{body:.40}");
        let n: usize = body["MSG alice - ".len()..][..4]
            .parse()
            .unwrap_or(usize::MAX);
        if n != usize::MAX {
            assert!(last.is_none_or(|l| n > l), "out of order at {n}");
            last = Some(n);
        }
    }
    // Still a member: a line both ways.
    newcomer.send_line("thanks");
    alice.skip_until("MSG newcomer - thanks");
    alice.send_line("welcome");
    newcomer.expect_exact("MSG alice - welcome");
}

#[test]
fn a_slow_reading_newcomer_gets_the_history_as_it_reads_and_is_not_dropped() {
    let _lock = light();
    let history = LINES.to_string();
    let server = Server::start(&["--auto-approve", "--rate", "0", "--history", &history]);
    let (mut alice, _witness) = fill_history(&server);
    // A small receive buffer: the server can hand the kernel only a little at a time.
    let source = "127.0.0.1".parse().unwrap();
    let mut newcomer = Client::connect_from_with(server.addr(), source, Some(4096));
    newcomer.expect("NAME? ");
    newcomer.send_line("slow");
    newcomer.expect_welcome("slow");
    // Read a few lines, pause (no sleep as synchronisation: this is the slow reader itself),
    // and meanwhile the room goes on.
    for _ in 0..10 {
        newcomer.expect("HIST ");
    }
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..20 {
        alice.send_line(&format!("live {i}"));
    }
    let got = read_until(&mut newcomer, |l| l == "MSG alice - live 19");
    let hist = got.iter().filter(|l| l.starts_with("HIST ")).count();
    assert_eq!(hist + 10, LINES, "the whole history");
    let lives: Vec<&String> = got.iter().filter(|l| l.starts_with("MSG ")).collect();
    assert_eq!(lives.len(), 20, "every live line, once");
}

#[test]
fn a_history_whose_slots_cannot_fit_the_queue_refuses_to_start() {
    let _lock = light();
    // 100000 entries of 8 bytes of slots each cannot fit a queue of 65536 bytes.
    let (status, out, err) = Server::run_to_exit(
        &[
            "--listen",
            "127.0.0.1:0",
            "--history",
            "100000",
            "--max-queue",
            "65536",
            "--burst-bytes",
            "1000",
            "--burst",
            "10",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(2), "{out} {err}");
    assert!(err.contains("--history"), "{err}");
}
