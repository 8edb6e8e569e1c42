//! What an admitted member's line does: room messages, actions, privates, renames, `/who`,
//! `/help`, leaving.
//!
//! The line is sanitized first (control, bidi and separator characters never reach anyone), a
//! blank line is ignored, and every refusal is one `ERROR` line to the sender alone.

use std::fmt::Write as _;
use std::rc::Rc;

use chat_common::protocol::{
    parse_request, validate_name, ErrorCode, LeaveReason, Request, ServerMsg, HELP_LINES,
};
use chat_common::sanitize::{is_blank, sanitize};

use super::bus::Event;
use super::{Audience, ConnId, Core, Now, Outbox, Phase};
use crate::config::WHO_LINE_BYTES;

impl Core {
    /// One line of a member named `name`.
    pub(super) fn request(
        &mut self,
        id: ConnId,
        name: &Rc<str>,
        line: &str,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let clean = sanitize(line);
        if is_blank(&clean) {
            return;
        }
        match parse_request(&clean) {
            Err(e) => self.send_error(id, e.code(), &e.to_string(), out),
            Ok(Request::Say { color, text }) => {
                let msg = ServerMsg::Msg {
                    from: name,
                    color,
                    text,
                };
                self.relay(id, name, &msg, now, out);
            }
            Ok(Request::Me { text }) => {
                self.relay(id, name, &ServerMsg::Act { from: name, text }, now, out);
            }
            Ok(Request::Private { to, color, text }) => {
                // A connected member; one within its resume window (kept for it, replayed on
                // its resume); or a member of another server (kept for its sender's resume and
                // published once durable, durability.rs). Each gets an id, as any private.
                let found = self
                    .member_named(to)
                    .map(|(target, to)| (Some(target), to))
                    .or_else(|| self.detached_name(to).map(|to| (None, to)))
                    .or_else(|| self.remote_member(to).map(|(to, _)| (None, to)));
                let Some((target, to)) = found else {
                    let text = format!("nobody named {to} is in the room");
                    return self.send_error(id, ErrorCode::NoSuchUser, &text, out);
                };
                let msg = ServerMsg::Priv {
                    from: name,
                    to: &to,
                    color,
                    text,
                };
                self.private_v3(id, target, &to, &msg, now, out);
            }
            Ok(Request::Nick { name: wanted }) => {
                // The name as typed, not as sanitized: a control or bidi character in it is
                // refused (`ERROR bad-name`), never stripped into someone else's name.
                let typed = match parse_request(line) {
                    Ok(Request::Nick { name }) => name,
                    _ => wanted,
                };
                self.rename(id, name, typed, now, out);
            }
            Ok(Request::Leave) => {
                self.send(id, &ServerMsg::Bye { text: "goodbye" }, out);
                self.gone(id, LeaveReason::Left, now, out);
                out.close(id);
            }
            Ok(Request::Who) => self.who(id, out),
            Ok(Request::Help) => {
                for line in HELP_LINES {
                    self.send(id, &ServerMsg::Info { text: line }, out);
                }
            }
        }
    }

    /// A room message (`MSG` or `ACT`): formatted once, to every other member, into the history
    /// and, with a cluster, to the other servers; all the same bytes.
    fn relay(
        &mut self,
        from: ConnId,
        speaker: &Rc<str>,
        msg: &ServerMsg<'_>,
        now: Now,
        out: &mut impl Outbox,
    ) {
        // Given an id and logged; delivered now, or once the store has it (chat/durability.rs).
        self.relay_v3(from, speaker, msg, now, out);
    }

