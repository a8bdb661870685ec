//! The rule model and its TOML form.
//!
//! A rule file is a list of `[[rule]]` tables; each names the condition it
//! watches in `when = { kind = "...", ... }` (one of [`Condition`]'s kinds),
//! plus severity, labels, templates, runbook and timing:
//!
//! ```toml
//! [[rule]]
//! name = "disk-almost-full"
//! severity = "warning"
//! for = "10m"                 # condition true this long before firing
//! keep_firing_for = "5m"      # flap damping: clear this long before resolving
//! when = { kind = "metric", metric = "fs.*.used_percent", op = ">", threshold = 90 }
//! summary = "{{host}}: {{labels.mount}} is {{value}}% full"
//! runbook_url = "https://wiki.example/runbooks/disk"
//! group_by = ["site"]         # one grouped notification per rule and site
//! ```
//!
//! Metric names are the collector's own (`crate::metrics`): `cpu`,
//! `mem.used_percent`, `fs.<mount>.used_percent`, `failed_units`, ..., and
//! the custom series agents read from text files, `custom.<name>[.<label
//! values>]`; a `*` in `metric` selects every series of a family and names
//! the instance with a label (`mount`, `device`, `interface`, `sensor`;
//! `instance` for the others, e.g. `custom.queue_depth.*`).
//!
//! Invariants: parsing refuses unknown keys (`deny_unknown_fields`, so a
//! typo is an error, not a silently ignored setting); a syntax error names
//! its line; a validation error names the rule, its line and the field; a
//! [`RuleSet`] that exists is valid (templates parsed, names unique), so the
//! engine never meets a bad rule.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pattern::Glob;
use super::template::Template;
use crate::changes::ChangeKind;
use crate::config::humantime_serde;

/// The rules that ship enabled: disk almost full, memory exhausted, host
/// offline, failed services. Parsed by a unit test so it cannot rot.
pub const DEFAULT_RULES: &str = r#"
[[rule]]
name = "disk-almost-full"
severity = "warning"
for = "10m"
when = { kind = "metric", metric = "fs.*.used_percent", op = ">", threshold = 90 }
summary = "{{host}}: filesystem {{labels.mount}} is {{value}}% full"
description = "The filesystem {{labels.mount}} on {{host}} has been more than {{threshold}}% full for 10 minutes."

[[rule]]
name = "memory-exhausted"
severity = "critical"
for = "5m"
when = { kind = "metric", metric = "mem.used_percent", op = ">", threshold = 95 }
summary = "{{host}}: memory {{value}}% used"
description = "{{host}} has used more than {{threshold}}% of its memory for 5 minutes."

[[rule]]
name = "host-offline"
severity = "critical"
when = { kind = "host_offline", missed_heartbeats = 3 }
summary = "{{host}} is offline"
description = "{{host}} has sent nothing for {{value}} (allowed: {{threshold}})."

[[rule]]
name = "failed-services"
severity = "warning"
for = "5m"
when = { kind = "metric", metric = "failed_units", op = ">", threshold = 0 }
summary = "{{host}}: {{value}} failed service(s)"
description = "systemd reports {{value}} failed unit(s) on {{host}} for 5 minutes."
"#;

