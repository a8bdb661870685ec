//! The route table and what each route does: authenticate, read the path,
//! query and body into the `census.v1` request message, hand it to the
//! same `AdminCalls` call the gRPC API uses, and answer the response
//! message as JSON.
//!
//! `ROUTES` is the one list of what the listener serves: the router is
//! built from it and the OpenAPI document is tested against it.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use census_proto::v1 as pb;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::HttpState;
use super::error::ApiError;
use crate::admin_calls::caller_for_authorization;
use crate::secrets::Role;

/// Largest request body, bytes (a rule file fits; anything bigger is a mistake).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// What a route does: one `AdminCalls` call, the document, or /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListHosts,
    GetHost,
    GetFleetSummary,
    ListSoftware,
    ListChanges,
    GetMetrics,
    ListAlerts,
    GetAlert,
    AcknowledgeAlert,
    ListSilences,
    AddSilence,
    ExpireSilence,
    ListRules,
    PutRule,
    DeleteRule,
    TestRules,
    ListOutbox,
    RetryOutbox,
    RevokeAgent,
    Backup,
    ListEnrollmentSecrets,
    CreateEnrollmentSecret,
    ExpireEnrollmentSecret,
    ListTokens,
    CreateToken,
    RevokeToken,
    ListAudit,
    Export,
    OpenApi,
    Metrics,
    WhoAmI,
}

pub struct Route {
    pub verb: Verb,
    /// axum's path syntax, which is also OpenAPI's: `/api/v1/hosts/{host}`.
    pub path: &'static str,
    pub endpoint: Endpoint,
}

const fn route(verb: Verb, path: &'static str, endpoint: Endpoint) -> Route {
    Route { verb, path, endpoint }
}

/// Every route the HTTP listener serves.
pub const ROUTES: &[Route] = &[
    route(Verb::Get, "/api/v1/hosts", Endpoint::ListHosts),
    route(Verb::Get, "/api/v1/hosts/{host}", Endpoint::GetHost),
    route(Verb::Get, "/api/v1/fleet", Endpoint::GetFleetSummary),
    route(Verb::Get, "/api/v1/hosts/{host}/metrics", Endpoint::GetMetrics),
    route(Verb::Get, "/api/v1/software/{name}", Endpoint::ListSoftware),
    route(Verb::Get, "/api/v1/changes", Endpoint::ListChanges),
    route(Verb::Get, "/api/v1/alerts", Endpoint::ListAlerts),
    route(Verb::Get, "/api/v1/alerts/{id}", Endpoint::GetAlert),
    route(Verb::Post, "/api/v1/alerts/{id}/ack", Endpoint::AcknowledgeAlert),
    route(Verb::Get, "/api/v1/silences", Endpoint::ListSilences),
    route(Verb::Post, "/api/v1/silences", Endpoint::AddSilence),
    route(Verb::Post, "/api/v1/silences/{id}/expire", Endpoint::ExpireSilence),
    route(Verb::Get, "/api/v1/rules", Endpoint::ListRules),
    route(Verb::Post, "/api/v1/rules", Endpoint::PutRule),
    route(Verb::Delete, "/api/v1/rules/{name}", Endpoint::DeleteRule),
    route(Verb::Post, "/api/v1/test-rules", Endpoint::TestRules),
    route(Verb::Get, "/api/v1/outbox", Endpoint::ListOutbox),
    route(Verb::Post, "/api/v1/outbox/{id}/retry", Endpoint::RetryOutbox),
    route(Verb::Post, "/api/v1/agents/{id}/revoke", Endpoint::RevokeAgent),
    route(Verb::Get, "/api/v1/backup", Endpoint::Backup),
    route(Verb::Get, "/api/v1/enrollment-secrets", Endpoint::ListEnrollmentSecrets),
    route(Verb::Post, "/api/v1/enrollment-secrets", Endpoint::CreateEnrollmentSecret),
    route(Verb::Post, "/api/v1/enrollment-secrets/{id}/expire", Endpoint::ExpireEnrollmentSecret),
    route(Verb::Get, "/api/v1/tokens", Endpoint::ListTokens),
    route(Verb::Post, "/api/v1/tokens", Endpoint::CreateToken),
    route(Verb::Post, "/api/v1/tokens/{id}/revoke", Endpoint::RevokeToken),
    route(Verb::Get, "/api/v1/audit", Endpoint::ListAudit),
    route(Verb::Get, "/api/v1/export", Endpoint::Export),
    route(Verb::Get, "/api/v1/openapi.json", Endpoint::OpenApi),
    route(Verb::Get, "/metrics", Endpoint::Metrics),
    route(Verb::Get, "/api/v1/whoami", Endpoint::WhoAmI),
];

