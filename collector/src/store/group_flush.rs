//! Group commit: one flush makes the writes of every caller that asked
//! for it durable, however many callers wait.
//!
//! Without it, each acknowledged report paid for its own flush (an fsync),
//! and concurrent reports queued behind each other's fsyncs: at 1,000
//! agents the collector acknowledged 359 reports/s (docs/BENCHMARKS.md).
//! With it, a caller whose write is committed in memory asks for a flush;
//! if none is running it becomes the leader and flushes, otherwise it
//! waits for the *next* flush to start and finish. The next one, not the
//! running one: a flush that started before this caller's write may not
//! contain it. So a caller returns only after a flush that started after
//! its write has completed, which is what keeps "acknowledged means
//! durable" true while a single fsync covers every write that arrived
//! during the previous one.
//!
//! Invariant: `flush` returns `Ok` only if a flush that began after the call
//! began has succeeded; it returns the error of a failed flush otherwise
//! (never a stale success).

use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    /// Generation of the flush running, or of the last one that ran.
    started: u64,
    /// Highest generation that finished (successfully or not).
    done: u64,
    /// Highest generation that succeeded.
    succeeded: u64,
    /// Whether a leader is flushing now.
    running: bool,
    /// The error of the last failed generation.
    last_error: Option<String>,
}

/// Coalesces concurrent flush requests (see the module doc).
#[derive(Debug, Default)]
pub struct GroupFlush {
    state: Mutex<State>,
    finished: Condvar,
}

impl GroupFlush {
    /// Returns once a flush that started after this call has completed:
    /// runs `flush` itself when no flush is running, otherwise waits for
    /// the next one (which this caller, or another waiter, leads).
    pub fn flush(&self, flush: impl Fn() -> Result<(), String>) -> Result<(), String> {
        let mut state = self.lock();
        // The first flush that starts after now.
        let target = state.started + 1;
        loop {
            if state.succeeded >= target {
                return Ok(());
            }
            if state.done >= target {
                return Err(state.last_error.clone().unwrap_or_else(|| "flush failed".into()));
            }
            if state.running {
                state = self.finished.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            // Lead the next generation: it starts after our write.
            state.running = true;
            state.started += 1;
            let generation = state.started;
            drop(state);
            let outcome = flush();
            state = self.lock();
            state.running = false;
            state.done = generation;
            match outcome {
                Ok(()) => state.succeeded = generation,
                Err(e) => state.last_error = Some(e),
            }
            self.finished.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few counters updated under the lock with no
        // panicking code in between, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    /// A model of a store: writes bump `written`; a flush makes durable
    /// what was written when it *started* (then takes a while). Every
    /// caller checks that its own write is durable when `flush` returns.
    #[test]
    fn every_caller_returns_after_a_flush_that_covers_its_write_and_flushes_are_shared() {
        let written = Arc::new(AtomicU64::new(0));
        let durable = Arc::new(AtomicU64::new(0));
        let flushes = Arc::new(AtomicU64::new(0));
        let group = Arc::new(GroupFlush::default());
        let threads = 32;
        let rounds = 50;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (written, durable, flushes, group, barrier) =
                    (written.clone(), durable.clone(), flushes.clone(), group.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..rounds {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .flush(|| {
                                let snapshot = written.load(Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                durable.fetch_max(snapshot, Ordering::SeqCst);
                                flushes.fetch_add(1, Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= mine, "returned before write {mine} was durable");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let total = (threads * rounds) as u64;
        assert_eq!(durable.load(Ordering::SeqCst), total);
        let flushes = flushes.load(Ordering::SeqCst);
        assert!(flushes < total, "{flushes} flushes for {total} writes: nothing was shared");
    }

    #[test]
    fn a_failed_flush_is_reported_to_its_callers_and_a_later_success_is_not_stale() {
        let group = GroupFlush::default();
        assert_eq!(group.flush(|| Err("disk full".into())), Err("disk full".into()));
        assert_eq!(group.flush(|| Ok(())), Ok(()));
        assert_eq!(group.flush(|| Err("again".into())), Err("again".into()));
    }
}
