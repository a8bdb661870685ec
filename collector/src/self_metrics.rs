//! The collector's own metrics, served as Prometheus text on `/metrics`
//! (`http_api/`): plain atomics bumped by ingest (`agent_api.rs`), the
//! evaluation loop (`server.rs`) and the sink tasks (`notify/dispatch.rs`),
//! plus fleet gauges read from the store and the alert service at scrape
//! time (`Snapshot`).
//!
//! `render` writes the text exposition format 0.0.4: every family has its
//! `# HELP` and `# TYPE` lines, label values are escaped, histograms have
//! cumulative `_bucket{le=...}` lines ending with `le="+Inf"`, then `_sum`
//! and `_count`. `FAMILIES` is the list docs/http-api.md is checked against.
//!
//! Nothing here blocks: a scrape never waits for ingest, nor ingest for a
//! scrape (counters are relaxed atomics; the per-sink map takes a short
//! lock).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use census_proto::v1 as pb;

/// Every metric family `render` writes: (name, type, help). Labels are in
/// the help text; docs/http-api.md lists each name (a test checks).
pub const FAMILIES: &[(&str, &str, &str)] = &[
    ("census_reports_received_total", "counter", "Reports received from enrolled agents, by kind (heartbeat, inventory, delta, health)."),
    (
        "census_reports_refused_total",
        "counter",
        "Reports in requests refused whole, by reason (unauthenticated, revoked, wrong_agent, too_large, invalid, unavailable, throttled).",
    ),
    ("census_ingest_duration_seconds", "histogram", "Time from receiving a report request to acknowledging it (stored and flushed)."),
    ("census_store_size_bytes", "gauge", "Size of the store on disk (sled's size_on_disk)."),
    ("census_outbox_pending", "gauge", "Notification outbox entries waiting for delivery, by sink."),
    ("census_rule_evaluations_total", "counter", "Rounds of alert rule evaluation against the fleet."),
    ("census_rule_evaluation_failures_total", "counter", "Rounds of alert rule evaluation that failed (retried next interval)."),
    ("census_rule_evaluation_duration_seconds", "histogram", "Time one round of alert rule evaluation took, commit included."),
    ("census_notifications_delivered_total", "counter", "Outbox entries a sink accepted, by sink."),
    ("census_notifications_failed_total", "counter", "Failed delivery attempts of outbox entries, by sink (each retry counts)."),
    ("census_hosts", "gauge", "Enrolled hosts."),
    ("census_hosts_online", "gauge", "Hosts that reported within agents.offline_after_missed_heartbeats heartbeat intervals."),
    ("census_hosts_offline", "gauge", "Hosts that did not (including revoked and never-seen ones)."),
    ("census_alerts_firing", "gauge", "Firing alerts, by severity (info, warning, critical)."),
    ("census_alerts_pending", "gauge", "Alerts whose condition holds for less than their rule's `for`."),
];

