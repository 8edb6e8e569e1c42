//! The web listener inside TLS (`--http-tls-listen`, with the certificate flags and no
//! `--tls-listen`): the page over HTTPS and a WebSocket member over `wss://`, through a rustls
//! client trusting the test kit's certificate authority (made at test time).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_testkit::pki::Pki;
use chat_testkit::ws::{frame, op, upgrade_request, SAMPLE_ACCEPT};
use chat_testkit::{Server, TIMEOUT};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    StreamOwned::new(
        ClientConnection::new(Arc::clone(config), name).unwrap(),
        tcp,
    )
}

/// Reads until `want` is in what was read (or fails after the test kit's timeout).
#[track_caller]
fn read_until(s: &mut Tls, got: &mut Vec<u8>, want: &[u8]) {
    let deadline = Instant::now() + TIMEOUT;
    let mut chunk = [0u8; 4096];
    while !got.windows(want.len()).any(|w| w == want) {
        assert!(
            Instant::now() < deadline,
            "no {want:?} in {:?}",
            String::from_utf8_lossy(got)
        );
        match s.read(&mut chunk) {
            Ok(0) => panic!("closed; got {:?}", String::from_utf8_lossy(got)),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn the_page_and_a_member_over_https() {
    let pki = Pki::new("web-tls");
    pki.install(&pki.leaf("web"));
    let (cert_path, key_path) = (pki.cert_path(), pki.key_path());
    let mut server = Server::start(&[
        "--auto-approve",
        "--http-tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let line = server.expect_console("listening on ");
    let addr: SocketAddr = line
        .trim_start_matches("listening on ")
        .trim_end_matches(" (HTTPS)")
        .parse()
        .unwrap();
    let config = pki.client_config();

    let mut page = connect(addr, &config);
    page.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut page, &mut got, b"</html>");
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));

    let mut ws = connect(addr, &config);
    let origin = format!("Origin: https://{addr}\r\n");
    ws.write_all(upgrade_request(&addr.to_string(), &origin).as_bytes())
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut ws, &mut got, b"NAME?");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(text.contains(SAMPLE_ACCEPT), "{text}");
    ws.write_all(&frame(0x80 | op::TEXT, b"secure", false))
        .unwrap();
    read_until(&mut ws, &mut got, b"WELCOME secure 1");
}
