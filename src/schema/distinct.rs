//! How many distinct strings a column holds, estimated from the strings'
//! text as they are read (a k-minimum-values sketch). The writer uses it to
//! tell prose-like columns from categorical ones before the string tables
//! are sorted, when the columns' string ids are still provisional: with a
//! memory budget the interner starts afresh in each spilled run, so one
//! string may have several provisional ids, and a count of ids would make
//! the bytes written depend on `--memory`. A sketch of the text does not.

use std::hash::BuildHasher;

/// Hashes kept: the estimate's relative error is about 1/sqrt(K - 2) (13%).
const K: usize = 64;

/// The hash of the sketch: fixed, so that a build is deterministic.
const SEED: u64 = 0x636f_6c73_6e61_7073; // "colsnaps"

/// The `K` smallest distinct 64-bit hashes of the strings inserted.
#[derive(Debug, Default, Clone)]
pub struct DistinctSketch {
    /// Increasing; at most `K`.
    mins: Vec<u64>,
}

impl DistinctSketch {
    /// Count `s`.
    pub fn insert(&mut self, s: &str) {
        let h = foldhash::quality::FixedState::with_seed(SEED).hash_one(s);
        if self.mins.len() == K && self.mins.last().is_some_and(|&m| h >= m) {
            return;
        }
        if let Err(at) = self.mins.binary_search(&h) {
            // One allocation, never grown past K + 1 (512 bytes and one).
            if self.mins.capacity() == 0 {
                self.mins.reserve_exact(K + 1);
            }
            self.mins.insert(at, h);
            self.mins.truncate(K);
        }
    }

    /// Estimated distinct strings inserted: exact below `K` (unless two
    /// strings share a 64-bit hash), else `(K - 1) * 2^64 / (K-th smallest
    /// hash + 1)`.
    pub fn estimate(&self) -> u64 {
        if self.mins.len() < K {
            return self.mins.len() as u64;
        }
        let kth = self.mins[K - 1] as f64 + 1.0;
        ((K - 1) as f64 * 18_446_744_073_709_551_616.0 / kth).round() as u64
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.mins.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_strings_are_counted_exactly_and_repeats_once() {
        let mut s = DistinctSketch::default();
        assert_eq!(s.estimate(), 0);
        for i in 0..1000 {
            s.insert(&format!("label {}", i % 40));
        }
        assert_eq!(s.estimate(), 40);
        assert_eq!(s.bytes(), 8 * (K + 1));
    }

    #[test]
    fn many_strings_are_estimated_within_a_third() {
        for n in [100u64, 1_000, 20_000, 300_000] {
            let mut s = DistinctSketch::default();
            // Each string twice: repeats do not count.
            for i in 0..2 * n {
                s.insert(&format!("a comment fragment number {}", i % n));
            }
            assert_eq!(s.bytes(), 8 * (K + 1));
            let e = s.estimate() as f64;
            assert!(
                (e / n as f64 - 1.0).abs() < 0.34,
                "{n} distinct estimated as {e}"
            );
        }
    }

    #[test]
    fn the_order_of_insertion_does_not_change_the_sketch() {
        let words: Vec<String> = (0..5000).map(|i| format!("w{}", i * 7919 % 5003)).collect();
        let mut a = DistinctSketch::default();
        let mut b = DistinctSketch::default();
        words.iter().for_each(|w| a.insert(w));
        words.iter().rev().for_each(|w| b.insert(w));
        assert_eq!(a.mins, b.mins);
    }
}
