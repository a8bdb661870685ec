//! AdminService over gRPC: the questions the CLI asks, behind a bearer
//! token with a role.
//!
//! Authentication happens once, in `authenticate` (a tonic interceptor
//! around `admin_calls::caller_for_authorization`, which the HTTP API uses
//! too); each method hands the `Caller` and its request to the same call of
//! `AdminCalls`, which states the role it needs.

use std::sync::Arc;

use census_proto::v1 as pb;
use census_proto::v1::admin_service_server::AdminService;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::admin_calls::AdminCalls;
pub use crate::admin_calls::Caller;
use crate::alerting::Alerting;
use crate::config::AgentPolicy;
use crate::error::Error;
use crate::secrets::Role;
use crate::store::Store;

/// Interceptor: resolves `authorization: Bearer <token>` to a `Caller`.
pub fn authenticate(store: Arc<dyn Store>) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let header = request.metadata().get("authorization").map(|v| v.as_bytes());
        let caller = crate::admin_calls::caller_for_authorization(store.as_ref(), header, request.remote_addr(), "grpc")?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The caller `authenticate` attached, if its role is at least `needed`.
fn require<T>(request: &Request<T>, needed: Role) -> Result<Caller, Status> {
    let caller = request.extensions().get::<Caller>().cloned().ok_or_else(|| Status::unauthenticated("request was not authenticated"))?;
    caller.require(needed)?;
    Ok(caller)
}

/// The `Caller` of an authenticated request: every role is at least a
/// viewer; each call of `AdminCalls` then checks the role it needs.
fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    require(request, Role::Viewer)
}

/// The gRPC face of `AdminCalls`.
pub struct AdminApi {
    calls: Arc<AdminCalls>,
}

impl AdminApi {
    pub fn new(store: Arc<dyn Store>, policy: AgentPolicy, metrics: crate::config::Metrics, alerting: Arc<Alerting>) -> AdminApi {
        AdminApi::over(Arc::new(AdminCalls::new(store, policy, metrics, alerting)))
    }

    /// Serves the given calls (shared with the HTTP API).
    pub fn over(calls: Arc<AdminCalls>) -> AdminApi {
        AdminApi { calls }
    }
}

