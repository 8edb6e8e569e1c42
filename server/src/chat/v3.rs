//! Protocol version 3 in the core: ids on messages, durable before delivered, tokens, and
//! sessions that outlive a connection (`RESUME`, the resume window, remembered members).
//!
//! Owns the version 3 state ([`V3`]): the id generator, the messages held for the store
//! ([`Held`]), the writes the store has not been handed yet, the remembered members, the
//! members within their resume window (detached: no connection, still in the room), and the
//! replays under way. The core decides here; the store only keeps and reads: the shell takes
//! [`Core::take_store_writes`] at the end of each round, hands them to the store, and reports
//! back through [`Core::store_sealed`], [`Core::store_durable`], [`Core::store_failed`],
//! [`Core::store_down`], [`Core::store_up`] and [`Core::replay_page`]. Without a store attached
//! (library use, the core's unit tests) messages are delivered at once, as in version 2.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use chat_common::protocol::v3::{parse_opening, Opening, OpeningError, V3Msg, VERSION};
use chat_common::protocol::{ErrorCode, LeaveReason, ServerMsg};

use super::bus::Event;
use super::durable::{Entry, Kind, MemberRecord, Write};
use super::held::Held;
use super::msgid::{IdGen, MsgId};
use super::outgoing::{Dialect, Outgoing};
use super::remembered::Remembered;
use super::{Audience, ConnId, Core, CoreTimer, Now, Outbox, Phase};
use crate::token::Token;

/// Log entries read per replay page.
pub const REPLAY_PAGE: usize = 256;

/// A relayed message waiting for the store.
#[derive(Debug)]
pub(super) enum HeldMsg {
    /// `MSG`/`ACT` from `from` to the room.
    Room {
        from: ConnId,
        speaker: Rc<str>,
        line: Rc<Outgoing>,
    },
    /// A line for one connection that must not go out before the round's writes are on disk
    /// (a resumed member's new `TOKEN`, then its `GAP`).
    Direct { to: ConnId, line: Rc<Outgoing> },
    /// `PRIV` from `from` to `to` (a live connection, or none: detached, kept for its resume).
    Priv {
        from: ConnId,
        to: Option<ConnId>,
        line: Rc<Outgoing>,
    },
    /// A room line that needs no storing (`JOIN`, `LEAVE`, `NICK`, `INFO`) waiting for its turn
    /// behind held messages; `history_of`: the name whose `LEAVE`/`NICK` this is, for the
    /// history (checked when it is delivered, after the messages before it).
    Line {
        line: Rc<Outgoing>,
        except: Option<ConnId>,
        history_of: Option<Rc<str>>,
    },
}

/// A member within its resume window: no connection, still in the room.
#[derive(Debug, Clone)]
pub(super) struct Detached {
    pub name: Rc<str>,
    pub until: Instant,
    /// Its last address: the name is held for it when the window ends (`--name-hold`).
    pub ip: std::net::IpAddr,
}

/// A replay under way for a resumed member.
#[derive(Debug, Clone)]
pub(super) struct Replay {
    pub name: Rc<str>,
    /// The last sequence number sent (or asked after).
    pub after: Option<u64>,
    /// Whether a `GAP` check is still due (first page, a last id was given).
    pub check_gap: bool,
}

/// The version 3 state of the core.
#[derive(Debug)]
pub(super) struct V3 {
    ids: IdGen,
    /// A store is attached: messages wait for it before they are delivered.
    durable: bool,
    /// A store is attached (on disk or in memory): writes and the log go to it, and resume
    /// replays are read from it.
    attached: bool,
    /// The store failed: messages are refused until it works again.
    down: bool,
    held: Held<HeldMsg>,
    /// Log entries for the store, this round.
    entries: Vec<Entry>,
    /// Other writes for the store, this round.
    writes: Vec<Write>,
    pub remembered: Remembered,
    /// Members within their resume window, by lower-case name.
    pub detached: HashMap<String, Detached>,
    /// Connections whose replay is under way (they get no live room lines until it ends).
    pub replaying: HashSet<ConnId>,
    pub replays: HashMap<ConnId, Replay>,
    /// Replays that need a page read (the shell takes them).
    pub reads: Vec<(ConnId, Option<u64>)>,
    /// Version 3 connections.
    pub sessions: HashSet<ConnId>,
    resume_window: Duration,
    /// Record changes (members, bans) for the cluster, this round (`--cluster`, once in the
    /// room: see `shared.rs`).
    pub shared: Vec<Write>,
    /// The cluster shares the records: changes are queued in `shared`.
    pub sharing: bool,
}

