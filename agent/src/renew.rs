//! Certificate renewal: once less than `renew_before` of its certificate's
//! lifetime is left, the agent generates a new key here and asks the
//! collector for a certificate for it, over its current mutual-TLS
//! identity; no enrollment secret is involved. The new key and certificate
//! replace the old ones atomically (`Enrolled::save_renewed`), then the
//! run loop switches its channel to them.
//!
//! The collector keeps the old certificate working until the agent first
//! connects with the new one, so an answer lost on the way costs nothing:
//! the next attempt asks again with the old certificate.

use std::path::Path;

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::config::Share;
use crate::state::{Enrolled, PrivateKeyPem};
use crate::transport::error_chain;

/// When to renew a certificate valid from `not_before` to `not_after`
/// (Unix ms): once less than `share` of its lifetime is left.
pub fn renew_at((not_before, not_after): (i64, i64), share: Share) -> i64 {
    not_after.saturating_sub(share.of(not_after.saturating_sub(not_before).max(0)))
}

/// Why a renewal did not happen.
#[derive(Debug)]
pub enum RenewError {
    /// The collector refuses this agent's identity (revoked, or the
    /// certificate is unknown to it): asking again soon will not help.
    Refused(String),
    /// The collector predates renewal (UNIMPLEMENTED).
    Unsupported,
    /// Anything else; worth retrying with backoff.
    Failed(String),
}

impl std::fmt::Display for RenewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenewError::Refused(m) => write!(f, "the collector refuses this agent: {m}"),
            RenewError::Unsupported => f.write_str("the collector does not renew certificates (it is older than this agent)"),
            RenewError::Failed(m) => f.write_str(m),
        }
    }
}

/// Renews the client certificate of `state` through `client` (a channel
/// with the current certificate) and saves the new key and certificate in
/// `dir`. Returns the state to use from now on.
pub async fn renew(client: &mut AgentServiceClient<Channel>, state: &Enrolled, dir: &Path) -> Result<Enrolled, RenewError> {
    let failed = |e: crate::Error| RenewError::Failed(e.to_string());
    let (key, csr) = crate::enroll::key_and_csr(&state.agent_id).map_err(failed)?;
    let response = client
        .renew_certificate(pb::RenewCertificateRequest { agent_id: state.agent_id.clone(), csr_pem: csr })
        .await
        .map_err(|status| match status.code() {
            Code::Unauthenticated | Code::PermissionDenied => RenewError::Refused(status.message().to_string()),
            Code::Unimplemented => RenewError::Unsupported,
            _ => RenewError::Failed(error_chain(&status)),
        })?
        .into_inner();
    // Never put in place a certificate that is not for this key: the old
    // key is gone once the new pair is saved.
    if certificate_public_key(&response.certificate_pem).map_err(failed)? != key.public_key_raw() {
        return Err(RenewError::Failed("the collector returned a certificate for another key; keeping the current one".into()));
    }
    let renewed = Enrolled { cert_pem: response.certificate_pem, key_pem: PrivateKeyPem(key.serialize_pem()), ..state.clone() };
    renewed.save_renewed(dir).map_err(failed)?;
    Ok(renewed)
}

/// The raw public key a PEM certificate certifies.
fn certificate_public_key(pem: &str) -> crate::Result<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| crate::Error::Certificate(format!("the renewed certificate is not PEM: {e}")))?;
    let cert = pem.parse_x509().map_err(|e| crate::Error::Certificate(format!("the renewed certificate does not parse: {e}")))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_comes_when_the_share_is_left() {
        let share = Share::percent(33).expect("33%");
        assert_eq!(renew_at((0, 90_000), share), 60_300);
        assert_eq!(renew_at((1_000, 1_000), share), 1_000, "an empty lifetime: renew at once");
        assert_eq!(renew_at((5_000, 1_000), share), 1_000, "a backwards validity: renew at once");
    }

    #[test]
    fn a_certificate_names_the_key_it_certifies() {
        let key = rcgen::KeyPair::generate().expect("key");
        let other = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::default().self_signed(&key).expect("cert").pem();
        assert_eq!(certificate_public_key(&cert).expect("parse"), key.public_key_raw());
        assert_ne!(certificate_public_key(&cert).expect("parse"), other.public_key_raw());
        assert!(certificate_public_key("garbage").is_err());
    }
}
