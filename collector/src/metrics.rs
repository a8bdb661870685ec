//! The metrics domain: named series from health samples, and rollups.
//! Pure: the store keeps raw samples and rollup buckets; this module says
//! what a metric is and how buckets aggregate.
//!
//! Metric names are dotted paths: `cpu`, `load1`, `mem.used_percent`,
//! `fs./var.used_percent`, `net.eth0.rx_bps`, `temp.coretemp/Core 0`, ...
//! (`values_of` lists those present in a sample). Custom metrics, which
//! administrators write into the agent's textfile directory, keep the name
//! the agent sent: `custom.<name>`, or `custom.<name>.<label values>` (see
//! `custom_name_problem` for the rule and docs/custom-metrics.md); the
//! prefix keeps them apart from the collector's own names.
//!
//! Invariants: a bucket's `start` is a multiple of its width (Unix ms), so
//! recomputing a bucket from the same raw samples gives the same bucket
//! (compaction is idempotent and may rerun after late samples arrive).

use census_proto::v1 as pb;

/// Every (metric name, value) in a sample.
pub fn values_of(s: &pb::HealthSample) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut put = |name: String, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            out.push((name, v));
        }
    };
    put("cpu".into(), s.cpu_percent);
    put("load1".into(), s.load1);
    put("load5".into(), s.load5);
    put("load15".into(), s.load15);
    put("mem.used_bytes".into(), s.memory_used_bytes.map(|v| v as f64));
    put("mem.available_bytes".into(), s.memory_available_bytes.map(|v| v as f64));
    put(
        "mem.used_percent".into(),
        s.memory_total_bytes.zip(s.memory_used_bytes).filter(|(t, _)| *t > 0).map(|(t, u)| u as f64 * 100.0 / t as f64),
    );
    put("swap.used_bytes".into(), s.swap_used_bytes.map(|v| v as f64));
    for f in &s.filesystems {
        put(format!("fs.{}.used_percent", f.mount_point), Some(f.used_percent));
        put(format!("fs.{}.inodes_used_percent", f.mount_point), f.inodes_used_percent);
    }
    for d in &s.disks {
        put(format!("disk.{}.read_bps", d.device), Some(d.read_bytes_per_s));
        put(format!("disk.{}.write_bps", d.device), Some(d.write_bytes_per_s));
    }
    for n in &s.network {
        put(format!("net.{}.rx_bps", n.interface), Some(n.rx_bytes_per_s));
        put(format!("net.{}.tx_bps", n.interface), Some(n.tx_bytes_per_s));
        put(format!("net.{}.errors", n.interface), Some((n.rx_errors + n.tx_errors) as f64));
    }
    put("procs".into(), s.process_count.map(f64::from));
    for t in &s.temperatures {
        put(format!("temp.{}", t.sensor), Some(t.celsius));
    }
    put("uptime_s".into(), s.uptime_s);
    put("failed_units".into(), s.failed_units_known.then_some(s.failed_units.len() as f64));
    put("agent.rss_bytes".into(), s.agent_rss_bytes.map(|v| v as f64));
    put("agent.cpu_s".into(), s.agent_cpu_s);
    for c in s.custom.iter().filter(|c| c.name.starts_with(CUSTOM_PREFIX)) {
        put(c.name.clone(), Some(c.value));
    }
    out
}

/// Every custom series name starts with this.
pub const CUSTOM_PREFIX: &str = "custom.";
/// Longest custom series name, bytes (the contract in agent.proto).
pub const MAX_CUSTOM_NAME_BYTES: usize = 200;

/// Why `name` is not an acceptable custom series name, or `None` when it
/// is: `custom.`, then a Prometheus metric name start (`[a-zA-Z_:]`), then
/// only `[a-zA-Z0-9_:./@-]` (label values come after dots), at most
/// `MAX_CUSTOM_NAME_BYTES`. Such names are safe as store keys (no NUL), as
/// command-line arguments and inside rule globs (no `*` or `?`).
pub fn custom_name_problem(name: &str) -> Option<String> {
    let Some(rest) = name.strip_prefix(CUSTOM_PREFIX) else {
        return Some(format!("does not start with {CUSTOM_PREFIX:?}"));
    };
    if name.len() > MAX_CUSTOM_NAME_BYTES {
        return Some(format!("is {} bytes; the limit is {MAX_CUSTOM_NAME_BYTES}", name.len()));
    }
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':') {
        return Some(format!("must continue after {CUSTOM_PREFIX:?} with a letter, '_' or ':'"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '/' | '@' | '-');
    rest.chars().find(|c| !allowed(*c)).map(|c| format!("contains {c:?}; only [a-zA-Z0-9_:./@-] may follow {CUSTOM_PREFIX:?}"))
}

/// The value of one metric in a sample, if present.
pub fn value_of(s: &pb::HealthSample, metric: &str) -> Option<f64> {
    values_of(s).into_iter().find(|(n, _)| n == metric).map(|(_, v)| v)
}

/// Rollup resolutions, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Raw,
    FiveMinutes,
    OneHour,
}

