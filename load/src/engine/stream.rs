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

use crate::ws;

/// One member's connection.
#[derive(Debug)]
pub(super) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP; boxed, since a TLS session is far larger than a socket.
    Tls(Box<TlsStream>),
    /// WebSocket over TCP (`--ws`): the upgrade, then lines as frames.
    Ws(Box<WsStream>),
}

/// A WebSocket client connection: the upgrade request goes out first, the `101` is read before
/// any frame, then the server's frames are decoded in place and lines go out as frames.
#[derive(Debug)]
pub(super) struct WsStream {
    tcp: TcpStream,
    /// Bytes to send before anything else (the request, then frames the socket did not take).
    pending: Vec<u8>,
    pending_pos: usize,
    /// The answer's head so far (`None` once the `101` was read).
    head: Option<Vec<u8>>,
    frames: ws::FrameReader,
    /// Bytes read with the head that are frames: decoded by the next read.
    early: Vec<u8>,
    /// The server closed (a close frame): reads return end of file.
    closed: bool,
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

    /// WebSocket over `tcp` to `host` (whose upgrade request goes out on the first flush).
    pub(super) fn ws(tcp: TcpStream, host: &str) -> Stream {
        Stream::Ws(Box::new(WsStream {
            tcp,
            pending: ws::upgrade_request(host),
            pending_pos: 0,
            head: Some(Vec::new()),
            frames: ws::FrameReader::default(),
            early: Vec::new(),
            closed: false,
        }))
    }

    /// The socket, for connect checks and options.
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.tcp,
            Stream::Ws(w) => &w.tcp,
        }
    }

    /// The socket, for (re)registration with the poll.
    pub(super) fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &mut t.tcp,
            Stream::Ws(w) => &mut w.tcp,
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
            Stream::Ws(w) => w.read(buf),
        }
    }

    /// Writes plaintext, as `Write::write` on a non-blocking socket would.
    pub(super) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
            Stream::Ws(w) => w.write(buf),
        }
    }

    /// Pushes TLS records that wait to the socket; `Ok(true)` when none wait any more (always,
    /// for plain TCP).
    pub(super) fn flush_records(&mut self) -> io::Result<bool> {
        match self {
            Stream::Plain(_) => Ok(true),
            Stream::Tls(t) => t.flush_records(),
            Stream::Ws(w) => w.flush_pending(),
        }
    }
}

impl WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.closed || buf.is_empty() {
            return Ok(0);
        }
        if self.frames.newline_pending() {
            return Ok(self.frames.decode(buf, 0).0);
        }
        loop {
            let n = if self.early.is_empty() {
                self.tcp.read(buf)?
            } else {
                let n = self.early.len().min(buf.len());
                buf[..n].copy_from_slice(&self.early[..n]);
                self.early.drain(..n);
                n
            };
            if n == 0 {
                return Ok(0);
            }
            if let Some(head) = self.head.as_mut() {
                head.extend_from_slice(&buf[..n]);
                match ws::answer_head(head) {
                    Ok(None) => continue,
                    Ok(Some(len)) => {
                        self.early = head.split_off(len);
                        self.head = None;
                        continue;
                    }
                    Err(e) => return Err(io::Error::new(io::ErrorKind::ConnectionRefused, e)),
                }
            }
            let (written, seen) = self.frames.decode(buf, n);
            if seen == ws::Seen::Closed {
                self.closed = true;
                return Ok(written);
            }
            if written > 0 {
                return Ok(written);
            }
        }
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<usize> {
        if !self.flush_pending()? || self.head.is_some() {
            // The request first; lines wait until the upgrade is answered.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.pending.clear();
        self.pending_pos = 0;
        let used = ws::encode_lines(lines, &mut self.pending);
        self.flush_pending()?;
        Ok(used)
    }

    fn flush_pending(&mut self) -> io::Result<bool> {
        while self.pending_pos < self.pending.len() {
            match self.tcp.write(&self.pending[self.pending_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.pending_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
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
