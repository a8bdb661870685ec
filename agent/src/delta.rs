//! Inventory deltas: what changed between two inventory snapshots, as the
//! `census.v1.InventoryDelta` the agent sends instead of a full snapshot.
//!
//! Pure functions over the wire `Inventory` (the delta is a wire concept and
//! the collector applies it to the wire inventory it stores). Invariants:
//! - `apply(&diff(a, b, s), a) == canonical(b)` for every pair of snapshots
//!   (property-tested below); callers diff canonical snapshots, so the
//!   collector ends up with exactly what the agent saw;
//! - a section is sent whole when anything in it changed, except software,
//!   which is sent as the packages added and removed: a host with 3,000
//!   packages that upgrades one sends two package records, not 3,000;
//! - `collected_at_unix_ms` alone never makes a delta non-empty.

use census_proto::v1 as pb;
use prost::Message;

/// Field numbers of the sections in `census.v1.Inventory` (what
/// `InventoryDelta.cleared_sections` lists).
pub mod field {
    pub const IDENTITY: u32 = 2;
    pub const OS: u32 = 3;
    pub const CPU: u32 = 4;
    pub const MEMORY: u32 = 5;
    pub const FILESYSTEMS: u32 = 6;
    pub const NETWORK: u32 = 7;
    pub const HARDWARE: u32 = 9;
    pub const NETCONFIG: u32 = 10;
    pub const USERS: u32 = 11;
    pub const SERVICES: u32 = 12;
    pub const OS_STATE: u32 = 13;
}

/// Runs `$m!(field_name, FIELD_NUMBER)` for every section except software,
/// so diff and apply cannot disagree about the list.
macro_rules! whole_sections {
    ($m:ident) => {
        $m!(identity, field::IDENTITY);
        $m!(os, field::OS);
        $m!(cpu, field::CPU);
        $m!(memory, field::MEMORY);
        $m!(filesystems, field::FILESYSTEMS);
        $m!(network, field::NETWORK);
        $m!(hardware, field::HARDWARE);
        $m!(netconfig, field::NETCONFIG);
        $m!(users, field::USERS);
        $m!(services, field::SERVICES);
        $m!(os_state, field::OS_STATE);
    };
}

/// Sorts packages into the one order snapshots and deltas use: source,
/// name, arch, version, then the rest of the record (so even two records
/// differing only in vendor have a fixed order).
pub fn canonicalize(inv: &mut pb::Inventory) {
    if let Some(sw) = inv.software.as_mut() {
        sw.packages.sort_by_cached_key(package_order_key);
    }
}

fn package_order_key(p: &pb::Package) -> (String, String, Option<String>, String, Vec<u8>) {
    (p.source.clone(), p.name.clone(), p.arch.clone(), p.version.clone(), p.encode_to_vec())
}

/// What changed from `base` (the inventory of report `base_seq`) to `new`.
/// Both are expected canonical (see `canonicalize`).
pub fn diff(base: &pb::Inventory, new: &pb::Inventory, base_seq: u64) -> pb::InventoryDelta {
    let mut changed = pb::Inventory { collected_at_unix_ms: new.collected_at_unix_ms, errors: new.errors.clone(), ..Default::default() };
    let mut cleared = Vec::new();
    macro_rules! diff_section {
        ($f:ident, $n:expr) => {
            if base.$f != new.$f {
                match &new.$f {
                    Some(v) => changed.$f = Some(v.clone()),
                    None => cleared.push($n),
                }
            }
        };
    }
    whole_sections!(diff_section);

    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let presence = match (&base.software, &new.software) {
        (Some(b), Some(n)) => {
            multiset_difference(&b.packages, &n.packages, &mut removed, &mut added);
            pb::SoftwarePresence::Unspecified
        }
        (None, Some(n)) => {
            added = n.packages.clone();
            pb::SoftwarePresence::Appeared
        }
        (Some(_), None) => pb::SoftwarePresence::Cleared,
        (None, None) => pb::SoftwarePresence::Unspecified,
    };
    pb::InventoryDelta {
        base_seq,
        collected_at_unix_ms: new.collected_at_unix_ms,
        changed: Some(changed),
        cleared_sections: cleared,
        packages_added: added,
        packages_removed: removed,
        software_presence: presence as i32,
    }
}