/// The router of `ROUTES`, with JSON answers for unknown paths and methods.
pub fn router(state: Arc<HttpState>) -> Router {
    let mut router = Router::new();
    for r in ROUTES {
        let endpoint = r.endpoint;
        let handler = move |State(state): State<Arc<HttpState>>,
                            params: Result<RawPathParams, RawPathParamsRejection>,
                            request: Request| async move {
            match handle(&state, endpoint, params, request).await {
                Ok(response) => response,
                Err(e) => e.into_response(),
            }
        };
        router = router.route(r.path, on(r.verb.filter(), handler));
    }
    router
        .fallback(|request: Request| async move {
            ApiError::not_found(format!("no such path {}; GET /api/v1/openapi.json lists the API", request.uri().path()))
        })
        .method_not_allowed_fallback(|request: Request| async move {
            let path = request.uri().path().to_string();
            let allowed: Vec<&str> = ROUTES.iter().filter(|r| path_matches(r.path, &path)).map(|r| r.verb.as_str()).collect();
            ApiError::method_not_allowed(format!(
                "{} is not served on {path}; it takes {}",
                request.method(),
                allowed.join(", ").to_uppercase()
            ))
        })
        .with_state(state)
}

/// Whether a concrete path fits a route's template (for error messages).
fn path_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
}