/// Upper bounds of the latency histograms, seconds: 1 ms to 5 s.
pub const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What a report carries, as `census_reports_received_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Heartbeat,
    Inventory,
    Delta,
    Health,
    /// A report without a body (refused by validation).
    Empty,
}

impl ReportKind {
    const ALL: [ReportKind; 5] = [ReportKind::Heartbeat, ReportKind::Inventory, ReportKind::Delta, ReportKind::Health, ReportKind::Empty];

    pub fn of(report: &pb::Report) -> ReportKind {
        use pb::report::Body;
        match &report.body {
            Some(Body::Heartbeat(_)) => ReportKind::Heartbeat,
            Some(Body::Inventory(_)) => ReportKind::Inventory,
            Some(Body::InventoryDelta(_)) => ReportKind::Delta,
            Some(Body::Health(_)) => ReportKind::Health,
            None => ReportKind::Empty,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Heartbeat => "heartbeat",
            ReportKind::Inventory => "inventory",
            ReportKind::Delta => "delta",
            ReportKind::Health => "health",
            ReportKind::Empty => "empty",
        }
    }
}

/// Why a report request was refused whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No client certificate, or one this collector does not know.
    Unauthenticated,
    /// The agent was revoked.
    Revoked,
    /// The request names another agent than its certificate.
    WrongAgent,
    /// Beyond `limits`.
    TooLarge,
    /// Malformed.
    Invalid,
    /// The store failed; the agent retries.
    Unavailable,
    /// Over the agent's rate limit; the agent retries later.
    Throttled,
}

impl Refusal {
    const ALL: [Refusal; 7] = [
        Refusal::Unauthenticated,
        Refusal::Revoked,
        Refusal::WrongAgent,
        Refusal::TooLarge,
        Refusal::Invalid,
        Refusal::Unavailable,
        Refusal::Throttled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Revoked => "revoked",
            Refusal::WrongAgent => "wrong_agent",
            Refusal::TooLarge => "too_large",
            Refusal::Invalid => "invalid",
            Refusal::Unavailable => "unavailable",
            Refusal::Throttled => "throttled",
        }
    }
}

/// A histogram over `LATENCY_BUCKETS`: per-bucket counts (not cumulative),
/// the count, and the sum in nanoseconds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|le| seconds <= *le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// Deliveries of one sink.
#[derive(Debug, Default, Clone, Copy)]
struct SinkCounts {
    delivered: u64,
    failed: u64,
}

/// The counters and histograms the collector's tasks update.
#[derive(Debug, Default)]
pub struct SelfMetrics {
    received: [AtomicU64; ReportKind::ALL.len()],
    refused: [AtomicU64; Refusal::ALL.len()],
    ingest: Histogram,
    evaluations: AtomicU64,
    evaluation_failures: AtomicU64,
    evaluation: Histogram,
    sinks: Mutex<BTreeMap<String, SinkCounts>>,
}

/// What a scrape reads from the store and the alert service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub store_size_bytes: u64,
    pub outbox_pending: BTreeMap<String, usize>,
    pub hosts: usize,
    pub hosts_online: usize,
    /// Firing alerts per severity name; every severity is written, 0 when absent.
    pub alerts_firing: BTreeMap<&'static str, usize>,
    pub alerts_pending: usize,
}

impl SelfMetrics {
    pub fn report_received(&self, kind: ReportKind) {
        self.received[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `reports` reports refused for `why`.
    pub fn reports_refused(&self, why: Refusal, reports: usize) {
        self.refused[why as usize].fetch_add(reports as u64, Ordering::Relaxed);
    }

    pub fn ingested(&self, took: Duration) {
        self.ingest.observe(took);
    }

    pub fn evaluated(&self, took: Duration, ok: bool) {
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.evaluation_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.evaluation.observe(took);
    }

    /// Makes a sink's delivery counters exist (at 0) before its first delivery.
    pub fn sink_configured(&self, sink: &str) {
        self.with_sink(sink, |_| {});
    }

    pub fn delivered(&self, sink: &str) {
        self.with_sink(sink, |c| c.delivered += 1);
    }

    pub fn delivery_failed(&self, sink: &str) {
        self.with_sink(sink, |c| c.failed += 1);
    }

    fn with_sink(&self, sink: &str, f: impl FnOnce(&mut SinkCounts)) {
        // A poisoned lock only means another thread panicked mid-increment:
        // the counts are still counts.
        let mut sinks = self.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(sinks.entry(sink.to_string()).or_default());
    }

    /// The whole exposition: the counters, then the scrape-time gauges.
    pub fn render(&self, now: &Snapshot) -> String {
        let mut out = Exposition::default();
        let received: Vec<(ReportKind, u64)> =
            ReportKind::ALL.iter().map(|k| (*k, self.received[*k as usize].load(Ordering::Relaxed))).collect();
        out.family("census_reports_received_total");
        for (kind, n) in received {
            out.sample("census_reports_received_total", &[("kind", kind.as_str())], n as f64);
        }
        out.family("census_reports_refused_total");
        for why in Refusal::ALL {
            out.sample(
                "census_reports_refused_total",
                &[("reason", why.as_str())],
                self.refused[why as usize].load(Ordering::Relaxed) as f64,
            );
        }
        out.histogram("census_ingest_duration_seconds", &self.ingest);
        out.family("census_store_size_bytes");
        out.sample("census_store_size_bytes", &[], now.store_size_bytes as f64);
        out.family("census_outbox_pending");
        let sinks = self.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut depth: BTreeMap<&str, usize> = sinks.keys().map(|s| (s.as_str(), 0)).collect();
        depth.extend(now.outbox_pending.iter().map(|(s, n)| (s.as_str(), *n)));
        for (sink, n) in depth {
            out.sample("census_outbox_pending", &[("sink", sink)], n as f64);
        }
        out.family("census_rule_evaluations_total");
        out.sample("census_rule_evaluations_total", &[], self.evaluations.load(Ordering::Relaxed) as f64);
        out.family("census_rule_evaluation_failures_total");
        out.sample("census_rule_evaluation_failures_total", &[], self.evaluation_failures.load(Ordering::Relaxed) as f64);
        out.histogram("census_rule_evaluation_duration_seconds", &self.evaluation);
        out.family("census_notifications_delivered_total");
        for (sink, c) in &sinks {
            out.sample("census_notifications_delivered_total", &[("sink", sink)], c.delivered as f64);
        }
        out.family("census_notifications_failed_total");
        for (sink, c) in &sinks {
            out.sample("census_notifications_failed_total", &[("sink", sink)], c.failed as f64);
        }
        out.family("census_hosts");
        out.sample("census_hosts", &[], now.hosts as f64);
        out.family("census_hosts_online");
        out.sample("census_hosts_online", &[], now.hosts_online as f64);
        out.family("census_hosts_offline");
        out.sample("census_hosts_offline", &[], now.hosts.saturating_sub(now.hosts_online) as f64);
        out.family("census_alerts_firing");
        for severity in ["info", "warning", "critical"] {
            out.sample("census_alerts_firing", &[("severity", severity)], now.alerts_firing.get(severity).copied().unwrap_or(0) as f64);
        }
        out.family("census_alerts_pending");
        out.sample("census_alerts_pending", &[], now.alerts_pending as f64);
        out.text
    }
}

/// A text exposition being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// `# HELP` and `# TYPE` of a family from `FAMILIES`.
    fn family(&mut self, name: &str) {
        let (_, kind, help) = FAMILIES.iter().find(|(n, _, _)| *n == name).expect("every rendered family is listed in FAMILIES");
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label_value(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_value(value));
    }

    fn histogram(&mut self, name: &str, h: &Histogram) {
        self.family(name);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (le, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            self.sample(&bucket, &[("le", &format_value(*le))], cumulative as f64);
        }
        // Read after the buckets: observations that landed in between are
        // in +Inf and count, so `+Inf == _count` and buckets never exceed it.
        let count = h.count.load(Ordering::Relaxed).max(cumulative);
        self.sample(&bucket, &[("le", "+Inf")], count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9);
        self.sample(&format!("{name}_count"), &[], count as f64);
    }
}

