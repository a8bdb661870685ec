//! Core system sections on macOS, from the text of the OS's own tools:
//!
//! - OS: `sw_vers` (ProductName, ProductVersion, BuildVersion),
//!   `sysctl -n kern.boottime`, `uname -r`, `uname -m`, and the time zone
//!   from the `/etc/localtime` link (`/var/db/timezone/zoneinfo/Europe/Paris`).
//! - CPU and memory: one `sysctl` call ([`SYSCTL_KEYS`]); Apple silicon
//!   has no `hw.cpufrequency`, so the frequency is absent with that reason,
//!   and no `machdep.cpu.vendor` ("Apple" is then read from the brand).
//!   Swap is `vm.swapusage` total (dynamic swap files: it changes).
//! - Filesystems: `df -kP` joined with `mount` by mount point, for
//!   `/dev/*` devices only (devfs, autofs maps are not storage). `df -kP`
//!   has no inode counts: they are 0.
//! - Network: `ifconfig -a` (flags, mtu, ether, inet with hex netmask,
//!   inet6 with prefixlen, media speed, status).

use std::collections::BTreeMap;

use crate::collect::command::value_of;
use crate::error::{Error, Result};
use crate::inventory::{Cpu, Filesystem, IpAddress, Memory, NetworkInterface, Os, Unreadable};

/// The sysctl names the CPU, memory and hardware sections read.
pub const SYSCTL_KEYS: [&str; 10] = [
    "hw.model",
    "machdep.cpu.brand_string",
    "machdep.cpu.vendor",
    "hw.packages",
    "hw.physicalcpu",
    "hw.logicalcpu",
    "hw.cpufrequency",
    "hw.memsize",
    "vm.swapusage",
    "kern.hv_vmm_present",
];

/// Runs `sysctl` on [`SYSCTL_KEYS`]; names this Mac lacks are left out of
/// the output (sysctl complains on stderr, ignored).
#[cfg(target_os = "macos")]
pub fn read_sysctl() -> Result<String> {
    let script = format!("sysctl {} 2>/dev/null; exit 0", SYSCTL_KEYS.join(" "));
    crate::collect::command::run("/bin/sh", &["-c", &script], 1 << 20)
}

#[cfg(target_os = "macos")]
pub fn os(_root: &std::path::Path) -> Result<Os> {
    use crate::collect::command::run;
    let sw_vers = run("sw_vers", &[], 1 << 16)?;
    let text = |program: &str, args: &[&str]| run(program, args, 1 << 16).map_err(|e| e.to_string());
    let localtime =
        std::fs::read_link("/etc/localtime").map(|p| p.to_string_lossy().into_owned()).map_err(|e| format!("/etc/localtime: {e}"));
    os_from(&sw_vers, text("sysctl", &["-n", "kern.boottime"]), text("uname", &["-r"]), text("uname", &["-m"]), localtime)
}

#[cfg(target_os = "macos")]
pub fn cpu(_root: &std::path::Path) -> Result<Cpu> {
    parse_cpu(&read_sysctl()?)
}

#[cfg(target_os = "macos")]
pub fn memory(_root: &std::path::Path) -> Result<Memory> {
    parse_memory(&read_sysctl()?)
}

#[cfg(target_os = "macos")]
pub fn filesystems(_root: &std::path::Path) -> Result<Vec<Filesystem>> {
    use crate::collect::command::{MAX_OUTPUT_BYTES, run};
    parse_filesystems(&run("df", &["-kP"], MAX_OUTPUT_BYTES)?, &run("mount", &[], MAX_OUTPUT_BYTES)?)
}

#[cfg(target_os = "macos")]
pub fn network(_root: &std::path::Path) -> Result<Vec<NetworkInterface>> {
    parse_ifconfig(&crate::collect::command::run("ifconfig", &["-a"], crate::collect::command::MAX_OUTPUT_BYTES)?)
}

type Read = std::result::Result<String, String>;

