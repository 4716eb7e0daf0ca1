//! The item indexes of a node's present items, increasing. A field that
//! every row has (`0, 1, 2, ...`) is one run and costs nothing an item;
//! the indexes are listed (4 bytes each) from the first gap on. A column
//! of millions of items held while reading rows, or loaded back to be
//! encoded, no longer carries a copy of its row numbers.

/// Increasing item indexes: a run while they are consecutive, else a list.
#[derive(Clone, PartialEq, Eq)]
pub enum Idx {
    /// `start, start + 1, ..., start + len - 1`.
    Run {
        /// The first index.
        start: u32,
        /// How many.
        len: u64,
    },
    /// Any increasing indexes.
    List(Vec<u32>),
}

impl Default for Idx {
    fn default() -> Self {
        Idx::Run { start: 0, len: 0 }
    }
}

impl std::fmt::Debug for Idx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Idx {
    /// Append `v` (greater than the last; the builder checks).
    pub fn push(&mut self, v: u32) {
        match self {
            Idx::Run { start, len } if *len == 0 => {
                *start = v;
                *len = 1;
            }
            Idx::Run { start, len } if u64::from(*start) + *len == u64::from(v) => *len += 1,
            Idx::Run { .. } => {
                let mut l = Vec::with_capacity(self.len() + 1);
                l.extend(self.iter());
                l.push(v);
                *self = Idx::List(l);
            }
            Idx::List(l) => l.push(v),
        }
    }

    /// How many indexes.
    pub fn len(&self) -> usize {
        match self {
            Idx::Run { len, .. } => *len as usize,
            Idx::List(l) => l.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last index.
    pub fn last(&self) -> Option<u32> {
        match self {
            Idx::Run { start, len } => (*len > 0).then(|| (u64::from(*start) + *len - 1) as u32),
            Idx::List(l) => l.last().copied(),
        }
    }

    /// Remove every index, keeping a list's allocation.
    pub fn clear(&mut self) {
        match self {
            Idx::Run { .. } => *self = Idx::default(),
            Idx::List(l) => l.clear(),
        }
    }

    /// Bytes allocated (a run: none).
    pub fn bytes(&self) -> usize {
        match self {
            Idx::Run { .. } => 0,
            Idx::List(l) => l.capacity() * 4,
        }
    }

    /// The indexes in order.
    pub fn iter(&self) -> Iter<'_> {
        match self {
            Idx::Run { start, len } => Iter::Run(u64::from(*start)..u64::from(*start) + *len),
            Idx::List(l) => Iter::List(l.iter()),
        }
    }

    /// Append every index of `it` (each greater than the one before).
    pub fn extend(&mut self, it: impl IntoIterator<Item = u32>) {
        for v in it {
            self.push(v);
        }
    }
}

/// The indexes of an [`Idx`], in order.
#[derive(Clone)]
pub enum Iter<'a> {
    /// Of a run.
    Run(std::ops::Range<u64>),
    /// Of a list.
    List(std::slice::Iter<'a, u32>),
}

impl Iterator for Iter<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        match self {
            Iter::Run(r) => r.next().map(|v| v as u32),
            Iter::List(l) => l.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Run(r) => r.size_hint(),
            Iter::List(l) => l.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_run_until_the_first_gap_then_a_list() {
        let mut i = Idx::default();
        assert!(i.is_empty() && i.last().is_none() && i.bytes() == 0);
        i.extend([5, 6, 7]);
        assert_eq!(i, Idx::Run { start: 5, len: 3 });
        assert_eq!((i.len(), i.last(), i.bytes()), (3, Some(7), 0));
        i.push(9);
        assert!(matches!(i, Idx::List(_)));
        assert_eq!(i.iter().collect::<Vec<_>>(), [5, 6, 7, 9]);
        assert_eq!(i.last(), Some(9));
        i.clear();
        assert!(i.is_empty() && matches!(i, Idx::List(_)));
        // The last index a u32 holds ends a run.
        let mut top = Idx::default();
        top.extend([u32::MAX - 1, u32::MAX]);
        assert_eq!(top.iter().collect::<Vec<_>>(), [u32::MAX - 1, u32::MAX]);
        assert_eq!(top.last(), Some(u32::MAX));
        assert_eq!(
            format!("{top:?}"),
            format!("{:?}", [u32::MAX - 1, u32::MAX])
        );
    }

    proptest! {
        /// Whatever the indexes, they read back as pushed.
        #[test]
        fn reads_back_what_was_pushed(
            start in 0u32..1000,
            steps in proptest::collection::vec(prop_oneof![3 => Just(1u32), 1 => 2u32..5], 0..200),
        ) {
            let mut want = Vec::new();
            let mut v = start;
            for s in steps {
                want.push(v);
                v += s;
            }
            let mut i = Idx::default();
            i.extend(want.iter().copied());
            prop_assert_eq!(i.iter().collect::<Vec<_>>(), want.clone());
            prop_assert_eq!(i.iter().len(), want.len());
            prop_assert_eq!(i.len(), want.len());
            prop_assert_eq!(i.last(), want.last().copied());
        }
    }
}
