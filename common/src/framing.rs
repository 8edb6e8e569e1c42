//! Incremental line framing: bytes in, in whatever chunks they arrive; lines out.
//!
//! Two layers, one rule. [`RawLineFramer`] is the core: it finds each LF with `memchr`, drops a
//! CR right before the LF, skips empty lines, and holds at most one incomplete line of at most
//! the line limit (+1 byte for a CR that may precede the LF): a line that grows past the limit is
//! reported once as [`RawFrame::TooLong`] and the rest of it is skipped up to the next LF without
//! being stored, whatever a peer sends. [`LineFramer`] is the same core with UTF-8 checked on
//! each line ([`Frame::BadUtf8`] for one that is not), for the server and the client; the load
//! generator reads the core's byte lines and checks UTF-8 only on the lines it parses as text.
//! Complete lines that arrive in one piece are returned as slices of the caller's input, so the
//! common path neither copies nor allocates.
//!
//! Why `memchr`: finding the LF is the hottest loop of a receiver. Measured on one pinned core
//! (a stream of 35-byte `MSG mN - L s seq ns` lines fed in 64 KiB chunks, as chat-load reads
//! them; 64 MiB, best of 3): the core frames a line in 16.6 ns, the UTF-8 layer in 17.1 ns,
//! chat-load's former memchr framer (`load/src/lines.rs`, removed) took 17.5 ns and this
//! module's former byte-at-a-time scan 29.9 ns. End to end, chat-load's CPU per delivery on
//! fanout-100 (`-n 100 -s 100 -m 200 -w 32`, release builds pinned to a core each, median of
//! five interleaved runs) was 32.3 ns on its own framer and 32.4 ns on this one: no change.
//!
//! It never touches a socket: the caller reads, then hands the bytes to `feed`.

/// The protocol's default maximum line length in bytes, without the terminator.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// One result of the byte-level core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFrame<'a> {
    /// A complete, non-empty line of at most the limit, without its LF (and CR). Not checked
    /// for UTF-8.
    Line(&'a [u8]),
    /// A line passed the limit. Reported once per line, as soon as it is known; the line's
    /// bytes up to and including its LF are discarded.
    TooLong,
}

/// One result of framing with UTF-8 checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete, non-empty line of valid UTF-8, without its LF (and CR).
    Line(&'a str),
    /// A line passed the limit. Reported once per line, as soon as it is known; the line's
    /// bytes up to and including its LF are discarded.
    TooLong,
    /// A complete line that is not valid UTF-8; it is dropped.
    BadUtf8,
}

/// The byte-level core: an incremental line framer with a hard bound on what it stores, which
/// does not look inside lines.
#[derive(Debug)]
pub struct RawLineFramer {
    /// Bytes of the current incomplete line. Invariant: `len() <= max_line + 1` (the +1 is room
    /// for a CR whose LF has not arrived yet). Empty while discarding an over-long line.
    partial: Vec<u8>,
    /// The longest line accepted, in bytes, without its terminator.
    max_line: usize,
    /// True while skipping the rest of an over-long line (already reported).
    discarding: bool,
    /// True when the last frame returned borrowed `partial`, which must be cleared first thing
    /// on the next call.
    partial_returned: bool,
}

impl RawLineFramer {
    /// Creates a framer that accepts lines of at most `max_line` bytes (at least 1).
    pub fn new(max_line: usize) -> Self {
        RawLineFramer {
            partial: Vec::new(),
            max_line: max_line.max(1),
            discarding: false,
            partial_returned: false,
        }
    }

    /// The line limit this framer enforces.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// How many bytes of an incomplete line are stored (never more than `max_line + 1`).
    pub fn buffered(&self) -> usize {
        if self.partial_returned {
            0
        } else {
            self.partial.len()
        }
    }

    /// Frees the storage of the incomplete-line buffer when it is empty, so an idle connection
    /// holds no heap memory for framing.
    pub fn release_idle(&mut self) {
        if self.buffered() == 0 {
            self.partial = Vec::new();
            self.partial_returned = false;
        }
    }

