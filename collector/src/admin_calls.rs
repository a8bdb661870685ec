//! The admin calls without their transport: what `census` (gRPC,
//! `admin_api.rs`) and the HTTP JSON API (`http_api/`) both ask.
//!
//! Each call takes the authenticated `Caller` and a `census.v1` request
//! message, states the role it needs with `Caller::require` as its first
//! line, and returns the response message or an `Error` that each
//! transport maps to its own status (`error.rs`). A bearer token becomes a
//! `Caller` in one place, `caller_for_authorization`, for both transports.
//!
//! Store and alert-service work runs on blocking threads: sled flushes and
//! the alert service's lock (held by an evaluation while it commits) never
//! stall the async threads.

use std::sync::Arc;

use census_proto::v1 as pb;

use crate::alert::AlertState;
use crate::alert::book::{Alert, Matcher, Silence};
use crate::alert::rules::RuleSet;
use crate::alerting::Alerting;
use crate::clock::now_ms;
use crate::config::AgentPolicy;
use crate::error::{Error, Result};
use crate::filter::{Context as FilterContext, FieldRef, Filter};
use crate::metrics::{self, Resolution};
use crate::notify::outbox::DeliveryState;
use crate::secrets::{Role, Secret};
use crate::store::{AgentRecord, HostView, Store};
use crate::wire;

/// Who is calling: the token's public id, name and role, and where from
/// (for the audit log).
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    /// The caller's address as the transport saw it; empty when unknown.
    pub peer: String,
    /// "grpc" or "http".
    pub api: &'static str,
}

impl Caller {
    /// Refuses the call unless the caller's role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<()> {
        if self.role < needed {
            return Err(Error::PermissionDenied(format!(
                "this call needs the {} role; token {} has {}",
                needed.as_str(),
                self.token_id,
                self.role.as_str()
            )));
        }
        Ok(())
    }
}

/// Resolves the value of an `authorization` header (gRPC metadata or HTTP
/// header, `None` when absent) to a `Caller`: `Bearer <token>` naming a
/// token that exists and is not revoked. A quick keyed read, fine on an
/// async thread (as tonic interceptors are). `peer` and `api` say where the
/// call came from, for the audit log.
pub fn caller_for_authorization(
    store: &dyn Store,
    header: Option<&[u8]>,
    peer: Option<std::net::SocketAddr>,
    api: &'static str,
) -> Result<Caller> {
    let header = header.ok_or_else(|| {
        Error::Unauthenticated("missing admin token: send `authorization: Bearer <token>` (census: --token or CENSUS_TOKEN)".into())
    })?;
    let value = std::str::from_utf8(header).map_err(|_| Error::Unauthenticated("authorization header is not valid UTF-8".into()))?;
    let token =
        value.strip_prefix("Bearer ").ok_or_else(|| Error::Unauthenticated("authorization header must be `Bearer <token>`".into()))?;
    let token = Secret::new(token.trim());
    let record = store
        .admin_token(&token.hash())?
        .filter(|r| !r.revoked)
        .ok_or_else(|| Error::Unauthenticated("invalid or revoked admin token".into()))?;
    let role =
        Role::parse(&record.role).ok_or_else(|| Error::Internal(format!("token {} has an unknown role {:?}", record.id, record.role)))?;
    Ok(Caller { token_id: record.id, name: record.name, role, peer: peer.map(|p| p.to_string()).unwrap_or_default(), api })
}

/// The admin calls, shared by the gRPC and HTTP transports.
pub struct AdminCalls {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) policy: AgentPolicy,
    pub(crate) metrics: crate::config::Metrics,
    pub(crate) alerting: Arc<Alerting>,
    /// Where `Backup` takes its file; unset: no backups served.
    pub(crate) backups: Option<crate::backup_calls::Backups>,
    /// The data directory's free-space reserve; state-changing calls are
    /// refused below it (`disk_space`). Unset: not checked.
    pub(crate) disk: Option<crate::disk_space::DiskGuard>,
}

/// One matching host with its sort field's value, taken once per host
/// rather than twice per comparison, and its rank in listing order (the
/// tie-break, compared without reading the host names again).
struct Keyed<'h> {
    sort: Option<crate::filter::Value<'h>>,
    rank: usize,
    host: &'h Arc<HostView>,
}

