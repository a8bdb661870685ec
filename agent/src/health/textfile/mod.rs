//! Custom metrics from text files, like node_exporter's textfile collector:
//! administrators (cron jobs, scripts, tests) write `*.prom` files in the
//! Prometheus text format into `health_textfile_dir`, and every health
//! sample carries their values as `custom.*` series (docs/custom-metrics.md).
//!
//! - `parse`: pure; the format, the naming and the series bounds.
//! - this module: `TextfileDir`, the thin reader of the directory.
//!
//! Invariants:
//! - per sample, at most `MAX_FILES` files (the first by name), each at
//!   most `MAX_FILE_BYTES`, directly in the directory (not recursive); a
//!   name must end in `.prom` and not start with `.`, so a file being
//!   written under a temporary name is never read half-written;
//! - only regular files are read, opened non-blocking, so a FIFO named
//!   `x.prom` cannot stall the sample;
//! - nothing here fails the sample: a missing directory, an unreadable or
//!   oversized file, a malformed line yields fewer series and a warning;
//! - warnings are rate-limited: a file's malformed lines are reported when
//!   the file changes (size or modification time), any other problem when
//!   it first appears, so an unchanged bad file is not logged every sample.

pub mod parse;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use parse::{CustomMetric, Gathered, MAX_SERIES};

/// Most files read per sample.
pub const MAX_FILES: usize = 64;
/// Largest file read, bytes; a larger one is skipped whole.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// The suffix of the files read.
pub const SUFFIX: &str = ".prom";

/// What one read of the directory found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextfileReading {
    pub metrics: Vec<CustomMetric>,
    /// Problems to log now, each naming its file (and line); already
    /// rate-limited.
    pub warnings: Vec<String>,
}

/// Reads the textfile directory at each sample, remembering what it has
/// already warned about.
#[derive(Debug)]
pub struct TextfileDir {
    dir: PathBuf,
    /// Per file name, the version whose malformed lines were last reported.
    reported: HashMap<String, FileStamp>,
    /// The other warnings of the previous read: each is logged when it
    /// appears, not again while it lasts.
    standing: HashSet<String>,
}

/// Tells one version of a file from the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl TextfileDir {
    /// The directory `dir` (absolute) under `root` ("/" in production).
    pub fn new(root: &Path, dir: &Path) -> TextfileDir {
        let dir = root.join(dir.strip_prefix("/").unwrap_or(dir));
        TextfileDir { dir, reported: HashMap::new(), standing: HashSet::new() }
    }

    pub fn read(&mut self) -> TextfileReading {
        let mut gathered = Gathered::default();
        let mut warnings = Vec::new();
        let mut problems = Vec::new();
        let mut names = match textfile_names(&self.dir) {
            Ok(names) => names,
            Err(e) => {
                problems.push(format!("cannot list {}: {e}", self.dir.display()));
                Vec::new()
            }
        };
        if names.len() > MAX_FILES {
            problems.push(format!("{}: {} {SUFFIX} files; only the first {MAX_FILES} by name are read", self.dir.display(), names.len()));
            names.truncate(MAX_FILES);
        }

        let mut reported = HashMap::new();
        for name in names {
            let path = self.dir.join(&name);
            let (text, stamp) = match read_regular_file(&path, MAX_FILE_BYTES) {
                Ok(read) => read,
                Err(reason) => {
                    problems.push(format!("{}: {reason}; skipped", path.display()));
                    continue;
                }
            };
            let errors = gathered.add_file(&text);
            if self.reported.get(&name) != Some(&stamp) {
                warnings.extend(errors.listed.iter().map(|e| format!("{}:{}: {}; line skipped", path.display(), e.line, e.reason)));
                if errors.unlisted > 0 {
                    warnings.push(format!("{}: {} more malformed lines skipped", path.display(), errors.unlisted));
                }
            }
            reported.insert(name, stamp);
        }
        self.reported = reported;

        if gathered.over_limit > 0 {
            problems.push(format!(
                "{}: {} series over the limit of {MAX_SERIES} per sample left out",
                self.dir.display(),
                gathered.over_limit
            ));
        }
        warnings.extend(problems.iter().filter(|p| !self.standing.contains(*p)).cloned());
        self.standing = problems.into_iter().collect();
        TextfileReading { metrics: gathered.metrics, warnings }
    }
}

/// The names in `dir` that are textfiles, sorted. Names that are not UTF-8
/// are not textfiles.
fn textfile_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(SUFFIX) && !name.starts_with('.'))
        .collect();
    names.sort_unstable();
    Ok(names)
}

