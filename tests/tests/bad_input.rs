//! Bad input over the real network path (SPEC §9): simulated agents send
//! malformed, oversized and hostile reports through real mutual TLS, and
//! each one must get a clear status and leave the store exactly as it was
//! (compared through the admin API before and after). A flood from one
//! agent is refused by its rate limit while another agent's reports keep
//! being acknowledged.

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use census_tests::sim::{Enroller, SimAgent, report_raw};
use census_tests::{Collector, text};
use prost::Message;
use serde_json::Value;
use tonic::Code;
use tonic::transport::Channel;

/// Small limits so every case is cheap to build.
const LIMITS: &str = "[limits]\nmax_message_bytes = 1048576\nmax_report_bytes = 524288\nmax_reports_per_request = 16\n\
                      max_items_per_list = 100\nmax_string_bytes = 4096\n";

/// Everything the admin API says about the stored hosts: the list and each
/// host's detail (inventory, counters, last seq).
fn store_view(collector: &Collector) -> Value {
    let hosts = collector.hosts();
    let details: Vec<Value> = hosts
        .iter()
        .map(|h| {
            let id = h["agent_id"].as_str().expect("agent_id");
            let out = collector.census(&["host", id, "--output", "json"]);
            assert!(out.status.success(), "census host {id}: {}", text(&out.stderr));
            serde_json::from_slice(&out.stdout).expect("host json")
        })
        .collect();
    serde_json::json!({ "hosts": hosts, "details": details })
}

fn heartbeat(seq: u64, version: &str) -> pb::Report {
    pb::Report {
        seq,
        created_at_unix_ms: 1_700_000_000_000,
        body: Some(pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: 1, agent_version: version.into() })),
    }
}

fn inventory(seq: u64, host_uuid: &str, hostname: &str, filesystems: usize) -> pb::Report {
    let fs = (0..filesystems)
        .map(|n| pb::Filesystem { mount_point: format!("/mnt/{n}"), fs_type: "ext4".into(), total_bytes: 1 << 30, ..Default::default() })
        .collect();
    pb::Report {
        seq,
        created_at_unix_ms: 1_700_000_000_000,
        body: Some(pb::report::Body::Inventory(pb::Inventory {
            collected_at_unix_ms: 1_700_000_000_000,
            identity: Some(pb::HostIdentity {
                host_uuid: host_uuid.into(),
                hostname: hostname.into(),
                host_uuid_source: "machine-id".into(),
                ..Default::default()
            }),
            filesystems: Some(pb::FilesystemSection { filesystems: fs }),
            ..Default::default()
        })),
    }
}

async fn send(channel: &Channel, agent_id: &str, reports: Vec<pb::Report>) -> Result<pb::ReportResponse, tonic::Status> {
    AgentServiceClient::new(channel.clone())
        .max_encoding_message_size(64 << 20)
        .report(pb::ReportRequest { agent_id: agent_id.into(), reports })
        .await
        .map(|r| r.into_inner())
}

