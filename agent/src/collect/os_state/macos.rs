//! OS state on macOS:
//!
//! - Time zone: the `/etc/localtime` link, as on Linux.
//! - Pending reboot: macOS keeps no "reboot required" marker outside
//!   `softwareupdate` (a network call, too slow for inventory): absent
//!   with that reason.
//! - Secure Boot: the T2 policy in the NVRAM variable
//!   `94b73556-2197-4702-82a8-3e1337dafbfb:AppleSecureBootPolicy`
//!   (`%02` Full security and `%01` Medium security are `enabled`: both
//!   verify Apple's signature; `%00` No security is `disabled`). Intel Macs
//!   without a T2 chip have no such variable: `unsupported_by_firmware`.
//!   Apple silicon Macs keep the policy in the LocalPolicy instead, read
//!   only by `bputil -d` (interactive, root): absent with that reason.
//!   SIP (`csrutil status`) is a different protection and is not reported
//!   as Secure Boot.
//! - Encryption: `fdesetup status`. FileVault encrypts the Data volume
//!   that holds every user file, so `root_encrypted` is FileVault on
//!   (encryption in progress counts as not yet). Per-volume encryption is
//!   not read (APFS volume roles need `diskutil apfs list`): absent.

use crate::collect::os_state::timezone_from_localtime_target;
use crate::inventory::os_state::{OsState, SecureBoot};
use crate::inventory::unreadable::Unreadable;

pub const SECURE_BOOT_VARIABLE: &str = "94b73556-2197-4702-82a8-3e1337dafbfb:AppleSecureBootPolicy";

#[cfg(target_os = "macos")]
pub fn collect(_root: &std::path::Path) -> crate::error::Result<OsState> {
    use crate::collect::command::run;
    let read = |program: &str, args: &[&str]| run(program, args, 1 << 16).map_err(|e| e.to_string());
    let localtime =
        std::fs::read_link("/etc/localtime").map(|p| p.to_string_lossy().into_owned()).map_err(|e| format!("/etc/localtime: {e}"));
    Ok(os_state_from(localtime, read("nvram", &[SECURE_BOOT_VARIABLE]), std::env::consts::ARCH == "aarch64", read("fdesetup", &["status"])))
}

type Read = std::result::Result<String, String>;

/// Builds the section from the localtime link target, `nvram` output (an
/// error when the variable does not exist), the CPU kind and `fdesetup status`.
pub fn os_state_from(localtime_target: Read, nvram: Read, apple_silicon: bool, fdesetup: Read) -> OsState {
    let mut unreadable = Vec::new();
    let timezone = match localtime_target.map(|t| timezone_from_localtime_target(&t).ok_or(t)) {
        Ok(Ok(tz)) => Some(tz),
        Ok(Err(target)) => {
            unreadable.push(Unreadable::new("timezone", format!("/etc/localtime points to {target} which is not under zoneinfo/")));
            None
        }
        Err(reason) => {
            unreadable.push(Unreadable::new("timezone", reason));
            None
        }
    };
    unreadable.push(Unreadable::new("pending_reboot", "macOS keeps no pending-reboot marker (only softwareupdate knows)"));
    let secure_boot = match nvram.map(|t| parse_secure_boot_policy(&t)) {
        Ok(Some(policy)) => Some(policy),
        Ok(None) => {
            unreadable.push(Unreadable::new("secure_boot", "AppleSecureBootPolicy has an unknown value"));
            None
        }
        Err(_) if apple_silicon => {
            unreadable.push(Unreadable::new("secure_boot", "Apple silicon keeps the boot policy in the LocalPolicy (bputil -d), not read"));
            None
        }
        Err(_) => Some(SecureBoot::UnsupportedByFirmware),
    };
    let root_encrypted = match fdesetup.map(|t| parse_fdesetup_status(&t)) {
        Ok(Some(on)) => Some(on),
        Ok(None) => {
            unreadable.push(Unreadable::new("root_encrypted", "fdesetup status printed an unknown state"));
            None
        }
        Err(reason) => {
            unreadable.push(Unreadable::new("root_encrypted", reason));
            None
        }
    };
    unreadable.push(Unreadable::new("filesystems_encryption", "per-volume encryption is not read on macOS; FileVault is root_encrypted"));
    OsState { timezone, pending_reboot: None, secure_boot, filesystems_encryption: None, root_encrypted, unreadable }
}

/// `nvram <guid>:AppleSecureBootPolicy` prints the name, a tab, `%02`.
pub fn parse_secure_boot_policy(text: &str) -> Option<SecureBoot> {
    match text.trim().rsplit(['\t', ' ']).next()? {
        "%02" | "%01" => Some(SecureBoot::Enabled),
        "%00" => Some(SecureBoot::Disabled),
        _ => None,
    }
}

/// `FileVault is On.` / `FileVault is Off.` / `Encryption in progress: ...`
/// / `Decryption in progress: ...`.
pub fn parse_fdesetup_status(text: &str) -> Option<bool> {
    let first = text.lines().next()?.trim();
    if first.starts_with("FileVault is On") || first.starts_with("Decryption in progress") {
        Some(true)
    } else if first.starts_with("FileVault is Off") || first.starts_with("Encryption in progress") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NVRAM: &str = include_str!("../../../tests/fixtures/os_state/macos/nvram_secure_boot_full.txt");
    const FDESETUP_ON: &str = include_str!("../../../tests/fixtures/os_state/macos/fdesetup_on_deferred.txt");
    const FDESETUP_PROGRESS: &str = include_str!("../../../tests/fixtures/os_state/macos/fdesetup_in_progress.txt");

    #[test]
    fn t2_mac_with_filevault() {
        let s = os_state_from(Ok("/var/db/timezone/zoneinfo/America/New_York".into()), Ok(NVRAM.into()), false, Ok(FDESETUP_ON.into()));
        assert_eq!(s.timezone.as_deref(), Some("America/New_York"));
        assert_eq!(s.secure_boot, Some(SecureBoot::Enabled));
        assert_eq!(s.root_encrypted, Some(true));
        let fields: Vec<&str> = s.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["pending_reboot", "filesystems_encryption"]);
    }

    #[test]
    fn apple_silicon_and_old_intel_and_garbage() {
        let nvram_missing = Err("nvram: Error getting variable: (iokit/common) data was not found".to_owned());
        let arm = os_state_from(Err("/etc/localtime: No such file".into()), nvram_missing.clone(), true, Ok(FDESETUP_PROGRESS.into()));
        assert_eq!((arm.secure_boot, arm.root_encrypted), (None, Some(false)));
        assert!(arm.unreadable.iter().any(|u| u.field == "secure_boot" && u.reason.contains("bputil")));
        let intel = os_state_from(Ok("/usr/share/zoneinfo/UTC".into()), nvram_missing, false, Ok("garbage".into()));
        assert_eq!((intel.secure_boot, intel.root_encrypted), (Some(SecureBoot::UnsupportedByFirmware), None));
        assert_eq!(parse_secure_boot_policy("x\t%00"), Some(SecureBoot::Disabled));
        assert_eq!(parse_secure_boot_policy(""), None);
        for cut in 0..NVRAM.len() {
            let _ = parse_secure_boot_policy(NVRAM.get(..cut).unwrap_or(""));
        }
    }
}
