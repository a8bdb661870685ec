//! Collector configuration: one `Config`, resolved once as
//! defaults < TOML file < `CENSUS_*` environment < command-line flags, then
//! validated. Every key, its default and its meaning is listed in
//! `docs/config-collector.md`; a test checks that file against `Config::default()`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the sled database and the PKI (`pki/`).
    pub data_dir: PathBuf,
    /// Log format on stderr: "text" or "json".
    pub log_format: LogFormat,
    pub agent_api: AgentApi,
    pub admin_api: AdminApi,
    pub http_api: HttpApi,
    pub agents: AgentPolicy,
    pub limits: Limits,
    pub metrics: Metrics,
    pub alerts: Alerts,
    pub notify: Notify,
    pub audit: Audit,
    /// `[[sink]]` tables: where notifications go (docs/notifications.md).
    #[serde(rename = "sink")]
    pub sinks: Vec<crate::notify::SinkConfig>,
    /// `[[route]]` tables: which notifications go to which sinks.
    #[serde(rename = "route")]
    pub routes: Vec<crate::notify::route::RouteConfig>,
}

/// The audit log of admin calls (docs/OPERATIONS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Entries older than this are pruned (hourly).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for Audit {
    fn default() -> Self {
        Audit { retention: Duration::from_secs(365 * 86_400) }
    }
}

/// Alert evaluation (SPEC §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// Rule file (`[[rule]]` tables, docs/alerts.md), reloaded when it
    /// changes; a file with an error is refused whole and the rules in force
    /// stay. Unset: the default rules and the admin API's rules only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<PathBuf>,
    /// Whether the shipped rules (disk almost full, memory exhausted, host
    /// offline, failed services) are in force. A rule of the same name in
    /// the rule file replaces the shipped one.
    pub default_rules: bool,
    /// Time between evaluations of every rule against the fleet.
    #[serde(with = "humantime_serde")]
    pub evaluation_interval: Duration,
    /// How often the rule file is checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            rules_file: None,
            default_rules: true,
            evaluation_interval: Duration::from_secs(30),
            reload_interval: Duration::from_secs(5),
        }
    }
}

/// Delivery of notifications through the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notify {
    /// Attempts before an entry goes to the dead letters.
    pub max_attempts: u32,
    /// Delay after the first failure; doubles per failure, with jitter.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Delivered entries stay visible in `census outbox` this long.
    #[serde(with = "humantime_serde")]
    pub delivered_retention: Duration,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            max_attempts: 12,
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30 * 60),
            delivered_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl Notify {
    pub fn retry_policy(&self) -> crate::notify::outbox::RetryPolicy {
        crate::notify::outbox::RetryPolicy {
            max_attempts: self.max_attempts,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
        }
    }
}

/// Health metrics storage: how long each resolution is kept, and how often
/// the background compaction rolls raw samples up and expires old data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Raw health samples (every 15 s per host by default).
    #[serde(with = "humantime_serde")]
    pub raw_retention: Duration,
    /// 5-minute rollups (count, sum, min, max per metric).
    #[serde(with = "humantime_serde")]
    pub five_minute_retention: Duration,
    /// 1-hour rollups.
    #[serde(with = "humantime_serde")]
    pub hourly_retention: Duration,
    /// Time between background compactions.
    #[serde(with = "humantime_serde")]
    pub compaction_interval: Duration,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            raw_retention: Duration::from_secs(7 * 86_400),
            five_minute_retention: Duration::from_secs(90 * 86_400),
            hourly_retention: Duration::from_secs(730 * 86_400),
            compaction_interval: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The agent-facing gRPC endpoint (mutual TLS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentApi {
    /// Address for AgentService. Port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
}

/// The admin-facing gRPC endpoint (TLS + bearer token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminApi {
    /// Address for AdminService. Port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
}

/// The HTTP JSON API, its OpenAPI document and `/metrics` (TLS with the
/// server certificate; bearer tokens of the admin API). docs/http-api.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpApi {
    /// Address of the HTTP listener. Port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
    /// Whether `/metrics` asks for a bearer token (any role). Off: anyone
    /// who reaches the listener can scrape the fleet gauges.
    pub metrics_require_token: bool,
}

impl Default for HttpApi {
    fn default() -> Self {
        HttpApi { listen: SocketAddr::from(([127, 0, 0, 1], 7445)), metrics_require_token: true }
    }
}

/// What the collector tells agents, and how it treats them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentPolicy {
    /// Heartbeat interval pushed to agents.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Inventory collection interval pushed to agents.
    #[serde(with = "humantime_serde")]
    pub inventory_interval: Duration,
    /// Lifetime of the client certificates issued at enrollment and at
    /// each renewal (agents renew before it ends, see the agent's
    /// `renew_before`).
    #[serde(with = "humantime_serde")]
    pub certificate_lifetime: Duration,
    /// A host is offline once this many heartbeat intervals passed without
    /// a report from it.
    pub offline_after_missed_heartbeats: u32,
}