/// `only_a` gets the records of `a` not in `b`, `only_b` those of `b` not
/// in `a`, counting duplicates (both lists are sorted canonically).
fn multiset_difference(a: &[pb::Package], b: &[pb::Package], only_a: &mut Vec<pb::Package>, only_b: &mut Vec<pb::Package>) {
    let (mut i, mut j) = (0, 0);
    let (ka, kb): (Vec<_>, Vec<_>) = (a.iter().map(package_order_key).collect(), b.iter().map(package_order_key).collect());
    while i < a.len() || j < b.len() {
        match (ka.get(i), kb.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                only_a.push(a[i].clone());
                i += 1;
            }
            (Some(_), None) => {
                only_a.push(a[i].clone());
                i += 1;
            }
            _ => {
                only_b.push(b[j].clone());
                j += 1;
            }
        }
    }
}

/// Whether the delta says nothing changed (apart from the collection time).
pub fn is_empty(d: &pb::InventoryDelta, base: &pb::Inventory) -> bool {
    let c = d.changed.as_ref();
    let mut sections_changed = false;
    macro_rules! any_section {
        ($f:ident, $n:expr) => {
            sections_changed |= c.is_some_and(|c| c.$f.is_some());
        };
    }
    whole_sections!(any_section);
    !sections_changed
        && d.cleared_sections.is_empty()
        && d.packages_added.is_empty()
        && d.packages_removed.is_empty()
        && d.software_presence == pb::SoftwarePresence::Unspecified as i32
        && c.map(|c| &c.errors) == Some(&base.errors)
}

