//! The admin calls about access itself — enrollment secrets, admin tokens,
//! the audit log — and the asset register export: more of `AdminCalls`,
//! kept beside `admin_calls.rs` so that file stays about the fleet.
//!
//! The audit log records every state-changing admin call (`audited`):
//! a refusal for a role too low as "refused" before anything runs, an
//! allowed call as "ok" or "failed" once the call returned, so the entry
//! follows the action's own commit (a crash between the two loses the
//! entry, never the action). Who (token id, name, role), what (action,
//! target, outcome, detail), when, from where (peer address and API).

use std::future::Future;

use census_proto::v1 as pb;

use crate::admin_calls::{AdminCalls, Caller};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::export;
use crate::secrets::Role;
use crate::store::records::RECORD_SCHEMA;
use crate::store::{AuditRecord, EnrollmentSecretRecord, TokenRecord};

/// Most bytes of an audit entry's target and detail.
const MAX_AUDIT_TEXT: usize = 256;
const DEFAULT_AUDIT_LIMIT: usize = 100;
const MAX_AUDIT_LIMIT: usize = 10_000;
/// Rows per chunk of a streamed export.
pub const EXPORT_CHUNK_ROWS: usize = 1000;

/// `text` cut to at most `MAX_AUDIT_TEXT` bytes on a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_AUDIT_TEXT {
        let mut end = MAX_AUDIT_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A name given to a secret or token: 1 to 128 bytes, no control characters.
fn name_of(what: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!("{what} name must be 1 to 128 bytes without control characters")));
    }
    Ok(name.to_string())
}

/// A public id as listed: 12 hex characters.
fn public_id(what: &str, id: &str) -> Result<String> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidArgument(format!("{what} id must be the 12 hex characters its listing shows")));
    }
    Ok(id)
}

pub fn secret_info(r: &EnrollmentSecretRecord, now_unix_ms: i64) -> pb::EnrollmentSecretInfo {
    pb::EnrollmentSecretInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        created_at_unix_ms: r.created_at_unix_ms,
        expires_at_unix_ms: r.expires_at_unix_ms,
        state: r.state(now_unix_ms).to_string(),
        uses: r.uses,
        max_uses: r.max_uses,
    }
}

pub fn token_info(r: &TokenRecord) -> pb::TokenInfo {
    pb::TokenInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        role: r.role.clone(),
        created_at_unix_ms: r.created_at_unix_ms,
        revoked: r.revoked,
    }
}

pub fn audit_entry(r: AuditRecord) -> pb::AuditEntry {
    pb::AuditEntry {
        at_unix_ms: r.at_unix_ms,
        token_id: r.token_id,
        token_name: r.token_name,
        role: r.role,
        action: r.action,
        target: r.target,
        outcome: r.outcome,
        detail: r.detail,
        peer: r.peer,
        api: r.api,
    }
}

impl AdminCalls {
    /// Records one audit entry; a failure to record is logged (the action
    /// it describes has happened or been refused either way).
    pub(crate) async fn record(&self, caller: &Caller, action: &str, target: &str, outcome: &str, detail: String) {
        let entry = AuditRecord {
            schema: RECORD_SCHEMA,
            at_unix_ms: now_ms(),
            token_id: caller.token_id.clone(),
            token_name: caller.name.clone(),
            role: caller.role.as_str().to_string(),
            action: action.to_string(),
            target: bounded(target.to_string()),
            outcome: outcome.to_string(),
            detail: bounded(detail),
            peer: caller.peer.clone(),
            api: caller.api.to_string(),
        };
        if let Err(e) = self.with_store(move |s| s.append_audit(&entry)).await {
            tracing::error!(error = %e, action, by = %caller.token_id, "the audit log could not record an admin call");
        }
    }

