//! Conversions between stored records and `census.v1` admin messages: the
//! one place the admin API's wire shapes are built.

use census_proto::v1 as pb;

use crate::alert::book::{Alert, Silence};
use crate::alerting::RuleInForce;
use crate::notify::outbox::OutboxEntry;
use crate::store::HostView;

/// The host's OS as the host list shows it: the pretty name, else name and
/// version; empty before any inventory.
pub fn os_name(host: &HostView) -> String {
    let os = host.inventory.as_ref().and_then(|r| r.inventory.as_ref()).and_then(|i| i.os.as_ref());
    os.map(|o| o.pretty_name.clone().unwrap_or_else(|| format!("{} {}", o.name, o.version.clone().unwrap_or_default()).trim().to_string()))
        .unwrap_or_default()
}

/// The host-list line for one host.
pub fn host_summary(host: &HostView, online: bool) -> pb::HostSummary {
    let inv = host.inventory.as_ref().and_then(|r| r.inventory.as_ref());
    let os = inv.and_then(|i| i.os.as_ref());
    pb::HostSummary {
        agent_id: host.agent.agent_id.clone(),
        hostname: host.agent.hostname.clone(),
        host_uuid: host.agent.host_uuid.clone(),
        os: os_name(host),
        kernel: os.map(|o| o.kernel.clone()).unwrap_or_default(),
        arch: os.map(|o| o.arch.clone()).unwrap_or_default(),
        cpu_logical_cores: inv.and_then(|i| i.cpu.as_ref()).map(|c| c.logical_cores).unwrap_or(0),
        memory_total_bytes: inv.and_then(|i| i.memory.as_ref()).map(|m| m.total_bytes).unwrap_or(0),
        agent_version: host.agent.agent_version.clone(),
        enrolled_at_unix_ms: host.agent.enrolled_at_unix_ms,
        last_seen_unix_ms: host.agent.last_seen_unix_ms,
        last_seq: host.agent.last_seq,
        revoked: host.agent.revoked,
        online,
        health_dropped_batches: host.agent.health_dropped_batches,
        health_dropped_samples: host.agent.health_dropped_samples,
        health_samples_stored: host.agent.health_samples_stored,
        reports_stored: host.agent.reports_stored,
        certificate_not_after_unix_ms: host.agent.cert_not_after_unix_ms,
        certificate_sha256: hex::encode(&host.agent.cert_fingerprint),
        revoked_at_unix_ms: host.agent.revoked_at_unix_ms,
        columns: Default::default(),
    }
}

/// One line of `census changes`.
pub fn host_change(agent_id: &str, hostname: &str, c: crate::store::ChangeRecord) -> pb::HostChange {
    pb::HostChange {
        agent_id: agent_id.to_string(),
        hostname: hostname.to_string(),
        at_unix_ms: c.at_unix_ms,
        kind: c.kind,
        subject: c.subject,
        old: c.old,
        new: c.new,
    }
}

/// One version group of `census software NAME`, hosts ordered by
/// hostname; only the hosts at positions `window` of that order are built
/// (a page), the count is all of them.
pub fn software_version(group: &crate::software::ListedVersion, window: std::ops::Range<usize>) -> pb::SoftwareVersion {
    let to = window.end.min(group.hosts.len());
    let from = window.start.min(to);
    let hosts = group.hosts[from..to]
        .iter()
        .map(|h| pb::SoftwareHost { hostname: h.hostname.clone(), agent_id: h.agent_id.clone(), arch: h.arch.clone() })
        .collect();
    pb::SoftwareVersion { version: group.version.clone(), source: group.source.clone(), host_count: group.hosts.len() as u64, hosts }
}

/// One alert as `census alerts` and `census alert ID` show it.
pub fn alert_info(a: &Alert) -> pb::AlertInfo {
    pb::AlertInfo {
        fingerprint: a.fingerprint.to_string(),
        rule: a.rule.clone(),
        host_id: a.host_id.clone(),
        hostname: a.hostname.clone(),
        state: a.state.as_str().to_string(),
        severity: a.severity.as_str().to_string(),
        value: a.value.clone(),
        threshold: a.threshold.clone(),
        summary: a.summary.clone(),
        description: a.description.clone(),
        runbook_url: a.runbook_url.clone(),
        labels: a.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        active_since_unix_ms: a.active_since_unix_ms,
        firing_since_unix_ms: a.firing_since_unix_ms,
        resolved_at_unix_ms: a.resolved_at_unix_ms,
        acknowledged_by: a.acknowledged.as_ref().map(|k| k.by.clone()),
        acknowledged_at_unix_ms: a.acknowledged.as_ref().map(|k| k.at_unix_ms),
        acknowledged_comment: a.acknowledged.as_ref().map(|k| k.comment.clone()),
        silenced_by: a.silenced_by.clone(),
    }
}

