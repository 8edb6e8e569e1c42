//! The validated settings of one run ([`Config`]): the server address (with the default port
//! filled in), the interface ([`Mode`]), and the color decision. `main.rs` turns the command
//! line and the environment into a `Config`; nothing here reads a terminal or a socket, so the
//! decisions are unit-tested as plain functions.

use std::ffi::OsStr;
use std::net::{IpAddr, SocketAddr};

use chat_common::protocol::validate_name;

/// The server port used when an address names none.
pub const DEFAULT_PORT: u16 = 55555;

/// The server address used when none is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:55555";

/// `--color`: when to write color and style sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorMode {
    /// When standard output is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always, even into a pipe and even with `NO_COLOR` set.
    Always,
    /// Never.
    Never,
}

/// Whether to write color and style sequences: `auto` means standard output is a terminal and
/// `NO_COLOR` is unset or empty (<https://no-color.org>); `always` and `never` override both.
pub fn use_colors(mode: ColorMode, no_color: Option<&OsStr>, stdout_is_terminal: bool) -> bool {
    match mode {
        ColorMode::Always => true,
        ColorMode::Never => false,
        ColorMode::Auto => stdout_is_terminal && no_color.is_none_or(OsStr::is_empty),
    }
}

/// The two interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The full-screen interface: message pane, status line, input line.
    FullScreen,
    /// One line per message on standard output, lines read from standard input.
    Line,
}

/// The full-screen interface needs a terminal on both standard input and output that can move
/// the cursor (`TERM` not `dumb`), and no `--plain`.
pub fn choose_mode(plain: bool, stdin_tty: bool, stdout_tty: bool, term: Option<&OsStr>) -> Mode {
    let dumb = term.is_some_and(|t| t == "dumb");
    if plain || !stdin_tty || !stdout_tty || dumb {
        Mode::Line
    } else {
        Mode::FullScreen
    }
}

/// Fills in [`DEFAULT_PORT`] when `raw` names a host only: `localhost`, `10.0.0.1`, `::1` or
/// `[::1]` get `:55555`; `HOST:PORT` and `[V6]:PORT` stay as they are.
pub fn with_default_port(raw: &str) -> String {
    let raw = raw.trim();
    if raw.parse::<SocketAddr>().is_ok() {
        return raw.to_owned();
    }
    if let Ok(ip) = raw.parse::<IpAddr>() {
        return SocketAddr::new(ip, DEFAULT_PORT).to_string();
    }
    if raw.starts_with('[') && raw.ends_with(']') {
        return format!("{raw}:{DEFAULT_PORT}");
    }
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => raw.to_owned(),
        _ => format!("{raw}:{DEFAULT_PORT}"),
    }
}

/// Checks a `--name` value with the protocol's rule before anything connects, so a typo is a
/// usage error rather than a round trip. Returns the trimmed name.
pub fn parse_name(raw: &str) -> Result<String, String> {
    validate_name(raw)
        .map(str::to_owned)
        .map_err(|e| e.to_string())
}

/// Everything one run needs, decided before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the server listens, `HOST:PORT`.
    pub addr: String,
    /// The name from `--name`, already valid; `None` means ask.
    pub name: Option<String>,
    /// Whether rendering writes color and style sequences.
    pub colors: bool,
    /// Standard input is a terminal: a refused name can be asked for again.
    pub stdin_is_terminal: bool,
    /// Which interface to run.
    pub mode: Mode,
    /// Ring the terminal bell on a mention or a private message (full screen).
    pub bell: bool,
    /// Take the mouse for the wheel (full screen).
    pub mouse: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_needs_a_terminal_and_no_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(use_colors(ColorMode::Auto, None, true));
        assert!(use_colors(ColorMode::Auto, empty, true));
        assert!(!use_colors(ColorMode::Auto, set, true));
        assert!(!use_colors(ColorMode::Auto, None, false));
    }

    #[test]
    fn always_and_never_override_everything() {
        let set = Some(OsStr::new("1"));
        assert!(use_colors(ColorMode::Always, set, false));
        assert!(!use_colors(ColorMode::Never, None, true));
    }

    #[test]
    fn names_are_checked_and_trimmed() {
        assert_eq!(parse_name(" bob ").as_deref(), Ok("bob"));
        assert!(parse_name("b b").is_err());
        assert!(parse_name("").is_err());
        assert!(parse_name(&"x".repeat(33)).is_err());
    }

    #[test]
    fn a_host_alone_gets_the_default_port() {
        assert_eq!(with_default_port("localhost"), "localhost:55555");
        assert_eq!(with_default_port("chat.example"), "chat.example:55555");
        assert_eq!(with_default_port("10.0.0.1"), "10.0.0.1:55555");
        assert_eq!(with_default_port("::1"), "[::1]:55555");
        assert_eq!(with_default_port("[::1]"), "[::1]:55555");
        assert_eq!(with_default_port("localhost:4000"), "localhost:4000");
        assert_eq!(with_default_port("[::1]:4000"), "[::1]:4000");
        assert_eq!(with_default_port("127.0.0.1:1"), "127.0.0.1:1");
    }

    #[test]
    fn full_screen_needs_two_terminals_and_a_capable_term() {
        let xterm = Some(OsStr::new("xterm-256color"));
        let dumb = Some(OsStr::new("dumb"));
        assert_eq!(choose_mode(false, true, true, xterm), Mode::FullScreen);
        assert_eq!(choose_mode(false, true, true, None), Mode::FullScreen);
        assert_eq!(choose_mode(true, true, true, xterm), Mode::Line);
        assert_eq!(choose_mode(false, true, false, xterm), Mode::Line);
        assert_eq!(choose_mode(false, false, true, xterm), Mode::Line);
        assert_eq!(choose_mode(false, true, true, dumb), Mode::Line);
    }
}
