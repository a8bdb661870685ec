//! Conversions between stored records and `census.v1` admin messages: the
//! one place the admin API's wire shapes are built.

use census_proto::v1 as pb;

use crate::store::HostView;

/// The host-list line for one host.
pub fn host_summary(host: &HostView, online: bool) -> pb::HostSummary {
    let inv = host.inventory.as_ref().and_then(|r| r.inventory.as_ref());
    let os = inv.and_then(|i| i.os.as_ref());
    pb::HostSummary {
        agent_id: host.agent.agent_id.clone(),
        hostname: host.agent.hostname.clone(),
        host_uuid: host.agent.host_uuid.clone(),
        os: os
            .map(|o| {
                o.pretty_name.clone().unwrap_or_else(|| format!("{} {}", o.name, o.version.clone().unwrap_or_default()).trim().to_string())
            })
            .unwrap_or_default(),
        kernel: os.map(|o| o.kernel.clone()).unwrap_or_default(),
        arch: os.map(|o| o.arch.clone()).unwrap_or_default(),
        cpu_logical_cores: inv.and_then(|i| i.cpu.as_ref()).map(|c| c.logical_cores).unwrap_or(0),
        memory_total_bytes: inv.and_then(|i| i.memory.as_ref()).map(|m| m.total_bytes).unwrap_or(0),
        agent_version: host.agent.agent_version.clone(),
        enrolled_at_unix_ms: host.agent.enrolled_at_unix_ms,
        last_seen_unix_ms: host.agent.last_seen_unix_ms,
        last_seq: host.agent.last_seq,
        revoked: host.agent.revoked,
        online,
        health_dropped_batches: host.agent.health_dropped_batches,
        health_dropped_samples: host.agent.health_dropped_samples,
        health_samples_stored: host.agent.health_samples_stored,
        reports_stored: host.agent.reports_stored,
    }
}

/// One line of `census changes`.
pub fn host_change(agent_id: &str, hostname: &str, c: crate::store::ChangeRecord) -> pb::HostChange {
    pb::HostChange {
        agent_id: agent_id.to_string(),
        hostname: hostname.to_string(),
        at_unix_ms: c.at_unix_ms,
        kind: c.kind,
        subject: c.subject,
        old: c.old,
        new: c.new,
    }
}

/// One version group of `census software NAME`, hosts ordered by hostname.
pub fn software_version(
    group: crate::software::VersionGroup,
    hostnames: &std::collections::HashMap<String, String>,
) -> pb::SoftwareVersion {
    let mut hosts: Vec<pb::SoftwareHost> = group
        .agents
        .into_iter()
        .map(|(agent_id, arch)| pb::SoftwareHost { hostname: hostnames.get(&agent_id).cloned().unwrap_or_default(), agent_id, arch })
        .collect();
    hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname).then_with(|| a.agent_id.cmp(&b.agent_id)));
    pb::SoftwareVersion { version: group.version, source: group.source, host_count: hosts.len() as u64, hosts }
}