    /// `/nick`: the name rule, uniqueness (a change of case is the member's own name), the
    /// rename allowance, then `NICK old new` to every member, the renamer included.
    fn rename(&mut self, id: ConnId, old: &Rc<str>, wanted: &str, now: Now, out: &mut impl Outbox) {
        let new = match validate_name(wanted) {
            Ok(new) => new,
            Err(e) => return self.send_error(id, ErrorCode::BadName, &e.to_string(), out),
        };
        if new == &**old {
            let text = format!("you are already called {new}");
            return self.send(id, &ServerMsg::Info { text: &text }, out);
        }
        let case_only = new.eq_ignore_ascii_case(old);
        if self.room.holder(new).is_some_and(|holder| holder != id)
            || (!case_only && self.detached_name(new).is_some())
            || (!case_only && self.remote.as_ref().is_some_and(|r| r.taken(new)))
        {
            let text = format!("the name {new} is taken");
            return self.send_error(id, ErrorCode::NameTaken, &text, out);
        }
        let ip = self.session(id).map(|s| s.addr.ip());
        if let Some(ip) = ip.filter(|_| !case_only) {
            if let Err(why) = self.admission.may_take_name(ip, new, now.at) {
                return self.send_error(id, ErrorCode::NameTaken, &why.to_string(), out);
            }
        }
        if self.renaming(id) {
            let text = "a rename is already under way";
            return self.send_error(id, ErrorCode::RateLimited, text, out);
        }
        let Some(session) = self.session_mut(id) else {
            return;
        };
        if let Err(wait) = session.take_rename(now.at) {
            let text = format!("too many renames; try again in {} s", wait.as_secs() + 1);
            return self.send_error(id, ErrorCode::RateLimited, &text, out);
        }
        if self.remote.is_some() && !case_only {
            // The new name must be the cluster's too: the answer comes back as an event.
            let purpose = super::remote::Purpose::Rename {
                old: Rc::clone(old),
            };
            return self.claim(id, new, purpose, out);
        }
        self.apply_rename(id, old, new, now, out);
    }

    /// The rename itself, once the new name is known to be free.
    pub(super) fn apply_rename(
        &mut self,
        id: ConnId,
        old: &Rc<str>,
        new: &str,
        now: Now,
        out: &mut impl Outbox,
    ) {
        let Some(session) = self.session_mut(id) else {
            return;
        };
        let new: Rc<str> = Rc::from(new);
        session.phase = Phase::Member {
            name: Rc::clone(&new),
        };
        let ip = session.addr.ip();
        if !new.eq_ignore_ascii_case(old) {
            self.admission.hold_name(old, ip, now.at);
        }
        self.room.rename(old, &new, id);
        self.rename_token(old, &new);
        self.publish(
            || Event::Nick {
                old: old.to_string(),
                new: new.to_string(),
                owner: Some(ip.to_string()),
            },
            now,
            out,
        );
        self.announce_in_room(&ServerMsg::Nick { old, new: &new }, old, now, out);
        out.console(Audience::All, format_args!("renamed {old} {new}"));
    }

    /// `/who`: the members' current names, sorted, in INFO lines of at most `WHO_LINE_BYTES`.
    pub(super) fn who(&mut self, id: ConnId, out: &mut impl Outbox) {
        let mut names = self.names();
        names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
        let mut text = format!("online ({}):", names.len());
        let mut first = true;
        for n in &names {
            if text.len() + n.len() + 2 > WHO_LINE_BYTES {
                self.send(id, &ServerMsg::Info { text: &text }, out);
                text.clear();
                first = true;
            }
            let sep = if first { " " } else { ", " };
            let _ = write!(text, "{sep}{n}");
            first = false;
        }
        self.send(id, &ServerMsg::Info { text: &text }, out);
    }

    /// Every member's name: this server's connected ones, those kept within their resume
    /// window (they never left), and (under `--cluster`) the others'. `/who` sorts them; a
    /// dialect that lists the room itself (IRC's `NAMES` and `WHO`) uses them as they are.
    /// `Core::everyone` is their count.
    pub fn names(&self) -> Vec<Rc<str>> {
        let mut names: Vec<Rc<str>> = self.member_names().collect();
        names.extend(self.detached_names());
        names.extend(self.remote_names());
        names
    }

    /// The members' current names, in the room's order.
    pub(super) fn member_names(&self) -> impl Iterator<Item = Rc<str>> + '_ {
        self.room
            .members()
            .iter()
            .filter_map(|&m| match self.session(m).map(|s| &s.phase) {
                Some(Phase::Member { name }) => Some(Rc::clone(name)),
                _ => None,
            })
    }
}
