//! AdminService: the questions the CLI and the UI ask, behind a bearer
//! token with a role.
//!
//! Authentication happens once, in `authenticate` (a tonic interceptor);
//! each method then states the role it needs with `require`.

use std::sync::Arc;

use census_proto::v1 as pb;
use census_proto::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use crate::alert::AlertState;
use crate::alert::book::{Alert, Matcher, Silence};
use crate::alert::rules::RuleSet;
use crate::alerting::Alerting;
use crate::config::AgentPolicy;
use crate::error::Error;
use crate::filter::{Context as FilterContext, FieldRef, Filter};
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
}

impl AdminApi {
    pub fn new(store: Arc<dyn Store>, policy: AgentPolicy, metrics: crate::config::Metrics, alerting: Arc<Alerting>) -> AdminApi {
        AdminApi { store, policy, metrics, alerting }
    }

    /// Online: seen within `offline_after_missed_heartbeats` heartbeat intervals.
    fn online(&self, host: &HostView, now_ms: i64) -> bool {
        host.agent.last_seen_unix_ms > 0 && now_ms.saturating_sub(host.agent.last_seen_unix_ms) <= self.offline_after_ms()
    }

    fn offline_after_ms(&self) -> i64 {
        let window = self.policy.heartbeat_interval.saturating_mul(self.policy.offline_after_missed_heartbeats);
        i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
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

/// Most `columns` one host listing may ask for.
const MAX_COLUMNS: usize = 32;

/// A host listing's filter, sort field and columns, parsed once per call.
struct HostQuery {
    filter: Option<Filter>,
    sort: Option<FieldRef>,
    columns: Vec<(String, FieldRef)>,
    ctx: FilterContext,
}

impl HostQuery {
    fn parse(req: &pb::ListHostsRequest, offline_after_ms: i64, now_unix_ms: i64) -> Result<HostQuery, Status> {
        // The caret rendering points at the column that is wrong.
        let invalid =
            |what: &str, input: &str, e: crate::filter::ParseError| Status::invalid_argument(format!("{what}:\n{}", e.render(input)));
        let filter = match req.filter.trim() {
            "" => None,
            text => Some(Filter::parse(&req.filter).map_err(|e| invalid("filter", text, e))?),
        };
        let sort = match req.sort.trim() {
            "" => None,
            text => Some(FieldRef::parse(text).map_err(|e| invalid("sort", text, e))?),
        };
        if req.columns.len() > MAX_COLUMNS {
            return Err(Status::invalid_argument(format!("at most {MAX_COLUMNS} columns")));
        }
        let columns = req
            .columns
            .iter()
            .map(|c| FieldRef::parse(c.trim()).map(|f| (c.trim().to_string(), f)).map_err(|e| invalid("column", c.trim(), e)))
            .collect::<Result<_, _>>()?;
        Ok(HostQuery { filter, sort, columns, ctx: FilterContext { now_unix_ms, offline_after_ms } })
    }

    fn columns(&self, host: &HostView) -> std::collections::HashMap<String, String> {
        self.columns
            .iter()
            .filter_map(|(name, field)| {
                let values: Vec<String> = field.values(host, &self.ctx).iter().map(ToString::to_string).collect();
                (!values.is_empty()).then(|| (name.clone(), values.join(", ")))
            })
            .collect()
    }
}

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
        let query = HostQuery::parse(&req, self.offline_after_ms(), now_ms())?;
        let mut hosts = self.with_store(|s| s.hosts()).await?;
        hosts.retain(|h| query.filter.as_ref().is_none_or(|f| f.matches_in(h, &query.ctx)));
        hosts.sort_by(|a, b| {
            let by_name = || {
                a.agent.hostname.to_lowercase().cmp(&b.agent.hostname.to_lowercase()).then_with(|| a.agent.agent_id.cmp(&b.agent.agent_id))
            };
            let order = match &query.sort {
                Some(field) => field.compare_hosts(a, b, &query.ctx).then_with(by_name),
                None => by_name(),
            };
            if req.descending { order.reverse() } else { order }
        });
        let total = hosts.len();
        let now = query.ctx.now_unix_ms;
        let page: Vec<pb::HostSummary> = hosts
            .iter()
            .skip(offset)
            .take(page_size)
            .map(|h| {
                let mut summary = self.summary(h, now);
                summary.columns = query.columns(h);
                summary
            })
            .collect();
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
