//! The `chat-client` binary: command line -> [`Config`] -> [`chat_client::run`] -> exit status.
//! The exit statuses are listed in `exit.rs`; keys and flags in `docs/CLIENT.md`.

use std::io::IsTerminal;
use std::path::PathBuf;

use chat_client::config::{
    choose_mode, parse_name, parse_server, use_colors, ColorMode, Config, DEFAULT_ADDR,
};
use chat_client::config_file::{self, MAX_MAX_LINE};
use chat_client::core::logfile;
use chat_client::core::split::MIN_MAX_LINE;
use chat_client::exit::{ExitCode, Outcome};
use chat_client::net::Connector;
use chat_client::tls::TlsOptions;
use clap::Parser;

/// Keys of the full-screen interface, shown by both -h and --help.
const AFTER_HELP: &str = "\
Full screen (a terminal on both ends, TERM not dumb, no --plain):
  Enter send          Ctrl-C clear the line; on an empty line leave
  Up/Down history     Ctrl-R search history   Tab complete   Home/End edit
  PgUp/PgDn, Ctrl-Home/Ctrl-End, mouse wheel  scroll   Ctrl-Z suspend
  Ctrl-D on an empty line leave     Esc leave a query for the room
  Commands: /private NAME TEXT (/msg), /r TEXT, /query NAME (plain lines go to NAME only;
  /query alone or /unquery: back to the room), /color COLOR TEXT, /me TEXT, /nick NAME,
  /who, /help, /search TEXT, /clear, /ignore [NAME], /unignore NAME, /log [on|off],
  /reconnect, /forget, /leave (/quit). Settings: ~/.config/chat-client/config.toml (docs/CLIENT.md).
  Markup: **bold** __italic__ ~~strike~~ `code`,
  \\ keeps the next marker literal. A pasted block is sent line by line to the first
  line's target, never as commands. Exit status: see docs/CLIENT.md.
Line mode (--plain, pipes): /search TEXT prints the kept lines holding TEXT with their times;
  /clear clears a terminal; /query NAME sends plain lines to NAME, the prompt shows [NAME].
TLS: chat-client tls://HOST[:PORT] (or --tls). An unknown self-signed server is shown by
  its fingerprint and remembered on yes in known_servers ($CHAT_CONFIG_DIR, else
  $XDG_CONFIG_HOME/chat or ~/.config/chat); a changed certificate is refused.";

/// A terminal client for the chat server: a full-screen chat on a terminal, one line per
/// message otherwise.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, after_help = AFTER_HELP, disable_help_flag = true)]
struct Args {
    /// Print this help (-h and --help print the same).
    #[arg(short, long, action = clap::ArgAction::HelpShort)]
    help: Option<bool>,

    /// The name to join with (1-32 of A-Z a-z 0-9 _ -); asked for when absent.
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,

    /// When to use colors and styles: auto means standard output is a terminal and NO_COLOR
    /// is unset or empty. [default: auto, or the configuration file's `color`]
    #[arg(long, value_enum)]
    color: Option<ColorMode>,

    /// Line mode even on a terminal: one message per line, no full-screen interface.
    #[arg(long)]
    plain: bool,

    /// Do not ring the terminal bell on a mention or a private message.
    #[arg(long)]
    no_bell: bool,

    /// Leave the mouse to the terminal (no wheel scrolling; selection works as usual).
    #[arg(long)]
    no_mouse: bool,

    /// Speak TLS to a server given as HOST[:PORT] (as tls://HOST[:PORT] does).
    #[arg(long)]
    tls: bool,

    /// TLS: also trust the certificate authorities in this PEM file (repeatable); the system's
    /// are always trusted.
    #[arg(long = "ca", value_name = "FILE")]
    ca_files: Vec<PathBuf>,

    /// TLS: accept an unknown self-signed server on first use without asking, and remember it
    /// (a changed certificate is still refused).
    #[arg(long)]
    trust_new: bool,

    /// The configuration file [default: $XDG_CONFIG_HOME/chat-client/config.toml, else
    /// ~/.config/chat-client/config.toml; a missing default file is no error].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// The server's line limit (its --max-line) in bytes: a longer message is split at word
    /// boundaries before sending [default: 4096, or the configuration file's `max_line`].
    #[arg(long, value_name = "BYTES", value_parser = parse_max_line)]
    max_line: Option<usize>,

    /// Log the conversation to a file from the start (one file per server, in the
    /// configuration file's `log_dir`, else $XDG_STATE_HOME/chat-client/logs).
    #[arg(long)]
    log: bool,
    /// Forget the session token kept for this server (for --name, or for every name) before
    /// connecting: the join is a new member's, approved by the operator again.
    #[arg(long)]
    forget: bool,

    /// The server: HOST, HOST:PORT, tls://HOST or tls://HOST:PORT (port 55555 when none is
    /// given) [default: the configuration file's `server`, else 127.0.0.1:55555].
    addr: Option<String>,

    /// Print the man page (man) to standard output, and exit.
    #[arg(long, value_name = "WHAT", value_parser = ["man"])]
    generate: Option<String>,
}

