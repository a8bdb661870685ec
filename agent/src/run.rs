//! `census-agent run`: the reporting loop.
//!
//! Four timers feed one durable queue (`spool::Spool`): heartbeats (only
//! when nothing else was queued for a heartbeat interval), health
//! samples (sent as one `HealthBatch` per batch interval), inventory
//! (a full snapshot on enrollment, every `full_inventory_interval` and when
//! the collector asks; otherwise a delta against the last queued inventory,
//! and nothing at all when nothing changed). The inventory comes from an
//! `InventorySource` (a child process in `census-agent run`) and is
//! collected beside the loop, so a slow or failed collection delays no
//! health sample or heartbeat; a failed one is logged and tried again at
//! the next inventory interval. Every report gets a persisted
//! sequence number and is written to the spool before it is sent; it leaves
//! the spool only when the collector acknowledges it (after its durable
//! write), or when the collector refuses it as malformed or too large (it
//! would be refused forever; logged as an error). Transient failures, such
//! as a collector restart, are retried with jittered exponential backoff;
//! the channel reconnects by itself. After a restart the spool is replayed
//! in seq order.
//!
//! Health batches and deltas are sent only to a collector that advertised
//! them (`AgentSettings.accepts_health_and_deltas`, proto rule 6); until
//! then the agent sends full snapshots and keeps no health.
//!
//! A fifth timer renews the client certificate once less than
//! `renew_before` of its lifetime is left (`renew.rs`), then switches the
//! channel to the new one. When the collector refuses this agent's identity
//! (revoked, or a certificate it does not know), retrying soon cannot help:
//! the agent says so as an error, keeps its reports spooled and asks again
//! only every `REFUSED_RETRY`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tracing::{Instrument, debug, error, info, warn};

use crate::config::{Config, Share};
use crate::error::Result;
use crate::health::{Sampler, TextfileDir};
use crate::inventory_source::InventorySource;
use crate::renew::RenewError;
use crate::spool::Spool;
use crate::state::{Enrolled, InventoryBase, LastAck, SequenceCounter};
use crate::transport::{self, error_chain};

/// Reports sent together in one request at most (an inventory goes alone).
const MAX_BATCH: usize = 64;
/// Bytes of reports in one request at most, well under the collector's
/// default 4 MiB message limit.
const MAX_BATCH_BYTES: u64 = 1024 * 1024;
/// The next try after the collector refused this agent's identity, or
/// does not renew certificates at all.
const REFUSED_RETRY: Duration = Duration::from_secs(3600);

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
    /// The collector refuses this agent itself (revoked, unknown
    /// certificate): the reports are fine, the sender is not.
    Rejected(String),
}

fn classify(status: &tonic::Status) -> SendError {
    let detail = {
        let chain = error_chain(status);
        let lower = chain.to_ascii_lowercase();
        if lower.contains("alert") || lower.contains("certificate") {
            format!(
                "{chain} (the TLS handshake failed: this agent's certificate is not accepted by this collector, or the collector's certificate is not signed by the pinned CA)"
            )
        } else if lower.contains("broken pipe") || lower.contains("connection closed") || lower.contains("connection reset") {
            // With TLS 1.3 the server judges the client certificate after
            // the client considers the handshake done: a refused
            // certificate usually shows up as the connection closing under
            // the first request, not as a readable alert.
            format!(
                "{chain} (the collector closed the connection; if this persists, the TLS handshake failed: check that this agent's certificate was issued by this collector, or re-enroll)"
            )
        } else {
            chain
        }
    };
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => SendError::Refused(detail),
        Code::Unauthenticated | Code::PermissionDenied => SendError::Rejected(format!("collector refuses this agent: {detail}")),
        _ => SendError::Transient(detail),
    }
}

struct Reporter {
    client: AgentServiceClient<Channel>,
    agent_id: String,
    state_dir: PathBuf,
    seq: SequenceCounter,
    spool: Spool,
    /// The collector accepts health batches and inventory deltas.
    accepts_new: bool,
    full_inventory_every: Duration,
    /// The collector asked for a full snapshot.
    full_requested: bool,
    /// Dropped counts already logged, to log each increase once.
    dropped_logged: crate::spool::Dropped,
    /// When a report other than a heartbeat was last queued.
    last_queued: Option<Instant>,
}

