//! The HTTP JSON API and /metrics, end to end: a real collector with a
//! rule that fires on what this machine's real agent reported, two webhook
//! sinks (one accepting, one failing), and HTTPS with the collector's CA.
//!
//! The OpenAPI document the collector serves is the oracle: every GET
//! answer is validated against the schema the document gives for it
//! (`jsonschema`, `$ref`s resolved inside the document), and every
//! operation is called without a token, with a wrong one, with a role
//! below the one its `x-census-role` states (403) and with that role (2xx).

use std::path::Path;

use census_tests::recorder::Recorder;
use census_tests::{Agent, Collector, eventually, text};
use serde_json::{Value, json};

const RULE: &str = "e2e-absent-package";
const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

struct Fleet {
    collector: Collector,
    _agent: Agent,
    _sinks: (Recorder, Recorder),
    http: Http,
    /// Tokens by role (the init token is the admin's).
    tokens: Vec<(&'static str, String)>,
}

impl Fleet {
    fn token(&self, role: &str) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).expect("a token per role").1
    }
}

/// A blocking HTTPS client trusting only the collector's CA.
struct Http {
    agent: ureq::Agent,
    base: String,
}

/// Status and body of one answer.
struct Answer {
    status: u16,
    content_type: String,
    /// The body as text (lossy for a binary download).
    body: String,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Http {
    fn new(base: String, ca: &Path) -> Http {
        Http { agent: census_tests::https_client(ca), base }
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&[u8]>) -> Answer {
        let mut request = self.agent.request(method, &format!("{}{path}", self.base));
        if let Some(t) = token {
            request = request.set("Authorization", &format!("Bearer {t}"));
        }
        let result = match body {
            Some(b) => request.set("Content-Type", "application/json").send_bytes(b),
            None => request.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let content_type = response.header("content-type").unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).expect("a body");
        Answer { status, content_type, body: String::from_utf8_lossy(&bytes).into_owned(), bytes }
    }

    fn get(&self, path: &str, token: &str) -> Value {
        let a = self.call("GET", path, Some(token), None);
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        a.json()
    }
}

/// A collector whose rule fires for this machine's host, with tokens of
/// every role, an accepting and a failing webhook sink, and the real agent
/// reporting; returns once the host's inventory and the alert are there.
fn fleet(dir: &Path) -> Fleet {
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[rule]]\nname = \"{RULE}\"\nseverity = \"critical\"\nfor = \"0s\"\n\
             when = {{ kind = \"software_missing\", package = \"census-e2e-absent-package\" }}\n"
        ),
    )
    .expect("rule file");
    let accepting = Recorder::start();
    let failing = Recorder::start();
    failing.answer(503);
    let mut collector = Collector::prepare(
        dir,
        &format!(
            "[agents]\nheartbeat_interval = \"1s\"\n[alerts]\nevaluation_interval = \"200ms\"\nrules_file = {:?}\n\
             [notify]\ninitial_backoff = \"1h\"\nmax_backoff = \"1h\"\n\
             [[sink]]\nname = \"accepting\"\nkind = \"webhook\"\nurl = \"{}\"\n\
             [[sink]]\nname = \"failing\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            rules.display().to_string(),
            accepting.url("/hook"),
            failing.url("/hook"),
        ),
    );
    let viewer = collector.create_token("viewer").0;
    let operator = collector.create_token("operator").0;
    collector.serve();
    let (mut agent, out) = Agent::enroll(dir, &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll failed: {}", text(&out.stderr));
    agent.run(&[]);
    let http = Http::new(collector.http_url(), &collector.init.ca);
    let tokens = vec![("viewer", viewer), ("operator", operator), ("admin", collector.init.admin_token.clone())];
    let fleet = Fleet { collector, _agent: agent, _sinks: (accepting, failing), http, tokens };
    eventually("the host's inventory and its firing alert", || {
        let hosts = fleet.http.get("/api/v1/hosts", fleet.token("viewer"));
        let with_inventory = hosts["hosts"].as_array()?.iter().any(|h| h["memory_total_bytes"].as_u64().unwrap_or(0) > 0);
        let alerts = fleet.http.get("/api/v1/alerts?state=firing", fleet.token("viewer"));
        let firing = alerts["alerts"].as_array()?.iter().any(|a| a["rule"] == RULE);
        (with_inventory && firing).then_some(())
    });
    eventually("an outbox entry delivered to one sink and one failing on the other", || {
        let outbox = fleet.http.get("/api/v1/outbox", fleet.token("viewer"));
        let entries = outbox["entries"].as_array()?;
        let state_of = |sink: &str| entries.iter().find(|e| e["sink"] == sink).map(|e| e["state"].clone());
        let failed = entries.iter().any(|e| e["sink"] == "failing" && e["attempts"].as_u64().unwrap_or(0) > 0);
        (state_of("accepting") == Some(json!("delivered")) && failed).then_some(())
    });
    fleet
}

