//! `chat-server ctl`: one console command sent over the control socket, its lines printed, and
//! an exit status that says whether it worked: for scripts and health checks.
//!
//! The exchange (docs/PROTOCOL.md, "Remote operator consoles"): connect, send `.quiet` and the
//! command, close the sending side. The server answers `.quiet console N` (what came before
//! that line is skipped), the command's lines, and, once it has seen the end of the input,
//! `.end ok` or `.end failed N`; then it closes. Nothing here runs inside the server.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::console::control::{END, QUIET};

/// Where `ctl` looks for the control socket when neither `--control` nor `$CHAT_CONTROL` says
/// (the path docs/DEPLOY.md's unit uses).
pub const DEFAULT_CONTROL_PATH: &str = "/run/chat/console.sock";
/// The environment variable `ctl` reads the control socket's path from.
pub const CONTROL_VAR: &str = "CHAT_CONTROL";
/// Default `ctl --timeout`, in seconds.
pub const DEFAULT_TIMEOUT_SECS: f64 = 10.0;

/// `ctl`'s exit statuses, in one place.
pub mod exit {
    /// The command worked (`.end ok`).
    pub const OK: u8 = 0;
    /// The server ran the command and it failed (`.end failed N`): an `error:` line says why.
    pub const FAILED: u8 = 1;
    /// Bad arguments (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// No server answers at the socket (missing, refused, or no permission).
    pub const UNREACHABLE: u8 = 3;
    /// The server did not finish its answer: it closed first (it shut down) or the timeout
    /// passed.
    pub const NO_ANSWER: u8 = 4;
}

/// Runs `command` (its words joined by spaces) on the console at `path`; prints its lines to
/// `out` and problems to `err`; returns the exit status.
pub fn run(
    path: &Path,
    command: &[String],
    timeout: Duration,
    out: &mut impl Write,
    err: &mut impl Write,
) -> u8 {
    let line = command.join(" ");
    if line.trim().is_empty() || line.contains(['\n', '\r']) {
        let _ = writeln!(
            err,
            "chat-server ctl: give one console command on one line, such as `who`"
        );
        return exit::USAGE;
    }
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                err,
                "chat-server ctl: cannot reach the console at {}: {e} (is the server running with \
                 --control {}, and may you use it?)",
                path.display(),
                path.display()
            );
            return exit::UNREACHABLE;
        }
    };
    match exchange(stream, &line, timeout, out) {
        Ok(Answer::Ok) => exit::OK,
        Ok(Answer::Failed) => exit::FAILED,
        Ok(Answer::Unfinished) => {
            let _ = writeln!(
                err,
                "chat-server ctl: the server closed the console before it finished answering"
            );
            exit::NO_ANSWER
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            let _ = writeln!(
                err,
                "chat-server ctl: no complete answer within {} s",
                timeout.as_secs_f64()
            );
            exit::NO_ANSWER
        }
        Err(e) => {
            let _ = writeln!(err, "chat-server ctl: {e}");
            exit::NO_ANSWER
        }
    }
}

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Failed,
    Unfinished,
}

fn exchange(
    mut stream: UnixStream,
    line: &str,
    timeout: Duration,
    out: &mut impl Write,
) -> io::Result<Answer> {
    let deadline = Instant::now() + timeout;
    write!(stream, "{QUIET}\n{line}\n")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reader = BufReader::new(stream);
    let mut started = false;
    let mut end = None;
    let mut buf = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        reader.get_ref().set_read_timeout(Some(left))?;
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(end.unwrap_or(Answer::Unfinished));
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if !started {
            // Events from before the server read `.quiet` are not this command's.
            started = text.starts_with(&format!("{QUIET} console "));
            continue;
        }
        if let Some(outcome) = text.strip_prefix(END) {
            end = Some(if outcome.trim() == "ok" {
                Answer::Ok
            } else {
                Answer::Failed
            });
            continue;
        }
        writeln!(out, "{text}")?;
        out.flush()?;
    }
}