/// The text of a regular file of at most `limit` bytes (bytes that are not
/// UTF-8 replaced), and its stamp; the reason it was not read otherwise.
fn read_regular_file(path: &Path, limit: usize) -> Result<(String, FileStamp), String> {
    let file = open_nonblocking(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let too_big = |len: u64| format!("{len} bytes, over the limit of {limit}");
    if meta.len() > limit as u64 {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() > limit {
        return Err(too_big(bytes.len() as u64));
    }
    let stamp = FileStamp { len: meta.len(), modified: meta.modified().ok() };
    Ok((String::from_utf8_lossy(&bytes).into_owned(), stamp))
}

/// Opening a FIFO for reading blocks until a writer comes; non-blocking, it
/// returns at once, and the caller then refuses it as not a regular file.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(r: &TextfileReading) -> Vec<(&str, f64)> {
        r.metrics.iter().map(|m| (m.name.as_str(), m.value)).collect()
    }

    /// Writes like an administrator should: a temporary name, then a rename.
    fn write_atomically(dir: &Path, name: &str, text: &str) {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }

    #[test]
    fn reads_prom_files_in_name_order_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("var/lib/textfile");
        std::fs::create_dir_all(dir.join("sub.prom")).unwrap();
        std::fs::write(dir.join("b.prom"), "b 2\n").unwrap();
        std::fs::write(dir.join("a.prom"), "a{x=\"1\"} 1\n").unwrap();
        std::fs::write(dir.join(".hidden.prom"), "hidden 1\n").unwrap();
        std::fs::write(dir.join("c.prom.tmp"), "tmp 1\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "notes 1\n").unwrap();
        std::fs::write(dir.join("sub.prom/inner.prom"), "inner 1\n").unwrap();

        let mut reader = TextfileDir::new(root.path(), Path::new("/var/lib/textfile"));
        let r = reader.read();
        assert_eq!(series(&r), [("custom.a.1", 1.0), ("custom.b", 2.0)]);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].ends_with("sub.prom: not a regular file; skipped"), "{:?}", r.warnings);
    }

    #[test]
    fn malformed_lines_are_reported_once_per_file_version() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        write_atomically(dir, "app.prom", "ok 1\nbroken\n");
        write_atomically(dir, "other.prom", "fine 3\n");
        let mut reader = TextfileDir::new(Path::new("/"), dir);

        let r = reader.read();
        assert_eq!(series(&r), [("custom.ok", 1.0), ("custom.fine", 3.0)]);
        assert_eq!(r.warnings, [format!("{}:2: metric \"broken\" has no value; line skipped", dir.join("app.prom").display())]);

        // Unchanged: the values again, the warning not again.
        let r = reader.read();
        assert_eq!(series(&r), [("custom.ok", 1.0), ("custom.fine", 3.0)]);
        assert_eq!(r.warnings, Vec::<String>::new());

        // Another file changes: still quiet about app.prom.
        write_atomically(dir, "other.prom", "fine 4\n");
        let r = reader.read();
        assert_eq!(series(&r), [("custom.ok", 1.0), ("custom.fine", 4.0)]);
        assert_eq!(r.warnings, Vec::<String>::new());

        // app.prom changes and is still broken: reported again.
        write_atomically(dir, "app.prom", "ok 2\nbroken again\n");
        let r = reader.read();
        assert_eq!(series(&r)[0], ("custom.ok", 2.0));
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("app.prom:2: value \"again\" is not a number"), "{:?}", r.warnings);
    }

    #[test]
    fn missing_directory_and_oversized_files_warn_while_they_last() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("textfile");
        let mut reader = TextfileDir::new(Path::new("/"), &dir);
        let r = reader.read();
        assert_eq!(r.metrics, []);
        assert!(r.warnings.len() == 1 && r.warnings[0].starts_with("cannot list"), "{:?}", r.warnings);
        assert_eq!(reader.read().warnings, Vec::<String>::new(), "said once while it lasts");

        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("big.prom"), "x 1\n".repeat(MAX_FILE_BYTES / 4 + 1)).unwrap();
        std::fs::write(dir.join("small.prom"), "small 1\n").unwrap();
        let r = reader.read();
        assert_eq!(series(&r), [("custom.small", 1.0)]);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].ends_with(&format!("big.prom: {} bytes, over the limit of {MAX_FILE_BYTES}; skipped", MAX_FILE_BYTES + 4)));
        assert_eq!(reader.read().warnings, Vec::<String>::new());

        // Gone, then back: the problem is new again.
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(reader.read().warnings.len(), 1);
    }

    #[test]
    fn file_and_series_counts_are_bounded() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        // 70 files of 20 series: 64 files read, 1,000 of their 1,280 series kept.
        for f in 0..70 {
            let text: String = (0..20).map(|i| format!("m{{file=\"{f:02}\",i=\"{i:02}\"}} {i}\n")).collect();
            std::fs::write(dir.join(format!("f{f:02}.prom")), text).unwrap();
        }
        let mut reader = TextfileDir::new(Path::new("/"), dir);
        let r = reader.read();
        assert_eq!(r.metrics.len(), MAX_SERIES);
        assert_eq!(r.metrics.first().map(|m| m.name.as_str()), Some("custom.m.00.00"));
        assert_eq!(r.metrics.last().map(|m| m.name.as_str()), Some("custom.m.49.19"));
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(r.warnings[0].ends_with("70 .prom files; only the first 64 by name are read"), "{:?}", r.warnings);
        assert!(r.warnings[1].ends_with("280 series over the limit of 1000 per sample left out"), "{:?}", r.warnings);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_does_not_block_the_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let fifo = dir.join("pipe.prom");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("mkfifo unavailable; skipping");
            return;
        }
        std::fs::write(dir.join("real.prom"), "real 1\n").unwrap();
        let r = TextfileDir::new(Path::new("/"), dir).read();
        assert_eq!(series(&r), [("custom.real", 1.0)]);
        assert!(r.warnings.iter().any(|w| w.ends_with("pipe.prom: not a regular file; skipped")), "{:?}", r.warnings);
    }
}
