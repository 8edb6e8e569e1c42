//! One TLS connection's engine: a non-blocking TCP socket and a rustls
//! [`UnbufferedServerConnection`], seen by the reactor as a byte stream like any other
//! ([`super::stream::Stream::Tls`]).
//!
//! rustls's unbuffered API keeps no buffers of its own: the ciphertext read, the records to send
//! and the plaintext not yet taken are this module's, each sized to what it holds and freed as
//! soon as it is empty, as the plain path sizes its own (an idle member holds none of them; one
//! that sent an over-long line holds none once the line is read). What is left per connection
//! is rustls's state: keys, the key schedule, the record layer's counters.
//!
//! Reads pull ciphertext from the socket only when no plaintext is left, and return less than
//! asked only once the socket said `WouldBlock` (or the peer closed), so the input loop's "a short
//! read means drained" rule still holds under edge-triggered polling. A write encrypts at most
//! [`TLS_BUFFER`] bytes of plaintext and pushes the records to the socket; records the socket did
//! not take are held, and while any are a write is `WouldBlock` to the output queue, so a
//! stalled TLS reader costs at most `--max-queue` plus one write's records plus the kernel's
//! send buffer. Held records (handshake replies, the tail of a write) are pushed by
//! [`TlsStream::flush_pending`], which the end-of-round flush calls, and count as queued bytes
//! for the stall clock ([`TlsStream::wants_write`]). This module never blocks, never panics on
//! peer input, and knows nothing of lines or members.
//!
//! A connection still in its handshake is bounded twice: it may send at most
//! [`MAX_HANDSHAKE_INPUT`] bytes before the handshake is done (rustls joins a handshake message
//! of up to 64 KiB in the read buffer, which therefore never holds more than that for it), and
//! one address may have at most [`MAX_HANDSHAKES_PER_IP`] handshakes under way at once
//! ([`PendingHandshakes`], checked at accept); the login timeout ends the ones that never finish.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::ServerConfig;

/// Most plaintext encrypted by one write (so the records held for a reader that does not take
/// them stay about this size), and most plaintext held while the handshake is under way (the
/// reactor queues `NAME?` at accept), encrypted once the connection may send.
pub const TLS_BUFFER: usize = 64 * 1024;

/// Most bytes a peer may send before its handshake is done. A client's first flight is one
/// ClientHello (a few hundred bytes; about 2 KiB with a post-quantum key share), then a Finished
/// message and perhaps a ChangeCipherSpec. rustls would join a claimed handshake message of up
/// to 64 KiB: a peer that claimed one, sent most of it and stopped held 58.6 KiB of the server's
/// memory until its login timeout. The read buffer, which doubles from [`TLS_READ_FIRST`], grows
/// no further than this while the handshake is under way.
pub const MAX_HANDSHAKE_INPUT: usize = 12 * 1024;

/// Most TLS handshakes one address may have under way at once; a connection beyond it is
/// closed at accept. Above what a legitimate burst from one address needs (chat-load opens at
/// most 64 connections at once by default); a handshake costs at most about 20 KiB
/// ([`MAX_HANDSHAKE_INPUT`] plus rustls's state), so one address can pin about 2.5 MiB.
pub const MAX_HANDSHAKES_PER_IP: usize = 128;

/// Memory a handshake that ends unfinished is counted as giving back (its read buffer and
/// rustls's state), so that many of them going trigger the shell's return of free memory to
/// the system.
pub const HANDSHAKE_FOOTPRINT: usize = 16 * 1024;

/// Size of a connection's ciphertext read buffer when a read begins (a chat line's record, a
/// ClientHello); it doubles while a record does not fit, up to [`MAX_TLS_RECORD`].
pub const TLS_READ_FIRST: usize = 4 * 1024;

/// The largest TLS record a peer may send: a 5-byte header and 2^14 bytes of plaintext plus
/// the 2048 bytes of expansion TLS 1.2 allows. A read buffer this full with no whole record
/// in it is the peer's fault: the connection is cut.
pub const MAX_TLS_RECORD: usize = 5 + 16 * 1024 + 2048;

