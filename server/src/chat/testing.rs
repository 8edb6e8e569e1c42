//! Unit and property tests of the core, driven through a recording [`Outbox`]: no socket, no
//! clock, no reactor.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use chat_common::framing::Frame;
use proptest::prelude::*;

use super::bus::{Entry, Event, FromBridge, LogId, RemoteEntry, ToBridge};
use super::{Audience, ConnId, ConsoleId, Core, CoreTimer, Now, Outbox, Outgoing};
use crate::config::Config;

/// Records every effect.
#[derive(Debug, Default)]
struct Recorder {
    lines: HashMap<ConnId, Vec<String>>,
    /// Each `send` as (recipient, line), in order, and how many times the same bytes were
    /// shared (pointer equality).
    sends: Vec<(ConnId, Rc<Outgoing>)>,
    closed: Vec<ConnId>,
    console: Vec<(Audience, String)>,
    timers: Vec<(Instant, ConnId, CoreTimer)>,
    quit: bool,
    /// What the core asked of the cluster bridge.
    bridge: Vec<ToBridge>,
}

impl Outbox for Recorder {
    fn send(&mut self, to: ConnId, line: &Rc<Outgoing>) {
        let text = String::from_utf8(line.encoded(super::Dialect::Line).to_vec()).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        self.lines
            .entry(to)
            .or_default()
            .push(text.trim_end_matches('\n').to_owned());
        self.sends.push((to, Rc::clone(line)));
    }
    fn replay(&mut self, to: ConnId, mut replay: super::Replay) {
        while let Some(msg) = replay.next_message() {
            self.send(to, &msg);
        }
    }
    fn close(&mut self, id: ConnId) {
        self.closed.push(id);
    }
    fn console(&mut self, to: Audience, line: fmt::Arguments<'_>) {
        self.console.push((to, line.to_string()));
    }
    fn arm(&mut self, at: Instant, id: ConnId, timer: CoreTimer) {
        self.timers.push((at, id, timer));
    }
    fn quit(&mut self) {
        self.quit = true;
    }
    fn cluster(&mut self, msg: ToBridge) {
        self.bridge.push(msg);
    }
}

struct Harness {
    core: Core,
    out: Recorder,
    now: Now,
    serial: u64,
}

impl Harness {
    fn new(config: Config) -> Harness {
        Harness {
            core: Core::new(config, 1),
            out: Recorder::default(),
            now: Now {
                at: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_605_109),
            },
            serial: 0,
        }
    }

    fn auto() -> Harness {
        Harness::new(Config {
            auto_approve: true,
            ..Config::default()
        })
    }

    fn connect_from(&mut self, ip: &str) -> ConnId {
        self.serial += 1;
        let id = ConnId {
            key: self.serial as usize * 3 % 17 + self.serial as usize,
            serial: self.serial,
        };
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        self.core.connected(id, addr, self.now, &mut self.out);
        id
    }

    fn line(&mut self, id: ConnId, line: &str) {
        self.core
            .input(id, Frame::Line(line), self.now, &mut self.out);
    }

    fn console(&mut self, line: &str) {
        let _ = self
            .core
            .console_line(ConsoleId(0), line, self.now, &mut self.out);
    }

    fn join(&mut self, name: &str) -> ConnId {
        let id = self.connect_from("127.0.0.1");
        self.line(id, name);
        id
    }

    fn got(&self, id: ConnId) -> &[String] {
        self.out.lines.get(&id).map_or(&[], Vec::as_slice)
    }

    fn last(&self, id: ConnId) -> &str {
        self.got(id).last().map_or("", String::as_str)
    }

    fn clear(&mut self) {
        self.out = Recorder::default();
    }

    fn later(&mut self, by: Duration) {
        self.now.at += by;
        self.now.wall += by;
    }
}

#[test]
fn a_room_message_goes_to_everyone_but_the_sender_as_one_shared_line() {
    let mut h = Harness::auto();
    let ids: Vec<ConnId> = ["a", "b", "c"].iter().map(|n| h.join(n)).collect();
    h.clear();
    h.line(ids[0], "hi **all**");
    assert!(h.got(ids[0]).is_empty());
    assert_eq!(h.got(ids[1]), ["MSG a - hi **all**"]);
    assert_eq!(h.got(ids[2]), ["MSG a - hi **all**"]);
    let (first, second) = (&h.out.sends[0].1, &h.out.sends[1].1);
    assert!(Rc::ptr_eq(first, second), "formatted once, shared");
}

#[test]
fn a_rename_to_a_name_with_a_control_or_bidi_character_is_bad_name_not_stripped() {
    let mut h = Harness::auto();
    let a = h.join("mallory");
    let b = h.join("bob");
    for typed in [
        "ali\u{202E}ce",
        "ali\u{7}ce",
        "ali\u{2066}ce",
        "ali\u{85}ce",
    ] {
        h.clear();
        h.line(a, &format!("/nick {typed}"));
        let got = h.got(a);
        assert_eq!(got.len(), 1, "{typed:?}: {got:?}");
        assert!(got[0].starts_with("ERROR bad-name "), "{typed:?}: {got:?}");
        assert!(
            h.got(b).is_empty(),
            "{typed:?}: the others saw {:?}",
            h.got(b)
        );
    }
}

#[test]
fn me_is_an_action_and_needs_text() {
    let mut h = Harness::auto();
    let (a, b) = (h.join("a"), h.join("b"));
    h.clear();
    h.line(a, "/me waves");
    assert_eq!(h.got(b), ["ACT a waves"]);
    assert!(h.got(a).is_empty());
    h.line(a, "/me   ");
    assert!(h.last(a).starts_with("ERROR usage "), "{:?}", h.got(a));
}