/// "pending" (starts later), "active" or "expired", at `now`.
pub fn silence_state(s: &Silence, now_unix_ms: i64) -> &'static str {
    if now_unix_ms < s.starts_at_unix_ms {
        "pending"
    } else if s.is_active(now_unix_ms) {
        "active"
    } else {
        "expired"
    }
}

/// One silence, its matchers in the text form `census silence add` takes.
pub fn silence_info(s: &Silence, now_unix_ms: i64) -> pb::SilenceInfo {
    pb::SilenceInfo {
        id: s.id.clone(),
        matchers: s.matchers.iter().map(ToString::to_string).collect(),
        starts_at_unix_ms: s.starts_at_unix_ms,
        ends_at_unix_ms: s.ends_at_unix_ms,
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
        state: silence_state(s, now_unix_ms).to_string(),
    }
}

/// One rule in force, with its TOML text.
pub fn rule_info(r: &RuleInForce) -> pb::RuleInfo {
    let spec = &r.rule.spec;
    pb::RuleInfo {
        name: spec.name.clone(),
        source: r.source.as_str().to_string(),
        enabled: spec.enabled,
        severity: spec.severity.as_str().to_string(),
        kind: spec.when.kind().to_string(),
        toml: spec.to_toml(),
        // Lines of the shipped rules are lines of a string in the binary.
        line: r.rule.line.filter(|_| r.source == crate::alerting::RuleSource::File).and_then(|l| u32::try_from(l).ok()),
    }
}

