//! The server's exit statuses, as the man page lists them (`serve::exit`), from the real
//! binary: 2 for a bad flag and for a data directory held by another server, 3 for a listen
//! address in use, 4 for a data directory that cannot be used or a store file that is not a
//! store; each with one line on standard error that says why.
//!
//! The real binary on real sockets (127.0.0.1); each run is bounded in time.

use std::net::TcpListener;
use std::time::Duration;

use chat_testkit::{Server, TempDir};

const WITHIN: Duration = Duration::from_secs(10);

#[test]
fn each_failure_to_start_exits_with_its_status_and_says_why() {
    let (status, _, err) = Server::run_to_exit(&["--max-clients", "lots"], WITHIN);
    assert_eq!(status.code(), Some(2), "bad flag: {err}");
    assert!(err.contains("--max-clients"), "{err}");

    let taken = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = taken
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"))
        .to_string();
    let (status, _, err) = Server::run_to_exit(&["--listen", &addr], WITHIN);
    assert_eq!(status.code(), Some(3), "address in use: {err}");
    assert!(
        err.starts_with("chat-server: ") && err.contains(&addr),
        "{err}"
    );

    let dir = TempDir::new("exit-corrupt");
    std::fs::write(dir.path().join("chat.redb"), vec![7u8; 20_000]).unwrap_or(());
    let (status, _, err) = Server::run_to_exit(
        &["--listen", "127.0.0.1:0", "--data-dir", dir.arg()],
        WITHIN,
    );
    assert_eq!(status.code(), Some(4), "corrupt store: {err}");
    assert!(err.contains("chat.redb"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap_or(());
    let below = file.join("store");
    let below = below.to_str().unwrap_or_default();
    let (status, _, err) =
        Server::run_to_exit(&["--listen", "127.0.0.1:0", "--data-dir", below], WITHIN);
    assert_eq!(status.code(), Some(4), "unusable directory: {err}");
    assert!(err.contains("data directory"), "{err}");

    let held = TempDir::new("exit-held");
    let _first = Server::start(&["--data-dir", held.arg()]);
    let (status, _, err) = Server::run_to_exit(
        &["--listen", "127.0.0.1:0", "--data-dir", held.arg()],
        WITHIN,
    );
    assert_eq!(status.code(), Some(2), "directory held: {err}");
    assert!(err.contains("in use by another server"), "{err}");
}
