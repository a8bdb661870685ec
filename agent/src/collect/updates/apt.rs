//! apt (Debian, Ubuntu), without running apt: the local package lists in
//! `/var/lib/apt/lists` (what the last `apt-get update` downloaded) against
//! the dpkg database.
//!
//! For every installed package (dpkg state half-installed or later, as apt
//! counts it; `config-files` is not installed) the update is the highest
//! version in any list that is greater than the installed one by dpkg's
//! ordering (`census-version`), for the same architecture (or `all` on
//! either side). It is a security update when that version is in a list
//! whose Release file has a Suite or Codename ending in `-security` or a
//! Label containing `Security` (the rule unattended-upgrades uses).
//!
//! Departures from apt, documented rather than hidden:
//! - APT pinning (`/etc/apt/preferences*`) is not evaluated; lists whose
//!   Release says `NotAutomatic: yes` (experimental, backports) are left
//!   out, which is apt's default priority for them.
//! - Lists are read plain or lz4-compressed (`Acquire::GzipIndexes`, as
//!   Debian's container images set with lz4); `.gz`, `.xz`, `.bz2`, `.zst`
//!   and `.lzma` lists are skipped and named in `unreadable`.
//!
//! Packages files can be tens of MB: they are parsed as a stream, line by
//! line, keeping only `Package`, `Version` and `Architecture`, and a stanza
//! whose package is not installed is skipped without looking at its other
//! lines.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use census_version::{Ecosystem, compare};

use super::SourceUpdates;
use crate::collect::software::{dpkg, under_root};
use crate::error::{Error, Result};
use crate::inventory::software::Package;
use crate::inventory::unreadable::Unreadable;
use crate::inventory::updates::{PendingUpdate, UpdateSource};

pub const LISTS_DIR: &str = "/var/lib/apt/lists";

/// Read at most this much (decompressed) of one list: Debian main for one
/// architecture is about 100 MiB uncompressed today.
pub const MAX_LIST_BYTES: u64 = 512 * 1024 * 1024;

/// Compressions apt can store lists in that this reader does not decode.
const SKIPPED_COMPRESSIONS: [&str; 5] = ["gz", "xz", "bz2", "zst", "lzma"];

/// What a list's Release (or InRelease) file says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMeta {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// `NotAutomatic: yes`: apt never picks it as candidate by default.
    pub not_automatic: bool,
}

impl ListMeta {
    /// The unattended-upgrades rule: a `-security` suite or codename, or a
    /// label containing "Security".
    pub fn is_security(&self) -> bool {
        let ends = |v: &Option<String>| v.as_deref().is_some_and(|s| s.ends_with("-security"));
        ends(&self.suite) || ends(&self.codename) || self.label.as_deref().is_some_and(|l| l.contains("Security"))
    }

    /// `Origin/suite` for the report, e.g. `Debian/bookworm-security`.
    pub fn describe(&self) -> Option<String> {
        let suite = self.codename.as_deref().or(self.suite.as_deref());
        match (self.origin.as_deref(), suite) {
            (Some(o), Some(s)) => Some(format!("{o}/{s}")),
            (o, s) => o.or(s).map(str::to_owned),
        }
    }
}

/// Parses the fields of a Release or InRelease file that name the list.
/// An InRelease file's PGP armour is skipped; reading stops at the end of
/// the first stanza, before the long checksum lists.
pub fn parse_release(reader: impl BufRead) -> std::io::Result<ListMeta> {
    let mut meta = ListMeta::default();
    let mut in_armour_header = false;
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        let line = line.trim_end_matches('\r');
        if index == 0 && line.starts_with("-----BEGIN PGP SIGNED MESSAGE") {
            in_armour_header = true;
            continue;
        }
        if in_armour_header {
            // "Hash: SHA512" lines up to the blank line that opens the text.
            in_armour_header = !line.is_empty();
            continue;
        }
        if line.is_empty() || line.starts_with("-----BEGIN PGP SIGNATURE") {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        match key {
            "Origin" => meta.origin = value,
            "Label" => meta.label = value,
            "Suite" => meta.suite = value,
            "Codename" => meta.codename = value,
            "NotAutomatic" => meta.not_automatic = value.as_deref() == Some("yes"),
            _ => {}
        }
    }
    Ok(meta)
}

