//! Windows: the "Uninstall" registry keys that Apps & Features lists, read as
//! the text of `reg query <key> /s` for three roots: HKLM (the native view),
//! HKLM\SOFTWARE\WOW6432Node (32-bit programs on 64-bit Windows) and HKCU
//! (per-user installs). Running reg.exe needs no extra crate and keeps the
//! parser testable on every OS; only [`collect`] is Windows-only.
//!
//! `reg query /s` prints each key's full path on its own line, then one
//! `    Name    REG_TYPE    Data` line per value. A package is a direct
//! subkey of an Uninstall key that has a `DisplayName`; entries marked
//! `SystemComponent`=1 (hidden by Windows itself) and entries with a
//! `ParentKeyName` (updates of another product) are left out, as Apps &
//! Features does. `DisplayVersion` is the version, `Publisher` the vendor,
//! `InstallDate` (YYYYMMDD, local date) becomes 00:00 UTC that day. The
//! architecture comes from the key: the native architecture for HKLM, x86
//! for WOW6432Node, none for HKCU (a per-user install says nothing about it).
//!
//! Installers write `InstallDate` freely (`2024/06/25`, nothing at all): a
//! date that is not YYYYMMDD gives no install time, not an error. A line that
//! is neither a key nor a value (a cut or garbled output) skips its entry,
//! with one error naming the line. reg.exe writes in the console code page,
//! decoded here as UTF-8 with replacement: non-ASCII names may be altered.

use crate::error::Error;
use crate::inventory::software::{Package, PackageSource};

use super::{Listing, unix_ms_of_date};

/// The three Uninstall roots, in the form reg.exe takes them.
pub const UNINSTALL_KEYS: [&str; 3] = [
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
    r"HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall",
];

const WHAT: &str = "reg query output";

/// Registry value types as reg.exe names them.
const VALUE_TYPES: [&str; 12] = [
    "REG_SZ",
    "REG_EXPAND_SZ",
    "REG_MULTI_SZ",
    "REG_DWORD",
    "REG_QWORD",
    "REG_BINARY",
    "REG_NONE",
    "REG_DWORD_BIG_ENDIAN",
    "REG_LINK",
    "REG_RESOURCE_LIST",
    "REG_FULL_RESOURCE_DESCRIPTOR",
    "REG_RESOURCE_REQUIREMENTS_LIST",
];

/// Runs the Windows source: every Uninstall root that exists, each one's
/// failure reported without hiding the others.
#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> crate::error::Result<Option<Listing>> {
    let native = native_arch();
    let mut listing = Listing::default();
    for key in UNINSTALL_KEYS {
        match read_uninstall_key(key) {
            Ok(Some(text)) => listing.extend(parse_reg_query(&text, native)),
            Ok(None) => {}
            Err(error) => listing.skip(error),
        }
    }
    Ok(Some(listing))
}

/// Runs `reg query <key> /s`. `Ok(None)` when the key does not exist (HKCU
/// of a user who never installed anything per user).
#[cfg(windows)]
pub fn read_uninstall_key(key: &str) -> crate::error::Result<Option<String>> {
    match super::run_command("reg", &["query", key, "/s"], &[], 64 * 1024 * 1024) {
        Err(Error::Command { reason, .. }) if reason.contains("unable to find") => Ok(None),
        other => other,
    }
}

/// The label Windows uses for the architecture of this (native) build.
#[cfg(windows)]
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "x86",
        other => other,
    }
}

/// Parses `reg query <Uninstall key> /s` output (any of the three roots, or
/// several concatenated). `native_arch` labels packages of the native HKLM
/// view ("x64" on 64-bit Intel Windows).
pub fn parse_reg_query(text: &str, native_arch: &str) -> Listing {
    let mut listing = Listing::default();
    let mut current: Option<Entry<'_>> = None;
    let mut in_other_key = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() || line.starts_with("End of search") {
            continue;
        }
        if line.starts_with("HKEY_") {
            if let Some(entry) = current.take() {
                entry.finish(&mut listing);
            }
            current = Entry::for_key(line.trim_end(), native_arch);
            in_other_key = current.is_none();
            continue;
        }
        let parsed = line.strip_prefix("    ").ok_or_else(|| format!("{line:?} is neither a key nor a value")).and_then(parse_value);
        match (&mut current, parsed) {
            (Some(entry), Ok((name, data))) => entry.set(name, data),
            (Some(entry), Err(reason)) => {
                entry.failure.get_or_insert((number, reason));
            }
            (None, Ok(_)) if in_other_key => {}
            (None, Ok(_)) => listing.skip(Error::parse(WHAT, Some(number), "value line before any key line")),
            (None, Err(reason)) => listing.skip(Error::parse(WHAT, Some(number), reason)),
        }
    }
    if let Some(entry) = current {
        entry.finish(&mut listing);
    }
    listing
}

