//! Connections to the server under test. [`Client`] speaks the wire protocol line by line with
//! a deadline on every read and checks each line it returns against the shared grammar
//! (`ServerMsg::parse`), so a malformed server line fails the test that saw it; it can connect
//! from a chosen loopback source address (`127.0.0.2`, ...) to act as another host. [`Peer`] is
//! a raw `socket2` connection for what std cannot do: a small receive buffer, a reset on close.
//! Loopback only.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat_common::protocol::ServerMsg;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::TIMEOUT;

/// How a read ended without a line.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Nothing arrived in time.
    Timeout,
    /// The server closed the connection (read returned 0).
    Eof,
    /// The server reset the connection or another error occurred.
    Error(ErrorKind),
}

/// One connection to the server.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    /// Bytes received but not yet returned as lines.
    pending: Vec<u8>,
    /// The name given at login, if any.
    pub name: String,
}

impl Client {
    /// Connects to `addr` (loopback only).
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        assert!(addr.ip().is_loopback(), "tests only talk to 127.0.0.1");
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        Client::from_stream(stream)
    }

    /// Connects to `addr` from the loopback address `source` (any of 127.0.0.0/8 on Linux), so
    /// the server sees the connection come from another host.
    #[track_caller]
    pub fn connect_from(addr: SocketAddr, source: IpAddr) -> Client {
        Client::connect_from_with(addr, source, None)
    }

    /// Like [`Client::connect_from`], with `rcvbuf` as `SO_RCVBUF` when given (set before
    /// connecting; the kernel doubles it and has a floor of a few KiB), so a member that stops
    /// reading fills the server's side quickly.
    #[track_caller]
    pub fn connect_from_with(addr: SocketAddr, source: IpAddr, rcvbuf: Option<usize>) -> Client {
        let mut client = Client::from_stream(crate::member::tcp_from(addr, source, rcvbuf));
        client.name = source.to_string();
        client
    }

    /// A client over an open connection.
    #[track_caller]
    pub fn from_stream(stream: TcpStream) -> Client {
        // Small writes are sent as written, so split-line tests really split.
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(TIMEOUT * 2)).unwrap();
        Client {
            stream,
            pending: Vec::new(),
            name: String::new(),
        }
    }

    /// The client's own address, as the server sees it as the peer address.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// The underlying socket (for raw writes or shutdowns).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends `line` and an LF.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Sends bytes as they are.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write of {} bytes failed: {e}", bytes.len()));
    }

    /// The next line (without LF), or how the read ended, waiting at most `within`.
    pub fn try_next_line(&mut self, within: Duration) -> Result<String, End> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = crate::member::take_line(&mut self.pending) {
                let line = String::from_utf8(line)
                    .unwrap_or_else(|e| panic!("server sent invalid UTF-8: {e}"));
                return Ok(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 65536];
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(End::Eof);
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(End::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Error(e.kind())),
            }
        }
    }

    /// The next line; fails the test on timeout or close, or when the line breaks the grammar.
    #[track_caller]
    pub fn next_line(&mut self) -> String {
        match self.try_next_line(TIMEOUT) {
            Ok(line) => {
                check_grammar(&line);
                line
            }
            Err(end) => panic!(
                "[{}] expected a line within {TIMEOUT:?}, got {end:?} (unterminated bytes: {:?})",
                self.name,
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }

    /// The next line, which must start with `prefix`; returns it whole.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        let line = self.next_line();
        assert!(
            line.starts_with(prefix),
            "[{}] expected a line starting with {prefix:?}, got {line:?}",
            self.name
        );
        line
    }

    /// The next line, which must be exactly `line`.
    #[track_caller]
    pub fn expect_exact(&mut self, line: &str) {
        let got = self.next_line();
        assert_eq!(got, line, "[{}] unexpected line", self.name);
    }

    /// Skips lines until one starts with `prefix` (e.g. past `JOIN`s), returning it.
    #[track_caller]
    pub fn skip_until(&mut self, prefix: &str) -> String {
        loop {
            let line = self.next_line();
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The server closed the connection: read returns 0 with no line before it.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        match self.try_next_line(TIMEOUT) {
            Err(End::Eof) => {}
            other => panic!("[{}] expected end of stream, got {other:?}", self.name),
        }
    }

    /// The server closed the connection, by FIN or by reset (the latter happens when it closes
    /// with unread input). Lines still arriving before the close are skipped and returned.
    #[track_caller]
    pub fn expect_closed(&mut self) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            match self.try_next_line(TIMEOUT) {
                Ok(line) => skipped.push(line),
                Err(End::Eof) | Err(End::Error(_)) => return skipped,
                Err(End::Timeout) => panic!(
                    "[{}] expected the connection to close; still open after {} lines",
                    self.name,
                    skipped.len()
                ),
            }
        }
    }

    /// No complete line arrives within `quiet`. Prefer a marker message where one is possible;
    /// this is for the few cases where no later message can serve as one.
    #[track_caller]
    pub fn expect_nothing(&mut self, quiet: Duration) {
        match self.try_next_line(quiet) {
            Err(End::Timeout) => {}
            other => panic!("[{}] expected nothing, got {other:?}", self.name),
        }
    }

    /// `NAME?` -> name -> `WELCOME name N` (needs `--auto-approve`); returns N.
    #[track_caller]
    pub fn login(&mut self, name: &str) -> usize {
        self.name = name.to_owned();
        self.expect("NAME? ");
        self.send_line(name);
        self.expect_welcome(name)
    }

    /// The next line is `WELCOME name N`; returns N.
    #[track_caller]
    pub fn expect_welcome(&mut self, name: &str) -> usize {
        self.name = name.to_owned();
        let line = self.expect(&format!("WELCOME {name} "));
        line[format!("WELCOME {name} ").len()..]
            .parse()
            .unwrap_or_else(|_| panic!("bad online count in {line:?}"))
    }

    /// Reads everything up to the server's close and returns how many bytes came (those already
    /// buffered included) and whether the close was a clean end of file (not a reset); fails the
    /// test when the connection stays open for `within`.
    #[track_caller]
    pub fn drain_to_close(&mut self, within: Duration) -> (usize, bool) {
        let deadline = Instant::now() + within;
        let mut total = std::mem::take(&mut self.pending).len();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "[{}] still open after {within:?} ({total} bytes read)",
                self.name
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return (total, true),
                Ok(n) => total += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (total, false),
            }
        }
    }

    /// Half-closes the writing side (the server sees end of file).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Fails the test when `line` (without its LF) breaks the server-line grammar: a version 2
