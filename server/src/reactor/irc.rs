//! The IRC dialect: connections from `--irc-listen` and `--irc-tls-listen` speak IRC, and this
//! module translates both ways so the core never sees IRC syntax.
//!
//! In: every line an IRC peer sends is parsed by `chat_common::irc` (no socket there), goes
//! through registration (`CAP`, `NICK`, `USER`, `PASS`, SASL), and becomes either a reply
//! written here (`PING`, `NAMES`, `WHO`, `MODE`, `TOPIC`, numerics) or one of the core's
//! requests, exactly as a line-protocol member would send it: `PRIVMSG #chat` is a room
//! message, `PRIVMSG nick` a private one, CTCP `ACTION` is `/me`, `NICK` is `/nick`, `PART` and
//! `QUIT` are `/leave`. Formatting codes become markup (`chat_common::irc::format`), and the core
//! sanitizes what it gets as for anyone.
//!
//! Out: the core's messages for an IRC connection become IRC lines (`chat_common::irc::relay`)
//! through [`IrcEncoder`], the connection's [`Dialect`]: a message fanned out to many IRC
//! members is encoded once per variant of tags (none, `time`, `msgid`, both) and shared, like
//! every dialect's (`crate::chat::Outgoing`). The room's own moments are the dialect's:
//! `WAIT` completes registration (`001`-`005`, `251`-`255`, `422`, and a `NOTICE` that the
//! operator decides), `WELCOME` joins the channel (`JOIN`, `331`, then `353`/`366` with the
//! room's names, written at the end of the round, when the core can be asked for them, ahead
//! of the history's replay; live lines for the newcomer meanwhile wait, in order, counted
//! against `--max-queue`), `DENIED` and `BYE` are `ERROR` before the close (a `KICK` first when
//! the goodbye is the operator's kick, [`Farewell::Kicked`]), `TOKEN` becomes `NOTICE`s that
//! tell the member its token and how to keep it as the password. Replies for one connection
//! (numerics) are written here and queued as they are ([`Outgoing::verbatim`]).
//!
//! Token login: an IRC member's token never rotates (its client keeps one password; the core
//! is told so at registration, `Core::fixed_token`). A SASL `PLAIN` exchange asks the core
//! whether the token would admit the name (`903`/`904`); registration with `PASS` or a SASL
//! login hands the token to the core (`Core::admit_remembered`), which decides as for a
//! `RESUME`: `WELCOME` now, or (under `--cluster`, while the name is claimed and another
//! server's session of it lets go) later, registration completing meanwhile; refused, the core
//! says so (`ERROR bad-token`, a `NOTICE` here) and the nick waits for the operator as anyone.
//!
//! Idle connections are pinged after `--irc-ping` of silence and dropped after as much again.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Instant;

use chat_common::framing::Frame;
use chat_common::irc::caps::{Cap, CapSet};
use chat_common::irc::command::{classify, Command};
use chat_common::irc::ctcp::{self, Ctcp};
use chat_common::irc::encode::{push_line, push_numeric};
use chat_common::irc::format::irc_to_markup;
use chat_common::irc::nick::{validate_nick, NICKLEN};
use chat_common::irc::numeric::*;
use chat_common::irc::registration::{Registration, Step};
use chat_common::irc::relay::{
    push_room_msg, push_room_msg_in, Context, MsgTags, Recipient, Scratch,
};
use chat_common::irc::{Message, ParseError, MAX_BODY};
use chat_common::protocol::{ErrorCode, LeaveReason, Request, ServerMsg};

use super::{Reactor, Shell};
use crate::chat::{ConnId, Dialect, Encoder, Farewell, Now, Outgoing, TokenLogin};
use crate::config::{IrcStyles, IRC_SERVER_NAME, MAX_IRC_CHANNEL};
use crate::timers::TimerKind;

/// Longest `353` (names) or `352` line body the server writes before starting another.
const NAMES_LINE_BYTES: usize = 400;

/// The capabilities offered: all four, SASL `PLAIN` with a remembered member's token.
fn offered() -> CapSet {
    CapSet::all()
}

/// One IRC connection's state, beside its [`super::conn::Conn`].
#[derive(Debug)]
pub struct IrcSession {
    reg: Registration,
    /// The room's name for this member once the room took the nick (`WAIT` or `WELCOME`).
    nick: Option<Rc<str>>,
    /// Whether `001`-`005` went out.
    welcomed: bool,
    /// Whether the member is in the room (the channel joined).
    joined: bool,
    /// Lines held while the join burst waits for the room's names (the end of the round), in
    /// order; counted against `--max-queue` like queued ones.
    held: Option<Vec<Rc<Outgoing>>>,
    /// What the line being handled is about (the nick of a `PRIVMSG` or `NICK`), for the
    /// numerics of errors the core answers with.
    subject: Option<String>,
    /// Whether the core refused the line being handled (no echo then).
    refused: bool,
    /// Registered, not in the room, and the room asks for a name (`NAME?`: a token login
    /// refused after registration, its nick taken): the next `NICK` is offered as the name.
    naming: bool,
    /// When the peer last sent anything.
    last_input: Instant,
    /// A `PING` went out and nothing came back since.
    ping_out: bool,
}

impl IrcSession {
    /// A fresh connection.
    pub fn new(now: Instant) -> Self {
        IrcSession {
            reg: Registration::new(IRC_SERVER_NAME, offered()),
            nick: None,
            welcomed: false,
            joined: false,
            held: None,
            subject: None,
            refused: false,
            naming: false,
            last_input: now,
            ping_out: false,
        }
    }

