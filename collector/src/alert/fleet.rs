//! What the engine looks at: a plain snapshot of the fleet, built by the
//! caller from the store (latest metric values, last contact, the inventory
//! facts compliance rules need, recent change events). No store types here,
//! so rules can be evaluated against a hand-made state in tests and in
//! `census rules test`.
//!
//! Unknown is not absent: `packages`, `os` and `agent_version` are `None`
//! when the host has not reported them (or the section failed), and a
//! compliance rule then says nothing about the host, rather than "required
//! software missing" on every host whose software read failed.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::changes::Change;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetState {
    /// The agents' heartbeat interval, for `host_offline` rules counted in
    /// missed heartbeats.
    pub heartbeat_interval: Duration,
    pub hosts: Vec<HostState>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostState {
    /// The agent id: the identity alerts are keyed on (a renamed host keeps
    /// its alerts).
    pub id: String,
    /// The name shown in summaries (`{{host}}`) and the `host` label.
    pub hostname: String,
    /// Host labels (site, owner, ...), copied onto every alert of the host.
    pub labels: BTreeMap<String, String>,
    /// When the collector last heard from the host; `None`: never.
    pub last_seen_unix_ms: Option<i64>,
    /// Latest value of each metric, by the names `crate::metrics` gives.
    pub metrics: BTreeMap<String, MetricPoint>,
    /// Installed packages. The engine looks at a package only through a
    /// rule's name glob, so a caller may list just the packages the rules
    /// it evaluates can match (`alerting::build_fleet` does); what must
    /// stay is `Some` for a known software section, even if empty.
    pub packages: Option<Vec<PackageFact>>,
    pub os: Option<OsFact>,
    pub agent_version: Option<String>,
    /// Recent change events, as the store's change history records them.
    pub changes: Vec<Change>,
    pub certificates: Option<Vec<CertificateFact>>,
    /// Disks with a SMART self-assessment (`passed`).
    pub smart: Option<Vec<SmartFact>>,
    pub batteries: Option<Vec<BatteryFact>>,
    /// Pending updates; `None` when the updates section is unknown.
    pub updates: Option<Vec<UpdateFact>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFact {
    pub path: String,
    pub index: u32,
    pub location: String,
    pub subject: String,
    pub not_after_unix_ms: i64,
    pub is_ca: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartFact {
    pub disk: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatteryFact {
    pub name: String,
    pub health_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFact {
    pub name: String,
    pub source: String,
    pub security: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    pub value: f64,
    pub at_unix_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFact {
    pub name: String,
    pub version: String,
    /// The agent's source name (`dpkg`, `rpm`, `snap`, ...): it picks the
    /// version ordering.
    pub source: String,
}

/// os-release `ID` and `VERSION_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsFact {
    pub id: String,
    pub version_id: String,
}

impl HostState {
    pub fn new(id: &str, hostname: &str) -> HostState {
        HostState { id: id.to_string(), hostname: hostname.to_string(), ..HostState::default() }
    }
}
