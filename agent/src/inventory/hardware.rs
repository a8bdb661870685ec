//! Hardware beyond CPU and memory totals: the DMI system record, memory
//! modules, disks with SMART health, GPUs, batteries, and whether the host
//! is a VM or a container. Pure domain types; `collect::hardware` fills them.
//!
//! Invariant: firmware placeholder strings ("To Be Filled By O.E.M.",
//! "Default string", "Not Specified"...) never reach these types; the field
//! is absent and `unreadable` says why.

use crate::inventory::unreadable::Unreadable;

/// The hardware section.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hardware {
    pub system: SystemRecord,
    /// DIMMs installed (empty slots are left out); absent with a reason
    /// when dmidecode is missing or not allowed (needs root).
    pub memory_modules: Option<Vec<MemoryModule>>,
    /// Physical (or hypervisor-provided) disks; logical devices (loop,
    /// zram, device-mapper, md RAID) are not disks: their encryption and
    /// use are reported by `os_state` and the filesystem section.
    pub disks: Vec<Disk>,
    pub gpus: Vec<Gpu>,
    pub batteries: Vec<Battery>,
    pub virtualization: Virtualization,
    pub unreadable: Vec<Unreadable>,
}

/// SMBIOS system, chassis and BIOS facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SystemRecord {
    pub vendor: Option<String>,
    /// DMI `product_name`, e.g. "ThinkPad X1 Carbon Gen 11".
    pub model: Option<String>,
    pub serial: Option<String>,
    /// SMBIOS chassis type name, e.g. "Notebook", "Rack Mount Chassis".
    pub chassis_type: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
    /// As the firmware writes it, usually `MM/DD/YYYY`.
    pub bios_date: Option<String>,
}

/// One installed memory module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemoryModule {
    /// Slot (`Locator`), e.g. "DIMM A1" or "Controller0-ChannelA".
    pub slot: String,
    pub bank: Option<String>,
    pub size_bytes: u64,
    /// Configured or rated speed in MT/s.
    pub speed_mts: Option<u32>,
    /// "DDR4", "LPDDR5"...
    pub memory_type: Option<String>,
    pub manufacturer: Option<String>,
    pub part_number: Option<String>,
    pub serial: Option<String>,
}

/// Storage medium kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    /// Spinning disk (`queue/rotational` = 1).
    Rotational,
    /// Non-rotational SATA/SAS/virtio/MMC.
    Ssd,
    Nvme,
    /// The OS does not say (Windows MediaType "Unspecified", common in VMs).
    Unknown,
}

/// One disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disk {
    /// Kernel name, e.g. `nvme0n1`, `sda`.
    pub name: String,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub size_bytes: u64,
    pub kind: DiskKind,
    pub removable: bool,
    /// Absent with a reason when smartctl is missing or cannot read it.
    pub smart: Option<SmartHealth>,
}

/// What `smartctl -H -i` says about a disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SmartHealth {
    /// The drive's overall self-assessment: false means failure predicted.
    pub passed: Option<bool>,
    pub temperature_celsius: Option<i64>,
    pub power_on_hours: Option<u64>,
}

/// One display controller (PCI class 0x03).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Gpu {
    /// PCI address, e.g. `0000:01:00.0`; empty where the OS does not
    /// expose it (Windows, macOS).
    pub pci_address: String,
    pub vendor_id: u16,
    pub device_id: u16,
    /// Vendor name for well-known ids.
    pub vendor: Option<String>,
    /// Bound kernel driver, e.g. `nvidia`, `amdgpu`, `i915`.
    pub driver: Option<String>,
    /// Model name where the OS gives one (Windows, macOS), e.g.
    /// "NVIDIA GeForce RTX 3060".
    pub model: Option<String>,
}

/// One battery.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Battery {
    /// power_supply name, e.g. `BAT0`.
    pub name: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    /// Current charge, percent.
    pub capacity_percent: Option<u8>,
    /// Full capacity now vs. as designed, percent (wear): 100 is new.
    pub health_percent: Option<f64>,
    pub cycle_count: Option<u32>,
    /// "Charging", "Discharging", "Full", "Not charging".
    pub status: Option<String>,
}

/// Is this host a VM, a container, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtualizationKind {
    Vm,
    Container,
    None,
}

/// Virtualization and the technology, the way `systemd-detect-virt` names
/// it where it can (`kvm`, `qemu`, `vmware`, `oracle`, `microsoft`, `xen`,
/// `amazon`, `google`, `docker`, `podman`, `lxc`...). A container inside a
/// VM reports the container: that is the boundary the agent runs in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Virtualization {
    pub kind: VirtualizationKind,
    pub technology: Option<String>,
}
