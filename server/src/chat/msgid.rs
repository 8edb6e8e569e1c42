//! Message ids: `<epoch>-<seq>`, opaque to clients, ordered by the server.
//!
//! The epoch is 8 hex digits chosen at random when a data directory is created (and per process
//! with `--data-dir none`, whose log dies with it); the sequence is the store's, one more than
//! the highest ever written, persisted in every commit, so an id is never reused across
//! restarts. An id of another epoch (an older in-memory server, another directory) is one this
//! server cannot place: a resume from it replays everything kept, after a `GAP`.

use std::fmt;

/// A message id as this server writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    /// The log's epoch.
    pub epoch: u32,
    /// The position in the log: 1, 2, 3 ... (never reused).
    pub seq: u64,
}

impl MsgId {
    /// Parses an id of any epoch; `None` for a string this server never wrote.
    pub fn parse(s: &str) -> Option<MsgId> {
        let (epoch, seq) = s.split_once('-')?;
        if epoch.len() != 8 || seq.is_empty() || seq.len() > 20 {
            return None;
        }
        if !seq.bytes().all(|b| b.is_ascii_digit()) || (seq.len() > 1 && seq.starts_with('0')) {
            return None;
        }
        if !epoch
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        Some(MsgId {
            epoch: u32::from_str_radix(epoch, 16).ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// Appends the id's text to `out` (no allocation beyond `out`'s growth).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text().as_str().as_bytes());
    }

    /// The id's text, written on the stack: a message gets its id once, on the hot path, where
    /// `format!` cost a tenth of a fan-out-100 message's CPU (its machinery and a `String`).
    pub fn text(&self) -> IdText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; ID_TEXT_MAX];
        for (i, b) in buf[..8].iter_mut().enumerate() {
            *b = HEX[((self.epoch >> (28 - 4 * i)) & 0xf) as usize];
        }
        buf[8] = b'-';
        let mut digits = [0u8; 20];
        let mut n = self.seq;
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = 9 + digits.len() - start;
        buf[9..len].copy_from_slice(&digits[start..]);
        IdText { buf, len }
    }
}

/// The longest id's text: 8 hex digits, `-`, and a `u64` in decimal (20 digits).
const ID_TEXT_MAX: usize = 8 + 1 + 20;

/// An id's text without an allocation ([`MsgId::text`]).
#[derive(Debug, Clone, Copy)]
pub struct IdText {
    buf: [u8; ID_TEXT_MAX],
    len: usize,
}

impl IdText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, hex digits and `-` are ever written: always UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// Gives ids in relay order: the core's, seeded from the store at start.
#[derive(Debug, Clone, Copy)]
pub struct IdGen {
    epoch: u32,
    next: u64,
}

impl IdGen {
    /// Ids `epoch-next`, `epoch-(next+1)`, ...
    pub fn new(epoch: u32, next: u64) -> IdGen {
        IdGen {
            epoch,
            next: next.max(1),
        }
    }

    /// A fresh epoch from the OS (the log lives in memory only); falls back to the clock.
    pub fn ephemeral() -> IdGen {
        let epoch = new_epoch().unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32)
        });
        IdGen::new(epoch, 1)
    }

    /// The next id.
    pub fn next_id(&mut self) -> MsgId {
        let id = MsgId {
            epoch: self.epoch,
            seq: self.next,
        };
        self.next += 1;
        id
    }

    /// The log's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
}

/// A fresh random epoch from the operating system.
pub fn new_epoch() -> Result<u32, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(u32::from_be_bytes(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_written_as_format_would() {
        for (epoch, seq) in [
            (0, 0),
            (0, 1),
            (0x3fa2_b1c0, 1042),
            (u32::MAX, 9),
            (0x0000_000a, 10),
            (1, u64::MAX),
            (0x8000_0000, 1_000_000_000_000),
        ] {
            let id = MsgId { epoch, seq };
            let want = format!("{epoch:08x}-{seq}");
            assert_eq!(id.text().as_str(), want);
            assert_eq!(id.to_string(), want);
            let mut out = b"x".to_vec();
            id.write_to(&mut out);
            assert_eq!(out, format!("x{want}").into_bytes());
            assert_eq!(MsgId::parse(&want), Some(id));
        }
    }

    #[test]
    fn ids_round_trip_and_are_valid_wire_ids() {
        for id in [
            MsgId { epoch: 0, seq: 1 },
            MsgId {
                epoch: u32::MAX,
                seq: u64::MAX,
            },
            MsgId {
                epoch: 0x1234abcd,
                seq: 42,
            },
        ] {
            let s = id.to_string();
            assert!(chat_common::protocol::v3::is_id(&s), "{s}");
            assert_eq!(MsgId::parse(&s), Some(id));
        }
        assert_eq!(MsgId { epoch: 1, seq: 7 }.to_string(), "00000001-7");
    }

    #[test]
    fn foreign_ids_do_not_parse() {
        for s in [
            "",
            "-",
            "1-1",
            "0000000g-1",
            "00000001-",
            "00000001-01",
            "00000001-x",
            "00000001-1-2",
            "00000001-99999999999999999999",
            "ABCDEF12-1",
        ] {
            assert_eq!(MsgId::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn ids_order_by_sequence_within_an_epoch() {
        let a = MsgId { epoch: 5, seq: 9 };
        let b = MsgId { epoch: 5, seq: 10 };
        assert!(a < b);
        assert_ne!(new_epoch().unwrap(), new_epoch().unwrap());
    }
}