/// Runs one call of `AdminCalls` for an authenticated request.
macro_rules! call {
    ($self:ident, $request:ident, $method:ident) => {{
        let caller = caller(&$request)?;
        Ok(Response::new($self.calls.$method(&caller, $request.into_inner()).await?))
    }};
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    type BackupStream = ReceiverStream<Result<pb::BackupChunk, Status>>;

    async fn list_hosts(&self, request: Request<pb::ListHostsRequest>) -> Result<Response<pb::ListHostsResponse>, Status> {
        call!(self, request, list_hosts)
    }

    async fn get_host(&self, request: Request<pb::GetHostRequest>) -> Result<Response<pb::GetHostResponse>, Status> {
        call!(self, request, get_host)
    }

    async fn get_fleet_summary(
        &self,
        request: Request<pb::GetFleetSummaryRequest>,
    ) -> Result<Response<pb::GetFleetSummaryResponse>, Status> {
        call!(self, request, get_fleet_summary)
    }

    async fn list_software(&self, request: Request<pb::ListSoftwareRequest>) -> Result<Response<pb::ListSoftwareResponse>, Status> {
        call!(self, request, list_software)
    }

    async fn list_changes(&self, request: Request<pb::ListChangesRequest>) -> Result<Response<pb::ListChangesResponse>, Status> {
        call!(self, request, list_changes)
    }

    async fn get_metrics(&self, request: Request<pb::GetMetricsRequest>) -> Result<Response<pb::GetMetricsResponse>, Status> {
        call!(self, request, get_metrics)
    }

    async fn list_alerts(&self, request: Request<pb::ListAlertsRequest>) -> Result<Response<pb::ListAlertsResponse>, Status> {
        call!(self, request, list_alerts)
    }

    async fn get_alert(&self, request: Request<pb::GetAlertRequest>) -> Result<Response<pb::GetAlertResponse>, Status> {
        call!(self, request, get_alert)
    }

    async fn acknowledge_alert(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeAlertResponse>, Status> {
        call!(self, request, acknowledge_alert)
    }

    async fn list_silences(&self, request: Request<pb::ListSilencesRequest>) -> Result<Response<pb::ListSilencesResponse>, Status> {
        call!(self, request, list_silences)
    }

    async fn add_silence(&self, request: Request<pb::AddSilenceRequest>) -> Result<Response<pb::AddSilenceResponse>, Status> {
        call!(self, request, add_silence)
    }

    async fn expire_silence(&self, request: Request<pb::ExpireSilenceRequest>) -> Result<Response<pb::ExpireSilenceResponse>, Status> {
        call!(self, request, expire_silence)
    }

    async fn list_rules(&self, request: Request<pb::ListRulesRequest>) -> Result<Response<pb::ListRulesResponse>, Status> {
        call!(self, request, list_rules)
    }

    async fn put_rule(&self, request: Request<pb::PutRuleRequest>) -> Result<Response<pb::PutRuleResponse>, Status> {
        call!(self, request, put_rule)
    }

    async fn delete_rule(&self, request: Request<pb::DeleteRuleRequest>) -> Result<Response<pb::DeleteRuleResponse>, Status> {
        call!(self, request, delete_rule)
    }

    async fn test_rules(&self, request: Request<pb::TestRulesRequest>) -> Result<Response<pb::TestRulesResponse>, Status> {
        call!(self, request, test_rules)
    }

    async fn list_outbox(&self, request: Request<pb::ListOutboxRequest>) -> Result<Response<pb::ListOutboxResponse>, Status> {
        call!(self, request, list_outbox)
    }

    async fn retry_outbox(&self, request: Request<pb::RetryOutboxRequest>) -> Result<Response<pb::RetryOutboxResponse>, Status> {
        call!(self, request, retry_outbox)
    }

    async fn revoke_agent(&self, request: Request<pb::RevokeAgentRequest>) -> Result<Response<pb::RevokeAgentResponse>, Status> {
        call!(self, request, revoke_agent)
    }

    async fn create_enrollment_secret(
        &self,
        request: Request<pb::CreateEnrollmentSecretRequest>,
    ) -> Result<Response<pb::CreateEnrollmentSecretResponse>, Status> {
        call!(self, request, create_enrollment_secret)
    }

    async fn list_enrollment_secrets(
        &self,
        request: Request<pb::ListEnrollmentSecretsRequest>,
    ) -> Result<Response<pb::ListEnrollmentSecretsResponse>, Status> {
        call!(self, request, list_enrollment_secrets)
    }

    async fn expire_enrollment_secret(
        &self,
        request: Request<pb::ExpireEnrollmentSecretRequest>,
    ) -> Result<Response<pb::ExpireEnrollmentSecretResponse>, Status> {
        call!(self, request, expire_enrollment_secret)
    }

    async fn create_token(&self, request: Request<pb::CreateTokenRequest>) -> Result<Response<pb::CreateTokenResponse>, Status> {
        call!(self, request, create_token)
    }

    async fn list_tokens(&self, request: Request<pb::ListTokensRequest>) -> Result<Response<pb::ListTokensResponse>, Status> {
        call!(self, request, list_tokens)
    }

    async fn revoke_token(&self, request: Request<pb::RevokeTokenRequest>) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        call!(self, request, revoke_token)
    }

    async fn list_audit(&self, request: Request<pb::ListAuditRequest>) -> Result<Response<pb::ListAuditResponse>, Status> {
        call!(self, request, list_audit)
    }

    type ExportAssetsStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::ExportAssetsChunk, Status>>>;

    async fn export_assets(&self, request: Request<pb::ExportAssetsRequest>) -> Result<Response<Self::ExportAssetsStream>, Status> {
        let caller = caller(&request)?;
        // The rows exist whole in memory (the store reads every host to
        // filter them); chunks keep each message small.
        let rows = self.calls.export_assets(&caller, request.into_inner()).await?;
        let chunks: Vec<Result<pb::ExportAssetsChunk, Status>> =
            rows.chunks(crate::admin_access::EXPORT_CHUNK_ROWS).map(|rows| Ok(pb::ExportAssetsChunk { rows: rows.to_vec() })).collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn backup(&self, request: Request<pb::BackupRequest>) -> Result<Response<Self::BackupStream>, Status> {
        let caller = caller(&request)?;
        let slot = self.calls.backup_slot(&caller).await?;
        // Bounded: the file is read only as fast as the client takes it.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let calls = Arc::clone(&self.calls);
        // The snapshot is taken after the response headers went out, so a
        // large store does not run into the client's request deadline.
        tokio::spawn(async move {
            match calls.take_backup(&caller, slot).await {
                Ok(taken) => {
                    if let Err(status) = stream_file(&taken.path, &tx).await {
                        let _ = tx.send(Err(status)).await;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(backup_failed(e))).await;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Pieces of a backup on the wire: well under the 4 MiB default message limit.
const BACKUP_CHUNK_BYTES: usize = 256 * 1024;

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

fn backup_failed(e: Error) -> Status {
    match &e {
        Error::Io { source, path, .. } if source.kind() == std::io::ErrorKind::StorageFull => Status::resource_exhausted(format!(
            "no space left for the backup ({}): it needs about the size of the database there",
            path.display()
        )),
        _ => Status::unavailable(format!("the backup could not be taken: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::SledStore;

    fn api(dir: &std::path::Path) -> AdminApi {
        api_over(Arc::new(SledStore::open(dir).expect("open store")))
    }

    fn api_over(store: Arc<dyn Store>) -> AdminApi {
        AdminApi::over(Arc::new(AdminCalls::over_store(store)))
    }

    fn as_role<T>(role: Role, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(Caller {
            token_id: format!("tok-{}", role.as_str()),
            name: "test".into(),
            role,
            peer: "127.0.0.1:9".into(),
            api: "grpc",
        });
        request
    }

    /// Pages are cut from the selected first hosts (`select_nth`), not a
    /// full sort: every page size must give the same order as one page.
    #[tokio::test]
    async fn pages_concatenate_to_the_fully_sorted_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("open store"));
        // Non-ASCII names take the lower-casing path the ASCII ones skip.
        let names = ["web", "Db", "app", "Édition", "édition2", "ZÜRICH"];
        let mut expected: Vec<(String, String)> = Vec::new();
        for n in 0..9u8 {
            let id = format!("{n:032x}");
            let mut new = crate::store::test_agent(&id, &format!("u{n}"), n + 1);
            new.hostname = names[usize::from(n) % names.len()].to_string();
            expected.push((new.hostname.to_lowercase(), id.clone()));
            store.enroll_agent(new).expect("enroll");
            let inventory = pb::Inventory {
                memory: Some(pb::MemorySection { total_bytes: u64::from(n % 4) << 30, ..Default::default() }),
                ..Default::default()
            };
            let report = pb::Report { seq: 1, created_at_unix_ms: 1, body: Some(pb::report::Body::Inventory(inventory)) };
            store.put_reports(&id, &[report], 1).expect("put");
        }
        let api = api_over(store);
        for (sort, descending) in [("", false), ("", true), ("memory.total", false), ("memory.total", true)] {
            let list = |page_size: u32, page_token: String| {
                let req = pb::ListHostsRequest { page_size, page_token, sort: sort.into(), descending, ..Default::default() };
                api.list_hosts(as_role(Role::Viewer, req))
            };
            let all: Vec<String> =
                list(100, String::new()).await.expect("one page").into_inner().hosts.into_iter().map(|h| h.agent_id).collect();
            assert_eq!(all.len(), 9);
            if sort.is_empty() {
                // The default order: lower-cased name, then agent id.
                expected.sort();
                let mut ids: Vec<String> = expected.iter().map(|(_, id)| id.clone()).collect();
                if descending {
                    ids.reverse();
                }
                assert_eq!(all, ids, "descending {descending}");
            } else {
                // By memory, ties in the default order.
                let mut by_memory: Vec<(u64, String, String)> = expected
                    .iter()
                    .map(|(name, id)| (u64::from(u8::from_str_radix(&id[30..], 16).unwrap_or(0) % 4), name.clone(), id.clone()))
                    .collect();
                by_memory.sort();
                let mut ids: Vec<String> = by_memory.into_iter().map(|(_, _, id)| id).collect();
                if descending {
                    ids.reverse();
                }
                assert_eq!(all, ids, "by memory, descending {descending}");
            }
            for page_size in [1, 2, 4] {
                let (mut paged, mut token) = (Vec::new(), String::new());
                loop {
                    let page = list(page_size, token).await.expect("page").into_inner();
                    paged.extend(page.hosts.into_iter().map(|h| h.agent_id));
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    token = page.next_page_token;
                }
                assert_eq!(paged, all, "sort {sort:?} descending {descending} pages of {page_size}");
            }
        }
    }

    /// ListSoftware pages split the versions' host lists laid end to end;
    /// every page keeps every version and its full count.
    #[tokio::test]
    async fn software_pages_concatenate_to_the_whole_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("open store"));
        for n in 0..7u8 {
            let id = format!("{n:032x}");
            let mut new = crate::store::test_agent(&id, &format!("u{n}"), n + 1);
            new.hostname = format!("h{n}");
            store.enroll_agent(new).expect("enroll");
            let version = ["3.0.13-1", "3.0.11-1", "1.1.1w-0"][usize::from(n % 3)];
            let package = pb::Package { name: "openssl".into(), version: version.into(), source: "dpkg".into(), ..Default::default() };
            let inventory = pb::Inventory { software: Some(pb::SoftwareSection { packages: vec![package] }), ..Default::default() };
            let report = pb::Report { seq: 1, created_at_unix_ms: 1, body: Some(pb::report::Body::Inventory(inventory)) };
            store.put_reports(&id, &[report], 1).expect("put");
        }
        let api = api_over(store);
        let list = |page_size: u32, page_token: String| {
            let req = pb::ListSoftwareRequest { name: "openssl".into(), page_size, page_token, ..Default::default() };
            api.list_software(as_role(Role::Viewer, req))
        };
        let whole = list(0, String::new()).await.expect("one page").into_inner();
        assert!(whole.next_page_token.is_empty());
        let counts: Vec<u64> = whole.versions.iter().map(|v| v.host_count).collect();
        assert_eq!(counts, [3, 2, 2], "newest first: 3.0.13-1 on hosts 0, 3, 6");
        let all: Vec<String> = whole.versions.iter().flat_map(|v| v.hosts.iter().map(|h| h.hostname.clone())).collect();
        assert_eq!(all.len(), 7);
        for page_size in [1, 2, 3, 5] {
            let (mut paged, mut token, mut pages) = (Vec::new(), String::new(), 0);
            loop {
                let page = list(page_size, token).await.expect("page").into_inner();
                pages += 1;
                assert_eq!(page.versions.iter().map(|v| v.host_count).collect::<Vec<_>>(), counts, "counts on every page");
                let hosts: Vec<String> = page.versions.iter().flat_map(|v| v.hosts.iter().map(|h| h.hostname.clone())).collect();
                assert!(hosts.len() <= page_size as usize);
                paged.extend(hosts);
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            assert_eq!(paged, all, "pages of {page_size}");
            assert_eq!(pages, 7usize.div_ceil(page_size as usize), "pages of {page_size}");
        }
        let refused = list(1, "x".into()).await.expect_err("a token the server did not issue");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
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
}
