//! The operator console's input and output, the server's standard input and output, used
//! without ever blocking the reactor.
//!
//! Standard input is reopened through `/proc/self/fd/0` with `O_NONBLOCK`, so the server gets a
//! file description of its own: setting non-blocking mode on the inherited one would also
//! change it for the shell (and for stdout/stderr when all three share a terminal).
//! Terminals, pipes and FIFOs are registered with the poll. Regular files and `/dev/null`
//! cannot be registered (epoll refuses them with `EPERM`), but reading them never blocks, so
//! they are read a slice per round until end of file. Standard output is reopened the same way
//! (`/proc/self/fd/1`, non-blocking, appending); console lines wait in a bounded buffer while the
//! operator's terminal or pipe is not taking them, and lines past the bound are counted and dropped
//! rather than stalling the chat. Nothing here interprets commands.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
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
    /// Whether it was a terminal at start (so its end may be a hang-up).
    terminal: bool,
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
        let terminal = std::io::IsTerminal::is_terminal(&file);
        Some(StdinSource {
            file,
            registered,
            terminal,
        })
    }

    /// Whether standard input is a terminal that hung up (closed window, dropped SSH session):
    /// the kernel then fails every terminal request on it with `EIO`. A terminal whose operator
    /// typed Ctrl-D is not hung up; a pipe or file never is.
    pub fn hung_up(&self) -> bool {
        self.terminal
            && matches!(
                nix::sys::termios::tcgetattr(&self.file),
                Err(nix::errno::Errno::EIO | nix::errno::Errno::ENOTTY | nix::errno::Errno::ENXIO)
            )
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

/// Most console output kept while stdout does not take it; later lines are dropped and counted.
pub const CONSOLE_OUT_MAX: usize = 1024 * 1024;

/// The operator console's output: standard output, non-blocking, with a bounded backlog.
#[derive(Debug)]
pub struct ConsoleOut {
    /// Non-blocking description of stdout; `None` when it could not be reopened (then lines go
    /// to `std::io::stdout()` directly, which may block).
    file: Option<File>,
    /// Lines not yet written. Invariant: at most [`CONSOLE_OUT_MAX`] bytes (plus one notice).
    backlog: Vec<u8>,
    /// Lines dropped since the backlog last drained.
    dropped: usize,
    /// Whether WRITABLE interest is registered (exactly while the backlog is not empty).
    registered: bool,
    token: Token,
}

impl ConsoleOut {
    /// Reopens standard output for non-blocking, appending writes.
    pub fn open(token: Token) -> ConsoleOut {
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/proc/self/fd/1")
            .map_err(|e| debug!("console output stays blocking: {e}"))
            .ok();
        ConsoleOut {
            file,
            backlog: Vec::new(),
            dropped: 0,
            registered: false,
            token,
        }
    }

    /// Queues one line (a newline is added) and writes what stdout takes now.
    pub fn line(&mut self, registry: &Registry, args: std::fmt::Arguments<'_>) {
        let Some(_) = self.file else {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "{args}");
            let _ = out.flush();
            return;
        };
        if self.backlog.len() >= CONSOLE_OUT_MAX {
            self.dropped += 1;
            return;
        }
        let _ = writeln!(self.backlog, "{args}");
        self.flush(registry);
    }

    /// Writes as much of the backlog as stdout takes; asks for WRITABLE while some is left.
    pub fn flush(&mut self, registry: &Registry) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        while !self.backlog.is_empty() {
            match file.write(&self.backlog) {
                Ok(0) => break,
                Ok(n) => {
                    self.backlog.drain(..n);
                    if self.backlog.is_empty() && self.dropped > 0 {
                        let _ = writeln!(self.backlog, "({} console lines dropped)", self.dropped);
                        self.dropped = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // Nobody reads the console any more (closed pipe): stop keeping lines.
                    self.backlog = Vec::new();
                    break;
                }
            }
        }
        let fd = file.as_raw_fd();
        let want = !self.backlog.is_empty();
        if want && !self.registered {
            // A regular file cannot be polled (EPERM), but its writes never block either.
            self.registered = registry
                .register(&mut SourceFd(&fd), self.token, Interest::WRITABLE)
                .is_ok();
        } else if !want && self.registered {
            let _ = registry.deregister(&mut SourceFd(&fd));
            self.registered = false;
        }
        if self.backlog.capacity() > 64 * 1024 && self.backlog.is_empty() {
            self.backlog = Vec::new();
        }
    }
}
