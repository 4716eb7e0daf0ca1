//! Sections on their way from a remote source. A snapshot shared by many
//! threads (a service answering requests over one snapshot on an object
//! store) would otherwise read a section once per thread that needs it
//! while the first read is still on the wire: a cold start with 8 requests
//! for the same page read every string chunk 8 times. The first thread to
//! need a section claims it and reads it; the others wait for that read and
//! take the bytes from the fetched-section cache, where it put them.
//!
//! Only synchronous reads take part: an async read never waits here (a
//! blocked executor thread, or on wasm the only thread, could wait for a
//! read that it alone would have to drive).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The sections being read, each with the flight its readers wait on.
#[derive(Debug, Default)]
pub(super) struct Flights {
    on: Mutex<HashMap<u32, Arc<Flight>>>,
}

/// One section's read: `done` once its bytes are kept (or the read failed).
#[derive(Debug, Default)]
struct Flight {
    done: Mutex<bool>,
    landed: Condvar,
}

/// Sections a thread claimed; dropping it releases them and wakes their
/// waiters, whether the read succeeded, failed or panicked.
pub(super) struct Claim<'a> {
    flights: &'a Flights,
    ids: BTreeSet<u32>,
}

/// Reads of other threads to wait for.
pub(super) struct Waits(Vec<Arc<Flight>>);

/// The lock even when a panicking thread held it: the map and the flags it
/// guards are whole at every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Flights {
    /// Claims the sections of `ids` that no thread is reading (the caller
    /// reads them), and returns the flights of the others.
    pub(super) fn claim(&self, ids: impl IntoIterator<Item = u32>) -> (Claim<'_>, Waits) {
        let wanted: BTreeSet<u32> = ids.into_iter().collect();
        let mut on = lock(&self.on);
        let mut mine = BTreeSet::new();
        let mut theirs = Vec::new();
        for id in wanted {
            match on.get(&id) {
                Some(f) => theirs.push(f.clone()),
                None => {
                    on.insert(id, Arc::default());
                    mine.insert(id);
                }
            }
        }
        (
            Claim {
                flights: self,
                ids: mine,
            },
            Waits(theirs),
        )
    }

    /// The read of section `id` under way, if any.
    pub(super) fn of(&self, id: u32) -> Waits {
        Waits(lock(&self.on).get(&id).cloned().into_iter().collect())
    }
}

impl Claim<'_> {
    /// Whether this claim holds section `id`.
    pub(super) fn holds(&self, id: u32) -> bool {
        self.ids.contains(&id)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut on = lock(&self.flights.on);
        for id in &self.ids {
            if let Some(f) = on.remove(id) {
                *lock(&f.done) = true;
                f.landed.notify_all();
            }
        }
    }
}

impl Waits {
    /// True when there is nothing to wait for.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Blocks until every read waited for has ended.
    pub(super) fn wait(self) {
        for f in self.0 {
            let mut done = lock(&f.done);
            while !*done {
                done = f.landed.wait(done).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_claimed_section_is_waited_for_until_released() {
        let f = Flights::default();
        let (mine, none) = f.claim([3, 1, 3]);
        assert!(mine.holds(1) && mine.holds(3) && !mine.holds(2));
        assert!(none.is_empty());
        let (other, theirs) = f.claim([1, 2]);
        assert!(other.holds(2) && !other.holds(1), "1 is another's");
        assert_eq!(theirs.0.len(), 1);
        let released = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                theirs.wait();
                assert!(released.load(Ordering::SeqCst), "woke before the release");
            });
            std::thread::sleep(Duration::from_millis(50));
            released.store(true, Ordering::SeqCst);
            drop(mine);
        });
        assert!(f.of(1).is_empty() && f.of(3).is_empty());
        assert!(!f.of(2).is_empty());
        drop(other);
        assert!(lock(&f.on).is_empty());
    }

    #[test]
    fn a_claim_dropped_by_a_panic_still_wakes_its_waiters() {
        let f = Flights::default();
        std::thread::scope(|s| {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let flights = &f;
            let reader = s.spawn(move || {
                let _claim = flights.claim([7]).0;
                ready_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                panic!("the read failed");
            });
            ready_rx.recv().unwrap();
            let waits = f.of(7);
            assert!(!waits.is_empty());
            go_tx.send(()).unwrap();
            waits.wait();
            assert!(reader.join().is_err());
        });
        assert!(f.of(7).is_empty());
    }
}
