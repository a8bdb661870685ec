//! The Alertmanager sink: every notification is one `POST <url>/api/v2/alerts`
//! carrying one Alertmanager alert per alert of the notification, so
//! Alertmanager's own routing, grouping, silences and receivers take over
//! (API: https://prometheus.io/docs/alerting/latest/clients/ and the v2
//! OpenAPI spec, `postableAlerts`).
//!
//! Mapping: labels are the alert's labels (names made valid for
//! Alertmanager, `[a-zA-Z_][a-zA-Z0-9_]*`); annotations carry the summary,
//! description, runbook URL, value, threshold and the Census fingerprint;
//! `startsAt` is when the alert started firing. A resolved alert carries
//! `endsAt` (its resolution time), which ends it in Alertmanager; a firing
//! or updated one carries `endsAt = now + 3 × refresh_interval` (as
//! Prometheus does), so Alertmanager ends it if Census stops talking, and a
//! late refresh can never keep a resolved alert open for long: the collector re-sends
//! the firing alerts routed to the sink every `refresh_interval`
//! (`server.rs`, outside the outbox: a missed refresh is repaired by the
//! next one).
//!
//! Invariants: labels identify an alert in Alertmanager, so the same Census
//! alert always maps to the same label set (sanitizing is deterministic and
//! never lets a sanitized name replace a label that was valid); the bearer
//! token or password is never logged nor printed by Debug.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::SinkError;
use super::http::{Api, ApiRequest, Auth, Secret, SecretHeader};
use crate::alert::engine::{Notification, NotifiedAlert, Transition};
use crate::alert::rules::is_label_name;
use crate::clock;

/// `kind = "alertmanager"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL (`http://alertmanager:9093`); alerts go to
    /// `<url>/api/v2/alerts`.
    pub url: String,
    /// Sent as each alert's `generatorURL` (a link back to Census).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// `Authorization: Bearer <token>` (a proxy in front of Alertmanager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// Basic auth user; needs `password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// How often the firing alerts routed to this sink are sent again, as
    /// Prometheus does, so Alertmanager keeps them active (it ends an alert
    /// without `endsAt` after its `resolve_timeout`, 5m by default). Keep it
    /// well below `resolve_timeout`.
    #[serde(default = "default_refresh_interval", with = "crate::config::humantime_serde")]
    pub refresh_interval: std::time::Duration,
}

fn default_refresh_interval() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

#[derive(Debug)]
pub struct Alertmanager {
    api: Api,
    generator_url: Option<String>,
    /// How long a firing alert stays active in Alertmanager without being
    /// sent again.
    firing_valid_for: std::time::Duration,
}

impl Alertmanager {
    pub fn new(config: &AlertmanagerConfig, http: reqwest::Client) -> Result<Alertmanager, SinkError> {
        Ok(Alertmanager {
            api: Api::new(http, &config.url, auth(config)?)?,
            generator_url: config.generator_url.clone(),
            firing_valid_for: config.refresh_interval.saturating_mul(3),
        })
    }

    pub async fn push(&self, n: &Notification) -> Result<(), SinkError> {
        let request = request(n, self.generator_url.as_deref(), clock::unix_ms(SystemTime::now()), self.firing_valid_for);
        self.api.send("alertmanager: posting alerts", &request).await.map(drop)
    }
}

fn auth(config: &AlertmanagerConfig) -> Result<Auth, SinkError> {
    match (&config.bearer_token_file, &config.username, &config.password_file) {
        (None, None, None) => Ok(Auth::None),
        (Some(token), None, None) => Ok(Auth::Headers(vec![SecretHeader::new("Authorization", "Bearer ", Secret::read(token)?)])),
        (None, Some(username), Some(password)) => Ok(Auth::Basic { username: username.clone(), password: Secret::read(password)? }),
        (None, _, _) => Err(SinkError::permanent("alertmanager: username and password_file go together")),
        (Some(_), _, _) => {
            Err(SinkError::permanent("alertmanager: bearer_token_file and basic auth (username, password_file) exclude each other"))
        }
    }
}

