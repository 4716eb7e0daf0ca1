//! The row order of an overlay: a list of row slots in blocks, so that
//! inserting at a position and deleting a row cost O(rows / block + block)
//! instead of moving every row.

const BLOCK: usize = 2048;
/// The smallest block: a small view still has several blocks, so that
/// splitting and joining are exercised by small tests.
const MIN_BLOCK: usize = 8;
const NONE: u32 = u32::MAX;

/// The block size for `n` slots: about sqrt(n) (the walk over blocks and
/// the moves inside one cost about the same), between [`MIN_BLOCK`] and
/// [`BLOCK`].
fn block_for(n: usize) -> usize {
    (n as f64).sqrt().clamp(MIN_BLOCK as f64, BLOCK as f64) as usize
}

#[derive(Clone, Debug)]
pub(crate) struct Order {
    /// Blocks by id; `seq` lists block ids in order.
    blocks: Vec<Vec<u32>>,
    seq: Vec<u32>,
    /// Block id holding each slot (`NONE` once deleted).
    block_of: Vec<u32>,
    len: usize,
    /// Block size: a block splits past twice it.
    block: usize,
}

impl Order {
    /// Slots `0..n` in order.
    pub(crate) fn new(n: u32) -> Order {
        let block = block_for(n as usize);
        let mut blocks = Vec::new();
        let mut block_of = Vec::with_capacity(n as usize);
        let mut start = 0u32;
        while start < n {
            let end = (start as u64 + block as u64).min(n as u64) as u32;
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
            block,
        }
    }

