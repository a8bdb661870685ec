//! Durability end to end: the agent's spool, the collector's dedupe and
//! durable acks, inventory deltas and the change history, with real
//! binaries, kill -9 and restarts.
//!
//! Counts come from both sides: the agent's persisted sequence counter
//! (`state/seq`, every report it ever numbered) and its spool directory
//! (what it still holds), against the collector's `last_seq` and
//! `reports_stored` (each stored report counted once).

use std::path::{Path, PathBuf};

use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

/// Reports come fast so a test sees many of them: heartbeat, health sample
/// and health batch every second.
const FAST_COLLECTOR: &str = "[agents]\nheartbeat_interval = \"1s\"\ninventory_interval = \"2s\"\n";

fn agent_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, format!("health_interval = \"1s\"\nhealth_batch_interval = \"1s\"\n{extra}")).expect("agent config");
    path
}

fn the_host(collector: &Collector) -> Value {
    let hosts = collector.hosts();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    hosts[0].clone()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// The agent's side: the last seq it numbered durably, and the seqs still
/// spooled. A report reaches the spool before the counter file, so after a
/// kill -9 the highest spooled seq can be one above the file.
fn agent_side(state_dir: &Path) -> (u64, Vec<u64>) {
    let seq: u64 = std::fs::read_to_string(state_dir.join("seq")).expect("seq file").trim().parse().expect("seq number");
    let mut spooled: Vec<u64> = std::fs::read_dir(state_dir.join("spool"))
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.split_once('.')?.0.parse().ok()).collect())
        .unwrap_or_default();
    spooled.sort_unstable();
    (seq.max(spooled.last().copied().unwrap_or(0)), spooled)
}

fn start(dir: &Path, agent_extra: &str) -> (Collector, Agent, PathBuf) {
    let collector = Collector::start(dir, FAST_COLLECTOR);
    let (mut agent, out) = Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = agent_config(dir, agent_extra);
    agent.run(&["--config", config.to_str().expect("utf-8 path")]);
    // The first response tells the agent the collector takes health
    // batches; from then on samples are stored.
    eventually("the first health samples to be stored", || (num(&the_host(&collector), "health_samples_stored") > 0).then_some(()));
    (collector, agent, config)
}

/// Every seq the collector holds was stored once, with no gap: nothing
/// acknowledged was lost and nothing was counted twice.
fn assert_stored_once_without_gaps(host: &Value) {
    assert_eq!(num(host, "reports_stored"), num(host, "last_seq"), "every seq up to last_seq stored exactly once: {host}");
}

#[test]
fn collector_outage_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut collector, mut agent, _) = start(dir.path(), "");
    collector.proc.as_mut().expect("running").kill();
    eventually("the agent to spool reports while the collector is down", || (agent_side(&agent.state_dir).1.len() >= 8).then_some(()));
    collector.serve();
    let (produced_before_restart, _) = agent_side(&agent.state_dir);
    eventually("the spooled reports to be delivered", || (num(&the_host(&collector), "last_seq") >= produced_before_restart).then_some(()));

    // Freeze the agent and compare both sides.
    agent.proc.as_mut().expect("running").kill();
    let (produced, spooled) = agent_side(&agent.state_dir);
    let host = the_host(&collector);
    assert_stored_once_without_gaps(&host);
    let last = num(&host, "last_seq");
    assert!(spooled.iter().all(|s| *s <= produced), "{spooled:?}");
    let unacked: Vec<u64> = spooled.iter().copied().filter(|s| *s > last).collect();
    assert_eq!(
        last + unacked.len() as u64,
        produced,
        "every seq the agent produced is stored or still spooled: last {last}, spooled {spooled:?}"
    );
    assert_eq!(num(&host, "health_dropped_batches"), 0);

    // The rest arrives after a restart, still exactly once.
    agent.run(&["--config", dir.path().join("agent.toml").to_str().expect("utf-8")]);
    let host = eventually("the rest of the spool to arrive", || {
        let h = the_host(&collector);
        (num(&h, "last_seq") >= produced).then_some(h)
    });
    assert_stored_once_without_gaps(&host);
}

