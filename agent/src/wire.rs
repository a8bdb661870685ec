//! Domain inventory -> `census.v1` messages: the one place the agent builds
//! wire types from its own.

use census_proto::v1 as pb;

use crate::inventory::{self as inv, Inventory, Unreadable, hardware as hw};

fn unreadable(list: &[Unreadable]) -> Vec<pb::Unreadable> {
    list.iter().map(|u| pb::Unreadable { field: u.field.clone(), reason: u.reason.clone() }).collect()
}

/// The wire identity. The collector keys hosts by UUID and names them by
/// host name, so both are required: without them this is `Err` with the
/// agent's reasons, for the operator.
pub fn identity(i: &inv::HostIdentity) -> Result<pb::HostIdentity, String> {
    match (&i.uuid, i.uuid_source, &i.hostname) {
        (Some(uuid), Some(source), Some(hostname)) => Ok(pb::HostIdentity {
            host_uuid: uuid.clone(),
            hostname: hostname.clone(),
            fqdn: i.fqdn.clone(),
            domain: i.domain.clone(),
            host_uuid_source: source.as_str().to_string(),
            unreadable: unreadable(&i.unreadable),
        }),
        _ => {
            let reasons: Vec<String> = i.unreadable.iter().map(|u| format!("{}: {}", u.field, u.reason)).collect();
            Err(format!("host UUID or host name unknown ({})", reasons.join("; ")))
        }
    }
}

pub fn inventory(i: &Inventory) -> pb::Inventory {
    let wire_identity = i.identity.as_ref().map(identity);
    let mut errors: Vec<pb::SectionError> =
        i.errors.iter().map(|e| pb::SectionError { section: e.section.clone(), message: e.message.clone() }).collect();
    if let Some(Err(message)) = &wire_identity {
        errors.push(pb::SectionError { section: "identity".into(), message: message.clone() });
    }
    pb::Inventory {
        collected_at_unix_ms: i.collected_at_unix_ms,
        identity: wire_identity.as_ref().and_then(|r| r.as_ref().ok()).cloned(),
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
            install_time_unix_ms: o.install_time_unix_ms,
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
        software: i.software.as_ref().map(|list| pb::SoftwareSection { packages: list.iter().map(package).collect() }),
        hardware: i.hardware.as_ref().map(hardware),
        netconfig: i.netconfig.as_ref().map(netconfig),
        users: i.users.as_ref().map(users),
        services: i.services.as_ref().map(services),
        os_state: i.os_state.as_ref().map(os_state),
        updates: i.updates.as_ref().map(updates),
        certificates: i.certificates.as_ref().map(certificates),
        errors,
    }
}

fn package(p: &inv::Package) -> pb::Package {
    pb::Package {
        name: p.name.clone(),
        version: p.version.clone(),
        arch: p.arch.clone(),
        vendor: p.vendor.clone(),
        source: p.source.as_str().to_string(),
        install_time_unix_ms: p.install_time_unix_ms,
    }
}

/// A serde unit-variant name ("vm", "nvme", "systemd_unit_files_only"):
/// the domain enums' serde names are their wire strings too.
fn name_of<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn hardware(h: &hw::Hardware) -> pb::HardwareSection {
    let s = &h.system;
    pb::HardwareSection {
        system: Some(pb::SystemRecord {
            vendor: s.vendor.clone(),
            model: s.model.clone(),
            serial: s.serial.clone(),
            chassis_type: s.chassis_type.clone(),
            bios_vendor: s.bios_vendor.clone(),
            bios_version: s.bios_version.clone(),
            bios_date: s.bios_date.clone(),
        }),
        memory_modules: h
            .memory_modules
            .iter()
            .flatten()
            .map(|m| pb::MemoryModule {
                slot: m.slot.clone(),
                bank: m.bank.clone(),
                size_bytes: m.size_bytes,
                speed_mts: m.speed_mts,
                memory_type: m.memory_type.clone(),
                manufacturer: m.manufacturer.clone(),
                part_number: m.part_number.clone(),
                serial: m.serial.clone(),
            })
            .collect(),
        disks: h
            .disks
            .iter()
            .map(|d| pb::Disk {
                name: d.name.clone(),
                model: d.model.clone(),
                serial: d.serial.clone(),
                size_bytes: d.size_bytes,
                kind: name_of(&d.kind),
                removable: d.removable,
                smart: d.smart.as_ref().map(|s| pb::SmartHealth {
                    passed: s.passed,
                    temperature_celsius: s.temperature_celsius,
                    power_on_hours: s.power_on_hours,
                }),
            })
            .collect(),
        gpus: h
            .gpus
            .iter()
            .map(|g| pb::Gpu {
                pci_address: g.pci_address.clone(),
                vendor_id: g.vendor_id.into(),
                device_id: g.device_id.into(),
                vendor: g.vendor.clone(),
                driver: g.driver.clone(),
                model: g.model.clone(),
            })
            .collect(),
        batteries: h
            .batteries
            .iter()
            .map(|b| pb::Battery {
                name: b.name.clone(),
                manufacturer: b.manufacturer.clone(),
                model: b.model.clone(),
                capacity_percent: b.capacity_percent.map(u32::from),
                health_percent: b.health_percent,
                cycle_count: b.cycle_count,
                status: b.status.clone(),
            })
            .collect(),
        virtualization: Some(pb::Virtualization { kind: name_of(&h.virtualization.kind), technology: h.virtualization.technology.clone() }),
        unreadable: unreadable(&h.unreadable),
    }
}

