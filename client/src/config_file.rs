//! The configuration file, `$XDG_CONFIG_HOME/chat-client/config.toml` (else
//! `~/.config/chat-client/config.toml`, or `--config FILE`): the user's defaults for what the
//! command line would otherwise say (name, server, colors, bell, mouse) and the preferences that
//! have no flag (time and date formats, highlight words, the ignore list, hiding joins and
//! leaves, logging, the server's line limit, interface colors). Every key is optional and
//! documented in docs/CLIENT.md; an unknown key is refused (a typo must not silently do
//! nothing). A bad file is one clear error naming the file, line and column ([`FileError`]),
//! never a crash. Pure apart from [`load`], which reads the one file: nothing here opens a
//! terminal or a socket.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::{parse_name, parse_server, ColorMode};
use crate::core::clock::TimeFormat;
use crate::core::split::MIN_MAX_LINE;

/// The directory under `$XDG_CONFIG_HOME` (or `~/.config`) that holds the file.
pub const DIR_NAME: &str = "chat-client";
/// The file's name in that directory.
pub const FILE_NAME: &str = "config.toml";
/// A configuration file larger than this is refused unread (it is a few hundred bytes in
/// practice; the cap keeps a mistaken path, `/dev/zero` or a log, from eating memory).
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// At most this many highlight words and this many ignored names.
pub const MAX_LIST: usize = 1000;
/// The longest highlight word, in bytes.
pub const MAX_WORD: usize = 200;
/// The largest `max_line` accepted (the client's own framing allows 16 times the default).
pub const MAX_MAX_LINE: usize = 1024 * 1024;

/// A color for a part of the interface: the terminal's sixteen, or `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiColor {
    /// The terminal's own foreground.
    Default,
    /// One of the sixteen terminal colors (0-15, ANSI numbering).
    Indexed(u8),
}

/// The names [`UiColor`] accepts, in ANSI order (`gray` is 7, `darkgray` 8).
const COLOR_NAMES: [&str; 16] = [
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "gray",
    "darkgray",
    "lightred",
    "lightgreen",
    "lightyellow",
    "lightblue",
    "lightmagenta",
    "lightcyan",
    "white",
];

impl UiColor {
    /// Parses a color name (any case; `grey` spelt either way), or `default`.
    pub fn parse(raw: &str) -> Result<UiColor, String> {
        let lower = raw.trim().to_ascii_lowercase().replace("grey", "gray");
        if lower == "default" {
            return Ok(UiColor::Default);
        }
        COLOR_NAMES
            .iter()
            .position(|n| *n == lower)
            .and_then(|i| u8::try_from(i).ok())
            .map(UiColor::Indexed)
            .ok_or_else(|| {
                format!(
                    "unknown color {raw:?}: use default or one of {}",
                    COLOR_NAMES.join(" ")
                )
            })
    }
}

/// The interface colors (`[colors]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colors {
    /// The time column.
    pub time: UiColor,
    /// The prefix of a line that mentions you (a highlight word or your name) or a private.
    pub highlight: UiColor,
    /// Joins, leaves, renames and day-change lines.
    pub events: UiColor,
    /// Errors and `✗ not delivered`.
    pub errors: UiColor,
    /// Each name in a color of its own (stable per name); off: names in the default color.
    pub nicks: bool,
}

impl Default for Colors {
    fn default() -> Self {
        Colors {
            time: UiColor::Indexed(8),
            highlight: UiColor::Default,
            events: UiColor::Indexed(8),
            errors: UiColor::Indexed(1),
            nicks: true,
        }
    }
}

