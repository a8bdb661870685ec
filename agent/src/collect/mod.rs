//! The edge between the agent and the OS: the only module that reads OS
//! files, runs OS commands or calls sysinfo. Each section is collected
//! independently; a failed section becomes a `SectionError` in the
//! inventory and never stops the others (ripgrep's "(args, errs)").

pub mod system;

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::inventory::{Inventory, SectionError, SectionTiming};

/// Collects a full inventory of the host whose filesystem is at `root`.
pub fn inventory(root: &Path) -> (Inventory, Vec<SectionTiming>) {
    let mut inv = Inventory::default();
    let mut timings = Vec::new();
    inv.identity = section("identity", &mut inv.errors, &mut timings, || system::identity(root));
    inv.os = section("os", &mut inv.errors, &mut timings, || system::os(root));
    inv.cpu = section("cpu", &mut inv.errors, &mut timings, || system::cpu(root));
    inv.memory = section("memory", &mut inv.errors, &mut timings, || system::memory(root));
    inv.filesystems = section("filesystems", &mut inv.errors, &mut timings, || system::filesystems(root));
    inv.network = section("network", &mut inv.errors, &mut timings, || system::network(root));
    inv.collected_at_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    (inv, timings)
}

fn section<T>(name: &'static str, errors: &mut Vec<SectionError>, timings: &mut Vec<SectionTiming>, f: impl FnOnce() -> Result<T>) -> Option<T> {
    let started = Instant::now();
    let result = f();
    timings.push(SectionTiming { section: name, wall_micros: started.elapsed().as_micros() as u64 });
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(section = name, error = %e, "inventory section failed");
            errors.push(SectionError { section: name, message: e.to_string() });
            None
        }
    }
}
