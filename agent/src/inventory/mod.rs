//! The inventory domain: plain types describing an endpoint, with no I/O.
//! `collect` fills them from the OS; `wire` turns them into `census.v1`.

pub mod certificates;
pub mod hardware;
pub mod identity;
pub mod netconfig;
pub mod os_state;
pub mod services;
pub mod software;
pub mod system;
pub mod unreadable;
pub mod updates;
pub mod users;

use serde::Serialize;

pub use self::certificates::{Certificate, CertificateLocation, Certificates};
pub use self::hardware::Hardware;
pub use self::identity::{HostIdentity, UuidSource};
pub use self::netconfig::NetConfig;
pub use self::os_state::OsState;
pub use self::services::Services;
pub use self::software::{Package, PackageSource};
pub use self::system::{Cpu, Filesystem, IpAddress, Memory, NetworkInterface, Os};
pub use self::unreadable::Unreadable;
pub use self::updates::{PendingUpdate, PendingUpdates, UpdateSource};
pub use self::users::Users;

/// A section that failed as a whole; the other sections are still reported.
/// Software reports one per failed package source (`software.rpm`), and
/// updates one per failed update source (`updates.dnf`), so the results of
/// the other sources are still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionError {
    pub section: String,
    pub message: String,
}

/// One full inventory snapshot. A section is `None` exactly when it failed,
/// and then `errors` says why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    pub collected_at_unix_ms: i64,
    pub identity: Option<HostIdentity>,
    pub os: Option<Os>,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub filesystems: Option<Vec<Filesystem>>,
    pub network: Option<Vec<NetworkInterface>>,
    /// Installed packages of every source that could be read.
    pub software: Option<Vec<Package>>,
    pub hardware: Option<Hardware>,
    pub netconfig: Option<NetConfig>,
    pub users: Option<Users>,
    pub services: Option<Services>,
    pub os_state: Option<OsState>,
    /// Available updates of every update source that could be asked.
    pub updates: Option<PendingUpdates>,
    /// Trust store additions and service certificates.
    pub certificates: Option<Certificates>,
    pub errors: Vec<SectionError>,
}

/// Time spent collecting one section, for `census-agent inventory --timings`.
#[derive(Debug, Clone, Serialize)]
pub struct SectionTiming {
    pub section: &'static str,
    pub wall_micros: u64,
}
