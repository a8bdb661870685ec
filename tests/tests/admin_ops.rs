//! Admin operations end to end, through the real `census` CLI, the real
//! agent and the HTTP API: enrollment secrets created, listed and expired
//! online (an agent enrolls with a fresh one; an expired or revoked one is
//! refused with a clear error and nothing stored), admin tokens created,
//! listed and revoked with their roles (refused at once over gRPC and
//! HTTP), the audit log of it all, and the asset register export checked
//! against `census hosts`.

use std::path::Path;

use census_tests::sim::Enroller;
use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

fn json_of(out: &std::process::Output, what: &str) -> Value {
    assert!(out.status.success(), "{what}: exit {:?}: {}", out.status.code(), text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", text(&out.stdout)))
}

/// A blocking HTTPS client trusting only the collector's CA.
fn http(ca: &Path) -> ureq::Agent {
    census_tests::https_client(ca)
}

/// (status, body) of an HTTP call.
fn call(agent: &ureq::Agent, method: &str, url: &str, token: &str) -> (u16, String) {
    match agent.request(method, url).set("Authorization", &format!("Bearer {token}")).call() {
        Ok(r) => (r.status(), r.into_string().expect("body")),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().expect("body")),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// Enrolls the real agent binary into `dir` with `secret`.
fn enroll(dir: &Path, collector: &Collector, secret: &str) -> (Agent, std::process::Output) {
    std::fs::create_dir_all(dir).expect("agent dir");
    Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, secret)
}

#[test]
fn secrets_tokens_audit_and_export() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");

    // A secret created online; the real agent enrolls with it.
    let created = json_of(&collector.census(&["secrets", "create", "--name", "site-a", "--expires", "1h", "-o", "json"]), "create");
    let secret = created["secret"].as_str().expect("the secret, shown once").to_string();
    let site_a = created["info"]["id"].as_str().expect("id").to_string();
    assert_eq!(created["info"]["state"], "active");
    let (mut agent, out) = enroll(&dir.path().join("a"), &collector, &secret);
    assert!(out.status.success(), "enroll with a fresh secret: {}", text(&out.stderr));
    agent.run(&[]);
    let host = eventually("the host with its inventory", || {
        collector.hosts().into_iter().find(|h| h["memory_total_bytes"].as_u64().unwrap_or(0) > 0)
    });

    let listed = json_of(&collector.census(&["secrets", "list", "-o", "json"]), "list");
    let row = listed.as_array().expect("array").iter().find(|s| s["id"] == site_a.as_str()).expect("listed").clone();
    assert_eq!((row["name"].as_str(), row["uses"].as_u64(), row["state"].as_str()), (Some("site-a"), Some(1), Some("active")));
    assert!(!text(&collector.census(&["secrets", "list"]).stdout).contains(&secret), "never the secret itself");

    // A secret past its expiry: refused with the reason, nothing stored.
    let short = json_of(&collector.census(&["secrets", "create", "--name", "short", "--expires", "2s", "-o", "json"]), "create");
    let short_secret = short["secret"].as_str().expect("secret").to_string();
    let short_id = short["info"]["id"].as_str().expect("id").to_string();
    eventually("the short secret to expire", || {
        let listed = json_of(&collector.census(&["secrets", "list", "-o", "json"]), "list");
        listed.as_array()?.iter().any(|s| s["id"] == short_id.as_str() && s["state"] == "expired").then_some(())
    });
    let before = collector.hosts();
    let (_, out) = enroll(&dir.path().join("b"), &collector, &short_secret);
    assert!(!out.status.success(), "an expired secret enrolled");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("enrollment secret {short_id} (\"short\") expired at")), "{stderr}");
    assert!(!dir.path().join("b/agent-state/agent.toml").exists(), "the agent kept no identity");
    let after = collector.hosts();
    let same = |h: &Value| (h["agent_id"].clone(), h["certificate_sha256"].clone(), h["enrolled_at_unix_ms"].clone());
    assert_eq!(after.iter().map(same).collect::<Vec<_>>(), before.iter().map(same).collect::<Vec<_>>(), "nothing stored");

    // Expired by hand (a leaked secret): refused too; the agent it enrolled keeps reporting.
    let expired = json_of(&collector.census(&["secrets", "expire", &site_a, "-o", "json"]), "expire");
    assert_eq!((expired["already_revoked"].as_bool(), expired["info"]["state"].as_str()), (Some(false), Some("revoked")));
    let (_, out) = enroll(&dir.path().join("c"), &collector, &secret);
    assert!(!out.status.success(), "a revoked secret enrolled");
    assert!(text(&out.stderr).contains("has been revoked by an administrator"), "{}", text(&out.stderr));
    let seq = host["last_seq"].as_u64().expect("seq");
    eventually("the enrolled agent reporting on", || collector.hosts().into_iter().find(|h| h["last_seq"].as_u64() > Some(seq + 1)));

    // Tokens with roles.
    let viewer = json_of(&collector.census(&["tokens", "create", "--name", "dashboards", "--role", "viewer", "-o", "json"]), "token");
    let viewer_token = viewer["token"].as_str().expect("token").to_string();
    let viewer_id = viewer["info"]["id"].as_str().expect("id").to_string();
    let ops = json_of(&collector.census(&["tokens", "create", "--name", "on-call", "--role", "operator", "-o", "json"]), "token");
    let ops_token = ops["token"].as_str().expect("token").to_string();
    let ops_id = ops["info"]["id"].as_str().expect("id").to_string();
    let denied = collector.census_with_token(Some(&viewer_token), &["tokens", "create", "--name", "x", "--role", "admin"]);
    assert_eq!(denied.status.code(), Some(77), "a viewer cannot create tokens: {}", text(&denied.stderr));
    assert!(text(&denied.stderr).contains("permission denied: this call needs the admin role"), "{}", text(&denied.stderr));
    let tokens = json_of(&collector.census(&["tokens", "list", "-o", "json"]), "tokens");
    let roles: Vec<(&str, &str, bool)> = tokens
        .as_array()
        .expect("array")
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or(""), t["role"].as_str().unwrap_or(""), t["revoked"].as_bool().unwrap_or(true)))
        .collect();
    for expected in [("dashboards", "viewer", false), ("on-call", "operator", false), ("initial admin", "admin", false)] {
        assert!(roles.contains(&expected), "{expected:?} in {roles:?}");
    }
    let ok = collector.census_with_token(Some(&viewer_token), &["hosts"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));

    // Revoked over gRPC: refused at once on both APIs.
    let revoked = json_of(&collector.census(&["tokens", "revoke", &viewer_id, "-o", "json"]), "revoke");
    assert_eq!(revoked["info"]["revoked"], true);
    let refused = collector.census_with_token(Some(&viewer_token), &["hosts"]);
    assert_eq!(refused.status.code(), Some(77));
    assert!(text(&refused.stderr).contains("invalid or revoked admin token"), "{}", text(&refused.stderr));
    let web = http(&collector.init.ca);
    let base = collector.http_url();
    assert_eq!(call(&web, "GET", &format!("{base}/api/v1/hosts"), &viewer_token).0, 401);
    // Revoked over HTTP: the same.
    let (status, body) = call(&web, "POST", &format!("{base}/api/v1/tokens/{ops_id}/revoke"), &collector.init.admin_token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(collector.census_with_token(Some(&ops_token), &["alerts"]).status.code(), Some(77));
    // The last admin token stays.
    let admin_id =
        tokens.as_array().expect("array").iter().find(|t| t["role"] == "admin").expect("admin")["id"].as_str().expect("id").to_string();
    let last = collector.census(&["tokens", "revoke", &admin_id]);
    assert_eq!(last.status.code(), Some(1), "{}", text(&last.stderr));
    assert!(text(&last.stderr).contains("last active admin token"), "{}", text(&last.stderr));

    // The audit log: who, what, when, from where; the refusal too.
    let audit = json_of(&collector.census(&["audit", "--since", "1h", "-o", "json"]), "audit");
    let entries = audit.as_array().expect("array");
    let find = |action: &str, outcome: &str, target: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome && e["target"].as_str().is_some_and(|t| t.contains(target)))
            .unwrap_or_else(|| panic!("no {action} {outcome} {target} in {audit:#}"))
    };
    let admin_name = "initial admin";
    for (action, outcome, target, api) in [
        ("secret.create", "ok", "site-a", "grpc"),
        ("secret.create", "ok", "short", "grpc"),
        ("secret.expire", "ok", site_a.as_str(), "grpc"),
        ("token.create", "ok", "dashboards", "grpc"),
        ("token.revoke", "ok", viewer_id.as_str(), "grpc"),
        ("token.revoke", "ok", ops_id.as_str(), "http"),
        ("token.revoke", "failed", admin_id.as_str(), "grpc"),
    ] {
        let e = find(action, outcome, target);
        assert_eq!(
            (e["token_id"].as_str(), e["token_name"].as_str(), e["role"].as_str()),
            (Some(admin_id.as_str()), Some(admin_name), Some("admin"))
        );
        assert_eq!(e["api"], api, "{e}");
        assert!(e["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")), "from where: {e}");
        assert!(e["at_unix_ms"].as_i64().is_some_and(|t| t > 0), "when: {e}");
    }
    let refusal = find("token.create", "refused", "x");
    assert_eq!((refusal["token_id"].as_str(), refusal["role"].as_str()), (Some(viewer_id.as_str()), Some("viewer")));
    assert!(refusal["detail"].as_str().is_some_and(|d| d.contains("needs the admin role")), "{refusal}");
    let only = json_of(&collector.census(&["audit", "--actor", &viewer_id, "-o", "json"]), "audit --actor");
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only}");
    let family = json_of(&collector.census(&["audit", "--action", "secret.", "-o", "json"]), "audit --action");
    assert_eq!(family.as_array().map(Vec::len), Some(3), "{family}");
    let (status, _) = call(&web, "GET", &format!("{base}/api/v1/audit"), &ops_token);
    assert_eq!(status, 401, "revoked");

    // The export: a row per host, the same hosts as `census hosts`.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let enroller = Enroller::new(&collector);
    runtime.block_on(enroller.enroll_many("sim", 3, "0.0.1", 3));
    let hosts = collector.hosts();
    assert_eq!(hosts.len(), 4);
    let exported = collector.census(&["export", "--format", "json"]);
    let rows = json_of(&exported, "export json");
    let rows = rows.as_array().expect("array");
    let key = |h: &Value| (h["agent_id"].clone(), h["hostname"].clone(), h["memory_total_bytes"].clone(), h["agent_version"].clone());
    assert_eq!(rows.iter().map(key).collect::<Vec<_>>(), hosts.iter().map(key).collect::<Vec<_>>(), "same hosts, same order");
    assert_eq!(rows[0]["os"], hosts[0]["os"]);

    let csv_out = collector.census(&["export", "--format", "csv"]);
    assert!(csv_out.status.success(), "{}", text(&csv_out.stderr));
    let mut reader = csv::Reader::from_reader(csv_out.stdout.as_slice());
    let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    assert_eq!(&header[..2], ["agent_id", "hostname"]);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("an RFC 4180 record")).collect();
    let csv_ids: Vec<(&str, &str)> = records.iter().map(|r| (&r[0], &r[1])).collect();
    let host_ids: Vec<(&str, &str)> =
        hosts.iter().map(|h| (h["agent_id"].as_str().unwrap_or(""), h["hostname"].as_str().unwrap_or(""))).collect();
    assert_eq!(csv_ids, host_ids);

    let filtered = collector.census(&["export", "--format", "csv", "--filter", "agent.version = \"0.0.1\""]);
    assert!(filtered.status.success(), "{}", text(&filtered.stderr));
    assert_eq!(text(&filtered.stdout).lines().count(), 4, "header and the 3 simulated hosts: {}", text(&filtered.stdout));
    let bad = collector.census(&["export", "--format", "csv", "--filter", "memory.total <"]);
    assert_eq!(bad.status.code(), Some(64), "{}", text(&bad.stderr));
    assert!(bad.stdout.is_empty(), "nothing written before the filter was accepted");

    let (status, body) = call(&web, "GET", &format!("{base}/api/v1/export?format=csv"), &collector.init.admin_token);
    assert_eq!(status, 200, "{body}");
    let http_ids: Vec<String> = csv::Reader::from_reader(body.as_bytes()).records().map(|r| r.expect("record")[0].to_string()).collect();
    assert_eq!(http_ids, host_ids.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>());

    // Shown once, to the caller: never in the collector's log.
    let log = collector.proc.as_ref().expect("serving").stderr().join("\n");
    for (what, value) in
        [("secret", &secret), ("short secret", &short_secret), ("viewer token", &viewer_token), ("operator token", &ops_token)]
    {
        assert!(!log.contains(value.as_str()), "the {what} is in the collector's log");
    }
    assert!(log.contains("enrollment secret created") && log.contains("admin token revoked"), "the log names them by id");
    drop(agent);
}
