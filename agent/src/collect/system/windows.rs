//! Core system sections on Windows: OS, CPU, memory, volumes and network
//! adapters, one PowerShell script each (their output is what the
//! `parse_*` functions read).
//!
//! - OS: `Win32_OperatingSystem` (Caption, Version, BuildNumber,
//!   InstallDate, LastBootUpTime), `UBR` and `DisplayVersion` of
//!   `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`, the native
//!   architecture (`PROCESSOR_ARCHITEW6432` over `PROCESSOR_ARCHITECTURE`),
//!   and `Get-TimeZone`. The time zone is reported only as an IANA name,
//!   converted by .NET (`TryConvertWindowsIdToIanaId`, PowerShell 7.2+);
//!   on Windows PowerShell 5.1 it is absent with the Windows zone id.
//! - CPU: `Win32_Processor`, one object per socket.
//! - Memory: `Win32_ComputerSystem.TotalPhysicalMemory` and the page files
//!   (`Win32_PageFileUsage.AllocatedBaseSize`, MiB) as swap.
//! - Filesystems: `Get-Volume` for volumes with a drive letter. Windows
//!   has no inode counts: they are 0.
//! - Network: `Get-NetAdapter` joined with `Get-NetIPAddress` by
//!   interface index.

use serde_json::Value;

use crate::collect::json::{items, text, uint};
use crate::collect::powershell::{self, arch_name, date_unix_ms};
use crate::error::{Error, Result};
use crate::inventory::{Cpu, Filesystem, IpAddress, Memory, NetworkInterface, Os, Unreadable};

pub const OS_SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
$o = Get-CimInstance Win32_OperatingSystem
$cv = Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$tz = Get-TimeZone
$iana = $null; try { [void][TimeZoneInfo]::TryConvertWindowsIdToIanaId($tz.Id, [ref]$iana) } catch { }
$arch = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
[pscustomobject]@{ Caption=$o.Caption; Version=$o.Version; BuildNumber=$o.BuildNumber; UBR=$cv.UBR; DisplayVersion=$cv.DisplayVersion; Arch=$arch; InstallDate=$o.InstallDate; LastBootUpTime=$o.LastBootUpTime; TimeZoneId=$tz.Id; IanaTimeZone=$iana } | ConvertTo-Json -Depth 4 -Compress"#;

pub const CPU_SCRIPT: &str = r#"Get-CimInstance Win32_Processor | Select-Object Name,Manufacturer,NumberOfCores,NumberOfLogicalProcessors,MaxClockSpeed,SocketDesignation | ConvertTo-Json -Depth 4 -Compress"#;

pub const MEMORY_SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
[pscustomobject]@{ TotalPhysicalMemory=(Get-CimInstance Win32_ComputerSystem).TotalPhysicalMemory; PageFiles=@(Get-CimInstance Win32_PageFileUsage | Select-Object Name,AllocatedBaseSize) } | ConvertTo-Json -Depth 4 -Compress"#;

pub const VOLUMES_SCRIPT: &str = r#"Get-Volume | Where-Object DriveLetter | Select-Object DriveLetter,FileSystemLabel,FileSystem,FileSystemType,DriveType,Path,Size,SizeRemaining | ConvertTo-Json -Depth 4 -Compress"#;

pub const NETWORK_SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
[pscustomobject]@{ Adapters=@(Get-NetAdapter | Select-Object Name,InterfaceDescription,InterfaceIndex,MacAddress,Status,Speed,MtuSize); Addresses=@(Get-NetIPAddress | Select-Object InterfaceIndex,IPAddress,PrefixLength) } | ConvertTo-Json -Depth 4 -Compress"#;

#[cfg(windows)]
pub fn os(_root: &std::path::Path) -> Result<Os> {
    parse_os(&powershell::run(OS_SCRIPT)?)
}

#[cfg(windows)]
pub fn cpu(_root: &std::path::Path) -> Result<Cpu> {
    parse_cpu(&powershell::run(CPU_SCRIPT)?)
}

#[cfg(windows)]
pub fn memory(_root: &std::path::Path) -> Result<Memory> {
    parse_memory(&powershell::run(MEMORY_SCRIPT)?)
}

#[cfg(windows)]
pub fn filesystems(_root: &std::path::Path) -> Result<Vec<Filesystem>> {
    parse_volumes(&powershell::run(VOLUMES_SCRIPT)?)
}

#[cfg(windows)]
pub fn network(_root: &std::path::Path) -> Result<Vec<NetworkInterface>> {
    parse_network(&powershell::run(NETWORK_SCRIPT)?)
}

