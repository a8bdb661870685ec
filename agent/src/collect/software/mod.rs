//! Installed software, one module per package source.
//!
//! Every source is two layers: a thin reader that touches the OS (a file under
//! `root`, a directory listing, or a command's output) and a pure parser that
//! turns that text into [`Package`]s and never touches the filesystem. Parsers
//! of every source compile and are tested on every OS against the fixtures in
//! `tests/fixtures/software/`; only the readers are tied to their OS.
//!
//! Invariants:
//! - `root` is the filesystem root ("/" on a live host, a fixture tree in
//!   tests). File sources read below it. Command sources can only describe the
//!   running system, so with any other root they count as absent (rpm, which
//!   has `--root`, is the exception).
//! - `Ok(None)` from a source means "this package manager is not on this host";
//!   it is not an error.
//! - A malformed record is skipped and reported; the rest of the source is
//!   kept ([`Listing`]). One broken source never hides the others
//!   ([`collect_all`]).
//! - Inputs are bounded: files and command outputs over a per-source limit are
//!   refused with an error, never read whole into memory.

pub mod apk;
pub mod dpkg;
pub mod flatpak;
pub mod macos;
pub mod pacman;
pub mod rpm;
pub mod snap;
pub mod windows;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

/// How many per-record errors one source reports before it only counts them:
/// a corrupt database must not turn into thousands of error lines per report.
pub const MAX_RECORD_ERRORS: usize = 20;

/// What a parser made of one source: the packages it could read and the
/// records it had to skip, each with an error naming the file and line.
#[derive(Debug, Default)]
pub struct Listing {
    pub packages: Vec<Package>,
    /// At most [`MAX_RECORD_ERRORS`] errors; the rest are only counted.
    pub errors: Vec<Error>,
    /// Skipped records whose error was not kept because `errors` was full.
    pub suppressed_errors: usize,
}

impl Listing {
    pub fn with_capacity(packages: usize) -> Self {
        Listing { packages: Vec::with_capacity(packages), errors: Vec::new(), suppressed_errors: 0 }
    }

    /// Records that one record was skipped, and why.
    pub fn skip(&mut self, error: Error) {
        if self.errors.len() < MAX_RECORD_ERRORS {
            self.errors.push(error);
        } else {
            self.suppressed_errors += 1;
        }
    }

    /// Appends another listing of the same source (e.g. one file of many).
    pub fn extend(&mut self, other: Listing) {
        self.packages.extend(other.packages);
        self.suppressed_errors += other.suppressed_errors;
        for error in other.errors {
            self.skip(error);
        }
    }

    /// The errors to report, with one summary error for those only counted.
    pub fn into_parts(self, source: PackageSource) -> (Vec<Package>, Vec<Error>) {
        let mut errors = self.errors;
        if self.suppressed_errors > 0 {
            errors.push(Error::parse(
                format!("{source:?} package list"),
                None,
                format!("{} more malformed records skipped", self.suppressed_errors),
            ));
        }
        (self.packages, errors)
    }
}

/// Runs every package source that belongs on this OS and returns all the
/// packages found plus one entry per source error (or skipped record).
pub fn collect_all(root: &Path) -> (Vec<Package>, Vec<(PackageSource, Error)>) {
    let mut packages = Vec::new();
    let mut errors = Vec::new();
    for (source, result) in run_sources(root) {
        match result {
            Ok(None) => {}
            Ok(Some(listing)) => {
                let (found, skipped) = listing.into_parts(source);
                packages.extend(found);
                errors.extend(skipped.into_iter().map(|e| (source, e)));
            }
            Err(error) => errors.push((source, error)),
        }
    }
    (packages, errors)
}

type SourceResult = (PackageSource, Result<Option<Listing>>);

#[cfg(target_os = "linux")]
fn run_sources(root: &Path) -> Vec<SourceResult> {
    vec![
        (PackageSource::Dpkg, dpkg::collect(root)),
        (PackageSource::Rpm, rpm::collect(root)),
        (PackageSource::Apk, apk::collect(root)),
        (PackageSource::Pacman, pacman::collect(root)),
        (PackageSource::Snap, snap::collect(root)),
        (PackageSource::Flatpak, flatpak::collect(root)),
    ]
}

#[cfg(windows)]
fn run_sources(root: &Path) -> Vec<SourceResult> {
    vec![(PackageSource::WindowsRegistry, windows::collect(root))]
}

