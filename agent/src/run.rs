//! `census-agent run`: the reporting loop.
//!
//! Heartbeats and inventory snapshots are numbered with a persisted
//! sequence, queued, and sent oldest first. A report leaves the queue only
//! when the collector acknowledges it (after its durable write), or when the
//! collector refuses it as malformed or too large (it would be refused
//! forever; the refusal is logged as an error). Transient failures, such as
//! a collector restart, are retried with jittered exponential backoff; the
//! channel reconnects by itself.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::error::Result;
use crate::state::{Enrolled, SequenceCounter};
use crate::transport::{self, error_chain};

/// Heartbeats sent together in one request at most.
const MAX_BATCH: usize = 64;

/// Jittered exponential backoff: each delay is drawn from [d/2, d], d
/// doubling up to `max`, so a fleet that lost its collector does not come
/// back in lockstep.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, current: initial }
    }

    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        d.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

enum SendError {
    /// Retry later (collector down, overloaded, TLS or network trouble).
    Transient(String),
    /// The collector will never accept these reports as they are.
    Refused(String),
}

fn classify(status: &tonic::Status) -> SendError {
    let detail = {
        let chain = error_chain(status);
        if chain.contains("alert") || chain.to_ascii_lowercase().contains("certificate") {
            format!(
                "{chain} (the TLS handshake failed: this agent's certificate is not accepted by this collector, or the collector's certificate is not signed by the pinned CA)"
            )
        } else {
            chain
        }
    };
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => SendError::Refused(detail),
        Code::Unauthenticated | Code::PermissionDenied => SendError::Transient(format!("collector refuses this agent: {detail}")),
        _ => SendError::Transient(detail),
    }
}

struct Reporter {
    client: AgentServiceClient<Channel>,
    agent_id: String,
    seq: SequenceCounter,
    pending: VecDeque<pb::Report>,
    max_pending: usize,
    dropped_heartbeats: u64,
}

impl Reporter {
    fn enqueue(&mut self, body: pb::report::Body) -> Result<()> {
        let seq = self.seq.reserve_next()?;
        self.pending.push_back(pb::Report { seq, created_at_unix_ms: crate::now_unix_ms(), body: Some(body) });
        while self.pending.len() > self.max_pending {
            // Heartbeats are cheap to lose; inventory is what admins ask about.
            let Some(pos) = self.pending.iter().position(|r| matches!(r.body, Some(pb::report::Body::Heartbeat(_)))) else { break };
            self.pending.remove(pos);
            self.dropped_heartbeats += 1;
        }
        Ok(())
    }

    /// The next batch: one inventory alone, or up to MAX_BATCH heartbeats.
    fn batch(&self) -> Vec<pb::Report> {
        match self.pending.front() {
            None => Vec::new(),
            Some(r) if matches!(r.body, Some(pb::report::Body::Inventory(_))) => vec![r.clone()],
            Some(_) => self
                .pending
                .iter()
                .take_while(|r| matches!(r.body, Some(pb::report::Body::Heartbeat(_))))
                .take(MAX_BATCH)
                .cloned()
                .collect(),
        }
    }

