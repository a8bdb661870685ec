//! Security properties over the real network path (SPEC §9): the two APIs
//! do not accept each other's credentials, TLS below 1.2 is refused, the
//! collector listens only where its config says, and no secret reaches a
//! log even at debug level.

use std::collections::BTreeSet;
use std::process::Command;

use census_proto::v1 as pb;
use census_tests::{Agent, Collector, eventually, run, text};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn enrolled(dir: &std::path::Path, collector: &Collector) -> Agent {
    let (agent, out) = Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll: {}", text(&out.stderr));
    agent
}

#[test]
fn an_agent_certificate_cannot_call_the_admin_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");
    let agent = enrolled(dir.path(), &collector);
    let ca = std::fs::read_to_string(&collector.init.ca).expect("ca");
    let cert = std::fs::read_to_string(agent.state_dir.join("agent.pem")).expect("agent certificate");
    let key = std::fs::read_to_string(agent.state_dir.join("agent.key")).expect("agent key");
    let status = runtime().block_on(async {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).identity(Identity::from_pem(cert, key));
        let channel =
            Endpoint::from_shared(collector.admin_url()).expect("url").tls_config(tls).expect("tls").connect().await.expect("connect");
        pb::admin_service_client::AdminServiceClient::new(channel).list_hosts(pb::ListHostsRequest::default()).await.expect_err("refused")
    });
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("missing admin token"), "{}", status.message());
}

#[test]
fn an_admin_token_cannot_report_as_an_agent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");
    let ca = std::fs::read_to_string(&collector.init.ca).expect("ca");
    let token = collector.init.admin_token.clone();
    let status = runtime().block_on(async {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        let channel =
            Endpoint::from_shared(collector.agent_url()).expect("url").tls_config(tls).expect("tls").connect().await.expect("connect");
        let mut request = tonic::Request::new(pb::ReportRequest {
            agent_id: "0123456789abcdef0123456789abcdef".into(),
            reports: vec![pb::Report { seq: 1, created_at_unix_ms: 0, body: Some(pb::report::Body::Heartbeat(pb::Heartbeat::default())) }],
        });
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
        pb::agent_service_client::AgentServiceClient::new(channel).report(request).await.expect_err("refused")
    });
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(collector.hosts().is_empty(), "nothing stored");
}

/// `openssl s_client` with one protocol version; true when the handshake
/// completed.
fn handshake(addr: &str, version_flag: &str) -> bool {
    let out = run(Command::new("openssl")
        .args(["s_client", "-connect", addr, version_flag, "-cipher", "DEFAULT:@SECLEVEL=0", "-brief"])
        .stdin(std::process::Stdio::null()));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    all.contains("Protocol version:") || all.contains("CONNECTION ESTABLISHED")
}

#[test]
fn tls_below_1_2_is_refused_on_every_listener() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");
    for addr in [collector.agent_addr.to_string(), collector.admin_addr.to_string(), collector.http_addr.to_string()] {
        assert!(handshake(&addr, "-tls1_2"), "TLS 1.2 works on {addr}");
        assert!(handshake(&addr, "-tls1_3"), "TLS 1.3 works on {addr}");
        assert!(!handshake(&addr, "-tls1_1"), "TLS 1.1 must be refused on {addr}");
        assert!(!handshake(&addr, "-tls1"), "TLS 1.0 must be refused on {addr}");
    }
}

/// The TCP sockets a process listens on (`ss -ltnp`), as `addr:port`.
fn listening(pid: u32) -> BTreeSet<String> {
    let out = run(Command::new("ss").args(["-H", "-ltnp"]));
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

#[test]
fn the_collector_listens_only_where_its_config_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");
    let pid = collector.proc.as_ref().expect("running").pid();
    let expected: BTreeSet<String> =
        [collector.agent_addr.to_string(), collector.admin_addr.to_string(), collector.http_addr.to_string()].into();
    let sockets = eventually("ss to list the collector's sockets", || Some(listening(pid)).filter(|s| !s.is_empty()));
    assert_eq!(sockets, expected, "every listening socket is one the config asked for, and each of those listens");
}

#[test]
fn secrets_and_keys_never_reach_the_logs_even_at_debug_level() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut collector = Collector::prepare(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    let (viewer_token, _) = collector.create_token("viewer");
    collector.serve_logging("debug");
    let mut agent = enrolled(dir.path(), &collector);
    agent.run_logging(&[], "debug");
    eventually("the host to report", || collector.hosts().into_iter().find(|h| h["memory_total_bytes"].as_u64().unwrap_or(0) > 0));
    // Admin calls with both tokens, and a wrong one.
    assert!(collector.census(&["hosts"]).status.success());
    assert!(collector.census_with_token(Some(&viewer_token), &["alerts"]).status.success());
    assert!(!collector.census_with_token(Some("census_tok_wrong0000000000000000"), &["hosts"]).status.success());
    // An enrollment attempt with a wrong secret is logged, without it.
    let wrong_secret = "census_enr_thisisnotarealsecret00000000";
    let (_, refused) = Agent::enroll(&dir.path().join("other"), &collector.agent_url(), &collector.init.ca, wrong_secret);
    assert!(!refused.status.success());

    let key_pem = std::fs::read_to_string(agent.state_dir.join("agent.key")).expect("agent key");
    let key_line = key_pem.lines().nth(1).expect("a base64 line of the key").to_string();
    let ca_key = std::fs::read_to_string(collector.init.data_dir.join("pki/ca.key")).expect("CA key");
    let ca_key_line = ca_key.lines().nth(1).expect("a base64 line of the CA key").to_string();
    let logs = format!("{}\n{}", collector.proc.as_ref().expect("collector").dump(), agent.proc().dump());
    assert!(logs.lines().count() > 10, "debug logging produced lines to search:\n{logs}");
    for (what, secret) in [
        ("the admin token", collector.init.admin_token.as_str()),
        ("the viewer token", viewer_token.as_str()),
        ("the enrollment secret", collector.init.enrollment_secret.as_str()),
        ("a wrong enrollment secret", wrong_secret),
        ("the agent's private key", key_line.as_str()),
        ("the CA's private key", ca_key_line.as_str()),
    ] {
        assert!(!logs.contains(secret), "{what} appears in the logs");
    }
}
