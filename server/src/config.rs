//! The server's validated configuration and every limit's default.
//!
//! This is the one place where limits are named and checked. `main.rs` turns command-line flags
//! into a [`Config`] and calls [`Config::validate`] once, which answers a typed [`ConfigError`]
//! (its Display names the flag and quotes the bad value); the reactor and the core only read a
//! validated config. Nothing here does I/O.

use std::fmt;
use std::time::Duration;

pub use chat_common::irc::format::IrcStyles;

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
/// Default `--resume-window`, in seconds: a version 3 member whose connection dropped stays in
/// the room this long (no `LEAVE`), and may `RESUME` as if it never left.
pub const DEFAULT_RESUME_WINDOW_SECS: f64 = 60.0;
/// Default `--remember`, in days: a member's token admits it without the operator for this long
/// after its last session.
pub const DEFAULT_REMEMBER_DAYS: f64 = 30.0;
/// Default `--retain`, in days: room messages kept in the store for resumes.
pub const DEFAULT_RETAIN_DAYS: f64 = crate::store::DEFAULT_RETAIN_DAYS;
/// Seconds in a day (the unit of `--remember` and `--retain`).
pub const DAY_SECS: f64 = 86_400.0;
/// Longest `--remember` and `--retain`, in days (ten years).
pub const MAX_DAYS: f64 = 3650.0;

/// Default `--name-hold`, in seconds: a member's name that left (or was renamed away) stays
/// reserved for its address this long, so nobody else can speak as them at once.
pub const DEFAULT_NAME_HOLD_SECS: f64 = 60.0;
/// Room messages that may wait for the store (durable before delivered) before the loop stops
/// reading from senders until the store catches up: the backlog's memory is bounded (at most
/// this many lines of `--max-line`, plus one read's worth), and senders are slowed by TCP, as
/// pacing slows them, instead of refused.
pub const MAX_HELD_MESSAGES: usize = 2048;

/// Default `--history`: room messages kept for newcomers.
pub const DEFAULT_HISTORY: usize = 50;
/// Default `--irc-channel`: the one channel IRC members see the room as.
pub const DEFAULT_IRC_CHANNEL: &str = "#chat";
/// Longest `--irc-channel`, `#` included (`CHANNELLEN` in the IRC welcome's `005`).
pub const MAX_IRC_CHANNEL: usize = 50;
/// Default `--irc-ping`, in seconds: an IRC connection silent this long is sent a `PING`, and
/// one that stays silent as long again is dropped (`ERROR :Closing link: ping timeout`).
pub const DEFAULT_IRC_PING_SECS: f64 = 120.0;
/// The server's name in IRC lines (the source of numerics and notices, and the host part of
/// every member's `nick!nick@host`, so no member's address is ever shown).
pub const IRC_SERVER_NAME: &str = "chat.server";

/// What one queued line costs beyond its bytes, counted against `--max-queue`: its slot in the
/// queue (16 bytes) plus as much again for the queue's spare capacity, the shared line's
/// reference counts (16) and the allocator's header and rounding (16). So a member fed many tiny
/// lines is cut off at the same real memory as one fed big lines.
pub const QUEUE_LINE_OVERHEAD: usize = 64;
/// What one request to the cluster bridge costs beyond its bytes, counted against
/// [`QUEUE_LIMIT`] (its slot, its strings' headers).
pub const BRIDGE_ENTRY_OVERHEAD: usize = 64;
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
/// Bytes of a replay (the history on join) taken into a member's queue at a time, when the
/// queue has drained: the replay goes as fast as the member reads and never fills its queue.
pub const REPLAY_SLICE: usize = 64 * 1024;
/// What each history entry still to replay costs in a newcomer's queue (its slot: the message
/// itself is shared with the history).
pub const REPLAY_ENTRY_COST: usize = std::mem::size_of::<std::rc::Rc<crate::chat::Outgoing>>();
/// Queue cost of other servers' entries handed to the core at once when a batch is paced (at
/// most a quarter of `--max-queue` too): see `reactor/cluster.rs`.
pub const CATCHUP_SLICE: usize = 64 * 1024;
/// A reader whose output has not moved for this long no longer holds back other servers'
/// entries (its `--stall-timeout` and `--max-queue` deal with it).
pub const CATCHUP_PATIENCE: Duration = Duration::from_secs(1);
/// How often held entries look again at the readers when no event wakes the loop.
pub const CATCHUP_RECHECK: Duration = Duration::from_millis(20);
/// Most join requests and withdrawals printed on the consoles in one [`ANNOUNCE_WINDOW`]; the
/// rest are summed up in one line when it ends.
pub const ANNOUNCE_PER_SECOND: u32 = 10;
/// The window [`ANNOUNCE_PER_SECOND`] counts in.
pub const ANNOUNCE_WINDOW: Duration = Duration::from_secs(1);

