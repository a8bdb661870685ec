//! Hardware on Linux: DMI system record, memory modules, disks (+SMART),
//! GPUs, batteries, virtualization.
//!
//! Reads, under `root`: `/sys/class/dmi/id/*`, `/sys/block/*`,
//! `/sys/bus/pci/devices/*`, `/sys/class/power_supply/*/uevent`,
//! `/proc/cpuinfo`, `/proc/1/{cgroup,environ}`, `/.dockerenv`,
//! `/run/.containerenv`, `/sys/hypervisor/type`; and runs `dmidecode -t 17`
//! and `smartctl -j -H -i /dev/X` only when `root` is "/" (a command
//! cannot look into a fixture tree). This module is the read layer; each
//! source has its pure parser in a submodule. Every field that cannot be
//! read is absent with a reason; the section itself does not fail.

pub mod battery;
pub mod disks;
pub mod dmi;
pub mod gpu;
pub mod macos;
pub mod memory;
pub mod virt;
pub mod windows;

use std::path::Path;
use std::process::Command;

use crate::collect::fs::read_under;
use crate::error::Result;
use crate::inventory::hardware::{Hardware, SystemRecord};
use crate::inventory::unreadable::{Unreadable, io_reason};

const MAX_SYSFS_BYTES: usize = 64 << 10;
/// /proc/cpuinfo on a 512-thread server is ~1 MiB.
const MAX_CPUINFO_BYTES: usize = 8 << 20;

/// Collects the hardware section from the system under `root`.
pub fn collect(root: &Path) -> Result<Hardware> {
    let live = root == Path::new("/");
    let mut unreadable = Vec::new();
    let system = collect_system(root, &mut unreadable);

    let memory_modules = if live {
        match run("dmidecode", &["-t", "17"], memory::MAX_DMIDECODE_BYTES) {
            Ok(text) => match memory::parse_dmidecode_memory(&text) {
                Ok(m) => Some(m),
                Err(e) => {
                    unreadable.push(Unreadable::new("memory_modules", e.to_string()));
                    None
                }
            },
            Err(reason) => {
                unreadable.push(Unreadable::new("memory_modules", reason));
                None
            }
        }
    } else {
        unreadable.push(Unreadable::new("memory_modules", "dmidecode runs only against the live system"));
        None
    };

    let disks = collect_disks(root, live, &mut unreadable);
    let gpus = collect_gpus(root);
    let batteries = collect_batteries(root, &mut unreadable);

    let evidence = virt::VirtEvidence {
        dockerenv: root.join(".dockerenv").exists(),
        containerenv: root.join("run/.containerenv").exists(),
        pid1_container_env: std::fs::read(root.join("proc/1/environ")).ok().and_then(|e| virt::container_from_environ(&e)),
        pid1_cgroup: read_under(root, "proc/1/cgroup", MAX_SYSFS_BYTES).ok(),
        cpu_hypervisor_flag: read_under(root, "proc/cpuinfo", MAX_CPUINFO_BYTES)
            .map(|t| virt::cpuinfo_has_hypervisor_flag(&t))
            .unwrap_or(false),
        hypervisor_type: read_under(root, "sys/hypervisor/type", MAX_SYSFS_BYTES).ok(),
        sys_vendor: system.vendor.clone(),
        product_name: system.model.clone(),
        bios_vendor: system.bios_vendor.clone(),
    };
    let virtualization = virt::detect(&evidence);

    Ok(Hardware { system, memory_modules, disks, gpus, batteries, virtualization, unreadable })
}

fn collect_system(root: &Path, unreadable: &mut Vec<Unreadable>) -> SystemRecord {
    let mut field = |file: &str, name: &str| -> Option<String> {
        let src = format!("/sys/class/dmi/id/{file}");
        let text = match read_under(root, &format!("sys/class/dmi/id/{file}"), MAX_SYSFS_BYTES) {
            Ok(t) => t,
            Err(e) => {
                unreadable.push(Unreadable::from_io(format!("system.{name}"), &src, &e));
                return None;
            }
        };
        let parsed = if file == "chassis_type" { dmi::parse_chassis_type(&text) } else { dmi::parse_dmi_value(&text, file) };
        match parsed {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                unreadable.push(Unreadable::new(
                    format!("system.{name}"),
                    format!("{src} holds no value or a firmware placeholder ({:?})", text.trim()),
                ));
                None
            }
            Err(e) => {
                unreadable.push(Unreadable::new(format!("system.{name}"), e.to_string()));
                None
            }
        }
    };
    SystemRecord {
        vendor: field("sys_vendor", "vendor"),
        model: field("product_name", "model"),
        serial: field("product_serial", "serial"),
        chassis_type: field("chassis_type", "chassis_type"),
        bios_vendor: field("bios_vendor", "bios_vendor"),
        bios_version: field("bios_version", "bios_version"),
        bios_date: field("bios_date", "bios_date"),
    }
}

