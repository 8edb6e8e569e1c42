//! TLS, end to end: the real binary on real sockets, a rustls client that trusts a certificate
//! authority made at test time (rcgen), and `openssl s_client` as a member typing by hand.
//!
//! Every wait is a read with a deadline, never a sleep. The server and the certificates come from
//! the test kit (`Server`, `Pki`); the member here speaks over any byte stream, TLS or plain.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self};
use std::thread;
use std::time::{Duration, Instant};

use chat_testkit::{listening_ports, plain, relay, tcp, tls, Member, Pki, Server};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;

/// How long one expected line (or close) may take. Generous: two cores are shared with builds.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long the binary may take to print its `listening on` lines.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the server with `--auto-approve`, the plain listener unless `plain` is false
/// (`--listen off`), a TLS listener serving `pki`'s installed certificate, and `extra` flags.
#[track_caller]
fn start(pki: &Pki, plain: bool, extra: &[&str]) -> Server {
    let builder = if plain {
        Server::builder()
    } else {
        Server::builder().listen("off")
    };
    builder
        .args(&["--auto-approve"])
        .tls(&pki.cert_path(), &pki.key_path())
        .args(extra)
        .start()
}

fn path_arg(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn a_tls_member_and_a_plain_member_chat_together() {
    let pki = Pki::new("chat");
    let leaf = pki.leaf("first");
    pki.install(&leaf);
    let server = start(&pki, true, &[]);
    assert_ne!(server.addr().port(), server.tls_addr().port());

    let mut alice = tls(server.tls_addr(), &pki.client_config());
    assert_eq!(alice.served_cert(), leaf.der);
    alice.login("alice");
    let mut bob = plain(server.addr());
    bob.login("bob");
    assert_eq!(alice.expect("JOIN "), "JOIN bob");
    relay(&mut alice, &mut bob, "hello over **TLS**");
    relay(&mut bob, &mut alice, "hello in the clear");
    // A long line crosses several TLS records both ways.
    let long = "x".repeat(4000);
    relay(&mut alice, &mut bob, &long);
    relay(&mut bob, &mut alice, &long);
    alice.send("/leave");
    alice.expect("BYE ");
    alice.expect_closed(TIMEOUT);
    assert_eq!(bob.expect("LEAVE "), "LEAVE alice left");
}

#[test]
fn openssl_s_client_is_a_raw_member() {
    let pki = Pki::new("openssl");
    pki.install(&pki.leaf("openssl"));
    let server = start(&pki, true, &[]);

    let mut openssl = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect"])
        .arg(server.tls_addr().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed");
    let mut typed = openssl.stdin.take().unwrap();
    let shown = openssl.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(shown).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || lines.recv_timeout(TIMEOUT).expect("a line from openssl");

    assert!(next().starts_with("NAME? "));
    writeln!(typed, "carol").unwrap();
    assert_eq!(next(), "WELCOME carol 1");
    let mut dave = plain(server.addr());
    dave.login("dave");
    assert_eq!(next(), "JOIN dave");
    dave.send("said to carol");
    assert_eq!(next(), "MSG dave - said to carol");
    writeln!(typed, "typed by hand").unwrap();
    assert_eq!(dave.skip_until("MSG "), "MSG carol - typed by hand");
    writeln!(typed, "/leave").unwrap();
    assert!(next().starts_with("BYE "));
    assert_eq!(dave.expect("LEAVE "), "LEAVE carol left");
    let _ = openssl.kill();
    let _ = openssl.wait();
}

#[test]
fn a_handshake_that_never_finishes_is_closed_by_the_login_timeout() {
    let pki = Pki::new("timeout");
    pki.install(&pki.leaf("timeout"));
    let server = start(&pki, false, &["--login-timeout", "1"]);

    // One never starts the handshake; the other sends half a ClientHello and stops.
    let started = Instant::now();
    let mut silent = Member::new(tcp(server.tls_addr()));
    let mut hello = Vec::new();
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(pki.client_config(), name).unwrap();
    client.write_tls(&mut hello).unwrap();
    let mut halfway = Member::new(tcp(server.tls_addr()));
    halfway.stream.write_all(&hello[..hello.len() / 2]).unwrap();
    // And a member who finishes in time is not affected.
    let mut ok = tls(server.tls_addr(), &pki.client_config());
    ok.login("erin");

    silent.expect_closed(TIMEOUT);
    halfway.expect_closed(TIMEOUT);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed by the login timeout, not at once: {:?}",
        started.elapsed()
    );
    ok.send("/who");
    assert!(ok.expect("INFO ").contains("erin"));
}

#[test]
fn sighup_serves_a_new_certificate_to_new_connections_while_old_ones_chat_on() {
    let pki = Pki::new("reload");
    let first = pki.leaf("first");
    pki.install(&first);
    let mut server = start(&pki, true, &[]);
    let config = pki.client_config();

    let mut alice = tls(server.tls_addr(), &config);
    assert_eq!(alice.served_cert(), first.der);
    alice.login("alice");

    let second = pki.leaf("second");
    pki.install(&second);
    server.signal("HUP");
    let said = server.expect_console("reloaded the TLS certificate from ");
    assert!(said.ends_with("cert.pem"), "{said}");

    let mut bob = tls(server.tls_addr(), &config);
    assert_eq!(
        bob.served_cert(),
        second.der,
        "a new connection gets the new pair"
    );
    bob.login("bob");
    assert_eq!(alice.expect("JOIN "), "JOIN bob");
    relay(&mut alice, &mut bob, "still on the old certificate");
    relay(&mut bob, &mut alice, "on the new one");
}

#[test]
fn a_broken_certificate_on_reload_keeps_the_old_one() {
    let pki = Pki::new("broken");
    let first = pki.leaf("first");
    pki.install(&first);
    let mut server = start(&pki, true, &[]);
    let config = pki.client_config();
    let mut alice = tls(server.tls_addr(), &config);
    alice.login("alice");

    // Not PEM at all.
    std::fs::write(pki.cert_path(), "this is not a certificate\n").unwrap();
    server.signal("HUP");
    let said = server.expect_console("error: cannot reload the TLS certificate: ");
    assert!(
        said.contains("cert.pem"),
        "the error names the file: {said}"
    );
    let mut bob = tls(server.tls_addr(), &config);
    assert_eq!(bob.served_cert(), first.der);
    bob.login("bob");

    // A certificate whose key is not the one on disk (caught half-way through a renewal).
    let second = pki.leaf("second");
    std::fs::write(pki.cert_path(), &second.cert_pem).unwrap();
    server.signal("HUP");
    server.expect_console("error: cannot reload the TLS certificate: ");
    let mut carol = tls(server.tls_addr(), &config);
    assert_eq!(carol.served_cert(), first.der);
    carol.login("carol");
    relay(&mut alice, &mut carol, "nobody was dropped");
    assert_eq!(bob.skip_until("MSG "), "MSG alice - nobody was dropped");
}

#[test]
fn tls_flags_that_cannot_work_exit_2() {
    let pki = Pki::new("flags");
    pki.install(&pki.leaf("flags"));
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let key = path_arg(&pki.key_path());
    let cert = path_arg(&pki.cert_path());
    let missing = path_arg(&pki.path("missing.pem"));
    for (args, says) in [
        (s(&["--tls-listen", "127.0.0.1:0"]), "--tls-cert"),
        (
            s(&["--tls-listen", "127.0.0.1:0", "--tls-cert", &cert]),
            "--tls-key",
        ),
        (s(&["--tls-cert", &cert, "--tls-key", &key]), "--tls-listen"),
        (s(&["--listen", "off"]), "--tls-listen"),
        (
            s(&[
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &missing,
                "--tls-key",
                &key,
            ]),
            "missing.pem",
        ),
        (
            s(&[
                "--tls-listen",
                "127.0.0.1:0",
                "--tls-cert",
                &key,
                "--tls-key",
                &key,
            ]),
            "no PEM certificate",
        ),
    ] {
        let mut all = s(&["--listen", "127.0.0.1:0"]);
        if args.first().is_some_and(|a| a == "--listen") {
            all.clear();
        }
        all.extend(args.iter().cloned());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let (status, _, stderr) = Server::run_to_exit(&all, START_TIMEOUT);
        assert_eq!(status.code(), Some(2), "{all:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{all:?} should mention {says}: {stderr}"
        );
    }
}

#[test]
fn listen_off_serves_tls_only() {
    let pki = Pki::new("off");
    pki.install(&pki.leaf("off"));
    let server = start(&pki, false, &[]);
    assert!(!server.has_plain());
    assert_eq!(
        listening_ports(server.pid()),
        vec![server.tls_addr().port()],
        "only the TLS listener is open"
    );
    let mut alice = tls(server.tls_addr(), &pki.client_config());
    alice.login("alice");
    alice.send("/who");
    assert!(alice.expect("INFO ").contains("alice"));
}

#[test]
fn a_tls_member_that_stops_reading_is_dropped_like_a_plain_one() {
    let pki = Pki::new("stall");
    pki.install(&pki.leaf("stall"));
    let server = start(
        &pki,
        true,
        &[
            "--rate",
            "0",
            "--max-queue",
            "65536",
            "--send-buffer",
            "8192",
        ],
    );
    let mut sleepy = tls(server.tls_addr(), &pki.client_config());
    sleepy.login("sleepy");
    let mut talker = plain(server.addr());
    talker.login("talker");
    // Far more than --max-queue, the TLS buffer and both kernels' buffers together hold.
    let line = "y".repeat(1000);
    let mut sent = 0;
    let deadline = Instant::now() + TIMEOUT * 3;
    while sent < 20_000 && Instant::now() < deadline {
        talker.send(&line);
        sent += 1;
        if sent % 500 == 0 {
            // Stop as soon as the server says it let sleepy go.
            if let Ok(l) = talker.try_line(Duration::ZERO) {
                assert_eq!(l, "LEAVE sleepy dropped");
                return;
            }
        }
    }
    assert_eq!(talker.expect("LEAVE "), "LEAVE sleepy dropped");
}

/// CPU time of `pid`'s main thread so far (the server has one), in ns, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    let ns: u64 = stat.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

/// What a delivery costs the server over TLS and in the clear: one sender, `MEMBERS`
/// receivers; `BURST` room messages sent in one write (the server gathers many lines per write,
/// so TLS encrypts few, large records), then `STEP` messages one at a time, each read by
/// everyone before the next (one small record per delivery). A measurement, not a check: run
/// with `cargo test -p chat-server --test tls -- --ignored --nocapture` (add `--release` for
/// figures comparable with docs/PERFORMANCE.md).
#[test]
#[ignore]
fn measure_cpu_per_delivery_tls_and_plain() {
    const MEMBERS: usize = 100;
    const BURST: usize = 5000;
    const STEP: usize = 200;
    let pki = Pki::new("measure");
    pki.install(&pki.leaf("measure"));
    let server = start(&pki, true, &["--rate", "0"]);
    let config = pki.client_config();
    let line = format!("{}\n", "m".repeat(40));
    for (round, use_tls) in [false, true, false, true].into_iter().enumerate() {
        let mut readers: Vec<Box<dyn FnMut(usize)>> = Vec::new();
        for i in 0..MEMBERS {
            let name = format!("r{round}x{i}");
            if use_tls {
                let mut m = tls(server.tls_addr(), &config);
                m.login(&name);
                readers.push(Box::new(move |n| count_msgs(&mut m, n)));
            } else {
                let mut m = plain(server.addr());
                m.login(&name);
                readers.push(Box::new(move |n| count_msgs(&mut m, n)));
            }
        }
        let mut sender = plain(server.addr());
        sender.login(&format!("s{round}"));
        let kind = if use_tls { "TLS" } else { "plain" };
        let pid = server.pid();

        let before = cpu_time(pid);
        sender
            .stream
            .write_all(line.repeat(BURST).as_bytes())
            .unwrap();
        readers.iter_mut().for_each(|read| read(BURST));
        let per = (cpu_time(pid) - before).as_nanos() as f64 / (MEMBERS * BURST) as f64;
        println!("{kind} burst: {per:.0} ns of server CPU per delivery");

        let before = cpu_time(pid);
        for _ in 0..STEP {
            sender.stream.write_all(line.as_bytes()).unwrap();
            readers.iter_mut().for_each(|read| read(1));
        }
        let per = (cpu_time(pid) - before).as_nanos() as f64 / (MEMBERS * STEP) as f64;
        println!("{kind} one at a time: {per:.0} ns of server CPU per delivery");
        sender.send("/leave");
    }
}

fn count_msgs<S: Read + Write>(m: &mut Member<S>, want: usize) {
    let mut got = 0;
    while got < want {
        match m.try_line(TIMEOUT * 6) {
            Ok(l) if l.starts_with("MSG ") => got += 1,
            Ok(_) => {}
            Err(e) => panic!("after {got} lines: {e:?}"),
        }
    }
}
