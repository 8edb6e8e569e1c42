//! Registration of an IRC connection, as a state machine that knows no socket: capability
//! negotiation (`CAP LS 302`/`REQ`/`LIST`/`END`), `PASS`, `NICK`, `USER`, SASL `PLAIN`
//! (`AUTHENTICATE`), `PING` and `QUIT`, until the connection can ask the room for its nick.
//!
//! The machine writes the replies that need nothing from the room (`CAP`, `AUTHENTICATE +`,
//! `461`, `432`, `451`, `462`, `PONG`) into the caller's buffer and returns a [`Step`] when the
//! room must act: [`Step::Register`] once a nick and `USER` are in and negotiation is over (the
//! room then answers with the welcome burst, or `433` and the machine waits for another
//! `NICK`), [`Step::SaslPlain`] to check a token. Registration thus completes at once, before
//! the operator decides, as clients need. This module never panics and bounds what it keeps
//! (nick, password and SASL payload are each capped).

use super::caps::{Cap, CapSet};
use super::encode::{push_line, push_numeric};
use super::message::Message;
use super::nick::validate_nick;
use super::numeric::*;

/// Longest SASL payload accepted, in base64 bytes (three 400-byte chunks: far more than a name
/// and a token need); longer gets `905`.
pub const MAX_SASL_PAYLOAD: usize = 1200;

/// Longest password (`PASS`) kept, in bytes; a longer one is treated as wrong.
pub const MAX_PASSWORD: usize = 256;

/// A SASL chunk of this many bytes means more chunks follow.
const SASL_CHUNK: usize = 400;

/// Proof a client offered: a token from `PASS` or SASL `PLAIN`. Its `Debug` never shows the
/// secret, so no log line or test failure can print a member's token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The name the token is for (SASL's authentication id); `None` for `PASS`, which names
    /// no one (the nick is the name).
    pub name: Option<String>,
    /// The secret: the member's token.
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

/// What the room must do after a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing: any reply was written.
    Continue,
    /// Ask the room for `nick` (a valid nick), with the proof offered, if any. The caller
    /// then calls [`Registration::accepted`] or [`Registration::nick_refused`].
    Register {
        /// The wanted nick.
        nick: String,
        /// The client's proof (`PASS` or a SASL login that succeeded).
        credential: Option<Credential>,
    },
    /// SASL `PLAIN` credentials to check; answer with [`Registration::sasl_result`].
    SaslPlain(Credential),
    /// The client sent `QUIT`: send `ERROR` and close.
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sasl {
    Idle,
    /// `AUTHENTICATE PLAIN` accepted; base64 chunks so far.
    Payload(String),
    /// Credentials handed to the caller, waiting for [`Registration::sasl_result`].
    Checking(Credential),
    /// Logged in with this credential.
    Done(Credential),
}

/// The registration state of one connection.
#[derive(Debug, Clone)]
pub struct Registration {
    server: String,
    offered: CapSet,
    /// Capabilities the client enabled.
    caps: CapSet,
    /// `CAP LS` or `CAP REQ` was seen and `CAP END` not yet: registration waits.
    negotiating: bool,
    v302: bool,
    nick: Option<String>,
    user: bool,
    password: Option<String>,
    sasl: Sasl,
    /// [`Step::Register`] was returned and not answered yet.
    asking: bool,
    done: bool,
}

impl Registration {
    /// A new connection to the server named `server` that offers the capabilities `offered`.
    pub fn new(server: &str, offered: CapSet) -> Self {
        Registration {
            server: server.to_owned(),
            offered,
            caps: CapSet::default(),
            negotiating: false,
            v302: false,
            nick: None,
            user: false,
            password: None,
            sasl: Sasl::Idle,
            asking: false,
            done: false,
        }
    }

    /// The capabilities the client enabled.
    pub fn caps(&self) -> CapSet {
        self.caps
    }

    /// Whether registration is complete (the room accepted the nick).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The nick the client gave last, if any.
    pub fn nick(&self) -> Option<&str> {
        self.nick.as_deref()
    }

