//! Accepting connections: each listener (plain, TLS) drained to `WouldBlock`, the sockets
//! counted (in all and per address) for the core's admission to decide `--max-clients` and
//! `--max-per-ip`, and running out of descriptors handled without spinning.
//!
//! A TLS connection beyond [`super::tls::MAX_HANDSHAKES_PER_IP`] handshakes under way from its
//! address is closed at once. A TLS connection gets the current certificate (`Reactor::tls`) and from then on is a
//! connection like any other: its handshake runs as its bytes are read, inside the login
//! timeout that starts here. A refused TLS connection is closed without a word (an ERROR line
//! in clear text would only confuse its TLS client).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use chat_common::protocol::{ErrorCode, ServerMsg};
use mio::net::{TcpListener, TcpStream};
use mio::Interest;

use chat_common::framing::LineFramer;
use chat_common::irc::caps::CapSet;
use chat_common::irc::encode::push_line;
use chat_common::irc::MAX_WIRE_LINE;

use super::conn::Conn;
use super::irc::IrcSession;
use super::stream::Stream;
use super::tls::TlsStream;
use super::{token_of, Reactor};
use crate::chat::Transport;
use crate::chat::{ConnId, Now};
use crate::timers::TimerKind;

/// Which listener a connection came through: inside TLS or not, speaking IRC or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via {
    /// The connection speaks TLS.
    pub tls: bool,
    /// The connection speaks IRC.
    pub irc: bool,
}

impl Via {
    /// `--listen`.
    pub const PLAIN: Via = Via {
        tls: false,
        irc: false,
    };
    /// `--tls-listen`.
    pub const TLS: Via = Via {
        tls: true,
        irc: false,
    };
    /// `--irc-listen`.
    pub const IRC: Via = Via {
        tls: false,
        irc: true,
    };
    /// `--irc-tls-listen`.
    pub const IRC_TLS: Via = Via {
        tls: true,
        irc: true,
    };
}