/// Builds the OS section from `sw_vers` and the other reads.
pub fn os_from(sw_vers: &str, boottime: Read, kernel: Read, machine: Read, localtime_target: Read) -> Result<Os> {
    let name = value_of(sw_vers, "ProductName").ok_or_else(|| Error::parse("sw_vers output", None, "no ProductName"))?;
    let version = value_of(sw_vers, "ProductVersion").map(str::to_owned);
    let build = value_of(sw_vers, "BuildVersion").map(str::to_owned);
    let mut unreadable = Vec::new();
    let mut field = |name: &str, read: Read, parse: fn(&str) -> Option<String>| match read
        .map(|t| parse(&t).ok_or_else(|| format!("unexpected output {:?}", t.trim())))
    {
        Ok(Ok(v)) => Some(v),
        Ok(Err(reason)) | Err(reason) => {
            unreadable.push(Unreadable::new(name, reason));
            None
        }
    };
    fn one_word(t: &str) -> Option<String> {
        Some(t.trim().to_owned()).filter(|t| !t.is_empty() && !t.contains(char::is_whitespace))
    }
    let kernel = field("kernel", kernel, one_word).unwrap_or_default();
    let arch = field("arch", machine, |t| one_word(t).map(|m| if m == "arm64" { "aarch64".into() } else { m })).unwrap_or_default();
    let boot = field("boot_time_unix_ms", boottime, |t| parse_boottime(t).map(|ms| ms.to_string()));
    let timezone = field("timezone", localtime_target, crate::collect::os_state::timezone_from_localtime_target);
    Ok(Os {
        family: "macos",
        name: name.to_owned(),
        pretty_name: Some(format!("{name} {}", version.as_deref().unwrap_or(""))).map(|p| p.trim().to_owned()),
        version_id: version.clone(),
        version,
        id: Some("macos".into()),
        id_like: Vec::new(),
        kernel,
        arch,
        boot_time_unix_ms: boot.and_then(|b| b.parse().ok()),
        timezone,
        build,
        install_time_unix_ms: None,
        unreadable,
    })
}

/// `sysctl -n kern.boottime`: `{ sec = 1700000000, usec = 123456 } Tue Nov 14 22:13:20 2023`.
pub fn parse_boottime(text: &str) -> Option<i64> {
    let after = text.split_once("sec =")?.1;
    let secs: i64 = after.split(',').next()?.trim().parse().ok()?;
    let usec: i64 = text.split_once("usec =").and_then(|(_, r)| r.split('}').next()?.trim().parse().ok()).unwrap_or(0);
    secs.checked_mul(1000)?.checked_add(usec / 1000)
}

/// `sysctl a b c` output (`name: value` lines) into a map.
pub fn parse_sysctl(text: &str) -> BTreeMap<&str, &str> {
    crate::collect::command::key_values(text, ':').filter(|(k, _)| !k.is_empty() && !k.contains(' ')).collect()
}

/// CPU from [`SYSCTL_KEYS`] output.
pub fn parse_cpu(sysctl: &str) -> Result<Cpu> {
    let map = parse_sysctl(sysctl);
    let num = |k: &str| map.get(k).and_then(|v| v.parse::<u64>().ok());
    let mut unreadable = Vec::new();
    let model = map
        .get("machdep.cpu.brand_string")
        .map(|s| s.to_string())
        .ok_or_else(|| Error::parse("sysctl output", None, "no machdep.cpu.brand_string"))?;
    let vendor = map
        .get("machdep.cpu.vendor")
        .map(|s| s.to_string())
        .or_else(|| model.starts_with("Apple").then(|| "Apple".to_owned()))
        .unwrap_or_default();
    let logical_cores = num("hw.logicalcpu").and_then(|n| u32::try_from(n).ok()).unwrap_or_else(|| {
        unreadable.push(Unreadable::new("logical_cores", "sysctl hw.logicalcpu unreadable"));
        0
    });
    let physical_cores = num("hw.physicalcpu").and_then(|n| u32::try_from(n).ok());
    if physical_cores.is_none() {
        unreadable.push(Unreadable::new("physical_cores", "sysctl hw.physicalcpu unreadable"));
    }
    let frequency_mhz = num("hw.cpufrequency").map(|hz| hz / 1_000_000).filter(|f| *f > 0);
    if frequency_mhz.is_none() {
        let reason = if vendor == "Apple" {
            "Apple silicon reports no nominal frequency (no hw.cpufrequency)"
        } else {
            "sysctl hw.cpufrequency unreadable"
        };
        unreadable.push(Unreadable::new("frequency_mhz", reason));
    }
    Ok(Cpu {
        model,
        vendor,
        sockets: num("hw.packages").and_then(|n| u32::try_from(n).ok()),
        physical_cores,
        logical_cores,
        frequency_mhz,
        unreadable,
    })
}

