//! `chat-server` command line: flags -> a validated [`Config`] and the listeners asked for,
//! logging, then the library's `serve` (the store, the listeners, the reactor) and its exit
//! status. Everything else lives in the library.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chat_server::config::IrcStyles;
use chat_server::config::{self, ClusterConfig, Config, ConfigError};
use chat_server::listen;
use chat_server::serve::{exit, serve};
use chat_server::store::DataDir;
use chat_server::tls_config::TlsFiles;
use clap::Parser;
use log::LevelFilter;

/// A chat server: one room, private messages, colors and markup; the operator approves joins
/// on this terminal.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true,
    after_help = "Operator commands (type on stdin): approve [name], deny [name], pending, who, kick <name>, say <text>, ban <ip>, unban <ip>, bans, quit, help"
)]
struct Args {
    /// Instead of serving: talk to a running server.
    #[command(subcommand)]
    sub: Option<Sub>,
    /// Address to listen on (port 0 picks a free port), or `off` for no plain listener.
    #[arg(long, value_name = "ADDR|off", default_value = config::DEFAULT_LISTEN, value_parser = parse_listen)]
    listen: Listen,
    /// Address of a second listener that speaks the same protocol inside TLS.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"], value_parser = chat_server::flags::address)]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain for --tls-listen, --http-tls-listen and --irc-tls-listen (read again on SIGHUP).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-listen, --http-tls-listen and --irc-tls-listen (read again on SIGHUP).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve the chat page at / and WebSocket members at /ws on this address (HTTP).
    #[arg(long, value_name = "ADDR", value_parser = chat_server::flags::address)]
    http_listen: Option<SocketAddr>,
    /// The same as --http-listen inside TLS (HTTPS, wss://), with --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"], value_parser = chat_server::flags::address)]
    http_tls_listen: Option<SocketAddr>,
    /// An origin (scheme://host[:port]) whose pages may open a WebSocket; repeat for several
    /// [default: the page's own host, from the request's Host header].
    #[arg(long, value_name = "ORIGIN", value_parser = parse_origin)]
    http_origin: Vec<String>,
    /// Serve /metrics (Prometheus text format), /healthz and /readyz on this address (off by
    /// default; keep it private).
    #[arg(long, value_name = "ADDR", value_parser = chat_server::flags::address)]
    metrics_listen: Option<SocketAddr>,
    /// Address of a listener that speaks IRC (irssi, weechat, HexChat, bots) to the same room.
    #[arg(long, value_name = "ADDR", value_parser = chat_server::flags::address)]
    irc_listen: Option<SocketAddr>,
    /// Address of an IRC listener inside TLS (with --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"], value_parser = chat_server::flags::address)]
    irc_tls_listen: Option<SocketAddr>,
    /// The channel IRC members see the room as (# and 1 to 49 of A-Z a-z 0-9 _ -).
    #[arg(long, value_name = "NAME", default_value = config::DEFAULT_IRC_CHANNEL)]
    irc_channel: String,
    /// Which markup styles IRC members get as formatting codes: all, or basic (strike-through
    /// and code as their markup characters ~~ and `, for irssi 1.4, which shows those two
    /// codes as a stray reverse ^ or Q, and weechat before 4.6, which shows strike-through's as
    /// ^ and drops code's).
    #[arg(long, value_name = "STYLES", default_value = "all", value_parser = clap::builder::PossibleValuesParser::new(["all", "basic"]))]
    irc_styles: String,
    /// Seconds of silence after which an IRC connection is pinged, and as many again after
    /// which it is dropped.
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_IRC_PING_SECS)]
    irc_ping: f64,
    /// Admit every valid name without asking the operator.
    #[arg(long)]
    auto_approve: bool,
    /// Longest accepted line in bytes, without its terminator.
    #[arg(long, value_name = "BYTES", default_value_t = config::DEFAULT_MAX_LINE, value_parser = chat_server::flags::whole::<usize>)]
    max_line: usize,
    /// Lines per second one connection may send before it is paced (0: no pacing).
    #[arg(long, value_name = "LINES", default_value_t = config::DEFAULT_RATE, value_parser = chat_server::flags::whole::<u32>)]
    rate: u32,
    /// Lines one connection may send at once before pacing starts.
    #[arg(long, value_name = "LINES", default_value_t = config::DEFAULT_BURST, value_parser = chat_server::flags::whole::<u32>)]
    burst: u32,
    /// Bytes of output that may wait for one connection before it is dropped.
    #[arg(long, value_name = "BYTES", default_value_t = config::DEFAULT_MAX_QUEUE, value_parser = chat_server::flags::whole::<usize>)]
    max_queue: usize,
    /// Open connections, in any state.
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_CLIENTS, value_parser = chat_server::flags::whole::<usize>)]
    max_clients: usize,
    /// Joins that may wait for the operator at once.
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_PENDING, value_parser = chat_server::flags::whole::<usize>)]
    max_pending: usize,
    /// Connections from one IP address (0: no limit).
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_PER_IP, value_parser = chat_server::flags::whole::<usize>)]
    max_per_ip: usize,
    /// Kernel send buffer per connection, in bytes (0: the kernel's autotuning). Bounds what a
    /// stalled reader holds in the kernel on top of --max-queue.
    #[arg(long, value_name = "BYTES", default_value_t = config::DEFAULT_SEND_BUFFER, value_parser = chat_server::flags::whole::<usize>)]
    send_buffer: usize,
    /// Seconds a new connection has to offer a valid name.
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_LOGIN_TIMEOUT_SECS, value_parser = chat_server::flags::seconds)]
    login_timeout: f64,
    /// Seconds the operator has to decide on a join.
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_APPROVAL_TIMEOUT_SECS, value_parser = chat_server::flags::seconds)]
    approval_timeout: f64,
    /// Seconds a member's queued output may stay unmoved before it is cut off.
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_STALL_TIMEOUT_SECS, value_parser = chat_server::flags::seconds)]
    stall_timeout: f64,
    /// Bytes one connection may send at once before byte pacing starts [default: a quarter
    /// of --max-queue]. Must fit in --max-queue with --burst lines.
    #[arg(long, value_name = "BYTES", value_parser = chat_server::flags::whole::<usize>)]
    burst_bytes: Option<usize>,
    /// Bytes per second one connection may send once its byte burst is spent (pacing is off
    /// with --rate 0).
    #[arg(long, value_name = "BYTES", default_value_t = config::DEFAULT_RATE_BYTES, value_parser = chat_server::flags::whole::<usize>)]
    rate_bytes: usize,
    /// Joins from one address that may wait for the operator at once.
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_MAX_PENDING_PER_IP, value_parser = chat_server::flags::whole::<usize>)]
    max_pending_per_ip: usize,
    /// Seconds an address may not wait again for a name the operator (or the approval
    /// timeout) refused (0: no cool-down).
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_NAME_COOLDOWN_SECS, value_parser = chat_server::flags::seconds)]
    name_cooldown: f64,
    /// Seconds a member's name stays reserved for its address after it leaves or renames away
    /// (0: at once free for anyone).
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_NAME_HOLD_SECS, value_parser = chat_server::flags::seconds)]
    name_hold: f64,
    /// Open a Unix socket (mode 0600) at PATH where operators connect with `nc -U PATH` and use
    /// the console's commands; with it the server can run with stdin at /dev/null.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Permission bits of the --control socket, in octal: 0600 (only the server's user) or
    /// 0660 with --control-group (that group's members too); never anything for others.
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = chat_server::console::control::parse_mode)]
    control_mode: u32,
    /// Group that owns the --control socket (a name or a number); with --control-mode 0660 its
    /// members may use the console.
    #[arg(long, value_name = "GROUP", value_parser = chat_server::console::control::parse_group)]
    control_group: Option<u32>,
    /// Serve one room together with every server using this Redis (6.2 or later):
    /// redis://[:PASSWORD@]HOST[:PORT][/DB]. See docs/CLUSTER.md.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// The room's name in Redis (with --cluster): servers with the same Redis and room name share
    /// one room.
    #[arg(long, value_name = "NAME", default_value = config::DEFAULT_ROOM)]
    cluster_room: String,
    /// This server's name in the cluster (with --cluster), shown on every console: 1 to 64 of
    /// A-Z a-z 0-9 . _ : - [default: the host name and the listening port, e.g. chat1:55555].
    #[arg(long, value_name = "NAME", value_parser = chat_server::flags::cluster_name)]
    cluster_name: Option<String>,
    /// Seconds a server may go without reaching Redis (with --cluster) before the others count
    /// it gone and it cuts its own members off.
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_TIMEOUT_SECS, value_parser = chat_server::flags::seconds)]
    cluster_timeout: f64,
    /// Room messages kept and shown to newcomers (0: no history).
    #[arg(long, value_name = "N", default_value_t = config::DEFAULT_HISTORY, value_parser = chat_server::flags::whole::<usize>)]
    history: usize,
    /// Where the room's log, remembered members and bans are kept (one server per directory),
    /// or `none` to keep them in memory only. Default: $XDG_STATE_HOME/chat-server, else
    /// ~/.local/state/chat-server.
    #[arg(long, value_name = "DIR|none")]
    data_dir: Option<String>,
    /// Days room messages are kept for resumes.
    #[arg(long, value_name = "DAYS", default_value_t = config::DEFAULT_RETAIN_DAYS)]
    retain: f64,
    /// Seconds a version 3 member whose connection dropped stays in the room, able to resume
    /// as if it never left (0: it leaves at once).
    #[arg(long, value_name = "SECS", default_value_t = config::DEFAULT_RESUME_WINDOW_SECS)]
    resume_window: f64,
    /// Days after its last session a member's token still admits it without the operator
    /// (0: only within the resume window).
    #[arg(long, value_name = "DAYS", default_value_t = config::DEFAULT_REMEMBER_DAYS)]
    remember: f64,
    /// Log level: off, error, warn, info, debug, trace [default: info, or warn when standard
    /// error is the console's own terminal, which already shows every decision].
    #[arg(long, value_name = "LEVEL", value_parser = chat_server::logging::parse_level)]
    log_level: Option<LevelFilter>,
    /// Log line format: text (for people) or json (one object per line, for machines).
    #[arg(long, value_name = "text|json", default_value = "text", value_parser = chat_server::logging::parse_format)]
    log_format: chat_server::logging::LogFormat,
    /// Append logs to this file instead of standard error.
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// Print the man page (man) or a shell completion script (bash, zsh, fish, elvish,
    /// powershell) to standard output, and exit.
    #[arg(long, value_name = "WHAT", value_parser = ["man", "bash", "zsh", "fish", "elvish", "powershell"])]
    generate: Option<String>,
}

