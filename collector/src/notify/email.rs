//! The email sink: one plain-text message per notification, sent over SMTP
//! (lettre) to a fixed list of recipients.
//!
//! Rendering is pure and separate from sending: `render` turns a
//! notification into subject, body and the identifying headers;
//! `Email::message` addresses it; `Email::push` only sends.
//!
//! Invariants:
//! - a retried notification carries the same `Message-ID` (derived from its
//!   idempotency key, the sender and the recipients) and the same
//!   `X-Census-Idempotency-Key`, so a receiver can drop the duplicate a
//!   lost answer to a delivered message causes;
//! - mail leaves the host encrypted unless the config says otherwise and
//!   the relay is on loopback, or the operator set `allow_plaintext`;
//! - the SMTP password is read once, at `new`, and never logged (lettre's
//!   `Credentials` prints no secret either);
//! - connection errors, timeouts and 4xx replies are retryable; 5xx replies
//!   (unknown mailbox, authentication refused, message too large) are not.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SinkError;
use crate::alert::engine::{Notification, NotifiedAlert, Transition};
use crate::clock::from_unix_ms;

/// `kind = "email"`: see docs/notifications.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP relay (name or IP address); with TLS, the name its
    /// certificate must carry.
    pub host: String,
    /// Defaults by `security`: 587 (starttls), 465 (tls), 25 (none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: Security,
    /// Allows `security = "none"` to a relay that is not on loopback.
    /// Without TLS the password and every alert (host names, values, the
    /// fleet's weak spots) cross the network readable and alterable by
    /// anyone on the path; on loopback they never leave the machine (a
    /// local MTA that relays onwards over TLS).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// SMTP AUTH user; requires `password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// File holding the SMTP password (read at start and on reload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Sender: `alerts@example.org` or `Census <alerts@example.org>`.
    pub from: String,
    /// Recipients; at least one.
    pub to: Vec<String>,
    #[serde(default = "default_subject_prefix")]
    pub subject_prefix: String,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which is required: a relay
    /// that does not offer it is an error, never a fallback to plain text.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, "implicit TLS").
    Tls,
    /// No encryption: loopback only, unless `allow_plaintext`.
    None,
}

impl Security {
    pub fn default_port(self) -> u16 {
        match self {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

fn default_subject_prefix() -> String {
    "[Census]".to_string()
}

impl EmailConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }
}

/// True for `localhost` and loopback IP literals (127.0.0.0/8, ::1).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn mailbox(key: &str, text: &str) -> Result<Mailbox, SinkError> {
    text.parse().map_err(|e| SinkError::permanent(format!("email: `{key}` {text:?} is not a valid address: {e}")))
}

// --- rendering (pure) ---------------------------------------------------------

/// The text of one notification's message, before addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// `<prefix> [FIRING] <summary>`, on one line.
    pub subject: String,
    pub body: String,
    /// `<census.<32 hex digits>@<sender's domain>>`
    pub message_id: String,
    pub idempotency_key: String,
}

pub const IDEMPOTENCY_HEADER: &str = "X-Census-Idempotency-Key";

/// Renders `n` for a sink sending from `from` to `to`. The Message-ID
/// depends only on the idempotency key and the addresses, so every retry
/// of the notification gets the same one, while two sinks with other
/// recipients send two distinct messages.
pub fn render(n: &Notification, subject_prefix: &str, from: &Mailbox, to: &[Mailbox]) -> RenderedEmail {
    let state = match n.transition {
        Transition::Firing => "FIRING",
        Transition::Updated => "UPDATED",
        Transition::Resolved => "RESOLVED",
    };
    let subject = [subject_prefix.trim(), &format!("[{state}]"), &one_line(&n.summary)]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");

    let mut identity = format!("census-email-v1\n{}\n{}\n", n.idempotency_key, from.email);
    for mailbox in to {
        identity.push_str(&format!("{}\n", mailbox.email));
    }
    let digest = hex::encode(Sha256::digest(identity.as_bytes()));
    let message_id = format!("<census.{}@{}>", &digest[..32], from.email.domain());

    RenderedEmail { subject, body: body(n, state), message_id, idempotency_key: n.idempotency_key.clone() }
}

/// Header values must stay on one line.
fn one_line(text: &str) -> String {
    text.split(char::is_control).filter(|part| !part.trim().is_empty()).map(str::trim).collect::<Vec<_>>().join(" ")
}

