//! Fleet-wide software questions, as pure functions over the software
//! index: group one package's installs into versions (newest first, in the
//! package ecosystem's own ordering) with their hosts.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::store::SoftwareInstall;
use census_version::{Ecosystem, compare};

/// One version of a package and the agents that have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionGroup {
    pub version: String,
    pub source: String,
    /// (agent id, arch), ordered by agent id, one entry per agent.
    pub agents: Vec<(String, Option<String>)>,
}

/// Groups installs by (source, version), newest version first. A
/// multi-arch package installed twice on one host counts that host once.
pub fn versions_newest_first(installs: &[SoftwareInstall]) -> Vec<VersionGroup> {
    let mut groups: BTreeMap<(&str, &str), BTreeMap<&str, Option<String>>> = BTreeMap::new();
    for i in installs {
        let agents = groups.entry((&i.source, &i.version)).or_default();
        let arch = agents.entry(&i.agent_id).or_insert(None);
        *arch = match (arch.take(), i.arch.clone()) {
            (Some(a), Some(b)) if a != b => Some(format!("{a},{b}")),
            (a, b) => a.or(b),
        };
    }
    let mut out: Vec<VersionGroup> = groups
        .into_iter()
        .map(|((source, version), agents)| VersionGroup {
            version: version.to_string(),
            source: source.to_string(),
            agents: agents.into_iter().map(|(id, arch)| (id.to_string(), arch)).collect(),
        })
        .collect();
    out.sort_by(newest_first);
    out
}

/// One version of a package as ListSoftware shows it: its hosts ordered
/// by host name, then agent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    pub version: String,
    pub source: String,
    pub hosts: Vec<ListedHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedHost {
    pub agent_id: String,
    /// Empty for an agent `hostname` does not know.
    pub hostname: String,
    pub arch: Option<String>,
}

/// `versions_newest_first`, each version's hosts named by `hostname` and
/// ordered by name, then agent id: what every page of ListSoftware slices.
pub fn listing<'a>(installs: &[SoftwareInstall], hostname: impl Fn(&str) -> Option<&'a str>) -> Vec<ListedVersion> {
    versions_newest_first(installs)
        .into_iter()
        .map(|g| {
            let mut hosts: Vec<ListedHost> = g
                .agents
                .into_iter()
                .map(|(agent_id, arch)| ListedHost { hostname: hostname(&agent_id).unwrap_or("").to_string(), agent_id, arch })
                .collect();
            hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname).then_with(|| a.agent_id.cmp(&b.agent_id)));
            ListedVersion { version: g.version, source: g.source, hosts }
        })
        .collect()
}

fn newest_first(a: &VersionGroup, b: &VersionGroup) -> Ordering {
    a.source.cmp(&b.source).then_with(|| compare(Ecosystem::for_source(&a.source), &b.version, &a.version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(version: &str, agent: &str, arch: &str) -> SoftwareInstall {
        SoftwareInstall {
            name: "openssl".into(),
            version: version.into(),
            source: "dpkg".into(),
            arch: Some(arch.into()),
            agent_id: agent.into(),
        }
    }

    #[test]
    fn groups_and_orders_by_dpkg_rules() {
        let groups = versions_newest_first(&[
            install("3.0.11-1~deb12u2", "a", "amd64"),
            install("3.0.11-1", "b", "amd64"),
            install("1:1.0", "c", "amd64"),
            install("3.0.11-1", "d", "amd64"),
            install("3.0.11-1", "d", "i386"),
        ]);
        let order: Vec<&str> = groups.iter().map(|g| g.version.as_str()).collect();
        // The epoch wins; a tilde sorts before the bare revision.
        assert_eq!(order, vec!["1:1.0", "3.0.11-1", "3.0.11-1~deb12u2"]);
        assert_eq!(groups[1].agents.len(), 2, "host d counted once");
        assert_eq!(groups[1].agents[1], ("d".to_string(), Some("amd64,i386".to_string())));
    }

    #[test]
    fn a_listing_orders_each_version_by_host_name_then_agent() {
        let names = std::collections::HashMap::from([("a", "zeta"), ("b", "alpha"), ("c", "alpha")]);
        let listed = listing(
            &[install("2.0", "a", "amd64"), install("2.0", "c", "amd64"), install("2.0", "b", "amd64"), install("1.0", "x", "i386")],
            |id| names.get(id).copied(),
        );
        let order: Vec<(&str, Vec<(&str, &str)>)> = listed
            .iter()
            .map(|v| (v.version.as_str(), v.hosts.iter().map(|h| (h.hostname.as_str(), h.agent_id.as_str())).collect()))
            .collect();
        assert_eq!(order, vec![("2.0", vec![("alpha", "b"), ("alpha", "c"), ("zeta", "a")]), ("1.0", vec![("", "x")])]);
    }
}
