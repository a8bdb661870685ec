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
//!
//! Beside the installs, a name's ListSoftware listing (`software::listing`:
//! grouped by version, hosts by name) once built: stamped with the installs
//! it was built from and the host cache's names generation, dropped when a
//! refresh touches the name, and rebuilt when the names changed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::SoftwareInstall;
use crate::error::Result;
use crate::software::ListedVersion;

/// Cached names at most; past it the cache is emptied and refilled by
/// the next queries, so memory stays bounded whatever names are asked.
const MAX_NAMES: usize = 4_096;

/// Installs by package name, for the names queried so far.
#[derive(Debug, Default)]
pub struct SoftwareCache {
    names: Mutex<HashMap<String, Arc<Vec<SoftwareInstall>>>>,
    /// Locked after `names` when both are.
    listings: Mutex<HashMap<String, Listing>>,
}

#[derive(Debug)]
struct Listing {
    /// The installs it was built from (compared by pointer: a refresh
    /// replaces or copies the list it changes).
    from: Arc<Vec<SoftwareInstall>>,
    names_generation: u64,
    listing: Arc<Vec<ListedVersion>>,
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
            self.lock_listings().clear();
        }
        names.insert(name.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// The listing of `name` built from `installs` (what `installs`
    /// returned) at `names_generation`, if one is kept.
    pub fn listing(&self, name: &str, installs: &Arc<Vec<SoftwareInstall>>, names_generation: u64) -> Option<Arc<Vec<ListedVersion>>> {
        let listings = self.lock_listings();
        let kept = listings.get(name)?;
        (Arc::ptr_eq(&kept.from, installs) && kept.names_generation == names_generation).then(|| Arc::clone(&kept.listing))
    }

    /// Keeps a listing built from `from` at `names_generation`, unless a
    /// refresh changed the name's installs meanwhile (then the next query
    /// builds it again).
    pub fn keep_listing(&self, name: &str, from: &Arc<Vec<SoftwareInstall>>, names_generation: u64, listing: Arc<Vec<ListedVersion>>) {
        let names = self.lock();
        if !names.get(name).is_some_and(|now| Arc::ptr_eq(now, from)) {
            return;
        }
        let mut listings = self.lock_listings();
        if listings.len() >= MAX_NAMES {
            listings.clear();
        }
        listings.insert(name.to_string(), Listing { from: Arc::clone(from), names_generation, listing });
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
        let mut listings = self.lock_listings();
        for name in touched {
            listings.remove(name);
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
        let mut names = self.lock();
        names.clear();
        self.lock_listings().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Vec<SoftwareInstall>>>> {
        // A panic while loading leaves the map without that name.
        self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_listings(&self) -> MutexGuard<'_, HashMap<String, Listing>> {
        self.listings.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
