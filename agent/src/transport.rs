//! gRPC channels to the collector: TLS pinned to the collector's CA, with
//! the agent's client certificate once enrolled (mutual TLS).

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{Error, Result};
use crate::state::Enrolled;

fn endpoint(server: &str, ca_pem: &str, identity: Option<Identity>, timeout: Duration) -> Result<Endpoint> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    Ok(Endpoint::from_shared(server.to_string())
        .map_err(|e| Error::Config(format!("invalid collector URL {server:?}: {e}")))?
        .tls_config(tls)
        .map_err(|e| Error::Certificate(format!("TLS configuration: {e}")))?
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .http2_keep_alive_interval(Duration::from_secs(60))
        .keep_alive_while_idle(false))
}

/// A channel for enrollment: server authenticated by the pinned CA, no client certificate.
pub async fn enrollment_channel(server: &str, ca_pem: &str, timeout: Duration) -> Result<Channel> {
    endpoint(server, ca_pem, None, timeout)?
        .connect()
        .await
        .map_err(|e| Error::Collector(format!("cannot reach the collector at {server}: {}", error_chain(&e))))
}

/// A lazily connecting mutual-TLS channel; it reconnects by itself after
/// the collector restarts.
pub fn report_channel(state: &Enrolled, server: &str, timeout: Duration) -> Result<Channel> {
    let identity = Identity::from_pem(&state.cert_pem, &state.key_pem.0);
    Ok(endpoint(server, &state.ca_pem, Some(identity), timeout)?.connect_lazy())
}

/// "outer: inner: innermost", so TLS alerts buried in a transport error are visible.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
