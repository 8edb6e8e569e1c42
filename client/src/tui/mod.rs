//! The terminal thread of the full-screen interface: it owns the terminal (raw mode, the
//! alternate screen, bracketed paste, the mouse) and the writing half of the connection, and
//! runs the loop: it sleeps on one channel until a network report (from the network thread) or
//! a terminal event (from a small thread that only reads keys, since reading blocks) arrives or
//! a timer is due, lets `App` handle it, carries out the effects, and draws. The protocol's rules
//! are the shared brain's (`core/brain.rs`), the view's own in `app.rs`; `ui.rs` draws, `layout.rs`
//! turns a message into rows, `editor.rs` is the input line, `complete.rs` is Tab. The terminal is put back on every way out: leaving, a signal, a panic; a terminal
//! that hangs up (its window closed) makes the client leave the room politely.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event,
};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use self::app::{App, Effect, Settings};
use self::layout::Look;
use crate::config::Config;
use crate::core::clock::TimeFormat;
use crate::core::{Link, Now};
use crate::exit::{ExitCode, Outcome};
use crate::net::tokens::Keeper;
use crate::net::{self, describe, trust, Connector, NetEvent, Writer, CHANNEL_SIZE};

pub mod app;
pub mod complete;
pub mod editor;
pub mod layout;
pub mod name_column;
pub mod paste_speed;
pub mod status_line;
pub mod ui;

/// The longest the loop sleeps with nothing happening: timers (reconnection, the end of a
/// leave) are checked at least this often, and the reconnection countdown redrawn.
const WAIT: Duration = Duration::from_millis(250);

/// How long the key thread waits for a key before it checks that the terminal is still there.
const KEY_POLL: Duration = Duration::from_millis(500);

/// At most this many queued events are handled before a frame is drawn.
const BATCH: usize = 256;

/// What wakes the terminal thread.
#[derive(Debug)]
enum Wake {
    /// A report of the network thread of connection attempt `.0`.
    Net(u64, NetEvent),
    /// A key, a paste, the mouse, a resize, and when the key thread read it (keys closer
    /// together than a person types are a paste).
    Term(Event, Instant),
    /// The terminal hung up or cannot be read.
    TerminalGone,
}

/// Starts the thread that reads the terminal's events into the channel. It ends when the
/// terminal goes away (reporting it) or nobody listens.
fn spawn_keys(tx: SyncSender<Wake>) -> io::Result<()> {
    thread::Builder::new()
        .name("keys".into())
        .spawn(move || loop {
            let wake = match event::poll(KEY_POLL) {
                Ok(true) => match event::read() {
                    Ok(event) => Wake::Term(event, Instant::now()),
                    Err(_) => Wake::TerminalGone,
                },
                Ok(false) if io::stdin().is_terminal() => continue,
                Ok(false) | Err(_) => Wake::TerminalGone,
            };
            let gone = matches!(wake, Wake::TerminalGone);
            if tx.send(wake).is_err() || gone {
                return;
            }
        })
        .map(drop)
}

/// The terminal in full-screen mode; dropping it puts the terminal back.
struct TerminalGuard {
    mouse: bool,
}

/// Puts the terminal back as it was. Best effort: there is nobody to tell about a failure.
fn restore(mouse: bool) {
    let mut out = io::stdout();
    if mouse {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(
        out,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
}

/// Raw mode, the alternate screen, bracketed paste and (if wanted) the mouse.
fn take_terminal(mouse: bool) -> io::Result<()> {
    enable_raw_mode()?;
    let mut out = io::stdout();
    execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
    if mouse {
        execute!(out, EnableMouseCapture)?;
    }
    Ok(())
}

/// Ctrl-Z: the terminal is put back, the process stops itself as the shell's job control
/// expects (SIGTSTP), and on `fg` (SIGCONT) takes the terminal again; the caller redraws.
/// Where nobody can resume it (an orphaned process group, which the kernel keeps from
/// stopping) it simply goes on.
fn suspend(mouse: bool) -> io::Result<()> {
    restore(mouse);
    signal_hook::low_level::raise(signal_hook::consts::SIGTSTP)?;
    take_terminal(mouse)
}

impl TerminalGuard {
    fn enter(mouse: bool) -> io::Result<Self> {
        let guard = TerminalGuard { mouse };
        take_terminal(mouse)?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore(mouse);
            previous(info);
        }));
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore(self.mouse);
    }
}

