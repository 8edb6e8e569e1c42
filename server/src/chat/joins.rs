//! The way in, step by step: a new connection, its name, the waiting room, the operator's
//! decision. Each step asks the part that owns the rule ([`Admission`](super::admission) for
//! bans, cool-downs and the waiting room's bounds, the [`Room`](super::room) for names) and
//! sends what follows; nothing here keeps state of its own. A banned address gets `DENIED` at
//! connect.

use std::net::SocketAddr;
use std::rc::Rc;

use chat_common::protocol::{validate_name, ErrorCode, ServerMsg};

use super::admission::WaitRefusal;
use super::bus::Event;
use super::operator::Announcement;
use super::replay::Replay;
use super::{
    Audience, ConnId, Core, CoreTimer, Now, Outbox, Phase, Session, Transport, NAME_PROMPT,
};
use crate::bucket::Bucket;
use crate::config::NICK_BURST;

impl Core {
    /// A connection was accepted: it is asked for a name (or refused, when its address is
    /// banned).
    pub fn connected(&mut self, id: ConnId, addr: SocketAddr, now: Now, out: &mut impl Outbox) {
        if self.admission.banned(addr.ip(), now.wall).is_some() {
            log::debug!("refusing {addr}: banned");
            self.send(
                id,
                &ServerMsg::Denied {
                    text: "your address is banned",
                },
                out,
            );
            out.close(id);
            return;
        }
        if self.cut_off() {
            let text = super::remote::CUT_OFF_DENIED;
            self.send(id, &ServerMsg::Denied { text }, out);
            out.close(id);
            return;
        }
        self.sessions.insert(
            id,
            Session {
                serial: id.serial,
                addr,
                phase: Phase::AwaitingName,
                renames: Bucket::full(f64::from(NICK_BURST), now.at),
                transport: Transport::default(),
                joined: None,
            },
        );
        self.prompt(id, out);
        out.arm(now.at + self.config.login_timeout, id, CoreTimer::Login);
    }

    pub(super) fn prompt(&mut self, id: ConnId, out: &mut impl Outbox) {
        self.send(
            id,
            &ServerMsg::NameQuery {
                prompt: NAME_PROMPT,
            },
            out,
        );
    }

    /// The first line of a connection: the name it wants.
    pub(super) fn offer_name(&mut self, id: ConnId, line: &str, now: Now, out: &mut impl Outbox) {
        if self.opening(id, line, now, out) {
            return;
        }
        let name = match validate_name(line) {
            Ok(name) => name,
            Err(e) => {
                self.send_error(id, ErrorCode::BadName, &e.to_string(), out);
                self.prompt(id, out);
                return;
            }
        };
        let Some(addr) = self.session(id).map(|s| s.addr) else {
            return;
        };
        let ip = addr.ip();
        if self.cut_off() {
            let text = super::remote::CUT_OFF_DENIED;
            return self.deny(id, text, false, now, out);
        }
        if self.room.holder(name).is_some()
            || self.detached_name(name).is_some()
            || self.remote.as_ref().is_some_and(|r| r.taken(name))
        {
            let text = format!("the name {name} is taken");
            self.send_error(id, ErrorCode::NameTaken, &text, out);
            self.prompt(id, out);
            return;
        }
        if let Err(why) = self.admission.may_take_name(ip, name, now.at) {
            self.send_error(id, ErrorCode::NameTaken, &why.to_string(), out);
            self.prompt(id, out);
            return;
        }
        let wait = if self.admission.auto_approve() {
            false
        } else {
            match self.admission.may_wait(ip, self.room.waiting()) {
                Ok(()) => true,
                Err(why @ WaitRefusal::NoOperator) => {
                    return self.deny(id, &why.to_string(), false, now, out)
                }
                Err(why) => {
                    // debug, not warn: a peer can trigger this as often as it likes.
                    log::debug!("{ip}: {why}: refusing {name}");
                    return self.refuse_join(id, &why.to_string(), out);
                }
            }
        };
        if self.remote.is_some() {
            // The name must be the cluster's too: the answer comes back as an event.
            if let Some(session) = self.session_mut(id) {
                session.phase = Phase::Claiming {
                    name: Rc::from(name),
                };
            }
            self.claim(id, name, super::remote::Purpose::Join { wait }, out);
            return;
        }
        self.proceed(id, name, wait, now, out);
    }

