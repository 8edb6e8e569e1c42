//! Where line mode's rendered lines go: standard output, one whole line at a time. Each line is
//! rendered into a `termcolor::Buffer` (ANSI or no-color, decided once by the configuration) and
//! written in one piece, flushed per line. This module decides nothing about how a line looks
//! (that is `render.rs`) and never reads anything.

use std::io::{self, Write};

use termcolor::Buffer;

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
