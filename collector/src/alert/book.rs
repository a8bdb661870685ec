//! The alert book: the engine's memory between evaluations — every alert
//! that is pending, firing or recently resolved, the silences, and the
//! transition sequence counter. It is a plain serialisable value: the
//! caller keeps it (and will persist it in the store), the engine updates
//! it in place.
//!
//! Invariants:
//! - an alert's identity is its [`AlertFingerprint`]: the SHA-256 (lower-case
//!   hex) of the canonical string `census-alert-v1\n<rule>\n<host id>\n`
//!   followed by one `<name>=<value>\n` per identity label in name order.
//!   Identity labels are the ones that tell two alerts of one rule on one
//!   host apart (`mount`, `package`, `metric`, ...); host and rule labels are
//!   not part of it, so relabelling a host or editing a rule's labels does
//!   not reopen its alerts. The format is stable: changing it reopens every
//!   alert and must bump the `v1`;
//! - `next_sequence` only grows, so an idempotency key
//!   (`<fingerprint>:<transition>:<sequence>`) is never issued twice by one
//!   book;
//! - an acknowledgement belongs to one incident: it lasts until the alert
//!   resolves, and a new incident of the same fingerprint starts unacknowledged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::pattern::Glob;
use super::rules::Severity;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertFingerprint(String);

impl AlertFingerprint {
    pub fn of(rule: &str, host_id: &str, identity: &BTreeMap<String, String>) -> AlertFingerprint {
        let mut canonical = format!("census-alert-v1\n{rule}\n{host_id}\n");
        for (k, v) in identity {
            canonical.push_str(&format!("{k}={v}\n"));
        }
        AlertFingerprint(hex::encode(Sha256::digest(canonical.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For ids typed by an operator (`census ack 3f2a…`).
    pub fn from_hex(s: &str) -> Option<AlertFingerprint> {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then(|| AlertFingerprint(s.to_string()))
    }
}

impl std::fmt::Display for AlertFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, for less than the rule's `for`: nothing sent.
    Pending,
    Firing,
    /// Kept for a while so operators can see what just cleared.
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<AlertState> {
        [AlertState::Pending, AlertState::Firing, AlertState::Resolved].into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at_unix_ms: i64,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: AlertFingerprint,
    pub rule: String,
    pub host_id: String,
    pub hostname: String,
    /// Identity labels (part of the fingerprint).
    pub identity: BTreeMap<String, String>,
    /// All labels: host, rule, identity, then `alertname`, `host`, `severity`.
    pub labels: BTreeMap<String, String>,
    pub severity: Severity,
    pub state: AlertState,
    pub value: String,
    pub threshold: String,
    pub summary: String,
    pub description: String,
    pub runbook_url: String,
    /// When the condition started to hold, for this incident.
    pub active_since_unix_ms: i64,
    pub firing_since_unix_ms: Option<i64>,
    /// Set while a firing alert's condition is clear but `keep_firing_for`
    /// has not passed yet (flap damping).
    pub clear_since_unix_ms: Option<i64>,
    pub resolved_at_unix_ms: Option<i64>,
    pub acknowledged: Option<Acknowledgement>,
    /// Ids of the active silences matching the alert at the last evaluation.
    pub silenced_by: Vec<String>,
    /// A firing notification went out for this incident (so its resolution
    /// must go out too, silenced or not).
    pub notified_firing: bool,
    /// An acknowledgement not yet announced.
    pub ack_to_announce: bool,
    /// The sequence of the alert's last notified transition; 0: none yet.
    pub last_sequence: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    /// The label value matches a glob.
    #[serde(rename = "=~")]
    Glob,
    #[serde(rename = "!~")]
    NotGlob,
}

/// One condition on an alert label; a label the alert lacks is "".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
}

impl Matcher {
    /// Parses `label=value`, `label!=value`, `label=~glob`, `label!~glob`
    /// (the form `census silence add` and route `match` lists use).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let at =
            text.find(['=', '!']).ok_or_else(|| format!("{text:?}: expected label=value, label!=value, label=~glob or label!~glob"))?;
        let (label, rest) = text.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Glob, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotGlob, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Equal, v)
        } else {
            return Err(format!("{text:?}: expected label=value, label!=value, label=~glob or label!~glob"));
        };
        let label = label.trim();
        if !super::rules::is_label_name(label) {
            return Err(format!("{text:?}: {label:?} is not a label name (letters, digits and _)"));
        }
        Ok(Matcher { label: label.to_string(), op, value: value.trim().trim_matches('"').to_string() })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let actual = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match self.op {
            MatchOp::Equal => actual == self.value,
            MatchOp::NotEqual => actual != self.value,
            MatchOp::Glob => Glob::new(&self.value).matches(actual),
            MatchOp::NotGlob => !Glob::new(&self.value).matches(actual),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Glob => "=~",
            MatchOp::NotGlob => "!~",
        };
        write!(f, "{}{op}{}", self.label, self.value)
    }
}