/// line, or (version 3) a tag prefix with a well-formed id before one, or a `HELLO`, `TOKEN`,
/// `ECHO` or `GAP` line.
#[track_caller]
pub fn check_grammar(line: &str) {
    use chat_common::protocol::v3::{split_tags, V3Msg, V3ParseError};
    let (tags, rest) = split_tags(line);
    if let Some(tags) = tags {
        assert!(
            tags.id().is_some() && tags.time().is_some(),
            "server line {line:?} has a tag prefix without a well-formed id and time"
        );
    }
    match V3Msg::parse(rest) {
        Ok(_) if tags.is_none() => return,
        Ok(_) => panic!("server line {line:?}: version 3 lines carry no tags"),
        Err(V3ParseError::BadField { .. }) => panic!("server line {line:?} is malformed"),
        Err(V3ParseError::NotV3) => {}
    }
    if let Err(e) = ServerMsg::parse(rest) {
        panic!("server line {line:?} breaks the protocol grammar: {e}");
    }
}

/// Whether `s` holds a character no terminal should receive from a peer.
pub fn has_control(s: &str) -> bool {
    s.chars().any(chat_common::sanitize::is_forbidden)
}

/// A connection built with `socket2`, for what `util::Client` cannot do: a small receive buffer
/// (so a member that stops reading makes the server queue output quickly) and a close that
/// sends a reset (`SO_LINGER` 0).
#[derive(Debug)]
pub struct Peer {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Bytes of a line received so far (kept across timeouts).
    partial: Vec<u8>,
    /// The name given at login, if any.
    pub name: String,
}