/// Installed packages by name: (architecture, version) pairs.
#[derive(Debug, Default)]
pub struct InstalledIndex {
    by_name: HashMap<String, Vec<(String, String)>>,
}

impl InstalledIndex {
    pub fn new(packages: &[Package]) -> Self {
        let mut by_name: HashMap<String, Vec<(String, String)>> = HashMap::with_capacity(packages.len());
        for p in packages {
            by_name.entry(p.name.clone()).or_default().push((p.arch.clone().unwrap_or_default(), p.version.clone()));
        }
        InstalledIndex { by_name }
    }
}

/// The best version seen so far for one installed (name, architecture).
#[derive(Debug, Clone)]
struct Candidate {
    installed: String,
    version: String,
    /// Indexes of the lists that have exactly this version.
    lists: Vec<usize>,
}

/// Candidates gathered over all lists.
#[derive(Debug, Default)]
pub struct Candidates {
    best: HashMap<(String, String), Candidate>,
}

/// What scanning one Packages file saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    pub stanzas: usize,
    /// Stanzas of installed packages without a Package, Version or
    /// Architecture field, or with a line that is not a field.
    pub malformed: usize,
}

/// One stanza's fields that matter, reused between stanzas.
#[derive(Default)]
struct Stanza {
    package: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    skip: bool,
    malformed: bool,
    lines: usize,
}

/// Streams a Packages file (list number `list`) and records every version
/// newer than an installed one. Stanzas of packages that are not installed
/// are skipped after their `Package` line. Never panics on input; an I/O or
/// decompression error ends the scan with that error.
pub fn scan_packages(
    mut reader: impl BufRead,
    list: usize,
    installed: &InstalledIndex,
    candidates: &mut Candidates,
) -> std::io::Result<ScanStats> {
    let mut stats = ScanStats::default();
    let mut stanza = Stanza::default();
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let eof = reader.read_until(b'\n', &mut line)? == 0;
        let text = trim_newline(&line);
        if eof || text.is_empty() {
            if stanza.lines > 0 {
                stats.stanzas += 1;
                finish(&mut stanza, list, installed, candidates, &mut stats);
            }
            if eof {
                return Ok(stats);
            }
            continue;
        }
        stanza.lines += 1;
        if stanza.skip || text[0] == b' ' || text[0] == b'\t' {
            continue;
        }
        let Some(colon) = text.iter().position(|&b| b == b':') else {
            stanza.malformed = true;
            continue;
        };
        let value = || String::from_utf8_lossy(&text[colon + 1..]).trim().to_owned();
        match &text[..colon] {
            b"Package" => {
                // Most stanzas are for packages that are not installed:
                // look the name up before allocating anything for it.
                let name = std::str::from_utf8(&text[colon + 1..]).map(str::trim).unwrap_or("");
                stanza.skip = !installed.by_name.contains_key(name);
                if !stanza.skip {
                    stanza.package = Some(name.to_owned());
                }
            }
            b"Version" => stanza.version = Some(value()),
            b"Architecture" => stanza.arch = Some(value()),
            _ => {}
        }
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn finish(stanza: &mut Stanza, list: usize, installed: &InstalledIndex, candidates: &mut Candidates, stats: &mut ScanStats) {
    let done = std::mem::take(stanza);
    if done.skip {
        return;
    }
    let (Some(name), Some(version), Some(arch), false) = (done.package, done.version, done.arch, done.malformed) else {
        stats.malformed += 1;
        return;
    };
    let Some(entries) = installed.by_name.get(&name) else { return };
    for (installed_arch, installed_version) in entries {
        let same_arch = *installed_arch == arch || arch == "all" || installed_arch == "all";
        if !same_arch || compare(Ecosystem::Dpkg, &version, installed_version).is_le() {
            continue;
        }
        let key = (name.clone(), installed_arch.clone());
        match candidates.best.get_mut(&key) {
            Some(best) => match compare(Ecosystem::Dpkg, &version, &best.version) {
                std::cmp::Ordering::Greater => {
                    *best = Candidate { installed: installed_version.clone(), version: version.clone(), lists: vec![list] }
                }
                std::cmp::Ordering::Equal if !best.lists.contains(&list) => best.lists.push(list),
                _ => {}
            },
            None => {
                candidates
                    .best
                    .insert(key, Candidate { installed: installed_version.clone(), version: version.clone(), lists: vec![list] });
            }
        }
    }
}

/// The updates found, sorted by name and architecture. `lists` are the
/// list metadata by the index given to [`scan_packages`].
pub fn updates(candidates: Candidates, lists: &[ListMeta]) -> Vec<PendingUpdate> {
    let mut out: Vec<((String, String), PendingUpdate)> = candidates
        .best
        .into_iter()
        .map(|(key, c)| {
            let metas: Vec<&ListMeta> = c.lists.iter().filter_map(|&i| lists.get(i)).collect();
            let security = metas.iter().any(|m| m.is_security());
            let shown = metas.iter().find(|m| m.is_security() == security).and_then(|m| m.describe());
            let update = PendingUpdate {
                name: key.0.clone(),
                installed_version: Some(c.installed),
                available_version: c.version,
                source: UpdateSource::Apt,
                security,
                origin: shown,
            };
            (key, update)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, u)| u).collect()
}

/// The list files of a lists directory: Packages files (plain or lz4)
/// paired with the Release file whose name is their longest prefix, and
/// the Packages files skipped for their compression.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListFiles {
    pub packages: Vec<(String, Option<String>)>,
    pub skipped: Vec<String>,
}