/// Backslash, double quote and newline escaped, as the format requires.
fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Go's float formatting as Prometheus reads it: integers without a
/// fraction, `+Inf`, `-Inf`, `NaN`.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed sample line: name, labels, value.
    fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().expect("a float"),
        };
        let Some((name, labels)) = series.split_once('{') else { return (series.to_string(), Vec::new(), value) };
        let labels = labels.strip_suffix('}').expect("closing brace");
        let mut out = Vec::new();
        let mut rest = labels;
        while !rest.is_empty() {
            let (label, tail) = rest.split_once("=\"").expect("label=\"");
            let mut value = String::new();
            let mut chars = tail.char_indices();
            let end = loop {
                match chars.next().expect("closing quote") {
                    (_, '\\') => match chars.next().expect("escaped char").1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            out.push((label.to_string(), value));
            rest = tail[end + 1..].trim_start_matches(',');
        }
        (name.to_string(), out, value)
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let m = SelfMetrics::default();
        m.report_received(ReportKind::Inventory);
        m.report_received(ReportKind::Inventory);
        m.reports_refused(Refusal::TooLarge, 3);
        m.sink_configured("quiet");
        m.delivered("web\"hook\\1\n");
        m.delivery_failed("web\"hook\\1\n");
        let snapshot = Snapshot {
            store_size_bytes: 4096,
            outbox_pending: BTreeMap::from([("web\"hook\\1\n".to_string(), 2)]),
            hosts: 3,
            hosts_online: 2,
            alerts_firing: BTreeMap::from([("critical", 1)]),
            alerts_pending: 4,
        };
        let text = m.render(&snapshot);
        let mut typed: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split_once(' ').expect("help text").0.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("type");
                assert_eq!(helped.last().map(String::as_str), Some(name), "HELP comes right before TYPE");
                typed.insert(name.to_string(), kind.to_string());
            } else {
                let (name, _, _) = parse_sample(line);
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.get(*f).is_some_and(|k| k == "histogram")))
                    .unwrap_or(&name);
                assert!(typed.contains_key(family), "sample {line:?} before its TYPE line");
            }
        }
        let listed: Vec<&str> = FAMILIES.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(typed.keys().map(String::as_str).collect::<std::collections::BTreeSet<_>>(), listed.iter().copied().collect());

        let samples: Vec<_> = text.lines().filter(|l| !l.starts_with('#')).map(parse_sample).collect();
        let value = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|(n, l, _)| n == name && l.iter().map(|(a, b)| (a.as_str(), b.as_str())).eq(labels.iter().copied()))
                .map(|s| s.2)
                .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{text}"))
        };
        assert_eq!(value("census_reports_received_total", &[("kind", "inventory")]), 2.0);
        assert_eq!(value("census_reports_received_total", &[("kind", "heartbeat")]), 0.0);
        assert_eq!(value("census_reports_refused_total", &[("reason", "too_large")]), 3.0);
        assert_eq!(value("census_notifications_delivered_total", &[("sink", "web\"hook\\1\n")]), 1.0, "escaped and read back");
        assert_eq!(value("census_notifications_failed_total", &[("sink", "quiet")]), 0.0, "a configured sink exists at 0");
        assert_eq!(value("census_outbox_pending", &[("sink", "web\"hook\\1\n")]), 2.0);
        assert_eq!(value("census_outbox_pending", &[("sink", "quiet")]), 0.0);
        assert_eq!((value("census_hosts", &[]), value("census_hosts_online", &[]), value("census_hosts_offline", &[])), (3.0, 2.0, 1.0));
        assert_eq!(value("census_alerts_firing", &[("severity", "critical")]), 1.0);
        assert_eq!(value("census_alerts_firing", &[("severity", "info")]), 0.0);
        assert!(text.contains("census_notifications_delivered_total{sink=\"web\\\"hook\\\\1\\n\"} 1\n"), "{text}");
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_then_inf_sum_and_count() {
        let m = SelfMetrics::default();
        for ms in [0, 3, 3, 40, 7_000] {
            m.ingested(Duration::from_millis(ms));
        }
        let text = m.render(&Snapshot::default());
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("census_ingest_duration_seconds")).collect();
        assert_eq!(lines.len(), LATENCY_BUCKETS.len() + 3, "{lines:#?}");
        assert_eq!(lines[0], "census_ingest_duration_seconds_bucket{le=\"0.001\"} 1");
        assert_eq!(lines[2], "census_ingest_duration_seconds_bucket{le=\"0.005\"} 3");
        assert_eq!(lines[5], "census_ingest_duration_seconds_bucket{le=\"0.05\"} 4");
        assert_eq!(lines[11], "census_ingest_duration_seconds_bucket{le=\"5\"} 4", "7 s is beyond the last bound");
        assert_eq!(lines[12], "census_ingest_duration_seconds_bucket{le=\"+Inf\"} 5");
        assert_eq!(lines[13], "census_ingest_duration_seconds_sum 7.046");
        assert_eq!(lines[14], "census_ingest_duration_seconds_count 5");
        assert!(text.contains("# TYPE census_ingest_duration_seconds histogram\n"));
    }

    #[test]
    fn the_http_api_doc_lists_every_metric_with_its_type() {
        let doc = include_str!("../../docs/http-api.md");
        for (name, kind, _) in FAMILIES {
            let row = format!("| `{name}` | {kind} |");
            assert!(doc.contains(&row), "docs/http-api.md lacks the row starting {row}");
        }
        let documented = doc.lines().filter(|l| l.starts_with("| `census_")).count();
        assert_eq!(documented, FAMILIES.len(), "docs/http-api.md lists a metric the collector does not expose");
    }

    #[test]
    fn values_use_the_formats_prometheus_reads() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.0025), "0.0025");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
