//! Which hosts a host-list query selects, at fleet scale (SPEC §8: 100,000
//! hosts, host query p99 < 50 ms).
//!
//! Three paths, one answer (tested: `indexed_and_summary_paths_equal_the_scan`):
//! - **summaries**: the filter and sort read nothing of the package lists,
//!   so they run over the in-memory host summaries (`Store::host_snapshot`,
//!   kept in listing order, so that a listing without a sort field stops
//!   at the end of its page: `leading`);
//! - **indexed**: besides that, only conditions on one named package's
//!   name, version or source (`software("openssl") < "3.0.13"`), which the
//!   software index answers: each such condition is evaluated once per
//!   version of the package (`Store::software_listing`), giving the set of
//!   agents where it holds, and the filter then runs over the summaries
//!   with those answers. A host without the
//!   package has no value for the field, so the condition is false there,
//!   as on the full inventory (any-match over no values);
//! - **scan**: anything else (a wildcard package key, `software.vendor`,
//!   `software.installed_at`, `software.arch`, a sort by a package field)
//!   decodes every full inventory, as before.
//!
//! Columns are not selection: the caller reads a package column from the
//! full inventory of the hosts on the page only (`reads_packages`).

use std::collections::HashSet;
use std::sync::Arc;

use census_proto::v1 as pb;

use crate::error::Result;
use crate::filter::{Condition, Context, FieldRef, Filter};
use crate::software::ListedVersion;
use crate::store::{AgentRecord, HostView, InventoryRecord, Store, listing_order};

/// Whether the field reads package lists, which host summaries leave out.
pub fn reads_packages(field: &FieldRef) -> bool {
    field.def().name.starts_with("software.")
}

/// Package fields the software index holds exactly as the inventory does.
/// (`software.arch` is left out: the index cannot tell an empty
/// architecture from none.)
const INDEXED: [&str; 3] = ["software.name", "software.version", "software.source"];

/// How a query will be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Summaries,
    Indexed,
    Scan,
}

/// The path for a filter and sort.
pub fn path(filter: Option<&Filter>, sort: Option<&FieldRef>) -> Path {
    if sort.is_some_and(reads_packages) {
        return Path::Scan;
    }
    let Some(filter) = filter else { return Path::Summaries };
    let mut indexed = false;
    for c in filter.conditions() {
        if !reads_packages(&c.field) {
            continue;
        }
        if !INDEXED.contains(&c.field.def().name) || c.field.key().and_then(|k| k.exact()).is_none() {
            return Path::Scan;
        }
        indexed = true;
    }
    if indexed { Path::Indexed } else { Path::Summaries }
}

/// The hosts the filter selects, in listing order (`store::listing_order`).
pub fn matching(store: &dyn Store, filter: Option<&Filter>, sort: Option<&FieldRef>, ctx: &Context) -> Result<Vec<Arc<HostView>>> {
    with_matching(store, filter, sort, ctx, |hosts| hosts.iter().map(|h| Arc::clone(h)).collect())
}

/// Hands `f` the hosts the filter selects, in listing order, borrowed from
/// the shared summaries on the summary and indexed paths (no pointer is
/// copied per host); the scan path reads and orders full inventories.
pub fn with_matching<R>(
    store: &dyn Store,
    filter: Option<&Filter>,
    sort: Option<&FieldRef>,
    ctx: &Context,
    f: impl FnOnce(&[&Arc<HostView>]) -> R,
) -> Result<R> {
    if path(filter, sort) == Path::Scan {
        let mut hosts: Vec<Arc<HostView>> = store.hosts()?.into_iter().map(Arc::new).collect();
        if let Some(filter) = filter {
            hosts.retain(|h| filter.matches_in(h, ctx));
        }
        hosts.sort_by(|a, b| listing_order(&a.agent, &b.agent));
        let refs: Vec<&Arc<HostView>> = hosts.iter().collect();
        return Ok(f(&refs));
    }
    let hosts = store.host_snapshot()?;
    select(store, filter, ctx, |keep| {
        let refs: Vec<&Arc<HostView>> = hosts.iter().filter(|h| keep(h)).collect();
        f(&refs)
    })
}