    fn target(&self) -> &str {
        match (&self.nick, self.done) {
            (Some(nick), true) => nick,
            _ => "*",
        }
    }

    fn numeric(&self, code: &str, middle: &[&str], text: &str, out: &mut Vec<u8>) {
        push_numeric(&self.server, code, self.target(), middle, text, out);
    }

    /// Handles one line before registration is complete (the caller routes lines here until
    /// [`Registration::is_done`]); replies go to `out`.
    pub fn handle(&mut self, msg: &Message<'_>, out: &mut Vec<u8>) -> Step {
        let command = msg.command.to_ascii_uppercase();
        match command.as_str() {
            "CAP" => self.cap(msg, out),
            "PASS" => match msg.param(0) {
                None => self.numeric(ERR_NEEDMOREPARAMS, &["PASS"], "Not enough parameters", out),
                Some(_) if self.done => {
                    self.numeric(ERR_ALREADYREGISTERED, &[], "You may not reregister", out)
                }
                Some(p) => self.password = Some(p.chars().take(MAX_PASSWORD + 1).collect()),
            },
            "NICK" => match msg.param(0).filter(|n| !n.is_empty()) {
                None => self.numeric(ERR_NONICKNAMEGIVEN, &[], "No nickname given", out),
                Some(nick) => match validate_nick(nick) {
                    Ok(nick) => self.nick = Some(nick.to_owned()),
                    Err(e) => {
                        let shown: String = nick
                            .chars()
                            .filter(|c| !crate::sanitize::is_forbidden(*c))
                            .take(crate::protocol::MAX_NAME_LEN)
                            .collect();
                        self.numeric(ERR_ERRONEUSNICKNAME, &[&shown], &e.to_string(), out);
                    }
                },
            },
            "USER" => {
                if msg.params().len() < 4 {
                    self.numeric(ERR_NEEDMOREPARAMS, &["USER"], "Not enough parameters", out);
                } else {
                    self.user = true;
                }
            }
            "AUTHENTICATE" => return self.authenticate(msg, out),
            "PING" => match msg.param(0) {
                None => self.numeric(ERR_NEEDMOREPARAMS, &["PING"], "Not enough parameters", out),
                Some(token) => push_line(
                    Some(&self.server),
                    "PONG",
                    &[&self.server],
                    Some(token),
                    out,
                ),
            },
            "PONG" => {}
            "QUIT" => return Step::Quit,
            // Everything else waits for registration; irssi's `JOIN :` probe (sent to detect
            // servers without CAP) expects exactly this 451.
            _ => self.numeric(
                ERR_NOTREGISTERED,
                &[msg.command],
                "You have not registered",
                out,
            ),
        }
        self.ready()
    }

    fn ready(&mut self) -> Step {
        if self.done || self.asking || self.negotiating || !self.user {
            return Step::Continue;
        }
        if matches!(self.sasl, Sasl::Payload(_) | Sasl::Checking(_)) {
            return Step::Continue;
        }
        let Some(nick) = self.nick.clone() else {
            return Step::Continue;
        };
        self.asking = true;
        let credential = match &self.sasl {
            Sasl::Done(c) => Some(c.clone()),
            _ => self
                .password
                .clone()
                .map(|secret| Credential { name: None, secret }),
        };
        Step::Register { nick, credential }
    }

    /// The room accepted the nick: registration is complete.
    pub fn accepted(&mut self) {
        self.asking = false;
        self.done = true;
    }

    /// The room refused the nick (the caller sent `433` or `432`): wait for another `NICK`.
    pub fn nick_refused(&mut self) {
        self.asking = false;
        self.nick = None;
    }

