//! Hardware on Windows, from one PowerShell script ([`SCRIPT`]):
//! `Win32_ComputerSystem` (vendor, model, HypervisorPresent), `Win32_BIOS`,
//! `Win32_SystemEnclosure.ChassisTypes`, `Win32_PhysicalMemory`,
//! `Win32_DiskDrive` joined with `MSFT_PhysicalDisk` (MediaType, BusType)
//! by disk number, `Win32_VideoController`, and `Win32_Battery` with the
//! `root\wmi` battery classes (full-charge and design capacity, cycles).
//!
//! - Disk health is the drive's own SMART verdict as Windows surfaces it
//!   (`Win32_DiskDrive.Status` "OK" / "Pred Fail"); temperature and hours
//!   need vendor tools and are absent.
//! - Virtualization comes from the vendor/model strings, like the Linux DMI
//!   check. `HypervisorPresent` alone is not a VM: Hyper-V and
//!   virtualization-based security set it on physical hosts too.
//! - Placeholder strings ("To Be Filled By O.E.M.") are dropped as on Linux.

use serde_json::Value;

use crate::collect::hardware::dmi::{chassis_type_name, parse_dmi_value};
use crate::collect::hardware::gpu::pci_vendor_name;
use crate::collect::hardware::virt::{VirtEvidence, detect};
use crate::collect::json::{items, strings, text, uint};
use crate::collect::powershell::{self, date_unix_ms};
use crate::error::{Error, Result};
use crate::inventory::hardware::{Battery, Disk, DiskKind, Gpu, Hardware, MemoryModule, SmartHealth, SystemRecord};
use crate::inventory::unreadable::Unreadable;

const WHAT: &str = "hardware script output";

pub const SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
function Wmi($class) { @(Get-CimInstance -Namespace root\wmi -ClassName $class) }
[pscustomobject]@{
 System = Get-CimInstance Win32_ComputerSystem | Select-Object Manufacturer,Model,HypervisorPresent
 Bios = Get-CimInstance Win32_BIOS | Select-Object Manufacturer,SMBIOSBIOSVersion,ReleaseDate,SerialNumber
 Enclosure = Get-CimInstance Win32_SystemEnclosure | Select-Object ChassisTypes
 Memory = @(Get-CimInstance Win32_PhysicalMemory | Select-Object BankLabel,DeviceLocator,Capacity,ConfiguredClockSpeed,Speed,SMBIOSMemoryType,Manufacturer,PartNumber,SerialNumber)
 Disks = @(Get-CimInstance Win32_DiskDrive | Select-Object Index,Model,SerialNumber,Size,MediaType,InterfaceType,Status)
 PhysicalDisks = @(Get-CimInstance -Namespace root\Microsoft\Windows\Storage -ClassName MSFT_PhysicalDisk | Select-Object DeviceId,MediaType,BusType)
 Gpus = @(Get-CimInstance Win32_VideoController | Select-Object Name,AdapterCompatibility,PNPDeviceID,InstalledDisplayDrivers)
 Batteries = @(Get-CimInstance Win32_Battery | Select-Object DeviceID,Name,EstimatedChargeRemaining,BatteryStatus)
 BatteryFull = Wmi BatteryFullChargedCapacity | Select-Object FullChargedCapacity
 BatteryStatic = Wmi BatteryStaticData | Select-Object DesignedCapacity,ManufactureName
 BatteryCycles = Wmi BatteryCycleCount | Select-Object CycleCount
} | ConvertTo-Json -Depth 4 -Compress"#;

#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> Result<Hardware> {
    parse_hardware(&powershell::run(SCRIPT)?)
}

/// A WMI string with vendor placeholders dropped.
fn real(v: &Value, key: &str) -> Option<String> {
    text(v, key).and_then(|t| parse_dmi_value(&t, key).ok().flatten())
}

