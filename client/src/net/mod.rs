//! The connection: where and how to connect ([`Connector`]: the address, plain or TLS, what
//! TLS trusts), the one byte stream type ([`Stream`], plain TCP or TLS; nothing above this
//! module tells them apart except to say which it is), framing server lines ([`LineReader`]),
//! and the network thread of the full-screen interface ([`spawn`]), which reads lines and hands
//! them to the terminal thread over a bounded channel. Nothing here parses a line's meaning or
//! touches the terminal: the first-use question of TLS comes in as a callback (`trust.rs`).

pub mod tokens;
pub mod trust;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::Duration;

use chat_common::framing::{Frame, LineFramer, DEFAULT_MAX_LINE};
use chat_common::sanitize::sanitize;

use crate::exit::{ExitCode, Outcome};
use crate::tls::{self, Target, TlsOptions, TlsStream};

/// How long to try each address of the server before giving up on it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one write to the server may block before the connection counts as lost.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest server line accepted. A `HIST` line carries a whole `MSG` line and a time, and a
/// server may run with a larger `--max-line`, so allow well beyond both.
pub const MAX_SERVER_LINE: usize = 16 * DEFAULT_MAX_LINE;

/// Server lines waiting for the terminal thread; when it falls behind, the network thread
/// waits, and TCP slows the server down. With lines of at most [`MAX_SERVER_LINE`] this holds
/// at most 4 MiB, beside the scrollback's own bound (`core::store::MAX_BYTES`).
pub const CHANNEL_SIZE: usize = 64;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A connection to the server, plain or TLS, with the `TcpStream` methods the client uses.
/// Everything above this module reads and writes it through [`Stream::split`]'s halves.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (the handshake is done).
    Tls(TlsStream),
}

impl Stream {
    /// Another handle on the same connection, for a second thread.
    pub fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Plain(s) => s.try_clone().map(Stream::Plain),
            Stream::Tls(s) => s.try_clone().map(Stream::Tls),
        }
    }

    /// Shuts the connection down (after close_notify for TLS). `Read` or `Both` wakes a thread
    /// blocked reading it.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown(how),
            Stream::Tls(s) => s.shutdown(how),
        }
    }

    /// As `TcpStream::set_read_timeout`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.set_read_timeout(timeout),
            Stream::Tls(s) => s.set_read_timeout(timeout),
        }
    }

    /// As `TcpStream::set_write_timeout`. A TLS write that times out leaves the connection
    /// unusable; the client treats any failed write as a lost connection anyway.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.set_write_timeout(timeout),
            Stream::Tls(s) => s.set_write_timeout(timeout),
        }
    }

    /// The negotiated TLS version and cipher suite (`TLSv1_3 TLS13_AES_256_GCM_SHA384`), or
    /// `None` for plain TCP.
    pub fn tls_description(&self) -> Option<String> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => Some(s.describe()),
        }
    }

    /// Splits the stream into a reading half (for the network thread) and a writing half.
    pub fn split(self) -> io::Result<(Stream, Writer)> {
        self.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let reader = self.try_clone()?;
        Ok((reader, Writer { stream: self }))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
pub struct Writer {
    stream: Stream,
}

impl Writer {
    /// Writes to `stream` (without the write timeout [`Stream::split`] sets).
    pub fn new(stream: Stream) -> Self {
        Writer { stream }
    }

    /// Sends one line; it leaves in one write (one TLS record for a TLS stream).
    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.stream.write_all(&bytes)?;
        self.stream.flush()
    }

    /// Closes both directions (TLS: after close_notify), so the network thread's read ends too.
    pub fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// See [`Stream::tls_description`].
    pub fn tls_description(&self) -> Option<String> {
        self.stream.tls_description()
    }
}

/// The text of an I/O error without the `(os error N)` suffix: people need the words only.
pub fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Where and how to connect; the first connection and every reconnection use the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    /// The server, and whether to speak TLS.
    pub target: Target,
    /// What TLS trusts (`--ca`, the system's roots) and where it remembers servers.
    pub tls: TlsOptions,
    /// `--trust-new`: accept an unknown server's certificate on first use without asking.
    pub trust_new: bool,
    /// The fingerprint the user accepted on first use in this run, so a reconnection (which
    /// cannot ask) accepts the same certificate even when `known_servers` could not keep it.
    accepted: Option<String>,
}

