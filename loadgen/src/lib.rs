//! census-loadgen: many simulated agents against one collector, over the
//! real agent API (real CSRs, real mutual TLS, real protobuf), to measure
//! ingest (SPEC §8). One process stands in for thousands of hosts; each
//! keeps its own tonic `Channel` like the real agent, and requests in
//! flight are bounded fleet-wide by `--concurrency`.
//!
//! Phases: enroll the hosts not in `--state` (at most `--concurrency` at a
//! time), send each host's full inventory, then health batches for
//! `--duration`. Health figures cover only that last phase.

pub mod fleet;
pub mod host;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::host::{Host, Plan};
use crate::stats::{Percentiles, Tally};

/// The version simulated agents announce at enrollment.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Command-line arguments.
#[derive(Debug, Clone, Parser)]
#[command(name = "census-loadgen", version, about = "Simulated agents reporting to census-collector, for ingest benchmarks")]
pub struct Args {
    /// Collector agent API, e.g. https://127.0.0.1:7443
    #[arg(long)]
    pub server: String,
    /// The collector's CA certificate (PEM) to pin.
    #[arg(long)]
    pub ca: PathBuf,
    /// Enrollment secret.
    #[arg(long, env = "CENSUS_ENROLLMENT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Name the collector's certificate is checked against.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// Simulated agents.
    #[arg(long)]
    pub agents: usize,
    /// Length of the health phase, e.g. 60s, 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Interval between one host's health batches, e.g. 15s, 500ms.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// Health samples per batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Packages per host, MIN..MAX (this machine's dpkg list, versions varied per host).
    #[arg(long, default_value = "1000..3000", value_parser = parse_range)]
    pub inventory_packages: (u64, u64),
    /// Chance per health batch that an inventory delta goes with it.
    #[arg(long, default_value_t = 0.01)]
    pub delta_chance: f64,
    /// Before the health phase, each host sends this much simulated
    /// history at the agent's defaults (a batch of --batch samples a minute,
    /// an inventory delta an hour), back-dated and as fast as the collector
    /// takes it: for the store's size per host after a day (e.g. 24h).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub backfill: Duration,
    /// Share of hosts that go offline once for a while and come back.
    #[arg(long, default_value_t = 0.1)]
    pub offline_share: f64,
    /// Requests in flight at once across all hosts (also enrollments at once).
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Directory that keeps enrolled identities (and seqs) between runs.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The collector's pid: its RSS and CPU are read from /proc at the end.
    #[arg(long)]
    pub collector_pid: Option<u32>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses `250ms`, `15s`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = t.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 15s"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(n * scale).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses `MIN..MAX` or a single count.
pub fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("{text:?}: expected MIN..MAX, e.g. 1000..3000"));
    match text.split_once("..") {
        Some((a, b)) => Ok((num(a)?, num(b)?)),
        None => num(text).map(|n| (n, n)),
    }
}

impl Args {
    /// Checks what clap cannot: relations between values.
    pub fn validate(&self) -> Result<()> {
        if self.agents == 0 {
            bail!("--agents must be at least 1");
        }
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if self.batch == 0 {
            bail!("--batch must be at least 1 sample");
        }
        if self.health_interval.is_zero() || self.duration.is_zero() {
            bail!("--health-interval and --duration must be longer than zero");
        }
        let (lo, hi) = self.inventory_packages;
        if lo == 0 || lo > hi {
            bail!("--inventory-packages {lo}..{hi}: MIN must be at least 1 and not above MAX");
        }
        for (name, v) in [("--offline-share", self.offline_share), ("--delta-chance", self.delta_chance)] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} {v}: must be between 0 and 1");
            }
        }
        Ok(())
    }
}

/// CPU and memory of a process from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcUsage {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

/// Reads utime+stime (clock ticks of 100 Hz, the Linux USER_HZ) and VmRSS/VmHWM.
pub fn proc_usage(pid: u32) -> Result<ProcUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name, which may hold spaces: it ends at the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let cpu_s = (ticks(14) + ticks(15)) as f64 / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Ok(ProcUsage { cpu_s, rss_bytes: kib("VmRSS:"), peak_rss_bytes: kib("VmHWM:") })
}