    fn target(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }
}

/// The IRC dialect in one variant of tags: how the core's messages are written for IRC members
/// who asked for `server-time` (`time`) and `message-tags` (`msgid`), or neither. Four are made
/// at start ([`IrcEncoder::all`]) and live as long as the server.
#[derive(Debug)]
pub struct IrcEncoder {
    channel: String,
    styles: IrcStyles,
    time: bool,
    msgid: bool,
    /// Buffers reused by every encoding (the reactor's thread is the only user): the line
    /// written, the time tag, the message's parts.
    scratch: RefCell<EncodeScratch>,
}

/// [`IrcEncoder`]'s reused buffers.
#[derive(Debug, Default)]
struct EncodeScratch {
    out: Vec<u8>,
    time: String,
    parts: Scratch,
}

impl IrcEncoder {
    /// The four variants for `channel`, made once for the server's life (a few bytes each,
    /// never freed): a connection's [`Dialect`] points at one of them.
    pub fn all(channel: &str, styles: IrcStyles) -> [&'static IrcEncoder; 4] {
        [(false, false), (true, false), (false, true), (true, true)].map(|(time, msgid)| {
            let encoder: &'static IrcEncoder = Box::leak(Box::new(IrcEncoder {
                channel: channel.to_owned(),
                styles,
                time,
                msgid,
                scratch: RefCell::default(),
            }));
            encoder
        })
    }
}

impl Encoder for IrcEncoder {
    fn slot(&self) -> usize {
        usize::from(self.time) + 2 * usize::from(self.msgid)
    }

    fn encode(&self, msg: &Outgoing) -> Rc<[u8]> {
        let Some(typed) = msg.msg() else {
            return Rc::from(&[][..]);
        };
        // Never re-entered (encoding calls nothing that encodes); fresh buffers if it were.
        let mut fresh = EncodeScratch::default();
        let mut held = self.scratch.try_borrow_mut();
        let EncodeScratch { out, time, parts } = match held.as_deref_mut() {
            Ok(scratch) => scratch,
            Err(_) => &mut fresh,
        };
        out.clear();
        time.clear();
        if let Some(wall) = msg.wall.filter(|_| self.time) {
            // Infallible: a String takes every write.
            let _ = write!(time, "{}", humantime::format_rfc3339_millis(wall));
        }
        let tags = MsgTags {
            time: Some(time.as_str()).filter(|t| !t.is_empty()),
            msgid: msg.id.as_deref().filter(|_| self.msgid),
        };
        let ctx = Context {
            server: IRC_SERVER_NAME,
            channel: &self.channel,
            styles: self.styles,
        };
        let to = Recipient {
            nick: "*",
            subject: None,
        };
        push_room_msg_in(&typed, ctx, to, tags, parts, out);
        Rc::from(out.as_slice())
    }
}

/// Whether a core line is one the dialect reads itself (registration, joining, errors,
/// goodbyes, renames) rather than only encodes: decided on its first word, so a fan-out never
/// parses a line per recipient.
pub(super) fn is_a_moment(line: &[u8]) -> bool {
    const MOMENTS: [&[u8]; 8] = [
        b"NAME? ",
        b"WAIT ",
        b"WELCOME ",
        b"ERROR ",
        b"BYE ",
        b"DENIED ",
        b"NICK ",
        b"TOKEN ",
    ];
    MOMENTS.iter().any(|m| line.starts_with(m))
}

/// A wall-clock time as IRCv3 server-time writes it.
fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl IrcSession {
    /// Whether lines are held until the join burst is out (the end of the round). Only a
    /// session in the shell's `irc_bursts` does.
    pub(super) fn holding(&self) -> bool {
        self.held.is_some()
    }
}

impl Shell {
    fn irc(&mut self, id: ConnId) -> Option<&mut IrcSession> {
        self.conns
            .get_mut(id.key)
            .filter(|c| c.id.serial == id.serial && !c.doomed)
            .and_then(|c| c.irc.as_deref_mut())
    }

    /// The dialect for an IRC connection with capabilities `caps`.
    pub(super) fn irc_dialect(&self, caps: CapSet) -> Dialect {
        let time = caps.has(Cap::ServerTime);
        let msgid = caps.has(Cap::MessageTags);
        let slot = usize::from(time) + 2 * usize::from(msgid);
        match self.irc_encoders.get(slot) {
            Some(&encoder) => Dialect::shell(encoder),
            None => Dialect::Line,
        }
    }

    /// Switches a connection to the dialect of its capabilities while its queue is empty (what
    /// is queued is counted in the dialect it was queued in).
    fn irc_set_dialect(&mut self, id: ConnId, caps: CapSet) {
        let dialect = self.irc_dialect(caps);
        if let Some(conn) = self.conns.get_mut(id.key) {
            if conn.id.serial == id.serial && conn.out.is_empty() {
                conn.out.set_dialect(dialect);
            }
        }
    }