#[test]
fn agent_killed_mid_spool_loses_nothing_spooled() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut collector, mut agent, config) = start(dir.path(), "");
    collector.proc.as_mut().expect("running").kill();
    eventually("reports to pile up in the spool", || (agent_side(&agent.state_dir).1.len() >= 5).then_some(()));
    agent.proc.as_mut().expect("running").kill();
    let (produced, spooled) = agent_side(&agent.state_dir);
    assert!(!spooled.is_empty());

    collector.serve();
    agent.run(&["--config", config.to_str().expect("utf-8")]);
    let host = eventually("every spooled report to be delivered after the restart", || {
        let h = the_host(&collector);
        (num(&h, "last_seq") >= produced).then_some(h)
    });
    assert_stored_once_without_gaps(&host);
    assert!(num(&host, "last_seq") >= *spooled.last().expect("spooled"));
}

#[test]
fn collector_killed_during_ingest_keeps_everything_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut collector, _agent, _) = start(dir.path(), "");
    for round in 0..3 {
        let before = num(&the_host(&collector), "last_seq");
        eventually("more reports to be acknowledged", || (num(&the_host(&collector), "last_seq") > before + 2).then_some(()));
        collector.proc.as_mut().expect("running").kill();
        collector.serve();
        let host = the_host(&collector);
        // An acknowledged report that was lost would leave a gap: the
        // agent forgot it, so nothing would fill it.
        assert_stored_once_without_gaps(&host);
        eprintln!("round {round}: last_seq {}", num(&host, "last_seq"));
    }
}

/// A fixture root: the real /proc and /sys (health, identity), a dpkg
/// status file the test edits, and this machine's machine-id.
fn fixture_root(dir: &Path, packages: &[(&str, &str)]) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("dpkg dir");
    std::fs::create_dir_all(root.join("etc")).expect("etc");
    #[cfg(unix)]
    for d in ["proc", "sys"] {
        std::os::unix::fs::symlink(Path::new("/").join(d), root.join(d)).expect("symlink");
    }
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        std::fs::write(root.join("etc/machine-id"), id).expect("machine-id");
    }
    write_dpkg_status(&root, packages);
    root
}

fn write_dpkg_status(root: &Path, packages: &[(&str, &str)]) {
    let mut text = String::new();
    for (name, version) in packages {
        text.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nMaintainer: Test <t@example.invalid>\nVersion: {version}\nDescription: {name}\n\n"
        ));
    }
    // Atomic, so the agent never reads half a file.
    let path = root.join("var/lib/dpkg/status");
    std::fs::write(path.with_extension("new"), text).expect("status");
    std::fs::rename(path.with_extension("new"), path).expect("rename status");
}

