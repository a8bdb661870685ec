//! The alert service: the edge around the pure engine (`alert/`). It owns
//! the alert book in memory, builds the `FleetState` the engine needs from
//! the store, runs evaluations, composes the rules in force from their
//! three sources, and commits every change durably together with the
//! outbox entries it enqueues.
//!
//! Invariants:
//! - the book in memory never runs ahead of the store: a commit that fails
//!   reloads the book from the store, so the next evaluation redoes the
//!   transitions (and enqueues their notifications) instead of losing them;
//! - an acknowledgement or silence is durable before the caller is told it
//!   happened;
//! - rules in force = shipped defaults (unless disabled) overridden by name
//!   by the rule file, plus the admin API's rules; a name may not be both in
//!   the file and in the API. A rule file with an error changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use census_proto::v1 as pb;
use serde::Serialize;

use crate::alert::AlertState;
use crate::alert::book::{Alert, AlertError, Matcher, Silence};
use crate::alert::engine::{Evaluation, Notification, Transition, notified};
use crate::alert::fleet::{BatteryFact, CertificateFact, HostState, MetricPoint, OsFact, PackageFact, SmartFact, UpdateFact};
use crate::alert::pattern::Glob;
use crate::alert::rules::{Condition, Rule, RuleSpec};
use crate::alert::{AlertBook, AlertFingerprint, FleetState, RuleSet, evaluate};
use crate::changes::{Change, ChangeKind};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::notify::outbox::OutboxEntry;
use crate::notify::route::{RouteConfig, sinks_for};
use crate::store::{AlertCommit, HostView, Store};

/// Where a rule in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    Default,
    File,
    Api,
}

impl RuleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSource::Default => "default",
            RuleSource::File => "file",
            RuleSource::Api => "api",
        }
    }
}

/// What the service needs from the collector's config.
#[derive(Debug, Clone)]
pub struct AlertingConfig {
    pub rules_file: Option<PathBuf>,
    pub default_rules: bool,
    pub heartbeat_interval: Duration,
    pub sinks: Vec<String>,
    pub routes: Vec<RouteConfig>,
}

impl AlertingConfig {
    pub fn from_config(c: &Config) -> AlertingConfig {
        AlertingConfig {
            rules_file: c.alerts.rules_file.clone(),
            default_rules: c.alerts.default_rules,
            heartbeat_interval: c.agents.heartbeat_interval,
            sinks: c.sinks.iter().map(|s| s.name.clone()).collect(),
            routes: c.routes.clone(),
        }
    }
}

/// The rule file's identity when it was last read: a change of either
/// means "reload".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

struct State {
    book: AlertBook,
    /// The book as last committed: only what differs from it is written.
    persisted: AlertBook,
    rules: RuleSet,
    sources: BTreeMap<String, RuleSource>,
    file_rules: RuleSet,
    file_stamp: Option<FileStamp>,
    api_rules: RuleSet,
    /// The last rule-file error, until a good file is loaded.
    rules_error: Option<String>,
}

