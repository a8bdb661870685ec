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
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
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
    /// The last names generation handed out, across reloads: a listing
    /// stamped before an `invalidate` never matches the reloaded summaries.
    generations: AtomicU64,
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
        let names_generation = self.next_generation();
        *hosts = Some(Loaded { by_id, ordered: Arc::clone(&ordered), names_generation });
        Ok((ordered, names_generation))
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
                loaded.names_generation = self.next_generation();
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
                loaded.names_generation = self.next_generation();
            }
        }
        loaded.by_id.insert(agent_id.to_string(), new);
        Ok(())
    }

    fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, AtomicOrdering::Relaxed) + 1
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, name: &str) -> HostView {
        HostView { agent: AgentRecord { agent_id: id.into(), hostname: name.into(), ..Default::default() }, inventory: None }
    }

    fn names(ordered: &[Arc<HostView>]) -> Vec<&str> {
        ordered.iter().map(|h| h.agent.agent_id.as_str()).collect()
    }

    #[test]
    fn refresh_keeps_listing_order_and_names_generation_changes_only_with_names() {
        let cache = HostCache::default();
        let (ordered, g0) = cache.ordered(|| Ok(vec![host("1", "web"), host("2", "Alpha"), host("3", "db")])).unwrap();
        assert_eq!(names(&ordered), ["2", "3", "1"]);
        let read = |h: HostView| move || Ok(Some(h.agent));
        // A heartbeat: same place, same generation; the query's vector is untouched.
        cache.refresh("3", read(host("3", "db")), None).unwrap();
        let (after, g1) = cache.ordered(|| unreachable!("loaded")).unwrap();
        assert_eq!((names(&after), g1), (vec!["2", "3", "1"], g0));
        // A rename moves the host and changes the generation.
        cache.refresh("1", read(host("1", "aardvark")), None).unwrap();
        let (after, g2) = cache.ordered(|| unreachable!("loaded")).unwrap();
        assert_eq!(names(&after), ["1", "2", "3"]);
        assert_ne!(g2, g1);
        assert_eq!(names(&ordered), ["2", "3", "1"], "a query keeps its snapshot");
        // Removal, then a reload after invalidation: never an old generation.
        cache.refresh("2", || Ok(None), None).unwrap();
        let (after, g3) = cache.ordered(|| unreachable!("loaded")).unwrap();
        assert_eq!(names(&after), ["1", "3"]);
        cache.invalidate();
        let (_, g4) = cache.ordered(|| Ok(vec![host("1", "aardvark")])).unwrap();
        assert!(g4 > g3 && g3 > g2 && g2 > g0, "{g0} {g2} {g3} {g4}");
    }
}
