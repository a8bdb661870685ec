//! Per-agent rate limit on report ingest: one token bucket per agent id
//! (SPEC §9, "rates per agent").
//!
//! Each report in a request costs one token; a bucket holds at most `burst`
//! tokens and refills at `per_minute / 60` tokens per second. A request is
//! admitted whole or refused whole (its reports are not stored), and the
//! refusal says when enough tokens will be back.
//!
//! Invariants:
//! - Buckets are keyed by the agent id the certificate proved, never by
//!   anything the request claims, so one agent cannot spend another's
//!   tokens, and a flood from one agent leaves the others untouched.
//! - Memory is bounded: at most one bucket per enrolled agent that
//!   reported recently; when the map grows past `PRUNE_ABOVE`, buckets that
//!   have refilled completely (they hold no state worth keeping) are dropped.
//! - Time is an argument (`Instant`), so the arithmetic is tested without
//!   sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Limits;

/// Above this many buckets, full ones are dropped on the next admission.
const PRUNE_ABOVE: usize = 10_000;

/// Why a request was refused: the agent should wait `retry_after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub per_minute: u32,
    pub burst: u32,
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this agent sends reports faster than the collector allows ({} per minute, bursts of {}: \
             limits.reports_per_agent_per_minute, limits.report_burst_per_agent); retry after {} ms",
            self.per_minute,
            self.burst,
            self.retry_after.as_millis().max(1)
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The token buckets of every agent; `None` rate means unlimited.
#[derive(Debug)]
pub struct ReportRateLimit {
    per_minute: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl ReportRateLimit {
    pub fn new(limits: &Limits) -> ReportRateLimit {
        ReportRateLimit {
            per_minute: limits.reports_per_agent_per_minute,
            burst: limits.report_burst_per_agent,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Takes `reports` tokens from `agent_id`'s bucket at `now`, or says how
    /// long until they would be there. A rate of 0 disables the limit.
    pub fn admit(&self, agent_id: &str, reports: usize, now: Instant) -> Result<(), Throttled> {
        if self.per_minute == 0 || reports == 0 {
            return Ok(());
        }
        let burst = f64::from(self.burst);
        // A request larger than the burst could never pass; config
        // validation keeps burst >= max_reports_per_request, and this keeps
        // the arithmetic sane if it did not.
        let cost = (reports as f64).min(burst);
        let rate = self.per_second();
        // A poisoned lock only means another request panicked mid-update;
        // the buckets are plain numbers and stay usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(agent_id.to_string()).or_insert(Bucket { tokens: burst, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now.max(bucket.updated);
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(());
        }
        let missing = cost - bucket.tokens;
        Err(Throttled { retry_after: Duration::from_secs_f64(missing / rate), per_minute: self.per_minute, burst: self.burst })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_minute: u32, burst: u32) -> ReportRateLimit {
        ReportRateLimit::new(&Limits { reports_per_agent_per_minute: per_minute, report_burst_per_agent: burst, ..Limits::default() })
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let l = limit(60, 10);
        let t0 = Instant::now();
        for _ in 0..10 {
            l.admit("a", 1, t0).expect("within the burst");
        }
        let refused = l.admit("a", 1, t0).expect_err("burst spent");
        // one token per second at 60 per minute
        assert!((refused.retry_after.as_secs_f64() - 1.0).abs() < 1e-6, "{refused:?}");
        assert!(refused.to_string().contains("retry after 1000 ms"), "{refused}");
        l.admit("a", 1, t0 + Duration::from_secs(1)).expect("refilled one token");
        l.admit("a", 1, t0 + Duration::from_secs(1)).expect_err("only one");
    }

    #[test]
    fn agents_do_not_share_buckets() {
        let l = limit(60, 5);
        let t0 = Instant::now();
        l.admit("flood", 5, t0).expect("burst");
        l.admit("flood", 1, t0).expect_err("flood refused");
        l.admit("quiet", 5, t0).expect("another agent keeps its whole burst");
    }

    #[test]
    fn a_refused_request_costs_nothing_and_batches_cost_per_report() {
        let l = limit(600, 20);
        let t0 = Instant::now();
        l.admit("a", 15, t0).expect("15 of 20");
        let r = l.admit("a", 10, t0).expect_err("10 > 5 left");
        assert!((r.retry_after.as_secs_f64() - 0.5).abs() < 1e-6, "5 missing at 10/s: {r:?}");
        l.admit("a", 5, t0).expect("the refusal took nothing");
    }

    #[test]
    fn zero_disables_and_time_going_backwards_is_harmless() {
        let l = limit(0, 1);
        let t0 = Instant::now();
        for _ in 0..1000 {
            l.admit("a", 100, t0).expect("unlimited");
        }
        let l = limit(60, 2);
        let later = t0 + Duration::from_secs(10);
        l.admit("a", 2, later).expect("burst");
        l.admit("a", 1, t0).expect_err("an earlier instant refills nothing");
    }

    #[test]
    fn full_buckets_are_pruned() {
        let l = limit(6000, 256);
        let t0 = Instant::now();
        for n in 0..=PRUNE_ABOVE {
            l.admit(&format!("agent-{n}"), 1, t0).expect("fresh bucket");
        }
        l.admit("late", 1, t0 + Duration::from_secs(60)).expect("admitted");
        let left = l.buckets.lock().expect("lock").len();
        assert!(left <= 2, "refilled buckets dropped, {left} left");
    }
}
