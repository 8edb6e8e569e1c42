//! Durable before delivered, step by step: the store's contents at start, the round's writes
//! handed over, and what happens to the messages held for it when it answers.
//!
//! The shell takes [`Core::take_store_writes`] at the end of each round, hands them to the
//! store, and reports back through [`Core::store_sealed`], [`Core::store_durable`],
//! [`Core::store_failed`], [`Core::store_down`] and [`Core::store_up`]. Whether a message waits,
//! and which come back when, is [`V3`](super::v3)'s (and its [`Held`](super::held) queue's);
//! this file routes: fan-out, history, the cluster, `ECHO`, `ERROR unavailable`. Without a
//! store attached (library use, the core's unit tests) messages are delivered at once.

use std::rc::Rc;

use chat_common::protocol::v3::V3Msg;
use chat_common::protocol::{ErrorCode, ServerMsg};

use super::bus::Event;
use super::msgid::MsgId;
use super::outgoing::Outgoing;
use super::v3::{wall_of, HeldMsg, Restored};
use super::{Audience, ConnId, Core, Now, Outbox};

impl Core {
    /// Attaches a store's contents: ids go on from its sequence, members, bans and history come
    /// back, and from now on messages wait for the store before they are delivered.
    pub fn restore(&mut self, r: Restored) {
        self.v3.attach(r.epoch, r.next_seq, r.members, r.durable);
        for ban in r.bans {
            let _ = self.admission.bans_mut().add(ban);
        }
        for e in r.recent {
            let line = format!("{}\n", e.line);
            let id = e.origin_id.clone().unwrap_or_else(|| {
                MsgId {
                    epoch: r.epoch,
                    seq: e.seq,
                }
                .to_string()
            });
            let speaker: Rc<str> = Rc::from(e.from.as_str());
            let msg = Outgoing::line_with_id(line.as_bytes(), wall_of(e.time_ms), &id);
            self.history.record(&msg, &speaker);
        }
    }

    /// The writes of this round for the store (log entries last, in relay order).
    pub fn take_store_writes(&mut self) -> Vec<super::durable::Write> {
        self.v3.take_writes()
    }

    /// The round's writes were handed to the store as `batch`.
    pub fn store_sealed(&mut self, batch: u64) {
        self.v3.seal(batch);
    }

    /// The store could not take the round's writes: its messages are refused.
    pub fn store_refused_round(&mut self, now: Now, out: &mut impl Outbox) {
        for m in self.v3.unhold_round() {
            self.refuse_held(m, now, out);
        }
    }

    /// Every message of `batch` (and earlier) is on disk: deliver them, in relay order.
    pub fn store_durable(&mut self, batch: u64, now: Now, out: &mut impl Outbox) {
        for m in self.v3.release(batch) {
            self.deliver_held(m, now, out);
        }
    }

    /// `batch` is not on disk: its senders get `ERROR unavailable`, nobody sees the messages.
    pub fn store_failed(&mut self, batch: u64, now: Now, out: &mut impl Outbox) {
        for m in self.v3.fail(batch) {
            self.refuse_held(m, now, out);
        }
    }

    /// The disk failed: said on every console; messages are refused until [`Core::store_up`].
    pub fn store_down(&mut self, why: &str, out: &mut impl Outbox) {
        self.v3.set_down(true);
        out.console(
            Audience::All,
            format_args!(
                "store: cannot write ({why}); room messages are refused until it works again"
            ),
        );
    }

    /// The disk works again.
    pub fn store_up(&mut self, out: &mut impl Outbox) {
        self.v3.set_down(false);
        out.console(Audience::All, format_args!("store: writing again"));
    }

    /// How many relayed messages wait for the store.
    pub fn store_backlog(&self) -> usize {
        self.v3.backlog()
    }

    /// Whether room messages wait for the store, so other room lines must wait behind them.
    pub(super) fn holds_room_lines(&self) -> bool {
        self.v3.holds_room_lines()
    }

    /// Holds a room line behind the messages waiting for the store; it is delivered with the
    /// last of them (whether they are delivered or refused).
    pub(super) fn hold_line(
        &mut self,
        line: Rc<Outgoing>,
        except: Option<ConnId>,
        history_of: Option<Rc<str>>,
    ) {
        self.v3.hold_behind(HeldMsg::Line {
            line,
            except,
            history_of,
        });
    }

    fn refuse_held(&mut self, m: HeldMsg, now: Now, out: &mut impl Outbox) {
        match m.refused_sender() {
            Some(from) => self.send_error(
                from,
                ErrorCode::Unavailable,
                "the server cannot store messages right now; yours was not sent",
                out,
            ),
            None => match m {
                HeldMsg::Line { .. } => self.deliver_held(m, now, out),
                HeldMsg::Reserved { upto } => self.v3.reservation(upto, false),
                // Its record is not on disk: the member goes on without a token.
                HeldMsg::Admitted { to, .. } => self.admitted(to, out),
                HeldMsg::Room { .. }
                | HeldMsg::Priv { .. }
                | HeldMsg::Direct { .. }
                | HeldMsg::Logged { .. } => {}
            },
        }
    }

