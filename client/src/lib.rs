//! `chat-client`: a terminal client for the chat protocol in `docs/PROTOCOL.md`. On a terminal
//! it is a full-screen chat (message pane with scrollback, status line, input line), where the
//! client lays out every row itself so no peer can forge one; in a pipe, with `TERM=dumb` or
//! `--plain` it prints one message per line. Either way two threads share the work: one reads
//! the socket, the other owns the terminal (full screen: fed over one channel by the network
//! thread and by a small thread that only reads keys, since reading blocks). The binary (`main.rs`) only
//! turns the command line into a [`config::Config`] and calls [`run`].
//!
//! # Layout
//! - [`config`]: the validated settings: address and default port, mode, colors.
//! - [`exit`]: every exit status, in one table, and [`exit::Outcome`].
//! - [`net`]: where and how to connect, the one stream type (plain or TLS), line framing, the
//!   network thread.
//! - [`tls`]: TLS addresses, trust (system roots, `--ca`, `known_servers`), the handshake;
//!   [`trust`]: the first connection and TLS's first-use question on the terminal.
//! - Full screen: [`tui`] (the terminal loop), [`app`] (state and rules), [`ui`] (drawing),
//!   [`layout`] (message -> rows), [`store`] (the messages), [`editor`] (the input line),
//!   [`compose`] (what Enter sends, paste included).
//! - Line mode: [`session`] (login and the two threads), [`render`] (one line per message),
//!   [`screen`] (standard output), [`input`] (standard input, and Tab completion).
//! - [`roster`]: the names online, for completion.
//! - Shared by both interfaces: [`config_file`] (`config.toml`), [`clock`] (time formats,
//!   day-change lines), [`name_column`] (names shown whole or in a unique short form),
//!   [`filter`] (ignore list, hidden joins, highlight words), [`crowd`] (a run of joins as one
//!   row), [`split`] (over-long lines split, over-large pastes refused), [`logfile`] (logging
//!   to a file), [`status_line`] (the status line fitted by priority), [`who`] (a `/who`
//!   reply as one entry).

use std::io::Write;

pub mod app;
pub mod clock;
pub mod compose;
pub mod config;
pub mod config_file;
pub mod crowd;
pub mod editor;
pub mod exit;
pub mod filter;
pub mod input;
pub mod layout;
pub mod logfile;
pub mod name_column;
pub mod net;
pub mod paste_speed;
pub mod render;
pub mod roster;
pub mod screen;
pub mod session;
pub mod split;
pub mod status_line;
pub mod store;
pub mod tls;
pub mod trust;
pub mod tui;
pub mod ui;
pub mod who;

/// Runs the interface `config` asks for and says how it ended.
pub fn run(config: &config::Config) -> exit::Outcome {
    match config.mode {
        config::Mode::FullScreen => tui::run(config),
        config::Mode::Line => session::run(config),
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
