//! The host summaries in memory: every host's agent record and its
//! inventory without the package list (`summary_of`), what host-list
//! filters, sorts and pages read. Decoding 100,000 full inventories per
//! query (about 2,000 packages each) cannot answer in 50 ms; walking
//! 100,000 summaries in memory can.
//!
//! Loaded on first use (a query), not at start, so a restart serves agents
//! at once. Kept in step by the store after each write that changes a host
//! (`refresh`): the writer re-reads the committed records under the lock,
//! so whichever refresh runs last installs the newest state, whatever
//! order concurrent writers commit in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{AgentRecord, HostView, InventoryRecord};
use crate::error::Result;

/// Host summaries by agent id; `None` until first loaded.
#[derive(Debug, Default)]
pub struct HostCache {
    hosts: Mutex<Option<HashMap<String, Arc<HostView>>>>,
}

impl HostCache {
    /// Every host summary, loading them with `load` on first use.
    pub fn all(&self, load: impl FnOnce() -> Result<Vec<HostView>>) -> Result<Vec<Arc<HostView>>> {
        let mut hosts = self.lock();
        if hosts.is_none() {
            let loaded = load()?;
            *hosts = Some(loaded.into_iter().map(|h| (h.agent.agent_id.clone(), Arc::new(h))).collect());
        }
        // Arcs only: the lock is held for a copy of pointers, not for the query.
        Ok(hosts.as_ref().map(|m| m.values().cloned().collect()).unwrap_or_default())
    }

    /// After a write to `agent_id`: `agent` reads its committed record;
    /// `inventory`, when the write changed the inventory, its committed
    /// summary. Nothing to do before the first load.
    pub fn refresh(
        &self,
        agent_id: &str,
        agent: impl FnOnce() -> Result<Option<AgentRecord>>,
        inventory: Option<&dyn Fn() -> Result<Option<InventoryRecord>>>,
    ) -> Result<()> {
        let mut hosts = self.lock();
        let Some(map) = hosts.as_mut() else { return Ok(()) };
        let Some(agent) = agent()? else {
            map.remove(agent_id);
            return Ok(());
        };
        let inventory = match inventory {
            Some(read) => read()?.map(Arc::new),
            None => map.get(agent_id).and_then(|h| h.inventory.clone()),
        };
        map.insert(agent_id.to_string(), Arc::new(HostView { agent, inventory }));
        Ok(())
    }

    /// Forgets everything (the next query reloads): after a failed
    /// refresh, so a summary never stays stale.
    pub fn invalidate(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashMap<String, Arc<HostView>>>> {
        // A panic while loading leaves `None` or a complete map.
        self.hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
