//! Fleet-scale query benchmark (SPEC §8: 100,000 hosts stored, host query
//! p99 < 50 ms, fleet-wide software query < 200 ms); driven by
//! `bench/query.sh`, see docs/BENCHMARKS.md.
//!
//! `fill` writes generated hosts straight into a stopped collector's store
//! through the collector library (enrollment records, then one full
//! inventory each through `Store::put_reports`, the ingest path), because
//! enrolling 100,000 hosts over TLS would measure CSR signing, not queries.
//! Inventories carry 1,000-3,000 packages taken from this machine's
//! `dpkg-query -W` list with versions varied per host, as census-loadgen
//! does, plus an `openssl` package in one of four versions, and a spread of
//! OS, memory sizes and last-seen times so that filters select part of the
//! fleet.
//!
//! `alerts` times one alert evaluation round on a stopped collector's
//! store, in this process: `build_fleet` (host summaries and the software
//! index) against `build_fleet_reference` (every full inventory decoded),
//! each followed by the engine's `evaluate`, with the default rules plus
//! four package rules; CPU time of the evaluating thread per round, and
//! whether both gave the same alerts. It first gives every host one recent
//! health sample (so metric rules have something to read).
//!
//! `query` measures a *running* collector through its admin API (gRPC over
//! TLS with a bearer token, one connection, as `census` uses it): each
//! query `--runs` times after one unmeasured warm-up, p50/p99 in ms,
//! printed as JSON.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use census_collector::cli::Target;
use census_collector::store::sled::SledStore;
use census_collector::store::{NewAgent, Store};
use census_proto::v1 as pb;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Fill a collector store with generated hosts, or time host and software queries")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes generated hosts into the store of a stopped collector.
    Fill {
        /// The collector's data directory (after `census-collector init`).
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        hosts: u64,
        /// Packages per host, MIN..MAX.
        #[arg(long, default_value = "1000..3000")]
        packages: String,
        /// Writer threads (concurrent writers share flushes).
        #[arg(long, default_value_t = 4)]
        threads: u64,
    },
    /// Times alert evaluation rounds on a stopped collector's store.
    Alerts {
        #[arg(long)]
        data_dir: PathBuf,
        /// Rounds timed per path (after each path's first, cold round).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Time `build_fleet` only (no reference rounds), e.g. under a profiler.
        #[arg(long)]
        skip_reference: bool,
    },
    /// Times queries against a running collector's admin API.
    Query {
        /// Admin API, e.g. https://127.0.0.1:7444
        #[arg(long)]
        server: String,
        #[arg(long)]
        ca: PathBuf,
        #[arg(long, env = "CENSUS_TOKEN", hide_env_values = true)]
        token: String,
        #[arg(long, default_value_t = 50)]
        runs: usize,
    },
}

fn main() -> Result<()> {
    match Args::parse().command {
        Command::Fill { data_dir, hosts, packages, threads } => fill(&data_dir, hosts, parse_range(&packages)?, threads.max(1)),
        Command::Alerts { data_dir, rounds, skip_reference } => alerts(&data_dir, rounds.max(1), skip_reference),
        Command::Query { server, ca, token, runs } => {
            if runs == 0 {
                bail!("--runs must be at least 1");
            }
            let target = Target { server, token: census_collector::secrets::Secret::new(token), ca, tls_name: None };
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(query(target, runs))
        }
    }
}

fn parse_range(text: &str) -> Result<(u64, u64)> {
    let (lo, hi) = text.split_once("..").context("--packages is MIN..MAX")?;
    let (lo, hi): (u64, u64) = (lo.parse()?, hi.parse()?);
    if lo == 0 || lo > hi || hi > 100_000 {
        bail!("--packages {text}: need 1 <= MIN <= MAX <= 100000");
    }
    Ok((lo, hi))
}

/// splitmix64: spread, not cryptography; a seed per host keeps runs repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

struct Base {
    name: String,
    version: String,
    arch: String,
}

fn machine_packages() -> Result<Vec<Base>> {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${Version}\t${Architecture}\n"])
        .output()
        .context("running dpkg-query -W")?;
    let list: Vec<Base> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, version, arch) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            (!name.is_empty() && !version.is_empty() && name != "openssl").then(|| Base {
                name: name.into(),
                version: version.into(),
                arch: arch.into(),
            })
        })
        .collect();
    if list.is_empty() {
        bail!("dpkg-query -W listed no packages: the package list is taken from this machine's dpkg database");
    }
    Ok(list)
}