    /// Runs a state-changing call under the audit log: refused (and
    /// recorded so) unless the caller has `needed`; otherwise run, and its
    /// outcome recorded with `detail` of its answer.
    pub(crate) async fn audited<T>(
        &self,
        caller: &Caller,
        needed: Role,
        action: &str,
        target: String,
        call: impl Future<Output = Result<T>>,
        detail: impl FnOnce(&T) -> String,
    ) -> Result<T> {
        if let Err(refused) = caller.require(needed) {
            self.record(caller, action, &target, "refused", refused.to_string()).await;
            return Err(refused);
        }
        // Below the disk reserve the call is refused before it writes, and
        // not audited: the audit entry would be a write too.
        if let Some(Err(full)) = self.disk.as_ref().map(crate::disk_space::DiskGuard::check) {
            tracing::warn!(reason = %full, action, by = %caller.token_id, "admin call refused");
            return Err(full);
        }
        let result = call.await;
        match &result {
            Ok(answer) => self.record(caller, action, &target, "ok", detail(answer)).await,
            Err(e) => self.record(caller, action, &target, "failed", e.to_string()).await,
        }
        result
    }

    pub async fn create_enrollment_secret(
        &self,
        caller: &Caller,
        req: pb::CreateEnrollmentSecretRequest,
    ) -> Result<pb::CreateEnrollmentSecretResponse> {
        let target = req.name.clone();
        let call = async {
            let name = name_of("secret", &req.name)?;
            let now = now_ms();
            if req.expires_at_unix_ms < 0 || (req.expires_at_unix_ms != 0 && req.expires_at_unix_ms <= now) {
                return Err(Error::InvalidArgument("expires_at_unix_ms must be in the future (or 0: never)".into()));
            }
            let (expires, max_uses) = (req.expires_at_unix_ms, req.max_uses);
            let (secret, record) = self
                .with_store(move |s| {
                    let expires = (expires != 0).then(|| crate::clock::from_unix_ms(expires));
                    crate::init::create_enrollment_secret_limited(s, &name, expires, max_uses, crate::clock::from_unix_ms(now))
                })
                .await?;
            tracing::info!(secret = %record.id, name = %record.name, by = %caller.token_id, "enrollment secret created");
            Ok(pb::CreateEnrollmentSecretResponse { info: Some(secret_info(&record, now)), secret: secret.expose().to_string() })
        };
        self.audited(caller, Role::Admin, "secret.create", target, call, |r| {
            r.info.as_ref().map(|i| format!("secret {}", i.id)).unwrap_or_default()
        })
        .await
    }

    pub async fn list_enrollment_secrets(
        &self,
        caller: &Caller,
        _req: pb::ListEnrollmentSecretsRequest,
    ) -> Result<pb::ListEnrollmentSecretsResponse> {
        caller.require(Role::Admin)?;
        let mut secrets = self.with_store(|s| s.enrollment_secrets()).await?;
        secrets.sort_by(|a, b| b.created_at_unix_ms.cmp(&a.created_at_unix_ms).then_with(|| a.id.cmp(&b.id)));
        let now = now_ms();
        Ok(pb::ListEnrollmentSecretsResponse { secrets: secrets.iter().map(|r| secret_info(r, now)).collect() })
    }

    pub async fn expire_enrollment_secret(
        &self,
        caller: &Caller,
        req: pb::ExpireEnrollmentSecretRequest,
    ) -> Result<pb::ExpireEnrollmentSecretResponse> {
        let target = req.id.clone();
        let call = async {
            let id = public_id("enrollment secret", &req.id)?;
            let (record, already) = self.with_store(move |s| s.revoke_enrollment_secret(&id)).await?;
            if !already {
                tracing::info!(secret = %record.id, name = %record.name, by = %caller.token_id, "enrollment secret revoked");
            }
            Ok(pb::ExpireEnrollmentSecretResponse { info: Some(secret_info(&record, now_ms())), already_revoked: already })
        };
        self.audited(caller, Role::Admin, "secret.expire", target, call, |r| {
            if r.already_revoked { "already revoked".into() } else { String::new() }
        })
        .await
    }

