//! OS state on Linux: timezone, pending reboot, Secure Boot, dm-crypt.
//!
//! Reads, under `root`: `/etc/timezone`, the `/etc/localtime` link,
//! `/var/run/reboot-required{,.pkgs}`, `/var/lib/dpkg` (to know the Debian
//! mechanism applies), `needs-restarting -r` on RPM systems (only when
//! `root` is "/": a command cannot look into a fixture tree),
//! `/sys/firmware/efi/efivars/SecureBoot-<EFI global GUID>`, `/proc/mounts`
//! and `/sys/block/dm-*/{dm/name,dm/uuid,slaves/}`.
//!
//! Encryption covers dm-crypt (LUKS and plain), including LVM on LUKS via
//! the slaves chain; ZFS native encryption and fscrypt are not detected and
//! such filesystems report `encrypted: false`. Parsers are pure, bounded,
//! and never panic.

pub mod macos;
pub mod windows;

use std::path::Path;

use crate::collect::fs::read_under;
use crate::error::{Error, Result};
use crate::inventory::os_state::{FilesystemEncryption, OsState, PendingReboot, SecureBoot};
use crate::inventory::unreadable::{Unreadable, io_reason};

const SECURE_BOOT_VAR: &str = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
const MAX_MOUNTS_BYTES: usize = 16 << 20;
const MAX_SMALL_BYTES: usize = 1 << 20;
/// Device-mapper stacks are a few levels deep; this bounds a cycle.
const MAX_DM_DEPTH: usize = 16;

/// Collects the OS state section from the system under `root`.
pub fn collect(root: &Path) -> Result<OsState> {
    let mut unreadable = Vec::new();

    let timezone = match read_under(root, "etc/timezone", MAX_SMALL_BYTES).ok().and_then(|t| parse_timezone_file(&t)) {
        Some(tz) => Some(tz),
        None => match std::fs::read_link(root.join("etc/localtime")) {
            Ok(target) => match timezone_from_localtime_target(&target.to_string_lossy()) {
                Some(tz) => Some(tz),
                None => {
                    unreadable.push(Unreadable::new(
                        "timezone",
                        format!("/etc/localtime points to {} which is not under zoneinfo/", target.display()),
                    ));
                    None
                }
            },
            Err(e) => {
                unreadable.push(Unreadable::new(
                    "timezone",
                    format!("no /etc/timezone and /etc/localtime is not a zoneinfo link ({})", io_reason("/etc/localtime", &e)),
                ));
                None
            }
        },
    };

    let pending_reboot = match pending_reboot(root) {
        Ok(p) => Some(p),
        Err(reason) => {
            unreadable.push(Unreadable::new("pending_reboot", reason));
            None
        }
    };

    let secure_boot = if !root.join("sys/firmware/efi").exists() {
        Some(SecureBoot::NotApplicableLegacyBios)
    } else {
        match std::fs::read(root.join(SECURE_BOOT_VAR)) {
            Ok(bytes) => match parse_secure_boot_var(&bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    unreadable.push(Unreadable::new("secure_boot", e.to_string()));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && root.join("sys/firmware/efi/efivars").is_dir() => {
                Some(SecureBoot::UnsupportedByFirmware)
            }
            Err(e) => {
                unreadable.push(Unreadable::from_io("secure_boot", &format!("/{SECURE_BOOT_VAR}"), &e));
                None
            }
        }
    };

    let (filesystems_encryption, root_encrypted) = match read_under(root, "proc/mounts", MAX_MOUNTS_BYTES) {
        Err(e) => {
            unreadable.push(Unreadable::from_io("filesystems_encryption", "/proc/mounts", &e));
            (None, None)
        }
        Ok(text) => match parse_mounts(&text) {
            Err(e) => {
                unreadable.push(Unreadable::new("filesystems_encryption", e.to_string()));
                (None, None)
            }
            Ok(mounts) => {
                let dms = read_dm_devices(root);
                let fs = encryption_by_mount(&mounts, &dms);
                let root_enc = fs.iter().find(|f| f.mount_point == "/").map(|f| f.encrypted);
                if root_enc.is_none() {
                    unreadable.push(Unreadable::new(
                        "root_encrypted",
                        "/ is not mounted from a block device (container overlay, network or ZFS root)",
                    ));
                }
                (Some(fs), root_enc)
            }
        },
    };

    Ok(OsState { timezone, pending_reboot, secure_boot, filesystems_encryption, root_encrypted, unreadable })
}

fn pending_reboot(root: &Path) -> std::result::Result<PendingReboot, String> {
    let flag = root.join("var/run/reboot-required");
    if flag.exists() {
        let packages =
            read_under(root, "var/run/reboot-required.pkgs", MAX_SMALL_BYTES).map(|t| parse_reboot_required_pkgs(&t)).unwrap_or_default();
        return Ok(PendingReboot { required: true, packages, source: "reboot-required-file".into() });
    }
    if root.join("var/lib/dpkg").is_dir() {
        return Ok(PendingReboot { required: false, packages: Vec::new(), source: "reboot-required-file".into() });
    }
    if root == Path::new("/") && root.join("var/lib/rpm").is_dir() {
        return match std::process::Command::new("needs-restarting").arg("-r").output() {
            Ok(out) => parse_needs_restarting(out.status.code(), &String::from_utf8_lossy(&out.stdout)),
            Err(e) => Err(format!("RPM system without needs-restarting (dnf-utils/yum-utils): {e}")),
        };
    }
    Err("no pending-reboot mechanism known for this distribution".into())
}

/// `/etc/timezone` (Debian): one zone name.
pub fn parse_timezone_file(text: &str) -> Option<String> {
    let t = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?;
    (t.len() <= 256 && !t.contains(char::is_whitespace)).then(|| t.to_string())
}

/// The zone name in an `/etc/localtime` link target: what follows
/// `zoneinfo/` (`/usr/share/zoneinfo/Europe/Paris`, `../usr/share/zoneinfo/UTC`).
/// `posix/` and `right/` prefixes are variants of the same zone.
pub fn timezone_from_localtime_target(target: &str) -> Option<String> {
    let (_, zone) = target.rsplit_once("zoneinfo/")?;
    let zone = zone.strip_prefix("posix/").or_else(|| zone.strip_prefix("right/")).unwrap_or(zone);
    (!zone.is_empty()).then(|| zone.to_string())
}

/// `/var/run/reboot-required.pkgs`: one package per line, possibly repeated.
pub fn parse_reboot_required_pkgs(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).take(10_000).map(String::from).collect();
    v.sort();
    v.dedup();
    v
}

