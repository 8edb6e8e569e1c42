//! The web listener and the metrics listener, raw: the real binary, HTTP requests and
//! WebSocket frames written by hand (`chat_testkit::ws`), every edge of the contract checked
//! for the RFC's answer: the page's headers and caching, the handshake's refusals, each frame
//! violation's close code, pings, floods, slow and oversized heads, and a WebSocket member in
//! the room with a plain (netcat-style) member.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat_testkit::ws::{self, frame, http, op, Ws};
use chat_testkit::{Client, Server, TIMEOUT};

/// A server with a web listener (and a metrics listener), auto-approving unless `args` say
/// otherwise; returns it with the web and metrics addresses.
fn start(args: &[&str]) -> (Server, SocketAddr, SocketAddr) {
    let mut all = vec![
        "--http-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    let mut server = Server::start(&all);
    let web = listening(&mut server, "(HTTP)");
    let metrics = listening(&mut server, "(metrics)");
    (server, web, metrics)
}

#[track_caller]
fn listening(server: &mut Server, what: &str) -> SocketAddr {
    let line = server.expect_console("listening on ");
    assert!(line.ends_with(what), "{line:?} should end with {what}");
    line["listening on ".len()..line.len() - what.len()]
        .trim()
        .parse()
        .unwrap()
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> ws::HttpAnswer {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"),
    )
    .1
}

/// Reads until the server closes, with a deadline; returns everything read.
#[track_caller]
fn read_to_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not closed within {within:?}; got {all:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(_) => {}
        }
    }
}

