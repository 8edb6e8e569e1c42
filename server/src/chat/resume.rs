//! Sessions that outlive a connection, step by step: `HELLO`, `RESUME`, a token login from
//! another dialect ([`Core::admit_remembered`]), new tokens, the replay of what a resumed member
//! missed, the resume window's end, kicks and `forget`, `members`.
//!
//! Every decision is [`V3`](super::v3)'s (whether a token admits, takeover, where a replay
//! starts, who is kept in the room and until when); the steps here ask it, then route what
//! follows: lines to connections, the room's events, console lines, timers. Nothing here keeps
//! state of its own.

use std::rc::Rc;

use chat_common::protocol::v3::{parse_opening, Opening, OpeningError, V3Msg};
use chat_common::protocol::{ErrorCode, LeaveReason, ServerMsg};

use super::bus::Event;
use super::durable::{Entry, Kind, MemberRecord};
use super::msgid::MsgId;
use super::outgoing::{Dialect, Outgoing};
use super::remote::ResumeAsk;
use super::v3::{wall_of, Holder, ReadFrom, ResumeDecision, ResumeRefusal};
use super::{Audience, ConnId, Core, CoreTimer, Now, Outbox, Phase};

/// What a refused token login ([`Core::admit_remembered`]) is told (`ERROR bad-token`) before
/// it joins the waiting room: the same for every reason, so a guesser learns nothing.
pub const LOGIN_REFUSED: &str = "That password is not a token this server remembers (it may have \
expired, or been voided by a kick or forget): the operator decides";

/// What became of a token login ([`Core::admit_remembered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLogin {
    /// Admitted now: `WELCOME` went out (a live session of the name was taken over).
    Admitted,
    /// Under `--cluster`: the name is being claimed in Redis (another server's session of it
    /// is asked to let go). `WELCOME` comes with the answer, or the refusal's
    /// [`LOGIN_REFUSED`] and the waiting room; the dialect need not wait for either.
    Waiting,
    /// Refused: [`LOGIN_REFUSED`] went out and the connection offered its nick as a name
    /// (except [`ResumeRefusal::Named`]: a connection past its name, told nothing).
    Refused(ResumeRefusal),
}

impl Core {
    pub(super) fn format_v3(&mut self, msg: &V3Msg<'_>) -> Rc<Outgoing> {
        self.fmt.clear();
        msg.write_to(&mut self.fmt);
        Outgoing::from_line(&self.fmt, None)
    }

    /// A line before admission that is `HELLO` or `RESUME`; `false` when it is a name.
    pub(super) fn opening(
        &mut self,
        id: ConnId,
        line: &str,
        now: Now,
        out: &mut impl Outbox,
    ) -> bool {
        match parse_opening(line) {
            Ok(Opening::Name(_)) => false,
            Ok(Opening::Hello { .. }) if self.v3.is_session(id) => {
                // A second HELLO used to be answered (even `HELLO 2`, while the session stayed
                // version 3): the version is settled once.
                self.send_error(id, ErrorCode::Usage, "HELLO was said already", out);
                self.prompt(id, out);
                true
            }
            Ok(Opening::Hello { version }) => {
                let (version, v3) = self.v3.hello(id, version);
                if v3 {
                    out.dialect(id, Dialect::V3);
                }
                let hello = self.format_v3(&V3Msg::Hello { version });
                out.send(id, &hello);
                true
            }
            Ok(Opening::Resume { name, token, last }) => {
                let decision = if !self.v3.is_session(id) {
                    ResumeDecision::Refuse(ResumeRefusal::NeedsHello)
                } else {
                    let ask = ResumeAsk {
                        token: token.into(),
                        last: last.map(Into::into),
                        login: None,
                    };
                    match self.resume_or_claim(id, name, ask, Holder::Free, now, out) {
                        // Under --cluster the name is claimed in Redis first (shared.rs).
                        None => return true,
                        Some(decision) => decision,
                    }
                };
                if let ResumeDecision::Refuse(why) = decision {
                    self.refuse_resume(id, name, why, now, out);
                }
                true
            }
            Err(e @ OpeningError::BadHello) | Err(e @ OpeningError::ResumeUsage) => {
                self.send_error(id, ErrorCode::Usage, &e.to_string(), out);
                self.prompt(id, out);
                true
            }
            Err(e) => {
                self.send_error(id, ErrorCode::BadToken, &e.to_string(), out);
                self.prompt(id, out);
                true
            }
        }
    }