/// `needs-restarting -r`: exit 1 means a reboot is needed, 0 means not.
pub fn parse_needs_restarting(exit_code: Option<i32>, stdout: &str) -> std::result::Result<PendingReboot, String> {
    let required = match exit_code {
        Some(0) => false,
        Some(1) => true,
        other => {
            return Err(format!("needs-restarting -r exited with {other:?}: {}", stdout.trim()));
        }
    };
    // Its output lists the updated core packages after a header line:
    // "Core libraries or services have been updated since boot-up:\n  * kernel".
    let packages =
        stdout.lines().filter_map(|l| l.trim().strip_prefix("* ")).map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
    Ok(PendingReboot { required, packages, source: "needs-restarting".into() })
}

/// The efivars `SecureBoot` variable: 4 bytes of attributes, then 1 byte
/// (1 = enabled, 0 = disabled).
pub fn parse_secure_boot_var(bytes: &[u8]) -> Result<SecureBoot> {
    const WHAT: &str = "efivars SecureBoot variable";
    match bytes {
        [_, _, _, _, 1] => Ok(SecureBoot::Enabled),
        [_, _, _, _, 0] => Ok(SecureBoot::Disabled),
        [_, _, _, _, v] => Err(Error::parse(WHAT, None, format!("unexpected value byte {v}"))),
        _ => Err(Error::parse(WHAT, None, format!("expected 5 bytes (4 attribute + 1 value), got {}", bytes.len()))),
    }
}

/// One `/proc/mounts` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
}

/// Parses `/proc/mounts` (fstab format, octal escapes for spaces etc.).
pub fn parse_mounts(text: &str) -> Result<Vec<MountEntry>> {
    if text.len() > MAX_MOUNTS_BYTES {
        return Err(Error::parse("/proc/mounts", None, format!("larger than {MAX_MOUNTS_BYTES} bytes")));
    }
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type)) = (f.next(), f.next(), f.next()) else {
            return Err(Error::parse("/proc/mounts", Some(idx + 1), "expected device, mount point and type"));
        };
        out.push(MountEntry { device: unescape_octal(device), mount_point: unescape_octal(mount_point), fs_type: fs_type.to_string() });
    }
    Ok(out)
}

