//! The members' connections: opening them (at most `--parallel` at once), finishing a
//! non-blocking connect, reading what arrives into lines, writing what waits, and closing. Each
//! member's state machine (`State`) is changed here and by the protocol handlers; nothing here
//! decides what a line means (that is `protocol.rs`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chat_common::framing::{RawFrame, RawLineFramer};
use mio::net::TcpStream;
use mio::{Interest, Token};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use socket2::{Domain, Protocol, Socket, Type};

use super::stream::Stream;
use super::Engine;
use crate::config::Proto;
use crate::irc;

/// Longest line accepted from a server; longer ones are counted as foreign and skipped.
pub(super) const MAX_LINE: usize = 16 * 1024;
/// An idle member's unsent-bytes buffer is given back above this capacity.
pub(super) const OUT_KEEP: usize = 16 * 1024;

/// Where a member's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Not opened yet.
    Idle,
    /// `connect` in progress.
    Connecting,
    /// Chat: waiting for `NAME?`.
    AwaitPrompt,
    /// Chat: name sent, waiting for `WELCOME`.
    AwaitWelcome,
    /// IRC: `NICK`/`USER` sent, waiting for 001.
    AwaitRegistered,
    /// IRC: `JOIN` sent, waiting for its echo.
    AwaitJoinEcho,
    /// Admitted.
    Member,
    /// Gone (by the server, an error or a failed connect).
    Closed,
}

#[derive(Debug)]
pub(super) struct Member {
    pub(super) name: String,
    pub(super) stream: Option<Stream>,
    pub(super) state: State,
    /// The incomplete line of this connection (bounded by [`MAX_LINE`]).
    pub(super) lines: RawLineFramer,
    /// Bytes not yet written, from `out_pos`. Emptied whenever fully written; the socket is
    /// registered for WRITABLE from the start (edge-triggered), so a write that would block is
    /// resumed by the next writable event. Senders stop appending at `OUT_CAP` (senders.rs) unwritten
    /// bytes; the other lines (name, registration, PONG) are a few bytes each.
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    /// Slow readers (`pace.rs`): bytes this member may still read in the current round.
    pub(super) allow: u64,
    /// Slow readers: bytes may wait unread in its socket (an event came that was not read to
    /// the end); the pacing rounds read it, and the end of admission reads it all.
    pub(super) backlog: bool,
}