impl Reporter {
    /// Numbers the report and writes it to the spool.
    fn enqueue(&mut self, body: pb::report::Body) -> Result<u64> {
        // The spool record is written before the counter, so a crash
        // between the two neither reuses nor skips a number.
        let seq = self.seq.next();
        if !matches!(body, pb::report::Body::Heartbeat(_)) {
            self.last_queued = Some(Instant::now());
        }
        let report = pb::Report { seq, created_at_unix_ms: crate::now_unix_ms(), body: Some(body) };
        self.spool.push(&report)?;
        self.seq.commit(seq)?;
        let dropped = self.spool.dropped();
        if dropped != self.dropped_logged {
            warn!(
                health_batches = dropped.health_batches,
                health_samples = dropped.health_samples,
                heartbeats = dropped.heartbeats,
                spool_bytes = self.spool.total_bytes(),
                "spool full: dropped the oldest health batches (totals since the spool was created)"
            );
            self.dropped_logged = dropped;
        }
        Ok(seq)
    }

    /// Queues `inventory` as a full snapshot or as a delta against the base.
    fn enqueue_inventory(&mut self, mut inventory: pb::Inventory) -> Result<()> {
        crate::delta::canonicalize(&mut inventory);
        let now = crate::now_unix_ms();
        // The base is read from the state directory, not kept in memory:
        // it is needed once per inventory interval, and an idle agent's
        // memory is what SPEC §8 measures.
        let base = InventoryBase::load(&self.state_dir);
        let full_due = base.as_ref().is_none_or(|b| {
            now.saturating_sub(b.last_full_unix_ms) >= i64::try_from(self.full_inventory_every.as_millis()).unwrap_or(i64::MAX)
        });
        let last_full_unix_ms = match (&base, self.accepts_new && !full_due && !self.full_requested) {
            (Some(base), true) => {
                let delta = crate::delta::diff(&base.inventory, &inventory, base.seq);
                if crate::delta::is_empty(&delta, &base.inventory) {
                    debug!(base_seq = base.seq, "inventory unchanged; nothing to send");
                    return Ok(());
                }
                let last_full = base.last_full_unix_ms;
                let seq = self.enqueue(pb::report::Body::InventoryDelta(delta))?;
                debug!(seq, "inventory delta queued");
                self.save_base(seq, last_full, inventory)?;
                return Ok(());
            }
            _ => now,
        };
        let seq = self.enqueue(pb::report::Body::Inventory(inventory.clone()))?;
        info!(seq, "full inventory queued");
        self.full_requested = false;
        self.save_base(seq, last_full_unix_ms, inventory)
    }

    /// Records what the collector will hold as this agent's inventory, if
    /// all goes well: the base of the next delta.
    fn save_base(&self, seq: u64, last_full_unix_ms: i64, inventory: pb::Inventory) -> Result<()> {
        InventoryBase { seq, last_full_unix_ms, inventory }.save(&self.state_dir)
    }

    async fn send(&mut self) -> std::result::Result<pb::ReportResponse, SendError> {
        let batch =
            self.spool.next_batch(MAX_BATCH, MAX_BATCH_BYTES).map_err(|e| SendError::Transient(format!("reading the spool: {e}")))?;
        let (first, last) = (batch.first().map(|r| r.seq).unwrap_or(0), batch.last().map(|r| r.seq).unwrap_or(0));
        let span = tracing::debug_span!("report", seq_first = first, seq_last = last);
        let request = pb::ReportRequest { agent_id: self.agent_id.clone(), reports: batch };
        match self.client.report(request).instrument(span.clone()).await {
            Ok(response) => {
                let response = response.into_inner();
                let acked = response.acked_through;
                self.spool.ack(acked);
                span.in_scope(|| debug!(acked, "reports acknowledged"));
                // For `census-agent status`; a failed write costs only that.
                if let Err(e) = (LastAck { seq: acked, at_unix_ms: crate::now_unix_ms() }).save(&self.state_dir) {
                    span.in_scope(|| warn!(error = %e, "cannot record the last acknowledgement"));
                }
                Ok(response)
            }
            Err(status) => {
                let err = classify(&status);
                if let SendError::Refused(reason) = &err {
                    span.in_scope(|| error!(%reason, "collector refused reports; dropping them"));
                    self.spool.discard(first, last);
                }
                Err(err)
            }
        }
    }
}

