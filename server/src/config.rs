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
/// Default `--stall-timeout`, in seconds: a member whose queued output has not moved for that
/// long is cut off, however small its queue.
pub const DEFAULT_STALL_TIMEOUT_SECS: f64 = 60.0;
/// Default `--rate-bytes`: bytes per second a connection may send once its byte burst is spent.
pub const DEFAULT_RATE_BYTES: usize = 256 * 1024;
/// Default `--max-pending-per-ip`: joins from one address waiting for the operator at once.
pub const DEFAULT_MAX_PENDING_PER_IP: usize = 3;
/// Default `--name-cooldown`, in seconds: after a join is denied by the operator or the
/// approval timeout, its address may not wait for that name again for this long.
pub const DEFAULT_NAME_COOLDOWN_SECS: f64 = 60.0;
/// Default `--history`: room messages kept for newcomers.
pub const DEFAULT_HISTORY: usize = 50;
/// Default `--irc-channel`: the one channel IRC members see the room as.
pub const DEFAULT_IRC_CHANNEL: &str = "#chat";
/// Default `--irc-ping`, in seconds: an IRC connection silent this long is sent a `PING`, and
/// one that stays silent as long again is dropped (`ERROR :Ping timeout`).
pub const DEFAULT_IRC_PING_SECS: f64 = 120.0;
/// The server's name in IRC lines (the source of numerics and notices, and the host part of
/// every member's `nick!nick@host`, so no member's address is ever shown).
pub const IRC_SERVER_NAME: &str = "chat.server";

/// What one queued line costs beyond its bytes, counted against `--max-queue`: its slot in the
/// queue (16 bytes) plus as much again for the queue's spare capacity, the shared line's
/// reference counts (16) and the allocator's header and rounding (16). So a member fed many tiny
/// lines is cut off at the same real memory as one fed big lines.
pub const QUEUE_LINE_OVERHEAD: usize = 64;
/// Longest prefix the server puts before a member's text (`PRIV <32> <32> magenta `), so a
/// burst's cost in a recipient's queue can be bounded at start.
pub const MAX_LINE_PREFIX: usize = 80;
/// Renames a member may make in quick succession ...
pub const NICK_BURST: u32 = 3;
/// ... and then one per this interval.
pub const NICK_INTERVAL: Duration = Duration::from_secs(20);

/// Bytes read from a socket in one `read` call (the reactor's one shared scratch buffer).
pub const READ_CHUNK: usize = 16 * 1024;
/// Fewest bytes read in one call from a connection close to its rate limit: reads shrink as its
/// allowance does, so what pacing holds back unframed stays about this small.
pub const PACED_READ_CHUNK: usize = 1024;
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
    /// Time a member's queued output may stay unmoved before it is cut off.
    pub stall_timeout: Duration,
    /// Bytes a connection may send at once before byte pacing starts (with `rate` > 0).
    pub burst_bytes: usize,
    /// Bytes per second a connection may send once its byte burst is spent.
    pub rate_bytes: usize,
    /// Joins from one address waiting at once.
    pub max_pending_per_ip: usize,
    /// How long a refused (address, name) may not wait again; zero turns it off.
    pub name_cooldown: Duration,
    /// Room messages kept for newcomers (0: none).
    pub history: usize,
    /// Where to open the remote consoles' Unix socket (`--control`), if anywhere.
    pub control: Option<std::path::PathBuf>,
    /// The cluster this server shares its room with (`--cluster`), if any.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// The channel IRC members see the room as (`--irc-channel`), `#` included.
    pub irc_channel: String,
    /// Silence after which an IRC connection is pinged, and then dropped (`--irc-ping`).
    pub irc_ping: Duration,
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
            stall_timeout: Duration::from_secs_f64(DEFAULT_STALL_TIMEOUT_SECS),
            burst_bytes: DEFAULT_MAX_QUEUE / 4,
            rate_bytes: DEFAULT_RATE_BYTES,
            max_pending_per_ip: DEFAULT_MAX_PENDING_PER_IP,
            name_cooldown: Duration::from_secs_f64(DEFAULT_NAME_COOLDOWN_SECS),
            history: DEFAULT_HISTORY,
            control: None,
            cluster: None,
            irc_channel: DEFAULT_IRC_CHANNEL.to_owned(),
            irc_ping: Duration::from_secs_f64(DEFAULT_IRC_PING_SECS),
        }
    }
}

impl Config {
    /// The most a full burst (lines and bytes) from one sender can cost in one recipient's queue.
    pub fn burst_cost(&self) -> usize {
        let lines = self.burst as usize;
        self.burst_bytes
            .saturating_add(lines.saturating_mul(MAX_LINE_PREFIX + QUEUE_LINE_OVERHEAD))
    }

    /// Checks the limits against each other: a sender's allowed burst must fit in a
    /// recipient's queue, or one member could get a healthy reader dropped.
    pub fn check(&self) -> Result<(), String> {
        if self.rate > 0 && self.burst_cost() > self.max_queue {
            return Err(format!(
                "a full burst (--burst {} lines, --burst-bytes {}) can cost {} bytes in a \
                 reader's queue, more than --max-queue {}: lower the bursts or raise --max-queue",
                self.burst,
                self.burst_bytes,
                self.burst_cost(),
                self.max_queue
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_burst_fits_the_default_queue() {
        let c = Config::default();
        assert!(c.check().is_ok(), "{:?}", c.check());
        assert!(c.burst_cost() <= c.max_queue);
    }

    #[test]
    fn a_burst_larger_than_the_queue_is_refused() {
        let c = Config {
            max_queue: 1000,
            burst_bytes: 5000,
            ..Config::default()
        };
        assert!(c.check().unwrap_err().contains("--max-queue"));
        let off = Config { rate: 0, ..c };
        assert!(off.check().is_ok(), "no pacing: nothing to check");
    }
}
