//! Installed software: one `Package` per package-manager entry.
//! Pure domain types; the parsers that produce them live in `collect::software`.

/// Where a package record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageSource {
    Dpkg,
    Rpm,
    Apk,
    Pacman,
    Snap,
    Flatpak,
    /// Windows "Uninstall" registry keys (HKLM, HKLM\...\WOW6432Node, HKCU).
    WindowsRegistry,
    /// macOS application bundle (`/Applications/*.app/Contents/Info.plist`).
    MacApp,
    /// macOS installer package receipt (`/var/db/receipts/*.plist`).
    MacPkgReceipt,
}

impl PackageSource {
    /// The name used in JSON, on the wire and in section names
    /// (`software.rpm`); the same as the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageSource::Dpkg => "dpkg",
            PackageSource::Rpm => "rpm",
            PackageSource::Apk => "apk",
            PackageSource::Pacman => "pacman",
            PackageSource::Snap => "snap",
            PackageSource::Flatpak => "flatpak",
            PackageSource::WindowsRegistry => "windows_registry",
            PackageSource::MacApp => "mac_app",
            PackageSource::MacPkgReceipt => "mac_pkg_receipt",
        }
    }
}

/// One installed package as its package manager describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Package {
    /// Package name as the package manager spells it (dpkg: `Package`).
    pub name: String,
    /// Version exactly as the package manager prints it (dpkg: `Version`,
    /// with epoch; rpm: `[epoch:]version-release`).
    pub version: String,
    /// Architecture (dpkg `Architecture`, rpm `%{ARCH}`), when the source has one.
    pub arch: Option<String>,
    /// Vendor, publisher or maintainer, when the source has one.
    pub vendor: Option<String>,
    pub source: PackageSource,
    /// Install time, Unix milliseconds, when the source records it.
    pub install_time_unix_ms: Option<i64>,
}
