//! AdminService: the questions the CLI and the UI ask, behind a bearer
//! token with a role.
//!
//! Authentication happens once, in `authenticate` (a tonic interceptor);
//! each method then states the role it needs with `require`.

use std::path::PathBuf;
use std::sync::Arc;

use census_proto::v1 as pb;
use census_proto::v1::admin_service_server::AdminService;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::alert::AlertState;
use crate::alert::book::{Alert, Matcher, Silence};
use crate::alert::rules::RuleSet;
use crate::alerting::Alerting;
use crate::config::AgentPolicy;
use crate::error::Error;
use crate::metrics::{self, Resolution};
use crate::notify::outbox::DeliveryState;
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
    alerting: Arc<Alerting>,
    /// The data directory, for `Backup`: its `pki/` goes into backups, and
    /// `backups/` holds the one being sent. Unset: no backups served.
    data_dir: Option<PathBuf>,
    /// One backup at a time: each pauses writes while it is taken.
    backup_slot: Arc<Semaphore>,
}

impl AdminApi {
    pub fn new(store: Arc<dyn Store>, policy: AgentPolicy, metrics: crate::config::Metrics, alerting: Arc<Alerting>) -> AdminApi {
        AdminApi { store, policy, metrics, alerting, data_dir: None, backup_slot: Arc::new(Semaphore::new(1)) }
    }

    /// Serves `Backup` from this data directory.
    pub fn with_data_dir(mut self, data_dir: PathBuf) -> AdminApi {
        self.data_dir = Some(data_dir);
        self
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
        blocking("store", &self.store, f).await
    }

    /// The alert service takes a lock that an evaluation holds while it
    /// commits (a sled flush), and its changes are durable before they
    /// return: never on the async threads either.
    async fn with_alerting<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Alerting) -> crate::error::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        blocking("alert service", &self.alerting, f).await
    }
}

/// Runs `f` on `target` on a blocking thread.
async fn blocking<S: ?Sized + Send + Sync + 'static, T: Send + 'static>(
    what: &'static str,
    target: &Arc<S>,
    f: impl FnOnce(&S) -> crate::error::Result<T> + Send + 'static,
) -> Result<T, Status> {
    let target = Arc::clone(target);
    tokio::task::spawn_blocking(move || f(target.as_ref()))
        .await
        .map_err(|e| Status::internal(format!("{what} task failed: {e}")))?
        .map_err(Status::from)
}

/// Pieces of a backup on the wire: well under the 4 MiB default message limit.
const BACKUP_CHUNK_BYTES: usize = 256 * 1024;

const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;
const DEFAULT_OUTBOX_LIMIT: usize = 100;
/// Comments end up in tickets and logs: a paragraph, not a document.
const MAX_COMMENT_BYTES: usize = 1024;
/// A rule file is small; the admin API's decoding limit is 1 MiB anyway.
const MAX_RULE_TEXT_BYTES: usize = 512 * 1024;
const MAX_SILENCE_MATCHERS: usize = 32;

#[tonic::async_trait]
impl AdminService for AdminApi {
    type BackupStream = ReceiverStream<Result<pb::BackupChunk, Status>>;

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

    async fn list_alerts(&self, request: Request<pb::ListAlertsRequest>) -> Result<Response<pb::ListAlertsResponse>, Status> {
        require(&request, Role::Viewer)?;
        let state = request.into_inner().state;
        let state = match state.as_str() {
            "" => None,
            s => Some(
                AlertState::parse(s)
                    .ok_or_else(|| Status::invalid_argument(format!("state {s:?} is not one of pending, firing, resolved")))?,
            ),
        };
        let mut alerts = self.with_alerting(|a| Ok(a.alerts())).await?;
        alerts.retain(|a| state.is_none_or(|s| a.state == s));
        sort_alerts(&mut alerts);
        Ok(Response::new(pb::ListAlertsResponse { alerts: alerts.iter().map(wire::alert_info).collect() }))
    }

