//! Tests of the whole language: parsing (valid forms, precedence, every
//! error with its column), evaluation over hand-built hosts, sorting, the
//! docs, and the properties (partition, print/parse round trip, no panic).

use census_proto::v1 as pb;
use proptest::prelude::*;

use super::*;
use crate::store::{AgentRecord, HostView, InventoryRecord};

const NOW: i64 = 1_750_000_000_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const GIB: u64 = 1 << 30;
/// Offline after three missed one-minute heartbeats.
const OFFLINE_AFTER: i64 = 3 * MINUTE;

fn agent(hostname: &str, last_seen: i64) -> AgentRecord {
    AgentRecord {
        agent_id: format!("{hostname:0>32}"),
        host_uuid: format!("uuid-{hostname}"),
        hostname: hostname.into(),
        enrolled_at_unix_ms: NOW - 30 * DAY,
        last_seen_unix_ms: last_seen,
        agent_version: "0.1.0".into(),
        cert_not_after_unix_ms: NOW + 300 * DAY,
        ..Default::default()
    }
}

fn with_inventory(agent: AgentRecord, inventory: pb::Inventory) -> HostView {
    HostView { agent, inventory: Some(std::sync::Arc::new(InventoryRecord { inventory: Some(inventory), ..Default::default() })) }
}

fn package(name: &str, version: &str, source: &str) -> pb::Package {
    pb::Package { name: name.into(), version: version.into(), source: source.into(), ..Default::default() }
}

fn filesystem(mount: &str, total: u64, free: u64) -> pb::Filesystem {
    pb::Filesystem {
        mount_point: mount.into(),
        device: format!("/dev/{}", mount.trim_start_matches('/')),
        fs_type: "ext4".into(),
        total_bytes: total,
        free_bytes: free,
        available_bytes: free,
        ..Default::default()
    }
}

fn interface(name: &str, mac: Option<&str>, addresses: &[&str]) -> pb::NetworkInterface {
    pb::NetworkInterface {
        name: name.into(),
        mac: mac.map(Into::into),
        addresses: addresses.iter().map(|a| pb::IpAddress { address: a.to_string(), prefix_len: 24 }).collect(),
        oper_state: "up".into(),
        ..Default::default()
    }
}

fn service(name: &str, active: &str, sub: &str) -> pb::Service {
    pb::Service { name: name.into(), active_state: Some(active.into()), sub_state: Some(sub.into()), ..Default::default() }
}