/// What the file says, validated. Command-line flags override it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// `name`: the name to join with when `--name` is absent.
    pub name: Option<String>,
    /// `server`: the address when none is given on the command line (`tls://` allowed).
    pub server: Option<String>,
    /// `color`: `auto`, `always` or `never`, when `--color` is absent.
    pub color: Option<ColorMode>,
    /// `bell`: ring on a mention or a private (default true; `--no-bell` overrides).
    pub bell: bool,
    /// `mouse`: take the mouse for the wheel (default true; `--no-mouse` overrides).
    pub mouse: bool,
    /// `time_format`: the time column (strftime, default `%H:%M`).
    pub time_format: TimeFormat,
    /// `date_format`: day-change lines and old history (strftime, default `%a %d %b %Y`).
    pub date_format: TimeFormat,
    /// `highlight`: words that mark a line as a mention, besides your name (whole words, any
    /// case).
    pub highlight: Vec<String>,
    /// `ignore`: names whose messages, actions, privates, joins and leaves are not shown.
    pub ignore: Vec<String>,
    /// `hide_joins`: do not show joins, leaves and renames.
    pub hide_joins: bool,
    /// `log`: log every server's conversation to a file from the start.
    pub log: bool,
    /// `log_dir`: where log files go (`~/` is the home directory).
    pub log_dir: Option<PathBuf>,
    /// `max_line`: the server's `--max-line`; longer input lines are split before sending.
    pub max_line: usize,
    /// `[colors]`.
    pub colors: Colors,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            name: None,
            server: None,
            color: None,
            bell: true,
            mouse: true,
            time_format: TimeFormat::default_time(),
            date_format: TimeFormat::default_date(),
            highlight: Vec::new(),
            ignore: Vec::new(),
            hide_joins: false,
            log: false,
            log_dir: None,
            max_line: chat_common::framing::DEFAULT_MAX_LINE,
            colors: Colors::default(),
        }
    }
}

/// The file as TOML gives it: spans kept where a value is checked after parsing, so every
/// error can name its line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    color: Option<Spanned<String>>,
    bell: Option<bool>,
    mouse: Option<bool>,
    time_format: Option<Spanned<String>>,
    date_format: Option<Spanned<String>>,
    highlight: Option<Spanned<Vec<Spanned<String>>>>,
    ignore: Option<Spanned<Vec<Spanned<String>>>>,
    hide_joins: Option<bool>,
    log: Option<bool>,
    log_dir: Option<Spanned<String>>,
    max_line: Option<Spanned<i64>>,
    colors: Option<RawColors>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColors {
    time: Option<Spanned<String>>,
    highlight: Option<Spanned<String>>,
    events: Option<Spanned<String>>,
    errors: Option<Spanned<String>>,
    nicks: Option<bool>,
}

/// Why the configuration file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// The file exists (or was named with `--config`) but cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The file is not valid TOML or a value is wrong.
    Bad {
        /// The file.
        path: PathBuf,
        /// 1-based line of the mistake.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong, for people.
        message: String,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Read { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
            FileError::Bad {
                path,
                line,
                column,
                message,
            } => write!(f, "{}:{line}:{column}: {message}", path.display()),
        }
    }
}

impl std::error::Error for FileError {}

/// The 1-based line and column (in characters) of byte `at` in `text`.
pub fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A mistake found at `span` of the text.
struct Mistake {
    span: Range<usize>,
    message: String,
}

fn mistake(span: Range<usize>, message: impl Into<String>) -> Mistake {
    Mistake {
        span,
        message: message.into(),
    }
}

/// Parses the text of a configuration file; `path` only names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<FileConfig, FileError> {
    let located = |m: Mistake| {
        let (line, column) = line_column(text, m.span.start);
        FileError::Bad {
            path: path.to_owned(),
            line,
            column,
            message: m.message,
        }
    };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        located(mistake(span, one_line(e.message())))
    })?;
    validate(raw).map_err(located)
}

