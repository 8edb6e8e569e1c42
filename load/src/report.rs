//! The figures of one run, and their two renderings: a table for people and one JSON object
//! (hand-formatted, flat, fixed keys) for scripts.
//!
//! Nothing here measures; the engine fills a [`Report`] and this module only formats it.

use std::fmt::Write;

use crate::config::Config;

/// Every figure of one run. Times are seconds, latencies microseconds; `None` prints as `null`
/// (JSON) or `-` (table): not measured in this scenario or without `--server-pid`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// Protocol name.
    pub proto: &'static str,
    /// Server address (several: joined by commas, in the order members were spread over them).
    pub addr: String,
    /// N.
    pub members: usize,
    /// S.
    pub senders: usize,
    /// M.
    pub messages: u64,
    /// W (0 = unlimited).
    pub window: u64,
    /// Messages per second per sender (0 = unpaced).
    pub rate: f64,
    /// `--read-rate`: bytes per second each admitted member reads during admission (`None`:
    /// unpaced).
    pub read_rate: Option<u64>,
    /// `--recv-buffer`: SO_RCVBUF asked for each member's socket (`None`: kernel default).
    pub recv_buffer: Option<u64>,
    /// Members connected with TLS.
    pub tls: bool,
    /// Members connected with WebSocket.
    pub ws: bool,

    /// Everything arrived once, in order, in time, and nothing was refused, no error and no
    /// foreign line came from the server.
    pub ok: bool,
    /// The overall --timeout hit.
    pub timed_out: bool,
    /// Nothing arrived for --stall seconds while something was expected.
    pub stalled: bool,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,

    /// Members admitted.
    pub admitted: usize,
    /// Connections that failed before admission (refused, closed, connect error).
    pub failed: usize,
    /// Admitted members whose connection closed during the run.
    pub closed: usize,
    /// DENIED/BYE (chat) or ERROR (IRC) lines received.
    pub refused: u64,
    /// ERROR (chat) lines, or IRC numerics refusing a registration, a join or a message (not
    /// harmless ones such as 422, no MOTD), received.
    pub server_errors: u64,
    /// Lines that were neither protocol nor load messages (or load messages of no sender, or
    /// JOIN notices of no member of the run).
    pub foreign: u64,

    /// Seconds from the first connect to the last admission (join-storm: the total time). When
    /// not every member got in, up to the last one that did (see `admitted`).
    pub admit_s: f64,
    /// Seconds from the last admission until every JOIN notice had arrived.
    pub settle_s: Option<f64>,

    /// Messages sent.
    pub sent: u64,
    /// Deliveries expected: S x M x (N - 1).
    pub expected: u64,
    /// Distinct deliveries received.
    pub delivered: u64,
    /// Deliveries of sent messages that never arrived (to members still or no longer there).
    pub lost: u64,
    /// Messages the senders never sent (S x M - sent): window stuck, timeout, sender cut off.
    pub unsent: u64,
    /// Deliveries received more than once.
    pub duplicated: u64,
    /// Deliveries that arrived after a later message of the same sender.
    pub out_of_order: u64,
    /// Seconds from the first send to the last delivery.
    pub send_s: Option<f64>,
    /// delivered / send_s.
    pub deliveries_per_s: Option<f64>,
    /// Latency percentiles and extremes, microseconds, over every delivery.
    pub lat_p50_us: Option<f64>,
    /// 99th percentile.
    pub lat_p99_us: Option<f64>,
    /// 99.9th percentile.
    pub lat_p999_us: Option<f64>,
    /// Largest.
    pub lat_max_us: Option<f64>,
    /// Mean.
    pub lat_mean_us: Option<f64>,

    /// JOIN notices expected: N(N-1)/2.
    pub joins_expected: u64,
    /// JOIN notices received (join-storm: distinct ones owed, so duplicates do not count).
    pub joins_received: u64,
    /// Join-storm: JOIN notices an earlier member never got of a later one.
    pub joins_missing: Option<u64>,
    /// Join-storm: JOIN notices that arrived after the notice of a member admitted later.
    pub joins_out_of_order: Option<u64>,
    /// Join-storm: JOIN notices received again, or of a member admitted before the receiver.
    pub joins_duplicated: Option<u64>,

    /// Server CPU seconds over the whole run.
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds over the message phase.
    pub server_cpu_send_s: Option<f64>,
    /// Server VmRSS before the first connect, KiB.
    pub server_rss_before_kib: Option<u64>,
    /// Server VmRSS at the end, KiB.
    pub server_rss_after_kib: Option<u64>,
    /// Server VmHWM at the end, KiB.
    pub server_hwm_kib: Option<u64>,
    /// Idle and join-storm: (RSS after the hold - RSS before) / members admitted, bytes
    /// (`None` when none got in): what the server keeps per idle member once every JOIN notice
    /// has been delivered.
    pub rss_per_member_b: Option<f64>,
    /// Idle and join-storm: (VmHWM - RSS before) / members admitted, bytes: the server's peak
    /// growth per member during the storm.
    pub rss_peak_per_member_b: Option<f64>,

    /// Server CPU nanoseconds per delivery over the message phase: what a delivery costs the
    /// server, steady even when other processes compete for the CPU.
    pub server_ns_per_delivery: Option<f64>,
    /// Generator CPU nanoseconds per delivery over the message phase; 1e9 / this is the
    /// generator's own ceiling in deliveries per second on one free core.
    pub gen_ns_per_delivery: Option<f64>,
    /// Generator CPU seconds / wall seconds over the message phase (1.0: saturated).
    pub gen_busy: Option<f64>,
    /// Generator CPU seconds over the run.
    pub gen_cpu_s: Option<f64>,
    /// Generator CPU seconds over the message phase.
    pub gen_cpu_send_s: Option<f64>,
    /// Generator VmHWM at the end, KiB: its own peak memory.
    pub gen_hwm_kib: Option<u64>,
    /// CPU seconds other processes took over the run (machine busy time less the server's and
    /// the generator's): how disturbed the run was. Needs `--server-pid`.
    pub others_cpu_s: Option<f64>,
    /// Resume-storm: members back (their `RESUME` answered with `WELCOME` and their replay
    /// read to its `INFO online` line).
    pub resumed: Option<u64>,
    /// Resume-storm: seconds from the cut until the last member was back.
    pub resume_s: Option<f64>,
    /// Resume-storm: `JOIN`/`LEAVE` lines members saw during the storm (the contract: none,
    /// a resumed member never left).
    pub resume_notices: Option<u64>,
    /// With `--metrics`: log entries the server's store made durable per second, over the
    /// message phase (resume-storm: over the storm).
    pub store_durable_per_s: Option<f64>,
    /// With `--metrics`: the store's commits (fsyncs) per second, over the same span.
    pub store_flushes_per_s: Option<f64>,
    /// With `--metrics`: mean milliseconds per commit over the same span.
    pub store_flush_ms: Option<f64>,
    /// Wall seconds of the whole run.
    pub wall_s: f64,
}

