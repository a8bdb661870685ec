//! The change history domain: what changed on a host between two stored
//! inventories, computed purely from (old, new). No I/O, no clock: the
//! time of the change is the new inventory's collection time, passed in.
//!
//! Invariants:
//! - `changes(a, a)` is empty, so an unchanged inventory (or a periodic full
//!   snapshot equal to what is stored) adds nothing to the history;
//! - a section absent on either side (it failed this time, or before)
//!   yields no change for that section: a failed read is not an uninstall;
//! - software is keyed by (source, name, arch); one version replaced by
//!   another is one "upgraded" (or "downgraded") event, not a removal plus
//!   an install; several versions side by side (kernels) are compared as
//!   sets.

use std::collections::{BTreeMap, BTreeSet};

use census_proto::v1 as pb;

/// One change event. `subject` is what changed (a package, a disk serial,
/// an interface); `old`/`new` are human-readable values, empty when the
/// thing did not exist on that side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at_unix_ms: i64,
    pub kind: ChangeKind,
    pub subject: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    SoftwareInstalled,
    SoftwareRemoved,
    SoftwareUpgraded,
    SoftwareDowngraded,
    MemoryChanged,
    DiskAdded,
    DiskRemoved,
    IpChanged,
    MacChanged,
    OsUpgraded,
}

impl ChangeKind {
    /// Every kind, for code that validates a pattern over kind names.
    pub const ALL: [ChangeKind; 10] = [
        ChangeKind::SoftwareInstalled,
        ChangeKind::SoftwareRemoved,
        ChangeKind::SoftwareUpgraded,
        ChangeKind::SoftwareDowngraded,
        ChangeKind::MemoryChanged,
        ChangeKind::DiskAdded,
        ChangeKind::DiskRemoved,
        ChangeKind::IpChanged,
        ChangeKind::MacChanged,
        ChangeKind::OsUpgraded,
    ];

    /// The kind a stored name denotes.
    pub fn parse(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The stable name stored and shown (`census changes`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::SoftwareInstalled => "software.installed",
            ChangeKind::SoftwareRemoved => "software.removed",
            ChangeKind::SoftwareUpgraded => "software.upgraded",
            ChangeKind::SoftwareDowngraded => "software.downgraded",
            ChangeKind::MemoryChanged => "hardware.memory_changed",
            ChangeKind::DiskAdded => "hardware.disk_added",
            ChangeKind::DiskRemoved => "hardware.disk_removed",
            ChangeKind::IpChanged => "network.ip_changed",
            ChangeKind::MacChanged => "network.mac_changed",
            ChangeKind::OsUpgraded => "os.upgraded",
        }
    }
}