/// Parses the output of [`SCRIPT`].
pub fn parse_hardware(output: &str) -> Result<Hardware> {
    let json = powershell::parse_json(WHAT, output)?;
    let root = items(Some(&json)).into_iter().next().ok_or_else(|| Error::parse(WHAT, None, "no object in the output"))?;
    let mut unreadable = Vec::new();
    let null = Value::Null;
    let first = |key: &str| items(root.get(key)).into_iter().next().unwrap_or(&null);
    let (system, bios, enclosure) = (first("System"), first("Bios"), first("Enclosure"));
    let record = SystemRecord {
        vendor: real(system, "Manufacturer"),
        model: real(system, "Model"),
        serial: real(bios, "SerialNumber"),
        chassis_type: enclosure
            .get("ChassisTypes")
            .and_then(|c| match c {
                Value::Array(list) => list.first().and_then(Value::as_u64),
                other => other.as_u64(),
            })
            .and_then(|n| u8::try_from(n).ok())
            .and_then(chassis_type_name)
            .map(str::to_owned),
        bios_vendor: real(bios, "Manufacturer"),
        bios_version: real(bios, "SMBIOSBIOSVersion"),
        bios_date: date_unix_ms(bios, "ReleaseDate").and_then(mm_dd_yyyy),
    };
    for (field, value) in [
        ("system.vendor", &record.vendor),
        ("system.model", &record.model),
        ("system.serial", &record.serial),
        ("system.chassis_type", &record.chassis_type),
        ("system.bios_date", &record.bios_date),
    ] {
        if value.is_none() {
            unreadable.push(Unreadable::new(field, "not set in the SMBIOS tables (WMI)"));
        }
    }
    let memory_modules = match root.get("Memory") {
        Some(m) if !m.is_null() => Some(items(Some(m)).into_iter().filter_map(memory_module).collect()),
        _ => {
            unreadable.push(Unreadable::new("memory_modules", "Win32_PhysicalMemory unreadable"));
            None
        }
    };
    let physical = items(root.get("PhysicalDisks"));
    let mut disks: Vec<Disk> = items(root.get("Disks")).into_iter().filter_map(|d| disk(d, &physical)).collect();
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    let gpus = items(root.get("Gpus")).into_iter().filter_map(gpu).collect();
    let batteries = batteries(root, &mut unreadable);
    let virtualization = detect(&VirtEvidence {
        sys_vendor: record.vendor.clone(),
        product_name: record.model.clone(),
        bios_vendor: record.bios_vendor.clone(),
        ..VirtEvidence::default()
    });
    Ok(Hardware { system: record, memory_modules, disks, gpus, batteries, virtualization, unreadable })
}

/// Unix ms to the firmware's usual `MM/DD/YYYY`.
fn mm_dd_yyyy(ms: i64) -> Option<String> {
    let days = ms.div_euclid(86_400_000);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (1900..=9999).contains(&year).then(|| format!("{month:02}/{day:02}/{year}"))
}

/// SMBIOS memory type numbers (DSP0134 table 76) Windows reports.
fn memory_type_name(n: u64) -> Option<&'static str> {
    Some(match n {
        18 => "DDR",
        19 => "DDR2",
        24 => "DDR3",
        26 => "DDR4",
        27 => "LPDDR",
        28 => "LPDDR2",
        29 => "LPDDR3",
        30 => "LPDDR4",
        34 => "DDR5",
        35 => "LPDDR5",
        _ => return None,
    })
}

fn memory_module(m: &Value) -> Option<MemoryModule> {
    Some(MemoryModule {
        slot: text(m, "DeviceLocator")?,
        bank: real(m, "BankLabel"),
        size_bytes: uint(m, "Capacity").filter(|c| *c > 0)?,
        speed_mts: uint(m, "ConfiguredClockSpeed")
            .filter(|s| *s > 0)
            .or_else(|| uint(m, "Speed").filter(|s| *s > 0))
            .and_then(|s| u32::try_from(s).ok()),
        memory_type: uint(m, "SMBIOSMemoryType").and_then(memory_type_name).map(str::to_owned),
        manufacturer: real(m, "Manufacturer"),
        part_number: real(m, "PartNumber"),
        serial: real(m, "SerialNumber"),
    })
}

