//! What the alert commands print (`census alerts`, `alert`, `ack`,
//! `silence`, `rules`, `outbox`): each calls one admin API method and
//! formats its answer as a table, JSON or CSV, in the style of `render.rs`,
//! whose helpers it shares.

use std::time::SystemTime;

use census_proto::v1 as pb;
use tonic::Status;

use super::Output;
use super::connect::AdminClient;
use super::render::{ago, csv, json, opt_time, section, table, time};
use crate::clock::unix_ms;

/// The first 12 characters of a fingerprint: what `census alerts` shows and
/// what the other commands accept (any unique prefix of 6 or more).
pub fn short_id(fingerprint: &str) -> String {
    fingerprint.chars().take(12).collect()
}

/// "in 59m", "in 3d" for a future time; `ago` for a past one.
pub fn relative(then_ms: i64, now_ms: i64) -> String {
    if then_ms <= now_ms {
        return ago(then_ms, now_ms);
    }
    // Rounded to the nearest unit: a silence added for 2h shows "in 2h",
    // not "in 1h" a millisecond later.
    let secs = (then_ms - now_ms + 500) / 1000;
    let round = |unit: i64| (secs + unit / 2) / unit;
    match secs {
        0..60 => format!("in {secs}s"),
        60..3570 => format!("in {}m", round(60)),
        3570..84600 => format!("in {}h", round(3600)),
        _ => format!("in {}d", round(86400)),
    }
}

/// "2026-05-01T10:00:00Z (5m ago)"; "-" when unset.
fn stamp(unix_ms: Option<i64>, now_ms: i64) -> String {
    match unix_ms {
        Some(ms) if ms > 0 => format!("{} ({})", crate::clock::rfc3339_seconds(ms), relative(ms, now_ms)),
        _ => "-".into(),
    }
}

/// When the alert entered its current state.
fn since(a: &pb::AlertInfo) -> i64 {
    match a.state.as_str() {
        "firing" => a.firing_since_unix_ms.unwrap_or(a.active_since_unix_ms),
        "resolved" => a.resolved_at_unix_ms.unwrap_or(a.active_since_unix_ms),
        _ => a.active_since_unix_ms,
    }
}

fn ack_and_silence(a: &pb::AlertInfo) -> String {
    match (a.acknowledged_by.is_some(), !a.silenced_by.is_empty()) {
        (true, true) => "acked, silenced".into(),
        (true, false) => "acked".into(),
        (false, true) => "silenced".into(),
        (false, false) => "-".into(),
    }
}

fn count(alerts: &[pb::AlertInfo], state: &str) -> usize {
    alerts.iter().filter(|a| a.state == state).count()
}

pub async fn alerts(client: &mut AdminClient, state: Option<&str>, output: Output) -> Result<String, Status> {
    let reply = client.list_alerts(pb::ListAlertsRequest { state: state.unwrap_or_default().to_string() }).await?.into_inner();
    Ok(match output {
        Output::Json => json(&reply.alerts),
        Output::Table => alerts_table(&reply.alerts, state, unix_ms(SystemTime::now())),
        Output::Csv => alerts_csv(&reply.alerts),
    })
}

pub fn alerts_table(alerts: &[pb::AlertInfo], state: Option<&str>, now_ms: i64) -> String {
    if alerts.is_empty() {
        return match state {
            Some(s) => format!("no {s} alerts\n"),
            None => "no alerts\n".into(),
        };
    }
    let mut t = table(&["ID", "STATE", "SEVERITY", "RULE", "HOST", "VALUE", "SINCE", "ACK/SILENCED", "SUMMARY"]);
    for a in alerts {
        t.add_row(vec![
            short_id(&a.fingerprint),
            a.state.clone(),
            a.severity.clone(),
            a.rule.clone(),
            a.hostname.clone(),
            a.value.clone(),
            ago(since(a), now_ms),
            ack_and_silence(a),
            a.summary.clone(),
        ]);
    }
    format!(
        "{t}\n{} alert(s): {} firing, {} pending, {} resolved\n",
        alerts.len(),
        count(alerts, "firing"),
        count(alerts, "pending"),
        count(alerts, "resolved")
    )
}

