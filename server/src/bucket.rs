//! A token bucket: the one mechanism behind every rate in the server (lines and bytes a
//! connection may send, renames a member may make).
//!
//! Time is an argument, never read here. The bucket may go into debt (a line longer than the
//! bytes left is let through whole, and the sender then waits longer), so no input is ever
//! split or lost to pacing.

use std::time::{Duration, Instant};

/// Tokens earned at a rate, at most a capacity saved up.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A bucket holding `tokens`.
    pub fn full(tokens: f64, now: Instant) -> Bucket {
        Bucket { tokens, last: now }
    }

    /// Adds what `per_second` earned since the last refill, up to `capacity`.
    pub fn refill(&mut self, per_second: f64, capacity: f64, now: Instant) {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * per_second;
        self.tokens = (self.tokens + earned).min(capacity);
        self.last = now;
    }

    /// Takes `n` tokens if there are that many.
    pub fn take(&mut self, n: f64) -> bool {
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens, going into debt if there are fewer.
    pub fn spend(&mut self, n: f64) {
        self.tokens -= n;
    }

    /// Gives back `n` tokens taken but not used.
    pub fn give_back(&mut self, n: f64) {
        self.tokens += n;
    }

    /// Whether at least `n` tokens are there.
    pub fn has(&self, n: f64) -> bool {
        self.tokens >= n
    }

    /// Tokens available now (negative in debt).
    pub fn tokens(&self) -> f64 {
        self.tokens
    }

    /// Time until `n` tokens are there at `per_second` (> 0).
    pub fn wait_for(&self, n: f64, per_second: f64) -> Duration {
        let missing = (n - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / per_second.max(f64::MIN_POSITIVE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_refills_and_caps() {
        let t0 = Instant::now();
        let mut b = Bucket::full(2.0, t0);
        assert!(b.take(1.0) && b.take(1.0));
        assert!(!b.take(1.0));
        assert_eq!(b.wait_for(1.0, 10.0), Duration::from_millis(100));
        b.refill(10.0, 2.0, t0 + Duration::from_millis(100));
        assert!(b.take(1.0));
        b.refill(10.0, 2.0, t0 + Duration::from_secs(100));
        assert!(b.take(1.0) && b.take(1.0) && !b.take(1.0), "capped");
    }

    #[test]
    fn debt_is_paid_before_anything_more() {
        let t0 = Instant::now();
        let mut b = Bucket::full(100.0, t0);
        b.spend(300.0);
        assert!(!b.has(1.0));
        assert_eq!(b.wait_for(1.0, 100.0), Duration::from_millis(2010));
        b.refill(100.0, 100.0, t0 + Duration::from_secs(3));
        assert!(b.has(1.0));
    }
}
