//! The keyboard of line mode (plain standard input, one line at a time, so scripts can pipe
//! requests in) and Tab completion for the full-screen input line: commands, colors and the
//! names in the [`Roster`]. This module only reads: it never touches the socket.

use std::io::{self, BufRead};

use chat_common::protocol::Color;

use crate::roster::Roster;

/// The commands offered by Tab, with a space after those that take arguments.
pub const COMMANDS: [&str; 17] = [
    "/private ",
    "/msg ",
    "/color ",
    "/me ",
    "/nick ",
    "/who",
    "/help",
    "/leave",
    "/quit",
    "/reconnect",
    "/r ",
    "/clear",
    "/search ",
    "/ignore ",
    "/unignore ",
    "/log ",
    "/reply ",
];

/// Longest line read from a plain standard input; the rest of a longer line is dropped. Far
/// above the server's limit, which answers over-long lines with `ERROR line-too-long`.
const MAX_INPUT_LINE: u64 = 64 * 1024;

/// What one read from the keyboard gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line, without its terminator.
    Line(String),
    /// End of input: Ctrl-D, or standard input closed.
    End,
}

/// Completion candidates for `line` (the text before the cursor): where the completed word
/// starts, and the replacements for it. Commands as the first word; colors after `/color`;
/// names after `/private` (or `/msg`) and anywhere else; `/color` after `/private NAME`.
pub fn complete(line: &str, roster: &Roster) -> (usize, Vec<String>) {
    let start = line.rfind(' ').map_or(0, |i| i + 1);
    let word = &line[start..];
    let before: Vec<&str> = line[..start].split(' ').filter(|w| !w.is_empty()).collect();
    let is = |w: &str, command: &str| w.eq_ignore_ascii_case(command);
    let starts = |candidate: &str| {
        candidate.len() >= word.len()
            && candidate.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
    };
    let colors = || -> Vec<String> {
        Color::ALL
            .iter()
            .map(|c| format!("{c} "))
            .filter(|c| starts(c))
            .collect()
    };
    let names = || -> Vec<String> { roster.matching(word).into_iter().map(|n| n + " ").collect() };
    let candidates = match before.as_slice() {
        [] if word.starts_with('/') => COMMANDS
            .iter()
            .filter(|c| starts(c))
            .map(|c| (*c).to_owned())
            .collect(),
        [c] if is(c, "/color") => colors(),
        [p] if is(p, "/private") || is(p, "/msg") => names(),
        [p, _] if (is(p, "/private") || is(p, "/msg")) && word.starts_with('/') => {
            if starts("/color ") {
                vec!["/color ".to_owned()]
            } else {
                Vec::new()
            }
        }
        [p, _, c] if (is(p, "/private") || is(p, "/msg")) && is(c, "/color") => colors(),
        _ if word.starts_with('/') => Vec::new(),
        // A name at the start of the line is someone being addressed: `alice: ` (weechat's
        // nick_completer, irssi's completion_char).
        [] => roster
            .matching(word)
            .into_iter()
            .map(|n| n + ": ")
            .collect(),
        _ => names(),
    };
    (start, candidates)
}

/// Prompts on standard error (only when it is a terminal), then reads one plain line.
pub fn read_line(prompt: &str, prompts: bool) -> io::Result<Input> {
    if prompts {
        use std::io::Write;
        let mut err = io::stderr().lock();
        // A prompt that cannot be shown is no reason to stop reading.
        let _ = err.write_all(prompt.as_bytes());
        let _ = err.flush();
    }
    read_plain_line(&mut io::stdin().lock())
}

/// Reads one line of at most 64 KiB (the rest of a longer one is skipped),
/// without its LF or CRLF. Invalid UTF-8 becomes U+FFFD rather than an error, so one bad line in
/// a script does not end the session.
pub fn read_plain_line<R: BufRead>(input: &mut R) -> io::Result<Input> {
    let mut buf = Vec::new();
    let n = io::Read::take(&mut *input, MAX_INPUT_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(Input::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if n as u64 == MAX_INPUT_LINE {
        // Skip the rest of the over-long line.
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let m = io::Read::take(&mut *input, MAX_INPUT_LINE).read_until(b'\n', &mut sink)?;
            if m == 0 || sink.last() == Some(&b'\n') {
                break;
            }
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Input::Line(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chat_common::protocol::ServerMsg;

    fn roster() -> Roster {
        let mut r = Roster::new();
        r.set_me("bob");
        for name in ["alice", "albert", "bob", "carol"] {
            r.observe(&ServerMsg::Join { name });
        }
        r
    }

    fn c(line: &str) -> (usize, Vec<String>) {
        complete(line, &roster())
    }

    #[test]
    fn commands_complete_as_the_first_word() {
        assert_eq!(c("/p"), (0, vec!["/private ".to_owned()]));
        assert_eq!(c("/m"), (0, vec!["/msg ".to_owned(), "/me ".to_owned()]));
        assert_eq!(c("/").1.len(), COMMANDS.len());
        assert_eq!(c("/Le"), (0, vec!["/leave".to_owned()]));
        assert_eq!(c("/L").1, ["/leave", "/log "]);
        assert_eq!(c("/cl").1, ["/clear"]);
        assert_eq!(c("/msg al").1, ["albert ", "alice "]);
        assert_eq!(c("/x").1, Vec::<String>::new());
    }

    #[test]
    fn names_complete_after_private_and_in_text() {
        assert_eq!(
            c("/private al"),
            (9, vec!["albert ".into(), "alice ".into()])
        );
        assert_eq!(c("/private c"), (9, vec!["carol ".into()]));
        assert_eq!(c("hi ca"), (3, vec!["carol ".into()]));
        // At the start of the line a name is someone addressed.
        assert_eq!(c("ca"), (0, vec!["carol: ".into()]));
        assert_eq!(c("A").1, ["albert: ", "alice: "]);
        // Never yourself.
        assert_eq!(c("/private b").1, Vec::<String>::new());
    }

    #[test]
    fn colors_complete_after_color() {
        assert_eq!(c("/color r"), (7, vec!["red ".into()]));
        assert_eq!(c("/COLOR b").1, ["black ", "blue "]);
        assert_eq!(c("/private alice /c"), (15, vec!["/color ".into()]));
        assert_eq!(c("/private alice /color g"), (22, vec!["green ".into()]));
    }

    #[test]
    fn plain_lines_strip_terminators_and_survive_bad_utf8() {
        let mut input: &[u8] = b"hi\r\nbad \xff\nlast";
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("hi".into())
        );
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("bad \u{fffd}".into())
        );
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("last".into())
        );
        assert_eq!(read_plain_line(&mut input).unwrap(), Input::End);
    }

    #[test]
    fn over_long_plain_lines_are_cut_and_the_rest_skipped() {
        let mut data = vec![b'x'; MAX_INPUT_LINE as usize * 3];
        data.extend_from_slice(b"\nnext\n");
        let mut input: &[u8] = &data;
        match read_plain_line(&mut input).unwrap() {
            Input::Line(l) => assert_eq!(l.len(), MAX_INPUT_LINE as usize),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("next".into())
        );
    }
}