pub fn alerts_csv(alerts: &[pb::AlertInfo]) -> String {
    csv(
        &[
            "fingerprint",
            "state",
            "severity",
            "rule",
            "host_id",
            "hostname",
            "value",
            "threshold",
            "active_since",
            "firing_since",
            "resolved_at",
            "acknowledged_by",
            "silenced_by",
            "summary",
        ],
        alerts.iter().map(|a| {
            vec![
                a.fingerprint.clone(),
                a.state.clone(),
                a.severity.clone(),
                a.rule.clone(),
                a.host_id.clone(),
                a.hostname.clone(),
                a.value.clone(),
                a.threshold.clone(),
                time(a.active_since_unix_ms),
                opt_time(a.firing_since_unix_ms),
                opt_time(a.resolved_at_unix_ms),
                a.acknowledged_by.clone().unwrap_or_default(),
                a.silenced_by.join(" "),
                a.summary.clone(),
            ]
        }),
    )
}

pub async fn alert(client: &mut AdminClient, id: &str, output: Output) -> Result<String, Status> {
    let reply = client.get_alert(pb::GetAlertRequest { id: id.to_string() }).await?.into_inner();
    Ok(match output {
        Output::Json => json(&reply),
        // `run` refuses csv for a detail view.
        Output::Table | Output::Csv => alert_detail(&reply, unix_ms(SystemTime::now())),
    })
}

pub fn alert_detail(reply: &pb::GetAlertResponse, now_ms: i64) -> String {
    let a = reply.alert.clone().unwrap_or_default();
    let mut out = String::new();
    let acknowledged = match &a.acknowledged_by {
        Some(by) => {
            let comment = a.acknowledged_comment.clone().filter(|c| !c.is_empty()).map(|c| format!(": {c}")).unwrap_or_default();
            format!("by {by} at {}{comment}", stamp(a.acknowledged_at_unix_ms, now_ms))
        }
        None => "no".into(),
    };
    section(
        &mut out,
        "Alert",
        &[
            ("fingerprint", a.fingerprint.clone()),
            ("rule", a.rule.clone()),
            ("state", a.state.clone()),
            ("severity", a.severity.clone()),
            ("host", format!("{} ({})", a.hostname, a.host_id)),
            ("value", if a.threshold.is_empty() { a.value.clone() } else { format!("{} (threshold {})", a.value, a.threshold) }),
            ("active since", stamp(Some(a.active_since_unix_ms), now_ms)),
            ("firing since", stamp(a.firing_since_unix_ms, now_ms)),
            ("resolved at", stamp(a.resolved_at_unix_ms, now_ms)),
            ("acknowledged", acknowledged),
            ("silenced by", if a.silenced_by.is_empty() { "no".into() } else { a.silenced_by.join(", ") }),
            ("runbook", if a.runbook_url.is_empty() { "-".into() } else { a.runbook_url.clone() }),
        ],
    );
    out.push_str(&format!("\nSummary\n  {}\n", a.summary));
    if !a.description.is_empty() {
        out.push_str(&format!("\nDescription\n  {}\n", a.description));
    }
    let mut labels: Vec<(&String, &String)> = a.labels.iter().collect();
    labels.sort();
    let rows: Vec<(&str, String)> = labels.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
    section(&mut out, "Labels", &rows);
    if reply.tickets.is_empty() {
        out.push_str("\nTickets\n  none: no ticketing sink holds this alert\n");
    } else {
        let rows: Vec<(&str, String)> = reply.tickets.iter().map(|t| (t.sink.as_str(), t.ticket.clone())).collect();
        section(&mut out, "Tickets", &rows);
    }
    out
}

