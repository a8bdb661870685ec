//! TLS certificates on the host: system trust store additions and service
//! certificates, read under `root` and parsed by `x509` (pure).
//!
//! Which files, in this order (a file reached twice, e.g. through a
//! symlink, is reported once, under the first location and path):
//! 1. Trust store additions: `/usr/local/share/ca-certificates` (Debian's
//!    admin-added CAs), `/etc/pki/ca-trust/source/anchors` (Red Hat's), and
//!    the files of `/etc/ssl/certs` that are not the distribution's: a file
//!    whose symlink chain ends under `/usr/share/ca-certificates` (or another
//!    of [`DISTRO_TRUST`]) is a distro CA and skipped (from every location
//!    but the configured paths), and so are the
//!    generated bundles (`ca-certificates.crt`, `ca-bundle.crt`, ...) which
//!    hold every distro CA. On Debian, `update-ca-certificates` links local
//!    additions into `/etc/ssl/certs`; those resolve to step 1's files.
//! 2. Service certificates under `/etc/ssl`, `/etc/pki` and
//!    `/etc/letsencrypt/live` (whose files are symlinks into `archive/`; the
//!    live names are reported, `archive/` with its expired history is not).
//!    Directories named `private` are not entered.
//! 3. The agent's `certificate_paths` (files or directories).
//!
//! Only files named `*.pem`, `*.crt`, `*.cer` or `*.der` are read (hash links
//! such as `1a2b3c4d.0` and keystores are not), private key files
//! (`*.key`, `privkey*`) are not opened, and private key blocks inside a PEM
//! file are skipped unread. Bounded: [`MAX_FILE_BYTES`] per file,
//! [`MAX_FILES`] files, [`MAX_DEPTH`] directory levels; symlinked
//! directories are not followed (a loop cannot trap the scan), symlinked
//! files are, within `root`.

pub mod x509;

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::collect::fs::read_under_bytes;
use crate::error::Result;
use crate::inventory::certificates::{CertificateLocation, Certificates};
use crate::inventory::unreadable::{Unreadable, io_reason};

/// A certificate file is a few KiB; a bundle a few hundred.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Files read per scan, all locations together.
pub const MAX_FILES: usize = 2000;
/// Directory levels below each scanned directory.
pub const MAX_DEPTH: usize = 6;
/// `unreadable` entries kept; the rest are counted in one more entry.
const MAX_UNREADABLE: usize = 50;

/// Where distributions keep their own CAs: files resolving here are not
/// "additions".
pub const DISTRO_TRUST: [&str; 5] = [
    "/usr/share/ca-certificates/",
    "/etc/pki/ca-trust/extracted/",
    "/usr/share/pki/",
    "/etc/ca-certificates/extracted/",
    "/var/lib/ca-certificates/",
];

/// Generated bundles of all distro CAs.
pub const DISTRO_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/tls/certs/ca-bundle.trust.crt",
];

const TRUST_STORE_DIRS: [&str; 3] = ["/usr/local/share/ca-certificates", "/etc/pki/ca-trust/source/anchors", "/etc/ssl/certs"];
const SERVICE_DIRS: [&str; 3] = ["/etc/ssl", "/etc/pki", "/etc/letsencrypt/live"];
const EXTENSIONS: [&str; 4] = ["pem", "crt", "cer", "der"];

/// Scans the host under `root`; `configured` are absolute host paths.
/// Never fails as a whole: unreadable files and directories are listed.
pub fn collect(root: &Path, configured: &[PathBuf]) -> Result<Certificates> {
    let mut scan = Scan { root, seen: HashSet::new(), files_read: 0, section: Certificates::default(), dropped: 0 };
    for dir in TRUST_STORE_DIRS {
        scan.walk(Path::new(dir), CertificateLocation::TrustStore, 0, false);
    }
    for dir in SERVICE_DIRS {
        scan.walk(Path::new(dir), CertificateLocation::Service, 0, false);
    }
    for path in configured {
        scan.walk(path, CertificateLocation::Configured, 0, true);
    }
    let mut section = scan.section;
    if scan.dropped > 0 {
        section.unreadable.push(Unreadable::new("files", format!("{} more unreadable files not listed", scan.dropped)));
    }
    section.certificates.sort_by(|a, b| (&a.path, a.index).cmp(&(&b.path, b.index)));
    Ok(section)
}

