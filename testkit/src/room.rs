//! Putting a room together and checking it, the steps many test files share: log members in
//! ([`room`]), prove that nothing else arrived with a marker message ([`marker`]), ask who is
//! online ([`expect_online`]), act as another host by connecting from another loopback address
//! ([`host`], [`join_from`], [`offer_from`], [`churn_once`]), and sync after a burst of tiny
//! lines ([`send_tiny_and_sync`]).
//!
//! "Nothing arrives" is proven with a marker: after the action that must not reach a member, a
//! room message is sent and must be that member's very next line.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::client::Client;
use crate::server::Server;

/// The loopback address `127.0.0.last` (Linux routes all of 127/8 to `lo`), to play another
/// host.
pub fn host(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Logs in `names` in order on an auto-approving server, consuming the `JOIN`s each earlier
/// member receives, so every returned client has nothing unread. Only for rooms where nothing
/// was said yet, or history is off (a newcomer's `HIST` lines are not read).
#[track_caller]
pub fn room(server: &Server, names: &[&str]) -> Vec<Client> {
    let mut clients: Vec<Client> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut c = server.connect();
        assert_eq!(c.login(name), i + 1, "online count in {name}'s WELCOME");
        for earlier in clients.iter_mut() {
            earlier.expect_exact(&format!("JOIN {name}"));
        }
        clients.push(c);
    }
    clients
}

/// `who` sends `text` to the room (as `who_name`, its current name) and `others` must each get
/// it as their very next line.
#[track_caller]
pub fn marker_as(who: &mut Client, who_name: &str, others: &mut [&mut Client], text: &str) {
    who.send_line(text);
    let line = format!("MSG {who_name} - {text}");
    for o in others.iter_mut() {
        o.expect_exact(&line);
    }
}

/// [`marker_as`] under the name the client logged in with.
#[track_caller]
pub fn marker(who: &mut Client, others: &mut [&mut Client], text: &str) {
    let name = who.name.clone();
    marker_as(who, &name, others, text);
}

/// `/who` from `c` lists exactly `names` (in any order); any line before the answer (such as a
/// `LEAVE ... dropped`) fails the test.
#[track_caller]
pub fn expect_online(c: &mut Client, names: &[&str]) {
    c.send_line("/who");
    let prefix = format!("INFO online ({}): ", names.len());
    let who = c.expect(&prefix);
    let mut listed: Vec<&str> = who[prefix.len()..].split(", ").collect();
    listed.sort_unstable();
    assert_eq!(listed, names, "in {who:?}");
}

/// Connects from `from`, offers `name`, expects `WAIT`, and awaits the console's announcement
/// `join request: NAME from IP:PORT ...` with the real source address (no `--auto-approve`).
#[track_caller]
pub fn join_from(server: &mut Server, from: IpAddr, name: &str) -> Client {
    let mut c = Client::connect_from(server.addr(), from);
    c.name = name.to_owned();
    c.expect("NAME? ");
    c.send_line(name);
    c.expect("WAIT ");
    let announced = server.expect_console(&format!("join request: {name} from "));
    assert!(
        announced.starts_with(&format!("join request: {name} from {} ", c.local_addr())),
        "announcement {announced:?} does not name {}",
        c.local_addr()
    );
    c
}

/// Offers `name` on a connection from `from` and returns the reply: `WAIT ...`, or an `ERROR`
/// (the refusal may also come before the prompt, at connect time; then that line is returned).
#[track_caller]
pub fn offer_from(server: &Server, from: IpAddr, name: &str) -> (Client, String) {
    let mut c = Client::connect_from(server.addr(), from);
    c.name = format!("{name}@{from}");
    let first = c.next_line();
    if !first.starts_with("NAME? ") {
        return (c, first);
    }
    c.send_line(name);
    let reply = c.next_line();
    (c, reply)
}

/// One join request from one of 200 loopback addresses (`127.0.1.x`), offered (until its
/// `WAIT` is read) and withdrawn (the socket is closed).
#[track_caller]
pub fn churn_once(server: SocketAddr, i: usize) {
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 1, (i % 200 + 1) as u8));
    let mut c = Client::connect_from(server, from);
    c.name = format!("churn{i}");
    c.expect("NAME? ");
    c.send_line(&format!("churn{i}"));
    c.expect("WAIT ");
}

/// Sends `lines` one-character room messages in one write, then `/sync` (an unknown command,
/// answered in order), and returns every line `s` got before the answer.
#[track_caller]
pub fn send_tiny_and_sync(s: &mut Client, lines: usize) -> Vec<String> {
    s.send_raw("x\n".repeat(lines).as_bytes());
    s.send_line("/sync");
    let mut got = Vec::new();
    loop {
        let line = s.next_line();
        if line.starts_with("ERROR unknown-command ") {
            return got;
        }
        got.push(line);
    }
}

/// [`send_tiny_and_sync`] for a version 3 sender (see [`login_v3`]): also waits for the `ECHO`
/// of every line, which the server sends once the line is delivered (durable before delivered:
/// the `/sync` error comes back at once, the lines once the store has them). Returns the other
/// lines.
#[track_caller]
pub fn send_tiny_and_sync_v3(s: &mut Client, lines: usize) -> Vec<String> {
    s.send_raw("x\n".repeat(lines).as_bytes());
    s.send_line("/sync");
    let (mut got, mut echoes, mut synced) = (Vec::new(), 0, false);
    while echoes < lines || !synced {
        let line = s.next_line();
        if line.starts_with("ERROR unknown-command ") {
            synced = true;
        } else if line.starts_with("ECHO ") {
            echoes += 1;
        } else {
            got.push(line);
        }
    }
    got
}

/// Logs `c` in as a version 3 member called `name` (`--auto-approve`): `HELLO 3`, the name,
/// `WELCOME`; returns its token.
#[track_caller]
pub fn login_v3(c: &mut Client, name: &str) -> String {
    c.expect("NAME? ");
    c.send_line("HELLO 3");
    c.expect_exact("HELLO 3");
    c.send_line(name);
    c.expect_welcome(name);
    let token = c.expect("TOKEN ");
    token["TOKEN ".len()..].to_owned()
}