/// The changes from `old` to `new`, at `at_unix_ms`. `newer(a, b)` orders
/// two versions of a package source ("is b newer than a?"): the ecosystem's
/// own ordering, decided by the caller.
pub fn changes(old: &pb::Inventory, new: &pb::Inventory, at_unix_ms: i64, newer: &dyn Fn(&str, &str, &str) -> bool) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |kind, subject: String, old: String, new: String| out.push(Change { at_unix_ms, kind, subject, old, new });

    if let (Some(a), Some(b)) = (&old.software, &new.software) {
        let (before, after) = (versions_by_package(a), versions_by_package(b));
        let keys: BTreeSet<&(&str, &str, &str)> = before.keys().chain(after.keys()).collect();
        let empty = BTreeSet::new();
        for key in keys {
            let (was, now) = (before.get(key).unwrap_or(&empty), after.get(key).unwrap_or(&empty));
            if was == now {
                continue;
            }
            let subject = package_subject(key);
            let gone: Vec<&str> = was.difference(now).copied().collect();
            let came: Vec<&str> = now.difference(was).copied().collect();
            if let ([g], [c]) = (gone.as_slice(), came.as_slice()) {
                let kind = if newer(key.0, g, c) { ChangeKind::SoftwareUpgraded } else { ChangeKind::SoftwareDowngraded };
                push(kind, subject, (*g).to_string(), (*c).to_string());
                continue;
            }
            for g in gone {
                push(ChangeKind::SoftwareRemoved, subject.clone(), g.to_string(), String::new());
            }
            for c in came {
                push(ChangeKind::SoftwareInstalled, subject.clone(), String::new(), c.to_string());
            }
        }
    }

    if let (Some(a), Some(b)) = (&old.memory, &new.memory) {
        if a.total_bytes != b.total_bytes {
            push(ChangeKind::MemoryChanged, "memory".into(), a.total_bytes.to_string(), b.total_bytes.to_string());
        }
    }

    if let (Some(a), Some(b)) = (&old.hardware, &new.hardware) {
        let serials = |h: &pb::HardwareSection| -> BTreeMap<String, String> {
            h.disks
                .iter()
                .filter_map(|d| {
                    d.serial.clone().map(|s| (s, format!("{} {}", d.name, d.model.clone().unwrap_or_default()).trim().to_string()))
                })
                .collect()
        };
        let (was, now) = (serials(a), serials(b));
        for (serial, desc) in &was {
            if !now.contains_key(serial) {
                push(ChangeKind::DiskRemoved, serial.clone(), desc.clone(), String::new());
            }
        }
        for (serial, desc) in &now {
            if !was.contains_key(serial) {
                push(ChangeKind::DiskAdded, serial.clone(), String::new(), desc.clone());
            }
        }
    }

    if let (Some(a), Some(b)) = (&old.network, &new.network) {
        let by_name = |n: &pb::NetworkSection| -> BTreeMap<String, pb::NetworkInterface> {
            n.interfaces.iter().map(|i| (i.name.clone(), i.clone())).collect()
        };
        let (was, now) = (by_name(a), by_name(b));
        let names: BTreeSet<&String> = was.keys().chain(now.keys()).collect();
        for name in names {
            let (w, n) = (was.get(name), now.get(name));
            let addrs = |i: Option<&pb::NetworkInterface>| -> BTreeSet<String> {
                i.map(|i| i.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix_len)).collect()).unwrap_or_default()
            };
            let (wa, na) = (addrs(w), addrs(n));
            if wa != na {
                push(ChangeKind::IpChanged, name.clone(), join(&wa), join(&na));
            }
            let mac = |i: Option<&pb::NetworkInterface>| i.and_then(|i| i.mac.clone()).unwrap_or_default();
            if mac(w) != mac(n) {
                push(ChangeKind::MacChanged, name.clone(), mac(w), mac(n));
            }
        }
    }

    if let (Some(a), Some(b)) = (&old.os, &new.os) {
        let describe = |o: &pb::OsSection| {
            format!("{} {} (kernel {})", o.name, o.version.clone().or_else(|| o.version_id.clone()).unwrap_or_default(), o.kernel)
        };
        if (&a.name, &a.version, &a.version_id, &a.kernel) != (&b.name, &b.version, &b.version_id, &b.kernel) {
            push(ChangeKind::OsUpgraded, "os".into(), describe(a), describe(b));
        }
    }
    out
}

/// (source, name, arch) -> versions, borrowed from the section: built for
/// the old and the new inventory of every inventory write (~2,000 packages
/// each), so nothing is copied.
fn versions_by_package(s: &pb::SoftwareSection) -> BTreeMap<(&str, &str, &str), BTreeSet<&str>> {
    let mut m: BTreeMap<(&str, &str, &str), BTreeSet<&str>> = BTreeMap::new();
    for p in &s.packages {
        m.entry((p.source.as_str(), p.name.as_str(), p.arch.as_deref().unwrap_or(""))).or_default().insert(p.version.as_str());
    }
    m
}

