//! VM and container detection from evidence the read layer gathers:
//! `/.dockerenv`, `/run/.containerenv`, `container=` in PID 1's
//! environment, PID 1's cgroup path, the `hypervisor` CPU flag,
//! `/sys/hypervisor/type` and DMI vendor/product strings. Containers win
//! over VMs (a container in a VM is reported as the container: that is the
//! boundary the agent lives in). Technology names follow
//! `systemd-detect-virt`. Pure.

use crate::inventory::hardware::{Virtualization, VirtualizationKind};

/// Everything detection looks at; absent evidence is `None`/`false`.
#[derive(Debug, Clone, Default)]
pub struct VirtEvidence {
    pub dockerenv: bool,
    pub containerenv: bool,
    /// Value of `container=` in `/proc/1/environ` (root only).
    pub pid1_container_env: Option<String>,
    /// `/proc/1/cgroup` text.
    pub pid1_cgroup: Option<String>,
    /// `hypervisor` flag present in `/proc/cpuinfo`.
    pub cpu_hypervisor_flag: bool,
    /// `/sys/hypervisor/type` (e.g. "xen").
    pub hypervisor_type: Option<String>,
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub bios_vendor: Option<String>,
}

/// Decides what the host is.
pub fn detect(e: &VirtEvidence) -> Virtualization {
    if let Some(tech) = container_technology(e) {
        return Virtualization { kind: VirtualizationKind::Container, technology: Some(tech) };
    }
    if let Some(tech) = vm_technology(e) {
        return Virtualization { kind: VirtualizationKind::Vm, technology: Some(tech) };
    }
    Virtualization { kind: VirtualizationKind::None, technology: None }
}

fn container_technology(e: &VirtEvidence) -> Option<String> {
    if let Some(c) = e.pid1_container_env.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        // podman sets container=podman, LXC container=lxc, nspawn
        // container=systemd-nspawn, Docker sets nothing by default.
        return Some(if c == "oci" { "container-other".into() } else { c.to_string() });
    }
    if e.containerenv {
        return Some("podman".into());
    }
    if let Some(cg) = e.pid1_cgroup.as_deref() {
        if cg.contains("/kubepods") {
            return Some("kubernetes".into());
        }
        if cg.contains("/docker/") || cg.contains("/docker-") {
            return Some("docker".into());
        }
        if cg.contains("/libpod-") {
            return Some("podman".into());
        }
        if cg.contains("/lxc/") || cg.contains("/lxc.payload") {
            return Some("lxc".into());
        }
    }
    e.dockerenv.then(|| "docker".into())
}

fn vm_technology(e: &VirtEvidence) -> Option<String> {
    let vendor = e.sys_vendor.as_deref().unwrap_or("");
    let product = e.product_name.as_deref().unwrap_or("");
    let bios = e.bios_vendor.as_deref().unwrap_or("");
    let any = |needle: &str| [vendor, product, bios].iter().any(|s| s.contains(needle));
    let tech = if vendor == "Microsoft Corporation" && product == "Virtual Machine" {
        "microsoft"
    } else if vendor.starts_with("Amazon EC2") || bios.starts_with("Amazon EC2") {
        "amazon"
    } else if vendor == "Google" || product == "Google Compute Engine" {
        "google"
    } else if any("VMware") {
        "vmware"
    } else if any("VirtualBox") || vendor == "innotek GmbH" {
        "oracle"
    } else if vendor == "Xen" || any("HVM domU") || e.hypervisor_type.as_deref().map(str::trim) == Some("xen") {
        "xen"
    } else if product.starts_with("KVM") || vendor == "KVM" {
        "kvm"
    } else if vendor == "QEMU" || bios == "SeaBIOS" && product.starts_with("Standard PC") {
        "qemu"
    } else if vendor == "Parallels Software International Inc." || product.starts_with("Parallels") {
        "parallels"
    } else if vendor == "BHYVE" {
        "bhyve"
    } else if vendor == "OpenStack Foundation" || product == "OpenStack Nova" {
        "kvm"
    } else if e.cpu_hypervisor_flag {
        // A hypervisor without DMI tables (Firecracker, cloud-hypervisor).
        "vm-other"
    } else {
        return None;
    };
    Some(tech.into())
}

