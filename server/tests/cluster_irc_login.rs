//! An IRC member's token login under `--cluster` is a `RESUME` across servers: a member
//! approved on one server whose client reconnects to another with its password (`PASS`, or
//! SASL `PLAIN`) while the first still holds its session is admitted there at once under its
//! name, without the operator; the first server lets go (its connection, if still there, gets
//! `ERROR :resumed elsewhere` and closes) and the room sees no `LEAVE`/`JOIN`: the next line
//! every member gets is the member's own, from its new server. A wrong token falls back to the
//! operator deciding, with the same `NOTICE` as on one server.
//!
//! Real `chat-server` binaries and a real `redis-server` (the test kit's, on a free port) over
//! real sockets (127.0.0.1). Every wait is a read with a deadline.
#![allow(clippy::unwrap_used)]

mod irc_kit;

use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chat_testkit as util;
use irc_kit::{irc_member, Irc};
use util::redis::Redis;
use util::{Client, Console, Server};

/// `--cluster-timeout`: a login that waited for a dead server's names to be freed (rather than
/// for the takeover) would take twice as long.
const CLUSTER_TIMEOUT: &str = "3";

/// How soon a takeover through the room's log admits the login: well under the wait for a
/// dead server's names.
const AT_ONCE: Duration = Duration::from_secs(3);

/// A server of the room on `redis` with an operator, a native listener and an IRC listener,
/// once it is in the room; its IRC address.
fn node(redis: &Redis) -> (Server, SocketAddr) {
    let url = redis.url();
    let args = [
        "--cluster",
        url.as_str(),
        "--cluster-timeout",
        CLUSTER_TIMEOUT,
        "--rate",
        "0",
        "--irc-listen",
        "127.0.0.1:0",
        "--log-level",
        "warn",
    ];
    let mut s = Server::start_with(&args, Console::Piped);
    let (mut irc, mut joined) = (None, false);
    while irc.is_none() || !joined {
        let line = s.next_console();
        if let Some(addr) = line
            .strip_prefix("listening on ")
            .and_then(|l| l.strip_suffix(" (IRC)"))
        {
            irc = addr.parse().ok();
        }
        joined |= line.starts_with("cluster: in the room as server ");
    }
    (s, irc.unwrap())
}

/// Two servers of one room, `bob` a native member of the first and `carol` of the second,
/// and `alice` an IRC member approved on the first (its token kept), whose line both have
/// seen (so both servers know its record).
struct Room {
    _redis: Redis,
    s1: Server,
    s2: Server,
    irc2: SocketAddr,
    bob: Client,
    carol: Client,
    alice: Irc,
    token: String,
}

fn room() -> Room {
    let redis = Redis::start();
    let (mut s1, irc1) = node(&redis);
    let (mut s2, irc2) = node(&redis);
    let mut bob = s1.approved("bob");
    let mut carol = s2.approved("carol");
    bob.skip_until("JOIN carol");
    let mut alice = irc_member(&mut s1, irc1, "alice", "");
    let token = alice.token.clone().unwrap();
    bob.expect_exact("JOIN alice");
    // bob's JOIN may reach carol's server after carol was admitted: the log's order.
    carol.skip_until("JOIN alice");
    // The token's record went to the room's log before this line.
    alice.send("PRIVMSG #chat :hi");
    bob.expect_exact("MSG alice - hi");
    carol.expect_exact("MSG alice - hi");
    Room {
        _redis: redis,
        s1,
        s2,
        irc2,
        bob,
        carol,
        alice,
        token,
    }
}

/// `AUTHENTICATE`'s payload for SASL `PLAIN`: base64 of `authzid NUL authcid NUL password`.
fn plain(authcid: &str, password: &str) -> String {
    STANDARD.encode(format!("{authcid}\0{authcid}\0{password}"))
}

/// Registers with `PASS token`, `NICK`, `USER` (weechat's order), through `422`.
#[track_caller]
fn with_pass(addr: SocketAddr, nick: &str, token: &str) -> Irc {
    let mut irc = Irc::connect(addr, nick);
    irc.send(&format!("PASS {token}"));
    irc.send(&format!("NICK {nick}"));
    irc.send(&format!("USER {nick} 0 * :Real Name"));
    irc.expect(&format!(":chat.server 001 {nick} :"));
    irc.until(" 422 ");
    irc
}

