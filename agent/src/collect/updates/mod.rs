//! Pending updates, one module per update source: `apt` (the local package
//! lists read directly, no subprocess), `dnf` (or yum), `apk`, `pacman`,
//! and behind cfg `windows` (Windows Update agent) and `macos`
//! (softwareupdate). Every parser compiles and is tested on every OS
//! against `tests/fixtures/updates/`.
//!
//! Invariants, as in `collect::software`:
//! - `Ok(None)` from a source means "not on this host", not an error.
//!   Command sources run only when `root` is "/".
//! - Sources never refresh metadata (no `apt-get update`, `dnf -C`): the
//!   answer is as fresh as the host's own last refresh.
//! - One failed source is one `SectionError` (`updates.<source>`); the
//!   others are still reported ([`collect_all`]).

pub mod apk;
pub mod apt;
pub mod dnf;
pub mod macos;
pub mod pacman;
pub mod windows;

use std::path::Path;

use crate::error::{Error, Result};
use crate::inventory::unreadable::Unreadable;
use crate::inventory::updates::{PendingUpdate, PendingUpdates, UpdateSource};

/// What one source found.
#[derive(Debug, Default, Clone)]
pub struct SourceUpdates {
    pub updates: Vec<PendingUpdate>,
    /// Parts of the source that could not be taken into account.
    pub unreadable: Vec<Unreadable>,
}

/// Runs every update source that belongs on this OS: the section (sorted)
/// plus one entry per failed source.
pub fn collect_all(root: &Path) -> (PendingUpdates, Vec<(UpdateSource, Error)>) {
    let mut section = PendingUpdates::default();
    let mut errors = Vec::new();
    for (source, result) in run_sources(root) {
        match result {
            Ok(None) => {}
            Ok(Some(found)) => {
                section.updates.extend(found.updates);
                section
                    .unreadable
                    .extend(found.unreadable.into_iter().map(|u| Unreadable::new(format!("{}.{}", source.as_str(), u.field), u.reason)));
            }
            Err(error) => errors.push((source, error)),
        }
    }
    section.updates.sort_by(|a, b| (a.source, &a.name, &a.available_version).cmp(&(b.source, &b.name, &b.available_version)));
    (section, errors)
}

type SourceResult = (UpdateSource, Result<Option<SourceUpdates>>);

#[cfg(target_os = "linux")]
fn run_sources(root: &Path) -> Vec<SourceResult> {
    vec![
        (UpdateSource::Apt, apt::collect(root)),
        (UpdateSource::Dnf, dnf::collect(root)),
        (UpdateSource::Apk, apk::collect(root)),
        (UpdateSource::Pacman, pacman::collect(root)),
    ]
}

#[cfg(windows)]
fn run_sources(root: &Path) -> Vec<SourceResult> {
    vec![(UpdateSource::WindowsUpdate, windows::collect(root))]
}

#[cfg(target_os = "macos")]
fn run_sources(root: &Path) -> Vec<SourceResult> {
    vec![(UpdateSource::MacSoftwareUpdate, macos::collect(root))]
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
fn run_sources(_root: &Path) -> Vec<SourceResult> {
    Vec::new()
}

#[cfg(test)]
pub(crate) mod tests {
    /// A text fixture of `tests/fixtures/updates/`.
    pub fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/updates").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
    }
}
