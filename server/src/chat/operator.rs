//! What a console command does, and how events reach the consoles without burying them.
//!
//! Replies go to the console that asked; events (decisions, departures, join requests) go to
//! every console. Join requests and withdrawals are *announcements*: at most
//! [`ANNOUNCE_PER_SECOND`] are printed in any one-second window; past that they are counted and
//! summed up in one line when the window ends (`pending` lists every waiting join anyway), so a
//! churn of fake joins cannot push a real one out of the operator's sight.

use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use chat_common::protocol::{LeaveReason, ServerMsg};
use chat_common::sanitize::sanitize;

use super::bans::{span, Ban, IpNet, MAX_BAN_REASON};
use super::bus::{kick_note, split_kick_note, Event};
use super::{Audience, ConnId, ConsoleId, Core, CoreTimer, Farewell, Now, Outbox, Outgoing, Phase};
use crate::config::QUIT_CONFIRM_WINDOW;
use crate::console::{self, Command, Target};

/// Standard input's console.
const STDIN: ConsoleId = ConsoleId(0);

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

/// The confirmation a control console's `quit` needs: a first `quit` asks, a second one from
/// the same console within [`QUIT_CONFIRM_WINDOW`] stops the server; any other line from any
/// console withdraws the question. Standard input and `quit now` need no confirmation.
#[derive(Debug, Default)]
pub(super) struct QuitGuard {
    /// The console asked to confirm, and when.
    asked: Option<(ConsoleId, Instant)>,
}

impl QuitGuard {
    /// A console typed a command: the question that stood (if any) is withdrawn and returned,
    /// for a `quit` to confirm.
    fn lapse(&mut self) -> Option<(ConsoleId, Instant)> {
        self.asked.take()
    }