    /// A refused `RESUME`: the error on the wire (every token refusal reads the same, so a
    /// guesser learns nothing), and the name prompt again.
    pub(super) fn refuse_resume(
        &mut self,
        id: ConnId,
        name: &str,
        why: ResumeRefusal,
        now: Now,
        out: &mut impl Outbox,
    ) {
        match why {
            ResumeRefusal::CutOff => {
                return self.deny(id, super::remote::CUT_OFF_DENIED, false, now, out);
            }
            ResumeRefusal::NeedsHello => {
                self.send_error(id, ErrorCode::BadToken, "RESUME needs HELLO 3 first", out);
            }
            ResumeRefusal::Token(why) => {
                log::debug!("#{} RESUME {name}: {why:?}", id.serial);
                let text = "that token admits nobody; choose a name";
                self.send_error(id, ErrorCode::BadToken, text, out);
            }
            ResumeRefusal::NameTaken | ResumeRefusal::Named => {
                let text = format!("the name {name} is taken");
                self.send_error(id, ErrorCode::NameTaken, &text, out);
            }
        }
        self.prompt(id, out);
    }

    /// Resumes `name` for `id` if `token` admits it (`RESUME`, and a token login): at once, or
    /// under `--cluster` once the name is claimed in Redis (`None`: the answer comes later,
    /// see `shared.rs`; what follows then is what follows now). `seen`: what the caller knows
    /// of the name's holders here beyond a member ([`Holder::Other`] refuses at once).
    fn resume_or_claim(
        &mut self,
        id: ConnId,
        name: &str,
        ask: ResumeAsk,
        seen: Holder,
        now: Now,
        out: &mut impl Outbox,
    ) -> Option<ResumeDecision> {
        let valid = !matches!(
            self.v3.decide_resume(name, &ask.token, now.wall, seen),
            ResumeDecision::Refuse(_)
        );
        if valid && self.claim_for_resume(id, name, ask.clone(), now, out) {
            return None;
        }
        Some(self.resume_with(id, name, &ask.token, ask.last.as_deref(), now, out))
    }

    /// Admits connection `id`, not yet named, as the remembered member `name` if `token` is its
    /// token: the way in for a dialect that carries the token outside a `RESUME` line (IRC's
    /// `PASS` or SASL PLAIN). It is a `RESUME` in every rule (a live session of the name is
    /// taken over; within its window the member's place was kept; under `--cluster` the name is
    /// claimed in Redis first, and another server's session of it is taken over through the
    /// room's log), and the member's replay is the room's recent history. Refused, the
    /// connection is told [`LOGIN_REFUSED`] (`ERROR bad-token`) and joins the waiting room as
    /// `nick`, the operator deciding, as if it had sent no token: the same whether the answer
    /// is now or, under `--cluster`, once the claim is answered ([`TokenLogin::Waiting`]).
    /// The token is not replaced for a session that is not version 3 (no `TOKEN` line reaches
    /// it), so a client's fixed password keeps working.
    pub fn admit_remembered(
        &mut self,
        id: ConnId,
        name: &str,
        token: &str,
        nick: &str,
        now: Now,
        out: &mut impl Outbox,
    ) -> TokenLogin {
        if !matches!(
            self.session(id).map(|s| &s.phase),
            Some(Phase::AwaitingName)
        ) {
            return TokenLogin::Refused(ResumeRefusal::Named);
        }
        let ask = ResumeAsk {
            token: token.into(),
            last: None,
            login: Some(nick.into()),
        };
        // A name another server's waiting join holds refuses at once, as SASL said (904).
        let seen = self.login_holder(name);
        match self.resume_or_claim(id, name, ask, seen, now, out) {
            None => TokenLogin::Waiting,
            Some(ResumeDecision::Refuse(why)) => {
                self.login_refused(id, nick, &why, now, out);
                TokenLogin::Refused(why)
            }
            Some(_) => TokenLogin::Admitted,
        }
    }

    /// A refused `RESUME` (`login`: `None`) or token login (the nick to join under): what
    /// follows is the same whether the refusal came at once or after a claim.
    pub(super) fn resume_refused(
        &mut self,
        id: ConnId,
        name: &str,
        why: ResumeRefusal,
        login: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        match login {
            Some(nick) => self.login_refused(id, nick, &why, now, out),
            None => self.refuse_resume(id, name, why, now, out),
        }
    }

