//! The service-desk feed end to end, against real receivers on loopback:
//! Request Tracker 5 (REST 2), Prometheus Alertmanager and an SMTP server
//! (aiosmtpd), all from Debian's packages (`.ci/run` installs them).
//!
//! The condition is a fixture metric, not a real full disk: the agent
//! reports `custom.census_e2e_fill` from a text file the test writes
//! (docs/custom-metrics.md), and a test rule watches it like a disk.

use std::path::{Path, PathBuf};

use census_tests::peers::{Alertmanager, RequestTracker, Smtp};
use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

const RULE: &str = r#"
[[rule]]
name = "e2e-volume-full"
severity = "critical"
keep_firing_for = "0s"
when = { kind = "metric", metric = "custom.census_e2e_fill", op = ">", threshold = 90 }
summary = "{{host}}: test volume {{value}}% full"
description = "The test volume of {{host}} is above {{threshold}}%."
runbook_url = "https://wiki.example/runbooks/volume-full"
"#;

struct Setup {
    collector: Collector,
    _agent: Agent,
    textfiles: PathBuf,
    hostname: String,
}

/// Writes the fixture metric atomically (temporary name, then rename).
fn set_fill(textfiles: &Path, value: u32) {
    let tmp = textfiles.join(".fill.prom.tmp");
    std::fs::write(&tmp, format!("census_e2e_fill {value}\n")).expect("textfile");
    std::fs::rename(&tmp, textfiles.join("fill.prom")).expect("rename");
}

/// A collector with the test rule and `sinks` (TOML), and one real agent
/// reporting the fixture metric every second.
fn start(dir: &Path, sinks: &str) -> Setup {
    let textfiles = dir.join("textfile");
    std::fs::create_dir(&textfiles).expect("textfile dir");
    set_fill(&textfiles, 95);
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, RULE).expect("rules");
    let collector = Collector::start(
        dir,
        &format!(
            "[agents]\nheartbeat_interval = \"1s\"\n\n[alerts]\nrules_file = {:?}\ndefault_rules = false\nevaluation_interval = \"500ms\"\n\n[notify]\ninitial_backoff = \"200ms\"\nmax_backoff = \"2s\"\n\n{sinks}",
            rules.display().to_string()
        ),
    );
    let (mut agent, out) = Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll: {}", text(&out.stderr));
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!("health_interval = \"1s\"\nhealth_batch_interval = \"1s\"\nhealth_textfile_dir = {:?}\n", textfiles.display().to_string()),
    )
    .expect("agent config");
    agent.run(&["--config", config.to_str().expect("utf-8 path")]);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim().to_string();
    Setup { collector, _agent: agent, textfiles, hostname }
}

