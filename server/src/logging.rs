//! The server's log: one line per record, written whole in one `write`, as text or JSON
//! (`--log-format`), to a file (`--log-file`) or standard error.
//!
//! simplelog is the framework: a [`CombinedLogger`] holding either its [`WriteLogger`] (text:
//! `2026-12-06T09:57:00.275Z [INFO] listening on ...`) or [`JsonLogger`], a small
//! [`SharedLogger`] of ours (one JSON object per line). Both write through [`WholeLines`], which
//! hands its sink complete lines only: simplelog writes a record in several pieces (time, level,
//! message), and a piece written alone could land between two halves of a console line.
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
use simplelog::{CombinedLogger, ConfigBuilder, SharedLogger, WriteLogger};

/// The log levels `--log-level` accepts, quietest first.
pub const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The mark before each text line on the console's own terminal.
pub const MARK: &[u8] = b"log: ";

/// Longest line [`WholeLines`] holds back while waiting for its end; a longer record is cut
/// there and goes on as a line of its own (so a huge message costs bounded memory).
pub const MAX_LOG_LINE: usize = 64 * 1024;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-12-06T09:57:00.275Z [INFO] listening on 127.0.0.1:55555`.
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

/// A writer that hands its sink whole lines only, each in one `write` (marked with [`MARK`]
/// when asked). Bytes after the last newline wait for the rest of their line (at most
/// [`MAX_LOG_LINE`]). A line the sink does not take at once (`WouldBlock`, a full disk) is
/// dropped: logging never waits.
pub struct WholeLines {
    sink: Box<dyn Write + Send>,
    marked: bool,
    /// The line being gathered, its mark included; emptied when written.
    line: Vec<u8>,
}

impl std::fmt::Debug for WholeLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WholeLines")
            .field("marked", &self.marked)
            .field("pending", &self.line.len())
            .finish()
    }
}

impl WholeLines {
    /// Whole lines to `sink`, each starting with [`MARK`] when `marked`.
    pub fn new(sink: Box<dyn Write + Send>, marked: bool) -> WholeLines {
        WholeLines {
            sink,
            marked,
            line: Vec::new(),
        }
    }

    fn emit(&mut self) {
        let _ = self.sink.write(&self.line);
        self.line.clear();
        if self.line.capacity() > 4 * 1024 {
            self.line.shrink_to(4 * 1024);
        }
    }
}

impl Write for WholeLines {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<usize> {
        let taken = bytes.len();
        while !bytes.is_empty() {
            if self.line.is_empty() && self.marked {
                self.line.extend_from_slice(MARK);
            }
            let room = MAX_LOG_LINE.saturating_sub(self.line.len() + 1).max(1);
            match memchr::memchr(b'\n', bytes) {
                Some(end) if end < room => {
                    self.line.extend_from_slice(&bytes[..=end]);
                    bytes = &bytes[end + 1..];
                    self.emit();
                }
                _ if bytes.len() >= room => {
                    self.line.extend_from_slice(&bytes[..room]);
                    self.line.push(b'\n');
                    bytes = &bytes[room..];
                    self.emit();
                }
                _ => {
                    self.line.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Standard error as it is (no `/proc` to reopen it through), a line per `write`.
struct PlainStderr;

impl Write for PlainStderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        io::stderr().lock().write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The JSON format, plugged into simplelog's [`CombinedLogger`]: one object per record, one
/// line per object.
#[derive(Debug)]
pub struct JsonLogger {
    level: LevelFilter,
    out: Mutex<WholeLines>,
}

impl JsonLogger {
    /// Records at `level` or more urgent, as JSON lines into `out`.
    pub fn new(level: LevelFilter, out: WholeLines) -> Box<JsonLogger> {
        Box::new(JsonLogger {
            level,
            out: Mutex::new(out),
        })
    }
}

impl Log for JsonLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let line = json_line(&time, record.level().as_str(), &record.args().to_string());
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write(line.as_bytes());
    }

    fn flush(&self) {}
}

impl SharedLogger for JsonLogger {
    fn level(&self) -> LevelFilter {
        self.level
    }

    fn config(&self) -> Option<&simplelog::Config> {
        None
    }

    fn as_log(self: Box<Self>) -> Box<dyn Log> {
        self
    }
}

/// simplelog's text configuration: UTC time with milliseconds, the level, the message; no
/// thread, module or source location.
pub fn text_config() -> simplelog::Config {
    ConfigBuilder::new()
        .set_time_format_custom(simplelog::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .set_time_level(LevelFilter::Error)
        .set_level_padding(simplelog::LevelPadding::Off)
        .set_thread_level(LevelFilter::Off)
        .set_target_level(LevelFilter::Off)
        .set_location_level(LevelFilter::Off)
        .build()
}

/// The logger for `format` at `level`, writing whole lines to `sink` (marked when `marked`).
pub fn logger(
    level: LevelFilter,
    format: LogFormat,
    sink: Box<dyn Write + Send>,
    marked: bool,
) -> Box<dyn SharedLogger> {
    match format {
        LogFormat::Text => WriteLogger::new(level, text_config(), WholeLines::new(sink, marked)),
        // A JSON line is never marked: a machine reads it, and the mark would break it.
        LogFormat::Json => JsonLogger::new(level, WholeLines::new(sink, false)),
    }
}

/// Installs the logger: lines at `level` or more urgent, in `format`, appended to `file` or
/// written to standard error.
///
/// Without a `level`, records from `info` up are logged, or from `warn` up when standard error is
/// the console's own terminal: the console already tells its operator every decision, and the
/// same words again as `log:` lines would only double what they read.
pub fn init(
    level: Option<LevelFilter>,
    format: LogFormat,
    file: Option<&Path>,
) -> Result<(), String> {
    let (sink, marked): (Box<dyn Write + Send>, bool) = match file {
        Some(path) => (
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?,
            ),
            false,
        ),
        None => match reopen_stderr() {
            Ok(file) => (Box::new(file), stderr_is_console_terminal()),
            Err(_) => (Box::new(PlainStderr), false),
        },
    };
    let level = level.unwrap_or(if marked {
        LevelFilter::Warn
    } else {
        LevelFilter::Info
    });
    CombinedLogger::init(vec![logger(level, format, sink, marked)])
        .map_err(|e| format!("cannot start logging: {e}"))
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

/// One record as one JSON line (with its newline).
pub fn json_line(time: &str, level: &str, msg: &str) -> String {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A sink that records each `write` as one element.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn lines(&self) -> Vec<String> {
            let w = self.0.lock().unwrap();
            w.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        }
    }

    fn record(level: log::Level, msg: std::fmt::Arguments<'_>, f: impl FnOnce(&Record<'_>)) {
        f(&Record::builder().level(level).args(msg).build());
    }

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
    fn pieces_leave_as_whole_lines_marked_when_asked() {
        let sink = Writes::default();
        let mut w = WholeLines::new(Box::new(sink.clone()), true);
        for piece in ["2026 ", "[INFO] ", "one\ntw", "o\n", "thr"] {
            w.write_all(piece.as_bytes()).unwrap();
        }
        assert_eq!(sink.lines(), ["log: 2026 [INFO] one\n", "log: two\n"]);
        w.write_all(b"ee\n").unwrap();
        assert_eq!(sink.lines()[2], "log: three\n");
        let plain = Writes::default();
        let mut w = WholeLines::new(Box::new(plain.clone()), false);
        w.write_all(b"a\nb\n").unwrap();
        assert_eq!(plain.lines(), ["a\n", "b\n"]);
    }

    #[test]
    fn a_line_longer_than_the_bound_is_cut_into_lines_of_it() {
        let sink = Writes::default();
        let mut w = WholeLines::new(Box::new(sink.clone()), true);
        let long = vec![b'x'; MAX_LOG_LINE * 2 + 10];
        w.write_all(&long).unwrap();
        w.write_all(b"\n").unwrap();
        let lines = sink.lines();
        assert_eq!(
            lines.len(),
            3,
            "{:?}",
            lines.iter().map(String::len).collect::<Vec<_>>()
        );
        for line in &lines {
            assert!(line.len() <= MAX_LOG_LINE, "{}", line.len());
            assert!(line.starts_with("log: x") && line.ends_with("x\n"));
        }
        let xs: usize = lines.iter().map(|l| l.matches('x').count()).sum();
        assert_eq!(xs, long.len(), "nothing lost");
    }

    #[test]
    fn simplelog_text_lines_are_whole_timed_and_marked() {
        let sink = Writes::default();
        let logger = logger(
            LevelFilter::Info,
            LogFormat::Text,
            Box::new(sink.clone()),
            true,
        );
        record(
            log::Level::Info,
            format_args!("listening on 127.0.0.1:1"),
            |r| logger.log(r),
        );
        record(log::Level::Debug, format_args!("not shown"), |r| {
            logger.log(r)
        });
        let lines = sink.lines();
        assert_eq!(lines.len(), 1, "one write per record: {lines:?}");
        let line = &lines[0];
        let rest = line.strip_prefix("log: ").unwrap();
        let (time, rest) = rest.split_once(' ').unwrap();
        assert_eq!(rest, "[INFO] listening on 127.0.0.1:1\n");
        // 2026-12-06T09:57:00.275Z
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T' && time.as_bytes()[19] == b'.');
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
    }

    #[test]
    fn json_lines_are_whole_escaped_and_never_marked() {
        let t = "2026-12-06T09:57:00.275Z";
        assert_eq!(
            json_line(t, "INFO", "a \"b\"\\\n\u{1}"),
            "{\"time\":\"2026-12-06T09:57:00.275Z\",\"level\":\"INFO\",\"message\":\"a \\\"b\\\"\\\\\\n\\u0001\"}\n"
        );
        let sink = Writes::default();
        let logger = logger(
            LevelFilter::Warn,
            LogFormat::Json,
            Box::new(sink.clone()),
            true,
        );
        record(log::Level::Warn, format_args!("disk \"full\""), |r| {
            logger.log(r)
        });
        let lines = sink.lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("{\"time\":\""), "{lines:?}");
        assert!(
            lines[0].ends_with("\",\"level\":\"WARN\",\"message\":\"disk \\\"full\\\"\"}\n"),
            "{lines:?}"
        );
    }
}
