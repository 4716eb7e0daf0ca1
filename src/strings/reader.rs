//! Decoding a string table's sections: one chunk of strings, the separator
//! index. Pure functions of bytes; the table handle that reads them from a
//! snapshot lives in `crate::read::table`.

use crate::encoding::varint::Reader;
use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_chunks_are_errors() {
        assert!(decode_chunk(&[5, b'a'], 1, false, "t").is_err());
        assert!(decode_chunk(&[1, 0xff], 1, false, "t").is_err());
        assert!(decode_chunk(&[1, b'a', 0], 1, false, "t").is_err());
        assert!(decode_chunk(&[3, 1, b'a'], 1, true, "t").is_err());
        assert!(decode_chunk(&[], 1 << 30, false, "t").is_err());
    }
}
