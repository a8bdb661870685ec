//! The HTTP client every HTTP sink shares: rustls (ring) with the system's
//! roots plus an optional extra CA, a per-request timeout, no redirects (a
//! redirect from a ticketing API is a misconfiguration to report, not to
//! follow with credentials), and the status classification of `SinkError`.

use std::path::Path;
use std::time::Duration;

use super::SinkError;

/// Bodies read back from sinks are bounded: an answer larger than this is
/// an error, not a reason to buffer without limit.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client, SinkError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("census-collector/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| SinkError::permanent(format!("reading CA file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| SinkError::permanent(format!("CA file {} holds no valid PEM certificate: {e}", path.display())))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| SinkError::permanent(format!("building the HTTP client: {e}")))
}

/// Sends a request and returns the response body when the status is 2xx;
/// otherwise a `SinkError` naming `what`, the status and the start of the
/// body, retryable for 408, 429 and 5xx.
pub async fn send(what: &str, request: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), SinkError> {
    let response = request.send().await.map_err(|e| SinkError::retryable(format!("{what}: {}", describe(&e))))?;
    let status = response.status();
    let body = read_bounded(what, response).await?;
    if status.is_success() {
        return Ok((status, body));
    }
    let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
    let message = format!("{what}: HTTP {status}: {}", excerpt.trim());
    let retryable =
        status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    Err(SinkError { retryable, message })
}

async fn read_bounded(what: &str, mut response: reqwest::Response) -> Result<Vec<u8>, SinkError> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| SinkError::retryable(format!("{what}: reading the answer: {}", describe(&e))))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(SinkError::retryable(format!("{what}: answer larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's Display stops at the outermost error ("error sending
/// request"); operators need the cause (connection refused, timeout, TLS).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