impl V3 {
    /// Fresh state; `remember` is `--remember`, `resume_window` `--resume-window`.
    pub fn new(resume_window: Duration, remember: Duration) -> V3 {
        V3 {
            ids: IdGen::ephemeral(),
            durable: false,
            attached: false,
            down: false,
            held: Held::default(),
            entries: Vec::new(),
            writes: Vec::new(),
            remembered: Remembered::new(Vec::new(), remember),
            detached: HashMap::new(),
            replaying: HashSet::new(),
            replays: HashMap::new(),
            reads: Vec::new(),
            sessions: HashSet::new(),
            resume_window,
            shared: Vec::new(),
            sharing: false,
        }
    }

    /// Queues a record write for the store (dropped without one), and for the cluster when it
    /// shares the records.
    pub fn write(&mut self, w: Write) {
        if self.sharing && !matches!(w, Write::Append(_) | Write::Prune { .. }) {
            self.shared.push(w.clone());
        }
        self.write_local(w);
    }

    /// Queues a record write for the store only (a change another server made).
    pub fn write_local(&mut self, w: Write) {
        if self.attached {
            self.writes.push(w);
        }
    }
}

/// What the store loaded at start, for [`Core::restore`].
#[derive(Debug, Default)]
pub struct Restored {
    /// The log's epoch.
    pub epoch: u32,
    /// The next sequence number.
    pub next_seq: u64,
    /// Remembered members.
    pub members: Vec<MemberRecord>,
    /// Banned addresses.
    pub bans: Vec<super::bans::IpNet>,
    /// The last room messages, oldest first (for `--history`).
    pub recent: Vec<Entry>,
    /// Whether messages wait until they are on disk before they are delivered (a store on
    /// disk); in memory they are delivered at once and logged beside.
    pub durable: bool,
}

