//! Services: systemd units, Windows services, launchd jobs, with state.
//! Pure domain types; `collect::services` fills them.
//!
//! Invariant: `failed` lists exactly the names of `units` whose
//! `active_state` is `failed`, sorted, so the health issue can read it
//! without re-deriving it.

use crate::inventory::unreadable::Unreadable;

/// Which service manager the list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceManager {
    /// systemd answering `systemctl` as PID 1.
    Systemd,
    /// systemd unit files on disk, but systemd is not running (a container,
    /// a chroot): enabled states only, no active states.
    SystemdUnitFilesOnly,
    WindowsScm,
    Launchd,
}

/// The services section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Services {
    pub manager: ServiceManager,
    /// Sorted by name.
    pub units: Vec<Service>,
    /// Names of units in the `failed` active state.
    pub failed: Vec<String>,
    pub unreadable: Vec<Unreadable>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    /// `cron.service`, Windows service name (`wuauserv`), launchd label.
    pub name: String,
    pub description: Option<String>,
    /// systemd LOAD column (`loaded`, `not-found`, `masked`).
    pub load_state: Option<String>,
    /// `active`, `inactive`, `failed`, `activating` (systemd); `running`,
    /// `stopped`, `start_pending`... (Windows), `running`, `stopped`
    /// (launchd). `failed` on Windows: an automatic service stopped with an
    /// error exit code; on launchd: a job not running whose last exit
    /// status is non-zero. Absent when the manager is not running.
    pub active_state: Option<String>,
    /// systemd SUB column (`running`, `exited`, `dead`).
    pub sub_state: Option<String>,
    /// Start-up setting: systemd unit-file state (`enabled`, `disabled`,
    /// `static`, `masked`, `alias`, ...), Windows start type (`automatic`,
    /// `automatic_delayed`, `manual`, `disabled`, `boot`, `system`). Absent
    /// for units without a unit file, and for launchd jobs.
    pub enabled: Option<String>,
    /// Main process id when the manager reports it (Windows, launchd).
    pub pid: Option<u32>,
}
