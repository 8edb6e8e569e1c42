//! `chat-client`: a terminal client for the chat protocol in `docs/PROTOCOL.md`. On a terminal
//! it is a full-screen chat (message pane with scrollback, status line, input line), where the
//! client lays out every row itself so no peer can forge one; in a pipe, with `TERM=dumb` or
//! `--plain` it prints one message per line. Both are views of one protocol brain
//! ([`core::brain`], The Elm Architecture: one message type, `update` returns effects, views
//! only read), so the login, every server line, reconnecting and what is shown are decided
//! once. The binary (`main.rs`) only turns the command line into a [`config::Config`] and calls
//! [`run`].
//!
//! # Layout
//! - [`config`]: the validated settings: address and default port, mode, colors;
//!   [`config_file`]: `config.toml`, the user's defaults and preferences.
//! - [`exit`]: every exit status, in one table, and [`exit::Outcome`].
//! - [`core`]: the shared brain ([`core::brain`]), the stored messages ([`core::store`]), the
//!   names online ([`core::roster`]) and what Enter sends ([`core::compose`]). No socket, no
//!   terminal, no clock.
//! - [`tui`]: the full-screen view: the terminal loop ([`tui`]), its own state and keys
//!   ([`tui::app`]), drawing ([`tui::ui`]), message -> rows ([`tui::layout`]), the input line
//!   ([`tui::editor`]), Tab ([`tui::complete`]).
//! - [`line`](mod@line): line mode: the loop ([`line`](mod@line)), one line per message ([`line::render`]), standard
//!   output ([`line::screen`]) and standard input ([`line::input`]).
//! - [`net`]: where and how to connect, the one stream type (plain or TLS), line framing, the
//!   network thread; [`net::trust`]: the first connection and TLS's first-use question;
//!   [`net::tokens`]: the session tokens of protocol version 3, per server and name.
//! - [`tls`]: TLS addresses, trust (system roots, `--ca`, `known_servers`), the handshake.

use std::io::Write;

pub mod config;
pub mod config_file;
pub mod core;
pub mod exit;
pub mod line;
pub mod net;
pub mod tls;
pub mod tui;

/// Runs the interface `config` asks for and says how it ended.
pub fn run(config: &config::Config) -> exit::Outcome {
    match config.mode {
        config::Mode::FullScreen => tui::run(config),
        config::Mode::Line => line::run(config),
    }
}

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
