//! The real `chat-client` over TLS against the real `chat-server` (`--tls-listen`), in line
//! mode with piped standard streams: a TLS member chats with a plain one, and each trust path
//! ends as `client/src/exit.rs` says (a private authority via `--ca`, first use with
//! `--trust-new`, a changed certificate, nobody to ask, the wrong host, an expired
//! certificate). Certificates are made at test time by the test kit; `known_servers` lives in a
//! temporary directory named by `CHAT_CONFIG_DIR`. Every wait is a read with a deadline.
#![allow(clippy::unwrap_used)]

mod util;

use std::fs;
use std::path::{Path, PathBuf};

use chat_testkit::{CertPair, TestCa};
use tempfile::TempDir;
use util::{Client, Console, Peer, Server};

const SUCCESS: i32 = 0;
const UNTRUSTED: i32 = 7;
const CHANGED: i32 = 8;
const EXPIRED: i32 = 9;
const WRONG_HOST: i32 = 10;

/// The names a server certificate holds unless a test says otherwise.
const NAMES: &[&str] = &["127.0.0.1", "localhost"];

/// A certificate and its key, in PEM.
struct Pair {
    cert: String,
    key: String,
}

impl From<CertPair> for Pair {
    fn from(pair: CertPair) -> Pair {
        Pair {
            cert: pair.cert_pem,
            key: pair.key_pem,
        }
    }
}

/// A private certificate authority (the test kit's): its PEM (for `--ca`) and what signs leaves.
fn make_ca() -> (String, TestCa) {
    let ca = TestCa::new("chat e2e CA");
    (ca.pem(), ca)
}

/// A server certificate for `names` signed by `ca`.
fn make_leaf(ca: &TestCa, names: &[&str], expired: bool) -> Pair {
    ca.leaf_with(names, None, expired).into()
}

/// A self-signed server certificate for [`NAMES`].
fn make_self_signed() -> Pair {
    CertPair::self_signed(NAMES).into()
}

/// Files of one test: the server's certificate and key, `--ca` files, and the client's
/// configuration directory (empty at first).
struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir(files.config_dir()).unwrap();
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config_dir(&self) -> PathBuf {
        self.path("config")
    }

    fn known_servers(&self) -> PathBuf {
        self.config_dir().join("known_servers")
    }

    /// Puts `pair` where the server reads its certificate and key.
    fn install(&self, pair: &Pair) {
        fs::write(self.path("cert.pem"), &pair.cert).unwrap();
        fs::write(self.path("key.pem"), &pair.key).unwrap();
    }

    /// Writes a `--ca` file and returns its path.
    fn ca_file(&self, pem: &str) -> String {
        let path = self.path("ca.pem");
        fs::write(&path, pem).unwrap();
        arg(&path)
    }
}

fn arg(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// The real server with a plain and a TLS listener serving `files`' certificate; returns it
/// with the TLS port. Joins are approved at once.
fn start_server(files: &Files) -> (Server, u16) {
    let cert = arg(&files.path("cert.pem"));
    let key = arg(&files.path("key.pem"));
    let extra = [
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let server = Server::start_with("127.0.0.1:0", true, Console::Closed, &extra);
    let port = server.tls_addr().port();
    (server, port)
}

/// Starts `chat-client ARGS` with its configuration directory in `files`.
fn client(files: &Files, args: &[&str]) -> Client {
    let config = arg(&files.config_dir());
    Client::start(args, &[("CHAT_CONFIG_DIR", &config)])
}

/// Runs `printf '/leave\n' | chat-client --name NAME ARGS` to its end: the status and stderr.
fn join_and_leave(files: &Files, name: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["--name", name];
    all.extend_from_slice(args);
    let mut client = client(files, &all);
    client.offer_line("/leave");
    client.close_stdin();
    client.wait()
}

#[test]
fn a_piped_tls_client_chats_with_a_plain_member_and_leaves_with_zero() {
    let files = Files::new();
    let (ca_pem, ca) = make_ca();
    files.install(&make_leaf(&ca, NAMES, false));
    let (server, port) = start_server(&files);
    let ca_file = files.ca_file(&ca_pem);
    let url = format!("tls://127.0.0.1:{port}");

    let mut alice = Peer::join(&server.addr, "alice");
    let mut bob = client(&files, &["--name", "bob", "--ca", &ca_file, &url]);
    bob.stdout.expect(&format!("connecting to {url}..."));
    bob.stdout.expect("secured with TLSv1_");
    bob.stdout.expect("you are in as bob");
    alice.expect("JOIN bob");

    bob.type_line("hi over **TLS**");
    assert_eq!(alice.expect("MSG "), "MSG bob - hi over **TLS**");
    alice.send("hello bob, in clear text");
    assert_eq!(
        bob.stdout.expect("<alice>"),
        "<alice> hello bob, in clear text"
    );

    bob.type_line("/leave");
    bob.close_stdin();
    alice.expect("LEAVE bob left");
    let (code, stderr) = bob.wait();
    assert_eq!(code, SUCCESS, "stderr: {stderr}");
    assert_eq!(stderr, "");
    // Trusted through --ca: nothing to remember.
    assert!(!files.known_servers().exists());
}

#[test]
fn trust_new_remembers_a_self_signed_server_and_the_next_run_needs_nothing() {
    let files = Files::new();
    files.install(&make_self_signed());
    let (_server, port) = start_server(&files);
    let url = format!("tls://127.0.0.1:{port}");

    let (code, stderr) = join_and_leave(&files, "bob", &["--trust-new", &url]);
    assert_eq!(code, SUCCESS, "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "accepted the certificate of 127.0.0.1:{port} on first use (--trust-new)"
        )),
        "{stderr}"
    );
    let known = fs::read_to_string(files.known_servers()).unwrap();
    let entries: Vec<&str> = known.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(entries.len(), 1, "{known}");
    assert!(
        entries[0].starts_with(&format!("127.0.0.1:{port} SHA256:")),
        "{known}"
    );

    // Remembered: no flag, nobody to ask (stdin is a pipe), and it connects.
    let (code, stderr) = join_and_leave(&files, "bob", &[&url]);
    assert_eq!(code, SUCCESS, "stderr: {stderr}");
    assert_eq!(stderr, "");
    assert_eq!(fs::read_to_string(files.known_servers()).unwrap(), known);
}

