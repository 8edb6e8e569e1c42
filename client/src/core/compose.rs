//! What pressing Enter sends: the input text (one line, or several after a paste) becomes a
//! [`Plan`]. A single line is one request, as typed. Several lines are never commands in
//! disguise: each becomes its own message to the first line's target (a room message, a color,
//! a private to one member), and a later line starting with `/` is sent as text. Pure: the
//! caller sends the wire lines and echoes each from what was actually sent.

use chat_common::protocol::{parse_request, Request};
use chat_common::sanitize::{is_blank, sanitize};

/// Pasted blocks longer than this many lines are sent only after a second Enter (like irssi's
/// `paste_verify_line_count`).
pub const CONFIRM_LINES: usize = 5;

/// Commands the client handles itself; never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// `/reconnect`: try to connect now.
    Reconnect,
    /// `/forget`: drop this server's session token for the name (protocol version 3).
    Forget,
    /// `/clear`: empty the message pane (irssi's and weechat's `/clear`).
    Clear,
    /// `/ignore [NAME]`: hide a name's lines; without a name, list the ignored.
    Ignore(Option<String>),
    /// `/unignore NAME`.
    Unignore(String),
    /// `/log [on|off]`: log to a file, or stop; without a word, say where it logs.
    Log(Option<bool>),
    /// `/search [TEXT]`: scroll to the newest message holding TEXT (without: the next older
    /// match of the last search).
    Search(String),
    /// `/r TEXT` (or `/reply`): a private answer to whoever wrote to you last.
    Reply(String),
    /// `/query NAME`: the conversation view with NAME (`query.rs`); `/query` alone goes back
    /// to the room.
    Query(Option<String>),
}

/// The words of the client's own commands, for Tab and `/help`.
pub const LOCAL_COMMANDS: [&str; 11] = [
    "/reconnect",
    "/forget",
    "/clear",
    "/ignore ",
    "/unignore ",
    "/log",
    "/search ",
    "/r ",
    "/reply ",
    "/query",
    "/unquery",
];

/// The client's own command on `line`, if it is one: `Err` for a misuse (the usage).
fn local(line: &str) -> Option<Result<Local, Refusal>> {
    let line = line.trim();
    let (word, rest) = match line.split_once(' ') {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let is = |name: &str| word.eq_ignore_ascii_case(name);
    let usage = |u: &str| Some(Err(Refusal(format!("usage: {u}"))));
    if is("/reconnect") {
        Some(Ok(Local::Reconnect))
    } else if is("/forget") {
        Some(Ok(Local::Forget))
    } else if is("/clear") {
        Some(Ok(Local::Clear))
    } else if is("/ignore") {
        Some(Ok(Local::Ignore(
            (!rest.is_empty()).then(|| rest.to_owned()),
        )))
    } else if is("/unignore") {
        if rest.is_empty() {
            return usage("/unignore NAME");
        }
        Some(Ok(Local::Unignore(rest.to_owned())))
    } else if is("/log") {
        match rest.to_ascii_lowercase().as_str() {
            "" => Some(Ok(Local::Log(None))),
            "on" => Some(Ok(Local::Log(Some(true)))),
            "off" => Some(Ok(Local::Log(Some(false)))),
            _ => usage("/log [on|off]"),
        }
    } else if is("/search") {
        Some(Ok(Local::Search(rest.to_owned())))
    } else if is("/r") || is("/reply") {
        if rest.is_empty() {
            return usage("/r TEXT (a private answer to whoever wrote to you last)");
        }
        Some(Ok(Local::Reply(rest.to_owned())))
    } else if is("/query") {
        if rest.contains(' ') {
            return usage("/query NAME (then plain lines go to NAME; /query alone: the room)");
        }
        Some(Ok(Local::Query(
            (!rest.is_empty()).then(|| rest.to_owned()),
        )))
    } else if is("/unquery") {
        // irssi's name for closing a query.
        Some(Ok(Local::Query(None)))
    } else {
        None
    }
}

/// What one Enter does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to send (blank input).
    Nothing,
    /// Leave the room (`/leave`).
    Leave,
    /// A command for the client itself.
    Local(Local),
    /// Send these wire lines, in order.
    Send(Vec<String>),
}

/// Why the input cannot be sent as it is; it stays in the input line for editing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The lines of `input` that say something, sanitized as the server will see them.
fn lines(input: &str) -> Vec<String> {
    input
        .split('\n')
        .map(|l| sanitize(l).into_owned())
        .filter(|l| !is_blank(l))
        .collect()
}

/// How many lines of `input` would be sent.
pub fn line_count(input: &str) -> usize {
    lines(input).len()
}