struct Scan<'a> {
    root: &'a Path,
    /// Resolved host paths already read (or skipped on purpose).
    seen: HashSet<PathBuf>,
    files_read: usize,
    section: Certificates,
    dropped: usize,
}

impl Scan<'_> {
    fn unreadable(&mut self, field: String, reason: String) {
        if self.section.unreadable.len() < MAX_UNREADABLE {
            self.section.unreadable.push(Unreadable::new(field, reason));
        } else {
            self.dropped += 1;
        }
    }

    /// Walks `path` (a host path): a directory is listed, a file read.
    /// `explicit` paths (configured) are read whatever their extension and
    /// reported when missing.
    fn walk(&mut self, path: &Path, location: CertificateLocation, depth: usize, explicit: bool) {
        let on_disk = under(self.root, path);
        let meta = match std::fs::symlink_metadata(&on_disk) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return,
            Err(e) => return self.unreadable(format!("files[{}]", path.display()), io_reason(&path.display().to_string(), &e)),
        };
        // Top-level scan roots may be symlinks (Fedora's /etc/ssl/certs ->
        // ../pki/tls/certs); below them, symlinked directories are not followed.
        let is_dir = if meta.file_type().is_symlink() { depth == 0 && on_disk.is_dir() } else { meta.is_dir() };
        if is_dir {
            if depth > 0 && path.file_name().is_some_and(|n| n == "private") {
                return;
            }
            if depth >= MAX_DEPTH {
                return self
                    .unreadable(format!("files[{}]", path.display()), format!("deeper than {MAX_DEPTH} directory levels: not scanned"));
            }
            let entries = match std::fs::read_dir(&on_disk) {
                Ok(entries) => entries,
                Err(e) => return self.unreadable(format!("files[{}]", path.display()), io_reason(&path.display().to_string(), &e)),
            };
            let mut names: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
            names.sort();
            for name in names {
                self.walk(&path.join(name), location, depth + 1, false);
            }
            return;
        }
        if !explicit && !is_certificate_name(path) {
            return;
        }
        self.file(path, location);
    }

    fn file(&mut self, path: &Path, location: CertificateLocation) {
        let Some(resolved) = resolve(self.root, path) else {
            return self.unreadable(format!("files[{}]", path.display()), "symlink loop or a link leaving the root".into());
        };
        let text = resolved.to_string_lossy().into_owned();
        if DISTRO_BUNDLES.contains(&text.as_str()) || DISTRO_BUNDLES.iter().any(|b| Path::new(b) == path) {
            return;
        }
        // The distro's CAs are neither additions nor service certificates,
        // wherever they are reached from; a configured path is read anyway.
        if location != CertificateLocation::Configured && DISTRO_TRUST.iter().any(|d| text.starts_with(d)) {
            return;
        }
        if !self.seen.insert(resolved.clone()) {
            return;
        }
        if self.files_read >= MAX_FILES {
            return self.unreadable("files".into(), format!("more than {MAX_FILES} certificate files: the rest are not read"));
        }
        self.files_read += 1;
        let rel = resolved.strip_prefix("/").unwrap_or(&resolved);
        let bytes = match read_under_bytes(self.root, &rel.to_string_lossy(), MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => return self.unreadable(format!("files[{}]", path.display()), io_reason(&path.display().to_string(), &e)),
        };
        let found = x509::parse_file(&bytes, &path.display().to_string(), location);
        for problem in found.problems {
            self.unreadable(format!("files[{}]", path.display()), problem);
        }
        self.section.certificates.extend(found.certificates);
    }
}