/// Checks an `--http-origin`: a scheme, `://` and a host, nothing after it.
fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim_end_matches('/');
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?} is not an origin: it must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "{s:?} is not an origin: scheme://host[:port] and nothing more"
        ));
    }
    Ok(s.to_owned())
}

/// What `chat-server SUBCOMMAND` does instead of serving.
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Send one console command to a running server's control socket, print its lines, and
    /// exit 0 when it worked, 1 when it failed, 3 when no server answers, 4 when the answer did
    /// not finish (e.g. `chat-server ctl who`, `chat-server ctl approve uma`).
    Ctl(CtlArgs),
}

/// `chat-server ctl`'s arguments.
#[derive(Debug, clap::Args)]
struct CtlArgs {
    /// The server's control socket [default: $CHAT_CONTROL, else /run/chat/console.sock].
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Seconds to wait for the whole answer.
    #[arg(long, value_name = "SECS", default_value_t = chat_server::ctl::DEFAULT_TIMEOUT_SECS, value_parser = chat_server::flags::seconds)]
    timeout: f64,
    /// The console command and its arguments, e.g. `who` or `kick eve spamming`.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `chat-server ctl`.
fn ctl(args: &CtlArgs) -> ExitCode {
    let timeout = match config::seconds("timeout", args.timeout, false) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("chat-server ctl: {e}");
            return ExitCode::from(chat_server::ctl::exit::USAGE);
        }
    };
    let path = args
        .control
        .clone()
        .or_else(|| std::env::var_os(chat_server::ctl::CONTROL_VAR).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(chat_server::ctl::DEFAULT_CONTROL_PATH));
    let code = chat_server::ctl::run(
        &path,
        &args.command,
        timeout,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    );
    ExitCode::from(code)
}

