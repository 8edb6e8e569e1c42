//! The client side of WebSocket for `--ws` members: the upgrade request, the `101` answer, the
//! server's frames decoded in place into lines (each text message, then an LF), and lines sent
//! as masked text frames. Only what a chat member needs: the server sends each line as one
//! unfragmented text frame, pongs and a close. The mask is all zeros (RFC 6455 asks for a random
//! one to protect proxies from confused caches; nothing sits between the generator and the
//! server, and a zero mask leaves the bytes as they are, so the generator spends nothing on it).
//! Nothing here touches a socket.

/// The upgrade request for `/ws` on `host` (the RFC's sample key: the server checks its form).
pub fn upgrade_request(host: &str) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// The longest answer head accepted.
pub const MAX_ANSWER_HEAD: usize = 4096;

/// Looks for the end of the answer's head in `buf`: `Ok(Some(len))` when it is there and says
/// `101`, `Ok(None)` when more is needed, `Err` when the server refused (or answered nonsense).
pub fn answer_head(buf: &[u8]) -> Result<Option<usize>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_ANSWER_HEAD {
            return Err("the upgrade answer's head is too long".into());
        }
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head.lines().next().unwrap_or("");
    if status.starts_with("HTTP/1.1 101 ") {
        Ok(Some(end + 4))
    } else {
        Err(format!("the server refused the upgrade: {status}"))
    }
}

/// Appends one masked text frame per complete line of `lines` (LF left out); returns the bytes
/// of `lines` used (complete lines only).
pub fn encode_lines(lines: &[u8], out: &mut Vec<u8>) -> usize {
    let mut used = 0;
    for line in lines.split_inclusive(|&b| b == b'\n') {
        if line.last() != Some(&b'\n') {
            break;
        }
        let text = &line[..line.len() - 1];
        let len = text.len();
        out.push(0x81);
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len < 65536 {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(text);
        used += line.len();
    }
    used
}

/// What decoding found besides line bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Only data (or pongs).
    Data,
    /// A close frame, or something a server must not send: the connection is over.
    Closed,
}

/// Decodes the server's frames in place, keeping a frame split across reads.
#[derive(Debug, Default)]
pub struct FrameReader {
    head: [u8; 10],
    head_len: usize,
    /// Payload bytes left in the current frame, and whether they are text (else skipped).
    left: u64,
    text: bool,
    fin: bool,
    in_frame: bool,
    newline_pending: bool,
}

impl FrameReader {
    /// Whether an LF is owed to the output (the next call writes it first).
    pub fn newline_pending(&self) -> bool {
        self.newline_pending
    }

    /// Decodes `buf[..len]` in place; returns the line bytes now at the front and what else was
    /// seen. Output never overtakes input except for an LF after a frame whose header came in an
    /// earlier call, which waits for the next call ([`FrameReader::newline_pending`]).
    pub fn decode(&mut self, buf: &mut [u8], len: usize) -> (usize, Seen) {
        let len = len.min(buf.len());
        let (mut read, mut written) = (0, 0);
        loop {
            if self.newline_pending && (written < read || (len == 0 && written < buf.len())) {
                buf[written] = b'\n';
                written += 1;
                self.newline_pending = false;
            }
            if !self.in_frame {
                if read == len {
                    return (written, Seen::Data);
                }
                // Header: 2 bytes, then 0, 2 or 8 of length (a server never masks).
                while self.head_len < 2 && read < len {
                    self.head[self.head_len] = buf[read];
                    self.head_len += 1;
                    read += 1;
                }
                if self.head_len < 2 {
                    continue;
                }
                let extra = match self.head[1] & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                while self.head_len < 2 + extra && read < len {
                    self.head[self.head_len] = buf[read];
                    self.head_len += 1;
                    read += 1;
                }
                if self.head_len < 2 + extra {
                    continue;
                }
                if self.head[1] & 0x80 != 0 {
                    return (written, Seen::Closed);
                }
                self.left = match extra {
                    2 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                    8 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.head[2..10]);
                        u64::from_be_bytes(b)
                    }
                    _ => u64::from(self.head[1] & 0x7f),
                };
                let opcode = self.head[0] & 0x0f;
                self.fin = self.head[0] & 0x80 != 0;
                self.head_len = 0;
                match opcode {
                    0 | 1 => self.text = true,
                    8 => return (written, Seen::Closed),
                    9 | 10 => self.text = false,
                    _ => return (written, Seen::Closed),
                }
                self.in_frame = true;
                continue;
            }
            let take = usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .min(len - read);
            if self.text {
                buf.copy_within(read..read + take, written);
                written += take;
            }
            read += take;
            self.left -= take as u64;
            if self.left > 0 {
                return (written, Seen::Data);
            }
            self.in_frame = false;
            if self.text && self.fin {
                if written < read {
                    buf[written] = b'\n';
                    written += 1;
                } else {
                    self.newline_pending = true;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(len as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frames_become_lines_whatever_the_read_size() {
        let mut input = server_frame(1, b"MSG a - hi");
        input.extend(server_frame(10, b"pong"));
        input.extend(server_frame(1, &[b'x'; 300]));
        input.extend(server_frame(1, b""));
        let want = [&b"MSG a - hi\n"[..], &[b'x'; 300], b"\n\n"].concat();
        for step in [1, 2, 3, 7, 4096] {
            let mut r = FrameReader::default();
            let mut out = Vec::new();
            let mut buf = vec![0; step];
            for piece in input.chunks(step) {
                buf[..piece.len()].copy_from_slice(piece);
                let (n, seen) = r.decode(&mut buf, piece.len());
                assert_eq!(seen, Seen::Data);
                out.extend_from_slice(&buf[..n]);
            }
            while r.newline_pending() {
                let (n, _) = r.decode(&mut buf, 0);
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, want, "step {step}");
        }
        let mut close = server_frame(8, &1000u16.to_be_bytes());
        let n = close.len();
        assert_eq!(FrameReader::default().decode(&mut close, n).1, Seen::Closed);
    }

    #[test]
    fn lines_go_out_as_masked_frames_and_the_answer_is_checked() {
        let mut out = Vec::new();
        assert_eq!(encode_lines(b"alice\nhi\npart", &mut out), 9);
        assert_eq!(out, b"\x81\x85\0\0\0\0alice\x81\x82\0\0\0\0hi");
        assert_eq!(
            answer_head(b"HTTP/1.1 101 Switching\r\n\r\nrest"),
            Ok(Some(26))
        );
        assert_eq!(answer_head(b"HTTP/1.1 101 Swi"), Ok(None));
        assert!(answer_head(b"HTTP/1.1 403 Forbidden\r\n\r\n").is_err());
    }
}