fn changes(collector: &Collector, kind: &str) -> Vec<Value> {
    let out = collector.census(&["changes", "--since", "1h", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    all.into_iter().filter(|c| c["kind"] == kind).collect()
}

fn dpkg_versions(collector: &Collector, agent_id: &str) -> Vec<String> {
    let out = collector.census(&["host", agent_id, "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let mut names: Vec<String> = v["inventory"]["software"]["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}={}", p["name"].as_str().unwrap_or(""), p["version"].as_str().unwrap_or("")))
        .collect();
    names.sort();
    names
}

#[test]
fn package_installed_then_removed_is_exactly_one_change_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = fixture_root(dir.path(), &[("bash", "5.2-1"), ("openssl", "3.0.2-1")]);
    let (collector, agent, _) = start(dir.path(), &format!("root = {:?}\n", root.display().to_string()));
    let agent_id = the_host(&collector)["agent_id"].as_str().expect("id").to_string();
    eventually("the fixture packages to be stored", || {
        (dpkg_versions(&collector, &agent_id) == ["bash=5.2-1", "openssl=3.0.2-1"]).then_some(())
    });

    write_dpkg_status(&root, &[("bash", "5.2-1"), ("htop", "3.3.0-1"), ("openssl", "3.0.2-1")]);
    let installed = eventually("htop's installation in the change history", || {
        Some(changes(&collector, "software.installed")).filter(|c| !c.is_empty())
    });
    // Several more inventory runs (every 2 s) must not repeat it.
    let seq = num(&the_host(&collector), "last_seq");
    eventually("a few more reports", || (num(&the_host(&collector), "last_seq") > seq + 6).then_some(()));
    let installed_later = changes(&collector, "software.installed");
    assert_eq!(installed_later.len(), 1, "{installed_later:?}");
    assert_eq!(installed[0]["subject"], "htop:amd64 (dpkg)");
    assert_eq!(installed[0]["new"], "3.3.0-1");
    assert_eq!(dpkg_versions(&collector, &agent_id), ["bash=5.2-1", "htop=3.3.0-1", "openssl=3.0.2-1"], "the delta was applied");

    write_dpkg_status(&root, &[("bash", "5.2-1"), ("openssl", "3.0.13-1")]);
    eventually("the removal and the upgrade", || {
        (changes(&collector, "software.removed").len() == 1 && changes(&collector, "software.upgraded").len() == 1).then_some(())
    });
    let seq = num(&the_host(&collector), "last_seq");
    eventually("a few more reports", || (num(&the_host(&collector), "last_seq") > seq + 6).then_some(()));
    assert_eq!(changes(&collector, "software.removed").len(), 1);
    assert_eq!(changes(&collector, "software.installed").len(), 1);
    let upgraded = changes(&collector, "software.upgraded");
    assert_eq!((upgraded.len(), &upgraded[0]["old"], &upgraded[0]["new"]), (1, &Value::from("3.0.2-1"), &Value::from("3.0.13-1")));

    // The host-scoped query and the table agree.
    let out = collector.census(&["changes", &agent_id, "--since", "7d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("software.upgraded") && table.contains("3.0.13-1") && table.contains("3 change(s)"), "{table}");
    drop(agent);
}

#[test]
fn full_spool_drops_health_before_inventory_and_reports_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = fixture_root(dir.path(), &[("bash", "5.2-1")]);
    let (mut collector, agent, _) = start(dir.path(), &format!("root = {:?}\nspool_max_bytes = 8192\n", root.display().to_string()));
    let agent_id = the_host(&collector)["agent_id"].as_str().expect("id").to_string();
    eventually("the fixture package to be stored", || (dpkg_versions(&collector, &agent_id) == ["bash=5.2-1"]).then_some(()));

    collector.proc.as_mut().expect("running").kill();
    // Inventory changes while the collector is down: deltas are spooled.
    write_dpkg_status(&root, &[("bash", "5.2-1"), ("curl", "8.5.0-1")]);
    eventually("a delta in the spool", || {
        std::fs::read_dir(agent.state_dir.join("spool"))
            .ok()?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".delta"))
            .then_some(())
    });
    // Health keeps coming until the spool is full and drops the oldest.
    eventually("the spool to drop health batches", || agent.proc().stderr().iter().any(|l| l.contains("spool full")).then_some(()));
    let spool_bytes: u64 = std::fs::read_dir(agent.state_dir.join("spool"))
        .expect("spool")
        .flatten()
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(spool_bytes <= 8192 + 64, "spool stays near its bound: {spool_bytes}");

    collector.serve();
    let host = eventually("the drop count to reach the collector", || {
        let h = the_host(&collector);
        (num(&h, "health_dropped_batches") > 0).then_some(h)
    });
    assert!(num(&host, "health_dropped_samples") >= num(&host, "health_dropped_batches"));
    eventually("the inventory change made during the outage", || (changes(&collector, "software.installed").len() == 1).then_some(()));
    assert_eq!(dpkg_versions(&collector, &agent_id), ["bash=5.2-1", "curl=8.5.0-1"], "inventory never dropped");
    // Dropped health is a gap in the seqs, not a loss of anything acknowledged.
    assert!(num(&host, "reports_stored") <= num(&host, "last_seq"));
}

#[test]
fn metrics_and_online_status_are_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (collector, mut agent, _) = start(dir.path(), "");
    let agent_id = the_host(&collector)["agent_id"].as_str().expect("id").to_string();
    eventually("a few samples", || (num(&the_host(&collector), "health_samples_stored") >= 3).then_some(()));
    let out = collector.census(&["metrics", &agent_id, "procs", "--since", "1h", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["resolution"], "raw");
    let points = v["points"].as_array().expect("points");
    assert!(points.len() >= 3 && points.iter().all(|p| p["value"].as_f64().unwrap_or(0.0) >= 1.0), "{v}");
    let table = text(&collector.census(&["metrics", &agent_id, "procs", "--since", "1h"]).stdout);
    assert!(table.contains("procs (raw resolution"), "{table}");

    let hosts = text(&collector.census(&["hosts"]).stdout);
    assert!(hosts.contains("online"), "{hosts}");
    // 3 missed 1 s heartbeats later the host is offline.
    agent.proc.as_mut().expect("running").kill();
    eventually("the host to show offline", || (the_host(&collector)["online"] != true).then_some(()));
    assert!(text(&collector.census(&["hosts"]).stdout).contains("offline"));
}
