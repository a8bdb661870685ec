//! Alerts through the `census` CLI, end to end: a real collector evaluating
//! a rule file every 200 ms against what a real agent on this machine
//! reported, and the CLI acknowledging, silencing, testing and managing
//! rules with tokens of each role.
//!
//! The rules fire on real data without depending on what is installed:
//! no machine has a package named `census-e2e-absent-package`, and every
//! machine with a package list has some package matching `*`.

use std::path::Path;
use std::process::Output;

use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

const RULE: &str = "e2e-absent-package";

/// Exit codes of `census` (cli/mod.rs `exit`).
const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 64;
const EXIT_NOPERM: i32 = 77;

struct Fleet {
    collector: Collector,
    _agent: Agent,
    agent_id: String,
    hostname: String,
    viewer: (String, String),
    operator: (String, String),
}

/// A collector with a rule file holding `RULE`, tokens for a viewer and an
/// operator (the init token is the admin), and this machine's agent
/// reporting to it.
fn fleet_of_one(dir: &Path) -> Fleet {
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[rule]]\nname = \"{RULE}\"\nseverity = \"critical\"\nfor = \"0s\"\n\
             when = {{ kind = \"software_missing\", package = \"census-e2e-absent-package\" }}\n\
             summary = \"{{{{host}}}} lacks census-e2e-absent-package\"\n"
        ),
    )
    .expect("rule file");
    let mut collector = Collector::prepare(
        dir,
        &format!(
            "[agents]\nheartbeat_interval = \"1s\"\n[alerts]\nevaluation_interval = \"200ms\"\nrules_file = {:?}\n",
            rules.display().to_string()
        ),
    );
    let viewer = collector.create_token("viewer");
    let operator = collector.create_token("operator");
    collector.serve();
    let (mut agent, out) = Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll failed: {}", text(&out.stderr));
    agent.run(&[]);
    let host = eventually("the host to appear with its inventory", || {
        collector.hosts().into_iter().find(|h| h["memory_total_bytes"].as_u64().unwrap_or(0) > 0)
    });
    let agent_id = host["agent_id"].as_str().expect("agent id").to_string();
    let hostname = host["hostname"].as_str().expect("hostname").to_string();
    Fleet { collector, _agent: agent, agent_id, hostname, viewer, operator }
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "census failed ({:?}): {}{}", out.status.code(), text(&out.stderr), text(&out.stdout));
    text(&out.stdout)
}

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).expect("census printed JSON")
}

fn refused(out: Output, code: i32, message: &str) {
    assert_eq!(out.status.code(), Some(code), "stdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains(message), "expected {message:?} in: {}", text(&out.stderr));
}

#[test]
fn a_firing_alert_is_acknowledged_and_silenced_by_an_operator_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = fleet_of_one(dir.path());
    let c = &fleet.collector;

    let alert = eventually("the file rule to fire for the agent's host", || {
        let listed = json(c.census(&["alerts", "--state", "firing", "--output", "json"]));
        listed.as_array().expect("a list").iter().find(|a| a["rule"] == RULE && a["host_id"] == fleet.agent_id.as_str()).cloned()
    });
    assert_eq!(alert["hostname"], fleet.hostname.as_str());
    assert_eq!((alert["state"].as_str(), alert["severity"].as_str()), (Some("firing"), Some("critical")));
    assert_eq!(alert["labels"]["alertname"], RULE);
    let fingerprint = alert["fingerprint"].as_str().expect("fingerprint").to_string();
    assert_eq!(fingerprint.len(), 64);
    let id = &fingerprint[..12];

    let table = ok(c.census(&["alerts"]));
    let row = table.lines().find(|l| l.trim_start().starts_with(id)).unwrap_or_else(|| panic!("no row for {id}:\n{table}"));
    assert!(row.contains("firing") && row.contains("critical") && row.contains(RULE) && row.contains(&fleet.hostname), "{row}");
    let csv = ok(c.census(&["alerts", "--output", "csv"]));
    assert!(csv.starts_with("fingerprint,state,severity,rule,host_id,hostname,"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with(&format!("{fingerprint},firing,critical,{RULE},{},", fleet.agent_id))), "{csv}");

    // Acknowledging needs the operator role; the ack names the operator's token.
    refused(c.census_with_token(Some(&fleet.viewer.0), &["ack", id, "--comment", "mine"]), EXIT_NOPERM, "needs the operator role");
    let acked = ok(c.census_with_token(Some(&fleet.operator.0), &["ack", id, "--comment", "on it"]));
    assert_eq!(acked, format!("acknowledged {id} ({RULE} on {}) as {}\n", fleet.hostname, fleet.operator.1));
    let shown = json(c.census(&["alert", id, "--output", "json"]));
    assert_eq!(shown["alert"]["acknowledged_by"], fleet.operator.1.as_str());
    assert_eq!(shown["alert"]["acknowledged_comment"], "on it");
    assert_eq!(shown["tickets"], Value::Array(Vec::new()), "no ticketing sink is configured");
    let detail = ok(c.census_with_token(Some(&fleet.viewer.0), &["alert", &fingerprint[..6]]));
    assert!(detail.contains(&format!("by {}", fleet.operator.1)) && detail.contains("on it") && detail.contains("alertname"), "{detail}");
    refused(c.census(&["alert", "0000000000"]), EXIT_FAILURE, "not found: no alert with id 0000000000");
    refused(c.census(&["alert", "abc"]), EXIT_USAGE, "at least 6 characters");

    // A silence: refused to a viewer, added by the operator, seen by the
    // next evaluation, then expired.
    let matcher = format!("alertname={RULE}");
    refused(c.census_with_token(Some(&fleet.viewer.0), &["silence", "add", &matcher, "--duration", "1h"]), EXIT_NOPERM, "operator role");
    let silence = json(c.census_with_token(
        Some(&fleet.operator.0),
        &["silence", "add", &matcher, "--duration", "1h", "--comment", "e2e", "--output", "json"],
    ));
    let silence_id = silence["id"].as_str().expect("silence id").to_string();
    assert_eq!((silence["state"].as_str(), silence["created_by"].as_str()), (Some("active"), Some(fleet.operator.1.as_str())));
    let listed = json(c.census(&["silence", "list", "--output", "json"]));
    let entry = listed.as_array().expect("a list").iter().find(|s| s["id"] == silence_id.as_str()).expect("listed").clone();
    assert_eq!(entry["matchers"], serde_json::json!([matcher]));
    eventually("the next evaluation to mark the alert silenced", || {
        let shown = json(c.census(&["alert", id, "--output", "json"]));
        shown["alert"]["silenced_by"].as_array().is_some_and(|s| s.iter().any(|x| x == silence_id.as_str())).then_some(())
    });
    assert!(ok(c.census(&["alerts"])).lines().any(|l| l.trim_start().starts_with(id) && l.contains("acked, silenced")));
    refused(c.census_with_token(Some(&fleet.viewer.0), &["silence", "expire", &silence_id]), EXIT_NOPERM, "operator role");
    let expired = ok(c.census_with_token(Some(&fleet.operator.0), &["silence", "expire", &silence_id]));
    assert!(expired.starts_with(&format!("silence {silence_id} expired")), "{expired}");
    let listed = ok(c.census(&["silence", "list"]));
    assert!(listed.lines().any(|l| l.trim_start().starts_with(&silence_id) && l.contains("expired")), "{listed}");
    refused(c.census(&["silence", "expire", "no-such-silence"]), EXIT_FAILURE, "no silence with id");
    refused(c.census(&["silence", "add", "alertname", "--duration", "1h"]), EXIT_USAGE, "expected label=value");
}

