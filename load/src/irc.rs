//! The little of IRC the generator speaks: parsing a server line into prefix, command and
//! parameters, and formatting the few client lines it sends (`NICK`, `USER`, `JOIN`,
//! `PRIVMSG`, `PONG`).
//!
//! Lines are borrowed, never copied, so a delivery costs no allocation. Parsing is
//! `chat_common::irc::Message` (server limits); the formatting here is the client side of RFC
//! 1459/2812, and IRCv3 message tags are skipped. This module never touches a socket.

use chat_common::irc::Message;

/// One parsed server line, borrowing from it: `chat_common`'s IRC parser (the one the server
/// reads its IRC members with), read with a server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrcLine<'a> {
    /// The source without its `:`, e.g. `nick!user@host` or a server name.
    pub prefix: Option<&'a str>,
    /// The command or three-digit numeric.
    pub command: &'a str,
    msg: Message<'a>,
}

impl<'a> IrcLine<'a> {
    /// Parses a line without its CR LF; `None` when there is no command.
    pub fn parse(line: &'a str) -> Option<IrcLine<'a>> {
        let msg = Message::parse_from_server(line).ok()?;
        Some(IrcLine {
            prefix: msg.source,
            command: msg.command,
            msg,
        })
    }

    /// The parameters in order; the trailing one (after ` :`) keeps its spaces.
    pub fn params(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.msg.params().iter().copied()
    }

    /// The parameter at `index`, if there is one.
    pub fn param(&self, index: usize) -> Option<&'a str> {
        self.msg.param(index)
    }

    /// The nickname part of the prefix (before `!`), when there is a prefix.
    pub fn nick(&self) -> Option<&'a str> {
        let p = self.prefix?;
        Some(p.split_once('!').map_or(p, |(n, _)| n))
    }
}

/// What an error numeric (400-599) from the server means for a member of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericKind {
    /// Registration or the channel join was refused: a member still on its way in cannot get
    /// in (nick taken or invalid, banned, channel full, invite-only, ...).
    Refusal,
    /// A message the member sent was refused (cannot send to the channel, no text, too long):
    /// it will be missing, and the server says why.
    SendRefused,
    /// Anything else, e.g. 422 ERR_NOMOTD, which a server without a MOTD sends right after
    /// 001, or 421 for a command the server does not know: no effect on the run.
    Harmless,
}

/// Classifies the numeric `command` (three digits; anything else is [`NumericKind::Harmless`]).
///
/// Only numerics that answer what the generator sends (`NICK`, `USER`, `JOIN`, `PRIVMSG`) and
/// mean "no" are refusals; the RFC 1459/2812 numbers plus the common extensions 479
/// (bad channel name) and 489 (channel needs TLS).
pub fn classify_numeric(command: &str) -> NumericKind {
    match command {
        // 403 no such channel, 405 too many channels; 431-437 nick missing, invalid, in use,
        // refused (434, 435: server-specific), collision, unavailable; 451 not registered; 461
        // need more params, 462 already registered, 463 host not allowed, 464 password
        // mismatch, 465 banned from the server;
        // 471 channel full, 473 invite only, 474 banned from the channel, 475 bad key, 476 bad
        // channel mask, 477 needs a registered nick / no channel modes; 479 bad channel name,
        // 489 secure-only channel. (472 is "unknown mode char": an answer to MODE, never sent.)
        "403" | "405" | "431" | "432" | "433" | "434" | "435" | "436" | "437" | "451" | "461"
        | "462" | "463" | "464" | "465" | "471" | "473" | "474" | "475" | "476" | "477" | "479"
        | "489" => NumericKind::Refusal,
        // 401 no such nick/channel, 404 cannot send to channel, 407 too many targets, 411 no
        // recipient, 412 no text to send, 417 input line too long, 442 not on that channel.
        "401" | "404" | "407" | "411" | "412" | "417" | "442" => NumericKind::SendRefused,
        _ => NumericKind::Harmless,
    }
}

/// Appends the registration lines for `nick`.
pub fn register(nick: &str, out: &mut Vec<u8>) {
    push_all(
        out,
        &["NICK ", nick, "\r\nUSER ", nick, " 0 * :chat-load\r\n"],
    );
}

