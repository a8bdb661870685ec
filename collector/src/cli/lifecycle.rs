//! `census agents revoke` and `census backup`: the admin's side of the
//! certificate lifecycle and of backups.

use std::io::Write;
use std::path::Path;

use census_proto::v1 as pb;
use tonic::Status;

use super::Output;
use super::connect::AdminClient;
use super::render::{json, time};
use crate::backup;

pub async fn revoke(client: &mut AdminClient, agent_id: &str, output: Output) -> Result<String, Status> {
    let reply = client.revoke_agent(pb::RevokeAgentRequest { agent_id: agent_id.to_string() }).await?.into_inner();
    if output == Output::Json {
        return Ok(json(&reply));
    }
    let host = reply.host.unwrap_or_default();
    let when = time(host.revoked_at_unix_ms);
    Ok(if reply.already_revoked {
        format!("agent {} ({}) was already revoked{}; nothing changed\n", host.agent_id, host.hostname, at(&when))
    } else {
        format!("agent {} ({}) revoked{}: its next connection or report is refused\n", host.agent_id, host.hostname, at(&when))
    })
}

fn at(when: &str) -> String {
    if when.is_empty() { String::new() } else { format!(" at {when}") }
}

/// Streams a backup of the collector into `file` (already created, mode
/// 0600, at `backup::partial_path(path)`), checks it whole, then renames it
/// to `path`. On any failure the partial file is removed.
pub async fn backup(client: &mut AdminClient, path: &Path, file: std::fs::File, output: Output) -> Result<String, Status> {
    let partial = backup::partial_path(path);
    let received = receive(client, path, file).await;
    let summary = match received {
        Ok(summary) => summary,
        Err(status) => {
            let _ = std::fs::remove_file(&partial);
            return Err(status);
        }
    };
    Ok(match output {
        Output::Json => json(&serde_json::json!({
            "file": path,
            "agents": summary.agents,
            "entries": summary.entries,
            "bytes": summary.bytes,
            "sha256": summary.sha256,
            "taken_at": time(summary.created_at_unix_ms),
        })),
        Output::Table | Output::Csv => format!(
            "backup written to {}: {} host(s), {} record(s), {} bytes, taken at {}, sha256 {}\n\
             It holds the collector's CA private key: keep it as secret as the data directory (the file is mode 0600).\n",
            path.display(),
            summary.agents,
            summary.entries,
            summary.bytes,
            time(summary.created_at_unix_ms),
            summary.sha256
        ),
    })
}

async fn receive(client: &mut AdminClient, path: &Path, file: std::fs::File) -> Result<backup::Summary, Status> {
    let partial = backup::partial_path(path);
    let local = |action: &str, e: std::io::Error| Status::unknown(format!("{action} {}: {e}", partial.display()));
    let mut stream = client.backup(pb::BackupRequest {}).await?.into_inner();
    let mut out = std::io::BufWriter::new(file);
    while let Some(chunk) = stream.message().await? {
        out.write_all(&chunk.data).map_err(|e| local("writing", e))?;
    }
    let file = out.into_inner().map_err(|e| local("writing", e.into_error()))?;
    file.sync_all().map_err(|e| local("syncing", e))?;
    let summary = backup::verify(&partial)
        .map_err(|e| Status::data_loss(format!("the backup arrived incomplete or damaged; take it again ({e})")))?;
    std::fs::rename(&partial, path).map_err(|e| Status::unknown(format!("renaming {} to {}: {e}", partial.display(), path.display())))?;
    Ok(summary)
}

/// `census-collector backup` while the collector serves on `data_dir`
/// (sled admits one process, so the store cannot be opened beside it): the
/// backup is asked of the running collector over its admin API, as `census
/// backup` does, trusting the data directory's own CA. `admin_listen` is
/// the collector's `admin_api.listen`; an unspecified address (0.0.0.0)
/// is reached on loopback, checked against the server certificate's first
/// name. Returns the file written and what it holds.
pub async fn backup_through_running(
    data_dir: &Path,
    out: &Path,
    token: crate::secrets::Secret,
    admin_listen: std::net::SocketAddr,
) -> Result<(std::path::PathBuf, backup::Summary), (u8, String)> {
    let pki = data_dir.join("pki");
    let mut address = admin_listen;
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let names = crate::pki::server_names(&pki).map_err(|e| (super::exit::FAILURE, e.to_string()))?;
    let address_named = names.iter().any(|n| n.parse::<std::net::IpAddr>().is_ok_and(|ip| ip == address.ip()));
    let target = super::Target {
        server: format!("https://{address}"),
        token,
        ca: crate::pki::Pki::ca_path(&pki),
        tls_name: if address_named { None } else { names.first().cloned() },
    };
    let mut client =
        super::connect::admin_client(&target).await.map_err(|e| (super::exit::UNAVAILABLE, format!("the running collector: {e:#}")))?;
    let path = backup::output_path(out, std::time::SystemTime::now());
    let partial = backup::partial_path(&path);
    let file = backup::create_private(&partial).map_err(|e| (super::exit::USAGE, e.to_string()))?;
    match receive(&mut client, &path, file).await {
        Ok(summary) => Ok((path, summary)),
        Err(status) => {
            let _ = std::fs::remove_file(&partial);
            Err((super::connect::exit_code(&status), super::connect::describe(&status)))
        }
    }
}
