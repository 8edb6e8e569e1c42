//! The `chat-client` binary: command line -> [`Config`] -> [`chat_client::run`] -> exit status.
//! The exit statuses are listed in `exit.rs`.

use std::io::IsTerminal;

use chat_client::config::{parse_name, use_colors, ColorMode, Config, DEFAULT_ADDR};
use clap::Parser;

/// A terminal client for the chat server.
///
/// Type a line to say it to the room. Commands: /private NAME TEXT, /color COLOR TEXT,
/// /who, /help, /leave; markup: **bold**, __italic__, ~~strike~~. Tab completes commands,
/// colors and names; Ctrl-D or Ctrl-C leaves. When standard input is not a terminal, its lines
/// are sent in order after admission, and end of input leaves.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// The name to join with (1-32 of A-Z a-z 0-9 _ -); asked for when absent. A refused
    /// --name ends the client with status 4.
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,

    /// When to use colors and styles: auto means standard output is a terminal and NO_COLOR
    /// is unset or empty.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto)]
    color: ColorMode,

    /// The server's address, HOST:PORT.
    #[arg(default_value = DEFAULT_ADDR)]
    addr: String,
}

fn main() {
    let args = Args::parse();
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let no_color = std::env::var_os("NO_COLOR");
    let config = Config {
        addr: args.addr,
        name: args.name,
        colors: use_colors(args.color, no_color.as_deref(), stdout_is_terminal),
        stdin_is_terminal,
        interactive: stdin_is_terminal && stdout_is_terminal,
    };
    chat_client::finish(chat_client::run(&config))
}
