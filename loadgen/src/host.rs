//! One simulated host's traffic, shaped like the real agent's (agent/src/run.rs):
//! its own tonic `Channel` (one HTTP/2 connection, mutual TLS), a full
//! inventory first, then one `HealthBatch` per health interval (jittered),
//! now and then an inventory delta, and for some hosts an outage during
//! which reports pile up in a spool and are sent together on return over a
//! new connection. A failed request keeps its reports for the next tick,
//! like the agent's spool; the spool is bounded by the collector's
//! `max_reports_per_request` (oldest dropped).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tonic::transport::{Channel, Identity};

use crate::fleet::{SimAgent, Target};
use crate::stats::{Tally, micros};

/// Reports per request and spool bound: the collector's default
/// `limits.max_reports_per_request`.
const MAX_REPORTS: usize = 256;

/// A package of this machine's dpkg database: name, version, architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePackage {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// Parses `dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n'`.
pub fn parse_dpkg(text: &str) -> Vec<BasePackage> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let (name, version, arch) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            (!name.is_empty() && !version.is_empty()).then(|| BasePackage { name: name.into(), version: version.into(), arch: arch.into() })
        })
        .collect()
}

/// A small deterministic generator (splitmix64): jitter and fake metrics
/// need spread, not cryptographic quality, and a seed per host makes runs
/// repeatable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The whole-fleet settings every host follows.
#[derive(Debug)]
pub struct Plan {
    pub target: Target,
    pub packages: Vec<BasePackage>,
    /// Packages per host, inclusive range.
    pub packages_per_host: (u64, u64),
    pub health_interval: Duration,
    pub samples_per_batch: usize,
    /// Chance per health tick that an inventory delta goes with the batch.
    pub delta_chance: f64,
    /// Bound on requests in flight across the fleet.
    pub in_flight: Semaphore,
}

/// A host between requests: its identity, seqs and what it has not sent yet.
pub struct Host {
    pub agent: SimAgent,
    channel: Channel,
    rng: Rng,
    /// Packages whose version this host has bumped (index into the host's
    /// list, times bumped): enough to rebuild the inventory and its deltas.
    bumps: Vec<(usize, u32)>,
    /// Seq of the last inventory report (full or delta) created.
    inventory_seq: u64,
    full_wanted: bool,
    spool: VecDeque<pb::Report>,
    pub tally: Tally,
}

impl Host {
    pub fn new(agent: SimAgent, target: &Target) -> anyhow::Result<Host> {
        let channel = connect_lazy(&agent, target)?;
        let rng = Rng::new(agent.index as u64);
        Ok(Host {
            agent,
            channel,
            rng,
            bumps: Vec::new(),
            inventory_seq: 0,
            full_wanted: true,
            spool: VecDeque::new(),
            tally: Tally::default(),
        })
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.agent.next_seq;
        self.agent.next_seq += 1;
        seq
    }

    fn version(base: &BasePackage, index: usize, host: usize, bumped: u32) -> String {
        // About one package in eight differs per host, as on a real fleet
        // that is not perfectly in step.
        let mut v = base.version.clone();
        if (index * 31 + host * 7) % 8 == 0 {
            v.push_str(&format!("+h{}", host % 5));
        }
        if bumped > 0 {
            v.push_str(&format!("+u{bumped}"));
        }
        v
    }

    /// This host's package list: the first k packages of the machine's
    /// list, extended with renamed copies when k exceeds it.
    fn packages(&self, plan: &Plan) -> Vec<pb::Package> {
        let mut rng = Rng::new(self.agent.index as u64 ^ 0xABCD);
        let count = rng.range(plan.packages_per_host.0, plan.packages_per_host.1) as usize;
        let base = &plan.packages;
        let mut list: Vec<pb::Package> = (0..count)
            .map(|i| {
                let b = &base[i % base.len()];
                let name = if i < base.len() { b.name.clone() } else { format!("{}-lg{}", b.name, i / base.len()) };
                let bumped = self.bumps.iter().find(|(j, _)| *j == i).map_or(0, |(_, n)| *n);
                self.package(name, Self::version(b, i, self.agent.index, bumped), b)
            })
            .collect();
        list.sort_by(|a, b| (&a.name, &a.arch, &a.version).cmp(&(&b.name, &b.arch, &b.version)));
        list
    }

