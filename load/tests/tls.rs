//! chat-load's `--tls` members against the real chat-server's TLS listener: a fan-out over TLS
//! must arrive whole, once and in order, and a server whose certificate is not trusted must be
//! refused, not waited for. Certificates are made at test time (rcgen): a tiny CA and a leaf for
//! 127.0.0.1, as rustls refuses a CA certificate used as the server's own.
//!
//! Needs `target/<profile>/chat-server`: run `cargo build -p chat-server` first.
#![allow(clippy::unwrap_used)]

mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chat_testkit::Server;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use util::run_load;

const LIMIT: Duration = Duration::from_secs(60);

/// A CA, a server certificate it signed (for 127.0.0.1) with its key, and a second CA that
/// signed nothing, in files under a directory removed on drop.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(test: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("chat-load-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = |cn: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, cn);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let good = ca("chat-load test CA");
        let other = ca("another CA");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &good).unwrap();
        std::fs::write(dir.join("ca.pem"), good.pem()).unwrap();
        std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    /// A server with a TLS listener on a free port, and that listener's address.
    fn server(&self) -> (Server, SocketAddr) {
        let (cert, key) = (self.path("cert.pem"), self.path("key.pem"));
        let mut server = Server::builder()
            .args(&[
                "--auto-approve",
                "--rate",
                "0",
                "--tls-listen",
                "127.0.0.1:0",
            ])
            .args(&["--tls-cert", &cert, "--tls-key", &key])
            .start();
        let line = server.next_console();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|l| l.strip_suffix(" (TLS)"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no TLS listening line: {line:?}"));
        (server, addr)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn tls_members_fan_out_whole_once_and_in_order() {
    let pki = Pki::new("fanout");
    let (_server, addr) = pki.server();
    let ca = pki.path("ca.pem");
    let r = run_load(
        addr,
        &[
            "--tls", "--ca", &ca, "-n", "12", "-s", "4", "-m", "40", "-w", "8",
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.get("tls"), "true", "{}", r.json);
    assert_eq!(r.int("delivered"), 4 * 40 * 11, "{}", r.json);
    assert_eq!(r.int("joins_received"), 12 * 11 / 2, "{}", r.json);
}

/// Slow TLS readers: paced reads must not leave plaintext unseen in rustls (a short TLS read
/// does not mean the socket is drained).
#[test]
fn slow_tls_readers_get_every_join_notice() {
    let pki = Pki::new("slow");
    let (_server, addr) = pki.server();
    let ca = pki.path("ca.pem");
    let r = run_load(
        addr,
        &[
            "--tls",
            "--ca",
            &ca,
            "--scenario",
            "join-storm",
            "-n",
            "25",
            "--read-rate",
            "40",
            "--hold",
            "0",
            "--timeout",
            "30",
        ],
        LIMIT,
    );
    assert_eq!(r.get("ok"), "true", "{}", r.json);
    assert_eq!(r.int("joins_received"), 25 * 24 / 2, "{}", r.json);
}

#[test]
fn an_untrusted_server_certificate_fails_every_member() {
    let pki = Pki::new("untrusted");
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
