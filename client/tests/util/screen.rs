//! The real `chat-client` in a pseudo-terminal that is its controlling terminal (so a resize
//! reaches it as SIGWINCH), with what it draws read back by a terminal emulator (`vt100`), so
//! tests assert on the rows a person would see. Every wait has a deadline ([`PTY_TIMEOUT`]:
//! generous, for a loaded machine); the child is killed when the guard drops.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

use super::client_bin;

/// How long any one expected screen may take to appear.
pub const PTY_TIMEOUT: Duration = Duration::from_secs(20);

/// A terminal emulator fed by the client, and everything the client wrote.
struct Shared {
    parser: vt100::Parser,
    raw: Vec<u8>,
    closed: bool,
}

/// The client running in a pseudo-terminal.
pub struct Screen {
    child: Box<dyn Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    shared: Arc<Mutex<Shared>>,
    /// One message per chunk the client wrote.
    changed: Receiver<()>,
    /// The client's configuration directory (`CHAT_CONFIG_DIR`) unless `envs` named one, so a
    /// test never writes the user's `known_servers` or session tokens.
    _config: tempfile::TempDir,
}

impl Screen {
    /// Starts `chat-client ARGS` in a `rows` x `cols` terminal with `TERM=xterm-256color`,
    /// `NO_COLOR` removed unless `envs` sets it, and `TZ=UTC`.
    pub fn start(args: &[&str], envs: &[(&str, &str)], rows: u16, cols: u16) -> Self {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(client_bin());
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("TZ", "UTC");
        cmd.env_remove("NO_COLOR");
        let config = tempfile::tempdir().unwrap();
        cmd.env("CHAT_CONFIG_DIR", config.path());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).unwrap();
        // Our copy of the slave end must go, so reads end when the client exits.
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            parser: vt100::Parser::new(rows, cols, 0),
            raw: Vec::new(),
            closed: false,
        }));
        let (tx, changed) = mpsc::channel();
        let feed = Arc::clone(&shared);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                let n = match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                {
                    let mut s = feed.lock().unwrap();
                    if n == 0 {
                        s.closed = true;
                    } else {
                        s.parser.process(&chunk[..n]);
                        s.raw.extend_from_slice(&chunk[..n]);
                    }
                }
                if tx.send(()).is_err() || n == 0 {
                    return;
                }
            }
        });
        Screen {
            child,
            master: pair.master,
            writer,
            shared,
            changed,
            _config: config,
        }
    }

    /// The rows on the screen now, trailing spaces kept as the emulator gives them.
    pub fn rows(&self) -> Vec<String> {
        let s = self.shared.lock().unwrap();
        let (_, cols) = s.parser.screen().size();
        s.parser.screen().rows(0, cols).collect()
    }

    /// Where the terminal's cursor is: row and column, from 0.
    pub fn cursor(&self) -> (u16, u16) {
        self.shared
            .lock()
            .unwrap()
            .parser
            .screen()
            .cursor_position()
    }

    /// Waits until the cursor is at `at` (row, column); returns the rows then.
    #[track_caller]
    pub fn wait_cursor(&self, what: &str, at: (u16, u16)) -> Vec<String> {
        let deadline = Instant::now() + PTY_TIMEOUT;
        loop {
            if self.cursor() == at {
                return self.rows();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self
                .changed
                .recv_timeout(left.min(Duration::from_millis(200)));
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for the cursor at {at:?} ({what}); it is at {:?} on:\n{}",
                    self.cursor(),
                    self.rows().join("\n")
                );
            }
        }
    }

    /// Everything the client wrote so far, escape sequences included.
    pub fn raw(&self) -> Vec<u8> {
        self.shared.lock().unwrap().raw.clone()
    }

    /// Waits until the screen satisfies `pred`; returns its rows then.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + PTY_TIMEOUT;
        loop {
            let rows = self.rows();
            if pred(&rows) {
                return rows;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // A change, or at most a short while (the screen may already hold it).
            let _ = self
                .changed
                .recv_timeout(left.min(Duration::from_millis(200)));
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}; the screen shows:\n{}",
                    self.rows().join("\n")
                );
            }
        }
    }

    /// Waits until the bytes written so far satisfy `pred`.
    #[track_caller]
    pub fn wait_raw(&self, what: &str, pred: impl Fn(&[u8]) -> bool) {
        let deadline = Instant::now() + PTY_TIMEOUT;
        while !pred(&self.raw()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self
                .changed
                .recv_timeout(left.min(Duration::from_millis(200)));
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
        }
    }

    /// Waits until some row contains `needle`; returns the rows.
    #[track_caller]
    pub fn wait_text(&self, needle: &str) -> Vec<String> {
        self.wait_for(&format!("{needle:?} on the screen"), |rows| {
            rows.iter().any(|r| r.contains(needle))
        })
    }

    /// Types keys (raw bytes: `\r` is Enter, `\x03` is Ctrl-C).
    pub fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Pastes `text` the way a terminal does with bracketed paste on.
    pub fn paste(&mut self, text: &str) {
        self.keys(&format!("\x1b[200~{text}\x1b[201~"));
    }

    /// Resizes the terminal (the client gets SIGWINCH) and the emulator.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.shared.lock().unwrap().parser.set_size(rows, cols);
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    /// Waits for the client to exit; returns its status.
    #[track_caller]
    pub fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + PTY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "client did not exit; the screen shows:\n{}",
                self.rows().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the client is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