#[test]
fn the_page_comes_with_a_strict_policy_and_revalidates() {
    let (_server, web, _) = start(&["--auto-approve"]);
    let page = get(web, "/", "");
    assert_eq!(page.status, 200, "{}", page.head);
    let csp = page.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let etag = page.header("etag").unwrap().to_owned();
    let again = get(web, "/", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(again.status, 304, "{}", again.head);
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/markup.js", "text/javascript"),
    ] {
        let a = get(web, path, "");
        assert_eq!(a.status, 200, "{path}");
        assert!(
            a.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert!(a.header("content-security-policy").is_some(), "{path}");
    }
    assert_eq!(get(web, "/nothing-here", "").status, 404);
    let (_, post) = http(
        web,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    // Keep-alive: two requests on one connection, answered in order.
    let (mut stream, first) = http(web, "HEAD /app.css HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(first.status, 200);
    assert!(first.rest.is_empty(), "HEAD has no body");
    stream
        .write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(ws::read_head(&mut stream).status, 404);
}

#[test]
fn a_websocket_member_and_a_netcat_member_share_the_room() {
    let (server, web, _) = start(&["--auto-approve"]);
    let mut browser = Ws::connect(web);
    browser.expect("NAME?");
    browser.send_text("wanda");
    browser.expect("WELCOME wanda 1");
    let mut nc = server.connect_prompted();
    nc.send_line("nelly");
    nc.skip_until("WELCOME nelly");
    browser.expect("JOIN nelly");
    browser.send_text("hello **from** the web");
    nc.expect("MSG wanda - hello **from** the web");
    // A line that looks like someone else's is relayed as its sender's.
    nc.send_line("MSG wanda - I am wanda");
    assert_eq!(browser.next_line(), "MSG nelly - MSG wanda - I am wanda");
    // One text message holding two lines is two lines, as from netcat.
    browser.send_text("/me waves\nsecond");
    nc.expect("ACT wanda waves");
    nc.expect("MSG wanda - second");
    browser.send_text("/private nelly psst");
    nc.expect("PRIV wanda nelly - psst");
    browser.send_text("/leave");
    browser.expect("BYE");
    browser.expect_close(1000);
    nc.expect("LEAVE wanda left");
}

#[test]
fn each_bad_handshake_gets_the_rfc_answer() {
    let (_server, web, _) = start(&["--auto-approve"]);
    let host = web.to_string();
    let key = format!("Sec-WebSocket-Key: {}\r\n", ws::SAMPLE_KEY);
    let cases = [
        ("foreign origin", ws::upgrade_request(&host, "Origin: http://evil.example\r\n"), 403),
        (
            "no key",
            format!("GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            400,
        ),
        (
            "bad key",
            format!("GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: not-base64\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            400,
        ),
        (
            "old version",
            format!("GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key}Sec-WebSocket-Version: 8\r\n\r\n"),
            426,
        ),
        ("no upgrade", format!("GET /ws HTTP/1.1\r\nHost: {host}\r\n\r\n"), 400),
    ];
    for (name, request, status) in cases {
        let (mut stream, answer) = http(web, &request);
        assert_eq!(answer.status, status, "{name}: {}", answer.head);
        if status == 426 {
            assert_eq!(answer.header("sec-websocket-version"), Some("13"));
        }
        read_to_close(&mut stream, TIMEOUT);
    }
    // The page's own origin is welcome.
    let mut own = Ws::connect_with(web, &format!("Origin: http://{host}\r\n"));
    own.expect("NAME?");
}

#[test]
fn an_origin_flag_replaces_the_same_host_rule() {
    let (_server, web, _) = start(&["--auto-approve", "--http-origin", "https://chat.example"]);
    let host = web.to_string();
    let (_, own) = http(
        web,
        &ws::upgrade_request(&host, &format!("Origin: http://{host}\r\n")),
    );
    assert_eq!(own.status, 403);
    let mut listed = Ws::connect_with(web, "Origin: https://chat.example\r\n");
    listed.expect("NAME?");
}

#[test]
fn each_frame_violation_gets_its_close_code() {
    let (_server, web, _) = start(&["--auto-approve", "--max-line", "100"]);
    let mut flood = frame(op::TEXT, b"a", false);
    for _ in 0..100 {
        flood.extend(frame(op::CONT, b"", false));
    }
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked", frame(0x80 | op::TEXT, b"hi", true), 1002),
        ("binary", frame(0x80 | op::BINARY, b"hi", false), 1003),
        (
            "over --max-line",
            frame(0x80 | op::TEXT, &[b'x'; 101], false),
            1009,
        ),
        ("fragment flood", flood, 1008),
        ("reserved opcode", frame(0x80 | 3, b"", false), 1002),
        (
            "stray continuation",
            frame(0x80 | op::CONT, b"x", false),
            1002,
        ),
        ("long ping", frame(0x80 | op::PING, &[0; 126], false), 1002),
    ];
    for (name, bytes, code) in cases {
        let mut c = Ws::connect(web);
        c.expect("NAME?");
        let _ = c.send_raw(&bytes);
        let f = loop {
            let f = c
                .try_frame(TIMEOUT)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            if f.opcode == op::CLOSE {
                break f;
            }
        };
        assert_eq!(f.close_code(), Some(code), "{name}");
        assert!(
            c.try_frame(TIMEOUT).is_err(),
            "{name}: closed after the close frame"
        );
    }
    // A message of exactly --max-line bytes is fine.
    let mut c = Ws::connect(web);
    c.expect("NAME?");
    c.send_text(&"n".repeat(100));
    c.expect("ERROR bad-name");
}

#[test]
fn pings_are_answered_and_a_ping_flood_costs_one_pong() {
    let (server, web, _) = start(&["--auto-approve"]);
    let mut c = Ws::connect(web);
    c.expect("NAME?");
    c.send_raw(&frame(0x80 | op::PING, b"are you there", false))
        .unwrap();
    let pong = c.frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (op::PONG, &b"are you there"[..])
    );
    let rss_before = server.proc_status_kib("VmRSS");
    let mut flood = Vec::new();
    for i in 0..20_000u32 {
        flood.extend(frame(0x80 | op::PING, &i.to_be_bytes(), false));
    }
    c.send_raw(&flood).unwrap();
    c.send_text("pinger");
    let mut pongs = 0;
    let mut last = Vec::new();
    loop {
        let f = c.frame();
        if f.opcode == op::PONG {
            pongs += 1;
            last = f.payload;
            continue;
        }
        assert_eq!(f.text(), Some("WELCOME pinger 1"));
        break;
    }
    assert!(pongs < 20_000, "pongs coalesce: {pongs}");
    // The last pong (maybe after the welcome) answers the last ping.
    while last != 19_999u32.to_be_bytes() {
        let f = c.frame();
        assert_eq!(f.opcode, op::PONG, "{f:?}");
        last = f.payload;
    }
    let grown = server.proc_status_kib("VmRSS").saturating_sub(rss_before);
    assert!(grown < 2048, "a ping flood grew the server by {grown} KiB");
}

#[test]
fn a_slow_head_is_cut_at_the_deadline_and_a_big_one_refused() {
    let (_server, web, _) = start(&["--auto-approve"]);
    let started = Instant::now();
    let mut slow = TcpStream::connect(web).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let got = read_to_close(&mut slow, Duration::from_secs(20));
    let waited = started.elapsed();
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408 "),
        "{got:?}"
    );
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "cut after {waited:?}"
    );
    let long = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let (mut s, answer) = http(web, &long);
    assert_eq!(answer.status, 431);
    read_to_close(&mut s, TIMEOUT);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(http(web, &many).1.status, 431);
    let (_, garbage) = http(web, "\x16\x03\x01\x02\x00\x01\x00\x01\x03\x03\r\n\r\n");
    assert_eq!(garbage.status, 400);
}

#[test]
fn health_and_readiness_answer() {
    let (_server, _, metrics) = start(&[]);
    let health = get(metrics, "/healthz", "");
    assert_eq!(health.status, 200);
    assert_eq!(health.rest, b"ok\n");
    assert_eq!(get(metrics, "/readyz", "").status, 200);
    assert_eq!(get(metrics, "/", "").status, 404);
}

#[test]
fn the_metrics_parse_as_prometheus_text_and_count_what_happened() {
    let (server, web, metrics) = start(&["--auto-approve"]);
    let mut a = Ws::connect(web);
    a.expect("NAME?");
    a.send_text("alpha");
    a.expect("WELCOME");
    let mut b: Client = server.connect_prompted();
    b.send_line("beta");
    b.skip_until("WELCOME");
    a.expect("JOIN beta");
    for i in 0..5 {
        a.send_text(&format!("line {i}"));
        b.expect("MSG alpha");
    }
    let mut stream = TcpStream::connect(metrics).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let raw = read_to_close(&mut stream, TIMEOUT);
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    // The reference parser (Prometheus's own Python client) reads it whole.
    let check = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
values = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        for k, v in s.labels.items():
            assert k == "le" or v.isidentifier(), ("label values are fixed words", s)
        key = s.name + "".join("{%s=%s}" % kv for kv in sorted(s.labels.items()))
        values[key] = s.value
for k in sorted(values):
    print(k, values[k])
"#;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(check)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed (scripts/test.sh installs it with prometheus_client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let parsed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |key: &str| -> f64 {
        parsed
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{key} not in\n{parsed}"))
    };
    assert_eq!(value("chat_members"), 2.0);
    assert_eq!(value("chat_connections{transport=ws}"), 1.0);
    assert_eq!(value("chat_connections{transport=tcp}"), 1.0);
    assert_eq!(value("chat_connections_accepted_total{transport=ws}"), 1.0);
    assert_eq!(value("chat_websocket_upgrades_total"), 1.0);
    assert!(value("chat_deliveries_total") >= 6.0);
    assert_eq!(value("chat_messages_relayed_total"), 5.0);
    assert!(value("chat_received_bytes_total") > 0.0);
    assert!(value("chat_sent_bytes_total") > 0.0);
    assert_eq!(value("chat_waiting_joins"), 0.0);
    assert_eq!(value("chat_store_flush_seconds_count"), 0.0);
    for name in ["alpha", "beta", "127.0.0.1"] {
        assert!(!body.contains(name), "{name} must not be in the metrics");
    }
}

