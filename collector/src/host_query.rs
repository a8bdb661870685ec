//! Which hosts a host-list query selects, at fleet scale (SPEC §8: 100,000
//! hosts, host query p99 < 50 ms).
//!
//! Three paths, one answer (tested: `indexed_and_summary_paths_equal_the_scan`):
//! - **summaries**: the filter and sort read nothing of the package lists,
//!   so they run over the in-memory host summaries (`Store::host_summaries`);
//! - **indexed**: besides that, only conditions on one named package's
//!   name, version or source (`software("openssl") < "3.0.13"`), which the
//!   software index answers: each such condition is evaluated once per host
//!   that has the package, on that host's installs of it, and the filter
//!   then runs over the summaries with those answers. A host without the
//!   package has no value for the field, so the condition is false there,
//!   as on the full inventory (any-match over no values);
//! - **scan**: anything else (a wildcard package key, `software.vendor`,
//!   `software.installed_at`, `software.arch`, a sort by a package field)
//!   decodes every full inventory, as before.
//!
//! Columns are not selection: the caller reads a package column from the
//! full inventory of the hosts on the page only (`reads_packages`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use census_proto::v1 as pb;

use crate::error::Result;
use crate::filter::{Condition, Context, FieldRef, Filter};
use crate::store::{AgentRecord, HostView, InventoryRecord, SoftwareInstall, Store};

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

/// The hosts the filter selects, in no particular order: summaries on the
/// summary and indexed paths, full inventories on the scan path.
pub fn matching(store: &dyn Store, filter: Option<&Filter>, sort: Option<&FieldRef>, ctx: &Context) -> Result<Vec<Arc<HostView>>> {
    match path(filter, sort) {
        Path::Scan => {
            let mut hosts: Vec<Arc<HostView>> = store.hosts()?.into_iter().map(Arc::new).collect();
            if let Some(f) = filter {
                hosts.retain(|h| f.matches_in(h, ctx));
            }
            Ok(hosts)
        }
        Path::Summaries => {
            let mut hosts = store.host_summaries()?;
            if let Some(f) = filter {
                hosts.retain(|h| f.matches_in(h, ctx));
            }
            Ok(hosts)
        }
        Path::Indexed => {
            let Some(filter) = filter else { return store.host_summaries() };
            let conditions: Vec<&Condition> = filter.conditions().into_iter().filter(|c| reads_packages(&c.field)).collect();
            let mut installs = Vec::with_capacity(conditions.len());
            for c in &conditions {
                installs.push(store.software_installs(c.field.key().and_then(|k| k.exact()).unwrap_or_default())?);
            }
            let answered: Vec<HashSet<&str>> = conditions.iter().zip(&installs).map(|(c, i)| hosts_where(i, c, ctx)).collect();
            let mut hosts = store.host_summaries()?;
            hosts.retain(|h| {
                let decided = |c: &Condition| {
                    let i = conditions.iter().position(|known| std::ptr::eq(*known, c))?;
                    Some(answered[i].contains(h.agent.agent_id.as_str()))
                };
                filter.matches_with(h, ctx, &decided)
            });
            Ok(hosts)
        }
    }
}

/// The agents on which a condition over one named package holds, from the
/// software index: the condition is evaluated on a host holding only that
/// package's installs, which is all it reads. Hosts with the same installs
/// (most of a fleet has one of a few versions) share one evaluation.
fn hosts_where<'a>(installs: &'a [SoftwareInstall], condition: &Condition, ctx: &Context) -> HashSet<&'a str> {
    type Install<'a> = (&'a str, &'a str, Option<&'a str>);
    let mut by_agent: HashMap<&str, Vec<Install<'a>>> = HashMap::new();
    for i in installs {
        by_agent.entry(i.agent_id.as_str()).or_default().push((&i.version, &i.source, i.arch.as_deref()));
    }
    let name = condition.field.key().and_then(|k| k.exact()).unwrap_or_default();
    // One scratch host, its package list swapped per distinct list.
    let mut scratch = HostView {
        agent: AgentRecord::default(),
        inventory: Some(Arc::new(InventoryRecord {
            inventory: Some(pb::Inventory { software: Some(pb::SoftwareSection::default()), ..Default::default() }),
            ..Default::default()
        })),
    };
    let mut decided: HashMap<Vec<Install<'a>>, bool> = HashMap::new();
    let mut out = HashSet::new();
    for (agent_id, mut list) in by_agent {
        // Order does not matter to an any-match condition; sorting makes
        // equal lists equal keys.
        list.sort_unstable();
        let holds = match decided.get(&list) {
            Some(known) => *known,
            None => {
                if let Some(software) =
                    scratch.inventory.as_mut().and_then(Arc::get_mut).and_then(|r| r.inventory.as_mut()).and_then(|i| i.software.as_mut())
                {
                    software.packages = list
                        .iter()
                        .map(|(version, source, arch)| pb::Package {
                            name: name.to_string(),
                            version: version.to_string(),
                            source: source.to_string(),
                            arch: arch.map(str::to_string),
                            vendor: None,
                            install_time_unix_ms: None,
                        })
                        .collect();
                }
                let holds = condition.holds(&scratch, ctx);
                decided.insert(list, holds);
                holds
            }
        };
        if holds {
            out.insert(agent_id);
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
}