// Limits defined beside the code they bound, named here too so this file lists every one.
pub use crate::chat::bans::{MAX_BANS, MAX_BAN_DURATION, MAX_BAN_REASON};
pub use crate::chat::REPLAY_PAGE;
pub use crate::cluster::{INBOX_CAPACITY, INBOX_PER_ROUND, LOG_MAXLEN, QUEUE_LIMIT, READ_COUNT};
pub use crate::console::control::CONTROL_BACKLOG_MAX;
pub use crate::console::io::CONSOLE_OUT_MAX;
pub use crate::reactor::conn::GATHER_BYTES;
pub use crate::reactor::tls::{
    HANDSHAKE_FOOTPRINT, MAX_HANDSHAKES_PER_IP, MAX_HANDSHAKE_INPUT, MAX_TLS_RECORD, TLS_BUFFER,
    TLS_READ_FIRST,
};
pub use crate::reactor::{
    HTTP_HEAD_TIMEOUT, MAX_HTTP_CONNECTIONS, MAX_HTTP_PER_IP, MAX_HTTP_REQUESTS,
};
pub use crate::store::{
    ANSWER_CAPACITY, MAX_LOG_ENTRIES, MAX_LOG_ENTRIES_IN_MEMORY, MAX_REQUESTS_PER_COMMIT,
    MIN_KEEP_PRIVATES, QUEUE_BYTES, REQUEST_CAPACITY,
};
pub use crate::web::http::{MAX_HEAD, MAX_HEADERS};
pub use crate::web::ws::{MAX_CONTROL_PAYLOAD, MAX_FRAGMENTS};

/// Largest `--history`: each entry holds up to `--max-line` bytes.
pub const MAX_HISTORY: usize = 100_000;
/// Largest `--send-buffer` accepted (the kernel caps it further at `net.core.wmem_max`).
pub const MAX_SEND_BUFFER: usize = 1 << 30;
/// Longest timeout accepted for any `--*-timeout` or `--name-cooldown`, in seconds.
pub const MAX_SECONDS: f64 = 1e9;
/// Longest `--cluster-timeout`, in seconds.
pub const MAX_CLUSTER_TIMEOUT_SECS: f64 = 3600.0;
/// Longest `--cluster-room` name, in bytes.
pub const MAX_CLUSTER_ROOM: usize = 64;
/// Connections the kernel queues for `accept` (std's `bind` uses 128, which drops SYNs in a
/// connect burst and makes clients retry after a second).
pub const LISTEN_BACKLOG: i32 = 1024;

/// Default `--cluster-room`.
pub const DEFAULT_ROOM: &str = "chat";
/// Default `--cluster-timeout`, in seconds: a server that has not beaten its heartbeat for this
/// long is dead to the others, and a server that could not reach Redis for this long cuts its
/// members off.
pub const DEFAULT_TIMEOUT_SECS: f64 = 5.0;
/// Shortest `--cluster-timeout` accepted, in seconds.
pub const MIN_TIMEOUT_SECS: f64 = 2.0;
/// `--cluster` and its companions.
#[derive(Clone, PartialEq)]
pub struct ClusterConfig {
    /// `redis://[:password@]HOST[:PORT][/DB]`.
    pub url: String,
    /// The room's name: keys are `chat:{room}:...`.
    pub room: String,
    /// How long a silent server stays in the room (`--cluster-timeout`).
    pub timeout: Duration,
    /// History entries to seed from the log (`--history`).
    pub history: usize,
    /// This server's name in the room (`--cluster-name`; default host name and port).
    pub name: String,
    /// How long a forget's record (its tombstone) stays in Redis's `members` hash: past
    /// `--remember` and the resume window no server admits the token it voided anyway
    /// ([`ClusterConfig::keep_forgets`]).
    pub keep_forgets: Duration,
}

