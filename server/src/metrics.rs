//! The server's vital signs, counted by the reactor and rendered for `/metrics` in the
//! Prometheus text exposition format (version 0.0.4).
//!
//! Names follow Prometheus's conventions: the `chat_` prefix, base units (`_bytes`,
//! `_seconds`), `_total` on counters. Labels only ever take values from the fixed sets below
//! (a transport, a reason, a kind): never a member's name or a peer's address, so the number of
//! series is fixed whatever peers do. Counters are plain integers owned by the reactor's one
//! thread; gauges are read from the state when scraped ([`Gauges`]). This module never does I/O.

use std::fmt::Write as _;
use std::time::Duration;

/// How a connection reached the server (the `transport` label): the core's one type.
pub use crate::chat::Transport;

/// A transport's slot in the per-transport arrays (the order of [`Transport::ALL`]).
fn index(t: Transport) -> usize {
    t as usize
}

/// Why the server cut a member off (the `reason` label of `chat_drops_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its output queue would have passed `--max-queue`.
    QueueFull,
    /// Its output did not move for `--stall-timeout`.
    Stalled,
    /// It broke the protocol (a WebSocket violation, a read error).
    Protocol,
}

impl DropReason {
    /// Every reason, in the order of their series.
    pub const ALL: [DropReason; 3] = [
        DropReason::QueueFull,
        DropReason::Stalled,
        DropReason::Protocol,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Stalled => "stalled",
            DropReason::Protocol => "protocol",
        }
    }
}

/// Upper bounds of the flush-time histogram's buckets, in seconds: from a tenth of a
/// millisecond (a page-cache write) to a second (a disk in trouble).
pub const FLUSH_BUCKETS: [f64; 11] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
];

/// A histogram with the fixed buckets [`FLUSH_BUCKETS`].
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative; the last is above every bound).
    counts: [u64; FLUSH_BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&mut self, value: Duration) {
        let secs = value.as_secs_f64();
        let bucket = FLUSH_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(FLUSH_BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum += secs;
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The counters, kept by the reactor as things happen.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    accepted: [u64; Transport::ALL.len()],
    drops: [u64; DropReason::ALL.len()],
    /// Room and private messages relayed (`MSG`, `ACT`, `PRIV`).
    pub relayed: u64,
    /// Lines queued for a member (one per recipient).
    pub deliveries: u64,
    /// Bytes read from members' connections.
    pub bytes_in: u64,
    /// Bytes written to members' connections.
    pub bytes_out: u64,
    /// HTTP requests answered on the web and metrics listeners.
    pub http_requests: u64,
    /// WebSocket handshakes completed.
    pub ws_upgrades: u64,
    /// How long each durable store flush took.
    pub store_flush: Histogram,
}

/// The gauges, read from the server's state at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Open connections per transport, indexed as [`Transport::ALL`].
    pub connections: [usize; Transport::ALL.len()],
    /// Members in the room on this server.
    pub members: usize,
    /// Joins waiting for an operator.
    pub waiting: usize,
    /// Bytes waiting in output queues, as `--max-queue` counts them.
    pub queued_bytes: usize,
    /// The store's counters (kept by its disk thread), when there is a store.
    pub store: Option<StoreCounters>,
}

/// The store's counters, read from its disk thread's atomics at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StoreCounters {
    /// Log entries made durable.
    pub durable: u64,
    /// Commits (each an fsync on disk).
    pub flushes: u64,
    /// Time spent in commits, in microseconds.
    pub flush_micros: u64,
    /// Commits that failed.
    pub failures: u64,
}

impl Gauges {
    /// Counts one open connection of `transport`.
    pub fn count(&mut self, transport: Transport) {
        self.connections[index(transport)] += 1;
    }
}

impl Metrics {
    /// Counts an accepted connection.
    pub fn accepted(&mut self, transport: Transport) {
        self.accepted[index(transport)] += 1;
    }

