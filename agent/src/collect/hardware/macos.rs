//! Hardware on macOS, from one `system_profiler -json` call over
//! [`DATA_TYPES`] plus the `sysctl` output of `collect::system::macos`
//! (`hw.model`, `kern.hv_vmm_present`).
//!
//! - System record: vendor "Apple Inc.", model = model identifier
//!   (`MacBookPro18,3`), serial, boot ROM as firmware version; the chassis
//!   is derived from the marketing name (MacBook → Notebook, iMac → All in
//!   One, Mac mini/Studio → Desktop, Mac Pro → Tower). Macs have no BIOS
//!   date.
//! - Memory: `SPMemoryDataType` DIMMs on Intel Macs; Apple silicon's
//!   on-package memory is one module with slot "on-package".
//! - Disks: `SPNVMeDataType` and `SPSerialATADataType` items (bsd name,
//!   model, serial, size, medium, `smart_status` Verified/Failing).
//! - GPUs: `SPDisplaysDataType` (model, vendor; PCI ids where listed).
//! - Battery: `SPPowerDataType` (charge, cycle count, maximum capacity as
//!   health, condition).
//! - Virtualization: `kern.hv_vmm_present` = 1 is a VM; the technology
//!   comes from `hw.model` (VMware, Parallels, `VirtualMac` for Apple's
//!   Virtualization framework).

use serde_json::Value;

use crate::collect::hardware::gpu::pci_vendor_name;
use crate::collect::json::{items, text, uint};
use crate::collect::system::macos::parse_sysctl;
use crate::error::{Error, Result};
use crate::inventory::hardware::{
    Battery, Disk, DiskKind, Gpu, Hardware, MemoryModule, SmartHealth, SystemRecord, Virtualization, VirtualizationKind,
};
use crate::inventory::unreadable::Unreadable;

const WHAT: &str = "system_profiler -json output";

pub const DATA_TYPES: [&str; 6] =
    ["SPHardwareDataType", "SPMemoryDataType", "SPNVMeDataType", "SPSerialATADataType", "SPDisplaysDataType", "SPPowerDataType"];

#[cfg(target_os = "macos")]
pub fn collect(_root: &std::path::Path) -> Result<Hardware> {
    let mut args = vec!["-json", "-detailLevel", "mini"];
    args.extend(DATA_TYPES);
    let profile = crate::collect::command::run("system_profiler", &args, crate::collect::command::MAX_OUTPUT_BYTES)?;
    parse_hardware(&profile, &crate::collect::system::macos::read_sysctl()?)
}

/// Parses `system_profiler -json` over [`DATA_TYPES`] and the sysctl text.
pub fn parse_hardware(profile: &str, sysctl: &str) -> Result<Hardware> {
    let json: Value = serde_json::from_str(profile).map_err(|e| Error::parse(WHAT, Some(e.line()), format!("not JSON: {e}")))?;
    if !json.is_object() {
        return Err(Error::parse(WHAT, None, "not a JSON object"));
    }
    let data = |t: &str| items(json.get(t));
    let mut unreadable = Vec::new();
    let null = Value::Null;
    let hw = data("SPHardwareDataType").into_iter().next().unwrap_or(&null);
    let name = text(hw, "machine_name");
    let chassis = name.as_deref().and_then(|n| {
        Some(if n.starts_with("MacBook") {
            "Notebook"
        } else if n.starts_with("iMac") {
            "All in One"
        } else if n.starts_with("Mac mini") || n.starts_with("Mac Studio") {
            "Desktop"
        } else if n.starts_with("Mac Pro") {
            "Tower"
        } else {
            return None;
        })
    });
    let system = SystemRecord {
        vendor: Some("Apple Inc.".into()),
        model: text(hw, "machine_model"),
        serial: text(hw, "serial_number"),
        chassis_type: chassis.map(str::to_owned),
        bios_vendor: Some("Apple Inc.".into()),
        bios_version: text(hw, "boot_rom_version"),
        bios_date: None,
    };
    for (field, value) in [
        ("system.model", &system.model),
        ("system.serial", &system.serial),
        ("system.chassis_type", &system.chassis_type),
        ("system.bios_version", &system.bios_version),
    ] {
        if value.is_none() {
            unreadable.push(Unreadable::new(field, "not in system_profiler SPHardwareDataType"));
        }
    }
    unreadable.push(Unreadable::new("system.bios_date", "Mac firmware has no release date"));
    let memory_modules = memory_modules(&data("SPMemoryDataType"));
    if memory_modules.is_none() {
        unreadable.push(Unreadable::new("memory_modules", "system_profiler SPMemoryDataType lists no memory"));
    }
    let mut disks: Vec<Disk> = data("SPNVMeDataType")
        .into_iter()
        .chain(data("SPSerialATADataType"))
        .flat_map(|c| items(c.get("_items")))
        .filter_map(|d| disk(d, &mut unreadable))
        .collect();
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    let gpus = data("SPDisplaysDataType").into_iter().filter_map(gpu).collect();
    let batteries =
        data("SPPowerDataType").into_iter().filter(|p| text(p, "_name").as_deref() == Some("spbattery_information")).map(battery).collect();
    let virtualization = virtualization(sysctl);
    Ok(Hardware { system, memory_modules, disks, gpus, batteries, virtualization, unreadable })
}

