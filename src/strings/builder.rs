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
    let mut cur = Vec::new();
    let mut count = 0u32;
    let mut prev: &[u8] = &[];
    let mut last_of_prev_chunk: Option<&[u8]> = None;
    for s in strings {
        let s = s.as_ref().as_bytes();
        let entry = s.len() + 2;
        if count > 0 && cur.len() + entry > policy.chunk_size {
            plan.chunks.push(std::mem::take(&mut cur));
            plan.counts.push(count);
            count = 0;
            last_of_prev_chunk = Some(prev);
        }
        if count == 0 {
            if let Some(last) = last_of_prev_chunk {
                // Shortest prefix of s that sorts after `last`.
                let n = (common_prefix(last, s) + 1).min(s.len());
                varint::put_bytes(&mut plan.index, &s[..n]);
            }
            prev = &[];
        }
        if policy.front_coding {
            let shared = common_prefix(prev, s);
            varint::put_u64(&mut cur, shared as u64);
            varint::put_bytes(&mut cur, &s[shared..]);
        } else {
            varint::put_bytes(&mut cur, s);
        }
        prev = s;
        count += 1;
    }
    if count > 0 {
        plan.chunks.push(cur);
        plan.counts.push(count);
    }
    plan
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