    fn package(&self, name: String, version: String, b: &BasePackage) -> pb::Package {
        pb::Package {
            name,
            version,
            arch: Some(b.arch.clone()),
            vendor: None,
            source: "dpkg".into(),
            install_time_unix_ms: Some(1_700_000_000_000),
        }
    }

    fn full_inventory(&mut self, plan: &Plan) -> pb::Report {
        let inventory = pb::Inventory {
            collected_at_unix_ms: now_ms(),
            identity: Some(pb::HostIdentity {
                host_uuid: format!("loadgen-{}", self.agent.hostname),
                hostname: self.agent.hostname.clone(),
                host_uuid_source: "machine-id".into(),
                ..Default::default()
            }),
            os: Some(pb::OsSection {
                name: "Debian GNU/Linux".into(),
                version: Some("12 (bookworm)".into()),
                version_id: Some("12".into()),
                ..Default::default()
            }),
            software: Some(pb::SoftwareSection { packages: self.packages(plan) }),
            ..Default::default()
        };
        let seq = self.next_seq();
        self.inventory_seq = seq;
        self.full_wanted = false;
        pb::Report { seq, created_at_unix_ms: now_ms(), body: Some(pb::report::Body::Inventory(inventory)) }
    }

    /// A delta that upgrades one package.
    fn delta(&mut self, plan: &Plan) -> pb::Report {
        let count = self.packages(plan).len();
        let index = self.rng.range(0, count as u64 - 1) as usize;
        let b = &plan.packages[index % plan.packages.len()];
        let name = if index < plan.packages.len() { b.name.clone() } else { format!("{}-lg{}", b.name, index / plan.packages.len()) };
        let before = self.bumps.iter().find(|(j, _)| *j == index).map_or(0, |(_, n)| *n);
        match self.bumps.iter_mut().find(|(j, _)| *j == index) {
            Some((_, n)) => *n += 1,
            None => self.bumps.push((index, 1)),
        }
        let removed = self.package(name.clone(), Self::version(b, index, self.agent.index, before), b);
        let added = self.package(name, Self::version(b, index, self.agent.index, before + 1), b);
        let seq = self.next_seq();
        let base_seq = std::mem::replace(&mut self.inventory_seq, seq);
        pb::Report {
            seq,
            created_at_unix_ms: now_ms(),
            body: Some(pb::report::Body::InventoryDelta(pb::InventoryDelta {
                base_seq,
                collected_at_unix_ms: now_ms(),
                packages_added: vec![added],
                packages_removed: vec![removed],
                ..Default::default()
            })),
        }
    }

    fn health_batch(&mut self, samples: usize, interval: Duration) -> pb::Report {
        self.health_batch_at(now_ms(), samples, interval)
    }

    /// A batch of `samples` spread over the `interval` that ends at `end_ms`.
    fn health_batch_at(&mut self, end_ms: i64, samples: usize, interval: Duration) -> pb::Report {
        let step = i64::try_from(interval.as_millis() / samples.max(1) as u128).unwrap_or(0);
        let samples = (0..samples).map(|k| self.sample(end_ms - step * (samples - 1 - k) as i64)).collect();
        let seq = self.next_seq();
        pb::Report {
            seq,
            created_at_unix_ms: end_ms,
            body: Some(pb::report::Body::Health(pb::HealthBatch { samples, ..Default::default() })),
        }
    }