    /// `quit` from `from` (`at_once`: `quit now`), `asked` being the question that stood:
    /// whether the server stops now; if not, the question is asked.
    fn quit(
        &mut self,
        asked: Option<(ConsoleId, Instant)>,
        from: ConsoleId,
        at_once: bool,
        now: Instant,
    ) -> bool {
        let confirmed = at_once
            || from == STDIN
            || asked.is_some_and(|(who, when)| {
                who == from && now.saturating_duration_since(when) < QUIT_CONFIRM_WINDOW
            });
        if !confirmed {
            self.asked = Some((from, now));
        }
        confirmed
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
        // A question to quit stands only until the console that was asked types something else.
        let quit_asked = self.quit_guard.lapse();
        match command {
            Command::Approve(target) | Command::Deny(target) => {
                let approve = matches!(command, Command::Approve(_));
                return self.decide(from, target, approve, now, out);
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
            Command::Who => self.console_who(reply, now, out),
            Command::Kick { name, reason } => {
                return self.kick_command(from, name, reason, now, out)
            }
            Command::Say(text) => {
                let text = format!("operator: {}", sanitize(text));
                self.info_to_room(&text, None, now, out);
                out.console(
                    Audience::All,
                    format_args!("said to {} members (by {})", self.everyone(), by(from)),
                );
                log::info!("said {text:?} (by {})", by(from));
            }
            Command::Ban {
                net,
                duration,
                reason,
            } => {
                let ban = Ban {
                    net,
                    reason: reason.map(|r| clip(&sanitize(r), MAX_BAN_REASON)),
                    by: by(from),
                    since: now.wall,
                    until: duration.map(|d| now.wall + d),
                };
                let shown = ban.clone();
                if let Err(e) = self.admission.bans_mut().add(ban) {
                    return fail(out, format_args!("{e}"));
                }
                self.store_ban(&shown);
                let cut = self.cut_banned(net, reason, now, out);
                let shown = describe(&shown, now.wall, &format!("; {cut} connections cut"));
                out.console(Audience::All, format_args!("banned {shown}"));
                log::info!("banned {shown}");
            }
            Command::Unban(net) => match self.admission.bans_mut().remove(net) {
                Some(_) => {
                    self.store_unban(net);
                    out.console(
                        Audience::All,
                        format_args!("unbanned {net} (by {})", by(from)),
                    );
                    log::info!("unbanned {net} (by {})", by(from));
                }
                None => return fail(out, format_args!("{net} is not banned (bans lists them)")),
            },
            Command::Bans => {
                for gone in self.admission.bans_mut().expire(now.wall) {
                    log::info!("ban on {} ran out", gone.net);
                    self.store_unban(gone.net);
                }
                let bans = self.admission.bans();
                out.console(reply, format_args!("bans: {}", bans.len()));
                for ban in bans.iter() {
                    out.console(reply, format_args!("  {}", describe(ban, now.wall, "")));
                }
            }
            Command::Quit { now: at_once } => {
                if self.quit_guard.quit(quit_asked, from, at_once, now.at) {
                    out.console(
                        Audience::All,
                        format_args!("stopping the server (by {})", by(from)),
                    );
                    log::info!("quit (by {})", by(from));
                    out.quit();
                } else {
                    out.console(
                        reply,
                        format_args!(
                            "quit stops the server for everyone ({} members online): type quit \
                             again within {} s, or quit now (exit closes only this console)",
                            self.everyone(),
                            QUIT_CONFIRM_WINDOW.as_secs()
                        ),
                    );
                }
            }
            Command::Exit => out.close_console(from),
            Command::Forget(name) => {
                let asked = sanitize(name).into_owned();
                // Named as the room knows the member (its own spelling), as `kick` does.
                let name = self
                    .v3
                    .remembered_as(&asked)
                    .map_or_else(|| asked.clone(), str::to_owned);
                if self.void_token(&name, out) {
                    out.console(
                        Audience::All,
                        format_args!("forgot {name} (by {})", by(from)),
                    );
                    log::info!("forgot {name} (by {})", by(from));
                } else {
                    return fail(out, format_args!("{asked} is not remembered"));
                }
            }
            Command::Members => self.list_members(reply, out),
            Command::Help => {
                for line in console::HELP {
                    out.console(reply, format_args!("{line}"));
                }
            }
        }
        CommandOutcome::Done
    }

    /// `approve`/`deny` of one join, the oldest, or all of them (here and, under `--cluster`,
    /// on the servers where they wait).
    fn decide(
        &mut self,
        from: ConsoleId,
        target: Target<'_>,
        approve: bool,
        now: Now,
        out: &mut impl Outbox,
    ) -> CommandOutcome {
        let reply = Audience::One(from);
        let verb = if approve { "approve" } else { "deny" };
        let local: Vec<ConnId> = match target {
            Target::All => self.room.pending().collect(),
            Target::Oldest => self.room.oldest_pending().into_iter().collect(),
            Target::Named(n) => self
                .waiting_named(n)
                .map(|(id, _)| id)
                .into_iter()
                .collect(),
        };
        let remote = match target {
            Target::All => self.remote_joins(),
            Target::Oldest if local.is_empty() => self.remote_join(None).into_iter().collect(),
            Target::Named(n) if local.is_empty() => self.remote_join(Some(n)).into_iter().collect(),
            _ => Vec::new(),
        };
        if local.is_empty() && remote.is_empty() {
            let text = match target {
                Target::Named(n) => format!("nobody named {} is waiting", sanitize(n)),
                _ => "nobody is waiting".to_owned(),
            };
            out.console(reply, format_args!("error: {text}"));
            return CommandOutcome::Failed;
        }
        for id in local {
            let Some(Phase::Waiting { name, .. }) = self.session(id).map(|s| &s.phase) else {
                continue;
            };
            let name = Rc::clone(name);
            self.decide_one(id, &name, approve, &by(from), now, out);
        }
        let asker = self.asker(from);
        for join in remote {
            let (server, name) = (join.server.to_string(), join.name.to_string());
            let event = if approve {
                Event::Approve {
                    server,
                    name,
                    by: asker.clone(),
                }
            } else {
                Event::Deny {
                    server,
                    name,
                    by: asker.clone(),
                }
            };
            self.publish(|| event, now, out);
            out.console(
                reply,
                format_args!(
                    "{verb} {}: asked server {}, where it waits",
                    join.name, join.server
                ),
            );
        }
        CommandOutcome::Done
    }

    /// Admits or refuses one waiting join, announcing and logging who decided.
    fn decide_one(
        &mut self,
        id: ConnId,
        name: &str,
        approve: bool,
        by: &str,
        now: Now,
        out: &mut impl Outbox,
    ) {
        if approve {
            self.admit(id, name, Some(by), now, out);
            log::info!("approved {name} (by {by})");
        } else {
            self.deny(id, "the operator refused you", true, now, out);
            out.console(Audience::All, format_args!("denied {name} (by {by})"));
            log::info!("denied {name} (by {by})");
        }
    }

    /// `who`: the members sorted by name (any case), each with its address, transport and
    /// time in the room; members on other servers with their server.
    fn console_who(&self, reply: Audience, now: Now, out: &mut impl Outbox) {
        out.console(reply, format_args!("online: {}", self.everyone()));
        let mut rows: Vec<(String, String)> = Vec::new();
        for &id in self.room.members() {
            if let Some(s) = self.session(id) {
                if let Phase::Member { name } = &s.phase {
                    let stay = s.joined.map_or_else(String::new, |t| {
                        format!(
                            ", {} in the room",
                            span(now.at.saturating_duration_since(t))
                        )
                    });
                    rows.push((
                        name.to_ascii_lowercase(),
                        format!("  {name} from {} ({}){stay}", s.addr, s.transport),
                    ));
                }
            }
        }
        for (name, server) in self.remote_members() {
            rows.push((
                name.to_ascii_lowercase(),
                format!("  {name} on server {server}"),
            ));
        }
        rows.sort();
        for (_, row) in rows {
            out.console(reply, format_args!("{row}"));
        }
    }

    /// `kick NAME [reason]`: here, or on the server the member is on.
    fn kick_command(
        &mut self,
        from: ConsoleId,
        name: &str,
        reason: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) -> CommandOutcome {
        let reply = Audience::One(from);
        let member = self.member_named(name);
        let reason = reason.map(|r| clip(&sanitize(r), MAX_BAN_REASON));
        if let Some((id, name)) = member {
            self.kick_member(id, &name, &by(from), reason.as_deref(), now, out);
            return CommandOutcome::Done;
        }
        if let Some(name) = self.detached_name(name) {
            // Remembered but not connected right now (v3): its token is voided.
            self.void_token(&name, out);
            out.console(Audience::All, format_args!("left {name} (kicked)"));
            out.console(
                Audience::All,
                format_args!("kicked {name} (by {})", by(from)),
            );
            log::info!("kicked {name} (by {})", by(from));
            return CommandOutcome::Done;
        }
        if let Some((name, server)) = self.remote_member(name) {
            let asker = self.asker(from);
            let event = Event::Kick {
                server: server.to_string(),
                name: name.to_string(),
                note: kick_note(&asker, reason.as_deref()),
            };
            self.publish(|| event, now, out);
            out.console(
                reply,
                format_args!("kick {name}: asked server {server}, where it is"),
            );
            return CommandOutcome::Done;
        }
        out.console(
            reply,
            format_args!("error: no member named {}", sanitize(name)),
        );
        CommandOutcome::Failed
    }

    /// How console `from` is named to other servers: `control:3 on server one`.
    fn asker(&self, from: ConsoleId) -> String {
        match self.remote.as_ref() {
            Some(r) => format!("{} on server {}", by(from), r.server),
            None => by(from),
        }
    }

    /// Another server's console (`asker`, empty when unknown) asked this one to approve or deny
    /// its waiting join `name`.
    pub(super) fn decide_by_name(
        &mut self,
        name: &str,
        approve: bool,
        asker: &str,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let Some((id, name)) = self.waiting_named(name) else {
            return;
        };
        let asker = if asker.is_empty() {
            "a console of another server"
        } else {
            asker
        };
        self.decide_one(id, &name, approve, asker, now, out);
    }

    /// Another server's console asked this one to kick its member `name`.
    /// Kicks member `id` called `name` for console `asker`, telling it (and, with a reason,
    /// the room) why; announced and logged.
    fn kick_member(
        &mut self,
        id: ConnId,
        name: &str,
        asker: &str,
        reason: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let why = match reason {
            Some(r) => format!("kicked by the operator: {r}"),
            None => "kicked by the operator".to_owned(),
        };
        if let Some(r) = reason {
            // The room learns why too, before the LEAVE.
            let text = format!("{name} was kicked by the operator: {r}");
            self.info_to_room(&text, Some(id), now, out);
        }
        let kicked = Farewell::Kicked {
            reason: reason.map(Box::from),
        };
        self.kick(id, &why, Some(kicked), now, out);
        self.void_token(name, out);
        let because = reason.map_or_else(String::new, |r| format!(": {r}"));
        out.console(
            Audience::All,
            format_args!("kicked {name} (by {asker}){because}"),
        );
        log::info!("kicked {name} (by {asker}){because}");
    }

    /// Another server's console asked this one to kick its member `name`; `note` says who and
    /// why ([`kick_note`]).
    pub(super) fn kick_by_name(&mut self, name: &str, note: &str, now: Now, out: &mut impl Outbox) {
        if let Some((id, name)) = self.member_named(name) {
            let (asker, reason) = split_kick_note(note);
            let asker = if asker.is_empty() {
                "a console of another server"
            } else {
                asker
            };
            let reason = reason.map(|r| clip(&sanitize(r), MAX_BAN_REASON));
            self.kick_member(id, &name, asker, reason.as_deref(), now, out);
        }
    }

    /// A member out: BYE `why` to it (typed as `farewell` when it is the operator's kick),
    /// `LEAVE <name> kicked` to the others.
    fn kick(
        &mut self,
        id: ConnId,
        why: &str,
        farewell: Option<Farewell>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        match farewell {
            Some(farewell) => {
                let bye = Outgoing::goodbye(why, farewell, &mut self.fmt);
                out.send(id, &bye);
            }
            None => self.send(id, &ServerMsg::Bye { text: why }, out),
        }
        self.gone(id, LeaveReason::Kicked, now, out);
        out.close(id);
    }

    /// An INFO line to the whole room (every member here but `except`, and every other server).
    fn info_to_room(
        &mut self,
        text: &str,
        except: Option<ConnId>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let line = self.format(&ServerMsg::Info { text });
        self.fan_out(&line, except, out);
        self.publish(
            || Event::Info {
                line: line.line().to_vec(),
            },
            now,
            out,
        );
    }

    /// Cuts every connection from `net` after it was banned: its members are kicked, its
    /// waiting joins denied, its other connections told and closed. Returns how many.
    pub(super) fn cut_banned(
        &mut self,
        net: IpNet,
        reason: Option<&str>,
        now: Now,
        out: &mut impl Outbox,
    ) -> usize {
        let reason = reason.map(|r| format!(": {}", clip(&sanitize(r), MAX_BAN_REASON)));
        let reason = reason.as_deref().unwrap_or("");
        let was = format!("your address was banned{reason}");
        let is = format!("your address is banned{reason}");
        let mut cut = 0;
        for key in 0..self.sessions.slots() {
            let Some(id) = self.id_at(key) else {
                continue;
            };
            let Some(session) = self.session(id).filter(|s| net.contains(s.addr.ip())) else {
                continue;
            };
            cut += 1;
            match session.phase {
                Phase::Member { .. } => self.kick(id, &was, None, now, out),
                Phase::Waiting { .. } | Phase::AwaitingName | Phase::Claiming { .. } => {
                    self.deny(id, &is, false, now, out);
                }
            }
        }
        cut
    }
}

/// How a console is named in announcements and the log: `stdin` or `control:N`.
pub(super) fn by(id: ConsoleId) -> String {
    if id == STDIN {
        "stdin".to_owned()
    } else {
        format!("control:{}", id.0)
    }
}

/// A ban for people: `10.0.0.0/8 (by control:3, 1h59m left{extra}): flooding`.
fn describe(ban: &Ban, now: std::time::SystemTime, extra: &str) -> String {
    let left = match ban.until {
        Some(until) => format!(
            ", {} left",
            span(until.duration_since(now).unwrap_or_default())
        ),
        None => String::new(),
    };
    let why = ban
        .reason
        .as_deref()
        .map_or_else(String::new, |r| format!(": {r}"));
    format!("{} (by {}{left}{extra}){why}", ban.net, ban.by)
}

/// `text` cut to at most `max` bytes at a character boundary.
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_control_console_s_quit_needs_its_own_second_quit_in_time() {
        let t = Instant::now();
        let (one, two) = (ConsoleId(1), ConsoleId(2));
        let mut g = QuitGuard::default();
        assert!(g.quit(None, STDIN, false, t), "stdin needs no confirmation");
        let asked = g.lapse();
        assert!(!g.quit(asked, one, false, t), "the first quit asks");
        let asked = g.lapse();
        assert!(
            !g.quit(asked, two, false, t),
            "another console's quit confirms nothing"
        );
        let asked = g.lapse();
        assert!(
            !g.quit(asked, one, false, t),
            "two asked last, so one is asked again"
        );
        let asked = g.lapse();
        assert!(g.quit(asked, one, false, t + Duration::from_millis(10)));
        let asked = g.lapse();
        assert!(!g.quit(asked, one, false, t));
        let late = t + QUIT_CONFIRM_WINDOW;
        let asked = g.lapse();
        assert!(!g.quit(asked, one, false, late), "too late: asked again");
        let asked = g.lapse();
        assert!(
            g.quit(asked, two, true, late),
            "quit now needs no confirmation"
        );
        g.quit(None, one, false, t);
        assert!(g.lapse().is_some());
        assert!(g.lapse().is_none(), "any other line withdraws the question");
    }
}
