//! rpm (Fedora, RHEL, SUSE): the output of `rpm -qa --queryformat` with one
//! tab-separated line per package (name, epoch, version, release, arch,
//! vendor, install time). The rpm database formats (BerkeleyDB, ndb, sqlite)
//! are rpm's business, so the reader asks rpm rather than opening them.
//!
//! Version is `[epoch:]version-release`, the epoch left out only when rpm
//! prints `(none)` for it (an explicit epoch 0 is kept, as rpm recorded it).
//! rpm prints `(none)` for every missing tag; those become `None`. The
//! `gpg-pubkey` pseudo-packages that `rpm -qa` lists are kept: they are what
//! rpm says is installed, and they show which signing keys a host trusts.
//!
//! Bad lines (wrong number of fields, a non-numeric epoch or install time, no
//! name — e.g. a line cut short or an rpmdb warning on stdout) are skipped,
//! one error each naming the line; the other packages are kept.

use std::path::Path;

use super::{Listing, is_live_root, run_command, under_root, unix_ms_of_seconds};
use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

/// The query, one line per package; parse_query_output expects these fields in
/// this order.
pub const QUERY_FORMAT: &str = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{VENDOR}\\t%{INSTALLTIME}\\n";

/// Where rpm keeps its database (old and new location), relative to root.
const DATABASE_DIRS: [&str; 2] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"];

/// Database files of rpm's backends: sqlite (rpm >= 4.16), bdb, ndb.
const DATABASE_FILES: [&str; 3] = ["rpmdb.sqlite", "Packages", "Packages.db"];

/// 10,000 packages print about 1 MiB; refuse absurd output.
const MAX_OUTPUT_BYTES: u64 = 32 * 1024 * 1024;

const WHAT: &str = "rpm -qa output";

/// Runs the rpm source: `Ok(None)` when `root` has no rpm database or the
/// `rpm` command is not installed (rpm can be installed on a Debian host
/// without managing anything).
pub fn collect(root: &Path) -> Result<Option<Listing>> {
    // A database file, not just the directory: installing the rpm tool on
    // a Debian host creates an empty /var/lib/rpm, and spawning rpm there
    // costs tens of milliseconds to learn nothing.
    if !DATABASE_DIRS.iter().any(|dir| {
        DATABASE_FILES.iter().any(|file| std::fs::metadata(under_root(root, dir).join(file)).is_ok_and(|m| m.is_file() && m.len() > 0))
    }) {
        return Ok(None);
    }
    Ok(read_query_output(root)?.map(|text| parse_query_output(&text)))
}

/// Runs `rpm -qa --queryformat QUERY_FORMAT` (with `--root` when `root` is
/// not "/"). `Ok(None)` when rpm is not installed.
pub fn read_query_output(root: &Path) -> Result<Option<String>> {
    let root_text = root.display().to_string();
    let mut args = Vec::with_capacity(5);
    if !is_live_root(root) {
        args.extend(["--root", root_text.as_str()]);
    }
    args.extend(["-qa", "--queryformat", QUERY_FORMAT]);
    run_command("rpm", &args, &[], MAX_OUTPUT_BYTES)
}

/// Parses the output of `rpm -qa --queryformat QUERY_FORMAT`.
pub fn parse_query_output(text: &str) -> Listing {
    let mut listing = Listing::with_capacity(text.len() / 80);
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(package) => listing.packages.push(package),
            Err(reason) => listing.skip(Error::parse(WHAT, Some(index + 1), reason)),
        }
    }
    listing
}

fn parse_line(line: &str) -> Result<Package, String> {
    let mut fields = line.split('\t');
    let mut next = || fields.next();
    let (Some(name), Some(epoch), Some(version), Some(release), Some(arch), Some(vendor), Some(installed), None) =
        (next(), next(), next(), next(), next(), next(), next(), next())
    else {
        return Err(format!(
            "expected 7 tab-separated fields (name, epoch, version, release, arch, vendor, install time), got {}: {line:?}",
            line.split('\t').count()
        ));
    };
    if name.is_empty() {
        return Err(format!("package has no name: {line:?}"));
    }
    let epoch = tag(epoch);
    if let Some(epoch) = epoch
        && !epoch.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("package {name}: epoch {epoch:?} is not a number"));
    }
    let install_time_unix_ms = match tag(installed) {
        None => None,
        Some(seconds) => {
            Some(unix_ms_of_seconds(seconds).ok_or_else(|| format!("package {name}: install time {seconds:?} is not a Unix time"))?)
        }
    };
    let mut full_version = String::with_capacity(version.len() + release.len() + 8);
    if let Some(epoch) = epoch {
        full_version.push_str(epoch);
        full_version.push(':');
    }
    full_version.push_str(version);
    if let Some(release) = tag(release) {
        full_version.push('-');
        full_version.push_str(release);
    }
    Ok(Package {
        name: name.to_owned(),
        version: full_version,
        arch: tag(arch).map(str::to_owned),
        vendor: tag(vendor).map(str::to_owned),
        source: PackageSource::Rpm,
        install_time_unix_ms,
    })
}

