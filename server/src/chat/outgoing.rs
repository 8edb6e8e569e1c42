//! What the core sends: one shared [`Outgoing`] value per message, and the [`Dialect`]s that
//! encode it for the wire.
//!
//! The core builds a message once (a typed `ServerMsg`, written in its version 1/2 form, plus its
//! metadata: the wall time, and the id a store gives it) and hands the same `Rc<Outgoing>` to
//! every recipient, the history and the cluster. Each connection speaks one dialect; the first
//! recipient of a dialect encodes the message for it and every later one reuses those bytes
//! (a per-dialect cache inside the message), so a fan-out to N members of D dialects costs D
//! encodings and N refcounts, never N copies.
//!
//! The version 1/2 line is the message's canonical form: the core writes it at once (every
//! dialect starts from it, and it is what the history, the log and the cluster carry), and
//! [`Outgoing::msg`] reads the typed message back from it (the grammar round-trips exactly), so
//! a dialect never re-parses the core's intent from anything looser than `ServerMsg`.
//!
//! A dialect the shell defines (IRC) is an [`Encoder`] the shell hands in as
//! [`Dialect::Shell`]: the core knows no such syntax, only that each has its own slot in the
//! cache. A reply the shell wrote in its own dialect for one connection (a numeric) is a
//! [`Outgoing::verbatim`] message: the same bytes in every dialect.
//!
//! This module must never know a socket: encoding is pure.

use std::cell::OnceCell;
use std::fmt;
use std::rc::Rc;
use std::time::SystemTime;

use chat_common::protocol::ServerMsg;

/// How a dialect the shell defines writes the core's messages (the IRC dialect, in each of its
/// tag variants). The core never sees the syntax; it only keeps each encoder's bytes in the
/// encoder's own slot of a message's cache.
pub trait Encoder: fmt::Debug {
    /// This encoder's slot: 0 to [`Dialect::SHELL_SLOTS`] - 1, one per encoder in use.
    fn slot(&self) -> usize;
    /// The bytes of `msg` in this dialect (called at most once per message and encoder), in
    /// the shared form every queue of the dialect holds.
    fn encode(&self, msg: &Outgoing) -> Rc<[u8]>;
}

/// A wire syntax a connection speaks. A new dialect adds a variant, its slot in
/// [`Dialect::COUNT`] and its arm in `Dialect::encode`.
#[derive(Debug, Clone, Copy, Default)]
pub enum Dialect {
    /// Version 1 and 2 text lines (netcat, the client): the canonical line as it is.
    #[default]
    Line,
    /// Version 3 (`HELLO 3`): a message with an id (`MSG`, `ACT`, `PRIV`, `HIST`) gets the tag
    /// prefix `@id=<id>;time=<time> `; every other line is the version 2 line.
    V3,
    /// A dialect the shell defines (IRC), with its encoder (one per variant, made once at
    /// start and kept for the server's life) and the encoder's cache index, read once by
    /// [`Dialect::shell`]: every delivery looks it up (three times), and a call through the
    /// encoder each time cost as much as the rest of the lookup.
    Shell(&'static dyn Encoder, u8),
}

impl PartialEq for Dialect {
    fn eq(&self, other: &Dialect) -> bool {
        self.index() == other.index()
    }
}

impl Eq for Dialect {}

impl Dialect {
    /// Slots for the shell's encoders (IRC: with or without `time` and `msgid` tags).
    pub const SHELL_SLOTS: usize = 4;
    /// How many dialects there are (the size of each message's encoding cache).
    pub const COUNT: usize = 2 + Dialect::SHELL_SLOTS;

    /// The dialect of a shell's `encoder`.
    pub fn shell(encoder: &'static dyn Encoder) -> Dialect {
        let index = 2 + encoder.slot().min(Dialect::SHELL_SLOTS - 1);
        Dialect::Shell(encoder, u8::try_from(index).unwrap_or(u8::MAX))
    }

    /// This dialect's slot in the cache: 0 to [`Dialect::COUNT`] - 1.
    pub fn index(self) -> usize {
        match self {
            Dialect::Line => 0,
            Dialect::V3 => 1,
            Dialect::Shell(_, index) => usize::from(index),
        }
    }