#[cfg(target_os = "macos")]
fn run_sources(root: &Path) -> Vec<SourceResult> {
    vec![(PackageSource::MacApp, macos::collect_apps(root)), (PackageSource::MacPkgReceipt, macos::collect_receipts(root))]
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
fn run_sources(_root: &Path) -> Vec<SourceResult> {
    Vec::new()
}

/// `root` joined with an absolute-looking path such as "var/lib/dpkg/status".
pub(crate) fn under_root(root: &Path, relative: &str) -> PathBuf {
    root.join(relative.trim_start_matches('/'))
}

/// Whether `root` is the running system's root, the only one commands see.
pub(crate) fn is_live_root(root: &Path) -> bool {
    root == Path::new("/")
}

/// Reads a whole file of at most `limit` bytes. `Ok(None)` when it does not
/// exist. Bytes that are not UTF-8 are replaced rather than failing the
/// source: a stray Latin-1 maintainer name must not hide every package.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Option<String>> {
    Ok(read_bounded_bytes(path, limit)?
        .map(|bytes| String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
}

/// [`read_bounded`] without the text decoding.
pub(crate) fn read_bounded_bytes(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("opening", path, e)),
    };
    let mut bytes = Vec::new();
    // Read one byte past the limit instead of trusting the size in metadata,
    // which can change while we read.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::io("reading", path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(&path.display().to_string(), limit));
    }
    Ok(Some(bytes))
}

fn too_large(what: &str, limit: u64) -> Error {
    Error::parse(what, None, format!("larger than the {} this agent reads", describe_size(limit)))
}

pub(crate) fn describe_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 { format!("{} MiB", bytes / (1024 * 1024)) } else { format!("{bytes} bytes") }
}

// The command runner moved to `collect::command`, shared by every section;
// re-exported so the package sources keep their short paths.
pub(crate) use crate::collect::command::{run_command, run_command_accepting};

/// Unix milliseconds of a file's modification time, when it can be had.
pub(crate) fn mtime_unix_ms(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    system_time_unix_ms(modified)
}

pub(crate) fn system_time_unix_ms(time: SystemTime) -> Option<i64> {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).ok(),
        Err(before) => i64::try_from(before.duration().as_millis()).ok().map(|ms| -ms),
    }
}

/// Unix milliseconds of 00:00 UTC on a calendar date, or `None` for a date
/// that does not exist (month 13, February 30).
pub(crate) fn unix_ms_of_date(year: i64, month: u32, day: u32) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), with March as month 0 so
    // that the leap day is the last day of the shifted year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days.checked_mul(86_400_000)
}

