//! The validated settings of one run ([`Config`]): the server address (with the default port
//! filled in) and how to connect to it, plain or TLS ([`Connector`]), the interface ([`Mode`]),
//! and the color decision. `main.rs` turns the command
//! line and the environment into a `Config`; nothing here reads a terminal or a socket, so the
//! decisions are unit-tested as plain functions.

use std::ffi::OsStr;
use std::net::Ipv6Addr;

use chat_common::protocol::validate_name;

use crate::net::Connector;
use crate::tls::{parse_target, Target};

/// The server port used when an address names none, plain or TLS alike.
pub use crate::tls::DEFAULT_PORT;

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

/// The server address from the command line: `tls://HOST[:PORT]`, or `HOST[:PORT]` (TLS when
/// `tls_flag`, `--tls`, is set), the port [`DEFAULT_PORT`] when none is given; an IPv6 address
/// in brackets (`[::1]:4000`), or bare and whole without a port (`::1`). `tls_only` names the
/// TLS flags given (`--ca`, `--trust-new`): with a plain address they are a mistake, refused
/// rather than silently connecting in clear text. The error is one line for people.
pub fn parse_server(raw: &str, tls_flag: bool, tls_only: &[&str]) -> Result<Target, String> {
    let trimmed = raw.trim();
    let (scheme, rest) = match trimmed.find("://") {
        Some(i) => trimmed.split_at(i + 3),
        None => ("", trimmed),
    };
    let target = if rest.parse::<Ipv6Addr>().is_ok() {
        parse_target(&format!("{scheme}[{rest}]"), tls_flag)
    } else {
        parse_target(trimmed, tls_flag)
    }
    .map_err(|e| e.to_string())?;
    match tls_only.first() {
        Some(flag) if !target.tls => Err(format!(
            "{flag} needs a TLS connection: use tls://{} or --tls",
            target.server()
        )),
        _ => Ok(target),
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
    /// Where the server listens, and how to connect to it (plain or TLS, what TLS trusts).
    pub server: Connector,
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
    /// The configuration file's preferences (time formats, highlight words, ignore list,
    /// hidden joins, logging, the server's line limit, interface colors), with `--max-line`
    /// and `--log` applied.
    pub prefs: crate::config_file::FileConfig,
    /// Where log files go: `log_dir` from the file (with `~/` expanded), else the default;
    /// `None` when no directory can be found (then logging cannot start and says so).
    pub log_dir: Option<std::path::PathBuf>,
    /// Where session tokens are kept (protocol version 3); `None`: nowhere (not remembered).
    pub tokens: Option<std::path::PathBuf>,
    /// `--forget`: drop this server's token (for `--name`, or every name) before connecting.
    pub forget: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    fn server(raw: &str, tls: bool) -> (String, bool) {
        let target = parse_server(raw, tls, &[]).unwrap_or_else(|e| panic!("{raw}: {e}"));
        (target.server(), target.tls)
    }

    #[test]
    fn a_host_alone_gets_the_default_port() {
        let plain = |raw: &str| server(raw, false).0;
        assert_eq!(plain("localhost"), "localhost:55555");
        assert_eq!(plain("chat.example"), "chat.example:55555");
        assert_eq!(plain("10.0.0.1"), "10.0.0.1:55555");
        assert_eq!(plain("::1"), "[::1]:55555");
        assert_eq!(plain("[::1]"), "[::1]:55555");
        assert_eq!(plain("localhost:4000"), "localhost:4000");
        assert_eq!(plain("[::1]:4000"), "[::1]:4000");
        assert_eq!(plain("127.0.0.1:1"), "127.0.0.1:1");
    }

    #[test]
    fn tls_by_scheme_or_flag() {
        assert_eq!(
            server("tls://localhost", false),
            ("localhost:55555".into(), true)
        );
        assert_eq!(server("tls://::1", false), ("[::1]:55555".into(), true));
        assert_eq!(server("localhost:7", true), ("localhost:7".into(), true));
        assert_eq!(server("localhost:7", false), ("localhost:7".into(), false));
    }

    #[test]
    fn bad_addresses_and_tls_flags_without_tls_are_refused() {
        assert!(parse_server("x:0", false, &[])
            .unwrap_err()
            .contains("\"x:0\""));
        assert!(parse_server("http://x", false, &[]).is_err());
        let err = parse_server("localhost", false, &["--ca"]).unwrap_err();
        assert_eq!(
            err,
            "--ca needs a TLS connection: use tls://localhost:55555 or --tls"
        );
        assert!(parse_server("localhost", true, &["--ca", "--trust-new"]).is_ok());
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
