//! dpkg (Debian, Ubuntu): the `/var/lib/dpkg/status` database, read directly
//! with no subprocess, plus the pending journal in `/var/lib/dpkg/updates/`
//! that dpkg-query also applies.
//!
//! The packages found equal `dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n'`
//! exactly (checked against dpkg-query 1.21 on fixtures and on the host's own
//! database by the tests below). dpkg-query lists every record whose status
//! (third word of `Status`) is anything but `not-installed`: `config-files`,
//! `half-installed`, `unpacked`, `half-configured`, `triggers-awaited`,
//! `triggers-pending` and `installed` all count, whatever the selection
//! (`install`, `hold`, `deinstall`, `purge`). A record without `Status` is
//! `not-installed`. The version is printed as dpkg prints it: a zero epoch is
//! dropped unless the rest of the version has a colon. A Multi-Arch: same
//! package gives one [`Package`] per architecture. `Maintainer` is the vendor.
//!
//! Bad records: where dpkg-query refuses the whole database (a line with no
//! field name, a record without `Package`, an unknown `Status`, an unpacked or
//! installed package without `Version`, two records for one name and
//! architecture in one file), this parser skips that record, keeps the rest and
//! reports one error naming the file and the line.
//!
//! dpkg keeps no install time; the reader uses the mtime of the package's
//! `info/<name>[:<arch>].list` file, which dpkg rewrites on every unpack.

use std::collections::HashMap;
use std::path::Path;

use super::{Listing, read_bounded, under_root};
use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

pub const STATUS_PATH: &str = "/var/lib/dpkg/status";
pub const UPDATES_DIR: &str = "/var/lib/dpkg/updates";
pub const INFO_DIR: &str = "/var/lib/dpkg/info";

/// Refuse a database bigger than this: a real one with 5,000 packages is
/// about 10 MiB.
pub const MAX_DATABASE_BYTES: u64 = 64 * 1024 * 1024;

/// One file of the dpkg database and the name its errors are reported under.
#[derive(Debug, Clone)]
pub struct DatabaseFile {
    pub origin: String,
    pub text: String,
}

/// Runs the dpkg source on `root`: `Ok(None)` when there is no dpkg database.
pub fn collect(root: &Path) -> Result<Option<Listing>> {
    let Some(files) = read_database(root)? else {
        return Ok(None);
    };
    let mut listing = parse_database(&files);
    let info = under_root(root, INFO_DIR);
    for package in &mut listing.packages {
        package.install_time_unix_ms = install_time(&info, package);
    }
    Ok(Some(listing))
}

