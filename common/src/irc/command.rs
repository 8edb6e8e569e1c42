//! What a registered IRC member's line asks for: a [`Command`] with its parameters checked, or
//! the numeric that refuses it ([`CommandError`]). This module owns the commands' shapes (which
//! parameters each needs) and nothing of what they do to the room: the server's IRC dialect
//! maps each command onto the room's requests and answers. It never panics.

use std::fmt;

use super::message::Message;
use super::numeric::*;

/// One command of a registered member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `PRIVMSG target :text` (`notice` for `NOTICE`, which never gets an error reply).
    Message {
        /// A channel or a nick.
        target: &'a str,
        /// The text, with formatting codes and maybe CTCP.
        text: &'a str,
        /// Whether it was `NOTICE`.
        notice: bool,
    },
    /// `JOIN chan[,chan] [keys]`; `JOIN 0` leaves every channel.
    Join {
        /// The channel list as sent.
        channels: &'a str,
    },
    /// `PART chan[,chan] [:reason]`.
    Part {
        /// The channel list as sent.
        channels: &'a str,
    },
    /// `QUIT [:reason]`.
    Quit,
    /// `NICK nick`.
    Nick {
        /// The wanted nick (not judged yet).
        nick: &'a str,
    },
    /// `NAMES [chan]`.
    Names {
        /// The channel asked about, if any.
        channel: Option<&'a str>,
    },
    /// `WHO [mask]`.
    Who {
        /// The mask (a channel or a nick), if any.
        mask: Option<&'a str>,
    },
    /// `WHOIS [server] nick`.
    Whois {
        /// The nick asked about.
        nick: &'a str,
    },
    /// `MODE target [modes [args]]`.
    Mode {
        /// A channel or a nick.
        target: &'a str,
        /// The mode string, if any (`b` asks for the ban list).
        modes: Option<&'a str>,
    },
    /// `TOPIC chan [:topic]`.
    Topic {
        /// The channel.
        channel: &'a str,
        /// A new topic, when one is given.
        topic: Option<&'a str>,
    },
    /// `KICK chan nick [:reason]` from a member: not allowed (operators kick from the console).
    Kick {
        /// The channel.
        channel: &'a str,
    },
    /// `PING token`.
    Ping {
        /// The token to send back.
        token: &'a str,
    },
    /// `PONG [token]`.
    Pong,
    /// `CAP ...` after registration.
    Cap,
    /// `AWAY [:text]`: accepted and ignored (`305`/`306`).
    Away {
        /// Whether a text was given (away) or not (back).
        away: bool,
    },
    /// `LUSERS`.
    Lusers,
    /// `MOTD`.
    Motd,
    /// `LIST`.
    List,
    /// `USERHOST`, `ISON`: asked by some clients; answered empty-handed.
    Userhost,
    /// `PASS`, `USER` after registration: `462`.
    Reregister,
    /// `TAGMSG` (typing notifications and reactions): dropped, as the room has no such thing.
    TagMsg,
    /// Anything else: `421`.
    Unknown(&'a str),
}

/// A command refused for its shape; the server answers with the numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError<'a> {
    /// `461`: the command needs more parameters; the command as sent.
    NeedMoreParams(&'a str),
    /// `411`: `PRIVMSG` with no recipient.
    NoRecipient(&'a str),
    /// `412`: `PRIVMSG` with no text.
    NoTextToSend,
}

impl CommandError<'_> {
    /// The numeric of the reply.
    pub fn numeric(&self) -> &'static str {
        match self {
            CommandError::NeedMoreParams(_) => ERR_NEEDMOREPARAMS,
            CommandError::NoRecipient(_) => ERR_NORECIPIENT,
            CommandError::NoTextToSend => ERR_NOTEXTTOSEND,
        }
    }

    /// The reply's middle parameter (the command), if it has one.
    pub fn subject(&self) -> Option<&str> {
        match self {
            CommandError::NeedMoreParams(c) => Some(c),
            CommandError::NoRecipient(_) | CommandError::NoTextToSend => None,
        }
    }
}

impl fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NeedMoreParams(_) => f.write_str("Not enough parameters"),
            CommandError::NoRecipient(c) => write!(f, "No recipient given ({c})"),
            CommandError::NoTextToSend => f.write_str("No text to send"),
        }
    }
}