impl Connector {
    /// Connects to `target` as `tls` says.
    pub fn new(target: Target, tls: TlsOptions, trust_new: bool) -> Self {
        Connector {
            target,
            tls,
            trust_new,
            accepted: None,
        }
    }

    /// Connects; for an unknown self-signed TLS server, `ask(server, fingerprint)` decides (and
    /// the answer yes is kept for reconnections). The error is the exit status and the message
    /// for people; see [`ExitCode::of_tls`] for TLS.
    pub fn connect(&mut self, mut ask: impl FnMut(&str, &str) -> bool) -> Result<Stream, Outcome> {
        let mut accepted = None;
        let result = self.dial(|server, fingerprint| {
            let yes = ask(server, fingerprint);
            if yes {
                accepted = Some(fingerprint.to_owned());
            }
            yes
        });
        if accepted.is_some() {
            self.accepted = accepted;
        }
        result
    }

    /// Connects again, asking nobody: an unknown certificate is accepted only with
    /// `--trust-new` or when it is the one accepted earlier in this run. A certificate that
    /// changed since is refused ([`ExitCode::CertificateChanged`]), never asked about.
    pub fn reconnect(&self) -> Result<Stream, Outcome> {
        self.dial(|_, fingerprint| self.trust_new || self.accepted.as_deref() == Some(fingerprint))
    }

    fn dial(&self, ask: impl FnMut(&str, &str) -> bool) -> Result<Stream, Outcome> {
        if !self.target.tls {
            return connect_plain(&self.target.server()).map(Stream::Plain);
        }
        tls::connect(&self.target, &self.tls, ask)
            .map(Stream::Tls)
            .map_err(|e| Outcome::fail(ExitCode::of_tls(&e), e.to_string()))
    }
}

/// A plain TCP connection to `addr` (`HOST:PORT`), trying each address it resolves to.
fn connect_plain(addr: &str) -> Result<TcpStream, Outcome> {
    let unreachable = |why: String| {
        Outcome::fail(
            ExitCode::Unreachable,
            format!("cannot connect to {}: {why}", sanitize(addr)),
        )
    };
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| unreachable(describe(&e)))?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(unreachable(last.map_or_else(
        || "the name has no address".to_owned(),
        |e| describe(&e),
    )))
}

/// One framed line from the server, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete UTF-8 line without its terminator.
    Line(String),
    /// A line longer than [`MAX_SERVER_LINE`], skipped.
    TooLong,
    /// A line that was not UTF-8, skipped.
    BadUtf8,
}

