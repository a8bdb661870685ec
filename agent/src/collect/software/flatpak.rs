//! flatpak: the output of `flatpak list --columns=application,version,arch`
//! (applications and runtimes, system-wide and per-user installations). With
//! stdout not a terminal, and FLATPAK_FANCY_OUTPUT=0 to be sure, flatpak
//! prints no header and separates cells with tabs; the reader asks the
//! `flatpak` command, so it can only describe the running system.
//!
//! The package name is the application ID (`org.mozilla.firefox`), the one
//! name flatpak itself accepts. Many runtimes carry no version: the version
//! is then empty, as flatpak prints it (the branch is not a version). The
//! origin remote is where it was downloaded from, not who made it, so there is
//! no vendor; flatpak records no install time. The same ID installed both
//! system-wide and per user is listed twice, as flatpak does.
//!
//! A line without exactly three cells, or without an ID, is skipped with one
//! error naming the line; the others are kept.

use std::path::Path;

use super::{Listing, is_live_root, run_command};
use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

/// Column names as documented in flatpak-list(1), in the order parsed.
pub const COLUMNS: &str = "application,version,arch";

const MAX_OUTPUT_BYTES: u64 = 8 * 1024 * 1024;
const WHAT: &str = "flatpak list output";

/// Runs the flatpak source: `Ok(None)` when `flatpak` is not installed or
/// `root` is not the running system's.
pub fn collect(root: &Path) -> Result<Option<Listing>> {
    if !is_live_root(root) {
        return Ok(None);
    }
    Ok(read_flatpak_list()?.map(|text| parse_flatpak_list(&text)))
}

/// Runs `flatpak list --columns=application,version,arch`; `Ok(None)` when
/// flatpak is not installed.
pub fn read_flatpak_list() -> Result<Option<String>> {
    // FLATPAK_FANCY_OUTPUT=0 makes the plain tab-separated form explicit
    // rather than inferred from stdout being a pipe.
    let columns = format!("--columns={COLUMNS}");
    run_command("flatpak", &["list", &columns], &[("FLATPAK_FANCY_OUTPUT", "0")], MAX_OUTPUT_BYTES)
}

/// Parses tab-separated `application, version, arch` lines.
pub fn parse_flatpak_list(text: &str) -> Listing {
    let mut listing = Listing::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut cells = line.split('\t');
        match (cells.next(), cells.next(), cells.next(), cells.next()) {
            (Some(id), Some(version), Some(arch), None) if !id.trim().is_empty() => {
                listing.packages.push(Package {
                    name: id.trim().to_owned(),
                    version: version.trim().to_owned(),
                    arch: Some(arch.trim()).filter(|a| !a.is_empty()).map(str::to_owned),
                    vendor: None,
                    source: PackageSource::Flatpak,
                    install_time_unix_ms: None,
                });
            }
            _ => listing.skip(Error::parse(
                WHAT,
                Some(index + 1),
                format!("expected 3 tab-separated cells (application, version, arch) with an ID, got {line:?}"),
            )),
        }
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = include_str!("../../../tests/fixtures/software/flatpak-list.txt");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/software/flatpak-list-truncated.txt");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/software/flatpak-list-malformed.txt");

    #[test]
    fn parses_apps_and_runtimes() {
        let listing = parse_flatpak_list(LIST);
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        assert_eq!(listing.packages.len(), LIST.lines().count());
        let firefox = &listing.packages[0];
        assert_eq!(firefox.name, "org.mozilla.firefox");
        assert_eq!(firefox.version, "127.0.2");
        assert_eq!(firefox.arch.as_deref(), Some("x86_64"));
        assert_eq!((firefox.vendor.as_deref(), firefox.source), (None, PackageSource::Flatpak));
        let gnome = listing.packages.iter().find(|p| p.name == "org.gnome.Platform").expect("runtime listed");
        assert_eq!(gnome.version, "", "runtimes without a version keep an empty one");
        let gl32 = listing.packages.iter().find(|p| p.name.ends_with("GL32.default")).expect("i386 runtime");
        assert_eq!(gl32.arch.as_deref(), Some("i386"));
        let firefoxes: Vec<&str> =
            listing.packages.iter().filter(|p| p.name == "org.mozilla.firefox").map(|p| p.version.as_str()).collect();
        assert_eq!(firefoxes, ["127.0.2", "128.0b9"], "system and user installations both listed");
    }

    #[test]
    fn truncated_line_is_reported() {
        let listing = parse_flatpak_list(TRUNCATED);
        assert_eq!(listing.packages.len(), 2);
        assert_eq!(listing.errors.len(), 1);
        assert!(listing.errors[0].to_string().contains("flatpak list output at line 3"), "{}", listing.errors[0]);
    }

    #[test]
    fn malformed_lines_are_skipped_one_error_each() {
        let listing = parse_flatpak_list(MALFORMED);
        let names: Vec<&str> = listing.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["org.mozilla.firefox", "org.gnome.Platform"]);
        let lines: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        for (message, line) in lines.iter().zip([2, 3, 4]) {
            assert!(message.contains(&format!("line {line}")), "{message}");
        }
    }
}
