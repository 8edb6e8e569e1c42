//! The server's validated configuration and every limit's default.
//!
//! This is the one place where limits are named. `main.rs` turns command-line flags into a
//! [`Config`]; the reactor only reads it. Nothing here does I/O.

use std::time::Duration;

/// Default `--listen` address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:55555";
/// Default `--max-line`: the longest accepted line, in bytes, without its terminator.
pub const DEFAULT_MAX_LINE: usize = chat_common::framing::DEFAULT_MAX_LINE;
/// Default `--rate`: lines per second a connection may send before it is paced.
pub const DEFAULT_RATE: u32 = 50;
/// Default `--burst`: lines a connection may send at once before pacing starts.
pub const DEFAULT_BURST: u32 = 500;
/// Default `--max-queue`: bytes of output that may wait for one connection.
pub const DEFAULT_MAX_QUEUE: usize = 1024 * 1024;
/// Default `--max-clients`: open connections, in any state.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// Default `--max-pending`: joins waiting for the operator at once.
pub const DEFAULT_MAX_PENDING: usize = 100;
/// Default `--max-per-ip`: connections from one address (0 = no limit).
pub const DEFAULT_MAX_PER_IP: usize = 0;
/// Default `--send-buffer`: the kernel's send buffer per connection, in bytes (0 = the kernel's
/// own autotuning, which lets a stalled reader pin up to `net.ipv4.tcp_wmem`'s maximum, 4 MiB on
/// common systems, on top of `--max-queue`).
pub const DEFAULT_SEND_BUFFER: usize = 256 * 1024;
/// Default `--login-timeout`, in seconds.
pub const DEFAULT_LOGIN_TIMEOUT_SECS: f64 = 60.0;
/// Default `--approval-timeout`, in seconds.
pub const DEFAULT_APPROVAL_TIMEOUT_SECS: f64 = 300.0;

/// Bytes read from a socket in one `read` call (the reactor's one shared scratch buffer).
pub const READ_CHUNK: usize = 16 * 1024;
/// Reads from one connection per wake-up before the others get their turn.
pub const READS_PER_WAKE: usize = 8;
/// How long a connection being closed politely (after BYE or DENIED) may take to read its last
/// lines before it is cut.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// How long shutdown waits for BYE to reach everyone before exiting anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long an output queue must have been drained before its spare storage is freed.
pub const QUEUE_RELEASE_DELAY: Duration = Duration::from_secs(1);
/// Longest INFO line of a `/who` reply, in bytes, before the list continues on another line.
pub const WHO_LINE_BYTES: usize = 400;
/// Longest console command line, in bytes.
pub const CONSOLE_MAX_LINE: usize = 4096;

/// Everything the reactor needs to know, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Admit every valid name without asking the operator.
    pub auto_approve: bool,
    /// Longest accepted line in bytes (at least 1).
    pub max_line: usize,
    /// Lines per second per connection; 0 turns pacing off.
    pub rate: u32,
    /// Lines a connection may send at once (at least 1 when pacing is on).
    pub burst: u32,
    /// Bytes of output that may wait for one connection.
    pub max_queue: usize,
    /// Open connections, in any state.
    pub max_clients: usize,
    /// Joins waiting for the operator at once.
    pub max_pending: usize,
    /// Connections from one IP address; 0 is no limit.
    pub max_per_ip: usize,
    /// Time a new connection has to offer a valid name.
    pub login_timeout: Duration,
    /// Time the operator has to decide on a join.
    pub approval_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            auto_approve: false,
            max_line: DEFAULT_MAX_LINE,
            rate: DEFAULT_RATE,
            burst: DEFAULT_BURST,
            max_queue: DEFAULT_MAX_QUEUE,
            max_clients: DEFAULT_MAX_CLIENTS,
            max_pending: DEFAULT_MAX_PENDING,
            max_per_ip: DEFAULT_MAX_PER_IP,
            login_timeout: Duration::from_secs_f64(DEFAULT_LOGIN_TIMEOUT_SECS),
            approval_timeout: Duration::from_secs_f64(DEFAULT_APPROVAL_TIMEOUT_SECS),
        }
    }
}