/// Writes the man page or a completion script generated from the flags' own definition.
fn generate(what: &str) -> io::Result<()> {
    use clap::CommandFactory;
    let mut command = Args::command();
    let mut out = io::stdout().lock();
    let shell = match what {
        "man" => {
            let sections = chat_server::manual::sections();
            return chat_common::manual::render(command, &sections, &mut out);
        }
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        "fish" => clap_complete::Shell::Fish,
        "elvish" => clap_complete::Shell::Elvish,
        _ => clap_complete::Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut command, "chat-server", &mut out);
    Ok(())
}

/// `--listen`: an address, or `off`.
#[derive(Debug, Clone, Copy)]
enum Listen {
    Off,
    At(SocketAddr),
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if s == "off" {
        return Ok(Listen::Off);
    }
    chat_server::flags::address(s)
        .map(Listen::At)
        .map_err(|e| format!("{e}, or `off`"))
}

impl Args {
    /// The flags as a [`Config`], validated once ([`Config::validate`]).
    fn config(&self) -> Result<Config, ConfigError> {
        let cluster = match &self.cluster {
            None => None,
            Some(url) => Some(ClusterConfig {
                url: url.clone(),
                room: self.cluster_room.clone(),
                timeout: config::seconds("cluster-timeout", self.cluster_timeout, false)?,
                history: self.history,
                name: self.cluster_name.clone().unwrap_or_default(),
                keep_forgets: ClusterConfig::keep_forgets(
                    config::days("remember", self.remember, true)?,
                    config::seconds("resume-window", self.resume_window, true)?,
                ),
            }),
        };
        if (self.tls_cert.is_some() || self.tls_key.is_some())
            && self.tls_listen.is_none()
            && self.http_tls_listen.is_none()
            && self.irc_tls_listen.is_none()
        {
            return Err(ConfigError::TlsFilesWithoutListener);
        }
        Config {
            irc_channel: self.irc_channel.clone(),
            irc_styles: if self.irc_styles == "basic" {
                IrcStyles::Basic
            } else {
                IrcStyles::All
            },
            irc_ping: config::seconds("irc-ping", self.irc_ping, false)?,
            auto_approve: self.auto_approve,
            max_line: self.max_line,
            rate: self.rate,
            burst: self.burst,
            max_queue: self.max_queue,
            max_clients: self.max_clients,
            max_pending: self.max_pending,
            max_per_ip: self.max_per_ip,
            login_timeout: config::seconds("login-timeout", self.login_timeout, false)?,
            approval_timeout: config::seconds("approval-timeout", self.approval_timeout, false)?,
            stall_timeout: config::seconds("stall-timeout", self.stall_timeout, false)?,
            burst_bytes: self.burst_bytes.unwrap_or(self.max_queue / 4),
            rate_bytes: self.rate_bytes,
            max_pending_per_ip: self.max_pending_per_ip,
            name_cooldown: config::seconds("name-cooldown", self.name_cooldown, true)?,
            name_hold: config::seconds("name-hold", self.name_hold, true)?,
            history: self.history,
            send_buffer: self.send_buffer,
            control: self.control.clone(),
            control_access: chat_server::console::control::ControlAccess {
                mode: self.control_mode,
                group: self.control_group,
            },
            cluster,
            data_dir: match &self.data_dir {
                Some(dir) => DataDir::parse(dir),
                None => DataDir::default_dir(),
            },
            retain: config::days("retain", self.retain, false)?,
            resume_window: config::seconds("resume-window", self.resume_window, true)?,
            remember: config::days("remember", self.remember, true)?,
        }
        .validate()
    }
}

