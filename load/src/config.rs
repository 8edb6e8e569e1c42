//! The command line, and the validated [`Config`] a run is made from.
//!
//! [`Args`] is what clap parses; [`Args::into_config`] checks the numbers against each other
//! and turns them into a [`Config`] whose fields need no further checking. Nothing here opens
//! a socket.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::order::OrderTracker;

/// Which wire protocol the members speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    /// Our protocol (docs/PROTOCOL.md): `NAME?`, name, `WELCOME`, plain lines, `MSG`.
    Chat,
    /// IRC: `NICK`/`USER`, 001, `JOIN #channel`, `PRIVMSG #channel :text`.
    Irc,
    /// A mixed room: even members speak chat (to the server address), odd ones IRC (to
    /// `--irc-addr`, the same server's IRC listener).
    Mixed,
}

impl Proto {
    /// What member `i` speaks: [`Proto::Chat`] or [`Proto::Irc`] (a mixed room alternates).
    pub fn of(self, i: usize) -> Proto {
        match self {
            Proto::Mixed if i % 2 == 1 => Proto::Irc,
            Proto::Mixed => Proto::Chat,
            p => p,
        }
    }

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Chat => "chat",
            Proto::Irc => "irc",
            Proto::Mixed => "mixed",
        }
    }
}

/// What the members do once admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// S of the N members send M messages each; every member checks what it receives.
    Messages,
    /// N members connect, are admitted and stay; reports admit time and server RSS per member.
    Idle,
    /// Members join one after another; each waits for its admission before the next connects.
    JoinStorm,
    /// N members join with `HELLO 3` and keep their tokens; then every socket is cut at once
    /// and each member resumes (`RESUME name token last-id`); reports the time until all are
    /// back (`resume_s`). Chat protocol, plain TCP only.
    ResumeStorm,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Messages => "messages",
            Scenario::Idle => "idle",
            Scenario::JoinStorm => "join-storm",
            Scenario::ResumeStorm => "resume-storm",
        }
    }
}