/// Reads `status` and then the journal files of `updates/` in the order dpkg
/// applies them (names made only of digits, sorted). `Ok(None)` when the
/// status file does not exist. The whole database is bounded by
/// [`MAX_DATABASE_BYTES`].
pub fn read_database(root: &Path) -> Result<Option<Vec<DatabaseFile>>> {
    let status_path = under_root(root, STATUS_PATH);
    let Some(status) = read_bounded(&status_path, MAX_DATABASE_BYTES)? else {
        return Ok(None);
    };
    let mut budget = MAX_DATABASE_BYTES.saturating_sub(status.len() as u64);
    let mut files = vec![DatabaseFile { origin: status_path.display().to_string(), text: status }];

    let updates_dir = under_root(root, UPDATES_DIR);
    let entries = match std::fs::read_dir(&updates_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(files)),
        Err(e) => return Err(Error::io("listing", updates_dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", &updates_dir, e))?;
        // dpkg ignores everything but its numbered journal entries (e.g. `tmp.i`).
        if let Some(name) = entry.file_name().to_str().filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    for name in names {
        let path = updates_dir.join(&name);
        // A journal entry that vanished was merged into `status` meanwhile.
        if let Some(text) = read_bounded(&path, budget)? {
            budget = budget.saturating_sub(text.len() as u64);
            files.push(DatabaseFile { origin: path.display().to_string(), text });
        }
    }
    Ok(Some(files))
}

/// Parses one status file on its own; `origin` names it in errors.
pub fn parse_status(text: &str, origin: &str) -> Listing {
    parse_files(&[(origin, text)])
}

/// Parses the status file followed by its journal entries: a later record for
/// the same name and architecture replaces the earlier one, as in dpkg.
pub fn parse_database(files: &[DatabaseFile]) -> Listing {
    let borrowed: Vec<(&str, &str)> = files.iter().map(|f| (f.origin.as_str(), f.text.as_str())).collect();
    parse_files(&borrowed)
}

/// The packages apt considers installed (a current version: every state
/// from half-installed on, not `config-files`), for the pending-updates
/// section. Malformed records are skipped as in [`parse_database`].
pub fn parse_installed(files: &[DatabaseFile]) -> Vec<Package> {
    let borrowed: Vec<(&str, &str)> = files.iter().map(|f| (f.origin.as_str(), f.text.as_str())).collect();
    parse_files_where(&borrowed, |state| state >= State::HalfInstalled).packages
}

/// (origin, text) pairs in the order dpkg applies them.
fn parse_files<'a>(files: &[(&'a str, &'a str)]) -> Listing {
    parse_files_where(files, |state| state != State::NotInstalled)
}

/// [`parse_files`] keeping only records whose state passes `keep`.
fn parse_files_where<'a>(files: &[(&'a str, &'a str)], keep: impl Fn(State) -> bool) -> Listing {
    let mut listing = Listing::default();
    // A typical record is about 1 KiB; reserving up front avoids rehashing.
    let mut records: Vec<Record<'a>> = Vec::with_capacity(files.first().map_or(0, |(_, text)| text.len() / 1024));
    let mut by_key: HashMap<(&'a str, &'a str), usize> = HashMap::with_capacity(records.capacity());
    for (file_index, &(origin, text)) in files.iter().enumerate() {
        for parsed in Stanzas::new(text) {
            let record = match parsed.and_then(|raw| Record::from_raw(raw, file_index)) {
                Ok(record) => record,
                Err((line, reason)) => {
                    listing.skip(Error::parse(origin, Some(line), reason));
                    continue;
                }
            };
            match by_key.get(&(record.name, record.arch)) {
                Some(&index) if records[index].file == file_index => {
                    let first = records[index].line;
                    listing.skip(Error::parse(
                        origin,
                        Some(record.line),
                        format!("second record for {}:{} (first at line {first})", record.name, record.arch),
                    ));
                }
                Some(&index) => records[index] = record,
                None => {
                    by_key.insert((record.name, record.arch), records.len());
                    records.push(record);
                }
            }
        }
    }
    listing.packages.reserve(records.len());
    listing.packages.extend(records.iter().filter(|r| keep(r.state)).map(|r| Package {
        name: r.name.to_owned(),
        version: display_version(r.version),
        arch: non_empty(r.arch),
        vendor: non_empty(r.maintainer),
        source: PackageSource::Dpkg,
        install_time_unix_ms: None,
    }));
    listing
}

/// The version as `dpkg-query -W` prints `${Version}`: surrounding blanks
/// trimmed, the epoch shown when it is not zero or when leaving it out would
/// make the version ambiguous (a colon further on).
pub fn display_version(raw: &str) -> String {
    let version = raw.trim();
    if let Some((epoch, rest)) = version.split_once(':')
        && !epoch.is_empty()
        && epoch.bytes().all(|b| b.is_ascii_digit())
        && let Ok(epoch) = epoch.parse::<u32>()
    {
        if epoch == 0 && !rest.contains(':') {
            return rest.to_owned();
        }
        return format!("{epoch}:{rest}");
    }
    version.to_owned()
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Install time from the package's file list, newest layout first.
fn install_time(info_dir: &Path, package: &Package) -> Option<i64> {
    if let Some(arch) = &package.arch {
        let qualified = info_dir.join(format!("{}:{arch}.list", package.name));
        if let Some(ms) = super::mtime_unix_ms(&qualified) {
            return Some(ms);
        }
    }
    super::mtime_unix_ms(&info_dir.join(format!("{}.list", package.name)))
}

/// A line-numbered parse failure: (1-based line, reason).
type Failure = (usize, String);

/// The fields of one stanza that matter here, borrowed from the text.
#[derive(Default)]
struct RawStanza<'a> {
    /// Line of the stanza's first field.
    line: usize,
    package: Option<&'a str>,
    status: Option<(usize, &'a str)>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    maintainer: Option<&'a str>,
}

struct Record<'a> {
    line: usize,
    file: usize,
    name: &'a str,
    arch: &'a str,
    version: &'a str,
    maintainer: &'a str,
    /// dpkg-query -W lists every state but not-installed.
    state: State,
}

