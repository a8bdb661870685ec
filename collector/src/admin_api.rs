//! AdminService: the questions the CLI and the UI ask, behind a bearer
//! token with a role.
//!
//! Authentication happens once, in `authenticate` (a tonic interceptor);
//! each method then states the role it needs with `require`.

use std::sync::Arc;

use census_proto::v1 as pb;
use census_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use crate::config::AgentPolicy;
use crate::metrics::{self, Resolution};
use crate::secrets::{Role, Secret};
use crate::store::{HostView, Store};
use crate::wire;

/// Who is calling, attached to the request by `authenticate`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub role: Role,
}

/// Interceptor: resolves `authorization: Bearer <token>` to a `Caller`.
pub fn authenticate(store: Arc<dyn Store>) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing admin token: pass --token or set CENSUS_TOKEN"))?;
        let value = header.to_str().map_err(|_| Status::unauthenticated("authorization header is not valid ASCII"))?;
        let token =
            value.strip_prefix("Bearer ").ok_or_else(|| Status::unauthenticated("authorization header must be `Bearer <token>`"))?;
        let token = Secret::new(token.trim());
        let record = store
            .admin_token(&token.hash())
            .map_err(Status::from)?
            .filter(|r| !r.revoked)
            .ok_or_else(|| Status::unauthenticated("invalid or revoked admin token"))?;
        let role = Role::parse(&record.role)
            .ok_or_else(|| Status::internal(format!("token {} has an unknown role {:?}", record.id, record.role)))?;
        request.extensions_mut().insert(Caller { token_id: record.id, role });
        Ok(request)
    }
}

/// Refuses the call unless the caller's role is at least `needed`.
fn require<T>(request: &Request<T>, needed: Role) -> Result<Caller, Status> {
    let caller = request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::unauthenticated("request was not authenticated"))?;
    if caller.role < needed {
        return Err(Status::permission_denied(format!(
            "this call needs the {} role; token {} has {}",
            needed.as_str(),
            caller.token_id,
            caller.role.as_str()
        )));
    }
    Ok(caller)
}

pub struct AdminApi {
    store: Arc<dyn Store>,
    policy: AgentPolicy,
    metrics: crate::config::Metrics,
}

impl AdminApi {
    pub fn new(store: Arc<dyn Store>, policy: AgentPolicy, metrics: crate::config::Metrics) -> AdminApi {
        AdminApi { store, policy, metrics }
    }

    /// Online: seen within `offline_after_missed_heartbeats` heartbeat intervals.
    fn online(&self, host: &HostView, now_ms: i64) -> bool {
        let window = self.policy.heartbeat_interval.saturating_mul(self.policy.offline_after_missed_heartbeats);
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        host.agent.last_seen_unix_ms > 0 && now_ms.saturating_sub(host.agent.last_seen_unix_ms) <= window_ms
    }

    fn summary(&self, host: &HostView, now_ms: i64) -> pb::HostSummary {
        wire::host_summary(host, self.online(host, now_ms))
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> crate::error::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| Status::internal(format!("store task failed: {e}")))?
            .map_err(Status::from)
    }
}

