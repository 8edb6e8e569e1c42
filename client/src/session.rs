//! Line mode (pipes, `TERM=dumb`, `--plain`): one session with a server, one message per line
//! on standard output. Connecting, the login state machine (name, waiting room, admission), then
//! the two threads of the chat. The network thread reads the socket, parses each line with
//! `ServerMsg::parse` and shows it through its [`Screen`]; the calling thread reads standard
//! input, sends each line and echoes the user's own messages. Parsing and rendering live in
//! `chat_common` and `render.rs`; this module owns threads and how the session ends. Line mode
//! does not reconnect: a script sees the end as an exit status.
//!
//! # How it ends
//! The user leaving (`/leave`, Ctrl-D, Ctrl-C, end of input) is handled by the keyboard thread:
//! it sets `leaving`, sends `/leave` and waits at most [`LEAVE_TIMEOUT`] for the network thread
//! to report the `BYE`. Anything the server decides (a kick, a shutdown, a drop, a closed
//! connection) reaches the network thread while the keyboard thread may be blocked reading
//! standard input, which nothing can wake; so the network thread ends the process itself.
//! Whichever thread ends first takes `ending` and never lets go, so exactly one of them reports
//! and exits.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use chat_common::framing::DEFAULT_MAX_LINE;
use chat_common::protocol::{
    parse_request, validate_name, ErrorCode, LeaveReason, Request, ServerMsg,
};
use chat_common::sanitize::{is_blank, sanitize};

use crate::config::Config;
use crate::exit::{ExitCode, Outcome};
use crate::input::{read_line, Input};
use crate::net::{describe, Incoming, LineReader, Stream, Writer};
use crate::render;
use crate::screen::Screen;
use crate::trust;

/// How long to wait for `BYE` after sending `/leave` before exiting anyway.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The prompt of the chat in line mode (shown on standard error when it is a terminal).
const PROMPT: &str = "";

/// The prompt when asking for a name.
const NAME_PROMPT: &str = "name: ";

/// Sends one line.
fn send(writer: &mut Writer, line: &str) -> io::Result<()> {
    writer.send_line(line)
}

fn lost(error: &io::Error) -> Outcome {
    Outcome::fail(
        ExitCode::Lost,
        format!("lost the connection: {}", describe(error)),
    )
}

/// Shows a line, ignoring output failures: a closed standard output must not end a session
/// that the user may still be typing into.
fn show<F>(screen: &mut Screen, render: F)
where
    F: FnOnce(&mut termcolor::Buffer) -> io::Result<()>,
{
    let _ = screen.show(render);
}

/// Shows a framing problem or an unparsable line.
fn show_odd(screen: &mut Screen, incoming: &Incoming) {
    match incoming {
        Incoming::Line(raw) => show(screen, |b| render::unparsed(b, raw)),
        Incoming::TooLong => show(screen, |b| {
            render::unparsed(b, "(an over-long line from the server was skipped)")
        }),
        Incoming::BadUtf8 => show(screen, |b| {
            render::unparsed(b, "(a line that is not UTF-8 was skipped)")
        }),
    }
}