/// The first `want` hosts the filter selects in listing order (its reverse
/// when `descending`): a listing without a sort field reads its page off
/// the ordered summaries and stops there, instead of filtering and ordering
/// the whole fleet.
pub fn leading(store: &dyn Store, filter: Option<&Filter>, ctx: &Context, descending: bool, want: usize) -> Result<Vec<Arc<HostView>>> {
    if path(filter, None) == Path::Scan {
        let mut hosts = matching(store, filter, None, ctx)?;
        if descending {
            hosts.reverse();
        }
        hosts.truncate(want);
        return Ok(hosts);
    }
    let hosts = store.host_snapshot()?;
    select(store, filter, ctx, |keep| {
        if descending {
            hosts.iter().rev().filter(|h| keep(h)).take(want).cloned().collect()
        } else {
            hosts.iter().filter(|h| keep(h)).take(want).cloned().collect()
        }
    })
}

/// Hands `walk` the filter as a test of one host summary, with the
/// conditions on packages answered by the software index beforehand
/// (summary and indexed paths only).
fn select<R>(store: &dyn Store, filter: Option<&Filter>, ctx: &Context, walk: impl FnOnce(&dyn Fn(&HostView) -> bool) -> R) -> Result<R> {
    let Some(filter) = filter else { return Ok(walk(&|_| true)) };
    let conditions: Vec<&Condition> = filter.conditions().into_iter().filter(|c| reads_packages(&c.field)).collect();
    if conditions.is_empty() {
        return Ok(walk(&|h| filter.matches_in(h, ctx)));
    }
    let mut listings = Vec::with_capacity(conditions.len());
    for c in &conditions {
        listings.push(store.software_listing(c.field.key().and_then(|k| k.exact()).unwrap_or_default())?);
    }
    let answered: Vec<HashSet<&str>> = conditions.iter().zip(&listings).map(|(c, l)| hosts_where(l, c, ctx)).collect();
    Ok(walk(&|h| {
        let decided = |c: &Condition| {
            let i = conditions.iter().position(|known| std::ptr::eq(*known, c))?;
            Some(answered[i].contains(h.agent.agent_id.as_str()))
        };
        filter.matches_with(h, ctx, &decided)
    }))
}