    /// `span` of back-dated history at the agent's defaults: a health
    /// batch a minute and an inventory delta an hour, oldest first, sent
    /// in full requests as an agent drains its spool. Stops at the first
    /// failed request (counted in the tally).
    pub async fn send_history(&mut self, plan: &Plan, span: Duration) {
        const BATCH_EVERY: Duration = Duration::from_secs(60);
        let batches = span.as_secs() / BATCH_EVERY.as_secs();
        let start = now_ms() - i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
        for minute in 1..=batches {
            let end = start + i64::try_from(minute * 60_000).unwrap_or(i64::MAX);
            let report = self.health_batch_at(end, plan.samples_per_batch, BATCH_EVERY);
            self.spool.push_back(report);
            if minute % 60 == 0 {
                let report = self.delta(plan);
                self.spool.push_back(report);
            }
            if self.spool.len() >= MAX_REPORTS && self.flush(plan).await.is_none() {
                return;
            }
        }
        while !self.spool.is_empty() {
            if self.flush(plan).await.is_none() {
                return;
            }
        }
    }

    /// A sample with the metrics a Linux server usually reports.
    fn sample(&mut self, taken_at: i64) -> pb::HealthSample {
        let r = &mut self.rng;
        let gib = 1u64 << 30;
        let total = 16 * gib;
        let available = r.range(2 * gib, 12 * gib);
        let procs = [("postgres", 1201), ("nginx", 880), ("java", 2310), ("sshd", 612), ("census-agent", 455)];
        pb::HealthSample {
            taken_at_unix_ms: taken_at,
            cpu_percent: Some(r.unit() * 100.0),
            load1: Some(r.unit() * 4.0),
            load5: Some(r.unit() * 3.0),
            load15: Some(r.unit() * 2.0),
            memory_total_bytes: Some(total),
            memory_available_bytes: Some(available),
            memory_used_bytes: Some(total - available),
            swap_total_bytes: Some(2 * gib),
            swap_used_bytes: Some(r.range(0, gib)),
            filesystems: ["/", "/var", "/home"]
                .iter()
                .map(|m| pb::FilesystemUsage {
                    mount_point: (*m).into(),
                    total_bytes: 100 * gib,
                    available_bytes: r.range(10 * gib, 90 * gib),
                    used_percent: r.unit() * 100.0,
                    inodes_used_percent: Some(r.unit() * 30.0),
                })
                .collect(),
            disks: vec![pb::DiskRate {
                device: "sda".into(),
                read_bytes_per_s: r.unit() * 1e6,
                write_bytes_per_s: r.unit() * 1e6,
                reads_per_s: r.unit() * 100.0,
                writes_per_s: r.unit() * 100.0,
            }],
            network: vec![pb::NetRate {
                interface: "eth0".into(),
                rx_bytes_per_s: r.unit() * 1e6,
                tx_bytes_per_s: r.unit() * 1e6,
                ..Default::default()
            }],
            process_count: Some(r.range(100, 400) as u32),
            top_by_cpu: procs
                .iter()
                .map(|(n, pid)| pb::ProcessCpu { pid: *pid, name: (*n).into(), cpu_percent: r.unit() * 50.0 })
                .collect(),
            top_by_memory: procs
                .iter()
                .map(|(n, pid)| pb::ProcessMemory { pid: *pid, name: (*n).into(), rss_bytes: r.range(1 << 20, gib) })
                .collect(),
            uptime_s: Some(r.range(3600, 10_000_000) as f64),
            failed_units_known: true,
            agent_rss_bytes: Some(r.range(4 << 20, 6 << 20)),
            agent_cpu_s: Some(r.unit() * 100.0),
            ..Default::default()
        }
    }