/// Pairs file names of a lists directory (pure: names only).
pub fn pair_list_files(names: &[String]) -> ListFiles {
    let mut releases: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| n.strip_suffix("InRelease").or_else(|| n.strip_suffix("Release")).map(|prefix| (prefix, n.as_str())))
        .filter(|(prefix, _)| prefix.ends_with('_'))
        .collect();
    // InRelease sorts before Release for the same prefix: prefer it.
    releases.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.1.cmp(b.1)));
    let mut files = ListFiles::default();
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    for name in sorted {
        let plain = name.ends_with("_Packages") || name.ends_with("_Packages.lz4");
        let compressed = name.rsplit_once("_Packages.").is_some_and(|(_, ext)| SKIPPED_COMPRESSIONS.contains(&ext));
        if compressed {
            files.skipped.push(name.clone());
        } else if plain {
            let release = releases.iter().find(|(prefix, _)| name.starts_with(prefix)).map(|(_, r)| (*r).to_owned());
            files.packages.push((name.clone(), release));
        }
    }
    files
}

/// Path, size and modification time (ns) of every file the apt answer
/// depends on: the package lists and the dpkg database (status, journal).
type InputStamp = Vec<(String, u64, u128)>;

fn input_stamp(root: &Path) -> InputStamp {
    let mut stamp = Vec::new();
    let mut add = |path: &Path, meta: std::fs::Metadata| {
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        stamp.push((path.display().to_string(), meta.len(), mtime));
    };
    for dir in [under_root(root, LISTS_DIR), under_root(root, "/var/lib/dpkg/updates")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if let Ok(meta) = entry.metadata() {
                    add(&entry.path(), meta);
                }
            }
        }
    }
    let status = under_root(root, "/var/lib/dpkg/status");
    if let Ok(meta) = std::fs::metadata(&status) {
        add(&status, meta);
    }
    stamp.sort();
    stamp
}

/// An answer with the inputs it was computed from, as kept in memory and
/// in the agent's state directory.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Remembered {
    stamp: InputStamp,
    present: bool,
    updates: Vec<PendingUpdate>,
    unreadable: Vec<Unreadable>,
}

impl Remembered {
    fn answer(&self) -> Option<SourceUpdates> {
        self.present.then(|| SourceUpdates { updates: self.updates.clone(), unreadable: self.unreadable.clone() })
    }
}

/// Scanning the lists is most of an inventory's CPU (tens of MB of text),
/// yet they change only when `apt-get update` runs or a package is
/// installed. So the last answer is kept in memory (a running agent) and,
/// when the agent has a state directory, in a file there (one-shot
/// `census-agent inventory` runs), and reused while the inputs' sizes and
/// modification times are unchanged.
static LAST_ANSWER: std::sync::Mutex<Option<Remembered>> = std::sync::Mutex::new(None);
static ANSWER_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Keeps the last answer in `state_dir` as well (set once at start-up).
pub fn remember_answers_in(state_dir: &Path) {
    let _ = ANSWER_FILE.set(state_dir.join("apt-updates.json"));
}

