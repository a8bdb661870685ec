//! Certificate lifecycle end to end: an agent renews its client
//! certificate by itself and reports past the first one's expiry; a
//! revoked agent is refused while others carry on; the server certificate
//! is rotated under running agents.

use census_proto::v1 as pb;
use census_tests::sim::Enroller;
use census_tests::{Agent, Collector, binary, eventually, pem_certificate, run, served_certificate, text};
use serde_json::Value;

fn the_host(collector: &Collector) -> Value {
    let hosts = collector.hosts();
    assert_eq!(hosts.len(), 1, "one host: {hosts:?}");
    hosts.into_iter().next().expect("one host")
}

fn num(v: &Value, field: &str) -> i64 {
    v[field].as_i64().unwrap_or_else(|| panic!("{field} in {v}"))
}

fn enrolled(dir: &std::path::Path, collector: &Collector) -> Agent {
    let (agent, out) = Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll failed: {}", text(&out.stderr));
    agent
}

#[test]
fn an_agent_renews_its_certificate_and_reports_past_the_first_ones_expiry() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 15 s certificates: backdated 3.75 s, renewed when 33 % of 18.75 s
    // (6.2 s) is left, about 9 s after issue.
    let collector = Collector::start(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\ncertificate_lifetime = \"15s\"\n");
    let mut agent = enrolled(dir.path(), &collector);
    let first = the_host(&collector);
    let first_pem = std::fs::read(agent.state_dir.join("agent.pem")).expect("certificate");
    let first_key = std::fs::read(agent.state_dir.join("agent.key")).expect("key");
    let first_not_after = num(&first, "certificate_not_after_unix_ms");
    assert!(first_not_after > 0 && !first["certificate_sha256"].as_str().unwrap_or("").is_empty(), "{first}");

    agent.run(&[]);
    let renewed = eventually("the agent to renew its certificate", || {
        collector.hosts().into_iter().find(|h| h["certificate_sha256"] != first["certificate_sha256"])
    });
    agent.proc().wait_stderr(&["client certificate renewed"]);
    assert_eq!(renewed["agent_id"], first["agent_id"], "same agent");
    assert_eq!(renewed["enrolled_at_unix_ms"], first["enrolled_at_unix_ms"], "not enrolled again");
    assert!(num(&renewed, "certificate_not_after_unix_ms") > first_not_after);
    assert_ne!(std::fs::read(agent.state_dir.join("agent.pem")).expect("certificate"), first_pem);
    assert_ne!(std::fs::read(agent.state_dir.join("agent.key")).expect("key"), first_key, "a new key, made on the endpoint");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(agent.state_dir.join("agent.key")).expect("key").permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Reports go on after the first certificate expired, from the same
    // agent whose sequence never restarted (an enrollment restarts it).
    let later = eventually("a report after the first certificate expired", || {
        collector.hosts().into_iter().find(|h| num(h, "last_seen_unix_ms") > first_not_after + 1_000)
    });
    assert_eq!(later["agent_id"], first["agent_id"]);
    assert_eq!(later["enrolled_at_unix_ms"], first["enrolled_at_unix_ms"]);
    assert!(later["last_seq"].as_u64() > renewed["last_seq"].as_u64(), "{renewed}\n{later}");
    assert_eq!(num(&later, "reports_stored") as u64, later["last_seq"].as_u64().expect("seq"), "nothing lost or restarted");
    assert_eq!(collector.hosts().len(), 1);

    // The first certificate works no more: retired once the new one was
    // used, and expired by now anyway.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let refused = rt.block_on(async {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
        let ca = std::fs::read_to_string(&collector.init.ca).expect("ca");
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).identity(Identity::from_pem(&first_pem, &first_key));
        let channel = Endpoint::from_shared(collector.agent_url()).expect("url").tls_config(tls).expect("tls").connect_lazy();
        let heartbeat =
            pb::Report { seq: 1_000_000, created_at_unix_ms: 0, body: Some(pb::report::Body::Heartbeat(pb::Heartbeat::default())) };
        let agent_id = first["agent_id"].as_str().expect("id").to_string();
        pb::agent_service_client::AgentServiceClient::new(channel)
            .report(pb::ReportRequest { agent_id, reports: vec![heartbeat] })
            .await
            .expect_err("the first certificate must be refused")
    });
    if refused.code() == tonic::Code::Unauthenticated {
        assert!(refused.message().contains("no longer registered"), "{refused:?}");
    }
    assert!(the_host(&collector)["last_seq"].as_u64() < Some(1_000_000), "nothing stored from the old certificate");
}

