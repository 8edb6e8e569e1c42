//! The conversation view, a "query" as irssi and weechat call it (issue 25): `/query NAME`
//! follows and answers the privates with one member without the room's noise. While it is
//! open a plain line (or a pasted block, or `/color COLOR TEXT`) goes to that member as a
//! private; commands stay commands. The full screen shows only the conversation (and the
//! client's notices and errors) and counts what the room said meanwhile; line mode keeps printing
//! everything and shows the name in its prompt. This file owns which entries belong to the
//! conversation, how a typed line is addressed, and the count; it never touches a terminal.

use chat_common::protocol::{parse_request, validate_name, Request};

use super::compose::Refusal;
use super::store::{Entry, Kind};

/// Earlier names of the member remembered at most, so the conversation still shows what was
/// said under them after renames.
pub const MAX_EARLIER_NAMES: usize = 16;

/// An open conversation with one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The member, as typed in `/query` (names compare without regard to ASCII case).
    with: String,
    /// The member's earlier names since the conversation opened (at most
    /// [`MAX_EARLIER_NAMES`], the newest), whose privates it keeps showing.
    earlier: Vec<String>,
    /// Messages from others that the conversation does not show, since it opened (or since
    /// the view last showed the room).
    unread: usize,
}

impl Query {
    /// A conversation with `name`, or why not (a name no member can have).
    pub fn open(name: &str) -> Result<Query, Refusal> {
        match validate_name(name) {
            Ok(name) => Ok(Query {
                with: name.to_owned(),
                earlier: Vec::new(),
                unread: 0,
            }),
            Err(why) => Err(Refusal(format!("/query: {why}"))),
        }
    }

    /// The member was renamed: the conversation follows them.
    pub fn renamed(&mut self, old: &str, new: &str) {
        if self.is_with(old) {
            if self.earlier.len() >= MAX_EARLIER_NAMES {
                self.earlier.remove(0);
            }
            self.earlier
                .push(std::mem::replace(&mut self.with, new.to_owned()));
        }
    }

    /// The member this conversation is with.
    pub fn with(&self) -> &str {
        &self.with
    }

    /// Whether `name` is this conversation's member.
    pub fn is_with(&self, name: &str) -> bool {
        self.with.eq_ignore_ascii_case(name)
    }