#[test]
fn a_rename_reaches_everyone_and_moves_private_routing_and_the_console() {
    let mut h = Harness::auto();
    let (a, b) = (h.join("alice"), h.join("bob"));
    h.clear();
    h.line(a, "/nick Al");
    assert_eq!(h.got(a), ["NICK alice Al"]);
    assert_eq!(h.got(b), ["NICK alice Al"]);
    assert!(h.out.console.iter().any(|(_, l)| l == "renamed alice Al"));
    h.line(b, "/private al psst");
    assert_eq!(h.last(a), "PRIV bob Al - psst");
    h.line(b, "/private alice psst");
    assert!(h.last(b).starts_with("ERROR no-such-user "));
    h.line(b, "/who");
    assert_eq!(h.last(b), "INFO online (2): Al, bob");
    h.clear();
    h.console("kick AL");
    assert_eq!(h.got(a), ["BYE kicked by the operator"]);
    assert_eq!(h.got(b), ["LEAVE Al kicked"]);
}

#[test]
fn renames_follow_the_name_rule_uniqueness_and_the_limit() {
    let mut h = Harness::auto();
    let (a, _b) = (h.join("alice"), h.join("bob"));
    h.line(a, "/nick BOB");
    assert!(h.last(a).starts_with("ERROR name-taken "));
    h.line(a, "/nick you");
    assert!(h.last(a).starts_with("ERROR bad-name "));
    h.line(a, "/nick a.b");
    assert!(h.last(a).starts_with("ERROR bad-name "));
    h.line(a, "/nick Alice");
    assert_eq!(h.last(a), "NICK alice Alice", "a change of case is allowed");
    h.line(a, "/nick x1");
    h.line(a, "/nick x2");
    assert_eq!(h.last(a), "NICK x1 x2");
    h.line(a, "/nick x3");
    assert!(
        h.last(a).starts_with("ERROR rate-limited "),
        "{:?}",
        h.got(a)
    );
    h.later(crate::config::NICK_INTERVAL);
    h.line(a, "/nick x3");
    assert_eq!(h.last(a), "NICK x2 x3");
}

#[test]
fn history_replays_the_last_n_messages_and_actions_never_privates() {
    let mut h = Harness::new(Config {
        auto_approve: true,
        history: 3,
        ..Config::default()
    });
    let (a, b) = (h.join("a"), h.join("b"));
    for i in 0..4 {
        h.line(a, &format!("m{i}"));
    }
    h.line(a, "/me waves");
    h.line(a, "/private b secret");
    h.console("say notice");
    h.line(b, "/nick bee");
    h.clear();
    let c = h.join("c");
    let got = h.got(c);
    assert_eq!(got[0], "NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -");
    assert_eq!(got[1], "WELCOME c 3");
    assert_eq!(
        &got[2..],
        [
            "HIST 2025-12-01T16:05:09.000Z MSG a - m2",
            "HIST 2025-12-01T16:05:09.000Z MSG a - m3",
            "HIST 2025-12-01T16:05:09.000Z ACT a waves",
        ]
    );
}

#[test]
fn a_waiting_room_share_per_address_and_a_cool_down_after_denial() {
    let mut h = Harness::new(Config {
        max_pending_per_ip: 2,
        ..Config::default()
    });
    for name in ["w1", "w2"] {
        let id = h.connect_from("127.0.0.2");
        h.line(id, name);
        assert!(h.last(id).starts_with("WAIT "));
    }
    let third = h.connect_from("127.0.0.2");
    h.line(third, "w3");
    assert!(h.last(third).starts_with("ERROR server-full "));
    assert!(h.out.closed.contains(&third));
    let elsewhere = h.connect_from("127.0.0.3");
    h.line(elsewhere, "w3");
    assert!(h.last(elsewhere).starts_with("WAIT "));
    h.console("deny w1");
    let again = h.connect_from("127.0.0.2");
    h.line(again, "W1");
    assert!(h.last(again).starts_with("NAME? "));
    assert!(h.got(again)[1].starts_with("ERROR name-taken "));
    let other = h.connect_from("127.0.0.4");
    h.line(other, "w1");
    assert!(h.last(other).starts_with("WAIT "), "another address may");
    h.later(crate::config::Config::default().name_cooldown);
    h.console("deny w1");
    let later = h.connect_from("127.0.0.2");
    h.line(later, "w1");
    assert!(h.last(later).starts_with("WAIT "), "{:?}", h.got(later));
}

#[test]
fn a_ban_cuts_members_and_joins_and_refuses_new_connections() {
    let mut h = Harness::new(Config::default());
    let m = h.connect_from("127.0.0.2");
    h.line(m, "m");
    h.console("approve m");
    let w = h.connect_from("127.0.0.2");
    h.line(w, "w");
    let keep = h.connect_from("127.0.0.3");
    h.line(keep, "k");
    h.console("approve k");
    h.clear();
    h.console("ban 127.0.0.2");
    assert_eq!(h.got(m), ["BYE your address was banned"]);
    assert_eq!(h.got(w), ["DENIED your address is banned"]);
    assert_eq!(h.got(keep), ["LEAVE m kicked"]);
    assert!(h
        .out
        .console
        .iter()
        .any(|(_, l)| l == "banned 127.0.0.2 (by stdin; 2 connections cut)"));
    let new = h.connect_from("127.0.0.2");
    assert_eq!(h.got(new), ["DENIED your address is banned"]);
    h.console("unban 127.0.0.2");
    let back = h.connect_from("127.0.0.2");
    assert!(h.last(back).starts_with("NAME? "));
}