fn disk(d: &Value, physical: &[&Value]) -> Option<Disk> {
    let index = uint(d, "Index")?;
    let phys = physical.iter().find(|p| uint(p, "DeviceId") == Some(index));
    let bus = phys.and_then(|p| uint(p, "BusType"));
    let kind = match (bus, phys.and_then(|p| uint(p, "MediaType"))) {
        (Some(17), _) => DiskKind::Nvme,
        (_, Some(4 | 5)) => DiskKind::Ssd,
        (_, Some(3)) => DiskKind::Rotational,
        _ => DiskKind::Unknown,
    };
    let removable = bus == Some(7)
        || text(d, "InterfaceType").is_some_and(|i| i == "USB")
        || text(d, "MediaType").is_some_and(|m| m.starts_with("Removable") || m.starts_with("External"));
    let smart = match text(d, "Status").as_deref() {
        Some("OK") => Some(true),
        Some("Pred Fail") => Some(false),
        _ => None,
    }
    .map(|passed| SmartHealth { passed: Some(passed), temperature_celsius: None, power_on_hours: None });
    Some(Disk {
        name: format!("PhysicalDrive{index}"),
        model: real(d, "Model"),
        serial: real(d, "SerialNumber"),
        size_bytes: uint(d, "Size").unwrap_or(0),
        kind,
        removable,
        smart,
    })
}

/// `PCI\VEN_10DE&DEV_2520&SUBSYS_...` → (0x10de, 0x2520).
fn pci_ids(pnp: &str) -> Option<(u16, u16)> {
    let upper = pnp.to_ascii_uppercase();
    let hex = |tag: &str| upper.split_once(tag).and_then(|(_, r)| r.get(..4)).and_then(|h| u16::from_str_radix(h, 16).ok());
    Some((hex("VEN_")?, hex("DEV_")?))
}

fn gpu(g: &Value) -> Option<Gpu> {
    let name = text(g, "Name");
    let ids = text(g, "PNPDeviceID").and_then(|p| pci_ids(&p));
    if name.is_none() && ids.is_none() {
        return None;
    }
    let (vendor_id, device_id) = ids.unwrap_or((0, 0));
    let driver = strings(g, "InstalledDisplayDrivers")
        .first()
        .or(text(g, "InstalledDisplayDrivers").as_ref())
        .and_then(|d| d.split(',').next())
        .and_then(|d| d.rsplit('\\').next())
        .map(|d| d.trim_end_matches(".dll").to_owned())
        .filter(|d| !d.is_empty());
    Some(Gpu {
        pci_address: String::new(),
        vendor_id,
        device_id,
        vendor: pci_vendor_name(vendor_id).map(str::to_owned).or_else(|| text(g, "AdapterCompatibility")),
        driver,
        model: name,
    })
}