/// `Name    REG_TYPE    Data` (leading indentation removed) into name and
/// data. The name may contain single spaces ("Inno Setup: App Path"); the
/// four-space run before `REG_` separates it.
fn parse_value(rest: &str) -> Result<(&str, &str), String> {
    let (name, typed) = rest.split_once("    REG_").ok_or_else(|| format!("value line {rest:?} has no REG_ type"))?;
    let (kind, data) = typed.split_once("    ").unwrap_or((typed, ""));
    if !VALUE_TYPES.iter().any(|t| t.strip_prefix("REG_") == Some(kind)) {
        return Err(format!("value {name:?} has unknown type REG_{kind}"));
    }
    Ok((name, data))
}

struct Entry<'a> {
    arch: Option<&'a str>,
    display_name: Option<&'a str>,
    display_version: Option<&'a str>,
    publisher: Option<&'a str>,
    install_date: Option<&'a str>,
    system_component: bool,
    has_parent: bool,
    failure: Option<(usize, String)>,
}

impl<'a> Entry<'a> {
    /// An entry for a direct subkey of an Uninstall key, `None` for the
    /// Uninstall key itself or a deeper subkey (whose values are ignored).
    fn for_key(key: &str, native_arch: &'a str) -> Option<Entry<'a>> {
        const UNINSTALL: &str = r"\uninstall\";
        let lower = key.to_ascii_lowercase();
        let after = lower.find(UNINSTALL).and_then(|at| lower.get(at + UNINSTALL.len()..))?;
        if after.is_empty() || after.contains('\\') {
            return None;
        }
        let arch = if lower.starts_with(r"hkey_local_machine\") {
            Some(if lower.contains(r"\wow6432node\") { "x86" } else { native_arch })
        } else {
            None
        };
        Some(Entry {
            arch,
            display_name: None,
            display_version: None,
            publisher: None,
            install_date: None,
            system_component: false,
            has_parent: false,
            failure: None,
        })
    }

    fn set(&mut self, name: &str, data: &'a str) {
        let data = data.trim();
        // Registry value names are case-insensitive.
        if name.eq_ignore_ascii_case("DisplayName") {
            self.display_name = Some(data);
        } else if name.eq_ignore_ascii_case("DisplayVersion") {
            self.display_version = Some(data);
        } else if name.eq_ignore_ascii_case("Publisher") {
            self.publisher = Some(data);
        } else if name.eq_ignore_ascii_case("InstallDate") {
            self.install_date = Some(data);
        } else if name.eq_ignore_ascii_case("SystemComponent") {
            self.system_component = dword(data).is_some_and(|v| v != 0);
        } else if name.eq_ignore_ascii_case("ParentKeyName") {
            self.has_parent = !data.is_empty();
        }
    }

    fn finish(self, listing: &mut Listing) {
        if let Some((line, reason)) = self.failure {
            let entry = self.display_name.map(|n| format!("entry {n:?}: ")).unwrap_or_default();
            listing.skip(Error::parse(WHAT, Some(line), format!("{entry}{reason}")));
            return;
        }
        let Some(name) = self.display_name.filter(|n| !n.is_empty()) else {
            return;
        };
        if self.system_component || self.has_parent {
            return;
        }
        listing.packages.push(Package {
            name: name.to_owned(),
            version: self.display_version.unwrap_or("").to_owned(),
            arch: self.arch.map(str::to_owned),
            vendor: self.publisher.filter(|p| !p.is_empty()).map(str::to_owned),
            source: PackageSource::WindowsRegistry,
            install_time_unix_ms: self.install_date.and_then(install_date_unix_ms),
        });
    }
}

/// A REG_DWORD as reg.exe prints it (`0x1`).
fn dword(data: &str) -> Option<u64> {
    u64::from_str_radix(data.strip_prefix("0x").or_else(|| data.strip_prefix("0X"))?, 16).ok()
}

/// `YYYYMMDD` to Unix milliseconds at 00:00 UTC; anything else is `None`.
fn install_date_unix_ms(date: &str) -> Option<i64> {
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = date.get(0..4)?.parse().ok()?;
    let month = date.get(4..6)?.parse().ok()?;
    let day = date.get(6..8)?.parse().ok()?;
    unix_ms_of_date(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNINSTALL: &str = include_str!("../../../tests/fixtures/software/reg-query-uninstall.txt");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/software/reg-query-truncated.txt");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/software/reg-query-malformed.txt");

    fn find<'p>(packages: &'p [Package], name: &str) -> &'p Package {
        packages.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{name} missing from {packages:#?}"))
    }

    #[test]
    fn fixture_has_crlf_line_endings() {
        assert!(UNINSTALL.contains("\r\n"));
    }

    #[test]
    fn lists_visible_entries_of_all_three_roots() {
        let listing = parse_reg_query(UNINSTALL, "x64");
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        let mut names: Vec<&str> = listing.packages.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "7-Zip 23.01",
                "7-Zip 23.01 (x64)",
                "Adobe Acrobat Reader",
                "Git",
                "Microsoft OneDrive",
                "Microsoft Visual Studio Code (User)",
                "Mozilla Firefox (x64 en-US)",
                "Spotify",
                "Steam",
                "WinRAR 7.01 (64-bit)",
            ]
        );
    }