    /// A free name goes on: into the room at once, or into the waiting room.
    pub(super) fn proceed(
        &mut self,
        id: ConnId,
        name: &str,
        wait: bool,
        now: Now,
        out: &mut impl Outbox,
    ) {
        if !wait {
            return self.admit(id, name, None, now, out);
        }
        let Some(addr) = self.session(id).map(|s| s.addr) else {
            return;
        };
        let ip = addr.ip();
        {
            let name: Rc<str> = Rc::from(name);
            if let Some(session) = self.session_mut(id) {
                session.phase = Phase::Waiting {
                    name: Rc::clone(&name),
                    since: now.at,
                };
            }
            self.admission.pend(ip);
            self.room.add_pending(&name, id);
            let text = format!("waiting for the operator to approve {name}");
            self.send(id, &ServerMsg::Wait { text: &text }, out);
            out.arm(
                now.at + self.config.approval_timeout,
                id,
                CoreTimer::Approval,
            );
            self.publish(
                || Event::Request {
                    name: name.to_string(),
                    addr: addr.to_string(),
                },
                now,
                out,
            );
            self.announce(
                Announcement::Request,
                now,
                out,
                format_args!("join request: {name} from {addr} (approve {name} / deny {name})"),
            );
        }
    }

    /// `ERROR server-full` and a polite close, for a join the waiting room cannot take.
    fn refuse_join(&mut self, id: ConnId, why: &str, out: &mut impl Outbox) {
        self.send_error(id, ErrorCode::ServerFull, why, out);
        self.take_session(id);
        out.close(id);
    }

    /// Moves a connection into the room: WELCOME and the history to it, JOIN to everyone else.
    /// `by`: the console that approved it (`None`: no approval was needed).
    pub(super) fn admit(
        &mut self,
        id: ConnId,
        name: &str,
        by: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let name: Rc<str> = Rc::from(name);
        let Some(session) = self.session_mut(id) else {
            return;
        };
        let was_waiting = matches!(session.phase, Phase::Waiting { .. });
        session.phase = Phase::Member {
            name: Rc::clone(&name),
        };
        session.renames = Bucket::full(f64::from(NICK_BURST), now.at);
        session.joined = Some(now.at);
        let addr = session.addr;
        if was_waiting {
            self.admission.unpend(addr.ip());
        }
        self.room.admit(&name, id);
        self.publish(
            || Event::Join {
                name: name.to_string(),
            },
            now,
            out,
        );
        let online = self.everyone();
        self.send(
            id,
            &ServerMsg::Welcome {
                name: &name,
                online,
            },
            out,
        );
        let approved_by = if was_waiting {
            "the operator"
        } else {
            "auto-approve"
        };
        // A version 3 member's TOKEN waits for its record to be on disk, and its history
        // waits behind it (chat/resume.rs).
        if !self.first_token(id, &name, approved_by, now, out) {
            self.send_history(id, out);
        }
        self.broadcast(&ServerMsg::Join { name: &name }, Some(id), out);
        if was_waiting {
            let by = by.unwrap_or("the operator");
            out.console(
                Audience::All,
                format_args!("approved {name} (by {by}; {online} online)"),
            );
        } else {
            out.console(
                Audience::All,
                format_args!("joined {name} from {addr} ({online} online)"),
            );
        }
    }

    /// The history on join, paced by the shell.
    pub(super) fn send_history(&mut self, id: ConnId, out: &mut impl Outbox) {
        if !self.history.is_empty() {
            out.replay(id, Replay::history(self.history.snapshot()));
        }
    }

    /// Refuses a join (waiting or just named): DENIED, its name freed, then a polite close.
    /// `cool`: the operator or the approval timeout refused it, so the name cools down for its
    /// address.
    pub(super) fn deny(
        &mut self,
        id: ConnId,
        why: &str,
        cool: bool,
        now: Now,
        out: &mut impl Outbox,
    ) {
        self.send(id, &ServerMsg::Denied { text: why }, out);
        let Some(session) = self.take_session(id) else {
            return;
        };
        if let Phase::Waiting { name, .. } = &session.phase {
            self.room.remove(name, id);
            self.admission.unpend(session.addr.ip());
            if cool {
                self.admission
                    .start_cooldown(session.addr.ip(), name, now.at);
            }
            let how = "denied".to_owned();
            let event = Event::Decided {
                name: name.to_string(),
                how,
            };
            // The LEAVE-like event frees the name in Redis in the same step.
            self.publish(|| event, now, out);
        }
        out.close(id);
    }

    /// The shell says how connection `id` reached the server (plain TCP unless told).
    pub fn set_transport(&mut self, id: ConnId, transport: Transport) {
        if let Some(session) = self.session_mut(id) {
            session.transport = transport;
        }
    }

    /// One more console is open.
    pub fn console_opened(&mut self) {
        self.admission.console_opened();
    }

    /// A console closed; with none left (and no `--auto-approve`) every waiting join is denied,
    /// as nobody is there to approve it.
    pub fn console_closed(&mut self, now: Now, out: &mut impl Outbox) {
        if self.admission.console_closed() {
            log::info!("no console left: joins are now denied");
            let waiting: Vec<ConnId> = self.room.pending().collect();
            for id in waiting {
                self.deny(id, &WaitRefusal::NoOperator.to_string(), false, now, out);
            }
        }
    }
}