/// toml's messages can run over several lines; an error here is one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn validate(raw: Raw) -> Result<FileConfig, Mistake> {
    let mut config = FileConfig::default();
    if let Some(name) = raw.name {
        let span = name.span();
        config.name =
            Some(parse_name(name.get_ref()).map_err(|e| mistake(span, format!("name: {e}")))?);
    }
    if let Some(server) = raw.server {
        let span = server.span();
        parse_server(server.get_ref(), false, &[])
            .map_err(|e| mistake(span, format!("server: {e}")))?;
        config.server = Some(server.into_inner().trim().to_owned());
    }
    if let Some(color) = raw.color {
        let span = color.span();
        config.color = Some(match color.get_ref().trim().to_ascii_lowercase().as_str() {
            "auto" => ColorMode::Auto,
            "always" => ColorMode::Always,
            "never" => ColorMode::Never,
            other => {
                return Err(mistake(
                    span,
                    format!("color: expected auto, always or never, found {other:?}"),
                ))
            }
        });
    }
    config.bell = raw.bell.unwrap_or(config.bell);
    config.mouse = raw.mouse.unwrap_or(config.mouse);
    if let Some(format) = raw.time_format {
        let span = format.span();
        config.time_format = TimeFormat::parse(format.get_ref())
            .map_err(|e| mistake(span, format!("time_format: {e}")))?;
    }
    if let Some(format) = raw.date_format {
        let span = format.span();
        config.date_format = TimeFormat::parse(format.get_ref())
            .map_err(|e| mistake(span, format!("date_format: {e}")))?;
    }
    if let Some(words) = raw.highlight {
        config.highlight = list(words, "highlight", |w| {
            let w = w.trim();
            if w.is_empty() {
                Err("highlight: an empty word would match nothing".to_owned())
            } else if w.len() > MAX_WORD {
                Err(format!("highlight: a word is at most {MAX_WORD} bytes"))
            } else if w.chars().any(char::is_control) {
                Err("highlight: a word cannot hold control characters".to_owned())
            } else {
                Ok(w.to_owned())
            }
        })?;
    }
    if let Some(names) = raw.ignore {
        config.ignore = list(names, "ignore", |n| {
            parse_name(n).map_err(|e| format!("ignore: {e}"))
        })?;
    }
    config.hide_joins = raw.hide_joins.unwrap_or(config.hide_joins);
    config.log = raw.log.unwrap_or(config.log);
    if let Some(dir) = raw.log_dir {
        let span = dir.span();
        if dir.get_ref().trim().is_empty() {
            return Err(mistake(
                span,
                "log_dir: empty; leave the key out for the default",
            ));
        }
        config.log_dir = Some(PathBuf::from(dir.into_inner()));
    }
    if let Some(max) = raw.max_line {
        let span = max.span();
        let value = *max.get_ref();
        config.max_line = usize::try_from(value)
            .ok()
            .filter(|v| (MIN_MAX_LINE..=MAX_MAX_LINE).contains(v))
            .ok_or_else(|| {
                mistake(
                    span,
                    format!(
                        "max_line: {value} is out of range ({MIN_MAX_LINE} to {MAX_MAX_LINE} bytes)"
                    ),
                )
            })?;
    }
    if let Some(colors) = raw.colors {
        let pick = |c: Option<Spanned<String>>, key: &str, default: UiColor| match c {
            None => Ok(default),
            Some(c) => {
                let span = c.span();
                UiColor::parse(c.get_ref()).map_err(|e| mistake(span, format!("colors.{key}: {e}")))
            }
        };
        let d = Colors::default();
        config.colors = Colors {
            time: pick(colors.time, "time", d.time)?,
            highlight: pick(colors.highlight, "highlight", d.highlight)?,
            events: pick(colors.events, "events", d.events)?,
            errors: pick(colors.errors, "errors", d.errors)?,
            nicks: colors.nicks.unwrap_or(d.nicks),
        };
    }
    Ok(config)
}

