//! Backup files: a consistent copy of a collector (its whole store and its
//! PKI directory) in one file, and the restore of such a file into a new
//! data directory.
//!
//! Layout: the magic line `census-backup\n`, then frames, each a 4-byte
//! big-endian length and a prost `Frame`: one `Header`, the PKI files, the
//! store's dump (`store::DumpItem`: id floor, then each tree and its
//! entries), and a `Trailer` holding the SHA-256 of every byte before it.
//! Nothing may follow the trailer. A file that is truncated, altered, from
//! a newer format or missing a PKI file is refused whole before anything is
//! written.
//!
//! Invariants:
//! - A backup holds the CA's private key: every backup file is created
//!   with mode 0600 (a temporary file renamed into place once complete),
//!   and its contents are never logged.
//! - The store part is one point in time (`Store::export` pauses writes).
//! - Restore writes only into a data directory that is absent or empty,
//!   and removes what it wrote when it fails.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use prost::Message;
use sha2::{Digest as _, Sha256};

use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::pki::PKI_FILES;
use crate::store::{DumpItem, Store};

const MAGIC: &[u8] = b"census-backup\n";
/// Version of this layout; a reader refuses a newer one.
pub const FORMAT_VERSION: u32 = 1;
/// Largest frame a reader accepts: far above any stored record (reports
/// are bounded by `limits.max_message_bytes`).
const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;
/// File name extension of backups made into a directory.
pub const EXTENSION: &str = "census-backup";

#[derive(Clone, PartialEq, prost::Message)]
struct Frame {
    #[prost(oneof = "frame::Body", tags = "1, 2, 3, 4, 5, 6")]
    body: Option<frame::Body>,
}

