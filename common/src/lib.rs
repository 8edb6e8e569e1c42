//! Pure code shared by `chat-server` and `chat-client`: how bytes become lines, how lines become
//! typed messages and back, and how message text becomes styled spans.
//!
//! Nothing here touches a socket, a thread or a terminal; every function is total on arbitrary
//! input (it returns an error instead of panicking), so the server can feed it whatever a peer
//! sends.
//!
//! # Layout
//! - [`framing`]: an incremental, bounded line framer (bytes in any chunking -> lines).
//! - [`protocol`]: the wire messages both ways ([`protocol::ServerMsg`], [`protocol::Request`]),
//!   names, colors and error codes, with exact formatting and parsing.
//! - [`sanitize`]: removal of control, C1 and bidi characters from text a peer sent.
//! - `manual` (feature `manual`): man pages from a clap definition, with extra sections.
//! - [`markup`]: `**bold**`, `__italic__` and `~~strike~~` parsed into styled spans.
//! - [`irc`]: the IRC client protocol (parsing, replies, formatting codes, registration) for
//!   the server's IRC members.
#![deny(missing_docs)]

pub mod framing;
pub mod irc;
#[cfg(feature = "manual")]
pub mod manual;
pub mod markup;
pub mod protocol;
pub mod sanitize;
pub mod scan;