fn first_object(what: &str, output: &str) -> Result<Value> {
    let json = powershell::parse_json(what, output)?;
    items(Some(&json)).into_iter().next().cloned().ok_or_else(|| Error::parse(what, None, "no object in the output"))
}

/// Parses the output of [`OS_SCRIPT`].
pub fn parse_os(output: &str) -> Result<Os> {
    const WHAT: &str = "Win32_OperatingSystem script output";
    let v = first_object(WHAT, output)?;
    let name = text(&v, "Caption").ok_or_else(|| Error::parse(WHAT, None, "no Caption"))?;
    let mut unreadable = Vec::new();
    let kernel = text(&v, "Version").unwrap_or_else(|| {
        unreadable.push(Unreadable::new("kernel", "Win32_OperatingSystem.Version is empty"));
        String::new()
    });
    let build = text(&v, "BuildNumber").map(|b| match uint(&v, "UBR") {
        Some(ubr) => format!("{b}.{ubr}"),
        None => b,
    });
    let arch = text(&v, "Arch").map(|a| arch_name(&a)).unwrap_or_else(|| {
        unreadable.push(Unreadable::new("arch", "PROCESSOR_ARCHITECTURE is not set"));
        String::new()
    });
    let boot_time_unix_ms = date_unix_ms(&v, "LastBootUpTime");
    if boot_time_unix_ms.is_none() {
        unreadable.push(Unreadable::new("boot_time_unix_ms", "Win32_OperatingSystem.LastBootUpTime unreadable"));
    }
    let install_time_unix_ms = date_unix_ms(&v, "InstallDate");
    if install_time_unix_ms.is_none() {
        unreadable.push(Unreadable::new("install_time_unix_ms", "Win32_OperatingSystem.InstallDate unreadable"));
    }
    let timezone = text(&v, "IanaTimeZone");
    if timezone.is_none() {
        let id = text(&v, "TimeZoneId").unwrap_or_else(|| "unknown".into());
        unreadable.push(Unreadable::new("timezone", format!("Windows zone {id:?} has no IANA name here (needs PowerShell 7.2+)")));
    }
    Ok(Os {
        family: "windows",
        pretty_name: Some(name.clone()),
        name,
        version: text(&v, "DisplayVersion"),
        version_id: Some(kernel.clone()).filter(|k| !k.is_empty()),
        id: Some("windows".into()),
        id_like: Vec::new(),
        kernel,
        arch,
        boot_time_unix_ms,
        timezone,
        build,
        install_time_unix_ms,
        unreadable,
    })
}

/// Parses the output of [`CPU_SCRIPT`]: one object per socket.
pub fn parse_cpu(output: &str) -> Result<Cpu> {
    const WHAT: &str = "Win32_Processor script output";
    let json = powershell::parse_json(WHAT, output)?;
    let sockets = items(Some(&json));
    let first = sockets.first().ok_or_else(|| Error::parse(WHAT, None, "no processor"))?;
    let sum = |key: &str| sockets.iter().map(|s| uint(s, key)).sum::<Option<u64>>().and_then(|n| u32::try_from(n).ok());
    let mut unreadable = Vec::new();
    let logical_cores = sum("NumberOfLogicalProcessors").unwrap_or_else(|| {
        unreadable.push(Unreadable::new("logical_cores", "Win32_Processor.NumberOfLogicalProcessors unreadable"));
        0
    });
    let physical_cores = sum("NumberOfCores");
    if physical_cores.is_none() {
        unreadable.push(Unreadable::new("physical_cores", "Win32_Processor.NumberOfCores unreadable"));
    }
    let frequency_mhz = uint(first, "MaxClockSpeed").filter(|f| *f > 0);
    if frequency_mhz.is_none() {
        unreadable.push(Unreadable::new("frequency_mhz", "Win32_Processor.MaxClockSpeed unreadable"));
    }
    Ok(Cpu {
        model: text(first, "Name").unwrap_or_default(),
        vendor: text(first, "Manufacturer").unwrap_or_default(),
        sockets: u32::try_from(sockets.len()).ok(),
        physical_cores,
        logical_cores,
        frequency_mhz,
        unreadable,
    })
}