fn netconfig(n: &inv::NetConfig) -> pb::NetConfigSection {
    pb::NetConfigSection {
        default_gateways: n
            .default_gateways
            .iter()
            .map(|g| pb::DefaultGateway { gateway: g.gateway.to_string(), interface: g.interface.clone(), metric: g.metric })
            .collect(),
        dns: n.dns.as_ref().map(|d| pb::DnsConfig {
            nameservers: d.nameservers.clone(),
            search: d.search.clone(),
            systemd_resolved_stub: d.systemd_resolved_stub,
            upstream_nameservers: d.upstream_nameservers.clone(),
        }),
        listening: n
            .listening
            .iter()
            .flatten()
            .map(|s| pb::ListeningSocket {
                protocol: name_of(&s.protocol),
                address: s.address.to_string(),
                port: s.port.into(),
                uid: s.uid,
                inode: s.inode,
                processes: s.processes.iter().map(|p| pb::SocketProcess { pid: p.pid, name: p.name.clone() }).collect(),
            })
            .collect(),
        unreadable: unreadable(&n.unreadable),
    }
}

fn users(u: &inv::Users) -> pb::UsersSection {
    pb::UsersSection {
        accounts: u
            .accounts
            .iter()
            .map(|a| pb::Account {
                name: a.name.clone(),
                uid: a.uid,
                gid: a.gid,
                gecos: a.gecos.clone(),
                home: a.home.clone(),
                shell: a.shell.clone(),
                login: a.login,
            })
            .collect(),
        groups: u.groups.iter().map(|g| pb::Group { name: g.name.clone(), gid: g.gid, members: g.members.clone() }).collect(),
        admins: u.admins.clone(),
        sessions: u
            .sessions
            .iter()
            .flatten()
            .map(|s| pb::Session {
                user: s.user.clone(),
                tty: s.tty.clone(),
                host: s.host.clone(),
                pid: s.pid,
                login_time_unix_ms: s.login_time_unix.saturating_mul(1000),
            })
            .collect(),
        last_logins: u
            .last_logins
            .iter()
            .flatten()
            .map(|l| pb::LastLogin {
                user: l.user.clone(),
                time_unix_ms: l.time_unix.saturating_mul(1000),
                tty: l.tty.clone(),
                host: l.host.clone(),
                source: name_of(&l.source),
            })
            .collect(),
        unreadable: unreadable(&u.unreadable),
    }
}

fn services(s: &inv::Services) -> pb::ServicesSection {
    pb::ServicesSection {
        manager: name_of(&s.manager),
        units: s
            .units
            .iter()
            .map(|u| pb::Service {
                name: u.name.clone(),
                description: u.description.clone(),
                load_state: u.load_state.clone(),
                active_state: u.active_state.clone(),
                sub_state: u.sub_state.clone(),
                enabled: u.enabled.clone(),
                pid: u.pid,
            })
            .collect(),
        failed: s.failed.clone(),
        unreadable: unreadable(&s.unreadable),
    }
}

fn os_state(o: &inv::OsState) -> pb::OsStateSection {
    pb::OsStateSection {
        timezone: o.timezone.clone(),
        pending_reboot: o.pending_reboot.as_ref().map(|p| pb::PendingReboot {
            required: p.required,
            packages: p.packages.clone(),
            source: p.source.clone(),
        }),
        secure_boot: o.secure_boot.as_ref().map(name_of),
        filesystems_encryption: o
            .filesystems_encryption
            .iter()
            .flatten()
            .map(|f| pb::FilesystemEncryption {
                mount_point: f.mount_point.clone(),
                device: f.device.clone(),
                fs_type: f.fs_type.clone(),
                encrypted: f.encrypted,
                crypt_device: f.crypt_device.clone(),
            })
            .collect(),
        root_encrypted: o.root_encrypted,
        unreadable: unreadable(&o.unreadable),
    }
}

