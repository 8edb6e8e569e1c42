//! The web listeners' protocol pieces: HTTP request heads and responses, the page's embedded
//! files, and WebSocket frames. All pure: the reactor (`crate::reactor::web`,
//! `crate::reactor::websocket`) moves the bytes and keeps the deadlines.
//!
//! # Layout
//! - [`http`]: request heads (httparse, bounded), routing, the WebSocket handshake's checks,
//!   response heads and the page's security headers.
//! - [`page`]: the page's HTML, CSS and scripts, compiled in, with entity tags.
//! - [`ws`]: WebSocket frames decoded into lines and lines encoded as frames; the close codes.

pub mod http;
pub mod page;
pub mod ws;
