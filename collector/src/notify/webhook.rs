//! The webhook sink: every notification is one `POST` of a JSON document
//! (schema version "1", documented in `docs/notifications.md`) to the
//! configured URL.
//!
//! Headers: `X-Census-Idempotency-Key` (the notification's key, the same on
//! every retry, so a receiver can drop duplicates), `X-Census-Timestamp`
//! (unix seconds of this attempt) and, when a `secret_file` is configured,
//! `X-Census-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! `"<timestamp>.<body>"` under that secret. Signing the timestamp with the
//! body lets a receiver refuse replays of an old request.
//!
//! Invariants: the body is serialized once and the signature is computed
//! over exactly the bytes sent; the payload depends only on the
//! notification (retries send the same document); the secret is never
//! logged nor printed by Debug.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::SinkError;
use super::http::{Api, ApiRequest, Auth, Secret};
use crate::alert::engine::{Notification, NotifiedAlert};
use crate::clock;

/// `kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where notifications are posted (http or https).
    pub url: String,
    /// The HMAC key; without it, requests are not signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Webhook {
    api: Api,
    secret: Option<Secret>,
}

/// The payload's schema version; bumped on any incompatible change.
pub const PAYLOAD_VERSION: &str = "1";

impl Webhook {
    pub fn new(config: &WebhookConfig, http: reqwest::Client) -> Result<Webhook, SinkError> {
        let secret = config.secret_file.as_deref().map(Secret::read).transpose()?;
        let mut api = Api::new(http, &config.url, Auth::None)?;
        if let Some(secret) = &secret {
            api = api.redacting(secret.clone());
        }
        Ok(Webhook { api, secret })
    }

    pub async fn push(&self, n: &Notification) -> Result<(), SinkError> {
        let timestamp = clock::unix_ms(SystemTime::now()) / 1_000;
        let request = request(n, self.secret.as_ref(), timestamp);
        self.api.send("webhook: posting the notification", &request).await.map(drop)
    }
}

/// The whole request for one attempt at `timestamp` (unix seconds).
pub fn request(n: &Notification, secret: Option<&Secret>, timestamp: i64) -> ApiRequest {
    let body = serde_json::to_vec(&Payload::of(n)).expect("the payload is plain strings, numbers and maps");
    let mut request = ApiRequest::new(reqwest::Method::POST, "")
        .header("X-Census-Idempotency-Key", n.idempotency_key.as_str())
        .header("X-Census-Timestamp", timestamp.to_string());
    if let Some(secret) = secret {
        request = request.header("X-Census-Signature", signature(secret.expose().as_bytes(), timestamp, &body));
    }
    request.body = Some(body);
    request
}

/// `sha256=<lower-case hex HMAC-SHA256(key, "<timestamp>.<body>")>`.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The document posted: version "1". Field names are a contract with
/// receivers; add fields freely, rename or remove only with a new version.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    version: &'static str,
    idempotency_key: &'a str,
    transition: &'static str,
    rule: &'a str,
    severity: &'static str,
    route_key: &'a BTreeMap<String, String>,
    summary: &'a str,
    runbook_url: &'a str,
    alerts: Vec<PayloadAlert<'a>>,
}

#[derive(Debug, Serialize)]
struct PayloadAlert<'a> {
    idempotency_key: &'a str,
    fingerprint: &'a str,
    sequence: u64,
    host_id: &'a str,
    hostname: &'a str,
    labels: &'a BTreeMap<String, String>,
    value: &'a str,
    threshold: &'a str,
    summary: &'a str,
    description: &'a str,
    starts_at: String,
    ends_at: Option<String>,
    acknowledged_by: Option<&'a str>,
}