/// `"8 GB"`, `"512 MB"` to bytes.
fn size_bytes(text: &str) -> Option<u64> {
    let (n, unit) = text.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    n.checked_mul(match unit {
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    })
}

fn memory_modules(entries: &[&Value]) -> Option<Vec<MemoryModule>> {
    let real = |v: &Value, k: &str| text(v, k).filter(|t| t != "-" && !t.eq_ignore_ascii_case("empty"));
    let mut modules = Vec::new();
    for entry in entries {
        let dimms = items(entry.get("_items"));
        if dimms.is_empty() {
            // Apple silicon: one entry for the on-package memory.
            if let Some(size) = text(entry, "SPMemoryDataType").and_then(|s| size_bytes(&s)) {
                modules.push(MemoryModule {
                    slot: "on-package".into(),
                    bank: None,
                    size_bytes: size,
                    speed_mts: None,
                    memory_type: real(entry, "dimm_type"),
                    manufacturer: real(entry, "dimm_manufacturer"),
                    part_number: None,
                    serial: None,
                });
            }
            continue;
        }
        for d in dimms {
            let (Some(slot), Some(size)) = (text(d, "_name"), text(d, "dimm_size").and_then(|s| size_bytes(&s))) else { continue };
            let (bank, slot) = match slot.split_once('/') {
                Some((bank, slot)) => (Some(bank.to_owned()), slot.to_owned()),
                None => (None, slot),
            };
            modules.push(MemoryModule {
                slot,
                bank,
                size_bytes: size,
                speed_mts: text(d, "dimm_speed").and_then(|s| s.split_whitespace().next()?.parse().ok()),
                memory_type: real(d, "dimm_type"),
                manufacturer: real(d, "dimm_manufacturer"),
                part_number: real(d, "dimm_part_number"),
                serial: real(d, "dimm_serial_number"),
            });
        }
    }
    (!modules.is_empty()).then_some(modules)
}