pub struct Alerting {
    store: Arc<dyn Store>,
    config: AlertingConfig,
    state: Mutex<State>,
    /// Signalled when an operator's action should be evaluated (and
    /// announced) without waiting for the next tick.
    evaluate_soon: tokio::sync::Notify,
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationSummary {
    pub pending: usize,
    pub firing: usize,
    pub notifications: usize,
    pub enqueued: usize,
}

/// A rule in force, for listings.
#[derive(Debug, Clone)]
pub struct RuleInForce {
    pub rule: Rule,
    pub source: RuleSource,
}

impl Alerting {
    /// Loads the book and the API rules from the store and the rule file
    /// from disk. A bad rule file at start is an error (the collector does
    /// not start with rules it cannot read); later, a bad file is refused
    /// and the rules in force stay.
    pub fn open(store: Arc<dyn Store>, config: AlertingConfig) -> Result<Alerting> {
        let stored = store.load_alerts()?;
        let book = AlertBook::from_parts(stored.alerts, stored.silences, stored.next_sequence);
        let persisted = book.clone();
        let api_rules = RuleSet::from_specs(store.api_rules()?)?;
        let (file_rules, file_stamp) = match &config.rules_file {
            Some(path) => {
                let (rules, stamp) = read_rule_file(path)?;
                (rules, Some(stamp))
            }
            None => (RuleSet::default(), None),
        };
        let (rules, sources) = compose(config.default_rules, &file_rules, &api_rules).map_err(Error::Config)?;
        let state = State { book, persisted, rules, sources, file_rules, file_stamp, api_rules, rules_error: None };
        Ok(Alerting { store, config, state: Mutex::new(state), evaluate_soon: tokio::sync::Notify::new() })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a book that may be ahead
        // of the store; reloading from the store is the recovery, so a
        // poisoned lock is taken as is and `commit` fixes it up.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Evaluates every rule against the fleet as stored now, and commits
    /// the transitions with their outbox entries. Blocking (store reads).
    pub fn evaluate_once(&self, now_unix_ms: i64) -> Result<EvaluationSummary> {
        // The rules are copied out so the store is read without the lock
        // (acks and silences are not held up by an evaluation's reads).
        let rules = self.lock().rules.clone();
        let lookback = rules.rules.iter().filter_map(change_lookback).max().unwrap_or_default();
        let fleet = build_fleet(self.store.as_ref(), &rules, self.config.heartbeat_interval, lookback, now_unix_ms)?;
        let mut state = self.lock();
        // Evaluated with the rules the fleet was built for: a rule added
        // meanwhile would see no packages (a software_missing rule would
        // fire everywhere); it is evaluated next round.
        let evaluation = evaluate(&rules, &fleet, &mut state.book, now_unix_ms);
        let enqueue = self.outbox_entries(&evaluation, now_unix_ms);
        let summary = EvaluationSummary {
            pending: evaluation.pending,
            firing: evaluation.firing,
            notifications: evaluation.notifications.len(),
            enqueued: enqueue.len(),
        };
        self.commit(&mut state, enqueue)?;
        Ok(summary)
    }

    fn outbox_entries(&self, evaluation: &Evaluation, now_unix_ms: i64) -> Vec<OutboxEntry> {
        let mut entries = Vec::new();
        for n in &evaluation.notifications {
            let sinks = sinks_for(&self.config.routes, &self.config.sinks, n);
            if sinks.is_empty() && !self.config.sinks.is_empty() {
                tracing::info!(rule = %n.rule, key = %n.idempotency_key, "no route matches this notification; it goes nowhere");
            }
            entries.extend(sinks.iter().map(|sink| OutboxEntry::new(sink, n.clone(), now_unix_ms)));
        }
        entries
    }

    /// Writes what changed in the book since the last commit, with
    /// `enqueue`, in one transaction. On failure the book is reloaded from
    /// the store.
    fn commit(&self, state: &mut State, enqueue: Vec<OutboxEntry>) -> Result<Vec<u64>> {
        let (book, persisted) = (&state.book, &state.persisted);
        let commit = AlertCommit {
            upsert: book.alerts().filter(|a| persisted.alert(&a.fingerprint) != Some(*a)).cloned().collect(),
            remove: persisted.alerts().filter(|a| book.alert(&a.fingerprint).is_none()).map(|a| a.fingerprint.clone()).collect(),
            silences: book.silences().to_vec(),
            next_sequence: book.next_sequence(),
        };
        let unchanged = commit.upsert.is_empty()
            && commit.remove.is_empty()
            && enqueue.is_empty()
            && persisted.silences() == book.silences()
            && persisted.next_sequence() == book.next_sequence();
        if unchanged {
            return Ok(Vec::new());
        }
        match self.store.commit_alerts(&commit, enqueue) {
            Ok(ids) => {
                state.persisted = state.book.clone();
                Ok(ids)
            }
            Err(e) => {
                tracing::error!(error = %e, "committing alert changes failed; reloading the alert book from the store");
                if let Ok(stored) = self.store.load_alerts() {
                    state.book = AlertBook::from_parts(stored.alerts, stored.silences, stored.next_sequence);
                    state.persisted = state.book.clone();
                }
                Err(e)
            }
        }
    }

    /// Resolves when an operator's action asks for an evaluation now.
    pub async fn evaluation_requested(&self) {
        self.evaluate_soon.notified().await;
    }

    /// The firing alerts whose firing was notified and that no silence
    /// mutes, as one firing notification per rule, restricted to those
    /// routed to `sink`: what a sink that forgets alerts unless reminded
    /// (Alertmanager) is sent again periodically.
    pub fn still_firing(&self, sink: &str) -> Vec<Notification> {
        let state = self.lock();
        let mut by_rule: BTreeMap<&str, Vec<&Alert>> = BTreeMap::new();
        for a in state.book.alerts().filter(|a| a.state == AlertState::Firing && a.notified_firing && a.silenced_by.is_empty()) {
            by_rule.entry(a.rule.as_str()).or_default().push(a);
        }
        by_rule
            .into_iter()
            .map(|(rule, alerts)| Notification {
                idempotency_key: format!("{rule}/refresh"),
                transition: Transition::Firing,
                rule: rule.to_string(),
                severity: alerts.iter().map(|a| a.severity).max().unwrap_or_default(),
                route_key: BTreeMap::new(),
                summary: format!("{rule}: {} alert(s) still firing", alerts.len()),
                runbook_url: alerts[0].runbook_url.clone(),
                alerts: alerts.iter().map(|a| notified(a, Transition::Firing)).collect(),
            })
            .filter(|n| sinks_for(&self.config.routes, &self.config.sinks, n).iter().any(|s| s == sink))
            .collect()
    }

    /// Every alert, in fingerprint order.
    pub fn alerts(&self) -> Vec<Alert> {
        self.lock().book.alerts().cloned().collect()
    }

    /// An alert by full fingerprint or by a unique prefix of at least 6
    /// characters (what `census alerts` shows).
    pub fn alert(&self, id: &str) -> Result<Alert> {
        let state = self.lock();
        resolve_id(&state.book, id).map(|fp| state.book.alert(&fp).expect("resolve_id returns a fingerprint of the book").clone())
    }

    /// Records an acknowledgement durably; it is announced to the sinks at
    /// the next evaluation.
    pub fn acknowledge(&self, id: &str, by: &str, comment: &str, now_unix_ms: i64) -> Result<Alert> {
        let mut state = self.lock();
        let fp = resolve_id(&state.book, id)?;
        state.book.acknowledge(&fp, by, comment, now_unix_ms).map_err(alert_error)?;
        self.commit(&mut state, Vec::new())?;
        self.evaluate_soon.notify_one();
        Ok(state.book.alert(&fp).expect("the alert was just acknowledged").clone())
    }

    pub fn silences(&self) -> Vec<Silence> {
        self.lock().book.silences().to_vec()
    }

    /// Adds a silence from now (or `starts_at`) for `duration`; returns it
    /// with its new id.
    pub fn add_silence(
        &self,
        matchers: Vec<Matcher>,
        starts_at_unix_ms: i64,
        ends_at_unix_ms: i64,
        by: &str,
        comment: &str,
    ) -> Result<Silence> {
        let silence = Silence {
            id: hex::encode(rand::random::<[u8; 8]>()),
            matchers,
            starts_at_unix_ms,
            ends_at_unix_ms,
            created_by: by.to_string(),
            comment: comment.to_string(),
        };
        let mut state = self.lock();
        state.book.add_silence(silence.clone()).map_err(alert_error)?;
        self.commit(&mut state, Vec::new())?;
        self.evaluate_soon.notify_one();
        Ok(silence)
    }

    pub fn expire_silence(&self, id: &str, now_unix_ms: i64) -> Result<Silence> {
        let mut state = self.lock();
        state.book.expire_silence(id, now_unix_ms).map_err(alert_error)?;
        self.commit(&mut state, Vec::new())?;
        self.evaluate_soon.notify_one();
        Ok(state.book.silences().iter().find(|s| s.id == id).expect("the silence was just expired").clone())
    }

    /// The rules in force, by name, with their source; and the last rule
    /// file error, if the file in force is not the file on disk.
    pub fn rules(&self) -> (Vec<RuleInForce>, Option<String>) {
        let state = self.lock();
        let rules = state
            .rules
            .rules
            .iter()
            .map(|r| RuleInForce { rule: r.clone(), source: state.sources.get(&r.spec.name).copied().unwrap_or(RuleSource::Api) })
            .collect();
        (rules, state.rules_error.clone())
    }

    /// Adds or replaces an API rule (durably), after checking it composes
    /// with the rules in force.
    pub fn put_rule(&self, spec: RuleSpec) -> Result<()> {
        let mut state = self.lock();
        let mut specs: Vec<RuleSpec> = state.api_rules.rules.iter().filter(|r| r.spec.name != spec.name).map(|r| r.spec.clone()).collect();
        specs.push(spec.clone());
        let api_rules = RuleSet::from_specs(specs)?;
        let (rules, sources) = compose(self.config.default_rules, &state.file_rules, &api_rules).map_err(Error::InvalidArgument)?;
        self.store.put_api_rule(&spec)?;
        state.api_rules = api_rules;
        state.rules = rules;
        state.sources = sources;
        Ok(())
    }

    /// Deletes an API rule; its alerts resolve at the next evaluation.
    pub fn delete_rule(&self, name: &str) -> Result<()> {
        let mut state = self.lock();
        if state.sources.get(name) != Some(&RuleSource::Api) {
            return Err(Error::NotFound(format!(
                "no rule {name:?} was added through the admin API (file and default rules are changed in the rule file)"
            )));
        }
        let api_rules = RuleSet { rules: state.api_rules.rules.iter().filter(|r| r.spec.name != name).cloned().collect() };
        let (rules, sources) = compose(self.config.default_rules, &state.file_rules, &api_rules).map_err(Error::InvalidArgument)?;
        self.store.delete_api_rule(name)?;
        state.api_rules = api_rules;
        state.rules = rules;
        state.sources = sources;
        Ok(())
    }

    /// Reloads the rule file if its modification time or size changed.
    /// Returns whether new rules are in force; a bad file is logged with
    /// its error (file, line, rule) and kept as `rules_error`.
    pub fn reload_rules_if_changed(&self) -> bool {
        let Some(path) = &self.config.rules_file else { return false };
        let stamp = stamp_of(path).ok();
        let mut state = self.lock();
        if stamp.is_some() && stamp == state.file_stamp {
            return false;
        }
        let loaded = read_rule_file(path).and_then(|(file_rules, stamp)| {
            let (rules, sources) = compose(self.config.default_rules, &file_rules, &state.api_rules).map_err(Error::Config)?;
            Ok((file_rules, stamp, rules, sources))
        });
        match loaded {
            Ok((file_rules, stamp, rules, sources)) => {
                tracing::info!(file = %path.display(), rules = file_rules.rules.len(), "rule file reloaded");
                state.file_rules = file_rules;
                state.file_stamp = Some(stamp);
                state.rules = rules;
                state.sources = sources;
                state.rules_error = None;
                true
            }
            Err(e) => {
                let message = e.to_string();
                if state.rules_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, "rule file refused; the rules in force stay");
                }
                state.rules_error = Some(message);
                // Remember the stamp so a bad file is reported once, not
                // at every check; a new edit changes the stamp again.
                state.file_stamp = stamp;
                false
            }
        }
    }

