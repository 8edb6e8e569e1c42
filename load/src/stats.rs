//! Latency statistics: every delivery recorded in constant memory, percentiles within 1/128
//! (0.8 %) relative error.
//!
//! The buckets are the `hdrhistogram` crate's, with two significant digits (values below 256 ns
//! exact; above, 128 buckets per power of two): about 58 KiB for the whole `u64` range, whatever
//! the run's size. Beside it this type keeps the exact count, sum, minimum and maximum, so the
//! report's mean and maximum are not rounded to a bucket and no percentile is reported above the
//! largest latency seen.
//!
//! Cost, measured when the crate replaced a hand-written clone of the same bucket layout (one
//! pinned core, 50 million records of 5 us .. 20 ms, best of 3): 3.7 ns per record against
//! 3.1 ns, under 2 % of chat-load's 32 ns of CPU per delivery; identical percentiles.

/// Values up to this are tracked; above, they count as this (about 146 years of nanoseconds).
const HIGHEST: u64 = u64::MAX / 2;

/// A histogram of nanosecond values.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// The buckets; a record beyond [`HIGHEST`] saturates to it.
    buckets: hdrhistogram::Histogram<u64>,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            // 1 .. HIGHEST with 2 significant digits are valid bounds: this cannot fail.
            buckets: hdrhistogram::Histogram::new_with_bounds(1, HIGHEST, 2)
                .unwrap_or_else(|e| unreachable!("histogram bounds: {e}")),
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.buckets.saturating_record(v);
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.len()
    }

    /// The largest value, 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value, 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.min
        }
    }

    /// The mean, 0 when empty.
    pub fn mean(&self) -> u64 {
        match self.count() {
            0 => 0,
            n => (self.sum / u128::from(n)) as u64,
        }
    }

    /// The `q` quantile (`0.0..=1.0`): the smallest recorded value v such that at least
    /// `ceil(q * count)` values are <= v, reported as the top of v's bucket (never above the
    /// maximum). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 1.0);
        self.buckets.value_at_quantile(q).clamp(self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_known_data() {
        let mut h = Histogram::default();
        assert_eq!((h.quantile(0.5), h.mean(), h.min(), h.max()), (0, 0, 0, 0));
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!((h.min(), h.max(), h.mean()), (1, 100, 50));
    }

    #[test]
    fn large_values_within_relative_error() {
        let mut h = Histogram::default();
        // 1000 values 1 us .. 1 ms, and one outlier of 1 s.
        for i in 1..=1000u64 {
            h.record(i * 1_000);
        }
        h.record(1_000_000_000);
        let close = |got: u64, want: u64| {
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(err <= 1.0 / 128.0, "got {got}, want {want}");
        };
        close(h.quantile(0.5), 501_000);
        close(h.quantile(0.99), 991_000);
        close(h.quantile(0.999), 1_000_000);
        assert_eq!(h.quantile(1.0), 1_000_000_000);
        assert_eq!(h.max(), 1_000_000_000);
    }

    #[test]
    fn zero_and_huge_values_are_recorded() {
        let mut h = Histogram::default();
        h.record(0);
        h.record(u64::MAX);
        assert_eq!((h.count(), h.min(), h.max()), (2, 0, u64::MAX));
        assert_eq!(h.quantile(0.5), 0);
        assert!(h.quantile(1.0) >= HIGHEST);
    }
}
