//! Healthy members: a sender and receivers, all logged in, chatting in the background while a
//! test abuses the server; [`Healthy::finish`] checks that every receiver got the whole
//! sequence, in order, whatever else happened meanwhile.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::client::{Client, End};
use crate::server::Server;
use crate::TIMEOUT;

/// How long a healthy member may go without a line before its check fails: the sender sends
/// every few milliseconds, so silence this long means the server stopped serving it.
const HEALTHY_SILENCE: Duration = Duration::from_secs(15);
/// Pause between two healthy messages: 40 per second, under the default `--rate` of 50, so the
/// server never has to pace the sender and its last message arrives promptly.
const HEALTHY_INTERVAL: Duration = Duration::from_millis(25);
/// Shortest run of the healthy sender, so that every check covers a few dozen messages.
const HEALTHY_MIN_RUN: Duration = Duration::from_millis(500);

/// A sender and some receivers, all members, chatting in the background while a test abuses the
/// server. The sender sends `hseq 0`, `hseq 1`, ... until [`Healthy::finish`], then `hend N`;
/// each receiver checks it gets exactly `0..N` in order, whatever else happens meanwhile.
#[derive(Debug)]
pub struct Healthy {
    stop: Arc<AtomicBool>,
    /// Set once the receivers are done: the sender may close.
    release: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    started: Instant,
    sender: Option<JoinHandle<Result<u64, String>>>,
    receivers: Vec<(String, Receiver)>,
}

/// A receiver's thread: its other lines, or what went wrong.
type Receiver = JoinHandle<Result<Vec<String>, String>>;

/// What the healthy members saw besides their sequence: `JOIN`/`LEAVE` lines, per receiver.
#[derive(Debug)]
pub struct HealthReport {
    /// Messages the sender sent (and every receiver got, in order).
    pub sent: u64,
    /// Per receiver (name, lines other than the sequence).
    pub others: Vec<(String, Vec<String>)>,
}

impl HealthReport {
    /// Whether every receiver saw exactly `line` among its other lines.
    pub fn all_saw(&self, line: &str) -> bool {
        self.others
            .iter()
            .all(|(_, lines)| lines.iter().any(|l| l == line))
    }

    /// Whether any receiver saw a line starting with `prefix`.
    pub fn any_saw_prefix(&self, prefix: &str) -> bool {
        self.others
            .iter()
            .any(|(_, lines)| lines.iter().any(|l| l.starts_with(prefix)))
    }
}

impl Healthy {
    /// Logs in `{prefix}0` (the sender) and `{prefix}1..=receivers` on an auto-approving server
    /// and starts them.
    #[track_caller]
    pub fn start(server: &Server, prefix: &str, receivers: usize) -> Healthy {
        let clients: Vec<Client> = (0..=receivers)
            .map(|i| server.login(&format!("{prefix}{i}")))
            .collect();
        Healthy::run(clients)
    }

