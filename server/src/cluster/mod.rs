//! The cluster: one room served by several servers that share it through Redis.
//!
//! The reactor stays single-threaded for its sockets and never waits for Redis. Two bridge
//! threads own the Redis connections: the *writer* (`writer.rs`) appends the core's events to
//! the room's log, claims and frees names, beats the heartbeat and reaps dead servers; the
//! *reader* (`reader.rs`) follows the log with blocking `XREAD`s on its own connection. Both
//! hand what they learn to the reactor through one bounded channel and a [`mio::Waker`]; the
//! reactor hands the core's requests to the writer through a channel whose bytes are counted
//! ([`QUEUE_LIMIT`]): past it the server counts itself cut off rather than grow.
//!
//! Guarantees come from Redis: one stream per room is the order of everything (each server's
//! events are appended by one connection, in order, with a per-server sequence number that makes
//! a retried batch idempotent), names are claimed atomically in a hash, and the heartbeat's
//! sorted set says who is alive (see `scripts.rs` for every key).
//!
//! # Layout
//! - [`event`]: the events, their stream encoding and the messages core <-> bridge.
//! - `scripts`: the Lua scripts that change the shared state atomically.
//! - `writer`, `reader`: the two bridge threads.

pub mod event;
mod reader;
mod scripts;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event::{FromBridge, ToBridge};

pub use crate::config::{ClusterConfig, DEFAULT_ROOM, DEFAULT_TIMEOUT_SECS, MIN_TIMEOUT_SECS};
/// About how many entries the room's log keeps (`XADD ... MAXLEN ~`): the catch-up window after
/// an outage and the depth the history is seeded from.
pub const LOG_MAXLEN: usize = 100_000;
/// Bytes of requests that may wait for Redis; past it the server counts itself cut off.
pub const QUEUE_LIMIT: usize = 32 * 1024 * 1024;
/// Messages from the bridge that may wait for the reactor (each holds at most
/// [`READ_COUNT`] entries, so at most about 16 x 500 x 4 KiB = 32 MiB of lines at the longest
/// `--max-line`, usually far less); the reader waits (and Redis keeps the log) past it.
pub const INBOX_CAPACITY: usize = 16;
/// Entries read in one `XREAD`.
pub const READ_COUNT: usize = 500;
/// Events appended in one script call.
const BATCH: usize = 512;
/// How often the writer drops forget records older than `--remember` from Redis (and once at
/// every join): one `HGETALL` of the `members` hash, at most `MAX_REMEMBERED`-ish entries.
pub const PRUNE_FORGETS_INTERVAL: Duration = Duration::from_secs(3600);
/// Messages from the bridge the reactor handles in one round before it serves sockets again.
pub const INBOX_PER_ROUND: usize = 64;

impl ClusterConfig {
    fn key(&self, what: &str) -> String {
        format!("chat:{{{}}}:{what}", self.room)
    }
}

/// Where the reader starts: the snapshot of the writer's latest join.
#[derive(Debug, Default)]
struct ReadFrom {
    /// 0 until the first join.
    epoch: u64,
    /// The server's id in this epoch (its own entries are skipped).
    server: String,
    /// The log id the snapshot was taken at.
    id: String,
}

/// State the reactor and both threads share.
#[derive(Debug)]
struct Shared {
    read_from: Mutex<ReadFrom>,
    /// Bytes of [`ToBridge`] messages sent and not yet taken by the writer.
    queued: AtomicUsize,
    /// The reactor overflowed the queue: the writer leaves the room and joins again.
    reset: AtomicBool,
    /// The reactor is gone: both threads stop.
    stop: AtomicBool,
    /// The server is in the room: set by the writer when it joins, cleared by whoever cuts it
    /// off first (the writer, or the watchdog when the writer is stuck in a dead connection).
    joined: AtomicBool,
    /// When the last heartbeat got through, in ms since `base`.
    last_ok_ms: AtomicU64,
    base: Instant,
}

impl Shared {
    fn mark_ok(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ok_ms.store(ms, Ordering::Relaxed);
    }