    /// A refused token login: [`LOGIN_REFUSED`], then `nick` is offered as a name (the waiting
    /// room, the operator deciding; or `ERROR name-taken` and the prompt, as for anyone).
    pub(super) fn login_refused(
        &mut self,
        id: ConnId,
        nick: &str,
        why: &ResumeRefusal,
        now: Now,
        out: &mut impl Outbox,
    ) {
        log::debug!("#{} token login as {nick}: {why:?}", id.serial);
        if *why == ResumeRefusal::CutOff {
            return self.deny(id, super::remote::CUT_OFF_DENIED, false, now, out);
        }
        self.send_error(id, ErrorCode::BadToken, LOGIN_REFUSED, out);
        self.offer_name(id, nick, now, out);
    }

    /// Who holds `name` here: a member (a resume takes it over), another connection (a waiting
    /// join: it keeps the name), or nobody.
    fn local_holder(&self, name: &str) -> Holder {
        match self.room.holder(name) {
            None => Holder::Free,
            Some(h) => match self.session(h).map(|s| &s.phase) {
                Some(Phase::Member { .. }) => Holder::Member(h),
                _ => Holder::Other,
            },
        }
    }

    /// Who holds `name` for a token login: [`Core::local_holder`], except that under
    /// `--cluster` a name held elsewhere by someone a resume cannot take over (another server's
    /// waiting join, or a claim under way here) is [`Holder::Other`]. Another server's member
    /// is not: a resume takes it over through the room's log.
    fn login_holder(&self, name: &str) -> Holder {
        let elsewhere = self
            .remote
            .as_ref()
            .is_some_and(|r| r.up && r.taken(name) && r.member(name).is_none());
        if elsewhere {
            Holder::Other
        } else {
            self.local_holder(name)
        }
    }

    /// Connection `id` speaks a dialect whose clients keep one fixed password (IRC): its member
    /// gets a token when first admitted through the waiting room (unless `--remember 0`), and a
    /// token login ([`Core::admit_remembered`]) keeps that token instead of replacing it. It is
    /// void as any token is (kick, `forget`, `--remember`), and has no resume window.
    pub fn fixed_token(&mut self, id: ConnId) {
        if self.session(id).is_some() {
            self.v3.fix_token(id);
        }
    }

    /// Whether a token login of `name` with `token` ([`Core::admit_remembered`]) would admit it,
    /// changing nothing: for a dialect that must answer a login before the connection names
    /// itself (IRC's SASL `903`/`904`). True when the token is the member's and the name is
    /// free, or held by the member's own session (here, or under `--cluster` on another server:
    /// the login takes it over); false when a waiting join holds it (here or on another
    /// server) or a claim of it is under way here.
    pub fn token_admits(&self, name: &str, token: &str, now: Now) -> bool {
        if self.cut_off() {
            return false;
        }
        let holder = self.login_holder(name);
        !matches!(
            self.v3.decide_resume(name, token, now.wall, holder),
            ResumeDecision::Refuse(_)
        )
    }

    /// Asks [`V3`](super::v3) whether `token` admits `name` for `id`, and carries out an
    /// admission: a taken-over session closed, `WELCOME`, a new token, `JOIN` to the room (not
    /// when its place was kept), and the replay after `last`. A refusal changes nothing.
    pub(super) fn resume_with(
        &mut self,
        id: ConnId,
        name: &str,
        token: &str,
        last: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) -> ResumeDecision {
        // Cut off from its cluster, the server admits nobody (offer_name denies joins too): a
        // connection that was waiting for its name when the cut came may not resume here.
        if self.cut_off() {
            return ResumeDecision::Refuse(ResumeRefusal::CutOff);
        }
        // Under --cluster another server's member or waiting join of the name keeps it (a
        // resume claimed it in Redis first, see `claim_for_resume`: this is a cut-off server's
        // or a refused claim's answer).
        if self.remote.as_ref().is_some_and(|r| r.up && r.taken(name)) {
            return ResumeDecision::Refuse(ResumeRefusal::NameTaken);
        }
        let holder = self.local_holder(name);
        let decision = self.v3.decide_resume(name, token, now.wall, holder);
        let (record, stayed) = match &decision {
            ResumeDecision::Refuse(_) => return decision,
            ResumeDecision::Accept { record, kept } => {
                // Handed over by another server (a cross-server takeover): its place in the
                // room was kept there, so the room hears nothing here either.
                let handed = self
                    .remote
                    .as_mut()
                    .is_some_and(|r| r.handed.remove(&*name.to_ascii_lowercase()));
                (record.clone(), *kept || handed)
            }
            ResumeDecision::Takeover { record, holder } => {
                self.take_over(*holder, &record.name, out);
                (record.clone(), true)
            }
        };
        self.resume_admit(id, &record, stayed, last, now, out);
        decision
    }