/// The agents on which a condition over one named package holds, from the
/// package's versions. The condition reads only that package's name,
/// version or source and holds when some install satisfies it (any-match),
/// so it holds on a host exactly when it holds on one of the host's
/// versions: it is evaluated once per version, on a host holding only that
/// install, not once per host.
fn hosts_where<'a>(listing: &'a [ListedVersion], condition: &Condition, ctx: &Context) -> HashSet<&'a str> {
    let name = condition.field.key().and_then(|k| k.exact()).unwrap_or_default();
    let mut out = HashSet::new();
    for version in listing {
        let package = pb::Package {
            name: name.to_string(),
            version: version.version.clone(),
            source: version.source.clone(),
            arch: None,
            vendor: None,
            install_time_unix_ms: None,
        };
        let one = HostView {
            agent: AgentRecord::default(),
            inventory: Some(Arc::new(InventoryRecord {
                inventory: Some(pb::Inventory { software: Some(pb::SoftwareSection { packages: vec![package] }), ..Default::default() }),
                ..Default::default()
            })),
        };
        if condition.holds(&one, ctx) {
            out.extend(version.hosts.iter().map(|h| h.agent_id.as_str()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::SledStore;
    use crate::store::test_agent;

    fn package(name: &str, version: &str, source: &str) -> pb::Package {
        pb::Package {
            name: name.into(),
            version: version.into(),
            source: source.into(),
            arch: Some("amd64".into()),
            vendor: Some("Debian".into()),
            install_time_unix_ms: Some(1_700_000_000_000),
        }
    }

    fn inventory(os: &str, memory_gib: u64, packages: Vec<pb::Package>) -> pb::Inventory {
        pb::Inventory {
            collected_at_unix_ms: 1,
            os: Some(pb::OsSection { name: os.into(), ..Default::default() }),
            memory: Some(pb::MemorySection { total_bytes: memory_gib << 30, ..Default::default() }),
            software: Some(pb::SoftwareSection { packages }),
            ..Default::default()
        }
    }

    /// A small fleet with the cases that matter: two installs of one name
    /// on a host, versions in two ecosystems, a host without the package,
    /// one without any inventory.
    fn fleet() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let hosts = [
            ("a", Some(inventory("Ubuntu", 4, vec![package("openssl", "3.0.2-0ubuntu1", "dpkg"), package("curl", "7.88", "dpkg")]))),
            ("b", Some(inventory("Ubuntu", 16, vec![package("openssl", "3.0.13-1", "dpkg"), package("openssl", "1.1.1w-0", "dpkg")]))),
            ("c", Some(inventory("Rocky Linux", 8, vec![package("openssl", "1:3.0.7-27.el9", "rpm")]))),
            ("d", Some(inventory("Debian GNU/Linux", 2, vec![package("curl", "7.74", "dpkg")]))),
            ("e", None),
        ];
        for (n, (id, inv)) in hosts.into_iter().enumerate() {
            let agent_id = format!("{id:0>32}");
            store.enroll_agent(test_agent(&agent_id, id, n as u8 + 1)).unwrap();
            let body = match inv {
                Some(inv) => pb::report::Body::Inventory(inv),
                None => pb::report::Body::Heartbeat(pb::Heartbeat::default()),
            };
            store.put_reports(&agent_id, &[pb::Report { seq: 1, created_at_unix_ms: 1, body: Some(body) }], 1_000).unwrap();
        }
        (dir, store)
    }

    fn ids(mut hosts: Vec<Arc<HostView>>) -> Vec<String> {
        hosts.sort_by(|a, b| a.agent.agent_id.cmp(&b.agent.agent_id));
        hosts.iter().map(|h| h.agent.agent_id.trim_start_matches('0').to_string()).collect()
    }

    #[test]
    fn indexed_and_summary_paths_equal_the_scan() {
        let (_dir, store) = fleet();
        let ctx = Context { now_unix_ms: 10_000, offline_after_ms: 60_000 };
        let filters = [
            (r#"software("openssl") < "3.0.13""#, Path::Indexed),
            (r#"not software("openssl") < "3.0.13""#, Path::Indexed),
            (r#"software("openssl")"#, Path::Indexed),
            (r#"not software("openssl")"#, Path::Indexed),
            (r#"software("openssl").source = "rpm" or memory.total < 8GiB"#, Path::Indexed),
            (r#"software("openssl") = "3.0.13-1" and software("curl")"#, Path::Indexed),
            (r#"os.name = "Ubuntu" and memory.total < 8GiB"#, Path::Summaries),
            ("last_seen > 1h ago", Path::Summaries),
            (r#"software("open*")"#, Path::Scan),
            (r#"software("openssl").vendor = "Debian""#, Path::Scan),
            (r#"software("openssl").arch = "amd64""#, Path::Scan),
        ];
        for (text, expected_path) in filters {
            let filter = Filter::parse(text).unwrap();
            assert_eq!(path(Some(&filter), None), expected_path, "{text}");
            let fast = ids(matching(&store, Some(&filter), None, &ctx).unwrap());
            let mut scan: Vec<Arc<HostView>> = store.hosts().unwrap().into_iter().map(Arc::new).collect();
            scan.retain(|h| filter.matches_in(h, &ctx));
            assert_eq!(fast, ids(scan), "{text}");
        }
        // The answers themselves, so the comparison is not vacuous.
        let openssl_old = Filter::parse(r#"software("openssl") < "3.0.13""#).unwrap();
        // c's rpm version has epoch 1, so it is newer than any 3.0.13 without one.
        assert_eq!(ids(matching(&store, Some(&openssl_old), None, &ctx).unwrap()), ["a", "b"]);
        let absent = Filter::parse(r#"not software("openssl")"#).unwrap();
        assert_eq!(ids(matching(&store, Some(&absent), None, &ctx).unwrap()), ["d", "e"]);
    }

    #[test]
    fn summaries_follow_writes_after_the_first_load() {
        let (_dir, store) = fleet();
        let ctx = Context { now_unix_ms: 10_000, offline_after_ms: 60_000 };
        let small = Filter::parse("memory.total < 8GiB").unwrap();
        assert_eq!(ids(matching(&store, Some(&small), None, &ctx).unwrap()), ["a", "d"]);
        // Host d gets more memory; host e its first inventory.
        let d = format!("{:0>32}", "d");
        let e = format!("{:0>32}", "e");
        let report = |inv| pb::Report { seq: 2, created_at_unix_ms: 2, body: Some(pb::report::Body::Inventory(inv)) };
        store.put_reports(&d, &[report(inventory("Debian GNU/Linux", 32, vec![]))], 2_000).unwrap();
        store.put_reports(&e, &[report(inventory("Debian GNU/Linux", 1, vec![]))], 2_000).unwrap();
        assert_eq!(ids(matching(&store, Some(&small), None, &ctx).unwrap()), ["a", "e"]);
        let summaries = store.host_summaries().unwrap();
        let d_summary = summaries.iter().find(|h| h.agent.agent_id == d).unwrap();
        assert_eq!(d_summary.agent.last_seq, 2);
        assert_eq!(d_summary.agent.last_seen_unix_ms, 2_000);
        // A summary never holds the package list.
        for h in &summaries {
            let packages = h.inventory.as_ref().and_then(|r| r.inventory.as_ref()).and_then(|i| i.software.as_ref());
            assert!(packages.is_none_or(|s| s.packages.is_empty()));
        }
    }

    #[test]
    fn software_answers_follow_writes_after_the_first_query() {
        let (_dir, store) = fleet();
        let ctx = Context { now_unix_ms: 10_000, offline_after_ms: 60_000 };
        let old = Filter::parse(r#"software("openssl") < "3.0.13""#).unwrap();
        // The first query holds openssl's installs in memory.
        assert_eq!(ids(matching(&store, Some(&old), None, &ctx).unwrap()), ["a", "b"]);
        // a upgrades, d installs an old one, b drops its old second install.
        let report = |inv| pb::Report { seq: 2, created_at_unix_ms: 2, body: Some(pb::report::Body::Inventory(inv)) };
        let write = |id: &str, inv| store.put_reports(&format!("{id:0>32}"), &[report(inv)], 2_000).unwrap();
        write("a", inventory("Ubuntu", 4, vec![package("openssl", "3.0.13-1", "dpkg")]));
        write("d", inventory("Debian GNU/Linux", 2, vec![package("openssl", "1.1.1n-0", "dpkg")]));
        write("b", inventory("Ubuntu", 16, vec![package("openssl", "3.0.13-1", "dpkg")]));
        let fast = ids(matching(&store, Some(&old), None, &ctx).unwrap());
        let mut scan: Vec<Arc<HostView>> = store.hosts().unwrap().into_iter().map(Arc::new).collect();
        scan.retain(|h| old.matches_in(h, &ctx));
        assert_eq!(fast, ids(scan));
        assert_eq!(fast, ["d"]);
    }

    /// A generated fleet of `n` hosts: names that tie ignoring case, differ
    /// only in case, or are not ASCII; a spread of OS, memory and openssl
    /// versions (some hosts with two, some with none).
    fn generated(n: u64) -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let names = ["web", "Web", "db", "Ölmühle", "cache", "zeta", "ALPHA"];
        let oses = ["Ubuntu", "Debian GNU/Linux", "Rocky Linux"];
        let openssl = ["3.0.2-0ubuntu1", "3.0.13-1", "3.0.15-1", "1.1.1w-0"];
        for i in 0..n {
            let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB0B;
            let mut next = |m: u64| {
                z ^= z >> 29;
                z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
                (z >> 32) % m
            };
            let agent_id = format!("{i:032x}");
            let mut agent = test_agent(&agent_id, &format!("uuid-{i}"), 1);
            agent.cert_fingerprint[..8].copy_from_slice(&i.to_be_bytes());
            agent.hostname = format!("{}-{}", names[next(7) as usize], next(n / 3 + 1));
            store.enroll_agent(agent).unwrap();
            let mut packages = vec![package("curl", "7.88", "dpkg")];
            for _ in 0..next(3) {
                packages.push(package("openssl", openssl[next(4) as usize], "dpkg"));
            }
            let inv = inventory(oses[next(3) as usize], 1 << next(6), packages);
            let report = pb::Report { seq: 1, created_at_unix_ms: 1, body: Some(pb::report::Body::Inventory(inv)) };
            store.put_reports(&agent_id, &[report], 1_000 + next(9_000) as i64).unwrap();
        }
        (dir, store)
    }

    /// What a listing without a sort field must return: every host the
    /// filter matches on its full inventory, fully sorted.
    fn plain(store: &SledStore, filter: Option<&Filter>, ctx: &Context, descending: bool) -> Vec<String> {
        let mut hosts: Vec<HostView> = store.hosts().unwrap();
        hosts.retain(|h| filter.is_none_or(|f| f.matches_in(h, ctx)));
        hosts.sort_by(|a, b| listing_order(&a.agent, &b.agent));
        if descending {
            hosts.reverse();
        }
        hosts.into_iter().map(|h| h.agent.agent_id).collect()
    }

    #[test]
    fn leading_hosts_equal_a_full_filter_and_sort_on_generated_hosts() {
        let (_dir, store) = generated(400);
        let ctx = Context { now_unix_ms: 10_000, offline_after_ms: 4_000 };
        let filters = [
            None,
            Some(r#"os.name = "Ubuntu" and memory.total < 8GiB"#),
            Some(r#"software("openssl") < "3.0.13""#),
            Some(r#"not software("openssl") and online"#),
            Some(r#"software("openssl") = "3.0.15-1" or os.name = "Rocky Linux""#),
            Some(r#"software("open*")"#),
            Some(r#"os.name = "Windows""#),
        ];
        let check = |store: &SledStore| {
            // The kept software listing is the one built afresh.
            let names: std::collections::HashMap<String, String> =
                store.hosts().unwrap().into_iter().map(|h| (h.agent.agent_id, h.agent.hostname)).collect();
            let fresh = crate::software::listing(&store.software_installs("openssl").unwrap(), |id| names.get(id).map(String::as_str));
            assert_eq!(*store.software_listing("openssl").unwrap(), fresh);
            for text in filters {
                let filter = text.map(|t| Filter::parse(t).unwrap());
                for descending in [false, true] {
                    let expected = plain(store, filter.as_ref(), &ctx, descending);
                    for want in [0, 1, 7, 150, expected.len(), 10_000] {
                        let got: Vec<String> = leading(store, filter.as_ref(), &ctx, descending, want)
                            .unwrap()
                            .iter()
                            .map(|h| h.agent.agent_id.clone())
                            .collect();
                        assert_eq!(got, expected[..want.min(expected.len())], "{text:?} descending {descending} want {want}");
                    }
                    assert!(!expected.is_empty() || text == Some(r#"os.name = "Windows""#), "{text:?} selects some host");
                }
            }
        };
        check(&store);
        // Renames (the order changes), a new host and upgrades after the
        // summaries and the listings were loaded.
        for i in [3u64, 77, 250] {
            let agent_id = format!("{i:032x}");
            let mut agent = test_agent(&agent_id, &format!("uuid-{i}"), 1);
            agent.cert_fingerprint[..8].copy_from_slice(&i.to_be_bytes());
            agent.hostname = format!("AAA-renamed-{i}");
            store.enroll_agent(agent).unwrap();
            let inv = inventory("Ubuntu", 2, vec![package("openssl", "1.0.2u-1", "dpkg")]);
            let report = pb::Report { seq: 1, created_at_unix_ms: 1, body: Some(pb::report::Body::Inventory(inv)) };
            store.put_reports(&agent_id, &[report], 9_999).unwrap();
        }
        let snapshot = store.host_snapshot().unwrap();
        assert!(snapshot.windows(2).all(|w| listing_order(&w[0].agent, &w[1].agent).is_lt()), "the summaries stay in listing order");
        assert_eq!(snapshot.len(), 400);
        assert!(snapshot[..3].iter().all(|h| h.agent.hostname.starts_with("AAA-renamed-")), "renamed hosts moved first");
        check(&store);
    }
}