    pub async fn create_token(&self, caller: &Caller, req: pb::CreateTokenRequest) -> Result<pb::CreateTokenResponse> {
        let target = req.name.clone();
        let call = async {
            let name = name_of("token", &req.name)?;
            let role = Role::parse(&req.role)
                .ok_or_else(|| Error::InvalidArgument(format!("role {:?} is not one of viewer, operator, admin", req.role)))?;
            let now = now_ms();
            let (token, record) = self
                .with_store(move |s| {
                    let token = crate::init::create_admin_token(s, &name, role, crate::clock::from_unix_ms(now))?;
                    let record =
                        s.admin_token(&token.hash())?.ok_or_else(|| Error::Internal("the token just created is not stored".into()))?;
                    Ok((token, record))
                })
                .await?;
            tracing::info!(token = %record.id, role = %record.role, by = %caller.token_id, "admin token created");
            Ok(pb::CreateTokenResponse { info: Some(token_info(&record)), token: token.expose().to_string() })
        };
        self.audited(caller, Role::Admin, "token.create", target, call, |r| {
            r.info.as_ref().map(|i| format!("token {} role {}", i.id, i.role)).unwrap_or_default()
        })
        .await
    }

    pub async fn list_tokens(&self, caller: &Caller, _req: pb::ListTokensRequest) -> Result<pb::ListTokensResponse> {
        caller.require(Role::Admin)?;
        let mut tokens = self.with_store(|s| s.admin_tokens()).await?;
        tokens.sort_by(|a, b| b.created_at_unix_ms.cmp(&a.created_at_unix_ms).then_with(|| a.id.cmp(&b.id)));
        Ok(pb::ListTokensResponse { tokens: tokens.iter().map(token_info).collect() })
    }

    pub async fn revoke_token(&self, caller: &Caller, req: pb::RevokeTokenRequest) -> Result<pb::RevokeTokenResponse> {
        let target = req.id.clone();
        let call = async {
            let id = public_id("token", &req.id)?;
            let (record, already) = self.with_store(move |s| s.revoke_admin_token(&id)).await?;
            if !already {
                tracing::info!(token = %record.id, by = %caller.token_id, "admin token revoked");
            }
            Ok(pb::RevokeTokenResponse { info: Some(token_info(&record)), already_revoked: already })
        };
        self.audited(caller, Role::Admin, "token.revoke", target, call, |r| {
            if r.already_revoked { "already revoked".into() } else { String::new() }
        })
        .await
    }

    /// The audit log reads as admin: it names every token and what each did.
    pub async fn list_audit(&self, caller: &Caller, req: pb::ListAuditRequest) -> Result<pb::ListAuditResponse> {
        caller.require(Role::Admin)?;
        if req.actor.len() > 64 || req.action.len() > 64 {
            return Err(Error::InvalidArgument("actor and action must be at most 64 bytes".into()));
        }
        let limit = match req.limit as usize {
            0 => DEFAULT_AUDIT_LIMIT,
            n => n.min(MAX_AUDIT_LIMIT),
        };
        let (actor, action) = (req.actor, req.action);
        let entries = self
            .with_store(move |s| {
                let keep = |r: &AuditRecord| {
                    (actor.is_empty() || r.token_id == actor)
                        && (action.is_empty() || r.action == action || (action.ends_with('.') && r.action.starts_with(action.as_str())))
                };
                s.audit_entries(req.since_unix_ms, &keep, limit)
            })
            .await?;
        Ok(pb::ListAuditResponse { entries: entries.into_iter().map(audit_entry).collect() })
    }

