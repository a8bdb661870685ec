//! Bounded reads of OS files under the inventory root, shared by the
//! section collectors.
//!
//! Invariant: a file longer than the caller's limit is refused with an
//! error, never read whole: an OS file that has grown without bound (a
//! runaway wtmp, a corrupt sysfs node) must not take the agent's memory.
//! Errors stay `std::io::Error` so callers can word them for operators with
//! `inventory::unreadable::io_reason`.

use std::io::Read;
use std::path::Path;

/// Reads `rel` (relative to `root`) as bytes, refusing files longer than
/// `limit` bytes.
pub fn read_under_bytes(root: &Path, rel: &str, limit: usize) -> std::io::Result<Vec<u8>> {
    let path = root.join(rel);
    let mut buf = Vec::new();
    std::fs::File::open(&path)?.take(limit as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > limit {
        return Err(std::io::Error::other(format!("{} is larger than {limit} bytes", path.display())));
    }
    Ok(buf)
}

/// Reads `rel` (relative to `root`) as text, refusing files longer than
/// `limit` bytes. Bytes that are not UTF-8 are replaced, not fatal: OS text
/// files are ASCII in practice, and one odd byte must not hide a value.
pub fn read_under(root: &Path, rel: &str, limit: usize) -> std::io::Result<String> {
    read_under_bytes(root, rel, limit).map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_files_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        assert_eq!(read_under(dir.path(), "f", 5).unwrap(), "12345");
        let e = read_under(dir.path(), "f", 4).unwrap_err();
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
        assert_eq!(read_under_bytes(dir.path(), "missing", 4).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }
}
