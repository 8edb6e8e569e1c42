//! `chat-server`: a single-threaded chat server built on a hand-written `mio` reactor, with an
//! operator console on standard input.
//!
//! The binary (`main.rs`) turns flags into a [`Config`], binds the listener and calls [`run`];
//! tests can do the same on port 0.
//!
//! # Layout
//! - [`config`]: every limit, named, with its default; the validated [`Config`].
//! - [`reactor`]: the event loop; owns the connections, the room, the timers and the console.
//! - [`conn`]: one connection's state machine, output queue and rate allowance.
//! - [`room`]: members, waiting joins and the names they hold.
//! - [`console`]: the operator's commands (pure parsing).
//! - [`console_io`]: the console's non-blocking standard input and output.
//! - [`timers`]: every deadline in one heap.

pub mod config;
pub mod conn;
pub mod console;
pub mod console_io;
pub mod reactor;
pub mod room;
pub mod timers;

pub use config::Config;
pub use console_io::ConsoleInput;

/// Serves on `listener` until the operator quits or a signal asks to stop.
pub fn run(
    listener: std::net::TcpListener,
    config: Config,
    console: ConsoleInput,
) -> std::io::Result<()> {
    reactor::Reactor::new(listener, config, console)?.run()
}
