//! The durable store (`--data-dir`): the room's log, remembered members and bans, kept on disk
//! by a thread of its own so that the loop never waits for a disk.
//!
//! The core decides; the store only keeps and reads. The loop gathers a round's writes (the
//! messages it relayed, members it remembered or forgot, bans) with [`Store::append`] and
//! [`Store::write`], and hands them over once per round ([`Store::flush_round`]) through a
//! bounded channel; the disk thread applies everything that is waiting in one redb transaction
//! whose commit is an fsync (so one flush serves every message of a round, and of several rounds
//! when the disk is slower than the room), then answers [`Answer::Durable`] through the
//! reactor's inbox and its [`mio::Waker`], as the cluster's threads do. Only then may the core
//! deliver those messages: durable before delivered.
//!
//! A failing disk is never silent: a commit that fails answers [`Answer::Failed`] for its
//! batches (the core refuses them: `ERROR unavailable`) and [`Answer::Down`] once; the thread
//! then reopens the database and retries every second, keeping the member and ban records that
//! did not land, and answers [`Answer::Up`] when a commit goes through again. Nothing already
//! committed is ever rewritten or dropped, except by pruning (`--retain`).
//!
//! `--data-dir none` runs the same thread over a plain in-memory log (`memory`, bounded by
//! [`MAX_LOG_ENTRIES_IN_MEMORY`]) instead of redb: nothing outlives the process, as in version
//! 2, and the core delivers messages at once (there is no disk to wait for) while still logging
//! them for resume replays. (redb's own in-memory backend cost a third of the server's CPU at
//! fan-out: B-tree pages copied on every commit, for durability nobody gets.)
//!
//! # Layout
//! - `lock`: one server per directory (`flock`, the holder named).
//! - `db`: the tables and every read and write, synchronous.
//! - `memory`: the same in plain memory for `--data-dir none`.
//! - `disk`: the disk thread.

mod db;
mod disk;
mod lock;
mod memory;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

pub use crate::chat::durable::{Entry, Kind, MemberRecord, Write};
pub use crate::chat::msgid::{new_epoch, MsgId};
pub use db::{Loaded, DB_FILE, FORMAT, UNKNOWN_BAN_AUTHOR};
pub use lock::{DirLock, LockError, LOCK_FILE};

/// Default `--retain`, in days: how long room messages are kept for resumes.
pub const DEFAULT_RETAIN_DAYS: f64 = 7.0;
/// Requests (each a round's writes, or a read) that may wait for the disk thread; past it the
/// room refuses messages (`ERROR unavailable`) rather than grow.
pub const REQUEST_CAPACITY: usize = 1024;
/// Bytes of log entries that may wait for the disk thread; past it a round's messages are not
/// taken (refused on disk, not logged in memory), so a slow disk never costs unbounded memory.
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// Answers that may wait for the loop; the disk thread waits past it.
pub const ANSWER_CAPACITY: usize = 1024;
/// Requests the disk thread folds into one commit at most.
pub const MAX_REQUESTS_PER_COMMIT: usize = 256;
/// How often a failed store tries again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Log entries kept at most, whatever `--retain` says: bounds the file, and the memory of
/// `--data-dir none`.
pub const MAX_LOG_ENTRIES: u64 = 1_000_000;
/// Log entries kept at most with `--data-dir none` (at most 4 KiB each: the log then costs at
/// most about 16 MiB of memory, copy-on-write pages included).
pub const MAX_LOG_ENTRIES_IN_MEMORY: u64 = 2_000;
/// Entries appended between prunes beyond the timed ones, so the count bound holds between
/// them: a quarter of the in-memory bound, a tenth of the on-disk one.
pub const PRUNE_EVERY_ENTRIES_IN_MEMORY: u64 = MAX_LOG_ENTRIES_IN_MEMORY / 4;
/// See [`PRUNE_EVERY_ENTRIES_IN_MEMORY`].
pub const PRUNE_EVERY_ENTRIES: u64 = MAX_LOG_ENTRIES / 10;
/// redb's page cache (its default is 1 GiB): the log is written far more than read.
pub const CACHE_BYTES: usize = 4 * 1024 * 1024;
/// Private messages are kept at least this long, whatever the resume window (a window of 0
/// still lets a reconnect within seconds find them).
pub const MIN_KEEP_PRIVATES: Duration = Duration::from_secs(60);
/// How often old entries are pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataDir {
    /// `--data-dir none`: in memory, gone with the process.
    Memory,
    /// A directory (created, mode 0700, if missing).
    Path(PathBuf),
}

