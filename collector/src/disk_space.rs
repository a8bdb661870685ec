//! Free space on the filesystem of the data directory, checked before each
//! report is written (SPEC §9, "disk full").
//!
//! sled does not recover from ENOSPC: after a write fails with "No space
//! left on device", in our tests the next write was applied in memory but
//! its flush never returned, later calls hung even once space was freed, and
//! the store reopened after a restart had lost reports it then treated as
//! already stored (docs/SECURITY.md). So the collector keeps a
//! reserve (`limits.min_free_disk_bytes`) and refuses ingest with
//! RESOURCE_EXHAUSTED ("disk full") while less than that is free: nothing
//! reaches sled, agents keep their reports spooled and retry, and ingest
//! resumes by itself once space is freed. A disk filled faster than the
//! reserve can absorb between two checks still reaches sled's failure.
//!
//! The same reserve holds back the collector's other writers: state-changing
//! admin calls are refused with the same status, and the alert evaluation
//! and the notification dispatcher pause (a delivery whose outcome cannot
//! be recorded would be sent again) until space returns.
//!
//! Invariant: the check never refuses because it could not measure: a
//! failed `statvfs` lets the write through (sled reports a real failure).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct DiskGuard {
    dir: PathBuf,
    min_free_bytes: u64,
    /// Whether `allows` last found the disk short, so that a background
    /// writer's pause is logged when it starts and ends, not every round.
    short: Arc<AtomicBool>,
}

impl DiskGuard {
    pub fn new(dir: PathBuf, min_free_bytes: u64) -> DiskGuard {
        DiskGuard { dir, min_free_bytes, short: Arc::new(AtomicBool::new(false)) }
    }

    /// For a background writer (`what`): whether to write now. Logs once
    /// when the disk becomes short of the reserve and once when it is not
    /// any more.
    pub fn allows(&self, what: &str) -> bool {
        match self.check() {
            Ok(()) => {
                if self.short.swap(false, Ordering::Relaxed) {
                    tracing::info!("{what} resumes: the data directory has room again");
                }
                true
            }
            Err(full) => {
                if !self.short.swap(true, Ordering::Relaxed) {
                    tracing::warn!(reason = %full, "{what} paused");
                }
                false
            }
        }
    }

    /// Bytes available to this (unprivileged-equivalent) process on the
    /// data directory's filesystem, if measurable.
    pub fn free_bytes(&self) -> Option<u64> {
        free_bytes(&self.dir)
    }

    /// Refuses when less than the reserve is free.
    pub fn check(&self) -> Result<(), Error> {
        refuse_below(self.free_bytes(), self.min_free_bytes)
    }
}

fn refuse_below(free: Option<u64>, min_free_bytes: u64) -> Result<(), Error> {
    match free {
        Some(free) if free < min_free_bytes => Err(Error::ResourceExhausted(format!(
            "disk full: the collector's data directory has {free} bytes free, below its reserve of {min_free_bytes} bytes \
             (limits.min_free_disk_bytes); reports are refused until space is freed, agents keep them spooled"
        ))),
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_dir: &std::path::Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_below_the_reserve_only() {
        assert!(refuse_below(Some(10), 10).is_ok());
        assert!(refuse_below(None, u64::MAX).is_ok(), "unmeasurable: let sled decide");
        let err = refuse_below(Some(9), 10).expect_err("below");
        assert!(
            matches!(&err, Error::ResourceExhausted(m) if m.contains("disk full") && m.contains("limits.min_free_disk_bytes")),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn measures_a_real_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let guard = DiskGuard::new(dir.path().to_path_buf(), 0);
        assert!(guard.free_bytes().is_some_and(|f| f > 0));
        assert!(DiskGuard::new(dir.path().to_path_buf(), u64::MAX).check().is_err());
    }

    #[cfg(unix)]
    #[test]
    fn background_writers_are_held_back_below_the_reserve() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(DiskGuard::new(dir.path().to_path_buf(), 0).allows("test writer"));
        let short = DiskGuard::new(dir.path().to_path_buf(), u64::MAX);
        assert!(!short.allows("test writer"));
        assert!(!short.clone().allows("test writer"), "a clone shares the state and still refuses");
    }
}