fn refused(what: &str, answer: Result<pb::ReportResponse, tonic::Status>, code: Code, says: &[&str]) {
    let status = match answer {
        Ok(r) => panic!("{what}: accepted ({r:?}), expected {code:?}"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "{what}: {status:?}");
    for needle in says {
        assert!(status.message().contains(needle), "{what}: the message names {needle:?}: {}", status.message());
    }
    eprintln!("{what}: {:?} {}", status.code(), status.message());
}

/// A heartbeat whose agent_version holds bytes that are not UTF-8, encoded
/// by hand: prost encodes only valid `String`s, so the bytes are swapped in
/// after encoding (same length, so the framing stays valid).
fn invalid_utf8_request(agent_id: &str, seq: u64) -> Vec<u8> {
    let marker = "UTF8-MARKER";
    let mut bytes = pb::ReportRequest { agent_id: agent_id.into(), reports: vec![heartbeat(seq, marker)] }.encode_to_vec();
    let at = bytes.windows(marker.len()).position(|w| w == marker.as_bytes()).expect("marker encoded verbatim");
    bytes[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    assert!(pb::ReportRequest::decode(bytes.as_slice()).is_err(), "prost itself refuses it");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reports_get_a_clear_status_and_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), LIMITS);
    let enroller = Enroller::new(&collector);
    let a: SimAgent = enroller.enroll("bad-a", "0.1.0").await;
    let b: SimAgent = enroller.enroll("bad-b", "0.1.0").await;
    let (ca, cb) = (enroller.channel(&a).await, enroller.channel(&b).await);
    send(&ca, &a.agent_id, vec![inventory(1, "sim-bad-a", "bad-a", 2), heartbeat(2, "0.1.0"), heartbeat(3, "0.1.0")])
        .await
        .expect("a's good reports");
    send(&cb, &b.agent_id, vec![inventory(1, "sim-bad-b", "bad-b", 3)]).await.expect("b's good report");
    let before = store_view(&collector);
    assert_eq!(before["hosts"].as_array().map(Vec::len), Some(2), "{before}");
    let id = a.agent_id.as_str();

    let huge = "x".repeat(1_200_000);
    refused("a message over max_message_bytes", send(&ca, id, vec![heartbeat(4, &huge)]).await, Code::OutOfRange, &["too large"]);
    let one_big = pb::Report {
        seq: 4,
        created_at_unix_ms: 0,
        body: Some(pb::report::Body::Health(pb::HealthBatch {
            samples: (0..90)
                .map(|n| pb::HealthSample {
                    taken_at_unix_ms: n,
                    filesystems: (0..99)
                        .map(|f| pb::FilesystemUsage { mount_point: format!("/{f}/{}", "m".repeat(60)), ..Default::default() })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })),
    };
    assert!(one_big.encoded_len() > 524_288 && one_big.encoded_len() < 1_000_000, "{}", one_big.encoded_len());
    refused("a report over max_report_bytes", send(&ca, id, vec![one_big]).await, Code::InvalidArgument, &["limits.max_report_bytes"]);
    let many: Vec<pb::Report> = (4..21).map(|s| heartbeat(s, "0.1.0")).collect();
    refused("17 reports in one request", send(&ca, id, many).await, Code::InvalidArgument, &["limits.max_reports_per_request"]);
    refused(
        "101 filesystems",
        send(&ca, id, vec![inventory(4, "sim-bad-a", "bad-a", 101)]).await,
        Code::InvalidArgument,
        &["filesystems", "limits.max_items_per_list"],
    );
    refused(
        "a string over max_string_bytes",
        send(&ca, id, vec![heartbeat(4, &"v".repeat(4097))]).await,
        Code::InvalidArgument,
        &["agent_version", "limits.max_string_bytes"],
    );
    refused("a NUL in a string", send(&ca, id, vec![heartbeat(4, "0.1\u{0}")]).await, Code::InvalidArgument, &["agent_version"]);
    // A request that does not decode is refused by tonic's prost codec
    // before our code sees it, with INTERNAL as gRPC's status-code table
    // prescribes for "error parsing request proto"; the message says what.
    refused(
        "invalid UTF-8 in a string field",
        report_raw(ca.clone(), invalid_utf8_request(id, 4)).await,
        Code::Internal,
        &["agent_version", "not UTF-8"],
    );
    refused(
        "seqs going backwards in one request",
        send(&ca, id, vec![heartbeat(5, "0.1.0"), heartbeat(4, "0.1.0")]).await,
        Code::InvalidArgument,
        &["ascending"],
    );
    refused("seq 0", send(&ca, id, vec![heartbeat(0, "0.1.0")]).await, Code::InvalidArgument, &["seq 0"]);
    refused(
        "a request naming another agent",
        send(&ca, &b.agent_id, vec![heartbeat(2, "9.9.9")]).await,
        Code::PermissionDenied,
        &[&a.agent_id, &b.agent_id],
    );
    refused(
        "inventory naming another agent's host",
        send(&ca, id, vec![inventory(4, "sim-bad-b", "bad-b", 1)]).await,
        Code::InvalidArgument,
        &["sim-bad-b", "enroll again"],
    );
    // A refused request is refused whole: its valid first report is not
    // stored either.
    refused(
        "a good report followed by a bad one",
        send(&ca, id, vec![heartbeat(4, "0.2.0"), heartbeat(5, &"v".repeat(5000))]).await,
        Code::InvalidArgument,
        &["limits.max_string_bytes"],
    );
    // A seq at or below the stored one is a retry: acknowledged again,
    // never stored again, whatever it now says.
    let replay = send(&ca, id, vec![heartbeat(2, "6.6.6"), heartbeat(3, "6.6.6")]).await.expect("a retry is acknowledged");
    assert_eq!(replay.acked_through, 3, "{replay:?}");

    let after = store_view(&collector);
    assert_eq!(before, after, "nothing of a refused or replayed report reached the store");

    // The agent is not wedged: its next good report is stored.
    let next = send(&ca, id, vec![heartbeat(4, "0.2.0")]).await.expect("a good report after the bad ones");
    assert_eq!(next.acked_through, 4);
    let host = collector.hosts().into_iter().find(|h| h["agent_id"] == a.agent_id.as_str()).expect("host a");
    assert_eq!(host["last_seq"].as_u64(), Some(4), "{host}");
    assert_eq!(host["reports_stored"].as_u64(), Some(4), "{host}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_agent_is_throttled_and_the_others_are_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 6 a minute is one token per 10 s: nothing refills during the test.
    let collector = Collector::start(
        dir.path(),
        "[limits]\nmax_reports_per_request = 8\nreports_per_agent_per_minute = 6\nreport_burst_per_agent = 10\n",
    );
    let enroller = Enroller::new(&collector);
    let flood = enroller.enroll("flood", "0.1.0").await;
    let quiet = enroller.enroll("quiet", "0.1.0").await;
    let (cf, cq) = (enroller.channel(&flood).await, enroller.channel(&quiet).await);

    let (mut flood_acked, mut throttled, mut quiet_acked) = (0u64, 0u32, 0u64);
    for round in 0..40 {
        // Like a real agent, the flood resends its next unacknowledged seq.
        match send(&cf, &flood.agent_id, vec![heartbeat(flood_acked + 1, "0.1.0")]).await {
            Ok(r) => flood_acked = r.acked_through,
            Err(s) => {
                assert_eq!(s.code(), Code::ResourceExhausted, "round {round}: {s:?}");
                assert!(s.message().contains("retry after") && s.message().contains("reports_per_agent_per_minute"), "{}", s.message());
                throttled += 1;
            }
        }
        if round % 5 == 0 {
            let r = send(&cq, &quiet.agent_id, vec![heartbeat(quiet_acked + 1, "0.1.0")]).await.expect("the quiet agent is unaffected");
            quiet_acked = r.acked_through;
        }
    }
    assert_eq!(flood_acked, 10, "exactly the burst got through");
    assert_eq!(throttled, 30);
    assert_eq!(quiet_acked, 8);

    let hosts = collector.hosts();
    let host = |name: &str| hosts.iter().find(|h| h["hostname"] == name).unwrap_or_else(|| panic!("{name} in {hosts:?}")).clone();
    let (f, q) = (host("flood"), host("quiet"));
    assert_eq!((f["last_seq"].as_u64(), f["reports_stored"].as_u64()), (Some(10), Some(10)), "nothing refused was stored: {f}");
    assert_eq!((q["last_seq"].as_u64(), q["reports_stored"].as_u64()), (Some(8), Some(8)), "{q}");

    // A batch larger than what is left is refused whole, not in part.
    let r = send(&cq, &quiet.agent_id, (9..=11).map(|s| heartbeat(s, "0.1.0")).collect()).await;
    assert_eq!(r.expect_err("3 > 2 tokens left").code(), Code::ResourceExhausted);
    let q = collector.hosts().into_iter().find(|h| h["hostname"] == "quiet").expect("quiet");
    assert_eq!(q["last_seq"].as_u64(), Some(8), "{q}");
}