/// Labels the engine sets itself on every alert; a rule may not set them.
pub const RESERVED_LABELS: [&str; 3] = ["alertname", "host", "severity"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The latest value of a metric (or of every series a glob selects)
    /// compared with a threshold. A sample older than `stale_after` counts
    /// as no value: the condition is false (host offline is its own rule).
    Metric {
        metric: Glob,
        op: Comparison,
        threshold: f64,
        #[serde(default = "default_stale_after", with = "humantime_serde")]
        stale_after: Duration,
    },
    /// Nothing received from the host for `missed_heartbeats` heartbeat
    /// intervals, or for `after`; exactly one of the two.
    HostOffline {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        missed_heartbeats: Option<u32>,
        #[serde(default, with = "optional_duration", skip_serializing_if = "Option::is_none")]
        after: Option<Duration>,
    },
    /// A change event (`software.installed`, `software.removed`,
    /// `hardware.*`, `os.upgraded`, ... as `crate::changes` names them) whose
    /// subject matches, recorded less than `within` ago.
    InventoryChange {
        change: Glob,
        #[serde(default = "any")]
        subject: Glob,
        #[serde(default = "default_within", with = "humantime_serde")]
        within: Duration,
    },
    /// No installed package's name matches `package`.
    SoftwareMissing { package: Glob },
    /// Some installed package's name matches `package`.
    SoftwareForbidden { package: Glob },
    /// An installed package matching `package` (from `source`, if given) has
    /// a version below `minimum` in its source's own ordering (dpkg, rpm, ...).
    VersionBelow {
        package: Glob,
        minimum: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// The host runs `os_id` (os-release ID) with a matching VERSION_ID and
    /// the day `eol` (YYYY-MM-DD, UTC) has begun.
    OsEndOfLife { os_id: String, version_id: Glob, eol: Date },
    /// The agent's version is below `minimum` (numeric runs compared as
    /// numbers: 0.10.0 > 0.9.3).
    AgentOutdated { minimum: String },
    /// A certificate found on the host (its inventory's certificates
    /// section) expires within `within`, or has expired. `location`
    /// (`trust_store`, `service`, `configured`) and `subject` narrow it;
    /// CA certificates count only with `include_ca`.
    CertificateExpiring {
        #[serde(with = "humantime_serde")]
        within: Duration,
        #[serde(default = "any")]
        location: Glob,
        #[serde(default = "any")]
        subject: Glob,
        #[serde(default)]
        include_ca: bool,
    },
    /// A disk's SMART self-assessment predicts its failure.
    SmartFailurePredicted {},
    /// A battery's full capacity is below `threshold` percent of its design
    /// capacity (wear).
    BatteryHealthBelow { threshold: f64 },
    /// At least `min_count` security updates are pending (apt, dnf,
    /// Windows Update, ...). Pair it with `for = "7d"` to alert on updates
    /// left pending for a week.
    SecurityUpdatesPending {
        #[serde(default = "one_update")]
        min_count: u32,
    },
}

impl Condition {
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Metric { .. } => "metric",
            Condition::HostOffline { .. } => "host_offline",
            Condition::InventoryChange { .. } => "inventory_change",
            Condition::SoftwareMissing { .. } => "software_missing",
            Condition::SoftwareForbidden { .. } => "software_forbidden",
            Condition::VersionBelow { .. } => "version_below",
            Condition::OsEndOfLife { .. } => "os_end_of_life",
            Condition::AgentOutdated { .. } => "agent_outdated",
            Condition::CertificateExpiring { .. } => "certificate_expiring",
            Condition::SmartFailurePredicted {} => "smart_failure_predicted",
            Condition::BatteryHealthBelow { .. } => "battery_health_below",
            Condition::SecurityUpdatesPending { .. } => "security_updates_pending",
        }
    }
}

/// A calendar day in UTC, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date {
    days_since_epoch: i64,
}

impl Date {
    pub fn parse(text: &str) -> Option<Date> {
        let mut it = text.split('-');
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        if !(1..=12).contains(&m) || d == 0 || d > month_days[m as usize - 1] {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = i64::from((m + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Date { days_since_epoch: era * 146_097 + doe - 719_468 })
    }

    /// Midnight UTC starting this day, in Unix milliseconds.
    pub fn start_unix_ms(self) -> i64 {
        self.days_since_epoch * 86_400_000
    }
}

impl TryFrom<String> for Date {
    type Error = String;
    fn try_from(s: String) -> Result<Date, String> {
        Date::parse(&s).ok_or_else(|| format!("{s:?} is not a date written YYYY-MM-DD"))
    }
}

impl From<Date> for String {
    fn from(d: Date) -> String {
        crate::clock::utc_date(d.start_unix_ms())
    }
}

/// One rule as written in TOML (and as the admin API will accept it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub severity: Severity,
    pub when: Condition,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub for_: Duration,
    /// Flap damping: how long a firing alert's condition must stay clear
    /// before it resolves. A condition that returns sooner never produced a
    /// notification: the incident simply goes on.
    #[serde(default = "default_keep_firing_for", with = "humantime_serde")]
    pub keep_firing_for: Duration,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_summary")]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub runbook_url: String,
    /// Alert labels whose values split the rule's notifications into
    /// groups (the route key); empty: one group per rule and transition.
    #[serde(default)]
    pub group_by: Vec<String>,
}

impl RuleSpec {
    /// The rule as one `[[rule]]` TOML table, which `RuleSet::from_toml`
    /// reads back to the same spec (what `census rules list` shows and
    /// `census rules add` accepts).
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct OneRule<'a> {
            rule: [&'a RuleSpec; 1],
        }
        toml::to_string(&OneRule { rule: [self] }).unwrap_or_else(|e| format!("# rule {:?} cannot be written as TOML: {e}\n", self.name))
    }
}