    /// Consumes bytes from the front of `input` until one frame is complete or `input` runs out.
    ///
    /// Returns how many bytes were consumed and the frame, if one completed. When no frame is
    /// returned, all of `input` was consumed (an incomplete tail is stored, within the bound).
    /// Call again with the unconsumed rest (`&input[consumed..]`) to get further frames.
    pub fn feed<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<RawFrame<'a>>) {
        if self.partial_returned {
            self.partial.clear();
            self.partial_returned = false;
        }
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let newline = memchr::memchr(b'\n', rest);
            if self.discarding {
                match newline {
                    Some(i) => {
                        self.discarding = false;
                        pos += i + 1;
                        continue;
                    }
                    None => return (input.len(), None),
                }
            }
            match newline {
                Some(i) => {
                    let consumed = pos + i + 1;
                    if self.partial.is_empty() {
                        // Zero-copy path: the whole line is in the caller's input.
                        let line = strip_cr(&rest[..i]);
                        if line.is_empty() {
                            pos = consumed;
                            continue;
                        }
                        return (consumed, Some(bounded(line, self.max_line)));
                    }
                    if self.partial.len() + i > self.max_line + 1 {
                        // Cannot be a CR that the limit allows; the LF is in this chunk.
                        self.partial.clear();
                        return (consumed, Some(RawFrame::TooLong));
                    }
                    self.append(&rest[..i]);
                    if self.partial == b"\r" {
                        // An empty CRLF line whose CR came in an earlier chunk.
                        self.partial.clear();
                        pos = consumed;
                        continue;
                    }
                    self.partial_returned = true;
                    let line = strip_cr(&self.partial);
                    return (consumed, Some(bounded(line, self.max_line)));
                }
                None => {
                    let total = self.partial.len() + rest.len();
                    let may_be_cr = total == self.max_line + 1 && rest.last() == Some(&b'\r');
                    if total > self.max_line && !may_be_cr {
                        self.partial.clear();
                        self.discarding = true;
                        return (input.len(), Some(RawFrame::TooLong));
                    }
                    self.append(rest);
                    return (input.len(), None);
                }
            }
        }
        (input.len(), None)
    }

    /// Appends to the incomplete line (the caller checked it stays within `max_line + 1`).
    /// Storage grows by doubling but never past `max_line + 1` bytes: `Vec`'s own doubling
    /// would reserve up to twice the limit (8 KiB for a 4095-byte partial line), and every
    /// member parked on a partial line would hold that much.
    fn append(&mut self, bytes: &[u8]) {
        let want = self.partial.len() + bytes.len();
        if want > self.partial.capacity() {
            let cap = (self.partial.capacity() * 2)
                .max(want)
                .max(MIN_PARTIAL)
                .min(self.max_line + 1)
                .max(want);
            self.partial.reserve_exact(cap - self.partial.len());
        }
        self.partial.extend_from_slice(bytes);
    }
}

/// Smallest storage the incomplete-line buffer starts with.
const MIN_PARTIAL: usize = 64;

/// The core with UTF-8 checked on every line: what the server and the client frame with.
#[derive(Debug)]
pub struct LineFramer {
    /// The byte-level framing; this layer only validates its lines.
    raw: RawLineFramer,
}

impl LineFramer {
    /// Creates a framer that accepts lines of at most `max_line` bytes (at least 1).
    pub fn new(max_line: usize) -> Self {
        LineFramer {
            raw: RawLineFramer::new(max_line),
        }
    }

    /// The line limit this framer enforces.
    pub fn max_line(&self) -> usize {
        self.raw.max_line()
    }

    /// How many bytes of an incomplete line are stored (never more than `max_line + 1`).
    pub fn buffered(&self) -> usize {
        self.raw.buffered()
    }