/// Load generator for chat-server and IRC servers: opens N connections, admits them, lets S of
/// them send M messages each, and reports throughput, latency, loss and the server's CPU and
/// memory. Exit status: 0 when every message and notice arrived once and in order and the
/// server refused nothing, 1 when not (loss, duplicates, reordering, timeout, refused
/// connections, server errors, lines that are no part of the protocol), 2 on bad arguments.
#[derive(Debug, Parser)]
#[command(name = "chat-load", version)]
pub struct Args {
    /// Server address (default 127.0.0.1:55555); for several servers use --addr instead.
    pub addr: Option<SocketAddr>,
    /// A server address; repeat it to spread the members over several servers round-robin
    /// (member i connects to the (i mod K)-th). Not together with the positional address.
    #[arg(long = "addr", value_name = "ADDR", conflicts_with = "addr")]
    pub addrs: Vec<SocketAddr>,
    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = Proto::Chat)]
    pub proto: Proto,
    /// With --proto mixed: the server's IRC listener, where the odd members connect.
    #[arg(long, value_name = "ADDR")]
    pub irc_addr: Option<SocketAddr>,
    /// What to run.
    #[arg(long, value_enum, default_value_t = Scenario::Messages)]
    pub scenario: Scenario,
    /// N: members to connect and admit.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub members: usize,
    /// S: how many of the members send (the first S); default all of them.
    #[arg(short = 's', long)]
    pub senders: Option<usize>,
    /// M: messages each sender sends.
    #[arg(short = 'm', long, default_value_t = 100)]
    pub messages: u64,
    /// W: unacknowledged messages a sender may have in flight; a message is acknowledged once
    /// every other member has received it. 0 = no limit. Default 32, or no limit with --rate.
    #[arg(short = 'w', long)]
    pub window: Option<u64>,
    /// Messages per second per sender (open loop, senders staggered); 0 = as fast as the
    /// window allows. Paced latency counts from when each message was due, so a send held up
    /// (by the window, the socket or the generator) shows as latency.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// With --rate: send for this many seconds (sets M = rate x duration).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many seconds whatever happens; what has not arrived counts as lost.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Stop when nothing at all arrived for this many seconds while something is expected.
    #[arg(long, default_value_t = 10.0)]
    pub stall: f64,
    /// Idle and join-storm: seconds to stay connected once every member is in and every JOIN
    /// notice has arrived, before the server's memory is read (the server gives freed memory
    /// back only after its queues have been small for a second: hold longer than that).
    #[arg(long, default_value_t = 1.0)]
    pub hold: f64,
    /// Slow readers: while members are being admitted, each admitted member reads at most this
    /// many bytes per second (in rounds every 100 ms), so the JOIN notices of the storm pile up
    /// in the server; once every member is in, all read at full speed. Unpaced by default.
    #[arg(long, value_name = "BYTES_PER_S")]
    pub read_rate: Option<u64>,
    /// SO_RCVBUF of every member's socket, set before it connects (the kernel doubles it and
    /// has a floor). Small, with --read-rate, the backlog of slow readers waits in the server's
    /// queues instead of the generator's kernel buffers. Default: the kernel's autotuning.
    #[arg(long, value_name = "BYTES")]
    pub recv_buffer: Option<usize>,
    /// Connections being opened or admitted at once (join-storm always uses 1).
    #[arg(long, default_value_t = 64)]
    pub parallel: usize,
    /// Bytes of filler appended to each message text.
    #[arg(long, default_value_t = 0)]
    pub pad: usize,
    /// Member names are this prefix followed by the member's index.
    #[arg(long, default_value = "u")]
    pub prefix: String,
    /// IRC channel to join.
    #[arg(long, default_value = "#load")]
    pub channel: String,
    /// The server's process id: report its CPU seconds and memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Every member connects with TLS (the server's `--tls-listen` address), checking the
    /// server's certificate against --ca and the address's IP.
    #[arg(long, requires = "ca")]
    pub tls: bool,
    /// With --tls: PEM file of the certificates to trust (a CA, or the server's own
    /// self-signed certificate if it is no CA).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,
    /// Every member connects with WebSocket to `/ws` on --addr (the server's `--http-listen`
    /// address) and speaks the chat protocol inside it, a line per text message.
    #[arg(long, conflicts_with = "tls")]
    pub ws: bool,
    /// The server's `--metrics-listen` address: read its store counters at the start and the
    /// end of the message phase (or of the resume storm) and report messages made durable and
    /// flushes per second.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A validated run description.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server addresses, at least one; member `i` connects to `addrs[i % addrs.len()]`.
    pub addrs: Vec<SocketAddr>,
    /// Wire protocol.
    pub proto: Proto,
    /// With [`Proto::Mixed`]: where the IRC members connect.
    pub irc_addr: Option<SocketAddr>,
    /// What to run.
    pub scenario: Scenario,
    /// N, at least 1 (2 for messages).
    pub members: usize,
    /// S <= N (0 unless the scenario is messages).
    pub senders: usize,
    /// M per sender.
    pub messages: u64,
    /// Window; `None` = unlimited.
    pub window: Option<u64>,
    /// Interval between two messages of one sender, in ns; `None` = no pacing.
    pub interval_ns: Option<u64>,
    /// Messages per second per sender, as given (0 = none).
    pub rate: f64,
    /// Overall bound.
    pub timeout: Duration,
    /// Silence bound.
    pub stall: Duration,
    /// Idle and join-storm hold time.
    pub hold: Duration,
    /// Bytes per second each admitted member reads while admission goes on; `None` = unpaced.
    pub read_rate: Option<u64>,
    /// SO_RCVBUF for every member's socket; `None` = the kernel's default.
    pub recv_buffer: Option<usize>,
    /// Connections in progress at once.
    pub parallel: usize,
    /// Filler bytes per message.
    pub pad: usize,
    /// Name prefix.
    pub prefix: String,
    /// IRC channel.
    pub channel: String,
    /// Server process to sample.
    pub server_pid: Option<u32>,
    /// With --tls: the certificates to trust; `None`: plain TCP.
    pub tls_ca: Option<PathBuf>,
    /// Members speak WebSocket (`--ws`).
    pub ws: bool,
    /// The server's metrics address (`--metrics`).
    pub metrics: Option<SocketAddr>,
    /// JSON output.
    pub json: bool,
}