/// Mutes notifications of the alerts all its matchers match, from
/// `starts_at` until `ends_at`. Silenced alerts stay in the book, visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at_unix_ms: i64,
    pub ends_at_unix_ms: i64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    pub fn is_active(&self, now_unix_ms: i64) -> bool {
        self.starts_at_unix_ms <= now_unix_ms && now_unix_ms < self.ends_at_unix_ms
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("no alert with fingerprint {0}")]
    UnknownAlert(String),
    #[error("alert {0} is resolved; there is nothing to acknowledge")]
    AlreadyResolved(String),
    #[error("no silence with id {0:?}")]
    UnknownSilence(String),
    #[error("invalid silence: {0}")]
    InvalidSilence(String),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertBook {
    pub(super) alerts: BTreeMap<AlertFingerprint, Alert>,
    pub(super) silences: Vec<Silence>,
    pub(super) next_sequence: u64,
}

impl AlertBook {
    pub fn new() -> AlertBook {
        AlertBook::default()
    }

    /// Every alert, in fingerprint order.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn alert(&self, fingerprint: &AlertFingerprint) -> Option<&Alert> {
        self.alerts.get(fingerprint)
    }

    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// The last sequence number issued (idempotency keys use it).
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Rebuilds a book from what the store kept.
    pub fn from_parts(alerts: Vec<Alert>, silences: Vec<Silence>, next_sequence: u64) -> AlertBook {
        AlertBook { alerts: alerts.into_iter().map(|a| (a.fingerprint.clone(), a)).collect(), silences, next_sequence }
    }

    /// Records an operator's acknowledgement of a pending or firing alert;
    /// announced as an `updated` notification at the next evaluation if the
    /// alert's firing was notified.
    pub fn acknowledge(&mut self, fingerprint: &AlertFingerprint, by: &str, comment: &str, now_unix_ms: i64) -> Result<(), AlertError> {
        let alert = self.alerts.get_mut(fingerprint).ok_or_else(|| AlertError::UnknownAlert(fingerprint.to_string()))?;
        if alert.state == AlertState::Resolved {
            return Err(AlertError::AlreadyResolved(fingerprint.to_string()));
        }
        alert.acknowledged = Some(Acknowledgement { by: by.to_string(), at_unix_ms: now_unix_ms, comment: comment.to_string() });
        alert.ack_to_announce = true;
        Ok(())
    }

    /// Adds a silence. It needs an id of its own, at least one matcher
    /// (an empty list would silence everything) and an end after its start.
    pub fn add_silence(&mut self, silence: Silence) -> Result<(), AlertError> {
        let invalid = |m: &str| Err(AlertError::InvalidSilence(m.to_string()));
        if silence.id.is_empty() || self.silences.iter().any(|s| s.id == silence.id) {
            return invalid("its id must be non-empty and unique");
        }
        if silence.matchers.is_empty() {
            return invalid("at least one matcher is required");
        }
        if silence.matchers.iter().any(|m| !super::rules::is_label_name(&m.label)) {
            return invalid("a matcher names a label: letters, digits and _");
        }
        if silence.ends_at_unix_ms <= silence.starts_at_unix_ms {
            return invalid("it must end after it starts");
        }
        self.silences.push(silence);
        Ok(())
    }

    /// Ends a silence now; it stays listed until it ages out.
    pub fn expire_silence(&mut self, id: &str, now_unix_ms: i64) -> Result<(), AlertError> {
        let s = self.silences.iter_mut().find(|s| s.id == id).ok_or_else(|| AlertError::UnknownSilence(id.to_string()))?;
        s.ends_at_unix_ms = s.ends_at_unix_ms.min(now_unix_ms);
        s.starts_at_unix_ms = s.starts_at_unix_ms.min(s.ends_at_unix_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_label_order_free() {
        let a = BTreeMap::from([("mount".to_string(), "/var".to_string()), ("metric".to_string(), "fs./var.used_percent".to_string())]);
        let fp = AlertFingerprint::of("disk-almost-full", "agent-1", &a);
        // Pinned: the fingerprint format is a contract with stored alerts
        // and tickets. Oracle: printf 'census-alert-v1\ndisk-almost-full\nagent-1\nmetric=fs./var.used_percent\nmount=/var\n' | sha256sum
        assert_eq!(fp.as_str(), "a2d8a9bd013f2ddf9a8d41c033b6f4c807492af5b725b0faa0c83d0d04d79752");
        assert_eq!(fp.as_str().len(), 64);
        assert_eq!(AlertFingerprint::from_hex(fp.as_str()), Some(fp.clone()));
        assert_ne!(fp, AlertFingerprint::of("disk-almost-full", "agent-2", &a));
        assert_ne!(fp, AlertFingerprint::of("disk-almost-full", "agent-1", &BTreeMap::new()));
        assert_eq!(AlertFingerprint::from_hex("xyz"), None);
    }

    #[test]
    fn matchers() {
        let labels = BTreeMap::from([("host".to_string(), "web-12".to_string()), ("site".to_string(), "par".to_string())]);
        let m = |label: &str, op, value: &str| Matcher { label: label.into(), op, value: value.into() }.matches(&labels);
        assert!(m("host", MatchOp::Equal, "web-12"));
        assert!(!m("host", MatchOp::Equal, "web-1"));
        assert!(m("host", MatchOp::NotEqual, "web-1"));
        assert!(m("host", MatchOp::Glob, "web-*"));
        assert!(!m("host", MatchOp::NotGlob, "web-*"));
        assert!(m("team", MatchOp::Equal, ""), "an absent label is empty");
        assert!(m("team", MatchOp::NotEqual, "infra"));
    }

    #[test]
    fn alert_states_round_trip_as_words() {
        for state in [AlertState::Pending, AlertState::Firing, AlertState::Resolved] {
            assert_eq!(AlertState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_string(&state).expect("json"), format!("\"{}\"", state.as_str()), "the same word as stored");
        }
        assert_eq!(AlertState::parse("Firing"), None);
    }

    #[test]
    fn matcher_text_round_trips() {
        for (text, op) in [
            ("host=web-12", MatchOp::Equal),
            ("host!=web-1", MatchOp::NotEqual),
            ("site=~par*", MatchOp::Glob),
            ("site!~lon*", MatchOp::NotGlob),
        ] {
            let m = Matcher::parse(text).expect(text);
            assert_eq!(m.op, op, "{text}");
            assert_eq!(m.to_string(), text);
        }
        assert_eq!(Matcher::parse("severity = \"critical\"").expect("spaces and quotes").value, "critical");
        assert!(Matcher::parse("no operator").is_err());
        assert!(Matcher::parse("bad label=x").is_err());
        assert!(Matcher::parse("=x").is_err());
    }
}
