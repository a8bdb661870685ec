//! Rule evaluation and the alert lifecycle.
//!
//! `evaluate(&rules, &fleet, &mut book, now)` finds every (rule, host,
//! instance) whose condition holds, moves the book's alerts through
//! pending → firing → resolved, and returns the transitions to notify,
//! grouped. The caller runs it on a timer and hands the notifications to
//! the outbox.
//!
//! Invariants:
//! - the engine is pure: `evaluate` does no I/O and never reads the clock;
//!   `now` is an argument, and the same (rules, fleet, book, now) always
//!   gives the same book and notifications;
//! - evaluating again with the same fleet and time gives no notification
//!   (dedup by fingerprint: a firing alert is notified once per incident);
//! - `for`: an alert is pending until its condition has held for the rule's
//!   `for` (measured across evaluations), and a pending alert whose
//!   condition clears disappears without a notification;
//! - flap damping is a resolve hold: a firing alert resolves only once its
//!   condition has stayed clear for the rule's `keep_firing_for`; if it
//!   returns sooner the incident goes on, with no notification. An alert of
//!   a rule that was deleted or disabled, or of a host no longer in the
//!   fleet, resolves at once;
//! - silences mute notifications, never state: a silenced alert still goes
//!   pending, firing and resolved and is visible in the book. A firing alert
//!   never notified (it fired while silenced) is notified when the silence
//!   ends; a resolution is notified exactly when the firing was, so no
//!   ticket is left open and none is resolved that was never opened;
//! - an acknowledgement is announced once (`updated`) and mutes nothing
//!   else; value changes of a firing alert are kept in the book, not
//!   notified;
//! - grouping: the transitions of one evaluation are grouped per (rule,
//!   transition, route key = values of the rule's `group_by` labels), so
//!   500 hosts crossing one rule's threshold together make one notification
//!   listing 500 alerts. Every alert in it keeps its own idempotency key.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use census_version::Ecosystem;
use serde::{Deserialize, Serialize};

use super::book::{Alert, AlertBook, AlertFingerprint, AlertState};
use super::fleet::{FleetState, HostState};
use super::rules::{Condition, Rule, RuleSet, Severity};
use super::template::Context;
use crate::config::humantime_serde::format_duration;

/// Resolved alerts and ended silences stay visible this long.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(24 * 3_600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Firing,
    /// A notified firing alert was acknowledged.
    Updated,
    Resolved,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Firing => "firing",
            Transition::Updated => "updated",
            Transition::Resolved => "resolved",
        }
    }
}

/// One alert's part of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifiedAlert {
    /// `<fingerprint>:<transition>:<sequence>`: unique per transition, the
    /// same on every retry; sinks use it to refuse duplicates.
    pub idempotency_key: String,
    pub fingerprint: AlertFingerprint,
    pub sequence: u64,
    pub host_id: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub value: String,
    pub threshold: String,
    pub summary: String,
    pub description: String,
    pub starts_at_unix_ms: i64,
    pub ends_at_unix_ms: Option<i64>,
    pub acknowledged_by: Option<String>,
}

/// One grouped notification, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `<rule>/<transition>/<lowest member sequence>`: sequences are never
    /// reused, so neither is this key.
    pub idempotency_key: String,
    pub transition: Transition,
    pub rule: String,
    pub severity: Severity,
    /// The values of the rule's `group_by` labels.
    pub route_key: BTreeMap<String, String>,
    /// The alert's own summary when there is one alert, else a count.
    pub summary: String,
    pub runbook_url: String,
    pub alerts: Vec<NotifiedAlert>,
}