/// A bounded list of checked strings, each error at its own element.
fn list(
    items: Spanned<Vec<Spanned<String>>>,
    key: &str,
    check: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, Mistake> {
    let span = items.span();
    let items = items.into_inner();
    if items.len() > MAX_LIST {
        return Err(mistake(span, format!("{key}: at most {MAX_LIST} entries")));
    }
    items
        .into_iter()
        .map(|item| {
            let span = item.span();
            check(item.get_ref()).map_err(|e| mistake(span, e))
        })
        .collect()
}

/// Where the file is looked for: `$XDG_CONFIG_HOME/chat-client/config.toml` (a relative
/// `XDG_CONFIG_HOME` is ignored, as the XDG specification says), else
/// `$HOME/.config/chat-client/config.toml`; `None` when neither variable helps.
pub fn default_path(
    xdg_config_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    let base = xdg_config_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".config"))
        })?;
    Some(base.join(DIR_NAME).join(FILE_NAME))
}

/// Reads and parses the file at `path`. A missing file is the defaults unless `explicit`
/// (named with `--config`), when it is an error like any other unreadable file.
pub fn load(path: &Path, explicit: bool) -> Result<FileConfig, FileError> {
    let read_error = |reason: String| FileError::Read {
        path: path.to_owned(),
        reason,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(FileConfig::default())
        }
        Err(e) => return Err(read_error(e.to_string())),
    };
    if !meta.is_file() {
        return Err(read_error("not a regular file".into()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(read_error(format!(
            "larger than {} KiB, the most a configuration file may be",
            MAX_FILE_BYTES / 1024
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| read_error(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or_default();
        let (line, column) = line_column(valid, at);
        FileError::Bad {
            path: path.to_owned(),
            line,
            column,
            message: "not UTF-8".into(),
        }
    })?;
    parse(&text, path)
}

/// `~/x` under `home`; any other path as it is.
pub fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(text: &str) -> FileConfig {
        parse(text, Path::new("c.toml")).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn bad(text: &str) -> String {
        parse(text, Path::new("c.toml")).unwrap_err().to_string()
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(ok(""), FileConfig::default());
        assert_eq!(ok("# nothing\n\n"), FileConfig::default());
    }

    #[test]
    fn every_key_is_read() {
        let c = ok(r#"
name = "alice"
server = "tls://chat.example.org"
color = "never"
bell = false
mouse = false
time_format = "%H:%M:%S"
date_format = "%Y-%m-%d"
highlight = ["deploy", "Alice2"]
ignore = ["spambot"]
hide_joins = true
log = true
log_dir = "~/chatlogs"
max_line = 512

[colors]
time = "darkgray"
highlight = "LightRed"
events = "grey"
errors = "default"
nicks = false
"#);
        assert_eq!(c.name.as_deref(), Some("alice"));
        assert_eq!(c.server.as_deref(), Some("tls://chat.example.org"));
        assert_eq!(c.color, Some(ColorMode::Never));
        assert!(!c.bell && !c.mouse && c.hide_joins && c.log);
        assert_eq!(c.time_format.as_str(), "%H:%M:%S");
        assert_eq!(c.date_format.as_str(), "%Y-%m-%d");
        assert_eq!(c.highlight, ["deploy", "Alice2"]);
        assert_eq!(c.ignore, ["spambot"]);
        assert_eq!(c.log_dir, Some(PathBuf::from("~/chatlogs")));
        assert_eq!(c.max_line, 512);
        assert_eq!(
            c.colors,
            Colors {
                time: UiColor::Indexed(8),
                highlight: UiColor::Indexed(9),
                events: UiColor::Indexed(7),
                errors: UiColor::Default,
                nicks: false,
            }
        );
    }

    #[test]
    fn mistakes_name_the_line_and_column() {
        // Not TOML at all.
        assert!(bad("name = \"alice\"\nbell = yes\n").starts_with("c.toml:2:"));
        // A typo in a key is refused, not ignored.
        let e = bad("\n\nhighlite = [\"x\"]\n");
        assert!(e.starts_with("c.toml:3:1: "), "{e}");
        assert!(e.contains("highlite"), "{e}");
        // The wrong type.
        assert!(bad("bell = \"no\"\n").starts_with("c.toml:1:8: "));
        // Values checked after parsing point at the value.
        let e = bad("name = \"al ice\"\n");
        assert!(e.starts_with("c.toml:1:8: name: "), "{e}");
        let e = bad("server = \"http://x\"\n");
        assert!(e.starts_with("c.toml:1:10: server: "), "{e}");
        let e = bad("color = \"sometimes\"\n");
        assert!(e.starts_with("c.toml:1:9: color: "), "{e}");
        let e = bad("time_format = \"%H:%Q\"\n");
        assert!(e.starts_with("c.toml:1:15: time_format: "), "{e}");
        let e = bad("ignore = [\"ok\",\n  \"not ok\"]\n");
        assert!(e.starts_with("c.toml:2:3: ignore: "), "{e}");
        let e = bad("highlight = [\"\"]\n");
        assert!(e.starts_with("c.toml:1:14: highlight: "), "{e}");
        let e = bad("max_line = 3\n");
        assert!(
            e.starts_with("c.toml:1:12: max_line: 3 is out of range"),
            "{e}"
        );
        let e = bad("max_line = -1\n");
        assert!(e.contains("max_line: -1"), "{e}");
        let e = bad("[colors]\ntime = \"plaid\"\n");
        assert!(
            e.starts_with("c.toml:2:8: colors.time: unknown color"),
            "{e}"
        );
        let e = bad("[colors]\nfont = \"x\"\n");
        assert!(e.starts_with("c.toml:2:1: "), "{e}");
        let e = bad("log_dir = \" \"\n");
        assert!(e.starts_with("c.toml:1:11: log_dir"), "{e}");
    }

    #[test]
    fn errors_are_one_line() {
        for text in [
            "a = \n",
            "[colors\n",
            "name = 1\n",
            "x = \"\\q\"\n",
            "bell = true\nbell = false\n",
        ] {
            let e = bad(text);
            assert!(!e.contains('\n'), "{text:?}: {e:?}");
            assert!(e.starts_with("c.toml:"), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_column("", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é = 1", 3), (1, 3));
        // Inside a character: the character's start.
        assert_eq!(line_column("é", 1), (1, 1));
        assert_eq!(line_column("x", 99), (1, 2));
    }

    #[test]
    fn the_file_is_found_by_xdg_then_home() {
        use std::ffi::OsStr;
        let p = default_path(Some(OsStr::new("/x")), Some(OsStr::new("/h")));
        assert_eq!(p, Some(PathBuf::from("/x/chat-client/config.toml")));
        let p = default_path(Some(OsStr::new("rel")), Some(OsStr::new("/h")));
        assert_eq!(p, Some(PathBuf::from("/h/.config/chat-client/config.toml")));
        assert_eq!(default_path(None, None), None);
    }

    #[test]
    fn a_missing_file_is_the_defaults_unless_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert_eq!(load(&path, false), Ok(FileConfig::default()));
        assert!(matches!(load(&path, true), Err(FileError::Read { .. })));
        std::fs::write(&path, "bell = false\n").unwrap();
        assert!(!load(&path, false).unwrap().bell);
        std::fs::write(&path, b"name = \"a\"\n\xff\n").unwrap();
        let e = load(&path, false).unwrap_err().to_string();
        assert!(e.ends_with(":2:1: not UTF-8"), "{e}");
        // A directory, or something huge, is refused unread.
        assert!(load(dir.path(), false).is_err());
        std::fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(load(&path, false).unwrap_err().to_string().contains("KiB"));
    }

    #[test]
    fn home_is_expanded() {
        let home = Path::new("/home/a");
        assert_eq!(
            expand_home(Path::new("~/logs"), Some(home)),
            PathBuf::from("/home/a/logs")
        );
        assert_eq!(
            expand_home(Path::new("/x"), Some(home)),
            PathBuf::from("/x")
        );
        assert_eq!(expand_home(Path::new("~/l"), None), PathBuf::from("~/l"));
    }
}
