//! Issue 20: a server that floods long lines cannot make the client hold hundreds of MiB. The
//! real client (line mode, in a pipe) gets 5000 lines of 64 KiB from a fake server; its peak
//! resident memory stays far under what keeping them would take (328 MB), because the
//! scrollback is bounded in bytes (`core::store::MAX_BYTES`, 8 MiB) as well as in messages, and
//! the channel from the network thread holds at most `net::CHANNEL_SIZE` lines.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use util::{client_bin, fake_server};

/// Lines the server sends, and their length: as measured in the finding (294-302 MiB kept).
const LINES: usize = 5000;
const TEXT: usize = 64 * 1024 - 64;

/// The client's peak resident memory may be at most this: the scrollback's 8 MiB, 4 MiB in
/// the channel, and the program itself, with room to spare; a tenth of the unbounded figure.
const MAX_PEAK_KIB: u64 = 48 * 1024;

/// The peak resident set of process `pid`, in KiB (`VmHWM` in /proc).
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn five_thousand_lines_of_64_kib_stay_under_the_scrollback_bound() {
    let (addr, script) = fake_server(|mut conn| {
        conn.send("NAME? name please");
        conn.expect("bob");
        conn.send("WELCOME bob 2");
        let text = "word ".repeat(TEXT / 5);
        for i in 0..LINES {
            conn.send(&format!("MSG alice - {i} {text}"));
        }
        conn.send("INFO done");
        conn.expect("/leave");
        conn.send("BYE goodbye");
    });
    let config = tempfile::tempdir().unwrap();
    let mut child = Command::new(client_bin())
        .args(["--name", "bob", &addr])
        .env("CHAT_CONFIG_DIR", config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut messages = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.starts_with("<alice> ") {
                messages += 1;
            } else if line == "-- done" {
                let _ = done_tx.send(messages);
            }
        }
    });
    // Generous: a debug build on a loaded two-core machine renders 328 MB of text.
    let messages = done_rx
        .recv_timeout(Duration::from_secs(300))
        .expect("the client showed every line in time");
    assert_eq!(messages, LINES, "every line is shown");
    let peak = peak_kib(child.id());
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    script.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        peak <= MAX_PEAK_KIB,
        "peak resident memory {peak} KiB, over {MAX_PEAK_KIB} KiB"
    );
    eprintln!("peak resident memory after {LINES} lines of 64 KiB: {peak} KiB");
}
