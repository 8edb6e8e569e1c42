//! The operator consoles: standard input and the control socket's connections, read without
//! blocking, framed into lines, each line handed to the core with the console's id. (Output goes
//! through the shell's `Outbox::console`.) The control socket's own lines live here: `.quiet`,
//! and the `.end` line that answers the end of a connection's input before it is closed.

use std::io;

use chat_common::framing::{Frame, LineFramer};
use mio::Token;

use super::{Reactor, Shell, FIRST_CONTROL};
use crate::chat::{Audience, CommandOutcome, ConsoleId, Now, Outbox};
use crate::console::control::{ControlConn, Written, END, QUIET};
use crate::console::io::StdinSource;

/// Console bytes read per round, so a huge piped script cannot starve the sockets.
const CONSOLE_READ_PER_ROUND: usize = 64 * 1024;
/// Standard input's console id.
const STDIN: ConsoleId = ConsoleId(0);

impl Reactor {
    pub(super) fn read_console(&mut self, now: Now) {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            let Some(stdin) = self.stdin.as_mut() else {
                return;
            };
            if total >= CONSOLE_READ_PER_ROUND {
                return;
            }
            match stdin.read(&mut buf) {
                Ok(0) if stdin.hung_up() => return self.terminal_hung_up(now),
                Ok(0) => {
                    self.console_closed(now);
                    return;
                }
                Ok(n) => {
                    total += n;
                    let mut framer =
                        std::mem::replace(&mut self.console_framer, LineFramer::new(1));
                    self.console_bytes(STDIN, &mut framer, &buf[..n], now);
                    self.console_framer = framer;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) if stdin.hung_up() => return self.terminal_hung_up(now),
                Err(e) => {
                    log::warn!("console read failed: {e}");
                    self.console_closed(now);
                    return;
                }
            }
        }
    }

    /// Frames console bytes and runs each command line.
    fn console_bytes(&mut self, from: ConsoleId, framer: &mut LineFramer, bytes: &[u8], now: Now) {
        let reply = Audience::One(from);
        let mut rest = bytes;
        while !rest.is_empty() && !self.shell.is_cut(from) {
            let (used, frame) = framer.feed(rest);
            rest = &rest[used..];
            let outcome = match frame {
                Some(Frame::Line(line)) if from != STDIN && line.trim() == QUIET => {
                    if let Some(control) = self.shell.controls.get_mut(from.0 - 1) {
                        control.quiet = true;
                    }
                    self.shell
                        .console(reply, format_args!("{QUIET} console {}", from.0));
                    CommandOutcome::Done
                }
                Some(Frame::Line(line)) => {
                    self.shell.running = Some(from);
                    let outcome = self.core.console_line(from, line, now, &mut self.shell);
                    self.shell.running = None;
                    if std::mem::take(&mut self.shell.stdin_exit) {
                        // `exit` on standard input: as at its end of file, the server goes on.
                        self.console_closed(now);
                        return;
                    }
                    outcome
                }
                Some(Frame::TooLong) => {
                    self.shell
                        .console(reply, format_args!("error: command line too long"));
                    CommandOutcome::Failed
                }
                Some(Frame::BadUtf8) => {
                    self.shell
                        .console(reply, format_args!("error: command is not UTF-8"));
                    CommandOutcome::Failed
                }
                None => CommandOutcome::Done,
            };
            if outcome == CommandOutcome::Failed && from != STDIN {
                if let Some(control) = self.shell.controls.get_mut(from.0 - 1) {
                    control.failed = control.failed.saturating_add(1);
                }
            }
        }
    }

    /// Accepts every waiting operator on the control socket.
    pub(super) fn accept_controls(&mut self, _now: Now) {
        loop {
            let Some(control) = self.control.as_mut() else {
                return;
            };
            match control.listener().accept() {
                Ok((stream, _)) => {
                    let entry = self.shell.controls.vacant_entry();
                    let key = entry.key();
                    let token = Token(FIRST_CONTROL + key);
                    match ControlConn::new(stream, &self.shell.registry, token) {
                        Ok(conn) => {
                            entry.insert(conn);
                            self.core.console_opened();
                            self.shell.console(
                                Audience::All,
                                format_args!("console {} connected", key + 1),
                            );
                        }
                        Err(e) => log::warn!("cannot register a control connection: {e}"),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("control accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Reads a control console's commands until `WouldBlock`.
    pub(super) fn read_control(&mut self, key: usize, now: Now) {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        while total < CONSOLE_READ_PER_ROUND {
            let Some(control) = self.shell.controls.get_mut(key) else {
                return;
            };
            if control.cut || control.input_ended {
                return;
            }
            match control.read(&mut buf) {
                Ok(0) => return self.end_of_control_input(key),
                Ok(n) => {
                    total += n;
                    let mut framer = std::mem::replace(&mut control.framer, LineFramer::new(1));
                    self.console_bytes(ConsoleId(key + 1), &mut framer, &buf[..n], now);
                    if let Some(control) = self.shell.controls.get_mut(key) {
                        control.framer = framer;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close_control(key, now),
            }
        }
    }

    /// A control connection's input ended (`nc -N`, `chat-server ctl`): its commands have run;
    /// it gets the `.end` line and is closed once that is written.
    pub(super) fn end_of_control_input(&mut self, key: usize) {
        self.shell.finish_control(key);
    }

    /// Closes a control console: one fewer operator (with none left, waiting joins are denied).
    pub(super) fn close_control(&mut self, key: usize, now: Now) {
        let Some(mut control) = self.shell.controls.try_remove(key) else {
            return;
        };
        control.deregister(&self.shell.registry);
        self.shell
            .console(Audience::All, format_args!("console {} closed", key + 1));
        self.core.console_closed(now, &mut self.shell);
    }

    /// Whether standard input is a terminal that hung up (checked on SIGHUP, which a hang-up
    /// sends, to tell it from a reload request).
    pub(super) fn stdin_hung_up(&self) -> bool {
        self.terminal_gone || self.stdin.as_ref().is_some_and(StdinSource::hung_up)
    }

    /// The terminal the server was started in hung up. With no control socket nobody could
    /// approve a join or stop the server politely any more, so it shuts down (BYE to everyone)
    /// rather than hold the port headless; with one, it goes on and says where its console is.
    pub(super) fn terminal_hung_up(&mut self, now: Now) {
        if self.terminal_gone {
            return;
        }
        self.terminal_gone = true;
        self.console_closed(now);
        match self.shell.config.control.clone() {
            Some(path) => {
                let path = path.display();
                log::info!("the terminal hung up; the console goes on at {path} (--control)");
                self.shell.console(
                    Audience::All,
                    format_args!("the terminal hung up; the console goes on at {path}"),
                );
            }
            None => {
                log::info!("the terminal hung up and there is no --control console");
                self.begin_shutdown("the terminal hung up", now);
            }
        }
    }

    fn console_closed(&mut self, now: Now) {
        if let Some(mut stdin) = self.stdin.take() {
            stdin.deregister(self.poll.registry());
        }
        self.shell
            .console(Audience::All, format_args!("console closed"));
        self.core.console_closed(now, &mut self.shell);
    }
}

impl Shell {
    /// Control console `key` takes no more commands (its input ended, or it typed `exit`): it
    /// gets the `.end` line and is closed once everything it is owed is written.
    pub(super) fn finish_control(&mut self, key: usize) {
        let Some(control) = self.controls.get_mut(key) else {
            return;
        };
        if control.input_ended {
            return;
        }
        control.input_ended = true;
        let failed = control.failed;
        let written = if failed == 0 {
            control.line(&self.registry, format_args!("{END} ok"))
        } else {
            control.line(&self.registry, format_args!("{END} failed {failed}"))
        };
        if written == Written::CutOff || control.finished() {
            self.cut_controls.push(key);
        }
    }

    /// Whether console `id` was cut off this round (it runs no more commands).
    fn is_cut(&self, id: ConsoleId) -> bool {
        id != STDIN
            && self
                .controls
                .get(id.0 - 1)
                .is_none_or(|c| c.cut || c.input_ended)
    }

    /// A control console can take more output.
    pub(super) fn flush_control(&mut self, key: usize) {
        if let Some(control) = self.controls.get_mut(key) {
            if control.flush(&self.registry) == Written::CutOff || control.finished() {
                self.cut_controls.push(key);
            }
        }
    }
}
