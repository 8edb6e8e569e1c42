//! A child process's output (a server's console, a client binary's screen) read line by line
//! by a thread, so a test can wait for a line with a deadline instead of blocking on a pipe.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::TIMEOUT;

/// Lines read from `source` by a thread, as a channel (each without its LF, lossily decoded, so
/// a stray CR or ESC stays visible). The thread ends at end of file or when the receiver is
/// dropped.
pub fn pipe_lines<R: Read + Send + 'static>(source: R) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    if tx.send(text).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// A child's output as lines, with every line received kept for failure messages.
#[derive(Debug)]
pub struct PipeLines {
    rx: Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
    /// How long one wait may take.
    timeout: Duration,
}

impl PipeLines {
    /// Reads `source` line by line on a thread; each wait takes at most [`TIMEOUT`].
    pub fn spawn<R: Read + Send + 'static>(source: R) -> PipeLines {
        PipeLines::with_timeout(source, TIMEOUT)
    }

    /// The same with another deadline per wait (a full-screen client under a pty is slower to
    /// answer than a server).
    pub fn with_timeout<R: Read + Send + 'static>(source: R, timeout: Duration) -> PipeLines {
        PipeLines {
            rx: pipe_lines(source),
            seen: Vec::new(),
            timeout,
        }
    }

    /// Waits up to its timeout for a line that satisfies `pred` (`what` names it in the failure
    /// message), skipping others; returns it.
    #[track_caller]
    pub fn expect_by(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out waiting for {what:?}; seen: {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("output ended before {what:?}; seen: {:#?}", self.seen)
                }
            }
        }
    }

    /// Waits for a line containing `what`.
    #[track_caller]
    pub fn expect(&mut self, what: &str) -> String {
        self.expect_by(what, |line| line.contains(what))
    }

    /// Every line until the output ends (within its timeout), all lines seen included.
    #[track_caller]
    pub fn rest(&mut self) -> Vec<String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return self.seen.clone(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("output did not end; seen: {:#?}", self.seen)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_cr_and_end_with_the_source() {
        let mut lines = PipeLines::spawn(&b"one\r\ntwo\nthree"[..]);
        assert_eq!(lines.expect("two"), "two");
        assert_eq!(lines.rest(), ["one\r", "two", "three"]);
    }
}