fn rfc3339(unix_ms: i64) -> String {
    humantime::format_rfc3339_seconds(from_unix_ms(unix_ms)).to_string()
}

fn body(n: &Notification, state: &str) -> String {
    let mut text = String::new();
    // `write!` into a String cannot fail.
    let _ = writeln!(text, "{state}: {}", n.summary);
    let _ = writeln!(text);
    let _ = writeln!(text, "Rule:      {} (severity {})", n.rule, n.severity.as_str());
    if !n.route_key.is_empty() {
        let group: Vec<String> = n.route_key.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(text, "Group:     {}", group.join(", "));
    }
    if !n.runbook_url.is_empty() {
        let _ = writeln!(text, "Runbook:   {}", n.runbook_url);
    }
    let _ = writeln!(text, "Alerts:    {}", n.alerts.len());
    for alert in &n.alerts {
        let _ = writeln!(text);
        alert_section(&mut text, alert, &n.runbook_url);
    }
    let _ = writeln!(text);
    let _ = writeln!(text, "-- ");
    let _ = writeln!(text, "Sent by the Census collector. Notification {}", n.idempotency_key);
    text
}

fn alert_section(text: &mut String, alert: &NotifiedAlert, runbook_url: &str) {
    let _ = writeln!(text, "* {}", alert.hostname);
    let _ = writeln!(text, "  summary:     {}", alert.summary);
    let _ = writeln!(text, "  value:       {} (threshold {})", alert.value, alert.threshold);
    if !alert.description.is_empty() {
        let _ = writeln!(text, "  description: {}", alert.description);
    }
    let labels: Vec<String> = alert.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(text, "  labels:      {}", labels.join(", "));
    if !runbook_url.is_empty() {
        let _ = writeln!(text, "  runbook:     {runbook_url}");
    }
    let _ = writeln!(text, "  started:     {}", rfc3339(alert.starts_at_unix_ms));
    if let Some(ended) = alert.ends_at_unix_ms {
        let _ = writeln!(text, "  resolved:    {}", rfc3339(ended));
    }
    if let Some(by) = &alert.acknowledged_by {
        let _ = writeln!(text, "  acknowledged by {by}");
    }
}

// --- sending (I/O) ---------------------------------------------------------------

pub struct Email {
    /// Boxed: at about 300 bytes it would size every `notify::Client`.
    transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
    /// `host:port`, for error messages.
    relay: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_prefix: String,
}

impl Email {
    /// Validates the config, reads the password file and the extra CA, and
    /// builds the transport. Connects to nothing: a relay that is down is
    /// the first push's (retryable) error.
    pub fn new(config: &EmailConfig, timeout: Duration, ca_file: Option<&Path>) -> Result<Email, SinkError> {
        if config.host.trim().is_empty() {
            return Err(SinkError::permanent("email: `host` is empty"));
        }
        if config.security == Security::None && !config.allow_plaintext && !is_loopback(&config.host) {
            return Err(SinkError::permanent(format!(
                "email: `security = \"none\"` would send the password and alerts unencrypted to {}; \
                 use starttls or tls, or set `allow_plaintext = true` if that network is trusted",
                config.host
            )));
        }
        let from = mailbox("from", &config.from)?;
        if config.to.is_empty() {
            return Err(SinkError::permanent("email: `to` lists no recipient"));
        }
        let to = config.to.iter().map(|t| mailbox("to", t)).collect::<Result<Vec<_>, _>>()?;

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            .port(config.port())
            .timeout(Some(timeout))
            .tls(tls(config, ca_file)?);
        match (&config.username, &config.password_file) {
            (Some(user), Some(file)) => builder = builder.credentials(Credentials::new(user.clone(), super::read_secret_file(file)?)),
            (None, None) => {}
            (Some(_), None) => return Err(SinkError::permanent("email: `username` is set but `password_file` is not")),
            (None, Some(_)) => return Err(SinkError::permanent("email: `password_file` is set but `username` is not")),
        }
        let relay = format!("{}:{}", config.host, config.port());
        Ok(Email { transport: Box::new(builder.build()), relay, from, to, subject_prefix: config.subject_prefix.clone() })
    }

    pub fn render(&self, n: &Notification) -> RenderedEmail {
        render(n, &self.subject_prefix, &self.from, &self.to)
    }

