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

use super::conn::Conn;
use super::stream::Stream;
use super::tls::TlsStream;
use super::{token_of, Reactor};
use crate::chat::{ConnId, Now};

impl Reactor {
    /// Accepts from the plain listener, or the TLS one when `tls`.
    pub(super) fn accept_all(&mut self, tls: bool, now: Now) {
        loop {
            let Some(listener) = self.listener_of(tls) else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.open_conn(stream, addr, tls, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // Linux takes the descriptor before it looks at the backlog, so EMFILE
                    // comes even when nobody is waiting: stop unless a connection was refused.
                    if !self.refuse_with_spare_fd(tls) {
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
    fn listener_of(&self, tls: bool) -> Option<&TcpListener> {
        if tls {
            self.tls_listener.as_ref()
        } else {
            self.listener.as_ref()
        }
    }

    fn refuse_with_spare_fd(&mut self, tls: bool) -> bool {
        let Some(spare) = self.spare_fd.take() else {
            log::warn!("out of file descriptors and no spare descriptor: connections wait");
            return false;
        };
        drop(spare);
        let refused = match self.listener_of(tls).map(TcpListener::accept) {
            Some(Ok((stream, addr))) => {
                log::debug!("out of file descriptors: refusing {addr}");
                refuse(
                    stream,
                    tls,
                    "the server is out of file descriptors; try again later",
                );
                true
            }
            _ => false,
        };
        self.spare_fd = std::fs::File::open("/dev/null").ok();
        refused && self.spare_fd.is_some()
    }

    fn open_conn(&mut self, stream: TcpStream, addr: SocketAddr, tls: bool, now: Now) {
        let ip = addr.ip();
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        let open = self.shell.conns.len();
        if let Err(why) = self.core.may_connect(open, from_ip) {
            log::debug!("refusing {addr} ({open} connections, {from_ip} from {ip}): {why}");
            refuse(stream, tls, &why.to_string());
            return;
        }
        if tls && !self.handshakes.try_start(ip) {
            log::debug!(
                "refusing {addr}: {} TLS handshakes under way from {ip}",
                self.handshakes.of(ip)
            );
            return;
        }
        let _ = stream.set_nodelay(true);
        let mut stream = match (tls, &self.tls) {
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
        let entry = self.shell.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut stream, token_of(key), Interest::READABLE)
        {
            log::warn!("cannot register {addr}: {e}");
            if stream.counted_handshake() {
                self.handshakes.end(ip);
            }
            return;
        }
        self.next_serial += 1;
        let id = ConnId {
            key,
            serial: self.next_serial,
        };
        entry.insert(Conn::new(stream, addr, id, &self.shell.config));
        *self.per_ip.entry(ip).or_insert(0) += 1;
        log::debug!("{addr} connected as #{}", id.serial);
        self.core.connected(id, addr, now, &mut self.shell);
        if tls {
            self.core.set_transport(id, crate::chat::Transport::Tls);
        }
    }
}

/// Best-effort refusal of a connection that is not kept: one ERROR line (plain TCP only), then
/// close.
fn refuse(stream: TcpStream, tls: bool, why: &str) {
    if tls {
        return;
    }
    let line = ServerMsg::Error {
        code: ErrorCode::ServerFull,
        text: why,
    }
    .to_line();
    let _ = (&stream).write(&line);
}