mod frame {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        #[prost(message, tag = "1")]
        Header(super::Header),
        #[prost(message, tag = "2")]
        File(super::PkiFile),
        #[prost(uint64, tag = "3")]
        IdFloor(u64),
        #[prost(bytes = "vec", tag = "4")]
        Tree(Vec<u8>),
        #[prost(message, tag = "5")]
        Entry(super::Entry),
        #[prost(message, tag = "6")]
        Trailer(super::Trailer),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct Header {
    #[prost(uint32, tag = "1")]
    format_version: u32,
    #[prost(int64, tag = "2")]
    created_at_unix_ms: i64,
    /// Version of the collector that wrote it.
    #[prost(string, tag = "3")]
    collector_version: String,
    /// The store's `SCHEMA_VERSION` when it was written.
    #[prost(uint32, tag = "4")]
    schema_version: u32,
}

/// One file of `<data_dir>/pki`. Its mode is not stored: restore gives
/// private keys 0600 and certificates 0644, whatever the file says.
#[derive(Clone, PartialEq, prost::Message)]
struct PkiFile {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(bytes = "vec", tag = "2")]
    contents: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Entry {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Trailer {
    /// Store entries in the file.
    #[prost(uint64, tag = "1")]
    entries: u64,
    /// SHA-256 of every byte before the trailer's frame.
    #[prost(bytes = "vec", tag = "2")]
    sha256: Vec<u8>,
}

/// What a backup file holds, as `write` made it or `verify` read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub created_at_unix_ms: i64,
    pub collector_version: String,
    pub schema_version: u32,
    /// Entries of the `agents` tree: the hosts in the backup.
    pub agents: u64,
    pub trees: u64,
    pub entries: u64,
    /// Bytes of the whole file.
    pub bytes: u64,
    /// SHA-256 of everything before the trailer, hex.
    pub sha256: String,
}

struct FrameWriter<W: Write> {
    out: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> FrameWriter<W> {
    fn new(mut out: W) -> Result<FrameWriter<W>> {
        out.write_all(MAGIC).map_err(write_err)?;
        let mut hasher = Sha256::new();
        hasher.update(MAGIC);
        Ok(FrameWriter { out, hasher, bytes: MAGIC.len() as u64 })
    }

    fn frame(&mut self, body: frame::Body) -> Result<()> {
        let encoded = Frame { body: Some(body) }.encode_to_vec();
        let len = u32::try_from(encoded.len())
            .ok()
            .filter(|n| *n as usize <= MAX_FRAME_BYTES)
            .ok_or_else(|| Error::Store(format!("a stored record of {} bytes is too large for a backup frame", encoded.len())))?;
        let prefix = len.to_be_bytes();
        self.hasher.update(prefix);
        self.hasher.update(&encoded);
        self.out.write_all(&prefix).and_then(|_| self.out.write_all(&encoded)).map_err(write_err)?;
        self.bytes += 4 + encoded.len() as u64;
        Ok(())
    }

    /// Writes the trailer; returns the digest it carries and the file size.
    fn finish(mut self, entries: u64) -> Result<(String, u64, W)> {
        let digest = std::mem::take(&mut self.hasher).finalize().to_vec();
        let encoded = Frame { body: Some(frame::Body::Trailer(Trailer { entries, sha256: digest.clone() })) }.encode_to_vec();
        let len = u32::try_from(encoded.len()).expect("a trailer is a few dozen bytes");
        self.out.write_all(&len.to_be_bytes()).and_then(|_| self.out.write_all(&encoded)).map_err(write_err)?;
        self.out.flush().map_err(write_err)?;
        Ok((hex::encode(digest), self.bytes + 4 + encoded.len() as u64, self.out))
    }
}

fn write_err(e: std::io::Error) -> Error {
    Error::io("writing", "the backup", e)
}

/// Writes a backup of `store` and the PKI files in `pki_dir` to `out`.
/// Writes to the store wait while its dump is taken.
pub fn write<W: Write>(store: &dyn Store, pki_dir: &Path, out: W, now: SystemTime) -> Result<(Summary, W)> {
    let mut w = FrameWriter::new(out)?;
    let header = Header {
        format_version: FORMAT_VERSION,
        created_at_unix_ms: unix_ms(now),
        collector_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: crate::store::sled::SCHEMA_VERSION,
    };
    w.frame(frame::Body::Header(header.clone()))?;
    for (name, _) in PKI_FILES {
        let path = pki_dir.join(name);
        let contents = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
        w.frame(frame::Body::File(PkiFile { name: name.to_string(), contents }))?;
    }
    let mut agents = 0;
    let mut in_agents = false;
    let dumped = store.export(&mut |item| {
        match &item {
            DumpItem::Tree(name) => in_agents = name.as_slice() == b"agents",
            DumpItem::Entry(..) if in_agents => agents += 1,
            _ => {}
        }
        w.frame(match item {
            DumpItem::IdFloor(f) => frame::Body::IdFloor(f),
            DumpItem::Tree(name) => frame::Body::Tree(name),
            DumpItem::Entry(key, value) => frame::Body::Entry(Entry { key, value }),
        })
    })?;
    let (sha256, bytes, out) = w.finish(dumped.entries)?;
    let summary = Summary {
        created_at_unix_ms: header.created_at_unix_ms,
        collector_version: header.collector_version,
        schema_version: header.schema_version,
        agents,
        trees: dumped.trees,
        entries: dumped.entries,
        bytes,
        sha256,
    };
    Ok((summary, out))
}

/// Writes a backup into a new private file at `path`: a temporary file
/// beside it (mode 0600), synced, then renamed into place.
pub fn write_file(store: &dyn Store, pki_dir: &Path, path: &Path, now: SystemTime) -> Result<Summary> {
    let tmp = partial_path(path);
    let result = (|| {
        let file = create_private(&tmp)?;
        let (summary, out) = write(store, pki_dir, BufWriter::new(file), now)?;
        let file = out.into_inner().map_err(|e| Error::io("writing", &tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming into", path, e))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `census-collector backup`: a backup of a stopped collector's data
/// directory into `out` (a file, or a directory to create a dated file
/// in). Returns the file written.
pub fn backup_offline(data_dir: &Path, out: &Path, now: SystemTime) -> Result<(PathBuf, Summary)> {
    let store = crate::init::open_offline(data_dir, "take the backup through it instead: `census backup --out FILE` (admin token)")?;
    let path = output_path(out, now);
    let summary = write_file(&store, &data_dir.join("pki"), &path, now)?;
    Ok((path, summary))
}

/// Where a backup is written while incomplete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// Creates (or truncates) a file readable by its owner only.
pub fn create_private(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(|e| Error::io("creating", path, e))?;
        // A file that existed keeps its mode through `open`: narrow it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io("restricting", path, e))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path).map_err(|e| Error::io("creating", path, e))
}

/// The file a backup goes to: `out` itself, or, when `out` is a
/// directory, `census-<UTC time>.census-backup` inside it.
pub fn output_path(out: &Path, now: SystemTime) -> PathBuf {
    if out.is_dir() {
        let stamp = crate::clock::rfc3339_seconds(unix_ms(now)).replace([':', '-'], "");
        out.join(format!("census-{stamp}.{EXTENSION}"))
    } else {
        out.to_path_buf()
    }
}

/// Reads frames, checking the magic, the bounds and, at the trailer, the
/// digest. `next` returns `None` only after a valid trailer at the very end.
struct FrameReader<R: Read> {
    input: R,
    hasher: Sha256,
    bytes: u64,
    done: bool,
    path: PathBuf,
}

impl<R: Read> FrameReader<R> {
    fn new(mut input: R, path: &Path) -> Result<FrameReader<R>> {
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(|_| corrupt(path, "it does not start like a Census backup"))?;
        if magic != MAGIC {
            return Err(corrupt(path, "it does not start like a Census backup"));
        }
        let mut hasher = Sha256::new();
        hasher.update(MAGIC);
        Ok(FrameReader { input, hasher, bytes: MAGIC.len() as u64, done: false, path: path.to_path_buf() })
    }

    fn next(&mut self) -> Result<Option<frame::Body>> {
        if self.done {
            return Ok(None);
        }
        let mut prefix = [0u8; 4];
        self.input.read_exact(&mut prefix).map_err(|_| corrupt(&self.path, "it ends before its trailer (truncated?)"))?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(corrupt(&self.path, &format!("a frame claims {len} bytes")));
        }
        let mut encoded = vec![0u8; len];
        self.input.read_exact(&mut encoded).map_err(|_| corrupt(&self.path, "it ends inside a frame (truncated?)"))?;
        self.bytes += 4 + len as u64;
        let body = Frame::decode(encoded.as_slice())
            .map_err(|e| corrupt(&self.path, &format!("a frame does not decode: {e}")))?
            .body
            .ok_or_else(|| corrupt(&self.path, "a frame is empty"))?;
        if let frame::Body::Trailer(t) = &body {
            let digest = std::mem::take(&mut self.hasher).finalize();
            if t.sha256.as_slice() != digest.as_slice() {
                return Err(corrupt(&self.path, "its checksum does not match its contents (altered or damaged)"));
            }
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra).map_err(|e| Error::io("reading", &self.path, e))? != 0 {
                return Err(corrupt(&self.path, "bytes follow its trailer"));
            }
            self.done = true;
        } else {
            self.hasher.update(prefix);
            self.hasher.update(&encoded);
        }
        Ok(Some(body))
    }
}

fn corrupt(path: &Path, why: &str) -> Error {
    Error::InvalidArgument(format!("{} is not a usable backup: {why}", path.display()))
}

/// The header, the PKI files and then the store's dump, in order, with
/// the structure checked as it goes.
struct BackupReader<R: Read> {
    frames: FrameReader<R>,
    header: Header,
    files: Vec<PkiFile>,
    /// A dump item read while looking for the end of the PKI files.
    pending: Option<frame::Body>,
    entries: u64,
    trailer: Option<Trailer>,
}

impl<R: Read> BackupReader<R> {
    fn open(input: R, path: &Path) -> Result<BackupReader<R>> {
        let mut frames = FrameReader::new(input, path)?;
        let header = match frames.next()? {
            Some(frame::Body::Header(h)) => h,
            _ => return Err(corrupt(path, "its first frame is not a header")),
        };
        if header.format_version > FORMAT_VERSION {
            return Err(Error::InvalidArgument(format!(
                "{} was written by collector {} in backup format {}; this collector reads format {FORMAT_VERSION}: restore it with that version or newer",
                path.display(),
                header.collector_version,
                header.format_version
            )));
        }
        let mut files: Vec<PkiFile> = Vec::new();
        let pending = loop {
            match frames.next()? {
                Some(frame::Body::File(f)) => {
                    if !PKI_FILES.iter().any(|(name, _)| *name == f.name) || files.iter().any(|g| g.name == f.name) {
                        return Err(corrupt(path, &format!("it holds an unexpected PKI file {:?}", f.name)));
                    }
                    files.push(f);
                }
                other => break other,
            }
        };
        if let Some((missing, _)) = PKI_FILES.iter().find(|(name, _)| !files.iter().any(|f| f.name == *name)) {
            return Err(corrupt(path, &format!("it lacks the PKI file {missing}")));
        }
        Ok(BackupReader { frames, header, files, pending, entries: 0, trailer: None })
    }

    /// The next item of the store's dump; `None` after the trailer.
    fn next_item(&mut self) -> Result<Option<DumpItem>> {
        let body = match self.pending.take() {
            Some(b) => Some(b),
            None => self.frames.next()?,
        };
        match body {
            Some(frame::Body::IdFloor(f)) => Ok(Some(DumpItem::IdFloor(f))),
            Some(frame::Body::Tree(name)) => Ok(Some(DumpItem::Tree(name))),
            Some(frame::Body::Entry(e)) => {
                self.entries += 1;
                Ok(Some(DumpItem::Entry(e.key, e.value)))
            }
            Some(frame::Body::Trailer(t)) => {
                if t.entries != self.entries {
                    return Err(corrupt(&self.frames.path, "its entry count does not match its trailer"));
                }
                self.trailer = Some(t);
                Ok(None)
            }
            None if self.trailer.is_some() => Ok(None),
            Some(frame::Body::Header(_) | frame::Body::File(_)) | None => {
                Err(corrupt(&self.frames.path, "a header or PKI file appears inside the store's dump"))
            }
        }
    }
}

impl<R: Read> Iterator for BackupReader<R> {
    type Item = Result<DumpItem>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

fn open_backup(path: &Path) -> Result<BackupReader<BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    BackupReader::open(BufReader::with_capacity(1024 * 1024, file), path)
}

/// Reads a whole backup file and checks it: structure, PKI files, entry
/// count and checksum. Writes nothing.
pub fn verify(path: &Path) -> Result<Summary> {
    let mut reader = open_backup(path)?;
    let (mut agents, mut trees, mut in_agents) = (0, 0, false);
    while let Some(item) = reader.next_item()? {
        match item {
            DumpItem::Tree(name) => {
                trees += 1;
                in_agents = name == b"agents";
            }
            DumpItem::Entry(..) if in_agents => agents += 1,
            _ => {}
        }
    }
    let trailer = reader.trailer.take().expect("next_item returns None only after the trailer");
    Ok(Summary {
        created_at_unix_ms: reader.header.created_at_unix_ms,
        collector_version: reader.header.collector_version.clone(),
        schema_version: reader.header.schema_version,
        agents,
        trees,
        entries: reader.entries,
        bytes: reader.frames.bytes,
        sha256: hex::encode(trailer.sha256),
    })
}

/// Restores the backup at `from` into `data_dir`, which must be absent or
/// empty: the file is checked whole first, then the PKI directory is
/// written (keys 0600) and the store rebuilt. On failure, what was written
/// is removed.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Summary> {
    if std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::AlreadyInitialised(data_dir.to_path_buf()));
    }
    let summary = verify(from)?;
    let created = !data_dir.exists();
    let result = restore_checked(from, data_dir);
    if result.is_err() {
        if created {
            let _ = std::fs::remove_dir_all(data_dir);
        } else if let Ok(entries) = std::fs::read_dir(data_dir) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path()).or_else(|_| std::fs::remove_file(entry.path()));
            }
        }
    }
    result.map(|()| summary)
}