/// A validated rule: its spec plus parsed templates.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub spec: RuleSpec,
    /// The line of its `[[rule]]` table, when it came from a file.
    pub line: Option<usize>,
    pub summary: Template,
    pub description: Template,
}

/// A valid list of rules with unique names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("line {line}{}: {message}", rule.as_ref().map(|r| format!(", rule {r:?}")).unwrap_or_default())]
    Syntax { line: usize, rule: Option<String>, message: String },
    #[error("{}rule {rule:?}, field `{field}`: {reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Invalid { line: Option<usize>, rule: String, field: String, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RuleSpec>>,
}

impl RuleSet {
    /// Parses and validates a rule file's text.
    pub fn from_toml(text: &str) -> Result<RuleSet, RulesError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            RulesError::Syntax { line, rule: rule_around(text, line), message: e.message().to_string() }
        })?;
        let specs = file.rule.into_iter().map(|s| (Some(line_of(text, s.span().start)), s.into_inner())).collect();
        RuleSet::validate(specs)
    }

    /// Validates rules that did not come from a file (the admin API).
    pub fn from_specs(specs: Vec<RuleSpec>) -> Result<RuleSet, RulesError> {
        RuleSet::validate(specs.into_iter().map(|s| (None, s)).collect())
    }

    /// The shipped [`DEFAULT_RULES`].
    pub fn defaults() -> RuleSet {
        RuleSet::from_toml(DEFAULT_RULES).expect("DEFAULT_RULES is valid: checked by a unit test")
    }

    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.spec.name == name)
    }

    fn validate(specs: Vec<(Option<usize>, RuleSpec)>) -> Result<RuleSet, RulesError> {
        let mut seen = BTreeSet::new();
        let mut rules = Vec::with_capacity(specs.len());
        for (line, spec) in specs {
            let fail =
                |field: &str, reason: String| RulesError::Invalid { line, rule: spec.name.clone(), field: field.to_string(), reason };
            check_spec(&spec).map_err(|(field, reason)| fail(&field, reason))?;
            if !seen.insert(spec.name.clone()) {
                return Err(fail("name", "another rule already has this name".into()));
            }
            let summary = Template::parse(&spec.summary).map_err(|r| fail("summary", r))?;
            let description = Template::parse(&spec.description).map_err(|r| fail("description", r))?;
            rules.push(Rule { spec, line, summary, description });
        }
        Ok(RuleSet { rules })
    }
}