/// Win32_Battery joined by position with the root\wmi battery classes
/// (one instance per battery, in the same ACPI order).
fn batteries(root: &Value, unreadable: &mut Vec<Unreadable>) -> Vec<Battery> {
    let full = items(root.get("BatteryFull"));
    let design = items(root.get("BatteryStatic"));
    let cycles = items(root.get("BatteryCycles"));
    items(root.get("Batteries"))
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let name = text(b, "DeviceID").or_else(|| text(b, "Name")).unwrap_or_else(|| format!("battery{i}"));
            let full_mwh = full.get(i).and_then(|f| uint(f, "FullChargedCapacity"));
            let design_mwh = design.get(i).and_then(|d| uint(d, "DesignedCapacity")).filter(|d| *d > 0);
            let health_percent = match (full_mwh, design_mwh) {
                (Some(f), Some(d)) => Some((f as f64 * 1000.0 / d as f64).round() / 10.0),
                _ => {
                    unreadable.push(Unreadable::new(
                        format!("batteries[{name}].health_percent"),
                        "root\\wmi BatteryFullChargedCapacity/BatteryStaticData unreadable (needs admin)",
                    ));
                    None
                }
            };
            let status = match uint(b, "BatteryStatus") {
                Some(1 | 4 | 5) => Some("Discharging"),
                Some(2 | 11) => Some("Not charging"),
                Some(3) => Some("Full"),
                Some(6..=9) => Some("Charging"),
                _ => None,
            };
            Battery {
                manufacturer: design.get(i).and_then(|d| real(d, "ManufactureName")),
                model: text(b, "Name"),
                capacity_percent: uint(b, "EstimatedChargeRemaining").and_then(|c| u8::try_from(c.min(100)).ok()),
                health_percent,
                cycle_count: cycles.get(i).and_then(|c| uint(c, "CycleCount")).and_then(|c| u32::try_from(c).ok()),
                status: status.map(str::to_owned),
                name,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::hardware::VirtualizationKind;

    const LAPTOP: &str = include_str!("../../../tests/fixtures/hardware/windows/hardware_laptop.json");
    const VM: &str = include_str!("../../../tests/fixtures/hardware/windows/hardware_hyperv_vm.json");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/hardware/windows/hardware_truncated.json");

    #[test]
    fn laptop_record_memory_disks_gpus_battery() {
        let hw = parse_hardware(LAPTOP).unwrap();
        let s = &hw.system;
        assert_eq!((s.vendor.as_deref(), s.model.as_deref(), s.serial.as_deref()), (Some("LENOVO"), Some("21HMCTO1WW"), Some("PF4ABCDE")));
        assert_eq!(
            (s.chassis_type.as_deref(), s.bios_version.as_deref(), s.bios_date.as_deref()),
            (Some("Notebook"), Some("N3XET53W (1.28 )"), Some("11/14/2023"))
        );
        let mods = hw.memory_modules.as_ref().unwrap();
        assert_eq!(mods.len(), 2);
        assert_eq!(
            (mods[0].slot.as_str(), mods[0].size_bytes, mods[0].speed_mts, mods[0].memory_type.as_deref()),
            ("DIMM 0", 17_179_869_184, Some(5200), Some("DDR5"))
        );
        assert_eq!(mods[1].serial, None, "placeholder serial dropped");
        let disks: Vec<(&str, DiskKind, bool)> = hw.disks.iter().map(|d| (d.name.as_str(), d.kind, d.removable)).collect();
        assert_eq!(disks, [("PhysicalDrive0", DiskKind::Nvme, false), ("PhysicalDrive1", DiskKind::Rotational, true)]);
        assert_eq!(hw.disks[0].smart.as_ref().and_then(|s| s.passed), Some(true));
        assert_eq!(hw.disks[1].smart.as_ref().and_then(|s| s.passed), Some(false), "Pred Fail");
        assert_eq!(hw.gpus.len(), 2);
        assert_eq!((hw.gpus[1].vendor_id, hw.gpus[1].device_id, hw.gpus[1].vendor.as_deref()), (0x10de, 0x28a0, Some("NVIDIA")));
        assert_eq!(hw.gpus[1].model.as_deref(), Some("NVIDIA GeForce RTX 4060 Laptop GPU"));
        assert_eq!(hw.gpus[0].driver.as_deref(), Some("igdumdim64"));
        let b = &hw.batteries[0];
        assert_eq!(
            (b.capacity_percent, b.health_percent, b.cycle_count, b.status.as_deref()),
            (Some(87), Some(91.3), Some(142), Some("Charging"))
        );
        assert_eq!(b.manufacturer.as_deref(), Some("SMP"));
        assert_eq!(hw.virtualization.kind, VirtualizationKind::None, "HypervisorPresent alone is not a VM");
        assert!(hw.unreadable.is_empty(), "{:?}", hw.unreadable);
    }

    #[test]
    fn hyperv_vm_single_objects_and_missing_pieces() {
        let hw = parse_hardware(VM).unwrap();
        assert_eq!(hw.virtualization.kind, VirtualizationKind::Vm);
        assert_eq!(hw.virtualization.technology.as_deref(), Some("microsoft"));
        assert_eq!(hw.disks.len(), 1, "a single disk object is not wrapped in an array");
        assert_eq!(hw.disks[0].kind, DiskKind::Unknown);
        assert_eq!(hw.memory_modules, None);
        assert!(hw.batteries.is_empty());
        let fields: Vec<&str> = hw.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["system.serial", "memory_modules"]);
    }

    #[test]
    fn truncated_output_is_an_error_and_nothing_panics() {
        assert!(parse_hardware(TRUNCATED).unwrap_err().to_string().contains("hardware script output"));
        assert!(parse_hardware("").is_err());
        for cut in 0..LAPTOP.len() {
            let _ = parse_hardware(LAPTOP.get(..cut).unwrap_or(""));
        }
    }

    #[test]
    fn dates_and_ids() {
        assert_eq!(mm_dd_yyyy(1_700_000_000_000).as_deref(), Some("11/14/2023"));
        assert_eq!(mm_dd_yyyy(951_782_400_000).as_deref(), Some("02/29/2000"));
        assert_eq!(mm_dd_yyyy(i64::MIN), None);
        assert_eq!(pci_ids(r"PCI\VEN_8086&DEV_A7A0&SUBSYS_22E617AA&REV_04\3&11583659&0&10"), Some((0x8086, 0xa7a0)));
        assert_eq!(pci_ids(r"ROOT\BasicDisplay\0000"), None);
        assert_eq!(pci_ids("VEN_"), None);
    }
}