#[test]
fn rules_are_listed_tested_added_and_deleted_and_the_outbox_is_readable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = fleet_of_one(dir.path());
    let c = &fleet.collector;

    let listed = json(c.census_with_token(Some(&fleet.viewer.0), &["rules", "list", "--output", "json"]));
    let source = |listed: &Value, name: &str| {
        listed["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["source"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(source(&listed, RULE).as_deref(), Some("file"));
    assert_eq!(source(&listed, "host-offline").as_deref(), Some("default"));
    assert_eq!(listed["rule_file_error"], Value::Null);
    let table = ok(c.census(&["rules", "list"]));
    assert!(table.lines().any(|l| l.trim_start().starts_with(RULE) && l.contains("file") && l.contains("software_missing")), "{table}");

    // `rules test`: what would fire, evaluated now, stored nowhere.
    let candidates = dir.path().join("candidates.toml");
    std::fs::write(
        &candidates,
        "[[rule]]\nname = \"would-fire\"\nwhen = { kind = \"software_missing\", package = \"census-e2e-other-absent\" }\n\
         [[rule]]\nname = \"would-wait\"\nfor = \"1h\"\nwhen = { kind = \"software_missing\", package = \"census-e2e-other-absent\" }\n\
         [[rule]]\nname = \"never\"\nwhen = { kind = \"software_missing\", package = \"*\" }\n",
    )
    .expect("candidates");
    let candidates = candidates.to_str().expect("utf-8 temp path");
    let tested = json(c.census_with_token(Some(&fleet.viewer.0), &["rules", "test", candidates, "--output", "json"]));
    let mut seen: Vec<(String, String, String)> = tested
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            (a["rule"].as_str().unwrap_or("").into(), a["state"].as_str().unwrap_or("").into(), a["host_id"].as_str().unwrap_or("").into())
        })
        .collect();
    seen.sort();
    let id = fleet.agent_id.clone();
    assert_eq!(seen, vec![("would-fire".into(), "firing".into(), id.clone()), ("would-wait".into(), "pending".into(), id)]);
    let table = ok(c.census(&["rules", "test", candidates]));
    assert!(table.contains("would-fire") && table.contains("nothing was stored or notified"), "{table}");
    let alerts = json(c.census(&["alerts", "--output", "json"]));
    assert!(!alerts.as_array().expect("a list").iter().any(|a| a["rule"] == "would-fire"), "a test stores nothing: {alerts}");
    refused(c.census(&["rules", "test", "/nonexistent/rules.toml"]), EXIT_USAGE, "reading /nonexistent/rules.toml");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[rule]]\nname = \"x\"\nwhen = { kind = \"software_missing\" }\n").expect("broken");
    refused(c.census(&["rules", "test", broken.to_str().expect("utf-8")]), EXIT_USAGE, "line 3");

    // `rules add` needs the admin role; the rule is then in force as an API rule.
    let api_rule = dir.path().join("api-rule.toml");
    std::fs::write(&api_rule, "[[rule]]\nname = \"e2e-api\"\nseverity = \"info\"\nwhen = { kind = \"software_forbidden\", package = \"census-e2e-absent-package\" }\n")
        .expect("api rule");
    let api_rule = api_rule.to_str().expect("utf-8");
    refused(c.census_with_token(Some(&fleet.operator.0), &["rules", "add", api_rule]), EXIT_NOPERM, "needs the admin role");
    let added = ok(c.census(&["rules", "add", api_rule]));
    assert!(added.starts_with("rule e2e-api saved (source api"), "{added}");
    assert_eq!(source(&json(c.census(&["rules", "list", "--output", "json"])), "e2e-api").as_deref(), Some("api"));
    let clash = dir.path().join("clash.toml");
    std::fs::write(&clash, format!("[[rule]]\nname = \"{RULE}\"\nwhen = {{ kind = \"software_missing\", package = \"x\" }}\n"))
        .expect("clash");
    refused(
        c.census(&["rules", "add", clash.to_str().expect("utf-8")]),
        EXIT_USAGE,
        "defined both in the rule file and through the admin API",
    );
    refused(c.census_with_token(Some(&fleet.operator.0), &["rules", "delete", "e2e-api"]), EXIT_NOPERM, "needs the admin role");
    refused(c.census(&["rules", "delete", RULE]), EXIT_FAILURE, "was added through the admin API");
    ok(c.census(&["rules", "delete", "e2e-api"]));
    assert_eq!(source(&json(c.census(&["rules", "list", "--output", "json"])), "e2e-api"), None);

    // No sink is configured: the outbox is empty, in every format.
    assert!(ok(c.census_with_token(Some(&fleet.viewer.0), &["outbox"])).starts_with("no outbox entries"));
    assert_eq!(json(c.census(&["outbox", "--state", "dead", "--limit", "5", "--output", "json"])), serde_json::json!([]));
    let csv = ok(c.census(&["outbox", "--output", "csv"]));
    assert_eq!(csv.lines().count(), 1, "the header only: {csv}");
    refused(c.census_with_token(Some(&fleet.viewer.0), &["outbox", "retry", "1"]), EXIT_NOPERM, "operator role");
    refused(c.census_with_token(Some(&fleet.operator.0), &["outbox", "retry", "1"]), EXIT_FAILURE, "no outbox entry 1");
    refused(c.census(&["outbox", "retry", "1", "--output", "csv"]), EXIT_USAGE, "--output csv is for listings");
}

