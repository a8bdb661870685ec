//! OS state on Windows, from one PowerShell script ([`SCRIPT`]):
//!
//! - Pending reboot: any of the three registry markers Windows servicing
//!   leaves — `Component Based Servicing\RebootPending`,
//!   `WindowsUpdate\Auto Update\RebootRequired`, and a non-empty
//!   `Session Manager\PendingFileRenameOperations`. `source` names the
//!   markers found (`windows-registry:cbs,wu,pfro`), or
//!   `windows-registry` when none is.
//! - Secure Boot: `Confirm-SecureBootUEFI` (True/False); it throws
//!   "not supported on this platform" on legacy BIOS boots, and "access
//!   denied" without administrator rights (then absent with that reason).
//! - Encryption: `Get-BitLockerVolume` per drive letter. A volume counts
//!   as encrypted when it is fully encrypted *and* protection is on: a
//!   suspended BitLocker keeps the key in clear on the disk. Needs
//!   administrator rights; otherwise absent with the reason.
//! - Time zone: the IANA name as in the OS section.

use crate::collect::json::{boolean, items, text, uint};
use crate::collect::powershell;
use crate::error::{Error, Result};
use crate::inventory::os_state::{FilesystemEncryption, OsState, PendingReboot, SecureBoot};
use crate::inventory::unreadable::Unreadable;

const WHAT: &str = "OS state script output";

pub const SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
$sb = $null; $sbError = $null
try { $sb = Confirm-SecureBootUEFI -ErrorAction Stop } catch { $sbError = $_.Exception.Message }
$bl = $null; $blError = $null
try { $bl = @(Get-BitLockerVolume -ErrorAction Stop | Select-Object MountPoint,@{n='VolumeStatus';e={"$($_.VolumeStatus)"}},@{n='ProtectionStatus';e={"$($_.ProtectionStatus)"}},@{n='EncryptionMethod';e={"$($_.EncryptionMethod)"}}) } catch { $blError = $_.Exception.Message }
$pfro = (Get-ItemProperty 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager' -Name PendingFileRenameOperations).PendingFileRenameOperations
$iana = $null; try { [void][TimeZoneInfo]::TryConvertWindowsIdToIanaId((Get-TimeZone).Id, [ref]$iana) } catch { }
[pscustomobject]@{
 CbsRebootPending = Test-Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending'
 WuRebootRequired = Test-Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'
 PendingFileRenames = @($pfro | Where-Object { $_ }).Count
 SecureBoot = $sb; SecureBootError = $sbError
 BitLocker = $bl; BitLockerError = $blError
 Volumes = @(Get-Volume | Where-Object DriveLetter | Select-Object DriveLetter,FileSystem,Path)
 SystemDrive = $env:SystemDrive
 TimeZoneId = (Get-TimeZone).Id; IanaTimeZone = $iana
} | ConvertTo-Json -Depth 4 -Compress"#;

#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> Result<OsState> {
    parse_os_state(&powershell::run(SCRIPT)?)
}

