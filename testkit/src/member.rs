//! A member over any byte stream, TLS or plain: [`Member`] reads lines with deadlines from a
//! blocking stream with a short read timeout, [`tls`] connects and finishes a rustls handshake
//! (so the served certificate can be looked at), [`plain`] is the same over TCP, and [`relay`]
//! checks that a room message goes from one to another. Loopback only.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::TIMEOUT;

/// Read timeout on every member's socket: reads are retried until their own deadline.
const POLL: Duration = Duration::from_millis(50);

/// One member over any byte stream, read line by line with deadlines.
pub struct Member<S: Read + Write> {
    /// The byte stream (for raw writes, or the TLS session).
    pub stream: S,
    pending: Vec<u8>,
    /// The name given at login, for failure messages.
    pub name: String,
}

impl<S: Read + Write> std::fmt::Debug for Member<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// A member over TLS.
pub type TlsMember = Member<StreamOwned<ClientConnection, TcpStream>>;

/// A blocking TCP connection to `addr` with the short read timeout members poll with.
#[track_caller]
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let sock = TcpStream::connect_timeout(&addr, TIMEOUT).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(POLL)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    sock
}

/// A member over plain TCP.
#[track_caller]
pub fn plain(addr: SocketAddr) -> Member<TcpStream> {
    Member::new(tcp(addr))
}

/// Connects over TLS and finishes the handshake (so the served certificate can be looked at).
#[track_caller]
pub fn tls(addr: SocketAddr, config: &Arc<ClientConfig>) -> TlsMember {
    tls_over(tcp(addr), config)
}

/// [`tls`] over a socket the caller made (from another loopback address or with a small
/// receive buffer: [`tcp_from`]); it gets the short read timeout members poll with.
#[track_caller]
pub fn tls_over(sock: TcpStream, config: &Arc<ClientConfig>) -> TlsMember {
    try_tls_over(sock, config).unwrap_or_else(|e| panic!("{e}"))
}

/// [`tls_over`], or why the handshake did not finish within [`TIMEOUT`] (the server closed
/// the connection, say).
pub fn try_tls_over(sock: TcpStream, config: &Arc<ClientConfig>) -> Result<TlsMember, String> {
    let setup = |e: std::io::Error| format!("socket set-up: {e}");
    sock.set_nodelay(true).map_err(setup)?;
    sock.set_read_timeout(Some(POLL)).map_err(setup)?;
    sock.set_write_timeout(Some(TIMEOUT)).map_err(setup)?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let mut stream = StreamOwned::new(conn, sock);
    let deadline = Instant::now() + TIMEOUT;
    while stream.conn.is_handshaking() {
        match stream.conn.complete_io(&mut stream.sock) {
            Ok((0, 0)) if stream.conn.is_handshaking() => {
                return Err("the server closed the connection during the handshake".into())
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("TLS handshake failed: {e}")),
        }
        if Instant::now() >= deadline {
            return Err("TLS handshake took too long".into());
        }
    }
    Ok(Member::new(stream))
}

/// A blocking TCP connection to `addr` from the loopback address `source` (another host, as
/// the server sees it), with `rcvbuf` as `SO_RCVBUF` when given (set before connecting).
#[track_caller]
pub fn tcp_from(addr: SocketAddr, source: IpAddr, rcvbuf: Option<usize>) -> TcpStream {
    assert!(
        addr.ip().is_loopback() && source.is_loopback(),
        "tests only use loopback addresses ({source} -> {addr})"
    );
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .unwrap_or_else(|e| panic!("socket: {e}"));
    if let Some(size) = rcvbuf {
        socket
            .set_recv_buffer_size(size)
            .unwrap_or_else(|e| panic!("SO_RCVBUF {size}: {e}"));
    }
    socket
        .bind(&SockAddr::from(SocketAddr::new(source, 0)))
        .unwrap_or_else(|e| panic!("cannot bind to {source}: {e}"));
    socket
        .connect_timeout(&SockAddr::from(addr), TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot connect to {addr} from {source}: {e}"));
    let sock: TcpStream = socket.into();
    sock.set_read_timeout(Some(POLL)).unwrap();
    sock.set_write_timeout(Some(TIMEOUT)).unwrap();
    sock
}

/// The first whole line in `pending` (taken out with its LF; returned without it), if any.
pub fn take_line(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let pos = pending.iter().position(|&b| b == b'\n')?;
    let mut line: Vec<u8> = pending.drain(..=pos).collect();
    line.pop();
    Some(line)
}

impl TlsMember {
    /// The certificate the server presented.
    pub fn served_cert(&self) -> CertificateDer<'static> {
        self.stream.conn.peer_certificates().unwrap()[0].clone()
    }
}

/// How a read of a [`Member`] ended without a line.
#[derive(Debug)]
pub enum MemberEnd {
    /// Nothing arrived in time.
    Timeout,
    /// The server closed the connection (end of file, reset or TLS alert).
    Closed,
}

impl<S: Read + Write> Member<S> {
    /// A member over `stream`, not logged in.
    pub fn new(stream: S) -> Self {
        Member {
            stream,
            pending: Vec::new(),
            name: String::new(),
        }
    }

    /// The next line (without LF), or how the read ended, within `within`.
    pub fn try_line(&mut self, within: Duration) -> Result<String, MemberEnd> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = take_line(&mut self.pending) {
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if Instant::now() >= deadline {
                return Err(MemberEnd::Timeout);
            }
            let mut buf = [0u8; 16384];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(MemberEnd::Closed),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(MemberEnd::Closed),
            }
        }
    }

    /// The next line, which must start with `prefix`.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        match self.try_line(TIMEOUT) {
            Ok(line) if line.starts_with(prefix) => line,
            other => panic!("[{}] expected {prefix:?}, got {other:?}", self.name),
        }
    }

    /// Skips lines (JOINs, history) until one starts with `prefix`.
    #[track_caller]
    pub fn skip_until(&mut self, prefix: &str) -> String {
        loop {
            let line = self.expect("");
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// Sends `line` and an LF.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
        self.stream.flush().unwrap();
    }

    /// `NAME?`, `name`, `WELCOME name N` (the server must auto-approve).
    #[track_caller]
    pub fn login(&mut self, name: &str) {
        self.name = name.to_owned();
        self.expect("NAME? ");
        self.send(name);
        self.expect(&format!("WELCOME {name} "));
    }

    /// The server closes the connection (by FIN, reset or TLS alert) within `within`.
    #[track_caller]
    pub fn expect_closed(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_line(left) {
                Ok(_) => {}
                Err(MemberEnd::Closed) => return,
                Err(MemberEnd::Timeout) => panic!("[{}] still open after {within:?}", self.name),
            }
        }
    }
}

/// `from` says something and `to` gets it as a room message.
#[track_caller]
pub fn relay<A: Read + Write, B: Read + Write>(
    from: &mut Member<A>,
    to: &mut Member<B>,
    text: &str,
) {
    from.send(text);
    let want = format!("MSG {} - {text}", from.name);
    assert_eq!(to.skip_until("MSG "), want);
}
