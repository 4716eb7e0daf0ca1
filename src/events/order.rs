//! The row order of an overlay: a list of row slots in blocks, so that
//! inserting at a position and deleting a row cost O(rows / block + block)
//! instead of moving every row.

const BLOCK: usize = 2048;
const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct Order {
    /// Blocks by id; `seq` lists block ids in order.
    blocks: Vec<Vec<u32>>,
    seq: Vec<u32>,
    /// Block id holding each slot (`NONE` once deleted).
    block_of: Vec<u32>,
    len: usize,
}

impl Order {
    /// Slots `0..n` in order.
    pub(crate) fn new(n: u32) -> Order {
        let mut blocks = Vec::new();
        let mut block_of = Vec::with_capacity(n as usize);
        let mut start = 0u32;
        while start < n {
            let end = (start as u64 + BLOCK as u64).min(n as u64) as u32;
            let b = blocks.len() as u32;
            blocks.push((start..end).collect::<Vec<u32>>());
            block_of.extend(std::iter::repeat_n(b, (end - start) as usize));
            start = end;
        }
        if blocks.is_empty() {
            blocks.push(Vec::new());
        }
        Order {
            seq: (0..blocks.len() as u32).collect(),
            blocks,
            block_of,
            len: n as usize,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Insert `slot` (a new slot: `block_of.len()`) at position `at <= len`.
    pub(crate) fn insert(&mut self, at: usize, slot: u32) {
        debug_assert!(at <= self.len);
        debug_assert_eq!(slot as usize, self.block_of.len());
        self.block_of.push(NONE);
        // Find the block: the last one when appending.
        let mut rest = at;
        let mut si = self.seq.len() - 1;
        for (i, &b) in self.seq.iter().enumerate() {
            let l = self.blocks[b as usize].len();
            if rest < l || (rest == l && i == self.seq.len() - 1) {
                si = i;
                break;
            }
            rest -= l;
        }
        let b = self.seq[si] as usize;
        self.blocks[b].insert(rest, slot);
        self.block_of[slot as usize] = b as u32;
        self.len += 1;
        if self.blocks[b].len() > 2 * BLOCK {
            let tail = self.blocks[b].split_off(BLOCK);
            let nb = self.blocks.len() as u32;
            for &s in &tail {
                self.block_of[s as usize] = nb;
            }
            self.blocks.push(tail);
            self.seq.insert(si + 1, nb);
        }
    }

    /// Remove `slot`; false if it is not in the order.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        let Some(&b) = self.block_of.get(slot as usize) else {
            return false;
        };
        if b == NONE {
            return false;
        }
        let blk = &mut self.blocks[b as usize];
        if let Some(i) = blk.iter().position(|&s| s == slot) {
            blk.remove(i);
            self.block_of[slot as usize] = NONE;
            self.len -= 1;
            true
        } else {
            false
        }
    }

    /// True when `slot` is in the order.
    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.block_of.get(slot as usize).is_some_and(|&b| b != NONE)
    }

    /// Number of slots ever allocated.
    pub(crate) fn slots(&self) -> usize {
        self.block_of.len()
    }

    /// Slots in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.seq
            .iter()
            .flat_map(move |&b| self.blocks[b as usize].iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_vec() {
        let mut o = Order::new(5000);
        let mut v: Vec<u32> = (0..5000).collect();
        let mut x = 12345u64;
        for step in 0..6000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (x >> 33) as usize;
            if step % 3 == 0 && !v.is_empty() {
                let s = v.remove(r % v.len());
                assert!(o.remove(s));
                assert!(!o.remove(s));
            } else {
                let at = r % (v.len() + 1);
                let slot = o.slots() as u32;
                v.insert(at, slot);
                o.insert(at, slot);
            }
        }
        assert_eq!(o.len(), v.len());
        assert_eq!(o.iter().collect::<Vec<_>>(), v);
        let mut e = Order::new(0);
        e.insert(0, 0);
        e.insert(0, 1);
        assert_eq!(e.iter().collect::<Vec<_>>(), vec![1, 0]);
    }
}
