//! Foundation end to end: init -> serve -> enroll -> run -> census, and the
//! failure paths, each asserting the error a person would read.

use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim().to_string()
}

fn meminfo_total_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:")).expect("MemTotal line");
    let kib: u64 = line.split_whitespace().nth(1).expect("value").parse().expect("number");
    kib * 1024
}

fn nproc() -> u64 {
    let out = std::process::Command::new("nproc").output().expect("nproc");
    text(&out.stdout).trim().parse().expect("nproc prints a number")
}

fn enrolled_and_running(dir: &std::path::Path, extra_config: &str) -> (Collector, Agent) {
    let collector = Collector::start(dir, extra_config);
    let (mut agent, out) = Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll failed: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("enrolled as agent "), "{}", text(&out.stdout));
    agent.run(&[]);
    (collector, agent)
}

fn host_with_inventory(collector: &Collector) -> Value {
    eventually("the host to appear with its inventory", || {
        collector.hosts().into_iter().find(|h| h["memory_total_bytes"].as_u64().unwrap_or(0) > 0)
    })
}

#[test]
fn enrolled_agent_is_listed_with_this_machines_facts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (collector, _agent) = enrolled_and_running(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    let host = host_with_inventory(&collector);
    assert_eq!(host["hostname"].as_str(), Some(machine_hostname().as_str()));
    assert_eq!(host["memory_total_bytes"].as_u64(), Some(meminfo_total_bytes()));
    assert_eq!(u64::from(host["cpu_logical_cores"].as_u64().expect("cores") as u32), nproc());
    assert_eq!(collector.hosts().len(), 1, "exactly one host");

    // The key never left the endpoint and is private.
    let key = dir.path().join("agent-state/agent.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).expect("key exists").permissions());
    assert_eq!(mode & 0o777, 0o600);

    // `census host NAME` resolves the hostname and shows the sections.
    let out = collector.census(&["host", &machine_hostname()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for heading in ["OS", "CPU", "Memory", "Filesystems", "Network"] {
        assert!(shown.contains(&format!("\n{heading}\n")), "section {heading} missing:\n{shown}");
    }
    let json = collector.census(&["host", host["agent_id"].as_str().expect("id"), "--output", "json"]);
    let v: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["inventory"]["memory"]["total_bytes"].as_u64(), Some(meminfo_total_bytes()));
}

#[test]
fn wrong_enrollment_secret_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");
    let (agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, "census_enr_not-the-secret");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("enrollment refused: enrollment secret not recognised"), "{}", text(&out.stderr));
    assert!(!agent.state_dir.join("agent.toml").exists(), "nothing saved on refusal");
    assert!(collector.hosts().is_empty(), "no host created");
}

#[test]
fn report_without_client_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");
    let ca = std::fs::read_to_string(&collector.init.ca).expect("ca");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let status = rt.block_on(async {
        use census_proto::v1 as pb;
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
        let channel = Endpoint::from_shared(collector.agent_url())
            .expect("url")
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            .expect("tls")
            .connect()
            .await
            .expect("TLS without a client certificate still connects (Enroll needs it)");
        let mut client = pb::agent_service_client::AgentServiceClient::new(channel);
        let report = pb::Report { seq: 1, created_at_unix_ms: 0, body: Some(pb::report::Body::Heartbeat(pb::Heartbeat::default())) };
        client.report(pb::ReportRequest { agent_id: "x".into(), reports: vec![report] }).await.expect_err("must be refused")
    });
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("a client certificate is required"), "{}", status.message());
    assert!(collector.hosts().is_empty());
}

#[test]
fn agent_with_certificate_from_another_ca_is_refused() {
    let dir_a = tempfile::tempdir().expect("temp dir");
    let dir_b = tempfile::tempdir().expect("temp dir");
    let a = Collector::start(dir_a.path(), "");
    let b = Collector::start(dir_b.path(), "");
    let (mut agent, out) = Agent::enroll(dir_b.path(), &b.agent_url(), &b.init.ca, &b.init.enrollment_secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The agent trusts A's server certificate but carries B's client certificate.
    std::fs::copy(&a.init.ca, agent.state_dir.join("ca.pem")).expect("copy ca");
    agent.run(&["--server", &a.agent_url()]);
    // The refusal reaches the agent as a TLS alert or, as often, as the
    // connection closing under its first request; either way it says why.
    agent.proc().wait_stderr(&["cannot deliver reports", "TLS handshake failed"]);
    assert!(a.hosts().is_empty(), "collector A stored nothing");
}

#[test]
fn admin_calls_without_or_with_a_wrong_token_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");

    let wrong = collector.census_with_token(Some("census_tok_wrong"), &["hosts"]);
    assert_eq!(wrong.status.code(), Some(77), "EX_NOPERM");
    assert!(text(&wrong.stderr).contains("authentication failed: invalid or revoked admin token"), "{}", text(&wrong.stderr));

    let missing = collector.census_with_token(None, &["hosts"]);
    assert_eq!(missing.status.code(), Some(64), "EX_USAGE");
    assert!(text(&missing.stderr).contains("no admin token"), "{}", text(&missing.stderr));

    // And the server itself refuses a call that carries no token at all.
    let ca = std::fs::read_to_string(&collector.init.ca).expect("ca");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let status = rt.block_on(async {
        use census_proto::v1 as pb;
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
        let channel = Endpoint::from_shared(collector.admin_url())
            .expect("url")
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            .expect("tls")
            .connect()
            .await
            .expect("connect");
        let mut client = pb::admin_service_client::AdminServiceClient::new(channel);
        client.list_hosts(pb::ListHostsRequest::default()).await.expect_err("must be refused")
    });
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("missing admin token"), "{}", status.message());
}

#[test]
fn oversized_report_is_refused_and_nothing_of_it_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Heartbeats (tens of bytes) fit; a full inventory does not.
    let (collector, agent) = enrolled_and_running(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n[limits]\nmax_report_bytes = 200\n");
    let refusal = agent.proc().wait_stderr(&["collector refused reports", "request too large", "limits.max_report_bytes"]);
    assert!(refusal.contains("the limit is 200 bytes"), "{refusal}");
    collector.proc.as_ref().expect("running").wait_stderr(&["report refused", "max_report_bytes"]);
    // Heartbeats still arrive, the inventory never does.
    let host = eventually("heartbeats after the refusal", || collector.hosts().into_iter().find(|h| h["last_seq"].as_u64() >= Some(3)));
    assert_eq!(host["memory_total_bytes"].as_u64(), Some(0), "no inventory stored");
    assert_eq!(host["os"].as_str(), Some(""), "no inventory stored");
}

#[test]
fn host_survives_collector_kill_and_agent_reconnects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut collector, _agent) = enrolled_and_running(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    let before = host_with_inventory(&collector);
    let seq_before = before["last_seq"].as_u64().expect("seq");

    collector.proc.as_mut().expect("running").kill();
    collector.serve();

    let after = eventually("the agent to reconnect and report again", || {
        collector.hosts().into_iter().find(|h| h["last_seq"].as_u64() > Some(seq_before + 1))
    });
    assert_eq!(after["agent_id"], before["agent_id"], "same host, not a new one");
    assert_eq!(after["memory_total_bytes"], before["memory_total_bytes"], "inventory kept across the crash");
    assert_eq!(collector.hosts().len(), 1);
}
