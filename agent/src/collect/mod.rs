//! The edge between the agent and the OS: the only module that reads OS
//! files, runs OS commands or calls sysinfo. Each section is collected
//! independently; a failed section becomes a `SectionError` in the
//! inventory and never stops the others (ripgrep's "(args, errs)").
//!
//! One file or folder per section: `identity`, `system` (OS, CPU, memory,
//! filesystems, interfaces), `software/` (one module per package source),
//! `hardware/`, `netconfig/`, `users/`, `services/`, `os_state`, `updates/`
//! (one module per update source), `certificates/`. `fs` holds the bounded
//! file reads they share. Each section's Windows and macOS readers sit in
//! its `windows.rs` / `macos.rs` next to the Linux one: a tiny cfg'd call
//! that runs the OS's tool, and pure parsers compiled and tested
//! everywhere. `powershell` runs a Windows section's script and reads what
//! ConvertTo-Json emits; `json` reads fields of that JSON and of
//! `system_profiler -json`; `command` runs the macOS tools. `per_os` picks
//! the entry points of the OS the agent is built for.

pub mod certificates;
pub mod command;
pub mod fs;
pub mod hardware;
pub mod identity;
pub mod json;
pub mod netconfig;
pub mod os_state;
pub mod powershell;
pub mod services;
pub mod software;
pub mod system;
pub mod updates;
pub mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::inventory::{Inventory, Package, PackageSource, PendingUpdates, SectionError, SectionTiming, UpdateSource};

/// Collects a full inventory of the host whose filesystem is at `root`;
/// `certificate_paths` are the extra certificate files and directories of
/// the agent's configuration (read under `root` too).
pub fn inventory(root: &Path, certificate_paths: &[PathBuf]) -> (Inventory, Vec<SectionTiming>) {
    let mut inv = Inventory::default();
    let mut timings = Vec::new();
    let (errors, t) = (&mut inv.errors, &mut timings);
    inv.identity = section("identity", errors, t, || per_os::identity(root));
    inv.os = section("os", errors, t, || per_os::os(root));
    inv.cpu = section("cpu", errors, t, || per_os::cpu(root));
    inv.memory = section("memory", errors, t, || per_os::memory(root));
    inv.filesystems = section("filesystems", errors, t, || per_os::filesystems(root));
    inv.network = section("network", errors, t, || per_os::network(root));
    inv.software = timed("software", t, || software_section(software::collect_all(root), errors));
    inv.hardware = section("hardware", errors, t, || per_os::hardware(root));
    inv.netconfig = section("netconfig", errors, t, || per_os::netconfig(root));
    inv.users = section("users", errors, t, || per_os::users(root));
    inv.services = section("services", errors, t, || per_os::services(root));
    inv.os_state = section("os_state", errors, t, || per_os::os_state(root));
    inv.updates = timed("updates", t, || updates_section(updates::collect_all(root), errors));
    inv.certificates = section("certificates", errors, t, || certificates::collect(root, certificate_paths));
    inv.collected_at_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    (inv, timings)
}

/// The section entry points of the OS the agent is built for, all
/// `fn(&Path) -> Result<T>`. Linux (and any other Unix) reads under
/// `root`; the Windows and macOS ones run their OS's tools and ignore
/// `root`, since a command can only describe the running system.
#[cfg(not(any(windows, target_os = "macos")))]
mod per_os {
    pub use super::hardware::collect as hardware;
    pub use super::identity::collect as identity;
    pub use super::netconfig::collect as netconfig;
    pub use super::os_state::collect as os_state;
    pub use super::services::collect as services;
    pub use super::system::{cpu, filesystems, memory, network, os};
    pub use super::users::collect as users;
}

#[cfg(windows)]
mod per_os {
    pub use super::hardware::windows::collect as hardware;
    pub use super::identity::windows::collect as identity;
    pub use super::netconfig::windows::collect as netconfig;
    pub use super::os_state::windows::collect as os_state;
    pub use super::services::windows::collect as services;
    pub use super::system::windows::{cpu, filesystems, memory, network, os};
    pub use super::users::windows::collect as users;
}

#[cfg(target_os = "macos")]
mod per_os {
    pub use super::hardware::macos::collect as hardware;
    pub use super::identity::macos::collect as identity;
    pub use super::netconfig::macos::collect as netconfig;
    pub use super::os_state::macos::collect as os_state;
    pub use super::services::macos::collect as services;
    pub use super::system::macos::{cpu, filesystems, memory, network, os};
    pub use super::users::macos::collect as users;
}

/// Mount points and their `statvfs` for health sampling: the same real
/// filesystems the inventory lists. Unreadable mounts are left out.
pub fn health_mounts(root: &Path) -> Vec<(String, crate::health::FsStat)> {
    system::filesystems(root)
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            // `filesystems` already multiplied by the fragment size: blocks of 1 byte.
            let st = crate::health::FsStat {
                fragment_size: 1,
                blocks: f.total_bytes,
                blocks_free: f.free_bytes,
                blocks_available: f.available_bytes,
                files: f.inodes_total,
                files_free: f.inodes_free,
            };
            (f.mount_point, st)
        })
        .collect()
}

