//! `chat-client`: a two-thread terminal client for the chat protocol in `docs/PROTOCOL.md`.
//! One thread reads the socket and prints every server line, styled, above the line being
//! typed; the other reads the keyboard (a line editor with history and Tab completion on a
//! terminal, plain lines from a pipe) and sends requests. The binary (`main.rs`) only turns the
//! command line into a [`config::Config`] and calls [`run`].
//!
//! # Layout
//! - [`config`]: the validated settings and the color decision (`--color`, `NO_COLOR`).
//! - [`exit`]: every exit status, in one table, and [`exit::Outcome`].
//! - [`render`]: pure rendering of server lines and own messages into any `WriteColor`.
//! - [`screen`]: where rendered lines go (standard output, or the editor's printer).
//! - [`input`]: the keyboard: line editor, completion, plain line reading.
//! - [`roster`]: the names online, for completion.
//! - [`session`]: connection, login, the network thread, and how a session ends.
//! - [`term`]: the terminal settings restored when the network thread ends the process.

use std::io::Write;

pub mod config;
pub mod exit;
pub mod input;
pub mod render;
pub mod roster;
pub mod screen;
pub mod session;
pub mod term;
pub mod tls;

pub use session::run;

/// Ends the process as `outcome` says: its message, if any, as one line on standard error
/// (`chat-client: ...`), then its exit status.
pub fn finish(outcome: exit::Outcome) -> ! {
    let _ = std::io::stdout().flush();
    if let Some(message) = &outcome.message {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "chat-client: {message}");
        let _ = err.flush();
    }
    std::process::exit(outcome.code.code())
}
