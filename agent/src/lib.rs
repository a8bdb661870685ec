//! Census endpoint agent. `main.rs` is a thin wrapper; the library exposes
//! `run`, `enroll::enroll` and `collect::inventory` so the demo and tests can
//! drive an agent in-process (`InventorySource` says whether `run` collects
//! inventory in its own process or in a child). See ARCHITECTURE.md.

pub mod collect;
pub mod config;
pub mod delta;
pub mod enroll;
pub mod error;
pub mod health;
pub mod inventory;
pub mod inventory_source;
pub mod render;
pub mod renew;
pub mod run;
pub mod service;
pub mod spool;
pub mod state;
pub mod transport;
pub mod wire;

pub use config::Config;
pub use error::{Error, Result};
pub use inventory_source::InventorySource;
pub use run::run;

/// This agent's version, reported to the collector.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Wall clock in Unix milliseconds; read only at the edges.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 UTC with whole seconds, for people.
pub fn rfc3339(unix_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}