/// Room reserved per record for its header, padding and tag when encrypting (TLS 1.3 needs
/// 22 bytes, TLS 1.2 with AES-GCM 29); rustls says so when more is needed.
const RECORD_OVERHEAD: usize = 64;

/// Plaintext bytes per record that rustls writes (2^14).
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// How many TLS handshakes each address has under way.
#[derive(Debug, Default)]
pub struct PendingHandshakes {
    per_ip: HashMap<IpAddr, usize>,
}

impl PendingHandshakes {
    /// Counts one more handshake from `ip`, unless it has [`MAX_HANDSHAKES_PER_IP`] already.
    pub fn try_start(&mut self, ip: IpAddr) -> bool {
        let count = self.per_ip.entry(ip).or_insert(0);
        if *count >= MAX_HANDSHAKES_PER_IP {
            return false;
        }
        *count += 1;
        true
    }

    /// One handshake from `ip` finished or its connection went.
    pub fn end(&mut self, ip: IpAddr) {
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Handshakes under way from `ip`.
    pub fn of(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }
}

/// Why [`TlsStream::advance`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// rustls needs more ciphertext from the peer (or has nothing to do).
    NeedInput,
    /// The caller's buffer is full of plaintext.
    Full,
    /// The peer sent close_notify: no more plaintext will come.
    PeerClosed,
    /// This many bytes of the plaintext to send were encrypted into the outgoing records.
    Encrypted(usize),
}

/// Why a step of [`TlsStream::advance`] failed.
enum Fail {
    /// rustls refused the peer's input (it queued an alert saying why).
    Refused(rustls::Error),
    /// The socket failed, or a record could not be encrypted.
    Io(io::Error),
    /// A state this server never asks for (early data).
    Unexpected,
}

/// A TLS connection over a non-blocking TCP socket.
///
/// Every buffer is empty and unallocated while it holds nothing.
pub struct TlsStream {
    sock: TcpStream,
    conn: UnbufferedServerConnection,
    /// Ciphertext read and not yet used by rustls: `incoming[..received]` (what follows is room
    /// for the next read). Holds at most a partial record between reads (or, during the
    /// handshake, at most [`MAX_HANDSHAKE_INPUT`]); at most [`MAX_TLS_RECORD`] bytes long; freed
    /// whenever a read ends with nothing in it.
    incoming: Vec<u8>,
    received: usize,
    /// Records to send: `outgoing[sent..]`. At most one write's records (about [`TLS_BUFFER`])
    /// plus handshake messages and alerts; freed as soon as the socket took them all.
    outgoing: Vec<u8>,
    sent: usize,
    /// Decrypted plaintext the reader has not taken yet (a record's rest when the reader's buffer
    /// was smaller): `plain[taken..]`, at most one record; freed once taken.
    plain: Vec<u8>,
    taken: usize,
    /// Plaintext written before the connection may send (at most [`TLS_BUFFER`]), encrypted as
    /// soon as it may.
    early: Vec<u8>,
    /// The peer's end of stream (close_notify or TCP end of file) was seen after a read that
    /// returned data: the next read returns `Ok(0)`, and no readiness event will say so.
    eof_pending: bool,
    /// The peer's end of stream was seen: every read from now on returns `Ok(0)`.
    ended: bool,
    /// A close_notify is wanted ([`TlsStream::shutdown_write`]) ...
    close_wanted: bool,
    /// ... and has been encrypted into `outgoing`.
    close_queued: bool,
    /// Bytes the peer may still send before its handshake is done ([`MAX_HANDSHAKE_INPUT`] at
    /// first; unused once the handshake is done).
    handshake_budget: usize,
    /// rustls refused the peer's input: every read and write fails from now on, without
    /// asking rustls again.
    failed: bool,
    /// Whether this connection is counted in [`PendingHandshakes`] (from accept until its
    /// handshake is done or it goes).
    counted: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .field("handshaking", &self.conn.is_handshaking())
            .field("received", &self.received)
            .field("to_send", &(self.outgoing.len() - self.sent))
            .finish_non_exhaustive()
    }
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Appends what `produce` writes to `out`, giving it `guess` bytes of room first and as much as
/// it asks for if that was not enough (`required` reads how much from its error).
fn append_with<E: std::error::Error + Send + Sync + 'static>(
    out: &mut Vec<u8>,
    guess: usize,
    mut produce: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<InsufficientSizeError>,
) -> io::Result<()> {
    let start = out.len();
    out.reserve_exact(guess);
    out.resize(start + guess, 0);
    let written = match produce(&mut out[start..]) {
        Ok(n) => n,
        Err(e) => match required(&e) {
            Some(InsufficientSizeError { required_size }) => {
                out.reserve_exact(required_size.saturating_sub(guess));
                out.resize(start + required_size, 0);
                match produce(&mut out[start..]) {
                    Ok(n) => n,
                    Err(e) => {
                        out.truncate(start);
                        return Err(io::Error::other(e));
                    }
                }
            }
            None => {
                out.truncate(start);
                return Err(io::Error::other(e));
            }
        },
    };
    out.truncate(start + written);
    Ok(())
}