#[test]
fn a_close_is_answered_with_its_code_and_the_member_leaves() {
    let (server, web, _) = start(&["--auto-approve"]);
    let mut nc = server.connect_prompted();
    nc.send_line("watcher");
    nc.skip_until("WELCOME");
    let mut c = Ws::connect(web);
    c.expect("NAME?");
    c.send_text("closer");
    c.expect("WELCOME");
    nc.expect("JOIN closer");
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"going away");
    c.send_raw(&frame(0x80 | op::CLOSE, &payload, false))
        .unwrap();
    c.expect_close(1001);
    nc.expect("LEAVE closer quit");
}

#[test]
fn one_connection_serves_a_bounded_number_of_requests() {
    let (_server, web, _) = start(&["--auto-approve"]);
    let mut stream = TcpStream::connect(web).unwrap();
    let request = b"HEAD /app.css HTTP/1.1\r\nHost: x\r\n\r\n";
    // All of them at once (pipelined): answered in order, the last one closing. (Exactly as many
    // as are answered: requests left unread when the server closes would make it reset the
    // connection, and the reset can overtake the answers.)
    let all: Vec<u8> = request.repeat(100);
    stream.write_all(&all).unwrap();
    let got = String::from_utf8(read_to_close(&mut stream, TIMEOUT)).unwrap();
    let answers = got.matches("HTTP/1.1 200 OK").count();
    assert_eq!(answers, 100, "MAX_HTTP_REQUESTS answers, then close");
    assert_eq!(got.matches("Connection: close").count(), 1);
}

