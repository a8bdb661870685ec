//! Host identity: the stable host UUID, hostname, FQDN and DNS domain.
//! Pure domain types; `collect::identity` fills them.
//!
//! Invariant: `uuid` and `uuid_source` are both present or both absent;
//! every absent field has an entry in `unreadable`.

use crate::inventory::unreadable::Unreadable;

/// Where the host UUID came from, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum UuidSource {
    /// SMBIOS system UUID (`/sys/class/dmi/id/product_uuid`), lower-cased.
    /// Survives an OS reinstall; needs root to read on Linux.
    #[serde(rename = "dmi")]
    Dmi,
    /// systemd/dbus machine id (`/etc/machine-id`), 32 lower-case hex digits.
    /// Changes when the OS is reinstalled or the image is re-sealed.
    #[serde(rename = "machine-id")]
    MachineId,
    /// Windows `Win32_ComputerSystemProduct.UUID` (SMBIOS UUID).
    #[serde(rename = "smbios")]
    Smbios,
    /// macOS `IOPlatformUUID` (`platform_UUID` in system_profiler).
    #[serde(rename = "io-platform-uuid")]
    IoPlatformUuid,
    /// Windows `MachineGuid` (HKLM\SOFTWARE\Microsoft\Cryptography), used
    /// when the SMBIOS UUID is missing or a placeholder. Changes when
    /// Windows is reinstalled or the image is sysprepped.
    #[serde(rename = "machine-guid")]
    WindowsMachineGuid,
}

impl UuidSource {
    /// The name used in JSON and on the wire; the same as the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            UuidSource::Dmi => "dmi",
            UuidSource::MachineId => "machine-id",
            UuidSource::Smbios => "smbios",
            UuidSource::IoPlatformUuid => "io-platform-uuid",
            UuidSource::WindowsMachineGuid => "machine-guid",
        }
    }
}

/// Who this host is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostIdentity {
    pub uuid: Option<String>,
    pub uuid_source: Option<UuidSource>,
    /// The kernel host name (`/proc/sys/kernel/hostname`), as configured.
    pub hostname: Option<String>,
    /// Fully qualified name: the host name itself when it contains a dot,
    /// else the canonical name of the `/etc/hosts` entry that lists it.
    /// Never guessed from resolv.conf `search`/`domain`: those say where
    /// the resolver looks, not what this host is called.
    pub fqdn: Option<String>,
    /// DNS domain: the FQDN after its first label; else the kernel
    /// domainname when set (it is the NIS domain on most systems).
    pub domain: Option<String>,
    pub unreadable: Vec<Unreadable>,
}
