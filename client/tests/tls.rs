//! The client's TLS trust paths over real sockets: a tiny rustls server on a thread, with
//! certificates made at test time by the test kit (`TestCa`, `CertPair`), and `known_servers` in a temporary directory.
//! Every wait is bounded, so a deadlock fails a test instead of hanging it.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use chat_client::tls::{self, known, Target, TlsError, TlsOptions};
use chat_testkit::{CertPair, TestCa};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(10);

/// A server certificate chain and its key, as the test server needs them.
struct ServerCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The server's own certificate as PEM.
    pem: String,
}

impl From<CertPair> for ServerCert {
    fn from(pair: CertPair) -> ServerCert {
        ServerCert {
            chain: vec![pair.der.clone()],
            key: pair.key_der(),
            pem: pair.cert_pem,
        }
    }
}

/// A private CA (the test kit's): its PEM (for `--ca`) and what signs leaves.
fn make_ca() -> (String, TestCa) {
    let ca = TestCa::new("chat test CA");
    (ca.pem(), ca)
}

/// A leaf for `names` signed by `ca`; `expired` puts its validity in the past.
fn make_leaf(ca: &TestCa, names: &[&str], expired: bool) -> ServerCert {
    ca.leaf_with(names, None, expired).into()
}

/// A self-signed certificate for `names`; `ca` sets CA:TRUE, as `openssl req -x509` does.
fn make_self_signed(names: &[&str], ca: bool) -> ServerCert {
    CertPair::self_signed_with(names, ca, false).into()
}

/// A TLS server on 127.0.0.1 that greets each connection with `hello`, answers each line
/// with `echo: LINE`, and ends with close_notify when the client does.
struct TestServer {
    addr: SocketAddr,
    /// TCP connections accepted so far (handshakes that fail count too).
    accepted: Arc<AtomicUsize>,
}

impl TestServer {
    fn start(cert: ServerCert) -> TestServer {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let config = Arc::clone(&config);
                thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(WAIT));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    if tls.write_all(b"hello\n").is_err() {
                        return; // a refused handshake ends here
                    }
                    let mut reader = BufReader::new(tls);
                    let mut line = String::new();
                    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                        let reply = format!("echo: {line}");
                        if reader.get_mut().write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                        line.clear();
                    }
                    let tls = reader.get_mut();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        TestServer { addr, accepted }
    }

    fn target(&self, host: &str) -> Target {
        tls::parse_target(&format!("tls://{host}:{}", self.addr.port()), false).expect("target")
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Options for tests: no system roots (deterministic), `known_servers` in `dir`.
fn options(dir: &Path, ca_files: Vec<PathBuf>) -> TlsOptions {
    TlsOptions {
        ca_files,
        system_roots: false,
        known_servers: Some(dir.join("config").join("known_servers")),
        connect_timeout: WAIT,
        handshake_timeout: WAIT,
    }
}

fn never_asked(server: &str, fingerprint: &str) -> bool {
    panic!("asked about {server} {fingerprint} when nobody should be asked")
}

/// Reads lines from `stream` on a thread of its own, as the client's network thread does;
/// `None` marks a clean end (close_notify), `Some(Err)` an error.
fn spawn_reader(stream: tls::TlsStream) -> mpsc::Receiver<Option<Result<String, String>>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(_) => {
                    if tx.send(Some(Ok(line))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Some(Err(e.to_string())));
                    return;
                }
            }
        }
    });
    rx
}

#[track_caller]
fn next_line(rx: &mpsc::Receiver<Option<Result<String, String>>>) -> String {
    match rx.recv_timeout(WAIT) {
        Ok(Some(Ok(line))) => line,
        other => panic!("expected a line, got {other:?}"),
    }
}

/// A line from the server, then a line each way while a reader thread is blocked in `read`
/// (a writer waiting on the reader would hang here), then a clean close both ways.
#[track_caller]
fn chat(stream: tls::TlsStream) {
    let mut writer = stream.try_clone().expect("clone");
    let rx = spawn_reader(stream);
    assert_eq!(next_line(&rx), "hello\n");
    // Let the reader block in `read` before writing.
    thread::sleep(Duration::from_millis(100));
    writer.write_all(b"hi\n").expect("write");
    assert_eq!(next_line(&rx), "echo: hi\n");
    writer.write_all(b"again\n").expect("write");
    assert_eq!(next_line(&rx), "echo: again\n");
    writer.shutdown(Shutdown::Write).expect("shutdown");
    match rx.recv_timeout(WAIT) {
        Ok(None) => {}
        other => panic!("expected the server's close_notify, got {other:?}"),
    }
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write file");
    path
}

