//! A cluster's catch-up after a Redis hiccup is paced (issue 20, "a Redis hiccup drops other
//! servers' readers"): Redis stops for 3.5 s, shorter than `--cluster-timeout`, while two
//! members talk at their allowed rate; afterwards the other server gets their lines in one
//! batch (about 1.4 MB, past a reader's 1 MiB `--max-queue`) and must hand them to its fast,
//! healthy reader as it reads instead of all in one round (which cut the reader off on main
//! 1b43220). Real binaries, a real `redis-server` (scripts/test.sh installs it; a test without
//! it fails, never skips), real sockets; the only wait that is not a read is the outage itself.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::redis::Redis;
use chat_testkit::{filler, Client, Console, End, Server};

/// Lines each talker sends during the outage, and bytes of text each.
const LINES: usize = 180;
const TEXT: usize = 4000;
/// The outage, shorter than the cluster timeout below.
const OUTAGE: Duration = Duration::from_millis(3500);
const CLUSTER_TIMEOUT: &str = "10";

fn node(redis: &Redis) -> Server {
    let url = redis.url();
    let args = [
        "--cluster",
        url.as_str(),
        "--cluster-timeout",
        CLUSTER_TIMEOUT,
        "--auto-approve",
    ];
    let mut s = Server::start_with(&args, Console::Piped);
    s.expect_console("cluster: in the room as server ");
    s
}

/// Reads until `want` lines starting with `prefix` arrived (others skipped), within `within`.
fn read_lines(c: &mut Client, prefix: &str, want: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.try_next_line(left) {
            Ok(line) if line.starts_with(prefix) => got.push(line),
            Ok(_) => {}
            Err(e @ (End::Eof | End::Timeout | End::Error(_))) => panic!(
                "after {} of {want} lines starting with {prefix:?}: {e:?}",
                got.len()
            ),
        }
    }
    got
}

#[test]
fn after_a_short_redis_outage_a_healthy_reader_on_another_server_gets_everything() {
    let redis = Redis::start();
    let s1 = node(&redis);
    let s2 = node(&redis);
    let mut t1 = s1.login("t1");
    let mut reader = s2.login("reader");
    t1.skip_until("JOIN reader");
    let mut t2 = s1.login("t2");
    t1.skip_until("JOIN t2");
    reader.skip_until("JOIN t2");
    redis.signal("STOP");
    let stopped = Instant::now();
    // Both talk at their allowed rate (the server paces their reading): written at once here.
    let text = filler("x", TEXT);
    let mut writers = Vec::new();
    for (name, c) in [("t1", &t1), ("t2", &t2)] {
        let mut stream = c.stream().try_clone().unwrap();
        let payload: String = (0..LINES)
            .map(|i| format!("{name} {i:04} {text}\n"))
            .collect();
        writers.push(thread::spawn(move || stream.write_all(payload.as_bytes())));
    }
    // Their server took every line; all of them wait for Redis (the talkers too get each
    // other's lines only as the room's log brings them back: one order for the room).
    for w in writers {
        w.join().unwrap().unwrap();
    }
    let outage = stopped.elapsed();
    assert!(
        outage < Duration::from_secs(8),
        "the talkers took {outage:?}: too slow a machine for a short outage"
    );
    thread::sleep(OUTAGE.saturating_sub(outage));
    redis.signal("CONT");
    let resumed = Instant::now();
    // The reader reads as fast as it can: it must get every line, once, in each sender's order.
    let got = read_lines(&mut reader, "MSG t", 2 * LINES, Duration::from_secs(30));
    let bytes: usize = got.iter().map(|l| l.len() + 1).sum();
    eprintln!(
        "after a {:?} Redis stop the reader on the other server got {} lines, {bytes} bytes, in {:?}",
        stopped.elapsed() - resumed.elapsed(),
        got.len(),
        resumed.elapsed()
    );
    for name in ["t1", "t2"] {
        let mine: Vec<usize> = got
            .iter()
            .filter(|l| l.starts_with(&format!("MSG {name} - ")))
            .map(|l| {
                l[format!("MSG {name} - {name} ").len()..][..4]
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(mine, (0..LINES).collect::<Vec<_>>(), "{name}'s lines");
    }
    read_lines(&mut t1, "MSG t2 - ", LINES, Duration::from_secs(20));
    read_lines(&mut t2, "MSG t1 - ", LINES, Duration::from_secs(20));
    // Still in the room: a line both ways.
    reader.send_line("still here");
    t1.skip_until("MSG reader - still here");
    t1.send_line("good");
    reader.skip_until("MSG t1 - good");
}