/// The request for one notification; `now_unix_ms` ends a resolved alert
/// that lacks its own end time, and a firing one `valid_for` from now.
pub fn request(n: &Notification, generator_url: Option<&str>, now_unix_ms: i64, valid_for: std::time::Duration) -> ApiRequest {
    let alerts: Vec<Value> = n.alerts.iter().map(|a| alert(n, a, generator_url, now_unix_ms, valid_for)).collect();
    ApiRequest::post("/api/v2/alerts", &Value::Array(alerts))
}

fn alert(n: &Notification, a: &NotifiedAlert, generator_url: Option<&str>, now_unix_ms: i64, valid_for: std::time::Duration) -> Value {
    let mut alert = json!({
        "labels": labels(&a.labels),
        "annotations": annotations(a, &n.runbook_url),
        "startsAt": clock::rfc3339(a.starts_at_unix_ms),
    });
    let ends_at = match n.transition {
        Transition::Resolved => a.ends_at_unix_ms.unwrap_or(now_unix_ms),
        Transition::Firing | Transition::Updated => now_unix_ms.saturating_add(i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX)),
    };
    alert["endsAt"] = clock::rfc3339(ends_at).into();
    if let Some(url) = generator_url {
        alert["generatorURL"] = url.into();
    }
    alert
}