/// The most memory the per-receiver order trackers may take together.
const MAX_TRACKER_BYTES: u128 = 1 << 30;
/// The longest --timeout, --stall, --hold and --duration, and the longest interval --rate may
/// give (11.6 days): far beyond any run, and small enough that instants and nanosecond counts
/// derived from them cannot overflow.
pub const MAX_SECONDS: f64 = 1_000_000.0;
/// The most members: a descriptor each, and N(N-1)/2 JOIN notices must fit a `u64`.
pub const MAX_MEMBERS: usize = 1_000_000;
/// The highest --read-rate, bytes per second (1 GB/s: no member reads faster anyway).
pub const MAX_READ_RATE: u64 = 1_000_000_000;
/// The largest --recv-buffer (64 MiB: more than any kernel grants).
pub const MAX_RECV_BUFFER: usize = 64 << 20;
/// The most filler bytes per message: the whole line must stay well below the longest line a
/// member accepts (16 KiB; longer ones are counted as foreign).
pub const MAX_PAD: usize = 8 * 1024;

/// `v` seconds as a duration, refused unless `0 <= v <= MAX_SECONDS` (and `v > 0` unless
/// `zero_ok`).
fn secs(name: &str, v: f64, zero_ok: bool) -> Result<Duration, String> {
    let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
    if !(low_ok && v <= MAX_SECONDS) {
        let low = if zero_ok { ">= 0" } else { "> 0" };
        return Err(format!(
            "--{name} {v:?} is out of range: it must be {low} and at most {MAX_SECONDS} seconds"
        ));
    }
    Duration::try_from_secs_f64(v).map_err(|_| format!("--{name} {v:?} is no number of seconds"))
}