/// One outbox entry with a digest of the notification it carries.
pub fn outbox_entry_info(e: &OutboxEntry) -> pb::OutboxEntryInfo {
    let n = &e.notification;
    pb::OutboxEntryInfo {
        id: e.id,
        sink: e.sink.clone(),
        idempotency_key: e.idempotency_key.clone(),
        state: e.state.as_str().to_string(),
        attempts: e.attempts,
        created_at_unix_ms: e.created_at_unix_ms,
        next_attempt_unix_ms: e.next_attempt_unix_ms,
        last_attempt_unix_ms: e.last_attempt_unix_ms,
        delivered_at_unix_ms: e.delivered_at_unix_ms,
        last_error: e.last_error.clone(),
        transition: n.transition.as_str().to_string(),
        rule: n.rule.clone(),
        alert_count: u32::try_from(n.alerts.len()).unwrap_or(u32::MAX),
        summary: n.summary.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alert::AlertState;
    use crate::alert::book::{Acknowledgement, AlertFingerprint, Matcher};
    use crate::alert::engine::{Notification, Transition};
    use crate::alert::rules::{RuleSet, Severity};
    use crate::alerting::RuleSource;
    use crate::notify::outbox::DeliveryState;

    pub(crate) fn sample_alert() -> Alert {
        Alert {
            fingerprint: AlertFingerprint::of("disk-almost-full", "agent-1", &BTreeMap::from([("mount".into(), "/var".into())])),
            rule: "disk-almost-full".into(),
            host_id: "agent-1".into(),
            hostname: "web-07".into(),
            identity: BTreeMap::from([("mount".into(), "/var".into())]),
            labels: BTreeMap::from([("mount".into(), "/var".into()), ("alertname".into(), "disk-almost-full".into())]),
            severity: Severity::Warning,
            state: AlertState::Firing,
            value: "93.4".into(),
            threshold: "90".into(),
            summary: "web-07: filesystem /var is 93.4% full".into(),
            description: String::new(),
            runbook_url: String::new(),
            active_since_unix_ms: 1_000,
            firing_since_unix_ms: Some(2_000),
            clear_since_unix_ms: None,
            resolved_at_unix_ms: None,
            acknowledged: None,
            silenced_by: Vec::new(),
            notified_firing: true,
            ack_to_announce: false,
            last_sequence: 3,
        }
    }

    #[test]
    fn an_alert_keeps_its_words_times_and_acknowledgement() {
        let mut alert = sample_alert();
        let info = alert_info(&alert);
        assert_eq!((info.state.as_str(), info.severity.as_str()), ("firing", "warning"));
        assert_eq!(info.fingerprint.len(), 64);
        assert_eq!((info.firing_since_unix_ms, info.resolved_at_unix_ms, info.acknowledged_by), (Some(2_000), None, None));
        assert_eq!(info.labels.get("mount").map(String::as_str), Some("/var"));

        alert.acknowledged = Some(Acknowledgement { by: "tok-1".into(), at_unix_ms: 5_000, comment: "on it".into() });
        alert.silenced_by = vec!["s1".into()];
        let info = alert_info(&alert);
        assert_eq!(info.acknowledged_by.as_deref(), Some("tok-1"));
        assert_eq!(info.acknowledged_at_unix_ms, Some(5_000));
        assert_eq!(info.acknowledged_comment.as_deref(), Some("on it"));
        assert_eq!(info.silenced_by, vec!["s1".to_string()]);
    }

    #[test]
    fn a_silence_is_pending_then_active_then_expired() {
        let s = Silence {
            id: "s1".into(),
            matchers: vec![Matcher::parse("alertname=disk").expect("matcher"), Matcher::parse("host=~web-*").expect("matcher")],
            starts_at_unix_ms: 1_000,
            ends_at_unix_ms: 2_000,
            created_by: "tok-1".into(),
            comment: "maintenance".into(),
        };
        assert_eq!(silence_info(&s, 500).state, "pending");
        assert_eq!(silence_info(&s, 1_000).state, "active");
        assert_eq!(silence_info(&s, 2_000).state, "expired", "the end is exclusive");
        assert_eq!(silence_info(&s, 1_500).matchers, vec!["alertname=disk".to_string(), "host=~web-*".to_string()]);
    }

    #[test]
    fn a_rule_shows_its_source_kind_and_toml() {
        let rule = RuleSet::defaults().get("host-offline").cloned().expect("shipped rule");
        let info = rule_info(&RuleInForce { rule: rule.clone(), source: RuleSource::Default });
        assert_eq!(
            (info.name.as_str(), info.source.as_str(), info.kind.as_str(), info.severity.as_str(), info.enabled),
            ("host-offline", "default", "host_offline", "critical", true)
        );
        assert_eq!(info.line, None, "a shipped rule has no line in the operator's files");
        assert_eq!(RuleSet::from_toml(&info.toml).expect("reads back").rules[0].spec, rule.spec);
        let file = RuleSet::from_toml("# rules\n\n[[rule]]\nname = \"x\"\nwhen = { kind = \"software_missing\", package = \"p\" }\n")
            .expect("file rule");
        let info = rule_info(&RuleInForce { rule: file.rules[0].clone(), source: RuleSource::File });
        assert_eq!((info.source.as_str(), info.line), ("file", Some(3)));
    }

    #[test]
    fn an_outbox_entry_carries_a_digest_of_its_notification() {
        let alert = sample_alert();
        let notified = crate::alert::engine::notified(&alert, Transition::Firing);
        let n = Notification {
            idempotency_key: "disk-almost-full/firing/3".into(),
            transition: Transition::Firing,
            rule: "disk-almost-full".into(),
            severity: Severity::Warning,
            route_key: BTreeMap::new(),
            summary: alert.summary.clone(),
            runbook_url: String::new(),
            alerts: vec![notified.clone(), notified],
        };
        let mut entry = OutboxEntry::new("rt", n, 7_000);
        entry.id = 42;
        entry.state = DeliveryState::Dead;
        entry.attempts = 12;
        entry.last_error = Some("HTTP 403".into());
        let info = outbox_entry_info(&entry);
        assert_eq!((info.id, info.sink.as_str(), info.state.as_str(), info.attempts), (42, "rt", "dead", 12));
        assert_eq!(info.idempotency_key, "rt/disk-almost-full/firing/3");
        assert_eq!((info.transition.as_str(), info.rule.as_str(), info.alert_count), ("firing", "disk-almost-full", 2));
        assert_eq!((info.created_at_unix_ms, info.last_error.as_deref(), info.delivered_at_unix_ms), (7_000, Some("HTTP 403"), None));
    }
}
