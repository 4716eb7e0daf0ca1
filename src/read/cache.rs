//! A small least-recently-used map with a byte budget, shared by the
//! snapshot's caches (fetched section bytes, decoded string chunks).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Entries with their sizes; inserting past the budget evicts the least
/// recently used entries first. An entry larger than the whole budget is
/// not kept at all (the caller still has it).
#[derive(Debug)]
pub(crate) struct Lru<K, V> {
    budget: usize,
    used: usize,
    tick: u64,
    map: HashMap<K, (V, usize, u64)>,
    order: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub(crate) fn new(budget: usize) -> Self {
        Lru {
            budget,
            used: 0,
            tick: 0,
            map: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// The value under `k`, marked as just used.
    pub(crate) fn get(&mut self, k: &K) -> Option<V> {
        let (v, _, t) = self.map.get_mut(k)?;
        self.order.remove(t);
        self.tick += 1;
        *t = self.tick;
        self.order.insert(self.tick, k.clone());
        Some(v.clone())
    }

    /// Keep `v` (of `size` bytes) under `k`, evicting what does not fit.
    pub(crate) fn insert(&mut self, k: K, v: V, size: usize) {
        self.remove(&k);
        if size > self.budget {
            return;
        }
        while self.used + size > self.budget {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, s, _)) = self.map.remove(&old) {
                self.used -= s;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, k.clone());
        self.map.insert(k, (v, size, self.tick));
        self.used += size;
    }

    pub(crate) fn remove(&mut self, k: &K) {
        if let Some((_, s, t)) = self.map.remove(k) {
            self.order.remove(&t);
            self.used -= s;
        }
    }

    pub(crate) fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
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
}