/// Health samples waiting for the next batch, with the sampler's errors
/// logged once per distinct message (the textfile reader rate-limits its
/// own warnings).
struct HealthState {
    sampler: Option<Sampler>,
    /// The custom metrics directory, when configured.
    textfiles: Option<TextfileDir>,
    samples: Vec<pb::HealthSample>,
    errors_logged: std::collections::HashSet<String>,
}

impl HealthState {
    async fn sample(&mut self, root: PathBuf) {
        let Some(mut sampler) = self.sampler.take() else { return };
        let mut textfiles = self.textfiles.take();
        let joined = tokio::task::spawn_blocking(move || {
            let mounts = crate::collect::health_mounts(&root);
            let (mut sample, errors) = sampler.sample(crate::now_unix_ms(), &mounts);
            let warnings = match textfiles.as_mut() {
                Some(dir) => {
                    let reading = dir.read();
                    sample.custom = reading.metrics;
                    reading.warnings
                }
                None => Vec::new(),
            };
            (sampler, textfiles, sample, errors, warnings)
        })
        .await;
        match joined {
            Ok((sampler, textfiles, sample, errors, warnings)) => {
                for e in errors {
                    let text = e.to_string();
                    if self.errors_logged.insert(text.clone()) {
                        debug!(error = %text, "health metric unreadable");
                    }
                }
                for w in warnings {
                    warn!("custom metrics: {w}");
                }
                self.samples.push(crate::wire::health_sample(&sample));
                self.sampler = Some(sampler);
                self.textfiles = textfiles;
            }
            Err(e) => error!(error = %e, "health sampling task failed; health sampling stops"),
        }
    }

    /// The batch to queue, with the failed units attached to its newest
    /// sample (systemctl runs once per batch, not per sample).
    async fn take_batch(&mut self, root: PathBuf, dropped: crate::spool::Dropped) -> Option<pb::HealthBatch> {
        if self.samples.is_empty() {
            return None;
        }
        let failed = tokio::task::spawn_blocking(move || crate::collect::failed_units(&root)).await.ok().flatten();
        let mut samples = std::mem::take(&mut self.samples);
        if let (Some(units), Some(last)) = (failed, samples.last_mut()) {
            last.failed_units = units;
            last.failed_units_known = true;
        }
        Some(pb::HealthBatch { samples, dropped_batches_total: dropped.health_batches, dropped_samples_total: dropped.health_samples })
    }
}

/// An inventory being collected (`InventorySource::collect`).
type Collecting = std::pin::Pin<Box<dyn std::future::Future<Output = Result<pb::Inventory>> + Send>>;