/// Valid names first, so a sanitized name (`a-b` → `a_b`) never replaces
/// the value of a label that already had that name.
fn labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels.iter().filter(|(k, _)| is_label_name(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in labels.iter().filter(|(k, _)| !is_label_name(k)) {
        out.entry(label_name(k)).or_insert_with(|| v.clone());
    }
    out
}

/// Every character outside `[a-zA-Z0-9_]` becomes `_`; a leading digit (or
/// an empty name) gets a `_` in front.
pub fn label_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// Empty texts are left out: Alertmanager templates test for presence.
fn annotations(a: &NotifiedAlert, runbook_url: &str) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let texts = [
        ("summary", a.summary.as_str()),
        ("description", a.description.as_str()),
        ("runbook_url", runbook_url),
        ("value", a.value.as_str()),
        ("threshold", a.threshold.as_str()),
        ("census_fingerprint", a.fingerprint.as_str()),
        ("acknowledged_by", a.acknowledged_by.as_deref().unwrap_or("")),
    ];
    for (name, text) in texts.into_iter().filter(|(_, t)| !t.is_empty()) {
        out.insert(name, text.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};
    use crate::notify::webhook::tests::notification;

    fn http() -> reqwest::Client {
        super::super::http::client(std::time::Duration::from_secs(5), None).expect("client")
    }

    fn config(url: &str) -> AlertmanagerConfig {
        AlertmanagerConfig {
            url: url.into(),
            generator_url: None,
            bearer_token_file: None,
            username: None,
            password_file: None,
            refresh_interval: std::time::Duration::from_secs(60),
        }
    }

    #[test]
    fn label_names_are_made_valid() {
        assert_eq!(label_name("mount"), "mount");
        assert_eq!(label_name("k8s.io/zone"), "k8s_io_zone");
        assert_eq!(label_name("9lives"), "_9lives");
        assert_eq!(label_name(""), "_");
        let given: BTreeMap<String, String> =
            [("a-b", "sanitized"), ("a_b", "valid"), ("x.y", "1")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let out = labels(&given);
        assert_eq!(out.get("a_b").map(String::as_str), Some("valid"));
        assert_eq!(out.get("x_y").map(String::as_str), Some("1"));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_resolved_alert_carries_its_end_time() {
        let n = notification();
        let request = request(&n, Some("https://census.example/alerts"), 1_764_000_900_000, std::time::Duration::from_secs(180));
        assert_eq!(request.method, reqwest::Method::POST);
        assert_eq!(request.path, "/api/v2/alerts");
        assert_eq!(
            request.body_json(),
            json!([{
                "labels": {"alertname": "DiskFull", "host": "web1", "severity": "critical", "mount": "/var"},
                "annotations": {
                    "summary": "disk /var full on web1",
                    "description": "/var is 97% full",
                    "runbook_url": "https://runbooks.example/disk",
                    "value": "97%",
                    "threshold": "90%",
                    "census_fingerprint": n.alerts[0].fingerprint.as_str(),
                },
                "startsAt": "2025-11-24T16:00:00.000Z",
                "endsAt": "2025-11-24T16:10:00.000Z",
                "generatorURL": "https://census.example/alerts",
            }])
        );
    }

    #[test]
    fn firing_and_updated_alerts_stay_valid_for_three_refreshes() {
        let mut n = notification();
        for transition in [Transition::Firing, Transition::Updated] {
            n.transition = transition;
            n.alerts[0].acknowledged_by = Some("ops@example".into());
            let body = request(&n, None, 1_764_000_000_000, std::time::Duration::from_secs(180)).body_json();
            assert_eq!(body[0]["endsAt"], "2025-11-24T16:03:00.000Z", "{transition:?}: {body}");
            assert!(body[0].get("generatorURL").is_none());
            assert_eq!(body[0]["annotations"]["acknowledged_by"], "ops@example");
        }
        n.transition = Transition::Resolved;
        n.alerts[0].ends_at_unix_ms = None;
        assert_eq!(
            request(&n, None, 1_764_000_000_000, std::time::Duration::from_secs(180)).body_json()[0]["endsAt"],
            "2025-11-24T16:00:00.000Z"
        );
    }

    #[tokio::test]
    async fn push_posts_with_bearer_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("am.token");
        std::fs::write(&token, "am-s3cret").expect("write token");
        let server = TestServer::start(vec![Reply::empty(200)]).await;
        let am = Alertmanager::new(&AlertmanagerConfig { bearer_token_file: Some(token), ..config(server.url()) }, http()).expect("valid");
        assert!(!format!("{am:?}").contains("am-s3cret"));
        am.push(&notification()).await.expect("200 is success");
        let seen = &server.requests()[0];
        assert_eq!(seen.line(), "POST /api/v2/alerts");
        assert_eq!(seen.header("authorization"), Some("Bearer am-s3cret"));
        assert_eq!(seen.json()[0]["labels"]["alertname"], "DiskFull");
    }

    #[tokio::test]
    async fn push_uses_basic_auth_and_classifies_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let password = dir.path().join("am.password");
        std::fs::write(&password, "am-pa55").expect("write password");
        let basic =
            |url: &str| AlertmanagerConfig { username: Some("census".into()), password_file: Some(password.clone()), ..config(url) };
        let server = TestServer::start(vec![Reply::empty(200)]).await;
        Alertmanager::new(&basic(server.url()), http()).expect("valid").push(&notification()).await.expect("200");
        // "census:am-pa55" in base64
        assert_eq!(server.requests()[0].header("authorization"), Some("Basic Y2Vuc3VzOmFtLXBhNTU="));

        assert_error_classes("am-pa55", |url| {
            let config = basic(&url);
            async move { Alertmanager::new(&config, http())?.push(&notification()).await }
        })
        .await;
    }

    #[test]
    fn half_configured_auth_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "x").expect("write");
        let user_only = AlertmanagerConfig { username: Some("u".into()), ..config("http://am.test") };
        assert!(Alertmanager::new(&user_only, http()).is_err());
        let both = AlertmanagerConfig {
            bearer_token_file: Some(file.clone()),
            username: Some("u".into()),
            password_file: Some(file),
            ..config("http://am.test")
        };
        assert!(Alertmanager::new(&both, http()).is_err());
    }
}
