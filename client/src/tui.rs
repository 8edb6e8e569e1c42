//! The terminal thread of the full-screen interface: it owns the terminal (raw mode, the
//! alternate screen, bracketed paste, the mouse) and the writing half of the connection, and
//! runs the loop: network reports from the channel, keys from the terminal, timers, then one
//! drawing. The rules are all in `app.rs`; this loop only carries out their effects. The
//! terminal is put back on every way out, a panic included.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::app::{App, Effect, Now, Settings};
use crate::config::Config;
use crate::exit::{ExitCode, Outcome};
use crate::layout::Look;
use crate::net::{self, describe, NetEvent, Writer, CHANNEL_SIZE};

/// How long the loop waits for a key before it looks at the channel again. Short enough that
/// a server line shows at once to a person, long enough to cost nothing while idle.
const TICK: Duration = Duration::from_millis(20);

/// Redraw at least this often (the reconnection countdown in the status line).
const REFRESH: Duration = Duration::from_millis(500);

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

impl TerminalGuard {
    fn enter(mouse: bool) -> io::Result<Self> {
        enable_raw_mode()?;
        let guard = TerminalGuard { mouse };
        let mut out = io::stdout();
        execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
        if mouse {
            execute!(out, EnableMouseCapture)?;
        }
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

fn now() -> Now {
    let local = chrono::Local::now();
    Now {
        instant: Instant::now(),
        clock: local.format("%H:%M").to_string(),
        utc: local.with_timezone(&chrono::Utc),
    }
}

/// Runs the full-screen interface until the user leaves; returns how it ended.
pub fn run(config: &Config) -> Outcome {
    // Connect before taking the screen, so an unreachable server is one plain line.
    let stream = match net::connect(&config.addr) {
        Ok(stream) => stream,
        Err(outcome) => return outcome,
    };
    let (tx, rx) = mpsc::sync_channel(CHANNEL_SIZE);
    let mut generation = 1;
    if let Err(e) = net::spawn(config.addr.clone(), generation, Some(stream), tx.clone()) {
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
    let mut app = App::new(Settings {
        addr: config.addr.clone(),
        name: config.name.clone(),
        look: Look {
            styles: config.colors,
        },
        bell: config.bell,
    });
    app.notice(&now(), &format!("connecting to {}...", config.addr));
    let mut writer: Option<Writer> = None;
    let mut last_draw: Option<Instant> = None;
    // SIGTERM and SIGHUP leave through the loop, so the terminal is put back.
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        // Without the handler the signal ends the process as before; nothing else changes.
        let _ = signal_hook::flag::register(signal, Arc::clone(&terminate));
    }
    let mut terminating = false;
    let mut tty_alive = true;
    let outcome = loop {
        let mut changed = false;
        if terminate.load(Ordering::Relaxed) && !terminating {
            terminating = true;
            app.terminate(&now());
        }
        // Network reports; those of an abandoned connection are dropped.
        loop {
            match rx.try_recv() {
                Ok((tag, event)) => {
                    changed = true;
                    if tag != generation {
                        if let NetEvent::Connected(stale) = event {
                            stale.close();
                        }
                        continue;
                    }
                    match event {
                        NetEvent::Connected(w) => {
                            writer = Some(w);
                            app.connected();
                        }
                        other => app.on_net(other, &now()),
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
            if app.outcome.is_some() {
                break;
            }
        }
        // A terminal that hung up (its window closed) gives no more keys: leave as SIGHUP
        // would, and wait on the channel instead of the terminal.
        if tty_alive && !io::stdin().is_terminal() {
            tty_alive = false;
            if !terminating {
                terminating = true;
                app.terminate(&now());
            }
        }
        if !tty_alive {
            if let Ok((tag, event)) = rx.recv_timeout(TICK) {
                if tag == generation {
                    if let NetEvent::Connected(w) = event {
                        w.close();
                    } else {
                        app.on_net(event, &now());
                    }
                }
            }
            app.tick(&now());
            for effect in app.take_effects() {
                if let Effect::Send(line) = effect {
                    if let Some(w) = &mut writer {
                        let _ = w.send_line(&line);
                    }
                }
            }
            if let Some(outcome) = app.outcome.take() {
                break outcome;
            }
            continue;
        }
        // Keys, pastes, the mouse, resizes.
        match event::poll(TICK) {
            Ok(true) => {
                changed = true;
                while let Ok(true) = event::poll(Duration::ZERO) {
                    match event::read() {
                        Ok(ev) => app.on_terminal(ev, &now()),
                        Err(_) => {
                            tty_alive = io::stdin().is_terminal();
                            break;
                        }
                    }
                }
            }
            Ok(false) => {}
            // The terminal is gone or broken: leave through the dead-terminal path above.
            Err(_) => {
                tty_alive = false;
                if !terminating {
                    terminating = true;
                    app.terminate(&now());
                }
            }
        }
        app.tick(&now());
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
                        if let Err(e) =
                            net::spawn(config.addr.clone(), generation, None, tx.clone())
                        {
                            app.on_net(NetEvent::Failed(e.to_string()), &now());
                        }
                    }
                    Effect::Disconnect => {
                        if let Some(w) = writer.take() {
                            w.close();
                        }
                        generation += 1;
                    }
                    Effect::Bell => bell = true,
                    Effect::Redraw => {
                        let _ = terminal.clear();
                    }
                }
            }
        }
        if let Some(outcome) = app.outcome.take() {
            break outcome;
        }
        let due = last_draw.is_none_or(|at| at.elapsed() >= REFRESH);
        if changed || due {
            let at = Instant::now();
            if let Err(e) = terminal.draw(|frame| crate::ui::draw(frame, &mut app, at)) {
                break Outcome::fail(
                    ExitCode::Failure,
                    format!("cannot draw on the terminal: {}", describe(&e)),
                );
            }
            last_draw = Some(at);
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
    drop(terminal);
    drop(guard);
    outcome
}