    /// Evaluates a rule file's rules against the fleet as stored now, on a
    /// scratch book: nothing is stored or notified. Returns the alerts the
    /// rules produce now (pending ones are those waiting for their `for`).
    pub fn test_rules(&self, text: &str, now_unix_ms: i64) -> Result<Vec<Alert>> {
        let rules = RuleSet::from_toml(text)?;
        let lookback = rules.rules.iter().filter_map(change_lookback).max().unwrap_or_default();
        let fleet = build_fleet(self.store.as_ref(), &rules, self.config.heartbeat_interval, lookback, now_unix_ms)?;
        let mut scratch = AlertBook::new();
        evaluate(&rules, &fleet, &mut scratch, now_unix_ms);
        Ok(scratch.alerts().cloned().collect())
    }

    /// The notification an alert's tickets were opened from, per ticketing
    /// sink: `(sink, ticket id)`.
    pub fn tickets_of(&self, fingerprint: &AlertFingerprint) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        for sink in &self.config.sinks {
            if let Some(ticket) = self.store.ticket_of(sink, fingerprint.as_str())? {
                found.push((sink.clone(), ticket));
            }
        }
        Ok(found)
    }
}

fn resolve_id(book: &AlertBook, id: &str) -> Result<AlertFingerprint> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 6 {
        return Err(Error::InvalidArgument(format!("alert id {id:?} is too short: give at least 6 characters of its fingerprint")));
    }
    let mut matching = book.alerts().filter(|a| a.fingerprint.as_str().starts_with(&id));
    match (matching.next(), matching.next()) {
        (Some(a), None) => Ok(a.fingerprint.clone()),
        (None, _) => Err(Error::NotFound(format!("no alert with id {id}"))),
        (Some(_), Some(_)) => Err(Error::InvalidArgument(format!("alert id {id} is ambiguous: give more characters"))),
    }
}