impl fmt::Debug for ClusterConfig {
    /// Never shows a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***@{}", &self.url[..scheme], &self.url[at + 1..])
            }
            _ => self.url.clone(),
        };
        f.debug_struct("ClusterConfig")
            .field("url", &url)
            .field("room", &self.room)
            .field("timeout", &self.timeout)
            .field("history", &self.history)
            .finish()
    }
}

impl ClusterConfig {
    /// How often a server beats its heartbeat, and how long one Redis command may take.
    pub fn heartbeat(&self) -> Duration {
        (self.timeout / 5).min(Duration::from_secs(1))
    }
}

/// How long a control console's `quit` waits for its confirmation (`quit` again); `quit now`
/// needs none.
pub const QUIT_CONFIRM_WINDOW: Duration = Duration::from_secs(30);

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
    /// How long a name that left stays its owner's; zero turns it off.
    pub name_hold: Duration,
    /// Room messages kept for newcomers (0: none).
    pub history: usize,
    /// The kernel's send buffer per connection in bytes (`--send-buffer`; 0: autotuning).
    pub send_buffer: usize,
    /// Where to open the remote consoles' Unix socket (`--control`), if anywhere.
    pub control: Option<std::path::PathBuf>,
    /// The control socket's mode and group (`--control-mode`, `--control-group`).
    pub control_access: crate::console::control::ControlAccess,
    /// The cluster this server shares its room with (`--cluster`), if any.
    pub cluster: Option<ClusterConfig>,
    /// Where the store lives (`--data-dir`; the library's default is in memory, the binary's
    /// the user's state directory).
    pub data_dir: crate::store::DataDir,
    /// How long room messages are kept for resumes (`--retain`).
    pub retain: Duration,
    /// How long a version 3 member that dropped stays in the room to resume
    /// (`--resume-window`; zero: it leaves at once).
    pub resume_window: Duration,
    /// How long after its last session a member's token admits it without the operator
    /// (`--remember`; zero: only within the resume window).
    pub remember: Duration,
    /// The channel IRC members see the room as (`--irc-channel`), `#` included.
    pub irc_channel: String,
    /// Which markup styles IRC members get as formatting codes (`--irc-styles`).
    pub irc_styles: IrcStyles,
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
            name_hold: Duration::from_secs_f64(DEFAULT_NAME_HOLD_SECS),
            history: DEFAULT_HISTORY,
            send_buffer: DEFAULT_SEND_BUFFER,
            control: None,
            control_access: crate::console::control::ControlAccess::default(),
            cluster: None,
            data_dir: crate::store::DataDir::Memory,
            retain: Duration::from_secs_f64(DEFAULT_RETAIN_DAYS * DAY_SECS),
            resume_window: Duration::from_secs_f64(DEFAULT_RESUME_WINDOW_SECS),
            remember: Duration::from_secs_f64(DEFAULT_REMEMBER_DAYS * DAY_SECS),
            irc_channel: DEFAULT_IRC_CHANNEL.to_owned(),
            irc_styles: IrcStyles::All,
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

    /// The most a newcomer's queue holds when its history replay starts: the replay's slots
    /// ([`REPLAY_ENTRY_COST`] per entry; the lines themselves are shared and taken a
    /// [`REPLAY_SLICE`] at a time as it reads) and its `WELCOME` line.
    pub fn replay_cost(&self) -> usize {
        self.history
            .saturating_mul(REPLAY_ENTRY_COST)
            .saturating_add(MAX_LINE_PREFIX + QUEUE_LINE_OVERHEAD)
    }

    /// Checks every limit, alone and against the others, once: a sender's allowed burst must fit
    /// in a recipient's queue, or one member could get a healthy reader dropped.
    pub fn validate(self) -> Result<Config, ConfigError> {
        if self.max_line == 0 {
            return Err(ConfigError::MaxLine(self.max_line));
        }
        if self.rate > 0 && self.burst == 0 {
            return Err(ConfigError::Burst(self.burst));
        }
        if self.max_clients == 0 {
            return Err(ConfigError::MaxClients(self.max_clients));
        }
        if self.send_buffer > MAX_SEND_BUFFER {
            return Err(ConfigError::SendBuffer(self.send_buffer));
        }
        let one_line = self.max_line.saturating_add(QUEUE_LINE_OVERHEAD);
        if self.max_queue < one_line {
            return Err(ConfigError::QueueTooSmall {
                max_queue: self.max_queue,
                needs: one_line,
            });
        }
        if self.rate > 0 && self.rate_bytes == 0 {
            return Err(ConfigError::RateBytes(self.rate_bytes));
        }
        if self.history > MAX_HISTORY {
            return Err(ConfigError::History(self.history));
        }
        let replay = self.replay_cost();
        if replay > self.max_queue {
            return Err(ConfigError::HistoryTooBigForQueue {
                history: self.history,
                cost: replay,
                max_queue: self.max_queue,
            });
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        let channel = self.irc_channel.as_bytes();
        let channel_ok = (2..=MAX_IRC_CHANNEL).contains(&channel.len())
            && channel.first() == Some(&b'#')
            && channel
                .iter()
                .skip(1)
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(b));
        if !channel_ok {
            return Err(ConfigError::IrcChannel(self.irc_channel.clone()));
        }
        if self.rate > 0 && self.burst_cost() > self.max_queue {
            return Err(ConfigError::BurstTooBig {
                burst: self.burst,
                burst_bytes: self.burst_bytes,
                cost: self.burst_cost(),
                max_queue: self.max_queue,
            });
        }
        Ok(self)
    }
}