    /// Queues a message for an IRC connection, or holds it while its join burst is pending.
    fn irc_queue(&mut self, id: ConnId, line: Rc<Outgoing>) {
        let max = self.config.max_queue;
        let Some(conn) = self.conns.get_mut(id.key) else {
            return;
        };
        if let Some(held) = conn.irc.as_mut().and_then(|s| s.held.as_mut()) {
            let cost: usize = held
                .iter()
                .chain(std::iter::once(&line))
                .map(|l| conn.out.cost_of(l))
                .sum::<usize>()
                + conn.out.cost();
            if cost > max {
                self.doom(id, LeaveReason::Dropped);
            } else {
                held.push(line);
            }
            return;
        }
        self.queue(id, &line, false);
    }

    /// Writes a reply for one IRC connection and queues it as it is.
    fn irc_bytes(&mut self, id: ConnId, write: impl FnOnce(&mut Vec<u8>)) {
        let mut out = Vec::new();
        write(&mut out);
        if !out.is_empty() {
            self.irc_queue(id, Outgoing::verbatim(out));
        }
    }

    fn irc_numeric(&mut self, id: ConnId, code: &str, middle: &[&str], text: &str) {
        let Some(target) = self.irc(id).map(|s| s.target().to_owned()) else {
            return;
        };
        self.irc_bytes(id, |out| {
            push_numeric(IRC_SERVER_NAME, code, &target, middle, text, out)
        });
    }

    fn irc_notice(&mut self, id: ConnId, text: &str) {
        let Some(target) = self.irc(id).map(|s| s.target().to_owned()) else {
            return;
        };
        self.irc_bytes(id, |out| {
            push_line(Some(IRC_SERVER_NAME), "NOTICE", &[&target], Some(text), out)
        });
    }