    /// Frees the storage of the incomplete-line buffer when it is empty, so an idle connection
    /// holds no heap memory for framing.
    pub fn release_idle(&mut self) {
        self.raw.release_idle();
    }

    /// Consumes bytes from the front of `input` until one frame is complete or `input` runs out.
    ///
    /// Returns how many bytes were consumed and the frame, if one completed. When no frame is
    /// returned, all of `input` was consumed (an incomplete tail is stored, within the bound).
    /// Call again with the unconsumed rest (`&input[consumed..]`) to get further frames.
    pub fn feed<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<Frame<'a>>) {
        let (consumed, frame) = self.raw.feed(input);
        let frame = frame.map(|f| match f {
            RawFrame::Line(line) => match std::str::from_utf8(line) {
                Ok(s) => Frame::Line(s),
                Err(_) => Frame::BadUtf8,
            },
            RawFrame::TooLong => Frame::TooLong,
        });
        (consumed, frame)
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    match line.split_last() {
        Some((b'\r', head)) => head,
        _ => line,
    }
}

/// A complete line, its CR dropped, as a frame: the paths above let `max_line + 1` bytes through
/// in case the last is a CR, so a line without one can still be a byte over.
fn bounded(line: &[u8], max_line: usize) -> RawFrame<'_> {
    if line.len() > max_line {
        RawFrame::TooLong
    } else {
        RawFrame::Line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a test compares: frames with their lines owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Out {
        Line(String),
        TooLong,
        BadUtf8,
    }

    /// Feeds `chunks` in order and collects every frame, checking the storage bound throughout.
    fn run(max: usize, chunks: &[&[u8]]) -> Vec<Out> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest: &[u8] = chunk;
            loop {
                let (n, frame) = framer.feed(rest);
                match frame {
                    Some(Frame::Line(s)) => out.push(Out::Line(s.to_owned())),
                    Some(Frame::TooLong) => out.push(Out::TooLong),
                    Some(Frame::BadUtf8) => out.push(Out::BadUtf8),
                    None => {
                        assert_eq!(n, rest.len(), "no frame means all input consumed");
                    }
                }
                assert!(framer.buffered() <= max + 1, "stored {}", framer.buffered());
                rest = &rest[n..];
                if rest.is_empty() {
                    break;
                }
            }
        }
        out
    }

    fn bytewise(max: usize, input: &[u8]) -> Vec<Out> {
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        run(max, &chunks)
    }

    fn line(s: &str) -> Out {
        Out::Line(s.to_owned())
    }

    #[test]
    fn lf_and_crlf_lines() {
        let input = b"hello\nworld\r\n";
        assert_eq!(run(100, &[input]), vec![line("hello"), line("world")]);
        assert_eq!(bytewise(100, input), vec![line("hello"), line("world")]);
    }

    #[test]
    fn empty_lines_are_skipped() {
        assert_eq!(run(10, &[b"\n\r\n\na\n\n"]), vec![line("a")]);
        assert_eq!(bytewise(10, b"\n\r\n\na\n\n"), vec![line("a")]);
    }

    #[test]
    fn incomplete_line_waits_for_its_lf() {
        assert_eq!(run(10, &[b"abc"]), vec![]);
        assert_eq!(run(10, &[b"ab", b"c\n"]), vec![line("abc")]);
    }

    #[test]
    fn only_a_cr_right_before_lf_is_dropped() {
        assert_eq!(run(10, &[b"a\rb\r\r\n"]), vec![line("a\rb\r")]);
    }

    #[test]
    fn line_at_the_limit_passes_and_one_past_is_too_long() {
        let at = format!("{}\n", "x".repeat(8));
        let past = format!("{}\n", "x".repeat(9));
        assert_eq!(bytewise(8, at.as_bytes()), vec![line(&"x".repeat(8))]);
        assert_eq!(run(8, &[at.as_bytes()]), vec![line(&"x".repeat(8))]);
        assert_eq!(bytewise(8, past.as_bytes()), vec![Out::TooLong]);
        assert_eq!(run(8, &[past.as_bytes()]), vec![Out::TooLong]);
    }

    #[test]
    fn crlf_line_at_the_limit_passes_in_any_chunking() {
        let at = format!("{}\r\n", "x".repeat(8));
        assert_eq!(bytewise(8, at.as_bytes()), vec![line(&"x".repeat(8))]);
        assert_eq!(run(8, &[at.as_bytes()]), vec![line(&"x".repeat(8))]);
        let (a, b) = at.as_bytes().split_at(9);
        assert_eq!(run(8, &[a, b]), vec![line(&"x".repeat(8))]);
    }

    #[test]
    fn too_long_is_reported_once_and_the_connection_goes_on() {
        let mut input = vec![b'y'; 100];
        input.extend_from_slice(b"\nnext\n");
        assert_eq!(bytewise(8, &input), vec![Out::TooLong, line("next")]);
        assert_eq!(run(8, &[&input]), vec![Out::TooLong, line("next")]);
    }

    #[test]
    fn flood_without_newline_stores_at_most_the_limit() {
        let mut framer = LineFramer::new(16);
        let chunk = [b'z'; 1000];
        let mut reports = 0;
        for _ in 0..1000 {
            let (n, frame) = framer.feed(&chunk);
            assert_eq!(n, chunk.len());
            if frame == Some(Frame::TooLong) {
                reports += 1;
            }
            assert!(framer.buffered() <= 17);
        }
        assert_eq!(reports, 1);
        assert_eq!(
            framer.raw.partial.capacity(),
            0,
            "discarded bytes are never stored"
        );
    }

    #[test]
    fn invalid_utf8_is_reported_per_line() {
        let input = b"ok\n\xff\xfe\nfine\n";
        let want = vec![line("ok"), Out::BadUtf8, line("fine")];
        assert_eq!(run(10, &[input]), want);
        assert_eq!(bytewise(10, input), want);
    }

    #[test]
    fn multibyte_char_split_across_chunks() {
        let input = "héllo ✓\n".as_bytes();
        assert_eq!(bytewise(64, input), vec![line("héllo ✓")]);
    }

    #[test]
    fn a_partial_line_never_holds_more_than_the_limit_plus_one() {
        // Found by a hostile-peer probe: 4095 bytes of a line parked in the framer held 8 KiB,
        // as the buffer doubled. Any chunking, up to the limit: storage within max_line + 1.
        for max_line in [1, 63, 64, 100, 4096, 65_536] {
            for chunk in [1, 7, 1000, 4095, max_line] {
                let mut framer = RawLineFramer::new(max_line);
                let data = vec![b'x'; max_line];
                for piece in data.chunks(chunk.max(1)) {
                    let (_, frame) = framer.feed(piece);
                    assert_eq!(frame, None);
                    assert!(
                        framer.partial.capacity() <= max_line + 1,
                        "max_line {max_line}, chunks of {chunk}: capacity {}",
                        framer.partial.capacity()
                    );
                }
                assert_eq!(framer.buffered(), max_line);
                let (_, frame) = framer.feed(b"\n");
                assert!(matches!(frame, Some(RawFrame::Line(l)) if l.len() == max_line));
            }
        }
    }

    #[test]
    fn release_idle_frees_storage_only_when_empty() {
        let mut framer = LineFramer::new(64);
        let _ = framer.feed(b"abc");
        framer.release_idle();
        assert_eq!(framer.buffered(), 3);
        let (_, frame) = framer.feed(b"\n");
        assert_eq!(frame, Some(Frame::Line("abc")));
        framer.release_idle();
        assert_eq!(framer.raw.partial.capacity(), 0);
    }

    /// Feeds `chunks` to the byte-level core; `None` stands for TooLong.
    fn run_raw(max: usize, chunks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
        let mut framer = RawLineFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest: &[u8] = chunk;
            while !rest.is_empty() {
                let (n, frame) = framer.feed(rest);
                match frame {
                    Some(RawFrame::Line(l)) => out.push(Some(l.to_vec())),
                    Some(RawFrame::TooLong) => out.push(None),
                    None => assert_eq!(n, rest.len(), "no frame means all input consumed"),
                }
                assert!(n > 0, "every call makes progress");
                assert!(framer.buffered() <= max + 1, "stored {}", framer.buffered());
                rest = &rest[n..];
            }
        }
        out
    }

    fn raw_bytewise(max: usize, input: &[u8]) -> Vec<Option<Vec<u8>>> {
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        run_raw(max, &chunks)
    }

    /// Expected core output from text lines (`None`: TooLong).
    fn raw(lines: &[Option<&str>]) -> Vec<Option<Vec<u8>>> {
        lines
            .iter()
            .map(|l| l.map(|s| s.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn raw_core_frames_load_lines_in_any_chunking() {
        let input = b"MSG a - L 1 2 3\r\n\nJOIN b\n\r\nINFO x y\nrest";
        let want = raw(&[Some("MSG a - L 1 2 3"), Some("JOIN b"), Some("INFO x y")]);
        for size in 1..=input.len() {
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(run_raw(100, &chunks), want, "chunks of {size}");
        }
    }

    #[test]
    fn raw_core_reports_long_lines_once_and_goes_on() {
        let input = b"ok\n0123456789abc\nfine\n0123456789\r\n";
        let want = raw(&[Some("ok"), None, Some("fine"), Some("0123456789")]);
        for size in 1..=input.len() {
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(run_raw(10, &chunks), want, "chunks of {size}");
        }
        // A CR may sit on the limit while its LF has not arrived.
        assert_eq!(raw_bytewise(10, b"0123456789\r"), raw(&[]));
    }

    #[test]
    fn raw_core_does_not_check_utf8() {
        assert_eq!(
            raw_bytewise(10, b"\xff\xfe\n"),
            vec![Some(b"\xff\xfe".to_vec())]
        );
        assert_eq!(run(10, &[b"\xff\xfe\n"]), vec![Out::BadUtf8]);
    }

    fn chunkings() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        let bytes = prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"ab \xc3\xa9".to_vec()),
                2 => Just(b'\n'),
                1 => Just(b'\r'),
                1 => any::<u8>(),
            ],
            0..200,
        );
        (bytes, prop::collection::vec(1usize..40, 1..20))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_chunking_gives_the_same_frames((input, cuts) in chunkings(), max in 1usize..24) {
            let whole = run(max, &[&input]);
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut rest: &[u8] = &input;
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at((*cut).min(rest.len()));
                chunks.push(a);
                rest = b;
            }
            prop_assert_eq!(&run(max, &chunks), &whole);
            prop_assert_eq!(&bytewise(max, &input), &whole);
        }

        #[test]
        fn lines_never_exceed_the_limit_nor_hold_lf((input, _) in chunkings(), max in 1usize..24) {
            for out in run(max, &[&input]) {
                if let Out::Line(s) = out {
                    prop_assert!(!s.is_empty() && s.len() <= max && !s.contains('\n'));
                }
            }
        }

        #[test]
        fn the_utf8_layer_is_the_core_plus_a_check((input, cuts) in chunkings(), max in 1usize..24) {
            let size = cuts[0];
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            let checked: Vec<Out> = run_raw(max, &chunks)
                .into_iter()
                .map(|l| match l.as_deref().map(std::str::from_utf8) {
                    None => Out::TooLong,
                    Some(Ok(s)) => Out::Line(s.to_owned()),
                    Some(Err(_)) => Out::BadUtf8,
                })
                .collect();
            prop_assert_eq!(checked, run(max, &chunks));
            prop_assert_eq!(raw_bytewise(max, &input), run_raw(max, &[&input]));
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = bytewise(7, &input);
            let _ = run(4096, &[&input]);
        }
    }
}
