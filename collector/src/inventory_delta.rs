//! Applying an agent's `InventoryDelta` to the inventory the collector
//! stores. Pure. The agent computes deltas (`census_agent::delta`, which
//! property-tests `apply(diff(a, b), a) == b`); this is the collector's own
//! copy of `apply`, because the two crates never depend on each other. Keep
//! the two in step: the e2e tests compare the stored inventory with a fresh
//! full snapshot.
//!
//! Invariant: a delta is applied only on top of the inventory of the report
//! it names (`base_seq`); anything else is `None` and the caller asks the
//! agent for a full snapshot instead of guessing.

use census_proto::v1 as pb;
use prost::Message;

/// `base` (stored from report `base_seq`) with `d` applied, or `None` when
/// the delta is not based on that report.
pub fn apply(d: &pb::InventoryDelta, base: &pb::Inventory, base_seq: u64) -> Option<pb::Inventory> {
    if d.base_seq != base_seq {
        return None;
    }
    let mut out = base.clone();
    let changed = d.changed.clone().unwrap_or_default();
    out.collected_at_unix_ms = d.collected_at_unix_ms;
    out.errors = changed.errors;
    macro_rules! section {
        ($f:ident, $n:expr) => {
            if changed.$f.is_some() {
                out.$f = changed.$f;
            } else if d.cleared_sections.contains(&$n) {
                out.$f = None;
            }
        };
    }
    section!(identity, 2);
    section!(os, 3);
    section!(cpu, 4);
    section!(memory, 5);
    section!(filesystems, 6);
    section!(network, 7);
    section!(hardware, 9);
    section!(netconfig, 10);
    section!(users, 11);
    section!(services, 12);
    section!(os_state, 13);
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
                // The agent's canonical order, so a later full snapshot
                // compares equal: (source, name, arch, version), then the
                // encoded package. Compared in place: building owned keys
                // for ~2,000 packages was most of a delta's cost.
                sw.packages.sort_by(canonical_order);
            } else if !d.packages_added.is_empty() || !d.packages_removed.is_empty() {
                // Packages changed on a section we do not hold: out of step.
                return None;
            }
        }
    }
    Some(out)
}

/// The agent's package order (`census_agent::inventory::software`).
fn canonical_order(a: &pb::Package, b: &pb::Package) -> std::cmp::Ordering {
    (&a.source, &a.name, &a.arch, &a.version)
        .cmp(&(&b.source, &b.name, &b.arch, &b.version))
        .then_with(|| if a == b { std::cmp::Ordering::Equal } else { a.encode_to_vec().cmp(&b.encode_to_vec()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str) -> pb::Package {
        pb::Package { name: name.into(), version: version.into(), source: "dpkg".into(), ..Default::default() }
    }

    #[test]
    fn applies_on_its_base_only() {
        let base = pb::Inventory {
            collected_at_unix_ms: 1,
            os: Some(pb::OsSection { name: "Debian".into(), ..Default::default() }),
            software: Some(pb::SoftwareSection { packages: vec![pkg("bash", "5.1"), pkg("vim", "9")] }),
            ..Default::default()
        };
        let d = pb::InventoryDelta {
            base_seq: 7,
            collected_at_unix_ms: 2,
            changed: Some(pb::Inventory { memory: Some(pb::MemorySection { total_bytes: 8, ..Default::default() }), ..Default::default() }),
            cleared_sections: vec![3],
            packages_added: vec![pkg("bash", "5.2")],
            packages_removed: vec![pkg("bash", "5.1")],
            software_presence: 0,
        };
        assert_eq!(apply(&d, &base, 6), None, "wrong base");
        let out = apply(&d, &base, 7).expect("applies");
        assert_eq!(out.collected_at_unix_ms, 2);
        assert_eq!(out.os, None);
        assert_eq!(out.memory.map(|m| m.total_bytes), Some(8));
        assert_eq!(out.software.expect("sw").packages, [pkg("bash", "5.2"), pkg("vim", "9")]);
    }
}
