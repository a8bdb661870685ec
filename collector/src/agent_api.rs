//! AgentService: enrollment and report ingest over mutual TLS.
//!
//! Invariants:
//! - A report is acknowledged only after `Store::put_reports` returned,
//!   i.e. after the write is flushed.
//! - The agent is identified by its client certificate alone (fingerprint
//!   lookup), so an agent can only ever write its own host; the `agent_id`
//!   field must agree with the certificate.
//! - A request outside `Limits` is refused whole; nothing of it is stored.
//! - So is a report request over the agent's rate limit (`rate_limit`),
//!   inventory naming another host uuid than the enrolled one, and any
//!   write while the data directory is short of its reserve (`disk_space`).
//! - A renewed certificate is durable before it is returned, and the
//!   certificate the renewal was asked with keeps working until the agent
//!   first calls with the new one (or it expires): a lost response never
//!   strands an agent, and at most two certificates of an agent work.
//! - A revoked agent is refused every call with PERMISSION_DENIED.
//! - A certificate of our CA that the store does not know is accepted only
//!   when it is newer than every one the store knows for its agent (see
//!   `Store::adopt_certificate`): a restore from an older backup does not
//!   strand agents that renewed since, and a retired certificate stays
//!   retired.

use std::sync::Arc;
use std::time::SystemTime;

use census_proto::v1 as pb;
use census_proto::v1::agent_service_server::AgentService;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::clock::now_ms;
use crate::config::{AgentPolicy, Limits};
use crate::disk_space::DiskGuard;
use crate::error::Error;
use crate::pki::{Pki, certificate_fingerprint};
use crate::rate_limit::ReportRateLimit;
use crate::secrets::Secret;
use crate::self_metrics::{Refusal, ReportKind, SelfMetrics};
use crate::store::{AgentRecord, Digest, NewAgent, Store};
use crate::validate::{self, Violation};

pub struct AgentApi {
    store: Arc<dyn Store>,
    pki: Arc<Pki>,
    limits: Limits,
    policy: AgentPolicy,
    self_metrics: Arc<SelfMetrics>,
    rate_limit: ReportRateLimit,
    disk: Option<DiskGuard>,
}

impl AgentApi {
    pub fn new(store: Arc<dyn Store>, pki: Arc<Pki>, limits: Limits, policy: AgentPolicy) -> AgentApi {
        let rate_limit = ReportRateLimit::new(&limits);
        AgentApi { store, pki, limits, policy, self_metrics: Arc::default(), rate_limit, disk: None }
    }

    /// Counts reports and ingest latency into `metrics` (served on /metrics).
    pub fn with_self_metrics(mut self, metrics: Arc<SelfMetrics>) -> AgentApi {
        self.self_metrics = metrics;
        self
    }

    /// Refuses reports while the data directory's filesystem is short of
    /// `limits.min_free_disk_bytes` (see `disk_space`).
    pub fn with_disk_guard(mut self, guard: DiskGuard) -> AgentApi {
        self.disk = Some(guard);
        self
    }

    /// Refuses a write while the disk is short of its reserve.
    fn disk_room(&self, what: &str) -> Result<(), Status> {
        match self.disk.as_ref().map(DiskGuard::check) {
            Some(Err(full)) => {
                warn!(reason = %full, "{what} refused");
                Err(Status::from(full))
            }
            _ => Ok(()),
        }
    }

    fn settings(&self) -> pb::AgentSettings {
        pb::AgentSettings {
            heartbeat_interval_s: u32::try_from(self.policy.heartbeat_interval.as_secs()).unwrap_or(u32::MAX),
            inventory_interval_s: u32::try_from(self.policy.inventory_interval.as_secs()).unwrap_or(u32::MAX),
            accepts_health_and_deltas: true,
        }
    }