/// `hosts` must be in listing order (as `host_query::with_matching` gives them).
fn keyed<'h>(query: &HostQuery, hosts: &[&'h Arc<HostView>]) -> Vec<Keyed<'h>> {
    hosts
        .iter()
        .enumerate()
        .map(|(rank, &host)| Keyed { sort: query.sort.as_ref().and_then(|f| f.value(host, &query.ctx)), rank, host })
        .collect()
}

/// A listing's order: its sort field, then the listing order (host name
/// ignoring case, then agent id), so the order is total and a page is the
/// one a full sort gives.
fn host_order(descending: bool) -> impl Fn(&Keyed<'_>, &Keyed<'_>) -> std::cmp::Ordering {
    move |a, b| {
        let order = crate::filter::sort_cmp(a.sort.as_ref(), b.sort.as_ref()).then_with(|| a.rank.cmp(&b.rank));
        if descending { order.reverse() } else { order }
    }
}

/// The hosts at `offset..offset + page_size` of the listing's order among
/// `matching` (in listing order), and whether more follow. Only the hosts
/// up to the end of the page need their order: select them (linear), then
/// sort those. The order is total, so the page is the one a full sort gives.
fn sorted_page(
    query: &HostQuery,
    matching: &[&Arc<HostView>],
    descending: bool,
    offset: usize,
    page_size: usize,
) -> (Vec<Arc<HostView>>, bool) {
    let mut hosts = keyed(query, matching);
    let order = host_order(descending);
    let total = hosts.len();
    let end = offset.saturating_add(page_size).min(total);
    if end > 0 && end < total {
        hosts.select_nth_unstable_by(end - 1, &order);
        hosts.truncate(end);
    }
    hosts.sort_by(&order);
    (hosts.iter().skip(offset).take(page_size).map(|k| Arc::clone(k.host)).collect(), end < total)
}

