//! Fault injection with real processes (SPEC §9): the collector killed with
//! SIGKILL at random points during ingest, many times, with a checker that
//! every acknowledged report is stored exactly once; and the collector's
//! disk filling up under a real agent.
//!
//! `CENSUS_KILL_ITERATIONS` (default 30) sets how many kills; the seed of
//! the kill points is printed and can be replayed with `CENSUS_FAULT_SEED`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use census_tests::sim::{Enroller, SimAgent};
use census_tests::{Agent, Collector, eventually, run, text};
use serde_json::Value;

/// A small deterministic generator (xorshift64*): the kill points of a
/// failing run can be replayed from its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What the sending side knows: the highest seq the collector acknowledged
/// for each simulated agent.
struct Acks {
    by_agent: HashMap<String, Arc<AtomicU64>>,
}

/// One report per request, alternating heartbeats and one-sample health
/// batches (sample time = seq, so every stored sample has its own key).
fn report(seq: u64) -> pb::Report {
    let body = if seq % 2 == 0 {
        pb::report::Body::Health(pb::HealthBatch {
            samples: vec![pb::HealthSample {
                taken_at_unix_ms: 1_700_000_000_000 + seq as i64,
                cpu_percent: Some(1.0),
                ..Default::default()
            }],
            ..Default::default()
        })
    } else {
        pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: seq, agent_version: "0.1.0".into() })
    };
    pb::Report { seq, created_at_unix_ms: 1_700_000_000_000, body: Some(body) }
}

/// Sends reports like a real agent: the next seq after the last
/// acknowledged one, resent until acknowledged; a batch of 1 to 4.
async fn send_forever(enroller: Enroller, agent: SimAgent, acked: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut client: Option<AgentServiceClient<tonic::transport::Channel>> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        if client.is_none() {
            client = Some(AgentServiceClient::new(enroller.channel_lazy(&agent)));
        }
        let first = acked.load(Ordering::Relaxed) + 1;
        let reports = (first..first + 1 + n % 4).map(report).collect();
        let answer =
            client.as_mut().expect("client just made").report(pb::ReportRequest { agent_id: agent.agent_id.clone(), reports }).await;
        match answer {
            Ok(r) => {
                acked.fetch_max(r.into_inner().acked_through, Ordering::Relaxed);
            }
            Err(s) => {
                // The collector is down or restarting: back off briefly, as
                // the agent does, and resend the same seqs.
                assert_ne!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
                client = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

#[test]
fn collector_killed_at_random_points_loses_and_duplicates_nothing_acknowledged() {
    let iterations = env_u64("CENSUS_KILL_ITERATIONS").unwrap_or(30);
    let seed = env_u64("CENSUS_FAULT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
    });
    eprintln!("kill -9 fault test: {iterations} iterations, CENSUS_FAULT_SEED={seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut collector = Collector::start(dir.path(), "[limits]\nreports_per_agent_per_minute = 0\n");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let enroller = Enroller::new(&collector);
    let agents = runtime.block_on(enroller.enroll_many("kill", 3, "0.1.0", 3));
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Acks { by_agent: agents.iter().map(|a| (a.agent_id.clone(), Arc::new(AtomicU64::new(0)))).collect() };
    for agent in &agents {
        let acked = Arc::clone(&acks.by_agent[&agent.agent_id]);
        runtime.spawn(send_forever(enroller.clone(), agent.clone(), acked, Arc::clone(&stop)));
    }

    let total_acked = || acks.by_agent.values().map(|a| a.load(Ordering::Relaxed)).sum::<u64>();
    let started = Instant::now();
    for iteration in 0..iterations {
        // Ingest is under way: every agent got something acknowledged
        // since the last restart.
        let before: HashMap<String, u64> = acks.by_agent.iter().map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed))).collect();
        eventually("every agent's reports to be acknowledged again", || {
            acks.by_agent.iter().all(|(k, v)| v.load(Ordering::Relaxed) > before[k]).then_some(())
        });
        // The fault: a random point in the stream of writes, after a
        // random number (0-39) of further acknowledgements.
        let kill_after = total_acked() + rng.below(40);
        eventually("the acknowledgements before the kill point", || (total_acked() >= kill_after).then_some(()));
        collector.stop();
        // After SIGKILL no answer can arrive: these are final.
        let acked_at_kill: HashMap<String, u64> = acks.by_agent.iter().map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed))).collect();
        collector.serve();
        let hosts = collector.hosts();
        for host in &hosts {
            let id = host["agent_id"].as_str().expect("agent_id");
            let acked = acked_at_kill[id];
            let (last, stored, samples) = (num(host, "last_seq"), num(host, "reports_stored"), num(host, "health_samples_stored"));
            assert!(
                last >= acked,
                "iteration {iteration} (seed {seed}): agent {id} was acknowledged through {acked}, the store has {last}"
            );
            assert_eq!(stored, last, "iteration {iteration} (seed {seed}): seqs 1..={last} stored exactly once: {host}");
            assert_eq!(samples, last / 2, "iteration {iteration} (seed {seed}): one sample per even seq: {host}");
        }
        assert_eq!(hosts.len(), agents.len());
    }
    stop.store(true, Ordering::Relaxed);
    eprintln!(
        "kill -9 fault test: {iterations} kills, {} reports acknowledged, 0 lost, 0 duplicated, in {:.1?}",
        total_acked(),
        started.elapsed()
    );
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// The collector's data directory on a tmpfs of `size`: mounted by the
/// test (root only) and unmounted on drop.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        if !rustix::process::geteuid().is_root() {
            eprintln!(
                "SKIPPED: mounting a small tmpfs for the disk-full test needs root (running as uid {:?})",
                rustix::process::geteuid()
            );
            return None;
        }
        std::fs::create_dir_all(path).expect("mount point");
        let out =
            run(std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"]).arg(path));
        assert!(out.status.success(), "mount tmpfs: {}", text(&out.stderr));
        Some(Tmpfs { path: path.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run(std::process::Command::new("umount").arg("-l").arg(&self.path));
    }
}

/// Fills the filesystem holding `path` until writes fail with ENOSPC.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // sub-chunk remainders
    while let Ok(n) = file.write(&chunk[..512]) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    written
}

