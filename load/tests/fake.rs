//! chat-load against a fake chat server that misbehaves on purpose: it must notice. The fake
//! admits members one at a time (`NAME?`, name, `WELCOME`, `JOIN` to the earlier ones), then
//! relays room messages wrongly: swallowing them, or delivering each twice, or swapping each
//! pair; or it leaves out or doubles JOIN notices, or sends lines it should not. A generator
//! that reported zero loss, duplication or reordering here would be useless. It can also relay
//! correctly but slowly, to check what the generator measures then.
//!
//! The fake runs on threads of the test process, on 127.0.0.1 port 0; every socket read has a
//! timeout, and chat-load's own `--timeout`/`--stall` bound each run.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use util::{args, run_load};

/// How the fake relays a room message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// Once to every other member, as a server should.
    Once,
    /// Once, but only after holding each message this long.
    Delay(Duration),
    /// Not at all.
    Swallow,
    /// Not at all, and reading nothing for this long first.
    SwallowLate(Duration),
    /// Twice to every other member.
    Twice,
    /// Each pair of one sender's messages in reverse order (the odd last one normally).
    SwapPairs,
}

/// What the fake does besides relaying.
#[derive(Debug, Clone, Copy)]
struct Faults {
    /// The member whose JOIN notice the first member never gets.
    skip_join_to_first: Option<usize>,
    /// The member whose JOIN notice every earlier member gets twice.
    double_join: Option<usize>,
    /// A line every member gets right after its `WELCOME`.
    after_welcome: Option<&'static str>,
}

const NO_FAULTS: Faults = Faults {
    skip_join_to_first: None,
    double_join: None,
    after_welcome: None,
};

/// Starts the fake for `members` members; returns its address. Its threads end with the test
/// process (they block only on sockets with timeouts or on accept).
fn start_fake(members: usize, relay: Relay) -> String {
    start_faulty(members, relay, NO_FAULTS)
}

/// [`start_fake`] with `faults`.
fn start_faulty(members: usize, relay: Relay, faults: Faults) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let conns: Arc<Mutex<Vec<(String, TcpStream)>>> = Arc::new(Mutex::new(Vec::new()));
    thread::spawn(move || {
        for index in 0..members {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            writer.write_all(b"NAME? choose a name\n").unwrap();
            let mut name = String::new();
            if reader.read_line(&mut name).is_err() {
                return;
            }
            let name = name.trim().to_owned();
            {
                let mut all = conns.lock().unwrap();
                let online = all.len() + 1;
                let extra = faults.after_welcome.unwrap_or("");
                writer
                    .write_all(format!("WELCOME {name} {online}\n{extra}").as_bytes())
                    .unwrap();
                let times = if faults.double_join == Some(index) {
                    2
                } else {
                    1
                };
                let join = format!("JOIN {name}\n").repeat(times);
                for (j, (_, other)) in all.iter_mut().enumerate() {
                    if j == 0 && faults.skip_join_to_first == Some(index) {
                        continue;
                    }
                    let _ = other.write_all(join.as_bytes());
                }
                all.push((name.clone(), writer));
            }
            let conns = Arc::clone(&conns);
            thread::spawn(move || relay_from(&name, reader, &conns, relay));
        }
    });
    addr
}