    async fn get_alert(&self, request: Request<pb::GetAlertRequest>) -> Result<Response<pb::GetAlertResponse>, Status> {
        require(&request, Role::Viewer)?;
        let id = alert_id(request.into_inner().id)?;
        let (alert, tickets) = self
            .with_alerting(move |a| {
                let alert = a.alert(&id)?;
                let tickets = a.tickets_of(&alert.fingerprint)?;
                Ok((alert, tickets))
            })
            .await?;
        Ok(Response::new(pb::GetAlertResponse {
            alert: Some(wire::alert_info(&alert)),
            tickets: tickets.into_iter().map(|(sink, ticket)| pb::AlertTicket { sink, ticket }).collect(),
        }))
    }

    async fn acknowledge_alert(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        let caller = require(&request, Role::Operator)?;
        let req = request.into_inner();
        let id = alert_id(req.id)?;
        let comment = free_text("comment", req.comment)?;
        let by = caller.token_id.clone();
        let alert = self.with_alerting(move |a| a.acknowledge(&id, &by, &comment, now_ms())).await?;
        tracing::info!(alert = %alert.fingerprint, rule = %alert.rule, host = %alert.hostname, by = %caller.token_id, "alert acknowledged");
        Ok(Response::new(pb::AcknowledgeAlertResponse { alert: Some(wire::alert_info(&alert)) }))
    }

    async fn list_silences(&self, request: Request<pb::ListSilencesRequest>) -> Result<Response<pb::ListSilencesResponse>, Status> {
        require(&request, Role::Viewer)?;
        let mut silences = self.with_alerting(|a| Ok(a.silences())).await?;
        let now = now_ms();
        sort_silences(&mut silences, now);
        Ok(Response::new(pb::ListSilencesResponse { silences: silences.iter().map(|s| wire::silence_info(s, now)).collect() }))
    }

    async fn add_silence(&self, request: Request<pb::AddSilenceRequest>) -> Result<Response<pb::AddSilenceResponse>, Status> {
        let caller = require(&request, Role::Operator)?;
        let req = request.into_inner();
        let now = now_ms();
        let matchers = silence_matchers(&req.matchers)?;
        let ends_at = silence_end(req.duration_ms, req.ends_at_unix_ms, now)?;
        let comment = free_text("comment", req.comment)?;
        let by = caller.token_id;
        let silence = self.with_alerting(move |a| a.add_silence(matchers, now, ends_at, &by, &comment)).await?;
        let matchers: Vec<String> = silence.matchers.iter().map(ToString::to_string).collect();
        tracing::info!(silence = %silence.id, matchers = %matchers.join(" "), by = %silence.created_by, "silence added");
        Ok(Response::new(pb::AddSilenceResponse { silence: Some(wire::silence_info(&silence, now)) }))
    }

    async fn expire_silence(&self, request: Request<pb::ExpireSilenceRequest>) -> Result<Response<pb::ExpireSilenceResponse>, Status> {
        let caller = require(&request, Role::Operator)?;
        let id = request.into_inner().id;
        if id.is_empty() || id.len() > 64 {
            return Err(Status::invalid_argument("silence id must be 1 to 64 bytes (`census silence list` shows them)"));
        }
        let now = now_ms();
        let silence = self.with_alerting(move |a| a.expire_silence(&id, now)).await?;
        tracing::info!(silence = %silence.id, by = %caller.token_id, "silence expired");
        Ok(Response::new(pb::ExpireSilenceResponse { silence: Some(wire::silence_info(&silence, now)) }))
    }

    async fn list_rules(&self, request: Request<pb::ListRulesRequest>) -> Result<Response<pb::ListRulesResponse>, Status> {
        require(&request, Role::Viewer)?;
        let (rules, rule_file_error) = self.with_alerting(|a| Ok(a.rules())).await?;
        Ok(Response::new(pb::ListRulesResponse { rules: rules.iter().map(wire::rule_info).collect(), rule_file_error }))
    }

