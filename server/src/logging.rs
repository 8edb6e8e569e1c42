//! The server's log: one line per record, written whole in one `write`, as text or JSON
//! (`--log-format`), to a file (`--log-file`) or standard error.
//!
//! Standard error is reopened non-blocking: a line the terminal or pipe does not take at once is
//! dropped rather than waited for, so logging never stalls the reactor. When standard error is
//! the very terminal the console writes to (standard output), each text line is marked `log:`
//! so it can never be mistaken for a console line, and since it is written whole it never splits
//! one. Nothing here knows the chat.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};

/// The log levels `--log-level` accepts, quietest first.
pub const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-12-06T09:57:00.275Z INFO listening on 127.0.0.1:55555`.
    Text,
    /// `{"time":"2026-12-06T09:57:00.275Z","level":"INFO","message":"listening on ..."}`.
    Json,
}

/// Parses `--log-level`: one of [`LEVELS`], any case.
pub fn parse_level(text: &str) -> Result<LevelFilter, String> {
    text.parse::<LevelFilter>()
        .map_err(|_| format!("expected one of {}", LEVELS.join(", ")))
}

/// Parses `--log-format`: `text` or `json`.
pub fn parse_format(text: &str) -> Result<LogFormat, String> {
    match text.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

/// Where log lines go.
#[derive(Debug)]
enum Sink {
    File(File),
    /// Standard error, non-blocking; `marked` when it is the console's terminal.
    Stderr {
        file: File,
        marked: bool,
    },
    /// Standard error as it is (no `/proc` to reopen it through).
    Plain,
}

/// The logger; installed once by [`init`].
#[derive(Debug)]
struct Logger {
    level: LevelFilter,
    format: LogFormat,
    sink: Mutex<Sink>,
}

/// Installs the logger: lines at `level` or more urgent, in `format`, appended to `file` or
/// written to standard error.
pub fn init(level: LevelFilter, format: LogFormat, file: Option<&Path>) -> Result<(), String> {
    let sink = match file {
        Some(path) => Sink::File(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?,
        ),
        None => match reopen_stderr() {
            Ok(file) => Sink::Stderr {
                file,
                marked: stderr_is_console_terminal(),
            },
            Err(_) => Sink::Plain,
        },
    };
    let logger = Logger {
        level,
        format,
        sink: Mutex::new(sink),
    };
    // Installed once for the life of the process, so leaking it is what `set_boxed_logger`
    // would do (without needing log's `std` feature).
    log::set_logger(Box::leak(Box::new(logger)))
        .map_err(|e| format!("cannot start logging: {e}"))?;
    log::set_max_level(level);
    Ok(())
}

fn reopen_stderr() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/proc/self/fd/2")
}

/// Whether standard error and standard output are one terminal (the console's).
fn stderr_is_console_terminal() -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::MetadataExt;
    if !io::stderr().is_terminal() || !io::stdout().is_terminal() {
        return false;
    }
    match (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata("/proc/self/fd/2"),
    ) {
        (Ok(out), Ok(err)) => out.rdev() == err.rdev(),
        // Cannot tell: mark them, to be safe.
        _ => true,
    }
}

/// One record as one line (with its newline).
pub fn format_line(format: LogFormat, marked: bool, time: &str, level: &str, msg: &str) -> String {
    match format {
        LogFormat::Text if marked => format!("log: {time} {level} {msg}\n"),
        LogFormat::Text => format!("{time} {level} {msg}\n"),
        LogFormat::Json => {
            let mut line = String::with_capacity(msg.len() + 64);
            line.push_str("{\"time\":\"");
            line.push_str(time);
            line.push_str("\",\"level\":\"");
            line.push_str(level);
            line.push_str("\",\"message\":\"");
            json_escape(msg, &mut line);
            line.push_str("\"}\n");
            line
        }
    }
}

/// Appends `text` to `out` as the inside of a JSON string.
fn json_escape(text: &str, out: &mut String) {
    use std::fmt::Write as _;
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let msg = record.args().to_string();
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let marked = matches!(*sink, Sink::Stderr { marked: true, .. });
        let line = format_line(self.format, marked, &time, record.level().as_str(), &msg);
        // One write per line: a line is never split by another writer's. A full pipe or a
        // paused terminal (WouldBlock) loses the line rather than stalling the server.
        let _ = match &mut *sink {
            Sink::File(file) | Sink::Stderr { file, .. } => file.write(line.as_bytes()),
            Sink::Plain => io::stderr().lock().write(line.as_bytes()),
        };
    }

    fn flush(&self) {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_listed_when_one_is_wrong() {
        assert_eq!(parse_level("INFO"), Ok(LevelFilter::Info));
        assert_eq!(parse_level("off"), Ok(LevelFilter::Off));
        let err = parse_level("loud").unwrap_err();
        for level in LEVELS {
            assert!(err.contains(level), "{err}");
        }
        assert!(parse_format("json").is_ok());
        assert_eq!(parse_format("xml"), Err("expected text or json".into()));
    }

    #[test]
    fn lines_are_whole_marked_or_json() {
        let t = "2026-12-06T09:57:00.275Z";
        assert_eq!(
            format_line(LogFormat::Text, false, t, "INFO", "listening"),
            "2026-12-06T09:57:00.275Z INFO listening\n"
        );
        assert_eq!(
            format_line(LogFormat::Text, true, t, "WARN", "x"),
            "log: 2026-12-06T09:57:00.275Z WARN x\n"
        );
        assert_eq!(
            format_line(LogFormat::Json, false, t, "INFO", "a \"b\"\\\n\u{1}"),
            "{\"time\":\"2026-12-06T09:57:00.275Z\",\"level\":\"INFO\",\"message\":\"a \\\"b\\\"\\\\\\n\\u0001\"}\n"
        );
    }
}