async fn handle(
    state: &HttpState,
    endpoint: Endpoint,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    if endpoint == Endpoint::OpenApi {
        // The document describes the API; it holds nothing about the fleet.
        return Ok(json_response(super::openapi::DOCUMENT.as_bytes().to_vec()));
    }
    // Authenticate before reading anything else, so a caller without a
    // valid token learns nothing but that.
    let authorization = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    let peer = request.extensions().get::<super::Peer>().map(|p| p.0);
    if endpoint == Endpoint::Metrics {
        if state.metrics_require_token {
            caller_for_authorization(state.calls.store.as_ref(), authorization, peer, "http")?.require(Role::Viewer)?;
        }
        Query::parse(request.uri().query(), endpoint)?;
        return metrics_response(state).await;
    }
    let caller = caller_for_authorization(state.calls.store.as_ref(), authorization, peer, "http")?;
    if endpoint == Endpoint::WhoAmI {
        Query::parse(request.uri().query(), endpoint)?;
        return whoami(&caller);
    }
    let path = PathParams::from(params.map_err(|e| ApiError::bad_request(format!("path: {e}")))?);
    let query = Query::parse(request.uri().query(), endpoint)?;
    let body = read_body(request).await?;
    let (calls, c) = (&state.calls, &caller);
    match endpoint {
        Endpoint::ListHosts => {
            let req = pb::ListHostsRequest {
                page_size: query.u32("page_size")?,
                page_token: query.string("page_token"),
                filter: query.string("filter"),
                sort: query.string("sort"),
                descending: query.flag("descending")?,
                columns: query.list("columns"),
            };
            json(calls.list_hosts(c, req).await?)
        }
        Endpoint::GetHost => json(calls.get_host(c, pb::GetHostRequest { id_or_hostname: path.get("host") }).await?),
        Endpoint::GetMetrics => {
            let req = pb::GetMetricsRequest {
                host: path.get("host"),
                metric: query.required("metric")?,
                since_unix_ms: query.i64("since_unix_ms")?,
                resolution: query.string("resolution"),
            };
            json(calls.get_metrics(c, req).await?)
        }
        Endpoint::ListSoftware => {
            let req = pb::ListSoftwareRequest {
                name: path.get("name"),
                version: query.string("version"),
                page_size: query.u32("page_size")?,
                page_token: query.string("page_token"),
            };
            json(calls.list_software(c, req).await?)
        }
        Endpoint::ListChanges => {
            let req = pb::ListChangesRequest { host: query.string("host"), since_unix_ms: query.i64("since_unix_ms")? };
            json(calls.list_changes(c, req).await?)
        }
        Endpoint::ListAlerts => json(calls.list_alerts(c, pb::ListAlertsRequest { state: query.string("state") }).await?),
        Endpoint::GetAlert => json(calls.get_alert(c, pb::GetAlertRequest { id: path.get("id") }).await?),
        Endpoint::AcknowledgeAlert => {
            let b: AcknowledgeBody = parse_body(&body)?;
            json(calls.acknowledge_alert(c, pb::AcknowledgeAlertRequest { id: path.get("id"), comment: b.comment }).await?)
        }
        Endpoint::ListSilences => json(calls.list_silences(c, pb::ListSilencesRequest {}).await?),
        Endpoint::AddSilence => {
            let b: SilenceBody = parse_body(&body)?;
            let req = pb::AddSilenceRequest {
                matchers: b.matchers,
                duration_ms: b.duration_ms,
                ends_at_unix_ms: b.ends_at_unix_ms,
                comment: b.comment,
            };
            json(calls.add_silence(c, req).await?)
        }
        Endpoint::ExpireSilence => json(calls.expire_silence(c, pb::ExpireSilenceRequest { id: path.get("id") }).await?),
        Endpoint::ListRules => json(calls.list_rules(c, pb::ListRulesRequest {}).await?),
        Endpoint::PutRule => {
            let b: RuleTextBody = parse_body(&body)?;
            json(calls.put_rule(c, pb::PutRuleRequest { toml: b.toml }).await?)
        }
        Endpoint::DeleteRule => json(calls.delete_rule(c, pb::DeleteRuleRequest { name: path.get("name") }).await?),
        Endpoint::TestRules => {
            let b: RuleTextBody = parse_body(&body)?;
            json(calls.test_rules(c, pb::TestRulesRequest { toml: b.toml }).await?)
        }
        Endpoint::GetFleetSummary => json(calls.get_fleet_summary(c, pb::GetFleetSummaryRequest { top: query.u32("top")? }).await?),
        Endpoint::ListOutbox => {
            let req = pb::ListOutboxRequest { state: query.string("state"), sink: query.string("sink"), limit: query.u32("limit")? };
            json(calls.list_outbox(c, req).await?)
        }
        Endpoint::RetryOutbox => {
            let id = path.get("id");
            let id = id.parse().map_err(|_| ApiError::bad_request(format!("outbox entry id {id:?} is not a whole number")))?;
            json(calls.retry_outbox(c, pb::RetryOutboxRequest { id }).await?)
        }
        Endpoint::RevokeAgent => json(calls.revoke_agent(c, pb::RevokeAgentRequest { agent_id: path.get("id") }).await?),
        Endpoint::Backup => backup_response(calls, c).await,
        Endpoint::ListEnrollmentSecrets => json(calls.list_enrollment_secrets(c, pb::ListEnrollmentSecretsRequest {}).await?),
        Endpoint::CreateEnrollmentSecret => {
            let b: SecretBody = parse_body(&body)?;
            let req = pb::CreateEnrollmentSecretRequest { name: b.name, expires_at_unix_ms: b.expires_at_unix_ms, max_uses: b.max_uses };
            json(calls.create_enrollment_secret(c, req).await?)
        }
        Endpoint::ExpireEnrollmentSecret => {
            json(calls.expire_enrollment_secret(c, pb::ExpireEnrollmentSecretRequest { id: path.get("id") }).await?)
        }
        Endpoint::ListTokens => json(calls.list_tokens(c, pb::ListTokensRequest {}).await?),
        Endpoint::CreateToken => {
            let b: TokenBody = parse_body(&body)?;
            json(calls.create_token(c, pb::CreateTokenRequest { name: b.name, role: b.role }).await?)
        }
        Endpoint::RevokeToken => json(calls.revoke_token(c, pb::RevokeTokenRequest { id: path.get("id") }).await?),
        Endpoint::ListAudit => {
            let req = pb::ListAuditRequest {
                since_unix_ms: query.i64("since_unix_ms")?,
                actor: query.string("actor"),
                action: query.string("action"),
                limit: query.u32("limit")?,
            };
            json(calls.list_audit(c, req).await?)
        }
        Endpoint::Export => {
            let format = query.string("format");
            let format = crate::export::Format::parse(&format)
                .ok_or_else(|| ApiError::bad_request(format!("query parameter format={format:?} is not csv or json")))?;
            export_response(calls, c, query.string("filter"), format).await
        }
        Endpoint::OpenApi | Endpoint::Metrics | Endpoint::WhoAmI => unreachable!("answered above"),
    }
}