fn package_subject((source, name, arch): &(&str, &str, &str)) -> String {
    if arch.is_empty() { format!("{name} ({source})") } else { format!("{name}:{arch} ({source})") }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexical(_: &str, a: &str, b: &str) -> bool {
        b > a
    }

    fn pkg(name: &str, version: &str) -> pb::Package {
        pb::Package { name: name.into(), version: version.into(), source: "dpkg".into(), arch: Some("amd64".into()), ..Default::default() }
    }

    fn inv(packages: Vec<pb::Package>) -> pb::Inventory {
        pb::Inventory {
            software: Some(pb::SoftwareSection { packages }),
            memory: Some(pb::MemorySection { total_bytes: 8 << 30, ..Default::default() }),
            ..Default::default()
        }
    }

    fn kinds(c: &[Change]) -> Vec<(&'static str, &str, &str, &str)> {
        c.iter().map(|c| (c.kind.as_str(), c.subject.as_str(), c.old.as_str(), c.new.as_str())).collect()
    }

    #[test]
    fn same_inventory_has_no_changes() {
        let a = inv(vec![pkg("bash", "5.1"), pkg("vim", "9")]);
        assert!(changes(&a, &a, 1, &lexical).is_empty());
    }

    #[test]
    fn install_remove_upgrade_downgrade() {
        let a = inv(vec![pkg("bash", "5.1"), pkg("vim", "9"), pkg("curl", "8.5"), pkg("zsh", "5.9")]);
        let b = inv(vec![pkg("bash", "5.2"), pkg("curl", "8.4"), pkg("zsh", "5.9"), pkg("htop", "3.3")]);
        let c = changes(&a, &b, 42, &lexical);
        assert_eq!(
            kinds(&c),
            [
                ("software.upgraded", "bash:amd64 (dpkg)", "5.1", "5.2"),
                ("software.downgraded", "curl:amd64 (dpkg)", "8.5", "8.4"),
                ("software.installed", "htop:amd64 (dpkg)", "", "3.3"),
                ("software.removed", "vim:amd64 (dpkg)", "9", ""),
            ]
        );
        assert!(c.iter().all(|c| c.at_unix_ms == 42));
    }

    #[test]
    fn side_by_side_kernels_are_sets_and_failed_sections_are_not_uninstalls() {
        let a = inv(vec![pkg("kernel", "5.14.1"), pkg("kernel", "5.14.2")]);
        let b = inv(vec![pkg("kernel", "5.14.2"), pkg("kernel", "5.14.3"), pkg("kernel", "5.14.4")]);
        assert_eq!(
            kinds(&changes(&a, &b, 1, &lexical)),
            [
                ("software.removed", "kernel:amd64 (dpkg)", "5.14.1", ""),
                ("software.installed", "kernel:amd64 (dpkg)", "", "5.14.3"),
                ("software.installed", "kernel:amd64 (dpkg)", "", "5.14.4"),
            ]
        );
        let failed = pb::Inventory { software: None, ..a.clone() };
        assert!(changes(&a, &failed, 1, &lexical).is_empty());
        assert!(changes(&failed, &a, 1, &lexical).is_empty());
    }

    #[test]
    fn hardware_network_and_os() {
        let disk = |serial: &str| pb::Disk { name: "sda".into(), serial: Some(serial.into()), ..Default::default() };
        let nic = |mac: &str, ip: &str| pb::NetworkInterface {
            name: "eth0".into(),
            mac: Some(mac.into()),
            addresses: vec![pb::IpAddress { address: ip.into(), prefix_len: 24 }],
            ..Default::default()
        };
        let os = |v: &str| pb::OsSection { name: "Ubuntu".into(), version: Some(v.into()), kernel: "6.8".into(), ..Default::default() };
        let a = pb::Inventory {
            memory: Some(pb::MemorySection { total_bytes: 8, ..Default::default() }),
            hardware: Some(pb::HardwareSection { disks: vec![disk("S1")], ..Default::default() }),
            network: Some(pb::NetworkSection { interfaces: vec![nic("aa", "10.0.0.1")] }),
            os: Some(os("22.04")),
            ..Default::default()
        };
        let b = pb::Inventory {
            memory: Some(pb::MemorySection { total_bytes: 16, ..Default::default() }),
            hardware: Some(pb::HardwareSection { disks: vec![disk("S2")], ..Default::default() }),
            network: Some(pb::NetworkSection { interfaces: vec![nic("bb", "10.0.0.2")] }),
            os: Some(os("24.04")),
            ..Default::default()
        };
        assert_eq!(
            kinds(&changes(&a, &b, 1, &lexical)),
            [
                ("hardware.memory_changed", "memory", "8", "16"),
                ("hardware.disk_removed", "S1", "sda", ""),
                ("hardware.disk_added", "S2", "", "sda"),
                ("network.ip_changed", "eth0", "10.0.0.1/24", "10.0.0.2/24"),
                ("network.mac_changed", "eth0", "aa", "bb"),
                ("os.upgraded", "os", "Ubuntu 22.04 (kernel 6.8)", "Ubuntu 24.04 (kernel 6.8)"),
            ]
        );
    }
}