/// Unix ms of a UTC civil time, `None` when a field is out of range.
pub(crate) fn unix_ms_of_civil(year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> Option<i64> {
    if !(0..24).contains(&hour) || !(0..60).contains(&min) || !(0..=60).contains(&sec) {
        return None;
    }
    let midnight = unix_ms_of_date(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
    midnight.checked_add(((hour * 60 + min) * 60 + sec) * 1000)
}

/// Seconds since the epoch as printed by rpm and pacman, to Unix milliseconds.
pub(crate) fn unix_ms_of_seconds(text: &str) -> Option<i64> {
    text.parse::<i64>().ok()?.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_epochs() {
        assert_eq!(unix_ms_of_date(1970, 1, 1), Some(0));
        // 2000-03-01 is 11017 days after the epoch (after a leap day in a
        // year divisible by 400).
        assert_eq!(unix_ms_of_date(2000, 3, 1), Some(11_017 * 86_400_000));
        assert_eq!(unix_ms_of_date(2024, 2, 29), Some(1_709_164_800_000));
        assert_eq!(unix_ms_of_date(1969, 12, 31), Some(-86_400_000));
        assert_eq!(unix_ms_of_date(2023, 2, 29), None);
        assert_eq!(unix_ms_of_date(2023, 13, 1), None);
        assert_eq!(unix_ms_of_date(2023, 4, 31), None);
        assert_eq!(unix_ms_of_date(2023, 4, 0), None);
    }

    #[test]
    fn dates_agree_with_the_system_clock_arithmetic() {
        // Every first of the month from 1970 to 2100 must be exactly the sum
        // of the month lengths before it.
        let mut expected = 0i64;
        for year in 1970..2100 {
            for month in 1..=12u32 {
                assert_eq!(unix_ms_of_date(year, month, 1), Some(expected), "{year}-{month}");
                let mut len = 28;
                while unix_ms_of_date(year, month, len + 1).is_some() {
                    len += 1;
                }
                expected += i64::from(len) * 86_400_000;
            }
        }
    }

    #[test]
    fn listing_caps_errors_and_counts_the_rest() {
        let mut listing = Listing::default();
        for line in 0..MAX_RECORD_ERRORS + 5 {
            listing.skip(Error::parse("x", Some(line), "bad"));
        }
        assert_eq!(listing.errors.len(), MAX_RECORD_ERRORS);
        assert_eq!(listing.suppressed_errors, 5);
        let (_, errors) = listing.into_parts(PackageSource::Dpkg);
        assert_eq!(errors.len(), MAX_RECORD_ERRORS + 1);
        assert!(errors[MAX_RECORD_ERRORS].to_string().contains("5 more malformed records"));
    }

    #[test]
    fn bounded_read_refuses_big_files_and_reports_missing_ones_as_absent() {
        let dir = std::env::temp_dir().join(format!("census-swparse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let file = dir.join("big");
        std::fs::write(&file, vec![b'a'; 2048]).expect("temp file is writable");
        let error = read_bounded(&file, 1024).expect_err("2 KiB is over a 1 KiB limit");
        assert!(error.to_string().contains(&file.display().to_string()), "{error}");
        assert_eq!(read_bounded(&file, 4096).expect("under the limit").map(|t| t.len()), Some(2048));
        assert!(read_bounded(&dir.join("missing"), 1024).expect("missing is not an error").is_none());
        std::fs::remove_dir_all(&dir).expect("temp dir is removable");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn one_broken_source_does_not_hide_the_others() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/software");
        let root = std::env::temp_dir().join(format!("census-collect-all-{}", std::process::id()));
        let apk = root.join("lib/apk/db");
        let pacman = root.join("var/lib/pacman/local/python-3.12.4-1");
        // A status "file" that is a directory cannot be read at all.
        let dpkg_status = root.join("var/lib/dpkg/status");
        for dir in [&apk, &pacman, &dpkg_status] {
            std::fs::create_dir_all(dir).expect("temp dir is writable");
        }
        std::fs::copy(fixtures.join("apk-installed-malformed"), apk.join("installed")).expect("copy apk fixture");
        std::fs::copy(fixtures.join("pacman-root/var/lib/pacman/local/python-3.12.4-1/desc"), pacman.join("desc"))
            .expect("copy pacman fixture");

        let (packages, errors) = collect_all(&root);
        std::fs::remove_dir_all(&root).expect("temp dir is removable");

        let mut found: Vec<(PackageSource, &str)> = packages.iter().map(|p| (p.source, p.name.as_str())).collect();
        found.sort_unstable();
        assert_eq!(found, [(PackageSource::Apk, "musl"), (PackageSource::Apk, "zlib"), (PackageSource::Pacman, "python"),]);
        let sources: Vec<PackageSource> = errors.iter().map(|(source, _)| *source).collect();
        // dpkg failed whole; apk skipped two malformed records; commands
        // (snap, flatpak) and rpm are absent under a fixture root.
        assert_eq!(sources, [PackageSource::Dpkg, PackageSource::Apk, PackageSource::Apk]);
        assert!(matches!(errors[0].1, Error::Io { .. }), "{}", errors[0].1);
    }

    #[test]
    fn missing_command_is_absent_not_an_error() {
        let result = run_command("census-no-such-command-xyz", &[], &[], 1024).expect("not found is not an error");
        assert!(result.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn failing_command_is_an_error_with_its_message() {
        let error = run_command("sh", &["-c", "echo boom >&2; exit 3"], &[], 1024).expect_err("exit 3 fails");
        let text = error.to_string();
        assert!(text.contains("boom") && text.contains("sh -c"), "{text}");
        let out = run_command("sh", &["-c", "printf '%s\\tb\\n' \"$X\""], &[("X", "a")], 1024).expect("runs").expect("sh exists");
        assert_eq!(out, "a\tb\n");
        let error = run_command("sh", &["-c", "head -c 5000 /dev/zero"], &[], 1024).expect_err("too much output");
        assert!(error.to_string().contains("output"), "{error}");
    }
}
