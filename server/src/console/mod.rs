//! The operator's consoles: command parsing (pure, here), what a command does (the core:
//! `crate::chat`), the standard console's non-blocking input and output ([`io`]) and the
//! remote consoles on a Unix socket ([`control`]).
//!
//! The reactor reads each console without blocking, frames it into lines and hands each line to
//! [`parse`]; the core executes the command. Parsing never does I/O, so it is unit-tested and
//! fuzzed on its own.

pub mod control;
pub mod io;

use std::fmt;
use std::time::Duration;

use crate::chat::bans::{BadNet, IpNet};

/// Whom `approve` or `deny` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// No name: the oldest waiting join.
    Oldest,
    /// `all`: every waiting join (one named `all` included).
    All,
    /// That name.
    Named(&'a str),
}

/// One operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `approve [name|all]`: admit the named waiting join, every one, or the oldest.
    Approve(Target<'a>),
    /// `deny [name|all]`: refuse the named waiting join, every one, or the oldest.
    Deny(Target<'a>),
    /// `pending`: list the waiting joins.
    Pending,
    /// `who`: list the members, sorted by name.
    Who,
    /// `kick <name> [reason]`: remove a member, telling it and the room why.
    Kick {
        /// The member.
        name: &'a str,
        /// Why, if the operator said.
        reason: Option<&'a str>,
    },
    /// `say <text>`: an INFO line to every member.
    Say(&'a str),
    /// `ban <ip|cidr> [duration] [reason]`: cut off an address or range and refuse it.
    Ban {
        /// What to ban.
        net: IpNet,
        /// For how long; `None`: until `unban`.
        duration: Option<Duration>,
        /// Why, if the operator said.
        reason: Option<&'a str>,
    },
    /// `unban <ip|cidr>`: lift a ban.
    Unban(IpNet),
    /// `bans`: list the bans.
    Bans,
    /// `forget <name>`: void a remembered member's token (the operator must approve it again).
    Forget(&'a str),
    /// `members`: list the remembered members.
    Members,
    /// `quit [now]`: BYE to everyone, then exit (from a control console, `quit` asks first).
    Quit {
        /// `quit now`: no question asked.
        now: bool,
    },
    /// `exit`: close this console only.
    Exit,
    /// `help`: list the commands.
    Help,
}

/// Why a console line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError<'a> {
    /// The first word is no command.
    Unknown(&'a str),
    /// A command with wrong arguments; holds its usage.
    Usage(&'static str),
    /// `ban`/`unban` with something that is not an address or range.
    BadAddress(BadNet),
}

impl fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(word) => {
                let word = chat_common::sanitize::sanitize(word);
                write!(f, "unknown command {word:?}; type help")
            }
            CommandError::Usage(usage) => write!(f, "usage: {usage}"),
            CommandError::BadAddress(bad) => write!(f, "{bad}"),
        }
    }
}

/// The lines `help` prints.
pub const HELP: [&str; 15] = [
    "approve [name|all]   admit a waiting join (no name: the oldest; all: every one)",
    "deny [name|all]      refuse a waiting join (no name: the oldest; all: every one)",
    "pending              list the joins waiting for approval",
    "who                  list the members online: address, transport, time in the room",
    "kick <name> [why]    remove a member from the room; the member and the room see why",
    "say <text>           send a notice to every member",
    "ban <ip|cidr> [for] [why]  cut off an address or range (10.0.0.0/8) until unban, or for 30m, 12h, 7d",
    "unban <ip|cidr>      lift a ban",
    "bans                 list the bans: who made each, why, how long it has left",
    "members              list the remembered members (who approved them, when, last seen)",
    "forget <name>        void a member's token: it must be approved again",
    "quit [now]           say goodbye to everyone and stop the server (a control console confirms)",
    "exit                 close this console only (the server goes on)",
    "help                 this list",
    "(every decision is announced and logged with the console that made it)",
];

/// Parses one console line. A blank line is `Ok(None)`. Command words are matched without
/// regard to ASCII case; surrounding whitespace is ignored.
pub fn parse(line: &str) -> Result<Option<Command<'_>>, CommandError<'_>> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let (word, rest) = split_word(line);
    let target = |usage: &'static str| -> Result<Target<'_>, CommandError<'_>> {
        match rest.split_whitespace().count() {
            0 => Ok(Target::Oldest),
            1 if rest.eq_ignore_ascii_case("all") => Ok(Target::All),
            1 => Ok(Target::Named(rest)),
            _ => Err(CommandError::Usage(usage)),
        }
    };
    let nothing = |cmd: Command<'static>, usage: &'static str| {
        if rest.is_empty() {
            Ok(Some(cmd))
        } else {
            Err(CommandError::Usage(usage))
        }
    };
    let is = |name: &str| word.eq_ignore_ascii_case(name);
    if is("approve") {
        Ok(Some(Command::Approve(target("approve [name|all]")?)))
    } else if is("deny") {
        Ok(Some(Command::Deny(target("deny [name|all]")?)))
    } else if is("kick") {
        let (name, reason) = split_word(rest);
        if name.is_empty() {
            return Err(CommandError::Usage("kick <name> [reason]"));
        }
        Ok(Some(Command::Kick {
            name,
            reason: nonempty(reason),
        }))
    } else if is("say") {
        if rest.is_empty() {
            Err(CommandError::Usage("say <text>"))
        } else {
            Ok(Some(Command::Say(rest)))
        }
    } else if is("ban") {
        const USAGE: &str = "ban <ip|cidr> [duration: 90s, 30m, 12h, 7d, 2w] [reason]";
        let (text, rest) = split_word(rest);
        if text.is_empty() {
            return Err(CommandError::Usage(USAGE));
        }
        let net: IpNet = text.parse().map_err(CommandError::BadAddress)?;
        let (maybe, after) = split_word(rest);
        let starts_like_duration = maybe.bytes().next().is_some_and(|b| b.is_ascii_digit());
        let (duration, reason) = match crate::chat::bans::parse_duration(maybe) {
            Some(d) => (Some(d), after),
            None if starts_like_duration => return Err(CommandError::Usage(USAGE)),
            None => (None, rest),
        };
        Ok(Some(Command::Ban {
            net,
            duration,
            reason: nonempty(reason),
        }))
    } else if is("unban") {
        if rest.is_empty() || rest.split_whitespace().count() > 1 {
            return Err(CommandError::Usage("unban <ip|cidr>"));
        }
        let net: IpNet = rest.parse().map_err(CommandError::BadAddress)?;
        Ok(Some(Command::Unban(net)))
    } else if is("forget") {
        let (name, more) = split_word(rest);
        if name.is_empty() || !more.is_empty() {
            return Err(CommandError::Usage("forget <name>"));
        }
        Ok(Some(Command::Forget(name)))
    } else if is("members") {
        nothing(Command::Members, "members")
    } else if is("bans") {
        nothing(Command::Bans, "bans")
    } else if is("pending") {
        nothing(Command::Pending, "pending")
    } else if is("who") {
        nothing(Command::Who, "who")
    } else if is("quit") {
        match rest {
            "" => Ok(Some(Command::Quit { now: false })),
            r if r.eq_ignore_ascii_case("now") => Ok(Some(Command::Quit { now: true })),
            _ => Err(CommandError::Usage("quit [now]")),
        }
    } else if is("exit") {
        nothing(Command::Exit, "exit")
    } else if is("help") || word == "?" {
        nothing(Command::Help, "help")
    } else {
        Err(CommandError::Unknown(word))
    }
}