/// Registers with SASL `PLAIN` as irssi does (caps first, `903`, `CAP END`), through `422`.
#[track_caller]
fn with_sasl(addr: SocketAddr, nick: &str, token: &str) -> Irc {
    let mut irc = Irc::connect(addr, nick);
    irc.send("CAP LS 302");
    irc.send(&format!("NICK {nick}"));
    irc.send(&format!("USER {nick} {nick} localhost :Real Name"));
    irc.expect(" CAP * LS :");
    irc.send("CAP REQ :sasl");
    irc.expect(" CAP * ACK :sasl");
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!("AUTHENTICATE {}", plain(nick, token)));
    irc.expect(&format!(":chat.server 900 * * {nick} :"));
    irc.expect(":chat.server 903 * :SASL authentication successful");
    irc.send("CAP END");
    irc.expect(&format!(":chat.server 001 {nick} :"));
    irc.until(" 422 ");
    irc
}

/// The channel's join burst of a member admitted by its token: `JOIN`, `331`, the names
/// (everyone in the room, once); no notice of waiting for the operator.
#[track_caller]
fn joined_without_waiting(irc: &mut Irc, nick: &str) {
    let join = irc.line();
    assert_eq!(join, format!(":{nick}!{nick}@chat.server JOIN #chat"));
    irc.expect(" 331 ");
    let names = irc.expect(" 353 ");
    let mut listed: Vec<&str> = names.rsplit(':').next().unwrap().split(' ').collect();
    listed.sort_unstable();
    assert_eq!(listed, ["alice", "bob", "carol"], "{names}");
    irc.expect(" 366 ");
}

/// The moved member talks: the next line of every other member is its (no `LEAVE`/`JOIN`
/// came before it), and the operators of both servers saw the move.
#[track_caller]
fn nobody_saw_it_move(room: &mut Room, again: &mut Irc) {
    room.s1.expect_console("alice resumed on server ");
    room.s2.expect_console("resumed alice");
    again.send("PRIVMSG #chat :back");
    room.bob.expect_exact("MSG alice - back");
    room.carol.expect_exact("MSG alice - back");
}

/// Logs in on the second server with `login` while the first still holds alice's session;
/// asserts it is admitted there at once under its name, and nobody saw it move.
#[track_caller]
fn moves_at_once(room: &mut Room, login: fn(SocketAddr, &str, &str) -> Irc) -> Irc {
    let asked = Instant::now();
    let mut again = login(room.irc2, "alice", &room.token);
    joined_without_waiting(&mut again, "alice");
    assert!(
        asked.elapsed() < AT_ONCE,
        "it waited {:?}: not for the cluster timeout",
        asked.elapsed()
    );
    nobody_saw_it_move(room, &mut again);
    again
}

/// alice's client lost its link to the first server without the server noticing (no FIN:
/// the test only stops reading its end), as a phone that changed networks does.
fn silently_cut(irc: &Irc) {
    irc.stream.shutdown(Shutdown::Read).unwrap_or(());
}

#[test]
fn an_irc_member_cut_off_on_one_server_logs_in_with_pass_on_another_at_once() {
    let mut room = room();
    silently_cut(&room.alice);
    let mut again = moves_at_once(&mut room, with_pass);
    // alice is the second server's member now: its QUIT there is the room's LEAVE.
    again.send("QUIT :moving on");
    again.expect_error_then_close();
    room.bob.expect_exact("LEAVE alice left");
    room.carol.expect_exact("LEAVE alice left");
}

#[test]
fn an_irc_member_cut_off_on_one_server_logs_in_with_sasl_on_another_at_once() {
    let mut room = room();
    silently_cut(&room.alice);
    moves_at_once(&mut room, with_sasl);
}

#[test]
fn an_irc_member_still_connected_on_one_server_is_taken_over_by_its_login_on_another() {
    let mut room = room();
    let mut again = moves_at_once(&mut room, with_pass);
    let error = room.alice.expect_error_then_close();
    assert_eq!(error, "ERROR :resumed elsewhere");
    again.send("PRIVMSG #chat :still one alice");
    room.carol.expect_exact("MSG alice - still one alice");
}