fn disk(d: &Value, unreadable: &mut Vec<Unreadable>) -> Option<Disk> {
    let name = text(d, "bsd_name")?;
    let nvme = d.as_object().is_some_and(|o| o.keys().any(|k| k.starts_with("spnvme_")));
    let kind = if nvme {
        DiskKind::Nvme
    } else {
        match text(d, "spsata_medium_type").as_deref() {
            Some("Solid State") => DiskKind::Ssd,
            Some("Rotational") => DiskKind::Rotational,
            _ => DiskKind::Unknown,
        }
    };
    let smart = match text(d, "smart_status").as_deref() {
        Some("Verified") => Some(true),
        Some("Failing") => Some(false),
        other => {
            unreadable.push(Unreadable::new(format!("disks[{name}].smart"), format!("smart_status is {}", other.unwrap_or("absent"))));
            None
        }
    }
    .map(|passed| SmartHealth { passed: Some(passed), temperature_celsius: None, power_on_hours: None });
    Some(Disk {
        model: text(d, "device_model").or_else(|| text(d, "_name")),
        serial: text(d, "device_serial"),
        size_bytes: uint(d, "size_in_bytes").unwrap_or(0),
        kind,
        removable: text(d, "removable_media").is_some_and(|r| r.eq_ignore_ascii_case("yes")),
        smart,
        name,
    })
}

fn hex_id(v: &Value, key: &str) -> Option<u16> {
    let t = text(v, key)?;
    u16::from_str_radix(t.trim_start_matches("0x"), 16).ok()
}

fn gpu(g: &Value) -> Option<Gpu> {
    let model = text(g, "sppci_model").or_else(|| text(g, "_name"))?;
    let vendor_text = text(g, "spdisplays_vendor").map(|v| v.trim_start_matches("sppci_vendor_").to_owned());
    let apple = vendor_text.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("apple"));
    let vendor_id = hex_id(g, "spdisplays_vendor-id").or(apple.then_some(0x106b)).unwrap_or(0);
    Some(Gpu {
        pci_address: String::new(),
        vendor_id,
        device_id: hex_id(g, "spdisplays_device-id").unwrap_or(0),
        vendor: pci_vendor_name(vendor_id).map(str::to_owned).or(vendor_text),
        driver: None,
        model: Some(model),
    })
}

fn battery(p: &Value) -> Battery {
    let null = Value::Null;
    let charge = p.get("sppower_battery_charge_info").unwrap_or(&null);
    let health = p.get("sppower_battery_health_info").unwrap_or(&null);
    let model = p.get("sppower_battery_model_info").unwrap_or(&null);
    let flag = |v: &Value, k: &str| text(v, k).map(|t| t.eq_ignore_ascii_case("TRUE") || t.eq_ignore_ascii_case("Yes"));
    let status = match (flag(charge, "sppower_battery_fully_charged"), flag(charge, "sppower_battery_is_charging")) {
        (Some(true), _) => Some("Full"),
        (_, Some(true)) => Some("Charging"),
        (_, Some(false)) => Some("Discharging"),
        _ => None,
    };
    Battery {
        name: "InternalBattery-0".into(),
        manufacturer: text(model, "sppower_battery_manufacturer"),
        model: text(model, "sppower_battery_device_name"),
        capacity_percent: uint(charge, "sppower_battery_state_of_charge").and_then(|c| u8::try_from(c.min(100)).ok()),
        health_percent: text(health, "sppower_battery_health_maximum_capacity")
            .and_then(|m| m.trim_end_matches('%').trim().parse::<f64>().ok())
            .filter(|m| (0.0..=200.0).contains(m)),
        cycle_count: uint(health, "sppower_battery_cycle_count").and_then(|c| u32::try_from(c).ok()),
        status: status.map(str::to_owned),
    }
}