/// The query parameters each endpoint takes; anything else is refused.
pub(crate) fn query_parameter_names(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::ListHosts => &["page_size", "page_token", "filter", "sort", "descending", "columns"],
        Endpoint::GetMetrics => &["metric", "since_unix_ms", "resolution"],
        Endpoint::ListSoftware => &["version", "page_size", "page_token"],
        Endpoint::ListChanges => &["host", "since_unix_ms"],
        Endpoint::ListAlerts => &["state"],
        Endpoint::ListOutbox => &["state", "sink", "limit"],
        Endpoint::GetFleetSummary => &["top"],
        Endpoint::ListAudit => &["since_unix_ms", "actor", "action", "limit"],
        Endpoint::Export => &["format", "filter"],
        _ => &[],
    }
}

/// `POST /api/v1/alerts/{id}/ack`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct AcknowledgeBody {
    comment: String,
}

/// `POST /api/v1/silences`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SilenceBody {
    matchers: Vec<String>,
    duration_ms: i64,
    ends_at_unix_ms: i64,
    comment: String,
}

/// `POST /api/v1/rules` and `POST /api/v1/test-rules`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RuleTextBody {
    toml: String,
}

/// `POST /api/v1/enrollment-secrets`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SecretBody {
    name: String,
    expires_at_unix_ms: i64,
    max_uses: u64,
}

/// `POST /api/v1/tokens`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TokenBody {
    name: String,
    role: String,
}

/// Pieces of a streamed download.
const CHUNK_BYTES: usize = 256 * 1024;

/// `GET /api/v1/backup`: the backup file as it is read, then deleted. The
/// status is 200 only once the backup was taken whole.
async fn backup_response(calls: &Arc<crate::admin_calls::AdminCalls>, caller: &crate::admin_calls::Caller) -> Result<Response, ApiError> {
    use tokio::io::AsyncReadExt;
    let slot = calls.backup_slot(caller).await?;
    let taken = calls.take_backup(caller, slot).await?;
    let length = taken.summary.bytes;
    let mut file = tokio::fs::File::open(&taken.path)
        .await
        .map_err(|e| ApiError::from(crate::error::Error::io("opening the backup to send it", &taken.path, e)))?;
    // Bounded: the file is read only as fast as the client takes it.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let _taken = taken; // deleted once sent, or once the client left
        loop {
            let mut data = Vec::with_capacity(CHUNK_BYTES);
            match (&mut file).take(CHUNK_BYTES as u64).read_to_end(&mut data).await {
                Ok(0) => return,
                Ok(_) => {
                    if tx.send(Ok(data.into())).await.is_err() {
                        tracing::warn!("the backup client went away before the end; backup abandoned");
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let mut response = (StatusCode::OK, axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let name = format!("attachment; filename=\"census-{}.{}\"", crate::clock::now_ms() / 1000, crate::backup::EXTENSION);
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&name).expect("an ASCII file name"));
    Ok(response)
}

/// `GET /api/v1/export`: the asset register as CSV or a JSON array, the
/// bytes `census export` writes, streamed a chunk of rows at a time. A
/// filter error is a 400 before any byte.
async fn export_response(
    calls: &Arc<crate::admin_calls::AdminCalls>,
    caller: &crate::admin_calls::Caller,
    filter: String,
    format: crate::export::Format,
) -> Result<Response, ApiError> {
    let rows = calls.export_assets(caller, pb::ExportAssetsRequest { filter }).await?;
    let (mut writer, head) = crate::export::Writer::start(format);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        // Bounded: rows are rendered only as fast as the client reads.
        if tx.send(Ok(head.into())).await.is_err() {
            return;
        }
        for chunk in rows.chunks(crate::admin_access::EXPORT_CHUNK_ROWS) {
            if tx.send(Ok(writer.rows(chunk).into())).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(writer.finish().into())).await;
    });
    let mut response = (StatusCode::OK, axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    Ok(response)
}

/// A body of at most `MAX_BODY_BYTES`.
async fn read_body(request: Request) -> Result<axum::body::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(request.into_body(), MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(ApiError::payload_too_large(format!("the request body is larger than {MAX_BODY_BYTES} bytes")))
        }
        Err(e) => Err(ApiError::bad_request(format!("reading the request body: {e}"))),
    }
}

