//! `chat-server`: a single-threaded chat server: the rules of the room in a core that knows no
//! sockets, inside a hand-written `mio` reactor, with operator consoles.
//!
//! The binary (`main.rs`) turns flags into a [`Config`], binds the listener and calls [`run`];
//! tests can do the same on port 0.
//!
//! # Layout
//! - [`config`]: every limit, named, with its default; the validated [`Config`].
//! - [`chat`]: the core: sessions, names, the waiting room, history, bans, and what every
//!   request and console command does. Events in, effects out; no I/O, no clock.
//! - [`cluster`]: one room over several servers through Redis (`--cluster`): the bridge
//!   threads and the room's events as the Redis stream holds them.
//! - [`reactor`]: the I/O shell: the event loop, connections, queues, timers, signals.
//! - [`console`]: the operator's commands (pure parsing) and the consoles' non-blocking I/O.
//! - [`timers`]: every deadline in one heap.
//! - [`bucket`]: the token bucket behind every rate.
//! - [`memory`]: giving freed heap memory back to the system.

pub mod bucket;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod console;
pub mod memory;
pub mod reactor;
pub mod timers;

pub use config::Config;
pub use console::io::ConsoleInput;

/// Serves on `listener` until the operator quits or a signal asks to stop.
pub fn run(
    listener: std::net::TcpListener,
    config: Config,
    console: ConsoleInput,
) -> std::io::Result<()> {
    reactor::Reactor::new(listener, config, console)?.run()
}
