//! One TLS connection's engine: a non-blocking TCP socket and a rustls `ServerConnection`, seen
//! by the reactor as a byte stream like any other ([`super::stream::Stream::Tls`]).
//!
//! Reads pull ciphertext from the socket only when rustls has no plaintext left, and return
//! less than asked only once the socket said `WouldBlock` (or the peer closed), so the input
//! loop's "a short read means drained" rule still holds under edge-triggered polling. Writes
//! hand plaintext to rustls and push records to the socket until it is full; what rustls holds
//! is bounded by [`TLS_BUFFER`], and a full buffer is `WouldBlock` to the output queue, so a
//! stalled TLS reader costs at most `--max-queue` plus this plus the kernel's send buffer. Records
//! rustls still holds (handshake replies, the tail of a write) are pushed by
//! [`TlsStream::flush_pending`], which the end-of-round flush calls. This module never blocks,
//! never panics on peer input, and knows nothing of lines or members.
//!
//! A connection still in its handshake is bounded twice: it may send at most
//! [`MAX_HANDSHAKE_INPUT`] bytes before the handshake is done (so rustls, which would join a
//! handshake message of up to 64 KiB, never holds more than that for it), and one address may
//! have at most [`MAX_HANDSHAKES_PER_IP`] handshakes under way at once ([`PendingHandshakes`],
//! checked at accept); the login timeout ends the ones that never finish.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ServerConfig, ServerConnection};

/// Most bytes rustls holds for one connection in each direction of sending: plaintext written
/// before the handshake finished, and encrypted records the socket has not taken yet.
pub const TLS_BUFFER: usize = 64 * 1024;

/// Most bytes a peer may send before its handshake is done. A client's first flight is one
/// ClientHello (a few hundred bytes; about 2 KiB with a post-quantum key share), then a Finished
/// message and perhaps a ChangeCipherSpec. rustls would buffer a claimed handshake message of up
/// to 64 KiB: a peer that claims one, sends most of it and stops held 58.6 KiB of the server's
/// memory until its login timeout. 12 KiB keeps rustls's read buffer (which grows in 4 KiB
/// steps) at 16 KiB at most.
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

/// A TLS connection over a non-blocking TCP socket.
pub struct TlsStream {
    sock: TcpStream,
    conn: ServerConnection,
    /// The peer's end of stream (close_notify or TCP end of file) was seen after a read that
    /// returned data: the next read returns `Ok(0)`, and no readiness event will say so.
    eof_pending: bool,
    /// Bytes the peer may still send before its handshake is done ([`MAX_HANDSHAKE_INPUT`] at
    /// first; unused once the handshake is done).
    handshake_budget: usize,
    /// Whether this connection is counted in [`PendingHandshakes`] (from accept until its
    /// handshake is done or it goes).
    counted: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("sock", &self.sock)
            .field("handshaking", &self.conn.is_handshaking())
            .field("wants_write", &self.conn.wants_write())
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Starts the server side of a handshake on `sock` with `config` (the handshake itself
    /// happens as the peer's bytes are read).
    pub fn new(sock: TcpStream, config: Arc<ServerConfig>) -> Result<TlsStream, rustls::Error> {
        let mut conn = ServerConnection::new(config)?;
        conn.set_buffer_limit(Some(TLS_BUFFER));
        Ok(TlsStream {
            sock,
            conn,
            eof_pending: false,
            handshake_budget: MAX_HANDSHAKE_INPUT,
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

    /// Whether rustls holds records to send (handshake replies, alerts, encrypted output).
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Whether a read would return something (the end of stream) without any new event.
    pub fn input_pending(&self) -> bool {
        self.eof_pending
    }

    /// Pushes records to the socket until rustls has none left (`Ok(true)`) or the socket is
    /// full (`Ok(false)`).
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Sends close_notify (as far as the socket takes it now) and shuts the TCP write half.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        // Best effort: the queue was flushed before this, so the alert nearly always fits.
        let _ = self.flush_pending();
        self.sock.shutdown(Shutdown::Write)
    }

    /// Moves plaintext rustls has already decrypted into `buf`: `Ok(Some(n))` for data (or
    /// `n == 0` for the peer's end of stream), `Ok(None)` when there is none yet.
    fn take_plaintext(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.conn.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // The TCP stream ended without close_notify: an end of stream all the same (the
            // protocol's lines carry their own framing, so nothing can be truncated unseen).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.eof_pending {
            self.eof_pending = false;
            return Ok(0);
        }
        let mut filled = 0;
        loop {
            match self.take_plaintext(&mut buf[filled..])? {
                Some(0) if filled > 0 => {
                    self.eof_pending = true;
                    return Ok(filled);
                }
                Some(0) => return Ok(0),
                Some(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                None => {}
            }
            let handshaking = self.conn.is_handshaking();
            let read = if handshaking {
                let mut capped = Capped {
                    sock: &mut self.sock,
                    left: &mut self.handshake_budget,
                };
                self.conn.read_tls(&mut capped)
            } else {
                self.conn.read_tls(&mut self.sock)
            };
            match read {
                // End of file: the reader now reports it (Ok(0) or UnexpectedEof).
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // rustls queued an alert saying what went wrong: try to send it, then give up.
                let _ = self.flush_pending();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

/// The socket as rustls reads it during the handshake: at most `left` more bytes, then an
/// error (the peer sent more than any handshake needs).
struct Capped<'a> {
    sock: &'a mut TcpStream,
    left: &'a mut usize,
}

impl Read for Capped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if *self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_HANDSHAKE_INPUT} bytes before the TLS handshake finished"),
            ));
        }
        let room = buf.len().min(*self.left);
        let n = self.sock.read(&mut buf[..room])?;
        *self.left -= n;
        Ok(n)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Room first: records already encrypted go out before more plaintext is taken.
        self.flush_pending()?;
        let n = self.conn.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // rustls holds TLS_BUFFER already: the output queue must wait, as for a full socket.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.flush_pending()?;
        Ok(n)
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
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
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
}