/// `base` with the delta applied. The collector does the same to the
/// inventory it stores; here it is the oracle of the property test and lets
/// the agent check a delta before sending it.
pub fn apply(d: &pb::InventoryDelta, base: &pb::Inventory) -> pb::Inventory {
    let mut out = base.clone();
    let changed = d.changed.clone().unwrap_or_default();
    out.collected_at_unix_ms = d.collected_at_unix_ms;
    out.errors = changed.errors;
    macro_rules! apply_section {
        ($f:ident, $n:expr) => {
            if changed.$f.is_some() {
                out.$f = changed.$f;
            } else if d.cleared_sections.contains(&$n) {
                out.$f = None;
            }
        };
    }
    whole_sections!(apply_section);
    match pb::SoftwarePresence::try_from(d.software_presence).unwrap_or(pb::SoftwarePresence::Unspecified) {
        pb::SoftwarePresence::Cleared => out.software = None,
        pb::SoftwarePresence::Appeared => out.software = Some(pb::SoftwareSection { packages: d.packages_added.clone() }),
        pb::SoftwarePresence::Unspecified => {
            if let Some(sw) = out.software.as_mut() {
                for gone in &d.packages_removed {
                    if let Some(pos) = sw.packages.iter().position(|p| p == gone) {
                        sw.packages.remove(pos);
                    }
                }
                sw.packages.extend(d.packages_added.iter().cloned());
            }
        }
    }
    canonicalize(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pkg(name: &str, version: &str) -> pb::Package {
        pb::Package { name: name.into(), version: version.into(), source: "dpkg".into(), arch: Some("amd64".into()), ..Default::default() }
    }

    fn inv(packages: Vec<pb::Package>, hostname: &str) -> pb::Inventory {
        let mut i = pb::Inventory {
            collected_at_unix_ms: 1,
            identity: Some(pb::HostIdentity { hostname: hostname.into(), ..Default::default() }),
            software: Some(pb::SoftwareSection { packages }),
            ..Default::default()
        };
        canonicalize(&mut i);
        i
    }

    #[test]
    fn upgrade_sends_two_package_records_and_nothing_else() {
        let a = inv(vec![pkg("bash", "5.1"), pkg("openssl", "3.0.2"), pkg("zlib", "1.2")], "web-07");
        let mut b = inv(vec![pkg("bash", "5.1"), pkg("openssl", "3.0.13"), pkg("zlib", "1.2")], "web-07");
        b.collected_at_unix_ms = 99;
        let d = diff(&a, &b, 7);
        assert_eq!(d.base_seq, 7);
        assert_eq!(d.packages_added, [pkg("openssl", "3.0.13")]);
        assert_eq!(d.packages_removed, [pkg("openssl", "3.0.2")]);
        assert!(d.changed.as_ref().is_some_and(|c| c.identity.is_none()), "unchanged section not sent");
        assert_eq!(apply(&d, &a), b);
    }

    #[test]
    fn only_the_collection_time_changed_is_empty() {
        let a = inv(vec![pkg("bash", "5.1")], "h");
        let mut b = a.clone();
        b.collected_at_unix_ms = 5;
        assert!(is_empty(&diff(&a, &b, 1), &a));
        b.identity = None;
        let d = diff(&a, &b, 1);
        assert!(!is_empty(&d, &a));
        assert_eq!(d.cleared_sections, [field::IDENTITY]);
        assert_eq!(apply(&d, &a), b);
    }

    fn arb_package() -> impl Strategy<Value = pb::Package> {
        (
            prop::sample::select(vec!["dpkg", "rpm", "snap"]),
            prop::sample::select(vec!["bash", "openssl", "kernel", "zlib", "vim"]),
            prop::sample::select(vec!["1", "2", "3.0.13"]),
            prop::option::of(prop::sample::select(vec!["amd64", "noarch"])),
            prop::option::of(prop::sample::select(vec!["Debian", "Red Hat"])),
        )
            .prop_map(|(source, name, version, arch, vendor)| pb::Package {
                name: name.into(),
                version: version.into(),
                arch: arch.map(Into::into),
                vendor: vendor.map(Into::into),
                source: source.into(),
                install_time_unix_ms: None,
            })
    }

    fn arb_inventory() -> impl Strategy<Value = pb::Inventory> {
        (
            0i64..1000,
            prop::option::of(prop::sample::select(vec!["web-07", "db-01"])),
            prop::option::of(prop::sample::select(vec!["Ubuntu", "Debian"])),
            prop::option::of(0u64..4),
            prop::option::of(prop::collection::vec(arb_package(), 0..12)),
            prop::collection::vec(prop::sample::select(vec!["users", "software.rpm"]), 0..2),
        )
            .prop_map(|(at, host, os, mem, packages, errors)| {
                let mut i = pb::Inventory {
                    collected_at_unix_ms: at,
                    identity: host.map(|h| pb::HostIdentity { hostname: h.into(), ..Default::default() }),
                    os: os.map(|n| pb::OsSection { name: n.into(), ..Default::default() }),
                    memory: mem.map(|g| pb::MemorySection { total_bytes: g << 30, ..Default::default() }),
                    software: packages.map(|packages| pb::SoftwareSection { packages }),
                    errors: errors.into_iter().map(|s| pb::SectionError { section: s.into(), message: "x".into() }).collect(),
                    ..Default::default()
                };
                canonicalize(&mut i);
                i
            })
    }

    proptest! {
        #[test]
        fn apply_of_diff_rebuilds_the_new_snapshot(a in arb_inventory(), b in arb_inventory()) {
            let d = diff(&a, &b, 3);
            prop_assert_eq!(apply(&d, &a), b.clone());
            // What goes on the wire decodes to the same delta.
            let wire = pb::InventoryDelta::decode(d.encode_to_vec().as_slice()).expect("decodes");
            prop_assert_eq!(apply(&wire, &a), b);
        }

        #[test]
        fn diff_of_equal_snapshots_is_empty(a in arb_inventory()) {
            prop_assert!(is_empty(&diff(&a, &a, 1), &a));
        }
    }
}