    /// Encodes `msg` in this dialect (called at most once per message and dialect).
    fn encode(self, msg: &Outgoing) -> Rc<[u8]> {
        match self {
            Dialect::Line => Rc::clone(&msg.line),
            Dialect::V3 => match (&msg.id, msg.wall) {
                (Some(id), Some(wall)) => {
                    let time = humantime::format_rfc3339_millis(wall).to_string();
                    let mut out = Vec::with_capacity(msg.line.len() + id.len() + time.len() + 11);
                    chat_common::protocol::v3::write_tags(&mut out, id, &time);
                    out.extend_from_slice(&msg.line);
                    Rc::from(out)
                }
                _ => Rc::clone(&msg.line),
            },
            Dialect::Shell(e, _) => e.encode(msg),
        }
    }
}

/// One message the core sends, shared by refcount among its recipients.
#[derive(Debug)]
pub struct Outgoing {
    /// The version 1/2 line, LF included: the canonical form every dialect starts from. Shared
    /// by refcount with the queues (each holds the bytes of its dialect, length beside the
    /// pointer and bytes beside the count: one cache line per queued line, as before the
    /// dialects came; reaching them through the message cost 1.7x the CPU per delivery).
    line: Rc<[u8]>,
    /// When the server relayed it, for the lines that carry a time (`MSG`, `ACT`, `PRIV`,
    /// `HIST`: the history and version 3 `time` tags); `None` for the others.
    pub wall: Option<SystemTime>,
    /// The message's id in the room's log, when a store gave it one (version 3 `id` tags).
    pub id: Option<Box<str>>,
    /// Encodings for dialects other than [`Dialect::Line`], filled on first use.
    encoded: [OnceCell<Rc<[u8]>>; Dialect::COUNT],
    /// The bytes are already on the wire's terms for every dialect ([`Outgoing::verbatim`]).
    verbatim: bool,
    /// What a `BYE` means beyond its text ([`Outgoing::goodbye`]); `None` for every other line.
    pub farewell: Option<Farewell>,
}

/// What a goodbye (`BYE`) to one connection means beyond its text, for a dialect that says it
/// in its own terms (IRC's `KICK`) instead of reading the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Farewell {
    /// The operator kicked the member.
    Kicked {
        /// The reason the operator gave, if any (sanitized and clipped by the core).
        reason: Option<Box<str>>,
    },
}

impl Outgoing {
    /// A message from its typed form, written once into `buf` (a reused scratch buffer).
    pub fn new(msg: &ServerMsg<'_>, wall: Option<SystemTime>, buf: &mut Vec<u8>) -> Rc<Outgoing> {
        buf.clear();
        msg.write_to(buf);
        Outgoing::from_line(buf, wall)
    }

    /// A message from its canonical line (LF included), such as another server's relayed line.
    pub fn from_line(line: &[u8], wall: Option<SystemTime>) -> Rc<Outgoing> {
        Outgoing::from_line_with_id(line, wall, None)
    }

    /// [`Outgoing::from_line`] with the id the room's log gave the message (set once, before
    /// the message is shared).
    pub fn from_line_with_id(
        line: &[u8],
        wall: Option<SystemTime>,
        id: Option<Box<str>>,
    ) -> Rc<Outgoing> {
        Rc::new(Outgoing {
            line: Rc::from(line),
            wall,
            id,
            encoded: Default::default(),
            verbatim: false,
            farewell: None,
        })
    }

    /// A `BYE` with `text` that means `farewell` (a kick), for one connection.
    pub fn goodbye(text: &str, farewell: Farewell, buf: &mut Vec<u8>) -> Rc<Outgoing> {
        buf.clear();
        ServerMsg::Bye { text }.write_to(buf);
        Rc::new(Outgoing {
            line: Rc::from(buf.as_slice()),
            wall: None,
            id: None,
            encoded: Default::default(),
            verbatim: false,
            farewell: Some(farewell),
        })
    }

    /// Bytes a dialect of the shell wrote for one connection (an IRC numeric), sent as they are
    /// whatever the connection's dialect. [`Outgoing::msg`] is `None` for them.
    pub fn verbatim(bytes: Vec<u8>) -> Rc<Outgoing> {
        Rc::new(Outgoing {
            line: Rc::from(bytes),
            wall: None,
            id: None,
            encoded: Default::default(),
            verbatim: true,
            farewell: None,
        })
    }

    /// A message with an id (`MSG`, `ACT`, `PRIV`): version 3 sessions get it tagged.
    pub fn stamped(
        msg: &ServerMsg<'_>,
        wall: SystemTime,
        id: &str,
        buf: &mut Vec<u8>,
    ) -> Rc<Outgoing> {
        buf.clear();
        msg.write_to(buf);
        Outgoing::line_with_id(buf, wall, id)
    }

    /// [`Outgoing::from_line`] with an id.
    pub fn line_with_id(line: &[u8], wall: SystemTime, id: &str) -> Rc<Outgoing> {
        Rc::new(Outgoing {
            line: Rc::from(line),
            wall: Some(wall),
            id: Some(Box::from(id)),
            encoded: Default::default(),
            verbatim: false,
            farewell: None,
        })
    }