    fn context(&self) -> Context<'_> {
        Context {
            server: IRC_SERVER_NAME,
            channel: &self.config.irc_channel,
            styles: self.config.irc_styles,
        }
    }

    /// A message of the core for an IRC connection that must read it: one of the room's own
    /// moments, or any line while the session holds lines until it has joined. Room lines
    /// otherwise never come here: `Outbox::send_all` (the hot path) queues them as they are,
    /// their IRC encoding made once and shared.
    pub(super) fn irc_push(&mut self, id: ConnId, line: &Rc<Outgoing>) {
        if !is_a_moment(line.line()) {
            return self.irc_queue(id, Rc::clone(line));
        }
        if let Some(secret) = line.line().strip_prefix(b"TOKEN ") {
            let secret = String::from_utf8_lossy(secret);
            return self.irc_token_notice(id, secret.trim_end());
        }
        let Some(msg) = line.msg() else {
            // The shell's own bytes (or another server's line that does not parse, which no
            // dialect could write): queued as they are.
            return self.queue(id, line, false);
        };
        let Some(session) = self.irc(id) else {
            return;
        };
        match msg {
            ServerMsg::NameQuery { .. } => {
                // The first prompt means nothing to IRC; after a refused nick, the machine
                // waits for another NICK. Registered before the room named it (a token login
                // refused after waiting for the cluster, its nick then taken): the next NICK
                // is the name offered.
                if !session.reg.is_done() {
                    session.reg.nick_refused();
                } else if !session.joined {
                    session.naming = true;
                }
            }
            ServerMsg::Error {
                code: code @ (ErrorCode::NameTaken | ErrorCode::BadName),
                text,
            } if !session.reg.is_done() => {
                let nick = session.subject.clone().unwrap_or_default();
                let numeric = if code == ErrorCode::NameTaken {
                    ERR_NICKNAMEINUSE
                } else {
                    ERR_ERRONEUSNICKNAME
                };
                session.refused = true;
                self.irc_numeric(id, numeric, &[&nick], text);
            }
            ServerMsg::Wait { text } => {
                let nick = session.subject.clone().unwrap_or_default();
                self.irc_registered(id, &nick);
                let text = format!("{text} (you will join {} then)", self.config.irc_channel);
                self.irc_notice(id, &text);
            }
            ServerMsg::Welcome { name, .. } => {
                self.irc_registered(id, name);
                let channel = self.config.irc_channel.clone();
                let Some(session) = self.irc(id) else { return };
                session.joined = true;
                let source = format!("{name}!{name}@{IRC_SERVER_NAME}");
                self.irc_bytes(id, |out| {
                    push_line(Some(&source), "JOIN", &[&channel], None, out);
                    push_numeric(
                        IRC_SERVER_NAME,
                        RPL_NOTOPIC,
                        name,
                        &[&channel],
                        "No topic is set",
                        out,
                    );
                });
                if let Some(session) = self.irc(id) {
                    session.held = Some(Vec::new());
                    self.irc_bursts.push(id);
                }
            }
            ServerMsg::Bye { text } if session.joined => {
                // A kicked member sees its KICK, as IRC clients expect, before the ERROR: the
                // core's goodbye says it was a kick (and why), the text is not read.
                let kick = line.farewell.as_ref().map(|f| match f {
                    Farewell::Kicked { reason: Some(r) } => format!("kicked by the operator: {r}"),
                    Farewell::Kicked { reason: None } => "kicked by the operator".to_owned(),
                });
                let nick = session.target().to_owned();
                let channel = self.config.irc_channel.clone();
                self.irc_bytes(id, |out| {
                    if let Some(comment) = &kick {
                        push_line(
                            Some(IRC_SERVER_NAME),
                            "KICK",
                            &[&channel, &nick],
                            Some(comment),
                            out,
                        );
                    }
                    push_line(None, "ERROR", &[], Some(text), out);
                });
            }
            ServerMsg::Nick { old, new } => {
                if session
                    .nick
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(old))
                {
                    session.nick = Some(Rc::from(new));
                }
                self.irc_queue(id, Rc::clone(line));
            }
            ServerMsg::Error { .. } => {
                session.refused = true;
                let nick = session.target().to_owned();
                let subject = session.subject.clone();
                let ctx = self.context();
                let to = Recipient {
                    nick: &nick,
                    subject: subject.as_deref(),
                };
                let mut out = Vec::new();
                push_room_msg(&msg, ctx, to, MsgTags::default(), &mut out);
                self.irc_queue(id, Outgoing::verbatim(out));
            }
            _ => self.irc_queue(id, Rc::clone(line)),
        }
    }

    /// The member's token (the core's `TOKEN` line, which IRC has no word for) as server
    /// `NOTICE`s: what it is, and the command that keeps it as the password in irssi, weechat
    /// and HexChat (for a network the client calls `chat`, as docs/IRC.md sets it up).
    fn irc_token_notice(&mut self, id: ConnId, token: &str) {
        let Some(nick) = self.irc(id).map(|s| s.target().to_owned()) else {
            return;
        };
        let days = self.config.remember.as_secs() / 86_400;
        let notices = [
            format!("Your token is {token}"),
            format!(
                "Give it as this server's password (PASS, or SASL PLAIN as {nick}) and you join \
                 without waiting for the operator, until the operator kicks or forgets you or \
                 you stay away {days} days. Show it to nobody. To keep it:"
            ),
            format!(
                "irssi: /network add -sasl_mechanism plain -sasl_username {nick} \
                 -sasl_password {token} chat"
            ),
            format!("weechat: /set irc.server.chat.password {token}"),
            format!(
                "HexChat: Network List > chat > Edit > Password: {token} (Login method: \
                 Server password)"
            ),
        ];
        for text in &notices {
            self.irc_notice(id, text);
        }
    }

    /// Registration is complete: the welcome burst (`001`-`005`, `251`-`255`, `422`).
    fn irc_registered(&mut self, id: ConnId, nick: &str) {
        let users = self.conns.len().to_string();
        let Some(session) = self.irc(id) else { return };
        if session.welcomed {
            // Registered before the room named it (a token login waiting for the cluster):
            // the room's name, when it differs (a SASL account's, its spelling), is a nick
            // change.
            let old = session.target().to_owned();
            if old != nick {
                session.nick = Some(Rc::from(nick));
                let source = format!("{old}!{old}@{IRC_SERVER_NAME}");
                self.irc_bytes(id, |out| {
                    push_line(Some(&source), "NICK", &[nick], None, out)
                });
            }
            return;
        }
        session.welcomed = true;
        session.nick = Some(Rc::from(nick));
        session.reg.accepted();
        let caps = session.reg.caps();
        self.irc_set_dialect(id, caps);
        let version = concat!("chat-server-", env!("CARGO_PKG_VERSION"));
        let isupport = format!(
            "CHANTYPES=# NICKLEN={NICKLEN} CASEMAPPING=ascii CHANNELLEN={MAX_IRC_CHANNEL} PREFIX=() \
             CHANMODES=b,,,nt NETWORK=chat UTF8ONLY"
        );
        self.irc_bytes(id, |out| {
            let n = |code: &str, middle: &[&str], text: &str, out: &mut Vec<u8>| {
                push_numeric(IRC_SERVER_NAME, code, nick, middle, text, out)
            };
            n(
                RPL_WELCOME,
                &[],
                &format!("Welcome to the chat, {nick}"),
                out,
            );
            n(
                RPL_YOURHOST,
                &[],
                &format!("Your host is {IRC_SERVER_NAME}, running {version}"),
                out,
            );
            n(
                RPL_CREATED,
                &[],
                "This server has one room, and an operator who approves joins",
                out,
            );
            push_line(
                Some(IRC_SERVER_NAME),
                RPL_MYINFO,
                &[nick, IRC_SERVER_NAME, version, "i", "bnt"],
                None,
                out,
            );
            let words: Vec<&str> = isupport.split(' ').collect();
            n(RPL_ISUPPORT, &words, "are supported by this server", out);
            n(
                RPL_LUSERCLIENT,
                &[],
                &format!("There are {users} users and 0 invisible on 1 servers"),
                out,
            );
            n(RPL_LUSEROP, &["0"], "operators online", out);
            n(RPL_LUSERUNKNOWN, &["0"], "unknown connection(s)", out);
            n(RPL_LUSERCHANNELS, &["1"], "channels formed", out);
            n(
                RPL_LUSERME,
                &[],
                &format!("I have {users} clients and 0 servers"),
                out,
            );
            n(ERR_NOMOTD, &[], "MOTD File is missing", out);
        });
    }
}