    #[test]
    fn fields_architectures_and_dates() {
        let listing = parse_reg_query(UNINSTALL, "x64");
        let git = find(&listing.packages, "Git");
        assert_eq!(git.version, "2.45.2");
        assert_eq!(git.vendor.as_deref(), Some("The Git Development Community"));
        assert_eq!(git.arch.as_deref(), Some("x64"));
        assert_eq!(git.install_time_unix_ms, Some(1_718_668_800_000), "2024-06-18T00:00:00Z");
        assert_eq!(git.source, PackageSource::WindowsRegistry);
        let reader = find(&listing.packages, "Adobe Acrobat Reader");
        assert_eq!((reader.arch.as_deref(), reader.install_time_unix_ms), (Some("x86"), Some(1_718_236_800_000)));
        assert_eq!(find(&listing.packages, "7-Zip 23.01").arch.as_deref(), Some("x86"));
        let code = find(&listing.packages, "Microsoft Visual Studio Code (User)");
        assert_eq!((code.arch.as_deref(), code.version.as_str()), (None, "1.90.2"));
        let firefox = find(&listing.packages, "Mozilla Firefox (x64 en-US)");
        assert_eq!(firefox.install_time_unix_ms, None, "2024/06/25 is not YYYYMMDD");
        assert_eq!(parse_reg_query(UNINSTALL, "arm64").packages[0].arch.as_deref(), Some("arm64"));
    }

    #[test]
    fn line_endings_do_not_matter() {
        let lf = UNINSTALL.replace("\r\n", "\n");
        assert_eq!(parse_reg_query(&lf, "x64").packages, parse_reg_query(UNINSTALL, "x64").packages);
    }

    #[test]
    fn truncated_output_drops_the_cut_entry_with_its_line() {
        let listing = parse_reg_query(TRUNCATED, "x64");
        assert_eq!(listing.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["7-Zip 23.01 (x64)"]);
        assert_eq!(listing.errors.len(), 1);
        let message = listing.errors[0].to_string();
        assert!(message.contains("reg query output at line 11") && message.contains("\"Git\""), "{message}");
    }

    #[test]
    fn malformed_lines_are_reported_one_error_each() {
        let listing = parse_reg_query(MALFORMED, "x64");
        let names: Vec<&str> = listing.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["7-Zip 23.01 (x64)", "Fine App"]);
        assert_eq!(listing.packages[1].install_time_unix_ms, None, "month 13 is no date");
        let messages: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("line 1") && messages[0].contains("before any key"), "{}", messages[0]);
        assert!(messages[1].contains("line 9") && messages[1].contains("Broken App"), "{}", messages[1]);
        assert!(messages[2].contains("line 13") && messages[2].contains("no REG_ type"), "{}", messages[2]);
    }

    #[test]
    fn install_dates() {
        assert_eq!(install_date_unix_ms("19700101"), Some(0));
        assert_eq!(install_date_unix_ms("20240229"), Some(1_709_164_800_000));
        assert_eq!(install_date_unix_ms("20230229"), None);
        assert_eq!(install_date_unix_ms("2024061"), None);
        assert_eq!(install_date_unix_ms("２０２４０６１８"), None);
    }
}