    /// Another server (`to`) has a `RESUME` of this server's member `name` with a valid token
    /// ([`Event::Takeover`]): a live session is taken over (`BYE resumed elsewhere`), a member
    /// within its window ends it, and the name is freed and handed over ([`Event::Handover`]),
    /// with no `LEAVE`; it is `to`'s member in this server's view from then on. Nothing when
    /// `name` is not a member here (it left meanwhile).
    pub(super) fn hand_over(&mut self, name: &str, to: &str, now: Now, out: &mut impl Outbox) {
        let live = self
            .room
            .holder(name)
            .and_then(|h| match self.session(h).map(|s| &s.phase) {
                Some(Phase::Member { name }) => Some((h, Rc::clone(name))),
                _ => None,
            });
        let name: Rc<str> = match (live, self.v3.detached_name(name)) {
            (Some((holder, name)), _) => {
                self.take_over(holder, &name, out);
                name
            }
            (None, Some(name)) => {
                self.v3.rejoined(&name);
                name
            }
            (None, None) => return,
        };
        self.release(&name, out);
        // The room's view here: `to`'s member now (this server does not read its own
        // `Handover` back), so its later `LEAVE` or `NICK` there is shown here too.
        if let Some(r) = self.remote.as_mut() {
            r.joined(&name, to);
        }
        let (moved, to_server) = (name.to_string(), to.to_owned());
        self.publish(
            || Event::Handover {
                name: moved,
                to: to_server,
            },
            now,
            out,
        );
        out.console(
            Audience::All,
            format_args!("{name} resumed on server {to}: its session here is closed"),
        );
    }

    /// `holder`, a live session of `name`, is taken over by a resume: `BYE`, closed, and out
    /// of the room without a `LEAVE` (its name stays in the room).
    fn take_over(&mut self, holder: ConnId, name: &str, out: &mut impl Outbox) {
        self.send(
            holder,
            &ServerMsg::Bye {
                text: "resumed elsewhere",
            },
            out,
        );
        self.sessions.take(holder);
        self.room.remove(name, holder);
        self.v3.end_session(holder);
        out.close(holder);
    }

    /// `id` is admitted as the remembered member `record` (`stayed`: its place in the room was
    /// kept, so the room hears nothing).
    fn resume_admit(
        &mut self,
        id: ConnId,
        record: &MemberRecord,
        stayed: bool,
        last: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let name: Rc<str> = Rc::from(record.name.as_str());
        let Some(session) = self.session_mut(id) else {
            return;
        };
        session.phase = Phase::Member {
            name: Rc::clone(&name),
        };
        session.renames = crate::bucket::Bucket::full(f64::from(crate::config::NICK_BURST), now.at);
        self.room.admit(&name, id);
        // A fixed password (IRC) carries no last id: such a login gets the room's recent
        // history as any join does (`--history`, with its times), not every kept message.
        let fixed = self.v3.has_fixed_token(id);
        let point = self.v3.resume_point(last);
        // Live room lines wait until the replay has ended (they are in it). Out of the window
        // first, so the count below holds the member once.
        let read = if fixed {
            self.v3.rejoined(&name);
            false
        } else {
            let from = ReadFrom {
                after: point.after,
                find: point.find.clone(),
            };
            self.v3.resumed(id, &name, from)
        };
        let online = self.everyone();
        self.send(
            id,
            &ServerMsg::Welcome {
                name: &name,
                online,
            },
            out,
        );
        // A fixed token (IRC's password) is kept: it is what the member just logged in with.
        if fixed {
            self.send_history(id, out);
        } else {
            self.issue_token(id, &name, &record.approved_by, now, out);
        }
        if stayed {
            out.console(Audience::All, format_args!("resumed {name}"));
        } else {
            self.publish(
                || Event::Join {
                    name: name.to_string(),
                },
                now,
                out,
            );
            self.broadcast(&ServerMsg::Join { name: &name }, Some(id), out);
            let when = humantime::format_rfc3339_seconds(wall_of(record.approved_at_ms));
            out.console(
                Audience::All,
                format_args!(
                    "remembered {name} joined ({online} online; approved by {} at {when})",
                    record.approved_by
                ),
            );
        }
        if point.gap {
            let gap = self.format_v3(&V3Msg::Gap {
                text: "the messages after your last one are not kept here; some were missed",
            });
            self.send_when_durable(id, gap, out);
        }
        // The replay: from the log, paced by the shell.
        if !read {
            self.finish_replay(id, out);
        }
    }

