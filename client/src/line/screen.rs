//! Where line mode's rendered lines go: standard output, one whole line at a time. Each line is
//! rendered into a `termcolor::Buffer` (ANSI or no-color, decided once by the configuration) and
//! written in one piece, flushed per line. This module decides nothing about how a line looks
//! (that is `render.rs`) and never reads anything.

use std::io::{self, Write};

use termcolor::Buffer;

/// Home, erase the screen, erase the scrollback (xterm's `E3`, which every current terminal
/// and tmux understand).
pub const CLEAR: &[u8] = b"\x1b[H\x1b[2J\x1b[3J";

/// An output for whole rendered lines.
#[derive(Debug)]
pub struct Screen {
    /// Whether lines are rendered with color and style sequences.
    colors: bool,
}

impl Screen {
    /// Lines go to standard output.
    pub fn stdout(colors: bool) -> Self {
        Screen { colors }
    }

    /// A fresh buffer of the configured kind.
    pub fn buffer(&self) -> Buffer {
        if self.colors {
            Buffer::ansi()
        } else {
            Buffer::no_color()
        }
    }

    /// `/clear` on a terminal: the standard escapes that erase the screen and the terminal's
    /// scrollback (`ESC [ H ESC [ 2J ESC [ 3J`), written only when standard output is a
    /// terminal (a pipe or a file never gets an escape sequence); returns whether it was.
    pub fn clear(&mut self) -> bool {
        use std::io::IsTerminal;
        let mut out = io::stdout().lock();
        if !out.is_terminal() {
            return false;
        }
        let _ = out.write_all(CLEAR).and_then(|()| out.flush());
        true
    }

    /// Renders with `render` and shows the result in one piece.
    pub fn show<F>(&mut self, render: F) -> io::Result<()>
    where
        F: FnOnce(&mut Buffer) -> io::Result<()>,
    {
        let mut buffer = self.buffer();
        render(&mut buffer)?;
        let bytes = buffer.into_inner();
        if bytes.is_empty() {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()
    }
}