    /// The enrolled agent behind the client certificate of this request,
    /// and that certificate's fingerprint. The first call made with a
    /// renewed certificate retires the agent's previous one.
    async fn caller<T>(&self, request: &Request<T>) -> Result<(AgentRecord, Digest), Status> {
        let certs = request.peer_certs().ok_or_else(|| {
            Status::unauthenticated("a client certificate is required for this call: enroll this agent first (census-agent enroll)")
        })?;
        let leaf = certs.first().ok_or_else(|| Status::unauthenticated("empty client certificate chain"))?;
        let fingerprint = certificate_fingerprint(leaf.as_ref());
        let store = Arc::clone(&self.store);
        let known = blocking(move || store.agent_by_certificate(&fingerprint)).await?;
        let mut agent = match known {
            Some(agent) => agent,
            None => self.adopt(leaf.as_ref()).await?.ok_or_else(|| {
                Status::unauthenticated(
                    "this client certificate is not (or no longer) registered with this collector: the agent was re-enrolled elsewhere; enroll it again",
                )
            })?,
        };
        if agent.revoked {
            let when = match agent.revoked_at_unix_ms {
                0 => String::new(),
                t => format!(" at {}", crate::clock::rfc3339_seconds(t)),
            };
            return Err(Status::permission_denied(format!(
                "agent {} has been revoked by an administrator{when}; it cannot report again unless it is enrolled again (census-agent enroll)",
                agent.agent_id
            )));
        }
        if agent.cert_fingerprint == fingerprint[..] && !agent.previous_cert_fingerprint.is_empty() {
            let store = Arc::clone(&self.store);
            let agent_id = agent.agent_id.clone();
            blocking(move || store.retire_previous_certificate(&agent_id)).await?;
            info!(agent_id = %agent.agent_id, "agent connected with its renewed certificate; the previous one no longer works");
            agent.previous_cert_fingerprint.clear();
            agent.previous_cert_not_after_unix_ms = 0;
        }
        Ok((agent, fingerprint))
    }

    /// A certificate the store does not know, yet verified as issued by
    /// our CA: adopted when it is newer than every one the store knows for
    /// its agent (the store was restored from a backup taken before the
    /// agent renewed), refused otherwise (`None`).
    async fn adopt(&self, der: &[u8]) -> Result<Option<AgentRecord>, Status> {
        let Some((agent_id, issued)) = crate::pki::agent_certificate(der) else { return Ok(None) };
        let store = Arc::clone(&self.store);
        let id = agent_id.clone();
        let adopted = blocking(move || store.adopt_certificate(&id, &issued)).await?;
        if adopted.as_ref().is_some_and(|a| !a.revoked) {
            info!(
                %agent_id,
                "adopted a certificate this CA issued after the stored one (the store was restored from an older backup?)"
            );
        }
        Ok(adopted)
    }
}

/// Refuses a request whose `agent_id` is not the certificate's.
fn same_agent(agent: &AgentRecord, claimed: &str) -> Result<(), Status> {
    if claimed != agent.agent_id {
        warn!(%claimed, "request for another agent refused");
        return Err(Status::permission_denied(format!(
            "this certificate belongs to agent {}; it cannot act as agent {claimed}",
            agent.agent_id
        )));
    }
    Ok(())
}

/// Refuses inventory that describes another host than the one this agent
/// enrolled as: the host uuid is the identity enrollment bound to the
/// certificate, so a compromised endpoint cannot pass itself off as another
/// machine (its hostname and inventory would otherwise sit under the other
/// host's uuid). A machine whose uuid really changed enrolls again.
fn same_host(agent: &AgentRecord, req: &pb::ReportRequest) -> Result<(), Status> {
    for report in &req.reports {
        let identity = match &report.body {
            Some(pb::report::Body::Inventory(inv)) => inv.identity.as_ref(),
            Some(pb::report::Body::InventoryDelta(d)) => d.changed.as_ref().and_then(|c| c.identity.as_ref()),
            _ => None,
        };
        let Some(identity) = identity else { continue };
        if !identity.host_uuid.is_empty() && identity.host_uuid != agent.host_uuid {
            warn!(seq = report.seq, "inventory for another host refused");
            return Err(Status::invalid_argument(format!(
                "report seq {} describes host {:?}, but agent {} enrolled as host {:?}; a host whose uuid changed must enroll again (census-agent enroll)",
                report.seq, identity.host_uuid, agent.agent_id, agent.host_uuid
            )));
        }
    }
    Ok(())
}