/// Whether a file name looks like a certificate and not like a key.
pub fn is_certificate_name(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    if name.starts_with("privkey") || name.contains(".key") {
        return false;
    }
    path.extension().is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// `root` joined with a host path.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Follows the symlink chain of the host path `path` inside `root`
/// (absolute targets are taken relative to `root`), returning the final
/// host path, lexically normalised. `None` after 16 links or when a link
/// climbs above the root.
pub fn resolve(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut current = normalise(path)?;
    for _ in 0..16 {
        match std::fs::read_link(under(root, &current)) {
            Ok(target) => {
                let next = if target.is_absolute() { target } else { current.parent()?.join(target) };
                current = normalise(&next)?;
            }
            Err(_) => return Some(current),
        }
    }
    None
}

fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(part) => out.push(part),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certificates/tree")
    }

    #[test]
    fn scans_the_fixture_tree_by_the_documented_rule() {
        let section =
            collect(&tree(), &[PathBuf::from("/etc/letsencrypt/archive/example.test/chain1.pem"), PathBuf::from("/srv/missing.pem")])
                .expect("never fails");
        let found: Vec<(&str, u32, CertificateLocation, &str)> =
            section.certificates.iter().map(|c| (c.path.as_str(), c.index, c.location, c.subject.as_str())).collect();
        use CertificateLocation::*;
        assert_eq!(
            found,
            [
                // The configured chain1.pem is the target of live/chain.pem, already reported.
                ("/etc/letsencrypt/live/example.test/cert.pem", 0, Service, "CN=example.test"),
                ("/etc/letsencrypt/live/example.test/chain.pem", 0, Service, "CN=Census Test CA"),
                ("/etc/letsencrypt/live/example.test/fullchain.pem", 0, Service, "CN=example.test"),
                ("/etc/letsencrypt/live/example.test/fullchain.pem", 1, Service, "CN=Census Test CA"),
                ("/etc/pki/tls/certs/expired.crt", 0, Service, "CN=expired.example.test"),
                ("/etc/ssl/web.pem", 0, Service, "O=Census Test, CN=web.example.test"),
                ("/usr/local/share/ca-certificates/local-ca.crt", 0, TrustStore, "CN=Census Local Root"),
            ]
        );
        let fields: Vec<&str> = section.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["files[/etc/ssl/garbage.crt]", "files[/srv/missing.pem]"], "{:?}", section.unreadable);
        assert!(section.unreadable[1].reason.contains("not present"), "{:?}", section.unreadable);
    }

    #[test]
    fn distro_cas_and_bundles_are_not_additions() {
        let section = collect(&tree(), &[]).expect("never fails");
        assert!(!section.certificates.iter().any(|c| c.subject.contains("Distro Root")));
        assert!(!section.certificates.iter().any(|c| c.path.contains("ca-certificates.crt") || c.path.contains("ca-bundle")));
        assert_eq!(
            resolve(&tree(), Path::new("/etc/ssl/certs/Distro_Root.pem")),
            Some(PathBuf::from("/usr/share/ca-certificates/mozilla/Distro_Root.crt"))
        );
        assert_eq!(
            resolve(&tree(), Path::new("/etc/ssl/certs/1a2b3c4d.0")),
            Some(PathBuf::from("/usr/local/share/ca-certificates/local-ca.crt"))
        );
    }

    #[test]
    fn names_and_bounds() {
        assert!(is_certificate_name(Path::new("/etc/ssl/web.pem")));
        assert!(is_certificate_name(Path::new("/etc/ssl/WEB.CRT")));
        assert!(!is_certificate_name(Path::new("/etc/ssl/web.key")));
        assert!(!is_certificate_name(Path::new("/etc/ssl/web.key.pem")));
        assert!(!is_certificate_name(Path::new("/etc/letsencrypt/live/x/privkey.pem")));
        assert!(!is_certificate_name(Path::new("/etc/ssl/certs/1a2b3c4d.0")));
        assert_eq!(normalise(Path::new("/a/../../b")), None);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut deep = dir.path().join("etc/ssl");
        for level in 0..=MAX_DEPTH {
            deep = deep.join(format!("d{level}"));
        }
        std::fs::create_dir_all(&deep).expect("writable");
        std::fs::write(dir.path().join("etc/ssl/big.pem"), vec![b'a'; MAX_FILE_BYTES + 1]).expect("writable");
        std::os::unix::fs::symlink("loop.pem", dir.path().join("etc/ssl/loop.pem")).expect("symlink");
        let section = collect(dir.path(), &[]).expect("never fails");
        let reasons: Vec<String> = section.unreadable.iter().map(|u| format!("{}: {}", u.field, u.reason)).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("big.pem") && reasons[0].contains("larger than"), "{reasons:?}");
        assert!(reasons[1].contains("d0/d1/d2/d3/d4/d5") && reasons[1].contains("deeper"), "{reasons:?}");
        assert!(reasons[2].contains("loop.pem") && reasons[2].contains("loop"), "{reasons:?}");
    }
}
