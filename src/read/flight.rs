//! Sections on their way from a remote source. A snapshot shared by many
//! threads (a service answering requests over one snapshot on an object
//! store) would otherwise read a section once per thread that needs it
//! while the first read is still on the wire: a cold start with 8 requests
//! for the same page read every string chunk 8 times. The first thread to
//! need a section claims it and reads it; the others wait for that read and
//! take the bytes from the fetched-section cache, where it put them.
//!
//! Reads through an async source take part too, in their own way: a
//! snapshot reads either through a synchronous source or through an async
//! one, never both, so a synchronous reader never blocks on a read that a
//! task holds (on a single-threaded executor, or on wasm, that task could
//! never run again), and an async reader never blocks at all: it awaits the
//! other task's read ([`Waits::landed`]), and its executor runs that task
//! meanwhile. A claim held by a task that is dropped (a cancelled request)
//! is released like any other, and its waiters read the sections
//! themselves.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

/// The sections being read, each with the flight its readers wait on.
#[derive(Debug, Default)]
pub(super) struct Flights {
    on: Mutex<HashMap<u32, Arc<Flight>>>,
}

/// One section's read: `done` once its bytes are kept (or the read failed,
/// or its reader was dropped). Threads wait on `landed`, tasks leave their
/// wakers.
#[derive(Debug, Default)]
struct Flight {
    state: Mutex<State>,
    landed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    done: bool,
    wakers: Vec<Waker>,
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
        let mut wake = Vec::new();
        for id in &self.ids {
            if let Some(f) = on.remove(id) {
                let mut st = lock(&f.state);
                st.done = true;
                wake.append(&mut st.wakers);
                drop(st);
                f.landed.notify_all();
            }
        }
        drop(on);
        wake.into_iter().for_each(Waker::wake);
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
            let mut st = lock(&f.state);
            while !st.done {
                st = f.landed.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    /// Completes once every read waited for has ended, without blocking:
    /// the task is woken when the last one is released.
    pub(super) async fn landed(self) {
        for f in self.0 {
            std::future::poll_fn(|cx| {
                let mut st = lock(&f.state);
                if st.done {
                    return Poll::Ready(());
                }
                if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    st.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
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

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_task_awaits_a_claimed_section_and_is_woken_by_its_release() {
        let f = Flights::default();
        let (mine, _) = f.claim([5, 6]);
        let (none, theirs) = f.claim([5]);
        assert!(!none.holds(5));
        let count = Arc::new(Count(Default::default()));
        let waker = Waker::from(count.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut landed = std::pin::pin!(theirs.landed());
        assert!(landed.as_mut().poll(&mut cx).is_pending());
        // Polled again by the same task: one waker kept, not two.
        assert!(landed.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        drop(mine);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken once by the release"
        );
        assert!(landed.as_mut().poll(&mut cx).is_ready());
        // Nothing to wait for: ready at once.
        let mut nothing = std::pin::pin!(f.of(5).landed());
        assert!(nothing.as_mut().poll(&mut cx).is_ready());
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
