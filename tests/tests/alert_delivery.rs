//! Alert delivery end to end, through a webhook sink whose receiver is a
//! recording HTTP server: fleet-wide events are grouped, and a receiver
//! that is down for a while gets every notification once, in order.

use std::collections::BTreeMap;
use std::path::Path;

use census_tests::recorder::{Recorded, Recorder};
use census_tests::sim::Enroller;
use census_tests::{Collector, eventually};
use serde_json::Value;

/// A rule that fires on every enrolled host at once (their agent version
/// is below 99), written when the test wants the event to happen.
const OUTDATED_RULE: &str = r#"
[[rule]]
name = "agent-too-old"
severity = "warning"
when = { kind = "agent_outdated", minimum = "99.0" }
summary = "{{host}} runs agent {{value}}"
runbook_url = "https://wiki.example/runbooks/agent-upgrade"
"#;

fn collector_with_webhook(dir: &Path, rules_file: &Path, hook_url: &str) -> Collector {
    std::fs::write(rules_file, "").expect("empty rule file");
    Collector::start(
        dir,
        &format!(
            r#"
[alerts]
rules_file = {rules:?}
default_rules = false
evaluation_interval = "200ms"
reload_interval = "200ms"

[notify]
initial_backoff = "100ms"
max_backoff = "1s"

[[sink]]
name = "hook"
kind = "webhook"
url = "{hook_url}"
"#,
            rules = rules_file.display().to_string()
        ),
    )
}

/// The notifications a recorder accepted, as JSON, in arrival order.
fn accepted(recorder: &Recorder) -> Vec<Value> {
    recorder.requests().iter().filter(|r| r.status == 200).map(Recorded::json).collect()
}

fn transition(n: &Value) -> &str {
    n["transition"].as_str().expect("a notification names its transition")
}

fn alerts(n: &Value) -> &Vec<Value> {
    n["alerts"].as_array().expect("a notification lists its alerts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_hosts_firing_together_make_one_grouped_notification() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recorder = Recorder::start();
    let rules = dir.path().join("rules.toml");
    let collector = collector_with_webhook(dir.path(), &rules, &recorder.url("/census"));

    let hosts = Enroller::new(&collector).enroll_many("fleet", 500, "0.1.0", 16).await;
    assert_eq!(hosts.len(), 500);
    std::fs::write(&rules, OUTDATED_RULE).expect("writing the rule");

    let firing = tokio::task::spawn_blocking({
        let requests = move || accepted(&recorder);
        move || {
            let first = eventually("the grouped firing notification", || requests().into_iter().next());
            (first, requests)
        }
    })
    .await
    .expect("poll task");
    let (first, requests) = firing;
    assert_eq!(transition(&first), "firing");
    assert_eq!(alerts(&first).len(), 500, "one notification carries all 500 alerts");

    // Removing the rule resolves the 500 alerts together: one resolved
    // notification. The outbox delivers in order, so once it has arrived
    // every notification enqueued before it has too.
    std::fs::write(&rules, "").expect("removing the rule");
    let all = tokio::task::spawn_blocking(move || eventually("the grouped resolution", || Some(requests()).filter(|r| r.len() >= 2)))
        .await
        .expect("poll task");
    assert_eq!(
        all.len(),
        2,
        "exactly one firing and one resolved notification for 500 hosts: {:#?}",
        all.iter().map(transition).collect::<Vec<_>>()
    );
    assert_eq!(transition(&all[1]), "resolved");
    assert_eq!(alerts(&all[1]).len(), 500);
    let hostnames: std::collections::BTreeSet<&str> = alerts(&all[0]).iter().filter_map(|a| a["hostname"].as_str()).collect();
    assert_eq!(hostnames.len(), 500, "every host appears once");
    drop(collector);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_every_notification_once_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut recorder = Recorder::start();
    let rules = dir.path().join("rules.toml");
    let collector = collector_with_webhook(dir.path(), &rules, &recorder.url("/census"));
    let _hosts = Enroller::new(&collector).enroll_many("site", 3, "0.1.0", 3).await;

    // Down: connections refused. Fire, resolve and fire again while down;
    // each step is seen by the collector before the next (its alert list).
    recorder.stop();
    let collector = tokio::task::spawn_blocking(move || {
        let firing = |c: &Collector| {
            let out = c.census(&["alerts", "--state", "firing", "--output", "json"]);
            assert!(out.status.success(), "census alerts: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).expect("json").as_array().expect("array").len()
        };
        std::fs::write(&rules, OUTDATED_RULE).expect("rule");
        eventually("3 firing alerts", || (firing(&collector) == 3).then_some(()));
        std::fs::write(&rules, "").expect("no rule");
        eventually("the alerts to resolve", || (firing(&collector) == 0).then_some(()));
        std::fs::write(&rules, OUTDATED_RULE).expect("rule again");
        eventually("3 firing alerts again", || (firing(&collector) == 3).then_some(()));
        collector
    })
    .await
    .expect("steps");

    // Also answer 503 for a while once it is back: failures of both kinds.
    recorder.answer(503);
    recorder.resume();
    let recorder = tokio::task::spawn_blocking(move || {
        eventually("a refused attempt", || recorder.requests().iter().any(|r| r.status == 503).then_some(()));
        recorder.answer(200);
        eventually("three notifications accepted", || (accepted(&recorder).len() >= 3).then_some(()));
        recorder
    })
    .await
    .expect("poll task");

    let delivered = accepted(&recorder);
    assert_eq!(delivered.iter().map(transition).collect::<Vec<_>>(), ["firing", "resolved", "firing"], "every notification once, in order");
    let keys: std::collections::BTreeSet<&str> =
        delivered.iter().map(|n| n["idempotency_key"].as_str().expect("idempotency key")).collect();
    assert_eq!(keys.len(), 3, "three distinct idempotency keys");
    // Per alert: firing, resolved, firing, with growing sequence numbers.
    let mut per_alert: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for n in &delivered {
        for a in alerts(n) {
            per_alert
                .entry(a["fingerprint"].as_str().expect("fingerprint").to_string())
                .or_default()
                .push((transition(n).to_string(), a["sequence"].as_u64().expect("sequence")));
        }
    }
    assert_eq!(per_alert.len(), 3);
    for (fp, steps) in &per_alert {
        let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["firing", "resolved", "firing"], "alert {fp}");
        assert!(steps.windows(2).all(|w| w[0].1 < w[1].1), "sequences grow for {fp}: {steps:?}");
    }
    drop(collector);
}
