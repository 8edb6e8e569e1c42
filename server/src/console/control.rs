//! Remote operator consoles: a Unix socket (`--control PATH`, mode 0600) where any number of
//! operators connect (`nc -U PATH`, `socat`) and use exactly the console's commands and output.
//!
//! Each connection is a console of its own: it reads command lines and gets every event plus the
//! replies to its own commands. Its output waits in a bounded backlog; a console that stops
//! reading past [`CONTROL_BACKLOG_MAX`] is cut off rather than stalling the server. Nothing here
//! blocks.

use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use chat_common::framing::LineFramer;
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::config::CONSOLE_MAX_LINE;

/// Most output kept for a control console that does not read; past it the console is cut off.
pub const CONTROL_BACKLOG_MAX: usize = 1024 * 1024;

/// The listening control socket; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct ControlListener {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlListener {
    /// Creates the socket at `path` with mode 0600 from the first moment (the umask is set
    /// around `bind`). A stale socket file nobody listens on is replaced; anything else at
    /// `path` is an error.
    pub fn bind(path: &Path) -> io::Result<ControlListener> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let stale = meta.file_type().is_socket()
                && matches!(
                    std::os::unix::net::UnixStream::connect(path),
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
                );
            if !stale {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} exists (another server, or not a socket)",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        // SAFETY: umask only swaps the process's file-creation mask; it takes no pointer and
        // cannot fail. The server is single-threaded, so no other file is created meanwhile.
        #[allow(unsafe_code)]
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above, restoring the mask read a moment ago.
        #[allow(unsafe_code)]
        unsafe {
            libc::umask(old);
        }
        Ok(ControlListener {
            listener: bound?,
            path: path.to_owned(),
        })
    }

    /// The listener, to register and accept on.
    pub fn listener(&mut self) -> &mut UnixListener {
        &mut self.listener
    }
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connected operator.
#[derive(Debug)]
pub struct ControlConn {
    stream: UnixStream,
    /// Command input, one line at most [`CONSOLE_MAX_LINE`].
    pub framer: LineFramer,
    /// Output not yet written. Invariant: at most [`CONTROL_BACKLOG_MAX`] bytes, else the
    /// console is cut off.
    backlog: Vec<u8>,
    /// Whether WRITABLE interest is registered (exactly while the backlog is not empty).
    wants_write: bool,
    /// Whether it was found gone or not reading: it takes nothing more and is closed at the end
    /// of the round.
    pub cut: bool,
    token: Token,
}

/// What a write to a control console came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// All out, or waiting within the backlog bound.
    Fine,
    /// The console is gone or does not read: cut it off.
    CutOff,
}

impl ControlConn {
    /// A newly accepted operator, registered for reading.
    pub fn new(mut stream: UnixStream, registry: &Registry, token: Token) -> io::Result<Self> {
        registry.register(&mut stream, token, Interest::READABLE)?;
        Ok(ControlConn {
            stream,
            framer: LineFramer::new(CONSOLE_MAX_LINE),
            backlog: Vec::new(),
            wants_write: false,
            cut: false,
            token,
        })
    }

    /// Reads what is there into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }

    /// Queues one line and writes what the socket takes now.
    pub fn line(&mut self, registry: &Registry, args: std::fmt::Arguments<'_>) -> Written {
        if self.cut {
            return Written::CutOff;
        }
        let _ = writeln!(self.backlog, "{args}");
        if self.backlog.len() > CONTROL_BACKLOG_MAX {
            self.cut = true;
            self.backlog = Vec::new();
            return Written::CutOff;
        }
        self.flush(registry)
    }

    /// Writes as much of the backlog as the socket takes; asks for WRITABLE while some is left.
    pub fn flush(&mut self, registry: &Registry) -> Written {
        let written = self.write_backlog(registry);
        if written == Written::CutOff {
            self.cut = true;
            self.backlog = Vec::new();
        }
        written
    }

    fn write_backlog(&mut self, registry: &Registry) -> Written {
        if self.cut {
            return Written::CutOff;
        }
        while !self.backlog.is_empty() {
            match self.stream.write(&self.backlog) {
                Ok(0) => return Written::CutOff,
                Ok(n) => {
                    self.backlog.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Written::CutOff,
            }
        }
        let want = !self.backlog.is_empty();
        if want != self.wants_write {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut self.stream, self.token, interest)
                .is_err()
            {
                return Written::CutOff;
            }
            self.wants_write = want;
        }
        if self.backlog.is_empty() && self.backlog.capacity() > 64 * 1024 {
            self.backlog = Vec::new();
        }
        Written::Fine
    }

    /// Unregisters before the connection is dropped.
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}
