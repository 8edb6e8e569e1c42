//! The records the servers of a cluster share (`--cluster`): remembered members (their token
//! hashes, who approved them, when they were last seen), forgotten members, bans and lifted
//! bans. An operator decides once, on any server, and every server knows it.
//!
//! How: a change made here (a token issued or rotated, a member seen, kicked or forgotten, a
//! rename, `ban`, `unban`) is published as an event of the room's log, which every server
//! applies and Redis also keeps in a hash per kind (`members`, `bans`: see
//! `cluster/scripts.rs`). Of two records of one name or range the one with the later stamp wins,
//! on every server and in Redis, so the order they arrive in does not matter. When this server
//! joins the room it adopts Redis's newer records and publishes the ones Redis lacks or has
//! older: a Redis that restarted empty is filled again by the servers, from what each kept in
//! its data directory, and no member needs the operator again.
//!
//! Owns no state of its own: the records live in the remembered members (`v3.rs`,
//! `remembered.rs`) and the ban list (`admission.rs`); this file only moves them between those
//! and the room's log. A `RESUME` under `--cluster` also claims the name in Redis first (like a
//! join), so a remembered member cannot be in the room twice on two servers.

use std::collections::HashMap;
use std::rc::Rc;

use chat_common::protocol::ErrorCode;

use super::bans::{Ban, IpNet};
use super::bus::{from_wall_ms, wall_ms, Event};
use super::durable::Write;
use super::remote::{Purpose, ResumeAsk, ResumeWait};
use super::v3::ResumeRefusal;
use super::{Audience, ConnId, Core, CoreTimer, Now, Outbox, Phase};

