//! The IRC test kit: a raw IRC connection that reads CR LF lines and checks each is one IRC
//! line, and the server, native member and IRC member set-ups the IRC suites share.
//!
//! Every wait is a read with a deadline.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat_testkit::{Client, Server, TIMEOUT};

/// A raw IRC connection.
pub struct Irc {
    pub stream: TcpStream,
    pending: Vec<u8>,
    pub name: String,
    /// The token the server gave this member after its approval (its IRC password).
    pub token: Option<String>,
    /// Lines [`Irc::read_token`] passed on its way to the token's notices (the history's
    /// replay may come first): read again before anything new.
    stash: std::collections::VecDeque<String>,
}

impl Irc {
    #[track_caller]
    pub fn connect(addr: SocketAddr, name: &str) -> Irc {
        let stream = TcpStream::connect(addr).unwrap();
        Irc {
            stream,
            pending: Vec::new(),
            name: name.to_owned(),
            token: None,
            stash: Default::default(),
        }
    }

    /// An IRC connection over `stream` (made by the caller: from another address, say).
    pub fn over(stream: TcpStream, name: &str) -> Irc {
        Irc {
            stream,
            pending: Vec::new(),
            name: name.to_owned(),
            token: None,
            stash: Default::default(),
        }
    }

    #[track_caller]
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next line without CR LF, or `None` at end of file; fails on timeout.
    #[track_caller]
    pub fn try_line(&mut self, within: Duration) -> Result<String, &'static str> {
        if let Some(line) = self.stash.pop_front() {
            return Ok(line);
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(pos) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..pos + 2).take(pos).collect();
                let line = String::from_utf8(line).unwrap();
                assert!(
                    !line.contains(['\r', '\n', '\0']),
                    "[{}] {line:?}",
                    self.name
                );
                let body = if line.starts_with('@') {
                    line.split_once(' ').map_or("", |(_, b)| b)
                } else {
                    &line
                };
                assert!(
                    body.len() <= 510,
                    "[{}] {} bytes: {line:?}",
                    self.name,
                    body.len()
                );
                return Ok(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timeout");
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("eof"),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err("timeout")
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err("eof"),
            }
        }
    }

    #[track_caller]
    pub fn line(&mut self) -> String {
        match self.try_line(TIMEOUT) {
            Ok(line) => line,
            Err(end) => panic!(
                "[{}] expected a line, got {end} (pending {:?})",
                self.name,
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }

    /// Skips lines until one contains `part`; returns it.
    #[track_caller]
    pub fn until(&mut self, part: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.try_line(TIMEOUT) {
                Ok(line) if line.contains(part) => return line,
                Ok(line) => seen.push(line),
                Err(end) => panic!(
                    "[{}] no line with {part:?} ({end}); saw {seen:#?}",
                    self.name
                ),
            }
        }
    }

    /// The next line, which must contain `part`.
    #[track_caller]
    pub fn expect(&mut self, part: &str) -> String {
        let line = self.line();
        assert!(
            line.contains(part),
            "[{}] expected {part:?} in {line:?}",
            self.name
        );
        line
    }

    /// Nothing arrives for `quiet`.
    #[track_caller]
    pub fn expect_nothing(&mut self, quiet: Duration) {
        if let Ok(line) = self.try_line(quiet) {
            panic!("[{}] expected nothing, got {line:?}", self.name);
        }
    }

    /// Lines until the server closes: the last must be an `ERROR`.
    #[track_caller]
    pub fn expect_error_then_close(&mut self) -> String {
        let mut last = None;
        loop {
            match self.try_line(TIMEOUT) {
                Ok(line) => last = Some(line),
                Err("eof") => break,
                Err(end) => panic!("[{}] expected a close, got {end} after {last:?}", self.name),
            }
        }
        let last = last.unwrap_or_default();
        assert!(
            last.starts_with("ERROR :"),
            "[{}] closed after {last:?}",
            self.name
        );
        last
    }

    /// Registers as irssi does: `CAP LS 302`, its `JOIN :` probe, `NICK`, `USER`, then the caps
    /// it wants and `CAP END`; reads through `422`.
    #[track_caller]
    pub fn register(&mut self, nick: &str, caps: &str) {
        self.send("CAP LS 302");
        self.send("JOIN :");
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} {nick} localhost :Real Name"));
        self.expect(" CAP * LS :");
        self.expect(" 451 * JOIN :");
        if !caps.is_empty() {
            self.send(&format!("CAP REQ :{caps}"));
            self.expect(&format!(" CAP * ACK :{caps}"));
        }
        self.send("CAP END");
        self.expect(&format!(" 001 {nick} :"));
        self.until(" 422 ");
    }
}

/// A server with an operator console, a native listener and an IRC listener; the IRC address.
pub fn server(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["--irc-listen", "127.0.0.1:0", "--log-level", "warn"];
    args.extend_from_slice(extra);
    let mut server = Server::start(&args);
    let line = server.expect_console("listening on ");
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|l| l.strip_suffix(" (IRC)"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no IRC address in {line:?}"));
    (server, addr)
}

/// A native member, approved by the operator.
#[track_caller]
pub fn native(server: &mut Server, name: &str) -> Client {
    let (mut c, _) = server.join_waiting(name);
    server.console(&format!("approve {name}"));
    c.expect_welcome(name);
    c
}

/// A native member of a server with `--auto-approve`.
#[track_caller]
pub fn native_auto(server: &Server, name: &str) -> Client {
    server.login(name)
}

/// An IRC member registered, waiting, then approved; reads through its `366` and the
/// notices of its token (kept in [`Irc::token`]).
#[track_caller]
pub fn irc_member(server: &mut Server, addr: SocketAddr, nick: &str, caps: &str) -> Irc {
    let mut irc = Irc::connect(addr, nick);
    irc.register(nick, caps);
    irc.expect(&format!("NOTICE {nick} :"));
    server.expect_console(&format!("join request: {nick} from "));
    server.console(&format!("approve {nick}"));
    irc.expect(&format!(":{nick}!{nick}@chat.server JOIN #chat"));
    irc.expect(" 331 ");
    irc.until(" 366 ");
    irc.read_token();
    irc
}

impl Irc {
    /// Reads the server's notices of this member's token (after its join burst, once its
    /// record is durable) and keeps the token.
    #[track_caller]
    pub fn read_token(&mut self) -> String {
        let nick = self.name.clone();
        let want = format!(":chat.server NOTICE {nick} :Your token is ");
        let mut passed = Vec::new();
        let line = loop {
            let line = self.line();
            if line.starts_with(&want) {
                break line;
            }
            passed.push(line);
        };
        let token = line.rsplit(' ').next().unwrap().to_owned();
        assert!(token.len() >= 22, "{line}");
        self.expect("PASS, or SASL PLAIN");
        self.expect(&format!(
            "irssi: /network add -sasl_mechanism plain -sasl_username {nick} -sasl_password {token} chat"
        ));
        self.expect(&format!("weechat: /set irc.server.chat.password {token}"));
        self.expect(&format!(
            "HexChat: Network List > chat > Edit > Password: {token} "
        ));
        self.token = Some(token.clone());
        self.stash.extend(passed);
        token
    }
}
