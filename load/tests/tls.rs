//! chat-load's `--tls` members against the real chat-server's TLS listener: a fan-out over TLS
//! must arrive whole, once and in order, and a server whose certificate is not trusted must be
//! refused, not waited for. Certificates are made at test time by the test kit (`Pki`): a tiny CA
//! and a leaf for 127.0.0.1, as rustls refuses a CA certificate used as the server's own.
//!
//! Needs `target/<profile>/chat-server`: run `cargo build -p chat-server` first.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::SocketAddr;

use chat_testkit::{Pki, Server, TestCa};
use util::{run_load, TRANSPORT_LIMIT as LIMIT};

/// The test kit's CA and a server certificate it signed (for 127.0.0.1) in files, plus
/// `ca.pem` (that CA) and `other-ca.pem` (a second CA that signed nothing).
struct Files {
    pki: Pki,
}

impl Files {
    fn new(test: &str) -> Files {
        let pki = Pki::new(&format!("load-{test}"));
        pki.install(&pki.ca.leaf(&["127.0.0.1"]));
        pki.write("ca.pem", &pki.ca.pem());
        pki.write("other-ca.pem", &TestCa::new("another CA").pem());
        Files { pki }
    }

    fn path(&self, file: &str) -> String {
        self.pki.path(file).to_str().unwrap().to_owned()
    }

    /// A server with a TLS listener on a free port, and that listener's address.
    fn server(&self) -> (Server, SocketAddr) {
        let server = Server::builder()
            .args(&["--auto-approve", "--rate", "0"])
            .tls(&self.pki.cert_path(), &self.pki.key_path())
            .start();
        let addr = server.tls_addr();
        (server, addr)
    }
}

#[test]
fn tls_members_fan_out_whole_once_and_in_order() {
    let pki = Files::new("fanout");
    let (_server, addr) = pki.server();
    let ca = pki.path("ca.pem");
    util::fan_out_whole(addr, &["--tls", "--ca", &ca], "tls");
}

/// Slow TLS readers: paced reads must not leave plaintext unseen in rustls (a short TLS read
/// does not mean the socket is drained).
#[test]
fn slow_tls_readers_get_every_join_notice() {
    let pki = Files::new("slow");
    let (_server, addr) = pki.server();
    let ca = pki.path("ca.pem");
    util::slow_readers_get_joins(addr, &["--tls", "--ca", &ca]);
}

#[test]
fn an_untrusted_server_certificate_fails_every_member() {
    let pki = Files::new("untrusted");
    let (_server, addr) = pki.server();
    let ca = pki.path("other-ca.pem");
    let r = run_load(
        addr,
        &["--tls", "--ca", &ca, "-n", "3", "--timeout", "20"],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "false", "{}", r.json);
    assert_eq!(r.int("failed"), 3, "{}", r.json);
    assert!(r.get("error").contains("certificate"), "{}", r.json);
}