#[test]
fn the_rule_file_is_reloaded_on_change_and_a_bad_edit_is_refused_with_file_line_and_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = fleet_of_one(dir.path());
    let c = &fleet.collector;
    let rules = dir.path().join("rules.toml");
    let listed = || json(c.census(&["rules", "list", "--output", "json"]));
    let names = |listed: &Value| -> Vec<String> {
        listed["rules"].as_array().expect("rules").iter().filter_map(|r| r["name"].as_str().map(str::to_string)).collect()
    };

    // A good edit: the new rule is in force without a restart.
    let good = format!(
        "[[rule]]\nname = \"{RULE}\"\nwhen = {{ kind = \"software_missing\", package = \"census-e2e-absent-package\" }}\n\
         [[rule]]\nname = \"e2e-reloaded\"\nwhen = {{ kind = \"software_forbidden\", package = \"census-e2e-absent-package\" }}\n"
    );
    std::fs::write(&rules, &good).expect("good edit");
    eventually("the reloaded rule to be in force", || names(&listed()).contains(&"e2e-reloaded".to_string()).then_some(()));

    // A bad edit: refused whole, the error names the file, the line and the
    // rule, and the rules in force stay.
    std::fs::write(
        &rules,
        format!("{good}[[rule]]\nname = \"e2e-broken\"\nseverity = \"loud\"\nwhen = {{ kind = \"software_missing\", package = \"x\" }}\n"),
    )
    .expect("bad edit");
    let error = eventually("the rule file error to be shown", || listed()["rule_file_error"].as_str().map(str::to_string));
    for needle in [rules.display().to_string().as_str(), "line 9", "rule \"e2e-broken\"", "loud"] {
        assert!(error.contains(needle), "the error lacks {needle:?}: {error}");
    }
    let in_force = names(&listed());
    assert!(in_force.contains(&"e2e-reloaded".to_string()) && !in_force.contains(&"e2e-broken".to_string()), "{in_force:?}");
    let shown = ok(c.census(&["rules", "list"]));
    assert!(shown.contains("line 9"), "the table shows the rule file error too:\n{shown}");
}
