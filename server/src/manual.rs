//! What `chat-server --generate man` adds to the page clap describes: the console's commands,
//! the signals, the exit statuses (the server's and `ctl`'s) and where to read more.

use chat_common::manual::Section;

use crate::console::control::{END, QUIET};
use crate::ctl;

/// The server's statuses (`serve::exit` holds the numbers; main.rs's test checks this
/// list against them).
pub const SERVER_EXIT: [(&str, &str); 5] = [
    (
        "0",
        "a clean stop: `quit` on a console, SIGINT or SIGTERM, or the terminal hung up with no \
         control socket; everyone got BYE",
    ),
    ("1", "the server failed while running"),
    (
        "2",
        "bad flags (the message names the flag and what it accepts), a TLS certificate or \
         key that does not load, or a data directory in use by another server",
    ),
    (
        "3",
        "a listen address or the control socket could not be opened",
    ),
    (
        "4",
        "the data directory cannot be used: it cannot be created or written, or its store \
         file is not a store (left untouched) or fails",
    ),
];

/// The sections, in order.
pub fn sections() -> Vec<Section> {
    let mut console = Section::new(
        "CONSOLE",
        "The operator types these on standard input, on a --control socket (nc -N -U PATH, socat, \
         or one at a time with chat-server ctl). Every console sees every join request and \
         decision; a reply goes to the console that asked. When standard input is at end of file \
         and no control console is connected, joins are refused at once unless --auto-approve.",
        &[],
    );
    for line in crate::console::HELP {
        let (tag, text) = line.split_once("  ").unwrap_or((line, ""));
        console
            .items
            .push((tag.trim().to_owned(), text.trim().to_owned()));
    }
    console.items.push((
        QUIET.to_owned(),
        format!(
            "(control socket) from then on this connection gets only what its own commands \
             cause; when a connection's input ends the server answers `{END} ok` or `{END} \
             failed N` and closes it"
        ),
    ));
    let signals = Section::new(
        "SIGNALS",
        "",
        &[
            (
                "SIGINT, SIGTERM",
                "stop as `quit` does: BYE to everyone, then exit 0",
            ),
            (
                "SIGHUP",
                "read the TLS certificate and key again (systemctl reload); when standard input \
                 is a terminal that hung up, the hang-up instead: without --control the server \
                 stops as on SIGTERM, with it the server goes on and logs where its console is",
            ),
        ],
    );
    let exit = Section::new("EXIT STATUS", "chat-server:", &SERVER_EXIT);
    let ctl_exit = Section {
        title: "EXIT STATUS OF CTL",
        intro: "chat-server ctl:".to_owned(),
        items: vec![
            (ctl::exit::OK.to_string(), "the command worked".to_owned()),
            (
                ctl::exit::FAILED.to_string(),
                "the command failed (an error: line says why); nothing changed".to_owned(),
            ),
            (ctl::exit::USAGE.to_string(), "bad arguments".to_owned()),
            (
                ctl::exit::UNREACHABLE.to_string(),
                "no server answers at the socket (missing, refused, or no permission)".to_owned(),
            ),
            (
                ctl::exit::NO_ANSWER.to_string(),
                "the answer did not finish within --timeout, or the server closed first".to_owned(),
            ),
        ],
    };
    let files = Section::new(
        "FILES",
        "",
        &[(
            ctl::DEFAULT_CONTROL_PATH,
            "where chat-server ctl looks for the control socket unless --control or \
                 $CHAT_CONTROL says otherwise (the path of the systemd unit in DEPLOY.md)",
        )],
    );
    let see_also = Section::new(
        "SEE ALSO",
        "chat-client(1), nc(1), systemd.service(5); docs/PROTOCOL.md (the wire contract and \
         every limit) and docs/DEPLOY.md (running it as a service) in the source.",
        &[],
    );
    vec![console, signals, exit, ctl_exit, files, see_also]
}
