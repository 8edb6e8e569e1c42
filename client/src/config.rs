//! The validated settings of one run ([`Config`]) and the color decision. `main.rs` turns the
//! command line and the environment into a `Config`; nothing here reads a terminal or a socket,
//! so the decisions are unit-tested as plain functions.

use std::ffi::OsStr;

use chat_common::protocol::validate_name;

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
    /// Standard input and output are both terminals: use the line editor.
    pub interactive: bool,
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
}