/// The man page's sections beyond the flags.
fn man_sections() -> Vec<chat_common::manual::Section> {
    use chat_common::manual::Section;
    vec![
        Section::new("KEYS", AFTER_HELP, &[]),
        Section::new(
            "EXIT STATUS",
            "",
            &[
                ("0", "left by choice"),
                ("1", "the terminal or standard input failed"),
                ("2", "bad arguments, a bad configuration file, or no name"),
                ("3", "the server could not be reached"),
                ("4", "refused by the server"),
                (
                    "5",
                    "the server ended the session (kick, shutdown, timeout)",
                ),
                ("6", "the connection was lost or the server dropped us"),
                ("7", "the server's certificate is not trusted"),
                (
                    "8",
                    "the server's certificate is not the one remembered for it",
                ),
                (
                    "9",
                    "the server's certificate has expired or is not valid yet",
                ),
                ("10", "the server's certificate does not name the host"),
            ],
        ),
        Section::new(
            "SEE ALSO",
            "chat-server(1); docs/CLIENT.md and docs/PROTOCOL.md in the source.",
            &[],
        ),
    ]
}

/// `--max-line`: a number of bytes within the bounds the configuration file also keeps.
fn parse_max_line(raw: &str) -> Result<usize, String> {
    let value: usize = raw
        .trim()
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of bytes"))?;
    if (MIN_MAX_LINE..=MAX_MAX_LINE).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is out of range ({MIN_MAX_LINE} to {MAX_MAX_LINE} bytes)"
        ))
    }
}

fn main() {
    let args = Args::parse();
    if args.generate.is_some() {
        use clap::CommandFactory;
        let mut out = std::io::stdout().lock();
        if let Err(e) = chat_common::manual::render(Args::command(), &man_sections(), &mut out) {
            chat_client::finish(Outcome::fail(ExitCode::Failure, e.to_string()));
        }
        return;
    }
    let home = std::env::var_os("HOME");
    let (file_path, explicit) = match &args.config {
        Some(path) => (Some(path.clone()), true),
        None => (
            config_file::default_path(
                std::env::var_os("XDG_CONFIG_HOME").as_deref(),
                home.as_deref(),
            ),
            false,
        ),
    };
    let mut prefs = match &file_path {
        Some(path) => match config_file::load(path, explicit) {
            Ok(prefs) => prefs,
            Err(e) => chat_client::finish(Outcome::fail(ExitCode::Usage, e.to_string())),
        },
        None => config_file::FileConfig::default(),
    };
    if let Some(max) = args.max_line {
        prefs.max_line = max;
    }
    prefs.log |= args.log;
    let log_dir = match &prefs.log_dir {
        Some(dir) => Some(config_file::expand_home(
            dir,
            home.as_deref().map(std::path::Path::new),
        )),
        None => logfile::default_dir(
            std::env::var_os("XDG_STATE_HOME").as_deref(),
            home.as_deref(),
        ),
    };
    let addr = args
        .addr
        .clone()
        .or_else(|| prefs.server.clone())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let name = args.name.clone().or_else(|| prefs.name.clone());
    let color = args.color.or(prefs.color).unwrap_or(ColorMode::Auto);
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let no_color = std::env::var_os("NO_COLOR");
    let term = std::env::var_os("TERM");
    // A dumb terminal takes no escape at all: auto colors are off there too.
    let dumb = term.as_deref().is_some_and(|t| t == "dumb");
    let mut tls_only = Vec::new();
    if !args.ca_files.is_empty() {
        tls_only.push("--ca");
    }
    if args.trust_new {
        tls_only.push("--trust-new");
    }
    let target = match parse_server(&addr, args.tls, &tls_only) {
        Ok(target) => target,
        Err(why) => chat_client::finish(Outcome::fail(ExitCode::Usage, why)),
    };
    let tls = TlsOptions {
        ca_files: args.ca_files,
        ..TlsOptions::default()
    };
    let config = Config {
        server: Connector::new(target, tls, args.trust_new),
        name,
        colors: use_colors(color, no_color.as_deref(), stdout_is_terminal && !dumb),
        stdin_is_terminal,
        mode: choose_mode(
            args.plain,
            stdin_is_terminal,
            stdout_is_terminal,
            term.as_deref(),
        ),
        bell: !args.no_bell && prefs.bell,
        mouse: !args.no_mouse && prefs.mouse,
        prefs,
        log_dir,
        tokens: chat_client::net::tokens::default_path(),
        forget: args.forget,
    };
    chat_client::finish(chat_client::run(&config))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_man_page_lists_the_real_exit_statuses_and_every_flag() {
        let sections = man_sections();
        let statuses: Vec<i32> = sections[1]
            .items
            .iter()
            .map(|(code, _)| code.parse().unwrap())
            .collect();
        let real: Vec<i32> = [
            ExitCode::Success,
            ExitCode::Failure,
            ExitCode::Usage,
            ExitCode::Unreachable,
            ExitCode::Refused,
            ExitCode::Removed,
            ExitCode::Lost,
            ExitCode::Untrusted,
            ExitCode::CertificateChanged,
            ExitCode::CertificateExpired,
            ExitCode::WrongHost,
        ]
        .map(ExitCode::code)
        .to_vec();
        assert_eq!(statuses, real);
        let mut page = Vec::new();
        chat_common::manual::render(Args::command(), &sections, &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        for flag in ["name", "color", "plain", "tls", "ca", "trust\\-new"] {
            assert!(page.contains(&format!("\\fB\\-\\-{flag}\\fR")), "--{flag}");
        }
        assert!(page.contains(".SH \"EXIT STATUS\""));
    }
}
