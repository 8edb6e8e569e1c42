//! Line framing for the generator's receive path: bytes in, in whatever chunks they arrive;
//! complete lines out, as byte slices, without their LF (and a CR before it).
//!
//! Why not `chat_common::framing::LineFramer`, which the server and client use: that one
//! validates every line as UTF-8 and searches for LF a byte at a time, which together cost
//! about 40 % of the generator's time at 15 million deliveries per second, so the generator
//! would measure itself. Here LF is found with `memchr` and nothing is validated; the caller
//! checks UTF-8 on the lines it parses as text (everything but the ASCII load messages, whose
//! parser accepts digits and spaces only). The bound is the same: at most `max + 1` bytes of an
//! incomplete line are kept; a longer line is reported once as [`Line::TooLong`] and skipped to
//! its LF. Empty lines are skipped. No socket here.

/// One result of framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete, non-empty line without its terminator.
    Full(&'a [u8]),
    /// A line passed the limit; it is discarded up to its LF.
    TooLong,
}

/// An incremental framer with a hard bound on what it stores.
#[derive(Debug, Default)]
pub struct Lines {
    /// The incomplete line. Invariant: `len() <= max + 1`; empty while discarding.
    partial: Vec<u8>,
    /// True while skipping the rest of an over-long line (already reported).
    discarding: bool,
}

/// A `partial` buffer above this capacity is given back once it is empty, so a long line seen
/// once does not pin memory on each of 10,000 connections.
const KEEP: usize = 1024;

impl Lines {
    /// Feeds `input`; calls `each` for every line completed by it, in order. `max` is the
    /// longest line accepted, terminator excluded.
    pub fn feed(&mut self, input: &[u8], max: usize, mut each: impl FnMut(Line<'_>)) {
        let mut rest = input;
        if self.discarding || !self.partial.is_empty() {
            let Some(lf) = memchr::memchr(b'\n', rest) else {
                self.hold(rest, max, &mut each);
                return;
            };
            let head = &rest[..lf];
            rest = &rest[lf + 1..];
            if self.discarding {
                self.discarding = false;
            } else if self.partial.len() + head.len() > max + 1 {
                self.partial.clear();
                each(Line::TooLong);
            } else {
                self.partial.extend_from_slice(head);
                emit(&self.partial, max, &mut each);
                self.partial.clear();
            }
        }
        let mut start = 0;
        for lf in memchr::memchr_iter(b'\n', rest) {
            emit(&rest[start..lf], max, &mut each);
            start = lf + 1;
        }
        self.hold(&rest[start..], max, &mut each);
        if self.partial.is_empty() && self.partial.capacity() > KEEP {
            self.partial = Vec::new();
        }
    }

    /// Keeps `tail`, an incomplete line, within the bound.
    fn hold(&mut self, tail: &[u8], max: usize, each: &mut impl FnMut(Line<'_>)) {
        if self.discarding || tail.is_empty() {
            return;
        }
        if self.partial.len() + tail.len() > max + 1 {
            self.partial.clear();
            self.discarding = true;
            each(Line::TooLong);
        } else {
            self.partial.extend_from_slice(tail);
        }
    }

    /// Bytes of an incomplete line held.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }
}

/// Strips a CR before the LF, skips empty lines, enforces the limit.
fn emit(line: &[u8], max: usize, each: &mut impl FnMut(Line<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return;
    }
    if line.len() > max {
        each(Line::TooLong);
    } else {
        each(Line::Full(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes; returns what came out, `!` for TooLong.
    fn frame(input: &[u8], chunk: usize, max: usize) -> Vec<String> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            lines.feed(piece, max, |l| {
                out.push(match l {
                    Line::Full(b) => String::from_utf8_lossy(b).into_owned(),
                    Line::TooLong => "!".to_owned(),
                })
            });
            assert!(lines.buffered() <= max + 1);
        }
        out
    }

    #[test]
    fn frames_in_any_chunking() {
        let input = b"MSG a - L 1 2 3\r\n\nJOIN b\n\r\nINFO x y\nrest";
        for chunk in 1..=input.len() {
            assert_eq!(
                frame(input, chunk, 100),
                ["MSG a - L 1 2 3", "JOIN b", "INFO x y"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn long_lines_are_reported_once_and_skipped() {
        let input = b"ok\n0123456789abc\nfine\n0123456789\r\n";
        for chunk in 1..=input.len() {
            assert_eq!(
                frame(input, chunk, 10),
                ["ok", "!", "fine", "0123456789"],
                "chunk {chunk}"
            );
        }
        // A CR may sit on the limit while its LF has not arrived.
        assert_eq!(frame(b"0123456789\r", 11, 10), Vec::<String>::new());
    }

    #[test]
    fn gives_back_large_buffers() {
        let mut lines = Lines::default();
        let long = vec![b'x'; 5000];
        lines.feed(&long, 10_000, |_| {});
        assert_eq!(lines.buffered(), 5000);
        let mut n = 0;
        lines.feed(b"\n", 10_000, |_| n += 1);
        assert_eq!((n, lines.buffered(), lines.partial.capacity()), (1, 0, 0));
    }
}
