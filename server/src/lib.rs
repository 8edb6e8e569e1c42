//! `chat-server`: a single-threaded chat server: the rules of the room in a core that knows no
//! sockets, inside a hand-written `mio` reactor, with operator consoles.
//!
//! The binary (`main.rs`) turns flags into a [`Config`] and a [`listen::Plan`] and calls
//! [`serve::serve`], which opens the store, binds the listeners (plain, TLS or both:
//! [`Listeners`]) and runs the reactor; tests can bind their own and call [`run`] on port 0.
//!
//! # Layout
//! - [`config`]: every limit, named, with its default; the one validation
//!   ([`Config::validate`]).
//! - [`chat`]: the core: admission, sessions, names, the waiting room, history, bans, and what
//!   every request and console command does; the messages it sends ([`chat::Outgoing`], encoded
//!   once per [`chat::Dialect`]) and the room's events ([`chat::bus`]). Events in, effects out;
//!   no I/O, no clock; it imports neither the reactor nor the cluster.
//! - [`cluster`]: one room over several servers through Redis (`--cluster`): the bridge
//!   threads and the encoding of the core's events in the Redis stream.
//! - [`store`]: the durable store (`--data-dir`): the room's log, remembered members and bans,
//!   written by a thread of its own; message ids.
//! - [`token`]: member tokens: random secrets, their hashes, constant-time checks.
//! - [`reactor`]: the I/O shell: the event loop, connections, queues, timers, signals.
//! - [`console`]: the operator's commands (pure parsing) and the consoles' non-blocking I/O.
//! - [`ctl`]: `chat-server ctl`, one command over the control socket (runs outside the server).
//! - [`flags`]: the flags' value parsers, whose errors say what each flag accepts.
//! - [`logging`]: the log, whole lines as text or JSON, marked when it shares the console's terminal.
//! - [`manual`]: the man page's sections beyond the flags (console, signals, exit statuses).
//! - [`listen`]: binding the listeners (backlog, send buffer) and the open-file limit.
//! - [`serve`]: the order of start-up (store, listeners, reactor) and the exit statuses.
//! - [`timers`]: every deadline in one heap.
//! - [`tls_config`]: the TLS certificate and key files, loaded into a rustls config.
//! - [`bucket`]: the token bucket behind every rate.
//! - [`memory`]: giving freed heap memory back to the system.
//! - [`metrics`]: the counters, gauges and histograms behind `/metrics` (Prometheus text).
//! - [`web`]: HTTP heads, the embedded chat page and WebSocket frames (pure; the reactor's
//!   `web` and `websocket` modules move their bytes).

pub mod bucket;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod console;
pub mod ctl;
pub mod flags;
pub mod listen;
pub mod logging;
pub mod manual;
pub mod memory;
pub mod metrics;
pub mod reactor;
pub mod serve;
pub mod store;
pub mod timers;
pub mod tls_config;
pub mod token;
pub mod web;

pub use config::Config;
pub use console::io::ConsoleInput;

/// Serves on `listeners` (a plain `TcpListener` converts) until the operator quits or a signal
/// asks to stop.
pub fn run(
    listeners: impl Into<Listeners>,
    config: Config,
    console: ConsoleInput,
) -> std::io::Result<()> {
    reactor::Reactor::new(listeners, config, console)?.run()
}

/// What the server accepts connections on: at least one of the two, bound by the caller.
#[derive(Debug)]
pub struct Listeners {
    /// The plain listener (`None` with `--listen off`).
    pub plain: Option<std::net::TcpListener>,
    /// The TLS listener and its certificate (`--tls-listen`).
    pub tls: Option<TlsListener>,
    /// The web and metrics listeners (`--http-listen`, `--http-tls-listen`,
    /// `--metrics-listen`).
    pub web: WebListeners,
    /// The IRC listener (`--irc-listen`): connections that speak IRC.
    pub irc: Option<std::net::TcpListener>,
    /// The IRC listener inside TLS (`--irc-tls-listen`), served with `tls`'s certificate.
    pub irc_tls: Option<std::net::TcpListener>,
}

/// The HTTP listeners, each optional; the TLS one uses [`Listeners::tls`]'s certificate.
#[derive(Debug, Default)]
pub struct WebListeners {
    /// The page and its WebSocket over plain HTTP.
    pub page: Option<std::net::TcpListener>,
    /// The same over HTTPS (needs the TLS certificate).
    pub page_tls: Option<std::net::TcpListener>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics: Option<std::net::TcpListener>,
    /// Which origins may open a WebSocket (`--http-origin`).
    pub origins: web::http::OriginPolicy,
    /// The certificate for `page_tls` when there is no [`Listeners::tls`] (whose certificate
    /// is used otherwise).
    pub tls: Option<(tls_config::TlsFiles, std::sync::Arc<rustls::ServerConfig>)>,
}

/// A listener whose connections speak TLS, and the certificate TLS connections are served with
/// (the IRC TLS listener's too).
#[derive(Debug)]
pub struct TlsListener {
    /// The bound listener of the line protocol (`None` when only `--irc-tls-listen` is TLS).
    pub listener: Option<std::net::TcpListener>,
    /// Where the certificate and key are read from again on SIGHUP.
    pub files: tls_config::TlsFiles,
    /// The certificate and key as loaded at start (by [`tls_config::TlsFiles::load`]).
    pub config: std::sync::Arc<rustls::ServerConfig>,
}

impl From<std::net::TcpListener> for Listeners {
    fn from(plain: std::net::TcpListener) -> Self {
        Listeners {
            plain: Some(plain),
            tls: None,
            web: WebListeners::default(),
            irc: None,
            irc_tls: None,
        }
    }
}
