//! Core system sections on Linux: OS, CPU, memory, filesystems, network
//! interfaces. (Host identity is `collect::identity`.)
//!
//! Each source is a `read_*` (the only code touching the filesystem, always
//! under `root`, which is "/" in production and a fixture tree in tests)
//! and a pure `parse_*` tested on fixture files.

pub mod macos;
pub mod windows;

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::inventory::{Cpu, Filesystem, IpAddress, Memory, NetworkInterface, Os, Unreadable};

/// Largest OS text file the parsers accept; /proc files are far smaller.
const MAX_TEXT: u64 = 4 * 1024 * 1024;

/// Reads a small text file under `root`.
pub fn read_text(root: &Path, rel: &str) -> Result<String> {
    use std::io::Read;
    let path = root.join(rel.trim_start_matches('/'));
    let file = std::fs::File::open(&path).map_err(|e| Error::io("reading", &path, e))?;
    let mut text = String::new();
    file.take(MAX_TEXT + 1).read_to_string(&mut text).map_err(|e| Error::io("reading", &path, e))?;
    if text.len() as u64 > MAX_TEXT {
        return Err(Error::parse(path.display().to_string(), None, format!("larger than {MAX_TEXT} bytes")));
    }
    Ok(text)
}

// ---------------------------------------------------------------- OS

pub fn os(root: &Path) -> Result<Os> {
    let release = read_text(root, "etc/os-release").or_else(|_| read_text(root, "usr/lib/os-release"))?;
    let mut os = parse_os_release(&release)?;
    os.family = "linux";
    os.arch = std::env::consts::ARCH.to_string();
    match read_text(root, "proc/sys/kernel/osrelease") {
        Ok(k) => os.kernel = k.trim().to_string(),
        Err(e) => os.unreadable.push(Unreadable { field: "kernel".into(), reason: e.to_string() }),
    }
    match read_text(root, "proc/stat").and_then(|s| parse_boot_time(&s)) {
        Ok(secs) => os.boot_time_unix_ms = Some(secs * 1000),
        Err(e) => os.unreadable.push(Unreadable { field: "boot_time_unix_ms".into(), reason: e.to_string() }),
    }
    Ok(os)
}

/// os-release(5): KEY=value lines, values optionally quoted with shell escapes.
pub fn parse_os_release(text: &str) -> Result<Os> {
    let mut fields = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::parse("os-release", Some(n + 1), format!("expected KEY=value, found {line:?}")));
        };
        fields.insert(key.trim(), unquote(value.trim()));
    }
    let mut get = |k: &str| fields.remove(k).filter(|v| !v.is_empty());
    Ok(Os {
        name: get("NAME").unwrap_or_else(|| "Linux".into()),
        version: get("VERSION"),
        version_id: get("VERSION_ID"),
        id: get("ID"),
        id_like: get("ID_LIKE").map(|v| v.split_whitespace().map(str::to_string).collect()).unwrap_or_default(),
        pretty_name: get("PRETTY_NAME"),
        ..Os::default()
    })
}

fn unquote(v: &str) -> String {
    let inner = if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) {
        &v[1..v.len() - 1]
    } else {
        v
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `btime` line of /proc/stat, seconds since the epoch.
pub fn parse_boot_time(stat: &str) -> Result<i64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .ok_or_else(|| Error::parse("/proc/stat", None, "no btime line"))?
        .trim()
        .parse()
        .map_err(|e| Error::parse("/proc/stat", None, format!("btime: {e}")))
}

// ---------------------------------------------------------------- CPU

pub fn cpu(root: &Path) -> Result<Cpu> {
    let mut cpu = parse_cpuinfo(&read_text(root, "proc/cpuinfo")?)?;
    // The online list counts what the kernel schedules on, which is what
    // `nproc` reports on an unrestricted process.
    if let Ok(online) = read_text(root, "sys/devices/system/cpu/online") {
        cpu.logical_cores = parse_cpu_list(&online)?;
    }
    Ok(cpu)
}

