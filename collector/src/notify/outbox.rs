//! The outbox's domain: one entry per (notification, sink), its delivery
//! state, and the retry schedule. Pure; the store keeps entries durably and
//! `dispatch` drives them.
//!
//! Invariants:
//! - an entry is created in the same store transaction as the alert
//!   transition it announces, so a transition is never lost and never
//!   announced twice (at-least-once towards the sink, with a stable
//!   `idempotency_key` the sink can dedupe on);
//! - entries of one sink are delivered in `id` order: the dispatcher only
//!   ever attempts a sink's oldest pending entry, so one alert's firing
//!   always reaches a sink before its resolution;
//! - `Dead` is terminal until an operator retries the entry
//!   (`census outbox retry ID`), which makes it pending again with a fresh
//!   attempt budget.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SinkError;
use crate::alert::engine::Notification;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Gave up: too many failed attempts, or a failure no retry can fix.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Enqueue order, unique and increasing across restarts (assigned by
    /// the store).
    pub id: u64,
    pub sink: String,
    /// `<sink>/<notification idempotency key>`: the same on every retry.
    pub idempotency_key: String,
    pub notification: Notification,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_at_unix_ms: i64,
    /// When the dispatcher may try it next.
    pub next_attempt_unix_ms: i64,
    pub last_attempt_unix_ms: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at_unix_ms: Option<i64>,
}

impl OutboxEntry {
    /// A new pending entry (its `id` is set when the store enqueues it).
    pub fn new(sink: &str, notification: Notification, now_unix_ms: i64) -> OutboxEntry {
        OutboxEntry {
            id: 0,
            sink: sink.to_string(),
            idempotency_key: format!("{sink}/{}", notification.idempotency_key),
            notification,
            state: DeliveryState::Pending,
            attempts: 0,
            created_at_unix_ms: now_unix_ms,
            next_attempt_unix_ms: now_unix_ms,
            last_attempt_unix_ms: None,
            last_error: None,
            delivered_at_unix_ms: None,
        }
    }

    pub fn record_success(&mut self, now_unix_ms: i64) {
        self.attempts += 1;
        self.state = DeliveryState::Delivered;
        self.last_attempt_unix_ms = Some(now_unix_ms);
        self.delivered_at_unix_ms = Some(now_unix_ms);
        self.last_error = None;
    }

    /// Records a failed attempt: schedules the next one, or gives up when
    /// the error is permanent or the attempts are spent. `jitter` in [0, 1).
    pub fn record_failure(&mut self, error: &SinkError, now_unix_ms: i64, policy: &RetryPolicy, jitter: f64) {
        self.attempts += 1;
        self.last_attempt_unix_ms = Some(now_unix_ms);
        self.last_error = Some(error.message.clone());
        if !error.retryable || self.attempts >= policy.max_attempts {
            self.state = DeliveryState::Dead;
            return;
        }
        let delay = policy.delay_after(self.attempts, jitter);
        self.next_attempt_unix_ms = now_unix_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
    }

    /// An operator's retry: pending again, due now, with a fresh budget.
    /// Refused for a delivered entry (it would be delivered twice).
    pub fn retry_now(&mut self, now_unix_ms: i64) -> Result<(), String> {
        if self.state == DeliveryState::Delivered {
            return Err(format!("outbox entry {} was delivered; retrying it would deliver it twice", self.id));
        }
        self.state = DeliveryState::Pending;
        self.attempts = 0;
        self.next_attempt_unix_ms = now_unix_ms;
        Ok(())
    }
}

/// Exponential backoff with jitter, and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Delay after the `attempts`-th failure: `initial * 2^(attempts-1)`,
    /// capped at `max_backoff`, then scaled into [50 %, 100 %) by `jitter`
    /// ("equal jitter"): sinks recovering from an outage are not hit by
    /// every collector's retries in the same second, and the delay never
    /// drops below half the schedule.
    pub fn delay_after(&self, attempts: u32, jitter: f64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let scheduled = self.initial_backoff.saturating_mul(1u32 << exponent).min(self.max_backoff);
        scheduled.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 0.999_999))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::engine::Transition;
    use crate::alert::rules::Severity;

    fn notification() -> Notification {
        Notification {
            idempotency_key: "disk/firing/7".into(),
            transition: Transition::Firing,
            rule: "disk".into(),
            severity: Severity::Warning,
            route_key: Default::default(),
            summary: "s".into(),
            runbook_url: String::new(),
            alerts: Vec::new(),
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy { max_attempts: 4, initial_backoff: Duration::from_secs(2), max_backoff: Duration::from_secs(10) }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_into_the_upper_half() {
        let p = policy();
        assert_eq!(p.delay_after(1, 0.0), Duration::from_secs(1));
        assert_eq!(p.delay_after(2, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay_after(3, 0.0), Duration::from_secs(4));
        assert_eq!(p.delay_after(4, 0.0), Duration::from_secs(5), "capped at max_backoff, halved");
        assert_eq!(p.delay_after(60, 0.0), Duration::from_secs(5), "huge attempt counts do not overflow");
        let high = p.delay_after(3, 0.99);
        assert!(high > Duration::from_millis(7_900) && high < Duration::from_secs(8), "{high:?}");
    }

    #[test]
    fn failures_schedule_retries_then_dead_letter() {
        let p = policy();
        let mut e = OutboxEntry::new("rt", notification(), 1_000);
        assert_eq!(e.idempotency_key, "rt/disk/firing/7");
        e.record_failure(&SinkError::retryable("HTTP 503"), 1_000, &p, 0.0);
        assert_eq!((e.state, e.attempts, e.next_attempt_unix_ms), (DeliveryState::Pending, 1, 2_000));
        e.record_failure(&SinkError::retryable("HTTP 503"), 2_000, &p, 0.0);
        e.record_failure(&SinkError::retryable("HTTP 503"), 4_000, &p, 0.0);
        assert_eq!(e.state, DeliveryState::Pending);
        e.record_failure(&SinkError::retryable("HTTP 503"), 8_000, &p, 0.0);
        assert_eq!(e.state, DeliveryState::Dead, "the fourth failure spends max_attempts = 4");
        assert_eq!(e.last_error.as_deref(), Some("HTTP 503"));

        e.retry_now(9_000).expect("a dead entry can be retried");
        assert_eq!((e.state, e.attempts, e.next_attempt_unix_ms), (DeliveryState::Pending, 0, 9_000));
        e.record_success(9_500);
        assert_eq!(e.state, DeliveryState::Delivered);
        assert!(e.retry_now(10_000).is_err(), "a delivered entry is never sent again");
    }

    #[test]
    fn a_permanent_error_dead_letters_at_once() {
        let mut e = OutboxEntry::new("rt", notification(), 0);
        e.record_failure(&SinkError::permanent("HTTP 403: no permission to create tickets in queue X"), 0, &policy(), 0.5);
        assert_eq!((e.state, e.attempts), (DeliveryState::Dead, 1));
    }
}
