//! The chat core: every rule of the room, with no socket, no clock and no `mio` in sight.
//!
//! The core owns the sessions (who is naming themselves, waiting for the operator, or in the
//! room), the names, the waiting room, the history, the bans and cool-downs, and what every
//! request and console command does. It takes *events* (a connection opened, a line arrived, a
//! timer fired, a connection is gone, a console typed a command) with the time passed in, and
//! answers with *effects* through one [`Outbox`]: these bytes to that connection, close that
//! one, tell the consoles this, wake me then. The reactor (`crate::reactor`) is the I/O shell
//! that turns effects into socket writes; tests drive the core with a recording outbox.
//!
//! A message is built once and shared: a fan-out hands the same `Rc<Outgoing>` to every
//! recipient, each connection's dialect encodes it once for all its speakers
//! ([`outgoing`]), and the history keeps that same message.
//!
//! # Layout
//! - [`room`]: names, members and waiting joins (the index the rules consult).
//! - [`history`]: the room's last messages.
//! - [`replay`]: paced replays (the history on join), written as the member reads.
//! - `sessions`: every connection's session and where it is in its life.
//! - [`bans`]: the ban list (addresses and CIDR ranges, reasons, durations), a type a store can keep.
//! - [`admission`]: who may connect and wait: bans, cool-downs, the waiting room's bounds,
//!   `--max-clients` and `--max-per-ip` (state and rules, no sending).
//! - `joins`: the way in, step by step: connecting, naming, waiting, approval, denial.
//! - `requests`: what an admitted member's line does.
//! - `operator`: what a console command does, and the coalescing of announcements.
//! - `remote`: the rest of the room under `--cluster`: other servers' members and joins, name
//!   claims, and what the room's log does here.
//! - `v3`: protocol version 3's state and rules (`V3`): ids, messages held for the store,
//!   tokens, who a resume admits ([`ResumeDecision`]), the resume window, remembered members.
//! - `resume`: the way back in, step by step: `HELLO`, `RESUME`, a token login from another
//!   dialect ([`Core::admit_remembered`]), replays, the window's end, kicks and `forget`.
//! - `durability`: durable before delivered: the store's hand-over and the delivery (or
//!   refusal) of the messages held for it.
//! - `shared`: under `--cluster`, remembered members and bans are the cluster's: changes
//!   published, other servers' kept when newer, Redis refilled on join; a `RESUME` claims its
//!   name (and waits for another server to free it).

pub mod admission;
pub mod bans;
pub mod bus;
mod durability;
pub mod durable;
pub mod held;
pub mod history;
mod joins;
pub mod msgid;
mod operator;
pub use operator::CommandOutcome;
pub mod outgoing;
pub mod remembered;
mod remote;
pub mod replay;
mod requests;
mod resume;
pub mod room;
mod sessions;
mod shared;
mod v3;

use std::fmt;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use chat_common::framing::Frame;
use chat_common::protocol::{ErrorCode, LeaveReason, ServerMsg};

use crate::config::Config;
pub use admission::{Admission, ConnectRefusal};
use bus::{Event, ToBridge};
use history::History;
use operator::Announcer;
pub use outgoing::{Dialect, Encoder, Farewell, Outgoing};
pub use replay::Replay;
pub use resume::{TokenLogin, LOGIN_REFUSED};
use room::Room;
pub use sessions::Transport;
use sessions::{session_name, Phase, Session, Sessions};
pub use v3::{replay_page_len, ReadFrom, Restored, ResumeDecision, ResumeRefusal, REPLAY_PAGE};

/// A connection's identity: its slab key and a serial unique for the server's life, so an effect
/// or timer meant for a closed connection can never reach the one that reuses its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// The reactor's slab key.
    pub key: usize,
    /// Unique for the server's life.
    pub serial: u64,
}

/// One operator console (standard input is 0; remote consoles get their own numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsoleId(pub usize);

/// Who a console line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every open console: events (join requests, departures, decisions).
    All,
    /// The console that asked: replies to its command.
    One(ConsoleId),
}

/// The core's own deadlines, which the shell keeps and hands back when due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CoreTimer {
    /// The connection must have offered a valid name by now.
    Login,
    /// The operator must have decided on the join by now.
    Approval,
    /// The console announcements held back this second are summed up now.
    Announce,
    /// Resume windows may have ended (not tied to a connection, like `Announce`).
    Sweep,
    /// A `RESUME` waiting for another server to free its name waits no longer (`--cluster`).
    ResumeWait,
}

/// The time of an event: a monotonic instant for every rule, and the wall clock only for the
/// history's timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For deadlines, rates and durations.
    pub at: Instant,
    /// For history timestamps.
    pub wall: SystemTime,
}

