//! The email sink against a real SMTP server (aiosmtpd, from the Debian
//! package python3-aiosmtpd that `.ci/run` installs; the test fails, never
//! skips, without it): what lands in the Maildir, STARTTLS and SMTPS with
//! the sink's extra CA, and how each kind of failure is classified.
//!
//! Sinks are built the way the collector builds them, from a `[[sink]]`
//! table through `Client::from_config`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use census_collector::alert::book::AlertFingerprint;
use census_collector::alert::engine::{Notification, NotifiedAlert, Transition};
use census_collector::alert::rules::Severity;
use census_collector::notify::email::Email;
use census_collector::notify::{Client, PushClient, SinkConfig, SinkError};
use census_collector::pki::Pki;
use census_tests::free_port;
use census_tests::peers::{Smtp, SmtpOptions, TlsIdentity};

const FROM: &str = "census@census.test";
const TO: [&str; 2] = ["oncall@census.test", "audit@census.test"];

/// An email sink from its TOML settings (`kind`, `from` and `to` added).
fn sink(settings: &str) -> Email {
    let to: Vec<String> = TO.iter().map(|t| format!("{t:?}")).collect();
    let toml_text = format!("name = \"mail\"\nkind = \"email\"\ntimeout = \"10s\"\nfrom = {FROM:?}\nto = [{}]\n{settings}", to.join(", "));
    let config: SinkConfig = toml::from_str(&toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"));
    match Client::from_config(&config) {
        Ok(Client::Push(PushClient::Email(email))) => email,
        Ok(_) => panic!("not an email client"),
        Err(e) => panic!("building the sink: {e:?}"),
    }
}

fn plain_sink(smtp: &Smtp) -> Email {
    sink(&format!("host = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"", smtp.port))
}

fn push(email: &Email, n: &Notification) -> Result<(), SinkError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(email.push(n))
}

fn notification(transition: Transition, sequence: u64) -> Notification {
    let labels: BTreeMap<String, String> =
        [("alertname", "disk-almost-full"), ("host", "web-1"), ("mount", "/var")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    let fingerprint = AlertFingerprint::of("disk-almost-full", "agent-1", &labels);
    let alert = NotifiedAlert {
        idempotency_key: format!("{}:{}:{sequence}", fingerprint.as_str(), transition.as_str()),
        fingerprint,
        sequence,
        host_id: "agent-1".into(),
        hostname: "web-1".into(),
        labels,
        value: "97%".into(),
        threshold: "90%".into(),
        summary: "/var is 97% full on web-1".into(),
        description: "Free space is below 10%.".into(),
        starts_at_unix_ms: 1_767_323_045_000,
        ends_at_unix_ms: (transition == Transition::Resolved).then_some(1_767_326_645_000),
        acknowledged_by: None,
    };
    Notification {
        idempotency_key: format!("disk-almost-full/{}/{sequence}", transition.as_str()),
        transition,
        rule: "disk-almost-full".into(),
        severity: Severity::Critical,
        route_key: BTreeMap::new(),
        summary: alert.summary.clone(),
        runbook_url: "https://wiki.census.test/disk-full".into(),
        alerts: vec![alert],
    }
}

/// A CA and a server certificate for 127.0.0.1, made now (nothing expires).
fn pki(dir: &Path) -> (Pki, TlsIdentity) {
    let pki = Pki::create(dir, &["127.0.0.1".to_string()], SystemTime::now()).expect("creating a test PKI");
    let identity = TlsIdentity { cert_pem: pki.server_cert_pem.clone(), key_pem: pki.server_key_pem.clone() };
    (pki, identity)
}

#[test]
fn one_message_per_notification_and_a_retry_keeps_its_message_id() {
    let smtp = Smtp::start();
    let email = plain_sink(&smtp);
    let firing = notification(Transition::Firing, 1);
    let resolved = notification(Transition::Resolved, 2);

    push(&email, &firing).expect("first delivery");
    push(&email, &firing).expect("a retry of the same notification");
    push(&email, &resolved).expect("the resolution");
    let messages = smtp.wait_messages(3);
    assert_eq!(messages.len(), 3);
    let (first, retry, last) = (&messages[0], &messages[1], &messages[2]);

    assert_eq!(first.header("Subject"), Some("[Census] [FIRING] /var is 97% full on web-1"), "{first:?}");
    assert_eq!(last.header("Subject"), Some("[Census] [RESOLVED] /var is 97% full on web-1"), "{last:?}");
    let message_id = email.render(&firing).message_id;
    assert_eq!(first.header("Message-ID"), Some(message_id.as_str()));
    assert_eq!(retry.header("Message-ID"), Some(message_id.as_str()), "a retry carries the same Message-ID");
    assert_ne!(last.header("Message-ID"), Some(message_id.as_str()));
    assert_eq!(first.header("X-Census-Idempotency-Key"), Some("disk-almost-full/firing/1"));
    assert_eq!(last.header("X-Census-Idempotency-Key"), Some("disk-almost-full/resolved/2"));

    // the envelope, as the server saw it
    for m in &messages {
        assert_eq!(m.header("X-MailFrom"), Some(FROM), "{m:?}");
        let rcpt: Vec<&str> = m.header("X-RcptTo").expect("X-RcptTo").split(',').map(str::trim).collect();
        assert_eq!(rcpt, TO, "{m:?}");
    }
    assert!(first.body.contains("* web-1\n") && first.body.contains("value:       97% (threshold 90%)"), "{first:?}");
    assert!(first.body.contains("started:     2026-01-02T03:04:05Z"), "{first:?}");
    assert!(last.body.contains("resolved:    2026-01-02T04:04:05Z"), "{last:?}");
}

#[test]
fn starttls_trusts_the_extra_ca_and_plain_text_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_pki, identity) = pki(&dir.path().join("pki"));
    let smtp = Smtp::start_with(SmtpOptions { starttls: Some(identity), ..SmtpOptions::default() });
    let n = notification(Transition::Firing, 1);

    // Without the CA the certificate is not trusted: retried (the sink
    // cannot tell it from a cut handshake), with the reason in the message.
    let untrusted = sink(&format!("host = \"127.0.0.1\"\nport = {}", smtp.port));
    let e = push(&untrusted, &n).expect_err("an untrusted certificate fails");
    assert!(e.retryable && e.message.contains("certificate"), "{e:?}");

    // aiosmtpd with a certificate requires STARTTLS: 530 to plain text.
    let e = push(&plain_sink(&smtp), &n).expect_err("plain text is refused");
    assert!(!e.retryable && e.message.contains("530"), "{e:?}");

    let ca = Pki::ca_path(&dir.path().join("pki"));
    let trusted = sink(&format!("host = \"127.0.0.1\"\nport = {}\nca_file = {:?}", smtp.port, ca.display().to_string()));
    push(&trusted, &n).expect("delivery over STARTTLS");
    let messages = smtp.wait_messages(1);
    assert_eq!(messages.len(), 1, "only the STARTTLS delivery got through");
    assert_eq!(messages[0].header("Message-ID"), Some(trusted.render(&n).message_id.as_str()));
}

#[test]
fn implicit_tls_delivers_with_the_extra_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_pki, identity) = pki(&dir.path().join("pki"));
    let smtp = Smtp::start_with(SmtpOptions { smtps: Some(identity), ..SmtpOptions::default() });
    let ca = Pki::ca_path(&dir.path().join("pki"));
    let email = sink(&format!("host = \"127.0.0.1\"\nport = {}\nsecurity = \"tls\"\nca_file = {:?}", smtp.port, ca.display().to_string()));
    push(&email, &notification(Transition::Firing, 1)).expect("delivery over SMTPS");
    assert_eq!(smtp.wait_messages(1)[0].header("Subject"), Some("[Census] [FIRING] /var is 97% full on web-1"));
}

#[test]
fn a_5xx_reply_is_permanent_a_4xx_reply_and_a_dead_relay_are_retryable() {
    let n = notification(Transition::Firing, 1);

    let small = Smtp::start_with(SmtpOptions { max_message_bytes: Some(200), ..SmtpOptions::default() });
    let e = push(&plain_sink(&small), &n).expect_err("a message over the size limit is refused");
    assert!(!e.retryable && e.message.contains("552"), "{e:?}");
    assert!(small.messages().is_empty());

    let busy = Smtp::start_with(SmtpOptions { data_reply: Some("451 4.3.0 try again later".into()), ..SmtpOptions::default() });
    let e = push(&plain_sink(&busy), &n).expect_err("a 451 is a failure");
    assert!(e.retryable && e.message.contains("451") && e.message.contains("try again later"), "{e:?}");

    let nobody = free_port();
    let e = push(&sink(&format!("host = \"127.0.0.1\"\nport = {nobody}\nsecurity = \"none\"")), &n).expect_err("nothing listens");
    assert!(e.retryable, "{e:?}");
}
