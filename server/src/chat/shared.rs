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

use chat_common::protocol::ErrorCode;

use super::bans::{Ban, IpNet};
use super::bus::{from_wall_ms, wall_ms, Event};
use super::durable::Write;
use super::remote::Purpose;
use super::{Audience, ConnId, Core, Now, Outbox, Phase};

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Core {
    /// Under `--cluster`, a `RESUME` whose token admits `name` first claims the name in Redis
    /// (the answer resumes it, see `remote.rs`); refused at once when another server has a
    /// member or a waiting join of that name. True: the resume waits for the claim (or was
    /// refused); false: go on now (no cluster, or cut off: the server refuses joins anyway).
    pub(super) fn claim_for_resume(
        &mut self,
        id: ConnId,
        name: &str,
        token: &str,
        last: Option<&str>,
        out: &mut impl Outbox,
    ) -> bool {
        if !self.remote.as_ref().is_some_and(|r| r.up) {
            return false;
        }
        let elsewhere = self.remote.as_ref().is_some_and(|r| r.taken(name));
        if elsewhere {
            let text = format!("the name {name} is taken (on another server)");
            self.send_error(id, ErrorCode::NameTaken, &text, out);
            self.prompt(id, out);
            return true;
        }
        if let Some(session) = self.session_mut(id) {
            session.phase = Phase::Claiming {
                name: std::rc::Rc::from(name),
            };
        }
        let purpose = Purpose::Resume {
            token: token.into(),
            last: last.map(Into::into),
        };
        self.claim(id, name, purpose, out);
        true
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
        for r in self.v3.remembered.list() {
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
                let newer =
                    self.v3.remembered.get(&record.name).is_none_or(|mine| {
                        mine.last_seen_ms <= record.last_seen_ms && *mine != record
                    });
                if newer {
                    self.v3.remembered.put(record.clone());
                    self.v3.write_local(Write::Member(record));
                }
                newer
            }
            Event::Forget { name, at_ms } => {
                let older = self
                    .v3
                    .remembered
                    .get(&name)
                    .is_some_and(|mine| mine.last_seen_ms <= at_ms);
                if older {
                    self.v3.remembered.forget(&name);
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
                if let Err(e) = self.admission.bans_mut().add(ban) {
                    log::warn!("cluster: cannot keep the ban on {net} (by {by}): {e}");
                    return false;
                }
                self.v3.write_local(Write::Ban(net.clone(), at_ms));
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
                    self.v3.write_local(Write::Unban(net.clone()));
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
                Write::Seen { name, .. } => match self.v3.remembered.get(&name) {
                    Some(record) => Event::Member {
                        record: record.clone(),
                    },
                    None => continue,
                },
                Write::Forget(name) => Event::Forget { name, at_ms },
                Write::Ban(net, _) => {
                    let ban = self
                        .admission
                        .bans()
                        .iter()
                        .find(|b| b.net.to_string() == net)
                        .map(|b| ban_event(b, &server));
                    match ban {
                        Some(event) => event,
                        None => continue,
                    }
                }
                Write::Unban(net) => Event::Unban { net, at_ms },
                Write::Append(_) | Write::Prune { .. } => continue,
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
        // A ban restored from the store has no time kept: it counts as made at the Unix epoch,
        // so any later record of its range wins.
        at_ms: wall_ms(ban.since),
        until_ms,
        by,
        reason: ban.reason.clone().unwrap_or_default(),
    }
}