    async fn put_rule(&self, request: Request<pb::PutRuleRequest>) -> Result<Response<pb::PutRuleResponse>, Status> {
        let caller = require(&request, Role::Admin)?;
        let text = rule_text(request.into_inner().toml)?;
        let mut set = RuleSet::from_toml(&text).map_err(Error::from)?;
        let spec = match set.rules.len() {
            1 => set.rules.remove(0).spec,
            n => {
                return Err(Status::invalid_argument(format!(
                    "the text holds {n} [[rule]] tables; put exactly one rule per call (a rule file belongs in alerts.rules_file)"
                )));
            }
        };
        let name = spec.name.clone();
        let rule = self
            .with_alerting(move |a| {
                a.put_rule(spec)?;
                a.rules()
                    .0
                    .into_iter()
                    .find(|r| r.rule.spec.name == name)
                    .ok_or_else(|| Error::NotFound(format!("rule {name:?} vanished after it was put")))
            })
            .await?;
        tracing::info!(rule = %rule.rule.spec.name, by = %caller.token_id, "rule put through the admin API");
        Ok(Response::new(pb::PutRuleResponse { rule: Some(wire::rule_info(&rule)) }))
    }

    async fn delete_rule(&self, request: Request<pb::DeleteRuleRequest>) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        let caller = require(&request, Role::Admin)?;
        let name = request.into_inner().name;
        if name.is_empty() || name.len() > 128 {
            return Err(Status::invalid_argument("rule name must be 1 to 128 bytes"));
        }
        let deleted = name.clone();
        self.with_alerting(move |a| a.delete_rule(&name)).await?;
        tracing::info!(rule = %deleted, by = %caller.token_id, "rule deleted through the admin API");
        Ok(Response::new(pb::DeleteRuleResponse {}))
    }

    async fn test_rules(&self, request: Request<pb::TestRulesRequest>) -> Result<Response<pb::TestRulesResponse>, Status> {
        require(&request, Role::Viewer)?;
        let text = rule_text(request.into_inner().toml)?;
        let mut alerts = self.with_alerting(move |a| a.test_rules(&text, now_ms())).await?;
        sort_alerts(&mut alerts);
        Ok(Response::new(pb::TestRulesResponse { alerts: alerts.iter().map(wire::alert_info).collect() }))
    }

    async fn list_outbox(&self, request: Request<pb::ListOutboxRequest>) -> Result<Response<pb::ListOutboxResponse>, Status> {
        require(&request, Role::Viewer)?;
        let req = request.into_inner();
        let state = match req.state.as_str() {
            "" => None,
            s => Some(
                DeliveryState::parse(s)
                    .ok_or_else(|| Status::invalid_argument(format!("state {s:?} is not one of pending, delivered, dead")))?,
            ),
        };
        if req.sink.len() > 255 || req.sink.contains('\0') {
            return Err(Status::invalid_argument("sink must be at most 255 bytes without NUL"));
        }
        let limit = match req.limit as usize {
            0 => DEFAULT_OUTBOX_LIMIT,
            n => n.min(MAX_PAGE),
        };
        let sink = (!req.sink.is_empty()).then_some(req.sink);
        let entries = self.with_store(move |s| s.outbox_entries(state, sink.as_deref(), limit)).await?;
        Ok(Response::new(pb::ListOutboxResponse { entries: entries.iter().map(wire::outbox_entry_info).collect() }))
    }

    async fn retry_outbox(&self, request: Request<pb::RetryOutboxRequest>) -> Result<Response<pb::RetryOutboxResponse>, Status> {
        let caller = require(&request, Role::Operator)?;
        let id = request.into_inner().id;
        let entry = self
            .with_store(move |s| {
                let mut entry =
                    s.outbox_entry(id)?.ok_or_else(|| Error::NotFound(format!("no outbox entry {id} (`census outbox` lists them)")))?;
                entry.retry_now(now_ms()).map_err(Error::FailedPrecondition)?;
                s.update_outbox_entry(&entry)?;
                Ok(entry)
            })
            .await?;
        tracing::info!(outbox = entry.id, sink = %entry.sink, by = %caller.token_id, "outbox entry retried");
        Ok(Response::new(pb::RetryOutboxResponse { entry: Some(wire::outbox_entry_info(&entry)) }))
    }

    async fn revoke_agent(&self, request: Request<pb::RevokeAgentRequest>) -> Result<Response<pb::RevokeAgentResponse>, Status> {
        let caller = require(&request, Role::Admin)?;
        let agent_id = request.into_inner().agent_id.to_ascii_lowercase();
        if agent_id.len() != 32 || !agent_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument(
                "agent_id must be the 32 hex characters of an agent id (`census hosts` shows them); a hostname is not accepted",
            ));
        }
        let (host, already) = self
            .with_store(move |s| {
                let (_, already) = s.revoke_agent(&agent_id, now_ms())?;
                let host = s.host(&agent_id)?.ok_or_else(|| Error::NotFound(format!("agent {agent_id} vanished while revoking it")))?;
                Ok((host, already))
            })
            .await?;
        if !already {
            tracing::info!(agent_id = %host.agent.agent_id, host = %host.agent.hostname, by = %caller.token_id, "agent revoked");
        }
        Ok(Response::new(pb::RevokeAgentResponse { host: Some(self.summary(&host, now_ms())), already_revoked: already }))
    }

    async fn backup(&self, request: Request<pb::BackupRequest>) -> Result<Response<Self::BackupStream>, Status> {
        let caller = require(&request, Role::Admin)?;
        let data_dir = self.data_dir.clone().ok_or_else(|| Status::unimplemented("this collector does not serve backups"))?;
        let permit = Arc::clone(&self.backup_slot)
            .try_acquire_owned()
            .map_err(|_| Status::failed_precondition("another backup is being taken; try again when it has finished"))?;
        // Bounded: the file is read only as fast as the client takes it.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let store = Arc::clone(&self.store);
        // The snapshot is taken after the response headers went out, so a
        // large store does not run into the client's request deadline.
        tokio::spawn(async move {
            send_backup(store, data_dir, tx, caller.token_id).await;
            drop(permit);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Takes a backup into `<data_dir>/backups/` (mode 0600; writes pause
/// meanwhile), streams it to `tx`, then deletes it. Any failure reaches
/// the client as the stream's last item.
async fn send_backup(store: Arc<dyn Store>, data_dir: PathBuf, tx: tokio::sync::mpsc::Sender<Result<pb::BackupChunk, Status>>, by: String) {
    let dir = data_dir.join("backups");
    let path = dir.join(format!("sending.{}", crate::backup::EXTENSION));
    let started = std::time::Instant::now();
    let taken = {
        let (dir, path) = (dir.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            crate::init::create_data_dir(&dir)?;
            // Only one backup runs at a time: a file left here is from a
            // collector that stopped while sending it.
            let _ = std::fs::remove_file(crate::backup::partial_path(&path));
            crate::backup::write_file(store.as_ref(), &data_dir.join("pki"), &path, std::time::SystemTime::now())
        })
        .await
    };
    let summary = match taken {
        Ok(Ok(summary)) => summary,
        Ok(Err(e)) => {
            let _ = tx.send(Err(backup_failed(e, &dir))).await;
            return;
        }
        Err(e) => {
            let _ = tx.send(Err(Status::internal(format!("backup task failed: {e}")))).await;
            return;
        }
    };
    tracing::info!(
        by = %by,
        agents = summary.agents,
        entries = summary.entries,
        bytes = summary.bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "backup taken; sending it"
    );
    if let Err(status) = stream_file(&path, &tx).await {
        let _ = tx.send(Err(status)).await;
    }
    if let Err(e) = tokio::fs::remove_file(&path).await {
        tracing::warn!(error = %e, path = %path.display(), "cannot delete the backup file just sent");
    }
}

/// Sends a file in chunks; stops early when the client went away.
async fn stream_file(path: &std::path::Path, tx: &tokio::sync::mpsc::Sender<Result<pb::BackupChunk, Status>>) -> Result<(), Status> {
    use tokio::io::AsyncReadExt;
    let unavailable = |e: std::io::Error| Status::unavailable(format!("reading the backup to send it: {e}"));
    let mut file = tokio::fs::File::open(path).await.map_err(unavailable)?;
    loop {
        let mut data = Vec::with_capacity(BACKUP_CHUNK_BYTES);
        let n = (&mut file).take(BACKUP_CHUNK_BYTES as u64).read_to_end(&mut data).await.map_err(unavailable)?;
        if n == 0 {
            return Ok(());
        }
        if tx.send(Ok(pb::BackupChunk { data })).await.is_err() {
            tracing::warn!("the backup client went away before the end; backup abandoned");
            return Ok(());
        }
    }
}

fn backup_failed(e: Error, dir: &std::path::Path) -> Status {
    match &e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => Status::resource_exhausted(format!(
            "no space left in {} for the backup: it needs about the size of the database there",
            dir.display()
        )),
        _ => {
            tracing::error!(error = %e, "backup failed");
            Status::unavailable(format!("the backup could not be taken: {e}"))
        }
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

/// Firing first, then pending, then resolved; most severe, then oldest
/// first; then by host.
fn sort_alerts(alerts: &mut [Alert]) {
    let rank = |s: AlertState| match s {
        AlertState::Firing => 0,
        AlertState::Pending => 1,
        AlertState::Resolved => 2,
    };
    alerts.sort_by(|a, b| {
        rank(a.state)
            .cmp(&rank(b.state))
            .then_with(|| b.severity.cmp(&a.severity))
            .then_with(|| a.active_since_unix_ms.cmp(&b.active_since_unix_ms))
            .then_with(|| a.hostname.cmp(&b.hostname))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
}

/// Active first, then pending, then expired; soonest end first.
fn sort_silences(silences: &mut [Silence], now_unix_ms: i64) {
    let rank = |s: &Silence| match wire::silence_state(s, now_unix_ms) {
        "active" => 0,
        "pending" => 1,
        _ => 2,
    };
    silences.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.ends_at_unix_ms.cmp(&b.ends_at_unix_ms)).then_with(|| a.id.cmp(&b.id)));
}

/// An alert id as typed: a fingerprint or a prefix of one (the alert
/// service checks the length and uniqueness).
fn alert_id(id: String) -> Result<String, Status> {
    if id.is_empty() || id.len() > 64 {
        return Err(Status::invalid_argument("alert id must be 6 to 64 characters of its fingerprint (`census alerts` shows 12)"));
    }
    Ok(id)
}

fn free_text(field: &str, text: String) -> Result<String, Status> {
    if text.len() > MAX_COMMENT_BYTES || text.contains('\0') {
        return Err(Status::invalid_argument(format!("{field} must be at most {MAX_COMMENT_BYTES} bytes without NUL")));
    }
    Ok(text)
}

fn rule_text(text: String) -> Result<String, Status> {
    if text.trim().is_empty() {
        return Err(Status::invalid_argument("the rule text is empty; give [[rule]] tables in TOML"));
    }
    if text.len() > MAX_RULE_TEXT_BYTES {
        return Err(Status::invalid_argument(format!("the rule text is larger than {MAX_RULE_TEXT_BYTES} bytes")));
    }
    Ok(text)
}

/// Parses `label=value`, `label!=value`, `label=~glob`, `label!~glob`.
fn silence_matchers(texts: &[String]) -> Result<Vec<Matcher>, Status> {
    if texts.is_empty() || texts.len() > MAX_SILENCE_MATCHERS {
        return Err(Status::invalid_argument(format!(
            "a silence needs 1 to {MAX_SILENCE_MATCHERS} matchers such as alertname=disk-almost-full or host=~web-*"
        )));
    }
    texts
        .iter()
        .map(|t| {
            if t.len() > 1024 {
                return Err(Status::invalid_argument("a matcher must be at most 1024 bytes"));
            }
            Matcher::parse(t).map_err(|e| Status::invalid_argument(format!("matcher {e}")))
        })
        .collect()
}

/// When a silence added at `now` ends: after `duration_ms`, or at
/// `ends_at_unix_ms`; exactly one of the two is given.
fn silence_end(duration_ms: i64, ends_at_unix_ms: i64, now_unix_ms: i64) -> Result<i64, Status> {
    match (duration_ms, ends_at_unix_ms) {
        (d, 0) if d > 0 => Ok(now_unix_ms.saturating_add(d)),
        (0, end) if end > now_unix_ms => Ok(end),
        (0, end) if end > 0 => {
            Err(Status::invalid_argument(format!("the silence would end at {}, which is in the past", crate::clock::rfc3339_seconds(end))))
        }
        _ => Err(Status::invalid_argument("give exactly one of a positive duration_ms and ends_at_unix_ms")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::AlertingConfig;
    use crate::store::sled::SledStore;

    fn api(dir: &std::path::Path) -> AdminApi {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("open store"));
        let config = AlertingConfig {
            rules_file: None,
            default_rules: true,
            heartbeat_interval: std::time::Duration::from_secs(30),
            sinks: Vec::new(),
            routes: Vec::new(),
        };
        let alerting = Arc::new(Alerting::open(Arc::clone(&store), config).expect("alert service"));
        AdminApi::new(store, AgentPolicy::default(), crate::config::Metrics::default(), alerting)
    }

    fn as_role<T>(role: Role, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(Caller { token_id: format!("tok-{}", role.as_str()), role });
        request
    }

    const RULE: &str = "[[rule]]\nname = \"no-telnet\"\nwhen = { kind = \"software_forbidden\", package = \"telnetd\" }\n";

    #[tokio::test]
    async fn each_alert_call_needs_its_role() {
        let dir = tempfile::tempdir().expect("temp dir");
        let api = api(dir.path());
        let silence =
            || pb::AddSilenceRequest { matchers: vec!["alertname=host-offline".into()], duration_ms: 3_600_000, ..Default::default() };

        let refused = api.add_silence(as_role(Role::Viewer, silence())).await.expect_err("a viewer cannot silence");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(refused.message().contains("needs the operator role"), "{}", refused.message());
        let added =
            api.add_silence(as_role(Role::Operator, silence())).await.expect("an operator can").into_inner().silence.expect("silence");
        assert_eq!((added.created_by.as_str(), added.state.as_str()), ("tok-operator", "active"), "the caller's token id is recorded");
        assert_eq!(added.matchers, vec!["alertname=host-offline".to_string()]);
        let listed = api.list_silences(as_role(Role::Viewer, pb::ListSilencesRequest {})).await.expect("viewer lists").into_inner();
        assert_eq!(listed.silences, vec![added.clone()]);
        let expired = api
            .expire_silence(as_role(Role::Operator, pb::ExpireSilenceRequest { id: added.id.clone() }))
            .await
            .expect("expire")
            .into_inner()
            .silence
            .expect("silence");
        assert_eq!(expired.state, "expired");

        let put = || pb::PutRuleRequest { toml: RULE.into() };
        let refused = api.put_rule(as_role(Role::Operator, put())).await.expect_err("an operator cannot change rules");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        let rule = api.put_rule(as_role(Role::Admin, put())).await.expect("an admin can").into_inner().rule.expect("rule");
        assert_eq!((rule.name.as_str(), rule.source.as_str(), rule.kind.as_str()), ("no-telnet", "api", "software_forbidden"));
        let rules = api.list_rules(as_role(Role::Viewer, pb::ListRulesRequest {})).await.expect("list").into_inner();
        let sources: Vec<(&str, &str)> = rules.rules.iter().map(|r| (r.name.as_str(), r.source.as_str())).collect();
        assert!(sources.contains(&("host-offline", "default")) && sources.contains(&("no-telnet", "api")), "{sources:?}");
        assert_eq!(rules.rule_file_error, None);

        let refused =
            api.delete_rule(as_role(Role::Admin, pb::DeleteRuleRequest { name: "host-offline".into() })).await.expect_err("default");
        assert_eq!(refused.code(), tonic::Code::NotFound, "{}", refused.message());
        api.delete_rule(as_role(Role::Admin, pb::DeleteRuleRequest { name: "no-telnet".into() })).await.expect("delete an api rule");

        let refused = api.retry_outbox(as_role(Role::Viewer, pb::RetryOutboxRequest { id: 1 })).await.expect_err("viewer");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        let missing = api.retry_outbox(as_role(Role::Operator, pb::RetryOutboxRequest { id: 1 })).await.expect_err("no entry 1");
        assert_eq!(missing.code(), tonic::Code::NotFound);
        let outbox = api.list_outbox(as_role(Role::Viewer, pb::ListOutboxRequest::default())).await.expect("list outbox").into_inner();
        assert!(outbox.entries.is_empty());
    }

    fn status<T>(r: Result<T, Status>) -> Status {
        r.map(|_| ()).expect_err("refused")
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().expect("temp dir");
        let api = api(dir.path());

        let s = status(api.list_alerts(as_role(Role::Viewer, pb::ListAlertsRequest { state: "burning".into() })).await);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains("pending, firing, resolved"), "{}", s.message());

        let s = status(api.get_alert(as_role(Role::Viewer, pb::GetAlertRequest { id: "abc".into() })).await);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains("at least 6 characters"), "{}", s.message());
        let s = status(api.get_alert(as_role(Role::Viewer, pb::GetAlertRequest { id: "abcdef".into() })).await);
        assert_eq!(s.code(), tonic::Code::NotFound);

        let s = status(
            api.acknowledge_alert(as_role(Role::Operator, pb::AcknowledgeAlertRequest { id: "abcdef".into(), comment: "x".repeat(2000) }))
                .await,
        );
        assert!(s.message().contains("comment must be at most 1024 bytes"), "{}", s.message());

        let two = format!("{RULE}\n{}", RULE.replace("no-telnet", "no-rsh"));
        let s = status(api.put_rule(as_role(Role::Admin, pb::PutRuleRequest { toml: two })).await);
        assert!(s.message().contains("holds 2 [[rule]] tables"), "{}", s.message());
        let s =
            status(api.test_rules(as_role(Role::Viewer, pb::TestRulesRequest { toml: "[[rule]]\nname = \"x\"\nwhen = 3\n".into() })).await);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains("line 3"), "{}", s.message());

        let s = status(
            api.add_silence(as_role(
                Role::Operator,
                pb::AddSilenceRequest { matchers: vec!["host web".into()], duration_ms: 1, ..Default::default() },
            ))
            .await,
        );
        assert!(s.message().starts_with("matcher \"host web\""), "{}", s.message());
        let s = status(api.list_outbox(as_role(Role::Viewer, pb::ListOutboxRequest { state: "lost".into(), ..Default::default() })).await);
        assert!(s.message().contains("pending, delivered, dead"), "{}", s.message());
    }

    #[tokio::test]
    async fn revoking_needs_an_admin_and_an_agent_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let api = api(dir.path());
        let id = "0123456789abcdef0123456789abcdef";
        api.store.enroll_agent(crate::store::test_agent(id, "u1", 1)).expect("enroll");
        let revoke = |agent_id: &str| pb::RevokeAgentRequest { agent_id: agent_id.into() };

        let s = status(api.revoke_agent(as_role(Role::Operator, revoke(id))).await);
        assert_eq!(s.code(), tonic::Code::PermissionDenied);
        let s = status(api.revoke_agent(as_role(Role::Admin, revoke("web-07"))).await);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(s.message().contains("a hostname is not accepted"), "{}", s.message());
        let s = status(api.revoke_agent(as_role(Role::Admin, revoke(&"f".repeat(32)))).await);
        assert_eq!(s.code(), tonic::Code::NotFound);

        let done = api.revoke_agent(as_role(Role::Admin, revoke(&id.to_uppercase()))).await.expect("revoke").into_inner();
        let host = done.host.expect("host");
        assert!(host.revoked && host.revoked_at_unix_ms > 0 && !done.already_revoked);
        assert_eq!(host.certificate_sha256, "01".repeat(32));
        let again = api.revoke_agent(as_role(Role::Admin, revoke(id))).await.expect("revoke again").into_inner();
        assert!(again.already_revoked);
        assert_eq!(again.host.expect("host").revoked_at_unix_ms, host.revoked_at_unix_ms, "nothing changed");
    }

    #[tokio::test]
    async fn a_backup_streams_a_whole_file_to_an_admin_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("collector");
        crate::init::init(&data_dir, &["localhost".into()]).expect("init");
        let api = api(&crate::store::sled::SledStore::path_in(&data_dir));
        let s = status(api.backup(as_role(Role::Admin, pb::BackupRequest {})).await);
        assert_eq!(s.code(), tonic::Code::Unimplemented, "no data directory: no backups");

        let api = api.with_data_dir(data_dir.clone());
        let s = status(api.backup(as_role(Role::Operator, pb::BackupRequest {})).await);
        assert_eq!(s.code(), tonic::Code::PermissionDenied);
        let mut stream = api.backup(as_role(Role::Admin, pb::BackupRequest {})).await.expect("backup").into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = tokio_stream::StreamExt::next(&mut stream).await {
            bytes.extend(chunk.expect("chunk").data);
        }
        let file = dir.path().join("received");
        std::fs::write(&file, &bytes).expect("write");
        let summary = crate::backup::verify(&file).expect("a complete backup");
        assert_eq!(summary.bytes, bytes.len() as u64);
        let left: Vec<_> = std::fs::read_dir(data_dir.join("backups")).expect("backups dir").collect();
        assert!(left.is_empty(), "the sent file is deleted: {left:?}");
    }

    #[test]
    fn a_silence_ends_after_its_duration_or_at_its_end_never_both() {
        assert_eq!(silence_end(60_000, 0, 1_000).expect("duration"), 61_000);
        assert_eq!(silence_end(0, 5_000, 1_000).expect("end"), 5_000);
        assert!(silence_end(0, 0, 1_000).is_err(), "neither");
        assert!(silence_end(60_000, 5_000, 1_000).is_err(), "both");
        assert!(silence_end(-5, 0, 1_000).is_err(), "negative");
        let past = silence_end(0, 500, 1_000).expect_err("past");
        assert!(past.message().contains("1970-01-01T00:00:00Z, which is in the past"), "{}", past.message());
        assert_eq!(silence_end(i64::MAX, 0, 1_000).expect("saturates"), i64::MAX);
    }

    #[test]
    fn alerts_sort_firing_first_then_severity_then_age() {
        use crate::alert::rules::Severity;
        let alert = |fp: &str, state, severity, since| Alert {
            fingerprint: crate::alert::AlertFingerprint::of(fp, "h", &Default::default()),
            rule: fp.into(),
            state,
            severity,
            active_since_unix_ms: since,
            ..wire::tests::sample_alert()
        };
        let mut alerts = vec![
            alert("resolved", AlertState::Resolved, Severity::Critical, 1),
            alert("pending", AlertState::Pending, Severity::Critical, 1),
            alert("firing-warning", AlertState::Firing, Severity::Warning, 1),
            alert("firing-critical-new", AlertState::Firing, Severity::Critical, 9),
            alert("firing-critical-old", AlertState::Firing, Severity::Critical, 2),
        ];
        sort_alerts(&mut alerts);
        let order: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
        assert_eq!(order, ["firing-critical-old", "firing-critical-new", "firing-warning", "pending", "resolved"]);
    }
}