impl Engine<'_> {
    /// Opens connections until `--parallel` are in progress or all N are started.
    pub(super) fn start_connects(&mut self) {
        while self.started < self.cfg.members
            && self.started - self.admitted - self.failed < self.cfg.parallel
        {
            let i = self.started;
            self.started += 1;
            self.t_first_connect.get_or_insert_with(Instant::now);
            let addr = self.addr_of(i);
            let tcp = match connect(addr, self.cfg.recv_buffer) {
                Ok(s) => s,
                Err(e) => {
                    self.fail(i, format!("connect {addr}: {e}"));
                    continue;
                }
            };
            let mut stream = match &self.tls {
                None if self.cfg.ws => Stream::ws(tcp, &addr.to_string()),
                None => Stream::Plain(tcp),
                Some(config) => {
                    let name = ServerName::IpAddress(addr.ip().into());
                    match ClientConnection::new(Arc::clone(config), name) {
                        Ok(tls) => Stream::tls(tcp, tls),
                        Err(e) => {
                            self.fail(i, format!("TLS: {e}"));
                            continue;
                        }
                    }
                }
            };
            if let Err(e) = self.poll.registry().register(
                stream.tcp_mut(),
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                self.fail(i, format!("register: {e}"));
                continue;
            }
            let m = &mut self.members[i];
            m.stream = Some(stream);
            m.state = State::Connecting;
        }
    }

    /// Where member `i` connects: round-robin over the addresses, or in a mixed room the IRC
    /// listener for an IRC member.
    fn addr_of(&self, i: usize) -> SocketAddr {
        match self.cfg.irc_addr {
            Some(irc) if self.cfg.proto.of(i) == Proto::Irc => irc,
            _ => self.cfg.addrs[i % self.cfg.addrs.len()],
        }
    }

    /// A connection failed before its member was admitted.
    pub(super) fn fail(&mut self, i: usize, why: String) {
        let m = &mut self.members[i];
        m.stream = None;
        m.state = State::Closed;
        self.failed += 1;
        if self.report.error.is_none() {
            self.report.error = Some(format!("{}: {why}", m.name));
        }
    }

    /// Member `i`'s connection is gone.
    pub(super) fn close(&mut self, i: usize, why: &str) {
        match self.members[i].state {
            State::Closed | State::Idle => {}
            State::Member => {
                let m = &mut self.members[i];
                m.stream = None;
                m.state = State::Closed;
                self.report.closed += 1;
                if self.report.error.is_none() {
                    self.report.error = Some(format!("{} was cut off: {why}", m.name));
                }
            }
            _ => self.fail(i, why.to_owned()),
        }
    }

    /// Checks a connect in progress; true when it is done and the member may read and write.
    pub(super) fn finish_connect(&mut self, i: usize) -> bool {
        let Some(stream) = self.members[i].stream.as_ref().map(Stream::tcp) else {
            return false;
        };
        let addr = self.addr_of(i);
        match stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                self.fail(i, format!("connect {addr}: {e}"));
                return false;
            }
        }
        match stream.peer_addr() {
            Ok(_) => {}
            // Not connected yet: a spurious event (mio documents these).
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return false,
            Err(e) => {
                self.fail(i, format!("connect {addr}: {e}"));
                return false;
            }
        }
        // Small lines, latency measured: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        match self.cfg.proto.of(i) {
            Proto::Chat | Proto::Mixed => self.members[i].state = State::AwaitPrompt,
            Proto::Irc => {
                let m = &mut self.members[i];
                irc::register(&m.name, &mut m.out);
                m.state = State::AwaitRegistered;
            }
        }
        // IRC's registration, and with TLS the ClientHello.
        self.flush(i);
        true
    }

    /// Reads what the socket holds and handles every complete line. With `to_end` (the peer
    /// closed or the socket failed) reads until end of file or an error.
    pub(super) fn read(&mut self, i: usize, to_end: bool) {
        self.read_some(i, to_end, usize::MAX);
    }

    /// Reads at most `limit` bytes (slow readers, `pace.rs`) and handles every complete line;
    /// returns the bytes read and whether the socket is drained (it would block, or is gone), so
    /// that nothing waits in it unseen: edge-triggered, bytes left there raise no new event.
    pub(super) fn read_some(&mut self, i: usize, to_end: bool, limit: usize) -> (usize, bool) {
        let mut buf = std::mem::take(&mut self.buf);
        let mut lines = std::mem::replace(&mut self.members[i].lines, RawLineFramer::new(1));
        let mut got = 0usize;
        let mut drained = true;
        let stream_drains = self.members[i]
            .stream
            .as_ref()
            .is_some_and(Stream::short_read_drains);
        while let Some(stream) = self.members[i].stream.as_mut() {
            let want = buf.len().min(limit - got);
            if want == 0 {
                drained = false;
                break;
            }
            let n = match stream.read(&mut buf[..want]) {
                Ok(0) => {
                    self.close(i, "the server closed the connection");
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.close(i, &format!("read: {e}"));
                    break;
                }
            };
            // One clock read per read call serves every line in it: the clock costs as much as
            // handling a line.
            let now = Instant::now();
            self.last_progress = now;
            let now_ns = now.duration_since(self.clock).as_nanos() as u64;
            got += n;
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let (used, frame) = lines.feed(rest);
                match frame {
                    Some(RawFrame::Line(line)) => self.on_line(i, line, now_ns),
                    Some(RawFrame::TooLong) => self.report.foreign += 1,
                    None => {}
                }
                rest = &rest[used..];
            }
            if n < want && !to_end && stream_drains {
                // A short read of a TCP socket took everything it held; bytes that arrive later
                // raise a new edge. Saves the read that would only say WouldBlock, one syscall
                // per wakeup. A FIN that came with the data has its own flag (`to_end`).
                break;
            }
        }
        // A long line seen once must not pin memory on each of 10,000 connections.
        lines.release_idle();
        self.members[i].lines = lines;
        self.buf = buf;
        self.flush(i);
        (got, drained)
    }

    /// Writes what member `i` has pending, until done or the socket would block.
    pub(super) fn flush(&mut self, i: usize) {
        let m = &mut self.members[i];
        let Some(stream) = m.stream.as_mut() else {
            return;
        };
        while m.out_pos < m.out.len() {
            match stream.write(&m.out[m.out_pos..]) {
                Ok(0) => {
                    self.close(i, "write returned 0");
                    return;
                }
                Ok(n) => m.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(i, &format!("write: {e}"));
                    return;
                }
            }
        }
        m.out.clear();
        m.out_pos = 0;
        if m.out.capacity() > OUT_KEEP {
            m.out.shrink_to(OUT_KEEP);
        }
        // TLS records the socket did not take wait for the next writable edge.
        if let Err(e) = stream.flush_records() {
            self.close(i, &format!("write: {e}"));
        }
    }

    pub(super) fn on_admitted(&mut self, i: usize) {
        let m = &mut self.members[i];
        if m.state == State::Member || m.state == State::Closed {
            return;
        }
        m.state = State::Member;
        m.out.shrink_to(OUT_KEEP);
        self.admitted += 1;
        self.t_last_admit = Some(Instant::now());
        self.start_connects();
    }
}

/// Starts a non-blocking connect to `addr`; with `recv_buffer`, on a socket whose SO_RCVBUF is
/// set first, so the window it offers the server is small from the handshake on.
fn connect(addr: SocketAddr, recv_buffer: Option<usize>) -> io::Result<TcpStream> {
    let Some(size) = recv_buffer else {
        return TcpStream::connect(addr);
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_recv_buffer_size(size)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        // Under way: the first writable event tells how it ended (`finish_connect`).
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}