fn relay_from(
    name: &str,
    reader: BufReader<TcpStream>,
    conns: &Mutex<Vec<(String, TcpStream)>>,
    relay: Relay,
) {
    let mut held: Option<String> = None;
    if let Relay::SwallowLate(d) = relay {
        thread::sleep(d);
    }
    for line in reader.lines() {
        let Ok(text) = line else {
            return;
        };
        let mut out = Vec::new();
        match relay {
            Relay::Once => out.push(text),
            Relay::Delay(d) => {
                thread::sleep(d);
                out.push(text);
            }
            Relay::Swallow | Relay::SwallowLate(_) => continue,
            Relay::Twice => {
                out.push(text.clone());
                out.push(text);
            }
            Relay::SwapPairs => match held.take() {
                None => {
                    held = Some(text);
                    continue;
                }
                Some(first) => {
                    out.push(text);
                    out.push(first);
                }
            },
        }
        let mut all = conns.lock().unwrap();
        for (other, stream) in all.iter_mut() {
            if other != name {
                // One write for all of it: a copy sent on its own could arrive after the
                // generator has counted everything it expected and stopped reading.
                let batch: String = out.iter().map(|t| format!("MSG {name} - {t}\n")).collect();
                let _ = stream.write_all(batch.as_bytes());
            }
        }
    }
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn swallowed_messages_are_reported_lost() {
    let addr = start_fake(4, Relay::Swallow);
    let r = run_load(
        &addr,
        &args("-n 4 -s 2 -m 10 -w 3 --parallel 1 --stall 1 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.get("stalled"), "true", "{}", r.json);
    // Each sender filled its window of 3 and waited: 2 x 3 sent, each owed to 3 members.
    assert_eq!(r.int("sent"), 6, "{}", r.json);
    assert_eq!(r.int("lost"), 6 * 3, "{}", r.json);
    assert_eq!(r.int("unsent"), 20 - 6, "{}", r.json);
    assert_eq!(r.int("delivered"), 0);
}

#[test]
fn doubled_messages_are_reported_duplicated() {
    let addr = start_fake(3, Relay::Twice);
    let r = run_load(
        &addr,
        &args("-n 3 -s 1 -m 20 -w 4 --parallel 1 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.int("delivered"), 20 * 2, "{}", r.json);
    assert_eq!(r.int("duplicated"), 20 * 2, "{}", r.json);
    assert_eq!(r.int("lost"), 0, "{}", r.json);
    assert_eq!(r.int("out_of_order"), 0, "{}", r.json);
}

#[test]
fn swapped_messages_are_reported_out_of_order() {
    let addr = start_fake(3, Relay::SwapPairs);
    let r = run_load(
        &addr,
        &args("-n 3 -s 1 -m 20 -w 0 --parallel 1 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.int("delivered"), 20 * 2, "{}", r.json);
    // In each swapped pair the first message arrives second: 10 pairs, 2 receivers.
    assert_eq!(r.int("out_of_order"), 10 * 2, "{}", r.json);
    assert_eq!(r.int("duplicated"), 0, "{}", r.json);
    assert_eq!(r.int("lost"), 0, "{}", r.json);
}

#[test]
fn a_correct_relay_checks_out() {
    let addr = start_fake(3, Relay::Once);
    let r = run_load(
        &addr,
        &args("-n 3 -s 2 -m 20 --parallel 1 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.code, Some(0), "{}", r.json);
    assert_eq!(r.int("delivered"), 2 * 20 * 2, "{}", r.json);
}

/// `ok` (and the exit status) used to ignore refusals, server errors and foreign lines, while
/// the documentation said exit 0 meant nothing was refused.
#[test]
fn server_errors_and_foreign_lines_fail_the_run() {
    for (line, key) in [
        ("ERROR usage not like that\n", "server_errors"),
        ("DENIED go away\n", "refused"),
        ("HELLO there\n", "foreign"),
    ] {
        let faults = Faults {
            after_welcome: Some(line),
            ..NO_FAULTS
        };
        let addr = start_faulty(3, Relay::Once, faults);
        let r = run_load(
            &addr,
            &args("-n 3 -s 1 -m 5 --parallel 1 --timeout 20"),
            LIMIT,
        );
        // Every message arrived: only the extra line is wrong.
        assert_eq!(r.int("delivered"), 5 * 2, "{line:?}: {}", r.json);
        assert_eq!(r.int(key), 3, "{line:?}: {}", r.json);
        assert_eq!(r.get("ok"), "false", "{line:?}: {}", r.json);
        assert_eq!(r.code, Some(1), "{line:?}: {}", r.json);
    }
}

/// One missing JOIN used to leave the expected index stuck, so every later JOIN counted as out
/// of order; a duplicate counted as received and could hide a missing one.
#[test]
fn a_duplicate_join_does_not_hide_a_missing_one() {
    let faults = Faults {
        skip_join_to_first: Some(2),
        double_join: Some(3),
        ..NO_FAULTS
    };
    let addr = start_faulty(5, Relay::Swallow, faults);
    let r = run_load(
        &addr,
        &args("--scenario join-storm -n 5 --stall 0.5 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.int("admitted"), 5, "{}", r.json);
    // u0 never heard of u2; u0, u1 and u2 heard of u3 twice; nothing came out of order.
    assert_eq!(r.int("joins_missing"), 1, "{}", r.json);
    assert_eq!(r.int("joins_duplicated"), 3, "{}", r.json);
    assert_eq!(r.int("joins_out_of_order"), 0, "{}", r.json);
    assert_eq!(r.int("joins_received"), 5 * 4 / 2 - 1, "{}", r.json);
    // Waiting for the missing notice is what ended the run.
    assert_eq!(r.get("stalled"), "true", "{}", r.json);
}

/// Paced sends used to be stamped when they went out, so a sender held back (here by its
/// window, behind a slow server) showed none of its lateness: 50 ms per message instead of the
/// growing backlog (coordinated omission). And a sender whose window was closed kept the loop
/// spinning.
#[test]
fn paced_latency_counts_from_the_scheduled_send() {
    let addr = start_fake(2, Relay::Delay(Duration::from_millis(50)));
    // 10 messages due 10 ms apart; each takes 50 ms to go round, one at a time (-w 1): message
    // k is due at 10k ms, sent at ~50k ms, received at ~50k + 50 ms.
    let r = run_load(
        &addr,
        &args("-n 2 -s 1 --rate 100 --duration 0.1 -w 1 --parallel 1 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("delivered"), 10, "{}", r.json);
    // The last is ~410 ms late (40 x 9 + 50); stamped at its send it would show ~50 ms.
    assert!(r.num("lat_max_us") >= 300_000.0, "{}", r.json);
    assert!(r.num("lat_p50_us") >= 120_000.0, "{}", r.json);
    // Waiting for the window is no reason to spin.
    assert!(r.num("gen_busy") < 0.5, "{}", r.json);
}

/// With no window and no rate, the sender used to append all M messages to its output buffer
/// at once (here 22 MB; 2.5 GB in a big run). It now stops at 1 MiB and goes on as the socket
/// drains: the fake reads nothing for a while, so the socket fills first.
#[test]
fn an_unwindowed_sender_buffers_at_most_a_mebibyte() {
    let addr = start_fake(2, Relay::SwallowLate(Duration::from_millis(300)));
    let r = run_load(
        &addr,
        &args("-n 2 -s 1 -m 100000 --pad 200 -w 0 --parallel 1 --stall 2 --timeout 20"),
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    // All sent: it went on when the socket drained.
    assert_eq!(r.int("sent"), 100_000, "{}", r.json);
    assert!(r.int("gen_hwm_kib") < 16 * 1024, "{}", r.json);
}