/// Reads framed lines from a byte stream. Holds at most one read chunk plus one incomplete
/// line (bounded by the framer).
#[derive(Debug)]
pub struct LineReader<R> {
    source: R,
    framer: LineFramer,
    /// Bytes read and not yet framed are `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> LineReader<R> {
    /// Frames lines of at most [`MAX_SERVER_LINE`] bytes from `source`.
    pub fn new(source: R) -> Self {
        LineReader {
            source,
            framer: LineFramer::new(MAX_SERVER_LINE),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next line; `None` at end of stream (an incomplete last line is dropped).
    pub fn next_line(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            if self.start < self.end {
                let (used, frame) = self.framer.feed(&self.buf[self.start..self.end]);
                let item = frame.map(|frame| match frame {
                    Frame::Line(line) => Incoming::Line(line.to_owned()),
                    Frame::TooLong => Incoming::TooLong,
                    Frame::BadUtf8 => Incoming::BadUtf8,
                });
                self.start += used;
                if let Some(item) = item {
                    return Ok(Some(item));
                }
            }
            self.start = 0;
            self.end = 0;
            match self.source.read(&mut self.buf) {
                Ok(0) => return Ok(None),
                Ok(n) => self.end = n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What the network thread reports.
#[derive(Debug)]
pub enum NetEvent {
    /// Connected: the writing half, for the terminal thread.
    Connected(Writer),
    /// The connection attempt failed: the exit status it stands for (only
    /// [`ExitCode::Unreachable`] is worth trying again) and why, for people.
    Failed(ExitCode, String),
    /// A line from the server.
    Line(Incoming),
    /// The connection ended: at end of stream (`None`) or on an error (why).
    Closed(Option<String>),
}

/// Starts the network thread of connection attempt `generation`: connects again with
/// `connector` unless a `stream` is handed over, then reports every line until the connection
/// ends. Each report goes to `report` tagged with `generation`, so the reports of an abandoned
/// connection are recognised and ignored; `report` returns false when nobody listens any more
/// (the thread ends), and may block (a bounded channel), which slows the server down through
/// TCP.
pub fn spawn<F>(
    connector: Connector,
    generation: u64,
    stream: Option<Stream>,
    report: F,
) -> io::Result<()>
where
    F: Fn(u64, NetEvent) -> bool + Send + 'static,
{
    thread::Builder::new()
        .name(format!("network-{generation}"))
        .spawn(move || {
            let stream = match stream.map_or_else(|| connector.reconnect(), Ok) {
                Ok(stream) => stream,
                Err(outcome) => {
                    let why = outcome.message.unwrap_or_default();
                    report(generation, NetEvent::Failed(outcome.code, why));
                    return;
                }
            };
            let (reader, writer) = match stream.split() {
                Ok(halves) => halves,
                Err(e) => {
                    let event = NetEvent::Failed(ExitCode::Unreachable, describe(&e));
                    report(generation, event);
                    return;
                }
            };
            if !report(generation, NetEvent::Connected(writer)) {
                return;
            }
            let mut lines = LineReader::new(reader);
            loop {
                let event = match lines.next_line() {
                    Ok(Some(line)) => NetEvent::Line(line),
                    Ok(None) => NetEvent::Closed(None),
                    Err(e) => NetEvent::Closed(Some(describe(&e))),
                };
                let last = matches!(event, NetEvent::Closed(_));
                if !report(generation, event) || last {
                    return;
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A reader that hands out its data in chunks of `chunk` bytes.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn lines(data: &[u8], chunk: usize) -> Vec<Incoming> {
        let mut reader = LineReader::new(Trickle { data, chunk });
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn line_reader_frames_in_any_chunking() {
        let data = b"NAME? hi\r\nWAIT w\n\nWELCOME bob 1\nJOIN al\npartial";
        let want = vec![
            Incoming::Line("NAME? hi".into()),
            Incoming::Line("WAIT w".into()),
            Incoming::Line("WELCOME bob 1".into()),
            Incoming::Line("JOIN al".into()),
        ];
        for chunk in [1, 2, 7, 4096] {
            assert_eq!(lines(data, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn line_reader_reports_over_long_and_bad_lines_and_goes_on() {
        let mut data = vec![b'x'; MAX_SERVER_LINE + 10];
        data.extend_from_slice(b"\n\xff\xfe\nINFO ok\n");
        let got = lines(&data, 5000);
        assert_eq!(
            got,
            vec![
                Incoming::TooLong,
                Incoming::BadUtf8,
                Incoming::Line("INFO ok".into())
            ]
        );
    }

    #[test]
    fn os_error_numbers_are_left_out() {
        let e = io::Error::from_raw_os_error(111);
        assert!(!describe(&e).contains("os error"), "{}", describe(&e));
        assert_eq!(describe(&io::Error::other("plain")), "plain");
    }

    fn plain(addr: &str) -> Connector {
        let target = tls::parse_target(addr, false).unwrap();
        Connector::new(target, TlsOptions::default(), false)
    }

    #[test]
    fn unreachable_address_is_reported_with_the_address() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let err = plain("127.0.0.1:1").connect(|_, _| false).unwrap_err();
        assert_eq!(err.code, ExitCode::Unreachable);
        assert!(err
            .message
            .unwrap()
            .starts_with("cannot connect to 127.0.0.1:1: "));
        // A reconnection fails the same way (and asks nobody).
        let err = plain("127.0.0.1:1").reconnect().unwrap_err();
        assert_eq!(err.code, ExitCode::Unreachable);
    }

    #[test]
    fn a_plain_stream_splits_into_halves_that_talk() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stream = plain(&addr).connect(|_, _| false).unwrap();
        assert_eq!(stream.tls_description(), None);
        let (reader, mut writer) = stream.split().unwrap();
        let (mut server, _) = listener.accept().unwrap();
        writer.send_line("hello").unwrap();
        let mut got = [0u8; 6];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello\n");
        server.write_all(b"NAME? x\n").unwrap();
        let mut lines = LineReader::new(reader);
        assert_eq!(
            lines.next_line().unwrap(),
            Some(Incoming::Line("NAME? x".into()))
        );
        writer.close();
        assert_eq!(lines.next_line().unwrap(), None);
    }
}