/// Appends `JOIN <channel>`.
pub fn join(channel: &str, out: &mut Vec<u8>) {
    push_all(out, &["JOIN ", channel, "\r\n"]);
}

/// Appends the start of a `PRIVMSG <channel> :`; the caller appends the text and [`end`].
pub fn privmsg_start(channel: &str, out: &mut Vec<u8>) {
    push_all(out, &["PRIVMSG ", channel, " :"]);
}

/// Appends the line terminator.
pub fn end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// Appends the answer to a `PING` whose parameters were `token`.
pub fn pong(token: &str, out: &mut Vec<u8>) {
    push_all(out, &["PONG :", token, "\r\n"]);
}

fn push_all(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_channel_message() {
        let l = IrcLine::parse(":u3!~u3@127.0.0.1 PRIVMSG #load :L 3 4 5 with spaces").unwrap();
        assert_eq!(l.prefix, Some("u3!~u3@127.0.0.1"));
        assert_eq!(l.nick(), Some("u3"));
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(
            l.params().collect::<Vec<_>>(),
            ["#load", "L 3 4 5 with spaces"]
        );
        assert_eq!(l.param(1), Some("L 3 4 5 with spaces"));
        assert_eq!(l.param(2), None);
    }

    #[test]
    fn parses_numerics_pings_and_joins() {
        let l = IrcLine::parse(":irc.test 001 u1 :Welcome to the net").unwrap();
        assert_eq!((l.command, l.param(0)), ("001", Some("u1")));
        assert_eq!(l.nick(), Some("irc.test"));

        let l = IrcLine::parse("PING :irc.test").unwrap();
        assert_eq!(
            (l.prefix, l.command, l.param(0)),
            (None, "PING", Some("irc.test"))
        );

        // Both spellings of JOIN that servers use.
        for line in [":u2!u@h JOIN :#load", ":u2!u@h JOIN #load"] {
            let l = IrcLine::parse(line).unwrap();
            assert_eq!(
                (l.nick(), l.command, l.param(0)),
                (Some("u2"), "JOIN", Some("#load"))
            );
        }

        let l = IrcLine::parse("@time=2024 :n!u@h PRIVMSG #c :hi").unwrap();
        assert_eq!((l.command, l.param(1)), ("PRIVMSG", Some("hi")));

        let l = IrcLine::parse(":srv 353 u1 = #load :u1 u2 u3").unwrap();
        assert_eq!(l.params().count(), 4);
        let l = IrcLine::parse("QUIT").unwrap();
        assert_eq!((l.command, l.param(0)), ("QUIT", None));
        let l = IrcLine::parse("CMD a  b :").unwrap();
        assert_eq!(l.params().collect::<Vec<_>>(), ["a", "b", ""]);
    }

    #[test]
    fn refuses_lines_without_a_command() {
        for line in ["", ":prefixonly", ": ", "@tags", "   "] {
            assert_eq!(IrcLine::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn only_real_refusals_are_fatal() {
        for c in [
            "403", "405", "431", "432", "433", "436", "437", "451", "461", "462", "463", "464",
            "465", "471", "473", "474", "475", "476", "477",
        ] {
            assert_eq!(classify_numeric(c), NumericKind::Refusal, "{c}");
        }
        for c in ["404", "412", "417", "442"] {
            assert_eq!(classify_numeric(c), NumericKind::SendRefused, "{c}");
        }
        // 422: no MOTD, sent after 001 by servers without one; 421 unknown command; 472 an
        // answer to MODE; 5xx user mode errors; not numerics at all.
        for c in [
            "422", "421", "472", "466", "484", "501", "502", "001", "376", "PRIVMSG", "",
        ] {
            assert_eq!(classify_numeric(c), NumericKind::Harmless, "{c}");
        }
    }

    #[test]
    fn formats_client_lines() {
        let mut out = Vec::new();
        register("u1", &mut out);
        join("#load", &mut out);
        privmsg_start("#load", &mut out);
        out.extend_from_slice(b"L 1 2 3");
        end(&mut out);
        pong("irc.test", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NICK u1\r\nUSER u1 0 * :chat-load\r\nJOIN #load\r\nPRIVMSG #load :L 1 2 3\r\nPONG :irc.test\r\n"
        );
    }
}
