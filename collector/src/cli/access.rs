//! `census secrets`, `census tokens`, `census audit` and `census export`:
//! access to the collector and the asset register. Each calls the admin
//! API and formats its answer as `render.rs` does.

use std::io::Write;
use std::time::SystemTime;

use census_proto::v1 as pb;
use tonic::Status;

use super::Output;
use super::alerts::relative;
use super::connect::AdminClient;
use super::render::{csv, json, table, time};
use crate::clock::unix_ms;
use crate::export::{Format, Writer};

fn never_or(t: i64, now: i64) -> String {
    if t == 0 { "never".into() } else { relative(t, now) }
}

fn uses(s: &pb::EnrollmentSecretInfo) -> String {
    if s.max_uses == 0 { s.uses.to_string() } else { format!("{}/{}", s.uses, s.max_uses) }
}

pub async fn secret_create(
    client: &mut AdminClient,
    name: &str,
    expires_at_unix_ms: i64,
    max_uses: u64,
    output: Output,
) -> Result<String, Status> {
    let req = pb::CreateEnrollmentSecretRequest { name: name.to_string(), expires_at_unix_ms, max_uses };
    let reply = client.create_enrollment_secret(req).await?.into_inner();
    if output == Output::Json {
        return Ok(json(&reply));
    }
    let info = reply.info.unwrap_or_default();
    let expires =
        if info.expires_at_unix_ms == 0 { "never expires".to_string() } else { format!("expires {}", time(info.expires_at_unix_ms)) };
    let limit = if info.max_uses == 0 { String::new() } else { format!(", at most {} enrollment(s)", info.max_uses) };
    Ok(format!(
        "enrollment secret {} for {:?} ({expires}{limit}):\n{}\nIt is shown only now; the collector keeps only its hash.\n\
         Agents enroll with: census-agent enroll --server URL --ca ca.pem --secret <it>\n",
        info.id, info.name, reply.secret
    ))
}

pub async fn secrets(client: &mut AdminClient, output: Output) -> Result<String, Status> {
    let reply = client.list_enrollment_secrets(pb::ListEnrollmentSecretsRequest {}).await?.into_inner();
    let now = unix_ms(SystemTime::now());
    Ok(match output {
        Output::Json => json(&reply.secrets),
        Output::Csv => csv(
            &["id", "name", "state", "created_at", "expires_at", "uses", "max_uses"],
            reply.secrets.iter().map(|s| {
                vec![
                    s.id.clone(),
                    s.name.clone(),
                    s.state.clone(),
                    time(s.created_at_unix_ms),
                    time(s.expires_at_unix_ms),
                    s.uses.to_string(),
                    s.max_uses.to_string(),
                ]
            }),
        ),
        Output::Table => {
            if reply.secrets.is_empty() {
                return Ok("no enrollment secrets\n".into());
            }
            let mut t = table(&["ID", "NAME", "STATE", "CREATED", "EXPIRES", "USES"]);
            for s in &reply.secrets {
                t.add_row(vec![
                    s.id.clone(),
                    s.name.clone(),
                    s.state.clone(),
                    relative(s.created_at_unix_ms, now),
                    never_or(s.expires_at_unix_ms, now),
                    uses(s),
                ]);
            }
            let active = reply.secrets.iter().filter(|s| s.state == "active").count();
            format!("{t}\n{} secret(s), {active} active\n", reply.secrets.len())
        }
    })
}

pub async fn secret_expire(client: &mut AdminClient, id: &str, output: Output) -> Result<String, Status> {
    let reply = client.expire_enrollment_secret(pb::ExpireEnrollmentSecretRequest { id: id.to_string() }).await?.into_inner();
    if output == Output::Json {
        return Ok(json(&reply));
    }
    let info = reply.info.unwrap_or_default();
    Ok(if reply.already_revoked {
        format!("enrollment secret {} ({:?}) was already revoked; nothing changed\n", info.id, info.name)
    } else {
        format!(
            "enrollment secret {} ({:?}) revoked: enrollments with it are refused from now on; the {} agent(s) it enrolled keep working\n",
            info.id, info.name, info.uses
        )
    })
}

pub async fn token_create(client: &mut AdminClient, name: &str, role: &str, output: Output) -> Result<String, Status> {
    let reply = client.create_token(pb::CreateTokenRequest { name: name.to_string(), role: role.to_string() }).await?.into_inner();
    if output == Output::Json {
        return Ok(json(&reply));
    }
    let info = reply.info.unwrap_or_default();
    Ok(format!(
        "{} token {} for {:?}:\n{}\nIt is shown only now; the collector keeps only its hash.\n",
        info.role, info.id, info.name, reply.token
    ))
}

