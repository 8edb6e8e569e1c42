//! A connection's byte stream: what the reactor reads from and writes to.
//!
//! Plain TCP or TLS ([`super::tls`]). The reactor, the queues and the core never look inside:
//! they read, write, flush what the stream itself still holds, shut the write half and
//! (de)register, the same for every kind.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::tls::TlsStream;

/// One connection's stream.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the engine is large, and most connections may be plain).
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Shuts the write half (after the last polite line went out); TLS sends close_notify first.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Tls(s) => s.shutdown_write(),
        }
    }

    /// Sends what the stream itself still holds (TLS records): `Ok(true)` when nothing is left
    /// (always, for plain TCP), `Ok(false)` when the socket is full.
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tcp(_) => Ok(true),
            Stream::Tls(s) => s.flush_pending(),
        }
    }

    /// Whether the stream holds bytes to send that no queued line accounts for (a TLS handshake
    /// reply, an alert, encrypted records).
    pub fn wants_write(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Tls(s) => s.wants_write(),
        }
    }

    /// Whether this is a TLS connection counted as a pending handshake (until its handshake is
    /// done).
    pub fn counted_handshake(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Tls(s) => s.counted(),
        }
    }

    /// `true` once, when a TLS handshake counted as pending has just finished.
    pub fn handshake_just_finished(&mut self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Tls(s) => s.handshake_just_finished(),
        }
    }

    /// Whether a read would return something that no readiness event will announce (TLS: the
    /// end of stream, seen while returning data).
    pub fn input_pending(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            Stream::Tls(s) => s.input_pending(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Tls(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Tls(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Tls(s) => s.deregister(registry),
        }
    }
}
