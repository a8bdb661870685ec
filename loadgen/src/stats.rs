//! What a run measured: acknowledged reports, latency samples and errors by
//! gRPC code. Pure: each simulated host keeps its own `Tally` (no locks on
//! the hot path) and the tallies are merged once at the end.

use std::collections::BTreeMap;
use std::time::Duration;

/// Counters and latency samples of one host, or of the whole fleet after
/// `merge`.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Health-batch reports acknowledged (one `Report` each).
    pub health_reports: u64,
    /// Health samples inside those reports.
    pub health_samples: u64,
    /// Full inventory reports acknowledged.
    pub inventories: u64,
    /// Inventory delta reports acknowledged.
    pub deltas: u64,
    /// Times the collector asked for a full inventory.
    pub full_requested: u64,
    /// Report RPCs that failed, by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// Ack latency of health requests: request sent to response received, µs.
    pub health_ack_us: Vec<u32>,
    /// Health requests measured from when they were due (includes waiting
    /// for an in-flight slot): shows a collector that falls behind, which
    /// the ack latency alone hides.
    pub health_due_us: Vec<u32>,
    /// Ack latency of full inventory requests, µs.
    pub inventory_ack_us: Vec<u32>,
}

impl Tally {
    pub fn error(&mut self, code: tonic::Code) {
        *self.errors.entry(format!("{code:?}")).or_default() += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        self.health_reports += other.health_reports;
        self.health_samples += other.health_samples;
        self.inventories += other.inventories;
        self.deltas += other.deltas;
        self.full_requested += other.full_requested;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.health_ack_us.extend(other.health_ack_us);
        self.health_due_us.extend(other.health_due_us);
        self.inventory_ack_us.extend(other.inventory_ack_us);
    }
}

/// A duration as whole microseconds, saturating (an hour-long wait is
/// still "very late").
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// p50, p95, p99 and max of a set of samples, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles (the smallest sample with at least q of the
    /// samples at or below it). Sorts `samples` in place.
    pub fn of(samples: &mut [u32]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            let n = samples.len();
            let r = ((q * n as f64).ceil() as usize).clamp(1, n);
            f64::from(samples[r - 1]) / 1000.0
        };
        Percentiles {
            count: samples.len(),
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: f64::from(samples[samples.len() - 1]) / 1000.0,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms,
        })
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // 1..=100 ms: p50 is the 50th sample, p99 the 99th.
        let mut samples: Vec<u32> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, 50.0);
        assert_eq!(p.p95_ms, 95.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
    }

    #[test]
    fn percentiles_of_few_and_no_samples() {
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
        let p = Percentiles::of(&mut [7000]);
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (7.0, 7.0, 7.0));
        // Two samples: p50 is the lower one, p95 and above the higher.
        let p = Percentiles::of(&mut [3000, 1000]);
        assert_eq!((p.p50_ms, p.p95_ms), (1.0, 3.0));
    }

    #[test]
    fn merge_adds_counts_and_samples() {
        let mut a = Tally { health_reports: 2, health_ack_us: vec![1, 2], ..Tally::default() };
        a.error(tonic::Code::Unavailable);
        let mut b = Tally { health_reports: 3, health_ack_us: vec![3], ..Tally::default() };
        b.error(tonic::Code::Unavailable);
        b.error(tonic::Code::ResourceExhausted);
        a.merge(b);
        assert_eq!(a.health_reports, 5);
        assert_eq!(a.health_ack_us, vec![1, 2, 3]);
        assert_eq!(a.errors.get("Unavailable"), Some(&2));
        assert_eq!(a.errors.get("ResourceExhausted"), Some(&1));
    }

    #[test]
    fn micros_saturates() {
        assert_eq!(micros(Duration::from_millis(3)), 3000);
        assert_eq!(micros(Duration::from_secs(10_000)), u32::MAX);
    }
}
