//! The software index in memory, per package name: what `software("x")`
//! filters and ListSoftware read. Scanning and parsing one sled key per
//! install took seconds for a package on 100,000 hosts, per query; a
//! cached list is shared by pointer.
//!
//! A name is loaded on its first query (most names are never asked for),
//! then kept in step by the store after each inventory write that touched
//! it (`refresh`): the writer re-reads the agent's committed inventory
//! under the lock, so whichever refresh runs last installs the newest
//! state, whatever order concurrent writers commit in (as `host_cache`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::SoftwareInstall;
use crate::error::Result;

/// Cached names at most; past it the cache is emptied and refilled by
/// the next queries, so memory stays bounded whatever names are asked.
const MAX_NAMES: usize = 4_096;

/// Installs by package name, for the names queried so far.
#[derive(Debug, Default)]
pub struct SoftwareCache {
    names: Mutex<HashMap<String, Arc<Vec<SoftwareInstall>>>>,
}

impl SoftwareCache {
    /// The installs of `name`, loading them with `load` on first use.
    pub fn installs(&self, name: &str, load: impl FnOnce() -> Result<Vec<SoftwareInstall>>) -> Result<Arc<Vec<SoftwareInstall>>> {
        let mut names = self.lock();
        if let Some(found) = names.get(name) {
            return Ok(found.clone());
        }
        // Loaded under the lock: a refresh cannot slip between the read
        // and the insert and be lost.
        let loaded = Arc::new(load()?);
        if names.len() >= MAX_NAMES {
            names.clear();
        }
        names.insert(name.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// After an inventory write to `agent_id` that added or removed
    /// installs of `touched` names: `committed` reads the agent's installs
    /// as committed now (all names). Names not cached are left alone.
    pub fn refresh(
        &self,
        agent_id: &str,
        touched: &HashSet<String>,
        committed: impl FnOnce() -> Result<Vec<SoftwareInstall>>,
    ) -> Result<()> {
        let mut names = self.lock();
        if !touched.iter().any(|n| names.contains_key(n)) {
            return Ok(());
        }
        let mut now: HashMap<String, Vec<SoftwareInstall>> = HashMap::new();
        for install in committed()? {
            now.entry(install.name.clone()).or_default().push(install);
        }
        for name in touched {
            let Some(list) = names.get_mut(name) else { continue };
            // A query may still hold the old list: it keeps its snapshot.
            let list = Arc::make_mut(list);
            list.retain(|i| i.agent_id != agent_id);
            list.extend(now.remove(name).unwrap_or_default());
        }
        Ok(())
    }

    /// Forgets everything (the next queries reload): after a failed
    /// refresh, so a list never stays stale.
    pub fn invalidate(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Vec<SoftwareInstall>>>> {
        // A panic while loading leaves the map without that name.
        self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
