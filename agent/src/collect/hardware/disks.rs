//! Disks from `/sys/block/*` and SMART health from `smartctl -j`.
//!
//! Which block devices are disks: everything except logical devices
//! (loop, ram, zram, device-mapper `dm-`, md RAID, nbd) and optical/floppy
//! drives (sr, fd), whose "size" is the inserted medium. Device-mapper and
//! md volumes are built on the disks listed here; their encryption is in
//! `os_state`. Serial: `device/serial` (NVMe, virtio exposes `serial` on
//! the block device itself), else SCSI VPD page 0x80 (`device/vpd_pg80`,
//! which libata also provides for SATA). Parsers are pure and never panic.

use crate::error::{Error, Result};
use crate::inventory::hardware::{Disk, DiskKind, SmartHealth};
use crate::inventory::unreadable::Unreadable;

pub const MAX_SMARTCTL_BYTES: usize = 4 << 20;

/// Kernel name prefixes of block devices that are not disks.
const NOT_DISKS: [&str; 9] = ["loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd", "zd"];

/// Whether the block device `name` is reported as a disk.
pub fn is_disk(name: &str) -> bool {
    !NOT_DISKS.iter().any(|p| name.starts_with(p))
}

/// The raw sysfs values of one block device, as the read layer found them.
/// `None` means the file was not there or not readable.
#[derive(Debug, Clone, Default)]
pub struct BlockSysfs {
    pub size_sectors: Option<String>,
    pub rotational: Option<String>,
    pub removable: Option<String>,
    pub model: Option<String>,
    /// `device/serial` or the block device's own `serial`.
    pub serial: Option<String>,
    pub vpd_pg80: Option<Vec<u8>>,
}

/// Builds a disk from its sysfs values. `size` is in 512-byte sectors
/// whatever the logical block size (block/genhd.c). Fields that cannot be
/// read are absent and explained in the returned list.
pub fn disk_from_sysfs(name: &str, raw: &BlockSysfs) -> Result<(Disk, Vec<Unreadable>)> {
    let what = format!("/sys/block/{name}/size");
    let sectors: u64 = raw
        .size_sectors
        .as_deref()
        .ok_or_else(|| Error::parse(&what, None, "missing"))?
        .trim()
        .parse()
        .map_err(|_| Error::parse(&what, Some(1), "not a sector count"))?;
    let size_bytes = sectors.checked_mul(512).ok_or_else(|| Error::parse(&what, Some(1), "size overflows 64 bits"))?;
    let mut unreadable = Vec::new();
    let kind = if name.starts_with("nvme") {
        DiskKind::Nvme
    } else if raw.rotational.as_deref().map(str::trim) == Some("0") {
        DiskKind::Ssd
    } else {
        DiskKind::Rotational
    };
    let model = raw.model.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(String::from);
    if model.is_none() {
        unreadable.push(Unreadable::new(format!("disks[{name}].model"), "the device reports no model"));
    }
    let serial = raw
        .serial
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| raw.vpd_pg80.as_deref().and_then(parse_vpd_pg80));
    if serial.is_none() {
        unreadable.push(Unreadable::new(
            format!("disks[{name}].serial"),
            "no device/serial and no VPD page 0x80 (the device or its driver does not report one)",
        ));
    }
    let disk = Disk {
        name: name.to_string(),
        model,
        serial,
        size_bytes,
        kind,
        removable: raw.removable.as_deref().map(str::trim) == Some("1"),
        smart: None,
    };
    Ok((disk, unreadable))
}

/// SCSI VPD page 0x80 (Unit Serial Number): byte 1 is the page code,
/// bytes 2..4 the big-endian length, then the ASCII serial, space padded.
pub fn parse_vpd_pg80(b: &[u8]) -> Option<String> {
    if b.get(1) != Some(&0x80) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]));
    let serial = b.get(4..4 + len).or_else(|| b.get(4..))?;
    let s = String::from_utf8_lossy(serial).trim_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
    (!s.is_empty()).then_some(s)
}

