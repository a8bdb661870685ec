//! Pending updates: installed packages with a newer version available, per
//! package manager, with security updates marked where the source says so.
//! Pure domain types; `collect::updates` fills them.
//!
//! Invariant: `updates` is sorted by (source, name, available version) and a
//! source that could not be asked is an error of the inventory
//! (`updates.<source>`), never an empty list that reads as "up to date".

use crate::inventory::unreadable::Unreadable;

/// Which package manager or update service offers the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateSource {
    /// APT, from the local package lists (`/var/lib/apt/lists`).
    Apt,
    /// `dnf check-update` (or `yum` where dnf is missing).
    Dnf,
    /// `apk version -l '<'`.
    Apk,
    /// `pacman -Qu`.
    Pacman,
    /// The Windows Update agent's searcher (`IsInstalled=0`).
    WindowsUpdate,
    /// macOS `softwareupdate --list`.
    MacSoftwareUpdate,
}

impl UpdateSource {
    /// The name used in JSON, on the wire and in section names
    /// (`updates.dnf`); the same as the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateSource::Apt => "apt",
            UpdateSource::Dnf => "dnf",
            UpdateSource::Apk => "apk",
            UpdateSource::Pacman => "pacman",
            UpdateSource::WindowsUpdate => "windows_update",
            UpdateSource::MacSoftwareUpdate => "mac_softwareupdate",
        }
    }
}

/// One available update.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingUpdate {
    /// Package name (apt, dnf, apk, pacman), update title (Windows) or
    /// label (macOS).
    pub name: String,
    /// Installed version, when the source says it (dnf check-update,
    /// Windows Update and softwareupdate do not).
    pub installed_version: Option<String>,
    /// The version that would be installed; for Windows Update the KB
    /// article ids ("KB5034441").
    pub available_version: String,
    pub source: UpdateSource,
    /// The source marks it as a security update (apt: from a `-security`
    /// suite or a "Security" label; dnf: updateinfo type security; Windows:
    /// an MSRC severity; macOS: "Security" in the title).
    pub security: bool,
    /// Where it comes from when the source says it: apt `Origin/suite`, dnf
    /// repository id, Windows MSRC severity.
    pub origin: Option<String>,
}

/// The pending-updates section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PendingUpdates {
    pub updates: Vec<PendingUpdate>,
    /// What could not be taken into account (e.g. compressed apt lists).
    pub unreadable: Vec<Unreadable>,
}

impl PendingUpdates {
    /// How many updates are marked as security updates.
    pub fn security_count(&self) -> usize {
        self.updates.iter().filter(|u| u.security).count()
    }
}