/// The load average (1 min) of the machine, for the record.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok())).unwrap_or(0.0)
}

/// Reads this machine's package list once.
fn machine_packages() -> Result<Vec<host::BasePackage>> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${Version}\t${Architecture}\n"])
        .output()
        .context("running dpkg-query -W")?;
    let list = host::parse_dpkg(&String::from_utf8_lossy(&out.stdout));
    if list.is_empty() {
        bail!("dpkg-query -W listed no packages: the package list is taken from this machine's dpkg database");
    }
    Ok(list)
}

/// Runs the whole benchmark and prints its summary.
pub async fn run(args: Args) -> Result<()> {
    args.validate()?;
    let ca_pem = std::fs::read_to_string(&args.ca).with_context(|| format!("reading {}", args.ca.display()))?;
    let target = fleet::Target { url: args.server.clone(), ca_pem, domain: args.domain.clone() };
    let packages = machine_packages()?;
    let collector_before = args.collector_pid.map(proc_usage).transpose()?;

    // Enrollment.
    let known = match &args.state {
        Some(dir) => fleet::load(dir)?,
        None => Vec::new(),
    };
    let t = Instant::now();
    let reused = known.iter().filter(|a| a.index < args.agents).count();
    let agents = fleet::enroll_fleet(&target, &args.secret, args.agents, args.concurrency, known).await?;
    let enroll_s = t.elapsed().as_secs_f64();
    let enrolled = agents.len() - reused;
    if let Some(dir) = &args.state {
        fleet::save(dir, &agents)?;
    }
    eprintln!("enrolled {enrolled} hosts in {enroll_s:.1} s ({reused} reused from --state)");

    let plan = Arc::new(Plan {
        target: target.clone(),
        packages,
        packages_per_host: args.inventory_packages,
        health_interval: args.health_interval,
        samples_per_batch: args.batch,
        delta_chance: args.delta_chance,
        in_flight: Semaphore::new(args.concurrency),
    });

    // Full inventories, every host at once, bounded by the in-flight limit.
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for agent in agents {
        let mut host = Host::new(agent, &target)?;
        let plan = plan.clone();
        set.spawn(async move {
            host.send_inventory(&plan).await;
            host
        });
    }
    let mut hosts = Vec::with_capacity(args.agents);
    while let Some(done) = set.join_next().await {
        hosts.push(done.context("inventory task")?);
    }
    let inventory_s = t.elapsed().as_secs_f64();
    let mut inventory = Tally::default();
    for h in &mut hosts {
        inventory.merge(std::mem::take(&mut h.tally));
    }
    eprintln!("sent {} full inventories in {inventory_s:.1} s", inventory.inventories);

    // Simulated history, every host at once (bounded by the in-flight limit).
    let t = Instant::now();
    let mut backfill = Tally::default();
    if !args.backfill.is_zero() {
        let mut set = tokio::task::JoinSet::new();
        for mut host in hosts {
            let plan = plan.clone();
            let span = args.backfill;
            set.spawn(async move {
                host.send_history(&plan, span).await;
                host
            });
        }
        hosts = Vec::with_capacity(args.agents);
        while let Some(done) = set.join_next().await {
            let mut host = done.context("backfill task")?;
            backfill.merge(std::mem::take(&mut host.tally));
            hosts.push(host);
        }
        eprintln!(
            "sent {} simulated hours of history per host ({} health reports, {} deltas) in {:.1} s",
            args.backfill.as_secs() / 3600,
            backfill.health_reports,
            backfill.deltas,
            t.elapsed().as_secs_f64()
        );
    }
    let backfill_s = t.elapsed().as_secs_f64();

    // Health for --duration. Offline hosts: the first share of the fleet,
    // each out once for a quarter of the run at a random point of the first
    // half.
    let load_before = loadavg();
    let cpu_mid = args.collector_pid.map(proc_usage).transpose()?;
    let start = Instant::now();
    let end = start + args.duration;
    let offline_hosts = (args.agents as f64 * args.offline_share).round() as usize;
    let mut set = tokio::task::JoinSet::new();
    for mut host in hosts {
        let plan = plan.clone();
        let outage = (host.agent.index < offline_hosts).then(|| {
            let mut r = host::Rng::new(host.agent.index as u64 ^ 0x0FF);
            (args.duration.mul_f64(r.unit() / 2.0), args.duration / 4)
        });
        set.spawn(async move {
            host.run_health(plan, start, end, outage).await;
            host
        });
    }
    let mut health = Tally::default();
    let mut agents = Vec::with_capacity(args.agents);
    while let Some(done) = set.join_next().await {
        let mut host = done.context("health task")?;
        health.merge(std::mem::take(&mut host.tally));
        agents.push(host.agent);
    }
    let health_s = start.elapsed().as_secs_f64();
    let load_after = loadavg();
    let collector_after = args.collector_pid.map(proc_usage).transpose()?;
    if let Some(dir) = &args.state {
        agents.sort_by_key(|a| a.index);
        fleet::save(dir, &agents)?;
    }

    let summary = Summary {
        args: &args,
        enrolled,
        reused,
        enroll_s,
        inventory_s,
        inventory,
        backfill_s,
        backfill,
        health_s,
        health,
        load: (load_before, load_after),
        collector: collector_before.zip(cpu_mid).zip(collector_after).map(|((a, b), c)| (a, b, c)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary.json())?);
    } else {
        print!("{}", summary.human());
    }
    Ok(())
}

