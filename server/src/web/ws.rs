//! WebSocket frames (RFC 6455) as a member's byte stream needs them: client frames decoded in
//! place into the lines they carry, and lines encoded as server text frames.
//!
//! A text message is one line of the chat protocol: its payload, then an LF, is what the line
//! framer sees (so a message holding an LF is two lines, exactly as two lines typed into netcat
//! would be). Everything else a client may send is checked here and answered with the close code
//! the RFC gives: an unmasked frame, reserved bits or opcodes, a malformed control frame or a
//! continuation out of place is `1002` (protocol error), a binary message `1003` (unsupported
//! data), a message longer than `--max-line` `1009` (too big) and a message split into more than
//! [`MAX_FRAGMENTS`] frames `1008` (policy). Pings are answered with a pong carrying the latest
//! ping's payload only (the RFC allows it), so a ping flood costs one pong's worth of memory.
//!
//! This module is pure: it never touches a socket (`crate::reactor::websocket` does), never
//! allocates per data frame, and never panics on what a peer sends. The frame header itself is
//! tungstenite's codec.

use std::fmt;
use std::io::Cursor;

use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// The most frames one message may be split into. Browsers send a line in one frame; a peer that
/// sends a message in thousands of empty pieces is flooding, and gets `1008`.
pub const MAX_FRAGMENTS: u32 = 64;
/// The longest control frame payload (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;

/// Why a client's frames were refused; each maps to the close code the RFC gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A client frame without a mask (section 5.1).
    Unmasked,
    /// Reserved bits set with no extension negotiated.
    ReservedBits,
    /// A reserved opcode.
    BadOpcode(u8),
    /// A binary message: this protocol is text.
    Binary,
    /// A control frame that is fragmented or longer than 125 bytes.
    BadControl,
    /// A continuation frame with no message to continue.
    StrayContinuation,
    /// A new message while the previous one was not finished.
    Interleaved,
    /// A message longer than the limit (`--max-line`).
    TooBig {
        /// The limit in bytes.
        limit: usize,
    },
    /// A message in more than [`MAX_FRAGMENTS`] frames.
    TooManyFragments,
    /// A close frame whose payload is one byte or carries a code that may not be sent.
    BadClose,
}

impl Violation {
    /// The close code that answers it.
    pub fn close_code(self) -> u16 {
        let code = match self {
            Violation::Binary => CloseCode::Unsupported,
            Violation::TooBig { .. } => CloseCode::Size,
            Violation::TooManyFragments => CloseCode::Policy,
            Violation::Unmasked
            | Violation::ReservedBits
            | Violation::BadOpcode(_)
            | Violation::BadControl
            | Violation::StrayContinuation
            | Violation::Interleaved
            | Violation::BadClose => CloseCode::Protocol,
        };
        code.into()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Unmasked => write!(f, "client frames must be masked"),
            Violation::ReservedBits => write!(f, "reserved bits set"),
            Violation::BadOpcode(op) => write!(f, "reserved opcode {op}"),
            Violation::Binary => write!(f, "binary messages are not supported"),
            Violation::BadControl => write!(f, "control frame fragmented or over 125 bytes"),
            Violation::StrayContinuation => write!(f, "continuation frame with no message"),
            Violation::Interleaved => write!(f, "new message before the last one ended"),
            Violation::TooBig { limit } => write!(f, "message over {limit} bytes"),
            Violation::TooManyFragments => write!(f, "message in over {MAX_FRAGMENTS} frames"),
            Violation::BadClose => write!(f, "malformed close frame"),
        }
    }
}

impl std::error::Error for Violation {}

/// What a call to [`Decoder::decode`] produced besides line bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Nothing else: the line bytes are at the front of the buffer.
    Data,
    /// The peer sent a close frame (with this code, if any): answer it and stop reading.
    Close(Option<u16>),
    /// The peer broke the protocol: close with [`Violation::close_code`] and stop reading.
    Fail(Violation),
}

/// The frame being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Data (part of a text message) or a control frame.
    control: Option<Control>,
    /// Whether this frame ends its message.
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes read so far (the mask's phase).
    done: u64,
    /// Payload bytes left.
    left: u64,
}