#[test]
fn ca_signed_server_trusted_via_ca_file_chats_both_ways() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ca_pem, ca) = make_ca();
    let server = TestServer::start(make_leaf(&ca, &["127.0.0.1", "localhost"], false));
    let ca_file = write_file(tmp.path(), "ca.pem", &ca_pem);
    let mut opts = options(tmp.path(), vec![ca_file]);
    // The real system store as well: loading it must not get in the way.
    opts.system_roots = true;
    let stream = tls::connect(&server.target("127.0.0.1"), &opts, never_asked).expect("connect");
    assert!(
        stream.describe().starts_with("TLSv1_3"),
        "{}",
        stream.describe()
    );
    chat(stream);
    assert!(!tmp.path().join("config").exists(), "nothing to remember");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn ca_signed_server_by_name_with_ipv6_fallback() {
    // "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ca_pem, ca) = make_ca();
    let server = TestServer::start(make_leaf(&ca, &["localhost"], false));
    let opts = options(tmp.path(), vec![write_file(tmp.path(), "ca.pem", &ca_pem)]);
    let stream = tls::connect(&server.target("localhost"), &opts, never_asked).expect("connect");
    chat(stream);
}

#[test]
fn wrong_host_name_is_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ca_pem, ca) = make_ca();
    let server = TestServer::start(make_leaf(&ca, &["chat.example.org"], false));
    let opts = options(tmp.path(), vec![write_file(tmp.path(), "ca.pem", &ca_pem)]);
    let err =
        tls::connect(&server.target("127.0.0.1"), &opts, never_asked).expect_err("must be refused");
    match &err {
        TlsError::WrongHost { host, names, .. } => {
            assert_eq!(host, "127.0.0.1");
            assert!(
                names.iter().any(|n| n.contains("chat.example.org")),
                "{names:?}"
            );
        }
        other => panic!("expected WrongHost, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        !text.contains('\n') && text.contains("not valid for 127.0.0.1"),
        "{text}"
    );
}

#[test]
fn expired_certificate_is_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ca_pem, ca) = make_ca();
    let server = TestServer::start(make_leaf(&ca, &["127.0.0.1"], true));
    let opts = options(tmp.path(), vec![write_file(tmp.path(), "ca.pem", &ca_pem)]);
    let err =
        tls::connect(&server.target("127.0.0.1"), &opts, never_asked).expect_err("must be refused");
    assert!(
        matches!(err, TlsError::Expired { .. }),
        "expected Expired, got {err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("expired") && text.contains("2021-01-01"),
        "{text}"
    );
}

#[test]
fn expired_self_signed_certificate_is_refused_without_asking() {
    // First use is only for a missing issuer: an expired certificate is never offered.
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(CertPair::self_signed_with(&["127.0.0.1"], false, true).into());
    let err = tls::connect(
        &server.target("127.0.0.1"),
        &options(tmp.path(), vec![]),
        never_asked,
    )
    .expect_err("must be refused");
    assert!(matches!(err, TlsError::Expired { .. }), "{err:?}");
}

#[test]
fn self_signed_declined_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(make_self_signed(&["127.0.0.1"], false));
    let opts = options(tmp.path(), vec![]);
    let mut asked = Vec::new();
    let err = tls::connect(&server.target("127.0.0.1"), &opts, |s: &str, fp: &str| {
        asked.push((s.to_owned(), fp.to_owned()));
        false
    })
    .expect_err("declined");
    assert_eq!(asked.len(), 1);
    let (asked_server, asked_fp) = &asked[0];
    assert_eq!(asked_server, &format!("127.0.0.1:{}", server.addr.port()));
    assert!(asked_fp.starts_with("SHA256:") && asked_fp.len() == 7 + 32 * 3 - 1);
    match &err {
        TlsError::UnknownIssuer { fingerprint, .. } => assert_eq!(fingerprint, asked_fp),
        other => panic!("expected UnknownIssuer, got {other:?}"),
    }
    assert!(!err.to_string().contains('\n'));
    assert!(
        !tmp.path().join("config").exists(),
        "nothing may be written"
    );
}

