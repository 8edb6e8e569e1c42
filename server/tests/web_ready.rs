//! `/readyz` follows the cluster: 200 while the server is in the room, 503 (saying why) while
//! it is cut off from Redis, 200 again once it is back. A real `redis-server` of the test's own
//! (scripts/test.sh installs it), stopped and continued with signals.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat_testkit::redis::Redis;
use chat_testkit::{Console, Server};

/// The status code and body of `GET path`.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(chat_testkit::TIMEOUT)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let status = all.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let body = all
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap();
    (status, body)
}

#[test]
fn readiness_follows_the_cluster() {
    let redis = Redis::start();
    let url = redis.url();
    let mut server = Server::start_with(
        &[
            "--cluster",
            &url,
            "--cluster-timeout",
            "2",
            "--auto-approve",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        Console::Piped,
    );
    let line = server.expect_console("listening on ");
    let metrics: SocketAddr = line
        .trim_start_matches("listening on ")
        .trim_end_matches(" (metrics)")
        .parse()
        .unwrap();
    server.expect_console("cluster: in the room as server ");
    assert_eq!(get(metrics, "/readyz"), (200, "ready\n".to_owned()));
    let mut member = server.login("watcher");
    redis.signal("STOP");
    // The member's BYE is the server's own word that it is cut off.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match member.try_next_line(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.starts_with("BYE ") => break,
            Ok(_) => {}
            Err(e) => panic!("no BYE when Redis stopped: {e:?}"),
        }
    }
    assert_eq!(
        get(metrics, "/readyz"),
        (503, "cut off from the cluster\n".to_owned())
    );
    assert_eq!(get(metrics, "/healthz").0, 200, "the loop still turns");
    redis.signal("CONT");
    server.expect_console("cluster: in the room as server ");
    assert_eq!(get(metrics, "/readyz").0, 200);
}