    /// A new token for member `name` (after `WELCOME`): remembered, the store told, and the
    /// `TOKEN` line sent.
    pub(super) fn issue_token(
        &mut self,
        id: ConnId,
        name: &str,
        approved_by: &str,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let Some(token) = self.v3.new_token(id, name, approved_by, now.wall) else {
            return;
        };
        let line = self.format_v3(&V3Msg::Token {
            secret: token.expose(),
        });
        self.send_when_durable(id, line, out);
    }

    /// A newly admitted member's first token (after `WELCOME`): remembered, the store told,
    /// and the `TOKEN` line sent once the record is on disk, then the history
    /// ([`Core::admitted`]). Returns whether the token waits for the disk (the history waits
    /// with it); without a store on disk, or for a session that gets no token, the caller
    /// sends the history now.
    pub(super) fn first_token(
        &mut self,
        id: ConnId,
        name: &str,
        approved_by: &str,
        now: Now,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(token) = self.v3.new_token(id, name, approved_by, now.wall) else {
            return false;
        };
        let line = self.format_v3(&V3Msg::Token {
            secret: token.expose(),
        });
        match self.v3.hold_first_token(id, line) {
            None => true,
            Some(line) => {
                out.send(id, &line);
                false
            }
        }
    }

    /// A new member's token has gone out (or could not be made durable): its history follows,
    /// then the room's live lines.
    pub(super) fn admitted(&mut self, id: ConnId, out: &mut impl Outbox) {
        self.v3.replay_over(id);
        if self.session(id).is_some() {
            self.send_history(id, out);
        }
    }

    /// Sends `line` to `id` once this round's writes are on disk (at once without a store).
    fn send_when_durable(&mut self, id: ConnId, line: Rc<Outgoing>, out: &mut impl Outbox) {
        if let Some(line) = self.v3.hold_direct(id, line) {
            out.send(id, &line);
        }
    }

    /// The replay reads the shell should issue now.
    pub fn take_replay_reads(&mut self) -> Vec<(ConnId, ReadFrom)> {
        self.v3.take_reads()
    }

    /// A page of the log for `id`'s replay; returns the sequence to read after next when more
    /// follow (the shell asks again once the member's queue has room), `None` when it is over.
    /// `missing`: the last id the member saw is not kept here (`--cluster`: it is older than
    /// this server's log, or was pruned), so the page starts at the oldest kept, after a `GAP`.
    pub fn replay_page(
        &mut self,
        id: ConnId,
        entries: &[Entry],
        more: bool,
        first_seq: Option<u64>,
        missing: bool,
        out: &mut impl Outbox,
    ) -> Option<Option<u64>> {
        let replay = self.v3.replay_of(id)?.clone();
        let mut gap_said = replay.gap_said;
        if missing {
            let gap = self.format_v3(&V3Msg::Gap {
                text: "the messages after your last one are not kept here; some were missed",
            });
            out.send(id, &gap);
            gap_said = true;
        }
        if replay.gap_before(first_seq) {
            let gap = self.format_v3(&V3Msg::Gap {
                text: "some messages after your last one are no longer kept",
            });
            out.send(id, &gap);
            gap_said = true;
        }
        let epoch = self.v3.epoch();
        let mut last = replay.after;
        let mut buf = std::mem::take(&mut self.fmt);
        for e in entries {
            last = Some(e.seq);
            if e.kind == Kind::Gap {
                // This server was out of the room's log here (--cluster): lines logged
                // elsewhere meanwhile are not in this replay. Said once per replay.
                if !gap_said {
                    let gap = self.format_v3(&V3Msg::Gap {
                        text: "this server missed some messages after your last one",
                    });
                    out.send(id, &gap);
                    gap_said = true;
                }
                continue;
            }
            if !replay.shows(e) {
                continue;
            }
            let id_text = match &e.origin_id {
                Some(origin) => origin.clone(),
                None => MsgId { epoch, seq: e.seq }.to_string(),
            };
            buf.clear();
            buf.extend_from_slice(e.line.as_bytes());
            buf.push(b'\n');
            let msg = Outgoing::line_with_id(&buf, wall_of(e.time_ms), &id_text);
            let hist = super::history::hist(&msg, &mut buf);
            out.send(id, &hist);
        }
        self.fmt = buf;
        self.v3.replay_read(id, last, gap_said);
        if more && !entries.is_empty() {
            return Some(last);
        }
        self.finish_replay(id, out);
        None
    }

