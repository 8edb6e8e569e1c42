//! The room's messages ([`ServerMsg`]) as IRC lines: what an IRC member gets for each line a
//! native member would get. This module owns that mapping and nothing else: registration and
//! the welcome burst (which need the room's member list) are the server's IRC dialect's, and
//! nothing here touches a socket or panics.
//!
//! | room | IRC |
//! | --- | --- |
//! | `MSG from color text` | `:from!from@host PRIVMSG #chat :text` (markup and color as codes) |
//! | `ACT from text` | `PRIVMSG #chat :\x01ACTION text\x01` |
//! | `PRIV from to color text` | `:from!from@host PRIVMSG to :text` |
//! | `JOIN name` | `:name!name@host JOIN #chat` |
//! | `LEAVE name left` | `PART #chat :left` |
//! | `LEAVE name quit` / `dropped` | `QUIT :Quit: connection closed` / `QUIT :Dropped by the server` |
//! | `LEAVE name kicked` | `:server KICK #chat name :Kicked by the operator` |
//! | `NICK old new` | `:old!old@host NICK new` |
//! | `INFO text` | `:server NOTICE #chat :text` |
//! | `HIST time line` | the line, with `@time=` (server-time) or `[time]` before its text |
//! | `ERROR code text` | the numeric for the code (`401`, `432`, `433`, `417`, ...) or a `NOTICE` |
//! | `BYE text`, `DENIED text` | `ERROR :text` (the connection closes next) |
//!
//! Every member's source is `nick!nick@host` with one host for all (the server's name):
//! addresses are never shown to other members. Long texts are cut at word boundaries
//! (`crate::irc::split`), each piece a line of its own.

use super::encode::{push_line, push_numeric, TextLines};
use super::format::{markup_to_irc, IrcStyles};
use super::numeric::*;
use crate::protocol::{ErrorCode, LeaveReason, ServerMsg};

/// What every IRC line needs besides the message: names that are the same for a whole room.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The server's name: the source of server lines and the host of every member.
    pub server: &'a str,
    /// The room's channel, e.g. `#chat`.
    pub channel: &'a str,
    /// Which markup styles are written as formatting codes.
    pub styles: IrcStyles,
}

/// The tags a message carries for a recipient who asked for them (`server-time`,
/// `message-tags`); both `None` for one who did not.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgTags<'a> {
    /// `time=`: when the server relayed the message (RFC 3339 UTC with milliseconds).
    pub time: Option<&'a str>,
    /// `msgid=`: the room's id of the message.
    pub msgid: Option<&'a str>,
}

/// Who gets a line and what it answers, for the lines that differ per recipient (errors).
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    /// The recipient's nick (`*` before it has one).
    pub nick: &'a str,
    /// What the request being answered was about (the nick of a `PRIVMSG` or `NICK`), when
    /// an error answers one.
    pub subject: Option<&'a str>,
}

/// Writes a member's source, `nick!nick@host`, into `buf` and returns it.
fn source<'b>(nick: &str, host: &str, buf: &'b mut String) -> &'b str {
    buf.clear();
    buf.push_str(nick);
    buf.push('!');
    buf.push_str(nick);
    buf.push('@');
    buf.push_str(host);
    buf
}

/// Buffers [`push_room_msg_in`] writes a message's parts into: kept by a writer that encodes
/// many messages (the server's IRC encoders), so a message costs no allocation for them.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The sender's `nick!nick@host`.
    src: String,
    /// The text with markup turned into IRC codes.
    text: String,
}

/// Appends the IRC lines for `msg`; returns `false` (and writes nothing) for the lines the
/// dialect answers itself (`NAME?`, `WAIT`, `WELCOME`).
pub fn push_room_msg(
    msg: &ServerMsg<'_>,
    ctx: Context<'_>,
    to: Recipient<'_>,
    tags: MsgTags<'_>,
    out: &mut Vec<u8>,
) -> bool {
    push_room_msg_in(msg, ctx, to, tags, &mut Scratch::default(), out)
}