    /// Whether the room refuses messages now (the store is down); the sender is told.
    pub(super) fn unavailable(&self, id: ConnId, out: &mut impl Outbox) -> bool {
        if !self.v3.refuses_messages() {
            return false;
        }
        let line = Outgoing::new(
            &ServerMsg::Error {
                code: ErrorCode::Unavailable,
                text: "the server cannot store messages right now; nothing was sent",
            },
            None,
            &mut Vec::new(),
        );
        out.send(id, &line);
        true
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
        let line = self.v3.stamp(msg, "", now.wall, &mut self.fmt);
        let held = HeldMsg::Room {
            from,
            speaker: Rc::clone(speaker),
            line,
        };
        if let Some(m) = self.v3.hold_own(held) {
            self.deliver_held(m, now, out);
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
        let line = self.v3.stamp(msg, to_name, now.wall, &mut self.fmt);
        if let Some(m) = self.v3.hold_own(HeldMsg::Priv { from, to, line }) {
            self.deliver_held(m, now, out);
        }
    }

    /// Delivers a message that may be delivered: fan-out (or the one recipient), history, the
    /// cluster, and `ECHO` to a version 3 sender.
    fn deliver_held(&mut self, m: HeldMsg, now: Now, out: &mut impl Outbox) {
        let (from, line) = match m {
            HeldMsg::Direct { to, line } => {
                out.send(to, &line);
                return;
            }
            HeldMsg::Admitted { to, token } => {
                if self.session(to).is_some() {
                    out.send(to, &token);
                }
                return self.admitted(to, out);
            }
            HeldMsg::Reserved { upto } => return self.v3.reservation(upto, true),
            HeldMsg::Room { from, line, .. } if self.v3.clustered => {
                return self.send_through_log(from, &line, now, out);
            }
            HeldMsg::Priv { from, line, .. } if self.v3.clustered => {
                return self.send_through_log(from, &line, now, out);
            }
            HeldMsg::Logged { line, from, to } => {
                match to {
                    None => {
                        self.fan_out_now(&line, from, out);
                        if let Some(speaker) = super::remote::speaker_of(&line) {
                            self.history.record(&line, &speaker);
                        }
                    }
                    Some(to) => {
                        let target = self.room.holder(&to).filter(|&t| {
                            self.session(t)
                                .is_some_and(|s| matches!(s.phase, super::Phase::Member { .. }))
                        });
                        if let Some(t) = target.filter(|&t| !self.v3.is_replaying(t)) {
                            out.send(t, &line);
                        }
                    }
                }
                match from {
                    Some(from) => (from, line),
                    None => return,
                }
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
                // Without a connection here the recipient is within its resume window: the
                // private waits in the log for its replay. (Under --cluster every private goes
                // through the room's log: `send_through_log`.)
                if let Some(to) = to.filter(|&to| !self.v3.is_replaying(to)) {
                    out.send(to, &line);
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
        if self.v3.is_session(from) {
            if let Some(id) = &line.id {
                let echo = self.format_v3(&V3Msg::Echo { id });
                out.send(from, &echo);
            }
        }
    }

    /// Under `--cluster`: a `MSG`, `ACT` or `PRIV` the room's log brought back (another
    /// server's, or this server's own sent by `from`), with the id its origin gave it. It is
    /// logged here at the log's place and delivered once durable here, exactly as every other
    /// server does: one order for the whole room, and a resume on any server finds the member's
    /// last id in its log. `to`: a private's recipient, delivered only if it is a member here.
    pub(super) fn arrived(
        &mut self,
        line: &[u8],
        id: String,
        wall: std::time::SystemTime,
        from: Option<ConnId>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let id_tag = (!id.is_empty()).then(|| id.clone().into_boxed_str());
        let line = Outgoing::from_line_with_id(line, Some(wall), id_tag);
        // Read once, for the recipient and the log (`msg` parses only from UTF-8).
        let Some(msg) = line.msg() else { return };
        let to = match msg {
            ServerMsg::Priv { to, .. } => Some(Rc::from(to)),
            ServerMsg::Msg { .. } | ServerMsg::Act { .. } => None,
            // Not a line a member may get (Redis is trusted, but a malformed entry is skipped).
            _ => return,
        };
        // UTF-8 as `msg` parsed from it: borrowed, never repaired.
        let text = String::from_utf8_lossy(line.line());
        self.v3
            .log_arrival(&id, super::v3::wall_ms(wall), &msg, &text);
        let held = HeldMsg::Logged { line, from, to };
        if let Some(m) = self.v3.hold_or_pass(held) {
            self.deliver_held(m, now, out);
        }
    }

    /// A ban was made (or replaced one of its range): the store keeps it whole.
    pub(super) fn store_ban(&mut self, ban: &super::bans::Ban) {
        self.v3.ban_made(ban);
    }

    /// A ban was lifted or ran out: the store drops it.
    pub(super) fn store_unban(&mut self, net: super::bans::IpNet) {
        self.v3.ban_lifted(net);
    }
}