    /// The replay is over: the members line, then live lines.
    fn finish_replay(&mut self, id: ConnId, out: &mut impl Outbox) {
        self.v3.replay_over(id);
        self.who(id, out);
    }

    /// A member's connection ended without `/leave`: a version 3 member within the window
    /// stays in the room (no `LEAVE`); `true` when it was kept so.
    pub(super) fn detach(
        &mut self,
        id: ConnId,
        name: &Rc<str>,
        ip: std::net::IpAddr,
        reason: LeaveReason,
        now: Now,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(until) = self
            .v3
            .detach(id, name, ip, reason, now, self.shutting_down)
        else {
            return false;
        };
        self.room.remove(name, id);
        out.arm(until, ConnId { key: 0, serial: 0 }, CoreTimer::Sweep);
        out.console(
            Audience::All,
            format_args!(
                "dropped {name}: kept in the room for {} s to resume",
                self.v3.resume_window().as_secs()
            ),
        );
        true
    }

    /// Ends the window of every detached member whose window is over: `LEAVE <name> quit`.
    pub(super) fn sweep_detached(&mut self, now: Now, out: &mut impl Outbox) {
        for d in self.v3.expired(now.at) {
            let name = d.name;
            self.admission.hold_name(&name, d.ip, now.at);
            self.kept_member_leaves(&name, now, out);
            out.console(Audience::All, format_args!("left {name} (quit)"));
        }
    }

    /// A member the room kept without a connection of its own here (within its resume window,
    /// or handed over by another server for a `RESUME` that did not admit it) is gone: `LEAVE
    /// <name> quit` to the cluster and the room.
    pub(super) fn kept_member_leaves(&mut self, name: &str, now: Now, out: &mut impl Outbox) {
        self.publish(
            || Event::Leave {
                name: name.to_owned(),
                reason: LeaveReason::Quit,
                owner: None,
            },
            now,
            out,
        );
        self.announce_in_room(
            &ServerMsg::Leave {
                name,
                reason: LeaveReason::Quit,
            },
            name,
            now,
            out,
        );
    }

    /// The detached member called `name` (any case), if any.
    pub(super) fn detached_name(&self, name: &str) -> Option<Rc<str>> {
        self.v3.detached_name(name)
    }

    /// Every detached member's name.
    pub(super) fn detached_names(&self) -> impl Iterator<Item = Rc<str>> + '_ {
        self.v3.detached_names()
    }

    /// Voids `name`'s token (kick, `forget`); whether it was remembered. A member within its
    /// window leaves the room.
    pub(super) fn void_token(&mut self, name: &str, out: &mut impl Outbox) -> bool {
        let (known, detached) = self.v3.void(name);
        if let Some(d) = detached {
            self.broadcast(
                &ServerMsg::Leave {
                    name: &d.name,
                    reason: LeaveReason::Kicked,
                },
                None,
                out,
            );
        }
        known
    }

    /// `/nick` carries the token.
    pub(super) fn rename_token(&mut self, old: &str, new: &str) {
        self.v3.rename(old, new);
    }

    /// `members`: the remembered names, who approved them, when, last seen.
    pub(super) fn list_members(&self, reply: Audience, out: &mut impl Outbox) {
        let all = self.v3.members();
        out.console(reply, format_args!("members: {}", all.len()));
        for r in all {
            let approved = humantime::format_rfc3339_seconds(wall_of(r.approved_at_ms));
            let seen = humantime::format_rfc3339_seconds(wall_of(r.last_seen_ms));
            out.console(
                reply,
                format_args!(
                    "  {} approved by {} at {approved}, last seen {seen}",
                    r.name, r.approved_by
                ),
            );
        }
    }

    /// Whether `id` is replaying (it gets no live room lines yet).
    pub(super) fn is_replaying(&self, id: ConnId) -> bool {
        self.v3.is_replaying(id)
    }
}
