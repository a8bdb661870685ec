//! Routing: which sinks a notification goes to. Pure.
//!
//! `[[route]]` tables are tried in order; a route matches when every
//! matcher holds on the notification's *common labels* (the labels all its
//! alerts share: `alertname`, `severity`, the rule's labels, the `group_by`
//! values, and host labels when every alert is from one host) and its
//! severity is at least `min_severity`. The first matching route wins
//! unless it says `continue = true`. With no `[[route]]` at all, every
//! notification goes to every sink: the simple setup needs no routing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::book::Matcher;
use crate::alert::engine::Notification;
use crate::alert::rules::Severity;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Matchers written `label=value`, `label!=value`, `label=~glob`,
    /// `label!~glob`; all must hold. Empty: matches everything.
    #[serde(default, rename = "match", with = "matcher_strings")]
    pub matchers: Vec<Matcher>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Names of `[[sink]]`s.
    pub sinks: Vec<String>,
    /// Keep trying later routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
}

/// Labels every alert of the notification has with the same value.
pub fn common_labels(n: &Notification) -> BTreeMap<String, String> {
    let mut alerts = n.alerts.iter();
    let Some(first) = alerts.next() else { return BTreeMap::new() };
    let mut common = first.labels.clone();
    for a in alerts {
        common.retain(|k, v| a.labels.get(k) == Some(v));
    }
    common
}

/// The sinks `n` goes to, each once, in route order. `all_sinks` is every
/// configured sink, used when no route is configured.
pub fn sinks_for(routes: &[RouteConfig], all_sinks: &[String], n: &Notification) -> Vec<String> {
    if routes.is_empty() {
        return all_sinks.to_vec();
    }
    let labels = common_labels(n);
    let mut chosen: Vec<String> = Vec::new();
    for route in routes {
        let severity_ok = route.min_severity.is_none_or(|min| n.severity >= min);
        if severity_ok && route.matchers.iter().all(|m| m.matches(&labels)) {
            for sink in &route.sinks {
                if !chosen.contains(sink) {
                    chosen.push(sink.clone());
                }
            }
            if !route.continue_ {
                break;
            }
        }
    }
    chosen
}

mod matcher_strings {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::alert::book::Matcher;

    pub fn serialize<S: Serializer>(m: &[Matcher], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Matcher>, D::Error> {
        Vec::<String>::deserialize(d)?.iter().map(|t| Matcher::parse(t).map_err(serde::de::Error::custom)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::engine::{NotifiedAlert, Transition};

    fn alert(host: &str, site: &str) -> NotifiedAlert {
        let labels = BTreeMap::from([
            ("alertname".to_string(), "disk".to_string()),
            ("host".to_string(), host.to_string()),
            ("site".to_string(), site.to_string()),
            ("severity".to_string(), "critical".to_string()),
        ]);
        NotifiedAlert {
            idempotency_key: format!("{host}:firing:1"),
            fingerprint: crate::alert::AlertFingerprint::of("disk", host, &BTreeMap::new()),
            sequence: 1,
            host_id: host.into(),
            hostname: host.into(),
            labels,
            value: "95".into(),
            threshold: "90".into(),
            summary: String::new(),
            description: String::new(),
            starts_at_unix_ms: 0,
            ends_at_unix_ms: None,
            acknowledged_by: None,
        }
    }

    fn notification(alerts: Vec<NotifiedAlert>, severity: Severity) -> Notification {
        Notification {
            idempotency_key: "disk/firing/1".into(),
            transition: Transition::Firing,
            rule: "disk".into(),
            severity,
            route_key: BTreeMap::new(),
            summary: String::new(),
            runbook_url: String::new(),
            alerts,
        }
    }

    fn routes(toml_text: &str) -> Vec<RouteConfig> {
        #[derive(Deserialize)]
        struct F {
            route: Vec<RouteConfig>,
        }
        toml::from_str::<F>(toml_text).expect("routes parse").route
    }

    #[test]
    fn common_labels_keep_only_shared_values() {
        let n = notification(vec![alert("web-1", "par"), alert("web-2", "par")], Severity::Critical);
        let common = common_labels(&n);
        assert_eq!(common.get("site").map(String::as_str), Some("par"));
        assert!(!common.contains_key("host"), "hosts differ");
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let r = routes(
            r#"
[[route]]
match = ["site=par"]
sinks = ["rt-paris"]
continue = true
[[route]]
match = ["severity=critical"]
min_severity = "critical"
sinks = ["pager", "rt-paris"]
[[route]]
sinks = ["email"]
"#,
        );
        let all = vec!["rt-paris".to_string(), "pager".to_string(), "email".to_string()];
        let par = notification(vec![alert("web-1", "par"), alert("web-2", "par")], Severity::Critical);
        assert_eq!(sinks_for(&r, &all, &par), ["rt-paris", "pager"]);
        let lon = notification(vec![alert("web-3", "lon")], Severity::Warning);
        assert_eq!(sinks_for(&r, &all, &lon), ["email"], "warning is below the pager route's min_severity");
        assert_eq!(sinks_for(&[], &all, &lon), all, "no routes: every sink");
        assert!(sinks_for(&r[..1], &all, &lon).is_empty(), "no route matches: no sink");
    }

    #[test]
    fn a_bad_matcher_is_a_config_error() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct F {
            route: Vec<RouteConfig>,
        }
        let err = toml::from_str::<F>("[[route]]\nmatch = [\"no operator\"]\nsinks = []\n").unwrap_err();
        assert!(err.to_string().contains("expected label=value"), "{err}");
    }
}