impl Reactor {
    /// A frame from an IRC connection.
    pub(super) fn irc_input(&mut self, id: ConnId, frame: Frame<'_>, now: Now) {
        let Some(session) = self.shell.irc(id) else {
            return;
        };
        session.last_input = now.at;
        session.ping_out = false;
        let line = match frame {
            Frame::Line(line) => line,
            Frame::TooLong => {
                let text = format!("Input line was too long (at most {MAX_BODY} bytes)");
                return self.shell.irc_numeric(id, ERR_INPUTTOOLONG, &[], &text);
            }
            Frame::BadUtf8 => {
                return self
                    .shell
                    .irc_notice(id, "That line was not UTF-8 and was dropped");
            }
        };
        let msg = match Message::parse(line) {
            Ok(msg) => msg,
            Err(ParseError::NoCommand) => return,
            Err(e @ (ParseError::BodyTooLong(_) | ParseError::TagsTooLong(_))) => {
                return self
                    .shell
                    .irc_numeric(id, ERR_INPUTTOOLONG, &[], &e.to_string());
            }
            Err(ParseError::BadCommand) => {
                return self
                    .shell
                    .irc_numeric(id, ERR_UNKNOWNCOMMAND, &["*"], "Unknown command");
            }
        };
        let Some(session) = self.shell.irc(id) else {
            return;
        };
        if !session.reg.is_done() {
            let mut out = Vec::new();
            let step = session.reg.handle(&msg, &mut out);
            if !out.is_empty() {
                self.shell.irc_queue(id, Outgoing::verbatim(out));
            }
            self.irc_step(id, step, now);
            return;
        }
        self.irc_command(id, &msg, now);
    }

    fn irc_step(&mut self, id: ConnId, step: Step, now: Now) {
        match step {
            Step::Continue => {}
            Step::Register { nick, credential } => {
                if let Some(session) = self.shell.irc(id) {
                    session.subject = Some(nick.clone());
                }
                // An IRC client keeps one password: its member's token never rotates.
                self.core.fixed_token(id);
                if let Some(c) = credential {
                    // A remembered member's token (PASS, or the SASL login that checked it):
                    // admitted without the operator, else the waiting room as `nick` (the core
                    // says why). The account is SASL's name, else the nick.
                    let name = c.name.as_deref().unwrap_or(&nick);
                    let login = self.core.admit_remembered(
                        id,
                        name,
                        &c.secret,
                        &nick,
                        now,
                        &mut self.shell,
                    );
                    if login == TokenLogin::Waiting {
                        // Under --cluster the name is claimed first (another server's session
                        // of it lets go): registration completes now, the channel's JOIN
                        // comes with the admission, as it does with an approval.
                        self.shell.irc_registered(id, &nick);
                    }
                    return;
                }
                self.core
                    .input(id, Frame::Line(&nick), now, &mut self.shell);
            }
            Step::SaslPlain(c) => {
                let name = c.name.as_deref().unwrap_or("");
                // SASL's answer (`903`/`904`) comes before registration ends: whether the
                // login would admit the name, changing nothing.
                let ok = self.core.token_admits(name, &c.secret, now);
                let mut out = Vec::new();
                let Some(session) = self.shell.irc(id) else {
                    return;
                };
                let next = session.reg.sasl_result(ok, &mut out);
                self.shell.irc_queue(id, Outgoing::verbatim(out));
                self.irc_step(id, next, now);
            }
            Step::Quit => self.irc_close(id, "Closing link: quit", now),
        }
    }

    /// A `NICK` while the room asks this registered connection for a name (see `naming`):
    /// offered as the name, as at registration; `false` when the room is not asking.
    fn irc_offers_name(&mut self, id: ConnId, wanted: &str, now: Now) -> bool {
        let Some(session) = self.shell.irc(id) else {
            return false;
        };
        if !std::mem::take(&mut session.naming) {
            return false;
        }
        session.subject = Some(wanted.to_owned());
        self.core
            .input(id, Frame::Line(wanted), now, &mut self.shell);
        true
    }

    /// Says `ERROR` and closes a connection that is not (or no longer) a member.
    fn irc_close(&mut self, id: ConnId, text: &str, now: Now) {
        self.shell
            .irc_bytes(id, |out| push_line(None, "ERROR", &[], Some(text), out));
        self.core.gone(id, LeaveReason::Left, now, &mut self.shell);
        self.shell.close_conn(id, now.at);
    }

    /// Hands a request to the core as the line a native member would send.
    fn irc_request(&mut self, id: ConnId, request: &Request<'_>, subject: Option<&str>, now: Now) {
        if let Some(session) = self.shell.irc(id) {
            session.subject = subject.map(str::to_owned);
            session.refused = false;
        }
        // Written into a buffer kept for the purpose (taken while the core reads it).
        let mut line = std::mem::take(&mut self.irc_line);
        line.clear();
        request.write_to(&mut line);
        self.core
            .input(id, Frame::Line(&line), now, &mut self.shell);
        self.irc_line = line;
    }