impl Notification {
    pub fn hosts(&self) -> Vec<&str> {
        self.alerts.iter().map(|a| a.hostname.as_str()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Evaluation {
    pub notifications: Vec<Notification>,
    pub pending: usize,
    pub firing: usize,
}

/// One (rule, host) condition match before it becomes an alert.
struct Instance {
    identity: BTreeMap<String, String>,
    value: String,
    threshold: String,
}

/// Evaluates `rules` against `fleet` at `now_unix_ms`, updating `book`.
pub fn evaluate(rules: &RuleSet, fleet: &FleetState, book: &mut AlertBook, now_unix_ms: i64) -> Evaluation {
    let mut holding = BTreeSet::new();
    for rule in rules.rules.iter().filter(|r| r.spec.enabled) {
        for host in &fleet.hosts {
            for instance in instances(rule, host, fleet, now_unix_ms) {
                let fp = AlertFingerprint::of(&rule.spec.name, &host.id, &instance.identity);
                observe_holding(book, rule, host, instance, &fp, now_unix_ms);
                holding.insert(fp);
            }
        }
    }

    let hosts: BTreeSet<&str> = fleet.hosts.iter().map(|h| h.id.as_str()).collect();
    let mut resolved_now = BTreeSet::new();
    book.alerts.retain(|fp, alert| {
        if holding.contains(fp) || alert.state == AlertState::Resolved {
            return true;
        }
        if alert.state == AlertState::Pending {
            return false;
        }
        let hold = match rules.get(&alert.rule) {
            Some(rule) if rule.spec.enabled && hosts.contains(alert.host_id.as_str()) => rule.spec.keep_firing_for,
            _ => Duration::ZERO,
        };
        let clear_since = *alert.clear_since_unix_ms.get_or_insert(now_unix_ms);
        if elapsed(clear_since, now_unix_ms) >= hold {
            alert.state = AlertState::Resolved;
            alert.resolved_at_unix_ms = Some(now_unix_ms);
            resolved_now.insert(fp.clone());
        }
        true
    });

    let retention_ms = i64::try_from(RESOLVED_RETENTION.as_millis()).unwrap_or(i64::MAX);
    book.alerts.retain(|_, a| a.resolved_at_unix_ms.is_none_or(|t| now_unix_ms.saturating_sub(t) < retention_ms));
    book.silences.retain(|s| now_unix_ms.saturating_sub(s.ends_at_unix_ms) < retention_ms);

    // (rule, transition, route) -> (severity, runbook, alert) per member.
    type GroupKey = (String, Transition, Vec<String>);
    let mut groups: BTreeMap<GroupKey, Vec<(Severity, String, NotifiedAlert)>> = BTreeMap::new();
    let AlertBook { alerts, silences, next_sequence } = book;
    for (fp, alert) in alerts.iter_mut() {
        alert.silenced_by =
            silences.iter().filter(|s| s.is_active(now_unix_ms) && s.matches(&alert.labels)).map(|s| s.id.clone()).collect();
        let transition = match alert.state {
            AlertState::Firing if !alert.notified_firing && alert.silenced_by.is_empty() => Some(Transition::Firing),
            AlertState::Firing if alert.notified_firing && alert.ack_to_announce && alert.silenced_by.is_empty() => {
                Some(Transition::Updated)
            }
            AlertState::Resolved if resolved_now.contains(fp) && alert.notified_firing => Some(Transition::Resolved),
            _ => None,
        };
        alert.ack_to_announce = false;
        let Some(transition) = transition else { continue };
        *next_sequence += 1;
        alert.last_sequence = *next_sequence;
        alert.notified_firing = transition != Transition::Resolved;
        let route: Vec<String> = match rules.get(&alert.rule) {
            Some(rule) => {
                rule.spec.group_by.iter().map(|l| format!("{l}={}", alert.labels.get(l).map(String::as_str).unwrap_or(""))).collect()
            }
            None => Vec::new(),
        };
        groups.entry((alert.rule.clone(), transition, route)).or_default().push((
            alert.severity,
            alert.runbook_url.clone(),
            notified(alert, transition),
        ));
    }

    let notifications = groups
        .into_iter()
        .map(|((rule, transition, route), members)| {
            let severity = members.iter().map(|m| m.0).max().unwrap_or_default();
            let runbook_url = members.first().map(|m| m.1.clone()).unwrap_or_default();
            let alerts: Vec<NotifiedAlert> = members.into_iter().map(|m| m.2).collect();
            let first_sequence = alerts.iter().map(|a| a.sequence).min().unwrap_or(0);
            let summary = match alerts.as_slice() {
                [one] => one.summary.clone(),
                many => format!("{rule}: {} alerts {}", many.len(), transition.as_str()),
            };
            Notification {
                idempotency_key: format!("{rule}/{}/{first_sequence}", transition.as_str()),
                transition,
                route_key: route.iter().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                rule,
                severity,
                summary,
                runbook_url,
                alerts,
            }
        })
        .collect();

    Evaluation {
        notifications,
        pending: book.alerts.values().filter(|a| a.state == AlertState::Pending).count(),
        firing: book.alerts.values().filter(|a| a.state == AlertState::Firing).count(),
    }
}

/// Records that an instance's condition holds now.
fn observe_holding(book: &mut AlertBook, rule: &Rule, host: &HostState, instance: Instance, fp: &AlertFingerprint, now_unix_ms: i64) {
    let mut labels = host.labels.clone();
    labels.extend(rule.spec.labels.clone());
    labels.extend(instance.identity.clone());
    labels.insert("alertname".into(), rule.spec.name.clone());
    labels.insert("host".into(), host.hostname.clone());
    labels.insert("severity".into(), rule.spec.severity.as_str().into());
    let cx = Context {
        host: &host.hostname,
        value: &instance.value,
        threshold: &instance.threshold,
        rule: &rule.spec.name,
        severity: rule.spec.severity.as_str(),
        labels: &labels,
    };
    let (summary, description) = (rule.summary.render(&cx), rule.description.render(&cx));

    let alert = match book.alerts.get_mut(fp) {
        Some(a) if a.state != AlertState::Resolved => a,
        _ => {
            // A new incident (or a new one after a resolved one: a fresh
            // record, unacknowledged).
            book.alerts.insert(
                fp.clone(),
                Alert {
                    fingerprint: fp.clone(),
                    rule: rule.spec.name.clone(),
                    host_id: host.id.clone(),
                    hostname: host.hostname.clone(),
                    identity: instance.identity.clone(),
                    labels: BTreeMap::new(),
                    severity: rule.spec.severity,
                    state: AlertState::Pending,
                    value: String::new(),
                    threshold: String::new(),
                    summary: String::new(),
                    description: String::new(),
                    runbook_url: String::new(),
                    active_since_unix_ms: now_unix_ms,
                    firing_since_unix_ms: None,
                    clear_since_unix_ms: None,
                    resolved_at_unix_ms: None,
                    acknowledged: None,
                    silenced_by: Vec::new(),
                    notified_firing: false,
                    ack_to_announce: false,
                    last_sequence: 0,
                },
            );
            book.alerts.get_mut(fp).expect("the alert was inserted just above")
        }
    };
    alert.hostname.clone_from(&host.hostname);
    alert.labels = labels;
    alert.severity = rule.spec.severity;
    alert.value = instance.value;
    alert.threshold = instance.threshold;
    alert.summary = summary;
    alert.description = description;
    alert.runbook_url.clone_from(&rule.spec.runbook_url);
    alert.clear_since_unix_ms = None;
    if alert.state == AlertState::Pending && elapsed(alert.active_since_unix_ms, now_unix_ms) >= rule.spec.for_ {
        alert.state = AlertState::Firing;
        alert.firing_since_unix_ms = Some(now_unix_ms);
    }
}

/// An alert's part of a notification of `transition`.
pub fn notified(alert: &Alert, transition: Transition) -> NotifiedAlert {
    NotifiedAlert {
        idempotency_key: format!("{}:{}:{}", alert.fingerprint, transition.as_str(), alert.last_sequence),
        fingerprint: alert.fingerprint.clone(),
        sequence: alert.last_sequence,
        host_id: alert.host_id.clone(),
        hostname: alert.hostname.clone(),
        labels: alert.labels.clone(),
        value: alert.value.clone(),
        threshold: alert.threshold.clone(),
        summary: alert.summary.clone(),
        description: alert.description.clone(),
        starts_at_unix_ms: alert.firing_since_unix_ms.unwrap_or(alert.active_since_unix_ms),
        ends_at_unix_ms: alert.resolved_at_unix_ms,
        acknowledged_by: alert.acknowledged.as_ref().map(|a| a.by.clone()),
    }
}

fn elapsed(since_unix_ms: i64, now_unix_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_unix_ms.saturating_sub(since_unix_ms)).unwrap_or(0))
}

/// The label naming the instance a `*` in a metric rule selects. Custom
/// series get the generic `instance`: in `custom.queue_depth.*` the star
/// stands for the label values the agent appended (`mail`, or `mail.par`
/// for two labels).
fn instance_label(metric: &str) -> &'static str {
    match metric.split('.').next() {
        Some("fs") => "mount",
        Some("disk") => "device",
        Some("net") => "interface",
        Some("temp") => "sensor",
        _ => "instance",
    }
}

