//! Where rendered lines go. Each line is rendered whole into a `termcolor::Buffer` (ANSI or
//! no-color, decided once by the configuration) and handed over in one piece: to standard
//! output, flushed per line, or to the line editor's `ExternalPrinter`, which prints it above
//! the line being typed without garbling it. This module decides nothing about how a line looks
//! (that is `render.rs`) and never reads anything.

use std::io::{self, Write};

use rustyline::ExternalPrinter;
use termcolor::Buffer;

/// An output for whole rendered lines.
pub struct Screen {
    /// Whether lines are rendered with color and style sequences.
    colors: bool,
    sink: Sink,
}

enum Sink {
    Stdout,
    /// The editor's printer: prints above the prompt while a line is being edited, straight to
    /// the terminal otherwise.
    Printer(Box<dyn ExternalPrinter + Send>),
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sink = match self.sink {
            Sink::Stdout => "stdout",
            Sink::Printer(_) => "printer",
        };
        f.debug_struct("Screen")
            .field("colors", &self.colors)
            .field("sink", &sink)
            .finish()
    }
}

impl Screen {
    /// Lines go to standard output.
    pub fn stdout(colors: bool) -> Self {
        Screen {
            colors,
            sink: Sink::Stdout,
        }
    }

    /// Lines go through the editor's printer.
    pub fn printer(colors: bool, printer: Box<dyn ExternalPrinter + Send>) -> Self {
        Screen {
            colors,
            sink: Sink::Printer(printer),
        }
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
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&bytes)?;
                out.flush()
            }
            Sink::Printer(printer) => printer
                // Rendered text is built from &str and ASCII sequences: always UTF-8.
                .print(String::from_utf8_lossy(&bytes).into_owned())
                .map_err(io::Error::other),
        }
    }
}
