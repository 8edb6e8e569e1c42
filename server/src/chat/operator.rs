//! What a console command does, and how events reach the consoles without burying them.
//!
//! Replies go to the console that asked; events (decisions, departures, join requests) go to
//! every console. Join requests and withdrawals are *announcements*: at most
//! [`ANNOUNCE_PER_SECOND`] are printed in any one-second window; past that they are counted and
//! summed up in one line when the window ends (`pending` lists every waiting join anyway), so a
//! churn of fake joins cannot push a real one out of the operator's sight.

use std::fmt;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

use chat_common::protocol::{LeaveReason, ServerMsg};
use chat_common::sanitize::sanitize;

use super::bus::Event;
use super::{Audience, ConnId, ConsoleId, Core, CoreTimer, Now, Outbox, Phase};
use crate::console::{self, Command};

use crate::config::{ANNOUNCE_PER_SECOND, ANNOUNCE_WINDOW};

/// Whether a console command worked.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It did what it says (or the line was blank).
    Done,
    /// It changed nothing; its console got an `error:` line saying why.
    Failed,
}

/// Which announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Announcement {
    /// A join request.
    Request,
    /// A waiting join withdrawn by its owner.
    Withdrawn,
}

/// The announcement window: how many were printed, how many held back.
#[derive(Debug, Default)]
pub(super) struct Announcer {
    window_start: Option<Instant>,
    shown: u32,
    held_requests: u64,
    held_withdrawals: u64,
    tick_armed: bool,
}

impl Announcer {
    /// An announcement at `now`: `Ok(())` to print it, or it is counted and `Err(Some(at))`
    /// asks for the summing-up at `at` (`Err(None)`: already asked for).
    fn offer(&mut self, kind: Announcement, now: Instant) -> Result<(), Option<Instant>> {
        let start = match self.window_start {
            Some(start) if now.saturating_duration_since(start) < ANNOUNCE_WINDOW => start,
            _ => {
                self.shown = 0;
                self.window_start = Some(now);
                now
            }
        };
        if self.shown < ANNOUNCE_PER_SECOND {
            self.shown += 1;
            return Ok(());
        }
        match kind {
            Announcement::Request => self.held_requests += 1,
            Announcement::Withdrawn => self.held_withdrawals += 1,
        }
        if self.tick_armed {
            return Err(None);
        }
        self.tick_armed = true;
        Err(Some(start + ANNOUNCE_WINDOW))
    }

    /// The window ended: how many requests and withdrawals were held back (and are now
    /// forgotten).
    fn tick(&mut self) -> (u64, u64) {
        self.tick_armed = false;
        let held = (self.held_requests, self.held_withdrawals);
        self.held_requests = 0;
        self.held_withdrawals = 0;
        held
    }
}

impl Core {
    /// Prints an announcement, or counts it when the window's share is used up.
    pub(super) fn announce(
        &mut self,
        kind: Announcement,
        now: Now,
        out: &mut impl Outbox,
        line: fmt::Arguments<'_>,
    ) {
        match self.announcer.offer(kind, now.at) {
            Ok(()) => out.console(Audience::All, line),
            Err(Some(at)) => {
                let nobody = ConnId { key: 0, serial: 0 };
                out.arm(at, nobody, CoreTimer::Announce);
            }
            Err(None) => {}
        }
    }

    /// The window ended: sum up what was held back.
    pub(super) fn announce_tick(&mut self, _now: Now, out: &mut impl Outbox) {
        let (requests, withdrawals) = self.announcer.tick();
        if requests + withdrawals > 0 {
            let waiting = self.room.waiting();
            out.console(
                Audience::All,
                format_args!(
                    "... {requests} more join requests and {withdrawals} withdrawals in the last second ({waiting} waiting; pending lists them)"
                ),
            );
        }
    }

