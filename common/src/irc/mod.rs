//! The IRC client protocol as the server speaks it to IRC members (irssi, weechat, HexChat,
//! bots): pure code, no socket. The server's IRC dialect calls into this module to read what an
//! IRC peer sends and to write what it gets; the room's rules never see IRC syntax.
//!
//! References: modern.ircdocs.horse (the protocol as clients use it), RFC 1459/2812, and the
//! IRCv3 specifications of `message-tags`, `server-time`, `echo-message`, `cap` and SASL `PLAIN`.
//!
//! # Layout
//! - [`message`]: one client line parsed (tags, source, command, parameters) with the limits.
//! - [`encode`]: server lines written (source, command, parameters, tags, numerics).
//! - [`numeric`]: the numeric replies the server sends, by name.
//! - [`format`](mod@format): markup and colors to IRC formatting codes and back.
//! - [`split`]: long formatted text cut into IRC-sized pieces at word boundaries.
//! - [`ctcp`]: CTCP `ACTION` (`/me`) in and out.
//! - [`nick`]: the nick rule (the room's name rule) with its `432` reply.
//! - [`caps`]: the capabilities offered and a client's `CAP REQ`.
//! - [`command`]: what a registered member's line asks for, its parameters checked.
//! - [`registration`]: the registration state machine (CAP, PASS, NICK, USER, SASL PLAIN).
//! - [`relay`]: the room's messages as IRC lines.

pub mod caps;
pub mod command;
pub mod ctcp;
pub mod encode;
pub mod format;
pub mod message;
pub mod nick;
pub mod numeric;
pub mod registration;
pub mod relay;
pub mod split;

pub use message::{Message, ParseError, MAX_BODY, MAX_CLIENT_TAGS, MAX_PARAMS, MAX_WIRE_LINE};