/// A health sample on the wire.
pub fn health_sample(s: &crate::health::HealthSample) -> pb::HealthSample {
    pb::HealthSample {
        taken_at_unix_ms: s.taken_at_unix_ms,
        cpu_percent: s.cpu_percent,
        load1: s.load.as_ref().map(|l| l.one),
        load5: s.load.as_ref().map(|l| l.five),
        load15: s.load.as_ref().map(|l| l.fifteen),
        memory_total_bytes: s.memory.as_ref().map(|m| m.total_bytes),
        memory_available_bytes: s.memory.as_ref().map(|m| m.available_bytes),
        memory_used_bytes: s.memory.as_ref().map(|m| m.used_bytes),
        swap_total_bytes: s.memory.as_ref().map(|m| m.swap_total_bytes),
        swap_used_bytes: s.memory.as_ref().map(|m| m.swap_used_bytes),
        filesystems: s
            .filesystems
            .iter()
            .map(|f| pb::FilesystemUsage {
                mount_point: f.mount_point.clone(),
                total_bytes: f.total_bytes,
                available_bytes: f.available_bytes,
                used_percent: f.used_percent,
                inodes_used_percent: f.inodes_used_percent,
            })
            .collect(),
        disks: s
            .disks
            .iter()
            .flatten()
            .map(|d| pb::DiskRate {
                device: d.device.clone(),
                read_bytes_per_s: d.read_bytes_per_sec,
                write_bytes_per_s: d.write_bytes_per_sec,
                reads_per_s: d.reads_per_sec,
                writes_per_s: d.writes_per_sec,
            })
            .collect(),
        network: s
            .network
            .iter()
            .flatten()
            .map(|n| pb::NetRate {
                interface: n.interface.clone(),
                rx_bytes_per_s: n.rx_bytes_per_sec,
                tx_bytes_per_s: n.tx_bytes_per_sec,
                rx_errors: n.rx_errors,
                tx_errors: n.tx_errors,
                rx_drops: n.rx_drops,
                tx_drops: n.tx_drops,
            })
            .collect(),
        process_count: s.process_count,
        top_by_cpu: s
            .top_by_cpu
            .iter()
            .flatten()
            .map(|p| pb::ProcessCpu { pid: p.pid, name: p.name.clone(), cpu_percent: p.cpu_percent })
            .collect(),
        top_by_memory: s
            .top_by_memory
            .iter()
            .flatten()
            .map(|p| pb::ProcessMemory { pid: p.pid, name: p.name.clone(), rss_bytes: p.rss_bytes })
            .collect(),
        temperatures: s.temperatures.iter().map(|t| pb::Temperature { sensor: t.sensor.clone(), celsius: t.celsius }).collect(),
        uptime_s: s.uptime_seconds,
        failed_units: s.failed_units.clone().unwrap_or_default(),
        failed_units_known: s.failed_units.is_some(),
        agent_rss_bytes: s.agent_rss_bytes,
        agent_cpu_s: s.agent_cpu_seconds,
        custom: s.custom.iter().map(|c| pb::CustomMetric { name: c.name.clone(), value: c.value }).collect(),
    }
}

fn updates(u: &inv::PendingUpdates) -> pb::UpdatesSection {
    pb::UpdatesSection {
        updates: u
            .updates
            .iter()
            .map(|p| pb::PendingUpdate {
                name: p.name.clone(),
                installed_version: p.installed_version.clone(),
                available_version: p.available_version.clone(),
                source: p.source.as_str().to_string(),
                security: p.security,
                origin: p.origin.clone(),
            })
            .collect(),
        unreadable: unreadable(&u.unreadable),
    }
}

fn certificates(c: &inv::Certificates) -> pb::CertificatesSection {
    pb::CertificatesSection {
        certificates: c
            .certificates
            .iter()
            .map(|x| pb::Certificate {
                path: x.path.clone(),
                index: x.index,
                location: name_of(&x.location),
                subject: x.subject.clone(),
                issuer: x.issuer.clone(),
                serial: x.serial.clone(),
                sans: x.sans.clone(),
                not_before_unix_ms: x.not_before_unix_ms,
                not_after_unix_ms: x.not_after_unix_ms,
                self_signed: x.self_signed,
                is_ca: x.is_ca,
                sha256_fingerprint: x.sha256_fingerprint.clone(),
            })
            .collect(),
        unreadable: unreadable(&c.unreadable),
    }
}