impl Args {
    /// The listeners the flags ask for ([`listen::Plan::check`] says whether they make sense).
    fn listen_plan(&self) -> listen::Plan {
        listen::Plan {
            plain: match self.listen {
                Listen::At(addr) => Some(addr),
                Listen::Off => None,
            },
            tls: self.tls_listen,
            irc: self.irc_listen,
            irc_tls: self.irc_tls_listen,
            http: self.http_listen,
            http_tls: self.http_tls_listen,
            metrics: self.metrics_listen,
            origins: self.http_origin.clone(),
            tls_files: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        }
    }
}

fn init_logging(args: &Args) -> Result<(), String> {
    chat_server::logging::init(args.log_level, args.log_format, args.log_file.as_deref())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Sub::Ctl(ctl_args)) = &args.sub {
        return ctl(ctl_args);
    }
    if let Some(what) = &args.generate {
        return match generate(what) {
            Ok(()) => ExitCode::from(exit::OK),
            Err(e) => {
                eprintln!("chat-server: {e}");
                ExitCode::from(exit::RUNTIME)
            }
        };
    }
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat-server: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    if let Err(e) = init_logging(&args) {
        eprintln!("chat-server: {e}");
        return ExitCode::from(exit::USAGE);
    }
    match serve(config, &args.listen_plan()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("chat-server: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// docs/PROTOCOL.md lists every flag `--help` shows: the docs and the program cannot drift
    /// apart.
    #[test]
    fn every_flag_is_documented() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
                .unwrap();
        let command = Args::command();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version" | "generate") {
                continue;
            }
            let flag = format!("--{long}");
            // The flag itself, not a longer one it starts (--max-pending in --max-pending-per-ip).
            let named = doc.match_indices(&flag).any(|(at, _)| {
                let next = doc[at + flag.len()..].chars().next();
                !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            assert!(named, "docs/PROTOCOL.md does not mention {flag}");
        }
        Args::command().debug_assert();
    }

    #[test]
    fn the_man_pages_exit_statuses_are_the_real_ones() {
        let listed: Vec<&str> = chat_server::manual::SERVER_EXIT
            .iter()
            .map(|(code, _)| *code)
            .collect();
        let real = [
            exit::OK,
            exit::RUNTIME,
            exit::USAGE,
            exit::BIND,
            exit::STORE,
        ]
        .map(|c| c.to_string());
        assert_eq!(listed, real);
    }

    #[test]
    fn the_man_page_names_every_flag() {
        let mut page = Vec::new();
        chat_common::manual::render(Args::command(), &chat_server::manual::sections(), &mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        for long in [
            "--control",
            "--history",
            "--stall-timeout",
            "--max-pending-per-ip",
        ] {
            assert!(
                page.contains(&long.replace('-', "\\-")),
                "{long} missing from the man page"
            );
        }
        for section in ["CONSOLE", "SIGNALS", "\"EXIT STATUS\"", "\"SEE ALSO\""] {
            assert!(page.contains(&format!(".SH {section}")), "no {section}");
        }
        // The synopsis shows values: `[--listen ADDR|off]`.
        assert!(page.contains("[\\fB\\-\\-listen\\fR \\fIADDR|off\\fR]"));
        assert!(page.contains("\\fBchat\\-server ctl\\fR"));
    }
}
