//! Line mode never loses what it reads without a word (issue 25): a message longer than the
//! server's line limit reaches the room in pieces that fit, split at words; a line longer than
//! what line mode reads (64 KiB) is refused whole and said, and the next line goes as usual.
#![allow(clippy::unwrap_used)]

mod util;

use util::{Client, Console, Peer, Server};

#[test]
fn a_long_message_is_split_and_an_enormous_line_is_refused_whole() {
    let server = Server::start(true, Console::Closed);
    let mut alice = Peer::join(&server.addr, "alice");
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().to_str().unwrap();
    let mut bob = Client::start(
        &["--name", "bob", &server.addr],
        &[("XDG_CONFIG_HOME", dir), ("XDG_STATE_HOME", dir)],
    );
    bob.stdout.expect("you are in as bob");
    alice.expect("JOIN bob");
    let words: Vec<String> = (0..1500).map(|i| format!("w{i}")).collect();
    bob.type_line(&words.join(" "));
    let mut got = Vec::new();
    while got.len() < words.len() {
        let line = alice.expect("MSG bob - ");
        assert!(line.len() <= 4096 + "MSG bob - ".len(), "{}", line.len());
        got.extend(line["MSG bob - ".len()..].split(' ').map(str::to_owned));
    }
    assert_eq!(got, words);
    bob.type_line(&"y".repeat(100 * 1024));
    bob.type_line("after the big one");
    assert_eq!(alice.expect("MSG "), "MSG bob - after the big one");
    bob.stdout.expect("! a line of 102401 bytes was not sent");
    bob.close_stdin();
    assert_eq!(bob.wait().0, 0);
}