impl Peer {
    /// Connects to `addr`; `rcvbuf` sets `SO_RCVBUF` before connecting (the kernel doubles it and
    /// has a floor of a few KiB).
    #[track_caller]
    pub fn connect(addr: SocketAddr, rcvbuf: Option<usize>) -> Peer {
        assert!(addr.ip().is_loopback(), "tests only talk to 127.0.0.1");
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket
            .connect_timeout(&SockAddr::from(addr), TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        socket.set_nodelay(true).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_write_timeout(Some(TIMEOUT * 2)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Peer {
            stream,
            reader,
            partial: Vec::new(),
            name: String::new(),
        }
    }

    /// The socket, for raw writes and shutdowns.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends bytes as they are; errors are returned (a peer under test may be cut off).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends `line` and an LF; fails the test on error.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes())
            .unwrap_or_else(|e| panic!("[{}] cannot send {line:?}: {e}", self.name));
    }

    /// The next line as raw bytes (without LF), or how the read ended, waiting at most `within`.
    pub fn next_raw(&mut self, within: Duration) -> Result<Vec<u8>, End> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => return Err(End::Eof),
                Ok(_) if self.partial.last() == Some(&b'\n') => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.pop();
                    return Ok(line);
                }
                Ok(_) => return Err(End::Eof), // a last line without LF, then end of stream
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Error(e.kind())),
            }
        }
    }

    /// The next line, or how the read ended.
    pub fn try_line(&mut self, within: Duration) -> Result<String, End> {
        self.next_raw(within)
            .map(|l| String::from_utf8(l).expect("the server sent invalid UTF-8"))
    }

    /// The next line, which must start with `prefix`.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        match self.try_line(TIMEOUT) {
            Ok(line) if line.starts_with(prefix) => line,
            other => panic!("[{}] expected {prefix:?}..., got {other:?}", self.name),
        }
    }

    /// Skips lines until one starts with `prefix`.
    #[track_caller]
    pub fn skip_until(&mut self, prefix: &str) -> String {
        loop {
            match self.try_line(TIMEOUT) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                other => panic!("[{}] expected {prefix:?}..., got {other:?}", self.name),
            }
        }
    }

    /// `NAME?`, name, `WELCOME` (the server must auto-approve).
    #[track_caller]
    pub fn login(&mut self, name: &str) {
        self.name = name.to_owned();
        self.expect("NAME? ");
        self.send_line(name);
        self.expect(&format!("WELCOME {name} "));
    }

    /// Reads until the server closes the connection (end of file or reset), returning how many
    /// bytes arrived; fails the test when it stays open for `within`.
    #[track_caller]
    pub fn drain_to_close(&mut self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut total = self.partial.len();
        self.partial.clear();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "[{}] still open after {within:?} ({total} bytes read)",
                self.name
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.reader.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return total,
            }
        }
    }

    /// Closes with a reset instead of a FIN: `SO_LINGER` 0, then close.
    pub fn reset(self) {
        let socket = Socket::from(self.stream);
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(socket);
        drop(self.reader);
    }
}

/// Skips lines until one starts with `prefix`, like `Client::skip_until`, but with a deadline
/// for the whole search: a member that keeps receiving other traffic cannot wait forever.
#[track_caller]
pub fn skip_to(c: &mut Client, prefix: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.try_next_line(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(e) => panic!(
                "[{}] no line starting with {prefix:?} within {within:?}: {e:?}",
                c.name
            ),
        }
    }
}

/// Collects the `LEAVE` lines of every name in `names`, in whatever order they come (the server
/// notices simultaneous departures in any order), and returns them by name, with every other
/// line read meanwhile.
#[track_caller]
pub fn collect_leaves(
    c: &mut Client,
    names: &[&str],
    within: Duration,
) -> (Vec<String>, Vec<String>) {
    let deadline = Instant::now() + within;
    let mut skipped = Vec::new();
    let mut found: Vec<Option<String>> = vec![None; names.len()];
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = c.try_next_line(left).unwrap_or_else(|e| {
            panic!(
                "[{}] LEAVE lines missing after {within:?} ({e:?}): got {found:?} of {names:?}",
                c.name
            )
        });
        if let Some(rest) = line.strip_prefix("LEAVE ") {
            let who = rest.split(' ').next().unwrap_or("");
            if let Some(i) = names.iter().position(|n| *n == who) {
                assert!(found[i].is_none(), "[{}] two LEAVE lines for {who}", c.name);
                found[i] = Some(line);
                continue;
            }
        }
        skipped.push(line);
    }
    (found.into_iter().flatten().collect(), skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn connect_from_shows_the_chosen_source_and_checks_lines() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.2".parse().unwrap();
        let mut c = Client::connect_from_with(addr, source, Some(4096));
        let (mut server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), source);
        assert_eq!(c.local_addr().ip(), source);
        server_side.write_all(b"NAME? pick one\nINFO half").unwrap();
        assert_eq!(c.expect("NAME? "), "NAME? pick one");
        assert_eq!(
            c.try_next_line(Duration::from_millis(50)),
            Err(End::Timeout)
        );
        drop(server_side);
        assert_eq!(c.try_next_line(TIMEOUT), Err(End::Eof));
    }
}