/// Plans the sending of `input`.
pub fn plan(input: &str) -> Result<Plan, Refusal> {
    let lines = lines(input);
    let Some((first, rest)) = lines.split_first() else {
        return Ok(Plan::Nothing);
    };
    if let Some(command) = local(first) {
        let command = command?;
        if !rest.is_empty() {
            let word = first.split(' ').next().unwrap_or(first);
            return Err(Refusal(format!(
                "a pasted block cannot start with {word}; edit it"
            )));
        }
        return Ok(Plan::Local(command));
    }
    let request = parse_request(first);
    if rest.is_empty() {
        return Ok(match request {
            Ok(Request::Leave) => Plan::Leave,
            _ => Plan::Send(vec![first.clone()]),
        });
    }
    // Several lines: every line goes where the first one goes.
    let mut out = vec![first.clone()];
    match request {
        Ok(Request::Say { color: None, .. }) => {
            for line in rest {
                // `//` keeps a leading slash as text.
                out.push(if line.starts_with('/') {
                    format!("/{line}")
                } else {
                    line.clone()
                });
            }
        }
        Ok(Request::Say { color: Some(c), .. }) => {
            for line in rest {
                out.push(format!("/color {c} {line}"));
            }
        }
        Ok(Request::Me { .. }) => {
            for line in rest {
                out.push(format!("/me {line}"));
            }
        }
        Ok(Request::Private { to, color, .. }) => {
            for (n, line) in rest.iter().enumerate() {
                match color {
                    Some(c) => out.push(format!("/private {to} /color {c} {line}")),
                    None => {
                        let first_word = line.split(' ').next().unwrap_or("");
                        if first_word.eq_ignore_ascii_case("/color") {
                            return Err(Refusal(format!(
                                "line {} starts with /color, which a private message without \
                                 a color cannot carry as text; edit it",
                                n + 2
                            )));
                        }
                        out.push(format!("/private {to} {line}"));
                    }
                }
            }
        }
        Ok(_) | Err(_) => {
            let word = first.split(' ').next().unwrap_or(first);
            return Err(Refusal(format!(
                "a pasted block of {} lines starts with {word}, which is not a message; \
                 edit it (start it with // to send it as text)",
                lines.len()
            )));
        }
    }
    Ok(Plan::Send(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn send(input: &str) -> Vec<String> {
        match plan(input).unwrap() {
            Plan::Send(lines) => lines,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_line_is_one_request_as_typed() {
        assert_eq!(send("hello"), ["hello"]);
        assert_eq!(send("/who"), ["/who"]);
        assert_eq!(send("/private bob hi"), ["/private bob hi"]);
        assert_eq!(plan("/leave").unwrap(), Plan::Leave);
        assert_eq!(plan("  \n \u{a0}").unwrap(), Plan::Nothing);
        assert_eq!(plan("/reconnect").unwrap(), Plan::Local(Local::Reconnect));
        assert_eq!(plan("/Forget").unwrap(), Plan::Local(Local::Forget));
    }

    #[test]
    fn the_clients_own_commands() {
        let local = |input: &str| match plan(input).unwrap() {
            Plan::Local(l) => l,
            other => panic!("{other:?}"),
        };
        assert_eq!(local("/clear"), Local::Clear);
        assert_eq!(local("/CLEAR "), Local::Clear);
        assert_eq!(local("/ignore"), Local::Ignore(None));
        assert_eq!(local("/ignore spam"), Local::Ignore(Some("spam".into())));
        assert_eq!(local("/unignore spam"), Local::Unignore("spam".into()));
        assert_eq!(local("/log"), Local::Log(None));
        assert_eq!(local("/log ON"), Local::Log(Some(true)));
        assert_eq!(local("/log off"), Local::Log(Some(false)));
        assert_eq!(
            local("/search deploy plan"),
            Local::Search("deploy plan".into())
        );
        assert_eq!(local("/search"), Local::Search(String::new()));
        assert_eq!(
            local("/r sure, see you"),
            Local::Reply("sure, see you".into())
        );
        assert_eq!(local("/reply ok"), Local::Reply("ok".into()));
        assert_eq!(local("/query bob"), Local::Query(Some("bob".into())));
        assert_eq!(local("/QUERY"), Local::Query(None));
        assert_eq!(local("/unquery"), Local::Query(None));
        assert!(plan("/query bob hi").is_err());
        assert!(plan("/unignore").is_err());
        assert!(plan("/log maybe").is_err());
        assert!(plan("/r").is_err());
        assert!(plan("/clear\nmore").is_err());
        // Not ours: for the server.
        assert_eq!(send("/rename x"), ["/rename x"]);
    }

    #[test]
    fn a_pasted_private_stays_private_line_by_line() {
        // Issue 11: the second line went to the whole room.
        assert_eq!(
            send("/private bob my password is hunter2\nand the pin is 1234\n/leave"),
            [
                "/private bob my password is hunter2",
                "/private bob and the pin is 1234",
                "/private bob /leave"
            ]
        );
        assert_eq!(
            send("/private bob /color red a\nb"),
            ["/private bob /color red a", "/private bob /color red b"]
        );
    }

    #[test]
    fn later_pasted_commands_are_text() {
        assert_eq!(
            send("first\n/leave\n/private carol x\n\nlast"),
            ["first", "//leave", "//private carol x", "last"]
        );
        assert_eq!(send("/me waves\n/hides"), ["/me waves", "/me /hides"]);
        assert_eq!(
            send("/color green a\n/who"),
            ["/color green a", "/color green /who"]
        );
    }

    #[test]
    fn pasted_lines_that_cannot_be_text_are_refused() {
        assert!(plan("/who\nhello").is_err());
        assert!(plan("/leave\nhello").is_err());
        assert!(plan("/private bob a\n/color red b").is_err());
        assert!(plan("/bogus\nhello").is_err());
    }

    #[test]
    fn lines_are_counted_without_blanks() {
        assert_eq!(line_count("a\n\n b\n"), 2);
    }
}