/// A label name as Prometheus spells them: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first problem of a spec as (field, reason).
fn check_spec(spec: &RuleSpec) -> Result<(), (String, String)> {
    let bad = |field: &str, reason: &str| Err((field.to_string(), reason.to_string()));
    if spec.name.trim().is_empty() || spec.name.len() > 128 || spec.name.chars().any(char::is_control) {
        return bad("name", "must be 1 to 128 printable characters");
    }
    for (k, v) in &spec.labels {
        if !is_label_name(k) {
            return Err((format!("labels.{k}"), "a label name is letters, digits and _, not starting with a digit".into()));
        }
        if RESERVED_LABELS.contains(&k.as_str()) {
            return Err((format!("labels.{k}"), "is set by the engine itself".into()));
        }
        if v.chars().any(char::is_control) {
            return Err((format!("labels.{k}"), "control characters are not allowed".into()));
        }
    }
    if let Some(g) = spec.group_by.iter().find(|g| !is_label_name(g)) {
        return Err(("group_by".into(), format!("{g:?} is not a label name")));
    }
    let url = &spec.runbook_url;
    if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
        return bad("runbook_url", "must be an http:// or https:// URL");
    }
    match &spec.when {
        Condition::Metric { metric, threshold, stale_after, .. } => {
            if metric.as_string().is_empty() {
                return bad("when.metric", "must name a metric");
            }
            if !threshold.is_finite() {
                return bad("when.threshold", "must be a finite number");
            }
            if stale_after.is_zero() {
                return bad("when.stale_after", "must be longer than 0s");
            }
        }
        Condition::HostOffline { missed_heartbeats, after } => match (missed_heartbeats, after) {
            (Some(0), _) => return bad("when.missed_heartbeats", "must be at least 1"),
            (Some(_), None) => {}
            (None, Some(d)) if d.is_zero() => return bad("when.after", "must be longer than 0s"),
            (None, Some(_)) => {}
            _ => return bad("when", "give exactly one of missed_heartbeats and after"),
        },
        Condition::InventoryChange { change, within, .. } => {
            if !ChangeKind::ALL.iter().any(|k| change.matches(k.as_str())) {
                let known: Vec<&str> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(("when.change".into(), format!("matches no change kind; known: {}", known.join(", "))));
            }
            if within.is_zero() {
                return bad("when.within", "must be longer than 0s");
            }
        }
        Condition::SoftwareMissing { package } | Condition::SoftwareForbidden { package } => {
            if package.as_string().is_empty() {
                return bad("when.package", "must name a package (a glob)");
            }
        }
        Condition::VersionBelow { package, minimum, .. } => {
            if package.as_string().is_empty() {
                return bad("when.package", "must name a package (a glob)");
            }
            if minimum.trim().is_empty() {
                return bad("when.minimum", "must be a version");
            }
        }
        Condition::OsEndOfLife { os_id, .. } => {
            if os_id.trim().is_empty() {
                return bad("when.os_id", "must be an os-release ID such as debian");
            }
        }
        Condition::AgentOutdated { minimum } => {
            if minimum.trim().is_empty() {
                return bad("when.minimum", "must be a version");
            }
        }
        Condition::CertificateExpiring { within, .. } => {
            if within.is_zero() {
                return bad("when.within", "must be longer than 0s");
            }
        }
        Condition::SmartFailurePredicted {} => {}
        Condition::BatteryHealthBelow { threshold } => {
            if !(threshold.is_finite() && *threshold > 0.0 && *threshold <= 100.0) {
                return bad("when.threshold", "must be a percentage above 0 and at most 100");
            }
        }
        Condition::SecurityUpdatesPending { min_count } => {
            if *min_count == 0 {
                return bad("when.min_count", "must be at least 1");
            }
        }
    }
    Ok(())
}

/// The name of the `[[rule]]` table holding line `line` (1-based), read
/// from the raw text: an error that stops parsing still names its rule.
fn rule_around(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().take(line).rposition(|l| l.trim() == "[[rule]]")?;
    lines[start + 1..]
        .iter()
        .take_while(|l| l.trim() != "[[rule]]")
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
        })
        .filter(|name| !name.is_empty())
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

fn yes() -> bool {
    true
}

fn any() -> Glob {
    Glob::new("*")
}

fn one_update() -> u32 {
    1
}

fn default_summary() -> String {
    "{{rule}} on {{host}}".into()
}

fn default_stale_after() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_within() -> Duration {
    Duration::from_secs(3_600)
}

fn default_keep_firing_for() -> Duration {
    Duration::from_secs(5 * 60)
}

mod optional_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::humantime_serde::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::humantime_serde::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_reads_back_from_its_toml() {
        let mut specs: Vec<RuleSpec> = RuleSet::defaults().rules.into_iter().map(|r| r.spec).collect();
        specs.extend(RuleSet::from_toml(EVERY_KIND).expect("test rules parse").rules.into_iter().map(|r| r.spec));
        for spec in specs {
            let text = spec.to_toml();
            assert!(text.starts_with("[[rule]]\n"), "{text}");
            let back = RuleSet::from_toml(&text).unwrap_or_else(|e| panic!("{} does not read back: {e}\n{text}", spec.name));
            assert_eq!(back.rules.len(), 1, "{text}");
            assert_eq!(back.rules[0].spec, spec, "{text}");
        }
    }

    /// One rule of every condition kind, with labels, group_by and a runbook.
    const EVERY_KIND: &str = r#"
