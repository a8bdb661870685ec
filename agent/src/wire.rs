//! Domain inventory -> `census.v1` messages: the one place the agent builds
//! wire types from its own.

use census_proto::v1 as pb;

use crate::inventory::{self as inv, Inventory, Unreadable};

fn unreadable(list: &[Unreadable]) -> Vec<pb::Unreadable> {
    list.iter().map(|u| pb::Unreadable { field: u.field.clone(), reason: u.reason.clone() }).collect()
}

pub fn identity(i: &inv::HostIdentity) -> pb::HostIdentity {
    pb::HostIdentity {
        host_uuid: i.host_uuid.clone(),
        hostname: i.hostname.clone(),
        fqdn: i.fqdn.clone(),
        domain: i.domain.clone(),
        host_uuid_source: i.host_uuid_source.to_string(),
    }
}

pub fn inventory(i: &Inventory) -> pb::Inventory {
    pb::Inventory {
        collected_at_unix_ms: i.collected_at_unix_ms,
        identity: i.identity.as_ref().map(identity),
        os: i.os.as_ref().map(|o| pb::OsSection {
            name: o.name.clone(),
            version: o.version.clone(),
            version_id: o.version_id.clone(),
            id: o.id.clone(),
            id_like: o.id_like.clone(),
            pretty_name: o.pretty_name.clone(),
            kernel: o.kernel.clone(),
            arch: o.arch.clone(),
            family: o.family.to_string(),
            boot_time_unix_ms: o.boot_time_unix_ms,
            timezone: o.timezone.clone(),
            build: o.build.clone(),
            unreadable: unreadable(&o.unreadable),
        }),
        cpu: i.cpu.as_ref().map(|c| pb::CpuSection {
            model: c.model.clone(),
            vendor: c.vendor.clone(),
            sockets: c.sockets,
            physical_cores: c.physical_cores,
            logical_cores: c.logical_cores,
            frequency_mhz: c.frequency_mhz,
            unreadable: unreadable(&c.unreadable),
        }),
        memory: i.memory.as_ref().map(|m| pb::MemorySection {
            total_bytes: m.total_bytes,
            swap_total_bytes: m.swap_total_bytes,
            unreadable: unreadable(&m.unreadable),
        }),
        filesystems: i.filesystems.as_ref().map(|list| pb::FilesystemSection {
            filesystems: list
                .iter()
                .map(|f| pb::Filesystem {
                    mount_point: f.mount_point.clone(),
                    device: f.device.clone(),
                    fs_type: f.fs_type.clone(),
                    total_bytes: f.total_bytes,
                    free_bytes: f.free_bytes,
                    available_bytes: f.available_bytes,
                    inodes_total: f.inodes_total,
                    inodes_free: f.inodes_free,
                    read_only: f.read_only,
                })
                .collect(),
        }),
        network: i.network.as_ref().map(|list| pb::NetworkSection {
            interfaces: list
                .iter()
                .map(|n| pb::NetworkInterface {
                    name: n.name.clone(),
                    mac: n.mac.clone(),
                    addresses: n.addresses.iter().map(|a| pb::IpAddress { address: a.address.clone(), prefix_len: a.prefix_len }).collect(),
                    oper_state: n.oper_state.clone(),
                    speed_mbps: n.speed_mbps,
                    mtu: n.mtu,
                })
                .collect(),
        }),
        errors: i.errors.iter().map(|e| pb::SectionError { section: e.section.to_string(), message: e.message.clone() }).collect(),
    }
}
