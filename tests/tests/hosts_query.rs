//! `census hosts` with the filter language (docs/filters.md), sorting and
//! extra columns, against a real agent and simulated hosts.

use census_tests::sim::Enroller;
use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

fn hostnames(out: std::process::Output) -> Vec<String> {
    assert!(out.status.success(), "census hosts: {}", text(&out.stderr));
    let hosts: Value = serde_json::from_slice(&out.stdout).expect("json");
    hosts.as_array().expect("a list").iter().map(|h| h["hostname"].as_str().expect("hostname").to_string()).collect()
}

fn os_release_id() -> String {
    let text = std::fs::read_to_string("/etc/os-release").expect("os-release");
    text.lines().find_map(|l| l.strip_prefix("ID=")).expect("ID=").trim_matches('"').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_filtered_sorted_and_shown_with_chosen_columns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    Enroller::new(&collector).enroll_many("sim", 3, "0.1.0", 3).await;
    let (mut agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    agent.run(&[]);
    let collector = tokio::task::spawn_blocking(move || {
        eventually("the real host's inventory", || {
            collector.hosts().into_iter().find(|h| h["memory_total_bytes"].as_u64().unwrap_or(0) > 0)
        });
        collector
    })
    .await
    .expect("poll");
    let real = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim().to_string();

    // A filter and its negation split the hosts.
    let with_memory = hostnames(collector.census(&["hosts", "--filter", "has memory.total", "--output", "json"]));
    let without = hostnames(collector.census(&["hosts", "--filter", "not (has memory.total)", "--output", "json"]));
    assert_eq!(with_memory, std::slice::from_ref(&real));
    assert_eq!(without, ["sim-0000", "sim-0001", "sim-0002"]);
    let all = hostnames(collector.census(&["hosts", "--output", "json"]));
    assert_eq!(all.len(), with_memory.len() + without.len());

    // Units and the kind of query.
    let big = hostnames(collector.census(&["hosts", "--filter", "memory.total > 1MiB and agent.version ~ \"0.*\"", "--output", "json"]));
    assert_eq!(big, std::slice::from_ref(&real));

    // Sorting, descending.
    let sorted =
        hostnames(collector.census(&["hosts", "--filter", "hostname ~ \"sim-*\"", "--sort", "hostname", "--desc", "--output", "json"]));
    assert_eq!(sorted, ["sim-0002", "sim-0001", "sim-0000"]);

    // Extra columns carry the field values: os.id as /etc/os-release says.
    let out =
        collector.census(&["hosts", "--filter", &format!("hostname = \"{real}\""), "--columns", "os.id,memory.total", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hosts[0]["columns"]["os.id"].as_str(), Some(os_release_id().as_str()), "{hosts}");
    let table = text(&collector.census(&["hosts", "--columns", "os.id"]).stdout);
    assert!(table.contains("os.id") && table.contains(&os_release_id()), "{table}");

    // A mistake is shown with a caret under the column that is wrong.
    let out = collector.census(&["hosts", "--filter", "os.name = Ubuntu"]);
    assert_eq!(out.status.code(), Some(64), "usage error: {}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("os.name = Ubuntu") && said.contains("          ^"), "{said}");
}