    fn irc_command(&mut self, id: ConnId, msg: &Message<'_>, now: Now) {
        let Some(session) = self.shell.irc(id) else {
            return;
        };
        let joined = session.joined;
        // Shared, not copied: a command costs no allocation for them.
        let nick = session.nick.clone().unwrap_or_else(|| Rc::from("*"));
        let caps = session.reg.caps();
        let channel = Rc::clone(&self.shell.irc_channel);
        let is_channel = |t: &str| t.eq_ignore_ascii_case(&channel);
        let command = match classify(msg) {
            Ok(c) => c,
            Err(e) => {
                let middle: Vec<&str> = e.subject().into_iter().collect();
                return self
                    .shell
                    .irc_numeric(id, e.numeric(), &middle, &e.to_string());
            }
        };
        match command {
            Command::Message {
                target,
                text,
                notice,
            } => {
                if !joined {
                    if !notice {
                        self.shell.irc_numeric(
                            id,
                            ERR_CANNOTSENDTOCHAN,
                            &[target],
                            "Wait for the operator to approve you; that message was dropped",
                        );
                    }
                    return;
                }
                let (text, action) = match ctcp::parse(text) {
                    Ctcp::Text(t) => (t, false),
                    Ctcp::Action(t) => (t, true),
                    Ctcp::Other(_) => return,
                };
                let from = irc_to_markup(text);
                if from.text.chars().all(char::is_whitespace) {
                    return;
                }
                if is_channel(target) {
                    let request = if action {
                        Request::Me { text: &from.text }
                    } else {
                        Request::Say {
                            color: from.color,
                            text: &from.text,
                        }
                    };
                    self.irc_request(id, &request, None, now);
                    if caps.has(Cap::EchoMessage) && !self.irc_refused(id) {
                        let echo = if action {
                            ServerMsg::Act {
                                from: &nick,
                                text: &from.text,
                            }
                        } else {
                            ServerMsg::Msg {
                                from: &nick,
                                color: from.color,
                                text: &from.text,
                            }
                        };
                        self.irc_echo(id, &echo);
                    }
                } else if target.starts_with(['#', '&']) {
                    if !notice {
                        self.shell
                            .irc_numeric(id, ERR_NOSUCHCHANNEL, &[target], "No such channel");
                    }
                } else {
                    let request = Request::Private {
                        to: target,
                        color: from.color,
                        text: &from.text,
                    };
                    self.irc_request(id, &request, Some(target), now);
                    if caps.has(Cap::EchoMessage) && !self.irc_refused(id) {
                        let echo = ServerMsg::Priv {
                            from: &nick,
                            to: target,
                            color: from.color,
                            text: &from.text,
                        };
                        self.irc_echo(id, &echo);
                    }
                }
            }
            Command::Join { channels } => {
                for c in channels.split(',').filter(|c| !c.is_empty()) {
                    if c == "0" {
                        continue;
                    }
                    if !is_channel(c) {
                        self.shell.irc_numeric(
                            id,
                            ERR_NOSUCHCHANNEL,
                            &[c],
                            &format!("No such channel; this server has one: {channel}"),
                        );
                    } else if !joined {
                        let when = if self.core.claiming(id) {
                            "your login is confirmed"
                        } else {
                            "the operator approves you"
                        };
                        self.shell
                            .irc_notice(id, &format!("You join {channel} when {when}"));
                    }
                }
            }
            Command::Part { channels } => {
                if channels.split(',').any(is_channel) {
                    self.irc_leave(id, joined, now);
                } else {
                    self.shell.irc_numeric(
                        id,
                        ERR_NOTONCHANNEL,
                        &[channels],
                        "You're not on that channel",
                    );
                }
            }
            Command::Quit => self.irc_leave(id, joined, now),
            Command::Nick { nick: wanted } => {
                if let Err(e) = validate_nick(wanted) {
                    let shown: String = wanted
                        .chars()
                        .filter(|c| !chat_common::sanitize::is_forbidden(*c))
                        .take(NICKLEN)
                        .collect();
                    return self.shell.irc_numeric(
                        id,
                        ERR_ERRONEUSNICKNAME,
                        &[&shown],
                        &e.to_string(),
                    );
                }
                if !joined {
                    if self.irc_offers_name(id, wanted, now) {
                        return;
                    }
                    return self.shell.irc_notice(
                        id,
                        "You can change your nick once the operator has approved you",
                    );
                }
                self.irc_request(id, &Request::Nick { name: wanted }, Some(wanted), now);
            }
            Command::Names { channel: None } => self.irc_names(id, joined),
            Command::Names {
                channel: Some(list),
            } => {
                // A list gets one reply per channel, each ending with its one `366`.
                for c in list.split(',').filter(|c| !c.is_empty()) {
                    if is_channel(c) {
                        self.irc_names(id, joined);
                    } else {
                        self.shell
                            .irc_numeric(id, RPL_ENDOFNAMES, &[c], "End of /NAMES list");
                    }
                }
            }
            Command::Who { mask } => self.irc_who(id, mask, joined),
            Command::Whois { nick: who } => {
                let found = self
                    .core
                    .names()
                    .into_iter()
                    .find(|n| n.eq_ignore_ascii_case(who));
                match found {
                    Some(n) => {
                        self.shell.irc_bytes(id, |out| {
                            push_numeric(
                                IRC_SERVER_NAME,
                                RPL_WHOISUSER,
                                &nick,
                                &[&n, &n, IRC_SERVER_NAME, "*"],
                                &n,
                                out,
                            );
                            push_numeric(
                                IRC_SERVER_NAME,
                                RPL_WHOISSERVER,
                                &nick,
                                &[&n, IRC_SERVER_NAME],
                                "chat-server",
                                out,
                            );
                            push_numeric(
                                IRC_SERVER_NAME,
                                RPL_ENDOFWHOIS,
                                &nick,
                                &[&n],
                                "End of /WHOIS list",
                                out,
                            );
                        });
                    }
                    None => {
                        self.shell.irc_bytes(id, |out| {
                            push_numeric(
                                IRC_SERVER_NAME,
                                ERR_NOSUCHNICK,
                                &nick,
                                &[who],
                                "No such nick",
                                out,
                            );
                            push_numeric(
                                IRC_SERVER_NAME,
                                RPL_ENDOFWHOIS,
                                &nick,
                                &[who],
                                "End of /WHOIS list",
                                out,
                            );
                        });
                    }
                }
            }
            Command::Mode { target, modes } => {
                if is_channel(target) {
                    match modes.map(|m| m.trim_start_matches('+')) {
                        None => {
                            self.shell
                                .irc_numeric(id, RPL_CHANNELMODEIS, &[&channel, "+nt"], "")
                        }
                        Some("b") => self.shell.irc_numeric(
                            id,
                            RPL_ENDOFBANLIST,
                            &[&channel],
                            "End of channel ban list",
                        ),
                        Some(_) => self.shell.irc_numeric(
                            id,
                            ERR_CHANOPRIVSNEEDED,
                            &[&channel],
                            "Only the operator changes the room, from the console",
                        ),
                    }
                } else if target.eq_ignore_ascii_case(&nick) {
                    if modes.is_none() {
                        self.shell.irc_bytes(id, |out| {
                            push_line(Some(IRC_SERVER_NAME), RPL_UMODEIS, &[&nick, "+"], None, out)
                        });
                    }
                    // Setting user modes (irssi asks for +i) is accepted and changes nothing.
                } else if target.starts_with('#') {
                    self.shell
                        .irc_numeric(id, ERR_NOSUCHCHANNEL, &[target], "No such channel");
                } else {
                    self.shell.irc_numeric(
                        id,
                        ERR_USERSDONTMATCH,
                        &[],
                        "Can't change mode for other users",
                    );
                }
            }
            Command::Topic { channel: c, topic } => {
                if !is_channel(c) {
                    self.shell
                        .irc_numeric(id, ERR_NOSUCHCHANNEL, &[c], "No such channel");
                } else if topic.is_some() {
                    self.shell.irc_numeric(
                        id,
                        ERR_CHANOPRIVSNEEDED,
                        &[&channel],
                        "The room has no topic to set",
                    );
                } else {
                    self.shell
                        .irc_numeric(id, RPL_NOTOPIC, &[&channel], "No topic is set");
                }
            }
            Command::Kick { channel: c } => self.shell.irc_numeric(
                id,
                ERR_CHANOPRIVSNEEDED,
                &[c],
                "Only the operator kicks, from the console",
            ),
            Command::Ping { token } => self.shell.irc_bytes(id, |out| {
                push_line(
                    Some(IRC_SERVER_NAME),
                    "PONG",
                    &[IRC_SERVER_NAME],
                    Some(token),
                    out,
                )
            }),
            Command::Pong | Command::TagMsg => {}
            Command::Cap => {
                let mut out = Vec::new();
                let Some(session) = self.shell.irc(id) else {
                    return;
                };
                session.reg.cap(msg, &mut out);
                let caps = session.reg.caps();
                self.shell.irc_queue(id, Outgoing::verbatim(out));
                self.shell.irc_set_dialect(id, caps);
            }
            Command::Away { away } => {
                if away {
                    self.shell.irc_numeric(
                        id,
                        RPL_NOWAWAY,
                        &[],
                        "You have been marked as being away",
                    );
                } else {
                    self.shell.irc_numeric(
                        id,
                        RPL_UNAWAY,
                        &[],
                        "You are no longer marked as being away",
                    );
                }
            }
            Command::Lusers => {
                let users = self.shell.conns.len().to_string();
                self.shell.irc_numeric(
                    id,
                    RPL_LUSERCLIENT,
                    &[],
                    &format!("There are {users} users and 0 invisible on 1 servers"),
                );
                self.shell.irc_numeric(
                    id,
                    RPL_LUSERME,
                    &[],
                    &format!("I have {users} clients and 0 servers"),
                );
            }
            Command::Motd => self
                .shell
                .irc_numeric(id, ERR_NOMOTD, &[], "MOTD File is missing"),
            Command::List => {
                let count = self.core.names().len().to_string();
                self.shell.irc_bytes(id, |out| {
                    push_numeric(
                        IRC_SERVER_NAME,
                        RPL_LISTSTART,
                        &nick,
                        &["Channel"],
                        "Users  Name",
                        out,
                    );
                    push_numeric(
                        IRC_SERVER_NAME,
                        RPL_LIST,
                        &nick,
                        &[&channel, &count],
                        "",
                        out,
                    );
                    push_numeric(
                        IRC_SERVER_NAME,
                        RPL_LISTEND,
                        &nick,
                        &[],
                        "End of /LIST",
                        out,
                    );
                });
            }
            Command::Userhost => {
                let code = if msg.is("ISON") { "303" } else { "302" };
                self.shell.irc_numeric(id, code, &[], "");
            }
            Command::Reregister => {
                self.shell
                    .irc_numeric(id, ERR_ALREADYREGISTERED, &[], "You may not reregister")
            }
            Command::Unknown(c) => {
                self.shell
                    .irc_numeric(id, ERR_UNKNOWNCOMMAND, &[c], "Unknown command")
            }
        }
    }

