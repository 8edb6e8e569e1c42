//! The configuration file through the real binary (issue 25): found under
//! `$XDG_CONFIG_HOME/chat-client/config.toml`, its defaults used when the command line says
//! nothing, the command line winning when it does, and a bad file refused with its line and
//! column before anything connects (status 2), never a crash.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

use util::{Client, Console, Peer, Server};

/// A configuration directory holding `chat-client/config.toml` with `text`.
fn config_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("chat-client");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("config.toml"), text).unwrap();
    dir
}

fn env(dir: &Path) -> Vec<(&str, &str)> {
    vec![
        ("XDG_CONFIG_HOME", dir.to_str().unwrap()),
        ("XDG_STATE_HOME", dir.to_str().unwrap()),
    ]
}

#[test]
fn a_bad_file_is_refused_with_its_line_and_column() {
    for (text, expect) in [
        (
            "name = \"ok\"\n[colors]\ntime = \"plaid\"\n",
            "config.toml:3:8: colors.time: unknown color",
        ),
        ("highlite = [\"x\"]\n", "config.toml:1:1: "),
        ("bell = yes\n", "config.toml:1:8: "),
        (
            "max_line = 1\n",
            "config.toml:1:12: max_line: 1 is out of range",
        ),
        ("time_format = \"%Q\"\n", "config.toml:1:15: time_format: "),
    ] {
        let dir = config_dir(text);
        let mut client = Client::start(&["--plain", "127.0.0.1:1"], &env(dir.path()));
        let (code, stderr) = client.wait();
        assert_eq!(code, 2, "{text:?}: {stderr}");
        assert!(stderr.contains(expect), "{text:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_named_file_that_is_missing_is_an_error_and_a_default_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let mut client = Client::start(
        &[
            "--plain",
            "--config",
            missing.to_str().unwrap(),
            "127.0.0.1:1",
        ],
        &env(dir.path()),
    );
    let (code, stderr) = client.wait();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot read") && stderr.contains("nope.toml"),
        "{stderr}"
    );
    // No file at the default place: the client goes on (and fails to connect to port 1).
    let mut client = Client::start(&["--plain", "--name", "x", "127.0.0.1:1"], &env(dir.path()));
    let (code, _) = client.wait();
    assert_eq!(code, 3);
}

#[test]
fn the_file_gives_the_name_and_server_and_flags_win() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let dir = config_dir(&format!(
        "name = \"fromfile\"\nserver = \"{}\"\n",
        server.addr
    ));
    // No name, no address on the command line: both from the file.
    let mut client = Client::start(&["--plain"], &env(dir.path()));
    alice.expect("JOIN fromfile");
    client.type_line("/leave");
    assert_eq!(client.wait().0, 0);
    // --name wins over the file.
    let mut client = Client::start(&["--plain", "--name", "fromflag"], &env(dir.path()));
    alice.expect("JOIN fromflag");
    client.close_stdin();
    assert_eq!(client.wait().0, 0);
}
