//! pacman (Arch): the local database `/var/lib/pacman/local/<name>-<version>/desc`,
//! read directly, one directory per installed package. A `desc` file is a
//! list of `%SECTION%` headers, each followed by its value lines and a blank
//! line; `%NAME%`, `%VERSION%`, `%ARCH%`, `%PACKAGER%` (the vendor) and
//! `%INSTALLDATE%` (Unix seconds) are used.
//!
//! Each package is its own file, so a bad one (unreadable, no `desc`, a line
//! outside any section, no name or version, a non-numeric install date) is
//! skipped with one error naming the file and line; the others are kept.

use std::path::{Path, PathBuf};

use super::{Listing, read_bounded, under_root, unix_ms_of_seconds};
use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

pub const LOCAL_DB_DIR: &str = "/var/lib/pacman/local";

/// A `desc` file is a few KiB; anything this big is not one.
pub const MAX_DESC_BYTES: u64 = 1024 * 1024;

/// The `desc` of one package directory, or why it could not be read.
#[derive(Debug)]
pub struct DescFile {
    pub path: PathBuf,
    pub text: Result<String>,
}

/// Runs the pacman source on `root`: `Ok(None)` when there is no local database.
pub fn collect(root: &Path) -> Result<Option<Listing>> {
    Ok(read_local_db(root)?.map(parse_desc_files))
}

/// Reads the `desc` file of every package directory, sorted by directory
/// name. `Ok(None)` when the local database directory does not exist.
pub fn read_local_db(root: &Path) -> Result<Option<Vec<DescFile>>> {
    let dir = under_root(root, LOCAL_DB_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    let mut package_dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
        // Skip ALPM_DB_VERSION and any other plain file.
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            package_dirs.push(entry.path());
        }
    }
    package_dirs.sort();
    Ok(Some(
        package_dirs
            .into_iter()
            .map(|package_dir| {
                let path = package_dir.join("desc");
                let text = read_bounded(&path, MAX_DESC_BYTES).and_then(|text| {
                    text.ok_or_else(|| Error::parse(path.display().to_string(), None, "package directory has no desc file"))
                });
                DescFile { path, text }
            })
            .collect(),
    ))
}

/// Parses every `desc` file read; unreadable and malformed ones become errors.
pub fn parse_desc_files(files: Vec<DescFile>) -> Listing {
    let mut listing = Listing::with_capacity(files.len());
    for file in files {
        match file.text.and_then(|text| parse_desc(&text, &file.path.display().to_string())) {
            Ok(package) => listing.packages.push(package),
            Err(error) => listing.skip(error),
        }
    }
    listing
}

/// Parses one `desc` file; `origin` names it in errors.
pub fn parse_desc(text: &str, origin: &str) -> Result<Package> {
    let mut section: Option<&str> = None;
    let mut name = None;
    let mut version = None;
    let mut arch = None;
    let mut packager = None;
    let mut install_date: Option<(usize, &str)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.is_empty() {
            section = None;
            continue;
        }
        let Some(current) = section else {
            let header = line.strip_prefix('%').and_then(|l| l.strip_suffix('%')).filter(|h| !h.is_empty());
            match header {
                Some(header) => section = Some(header),
                None => {
                    return Err(Error::parse(origin, Some(number), format!("{line:?} is not a %SECTION% header")));
                }
            }
            continue;
        };
        // Multi-valued sections (%DEPENDS%, %LICENSE%) keep their first line
        // here; none of those is used.
        let slot = match current {
            "NAME" => &mut name,
            "VERSION" => &mut version,
            "ARCH" => &mut arch,
            "PACKAGER" => &mut packager,
            "INSTALLDATE" => {
                install_date.get_or_insert((number, line));
                continue;
            }
            _ => continue,
        };
        slot.get_or_insert(line);
    }
    let name = name.ok_or_else(|| Error::parse(origin, None, "no %NAME% section"))?;
    let version = version.ok_or_else(|| Error::parse(origin, None, format!("package {name} has no %VERSION% section")))?;
    let install_time_unix_ms = match install_date {
        None => None,
        Some((line, seconds)) => Some(
            unix_ms_of_seconds(seconds)
                .ok_or_else(|| Error::parse(origin, Some(line), format!("package {name}: %INSTALLDATE% {seconds:?} is not a Unix time")))?,
        ),
    };
    Ok(Package {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: arch.map(str::to_owned),
        vendor: packager.map(str::to_owned),
        source: PackageSource::Pacman,
        install_time_unix_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: &str = include_str!("../../../tests/fixtures/software/pacman-root/var/lib/pacman/local/linux-6.9.7.arch1-1/desc");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/software/pacman-desc-truncated");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/software/pacman-desc-malformed");

    fn fixture_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/software/pacman-root")
    }

    #[test]
    fn parses_a_real_desc() {
        let package = parse_desc(LINUX, "desc").expect("fixture is valid");
        assert_eq!(package.name, "linux");
        assert_eq!(package.version, "6.9.7.arch1-1");
        assert_eq!(package.arch.as_deref(), Some("x86_64"));
        assert_eq!(package.vendor.as_deref(), Some("Jan Alexander Steffens (heftig) <heftig@archlinux.org>"));
        assert_eq!(package.install_time_unix_ms, Some(1_719_560_212_000));
        assert_eq!(package.source, PackageSource::Pacman);
    }

    #[test]
    fn truncated_desc_names_the_cut_line() {
        let message = parse_desc(TRUNCATED, "local/firefox-127.0.2-1/desc").expect_err("cut header").to_string();
        assert!(message.contains("local/firefox-127.0.2-1/desc at line 10") && message.contains("%INSTALL"), "{message}");
    }

    #[test]
    fn malformed_desc_names_the_stray_line() {
        let message = parse_desc(MALFORMED, "desc").expect_err("stray line").to_string();
        assert!(message.contains("line 7") && message.contains("stray line"), "{message}");
        let no_version = parse_desc("%NAME%\nfirefox\n", "desc").expect_err("no version").to_string();
        assert!(no_version.contains("firefox has no %VERSION%"), "{no_version}");
    }

    #[test]
    fn collects_a_fixture_database_skipping_bad_packages() {
        let listing = collect(&fixture_root()).expect("fixture reads").expect("pacman is present");
        let names: Vec<&str> = listing.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["glibc", "lib32-glibc", "linux", "noinstalldate", "python", "yay"]);
        let yay = &listing.packages[5];
        assert_eq!((yay.version.as_str(), yay.vendor.as_deref()), ("1:12.3.5-1", Some("Unknown Packager")));
        let anyarch = &listing.packages[3];
        assert_eq!((anyarch.arch.as_deref(), anyarch.install_time_unix_ms), (Some("any"), None));
        let messages: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("broken-1.0-1/desc at line 11") && messages[0].contains("last tuesday"), "{}", messages[0]);
        assert!(messages[1].contains("halfremoved-0.9-1/desc") && messages[1].contains("no desc"), "{}", messages[1]);
    }

    #[test]
    fn missing_database_is_absent() {
        assert!(collect(&fixture_root().join("nowhere")).expect("absent is not an error").is_none());
    }
}