#[test]
fn a_wrong_token_on_another_server_says_so_and_the_operator_decides() {
    let mut room = room();
    // A stranger with a wrong password: the NOTICE, registration, and the waiting room.
    let mut erin = Irc::connect(room.irc2, "erin");
    erin.send("PASS not-the-token-at-all-0123456789");
    erin.send("NICK erin");
    erin.send("USER erin 0 * :Erin");
    let notice = erin.expect(":chat.server NOTICE * :That password is not a token");
    assert!(notice.ends_with("the operator decides"), "{notice}");
    erin.expect(":chat.server 001 erin :");
    erin.until(" 422 ");
    let wait = erin.expect(":chat.server NOTICE erin :");
    assert!(wait.contains("operator"), "{wait}");
    room.s2.expect_console("join request: erin from ");
    room.s1.expect_console("join request: erin from ");

    // alice's name with a wrong password, alice still on the first server: the same NOTICE,
    // then the nick is taken (433); another nick waits for the operator. alice is untouched.
    let mut fake = Irc::connect(room.irc2, "alice");
    fake.send("PASS not-the-token-at-all-0123456789");
    fake.send("NICK alice");
    fake.send("USER alice 0 * :Not Alice");
    fake.expect(":chat.server NOTICE * :That password is not a token");
    fake.expect(":chat.server 433 * alice :");
    fake.send("NICK alice_");
    // The password is tried again with the new nick (as on one server): the same NOTICE.
    fake.expect(":chat.server NOTICE * :That password is not a token");
    fake.expect(":chat.server 001 alice_ :");
    fake.until(" 422 ");
    fake.expect(":chat.server NOTICE alice_ :");
    room.s2.expect_console("join request: alice_ from ");
    room.s2.console("approve erin");
    erin.expect(":erin!erin@chat.server JOIN #chat");
    room.alice.send("PRIVMSG #chat :unmoved");
    room.bob.skip_until("MSG alice - unmoved");
    room.carol.skip_until("MSG alice - unmoved");
}

/// Skips lines until one contains `part`, waiting at most `within` for it.
#[track_caller]
fn until_within(irc: &mut Irc, part: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match irc.try_line(left) {
            Ok(line) if line.contains(part) => return line,
            Ok(line) => seen.push(line),
            Err(end) => panic!("no line with {part:?} within {within:?} ({end}); saw {seen:#?}"),
        }
    }
}

#[test]
fn a_login_refused_after_waiting_for_a_dead_server_falls_back_to_the_operator() {
    let mut room = room();
    // alice's server dies: its names are the room's until it is declared dead.
    room.s1.signal("KILL");
    // SASL as alice, with carol's nick (its account is the name it logs in as): 903, and
    // registration completes while the login waits for the dead server's names.
    let mut irc = Irc::connect(room.irc2, "carol");
    irc.send("CAP LS 302");
    irc.send("NICK carol");
    irc.send("USER carol 0 * :Carol Two");
    irc.expect(" CAP * LS :");
    irc.send("CAP REQ :sasl");
    irc.expect(" CAP * ACK :sasl");
    irc.send("AUTHENTICATE PLAIN");
    irc.expect("AUTHENTICATE +");
    irc.send(&format!("AUTHENTICATE {}", plain("alice", &room.token)));
    irc.expect(":chat.server 900 ");
    irc.expect(":chat.server 903 ");
    irc.send("CAP END");
    irc.expect(":chat.server 001 carol :");
    irc.until(" 422 ");
    // A client's autojoin while the login waits: told what it waits for (not the operator).
    irc.send("JOIN #chat");
    irc.expect(":chat.server NOTICE carol :You join #chat when your login is confirmed");
    // Meanwhile the operator forgets alice: once the name is free, the token admits nobody.
    room.s2.console("forget alice");
    room.s2.expect_console("forgot alice (by stdin)");
    let within = Duration::from_secs(3 * 2 + 5);
    let notice = until_within(&mut irc, ":chat.server NOTICE carol :That password", within);
    assert!(notice.ends_with("the operator decides"), "{notice}");
    room.carol.skip_until("LEAVE alice quit");
    // Its nick is carol's, a member: 433, and the next NICK is the name it waits under.
    irc.expect(":chat.server 433 carol carol :");
    irc.send("NICK carol2");
    irc.expect(":carol!carol@chat.server NICK carol2");
    let wait = irc.expect(":chat.server NOTICE carol2 :");
    assert!(wait.contains("operator"), "{wait}");
    room.s2.expect_console("join request: carol2 from ");
    room.s2.console("approve carol2");
    irc.expect(":carol2!carol2@chat.server JOIN #chat");
    irc.expect(" 331 ");
    irc.until(" 366 ");
    room.carol.skip_until("JOIN carol2");
}