/// Bounds on everything an agent sends. A request beyond them is refused
/// whole, with a status naming the limit; nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest gRPC message accepted, bytes (checked by the transport
    /// before decoding).
    pub max_message_bytes: usize,
    /// Largest single encoded report inside a request, bytes.
    pub max_report_bytes: usize,
    /// Most reports in one ReportRequest.
    pub max_reports_per_request: usize,
    /// Longest string field in a report or enrollment, bytes.
    pub max_string_bytes: usize,
    /// Most items in one inventory list (filesystems, interfaces, addresses, ...).
    pub max_items_per_list: usize,
    /// Largest CSR accepted at enrollment, bytes.
    pub max_csr_bytes: usize,
    /// Reports one agent may send per minute, sustained (token bucket per
    /// agent id; 0 disables the limit). Over it: RESOURCE_EXHAUSTED with a
    /// retry-after, which agents treat as transient.
    pub reports_per_agent_per_minute: u32,
    /// Reports one agent may send at once above the sustained rate (the
    /// bucket's size): a spool replayed after an outage drains this fast.
    pub report_burst_per_agent: u32,
    /// Free bytes kept in reserve on the data directory's filesystem: below
    /// it, reports are refused with RESOURCE_EXHAUSTED ("disk full") before
    /// anything is written, and accepted again once space is freed.
    pub min_free_disk_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/census-collector"),
            log_format: LogFormat::Text,
            agent_api: AgentApi::default(),
            admin_api: AdminApi::default(),
            http_api: HttpApi::default(),
            agents: AgentPolicy::default(),
            limits: Limits::default(),
            metrics: Metrics::default(),
            alerts: Alerts::default(),
            notify: Notify::default(),
            audit: Audit::default(),
            sinks: Vec::new(),
            routes: Vec::new(),
        }
    }
}

impl Default for AgentApi {
    fn default() -> Self {
        AgentApi { listen: SocketAddr::from(([0, 0, 0, 0], 7443)) }
    }
}

impl Default for AdminApi {
    fn default() -> Self {
        AdminApi { listen: SocketAddr::from(([127, 0, 0, 1], 7444)) }
    }
}