    /// The message for `n`, addressed; its Date is now.
    pub fn message(&self, n: &Notification) -> Result<Message, SinkError> {
        let rendered = self.render(n);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(rendered.subject)
            .message_id(Some(rendered.message_id))
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(IDEMPOTENCY_HEADER), rendered.idempotency_key))
            // RFC 3834: no vacation or out-of-office replies to the sender.
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".to_string()))
            .user_agent(concat!("census-collector/", env!("CARGO_PKG_VERSION")).to_string());
        for mailbox in &self.to {
            builder = builder.to(mailbox.clone());
        }
        builder.singlepart(SinglePart::plain(rendered.body)).map_err(|e| SinkError::permanent(format!("email: building the message: {e}")))
    }

    pub async fn push(&self, n: &Notification) -> Result<(), SinkError> {
        let message = self.message(n)?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| classify(&self.relay, &e))
    }
}

fn tls(config: &EmailConfig, ca_file: Option<&Path>) -> Result<Tls, SinkError> {
    if config.security == Security::None {
        return Ok(Tls::None);
    }
    let mut parameters = TlsParameters::builder(config.host.clone());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| SinkError::permanent(format!("reading CA file {}: {e}", path.display())))?;
        // lettre accepts a file with no certificate at all; an operator
        // who named a CA file meant one.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(SinkError::permanent(format!("CA file {} holds no PEM certificate", path.display())));
        }
        let certificates = Certificate::from_pem(&pem)
            .map_err(|e| SinkError::permanent(format!("CA file {} holds no valid PEM certificate: {e}", path.display())))?;
        parameters = parameters.add_root_certificate(certificates);
    }
    let parameters = parameters.build_rustls().map_err(|e| SinkError::permanent(format!("email: setting up TLS: {e}")))?;
    Ok(match config.security {
        Security::Starttls => Tls::Required(parameters),
        Security::Tls => Tls::Wrapper(parameters),
        Security::None => Tls::None,
    })
}