impl Report {
    /// An empty report describing `cfg`.
    pub fn new(cfg: &Config) -> Self {
        Report {
            scenario: cfg.scenario.as_str(),
            proto: cfg.proto.as_str(),
            addr: cfg
                .addrs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(","),
            members: cfg.members,
            senders: cfg.senders,
            messages: cfg.messages,
            window: cfg.window.unwrap_or(0),
            rate: cfg.rate,
            read_rate: cfg.read_rate,
            recv_buffer: cfg.recv_buffer.map(|b| b as u64),
            tls: cfg.tls_ca.is_some(),
            ws: cfg.ws,
            ..Report::default()
        }
    }

    /// The figures as `(key, value)`, in output order; the value is JSON.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let f = |v: f64| fmt_f64(v);
        let of = |v: Option<f64>| v.map_or("null".to_owned(), fmt_f64);
        let ou = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        vec![
            ("scenario", json_str(self.scenario)),
            ("proto", json_str(self.proto)),
            ("addr", json_str(&self.addr)),
            ("members", self.members.to_string()),
            ("senders", self.senders.to_string()),
            ("messages", self.messages.to_string()),
            ("window", self.window.to_string()),
            ("rate", f(self.rate)),
            ("read_rate", ou(self.read_rate)),
            ("recv_buffer", ou(self.recv_buffer)),
            ("tls", self.tls.to_string()),
            ("ws", self.ws.to_string()),
            ("ok", self.ok.to_string()),
            ("timed_out", self.timed_out.to_string()),
            ("stalled", self.stalled.to_string()),
            (
                "error",
                self.error.as_deref().map_or("null".to_owned(), json_str),
            ),
            ("admitted", self.admitted.to_string()),
            ("failed", self.failed.to_string()),
            ("closed", self.closed.to_string()),
            ("refused", self.refused.to_string()),
            ("server_errors", self.server_errors.to_string()),
            ("foreign", self.foreign.to_string()),
            ("admit_s", f(self.admit_s)),
            ("settle_s", of(self.settle_s)),
            ("sent", self.sent.to_string()),
            ("expected", self.expected.to_string()),
            ("delivered", self.delivered.to_string()),
            ("lost", self.lost.to_string()),
            ("unsent", self.unsent.to_string()),
            ("duplicated", self.duplicated.to_string()),
            ("out_of_order", self.out_of_order.to_string()),
            ("send_s", of(self.send_s)),
            ("deliveries_per_s", of(self.deliveries_per_s)),
            ("lat_p50_us", of(self.lat_p50_us)),
            ("lat_p99_us", of(self.lat_p99_us)),
            ("lat_p999_us", of(self.lat_p999_us)),
            ("lat_max_us", of(self.lat_max_us)),
            ("lat_mean_us", of(self.lat_mean_us)),
            ("joins_expected", self.joins_expected.to_string()),
            ("joins_received", self.joins_received.to_string()),
            ("joins_missing", ou(self.joins_missing)),
            ("joins_out_of_order", ou(self.joins_out_of_order)),
            ("joins_duplicated", ou(self.joins_duplicated)),
            ("server_cpu_s", of(self.server_cpu_s)),
            ("server_cpu_send_s", of(self.server_cpu_send_s)),
            ("server_rss_before_kib", ou(self.server_rss_before_kib)),
            ("server_rss_after_kib", ou(self.server_rss_after_kib)),
            ("server_hwm_kib", ou(self.server_hwm_kib)),
            ("rss_per_member_b", of(self.rss_per_member_b)),
            ("rss_peak_per_member_b", of(self.rss_peak_per_member_b)),
            ("server_ns_per_delivery", of(self.server_ns_per_delivery)),
            ("gen_ns_per_delivery", of(self.gen_ns_per_delivery)),
            ("gen_busy", of(self.gen_busy)),
            ("gen_cpu_s", of(self.gen_cpu_s)),
            ("gen_cpu_send_s", of(self.gen_cpu_send_s)),
            ("gen_hwm_kib", ou(self.gen_hwm_kib)),
            ("others_cpu_s", of(self.others_cpu_s)),
            ("resumed", ou(self.resumed)),
            ("resume_s", of(self.resume_s)),
            ("resume_notices", ou(self.resume_notices)),
            ("store_durable_per_s", of(self.store_durable_per_s)),
            ("store_flushes_per_s", of(self.store_flushes_per_s)),
            ("store_flush_ms", of(self.store_flush_ms)),
            ("wall_s", f(self.wall_s)),
        ]
    }

    /// One JSON object on one line.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.fields().into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{k}\":{v}");
        }
        out.push('}');
        out
    }

    /// A two-column table for people; figures that were not measured are left out.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.fields() {
            if v == "null" {
                continue;
            }
            let v = v.trim_matches('"');
            let _ = writeln!(out, "{k:<22} {v}");
        }
        out
    }
}

/// A finite number with at most 3 decimals (JSON has no NaN or infinity: those become null).
fn fmt_f64(v: f64) -> String {
    if !v.is_finite() {
        return "null".to_owned();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_are_valid_json() {
        assert_eq!(fmt_f64(1.5), "1.5");
        assert_eq!(fmt_f64(2.0), "2");
        assert_eq!(fmt_f64(0.0001), "0");
        assert_eq!(fmt_f64(123.4567), "123.457");
        assert_eq!(fmt_f64(f64::NAN), "null");
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn json_is_one_flat_object() {
        let r = Report {
            scenario: "idle",
            error: Some("x".into()),
            lat_p50_us: Some(12.25),
            ..Report::default()
        };
        let j = r.to_json();
        assert!(j.starts_with("{\"scenario\":\"idle\",") && j.ends_with('}'));
        assert!(j.contains("\"error\":\"x\""));
        assert!(j.contains("\"lat_p50_us\":12.25,"));
        assert!(j.contains("\"lat_p99_us\":null,"));
        assert!(!j.contains('\n'));
        let t = r.to_table();
        assert!(t.contains("lat_p50_us             12.25\n"));
        assert!(!t.contains("lat_p99_us"));
    }
}