    /// Handles `CAP` (before or after registration); replies go to `out`.
    pub fn cap(&mut self, msg: &Message<'_>, out: &mut Vec<u8>) {
        let sub = msg.param(0).unwrap_or("").to_ascii_uppercase();
        let target = self.target().to_owned();
        let server = self.server.clone();
        let reply = |sub: &str, text: &str, out: &mut Vec<u8>| {
            push_line(Some(&server), "CAP", &[&target, sub], Some(text), out)
        };
        match sub.as_str() {
            "LS" => {
                if !self.done {
                    self.negotiating = true;
                }
                self.v302 |= msg.param(1).and_then(|v| v.parse::<u32>().ok()) >= Some(302);
                reply("LS", &self.offered.ls(self.v302), out);
            }
            "LIST" => reply("LIST", &self.caps.names(), out),
            "REQ" => {
                if !self.done {
                    self.negotiating = true;
                }
                let list = msg.param(1).unwrap_or("");
                if self.caps.request(list, self.offered) {
                    reply("ACK", list, out);
                } else {
                    reply("NAK", list, out);
                }
            }
            "END" => self.negotiating = false,
            _ => push_numeric(
                &server,
                "410",
                &target,
                &[msg.param(0).unwrap_or("*")],
                "Invalid CAP command",
                out,
            ),
        }
    }

    fn authenticate(&mut self, msg: &Message<'_>, out: &mut Vec<u8>) -> Step {
        let Some(arg) = msg.param(0) else {
            self.numeric(
                ERR_NEEDMOREPARAMS,
                &["AUTHENTICATE"],
                "Not enough parameters",
                out,
            );
            return Step::Continue;
        };
        if !self.caps.has(Cap::Sasl) || self.done {
            self.numeric(ERR_SASLFAIL, &[], "SASL authentication failed", out);
            return Step::Continue;
        }
        if arg == "*" && !matches!(self.sasl, Sasl::Done(_)) {
            self.sasl = Sasl::Idle;
            self.numeric(ERR_SASLABORTED, &[], "SASL authentication aborted", out);
            return self.ready();
        }
        match std::mem::replace(&mut self.sasl, Sasl::Idle) {
            Sasl::Done(c) => {
                self.sasl = Sasl::Done(c);
                self.numeric(
                    ERR_SASLALREADY,
                    &[],
                    "You have already authenticated using SASL",
                    out,
                );
                Step::Continue
            }
            Sasl::Idle => {
                if arg.eq_ignore_ascii_case("PLAIN") {
                    self.sasl = Sasl::Payload(String::new());
                    push_line(None, "AUTHENTICATE", &["+"], None, out);
                } else {
                    self.numeric(
                        RPL_SASLMECHS,
                        &["PLAIN"],
                        "are available SASL mechanisms",
                        out,
                    );
                    self.numeric(ERR_SASLFAIL, &[], "SASL authentication failed", out);
                }
                Step::Continue
            }
            Sasl::Payload(mut payload) => {
                if arg != "+" {
                    payload.push_str(arg);
                }
                if payload.len() > MAX_SASL_PAYLOAD {
                    self.numeric(ERR_SASLTOOLONG, &[], "SASL message too long", out);
                    return self.ready();
                }
                if arg.len() == SASL_CHUNK {
                    self.sasl = Sasl::Payload(payload);
                    return Step::Continue;
                }
                match plain_credential(&payload) {
                    Some(credential) => {
                        self.sasl = Sasl::Checking(credential.clone());
                        Step::SaslPlain(credential)
                    }
                    None => {
                        self.numeric(ERR_SASLFAIL, &[], "SASL authentication failed", out);
                        self.ready()
                    }
                }
            }
            Sasl::Checking(c) => {
                self.sasl = Sasl::Checking(c);
                Step::Continue
            }
        }
    }

