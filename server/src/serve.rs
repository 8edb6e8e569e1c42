//! Starting a server from a validated [`Config`] and its [`listen::Plan`], as `main.rs` does
//! once the flags are a `Config`: the store first (a directory held by another server,
//! unwritable or corrupt stops the start before anything listens), then the listeners, the
//! reactor, the `listening on` lines on standard output, and the loop until a stop.
//!
//! Owns the order of start-up and the process's exit statuses ([`exit`], which the man page
//! lists through `manual.rs`); every way a start or a run can fail is a [`ServeError`] that
//! names its status. It parses no flag and prints nothing but the `listening on` lines (the
//! caller prints the error).

use std::fmt;
use std::io::{self, Write};

use log::info;

use crate::config::Config;
use crate::listen::{self, PlanError};
use crate::reactor::Reactor;
use crate::store::{self, LockError, StoreConfig, StoreError};
use crate::ConsoleInput;

/// Exit statuses of `chat-server`, in one place (the man page's table is
/// `manual::SERVER_EXIT`, checked against these).
pub mod exit {
    /// Clean shutdown (`quit`, SIGINT, SIGTERM).
    pub const OK: u8 = 0;
    /// The server failed while running.
    pub const RUNTIME: u8 = 1;
    /// Bad flags (clap also uses 2), a TLS certificate or key that does not load, or a data
    /// directory held by another server.
    pub const USAGE: u8 = 2;
    /// The listen address could not be bound.
    pub const BIND: u8 = 3;
    /// The data directory cannot be used: unwritable, or its store corrupt or failing.
    pub const STORE: u8 = 4;
}

/// Why a server did not start, or stopped on a failure.
#[derive(Debug)]
pub enum ServeError {
    /// The listeners asked for make no sense, a certificate does not load, or an address
    /// could not be bound.
    Listen(PlanError),
    /// The store could not be opened (the directory is held, unusable, or its file corrupt).
    Store(StoreError),
    /// The event loop could not be set up (the control socket, the signal handlers).
    Setup(io::Error),
    /// The store's thread could not start.
    StoreThread(io::Error),
    /// The loop failed while running.
    Runtime(io::Error),
}

impl ServeError {
    /// The process's exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::Listen(PlanError::Bind(_)) | ServeError::Setup(_) => exit::BIND,
            // Held by another server: the operator's choice of directory; a lock file that
            // cannot be made (a read-only directory) is an unusable directory.
            ServeError::Listen(_) | ServeError::Store(StoreError::Lock(LockError::Held { .. })) => {
                exit::USAGE
            }
            ServeError::Store(_) | ServeError::StoreThread(_) => exit::STORE,
            ServeError::Runtime(_) => exit::RUNTIME,
        }
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Listen(e) => write!(f, "{e}"),
            ServeError::Store(e) => write!(f, "{e}"),
            ServeError::Setup(e) | ServeError::Runtime(e) => write!(f, "{e}"),
            ServeError::StoreThread(e) => write!(f, "cannot start the store: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// Opens the store, binds `plan`'s listeners, prints where it listens, and serves with the
/// operator's console on standard input until a stop.
pub fn serve(mut config: Config, plan: &listen::Plan) -> Result<(), ServeError> {
    plan.check().map_err(ServeError::Listen)?;
    let opened = store::open(StoreConfig {
        dir: config.data_dir.clone(),
        retain: config.retain,
        keep_privates: config.resume_window.max(store::MIN_KEEP_PRIVATES),
        remember: config.remember,
        history: config.history,
    })
    .map_err(ServeError::Store)?;
    log::debug!("data directory: {}", config.data_dir);
    listen::raise_fd_limit(config.max_clients);
    let (listeners, announce) = plan
        .bind_all(config.send_buffer)
        .map_err(ServeError::Listen)?;
    log::debug!("{config:?}");
    // Everything is bound (the control socket too) before `listening on` is printed, so a
    // script that waits for that line can use every socket at once.
    if let Some(cluster) = config.cluster.as_mut().filter(|c| c.name.is_empty()) {
        let port = [
            listeners.plain.as_ref(),
            listeners.tls.as_ref().and_then(|t| t.listener.as_ref()),
            listeners.irc.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find_map(|l| l.local_addr().ok())
        .map_or(0, |a| a.port());
        cluster.name = crate::flags::default_cluster_name(port);
    }
    let mut reactor =
        Reactor::new(listeners, config, ConsoleInput::Stdin).map_err(ServeError::Setup)?;
    reactor
        .attach_store(opened)
        .map_err(ServeError::StoreThread)?;
    {
        let mut out = io::stdout().lock();
        for line in &announce {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
    info!("{}", announce.join(", "));
    reactor.run().map_err(ServeError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_its_exit_status() {
        let io = || io::Error::other("x");
        for (e, want) in [
            (ServeError::Listen(PlanError::Bind("b".into())), exit::BIND),
            (
                ServeError::Listen(PlanError::Usage("u".into())),
                exit::USAGE,
            ),
            (
                ServeError::Listen(PlanError::Certificate("c".into())),
                exit::USAGE,
            ),
            (
                ServeError::Store(StoreError::Corrupt("c".into())),
                exit::STORE,
            ),
            (ServeError::Store(StoreError::Disk("d".into())), exit::STORE),
            (
                ServeError::Store(StoreError::Lock(LockError::Held {
                    path: "lock".into(),
                    holder: "pid 1".into(),
                })),
                exit::USAGE,
            ),
            (
                ServeError::Store(StoreError::Lock(LockError::Io {
                    path: "lock".into(),
                    error: io(),
                })),
                exit::STORE,
            ),
            (ServeError::Setup(io()), exit::BIND),
            (ServeError::StoreThread(io()), exit::STORE),
            (ServeError::Runtime(io()), exit::RUNTIME),
        ] {
            assert_eq!(e.exit_code(), want, "{e:?}");
        }
        assert_eq!(
            ServeError::StoreThread(io()).to_string(),
            "cannot start the store: x"
        );
    }
}