/// Parses `smartctl -j -H -i /dev/X` JSON. smartctl's exit status is a
/// bit mask that is non-zero for many non-fatal reasons, so the JSON is the
/// source of truth; a JSON without `smart_status` (e.g. a USB bridge that
/// hides SMART) yields `passed: None` rather than an error.
pub fn parse_smartctl_json(text: &str, device: &str) -> Result<SmartHealth> {
    let what = format!("smartctl -j -H -i {device} output");
    if text.len() > MAX_SMARTCTL_BYTES {
        return Err(Error::parse(what, None, format!("larger than {MAX_SMARTCTL_BYTES} bytes")));
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::parse(&what, Some(e.line()), e.to_string()))?;
    if let Some(msgs) = v.pointer("/smartctl/messages").and_then(|m| m.as_array())
        && v.get("smart_status").is_none()
        && let Some(err) = msgs.iter().find(|m| m.get("severity").and_then(|s| s.as_str()) == Some("error"))
    {
        let text = err.get("string").and_then(|s| s.as_str()).unwrap_or("unknown error");
        return Err(Error::Command { command: format!("smartctl -j -H -i {device}"), reason: text.to_string() });
    }
    Ok(SmartHealth {
        passed: v.pointer("/smart_status/passed").and_then(|p| p.as_bool()),
        temperature_celsius: v.pointer("/temperature/current").and_then(|t| t.as_i64()),
        power_on_hours: v.pointer("/power_on_time/hours").and_then(|h| h.as_u64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_devices_are_not_disks() {
        for n in ["loop0", "zram0", "dm-0", "md127", "sr0", "ram1", "nbd0"] {
            assert!(!is_disk(n), "{n}");
        }
        for n in ["sda", "nvme0n1", "vda", "mmcblk0", "xvda"] {
            assert!(is_disk(n), "{n}");
        }
    }

    #[test]
    fn vpd_page_80() {
        let b = include_bytes!("../../../tests/fixtures/hardware/vpd_pg80_sata.bin");
        assert_eq!(parse_vpd_pg80(b).as_deref(), Some("S4EWNX0R123456"));
        assert_eq!(parse_vpd_pg80(&[0, 0x83, 0, 4, b'a', b'b', b'c', b'd']), None);
        assert_eq!(parse_vpd_pg80(&[0, 0x80, 0, 200, b'a', b'b']).as_deref(), Some("ab"));
        assert_eq!(parse_vpd_pg80(&[0, 0x80]), None);
    }

    #[test]
    fn sysfs_to_disk() {
        let raw = BlockSysfs {
            size_sectors: Some("1000215216\n".into()),
            rotational: Some("0\n".into()),
            removable: Some("0\n".into()),
            model: Some("Samsung SSD 980 PRO 1TB                 \n".into()),
            serial: Some("S5GXNF0R123456A     \n".into()),
            vpd_pg80: None,
        };
        let (d, u) = disk_from_sysfs("nvme0n1", &raw).unwrap();
        assert_eq!(d.size_bytes, 512_110_190_592);
        assert_eq!(d.kind, DiskKind::Nvme);
        assert_eq!(d.model.as_deref(), Some("Samsung SSD 980 PRO 1TB"));
        assert_eq!(d.serial.as_deref(), Some("S5GXNF0R123456A"));
        assert!(u.is_empty());
        let (d, u) = disk_from_sysfs(
            "sdb",
            &BlockSysfs {
                size_sectors: Some("62521344".into()),
                rotational: Some("1".into()),
                removable: Some("1".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((d.kind, d.removable), (DiskKind::Rotational, true));
        assert_eq!(u.len(), 2);
        let e = disk_from_sysfs("sdc", &BlockSysfs { size_sectors: Some("big".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("/sys/block/sdc/size"), "{e}");
        assert!(disk_from_sysfs("sdc", &BlockSysfs { size_sectors: Some(u64::MAX.to_string()), ..Default::default() }).is_err());
    }

    #[test]
    fn smartctl_nvme_and_sata() {
        let h = parse_smartctl_json(include_str!("../../../tests/fixtures/hardware/smartctl_nvme.json"), "/dev/nvme0n1").unwrap();
        assert_eq!(h, SmartHealth { passed: Some(true), temperature_celsius: Some(38), power_on_hours: Some(4123) });
        let h = parse_smartctl_json(include_str!("../../../tests/fixtures/hardware/smartctl_sata_failing.json"), "/dev/sda").unwrap();
        assert_eq!(h.passed, Some(false));
        assert_eq!(h.power_on_hours, Some(41877));
    }

    #[test]
    fn smartctl_errors() {
        let e = parse_smartctl_json(include_str!("../../../tests/fixtures/hardware/smartctl_permission.json"), "/dev/sda")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Permission denied"), "{e}");
        let e = parse_smartctl_json("{\"smartctl\": {", "/dev/sda").unwrap_err().to_string();
        assert!(e.contains("smartctl -j -H -i /dev/sda output"), "{e}");
    }
}