pub async fn tokens(client: &mut AdminClient, output: Output) -> Result<String, Status> {
    let reply = client.list_tokens(pb::ListTokensRequest {}).await?.into_inner();
    let now = unix_ms(SystemTime::now());
    let state = |t: &pb::TokenInfo| if t.revoked { "revoked" } else { "active" };
    Ok(match output {
        Output::Json => json(&reply.tokens),
        Output::Csv => csv(
            &["id", "name", "role", "created_at", "revoked"],
            reply
                .tokens
                .iter()
                .map(|t| vec![t.id.clone(), t.name.clone(), t.role.clone(), time(t.created_at_unix_ms), t.revoked.to_string()]),
        ),
        Output::Table => {
            let mut t = table(&["ID", "NAME", "ROLE", "CREATED", "STATE"]);
            for k in &reply.tokens {
                t.add_row(vec![k.id.clone(), k.name.clone(), k.role.clone(), relative(k.created_at_unix_ms, now), state(k).into()]);
            }
            let active = reply.tokens.iter().filter(|t| !t.revoked).count();
            format!("{t}\n{} token(s), {active} active\n", reply.tokens.len())
        }
    })
}

pub async fn token_revoke(client: &mut AdminClient, id: &str, output: Output) -> Result<String, Status> {
    let reply = client.revoke_token(pb::RevokeTokenRequest { id: id.to_string() }).await?.into_inner();
    if output == Output::Json {
        return Ok(json(&reply));
    }
    let info = reply.info.unwrap_or_default();
    Ok(if reply.already_revoked {
        format!("token {} ({:?}) was already revoked; nothing changed\n", info.id, info.name)
    } else {
        format!("token {} ({:?}, {}) revoked: every call with it is refused from now on\n", info.id, info.name, info.role)
    })
}

pub async fn audit(client: &mut AdminClient, req: pb::ListAuditRequest, output: Output) -> Result<String, Status> {
    let reply = client.list_audit(req).await?.into_inner();
    let now = unix_ms(SystemTime::now());
    let who = |e: &pb::AuditEntry| format!("{} ({}, {})", e.token_id, e.token_name, e.role);
    let from = |e: &pb::AuditEntry| if e.peer.is_empty() { e.api.clone() } else { format!("{} {}", e.api, e.peer) };
    Ok(match output {
        Output::Json => json(&reply.entries),
        Output::Csv => csv(
            &["at", "token_id", "token_name", "role", "action", "target", "outcome", "detail", "api", "peer"],
            reply.entries.iter().map(|e| {
                vec![
                    time(e.at_unix_ms),
                    e.token_id.clone(),
                    e.token_name.clone(),
                    e.role.clone(),
                    e.action.clone(),
                    e.target.clone(),
                    e.outcome.clone(),
                    e.detail.clone(),
                    e.api.clone(),
                    e.peer.clone(),
                ]
            }),
        ),
        Output::Table => {
            if reply.entries.is_empty() {
                return Ok("no audit entries\n".into());
            }
            let mut t = table(&["WHEN", "WHO", "ACTION", "TARGET", "OUTCOME", "FROM", "DETAIL"]);
            for e in &reply.entries {
                t.add_row(vec![
                    relative(e.at_unix_ms, now),
                    who(e),
                    e.action.clone(),
                    e.target.clone(),
                    e.outcome.clone(),
                    from(e),
                    e.detail.clone(),
                ]);
            }
            format!("{t}\n{} entr{}, newest first\n", reply.entries.len(), if reply.entries.len() == 1 { "y" } else { "ies" })
        }
    })
}

/// Writes the asset register to `out` as its chunks arrive; returns the
/// row count.
pub async fn export(client: &mut AdminClient, filter: &str, format: Format, out: &mut dyn Write) -> Result<usize, Status> {
    let local = |e: std::io::Error| Status::unknown(format!("writing the export: {e}"));
    // A refused filter is answered before the stream starts: nothing is
    // written then.
    let mut stream = client.export_assets(pb::ExportAssetsRequest { filter: filter.to_string() }).await?.into_inner();
    let (mut writer, head) = Writer::start(format);
    out.write_all(&head).map_err(local)?;
    let mut rows = 0;
    while let Some(chunk) = stream.message().await? {
        out.write_all(&writer.rows(&chunk.rows)).map_err(local)?;
        rows += chunk.rows.len();
    }
    out.write_all(&writer.finish()).map_err(local)?;
    out.flush().map_err(local)?;
    Ok(rows)
}
