//! Enrollment: generate a key pair locally, send a CSR with the enrollment
//! secret, store what the collector returns. The private key never leaves
//! this host.

use std::path::Path;
use std::time::Duration;

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::error::{Error, Result};
use crate::state::{Enrolled, PrivateKeyPem};
use crate::transport;

/// The enrollment secret; Debug prints `***`.
#[derive(Clone)]
pub struct EnrollmentSecret(pub String);

impl std::fmt::Debug for EnrollmentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A new key pair, generated here, and a CSR for it. The collector takes
/// only the public key from the CSR; the common name is informative.
pub(crate) fn key_and_csr(common_name: &str) -> Result<(KeyPair, String)> {
    let key = KeyPair::generate().map_err(|e| Error::Certificate(format!("generating the agent key: {e}")))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).and_then(|c| c.pem()).map_err(|e| Error::Certificate(format!("building the CSR: {e}")))?;
    Ok((key, csr))
}

/// Enrolls with the collector at `server` and saves the result in `state_dir`.
pub async fn enroll(
    server: &str,
    ca_pem: &str,
    secret: &EnrollmentSecret,
    root: &Path,
    state_dir: &Path,
    timeout: Duration,
) -> Result<Enrolled> {
    let identity = crate::wire::identity(&crate::collect::identity::collect(root)?).map_err(Error::IdentityUnknown)?;
    let (key, csr) = key_and_csr(&identity.hostname)?;

    let channel = transport::enrollment_channel(server, ca_pem, timeout).await?;
    let mut client = AgentServiceClient::new(channel);
    let response = client
        .enroll(pb::EnrollRequest {
            enrollment_secret: secret.0.clone(),
            csr_pem: csr,
            identity: Some(identity),
            agent_version: crate::VERSION.to_string(),
        })
        .await
        .map_err(|s| Error::Collector(format!("enrollment refused: {}", s.message())))?
        .into_inner();
    let state = Enrolled {
        agent_id: response.agent_id,
        server: server.to_string(),
        enrolled_at_unix_ms: crate::now_unix_ms(),
        ca_pem: if response.ca_certificate_pem.is_empty() { ca_pem.to_string() } else { response.ca_certificate_pem },
        cert_pem: response.certificate_pem,
        key_pem: PrivateKeyPem(key.serialize_pem()),
    };
    state.save(state_dir)?;
    Ok(state)
}
