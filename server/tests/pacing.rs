//! Byte pacing, against the real `chat-server` binary: `--burst-bytes` and `--rate-bytes` pace a
//! sender by bytes without losing lines, an allowed burst never drops a reader at a modest pace,
//! `--rate 0` turns byte pacing off too, and a burst that cannot fit `--max-queue` refuses to
//! start.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::{expect_online, filler, host, light, Client, Server, TIMEOUT};

#[test]
fn a_byte_burst_does_not_drop_a_reader_at_a_modest_pace() {
    // Default limits: 500 lines of 4000 bytes at once are within the line burst (500), but 2 MB
    // would overflow the 1 MiB queue of a reader taking about 500 KB/s. Byte pacing must slow
    // the sender instead, so the reader gets all 500 lines and is never dropped.
    let _lock = light();
    let server = Server::start(&["--auto-approve"]);
    let mut s = server.login("s");
    let mut r = Client::connect_from_with(server.addr(), host(1), Some(64 * 1024));
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

/// The pacing flags under test and 50 lines of 1000 bytes from `a` to `b` in one write: starts
/// the server with `--auto-approve` and `flags`, checks that `b` gets every line in order, and
/// returns how long they took, with the server and both members (nothing unread).
#[track_caller]
fn fifty_kb(flags: &[&str]) -> (Server, Client, Client, Duration) {
    let server = Server::builder()
        .args(&["--auto-approve"])
        .args(flags)
        .start();
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_exact("JOIN b");
    let pad = filler("", 996);
    let batch: String = (0..50).map(|i| format!("{i:03} {pad}\n")).collect();
    let start = Instant::now();
    a.send_raw(batch.as_bytes());
    for i in 0..50 {
        b.expect_exact(&format!("MSG a - {i:03} {pad}"));
    }
    (server, a, b, start.elapsed())
}

#[test]
fn rate_bytes_paces_a_sender_by_bytes_without_losing_lines() {
    let _lock = light();
    // 50 lines of 1000 bytes: 10 kB at once, then 40 kB at 20 kB/s, about 2 s. The line limits
    // (50 per second, burst 500) would let all of them through at once.
    let (_server, mut a, mut b, took) =
        fifty_kb(&["--burst-bytes", "10000", "--rate-bytes", "20000"]);
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
    // The same 50 kB as above, which byte pacing would spread over about 2 s.
    let (_server, _a, _b, took) = fifty_kb(&[
        "--rate",
        "0",
        "--burst-bytes",
        "10000",
        "--rate-bytes",
        "20000",
    ]);
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