fn restore_checked(from: &Path, data_dir: &Path) -> Result<()> {
    crate::init::create_data_dir(data_dir)?;
    let mut reader = open_backup(from)?;
    let pki_dir = data_dir.join("pki");
    std::fs::create_dir_all(&pki_dir).map_err(|e| Error::io("creating", &pki_dir, e))?;
    for file in std::mem::take(&mut reader.files) {
        let mode = PKI_FILES.iter().find(|(name, _)| *name == file.name).map(|(_, mode)| *mode).expect("names were checked on open");
        crate::fsutil::write_atomic(&pki_dir.join(&file.name), &file.contents, mode)?;
    }
    crate::store::sled::import(&crate::store::sled::SledStore::path_in(data_dir), &mut reader)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::SledStore;

    /// An initialised collector with one agent that reported once.
    fn collector(dir: &Path) -> SledStore {
        crate::init::init(dir, &["localhost".into()]).expect("init");
        let store = SledStore::open(&SledStore::path_in(dir)).expect("open");
        store.enroll_agent(crate::store::test_agent("0123456789abcdef0123456789abcdef", "u1", 1)).expect("enroll");
        let heartbeat = census_proto::v1::Report {
            seq: 1,
            created_at_unix_ms: 0,
            body: Some(census_proto::v1::report::Body::Heartbeat(Default::default())),
        };
        store.put_reports("0123456789abcdef0123456789abcdef", &[heartbeat], 5).expect("report");
        store
    }

    /// A collector in `dir/source` and its backup in `dir/one.census-backup`.
    fn backed_up(dir: &Path) -> (PathBuf, SledStore, PathBuf, Summary) {
        let source = dir.join("source");
        let store = collector(&source);
        let file = dir.join("one.census-backup");
        let written = write_file(&store, &source.join("pki"), &file, SystemTime::now()).expect("backup");
        (source, store, file, written)
    }

    #[test]
    fn a_backup_restores_store_and_pki_and_is_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let (source, store, file, written) = backed_up(dir.path());
        assert!(written.trees > 5 && written.entries >= 3, "{written:?}");
        assert_eq!(written.agents, 1);
        assert_eq!(written.bytes, std::fs::metadata(&file).expect("meta").len());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(verify(&file).expect("verify"), written, "what verify reads is what write wrote");

        let target = dir.path().join("target");
        let restored = restore(&file, &target).expect("restore");
        assert_eq!(restored, written);
        for (name, mode) in PKI_FILES {
            let a = std::fs::read(source.join("pki").join(name)).expect("source pki");
            assert_eq!(std::fs::read(target.join("pki").join(name)).expect("restored pki"), a, "{name}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let found = std::fs::metadata(target.join("pki").join(name)).expect("meta").permissions().mode() & 0o777;
                assert_eq!(found, mode, "{name}");
            }
        }
        drop(store);
        // Dumps of both stores are equal, apart from the id floor.
        let dump = |d: &Path| {
            let s = SledStore::open(&SledStore::path_in(d)).expect("open");
            let mut items = Vec::new();
            s.export(&mut |i| {
                if !matches!(i, DumpItem::IdFloor(_)) {
                    items.push(i);
                }
                Ok(())
            })
            .expect("export");
            items
        };
        assert_eq!(dump(&source), dump(&target));
        let again = restore(&file, &target).expect_err("target is not empty");
        assert!(matches!(again, Error::AlreadyInitialised(_)), "{again}");
    }

    #[test]
    fn damaged_or_truncated_files_are_refused_and_nothing_is_left() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_, _, file, _) = backed_up(dir.path());
        let good = std::fs::read(&file).expect("read");

        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("truncated", good[..good.len() - 10].to_vec(), "truncated"),
            (
                "flipped",
                {
                    let mut b = good.clone();
                    let middle = b.len() / 2;
                    b[middle] ^= 0x40;
                    b
                },
                "not a usable backup",
            ),
            ("extra", [good.as_slice(), b"x"].concat(), "bytes follow its trailer"),
            ("other", b"PK\x03\x04 a zip file".to_vec(), "does not start like a Census backup"),
        ];
        for (name, bytes, expected) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            let target = dir.path().join(format!("target-{name}"));
            let err = restore(&path, &target).expect_err(name);
            assert!(matches!(err, Error::InvalidArgument(_)), "{name}: {err}");
            assert!(err.to_string().contains(expected), "{name}: {err}");
            assert!(!target.exists(), "{name}: nothing written");
        }
    }

    #[test]
    fn a_directory_gets_a_dated_file_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let at = crate::clock::from_unix_ms(1_764_000_000_000);
        assert_eq!(output_path(dir.path(), at), dir.path().join("census-20251124T160000Z.census-backup"));
        let file = dir.path().join("mine.bak");
        assert_eq!(output_path(&file, at), file);
    }
}
