//! Remote operator consoles: a Unix socket (`--control PATH`, mode 0600 unless `--control-mode`
//! and `--control-group` say otherwise) where any number of operators connect (`nc -U PATH`,
//! `socat`, `chat-server ctl`) and use exactly the console's commands and output.
//!
//! Each connection is a console of its own: it reads command lines and gets every event plus the
//! replies to its own commands. Its output waits in a bounded backlog; a console that stops
//! reading past [`CONTROL_BACKLOG_MAX`] is cut off rather than stalling the server. Nothing here
//! blocks.
//!
//! Two lines belong to the socket rather than to the console (they start with a dot, which no
//! console line does): [`QUIET`] asks for a *quiet* console, which gets only what its own
//! commands cause (for scripts: `chat-server ctl`), and when a connection's input ends the server
//! answers the commands it got, writes the [`END`] line with the outcome and closes.

use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use chat_common::framing::LineFramer;
use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::config::CONSOLE_MAX_LINE;

/// Most output kept for a control console that does not read; past it the console is cut off.
pub const CONTROL_BACKLOG_MAX: usize = 1024 * 1024;

/// The line that makes a control connection quiet: from then on it gets no events but those
/// its own commands cause. Answered with `.quiet console N` (everything before that line is
/// what came before the request, for a script to skip).
pub const QUIET: &str = ".quiet";
/// The first word of the last line a control connection gets after its input ended:
/// `.end ok` when every command worked, `.end failed N` when N of them did not.
pub const END: &str = ".end";

/// Default `--control-mode`: only the server's own user may connect.
pub const DEFAULT_CONTROL_MODE: u32 = 0o600;
/// Permission bits `--control-mode` may not set: the world never gets the console
/// (`--control-group` is the way to share it).
pub const CONTROL_MODE_FORBIDDEN: u32 = 0o007;

/// Who may connect to the control socket: its permission bits and, if set, its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlAccess {
    /// The socket file's mode (`--control-mode`, never any of [`CONTROL_MODE_FORBIDDEN`]).
    pub mode: u32,
    /// The socket file's group id (`--control-group`), or the server's own group.
    pub group: Option<u32>,
}

impl Default for ControlAccess {
    fn default() -> Self {
        ControlAccess {
            mode: DEFAULT_CONTROL_MODE,
            group: None,
        }
    }
}

/// Parses `--control-mode`: octal permission bits such as `0660` or `660`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777 && !digits.is_empty() && digits.len() <= 4)
        .ok_or_else(|| format!("{text:?} is not an octal mode such as 0600 or 0660"))?;
    if mode & CONTROL_MODE_FORBIDDEN != 0 {
        return Err(format!(
            "{text} would let every user on the machine run the console; use at most 0770 \
             and --control-group to share it"
        ));
    }
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "{text} must give the owner read and write (0600 at least)"
        ));
    }
    Ok(mode)
}

/// The listening control socket; the socket file is removed when it is dropped.
#[derive(Debug)]
pub struct ControlListener {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlListener {
    /// Creates the socket at `path` with mode 0600 from the first moment (the umask is set
    /// around `bind`), then gives it `access`'s group and mode (group first, so the wider mode
    /// never applies to the wrong group). A stale socket file nobody listens on is replaced;
    /// anything else at `path` is an error.
    pub fn bind(path: &Path, access: ControlAccess) -> io::Result<ControlListener> {
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
        let listener = ControlListener {
            listener: bound?,
            path: path.to_owned(),
        };
        // On any failure below, dropping `listener` removes the socket file again.
        if let Some(gid) = access.group {
            std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot give {} to group {gid}: {e}", path.display()),
                )
            })?;
        }
        if access.mode != DEFAULT_CONTROL_MODE {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode))?;
        }
        Ok(listener)
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
    /// Whether it asked for [`QUIET`]: it gets no events but its own commands' lines.
    pub quiet: bool,
    /// Whether its input ended: it runs no more commands and is closed once its backlog (the
    /// [`END`] line last) is written.
    pub input_ended: bool,
    /// Commands it ran that failed, for its [`END`] line.
    pub failed: u32,
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
            quiet: false,
            input_ended: false,
            failed: 0,
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

    /// Whether its input ended and everything it was owed is written: time to close it.
    pub fn finished(&self) -> bool {
        self.input_ended && self.backlog.is_empty()
    }

    /// Unregisters before the connection is dropped.
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}

/// Parses `--control-group`: a group's name or its numeric id.
pub fn parse_group(text: &str) -> Result<u32, String> {
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(text) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!(
            "no group named {:?} (a group name from /etc/group, or a numeric id)",
            chat_common::sanitize::sanitize(text)
        )),
        Err(e) => Err(format!("cannot look up group {text:?}: {e}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn control_modes_are_octal_and_never_for_everyone() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert_eq!(parse_mode("0770"), Ok(0o770));
        for bad in ["0666", "0601", "888", "", "rw", "07777", "-1", "0400"] {
            assert!(parse_mode(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_mode("0666").unwrap_err().contains("--control-group"));
    }

    #[test]
    fn groups_are_names_or_numbers() {
        assert_eq!(parse_group("0"), Ok(0));
        assert_eq!(parse_group("root"), Ok(0));
        assert!(parse_group("no-such-group-here").is_err());
    }
}