/// `text`, or `None` when it is empty.
fn nonempty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// The first word and the rest, trimmed.
fn split_word(text: &str) -> (&str, &str) {
    match text.trim().split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (text.trim(), ""),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn every_command_parses() {
        assert_eq!(parse("approve"), Ok(Some(Command::Approve(Target::Oldest))));
        assert_eq!(parse("forget Bob"), Ok(Some(Command::Forget("Bob"))));
        assert_eq!(parse("MEMBERS"), Ok(Some(Command::Members)));
        assert_eq!(parse("forget"), Err(CommandError::Usage("forget <name>")));
        assert_eq!(parse("members x"), Err(CommandError::Usage("members")));
        assert_eq!(
            parse("approve bob"),
            Ok(Some(Command::Approve(Target::Named("bob"))))
        );
        assert_eq!(
            parse("approve ALL"),
            Ok(Some(Command::Approve(Target::All)))
        );
        assert_eq!(parse("deny all"), Ok(Some(Command::Deny(Target::All))));
        assert_eq!(
            parse("  DENY  bob "),
            Ok(Some(Command::Deny(Target::Named("bob"))))
        );
        assert_eq!(parse("pending"), Ok(Some(Command::Pending)));
        assert_eq!(parse("who"), Ok(Some(Command::Who)));
        assert_eq!(
            parse("kick eve"),
            Ok(Some(Command::Kick {
                name: "eve",
                reason: None
            }))
        );
        assert_eq!(
            parse("kick eve  spamming the room "),
            Ok(Some(Command::Kick {
                name: "eve",
                reason: Some("spamming the room")
            }))
        );
        assert_eq!(
            parse("say hello  all"),
            Ok(Some(Command::Say("hello  all")))
        );
        assert_eq!(parse("quit"), Ok(Some(Command::Quit { now: false })));
        assert_eq!(parse("quit NOW"), Ok(Some(Command::Quit { now: true })));
        assert_eq!(parse("exit"), Ok(Some(Command::Exit)));
        assert_eq!(
            parse("ban 127.0.0.2"),
            Ok(Some(Command::Ban {
                net: net("127.0.0.2"),
                duration: None,
                reason: None
            }))
        );
        assert_eq!(
            parse("ban 127.0.0.1/8 2h flooding"),
            Ok(Some(Command::Ban {
                net: net("127.0.0.0/8"),
                duration: Some(Duration::from_secs(7200)),
                reason: Some("flooding")
            }))
        );
        assert_eq!(
            parse("ban ::1 for no reason"),
            Ok(Some(Command::Ban {
                net: net("::1"),
                duration: None,
                reason: Some("for no reason")
            }))
        );
        assert_eq!(
            parse("UNBAN 10.0.0.0/8"),
            Ok(Some(Command::Unban(net("10.0.0.0/8"))))
        );
        assert_eq!(parse("bans"), Ok(Some(Command::Bans)));
        assert_eq!(parse("help"), Ok(Some(Command::Help)));
        assert_eq!(parse("?"), Ok(Some(Command::Help)));
    }

    #[test]
    fn blank_lines_are_nothing() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   \t "), Ok(None));
    }

    #[test]
    fn wrong_arguments_give_usage() {
        assert_eq!(
            parse("kick"),
            Err(CommandError::Usage("kick <name> [reason]"))
        );
        assert_eq!(
            parse("approve a b"),
            Err(CommandError::Usage("approve [name|all]"))
        );
        assert_eq!(parse("say"), Err(CommandError::Usage("say <text>")));
        assert_eq!(parse("quit later"), Err(CommandError::Usage("quit [now]")));
        assert_eq!(parse("exit now"), Err(CommandError::Usage("exit")));
        assert!(matches!(parse("ban"), Err(CommandError::Usage(_))));
        assert!(matches!(
            parse("ban 1.2.3.4 400d"),
            Err(CommandError::Usage(_))
        ));
        assert!(matches!(
            parse("ban 1.2.3.4 5x"),
            Err(CommandError::Usage(_))
        ));
        assert_eq!(
            parse("unban 1.2.3.4 5.6.7.8"),
            Err(CommandError::Usage("unban <ip|cidr>"))
        );
        let err = parse("ban 300.1.2.3/40").unwrap_err().to_string();
        assert!(
            err.starts_with("not an IP address or CIDR range: \"300.1.2.3/40\""),
            "{err}"
        );
        assert!(!parse("ban x\u{1b}")
            .unwrap_err()
            .to_string()
            .contains('\u{1b}'));
    }

    #[test]
    fn unknown_commands_are_named_without_control_characters() {
        let err = parse("dance now").unwrap_err();
        assert_eq!(err, CommandError::Unknown("dance"));
        assert_eq!(err.to_string(), "unknown command \"dance\"; type help");
        let shown = parse("x\u{1b}[2J").unwrap_err().to_string();
        assert!(!shown.contains('\u{1b}'), "{shown:?}");
    }
}