pub async fn ack(client: &mut AdminClient, id: &str, comment: &str, output: Output) -> Result<String, Status> {
    let reply =
        client.acknowledge_alert(pb::AcknowledgeAlertRequest { id: id.to_string(), comment: comment.to_string() }).await?.into_inner();
    let a = reply.alert.unwrap_or_default();
    Ok(match output {
        Output::Json => json(&a),
        Output::Table | Output::Csv => format!(
            "acknowledged {} ({} on {}) as {}\n",
            short_id(&a.fingerprint),
            a.rule,
            a.hostname,
            a.acknowledged_by.unwrap_or_default()
        ),
    })
}

pub async fn silence_add(
    client: &mut AdminClient,
    matchers: &[String],
    duration_ms: i64,
    ends_at_unix_ms: i64,
    comment: &str,
    output: Output,
) -> Result<String, Status> {
    let reply = client
        .add_silence(pb::AddSilenceRequest { matchers: matchers.to_vec(), duration_ms, ends_at_unix_ms, comment: comment.to_string() })
        .await?
        .into_inner();
    let s = reply.silence.unwrap_or_default();
    Ok(match output {
        Output::Json => json(&s),
        Output::Table | Output::Csv => format!(
            "silence {} added for {}, until {}\n",
            s.id,
            s.matchers.join(" "),
            stamp(Some(s.ends_at_unix_ms), unix_ms(SystemTime::now()))
        ),
    })
}

pub async fn silences(client: &mut AdminClient, output: Output) -> Result<String, Status> {
    let reply = client.list_silences(pb::ListSilencesRequest {}).await?.into_inner();
    Ok(match output {
        Output::Json => json(&reply.silences),
        Output::Table => silences_table(&reply.silences, unix_ms(SystemTime::now())),
        Output::Csv => csv(
            &["id", "state", "matchers", "starts_at", "ends_at", "created_by", "comment"],
            reply.silences.iter().map(|s| {
                vec![
                    s.id.clone(),
                    s.state.clone(),
                    s.matchers.join(" "),
                    time(s.starts_at_unix_ms),
                    time(s.ends_at_unix_ms),
                    s.created_by.clone(),
                    s.comment.clone(),
                ]
            }),
        ),
    })
}

pub fn silences_table(silences: &[pb::SilenceInfo], now_ms: i64) -> String {
    if silences.is_empty() {
        return "no silences\n".into();
    }
    let mut t = table(&["ID", "STATE", "MATCHERS", "STARTS", "ENDS", "CREATED BY", "COMMENT"]);
    for s in silences {
        t.add_row(vec![
            s.id.clone(),
            s.state.clone(),
            s.matchers.join(" "),
            relative(s.starts_at_unix_ms, now_ms),
            relative(s.ends_at_unix_ms, now_ms),
            s.created_by.clone(),
            s.comment.clone(),
        ]);
    }
    let active = silences.iter().filter(|s| s.state == "active").count();
    format!("{t}\n{} silence(s), {active} active\n", silences.len())
}

pub async fn silence_expire(client: &mut AdminClient, id: &str, output: Output) -> Result<String, Status> {
    let reply = client.expire_silence(pb::ExpireSilenceRequest { id: id.to_string() }).await?.into_inner();
    let s = reply.silence.unwrap_or_default();
    Ok(match output {
        Output::Json => json(&s),
        Output::Table | Output::Csv => format!("silence {} expired; matching alerts notify again from the next evaluation\n", s.id),
    })
}

pub async fn rules(client: &mut AdminClient, output: Output) -> Result<String, Status> {
    let reply = client.list_rules(pb::ListRulesRequest {}).await?.into_inner();
    Ok(match output {
        Output::Json => json(&reply),
        Output::Table => rules_table(&reply),
        Output::Csv => csv(
            &["name", "source", "enabled", "severity", "kind", "line"],
            reply.rules.iter().map(|r| {
                vec![
                    r.name.clone(),
                    r.source.clone(),
                    r.enabled.to_string(),
                    r.severity.clone(),
                    r.kind.clone(),
                    r.line.map(|l| l.to_string()).unwrap_or_default(),
                ]
            }),
        ),
    })
}