/// A JSON object body; an empty body is `{}`. serde_json bounds nesting
/// (128 levels) and the structs refuse unknown fields.
fn parse_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

/// Path parameters by name (percent-decoded by the router).
struct PathParams(Vec<(String, String)>);

impl From<RawPathParams> for PathParams {
    fn from(raw: RawPathParams) -> Self {
        PathParams(raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

impl PathParams {
    fn get(&self, name: &str) -> String {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).expect("the route template names every parameter asked for")
    }
}

/// Query parameters, checked against what the endpoint takes.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>, endpoint: Endpoint) -> Result<Query, ApiError> {
        let allowed = query_parameter_names(endpoint);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&key.as_ref()) {
                let takes = if allowed.is_empty() { "no query parameters".to_string() } else { allowed.join(", ") };
                return Err(ApiError::bad_request(format!("unknown query parameter {key:?}; this endpoint takes {takes}")));
            }
            if pairs.iter().any(|(k, _)| k == key.as_ref()) {
                return Err(ApiError::bad_request(format!("query parameter {key:?} is given twice")));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Query(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value, or "" when absent (the messages' own default).
    fn string(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_string()
    }

    fn required(&self, key: &str) -> Result<String, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(ApiError::bad_request(format!("query parameter {key:?} is required"))),
        }
    }

    fn number<T: std::str::FromStr + Default>(&self, key: &str, what: &str) -> Result<T, ApiError> {
        match self.get(key) {
            None => Ok(T::default()),
            Some(v) => v.parse().map_err(|_| ApiError::bad_request(format!("query parameter {key}={v:?} is not {what}"))),
        }
    }

    /// `true` or `false`; absent: false.
    fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!("query parameter {key}={v:?} is not true or false"))),
        }
    }

    /// A comma-separated list; absent or empty: none. Field names may hold
    /// commas only inside quotes (`fs("/a,b").size`), so commas are split
    /// outside double quotes.
    fn list(&self, key: &str) -> Vec<String> {
        let Some(text) = self.get(key) else { return Vec::new() };
        let (mut items, mut current, mut quoted) = (Vec::new(), String::new(), false);
        for c in text.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    current.push(c);
                }
                ',' if !quoted => items.push(std::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        items.push(current);
        items.into_iter().map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect()
    }

    fn u32(&self, key: &str) -> Result<u32, ApiError> {
        self.number(key, "a whole number from 0 to 4294967295")
    }

    fn i64(&self, key: &str) -> Result<i64, ApiError> {
        self.number(key, "a whole number of milliseconds since 1970 (Unix ms)")
    }
}