/// A queryformat value, or `None` for a tag the package does not have.
fn tag(value: &str) -> Option<&str> {
    (!value.is_empty() && value != "(none)").then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QA: &str = include_str!("../../../tests/fixtures/software/rpm-qa.txt");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/software/rpm-qa-truncated.txt");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/software/rpm-qa-malformed.txt");

    fn find<'p>(packages: &'p [Package], name: &str, arch: Option<&str>) -> &'p Package {
        packages.iter().find(|p| p.name == name && p.arch.as_deref() == arch).unwrap_or_else(|| panic!("{name} {arch:?} missing"))
    }

    #[test]
    fn parses_every_line_with_epoch_rules() {
        let listing = parse_query_output(QA);
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        assert_eq!(listing.packages.len(), QA.lines().count());
        let bash = find(&listing.packages, "bash", Some("x86_64"));
        assert_eq!(bash.version, "5.2.26-3.fc40");
        assert_eq!(bash.vendor.as_deref(), Some("Fedora Project"));
        assert_eq!(bash.install_time_unix_ms, Some(1_714_060_211_000));
        assert_eq!(bash.source, PackageSource::Rpm);
        assert_eq!(find(&listing.packages, "openssl-libs", Some("x86_64")).version, "1:3.2.2-3.fc40");
        assert_eq!(find(&listing.packages, "perl-Errno", Some("x86_64")).version, "0:1.37-506.fc40");
        let local = find(&listing.packages, "local-tool", Some("x86_64"));
        assert_eq!((local.vendor.as_deref(), local.install_time_unix_ms), (None, None));
        let key = find(&listing.packages, "gpg-pubkey", None);
        assert_eq!(key.version, "a15b79cc-63d04c2c");
    }

    #[test]
    fn keeps_both_architectures_of_one_name() {
        let listing = parse_query_output(QA);
        let x86_64 = find(&listing.packages, "glibc", Some("x86_64"));
        let i686 = find(&listing.packages, "glibc", Some("i686"));
        assert_eq!(x86_64.version, i686.version);
        assert_ne!(x86_64.install_time_unix_ms, i686.install_time_unix_ms);
    }

    #[test]
    fn truncated_output_reports_the_cut_line() {
        let listing = parse_query_output(TRUNCATED);
        assert_eq!(listing.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["bash", "glibc"]);
        assert_eq!(listing.errors.len(), 1);
        let message = listing.errors[0].to_string();
        assert!(message.contains("rpm -qa output at line 3") && message.contains("got 5"), "{message}");
    }

    #[test]
    fn malformed_lines_are_skipped_one_error_each() {
        let listing = parse_query_output(MALFORMED);
        assert_eq!(listing.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["bash", "curl"]);
        let messages: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].contains("line 2") && messages[0].contains("got 1"), "{}", messages[0]);
        assert!(messages[1].contains("line 3") && messages[1].contains("epoch \"x\""), "{}", messages[1]);
        assert!(messages[2].contains("line 4") && messages[2].contains("no name"), "{}", messages[2]);
        assert!(messages[3].contains("line 5") && messages[3].contains("\"yesterday\""), "{}", messages[3]);
    }

    #[test]
    fn empty_output_is_an_empty_listing() {
        let listing = parse_query_output("");
        assert!(listing.packages.is_empty() && listing.errors.is_empty());
    }

    #[test]
    fn host_without_rpm_database_is_absent() {
        let root = std::env::temp_dir().join(format!("census-rpm-root-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("temp dir is writable");
        let result = collect(&root).expect("absent is not an error");
        std::fs::remove_dir_all(&root).expect("temp dir is removable");
        assert!(result.is_none());
    }
}