/// Largest answer file read back; a bigger one is ignored and rewritten.
const MAX_ANSWER_FILE: u64 = 16 * 1024 * 1024;

fn recall(stamp: &InputStamp) -> Option<Remembered> {
    if let Some(hit) = LAST_ANSWER.lock().ok().and_then(|g| g.clone()).filter(|r| r.stamp == *stamp) {
        return Some(hit);
    }
    let file = ANSWER_FILE.get()?;
    if std::fs::metadata(file).ok()?.len() > MAX_ANSWER_FILE {
        return None;
    }
    let remembered: Remembered = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    (remembered.stamp == *stamp).then_some(remembered)
}

fn remember(remembered: &Remembered) {
    if let Ok(mut guard) = LAST_ANSWER.lock() {
        *guard = Some(remembered.clone());
    }
    let Some(file) = ANSWER_FILE.get() else { return };
    // Best effort: a failed write only costs the next run a rescan.
    if let Ok(bytes) = serde_json::to_vec(remembered) {
        let tmp = file.with_extension("tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, file);
        }
    }
}

/// Runs the apt source on `root`: `Ok(None)` when there is no lists
/// directory or no dpkg database. Remembered on the inputs' sizes and
/// modification times (see `LAST_ANSWER`).
pub fn collect(root: &Path) -> Result<Option<SourceUpdates>> {
    let stamp = input_stamp(root);
    if let Some(hit) = recall(&stamp) {
        return Ok(hit.answer());
    }
    let answer = scan_all(root)?;
    let (updates, unreadable) = answer.as_ref().map(|a| (a.updates.clone(), a.unreadable.clone())).unwrap_or_default();
    remember(&Remembered { stamp, present: answer.is_some(), updates, unreadable });
    Ok(answer)
}

fn scan_all(root: &Path) -> Result<Option<SourceUpdates>> {
    let dir = under_root(root, LISTS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    let Some(database) = dpkg::read_database(root)? else { return Ok(None) };
    let installed = dpkg::parse_installed(&database);
    drop(database);
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_file())
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_owned());
        }
    }
    let files = pair_list_files(&names);
    let index = InstalledIndex::new(&installed);
    let mut candidates = Candidates::default();
    let mut metas = Vec::with_capacity(files.packages.len());
    let mut unreadable = Vec::new();
    for (packages, release) in &files.packages {
        let meta = match release {
            Some(release) => {
                let path = dir.join(release);
                match std::fs::File::open(&path).and_then(|f| parse_release(BufReader::new(f))) {
                    Ok(meta) => meta,
                    Err(e) => {
                        unreadable.push(Unreadable::from_io(format!("lists[{packages}].release"), &path.display().to_string(), &e));
                        ListMeta::default()
                    }
                }
            }
            None => ListMeta::default(),
        };
        if meta.not_automatic {
            continue;
        }
        let path = dir.join(packages);
        let list = metas.len();
        metas.push(meta);
        match open_list(&path).and_then(|reader| scan_packages(reader, list, &index, &mut candidates)) {
            Ok(stats) if stats.malformed > 0 => unreadable.push(Unreadable::new(
                format!("lists[{packages}]"),
                format!("{} malformed stanzas of installed packages skipped", stats.malformed),
            )),
            Ok(_) => {}
            Err(e) => unreadable.push(Unreadable::from_io(format!("lists[{packages}]"), &path.display().to_string(), &e)),
        }
    }
    if !files.skipped.is_empty() {
        unreadable.push(Unreadable::new(
            "lists",
            format!("{} compressed package lists not read (only plain and lz4 are), e.g. {}", files.skipped.len(), files.skipped[0]),
        ));
    }
    if files.packages.is_empty() && files.skipped.is_empty() {
        unreadable.push(Unreadable::new("lists", format!("no package lists in {} (apt-get update has not run)", dir.display())));
    }
    Ok(Some(SourceUpdates { updates: updates(candidates, &metas), unreadable }))
}