    /// `slots` (distinct) in this order.
    pub(crate) fn from_slots(slots: &[u32]) -> Order {
        let top = slots.iter().max().map_or(0, |&m| m as usize + 1);
        let mut block_of = vec![NONE; top];
        let block = block_for(slots.len());
        let mut blocks: Vec<Vec<u32>> = Vec::with_capacity(slots.len() / block + 1);
        for c in slots.chunks(block) {
            for &s in c {
                block_of[s as usize] = blocks.len() as u32;
            }
            blocks.push(c.to_vec());
        }
        if blocks.is_empty() {
            blocks.push(Vec::new());
        }
        Order {
            seq: (0..blocks.len() as u32).collect(),
            blocks,
            block_of,
            len: slots.len(),
            block,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Insert `slot` (not in the order: a new slot, `block_of.len()` or
    /// past it, or one removed before) at position `at <= len`.
    pub(crate) fn insert(&mut self, at: usize, slot: u32) {
        debug_assert!(at <= self.len);
        debug_assert!(!self.contains(slot));
        if slot as usize >= self.block_of.len() {
            self.block_of.resize(slot as usize + 1, NONE);
        }
        // Find the block: the last one when appending.
        let mut si = self.seq.len() - 1;
        let mut rest = at;
        if at == self.len {
            rest = self.blocks[self.seq[si] as usize].len();
        } else {
            for (i, &b) in self.seq.iter().enumerate() {
                let l = self.blocks[b as usize].len();
                if rest < l {
                    si = i;
                    break;
                }
                rest -= l;
            }
        }
        let b = self.seq[si] as usize;
        self.blocks[b].insert(rest, slot);
        self.block_of[slot as usize] = b as u32;
        self.len += 1;
        if self.blocks[b].len() > 2 * self.block {
            let tail = self.blocks[b].split_off(self.block);
            let nb = self.blocks.len() as u32;
            for &s in &tail {
                self.block_of[s as usize] = nb;
            }
            self.blocks.push(tail);
            self.seq.insert(si + 1, nb);
        }
        // The view grew well past the size its blocks were made for (a
        // small snapshot taking many creates): block it again for its
        // size, so a walk over the blocks stays about sqrt(rows) long.
        // The block size at least doubles each time: O(1) a row amortised.
        if self.block < BLOCK && self.len > 4 * self.block * self.block {
            self.reblock();
        }
    }

    /// Cut the order again into blocks of the size for its length.
    fn reblock(&mut self) {
        let slots = self.to_vec();
        let block = block_for(slots.len());
        let mut blocks: Vec<Vec<u32>> = Vec::with_capacity(slots.len() / block + 1);
        for c in slots.chunks(block) {
            let b = blocks.len() as u32;
            for &s in c {
                self.block_of[s as usize] = b;
            }
            blocks.push(c.to_vec());
        }
        if blocks.is_empty() {
            blocks.push(Vec::new());
        }
        self.seq = (0..blocks.len() as u32).collect();
        self.blocks = blocks;
        self.block = block;
    }

    /// Remove `slot`; false if it is not in the order. A block left with
    /// fewer than half the block size joins the next one (when they fit
    /// in one block) or, emptied, leaves the sequence: every block in the
    /// sequence holds a slot unless the order is empty.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        let Some(&b) = self.block_of.get(slot as usize) else {
            return false;
        };
        if b == NONE {
            return false;
        }
        let blk = &mut self.blocks[b as usize];
        let Some(i) = blk.iter().position(|&s| s == slot) else {
            return false;
        };
        blk.remove(i);
        self.block_of[slot as usize] = NONE;
        self.len -= 1;
        let l = self.blocks[b as usize].len();
        if l < self.block / 2 && self.seq.len() > 1 {
            let si = self.seq.iter().position(|&x| x == b).unwrap_or(0);
            if l == 0 {
                self.seq.remove(si);
            } else if let Some(&nb) = self.seq.get(si + 1)
                && l + self.blocks[nb as usize].len() <= 2 * self.block
            {
                // The next block's slots join this one.
                let moved = std::mem::take(&mut self.blocks[nb as usize]);
                for &s in &moved {
                    self.block_of[s as usize] = b;
                }
                self.blocks[b as usize].extend(moved);
                self.seq.remove(si + 1);
            }
        }
        true
    }

    /// The position of `slot` in the order (O(blocks + block)).
    pub(crate) fn position(&self, slot: u32) -> Option<usize> {
        let b = *self.block_of.get(slot as usize)?;
        if b == NONE {
            return None;
        }
        let mut at = 0;
        for &x in &self.seq {
            if x == b {
                let i = self.blocks[b as usize].iter().position(|&s| s == slot)?;
                return Some(at + i);
            }
            at += self.blocks[x as usize].len();
        }
        None
    }

    /// The slot at position `i` (O(blocks)).
    pub(crate) fn at(&self, mut i: usize) -> Option<u32> {
        for &b in &self.seq {
            let blk = &self.blocks[b as usize];
            if i < blk.len() {
                return Some(blk[i]);
            }
            i -= blk.len();
        }
        None
    }

    /// The slots at positions `range` (clamped to the order), in order:
    /// O(blocks + range).
    pub(crate) fn range(&self, range: std::ops::Range<usize>) -> Vec<u32> {
        let (mut start, end) = (range.start.min(self.len), range.end.min(self.len));
        let mut want = end.saturating_sub(start);
        let mut out = Vec::with_capacity(want);
        for &b in &self.seq {
            if want == 0 {
                break;
            }
            let blk = &self.blocks[b as usize];
            if start >= blk.len() {
                start -= blk.len();
                continue;
            }
            let take = (blk.len() - start).min(want);
            out.extend_from_slice(&blk[start..start + take]);
            want -= take;
            start = 0;
        }
        out
    }

    /// The number of slots before the first one for which `pred` is false
    /// (`pred` true on a prefix of the order, as
    /// [`slice::partition_point`]): O(log(rows)) calls of `pred` plus
    /// O(blocks).
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(u32) -> bool) -> usize {
        // The first block whose last slot fails; before it, all pass.
        let (mut lo, mut hi) = (0, self.seq.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let blk = &self.blocks[self.seq[mid] as usize];
            if blk.last().is_none_or(|&s| pred(s)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let before: usize = self.seq[..lo]
            .iter()
            .map(|&b| self.blocks[b as usize].len())
            .sum();
        match self.seq.get(lo) {
            Some(&b) => before + self.blocks[b as usize].partition_point(|&s| pred(s)),
            None => before,
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

    /// Slots in order, as one vector (copied block by block).
    pub(crate) fn to_vec(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len);
        for &b in &self.seq {
            out.extend_from_slice(&self.blocks[b as usize]);
        }
        out
    }

    /// The blocks' slots, in order.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.seq
            .iter()
            .map(move |&b| self.blocks[b as usize].as_slice())
    }

    /// Each block in order, with how many slots at `from` or past it it
    /// holds (counted from those slots' blocks: no look at the other slots).
    pub(crate) fn blocks_holding_from(
        &self,
        from: u32,
    ) -> impl Iterator<Item = (&[u32], u32)> + '_ {
        let mut holds = vec![0u32; self.blocks.len()];
        for &b in self.block_of.iter().skip(from as usize) {
            if b != NONE {
                holds[b as usize] += 1;
            }
        }
        self.seq
            .iter()
            .map(move |&b| (self.blocks[b as usize].as_slice(), holds[b as usize]))
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
        for (i, &s) in v.iter().enumerate().step_by(97) {
            assert_eq!(o.position(s), Some(i));
            assert_eq!(o.at(i), Some(s));
        }
        for (a, b) in [
            (0, 0),
            (0, 50),
            (37, 1234),
            (v.len() - 3, v.len() + 10),
            (v.len() + 1, v.len() + 5),
        ] {
            let want: Vec<u32> = v
                .iter()
                .copied()
                .skip(a)
                .take(b.saturating_sub(a))
                .collect();
            assert_eq!(o.range(a..b), want, "{a}..{b}");
        }
        assert_eq!(o.at(v.len()), None);
        // Blocks holding a slot past a bound: as a look at every slot says.
        for from in [0u32, 2500, 5000, 7000, 20_000] {
            let got: Vec<(Vec<u32>, u32)> = o
                .blocks_holding_from(from)
                .map(|(b, h)| (b.to_vec(), h))
                .collect();
            let want: Vec<(Vec<u32>, u32)> = o
                .blocks()
                .map(|b| (b.to_vec(), b.iter().filter(|&&s| s >= from).count() as u32))
                .collect();
            assert_eq!(got, want, "from {from}");
            assert!(got.iter().any(|g| g.1 > 0) || from >= 7000);
        }
        let mut e = Order::new(0);
        e.insert(0, 0);
        e.insert(0, 1);
        assert_eq!(e.iter().collect::<Vec<_>>(), vec![1, 0]);
    }

    /// An order made for a few slots that then takes many (appended, at
    /// the front, in the middle) is blocked again for its size: its blocks
    /// stay about sqrt(len) long, and it still matches a vector.
    #[test]
    fn a_small_order_taking_many_slots_grows_its_blocks() {
        let mut o = Order::new(3);
        let mut v: Vec<u32> = (0..3).collect();
        for i in 0..60_000u32 {
            let slot = o.slots() as u32;
            let at = match i % 3 {
                0 => v.len(),
                1 => 0,
                _ => v.len() / 2,
            };
            o.insert(at, slot);
            v.insert(at, slot);
            if i % 7 == 0 {
                let s = v.remove((i as usize * 31) % v.len());
                assert!(o.remove(s));
            }
        }
        assert_eq!(o.iter().collect::<Vec<_>>(), v);
        assert!(o.block >= 64, "block {}", o.block);
        assert!(
            o.seq.len() < 4 * o.block,
            "{} blocks of {}",
            o.seq.len(),
            o.block
        );
        for (i, &s) in v.iter().enumerate().step_by(101) {
            assert_eq!(o.position(s), Some(i));
        }
    }

    /// A kept sorted order: slots removed, put back at their sorted place
    /// (found by `partition_point`), blocks splitting and joining; the
    /// same as a sorted vector at every step.
    #[test]
    fn sorted_moves_match_a_vec() {
        let key = |s: u32| s.wrapping_mul(2654435761) % 1000;
        let mut v: Vec<u32> = (0..20_000).collect();
        v.sort_by_key(|&s| (key(s), s));
        let mut o = Order::new(0);
        for (i, &s) in v.iter().enumerate() {
            o.insert(i, s);
        }
        let mut gone = Vec::new();
        let mut x = 99u64;
        for step in 0..30_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (x >> 33) as usize;
            // Long runs of removals empty and join blocks; then put back.
            if (step / 5000) % 2 == 0 && !v.is_empty() {
                let s = v.remove(r % v.len());
                assert!(o.remove(s));
                gone.push(s);
            } else if let Some(s) = gone.pop() {
                let i = o.partition_point(|t| (key(t), t) < (key(s), s));
                assert_eq!(i, v.partition_point(|&t| (key(t), t) < (key(s), s)));
                o.insert(i, s);
                v.insert(i, s);
            }
            if step % 1000 == 0 {
                assert_eq!(o.iter().collect::<Vec<_>>(), v);
                assert!(
                    o.seq.len() == 1 || o.seq.iter().all(|&b| !o.blocks[b as usize].is_empty())
                );
            }
        }
        assert_eq!(o.len(), v.len());
        assert_eq!(o.iter().collect::<Vec<_>>(), v);
        for (i, &s) in v.iter().enumerate().step_by(31) {
            assert_eq!(o.position(s), Some(i));
        }
    }
}