fn virtualization(sysctl: &str) -> Virtualization {
    let map = parse_sysctl(sysctl);
    if map.get("kern.hv_vmm_present").copied() != Some("1") {
        return Virtualization { kind: VirtualizationKind::None, technology: None };
    }
    let model = map.get("hw.model").copied().unwrap_or("");
    let technology = if model.starts_with("VMware") {
        "vmware"
    } else if model.starts_with("Parallels") {
        "parallels"
    } else if model.starts_with("VirtualMac") {
        "apple"
    } else {
        "vm-other"
    };
    Virtualization { kind: VirtualizationKind::Vm, technology: Some(technology.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLE: &str = include_str!("../../../tests/fixtures/hardware/macos/system_profiler_apple_silicon.json");
    const INTEL: &str = include_str!("../../../tests/fixtures/hardware/macos/system_profiler_intel.json");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/hardware/macos/system_profiler_truncated.json");
    const SYSCTL_APPLE: &str = include_str!("../../../tests/fixtures/system/macos/sysctl_apple_silicon.txt");
    const SYSCTL_INTEL: &str = include_str!("../../../tests/fixtures/system/macos/sysctl_intel.txt");

    #[test]
    fn apple_silicon_laptop() {
        let hw = parse_hardware(APPLE, SYSCTL_APPLE).unwrap();
        let s = &hw.system;
        assert_eq!(
            (s.model.as_deref(), s.serial.as_deref(), s.chassis_type.as_deref()),
            (Some("MacBookPro18,3"), Some("C02XL1000000"), Some("Notebook"))
        );
        let mods = hw.memory_modules.as_ref().unwrap();
        assert_eq!(
            (mods.len(), mods[0].slot.as_str(), mods[0].size_bytes, mods[0].memory_type.as_deref()),
            (1, "on-package", 32 << 30, Some("LPDDR5"))
        );
        assert_eq!(hw.disks.len(), 1);
        let d = &hw.disks[0];
        assert_eq!(
            (d.name.as_str(), d.kind, d.size_bytes, d.serial.as_deref()),
            ("disk0", DiskKind::Nvme, 1_000_555_581_440, Some("0ba0123456789abc"))
        );
        assert_eq!(d.smart.as_ref().and_then(|s| s.passed), Some(true));
        assert_eq!(
            (hw.gpus[0].vendor_id, hw.gpus[0].model.as_deref(), hw.gpus[0].vendor.as_deref()),
            (0x106b, Some("Apple M1 Pro"), Some("Apple"))
        );
        let b = &hw.batteries[0];
        assert_eq!(
            (b.capacity_percent, b.health_percent, b.cycle_count, b.status.as_deref()),
            (Some(85), Some(92.0), Some(123), Some("Charging"))
        );
        assert_eq!(hw.virtualization.kind, VirtualizationKind::None);
        let fields: Vec<&str> = hw.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["system.bios_date"]);
    }

    #[test]
    fn intel_mac_in_a_vm_with_dimms_and_sata() {
        let hw = parse_hardware(INTEL, SYSCTL_INTEL).unwrap();
        let mods = hw.memory_modules.as_ref().unwrap();
        assert_eq!(mods.len(), 2, "empty slot left out");
        assert_eq!(
            (mods[0].bank.as_deref(), mods[0].slot.as_str(), mods[0].speed_mts, mods[0].serial.as_deref()),
            (Some("BANK 0"), "ChannelA-DIMM0", Some(2667), None)
        );
        let kinds: Vec<(&str, DiskKind)> = hw.disks.iter().map(|d| (d.name.as_str(), d.kind)).collect();
        assert_eq!(kinds, [("disk0", DiskKind::Ssd), ("disk2", DiskKind::Rotational)]);
        assert_eq!(hw.disks[1].smart.as_ref().and_then(|s| s.passed), Some(false));
        assert_eq!((hw.gpus[0].vendor_id, hw.gpus[0].device_id), (0x1002, 0x7340));
        assert!(hw.batteries.is_empty());
        assert_eq!((hw.virtualization.kind, hw.virtualization.technology.as_deref()), (VirtualizationKind::Vm, Some("vm-other")));
    }

    #[test]
    fn truncated_and_garbage() {
        assert!(parse_hardware(TRUNCATED, "").unwrap_err().to_string().contains("system_profiler"));
        assert!(parse_hardware("[]", "").is_err());
        let empty = parse_hardware("{}", "").unwrap();
        assert_eq!(empty.memory_modules, None);
        for cut in (0..APPLE.len()).step_by(7) {
            let _ = parse_hardware(APPLE.get(..cut).unwrap_or(""), SYSCTL_APPLE);
        }
        assert_eq!(size_bytes("18446744073709551615 TB"), None);
    }
}