/// Reads a registered member's line.
pub fn classify<'a>(msg: &Message<'a>) -> Result<Command<'a>, CommandError<'a>> {
    let p = |i: usize| msg.param(i).filter(|s| !s.is_empty());
    let need = |i: usize| p(i).ok_or(CommandError::NeedMoreParams(msg.command));
    let c = msg.command;
    let upper = |name: &str| c.eq_ignore_ascii_case(name);
    Ok(if upper("PRIVMSG") || upper("NOTICE") {
        let target = p(0).ok_or(CommandError::NoRecipient(c))?;
        let text = p(1).ok_or(CommandError::NoTextToSend)?;
        Command::Message {
            target,
            text,
            notice: upper("NOTICE"),
        }
    } else if upper("JOIN") {
        Command::Join { channels: need(0)? }
    } else if upper("PART") {
        Command::Part { channels: need(0)? }
    } else if upper("QUIT") {
        Command::Quit
    } else if upper("NICK") {
        Command::Nick { nick: need(0)? }
    } else if upper("NAMES") {
        Command::Names { channel: p(0) }
    } else if upper("WHO") {
        Command::Who { mask: p(0) }
    } else if upper("WHOIS") {
        // `WHOIS server nick` names the nick last.
        let nick = p(1).or(p(0)).ok_or(CommandError::NeedMoreParams(c))?;
        Command::Whois { nick }
    } else if upper("MODE") {
        Command::Mode {
            target: need(0)?,
            modes: p(1),
        }
    } else if upper("TOPIC") {
        Command::Topic {
            channel: need(0)?,
            topic: msg.param(1),
        }
    } else if upper("KICK") {
        need(1)?;
        Command::Kick { channel: need(0)? }
    } else if upper("PING") {
        Command::Ping { token: need(0)? }
    } else if upper("PONG") {
        Command::Pong
    } else if upper("CAP") {
        Command::Cap
    } else if upper("AWAY") {
        Command::Away {
            away: p(0).is_some(),
        }
    } else if upper("LUSERS") {
        Command::Lusers
    } else if upper("MOTD") {
        Command::Motd
    } else if upper("LIST") {
        Command::List
    } else if upper("USERHOST") || upper("ISON") {
        Command::Userhost
    } else if upper("PASS") || upper("USER") {
        Command::Reregister
    } else if upper("TAGMSG") {
        Command::TagMsg
    } else {
        Command::Unknown(c)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Result<Command<'_>, CommandError<'_>> {
        classify(&Message::parse(line).unwrap())
    }

    #[test]
    fn reads_the_commands_clients_send() {
        assert_eq!(
            cmd("PRIVMSG #chat :hello there"),
            Ok(Command::Message {
                target: "#chat",
                text: "hello there",
                notice: false
            })
        );
        assert_eq!(
            cmd("notice bob :psst"),
            Ok(Command::Message {
                target: "bob",
                text: "psst",
                notice: true
            })
        );
        assert_eq!(cmd("JOIN #chat"), Ok(Command::Join { channels: "#chat" }));
        assert_eq!(
            cmd("PART #chat :bye"),
            Ok(Command::Part { channels: "#chat" })
        );
        assert_eq!(cmd("QUIT :gone"), Ok(Command::Quit));
        assert_eq!(cmd("NICK al"), Ok(Command::Nick { nick: "al" }));
        assert_eq!(cmd("NAMES"), Ok(Command::Names { channel: None }));
        assert_eq!(
            cmd("WHO #chat"),
            Ok(Command::Who {
                mask: Some("#chat")
            })
        );
        assert_eq!(cmd("WHOIS srv bob"), Ok(Command::Whois { nick: "bob" }));
        assert_eq!(
            cmd("MODE #chat b"),
            Ok(Command::Mode {
                target: "#chat",
                modes: Some("b")
            })
        );
        assert_eq!(
            cmd("TOPIC #chat"),
            Ok(Command::Topic {
                channel: "#chat",
                topic: None
            })
        );
        assert_eq!(
            cmd("KICK #chat bob"),
            Ok(Command::Kick { channel: "#chat" })
        );
        assert_eq!(cmd("PING :x y"), Ok(Command::Ping { token: "x y" }));
        assert_eq!(cmd("AWAY"), Ok(Command::Away { away: false }));
        assert_eq!(cmd("USER a 0 * :b"), Ok(Command::Reregister));
        assert_eq!(cmd("FOO bar"), Ok(Command::Unknown("FOO")));
    }

    #[test]
    fn missing_parameters_are_refused() {
        assert_eq!(cmd("PRIVMSG"), Err(CommandError::NoRecipient("PRIVMSG")));
        assert_eq!(cmd("PRIVMSG #chat"), Err(CommandError::NoTextToSend));
        assert_eq!(cmd("PRIVMSG #chat :"), Err(CommandError::NoTextToSend));
        for line in [
            "JOIN",
            "JOIN :",
            "PART",
            "NICK",
            "MODE",
            "TOPIC",
            "KICK #chat",
            "PING",
            "WHOIS",
        ] {
            let e = cmd(line).unwrap_err();
            assert_eq!(e.numeric(), "461", "{line}");
            assert_eq!(e.subject(), Some(line.split(' ').next().unwrap()));
        }
    }
}