/// 5xx replies and client-side refusals (no STARTTLS offered, no common
/// AUTH mechanism: the config does not fit the relay) are permanent;
/// everything else (4xx, connection errors including TLS handshakes,
/// timeouts, garbled replies) may pass on a later try.
fn classify(relay: &str, e: &lettre::transport::smtp::Error) -> SinkError {
    let message = format!("email via {relay}: {e}");
    if e.is_permanent() || e.is_client() || e.is_tls() { SinkError::permanent(message) } else { SinkError::retryable(message) }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alert::book::AlertFingerprint;
    use crate::alert::rules::Severity;
    use crate::notify::{SinkConfig, SinkKind};

    fn config(toml_text: &str) -> Result<EmailConfig, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    fn minimal() -> EmailConfig {
        config("host = \"smtp.example.org\"\nfrom = \"census@example.org\"\nto = [\"ops@example.org\"]").unwrap()
    }

    fn alert(host: &str, sequence: u64) -> NotifiedAlert {
        let labels: BTreeMap<String, String> =
            [("alertname", "disk-almost-full"), ("host", host), ("mount", "/var")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let fingerprint = AlertFingerprint::of("disk-almost-full", host, &labels);
        NotifiedAlert {
            idempotency_key: format!("{}:firing:{sequence}", fingerprint.as_str()),
            fingerprint,
            sequence,
            host_id: format!("id-{host}"),
            hostname: host.into(),
            labels,
            value: "97%".into(),
            threshold: "90%".into(),
            summary: format!("/var is 97% full on {host}"),
            description: "Free space below 10%.".into(),
            // 2026-01-02T03:04:05Z
            starts_at_unix_ms: 1_767_323_045_000,
            ends_at_unix_ms: None,
            acknowledged_by: None,
        }
    }

    fn notification(transition: Transition, alerts: Vec<NotifiedAlert>) -> Notification {
        Notification {
            idempotency_key: format!("disk-almost-full/{}/7", transition.as_str()),
            transition,
            rule: "disk-almost-full".into(),
            severity: Severity::Critical,
            route_key: BTreeMap::from([("mount".to_string(), "/var".to_string())]),
            summary: alerts.first().map(|a| a.summary.clone()).unwrap_or_default(),
            runbook_url: "https://wiki.example.org/disk-full".into(),
            alerts,
        }
    }

    fn addresses() -> (Mailbox, Vec<Mailbox>) {
        ("census@example.org".parse().unwrap(), vec!["ops@example.org".parse().unwrap(), "audit@example.org".parse().unwrap()])
    }

    #[test]
    fn defaults_follow_the_security_mode() {
        let c = minimal();
        assert_eq!((c.security, c.port(), c.subject_prefix.as_str(), c.allow_plaintext), (Security::Starttls, 587, "[Census]", false));
        let base = "host = \"h\"\nfrom = \"a@b.c\"\nto = [\"d@e.f\"]\n";
        assert_eq!(config(&format!("{base}security = \"tls\"")).unwrap().port(), 465);
        assert_eq!(config(&format!("{base}security = \"none\"")).unwrap().port(), 25);
        assert_eq!(config(&format!("{base}security = \"tls\"\nport = 2465")).unwrap().port(), 2465);
        assert!(config(&format!("{base}security = \"ssl\"")).unwrap_err().contains("unknown variant"));
        assert!(config(&format!("{base}pasword_file = \"/x\"")).unwrap_err().contains("unknown field"));
        assert!(config("host = \"h\"\nto = [\"d@e.f\"]").unwrap_err().contains("missing field `from`"));
    }

    #[test]
    fn plaintext_goes_to_loopback_only_unless_allowed() {
        let timeout = Duration::from_secs(5);
        let mut c = minimal();
        c.security = Security::None;
        let refused = Email::new(&c, timeout, None).err().expect("plaintext to a remote relay is refused");
        assert!(!refused.retryable && refused.message.contains("allow_plaintext"), "{refused:?}");
        c.allow_plaintext = true;
        assert!(Email::new(&c, timeout, None).is_ok());
        c.allow_plaintext = false;
        for host in ["localhost", "127.0.0.1", "127.3.4.5", "::1"] {
            c.host = host.into();
            assert!(Email::new(&c, timeout, None).is_ok(), "{host} is loopback");
        }
        for host in ["10.0.0.1", "localhost.example.org", "::2"] {
            c.host = host.into();
            assert!(Email::new(&c, timeout, None).is_err(), "{host} is not loopback");
        }
    }

    #[test]
    fn bad_addresses_credentials_and_ca_files_are_refused_at_new() {
        let timeout = Duration::from_secs(5);
        let refused = |c: &EmailConfig, ca: Option<&Path>| Email::new(c, timeout, ca).err().expect("refused").message;
        let mut c = minimal();
        c.to.clear();
        assert!(refused(&c, None).contains("`to` lists no recipient"));
        c.to = vec!["ops@example.org".into(), "not an address".into()];
        assert!(refused(&c, None).contains("\"not an address\""));
        let mut c = minimal();
        c.from = "census".into();
        assert!(refused(&c, None).contains("`from`"));

        let dir = tempfile::tempdir().unwrap();
        let mut c = minimal();
        c.username = Some("census".into());
        assert!(refused(&c, None).contains("`password_file` is not"));
        let password = dir.path().join("password");
        std::fs::write(&password, "s3cret-pa55\n").unwrap();
        c.password_file = Some(password.clone());
        assert!(Email::new(&c, timeout, None).is_ok());
        c.username = None;
        assert!(refused(&c, None).contains("`username` is not"));
        c.username = Some("census".into());
        c.password_file = Some(dir.path().join("missing"));
        let message = refused(&c, None);
        assert!(message.contains("missing") && !message.contains("s3cret"), "{message}");

        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        assert!(refused(&minimal(), Some(&not_pem)).contains("holds no PEM certificate"));
        assert!(refused(&minimal(), Some(&dir.path().join("nope.pem"))).contains("reading CA file"));
    }

    #[test]
    fn subject_names_the_transition_and_the_summary() {
        let (from, to) = addresses();
        for (transition, word) in [(Transition::Firing, "FIRING"), (Transition::Updated, "UPDATED"), (Transition::Resolved, "RESOLVED")] {
            let r = render(&notification(transition, vec![alert("web-1", 3)]), "[Census]", &from, &to);
            assert_eq!(r.subject, format!("[Census] [{word}] /var is 97% full on web-1"));
        }
        let mut n = notification(Transition::Firing, vec![alert("web-1", 3)]);
        n.summary = "two\r\nlines\tand a tab ".into();
        assert_eq!(render(&n, "", &from, &to).subject, "[FIRING] two lines and a tab");
    }

    #[test]
    fn body_lists_every_alert_with_its_facts() {
        let (from, to) = addresses();
        let mut resolved = alert("db-2", 4);
        resolved.ends_at_unix_ms = Some(1_767_326_645_000);
        resolved.acknowledged_by = Some("alice".into());
        let n = notification(Transition::Resolved, vec![alert("web-1", 3), resolved]);
        let body = render(&n, "[Census]", &from, &to).body;
        for expected in [
            "RESOLVED: /var is 97% full on web-1",
            "Rule:      disk-almost-full (severity critical)",
            "Group:     mount=/var",
            "Runbook:   https://wiki.example.org/disk-full",
            "Alerts:    2",
            "* web-1\n  summary:     /var is 97% full on web-1\n  value:       97% (threshold 90%)\n  description: Free space below 10%.\n  \
             labels:      alertname=disk-almost-full, host=web-1, mount=/var\n  runbook:     https://wiki.example.org/disk-full\n  \
             started:     2026-01-02T03:04:05Z\n",
            "* db-2\n",
            "  resolved:    2026-01-02T04:04:05Z\n  acknowledged by alice\n",
            "Notification disk-almost-full/resolved/7",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in:\n{body}");
        }
        assert_eq!(body.matches("  resolved:").count(), 1, "only the ended alert has an end time");
    }

    #[test]
    fn message_id_is_stable_per_notification_and_recipients() {
        let (from, to) = addresses();
        let n = notification(Transition::Firing, vec![alert("web-1", 3)]);
        let first = render(&n, "[Census]", &from, &to);
        assert_eq!(first, render(&n, "[Census]", &from, &to), "a retry renders the same message");
        assert!(first.message_id.starts_with("<census.") && first.message_id.ends_with("@example.org>"), "{}", first.message_id);
        assert_eq!(first.message_id.len(), "<census.".len() + 32 + "@example.org>".len());
        assert_eq!(first.idempotency_key, "disk-almost-full/firing/7");

        let mut other = n.clone();
        other.idempotency_key = "disk-almost-full/firing/8".into();
        assert_ne!(render(&other, "[Census]", &from, &to).message_id, first.message_id);
        assert_ne!(render(&n, "[Census]", &from, &to[..1]).message_id, first.message_id, "other recipients, other message");
        // the prefix is presentation, not identity
        assert_eq!(render(&n, "[Ops]", &from, &to).message_id, first.message_id);
    }

    #[test]
    fn the_message_carries_the_identifying_headers() {
        let mut c = minimal();
        c.to.push("Audit Team <audit@example.org>".into());
        let email = Email::new(&c, Duration::from_secs(5), None).unwrap();
        let n = notification(Transition::Firing, vec![alert("web-1", 3)]);
        let message = email.message(&n).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        let rendered = email.render(&n);
        for expected in [
            format!("Message-ID: {}\r\n", rendered.message_id),
            "X-Census-Idempotency-Key: disk-almost-full/firing/7\r\n".to_string(),
            "Auto-Submitted: auto-generated\r\n".to_string(),
            "Subject: [Census] [FIRING] /var is 97% full on web-1\r\n".to_string(),
            "From: census@example.org\r\n".to_string(),
            "Content-Type: text/plain; charset=utf-8\r\n".to_string(),
        ] {
            assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
        }
        assert!(text.contains("ops@example.org") && text.contains("\"Audit Team\" <audit@example.org>"), "{text}");
        let envelope: Vec<String> = message.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(envelope, ["ops@example.org", "audit@example.org"]);
    }

    /// The example in docs/notifications.md is a valid sink config.
    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../docs/notifications.md");
        let example = doc
            .split("```toml\n")
            .filter_map(|rest| rest.split("```").next())
            .find(|block| block.contains("kind = \"email\""))
            .expect("an email toml block in the doc");
        #[derive(Deserialize)]
        struct Sinks {
            sink: Vec<SinkConfig>,
        }
        let sinks: Sinks = toml::from_str(example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        let SinkKind::Email(c) = &sinks.sink[0].kind else { panic!("not an email sink: {:?}", sinks.sink[0]) };
        assert_eq!((c.security, c.port()), (Security::Starttls, 587));
        assert!(c.username.is_some() && c.password_file.is_some() && c.to.len() == 2);

        let misspelt = example.replace("subject_prefix", "subject_prefx");
        let e = toml::from_str::<Sinks>(&misspelt).err().expect("an unknown key in a sink is refused");
        assert!(e.to_string().contains("unknown field `subject_prefx`"), "{e}");
    }
}