    /// Starts members already logged in: the first is the sender, the rest receive.
    pub fn run(mut clients: Vec<Client>) -> Healthy {
        assert!(clients.len() >= 2, "a sender and at least one receiver");
        let stop = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut sender = clients.remove(0);
        let sender_name = sender.name.clone();
        let receivers = clients
            .into_iter()
            .map(|c| {
                let name = c.name.clone();
                let from = sender_name.clone();
                (name, thread::spawn(move || receive(c, &from)))
            })
            .collect();
        let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
        let release2 = Arc::clone(&release);
        let sender = thread::spawn(move || {
            let mut seq = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                sender
                    .stream()
                    .write_all(format!("hseq {seq}\n").as_bytes())
                    .map_err(|e| format!("sender cannot send hseq {seq}: {e}"))?;
                seq += 1;
                sent2.store(seq, Ordering::Relaxed);
                // Reading what others send (JOIN/LEAVE, floods) keeps the sender's own queue
                // short; reading until the next send time is the pacing.
                let next = Instant::now() + HEALTHY_INTERVAL;
                loop {
                    let left = next.saturating_duration_since(Instant::now());
                    if left.is_zero() || sender.try_next_line(left).is_err() {
                        break;
                    }
                }
            }
            sender
                .stream()
                .write_all(format!("hend {seq}\n").as_bytes())
                .map_err(|e| format!("sender cannot send hend: {e}"))?;
            // Keep the connection open until the receivers are done (dropping it would be a
            // LEAVE in their streams, which is fine, but a reset could lose the last line).
            while !release2.load(Ordering::Relaxed) {
                if let Err(End::Eof | End::Error(_)) = sender.try_next_line(HEALTHY_INTERVAL) {
                    break;
                }
            }
            Ok(seq)
        });
        Healthy {
            stop,
            release,
            sent,
            started: Instant::now(),
            sender: Some(sender),
            receivers,
        }
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until at least `more` further messages were sent, proving the sender runs.
    #[track_caller]
    pub fn wait_progress(&self, more: u64) {
        let target = self.sent() + more;
        let deadline = Instant::now() + TIMEOUT;
        while self.sent() < target {
            assert!(Instant::now() < deadline, "the healthy sender is stuck");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the sender and checks every receiver got the whole sequence in order.
    #[track_caller]
    pub fn finish(mut self) -> HealthReport {
        // A fault that was over in milliseconds would leave the check with next to nothing:
        // the sender runs for at least half a second in all.
        let floor = self.started + HEALTHY_MIN_RUN;
        thread::sleep(floor.saturating_duration_since(Instant::now()));
        self.stop.store(true, Ordering::Relaxed);
        let mut others = Vec::new();
        let mut failures = Vec::new();
        for (name, handle) in self.receivers.drain(..) {
            match handle.join() {
                Ok(Ok(lines)) => others.push((name, lines)),
                Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                Err(_) => failures.push(format!("{name}: receiver panicked")),
            }
        }
        // The receivers are done: let the sender's connection go.
        self.release.store(true, Ordering::Relaxed);
        let sent = match self.sender.take().map(JoinHandle::join) {
            Some(Ok(Ok(n))) => n,
            Some(Ok(Err(e))) => {
                failures.push(e);
                0
            }
            _ => {
                failures.push("sender panicked".into());
                0
            }
        };
        assert!(
            failures.is_empty(),
            "healthy members were disturbed: {failures:#?}"
        );
        // Each receiver's last "other" entry is its `hend N` marker.
        for (name, lines) in &mut others {
            let end = lines.pop().unwrap_or_default();
            assert_eq!(end, format!("hend {sent}"), "{name} saw the wrong end");
        }
        assert!(sent > 0, "the healthy sender sent nothing");
        HealthReport { sent, others }
    }
}

/// A healthy receiver: every `MSG from - hseq N` must come in order from 0; ends at `hend`.
/// Returns the lines that were not part of the sequence, then `hend N` last.
fn receive(mut c: Client, from: &str) -> Result<Vec<String>, String> {
    let seq_prefix = format!("MSG {from} - hseq ");
    let end_prefix = format!("MSG {from} - hend ");
    let mut next = 0u64;
    let mut others = Vec::new();
    loop {
        let line = match c.try_next_line(HEALTHY_SILENCE) {
            Ok(line) => line,
            Err(end) => {
                return Err(format!(
                    "after hseq {next}: {end:?}; other lines so far {others:?}"
                ))
            }
        };
        if let Some(n) = line.strip_prefix(&seq_prefix) {
            let n: u64 = n.parse().map_err(|_| format!("bad line {line:?}"))?;
            if n != next {
                return Err(format!("expected hseq {next}, got {line:?}"));
            }
            next += 1;
        } else if let Some(n) = line.strip_prefix(&end_prefix) {
            let n: u64 = n.parse().map_err(|_| format!("bad line {line:?}"))?;
            if n != next {
                return Err(format!("hend {n} after only {next} messages"));
            }
            others.push(format!("hend {n}"));
            return Ok(others);
        } else if line.starts_with("JOIN ") || line.starts_with("LEAVE ") {
            others.push(line);
        } else if line.starts_with("MSG ") {
            // Another member's room traffic (a flood under test): not this check's business.
        } else {
            return Err(format!("unexpected line {line:?}"));
        }
    }
}

impl Drop for Healthy {
    fn drop(&mut self) {
        // A test that failed before `finish`: let the threads end on their own.
        self.stop.store(true, Ordering::Relaxed);
        self.release.store(true, Ordering::Relaxed);
    }
}
