//! The end of a run: the engine's counters, clocks and `/proc` samples become the figures of a
//! [`Report`], including whether the run checked out (`ok`). Nothing here measures.

use crate::config::Scenario;
use crate::procfs;
use crate::report::Report;

use super::Engine;

impl Engine<'_> {
    /// Computes the figures.
    pub(super) fn finish(mut self) -> Report {
        let cfg = self.cfg;
        let server_end = cfg.server_pid.and_then(|p| procfs::sample(Some(p)));
        let gen_end = procfs::sample(None);
        let mut r = std::mem::take(&mut self.report);
        if self.store_start.is_some() {
            let end = cfg.metrics.and_then(crate::metrics::scrape);
            crate::metrics::fill(&mut r, self.store_start, end);
        }
        r.wall_s = self.clock.elapsed().as_secs_f64();
        r.admitted = self.admitted;
        r.failed = self.failed;
        if let (Some(a), Some(b)) = (self.t_first_connect, self.t_admitted.or(self.t_last_admit)) {
            r.admit_s = b.duration_since(a).as_secs_f64();
        }
        r.joins_expected = self.joins_expected;
        r.joins_received = self.joins_total;
        if cfg.scenario == Scenario::JoinStorm {
            let n = self.members.len();
            let mut missing = 0;
            let mut disorder = 0;
            for (j, t) in self.join_trackers.iter().enumerate() {
                missing += t.missing_from(0, (n - 1 - j) as u64);
                disorder += t.out_of_order;
            }
            r.joins_missing = Some(missing);
            r.joins_out_of_order = Some(disorder);
            r.joins_duplicated = Some(self.joins_duplicated);
        }
        if cfg.scenario == Scenario::Messages {
            r.sent = self.sent;
            r.expected = self.expected;
            r.delivered = self.delivered;
            let mut lost = 0;
            for (i, t) in self.trackers.iter().enumerate() {
                r.duplicated += t.duplicated;
                r.out_of_order += t.out_of_order;
                for (s, sender) in self.senders.iter().enumerate() {
                    if s != i {
                        lost += t.missing_from(s, sender.next_seq);
                    }
                }
            }
            r.lost = lost;
            // What a sender never got to send (window stuck behind a lost message, timeout) is
            // reported apart from what the server lost.
            r.unsent = cfg.senders as u64 * cfg.messages - self.sent;
            if let (Some(a), true) = (self.t_first_send, self.t_last_delivery_ns > 0) {
                let first_ns = a.duration_since(self.clock).as_nanos() as u64;
                let secs = self.t_last_delivery_ns.saturating_sub(first_ns) as f64 / 1e9;
                r.send_s = Some(secs);
                if secs > 0.0 {
                    r.deliveries_per_s = Some(self.delivered as f64 / secs);
                }
            }
            if self.hist.count() > 0 {
                let us = |ns: u64| ns as f64 / 1000.0;
                r.lat_p50_us = Some(us(self.hist.quantile(0.5)));
                r.lat_p99_us = Some(us(self.hist.quantile(0.99)));
                r.lat_p999_us = Some(us(self.hist.quantile(0.999)));
                r.lat_max_us = Some(us(self.hist.max()));
                r.lat_mean_us = Some(us(self.hist.mean()));
            }
            let per_delivery =
                |cpu: f64| (self.delivered > 0).then(|| cpu * 1e9 / self.delivered as f64);
            if let (Some(a), Some(b)) = (self.server_send_start, server_end) {
                let cpu = b.cpu_since(&a);
                r.server_cpu_send_s = Some(cpu);
                r.server_ns_per_delivery = per_delivery(cpu);
            }
            if let (Some(a), Some(b)) = (self.gen_send_start, gen_end) {
                let cpu = b.cpu_since(&a);
                r.gen_cpu_send_s = Some(cpu);
                r.gen_ns_per_delivery = per_delivery(cpu);
                r.gen_busy = r.send_s.filter(|&s| s > 0.0).map(|s| cpu / s);
            }
        }
        if let (Some(a), Some(b)) = (self.server_start, server_end) {
            r.server_cpu_s = Some(b.cpu_since(&a));
            r.server_rss_before_kib = Some(a.rss_kib);
            r.server_rss_after_kib = Some(b.rss_kib);
            r.server_hwm_kib = Some(b.hwm_kib);
            if matches!(cfg.scenario, Scenario::Idle | Scenario::JoinStorm) {
                r.rss_per_member_b = rss_per_member(a.rss_kib, b.rss_kib, self.admitted);
                r.rss_peak_per_member_b = rss_per_member(a.rss_kib, b.hwm_kib, self.admitted);
            }
        }
        if let (Some(a), Some(b)) = (self.gen_start, gen_end) {
            r.gen_cpu_s = Some(b.cpu_since(&a));
        }
        r.gen_hwm_kib = gen_end.map(|b| b.hwm_kib);
        if let (Some(a), Some(b), Some(server), Some(gen)) = (
            self.machine_start,
            procfs::machine_busy_s(),
            r.server_cpu_s,
            r.gen_cpu_s,
        ) {
            r.others_cpu_s = Some((b - a - server - gen).max(0.0));
        }
        r.ok = !r.timed_out
            && !r.stalled
            && r.error.is_none()
            && r.failed == 0
            && r.closed == 0
            && r.refused == 0
            && r.server_errors == 0
            && r.foreign == 0
            && r.lost == 0
            && r.unsent == 0
            && r.duplicated == 0
            && r.out_of_order == 0
            && r.delivered == r.expected
            // Over several servers of a cluster, two members admitted at the same moment on
            // different servers may each get the other's JOIN (each was not yet in the other's
            // view): at least one notice per pair, never one per member twice.
            && (r.joins_received == r.joins_expected
                || (self.cfg.addrs.len() > 1 && r.joins_received >= r.joins_expected))
            && r.joins_missing.unwrap_or(0) == 0
            && r.joins_out_of_order.unwrap_or(0) == 0
            && r.joins_duplicated.unwrap_or(0) == 0;
        r
    }
}

/// Server memory per admitted member, bytes: the growth of its resident set over the run
/// divided by the members that got in (`None` when none did).
fn rss_per_member(before_kib: u64, after_kib: u64, admitted: usize) -> Option<f64> {
    let grown = after_kib as f64 - before_kib as f64;
    (admitted > 0).then(|| grown * 1024.0 / admitted as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_divided_by_the_members_admitted() {
        assert_eq!(rss_per_member(1000, 1100, 50), Some(2048.0));
        assert_eq!(rss_per_member(1000, 1100, 0), None);
        assert_eq!(rss_per_member(1100, 1000, 100), Some(-1024.0));
    }
}
