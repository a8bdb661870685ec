//! Fuzz targets for every collector decoder of outside input: agent
//! reports (protobuf bytes -> decode -> validation -> the store), the
//! filter language, the config and rule files (TOML), alert templates and
//! silence matchers, and the answers of the ticketing and webhook systems
//! the sinks talk to.
//!
//! Seeds come from the repository's own examples (deploy/, docs/, the
//! shipped rules) and from encoded reports built here; `census_fuzz::run`
//! mutates them within `CENSUS_FUZZ_CASES` / `CENSUS_FUZZ_SECONDS`.
//! Properties: never a panic or a hang; a report request is accepted and
//! stored whole or refused with the store unchanged; a filter that parses
//! prints back to the same filter.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use census_collector::alert::RuleSet;
use census_collector::config::{Config, Limits};
use census_collector::filter::Filter;
use census_collector::notify::{glpi, http, jira, rt, servicenow, zammad, zendesk};
use census_collector::store::sled::SledStore;
use census_collector::store::{HostView, NewAgent, Store};
use census_collector::validate;
use census_fuzz::{lossy, run, seeds_under};
use census_proto::v1 as pb;
use prost::Message;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn package(name: &str, version: &str) -> pb::Package {
    pb::Package { name: name.into(), version: version.into(), source: "dpkg".into(), ..Default::default() }
}

/// Encoded requests of every body kind, as a real agent sends them.
fn report_seeds() -> Vec<Vec<u8>> {
    let identity = pb::HostIdentity { host_uuid: "fuzz-host".into(), hostname: "web-07".into(), ..Default::default() };
    let inventory = pb::Inventory {
        collected_at_unix_ms: 1_700_000_000_000,
        identity: Some(identity),
        filesystems: Some(pb::FilesystemSection {
            filesystems: vec![pb::Filesystem {
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                total_bytes: 1 << 30,
                ..Default::default()
            }],
        }),
        software: Some(pb::SoftwareSection { packages: vec![package("openssl", "3.0.2-0ubuntu1"), package("bash", "5.1")] }),
        ..Default::default()
    };
    let sample = pb::HealthSample {
        taken_at_unix_ms: 1_700_000_000_000,
        cpu_percent: Some(12.5),
        memory_total_bytes: Some(8 << 30),
        filesystems: vec![pb::FilesystemUsage { mount_point: "/".into(), ..Default::default() }],
        ..Default::default()
    };
    let bodies = vec![
        pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: 5, agent_version: "0.1.0".into() }),
        pb::report::Body::Inventory(inventory.clone()),
        pb::report::Body::Health(pb::HealthBatch { samples: vec![sample.clone(), sample], ..Default::default() }),
        pb::report::Body::InventoryDelta(pb::InventoryDelta {
            base_seq: 2,
            changed: Some(pb::Inventory { os: inventory.os.clone(), ..Default::default() }),
            packages_added: vec![package("curl", "8.0")],
            packages_removed: vec![package("bash", "5.1")],
            ..Default::default()
        }),
    ];
    let mut seeds: Vec<Vec<u8>> = bodies
        .iter()
        .enumerate()
        .map(|(n, b)| {
            let report = pb::Report { seq: n as u64 + 1, created_at_unix_ms: 1, body: Some(b.clone()) };
            pb::ReportRequest { agent_id: "a".into(), reports: vec![report] }.encode_to_vec()
        })
        .collect();
    let all = bodies.into_iter().enumerate().map(|(n, b)| pb::Report { seq: n as u64 + 10, created_at_unix_ms: 1, body: Some(b) });
    seeds.push(pb::ReportRequest { agent_id: "a".into(), reports: all.collect() }.encode_to_vec());
    seeds
}

fn last_seq_and_count(store: &SledStore) -> (u64, u64) {
    let host = store.host("a").expect("reading the host").expect("enrolled");
    (host.agent.last_seq, host.agent.reports_stored)
}