/// Memory from [`SYSCTL_KEYS`] output.
pub fn parse_memory(sysctl: &str) -> Result<Memory> {
    let map = parse_sysctl(sysctl);
    let total_bytes =
        map.get("hw.memsize").and_then(|v| v.parse().ok()).ok_or_else(|| Error::parse("sysctl output", None, "no hw.memsize"))?;
    let mut unreadable = Vec::new();
    let swap = map.get("vm.swapusage").and_then(|v| parse_swap_total(v));
    if swap.is_none() {
        unreadable.push(Unreadable::new("swap_total_bytes", "sysctl vm.swapusage unreadable"));
    }
    Ok(Memory { total_bytes, swap_total_bytes: swap.unwrap_or(0), unreadable })
}

/// `total = 2048.00M  used = 1024.50M  free = 1023.50M  (encrypted)`.
fn parse_swap_total(value: &str) -> Option<u64> {
    let total = value.split_once("total =")?.1.split_whitespace().next()?;
    let (number, unit) = total.split_at(total.find(|c: char| c.is_ascii_alphabetic())?);
    let scale = match unit {
        "K" => 1u64 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0 && *n < 1e12)?;
    Some((n * scale as f64) as u64)
}

/// One `mount` line: `/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)`.
fn parse_mount_line(line: &str) -> Option<(&str, &str, Vec<&str>)> {
    let (head, opts) = line.trim_end().strip_suffix(')')?.rsplit_once(" (")?;
    let (device, mount_point) = head.split_once(" on ")?;
    Some((device, mount_point, opts.split(',').map(str::trim).collect()))
}

/// Joins `df -kP` and `mount` output into the real (`/dev/*`) filesystems.
pub fn parse_filesystems(df: &str, mount: &str) -> Result<Vec<Filesystem>> {
    let mounts: BTreeMap<&str, (&str, Vec<&str>)> = mount.lines().filter_map(parse_mount_line).map(|(d, m, o)| (m, (d, o))).collect();
    let mut list = Vec::new();
    let mut lines = df.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.starts_with("Filesystem") => {}
        _ => return Err(Error::parse("df -kP output", Some(1), "no header line")),
    }
    for (index, line) in lines {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        // The capacity column ends in '%'; the device before it and the
        // mount point after it may contain spaces.
        let Some(cap) = (4..tokens.len()).find(|&i| tokens[i].ends_with('%') && tokens[i - 3..i].iter().all(|t| t.parse::<u64>().is_ok()))
        else {
            return Err(Error::parse("df -kP output", Some(index + 1), format!("unexpected line {line:?}")));
        };
        let device = tokens[..cap - 3].join(" ");
        let mount_point = tokens[cap + 1..].join(" ");
        if !device.starts_with("/dev/") || mount_point.is_empty() {
            continue;
        }
        let kib = |i: usize| tokens[i].parse::<u64>().unwrap_or(0).saturating_mul(1024);
        let (fs_type, read_only) = match mounts.get(mount_point.as_str()) {
            Some((_, opts)) => (opts.first().copied().unwrap_or("").to_owned(), opts.contains(&"read-only")),
            None => (String::new(), false),
        };
        list.push(Filesystem {
            mount_point,
            device,
            fs_type,
            total_bytes: kib(cap - 3),
            free_bytes: kib(cap - 1),
            available_bytes: kib(cap - 1),
            inodes_total: 0,
            inodes_free: 0,
            read_only,
        });
    }
    Ok(list)
}

