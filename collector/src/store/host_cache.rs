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
//!
//! Queries take the summaries as one shared vector in listing order
//! (`listing_order`), a single pointer copy under the lock: copying 100,000
//! pointers out of a map per query, and dropping them after, cost more than
//! the filter itself. A refresh replaces its host's slot in place (the
//! vector is copied first only while a query still holds it, at most once
//! per query); a listing without a sort field then reads the first page
//! straight off the vector.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{AgentRecord, HostView, InventoryRecord, listing_order};
use crate::error::{Error, Result};

/// The loaded summaries.
#[derive(Debug)]
struct Loaded {
    by_id: HashMap<String, Arc<HostView>>,
    /// The same hosts in listing order, shared with queries.
    ordered: Arc<Vec<Arc<HostView>>>,
    /// Bumped whenever a host is added, removed or renamed: what the
    /// software listings (hosts ordered by name) are stamped with.
    names_generation: u64,
}

/// Host summaries; `None` until first loaded.
#[derive(Debug, Default)]
pub struct HostCache {
    hosts: Mutex<Option<Loaded>>,
}

impl HostCache {
    /// Every host summary in listing order, loading them with `load` on
    /// first use, and the names generation it is at (see `Loaded`).
    pub fn ordered(&self, load: impl FnOnce() -> Result<Vec<HostView>>) -> Result<(Arc<Vec<Arc<HostView>>>, u64)> {
        let mut hosts = self.lock();
        if let Some(loaded) = hosts.as_ref() {
            return Ok((Arc::clone(&loaded.ordered), loaded.names_generation));
        }
        let mut ordered: Vec<Arc<HostView>> = load()?.into_iter().map(Arc::new).collect();
        ordered.sort_by(|a, b| listing_order(&a.agent, &b.agent));
        let by_id = ordered.iter().map(|h| (h.agent.agent_id.clone(), Arc::clone(h))).collect();
        let ordered = Arc::new(ordered);
        *hosts = Some(Loaded { by_id, ordered: Arc::clone(&ordered), names_generation: 0 });
        Ok((ordered, 0))
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
        let Some(loaded) = hosts.as_mut() else { return Ok(()) };
        let old = loaded.by_id.get(agent_id).cloned();
        let Some(agent) = agent()? else {
            if let Some(old) = old {
                let ordered = Arc::make_mut(&mut loaded.ordered);
                let at = position(ordered, &old.agent)?;
                ordered.remove(at);
                loaded.by_id.remove(agent_id);
                loaded.names_generation += 1;
            }
            return Ok(());
        };
        let inventory = match inventory {
            Some(read) => read()?.map(Arc::new),
            None => old.as_ref().and_then(|h| h.inventory.clone()),
        };
        let new = Arc::new(HostView { agent, inventory });
        let ordered = Arc::make_mut(&mut loaded.ordered);
        match old {
            // The common case (a heartbeat, an inventory): same place.
            Some(old) if listing_order(&old.agent, &new.agent) == Ordering::Equal && old.agent.hostname == new.agent.hostname => {
                let at = position(ordered, &old.agent)?;
                ordered[at] = Arc::clone(&new);
            }
            old => {
                if let Some(old) = old {
                    let at = position(ordered, &old.agent)?;
                    ordered.remove(at);
                }
                let at = ordered.partition_point(|h| listing_order(&h.agent, &new.agent) == Ordering::Less);
                ordered.insert(at, Arc::clone(&new));
                loaded.names_generation += 1;
            }
        }
        loaded.by_id.insert(agent_id.to_string(), new);
        Ok(())
    }

    /// Forgets everything (the next query reloads): after a failed
    /// refresh, so a summary never stays stale.
    pub fn invalidate(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> MutexGuard<'_, Option<Loaded>> {
        // A panic while loading leaves `None`; one while refreshing leaves
        // the old or the new slot, both complete hosts.
        self.hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where `agent`'s host is in the ordered vector (agent ids are unique, so
/// the order is total). Missing would mean the map and the vector
/// disagree: an error, upon which the store forgets the summaries.
fn position(ordered: &[Arc<HostView>], agent: &AgentRecord) -> Result<usize> {
    ordered
        .binary_search_by(|h| listing_order(&h.agent, agent))
        .map_err(|_| Error::Internal(format!("host summary of {} missing from the ordered summaries", agent.agent_id)))
}