/// A validator for `schema` (a fragment of the OpenAPI document, usually
/// a `$ref`), its references resolved inside the document.
fn validator(document: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = document.clone();
    let root_object = root.as_object_mut().expect("the document is an object");
    root_object.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    for (key, value) in schema.as_object().expect("a schema object") {
        root_object.insert(key.clone(), value.clone());
    }
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

fn assert_valid(document: &Value, schema: &Value, what: &str, instance: &Value) {
    let v = validator(document, schema);
    let errors: Vec<String> = v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}: the answer does not match {schema}:\n{}\n{instance:#}", errors.join("\n"));
}

fn error_schema() -> Value {
    json!({ "$ref": "#/components/schemas/Error" })
}

/// The role below `role`, if any.
fn role_below(role: &str) -> Option<&'static str> {
    let i = ROLES.iter().position(|r| *r == role)?;
    i.checked_sub(1).map(|i| ROLES[i])
}

#[test]
fn every_operation_answers_as_documented_to_each_role() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = fleet(dir.path());
    let http = &fleet.http;
    let viewer = fleet.token("viewer");

    // The document needs no token, and is the one in the repository.
    let served = http.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!((served.status, served.content_type.as_str()), (200, "application/json"));
    let document = served.json();
    let in_repo: Value =
        serde_json::from_str(include_str!("../../collector/src/http_api/openapi.json")).expect("the repository's document");
    assert_eq!(document, in_repo);

    // What the path parameters stand for, taken from the fleet itself.
    let hosts = http.get("/api/v1/hosts", viewer);
    let host = hosts["hosts"][0].clone();
    let hostname = host["hostname"].as_str().expect("hostname").to_string();
    let detail = http.get(&format!("/api/v1/hosts/{hostname}"), viewer);
    let package = detail["inventory"]["software"]["packages"][0]["name"].as_str().expect("a package on this machine").to_string();
    let alerts = http.get("/api/v1/alerts", viewer);
    let fingerprint =
        alerts["alerts"].as_array().expect("alerts").iter().find(|a| a["rule"] == RULE).expect("the e2e alert")["fingerprint"]
            .as_str()
            .expect("fingerprint")
            .to_string();
    let outbox = http.get("/api/v1/outbox?sink=failing", viewer);
    let failing_entry = outbox["entries"][0]["id"].as_u64().expect("an entry of the failing sink");
    let fill = |template: &str| {
        template
            .replace("{host}", &hostname)
            .replace("{name}", if template.contains("/software/") { &package } else { "e2e-api-rule" })
            .replace(
                "{id}",
                &match template {
                    t if t.contains("/silences/") => "no-such-silence".to_string(),
                    t if t.contains("/outbox/") => failing_entry.to_string(),
                    t if t.contains("/agents/") => host["agent_id"].as_str().expect("agent id").to_string(),
                    _ => fingerprint[..12].to_string(),
                },
            )
    };
    let api_rule = "[[rule]]\nname = \"e2e-api-rule\"\nwhen = { kind = \"software_forbidden\", package = \"census-e2e-absent-package\" }\n";
    let body_for = |path: &str| -> Option<Vec<u8>> {
        let body = match path {
            p if p.ends_with("/ack") => json!({ "comment": "on it" }),
            "/api/v1/silences" => json!({ "matchers": [format!("alertname={RULE}")], "duration_ms": 3_600_000, "comment": "e2e" }),
            "/api/v1/rules" | "/api/v1/test-rules" => json!({ "toml": api_rule }),
            "/api/v1/enrollment-secrets" => json!({ "name": "e2e-site", "max_uses": 5 }),
            "/api/v1/tokens" => json!({ "name": "e2e-created", "role": "viewer" }),
            _ => return None,
        };
        Some(serde_json::to_vec(&body).expect("json"))
    };

    let mut checked = 0;
    for (template, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let role = operation["x-census-role"].as_str().expect("x-census-role");
            let method = method.to_uppercase();
            let mut path = fill(template);
            if template.ends_with("/metrics") && template.starts_with("/api/") {
                path.push_str("?metric=cpu");
            }
            if template == "/api/v1/export" {
                path.push_str("?format=json");
            }
            let body = body_for(template);
            let call = |token: Option<&str>| http.call(&method, &path, token, body.as_deref());
            let what = format!("{method} {path}");
            if role != "none" {
                for token in [None, Some("census_tok_not-a-token")] {
                    let a = call(token);
                    assert_eq!(a.status, 401, "{what} with token {token:?}: {}", a.body);
                    assert_valid(&document, &error_schema(), &what, &a.json());
                    assert_eq!(a.json()["error"]["code"], "unauthenticated");
                }
                if let Some(below) = role_below(role) {
                    let a = call(Some(fleet.token(below)));
                    assert_eq!(a.status, 403, "{what} as {below}: {}", a.body);
                    assert_eq!(a.json()["error"]["code"], "permission_denied");
                    assert!(a.json()["error"]["message"].as_str().is_some_and(|m| m.contains(&format!("needs the {role} role"))));
                }
            }
            // The DELETE of the API rule goes after the POST that adds it;
            // expiring and revoking after what they act on exists.
            if method == "DELETE" || template.contains("/expire") || template.ends_with("/revoke") {
                continue;
            }
            let token = (role != "none").then(|| fleet.token(role));
            let a = call(token);
            assert_eq!(a.status, 200, "{what} as {role}: {}", a.body);
            if template == "/metrics" {
                assert!(a.content_type.starts_with("text/plain; version=0.0.4"), "{}", a.content_type);
            } else if template == "/api/v1/backup" {
                assert_eq!(a.content_type, "application/octet-stream");
                assert!(a.bytes.len() > 1024, "a backup file of {} bytes", a.bytes.len());
                let file = dir.path().join("http.census-backup");
                std::fs::write(&file, &a.bytes).expect("write the download");
                let restored = census_tests::run(
                    std::process::Command::new(census_tests::binary("census-collector"))
                        .args(["restore", "--json", "--from"])
                        .arg(&file)
                        .arg("--data-dir")
                        .arg(dir.path().join("restored-from-http")),
                );
                assert!(restored.status.success(), "the download restores: {}", text(&restored.stderr));
            } else {
                let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
                assert_valid(&document, schema, &what, &a.json());
            }
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} operations answered");

    // The calls skipped above, now that what they act on exists.
    let silences = http.get("/api/v1/silences", viewer);
    let silence =
        silences["silences"].as_array().expect("silences").iter().find(|s| s["comment"] == "e2e").expect("the silence added")["id"]
            .as_str()
            .expect("id")
            .to_string();
    let expired = http.call("POST", &format!("/api/v1/silences/{silence}/expire"), Some(fleet.token("operator")), None);
    assert_eq!(expired.status, 200, "{}", expired.body);
    assert_eq!(expired.json()["silence"]["state"], "expired");
    let deleted = http.call("DELETE", "/api/v1/rules/e2e-api-rule", Some(fleet.token("admin")), None);
    assert_eq!((deleted.status, deleted.body.as_str()), (200, "{}"));
    let admin = fleet.token("admin");
    let secrets = http.get("/api/v1/enrollment-secrets", admin);
    let secret = secrets["secrets"].as_array().expect("secrets").iter().find(|s| s["name"] == "e2e-site").expect("created")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let tokens = http.get("/api/v1/tokens", admin);
    let token = tokens["tokens"].as_array().expect("tokens").iter().find(|t| t["name"] == "e2e-created").expect("created")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let agent_id = host["agent_id"].as_str().expect("agent id").to_string();
    for (template, path, expect) in [
        (
            "/api/v1/enrollment-secrets/{id}/expire",
            format!("/api/v1/enrollment-secrets/{secret}/expire"),
            ("info", "state", json!("revoked")),
        ),
        ("/api/v1/tokens/{id}/revoke", format!("/api/v1/tokens/{token}/revoke"), ("info", "revoked", json!(true))),
        ("/api/v1/agents/{id}/revoke", format!("/api/v1/agents/{agent_id}/revoke"), ("host", "revoked", json!(true))),
    ] {
        let a = http.call("POST", &path, Some(admin), None);
        assert_eq!(a.status, 200, "POST {path}: {}", a.body);
        let schema = &document["paths"][template]["post"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_valid(&document, schema, &path, &a.json());
        assert_eq!(a.json()[expect.0][expect.1], expect.2, "POST {path}: {}", a.body);
    }
    // The audit log saw the allowed calls over HTTP and the refused ones.
    let audit = http.get("/api/v1/audit?limit=1000", admin);
    let entries = audit["entries"].as_array().expect("entries");
    for action in [
        "alert.ack",
        "silence.add",
        "silence.expire",
        "rule.put",
        "rule.delete",
        "outbox.retry",
        "backup",
        "secret.create",
        "secret.expire",
        "token.create",
        "token.revoke",
        "agent.revoke",
    ] {
        assert!(entries.iter().any(|e| e["action"] == action && e["outcome"] == "ok" && e["api"] == "http"), "{action} ok in {audit:#}");
        assert!(entries.iter().any(|e| e["action"] == action && e["outcome"] == "refused"), "{action} refused in {audit:#}");
    }

    let acked = http.get(&format!("/api/v1/alerts/{}", &fingerprint[..12]), viewer);
    assert!(acked["alert"]["acknowledged_by"].is_string(), "the ack was recorded: {acked}");

    // Errors carry their documented status and body.
    // (method, path, body, status, code)
    type Case = (&'static str, &'static str, Option<Vec<u8>>, u16, &'static str);
    let cases: [Case; 9] = [
        ("GET", "/api/v1/export?format=xml", None, 400, "invalid_argument"),
        ("GET", "/api/v1/nowhere", None, 404, "not_found"),
        ("PUT", "/api/v1/hosts", None, 405, "method_not_allowed"),
        ("GET", "/api/v1/hosts?pagesize=1", None, 400, "invalid_argument"),
        ("GET", "/api/v1/hosts?page_size=many", None, 400, "invalid_argument"),
        ("GET", "/api/v1/hosts/no-such-host", None, 404, "not_found"),
        ("GET", "/api/v1/alerts?state=burning", None, 400, "invalid_argument"),
        ("POST", "/api/v1/test-rules", Some(b"{\"tom\": 1}".to_vec()), 400, "invalid_argument"),
        ("POST", "/api/v1/test-rules", Some(vec![b' '; 1024 * 1024 + 1]), 413, "payload_too_large"),
    ];
    for (method, path, body, status, code) in cases {
        let a = http.call(method, path, Some(viewer), body.as_deref());
        assert_eq!((a.status, a.content_type.as_str()), (status, "application/json"), "{method} {path}: {}", a.body);
        assert_valid(&document, &error_schema(), path, &a.json());
        assert_eq!(a.json()["error"]["code"], code, "{method} {path}");
    }
    let delivered = http.get("/api/v1/outbox?sink=accepting&state=delivered", viewer);
    let id = delivered["entries"][0]["id"].as_u64().expect("a delivered entry");
    let a = http.call("POST", &format!("/api/v1/outbox/{id}/retry"), Some(fleet.token("operator")), None);
    assert_eq!((a.status, a.json()["error"]["code"].as_str()), (409, Some("failed_precondition")), "{}", a.body);
    drop(fleet.collector);
}

/// A sample of the text exposition format: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses one sample line, checking names, label escapes and the value.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let (series, value) = match line.find('}') {
        Some(end) => (&line[..=end], line[end + 1..].trim()),
        None => line.split_once(' ').ok_or("no value")?,
    };
    let value = value.split(' ').next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("value {v:?}"))?,
    };
    let Some((name, labels)) = series.split_once('{') else {
        return if is_name(series) { Ok((series.to_string(), Vec::new(), value)) } else { Err(format!("name {series:?}")) };
    };
    if !is_name(name) {
        return Err(format!("name {name:?}"));
    }
    let mut rest = labels.strip_suffix('}').ok_or("no closing brace")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (label, tail) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !is_name(label) || label.contains(':') {
            return Err(format!("label name {label:?}"));
        }
        let mut value = String::new();
        let mut chars = tail.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (_, '\\') => match chars.next().ok_or("dangling backslash")?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => return Err(format!("escape \\{c}")),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        out.push((label.to_string(), value));
        rest = &tail[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok((name.to_string(), out, value))
}

