//! The handle on one string table of an open snapshot: lookups by id, by
//! value and by prefix. Chunks are fetched and decoded on demand through the
//! snapshot's shared cache; the decoding itself is `crate::strings::reader`.

use super::Snapshot;
use crate::error::{Error, Result};
use crate::format::TableMeta;
use crate::strings::Chunk;
use std::sync::Arc;

/// A handle on one string table of an open snapshot. Chunks are decoded on
/// demand and cached by the snapshot. It owns a clone of the snapshot (a
/// cheap, shared handle), so it can be kept, stored and sent between threads.
#[derive(Clone, Debug)]
pub struct StringTable {
    pub(crate) snap: Snapshot,
    pub(crate) index: u32,
}

impl StringTable {
    /// The table's footer entry.
    pub fn meta(&self) -> &TableMeta {
        &self.snap.footer().tables[self.index as usize]
    }

    /// Number of strings.
    pub fn len(&self) -> u64 {
        self.meta().n_strings
    }

    /// True when the table has no strings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.meta().chunk_counts.len()
    }

    /// First id of every chunk, plus the total at the end.
    pub fn chunk_starts(&self) -> &[u64] {
        self.snap.chunk_starts(self.index)
    }

    /// Chunk holding `id` and the position inside it.
    pub fn locate(&self, id: u32) -> Result<(usize, usize)> {
        let starts = self.chunk_starts();
        if id as u64 >= self.len() {
            return Err(Error::NotFound {
                what: "string id",
                name: format!("{id} (table {} has {} strings)", self.index, self.len()),
            });
        }
        let k = starts.partition_point(|&s| s <= id as u64) - 1;
        Ok((k, (id as u64 - starts[k]) as usize))
    }

    /// Decode (or fetch from cache) chunk `k`.
    pub fn chunk(&self, k: usize) -> Result<Arc<Chunk>> {
        self.snap.string_chunk(self.index, k)
    }

    /// The string with id `id`; decodes only the chunk that holds it.
    pub fn get(&self, id: u32) -> Result<String> {
        let (k, i) = self.locate(id)?;
        Ok(self.chunk(k)?.get(i).to_string())
    }

    /// Call `f` with the string `id` without copying it.
    pub fn with<T>(&self, id: u32, f: impl FnOnce(&str) -> T) -> Result<T> {
        let (k, i) = self.locate(id)?;
        Ok(f(self.chunk(k)?.get(i)))
    }

    /// `Ok(id)` when `s` is in the table, else `Err(insertion_point)`: the id
    /// of the first string greater than `s` (or `len()`). Decodes at most one chunk.
    pub fn find(&self, s: &str) -> Result<std::result::Result<u32, u32>> {
        let n = self.chunk_count();
        if n == 0 {
            return Ok(Err(0));
        }
        let seps = self.snap.string_index(self.index)?;
        let k = seps.partition_point(|sep| sep.as_ref() <= s.as_bytes());
        let base = self.chunk_starts()[k] as u32;
        Ok(match self.chunk(k)?.search(s) {
            Ok(i) => Ok(base + i as u32),
            Err(i) => Err(base + i as u32),
        })
    }

    /// The id range of every string starting with `prefix` (contiguous,
    /// because the table is sorted). Decodes at most two chunks.
    pub fn prefix_range(&self, prefix: &str) -> Result<std::ops::Range<u32>> {
        let lo = match self.find(prefix)? {
            Ok(i) | Err(i) => i,
        };
        // The first string not starting with `prefix` is the insertion point
        // of the smallest string greater than every extension of prefix.
        let hi = match successor(prefix) {
            Some(next) => match self.find(&next)? {
                Ok(i) | Err(i) => i,
            },
            None => self.len() as u32,
        };
        Ok(lo..hi.max(lo))
    }
}

/// The smallest string greater than every string that starts with `p`, if any:
/// increment the last char that can be incremented, dropping what follows.
fn successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(c) = chars.pop() {
        let mut next = c as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(n) = char::from_u32(next) {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_orders_after_all_extensions() {
        for p in ["a", "ab", "a\u{10FFFF}", "\u{D7FF}", "zz"] {
            let s = successor(p).unwrap();
            assert!(s.as_str() > p);
            assert!(s.as_str() > format!("{p}\u{10FFFF}\u{10FFFF}").as_str());
        }
        assert_eq!(successor("\u{10FFFF}"), None);
    }
}
