//! The shared core of both interfaces: the protocol brain ([`brain`]: one message type, one
//! `update` that returns effects), what it stores ([`store`]: messages as what was said, never
//! as screen rows), who is online ([`roster`]) and what Enter sends ([`compose`]), and what a version 3 session keeps across connections
//! ([`session`]). Nothing here
//! touches a socket, a terminal or the clock; the views (`tui/`, `line/`) only read it.
//! Beside them, the rules both views share (issue 25): [`clock`] (time formats, day-change
//! lines), [`filter`] (ignore list, hidden joins, highlight words), [`crowd`] (a run of joins
//! and leaves as one row), [`who`] (a `/who` reply as one entry), [`split`] (over-long lines
//! split, over-large pastes refused), [`search`] (`/search` in the scrollback), [`query`] (the
//! conversation view, `/query NAME`) and [`logfile`] (logging to a file; the only file
//! writer here, handed the time).

pub mod brain;
pub mod clock;
pub mod compose;
pub mod crowd;
pub mod filter;
pub mod logfile;
pub mod query;
pub mod roster;
pub mod search;
pub mod session;
pub mod split;
pub mod store;
pub mod who;

pub use brain::{Brain, Effect, Link, Msg, Now, Settings};