/// Parses `ifconfig -a`.
pub fn parse_ifconfig(text: &str) -> Result<Vec<NetworkInterface>> {
    let mut list: Vec<NetworkInterface> = Vec::new();
    let mut flags_up = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(['\t', ' ']) {
            let Some((name, rest)) = line.split_once(": ") else {
                return Err(Error::parse("ifconfig -a output", Some(index + 1), format!("unexpected line {line:?}")));
            };
            let flags = rest.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|(f, _)| f).unwrap_or("");
            let up = flags.split(',').any(|f| f == "UP") && flags.split(',').any(|f| f == "RUNNING");
            let mtu = rest.split_once(" mtu ").and_then(|(_, m)| m.split_whitespace().next()?.parse().ok());
            list.push(NetworkInterface {
                name: name.to_owned(),
                mtu,
                oper_state: if up { "up" } else { "down" }.into(),
                ..NetworkInterface::default()
            });
            flags_up.push(up);
            continue;
        }
        let Some(iface) = list.last_mut() else {
            return Err(Error::parse("ifconfig -a output", Some(index + 1), "property line before any interface"));
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).copied();
        match words.first().copied() {
            Some("ether") => iface.mac = words.get(1).and_then(|m| super::parse_mac(m)),
            Some("inet") => {
                let prefix = after("netmask").and_then(netmask_prefix);
                if let (Some(addr), Some(prefix_len)) = (words.get(1).filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok()), prefix) {
                    iface.addresses.push(IpAddress { address: addr.to_string(), prefix_len });
                }
            }
            Some("inet6") => {
                let addr = words.get(1).map(|a| a.split('%').next().unwrap_or_default());
                let prefix = after("prefixlen").and_then(|p| p.parse::<u32>().ok()).filter(|p| *p <= 128);
                if let (Some(addr), Some(prefix_len)) = (addr.filter(|a| a.parse::<std::net::Ipv6Addr>().is_ok()), prefix) {
                    iface.addresses.push(IpAddress { address: addr.to_owned(), prefix_len });
                }
            }
            Some("status:") => {
                iface.oper_state = match words.get(1).copied() {
                    Some("active") => "up",
                    Some("inactive") => "down",
                    _ => "unknown",
                }
                .into()
            }
            Some("media:") => iface.speed_mbps = media_speed_mbps(line),
            _ => {}
        }
    }
    for iface in &mut list {
        iface.addresses.sort_by(|a, b| a.address.cmp(&b.address));
    }
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// `0xffffff00` (or dotted `255.255.255.0`) to a prefix length; `None`
/// for a non-contiguous mask.
fn netmask_prefix(mask: &str) -> Option<u32> {
    let bits = match mask.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => u32::from(mask.parse::<std::net::Ipv4Addr>().ok()?),
    };
    (bits.leading_ones() == bits.count_ones()).then_some(bits.count_ones())
}