/// The shortest time a forget's tombstone stays in Redis, whatever `--remember` says.
pub const MIN_KEEP_FORGETS: Duration = Duration::from_secs(86_400);

impl ClusterConfig {
    /// How long a forget's tombstone must stay in Redis: as long as any server could still
    /// admit the token it voided (`--remember` after the member was last seen, or within its
    /// resume window), and at least [`MIN_KEEP_FORGETS`]. Every server of a room should run
    /// with the same `--remember` (CLUSTER.md).
    pub fn keep_forgets(remember: Duration, resume_window: Duration) -> Duration {
        remember.max(resume_window).max(MIN_KEEP_FORGETS)
    }

    /// Checks the room name, the timeout and the URL's scheme.
    fn validate(&self) -> Result<(), ConfigError> {
        let room_ok = !self.room.is_empty()
            && self.room.len() <= MAX_CLUSTER_ROOM
            && self
                .room
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !room_ok {
            return Err(ConfigError::ClusterRoom(self.room.clone()));
        }
        let secs = self.timeout.as_secs_f64();
        if !(MIN_TIMEOUT_SECS..=MAX_CLUSTER_TIMEOUT_SECS).contains(&secs) {
            return Err(ConfigError::ClusterTimeout(secs));
        }
        if !["redis://", "redis+unix://", "unix://"]
            .iter()
            .any(|scheme| self.url.starts_with(scheme))
        {
            return Err(ConfigError::ClusterUrl(redact(&self.url)));
        }
        Ok(())
    }
}

/// A URL with anything before its last `@` (a password) hidden.
fn redact(url: &str) -> String {
    match url.rfind('@') {
        Some(at) => format!("***@{}", &url[at + 1..]),
        None => url.to_owned(),
    }
}

/// Seconds from a flag, as a duration: positive, finite and at most [`MAX_SECONDS`]; with
/// `zero_ok`, 0 too (it turns the thing off).
pub fn seconds(flag: &'static str, secs: f64, zero_ok: bool) -> Result<Duration, ConfigError> {
    if zero_ok && secs == 0.0 {
        return Ok(Duration::ZERO);
    }
    if secs.is_finite() && secs > 0.0 && secs <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(ConfigError::Seconds { flag, value: secs })
    }
}

/// Days from a flag, as a duration: positive (or zero with `zero_ok`), finite, at most
/// [`MAX_DAYS`].
pub fn days(flag: &'static str, days: f64, zero_ok: bool) -> Result<Duration, ConfigError> {
    if zero_ok && days == 0.0 {
        return Ok(Duration::ZERO);
    }
    if days.is_finite() && days > 0.0 && days <= MAX_DAYS {
        Ok(Duration::from_secs_f64(days * DAY_SECS))
    } else {
        Err(ConfigError::Days { flag, value: days })
    }
}