/// The moment, with the time column in the user's format.
fn now_in(format: &TimeFormat) -> Now {
    Now::read_in(format)
}

/// Starts a network thread reporting into the terminal thread's channel.
fn spawn_net(
    connector: &Connector,
    generation: u64,
    stream: Option<net::Stream>,
    tx: &SyncSender<Wake>,
) -> io::Result<()> {
    let tx = tx.clone();
    net::spawn(connector.clone(), generation, stream, move |tag, event| {
        tx.send(Wake::Net(tag, event)).is_ok()
    })
}

/// Runs the full-screen interface until the user leaves; returns how it ended.
pub fn run(config: &Config) -> Outcome {
    let time_format = config.prefs.time_format.clone();
    let now = || now_in(&time_format);
    // Connect before taking the screen, so an unreachable server is one plain line and TLS's
    // first-use question is asked on the terminal as it is. Reconnections reuse `server`,
    // which keeps the answer, and never ask.
    let mut server = config.server.clone();
    let stream = match trust::connect_first(&mut server, true) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    let (tx, rx) = mpsc::sync_channel(CHANNEL_SIZE);
    let mut generation = 1;
    if let Err(e) = spawn_net(&server, generation, Some(stream), &tx) {
        return Outcome::fail(
            ExitCode::Failure,
            format!("cannot start the network thread: {e}"),
        );
    }
    let guard = match TerminalGuard::enter(config.mouse) {
        Ok(guard) => guard,
        Err(e) => {
            restore(config.mouse);
            return Outcome::fail(
                ExitCode::Failure,
                format!("cannot use the terminal: {}", describe(&e)),
            );
        }
    };
    let mut terminal = match Terminal::new(CrosstermBackend::new(io::stdout())) {
        Ok(terminal) => terminal,
        Err(e) => {
            drop(guard);
            return Outcome::fail(
                ExitCode::Failure,
                format!("cannot use the terminal: {}", describe(&e)),
            );
        }
    };
    if let Err(e) = spawn_keys(tx.clone()) {
        drop(terminal);
        drop(guard);
        return Outcome::fail(
            ExitCode::Failure,
            format!("cannot start the key thread: {e}"),
        );
    }
    let keeper = Keeper::new(config.tokens.clone(), &server.target.to_string());
    let (tokens, notes) = keeper.start(config.forget, config.name.as_deref());
    let mut app = App::new(Settings {
        addr: server.target.to_string(),
        name: config.name.clone(),
        look: Look {
            styles: config.colors,
            time_width: config.prefs.time_format.width(),
            palette: layout::Palette::from_config(&config.prefs.colors),
        },
        bell: config.bell,
        tokens,
        prefs: config.prefs.clone(),
        log_dir: config.log_dir.clone(),
    });
    for note in notes {
        app.notice(&now(), &note);
    }
    if config.prefs.log {
        app.brain.start_log(&now());
    }
    app.notice(&now(), &format!("connecting to {}...", server.target));
    let mut writer: Option<Writer> = None;
    // SIGTERM and SIGHUP leave through the loop, so the terminal is put back.
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        // Without the handler the signal ends the process as before; nothing else changes.
        let _ = signal_hook::flag::register(signal, Arc::clone(&terminate));
    }
    let mut terminating = false;
    let mut tty_alive = true;
    let mut changed = true;
    let mut last_draw: Option<Instant> = None;
    let outcome = loop {
        // Sleep until something happens or a timer may be due, then take what is queued.
        let mut batch = Vec::new();
        let wait = app
            .next_timer(Instant::now())
            .map_or(WAIT, |soon| soon.min(WAIT));
        match rx.recv_timeout(wait) {
            Ok(wake) => batch.push(wake),
            Err(RecvTimeoutError::Timeout) => {}
            // Unreachable while this thread holds `tx`; nothing to wait for then anyway.
            Err(RecvTimeoutError::Disconnected) => thread::sleep(WAIT),
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(wake) => batch.push(wake),
                Err(_) => break,
            }
        }
        for wake in batch {
            changed = true;
            match wake {
                Wake::Net(tag, event) if tag != generation => {
                    // A report of an abandoned connection.
                    if let NetEvent::Connected(stale) = event {
                        stale.close();
                    }
                }
                Wake::Net(_, NetEvent::Connected(w)) => {
                    app.connected(w.tls_description(), &now());
                    writer = Some(w);
                }
                Wake::Net(_, event) => app.on_net(event, &now()),
                Wake::Term(event, read_at) => app.on_terminal_read(event, read_at, &now()),
                Wake::TerminalGone => tty_alive = false,
            }
            if app.brain.outcome.is_some() {
                break;
            }
        }
        let gone = !tty_alive || terminate.load(Ordering::Relaxed);
        if gone && !terminating {
            terminating = true;
            app.terminate(&now());
        }
        if app.tick(&now()) {
            changed = true;
        }
        // Effects, until there are none (a failed write is a lost connection: more effects).
        let mut bell = false;
        loop {
            let effects = app.take_effects();
            if effects.is_empty() {
                break;
            }
            changed = true;
            for effect in effects {
                match effect {
                    Effect::Send(line) => {
                        let failed = match &mut writer {
                            Some(w) => w.send_line(&line).err(),
                            None => None,
                        };
                        if let Some(e) = failed {
                            app.on_net(NetEvent::Closed(Some(describe(&e))), &now());
                        }
                    }
                    Effect::Connect => {
                        if let Some(w) = writer.take() {
                            w.close();
                        }
                        generation += 1;
                        if let Err(e) = spawn_net(&server, generation, None, &tx) {
                            let failed = NetEvent::Failed(ExitCode::Unreachable, e.to_string());
                            app.on_net(failed, &now());
                        }
                    }
                    Effect::Disconnect => {
                        if let Some(w) = writer.take() {
                            w.close();
                        }
                        generation += 1;
                    }
                    Effect::Bell => bell = true,
                    Effect::Token(effect) => {
                        if let Err(why) = keeper.apply(&effect) {
                            app.notice(&now(), &why);
                        }
                    }
                    Effect::Redraw => {
                        let _ = terminal.clear();
                    }
                    Effect::Suspend => {
                        if let Err(e) = suspend(config.mouse) {
                            app.notice(&now(), &format!("cannot suspend: {e}"));
                        }
                        let _ = terminal.clear();
                    }
                }
            }
        }
        if let Some(outcome) = app.brain.outcome.take() {
            break outcome;
        }
        // The countdown of a reconnection changes every second with nothing else happening.
        let countdown = matches!(app.brain.link, Link::Retrying { .. })
            && last_draw.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if tty_alive && (changed || countdown) {
            let at = Instant::now();
            if let Err(e) = terminal.draw(|frame| ui::draw(frame, &mut app, at)) {
                if io::stdin().is_terminal() {
                    break Outcome::fail(
                        ExitCode::Failure,
                        format!("cannot draw on the terminal: {}", describe(&e)),
                    );
                }
                tty_alive = false;
            }
            last_draw = Some(at);
            changed = false;
            if bell {
                let mut out = io::stdout();
                let _ = out.write_all(b"\x07");
                let _ = out.flush();
            }
        }
    };
    if let Some(w) = writer.take() {
        w.close();
    }
    app.brain.stop_log(&now());
    // The last id received goes with the token, for the next run's RESUME.
    let kept = app.brain.session().map(|session| keeper.keep(&session));
    drop(terminal);
    drop(guard);
    // A failure here was already said in the pane when the token came (TOKEN); only the last
    // id is lost, and the next resume replays a little more.
    let _ = kept;
    outcome
}
