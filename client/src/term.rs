//! The terminal's settings as they were at start, so the network thread can put them back
//! before it ends the process while the line editor holds the terminal in raw mode (the editor
//! cannot be woken from another thread, so it never gets to restore them itself). Used only
//! when standard input and output are terminals; it never changes the settings otherwise.

use std::io::{self, Write};

use nix::sys::termios::{tcgetattr, tcsetattr, SetArg, Termios};

/// Turns bracketed paste off (the editor turns it on while editing), returns to the start of
/// the line and erases the half-typed prompt line.
const LEAVE_EDITOR: &[u8] = b"\x1b[?2004l\r\x1b[K";

/// Standard input's terminal settings, captured before the editor first changed them.
#[derive(Debug, Clone)]
pub struct SavedTerminal {
    termios: Termios,
}

impl SavedTerminal {
    /// Captures the settings of standard input, when it is a terminal.
    pub fn capture() -> Option<Self> {
        tcgetattr(io::stdin())
            .ok()
            .map(|termios| SavedTerminal { termios })
    }

    /// Puts the captured settings back and clears the line being edited. Best effort: the
    /// process is about to exit, and there is nobody left to tell about a failure.
    pub fn restore(&self) {
        let _ = tcsetattr(io::stdin(), SetArg::TCSANOW, &self.termios);
        let mut out = io::stdout().lock();
        let _ = out.write_all(LEAVE_EDITOR);
        let _ = out.flush();
    }
}