#[test]
fn a_revoked_agent_is_refused_at_its_next_report_and_others_carry_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut collector = Collector::prepare(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    let (operator, _) = collector.create_token("operator");
    collector.serve();
    let mut agent = enrolled(dir.path(), &collector);
    agent.run(&[]);
    let host = eventually("the agent's first reports", || collector.hosts().into_iter().find(|h| h["last_seq"].as_u64() >= Some(2)));
    let agent_id = host["agent_id"].as_str().expect("id").to_string();

    // Another host, simulated in-process over the real agent API.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let enroller = Enroller::new(&collector);
    let other = rt.block_on(enroller.enroll("other-host", "0.1.0"));
    let report = |seq: u64| {
        rt.block_on(async {
            let mut client = pb::agent_service_client::AgentServiceClient::new(enroller.channel(&other).await);
            let heartbeat = pb::Report { seq, created_at_unix_ms: 0, body: Some(pb::report::Body::Heartbeat(pb::Heartbeat::default())) };
            client.report(pb::ReportRequest { agent_id: other.agent_id.clone(), reports: vec![heartbeat] }).await
        })
    };
    assert_eq!(report(1).expect("the other host reports").into_inner().acked_through, 1);

    let refused = collector.census_with_token(Some(&operator), &["agents", "revoke", &agent_id]);
    assert_eq!(refused.status.code(), Some(77), "an operator cannot revoke: {}", text(&refused.stderr));
    let by_name = collector.census(&["agents", "revoke", host["hostname"].as_str().expect("hostname")]);
    assert_eq!(by_name.status.code(), Some(64), "a hostname is not an agent id: {}", text(&by_name.stderr));
    assert!(text(&by_name.stderr).contains("a hostname is not accepted"), "{}", text(&by_name.stderr));

    let out = collector.census(&["agents", "revoke", &agent_id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("agent {agent_id} (")) && text(&out.stdout).contains("revoked at"),
        "{}",
        text(&out.stdout)
    );

    // The agent's next report is refused; it says why, and that it will
    // not ask again for an hour.
    let said = agent.proc().wait_stderr(&["the collector refuses this agent", "has been revoked by an administrator"]);
    assert!(said.contains("ERROR") && said.contains("retry_in=3600s") && said.contains("census-agent enroll"), "{said}");
    let shown = collector.hosts().into_iter().find(|h| h["agent_id"] == agent_id.as_str()).expect("still listed");
    assert_eq!(shown["revoked"], true);
    assert!(num(&shown, "revoked_at_unix_ms") > 0);
    let table = text(&collector.census(&["hosts"]).stdout);
    let row = table.lines().find(|l| l.contains(&agent_id[..12])).unwrap_or_else(|| panic!("no row for {agent_id}:\n{table}"));
    assert!(row.contains("revoked"), "{row}");
    let other_row =
        table.lines().find(|l| l.contains(&other.agent_id[..12])).unwrap_or_else(|| panic!("no row for the other host:\n{table}"));
    assert!(!other_row.contains("revoked"), "{other_row}");

    // Others are unaffected.
    assert_eq!(report(2).expect("the other host still reports").into_inner().acked_through, 2);
    let again = collector.census(&["agents", "revoke", &agent_id]);
    assert!(again.status.success() && text(&again.stdout).contains("was already revoked"), "{}", text(&again.stdout));
}

#[test]
fn the_server_certificate_rotates_under_running_agents() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    let mut agent = enrolled(dir.path(), &collector);
    agent.run(&[]);
    eventually("the agent's first reports", || collector.hosts().into_iter().find(|h| h["last_seq"].as_u64() >= Some(2)));
    let server_pem = collector.init.data_dir.join("pki/server.pem");
    let before = served_certificate(collector.agent_addr, &collector.init.ca);
    assert_eq!(before, pem_certificate(&server_pem));

    let out = run(std::process::Command::new(binary("census-collector"))
        .args(["cert", "rotate", "--json", "--san", "localhost", "--san", "127.0.0.1", "--san", "census.test", "--data-dir"])
        .arg(&collector.init.data_dir));
    assert!(out.status.success(), "rotate: {}", text(&out.stderr));
    let rotated: Value = serde_json::from_slice(&out.stdout).expect("json");
    let sha256 = rotated["sha256"].as_str().expect("sha256");
    collector.proc.as_ref().expect("serving").wait_stderr(&["server certificate reloaded", sha256]);
    let seq_at_rotation = the_host(&collector)["last_seq"].as_u64().expect("seq");

    // New connections get the new certificate, on both listeners.
    let after = served_certificate(collector.agent_addr, &collector.init.ca);
    assert_ne!(after, before);
    assert_eq!(after, pem_certificate(&server_pem));
    assert!(after.windows(b"census.test".len()).any(|w| w == b"census.test"), "the new name is in it");
    assert_eq!(served_certificate(collector.admin_addr, &collector.init.ca), after);

    // The running agent keeps reporting; restarted, it connects afresh
    // and trusts the new certificate through the CA it pinned.
    eventually("reports after the rotation", || collector.hosts().into_iter().find(|h| h["last_seq"].as_u64() > Some(seq_at_rotation + 1)));
    agent.proc.take();
    agent.run(&[]);
    agent.proc().wait_stderr(&["connected to the collector"]);
    let seq_at_restart = the_host(&collector)["last_seq"].as_u64().expect("seq");
    eventually("reports from the restarted agent", || {
        collector.hosts().into_iter().find(|h| h["last_seq"].as_u64() > Some(seq_at_restart + 1))
    });
    let host = the_host(&collector);
    assert_eq!(host["reports_stored"], host["last_seq"], "nothing lost");
}