/// `GET /api/v1/whoami`: the token's id, name and role, so a client (the
/// web UI) can show who is signed in and offer only what the role may do.
fn whoami(caller: &crate::admin_calls::Caller) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    json(serde_json::json!({ "token_id": caller.token_id, "name": caller.name, "role": caller.role.as_str() }))
}

fn json<T: serde::Serialize>(message: T) -> Result<Response, ApiError> {
    Ok(json_response(super::json_body(&message)))
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn metrics_response(state: &HttpState) -> Result<Response, ApiError> {
    let text = super::scrape(state).await?;
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once_and_every_endpoint_has_a_route() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.verb.as_str(), r.path)), "{} {} twice", r.verb.as_str(), r.path);
        }
        let endpoints: Vec<Endpoint> = ROUTES.iter().map(|r| r.endpoint).collect();
        for e in endpoints.iter() {
            assert_eq!(endpoints.iter().filter(|x| *x == e).count(), 1, "{e:?} has one route");
        }
    }

    #[test]
    fn the_http_api_doc_lists_every_route() {
        let doc = include_str!("../../../docs/http-api.md");
        for r in ROUTES {
            let row = format!("| {} | `{}` |", r.verb.as_str().to_uppercase(), r.path);
            assert!(doc.contains(&row), "docs/http-api.md lacks the row starting {row}");
        }
    }

    #[test]
    fn query_parameters_are_checked_by_name_and_type() {
        let q = Query::parse(Some("page_size=10&page_token=20"), Endpoint::ListHosts).expect("known");
        assert_eq!((q.u32("page_size").expect("number"), q.string("page_token")), (10, "20".to_string()));
        let e = Query::parse(Some("pagesize=10"), Endpoint::ListHosts).err().expect("unknown");
        assert_eq!(
            e.message,
            "unknown query parameter \"pagesize\"; this endpoint takes page_size, page_token, filter, sort, descending, columns"
        );
        let e = Query::parse(Some("x=1"), Endpoint::ListSilences).err().expect("none taken");
        assert!(e.message.ends_with("takes no query parameters"), "{}", e.message);
        let e = Query::parse(Some("state=a&state=b"), Endpoint::ListAlerts).err().expect("twice");
        assert!(e.message.contains("given twice"), "{}", e.message);
        let q = Query::parse(Some("page_size=-1"), Endpoint::ListHosts).expect("parsed");
        assert!(q.u32("page_size").expect_err("negative").message.contains("whole number"));
        let q = Query::parse(Some("metric=fs.%2F.used_percent&since_unix_ms=5"), Endpoint::GetMetrics).expect("decoded");
        assert_eq!((q.required("metric").expect("given"), q.i64("since_unix_ms").expect("number")), ("fs./.used_percent".into(), 5));
        assert!(q.required("resolution").is_err());
    }

    #[test]
    fn bodies_are_json_objects_with_known_fields() {
        let b: SilenceBody = parse_body(br#"{"matchers": ["alertname=x"], "duration_ms": 60000}"#).expect("valid");
        assert_eq!((b.matchers.len(), b.duration_ms, b.comment.as_str()), (1, 60_000, ""));
        let e = parse_body::<AcknowledgeBody>(br#"{"coment": "typo"}"#).expect_err("unknown field");
        assert!(e.message.contains("unknown field `coment`"), "{}", e.message);
        let e = parse_body::<RuleTextBody>(b"[1, 2").expect_err("malformed");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        // Typed fields and no unknown ones: a nested document is refused at
        // its first level, never walked (serde_json stops at 128 anyway).
        let deep = format!("{{\"toml\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        let e = parse_body::<RuleTextBody>(deep.as_bytes()).expect_err("refused");
        assert!(e.message.contains("invalid type: sequence"), "{}", e.message);
        assert_eq!(parse_body::<AcknowledgeBody>(b" \n").expect("empty is {}").comment, "");
    }

    #[test]
    fn a_path_fits_its_template() {
        assert!(path_matches("/api/v1/alerts/{id}/ack", "/api/v1/alerts/abcdef/ack"));
        assert!(!path_matches("/api/v1/alerts/{id}/ack", "/api/v1/alerts/abcdef"));
    }
}
