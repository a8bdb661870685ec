//! Inventory end to end, checked against the machine running the test
//! (oracles, not literals): what the agent collects, the collector stores
//! and `census host --output json` returns must equal what this machine's
//! own tools say.
//!
//! One test function on purpose: the listening-socket comparison needs
//! a machine where no other test opens or closes ports meanwhile.

use std::collections::BTreeSet;
use std::process::Command;

use census_tests::{Agent, Collector, eventually, text};
use serde_json::Value;

/// Runs one of the oracle tools; .ci/run installs them, so a missing one
/// is a broken test machine, not a reason to skip.
fn tool(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("oracle {cmd} cannot run: {e}"));
    assert!(out.status.success(), "oracle {cmd} {args:?} failed: {}", text(&out.stderr));
    Some(text(&out.stdout))
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

#[test]
fn stored_inventory_equals_what_the_machine_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "[agents]\nheartbeat_interval = \"1s\"\n");
    let (mut agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "{}", text(&out.stderr));
    agent.run(&[]);
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
            .map(|p| format!("{}\t{}\t{}", p["name"].as_str().unwrap_or(""), p["version"].as_str().unwrap_or(""), p["arch"].as_str().unwrap_or("")))
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
    let release = std::fs::read_to_string("/etc/os-release").or_else(|_| std::fs::read_to_string("/usr/lib/os-release")).expect("os-release");
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
    if let Some(ss) = tool("ss", &["-ltnH"]) {
        let normalise = |s: &str| -> String {
            let (addr, port) = s.rsplit_once(':').expect("addr:port");
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let addr = addr.split('%').next().unwrap_or(addr);
            let addr = if addr == "*" { "::" } else { addr };
            format!("{addr} {port}")
        };
        let expected: BTreeSet<String> = ss.lines().filter_map(|l| l.split_whitespace().nth(3)).map(normalise).collect();
        let got: BTreeSet<String> = inv["netconfig"]["listening"]
            .as_array()
            .expect("listening sockets")
            .iter()
            .filter(|s| s["protocol"].as_str().is_some_and(|p| p.starts_with("tcp")))
            .map(|s| format!("{} {}", s["address"].as_str().unwrap_or(""), s["port"]))
            .collect();
        assert_eq!(got, expected, "listening TCP sockets");
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
    let unreadable = strings(&Value::Array(
        inv["hardware"]["unreadable"].as_array().into_iter().flatten().map(|u| u["field"].clone()).collect(),
    ));
    for (file, field) in [("sys_vendor", "vendor"), ("product_name", "model"), ("product_serial", "serial"), ("bios_vendor", "bios_vendor"), ("bios_version", "bios_version"), ("bios_date", "bios_date")] {
        match std::fs::read_to_string(format!("/sys/class/dmi/id/{file}")) {
            Ok(v) if !v.trim().is_empty() => assert_eq!(system[field].as_str(), Some(v.trim()), "DMI {file}"),
            _ => assert!(
                system[field].is_null() && unreadable.iter().any(|u| u.ends_with(field)),
                "DMI {file} unreadable here: {field} must be absent and listed as unreadable (got {unreadable:?})"
            ),
        }
    }

    assert!(errors.is_empty(), "no section failed on this machine: {errors:?}");
}