impl Now {
    /// The current time (the shell reads the clocks once a round).
    pub fn read() -> Now {
        Now {
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// Where the core's effects go. The reactor implements it over sockets; tests record.
pub trait Outbox {
    /// Queues a message for a connection, to be encoded in its dialect. The same message may go
    /// to many (a refcount each; each dialect encodes it once).
    fn send(&mut self, to: ConnId, msg: &Rc<Outgoing>);
    /// Queues one message for many connections (a fan-out), as [`Outbox::send`] to each in
    /// turn; the shell does once per message what is the same for every recipient.
    fn send_all(&mut self, to: impl IntoIterator<Item = ConnId>, msg: &Rc<Outgoing>) {
        for id in to {
            self.send(id, msg);
        }
    }
    /// Queues a paced replay for a connection: written as it reads, after what is queued for it
    /// so far and before anything queued later (see [`replay`]).
    fn replay(&mut self, to: ConnId, replay: Replay);
    /// Closes a connection politely: what is queued (its BYE or DENIED) goes out first. The core
    /// has already forgotten it and sends it nothing more.
    fn close(&mut self, id: ConnId);
    /// Prints one line on the consoles.
    fn console(&mut self, to: Audience, line: fmt::Arguments<'_>);
    /// Asks for [`Core::timer`] with `timer` for `id` at `at` (`id` is ignored for
    /// [`CoreTimer::Announce`]).
    fn arm(&mut self, at: Instant, id: ConnId, timer: CoreTimer);
    /// The operator asked the server to stop; the shell calls [`Core::shutdown`] next.
    fn quit(&mut self);
    /// Console `id` asked to close itself (`exit`); the server goes on.
    fn close_console(&mut self, id: ConsoleId) {
        let _ = id;
    }
    /// Hands a request to the cluster bridge (only ever called under `--cluster`).
    fn cluster(&mut self, msg: ToBridge) {
        let _ = msg;
    }
    /// The connection speaks `dialect` from now on (after `HELLO 3`).
    fn dialect(&mut self, id: ConnId, dialect: Dialect) {
        let _ = (id, dialect);
    }
}

/// The name prompt.
pub const NAME_PROMPT: &str = "choose a name: 1-32 of A-Z a-z 0-9 _ -";

/// The rules of the room.
#[derive(Debug)]
pub struct Core {
    config: Config,
    /// Who is connected and where each is in its life.
    sessions: Sessions,
    room: Room,
    history: History,
    /// Bans, cool-downs, the waiting room's bounds, the consoles' presence.
    admission: Admission,
    announcer: Announcer,
    /// The confirmation a control console's `quit` needs.
    quit_guard: operator::QuitGuard,
    /// Set by [`Core::shutdown`]: departures are no longer announced.
    shutting_down: bool,
    /// Reused buffer that lines are formatted into before being shared.
    fmt: Vec<u8>,
    /// The rest of the room, under `--cluster`.
    remote: Option<remote::Remote>,
    /// Protocol version 3: ids, the store's hand-over, tokens, resumes.
    v3: v3::V3,
}

impl Core {
    /// A core with no sessions; `consoles` is how many operator consoles are open at start.
    pub fn new(config: Config, consoles: usize) -> Core {
        Core {
            history: History::new(config.history),
            remote: config.cluster.is_some().then(remote::Remote::default),
            admission: Admission::new(&config, consoles),
            v3: {
                let mut v3 = v3::V3::new(config.resume_window, config.remember);
                v3.limit_detached(config.max_clients, config.max_per_ip);
                v3.clustered = config.cluster.is_some();
                v3
            },
            config,
            sessions: Sessions::default(),
            room: Room::default(),
            announcer: Announcer::default(),
            quit_guard: operator::QuitGuard::default(),
            shutting_down: false,
            fmt: Vec::with_capacity(256),
        }
    }

    /// Members in the room.
    pub fn online(&self) -> usize {
        self.room.online()
    }

    /// Joins waiting for the operator.
    pub fn waiting(&self) -> usize {
        self.room.waiting()
    }

    /// Whether connection `id` waits for its name's claim under `--cluster` (a `RESUME` or a
    /// token login), not for the operator.
    pub fn claiming(&self, id: ConnId) -> bool {
        matches!(
            self.session(id).map(|s| &s.phase),
            Some(Phase::Claiming { .. })
        )
    }

    /// Whether this server is cut off from its cluster (and so refuses joins): `/readyz` says
    /// so.
    pub fn cut_off_from_cluster(&self) -> bool {
        self.cut_off()
    }

    /// Whether the shell may keep a new socket, given `open` sockets in all and `from_ip` from
    /// its address (the shell counts; admission decides). On `Err` the shell tells the peer
    /// why (its Display) if it can, and closes.
    pub fn may_connect(&self, open: usize, from_ip: usize) -> Result<(), ConnectRefusal> {
        self.admission.may_connect(open, from_ip)
    }

    fn session(&self, id: ConnId) -> Option<&Session> {
        self.sessions.get(id)
    }

    fn session_mut(&mut self, id: ConnId) -> Option<&mut Session> {
        self.sessions.get_mut(id)
    }

    /// The member here called `name` (any case): its connection and its name as spelled.
    fn member_named(&self, name: &str) -> Option<(ConnId, Rc<str>)> {
        let id = self.room.holder(name)?;
        match &self.session(id)?.phase {
            Phase::Member { name } => Some((id, Rc::clone(name))),
            _ => None,
        }
    }

    /// The join here waiting for the operator under `name` (any case): its connection and
    /// its name as spelled.
    fn waiting_named(&self, name: &str) -> Option<(ConnId, Rc<str>)> {
        let id = self.room.holder(name)?;
        match &self.session(id)?.phase {
            Phase::Waiting { name, .. } => Some((id, Rc::clone(name))),
            _ => None,
        }
    }

    /// Removes and returns a session.
    fn take_session(&mut self, id: ConnId) -> Option<Session> {
        self.sessions.take(id)
    }

    /// The id of the session in slot `key`.
    fn id_at(&self, key: usize) -> Option<ConnId> {
        self.sessions.id_at(key)
    }

    /// Builds a message once, for any number of queues to share.
    fn format(&mut self, msg: &ServerMsg<'_>) -> Rc<Outgoing> {
        Outgoing::new(msg, None, &mut self.fmt)
    }

    /// [`Core::format`] for a message stamped with the time it was relayed (`MSG`, `ACT`,
    /// `PRIV`).
    fn format_at(&mut self, msg: &ServerMsg<'_>, now: Now) -> Rc<Outgoing> {
        Outgoing::new(msg, Some(now.wall), &mut self.fmt)
    }

    fn send(&mut self, to: ConnId, msg: &ServerMsg<'_>, out: &mut impl Outbox) {
        let line = self.format(msg);
        out.send(to, &line);
    }

    fn send_error(&mut self, to: ConnId, code: ErrorCode, text: &str, out: &mut impl Outbox) {
        self.send(to, &ServerMsg::Error { code, text }, out);
    }

    /// Sends a built line to every member but `except`, in its place among the room's lines:
    /// while room messages wait for the store, a line that needs no storing (`JOIN`, `LEAVE`,
    /// `NICK`, `INFO`) waits behind them, so nobody sees a `LEAVE` before its speaker's last
    /// message.
    fn fan_out(&mut self, line: &Rc<Outgoing>, except: Option<ConnId>, out: &mut impl Outbox) {
        if self.holds_room_lines() {
            self.hold_line(Rc::clone(line), except, None);
        } else {
            self.fan_out_now(line, except, out);
        }
    }

    /// [`Core::fan_out`] without waiting: for lines whose turn has come.
    fn fan_out_now(&self, line: &Rc<Outgoing>, except: Option<ConnId>, out: &mut impl Outbox) {
        let replaying = self.v3.any_replaying();
        let to = self.room.members().iter().copied();
        out.send_all(
            to.filter(|&id| Some(id) != except && !(replaying && self.is_replaying(id))),
            line,
        );
    }

    fn broadcast(&mut self, msg: &ServerMsg<'_>, except: Option<ConnId>, out: &mut impl Outbox) {
        let line = self.format(msg);
        self.fan_out(&line, except, out);
    }

    /// A `LEAVE` or `NICK` to every member; into the history too when `who` has a line there,
    /// so a newcomer sees where one speaker of a name ends.
    fn announce_in_room(
        &mut self,
        msg: &ServerMsg<'_>,
        who: &str,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let line = self.format_at(msg, now);
        if self.holds_room_lines() {
            self.hold_line(line, None, Some(Rc::from(who)));
            return;
        }
        self.fan_out_now(&line, None, out);
        self.record_event_of(&line, who);
    }

    /// Keeps a `LEAVE` or `NICK` in the history when `who` has a line there.
    fn record_event_of(&mut self, line: &Rc<Outgoing>, who: &str) {
        if self.history.has_spoken(who) {
            self.history.record_event(line);
        }
    }

    /// A line arrived from a connection (or the framer refused one).
    pub fn input(&mut self, id: ConnId, frame: Frame<'_>, now: Now, out: &mut impl Outbox) {
        match frame {
            Frame::Line(line) => self.line(id, line, now, out),
            Frame::TooLong => {
                let text = format!("line longer than {} bytes discarded", self.config.max_line);
                self.send_error(id, ErrorCode::LineTooLong, &text, out);
            }
            Frame::BadUtf8 => self.send_error(
                id,
                ErrorCode::BadUtf8,
                "line is not valid UTF-8; dropped",
                out,
            ),
        }
    }

    fn line(&mut self, id: ConnId, line: &str, now: Now, out: &mut impl Outbox) {
        let Some(session) = self.session(id) else {
            return;
        };
        match &session.phase {
            Phase::AwaitingName => self.offer_name(id, line, now, out),
            Phase::Waiting { .. } | Phase::Claiming { .. } => self.send_error(
                id,
                ErrorCode::NotAdmitted,
                "wait for the operator to approve you; this line was dropped",
                out,
            ),
            Phase::Member { name } => {
                let name = Rc::clone(name);
                self.request(id, &name, line, now, out);
            }
        }
    }

    /// A deadline the core asked for is due.
    pub fn timer(&mut self, id: ConnId, timer: CoreTimer, now: Now, out: &mut impl Outbox) {
        match timer {
            CoreTimer::Announce => self.announce_tick(now, out),
            CoreTimer::Sweep => self.sweep_detached(now, out),
            CoreTimer::ResumeWait => self.resume_wait_over(id, now, out),
            CoreTimer::Login => {
                if matches!(self.session(id), Some(s) if s.phase == Phase::AwaitingName) {
                    log::debug!("#{} gave no name in time", id.serial);
                    self.send(
                        id,
                        &ServerMsg::Bye {
                            text: "no name given in time",
                        },
                        out,
                    );
                    self.take_session(id);
                    out.close(id);
                }
            }
            CoreTimer::Approval => {
                let name = match self.session(id).map(|s| &s.phase) {
                    Some(Phase::Waiting { name, .. }) => Rc::clone(name),
                    _ => return,
                };
                out.console(
                    Audience::All,
                    format_args!("join request of {name} timed out: denied"),
                );
                self.deny(id, "no operator approved you in time", true, now, out);
            }
        }
    }

    /// The connection will make no more requests (it closed, failed, or the shell cut it off):
    /// it leaves the room, and the others hear why. Nothing happens for a session already gone.
    pub fn gone(&mut self, id: ConnId, reason: LeaveReason, now: Now, out: &mut impl Outbox) {
        let Some(session) = self.take_session(id) else {
            return;
        };
        self.leave_room(id, &session, reason, now, out);
        self.v3.end_session(id);
    }

    /// Takes a closed session's name and place out of the room, announcing members' departures.
    fn leave_room(
        &mut self,
        id: ConnId,
        session: &Session,
        reason: LeaveReason,
        now: Now,
        out: &mut impl Outbox,
    ) {
        match &session.phase {
            Phase::Member { name } => {
                if self.detach(id, name, session.addr.ip(), reason, now, out) {
                    return;
                }
                self.room.remove(name, id);
                self.admission.hold_name(name, session.addr.ip(), now.at);
                self.publish(
                    || Event::Leave {
                        name: name.to_string(),
                        reason,
                        owner: Some(session.addr.ip().to_string()),
                    },
                    now,
                    out,
                );
                if !self.shutting_down {
                    self.announce_in_room(&ServerMsg::Leave { name, reason }, name, now, out);
                    out.console(
                        Audience::All,
                        format_args!("left {name} ({})", reason.as_str()),
                    );
                }
            }
            Phase::Waiting { name, .. } => {
                self.room.remove(name, id);
                self.admission.unpend(session.addr.ip());
                self.publish(
                    || Event::Decided {
                        name: name.to_string(),
                        how: "withdrawn".to_owned(),
                    },
                    now,
                    out,
                );
                if reason == LeaveReason::Quit && !self.shutting_down {
                    self.announce(
                        operator::Announcement::Withdrawn,
                        now,
                        out,
                        format_args!("join request withdrawn: {name}"),
                    );
                }
            }
            Phase::AwaitingName | Phase::Claiming { .. } => {}
        }
    }

    /// Says BYE to every session and forgets them all; departures are not announced.
    pub fn shutdown(&mut self, out: &mut impl Outbox) {
        self.shutting_down = true;
        let bye = self.format(&ServerMsg::Bye {
            text: "server shutting down",
        });
        for key in 0..self.sessions.slots() {
            if let Some(id) = self.id_at(key) {
                out.send(id, &bye);
                out.close(id);
                if let Some(session) = self.take_session(id) {
                    if let Some(name) = session_name(&session) {
                        self.room.remove(name, id);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
