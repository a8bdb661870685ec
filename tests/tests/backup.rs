//! Backup and restore end to end: a backup taken through the admin API
//! while a real agent reports, restored into a new data directory, serves
//! what was stored up to the backup, and the agent carries on against it,
//! even though it renewed its certificate after the backup was taken.

use census_tests::{Agent, Collector, binary, eventually, run, text};
use serde_json::Value;

fn seq(host: &Value) -> u64 {
    host["last_seq"].as_u64().unwrap_or_else(|| panic!("last_seq in {host}"))
}

fn collector_json(args: &[&str], data_dir: &std::path::Path) -> Result<Value, String> {
    let out = run(std::process::Command::new(binary("census-collector")).args(args).arg("--data-dir").arg(data_dir));
    if !out.status.success() {
        return Err(format!("exit {:?}: {}", out.status.code(), text(&out.stderr)));
    }
    Ok(serde_json::from_slice(&out.stdout).expect("json"))
}

#[test]
fn a_backup_taken_while_serving_restores_a_collector_the_agent_carries_on_with() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 30 s certificates: the agent renews about 18 s after each issue.
    let mut collector = Collector::start(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\ncertificate_lifetime = \"30s\"\n");
    let (mut agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll failed: {}", text(&out.stderr));
    agent.run(&[]);
    let host = eventually("the host with its inventory", || {
        collector.hosts().into_iter().find(|h| h["memory_total_bytes"].as_u64() > Some(0) && seq(h) >= 3)
    });
    let agent_id = host["agent_id"].as_str().expect("id").to_string();
    let inventory: Value = serde_json::from_slice(&collector.census(&["host", &agent_id, "--output", "json"]).stdout).expect("host json");
    let package = inventory["inventory"]["software"]["packages"][0]["name"].as_str().map(str::to_string);

    // `census-collector backup` on the data directory of a running
    // collector: without a token it says what it needs ...
    let busy = collector_json(&["backup", "--json", "--out", &dir.path().join("offline").display().to_string()], &collector.init.data_dir)
        .expect_err("the store is the running collector's");
    assert!(busy.contains("exit Some(64)") && busy.contains("pass an admin token (--token or CENSUS_TOKEN)"), "{busy}");
    // ... and with one it asks the running collector (found through its
    // config), while the agent reports.
    let config = collector.config.display().to_string();
    let serving_file = dir.path().join("serving.census-backup");
    let seq_before_serving = seq(&collector.hosts()[0]);
    let serving = collector_json(
        &["backup", "--json", "--out", &serving_file.display().to_string(), "--config", &config, "--token", &collector.init.admin_token],
        &collector.init.data_dir,
    )
    .expect("backup of a serving collector");
    assert_eq!((serving["agents"].as_u64(), serving["bytes"].as_u64()), (Some(1), std::fs::metadata(&serving_file).map(|m| m.len()).ok()));
    let wrong = collector_json(
        &["backup", "--json", "--out", &dir.path().join("x").display().to_string(), "--config", &config, "--token", "census_tok_wrong"],
        &collector.init.data_dir,
    )
    .expect_err("a wrong token");
    assert!(wrong.contains("exit Some(77)") && wrong.contains("invalid or revoked admin token"), "{wrong}");
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.partial").exists(), "nothing left behind");
    let from_serving = dir.path().join("from-serving");
    let restored_serving =
        collector_json(&["restore", "--json", "--from", &serving_file.display().to_string()], &from_serving).expect("restore it");
    assert_eq!(restored_serving["agents"], 1);
    let offline_of_restored =
        collector_json(&["backup", "--json", "--out", &dir.path().join("again.census-backup").display().to_string()], &from_serving)
            .expect("the restored copy is a whole, stopped data directory");
    assert_eq!(offline_of_restored["agents"], 1);
    assert!(seq(&collector.hosts()[0]) >= seq_before_serving, "ingest went on");

    // Through the admin API, while the agent reports.
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).expect("backups dir");
    let seq_before = seq(&collector.hosts()[0]);
    let out = collector.census(&["backup", "--out", &backups.display().to_string(), "--output", "json"]);
    assert!(out.status.success(), "census backup: {}", text(&out.stderr));
    let after_backup = collector.hosts().into_iter().next().expect("host");
    let seq_after = seq(&after_backup);
    let taken: Value = serde_json::from_slice(&out.stdout).expect("json");
    let file = std::path::PathBuf::from(taken["file"].as_str().expect("file"));
    assert_eq!(file.parent(), Some(backups.as_path()), "a dated file in the directory");
    assert_eq!(taken["agents"], 1);
    let meta = std::fs::metadata(&file).expect("backup file");
    assert_eq!(taken["bytes"].as_u64(), Some(meta.len()));
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600, "it holds the CA key");
    assert_eq!(std::fs::read_dir(&backups).expect("list").count(), 1, "no partial file left");
    assert_eq!(
        std::fs::read_dir(collector.init.data_dir.join("backups")).expect("collector's backups dir").count(),
        0,
        "the collector deleted its copy once sent"
    );

    // The collector keeps ingesting, the agent renews its certificate (the
    // backup does not know the new one), then the collector is lost.
    eventually("reports after the backup", || collector.hosts().into_iter().find(|h| seq(h) > seq_after + 2));
    eventually("a renewal after the backup", || {
        collector.hosts().into_iter().find(|h| h["certificate_sha256"] != after_backup["certificate_sha256"])
    });
    collector.stop();
    // The agent is stopped too while the restored collector is inspected:
    // its spool would otherwise refill the store at once.
    agent.proc.as_mut().expect("running").kill();

    let restored_dir = dir.path().join("restored");
    let restored = collector_json(&["restore", "--json", "--from", &file.display().to_string()], &restored_dir).expect("restore");
    assert_eq!(restored["agents"], 1);
    let again = collector_json(&["restore", "--json", "--from", &file.display().to_string()], &restored_dir).expect_err("not twice");
    assert!(again.contains("exit Some(64)") && again.contains("already initialised"), "{again}");
    for (name, mode) in [("ca.key", 0o600), ("server.key", 0o600), ("ca.pem", 0o644)] {
        let meta = std::fs::metadata(restored_dir.join("pki").join(name)).expect("restored pki");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, mode, "{name}");
    }
    assert_eq!(
        std::fs::read(restored_dir.join("pki/ca.key")).expect("restored"),
        std::fs::read(collector.init.data_dir.join("pki/ca.key")).expect("original"),
        "the same CA"
    );

    let mut second = collector.with_data_dir(&restored_dir, &dir.path().join("restored.toml"));
    second.serve();
    // What was stored up to the backup is there (the same admin token works).
    let host = second.hosts().into_iter().next().expect("the host is restored");
    assert_eq!(host["agent_id"].as_str(), Some(agent_id.as_str()));
    let restored_seq = seq(&host);
    assert!((seq_before..=seq_after).contains(&restored_seq), "{seq_before} <= {restored_seq} <= {seq_after}");
    assert_eq!(host["memory_total_bytes"], inventory["summary"]["memory_total_bytes"]);
    let shown: Value = serde_json::from_slice(&second.census(&["host", &agent_id, "--output", "json"]).stdout).expect("host json");
    assert_eq!(shown["inventory"]["os"], inventory["inventory"]["os"], "inventory restored");
    if let Some(package) = package {
        let sw: Value = serde_json::from_slice(&second.census(&["software", &package, "--output", "json"]).stdout).expect("software json");
        let hosts: Vec<&str> = sw["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .flat_map(|v| v["hosts"].as_array().expect("hosts"))
            .filter_map(|h| h["agent_id"].as_str())
            .collect();
        assert!(hosts.contains(&agent_id.as_str()), "the software index is restored: {sw}");
    }

    agent.run(&[]);
    // The agent carries on against the restored collector: same CA; its
    // certificate, newer than the one the backup holds, is adopted; its
    // sequence goes on above what the backup holds.
    let resumed = eventually("the agent to report to the restored collector", || {
        second.hosts().into_iter().find(|h| seq(h) > seq_after + 2 && h["online"] == true)
    });
    second.proc.as_ref().expect("serving").wait_stderr(&["adopted a certificate this CA issued after the stored one", &agent_id]);
    assert_eq!(resumed["agent_id"].as_str(), Some(agent_id.as_str()));
    assert_eq!(second.hosts().len(), 1);
    let listed = second.census(&["hosts"]);
    assert!(text(&listed.stdout).contains(&agent_id[..12]), "{}", text(&listed.stdout));

    // And a stopped collector is backed up offline.
    second.stop();
    let offline =
        collector_json(&["backup", "--json", "--out", &dir.path().join("offline.census-backup").display().to_string()], &restored_dir)
            .expect("offline backup");
    assert_eq!(offline["agents"], 1);
}
