//! Small file-writing primitives shared by the PKI and `init`: atomic
//! replace (temporary file, fsync, rename) with an explicit mode, so a crash
//! never leaves a half-written key and a key is never world-readable; a
//! replaced file keeps its owner.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically with permission `mode` (Unix).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
    keep_owner(path, &file).map_err(|e| Error::io("keeping the owner of", path, e))?;
    file.write_all(bytes).map_err(|e| Error::io("writing", &tmp, e))?;
    file.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming into", path, e))?;
    Ok(())
}

/// Gives the new file the owner of the file it is about to replace, so a
/// rotation run as root leaves the service's user able to read its key.
#[cfg(unix)]
fn keep_owner(path: &Path, new: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(old) = std::fs::metadata(path) else { return Ok(()) };
    let ours = new.metadata()?;
    if (old.uid(), old.gid()) != (ours.uid(), ours.gid()) {
        std::os::unix::fs::fchown(new, Some(old.uid()), Some(old.gid()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn keep_owner(_path: &Path, _new: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// Writes a secret (private key) readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes, 0o600)
}