    /// Whether `name` is the member's, now or earlier in the conversation.
    fn was_with(&self, name: &str) -> bool {
        self.is_with(name) || self.earlier.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Whether the conversation view shows `entry`: the privates between you and the member
    /// (either way), notices and errors (answers to what you typed, the connection lost) and
    /// day lines; never the room's messages, actions, joins, leaves or renames.
    pub fn shows(&self, entry: &Entry) -> bool {
        match &entry.kind {
            Kind::Private { from, to } => {
                if entry.own {
                    self.was_with(to)
                } else {
                    self.was_with(from)
                }
            }
            Kind::Error | Kind::Notice | Kind::Separator | Kind::Unparsed => true,
            Kind::Msg { .. } | Kind::Act { .. } | Kind::Event | Kind::Rename => false,
        }
    }

    /// Counts `entry`, just stored, when it is a message from someone else that the
    /// conversation does not show.
    pub fn count(&mut self, entry: &Entry) {
        if entry.has_markup() && !entry.own && !entry.history && !self.shows(entry) {
            self.unread = self.unread.saturating_add(1);
        }
    }

    /// Messages elsewhere since the conversation opened.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// The input addressed to the member: a plain first line (or `/color COLOR TEXT`, or
    /// `//text`) becomes `/private NAME ...`, and the lines after it follow it as a pasted
    /// block to a private does (`compose.rs`). Commands are left as they are, but `/me`,
    /// which the protocol cannot send privately, is refused rather than said to the room.
    pub fn address(&self, input: &str) -> Result<String, Refusal> {
        // The first line that says something decides, as in `compose::plan`.
        let start = input
            .split('\n')
            .position(|l| !l.trim().is_empty())
            .unwrap_or(0);
        let mut lines: Vec<&str> = input.split('\n').collect();
        let Some(first) = lines.get(start).copied() else {
            return Ok(input.to_owned());
        };
        let first = first.trim_start();
        let addressed = match parse_request(first) {
            Ok(Request::Say { color: None, text }) => {
                if text
                    .split(' ')
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("/color"))
                {
                    return Err(Refusal(
                        "a private message without a color cannot start with /color; \
                         type /color COLOR TEXT to send it in a color"
                            .to_owned(),
                    ));
                }
                format!("/private {} {text}", self.with)
            }
            Ok(Request::Say {
                color: Some(color),
                text,
            }) => format!("/private {} /color {color} {text}", self.with),
            Ok(Request::Me { .. }) => {
                return Err(Refusal(format!(
                    "/me cannot go privately to {}: the protocol has no private action \
                     (/query alone goes back to the room)",
                    self.with
                )))
            }
            _ => return Ok(input.to_owned()),
        };
        lines[start] = &addressed;
        Ok(lines.join("\n"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::core::compose::{plan, Plan};

    fn private(from: &str, to: &str, own: bool) -> Entry {
        let mut e = Entry::new(
            "10:00",
            Kind::Private {
                from: from.into(),
                to: to.into(),
            },
            "psst",
        );
        e.own = own;
        e
    }

    #[test]
    fn the_conversation_shows_the_privates_with_one_member_and_errors_only() {
        let q = Query::open("Bob").unwrap();
        assert!(q.shows(&private("bob", "me", false)));
        assert!(q.shows(&private("me", "BOB", true)));
        assert!(!q.shows(&private("carol", "me", false)));
        assert!(!q.shows(&private("me", "carol", true)));
        assert!(!q.shows(&Entry::new("", Kind::Msg { from: "bob".into() }, "hi all")));
        assert!(!q.shows(&Entry::new("", Kind::Event, "bob joined")));
        assert!(!q.shows(&Entry::new("", Kind::Rename, "al is now known as b")));
        assert!(q.shows(&Entry::new("", Kind::Error, "lost the connection")));
        assert!(q.shows(&Entry::new("", Kind::Notice, "online (2): bob, me")));
        assert!(Query::open("bad name!").is_err());
    }

    #[test]
    fn what_the_room_says_meanwhile_is_counted() {
        let mut q = Query::open("bob").unwrap();
        q.count(&Entry::new("", Kind::Msg { from: "al".into() }, "hi"));
        q.count(&private("carol", "me", false));
        q.count(&private("bob", "me", false));
        q.count(&Entry::new("", Kind::Event, "zed joined"));
        let mut own = Entry::new("", Kind::Msg { from: "me".into() }, "mine");
        own.own = true;
        q.count(&own);
        assert_eq!(q.unread(), 2);
    }

    #[test]
    fn plain_lines_go_to_the_member_and_commands_stay_commands() {
        let q = Query::open("bob").unwrap();
        let sent = |input: &str| match plan(&q.address(input).unwrap()).unwrap() {
            Plan::Send(lines) => lines,
            other => panic!("{other:?}"),
        };
        assert_eq!(sent("hi there"), ["/private bob hi there"]);
        assert_eq!(sent("//etc/hosts"), ["/private bob /etc/hosts"]);
        assert_eq!(sent("/color red hot"), ["/private bob /color red hot"]);
        assert_eq!(
            sent("\nfirst\n/leave\nthird"),
            [
                "/private bob first",
                "/private bob /leave",
                "/private bob third"
            ]
        );
        assert_eq!(sent("/who"), ["/who"]);
        assert_eq!(sent("/private carol x"), ["/private carol x"]);
        assert_eq!(plan(&q.address("/leave").unwrap()).unwrap(), Plan::Leave);
        assert!(q.address("/me waves").is_err());
        assert!(q.address("//color red x").is_err());
    }
}
