//! A WebSocket member written by hand for tests: the handshake as raw HTTP, frames built byte
//! by byte (masked or, to test the server, not), and every read with a deadline. Raw on
//! purpose: the tests send what no well-behaved library would (unmasked frames, floods, bad
//! handshakes) and check the server's exact answer.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::client::End;
use crate::TIMEOUT;

/// The sample key of RFC 6455 section 1.3, and its accept value.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// The `Sec-WebSocket-Accept` for [`SAMPLE_KEY`].
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcodes.
pub mod op {
    /// Continuation.
    pub const CONT: u8 = 0;
    /// Text.
    pub const TEXT: u8 = 1;
    /// Binary.
    pub const BINARY: u8 = 2;
    /// Close.
    pub const CLOSE: u8 = 8;
    /// Ping.
    pub const PING: u8 = 9;
    /// Pong.
    pub const PONG: u8 = 10;
}

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// Whether the server masked it (it must not).
    pub masked: bool,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A close frame's code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == op::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// A text frame's text.
    pub fn text(&self) -> Option<&str> {
        (self.opcode == op::TEXT)
            .then(|| std::str::from_utf8(&self.payload).ok())
            .flatten()
    }
}

/// An HTTP request sent raw, and the answer's head.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The head, as text.
    pub head: String,
    /// What came after the head (the body, or the first frames after a `101`).
    pub rest: Vec<u8>,
}

impl HttpAnswer {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` on a new connection to `addr` and reads the answer's head (and whatever
/// else arrived with it).
#[track_caller]
pub fn http(addr: SocketAddr, request: &str) -> (TcpStream, HttpAnswer) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let answer = read_head(&mut stream);
    (stream, answer)
}

/// Reads an HTTP answer's head from `stream`, with a deadline.
#[track_caller]
pub fn read_head(stream: &mut TcpStream) -> HttpAnswer {
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status in {head:?}"));
            return HttpAnswer {
                status,
                head,
                rest: buf[end + 4..].to_vec(),
            };
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no whole HTTP head in time: {buf:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "closed before a whole head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read error: {e}"),
        }
    }
}

/// An upgrade request for `/ws` with the sample key, `Host` `host` and these extra lines.
pub fn upgrade_request(host: &str, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A client frame with the given first byte (FIN and opcode), masked unless `unmasked`.
pub fn frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mask = [0x1b, 0x7e, 0xc4, 0x02];
    let mut out = vec![first];
    let bit = if unmasked { 0 } else { 0x80 };
    let len = payload.len();
    if len < 126 {
        out.push(bit | len as u8);
    } else if len < 65536 {
        out.push(bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if unmasked {
        out.extend_from_slice(payload);
    } else {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    out
}

/// A WebSocket connection after its handshake.
#[derive(Debug)]
pub struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Ws {
    /// Connects to the web listener at `addr` and completes the handshake (no `Origin`, like
    /// any non-browser client).
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Ws {
        Ws::connect_with(addr, "")
    }

    /// The same with extra header lines (e.g. an `Origin`).
    #[track_caller]
    pub fn connect_with(addr: SocketAddr, extra: &str) -> Ws {
        let (stream, answer) = http(addr, &upgrade_request(&addr.to_string(), extra));
        assert_eq!(answer.status, 101, "{}", answer.head);
        assert_eq!(answer.header("sec-websocket-accept"), Some(SAMPLE_ACCEPT));
        Ws {
            stream,
            buf: answer.rest,
        }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends raw bytes; errors are returned (the server may have closed).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one masked text frame.
    #[track_caller]
    pub fn send_text(&mut self, text: &str) {
        self.send_raw(&frame(0x80 | op::TEXT, text.as_bytes(), false))
            .unwrap_or_else(|e| panic!("cannot send {text:?}: {e}"));
    }

    /// The next frame, waiting at most `within`.
    pub fn try_frame(&mut self, within: Duration) -> Result<Frame, End> {
        let deadline = Instant::now() + within;
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Ok(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(End::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(End::Error(e.kind())),
            }
        }
    }

    /// The next frame.
    #[track_caller]
    pub fn frame(&mut self) -> Frame {
        self.try_frame(TIMEOUT)
            .unwrap_or_else(|e| panic!("expected a frame, got {e:?}"))
    }

    /// The next text message's line (pongs are skipped).
    #[track_caller]
    pub fn next_line(&mut self) -> String {
        loop {
            let f = self.frame();
            if f.opcode == op::PONG {
                continue;
            }
            assert!(!f.masked, "server frames are never masked");
            assert!(f.fin, "the server sends each line as one frame");
            return f
                .text()
                .unwrap_or_else(|| panic!("expected a text frame, got {f:?}"))
                .to_owned();
        }
    }

    /// The next line, which must start with `prefix`.
    #[track_caller]
    pub fn expect(&mut self, prefix: &str) -> String {
        let line = self.next_line();
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}..., got {line:?}"
        );
        line
    }

    /// Skips lines until one starts with `prefix`.
    #[track_caller]
    pub fn skip_until(&mut self, prefix: &str) -> String {
        loop {
            let line = self.next_line();
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// Expects a close frame with `code` (text frames before it are skipped), then the end of
    /// the connection.
    #[track_caller]
    pub fn expect_close(&mut self, code: u16) {
        loop {
            let f = self.frame();
            if f.opcode == op::CLOSE {
                assert_eq!(f.close_code(), Some(code), "{f:?}");
                break;
            }
        }
        match self.try_frame(TIMEOUT) {
            Err(End::Eof) | Err(End::Error(_)) => {}
            other => panic!("expected the connection to end after the close, got {other:?}"),
        }
    }
}

/// Parses one server frame at the start of `buf`: the frame and its length, or `None` when it
/// is not whole yet.
fn parse_server_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let mask = if masked {
        let m: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Some((
        Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            masked,
            payload,
        },
        at + len,
    ))
}
