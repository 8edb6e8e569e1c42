//! The shared core of both interfaces: the protocol brain ([`brain`]: one message type, one
//! `update` that returns effects), what it stores ([`store`]: messages as what was said, never
//! as screen rows), who is online ([`roster`]) and what Enter sends ([`compose`]), and what a version 3 session keeps across connections
//! ([`session`]). Nothing here
//! touches a socket, a terminal or the clock; the views (`tui/`, `line/`) only read it.

pub mod brain;
pub mod compose;
pub mod roster;
pub mod session;
pub mod store;

pub use brain::{Brain, Effect, Link, Msg, Now, Settings};