#[test]
fn join_announcements_are_coalesced_past_ten_a_second() {
    let mut h = Harness::new(Config {
        max_pending: 1000,
        max_pending_per_ip: 1000,
        ..Config::default()
    });
    for i in 0..30 {
        let id = h.join(&format!("j{i}"));
        h.core.gone(
            id,
            chat_common::protocol::LeaveReason::Quit,
            h.now,
            &mut h.out,
        );
    }
    let printed = h.out.console.len();
    assert_eq!(printed, 10, "{:?}", h.out.console);
    let announces: Vec<_> = h
        .out
        .timers
        .iter()
        .filter(|t| t.2 == CoreTimer::Announce)
        .collect();
    assert_eq!(announces.len(), 1, "one tick per window");
    let (at, _, timer) = *announces[0];
    h.now.at = at;
    h.core
        .timer(ConnId { key: 0, serial: 0 }, timer, h.now, &mut h.out);
    let summary = &h.out.console.last().unwrap().1;
    assert_eq!(
        summary,
        "... 25 more join requests and 25 withdrawals in the last second (0 waiting; pending lists them)"
    );
    h.later(Duration::from_secs(1));
    h.join("real");
    assert!(h
        .out
        .console
        .last()
        .unwrap()
        .1
        .starts_with("join request: real "));
}

#[test]
fn replies_go_to_the_console_that_asked_and_events_to_all() {
    let mut h = Harness::new(Config::default());
    let _ = h
        .core
        .console_line(ConsoleId(7), "pending", h.now, &mut h.out);
    assert_eq!(h.out.console[0].0, Audience::One(ConsoleId(7)));
    let id = h.join("x");
    let _ = id;
    assert_eq!(h.out.console.last().unwrap().0, Audience::All);
}

#[test]
fn with_no_console_left_waiting_joins_are_denied() {
    let mut h = Harness::new(Config::default());
    let w = h.join("w");
    h.core.console_closed(h.now, &mut h.out);
    assert_eq!(h.last(w), "DENIED no operator is present to approve joins");
    let late = h.join("late");
    assert_eq!(
        h.last(late),
        "DENIED no operator is present to approve joins"
    );
}

/// One step of a random session.
#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Say(usize),
    Private(usize, usize),
    Nick(usize, usize),
    Leave(usize),
    Gone(usize),
}

const NAMES: [&str; 6] = ["ann", "Ann", "bob", "BOB", "cy", "dee"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..NAMES.len()).prop_map(Op::Join),
        (0..8usize).prop_map(Op::Say),
        (0..8usize, 0..NAMES.len()).prop_map(|(a, b)| Op::Private(a, b)),
        (0..8usize, 0..NAMES.len()).prop_map(|(a, b)| Op::Nick(a, b)),
        (0..8usize).prop_map(Op::Leave),
        (0..8usize).prop_map(Op::Gone),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever members do: no two share a name ignoring case; a sender never gets its own MSG;
    /// a PRIV reaches exactly one connection; every member that leaves is announced exactly once
    /// to each other member.
    #[test]
    fn the_room_s_invariants_hold(ops in prop::collection::vec(op(), 1..60)) {
        let mut h = Harness::auto();
        let mut live: Vec<ConnId> = Vec::new();
        for op in ops {
            h.clear();
            match op {
                Op::Join(n) => {
                    let id = h.join(NAMES[n]);
                    if h.got(id).iter().any(|l| l.starts_with("WELCOME ")) {
                        live.push(id);
                    }
                }
                Op::Say(i) if !live.is_empty() => {
                    let from = live[i % live.len()];
                    h.line(from, "hello");
                    prop_assert!(h.got(from).is_empty(), "the sender got {:?}", h.got(from));
                    for &other in live.iter().filter(|&&o| o != from) {
                        prop_assert_eq!(h.got(other).len(), 1);
                    }
                }
                Op::Private(i, n) if !live.is_empty() => {
                    let from = live[i % live.len()];
                    h.line(from, &format!("/private {} psst", NAMES[n]));
                    let privs = h.out.sends.iter().filter(|(_, l)| l.line().starts_with(b"PRIV ")).count();
                    let errors = h.got(from).iter().filter(|l| l.starts_with("ERROR no-such-user")).count();
                    prop_assert_eq!(privs + errors, 1);
                }
                Op::Nick(i, n) if !live.is_empty() => {
                    let from = live[i % live.len()];
                    h.line(from, &format!("/nick {}", NAMES[n]));
                }
                Op::Leave(i) | Op::Gone(i) if !live.is_empty() => {
                    let id = live.remove(i % live.len());
                    if matches!(op, Op::Leave(_)) {
                        h.line(id, "/leave");
                    } else {
                        h.core.gone(id, chat_common::protocol::LeaveReason::Quit, h.now, &mut h.out);
                    }
                    // Reaping a connection the core already let go says nothing more.
                    h.core.gone(id, chat_common::protocol::LeaveReason::Quit, h.now, &mut h.out);
                    for &other in &live {
                        let leaves = h.got(other).iter().filter(|l| l.starts_with("LEAVE ")).count();
                        prop_assert_eq!(leaves, 1);
                    }
                }
                _ => {}
            }
            let mut names: Vec<String> = h.core.member_names().map(|n| n.to_ascii_lowercase()).collect();
            prop_assert_eq!(names.len(), live.len());
            names.sort();
            names.dedup();
            prop_assert_eq!(names.len(), live.len(), "two members share a name");
        }
    }
}

// ---- the core under --cluster: the bridge is the recorder's `bridge` and `cluster_input` ----

impl Harness {
    /// A core in a cluster, in the room as server `s1`, with `zed` a member of server `s2` and
    /// the log read up to 5-0.
    fn cluster() -> Harness {
        let mut h = Harness::new(Config {
            auto_approve: true,
            cluster: Some(crate::config::ClusterConfig {
                url: "redis://127.0.0.1".into(),
                room: "chat".into(),
                timeout: Duration::from_secs(5),
                history: 50,
                name: "test".to_owned(),
                keep_forgets: crate::config::MIN_KEEP_FORGETS,
            }),
            ..Config::default()
        });
        let up = FromBridge::Up {
            epoch: 1,
            server: "s1".into(),
            at: LogId(5, 0),
            remote: vec![RemoteEntry {
                server: "s2".into(),
                name: "zed".into(),
                waiting: None,
            }],
            history: vec![],
            shared: vec![],
        };
        h.bridge(up);
        h.clear();
        h
    }

    fn bridge(&mut self, msg: FromBridge) {
        self.core.cluster_input(msg, self.now, &mut self.out);
    }

