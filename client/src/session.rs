//! One session with a server: connecting, the login state machine (name, waiting room,
//! admission), then the two threads of the chat. The network thread reads the socket, frames
//! lines with `LineFramer`, parses them with `ServerMsg::parse`, keeps the [`Roster`] and shows
//! every line through its [`Screen`]; the calling thread reads the keyboard, sends each line and
//! echoes the user's own messages. Parsing and rendering live in `chat_common` and `render.rs`;
//! this module owns sockets, threads and how the session ends.
//!
//! # How it ends
//! The user leaving (`/leave`, Ctrl-D, Ctrl-C, end of input) is handled by the keyboard thread:
//! it sets `leaving`, sends `/leave` and waits at most [`LEAVE_TIMEOUT`] for the network thread
//! to report the `BYE`. Anything the server decides (a kick, a shutdown, a drop, a closed
//! connection) reaches the network thread while the keyboard thread may be blocked in the line
//! editor, which nothing can wake; so the network thread ends the process itself, after putting
//! the terminal back. Whichever thread ends first takes `ending` and never lets go, so exactly
//! one of them reports and exits.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use chat_common::framing::{Frame, LineFramer, DEFAULT_MAX_LINE};
use chat_common::protocol::{
    parse_request, validate_name, ErrorCode, LeaveReason, Request, ServerMsg,
};
use chat_common::sanitize::{is_blank, sanitize};

use crate::config::Config;
use crate::exit::{ExitCode, Outcome};
use crate::input::{Input, Keyboard};
use crate::render;
use crate::roster::Roster;
use crate::screen::Screen;
use crate::term::SavedTerminal;

/// How long to try each address of the server before giving up on it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for `BYE` after sending `/leave` before exiting anyway.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest server line accepted. A `PRIV` carries two names, a color and up to a whole client
/// line of text, and a server may run with a larger `--max-line`, so allow well beyond both.
pub const MAX_SERVER_LINE: usize = 16 * DEFAULT_MAX_LINE;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The prompt of the chat line editor.
const PROMPT: &str = "> ";

/// The prompt when asking for a name.
const NAME_PROMPT: &str = "name: ";

/// One framed line from the server, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete UTF-8 line without its terminator.
    Line(String),
    /// A line longer than [`MAX_SERVER_LINE`], skipped.
    TooLong,
    /// A line that was not UTF-8, skipped.
    BadUtf8,
}

