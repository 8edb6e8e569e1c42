//! The operator console's input: the server's standard input, read without ever blocking.
//!
//! Standard input is reopened through `/proc/self/fd/0` with `O_NONBLOCK`, so the server gets a
//! file description of its own: setting non-blocking mode on the inherited one would also
//! change it for the shell (and for stdout/stderr when all three share a terminal).
//! Terminals, pipes and FIFOs are registered with the poll. Regular files and `/dev/null`
//! cannot be registered (epoll refuses them with `EPERM`), but reading them never blocks, so
//! they are read a slice per round until end of file. Nothing here interprets commands.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use log::{debug, warn};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Where the operator console reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleInput {
    /// The process's standard input.
    Stdin,
    /// No console: as if standard input were at end of file from the start.
    None,
}

/// Standard input, non-blocking, registered with the poll when it can be.
#[derive(Debug)]
pub struct StdinSource {
    file: File,
    registered: bool,
}

impl StdinSource {
    /// Opens and registers standard input; `None` when there is none to read.
    pub fn open(registry: &Registry, token: Token) -> Option<StdinSource> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/proc/self/fd/0")
        {
            Ok(f) => f,
            Err(e) => {
                warn!("no console: cannot open standard input: {e}");
                return None;
            }
        };
        let fd = file.as_raw_fd();
        let registered = match registry.register(&mut SourceFd(&fd), token, Interest::READABLE) {
            Ok(()) => true,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                debug!("standard input is a file: read without polling");
                false
            }
            Err(e) => {
                warn!("no console: cannot poll standard input: {e}");
                return None;
            }
        };
        Some(StdinSource { file, registered })
    }

    /// Whether the source is read every round instead of on events (regular files).
    pub fn always_ready(&self) -> bool {
        !self.registered
    }

    /// Reads what is there; `WouldBlock` when nothing is.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }

    /// Takes the source out of the poll.
    pub fn deregister(&mut self, registry: &Registry) {
        if self.registered {
            let fd = self.file.as_raw_fd();
            let _ = registry.deregister(&mut SourceFd(&fd));
            self.registered = false;
        }
    }
}