    fn entries(&mut self, last: LogId, events: Vec<(&str, Event)>) {
        let entries = events
            .into_iter()
            .map(|(origin, event)| Entry {
                origin: origin.into(),
                wall: self.now.wall,
                event,
            })
            .collect();
        self.bridge(FromBridge::Entries {
            epoch: 1,
            entries,
            last,
        });
    }

    /// The last claim asked of the bridge: (connection, name).
    fn last_claim(&self) -> (ConnId, String) {
        self.out
            .bridge
            .iter()
            .rev()
            .find_map(|m| match m {
                ToBridge::Claim { id, name, .. } => Some((*id, name.clone())),
                _ => None,
            })
            .expect("no claim")
    }

    fn published(&self) -> Vec<Event> {
        self.out
            .bridge
            .iter()
            .filter_map(|m| match m {
                ToBridge::Publish { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    /// Connects, offers `name`, and lets Redis grant it at log position `tip`.
    fn cluster_join(&mut self, name: &str, tip: LogId) -> ConnId {
        let id = self.join(name);
        let (claimed, n) = self.last_claim();
        assert_eq!((claimed, n.as_str()), (id, name));
        self.bridge(FromBridge::Claimed {
            id,
            name: name.into(),
            ok: true,
            tip,
        });
        id
    }
}

#[test]
fn a_cluster_join_waits_for_its_claim_then_counts_the_whole_room() {
    let mut h = Harness::cluster();
    let a = h.join("al");
    assert_eq!(h.got(a), ["NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -"]);
    h.line(a, "too early");
    assert!(
        h.last(a).starts_with("ERROR not-admitted "),
        "{:?}",
        h.got(a)
    );
    let (id, name) = h.last_claim();
    h.bridge(FromBridge::Claimed {
        id,
        name,
        ok: true,
        tip: LogId(4, 0),
    });
    assert_eq!(h.last(a), "WELCOME al 2");
    assert_eq!(h.published(), [Event::Join { name: "al".into() }]);
    h.line(a, "/who");
    assert_eq!(h.last(a), "INFO online (2): al, zed");
}

#[test]
fn a_name_held_elsewhere_is_refused_at_once_or_when_redis_says_so() {
    let mut h = Harness::cluster();
    let a = h.join("ZED");
    assert!(
        h.got(a)[1].starts_with("ERROR name-taken "),
        "{:?}",
        h.got(a)
    );
    assert!(h.out.bridge.is_empty(), "no claim for a name known taken");
    h.line(a, "bo");
    let (id, name) = h.last_claim();
    h.bridge(FromBridge::Claimed {
        id,
        name,
        ok: false,
        tip: LogId(4, 0),
    });
    assert!(
        h.got(a)[3].starts_with("ERROR name-taken "),
        "{:?}",
        h.got(a)
    );
    assert_eq!(h.last(a), "NAME? choose a name: 1-32 of A-Z a-z 0-9 _ -");
}

#[test]
fn a_newcomer_is_admitted_once_the_log_is_read_up_to_its_claim() {
    let mut h = Harness::cluster();
    let a = h.cluster_join("al", LogId(9, 0));
    assert_eq!(h.got(a).len(), 1, "parked: {:?}", h.got(a));
    h.entries(LogId(7, 0), vec![("s2", Event::Join { name: "bo".into() })]);
    assert_eq!(h.got(a).len(), 1, "still parked: {:?}", h.got(a));
    h.entries(LogId(9, 0), vec![]);
    assert_eq!(h.last(a), "WELCOME al 3", "zed and bo counted, no JOIN bo");
    assert!(!h.got(a).iter().any(|l| l.starts_with("JOIN")));
}

#[test]
fn the_other_servers_lines_reach_members_and_the_history_and_privates_route() {
    let mut h = Harness::cluster();
    let a = h.cluster_join("al", LogId(1, 0));
    h.clear();
    let events = vec![
        (
            "s2",
            Event::Msg {
                line: b"MSG zed - hi\n".to_vec(),
                id: String::new(),
            },
        ),
        (
            "s2",
            Event::Priv {
                to: "AL".into(),
                line: b"PRIV zed al - psst\n".to_vec(),
                id: String::new(),
            },
        ),
        (
            "s2",
            Event::Nick {
                old: "zed".into(),
                new: "Zz".into(),
                owner: None,
            },
        ),
    ];
    h.entries(LogId(8, 0), events);
    assert_eq!(
        h.got(a),
        ["MSG zed - hi", "PRIV zed al - psst", "NICK zed Zz"]
    );
    h.line(a, "/msg zz hello");
    assert!(h.got(a).len() == 3, "no error: {:?}", h.got(a));
    let published = h.published();
    assert!(
        matches!(published.last(), Some(Event::Priv { to, line, id })
            if to == "Zz" && line == b"PRIV al Zz - hello\n" && !id.is_empty()),
        "{published:?}"
    );
    let b = h.cluster_join("bo", LogId(8, 0));
    assert!(
        h.got(b).iter().any(|l| l.ends_with(" MSG zed - hi")),
        "{:?}",
        h.got(b)
    );
}

#[test]
fn under_a_cluster_a_member_s_own_line_goes_out_when_the_room_s_log_brings_it_back() {
    let mut h = Harness::cluster();
    let a = h.cluster_join("al", LogId(1, 0));
    let b = h.cluster_join("bo", LogId(1, 0));
    h.clear();
    h.line(a, "hi");
    h.line(a, "/msg bo psst");
    assert!(h.got(b).is_empty(), "nothing before the log orders it");
    let published = h.published();
    let [Event::Msg { line, id }, Event::Priv { to, .. }] = &published[..] else {
        panic!("{published:?}");
    };
    assert_eq!(
        (line.as_slice(), to.as_str()),
        (&b"MSG al - hi\n"[..], "bo")
    );
    assert!(!id.is_empty());
    let mut back: Vec<(&str, Event)> = published.iter().map(|e| ("s1", e.clone())).collect();
    // Another server's line came first in the log: every server delivers it first.
    back.insert(
        0,
        (
            "s2",
            Event::Msg {
                line: b"MSG zed - first\n".to_vec(),
                id: "0000000f-1".into(),
            },
        ),
    );
    h.entries(LogId(9, 0), back);
    assert_eq!(
        h.got(b),
        ["MSG zed - first", "MSG al - hi", "PRIV al bo - psst"]
    );
    assert_eq!(
        h.got(a),
        ["MSG zed - first"],
        "its own line is not sent back to it"
    );
}

#[test]
fn a_takeover_asked_by_another_server_closes_the_session_and_hands_the_member_over() {
    let mut h = Harness::cluster();
    let a = h.cluster_join("al", LogId(1, 0));
    let b = h.cluster_join("bo", LogId(1, 0));
    h.clear();
    let takeover = |server: &str, name: &str| Event::Takeover {
        server: server.into(),
        name: name.into(),
    };
    h.entries(LogId(9, 0), vec![("s2", takeover("s3", "al"))]);
    h.entries(LogId(10, 0), vec![("s2", takeover("s1", "nobody"))]);
    assert!(
        h.out.closed.is_empty() && h.published().is_empty(),
        "not ours"
    );
    h.entries(LogId(11, 0), vec![("s2", takeover("s1", "AL"))]);
    assert_eq!(h.got(a), ["BYE resumed elsewhere"]);
    assert!(h.out.closed.contains(&a));
    assert!(h.got(b).is_empty(), "the room sees nothing");
    assert!(h
        .out
        .bridge
        .iter()
        .any(|m| matches!(m, ToBridge::Release { name, .. } if name == "al")));
    assert_eq!(
        h.published(),
        [Event::Handover {
            name: "al".into(),
            to: "s2".into()
        }]
    );
    // al is s2's member now, here too: when it leaves there, the room here hears it.
    h.line(b, "/who");
    assert_eq!(h.last(b), "INFO online (3): al, bo, zed");
    let leave = Event::Leave {
        name: "al".into(),
        reason: chat_common::protocol::LeaveReason::Quit,
        owner: None,
    };
    h.clear();
    h.entries(LogId(11, 1), vec![("s2", leave)]);
    assert_eq!(h.got(b), ["LEAVE al quit"]);
    h.clear();
    // Another server's member handed over: moved in the view, with no LEAVE or JOIN.
    h.entries(
        LogId(12, 0),
        vec![(
            "s2",
            Event::Handover {
                name: "zed".into(),
                to: "s3".into(),
            },
        )],
    );
    assert!(h.got(b).is_empty());
    h.line(b, "/msg zed still here?");
    assert!(
        matches!(h.published().last(), Some(Event::Priv { to, .. }) if to == "zed"),
        "zed is still a member: {:?}",
        h.got(b)
    );
}

/// A cluster harness where `zed` (a member of s2) is remembered with a token; a version 3
/// connection here sends `RESUME zed` with it: the connection and its name.
fn resume_zed_here(h: &mut Harness) -> ConnId {
    let token = crate::token::Token::generate().unwrap();
    let record = super::durable::MemberRecord {
        name: "zed".into(),
        token_hash: token.hash(),
        approved_by: "stdin".into(),
        approved_at_ms: 1,
        last_seen_ms: super::bus::wall_ms(h.now.wall),
    };
    h.entries(LogId(6, 0), vec![("s2", Event::Member { record })]);
    let id = h.connect_from("127.0.0.2");
    h.line(id, "HELLO 3");
    h.clear();
    h.line(id, &format!("RESUME zed {} -", token.expose()));
    id
}

#[test]
fn a_resume_for_another_server_s_member_is_handed_over_and_the_room_hears_nothing() {
    let mut h = Harness::cluster();
    let b = h.cluster_join("bo", LogId(1, 0));
    let id = resume_zed_here(&mut h);
    assert_eq!(
        h.published(),
        [Event::Takeover {
            server: "s2".into(),
            name: "zed".into()
        }],
        "s2 is asked to hand zed over"
    );
    assert!(h.got(id).is_empty(), "it waits, silent");
    h.entries(
        LogId(7, 0),
        vec![(
            "s2",
            Event::Handover {
                name: "zed".into(),
                to: "s1".into(),
            },
        )],
    );
    let (claimed, name) = h.last_claim();
    assert_eq!((claimed, name.as_str()), (id, "zed"));
    h.bridge(FromBridge::Claimed {
        id,
        name: "zed".into(),
        ok: true,
        tip: LogId(7, 0),
    });
    assert!(h.got(id)[0].starts_with("WELCOME zed "), "{:?}", h.got(id));
    assert!(h.got(b).is_empty(), "no JOIN: {:?}", h.got(b));
    assert!(
        !h.published()
            .iter()
            .any(|e| matches!(e, Event::Join { .. })),
        "{:?}",
        h.published()
    );
    assert!(h.out.console.iter().any(|(_, l)| l == "resumed zed"));
}

#[test]
fn a_handed_over_member_whose_resume_fails_here_leaves_the_room() {
    let mut h = Harness::cluster();
    let b = h.cluster_join("bo", LogId(1, 0));
    let id = resume_zed_here(&mut h);
    h.entries(
        LogId(7, 0),
        vec![(
            "s2",
            Event::Handover {
                name: "zed".into(),
                to: "s1".into(),
            },
        )],
    );
    // Someone else got the name in Redis first: the resume waits again, until its deadline.
    h.bridge(FromBridge::Claimed {
        id,
        name: "zed".into(),
        ok: false,
        tip: LogId(7, 0),
    });
    let (at, timer) = h
        .out
        .timers
        .iter()
        .rev()
        .find(|(_, t, _)| *t == id)
        .map(|(at, _, timer)| (*at, *timer))
        .unwrap();
    h.now.at = at;
    h.core.timer(id, timer, h.now, &mut h.out);
    assert!(
        h.got(id).iter().any(|l| l.starts_with("ERROR name-taken ")),
        "{:?}",
        h.got(id)
    );
    assert_eq!(h.got(b), ["LEAVE zed quit"], "the room's view of zed ends");
    assert!(h
        .published()
        .iter()
        .any(|e| matches!(e, Event::Leave { name, .. } if name == "zed")));
}

/// `name` remembered by the cluster (its record from s2): its token.
fn remembered_by_s2(h: &mut Harness, name: &str) -> String {
    let token = crate::token::Token::generate().unwrap();
    let record = super::durable::MemberRecord {
        name: name.into(),
        token_hash: token.hash(),
        approved_by: "stdin".into(),
        approved_at_ms: 1,
        last_seen_ms: super::bus::wall_ms(h.now.wall),
    };
    h.entries(LogId(6, 0), vec![("s2", Event::Member { record })]);
    token.expose().to_owned()
}

/// The timer `id` armed last, run at its deadline.
fn run_last_timer(h: &mut Harness, id: ConnId) {
    let (at, timer) = h
        .out
        .timers
        .iter()
        .rev()
        .find(|(_, t, _)| *t == id)
        .map(|(at, _, timer)| (*at, *timer))
        .unwrap();
    h.now.at = at;
    h.core.timer(id, timer, h.now, &mut h.out);
}

#[test]
fn a_token_login_for_another_server_s_member_waits_and_is_handed_over_like_a_resume() {
    use super::TokenLogin;
    let mut h = Harness::cluster();
    let b = h.cluster_join("bo", LogId(1, 0));
    let token = remembered_by_s2(&mut h, "zed");
    // SASL's answer: the login will take zed's session on s2 over.
    assert!(h.core.token_admits("zed", &token, h.now));
    let irc = h.connect_from("127.0.0.3");
    h.clear();
    let d = h
        .core
        .admit_remembered(irc, "zed", &token, "zed", h.now, &mut h.out);
    assert_eq!(d, TokenLogin::Waiting);
    assert!(h.got(irc).is_empty(), "it waits, silent: {:?}", h.got(irc));
    assert_eq!(
        h.published(),
        [Event::Takeover {
            server: "s2".into(),
            name: "zed".into()
        }],
        "s2 is asked to hand zed over, as for a RESUME"
    );
    let handover = Event::Handover {
        name: "zed".into(),
        to: "s1".into(),
    };
    h.entries(LogId(7, 0), vec![("s2", handover)]);
    assert_eq!(h.last_claim(), (irc, "zed".to_owned()));
    h.bridge(FromBridge::Claimed {
        id: irc,
        name: "zed".into(),
        ok: true,
        tip: LogId(7, 0),
    });
    assert!(
        h.got(irc)[0].starts_with("WELCOME zed "),
        "{:?}",
        h.got(irc)
    );
    assert!(
        !h.got(irc).iter().any(|l| l.starts_with("TOKEN ")),
        "its password is kept"
    );
    assert!(h.got(b).is_empty(), "no JOIN: {:?}", h.got(b));
    assert!(h.out.console.iter().any(|(_, l)| l == "resumed zed"));
}

#[test]
fn a_token_login_refused_after_its_wait_joins_the_waiting_room_under_its_nick() {
    use super::{TokenLogin, LOGIN_REFUSED};
    let mut h = Harness::cluster();
    let token = remembered_by_s2(&mut h, "zed");
    let irc = h.connect_from("127.0.0.3");
    h.clear();
    // The account is zed, the nick zed_: s2 never hands zed over.
    let d = h
        .core
        .admit_remembered(irc, "zed", &token, "zed_", h.now, &mut h.out);
    assert_eq!(d, TokenLogin::Waiting);
    run_last_timer(&mut h, irc);
    assert_eq!(h.got(irc), [format!("ERROR bad-token {LOGIN_REFUSED}")]);
    assert_eq!(
        h.last_claim(),
        (irc, "zed_".to_owned()),
        "its nick is claimed as any join's"
    );
    // Its nick taken too (zed, s2's member): asked for a name, with --login-timeout anew
    // (the first deadline may have passed during the wait).
    let late = h.connect_from("127.0.0.5");
    h.clear();
    let d = h
        .core
        .admit_remembered(late, "zed", &token, "zed", h.now, &mut h.out);
    assert_eq!(d, TokenLogin::Waiting);
    run_last_timer(&mut h, late);
    assert!(
        h.got(late)[1].starts_with("ERROR name-taken "),
        "{:?}",
        h.got(late)
    );
    assert!(h.last(late).starts_with("NAME? "), "{:?}", h.got(late));
    let (at, timer) = h.out.timers.last().map(|(at, _, t)| (*at, *t)).unwrap();
    assert_eq!(
        (at, timer),
        (h.now.at + h.core.config.login_timeout, CoreTimer::Login)
    );
    run_last_timer(&mut h, late);
    assert_eq!(h.last(late), "BYE no name given in time");
    // A wrong token is refused at once, the same way.
    let guess = h.connect_from("127.0.0.4");
    h.clear();
    let d = h
        .core
        .admit_remembered(guess, "zed", &"x".repeat(32), "zed", h.now, &mut h.out);
    assert!(matches!(d, TokenLogin::Refused(_)), "{d:?}");
    assert_eq!(h.got(guess)[0], format!("ERROR bad-token {LOGIN_REFUSED}"));
    assert!(
        h.got(guess)[1].starts_with("ERROR name-taken "),
        "zed is s2's member: {:?}",
        h.got(guess)
    );
}

#[test]
fn a_token_login_of_a_name_another_server_s_waiting_join_holds_is_refused_at_once() {
    use super::{ResumeRefusal, TokenLogin};
    let mut h = Harness::cluster();
    let token = remembered_by_s2(&mut h, "amy");
    let request = Event::Request {
        name: "amy".into(),
        addr: "10.0.0.9:1".into(),
    };
    h.entries(LogId(7, 0), vec![("s2", request)]);
    assert!(
        !h.core.token_admits("amy", &token, h.now),
        "SASL says 904: the login could not have the name"
    );
    let irc = h.connect_from("127.0.0.3");
    h.clear();
    let d = h
        .core
        .admit_remembered(irc, "amy", &token, "amy", h.now, &mut h.out);
    assert_eq!(d, TokenLogin::Refused(ResumeRefusal::NameTaken));
    assert!(
        !h.published()
            .iter()
            .any(|e| matches!(e, Event::Takeover { .. })),
        "nobody is asked to let go"
    );
    assert!(
        h.got(irc)[1].starts_with("ERROR name-taken "),
        "{:?}",
        h.got(irc)
    );
}

#[test]
fn only_the_owning_server_s_events_change_its_members() {
    let mut h = Harness::cluster();
    let a = h.cluster_join("al", LogId(1, 0));
    h.clear();
    h.entries(
        LogId(9, 0),
        vec![(
            "s3",
            Event::Leave {
                name: "zed".into(),
                reason: chat_common::protocol::LeaveReason::Quit,
                owner: None,
            },
        )],
    );
    assert!(h.got(a).is_empty(), "{:?}", h.got(a));
    h.entries(
        LogId(10, 0),
        vec![(
            "s2",
            Event::Leave {
                name: "zed".into(),
                reason: chat_common::protocol::LeaveReason::Quit,
                owner: Some("127.0.0.9".into()),
            },
        )],
    );
    assert_eq!(h.got(a), ["LEAVE zed quit"]);
    // The name is held for its owner's address on this server too (issue 20).
    let other = h.connect_from("127.0.0.2");
    h.line(other, "zed");
    assert!(
        h.got(other)[1].starts_with("ERROR name-taken "),
        "{:?}",
        h.got(other)
    );
    let owner = h.connect_from("127.0.0.9");
    h.line(owner, "zed");
    assert!(
        h.got(owner).iter().all(|l| !l.starts_with("ERROR ")),
        "its owner may come back: {:?}",
        h.got(owner)
    );
}

#[test]
fn consoles_decide_and_kick_on_other_servers_through_the_log() {
    let mut h = Harness::cluster();
    h.entries(
        LogId(9, 0),
        vec![(
            "s2",
            Event::Request {
                name: "cy".into(),
                addr: "10.0.0.1:4000".into(),
            },
        )],
    );
    assert!(h
        .out
        .console
        .iter()
        .any(|(_, l)| l.starts_with("join request: cy from 10.0.0.1:4000")));
    h.console("approve CY");
    h.console("kick zed");
    assert_eq!(
        h.published(),
        [
            Event::Approve {
                server: "s2".into(),
                name: "cy".into(),
                by: "stdin on server s1".into(),
            },
            Event::Kick {
                server: "s2".into(),
                name: "zed".into(),
                note: "stdin on server s1".into(),
            },
        ]
    );
    // And this server acts on what is asked of it.
    let a = h.cluster_join("al", LogId(9, 0));
    h.entries(
        LogId(10, 0),
        vec![(
            "s2",
            Event::Kick {
                server: "s1".into(),
                name: "al".into(),
                note: "control:2 on server s2\tflooding".into(),
            },
        )],
    );
    assert_eq!(h.last(a), "BYE kicked by the operator: flooding");
    assert!(h
        .out
        .console
        .iter()
        .any(|(_, l)| l == "kicked al (by control:2 on server s2): flooding"));
}

#[test]
fn a_cut_off_server_admits_no_resume_or_token_login_of_a_connection_it_took_before() {
    use super::TokenLogin;
    let mut h = Harness::cluster();
    let token = remembered_by_s2(&mut h, "amy");
    // Connections accepted while the server was in the room, not yet named.
    let native = h.connect_from("127.0.0.2");
    h.line(native, "HELLO 3");
    let irc = h.connect_from("127.0.0.3");
    h.bridge(FromBridge::Down { why: "test".into() });
    h.clear();
    assert!(
        !h.core.token_admits("amy", &token, h.now),
        "SASL says 904 while cut off"
    );
    h.line(native, &format!("RESUME amy {token} -"));
    assert!(
        h.got(native)[0].starts_with("DENIED the server lost its cluster"),
        "{:?}",
        h.got(native)
    );
    assert!(h.out.closed.contains(&native));
    let d = h
        .core
        .admit_remembered(irc, "amy", &token, "amy", h.now, &mut h.out);
    assert!(matches!(d, TokenLogin::Refused(_)), "{d:?}");
    assert_eq!(
        h.got(irc),
        ["DENIED the server lost its cluster; try another server or later"]
    );
    assert!(h.out.closed.contains(&irc));
    assert_eq!(h.core.online(), 0, "nobody admitted");
    assert!(h.out.bridge.is_empty(), "{:?}", h.out.bridge);
}

#[test]
fn a_cut_off_server_says_bye_refuses_joins_and_publishes_nothing() {
    let mut h = Harness::cluster();
    let a = h.cluster_join("al", LogId(1, 0));
    h.clear();
    h.bridge(FromBridge::Down { why: "test".into() });
    assert_eq!(h.got(a), ["BYE the server lost its cluster; reconnect"]);
    assert!(h.out.closed.contains(&a));
    let b = h.connect_from("127.0.0.1");
    assert!(
        h.got(b)[0].starts_with("DENIED the server lost its cluster"),
        "{:?}",
        h.got(b)
    );
    assert!(h.out.bridge.is_empty(), "{:?}", h.out.bridge);
}

/// A version 3 member of `h` called `name`, and its token (no store: the token comes at once).
fn v3_member(h: &mut Harness, name: &str) -> (ConnId, String) {
    let id = h.connect_from("127.0.0.2");
    h.line(id, "HELLO 3");
    h.line(id, name);
    let token = h
        .got(id)
        .iter()
        .find_map(|l| l.strip_prefix("TOKEN "))
        .unwrap_or_else(|| panic!("no TOKEN in {:?}", h.got(id)))
        .to_owned();
    (id, token)
}

#[test]
fn a_token_login_from_another_dialect_admits_takes_over_and_falls_back_to_the_waiting_room() {
    use super::{ResumeRefusal, TokenLogin, LOGIN_REFUSED};
    let mut h = Harness::auto();
    let (alice, token) = v3_member(&mut h, "alice");
    let bob = h.join("bob");
    assert!(h.core.token_admits("ALICE", &token, h.now));
    assert!(!h
        .core
        .token_admits("alice", "not-her-token-at-all-0123", h.now));
    assert!(!h.core.token_admits("bob", &token, h.now));
    // Dropped: within its window.
    h.core.gone(
        alice,
        chat_common::protocol::LeaveReason::Dropped,
        h.now,
        &mut h.out,
    );
    h.clear();
    // An IRC-like connection (no HELLO 3) logs in with the token.
    let irc = h.connect_from("127.0.0.3");
    let d = h
        .core
        .admit_remembered(irc, "alice", &token, "alice", h.now, &mut h.out);
    assert_eq!(d, TokenLogin::Admitted);
    assert!(h.got(irc).iter().any(|l| l.starts_with("WELCOME alice ")));
    assert!(
        !h.got(irc).iter().any(|l| l.starts_with("TOKEN ")),
        "a session that is not version 3 keeps its token: {:?}",
        h.got(irc)
    );
    assert!(
        !h.got(bob).iter().any(|l| l.starts_with("JOIN")),
        "alice never left"
    );
    // The same token again, from another connection: the live session is taken over.
    let again = h.connect_from("127.0.0.4");
    let d = h
        .core
        .admit_remembered(again, "alice", &token, "alice", h.now, &mut h.out);
    assert_eq!(d, TokenLogin::Admitted);
    assert_eq!(h.last(irc), "BYE resumed elsewhere");
    assert!(h.out.closed.contains(&irc));
    // A wrong token: told so, and its nick goes to the waiting room (here, auto-approved).
    let guess = h.connect_from("127.0.0.5");
    h.clear();
    let d = h.core.admit_remembered(
        guess,
        "alice",
        "x".repeat(32).as_str(),
        "guess",
        h.now,
        &mut h.out,
    );
    assert!(
        matches!(d, TokenLogin::Refused(ResumeRefusal::Token(_))),
        "{d:?}"
    );
    assert_eq!(h.got(guess)[0], format!("ERROR bad-token {LOGIN_REFUSED}"));
    assert!(
        h.got(guess)[1].starts_with("WELCOME guess "),
        "{:?}",
        h.got(guess)
    );
    // A connection past its name cannot log in again, and is told nothing.
    h.clear();
    let d = h
        .core
        .admit_remembered(bob, "alice", &token, "bob", h.now, &mut h.out);
    assert_eq!(d, TokenLogin::Refused(ResumeRefusal::Named));
    assert!(h.got(bob).is_empty(), "{:?}", h.got(bob));
}

#[test]
fn with_a_store_on_disk_the_first_token_waits_for_its_record_and_the_room_waits_behind_it() {
    let mut h = Harness::auto();
    h.core.restore(super::Restored {
        epoch: 1,
        next_seq: 1,
        durable: true,
        ..super::Restored::default()
    });
    let bob = h.join("bob");
    h.line(bob, "before");
    let _ = h.core.take_store_writes();
    h.core.store_sealed(1);
    h.core.store_durable(1, h.now, &mut h.out);
    assert_eq!(h.core.store_backlog(), 0);
    h.clear();
    let alice = h.connect_from("127.0.0.2");
    h.line(alice, "HELLO 3");
    h.line(alice, "alice");
    h.line(bob, "after");
    assert!(h.got(alice).iter().any(|l| l.starts_with("WELCOME alice ")));
    assert!(
        !h.got(alice)
            .iter()
            .any(|l| l.starts_with("TOKEN ") || l.contains("before") || l.contains("after")),
        "nothing before its record is durable: {:?}",
        h.got(alice)
    );
    let writes = h.core.take_store_writes();
    assert!(writes
        .iter()
        .any(|w| matches!(w, super::durable::Write::Member(r) if r.name == "alice")));
    h.core.store_sealed(2);
    h.core.store_durable(2, h.now, &mut h.out);
    let got: Vec<&str> = h.got(alice).iter().map(String::as_str).collect();
    let token = got.iter().position(|l| l.starts_with("TOKEN "));
    let history = got
        .iter()
        .position(|l| l.starts_with("HIST ") && l.ends_with("before"));
    let live = got.iter().position(|l| l.ends_with("MSG bob - after"));
    assert!(
        token.is_some() && token < history && history < live,
        "TOKEN, then the history, then live lines: {got:?}"
    );
}

#[test]
fn a_member_kept_within_its_window_is_counted_and_listed_once_everywhere() {
    let mut h = Harness::auto();
    let (alice, token) = v3_member(&mut h, "alice");
    let _bob = h.join("bob");
    h.core.gone(
        alice,
        chat_common::protocol::LeaveReason::Dropped,
        h.now,
        &mut h.out,
    );
    // A newcomer's WELCOME counts what /who lists: bob, carol and alice (who never left).
    let carol = h.join("carol");
    assert!(
        h.got(carol).iter().any(|l| l == "WELCOME carol 3"),
        "{:?}",
        h.got(carol)
    );
    h.line(carol, "/who");
    assert_eq!(h.last(carol), "INFO online (3): alice, bob, carol");
    let mut names: Vec<String> = h.core.names().iter().map(|n| n.to_string()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);
    // Back within the window: counted once, not as kept and connected both.
    let back = h.connect_from("127.0.0.2");
    h.line(back, "HELLO 3");
    h.line(back, &format!("RESUME alice {token} -"));
    assert!(
        h.got(back).iter().any(|l| l == "WELCOME alice 3"),
        "{:?}",
        h.got(back)
    );
}