    /// The caller's verdict on the credential of [`Step::SaslPlain`]: `900` and `903`, or
    /// `904`. Returns the next step (registration may now go on).
    pub fn sasl_result(&mut self, ok: bool, out: &mut Vec<u8>) -> Step {
        let Sasl::Checking(credential) = std::mem::replace(&mut self.sasl, Sasl::Idle) else {
            return Step::Continue;
        };
        if ok {
            let name = credential.name.clone().unwrap_or_default();
            let text = format!("You are now logged in as {name}");
            self.numeric(RPL_LOGGEDIN, &["*", &name], &text, out);
            self.numeric(RPL_SASLSUCCESS, &[], "SASL authentication successful", out);
            self.sasl = Sasl::Done(credential);
        } else {
            self.numeric(ERR_SASLFAIL, &[], "SASL authentication failed", out);
        }
        self.ready()
    }
}

/// Decodes a SASL `PLAIN` payload (base64 of `authzid NUL authcid NUL password`).
fn plain_credential(payload: &str) -> Option<Credential> {
    let bytes = base64_decode(payload)?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('\0');
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    let password = parts.next()?;
    if parts.next().is_some() || authcid.is_empty() || password.len() > MAX_PASSWORD {
        return None;
    }
    if !authzid.is_empty() && authzid != authcid {
        return None;
    }
    Some(Credential {
        name: Some(authcid.to_owned()),
        secret: password.to_owned(),
    })
}