    /// The asset register's rows, in the host listing's order (so an
    /// export and `census hosts --filter` list the same hosts in the same
    /// order). The transports send them a chunk at a time.
    pub async fn export_assets(&self, caller: &Caller, req: pb::ExportAssetsRequest) -> Result<Vec<pb::AssetRow>> {
        caller.require(Role::Viewer)?;
        let listing = pb::ListHostsRequest { filter: req.filter, ..Default::default() };
        let (hosts, _) = self.filtered_hosts(&listing).await?;
        let now = now_ms();
        Ok(hosts.iter().map(|h| export::asset_row(h, self.online(&h.agent, now))).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::sled::SledStore;

    fn calls(dir: &std::path::Path) -> AdminCalls {
        AdminCalls::over_store(Arc::new(SledStore::open(dir).expect("open store")))
    }

    fn caller(id: &str, role: Role) -> Caller {
        Caller { token_id: id.into(), name: format!("{id} name"), role, peer: "192.0.2.7:5000".into(), api: "grpc" }
    }

    #[tokio::test]
    async fn a_short_disk_refuses_changes_before_they_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let calls = calls(dir.path()).with_disk_guard(crate::disk_space::DiskGuard::new(dir.path().to_path_buf(), u64::MAX));
        let first =
            crate::init::create_admin_token(calls.store.as_ref(), "first", Role::Admin, std::time::SystemTime::now()).expect("token");
        let admin = caller(&first.public_id(), Role::Admin);
        let full = calls
            .create_token(&admin, pb::CreateTokenRequest { name: "x".into(), role: "viewer".into() })
            .await
            .expect_err("no room for the write");
        assert!(matches!(&full, Error::ResourceExhausted(m) if m.contains("disk full")), "{full:?}");
        assert_eq!(calls.list_tokens(&admin, pb::ListTokensRequest {}).await.expect("list").tokens.len(), 1, "nothing created");
        assert!(calls.list_audit(&admin, pb::ListAuditRequest::default()).await.expect("audit").entries.is_empty(), "nothing written");
    }

    #[tokio::test]
    async fn the_last_admin_token_stays_and_every_change_is_audited() {
        let dir = tempfile::tempdir().expect("temp dir");
        let calls = calls(dir.path());
        let first =
            crate::init::create_admin_token(calls.store.as_ref(), "first", Role::Admin, std::time::SystemTime::now()).expect("token");
        let admin = caller(&first.public_id(), Role::Admin);

        let refused = calls
            .create_token(&caller("v", Role::Viewer), pb::CreateTokenRequest { name: "x".into(), role: "admin".into() })
            .await
            .expect_err("a viewer cannot");
        assert!(matches!(refused, Error::PermissionDenied(_)), "{refused:?}");

        let last = calls.revoke_token(&admin, pb::RevokeTokenRequest { id: first.public_id() }).await.expect_err("the last admin");
        assert!(matches!(&last, Error::FailedPrecondition(m) if m.contains("last active admin token")), "{last:?}");

        let second =
            calls.create_token(&admin, pb::CreateTokenRequest { name: "second".into(), role: "admin".into() }).await.expect("created");
        let second_id = second.info.expect("info").id;
        assert!(second.token.starts_with(crate::secrets::TOKEN_PREFIX));
        let revoked = calls.revoke_token(&admin, pb::RevokeTokenRequest { id: first.public_id() }).await.expect("not the last now");
        assert!(!revoked.already_revoked && revoked.info.expect("info").revoked);
        let unknown = crate::admin_calls::caller_for_authorization(
            calls.store.as_ref(),
            Some(format!("Bearer {}", first.expose()).as_bytes()),
            None,
            "grpc",
        )
        .expect_err("a revoked token is refused at once");
        assert!(matches!(unknown, Error::Unauthenticated(_)), "{unknown:?}");

        let log = calls.list_audit(&admin, pb::ListAuditRequest::default()).await.expect("audit").entries;
        let seen: Vec<(&str, &str, &str)> = log.iter().map(|e| (e.action.as_str(), e.outcome.as_str(), e.token_id.as_str())).collect();
        let first_id = first.public_id();
        assert_eq!(
            seen,
            [
                ("token.revoke", "ok", first_id.as_str()),
                ("token.create", "ok", first_id.as_str()),
                ("token.revoke", "failed", first_id.as_str()),
                ("token.create", "refused", "v"),
            ],
            "newest first"
        );
        assert_eq!(
            (log[1].peer.as_str(), log[1].api.as_str(), log[1].token_name.as_str()),
            ("192.0.2.7:5000", "grpc", format!("{first_id} name").as_str())
        );
        assert!(log[1].detail.contains(&second_id), "{}", log[1].detail);
        let only_refused = calls
            .list_audit(&admin, pb::ListAuditRequest { actor: "v".into(), action: "token.".into(), ..Default::default() })
            .await
            .expect("filtered");
        assert_eq!(only_refused.entries.len(), 1);
        let denied = calls.list_audit(&caller("o", Role::Operator), pb::ListAuditRequest::default()).await.expect_err("admin only");
        assert!(matches!(denied, Error::PermissionDenied(_)));

        assert_eq!(calls.store.prune_audit(now_ms() + 1).expect("prune"), 4);
        assert!(calls.store.audit_entries(0, &|_| true, 10).expect("read").is_empty());
    }

    #[tokio::test]
    async fn a_secret_expired_revoked_or_used_up_admits_no_enrollment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let calls = calls(dir.path());
        let admin = caller("a", Role::Admin);
        let past = calls
            .create_enrollment_secret(&admin, pb::CreateEnrollmentSecretRequest { name: "site".into(), expires_at_unix_ms: 1, max_uses: 0 })
            .await
            .expect_err("in the past");
        assert!(matches!(past, Error::InvalidArgument(_)), "{past:?}");
        let once = calls
            .create_enrollment_secret(
                &admin,
                pb::CreateEnrollmentSecretRequest { name: "paris".into(), expires_at_unix_ms: 0, max_uses: 1 },
            )
            .await
            .expect("created");
        let info = once.info.expect("info");
        assert_eq!((info.state.as_str(), info.max_uses), ("active", 1));
        let hash = crate::secrets::Secret::new(once.secret).hash();
        let enrol = |id: &str, uuid: &str| crate::store::NewAgent {
            secret_hash: hash,
            enrolled_at_unix_ms: now_ms(),
            ..crate::store::test_agent(id, uuid, uuid.len() as u8)
        };
        calls.store.enroll_agent(enrol(&"1".repeat(32), "h1")).expect("first use");
        let used_up = calls.store.enroll_agent(enrol(&"2".repeat(32), "h22")).expect_err("second use");
        assert!(matches!(&used_up, Error::PermissionDenied(m) if m.contains("used its 1 times")), "{used_up:?}");
        assert!(calls.store.host(&"2".repeat(32)).expect("read").is_none(), "nothing stored");

        let listed = calls.list_enrollment_secrets(&admin, pb::ListEnrollmentSecretsRequest {}).await.expect("list").secrets;
        let paris = listed.iter().find(|s| s.name == "paris").expect("listed");
        assert_eq!((paris.uses, paris.state.as_str()), (1, "used_up"));
        let expired =
            calls.expire_enrollment_secret(&admin, pb::ExpireEnrollmentSecretRequest { id: info.id.clone() }).await.expect("expire");
        assert_eq!((expired.already_revoked, expired.info.expect("info").state.as_str()), (false, "revoked"));
        let again = calls.expire_enrollment_secret(&admin, pb::ExpireEnrollmentSecretRequest { id: info.id }).await.expect("again");
        assert!(again.already_revoked);
        let missing =
            calls.expire_enrollment_secret(&admin, pb::ExpireEnrollmentSecretRequest { id: "0".repeat(12) }).await.expect_err("none");
        assert!(matches!(missing, Error::NotFound(_)));
    }
}
