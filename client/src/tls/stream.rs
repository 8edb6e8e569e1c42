//! [`TlsStream`]: a blocking TLS connection that one thread reads while another writes, as the
//! client does with a `TcpStream` and `try_clone`. The client's one stream type, plain or TLS,
//! is `crate::net::Stream`.
//!
//! # Sharing one rustls connection between a reader and a writer
//! A `ClientConnection` is one state machine (not `Sync`), so it sits behind a mutex, and the
//! rule that makes this deadlock-free is: **nobody waits on the socket while holding it.**
//! - The reader waits for bytes with `peek` on the socket, holding no lock on the connection;
//!   only when bytes are there does it lock the connection, `read_tls` (which then cannot
//!   block) and decrypt. A writer is never kept waiting by a quiet server.
//! - The writer locks the connection only to encrypt into a buffer, then writes that buffer to
//!   the socket unlocked. A server that stops reading blocks the writer alone; the reader still
//!   drains whatever the server sends.
//! - Two gates order the rest: `read_gate` lets one reader at a time wait on the socket (two
//!   readers would race for the same bytes), and `write_gate` lets one thread at a time put
//!   encrypted bytes on the socket, so TLS records leave in the order rustls made them. The
//!   reader takes `write_gate` only to send what rustls must answer by itself (a key update
//!   response, an alert); locks are always taken in the order `read_gate`, `write_gate`,
//!   connection, and the connection lock is never held across a socket call.
//!
//! No timeout or polling is involved, so nothing adds latency; `set_read_timeout` is still
//! honoured (the wait in `peek` times out like a `TcpStream` read would).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustls::ClientConnection;

/// A TLS connection to a server, after a successful handshake. Clones share the connection:
/// give one to the reading thread and one to the writing thread. Reading and writing are
/// blocking, like a `TcpStream`'s.
#[derive(Clone)]
pub struct TlsStream {
    inner: Arc<Inner>,
}

struct Inner {
    /// The socket. Read only by the holder of `read_gate`, written only by the holder of
    /// `write_gate`; `&TcpStream` reads and writes, so no clone of the descriptor is needed.
    tcp: TcpStream,
    /// The rustls state. Never held across a socket call.
    conn: Mutex<ClientConnection>,
    /// Held by a reader for the whole of `read`.
    read_gate: Mutex<()>,
    /// Held while encrypted bytes go out, from taking them from `conn` to the end of the write.
    write_gate: Mutex<()>,
    /// `HOST:PORT`, for `Debug`.
    server: String,
}

/// Locks, ignoring poisoning: a panicking thread leaves the connection no worse than an error.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The connection's pending encrypted bytes.
fn take_tls(conn: &mut ClientConnection) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    Ok(out)
}

impl TlsStream {
    /// Wraps a connection whose handshake is complete. `server` is `HOST:PORT`.
    pub(super) fn new(tcp: TcpStream, conn: ClientConnection, server: String) -> Self {
        TlsStream {
            inner: Arc::new(Inner {
                tcp,
                conn: Mutex::new(conn),
                read_gate: Mutex::new(()),
                write_gate: Mutex::new(()),
                server,
            }),
        }
    }

    /// Another handle on the same connection (never fails; `io::Result` to match
    /// `TcpStream::try_clone`).
    pub fn try_clone(&self) -> io::Result<TlsStream> {
        Ok(self.clone())
    }

    /// Sends what the connection has pending, in order, outside the connection lock.
    fn flush_tls(&self) -> io::Result<()> {
        let _gate = lock(&self.inner.write_gate);
        let out = take_tls(&mut lock(&self.inner.conn))?;
        (&self.inner.tcp).write_all(&out)
    }

    /// Ends the connection. For `Write` or `Both`, first sends TLS close_notify, so the server
    /// tells a clean end from a cut connection; then shuts the socket down as `how` says.
    /// `Read` or `Both` also wakes a thread blocked in [`Read::read`], which then returns an
    /// `UnexpectedEof` error (or `Ok(0)` if the server's close_notify already arrived).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let _gate = lock(&self.inner.write_gate);
            let out = {
                let mut conn = lock(&self.inner.conn);
                conn.send_close_notify();
                take_tls(&mut conn)?
            };
            // Best effort: a socket that cannot take the alert is closed below all the same.
            let _ = (&self.inner.tcp).write_all(&out);
        }
        self.inner.tcp.shutdown(how)
    }

    /// As `TcpStream::set_read_timeout`: a read with no data within `timeout` fails with
    /// `WouldBlock` or `TimedOut`, and the connection stays usable.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.tcp.set_read_timeout(timeout)
    }

    /// As `TcpStream::set_write_timeout`. A write that times out may have sent part of a TLS
    /// record, after which the connection is unusable: treat it as lost.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.inner.tcp.set_write_timeout(timeout)
    }

    /// The server's socket address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.tcp.peer_addr()
    }

    /// The negotiated protocol version and cipher suite, for a status line (`TLSv1_3
    /// TLS13_AES_256_GCM_SHA384`).
    pub fn describe(&self) -> String {
        let conn = lock(&self.inner.conn);
        let version = conn
            .protocol_version()
            .map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}"));
        match conn.negotiated_cipher_suite() {
            Some(suite) => format!("{version} {:?}", suite.suite()),
            None => version,
        }
    }
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("server", &self.inner.server)
            .field("tcp", &self.inner.tcp)
            .finish_non_exhaustive()
    }
}

impl Read for TlsStream {
    /// Blocks until plaintext arrives. `Ok(0)` means the server ended the TLS session cleanly
    /// (close_notify); a connection cut without it is an `UnexpectedEof` error.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let inner = &*self.inner;
        let _gate = lock(&inner.read_gate);
        loop {
            match lock(&inner.conn).reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            // Nothing decrypted is waiting: wait for the socket without the connection lock.
            match inner.tcp.peek(&mut [0u8; 1]) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let (processed, wants_write) = {
                let mut conn = lock(&inner.conn);
                // Bytes (or the end of the stream) are there, so this socket read cannot block.
                conn.read_tls(&mut &inner.tcp)?;
                let processed = conn.process_new_packets().map(|_| ());
                (processed, conn.wants_write())
            };
            if wants_write {
                // A key update response or an alert; a failure here shows on the next call.
                let sent = self.flush_tls();
                if processed.is_ok() {
                    sent?;
                }
            }
            if let Err(e) = processed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

impl Write for TlsStream {
    /// Encrypts as much of `buf` as rustls accepts (all of it unless it exceeds rustls' buffer)
    /// and sends it before returning.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &*self.inner;
        let _gate = lock(&inner.write_gate);
        let (n, out) = {
            let mut conn = lock(&inner.conn);
            let n = conn.writer().write(buf)?;
            (n, take_tls(&mut conn)?)
        };
        (&inner.tcp).write_all(&out)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}