struct Summary<'a> {
    args: &'a Args,
    enrolled: usize,
    reused: usize,
    enroll_s: f64,
    inventory_s: f64,
    inventory: Tally,
    backfill_s: f64,
    backfill: Tally,
    health_s: f64,
    health: Tally,
    load: (f64, f64),
    /// Collector usage before enrollment, before the health phase, at the end.
    collector: Option<(ProcUsage, ProcUsage, ProcUsage)>,
}

impl Summary<'_> {
    fn json(mut self) -> serde_json::Value {
        let inv = Percentiles::of(&mut self.inventory.inventory_ack_us);
        let ack = Percentiles::of(&mut self.health.health_ack_us);
        let due = Percentiles::of(&mut self.health.health_due_us);
        let mut errors = self.inventory.errors.clone();
        for (k, v) in self.backfill.errors.iter().chain(&self.health.errors) {
            *errors.entry(k.clone()).or_default() += v;
        }
        let offered = self.args.agents as f64 / self.args.health_interval.as_secs_f64();
        serde_json::json!({
            "agents": self.args.agents,
            "enrolled": self.enrolled,
            "reused": self.reused,
            "enroll_s": self.enroll_s,
            "inventory": {
                "acked": self.inventory.inventories,
                "seconds": self.inventory_s,
                "per_s": self.inventory.inventories as f64 / self.inventory_s,
                "ack_latency": inv.json(),
            },
            "backfill": {
                "span_s": self.args.backfill.as_secs(),
                "seconds": self.backfill_s,
                "reports": self.backfill.health_reports,
                "samples": self.backfill.health_samples,
                "deltas": self.backfill.deltas,
            },
            "health": {
                "seconds": self.health_s,
                "offered_reports_per_s": offered,
                "reports": self.health.health_reports,
                "reports_per_s": self.health.health_reports as f64 / self.health_s,
                "samples_per_s": self.health.health_samples as f64 / self.health_s,
                "deltas": self.health.deltas,
                "full_inventories": self.health.inventories,
                "full_requested": self.health.full_requested,
                "ack_latency": ack.json(),
                "due_to_ack_latency": due.json(),
            },
            "errors": errors,
            "loadavg_1m": { "before_health": self.load.0, "after_health": self.load.1 },
            "collector": self.collector.map(|(a, b, c)| serde_json::json!({
                "rss_bytes": c.rss_bytes,
                "peak_rss_bytes": c.peak_rss_bytes,
                "cpu_s_total": c.cpu_s - a.cpu_s,
                "cpu_s_health": c.cpu_s - b.cpu_s,
            })),
        })
    }

    fn human(self) -> String {
        let v = self.json();
        let mut s = String::new();
        let f = |x: &serde_json::Value| x.as_f64().unwrap_or(0.0);
        let pct = |x: &serde_json::Value| {
            format!(
                "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                f(&x["p50_ms"]),
                f(&x["p95_ms"]),
                f(&x["p99_ms"]),
                f(&x["max_ms"])
            )
        };
        let h = &v["health"];
        s += &format!(
            "agents            {} ({} enrolled in {:.1} s, {} reused)\n",
            v["agents"],
            v["enrolled"],
            f(&v["enroll_s"]),
            v["reused"]
        );
        s += &format!(
            "full inventories  {} in {:.1} s ({:.0}/s), ack {}\n",
            v["inventory"]["acked"],
            f(&v["inventory"]["seconds"]),
            f(&v["inventory"]["per_s"]),
            pct(&v["inventory"]["ack_latency"])
        );
        s += &format!(
            "health            {} reports in {:.1} s: {:.0} reports/s ({:.0} samples/s), offered {:.0}/s\n",
            h["reports"],
            f(&h["seconds"]),
            f(&h["reports_per_s"]),
            f(&h["samples_per_s"]),
            f(&h["offered_reports_per_s"])
        );
        s += &format!("health ack        {}\n", pct(&h["ack_latency"]));
        s += &format!("due to ack        {}\n", pct(&h["due_to_ack_latency"]));
        s += &format!(
            "deltas            {} (full inventories re-sent: {}, requested: {})\n",
            h["deltas"], h["full_inventories"], h["full_requested"]
        );
        s += &format!("errors            {}\n", v["errors"]);
        s += &format!(
            "load average 1m   {:.2} before, {:.2} after the health phase\n",
            f(&v["loadavg_1m"]["before_health"]),
            f(&v["loadavg_1m"]["after_health"])
        );
        if let Some(c) = v["collector"].as_object() {
            s += &format!(
                "collector         RSS {:.0} MiB (peak {:.0} MiB), CPU {:.1} s in all, {:.1} s in the health phase\n",
                f(&c["rss_bytes"]) / 1048576.0,
                f(&c["peak_rss_bytes"]) / 1048576.0,
                f(&c["cpu_s_total"]),
                f(&c["cpu_s_health"])
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Args> {
        let base = ["census-loadgen", "--server", "https://127.0.0.1:7443", "--ca", "ca.pem", "--secret", "s", "--agents", "10"];
        let all: Vec<&str> = base.iter().chain(extra).copied().collect();
        let a = Args::try_parse_from(all)?;
        a.validate()?;
        Ok(a)
    }

    #[test]
    fn defaults_are_valid() {
        let a = args(&[]).expect("defaults");
        assert_eq!(a.health_interval, Duration::from_secs(15));
        assert_eq!(a.inventory_packages, (1000, 3000));
    }

    #[test]
    fn refuses_bad_values() {
        assert!(args(&["--agents", "0"]).is_err());
        assert!(args(&["--concurrency", "0"]).is_err());
        assert!(args(&["--offline-share", "1.5"]).is_err());
        assert!(args(&["--inventory-packages", "3000..1000"]).is_err());
        assert!(args(&["--health-interval", "0s"]).is_err());
        assert!(args(&["--duration", "ten"]).is_err());
    }

    #[test]
    fn durations_and_ranges() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_range("10..20"), Ok((10, 20)));
        assert_eq!(parse_range("5"), Ok((5, 5)));
        assert!(parse_range("a..b").is_err());
    }

    #[test]
    fn reads_own_process_usage() {
        let u = proc_usage(std::process::id()).expect("own /proc entry");
        assert!(u.rss_bytes > 0 && u.peak_rss_bytes >= u.rss_bytes);
    }
}
