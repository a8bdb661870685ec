//! OS state that matters for compliance: timezone, pending reboot, Secure
//! Boot and disk encryption. Pure domain types; `collect::os_state` fills
//! them. (OS name, version, kernel and boot time live in `inventory::system`.)

use crate::inventory::unreadable::Unreadable;

/// The OS state section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OsState {
    /// IANA zone name, e.g. `Europe/Paris`.
    pub timezone: Option<String>,
    pub pending_reboot: Option<PendingReboot>,
    pub secure_boot: Option<SecureBoot>,
    /// One entry per mounted block-device filesystem.
    pub filesystems_encryption: Option<Vec<FilesystemEncryption>>,
    /// Whether `/` sits on an encrypted device; absent when `/` is not on a
    /// block device the agent can resolve (overlay in a container, ZFS).
    pub root_encrypted: Option<bool>,
    pub unreadable: Vec<Unreadable>,
}

/// Whether the OS asks for a reboot, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingReboot {
    pub required: bool,
    /// Packages that asked for it (Debian/Ubuntu `reboot-required.pkgs`).
    pub packages: Vec<String>,
    /// How it was determined: `reboot-required-file` or `needs-restarting`.
    pub source: String,
}

/// Secure Boot as the firmware reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecureBoot {
    Enabled,
    Disabled,
    /// UEFI firmware without a `SecureBoot` variable (no support).
    UnsupportedByFirmware,
    /// Booted in legacy BIOS mode: Secure Boot does not apply.
    NotApplicableLegacyBios,
}

/// Encryption state of one mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FilesystemEncryption {
    pub mount_point: String,
    /// Source device as mounted, e.g. `/dev/mapper/vg-root`.
    pub device: String,
    pub fs_type: String,
    /// True when the device, or any device below it (LVM on LUKS), is a
    /// dm-crypt mapping.
    pub encrypted: bool,
    /// The dm-crypt mapping's name (`/dev/mapper/NAME`) when encrypted.
    pub crypt_device: Option<String>,
}