const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn list_hosts(&self, request: Request<pb::ListHostsRequest>) -> Result<Response<pb::ListHostsResponse>, Status> {
        require(&request, Role::Viewer)?;
        let req = request.into_inner();
        let page_size = match req.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let offset: usize = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse().map_err(|_| Status::invalid_argument("page_token is not one this server issued"))?
        };
        let mut hosts = self.with_store(|s| s.hosts()).await?;
        hosts.sort_by(|a, b| {
            a.agent.hostname.to_lowercase().cmp(&b.agent.hostname.to_lowercase()).then_with(|| a.agent.agent_id.cmp(&b.agent.agent_id))
        });
        let total = hosts.len();
        let now = now_ms();
        let page: Vec<pb::HostSummary> = hosts.iter().skip(offset).take(page_size).map(|h| self.summary(h, now)).collect();
        let next = offset + page.len();
        let next_page_token = if next < total { next.to_string() } else { String::new() };
        Ok(Response::new(pb::ListHostsResponse { hosts: page, next_page_token }))
    }

    async fn get_host(&self, request: Request<pb::GetHostRequest>) -> Result<Response<pb::GetHostResponse>, Status> {
        require(&request, Role::Viewer)?;
        let key = request.into_inner().id_or_hostname;
        if key.is_empty() || key.len() > 255 {
            return Err(Status::invalid_argument("id_or_hostname must be 1 to 255 bytes"));
        }
        let host: HostView = self.with_store(move |s| resolve_host(s, &key)).await?;
        Ok(Response::new(pb::GetHostResponse {
            summary: Some(self.summary(&host, now_ms())),
            inventory: host.inventory.and_then(|r| r.inventory),
        }))
    }

    async fn list_software(&self, request: Request<pb::ListSoftwareRequest>) -> Result<Response<pb::ListSoftwareResponse>, Status> {
        require(&request, Role::Viewer)?;
        let req = request.into_inner();
        if req.name.is_empty() || req.name.len() > 255 || req.name.contains('\0') {
            return Err(Status::invalid_argument("name must be 1 to 255 bytes without NUL"));
        }
        let name = req.name.clone();
        let (installs, hostnames) = self
            .with_store(move |s| {
                let installs = s.software_installs(&name)?;
                let mut hostnames = std::collections::HashMap::new();
                for i in &installs {
                    if !hostnames.contains_key(&i.agent_id) {
                        let hostname = s.host(&i.agent_id)?.map(|h| h.agent.hostname).unwrap_or_default();
                        hostnames.insert(i.agent_id.clone(), hostname);
                    }
                }
                Ok((installs, hostnames))
            })
            .await?;
        let versions = crate::software::versions_newest_first(installs)
            .into_iter()
            .filter(|g| req.version.is_empty() || g.version == req.version)
            .map(|g| wire::software_version(g, &hostnames))
            .collect();
        Ok(Response::new(pb::ListSoftwareResponse { name: req.name, versions }))
    }

    async fn list_changes(&self, request: Request<pb::ListChangesRequest>) -> Result<Response<pb::ListChangesResponse>, Status> {
        require(&request, Role::Viewer)?;
        let req = request.into_inner();
        if req.host.len() > 255 {
            return Err(Status::invalid_argument("host must be at most 255 bytes"));
        }
        let changes = self
            .with_store(move |s| {
                let agent = if req.host.is_empty() { None } else { Some(resolve_host(s, &req.host)?.agent.agent_id) };
                let changes = s.changes(agent.as_deref(), req.since_unix_ms)?;
                let mut hostnames = std::collections::HashMap::new();
                let mut out = Vec::with_capacity(changes.len());
                for (agent_id, c) in changes {
                    if !hostnames.contains_key(&agent_id) {
                        let name = s.host(&agent_id)?.map(|h| h.agent.hostname).unwrap_or_default();
                        hostnames.insert(agent_id.clone(), name);
                    }
                    out.push(wire::host_change(&agent_id, &hostnames[&agent_id], c));
                }
                Ok(out)
            })
            .await?;
        Ok(Response::new(pb::ListChangesResponse { changes }))
    }

    async fn get_metrics(&self, request: Request<pb::GetMetricsRequest>) -> Result<Response<pb::GetMetricsResponse>, Status> {
        require(&request, Role::Viewer)?;
        let req = request.into_inner();
        if req.host.is_empty() || req.host.len() > 255 || req.metric.is_empty() || req.metric.len() > 1024 || req.metric.contains('\0') {
            return Err(Status::invalid_argument("host (1 to 255 bytes) and metric (1 to 1024 bytes, no NUL) are required"));
        }
        let now = now_ms();
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let resolution = match req.resolution.as_str() {
            "" => Resolution::for_age(
                now.saturating_sub(req.since_unix_ms),
                ms(self.metrics.raw_retention),
                ms(self.metrics.five_minute_retention),
            ),
            r => Resolution::parse(r).ok_or_else(|| Status::invalid_argument(format!("resolution {r:?} is not one of raw, 5m, 1h")))?,
        };
        let response = self
            .with_store(move |s| {
                let host = resolve_host(s, &req.host)?;
                let agent_id = host.agent.agent_id;
                let points = match resolution {
                    Resolution::Raw => s
                        .health_samples(&agent_id, req.since_unix_ms, i64::MAX)?
                        .iter()
                        .filter_map(|x| {
                            let v = metrics::value_of(x, &req.metric)?;
                            Some(pb::MetricPoint { at_unix_ms: x.taken_at_unix_ms, value: v, min: v, max: v, count: 1 })
                        })
                        .collect(),
                    r => s
                        .rollups(&agent_id, &req.metric, r, metrics::bucket_start(req.since_unix_ms, r.width_ms()), i64::MAX)?
                        .iter()
                        .map(|b| pb::MetricPoint { at_unix_ms: b.start_unix_ms, value: b.mean(), min: b.min, max: b.max, count: b.count })
                        .collect(),
                };
                let latest = s.health_samples(&agent_id, now.saturating_sub(24 * 3_600_000), i64::MAX)?;
                let available = latest.last().map(|x| metrics::values_of(x).into_iter().map(|(n, _)| n).collect()).unwrap_or_default();
                Ok(pb::GetMetricsResponse { agent_id, metric: req.metric, resolution: resolution.as_str().into(), points, available })
            })
            .await?;
        Ok(Response::new(response))
    }
}

fn now_ms() -> i64 {
    crate::clock::unix_ms(std::time::SystemTime::now())
}

/// A host by agent id, or by hostname when that names exactly one host.
fn resolve_host(s: &dyn Store, key: &str) -> crate::error::Result<HostView> {
    if let Some(host) = s.host(key)? {
        return Ok(host);
    }
    let named = s.agents_named(key)?;
    match named.as_slice() {
        [] => Err(crate::error::Error::NotFound(format!("no host with agent id or hostname {key:?}"))),
        [one] => s.host(&one.agent_id)?.ok_or_else(|| crate::error::Error::NotFound(format!("host {key:?} vanished while reading"))),
        many => Err(crate::error::Error::FailedPrecondition(format!(
            "{} hosts are named {key:?}; ask for one of these agent ids: {}",
            many.len(),
            many.iter().map(|a| a.agent_id.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}