impl Reactor {
    /// Accepts from one listener.
    pub(super) fn accept_all(&mut self, via: Via, now: Now) {
        loop {
            let Some(listener) = self.listener_of(via) else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.open_conn(stream, addr, via, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // Linux takes the descriptor before it looks at the backlog, so EMFILE
                    // comes even when nobody is waiting: stop unless a connection was refused.
                    if !self.refuse_with_spare_fd(via) {
                        return;
                    }
                }
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Out of descriptors: frees the spare, accepts one connection to tell it the server is
    /// full, closes it and takes the spare back. Without this the listener would stay readable
    /// and the pending connections would wait forever.
    ///
    /// Returns whether a connection was refused (so the caller may try to accept again).
    fn listener_of(&self, via: Via) -> Option<&TcpListener> {
        match (via.tls, via.irc) {
            (false, false) => self.listener.as_ref(),
            (true, false) => self.tls_listener.as_ref(),
            (false, true) => self.irc_listener.as_ref(),
            (true, true) => self.irc_tls_listener.as_ref(),
        }
    }

    fn refuse_with_spare_fd(&mut self, via: Via) -> bool {
        let Some(spare) = self.spare_fd.take() else {
            log::warn!("out of file descriptors and no spare descriptor: connections wait");
            return false;
        };
        drop(spare);
        let refused = match self.listener_of(via).map(TcpListener::accept) {
            Some(Ok((stream, addr))) => {
                log::debug!("out of file descriptors: refusing {addr}");
                refuse(
                    stream,
                    via,
                    "the server is out of file descriptors; try again later",
                );
                true
            }
            _ => false,
        };
        self.spare_fd = std::fs::File::open("/dev/null").ok();
        refused && self.spare_fd.is_some()
    }

    fn open_conn(&mut self, stream: TcpStream, addr: SocketAddr, via: Via, now: Now) {
        let ip = addr.ip();
        if let Some(why) = self.over_limits(addr) {
            refuse(stream, via, &why);
            return;
        }
        if via.tls && !self.handshakes.try_start(ip) {
            log::debug!(
                "refusing {addr}: {} TLS handshakes under way from {ip}",
                self.handshakes.of(ip)
            );
            return;
        }
        let _ = stream.set_nodelay(true);
        let transport = match (via.tls, via.irc) {
            (false, false) => Transport::Tcp,
            (true, false) => Transport::Tls,
            (false, true) => Transport::Irc,
            (true, true) => Transport::IrcTls,
        };
        let stream = match (via.tls, &self.tls) {
            (false, _) => Stream::Tcp(stream),
            (true, Some((_, config))) => match TlsStream::new(stream, Arc::clone(config)) {
                Ok(s) => Stream::Tls(Box::new(s)),
                Err(e) => {
                    log::warn!("cannot start TLS with {addr}: {e}");
                    self.handshakes.end(ip);
                    return;
                }
            },
            (true, None) => {
                self.handshakes.end(ip);
                return;
            }
        };
        self.register_conn(stream, addr, transport, now);
    }

    /// Why a new connection from `addr` may not be kept (`--max-clients`, `--max-per-ip`: the
    /// core decides from the shell's counts), if it may not.
    pub(super) fn over_limits(&self, addr: SocketAddr) -> Option<String> {
        let ip = addr.ip();
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        let open = self.shell.conns.len();
        let why = self.core.may_connect(open, from_ip).err()?;
        log::debug!("refusing {addr} ({open} connections, {from_ip} from {ip}): {why}");
        Some(why.to_string())
    }

    /// Makes `stream` a connection like any other (registered, counted, announced to the core).
    pub(super) fn register_conn(
        &mut self,
        mut stream: Stream,
        addr: SocketAddr,
        transport: Transport,
        now: Now,
    ) {
        let irc_dialect = matches!(transport, Transport::Irc | Transport::IrcTls)
            .then(|| self.shell.irc_dialect(CapSet::default()));
        let entry = self.shell.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut stream, token_of(key), Interest::READABLE)
        {
            log::warn!("cannot register {addr}: {e}");
            if stream.counted_handshake() {
                self.handshakes.end(addr.ip());
            }
            return;
        }
        self.next_serial += 1;
        let id = ConnId {
            key,
            serial: self.next_serial,
        };
        let mut conn = Conn::new(stream, addr, id, &self.shell.config);
        conn.transport = transport;
        if let Some(dialect) = irc_dialect {
            conn.irc = Some(Box::new(IrcSession::new(now.at)));
            conn.framer = LineFramer::new(MAX_WIRE_LINE);
            conn.out.set_dialect(dialect);
            let at = now.at + self.shell.config.irc_ping;
            self.shell
                .timers
                .arm(at, key, id.serial, TimerKind::IrcPing);
        }
        let pending = conn.stream.input_pending();
        entry.insert(conn);
        *self.per_ip.entry(addr.ip()).or_insert(0) += 1;
        self.shell.metrics.accepted(transport);
        log::debug!("{addr} connected as #{}", id.serial);
        self.core.connected(id, addr, now, &mut self.shell);
        self.core.set_transport(id, transport);
        if pending {
            // Frames that came with a WebSocket's request head: no event will announce them.
            self.requeue(id);
        }
    }
}

/// Best-effort refusal of a connection that is not kept: one ERROR line (plain TCP only, in
/// the listener's dialect), then close.
fn refuse(stream: TcpStream, via: Via, why: &str) {
    if via.tls {
        return;
    }
    let line = if via.irc {
        let mut out = Vec::new();
        push_line(None, "ERROR", &[], Some(why), &mut out);
        out
    } else {
        ServerMsg::Error {
            code: ErrorCode::ServerFull,
            text: why,
        }
        .to_line()
    };
    let _ = (&stream).write(&line);
}