#[test]
fn a_changed_certificate_exits_8_with_the_warning_even_with_trust_new() {
    let files = Files::new();
    files.install(&make_self_signed());
    let (mut server, port) = start_server(&files);
    let url = format!("tls://127.0.0.1:{port}");
    let (code, stderr) = join_and_leave(&files, "bob", &["--trust-new", &url]);
    assert_eq!(code, SUCCESS, "stderr: {stderr}");
    let known = fs::read_to_string(files.known_servers()).unwrap();

    // The server now presents another self-signed certificate.
    files.install(&make_self_signed());
    server.signal("HUP");
    server.expect_console("reloaded the TLS certificate");

    let (code, stderr) = join_and_leave(&files, "bob", &["--trust-new", &url]);
    assert_eq!(code, CHANGED, "stderr: {stderr}");
    for part in [
        "WARNING: SERVER CERTIFICATE HAS CHANGED!",
        &format!("The certificate of 127.0.0.1:{port} has the fingerprint"),
        &format!("Offending entry: {}:3", files.known_servers().display()),
        &format!("Connection refused: the certificate of 127.0.0.1:{port} has changed."),
    ] {
        assert!(stderr.contains(part), "{part:?} missing from:\n{stderr}");
    }
    // Nothing was added or replaced.
    assert_eq!(fs::read_to_string(files.known_servers()).unwrap(), known);
}

#[test]
fn an_unknown_server_with_nobody_to_ask_exits_7_with_one_line() {
    let files = Files::new();
    files.install(&make_self_signed());
    let (_server, port) = start_server(&files);
    let url = format!("tls://127.0.0.1:{port}");

    let (code, stderr) = join_and_leave(&files, "bob", &[&url]);
    assert_eq!(code, UNTRUSTED, "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "chat-client: the certificate of 127.0.0.1:{port} is not signed by a trusted \
             authority (SHA256:"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--trust-new"), "{stderr}");
    assert!(stderr.contains("--ca FILE"), "{stderr}");
    assert!(!files.known_servers().exists());
}

#[test]
fn the_wrong_host_exits_10_and_an_expired_certificate_9() {
    let (ca_pem, ca) = make_ca();

    let files = Files::new();
    files.install(&make_leaf(&ca, &["chat.example.org"], false));
    let (_server, port) = start_server(&files);
    let ca_file = files.ca_file(&ca_pem);
    let url = format!("tls://127.0.0.1:{port}");
    let (code, stderr) = join_and_leave(&files, "bob", &["--ca", &ca_file, &url]);
    assert_eq!(code, WRONG_HOST, "stderr: {stderr}");
    assert!(stderr.contains("is not valid for 127.0.0.1"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let files = Files::new();
    files.install(&make_leaf(&ca, NAMES, true));
    let (_server, port) = start_server(&files);
    let ca_file = files.ca_file(&ca_pem);
    let url = format!("tls://127.0.0.1:{port}");
    let (code, stderr) = join_and_leave(&files, "bob", &["--ca", &ca_file, &url]);
    assert_eq!(code, EXPIRED, "stderr: {stderr}");
    assert!(stderr.contains("has expired"), "{stderr}");
}

#[test]
fn tls_flags_with_a_plain_address_are_a_usage_error() {
    let files = Files::new();
    let (code, stderr) = join_and_leave(&files, "bob", &["--trust-new", "127.0.0.1:1"]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert_eq!(
        stderr,
        "chat-client: --trust-new needs a TLS connection: use tls://127.0.0.1:1 or --tls"
    );
}