impl<'a> Record<'a> {
    fn from_raw(raw: RawStanza<'a>, file: usize) -> Result<Record<'a>, Failure> {
        let name = raw.package.filter(|p| !p.is_empty()).ok_or_else(|| (raw.line, "record has no Package field".to_owned()))?;
        let state = match raw.status {
            None => State::NotInstalled,
            Some((line, status)) => parse_status_field(status).map_err(|reason| (line, format!("package {name}: {reason}")))?,
        };
        let version = raw.version.unwrap_or("");
        if state.requires_version() && version.is_empty() {
            return Err((raw.line, format!("package {name} is {} but has no Version field", state.word())));
        }
        Ok(Record { line: raw.line, file, name, arch: raw.arch.unwrap_or(""), version, maintainer: raw.maintainer.unwrap_or(""), state })
    }
}

/// The package states of dpkg(1), in dpkg's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    NotInstalled,
    ConfigFiles,
    HalfInstalled,
    Unpacked,
    HalfConfigured,
    TriggersAwaited,
    TriggersPending,
    Installed,
}

impl State {
    const ALL: [(State, &'static str); 8] = [
        (State::NotInstalled, "not-installed"),
        (State::ConfigFiles, "config-files"),
        (State::HalfInstalled, "half-installed"),
        (State::Unpacked, "unpacked"),
        (State::HalfConfigured, "half-configured"),
        (State::TriggersAwaited, "triggers-awaited"),
        (State::TriggersPending, "triggers-pending"),
        (State::Installed, "installed"),
    ];

    fn word(self) -> &'static str {
        State::ALL.iter().find(|(s, _)| *s == self).map_or("?", |(_, w)| w)
    }

    /// dpkg itself rejects a package at or past half-installed without a version.
    fn requires_version(self) -> bool {
        self >= State::HalfInstalled
    }
}

const WANTS: [&str; 5] = ["unknown", "install", "hold", "deinstall", "purge"];
const FLAGS: [&str; 4] = ["ok", "reinstreq", "hold", "hold-reinstreq"];

/// `Status: <want> <flag> <state>`, e.g. `install ok installed`.
fn parse_status_field(value: &str) -> Result<State, String> {
    let mut words = value.split_ascii_whitespace();
    let (Some(want), Some(flag), Some(state), None) = (words.next(), words.next(), words.next(), words.next()) else {
        return Err(format!("Status {value:?} is not three words (want, flag, state)"));
    };
    if !WANTS.contains(&want) {
        return Err(format!("unknown selection {want:?} in Status"));
    }
    if !FLAGS.contains(&flag) {
        return Err(format!("unknown error flag {flag:?} in Status"));
    }
    State::ALL.iter().find(|(_, word)| *word == state).map(|(s, _)| *s).ok_or_else(|| format!("unknown package state {state:?} in Status"))
}

/// Splits deb822 text into stanzas, keeping only the fields we use and never
/// copying: one pass over the lines, continuation lines skipped unread.
struct Stanzas<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Stanzas<'a> {
    fn new(text: &'a str) -> Self {
        Stanzas { lines: text.lines().enumerate() }
    }
}

impl<'a> Iterator for Stanzas<'a> {
    type Item = Result<RawStanza<'a>, Failure>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut stanza = RawStanza::default();
        let mut started = false;
        let mut failure: Option<Failure> = None;
        for (index, line) in self.lines.by_ref() {
            let number = index + 1;
            if line.is_empty() {
                if started {
                    break;
                }
                continue;
            }
            if line.starts_with([' ', '\t']) {
                // Continuation of a multi-line field (Description, Conffiles).
                if !started && failure.is_none() {
                    failure = Some((number, "continuation line outside any field".to_owned()));
                }
                continue;
            }
            if !started {
                started = true;
                stanza.line = number;
            }
            let Some((field, value)) = line.split_once(':') else {
                if failure.is_none() {
                    failure = Some((number, format!("line {line:?} is not a `Field: value` pair")));
                }
                continue;
            };
            let value = value.trim();
            // Field names are case-insensitive in deb822.
            if field.eq_ignore_ascii_case("Package") {
                stanza.package = Some(value);
            } else if field.eq_ignore_ascii_case("Status") {
                stanza.status = Some((number, value));
            } else if field.eq_ignore_ascii_case("Version") {
                stanza.version = Some(value);
            } else if field.eq_ignore_ascii_case("Architecture") {
                stanza.arch = Some(value);
            } else if field.eq_ignore_ascii_case("Maintainer") {
                stanza.maintainer = Some(value);
            }
        }
        match failure {
            Some(failure) => Some(Err(failure)),
            None if started => Some(Ok(stanza)),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = include_str!("../../../tests/fixtures/software/dpkg-status");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/software/dpkg-status-truncated");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/software/dpkg-status-malformed");

    fn triples(packages: &[Package]) -> Vec<(String, String, String)> {
        let mut rows: Vec<_> = packages.iter().map(|p| (p.name.clone(), p.version.clone(), p.arch.clone().unwrap_or_default())).collect();
        rows.sort();
        rows
    }