impl Args {
    /// Checks the arguments against each other.
    pub fn into_config(self) -> Result<Config, String> {
        if self.members == 0 || self.members > MAX_MEMBERS {
            return Err(format!(
                "--members {} is out of range: it must be 1 to {MAX_MEMBERS}",
                self.members
            ));
        }
        if self.scenario == Scenario::ResumeStorm
            && (self.proto != Proto::Chat || self.ws || self.tls)
        {
            return Err(
                "the resume-storm scenario speaks the chat protocol over plain TCP: \
                        not with --proto irc or mixed, --ws or --tls"
                    .into(),
            );
        }
        if self.ws && self.proto != Proto::Chat {
            return Err("--ws members speak the chat protocol: only with --proto chat".into());
        }
        if (self.proto == Proto::Mixed) != self.irc_addr.is_some() {
            return Err("--proto mixed and --irc-addr go together".into());
        }
        let messages_scenario = self.scenario == Scenario::Messages;
        if messages_scenario && self.members < 2 {
            return Err("the messages scenario needs at least 2 members".into());
        }
        let senders = if messages_scenario {
            self.senders.unwrap_or(self.members)
        } else {
            0
        };
        if senders > self.members {
            return Err(format!(
                "--senders {senders} is more than --members {}",
                self.members
            ));
        }
        // Between one message per MAX_SECONDS and one per nanosecond: the interval is then a
        // whole number of nanoseconds from 1 to 1e15, and sums of a run's intervals fit a u64.
        let min_rate = 1.0 / MAX_SECONDS;
        if !(self.rate == 0.0 || (self.rate >= min_rate && self.rate <= 1e9)) {
            return Err(format!(
                "--rate {:?} is out of range: it must be 0 (no pacing) or {min_rate} to 1e9 \
                 messages per second",
                self.rate
            ));
        }
        let interval_ns = if self.rate > 0.0 {
            Some(((1e9 / self.rate) as u64).max(1))
        } else {
            None
        };
        let messages = match (self.duration, interval_ns) {
            (Some(d), Some(_)) => {
                (self.rate * secs("duration", d, false)?.as_secs_f64()).ceil() as u64
            }
            (Some(_), None) => return Err("--duration needs --rate".into()),
            (None, _) => self.messages,
        };
        if self.pad > MAX_PAD {
            return Err(format!(
                "--pad {} is more than {MAX_PAD} bytes: the line would be too long",
                self.pad
            ));
        }
        let window = match self.window {
            Some(0) => None,
            Some(w) => Some(w),
            None if interval_ns.is_some() => None,
            None => Some(32),
        };
        if self.scenario == Scenario::JoinStorm {
            // One tracker per member of the JOIN notices of the members after it.
            let bytes = OrderTracker::bytes_needed(1, self.members as u64) * self.members as u128;
            if bytes > MAX_TRACKER_BYTES {
                return Err(format!(
                    "a join-storm of {} members is too large to track ({} MiB); lower -n",
                    self.members,
                    bytes >> 20
                ));
            }
        }
        if messages_scenario {
            let bytes = OrderTracker::bytes_needed(senders, messages) * self.members as u128;
            if bytes > MAX_TRACKER_BYTES {
                return Err(format!(
                    "members x senders x messages is too large to track ({} MiB); lower one",
                    bytes >> 20
                ));
            }
        }
        if self.read_rate == Some(0) || self.read_rate.is_some_and(|r| r > MAX_READ_RATE) {
            return Err(format!(
                "--read-rate {} is out of range: it must be 1 to {MAX_READ_RATE} bytes per second",
                self.read_rate.unwrap_or(0)
            ));
        }
        if self.recv_buffer == Some(0) || self.recv_buffer.is_some_and(|b| b > MAX_RECV_BUFFER) {
            return Err(format!(
                "--recv-buffer {} is out of range: it must be 1 to {MAX_RECV_BUFFER} bytes",
                self.recv_buffer.unwrap_or(0)
            ));
        }
        let prefix_ok = self.prefix.starts_with(|c: char| c.is_ascii_alphabetic())
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !prefix_ok {
            return Err(format!(
                "--prefix {:?} must start with a letter and hold only A-Z a-z 0-9 _ -",
                self.prefix
            ));
        }
        if self.prefix.len() + self.members.to_string().len() > chat_common::protocol::MAX_NAME_LEN
        {
            return Err("--prefix is too long for the member names".into());
        }
        if !self.channel.starts_with('#') || self.channel.contains([' ', ',', '\r', '\n']) {
            return Err(format!("--channel {:?} is no channel name", self.channel));
        }
        Ok(Config {
            addrs: match self.addr {
                Some(a) => vec![a],
                None if self.addrs.is_empty() => vec![SocketAddr::from(([127, 0, 0, 1], 55555))],
                None => self.addrs,
            },
            proto: self.proto,
            irc_addr: self.irc_addr,
            scenario: self.scenario,
            members: self.members,
            senders,
            messages: if messages_scenario { messages } else { 0 },
            window: if messages_scenario { window } else { None },
            interval_ns,
            rate: self.rate,
            timeout: secs("timeout", self.timeout, false)?,
            stall: secs("stall", self.stall, false)?,
            hold: secs("hold", self.hold, true)?,
            read_rate: self.read_rate,
            recv_buffer: self.recv_buffer,
            parallel: if self.scenario == Scenario::JoinStorm {
                1
            } else {
                self.parallel.max(1)
            },
            pad: self.pad,
            prefix: self.prefix,
            channel: self.channel,
            server_pid: self.server_pid,
            tls_ca: if self.tls { self.ca } else { None },
            ws: self.ws,
            metrics: self.metrics,
            json: self.json,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut all = vec!["chat-load"];
        all.extend_from_slice(args);
        Args::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .into_config()
    }

    #[test]
    fn defaults_and_derived_values() {
        let c = parse(&[]).unwrap();
        assert_eq!((c.members, c.senders, c.messages), (100, 100, 100));
        assert_eq!((c.window, c.interval_ns), (Some(32), None));
        let c = parse(&["-n", "10", "-s", "2", "--rate", "5", "--duration", "10"]).unwrap();
        assert_eq!((c.senders, c.messages, c.window), (2, 50, None));
        assert_eq!(c.interval_ns, Some(200_000_000));
        let c = parse(&["--window", "0"]).unwrap();
        assert_eq!(c.window, None);
        let c = parse(&["--scenario", "join-storm", "--parallel", "50"]).unwrap();
        assert_eq!((c.parallel, c.senders, c.messages), (1, 0, 0));
        let c = parse(&["--proto", "mixed", "--irc-addr", "127.0.0.1:7"]).unwrap();
        assert_eq!(c.proto.of(0), Proto::Chat);
        assert_eq!(c.proto.of(1), Proto::Irc);
    }

    #[test]
    fn addresses_positional_or_repeated() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.addrs, ["127.0.0.1:55555".parse::<SocketAddr>().unwrap()]);
        let c = parse(&["127.0.0.1:7"]).unwrap();
        assert_eq!(c.addrs, ["127.0.0.1:7".parse::<SocketAddr>().unwrap()]);
        let c = parse(&["--addr", "127.0.0.1:7", "--addr", "127.0.0.2:8"]).unwrap();
        assert_eq!(c.addrs.len(), 2);
        assert_eq!(c.addrs[1], "127.0.0.2:8".parse::<SocketAddr>().unwrap());
        assert!(parse(&["--addr", "127.0.0.1:7", "127.0.0.1:8"]).is_err());
    }