/// Runs store work off the async threads: sled flushes block.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(format!("store task failed: {e}")))?.map_err(Status::from)
}

fn refuse(v: Violation) -> Status {
    match v {
        Violation::TooLarge(m) => Status::invalid_argument(format!("request too large: {m}")),
        Violation::Invalid(m) => Status::invalid_argument(format!("malformed request: {m}")),
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    #[tracing::instrument(skip_all, fields(hostname, agent_id))]
    async fn enroll(&self, request: Request<pb::EnrollRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        let req = request.into_inner();
        validate::enroll_request(&req, &self.limits).map_err(refuse)?;
        let identity = req.identity.clone().unwrap_or_default();
        tracing::Span::current().record("hostname", identity.hostname.as_str());

        let secret = Secret::new(req.enrollment_secret.clone());
        let hash = secret.hash();
        let store = Arc::clone(&self.store);
        let record = blocking(move || store.enrollment_secret(&hash)).await?;
        let now = SystemTime::now();
        match record {
            None => {
                warn!("enrollment refused: unknown secret");
                return Err(Status::unauthenticated("enrollment secret not recognised by this collector"));
            }
            Some(r) => {
                // Expired, revoked or used up: refused before anything is
                // signed or stored (`enroll_agent` checks again as it counts
                // the use).
                if let Some(why) = r.refusal(crate::clock::unix_ms(now)) {
                    warn!(secret = %r.id, "enrollment refused: {why}");
                    return Err(Status::permission_denied(format!("{why}; ask an administrator for a current one (census secrets list)")));
                }
            }
        }

        self.disk_room("enrollment")?;
        let store = Arc::clone(&self.store);
        let host_uuid = identity.host_uuid.clone();
        let agent_id = match blocking(move || store.agent_by_host(&host_uuid)).await? {
            Some(existing) => existing.agent_id,
            None => new_agent_id(),
        };
        tracing::Span::current().record("agent_id", agent_id.as_str());
        let lifetime = self.policy.certificate_lifetime;
        let (cert_pem, cert_der) = self.pki.sign_agent_csr(&req.csr_pem, &agent_id, lifetime, now).map_err(Status::from)?;
        let new = NewAgent {
            agent_id: agent_id.clone(),
            host_uuid: identity.host_uuid.clone(),
            hostname: identity.hostname.clone(),
            agent_version: req.agent_version.clone(),
            cert_fingerprint: certificate_fingerprint(&cert_der),
            cert_not_after_unix_ms: crate::clock::unix_ms(now + lifetime),
            enrolled_at_unix_ms: crate::clock::unix_ms(now),
            secret_hash: hash,
        };
        let store = Arc::clone(&self.store);
        let agent = blocking(move || store.enroll_agent(new)).await?;
        info!("agent enrolled");
        Ok(Response::new(pb::EnrollResponse {
            agent_id: agent.agent_id,
            certificate_pem: cert_pem,
            ca_certificate_pem: self.pki.ca_cert_pem.clone(),
            settings: Some(self.settings()),
        }))
    }

    #[tracing::instrument(skip_all, fields(agent_id, seq_first, seq_last))]
    async fn report(&self, request: Request<pb::ReportRequest>) -> Result<Response<pb::ReportResponse>, Status> {
        let started = std::time::Instant::now();
        let reports = request.get_ref().reports.len();
        for r in &request.get_ref().reports {
            self.self_metrics.report_received(ReportKind::of(r));
        }
        let refused = |why: Refusal, status: Status| {
            self.self_metrics.reports_refused(why, reports);
            status
        };
        let (agent, _) = self.caller(&request).await.map_err(|s| {
            let why = match s.code() {
                tonic::Code::Unauthenticated => Refusal::Unauthenticated,
                tonic::Code::PermissionDenied => Refusal::Revoked,
                _ => Refusal::Unavailable,
            };
            refused(why, s)
        })?;
        let span = tracing::Span::current();
        span.record("agent_id", agent.agent_id.as_str());
        let req = request.into_inner();
        same_agent(&agent, &req.agent_id).map_err(|s| refused(Refusal::WrongAgent, s))?;
        // Before validation: malformed floods spend tokens too.
        if let Err(throttled) = self.rate_limit.admit(&agent.agent_id, req.reports.len(), std::time::Instant::now()) {
            warn!(reports, retry_after_ms = throttled.retry_after.as_millis() as u64, "reports refused: agent over its rate limit");
            return Err(refused(Refusal::Throttled, Status::resource_exhausted(throttled.to_string())));
        }
        if let (Some(first), Some(last)) = (req.reports.first(), req.reports.last()) {
            span.record("seq_first", first.seq);
            span.record("seq_last", last.seq);
        }
        if let Err(v) = validate::report_request(&req, &self.limits) {
            warn!(reason = %v, "report refused");
            let why = match v {
                Violation::TooLarge(_) => Refusal::TooLarge,
                Violation::Invalid(_) => Refusal::Invalid,
            };
            return Err(refused(why, refuse(v)));
        }
        same_host(&agent, &req).map_err(|s| refused(Refusal::WrongAgent, s))?;
        self.disk_room("reports").map_err(|s| refused(Refusal::Unavailable, s))?;
        let store = Arc::clone(&self.store);
        let agent_id = agent.agent_id.clone();
        let received = now_ms();
        let ingested =
            blocking(move || store.put_reports(&agent_id, &req.reports, received)).await.map_err(|s| refused(Refusal::Unavailable, s))?;
        self.self_metrics.ingested(started.elapsed());
        Ok(Response::new(pb::ReportResponse {
            acked_through: ingested.acked_through,
            settings: Some(self.settings()),
            full_inventory_requested: ingested.full_inventory_requested,
        }))
    }

    #[tracing::instrument(skip_all, fields(agent_id))]
    async fn renew_certificate(
        &self,
        request: Request<pb::RenewCertificateRequest>,
    ) -> Result<Response<pb::RenewCertificateResponse>, Status> {
        let (agent, presented) = self.caller(&request).await?;
        tracing::Span::current().record("agent_id", agent.agent_id.as_str());
        let req = request.into_inner();
        same_agent(&agent, &req.agent_id)?;
        validate::renew_request(&req, &self.limits).map_err(refuse)?;
        self.disk_room("certificate renewal")?;
        let now = SystemTime::now();
        let lifetime = self.policy.certificate_lifetime;
        let (cert_pem, cert_der) = self.pki.sign_agent_csr(&req.csr_pem, &agent.agent_id, lifetime, now).map_err(Status::from)?;
        let (_, renewed) = crate::pki::agent_certificate(&cert_der)
            .ok_or_else(|| Status::internal("the certificate just issued does not parse; this is a bug"))?;
        let not_after_unix_ms = renewed.not_after_unix_ms;
        let store = Arc::clone(&self.store);
        blocking(move || store.renew_certificate(&agent.agent_id, &presented, &renewed)).await?;
        info!(not_after = %crate::clock::rfc3339_seconds(not_after_unix_ms), "agent certificate renewed");
        Ok(Response::new(pb::RenewCertificateResponse { certificate_pem: cert_pem, not_after_unix_ms }))
    }
}

fn new_agent_id() -> String {
    let mut bytes = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    hex::encode(bytes)
}