/// Failed systemd units of the running system, `None` when unknown (not
/// the live root, or no systemctl).
pub fn failed_units(root: &Path) -> Option<Vec<String>> {
    // sd_booted(3): without a running systemd, systemctl only fails slowly.
    if root != Path::new("/") || !root.join("run/systemd/system").is_dir() {
        return None;
    }
    let text = services::run_systemctl(&["--failed", "--plain", "--no-legend", "--no-pager"]).ok()?;
    crate::health::parse::parse_systemctl_failed(&text).ok()
}

fn section<T>(
    name: &'static str,
    errors: &mut Vec<SectionError>,
    timings: &mut Vec<SectionTiming>,
    f: impl FnOnce() -> Result<T>,
) -> Option<T> {
    match timed(name, timings, f) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(section = name, error = %e, "inventory section failed");
            errors.push(SectionError { section: name.to_string(), message: e.to_string() });
            None
        }
    }
}

fn timed<T>(name: &'static str, timings: &mut Vec<SectionTiming>, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = f();
    timings.push(SectionTiming { section: name, wall_micros: started.elapsed().as_micros() as u64 });
    result
}

/// Software is collected per package source: a failed source (or its
/// skipped records) becomes one `SectionError` named `software.<source>`,
/// and the packages of every other source are still reported. The section
/// is absent only when sources failed and none yielded a package.
fn software_section(
    (packages, failures): (Vec<Package>, Vec<(PackageSource, Error)>),
    errors: &mut Vec<SectionError>,
) -> Option<Vec<Package>> {
    let mut by_source: BTreeMap<PackageSource, Vec<String>> = BTreeMap::new();
    for (source, error) in failures {
        by_source.entry(source).or_default().push(error.to_string());
    }
    let failed = !by_source.is_empty();
    for (source, messages) in by_source {
        let section = format!("software.{}", source.as_str());
        tracing::warn!(section = %section, errors = messages.len(), "package source failed");
        errors.push(SectionError { section, message: messages.join("; ") });
    }
    (!failed || !packages.is_empty()).then_some(packages)
}

/// Updates are collected per update source like software: a failed source
/// is one `SectionError` named `updates.<source>`; the section is absent
/// only when sources failed and none found an update.
fn updates_section(
    (section, failures): (PendingUpdates, Vec<(UpdateSource, Error)>),
    errors: &mut Vec<SectionError>,
) -> Option<PendingUpdates> {
    let failed = !failures.is_empty();
    for (source, error) in failures {
        let name = format!("updates.{}", source.as_str());
        tracing::warn!(section = %name, error = %error, "update source failed");
        errors.push(SectionError { section: name, message: error.to_string() });
    }
    (!failed || !section.updates.is_empty()).then_some(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, source: PackageSource) -> Package {
        Package { name: name.into(), version: "1".into(), arch: None, vendor: None, source, install_time_unix_ms: None }
    }

    #[test]
    fn a_failed_package_source_is_one_error_and_keeps_the_others() {
        let mut errors = Vec::new();
        let failures = vec![
            (PackageSource::Rpm, Error::parse("rpm -qa output", Some(3), "bad line")),
            (PackageSource::Rpm, Error::parse("rpm -qa output", Some(9), "bad line")),
            (PackageSource::Snap, Error::Command { command: "snap list".into(), reason: "timed out".into() }),
        ];
        let packages = software_section((vec![pkg("bash", PackageSource::Dpkg)], failures), &mut errors);
        assert_eq!(packages.map(|p| p.len()), Some(1));
        let sections: Vec<&str> = errors.iter().map(|e| e.section.as_str()).collect();
        assert_eq!(sections, ["software.rpm", "software.snap"]);
        assert!(errors[0].message.contains("line 3") && errors[0].message.contains("line 9"), "{}", errors[0].message);
    }

    #[test]
    fn a_failed_update_source_is_one_error_and_keeps_the_others() {
        let mut errors = Vec::new();
        let found = PendingUpdates {
            updates: vec![crate::inventory::PendingUpdate {
                name: "openssl".into(),
                installed_version: Some("1".into()),
                available_version: "2".into(),
                source: UpdateSource::Apt,
                security: true,
                origin: None,
            }],
            unreadable: Vec::new(),
        };
        let failures =
            vec![(UpdateSource::Dnf, Error::Command { command: "dnf -C -q check-update".into(), reason: "exit status: 1".into() })];
        let section = updates_section((found, failures), &mut errors).expect("apt still reported");
        assert_eq!(section.updates.len(), 1);
        assert_eq!(errors[0].section, "updates.dnf");
        let failures = vec![(UpdateSource::Dnf, Error::Command { command: "dnf".into(), reason: "x".into() })];
        assert_eq!(updates_section((PendingUpdates::default(), failures), &mut errors), None);
    }

    #[test]
    fn software_is_absent_only_when_sources_failed_and_nothing_was_read() {
        let mut errors = Vec::new();
        assert_eq!(software_section((Vec::new(), Vec::new()), &mut errors), Some(Vec::new()));
        let failures = vec![(PackageSource::Dpkg, Error::parse("/var/lib/dpkg/status", None, "too large"))];
        assert_eq!(software_section((Vec::new(), failures), &mut errors), None);
        assert_eq!(errors.len(), 1);
    }
}