fn alert_error(e: AlertError) -> Error {
    match e {
        AlertError::UnknownAlert(_) | AlertError::UnknownSilence(_) => Error::NotFound(e.to_string()),
        AlertError::AlreadyResolved(_) => Error::FailedPrecondition(e.to_string()),
        AlertError::InvalidSilence(_) => Error::InvalidArgument(e.to_string()),
    }
}

fn stamp_of(path: &Path) -> std::io::Result<FileStamp> {
    let meta = std::fs::metadata(path)?;
    Ok(FileStamp { modified: meta.modified().ok(), len: meta.len() })
}

/// Rule files are small; a larger one is a mistake, not a reason to read
/// without bound.
const MAX_RULE_FILE_BYTES: u64 = 4 * 1024 * 1024;

fn read_rule_file(path: &Path) -> Result<(RuleSet, FileStamp)> {
    let stamp = stamp_of(path).map_err(|e| Error::io("reading rule file", path, e))?;
    if stamp.len > MAX_RULE_FILE_BYTES {
        return Err(Error::Config(format!("rule file {}: larger than {MAX_RULE_FILE_BYTES} bytes", path.display())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading rule file", path, e))?;
    let rules = RuleSet::from_toml(&text).map_err(|e| Error::Config(format!("rule file {}: {e}", path.display())))?;
    Ok((rules, stamp))
}

/// Rules in force from the three sources (see the module invariants).
fn compose(defaults: bool, file: &RuleSet, api: &RuleSet) -> std::result::Result<(RuleSet, BTreeMap<String, RuleSource>), String> {
    let mut rules = Vec::new();
    let mut sources = BTreeMap::new();
    let file_names: BTreeSet<&str> = file.rules.iter().map(|r| r.spec.name.as_str()).collect();
    let api_names: BTreeSet<&str> = api.rules.iter().map(|r| r.spec.name.as_str()).collect();
    if let Some(both) = file_names.intersection(&api_names).next() {
        return Err(format!("rule {both:?} is defined both in the rule file and through the admin API; rename or delete one"));
    }
    if defaults {
        for rule in RuleSet::defaults().rules {
            let name = rule.spec.name.as_str();
            if !file_names.contains(name) && !api_names.contains(name) {
                sources.insert(rule.spec.name.clone(), RuleSource::Default);
                rules.push(rule);
            }
        }
    }
    for (set, source) in [(file, RuleSource::File), (api, RuleSource::Api)] {
        for rule in &set.rules {
            sources.insert(rule.spec.name.clone(), source);
            rules.push(rule.clone());
        }
    }
    Ok((RuleSet { rules }, sources))
}

/// How far back change events matter to a rule (its `within`).
fn change_lookback(rule: &Rule) -> Option<Duration> {
    match &rule.spec.when {
        Condition::InventoryChange { within, .. } if rule.spec.enabled => Some(*within),
        _ => None,
    }
}

/// How far back the latest health sample of a host is looked for: a
/// sample older than this is stale for every metric rule (their default
/// `stale_after` is 15 minutes).
const METRIC_LOOKBACK: Duration = Duration::from_secs(3_600);

/// The fleet as the engine sees it, read from the store, for evaluating
/// `rules`: every host from the host summaries in memory (no inventory is
/// decoded), and as each host's `packages` only the installs of the
/// package names `rules` can look at, from the software index. The engine
/// decides the same as on the full package lists (`build_fleet_reference`,
/// checked by the tests here): a software rule only ever looks at packages
/// its glob matches, and a host whose inventory had a software section
/// keeps `Some` (possibly empty: "software known, none of those installed").
pub fn build_fleet(
    store: &dyn Store,
    rules: &RuleSet,
    heartbeat_interval: Duration,
    change_lookback: Duration,
    now_unix_ms: i64,
) -> Result<FleetState> {
    let mut changes_by_agent = recent_changes(store, change_lookback, now_unix_ms)?;
    let mut packages_by_agent = rule_packages(store, rules)?;
    let mut hosts = Vec::new();
    for view in store.host_summaries()? {
        if view.agent.revoked {
            continue;
        }
        let mut host = host_state(&view);
        // A summary keeps an empty software section where the inventory
        // had one: known, so it gets the host's rule packages (or none).
        if let Some(packages) = host.packages.as_mut() {
            *packages = packages_by_agent.remove(&view.agent.agent_id).unwrap_or_default();
        }
        host.metrics = latest_metrics(store, &view.agent.agent_id, now_unix_ms)?;
        host.changes = changes_by_agent.remove(&view.agent.agent_id).unwrap_or_default();
        hosts.push(host);
    }
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(FleetState { heartbeat_interval, hosts })
}

/// The fleet with every host's full package list, decoded from each stored
/// inventory: the straightforward reading, which costs seconds to minutes
/// per evaluation at fleet scale. Kept as the reference `build_fleet` must
/// agree with (the equality tests here, and the alert benchmark's
/// before/after in `collector/examples/bench_query.rs`).
pub fn build_fleet_reference(
    store: &dyn Store,
    heartbeat_interval: Duration,
    change_lookback: Duration,
    now_unix_ms: i64,
) -> Result<FleetState> {
    let mut changes_by_agent = recent_changes(store, change_lookback, now_unix_ms)?;
    let mut hosts = Vec::new();
    for view in store.hosts()? {
        if view.agent.revoked {
            continue;
        }
        let mut host = host_state(&view);
        host.metrics = latest_metrics(store, &view.agent.agent_id, now_unix_ms)?;
        host.changes = changes_by_agent.remove(&view.agent.agent_id).unwrap_or_default();
        hosts.push(host);
    }
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(FleetState { heartbeat_interval, hosts })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Change events of the last `lookback`, by agent id.
fn recent_changes(store: &dyn Store, lookback: Duration, now_unix_ms: i64) -> Result<HashMap<String, Vec<Change>>> {
    let mut by_agent: HashMap<String, Vec<Change>> = HashMap::new();
    if lookback.is_zero() {
        return Ok(by_agent);
    }
    for (agent_id, c) in store.changes(None, now_unix_ms.saturating_sub(millis(lookback)))? {
        let Some(kind) = ChangeKind::parse(&c.kind) else { continue };
        by_agent.entry(agent_id).or_default().push(Change { at_unix_ms: c.at_unix_ms, kind, subject: c.subject, old: c.old, new: c.new });
    }
    Ok(by_agent)
}

/// The latest metric values of a host, if its newest sample is recent.
fn latest_metrics(store: &dyn Store, agent_id: &str, now_unix_ms: i64) -> Result<BTreeMap<String, MetricPoint>> {
    // Allow a minute of clock skew between agent and collector.
    let latest = store.latest_health_sample(agent_id, now_unix_ms.saturating_add(60_000))?;
    let Some(latest) = latest.filter(|s| s.taken_at_unix_ms >= now_unix_ms.saturating_sub(millis(METRIC_LOOKBACK))) else {
        return Ok(BTreeMap::new());
    };
    Ok(crate::metrics::values_of(&latest)
        .into_iter()
        .map(|(name, value)| (name, MetricPoint { value, at_unix_ms: latest.taken_at_unix_ms }))
        .collect())
}

/// The package globs of the enabled rules that look at installed packages.
fn package_globs(rules: &RuleSet) -> Vec<&Glob> {
    rules
        .rules
        .iter()
        .filter(|r| r.spec.enabled)
        .filter_map(|r| match &r.spec.when {
            Condition::SoftwareMissing { package } | Condition::SoftwareForbidden { package } | Condition::VersionBelow { package, .. } => {
                Some(package)
            }
            _ => None,
        })
        .collect()
}

/// The installs of every package name a rule's glob matches, by agent id,
/// from the software index: an exact name is one cached list; a glob is
/// resolved against the index's names from its literal prefix on.
fn rule_packages(store: &dyn Store, rules: &RuleSet) -> Result<HashMap<String, Vec<PackageFact>>> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for glob in package_globs(rules) {
        if glob.is_literal() {
            names.insert(glob.as_string());
        } else {
            names.extend(store.software_names(&glob.literal_prefix())?.into_iter().filter(|n| glob.matches(n)));
        }
    }
    let mut by_agent: HashMap<String, Vec<PackageFact>> = HashMap::new();
    for name in names {
        for install in store.software_installs(&name)?.iter() {
            by_agent.entry(install.agent_id.clone()).or_default().push(PackageFact {
                name: install.name.clone(),
                version: install.version.clone(),
                source: install.source.clone(),
            });
        }
    }
    Ok(by_agent)
}

fn host_state(view: &HostView) -> HostState {
    let agent = &view.agent;
    let mut host = HostState::new(&agent.agent_id, &agent.hostname);
    host.last_seen_unix_ms = (agent.last_seen_unix_ms > 0).then_some(agent.last_seen_unix_ms);
    host.agent_version = (!agent.agent_version.is_empty()).then(|| agent.agent_version.clone());
    let inventory: Option<&pb::Inventory> = view.inventory.as_ref().and_then(|r| r.inventory.as_ref());
    if let Some(inv) = inventory {
        host.packages = inv.software.as_ref().map(|s| {
            s.packages.iter().map(|p| PackageFact { name: p.name.clone(), version: p.version.clone(), source: p.source.clone() }).collect()
        });
        host.os = inv.os.as_ref().and_then(|os| Some(OsFact { id: os.id.clone()?, version_id: os.version_id.clone().unwrap_or_default() }));
        host.certificates = inv.certificates.as_ref().map(|c| {
            c.certificates
                .iter()
                .map(|c| CertificateFact {
                    path: c.path.clone(),
                    index: c.index,
                    location: c.location.clone(),
                    subject: c.subject.clone(),
                    not_after_unix_ms: c.not_after_unix_ms,
                    is_ca: c.is_ca,
                })
                .collect()
        });
        if let Some(hw) = &inv.hardware {
            host.smart =
                Some(hw.disks.iter().filter_map(|d| Some(SmartFact { disk: d.name.clone(), passed: d.smart.as_ref()?.passed? })).collect());
            host.batteries = Some(
                hw.batteries.iter().filter_map(|b| Some(BatteryFact { name: b.name.clone(), health_percent: b.health_percent? })).collect(),
            );
        }
        host.updates = inv.updates.as_ref().map(|u| {
            u.updates.iter().map(|u| UpdateFact { name: u.name.clone(), source: u.source.clone(), security: u.security }).collect()
        });
    }
    host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> RuleSet {
        RuleSet::from_toml(text).expect("test rules parse")
    }

    #[test]
    fn file_rules_override_defaults_by_name_and_clash_with_api_rules() {
        let file = rules(
            r#"
[[rule]]
name = "disk-almost-full"
when = { kind = "metric", metric = "fs.*.used_percent", op = ">", threshold = 80 }
"#,
        );
        let api = rules(
            r#"
[[rule]]
name = "no-telnet"
when = { kind = "software_forbidden", package = "telnetd" }
"#,
        );
        let (set, sources) = compose(true, &file, &api).expect("composes");
        let disk: Vec<&Rule> = set.rules.iter().filter(|r| r.spec.name == "disk-almost-full").collect();
        assert_eq!(disk.len(), 1, "the file rule replaces the default of the same name");
        assert_eq!(sources["disk-almost-full"], RuleSource::File);
        assert_eq!(sources["host-offline"], RuleSource::Default);
        assert_eq!(sources["no-telnet"], RuleSource::Api);
        let (without_defaults, _) = compose(false, &file, &api).expect("composes");
        assert_eq!(without_defaults.rules.len(), 2);

        let clash = rules("[[rule]]\nname = \"no-telnet\"\nwhen = { kind = \"software_missing\", package = \"x\" }\n");
        let err = compose(true, &clash, &api).unwrap_err();
        assert!(err.contains("\"no-telnet\" is defined both"), "{err}");
    }

    // --- build_fleet from summaries and the software index agrees with
    // the full-inventory reading

    use crate::store::sled::SledStore;

    /// Rules of every kind that looks at packages: exact names, globs with
    /// and without a literal prefix, a source filter, a disabled rule.
    const PACKAGE_RULES: &str = r#"
[[rule]]
name = "edr-missing"
when = { kind = "software_missing", package = "falcon-sensor" }
[[rule]]
name = "libssl-missing"
when = { kind = "software_missing", package = "lib*ssl*" }
[[rule]]
name = "vim-like-missing"
when = { kind = "software_missing", package = "?im" }
[[rule]]
name = "no-telnet"
when = { kind = "software_forbidden", package = "telnet*" }
[[rule]]
name = "nothing-at-all"
when = { kind = "software_forbidden", package = "*-dev" }
[[rule]]
name = "openssl-old"
when = { kind = "version_below", package = "openssl", minimum = "3.0.13" }
[[rule]]
name = "rpm-openssl-family-old"
when = { kind = "version_below", package = "openssl*", minimum = "1.0", source = "rpm" }
[[rule]]
name = "disabled-forbids-curl"
enabled = false
when = { kind = "software_forbidden", package = "curl" }
"#;

    const NAMES: [&str; 9] = ["openssl", "openssl-dev", "telnet", "telnetd", "falcon-sensor", "curl", "libssl3", "vim", "jim"];
    const VERSIONS: [&str; 6] = ["1.0", "1.00", "0.9", "3.0.13", "3.0.2", "2:1.0"];
    const SOURCES: [&str; 2] = ["dpkg", "rpm"];
    const ARCHES: [Option<&str>; 3] = [Some("amd64"), Some("i386"), None];

    /// A generated package: indexes into NAMES, VERSIONS, SOURCES, ARCHES.
    type GenPackage = (usize, usize, usize, usize);

    /// One generated host: its inventories in order (`None`: no software
    /// section; packages as indexes into the tables above) and whether it
    /// is revoked at the end.
    #[derive(Debug, Clone)]
    struct GenHost {
        inventories: Vec<Option<Vec<GenPackage>>>,
        revoked: bool,
    }

    fn gen_host() -> impl proptest::strategy::Strategy<Value = GenHost> {
        use proptest::prelude::*;
        let package = (0..NAMES.len(), 0..VERSIONS.len(), 0..SOURCES.len(), 0..ARCHES.len());
        let inventory = proptest::option::weighted(0.8, proptest::collection::vec(package, 0..8));
        (proptest::collection::vec(inventory, 0..3), proptest::bool::weighted(0.2))
            .prop_map(|(inventories, revoked)| GenHost { inventories, revoked })
    }

    fn report(seq: u64, packages: &Option<Vec<GenPackage>>) -> pb::Report {
        let software = packages.as_ref().map(|list| pb::SoftwareSection {
            packages: list
                .iter()
                .map(|&(n, v, s, a)| pb::Package {
                    name: NAMES[n].into(),
                    version: VERSIONS[v].into(),
                    source: SOURCES[s].into(),
                    arch: ARCHES[a].map(String::from),
                    ..Default::default()
                })
                .collect(),
        });
        let os = Some(pb::OsSection { id: Some("debian".into()), version_id: Some("12".into()), ..Default::default() });
        pb::Report {
            seq,
            created_at_unix_ms: 1,
            body: Some(pb::report::Body::Inventory(pb::Inventory { software, os, ..Default::default() })),
        }
    }

    fn store_of(dir: &Path, hosts: &[GenHost]) -> SledStore {
        let store = SledStore::open(dir).expect("open");
        for (i, h) in hosts.iter().enumerate() {
            let id = format!("{i:032x}");
            store.enroll_agent(crate::store::test_agent(&id, &format!("u{i}"), i as u8)).expect("enroll");
            for (seq, inv) in h.inventories.iter().enumerate() {
                store.put_reports(&id, &[report(seq as u64 + 1, inv)], 1_000).expect("put");
            }
            if h.revoked {
                store.revoke_agent(&id, 2_000).expect("revoke");
            }
        }
        store
    }

    /// The fleet restricted to what the rules' globs can see, packages in
    /// one order and once each (the index keeps neither listing order nor
    /// exact repeats).
    fn comparable(mut fleet: FleetState, rules: &RuleSet) -> FleetState {
        let globs = package_globs(rules);
        for h in &mut fleet.hosts {
            if let Some(p) = h.packages.as_mut() {
                p.retain(|p| globs.iter().any(|g| g.matches(&p.name)));
                p.sort_by(|a, b| (&a.name, &a.version, &a.source).cmp(&(&b.name, &b.version, &b.source)));
                p.dedup();
            }
        }
        fleet
    }

    fn decisions(rules: &RuleSet, fleet: &FleetState, now: i64) -> Vec<Alert> {
        let mut book = AlertBook::new();
        evaluate(rules, fleet, &mut book, now);
        book.alerts().cloned().collect()
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn a_known_software_section_without_the_package_still_counts_as_missing() {
        let dir = tempfile::tempdir().expect("tmp");
        let hosts = [
            GenHost { inventories: vec![Some(vec![(5, 0, 0, 0)])], revoked: false }, // curl only
            GenHost { inventories: vec![None], revoked: false },                     // no software section
            GenHost { inventories: vec![], revoked: false },                         // no inventory
            GenHost { inventories: vec![Some(vec![])], revoked: true },              // revoked
            GenHost { inventories: vec![Some(vec![(4, 0, 1, 2)])], revoked: false }, // falcon-sensor
        ];
        let store = store_of(dir.path(), &hosts);
        let rules = rules(PACKAGE_RULES);
        let fleet = build_fleet(&store, &rules, Duration::from_secs(60), Duration::ZERO, NOW).expect("fleet");
        let ids: Vec<&str> = fleet.hosts.iter().map(|h| &h.id[30..]).collect();
        assert_eq!(ids, ["00", "01", "02", "04"], "the revoked host is left out");
        assert_eq!(fleet.hosts[0].packages, Some(vec![]), "software known, none of the rules' packages installed");
        assert_eq!(fleet.hosts[1].packages, None);
        assert_eq!(fleet.hosts[2].packages, None);
        assert_eq!(fleet.hosts[3].packages.as_ref().map(|p| p[0].name.as_str()), Some("falcon-sensor"));
        let edr: Vec<String> =
            decisions(&rules, &fleet, NOW).into_iter().filter(|a| a.rule == "edr-missing").map(|a| a.host_id[30..].to_string()).collect();
        assert_eq!(edr, ["00"], "missing only where the software section is known and has no falcon-sensor");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 40, failure_persistence: None, ..Default::default() })]

        #[test]
        fn build_fleet_decides_as_the_full_inventories(hosts in proptest::collection::vec(gen_host(), 1..7)) {
            let dir = tempfile::tempdir().expect("tmp");
            let store = store_of(dir.path(), &hosts);
            let rules = rules(PACKAGE_RULES);
            let heartbeat = Duration::from_secs(60);
            let reference = build_fleet_reference(&store, heartbeat, Duration::ZERO, NOW).expect("reference");
            // Twice: the first call loads the caches, the second reads them.
            for _ in 0..2 {
                let fast = build_fleet(&store, &rules, heartbeat, Duration::ZERO, NOW).expect("fleet");
                proptest::prop_assert_eq!(decisions(&rules, &fast, NOW), decisions(&rules, &reference, NOW));
                proptest::prop_assert_eq!(comparable(fast, &rules), comparable(reference.clone(), &rules));
            }
        }
    }
}
