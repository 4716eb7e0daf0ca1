//! Reading a string table: decode one chunk, look up by id or by value.

use crate::encoding::varint::Reader;
use crate::error::{Error, Result};
use crate::format::TableMeta;
use crate::read::Snapshot;
use std::sync::Arc;

/// One decoded chunk: the strings back to back and their end offsets.
#[derive(Debug, Default)]
pub struct Chunk {
    data: String,
    ends: Vec<u32>,
}

impl Chunk {
    /// Strings in the chunk.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the chunk holds no strings.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The i-th string (panics if `i >= len()`; callers check).
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    /// Binary search within the chunk.
    pub fn search(&self, s: &str) -> std::result::Result<usize, usize> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).as_bytes().cmp(s.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Bytes held in memory by the chunk.
    pub fn heap_bytes(&self) -> usize {
        self.data.len() + self.ends.len() * 4
    }
}

/// Decode a chunk's raw bytes, which must hold exactly `count` strings.
pub fn decode_chunk(raw: &[u8], count: u32, front_coded: bool, what: &str) -> Result<Chunk> {
    let count = count as usize;
    if count > raw.len() {
        return Err(Error::corrupt(
            what,
            0,
            format!("{count} strings cannot fit in {} bytes", raw.len()),
        ));
    }
    let mut r = Reader::new(raw);
    let mut data: Vec<u8> = Vec::with_capacity(raw.len());
    let mut ends = Vec::with_capacity(count);
    let mut prev_start = 0usize;
    for i in 0..count {
        let start = data.len();
        if front_coded {
            let at = r.pos() as u64;
            let shared = r.len(what, u32::MAX as u64)?;
            let prev_len = start - prev_start;
            if shared > prev_len || (i == 0 && shared > 0) {
                return Err(Error::corrupt(
                    what,
                    at,
                    format!("shared prefix {shared} longer than the previous string ({prev_len})"),
                ));
            }
            data.extend_from_within(prev_start..prev_start + shared);
        }
        let suffix = r.len_bytes(what)?;
        data.extend_from_slice(suffix);
        if data.len() > u32::MAX as usize {
            return Err(Error::corrupt(
                what,
                r.pos() as u64,
                "chunk larger than 4 GiB",
            ));
        }
        ends.push(data.len() as u32);
        prev_start = start;
    }
    if !r.is_empty() {
        return Err(Error::corrupt(
            what,
            r.pos() as u64,
            format!("{} bytes after the last string", r.remaining()),
        ));
    }
    let data = String::from_utf8(data)
        .map_err(|e| Error::corrupt(what, 0, format!("invalid UTF-8: {}", e.utf8_error())))?;
    // Every string boundary must fall on a char boundary (each string is valid UTF-8).
    let mut start = 0usize;
    for &e in &ends {
        if !data.is_char_boundary(start) || !data.is_char_boundary(e as usize) {
            return Err(Error::corrupt(
                what,
                0,
                "a string is not valid UTF-8 on its own",
            ));
        }
        start = e as usize;
    }
    Ok(Chunk { data, ends })
}

/// Decode a separator index of `n` separators.
pub fn decode_index(raw: &[u8], n: usize, what: &str) -> Result<Vec<Box<[u8]>>> {
    if n > raw.len() {
        return Err(Error::corrupt(
            what,
            0,
            format!("{n} separators cannot fit in {} bytes", raw.len()),
        ));
    }
    let mut r = Reader::new(raw);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Box::from(r.len_bytes(what)?));
    }
    if !r.is_empty() {
        return Err(Error::corrupt(
            what,
            r.pos() as u64,
            "bytes after the last separator",
        ));
    }
    Ok(out)
}

/// A handle on one string table of an open snapshot. Chunks are decoded on
/// demand and cached by the snapshot.
#[derive(Clone, Copy)]
pub struct StringTable<'a> {
    pub(crate) snap: &'a Snapshot,
    pub(crate) index: u32,
}

impl<'a> StringTable<'a> {
    /// The table's footer entry.
    pub fn meta(&self) -> &'a TableMeta {
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
    pub fn chunk_starts(&self) -> &'a [u64] {
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

    #[test]
    fn corrupt_chunks_are_errors() {
        assert!(decode_chunk(&[5, b'a'], 1, false, "t").is_err());
        assert!(decode_chunk(&[1, 0xff], 1, false, "t").is_err());
        assert!(decode_chunk(&[1, b'a', 0], 1, false, "t").is_err());
        assert!(decode_chunk(&[3, 1, b'a'], 1, true, "t").is_err());
        assert!(decode_chunk(&[], 1 << 30, false, "t").is_err());
    }
}