pub fn rules_table(reply: &pb::ListRulesResponse) -> String {
    let mut t = table(&["NAME", "SOURCE", "ENABLED", "SEVERITY", "KIND"]);
    for r in &reply.rules {
        t.add_row(vec![r.name.clone(), r.source.clone(), if r.enabled { "yes" } else { "no" }.into(), r.severity.clone(), r.kind.clone()]);
    }
    let from = |source: &str| reply.rules.iter().filter(|r| r.source == source).count();
    let mut out = format!(
        "{t}\n{} rule(s) in force: {} default, {} from the rule file, {} from the admin API\n",
        reply.rules.len(),
        from("default"),
        from("file"),
        from("api")
    );
    if let Some(e) = &reply.rule_file_error {
        out.push_str(&format!("\nthe rule file on disk is refused; the rules of the last good file stay in force:\n  {e}\n"));
    }
    out
}

pub async fn rules_test(client: &mut AdminClient, text: String, output: Output) -> Result<String, Status> {
    let reply = client.test_rules(pb::TestRulesRequest { toml: text }).await?.into_inner();
    Ok(match output {
        Output::Json => json(&reply.alerts),
        Output::Table => rules_test_table(&reply.alerts),
        Output::Csv => alerts_csv(&reply.alerts),
    })
}

pub fn rules_test_table(alerts: &[pb::AlertInfo]) -> String {
    if alerts.is_empty() {
        return "no rule would raise an alert now (nothing was stored or notified)\n".into();
    }
    let mut t = table(&["STATE", "SEVERITY", "RULE", "HOST", "VALUE", "SUMMARY"]);
    for a in alerts {
        t.add_row(vec![a.state.clone(), a.severity.clone(), a.rule.clone(), a.hostname.clone(), a.value.clone(), a.summary.clone()]);
    }
    format!(
        "{t}\n{} alert(s) would be raised now: {} firing, {} pending (they fire after the rule's `for`); nothing was stored or notified\n",
        alerts.len(),
        count(alerts, "firing"),
        count(alerts, "pending")
    )
}

pub async fn rule_add(client: &mut AdminClient, text: String, output: Output) -> Result<String, Status> {
    let reply = client.put_rule(pb::PutRuleRequest { toml: text }).await?.into_inner();
    let r = reply.rule.unwrap_or_default();
    Ok(match output {
        Output::Json => json(&r),
        Output::Table | Output::Csv => {
            format!("rule {} saved (source {}, {} {}); it is evaluated from the next round\n", r.name, r.source, r.severity, r.kind)
        }
    })
}

pub async fn rule_delete(client: &mut AdminClient, name: &str, output: Output) -> Result<String, Status> {
    client.delete_rule(pb::DeleteRuleRequest { name: name.to_string() }).await?;
    Ok(match output {
        Output::Json => json(&serde_json::json!({ "deleted": name })),
        Output::Table | Output::Csv => format!("rule {name} deleted; its alerts resolve at the next evaluation\n"),
    })
}

pub async fn outbox(
    client: &mut AdminClient,
    state: Option<&str>,
    sink: Option<&str>,
    limit: u32,
    output: Output,
) -> Result<String, Status> {
    let reply = client
        .list_outbox(pb::ListOutboxRequest {
            state: state.unwrap_or_default().to_string(),
            sink: sink.unwrap_or_default().to_string(),
            limit,
        })
        .await?
        .into_inner();
    Ok(match output {
        Output::Json => json(&reply.entries),
        Output::Table => outbox_table(&reply.entries, unix_ms(SystemTime::now())),
        Output::Csv => csv(
            &[
                "id",
                "sink",
                "idempotency_key",
                "state",
                "attempts",
                "created_at",
                "next_attempt_at",
                "last_attempt_at",
                "delivered_at",
                "transition",
                "rule",
                "alert_count",
                "summary",
                "last_error",
            ],
            reply.entries.iter().map(|e| {
                vec![
                    e.id.to_string(),
                    e.sink.clone(),
                    e.idempotency_key.clone(),
                    e.state.clone(),
                    e.attempts.to_string(),
                    time(e.created_at_unix_ms),
                    time(e.next_attempt_unix_ms),
                    opt_time(e.last_attempt_unix_ms),
                    opt_time(e.delivered_at_unix_ms),
                    e.transition.clone(),
                    e.rule.clone(),
                    e.alert_count.to_string(),
                    e.summary.clone(),
                    e.last_error.clone().unwrap_or_default(),
                ]
            }),
        ),
    })
}