/// /proc/cpuinfo: blocks of `key : value` lines, one block per logical CPU.
pub fn parse_cpuinfo(text: &str) -> Result<Cpu> {
    let mut cpu = Cpu::default();
    let mut logical = 0u32;
    let mut packages = std::collections::BTreeSet::new();
    let mut cores = std::collections::BTreeSet::new();
    let mut package = None::<String>;
    for (n, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            if !line.trim().is_empty() {
                return Err(Error::parse("/proc/cpuinfo", Some(n + 1), format!("expected `key : value`, found {line:?}")));
            }
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => logical += 1,
            "model name" | "Model" if cpu.model.is_empty() => cpu.model = value.to_string(),
            "vendor_id" | "CPU implementer" if cpu.vendor.is_empty() => cpu.vendor = value.to_string(),
            "cpu MHz" if cpu.frequency_mhz.is_none() => cpu.frequency_mhz = value.parse::<f64>().ok().map(|f| f.round() as u64),
            "physical id" => {
                packages.insert(value.to_string());
                package = Some(value.to_string());
            }
            "core id" => {
                cores.insert((package.clone().unwrap_or_default(), value.to_string()));
            }
            _ => {}
        }
    }
    if logical == 0 {
        return Err(Error::parse("/proc/cpuinfo", None, "no processor entries"));
    }
    cpu.logical_cores = logical;
    if packages.is_empty() {
        cpu.unreadable
            .push(Unreadable { field: "sockets".into(), reason: "/proc/cpuinfo has no `physical id` (virtual or ARM CPU)".into() });
        cpu.unreadable.push(Unreadable { field: "physical_cores".into(), reason: "/proc/cpuinfo has no `core id`".into() });
    } else {
        cpu.sockets = u32::try_from(packages.len()).ok();
        cpu.physical_cores = u32::try_from(cores.len()).ok();
    }
    if cpu.model.is_empty() {
        cpu.model = "unknown".into();
        cpu.unreadable.push(Unreadable { field: "model".into(), reason: "/proc/cpuinfo has no model name".into() });
    }
    Ok(cpu)
}

/// A kernel CPU list such as "0-3,8,10-11": how many CPUs it names.
pub fn parse_cpu_list(text: &str) -> Result<u32> {
    let mut count = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || Error::parse("cpu list", None, format!("bad range {part:?}"));
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().map_err(|_| bad())?, b.parse::<u32>().map_err(|_| bad())?),
            None => {
                let a = part.parse::<u32>().map_err(|_| bad())?;
                (a, a)
            }
        };
        if b < a {
            return Err(bad());
        }
        count = count.saturating_add(b - a + 1);
    }
    if count == 0 {
        return Err(Error::parse("cpu list", None, "empty"));
    }
    Ok(count)
}

// ---------------------------------------------------------------- memory

pub fn memory(root: &Path) -> Result<Memory> {
    parse_meminfo(&read_text(root, "proc/meminfo")?)
}

/// /proc/meminfo: `Key:   value kB` lines.
pub fn parse_meminfo(text: &str) -> Result<Memory> {
    let kib = |key: &str| -> Option<Result<u64>> {
        let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
        let value = line.split(':').nth(1).unwrap_or("").trim().trim_end_matches("kB").trim();
        Some(value.parse::<u64>().map(|v| v.saturating_mul(1024)).map_err(|e| Error::parse("/proc/meminfo", None, format!("{key}: {e}"))))
    };
    let total = kib("MemTotal").ok_or_else(|| Error::parse("/proc/meminfo", None, "no MemTotal line"))??;
    let swap = kib("SwapTotal").transpose()?.unwrap_or(0);
    Ok(Memory { total_bytes: total, swap_total_bytes: swap, unreadable: Vec::new() })
}

// ---------------------------------------------------------------- filesystems

