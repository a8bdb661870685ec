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