impl<'a> Payload<'a> {
    fn of(n: &'a Notification) -> Payload<'a> {
        Payload {
            version: PAYLOAD_VERSION,
            idempotency_key: &n.idempotency_key,
            transition: n.transition.as_str(),
            rule: &n.rule,
            severity: n.severity.as_str(),
            route_key: &n.route_key,
            summary: &n.summary,
            runbook_url: &n.runbook_url,
            alerts: n.alerts.iter().map(PayloadAlert::of).collect(),
        }
    }
}

impl<'a> PayloadAlert<'a> {
    fn of(a: &'a NotifiedAlert) -> PayloadAlert<'a> {
        PayloadAlert {
            idempotency_key: &a.idempotency_key,
            fingerprint: a.fingerprint.as_str(),
            sequence: a.sequence,
            host_id: &a.host_id,
            hostname: &a.hostname,
            labels: &a.labels,
            value: &a.value,
            threshold: &a.threshold,
            summary: &a.summary,
            description: &a.description,
            starts_at: clock::rfc3339(a.starts_at_unix_ms),
            ends_at: a.ends_at_unix_ms.map(clock::rfc3339),
            acknowledged_by: a.acknowledged_by.as_deref(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::alert::book::AlertFingerprint;
    use crate::alert::engine::Transition;
    use crate::alert::rules::Severity;
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    /// A resolved notification of one alert, shared by the push sinks' tests.
    pub(crate) fn notification() -> Notification {
        let labels: BTreeMap<String, String> = [("alertname", "DiskFull"), ("host", "web1"), ("severity", "critical"), ("mount", "/var")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let fingerprint = AlertFingerprint::of("DiskFull", "h-1", &BTreeMap::new());
        Notification {
            idempotency_key: "DiskFull/resolved/7".into(),
            transition: Transition::Resolved,
            rule: "DiskFull".into(),
            severity: Severity::Critical,
            route_key: BTreeMap::new(),
            summary: "disk /var full on web1".into(),
            runbook_url: "https://runbooks.example/disk".into(),
            alerts: vec![NotifiedAlert {
                idempotency_key: format!("{fingerprint}:resolved:7"),
                fingerprint,
                sequence: 7,
                host_id: "h-1".into(),
                hostname: "web1".into(),
                labels,
                value: "97%".into(),
                threshold: "90%".into(),
                summary: "disk /var full on web1".into(),
                description: "/var is 97% full".into(),
                starts_at_unix_ms: 1_764_000_000_000,
                ends_at_unix_ms: Some(1_764_000_600_000),
                acknowledged_by: None,
            }],
        }
    }

    fn http() -> reqwest::Client {
        super::super::http::client(std::time::Duration::from_secs(5), None).expect("client")
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Oracle: printf '%s' '1764000000.{"a":1}' | openssl dgst -sha256 -hmac key
        // (python3's hmac module gives the same digest)
        assert_eq!(
            signature(b"key", 1_764_000_000, br#"{"a":1}"#),
            "sha256=66ff00156971bc93c586dacc7bf22d6f5f4d9fcaede23c166be2b3ec3215f68a"
        );
    }

    #[test]
    fn the_payload_follows_schema_version_1() {
        let n = notification();
        let request = request(&n, None, 1_764_000_700);
        assert_eq!(request.method, reqwest::Method::POST);
        assert_eq!(request.path, "");
        let fingerprint = n.alerts[0].fingerprint.as_str();
        assert_eq!(
            request.body_json(),
            json!({
                "version": "1",
                "idempotency_key": "DiskFull/resolved/7",
                "transition": "resolved",
                "rule": "DiskFull",
                "severity": "critical",
                "route_key": {},
                "summary": "disk /var full on web1",
                "runbook_url": "https://runbooks.example/disk",
                "alerts": [{
                    "idempotency_key": format!("{fingerprint}:resolved:7"),
                    "fingerprint": fingerprint,
                    "sequence": 7,
                    "host_id": "h-1",
                    "hostname": "web1",
                    "labels": {"alertname": "DiskFull", "host": "web1", "severity": "critical", "mount": "/var"},
                    "value": "97%",
                    "threshold": "90%",
                    "summary": "disk /var full on web1",
                    "description": "/var is 97% full",
                    "starts_at": "2025-11-24T16:00:00.000Z",
                    "ends_at": "2025-11-24T16:10:00.000Z",
                    "acknowledged_by": null,
                }],
            })
        );
        let names: Vec<&str> = request.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["X-Census-Idempotency-Key", "X-Census-Timestamp"], "no signature without a secret");
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_exact_body() {
        let key = Secret::from("key");
        let request = request(&notification(), Some(&key), 1_764_000_700);
        let body = request.body.as_deref().expect("a body");
        let header = |name: &str| request.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(header("X-Census-Timestamp").as_deref(), Some("1764000700"));
        assert_eq!(header("X-Census-Signature"), Some(signature(b"key", 1_764_000_700, body)));
    }

    #[tokio::test]
    async fn push_posts_the_signed_payload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("hook.key");
        std::fs::write(&secret_file, "hook-s3cret\n").expect("write secret");
        let server = TestServer::start(vec![Reply::empty(204)]).await;
        let config = WebhookConfig { url: format!("{}/hooks/census", server.url()), secret_file: Some(secret_file) };
        let hook = Webhook::new(&config, http()).expect("valid config");
        assert!(!format!("{hook:?}").contains("hook-s3cret"));

        hook.push(&notification()).await.expect("204 is success");
        let seen = &server.requests()[0];
        assert_eq!(seen.line(), "POST /hooks/census");
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert_eq!(seen.header("x-census-idempotency-key"), Some("DiskFull/resolved/7"));
        let timestamp: i64 = seen.header("x-census-timestamp").expect("timestamp").parse().expect("unix seconds");
        assert_eq!(seen.header("x-census-signature"), Some(signature(b"hook-s3cret", timestamp, &seen.body).as_str()));
        assert_eq!(seen.json()["version"], "1");
    }

    #[tokio::test]
    async fn push_errors_are_classified() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("hook.key");
        std::fs::write(&secret_file, "hook-s3cret").expect("write secret");
        assert_error_classes("hook-s3cret", |url| {
            let config = WebhookConfig { url, secret_file: Some(secret_file.clone()) };
            async move { Webhook::new(&config, http())?.push(&notification()).await }
        })
        .await;
    }
}
