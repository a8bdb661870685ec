//! AgentService: enrollment and report ingest over mutual TLS.
//!
//! Invariants:
//! - A report is acknowledged only after `Store::put_reports` returned,
//!   i.e. after the write is flushed.
//! - The agent is identified by its client certificate alone (fingerprint
//!   lookup), so an agent can only ever write its own host; the `agent_id`
//!   field must agree with the certificate.
//! - A request outside `Limits` is refused whole; nothing of it is stored.

use std::sync::Arc;
use std::time::SystemTime;

use census_proto::v1 as pb;
use census_proto::v1::agent_service_server::AgentService;
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::config::{AgentPolicy, Limits};
use crate::error::Error;
use crate::pki::{Pki, certificate_fingerprint};
use crate::secrets::Secret;
use crate::self_metrics::{Refusal, ReportKind, SelfMetrics};
use crate::store::{AgentRecord, NewAgent, Store};
use crate::validate::{self, Violation};

pub struct AgentApi {
    store: Arc<dyn Store>,
    pki: Arc<Pki>,
    limits: Limits,
    policy: AgentPolicy,
    self_metrics: Arc<SelfMetrics>,
}

impl AgentApi {
    pub fn new(store: Arc<dyn Store>, pki: Arc<Pki>, limits: Limits, policy: AgentPolicy) -> AgentApi {
        AgentApi { store, pki, limits, policy, self_metrics: Arc::default() }
    }

    /// Counts reports and ingest latency into `metrics` (served on /metrics).
    pub fn with_self_metrics(mut self, metrics: Arc<SelfMetrics>) -> AgentApi {
        self.self_metrics = metrics;
        self
    }

    fn settings(&self) -> pb::AgentSettings {
        pb::AgentSettings {
            heartbeat_interval_s: u32::try_from(self.policy.heartbeat_interval.as_secs()).unwrap_or(u32::MAX),
            inventory_interval_s: u32::try_from(self.policy.inventory_interval.as_secs()).unwrap_or(u32::MAX),
            accepts_health_and_deltas: true,
        }
    }

    /// The enrolled agent behind the client certificate of this request.
    async fn caller<T>(&self, request: &Request<T>) -> Result<AgentRecord, Status> {
        let certs = request.peer_certs().ok_or_else(|| {
            Status::unauthenticated("a client certificate is required for this call: enroll this agent first (census-agent enroll)")
        })?;
        let leaf = certs.first().ok_or_else(|| Status::unauthenticated("empty client certificate chain"))?;
        let fingerprint = certificate_fingerprint(leaf.as_ref());
        let store = Arc::clone(&self.store);
        let agent = blocking(move || store.agent_by_certificate(&fingerprint)).await?.ok_or_else(|| {
            Status::unauthenticated(
                "this client certificate is not (or no longer) registered with this collector: the agent was re-enrolled elsewhere; enroll it again",
            )
        })?;
        if agent.revoked {
            return Err(Status::permission_denied(format!("agent {} has been revoked by an administrator", agent.agent_id)));
        }
        Ok(agent)
    }
}

fn now_ms() -> i64 {
    crate::clock::unix_ms(SystemTime::now())
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
            Some(r) if r.revoked => {
                return Err(Status::permission_denied(format!("enrollment secret {} has been revoked", r.id)));
            }
            Some(r) if r.expires_at_unix_ms != 0 && r.expires_at_unix_ms <= crate::clock::unix_ms(now) => {
                return Err(Status::permission_denied(format!("enrollment secret {} has expired", r.id)));
            }
            Some(_) => {}
        }

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
        let agent = self.caller(&request).await.map_err(|s| {
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
        if req.agent_id != agent.agent_id {
            warn!(claimed = %req.agent_id, "report for another agent refused");
            return Err(refused(
                Refusal::WrongAgent,
                Status::permission_denied(format!(
                    "this certificate belongs to agent {}; it cannot report as agent {}",
                    agent.agent_id, req.agent_id
                )),
            ));
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
}

fn new_agent_id() -> String {
    let mut bytes = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    hex::encode(bytes)
}