/// The kernel writes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\'
            && let Some(oct) = b.get(i + 1..i + 4)
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = oct.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A device-mapper device from `/sys/block/dm-N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmDevice {
    /// Kernel name, `dm-0`.
    pub kernel_name: String,
    /// Mapping name (`/dev/mapper/<name>`), from `dm/name`.
    pub name: String,
    /// `dm/uuid`: `CRYPT-LUKS2-...` for dm-crypt, `LVM-...` for LVM.
    pub uuid: String,
    /// Kernel names of the devices below it (`slaves/`).
    pub slaves: Vec<String>,
}

impl DmDevice {
    fn is_crypt(&self) -> bool {
        self.uuid.starts_with("CRYPT-")
    }
}

/// Encryption state of each mount whose source is a `/dev/` block device.
/// Pseudo filesystems (proc, tmpfs, overlay, cgroup...) and read-only
/// images (squashfs snaps, ISOs) are skipped.
pub fn encryption_by_mount(mounts: &[MountEntry], dms: &[DmDevice]) -> Vec<FilesystemEncryption> {
    let mut out: Vec<FilesystemEncryption> = Vec::new();
    for m in mounts {
        let Some(dev) = m.device.strip_prefix("/dev/") else {
            continue;
        };
        // Read-only images (snaps, ISOs) hold no data of the host's own.
        if matches!(m.fs_type.as_str(), "squashfs" | "iso9660" | "udf" | "erofs") {
            continue;
        }
        // Bind mounts and remounts repeat a mount point; the last wins, as
        // it is the one visible.
        out.retain(|f| f.mount_point != m.mount_point);
        let dm = if let Some(name) = dev.strip_prefix("mapper/") {
            dms.iter().find(|d| d.name == name)
        } else {
            dms.iter().find(|d| d.kernel_name == dev)
        };
        let crypt = dm.and_then(|d| crypt_below(d, dms, 0));
        out.push(FilesystemEncryption {
            mount_point: m.mount_point.clone(),
            device: m.device.clone(),
            fs_type: m.fs_type.clone(),
            encrypted: crypt.is_some(),
            crypt_device: crypt.map(|c| c.name.clone()),
        });
    }
    out
}

/// The dm-crypt device at or below `d`, following slaves.
fn crypt_below<'a>(d: &'a DmDevice, dms: &'a [DmDevice], depth: usize) -> Option<&'a DmDevice> {
    if d.is_crypt() {
        return Some(d);
    }
    if depth >= MAX_DM_DEPTH {
        return None;
    }
    d.slaves.iter().filter_map(|s| dms.iter().find(|x| x.kernel_name == *s)).find_map(|below| crypt_below(below, dms, depth + 1))
}

/// The read half of dm discovery: `/sys/block/dm-*`.
fn read_dm_devices(root: &Path) -> Vec<DmDevice> {
    let Ok(entries) = std::fs::read_dir(root.join("sys/block")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let kernel_name = e.file_name().to_string_lossy().into_owned();
        if !kernel_name.starts_with("dm-") {
            continue;
        }
        let dir = e.path();
        let read = |f: &str| read_under(&dir, f, 4096).map(|s| s.trim().to_string()).unwrap_or_default();
        let mut slaves: Vec<String> = std::fs::read_dir(dir.join("slaves"))
            .map(|it| it.flatten().map(|s| s.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        slaves.sort();
        out.push(DmDevice { name: read("dm/name"), uuid: read("dm/uuid"), kernel_name, slaves });
    }
    out.sort_by(|a, b| a.kernel_name.cmp(&b.kernel_name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/os_state/laptop")
    }

    #[test]
    fn timezone_sources() {
        assert_eq!(parse_timezone_file("Europe/Paris\n").as_deref(), Some("Europe/Paris"));
        assert_eq!(parse_timezone_file("\n"), None);
        assert_eq!(timezone_from_localtime_target("/usr/share/zoneinfo/Etc/UTC").as_deref(), Some("Etc/UTC"));
        assert_eq!(timezone_from_localtime_target("../usr/share/zoneinfo/posix/Asia/Tokyo").as_deref(), Some("Asia/Tokyo"));
        assert_eq!(timezone_from_localtime_target("/etc/custom-tz"), None);
    }

    #[test]
    fn secure_boot_variable() {
        let enabled = include_bytes!("../../tests/fixtures/os_state/SecureBoot-enabled.bin");
        assert_eq!(parse_secure_boot_var(enabled).unwrap(), SecureBoot::Enabled);
        assert_eq!(parse_secure_boot_var(&[6, 0, 0, 0, 0]).unwrap(), SecureBoot::Disabled);
        let e = parse_secure_boot_var(&[6, 0, 0]).unwrap_err().to_string();
        assert!(e.contains("expected 5 bytes"), "{e}");
        assert!(parse_secure_boot_var(&[6, 0, 0, 0, 9]).is_err());
    }

    #[test]
    fn needs_restarting_exit_codes() {
        let out = include_str!("../../tests/fixtures/os_state/needs_restarting_reboot.txt");
        let p = parse_needs_restarting(Some(1), out).unwrap();
        assert!(p.required);
        assert_eq!(p.packages, ["glibc", "kernel", "systemd"]);
        assert!(!parse_needs_restarting(Some(0), "No core libraries or services have been updated since boot-up.\n").unwrap().required);
        assert!(parse_needs_restarting(None, "").is_err());
    }

    #[test]
    fn mounts_with_escapes() {
        let m = parse_mounts("/dev/sdb1 /media/alice/My\\040Disk vfat rw 0 0\n").unwrap();
        assert_eq!(m.first().map(|m| m.mount_point.as_str()), Some("/media/alice/My Disk"));
        let e = parse_mounts("/dev/sda1\n").unwrap_err().to_string();
        assert!(e.contains("/proc/mounts at line 1"), "{e}");
        assert_eq!(unescape_octal("a\\999b\\"), "a\\999b\\");
    }

    #[test]
    fn lvm_on_luks_root_is_encrypted_and_boot_is_not() {
        let text = include_str!("../../tests/fixtures/os_state/laptop/proc/mounts");
        let mounts = parse_mounts(text).unwrap();
        let dms = read_dm_devices(&fixture_root());
        assert_eq!(dms.len(), 3);
        let fs = encryption_by_mount(&mounts, &dms);
        let get = |mp: &str| fs.iter().find(|f| f.mount_point == mp).unwrap();
        assert!(get("/").encrypted);
        assert_eq!(get("/").crypt_device.as_deref(), Some("nvme0n1p3_crypt"));
        assert!(get("/home").encrypted);
        assert!(!get("/boot").encrypted);
        assert!(!get("/boot/efi").encrypted);
        assert!(fs.iter().all(|f| f.device.starts_with("/dev/")));
        assert_eq!(fs.len(), 4, "snap squashfs and pseudo filesystems are skipped");
    }

    #[test]
    fn collect_on_laptop_fixture() {
        let s = collect(&fixture_root()).unwrap();
        assert_eq!(s.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(s.secure_boot, Some(SecureBoot::Enabled));
        assert_eq!(s.root_encrypted, Some(true));
        let p = s.pending_reboot.unwrap();
        assert!(p.required);
        assert_eq!(p.packages, ["linux-image-6.8.0-45-generic", "systemd"]);
        assert!(s.unreadable.is_empty(), "{:?}", s.unreadable);
    }

    /// On the live machine every field is present or explained.
    #[test]
    fn live_machine_state() {
        if !Path::new("/proc/mounts").exists() {
            eprintln!("skipping: no /proc/mounts");
            return;
        }
        let s = collect(Path::new("/")).unwrap();
        if !Path::new("/sys/firmware/efi").exists() {
            assert_eq!(s.secure_boot, Some(SecureBoot::NotApplicableLegacyBios));
        }
        if let Ok(tz) = std::fs::read_to_string("/etc/timezone") {
            assert_eq!(s.timezone.as_deref(), Some(tz.trim()));
        }
        if Path::new("/var/lib/dpkg").is_dir() {
            let p = s.pending_reboot.unwrap();
            assert_eq!(p.required, Path::new("/var/run/reboot-required").exists());
        }
        // `/` is on a plain block device here or not a block device at all.
        assert!(s.root_encrypted.is_some() || s.unreadable.iter().any(|u| u.field == "root_encrypted"));
    }
}