const OPENSSL: [&str; 4] = ["3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "3.0.14-1~deb12u2", "3.0.15-1~deb12u1"];
const OSES: [(&str, &str, &str); 4] =
    [("Ubuntu", "ubuntu", "22.04"), ("Ubuntu", "ubuntu", "24.04"), ("Debian GNU/Linux", "debian", "12"), ("Rocky Linux", "rocky", "9.4")];

fn inventory(i: u64, base: &[Base], packages: (u64, u64), collected_at: i64) -> pb::Inventory {
    let mut rng = Rng(i ^ 0x5EED);
    let count = rng.range(packages.0, packages.1) as usize;
    let mut list: Vec<pb::Package> = (0..count)
        .map(|k| {
            let b = &base[k % base.len()];
            let name = if k < base.len() { b.name.clone() } else { format!("{}-lg{}", b.name, k / base.len()) };
            // About one package in eight differs per host.
            let version = if (k as u64 * 31 + i * 7) % 8 == 0 { format!("{}+h{}", b.version, i % 5) } else { b.version.clone() };
            pb::Package {
                name,
                version,
                arch: Some(b.arch.clone()),
                vendor: None,
                source: "dpkg".into(),
                install_time_unix_ms: Some(1_700_000_000_000),
            }
        })
        .collect();
    list.push(pb::Package {
        name: "openssl".into(),
        version: OPENSSL[(rng.next() % 4) as usize].into(),
        arch: Some("amd64".into()),
        vendor: None,
        source: "dpkg".into(),
        install_time_unix_ms: Some(1_700_000_000_000),
    });
    let (os_name, os_id, os_version) = OSES[(rng.next() % 4) as usize];
    pb::Inventory {
        collected_at_unix_ms: collected_at,
        identity: Some(pb::HostIdentity {
            host_uuid: format!("bench-{i}"),
            hostname: hostname(i),
            host_uuid_source: "machine-id".into(),
            ..Default::default()
        }),
        os: Some(pb::OsSection {
            name: os_name.into(),
            id: Some(os_id.into()),
            version_id: Some(os_version.into()),
            version: Some(os_version.into()),
            kernel: "6.1.0-18-amd64".into(),
            arch: "x86_64".into(),
            family: "linux".into(),
            ..Default::default()
        }),
        cpu: Some(pb::CpuSection { model: "Xeon".into(), logical_cores: 1 << rng.range(1, 5), ..Default::default() }),
        memory: Some(pb::MemorySection { total_bytes: (1u64 << 30) << rng.range(1, 6), ..Default::default() }),
        software: Some(pb::SoftwareSection { packages: list }),
        ..Default::default()
    }
}

fn hostname(i: u64) -> String {
    format!("host-{i:06}")
}

fn fill(data_dir: &std::path::Path, hosts: u64, packages: (u64, u64), threads: u64) -> Result<()> {
    let base = machine_packages()?;
    let store = SledStore::open(&SledStore::path_in(data_dir)).context("opening the store (is the collector stopped?)")?;
    let now = census_collector::clock::now_ms();
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, base) = (&store, &base);
                scope.spawn(move || -> Result<()> {
                    for i in (t..hosts).step_by(threads as usize) {
                        let mut fingerprint = [0u8; 32];
                        fingerprint[..8].copy_from_slice(&i.to_be_bytes());
                        fingerprint[8] = 0xBE;
                        let agent_id = format!("{i:032x}");
                        store.enroll_agent(NewAgent {
                            agent_id: agent_id.clone(),
                            host_uuid: format!("bench-{i}"),
                            hostname: hostname(i),
                            agent_version: "0.1.0".into(),
                            cert_fingerprint: fingerprint,
                            cert_not_after_unix_ms: now + 86_400_000 * 365,
                            enrolled_at_unix_ms: now,
                            secret_hash: [0; 32],
                        })?;
                        // Last seen spread over the past three hours.
                        let seen = now - (Rng(i).next() % (3 * 3_600_000)) as i64;
                        let report = pb::Report {
                            seq: 1,
                            created_at_unix_ms: seen,
                            body: Some(pb::report::Body::Inventory(inventory(i, base, packages, seen))),
                        };
                        store.put_reports(&agent_id, &[report], seen)?;
                        if t == 0 && i % (10_000 * threads) == 0 {
                            eprintln!("{i} hosts written, {:.0} s", started.elapsed().as_secs_f64());
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "hosts": hosts,
            "seconds": elapsed,
            "hosts_per_s": hosts as f64 / elapsed,
            "bytes_on_disk": store.size_on_disk()?,
        })
    );
    Ok(())
}

/// Nearest-rank percentile of sorted durations, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1000.0
}