    #[test]
    fn refuses_inconsistent_numbers() {
        for args in [
            &["-n", "0"][..],
            &["-n", "1"],
            &["-n", "5", "-s", "6"],
            &["--duration", "3"],
            &["--rate", "-1"],
            &["--timeout", "-1"],
            &["--prefix", "9a"],
            &["--duration", "0", "--rate", "5"],
            &["--channel", "load"],
            &["-n", "10000", "-m", "100000000"],
            &["--scenario", "join-storm", "-n", "200000"],
            &["--scenario", "resume-storm", "--proto", "irc"],
            &["--scenario", "resume-storm", "--ws"],
            &["--proto", "mixed"],
            &["--irc-addr", "127.0.0.1:7"],
            &["--proto", "mixed", "--irc-addr", "127.0.0.1:7", "--ws"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    /// Huge times used to panic when added to an `Instant`; a tiny rate gave an interval of
    /// `u64::MAX` ns that wrapped when added up.
    #[test]
    fn refuses_numbers_out_of_range() {
        for args in [
            &["--timeout", "1e300"][..],
            &["--timeout", "0"],
            &["--timeout", "inf"],
            &["--timeout", "NaN"],
            &["--stall", "1e19"],
            &["--stall", "0"],
            &["--hold", "1e12"],
            &["--hold=-0.5"],
            &["--rate", "1e-300"],
            &["--rate", "1e-7"],
            &["--rate", "2e9"],
            &["--rate", "inf"],
            &["--rate", "NaN"],
            &["--rate", "1", "--duration", "1e300"],
            &["--pad", "100000"],
            &["-n", "1000001"],
            &["--read-rate", "0"],
            &["--recv-buffer", "0"],
            &["--read-rate", "2000000000"],
        ] {
            let e = parse(args).expect_err(&format!("{args:?}"));
            assert!(
                e.contains("range") || e.contains("more than"),
                "{args:?}: {e}"
            );
        }
        let c = parse(&["--timeout", "1000000", "--stall", "0.001", "--hold", "0"]).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(1_000_000));
        let c = parse(&["--rate", "0.000001", "-m", "2"]).unwrap();
        assert_eq!(c.interval_ns, Some(1_000_000_000_000_000));
        let c = parse(&["--rate", "1e9"]).unwrap();
        assert_eq!(c.interval_ns, Some(1));
    }
}