fn spooled(state_dir: &Path) -> usize {
    std::fs::read_dir(state_dir.join("spool")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn collector_disk_full_refuses_ingest_keeps_running_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmpfs) = Tmpfs::mount(&dir.path().join("collector"), "64m") else { return };
    let mut collector = Collector::start(
        dir.path(),
        "[agents]\nheartbeat_interval = \"1s\"\ninventory_interval = \"2s\"\n[limits]\nmin_free_disk_bytes = 16777216\n",
    );
    let (mut agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "health_interval = \"1s\"\nhealth_batch_interval = \"1s\"\n").expect("agent config");
    agent.run(&["--config", config.to_str().expect("utf-8")]);
    let host = |c: &Collector| c.hosts().into_iter().next();
    eventually("the first reports to be stored", || host(&collector).filter(|h| num(h, "last_seq") > 3));

    // The disk fills up (something else wrote to it): 8 MiB stay free,
    // below the collector's 16 MiB reserve.
    let filler = tmpfs.path.join("filler");
    let filled = fill(&filler);
    std::fs::OpenOptions::new().write(true).open(&filler).and_then(|f| f.set_len(filled - 8 * 1024 * 1024)).expect("leaving 8 MiB");
    let refused = agent.proc().wait_stderr(&["cannot deliver reports", "disk full", "limits.min_free_disk_bytes"]);
    assert!(refused.contains("resource") || refused.contains("exhausted") || refused.contains("Resource"), "{refused}");
    collector.proc.as_ref().expect("running").wait_stderr(&["reports refused", "disk full"]);
    let during = host(&collector).expect("the collector is up and its admin API answers");
    eventually("the agent to keep its reports spooled", || (spooled(&agent.state_dir) >= 3).then_some(()));
    assert!(
        !collector.proc.as_ref().expect("running").stderr().iter().any(|l| l.contains("No space left")),
        "the reserve kept sled from ever hitting ENOSPC"
    );
    // Enrollment writes too: refused the same way, with nothing half-done.
    let t = Instant::now();
    let (_, other) =
        Agent::enroll(&dir.path().join("other"), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(!other.status.success() && text(&other.stderr).contains("disk full"), "{}", text(&other.stderr));
    assert_eq!(collector.hosts().len(), 1, "no half-enrolled host");
    eprintln!("enrollment refused in {:?}", t.elapsed());
    let still = host(&collector).expect("admin API");
    assert_eq!(num(&still, "last_seq"), num(&during, "last_seq"), "nothing stored while the disk is full");

    // Space returns: the spool drains by itself, everything exactly once.
    std::fs::remove_file(&filler).expect("removing the filler");
    let t = Instant::now();
    let produced: u64 = std::fs::read_to_string(agent.state_dir.join("seq")).expect("seq").trim().parse().expect("seq number");
    let after =
        eventually("the spooled reports to arrive once space is back", || host(&collector).filter(|h| num(h, "last_seq") >= produced));
    assert_eq!(num(&after, "reports_stored"), num(&after, "last_seq"), "stored exactly once: {after}");
    assert!(num(&after, "last_seq") > num(&during, "last_seq"));
    eprintln!("disk full: spool drained {:?} after space returned", t.elapsed());
    collector.stop();
}

/// The collector's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

const OUTDATED_RULE: &str = r#"
[[rule]]
name = "agent-too-old"
severity = "warning"
when = { kind = "agent_outdated", minimum = "99.0" }
summary = "{{host}} runs agent {{value}}"
"#;

fn outbox(collector: &Collector) -> Vec<Value> {
    let out = collector.census(&["outbox", "--output", "json"]);
    assert!(out.status.success(), "census outbox: {}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).expect("json").as_array().expect("array").clone()
}

#[test]
fn a_sink_failing_and_slow_for_long_backs_off_stays_bounded_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recorder = census_tests::recorder::Recorder::start();
    recorder.answer(500);
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "").expect("empty rule file");
    let mut collector = Collector::start(
        dir.path(),
        &format!(
            "[alerts]\nrules_file = {:?}\ndefault_rules = false\nevaluation_interval = \"100ms\"\nreload_interval = \"100ms\"\n\
             [notify]\ninitial_backoff = \"100ms\"\nmax_backoff = \"2s\"\nmax_attempts = 1000\n\
             [[sink]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"500ms\"\n",
            rules.display().to_string(),
            recorder.url("/census")
        ),
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(Enroller::new(&collector).enroll_many("sink", 3, "0.1.0", 3));
    let pid = collector.proc.as_ref().expect("running").pid();
    let firing = |c: &Collector| {
        let out = c.census(&["alerts", "--state", "firing", "--output", "json"]);
        assert!(out.status.success(), "census alerts: {}", text(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).expect("json").as_array().expect("array").len()
    };

    // Alerts keep changing while the sink answers 500: every firing and
    // every resolution is one more notification in the outbox.
    let toggles = env_u64("CENSUS_SINK_TOGGLES").unwrap_or(8);
    let mut rss = Vec::new();
    for t in 0..toggles {
        std::fs::write(&rules, OUTDATED_RULE).expect("rule");
        eventually("3 firing alerts", || (firing(&collector) == 3).then_some(()));
        std::fs::write(&rules, "").expect("no rule");
        eventually("the alerts to resolve", || (firing(&collector) == 0).then_some(()));
        if t == 0 || t + 1 == toggles {
            rss.push(rss_bytes(pid));
        }
    }
    let expected = usize::try_from(2 * toggles).expect("small");
    eventually("every notification enqueued", || (outbox(&collector).len() == expected).then_some(()));

    // The outbox backs off: the head entry is retried at growing intervals,
    // up to max_backoff (plus the request time).
    let attempts = eventually("attempts up to the maximum backoff", || {
        let r = recorder.requests();
        let gaps: Vec<Duration> = r.windows(2).map(|w| w[1].at - w[0].at).collect();
        gaps.iter().any(|g| *g >= Duration::from_millis(1000)).then_some(gaps)
    });
    assert!(attempts[0] < Duration::from_millis(400), "the first retry comes soon: {attempts:?}");
    assert!(attempts.iter().all(|g| *g < Duration::from_millis(3500)), "never beyond max_backoff: {attempts:?}");
    let failed = recorder.requests().len();
    assert!(recorder.requests().iter().all(|r| r.status == 500));

    // Slow: answers now take longer than the sink's timeout; still retried.
    recorder.answer(200);
    recorder.answer_after(Duration::from_millis(1500));
    eventually("attempts that time out", || (recorder.requests().len() >= failed + 2).then_some(()));
    assert!(outbox(&collector).iter().all(|e| e["state"] == "pending"), "a timed-out attempt is not a delivery");
    rss.push(rss_bytes(pid));

    // Recovery: every notification arrives, each idempotency key at least
    // once, in enqueue order.
    recorder.answer_after(Duration::ZERO);
    let entries = eventually("every entry delivered", || {
        let o = outbox(&collector);
        o.iter().all(|e| e["state"] == "delivered").then_some(o)
    });
    assert_eq!(entries.len(), expected);
    let answered: Vec<String> = recorder
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.json()["idempotency_key"].as_str().expect("idempotency key").to_string())
        .collect();
    let mut first_seen: Vec<String> = Vec::new();
    for k in &answered {
        if !first_seen.contains(k) {
            first_seen.push(k.clone());
        }
    }
    let mut enqueued: Vec<(u64, String)> =
        entries.iter().map(|e| (e["id"].as_u64().expect("id"), e["idempotency_key"].as_str().expect("key").to_string())).collect();
    enqueued.sort();
    // The outbox keys an entry per sink ("hook/<key>"); the payload carries
    // the notification's own key.
    let enqueued: Vec<String> = enqueued.into_iter().map(|e| e.1.strip_prefix("hook/").unwrap_or(&e.1).to_string()).collect();
    assert_eq!(first_seen, enqueued, "every notification, in order");

    let (first, last) = (rss[0], *rss.iter().max().expect("samples"));
    eprintln!(
        "sink failing/slow: {} attempts, {expected} notifications delivered after recovery; collector RSS {:.1} MiB -> max {:.1} MiB",
        recorder.requests().len(),
        first as f64 / 1048576.0,
        last as f64 / 1048576.0
    );
    assert!(last < first + 64 * 1024 * 1024, "collector memory stays bounded: {rss:?}");
    collector.stop();
}
