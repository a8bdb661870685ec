//! Fleet counts for an overview (`GetFleetSummary`): pure counting over one
//! line per host, so the dashboard's overview costs one small answer at
//! any fleet size instead of the whole host list.

use std::collections::HashMap;

use census_proto::v1 as pb;

/// Most values a distribution lists when the request does not say.
pub const DEFAULT_TOP: usize = 10;
/// Most values a distribution may list.
pub const MAX_TOP: usize = 100;

/// What the summary needs of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLine {
    pub os: String,
    pub hardware_model: String,
    pub online: bool,
    pub revoked: bool,
}

/// "Vendor Model" ("Dell Inc. PowerEdge R650"); the model alone when it
/// already starts with the vendor's name; whichever of the two is known.
pub fn hardware_model(vendor: &str, model: &str) -> String {
    let (vendor, model) = (vendor.trim(), model.trim());
    match (vendor.is_empty(), model.is_empty()) {
        (_, true) => vendor.to_string(),
        (true, false) => model.to_string(),
        (false, false) if model.to_lowercase().starts_with(&vendor.to_lowercase()) => model.to_string(),
        (false, false) => format!("{vendor} {model}"),
    }
}

/// Counts `hosts`; revoked hosts count only as revoked. `top` = 0 means
/// `DEFAULT_TOP`, larger than `MAX_TOP` is `MAX_TOP`.
pub fn summarize(hosts: impl IntoIterator<Item = HostLine>, top: u32) -> pb::GetFleetSummaryResponse {
    let top = match top as usize {
        0 => DEFAULT_TOP,
        n => n.min(MAX_TOP),
    };
    let mut summary = pb::GetFleetSummaryResponse::default();
    let (mut os, mut models) = (HashMap::<String, u64>::new(), HashMap::<String, u64>::new());
    for host in hosts {
        if host.revoked {
            summary.revoked += 1;
            continue;
        }
        summary.hosts += 1;
        if host.online {
            summary.online += 1;
        } else {
            summary.offline += 1;
        }
        *os.entry(host.os).or_default() += 1;
        *models.entry(host.hardware_model).or_default() += 1;
    }
    summary.operating_systems = Some(distribution(os, top));
    summary.hardware_models = Some(distribution(models, top));
    summary
}

fn distribution(counts: HashMap<String, u64>, top: usize) -> pb::Distribution {
    let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
    counts.sort_by(|(a, a_hosts), (b, b_hosts)| b_hosts.cmp(a_hosts).then_with(|| a.cmp(b)));
    let other = counts.iter().skip(top).map(|(_, n)| n).sum();
    counts.truncate(top);
    pb::Distribution { top: counts.into_iter().map(|(value, hosts)| pb::HostCount { value, hosts }).collect(), other }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(os: &str, model: &str, online: bool, revoked: bool) -> HostLine {
        HostLine { os: os.into(), hardware_model: model.into(), online, revoked }
    }

    #[test]
    fn counts_hosts_and_their_most_common_values() {
        let hosts = vec![
            line("Debian 12", "Dell PowerEdge", true, false),
            line("Debian 12", "Dell PowerEdge", false, false),
            line("Ubuntu 24.04", "", true, false),
            line("Windows 11", "ThinkPad", true, false),
            line("Debian 12", "ThinkPad", true, true),
        ];
        let s = summarize(hosts, 2);
        assert_eq!((s.hosts, s.online, s.offline, s.revoked), (4, 3, 1, 1));
        let os = s.operating_systems.expect("os");
        let listed: Vec<(&str, u64)> = os.top.iter().map(|c| (c.value.as_str(), c.hosts)).collect();
        assert_eq!(listed, [("Debian 12", 2), ("Ubuntu 24.04", 1)], "most common first, ties by value");
        assert_eq!(os.other, 1, "Windows 11 is beyond the top 2");
        let models = s.hardware_models.expect("models");
        assert_eq!(models.top.iter().map(|c| c.hosts).sum::<u64>() + models.other, 4, "every counted host once");
    }

    #[test]
    fn top_has_a_default_and_a_ceiling() {
        let many = (0..150).map(|i| line(&format!("os {i:03}"), "m", true, false));
        let s = summarize(many.clone(), 0);
        assert_eq!(s.operating_systems.as_ref().expect("os").top.len(), DEFAULT_TOP);
        assert_eq!(s.operating_systems.as_ref().expect("os").other, 140);
        assert_eq!(summarize(many, 1000).operating_systems.expect("os").top.len(), MAX_TOP);
    }

    #[test]
    fn hardware_model_names_the_vendor_once() {
        assert_eq!(hardware_model("Dell Inc.", "PowerEdge R650"), "Dell Inc. PowerEdge R650");
        assert_eq!(hardware_model("LENOVO", "lenovo 20XW"), "lenovo 20XW");
        assert_eq!(hardware_model("QEMU", ""), "QEMU");
        assert_eq!(hardware_model(" ", "Standard PC"), "Standard PC");
        assert_eq!(hardware_model("", ""), "");
    }
}