/// Parses the output of [`MEMORY_SCRIPT`].
pub fn parse_memory(output: &str) -> Result<Memory> {
    const WHAT: &str = "memory script output";
    let v = first_object(WHAT, output)?;
    let total_bytes = uint(&v, "TotalPhysicalMemory").ok_or_else(|| Error::parse(WHAT, None, "no TotalPhysicalMemory"))?;
    let swap_mib: u64 = items(v.get("PageFiles")).iter().filter_map(|p| uint(p, "AllocatedBaseSize")).fold(0, u64::saturating_add);
    Ok(Memory { total_bytes, swap_total_bytes: swap_mib.saturating_mul(1 << 20), unreadable: Vec::new() })
}

/// `MSFT_Volume.FileSystemType` numbers, for when the string is missing.
fn fs_type_name(n: u64) -> Option<&'static str> {
    Some(match n {
        4 => "FAT",
        5 => "FAT16",
        6 => "FAT32",
        7 | 8 | 14 => "NTFS",
        15 => "ReFS",
        0x8000 => "CSVFS_NTFS",
        0x8001 => "CSVFS_ReFS",
        _ => return None,
    })
}

/// Parses the output of [`VOLUMES_SCRIPT`]. A volume without a drive
/// letter or without a size (an empty card reader) is left out.
pub fn parse_volumes(output: &str) -> Result<Vec<Filesystem>> {
    const WHAT: &str = "Get-Volume script output";
    let json = powershell::parse_json(WHAT, output)?;
    let mut list = Vec::new();
    for v in items(Some(&json)) {
        let Some(letter) = text(v, "DriveLetter").filter(|l| l.len() == 1 && l.chars().all(|c| c.is_ascii_alphabetic())) else { continue };
        let Some(total_bytes) = uint(v, "Size").filter(|s| *s > 0) else { continue };
        let free = uint(v, "SizeRemaining").unwrap_or(0).min(total_bytes);
        let fs_type = text(v, "FileSystem")
            .or_else(|| text(v, "FileSystemType").filter(|t| t.parse::<u64>().is_err()))
            .or_else(|| uint(v, "FileSystemType").and_then(fs_type_name).map(str::to_owned))
            .unwrap_or_default();
        list.push(Filesystem {
            mount_point: format!("{}:\\", letter.to_ascii_uppercase()),
            device: text(v, "Path").unwrap_or_default(),
            fs_type,
            total_bytes,
            free_bytes: free,
            available_bytes: free,
            inodes_total: 0,
            inodes_free: 0,
            read_only: false,
        });
    }
    list.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    Ok(list)
}