    /// Sends the spool (oldest first, at most `MAX_REPORTS`), holding an
    /// in-flight slot. Returns the ack latency, or None on failure (the
    /// reports stay spooled).
    async fn flush(&mut self, plan: &Plan) -> Option<Duration> {
        if self.spool.is_empty() {
            return Some(Duration::ZERO);
        }
        let reports: Vec<pb::Report> = self.spool.iter().take(MAX_REPORTS).cloned().collect();
        let _slot = plan.in_flight.acquire().await.expect("the in-flight semaphore is never closed");
        let sent = Instant::now();
        let request = pb::ReportRequest { agent_id: self.agent.agent_id.clone(), reports };
        let result = AgentServiceClient::new(self.channel.clone()).report(request).await;
        let took = sent.elapsed();
        match result {
            Ok(response) => {
                let response = response.into_inner();
                while self.spool.front().is_some_and(|r| r.seq <= response.acked_through) {
                    let report = self.spool.pop_front().expect("front was just checked");
                    match report.body {
                        Some(pb::report::Body::Health(b)) => {
                            self.tally.health_reports += 1;
                            self.tally.health_samples += b.samples.len() as u64;
                        }
                        Some(pb::report::Body::Inventory(_)) => self.tally.inventories += 1,
                        Some(pb::report::Body::InventoryDelta(_)) => self.tally.deltas += 1,
                        _ => {}
                    }
                }
                if response.full_inventory_requested {
                    self.tally.full_requested += 1;
                    self.full_wanted = true;
                }
                Some(took)
            }
            Err(status) => {
                self.tally.error(status.code());
                None
            }
        }
    }

    fn spool(&mut self, report: pb::Report) {
        if self.spool.len() >= MAX_REPORTS {
            self.spool.pop_front();
        }
        self.spool.push_back(report);
    }

    /// Sends the first full inventory. Returns whether it was acknowledged.
    pub async fn send_inventory(&mut self, plan: &Plan) -> bool {
        let report = self.full_inventory(plan);
        self.spool(report);
        match self.flush(plan).await {
            Some(took) => {
                self.tally.inventory_ack_us.push(micros(took));
                true
            }
            None => false,
        }
    }

    /// Health batches until `end`, starting at a random point of the first
    /// interval; offline from `outage.0` for `outage.1` if given.
    pub async fn run_health(&mut self, plan: Arc<Plan>, start: Instant, end: Instant, outage: Option<(Duration, Duration)>) {
        let interval = plan.health_interval;
        let mut due = start + interval.mul_f64(self.rng.unit());
        let mut was_offline = false;
        // Stop at `end` even when behind: a saturated collector must not
        // stretch the run by replaying every missed tick.
        while due < end && Instant::now() < end {
            tokio::time::sleep_until(due).await;
            let offline = outage.is_some_and(|(from, len)| due >= start + from && due < start + from + len);
            if self.full_wanted {
                let report = self.full_inventory(&plan);
                self.spool(report);
            }
            let report = self.health_batch(plan.samples_per_batch, interval);
            self.spool(report);
            if self.rng.unit() < plan.delta_chance {
                let report = self.delta(&plan);
                self.spool(report);
            }
            if offline {
                was_offline = true;
            } else {
                if was_offline {
                    // Back from the outage: a new connection, as after a
                    // network loss or a reboot.
                    if let Ok(channel) = connect_lazy(&self.agent, &plan.target) {
                        self.channel = channel;
                    }
                    was_offline = false;
                }
                if let Some(took) = self.flush(&plan).await {
                    self.tally.health_ack_us.push(micros(took));
                    self.tally.health_due_us.push(micros(due.elapsed()));
                }
            }
            // Jitter of ±5 % per interval, so hosts drift as real ones do.
            due += interval.mul_f64(0.95 + 0.1 * self.rng.unit());
        }
    }
}

fn connect_lazy(agent: &SimAgent, target: &Target) -> anyhow::Result<Channel> {
    let identity = Identity::from_pem(&agent.cert_pem, &agent.key_pem);
    Ok(target.endpoint(Some(identity))?.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dpkg_query_lines() {
        let text = "bash\t5.2.15-2+b7\tamd64\nbroken-line\ntzdata\t2024a-0+deb12u1\tall\n";
        let list = parse_dpkg(text);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], BasePackage { name: "bash".into(), version: "5.2.15-2+b7".into(), arch: "amd64".into() });
        assert_eq!(list[1].arch, "all");
    }

    #[test]
    fn rng_range_stays_inside() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let v = r.range(3, 5);
            assert!((3..=5).contains(&v));
            assert!((0.0..1.0).contains(&r.unit()));
        }
    }
}
