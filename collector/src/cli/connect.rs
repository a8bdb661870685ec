//! Connecting the CLI to the admin API: TLS pinned to the collector's CA,
//! and the bearer token attached to every call.

use census_proto::v1::admin_service_client::AdminServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::{Target, exit};

#[derive(Clone)]
pub struct BearerToken(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type AdminClient = AdminServiceClient<InterceptedService<Channel, BearerToken>>;

/// Connects (eagerly, so an unreachable collector is reported at once).
pub async fn admin_client(target: &Target) -> anyhow::Result<AdminClient> {
    use anyhow::Context;
    let ca = std::fs::read(&target.ca).with_context(|| format!("reading CA certificate {}", target.ca.display()))?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some(name) = &target.tls_name {
        tls = tls.domain_name(name.clone());
    }
    let endpoint = Endpoint::from_shared(target.server.clone())
        .with_context(|| format!("invalid collector address {:?}", target.server))?
        .tls_config(tls)
        .context("TLS configuration")?
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60));
    let channel = endpoint.connect().await.with_context(|| format!("cannot reach the collector at {}", target.server))?;
    let value: MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {}", target.token.expose()).parse().context("the admin token contains characters not allowed in a header")?;
    Ok(AdminServiceClient::with_interceptor(channel, BearerToken(value)))
}

/// A one-line, human-readable description of a refused call.
pub fn describe(status: &Status) -> String {
    let what = match status.code() {
        Code::Unauthenticated => "authentication failed",
        Code::PermissionDenied => "permission denied",
        Code::NotFound => "not found",
        Code::InvalidArgument => "invalid request",
        Code::FailedPrecondition => "ambiguous or not possible now",
        Code::Unavailable => "collector unavailable",
        _ => "error",
    };
    format!("{what}: {}", status.message())
}

pub fn exit_code(status: &Status) -> u8 {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => exit::NOPERM,
        Code::Unavailable => exit::UNAVAILABLE,
        Code::InvalidArgument => exit::USAGE,
        _ => exit::FAILURE,
    }
}
