//! Line mode (pipes, `TERM=dumb`, `--plain`): the second view of the shared brain
//! (`core/brain.rs`), one message per line on standard output. This module only moves things:
//! it connects, hands every server line and every line of standard input to the brain as a
//! [`Msg`], carries out the brain's effects (send a line, close) and prints each new stored
//! entry once through [`render`]. Line mode does not reconnect: a script sees the end as an exit
//! status.
//!
//! # Threads
//! The network thread (`net::spawn`) reads the socket; a small input thread reads standard
//! input, one line each time it is asked (so nothing typed is read before the brain wants it:
//! no line is ever sent as a name by mistake, and a pipe is read only as fast as the chat goes).
//! The calling thread owns the brain and sleeps on one channel fed by both. Whatever ends the
//! session (the user leaving, the server, a drop) ends this loop, even while the input thread
//! is blocked reading a terminal: the process exits with the outcome.

use std::io::{self, IsTerminal, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread;
use std::time::Duration;

use crate::config::Config;
use crate::core::brain::{Brain, Effect, Link, Msg, Now, Settings};
use crate::core::compose::Local;
use crate::exit::{ExitCode, Outcome};
use crate::net::tokens::Keeper;
use crate::net::{self, describe, trust, NetEvent, Writer, CHANNEL_SIZE};

use self::input::{read_line, Input};
use self::screen::Screen;

pub mod input;
pub mod render;
pub mod screen;

/// The longest the loop sleeps with nothing happening: the leave timer is checked this often.
const WAIT: Duration = Duration::from_millis(250);

/// The prompt of the chat in line mode (shown on standard error when it is a terminal).
const PROMPT: &str = "";

/// The prompt when asking for a name.
const NAME_PROMPT: &str = "name: ";

/// What wakes the loop.
#[derive(Debug)]
enum Wake {
    /// A report of the network thread.
    Net(NetEvent),
    /// A line of standard input, its end, or an error reading it.
    Input(io::Result<Input>),
}

/// Starts the input thread: each request (a prompt, and whether to show it) reads one line.
fn spawn_input(tx: SyncSender<Wake>) -> io::Result<Sender<(String, bool)>> {
    let (ask, asked): (Sender<(String, bool)>, Receiver<_>) = mpsc::channel();
    thread::Builder::new().name("input".into()).spawn(move || {
        for (prompt, prompts) in asked {
            let read = read_line(&prompt, prompts);
            let last = !matches!(read, Ok(Input::Line(_) | Input::TooLong(_)));
            if tx.send(Wake::Input(read)).is_err() || last {
                return;
            }
        }
    })?;
    Ok(ask)
}

/// Prints every entry stored after `shown`, and moves `shown` on. A closed standard output
/// must not end a session that the user may still be typing into, so failures are ignored.
fn show_new(screen: &mut Screen, brain: &Brain, shown: &mut u64) {
    let me = brain.me();
    let fresh: Vec<_> = brain
        .store
        .iter()
        .rev()
        .take_while(|e| e.id > *shown)
        .collect();
    // Mentions stand out on a terminal only: a pipe gets exactly the lines it always did.
    let terminal = !fresh.is_empty() && io::stdout().is_terminal();
    for entry in fresh.into_iter().rev() {
        let _ = screen.show(|b| {
            if terminal && entry.highlight {
                render::mention_mark(b)?;
            }
            render::entry(b, entry, me)
        });
        *shown = entry.id;
    }
}

/// Runs a whole line-mode session with `config` and says how it ended.
pub fn run(config: &Config) -> Outcome {
    let mut screen = Screen::stdout(config.colors);
    let keeper = Keeper::new(config.tokens.clone(), &config.server.target.to_string());
    let (tokens, notes) = keeper.start(config.forget, config.name.as_deref());
    let mut brain = Brain::new(Settings {
        addr: config.server.target.to_string(),
        name: config.name.clone(),
        // On a terminal a mention or a private rings, as in the full screen (issue 25).
        bell: config.bell && std::io::stdout().is_terminal(),
        reconnect: false,
        // A name can be asked again only from a person at a terminal, and only without --name.
        ask_again: config.name.is_none() && config.stdin_is_terminal,
        who_on_join: false,
        keys_help: None,
        hello: true,
        tokens,
        prefs: config.prefs.clone(),
        log_dir: config.log_dir.clone(),
        // One line per message: runs of joins and /who replies are printed as they come.
        coalesce: false,
    });
    if config.prefs.log {
        brain.start_log(&Now::read());
    }
    let mut shown = 0;
    for note in notes {
        brain.notice(&Now::read(), &note);
    }
    brain.notice(
        &Now::read(),
        &format!("connecting to {}...", config.server.target),
    );
    show_new(&mut screen, &brain, &mut shown);
    // Only a person at a terminal can answer TLS's first-use question.
    let mut server = config.server.clone();
    let stream = match trust::connect_first(&mut server, config.stdin_is_terminal) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    let (tx, rx) = mpsc::sync_channel(CHANNEL_SIZE);
    let net_tx = tx.clone();
    let started = net::spawn(server, 1, Some(stream), move |_, event| {
        net_tx.send(Wake::Net(event)).is_ok()
    })
    .and_then(|()| spawn_input(tx));
    let ask = match started {
        Ok(ask) => ask,
        Err(e) => {
            return Outcome::fail(ExitCode::Failure, format!("cannot start a thread: {e}"));
        }
    };
    let mut writer: Option<Writer> = None;
    // A line of input is being read; standard input ended or failed.
    let mut asked = false;
    let mut input_over = false;
    // A failure to read standard input: the session leaves, then ends with this.
    let mut failure: Option<Outcome> = None;
    loop {
        let wake = match rx.recv_timeout(WAIT) {
            Ok(wake) => Some(wake),
            Err(RecvTimeoutError::Timeout) => None,
            // Both threads are gone: the brain has the end already; only the leave timer is left.
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(WAIT);
                None
            }
        };
        let now = Now::read();
        let msg = match wake {
            Some(Wake::Net(NetEvent::Connected(w))) => {
                let tls = w.tls_description();
                writer = Some(w);
                Some(Msg::Connected { tls })
            }
            Some(Wake::Net(NetEvent::Failed(code, why))) => Some(Msg::Failed(code, why)),
            Some(Wake::Net(NetEvent::Line(incoming))) => Some(Msg::Line(incoming)),
            Some(Wake::Net(NetEvent::Closed(why))) => Some(Msg::Closed(why)),
            Some(Wake::Input(read)) => {
                asked = false;
                match read {
                    Ok(Input::Line(text)) => Some(Msg::Enter {
                        text,
                        confirmed: true,
                    }),
                    Ok(Input::End) => {
                        input_over = true;
                        Some(Msg::InputEnded)
                    }
                    Ok(Input::TooLong(bytes)) => {
                        // Refused whole and said, never cut (issue 25).
                        brain.problem(
                            &now,
                            &format!(
                                "a line of {bytes} bytes was not sent: lines longer than 64 KiB \
                                 are refused whole"
                            ),
                        );
                        None
                    }
                    Err(e) if brain.link == Link::Naming => {
                        return Outcome::fail(
                            ExitCode::Failure,
                            format!("cannot read a name: {}", describe(&e)),
                        );
                    }
                    Err(e) => {
                        input_over = true;
                        failure = Some(Outcome::fail(
                            ExitCode::Failure,
                            format!("cannot read the keyboard: {}", describe(&e)),
                        ));
                        Some(Msg::Leave)
                    }
                }
            }
            None => None,
        };
        let mut effects = Vec::new();
        if let Some(msg) = msg {
            effects.extend(brain.update(msg, &now));
        }
        effects.extend(brain.update(Msg::Tick, &now));
        let mut next = 0;
        while let Some(effect) = effects.get(next).cloned() {
            next += 1;
            match effect {
                Effect::Send(line) => {
                    let failed = writer.as_mut().and_then(|w| w.send_line(&line).err());
                    if let Some(e) = failed {
                        effects.extend(brain.update(Msg::Closed(Some(describe(&e))), &now));
                    }
                }
                Effect::Disconnect => {
                    if let Some(w) = writer.take() {
                        w.close();
                    }
                }
                Effect::Updated(id) => {
                    show_new(&mut screen, &brain, &mut shown);
                    if let Some(entry) = brain.store.get(id) {
                        let _ = screen.show(|b| render::failure(b, entry));
                    }
                }
                Effect::SaveToken(_) | Effect::ForgetToken { .. } => {
                    if let Err(why) = keeper.apply(&effect) {
                        brain.notice(&now, &why);
                    }
                }
                Effect::Bell => {
                    show_new(&mut screen, &brain, &mut shown);
                    let mut out = std::io::stdout();
                    let _ = out.write_all(b"\x07").and_then(|()| out.flush());
                }
                Effect::View(Local::Clear) => {
                    // The brain forgot what it kept; a terminal is cleared, a pipe left alone.
                    if !screen.clear() {
                        brain.notice(&now, "/clear: standard output is not a terminal");
                    }
                }
                Effect::View(Local::Search(text)) => {
                    let found = brain.search_list(&now, &text);
                    show_new(&mut screen, &brain, &mut shown);
                    let me = brain.me();
                    for entry in found.iter().filter_map(|&id| brain.store.get(id)) {
                        let _ = screen.show(|b| render::found(b, entry, me));
                    }
                }
                // The prompt shows the conversation (`[bob] `) at the next line asked for.
                Effect::View(_) => {}
                // Line mode never reconnects and has no input line to clear.
                Effect::Connect | Effect::TakeInput | Effect::AskConfirm(_) => {}
            }
        }
        show_new(&mut screen, &brain, &mut shown);
        if let Some(outcome) = brain.outcome.take() {
            if let Some(w) = writer.take() {
                w.close();
            }
            if brain.is_logging() {
                brain.stop_log(&now);
                show_new(&mut screen, &brain, &mut shown);
            }
            // The last id received goes with the token, for the next run's RESUME.
            if let Some(session) = brain.session() {
                if let Err(why) = keeper.keep(&session) {
                    brain.notice(&now, &why);
                    show_new(&mut screen, &brain, &mut shown);
                }
            }
            return match failure {
                Some(failure) if outcome.code == ExitCode::Success => failure,
                _ => outcome,
            };
        }
        if brain.wants_input() && !asked && !input_over {
            let prompt = match brain.query() {
                _ if brain.link == Link::Naming => NAME_PROMPT.to_owned(),
                Some(query) => format!("[{}] ", query.with()),
                None => PROMPT.to_owned(),
            };
            asked = ask.send((prompt, config.stdin_is_terminal)).is_ok();
        }
    }
}
