//! Logging the conversation to a file: one plain-text file per server
//! (`127.0.0.1_55555.log`, `tls_chat.example.org_55556.log`) in the log directory
//! (`log_dir`, else `$XDG_STATE_HOME/chat-client/logs`, else
//! `~/.local/state/chat-client/logs`), appended to across runs, one line per message with the
//! date and the time to the second: `2026-12-06 09:56:01 <alice> hi`. Opening and closing
//! are marked (`--- log opened ...`), as irssi does. The text is what line mode prints without
//! colors; every control character is removed here again, so no escape sequence ever reaches
//! the file whatever the caller hands in. Files are created readable by the user alone. Writes
//! go through a line buffer; a failed write is returned so the caller stops logging and says
//! why, once. Time is an argument: nothing here reads the clock.

use std::fs::{File, OpenOptions};
use std::io::{self, LineWriter, Write};
use std::path::{Path, PathBuf};

use chat_common::sanitize::is_forbidden;
use chrono::{DateTime, TimeZone};

/// The directory under `$XDG_STATE_HOME` (or `~/.local/state`) that holds the logs.
pub const DIR: &str = "chat-client/logs";
/// The time written at the start of every logged line.
pub const LINE_TIME: &str = "%Y-%m-%d %H:%M:%S";

/// The default log directory: `$XDG_STATE_HOME/chat-client/logs` (a relative value is
/// ignored, as the XDG specification says), else `$HOME/.local/state/chat-client/logs`.
pub fn default_dir(
    xdg_state_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    let base = xdg_state_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/state"))
        })?;
    Some(base.join(DIR))
}

/// The file name for `server` (`HOST:PORT` or `tls://HOST:PORT`): every run of characters
/// other than `A-Z a-z 0-9 . -` becomes one `_`, so the name never holds a path separator, and a leading
/// dot is replaced so the file is never hidden.
pub fn file_name(server: &str) -> String {
    let mut name = String::with_capacity(server.len() + 5);
    for c in server.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    if name.starts_with('.') || name.is_empty() {
        name.insert(0, '_');
    }
    name.push_str(".log");
    name
}

/// `text` on one line with every control character (escape included) removed.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\t' || c == '\n' { ' ' } else { c })
        .filter(|c| !is_forbidden(*c))
        .collect()
}

/// An open log file.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    out: LineWriter<File>,
}

impl Log {
    /// Opens (creating it and its directory if needed) the log of `server` in `dir`, and
    /// marks the opening at `now`.
    pub fn open<Tz: TimeZone>(dir: &Path, server: &str, now: &DateTime<Tz>) -> io::Result<Log>
    where
        Tz::Offset: std::fmt::Display,
    {
        create_private_dir(dir)?;
        let path = dir.join(file_name(server));
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        let mut log = Log {
            path,
            out: LineWriter::new(file),
        };
        log.mark(now, &format!("log opened ({})", clean(server)))?;
        Ok(log)
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` (what line mode shows, without colors) as said at `time`.
    pub fn write<Tz: TimeZone>(&mut self, time: &DateTime<Tz>, text: &str) -> io::Result<()>
    where
        Tz::Offset: std::fmt::Display,
    {
        writeln!(self.out, "{} {}", time.format(LINE_TIME), clean(text))
    }

    fn mark<Tz: TimeZone>(&mut self, time: &DateTime<Tz>, what: &str) -> io::Result<()>
    where
        Tz::Offset: std::fmt::Display,
    {
        writeln!(self.out, "--- {} {}", what, time.format(LINE_TIME))
    }

    /// Marks the closing at `now` and flushes.
    pub fn close<Tz: TimeZone>(mut self, now: &DateTime<Tz>) -> io::Result<()>
    where
        Tz::Offset: std::fmt::Display,
    {
        self.mark(now, "log closed")?;
        self.out.flush()
    }
}

/// Creates `dir` and its parents, the new ones readable by the user alone.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2026, 12, 6)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
            .and_utc()
    }

    #[test]
    fn one_file_per_server_with_a_safe_name() {
        assert_eq!(file_name("127.0.0.1:55555"), "127.0.0.1_55555.log");
        assert_eq!(
            file_name("tls://chat.example.org:55556"),
            "tls_chat.example.org_55556.log"
        );
        assert_eq!(file_name("[::1]:4000"), "_1_4000.log");
        assert_eq!(file_name("../../etc/passwd"), "_.._.._etc_passwd.log");
        assert!(!file_name("a/b\\c").contains(['/', '\\']));
        assert_eq!(file_name(""), "_.log");
    }

    #[test]
    fn the_default_directory_follows_xdg() {
        use std::ffi::OsStr;
        assert_eq!(
            default_dir(Some(OsStr::new("/s")), Some(OsStr::new("/h"))),
            Some(PathBuf::from("/s/chat-client/logs"))
        );
        assert_eq!(
            default_dir(Some(OsStr::new("rel")), Some(OsStr::new("/h"))),
            Some(PathBuf::from("/h/.local/state/chat-client/logs"))
        );
        assert_eq!(default_dir(None, None), None);
    }

    #[test]
    fn lines_have_times_and_no_escape_sequences() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("a/b");
        let mut log = Log::open(&logs, "127.0.0.1:55555", &at(9, 56, 0)).unwrap();
        log.write(&at(9, 56, 1), "<alice> hi").unwrap();
        log.write(&at(9, 56, 2), "<mallory> \x1b[2Jgone\x07\r\nfake\u{202e}")
            .unwrap();
        let path = log.path().to_owned();
        log.close(&at(9, 57, 0)).unwrap();
        // Appending: a second run adds to the same file.
        let mut again = Log::open(&logs, "127.0.0.1:55555", &at(10, 0, 0)).unwrap();
        again.write(&at(10, 0, 1), "<bob> back").unwrap();
        drop(again);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "--- log opened (127.0.0.1:55555) 2026-12-06 09:56:00\n\
             2026-12-06 09:56:01 <alice> hi\n\
             2026-12-06 09:56:02 <mallory> [2Jgone fake\n\
             --- log closed 2026-12-06 09:57:00\n\
             --- log opened (127.0.0.1:55555) 2026-12-06 10:00:00\n\
             2026-12-06 10:00:01 <bob> back\n"
        );
        assert!(!text.contains('\x1b'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn an_unwritable_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        assert!(Log::open(&file.join("logs"), "h:1", &at(0, 0, 0)).is_err());
    }
}