/// How long a `RESUME` waits for another server to free its name, in `--cluster-timeout`s.
pub const RESUME_WAIT_FACTOR: u32 = 2;

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Core {
    /// Under `--cluster`, a `RESUME` or a token login whose token admits `name` first claims
    /// the name in Redis (the answer resumes it, see `remote.rs`); when another server has a
    /// member or a waiting join of that name it waits for it ([`Core::wait_for_name`]). True:
    /// the resume waits for the claim; false: go on now (no cluster, or cut off: the server
    /// refuses joins anyway).
    pub(super) fn claim_for_resume(
        &mut self,
        id: ConnId,
        name: &str,
        ask: ResumeAsk,
        now: Now,
        out: &mut impl Outbox,
    ) -> bool {
        if !self.remote.as_ref().is_some_and(|r| r.up) {
            return false;
        }
        if let Some(session) = self.session_mut(id) {
            session.phase = Phase::Claiming {
                name: Rc::from(name),
            };
        }
        if self.remote.as_ref().is_some_and(|r| r.taken(name)) {
            self.wait_for_name(id, name, ask, now, out);
        } else {
            self.claim(id, name, Purpose::Resume(ask), out);
        }
        true
    }

    /// Another server holds the name a `RESUME` (or a token login) asks for: the resume waits
    /// (its connection stays `Claiming`) until that server frees it, at most
    /// [`RESUME_WAIT_FACTOR`] times `--cluster-timeout`: a server that died or hung is declared
    /// dead and its members' names freed within the timeout and one heartbeat, so a member
    /// whose server died resumes on another one without the operator. Past the deadline: `ERROR
    /// name-taken` (a token login goes to the waiting room instead).
    pub(super) fn wait_for_name(
        &mut self,
        id: ConnId,
        name: &str,
        ask: ResumeAsk,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let timeout = self.config.cluster.as_ref().map(|c| c.timeout);
        let until = now.at + timeout.unwrap_or_default() * RESUME_WAIT_FACTOR;
        if let Some(session) = self.session_mut(id) {
            session.phase = Phase::Claiming {
                name: Rc::from(name),
            };
        }
        let Some(r) = self.remote.as_mut() else {
            return;
        };
        // A member of another server (live, or within its window there): ask that server to
        // hand it over; the name is freed then, and this resume claims it.
        let holder = r
            .member(name)
            .map(|(name, server)| (name.to_string(), server));
        r.resuming.push(ResumeWait {
            id,
            name: Rc::from(name),
            ask,
            until,
        });
        out.arm(until, id, CoreTimer::ResumeWait);
        if let Some((name, server)) = holder {
            let server = server.to_string();
            self.publish(|| Event::Takeover { server, name }, now, out);
        }
    }

    /// A `RESUME` that another server handed its member over to did not admit it here: the
    /// room's view of it (this server's member now) is dropped with a `LEAVE`.
    pub(super) fn drop_handed(&mut self, name: &str, now: Now, out: &mut impl Outbox) {
        let handed = self
            .remote
            .as_mut()
            .is_some_and(|r| r.handed.remove(&*name.to_ascii_lowercase()));
        if handed {
            self.kept_member_leaves(name, now, out);
        }
    }

    /// The room's log was read further: each waiting `RESUME` whose name is free now claims it
    /// (one whose connection is gone or moved on is dropped).
    pub(super) fn retry_resumes(&mut self, now: Now, out: &mut impl Outbox) {
        let Some(r) = self.remote.as_mut() else {
            return;
        };
        if r.resuming.is_empty() {
            return;
        }
        let waits = std::mem::take(&mut r.resuming);
        for w in waits {
            let claiming = matches!(self.session(w.id).map(|s| &s.phase),
                Some(Phase::Claiming { name }) if *name == w.name);
            if !claiming {
                // Its connection is gone: a member handed over for it is gone too.
                self.drop_handed(&w.name, now, out);
                continue;
            }
            if self.remote.as_ref().is_some_and(|r| r.taken(&w.name)) {
                if let Some(r) = self.remote.as_mut() {
                    r.resuming.push(w);
                }
                continue;
            }
            self.claim(w.id, &w.name, Purpose::Resume(w.ask), out);
        }
    }

    /// A waiting `RESUME`'s deadline: its name was not freed in time.
    pub(super) fn resume_wait_over(&mut self, id: ConnId, now: Now, out: &mut impl Outbox) {
        let Some(r) = self.remote.as_mut() else {
            return;
        };
        // An earlier wait's timer (the claim failed again and it waits anew) ends nothing.
        let Some(at) = r
            .resuming
            .iter()
            .position(|w| w.id == id && w.until <= now.at)
        else {
            return;
        };
        let w = r.resuming.swap_remove(at);
        let claiming = matches!(self.session(id).map(|s| &s.phase),
            Some(Phase::Claiming { name }) if *name == w.name);
        if !claiming {
            self.drop_handed(&w.name, now, out);
            return;
        }
        if let Some(s) = self.session_mut(id) {
            s.phase = Phase::AwaitingName;
        }
        self.drop_handed(&w.name, now, out);
        if let Some(nick) = w.ask.login.as_deref() {
            self.login_refused(id, nick, &ResumeRefusal::NameTaken, now, out);
        } else {
            let text = format!("the name {} is taken (on another server)", w.name);
            self.send_error(id, ErrorCode::NameTaken, &text, out);
            self.prompt(id, out);
        }
        self.name_again_in_time(id, now, out);
    }

    /// A resume refused after waiting for the cluster: a connection asked for a name again
    /// gets `--login-timeout` anew to give one (its first deadline may have passed while it
    /// waited). Only after a wait, which only a valid token starts: a guesser's refusals,
    /// all at once, extend nothing.
    pub(super) fn name_again_in_time(&mut self, id: ConnId, now: Now, out: &mut impl Outbox) {
        if matches!(
            self.session(id).map(|s| &s.phase),
            Some(Phase::AwaitingName)
        ) {
            out.arm(now.at + self.config.login_timeout, id, CoreTimer::Login);
        }
    }

    /// This server is (again) in the room and Redis has `shared`: the newer of each record is
    /// kept here, and what Redis lacks or has older is published (a Redis that came back empty
    /// is filled again). From now on this server's changes are shared.
    pub(super) fn adopt_shared(&mut self, shared: Vec<Event>, now: Now, out: &mut impl Outbox) {
        self.v3.sharing = true;
        self.v3.shared.clear();
        let (mut members, mut bans): (HashMap<String, u64>, HashMap<String, u64>) =
            (HashMap::new(), HashMap::new());
        let mut adopted = 0;
        for event in shared {
            let Some(stamp) = event.stamp() else { continue };
            match &event {
                Event::Member { record } => members.insert(fold(&record.name), stamp),
                Event::Forget { name, .. } => members.insert(fold(name), stamp),
                Event::Ban { net, .. } | Event::Unban { net, .. } => {
                    bans.insert(net.clone(), stamp)
                }
                _ => None,
            };
            if self.apply_shared(event, None, now, out) {
                adopted += 1;
            }
        }
        let mut back = Vec::new();
        for r in self.v3.remembered().list() {
            if members
                .get(&fold(&r.name))
                .is_none_or(|s| *s < r.last_seen_ms)
            {
                back.push(Event::Member { record: r.clone() });
            }
        }
        let server = self.remote.as_ref().map(|r| r.server.to_string());
        let server = server.unwrap_or_default();
        for ban in self.admission.bans().iter() {
            let net = ban.net.to_string();
            let at_ms = wall_ms(ban.since);
            if bans.get(&net).is_none_or(|s| *s < at_ms) {
                back.push(ban_event(ban, &server));
            }
        }
        let written = back.len();
        for event in back {
            self.publish(|| event, now, out);
        }
        if adopted > 0 || written > 0 {
            out.console(
                Audience::All,
                format_args!(
                    "cluster: {adopted} remembered members and bans taken from the room, {written} written back to it"
                ),
            );
        }
    }

    /// A shared record of another server (`origin`), or of Redis's snapshot (`None`): kept
    /// when it is newer than this server's. True when it changed something here.
    pub(super) fn apply_shared(
        &mut self,
        event: Event,
        origin: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) -> bool {
        match event {
            Event::Member { record } => {
                // A record past `--remember` admits nobody: not worth keeping.
                let keep = u64::try_from(self.config.remember.as_millis()).unwrap_or(u64::MAX);
                if wall_ms(now.wall).saturating_sub(record.last_seen_ms) > keep {
                    return false;
                }
                let newer =
                    self.v3.remembered().get(&record.name).is_none_or(|mine| {
                        mine.last_seen_ms <= record.last_seen_ms && *mine != record
                    });
                if newer {
                    self.v3.remembered_mut().put(record.clone());
                    self.v3.write_local(Write::Member(record));
                }
                newer
            }
            Event::Forget { name, at_ms } => {
                let older = self
                    .v3
                    .remembered()
                    .get(&name)
                    .is_some_and(|mine| mine.last_seen_ms <= at_ms);
                if older {
                    self.v3.remembered_mut().forget(&name);
                    if let Some(o) = origin {
                        out.console(
                            Audience::All,
                            format_args!("forgot {name} (on server {o}): its token admits nobody"),
                        );
                    }
                    self.v3.write_local(Write::Forget(name));
                }
                older
            }
            Event::Ban {
                net,
                at_ms,
                until_ms,
                by,
                reason,
            } => {
                let Ok(parsed) = net.parse::<IpNet>() else {
                    return false;
                };
                let since = from_wall_ms(at_ms);
                let until = (until_ms > 0).then(|| from_wall_ms(until_ms));
                if until.is_some_and(|u| u <= now.wall) {
                    return false;
                }
                let known = self
                    .admission
                    .bans()
                    .iter()
                    .any(|b| b.net == parsed && b.since >= since);
                if known {
                    return false;
                }
                let reason = (!reason.is_empty()).then_some(reason);
                let ban = Ban {
                    net: parsed,
                    reason: reason.clone(),
                    by: by.clone(),
                    since,
                    until,
                };
                let kept = ban.clone();
                if let Err(e) = self.admission.bans_mut().add(ban) {
                    log::warn!("cluster: cannot keep the ban on {net} (by {by}): {e}");
                    return false;
                }
                self.v3.write_local(Write::Ban(kept));
                let cut = self.cut_banned(parsed, reason.as_deref(), now, out);
                let from = origin.map_or_else(String::new, |o| format!(", shared by server {o}"));
                out.console(
                    Audience::All,
                    format_args!("banned {net} (by {by}{from}; {cut} connections cut here)"),
                );
                true
            }
            Event::Unban { net, at_ms } => {
                let Ok(parsed) = net.parse::<IpNet>() else {
                    return false;
                };
                let older = self
                    .admission
                    .bans()
                    .iter()
                    .any(|b| b.net == parsed && wall_ms(b.since) <= at_ms);
                if older {
                    self.admission.bans_mut().remove(parsed);
                    self.v3.write_local(Write::Unban(parsed));
                    let from = origin.map_or_else(String::new, |o| format!(" (on server {o})"));
                    out.console(Audience::All, format_args!("unbanned {net}{from}"));
                }
                older
            }
            _ => false,
        }
    }

    /// This round's record changes go to the room's log (nothing while out of the room: the
    /// next join compares and writes back what Redis lacks).
    pub fn share_records(&mut self, now: Now, out: &mut impl Outbox) {
        if self.v3.shared.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.v3.shared);
        if !self.remote.as_ref().is_some_and(|r| r.up) {
            return;
        }
        let server = self.remote.as_ref().map(|r| r.server.to_string());
        let server = server.unwrap_or_default();
        let at_ms = wall_ms(now.wall);
        for change in changes {
            let event = match change {
                Write::Member(record) => Event::Member { record },
                Write::Seen { name, .. } => match self.v3.remembered().get(&name) {
                    Some(record) => Event::Member {
                        record: record.clone(),
                    },
                    None => continue,
                },
                Write::Forget(name) => Event::Forget { name, at_ms },
                Write::Ban(ban) => ban_event(&ban, &server),
                Write::Unban(net) => Event::Unban {
                    net: net.to_string(),
                    at_ms,
                },
                Write::Append(_) | Write::Reserve(_) | Write::Prune { .. } => continue,
            };
            self.publish(|| event, now, out);
        }
    }
}