/// A buffered reader over a list, decoding lz4 frames by extension, and
/// bounded by [`MAX_LIST_BYTES`] of decoded text.
fn open_list(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path)?;
    let decoded: Box<dyn Read> = if path.extension().is_some_and(|e| e == "lz4") {
        Box::new(lz4_flex::frame::FrameDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, decoded.take(MAX_LIST_BYTES))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::software::PackageSource;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/updates");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(FIXTURES).join(name)).expect("fixture exists")
    }

    fn installed(list: &[(&str, &str, &str)]) -> InstalledIndex {
        let packages: Vec<Package> = list
            .iter()
            .map(|(name, version, arch)| Package {
                name: (*name).into(),
                version: (*version).into(),
                arch: Some((*arch).into()),
                vendor: None,
                source: PackageSource::Dpkg,
                install_time_unix_ms: None,
            })
            .collect();
        InstalledIndex::new(&packages)
    }

    #[test]
    fn release_fields_are_read_through_the_pgp_armour() {
        let meta = parse_release(&fixture("apt-security_InRelease")[..]).expect("in memory");
        assert_eq!(meta.origin.as_deref(), Some("Debian"));
        assert_eq!(meta.label.as_deref(), Some("Debian-Security"));
        assert_eq!(meta.codename.as_deref(), Some("bookworm-security"));
        assert!(meta.is_security() && !meta.not_automatic);
        assert_eq!(meta.describe().as_deref(), Some("Debian/bookworm-security"));
        let main = parse_release(&fixture("apt-main_Release")[..]).expect("in memory");
        assert_eq!((main.suite.as_deref(), main.is_security()), (Some("stable"), false));
        let backports = parse_release(&b"Origin: Debian Backports\nSuite: bookworm-backports\nNotAutomatic: yes\n"[..]).expect("in memory");
        assert!(backports.not_automatic);
        let ubuntu = ListMeta { label: Some("Ubuntu".into()), suite: Some("jammy-security".into()), ..ListMeta::default() };
        assert!(ubuntu.is_security());
        let label_only = ListMeta { label: Some("Debian-Security".into()), ..ListMeta::default() };
        assert!(label_only.is_security());
    }

    #[test]
    fn newest_greater_version_of_the_same_architecture_wins_and_security_is_marked() {
        let index = installed(&[
            ("openssl", "3.0.11-1~deb12u1", "amd64"),
            ("tzdata", "2024a-0+deb12u1", "all"),
            ("bash", "5.2.15-2+b7", "amd64"),
            ("libc6", "2.36-9+deb12u4", "i386"),
        ]);
        let mut candidates = Candidates::default();
        let main = scan_packages(&fixture("apt-main_Packages")[..], 0, &index, &mut candidates).expect("in memory");
        let security = scan_packages(&fixture("apt-security_Packages")[..], 1, &index, &mut candidates).expect("in memory");
        assert_eq!((main.stanzas, main.malformed, security.malformed), (7, 0, 0));
        let lists = [
            parse_release(&fixture("apt-main_Release")[..]).expect("in memory"),
            parse_release(&fixture("apt-security_InRelease")[..]).expect("in memory"),
        ];
        let found: Vec<(String, Option<String>, String, bool)> =
            updates(candidates, &lists).into_iter().map(|u| (u.name, u.installed_version, u.available_version, u.security)).collect();
        assert_eq!(
            found,
            [
                // libc6 is installed for i386 only: the amd64 build is not its update.
                ("openssl".into(), Some("3.0.11-1~deb12u1".into()), "3.0.13-1~deb12u1".into(), true),
                ("tzdata".into(), Some("2024a-0+deb12u1".into()), "2024b-0+deb12u1".into(), false),
            ]
        );
    }

    #[test]
    fn truncated_and_malformed_lists_keep_what_they_can() {
        let index = installed(&[("openssl", "3.0.11-1~deb12u1", "amd64"), ("tzdata", "2024a-0+deb12u1", "all")]);
        let mut candidates = Candidates::default();
        let stats = scan_packages(&fixture("apt-malformed_Packages")[..], 0, &index, &mut candidates).expect("in memory");
        assert_eq!(stats.malformed, 2, "{stats:?}");
        let mut truncated = Candidates::default();
        let stats = scan_packages(&fixture("apt-truncated_Packages")[..], 0, &index, &mut truncated).expect("in memory");
        assert_eq!(stats.malformed, 1, "{stats:?}");
        let found = updates(truncated, &[ListMeta::default()]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "tzdata");
        // Bytes that are neither UTF-8 nor lines do not panic.
        let mut any = Candidates::default();
        scan_packages(&[0xff, 0xfe, b':', b'\n', b'\n', 0x00][..], 0, &index, &mut any).expect("in memory");
    }

    #[test]
    fn list_files_pair_with_the_longest_release_prefix() {
        let names: Vec<String> = [
            "deb.debian.org_debian_dists_bookworm_InRelease",
            "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
            "deb.debian.org_debian_dists_bookworm-updates_InRelease",
            "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages",
            "deb.debian.org_debian_dists_bookworm_contrib_binary-amd64_Packages.gz",
            "deb.debian.org_debian_dists_bookworm_main_i18n_Translation-en",
            "lock",
        ]
        .map(String::from)
        .to_vec();
        let files = pair_list_files(&names);
        assert_eq!(
            files.packages,
            [
                (
                    "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages".to_string(),
                    Some("deb.debian.org_debian_dists_bookworm-updates_InRelease".to_string())
                ),
                (
                    "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4".to_string(),
                    Some("deb.debian.org_debian_dists_bookworm_InRelease".to_string())
                ),
            ]
        );
        assert_eq!(files.skipped, ["deb.debian.org_debian_dists_bookworm_contrib_binary-amd64_Packages.gz"]);
    }

    #[test]
    fn collects_a_fixture_tree_with_an_lz4_list() {
        let root = tempfile::tempdir().expect("temp dir");
        let lists = root.path().join("var/lib/apt/lists");
        let status = root.path().join("var/lib/dpkg");
        std::fs::create_dir_all(&lists).expect("writable");
        std::fs::create_dir_all(&status).expect("writable");
        std::fs::write(status.join("status"), fixture("apt-dpkg-status")).expect("writable");
        std::fs::write(lists.join("deb.debian.org_debian_dists_bookworm_Release"), fixture("apt-main_Release")).expect("writable");
        let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut encoder, &fixture("apt-main_Packages")).expect("in memory");
        let compressed = encoder.finish().expect("in memory");
        std::fs::write(lists.join("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"), compressed).expect("writable");
        std::fs::write(lists.join("deb.debian.org_debian-security_dists_bookworm-security_InRelease"), fixture("apt-security_InRelease"))
            .expect("writable");
        std::fs::write(
            lists.join("deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages"),
            fixture("apt-security_Packages"),
        )
        .expect("writable");
        std::fs::write(lists.join("deb.debian.org_debian_dists_bookworm_contrib_binary-amd64_Packages.xz"), b"xz").expect("writable");
        // A list that is not lz4 at all fails alone.
        std::fs::write(lists.join("broken.example_dists_x_main_binary-amd64_Packages.lz4"), b"not lz4").expect("writable");

        let found = collect(root.path()).expect("reads").expect("apt is present");
        let names: Vec<(&str, bool)> = found.updates.iter().map(|u| (u.name.as_str(), u.security)).collect();
        // config-files-only "oldpkg" is not installed for apt.
        assert_eq!(names, [("openssl", true), ("tzdata", false)]);
        assert_eq!(found.updates[0].origin.as_deref(), Some("Debian/bookworm-security"));
        let fields: Vec<&str> = found.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["lists[broken.example_dists_x_main_binary-amd64_Packages.lz4]", "lists"], "{:?}", found.unreadable);
        assert!(found.unreadable[1].reason.contains("1 compressed"), "{:?}", found.unreadable);
        assert!(collect(&root.path().join("nowhere")).expect("absent is fine").is_none());

        // Memoised: the same inputs give the same answer without a rescan;
        // a changed dpkg database (here: openssl removed) is seen at once.
        let again = collect(root.path()).expect("reads").expect("apt is present");
        assert_eq!(again.updates.len(), found.updates.len());
        let status_text = String::from_utf8(fixture("apt-dpkg-status")).expect("utf-8 fixture");
        let without_openssl: String =
            status_text.split("\n\n").filter(|s| !s.contains("Package: openssl\n")).collect::<Vec<_>>().join("\n\n");
        assert_ne!(without_openssl.len(), status_text.len(), "fixture has an openssl stanza");
        std::fs::write(status.join("status"), without_openssl).expect("writable");
        let after = collect(root.path()).expect("reads").expect("apt is present");
        let names: Vec<&str> = after.updates.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["tzdata"], "the removed package no longer has an update");
    }
}