#[test]
fn self_signed_accepted_is_remembered_and_not_asked_again() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(make_self_signed(&["127.0.0.1"], false));
    let opts = options(tmp.path(), vec![]);
    let target = server.target("127.0.0.1");
    let mut asked = 0;
    let stream = tls::connect(&target, &opts, |_: &str, _: &str| {
        asked += 1;
        true // what --trust-new answers
    })
    .expect("accepted");
    assert_eq!(asked, 1);
    chat(stream);
    // The refused handshake while asking, then the real one.
    assert_eq!(server.accepted(), 2);

    let path = opts.known_servers.clone().expect("path");
    let entries = known::load(&path).expect("known_servers");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].server, target.server());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "known_servers must be private");
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
    }

    let stream = tls::connect(&target, &opts, never_asked).expect("remembered");
    chat(stream);
    assert_eq!(server.accepted(), 3);
    assert_eq!(known::load(&path).expect("reload").len(), 1, "written once");
}

#[test]
fn private_ca_without_ca_file_is_a_first_use_too() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (_, ca) = make_ca();
    let server = TestServer::start(make_leaf(&ca, &["127.0.0.1"], false));
    let mut asked = 0;
    let stream = tls::connect(
        &server.target("127.0.0.1"),
        &options(tmp.path(), vec![]),
        |_: &str, _: &str| {
            asked += 1;
            true
        },
    )
    .expect("accepted");
    assert_eq!(asked, 1);
    chat(stream);
}

#[test]
fn self_signed_ca_certificate_as_made_by_openssl_req_x509() {
    // CA:TRUE in the server's own certificate: accepted on first use, or trusted via --ca.
    let tmp = tempfile::tempdir().expect("temp dir");
    let cert = make_self_signed(&["127.0.0.1"], true);
    let pem = cert.pem.clone();
    let server = TestServer::start(cert);
    let mut asked = 0;
    let stream = tls::connect(
        &server.target("127.0.0.1"),
        &options(tmp.path(), vec![]),
        |_: &str, _: &str| {
            asked += 1;
            true
        },
    )
    .expect("accepted on first use");
    assert_eq!(asked, 1);
    chat(stream);

    let other = tempfile::tempdir().expect("temp dir");
    let ca_file = write_file(other.path(), "server.pem", &pem);
    let stream = tls::connect(
        &server.target("127.0.0.1"),
        &options(other.path(), vec![ca_file]),
        never_asked,
    )
    .expect("trusted via --ca");
    chat(stream);
}

#[test]
fn changed_fingerprint_is_refused_loudly_without_asking() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(make_self_signed(&["127.0.0.1"], false));
    let target = server.target("127.0.0.1");
    let opts = options(tmp.path(), vec![]);
    let path = opts.known_servers.clone().expect("path");
    let old = known::fingerprint(b"the certificate it had before");
    known::append(&path, "other.example:1", &known::fingerprint(b"x")).expect("append");
    known::append(&path, &target.server(), &old).expect("append");
    let before = fs::read_to_string(&path).expect("read");

    let err = tls::connect(&target, &opts, never_asked).expect_err("must be refused");
    match &err {
        TlsError::FingerprintChanged {
            server,
            known,
            presented,
            path: p,
            line,
        } => {
            assert_eq!(server, &target.server());
            assert_eq!(known, &old);
            assert_ne!(presented, &old);
            assert_eq!(p, &path);
            assert_eq!(*line, 4, "two header lines, then the entries");
        }
        other => panic!("expected FingerprintChanged, got {other:?}"),
    }
    let text = err.to_string();
    for part in [
        "WARNING",
        target.server().as_str(),
        old.as_str(),
        &format!("{}:4", path.display()),
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    assert_eq!(
        fs::read_to_string(&path).expect("read"),
        before,
        "file untouched"
    );
}

#[test]
fn malformed_known_servers_is_an_error_naming_the_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(make_self_signed(&["127.0.0.1"], false));
    let opts = options(tmp.path(), vec![]);
    let path = opts.known_servers.clone().expect("path");
    fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    fs::write(&path, "# ok\n\nnot a line\n").expect("write");
    let err = tls::connect(&server.target("127.0.0.1"), &opts, never_asked).expect_err("refused");
    match &err {
        TlsError::KnownServers(e) => assert_eq!(e.line, Some(3)),
        other => panic!("expected KnownServers, got {other:?}"),
    }
    assert!(err.to_string().contains("known_servers:3:"), "{err}");
}