pub fn outbox_table(entries: &[pb::OutboxEntryInfo], now_ms: i64) -> String {
    if entries.is_empty() {
        return "no outbox entries (notifications are queued here for the sinks configured with [[sink]])\n".into();
    }
    let mut t = table(&["ID", "SINK", "STATE", "ATTEMPTS", "NOTIFICATION", "ALERTS", "CREATED", "NEXT/DELIVERED", "LAST ERROR"]);
    for e in entries {
        let when = match e.state.as_str() {
            "pending" => relative(e.next_attempt_unix_ms, now_ms),
            "delivered" => e.delivered_at_unix_ms.map(|d| ago(d, now_ms)).unwrap_or_else(|| "-".into()),
            _ => "-".into(),
        };
        t.add_row(vec![
            e.id.to_string(),
            e.sink.clone(),
            e.state.clone(),
            e.attempts.to_string(),
            format!("{} {}", e.rule, e.transition),
            e.alert_count.to_string(),
            ago(e.created_at_unix_ms, now_ms),
            when,
            e.last_error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let dead = entries.iter().filter(|e| e.state == "dead").count();
    let mut out = format!("{t}\n{} entr{}\n", entries.len(), if entries.len() == 1 { "y" } else { "ies" });
    if dead > 0 {
        out.push_str(&format!("{dead} dead: fix the sink, then `census outbox retry ID`\n"));
    }
    out
}

pub async fn outbox_retry(client: &mut AdminClient, id: u64, output: Output) -> Result<String, Status> {
    let reply = client.retry_outbox(pb::RetryOutboxRequest { id }).await?.into_inner();
    let e = reply.entry.unwrap_or_default();
    Ok(match output {
        Output::Json => json(&e),
        Output::Table | Output::Csv => format!("outbox entry {} ({}) is pending again and due now\n", e.id, e.sink),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(state: &str) -> pb::AlertInfo {
        pb::AlertInfo {
            fingerprint: "a2d8a9bd013f2ddf9a8d41c033b6f4c807492af5b725b0faa0c83d0d04d79752".into(),
            rule: "disk-almost-full".into(),
            host_id: "agent-1".into(),
            hostname: "web-07".into(),
            state: state.into(),
            severity: "warning".into(),
            value: "93.4".into(),
            threshold: "90".into(),
            summary: "web-07: filesystem /var is 93.4% full".into(),
            labels: [("mount".to_string(), "/var".to_string()), ("alertname".to_string(), "disk-almost-full".to_string())].into(),
            active_since_unix_ms: 1_000,
            firing_since_unix_ms: Some(61_000),
            ..Default::default()
        }
    }

    #[test]
    fn relative_times_point_both_ways() {
        assert_eq!(relative(3_601_000, 1_000), "in 1h");
        assert_eq!(relative(2 * 3_600_000, 1), "in 2h", "a 2h silence a millisecond later");
        assert_eq!(relative(59 * 60_000 + 40_000, 0), "in 1h");
        assert_eq!(relative(90_000, 0), "in 2m");
        assert_eq!(relative(1_000, 121_000), "2m ago");
        assert_eq!(relative(1_000 + 2 * 86_400_000, 1_000), "in 2d");
    }

    #[test]
    fn alerts_table_shows_the_short_id_state_and_marks() {
        let mut acked = alert("firing");
        acked.acknowledged_by = Some("tok".into());
        acked.silenced_by = vec!["s1".into()];
        let text = alerts_table(&[acked, alert("pending")], None, 121_000);
        assert!(text.contains("a2d8a9bd013f ") && !text.contains("a2d8a9bd013f2"), "12 characters of the fingerprint:\n{text}");
        assert!(text.contains("acked, silenced") && text.contains("1m ago") && text.contains("2m ago"), "{text}");
        assert!(text.ends_with("2 alert(s): 1 firing, 1 pending, 0 resolved\n"), "{text}");
        assert_eq!(alerts_table(&[], Some("firing"), 0), "no firing alerts\n");
    }

    #[test]
    fn alerts_csv_quotes_and_keeps_full_values() {
        let mut a = alert("firing");
        a.summary = "disk, \"var\" full".into();
        let text = alerts_csv(&[a]);
        let mut lines = text.lines();
        assert_eq!(lines.next().expect("header").split(',').count(), 14);
        let row = lines.next().expect("row");
        assert!(row.starts_with("a2d8a9bd013f2ddf9a8d41c033b6f4c807492af5b725b0faa0c83d0d04d79752,firing,warning,"), "{row}");
        assert!(row.contains(",1970-01-01T00:00:01Z,1970-01-01T00:01:01Z,,"), "RFC 3339, empty when unset: {row}");
        assert!(row.ends_with(",\"disk, \"\"var\"\" full\""), "RFC 4180 quoting: {row}");
    }

    #[test]
    fn alert_detail_shows_labels_ack_and_tickets() {
        let mut a = alert("firing");
        a.acknowledged_by = Some("tok-7".into());
        a.acknowledged_at_unix_ms = Some(61_000);
        a.acknowledged_comment = Some("on it".into());
        let reply = pb::GetAlertResponse { alert: Some(a), tickets: vec![pb::AlertTicket { sink: "rt".into(), ticket: "4711".into() }] };
        let text = alert_detail(&reply, 121_000);
        for needle in
            ["disk-almost-full", "93.4 (threshold 90)", "by tok-7 at 1970-01-01T00:01:01Z (1m ago): on it", "mount", "/var", "rt", "4711"]
        {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
        let none = alert_detail(&pb::GetAlertResponse { alert: Some(alert("pending")), tickets: Vec::new() }, 0);
        assert!(none.contains("none: no ticketing sink holds this alert"), "{none}");
    }

    #[test]
    fn rules_table_counts_sources_and_shows_a_refused_file() {
        let rule =
            |name: &str, source: &str| pb::RuleInfo { name: name.into(), source: source.into(), enabled: true, ..Default::default() };
        let reply = pb::ListRulesResponse {
            rules: vec![rule("host-offline", "default"), rule("no-telnet", "file"), rule("mine", "api")],
            rule_file_error: Some("rule file /etc/census/rules.toml: line 3: ...".into()),
        };
        let text = rules_table(&reply);
        assert!(text.contains("3 rule(s) in force: 1 default, 1 from the rule file, 1 from the admin API"), "{text}");
        assert!(text.contains("the rule file on disk is refused") && text.contains("line 3"), "{text}");
    }

    #[test]
    fn outbox_table_says_what_to_do_with_dead_entries() {
        let entry = pb::OutboxEntryInfo {
            id: 7,
            sink: "rt".into(),
            state: "dead".into(),
            attempts: 12,
            rule: "disk".into(),
            transition: "firing".into(),
            alert_count: 2,
            last_error: Some("HTTP 403".into()),
            ..Default::default()
        };
        let text = outbox_table(&[entry], 0);
        assert!(text.contains("disk firing") && text.contains("HTTP 403"), "{text}");
        assert!(text.ends_with("1 entry\n1 dead: fix the sink, then `census outbox retry ID`\n"), "{text}");
        assert!(outbox_table(&[], 0).starts_with("no outbox entries"));
    }
}