fn wall_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn wall_of(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Core {
    /// Attaches a store's contents: ids go on from its sequence, members, bans and history come
    /// back, and from now on messages wait for the store before they are delivered.
    pub fn restore(&mut self, r: Restored) {
        self.v3.ids = IdGen::new(r.epoch, r.next_seq);
        self.v3.attached = true;
        self.v3.durable = r.durable;
        self.v3.remembered = Remembered::new(r.members, self.config.remember);
        for net in r.bans {
            // The store keeps the range and when it was made; no reason or end yet.
            let _ = self.admission.bans_mut().add(super::bans::Ban {
                net,
                reason: None,
                by: "an earlier run".to_owned(),
                since: SystemTime::UNIX_EPOCH,
                until: None,
            });
        }
        for e in r.recent {
            let line = format!("{}\n", e.line);
            let id = MsgId {
                epoch: r.epoch,
                seq: e.seq,
            }
            .to_string();
            let speaker: Rc<str> = Rc::from(e.from.as_str());
            let msg = Outgoing::line_with_id(line.as_bytes(), wall_of(e.time_ms), &id);
            self.history.record(&msg, &speaker);
        }
    }

    /// The writes of this round for the store (log entries last, in relay order), and whether
    /// any message is held waiting for them.
    pub fn take_store_writes(&mut self) -> Vec<Write> {
        let mut writes = std::mem::take(&mut self.v3.writes);
        if !self.v3.entries.is_empty() {
            writes.push(Write::Append(std::mem::take(&mut self.v3.entries)));
        }
        writes
    }

    /// The round's writes were handed to the store as `batch`.
    pub fn store_sealed(&mut self, batch: u64) {
        self.v3.held.seal(batch);
    }

    /// The store could not take the round's writes: its messages are refused.
    pub fn store_refused_round(&mut self, now: Now, out: &mut impl Outbox) {
        for m in self.v3.held.unhold_round() {
            self.refuse_held(m, now, out);
        }
    }

    /// Every message of `batch` (and earlier) is on disk: deliver them, in relay order.
    pub fn store_durable(&mut self, batch: u64, now: Now, out: &mut impl Outbox) {
        for m in self.v3.held.release(batch) {
            self.deliver_held(m, now, out);
        }
    }

    /// `batch` is not on disk: its senders get `ERROR unavailable`, nobody sees the messages.
    pub fn store_failed(&mut self, batch: u64, now: Now, out: &mut impl Outbox) {
        for m in self.v3.held.fail(batch) {
            self.refuse_held(m, now, out);
        }
    }

    /// The disk failed: said on every console; messages are refused until [`Core::store_up`].
    pub fn store_down(&mut self, why: &str, out: &mut impl Outbox) {
        self.v3.down = true;
        out.console(
            Audience::All,
            format_args!(
                "store: cannot write ({why}); room messages are refused until it works again"
            ),
        );
    }

    /// The disk works again.
    pub fn store_up(&mut self, out: &mut impl Outbox) {
        self.v3.down = false;
        out.console(Audience::All, format_args!("store: writing again"));
    }

    /// Whether room messages wait for the store, so other room lines must wait behind them.
    pub(super) fn holds_room_lines(&self) -> bool {
        self.v3.durable && !self.v3.held.is_empty()
    }

    /// Holds a room line behind the messages waiting for the store; it is delivered with the
    /// last of them (whether they are delivered or refused).
    pub(super) fn hold_line(
        &mut self,
        line: Rc<Outgoing>,
        except: Option<ConnId>,
        history_of: Option<Rc<str>>,
    ) {
        self.v3.held.hold_behind(HeldMsg::Line {
            line,
            except,
            history_of,
        });
    }

    fn refuse_held(&mut self, m: HeldMsg, now: Now, out: &mut impl Outbox) {
        let from = match m {
            HeldMsg::Room { from, .. } | HeldMsg::Priv { from, .. } => from,
            line @ HeldMsg::Line { .. } => return self.deliver_held(line, now, out),
            // A direct line (a token) whose record is not on disk: the session goes on without
            // it; its client falls back to an ordinary join next time.
            HeldMsg::Direct { .. } => return,
        };
        self.send_error(
            from,
            ErrorCode::Unavailable,
            "the server cannot store messages right now; yours was not sent",
            out,
        );
    }

    /// Whether the room refuses messages now (the store is down).
    pub(super) fn unavailable(&self, id: ConnId, out: &mut impl Outbox) -> bool {
        if !self.v3.down {
            return false;
        }
        let line = self.format_error(
            ErrorCode::Unavailable,
            "the server cannot store messages right now; nothing was sent",
        );
        out.send(id, &line);
        true
    }

    fn format_error(&self, code: ErrorCode, text: &str) -> Rc<Outgoing> {
        Outgoing::new(&ServerMsg::Error { code, text }, None, &mut Vec::new())
    }

    /// A room message (`MSG`/`ACT`) from `from`: given an id, logged, and delivered now or
    /// once durable.
    pub(super) fn relay_v3(
        &mut self,
        from: ConnId,
        speaker: &Rc<str>,
        msg: &ServerMsg<'_>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        if self.unavailable(from, out) {
            return;
        }
        let line = self.stamp(msg, "", now);
        let held = HeldMsg::Room {
            from,
            speaker: Rc::clone(speaker),
            line,
        };
        if self.v3.durable {
            self.v3.held.hold(held);
        } else {
            self.deliver_held(held, now, out);
        }
    }

    /// A private message from `from` to `to` (a connection, or a detached member's name).
    pub(super) fn private_v3(
        &mut self,
        from: ConnId,
        to: Option<ConnId>,
        to_name: &str,
        msg: &ServerMsg<'_>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        if self.unavailable(from, out) {
            return;
        }
        let line = self.stamp(msg, to_name, now);
        if self.v3.durable {
            self.v3.held.hold(HeldMsg::Priv { from, to, line });
        } else {
            self.deliver_held(HeldMsg::Priv { from, to, line }, now, out);
        }
    }

    /// Gives `msg` its id and builds it once; logs it when a store is attached (no copy of the
    /// line otherwise).
    fn stamp(&mut self, msg: &ServerMsg<'_>, to: &str, now: Now) -> Rc<Outgoing> {
        let id = self.v3.ids.next_id();
        let id_text = id.to_string();
        let line = Outgoing::stamped(msg, now.wall, &id_text, &mut self.fmt);
        let (kind, from) = match msg {
            ServerMsg::Msg { from, .. } => (Kind::Msg, *from),
            ServerMsg::Act { from, .. } => (Kind::Act, *from),
            ServerMsg::Priv { from, .. } => (Kind::Priv, *from),
            _ => (Kind::Msg, ""),
        };
        if !self.v3.attached {
            return line;
        }
        let text = String::from_utf8_lossy(line.line());
        let entry = Entry {
            seq: id.seq,
            time_ms: wall_ms(now.wall),
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            line: text.trim_end_matches('\n').to_owned(),
        };
        self.v3.entries.push(entry);
        line
    }

    /// Delivers a message that may be delivered: fan-out (or the one recipient), history, the
    /// cluster, and `ECHO` to a version 3 sender.
    fn deliver_held(&mut self, m: HeldMsg, now: Now, out: &mut impl Outbox) {
        let (from, line) = match m {
            HeldMsg::Direct { to, line } => {
                out.send(to, &line);
                return;
            }
            HeldMsg::Room {
                from,
                speaker,
                line,
            } => {
                self.fan_out_now(&line, Some(from), out);
                self.history.record(&line, &speaker);
                self.publish(
                    || Event::Msg {
                        line: line.line().to_vec(),
                        id: line.id.as_deref().unwrap_or_default().to_owned(),
                    },
                    now,
                    out,
                );
                (from, line)
            }
            HeldMsg::Priv { from, to, line } => {
                if let Some(to) = to {
                    if !self.v3.replaying.contains(&to) {
                        out.send(to, &line);
                    }
                }
                (from, line)
            }
            HeldMsg::Line {
                line,
                except,
                history_of,
            } => {
                self.fan_out_now(&line, except, out);
                if let Some(who) = history_of {
                    self.record_event_of(&line, &who);
                }
                return;
            }
        };
        if self.v3.sessions.contains(&from) {
            if let Some(id) = &line.id {
                let echo = self.format_v3(&V3Msg::Echo { id });
                out.send(from, &echo);
            }
        }
    }

    fn format_v3(&mut self, msg: &V3Msg<'_>) -> Rc<Outgoing> {
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
            Ok(Opening::Hello { version }) => {
                // Any version from 3 up speaks 3; 1 and 2 stay as they are.
                let version = version.min(VERSION);
                if version >= VERSION {
                    self.v3.sessions.insert(id);
                    out.dialect(id, Dialect::V3);
                }
                let hello = self.format_v3(&V3Msg::Hello {
                    version: version.max(2),
                });
                out.send(id, &hello);
                true
            }
            Ok(Opening::Resume { name, token, last }) => {
                self.resume(id, name, token, last, false, now, out);
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

    fn bad_token(&mut self, id: ConnId, text: &str, out: &mut impl Outbox) {
        self.send_error(id, ErrorCode::BadToken, text, out);
        self.prompt(id, out);
    }

    /// `RESUME name token last`; `claimed`: under `--cluster`, the name is already this
    /// server's in Redis (see `shared.rs`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resume(
        &mut self,
        id: ConnId,
        name: &str,
        token: &str,
        last: Option<&str>,
        claimed: bool,
        now: Now,
        out: &mut impl Outbox,
    ) {
        if !self.v3.sessions.contains(&id) {
            return self.bad_token(id, "RESUME needs HELLO 3 first", out);
        }
        let now_ms = wall_ms(now.wall);
        let key = fold(name);
        let within = self.v3.detached.contains_key(&key);
        // Within the window the token admits even with --remember 0.
        let record = match self.v3.remembered.check(name, token, now_ms, within) {
            Ok(r) => r.clone(),
            Err(why) => {
                log::debug!("#{} RESUME {name}: {why:?}", id.serial);
                return self.bad_token(id, "that token admits nobody; choose a name", out);
            }
        };
        if !claimed && self.claim_for_resume(id, &record.name, token, last, out) {
            return;
        }
        let name: Rc<str> = Rc::from(record.name.as_str());
        // A live session of the name is taken over.
        let mut took_over = false;
        if let Some(holder) = self.room.holder(&name) {
            match self.session(holder).map(|s| &s.phase) {
                Some(Phase::Member { .. }) => {
                    self.send(
                        holder,
                        &ServerMsg::Bye {
                            text: "resumed elsewhere",
                        },
                        out,
                    );
                    self.sessions.take(holder);
                    self.room.remove(&name, holder);
                    self.v3.sessions.remove(&holder);
                    self.v3.replaying.remove(&holder);
                    self.v3.replays.remove(&holder);
                    out.close(holder);
                    took_over = true;
                }
                _ => {
                    let text = format!("the name {name} is taken");
                    self.send_error(id, ErrorCode::NameTaken, &text, out);
                    self.prompt(id, out);
                    return;
                }
            }
        }
        let was_detached = self.v3.detached.remove(&key).is_some();
        let stayed = took_over || was_detached;
        let Some(session) = self.session_mut(id) else {
            return;
        };
        session.phase = Phase::Member {
            name: Rc::clone(&name),
        };
        session.renames = crate::bucket::Bucket::full(f64::from(crate::config::NICK_BURST), now.at);
        self.room.admit(&name, id);
        let online = self.everyone();
        self.send(
            id,
            &ServerMsg::Welcome {
                name: &name,
                online,
            },
            out,
        );
        // Live room lines wait until the replay has ended (they are in it).
        self.v3.replaying.insert(id);
        self.issue_token(id, &name, &record.approved_by, now, out);
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
        // The replay: from the log, paced by the shell.
        let after = match last {
            None => None,
            Some(text) => match MsgId::parse(text) {
                Some(m) if m.epoch == self.v3.ids.epoch() => Some(m.seq),
                _ => {
                    let gap = self.format_v3(&V3Msg::Gap {
                        text:
                            "the messages after your last one are not kept here; some were missed",
                    });
                    self.send_when_durable(id, gap, out);
                    None
                }
            },
        };
        self.v3.replaying.insert(id);
        self.v3.replays.insert(
            id,
            Replay {
                name: Rc::clone(&name),
                after,
                check_gap: after.is_some(),
            },
        );
        if self.v3.attached {
            self.v3.reads.push((id, after));
        } else {
            self.finish_replay(id, out);
        }
    }

    /// A new token for member `name` (after `WELCOME`): remembered, and the store told.
    pub(super) fn issue_token(
        &mut self,
        id: ConnId,
        name: &str,
        approved_by: &str,
        now: Now,
        out: &mut impl Outbox,
    ) {
        if !self.v3.sessions.contains(&id) {
            return;
        }
        let Ok(token) = Token::generate() else {
            log::error!("no random bytes from the OS: no token for {name}");
            return;
        };
        let record =
            self.v3
                .remembered
                .remember(name, token.hash(), approved_by, wall_ms(now.wall));
        self.v3.write(Write::Member(record));
        let line = self.format_v3(&V3Msg::Token {
            secret: token.expose(),
        });
        self.send_when_durable(id, line, out);
    }

    /// Sends `line` to `id` once this round's writes are on disk (at once without a store). A
    /// version 3 admission sends its `TOKEN` at once instead (it must precede the history,
    /// which goes out at once): a crash in the instant before its record lands voids it.
    fn send_when_durable(&mut self, id: ConnId, line: Rc<Outgoing>, out: &mut impl Outbox) {
        if self.v3.durable && self.v3.replaying.contains(&id) {
            self.v3.held.hold(HeldMsg::Direct { to: id, line });
        } else {
            out.send(id, &line);
        }
    }

    /// How many relayed messages wait for the store.
    pub fn store_backlog(&self) -> usize {
        self.v3.held.len()
    }

    /// The replay reads the shell should issue now.
    pub fn take_replay_reads(&mut self) -> Vec<(ConnId, Option<u64>)> {
        std::mem::take(&mut self.v3.reads)
    }

    /// A page of the log for `id`'s replay; returns the sequence to read after next when more
    /// follow (the shell asks again once the member's queue has room), `None` when it is over.
    pub fn replay_page(
        &mut self,
        id: ConnId,
        entries: &[Entry],
        more: bool,
        first_seq: Option<u64>,
        out: &mut impl Outbox,
    ) -> Option<Option<u64>> {
        let replay = self.v3.replays.get_mut(&id)?.clone();
        if replay.check_gap {
            if let (Some(after), Some(first)) = (replay.after, first_seq) {
                if first > after + 1 {
                    let gap = self.format_v3(&V3Msg::Gap {
                        text: "some messages after your last one are no longer kept",
                    });
                    out.send(id, &gap);
                }
            }
        }
        let epoch = self.v3.ids.epoch();
        let mut last = replay.after;
        let mut buf = std::mem::take(&mut self.fmt);
        for e in entries {
            last = Some(e.seq);
            if e.kind == Kind::Priv
                && !e.from.eq_ignore_ascii_case(&replay.name)
                && !e.to.eq_ignore_ascii_case(&replay.name)
            {
                continue;
            }
            let id_text = MsgId { epoch, seq: e.seq }.to_string();
            buf.clear();
            buf.extend_from_slice(e.line.as_bytes());
            buf.push(b'\n');
            let msg = Outgoing::line_with_id(&buf, wall_of(e.time_ms), &id_text);
            let hist = super::history::hist(&msg, &mut buf);
            out.send(id, &hist);
        }
        self.fmt = buf;
        if let Some(r) = self.v3.replays.get_mut(&id) {
            r.after = last;
            r.check_gap = false;
        }
        if more && !entries.is_empty() {
            return Some(last);
        }
        self.finish_replay(id, out);
        None
    }

    /// The replay is over: the members line, then live lines.
    fn finish_replay(&mut self, id: ConnId, out: &mut impl Outbox) {
        self.v3.replays.remove(&id);
        self.v3.replaying.remove(&id);
        self.who(id, out);
    }

    /// A version 3 member's connection ended without `/leave`: within the window it stays in
    /// the room (no `LEAVE`); `true` when it was detached so.
    pub(super) fn detach(
        &mut self,
        id: ConnId,
        name: &Rc<str>,
        ip: std::net::IpAddr,
        reason: LeaveReason,
        now: Now,
        out: &mut impl Outbox,
    ) -> bool {
        let is_v3 = self.v3.sessions.remove(&id);
        self.v3.replaying.remove(&id);
        self.v3.replays.remove(&id);
        if !is_v3 || self.shutting_down {
            return false;
        }
        let now_ms = wall_ms(now.wall);
        self.v3.remembered.seen(name, now_ms);
        self.v3.write(Write::Seen {
            name: name.to_string(),
            at_ms: now_ms,
        });
        if !matches!(reason, LeaveReason::Quit | LeaveReason::Dropped)
            || self.v3.resume_window.is_zero()
        {
            return false;
        }
        self.room.remove(name, id);
        let until = now.at + self.v3.resume_window;
        self.v3.detached.insert(
            fold(name),
            Detached {
                name: Rc::clone(name),
                until,
                ip,
            },
        );
        out.arm(until, ConnId { key: 0, serial: 0 }, CoreTimer::Sweep);
        out.console(
            Audience::All,
            format_args!(
                "dropped {name}: kept in the room for {} s to resume",
                self.v3.resume_window.as_secs()
            ),
        );
        true
    }

    /// Ends the window of every detached member whose window is over: `LEAVE <name> quit`.
    pub(super) fn sweep_detached(&mut self, now: Now, out: &mut impl Outbox) {
        let over: Vec<String> = self
            .v3
            .detached
            .iter()
            .filter(|(_, d)| d.until <= now.at)
            .map(|(k, _)| k.clone())
            .collect();
        for key in over {
            let Some(d) = self.v3.detached.remove(&key) else {
                continue;
            };
            let name = d.name;
            self.admission.hold_name(&name, d.ip, now.at);
            self.publish(
                || Event::Leave {
                    name: name.to_string(),
                    reason: LeaveReason::Quit,
                    owner: None,
                },
                now,
                out,
            );
            self.announce_in_room(
                &ServerMsg::Leave {
                    name: &name,
                    reason: LeaveReason::Quit,
                },
                &name,
                now,
                out,
            );
            out.console(Audience::All, format_args!("left {name} (quit)"));
        }
    }

    /// The detached member called `name` (any case), if any.
    pub(super) fn detached_name(&self, name: &str) -> Option<Rc<str>> {
        self.v3
            .detached
            .get(&fold(name))
            .map(|d| Rc::clone(&d.name))
    }

    /// Every detached member's name.
    pub(super) fn detached_names(&self) -> impl Iterator<Item = Rc<str>> + '_ {
        self.v3.detached.values().map(|d| Rc::clone(&d.name))
    }

    /// Voids `name`'s token (kick, `forget`); whether it was remembered.
    pub(super) fn void_token(&mut self, name: &str, out: &mut impl Outbox) -> bool {
        let known = self.v3.remembered.forget(name).is_some();
        self.v3.write(Write::Forget(name.to_owned()));
        if let Some(d) = self.v3.detached.remove(&fold(name)) {
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
        if let Some(record) = self.v3.remembered.rename(old, new) {
            self.v3.write(Write::Forget(old.to_owned()));
            self.v3.write(Write::Member(record));
        }
    }

    /// `members`: the remembered names, who approved them, when, last seen.
    pub(super) fn list_members(&self, reply: Audience, out: &mut impl Outbox) {
        let all = self.v3.remembered.list();
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

    /// The ban list changed: the store is told.
    pub(super) fn store_ban(&mut self, net: super::bans::IpNet, banned: bool, now: Now) {
        let w = if banned {
            Write::Ban(net.to_string(), wall_ms(now.wall))
        } else {
            Write::Unban(net.to_string())
        };
        self.v3.write(w);
    }

    /// Whether `id` is replaying (it gets no live room lines yet).
    pub(super) fn is_replaying(&self, id: ConnId) -> bool {
        !self.v3.replaying.is_empty() && self.v3.replaying.contains(&id)
    }
}