fn alerts(collector: &Collector, state: &str) -> Vec<Value> {
    let out = collector.census(&["alerts", "--state", state, "--output", "json"]);
    assert!(out.status.success(), "census alerts: {}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).expect("json").as_array().expect("a list").clone()
}

fn outbox(collector: &Collector) -> Vec<Value> {
    let out = collector.census(&["outbox", "--output", "json"]);
    assert!(out.status.success(), "census outbox: {}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).expect("json").as_array().expect("a list").clone()
}

fn delivered(collector: &Collector, transition: &str) -> usize {
    outbox(collector).iter().filter(|e| e["state"] == "delivered" && e["transition"] == transition).count()
}

#[test]
fn request_tracker_gets_one_ticket_per_problem_across_a_restart_and_it_is_resolved() {
    let rt = RequestTracker::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("rt.token");
    std::fs::write(&token, &rt.token).expect("token file");
    let mut s = start(
        dir.path(),
        &format!(
            "[[sink]]\nname = \"servicedesk\"\nkind = \"rt\"\nurl = \"{}\"\nqueue = \"General\"\ntoken_file = {:?}\n",
            rt.url,
            token.display().to_string()
        ),
    );

    // Firing: exactly one ticket, saying what, where, how bad and what to do.
    let tickets = eventually("an RT ticket for the firing alert", || Some(rt.tickets("Queue = 'General'")).filter(|t| !t.is_empty()));
    assert_eq!(tickets.len(), 1, "one ticket: {tickets:#?}");
    let id = tickets[0]["id"].as_str().map(str::to_string).unwrap_or_else(|| tickets[0]["id"].to_string());
    let ticket = rt.ticket(&id);
    let subject = ticket["Subject"].as_str().expect("subject");
    assert!(subject.contains(&s.hostname) && subject.contains("95"), "subject names host and value: {subject}");
    let created = rt.history(&id).into_iter().find(|t| t["Type"] == "Create").expect("a Create transaction");
    let body = created["Content"].as_str().expect("content");
    for needle in
        [s.hostname.as_str(), "Value: 95 (threshold 90)", "Rule: e2e-volume-full", "Runbook: https://wiki.example/runbooks/volume-full"]
    {
        assert!(body.contains(needle), "the ticket's text lacks {needle:?}:\n{body}");
    }
    let fingerprint = eventually("the firing delivery recorded", || alerts(&s.collector, "firing").first().cloned())["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    eventually("the firing delivery recorded in the outbox", || (delivered(&s.collector, "firing") == 1).then_some(()));

    // Restart the collector while the problem lasts: the alert, its ticket
    // and the outbox survive; no second ticket.
    s.collector.proc.take().expect("running").kill();
    s.collector.serve();
    let firing = eventually("the alert to be firing after the restart", || alerts(&s.collector, "firing").first().cloned());
    assert_eq!(firing["fingerprint"].as_str(), Some(fingerprint.as_str()), "the same alert, not a new one");

    // The condition clears: the same ticket gets a comment and is resolved.
    set_fill(&s.textfiles, 10);
    let resolved = eventually("the ticket to be resolved", || {
        let t = rt.ticket(&id);
        (t["Status"] == "resolved").then_some(t)
    });
    assert_eq!(resolved["Status"], "resolved");
    let history = rt.history(&id);
    let comment = history.iter().find(|t| t["Type"] == "Comment").expect("a comment before the resolution");
    assert!(comment["Content"].as_str().unwrap_or("").contains("Resolved at"), "{comment:#}");
    assert_eq!(rt.tickets("Queue = 'General'").len(), 1, "still exactly one ticket");
    eventually("the resolution recorded in the outbox", || (delivered(&s.collector, "resolved") == 1).then_some(()));
    assert_eq!(delivered(&s.collector, "firing"), 1, "the firing was delivered once, across the restart");

    // The ticket's history as RT reports it (shown with --nocapture).
    println!("RT ticket {id} history:");
    for t in &history {
        println!(
            "  {} {:<10} {} {} -> {} {}",
            t["Created"].as_str().unwrap_or(""),
            t["Type"].as_str().unwrap_or(""),
            t["Field"].as_str().unwrap_or(""),
            t["OldValue"].as_str().unwrap_or(""),
            t["NewValue"].as_str().unwrap_or(""),
            t["Content"].as_str().unwrap_or("").lines().next().unwrap_or("")
        );
    }
}

#[test]
fn alertmanager_and_email_receive_the_alert_and_its_resolution() {
    let am = Alertmanager::start();
    let smtp = Smtp::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let s = start(
        dir.path(),
        &format!(
            "[[sink]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{}\"\n\n[[sink]]\nname = \"oncall-mail\"\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"census@example.org\"\nto = [\"oncall@example.org\"]\n",
            am.url, smtp.port
        ),
    );

    // Alertmanager holds the alert, with our labels and annotations.
    let in_am =
        eventually("the alert in Alertmanager's API", || am.alerts().into_iter().find(|a| a["labels"]["alertname"] == "e2e-volume-full"));
    assert_eq!(in_am["labels"]["host"].as_str(), Some(s.hostname.as_str()));
    assert_eq!(in_am["labels"]["severity"], "critical");
    assert_eq!(in_am["annotations"]["runbook_url"], "https://wiki.example/runbooks/volume-full");
    assert_eq!(in_am["status"]["state"], "active");

    // The mail arrived, to the configured recipient.
    let firing_mail = smtp.wait_messages(1).remove(0);
    let subject = firing_mail.header("subject").expect("subject");
    assert!(subject.contains("[FIRING]") && subject.contains(&s.hostname), "{subject}");
    assert_eq!(firing_mail.header("x-rcptto"), Some("oncall@example.org"));
    assert!(firing_mail.body.contains("95"), "{}", firing_mail.body);

    // Clears: Alertmanager resolves it (it leaves the API and Alertmanager
    // notifies its receiver "resolved"), and a RESOLVED mail follows.
    set_fill(&s.textfiles, 10);
    eventually("the alert to leave Alertmanager", || {
        (!am.alerts().iter().any(|a| a["labels"]["alertname"] == "e2e-volume-full")).then_some(())
    });
    eventually("Alertmanager's resolved notification", || {
        am.notifications().into_iter().find(|n| n["status"] == "resolved" && n["commonLabels"]["alertname"] == "e2e-volume-full")
    });
    let mails = smtp.wait_messages(2);
    let resolved = mails[1].header("subject").expect("subject");
    assert!(resolved.contains("[RESOLVED]"), "{resolved}");
    assert_eq!(mails.len(), 2, "one mail per transition");
    drop(s);
}