/// Runs until `shutdown` resolves, taking each inventory from `source`.
pub async fn run(config: Config, source: InventorySource, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let mut state = Enrolled::open(&config.state_dir)?;
    let server = if config.server.is_empty() { state.server.clone() } else { config.server.clone() };
    let channel = transport::report_channel(&state, &server, config.request_timeout)?;
    let span = tracing::info_span!("agent", agent_id = %state.agent_id);
    let _enter = span.enter();
    let spool = Spool::open(&config.state_dir, config.spool_max_bytes)?;
    let mut seq = SequenceCounter::open(&config.state_dir)?;
    if let Some(highest) = spool.highest_seq() {
        seq.observe(highest)?;
    }
    let mut reporter = Reporter {
        client: AgentServiceClient::new(channel),
        agent_id: state.agent_id.clone(),
        state_dir: config.state_dir.clone(),
        seq,
        dropped_logged: spool.dropped(),
        spool,
        accepts_new: crate::state::load_collector_accepts_new(&config.state_dir),
        full_inventory_every: config.full_inventory_interval,
        full_requested: false,
        last_queued: None,
    };
    info!(%server, last_seq = reporter.seq.last(), spooled = reporter.spool.len(), "agent started");

    let started = Instant::now();
    let root: PathBuf = config.root.clone();
    let mut health = HealthState {
        sampler: Some(Sampler::new(&root)),
        textfiles: config.health_textfile_dir().map(|dir| TextfileDir::new(&root, dir)),
        samples: Vec::new(),
        errors_logged: Default::default(),
    };
    let mut heartbeat_every = config.heartbeat_interval;
    let mut inventory_every = config.inventory_interval;
    let mut next_heartbeat = Instant::now();
    let mut heartbeat_sent = false;
    let mut next_inventory = Instant::now();
    // At most one collection at a time; dropping it (shutdown) kills a child.
    let mut collecting: Option<Collecting> = None;
    let mut next_sample = Instant::now();
    let mut next_batch = Instant::now() + config.health_batch_interval;
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    let mut retry_at: Option<Instant> = None;
    let mut connected = false;
    let mut next_renewal = renewal_due(&state, config.renew_before);
    let mut renew_backoff = Backoff::new(config.backoff_initial, config.backoff_max);
    let mut expiry_logged = false;
    tokio::pin!(shutdown);

    loop {
        let now = Instant::now();
        if next_renewal.is_some_and(|t| now >= t) {
            let outcome = tokio::select! {
                outcome = crate::renew::renew(&mut reporter.client, &state, &config.state_dir) => outcome,
                _ = &mut shutdown => break,
            };
            next_renewal = match outcome {
                Ok(renewed) => {
                    reporter.client = AgentServiceClient::new(transport::report_channel(&renewed, &server, config.request_timeout)?);
                    state = renewed;
                    renew_backoff.reset();
                    expiry_logged = false;
                    let until = state.certificate_validity().map(|(_, after)| crate::rfc3339(after)).unwrap_or_default();
                    info!(valid_until = %until, "client certificate renewed; reports go with the new one from now on");
                    renewal_due(&state, config.renew_before)
                }
                Err(e @ (RenewError::Refused(_) | RenewError::Unsupported)) => {
                    warn!(reason = %e, retry_in = ?REFUSED_RETRY, "cannot renew the client certificate");
                    Some(now + REFUSED_RETRY)
                }
                Err(e @ RenewError::Failed(_)) => {
                    let delay = renew_backoff.next_delay(rand::random::<f64>());
                    warn!(reason = %e, retry_in = ?delay, "cannot renew the client certificate; will retry");
                    Some(Instant::now() + delay)
                }
            };
        }
        if now >= next_inventory && collecting.is_none() {
            // Runs beside the loop: a slow or hung collection must not hold
            // up health samples and heartbeats.
            collecting = Some(Box::pin(source.collect(&root, &config.certificate_paths)));
            next_inventory = now + inventory_every;
        }
        if now >= next_sample {
            health.sample(root.clone()).await;
            next_sample = now + config.health_interval;
        }
        if now >= next_batch {
            if !reporter.accepts_new {
                // An older collector would refuse the batch (proto rule 6).
                health.samples.clear();
            } else if let Some(batch) = health.take_batch(root.clone(), reporter.spool.dropped()).await {
                let n = batch.samples.len();
                let seq = reporter.enqueue(pb::report::Body::Health(batch))?;
                debug!(seq, samples = n, "health batch queued");
            }
            next_batch = now + config.health_batch_interval;
        }
        if now >= next_heartbeat {
            // Any report proves liveness: a heartbeat goes only when nothing
            // else was queued for a whole interval (and once after start, to
            // report this agent's version), which saves a report a minute
            // on a host sending health batches.
            let quiet = reporter.last_queued.is_none_or(|t| now.duration_since(t) >= heartbeat_every);
            if quiet || !heartbeat_sent {
                let hb = pb::Heartbeat { agent_uptime_s: started.elapsed().as_secs(), agent_version: crate::VERSION.to_string() };
                reporter.enqueue(pb::report::Body::Heartbeat(hb))?;
                heartbeat_sent = true;
            }
            next_heartbeat = now + heartbeat_every;
        }

        if !reporter.spool.is_empty() && retry_at.is_none_or(|t| now >= t) {
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
                        if s.accepts_health_and_deltas != reporter.accepts_new {
                            reporter.accepts_new = s.accepts_health_and_deltas;
                            crate::state::save_collector_accepts_new(&reporter.state_dir, reporter.accepts_new)?;
                        }
                    }
                    if response.full_inventory_requested && !reporter.full_requested {
                        info!("the collector asked for a full inventory");
                        reporter.full_requested = true;
                        next_inventory = Instant::now();
                    }
                    continue;
                }
                Err(SendError::Refused(_)) => continue,
                Err(SendError::Rejected(reason)) => {
                    error!(
                        %reason,
                        retry_in = ?REFUSED_RETRY,
                        spooled = reporter.spool.len(),
                        "the collector refuses this agent; reports stay spooled. If it was revoked or enrolled elsewhere, enroll it again (census-agent enroll)"
                    );
                    connected = false;
                    retry_at = Some(Instant::now() + REFUSED_RETRY);
                    next_renewal = next_renewal.map(|t| t.max(Instant::now() + REFUSED_RETRY));
                }
                Err(SendError::Transient(reason)) => {
                    let delay = backoff.next_delay(rand::random::<f64>());
                    warn!(%reason, retry_in = ?delay, spooled = reporter.spool.len(), "cannot deliver reports; will retry");
                    let not_after = state.certificate_validity().map(|(_, after)| after).unwrap_or(i64::MAX);
                    if !expiry_logged && not_after < crate::now_unix_ms() {
                        error!(
                            expired = %crate::rfc3339(not_after),
                            "this agent's client certificate has expired, so the collector refuses it; enroll the agent again (census-agent enroll)"
                        );
                        expiry_logged = true;
                    }
                    connected = false;
                    retry_at = Some(Instant::now() + delay);
                }
            }
        }

        let mut wake = next_heartbeat.min(next_sample).min(next_batch);
        // While a collection runs, its end wakes the loop: an inventory due
        // meanwhile (a short interval, the collector asking) waits for it
        // rather than making the loop spin.
        if collecting.is_none() {
            wake = wake.min(next_inventory);
        }
        if let Some(t) = retry_at {
            wake = wake.min(t.max(Instant::now()));
        }
        if let Some(t) = next_renewal {
            wake = wake.min(t.max(Instant::now()));
        }
        let collected = tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => None,
            inventory = async { collecting.as_mut().expect("guarded by the branch condition").await }, if collecting.is_some() => Some(inventory),
            _ = &mut shutdown => break,
        };
        if let Some(inventory) = collected {
            collecting = None;
            match inventory {
                Ok(inventory) => reporter.enqueue_inventory(inventory)?,
                Err(e) => {
                    let retry_in = next_inventory.saturating_duration_since(Instant::now());
                    warn!(error = %e, ?retry_in, "inventory collection failed; it is tried again at the next inventory interval");
                }
            }
        }
    }
    // Samples taken since the last batch go to the spool, not to waste.
    if reporter.accepts_new {
        if let Some(batch) = health.take_batch(root.clone(), reporter.spool.dropped()).await {
            reporter.enqueue(pb::report::Body::Health(batch))?;
        }
    }
    info!(spooled = reporter.spool.len(), "agent stopping");
    Ok(())
}