    fn find<'p>(packages: &'p [Package], name: &str, arch: &str) -> &'p Package {
        packages
            .iter()
            .find(|p| p.name == name && p.arch.as_deref() == Some(arch))
            .unwrap_or_else(|| panic!("{name}:{arch} missing from {packages:?}"))
    }

    #[test]
    fn lists_every_state_but_not_installed() {
        let listing = parse_status(STATUS, "dpkg-status");
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        let names: Vec<&str> = listing.packages.iter().map(|p| p.name.as_str()).collect();
        for listed in ["apache2", "openssh-server", "linux-image-6.1.0-37-amd64", "man-db", "docker-ce", "ca-certificates"] {
            assert!(names.contains(&listed), "{listed} (config-files, half-installed, unpacked, ...) is listed");
        }
        assert!(!names.contains(&"nano") && !names.contains(&"vim-tiny"), "not-installed records are not listed");
        assert_eq!(listing.packages.len(), 12);
    }

    #[test]
    fn keeps_fields_epochs_and_both_architectures() {
        let listing = parse_status(STATUS, "dpkg-status");
        let packages = &listing.packages;
        let bsdutils = find(packages, "bsdutils", "amd64");
        assert_eq!(bsdutils.version, "1:2.38.1-5+deb12u3");
        assert_eq!(bsdutils.vendor.as_deref(), Some("util-linux packagers <util-linux@packages.debian.org>"));
        assert_eq!(bsdutils.source, PackageSource::Dpkg);
        assert_eq!(find(packages, "docker-ce", "amd64").version, "5:27.3.1-1~debian.12~bookworm");
        // "0:20230311" prints without its zero epoch, as dpkg-query does.
        assert_eq!(find(packages, "ca-certificates", "all").version, "20230311");
        let amd64 = find(packages, "libc6", "amd64");
        let i386 = find(packages, "libc6", "i386");
        assert_eq!(amd64.version, i386.version);
        assert_eq!(amd64.version, "2.36-9+deb12u14");
        assert!(packages.iter().all(|p| p.install_time_unix_ms.is_none()), "parsers never stat files");
    }

    #[test]
    fn versions_print_like_dpkg_query() {
        assert_eq!(display_version("1:2.0-1"), "1:2.0-1");
        assert_eq!(display_version("0:3.0"), "3.0");
        assert_eq!(display_version("00:1.0-1"), "1.0-1");
        assert_eq!(display_version("01:1.0"), "1:1.0");
        assert_eq!(display_version("0:1:2-1"), "0:1:2-1");
        assert_eq!(display_version("  2.0  "), "2.0");
        assert_eq!(display_version("2.0-1"), "2.0-1");
    }

    #[test]
    fn truncated_file_keeps_complete_records_and_names_the_cut_line() {
        let listing = parse_status(TRUNCATED, "/var/lib/dpkg/status");
        assert_eq!(
            triples(&listing.packages),
            vec![("base-files".into(), "12.4+deb12u11".into(), "amd64".into()), ("libc6".into(), "2.36-9+deb12u14".into(), "amd64".into()),]
        );
        assert_eq!(listing.errors.len(), 1);
        let message = listing.errors[0].to_string();
        assert!(message.contains("/var/lib/dpkg/status at line 24") && message.contains("\"inst\""), "{message}");
    }

    #[test]
    fn malformed_records_are_skipped_one_error_each() {
        let listing = parse_status(MALFORMED, "status");
        assert_eq!(
            triples(&listing.packages),
            vec![
                ("base-files".into(), "12.4+deb12u11".into(), "amd64".into()),
                ("zlib1g".into(), "1:1.2.13.dfsg-1".into(), "amd64".into()),
            ]
        );
        let lines: Vec<Option<usize>> = listing
            .errors
            .iter()
            .map(|e| match e {
                Error::Parse { line, .. } => *line,
                other => panic!("unexpected error {other}"),
            })
            .collect();
        // no colon; orphan continuation; no Package; installed without
        // Version; duplicate base-files; two-word Status.
        assert_eq!(lines, vec![Some(10), Some(14), Some(20), Some(24), Some(29), Some(35)]);
        let text: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert!(text[3].contains("dash") && text[3].contains("Version"), "{}", text[3]);
        assert!(text[4].contains("base-files:amd64") && text[4].contains("line 1"), "{}", text[4]);
    }

    #[test]
    fn journal_entries_override_the_status_file() {
        let update = "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.3.dfsg-3\n\n\
                      Package: tzdata\nStatus: purge ok not-installed\nArchitecture: all\n";
        let files = [
            DatabaseFile { origin: "status".into(), text: STATUS.into() },
            DatabaseFile { origin: "updates/0000".into(), text: update.into() },
        ];
        let listing = parse_database(&files);
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        assert_eq!(find(&listing.packages, "zlib1g", "amd64").version, "1:1.3.dfsg-3");
        assert!(!listing.packages.iter().any(|p| p.name == "tzdata"), "purged by the journal");
        assert_eq!(listing.packages.len(), 11);
    }

    #[test]
    fn never_panics_on_any_prefix() {
        for cut in 0..=STATUS.len() {
            if STATUS.is_char_boundary(cut) {
                let listing = parse_status(&STATUS[..cut], "status");
                assert!(listing.packages.len() <= 12);
            }
        }
    }

    #[test]
    fn parses_thousands_of_records_quickly() {
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!(
                "Package: pkg{i}\nStatus: install ok installed\nPriority: optional\nMaintainer: M <m@example.org>\n\
                 Architecture: amd64\nVersion: 1:{i}.0-1\nDescription: d\n line one\n line two\n\n"
            ));
        }
        let start = std::time::Instant::now();
        let listing = parse_status(&text, "synthetic");
        let elapsed = start.elapsed();
        assert_eq!(listing.packages.len(), 5000);
        assert_eq!(listing.packages[4999].version, "1:4999.0-1");
        // Generous for unoptimised test builds; release parses this in ~1 ms.
        assert!(elapsed < std::time::Duration::from_millis(500), "{elapsed:?}");
    }

    /// dpkg-query output for an admin directory, or None without dpkg-query.
    fn dpkg_query(admindir: &Path) -> Option<Vec<(String, String, String)>> {
        let output = std::process::Command::new("dpkg-query")
            .arg(format!("--admindir={}", admindir.display()))
            .args(["-W", "-f", "${Package}\t${Version}\t${Architecture}\n"])
            .output()
            .ok()?;
        assert!(output.status.success(), "dpkg-query failed: {}", String::from_utf8_lossy(&output.stderr));
        let mut rows: Vec<_> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| {
                let mut f = l.split('\t').map(str::to_owned);
                (f.next().unwrap_or_default(), f.next().unwrap_or_default(), f.next().unwrap_or_default())
            })
            .collect();
        rows.sort();
        Some(rows)
    }

    #[test]
    fn fixture_equals_dpkg_query_when_available() {
        let dir = std::env::temp_dir().join(format!("census-dpkg-fixture-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("updates")).expect("temp dir is writable");
        std::fs::create_dir_all(dir.join("info")).expect("temp dir is writable");
        std::fs::write(dir.join("status"), STATUS).expect("temp file is writable");
        let expected = dpkg_query(&dir);
        std::fs::remove_dir_all(&dir).expect("temp dir is removable");
        let Some(expected) = expected else {
            eprintln!("dpkg-query not installed; fixture not checked against it");
            return;
        };
        assert_eq!(triples(&parse_status(STATUS, "status").packages), expected);
    }

    #[test]
    fn host_database_equals_dpkg_query_when_available() {
        let Some(files) = read_database(Path::new("/")).expect("reading the host dpkg database") else {
            eprintln!("no dpkg database on this host");
            return;
        };
        let Some(expected) = dpkg_query(Path::new("/var/lib/dpkg")) else {
            eprintln!("dpkg-query not installed");
            return;
        };
        let listing = parse_database(&files);
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        assert_eq!(triples(&listing.packages), expected);
    }

    #[test]
    fn collect_reads_a_fixture_root_with_install_times() {
        let root = std::env::temp_dir().join(format!("census-dpkg-root-{}", std::process::id()));
        let admin = root.join("var/lib/dpkg");
        std::fs::create_dir_all(admin.join("info")).expect("temp dir is writable");
        std::fs::write(admin.join("status"), STATUS).expect("temp file is writable");
        std::fs::write(admin.join("info/libc6:i386.list"), "/.\n").expect("temp file is writable");
        std::fs::write(admin.join("info/tzdata.list"), "/.\n").expect("temp file is writable");
        let listing = collect(&root).expect("fixture root reads").expect("dpkg is present");
        let absent = collect(&root.join("nowhere")).expect("absent is not an error");
        std::fs::remove_dir_all(&root).expect("temp dir is removable");
        assert!(absent.is_none());
        assert_eq!(listing.packages.len(), 12);
        assert!(find(&listing.packages, "libc6", "i386").install_time_unix_ms.is_some());
        assert!(find(&listing.packages, "tzdata", "all").install_time_unix_ms.is_some());
        assert!(find(&listing.packages, "libc6", "amd64").install_time_unix_ms.is_none());
    }
}
