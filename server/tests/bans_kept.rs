//! Bans outlive a restart whole (issue 22): a ban's range, reason, console and end are kept in
//! the data directory, so `bans` shows the same after a `kill -9` and a restart on the same
//! `--data-dir`; a ban that ran out while the server was down does not come back. The real
//! binary over real sockets.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chat_testkit::{Client, Server, TempDir};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// A `bans` row with its time left (`, 1h59m left`) taken out: the rest must not change.
fn without_time_left(row: &str) -> String {
    match (row.find(", "), row.find(" left)")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &row[..a], &row[b + " left".len()..]),
        _ => row.to_owned(),
    }
}

/// Makes sure every ban typed so far is on disk: a message delivered after them is durable
/// after them (one commit keeps a round's writes in order).
#[track_caller]
fn settle(server: &Server, tag: &str) {
    let mut a = server.login(&format!("{tag}a"));
    let mut b = server.login(&format!("{tag}b"));
    // (Past the history of earlier runs' messages.)
    a.skip_until(&format!("JOIN {tag}b"));
    a.send_line("after the bans");
    let got = b.skip_until(&format!("MSG {tag}a "));
    assert_eq!(got, format!("MSG {tag}a - after the bans"));
}

#[test]
fn bans_keep_their_reason_console_and_end_across_a_kill_9_and_expired_ones_stay_gone() {
    let dir = TempDir::new("bans-restart");
    let args = ["--auto-approve", "--data-dir", dir.arg()];
    let mut server = Server::start(&args);
    server.console("ban 127.0.0.8/29 2h flooding the room");
    server.expect_console("banned 127.0.0.8/29 ");
    server.console("ban 127.0.0.30");
    server.expect_console("banned 127.0.0.30 ");
    server.console("ban 127.0.0.40 2s a short one");
    let short_ends = Instant::now() + Duration::from_secs(2);
    server.expect_console("banned 127.0.0.40 ");
    let before = server.console_reply("bans");
    assert_eq!(before.len(), 4, "{before:?}");
    assert_eq!(before[0], "bans: 3");
    settle(&server, "s");
    server.signal("KILL");
    drop(server);

    // The short ban ends while the server is down (this waits for the clock, not for a
    // process: nothing else can tell the ban has run out).
    std::thread::sleep(short_ends.saturating_duration_since(Instant::now()));

    let mut server = Server::start(&args);
    let after = server.console_reply("bans");
    let lasting: Vec<String> = before
        .iter()
        .filter(|row| !row.contains("127.0.0.40"))
        .map(|row| without_time_left(row).replace("bans: 3", "bans: 2"))
        .collect();
    let after_rows: Vec<String> = after.iter().map(|r| without_time_left(r)).collect();
    assert_eq!(after_rows, lasting, "before the restart: {before:?}");
    assert_eq!(
        after_rows,
        [
            "bans: 2",
            "  127.0.0.8/29 (by stdin): flooding the room",
            "  127.0.0.30 (by stdin)",
        ]
    );
    assert!(after[1].contains(" left)"), "the end is kept: {after:?}");
    assert!(
        !after[1].contains(", 2h00m left"),
        "time went on: {after:?}"
    );

    // Kept means enforced: the range and the address are refused, the ended ban is not.
    for banned in ["127.0.0.9", "127.0.0.15", "127.0.0.30"] {
        let mut c = Client::connect_from(server.addr(), ip(banned));
        c.expect("DENIED your address is banned");
    }
    let mut free = Client::connect_from(server.addr(), ip("127.0.0.40"));
    free.login("free");

    // And it stays gone through another restart; the lasting ones are still there.
    settle(&server, "t");
    server.signal("KILL");
    drop(server);
    let mut server = Server::start(&args);
    let again: Vec<String> = server
        .console_reply("bans")
        .iter()
        .map(|r| without_time_left(r))
        .collect();
    assert_eq!(again, lasting);
}

#[test]
fn an_unban_is_kept_too() {
    let dir = TempDir::new("bans-unban");
    let args = ["--auto-approve", "--data-dir", dir.arg()];
    let mut server = Server::start(&args);
    server.console("ban 127.0.0.50 1d spam");
    server.expect_console("banned 127.0.0.50 ");
    server.console("unban 127.0.0.50");
    server.expect_console("unbanned 127.0.0.50 (by stdin)");
    settle(&server, "u");
    server.signal("KILL");
    drop(server);
    let mut server = Server::start(&args);
    assert_eq!(server.console_reply("bans"), ["bans: 0"]);
    let mut back = Client::connect_from(server.addr(), ip("127.0.0.50"));
    back.login("back");
}