fn encode_size(e: &EncodeError) -> Option<InsufficientSizeError> {
    match e {
        EncodeError::InsufficientSize(size) => Some(*size),
        _ => None,
    }
}

fn encrypt_size(e: &EncryptError) -> Option<InsufficientSizeError> {
    match e {
        EncryptError::InsufficientSize(size) => Some(*size),
        _ => None,
    }
}

/// Room to encrypt `len` bytes of plaintext in.
fn sealed_size(len: usize) -> usize {
    len + len.div_ceil(RECORD_PLAINTEXT).max(1) * RECORD_OVERHEAD
}

/// Writes `out[*sent..]` to `sock` until it is all sent (`Ok(true)`, and `out` is freed) or the
/// socket is full (`Ok(false)`).
fn push(sock: &mut TcpStream, out: &mut Vec<u8>, sent: &mut usize) -> io::Result<bool> {
    while *sent < out.len() {
        match sock.write(&out[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if out.capacity() > 0 {
        *out = Vec::new();
    }
    *sent = 0;
    Ok(true)
}

impl TlsStream {
    /// Starts the server side of a handshake on `sock` with `config` (the handshake itself
    /// happens as the peer's bytes are read).
    pub fn new(sock: TcpStream, config: Arc<ServerConfig>) -> Result<TlsStream, rustls::Error> {
        Ok(TlsStream {
            sock,
            conn: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            received: 0,
            outgoing: Vec::new(),
            sent: 0,
            plain: Vec::new(),
            taken: 0,
            early: Vec::new(),
            eof_pending: false,
            ended: false,
            close_wanted: false,
            close_queued: false,
            handshake_budget: MAX_HANDSHAKE_INPUT,
            failed: false,
            counted: true,
        })
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether this connection is still counted as a pending handshake.
    pub fn counted(&self) -> bool {
        self.counted
    }

    /// `true` once, when the handshake of a counted connection has finished: the caller
    /// uncounts it in [`PendingHandshakes`].
    pub fn handshake_just_finished(&mut self) -> bool {
        if self.counted && !self.conn.is_handshaking() {
            self.counted = false;
            return true;
        }
        false
    }

    /// Whether records wait for the socket (handshake replies, alerts, encrypted output).
    pub fn wants_write(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// Whether a read would return something without any new event: plaintext already
    /// decrypted, or the end of stream.
    pub fn input_pending(&self) -> bool {
        self.eof_pending || self.taken < self.plain.len()
    }

    /// Bytes of buffers this connection holds beside rustls's state (for tests and figures).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity()
            + self.outgoing.capacity()
            + self.plain.capacity()
            + self.early.capacity()
    }

    /// Pushes held records to the socket until none is left (`Ok(true)`) or the socket is full
    /// (`Ok(false)`).
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        push(&mut self.sock, &mut self.outgoing, &mut self.sent)
    }

    /// Sends close_notify (as far as the socket takes it now) and shuts the TCP write half.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.close_wanted = true;
        // Best effort: the queue was flushed before this, so the alert nearly always fits. A
        // connection still in its handshake has no keys to send it with and is just shut.
        if !self.conn.is_handshaking() {
            let _ = self.advance(&mut [], &mut 0, &[]);
        }
        let _ = self.flush_pending();
        self.sock.shutdown(Shutdown::Write)
    }

    /// Lets rustls work through the ciphertext read so far, the records it wants sent and, if
    /// `app` is not empty, the plaintext to send, until it needs more input, `out` is full of
    /// plaintext (`out[*filled..]` is where it goes; what does not fit is kept in `plain`), the
    /// peer closed, or some of `app` was encrypted.
    fn advance(&mut self, out: &mut [u8], filled: &mut usize, app: &[u8]) -> io::Result<Stop> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the TLS connection failed",
            ));
        }
        loop {
            // The state borrows the connection and `incoming`: it is handled (touching only
            // the other fields) and dropped before `incoming` is trimmed.
            let (discard, step) = {
                let UnbufferedStatus { mut discard, state } = self
                    .conn
                    .process_tls_records(&mut self.incoming[..self.received]);
                let step = match state {
                    Err(e) => Err(Fail::Refused(e)),
                    Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                        let mut result = Ok(None);
                        while let Some(record) = traffic.next_record() {
                            let record = match record {
                                Ok(record) => record,
                                Err(e) => {
                                    result = Err(Fail::Refused(e));
                                    break;
                                }
                            };
                            discard += record.discard;
                            let room = out.len() - *filled;
                            let n = room.min(record.payload.len());
                            out[*filled..*filled + n].copy_from_slice(&record.payload[..n]);
                            *filled += n;
                            if n < record.payload.len() {
                                if self.taken == self.plain.len() {
                                    self.plain.clear();
                                    self.taken = 0;
                                }
                                self.plain.extend_from_slice(&record.payload[n..]);
                            }
                        }
                        if result.is_ok() && !out.is_empty() && *filled == out.len() {
                            result = Ok(Some(Stop::Full));
                        }
                        result
                    }
                    Ok(ConnectionState::EncodeTlsData(mut encode)) => append_with(
                        &mut self.outgoing,
                        TLS_READ_FIRST,
                        |buf| encode.encode(buf),
                        encode_size,
                    )
                    .map(|()| None)
                    .map_err(Fail::Io),
                    Ok(ConnectionState::TransmitTlsData(transmit)) => {
                        // What the socket does not take now stays in `outgoing`, in order, and
                        // goes before anything encrypted later.
                        let pushed = push(&mut self.sock, &mut self.outgoing, &mut self.sent);
                        transmit.done();
                        pushed.map(|_| None).map_err(Fail::Io)
                    }
                    Ok(ConnectionState::BlockedHandshake) => Ok(Some(Stop::NeedInput)),
                    Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                        let encrypted = if !self.early.is_empty() {
                            // The write that comes next waits for these records to go first.
                            let early = std::mem::take(&mut self.early);
                            append_with(
                                &mut self.outgoing,
                                sealed_size(early.len()),
                                |buf| traffic.encrypt(&early, buf),
                                encrypt_size,
                            )
                            .map(|()| Stop::NeedInput)
                        } else if self.close_wanted && !self.close_queued {
                            self.close_queued = true;
                            append_with(
                                &mut self.outgoing,
                                RECORD_OVERHEAD,
                                |buf| traffic.queue_close_notify(buf),
                                encrypt_size,
                            )
                            .map(|()| Stop::NeedInput)
                        } else if !app.is_empty() && !self.close_queued {
                            let n = app.len().min(TLS_BUFFER);
                            append_with(
                                &mut self.outgoing,
                                sealed_size(n),
                                |buf| traffic.encrypt(&app[..n], buf),
                                encrypt_size,
                            )
                            .map(|()| Stop::Encrypted(n))
                        } else {
                            Ok(Stop::NeedInput)
                        };
                        encrypted.map(Some).map_err(Fail::Io)
                    }
                    Ok(ConnectionState::PeerClosed) => {
                        self.ended = true;
                        // Writing may go on after the peer's close_notify.
                        Ok(app.is_empty().then_some(Stop::PeerClosed))
                    }
                    Ok(ConnectionState::Closed) => {
                        self.ended = true;
                        Ok(Some(Stop::PeerClosed))
                    }
                    // Early data is not enabled (`max_early_data_size` is 0), and any state
                    // rustls may add later is not one this server expects.
                    Ok(_) => Err(Fail::Unexpected),
                };
                (discard, step)
            };
            self.discard(discard);
            match step {
                Ok(Some(stop)) => return Ok(stop),
                Ok(None) => {}
                Err(Fail::Refused(refused)) => {
                    self.send_alert();
                    return Err(invalid(refused));
                }
                Err(Fail::Io(e)) => return Err(e),
                Err(Fail::Unexpected) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected TLS connection state",
                    ))
                }
            }
        }
    }

    /// Removes `n` bytes rustls is done with from the front of `incoming`.
    fn discard(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let n = n.min(self.received);
        self.incoming.copy_within(n..self.received, 0);
        self.received -= n;
    }

    /// After rustls refused the peer's input: encodes the alert it queued, saying what went
    /// wrong, and tries to send it (best effort: the connection is cut next). rustls is asked
    /// once only: asked again it would go back to the refused input.
    fn send_alert(&mut self) {
        self.failed = true;
        let UnbufferedStatus { discard, state } = self
            .conn
            .process_tls_records(&mut self.incoming[..self.received]);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = state {
            let _ = append_with(
                &mut self.outgoing,
                RECORD_OVERHEAD,
                |buf| encode.encode(buf),
                encode_size,
            );
        }
        self.discard(discard);
        let _ = self.flush_pending();
    }

    /// Reads more ciphertext from the socket into `incoming` (growing it when full, within
    /// [`MAX_TLS_RECORD`] and, during the handshake, [`MAX_HANDSHAKE_INPUT`] in all).
    fn fill_incoming(&mut self) -> io::Result<usize> {
        let handshaking = self.conn.is_handshaking();
        if handshaking && self.handshake_budget == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_HANDSHAKE_INPUT} bytes before the TLS handshake finished"),
            ));
        }
        if self.received == self.incoming.len() {
            let size = self.incoming.len();
            if size >= MAX_TLS_RECORD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("no whole TLS record in {MAX_TLS_RECORD} bytes"),
                ));
            }
            let mut grown = (size * 2).clamp(TLS_READ_FIRST, MAX_TLS_RECORD);
            if handshaking {
                // Never room for more than the handshake may still send.
                grown = grown.min(self.received + self.handshake_budget);
            }
            // Exactly: `resize` alone would double the capacity (16 KiB for 12, 32 for 18).
            self.incoming.reserve_exact(grown - size);
            self.incoming.resize(grown, 0);
        }
        let mut room = self.incoming.len() - self.received;
        if handshaking {
            room = room.min(self.handshake_budget);
        }
        let end = self.received + room;
        let n = loop {
            match self.sock.read(&mut self.incoming[self.received..end]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        if handshaking {
            self.handshake_budget -= n;
        }
        self.received += n;
        Ok(n)
    }

    /// Moves plaintext already decrypted into `buf`; returns how many bytes.
    fn take_plain(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.plain.len() - self.taken);
        buf[..n].copy_from_slice(&self.plain[self.taken..self.taken + n]);
        self.taken += n;
        if self.taken == self.plain.len() && self.plain.capacity() > 0 {
            self.plain = Vec::new();
            self.taken = 0;
        }
        n
    }

    /// Frees the read buffer if it holds nothing (as the plain path frees a drained one).
    fn release_incoming(&mut self) {
        if self.received == 0 && self.incoming.capacity() > 0 {
            self.incoming = Vec::new();
        }
    }

    /// The read proper; [`Read::read`] frees the read buffer after it if it is empty.
    fn read_into(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.eof_pending {
            self.eof_pending = false;
            return Ok(0);
        }
        let mut filled = self.take_plain(buf);
        if filled == buf.len() {
            return Ok(filled);
        }
        if self.ended {
            // The end was seen (perhaps while writing): said after this data, as no readiness
            // event will say it.
            self.eof_pending = filled > 0;
            return Ok(filled);
        }
        loop {
            match self.advance(buf, &mut filled, &[])? {
                Stop::Full => return Ok(filled),
                Stop::PeerClosed => {
                    self.ended = true;
                    self.eof_pending = filled > 0;
                    return Ok(filled);
                }
                Stop::NeedInput | Stop::Encrypted(_) => {}
            }
            match self.fill_incoming() {
                // The TCP stream ended (without close_notify, or in a record): an end of stream
                // all the same (the protocol's lines carry their own framing, so nothing can be
                // truncated unseen).
                Ok(0) => {
                    self.ended = true;
                    self.received = 0;
                    self.eof_pending = filled > 0;
                    return Ok(filled);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let result = self.read_into(buf);
        self.release_incoming();
        result
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.conn.is_handshaking() {
            // No keys yet: held until the connection may send (rustls's buffered connection did
            // the same), within TLS_BUFFER.
            let n = buf.len().min(TLS_BUFFER - self.early.len());
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.early.extend_from_slice(&buf[..n]);
            return Ok(n);
        }
        // Records already encrypted go out before more plaintext is taken; the first pass may
        // only encrypt what was written during the handshake.
        for _ in 0..2 {
            if !self.flush_pending()? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            match self.advance(&mut [], &mut 0, buf)? {
                Stop::Encrypted(n) => {
                    self.flush_pending()?;
                    return Ok(n);
                }
                Stop::PeerClosed => return Err(io::ErrorKind::BrokenPipe.into()),
                Stop::NeedInput | Stop::Full => {}
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.flush_pending()? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Source for TlsStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, Instant};

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    use super::*;

    /// A server engine and a rustls client, connected over loopback, both non-blocking.
    struct Pair {
        server: TlsStream,
        client: ClientConnection,
        client_sock: std::net::TcpStream,
    }

    fn pair() -> Pair {
        pair_with(false)
    }

    /// A pair whose client speaks only TLS 1.2 (`tls12`) or any version.
    fn pair_with(tls12: bool) -> Pair {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert: CertificateDer<'static> = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_config = ClientConfig::builder_with_provider(provider);
        let client_config = if tls12 {
            client_config.with_protocol_versions(&[&rustls::version::TLS12])
        } else {
            client_config.with_safe_default_protocol_versions()
        };
        let client_config = client_config
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client_sock = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client_sock.set_nonblocking(true).unwrap();
        client_sock.set_nodelay(true).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let server =
            TlsStream::new(TcpStream::from_std(accepted), Arc::new(server_config)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let client = ClientConnection::new(Arc::new(client_config), name).unwrap();
        Pair {
            server,
            client,
            client_sock,
        }
    }

    impl Pair {
        /// Moves the client's records out and whatever reached it in, without blocking.
        fn pump_client(&mut self) {
            while self.client.wants_write() {
                match self.client.write_tls(&mut self.client_sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("client write: {e}"),
                }
            }
            match self.client.read_tls(&mut self.client_sock) {
                Ok(_) => {
                    self.client.process_new_packets().unwrap();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client read: {e}"),
            }
        }

        /// Reads from the server engine until `want` bytes came (or its end of stream),
        /// pumping the client meanwhile, as the reactor would on readiness.
        fn server_reads(&mut self, want: usize) -> Vec<u8> {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while got.len() < want {
                assert!(Instant::now() < deadline, "stuck after {got:?}");
                self.pump_client();
                match self.server.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("server read: {e}"),
                }
                self.server.flush_pending().unwrap();
            }
            got
        }

        fn handshake(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.client.is_handshaking() || self.server.conn.is_handshaking() {
                assert!(Instant::now() < deadline, "handshake stuck");
                self.pump_client();
                let _ = self.server.read(&mut [0u8; 64]);
                self.server.flush_pending().unwrap();
            }
        }
    }

    #[test]
    fn a_line_sent_one_byte_of_ciphertext_at_a_time_arrives_whole() {
        let mut p = pair();
        p.handshake();
        p.client.writer().write_all(b"hello, world\n").unwrap();
        let mut records = Vec::new();
        while p.client.wants_write() {
            p.client.write_tls(&mut records).unwrap();
        }
        for (i, byte) in records.iter().enumerate() {
            p.client_sock.write_all(&[*byte]).unwrap();
            if i + 1 < records.len() {
                // Nothing is readable until the record is complete; polling only ever sees
                // WouldBlock (each byte may or may not have arrived yet).
                match p.server.read(&mut [0u8; 64]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    other => panic!("byte {i}: {other:?}"),
                }
            }
        }
        assert_eq!(p.server_reads(13), b"hello, world\n");
    }

    #[test]
    fn data_then_close_notify_is_data_then_end_of_stream() {
        let mut p = pair();
        p.handshake();
        p.client.writer().write_all(b"bye\n").unwrap();
        p.client.send_close_notify();
        p.pump_client();
        // One read call returns the data and remembers the end it saw behind it ...
        let deadline = Instant::now() + Duration::from_secs(5);
        let n = loop {
            assert!(Instant::now() < deadline);
            match p.server.read(&mut [0u8; 64]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(n, 4);
        // ... which the input loop is told of, since no readiness event will come for it.
        assert!(p.server.input_pending());
        assert_eq!(p.server.read(&mut [0u8; 64]).unwrap(), 0);
    }

    #[test]
    fn output_written_during_the_handshake_goes_out_once_it_completes() {
        let mut p = pair();
        // The reactor queues NAME? at accept, before the client said anything.
        assert_eq!(p.server.write(b"NAME? x\n").unwrap(), 8);
        p.handshake();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < 8 {
            assert!(Instant::now() < deadline, "got {got:?}");
            p.server.flush_pending().unwrap();
            p.pump_client();
            let _ = p.client.reader().read_to_end(&mut got);
        }
        assert_eq!(got, b"NAME? x\n");
    }

    #[test]
    fn garbage_instead_of_a_client_hello_is_an_error_not_a_panic() {
        let mut p = pair();
        p.client_sock
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline);
            match p.server.read(&mut [0u8; 64]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => break,
                other => panic!("{other:?}"),
            }
        }
    }
    #[test]
    fn pending_handshakes_are_capped_per_address_and_freed_again() {
        let mut pending = PendingHandshakes::default();
        let a: IpAddr = "127.0.0.7".parse().unwrap();
        let b: IpAddr = "127.0.0.8".parse().unwrap();
        for _ in 0..MAX_HANDSHAKES_PER_IP {
            assert!(pending.try_start(a));
        }
        assert!(!pending.try_start(a), "one past the cap");
        assert_eq!(pending.of(a), MAX_HANDSHAKES_PER_IP);
        assert!(pending.try_start(b), "another address is not affected");
        pending.end(a);
        assert!(pending.try_start(a), "a slot came back");
        for _ in 0..MAX_HANDSHAKES_PER_IP {
            pending.end(a);
        }
        pending.end(b);
        assert!(
            pending.per_ip.is_empty(),
            "no entry left: {:?}",
            pending.per_ip
        );
    }

    #[test]
    fn a_handshake_past_its_input_budget_is_an_error_and_a_finished_one_is_uncounted() {
        let mut p = pair();
        assert!(p.server.counted());
        assert!(!p.server.handshake_just_finished(), "still handshaking");
        // Records of a ClientHello that claims 64 KiB, more than the budget in all.
        let mut hello = vec![0x01, 0x00, 0xff, 0xec];
        hello.resize(3 * 16 * 1024, 0x41);
        let mut wire = Vec::new();
        for chunk in hello.chunks(16 * 1024) {
            wire.extend_from_slice(&[0x16, 0x03, 0x01]);
            wire.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            wire.extend_from_slice(chunk);
        }
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "no error after {sent} bytes");
            if sent < wire.len() {
                match p.client_sock.write(&wire[sent..]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("client write: {e}"),
                }
            }
            match p.server.read(&mut [0u8; 64]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    assert!(
                        e.to_string().contains("before the TLS handshake finished"),
                        "{e}"
                    );
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        // A real handshake is uncounted once, when it finishes.
        let mut q = pair();
        q.handshake();
        assert!(q.server.handshake_just_finished());
        assert!(!q.server.handshake_just_finished());
        assert!(!q.server.counted());
    }

    /// Sends `line` from the client and reads it back from the server engine.
    fn line_through(p: &mut Pair, line: &[u8]) {
        p.client.writer().write_all(line).unwrap();
        assert_eq!(p.server_reads(line.len()), line);
    }

    #[test]
    fn an_idle_connection_holds_no_buffers_after_a_line_each_way_and_an_over_long_one() {
        for tls12 in [false, true] {
            let mut p = pair_with(tls12);
            assert_eq!(p.server.write(b"NAME? x\n").unwrap(), 8);
            p.handshake();
            line_through(&mut p, b"hello\n");
            // A 16 KiB line: one full record, which the read buffer grows to hold.
            line_through(&mut p, &[b'o'; 16 * 1024]);
            assert_eq!(p.server.write(b"ERROR too-long x\n").unwrap(), 17);
            assert!(p.server.flush_pending().unwrap());
            assert!(!p.server.wants_write());
            assert_eq!(
                p.server.buffered_capacity(),
                0,
                "tls12 {tls12}: {:?}",
                p.server
            );
        }
    }

    #[test]
    fn a_record_larger_than_the_readers_buffer_comes_out_in_pieces_it_is_told_of() {
        let mut p = pair();
        p.handshake();
        let line: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
        p.client.writer().write_all(&line).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        while got.len() < line.len() {
            assert!(Instant::now() < deadline, "stuck after {} bytes", got.len());
            p.pump_client();
            match p.server.read(&mut buf) {
                Ok(n) => {
                    let last = got.len() + n == line.len();
                    assert!(n == buf.len() || last, "a short read while more is held");
                    got.extend_from_slice(&buf[..n]);
                    // The rest of the record is held: the input loop must read again.
                    assert_eq!(p.server.input_pending(), got.len() < line.len());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("server read: {e}"),
            }
        }
        assert_eq!(got, line);
        assert_eq!(p.server.buffered_capacity(), 0);
    }

    #[test]
    fn shutdown_write_sends_close_notify() {
        let mut p = pair();
        p.handshake();
        p.server.write_all(b"BYE\n").unwrap();
        p.server.shutdown_write().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no close_notify after {got:?}");
            p.pump_client();
            match p.client.reader().read_to_end(&mut got) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client read: {e}"),
            }
        }
        assert_eq!(got, b"BYE\n");
    }

    #[test]
    fn records_a_full_socket_refuses_are_held_bounded_and_counted_as_waiting() {
        let mut p = pair();
        p.handshake();
        // The client reads nothing: the socket fills, then the engine holds one write's records.
        let chunk = vec![b'z'; 100 * 1024];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "the socket never filled");
            match p.server.write(&chunk) {
                Ok(n) => assert!(n <= TLS_BUFFER, "{n}"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("server write: {e}"),
            }
        }
        assert!(p.server.wants_write(), "held records count as waiting");
        assert!(!p.server.flush_pending().unwrap());
        let held = p.server.buffered_capacity();
        assert!(
            held <= sealed_size(TLS_BUFFER) + 2 * TLS_READ_FIRST,
            "holds {held} bytes"
        );
    }

    #[test]
    fn an_end_seen_while_writing_is_still_told_after_the_held_plaintext() {
        let mut p = pair();
        p.handshake();
        let line = vec![b'q'; 3000];
        p.client.writer().write_all(&line).unwrap();
        p.client.send_close_notify();
        p.pump_client();
        // A 7-byte read leaves the record's rest held, and the close_notify behind it unread ...
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 7];
        let mut got = loop {
            assert!(Instant::now() < deadline);
            match p.server.read(&mut buf) {
                Ok(n) => break buf[..n].to_vec(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("server read: {e}"),
            }
        };
        // ... until a write makes rustls see the close_notify.
        assert_eq!(p.server.write(b"x\n").unwrap(), 2);
        loop {
            let n = p.server.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if n < buf.len() {
                // A short read: the end must be announced, no event will come for it.
                assert!(p.server.input_pending(), "the end is not told");
            }
        }
        assert_eq!(got, line);
    }

    #[test]
    fn a_record_claiming_more_than_tls_allows_is_refused_without_buffering_it() {
        let mut p = pair();
        p.handshake();
        // An application-data record header claiming 65,535 bytes, and the start of it.
        let mut wire = vec![0x17, 0x03, 0x03, 0xff, 0xff];
        wire.resize(3000, 0x42);
        p.client_sock.write_all(&wire).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "not refused");
            match p.server.read(&mut [0u8; 64]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(p.server.buffered_capacity() <= MAX_TLS_RECORD);
        // Refused once, refused for good, without asking rustls again.
        let again = p.server.read(&mut [0u8; 64]).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::InvalidData);
    }
}