/// Standard base64 with padding (RFC 4648); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_never_shows_its_secret() {
        let c = Credential {
            name: Some("alice".into()),
            secret: "s3cr3t-token-value".into(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("alice") && shown.contains("18 bytes"),
            "{shown}"
        );
    }

    /// Feeds `lines` and returns the replies and the last step.
    fn feed(reg: &mut Registration, lines: &[&str]) -> (String, Step) {
        let mut out = Vec::new();
        let mut step = Step::Continue;
        for line in lines {
            step = reg.handle(&Message::parse(line).unwrap(), &mut out);
        }
        (String::from_utf8(out).unwrap(), step)
    }

    fn reg() -> Registration {
        Registration::new("chat.test", CapSet::all())
    }

    #[test]
    fn nick_and_user_register_at_once() {
        let mut r = reg();
        let (out, step) = feed(&mut r, &["NICK alice", "USER a 0 * :Alice"]);
        assert_eq!(out, "");
        assert_eq!(
            step,
            Step::Register {
                nick: "alice".into(),
                credential: None
            }
        );
        r.accepted();
        assert!(r.is_done());
    }

    #[test]
    fn irssi_negotiates_caps_first() {
        let mut r = reg();
        let (out, step) = feed(
            &mut r,
            &[
                "CAP LS 302",
                "JOIN :",
                "NICK alice",
                "USER alice alice localhost :Alice",
            ],
        );
        assert_eq!(
            out,
            ":chat.test CAP * LS :server-time message-tags echo-message sasl=PLAIN\r\n\
             :chat.test 451 * JOIN :You have not registered\r\n"
        );
        assert_eq!(step, Step::Continue);
        let (out, step) = feed(&mut r, &["CAP REQ :server-time message-tags", "CAP END"]);
        assert_eq!(out, ":chat.test CAP * ACK :server-time message-tags\r\n");
        assert!(matches!(step, Step::Register { .. }));
        assert!(r.caps().has(Cap::ServerTime) && !r.caps().has(Cap::EchoMessage));
        // No second Register while the first is unanswered.
        assert_eq!(feed(&mut r, &["NICK bob"]).1, Step::Continue);
    }

    #[test]
    fn a_refused_nick_waits_for_another() {
        let mut r = reg();
        assert!(matches!(
            feed(&mut r, &["NICK alice", "USER a 0 * :A"]).1,
            Step::Register { .. }
        ));
        r.nick_refused();
        assert_eq!(
            feed(&mut r, &["PING x"]).0,
            ":chat.test PONG chat.test :x\r\n"
        );
        assert_eq!(
            feed(&mut r, &["NICK alice2"]).1,
            Step::Register {
                nick: "alice2".into(),
                credential: None
            }
        );
    }

    #[test]
    fn bad_input_before_registration() {
        let mut r = reg();
        let (out, _) = feed(
            &mut r,
            &[
                "PRIVMSG #chat :hi",
                "NICK \u{2}bold",
                "NICK",
                "USER a",
                "CAP FOO",
                "JOIN #chat",
            ],
        );
        let lines: Vec<&str> = out.split_terminator("\r\n").collect();
        assert_eq!(
            lines[0],
            ":chat.test 451 * PRIVMSG :You have not registered"
        );
        assert!(
            lines[1].starts_with(":chat.test 432 * bold :"),
            "{}",
            lines[1]
        );
        assert!(!lines[1].contains('\u{2}'));
        assert_eq!(lines[2], ":chat.test 431 * :No nickname given");
        assert_eq!(lines[3], ":chat.test 461 * USER :Not enough parameters");
        assert_eq!(lines[4], ":chat.test 410 * FOO :Invalid CAP command");
        assert_eq!(lines[5], ":chat.test 451 * JOIN :You have not registered");
        assert_eq!(feed(&mut r, &["QUIT :bye"]).1, Step::Quit);
    }

    #[test]
    fn pass_is_the_credential() {
        let mut r = reg();
        let (_, step) = feed(&mut r, &["PASS s3cret", "NICK alice", "USER a 0 * :A"]);
        assert_eq!(
            step,
            Step::Register {
                nick: "alice".into(),
                credential: Some(Credential {
                    name: None,
                    secret: "s3cret".into()
                })
            }
        );
    }

    #[test]
    fn sasl_plain() {
        let mut r = reg();
        // base64("\0alice\0tok3n")
        let (out, step) = feed(
            &mut r,
            &[
                "CAP LS 302",
                "NICK alice",
                "USER a 0 * :A",
                "CAP REQ sasl",
                "AUTHENTICATE PLAIN",
                "AUTHENTICATE AGFsaWNlAHRvazNu",
            ],
        );
        assert!(out.ends_with("AUTHENTICATE +\r\n"), "{out}");
        let credential = Credential {
            name: Some("alice".into()),
            secret: "tok3n".into(),
        };
        assert_eq!(step, Step::SaslPlain(credential.clone()));
        let mut out = Vec::new();
        assert_eq!(r.sasl_result(true, &mut out), Step::Continue);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains(" 900 * * alice :You are now logged in as alice"),
            "{out}"
        );
        assert!(out.contains(" 903 * :"), "{out}");
        // Logged in: another AUTHENTICATE (or an abort) is 907, and the login stays.
        for again in ["AUTHENTICATE PLAIN", "AUTHENTICATE *"] {
            let (out, _) = feed(&mut r, &[again]);
            assert_eq!(
                out,
                ":chat.test 907 * :You have already authenticated using SASL\r\n"
            );
        }
        assert_eq!(
            feed(&mut r, &["CAP END"]).1,
            Step::Register {
                nick: "alice".into(),
                credential: Some(credential)
            }
        );
    }

    #[test]
    fn sasl_failures() {
        let mut r = reg();
        feed(&mut r, &["CAP LS 302", "CAP REQ sasl"]);
        let (out, _) = feed(&mut r, &["AUTHENTICATE EXTERNAL"]);
        assert!(
            out.contains(" 908 * PLAIN :") && out.contains(" 904 * :"),
            "{out}"
        );
        let (out, _) = feed(&mut r, &["AUTHENTICATE PLAIN", "AUTHENTICATE !!!!"]);
        assert!(out.contains(" 904 * :"), "{out}");
        let chunk = "A".repeat(400);
        let lines: Vec<String> = std::iter::once("AUTHENTICATE PLAIN".to_owned())
            .chain((0..4).map(|_| format!("AUTHENTICATE {chunk}")))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (out, _) = feed(&mut r, &refs);
        assert!(out.contains(" 905 * :"), "{out}");
        let (out, _) = feed(&mut r, &["AUTHENTICATE PLAIN", "AUTHENTICATE *"]);
        assert!(out.contains(" 906 * :"), "{out}");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        for bad in ["Y", "YQ=", "Y===", "YQ==YQ==", "YW J", "\u{e9}AAA"] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }
}