/// A ban of this server as the event that shares it.
fn ban_event(ban: &Ban, server: &str) -> Event {
    let until_ms = ban.until.map_or(0, |u| wall_ms(u).max(1));
    let by = if ban.by.contains(" on server ") || server.is_empty() {
        ban.by.clone()
    } else {
        format!("{} on server {server}", ban.by)
    };
    Event::Ban {
        net: ban.net.to_string(),
        // When it was made (the store keeps it; a ban from a format 1 directory has the time
        // that kept), so a later record of its range wins.
        at_ms: wall_ms(ban.since),
        until_ms,
        by,
        reason: ban.reason.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fmt;
    use std::net::IpAddr;
    use std::rc::Rc;
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::chat::bus::{Entry, FromBridge, LogId, ToBridge};
    use crate::chat::durable::MemberRecord;
    use crate::chat::{CoreTimer, Outgoing, Restored};
    use crate::config::{ClusterConfig, Config};
    use crate::token::TokenHash;

    /// Keeps what the core asks of the bridge and says on the consoles.
    #[derive(Default)]
    struct Seen {
        published: Vec<Event>,
        console: Vec<String>,
    }

    impl Outbox for Seen {
        fn send(&mut self, _: ConnId, _: &Rc<Outgoing>) {}
        fn replay(&mut self, _: ConnId, _: crate::chat::Replay) {}
        fn close(&mut self, _: ConnId) {}
        fn console(&mut self, _: Audience, line: fmt::Arguments<'_>) {
            self.console.push(line.to_string());
        }
        fn arm(&mut self, _: Instant, _: ConnId, _: CoreTimer) {}
        fn quit(&mut self) {}
        fn cluster(&mut self, msg: ToBridge) {
            if let ToBridge::Publish { event, .. } = msg {
                self.published.push(event);
            }
        }
    }

    const T0: u64 = 1_764_605_109_000;

    fn now() -> Now {
        Now {
            at: Instant::now(),
            wall: from_wall_ms(T0 + 10_000),
        }
    }

    fn record(name: &str, hash: u8, last_seen_ms: u64) -> MemberRecord {
        MemberRecord {
            name: name.into(),
            token_hash: TokenHash([hash; 32]),
            approved_by: "stdin".into(),
            approved_at_ms: T0,
            last_seen_ms,
        }
    }

    fn up(epoch: u64, shared: Vec<Event>) -> FromBridge {
        FromBridge::Up {
            epoch,
            server: format!("s1~{epoch}"),
            at: LogId(5, 0),
            remote: vec![],
            history: vec![],
            shared,
        }
    }

    /// A core of a cluster that remembers `members`, in the room once `shared` is Redis's.
    fn core(members: Vec<MemberRecord>, shared: Vec<Event>, out: &mut Seen) -> Core {
        let mut core = Core::new(
            Config {
                cluster: Some(ClusterConfig {
                    url: "redis://127.0.0.1".into(),
                    room: "chat".into(),
                    timeout: Duration::from_secs(5),
                    history: 50,
                    name: "s1".into(),
                    keep_forgets: crate::config::MIN_KEEP_FORGETS,
                }),
                ..Config::default()
            },
            1,
        );
        core.restore(Restored {
            epoch: 7,
            next_seq: 1,
            members,
            ..Restored::default()
        });
        core.cluster_input(up(1, shared), now(), out);
        core
    }

    fn from_s2(core: &mut Core, event: Event, out: &mut Seen) {
        let entries = vec![Entry {
            origin: "s2".into(),
            wall: SystemTime::now(),
            event,
        }];
        let msg = FromBridge::Entries {
            epoch: 1,
            entries,
            last: LogId(6, 0),
        };
        core.cluster_input(msg, now(), out);
    }

    fn hash_of(core: &Core, name: &str) -> Option<u8> {
        core.v3.remembered().get(name).map(|r| r.token_hash.0[0])
    }

    fn down(core: &mut Core, out: &mut Seen) {
        let why = "test".to_owned();
        core.cluster_input(FromBridge::Down { why }, now(), out);
        out.published.clear();
    }

    #[test]
    fn joining_adopts_what_is_newer_and_writes_back_what_redis_lacks_or_has_older() {
        let mut out = Seen::default();
        let mine = vec![record("al", 1, T0 + 100), record("Bo", 2, T0 + 500)];
        let redis = vec![
            Event::Forget {
                name: "AL".into(),
                at_ms: T0 + 200,
            },
            Event::Member {
                record: record("bo", 3, T0 + 300),
            },
            Event::Member {
                record: record("cy", 4, T0 + 50),
            },
        ];
        let core = core(mine, redis, &mut out);
        assert_eq!(
            hash_of(&core, "al"),
            None,
            "forgotten after its last session"
        );
        assert_eq!(hash_of(&core, "bo"), Some(2), "this server's is newer");
        assert_eq!(hash_of(&core, "cy"), Some(4), "learnt from Redis");
        assert_eq!(
            out.published,
            [Event::Member {
                record: record("Bo", 2, T0 + 500)
            }],
            "only what Redis has older is written back"
        );
        let said = "2 remembered members and bans taken from the room, 1 written back";
        assert!(
            out.console.iter().any(|l| l.contains(said)),
            "{:?}",
            out.console
        );
    }

    #[test]
    fn a_redis_that_came_back_empty_gets_every_record_and_ban_back() {
        let mut out = Seen::default();
        let ban = Event::Ban {
            net: "10.0.0.0/8".into(),
            at_ms: T0,
            until_ms: 0,
            by: "stdin on server s2".into(),
            reason: String::new(),
        };
        let mut c = core(vec![record("al", 1, T0)], vec![ban.clone()], &mut out);
        down(&mut c, &mut out);
        c.cluster_input(up(2, vec![]), now(), &mut out);
        let mut back = out.published.clone();
        back.sort_by_key(|e| matches!(e, Event::Ban { .. }));
        assert_eq!(
            back,
            [
                Event::Member {
                    record: record("al", 1, T0)
                },
                ban
            ]
        );
        // Redis as full as this server: nothing to write.
        down(&mut c, &mut out);
        c.cluster_input(up(3, back), now(), &mut out);
        assert!(out.published.is_empty(), "{:?}", out.published);
    }

    #[test]
    fn the_later_record_wins_whatever_order_they_arrive_in() {
        let mut out = Seen::default();
        let mut c = core(vec![record("al", 1, T0 + 200)], vec![], &mut out);
        out.published.clear();
        let older = record("al", 9, T0 + 100);
        from_s2(&mut c, Event::Member { record: older }, &mut out);
        assert_eq!(
            hash_of(&c, "al"),
            Some(1),
            "an older token does not come back"
        );
        let old_forget = Event::Forget {
            name: "al".into(),
            at_ms: T0 + 150,
        };
        from_s2(&mut c, old_forget, &mut out);
        assert_eq!(
            hash_of(&c, "al"),
            Some(1),
            "a forget older than the last session"
        );
        let newer = record("al", 5, T0 + 300);
        from_s2(&mut c, Event::Member { record: newer }, &mut out);
        assert_eq!(
            hash_of(&c, "al"),
            Some(5),
            "a resume elsewhere replaced the token"
        );
        let forget = Event::Forget {
            name: "AL".into(),
            at_ms: T0 + 400,
        };
        from_s2(&mut c, forget, &mut out);
        assert_eq!(hash_of(&c, "al"), None);
        assert!(out
            .console
            .iter()
            .any(|l| l.starts_with("forgot AL (on server s2)")));
        // A record past --remember (30 days) is not kept.
        let ancient = record("zed", 1, T0 - 40 * 24 * 3600 * 1000);
        from_s2(&mut c, Event::Member { record: ancient }, &mut out);
        assert_eq!(hash_of(&c, "zed"), None);
        c.share_records(now(), &mut out);
        assert!(
            out.published.is_empty(),
            "nothing another server said is said again"
        );
    }

    #[test]
    fn bans_and_unbans_of_other_servers_apply_by_their_time() {
        let mut out = Seen::default();
        let mut c = core(vec![], vec![], &mut out);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let when = now().wall;
        let ban = Event::Ban {
            net: "10.0.0.0/8".into(),
            at_ms: T0 + 100,
            until_ms: 0,
            by: "stdin on server s2".into(),
            reason: "spam".into(),
        };
        from_s2(&mut c, ban, &mut out);
        assert!(c.admission.banned(ip, when).is_some());
        let stale = Event::Unban {
            net: "10.0.0.0/8".into(),
            at_ms: T0 + 50,
        };
        from_s2(&mut c, stale, &mut out);
        assert!(c.admission.banned(ip, when).is_some(), "an older unban");
        let unban = Event::Unban {
            net: "10.0.0.0/8".into(),
            at_ms: T0 + 200,
        };
        from_s2(&mut c, unban, &mut out);
        assert!(c.admission.banned(ip, when).is_none());
        let ended = Event::Ban {
            net: "10.0.0.0/8".into(),
            at_ms: T0 + 300,
            until_ms: T0 + 400,
            by: "stdin on server s2".into(),
            reason: String::new(),
        };
        from_s2(&mut c, ended, &mut out);
        assert!(c.admission.banned(ip, when).is_none(), "already over");
        c.share_records(now(), &mut out);
        assert!(out.published.is_empty());
    }

    #[test]
    fn this_server_s_bans_and_forgets_go_to_the_room_once_a_round() {
        let mut out = Seen::default();
        let mut c = core(vec![record("al", 1, T0 + 200)], vec![], &mut out);
        out.published.clear();
        let console = crate::chat::ConsoleId(0);
        let _ = c.console_line(console, "ban 10.0.0.0/8 1h spam", now(), &mut out);
        let _ = c.console_line(console, "forget al", now(), &mut out);
        assert!(out.published.is_empty(), "not before the round ends");
        c.share_records(now(), &mut out);
        let at_ms = T0 + 10_000;
        assert_eq!(
            out.published,
            [
                Event::Ban {
                    net: "10.0.0.0/8".into(),
                    at_ms,
                    until_ms: at_ms + 3_600_000,
                    by: "stdin on server s1~1".into(),
                    reason: "spam".into(),
                },
                Event::Forget {
                    name: "al".into(),
                    at_ms
                },
            ]
        );
    }
}