fn collect_disks(root: &Path, live: bool, unreadable: &mut Vec<Unreadable>) -> Vec<crate::inventory::hardware::Disk> {
    let block = root.join("sys/block");
    let mut names: Vec<String> = match std::fs::read_dir(&block) {
        Ok(it) => it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| disks::is_disk(n)).collect(),
        Err(e) => {
            unreadable.push(Unreadable::from_io("disks", "/sys/block", &e));
            return Vec::new();
        }
    };
    names.sort();
    let smartctl_present = live && Command::new("smartctl").arg("--version").output().is_ok();
    if !smartctl_present {
        let why = if live { "smartctl is not installed (package smartmontools)" } else { "smartctl runs only against the live system" };
        unreadable.push(Unreadable::new("disks[*].smart", why));
    }
    let mut out = Vec::new();
    for name in names {
        let rel = |f: &str| format!("sys/block/{name}/{f}");
        let text = |f: &str| read_under(root, &rel(f), MAX_SYSFS_BYTES).ok();
        let raw = disks::BlockSysfs {
            size_sectors: text("size"),
            rotational: text("queue/rotational"),
            removable: text("removable"),
            model: text("device/model"),
            serial: text("device/serial").or_else(|| text("serial")),
            vpd_pg80: std::fs::read(root.join(rel("device/vpd_pg80"))).ok(),
        };
        match disks::disk_from_sysfs(&name, &raw) {
            Ok((mut disk, u)) => {
                unreadable.extend(u);
                if smartctl_present {
                    let dev = format!("/dev/{name}");
                    match smart(&dev) {
                        Ok(h) => disk.smart = Some(h),
                        Err(reason) => unreadable.push(Unreadable::new(format!("disks[{name}].smart"), reason)),
                    }
                }
                out.push(disk);
            }
            Err(e) => unreadable.push(Unreadable::new(format!("disks[{name}]"), e.to_string())),
        }
    }
    out
}