/// Asks the keyboard for a name until it gives a valid one. `retry`: a person is typing, so a
/// bad name is explained and asked again rather than ending the run.
fn ask_name(screen: &mut Screen, retry: bool) -> Result<String, Outcome> {
    loop {
        let line = match read_line(NAME_PROMPT, retry) {
            Ok(Input::Line(line)) => line,
            Ok(Input::End) if retry => return Err(Outcome::success()),
            Ok(Input::End) => {
                return Err(Outcome::fail(
                    ExitCode::Usage,
                    "no name given: standard input ended (use --name NAME)",
                ))
            }
            Err(e) => {
                return Err(Outcome::fail(
                    ExitCode::Failure,
                    format!("cannot read a name: {}", describe(&e)),
                ))
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match validate_name(&line) {
            Ok(name) => return Ok(name.to_owned()),
            Err(why) if retry => show(screen, |b| {
                render::problem(b, &format!("{why}; try another name"))
            }),
            Err(why) => {
                return Err(Outcome::fail(
                    ExitCode::Refused,
                    format!("name {:?} refused: {why}", sanitize(&line)),
                ))
            }
        }
    }
}

/// Runs the login: answers `NAME?` with `--name` or a name asked for, explains refusals, shows
/// the waiting room, and returns the admitted name. Lines typed meanwhile stay unread (in the
/// terminal or the pipe) until admission, so none is ever sent as a name by mistake.
pub fn login<R: Read>(
    reader: &mut LineReader<R>,
    writer: &mut Writer,
    screen: &mut Screen,
    config: &Config,
) -> Result<String, Outcome> {
    // A name can be asked again only from a person at a terminal, and only without --name.
    let retry = config.name.is_none() && config.stdin_is_terminal;
    // The last name offered, and why the server refused it (until the next NAME?).
    let mut offered: Option<String> = None;
    let mut refused: Option<String> = None;
    let refusal = |offered: &Option<String>, why: &str| {
        Outcome::fail(
            ExitCode::Refused,
            format!("name {:?} refused: {why}", offered.as_deref().unwrap_or("")),
        )
    };
    loop {
        let incoming = match reader.next_line() {
            Ok(Some(incoming)) => incoming,
            Ok(None) => {
                return Err(match refused {
                    Some(why) => refusal(&offered, &why),
                    None => Outcome::fail(
                        ExitCode::Lost,
                        "the server closed the connection before admitting you",
                    ),
                })
            }
            Err(e) => return Err(lost(&e)),
        };
        let Incoming::Line(line) = &incoming else {
            show_odd(screen, &incoming);
            continue;
        };
        let Ok(msg) = ServerMsg::parse(line) else {
            show_odd(screen, &incoming);
            continue;
        };
        match msg {
            ServerMsg::NameQuery { prompt } => {
                if let Some(why) = refused.take() {
                    if !retry {
                        return Err(refusal(&offered, &why));
                    }
                }
                let name = match &config.name {
                    Some(name) => name.clone(),
                    None => {
                        if retry {
                            show(screen, |b| render::notice(b, prompt));
                        }
                        ask_name(screen, retry)?
                    }
                };
                send(writer, &name).map_err(|e| lost(&e))?;
                offered = Some(name);
            }
            ServerMsg::Error {
                code: code @ (ErrorCode::BadName | ErrorCode::NameTaken),
                text,
            } => {
                // Without a person to ask again, the reason goes to standard error instead.
                if retry {
                    show(screen, |b| render::server_msg(b, &msg, None));
                }
                refused = Some(format!("{} ({code})", sanitize(text)));
            }
            ServerMsg::Error {
                code: ErrorCode::ServerFull,
                text,
            } => {
                return Err(Outcome::fail(
                    ExitCode::Refused,
                    format!("the server is full: {}", sanitize(text)),
                ))
            }
            ServerMsg::Welcome { name, .. } => {
                show(screen, |b| render::server_msg(b, &msg, Some(name)));
                return Ok(name.to_owned());
            }
            ServerMsg::Denied { text } => {
                return Err(Outcome::fail(
                    ExitCode::Refused,
                    format!("refused: {}", sanitize(text)),
                ))
            }
            ServerMsg::Bye { text } => {
                return Err(Outcome::fail(
                    ExitCode::Removed,
                    format!("the server ended the session: {}", sanitize(text)),
                ))
            }
            _ => show(screen, |b| render::server_msg(b, &msg, None)),
        }
    }
}

/// What both threads share once admitted.
#[derive(Debug, Default)]
struct Shared {
    /// Set by the keyboard thread before it sends `/leave`: an end is then the user's choice.
    leaving: AtomicBool,
    /// Taken, and never released, by the thread that ends the session (see the module doc).
    ending: Mutex<()>,
}

impl Shared {
    /// Makes this thread the one that ends the session; blocks forever if the other one
    /// already is (it is exiting the process).
    fn claim_ending(&self) {
        let guard = self.ending.lock().unwrap_or_else(PoisonError::into_inner);
        // Held until the process exits, so the other thread can never report a second end.
        std::mem::forget(guard);
    }
}

/// What the network thread needs.
struct Network {
    reader: LineReader<Stream>,
    screen: Screen,
    me: String,
    shared: Arc<Shared>,
    /// Reports the end to the keyboard thread when it is waiting for the `BYE` of `/leave`.
    done: Sender<Outcome>,
}

impl Network {
    /// Reads and shows server lines until the session ends.
    fn run(mut self) {
        loop {
            let incoming = match self.reader.next_line() {
                Ok(Some(incoming)) => incoming,
                Ok(None) => {
                    return self.end(
                        Outcome::fail(ExitCode::Lost, "the server closed the connection"),
                        None,
                    )
                }
                Err(e) => return self.end(lost(&e), None),
            };
            let Incoming::Line(line) = &incoming else {
                show_odd(&mut self.screen, &incoming);
                continue;
            };
            let Ok(msg) = ServerMsg::parse(line) else {
                show_odd(&mut self.screen, &incoming);
                continue;
            };
            match msg {
                ServerMsg::Bye { text } => {
                    let why = format!("the server ended the session: {}", sanitize(text));
                    return self.end(Outcome::fail(ExitCode::Removed, why), Some(&msg));
                }
                ServerMsg::Leave { name, reason } if name.eq_ignore_ascii_case(&self.me) => {
                    let (code, why) = match reason {
                        LeaveReason::Kicked => (ExitCode::Removed, "the operator removed you"),
                        _ => (ExitCode::Lost, "the server dropped you"),
                    };
                    let why = format!("{why} ({})", reason.as_str());
                    return self.end(Outcome::fail(code, why), None);
                }
                ServerMsg::Denied { text } => {
                    let why = format!("refused: {}", sanitize(text));
                    return self.end(Outcome::fail(ExitCode::Refused, why), None);
                }
                _ => show(&mut self.screen, |b| {
                    render::server_msg(b, &msg, Some(&self.me))
                }),
            }
        }
    }

    /// Ends the session. When the user asked to leave, shows the goodbye and reports success
    /// to the waiting keyboard thread; otherwise ends the process with `outcome` (see the
    /// module doc for why this thread does it).
    fn end(mut self, outcome: Outcome, bye: Option<&ServerMsg<'_>>) {
        if self.shared.leaving.load(Ordering::SeqCst) {
            if let Some(bye) = bye {
                show(&mut self.screen, |b| render::server_msg(b, bye, None));
            }
            // The keyboard thread may have stopped waiting already; nothing more to do then.
            let _ = self.done.send(Outcome::success());
            return;
        }
        self.shared.claim_ending();
        crate::finish(outcome)
    }
}

/// Leaves by choice: sends `/leave` and waits, boundedly, for the network thread's `BYE`.
fn leave(writer: &mut Writer, shared: &Shared, done: &Receiver<Outcome>) -> Outcome {
    shared.leaving.store(true, Ordering::SeqCst);
    if send(writer, "/leave").is_ok() {
        // Success either way: the user asked to go, and is gone.
        let _ = done.recv_timeout(LEAVE_TIMEOUT);
    }
    Outcome::success()
}

/// The keyboard thread's part of the chat: read, send, echo, until the user leaves.
fn chat(
    writer: &mut Writer,
    screen: &mut Screen,
    me: &str,
    prompts: bool,
    shared: &Shared,
    done: &Receiver<Outcome>,
) -> Outcome {
    loop {
        let line = match read_line(PROMPT, prompts) {
            Ok(Input::Line(line)) => line,
            Ok(Input::End) => return leave(writer, shared, done),
            Err(e) => {
                leave(writer, shared, done);
                return Outcome::fail(
                    ExitCode::Failure,
                    format!("cannot read the keyboard: {}", describe(&e)),
                );
            }
        };
        // The server sanitizes and ignores blank lines; decide on what it will see.
        let clean = sanitize(&line);
        if is_blank(&clean) {
            continue;
        }
        let request = parse_request(&clean);
        if request == Ok(Request::Leave) {
            return leave(writer, shared, done);
        }
        if let Err(e) = send(writer, &line) {
            // The network thread sees the same closed connection and reports it, unless we
            // stop here first.
            return lost(&e);
        }
        match request {
            // An over-long line is refused by the server (ERROR line-too-long): no echo.
            Ok(request) if line.len() <= DEFAULT_MAX_LINE => {
                show(screen, |b| render::own_request(b, &request, me).map(drop));
            }
            // Not echoed: the server answers a bad request with an ERROR line.
            _ => {}
        }
    }
}

/// Runs a whole line-mode session with `config` and says how it ended. May also end the
/// process from the network thread (see the module doc).
pub fn run(config: &Config) -> Outcome {
    let mut screen = Screen::stdout(config.colors);
    show(&mut screen, |b| {
        render::notice(b, &format!("connecting to {}...", config.server.target))
    });
    // Only a person at a terminal can answer TLS's first-use question.
    let mut server = config.server.clone();
    let stream = match trust::connect_first(&mut server, config.stdin_is_terminal) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    if let Some(tls) = stream.tls_description() {
        show(&mut screen, |b| {
            render::notice(b, &format!("secured with {tls}"))
        });
    }
    let (reader, mut writer) = match stream.split() {
        Ok(halves) => halves,
        Err(e) => return lost(&e),
    };
    let mut reader = LineReader::new(reader);
    let me = match login(&mut reader, &mut writer, &mut screen, config) {
        Ok(me) => me,
        Err(outcome) => return outcome,
    };
    let shared = Arc::new(Shared::default());
    let (done_tx, done_rx) = mpsc::channel();
    let network = Network {
        reader,
        screen: Screen::stdout(config.colors),
        me: me.clone(),
        shared: Arc::clone(&shared),
        done: done_tx,
    };
    if let Err(e) = thread::Builder::new()
        .name("network".into())
        .spawn(move || network.run())
    {
        return Outcome::fail(
            ExitCode::Failure,
            format!("cannot start the network thread: {e}"),
        );
    }
    let outcome = chat(
        &mut writer,
        &mut screen,
        &me,
        config.stdin_is_terminal,
        &shared,
        &done_rx,
    );
    shared.claim_ending();
    outcome
}
