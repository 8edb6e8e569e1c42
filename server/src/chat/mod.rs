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
//! A line is formatted once and its bytes shared: a fan-out hands the same `Rc<[u8]>` to every
//! recipient, and the history keeps that same line.
//!
//! # Layout
//! - [`room`]: names, members and waiting joins (the index the rules consult).
//! - [`history`]: the room's last messages.
//! - `admission`: connecting, naming, the waiting room, approval, denial, bans, cool-downs.
//! - `requests`: what an admitted member's line does.
//! - `operator`: what a console command does, and the coalescing of announcements.
//! - `remote`: the rest of the room under `--cluster`: other servers' members and joins, name
//!   claims, and what the room's log does here.

mod admission;
pub mod history;
mod operator;
pub use operator::CommandOutcome;
mod remote;
mod requests;
pub mod room;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use chat_common::framing::Frame;
use chat_common::protocol::{ErrorCode, LeaveReason, ServerMsg};

use crate::bucket::Bucket;
use crate::cluster::event::{Event, ToBridge};
use crate::config::Config;
use history::History;
use operator::Announcer;
use room::Room;

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
    /// Queues a line (LF included) for a connection. The same bytes may go to many.
    fn send(&mut self, to: ConnId, line: &Rc<[u8]>);
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
    /// Hands a request to the cluster bridge (only ever called under `--cluster`).
    fn cluster(&mut self, msg: ToBridge) {
        let _ = msg;
    }
}

/// The name prompt.
pub const NAME_PROMPT: &str = "choose a name: 1-32 of A-Z a-z 0-9 _ -";

/// Where a session is in its life. A closed session is simply gone from the core.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Connected; no valid name offered yet. The login timer runs.
    AwaitingName,
    /// Offered a valid name that is being claimed in the cluster (`--cluster` only); the answer
    /// ([`Core::cluster_input`]) admits it, lets it wait, or refuses the name.
    Claiming { name: Rc<str> },
    /// Offered a valid name, reserved; the operator decides. The approval timer runs.
    Waiting { name: Rc<str>, since: Instant },
    /// In the room.
    Member { name: Rc<str> },
}

/// What the core knows of one connection.
#[derive(Debug)]
struct Session {
    serial: u64,
    addr: SocketAddr,
    phase: Phase,
    /// Renames allowed (members only; see [`crate::config::NICK_BURST`]).
    renames: Bucket,
}

/// The rules of the room.
#[derive(Debug)]
pub struct Core {
    config: Config,
    /// Sessions by slab key; `None` where no session lives. Grows to the highest key used.
    sessions: Vec<Option<Session>>,
    room: Room,
    history: History,
    /// Waiting joins per address, for `--max-pending-per-ip`.
    pending_per_ip: HashMap<IpAddr, usize>,
    /// (address, lowercased name) -> until when that address may not wait for that name again.
    cooldowns: HashMap<(IpAddr, Box<str>), Instant>,
    /// Size at which `cooldowns` is next swept of expired entries.
    cooldown_sweep_at: usize,
    /// Addresses whose connections are refused.
    bans: std::collections::BTreeSet<IpAddr>,
    /// Consoles open (standard input and remote ones); joins wait only while one is.
    consoles: usize,
    announcer: Announcer,
    /// Set by [`Core::shutdown`]: departures are no longer announced.
    shutting_down: bool,
    /// Reused buffer that lines are formatted into before being shared.
    fmt: Vec<u8>,
    /// The rest of the room, under `--cluster`.
    remote: Option<remote::Remote>,
}

impl Core {
    /// A core with no sessions; `consoles` is how many operator consoles are open at start.
    pub fn new(config: Config, consoles: usize) -> Core {
        Core {
            history: History::new(config.history),
            remote: config.cluster.is_some().then(remote::Remote::default),
            config,
            sessions: Vec::new(),
            room: Room::default(),
            pending_per_ip: HashMap::new(),
            cooldowns: HashMap::new(),
            cooldown_sweep_at: 64,
            bans: Default::default(),
            consoles,
            announcer: Announcer::default(),
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

    fn session(&self, id: ConnId) -> Option<&Session> {
        self.sessions
            .get(id.key)
            .and_then(Option::as_ref)
            .filter(|s| s.serial == id.serial)
    }

    fn session_mut(&mut self, id: ConnId) -> Option<&mut Session> {
        self.sessions
            .get_mut(id.key)
            .and_then(Option::as_mut)
            .filter(|s| s.serial == id.serial)
    }

    /// Removes and returns a session.
    fn take_session(&mut self, id: ConnId) -> Option<Session> {
        let slot = self.sessions.get_mut(id.key)?;
        if slot.as_ref().is_some_and(|s| s.serial == id.serial) {
            slot.take()
        } else {
            None
        }
    }

    /// The id of the session in slot `key`.
    fn id_at(&self, key: usize) -> Option<ConnId> {
        self.sessions
            .get(key)
            .and_then(Option::as_ref)
            .map(|s| ConnId {
                key,
                serial: s.serial,
            })
    }

    /// Formats a message once into a line that any number of queues can share.
    fn format(&mut self, msg: &ServerMsg<'_>) -> Rc<[u8]> {
        self.fmt.clear();
        msg.write_to(&mut self.fmt);
        Rc::from(&self.fmt[..])
    }

    fn send(&mut self, to: ConnId, msg: &ServerMsg<'_>, out: &mut impl Outbox) {
        let line = self.format(msg);
        out.send(to, &line);
    }

    fn send_error(&mut self, to: ConnId, code: ErrorCode, text: &str, out: &mut impl Outbox) {
        self.send(to, &ServerMsg::Error { code, text }, out);
    }

    /// Sends a formatted line to every member but `except`.
    fn fan_out(&self, line: &Rc<[u8]>, except: Option<ConnId>, out: &mut impl Outbox) {
        for &id in self.room.members() {
            if Some(id) != except {
                out.send(id, line);
            }
        }
    }

    fn broadcast(&mut self, msg: &ServerMsg<'_>, except: Option<ConnId>, out: &mut impl Outbox) {
        let line = self.format(msg);
        self.fan_out(&line, except, out);
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
                self.room.remove(name, id);
                self.publish(
                    || Event::Leave {
                        name: name.to_string(),
                        reason,
                    },
                    now,
                    out,
                );
                if !self.shutting_down {
                    self.broadcast(&ServerMsg::Leave { name, reason }, None, out);
                    out.console(
                        Audience::All,
                        format_args!("left {name} ({})", reason.as_str()),
                    );
                }
            }
            Phase::Waiting { name, .. } => {
                self.room.remove(name, id);
                self.unpend(session.addr.ip());
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
        for key in 0..self.sessions.len() {
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

fn session_name(session: &Session) -> Option<&Rc<str>> {
    match &session.phase {
        Phase::Waiting { name, .. } | Phase::Member { name } => Some(name),
        Phase::AwaitingName | Phase::Claiming { .. } => None,
    }
}

#[cfg(test)]
pub(crate) mod testing;
