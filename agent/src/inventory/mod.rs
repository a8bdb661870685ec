//! The inventory domain: plain types describing an endpoint, with no I/O.
//! `collect` fills them from the OS; `wire` turns them into `census.v1`.

pub mod software;
pub mod system;

use serde::Serialize;

pub use self::system::{Cpu, Filesystem, HostIdentity, IpAddress, Memory, NetworkInterface, Os};

/// A value the agent could not read, and why. Reported instead of an empty
/// string so an admin can tell "unknown" from "empty".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub field: String,
    pub reason: String,
}

/// A section that failed as a whole; the other sections are still reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionError {
    pub section: &'static str,
    pub message: String,
}

/// One full inventory snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    pub collected_at_unix_ms: i64,
    pub identity: Option<HostIdentity>,
    pub os: Option<Os>,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub filesystems: Option<Vec<Filesystem>>,
    pub network: Option<Vec<NetworkInterface>>,
    pub errors: Vec<SectionError>,
}

/// Time spent collecting one section, for `census-agent inventory --timings`.
#[derive(Debug, Clone, Serialize)]
pub struct SectionTiming {
    pub section: &'static str,
    pub wall_micros: u64,
}
