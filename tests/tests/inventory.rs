//! Inventory end to end, checked against the machine running the test
//! (oracles, not literals): what the agent collects, the collector stores
//! and `census host --output json` returns must equal what this machine's
//! own tools say.
//!
//! One test function on purpose: the listening-socket comparison needs
//! a machine where no other test opens or closes ports meanwhile.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

/// Runs one of the oracle tools; .ci/run installs them, so a missing one
/// is a broken test machine, not a reason to skip.
fn tool(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("oracle {cmd} cannot run: {e}"));
    assert!(out.status.success(), "oracle {cmd} {args:?} failed: {}", text(&out.stderr));
    Some(text(&out.stdout))
}

/// Runs a tool that may legitimately be missing on a CI machine (apt):
/// `None` when it cannot be started.
fn optional_tool(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    assert!(out.status.success(), "oracle {cmd} {args:?} failed: {}", text(&out.stderr));
    Some(text(&out.stdout))
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

#[test]
fn stored_inventory_equals_what_the_machine_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Configured certificate paths: test certificates made here with openssl
    // (when the machine has it) plus a key and a garbage file to be skipped.
    let cert_dir = dir.path().join("certs");
    std::fs::create_dir_all(&cert_dir).expect("cert dir");
    let have_openssl = make_test_certificates(&cert_dir);
    let agent_config = dir.path().join("agent.toml");
    std::fs::write(&agent_config, format!("certificate_paths = [{:?}]\n", cert_dir.display().to_string())).expect("agent config");
    let collector = Collector::start(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    // Sockets other processes open or close meanwhile (a busy test machine)
    // are allowed to differ: a listener present both before the agent's
    // inventory and after it must be in it, and nothing outside either.
    let ss_before = tool("ss", &["-ltnH"]);
    let (mut agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    agent.run(&["--config", agent_config.to_str().expect("utf-8 temp path")]);
    let host = eventually("the first inventory to be stored", || {
        collector.hosts().into_iter().find(|h| h["memory_total_bytes"].as_u64().unwrap_or(0) > 0)
    });
    let agent_id = host["agent_id"].as_str().expect("agent id").to_string();
    let out = collector.census(&["host", &agent_id, "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let detail: Value = serde_json::from_slice(&out.stdout).expect("json");
    let inv = &detail["inventory"];
    let errors = inv["errors"].as_array().cloned().unwrap_or_default();

    // --- software == dpkg-query -W, exactly, as a set
    if let Some(dpkg) = tool("dpkg-query", &["-W", "-f", "${Package}\t${Version}\t${Architecture}\n"]) {
        let expected: BTreeSet<String> = dpkg.lines().map(str::to_string).collect();
        let got: BTreeSet<String> = inv["software"]["packages"]
            .as_array()
            .expect("software section present")
            .iter()
            .filter(|p| p["source"] == "dpkg")
            .map(|p| {
                format!(
                    "{}\t{}\t{}",
                    p["name"].as_str().unwrap_or(""),
                    p["version"].as_str().unwrap_or(""),
                    p["arch"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert!(!expected.is_empty());
        let missing: Vec<_> = expected.difference(&got).take(5).collect();
        let extra: Vec<_> = got.difference(&expected).take(5).collect();
        assert_eq!(got.len(), expected.len(), "package count differs; missing {missing:?} extra {extra:?}");
        assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?} extra {extra:?}");

        // census software NAME finds this host at the installed version.
        let first = expected.iter().next().expect("a package");
        let mut cols = first.split('\t');
        let (name, version) = (cols.next().expect("name"), cols.next().expect("version"));
        let out = collector.census(&["software", name, "--output", "json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let sw: Value = serde_json::from_slice(&out.stdout).expect("json");
        let v = sw["versions"].as_array().expect("versions").iter().find(|v| v["version"] == version).expect("installed version listed");
        assert_eq!(v["host_count"].as_u64(), Some(1));
        assert_eq!(v["hosts"][0]["agent_id"].as_str(), Some(agent_id.as_str()));
    }

    // --- kernel and OS fields
    let uname = tool("uname", &["-r"]).expect("uname");
    assert_eq!(inv["os"]["kernel"].as_str(), Some(uname.trim()));
    let release =
        std::fs::read_to_string("/etc/os-release").or_else(|_| std::fs::read_to_string("/usr/lib/os-release")).expect("os-release");
    for (key, field) in [("NAME", "name"), ("VERSION_ID", "version_id"), ("ID", "id"), ("PRETTY_NAME", "pretty_name")] {
        if let Some(line) = release.lines().find(|l| l.starts_with(&format!("{key}="))) {
            let value = line[key.len() + 1..].trim_matches('"');
            assert_eq!(inv["os"][field].as_str(), Some(value), "os-release {key}");
        }
    }

    // --- filesystems == util-linux's real filesystems (snap squashfs images excluded), sizes == statvfs via df
    if let Some(findmnt) = tool("findmnt", &["--real", "-rn", "-o", "TARGET,FSTYPE"]) {
        let expected: BTreeSet<String> = findmnt
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, t)| *t != "squashfs")
            .map(|(m, _)| m.replace("\\x20", " "))
            .collect();
        let fs = inv["filesystems"]["filesystems"].as_array().expect("filesystems");
        let got: BTreeSet<String> = fs.iter().filter_map(|f| f["mount_point"].as_str().map(str::to_string)).collect();
        assert_eq!(got, expected);
        for f in fs {
            let mount = f["mount_point"].as_str().expect("mount");
            let df = tool("df", &["-B1", "--output=size,itotal", mount]).expect("df");
            let mut nums = df.lines().nth(1).expect("df row").split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
            assert_eq!(f["total_bytes"].as_u64(), nums.next(), "size of {mount}");
            assert_eq!(f["inodes_total"].as_u64(), nums.next(), "inodes of {mount}");
        }
    }

    // --- interfaces, MACs and addresses == ip -j addr
    if let Some(ip) = tool("ip", &["-j", "addr"]) {
        let links: Value = serde_json::from_str(&ip).expect("ip json");
        let mut expected = BTreeSet::new();
        for l in links.as_array().expect("array") {
            let name = l["ifname"].as_str().expect("ifname");
            let mac = l["address"].as_str().filter(|m| l["link_type"] == "ether" && *m != "00:00:00:00:00:00").unwrap_or("-");
            expected.insert(format!("{name} mac {mac}"));
            for a in l["addr_info"].as_array().into_iter().flatten() {
                expected.insert(format!("{name} {}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]));
            }
        }
        let mut got = BTreeSet::new();
        for i in inv["network"]["interfaces"].as_array().expect("interfaces") {
            let name = i["name"].as_str().expect("name");
            got.insert(format!("{name} mac {}", i["mac"].as_str().unwrap_or("-")));
            for a in i["addresses"].as_array().into_iter().flatten() {
                got.insert(format!("{name} {}/{}", a["address"].as_str().unwrap_or(""), a["prefix_len"]));
            }
        }
        assert_eq!(got, expected);
    }

    // --- listening TCP == ss -ltnH (address:port, ss's notation normalised)
    if let (Some(before), Some(after)) = (ss_before, tool("ss", &["-ltnH"])) {
        let normalise = |s: &str| -> String {
            let (addr, port) = s.rsplit_once(':').expect("addr:port");
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let addr = addr.split('%').next().unwrap_or(addr);
            let addr = if addr == "*" { "::" } else { addr };
            format!("{addr} {port}")
        };
        let parse = |ss: &str| -> BTreeSet<String> { ss.lines().filter_map(|l| l.split_whitespace().nth(3)).map(normalise).collect() };
        let (before, after) = (parse(&before), parse(&after));
        let got: BTreeSet<String> = inv["netconfig"]["listening"]
            .as_array()
            .expect("listening sockets")
            .iter()
            .filter(|s| s["protocol"].as_str().is_some_and(|p| p.starts_with("tcp")))
            .map(|s| format!("{} {}", s["address"].as_str().unwrap_or(""), s["port"]))
            .collect();
        let stable: BTreeSet<String> = before.intersection(&after).cloned().collect();
        let seen_at_all: BTreeSet<String> = before.union(&after).cloned().collect();
        assert!(stable.is_subset(&got), "listening TCP sockets missing: {:?}", stable.difference(&got).collect::<Vec<_>>());
        assert!(got.is_subset(&seen_at_all), "listening TCP sockets ss never saw: {:?}", got.difference(&seen_at_all).collect::<Vec<_>>());
        let collector_port = collector.agent_addr.port().to_string();
        assert!(got.iter().any(|s| s.ends_with(&format!(" {collector_port}"))), "the collector's own socket is seen");
    }

    // --- local accounts == getent passwd
    if let Some(passwd) = tool("getent", &["passwd"]) {
        let expected: BTreeSet<String> = passwd.lines().filter_map(|l| l.split(':').next()).map(str::to_string).collect();
        let got: BTreeSet<String> =
            inv["users"]["accounts"].as_array().expect("accounts").iter().filter_map(|a| a["name"].as_str().map(str::to_string)).collect();
        assert_eq!(got, expected);
    }

    // --- DMI fields == /sys/class/dmi/id/* wherever readable; otherwise reported unreadable with a reason
    let system = &inv["hardware"]["system"];
    let unreadable =
        strings(&Value::Array(inv["hardware"]["unreadable"].as_array().into_iter().flatten().map(|u| u["field"].clone()).collect()));
    for (file, field) in [
        ("sys_vendor", "vendor"),
        ("product_name", "model"),
        ("product_serial", "serial"),
        ("bios_vendor", "bios_vendor"),
        ("bios_version", "bios_version"),
        ("bios_date", "bios_date"),
    ] {
        match std::fs::read_to_string(format!("/sys/class/dmi/id/{file}")) {
            Ok(v) if !v.trim().is_empty() => assert_eq!(system[field].as_str(), Some(v.trim()), "DMI {file}"),
            _ => assert!(
                system[field].is_null() && unreadable.iter().any(|u| u.ends_with(field)),
                "DMI {file} unreadable here: {field} must be absent and listed as unreadable (got {unreadable:?})"
            ),
        }
    }

    // --- certificates == the documented rule applied here, parsed by openssl
    if have_openssl {
        let expected = certificates_by_the_rule(&cert_dir);
        let got: BTreeSet<(String, String)> = inv["certificates"]["certificates"]
            .as_array()
            .expect("certificates section present")
            .iter()
            .map(|c| (c["path"].as_str().unwrap_or("").to_string(), c["sha256_fingerprint"].as_str().unwrap_or("").to_string()))
            .collect();
        assert_eq!(got, expected, "certificates (path, sha256)");
        let configured: Vec<&Value> =
            inv["certificates"]["certificates"].as_array().into_iter().flatten().filter(|c| c["location"] == "configured").collect();
        assert_eq!(configured.len(), 4, "web.pem, chain.pem (2), web.der: {configured:?}");
        assert!(configured.iter().any(|c| c["sans"].as_array().is_some_and(|s| s.iter().any(|n| n == "DNS:web.example.test"))));
        assert!(
            strings(&Value::Array(
                inv["certificates"]["unreadable"].as_array().into_iter().flatten().map(|u| u["field"].clone()).collect()
            ))
            .iter()
            .any(|f| f.contains("garbage.crt")),
            "the garbage file is reported unreadable"
        );
    }

    // --- pending apt updates == apt list --upgradable, only when this
    // machine has package lists (CI machines may have none, or other ones)
    let has_lists = std::fs::read_dir("/var/lib/apt/lists").into_iter().flatten().flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.ends_with("_Packages") || name.ends_with("_Packages.lz4")
    });
    if has_lists && let Some(listing) = optional_tool("apt", &["list", "--upgradable"]) {
        let mut expected = BTreeSet::new();
        let mut expected_security = BTreeSet::new();
        for line in listing.lines().filter(|l| l.contains("[upgradable from: ")) {
            // name/suite[,suite] version arch [upgradable from: old]
            let words: Vec<&str> = line.split_whitespace().collect();
            let (name, suites) = words[0].split_once('/').expect("name/suite");
            let old = words.last().expect("old version").trim_end_matches(']');
            expected.insert(format!("{name} {} {old}", words[1]));
            if suites.split(',').any(|s| s.ends_with("-security")) {
                expected_security.insert(name.to_string());
            }
        }
        let apt: Vec<&Value> =
            inv["updates"]["updates"].as_array().expect("updates section present").iter().filter(|u| u["source"] == "apt").collect();
        let got: BTreeSet<String> = apt
            .iter()
            .map(|u| {
                format!(
                    "{} {} {}",
                    u["name"].as_str().unwrap_or(""),
                    u["available_version"].as_str().unwrap_or(""),
                    u["installed_version"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(got, expected, "apt updates (name available installed)");
        let security: BTreeSet<String> =
            apt.iter().filter(|u| u["security"] == true).filter_map(|u| u["name"].as_str().map(str::to_string)).collect();
        let unmarked: Vec<&String> = expected_security.difference(&security).collect();
        assert!(unmarked.is_empty(), "updates from a -security suite not marked security: {unmarked:?}");
    }

    assert!(errors.is_empty(), "no section failed on this machine: {errors:?}");
}

/// Writes a self-signed certificate with SANs (PEM and DER), a two-certificate
/// chain, a private key and a garbage .crt into `dir` with openssl.
/// `false` when this machine has no openssl (that comparison is skipped).
fn make_test_certificates(dir: &Path) -> bool {
    let openssl = |args: &[&str]| Command::new("openssl").args(args).current_dir(dir).output();
    let Ok(version) = openssl(&["version"]) else { return false };
    assert!(version.status.success());
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    for (key, cert, subject, ext) in [
        ("web.key", "web.pem", "/CN=web.example.test", "subjectAltName=DNS:web.example.test,IP:192.0.2.10"),
        ("ca.key", "ca.pem", "/CN=Census E2E CA", "basicConstraints=critical,CA:TRUE"),
    ] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend(["-keyout", key, "-out", cert, "-days", "30", "-subj", subject, "-addext", ext]);
        let out = openssl(&args).expect("openssl runs");
        assert!(out.status.success(), "openssl req: {}", text(&out.stderr));
    }
    let out = openssl(&["x509", "-in", "web.pem", "-outform", "DER", "-out", "web.der"]).expect("openssl runs");
    assert!(out.status.success(), "openssl x509: {}", text(&out.stderr));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("written by openssl");
    std::fs::write(dir.join("chain.pem"), read("web.pem") + &read("ca.pem")).expect("chain");
    std::fs::remove_file(dir.join("ca.pem")).expect("ca.pem");
    std::fs::rename(dir.join("web.key"), dir.join("web-key.pem")).expect("key");
    std::fs::write(dir.join("garbage.crt"), "not a certificate\n").expect("garbage");
    true
}

/// The agent's documented selection rule (agent/src/collect/certificates),
/// applied to this machine independently, each certificate's SHA-256 taken
/// by `openssl x509`.
fn certificates_by_the_rule(configured: &Path) -> BTreeSet<(String, String)> {
    const DISTRO: [&str; 5] = [
        "/usr/share/ca-certificates/",
        "/etc/pki/ca-trust/extracted/",
        "/usr/share/pki/",
        "/etc/ca-certificates/extracted/",
        "/var/lib/ca-certificates/",
    ];
    const BUNDLES: [&str; 4] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/pki/tls/certs/ca-bundle.trust.crt",
    ];
    fn walk(path: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return };
        let is_dir = if meta.file_type().is_symlink() { depth == 0 && path.is_dir() } else { meta.is_dir() };
        if is_dir {
            if (depth > 0 && path.file_name().is_some_and(|n| n == "private")) || depth >= 6 {
                return;
            }
            let mut names: Vec<_> = std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
            names.sort();
            for name in names {
                walk(&path.join(name), depth + 1, out);
            }
        } else {
            let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
            let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
            if ["pem", "crt", "cer", "der"].contains(&ext.as_str()) && !name.starts_with("privkey") && !name.contains(".key") {
                out.push(path.to_path_buf());
            }
        }
    }
    let mut candidates: Vec<(PathBuf, bool)> = Vec::new();
    for dir in [
        "/usr/local/share/ca-certificates",
        "/etc/pki/ca-trust/source/anchors",
        "/etc/ssl/certs",
        "/etc/ssl",
        "/etc/pki",
        "/etc/letsencrypt/live",
    ] {
        let mut files = Vec::new();
        walk(Path::new(dir), 0, &mut files);
        candidates.extend(files.into_iter().map(|f| (f, false)));
    }
    let mut files = Vec::new();
    walk(configured, 0, &mut files);
    candidates.extend(files.into_iter().map(|f| (f, true)));

    let mut seen = HashSet::new();
    let mut expected = BTreeSet::new();
    for (path, explicit) in candidates {
        let Ok(real) = std::fs::canonicalize(&path) else { continue };
        let real_text = real.to_string_lossy().into_owned();
        if BUNDLES.iter().any(|b| Path::new(b) == path || *b == real_text) || (!explicit && DISTRO.iter().any(|d| real_text.starts_with(d)))
        {
            continue;
        }
        if !seen.insert(real.clone()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&real) else { continue };
        let blocks: Vec<(Vec<u8>, &str)> = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            let pem = String::from_utf8_lossy(&bytes).into_owned();
            let mut blocks = Vec::new();
            let mut rest = pem.as_str();
            while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
                let Some(len) = rest[start..].find("-----END CERTIFICATE-----") else { break };
                let end = start + len + "-----END CERTIFICATE-----".len();
                blocks.push((format!("{}\n", &rest[start..end]).into_bytes(), "PEM"));
                rest = &rest[end..];
            }
            blocks
        } else {
            vec![(bytes, "DER")]
        };
        for (block, form) in blocks {
            if let Some(fingerprint) = openssl_fingerprint(&block, form) {
                expected.insert((path.display().to_string(), fingerprint));
            }
        }
    }
    expected
}

/// `openssl x509 -fingerprint -sha256` of one certificate, as lower-case
/// hex without colons; `None` when openssl does not take it.
fn openssl_fingerprint(certificate: &[u8], form: &str) -> Option<String> {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-inform", form])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl runs");
    child.stdin.take().expect("piped").write_all(certificate).expect("openssl reads");
    let out = child.wait_with_output().expect("openssl finishes");
    if !out.status.success() {
        return None;
    }
    let line = text(&out.stdout);
    let (_, hex) = line.trim().split_once('=')?;
    Some(hex.replace(':', "").to_lowercase())
}