/// Why a configuration was refused. Display names the flag and quotes the bad value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// `--max-line` is 0.
    MaxLine(usize),
    /// `--burst` is 0 while `--rate` is not.
    Burst(u32),
    /// `--max-clients` is 0.
    MaxClients(usize),
    /// `--send-buffer` is past [`MAX_SEND_BUFFER`].
    SendBuffer(usize),
    /// `--max-queue` cannot hold one longest line.
    QueueTooSmall {
        /// The flag's value.
        max_queue: usize,
        /// `--max-line` plus [`QUEUE_LINE_OVERHEAD`].
        needs: usize,
    },
    /// `--rate-bytes` is 0 while `--rate` is not.
    RateBytes(usize),
    /// `--history` is past [`MAX_HISTORY`].
    History(usize),
    /// A duration flag is not a positive number of seconds.
    Seconds {
        /// The flag, without its dashes.
        flag: &'static str,
        /// Its value.
        value: f64,
    },
    /// A flag in days is not a positive number of days up to [`MAX_DAYS`].
    Days {
        /// The flag, without its dashes.
        flag: &'static str,
        /// Its value.
        value: f64,
    },
    /// `--cluster-room` is not 1 to [`MAX_CLUSTER_ROOM`] of `A-Z a-z 0-9 _ - .`.
    ClusterRoom(String),
    /// `--cluster-timeout` is outside [`MIN_TIMEOUT_SECS`]..[`MAX_CLUSTER_TIMEOUT_SECS`].
    ClusterTimeout(f64),
    /// `--cluster` is not a `redis://` URL (the value, its password hidden).
    ClusterUrl(String),
    /// A newcomer's replay cursor does not fit its queue.
    HistoryTooBigForQueue {
        /// `--history`.
        history: usize,
        /// [`Config::replay_cost`].
        cost: usize,
        /// `--max-queue`.
        max_queue: usize,
    },
    /// `--irc-channel` is not `#` and 1 to 49 of `A-Z a-z 0-9 _ -`.
    IrcChannel(String),
    /// `--tls-cert`/`--tls-key` without a TLS listener to use them.
    TlsFilesWithoutListener,
    /// A full burst does not fit in a reader's queue.
    BurstTooBig {
        /// `--burst`.
        burst: u32,
        /// `--burst-bytes`.
        burst_bytes: usize,
        /// What the burst can cost in a queue.
        cost: usize,
        /// `--max-queue`.
        max_queue: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MaxLine(v) => write!(f, "--max-line must be at least 1, not {v}"),
            ConfigError::Burst(v) => {
                write!(f, "--burst must be at least 1 when --rate is not 0, not {v}")
            }
            ConfigError::MaxClients(v) => write!(f, "--max-clients must be at least 1, not {v}"),
            ConfigError::SendBuffer(v) => write!(
                f,
                "--send-buffer must be at most {MAX_SEND_BUFFER} bytes (0: the kernel's default), not {v}"
            ),
            ConfigError::QueueTooSmall { max_queue, needs } => write!(
                f,
                "--max-queue must hold at least one line: at least {needs} bytes, not {max_queue}"
            ),
            ConfigError::RateBytes(v) => write!(
                f,
                "--rate-bytes must be at least 1 when --rate is not 0, not {v}"
            ),
            ConfigError::History(v) => {
                write!(f, "--history must be at most {MAX_HISTORY}, not {v}")
            }
            ConfigError::Seconds { flag, value } => write!(
                f,
                "--{flag} must be a positive number of seconds (at most {MAX_SECONDS}), not {value}"
            ),
            ConfigError::Days { flag, value } => write!(
                f,
                "--{flag} must be a positive number of days (at most {MAX_DAYS}), not {value}"
            ),
            ConfigError::ClusterRoom(v) => write!(
                f,
                "--cluster-room must be 1 to {MAX_CLUSTER_ROOM} of A-Z a-z 0-9 _ - ., not {v:?}"
            ),
            ConfigError::ClusterTimeout(v) => write!(
                f,
                "--cluster-timeout must be between {MIN_TIMEOUT_SECS} and {MAX_CLUSTER_TIMEOUT_SECS} seconds, not {v}"
            ),
            ConfigError::ClusterUrl(v) => write!(
                f,
                "--cluster must be a redis:// URL (rediss:// is not built in: see docs/CLUSTER.md), not {v:?}"
            ),
            ConfigError::IrcChannel(v) => write!(
                f,
                "--irc-channel must be # and 1 to {} of A-Z a-z 0-9 _ -, not {v:?}",
                MAX_IRC_CHANNEL - 1
            ),
            ConfigError::TlsFilesWithoutListener => f.write_str(
                "--tls-cert and --tls-key need --tls-listen, --http-tls-listen or --irc-tls-listen",
            ),
            ConfigError::HistoryTooBigForQueue {
                history,
                cost,
                max_queue,
            } => write!(
                f,
                "--history {history} needs {cost} bytes of a newcomer's queue for its replay, more than \
                 --max-queue {max_queue}: lower --history or raise --max-queue"
            ),
            ConfigError::BurstTooBig {
                burst,
                burst_bytes,
                cost,
                max_queue,
            } => write!(
                f,
                "a full burst (--burst {burst} lines, --burst-bytes {burst_bytes}) can cost {cost} bytes in a \
                 reader's queue, more than --max-queue {max_queue}: lower the bursts or raise --max-queue"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_burst_fits_the_default_queue() {
        let c = Config::default();
        assert!(c.burst_cost() <= c.max_queue);
        assert_eq!(c.clone().validate(), Ok(c));
    }

    #[test]
    fn a_burst_larger_than_the_queue_is_refused() {
        let c = Config {
            max_line: 100,
            max_queue: 1000,
            burst_bytes: 5000,
            ..Config::default()
        };
        let err = c.clone().validate().unwrap_err();
        assert!(matches!(err, ConfigError::BurstTooBig { .. }), "{err:?}");
        assert!(err.to_string().contains("--max-queue 1000"), "{err}");
        let off = Config { rate: 0, ..c };
        assert!(off.validate().is_ok(), "no pacing: nothing to check");
    }

    #[test]
    fn every_refusal_names_its_flag_and_quotes_the_value() {
        let cluster = ClusterConfig {
            url: "redis://127.0.0.1".into(),
            room: "chat".into(),
            timeout: Duration::from_secs(5),
            history: 0,
            name: "test".to_owned(),
            keep_forgets: MIN_KEEP_FORGETS,
        };
        let cases: Vec<(Config, &str, &str)> = vec![
            (
                Config {
                    max_line: 0,
                    ..Config::default()
                },
                "--max-line",
                "not 0",
            ),
            (
                Config {
                    burst: 0,
                    ..Config::default()
                },
                "--burst",
                "not 0",
            ),
            (
                Config {
                    max_clients: 0,
                    ..Config::default()
                },
                "--max-clients",
                "not 0",
            ),
            (
                Config {
                    send_buffer: MAX_SEND_BUFFER + 1,
                    ..Config::default()
                },
                "--send-buffer",
                "not 1073741825",
            ),
            (
                Config {
                    max_queue: 10,
                    ..Config::default()
                },
                "--max-queue",
                "not 10",
            ),
            (
                Config {
                    rate_bytes: 0,
                    ..Config::default()
                },
                "--rate-bytes",
                "not 0",
            ),
            (
                Config {
                    history: MAX_HISTORY + 1,
                    ..Config::default()
                },
                "--history",
                "not 100001",
            ),
            (
                Config {
                    cluster: Some(ClusterConfig {
                        room: "a b".into(),
                        ..cluster.clone()
                    }),
                    ..Config::default()
                },
                "--cluster-room",
                "\"a b\"",
            ),
            (
                Config {
                    cluster: Some(ClusterConfig {
                        timeout: Duration::from_secs(1),
                        ..cluster.clone()
                    }),
                    ..Config::default()
                },
                "--cluster-timeout",
                "not 1",
            ),
            (
                Config {
                    cluster: Some(ClusterConfig {
                        url: "rediss://:pw@h".into(),
                        ..cluster.clone()
                    }),
                    ..Config::default()
                },
                "--cluster",
                "\"***@h\"",
            ),
        ];
        for (config, flag, quoted) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(flag) && err.contains(quoted), "{err}");
            assert!(!err.contains("pw"), "{err}");
        }
        let err = seconds("login-timeout", -1.0, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--login-timeout") && err.contains("not -1"),
            "{err}"
        );
        assert!(seconds("x", f64::NAN, true).is_err());
        assert_eq!(seconds("x", 0.0, true), Ok(Duration::ZERO));
    }
}
