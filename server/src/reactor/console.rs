//! The operator consoles' input: standard input read without blocking, framed into lines, each
//! line handed to the core. (Output goes through the shell's `Outbox::console`.)

use std::io;

use chat_common::framing::{Frame, LineFramer};

use super::Reactor;
use crate::chat::{Audience, ConsoleId, Now, Outbox};

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
                Ok(0) => {
                    self.console_closed(now);
                    return;
                }
                Ok(n) => {
                    total += n;
                    let mut framer =
                        std::mem::replace(&mut self.console_framer, LineFramer::new(1));
                    let mut rest = &buf[..n];
                    while !rest.is_empty() {
                        let (used, frame) = framer.feed(rest);
                        rest = &rest[used..];
                        let reply = Audience::One(STDIN);
                        match frame {
                            Some(Frame::Line(line)) => {
                                self.core.console_line(STDIN, line, now, &mut self.shell)
                            }
                            Some(Frame::TooLong) => self
                                .shell
                                .console(reply, format_args!("error: command line too long")),
                            Some(Frame::BadUtf8) => self
                                .shell
                                .console(reply, format_args!("error: command is not UTF-8")),
                            None => {}
                        }
                    }
                    self.console_framer = framer;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("console read failed: {e}");
                    self.console_closed(now);
                    return;
                }
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