#[test]
fn metrics_count_reports_and_show_the_fleet() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = fleet(dir.path());
    let http = &fleet.http;

    let refused = http.call("GET", "/metrics", None, None);
    assert_eq!(refused.status, 401, "a token is needed by default: {}", refused.body);

    let scrape = || {
        let a = http.call("GET", "/metrics", Some(fleet.token("viewer")), None);
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    };
    let text = scrape();
    let mut types = std::collections::BTreeMap::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("line {}: {line:?}", n + 1));
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "line {}: {line:?}", n + 1);
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "line {}: {name} typed twice", n + 1);
        } else if line.starts_with("# HELP ") {
            assert!(line.split(' ').nth(2).is_some(), "line {}: {line:?}", n + 1);
        } else {
            let (name, labels, value) = parse_sample(line).unwrap_or_else(|e| panic!("line {}: {e}: {line:?}", n + 1));
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|k| k == "histogram")))
                .unwrap_or(&name)
                .to_string();
            assert!(types.contains_key(&family), "line {}: {name} before its TYPE line", n + 1);
            samples.push((name, labels, value));
        }
    }
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v)))
            .map(|s| s.2)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    assert!(value("census_reports_received_total", &[("kind", "inventory")]) >= 1.0, "{text}");
    assert!(value("census_ingest_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(value("census_ingest_duration_seconds_bucket", &[("le", "+Inf")]), value("census_ingest_duration_seconds_count", &[]));
    assert_eq!((value("census_hosts", &[]), value("census_hosts_online", &[]), value("census_hosts_offline", &[])), (1.0, 1.0, 0.0));
    assert_eq!(value("census_alerts_firing", &[("severity", "critical")]), 1.0, "the e2e rule fires");
    assert!(value("census_rule_evaluations_total", &[]) >= 1.0);
    assert!(value("census_notifications_delivered_total", &[("sink", "accepting")]) >= 1.0);
    assert!(value("census_notifications_failed_total", &[("sink", "failing")]) >= 1.0);
    assert_eq!(value("census_notifications_failed_total", &[("sink", "accepting")]), 0.0);
    assert!(value("census_outbox_pending", &[("sink", "failing")]) >= 1.0, "the failing sink's entries wait for their backoff");
    assert!(value("census_store_size_bytes", &[]) > 0.0);

    // Counters only grow: the agent keeps reporting.
    let received = |text: &str| -> f64 {
        text.lines()
            .filter_map(|l| l.strip_prefix("census_reports_received_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = received(&text);
    eventually("more reports counted", || (received(&scrape()) > before).then_some(()));
}

#[test]
fn metrics_can_be_opened_to_scrapers_without_a_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "[http_api]\nmetrics_require_token = false\n");
    let http = Http::new(collector.http_url(), &collector.init.ca);
    let open = http.call("GET", "/metrics", None, None);
    assert_eq!(open.status, 200, "{}", open.body);
    assert!(open.body.lines().any(|l| l == "census_hosts 0"), "{}", open.body);
    let api = http.call("GET", "/api/v1/hosts", None, None);
    assert_eq!(api.status, 401, "the API itself still needs a token: {}", api.body);
}