    /// Counts a member cut off by the server.
    pub fn dropped(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// The exposition: every series, with `# HELP` and `# TYPE`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "chat_connections",
            "gauge",
            "Open connections by transport.",
        );
        for t in Transport::ALL {
            let v = gauges.connections[index(t)];
            let _ = writeln!(out, "chat_connections{{transport=\"{}\"}} {v}", t.label());
        }
        family(
            &mut out,
            "chat_connections_accepted_total",
            "counter",
            "Connections accepted, by transport.",
        );
        for t in Transport::ALL {
            let v = self.accepted[index(t)];
            let _ = writeln!(
                out,
                "chat_connections_accepted_total{{transport=\"{}\"}} {v}",
                t.label()
            );
        }
        let simple: [(&str, &str, &str, f64); 9] = [
            (
                "chat_members",
                "gauge",
                "Members in the room on this server.",
                gauges.members as f64,
            ),
            (
                "chat_waiting_joins",
                "gauge",
                "Joins waiting for an operator.",
                gauges.waiting as f64,
            ),
            (
                "chat_queued_bytes",
                "gauge",
                "Bytes waiting in output queues (with per-line overhead).",
                gauges.queued_bytes as f64,
            ),
            (
                "chat_messages_relayed_total",
                "counter",
                "Room and private messages relayed.",
                self.relayed as f64,
            ),
            (
                "chat_deliveries_total",
                "counter",
                "Lines queued for members.",
                self.deliveries as f64,
            ),
            (
                "chat_received_bytes_total",
                "counter",
                "Bytes read from members' connections.",
                self.bytes_in as f64,
            ),
            (
                "chat_sent_bytes_total",
                "counter",
                "Bytes written to members' connections.",
                self.bytes_out as f64,
            ),
            (
                "chat_http_requests_total",
                "counter",
                "HTTP requests answered.",
                self.http_requests as f64,
            ),
            (
                "chat_websocket_upgrades_total",
                "counter",
                "WebSocket handshakes completed.",
                self.ws_upgrades as f64,
            ),
        ];
        for (name, kind, help, value) in simple {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            &mut out,
            "chat_drops_total",
            "counter",
            "Members cut off by the server, by reason.",
        );
        for r in DropReason::ALL {
            let v = self.drops[r as usize];
            let _ = writeln!(out, "chat_drops_total{{reason=\"{}\"}} {v}", r.label());
        }
        if let Some(st) = gauges.store {
            let store: [(&str, &str, f64); 4] = [
                (
                    "chat_store_durable_total",
                    "Messages (log entries) the store made durable.",
                    st.durable as f64,
                ),
                (
                    "chat_store_flushes_total",
                    "Store commits (one fsync each on disk; one serves a whole round).",
                    st.flushes as f64,
                ),
                (
                    "chat_store_flush_seconds_total",
                    "Time spent in store commits.",
                    st.flush_micros as f64 / 1e6,
                ),
                (
                    "chat_store_failures_total",
                    "Store commits that failed.",
                    st.failures as f64,
                ),
            ];
            for (name, help, value) in store {
                family(&mut out, name, "counter", help);
                let _ = writeln!(out, "{name} {value}");
            }
        }
        let name = "chat_store_flush_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Time to make a batch of messages durable.",
        );
        let mut cumulative = 0;
        for (i, bound) in FLUSH_BUCKETS.iter().enumerate() {
            cumulative += self.store_flush.counts[i];
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.store_flush.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.store_flush.sum);
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_once_with_its_values() {
        let mut m = Metrics::default();
        m.accepted(Transport::Ws);
        m.dropped(DropReason::Stalled);
        m.relayed = 7;
        m.store_flush.observe(Duration::from_micros(300));
        m.store_flush.observe(Duration::from_secs(5));
        let mut g = Gauges {
            members: 2,
            store: Some(StoreCounters {
                durable: 40,
                flushes: 3,
                flush_micros: 1_500_000,
                failures: 0,
            }),
            ..Gauges::default()
        };
        g.count(Transport::Tcp);
        let text = m.render(&g);
        for line in [
            "chat_connections{transport=\"tcp\"} 1",
            "chat_connections{transport=\"wss\"} 0",
            "chat_connections_accepted_total{transport=\"ws\"} 1",
            "chat_members 2",
            "chat_messages_relayed_total 7",
            "chat_drops_total{reason=\"stalled\"} 1",
            "chat_store_flush_seconds_bucket{le=\"0.00025\"} 0",
            "chat_store_flush_seconds_bucket{le=\"0.0005\"} 1",
            "chat_store_flush_seconds_bucket{le=\"1\"} 1",
            "chat_store_flush_seconds_bucket{le=\"+Inf\"} 2",
            "chat_store_flush_seconds_count 2",
            "chat_store_durable_total 40",
            "chat_store_flushes_total 3",
            "chat_store_flush_seconds_total 1.5",
            "chat_store_failures_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, helps);
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("chat_"), "{l}");
        }
    }
}