/// A connection to `addr` from the loopback address `source` (127.0.0.x acts as another host).
fn connect_from(addr: SocketAddr, source: [u8; 4]) -> TcpStream {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    let from = SocketAddr::from((source, 0));
    socket.bind(&SockAddr::from(from)).unwrap();
    socket.connect(&SockAddr::from(addr)).unwrap();
    socket.into()
}

/// Whether a connection from `source` is served (else it was closed at once).
fn served(addr: SocketAddr, source: [u8; 4]) -> bool {
    let mut probe = connect_from(addr, source);
    probe
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_to_close(&mut probe, TIMEOUT).starts_with(b"HTTP/1.1 200 ")
}

#[test]
fn http_connections_beyond_the_limits_are_closed_at_once() {
    chat_testkit::require_nofile(
        2048,
        "http_connections_beyond_the_limits_are_closed_at_once",
    );
    let (_server, web, _) = start(&["--auto-approve"]);
    // MAX_HTTP_PER_IP (128) silent connections from one address: the 129th from there is
    // closed, while another address is served.
    let mut held: Vec<TcpStream> = (0..128)
        .map(|_| connect_from(web, [127, 0, 0, 1]))
        .collect();
    assert!(!served(web, [127, 0, 0, 1]), "the 129th from one address");
    assert!(served(web, [127, 0, 0, 2]), "another address");
    // MAX_HTTP_CONNECTIONS (512) in all: 4 addresses of 128 each fill it.
    for host in 2..5u8 {
        held.extend((0..128).map(|_| connect_from(web, [127, 0, 0, host])));
    }
    assert!(!served(web, [127, 0, 0, 99]), "the 513th connection");
    drop(held);
    // Once they are gone there is room again (the server may take a moment to see them go).
    let deadline = Instant::now() + TIMEOUT;
    while !served(web, [127, 0, 0, 99]) {
        assert!(Instant::now() < deadline, "no slot free again");
    }
}

#[test]
fn an_idle_kept_alive_connection_is_closed_at_the_head_deadline() {
    let (_server, web, _) = start(&["--auto-approve"]);
    let (mut stream, first) = http(web, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(first.status, 200);
    let answered = Instant::now();
    let after = read_to_close(&mut stream, Duration::from_secs(20));
    let waited = answered.elapsed();
    assert!(after.is_empty(), "closed without a word: {after:?}");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
}