impl Resolution {
    pub fn width_ms(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::FiveMinutes => 5 * 60_000,
            Resolution::OneHour => 3_600_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::FiveMinutes => "5m",
            Resolution::OneHour => "1h",
        }
    }

    pub fn parse(s: &str) -> Option<Resolution> {
        match s {
            "raw" => Some(Resolution::Raw),
            "5m" => Some(Resolution::FiveMinutes),
            "1h" => Some(Resolution::OneHour),
            _ => None,
        }
    }

    /// The finest resolution still kept for data as old as `since_ms` ago.
    pub fn for_age(age_ms: i64, raw_keep_ms: i64, five_min_keep_ms: i64) -> Resolution {
        if age_ms <= raw_keep_ms.min(24 * 3_600_000) {
            Resolution::Raw
        } else if age_ms <= five_min_keep_ms {
            Resolution::FiveMinutes
        } else {
            Resolution::OneHour
        }
    }
}

/// An aggregate of the values that fell in `[start, start + width)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub start_unix_ms: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Bucket {
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }

    fn merge(&mut self, other: &Bucket) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// Start of the bucket of width `width_ms` holding `t`.
pub fn bucket_start(t: i64, width_ms: i64) -> i64 {
    t.div_euclid(width_ms) * width_ms
}

/// Aggregates points `(time, value)` into buckets of `width_ms`, ordered.
pub fn rollup(points: impl IntoIterator<Item = (i64, f64)>, width_ms: i64) -> Vec<Bucket> {
    let mut by_start: std::collections::BTreeMap<i64, Bucket> = std::collections::BTreeMap::new();
    for (t, v) in points {
        let start = bucket_start(t, width_ms);
        let one = Bucket { start_unix_ms: start, count: 1, sum: v, min: v, max: v };
        by_start.entry(start).and_modify(|b| b.merge(&one)).or_insert(one);
    }
    by_start.into_values().collect()
}

/// Aggregates finer buckets into coarser ones of `width_ms`.
pub fn rollup_buckets(buckets: impl IntoIterator<Item = Bucket>, width_ms: i64) -> Vec<Bucket> {
    let mut by_start: std::collections::BTreeMap<i64, Bucket> = std::collections::BTreeMap::new();
    for b in buckets {
        let start = bucket_start(b.start_unix_ms, width_ms);
        let b = Bucket { start_unix_ms: start, ..b };
        by_start.entry(start).and_modify(|x| x.merge(&b)).or_insert(b);
    }
    by_start.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        let s = pb::HealthSample {
            cpu_percent: Some(12.5),
            memory_total_bytes: Some(200),
            memory_used_bytes: Some(50),
            filesystems: vec![pb::FilesystemUsage { mount_point: "/".into(), used_percent: 91.0, ..Default::default() }],
            failed_units_known: true,
            ..Default::default()
        };
        assert_eq!(value_of(&s, "cpu"), Some(12.5));
        assert_eq!(value_of(&s, "mem.used_percent"), Some(25.0));
        assert_eq!(value_of(&s, "fs./.used_percent"), Some(91.0));
        assert_eq!(value_of(&s, "failed_units"), Some(0.0));
        assert_eq!(value_of(&s, "load1"), None);
    }

    #[test]
    fn custom_series_keep_the_agents_names() {
        let custom = |name: &str, value: f64| pb::CustomMetric { name: name.into(), value };
        let s = pb::HealthSample {
            cpu_percent: Some(1.0),
            custom: vec![custom("custom.test_fill", 95.0), custom("custom.queue_depth.mail", 7.0), custom("cpu", 99.0)],
            ..Default::default()
        };
        assert_eq!(value_of(&s, "custom.test_fill"), Some(95.0));
        assert_eq!(value_of(&s, "custom.queue_depth.mail"), Some(7.0));
        assert_eq!(value_of(&s, "cpu"), Some(1.0), "a custom series never shadows the collector's own");
        let names: Vec<String> = values_of(&s).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["cpu", "custom.test_fill", "custom.queue_depth.mail"]);
    }

    #[test]
    fn custom_name_rule() {
        for good in ["custom.a", "custom._x", "custom.:x", "custom.q.mail", "custom.d.dm-0./srv/data_2", "custom.u.getty@tty1.service"] {
            assert_eq!(custom_name_problem(good), None, "{good}");
        }
        let longest = format!("custom.{}", "a".repeat(MAX_CUSTOM_NAME_BYTES - CUSTOM_PREFIX.len()));
        assert_eq!(custom_name_problem(&longest), None);
        for (bad, why) in [
            ("cpu", "does not start with \"custom.\""),
            ("custom.", "must continue after"),
            ("custom.9a", "must continue after"),
            ("custom.a b", "contains ' '"),
            ("custom.a*", "contains '*'"),
            ("custom.a\0", "contains '\\0'"),
            (&format!("{longest}a"), "is 201 bytes; the limit is 200"),
        ] {
            let problem = custom_name_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad:?}: {problem:?} lacks {why:?}");
        }
    }

    #[test]
    fn rollups_are_aligned_and_compose() {
        let five = Resolution::FiveMinutes.width_ms();
        let points = [(0, 1.0), (60_000, 3.0), (five, 10.0), (five + 1, 20.0), (3_600_000 + 5, 7.0)];
        let b = rollup(points, five);
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].start_unix_ms, b[0].count, b[0].mean(), b[0].min, b[0].max), (0, 2, 2.0, 1.0, 3.0));
        let hour = rollup_buckets(b, Resolution::OneHour.width_ms());
        assert_eq!(hour.len(), 2);
        assert_eq!((hour[0].count, hour[0].sum, hour[0].max), (4, 34.0, 20.0));
        assert_eq!(hour, rollup(points, Resolution::OneHour.width_ms()), "5m then 1h equals 1h directly");
        assert_eq!(bucket_start(-1, five), -five);
    }
}