impl DataDir {
    /// The default: `$XDG_STATE_HOME/chat-server`, else `~/.local/state/chat-server`; in
    /// memory when neither variable is set.
    pub fn default_dir() -> DataDir {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(state) = var("XDG_STATE_HOME").filter(|p| p.is_absolute()) {
            return DataDir::Path(state.join("chat-server"));
        }
        match var("HOME") {
            Some(home) => DataDir::Path(home.join(".local/state/chat-server")),
            None => DataDir::Memory,
        }
    }

    /// Parses `--data-dir`: `none` or a path.
    pub fn parse(s: &str) -> DataDir {
        if s == "none" {
            DataDir::Memory
        } else {
            DataDir::Path(PathBuf::from(s))
        }
    }
}

impl fmt::Display for DataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataDir::Memory => f.write_str("none (in memory)"),
            DataDir::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why the store could not start or keep going.
#[derive(Debug)]
pub enum StoreError {
    /// The data directory could not be created or used.
    Dir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// Another server holds the directory.
    Lock(LockError),
    /// The database file is not a database this server can read; it is left as it is.
    Corrupt(String),
    /// A disk operation failed.
    Disk(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Dir { path, error } => {
                write!(f, "data directory {}: {error}", path.display())
            }
            StoreError::Lock(e) => e.fmt(f),
            StoreError::Corrupt(what) => write!(
                f,
                "the store is corrupt ({what}); it was left untouched: move it aside or restore a \
                 copy"
            ),
            StoreError::Disk(what) => write!(f, "store: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The store's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Where (`--data-dir`).
    pub dir: DataDir,
    /// How long room messages are kept (`--retain`).
    pub retain: Duration,
    /// How long private messages are kept (the resume window).
    pub keep_privates: Duration,
    /// How long a member is remembered after its last session (`--remember`).
    pub remember: Duration,
    /// How many recent room messages to load at start (`--history`).
    pub history: usize,
}

/// Counters the metrics and the bench read; updated by the disk thread.
#[derive(Debug, Default)]
pub struct Stats {
    /// Commits (fsyncs) done.
    pub flushes: AtomicU64,
    /// Log entries made durable.
    pub durable: AtomicU64,
    /// Total time spent in commits, in microseconds.
    pub flush_micros: AtomicU64,
    /// Commits that failed.
    pub failures: AtomicU64,
    /// Bytes of log entries handed to the disk thread and not yet committed.
    pub queued_bytes: std::sync::atomic::AtomicUsize,
}

/// A request to the disk thread.
#[derive(Debug)]
enum Request {
    /// A round's writes: answer `Durable { batch }` once committed.
    Commit {
        batch: u64,
        writes: Vec<Write>,
        next_seq: u64,
    },
    /// Read entries after a sequence number, or after the message `find` (an origin's id,
    /// `--cluster`) wherever it is kept (`after`: its number if it is of this log's epoch).
    Read {
        request: u64,
        after: Option<u64>,
        find: Option<String>,
        max: usize,
    },
}

/// What the disk thread tells the loop.
#[derive(Debug)]
pub enum Answer {
    /// Every write of this batch (and of every earlier one) is on disk.
    Durable {
        /// The batch number [`Store::flush_round`] returned.
        batch: u64,
    },
    /// This batch could not be made durable: its messages must not be delivered.
    Failed {
        /// The batch.
        batch: u64,
    },
    /// The disk failed: say so to the consoles and the log; refuse messages until `Up`.
    Down {
        /// What failed, for people.
        why: String,
    },
    /// The disk works again.
    Up,
    /// Entries read for a [`Store::read`].
    Page {
        /// The number `read` returned.
        request: u64,
        /// The entries, oldest first.
        entries: Vec<Entry>,
        /// Whether more follow the last one.
        more: bool,
        /// The oldest sequence number still kept (to tell a gap).
        first_seq: Option<u64>,
        /// The message the read was to start after (`find`) is not kept here (the page starts
        /// at the oldest entry kept), or some entry after it no longer is.
        missing: bool,
    },
}

/// An opened store whose disk thread has not started yet (the reactor starts it with its
/// waker).
#[derive(Debug)]
pub struct Opened {
    db: db::Db,
    lock: Option<DirLock>,
    path: Option<PathBuf>,
    config: StoreConfig,
    epoch: u32,
    next_seq: u64,
    /// What the store held (take it with `std::mem::take`; the ids go on from it regardless).
    pub loaded: Loaded,
}

/// Opens the store: creates and locks the directory, opens the database (redb repairs one left
/// by a crash), and loads what start needs. Runs before the loop, on the main thread.
pub fn open(config: StoreConfig) -> Result<Opened, StoreError> {
    let (db, lock, path) = match &config.dir {
        DataDir::Memory => (db::Db::in_memory()?, None, None),
        DataDir::Path(dir) => {
            create_dir(dir)?;
            let lock = DirLock::acquire(dir).map_err(StoreError::Lock)?;
            let path = dir.join(DB_FILE);
            (db::Db::open(&path)?, Some(lock), Some(path))
        }
    };
    let loaded = db.load(config.history)?;
    Ok(Opened {
        db,
        lock,
        path,
        config,
        epoch: loaded.epoch,
        next_seq: loaded.next_seq,
        loaded,
    })
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |error| StoreError::Dir {
        path: dir.to_owned(),
        error,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    if !dir.is_dir() {
        return Err(err(std::io::Error::other("not a directory")));
    }
    Ok(())
}

impl Opened {
    /// Whether the store is on disk (not `--data-dir none`).
    pub fn on_disk(&self) -> bool {
        self.path.is_some()
    }

    /// Starts the disk thread; it wakes the loop through `waker`.
    pub fn start(self, waker: Arc<mio::Waker>) -> std::io::Result<Store> {
        let (tx, rx) = mpsc::sync_channel(REQUEST_CAPACITY);
        let (answer_tx, inbox) = mpsc::sync_channel(ANSWER_CAPACITY);
        let stats = Arc::new(Stats::default());
        let thread = disk::Disk {
            db: Some(self.db),
            path: self.path,
            requests: rx,
            answers: answer_tx,
            waker,
            stats: Arc::clone(&stats),
            retry: Vec::new(),
            down: false,
        };
        let handle = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || thread.run())?;
        Ok(Store {
            tx: Some(tx),
            inbox,
            stats,
            epoch: self.epoch,
            next_seq: self.next_seq,
            pending: Vec::new(),
            pending_entries: Vec::new(),
            next_batch: 1,
            next_request: 1,
            appended: 0,
            config: self.config,
            _lock: self.lock,
            thread: Some(handle),
        })
    }
}

/// The loop's end of the store.
#[derive(Debug)]
pub struct Store {
    tx: Option<SyncSender<Request>>,
    inbox: Receiver<Answer>,
    stats: Arc<Stats>,
    epoch: u32,
    /// The next sequence number to give (ids are given by the loop, in relay order).
    next_seq: u64,
    /// This round's writes other than log entries.
    pending: Vec<Write>,
    /// This round's log entries.
    pending_entries: Vec<Entry>,
    next_batch: u64,
    next_request: u64,
    /// Entries appended since the last prune.
    appended: u64,
    config: StoreConfig,
    _lock: Option<DirLock>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Store {
    /// The log's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The settings.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Gives the next message id, in relay order.
    pub fn next_id(&mut self) -> MsgId {
        let id = MsgId {
            epoch: self.epoch,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        id
    }

    /// Adds a log entry to this round's batch.
    pub fn append(&mut self, entry: Entry) {
        self.appended += 1;
        self.pending_entries.push(entry);
    }

    /// Adds a record write to this round's batch.
    pub fn write(&mut self, w: Write) {
        if let Write::Append(entries) = &w {
            self.appended += entries.len() as u64;
        }
        self.pending.push(w);
    }

    /// Whether enough entries were appended since the last prune that the count bound needs
    /// one now.
    pub fn prune_due(&self) -> bool {
        let every = match self.config.dir {
            DataDir::Memory => PRUNE_EVERY_ENTRIES_IN_MEMORY,
            DataDir::Path(_) => PRUNE_EVERY_ENTRIES,
        };
        self.appended >= every
    }

    /// Whether this round has anything to hand over.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.pending_entries.is_empty()
    }

    /// Hands this round's writes to the disk thread. `Ok(Some(batch))`: an
    /// [`Answer::Durable`] or [`Answer::Failed`] for `batch` follows; `Ok(None)`: nothing to
    /// hand over; `Err(batch)`: the disk thread is too far behind (or gone), so the batch was
    /// not taken and its messages must be refused.
    pub fn flush_round(&mut self) -> Result<Option<u64>, u64> {
        if !self.has_pending() {
            return Ok(None);
        }
        let batch = self.next_batch;
        self.next_batch += 1;
        let mut writes = std::mem::take(&mut self.pending);
        let bytes: usize = self.pending_entries.iter().map(Entry::cost).sum();
        if bytes > 0 && self.stats.queued_bytes.load(Ordering::Relaxed) + bytes > QUEUE_BYTES {
            self.pending_entries.clear();
            self.pending = writes;
            return Err(batch);
        }
        if !self.pending_entries.is_empty() {
            writes.push(Write::Append(std::mem::take(&mut self.pending_entries)));
        }
        self.stats.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        let request = Request::Commit {
            batch,
            writes,
            next_seq: self.next_seq,
        };
        match self.tx.as_ref().map(|tx| tx.try_send(request)) {
            Some(Ok(())) => Ok(Some(batch)),
            Some(Err(TrySendError::Full(Request::Commit { writes, .. }))) => {
                self.stats.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                // Keep the records (not the messages, which are refused) for the next round.
                self.pending.extend(
                    writes
                        .into_iter()
                        .filter(|w| !matches!(w, Write::Append(_))),
                );
                Err(batch)
            }
            _ => Err(batch),
        }
    }

    /// Asks for up to `max` entries after `after` (`None`: from the oldest kept), or, with
    /// `find`, after the entry logged with that origin's id (or at `after` under its own id),
    /// from the oldest kept when there is none (the page says `missing`); the answer is an
    /// [`Answer::Page`] with the returned number, or `None` when the disk thread cannot take
    /// the request now (ask again later).
    pub fn read(&mut self, after: Option<u64>, find: Option<&str>, max: usize) -> Option<u64> {
        let request = self.next_request;
        let tx = self.tx.as_ref()?;
        tx.try_send(Request::Read {
            request,
            after,
            find: find.map(str::to_owned),
            max,
        })
        .ok()?;
        self.next_request += 1;
        Some(request)
    }

    /// The next answer from the disk thread, if any.
    pub fn try_recv(&self) -> Option<Answer> {
        self.inbox.try_recv().ok()
    }

    /// Queues a prune of what `--retain`, the resume window and `--remember` no longer need,
    /// and of the bans that ended by `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        self.appended = 0;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let max_entries = match self.config.dir {
            DataDir::Memory => MAX_LOG_ENTRIES_IN_MEMORY,
            DataDir::Path(_) => MAX_LOG_ENTRIES,
        };
        self.write(Write::Prune {
            room_before_ms: now_ms.saturating_sub(ms(self.config.retain)),
            priv_before_ms: now_ms.saturating_sub(ms(self.config.keep_privates)),
            members_before_ms: now_ms.saturating_sub(ms(self.config.remember)),
            bans_ended_ms: now_ms,
            max_entries,
        });
    }

    /// Hands over what is pending, then waits at most `within` for the disk thread to finish
    /// (at shutdown, after the loop stopped).
    pub fn close(&mut self, within: Duration) {
        let _ = self.flush_round();
        self.tx = None;
        if let Some(handle) = self.thread.take() {
            let deadline = std::time::Instant::now() + within;
            while !handle.is_finished() && std::time::Instant::now() < deadline {
                // Drain answers so the thread is never stuck on a full inbox.
                while self.inbox.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(5));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }

    /// How many entries were made durable so far.
    pub fn durable_count(&self) -> u64 {
        self.stats.durable.load(Ordering::Relaxed)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests;