/// Parses the output of [`SCRIPT`].
pub fn parse_os_state(output: &str) -> Result<OsState> {
    let json = powershell::parse_json(WHAT, output)?;
    let v = items(Some(&json)).into_iter().next().ok_or_else(|| Error::parse(WHAT, None, "no object in the output"))?;
    let mut unreadable = Vec::new();
    let markers: Vec<&str> = [
        ("cbs", boolean(v, "CbsRebootPending") == Some(true)),
        ("wu", boolean(v, "WuRebootRequired") == Some(true)),
        ("pfro", uint(v, "PendingFileRenames").is_some_and(|n| n > 0)),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let pending_reboot = Some(PendingReboot {
        required: !markers.is_empty(),
        packages: Vec::new(),
        source: if markers.is_empty() { "windows-registry".into() } else { format!("windows-registry:{}", markers.join(",")) },
    });
    let secure_boot = match (boolean(v, "SecureBoot"), text(v, "SecureBootError")) {
        (Some(true), _) => Some(SecureBoot::Enabled),
        (Some(false), _) => Some(SecureBoot::Disabled),
        (None, Some(e)) if e.to_ascii_lowercase().contains("not supported") => Some(SecureBoot::NotApplicableLegacyBios),
        (None, error) => {
            unreadable
                .push(Unreadable::new("secure_boot", format!("Confirm-SecureBootUEFI: {}", error.unwrap_or_else(|| "no answer".into()))));
            None
        }
    };
    let system_drive = text(v, "SystemDrive").unwrap_or_else(|| "C:".into()).to_ascii_uppercase();
    let (filesystems_encryption, root_encrypted) = match (v.get("BitLocker").filter(|b| !b.is_null()), text(v, "BitLockerError")) {
        (Some(bitlocker), _) => {
            let bitlocker = items(Some(bitlocker));
            let list: Vec<FilesystemEncryption> = items(v.get("Volumes"))
                .into_iter()
                .filter_map(|vol| {
                    let mount = format!("{}:", text(vol, "DriveLetter")?.to_ascii_uppercase());
                    let bl = bitlocker
                        .iter()
                        .find(|b| text(b, "MountPoint").is_some_and(|m| m.trim_end_matches('\\').eq_ignore_ascii_case(&mount)));
                    let encrypted = bl.is_some_and(|b| {
                        text(b, "VolumeStatus").is_some_and(|s| s == "FullyEncrypted" || s == "1")
                            && text(b, "ProtectionStatus").is_some_and(|p| p == "On" || p == "1")
                    });
                    Some(FilesystemEncryption {
                        mount_point: format!("{mount}\\"),
                        device: text(vol, "Path").unwrap_or_default(),
                        fs_type: text(vol, "FileSystem").unwrap_or_default(),
                        encrypted,
                        crypt_device: bl.filter(|_| encrypted).and_then(|b| text(b, "EncryptionMethod")).map(|m| format!("BitLocker {m}")),
                    })
                })
                .collect();
            let root = list.iter().find(|f| f.mount_point.trim_end_matches('\\') == system_drive).map(|f| f.encrypted);
            (Some(list), root)
        }
        (None, error) => {
            let reason = format!("Get-BitLockerVolume: {} (needs administrator rights)", error.unwrap_or_else(|| "no answer".into()));
            unreadable.push(Unreadable::new("filesystems_encryption", reason.clone()));
            unreadable.push(Unreadable::new("root_encrypted", reason));
            (None, None)
        }
    };
    let timezone = text(v, "IanaTimeZone");
    if timezone.is_none() {
        let id = text(v, "TimeZoneId").unwrap_or_default();
        unreadable.push(Unreadable::new("timezone", format!("Windows zone {id:?} has no IANA name here (needs PowerShell 7.2+)")));
    }
    Ok(OsState { timezone, pending_reboot, secure_boot, filesystems_encryption, root_encrypted, unreadable })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = include_str!("../../../tests/fixtures/os_state/windows/os_state_admin.json");
    const USER: &str = include_str!("../../../tests/fixtures/os_state/windows/os_state_not_admin_legacy_bios.json");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/os_state/windows/os_state_truncated.json");

    #[test]
    fn admin_run_reads_everything() {
        let s = parse_os_state(ADMIN).unwrap();
        let reboot = s.pending_reboot.as_ref().unwrap();
        assert_eq!((reboot.required, reboot.source.as_str()), (true, "windows-registry:wu,pfro"));
        assert_eq!(s.secure_boot, Some(SecureBoot::Enabled));
        let enc: Vec<(&str, bool, Option<&str>)> = s
            .filesystems_encryption
            .as_ref()
            .unwrap()
            .iter()
            .map(|f| (f.mount_point.as_str(), f.encrypted, f.crypt_device.as_deref()))
            .collect();
        assert_eq!(enc, [("C:\\", true, Some("BitLocker XtsAes128")), ("D:\\", false, None), ("E:\\", false, None)], "D: is suspended");
        assert_eq!(s.root_encrypted, Some(true));
        assert_eq!(s.timezone.as_deref(), Some("Europe/Berlin"));
        assert!(s.unreadable.is_empty(), "{:?}", s.unreadable);
    }

    #[test]
    fn unprivileged_run_on_legacy_bios() {
        let s = parse_os_state(USER).unwrap();
        assert_eq!(s.pending_reboot.as_ref().map(|r| (r.required, r.source.as_str())), Some((false, "windows-registry")));
        assert_eq!(s.secure_boot, Some(SecureBoot::NotApplicableLegacyBios));
        assert_eq!((s.filesystems_encryption.as_ref(), s.root_encrypted), (None, None));
        let fields: Vec<&str> = s.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["filesystems_encryption", "root_encrypted", "timezone"]);
        assert!(s.unreadable[0].reason.contains("Access denied"));
    }

    #[test]
    fn truncated_and_garbage() {
        assert!(parse_os_state(TRUNCATED).is_err());
        assert!(parse_os_state("").is_err());
        for cut in 0..ADMIN.len() {
            let _ = parse_os_state(ADMIN.get(..cut).unwrap_or(""));
        }
    }
}