    async fn send(&mut self) -> std::result::Result<pb::ReportResponse, SendError> {
        let batch = self.batch();
        let (first, last) = (batch.first().map(|r| r.seq).unwrap_or(0), batch.last().map(|r| r.seq).unwrap_or(0));
        let request = pb::ReportRequest { agent_id: self.agent_id.clone(), reports: batch };
        match self.client.report(request).await {
            Ok(response) => {
                let response = response.into_inner();
                let acked = response.acked_through;
                self.pending.retain(|r| r.seq > acked);
                debug!(seq_first = first, seq_last = last, acked, "reports acknowledged");
                Ok(response)
            }
            Err(status) => {
                let err = classify(&status);
                if let SendError::Refused(reason) = &err {
                    error!(seq_first = first, seq_last = last, %reason, "collector refused reports; dropping them");
                    self.pending.retain(|r| r.seq < first || r.seq > last);
                }
                Err(err)
            }
        }
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let state = Enrolled::load(&config.state_dir)?;
    let server = if config.server.is_empty() { state.server.clone() } else { config.server.clone() };
    let channel = transport::report_channel(&state, &server, config.request_timeout)?;
    let span = tracing::info_span!("agent", agent_id = %state.agent_id);
    let _enter = span.enter();
    let mut reporter = Reporter {
        client: AgentServiceClient::new(channel),
        agent_id: state.agent_id.clone(),
        seq: SequenceCounter::open(&config.state_dir)?,
        pending: VecDeque::new(),
        max_pending: config.max_pending_reports,
        dropped_heartbeats: 0,
    };
    info!(%server, last_seq = reporter.seq.last(), "agent started");

    let started = Instant::now();
    let mut heartbeat_every = config.heartbeat_interval;
    let mut inventory_every = config.inventory_interval;
    let mut next_heartbeat = Instant::now();
    let mut next_inventory = Instant::now();
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    let mut retry_at: Option<Instant> = None;
    let mut connected = false;
    let root: PathBuf = config.root.clone();
    tokio::pin!(shutdown);

    loop {
        let now = Instant::now();
        if now >= next_inventory {
            let (root, certificate_paths) = (root.clone(), config.certificate_paths.clone());
            let (inventory, _) = tokio::task::spawn_blocking(move || crate::collect::inventory(&root, &certificate_paths))
                .await
                .map_err(|e| crate::error::Error::Collector(format!("inventory task failed: {e}")))?;
            reporter.enqueue(pb::report::Body::Inventory(crate::wire::inventory(&inventory)))?;
            next_inventory = now + inventory_every;
        }
        if now >= next_heartbeat {
            let hb = pb::Heartbeat { agent_uptime_s: started.elapsed().as_secs(), agent_version: crate::VERSION.to_string() };
            reporter.enqueue(pb::report::Body::Heartbeat(hb))?;
            next_heartbeat = now + heartbeat_every;
        }

        if !reporter.pending.is_empty() && retry_at.is_none_or(|t| now >= t) {
            let outcome = tokio::select! {
                outcome = reporter.send() => outcome,
                _ = &mut shutdown => break,
            };
            match outcome {
                Ok(response) => {
                    if !connected {
                        info!(%server, "connected to the collector");
                        connected = true;
                    }
                    backoff.reset();
                    retry_at = None;
                    if let Some(s) = response.settings {
                        // A pushed interval takes effect now, not after the
                        // (possibly much longer) interval already scheduled.
                        let now = Instant::now();
                        if s.heartbeat_interval_s > 0 {
                            heartbeat_every = Duration::from_secs(u64::from(s.heartbeat_interval_s));
                            next_heartbeat = next_heartbeat.min(now + heartbeat_every);
                        }
                        if s.inventory_interval_s > 0 {
                            inventory_every = Duration::from_secs(u64::from(s.inventory_interval_s));
                            next_inventory = next_inventory.min(now + inventory_every);
                        }
                    }
                    if response.full_inventory_requested {
                        next_inventory = Instant::now();
                    }
                    if reporter.dropped_heartbeats > 0 {
                        warn!(dropped = reporter.dropped_heartbeats, "heartbeats were dropped while the collector was unreachable");
                        reporter.dropped_heartbeats = 0;
                    }
                    continue;
                }
                Err(SendError::Refused(_)) => continue,
                Err(SendError::Transient(reason)) => {
                    let delay = backoff.next_delay(rand::random::<f64>());
                    warn!(%reason, retry_in = ?delay, pending = reporter.pending.len(), "cannot deliver reports; will retry");
                    connected = false;
                    retry_at = Some(Instant::now() + delay);
                }
            }
        }

        let mut wake = next_heartbeat.min(next_inventory);
        if let Some(t) = retry_at {
            wake = wake.min(t.max(Instant::now()));
        }
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = &mut shutdown => break,
        }
    }
    info!(pending = reporter.pending.len(), "agent stopping");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        assert_eq!(b.next_delay(1.0), Duration::from_secs(1));
        assert_eq!(b.next_delay(1.0), Duration::from_secs(2));
        assert_eq!(b.next_delay(0.0), Duration::from_secs(2), "jitter 0 halves the 4s step");
        assert_eq!(b.next_delay(1.0), Duration::from_secs(8));
        assert_eq!(b.next_delay(1.0), Duration::from_secs(8), "capped");
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_secs(1));
    }

    #[test]
    fn refusals_are_permanent_outages_are_not() {
        assert!(matches!(classify(&tonic::Status::invalid_argument("too large")), SendError::Refused(_)));
        assert!(matches!(classify(&tonic::Status::unavailable("down")), SendError::Transient(_)));
        assert!(matches!(classify(&tonic::Status::permission_denied("revoked")), SendError::Transient(m) if m.contains("refuses this agent")));
    }
}