/// "93.5", "90", "0.33": at most two decimals, no trailing zeros.
fn format_value(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// The package name in a software change's subject (`name:arch (source)`).
fn subject_package(subject: &str) -> &str {
    let name = subject.split(" (").next().unwrap_or(subject);
    name.split(':').next().unwrap_or(name)
}

fn one(value: String, threshold: String) -> Vec<Instance> {
    vec![Instance { identity: BTreeMap::new(), value, threshold }]
}

/// The condition's matches on one host.
fn instances(rule: &Rule, host: &HostState, fleet: &FleetState, now_unix_ms: i64) -> Vec<Instance> {
    match &rule.spec.when {
        Condition::Metric { metric, op, threshold, stale_after } => host
            .metrics
            .iter()
            .filter(|(name, point)| {
                metric.matches(name) && elapsed(point.at_unix_ms, now_unix_ms) <= *stale_after && op.holds(point.value, *threshold)
            })
            .map(|(name, point)| {
                let mut identity = BTreeMap::from([("metric".to_string(), name.clone())]);
                if let Some(captured) = metric.capture(name) {
                    identity.insert(instance_label(name).to_string(), captured.to_string());
                }
                Instance { identity, value: format_value(point.value), threshold: format_value(*threshold) }
            })
            .collect(),
        Condition::HostOffline { missed_heartbeats, after } => {
            let allowed = match (missed_heartbeats, after) {
                (_, Some(d)) => *d,
                (Some(n), None) => fleet.heartbeat_interval.saturating_mul(*n),
                (None, None) => return Vec::new(),
            };
            // A host never heard from has no "since": it is not reported
            // offline (enrollment without a first report is visible elsewhere).
            let Some(last_seen) = host.last_seen_unix_ms else { return Vec::new() };
            let silent = elapsed(last_seen, now_unix_ms);
            if silent > allowed {
                let whole_seconds = |d: Duration| Duration::from_secs(d.as_secs());
                one(format_duration(whole_seconds(silent)), format_duration(whole_seconds(allowed)))
            } else {
                Vec::new()
            }
        }
        Condition::InventoryChange { change, subject, within } => {
            let mut subjects: Vec<&str> = host
                .changes
                .iter()
                .filter(|c| change.matches(c.kind.as_str()) && elapsed(c.at_unix_ms, now_unix_ms) < *within)
                .filter(|c| subject.matches(&c.subject) || subject.matches(subject_package(&c.subject)))
                .map(|c| c.subject.as_str())
                .collect();
            subjects.sort_unstable();
            subjects.dedup();
            if subjects.is_empty() {
                return Vec::new();
            }
            const SHOWN: usize = 10;
            let mut value = subjects.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
            if subjects.len() > SHOWN {
                value.push_str(&format!(" and {} more", subjects.len() - SHOWN));
            }
            one(value, change.as_string())
        }
        Condition::SoftwareMissing { package } => match &host.packages {
            Some(packages) if !packages.iter().any(|p| package.matches(&p.name)) => one("not installed".into(), package.as_string()),
            _ => Vec::new(),
        },
        Condition::SoftwareForbidden { package } => {
            let mut found: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for p in host.packages.iter().flatten().filter(|p| package.matches(&p.name)) {
                found.entry(&p.name).or_default().push(&p.version);
            }
            found
                .into_iter()
                .map(|(name, mut versions)| {
                    // Sorted and once each: the value does not depend on
                    // the order (or repeats, one per arch) the packages
                    // were listed in, which the software index does not keep.
                    versions.sort_unstable();
                    versions.dedup();
                    (name, versions)
                })
                .map(|(name, versions)| Instance {
                    identity: BTreeMap::from([("package".to_string(), name.to_string())]),
                    value: versions.join(", "),
                    threshold: package.as_string(),
                })
                .collect()
        }
        Condition::VersionBelow { package, minimum, source } => {
            // Per (name, source), the newest installed version decides: old
            // kernels kept beside a current one are not "below minimum".
            let mut newest: BTreeMap<(&str, &str), &str> = BTreeMap::new();
            for p in host.packages.iter().flatten() {
                if !package.matches(&p.name) || source.as_ref().is_some_and(|s| *s != p.source) {
                    continue;
                }
                let eco = Ecosystem::for_source(&p.source);
                newest
                    .entry((&p.name, &p.source))
                    .and_modify(|v| {
                        // Versions equal in the ordering (`1.0` and `1.00`)
                        // are told apart by their text, so the newest does
                        // not depend on the order packages are listed in.
                        let order = eco.compare(&p.version, v).then_with(|| p.version.as_str().cmp(v));
                        if order.is_gt() {
                            *v = &p.version;
                        }
                    })
                    .or_insert(&p.version);
            }
            newest
                .into_iter()
                .filter(|((_, src), version)| Ecosystem::for_source(src).compare(version, minimum).is_lt())
                .map(|((name, src), version)| Instance {
                    identity: BTreeMap::from([("package".to_string(), name.to_string()), ("source".to_string(), src.to_string())]),
                    value: version.to_string(),
                    threshold: minimum.clone(),
                })
                .collect()
        }
        Condition::OsEndOfLife { os_id, version_id, eol } => match &host.os {
            Some(os) if os.id == *os_id && version_id.matches(&os.version_id) && now_unix_ms >= eol.start_unix_ms() => {
                one(format!("{} {}", os.id, os.version_id), String::from(*eol))
            }
            _ => Vec::new(),
        },
        Condition::AgentOutdated { minimum } => match &host.agent_version {
            Some(v) if Ecosystem::Generic.compare(v, minimum).is_lt() => one(v.clone(), minimum.clone()),
            _ => Vec::new(),
        },
        Condition::CertificateExpiring { within, location, subject, include_ca } => {
            let horizon = now_unix_ms.saturating_add(i64::try_from(within.as_millis()).unwrap_or(i64::MAX));
            host.certificates
                .iter()
                .flatten()
                .filter(|c| c.not_after_unix_ms <= horizon && (*include_ca || !c.is_ca))
                .filter(|c| location.matches(&c.location) && subject.matches(&c.subject))
                .map(|c| {
                    let left_ms = c.not_after_unix_ms.saturating_sub(now_unix_ms);
                    let value = if left_ms <= 0 { "expired".to_string() } else { format!("{} days left", left_ms / 86_400_000) };
                    Instance {
                        identity: BTreeMap::from([("certificate".to_string(), format!("{}#{}", c.path, c.index))]),
                        value,
                        threshold: format_duration(*within),
                    }
                })
                .collect()
        }
        Condition::SmartFailurePredicted {} => host
            .smart
            .iter()
            .flatten()
            .filter(|d| !d.passed)
            .map(|d| Instance {
                identity: BTreeMap::from([("device".to_string(), d.disk.clone())]),
                value: "FAILED".into(),
                threshold: "PASSED".into(),
            })
            .collect(),
        Condition::BatteryHealthBelow { threshold } => host
            .batteries
            .iter()
            .flatten()
            .filter(|b| b.health_percent < *threshold)
            .map(|b| Instance {
                identity: BTreeMap::from([("battery".to_string(), b.name.clone())]),
                value: format_value(b.health_percent),
                threshold: format_value(*threshold),
            })
            .collect(),
        Condition::SecurityUpdatesPending { min_count } => {
            let Some(updates) = &host.updates else { return Vec::new() };
            let security: Vec<&str> = updates.iter().filter(|u| u.security).map(|u| u.name.as_str()).collect();
            if security.len() < *min_count as usize {
                return Vec::new();
            }
            const SHOWN: usize = 10;
            let mut value = format!("{}: {}", security.len(), security.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", "));
            if security.len() > SHOWN {
                value.push_str(&format!(" and {} more", security.len() - SHOWN));
            }
            one(value, min_count.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::book::{MatchOp, Matcher, Silence};
    use crate::alert::fleet::{MetricPoint, OsFact, PackageFact};
    use crate::changes::{Change, ChangeKind};

    const MIN: i64 = 60_000;
    const T0: i64 = 1_750_000_000_000;

    fn rules(text: &str) -> RuleSet {
        RuleSet::from_toml(text).expect("test rules are valid")
    }

    fn disk_rule(extra: &str) -> RuleSet {
        rules(&format!(
            "[[rule]]\nname = \"disk\"\nfor = \"10m\"\nkeep_firing_for = \"0s\"\n{extra}\nsummary = \"{{{{host}}}} {{{{labels.mount}}}} {{{{value}}}}% > {{{{threshold}}}}%\"\nwhen = {{ kind = \"metric\", metric = \"fs.*.used_percent\", op = \">\", threshold = 90 }}\n"
        ))
    }

    fn host_with_disk(id: &str, used: f64, at: i64) -> HostState {
        let mut h = HostState::new(id, &format!("{id}.example"));
        h.last_seen_unix_ms = Some(at);
        h.metrics.insert("fs./var.used_percent".into(), MetricPoint { value: used, at_unix_ms: at });
        h.metrics.insert("fs./.used_percent".into(), MetricPoint { value: 10.0, at_unix_ms: at });
        h
    }

    fn fleet(hosts: Vec<HostState>) -> FleetState {
        FleetState { heartbeat_interval: Duration::from_secs(60), hosts }
    }

    fn transitions(e: &Evaluation) -> Vec<(Transition, Vec<String>)> {
        e.notifications.iter().map(|n| (n.transition, n.alerts.iter().map(|a| a.hostname.clone()).collect())).collect()
    }

    fn state_of(book: &AlertBook) -> Vec<AlertState> {
        book.alerts().map(|a| a.state).collect()
    }

    /// Fires `text`'s single rule on `host` (with `for` 0) and returns the
    /// firing alerts' (value, threshold, identity).
    fn fire(text: &str, host: HostState, now: i64) -> Vec<(String, String, BTreeMap<String, String>)> {
        let mut book = AlertBook::new();
        evaluate(&rules(text), &fleet(vec![host]), &mut book, now);
        book.alerts()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| (a.value.clone(), a.threshold.clone(), a.identity.clone()))
            .collect()
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let r = disk_rule("");
        let mut book = AlertBook::new();
        let e = evaluate(&r, &fleet(vec![host_with_disk("a", 95.0, T0)]), &mut book, T0);
        assert!(e.notifications.is_empty());
        assert_eq!(state_of(&book), [AlertState::Pending]);
        assert_eq!(e.pending, 1);

        let e = evaluate(&r, &fleet(vec![host_with_disk("a", 96.0, T0 + 9 * MIN)]), &mut book, T0 + 9 * MIN);
        assert!(e.notifications.is_empty(), "9 minutes is not 10");

        let e = evaluate(&r, &fleet(vec![host_with_disk("a", 97.0, T0 + 10 * MIN)]), &mut book, T0 + 10 * MIN);
        assert_eq!(transitions(&e), [(Transition::Firing, vec!["a.example".to_string()])]);
        let n = &e.notifications[0];
        assert_eq!(n.summary, "a.example /var 97% > 90%");
        assert_eq!(n.alerts[0].labels.get("mount").map(String::as_str), Some("/var"));
        assert_eq!(n.alerts[0].labels.get("alertname").map(String::as_str), Some("disk"));
        assert_eq!(n.alerts[0].starts_at_unix_ms, T0 + 10 * MIN);
        assert_eq!(n.alerts[0].idempotency_key, format!("{}:firing:1", n.alerts[0].fingerprint));

        let e = evaluate(&r, &fleet(vec![host_with_disk("a", 50.0, T0 + 11 * MIN)]), &mut book, T0 + 11 * MIN);
        assert_eq!(transitions(&e), [(Transition::Resolved, vec!["a.example".to_string()])]);
        assert_eq!(e.notifications[0].alerts[0].ends_at_unix_ms, Some(T0 + 11 * MIN));
        assert_eq!(e.notifications[0].alerts[0].sequence, 2);
        assert_eq!(state_of(&book), [AlertState::Resolved]);

        // A later recurrence is a new incident: pending again, for again.
        let e = evaluate(&r, &fleet(vec![host_with_disk("a", 99.0, T0 + 12 * MIN)]), &mut book, T0 + 12 * MIN);
        assert!(e.notifications.is_empty());
        assert_eq!(state_of(&book), [AlertState::Pending]);
    }

    #[test]
    fn pending_that_clears_leaves_no_trace() {
        let r = disk_rule("");
        let mut book = AlertBook::new();
        evaluate(&r, &fleet(vec![host_with_disk("a", 95.0, T0)]), &mut book, T0);
        let e = evaluate(&r, &fleet(vec![host_with_disk("a", 50.0, T0 + MIN)]), &mut book, T0 + MIN);
        assert!(e.notifications.is_empty());
        assert_eq!(book.alerts().count(), 0);
    }

    #[test]
    fn same_state_twice_notifies_once() {
        let r = disk_rule("");
        let mut book = AlertBook::new();
        let f = fleet(vec![host_with_disk("a", 95.0, T0)]);
        evaluate(&r, &f, &mut book, T0);
        let later = fleet(vec![host_with_disk("a", 95.0, T0 + 10 * MIN)]);
        assert_eq!(evaluate(&r, &later, &mut book, T0 + 10 * MIN).notifications.len(), 1);
        assert!(evaluate(&r, &later, &mut book, T0 + 10 * MIN).notifications.is_empty());
        let value_changed = fleet(vec![host_with_disk("a", 98.0, T0 + 11 * MIN)]);
        assert!(evaluate(&r, &value_changed, &mut book, T0 + 11 * MIN).notifications.is_empty(), "a new value is not a new alert");
        assert_eq!(book.alerts().next().map(|a| a.value.as_str()), Some("98"));
    }

    #[test]
    fn flap_damping_holds_the_incident_open() {
        let r = disk_rule("").rules.into_iter().map(|mut rule| {
            rule.spec.keep_firing_for = Duration::from_secs(300);
            rule.spec.for_ = Duration::ZERO;
            rule.spec
        });
        let r = RuleSet::from_specs(r.collect()).expect("valid");
        let mut book = AlertBook::new();
        let at = |used: f64, t: i64, book: &mut AlertBook| evaluate(&r, &fleet(vec![host_with_disk("a", used, t)]), book, t);
        assert_eq!(at(95.0, T0, &mut book).notifications.len(), 1);
        // Flapping: clear, back, clear, back within 5 minutes: nothing.
        for (i, used) in [50.0, 95.0, 50.0, 95.0, 50.0].into_iter().enumerate() {
            let e = at(used, T0 + (i as i64 + 1) * MIN, &mut book);
            assert!(e.notifications.is_empty(), "flap {i}: {:?}", transitions(&e));
            assert_eq!(state_of(&book), [AlertState::Firing]);
        }
        // Clear since T0+5m; resolves once clear for 5 minutes.
        assert!(at(50.0, T0 + 9 * MIN, &mut book).notifications.is_empty());
        let e = at(50.0, T0 + 10 * MIN, &mut book);
        assert_eq!(transitions(&e), [(Transition::Resolved, vec!["a.example".to_string()])]);
        assert_eq!(e.notifications[0].alerts[0].sequence, 2, "the whole flapping incident took two transitions");
    }

    #[test]
    fn five_hundred_hosts_make_one_notification() {
        let r = disk_rule("");
        let mut book = AlertBook::new();
        let hosts = |t: i64, used: f64| fleet((0..500).map(|i| host_with_disk(&format!("h{i:03}"), used, t)).collect());
        evaluate(&r, &hosts(T0, 95.0), &mut book, T0);
        let e = evaluate(&r, &hosts(T0 + 10 * MIN, 95.0), &mut book, T0 + 10 * MIN);
        assert_eq!(e.notifications.len(), 1);
        let n = &e.notifications[0];
        assert_eq!(n.alerts.len(), 500);
        assert_eq!(n.hosts().len(), 500);
        assert_eq!(n.summary, "disk: 500 alerts firing");
        let keys: BTreeSet<&str> = n.alerts.iter().map(|a| a.idempotency_key.as_str()).collect();
        assert_eq!(keys.len(), 500, "every alert keeps its own key");
        let e = evaluate(&r, &hosts(T0 + 11 * MIN, 10.0), &mut book, T0 + 11 * MIN);
        assert_eq!(e.notifications.len(), 1);
        assert_eq!((e.notifications[0].transition, e.notifications[0].alerts.len()), (Transition::Resolved, 500));
    }

    #[test]
    fn group_by_splits_notifications_per_route() {
        let r = disk_rule("group_by = [\"site\"]");
        let mut book = AlertBook::new();
        let hosts: Vec<HostState> = (0..6)
            .map(|i| {
                let mut h = host_with_disk(&format!("h{i}"), 95.0, T0);
                h.labels.insert("site".into(), if i % 2 == 0 { "par" } else { "lyo" }.into());
                h
            })
            .collect();
        let mut f = fleet(hosts);
        evaluate(&r, &f, &mut book, T0);
        for h in &mut f.hosts {
            h.metrics.values_mut().for_each(|p| p.at_unix_ms = T0 + 10 * MIN);
        }
        let e = evaluate(&r, &f, &mut book, T0 + 10 * MIN);
        let routes: Vec<(String, usize)> = e.notifications.iter().map(|n| (n.route_key["site"].clone(), n.alerts.len())).collect();
        assert_eq!(routes, [("lyo".to_string(), 3), ("par".to_string(), 3)]);
        assert_ne!(e.notifications[0].idempotency_key, e.notifications[1].idempotency_key);
    }

    fn silence(id: &str, matchers: Vec<Matcher>, starts: i64, ends: i64) -> Silence {
        Silence {
            id: id.into(),
            matchers,
            starts_at_unix_ms: starts,
            ends_at_unix_ms: ends,
            created_by: "ops".into(),
            comment: String::new(),
        }
    }

    fn m(label: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher { label: label.into(), op, value: value.into() }
    }

    #[test]
    fn silences_mute_matching_alerts_until_they_expire() {
        let r = disk_rule("").rules.into_iter().map(|mut rule| {
            rule.spec.for_ = Duration::ZERO;
            rule.spec
        });
        let r = RuleSet::from_specs(r.collect()).expect("valid");
        let mut book = AlertBook::new();
        book.add_silence(silence("s1", vec![m("host", MatchOp::Glob, "a.*"), m("mount", MatchOp::Equal, "/var")], T0, T0 + 30 * MIN))
            .expect("valid");
        book.add_silence(silence("other", vec![m("host", MatchOp::Equal, "zzz")], T0, T0 + 30 * MIN)).expect("valid");
        let f = |t| fleet(vec![host_with_disk("a", 95.0, t), host_with_disk("b", 95.0, t)]);
        let e = evaluate(&r, &f(T0), &mut book, T0);
        assert_eq!(transitions(&e), [(Transition::Firing, vec!["b.example".to_string()])], "a is silenced, b is not");
        let a = book.alerts().find(|x| x.host_id == "a").expect("a's alert is visible");
        assert_eq!((a.state, a.silenced_by.clone()), (AlertState::Firing, vec!["s1".to_string()]));

        // The silence ends: a's firing goes out then, once.
        let e = evaluate(&r, &f(T0 + 30 * MIN), &mut book, T0 + 30 * MIN);
        assert_eq!(transitions(&e), [(Transition::Firing, vec!["a.example".to_string()])]);
        assert!(evaluate(&r, &f(T0 + 31 * MIN), &mut book, T0 + 31 * MIN).notifications.is_empty());
    }

    #[test]
    fn silenced_alert_that_never_notified_resolves_quietly_and_notified_one_loudly() {
        let r = disk_rule("").rules.into_iter().map(|mut rule| {
            rule.spec.for_ = Duration::ZERO;
            rule.spec
        });
        let r = RuleSet::from_specs(r.collect()).expect("valid");
        let mut book = AlertBook::new();
        // b fires first, notified; then everything is silenced.
        evaluate(&r, &fleet(vec![host_with_disk("b", 95.0, T0)]), &mut book, T0);
        book.add_silence(silence("all", vec![m("alertname", MatchOp::Equal, "disk")], T0, T0 + 60 * MIN)).expect("valid");
        let e = evaluate(&r, &fleet(vec![host_with_disk("a", 95.0, T0 + MIN), host_with_disk("b", 95.0, T0 + MIN)]), &mut book, T0 + MIN);
        assert!(e.notifications.is_empty());
        let e = evaluate(
            &r,
            &fleet(vec![host_with_disk("a", 5.0, T0 + 2 * MIN), host_with_disk("b", 5.0, T0 + 2 * MIN)]),
            &mut book,
            T0 + 2 * MIN,
        );
        assert_eq!(transitions(&e), [(Transition::Resolved, vec!["b.example".to_string()])], "b's ticket must close; a never had one");
    }

    #[test]
    fn expired_and_future_silences_do_not_mute() {
        let mut book = AlertBook::new();
        book.add_silence(silence("past", vec![m("host", MatchOp::NotEqual, "")], T0 - 60 * MIN, T0 - MIN)).expect("valid");
        book.add_silence(silence("future", vec![m("host", MatchOp::NotEqual, "")], T0 + MIN, T0 + 60 * MIN)).expect("valid");
        book.add_silence(silence("expired", vec![m("host", MatchOp::NotEqual, "")], T0 - MIN, T0 + 60 * MIN)).expect("valid");
        book.expire_silence("expired", T0).expect("exists");
        let r = rules("[[rule]]\nname = \"old\"\nwhen = { kind = \"agent_outdated\", minimum = \"1.0\" }\n");
        let mut h = HostState::new("a", "a");
        h.agent_version = Some("0.9".into());
        assert_eq!(evaluate(&r, &fleet(vec![h]), &mut book, T0).notifications.len(), 1);
        assert!(book.alerts().all(|a| a.silenced_by.is_empty()));
        assert_eq!(book.expire_silence("nope", T0), Err(crate::alert::book::AlertError::UnknownSilence("nope".into())));
        assert!(book.add_silence(silence("empty", vec![], T0, T0 + 1)).is_err(), "an empty silence would mute everything");
        assert!(book.add_silence(silence("past", vec![m("a", MatchOp::Equal, "")], T0, T0 + 1)).is_err(), "ids are unique");
        assert!(book.add_silence(silence("backwards", vec![m("a", MatchOp::Equal, "")], T0, T0)).is_err());
    }

    #[test]
    fn acknowledgement_is_announced_once_and_ends_with_the_incident() {
        let r = rules("[[rule]]\nname = \"old\"\nkeep_firing_for = \"0s\"\nwhen = { kind = \"agent_outdated\", minimum = \"1.0\" }\n");
        let mut h = HostState::new("a", "a");
        h.agent_version = Some("0.9".into());
        let mut book = AlertBook::new();
        evaluate(&r, &fleet(vec![h.clone()]), &mut book, T0);
        let fp = book.alerts().next().map(|a| a.fingerprint.clone()).expect("an alert");
        book.acknowledge(&fp, "alice", "on it", T0 + MIN).expect("firing alerts can be acked");
        let e = evaluate(&r, &fleet(vec![h.clone()]), &mut book, T0 + 2 * MIN);
        assert_eq!(transitions(&e), [(Transition::Updated, vec!["a".to_string()])]);
        assert_eq!(e.notifications[0].alerts[0].acknowledged_by.as_deref(), Some("alice"));
        assert!(evaluate(&r, &fleet(vec![h.clone()]), &mut book, T0 + 3 * MIN).notifications.is_empty());
        assert!(book.alert(&fp).and_then(|a| a.acknowledged.as_ref()).is_some(), "the ack survives while firing");

        h.agent_version = Some("1.0".into());
        let e = evaluate(&r, &fleet(vec![h.clone()]), &mut book, T0 + 4 * MIN);
        assert_eq!(e.notifications[0].transition, Transition::Resolved);
        assert_eq!(book.acknowledge(&fp, "bob", "", T0 + 5 * MIN), Err(crate::alert::book::AlertError::AlreadyResolved(fp.to_string())));
        h.agent_version = Some("0.1".into());
        evaluate(&r, &fleet(vec![h]), &mut book, T0 + 6 * MIN);
        assert_eq!(
            book.alert(&fp).map(|a| (a.state, a.acknowledged.is_none())),
            Some((AlertState::Firing, true)),
            "a new incident starts unacknowledged"
        );
        let unknown = AlertFingerprint::of("x", "y", &BTreeMap::new());
        assert!(book.acknowledge(&unknown, "bob", "", T0).is_err());
    }

    #[test]
    fn removed_rule_or_host_resolves_at_once() {
        let r = rules("[[rule]]\nname = \"old\"\nwhen = { kind = \"agent_outdated\", minimum = \"1.0\" }\n");
        let mut h = HostState::new("a", "a");
        h.agent_version = Some("0.9".into());
        let mut book = AlertBook::new();
        evaluate(&r, &fleet(vec![h.clone()]), &mut book, T0);
        let e = evaluate(&RuleSet::default(), &fleet(vec![h]), &mut book, T0 + MIN);
        assert_eq!(e.notifications.first().map(|n| n.transition), Some(Transition::Resolved), "despite the 5m default hold");
        // Resolved alerts age out of the book.
        evaluate(&RuleSet::default(), &fleet(vec![]), &mut book, T0 + MIN + 24 * 60 * MIN);
        assert_eq!(book.alerts().count(), 0);
    }

    #[test]
    fn stale_metrics_do_not_fire() {
        let text = "[[rule]]\nname = \"m\"\nwhen = { kind = \"metric\", metric = \"mem.used_percent\", op = \">=\", threshold = 95, stale_after = \"5m\" }\n";
        let mut h = HostState::new("a", "a");
        h.metrics.insert("mem.used_percent".into(), MetricPoint { value: 95.0, at_unix_ms: T0 });
        assert_eq!(fire(text, h.clone(), T0 + 5 * MIN).len(), 1);
        assert!(fire(text, h, T0 + 6 * MIN).is_empty());
    }

    #[test]
    fn host_offline_by_missed_heartbeats_or_duration() {
        let missed = "[[rule]]\nname = \"off\"\nwhen = { kind = \"host_offline\", missed_heartbeats = 3 }\n";
        let after = "[[rule]]\nname = \"off\"\nwhen = { kind = \"host_offline\", after = \"1h\" }\n";
        let mut h = HostState::new("a", "a");
        h.last_seen_unix_ms = Some(T0);
        assert!(fire(missed, h.clone(), T0 + 3 * MIN).is_empty(), "three intervals is still on time");
        let fired = fire(missed, h.clone(), T0 + 3 * MIN + 1_000);
        assert_eq!(fired.iter().map(|f| (f.0.as_str(), f.1.as_str())).collect::<Vec<_>>(), [("181s", "3m")]);
        assert!(fire(after, h.clone(), T0 + 59 * MIN).is_empty());
        assert_eq!(fire(after, h.clone(), T0 + 61 * MIN).len(), 1);
        h.last_seen_unix_ms = None;
        assert!(fire(missed, h, T0 + 600 * MIN).is_empty(), "never seen is not offline");
    }

    #[test]
    fn inventory_change_predicates() {
        let installed = "[[rule]]\nname = \"c\"\nwhen = { kind = \"inventory_change\", change = \"software.installed\", subject = \"teamviewer*\", within = \"1h\" }\n";
        let hardware = "[[rule]]\nname = \"c\"\nwhen = { kind = \"inventory_change\", change = \"hardware.*\" }\n";
        let os = "[[rule]]\nname = \"c\"\nwhen = { kind = \"inventory_change\", change = \"os.*\" }\n";
        let ev = |kind, subject: &str, at| Change { at_unix_ms: at, kind, subject: subject.into(), old: String::new(), new: "1".into() };
        let mut h = HostState::new("a", "a");
        h.changes = vec![
            ev(ChangeKind::SoftwareInstalled, "teamviewer:amd64 (dpkg)", T0),
            ev(ChangeKind::SoftwareInstalled, "vim (dpkg)", T0),
            ev(ChangeKind::SoftwareRemoved, "teamviewer-host (dpkg)", T0),
            ev(ChangeKind::DiskAdded, "S3Z9NB0K", T0 - 120 * MIN),
        ];
        assert_eq!(fire(installed, h.clone(), T0 + 30 * MIN).iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["teamviewer:amd64 (dpkg)"]);
        assert!(fire(installed, h.clone(), T0 + 60 * MIN).is_empty(), "older than within");
        assert!(fire(hardware, h.clone(), T0).is_empty(), "the disk was added two hours ago");
        assert!(fire(os, h.clone(), T0).is_empty());
        h.changes.push(ev(ChangeKind::MemoryChanged, "memory", T0));
        h.changes.push(ev(ChangeKind::OsUpgraded, "os", T0));
        assert_eq!(fire(hardware, h.clone(), T0).len(), 1);
        assert_eq!(fire(os, h, T0).len(), 1);
    }

    fn pkg(name: &str, version: &str, source: &str) -> PackageFact {
        PackageFact { name: name.into(), version: version.into(), source: source.into() }
    }

    #[test]
    fn required_and_forbidden_software() {
        let required = "[[rule]]\nname = \"edr\"\nwhen = { kind = \"software_missing\", package = \"falcon-sensor\" }\n";
        let forbidden = "[[rule]]\nname = \"telnet\"\nwhen = { kind = \"software_forbidden\", package = \"telnet*\" }\n";
        let mut h = HostState::new("a", "a");
        assert!(fire(required, h.clone(), T0).is_empty(), "unknown software is not missing software");
        h.packages = Some(vec![pkg("vim", "9.0", "dpkg"), pkg("telnetd", "0.17", "dpkg"), pkg("telnet", "0.17", "dpkg")]);
        assert_eq!(fire(required, h.clone(), T0).len(), 1);
        let mut found: Vec<String> = fire(forbidden, h.clone(), T0).into_iter().map(|f| f.2["package"].clone()).collect();
        found.sort();
        assert_eq!(found, ["telnet", "telnetd"], "one alert per forbidden package");
        h.packages = Some(vec![pkg("falcon-sensor", "7.1", "rpm")]);
        assert!(fire(required, h.clone(), T0).is_empty());
        assert!(fire(forbidden, h, T0).is_empty());
    }

    #[test]
    fn version_below_minimum_uses_the_ecosystem_ordering() {
        let text = "[[rule]]\nname = \"ssl\"\nwhen = { kind = \"version_below\", package = \"openssl\", minimum = \"3.0.13\" }\n";
        let with = |pkgs: Vec<PackageFact>| {
            let mut h = HostState::new("a", "a");
            h.packages = Some(pkgs);
            fire(text, h, T0).into_iter().map(|f| f.0).collect::<Vec<_>>()
        };
        assert_eq!(with(vec![pkg("openssl", "3.0.11-1~deb12u2", "dpkg")]), ["3.0.11-1~deb12u2"]);
        assert!(with(vec![pkg("openssl", "3.0.13-1~deb12u1", "dpkg")]).is_empty());
        // dpkg: the tilde sorts before the end, so 3.0.13~rc1 is below 3.0.13.
        assert_eq!(with(vec![pkg("openssl", "3.0.13~rc1", "dpkg")]), ["3.0.13~rc1"]);
        // dpkg: an epoch wins over everything after it.
        assert!(with(vec![pkg("openssl", "1:1.1.1", "dpkg")]).is_empty());
        // rpm: 3.0.7-27.el9 < 3.0.13; a string comparison would say otherwise.
        assert_eq!(with(vec![pkg("openssl", "3.0.7-27.el9", "rpm")]), ["3.0.7-27.el9"]);
        assert!(with(vec![pkg("openssl", "1:3.0.7-27.el9", "rpm")]).is_empty(), "rpm epoch 1 beats no epoch");
        // The newest installed version decides.
        assert!(with(vec![pkg("openssl", "3.0.9", "dpkg"), pkg("openssl", "3.0.14", "dpkg")]).is_empty());
        let only_rpm = "[[rule]]\nname = \"ssl\"\nwhen = { kind = \"version_below\", package = \"openssl\", minimum = \"3.0.13\", source = \"rpm\" }\n";
        let mut h = HostState::new("a", "a");
        h.packages = Some(vec![pkg("openssl", "3.0.2", "dpkg")]);
        assert!(fire(only_rpm, h, T0).is_empty());
    }

    #[test]
    fn os_end_of_life_from_its_date() {
        let text = "[[rule]]\nname = \"eol\"\nwhen = { kind = \"os_end_of_life\", os_id = \"debian\", version_id = \"10\", eol = \"2024-06-30\" }\n";
        let eol = 1_719_705_600_000;
        let mut h = HostState::new("a", "a");
        h.os = Some(OsFact { id: "debian".into(), version_id: "10".into() });
        assert!(fire(text, h.clone(), eol - 1).is_empty());
        assert_eq!(
            fire(text, h.clone(), eol).iter().map(|f| (f.0.as_str(), f.1.as_str())).collect::<Vec<_>>(),
            [("debian 10", "2024-06-30")]
        );
        h.os = Some(OsFact { id: "debian".into(), version_id: "12".into() });
        assert!(fire(text, h.clone(), eol).is_empty());
        h.os = Some(OsFact { id: "ubuntu".into(), version_id: "10".into() });
        assert!(fire(text, h, eol).is_empty());
    }

    #[test]
    fn agent_outdated_compares_numerically() {
        let text = "[[rule]]\nname = \"agent\"\nwhen = { kind = \"agent_outdated\", minimum = \"0.10.0\" }\n";
        let with = |v: Option<&str>| {
            let mut h = HostState::new("a", "a");
            h.agent_version = v.map(String::from);
            fire(text, h, T0).len()
        };
        assert_eq!(with(Some("0.9.3")), 1);
        assert_eq!(with(Some("0.10.0")), 0);
        assert_eq!(with(Some("0.11.1")), 0);
        assert_eq!(with(None), 0);
    }

    #[test]
    fn default_rules_fire_on_their_metrics() {
        let mut h = HostState::new("a", "web-1");
        h.last_seen_unix_ms = Some(T0);
        for (name, value) in [("fs./srv.used_percent", 91.0), ("mem.used_percent", 96.0), ("failed_units", 2.0), ("cpu", 100.0)] {
            h.metrics.insert(name.into(), MetricPoint { value, at_unix_ms: T0 });
        }
        let mut book = AlertBook::new();
        let r = RuleSet::defaults();
        evaluate(&r, &fleet(vec![h.clone()]), &mut book, T0);
        let e = evaluate(&r, &fleet(vec![h]), &mut book, T0 + 10 * MIN);
        let summaries: Vec<&str> = e.notifications.iter().map(|n| n.summary.as_str()).collect();
        assert_eq!(
            summaries,
            ["web-1: filesystem /srv is 91% full", "web-1: 2 failed service(s)", "web-1 is offline", "web-1: memory 96% used"]
        );
    }

    #[test]
    fn custom_metrics_alert_by_name_or_glob_with_an_instance_label() {
        let custom = |name: &str, value: f64| census_proto::v1::CustomMetric { name: name.into(), value };
        let sample = census_proto::v1::HealthSample {
            custom: vec![
                custom("custom.test_fill", 95.0),
                custom("custom.queue_depth.mail", 120.0),
                custom("custom.queue_depth.bulk", 3.0),
            ],
            ..Default::default()
        };
        let mut h = HostState::new("a", "a");
        for (name, value) in crate::metrics::values_of(&sample) {
            h.metrics.insert(name, MetricPoint { value, at_unix_ms: T0 });
        }
        let rule = |metric: &str, threshold: u32| {
            format!("[[rule]]\nname = \"m\"\nwhen = {{ kind = \"metric\", metric = \"{metric}\", op = \">\", threshold = {threshold} }}\n")
        };
        let labels = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();

        let fired = fire(&rule("custom.test_fill", 90), h.clone(), T0);
        assert_eq!(fired, [("95".into(), "90".into(), labels(&[("metric", "custom.test_fill")]))]);
        let fired = fire(&rule("custom.queue_depth.*", 100), h.clone(), T0);
        assert_eq!(fired, [("120".into(), "100".into(), labels(&[("metric", "custom.queue_depth.mail"), ("instance", "mail")]))]);
        assert!(fire(&rule("custom.*", 1000), h, T0).is_empty());
    }

    #[test]
    fn the_custom_metric_rules_in_the_docs_fire() {
        let doc = include_str!("../../../docs/custom-metrics.md");
        let block = doc.split("## Alerting").nth(1).and_then(|s| s.split("```toml\n").nth(1)).and_then(|s| s.split("```").next());
        let r = rules(block.expect("docs/custom-metrics.md has a toml block under ## Alerting"));
        let mut h = HostState::new("a", "web-1");
        h.last_seen_unix_ms = Some(T0);
        for (name, value) in [("custom.test_fill", 93.0), ("custom.mail_queue_depth.deferred", 120.0), ("custom.mail_queue_depth", 500.0)] {
            h.metrics.insert(name.into(), MetricPoint { value, at_unix_ms: T0 });
        }
        let mut book = AlertBook::new();
        let summaries = |e: Evaluation| e.notifications.into_iter().map(|n| n.summary).collect::<Vec<_>>();
        let now = summaries(evaluate(&r, &fleet(vec![h.clone()]), &mut book, T0));
        assert_eq!(now, ["web-1: mail queue deferred holds 120 messages"], "no `for`: at once; the unlabelled series is not selected");
        let later = summaries(evaluate(&r, &fleet(vec![h]), &mut book, T0 + 10 * MIN));
        assert_eq!(later, ["web-1: /srv is 93% full"], "after its `for` of 10m");
    }

    #[test]
    fn values_are_formatted_briefly() {
        assert_eq!(format_value(93.456), "93.46");
        assert_eq!(format_value(90.0), "90");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(-0.001), "0");
    }

    mod idempotence {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever happened before, evaluating again with the same
            /// fleet and time notifies nothing and leaves the book as is.
            #[test]
            fn evaluating_twice_notifies_once(
                steps in proptest::collection::vec((proptest::collection::vec(0.0f64..100.0, 1..6), 0i64..20, any::<bool>()), 1..12),
            ) {
                let r = rules(&format!("{}\n[[rule]]\nname = \"off\"\nkeep_firing_for = \"2m\"\nwhen = {{ kind = \"host_offline\", missed_heartbeats = 2 }}\n", DISK_FOR_3M));
                let mut book = AlertBook::new();
                let mut now = T0;
                for (i, (used, advance_min, silence)) in steps.into_iter().enumerate() {
                    now += advance_min * MIN;
                    if silence {
                        let s = Silence { id: format!("s{i}"), matchers: vec![Matcher { label: "host".into(), op: MatchOp::Glob, value: "h1*".into() }], starts_at_unix_ms: now, ends_at_unix_ms: now + 5 * MIN, created_by: String::new(), comment: String::new() };
                        book.add_silence(s).expect("valid silence");
                    }
                    let hosts = used.iter().enumerate().map(|(h, u)| {
                        let mut host = host_with_disk(&format!("h{h}"), *u, now);
                        host.last_seen_unix_ms = Some(if *u > 50.0 { now } else { now - 5 * MIN });
                        host
                    }).collect();
                    let f = fleet(hosts);
                    evaluate(&r, &f, &mut book, now);
                    let before = book.clone();
                    let again = evaluate(&r, &f, &mut book, now);
                    prop_assert!(again.notifications.is_empty(), "{:?}", again.notifications);
                    prop_assert_eq!(&before, &book);
                }
            }
        }

        const DISK_FOR_3M: &str = "[[rule]]\nname = \"disk\"\nfor = \"3m\"\nkeep_firing_for = \"2m\"\nwhen = { kind = \"metric\", metric = \"fs.*.used_percent\", op = \">\", threshold = 70 }\n";
    }

    #[test]
    fn certificate_smart_battery_and_security_update_rules() {
        use crate::alert::fleet::{BatteryFact, CertificateFact, SmartFact, UpdateFact};
        let set = rules(
            r#"
[[rule]]
name = "cert"
when = { kind = "certificate_expiring", within = "30d", location = "service" }
[[rule]]
name = "smart"
when = { kind = "smart_failure_predicted" }
[[rule]]
name = "battery"
when = { kind = "battery_health_below", threshold = 60 }
[[rule]]
name = "security"
for = "7d"
when = { kind = "security_updates_pending" }
"#,
        );
        const DAY: i64 = 86_400_000;
        let cert = |path: &str, days: i64, location: &str, is_ca: bool| CertificateFact {
            path: path.into(),
            index: 0,
            location: location.into(),
            subject: "CN=x".into(),
            not_after_unix_ms: T0 + days * DAY,
            is_ca,
        };
        let mut h = HostState::new("a1", "laptop-7");
        h.certificates = Some(vec![
            cert("/etc/ssl/soon.pem", 10, "service", false),
            cert("/etc/ssl/gone.pem", -1, "service", false),
            cert("/etc/ssl/later.pem", 90, "service", false),
            cert("/etc/ssl/ca.pem", 5, "service", true),
            cert("/usr/local/share/ca-certificates/x.crt", 5, "trust_store", false),
        ]);
        h.smart = Some(vec![SmartFact { disk: "sda".into(), passed: false }, SmartFact { disk: "nvme0n1".into(), passed: true }]);
        h.batteries = Some(vec![
            BatteryFact { name: "BAT0".into(), health_percent: 55.5 },
            BatteryFact { name: "BAT1".into(), health_percent: 90.0 },
        ]);
        h.updates = Some(vec![
            UpdateFact { name: "openssl".into(), source: "apt".into(), security: true },
            UpdateFact { name: "vim".into(), source: "apt".into(), security: false },
        ]);
        let mut book = AlertBook::new();
        evaluate(&set, &fleet(vec![h.clone()]), &mut book, T0);
        fn by_rule<'b>(book: &'b AlertBook, rule: &str) -> Vec<&'b Alert> {
            book.alerts().filter(|a| a.rule == rule).collect()
        }

        let certs = by_rule(&book, "cert");
        let paths: Vec<&str> = certs.iter().map(|a| a.labels["certificate"].as_str()).collect();
        assert!(paths.contains(&"/etc/ssl/gone.pem#0") && paths.contains(&"/etc/ssl/soon.pem#0"), "{paths:?}");
        assert_eq!(certs.len(), 2, "expired and expiring service certificates; not the CA, the distant one or the trust store's");
        assert!(certs.iter().any(|a| a.value == "10 days left") && certs.iter().any(|a| a.value == "expired"));
        assert!(certs.iter().all(|a| a.state == AlertState::Firing));

        let smart = by_rule(&book, "smart");
        assert_eq!((smart.len(), smart[0].labels["device"].as_str()), (1, "sda"));
        let battery = by_rule(&book, "battery");
        assert_eq!((battery.len(), battery[0].labels["battery"].as_str(), battery[0].value.as_str()), (1, "BAT0", "55.5"));

        let security = by_rule(&book, "security");
        assert_eq!((security.len(), security[0].state, security[0].value.as_str()), (1, AlertState::Pending, "1: openssl"));
        evaluate(&set, &fleet(vec![h.clone()]), &mut book, T0 + 7 * DAY);
        assert_eq!(by_rule(&book, "security")[0].state, AlertState::Firing, "pending for 7 days: fires");

        // Unknown sections say nothing.
        let mut quiet = AlertBook::new();
        evaluate(&set, &fleet(vec![HostState::new("a2", "new-host")]), &mut quiet, T0);
        assert_eq!(quiet.alerts().count(), 0);
    }
}
