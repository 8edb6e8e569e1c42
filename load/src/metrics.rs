//! The server's store counters, read from its Prometheus endpoint (`--metrics-listen`), so a
//! run can report messages made durable and flushes per second.
//!
//! A blocking `GET /metrics` with a short timeout, done between phases (never while members are
//! being served), and a parser of the few lines it needs. Nothing here measures time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::report::Report;

/// How long one scrape may take.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes of an answer read (the exposition is a few KiB).
pub const MAX_ANSWER: u64 = 1 << 20;

/// The store's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoreCounters {
    /// When they were read.
    pub at: Instant,
    /// `chat_store_durable_total`: log entries made durable.
    pub durable: f64,
    /// `chat_store_flushes_total`: commits.
    pub flushes: f64,
    /// `chat_store_flush_seconds_total`: time spent in commits.
    pub flush_s: f64,
}

/// Reads the counters from `addr`; `None` when the server does not answer them (no store
/// counters, no endpoint, a timeout).
pub fn scrape(addr: SocketAddr) -> Option<StoreCounters> {
    let mut s = TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT).ok()?;
    s.set_read_timeout(Some(SCRAPE_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(SCRAPE_TIMEOUT)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.take(MAX_ANSWER).read_to_string(&mut text).ok()?;
    let at = Instant::now();
    parse(&text, at)
}

/// The counters in an exposition's text.
pub fn parse(text: &str, at: Instant) -> Option<StoreCounters> {
    let value = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
            rest.trim().parse::<f64>().ok()
        })
    };
    Some(StoreCounters {
        at,
        durable: value("chat_store_durable_total")?,
        flushes: value("chat_store_flushes_total")?,
        flush_s: value("chat_store_flush_seconds_total")?,
    })
}

/// Fills the report's store rates from two readings.
pub fn fill(report: &mut Report, start: Option<StoreCounters>, end: Option<StoreCounters>) {
    let (Some(a), Some(b)) = (start, end) else {
        return;
    };
    let secs = b.at.duration_since(a.at).as_secs_f64();
    if secs <= 0.0 {
        return;
    }
    let flushes = b.flushes - a.flushes;
    report.store_durable_per_s = Some((b.durable - a.durable) / secs);
    report.store_flushes_per_s = Some(flushes / secs);
    if flushes > 0.0 {
        report.store_flush_ms = Some((b.flush_s - a.flush_s) * 1000.0 / flushes);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_and_turned_into_rates() {
        let t0 = Instant::now();
        let text = "HTTP/1.1 200 OK\r\n\r\n# HELP chat_store_durable_total x\n\
                    chat_store_durable_total_x 9\nchat_store_durable_total 100\n\
                    chat_store_flushes_total 10\nchat_store_flush_seconds_total 0.5\n";
        let a = parse(text, t0).unwrap();
        assert_eq!((a.durable, a.flushes, a.flush_s), (100.0, 10.0, 0.5));
        assert!(parse("chat_store_durable_total 1\n", t0).is_none());
        let b = StoreCounters {
            at: t0 + Duration::from_secs(2),
            durable: 300.0,
            flushes: 30.0,
            flush_s: 1.5,
        };
        let mut r = Report::default();
        fill(&mut r, Some(a), Some(b));
        assert_eq!(r.store_durable_per_s, Some(100.0));
        assert_eq!(r.store_flushes_per_s, Some(10.0));
        assert_eq!(r.store_flush_ms, Some(50.0));
        let mut r = Report::default();
        fill(&mut r, Some(a), None);
        assert_eq!(r.store_durable_per_s, None);
    }
}
