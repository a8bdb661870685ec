//! GPUs from `/sys/bus/pci/devices/*`: display controllers are PCI class
//! 0x03xxxx (VGA 0x0300, XGA 0x0301, 3D 0x0302, other 0x0380). Pure.

use crate::inventory::hardware::Gpu;

/// Builds a GPU from one PCI device's sysfs values, or `None` when the
/// device is not a display controller or its ids are unreadable.
/// `driver_link` is the target of the `driver` symlink, if bound.
pub fn gpu_from_pci(address: &str, class: &str, vendor: &str, device: &str, driver_link: Option<&str>) -> Option<Gpu> {
    let class = u32::from_str_radix(class.trim().trim_start_matches("0x"), 16).ok()?;
    if class >> 16 != 0x03 {
        return None;
    }
    let vendor_id = u16::from_str_radix(vendor.trim().trim_start_matches("0x"), 16).ok()?;
    let device_id = u16::from_str_radix(device.trim().trim_start_matches("0x"), 16).ok()?;
    Some(Gpu {
        pci_address: address.to_string(),
        vendor_id,
        device_id,
        vendor: pci_vendor_name(vendor_id).map(String::from),
        driver: driver_link.and_then(|l| l.rsplit('/').next()).filter(|d| !d.is_empty()).map(String::from),
        model: None,
    })
}

/// Names of the PCI vendors that make nearly every GPU an agent will see.
pub fn pci_vendor_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x10de => "NVIDIA",
        0x1002 => "AMD",
        0x8086 => "Intel",
        0x1af4 => "Red Hat (virtio)",
        0x1234 => "QEMU (Bochs)",
        0x15ad => "VMware",
        0x80ee => "VirtualBox",
        0x1414 => "Microsoft (Hyper-V)",
        0x102b => "Matrox",
        0x1a03 => "ASPEED",
        0x5143 => "Qualcomm",
        0x106b => "Apple",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_class_only() {
        let g = gpu_from_pci("0000:01:00.0", "0x030000\n", "0x10de\n", "0x2684\n", Some("../../../bus/pci/drivers/nvidia")).unwrap();
        assert_eq!((g.vendor_id, g.device_id), (0x10de, 0x2684));
        assert_eq!(g.vendor.as_deref(), Some("NVIDIA"));
        assert_eq!(g.driver.as_deref(), Some("nvidia"));
        assert!(gpu_from_pci("0000:00:1f.3", "0x040300", "0x8086", "0x51c8", None).is_none());
        assert!(gpu_from_pci("x", "0x0302zz", "0x8086", "0x1", None).is_none());
        let unbound = gpu_from_pci("0000:00:02.0", "0x030000", "0x1234", "0x1111", None).unwrap();
        assert_eq!((unbound.vendor.as_deref(), unbound.driver), (Some("QEMU (Bochs)"), None));
    }
}
