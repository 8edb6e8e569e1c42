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
use std::net::IpAddr;

/// One operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `approve [name]`: admit the named waiting join, or the oldest.
    Approve(Option<&'a str>),
    /// `deny [name]`: refuse the named waiting join, or the oldest.
    Deny(Option<&'a str>),
    /// `pending`: list the waiting joins.
    Pending,
    /// `who`: list the members.
    Who,
    /// `kick <name>`: remove a member.
    Kick(&'a str),
    /// `say <text>`: an INFO line to every member.
    Say(&'a str),
    /// `ban <ip>`: cut off an address and refuse its connections until `unban`.
    Ban(IpAddr),
    /// `unban <ip>`: lift a ban.
    Unban(IpAddr),
    /// `bans`: list the banned addresses.
    Bans,
    /// `forget <name>`: void a remembered member's token (the operator must approve it again).
    Forget(&'a str),
    /// `members`: list the remembered members.
    Members,
    /// `quit`: BYE to everyone, then exit.
    Quit,
    /// `help`: list the commands.
    Help,
}

/// Why a console line is not a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError<'a> {
    /// The first word is no command.
    Unknown(&'a str),
    /// A command with wrong arguments; holds its usage.
    Usage(&'static str),
    /// `ban`/`unban` with something that is not an IP address.
    BadAddress(&'a str),
}

impl fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(word) => {
                let word = chat_common::sanitize::sanitize(word);
                write!(f, "unknown command {word:?}; type help")
            }
            CommandError::Usage(usage) => write!(f, "usage: {usage}"),
            CommandError::BadAddress(text) => {
                let text = chat_common::sanitize::sanitize(text);
                write!(f, "not an IP address: {text:?}")
            }
        }
    }
}

/// The lines `help` prints.
pub const HELP: [&str; 13] = [
    "approve [name]   admit a waiting join (no name: the oldest)",
    "deny [name]      refuse a waiting join (no name: the oldest)",
    "pending          list the joins waiting for approval",
    "who              list the members online",
    "kick <name>      remove a member from the room",
    "say <text>       send a notice to every member",
    "ban <ip>         cut off an address and refuse it until unban",
    "unban <ip>       lift a ban",
    "bans             list the banned addresses",
    "members          list the remembered members (who approved them, when, last seen)",
    "forget <name>    void a member's token: it must be approved again",
    "quit             say goodbye to everyone and stop the server",
    "help             this list",
];

/// Parses one console line. A blank line is `Ok(None)`. Command words are matched without
/// regard to ASCII case; surrounding whitespace is ignored.
pub fn parse(line: &str) -> Result<Option<Command<'_>>, CommandError<'_>> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let one_name = |usage: &'static str| -> Result<Option<&str>, CommandError<'_>> {
        match rest.split_whitespace().count() {
            0 => Ok(None),
            1 => Ok(Some(rest)),
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
        Ok(Some(Command::Approve(one_name("approve [name]")?)))
    } else if is("deny") {
        Ok(Some(Command::Deny(one_name("deny [name]")?)))
    } else if is("kick") {
        match one_name("kick <name>")? {
            Some(name) => Ok(Some(Command::Kick(name))),
            None => Err(CommandError::Usage("kick <name>")),
        }
    } else if is("say") {
        if rest.is_empty() {
            Err(CommandError::Usage("say <text>"))
        } else {
            Ok(Some(Command::Say(rest)))
        }
    } else if is("ban") || is("unban") {
        let usage = if is("ban") { "ban <ip>" } else { "unban <ip>" };
        let Some(text) = one_name(usage)? else {
            return Err(CommandError::Usage(usage));
        };
        let ip: IpAddr = text.parse().map_err(|_| CommandError::BadAddress(text))?;
        Ok(Some(if is("ban") {
            Command::Ban(ip)
        } else {
            Command::Unban(ip)
        }))
    } else if is("forget") {
        match one_name("forget <name>")? {
            Some(name) => Ok(Some(Command::Forget(name))),
            None => Err(CommandError::Usage("forget <name>")),
        }
    } else if is("members") {
        nothing(Command::Members, "members")
    } else if is("bans") {
        nothing(Command::Bans, "bans")
    } else if is("pending") {
        nothing(Command::Pending, "pending")
    } else if is("who") {
        nothing(Command::Who, "who")
    } else if is("quit") {
        nothing(Command::Quit, "quit")
    } else if is("help") || word == "?" {
        nothing(Command::Help, "help")
    } else {
        Err(CommandError::Unknown(word))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses() {
        assert_eq!(parse("approve"), Ok(Some(Command::Approve(None))));
        assert_eq!(parse("forget Bob"), Ok(Some(Command::Forget("Bob"))));
        assert_eq!(parse("MEMBERS"), Ok(Some(Command::Members)));
        assert_eq!(parse("forget"), Err(CommandError::Usage("forget <name>")));
        assert_eq!(parse("members x"), Err(CommandError::Usage("members")));
        assert_eq!(
            parse("approve bob"),
            Ok(Some(Command::Approve(Some("bob"))))
        );
        assert_eq!(parse("  DENY  bob "), Ok(Some(Command::Deny(Some("bob")))));
        assert_eq!(parse("deny"), Ok(Some(Command::Deny(None))));
        assert_eq!(parse("pending"), Ok(Some(Command::Pending)));
        assert_eq!(parse("who"), Ok(Some(Command::Who)));
        assert_eq!(parse("kick eve"), Ok(Some(Command::Kick("eve"))));
        assert_eq!(
            parse("say hello  all"),
            Ok(Some(Command::Say("hello  all")))
        );
        assert_eq!(parse("quit"), Ok(Some(Command::Quit)));
        assert_eq!(
            parse("ban 127.0.0.2"),
            Ok(Some(Command::Ban("127.0.0.2".parse().unwrap())))
        );
        assert_eq!(
            parse("UNBAN ::1"),
            Ok(Some(Command::Unban("::1".parse().unwrap())))
        );
        assert_eq!(parse("bans"), Ok(Some(Command::Bans)));
        assert_eq!(parse("help"), Ok(Some(Command::Help)));
        assert_eq!(parse("?"), Ok(Some(Command::Help)));
        assert_eq!(
            parse("approve\tbob"),
            Ok(Some(Command::Approve(Some("bob"))))
        );
    }

    #[test]
    fn blank_lines_are_nothing() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   \t "), Ok(None));
    }

    #[test]
    fn wrong_arguments_give_usage() {
        assert_eq!(parse("kick"), Err(CommandError::Usage("kick <name>")));
        assert_eq!(parse("kick a b"), Err(CommandError::Usage("kick <name>")));
        assert_eq!(
            parse("approve a b"),
            Err(CommandError::Usage("approve [name]"))
        );
        assert_eq!(parse("say"), Err(CommandError::Usage("say <text>")));
        assert_eq!(parse("quit now"), Err(CommandError::Usage("quit")));
        assert_eq!(parse("ban"), Err(CommandError::Usage("ban <ip>")));
        assert_eq!(
            parse("ban 1.2.3.4 5.6.7.8"),
            Err(CommandError::Usage("ban <ip>"))
        );
        assert_eq!(
            parse("ban nonsense"),
            Err(CommandError::BadAddress("nonsense"))
        );
        assert_eq!(
            parse("ban x\u{1b}").unwrap_err().to_string(),
            "not an IP address: \"x\""
        );
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
