//! The keyboard: where the user's lines come from. With a terminal on both standard input and
//! output it is a `rustyline` editor (line editing, history, Tab completion of commands, colors
//! and the names in the [`Roster`], and an `ExternalPrinter` so the network thread prints above
//! the line being typed); otherwise standard input is read plainly, one line at a time, so
//! scripts can pipe requests in. This module only reads: it never touches the socket.

use std::io::{self, BufRead};
use std::sync::{Arc, Mutex, PoisonError};

use chat_common::protocol::Color;
use rustyline::completion::Completer;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};

use crate::roster::Roster;

/// The commands offered by Tab, with a space after those that take arguments.
pub const COMMANDS: [&str; 5] = ["/private ", "/color ", "/who", "/help", "/leave"];

/// Lines of history kept for Up/Down (in memory only: chat history is nobody's file).
const HISTORY_SIZE: usize = 1000;

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
    /// Ctrl-C.
    Interrupted,
}

/// Completion candidates for `line` (the text before the cursor): where the completed word
/// starts, and the replacements for it. Commands as the first word; colors after `/color`;
/// names after `/private` and anywhere else; `/color` after `/private NAME`.
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
        [p] if is(p, "/private") => names(),
        [p, _] if is(p, "/private") && word.starts_with('/') => {
            if starts("/color ") {
                vec!["/color ".to_owned()]
            } else {
                Vec::new()
            }
        }
        [p, _, c] if is(p, "/private") && is(c, "/color") => colors(),
        _ if word.starts_with('/') => Vec::new(),
        _ => names(),
    };
    (start, candidates)
}

/// The editor's helper: completion from [`complete`]; no hints, highlighting or validation.
#[derive(Debug)]
pub struct ChatHelper {
    roster: Arc<Mutex<Roster>>,
}

impl Completer for ChatHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let roster = self.roster.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(complete(line.get(..pos).unwrap_or(line), &roster))
    }
}

impl Hinter for ChatHelper {
    type Hint = String;
}
impl Highlighter for ChatHelper {}
impl Validator for ChatHelper {}
impl Helper for ChatHelper {}

/// Where lines come from.
pub enum Keyboard {
    /// A line editor on a terminal.
    Editor(Box<Editor<ChatHelper, DefaultHistory>>),
    /// Plain standard input; prompts go to standard error, and only when it is a terminal.
    Plain {
        /// Standard input is a terminal (standard output is not): show prompts.
        prompts: bool,
    },
}

impl std::fmt::Debug for Keyboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keyboard::Editor(_) => f.write_str("Keyboard::Editor"),
            Keyboard::Plain { prompts } => write!(f, "Keyboard::Plain {{ prompts: {prompts} }}"),
        }
    }
}

impl Keyboard {
    /// A line editor completing from `roster`.
    pub fn editor(roster: Arc<Mutex<Roster>>) -> io::Result<Self> {
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(false)
            .history_ignore_dups(true)
            .and_then(|b| b.max_history_size(HISTORY_SIZE))
            .map_err(io::Error::other)?
            .build();
        let mut editor = Editor::with_config(config).map_err(io::Error::other)?;
        editor.set_helper(Some(ChatHelper { roster }));
        Ok(Keyboard::Editor(Box::new(editor)))
    }

    /// Plain standard input.
    pub fn plain(stdin_is_terminal: bool) -> Self {
        Keyboard::Plain {
            prompts: stdin_is_terminal,
        }
    }

    /// A printer that writes above the line being edited, when there is an editor that has one.
    pub fn printer(&mut self) -> Option<Box<dyn ExternalPrinter + Send>> {
        match self {
            Keyboard::Editor(editor) => editor
                .create_external_printer()
                .ok()
                .map(|p| Box::new(p) as Box<dyn ExternalPrinter + Send>),
            Keyboard::Plain { .. } => None,
        }
    }

    /// Reads one line, showing `prompt` where there is a person to see it.
    pub fn read_line(&mut self, prompt: &str) -> io::Result<Input> {
        match self {
            Keyboard::Editor(editor) => match editor.readline(prompt) {
                Ok(line) => Ok(Input::Line(line)),
                Err(ReadlineError::Eof) => Ok(Input::End),
                Err(ReadlineError::Interrupted) => Ok(Input::Interrupted),
                Err(ReadlineError::Io(e)) => Err(e),
                Err(e) => Err(io::Error::other(e)),
            },
            Keyboard::Plain { prompts } => {
                if *prompts {
                    use std::io::Write;
                    let mut err = io::stderr().lock();
                    // A prompt that cannot be shown is no reason to stop reading.
                    let _ = err.write_all(prompt.as_bytes());
                    let _ = err.flush();
                }
                read_plain_line(&mut io::stdin().lock())
            }
        }
    }

    /// Adds a sent line to the history.
    pub fn remember(&mut self, line: &str) {
        if let Keyboard::Editor(editor) = self {
            // History is a convenience; failing to record a line changes nothing else.
            let _ = editor.add_history_entry(line);
        }
    }
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
        assert_eq!(c("/").1.len(), COMMANDS.len());
        assert_eq!(c("/L"), (0, vec!["/leave".to_owned()]));
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
        assert_eq!(c("ca"), (0, vec!["carol ".into()]));
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
