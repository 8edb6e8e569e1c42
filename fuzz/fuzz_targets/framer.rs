//! Fuzz target for `chat_common::framing`: the byte-level core `RawLineFramer` and the UTF-8
//! layer `LineFramer` over it. The same bytes, fed whole, in chunks whose sizes come from the
//! input, and one byte at a time, must give the same frames, and those must equal what a
//! one-line reference model of the framing rule says; the core's lines, checked for UTF-8, must
//! be the layer's frames; neither may ever store more than `max_line + 1` bytes.
//!
//! Input layout: byte 0 is the line limit (0 is clamped to 1 by the framer, so small limits, where
//! the CR-at-the-limit edge lives, are common); byte 1 seeds the chunk sizes and says whether to
//! call `release_idle` between chunks; the rest is the byte stream.
#![no_main]

use chat_common::framing::{Frame, LineFramer, RawFrame, RawLineFramer};
use libfuzzer_sys::fuzz_target;

/// A frame with its line owned, so runs can be compared after the framer is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Line(String),
    TooLong,
    BadUtf8,
}

/// Feeds `chunks` in order, collecting frames and checking the storage bound and the `feed`
/// contract after every call.
fn run<'c>(max: usize, chunks: impl Iterator<Item = &'c [u8]>, release: bool) -> Vec<Out> {
    let mut framer = LineFramer::new(max);
    let limit = framer.max_line();
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        while !rest.is_empty() {
            let (n, frame) = framer.feed(rest);
            assert!(n <= rest.len(), "consumed {n} of {}", rest.len());
            match frame {
                Some(Frame::Line(s)) => {
                    assert!(
                        !s.is_empty() && s.len() <= limit && !s.contains('\n'),
                        "{s:?}"
                    );
                    out.push(Out::Line(s.to_owned()));
                }
                Some(Frame::TooLong) => out.push(Out::TooLong),
                Some(Frame::BadUtf8) => out.push(Out::BadUtf8),
                // Without a frame, the whole rest must have been taken (stored or skipped).
                None => assert_eq!(n, rest.len(), "no frame but input left over"),
            }
            // A frame costs at least its LF, and a TooLong tail consumes what it reports, so
            // every call makes progress; a zero here would hang the caller's loop.
            assert!(n > 0, "feed consumed nothing");
            assert!(
                framer.buffered() <= limit + 1,
                "stored {} with limit {limit}",
                framer.buffered()
            );
            rest = &rest[n..];
        }
        if release {
            framer.release_idle();
            assert!(framer.buffered() <= limit + 1);
        }
    }
    out
}

/// Like [`run`] for the byte-level core; its lines are checked for UTF-8 here, so the result
/// compares with the layer's directly.
fn run_raw<'c>(max: usize, chunks: impl Iterator<Item = &'c [u8]>, release: bool) -> Vec<Out> {
    let mut framer = RawLineFramer::new(max);
    let limit = framer.max_line();
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = chunk;
        while !rest.is_empty() {
            let (n, frame) = framer.feed(rest);
            assert!(n > 0 && n <= rest.len(), "consumed {n} of {}", rest.len());
            match frame {
                Some(RawFrame::Line(l)) => {
                    assert!(
                        !l.is_empty() && l.len() <= limit && !l.contains(&b'\n'),
                        "{l:?}"
                    );
                    out.push(match std::str::from_utf8(l) {
                        Ok(s) => Out::Line(s.to_owned()),
                        Err(_) => Out::BadUtf8,
                    });
                }
                Some(RawFrame::TooLong) => out.push(Out::TooLong),
                None => assert_eq!(n, rest.len(), "no frame but input left over"),
            }
            assert!(
                framer.buffered() <= limit + 1,
                "stored {}",
                framer.buffered()
            );
            rest = &rest[n..];
        }
        if release {
            framer.release_idle();
        }
    }
    out
}

/// The framing rule stated over the whole stream at once (docs/PROTOCOL.md and framing.rs):
/// split at LF; drop one CR before the LF; skip empty lines; a line over the limit is TooLong;
/// otherwise it is a line or BadUtf8. The unterminated tail yields TooLong as soon as it cannot
/// fit any more (over the limit, unless it is exactly limit + 1 bytes ending in a CR that an LF may
/// still follow), and nothing otherwise.
fn model(max: usize, input: &[u8]) -> Vec<Out> {
    let max = max.max(1);
    let mut pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let tail = pieces.pop().unwrap_or_default();
    let mut out = Vec::new();
    for piece in pieces {
        let line = piece.strip_suffix(b"\r").unwrap_or(piece);
        if line.is_empty() {
            continue;
        }
        out.push(if line.len() > max {
            Out::TooLong
        } else {
            match std::str::from_utf8(line) {
                Ok(s) => Out::Line(s.to_owned()),
                Err(_) => Out::BadUtf8,
            }
        });
    }
    let may_be_cr = tail.len() == max + 1 && tail.last() == Some(&b'\r');
    if tail.len() > max && !may_be_cr {
        out.push(Out::TooLong);
    }
    out
}

/// Chunk sizes from a tiny xorshift seeded by the input, between 1 and `max + 3` so that chunks
/// both split lines and straddle the limit.
fn chunks(input: &[u8], seed: u8, max: usize) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x100;
    let mut rest = input;
    let mut out = Vec::new();
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state as usize % (max + 3)) + 1;
        let (a, b) = rest.split_at(size.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [max, seed, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*max);
    let release = seed & 1 == 1;
    let whole = run(max, std::iter::once(stream), false);
    assert_eq!(
        whole,
        model(max, stream),
        "whole feed differs from the model"
    );
    let chunked = run(max, chunks(stream, *seed, max.max(1)).into_iter(), release);
    assert_eq!(chunked, whole, "chunked feed differs from the whole feed");
    let bytewise = run(max, stream.chunks(1), !release);
    assert_eq!(
        bytewise, whole,
        "byte-at-a-time feed differs from the whole feed"
    );
    let raw = run_raw(max, chunks(stream, *seed, max.max(1)).into_iter(), release);
    assert_eq!(
        raw, whole,
        "the core's lines differ from the UTF-8 layer's frames"
    );
    let raw_bytewise = run_raw(max, stream.chunks(1), !release);
    assert_eq!(raw_bytewise, whole, "the core fed byte at a time differs");
});
