//! Simulated agents' identities: enrollment over the real API (a fresh key
//! and CSR per host, the enrollment secret, then the issued certificate) and
//! the optional `--state` file that keeps them between runs, so a second run
//! measures ingest, not enrollment.
//!
//! The state file is `<state>/agents.jsonl`, one host per line with its
//! agent id, certificate, key and next report seq: seqs must keep growing
//! across runs, or the collector acknowledges the reports as duplicates
//! without storing them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::Semaphore;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// An enrolled simulated host.
#[derive(Debug, Clone)]
pub struct SimAgent {
    pub index: usize,
    pub agent_id: String,
    pub hostname: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The seq of the next report this host creates.
    pub next_seq: u64,
}

/// Where and how simulated hosts connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub ca_pem: String,
    /// The name the collector's certificate is checked against.
    pub domain: String,
}

impl Target {
    /// An endpoint with the collector's CA pinned and, after enrollment,
    /// the host's client certificate (mutual TLS).
    pub fn endpoint(&self, identity: Option<Identity>) -> Result<Endpoint> {
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem)).domain_name(&self.domain);
        if let Some(id) = identity {
            tls = tls.identity(id);
        }
        Ok(Endpoint::from_shared(self.url.clone())
            .context("server url")?
            .tls_config(tls)
            .context("tls config")?
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(60)))
    }
}

pub fn hostname(index: usize) -> String {
    format!("lg-{index:06}")
}

/// Enrolls one host: key and CSR made here, the private key never sent.
async fn enroll(target: &Target, secret: &str, index: usize) -> Result<SimAgent> {
    let hostname = hostname(index);
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::default().serialize_request(&key)?.pem()?;
    let channel = target.endpoint(None)?.connect().await.context("connecting for enrollment")?;
    let response = AgentServiceClient::new(channel)
        .enroll(pb::EnrollRequest {
            enrollment_secret: secret.to_string(),
            csr_pem: csr,
            identity: Some(pb::HostIdentity {
                host_uuid: format!("loadgen-{hostname}"),
                hostname: hostname.clone(),
                host_uuid_source: "machine-id".into(),
                ..Default::default()
            }),
            agent_version: crate::AGENT_VERSION.into(),
        })
        .await
        .map_err(|s| anyhow!("enrolling {hostname}: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    Ok(SimAgent {
        index,
        agent_id: response.agent_id,
        hostname,
        cert_pem: response.certificate_pem,
        key_pem: key.serialize_pem(),
        next_seq: 1,
    })
}

/// Hosts 0..count: those in the state file, plus new enrollments (at most
/// `parallel` at once) for the rest.
pub async fn enroll_fleet(target: &Target, secret: &str, count: usize, parallel: usize, mut known: Vec<SimAgent>) -> Result<Vec<SimAgent>> {
    known.retain(|a| a.index < count);
    let have: std::collections::HashSet<usize> = known.iter().map(|a| a.index).collect();
    let bound = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for index in (0..count).filter(|i| !have.contains(i)) {
        let (target, secret, bound) = (target.clone(), secret.to_string(), bound.clone());
        set.spawn(async move {
            let _slot = bound.acquire_owned().await.expect("the enrollment semaphore is never closed");
            enroll(&target, &secret, index).await
        });
    }
    while let Some(done) = set.join_next().await {
        known.push(done.context("enrollment task")??);
    }
    known.sort_by_key(|a| a.index);
    Ok(known)
}

fn state_file(dir: &Path) -> std::path::PathBuf {
    dir.join("agents.jsonl")
}

/// The hosts remembered in `dir`, none if it has no state file yet.
pub fn load(dir: &Path) -> Result<Vec<SimAgent>> {
    let path = state_file(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut agents = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{} line {}", path.display(), n + 1))?;
        let s = |k: &str| v[k].as_str().map(str::to_string).ok_or_else(|| anyhow!("{} line {}: no string {k}", path.display(), n + 1));
        let u = |k: &str| v[k].as_u64().ok_or_else(|| anyhow!("{} line {}: no number {k}", path.display(), n + 1));
        agents.push(SimAgent {
            index: usize::try_from(u("index")?)?,
            agent_id: s("agent_id")?,
            hostname: s("hostname")?,
            cert_pem: s("cert_pem")?,
            key_pem: s("key_pem")?,
            next_seq: u("next_seq")?,
        });
    }
    Ok(agents)
}

/// Writes every host (with its next seq) to `dir`, replacing the file whole.
pub fn save(dir: &Path, agents: &[SimAgent]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = String::new();
    for a in agents {
        let line = serde_json::json!({
            "index": a.index, "agent_id": a.agent_id, "hostname": a.hostname,
            "cert_pem": a.cert_pem, "key_pem": a.key_pem, "next_seq": a.next_seq,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let path = state_file(dir);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming {}", tmp.display()))
}