/// Decodes one client's frames, keeping only what a frame split across reads needs.
///
/// Invariant: between calls it holds at most a partial header (14 bytes), the current frame's
/// position, a control payload being read (at most 125 bytes, allocated only while one is) and
/// the latest ping's payload waiting for its pong.
#[derive(Debug)]
pub struct Decoder {
    /// The longest message, in bytes (`--max-line`).
    limit: usize,
    head: [u8; MAX_HEADER],
    head_len: u8,
    frame: Option<Frame>,
    /// A text message is open (its last frame had no FIN): its bytes and frames so far.
    message: Option<(usize, u32)>,
    /// The LF ending a message that did not fit in the last call's output (see `decode`).
    newline_pending: bool,
    /// The payload of the control frame being read.
    control: Vec<u8>,
    /// The payload of the latest ping, not yet answered.
    pong: Option<Vec<u8>>,
}

impl Decoder {
    /// A decoder for messages of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Decoder {
            limit,
            head: [0; MAX_HEADER],
            head_len: 0,
            frame: None,
            message: None,
            newline_pending: false,
            control: Vec::new(),
            pong: None,
        }
    }

    /// Whether an LF is owed to the output: the next call writes it first, even with no new
    /// input (so a reader must call again without waiting for the socket).
    pub fn newline_pending(&self) -> bool {
        self.newline_pending
    }

    /// Whether a ping waits for its pong.
    pub fn pong_pending(&self) -> bool {
        self.pong.is_some()
    }

    /// Takes the payload of the latest unanswered ping.
    pub fn take_pong(&mut self) -> Option<Vec<u8>> {
        self.pong.take()
    }

    /// Decodes the raw bytes `buf[..len]` in place: the payload of text messages, each message
    /// followed by an LF, is written to the front of `buf`; returns how many bytes were written
    /// and what else happened. After `Close` or `Fail` the rest of the input is ignored.
    ///
    /// Output never overtakes input, since every frame's header is at least two bytes; only an
    /// LF ending a frame whose header came in an earlier call may find no room, and is then
    /// written by the next call ([`Decoder::newline_pending`]).
    pub fn decode(&mut self, buf: &mut [u8], len: usize) -> (usize, Event) {
        let len = len.min(buf.len());
        let mut read = 0;
        let mut written = 0;
        loop {
            if self.newline_pending && (written < read || (len == 0 && written < buf.len())) {
                buf[written] = b'\n';
                written += 1;
                self.newline_pending = false;
            }
            let Some(mut frame) = self.frame else {
                if read == len {
                    return (written, Event::Data);
                }
                match self.header(&buf[read..len]) {
                    Ok((used, Some(frame))) => {
                        read += used;
                        self.frame = Some(frame);
                        continue;
                    }
                    Ok((used, None)) => {
                        // A partial header took the rest of the input: loop once more so an
                        // owed LF is written now that there is room.
                        read += used;
                        continue;
                    }
                    Err(v) => return (written, Event::Fail(v)),
                }
            };
            let take = usize::try_from(frame.left)
                .unwrap_or(usize::MAX)
                .min(len - read);
            let chunk = read..read + take;
            match frame.control {
                None => {
                    buf.copy_within(chunk, written);
                    unmask(&mut buf[written..written + take], frame.mask, frame.done);
                    written += take;
                }
                Some(_) => {
                    let at = self.control.len();
                    self.control.extend_from_slice(&buf[chunk]);
                    unmask(&mut self.control[at..], frame.mask, frame.done);
                }
            }
            read += take;
            frame.done += take as u64;
            frame.left -= take as u64;
            if frame.left > 0 {
                self.frame = Some(frame);
                return (written, Event::Data);
            }
            self.frame = None;
            match frame.control {
                None if frame.fin => {
                    self.message = None;
                    if written < read {
                        buf[written] = b'\n';
                        written += 1;
                    } else {
                        self.newline_pending = true;
                    }
                }
                None => {}
                Some(Control::Ping) => {
                    self.pong = Some(std::mem::take(&mut self.control));
                }
                Some(Control::Close) => {
                    let payload = std::mem::take(&mut self.control);
                    return (written, close_event(&payload));
                }
                Some(_) => self.control = Vec::new(),
            }
        }
    }

    /// Reads a frame header from `input` (completing one begun in an earlier call) and checks
    /// it; returns the bytes of `input` used and the frame, once the header is whole.
    fn header(&mut self, input: &[u8]) -> Result<(usize, Option<Frame>), Violation> {
        let had = usize::from(self.head_len);
        let add = (MAX_HEADER - had).min(input.len());
        self.head[had..had + add].copy_from_slice(&input[..add]);
        let avail = had + add;
        let mut cursor = Cursor::new(&self.head[..avail]);
        let parsed = FrameHeader::parse(&mut cursor)
            .map_err(|_| Violation::BadOpcode(self.head.first().map_or(0, |b| b & 0x0F)))?;
        let Some((header, length)) = parsed else {
            // A partial header: everything given is kept.
            self.head_len = avail as u8;
            return Ok((add, None));
        };
        let used = (cursor.position() as usize).saturating_sub(had);
        self.head_len = 0;
        let frame = self.check(&header, length)?;
        Ok((used, Some(frame)))
    }

    /// The RFC's rules for one client frame, and the limits of this server.
    fn check(&mut self, header: &FrameHeader, length: u64) -> Result<Frame, Violation> {
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(Violation::ReservedBits);
        }
        let mask = header.mask.ok_or(Violation::Unmasked)?;
        let control = match header.opcode {
            OpCode::Control(Control::Reserved(op)) | OpCode::Data(Data::Reserved(op)) => {
                return Err(Violation::BadOpcode(op))
            }
            OpCode::Control(c) => {
                if !header.is_final || length > MAX_CONTROL_PAYLOAD as u64 {
                    return Err(Violation::BadControl);
                }
                Some(c)
            }
            OpCode::Data(Data::Binary) => return Err(Violation::Binary),
            OpCode::Data(Data::Text) if self.message.is_some() => {
                return Err(Violation::Interleaved)
            }
            OpCode::Data(Data::Continue) if self.message.is_none() => {
                return Err(Violation::StrayContinuation)
            }
            OpCode::Data(_) => None,
        };
        if control.is_none() {
            let (bytes, frames) = self.message.unwrap_or((0, 0));
            let bytes = u64::try_from(bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(length);
            if bytes > self.limit as u64 {
                return Err(Violation::TooBig { limit: self.limit });
            }
            if frames + 1 > MAX_FRAGMENTS {
                return Err(Violation::TooManyFragments);
            }
            // The limit fits in usize, so `bytes` does.
            self.message = Some((bytes as usize, frames + 1));
        } else {
            self.control = Vec::with_capacity(length as usize);
        }
        Ok(Frame {
            control,
            fin: header.is_final,
            mask,
            done: 0,
            left: length,
        })
    }
}