/// [`push_room_msg`] with the parts written into `scratch` (cleared first).
pub fn push_room_msg_in(
    msg: &ServerMsg<'_>,
    ctx: Context<'_>,
    to: Recipient<'_>,
    tags: MsgTags<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> bool {
    let Scratch { src, text } = scratch;
    text.clear();
    match *msg {
        ServerMsg::NameQuery { .. } | ServerMsg::Wait { .. } | ServerMsg::Welcome { .. } => {
            return false
        }
        ServerMsg::Msg {
            from,
            color,
            text: t,
        } => {
            markup_to_irc(t, color, ctx.styles, text);
            push_text(
                tags,
                source(from, ctx.server, src),
                ctx.channel,
                text,
                false,
                out,
            );
        }
        ServerMsg::Act { from, text: t } => {
            markup_to_irc(t, None, ctx.styles, text);
            push_text(
                tags,
                source(from, ctx.server, src),
                ctx.channel,
                text,
                true,
                out,
            );
        }
        ServerMsg::Priv {
            from,
            to: target,
            color,
            text: t,
        } => {
            markup_to_irc(t, color, ctx.styles, text);
            push_text(
                tags,
                source(from, ctx.server, src),
                target,
                text,
                false,
                out,
            );
        }
        ServerMsg::Join { name } => push_line(
            Some(source(name, ctx.server, src)),
            "JOIN",
            &[ctx.channel],
            None,
            out,
        ),
        ServerMsg::Leave { name, reason } => {
            let from = source(name, ctx.server, src);
            match reason {
                LeaveReason::Left => {
                    push_line(Some(from), "PART", &[ctx.channel], Some("left"), out)
                }
                LeaveReason::Quit => push_line(
                    Some(from),
                    "QUIT",
                    &[],
                    Some("Quit: connection closed"),
                    out,
                ),
                LeaveReason::Dropped => {
                    push_line(Some(from), "QUIT", &[], Some("Dropped by the server"), out)
                }
                LeaveReason::Kicked => push_line(
                    Some(ctx.server),
                    "KICK",
                    &[ctx.channel, name],
                    Some("Kicked by the operator"),
                    out,
                ),
            }
        }
        ServerMsg::Nick { old, new } => push_line(
            Some(source(old, ctx.server, src)),
            "NICK",
            &[],
            Some(new),
            out,
        ),
        ServerMsg::Info { text: t } => {
            push_line(Some(ctx.server), "NOTICE", &[ctx.channel], Some(t), out)
        }
        ServerMsg::Hist { time, line } => {
            let Ok(inner) = ServerMsg::parse(line) else {
                return true;
            };
            if tags.time.is_some() {
                let tags = MsgTags {
                    time: Some(time),
                    ..tags
                };
                return push_room_msg_in(&inner, ctx, to, tags, scratch, out);
            }
            // No server-time: the time goes before the text, so history reads as history.
            let stamp = time.get(..16).unwrap_or(time).replace('T', " ");
            let with_time = |t: &str| format!("[{stamp}] {t}");
            let dated;
            let inner = match inner {
                ServerMsg::Msg { from, color, text } => {
                    dated = with_time(text);
                    ServerMsg::Msg {
                        from,
                        color,
                        text: &dated,
                    }
                }
                ServerMsg::Act { from, text } => {
                    dated = with_time(text);
                    ServerMsg::Act { from, text: &dated }
                }
                other => other,
            };
            return push_room_msg_in(&inner, ctx, to, tags, scratch, out);
        }
        ServerMsg::Error { code, text: t } => push_error(code, t, ctx, to, out),
        ServerMsg::Bye { text: t } | ServerMsg::Denied { text: t } => {
            push_line(None, "ERROR", &[], Some(t), out)
        }
    }
    true
}

fn push_text(
    tags: MsgTags<'_>,
    source: &str,
    target: &str,
    text: &str,
    action: bool,
    out: &mut Vec<u8>,
) {
    let time = tags.time.map(|t| [("time", t)]);
    let msgid = tags.msgid.map(|id| [("msgid", id)]);
    let every: &[(&str, &str)] = time.as_ref().map_or(&[], |t| &t[..]);
    let first: &[(&str, &str)] = msgid.as_ref().map_or(&[], |t| &t[..]);
    let frame = TextLines {
        source,
        command: "PRIVMSG",
        target,
        action,
    };
    frame.push(every, first, text, out);
}

/// An error answer: the numeric IRC clients know for the code, else a `NOTICE`.
fn push_error(code: ErrorCode, text: &str, ctx: Context<'_>, to: Recipient<'_>, out: &mut Vec<u8>) {
    let subject = to.subject.unwrap_or("*");
    let numeric = |code: &str, middle: &[&str], out: &mut Vec<u8>| {
        push_numeric(ctx.server, code, to.nick, middle, text, out)
    };
    match code {
        ErrorCode::NoSuchUser => numeric(ERR_NOSUCHNICK, &[subject], out),
        ErrorCode::BadName => numeric(ERR_ERRONEUSNICKNAME, &[subject], out),
        ErrorCode::NameTaken => numeric(ERR_NICKNAMEINUSE, &[subject], out),
        ErrorCode::LineTooLong => numeric(ERR_INPUTTOOLONG, &[], out),
        ErrorCode::UnknownCommand => numeric(ERR_UNKNOWNCOMMAND, &[subject], out),
        ErrorCode::Usage => numeric(ERR_NEEDMOREPARAMS, &[subject], out),
        ErrorCode::NotAdmitted => numeric(ERR_CANNOTSENDTOCHAN, &[ctx.channel], out),
        _ => push_line(Some(ctx.server), "NOTICE", &[to.nick], Some(text), out),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::protocol::Color;

    const CTX: Context<'static> = Context {
        server: "chat.test",
        channel: "#chat",
        styles: IrcStyles::All,
    };
    const BOB: Recipient<'static> = Recipient {
        nick: "bob",
        subject: None,
    };

    fn irc(msg: &ServerMsg<'_>, tags: MsgTags<'_>) -> String {
        let mut out = Vec::new();
        assert!(push_room_msg(msg, CTX, BOB, tags, &mut out));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn room_lines_become_irc_lines() {
        let none = MsgTags::default();
        assert_eq!(
            irc(
                &ServerMsg::Msg {
                    from: "alice",
                    color: Some(Color::Red),
                    text: "hi **you**"
                },
                none
            ),
            ":alice!alice@chat.test PRIVMSG #chat :\x0304hi \x02you\r\n"
        );
        assert_eq!(
            irc(
                &ServerMsg::Act {
                    from: "alice",
                    text: "waves"
                },
                none
            ),
            ":alice!alice@chat.test PRIVMSG #chat :\x01ACTION waves\x01\r\n"
        );
        assert_eq!(
            irc(
                &ServerMsg::Priv {
                    from: "alice",
                    to: "bob",
                    color: None,
                    text: "psst"
                },
                none
            ),
            ":alice!alice@chat.test PRIVMSG bob :psst\r\n"
        );
        assert_eq!(
            irc(&ServerMsg::Join { name: "carol" }, none),
            ":carol!carol@chat.test JOIN #chat\r\n"
        );
        assert_eq!(
            irc(
                &ServerMsg::Leave {
                    name: "carol",
                    reason: LeaveReason::Left
                },
                none
            ),
            ":carol!carol@chat.test PART #chat :left\r\n"
        );
        assert_eq!(
            irc(
                &ServerMsg::Leave {
                    name: "carol",
                    reason: LeaveReason::Kicked
                },
                none
            ),
            ":chat.test KICK #chat carol :Kicked by the operator\r\n"
        );
        assert_eq!(
            irc(
                &ServerMsg::Leave {
                    name: "carol",
                    reason: LeaveReason::Quit
                },
                none
            ),
            ":carol!carol@chat.test QUIT :Quit: connection closed\r\n"
        );
        assert_eq!(
            irc(
                &ServerMsg::Nick {
                    old: "carol",
                    new: "caroline"
                },
                none
            ),
            ":carol!carol@chat.test NICK :caroline\r\n"
        );
        assert_eq!(
            irc(
                &ServerMsg::Info {
                    text: "maintenance at noon"
                },
                none
            ),
            ":chat.test NOTICE #chat :maintenance at noon\r\n"
        );
        assert_eq!(
            irc(&ServerMsg::Bye { text: "kicked" }, none),
            "ERROR :kicked\r\n"
        );
        assert_eq!(
            irc(&ServerMsg::Denied { text: "no" }, none),
            "ERROR :no\r\n"
        );
        let mut out = Vec::new();
        assert!(!push_room_msg(
            &ServerMsg::Welcome {
                name: "bob",
                online: 2
            },
            CTX,
            BOB,
            none,
            &mut out
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn tags_for_those_who_asked() {
        let tags = MsgTags {
            time: Some("2026-12-01T16:05:09.123Z"),
            msgid: Some("m42"),
        };
        assert_eq!(
            irc(
                &ServerMsg::Msg {
                    from: "alice",
                    color: None,
                    text: "hi"
                },
                tags
            ),
            "@time=2026-12-01T16:05:09.123Z;msgid=m42 :alice!alice@chat.test PRIVMSG #chat :hi\r\n"
        );
    }

    #[test]
    fn history_keeps_its_time() {
        let hist = ServerMsg::Hist {
            time: "2026-12-01T16:05:09.123Z",
            line: "MSG alice - old news",
        };
        assert_eq!(
            irc(
                &hist,
                MsgTags {
                    time: Some("now"),
                    msgid: None
                }
            ),
            "@time=2026-12-01T16:05:09.123Z :alice!alice@chat.test PRIVMSG #chat :old news\r\n"
        );
        assert_eq!(
            irc(&hist, MsgTags::default()),
            ":alice!alice@chat.test PRIVMSG #chat :[2026-12-01 16:05] old news\r\n"
        );
        let act = ServerMsg::Hist {
            time: "2026-12-01T16:05:09.123Z",
            line: "ACT alice waved",
        };
        assert_eq!(
            irc(&act, MsgTags::default()),
            ":alice!alice@chat.test PRIVMSG #chat :\x01ACTION [2026-12-01 16:05] waved\x01\r\n"
        );
    }

    #[test]
    fn errors_become_numerics() {
        let to = Recipient {
            nick: "bob",
            subject: Some("zed"),
        };
        let err = |code, text| {
            let mut out = Vec::new();
            push_room_msg(
                &ServerMsg::Error { code, text },
                CTX,
                to,
                MsgTags::default(),
                &mut out,
            );
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            err(ErrorCode::NoSuchUser, "no such user"),
            ":chat.test 401 bob zed :no such user\r\n"
        );
        assert_eq!(
            err(ErrorCode::NameTaken, "taken"),
            ":chat.test 433 bob zed :taken\r\n"
        );
        assert_eq!(
            err(ErrorCode::BadName, "bad"),
            ":chat.test 432 bob zed :bad\r\n"
        );
        assert_eq!(
            err(ErrorCode::LineTooLong, "long"),
            ":chat.test 417 bob :long\r\n"
        );
        assert_eq!(
            err(ErrorCode::RateLimited, "slow down"),
            ":chat.test NOTICE bob :slow down\r\n"
        );
    }
}