    fn irc_refused(&mut self, id: ConnId) -> bool {
        self.shell.irc(id).is_none_or(|s| s.refused)
    }

    /// echo-message: the sender gets its own message as the room got it.
    fn irc_echo(&mut self, id: ConnId, msg: &ServerMsg<'_>) {
        let Some(session) = self.shell.irc(id) else {
            return;
        };
        let time = session
            .reg
            .caps()
            .has(Cap::ServerTime)
            .then(|| rfc3339(std::time::SystemTime::now()));
        let tags = MsgTags {
            time: time.as_deref(),
            msgid: None,
        };
        let to = Recipient {
            nick: "*",
            subject: None,
        };
        let mut out = Vec::new();
        push_room_msg(msg, self.shell.context(), to, tags, &mut out);
        self.shell.irc_queue(id, Outgoing::verbatim(out));
    }

    /// `PART` and `QUIT`: a member leaves (`/leave`); one still waiting withdraws.
    fn irc_leave(&mut self, id: ConnId, joined: bool, now: Now) {
        if joined {
            self.irc_request(id, &Request::Leave, None, now);
        } else {
            self.irc_close(id, "Closing link: quit", now);
        }
    }

    /// `353`/`366`: the room's names (none but the end for one not in the room).
    fn irc_names(&mut self, id: ConnId, joined: bool) {
        let reply = if joined {
            self.irc_names_reply(id)
        } else {
            let Some(nick) = self.shell.irc(id).map(|s| s.target().to_owned()) else {
                return;
            };
            let channel = &self.shell.config.irc_channel;
            let mut out = Vec::new();
            push_numeric(
                IRC_SERVER_NAME,
                RPL_ENDOFNAMES,
                &nick,
                &[channel],
                "End of /NAMES list",
                &mut out,
            );
            out
        };
        self.shell.irc_queue(id, Outgoing::verbatim(reply));
    }

