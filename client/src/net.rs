//! The connection: resolving and connecting ([`connect`]), the byte stream ([`Stream`], plain
//! TCP today; TLS is one more variant, and nothing above this module changes), framing server
//! lines ([`LineReader`]), and the network thread of the full-screen interface ([`spawn`]),
//! which reads lines and hands them to the terminal thread over a bounded channel. Nothing here
//! parses a line's meaning or touches the terminal.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::Duration;

use chat_common::framing::{Frame, LineFramer, DEFAULT_MAX_LINE};
use chat_common::sanitize::sanitize;

use crate::exit::{ExitCode, Outcome};

/// How long to try each address of the server before giving up on it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one write to the server may block before the connection counts as lost.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest server line accepted. A `HIST` line carries a whole `MSG` line and a time, and a
/// server may run with a larger `--max-line`, so allow well beyond both.
pub const MAX_SERVER_LINE: usize = 16 * DEFAULT_MAX_LINE;

/// Server lines waiting for the terminal thread; when it falls behind, the network thread
/// waits, and TCP slows the server down.
pub const CHANNEL_SIZE: usize = 1024;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A connection's byte stream. One variant per transport; everything above uses only
/// [`Stream::split`] and the halves it returns.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
}

impl Stream {
    /// Splits the stream into a reading half (for the network thread) and a writing half.
    pub fn split(self) -> io::Result<(Box<dyn Read + Send>, Writer)> {
        match self {
            Stream::Plain(tcp) => {
                tcp.set_write_timeout(Some(WRITE_TIMEOUT))?;
                let reader = tcp.try_clone()?;
                Ok((Box::new(reader), Writer::Plain(tcp)))
            }
        }
    }
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
pub enum Writer {
    /// Plain TCP.
    Plain(TcpStream),
}

impl Writer {
    /// Sends one line; it leaves in one write.
    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        match self {
            Writer::Plain(tcp) => tcp.write_all(&bytes),
        }
    }

    /// Closes both directions, so the network thread's read ends too.
    pub fn close(&self) {
        match self {
            Writer::Plain(tcp) => {
                let _ = tcp.shutdown(Shutdown::Both);
            }
        }
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

/// Connects to `addr` (`HOST:PORT`), trying each address it resolves to.
pub fn connect(addr: &str) -> Result<Stream, Outcome> {
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
            Ok(stream) => return Ok(Stream::Plain(stream)),
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
    /// The connection attempt failed (why, for people).
    Failed(String),
    /// A line from the server.
    Line(Incoming),
    /// The connection ended: at end of stream (`None`) or on an error (why).
    Closed(Option<String>),
}

/// Starts the network thread of connection attempt `generation`: connects to `addr` unless a
/// `stream` is handed over, then reports every line until the connection ends. Each report
/// goes to `report` tagged with `generation`, so the reports of an abandoned connection are
/// recognised and ignored; `report` returns false when nobody listens any more (the thread
/// ends), and may block (a bounded channel), which slows the server down through TCP.
pub fn spawn<F>(addr: String, generation: u64, stream: Option<Stream>, report: F) -> io::Result<()>
where
    F: Fn(u64, NetEvent) -> bool + Send + 'static,
{
    thread::Builder::new()
        .name(format!("network-{generation}"))
        .spawn(move || {
            let stream = match stream.map_or_else(|| connect(&addr), Ok) {
                Ok(stream) => stream,
                Err(outcome) => {
                    let why = outcome.message.unwrap_or_default();
                    report(generation, NetEvent::Failed(why));
                    return;
                }
            };
            let (reader, writer) = match stream.split() {
                Ok(halves) => halves,
                Err(e) => {
                    report(generation, NetEvent::Failed(describe(&e)));
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

    #[test]
    fn unreachable_address_is_reported_with_the_address() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let err = connect("127.0.0.1:1").unwrap_err();
        assert_eq!(err.code, ExitCode::Unreachable);
        assert!(err
            .message
            .unwrap()
            .starts_with("cannot connect to 127.0.0.1:1: "));
        let err = connect("not an address").unwrap_err();
        assert_eq!(err.code, ExitCode::Unreachable);
    }
}