/// Most hosts in one ListSoftware answer (the default too): about 600 KB,
/// well under gRPC's 4 MiB default message limit.
const MAX_SOFTWARE_PAGE: usize = 10_000;

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
    fn parse(req: &pb::ListHostsRequest, ctx: FilterContext) -> Result<HostQuery> {
        // The caret rendering points at the column that is wrong.
        let invalid =
            |what: &str, input: &str, e: crate::filter::ParseError| Error::InvalidArgument(format!("{what}:\n{}", e.render(input)));
        let filter = match req.filter.trim() {
            "" => None,
            text => Some(Filter::parse(&req.filter).map_err(|e| invalid("filter", text, e))?),
        };
        let sort = match req.sort.trim() {
            "" => None,
            text => Some(FieldRef::parse(text).map_err(|e| invalid("sort", text, e))?),
        };
        if req.columns.len() > MAX_COLUMNS {
            return Err(Error::InvalidArgument(format!("at most {MAX_COLUMNS} columns")));
        }
        let columns = req
            .columns
            .iter()
            .map(|c| FieldRef::parse(c.trim()).map(|f| (c.trim().to_string(), f)).map_err(|e| invalid("column", c.trim(), e)))
            .collect::<Result<_>>()?;
        Ok(HostQuery { filter, sort, columns, ctx })
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

impl AdminCalls {
    pub fn new(store: Arc<dyn Store>, policy: AgentPolicy, metrics: crate::config::Metrics, alerting: Arc<Alerting>) -> AdminCalls {
        AdminCalls { store, policy, metrics, alerting, backups: None, disk: None }
    }

    /// Serves `Backup` from this data directory: its `pki/` goes into
    /// backups, and `backups/` holds the one being sent.
    pub fn with_data_dir(mut self, data_dir: std::path::PathBuf) -> AdminCalls {
        self.backups = Some(crate::backup_calls::Backups::new(data_dir));
        self
    }

    /// Test fixture: the calls over `store` with the default policy,
    /// metrics and shipped alert rules, no sinks.
    #[cfg(test)]
    pub(crate) fn over_store(store: Arc<dyn Store>) -> AdminCalls {
        let config = crate::alerting::AlertingConfig {
            rules_file: None,
            default_rules: true,
            heartbeat_interval: std::time::Duration::from_secs(30),
            sinks: Vec::new(),
            routes: Vec::new(),
        };
        let alerting = Arc::new(Alerting::open(Arc::clone(&store), config).expect("alert service"));
        AdminCalls::new(store, AgentPolicy::default(), crate::config::Metrics::default(), alerting)
    }

    /// Refuses state-changing calls while the data directory is short of
    /// its reserve (`disk_space`).
    pub fn with_disk_guard(mut self, guard: crate::disk_space::DiskGuard) -> AdminCalls {
        self.disk = Some(guard);
        self
    }

    /// Online: seen within `offline_after_missed_heartbeats` heartbeat intervals.
    pub fn online(&self, agent: &AgentRecord, now_ms: i64) -> bool {
        self.filter_context(now_ms).online(agent.last_seen_unix_ms)
    }

    /// What filters and "online" need: the time and the offline window.
    fn filter_context(&self, now_unix_ms: i64) -> FilterContext {
        let window = self.policy.heartbeat_interval.saturating_mul(self.policy.offline_after_missed_heartbeats);
        FilterContext { now_unix_ms, offline_after_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX) }
    }

    fn summary(&self, host: &HostView, now_ms: i64) -> pb::HostSummary {
        wire::host_summary(host, self.online(&host.agent, now_ms))
    }

    pub(crate) async fn with_store<T: Send + 'static>(&self, f: impl FnOnce(&dyn Store) -> Result<T> + Send + 'static) -> Result<T> {
        blocking("store", &self.store, f).await
    }

    /// The alert service takes a lock that an evaluation holds while it
    /// commits (a sled flush), and its changes are durable before they
    /// return: never on the async threads either.
    pub(crate) async fn with_alerting<T: Send + 'static>(&self, f: impl FnOnce(&Alerting) -> Result<T> + Send + 'static) -> Result<T> {
        blocking("alert service", &self.alerting, f).await
    }

    pub async fn acknowledge_alert(&self, caller: &Caller, req: pb::AcknowledgeAlertRequest) -> Result<pb::AcknowledgeAlertResponse> {
        let target = req.id.clone();
        self.audited(caller, Role::Operator, "alert.ack", target, self.acknowledge_alert_unaudited(caller, req), |_| String::new()).await
    }

    pub async fn add_silence(&self, caller: &Caller, req: pb::AddSilenceRequest) -> Result<pb::AddSilenceResponse> {
        let target = req.matchers.join(" ");
        self.audited(caller, Role::Operator, "silence.add", target, self.add_silence_unaudited(caller, req), |r| {
            r.silence.as_ref().map(|s| format!("silence {}", s.id)).unwrap_or_default()
        })
        .await
    }

    pub async fn expire_silence(&self, caller: &Caller, req: pb::ExpireSilenceRequest) -> Result<pb::ExpireSilenceResponse> {
        let target = req.id.clone();
        self.audited(caller, Role::Operator, "silence.expire", target, self.expire_silence_unaudited(caller, req), |_| String::new()).await
    }

    pub async fn put_rule(&self, caller: &Caller, req: pb::PutRuleRequest) -> Result<pb::PutRuleResponse> {
        let target = String::new();
        self.audited(caller, Role::Admin, "rule.put", target, self.put_rule_unaudited(caller, req), |r| {
            r.rule.as_ref().map(|r| format!("rule {}", r.name)).unwrap_or_default()
        })
        .await
    }

    pub async fn delete_rule(&self, caller: &Caller, req: pb::DeleteRuleRequest) -> Result<pb::DeleteRuleResponse> {
        let target = req.name.clone();
        self.audited(caller, Role::Admin, "rule.delete", target, self.delete_rule_unaudited(caller, req), |_| String::new()).await
    }

    pub async fn revoke_agent(&self, caller: &Caller, req: pb::RevokeAgentRequest) -> Result<pb::RevokeAgentResponse> {
        let target = req.agent_id.clone();
        self.audited(caller, Role::Admin, "agent.revoke", target, self.revoke_agent_unaudited(caller, req), |r| {
            if r.already_revoked { "already revoked".into() } else { String::new() }
        })
        .await
    }

    pub async fn retry_outbox(&self, caller: &Caller, req: pb::RetryOutboxRequest) -> Result<pb::RetryOutboxResponse> {
        let target = req.id.to_string();
        self.audited(caller, Role::Operator, "outbox.retry", target, self.retry_outbox_unaudited(caller, req), |_| String::new()).await
    }

    pub async fn list_hosts(&self, caller: &Caller, req: pb::ListHostsRequest) -> Result<pb::ListHostsResponse> {
        caller.require(Role::Viewer)?;
        let page_size = match req.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let offset: usize = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse().map_err(|_| Error::InvalidArgument("page_token is not one this server issued".into()))?
        };
        let query = Arc::new(HostQuery::parse(&req, self.filter_context(now_ms()))?);
        let now = query.ctx.now_unix_ms;
        let end = offset.saturating_add(page_size);
        let (mut page_hosts, more) = if query.sort.is_none() {
            // Listing order is the summaries' own order: read up to the end
            // of the page, and one more to know whether a next page exists.
            let (q, descending) = (Arc::clone(&query), req.descending);
            let leading = self
                .with_store(move |s| crate::host_query::leading(s, q.filter.as_ref(), &q.ctx, descending, end.saturating_add(1)))
                .await?;
            let more = leading.len() > end;
            (leading.into_iter().skip(offset).take(page_size).collect::<Vec<_>>(), more)
        } else {
            let (q, descending) = (Arc::clone(&query), req.descending);
            self.with_store(move |s| {
                crate::host_query::with_matching(s, q.filter.as_ref(), q.sort.as_ref(), &q.ctx, |matching| {
                    sorted_page(&q, matching, descending, offset, page_size)
                })
            })
            .await?
        };
        if query.columns.iter().any(|(_, f)| crate::host_query::reads_packages(f)) {
            let ids: Vec<String> = page_hosts.iter().map(|h| h.agent.agent_id.clone()).collect();
            let full = self.with_store(move |s| ids.iter().map(|id| s.host(id)).collect::<Result<Vec<_>>>()).await?;
            for (slot, host) in page_hosts.iter_mut().zip(full) {
                if let Some(host) = host {
                    *slot = Arc::new(host);
                }
            }
        }
        let page: Vec<pb::HostSummary> = page_hosts
            .iter()
            .map(|h| {
                let mut summary = self.summary(h, now);
                summary.columns = query.columns(h);
                summary
            })
            .collect();
        let next_page_token = if more { (offset + page.len()).to_string() } else { String::new() };
        Ok(pb::ListHostsResponse { hosts: page, next_page_token })
    }

    /// Every host a listing's filter matches, in the listing's order, and
    /// their count (the export: every row, no page).
    pub(crate) async fn filtered_hosts(&self, req: &pb::ListHostsRequest) -> Result<(Vec<Arc<HostView>>, usize)> {
        let query = Arc::new(HostQuery::parse(req, self.filter_context(now_ms()))?);
        let descending = req.descending;
        let hosts: Vec<Arc<HostView>> = self
            .with_store(move |s| {
                crate::host_query::with_matching(s, query.filter.as_ref(), query.sort.as_ref(), &query.ctx, |matching| {
                    let mut hosts = keyed(&query, matching);
                    hosts.sort_by(host_order(descending));
                    hosts.into_iter().map(|k| Arc::clone(k.host)).collect()
                })
            })
            .await?;
        let total = hosts.len();
        Ok((hosts, total))
    }

    pub async fn get_fleet_summary(&self, caller: &Caller, req: pb::GetFleetSummaryRequest) -> Result<pb::GetFleetSummaryResponse> {
        caller.require(Role::Viewer)?;
        // Over the host summaries (no package lists), as an unfiltered listing.
        let ctx = self.filter_context(now_ms());
        let (vendor, model) = (FieldRef::parse("hardware.vendor"), FieldRef::parse("hardware.model"));
        let (vendor, model) = (vendor.map_err(|e| Error::Internal(e.to_string()))?, model.map_err(|e| Error::Internal(e.to_string()))?);
        self.with_store(move |s| {
            let hosts = crate::host_query::matching(s, None, None, &ctx)?;
            let text = |field: &FieldRef, h: &HostView| field.value(h, &ctx).map(|v| v.to_string()).unwrap_or_default();
            let lines = hosts.iter().map(|h| crate::fleet_summary::HostLine {
                os: wire::os_name(h),
                hardware_model: crate::fleet_summary::hardware_model(&text(&vendor, h), &text(&model, h)),
                online: ctx.online(h.agent.last_seen_unix_ms),
                revoked: h.agent.revoked,
            });
            Ok(crate::fleet_summary::summarize(lines, req.top))
        })
        .await
    }

    pub async fn get_host(&self, caller: &Caller, req: pb::GetHostRequest) -> Result<pb::GetHostResponse> {
        caller.require(Role::Viewer)?;
        let key = req.id_or_hostname;
        if key.is_empty() || key.len() > 255 {
            return Err(Error::InvalidArgument("id_or_hostname must be 1 to 255 bytes".into()));
        }
        let host: HostView = self.with_store(move |s| resolve_host(s, &key)).await?;
        Ok(pb::GetHostResponse {
            summary: Some(self.summary(&host, now_ms())),
            inventory: host.inventory.and_then(|r| Arc::unwrap_or_clone(r).inventory),
        })
    }

    pub async fn list_software(&self, caller: &Caller, req: pb::ListSoftwareRequest) -> Result<pb::ListSoftwareResponse> {
        caller.require(Role::Viewer)?;
        if req.name.is_empty() || req.name.len() > 255 || req.name.contains('\0') {
            return Err(Error::InvalidArgument("name must be 1 to 255 bytes without NUL".into()));
        }
        let page_size = match req.page_size as usize {
            0 => MAX_SOFTWARE_PAGE,
            n => n.min(MAX_SOFTWARE_PAGE),
        };
        let offset: usize = if req.page_token.is_empty() {
            0
        } else {
            req.page_token.parse().map_err(|_| Error::InvalidArgument("page_token is not one this server issued".into()))?
        };
        let name = req.name.clone();
        // Grouped by version and ordered by host name in the store, once
        // per change of the package's installs: a page only slices it.
        let listing = self.with_store(move |s| s.software_listing(&name)).await?;
        // The page: hosts [offset, offset + page_size) of the versions'
        // host lists laid end to end; every version keeps its count, and
        // only the page's hosts are built.
        let end = offset.saturating_add(page_size);
        let mut before = 0usize;
        let versions: Vec<pb::SoftwareVersion> = listing
            .iter()
            .filter(|g| req.version.is_empty() || g.version == req.version)
            .map(|g| {
                let window = offset.saturating_sub(before)..end.saturating_sub(before);
                before += g.hosts.len();
                wire::software_version(g, window)
            })
            .collect();
        let next_page_token = if end < before { end.to_string() } else { String::new() };
        Ok(pb::ListSoftwareResponse { name: req.name, versions, next_page_token })
    }

    pub async fn list_changes(&self, caller: &Caller, req: pb::ListChangesRequest) -> Result<pb::ListChangesResponse> {
        caller.require(Role::Viewer)?;
        if req.host.len() > 255 {
            return Err(Error::InvalidArgument("host must be at most 255 bytes".into()));
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
        Ok(pb::ListChangesResponse { changes })
    }

    pub async fn get_metrics(&self, caller: &Caller, req: pb::GetMetricsRequest) -> Result<pb::GetMetricsResponse> {
        caller.require(Role::Viewer)?;
        if req.host.is_empty() || req.host.len() > 255 || req.metric.is_empty() || req.metric.len() > 1024 || req.metric.contains('\0') {
            return Err(Error::InvalidArgument("host (1 to 255 bytes) and metric (1 to 1024 bytes, no NUL) are required".into()));
        }
        let now = now_ms();
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let resolution = match req.resolution.as_str() {
            "" => Resolution::for_age(
                now.saturating_sub(req.since_unix_ms),
                ms(self.metrics.raw_retention),
                ms(self.metrics.five_minute_retention),
            ),
            r => Resolution::parse(r).ok_or_else(|| Error::InvalidArgument(format!("resolution {r:?} is not one of raw, 5m, 1h")))?,
        };
        self.with_store(move |s| {
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
        .await
    }

    pub async fn list_alerts(&self, caller: &Caller, req: pb::ListAlertsRequest) -> Result<pb::ListAlertsResponse> {
        caller.require(Role::Viewer)?;
        let state = match req.state.as_str() {
            "" => None,
            s => Some(
                AlertState::parse(s)
                    .ok_or_else(|| Error::InvalidArgument(format!("state {s:?} is not one of pending, firing, resolved")))?,
            ),
        };
        let mut alerts = self.with_alerting(|a| Ok(a.alerts())).await?;
        alerts.retain(|a| state.is_none_or(|s| a.state == s));
        sort_alerts(&mut alerts);
        Ok(pb::ListAlertsResponse { alerts: alerts.iter().map(wire::alert_info).collect() })
    }

    pub async fn get_alert(&self, caller: &Caller, req: pb::GetAlertRequest) -> Result<pb::GetAlertResponse> {
        caller.require(Role::Viewer)?;
        let id = alert_id(req.id)?;
        let (alert, tickets) = self
            .with_alerting(move |a| {
                let alert = a.alert(&id)?;
                let tickets = a.tickets_of(&alert.fingerprint)?;
                Ok((alert, tickets))
            })
            .await?;
        Ok(pb::GetAlertResponse {
            alert: Some(wire::alert_info(&alert)),
            tickets: tickets.into_iter().map(|(sink, ticket)| pb::AlertTicket { sink, ticket }).collect(),
        })
    }

    async fn acknowledge_alert_unaudited(&self, caller: &Caller, req: pb::AcknowledgeAlertRequest) -> Result<pb::AcknowledgeAlertResponse> {
        caller.require(Role::Operator)?;
        let id = alert_id(req.id)?;
        let comment = free_text("comment", req.comment)?;
        let by = caller.token_id.clone();
        let alert = self.with_alerting(move |a| a.acknowledge(&id, &by, &comment, now_ms())).await?;
        tracing::info!(alert = %alert.fingerprint, rule = %alert.rule, host = %alert.hostname, by = %caller.token_id, "alert acknowledged");
        Ok(pb::AcknowledgeAlertResponse { alert: Some(wire::alert_info(&alert)) })
    }

    pub async fn list_silences(&self, caller: &Caller, _req: pb::ListSilencesRequest) -> Result<pb::ListSilencesResponse> {
        caller.require(Role::Viewer)?;
        let mut silences = self.with_alerting(|a| Ok(a.silences())).await?;
        let now = now_ms();
        sort_silences(&mut silences, now);
        Ok(pb::ListSilencesResponse { silences: silences.iter().map(|s| wire::silence_info(s, now)).collect() })
    }

    async fn add_silence_unaudited(&self, caller: &Caller, req: pb::AddSilenceRequest) -> Result<pb::AddSilenceResponse> {
        caller.require(Role::Operator)?;
        let now = now_ms();
        let matchers = silence_matchers(&req.matchers)?;
        let ends_at = silence_end(req.duration_ms, req.ends_at_unix_ms, now)?;
        let comment = free_text("comment", req.comment)?;
        let by = caller.token_id.clone();
        let silence = self.with_alerting(move |a| a.add_silence(matchers, now, ends_at, &by, &comment)).await?;
        let matchers: Vec<String> = silence.matchers.iter().map(ToString::to_string).collect();
        tracing::info!(silence = %silence.id, matchers = %matchers.join(" "), by = %silence.created_by, "silence added");
        Ok(pb::AddSilenceResponse { silence: Some(wire::silence_info(&silence, now)) })
    }

    async fn expire_silence_unaudited(&self, caller: &Caller, req: pb::ExpireSilenceRequest) -> Result<pb::ExpireSilenceResponse> {
        caller.require(Role::Operator)?;
        let id = req.id;
        if id.is_empty() || id.len() > 64 {
            return Err(Error::InvalidArgument("silence id must be 1 to 64 bytes (`census silence list` shows them)".into()));
        }
        let now = now_ms();
        let silence = self.with_alerting(move |a| a.expire_silence(&id, now)).await?;
        tracing::info!(silence = %silence.id, by = %caller.token_id, "silence expired");
        Ok(pb::ExpireSilenceResponse { silence: Some(wire::silence_info(&silence, now)) })
    }

    pub async fn list_rules(&self, caller: &Caller, _req: pb::ListRulesRequest) -> Result<pb::ListRulesResponse> {
        caller.require(Role::Viewer)?;
        let (rules, rule_file_error) = self.with_alerting(|a| Ok(a.rules())).await?;
        Ok(pb::ListRulesResponse { rules: rules.iter().map(wire::rule_info).collect(), rule_file_error })
    }

    async fn put_rule_unaudited(&self, caller: &Caller, req: pb::PutRuleRequest) -> Result<pb::PutRuleResponse> {
        caller.require(Role::Admin)?;
        let text = rule_text(req.toml)?;
        let mut set = RuleSet::from_toml(&text)?;
        let spec = match set.rules.len() {
            1 => set.rules.remove(0).spec,
            n => {
                return Err(Error::InvalidArgument(format!(
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
        Ok(pb::PutRuleResponse { rule: Some(wire::rule_info(&rule)) })
    }

    async fn delete_rule_unaudited(&self, caller: &Caller, req: pb::DeleteRuleRequest) -> Result<pb::DeleteRuleResponse> {
        caller.require(Role::Admin)?;
        let name = req.name;
        if name.is_empty() || name.len() > 128 {
            return Err(Error::InvalidArgument("rule name must be 1 to 128 bytes".into()));
        }
        let deleted = name.clone();
        self.with_alerting(move |a| a.delete_rule(&name)).await?;
        tracing::info!(rule = %deleted, by = %caller.token_id, "rule deleted through the admin API");
        Ok(pb::DeleteRuleResponse {})
    }

    pub async fn test_rules(&self, caller: &Caller, req: pb::TestRulesRequest) -> Result<pb::TestRulesResponse> {
        caller.require(Role::Viewer)?;
        let text = rule_text(req.toml)?;
        let mut alerts = self.with_alerting(move |a| a.test_rules(&text, now_ms())).await?;
        sort_alerts(&mut alerts);
        Ok(pb::TestRulesResponse { alerts: alerts.iter().map(wire::alert_info).collect() })
    }

    pub async fn list_outbox(&self, caller: &Caller, req: pb::ListOutboxRequest) -> Result<pb::ListOutboxResponse> {
        caller.require(Role::Viewer)?;
        let state = match req.state.as_str() {
            "" => None,
            s => Some(
                DeliveryState::parse(s)
                    .ok_or_else(|| Error::InvalidArgument(format!("state {s:?} is not one of pending, delivered, dead")))?,
            ),
        };
        if req.sink.len() > 255 || req.sink.contains('\0') {
            return Err(Error::InvalidArgument("sink must be at most 255 bytes without NUL".into()));
        }
        let limit = match req.limit as usize {
            0 => DEFAULT_OUTBOX_LIMIT,
            n => n.min(MAX_PAGE),
        };
        let sink = (!req.sink.is_empty()).then_some(req.sink);
        let entries = self.with_store(move |s| s.outbox_entries(state, sink.as_deref(), limit)).await?;
        Ok(pb::ListOutboxResponse { entries: entries.iter().map(wire::outbox_entry_info).collect() })
    }

    async fn revoke_agent_unaudited(&self, caller: &Caller, req: pb::RevokeAgentRequest) -> Result<pb::RevokeAgentResponse> {
        caller.require(Role::Admin)?;
        let agent_id = req.agent_id.to_ascii_lowercase();
        if agent_id.len() != 32 || !agent_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(
                "agent_id must be the 32 hex characters of an agent id (`census hosts` shows them); a hostname is not accepted".into(),
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
        Ok(pb::RevokeAgentResponse { host: Some(self.summary(&host, now_ms())), already_revoked: already })
    }

    async fn retry_outbox_unaudited(&self, caller: &Caller, req: pb::RetryOutboxRequest) -> Result<pb::RetryOutboxResponse> {
        caller.require(Role::Operator)?;
        let id = req.id;
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
        Ok(pb::RetryOutboxResponse { entry: Some(wire::outbox_entry_info(&entry)) })
    }
}

/// Runs `f` on `target` on a blocking thread.
pub(crate) async fn blocking<S: ?Sized + Send + Sync + 'static, T: Send + 'static>(
    what: &'static str,
    target: &Arc<S>,
    f: impl FnOnce(&S) -> Result<T> + Send + 'static,
) -> Result<T> {
    let target = Arc::clone(target);
    tokio::task::spawn_blocking(move || f(target.as_ref())).await.map_err(|e| Error::Internal(format!("{what} task failed: {e}")))?
}

/// A host by agent id, or by hostname when that names exactly one host.
fn resolve_host(s: &dyn Store, key: &str) -> Result<HostView> {
    if let Some(host) = s.host(key)? {
        return Ok(host);
    }
    let named = s.agents_named(key)?;
    match named.as_slice() {
        [] => Err(Error::NotFound(format!("no host with agent id or hostname {key:?}"))),
        [one] => s.host(&one.agent_id)?.ok_or_else(|| Error::NotFound(format!("host {key:?} vanished while reading"))),
        many => Err(Error::FailedPrecondition(format!(
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
fn alert_id(id: String) -> Result<String> {
    if id.is_empty() || id.len() > 64 {
        return Err(Error::InvalidArgument("alert id must be 6 to 64 characters of its fingerprint (`census alerts` shows 12)".into()));
    }
    Ok(id)
}

fn free_text(field: &str, text: String) -> Result<String> {
    if text.len() > MAX_COMMENT_BYTES || text.contains('\0') {
        return Err(Error::InvalidArgument(format!("{field} must be at most {MAX_COMMENT_BYTES} bytes without NUL")));
    }
    Ok(text)
}

fn rule_text(text: String) -> Result<String> {
    if text.trim().is_empty() {
        return Err(Error::InvalidArgument("the rule text is empty; give [[rule]] tables in TOML".into()));
    }
    if text.len() > MAX_RULE_TEXT_BYTES {
        return Err(Error::InvalidArgument(format!("the rule text is larger than {MAX_RULE_TEXT_BYTES} bytes")));
    }
    Ok(text)
}

/// Parses `label=value`, `label!=value`, `label=~glob`, `label!~glob`.
fn silence_matchers(texts: &[String]) -> Result<Vec<Matcher>> {
    if texts.is_empty() || texts.len() > MAX_SILENCE_MATCHERS {
        return Err(Error::InvalidArgument(format!(
            "a silence needs 1 to {MAX_SILENCE_MATCHERS} matchers such as alertname=disk-almost-full or host=~web-*"
        )));
    }
    texts
        .iter()
        .map(|t| {
            if t.len() > 1024 {
                return Err(Error::InvalidArgument("a matcher must be at most 1024 bytes".into()));
            }
            Matcher::parse(t).map_err(|e| Error::InvalidArgument(format!("matcher {e}")))
        })
        .collect()
}

/// When a silence added at `now` ends: after `duration_ms`, or at
/// `ends_at_unix_ms`; exactly one of the two is given.
fn silence_end(duration_ms: i64, ends_at_unix_ms: i64, now_unix_ms: i64) -> Result<i64> {
    match (duration_ms, ends_at_unix_ms) {
        (d, 0) if d > 0 => Ok(now_unix_ms.saturating_add(d)),
        (0, end) if end > now_unix_ms => Ok(end),
        (0, end) if end > 0 => {
            Err(Error::InvalidArgument(format!("the silence would end at {}, which is in the past", crate::clock::rfc3339_seconds(end))))
        }
        _ => Err(Error::InvalidArgument("give exactly one of a positive duration_ms and ends_at_unix_ms".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_ends_after_its_duration_or_at_its_end_never_both() {
        assert_eq!(silence_end(60_000, 0, 1_000).expect("duration"), 61_000);
        assert_eq!(silence_end(0, 5_000, 1_000).expect("end"), 5_000);
        assert!(silence_end(0, 0, 1_000).is_err(), "neither");
        assert!(silence_end(60_000, 5_000, 1_000).is_err(), "both");
        assert!(silence_end(-5, 0, 1_000).is_err(), "negative");
        let past = silence_end(0, 500, 1_000).expect_err("past");
        assert!(past.to_string().contains("1970-01-01T00:00:00Z, which is in the past"), "{past}");
        assert_eq!(silence_end(i64::MAX, 0, 1_000).expect("saturates"), i64::MAX);
    }

    #[test]
    fn a_role_admits_itself_and_the_roles_below() {
        let caller = |role| Caller { token_id: "tok".into(), name: "test".into(), role, peer: String::new(), api: "grpc" };
        assert!(caller(Role::Operator).require(Role::Viewer).is_ok());
        assert!(caller(Role::Operator).require(Role::Operator).is_ok());
        let refused = caller(Role::Operator).require(Role::Admin).expect_err("too low");
        assert!(matches!(refused, Error::PermissionDenied(_)), "{refused:?}");
        assert_eq!(refused.to_string(), "this call needs the admin role; token tok has operator");
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
