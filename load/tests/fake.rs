//! chat-load against a fake chat server that misbehaves on purpose: it must notice. The fake
//! admits members one at a time (`NAME?`, name, `WELCOME`, `JOIN` to the earlier ones), then
//! relays room messages wrongly: swallowing them, or delivering each twice, or swapping each
//! pair. A generator that reported zero loss, duplication or reordering here would be useless.
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

use util::run_load;

/// How the fake relays a room message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// Not at all.
    Swallow,
    /// Twice to every other member.
    Twice,
    /// Each pair of one sender's messages in reverse order (the odd last one normally).
    SwapPairs,
}

/// Starts the fake for `members` members; returns its address. Its threads end with the test
/// process (they block only on sockets with timeouts or on accept).
fn start_fake(members: usize, relay: Relay) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let conns: Arc<Mutex<Vec<(String, TcpStream)>>> = Arc::new(Mutex::new(Vec::new()));
    thread::spawn(move || {
        for _ in 0..members {
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
                writer
                    .write_all(format!("WELCOME {name} {online}\n").as_bytes())
                    .unwrap();
                for (_, other) in all.iter_mut() {
                    let _ = other.write_all(format!("JOIN {name}\n").as_bytes());
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
    for line in reader.lines() {
        let Ok(text) = line else {
            return;
        };
        let mut out = Vec::new();
        match relay {
            Relay::Swallow => continue,
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
        &[
            "-n",
            "4",
            "-s",
            "2",
            "-m",
            "10",
            "-w",
            "3",
            "--parallel",
            "1",
            "--stall",
            "1",
            "--timeout",
            "20",
        ],
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
        &[
            "-n",
            "3",
            "-s",
            "1",
            "-m",
            "20",
            "-w",
            "4",
            "--parallel",
            "1",
            "--timeout",
            "20",
        ],
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
        &[
            "-n",
            "3",
            "-s",
            "1",
            "-m",
            "20",
            "-w",
            "0",
            "--parallel",
            "1",
            "--timeout",
            "20",
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.int("delivered"), 20 * 2, "{}", r.json);
    // In each swapped pair the first message arrives second: 10 pairs, 2 receivers.
    assert_eq!(r.int("out_of_order"), 10 * 2, "{}", r.json);
    assert_eq!(r.int("duplicated"), 0, "{}", r.json);
    assert_eq!(r.int("lost"), 0, "{}", r.json);
}
