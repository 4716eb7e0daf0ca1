//! A plain fixed-size bitset.

/// A fixed-size set of `u32` indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// An empty set over `0..len`.
    pub fn new(len: usize) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// The full set `0..len`.
    pub fn full(len: usize) -> Bits {
        let mut b = Bits {
            words: vec![!0; len.div_ceil(64)],
            len,
        };
        b.trim();
        b
    }

    fn trim(&mut self) {
        let r = self.len % 64;
        if r != 0
            && let Some(w) = self.words.last_mut()
        {
            *w &= (1u64 << r) - 1;
        }
    }

    /// Size of the universe.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the universe is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add `i`.
    #[inline]
    pub fn set(&mut self, i: usize) {
        self.words[i >> 6] |= 1 << (i & 63);
    }

    /// Is `i` in the set? (False past the end.)
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i >> 6)
            .is_some_and(|w| w & (1 << (i & 63)) != 0)
    }

    /// True when any member lies in `r`.
    pub fn any_in(&self, r: std::ops::Range<usize>) -> bool {
        let end = r.end.min(self.len);
        let mut i = r.start;
        while i < end {
            if i % 64 == 0 && i + 64 <= end {
                if self.words[i >> 6] != 0 {
                    return true;
                }
                i += 64;
            } else {
                if self.get(i) {
                    return true;
                }
                i += 1;
            }
        }
        false
    }

    /// Intersect with `o` (same universe).
    pub fn and_with(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a &= b;
        }
    }

    /// Union with `o` (same universe).
    pub fn or_with(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a |= b;
        }
    }

    /// Complement within the universe.
    pub fn negate(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.trim();
    }

    /// Number of members.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Members in increasing order.
    pub fn to_vec(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.count());
        for (wi, &w) in self.words.iter().enumerate() {
            let mut w = w;
            while w != 0 {
                let b = w.trailing_zeros() as usize;
                out.push((wi * 64 + b) as u32);
                w &= w - 1;
            }
        }
        out
    }

    /// The bits as 64-bit words, bit `i` at `words[i / 64] >> (i % 64)`
    /// (for callers that hand the bitmap on, such as a browser's typed arrays).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        let mut a = Bits::new(130);
        a.set(0);
        a.set(64);
        a.set(129);
        assert_eq!(a.to_vec(), vec![0, 64, 129]);
        let mut n = a.clone();
        n.negate();
        assert_eq!(n.count(), 127);
        assert!(!n.get(129) && n.get(128));
        n.and_with(&a);
        assert_eq!(n.count(), 0);
        n.or_with(&a);
        assert_eq!(n, a);
        assert_eq!(Bits::full(65).count(), 65);
        assert!(!a.get(1000));
        assert!(a.any_in(60..65) && !a.any_in(1..64) && a.any_in(129..500));
    }
}
