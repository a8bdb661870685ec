//! The texts ticketing sinks share: subject, body and notes of a ticket,
//! and the marker that lets a retried creation find its ticket. Pure.
//!
//! A service desk reads these, so they say what is wrong, where, how bad,
//! since when, and what to do (the runbook) in the first lines.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::{TicketDraft, TicketNote};
use crate::alert::engine::{Notification, NotifiedAlert};
use crate::clock::rfc3339_seconds as rfc3339;

/// `census-` + 12 hex digits of SHA-256(notification idempotency key):
/// short enough for a subject or a label, stable across retries.
pub fn marker(n: &Notification) -> String {
    format!("census-{}", &hex::encode(Sha256::digest(n.idempotency_key.as_bytes()))[..12])
}

/// The ticket a firing notification opens.
pub fn ticket_draft(n: &Notification) -> TicketDraft {
    TicketDraft {
        marker: marker(n),
        subject: format!("[Census] {} {}", n.severity.as_str().to_uppercase(), n.summary),
        body: body(n),
        severity: n.severity,
        labels: super::route::common_labels(n),
    }
}

fn body(n: &Notification) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{}", n.summary);
    let _ = writeln!(text);
    let _ = writeln!(text, "Rule: {}", n.rule);
    let _ = writeln!(text, "Severity: {}", n.severity.as_str());
    if !n.runbook_url.is_empty() {
        let _ = writeln!(text, "Runbook: {}", n.runbook_url);
    }
    let _ = writeln!(text, "Hosts: {}", n.alerts.len());
    for a in &n.alerts {
        let _ = writeln!(text);
        describe_alert(&mut text, a);
    }
    text
}

fn describe_alert(text: &mut String, a: &NotifiedAlert) {
    let _ = writeln!(text, "Host: {}", a.hostname);
    let _ = writeln!(text, "  {}", a.summary);
    if !a.description.is_empty() {
        let _ = writeln!(text, "  {}", a.description);
    }
    let _ = writeln!(text, "  Value: {} (threshold {})", a.value, a.threshold);
    let _ = writeln!(text, "  Since: {}", rfc3339(a.starts_at_unix_ms));
    let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(text, "  Labels: {}", labels.join(", "));
    let _ = writeln!(text, "  Alert: {}", a.fingerprint);
}

/// The comment an acknowledgement adds.
pub fn acknowledged_note(n: &Notification) -> TicketNote {
    let mut text = String::new();
    for a in &n.alerts {
        let by = a.acknowledged_by.as_deref().unwrap_or("an operator");
        let _ = writeln!(text, "Acknowledged by {by} in Census: {} ({})", a.summary, a.hostname);
    }
    TicketNote { body: text }
}

/// The note a resolution adds: which alerts cleared, and how many of the
/// ticket's alerts still fire (0: the ticket is being resolved).
pub fn resolved_note(n: &Notification, still_firing: usize) -> TicketNote {
    let mut text = String::new();
    for a in &n.alerts {
        let ended = a.ends_at_unix_ms.map(rfc3339).unwrap_or_default();
        let _ = writeln!(text, "Resolved at {ended}: {} ({}; last value while firing: {})", a.summary, a.hostname, a.value);
    }
    if still_firing == 0 {
        let _ = writeln!(text, "\nEvery alert of this ticket has cleared; Census resolves it.");
    } else {
        let _ = writeln!(text, "\n{still_firing} alert(s) of this ticket still firing.");
    }
    TicketNote { body: text }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alert::AlertFingerprint;
    use crate::alert::engine::Transition;
    use crate::alert::rules::Severity;

    fn notification() -> Notification {
        let labels = BTreeMap::from([("alertname".to_string(), "disk".to_string()), ("host".to_string(), "web-12".to_string())]);
        Notification {
            idempotency_key: "disk/firing/7".into(),
            transition: Transition::Firing,
            rule: "disk".into(),
            severity: Severity::Critical,
            route_key: BTreeMap::new(),
            summary: "web-12: /var is 97% full".into(),
            runbook_url: "https://wiki.example/disk".into(),
            alerts: vec![NotifiedAlert {
                idempotency_key: "fp:firing:7".into(),
                fingerprint: AlertFingerprint::of("disk", "a1", &BTreeMap::new()),
                sequence: 7,
                host_id: "a1".into(),
                hostname: "web-12".into(),
                labels,
                value: "97".into(),
                threshold: "90".into(),
                summary: "web-12: /var is 97% full".into(),
                description: "more than 90% for 10 minutes".into(),
                starts_at_unix_ms: 1_700_000_000_000,
                ends_at_unix_ms: None,
                acknowledged_by: None,
            }],
        }
    }

    #[test]
    fn draft_names_host_value_rule_and_runbook() {
        let d = ticket_draft(&notification());
        assert_eq!(d.subject, "[Census] CRITICAL web-12: /var is 97% full");
        for needle in
            ["Host: web-12", "Value: 97 (threshold 90)", "Rule: disk", "Runbook: https://wiki.example/disk", "2023-11-14T22:13:20Z"]
        {
            assert!(d.body.contains(needle), "body lacks {needle:?}:\n{}", d.body);
        }
        // Oracle: printf 'disk/firing/7' | sha256sum | cut -c1-12
        assert_eq!(d.marker, "census-219613cccbbd");
        assert_eq!(d.labels.get("alertname").map(String::as_str), Some("disk"));
    }

    #[test]
    fn resolved_note_says_whether_the_ticket_closes() {
        let mut n = notification();
        n.alerts[0].ends_at_unix_ms = Some(1_700_000_600_000);
        assert!(resolved_note(&n, 0).body.contains("Census resolves it"));
        assert!(resolved_note(&n, 2).body.contains("2 alert(s) of this ticket still firing"));
        assert!(resolved_note(&n, 0).body.contains("Resolved at 2023-11-14T22:23:20Z"));
    }
}
