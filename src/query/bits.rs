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

    /// Add `i` when `on`, else take it out.
    #[inline]
    pub fn assign(&mut self, i: usize, on: bool) {
        let m = 1u64 << (i & 63);
        if on {
            self.words[i >> 6] |= m;
        } else {
            self.words[i >> 6] &= !m;
        }
    }

    /// The `n <= 64` bits from `at` (bit `at + j` at bit `j`; 0 past the end).
    #[inline]
    fn bits_at(&self, at: usize, n: usize) -> u64 {
        let (w, b) = (at >> 6, at & 63);
        let mut x = self.words.get(w).copied().unwrap_or(0) >> b;
        if b + n > 64 {
            x |= self.words.get(w + 1).copied().unwrap_or(0) << (64 - b);
        }
        if n < 64 { x & ((1u64 << n) - 1) } else { x }
    }

    /// Replace bits `to..to + len` with `src`'s bits `from..from + len`
    /// (a word at a time). Both ranges must lie in their universes.
    pub fn copy_range(&mut self, src: &Bits, from: usize, to: usize, len: usize) {
        debug_assert!(from + len <= src.len && to + len <= self.len);
        let (mut from, mut to, mut left) = (from, to, len);
        while left > 0 {
            let b = to & 63;
            let n = (64 - b).min(left);
            let x = src.bits_at(from, n);
            let mask = if n < 64 { ((1u64 << n) - 1) << b } else { !0 };
            let w = &mut self.words[to >> 6];
            *w = (*w & !mask) | (x << b);
            from += n;
            to += n;
            left -= n;
        }
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
            if i.is_multiple_of(64) && i + 64 <= end {
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

    /// Members in increasing order (a plain loop: this runs over every row
    /// of a query).
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

    /// Members in increasing order, one word at a time (for a few
    /// members: [`Bits::to_vec`] is quicker over many).
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    wi * 64 + b
                })
            })
        })
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
        assert_eq!(a.ones().collect::<Vec<_>>(), vec![0, 64, 129]);
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
        a.assign(64, false);
        a.assign(3, true);
        assert_eq!(a.to_vec(), vec![0, 3, 129]);
    }

    /// `copy_range` equals copying bit by bit, at every alignment.
    #[test]
    fn copy_range_is_a_bit_by_bit_copy() {
        let mut src = Bits::new(300);
        let mut x = 7u64;
        for i in 0..300 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            if x >> 63 == 1 {
                src.set(i);
            }
        }
        for (from, to, len) in [
            (0, 0, 300),
            (3, 70, 200),
            (64, 1, 129),
            (17, 17, 64),
            (100, 0, 0),
            (0, 236, 64),
            (299, 5, 1),
            (1, 63, 65),
        ] {
            let mut dst = Bits::full(300);
            let mut want = dst.clone();
            for j in 0..len {
                want.assign(to + j, src.get(from + j));
            }
            dst.copy_range(&src, from, to, len);
            assert_eq!(dst, want, "{from} {to} {len}");
        }
    }
}
