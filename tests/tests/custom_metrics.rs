//! Custom metrics end to end: an agent whose textfile directory holds
//! `census_e2e_fill 95` reports it, the collector serves it as
//! `custom.census_e2e_fill` through the admin API (`census metrics`), and a
//! new value written the way docs/custom-metrics.md tells administrators
//! to (a temporary name, then a rename) arrives in its turn.

use std::path::Path;

use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

/// Heartbeat, health sample and health batch every second.
const FAST_COLLECTOR: &str = "[agents]\nheartbeat_interval = \"1s\"\n";

/// Writes `name` in `dir` atomically: the temporary name starts with `.`,
/// which the agent never reads.
fn write_atomically(dir: &Path, name: &str, contents: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).expect("temporary textfile");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into place");
}

/// `census metrics HOST METRIC --output json`, once the host is known.
fn metrics(collector: &Collector, metric: &str) -> Option<Value> {
    let hosts = collector.hosts();
    let agent_id = hosts.first()?["agent_id"].as_str()?.to_string();
    let out = collector.census(&["metrics", &agent_id, metric, "--since", "1h", "--resolution", "raw", "--output", "json"]);
    assert!(out.status.success(), "census metrics failed: {}", text(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("census metrics prints JSON"))
}

fn values(reply: &Value) -> Vec<f64> {
    reply["points"].as_array().into_iter().flatten().filter_map(|p| p["value"].as_f64()).collect()
}

#[test]
fn textfile_values_reach_the_collector_and_follow_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).expect("textfile dir");
    write_atomically(&textfiles, "e2e.prom", "# HELP census_e2e_fill A test gauge.\n# TYPE census_e2e_fill gauge\ncensus_e2e_fill 95\n");
    // A malformed line (line 2), and a file the agent must not read.
    write_atomically(&textfiles, "broken.prom", "census_e2e_queue{queue=\"mail\"} 3\ncensus_e2e_broken\n");
    std::fs::write(textfiles.join(".hidden.prom"), "census_e2e_hidden 1\n").expect("hidden file");

    let collector = Collector::start(dir.path(), FAST_COLLECTOR);
    let (mut agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!("health_interval = \"1s\"\nhealth_batch_interval = \"1s\"\nhealth_textfile_dir = {:?}\n", textfiles.display().to_string()),
    )
    .expect("agent config");
    agent.run(&["--config", config.to_str().expect("utf-8 temp path")]);

    let reply = eventually("custom.census_e2e_fill = 95 to be served", || {
        metrics(&collector, "custom.census_e2e_fill").filter(|r| values(r).last() == Some(&95.0))
    });
    let available: Vec<&str> = reply["available"].as_array().expect("available").iter().filter_map(Value::as_str).collect();
    assert!(available.contains(&"custom.census_e2e_queue.mail"), "labelled series: {available:?}");
    assert!(available.iter().all(|m| !m.contains("hidden") && !m.contains("broken")), "{available:?}");
    assert!(available.contains(&"procs"), "custom metrics come beside the built-in ones: {available:?}");

    write_atomically(&textfiles, "e2e.prom", "census_e2e_fill 10\n");
    let reply = eventually("the new value 10 to be served", || {
        metrics(&collector, "custom.census_e2e_fill").filter(|r| values(r).last() == Some(&10.0))
    });
    let seen = values(&reply);
    let first_new = seen.iter().position(|v| *v == 10.0).expect("10 is there");
    assert!(seen[..first_new].iter().all(|v| *v == 95.0), "95 until the file changed, then 10: {seen:?}");
    assert!(seen[first_new..].iter().all(|v| *v == 10.0), "{seen:?}");

    // The unchanged broken file was read at every sample but warned about
    // once, naming file and line.
    let broken = format!("{}:2:", textfiles.join("broken.prom").display());
    let warnings = agent.proc().stderr().into_iter().filter(|l| l.contains(&broken)).count();
    assert_eq!(warnings, 1, "one warning for {broken}:\n{}", agent.proc().dump());
}