async fn query(target: Target, runs: usize) -> Result<()> {
    // tonic's default 4 MiB message limit, as `census` has: ListSoftware
    // pages must fit it.
    let mut client = census_collector::cli::connect::admin_client(&target).await?;
    let hosts = |filter: &str, sort: &str, page_size: u32| pb::ListHostsRequest {
        page_size,
        filter: filter.into(),
        sort: sort.into(),
        ..Default::default()
    };
    let host_queries = [
        ("os and memory", hosts(r#"os.name = "Ubuntu" and memory.total < 8GiB"#, "", 100)),
        ("software version", hosts(r#"software("openssl") < "3.0.13""#, "", 100)),
        ("last seen", hosts("last_seen > 1h ago", "", 100)),
        ("sort + page", hosts("", "memory.total", 50)),
        ("no filter, first page", hosts("", "", 100)),
        // Worst cases without a sort: nothing matches, so every host is
        // tested before the (empty) page is known.
        ("no match", hosts(r#"os.name = "Windows""#, "", 100)),
        ("software, no match", hosts(r#"software("openssl") < "1.0""#, "", 100)),
    ];
    let mut results = serde_json::Map::new();
    for (name, req) in host_queries {
        let mut times = Vec::with_capacity(runs);
        let mut matched = 0;
        for run in 0..=runs {
            let t0 = Instant::now();
            let response = client.list_hosts(req.clone()).await.with_context(|| format!("query {name:?}"))?.into_inner();
            if run > 0 {
                times.push(t0.elapsed());
            }
            matched = response.hosts.len();
        }
        times.sort();
        results.insert(
            name.into(),
            serde_json::json!({"filter": req.filter, "sort": req.sort, "page_size": req.page_size, "returned": matched,
                "p50_ms": percentile(&times, 50.0), "p99_ms": percentile(&times, 99.0)}),
        );
    }
    // The first page (what a dashboard shows: every version with its
    // count, the first hosts), then every page as `census software` reads.
    for (label, all_pages) in [("software openssl, first page", false), ("software openssl, all pages", true)] {
        let mut times = Vec::with_capacity(runs);
        let (mut versions, mut hosts) = (0, 0);
        for run in 0..=runs {
            let t0 = Instant::now();
            let (mut token, mut listed) = (String::new(), 0);
            loop {
                let req = pb::ListSoftwareRequest { name: "openssl".into(), page_token: token, ..Default::default() };
                let response = client.list_software(req).await.with_context(|| label.to_string())?.into_inner();
                versions = response.versions.len();
                listed += response.versions.iter().map(|v| v.hosts.len()).sum::<usize>();
                token = response.next_page_token;
                if !all_pages || token.is_empty() {
                    break;
                }
            }
            if run > 0 {
                times.push(t0.elapsed());
            }
            hosts = listed;
        }
        times.sort();
        results.insert(
            label.into(),
            serde_json::json!({"versions": versions, "hosts": hosts,
                "p50_ms": percentile(&times, 50.0), "p99_ms": percentile(&times, 99.0)}),
        );
    }
    println!("{}", serde_json::Value::Object(results));
    Ok(())
}

/// Package rules beside the defaults: an exact name on no host, a glob, a
/// version minimum on a package every host has, a glob with no prefix.
const PACKAGE_RULES: &str = r#"
[[rule]]
name = "edr-missing"
when = { kind = "software_missing", package = "falcon-sensor" }
[[rule]]
name = "no-telnet"
when = { kind = "software_forbidden", package = "telnet*" }
[[rule]]
name = "openssl-old"
when = { kind = "version_below", package = "openssl", minimum = "3.0.13", source = "dpkg" }
[[rule]]
name = "no-dev-tools"
when = { kind = "software_forbidden", package = "*-dev-lg9" }
"#;

/// CPU time this thread has run, from the scheduler's own accounting
/// (nanoseconds; `/proc/thread-self/schedstat`, first field).
fn thread_cpu() -> Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").context("reading /proc/thread-self/schedstat")?;
    let ns: u64 = text.split_whitespace().next().context("empty schedstat")?.parse()?;
    Ok(Duration::from_nanos(ns))
}

/// Runs `f` and returns its result with (CPU, wall) time.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration, Duration)> {
    let (cpu0, wall0) = (thread_cpu()?, Instant::now());
    let out = f()?;
    Ok((out, thread_cpu()? - cpu0, wall0.elapsed()))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

fn alerts(data_dir: &std::path::Path, rounds: usize, skip_reference: bool) -> Result<()> {
    use census_collector::alert::{AlertBook, RuleSet, evaluate};
    use census_collector::alerting::{build_fleet, build_fleet_reference};

    let store = SledStore::open(&SledStore::path_in(data_dir)).context("opening the store (is the collector stopped?)")?;
    let now = census_collector::clock::now_ms();
    // One recent sample per host, a realistic one (three filesystems, top
    // processes, ...), through the ingest path.
    let agents = store.agents()?;
    for a in &agents {
        let sample = pb::HealthSample {
            taken_at_unix_ms: now - 5_000,
            cpu_percent: Some(12.5),
            load1: Some(0.4),
            load5: Some(0.3),
            load15: Some(0.2),
            memory_total_bytes: Some(8 << 30),
            memory_available_bytes: Some(3 << 30),
            memory_used_bytes: Some(5 << 30),
            filesystems: ["/", "/var", "/home"]
                .iter()
                .map(|m| pb::FilesystemUsage {
                    mount_point: m.to_string(),
                    total_bytes: 100 << 30,
                    available_bytes: 40 << 30,
                    used_percent: 60.0,
                    inodes_used_percent: Some(10.0),
                })
                .collect(),
            top_by_cpu: (0..5).map(|k| pb::ProcessCpu { pid: 100 + k, name: format!("proc{k}"), cpu_percent: 3.0 }).collect(),
            top_by_memory: (0..5).map(|k| pb::ProcessMemory { pid: 200 + k, name: format!("proc{k}"), rss_bytes: 50 << 20 }).collect(),
            failed_units_known: true,
            ..Default::default()
        };
        let report = pb::Report {
            seq: a.last_seq + 1,
            created_at_unix_ms: now,
            body: Some(pb::report::Body::Health(pb::HealthBatch { samples: vec![sample], ..Default::default() })),
        };
        store.put_reports(&a.agent_id, &[report], now)?;
    }
    let mut rules = RuleSet::defaults();
    rules.rules.extend(RuleSet::from_toml(PACKAGE_RULES)?.rules);
    let heartbeat = Duration::from_secs(60);
    let lookback = Duration::ZERO;

    // The health lookups alone: one sled range read per host.
    let (_, health_cpu, _) = timed(|| {
        for a in &agents {
            store.latest_health_sample(&a.agent_id, now + 60_000)?;
        }
        Ok(())
    })?;

    let mut report = serde_json::Map::new();
    let mut decisions = Vec::new();
    let paths = [("reference (full inventories)", false), ("build_fleet (summaries + software index)", true)];
    for (label, fast) in paths.into_iter().filter(|(_, fast)| *fast || !skip_reference) {
        // One book across the rounds, as the collector keeps it: the first
        // round opens every alert, the next ones find them open.
        let mut book = AlertBook::new();
        let (mut build_cpu, mut eval_cpu, mut wall) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..=rounds {
            let (fleet, c, w) = timed(|| {
                Ok(if fast {
                    build_fleet(&store, &rules, heartbeat, lookback, now)?
                } else {
                    build_fleet_reference(&store, heartbeat, lookback, now)?
                })
            })?;
            let (_, e, ew) = timed(|| {
                evaluate(&rules, &fleet, &mut book, now);
                Ok(())
            })?;
            build_cpu.push(c);
            eval_cpu.push(e);
            wall.push(w + ew);
        }
        let firsts = (build_cpu.remove(0), eval_cpu.remove(0), wall.remove(0));
        let median = |mut v: Vec<Duration>| {
            v.sort();
            ms(v[v.len() / 2])
        };
        let mut by_rule: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for a in book.alerts() {
            *by_rule.entry(a.rule.clone()).or_default() += 1;
        }
        report.insert(
            label.into(),
            serde_json::json!({
                "first_round": {"build_cpu_ms": ms(firsts.0), "evaluate_cpu_ms": ms(firsts.1), "wall_ms": ms(firsts.2)},
                "rounds": rounds,
                "median_build_cpu_ms": median(build_cpu), "median_evaluate_cpu_ms": median(eval_cpu), "median_wall_ms": median(wall),
                "alerts_by_rule": by_rule,
            }),
        );
        decisions.push(book.alerts().cloned().collect::<Vec<_>>());
    }
    report.insert("hosts".into(), agents.len().into());
    report.insert("health_lookups_cpu_ms".into(), ms(health_cpu).into());
    let same = decisions.windows(2).all(|w| w[0] == w[1]);
    report.insert("same_alerts".into(), same.into());
    println!("{}", serde_json::Value::Object(report));
    if !same {
        bail!("build_fleet and the reference gave different alerts");
    }
    Ok(())
}
