//! Hostile peers against protocol version 3's surfaces (Round 4 in docs/SECURITY.md): resume
//! replays of long lines, members kept in the room without a connection, and the opening
//! lines (`HELLO`, `RESUME`) sent out of turn. The real binary over real sockets; each test
//! is named for what broke.

use std::net::{IpAddr, Ipv4Addr, Shutdown};

use chat_testkit::{Client, Server, TempDir};

/// Connects from `source`, says `HELLO 3` and awaits its answer.
#[track_caller]
fn hello_from(server: &Server, source: IpAddr) -> Client {
    let mut c = server.connect_from(source);
    c.expect("NAME? ");
    c.send_line("HELLO 3");
    c.expect_exact("HELLO 3");
    c
}

/// A version 3 member admitted by `--auto-approve` from `source`, and its token.
#[track_caller]
fn v3_login_from(server: &Server, name: &str, source: IpAddr) -> (Client, String) {
    let mut c = hello_from(server, source);
    c.send_line(name);
    c.expect_welcome(name);
    let token = c
        .expect("TOKEN ")
        .strip_prefix("TOKEN ")
        .unwrap_or_default()
        .to_owned();
    (c, token)
}

/// The next line that starts with one of `prefixes` (others are skipped).
#[track_caller]
fn skip_until_any(c: &mut Client, prefixes: &[&str]) -> String {
    loop {
        let line = c.next_line();
        if prefixes.iter().any(|p| line.starts_with(p)) {
            return line;
        }
    }
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How many long lines the room holds when the member resumes: more than one old page (256).
const LONG_LINES: usize = 300;

/// A resume replay was read from the log 256 entries at a time whatever their length: 256
/// lines of 4000 bytes came to about 1.07 MB in one go, over the default 1 MiB `--max-queue`,
/// so every member resuming after them was dropped at once ("bytes behind: dropping"), and
/// any member could lock the others out of resuming by sending 256 long lines.
#[test]
fn a_resume_replay_of_long_lines_is_paced_instead_of_dropping_the_member() {
    let dir = TempDir::new("hostile-v3-long-replay");
    let server = Server::start(&["--auto-approve", "--rate", "0", "--data-dir", dir.arg()]);
    let (alice, token) = v3_login_from(&server, "alice", LOCAL);
    let mut bob = server.login("bob");
    alice.stream().shutdown(Shutdown::Both).unwrap_or(());
    drop(alice); // within the resume window: alice is kept in the room
    let text = "x".repeat(4000);
    for i in 0..LONG_LINES {
        bob.send_line(&format!("{i} {text}"));
    }
    // Bob reads his own lines' echo-free stream: a `/who` answered after them means the server
    // has relayed (and so logged) them all.
    bob.send_line("/who");
    bob.skip_until("INFO online");

    let mut again = hello_from(&server, LOCAL);
    again.send_line(&format!("RESUME alice {token} -"));
    again.expect_welcome("alice");
    again.expect("TOKEN ");
    let mut replayed = 0;
    loop {
        let line = again.next_line();
        if line.starts_with("INFO online") {
            break;
        }
        if line.contains(" HIST ") && line.ends_with(&text) {
            replayed += 1;
        }
    }
    assert_eq!(replayed, LONG_LINES, "every long line replayed once");
}

/// How many version 3 members the flood below drops; the limits allow 4 kept.
const DROPPED: usize = 12;

/// A version 3 member whose connection drops is kept in the room for the resume window, and
/// those kept members counted against no limit: one address allowed 5 connections
/// (`--max-per-ip 5 --max-clients 50`) left 2000 members in the room in 7.4 s, each holding its
/// name and listed by `/who` for a minute. A kept member now counts as its connection did: at
/// most `--max-per-ip` from one address and `--max-clients` in all; past it a drop is a `LEAVE`.
#[test]
fn members_kept_after_a_drop_are_bounded_by_the_connection_limits() {
    let server = Server::start(&["--auto-approve", "--max-per-ip", "4", "--data-dir", "none"]);
    let flooder: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
    let mut watcher = server.connect_from(LOCAL);
    watcher.login("watcher");
    for i in 0..DROPPED {
        let name = format!("g{i}");
        let (c, _) = v3_login_from(&server, &name, flooder);
        watcher.expect_exact(&format!("JOIN {name}"));
        c.stream().shutdown(Shutdown::Both).unwrap_or(());
        drop(c);
        if i >= 4 {
            // Past the address's four places the member leaves at once.
            watcher.expect_exact(&format!("LEAVE {name} quit"));
        }
    }
    watcher.send_line("/who");
    let who = watcher.skip_until("INFO online");
    assert!(who.starts_with("INFO online (5): "), "{who}");
    for kept in ["g0", "g1", "g2", "g3"] {
        assert!(who.contains(kept), "{who}");
    }
}

/// The data directory's file size limit in the test below: room for a few hundred lines.
const FSIZE: &str = "--fsize=3000000:unlimited";

/// A write past the file size limit (`ulimit -f`, systemd's `LimitFSIZE=`) raised SIGXFSZ,
/// whose default action killed the server: with a 3 MB limit the store's 491st line of 3000
/// bytes ended the process (signal 25) and every member's connection with it. The server now
/// handles the signal: the write fails, the room refuses messages (`ERROR unavailable`), and
/// once the limit is raised the store writes again within about a second.
#[test]
fn a_file_size_limit_refuses_messages_instead_of_killing_the_server_and_recovers() {
    let dir = TempDir::new("hostile-v3-fsize");
    let mut server = Server::builder()
        .wrapper(&["prlimit", FSIZE, "--"])
        .args(&["--auto-approve", "--rate", "0", "--data-dir", dir.arg()])
        .start();
    let (mut writer, _) = v3_login_from(&server, "writer", LOCAL);
    let filler = "y".repeat(3000);
    let mut refused = false;
    for i in 0..2000u32 {
        writer.send_line(&format!("{i} {filler}"));
        // Each line's answer: its ECHO, or the refusal once the limit is reached.
        let answer = skip_until_any(&mut writer, &["ECHO ", "ERROR "]);
        if answer.starts_with("ERROR unavailable") {
            refused = true;
            break;
        }
    }
    assert!(refused, "the writer never got ERROR unavailable");
    server.expect_console("store: cannot write");
    let raised = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &server.pid().to_string(),
            "--fsize=unlimited:unlimited",
        ])
        .status()
        .map(|s| s.success());
    assert_eq!(raised.ok(), Some(true), "prlimit --pid failed");
    server.expect_console("store: writing again");
    writer.send_line("after");
    let answer = skip_until_any(&mut writer, &["ECHO ", "ERROR "]);
    assert!(answer.starts_with("ECHO "), "{answer}");
}

/// `HELLO 3`, then `HELLO 2`, was answered `HELLO 2` while the session stayed version 3 (it
/// got a `TOKEN` and tags): a client could not know which version it spoke. A second `HELLO`
/// is now refused and the version stays what was answered first.
#[test]
fn a_second_hello_is_refused_and_the_first_version_holds() {
    let server = Server::start(&["--auto-approve", "--data-dir", "none"]);
    let mut c = hello_from(&server, LOCAL);
    c.send_line("HELLO 2");
    c.expect("ERROR usage ");
    c.expect("NAME? ");
    c.send_line("HELLO 3");
    c.expect("ERROR usage ");
    c.expect("NAME? ");
    c.send_line("carol");
    c.expect_welcome("carol");
    c.expect("TOKEN ");
}