/// What a close frame's payload says: its code, or a violation.
fn close_event(payload: &[u8]) -> Event {
    match payload {
        [] => Event::Close(None),
        [_] => Event::Fail(Violation::BadClose),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !CloseCode::from(code).is_allowed() || std::str::from_utf8(reason).is_err() {
                Event::Fail(Violation::BadClose)
            } else {
                Event::Close(Some(code))
            }
        }
    }
}

/// XORs `data` with the mask, starting at payload offset `offset`.
fn unmask(data: &mut [u8], mask: [u8; 4], offset: u64) {
    let phase = (offset % 4) as usize;
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= mask[(phase + i) % 4];
    }
}

/// Appends a server frame (unmasked, final) with `opcode` and `payload` to `out`.
fn frame_into(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: None,
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Appends one text frame per line of `lines` to `out` (each line's LF, and a CR before it,
/// left out); returns how many bytes of `lines` were used: every line that ends with an LF, or
/// the whole of `lines` when it holds no LF at all (so nothing can be stuck).
pub fn encode_lines(lines: &[u8], out: &mut Vec<u8>) -> usize {
    // Room for every line's payload and a 4-byte header (a longer one grows the buffer once).
    out.reserve(lines.len() + 64);
    let mut used = 0;
    for end in memchr::memchr_iter(b'\n', lines) {
        let text = &lines[used..end];
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        text_frame_into(out, text);
        used = end + 1;
    }
    if used == 0 && !lines.is_empty() {
        text_frame_into(out, lines);
        used = lines.len();
    }
    used
}

/// Appends a final, unmasked text frame: the header written by hand (the hot path of a fan-out
/// to WebSocket members; [`frame_into`] is the general form, checked against this in tests).
fn text_frame_into(out: &mut Vec<u8>, text: &[u8]) {
    let len = text.len();
    if len < 126 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len < 65536 {
        out.extend_from_slice(&[0x81, 126]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[0x81, 127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(text);
}

/// Appends a pong answering a ping with `payload`.
pub fn encode_pong(payload: &[u8], out: &mut Vec<u8>) {
    let payload = payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload);
    frame_into(out, OpCode::Control(Control::Pong), payload);
}

/// Appends a close frame with `code` (none: an empty close, answering an empty one).
pub fn encode_close(code: Option<u16>, out: &mut Vec<u8>) {
    match code {
        Some(code) => frame_into(out, OpCode::Control(Control::Close), &code.to_be_bytes()),
        None => frame_into(out, OpCode::Control(Control::Close), &[]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A client frame: masked with a fixed mask.
    fn client(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len < 65536 {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn text(payload: &str) -> Vec<u8> {
        client(0x81, payload.as_bytes())
    }

    /// Feeds `input` in pieces of `step` bytes, as reads of that size would; returns the
    /// output and the first event other than `Data`.
    fn feed(dec: &mut Decoder, input: &[u8], step: usize) -> (Vec<u8>, Event) {
        let mut out = Vec::new();
        let mut buf = vec![0; step.max(1)];
        for piece in input.chunks(step.max(1)) {
            buf[..piece.len()].copy_from_slice(piece);
            let (n, event) = dec.decode(&mut buf, piece.len());
            out.extend_from_slice(&buf[..n]);
            if event != Event::Data {
                return (out, event);
            }
        }
        while dec.newline_pending() {
            let (n, _) = dec.decode(&mut buf, 0);
            out.extend_from_slice(&buf[..n]);
        }
        (out, Event::Data)
    }

    #[test]
    fn text_messages_become_lines_whatever_the_read_size() {
        let mut input = text("hello");
        input.extend(client(0x01, b"wor"));
        input.extend(client(0x00, b""));
        input.extend(client(0x80, b"ld"));
        input.extend(text(""));
        input.extend(text(&"x".repeat(300)));
        let want = format!("hello\nworld\n\n{}\n", "x".repeat(300));
        for step in [1, 2, 3, 5, 7, 64, 4096] {
            let (out, event) = feed(&mut Decoder::new(4096), &input, step);
            assert_eq!(String::from_utf8(out).unwrap(), want, "step {step}");
            assert_eq!(event, Event::Data);
        }
    }

    #[test]
    fn each_violation_gets_its_close_code() {
        let big = "y".repeat(101);
        let mut fragmented = client(0x01, b"a");
        for _ in 0..MAX_FRAGMENTS {
            fragmented.extend(client(0x00, b""));
        }
        let mut unmasked = vec![0x81, 2];
        unmasked.extend_from_slice(b"hi");
        let cases: Vec<(&str, Vec<u8>, Violation, u16)> = vec![
            ("unmasked", unmasked, Violation::Unmasked, 1002),
            ("binary", client(0x82, b"x"), Violation::Binary, 1003),
            ("rsv1", client(0xC1, b"x"), Violation::ReservedBits, 1002),
            (
                "opcode 3",
                client(0x83, b"x"),
                Violation::BadOpcode(3),
                1002,
            ),
            (
                "opcode 11",
                client(0x8B, b"x"),
                Violation::BadOpcode(11),
                1002,
            ),
            ("big", text(&big), Violation::TooBig { limit: 100 }, 1009),
            (
                "long ping",
                client(0x89, &[0; 126]),
                Violation::BadControl,
                1002,
            ),
            ("split ping", client(0x09, b""), Violation::BadControl, 1002),
            (
                "stray",
                client(0x80, b"x"),
                Violation::StrayContinuation,
                1002,
            ),
            ("flood", fragmented, Violation::TooManyFragments, 1008),
            (
                "close 1 byte",
                client(0x88, &[3]),
                Violation::BadClose,
                1002,
            ),
            (
                "close 1005",
                client(0x88, &1005u16.to_be_bytes()),
                Violation::BadClose,
                1002,
            ),
        ];
        for (name, input, violation, code) in cases {
            for step in [1, 4096] {
                let (_, event) = feed(&mut Decoder::new(100), &input, step);
                assert_eq!(event, Event::Fail(violation), "{name}, step {step}");
                assert_eq!(violation.close_code(), code, "{name}");
            }
        }
        let mut interleaved = client(0x01, b"a");
        interleaved.extend(text("b"));
        let (_, event) = feed(&mut Decoder::new(100), &interleaved, 4096);
        assert_eq!(event, Event::Fail(Violation::Interleaved));
    }

    #[test]
    fn a_fragmented_message_counts_against_the_limit_whole() {
        let mut input = client(0x01, &[b'a'; 60]);
        input.extend(client(0x80, &[b'a'; 41]));
        let (out, event) = feed(&mut Decoder::new(100), &input, 4096);
        assert_eq!(event, Event::Fail(Violation::TooBig { limit: 100 }));
        assert_eq!(
            out,
            vec![b'a'; 60],
            "what came before the limit was passed on"
        );
        let mut input = client(0x01, &[b'a'; 60]);
        input.extend(client(0x80, &[b'a'; 40]));
        assert_eq!(feed(&mut Decoder::new(100), &input, 4096).1, Event::Data);
    }

    #[test]
    fn a_frame_claiming_a_huge_length_fails_at_its_header() {
        let mut input = vec![0x81, 0x80 | 127];
        input.extend_from_slice(&u64::MAX.to_be_bytes());
        input.extend_from_slice(&[1, 2, 3, 4]);
        let (_, event) = feed(&mut Decoder::new(4096), &input, 4096);
        assert_eq!(event, Event::Fail(Violation::TooBig { limit: 4096 }));
    }

    #[test]
    fn pings_keep_only_the_latest_payload_and_interleave_with_fragments() {
        let mut dec = Decoder::new(4096);
        let mut input = client(0x01, b"he");
        for i in 0..1000u16 {
            input.extend(client(0x89, &i.to_be_bytes()));
        }
        input.extend(client(0x8A, b"unsolicited pong"));
        input.extend(client(0x80, b"llo"));
        let (out, event) = feed(&mut dec, &input, 4096);
        assert_eq!((out.as_slice(), event), (&b"hello\n"[..], Event::Data));
        assert_eq!(dec.take_pong(), Some(999u16.to_be_bytes().to_vec()));
        assert_eq!(dec.take_pong(), None);
    }

    #[test]
    fn close_frames_report_their_code() {
        let (_, e) = feed(&mut Decoder::new(10), &client(0x88, b""), 1);
        assert_eq!(e, Event::Close(None));
        let mut payload = 1001u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"going away");
        let (_, e) = feed(&mut Decoder::new(10), &client(0x88, &payload), 3);
        assert_eq!(e, Event::Close(Some(1001)));
    }

    #[test]
    fn the_hand_written_header_is_tungstenite_s() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let text = vec![b'a'; len];
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            text_frame_into(&mut fast, &text);
            frame_into(&mut general, OpCode::Data(Data::Text), &text);
            assert_eq!(fast, general, "{len}");
        }
    }

    #[test]
    fn lines_encode_as_text_frames() {
        let mut out = Vec::new();
        let used = encode_lines(b"MSG a - hi\nINFO x\r\npartial", &mut out);
        assert_eq!(used, 19);
        assert_eq!(out, b"\x81\x0aMSG a - hi\x81\x06INFO x");
        out.clear();
        assert_eq!(encode_lines(b"partial", &mut out), 7);
        assert_eq!(out, b"\x81\x07partial");
        out.clear();
        let long = vec![b'z'; 300];
        encode_lines(&[&long[..], b"\n"].concat(), &mut out);
        assert_eq!(&out[..4], &[0x81, 126, 1, 44]);
        assert_eq!(out.len(), 304);
        out.clear();
        encode_close(Some(1009), &mut out);
        encode_pong(b"p", &mut out);
        assert_eq!(out, b"\x88\x02\x03\xf1\x8a\x01p");
    }

    proptest! {
        #[test]
        fn any_split_of_valid_frames_gives_the_same_lines(
            messages in proptest::collection::vec("[a-z ]{0,200}", 1..8),
            step in 1usize..300,
        ) {
            let mut input = Vec::new();
            let mut want = String::new();
            for m in &messages {
                input.extend(text(m));
                want.push_str(m);
                want.push('\n');
            }
            let (out, event) = feed(&mut Decoder::new(4096), &input, step);
            prop_assert_eq!(event, Event::Data);
            prop_assert_eq!(String::from_utf8(out).unwrap(), want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512),
                                       step in 1usize..64) {
            let _ = feed(&mut Decoder::new(64), &input, step);
        }
    }
}
