//! A small least-recently-used map with a byte budget, shared by the
//! snapshot's caches (fetched section bytes, decoded string chunks, single
//! strings). Recency is the `lru` crate's linked hash map (a hit is O(1):
//! one hash lookup and a relink); this type adds the byte budget.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// The value kept under `k` in `m`, made by `make` and kept on first use
/// (made outside the lock: two threads may both make it, the first kept
/// value wins for later callers, and both answers are equal).
pub(crate) fn memo<K: Hash + Eq, V: Clone>(
    m: &Mutex<HashMap<K, V>>,
    k: K,
    make: impl FnOnce() -> Result<V>,
) -> Result<V> {
    if let Some(v) = m.lock().map_err(|_| poisoned())?.get(&k) {
        return Ok(v.clone());
    }
    let v = make()?;
    // Another thread may have made it meanwhile: the first one kept wins, so
    // every caller sees the same value.
    Ok(m.lock()
        .map_err(|_| poisoned())?
        .entry(k)
        .or_insert(v)
        .clone())
}

/// The error for a cache whose lock a panicking thread poisoned.
pub(crate) fn poisoned() -> Error {
    Error::Invalid("a cache lock was poisoned by a panic in another thread".into())
}

/// Entries with their sizes; inserting past the budget evicts the least
/// recently used entries first. An entry larger than the whole budget is
/// not kept at all (the caller still has it).
pub(crate) struct Lru<K, V> {
    budget: usize,
    used: usize,
    map: lru::LruCache<K, (V, usize)>,
}

impl<K: Hash + Eq, V> std::fmt::Debug for Lru<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lru")
            .field("budget", &self.budget)
            .field("used", &self.used)
            .field("entries", &self.map.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub(crate) fn new(budget: usize) -> Self {
        Lru {
            budget,
            used: 0,
            map: lru::LruCache::unbounded(),
        }
    }

    /// The value under `k`, marked as just used.
    pub(crate) fn get(&mut self, k: &K) -> Option<V> {
        self.map.get(k).map(|(v, _)| v.clone())
    }

    /// Keep `v` (of `size` bytes) under `k`, evicting what does not fit.
    pub(crate) fn insert(&mut self, k: K, v: V, size: usize) {
        self.remove(&k);
        if size > self.budget {
            return;
        }
        while self.used + size > self.budget {
            let Some((_, (_, s))) = self.map.pop_lru() else {
                break;
            };
            self.used -= s;
        }
        self.map.put(k, (v, size));
        self.used += size;
    }

    pub(crate) fn remove(&mut self, k: &K) {
        if let Some((_, s)) = self.map.pop(k) {
            self.used -= s;
        }
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        self.map.contains(k)
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.used = 0;
    }

    /// Bytes held (the sum of the sizes given).
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut c = Lru::new(10);
        c.insert(1, "a", 4);
        c.insert(2, "b", 4);
        assert_eq!(c.get(&1), Some("a")); // 2 is now the oldest
        c.insert(3, "c", 4); // 12 > 10: evicts 2
        assert!(c.contains(&1) && !c.contains(&2) && c.contains(&3));
        assert_eq!(c.used(), 8);
        c.insert(4, "d", 11); // larger than the budget: not kept
        assert!(!c.contains(&4));
        assert_eq!(c.len(), 2);
        c.insert(1, "a2", 2); // replacing updates the size
        assert_eq!((c.used(), c.get(&1)), (6, Some("a2")));
        c.insert(5, "e", 10); // evicts everything else
        assert_eq!((c.len(), c.used()), (1, 10));
        c.clear();
        assert_eq!((c.len(), c.used()), (0, 0));
    }

    #[test]
    fn used_never_exceeds_budget() {
        let mut c = Lru::new(100);
        for i in 0..1000u32 {
            c.insert(i % 37, i, (i as usize * 7) % 60);
            assert!(c.used() <= 100);
            if i % 3 == 0 {
                c.get(&(i % 11));
            }
        }
    }

    /// The eviction order and byte accounting equal a plain recency list's
    /// over random operations.
    #[test]
    fn agrees_with_a_recency_list() {
        let mut c = Lru::new(200);
        let mut model: Vec<(u32, u32, usize)> = Vec::new(); // oldest first
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 64) as u32;
            match (x >> 8) % 4 {
                0 | 1 => {
                    let got = c.get(&k);
                    let pos = model.iter().position(|e| e.0 == k);
                    assert_eq!(got, pos.map(|p| model[p].1));
                    if let Some(p) = pos {
                        let e = model.remove(p);
                        model.push(e);
                    }
                }
                2 => {
                    let size = ((x >> 16) % 90) as usize;
                    c.insert(k, step, size);
                    model.retain(|e| e.0 != k);
                    if size <= 200 {
                        while model.iter().map(|e| e.2).sum::<usize>() + size > 200 {
                            model.remove(0);
                        }
                        model.push((k, step, size));
                    }
                }
                _ => {
                    c.remove(&k);
                    model.retain(|e| e.0 != k);
                }
            }
            let used: usize = model.iter().map(|e| e.2).sum();
            assert_eq!((c.used(), c.len()), (used, model.len()));
            assert!(c.used() <= 200);
        }
    }
}