/// An Ubuntu VM with 4 GiB, an old OpenSSL, two kernels, a full root
/// filesystem, a pending security update and a certificate expiring soon.
fn web1() -> HostView {
    with_inventory(
        agent("web1", NOW - MINUTE),
        pb::Inventory {
            collected_at_unix_ms: NOW - MINUTE,
            identity: Some(pb::HostIdentity { hostname: "web1".into(), fqdn: Some("web1.example.org".into()), ..Default::default() }),
            os: Some(pb::OsSection {
                name: "Ubuntu".into(),
                id: Some("ubuntu".into()),
                id_like: vec!["debian".into()],
                version: Some("22.04.4 LTS (Jammy Jellyfish)".into()),
                version_id: Some("22.04".into()),
                kernel: "5.15.0-105-generic".into(),
                arch: "x86_64".into(),
                family: "linux".into(),
                boot_time_unix_ms: Some(NOW - 10 * DAY),
                ..Default::default()
            }),
            cpu: Some(pb::CpuSection { model: "AMD EPYC 7B13".into(), logical_cores: 2, physical_cores: Some(1), ..Default::default() }),
            memory: Some(pb::MemorySection { total_bytes: 4 * GIB, swap_total_bytes: 0, ..Default::default() }),
            filesystems: Some(pb::FilesystemSection {
                filesystems: vec![filesystem("/", 100 * GIB, 5 * GIB), filesystem("/data", 2 * 1024 * GIB, 1024 * GIB)],
            }),
            network: Some(pb::NetworkSection {
                interfaces: vec![
                    interface("lo", None, &["127.0.0.1"]),
                    interface("eth0", Some("52:54:00:12:34:56"), &["10.0.0.5", "fe80::1"]),
                ],
            }),
            software: Some(pb::SoftwareSection {
                packages: vec![
                    package("openssl", "3.0.2-0ubuntu1.10", "dpkg"),
                    package("linux-image-5.15.0-105-generic", "5.15.0-105.115", "dpkg"),
                    package("linux-image-5.15.0-91-generic", "5.15.0-91.101", "dpkg"),
                    package("epoch-tool", "1:1.0", "dpkg"),
                    package("rc-tool", "1.0~rc1", "dpkg"),
                    package("firefox", "125.0.2", "snap"),
                ],
            }),
            hardware: Some(pb::HardwareSection {
                system: Some(pb::SystemRecord { vendor: Some("QEMU".into()), serial: None, ..Default::default() }),
                disks: vec![pb::Disk {
                    name: "vda".into(),
                    size_bytes: 100 * GIB,
                    kind: "unknown".into(),
                    smart: Some(pb::SmartHealth { passed: Some(false), ..Default::default() }),
                    ..Default::default()
                }],
                virtualization: Some(pb::Virtualization { kind: "vm".into(), technology: Some("kvm".into()) }),
                unreadable: vec![pb::Unreadable { field: "memory_modules".into(), reason: "dmidecode missing".into() }],
                ..Default::default()
            }),
            users: Some(pb::UsersSection {
                accounts: vec![
                    pb::Account { name: "root".into(), uid: 0, login: true, ..Default::default() },
                    pb::Account { name: "alice".into(), uid: 1000, login: true, ..Default::default() },
                ],
                admins: vec!["alice".into()],
                ..Default::default()
            }),
            services: Some(pb::ServicesSection {
                manager: "systemd".into(),
                units: vec![service("cron.service", "active", "running"), service("ssh.service", "active", "running")],
                ..Default::default()
            }),
            os_state: Some(pb::OsStateSection {
                pending_reboot: Some(pb::PendingReboot { required: true, ..Default::default() }),
                root_encrypted: Some(false),
                ..Default::default()
            }),
            updates: Some(pb::UpdatesSection {
                updates: vec![pb::PendingUpdate {
                    name: "openssl".into(),
                    installed_version: Some("3.0.2-0ubuntu1.10".into()),
                    available_version: "3.0.2-0ubuntu1.15".into(),
                    source: "apt".into(),
                    security: true,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            certificates: Some(pb::CertificatesSection {
                certificates: vec![pb::Certificate {
                    path: "/etc/ssl/certs/web1.pem".into(),
                    location: "service".into(),
                    subject: "CN=web1.example.org".into(),
                    not_after_unix_ms: NOW + 10 * DAY,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}

/// A Rocky Linux server with 32 GiB, rpm packages, offline for two hours,
/// whose dnf could not be asked for updates.
fn db1() -> HostView {
    with_inventory(
        agent("db1", NOW - 2 * HOUR),
        pb::Inventory {
            os: Some(pb::OsSection {
                name: "Rocky Linux".into(),
                id: Some("rocky".into()),
                version_id: Some("9.3".into()),
                kernel: "5.14.0-362.el9.x86_64".into(),
                family: "linux".into(),
                ..Default::default()
            }),
            memory: Some(pb::MemorySection { total_bytes: 32 * GIB, ..Default::default() }),
            filesystems: Some(pb::FilesystemSection { filesystems: vec![filesystem("/", 500 * GIB, 400 * GIB)] }),
            network: Some(pb::NetworkSection { interfaces: vec![interface("ens3", Some("52:54:00:ab:cd:ef"), &["10.0.1.7"])] }),
            software: Some(pb::SoftwareSection { packages: vec![package("openssl", "1:3.0.7-27.el9", "rpm")] }),
            services: Some(pb::ServicesSection {
                manager: "systemd".into(),
                units: vec![service("sshd.service", "failed", "failed")],
                failed: vec!["sshd.service".into()],
                ..Default::default()
            }),
            updates: Some(pb::UpdatesSection::default()),
            errors: vec![pb::SectionError { section: "updates.dnf".into(), message: "dnf timed out".into() }],
            ..Default::default()
        },
    )
}

/// Enrolled, never reported an inventory.
fn fresh() -> HostView {
    HostView { agent: agent("fresh", 0), inventory: None }
}

fn fleet() -> Vec<HostView> {
    vec![web1(), db1(), fresh()]
}

/// The host names the filter selects from the fleet.
fn matching(filter: &str) -> Vec<String> {
    let filter = Filter::parse(filter).unwrap_or_else(|e| panic!("{}", e.render(filter)));
    fleet().iter().filter(|h| filter.matches(h, NOW, OFFLINE_AFTER)).map(|h| h.agent.hostname.clone()).collect()
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_valid_forms_to_their_canonical_text() {
    let cases = [
        (r#"os.name = "Ubuntu""#, r#"os.name = "Ubuntu""#),
        (r#"OS.Name == "Ubuntu" AND Memory.Total < 8gib"#, r#"os.name = "Ubuntu" and memory.total < 8GiB"#),
        ("memory.total >= 1.5GiB", "memory.total >= 1536MiB"),
        ("memory.total < 8000000000b", "memory.total < 8GB"),
        ("memory.swap = 0", "memory.swap = 0B"),
        ("fs(\"/\").used_percent > 90", "fs(\"/\").used_percent > 90%"),
        ("fs.used_percent >= 92.5%", "fs.used_percent >= 92.5%"),
        (r#"software("openssl") < "3.0.13""#, r#"software("openssl") < "3.0.13""#),
        (r#"software("openssl").version < "3.0.13""#, r#"software("openssl") < "3.0.13""#),
        (r#"software("openssl")"#, r#"software("openssl")"#),
        (r#"has software("openssl")"#, r#"software("openssl")"#),
        (r#"has software("openssl").name"#, r#"software("openssl")"#),
        (r#"has software("openssl").version"#, r#"has software("openssl").version"#),
        ("has hardware.serial", "has hardware.serial"),
        (r#"service("sshd").state = "running""#, r#"service("sshd").state = "running""#),
        ("last_seen > 1h ago", "last_seen > 1h ago"),
        ("last_seen > 1.5h ago", "last_seen > 90m ago"),
        ("certificate.expires < 30d FROM NOW", "certificate.expires < 30d from now"),
        ("certificate.expires < now", "certificate.expires < now"),
        (r#"enrolled_at < "2025-01-01""#, r#"enrolled_at < "2025-01-01""#),
        ("uptime > 7d", "uptime > 1w"),
        ("online", "online"),
        ("online = false", "online = false"),
        ("online = TRUE", "online"),
        (r#"ip ~ "10.0.*""#, r#"ip ~ "10.0.*""#),
        (r#"hostname ~ /^web-\d+$/"#, r#"hostname ~ /^web-\d+$/"#),
        (r#"hostname ~ /a\/b/"#, r#"hostname ~ /a\/b/"#),
        (r#"os.id in ("debian","ubuntu")"#, r#"os.id in ("debian", "ubuntu")"#),
        (r#"os.id not in ("debian")"#, r#"not os.id in ("debian")"#),
        (r#"hostname = "a \"quoted\" \\ name""#, r#"hostname = "a \"quoted\" \\ name""#),
        ("cpu.threads > 4", "cpu.threads > 4"),
        ("not not online", "not not online"),
        ("(online)", "online"),
    ];
    for (input, canonical) in cases {
        let filter = Filter::parse(input).unwrap_or_else(|e| panic!("{}", e.render(input)));
        assert_eq!(filter.to_string(), canonical, "{input}");
        assert_eq!(Filter::parse(canonical).unwrap(), filter, "{canonical} parses to the same tree");
    }
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let cond = |text: &str| match Filter::parse(text).unwrap().expr {
        Expr::Condition(c) => Expr::Condition(c),
        other => panic!("{other:?}"),
    };
    let (a, b, c) = (cond("online"), cond("revoked"), cond("pending_reboot"));
    let parse = |text: &str| Filter::parse(text).unwrap().expr;
    assert_eq!(parse("online or revoked and pending_reboot"), Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])]));
    assert_eq!(parse("online and revoked or pending_reboot"), Expr::Or(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()]));
    assert_eq!(parse("not online and revoked"), Expr::And(vec![Expr::Not(Box::new(a.clone())), b.clone()]));
    assert_eq!(parse("not (online and revoked)"), Expr::Not(Box::new(Expr::And(vec![a.clone(), b.clone()]))));
    assert_eq!(parse("(online or revoked) and pending_reboot"), Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), c.clone()]));
    // A group of the same kind stays a group, so printing keeps it.
    let nested = parse("(online or revoked) or pending_reboot");
    assert_eq!(nested, Expr::Or(vec![Expr::Or(vec![a, b]), c]));
    assert_eq!(nested.to_string(), "(online or revoked) or pending_reboot");
    assert_eq!(parse("online AND NOT revoked Or pending_reboot").to_string(), "online and not revoked or pending_reboot");
}

#[test]
fn every_error_points_at_its_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("os.name = Ubuntu and", 11, "os.name is text: expected a quoted string, found identifier `Ubuntu` (quote it: \"Ubuntu\")"),
        ("", 1, "empty filter"),
        ("   ", 1, "empty filter"),
        (r#"memory.total < "8""#, 16, "memory.total is a size: expected a size such as 8GiB, found string \"8\""),
        ("memory.total < 8", 16, "write a unit, e.g. 8GiB"),
        ("memory.total < 8G", 16, "unknown unit `G`"),
        ("memory.total < 1.5B", 16, "not a whole number"),
        ("memory.total < 8h", 16, "unknown unit `h`"),
        ("uptime > 7", 10, "write a unit, e.g. 7d"),
        (r#"os.nmae = "x""#, 1, "unknown field `os.nmae`; did you mean `os.name`?"),
        (r#"x and hostnme = "a""#, 1, "unknown field `x`"),
        (r#"online and hostnme = "a""#, 12, "did you mean `hostname`?"),
        (r#"fs("/").usedpercent > 1%"#, 1, "did you mean `fs(\"/\").used_percent`?"),
        (r#"software.openssl < "3""#, 1, "write software(\"openssl\")"),
        (r#"os("x") = "y""#, 1, "`os` takes no key"),
        (r#"softwares("x")"#, 1, "did you mean software(...)?"),
        (r#"software(openssl)"#, 10, "the key as a quoted string"),
        (r#"software("openssl" < "3""#, 20, "`)` after the key"),
        (r#"fs("/") > 3"#, 1, "compare a field of fs(\"/\")"),
        ("memory.total", 1, "memory.total is a size: compare it (e.g. memory.total < 8GiB) or test it with `has memory.total`"),
        ("memory.total and online", 1, "compare it"),
        (r#"hostname < "m""#, 10, "hostname is text: compare it with = != ~ or in, not <"),
        ("online > false", 8, "not >"),
        (r#"memory.total ~ "8*""#, 14, "~ matches text only"),
        ("hostname ~ 5", 12, "a quoted glob"),
        ("hostname ~ /(/", 12, "invalid regular expression"),
        ("(online", 8, "`)` closing the `(` of column 1"),
        ("online)", 7, "expected `and`, `or` or the end of the filter, found `)`"),
        ("online and", 11, "expected a field name, found the end of the filter"),
        ("and = 1", 1, "expected a field name, found keyword `and`"),
        ("last_seen > 1h", 15, "`ago` or `from now` after 1h"),
        ("last_seen > 1h from", 16, "`ago` or `from now`"),
        (r#"last_seen > "yesterday""#, 13, "is not a date"),
        (r#"os.name "x""#, 9, "expected an operator (= != < <= > >= ~ in) after os.name"),
        (r#"os.name = "x" os.id = "y""#, 15, "expected `and`, `or` or the end of the filter, found identifier `os`"),
        ("online = yes", 10, "online is true or false: expected true or false"),
        ("cpu.threads > 2.5", 15, "expected a whole number"),
        ("cpu.threads > 2GiB", 15, "expected a whole number"),
        (r#"software("x") < 3"#, 17, "quote it: \"3\""),
        (r#"os.id in "a""#, 10, "`(` opening the list"),
        (r#"os.id in ("a" "b")"#, 15, "`,` or `)` closing the list"),
        ("ip = 10.0.0.5", 6, "double quotes"),
        ("online && revoked", 8, "write `and`"),
        (r#"hostname = "web"#, 12, "unterminated string"),
        ("has 5", 5, "expected a field name"),
    ];
    for (input, column, message) in cases {
        let error = Filter::parse(input).expect_err(input);
        assert!(error.message.contains(message), "{input:?}: got {:?}, wanted {message:?}", error.message);
        assert_eq!(error.column, *column, "{input:?}:\n{}", error.render(input));
    }
}

#[test]
fn renders_the_issue_example() {
    let input = "os.name = Ubuntu and";
    let error = Filter::parse(input).unwrap_err();
    assert_eq!(
        error.render(input),
        "os.name = Ubuntu and\n          ^ os.name is text: expected a quoted string, found identifier `Ubuntu` (quote it: \"Ubuntu\")"
    );
}

#[test]
fn bounds_input_nesting_and_atoms() {
    let long = format!("hostname = \"{}\"", "a".repeat(MAX_INPUT_BYTES));
    let error = Filter::parse(&long).unwrap_err();
    assert_eq!((error.column, error.message.as_str()), (MAX_INPUT_BYTES + 1, "filter longer than 4096 bytes"));
    // Multi-byte characters: the column counts characters.
    let error = Filter::parse(&"é".repeat(3000)).unwrap_err();
    assert_eq!(error.column, MAX_INPUT_BYTES / 2 + 1);

    let nots = |n: usize| format!("{}online", "not ".repeat(n));
    assert!(Filter::parse(&nots(MAX_DEPTH)).is_ok());
    let error = Filter::parse(&nots(MAX_DEPTH + 1)).unwrap_err();
    assert_eq!(error.column, MAX_DEPTH * 4 + 1, "{}", error.message);
    assert!(error.message.contains("deeper than 64"));
    let parens = |n: usize| format!("{}online{}", "(".repeat(n), ")".repeat(n));
    assert!(Filter::parse(&parens(MAX_DEPTH)).is_ok());
    assert_eq!(Filter::parse(&parens(MAX_DEPTH + 1)).unwrap_err().column, MAX_DEPTH + 1);

    let atoms = |n: usize| vec!["online"; n].join(" or ");
    assert!(Filter::parse(&atoms(MAX_ATOMS)).is_ok());
    let error = Filter::parse(&atoms(MAX_ATOMS + 1)).unwrap_err();
    assert_eq!(error.column, MAX_ATOMS * "online or ".len() + 1);
    assert!(error.message.contains("more than 256 conditions"));

    let list = |n: usize| format!("cpu.threads in ({})", vec!["1"; n].join(","));
    assert!(Filter::parse(&list(MAX_LIST)).is_ok());
    let error = Filter::parse(&list(MAX_LIST + 1)).unwrap_err();
    assert!(error.message.contains("more than 256 values"), "{}", error.message);
}

#[test]
fn regular_expressions_are_size_limited() {
    let error = Filter::parse(r"hostname ~ /\w{1000}\w{1000}/").unwrap_err();
    assert_eq!(error.column, 12);
    assert!(error.message.contains("too large"), "{}", error.message);
    let error = Filter::parse(&format!("hostname ~ /{}a{}/", "(".repeat(40), ")".repeat(40))).unwrap_err();
    assert!(error.message.starts_with("invalid regular expression: "), "{}", error.message);
    assert!(!error.message.contains('\n'), "{}", error.message);
}

// ---------------------------------------------------------------- evaluation

#[test]
fn evaluates_the_issue_example() {
    assert_eq!(
        matching(r#"os.name = "Ubuntu" and memory.total < 8GiB and software("openssl") < "3.0.13" and last_seen > 1h ago"#),
        ["web1"]
    );
}

#[test]
fn missing_data_satisfies_no_comparison_and_not_negates() {
    assert_eq!(matching("memory.total < 8GiB"), ["web1"]);
    assert_eq!(matching("memory.total >= 8GiB"), ["db1"]);
    // The host without an inventory is in neither, so in both negations.
    assert_eq!(matching("not (memory.total < 8GiB)"), ["db1", "fresh"]);
    assert_eq!(matching("not memory.total >= 8GiB"), ["web1", "fresh"]);
    assert_eq!(matching("has memory.total"), ["web1", "db1"]);
    assert_eq!(matching("not has memory.total"), ["fresh"]);
    assert_eq!(matching("has hardware.serial"), Vec::<String>::new());
    // A count is unknown when the section is missing or a source failed.
    assert_eq!(matching("updates.count = 0"), Vec::<String>::new());
    assert_eq!(matching("updates.security > 0"), ["web1"]);
    assert_eq!(matching("memory.modules = 0"), Vec::<String>::new(), "unreadable on web1, unknown elsewhere");
}

#[test]
fn multi_valued_fields_match_when_any_value_does() {
    assert_eq!(matching(r#"ip = "10.0.0.5""#), ["web1"]);
    assert_eq!(matching(r#"ip ~ "10.0.*""#), ["web1", "db1"]);
    assert_eq!(matching(r#"ip ~ /^10\.0\.1\./"#), ["db1"]);
    // Any-match: web1 has addresses other than 10.0.0.5 too.
    assert_eq!(matching(r#"ip != "10.0.0.5""#), ["web1", "db1"]);
    assert_eq!(matching(r#"not ip = "10.0.0.5""#), ["db1", "fresh"]);
    assert_eq!(matching(r#"interface("eth*").ip = "10.0.0.5""#), ["web1"]);
    assert_eq!(matching(r#"interface("lo").ip = "10.0.0.5""#), Vec::<String>::new());
    assert_eq!(matching(r#"mac = "52:54:00:ab:cd:ef""#), ["db1"]);
    assert_eq!(matching("fs.used_percent > 90%"), ["web1"]);
    assert_eq!(matching(r#"fs("/data").used_percent > 90%"#), Vec::<String>::new());
    assert_eq!(matching(r#"fs("/").used_percent > 90% and fs("/data").size >= 2TiB"#), ["web1"]);
    assert_eq!(matching(r#"fs("/").free < 10GiB"#), ["web1"]);
    assert_eq!(matching(r#"os.id_like = "debian""#), ["web1"]);
}

#[test]
fn software_versions_use_the_sources_ordering() {
    assert_eq!(matching(r#"software("openssl") < "3.0.13""#), ["web1"]);
    // rpm: the epoch 1 of 1:3.0.7 outranks any version without one.
    assert_eq!(matching(r#"software("openssl") > "3.0.13""#), ["db1"]);
    assert_eq!(matching(r#"software("openssl") >= "1:3.0.7-27.el9""#), ["db1"]);
    // dpkg: an epoch beats the upstream version, a tilde sorts before the release.
    assert_eq!(matching(r#"software("epoch-tool") > "2.0""#), ["web1"]);
    assert_eq!(matching(r#"software("epoch-tool") = "1:1.0""#), ["web1"]);
    assert_eq!(matching(r#"software("epoch-tool") = "1.0""#), Vec::<String>::new());
    assert_eq!(matching(r#"software("rc-tool") < "1.0""#), ["web1"]);
    assert_eq!(matching(r#"software("rc-tool") >= "1.0~beta""#), ["web1"]);
    assert_eq!(matching(r#"software("rc-tool") < "1.0~rc1""#), Vec::<String>::new());
    // Presence, and a version comparison never matches a host without the package.
    assert_eq!(matching(r#"software("openssl")"#), ["web1", "db1"]);
    assert_eq!(matching(r#"not software("openssl")"#), ["fresh"]);
    assert_eq!(matching(r#"software("nginx") < "99""#), Vec::<String>::new());
    // Several installed versions: any of them may match.
    assert_eq!(matching(r#"software("linux-image-*") < "5.15.0-100""#), ["web1"]);
    assert_eq!(matching(r#"software("linux-image-*") > "5.15.0-100""#), ["web1"]);
    assert_eq!(matching(r#"software("linux-image-*") and not software("linux-image-*") >= "5.15.0-100""#), Vec::<String>::new());
    assert_eq!(matching(r#"software.source = "snap""#), ["web1"]);
    assert_eq!(matching(r#"software("firefox").version ~ "125.*""#), ["web1"]);
}

#[test]
fn evaluates_fields_of_every_section() {
    let cases: &[(&str, &[&str])] = &[
        (r#"hostname ~ /^web\d+$/"#, &["web1"]),
        (r#"os.id in ("ubuntu", "debian")"#, &["web1"]),
        (r#"os.id not in ("ubuntu", "debian")"#, &["db1", "fresh"]),
        (r#"os.version_id >= "22.04""#, &["web1"]),
        (r#"os.version_id < "10""#, &["db1"]),
        (r#"os.kernel < "5.15""#, &["db1"]),
        (r#"fqdn = "web1.example.org""#, &["web1"]),
        (r#"agent.version < "0.2""#, &["web1", "db1", "fresh"]),
        ("agent.certificate_expires < 365d from now", &["web1", "db1", "fresh"]),
        ("online", &["web1"]),
        ("not online", &["db1", "fresh"]),
        ("last_seen > 1h ago", &["web1"]),
        ("last_seen < 1h ago", &["db1"]),
        ("enrolled_at < 7d ago", &["web1", "db1", "fresh"]),
        (r#"enrolled_at < "2025-01-01""#, &[]),
        ("uptime > 7d", &["web1"]),
        ("cpu.threads <= 2 and cpu.cores = 1", &["web1"]),
        (r#"cpu.model ~ "AMD*""#, &["web1"]),
        ("memory.swap = 0", &["web1", "db1"]),
        (r#"virtualization = "vm" and virtualization.technology = "kvm""#, &["web1"]),
        (r#"hardware.vendor = "QEMU""#, &["web1"]),
        ("disk.smart_passed = false", &["web1"]),
        (r#"disk("vda").size = 100GiB"#, &["web1"]),
        (r#"service("sshd").state = "running""#, &[]),
        (r#"service("ssh").state = "running""#, &["web1"]),
        (r#"service("ssh*").state = "running""#, &["web1"]),
        (r#"service("sshd").state = "failed""#, &["db1"]),
        (r#"service("sshd")"#, &["db1"]),
        ("services.failed > 0", &["db1"]),
        (r#"update("openssl").security"#, &["web1"]),
        (r#"update("openssl").available > "3.0.2-0ubuntu1.10""#, &["web1"]),
        ("pending_reboot", &["web1"]),
        ("root_encrypted = false", &["web1"]),
        (r#"user("alice").admin"#, &["web1"]),
        (r#"user("root").admin"#, &[]),
        (r#"admin = "alice""#, &["web1"]),
        ("user.uid >= 1000", &["web1"]),
        ("certificate.expires < 30d from now", &["web1"]),
        (r#"certificate("/etc/ssl/*").expires < 30d from now and certificate.location = "service""#, &["web1"]),
        ("certificates.count > 0", &["web1"]),
        ("certificate.expires < now", &[]),
        ("inventory.collected_at > 5m ago", &["web1"]),
    ];
    for (filter, want) in cases {
        assert_eq!(matching(filter), *want, "{filter}");
    }
}

// ---------------------------------------------------------------- sort keys and columns

#[test]
fn fields_give_sort_keys_and_columns() {
    let ctx = Context { now_unix_ms: NOW, offline_after_ms: OFFLINE_AFTER };
    let field = FieldRef::parse("memory.total").unwrap();
    let mut hosts = fleet();
    hosts.sort_by(|a, b| field.compare_hosts(a, b, &ctx));
    let names: Vec<&str> = hosts.iter().map(|h| h.agent.hostname.as_str()).collect();
    assert_eq!(names, ["web1", "db1", "fresh"], "ascending, unknown last");

    let web1 = web1();
    let used = FieldRef::parse(r#"fs("/").used_percent"#).unwrap();
    assert_eq!(used.to_string(), r#"fs("/").used_percent"#);
    assert_eq!(used.ty(), Type::Percent);
    assert_eq!(used.value(&web1, &ctx), Some(Value::Percent(95.0)));
    let ips = FieldRef::parse("ip").unwrap();
    assert_eq!(ips.values(&web1, &ctx), [Value::Text("127.0.0.1"), Value::Text("10.0.0.5"), Value::Text("fe80::1")]);
    assert_eq!(ips.value(&web1, &ctx), Some(Value::Text("127.0.0.1")));
    let openssl = FieldRef::parse(r#"software("openssl")"#).unwrap();
    assert_eq!(openssl.to_string(), r#"software("openssl").version"#, "a bare call names the default field");
    assert_eq!(openssl.value(&web1, &ctx).map(|v| v.to_string()), Some("3.0.2-0ubuntu1.10".into()));
    assert_eq!(FieldRef::parse(r#"fs("/")"#).unwrap().to_string(), r#"fs("/").mount"#);
    assert_eq!(FieldRef::parse("online").unwrap().value(&fresh(), &ctx), Some(Value::Bool(false)));
    assert_eq!(FieldRef::parse("memory.total").unwrap().value(&fresh(), &ctx), None);
    assert_eq!(FieldRef::parse("uptime").unwrap().value(&web1, &ctx).map(|v| v.to_string()), Some("10days".into()));
    let error = FieldRef::parse("memory.totl").unwrap_err();
    assert_eq!((error.column, error.message.as_str()), (1, "unknown field `memory.totl`; did you mean `memory.total`?"));
    assert_eq!(FieldRef::parse("memory.total extra").unwrap_err().column, 14);
}

// ---------------------------------------------------------------- the reference

#[test]
fn docs_list_every_field() {
    let doc = include_str!("../../../docs/filters.md");
    let table = catalogue_markdown();
    assert!(
        doc.contains(&table),
        "docs/filters.md does not hold the field catalogue as the code has it; replace its table with:\n\n{table}"
    );
    let collections = collections_markdown();
    assert!(doc.contains(&collections), "docs/filters.md does not hold the collections as the code has them:\n\n{collections}");
    for f in FIELDS {
        assert!(doc.contains(&format!("`{}`", f.name)), "docs/filters.md does not name {}", f.name);
    }
}

/// Every example in the doc's code blocks marked `filter` parses.
#[test]
fn docs_examples_parse() {
    let doc = include_str!("../../../docs/filters.md");
    let mut examples = 0;
    for block in doc.split("```filter\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            if let Err(e) = Filter::parse(line) {
                panic!("docs/filters.md example does not parse:\n{}", e.render(line));
            }
            examples += 1;
        }
    }
    assert!(examples >= 10, "{examples} examples");
}

// ---------------------------------------------------------------- properties

/// A literal of the given type, as the parser could have produced it.
fn literal(ty: Type) -> BoxedStrategy<Literal> {
    match ty {
        Type::Text | Type::Version => "(?s).{0,6}".prop_map(Literal::Text).boxed(),
        Type::Integer => prop_oneof![0i64..5_000, 0..=i64::MAX].prop_map(Literal::Integer).boxed(),
        Type::Size => prop_oneof![(0u64..64).prop_map(|n| n << 30), 0..=u64::MAX].prop_map(Literal::Size).boxed(),
        Type::Percent => (0u32..100_000).prop_map(|n| Literal::Percent(f64::from(n) / 100.0)).boxed(),
        Type::Duration => (0i64..=i64::MAX).prop_map(Literal::Duration).boxed(),
        Type::Time => prop_oneof![
            Just(TimeLiteral::Now),
            (0i64..400 * DAY).prop_map(TimeLiteral::Ago),
            (0i64..400 * DAY).prop_map(TimeLiteral::FromNow),
            (0i64..=253_402_300_799_999).prop_map(TimeLiteral::At),
        ]
        .prop_map(Literal::Time)
        .boxed(),
        Type::Bool => any::<bool>().prop_map(Literal::Bool).boxed(),
    }
}

fn field_ref() -> impl Strategy<Value = FieldRef> {
    (proptest::sample::select(FIELDS.iter().collect::<Vec<_>>()), proptest::option::of(r#"[a-z/*?"\\]{0,5}"#)).prop_map(|(def, key)| {
        let key = def.collection().and_then(|c| key.map(|k| Key::new(&k, c)));
        FieldRef { def, key }
    })
}

fn condition() -> impl Strategy<Value = Expr> {
    const REGEXES: [&str; 4] = [r"^web-\d+$", "a/b", "(?i)ubuntu", r"\.example\.org$"];
    field_ref().prop_flat_map(|field| {
        let ty = field.ty();
        let ops =
            if matches!(ty, Type::Text | Type::Bool) { vec![Op::Eq, Op::Ne] } else { vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge] };
        let mut tests = vec![
            Just(Test::Present).boxed(),
            (proptest::sample::select(ops), literal(ty)).prop_map(|(op, l)| Test::Compare(op, l)).boxed(),
            proptest::collection::vec(literal(ty), 1..4).prop_map(Test::In).boxed(),
        ];
        if matches!(ty, Type::Text | Type::Version) {
            tests.push("[a-z0-9.*?]{0,6}".prop_map(|g| Test::Matches(Pattern::Glob(crate::alert::pattern::Glob::new(&g)))).boxed());
            tests.push(
                proptest::sample::select(REGEXES.to_vec())
                    .prop_map(|r| Test::Matches(Pattern::Regex(regex::Regex::new(r).expect("valid test regex"))))
                    .boxed(),
            );
        }
        (Just(field), proptest::strategy::Union::new(tests)).prop_map(|(field, test)| Expr::Condition(Condition { field, test }))
    })
}

fn expr() -> impl Strategy<Value = Expr> {
    condition().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

/// Hosts whose sections are each present or not, with values drawn from
/// small sets so that generated filters sometimes match.
fn host() -> impl Strategy<Value = HostView> {
    let name = || proptest::sample::select(vec!["openssl", "a", "web1", "/", "eth0", "sshd.service", ""]);
    let version = || proptest::sample::select(vec!["1.0", "1:1.0", "1.0~rc1", "3.0.13", "2.0-1", ""]);
    let source = || proptest::sample::select(vec!["dpkg", "rpm", "apk", "pacman", "snap"]);
    let software = proptest::collection::vec((name(), version(), source()), 0..4)
        .prop_map(|p| pb::SoftwareSection { packages: p.into_iter().map(|(n, v, s)| package(n, v, s)).collect() });
    let filesystems = proptest::collection::vec((name(), 0u64..4 * GIB, 0u64..4 * GIB), 0..3)
        .prop_map(|f| pb::FilesystemSection { filesystems: f.into_iter().map(|(m, t, free)| filesystem(m, t, free.min(t))).collect() });
    let network = proptest::collection::vec((name(), proptest::option::of(name()), proptest::collection::vec(name(), 0..3)), 0..3)
        .prop_map(|i| pb::NetworkSection { interfaces: i.into_iter().map(|(n, mac, addrs)| interface(n, mac, &addrs)).collect() });
    let os = (name(), version(), proptest::option::of(0i64..NOW)).prop_map(|(n, v, boot)| pb::OsSection {
        name: n.into(),
        id: Some(n.into()),
        version_id: Some(v.into()),
        kernel: v.into(),
        boot_time_unix_ms: boot,
        ..Default::default()
    });
    let memory = (0u64..64 * GIB).prop_map(|t| pb::MemorySection { total_bytes: t, ..Default::default() });
    let services = proptest::collection::vec((name(), name(), name()), 0..3)
        .prop_map(|s| pb::ServicesSection { units: s.into_iter().map(|(n, a, b)| service(n, a, b)).collect(), ..Default::default() });
    let certificates = proptest::collection::vec((name(), 0i64..2 * NOW, any::<bool>()), 0..3).prop_map(|c| pb::CertificatesSection {
        certificates: c
            .into_iter()
            .map(|(p, t, ca)| pb::Certificate {
                path: p.into(),
                not_after_unix_ms: t,
                is_ca: ca,
                sans: vec![p.into()],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    let updates = proptest::collection::vec((name(), version(), any::<bool>()), 0..3).prop_map(|u| pb::UpdatesSection {
        updates: u
            .into_iter()
            .map(|(n, v, security)| pb::PendingUpdate {
                name: n.into(),
                available_version: v.into(),
                source: "apt".into(),
                security,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    let inventory = (
        proptest::option::of(os),
        proptest::option::of(memory),
        proptest::option::of(filesystems),
        proptest::option::of(network),
        proptest::option::of(software),
        proptest::option::of(services),
        proptest::option::of(certificates),
        proptest::option::of(updates),
        proptest::option::of(Just(web1().inventory.and_then(|r| std::sync::Arc::unwrap_or_clone(r).inventory).unwrap_or_default())),
    )
        .prop_map(|(os, memory, filesystems, network, software, services, certificates, updates, rest)| pb::Inventory {
            os,
            memory,
            filesystems,
            network,
            software,
            services,
            certificates,
            updates,
            // Sections not generated above, whole, half of the time.
            ..rest.unwrap_or_default()
        });
    (name(), 0i64..NOW + DAY, any::<bool>(), proptest::option::of(inventory)).prop_map(|(hostname, last_seen, revoked, inventory)| {
        let mut agent = agent(hostname, last_seen);
        agent.revoked = revoked;
        HostView { agent, inventory: inventory.map(|i| std::sync::Arc::new(InventoryRecord { inventory: Some(i), ..Default::default() })) }
    })
}

/// Text that looks like filters more often than random strings do.
fn filterish() -> impl Strategy<Value = String> {
    let pieces = vec![
        "not",
        "and",
        "or",
        "in",
        "has",
        "(",
        ")",
        ",",
        ".",
        "=",
        "!=",
        "<",
        ">=",
        "~",
        "online",
        "os.name",
        "fs",
        "(\"/\")",
        "software",
        "\"openssl\"",
        "\"a",
        "/x/",
        "/(/",
        "8GiB",
        "90%",
        "1h",
        "ago",
        "from",
        "now",
        "3.0.13",
        "1.5",
        "used_percent",
        "é",
        "\\",
        "\"",
        "memory.total",
        "ip",
        "true",
        "x",
    ];
    proptest::collection::vec(proptest::sample::select(pieces), 0..20).prop_map(|p| p.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// (a) A filter and its negation partition any set of hosts.
    #[test]
    fn a_filter_and_its_negation_partition_the_hosts(
        expr in expr(),
        hosts in proptest::collection::vec(host(), 0..8),
        now in NOW - DAY..NOW + DAY,
    ) {
        let text = expr.to_string();
        prop_assume!(text.len() + 6 <= MAX_INPUT_BYTES);
        let filter = Filter::parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        let negation = Filter::parse(&format!("not ({text})")).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        for host in &hosts {
            prop_assert_ne!(filter.matches(host, now, OFFLINE_AFTER), negation.matches(host, now, OFFLINE_AFTER), "{} on {:?}", text, host.agent.hostname);
        }
    }

    /// (b) Printing a tree and parsing the text gives the same tree.
    #[test]
    fn printing_and_parsing_round_trips(expr in expr()) {
        let text = expr.to_string();
        prop_assume!(text.len() <= MAX_INPUT_BYTES);
        let parsed = Filter::parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        prop_assert_eq!(parsed.expr(), &expr, "{}", text);
    }

    /// (c) The parser never panics, and an error's column lies within the
    /// input or one past its end.
    #[test]
    fn parsing_never_panics_and_columns_stay_in_the_input(text in prop_oneof![any::<String>(), filterish()]) {
        let chars = text.chars().count();
        for result in [Filter::parse(&text).map(|_| ()), FieldRef::parse(&text).map(|_| ())] {
            if let Err(e) = result {
                prop_assert!((1..=chars + 1).contains(&e.column), "column {} of {:?} ({} chars): {}", e.column, text, chars, e.message);
                let _ = e.render(&text);
            }
        }
        if let Ok(filter) = Filter::parse(&text) {
            prop_assert_eq!(Filter::parse(&filter.to_string()).ok(), Some(filter));
        }
    }
}