/// Requests built from parts, encoded: valid and invalid strings (NUL,
/// over the limit, any Unicode), lists around the item limit, seqs
/// ascending, repeated or below what is stored, every body kind. They
/// reach validation and the store far more often than byte mutations of
/// the few hand-made seeds, and are mutated in turn.
fn structured_requests(count: usize) -> Vec<Vec<u8>> {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    // Mostly valid strings, so that whole requests often are; now and then
    // empty, NUL, over the 256-byte limit, or any Unicode.
    let string = || {
        prop_oneof![
            4 => Just(String::new()),
            200 => "[a-z0-9 ./:+~-]{1,20}",
            1 => Just("a\u{0}b".to_string()),
            1 => "[a-z]{250,262}",
            2 => "[^\u{0}]{0,40}",
        ]
    };
    let pkg = || (string(), string()).prop_map(|(n, v)| package(&n, &v));
    let body = prop_oneof![
        string().prop_map(|v| pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: 1, agent_version: v })),
        (
            prop_oneof![8 => vec(pkg(), 0..10), 1 => vec(pkg(), 60..68)],
            prop_oneof![20 => "[a-z0-9.-]{1,20}", 1 => string()],
            prop_oneof![20 => Just("fuzz-host".to_string()), 1 => string()]
        )
            .prop_map(|(packages, hostname, host_uuid)| {
                pb::report::Body::Inventory(pb::Inventory {
                    identity: Some(pb::HostIdentity { host_uuid, hostname, ..Default::default() }),
                    software: Some(pb::SoftwareSection { packages }),
                    ..Default::default()
                })
            }),
        vec((any::<i64>(), proptest::option::of(any::<f64>()), string()), 0..6).prop_map(|samples| {
            pb::report::Body::Health(pb::HealthBatch {
                samples: samples
                    .into_iter()
                    .map(|(t, cpu, mount)| pb::HealthSample {
                        taken_at_unix_ms: t,
                        cpu_percent: cpu,
                        filesystems: vec![pb::FilesystemUsage { mount_point: mount, ..Default::default() }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }),
        (0..20u64, vec(pkg(), 0..5), vec(pkg(), 0..5)).prop_map(|(base_seq, packages_added, packages_removed)| {
            pb::report::Body::InventoryDelta(pb::InventoryDelta { base_seq, packages_added, packages_removed, ..Default::default() })
        }),
    ];
    let step = prop_oneof![12 => 1..3u64, 1 => Just(0u64)];
    let request = (0..300u64, vec((step, body), 1..6)).prop_map(|(base, items)| {
        let mut seq = base;
        let reports = items
            .into_iter()
            .map(|(step, body)| {
                seq += step;
                pb::Report { seq, created_at_unix_ms: 1, body: Some(body) }
            })
            .collect();
        pb::ReportRequest { agent_id: "a".into(), reports }.encode_to_vec()
    });
    let mut runner = proptest::test_runner::TestRunner::default();
    (0..count).map(|_| request.new_tree(&mut runner).expect("a request").current()).collect()
}

#[test]
fn fuzz_reports_decode_validate_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path()).expect("store");
    store
        .enroll_agent(NewAgent {
            agent_id: "a".into(),
            host_uuid: "fuzz-host".into(),
            hostname: "web-07".into(),
            agent_version: "0.1.0".into(),
            cert_fingerprint: [1; 32],
            cert_not_after_unix_ms: 0,
            enrolled_at_unix_ms: 1,
            secret_hash: [2; 32],
        })
        .expect("enroll");
    let limits = Limits { max_items_per_list: 64, max_string_bytes: 256, ..Limits::default() };
    let reached_store = AtomicU64::new(0);
    let mut seeds = report_seeds();
    seeds.extend(structured_requests(200));
    run("collector.report_decode_validate_store", seeds, |b| {
        let Ok(req) = pb::ReportRequest::decode(b) else { return };
        if validate::report_request(&req, &limits).is_err() {
            return;
        }
        reached_store.fetch_add(1, Ordering::Relaxed);
        let (seq_before, count_before) = last_seq_and_count(&store);
        let fresh = req.reports.iter().filter(|r| r.seq > seq_before).count() as u64;
        let outcome = store.put_reports("a", &req.reports, 1_700_000_000_000);
        let (seq_after, count_after) = last_seq_and_count(&store);
        match outcome {
            Ok(ingested) => {
                let highest = req.reports.iter().map(|r| r.seq).max().unwrap_or(0).max(seq_before);
                assert_eq!((seq_after, count_after), (highest, count_before + fresh), "stored whole");
                assert_eq!(ingested.acked_through, highest);
            }
            Err(e) => assert_eq!((seq_after, count_after), (seq_before, count_before), "refused whole, yet something stored: {e}"),
        }
        // What was stored reads back and decodes.
        let _ = store.hosts().expect("hosts read back");
    });
    let stored = reached_store.load(Ordering::Relaxed);
    eprintln!("fuzz collector.report_decode_validate_store: {stored} inputs passed validation and went to the store");
    assert!(stored > 0, "some inputs must get past validation");
}

#[test]
fn fuzz_filter_language() {
    let docs = std::fs::read_to_string(repo().join("docs/filters.md")).expect("docs/filters.md");
    let mut seeds: Vec<Vec<u8>> =
        docs.split('`').skip(1).step_by(2).filter(|s| !s.is_empty() && !s.contains('\n')).map(|s| s.as_bytes().to_vec()).collect();
    seeds.push(
        br#"os.id = "ubuntu" and software("openssl") < "3.0.13" or not (memory.total >= 8GiB) and fs("/").used_percent > 90"#.to_vec(),
    );
    let host = HostView { agent: Default::default(), inventory: None };
    run("collector.filter_parse", seeds, |b| {
        let text = lossy(b);
        if let Ok(filter) = Filter::parse(&text) {
            let printed = filter.to_string();
            let again = Filter::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse back: {e:?}"));
            assert_eq!(again, filter, "{text:?} printed as {printed:?}");
            let _ = filter.matches(&host, 1_700_000_000_000, 180_000);
        }
        let _ = census_collector::filter::FieldRef::parse(&text);
    });
}

#[test]
fn fuzz_config_and_rule_files() {
    let mut seeds = seeds_under(&repo().join("deploy"));
    seeds.retain(|s| std::str::from_utf8(s).is_ok_and(|t| t.contains(" = ")));
    seeds.push(b"[limits]\nmax_message_bytes = 1048576\nreports_per_agent_per_minute = 0\n[[sink]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://x/\"\n".to_vec());
    run("collector.config_toml", seeds, |b| {
        let _ = Config::from_toml(&lossy(b), "fuzz.toml");
    });
    let mut rules = vec![census_collector::alert::rules::DEFAULT_RULES.as_bytes().to_vec()];
    let alerts_doc = std::fs::read_to_string(repo().join("docs/alerts.md")).expect("docs/alerts.md");
    rules.extend(alerts_doc.split("```toml").skip(1).filter_map(|b| b.split("```").next()).map(|b| b.as_bytes().to_vec()));
    run("collector.rules_toml_templates_matchers", rules, |b| {
        let text = lossy(b);
        let _ = RuleSet::from_toml(&text);
        let _ = census_collector::alert::template::Template::parse(&text);
        let _ = census_collector::alert::book::Matcher::parse(&text);
        let _ = census_collector::alert::pattern::Glob::new(&text).matches("web-07");
    });
}

#[test]
fn fuzz_sink_answers() {
    let seeds: Vec<Vec<u8>> = [
        r#"{"id": 42, "type": "ticket", "_hyperlinks": []}"#,
        r#"{"count": 1, "items": [{"id": "17", "type": "ticket"}], "total": 1}"#,
        r#"{"issues": [{"key": "OPS-12", "fields": {"status": {"statusCategory": {"key": "done"}}}}]}"#,
        r#"{"transitions": [{"id": "31", "name": "Done"}, {"id": 41, "name": "Close"}]}"#,
        r#"{"result": [{"sys_id": "abc", "number": "INC001", "state": "6"}]}"#,
        r#"{"tickets": [{"id": 7, "status": "solved"}], "results": [{"id": 8}]}"#,
        r#"{"ticket": {"id": 9, "status": "open"}}"#,
        r#"[{"id": 3, "title": "[census:abcdef] disk full", "state": "closed", "state_id": 4}]"#,
        r#"{"totalcount": 1, "data": [{"2": 55, "12": 5}], "status": 6}"#,
        r#"{"status": "success", "data": {"alerts": []}}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run("notify.sink_answers", seeds, |b| {
        let text = lossy(b);
        let Ok(answer) = http::parse_json("fuzz", b) else {
            let _ = http::numeric_id("fuzz", &text);
            let _ = http::path_segment(&text);
            return;
        };
        let _ = http::id_text(&answer);
        let _ = http::required_id("fuzz", &answer, "/id");
        let _ = rt::found_id(&answer);
        let _ = jira::found_key(&answer);
        let _ = jira::is_done(&answer);
        let _ = jira::transition_id(&answer, "Done");
        let _ = servicenow::is_resolved(&answer);
        let _ = zendesk::is_solved(&answer);
        let _ = glpi::found_id(&answer);
        let _ = glpi::is_solved(&answer);
        let _ = zammad::found_id(&answer, "[census:abcdef]");
        let _ = zammad::is_closed(&answer);
        if let Some(id) = http::id_text(&answer) {
            let _ = http::numeric_id("fuzz", &id);
            let _ = http::path_segment(&id);
        }
    });
}