/// Whether a `/proc/cpuinfo` text lists the `hypervisor` CPU flag.
pub fn cpuinfo_has_hypervisor_flag(cpuinfo: &str) -> bool {
    cpuinfo.lines().filter(|l| l.starts_with("flags")).any(|l| l.split_whitespace().any(|f| f == "hypervisor"))
}

/// The `container=` value in a NUL-separated `/proc/1/environ`.
pub fn container_from_environ(environ: &[u8]) -> Option<String> {
    environ.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(b"container=")).map(|v| String::from_utf8_lossy(v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(vendor: &str, product: &str) -> Virtualization {
        detect(&VirtEvidence {
            sys_vendor: Some(vendor.into()),
            product_name: Some(product.into()),
            cpu_hypervisor_flag: true,
            ..Default::default()
        })
    }

    #[test]
    fn vms_by_dmi() {
        let t = |v: Virtualization| v.technology.unwrap_or_default();
        assert_eq!(t(vm("QEMU", "Standard PC (Q35 + ICH9, 2009)")), "qemu");
        assert_eq!(t(vm("Red Hat", "KVM")), "kvm");
        assert_eq!(t(vm("VMware, Inc.", "VMware Virtual Platform")), "vmware");
        assert_eq!(t(vm("innotek GmbH", "VirtualBox")), "oracle");
        assert_eq!(t(vm("Microsoft Corporation", "Virtual Machine")), "microsoft");
        assert_eq!(t(vm("Xen", "HVM domU")), "xen");
        assert_eq!(t(vm("Amazon EC2", "m5.large")), "amazon");
        assert_eq!(t(vm("Google", "Google Compute Engine")), "google");
        assert_eq!(vm("Dell Inc.", "OptiPlex 7090").technology.as_deref(), Some("vm-other"));
        let metal = detect(&VirtEvidence { sys_vendor: Some("LENOVO".into()), ..Default::default() });
        assert_eq!(metal, Virtualization { kind: VirtualizationKind::None, technology: None });
    }

    #[test]
    fn containers_win_over_vms() {
        let cg = include_str!("../../../tests/fixtures/hardware/proc_1_cgroup_docker.txt");
        let v = detect(&VirtEvidence { pid1_cgroup: Some(cg.into()), cpu_hypervisor_flag: true, ..Default::default() });
        assert_eq!((v.kind, v.technology.as_deref()), (VirtualizationKind::Container, Some("docker")));
        let k8s = "0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope\n";
        assert_eq!(detect(&VirtEvidence { pid1_cgroup: Some(k8s.into()), ..Default::default() }).technology.as_deref(), Some("kubernetes"));
        assert_eq!(detect(&VirtEvidence { containerenv: true, ..Default::default() }).technology.as_deref(), Some("podman"));
        let env = container_from_environ(b"PATH=/bin\0container=lxc\0HOME=/\0");
        assert_eq!(env.as_deref(), Some("lxc"));
        assert_eq!(detect(&VirtEvidence { pid1_container_env: env, ..Default::default() }).technology.as_deref(), Some("lxc"));
        // cgroup v2 namespaced "0::/" says nothing; /.dockerenv does.
        let v = detect(&VirtEvidence { pid1_cgroup: Some("0::/\n".into()), dockerenv: true, ..Default::default() });
        assert_eq!(v.technology.as_deref(), Some("docker"));
    }

    #[test]
    fn cpuinfo_flag() {
        assert!(cpuinfo_has_hypervisor_flag("processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n"));
        assert!(!cpuinfo_has_hypervisor_flag("flags\t\t: fpu vme\n"));
    }
}