/// `media: autoselect (1000baseT <full-duplex>)` → 1000, `10Gbase-T` → 10000.
fn media_speed_mbps(line: &str) -> Option<u32> {
    let inner = line.split_once('(')?.1;
    let (speed, _) = inner.split_once("base")?;
    match speed.strip_suffix('G') {
        Some(g) => g.parse::<u32>().ok()?.checked_mul(1000),
        None => speed.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/fixtures/system/macos/", $name))
        };
    }

    fn never_panics(text: &str, parse: impl Fn(&str)) {
        for cut in 0..text.len() {
            if let Some(prefix) = text.get(..cut) {
                parse(prefix);
            }
        }
    }

    #[test]
    fn os_from_sw_vers_and_friends() {
        let os = os_from(
            fixture!("sw_vers.txt"),
            Ok("{ sec = 1718690000, usec = 497562 } Tue Jun 18 07:53:20 2024\n".into()),
            Ok("23.5.0\n".into()),
            Ok("arm64\n".into()),
            Ok("/var/db/timezone/zoneinfo/Europe/Paris".into()),
        )
        .unwrap();
        assert_eq!(
            (os.family, os.name.as_str(), os.version.as_deref(), os.build.as_deref()),
            ("macos", "macOS", Some("14.5"), Some("23F79"))
        );
        assert_eq!((os.kernel.as_str(), os.arch.as_str()), ("23.5.0", "aarch64"));
        assert_eq!(os.boot_time_unix_ms, Some(1_718_690_000_497));
        assert_eq!(os.timezone.as_deref(), Some("Europe/Paris"));
        assert!(os.unreadable.is_empty());
        let partial = os_from(
            fixture!("sw_vers.txt"),
            Ok("garbage".into()),
            Err("uname: not installed".into()),
            Ok("x86_64".into()),
            Err("/etc/localtime: not found".into()),
        )
        .unwrap();
        let fields: Vec<&str> = partial.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["kernel", "boot_time_unix_ms", "timezone"]);
        assert!(os_from("", Ok(String::new()), Ok(String::new()), Ok(String::new()), Ok(String::new())).is_err());
    }

    #[test]
    fn apple_silicon_cpu_has_no_frequency() {
        let cpu = parse_cpu(fixture!("sysctl_apple_silicon.txt")).unwrap();
        assert_eq!((cpu.model.as_str(), cpu.vendor.as_str()), ("Apple M1 Pro", "Apple"));
        assert_eq!((cpu.sockets, cpu.physical_cores, cpu.logical_cores, cpu.frequency_mhz), (Some(1), Some(10), 10, None));
        assert!(cpu.unreadable[0].reason.contains("Apple silicon"));
        let mem = parse_memory(fixture!("sysctl_apple_silicon.txt")).unwrap();
        assert_eq!((mem.total_bytes, mem.swap_total_bytes), (34_359_738_368, 2048 << 20));
    }

    #[test]
    fn intel_cpu_and_truncated_sysctl() {
        let cpu = parse_cpu(fixture!("sysctl_intel.txt")).unwrap();
        assert_eq!(
            (cpu.vendor.as_str(), cpu.physical_cores, cpu.logical_cores, cpu.frequency_mhz),
            ("GenuineIntel", Some(6), 12, Some(2600))
        );
        assert!(cpu.unreadable.is_empty());
        assert!(parse_cpu(fixture!("sysctl_truncated.txt")).is_ok());
        assert!(parse_memory(fixture!("sysctl_truncated.txt")).is_err(), "hw.memsize is cut off");
        never_panics(fixture!("sysctl_intel.txt"), |t| {
            let _ = (parse_cpu(t), parse_memory(t));
        });
    }

    #[test]
    fn filesystems_from_df_and_mount() {
        let fs = parse_filesystems(fixture!("df_kP.txt"), fixture!("mount.txt")).unwrap();
        let mounts: Vec<(&str, &str, bool)> = fs.iter().map(|f| (f.mount_point.as_str(), f.fs_type.as_str(), f.read_only)).collect();
        assert_eq!(
            mounts,
            [
                ("/", "apfs", true),
                ("/System/Volumes/VM", "apfs", false),
                ("/System/Volumes/Data", "apfs", false),
                ("/Volumes/My Passport", "exfat", false)
            ]
        );
        assert_eq!((fs[0].total_bytes, fs[0].free_bytes), (482_797_652 * 1024, 251_418_880 * 1024));
        let err = parse_filesystems(fixture!("df_kP_malformed.txt"), "").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(parse_filesystems("", "").is_err());
        never_panics(fixture!("df_kP.txt"), |t| drop(parse_filesystems(t, fixture!("mount.txt"))));
    }

    #[test]
    fn ifconfig_interfaces() {
        let list = parse_ifconfig(fixture!("ifconfig_a.txt")).unwrap();
        let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["bridge0", "en0", "en1", "lo0", "utun0"]);
        let en0 = &list[1];
        assert_eq!(en0.mac.as_deref(), Some("a4:83:e7:12:34:56"));
        assert_eq!((en0.oper_state.as_str(), en0.mtu, en0.speed_mbps), ("up", Some(1500), None));
        let addrs: Vec<(&str, u32)> = en0.addresses.iter().map(|a| (a.address.as_str(), a.prefix_len)).collect();
        assert_eq!(addrs, [("192.168.1.23", 24), ("2a01:e0a:1f2:3450:1c8a:2b3c:4d5e:6f70", 64), ("fe80::1c8a:2b3c:4d5e:6f70", 64)]);
        assert_eq!((list[2].oper_state.as_str(), list[2].speed_mbps), ("down", Some(1000)));
        let lo = &list[3];
        assert_eq!((lo.mac.as_deref(), lo.addresses.len()), (None, 3));
        assert!(parse_ifconfig("\tinet 1.2.3.4 netmask 0xff000000\n").is_err());
        never_panics(fixture!("ifconfig_a.txt"), |t| drop(parse_ifconfig(t)));
    }

    #[test]
    fn netmasks_and_media() {
        assert_eq!(netmask_prefix("0xffffff00"), Some(24));
        assert_eq!(netmask_prefix("255.255.0.0"), Some(16));
        assert_eq!(netmask_prefix("0xff00ff00"), None);
        assert_eq!(netmask_prefix("0xzz"), None);
        assert_eq!(media_speed_mbps("media: autoselect (10Gbase-T <full-duplex>)"), Some(10000));
        assert_eq!(media_speed_mbps("media: autoselect"), None);
    }
}
