//! The distinct package names of the software index, in memory: what
//! alert rules naming packages by glob (`telnet*`, `*-dev`) are resolved
//! against at every evaluation. Listing them from sled costs one index
//! seek per name (tens of ms for a few thousand names, per round); the set
//! in memory costs a few MB at fleet scale.
//!
//! Loaded on first use, then kept in step by the store after each
//! inventory write that touched names (`refresh`): the writer checks, under
//! the lock, whether each touched name still has an install in the
//! committed index, so whichever refresh runs last installs the newest
//! state, whatever order concurrent writers commit in (as `host_cache`).

use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use crate::error::Result;

/// Package names; `None` until first loaded.
#[derive(Debug, Default)]
pub struct NameCache {
    names: Mutex<Option<BTreeSet<String>>>,
}

impl NameCache {
    /// The names starting with `prefix`, in byte order, loading every name
    /// with `load` on first use.
    pub fn with_prefix(&self, prefix: &str, load: impl FnOnce() -> Result<Vec<String>>) -> Result<Vec<String>> {
        let mut names = self.lock();
        if names.is_none() {
            // Loaded under the lock: a refresh cannot slip between the
            // read and the install and be lost.
            *names = Some(load()?.into_iter().collect());
        }
        let names = names.as_ref().map(|n| {
            n.range::<str, _>((Bound::Included(prefix), Bound::Unbounded)).take_while(|n| n.starts_with(prefix)).cloned().collect()
        });
        Ok(names.unwrap_or_default())
    }

    /// After an inventory write that added or removed installs of
    /// `touched` names: `indexed` says whether a name still has an install
    /// in the committed index. Nothing to do before the first load.
    pub fn refresh(&self, touched: &HashSet<String>, indexed: impl Fn(&str) -> Result<bool>) -> Result<()> {
        let mut names = self.lock();
        let Some(set) = names.as_mut() else { return Ok(()) };
        for name in touched {
            if indexed(name)? {
                set.insert(name.clone());
            } else {
                set.remove(name);
            }
        }
        Ok(())
    }

    /// Forgets everything (the next use reloads): after a failed refresh,
    /// so the set never stays stale.
    pub fn invalidate(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> MutexGuard<'_, Option<BTreeSet<String>>> {
        // A panic while loading leaves `None` or a complete set.
        self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_once_lists_by_prefix_and_follows_refreshes() {
        let cache = NameCache::default();
        let nothing_before_load = HashSet::from(["zzz".to_string()]);
        cache.refresh(&nothing_before_load, |_| panic!("no refresh before the first load")).expect("refresh");
        let loaded = || Ok(vec!["curl".to_string(), "openssl".into(), "openssl-dev".into(), "open".into()]);
        assert_eq!(cache.with_prefix("openssl", loaded).expect("names"), ["openssl", "openssl-dev"]);
        let again = || -> Result<Vec<String>> { panic!("loaded once") };
        assert_eq!(cache.with_prefix("", again).expect("names"), ["curl", "open", "openssl", "openssl-dev"]);
        // curl removed from the last host that had it, telnetd installed.
        let touched = HashSet::from(["curl".to_string(), "telnetd".to_string()]);
        cache.refresh(&touched, |n| Ok(n == "telnetd")).expect("refresh");
        assert_eq!(cache.with_prefix("", again).expect("names"), ["open", "openssl", "openssl-dev", "telnetd"]);
        cache.invalidate();
        assert_eq!(cache.with_prefix("t", || Ok(vec!["top".to_string()])).expect("names"), ["top"]);
    }
}