/// Reads framed lines from a byte stream. Holds at most one read chunk plus one incomplete
/// line (bounded by the framer), so the rest of a chunk survives between calls, and across the
/// hand-over from the login to the network thread.
#[derive(Debug)]
pub struct LineReader<R> {
    source: R,
    framer: LineFramer,
    /// Bytes read and not yet framed are `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> LineReader<R> {
    /// Frames lines of at most [`MAX_SERVER_LINE`] bytes from `source`.
    pub fn new(source: R) -> Self {
        LineReader {
            source,
            framer: LineFramer::new(MAX_SERVER_LINE),
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The next line; `None` at end of stream (an incomplete last line is dropped).
    pub fn next_line(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            if self.start < self.end {
                let (used, frame) = self.framer.feed(&self.buf[self.start..self.end]);
                let item = frame.map(|frame| match frame {
                    Frame::Line(line) => Incoming::Line(line.to_owned()),
                    Frame::TooLong => Incoming::TooLong,
                    Frame::BadUtf8 => Incoming::BadUtf8,
                });
                self.start += used;
                if let Some(item) = item {
                    return Ok(Some(item));
                }
            }
            self.start = 0;
            self.end = 0;
            match self.source.read(&mut self.buf) {
                Ok(0) => return Ok(None),
                Ok(n) => self.end = n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The text of an I/O error without the `(os error N)` suffix: people need the words only.
fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Connects to `addr` (`HOST:PORT`), trying each address it resolves to.
pub fn connect(addr: &str) -> Result<TcpStream, Outcome> {
    let unreachable = |why: String| {
        Outcome::fail(
            ExitCode::Unreachable,
            format!("cannot connect to {}: {why}", sanitize(addr)),
        )
    };
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| unreachable(describe(&e)))?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(unreachable(last.map_or_else(
        || "the name has no address".to_owned(),
        |e| describe(&e),
    )))
}

/// Sends one line. The stream is unbuffered, so the line leaves in one write.
fn send(writer: &mut impl Write, line: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    writer.write_all(&bytes)
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
fn ask_name(keyboard: &mut Keyboard, screen: &mut Screen, retry: bool) -> Result<String, Outcome> {
    loop {
        let line = match keyboard.read_line(NAME_PROMPT) {
            Ok(Input::Line(line)) => line,
            Ok(Input::End | Input::Interrupted) if retry => return Err(Outcome::success()),
            Ok(Input::End | Input::Interrupted) => {
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
    writer: &mut impl Write,
    keyboard: &mut Keyboard,
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
                        ask_name(keyboard, screen, retry)?
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
    reader: LineReader<TcpStream>,
    screen: Screen,
    roster: Arc<Mutex<Roster>>,
    me: String,
    shared: Arc<Shared>,
    /// Reports the end to the keyboard thread when it is waiting for the `BYE` of `/leave`.
    done: Sender<Outcome>,
    /// The terminal to restore before ending the process, when the editor may hold it.
    terminal: Option<SavedTerminal>,
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
            self.roster
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .observe(&msg);
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
        if let Some(terminal) = &self.terminal {
            terminal.restore();
        }
        crate::finish(outcome)
    }
}

/// Leaves by choice: sends `/leave` and waits, boundedly, for the network thread's `BYE`.
fn leave(writer: &mut TcpStream, shared: &Shared, done: &Receiver<Outcome>) -> Outcome {
    shared.leaving.store(true, Ordering::SeqCst);
    if send(writer, "/leave").is_ok() {
        // Success either way: the user asked to go, and is gone.
        let _ = done.recv_timeout(LEAVE_TIMEOUT);
    }
    Outcome::success()
}

/// The keyboard thread's part of the chat: read, send, echo, until the user leaves.
fn chat(
    keyboard: &mut Keyboard,
    writer: &mut TcpStream,
    screen: &mut Screen,
    me: &str,
    interactive: bool,
    shared: &Shared,
    done: &Receiver<Outcome>,
) -> Outcome {
    loop {
        let line = match keyboard.read_line(PROMPT) {
            Ok(Input::Line(line)) => line,
            Ok(Input::End | Input::Interrupted) => return leave(writer, shared, done),
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
        keyboard.remember(&line);
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
                if request == Request::Help && interactive {
                    show(screen, |b| render::notice(b, render::KEYS_HELP));
                }
            }
            // Not echoed: the server answers a bad request with an ERROR line.
            _ => {}
        }
    }
}

/// Runs a whole session with `config` and says how it ended. May also end the process from the
/// network thread (see the module doc).
pub fn run(config: &Config) -> Outcome {
    let roster = Arc::new(Mutex::new(Roster::new()));
    // Captured before the editor first switches the terminal to raw mode.
    let terminal = if config.interactive {
        SavedTerminal::capture()
    } else {
        None
    };
    let mut keyboard = if config.interactive {
        // An editor that cannot start still leaves plain line reading.
        Keyboard::editor(Arc::clone(&roster))
            .unwrap_or_else(|_| Keyboard::plain(config.stdin_is_terminal))
    } else {
        Keyboard::plain(config.stdin_is_terminal)
    };
    let mut screen = Screen::stdout(config.colors);
    show(&mut screen, |b| {
        render::notice(b, &format!("connecting to {}...", config.addr))
    });
    let stream = match connect(&config.addr) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(e) => return lost(&e),
    };
    let mut reader = LineReader::new(stream);
    let me = match login(&mut reader, &mut writer, &mut keyboard, &mut screen, config) {
        Ok(me) => me,
        Err(outcome) => return outcome,
    };
    roster
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .set_me(&me);
    if config.interactive {
        // Learn who is here for Tab completion; the reply is worth showing on arrival too.
        if let Err(e) = send(&mut writer, "/who") {
            return lost(&e);
        }
    }
    let network_screen = match keyboard.printer() {
        Some(printer) => Screen::printer(config.colors, printer),
        None => Screen::stdout(config.colors),
    };
    let shared = Arc::new(Shared::default());
    let (done_tx, done_rx) = mpsc::channel();
    let network = Network {
        reader,
        screen: network_screen,
        roster,
        me: me.clone(),
        shared: Arc::clone(&shared),
        done: done_tx,
        terminal,
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
        &mut keyboard,
        &mut writer,
        &mut screen,
        &me,
        config.interactive,
        &shared,
        &done_rx,
    );
    shared.claim_ending();
    outcome
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A reader that hands out its data in chunks of `chunk` bytes.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn lines(data: &[u8], chunk: usize) -> Vec<Incoming> {
        let mut reader = LineReader::new(Trickle { data, chunk });
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn line_reader_frames_in_any_chunking() {
        let data = b"NAME? hi\r\nWAIT w\n\nWELCOME bob 1\nJOIN al\npartial";
        let want = vec![
            Incoming::Line("NAME? hi".into()),
            Incoming::Line("WAIT w".into()),
            Incoming::Line("WELCOME bob 1".into()),
            Incoming::Line("JOIN al".into()),
        ];
        for chunk in [1, 2, 7, 4096] {
            assert_eq!(lines(data, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn line_reader_reports_over_long_and_bad_lines_and_goes_on() {
        let mut data = vec![b'x'; MAX_SERVER_LINE + 10];
        data.extend_from_slice(b"\n\xff\xfe\nINFO ok\n");
        let got = lines(&data, 5000);
        assert_eq!(
            got,
            vec![
                Incoming::TooLong,
                Incoming::BadUtf8,
                Incoming::Line("INFO ok".into())
            ]
        );
    }

    #[test]
    fn os_error_numbers_are_left_out() {
        let e = io::Error::from_raw_os_error(111);
        assert!(!describe(&e).contains("os error"), "{}", describe(&e));
        assert_eq!(describe(&io::Error::other("plain")), "plain");
    }

    #[test]
    fn unreachable_address_is_reported_with_the_address() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let err = connect("127.0.0.1:1").unwrap_err();
        assert_eq!(err.code, ExitCode::Unreachable);
        assert!(err
            .message
            .unwrap()
            .starts_with("cannot connect to 127.0.0.1:1: "));
        let err = connect("not an address").unwrap_err();
        assert_eq!(err.code, ExitCode::Unreachable);
    }
}