#[test]
fn bad_ca_files_are_refused_before_connecting() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let target = tls::parse_target("tls://127.0.0.1:9", false).expect("target");
    let cases = [
        write_file(tmp.path(), "empty.pem", ""),
        write_file(
            tmp.path(),
            "key-only.pem",
            &CertPair::self_signed(&["127.0.0.1"]).key_pem,
        ),
        write_file(
            tmp.path(),
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        ),
        write_file(
            tmp.path(),
            "garbage-der.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ),
        tmp.path().join("missing.pem"),
    ];
    for file in cases {
        let err = tls::connect(
            &target,
            &options(tmp.path(), vec![file.clone()]),
            never_asked,
        )
        .expect_err("bad file");
        match &err {
            TlsError::BadCaFile { path, .. } => assert_eq!(path, &file),
            other => panic!("{}: expected BadCaFile, got {other:?}", file.display()),
        }
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    }
}

#[test]
fn a_plain_server_fails_the_handshake() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        if let Ok((mut tcp, _)) = listener.accept() {
            let mut buf = [0u8; 512];
            let _ = tcp.read(&mut buf);
            let _ = tcp.write_all(b"ERROR bad-name\n");
        }
    });
    let target = tls::parse_target(&format!("tls://127.0.0.1:{port}"), false).expect("target");
    let err = tls::connect(&target, &options(tmp.path(), vec![]), never_asked).expect_err("plain");
    assert!(matches!(err, TlsError::Handshake { .. }), "{err:?}");
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let target = tls::parse_target(&format!("tls://127.0.0.1:{port}"), false).expect("target");
    let err = tls::connect(&target, &options(tmp.path(), vec![]), never_asked).expect_err("none");
    assert!(matches!(err, TlsError::Connect { .. }), "{err:?}");
}

/// Megabytes each way at once: the server echoes every line from one thread, so if the client's
/// reader ever stopped draining while its writer was blocked, both sides would stall for good.
#[test]
fn a_flooding_writer_and_a_draining_reader_never_deadlock() {
    const LINES: usize = 10_000;
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ca_pem, ca) = make_ca();
    let server = TestServer::start(make_leaf(&ca, &["127.0.0.1"], false));
    let opts = options(tmp.path(), vec![write_file(tmp.path(), "ca.pem", &ca_pem)]);
    let stream = tls::connect(&server.target("127.0.0.1"), &opts, never_asked).expect("connect");
    let mut writer = stream.try_clone().expect("clone");
    let rx = spawn_reader(stream);
    assert_eq!(next_line(&rx), "hello\n");
    let payload = "x".repeat(1000);
    let flood = thread::spawn(move || {
        for i in 0..LINES {
            writer
                .write_all(format!("{i} {payload}\n").as_bytes())
                .expect("write");
        }
        writer
    });
    for i in 0..LINES {
        let line = next_line(&rx);
        assert!(
            line.starts_with(&format!("echo: {i} x")),
            "line {i}: {line:.40}"
        );
    }
    let writer = flood.join().expect("writer thread");
    writer.shutdown(Shutdown::Write).expect("shutdown");
    assert!(matches!(rx.recv_timeout(WAIT), Ok(None)));
}

/// The session ends a blocked network thread by shutting the socket down.
#[test]
fn shutdown_wakes_a_blocked_reader() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (ca_pem, ca) = make_ca();
    let server = TestServer::start(make_leaf(&ca, &["127.0.0.1"], false));
    let opts = options(tmp.path(), vec![write_file(tmp.path(), "ca.pem", &ca_pem)]);
    let stream = tls::connect(&server.target("127.0.0.1"), &opts, never_asked).expect("connect");
    let closer = stream.try_clone().expect("clone");
    let rx = spawn_reader(stream);
    assert_eq!(next_line(&rx), "hello\n");
    thread::sleep(Duration::from_millis(100));
    closer.shutdown(Shutdown::Both).expect("shutdown");
    match rx.recv_timeout(WAIT) {
        Ok(None | Some(Err(_))) => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }
}
