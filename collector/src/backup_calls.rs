//! `Backup` without its transport: one backup at a time, taken into
//! `<data_dir>/backups/` (mode 0600; writes pause while the store is
//! dumped), handed to the transport to stream (gRPC chunks in
//! `admin_api.rs`, an `application/octet-stream` download in
//! `http_api/routes.rs`), deleted once sent. Audited as "backup".

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::admin_calls::{AdminCalls, Caller};
use crate::error::{Error, Result};
use crate::secrets::Role;

/// Where backups are taken, and the one slot.
pub struct Backups {
    data_dir: PathBuf,
    slot: Arc<Semaphore>,
}

impl Backups {
    pub fn new(data_dir: PathBuf) -> Backups {
        Backups { data_dir, slot: Arc::new(Semaphore::new(1)) }
    }
}

/// A backup file taken for one caller; deleted when dropped (sent or not),
/// which also frees the slot.
pub struct TakenBackup {
    pub path: PathBuf,
    pub summary: crate::backup::Summary,
    _slot: OwnedSemaphorePermit,
}

impl Drop for TakenBackup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot delete the backup file just sent");
        }
    }
}

/// The permission to take a backup now: the role checked, the slot held.
pub struct BackupSlot(OwnedSemaphorePermit);

impl AdminCalls {
    /// Checks the admin role (a refusal is audited) and takes the one
    /// backup slot; answers before anything slow happens.
    pub async fn backup_slot(&self, caller: &Caller) -> Result<BackupSlot> {
        if let Err(refused) = caller.require(Role::Admin) {
            self.record(caller, "backup", "", "refused", refused.to_string()).await;
            return Err(refused);
        }
        let backups = self.backups.as_ref().ok_or_else(|| Error::FailedPrecondition("this collector does not serve backups".into()))?;
        let permit = Arc::clone(&backups.slot)
            .try_acquire_owned()
            .map_err(|_| Error::FailedPrecondition("another backup is being taken; try again when it has finished".into()))?;
        Ok(BackupSlot(permit))
    }

    /// Takes the backup file (writes pause meanwhile); audited.
    pub async fn take_backup(&self, caller: &Caller, slot: BackupSlot) -> Result<TakenBackup> {
        let data_dir = self.backups.as_ref().map(|b| b.data_dir.clone()).ok_or_else(|| Error::Internal("no backups here".into()))?;
        let dir = data_dir.join("backups");
        let path = dir.join(format!("sending.{}", crate::backup::EXTENSION));
        let started = std::time::Instant::now();
        let taken = {
            let path = path.clone();
            self.with_store(move |store| {
                crate::init::create_data_dir(&dir)?;
                // Only one backup runs at a time: a file left here is from
                // a collector that stopped while sending it.
                let _ = std::fs::remove_file(crate::backup::partial_path(&path));
                crate::backup::write_file(store, &data_dir.join("pki"), &path, std::time::SystemTime::now())
            })
            .await
        };
        match taken {
            Ok(summary) => {
                tracing::info!(
                    by = %caller.token_id,
                    agents = summary.agents,
                    entries = summary.entries,
                    bytes = summary.bytes,
                    took_ms = started.elapsed().as_millis() as u64,
                    "backup taken; sending it"
                );
                let detail = format!("{} host(s), {} bytes, sha256 {}", summary.agents, summary.bytes, summary.sha256);
                self.record(caller, "backup", "", "ok", detail).await;
                Ok(TakenBackup { path, summary, _slot: slot.0 })
            }
            Err(e) => {
                tracing::error!(error = %e, "backup failed");
                self.record(caller, "backup", "", "failed", e.to_string()).await;
                Err(e)
            }
        }
    }
}