/// Filesystem types that describe kernel state, not storage.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "ramfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "autofs",
    "hugetlbfs",
    "mqueue",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "nsfs",
    "rpc_pipefs",
    "efivarfs",
    "selinuxfs",
    "squashfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "nfsd",
    "sockfs",
    "pipefs",
    "overlayfs-meta",
];

/// One line of /proc/mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
}

/// /proc/mounts, without pseudo filesystems; a mount point mounted twice
/// keeps its last (visible) mount. Octal escapes (`\040`) are decoded.
pub fn parse_mounts(text: &str) -> Result<Vec<Mount>> {
    let mut by_point: Vec<Mount> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(device), Some(point), Some(fs_type), Some(options)) = (f.next(), f.next(), f.next(), f.next()) else {
            return Err(Error::parse("/proc/mounts", Some(n + 1), format!("expected at least 4 fields, found {line:?}")));
        };
        if PSEUDO_FS.contains(&fs_type) {
            continue;
        }
        let mount = Mount {
            device: unescape_octal(device),
            mount_point: unescape_octal(point),
            fs_type: fs_type.to_string(),
            read_only: options.split(',').any(|o| o == "ro"),
        };
        by_point.retain(|m| m.mount_point != mount.mount_point);
        by_point.push(mount);
    }
    Ok(by_point)
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = (bytes[i + 1] - b'0') as u32 * 64 + (bytes[i + 2] - b'0') as u32 * 8 + (bytes[i + 3] - b'0') as u32;
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn filesystems(root: &Path) -> Result<Vec<Filesystem>> {
    let mounts = parse_mounts(&read_text(root, "proc/self/mounts").or_else(|_| read_text(root, "proc/mounts"))?)?;
    let mut out = Vec::with_capacity(mounts.len());
    for m in mounts {
        let path = root.join(m.mount_point.trim_start_matches('/'));
        // Bind-mounted files (containers mount /etc/hosts this way) are not filesystems.
        if !path.is_dir() {
            continue;
        }
        let Ok(st) = rustix::fs::statvfs(&path) else { continue };
        let frsize = st.f_frsize;
        out.push(Filesystem {
            total_bytes: st.f_blocks.saturating_mul(frsize),
            free_bytes: st.f_bfree.saturating_mul(frsize),
            available_bytes: st.f_bavail.saturating_mul(frsize),
            inodes_total: st.f_files,
            inodes_free: st.f_ffree,
            mount_point: m.mount_point,
            device: m.device,
            fs_type: m.fs_type,
            read_only: m.read_only,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- network

pub fn network(root: &Path) -> Result<Vec<NetworkInterface>> {
    let net_dir = root.join("sys/class/net");
    let entries = std::fs::read_dir(&net_dir).map_err(|e| Error::io("listing", &net_dir, e))?;
    let mut by_name: BTreeMap<String, NetworkInterface> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = |f: &str| format!("sys/class/net/{name}/{f}");
        let mac = read_text(root, &rel("address")).ok().and_then(|m| parse_mac(&m));
        let oper_state = read_text(root, &rel("operstate")).map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into());
        // speed reads fail with EINVAL on links that are down: that is "no speed", not an error.
        let speed_mbps = read_text(root, &rel("speed")).ok().and_then(|s| s.trim().parse::<i64>().ok()).and_then(|s| u32::try_from(s).ok());
        let mtu = read_text(root, &rel("mtu")).ok().and_then(|s| s.trim().parse().ok());
        by_name.insert(name.clone(), NetworkInterface { name, mac, addresses: Vec::new(), oper_state, speed_mbps, mtu });
    }
    // Addresses come from getifaddrs via sysinfo (netlink would need more code for the same answer).
    if root == Path::new("/") {
        let Ok(networks) = sysinfo::Networks::new_with_refreshed_list() else { return Ok(by_name.into_values().collect()) };
        for (name, data) in &networks {
            if let Some(iface) = by_name.get_mut(name.to_string_lossy().as_ref()) {
                iface.addresses =
                    data.ip_networks().iter().map(|n| IpAddress { address: n.addr.to_string(), prefix_len: u32::from(n.prefix) }).collect();
                iface.addresses.sort_by(|a, b| a.address.cmp(&b.address));
            }
        }
    }
    Ok(by_name.into_values().collect())
}

/// "aa:bb:cc:dd:ee:ff" lower-case; None for the all-zero address of
/// interfaces without hardware (lo, tunnels).
pub fn parse_mac(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let ok = t.len() == 17 && t.split(':').all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    (ok && t != "00:00:00:00:00:00").then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_fields_and_quoting() {
        let os = parse_os_release(include_str!("../../tests/fixtures/system/os-release-ubuntu")).expect("parses");
        assert_eq!(os.name, "Ubuntu");
        assert_eq!(os.version_id.as_deref(), Some("22.04"));
        assert_eq!(os.pretty_name.as_deref(), Some("Ubuntu 22.04.4 LTS"));
        assert_eq!(os.id_like, vec!["debian".to_string()]);
        assert_eq!(os.version.as_deref(), Some("22.04.4 LTS (Jammy \"Jellyfish\")"));
        let err = parse_os_release("NAME=x\nbroken line\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn cpuinfo_counts_sockets_cores_threads() {
        let cpu = parse_cpuinfo(include_str!("../../tests/fixtures/system/cpuinfo-2s4c8t")).expect("parses");
        assert_eq!(cpu.logical_cores, 8);
        assert_eq!(cpu.sockets, Some(2));
        assert_eq!(cpu.physical_cores, Some(4));
        assert_eq!(cpu.vendor, "GenuineIntel");
        assert!(cpu.model.contains("Xeon"));
        assert_eq!(cpu.frequency_mhz, Some(2200));
        assert!(parse_cpuinfo("").is_err());
        let full = include_str!("../../tests/fixtures/system/cpuinfo-2s4c8t");
        let at_line = &full[..full.find("cpu family").expect("fixture has cpu family")];
        assert!(parse_cpuinfo(at_line).is_ok_and(|c| c.logical_cores == 1), "a file cut at a line end yields what it holds");
        let mid_line = &full[..40];
        assert!(parse_cpuinfo(mid_line).unwrap_err().to_string().contains("line 3"), "a cut line is named");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n").expect("ok"), 7);
        assert_eq!(parse_cpu_list("0").expect("ok"), 1);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn meminfo_total_and_swap() {
        let m = parse_meminfo("MemTotal:       16318480 kB\nMemFree: 1 kB\nSwapTotal:  2097148 kB\n").expect("parses");
        assert_eq!(m.total_bytes, 16318480 * 1024);
        assert_eq!(m.swap_total_bytes, 2097148 * 1024);
        assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: lots kB\n").is_err());
    }

    #[test]
    fn mounts_skip_pseudo_and_decode_escapes() {
        let m = parse_mounts(include_str!("../../tests/fixtures/system/proc-mounts")).expect("parses");
        let points: Vec<&str> = m.iter().map(|m| m.mount_point.as_str()).collect();
        assert_eq!(points, vec!["/", "/boot/efi", "/home", "/media/usb stick"]);
        assert!(m.iter().any(|m| m.mount_point == "/boot/efi" && m.read_only));
        assert!(parse_mounts("only two\n").unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("52:54:00:AB:CD:EF\n").as_deref(), Some("52:54:00:ab:cd:ef"));
        assert_eq!(parse_mac("00:00:00:00:00:00"), None);
    }

    #[test]
    fn boot_time() {
        assert_eq!(parse_boot_time("cpu 1 2 3\nbtime 1700000000\n").expect("ok"), 1_700_000_000);
        assert!(parse_boot_time("cpu 1\n").is_err());
    }
}
