//! Each agent's newest raw health sample, in memory: what every alert
//! evaluation reads for every host. In sled it is one range read per host
//! per round in a `metrics_raw` tree that holds a week of samples per
//! host (far larger than the page cache at fleet scale, so mostly disk
//! reads); here it is a map lookup and a decode. Kept encoded (a few
//! hundred bytes a host: ~50 MB at 100,000 hosts).
//!
//! An agent is loaded on first use (its newest sample of all, or "none"),
//! then kept in step by the store after each durable write of samples
//! (`observe`: a newer sample replaces it) and after expiry (`expire`).
//! Loads and updates run under one lock and keep the newer sample, so the
//! map never holds an older sample than the committed one once the writer's
//! `observe` has run, whatever order concurrent writers commit in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;

/// A sample as stored: its time and its encoded `HealthSample`.
pub type EncodedSample = (i64, Arc<[u8]>);

/// Newest sample by agent id; `None` in the map: the agent has none.
#[derive(Debug, Default)]
pub struct LatestSamples {
    agents: Mutex<HashMap<String, Option<EncodedSample>>>,
}

impl LatestSamples {
    /// The newest sample of `agent_id`, loading it with `load` (the newest
    /// committed one) on first use.
    pub fn newest(&self, agent_id: &str, load: impl FnOnce() -> Result<Option<EncodedSample>>) -> Result<Option<EncodedSample>> {
        let mut agents = self.lock();
        if let Some(known) = agents.get(agent_id) {
            return Ok(known.clone());
        }
        // Loaded under the lock: an `observe` cannot slip between the read
        // and the insert and be lost.
        let loaded = load()?;
        agents.insert(agent_id.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// After samples of `agent_id` were stored durably, `sample` the newest
    /// of them: it replaces an older known one, or one of the same time
    /// (stored under the same key, the store kept the later write). An agent not loaded yet is
    /// left to load from the store (where this sample now is).
    pub fn observe(&self, agent_id: &str, sample: EncodedSample) {
        let mut agents = self.lock();
        if let Some(known) = agents.get_mut(agent_id)
            && known.as_ref().is_none_or(|(t, _)| *t <= sample.0)
        {
            *known = Some(sample);
        }
    }

    /// After raw samples taken before `cutoff_unix_ms` were deleted: an
    /// agent whose newest sample was among them is forgotten (and reloads).
    pub fn expire(&self, cutoff_unix_ms: i64) {
        self.lock().retain(|_, known| known.as_ref().is_none_or(|(t, _)| *t >= cutoff_unix_ms));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Option<EncodedSample>>> {
        // A panic while loading leaves the map without that agent.
        self.agents.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: i64) -> EncodedSample {
        (t, Arc::from(t.to_be_bytes().as_slice()))
    }

    #[test]
    fn loads_once_keeps_the_newest_and_forgets_expired() {
        let cache = LatestSamples::default();
        // Not loaded: an observation is left to the store.
        cache.observe("a", sample(5));
        assert_eq!(cache.newest("a", || Ok(Some(sample(5)))).expect("load").map(|s| s.0), Some(5));
        let no_load = || -> Result<Option<EncodedSample>> { panic!("loaded once") };
        cache.observe("a", sample(3)); // a late, older sample (a replayed spool)
        assert_eq!(cache.newest("a", no_load).expect("cached").map(|s| s.0), Some(5));
        cache.observe("a", sample(9));
        assert_eq!(cache.newest("a", no_load).expect("cached").map(|s| s.0), Some(9));
        // An agent without samples is remembered as such, then gets one.
        assert_eq!(cache.newest("b", || Ok(None)).expect("load"), None);
        assert_eq!(cache.newest("b", no_load).expect("cached"), None);
        cache.observe("b", sample(1));
        assert_eq!(cache.newest("b", no_load).expect("cached").map(|s| s.0), Some(1));
        // Expiry up to 5: b's newest is gone (reloads), a's stays.
        cache.expire(5);
        assert_eq!(cache.newest("a", no_load).expect("cached").map(|s| s.0), Some(9));
        assert_eq!(cache.newest("b", || Ok(None)).expect("reloaded"), None);
    }
}
