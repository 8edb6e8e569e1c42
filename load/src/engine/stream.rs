//! A member's byte stream: plain TCP, or TLS over it (`--tls`), behind one small type so the
//! rest of the engine reads and writes both the same way, with a socket's meaning of each
//! result: `Ok(0)` is end of file, `WouldBlock` is "wait for the next edge". The choice is made
//! once per call by a `match`, never per byte, so plain members pay nothing for TLS.
//!
//! TLS is rustls driven without blocking: reads feed the socket's bytes to the engine
//! (`read_tls`, `process_new_packets`) and hand back the plaintext; writes hand plaintext to
//! the engine and push its records to the socket as far as the socket takes them. Records that
//! did not fit wait in rustls until [`Stream::flush_records`] on the next writable edge (the
//! engine flushes after every read and on every writable event). Nothing here knows lines.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ClientConnection;

/// One member's connection.
#[derive(Debug)]
pub(super) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP; boxed, since a TLS session is far larger than a socket.
    Tls(Box<TlsStream>),
}

/// A rustls client session and the socket under it.
#[derive(Debug)]
pub(super) struct TlsStream {
    tcp: TcpStream,
    tls: ClientConnection,
}

impl Stream {
    /// TLS over `tcp` with the session `tls` (whose ClientHello goes out on the first flush).
    pub(super) fn tls(tcp: TcpStream, tls: ClientConnection) -> Stream {
        Stream::Tls(Box::new(TlsStream { tcp, tls }))
    }

    /// The socket, for connect checks and options.
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.tcp,
        }
    }

    /// The socket, for (re)registration with the poll.
    pub(super) fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &mut t.tcp,
        }
    }

    /// Whether a read shorter than asked means the socket is drained. True for TCP; not for
    /// TLS, where rustls may hold plaintext or records beyond what one read returns.
    pub(super) fn short_read_drains(&self) -> bool {
        matches!(self, Stream::Plain(_))
    }

    /// Reads plaintext, as `Read::read` on a non-blocking socket would.
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }

    /// Writes plaintext, as `Write::write` on a non-blocking socket would.
    pub(super) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    /// Pushes TLS records that wait to the socket; `Ok(true)` when none wait any more (always,
    /// for plain TCP).
    pub(super) fn flush_records(&mut self) -> io::Result<bool> {
        match self {
            Stream::Plain(_) => Ok(true),
            Stream::Tls(t) => t.flush_records(),
        }
    }
}

impl TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut at_eof = false;
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                // The TCP connection ended without close_notify: for a member, the same end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if at_eof {
                        return Ok(0);
                    }
                }
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => at_eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // rustls queued an alert saying why; send it if the socket takes it.
                let _ = self.flush_records();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages (and key updates) the bytes just read call for.
            self.flush_records()?;
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.flush_records()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write(buf)?;
        self.flush_records()?;
        if n == 0 {
            // rustls' buffer of plaintext waiting for the handshake is full: the handshake's
            // progress (a read) makes room.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush_records(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