[[rule]]
name = "offline-after"
when = { kind = "host_offline", after = "15m" }
[[rule]]
name = "new-software"
severity = "info"
when = { kind = "inventory_change", change = "software.installed", subject = "teamviewer*", within = "2h" }
[[rule]]
name = "hardware"
when = { kind = "inventory_change", change = "hardware.*" }
[[rule]]
name = "edr-missing"
severity = "critical"
when = { kind = "software_missing", package = "falcon-sensor" }
[[rule]]
name = "no-telnet"
when = { kind = "software_forbidden", package = "telnetd*" }
[[rule]]
name = "openssl-old"
when = { kind = "version_below", package = "openssl", minimum = "3.0.13", source = "dpkg" }
[[rule]]
name = "buster-eol"
labels = { team = "infra" }
when = { kind = "os_end_of_life", os_id = "debian", version_id = "10", eol = "2024-06-30" }
runbook_url = "https://wiki.example/eol"
[[rule]]
name = "agent-old"
when = { kind = "agent_outdated", minimum = "0.2.0" }
group_by = ["team"]
"#;

    fn one(when: &str) -> Result<RuleSet, RulesError> {
        RuleSet::from_toml(&format!("[[rule]]\nname = \"r\"\nwhen = {when}\n"))
    }

    fn invalid_field(r: Result<RuleSet, RulesError>) -> String {
        match r {
            Err(RulesError::Invalid { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn default_rules_parse_and_are_enabled() {
        let set = RuleSet::from_toml(DEFAULT_RULES).expect("defaults parse");
        let names: Vec<&str> = set.rules.iter().map(|r| r.spec.name.as_str()).collect();
        assert_eq!(names, ["disk-almost-full", "memory-exhausted", "host-offline", "failed-services"]);
        assert!(set.rules.iter().all(|r| r.spec.enabled));
        let disk = set.get("disk-almost-full").expect("disk rule");
        assert_eq!(disk.spec.for_, Duration::from_secs(600));
        assert_eq!(disk.line, Some(2));
        assert!(matches!(&disk.spec.when, Condition::Metric { threshold, op: Comparison::Above, .. } if *threshold == 90.0));
        assert_eq!(RuleSet::defaults(), set);
    }

    #[test]
    fn every_kind_parses() {
        let text = EVERY_KIND;
        let set = RuleSet::from_toml(text).expect("parses");
        let kinds: Vec<&str> = set.rules.iter().map(|r| r.spec.when.kind()).collect();
        assert_eq!(
            kinds,
            [
                "host_offline",
                "inventory_change",
                "inventory_change",
                "software_missing",
                "software_forbidden",
                "version_below",
                "os_end_of_life",
                "agent_outdated"
            ]
        );
        assert_eq!(set.rules[0].spec.keep_firing_for, Duration::from_secs(300), "default flap damping");
        assert_eq!(set.rules[0].line, Some(2));
        assert_eq!(set.rules[1].line, Some(5));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let text =
            "[[rule]]\nname = \"a\"\nwhen = { kind = \"metric\", metric = \"cpu\", op = \">\", threshold = 90 }\nsevertiy = \"critical\"\n";
        match RuleSet::from_toml(text) {
            Err(e @ RulesError::Syntax { line, .. }) => {
                assert_eq!(line, 4, "{e}");
                assert!(e.to_string().contains("severtiy"), "{e}");
                assert!(e.to_string().starts_with("line 4, rule \"a\": "), "the error names the rule: {e}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        // Unknown keys inside the condition are refused too.
        let e = one(r#"{ kind = "metric", metric = "cpu", op = ">", threshold = 9, treshold = 1 }"#).unwrap_err();
        assert!(matches!(e, RulesError::Syntax { line: 3, .. }), "{e}");
        let e = one(r#"{ kind = "metrik" }"#).unwrap_err();
        assert!(e.to_string().starts_with("line 3, rule"), "{e}");
        let e = one(r#"{ kind = "metric", metric = "cpu", op = "=>", threshold = 9 }"#).unwrap_err();
        assert!(matches!(e, RulesError::Syntax { .. }), "{e}");
        let e = one(r#"{ kind = "os_end_of_life", os_id = "debian", version_id = "10", eol = "2024-02-30" }"#).unwrap_err();
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
    }

    #[test]
    fn validation_errors_name_rule_line_and_field() {
        let text = "[[rule]]\nname = \"ok\"\nwhen = { kind = \"agent_outdated\", minimum = \"1\" }\n\n[[rule]]\nname = \"bad\"\nsummary = \"{{hostname}} is down\"\nwhen = { kind = \"agent_outdated\", minimum = \"1\" }\n";
        let e = RuleSet::from_toml(text).unwrap_err();
        assert_eq!(
            e,
            RulesError::Invalid {
                line: Some(5),
                rule: "bad".into(),
                field: "summary".into(),
                reason: "unknown placeholder {{hostname}}: use host, value, threshold, rule, severity or labels.NAME".into()
            }
        );
        assert!(e.to_string().starts_with("line 5: rule \"bad\", field `summary`:"), "{e}");

        assert_eq!(invalid_field(one(r#"{ kind = "host_offline" }"#)), "when");
        assert_eq!(invalid_field(one(r#"{ kind = "host_offline", missed_heartbeats = 2, after = "1m" }"#)), "when");
        assert_eq!(invalid_field(one(r#"{ kind = "host_offline", missed_heartbeats = 0 }"#)), "when.missed_heartbeats");
        assert_eq!(invalid_field(one(r#"{ kind = "inventory_change", change = "software.updated" }"#)), "when.change");
        assert_eq!(invalid_field(one(r#"{ kind = "software_missing", package = "" }"#)), "when.package");
        assert_eq!(invalid_field(one(r#"{ kind = "version_below", package = "openssl", minimum = " " }"#)), "when.minimum");
        assert_eq!(invalid_field(one(r#"{ kind = "metric", metric = "cpu", op = ">", threshold = nan }"#)), "when.threshold");
        let with = |extra: &str| {
            RuleSet::from_toml(&format!("[[rule]]\nname = \"r\"\n{extra}\nwhen = {{ kind = \"agent_outdated\", minimum = \"1\" }}\n"))
        };
        assert_eq!(invalid_field(with("labels = { host = \"x\" }")), "labels.host");
        assert_eq!(invalid_field(with("labels = { \"a-b\" = \"x\" }")), "labels.a-b");
        assert_eq!(invalid_field(with("runbook_url = \"javascript:alert(1)\"")), "runbook_url");
        assert_eq!(invalid_field(with("group_by = [\"a b\"]")), "group_by");
        assert_eq!(invalid_field(with("description = \"{{value\"")), "description");
        let nameless = "[[rule]]\nname = \" \"\nwhen = { kind = \"agent_outdated\", minimum = \"1\" }\n";
        assert_eq!(invalid_field(RuleSet::from_toml(nameless)), "name");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let rule = "[[rule]]\nname = \"same\"\nwhen = { kind = \"agent_outdated\", minimum = \"1\" }\n";
        let e = RuleSet::from_toml(&format!("{rule}{rule}")).unwrap_err();
        assert!(matches!(e, RulesError::Invalid { line: Some(4), ref field, .. } if field == "name"), "{e}");
    }

    #[test]
    fn specs_round_trip_through_toml() {
        let set = RuleSet::defaults();
        let specs: Vec<RuleSpec> = set.rules.iter().map(|r| r.spec.clone()).collect();
        #[derive(Serialize)]
        struct Out<'a> {
            rule: &'a [RuleSpec],
        }
        let text = toml::to_string(&Out { rule: &specs }).expect("serialises");
        let again = RuleSet::from_toml(&text).expect("re-parses");
        let again: Vec<RuleSpec> = again.rules.into_iter().map(|r| r.spec).collect();
        assert_eq!(again, specs);
        assert_eq!(RuleSet::from_specs(specs).expect("valid").rules.len(), 4);
    }

    #[test]
    fn dates_are_checked_and_round_trip() {
        assert_eq!(Date::parse("1970-01-01").map(Date::start_unix_ms), Some(0));
        assert_eq!(Date::parse("2024-06-30").map(Date::start_unix_ms), Some(1_719_705_600_000));
        assert_eq!(Date::parse("2000-02-29").map(String::from).as_deref(), Some("2000-02-29"));
        for bad in ["2023-02-29", "2024-13-01", "2024-1-01", "24-01-01", "2024-01-01-", "", "2024-00-10"] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }
}