    /// The `353` lines (at most [`NAMES_LINE_BYTES`] of names each) and the `366`.
    fn irc_names_reply(&mut self, id: ConnId) -> Vec<u8> {
        let names = self.core.names();
        let nick = self
            .shell
            .irc(id)
            .map(|s| s.target().to_owned())
            .unwrap_or_default();
        let channel = &self.shell.config.irc_channel;
        let mut out = Vec::new();
        let mut line = String::new();
        for name in &names {
            if !line.is_empty() && line.len() + name.len() + 1 > NAMES_LINE_BYTES {
                push_numeric(
                    IRC_SERVER_NAME,
                    RPL_NAMREPLY,
                    &nick,
                    &["=", channel],
                    &line,
                    &mut out,
                );
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(name);
        }
        if !line.is_empty() {
            push_numeric(
                IRC_SERVER_NAME,
                RPL_NAMREPLY,
                &nick,
                &["=", channel],
                &line,
                &mut out,
            );
        }
        push_numeric(
            IRC_SERVER_NAME,
            RPL_ENDOFNAMES,
            &nick,
            &[channel],
            "End of /NAMES list",
            &mut out,
        );
        out
    }

    /// `352`/`315`: who is in the room (`WHO #chat`) or who one nick is.
    fn irc_who(&mut self, id: ConnId, mask: Option<&str>, joined: bool) {
        let channel = self.shell.config.irc_channel.clone();
        let names = if joined {
            self.core.names()
        } else {
            Vec::new()
        };
        let Some(nick) = self.shell.irc(id).map(|s| s.target().to_owned()) else {
            return;
        };
        let mask = mask.unwrap_or("*");
        let all = mask == "*" || mask.eq_ignore_ascii_case(&channel);
        self.shell.irc_bytes(id, |out| {
            for name in names.iter().filter(|n| all || n.eq_ignore_ascii_case(mask)) {
                let text = format!("0 {name}");
                push_numeric(
                    IRC_SERVER_NAME,
                    RPL_WHOREPLY,
                    &nick,
                    &[&channel, name, IRC_SERVER_NAME, IRC_SERVER_NAME, name, "H"],
                    &text,
                    out,
                );
            }
            push_numeric(
                IRC_SERVER_NAME,
                RPL_ENDOFWHO,
                &nick,
                &[mask],
                "End of /WHO list",
                out,
            );
        });
    }

    /// End of a round: every IRC member admitted in it gets the room's names, then what was
    /// held for it meanwhile.
    pub(super) fn irc_finish_bursts(&mut self) {
        while let Some(id) = self.shell.irc_bursts.pop() {
            let Some(held) = self.shell.irc(id).and_then(|s| s.held.take()) else {
                continue;
            };
            let names = self.irc_names_reply(id);
            // Ahead of the history's replay: right after the JOIN and the 331.
            self.shell.queue(id, &Outgoing::verbatim(names), true);
            for line in held {
                self.shell.queue(id, &line, false);
            }
        }
    }

    /// `--irc-ping`: a silent connection is pinged; one silent since its ping is dropped.
    pub(super) fn irc_ping(&mut self, id: ConnId, now: Now) {
        let interval = self.shell.config.irc_ping;
        let Some(session) = self.shell.irc(id) else {
            return;
        };
        let due = session.last_input + interval;
        if now.at < due {
            self.shell
                .timers
                .arm(due, id.key, id.serial, TimerKind::IrcPing);
            return;
        }
        if session.ping_out {
            self.shell.irc_bytes(id, |out| {
                push_line(None, "ERROR", &[], Some("Closing link: ping timeout"), out)
            });
            self.core
                .gone(id, LeaveReason::Dropped, now, &mut self.shell);
            self.shell.close_conn(id, now.at);
            return;
        }
        session.ping_out = true;
        session.last_input = now.at;
        self.shell.irc_bytes(id, |out| {
            push_line(None, "PING", &[], Some(IRC_SERVER_NAME), out)
        });
        self.shell
            .timers
            .arm(now.at + interval, id.key, id.serial, TimerKind::IrcPing);
    }
}