    fn since_ok(&self) -> Duration {
        let ok = Duration::from_millis(self.last_ok_ms.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(ok)
    }

    /// Cuts the server off unless someone already did: the core is told once.
    fn cut_off(&self, to_core: &SyncSender<FromBridge>, waker: &mio::Waker, why: &str) -> bool {
        if !self.joined.swap(false, Ordering::SeqCst) {
            return false;
        }
        log::warn!("cluster: cut off: {why}");
        deliver(
            to_core,
            waker,
            FromBridge::Down {
                why: why.to_owned(),
            },
        );
        true
    }
}

/// The reactor's end of the bridge.
#[derive(Debug)]
pub struct Link {
    to_writer: Sender<ToBridge>,
    inbox: Receiver<FromBridge>,
    shared: Arc<Shared>,
    /// Answers the writer's last act on [`ToBridge::Leave`].
    left: Receiver<()>,
    /// Set when the queue overflowed; cleared by [`Link::take_overflow`].
    overflowed: bool,
}

impl Link {
    /// Starts both bridge threads; they wake the reactor through `waker`.
    pub fn start(config: ClusterConfig, waker: Arc<mio::Waker>) -> std::io::Result<Link> {
        // The URL is checked here, so a typo fails at start instead of looping on reconnects.
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("--cluster: {e}"))
        })?;
        let shared = Arc::new(Shared {
            read_from: Mutex::new(ReadFrom::default()),
            queued: AtomicUsize::new(0),
            reset: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            joined: AtomicBool::new(false),
            last_ok_ms: AtomicU64::new(0),
            base: Instant::now(),
        });
        let (to_writer, from_core) = mpsc::channel();
        let (to_core, inbox) = mpsc::sync_channel(INBOX_CAPACITY);
        let (left_tx, left) = mpsc::sync_channel(1);
        let w = writer::Writer::new(
            config.clone(),
            client.clone(),
            Arc::clone(&shared),
            from_core,
            to_core.clone(),
            Arc::clone(&waker),
            left_tx,
        );
        std::thread::Builder::new()
            .name("cluster-writer".into())
            .spawn(move || w.run())?;
        let (dog_shared, dog_core, dog_waker) =
            (Arc::clone(&shared), to_core.clone(), Arc::clone(&waker));
        let (timeout, period) = (config.timeout, config.heartbeat() / 2);
        std::thread::Builder::new()
            .name("cluster-watchdog".into())
            .spawn(move || {
                // A Redis that accepts connections but never answers can hold the writer in a
                // connection's setup, out of reach of its own timeouts: this thread still cuts
                // the server off in time.
                while !dog_shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(period);
                    if dog_shared.joined.load(Ordering::SeqCst) && dog_shared.since_ok() > timeout {
                        dog_shared.cut_off(&dog_core, &dog_waker, "Redis did not answer in time");
                    }
                }
            })?;
        let r = reader::Reader::new(config, client, Arc::clone(&shared), to_core, waker);
        std::thread::Builder::new()
            .name("cluster-reader".into())
            .spawn(move || r.run())?;
        Ok(Link {
            to_writer,
            inbox,
            shared,
            left,
            overflowed: false,
        })
    }

    /// Hands a request to the writer; past [`QUEUE_LIMIT`] it is dropped and the link marked
    /// overflowed (the reactor then cuts the server off).
    pub fn send(&mut self, msg: ToBridge) {
        let cost = msg.cost();
        if self.shared.queued.load(Ordering::Relaxed) + cost > QUEUE_LIMIT {
            if !self.overflowed {
                log::warn!("cluster: more than {QUEUE_LIMIT} bytes wait for Redis: cutting off");
                self.overflowed = true;
                self.shared.reset.store(true, Ordering::Relaxed);
            }
            return;
        }
        self.shared.queued.fetch_add(cost, Ordering::Relaxed);
        // The writer only stops with the reactor: a failed send has nobody to tell.
        let _ = self.to_writer.send(msg);
    }

    /// Whether the queue overflowed since the last call.
    pub fn take_overflow(&mut self) -> bool {
        std::mem::take(&mut self.overflowed)
    }

    /// The next message from the bridge, if any.
    pub fn try_recv(&self) -> Option<FromBridge> {
        self.inbox.try_recv().ok()
    }

    /// Asks the writer to leave the room (members announced gone, names freed) after what it
    /// already has; [`Link::wait_left`] waits for it.
    pub fn leave(&mut self) {
        let _ = self.to_writer.send(ToBridge::Leave);
    }

    /// Waits at most `within` for the writer to have left the room, then stops both threads.
    pub fn wait_left(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let _ = self
            .left
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends to the reactor and wakes it; false when the reactor is gone.
fn deliver(to_core: &SyncSender<FromBridge>, waker: &mio::Waker, msg: FromBridge) -> bool {
    if to_core.send(msg).is_err() {
        return false;
    }
    if let Err(e) = waker.wake() {
        log::warn!("cluster: cannot wake the reactor: {e}");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_reaches_a_log() {
        let c = ClusterConfig {
            url: "redis://:s3cret@db.example:6380/2".into(),
            room: "chat".into(),
            timeout: Duration::from_secs(5),
            history: 50,
            name: "test".to_owned(),
            keep_forgets: crate::config::MIN_KEEP_FORGETS,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.example:6380/2"), "{shown}");
        assert_eq!(c.key("log"), "chat:{chat}:log");
    }
}