/// Parses the output of [`NETWORK_SCRIPT`].
pub fn parse_network(output: &str) -> Result<Vec<NetworkInterface>> {
    const WHAT: &str = "Get-NetAdapter script output";
    let v = first_object(WHAT, output)?;
    let addresses = items(v.get("Addresses"));
    let mut list: Vec<NetworkInterface> = items(v.get("Adapters"))
        .into_iter()
        .filter_map(|a| {
            let name = text(a, "Name")?;
            let index = uint(a, "InterfaceIndex");
            let mut ips: Vec<IpAddress> = addresses
                .iter()
                .filter(|ip| index.is_some() && uint(ip, "InterfaceIndex") == index)
                .filter_map(|ip| {
                    let address = text(ip, "IPAddress")?;
                    let address = address.split('%').next().unwrap_or_default().to_owned();
                    address.parse::<std::net::IpAddr>().ok()?;
                    Some(IpAddress { address, prefix_len: u32::try_from(uint(ip, "PrefixLength")?).ok().filter(|p| *p <= 128)? })
                })
                .collect();
            ips.sort_by(|a, b| a.address.cmp(&b.address));
            let oper_state = match text(a, "Status").map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("up") => "up",
                Some("disconnected" | "disabled" | "not present") => "down",
                _ => "unknown",
            };
            Some(NetworkInterface {
                name,
                mac: text(a, "MacAddress").and_then(|m| super::parse_mac(&m.replace('-', ":"))),
                addresses: ips,
                oper_state: oper_state.into(),
                speed_mbps: uint(a, "Speed").filter(|s| *s > 0 && *s < u64::MAX / 2).and_then(|bps| u32::try_from(bps / 1_000_000).ok()),
                mtu: uint(a, "MtuSize").and_then(|m| u32::try_from(m).ok()),
            })
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/fixtures/system/windows/", $name))
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
    fn os_from_powershell_7_and_5_1() {
        let os = parse_os(fixture!("os_ps7.json")).unwrap();
        assert_eq!((os.family, os.name.as_str(), os.kernel.as_str()), ("windows", "Microsoft Windows 11 Pro", "10.0.22631"));
        assert_eq!(os.version.as_deref(), Some("23H2"));
        assert_eq!(os.build.as_deref(), Some("22631.3737"));
        assert_eq!(os.arch, "x86_64");
        assert_eq!(os.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(os.boot_time_unix_ms, Some(1_718_690_000_497), "2024-06-18T07:53:20.497+02:00");
        assert_eq!(os.install_time_unix_ms, Some(1_700_000_000_000));
        assert!(os.unreadable.is_empty(), "{:?}", os.unreadable);
        let old = parse_os(fixture!("os_ps51.json")).unwrap();
        assert_eq!(old.boot_time_unix_ms, Some(1_718_690_000_000));
        assert_eq!(old.install_time_unix_ms, Some(1_700_000_000_000));
        assert_eq!(old.arch, "aarch64");
        assert_eq!(old.build.as_deref(), Some("19045"), "no UBR");
        assert_eq!(old.timezone, None);
        assert!(old.unreadable[0].reason.contains("W. Europe Standard Time"));
        assert!(parse_os(fixture!("os_truncated.json")).is_err());
        never_panics(fixture!("os_ps7.json"), |t| drop(parse_os(t)));
    }

    #[test]
    fn cpu_one_socket_and_two() {
        let one = parse_cpu(fixture!("cpu_one_socket.json")).unwrap();
        assert_eq!((one.sockets, one.physical_cores, one.logical_cores, one.frequency_mhz), (Some(1), Some(14), 20, Some(2400)));
        assert_eq!(one.vendor, "GenuineIntel");
        assert_eq!(one.model, "13th Gen Intel(R) Core(TM) i7-13700H");
        let two = parse_cpu(fixture!("cpu_two_sockets.json")).unwrap();
        assert_eq!((two.sockets, two.physical_cores, two.logical_cores), (Some(2), Some(64), 128));
        let bad = parse_cpu(fixture!("cpu_malformed.json")).unwrap();
        assert_eq!((bad.logical_cores, bad.physical_cores), (0, None));
        assert_eq!(bad.unreadable.len(), 3);
        assert!(parse_cpu("[]").is_err());
        never_panics(fixture!("cpu_two_sockets.json"), |t| drop(parse_cpu(t)));
    }

    #[test]
    fn memory_and_page_files() {
        let m = parse_memory(fixture!("memory.json")).unwrap();
        assert_eq!(m.total_bytes, 34_056_593_408);
        assert_eq!(m.swap_total_bytes, 5120 << 20);
        assert!(parse_memory(r#"{"PageFiles":[]}"#).is_err());
        never_panics(fixture!("memory.json"), |t| drop(parse_memory(t)));
    }

    #[test]
    fn volumes_with_letters() {
        let v = parse_volumes(fixture!("volumes.json")).unwrap();
        let mounts: Vec<(&str, &str)> = v.iter().map(|f| (f.mount_point.as_str(), f.fs_type.as_str())).collect();
        assert_eq!(mounts, [("C:\\", "NTFS"), ("D:\\", "ReFS"), ("E:\\", "FAT32")]);
        assert_eq!((v[0].total_bytes, v[0].free_bytes), (511_101_202_432, 201_326_592_000));
        assert!(v[0].device.starts_with("\\\\?\\Volume{"));
        assert!(parse_volumes(fixture!("volumes_truncated.json")).is_err());
        assert!(parse_volumes("").unwrap().is_empty());
        never_panics(fixture!("volumes.json"), |t| drop(parse_volumes(t)));
    }

    #[test]
    fn adapters_with_addresses() {
        let n = parse_network(fixture!("network.json")).unwrap();
        let names: Vec<&str> = n.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["Ethernet", "Wi-Fi"]);
        let eth = &n[0];
        assert_eq!(eth.mac.as_deref(), Some("8c:16:45:aa:bb:cc"));
        assert_eq!((eth.oper_state.as_str(), eth.speed_mbps, eth.mtu), ("up", Some(1000), Some(1500)));
        let addrs: Vec<(&str, u32)> = eth.addresses.iter().map(|a| (a.address.as_str(), a.prefix_len)).collect();
        assert_eq!(addrs, [("10.20.30.41", 24), ("fe80::5d2a:1b3c:4d5e:6f70", 64)]);
        assert_eq!((n[1].oper_state.as_str(), n[1].addresses.len()), ("down", 0));
        never_panics(fixture!("network.json"), |t| drop(parse_network(t)));
    }
}