    /// Executes one console line from console `from`, and says whether it worked (a failed
    /// command changed nothing and told its console why, in an `error:` line).
    pub fn console_line(
        &mut self,
        from: ConsoleId,
        line: &str,
        now: Now,
        out: &mut impl Outbox,
    ) -> CommandOutcome {
        let reply = Audience::One(from);
        let fail = |out: &mut _, args: fmt::Arguments<'_>| {
            Outbox::console(out, reply, format_args!("error: {args}"));
            CommandOutcome::Failed
        };
        let command = match console::parse(line) {
            Ok(Some(c)) => c,
            Ok(None) => return CommandOutcome::Done,
            Err(e) => return fail(out, format_args!("{e}")),
        };
        match command {
            Command::Approve(name) | Command::Deny(name) => {
                let approve = matches!(command, Command::Approve(_));
                let found = match name {
                    None => self.room.oldest_pending(),
                    Some(n) => self.room.holder(n),
                };
                let waiting = found.and_then(|id| match self.session(id).map(|s| &s.phase) {
                    Some(Phase::Waiting { name, .. }) => Some((id, Rc::clone(name))),
                    _ => None,
                });
                let Some((id, name)) = waiting else {
                    // Perhaps a join waiting on another server: its server decides.
                    if let Some(join) = self.remote_join(name) {
                        let (server, name) = (join.server.to_string(), join.name.to_string());
                        let event = if approve {
                            Event::Approve { server, name }
                        } else {
                            Event::Deny { server, name }
                        };
                        self.publish(|| event, now, out);
                        let verb = if approve { "approve" } else { "deny" };
                        out.console(
                            reply,
                            format_args!(
                                "{verb} {}: asked server {}, where it waits",
                                join.name, join.server
                            ),
                        );
                        return CommandOutcome::Done;
                    }
                    return match name {
                        None => fail(out, format_args!("nobody is waiting")),
                        Some(n) => {
                            fail(out, format_args!("nobody named {} is waiting", sanitize(n)))
                        }
                    };
                };
                if approve {
                    self.admit(id, &name, now, out);
                } else {
                    self.deny(id, "the operator refused you", true, now, out);
                    out.console(Audience::All, format_args!("denied {name}"));
                }
            }
            Command::Pending => {
                let remote = self.remote_joins();
                out.console(
                    reply,
                    format_args!("pending: {} waiting", self.room.waiting() + remote.len()),
                );
                for id in self.room.pending() {
                    if let Some(s) = self.session(id) {
                        if let Phase::Waiting { name, since } = &s.phase {
                            let secs = now.at.saturating_duration_since(*since).as_secs();
                            out.console(
                                reply,
                                format_args!("  {name} from {}, waiting {secs}s", s.addr),
                            );
                        }
                    }
                }
                for j in remote {
                    let secs = now.at.saturating_duration_since(j.since).as_secs();
                    out.console(
                        reply,
                        format_args!(
                            "  {} from {}, waiting {secs}s on server {}",
                            j.name, j.addr, j.server
                        ),
                    );
                }
            }
            Command::Who => {
                out.console(reply, format_args!("online: {}", self.everyone()));
                for &id in self.room.members() {
                    if let Some(s) = self.session(id) {
                        if let Phase::Member { name } = &s.phase {
                            out.console(reply, format_args!("  {name} from {}", s.addr));
                        }
                    }
                }
                for (name, server) in self.remote_members() {
                    out.console(reply, format_args!("  {name} on server {server}"));
                }
            }
            Command::Kick(name) => {
                let member = self.room.holder(name).and_then(|id| {
                    match self.session(id).map(|s| &s.phase) {
                        Some(Phase::Member { name }) => Some((id, Rc::clone(name))),
                        _ => None,
                    }
                });
                match member {
                    Some((id, name)) => {
                        self.kick(id, "kicked by the operator", now, out);
                        self.void_token(&name, out);
                        out.console(Audience::All, format_args!("kicked {name}"));
                    }
                    None if self.detached_name(name).is_some() => {
                        let Some(name) = self.detached_name(name) else {
                            return CommandOutcome::Failed;
                        };
                        self.void_token(&name, out);
                        out.console(Audience::All, format_args!("left {name} (kicked)"));
                        out.console(Audience::All, format_args!("kicked {name}"));
                    }
                    None if self.remote_member(name).is_some() => {
                        let Some((name, server)) = self.remote_member(name) else {
                            return CommandOutcome::Failed;
                        };
                        let event = Event::Kick {
                            server: server.to_string(),
                            name: name.to_string(),
                        };
                        self.publish(|| event, now, out);
                        out.console(
                            reply,
                            format_args!("kick {name}: asked server {server}, where it is"),
                        );
                    }
                    None => return fail(out, format_args!("no member named {}", sanitize(name))),
                }
            }
            Command::Say(text) => {
                let text = format!("operator: {}", sanitize(text));
                let line = self.format(&ServerMsg::Info { text: &text });
                self.fan_out(&line, None, out);
                self.publish(
                    || Event::Info {
                        line: line.line().to_vec(),
                    },
                    now,
                    out,
                );
                out.console(
                    Audience::All,
                    format_args!("said to {} members", self.everyone()),
                );
            }
            Command::Ban(ip) => {
                self.store_ban(ip, true, now);
                let cut = self.ban(ip, now, out);
                out.console(
                    Audience::All,
                    format_args!("banned {ip} ({cut} connections cut)"),
                );
            }
            Command::Unban(ip) => {
                if self.admission.unban(ip) {
                    self.store_ban(ip, false, now);
                    out.console(Audience::All, format_args!("unbanned {ip}"));
                } else {
                    return fail(out, format_args!("{ip} is not banned"));
                }
            }
            Command::Bans => {
                out.console(reply, format_args!("bans: {}", self.admission.bans().len()));
                for ip in self.admission.bans() {
                    out.console(reply, format_args!("  {ip}"));
                }
            }
            Command::Forget(name) => {
                let name = sanitize(name).into_owned();
                if self.void_token(&name, out) {
                    out.console(Audience::All, format_args!("forgot {name}"));
                } else {
                    out.console(reply, format_args!("error: {name} is not remembered"));
                }
            }
            Command::Members => self.list_members(reply, out),
            Command::Quit => out.quit(),
            Command::Help => {
                for line in console::HELP {
                    out.console(reply, format_args!("{line}"));
                }
            }
        }
        CommandOutcome::Done
    }

    /// Another server's console asked this one to approve or deny its waiting join `name`.
    pub(super) fn decide_by_name(
        &mut self,
        name: &str,
        approve: bool,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let waiting =
            self.room
                .holder(name)
                .and_then(|id| match self.session(id).map(|s| &s.phase) {
                    Some(Phase::Waiting { name, .. }) => Some((id, Rc::clone(name))),
                    _ => None,
                });
        let Some((id, name)) = waiting else {
            return;
        };
        if approve {
            self.admit(id, &name, now, out);
        } else {
            self.deny(id, "the operator refused you", true, now, out);
            out.console(Audience::All, format_args!("denied {name}"));
        }
    }

    /// Another server's console asked this one to kick its member `name`.
    pub(super) fn kick_by_name(&mut self, name: &str, now: Now, out: &mut impl Outbox) {
        let member =
            self.room
                .holder(name)
                .and_then(|id| match self.session(id).map(|s| &s.phase) {
                    Some(Phase::Member { name }) => Some((id, Rc::clone(name))),
                    _ => None,
                });
        if let Some((id, name)) = member {
            self.kick(id, "kicked by the operator", now, out);
            self.void_token(&name, out);
            out.console(Audience::All, format_args!("kicked {name}"));
        }
    }

    /// A member out: BYE `why` to it, `LEAVE <name> kicked` to the others.
    fn kick(&mut self, id: ConnId, why: &str, now: Now, out: &mut impl Outbox) {
        self.send(id, &ServerMsg::Bye { text: why }, out);
        self.gone(id, LeaveReason::Kicked, now, out);
        out.close(id);
    }

    /// Bans `ip`: its members are kicked, its waiting joins denied, its other connections told
    /// and closed. Returns how many connections were cut.
    fn ban(&mut self, ip: IpAddr, now: Now, out: &mut impl Outbox) -> usize {
        self.admission.ban(ip);
        let mut cut = 0;
        for key in 0..self.sessions.slots() {
            let Some(id) = self.id_at(key) else {
                continue;
            };
            let Some(session) = self.session(id).filter(|s| s.addr.ip() == ip) else {
                continue;
            };
            cut += 1;
            match session.phase {
                Phase::Member { .. } => self.kick(id, "your address was banned", now, out),
                Phase::Waiting { .. } | Phase::AwaitingName | Phase::Claiming { .. } => {
                    self.deny(id, "your address is banned", false, now, out);
                }
            }
        }
        cut
    }
}