    /// The version 1/2 line, LF included.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The typed message, read back from the canonical line; `None` only for a line that did
    /// not come from [`Outgoing::new`] and does not parse (another server's bytes).
    pub fn msg(&self) -> Option<ServerMsg<'_>> {
        if self.verbatim {
            return None;
        }
        let text = std::str::from_utf8(&self.line).ok()?;
        ServerMsg::parse(text.strip_suffix('\n').unwrap_or(text)).ok()
    }

    /// The bytes to send a member speaking `dialect`, encoded on the first call and shared.
    pub fn encoded(&self, dialect: Dialect) -> &[u8] {
        self.shared(dialect)
    }

    /// [`Outgoing::encoded`] as the shared bytes themselves, for a queue to hold (a refcount,
    /// never a copy).
    pub fn shared(&self, dialect: Dialect) -> &Rc<[u8]> {
        match dialect {
            Dialect::Line => &self.line,
            _ if self.verbatim => &self.line,
            // A line without an id is the same in version 3: no copy.
            Dialect::V3 if self.id.is_none() => &self.line,
            other => self.encoded[other.index()].get_or_init(|| other.encode(self)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_written_once_and_reads_back_typed() {
        let mut buf = Vec::new();
        let msg = ServerMsg::Msg {
            from: "alice",
            color: None,
            text: "hi *there*",
        };
        let out = Outgoing::new(&msg, Some(SystemTime::UNIX_EPOCH), &mut buf);
        assert_eq!(out.line(), b"MSG alice - hi *there*\n");
        assert_eq!(out.encoded(Dialect::Line), out.line());
        assert_eq!(out.msg(), Some(msg));
        assert_eq!(&Dialect::Line.encode(&out)[..], out.line());
        assert_eq!(Dialect::Line.index(), 0);
        assert_eq!(out.farewell, None);
    }

    #[test]
    fn a_kick_is_a_bye_that_says_so() {
        let reason = Some(Box::from("flooding"));
        let kick = Farewell::Kicked { reason };
        let out = Outgoing::goodbye(
            "kicked by the operator: flooding",
            kick.clone(),
            &mut Vec::new(),
        );
        assert_eq!(out.line(), b"BYE kicked by the operator: flooding\n");
        assert_eq!(
            out.msg(),
            Some(ServerMsg::Bye {
                text: "kicked by the operator: flooding"
            })
        );
        assert_eq!(out.farewell, Some(kick));
    }

    /// A shell dialect that counts its encodings.
    #[derive(Debug, Default)]
    struct Counting(std::cell::Cell<usize>);

    impl Encoder for Counting {
        fn slot(&self) -> usize {
            2
        }
        fn encode(&self, msg: &Outgoing) -> Rc<[u8]> {
            self.0.set(self.0.get() + 1);
            let mut out = b"X ".to_vec();
            out.extend_from_slice(msg.line());
            Rc::from(out)
        }
    }

    #[test]
    fn a_shell_dialect_encodes_each_message_once_and_verbatim_bytes_never() {
        let counting: &'static Counting = Box::leak(Box::default());
        let dialect = Dialect::shell(counting);
        assert_eq!(dialect.index(), 4);
        assert_ne!(dialect, Dialect::Line);
        let msg = Outgoing::new(&ServerMsg::Join { name: "a" }, None, &mut Vec::new());
        for _ in 0..100 {
            assert_eq!(msg.encoded(dialect), b"X JOIN a\n");
        }
        assert_eq!(counting.0.get(), 1);
        assert_eq!(msg.encoded(Dialect::Line), b"JOIN a\n");
        let raw = Outgoing::verbatim(b":srv 001 a :hi\r\n".to_vec());
        assert_eq!(raw.encoded(dialect), b":srv 001 a :hi\r\n");
        assert_eq!(raw.encoded(Dialect::Line), b":srv 001 a :hi\r\n");
        assert_eq!(raw.msg(), None);
        assert_eq!(counting.0.get(), 1);
    }

    #[test]
    fn version_3_tags_lines_with_ids_and_only_those() {
        let mut buf = Vec::new();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_764_605_109_123);
        let msg = ServerMsg::Act {
            from: "al",
            text: "waves",
        };
        let out = Outgoing::stamped(&msg, at, "0000abcd-7", &mut buf);
        assert_eq!(out.encoded(Dialect::Line), b"ACT al waves\n");
        assert_eq!(
            out.encoded(Dialect::V3),
            b"@id=0000abcd-7;time=2025-12-01T16:05:09.123Z ACT al waves\n"
        );
        let plain = Outgoing::new(&ServerMsg::Join { name: "al" }, None, &mut buf);
        assert_eq!(plain.encoded(Dialect::V3), b"JOIN al\n");
        let hist = super::super::history::hist(&out, &mut buf);
        assert_eq!(
            hist.encoded(Dialect::V3),
            &b"@id=0000abcd-7;time=2025-12-01T16:05:09.123Z HIST 2025-12-01T16:05:09.123Z ACT al waves\n"[..]
        );
    }
}
