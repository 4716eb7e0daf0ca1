//! Chunking and encoding of a sorted string table.

use crate::encoding::varint;

/// How a table is chunked and encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TablePolicy {
    /// Target raw bytes per chunk; a chunk closes before exceeding it
    /// (a single string longer than this gets a chunk of its own).
    pub chunk_size: usize,
    /// Store each string as (shared prefix, suffix) against its predecessor.
    pub front_coding: bool,
}

/// The encoded chunks of one table.
#[derive(Debug, Default)]
pub struct ChunkPlan {
    /// Raw (uncompressed) bytes of each chunk.
    pub chunks: Vec<Vec<u8>>,
    /// Strings in each chunk.
    pub counts: Vec<u32>,
    /// Raw bytes of the separator index (empty when fewer than two chunks).
    pub index: Vec<u8>,
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Split sorted, unique `strings` into chunks under `policy`.
pub fn build_chunks<S: AsRef<str>>(strings: &[S], policy: TablePolicy) -> ChunkPlan {
    let mut plan = ChunkPlan::default();
    let mut b = ChunkBuilder::new(policy);
    for s in strings {
        if let Some((chunk, count)) = b.push(s.as_ref().as_bytes()) {
            plan.chunks.push(chunk);
            plan.counts.push(count);
        }
    }
    if let Some((chunk, count)) = b.finish() {
        plan.chunks.push(chunk);
        plan.counts.push(count);
    }
    plan.index = b.index;
    plan
}

/// [`build_chunks`] one string at a time, so that a writer can compress and
/// drop each chunk as soon as it is complete instead of holding the whole
/// table's raw bytes: the chunks, counts and index are the same.
#[derive(Debug)]
pub struct ChunkBuilder {
    policy: TablePolicy,
    cur: Vec<u8>,
    count: u32,
    /// The previous string of the current chunk (empty at a chunk's start).
    prev: Vec<u8>,
    /// The last string of the previous chunk, once a chunk was closed.
    last_of_prev_chunk: Option<Vec<u8>>,
    /// Raw bytes of the separator index so far.
    pub index: Vec<u8>,
}

impl ChunkBuilder {
    /// A builder of an empty table.
    pub fn new(policy: TablePolicy) -> Self {
        ChunkBuilder {
            policy,
            cur: Vec::new(),
            count: 0,
            prev: Vec::new(),
            last_of_prev_chunk: None,
            index: Vec::new(),
        }
    }

    /// Add the next string (in sorted order); returns the chunk it closed,
    /// with its string count, if it started a new one.
    pub fn push(&mut self, s: &[u8]) -> Option<(Vec<u8>, u32)> {
        let entry = s.len() + 2;
        let mut closed = None;
        if self.count > 0 && self.cur.len() + entry > self.policy.chunk_size {
            closed = Some((std::mem::take(&mut self.cur), self.count));
            self.count = 0;
            self.last_of_prev_chunk = Some(std::mem::take(&mut self.prev));
        }
        if self.count == 0 {
            if let Some(last) = &self.last_of_prev_chunk {
                // Shortest prefix of s that sorts after `last`.
                let n = (common_prefix(last, s) + 1).min(s.len());
                varint::put_bytes(&mut self.index, &s[..n]);
            }
            self.prev.clear();
        }
        if self.policy.front_coding {
            let shared = common_prefix(&self.prev, s);
            varint::put_u64(&mut self.cur, shared as u64);
            varint::put_bytes(&mut self.cur, &s[shared..]);
        } else {
            varint::put_bytes(&mut self.cur, s);
        }
        self.prev.clear();
        self.prev.extend_from_slice(s);
        self.count += 1;
        closed
    }

    /// The last chunk, if any string is in it.
    pub fn finish(&mut self) -> Option<(Vec<u8>, u32)> {
        if self.count == 0 {
            return None;
        }
        let n = self.count;
        self.count = 0;
        self.prev.clear();
        Some((std::mem::take(&mut self.cur), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::reader::{decode_chunk, decode_index};
    use proptest::prelude::*;

    fn check(mut v: Vec<String>, policy: TablePolicy) {
        v.sort();
        v.dedup();
        let plan = build_chunks(&v, policy);
        let mut all = Vec::new();
        for (c, &n) in plan.chunks.iter().zip(&plan.counts) {
            let chunk = decode_chunk(c, n, policy.front_coding, "t").unwrap();
            assert_eq!(chunk.len(), n as usize);
            for i in 0..chunk.len() {
                all.push(chunk.get(i).to_string());
            }
        }
        assert_eq!(all, v);
        let seps = decode_index(&plan.index, plan.chunks.len().saturating_sub(1), "t").unwrap();
        // Separator k sorts after the last string of chunk k-1 and <= the first of chunk k.
        let mut start = 0usize;
        for (k, &n) in plan.counts.iter().enumerate() {
            if k > 0 {
                assert!(seps[k - 1].as_ref() > v[start - 1].as_bytes());
                assert!(seps[k - 1].as_ref() <= v[start].as_bytes());
            }
            start += n as usize;
        }
    }

    proptest! {
        #[test]
        fn chunks_roundtrip(v in proptest::collection::vec(".{0,40}", 0..200), size in 1usize..300, fc in any::<bool>()) {
            check(v, TablePolicy { chunk_size: size, front_coding: fc });
        }
        #[test]
        fn chunks_roundtrip_prefix_heavy(v in proptest::collection::vec("(https://api\\.github\\.com/)?[a-c]{0,6}", 0..200), size in 8usize..200) {
            check(v, TablePolicy { chunk_size: size, front_coding: true });
        }
    }
}