fn smart(dev: &str) -> std::result::Result<crate::inventory::hardware::SmartHealth, String> {
    let out = Command::new("smartctl").args(["-j", "-H", "-i", dev]).output().map_err(|e| format!("running smartctl: {e}"))?;
    // Non-zero exit bits are common and informative; the JSON decides.
    if out.stdout.is_empty() {
        return Err(format!("smartctl printed nothing: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    disks::parse_smartctl_json(&String::from_utf8_lossy(&out.stdout), dev).map_err(|e| e.to_string())
}

fn collect_gpus(root: &Path) -> Vec<crate::inventory::hardware::Gpu> {
    let Ok(it) = std::fs::read_dir(root.join("sys/bus/pci/devices")) else {
        return Vec::new();
    };
    let mut out: Vec<_> = it
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let read = |f: &str| read_under(&dir, f, 256).ok();
            let driver = std::fs::read_link(dir.join("driver")).ok().map(|p| p.to_string_lossy().into_owned());
            gpu::gpu_from_pci(&e.file_name().to_string_lossy(), &read("class")?, &read("vendor")?, &read("device")?, driver.as_deref())
        })
        .collect();
    out.sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
    out
}

fn collect_batteries(root: &Path, unreadable: &mut Vec<Unreadable>) -> Vec<crate::inventory::hardware::Battery> {
    let Ok(it) = std::fs::read_dir(root.join("sys/class/power_supply")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in it.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        match read_under(&e.path(), "uevent", MAX_SYSFS_BYTES) {
            Ok(text) => match battery::parse_power_supply_uevent(&name, &text) {
                Ok(Some(b)) => out.push(b),
                Ok(None) => {}
                Err(err) => unreadable.push(Unreadable::new(format!("batteries[{name}]"), err.to_string())),
            },
            Err(err) => unreadable
                .push(Unreadable::new(format!("batteries[{name}]"), io_reason(&format!("/sys/class/power_supply/{name}/uevent"), &err))),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Runs a command and returns its stdout, or the reason it gave nothing.
fn run(program: &str, args: &[&str], limit: usize) -> std::result::Result<String, String> {
    match crate::collect::command::run_command(program, args, &[], limit as u64) {
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(format!("{program} is not installed")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::hardware::{DiskKind, VirtualizationKind};

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hardware")
    }

    #[test]
    fn laptop_fixture_tree() {
        let h = collect(&fixtures().join("laptop")).unwrap();
        assert_eq!(h.system.vendor.as_deref(), Some("LENOVO"));
        assert_eq!(h.system.model.as_deref(), Some("21HMCTO1WW"));
        assert_eq!(h.system.serial.as_deref(), Some("PF4XK2QZ"));
        assert_eq!(h.system.chassis_type.as_deref(), Some("Notebook"));
        assert_eq!(h.system.bios_version.as_deref(), Some("N3XET53W (1.28 )"));
        assert_eq!(h.system.bios_date.as_deref(), Some("03/15/2024"));
        let names: Vec<&str> = h.disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda"], "loop and zram are not disks");
        let sda = h.disks.iter().find(|d| d.name == "sda").unwrap();
        assert_eq!((sda.kind, sda.removable, sda.serial.as_deref()), (DiskKind::Rotational, true, Some("S4EWNX0R123456")));
        assert_eq!(h.disks.first().map(|d| d.kind), Some(DiskKind::Nvme));
        let gpus: Vec<(&str, Option<&str>)> = h.gpus.iter().map(|g| (g.pci_address.as_str(), g.driver.as_deref())).collect();
        assert_eq!(gpus, [("0000:00:02.0", Some("i915")), ("0000:01:00.0", Some("nvidia"))]);
        assert_eq!(h.batteries.len(), 1);
        assert_eq!(h.batteries.first().and_then(|b| b.health_percent), Some(88.6));
        assert_eq!(h.virtualization.kind, VirtualizationKind::None);
        assert!(h.memory_modules.is_none());
        assert!(h.unreadable.iter().any(|u| u.field == "memory_modules"));
    }

    #[test]
    fn empty_tree_reports_reasons_not_failure() {
        let h = collect(&fixtures().join("no-such-root")).unwrap();
        assert_eq!(h.system, SystemRecord::default());
        for f in ["system.vendor", "system.serial", "system.chassis_type", "system.bios_date", "disks"] {
            let u = h.unreadable.iter().find(|u| u.field == f).unwrap_or_else(|| panic!("{f} not explained"));
            assert!(u.reason.contains("not present"), "{u:?}");
        }
    }

    /// Live machine: disks equal `lsblk -d` minus logical devices; GPUs
    /// and DMI fields are present or explained.
    #[test]
    fn live_machine_disks_match_lsblk() {
        let Ok(out) = Command::new("lsblk").args(["-d", "-b", "-n", "-o", "NAME,SIZE"]).output() else {
            eprintln!("skipping: lsblk not installed");
            return;
        };
        let h = collect(Path::new("/")).unwrap();
        let mut theirs: Vec<(String, u64)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?.to_string(), f.next()?.parse().ok()?))
            })
            .filter(|(n, _)| disks::is_disk(n))
            .collect();
        theirs.sort();
        let ours: Vec<(String, u64)> = h.disks.iter().map(|d| (d.name.clone(), d.size_bytes)).collect();
        assert_eq!(ours, theirs);
        for f in ["system.vendor", "system.serial"] {
            let field_name = f.trim_start_matches("system.");
            let present = match field_name {
                "vendor" => h.system.vendor.is_some(),
                _ => h.system.serial.is_some(),
            };
            assert!(present || h.unreadable.iter().any(|u| u.field == f), "{f} neither present nor explained");
        }
        if Path::new("/.dockerenv").exists() {
            assert_eq!(h.virtualization.kind, VirtualizationKind::Container);
        }
    }
}