impl Default for AgentPolicy {
    fn default() -> Self {
        AgentPolicy {
            heartbeat_interval: Duration::from_secs(60),
            inventory_interval: Duration::from_secs(3600),
            certificate_lifetime: Duration::from_secs(90 * 24 * 3600),
            offline_after_missed_heartbeats: 3,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 4 * 1024 * 1024,
            max_report_bytes: 2 * 1024 * 1024,
            max_reports_per_request: 256,
            max_string_bytes: 4096,
            max_items_per_list: 10_000,
            max_csr_bytes: 16 * 1024,
            // A normal agent sends a few reports a minute (heartbeat, health
            // batch, inventory); ten a second is a flood, or a benchmark,
            // which sets its own.
            reports_per_agent_per_minute: 600,
            report_burst_per_agent: 1200,
            min_free_disk_bytes: 128 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Parses a TOML document. `origin` names it in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        config.validate().map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading config", path, e))?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Checks relations between keys that serde cannot express.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let l = &self.limits;
        let positive = [
            ("limits.max_message_bytes", l.max_message_bytes),
            ("limits.max_report_bytes", l.max_report_bytes),
            ("limits.max_reports_per_request", l.max_reports_per_request),
            ("limits.max_string_bytes", l.max_string_bytes),
            ("limits.max_items_per_list", l.max_items_per_list),
            ("limits.max_csr_bytes", l.max_csr_bytes),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(format!("{key} must be greater than 0"));
            }
        }
        if l.reports_per_agent_per_minute > 0 && (l.report_burst_per_agent as usize) < l.max_reports_per_request {
            return Err(format!(
                "limits.report_burst_per_agent ({}) must be at least limits.max_reports_per_request ({}), or a full request could never pass",
                l.report_burst_per_agent, l.max_reports_per_request
            ));
        }
        if l.max_report_bytes > l.max_message_bytes {
            return Err(format!(
                "limits.max_report_bytes ({}) cannot exceed limits.max_message_bytes ({})",
                l.max_report_bytes, l.max_message_bytes
            ));
        }
        let a = &self.agents;
        if a.heartbeat_interval < Duration::from_secs(1) {
            return Err("agents.heartbeat_interval must be at least 1s".into());
        }
        if a.inventory_interval < a.heartbeat_interval {
            return Err("agents.inventory_interval cannot be shorter than agents.heartbeat_interval".into());
        }
        // Short lifetimes are for tests and drills: agents renew when a
        // share of the lifetime is left, and must get the chance to.
        if a.certificate_lifetime < Duration::from_secs(10) {
            return Err("agents.certificate_lifetime must be at least 10s".into());
        }
        if a.offline_after_missed_heartbeats == 0 {
            return Err("agents.offline_after_missed_heartbeats must be at least 1".into());
        }
        if self.audit.retention < Duration::from_secs(86_400) {
            return Err("audit.retention must be at least 1d".into());
        }
        let m = &self.metrics;
        if m.raw_retention < Duration::from_secs(3600) {
            return Err("metrics.raw_retention must be at least 1h".into());
        }
        if m.five_minute_retention < m.raw_retention || m.hourly_retention < m.five_minute_retention {
            return Err(
                "metrics retentions must grow with the resolution: raw_retention <= five_minute_retention <= hourly_retention".into()
            );
        }
        if m.compaction_interval < Duration::from_secs(1) {
            return Err("metrics.compaction_interval must be at least 1s".into());
        }
        let al = &self.alerts;
        if al.evaluation_interval < Duration::from_millis(100) || al.reload_interval < Duration::from_millis(100) {
            return Err("alerts.evaluation_interval and alerts.reload_interval must be at least 100ms".into());
        }
        let n = &self.notify;
        if n.max_attempts == 0 {
            return Err("notify.max_attempts must be at least 1".into());
        }
        if n.initial_backoff.is_zero() || n.max_backoff < n.initial_backoff {
            return Err("notify.initial_backoff must be positive and at most notify.max_backoff".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for sink in &self.sinks {
            let valid_name = !sink.name.is_empty()
                && sink.name.len() <= 64
                && sink.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !valid_name {
                return Err(format!("sink name {:?}: 1 to 64 letters, digits, '-', '_' or '.'", sink.name));
            }
            if !names.insert(sink.name.as_str()) {
                return Err(format!("sink name {:?} is used twice", sink.name));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            if route.sinks.is_empty() {
                return Err(format!("route #{}: `sinks` is empty", i + 1));
            }
            if let Some(unknown) = route.sinks.iter().find(|s| !names.contains(s.as_str())) {
                return Err(format!("route #{}: no [[sink]] is named {unknown:?}", i + 1));
            }
        }
        let listeners = [
            ("agent_api.listen", self.agent_api.listen),
            ("admin_api.listen", self.admin_api.listen),
            ("http_api.listen", self.http_api.listen),
        ];
        for (i, (a, addr_a)) in listeners.iter().enumerate() {
            if let Some((b, _)) = listeners[i + 1..].iter().find(|(_, addr_b)| addr_b == addr_a && addr_a.port() != 0) {
                return Err(format!("{a} and {b} must differ"));
            }
        }
        Ok(())
    }

    /// Path of the PKI directory inside the data directory.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }
}

/// `Duration` as a humantime string ("60s", "90d") in TOML.
pub(crate) mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// The largest whole unit: "90d", "1h", "90s" (humantime would print
    /// "2months 29days 2h 52m 48s" for 90 days).
    pub fn format_duration(d: Duration) -> String {
        let secs = d.as_secs();
        if d.subsec_nanos() != 0 {
            return format!("{}ms", d.as_millis());
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs >= size && secs % size == 0 {
                return format!("{}{unit}", secs / size);
            }
        }
        format!("{secs}s")
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("", "t").expect("empty config is valid"), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[limits]\nmax_mesage_bytes = 3\n", "census.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("census.toml"), "{text}");
        assert!(text.contains("max_mesage_bytes"), "{text}");
    }

    #[test]
    fn durations_parse_and_relations_are_checked() {
        let c = Config::from_toml("[agents]\nheartbeat_interval = \"5s\"\ninventory_interval = \"1m\"\n", "t").expect("valid durations");
        assert_eq!(c.agents.heartbeat_interval, Duration::from_secs(5));
        let err = Config::from_toml("[agents]\nheartbeat_interval = \"5m\"\ninventory_interval = \"1m\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("inventory_interval"), "{err}");
        let err = Config::from_toml("[limits]\nmax_report_bytes = 0\n", "t").unwrap_err();
        assert!(err.to_string().contains("limits.max_report_bytes must be greater than 0"), "{err}");
    }

    #[test]
    fn each_listener_needs_its_own_address() {
        let err =
            Config::from_toml("[admin_api]\nlisten = \"127.0.0.1:9000\"\n[http_api]\nlisten = \"127.0.0.1:9000\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("admin_api.listen and http_api.listen must differ"), "{err}");
        let ephemeral =
            "[agent_api]\nlisten = \"127.0.0.1:0\"\n[admin_api]\nlisten = \"127.0.0.1:0\"\n[http_api]\nlisten = \"127.0.0.1:0\"\n";
        Config::from_toml(ephemeral, "t").expect("port 0 picks distinct ports");
    }

    #[test]
    fn example_config_in_deploy_parses() {
        let text = include_str!("../../deploy/collector.toml");
        let c = Config::from_toml(text, "deploy/collector.toml").expect("example config parses");
        assert_eq!(c.limits, Limits::default(), "the example documents the default limits");
    }

    #[test]
    fn config_reference_lists_every_key_with_its_default() {
        let reference = include_str!("../../docs/config-collector.md");
        let defaults = toml::to_string(&Config::default()).expect("defaults serialise");
        let mut section = String::new();
        for line in defaults.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_string();
                continue;
            }
            let Some((key, value)) = line.split_once(" = ") else { continue };
            let full = if section.is_empty() { key.to_string() } else { format!("{section}.{key}") };
            let row = format!("| `{full}` | `{value}` |");
            assert!(reference.contains(&row), "docs/config-collector.md lacks the row starting {row}");
        }
    }
}