/// When the client certificate is due for renewal; `None` when its
/// validity cannot be read (logged: it will not be renewed).
fn renewal_due(state: &Enrolled, share: Share) -> Option<Instant> {
    match state.certificate_validity() {
        Ok(validity) => {
            let wait_ms = crate::renew::renew_at(validity, share).saturating_sub(crate::now_unix_ms()).max(0);
            Some(Instant::now() + Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))
        }
        Err(e) => {
            warn!(error = %e, "cannot read the client certificate's validity; it will not be renewed");
            None
        }
    }
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
        // The collector's per-agent rate limit and its disk-full refusal:
        // back off and keep the reports spooled, never drop them.
        assert!(matches!(classify(&tonic::Status::resource_exhausted("retry after 500 ms")), SendError::Transient(_)));
        assert!(
            matches!(classify(&tonic::Status::permission_denied("revoked")), SendError::Rejected(m) if m.contains("refuses this agent"))
        );
        assert!(matches!(classify(&tonic::Status::unauthenticated("unknown certificate")), SendError::Rejected(_)));
        assert!(
            matches!(classify(&tonic::Status::unknown("stream closed because of a broken pipe")), SendError::Transient(m) if m.contains("TLS handshake failed"))
        );
        assert!(
            matches!(classify(&tonic::Status::unavailable("tcp connect error: Connection refused")), SendError::Transient(m) if !m.contains("TLS"))
        );
    }
}
