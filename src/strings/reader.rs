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
    let mut data: Vec<u8> = Vec::with_capacity(decoded_len(raw, count, front_coded));
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

/// The bytes the `count` strings of `raw` take decoded, read from their
/// lengths alone, so that the decoded chunk is allocated once at its size
/// (front-coded strings decode to several times the raw bytes: grown by
/// doubling, the vector would be copied a few times and keep up to half
/// its capacity spare in the decoded-chunk cache, which counts the
/// strings' bytes). A malformed chunk gives the raw length, and the decode
/// then reports it.
fn decoded_len(raw: &[u8], count: usize, front_coded: bool) -> usize {
    if !front_coded {
        return raw.len();
    }
    let mut r = Reader::new(raw);
    let mut total = 0usize;
    for _ in 0..count {
        let (Ok(shared), Ok(suffix)) = (r.len("", u32::MAX as u64), r.len_bytes("")) else {
            return raw.len();
        };
        total = total.saturating_add(shared).saturating_add(suffix.len());
    }
    // Shared prefixes are checked by the decode: never trust a total past
    // what the decode itself could reach (each string at most 4 GiB).
    total.min(raw.len().saturating_mul(64).max(1 << 20))
}

/// Read one unsigned LEB128 varint from `r` (at most 10 bytes).
fn read_varint(r: &mut impl std::io::BufRead, what: &str, at: u64) -> Result<u64> {
    let truncated = |e: std::io::Error| Error::corrupt(what, at, format!("truncated varint: {e}"));
    // Most varints lie whole in the buffer: read there.
    let buf = r.fill_buf().map_err(truncated)?;
    if let Some(end) = buf.iter().take(10).position(|&b| b < 0x80) {
        let mut v = 0u64;
        for (k, &b) in buf[..=end].iter().enumerate() {
            v |= u64::from(b & 0x7f).checked_shl(7 * k as u32).unwrap_or(0);
        }
        r.consume(end + 1);
        return Ok(v);
    }
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).map_err(truncated)?;
        v |= u64::from(b[0] & 0x7f).checked_shl(shift).unwrap_or(0);
        if b[0] < 0x80 {
            return Ok(v);
        }
    }
    Err(Error::corrupt(what, at, "malformed varint"))
}

/// Pass over `n` bytes of `r` without copying them; the bytes passed over
/// (fewer at the end of the input).
fn skip(r: &mut impl std::io::BufRead, mut n: u64) -> std::io::Result<u64> {
    let total = n;
    while n > 0 {
        let got = r.fill_buf()?.len();
        if got == 0 {
            break;
        }
        let k = (got as u64).min(n);
        r.consume(k as usize);
        n -= k;
    }
    Ok(total - n)
}

/// Walk a chunk's raw bytes from `r` (a slice, or a decompressing reader
/// that is only read as far as needed) up to the last position of `want`,
/// calling `f(position, string)` for each position in `want` (ascending,
/// each below `count`). Only the strings asked for are kept and checked as
/// UTF-8: a lookup of a few strings of a large chunk costs a walk over
/// the bytes before them, not a decoded copy of the whole chunk. `raw_len`
/// (the chunk's declared size) bounds every length read.
pub fn scan_chunk(
    r: &mut impl std::io::BufRead,
    raw_len: u64,
    count: u32,
    front_coded: bool,
    want: &[usize],
    what: &str,
    mut f: impl FnMut(usize, &str),
) -> Result<()> {
    let Some(&last) = want.last() else {
        return Ok(());
    };
    if last >= count as usize || want.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::Invalid(format!(
            "{what}: positions {want:?} not ascending below {count}"
        )));
    }
    let mut cur: Vec<u8> = Vec::new();
    let mut next = 0usize;
    let mut read: u64 = 0;
    for i in 0..=last {
        let wanted = want[next] == i;
        if front_coded {
            let shared = read_varint(r, what, read)?;
            if shared > cur.len() as u64 || (i == 0 && shared > 0) {
                return Err(Error::corrupt(
                    what,
                    read,
                    format!(
                        "shared prefix {shared} longer than the previous string ({})",
                        cur.len()
                    ),
                ));
            }
            cur.truncate(shared as usize);
        } else {
            cur.clear();
        }
        let len = read_varint(r, what, read)?;
        if len > raw_len {
            return Err(Error::corrupt(
                what,
                read,
                format!("string of {len} bytes in a chunk of {raw_len}"),
            ));
        }
        read += len;
        if front_coded || wanted {
            let from = cur.len();
            cur.resize(from + len as usize, 0);
            r.read_exact(&mut cur[from..])
                .map_err(|e| Error::corrupt(what, read, format!("truncated string: {e}")))?;
        } else {
            skip(r, len)
                .map_err(|e| Error::corrupt(what, read, e.to_string()))
                .and_then(|n| {
                    if n == len {
                        Ok(())
                    } else {
                        Err(Error::corrupt(what, read, "truncated string"))
                    }
                })?;
        }
        if wanted {
            let s = std::str::from_utf8(&cur)
                .map_err(|e| Error::corrupt(what, read, format!("invalid UTF-8: {e}")))?;
            f(i, s);
            next += 1;
        }
    }
    Ok(())
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

    /// `strs` (sorted) in one chunk: its raw bytes and the whole decode.
    fn one_chunk(strs: &[&str], fc: bool) -> (Vec<u8>, Chunk) {
        let plan = crate::strings::build_chunks(
            strs,
            crate::strings::TablePolicy {
                chunk_size: 1 << 20,
                front_coding: fc,
            },
        );
        let full = decode_chunk(&plan.chunks[0], plan.counts[0], fc, "t").unwrap();
        (plan.chunks[0].clone(), full)
    }

    /// Through buffers of any size (varints and strings split between
    /// fills, long strings passed over in pieces): the strings of the
    /// whole decode, and a cut chunk is an error.
    #[test]
    fn scan_through_small_buffers_matches_decode() {
        let (ab, b, z) = (
            format!("a{}", "b".repeat(200)),
            "b".repeat(130),
            "z".repeat(300),
        );
        let strs = ["", "a", ab.as_str(), "abc", b.as_str(), "héllo", z.as_str()];
        for fc in [false, true] {
            let (raw, full) = one_chunk(&strs, fc);
            let raw = &raw[..];
            for cap in [1, 2, 3, 7, 64, 1 << 16] {
                for want in [
                    vec![0],
                    vec![6],
                    vec![2, 4],
                    vec![3, 5, 6],
                    (0..7).collect(),
                ] {
                    let mut got = Vec::new();
                    let mut r = std::io::BufReader::with_capacity(cap, raw);
                    scan_chunk(&mut r, raw.len() as u64, 7, fc, &want, "t", |i, s| {
                        got.push((i, s.to_string()))
                    })
                    .unwrap();
                    let expect: Vec<_> =
                        want.iter().map(|&i| (i, full.get(i).to_string())).collect();
                    assert_eq!(got, expect, "capacity {cap}");
                }
                for cut in [1, 2, raw.len() / 2] {
                    let mut r = std::io::BufReader::with_capacity(cap, &raw[..raw.len() - cut]);
                    assert!(scan_chunk(&mut r, 999, 7, fc, &[6], "t", |_, _| ()).is_err());
                }
            }
        }
    }

    #[test]
    fn scan_matches_decode() {
        for fc in [false, true] {
            let strs = [
                "",
                "a",
                "ab",
                "abc",
                "abd",
                "b",
                "héllo",
                "héllo wörld",
                "z",
            ];
            let (raw, full) = one_chunk(&strs, fc);
            let raw = &raw[..];
            for want in [vec![0], vec![8], vec![1, 4, 6], (0..9).collect::<Vec<_>>()] {
                let mut got = Vec::new();
                scan_chunk(
                    &mut &raw[..],
                    raw.len() as u64,
                    9,
                    fc,
                    &want,
                    "t",
                    |i, s| got.push((i, s.to_string())),
                )
                .unwrap();
                let expect: Vec<_> = want.iter().map(|&i| (i, full.get(i).to_string())).collect();
                assert_eq!(got, expect);
            }
            // Out of order, past the end, truncated: errors.
            assert!(scan_chunk(&mut &raw[..], 99, 9, fc, &[2, 1], "t", |_, _| ()).is_err());
            assert!(scan_chunk(&mut &raw[..], 99, 9, fc, &[9], "t", |_, _| ()).is_err());
            let cut = &raw[..raw.len() - 1];
            assert!(scan_chunk(&mut &cut[..], 99, 9, fc, &[8], "t", |_, _| ()).is_err());
        }
        assert!(scan_chunk(&mut &[3u8, 1, b'a'][..], 9, 1, true, &[0], "t", |_, _| ()).is_err());
        assert!(scan_chunk(&mut &[1u8, 0xff][..], 9, 1, false, &[0], "t", |_, _| ()).is_err());
        assert!(scan_chunk(&mut &[0x80u8; 12][..], 9, 1, false, &[0], "t", |_, _| ()).is_err());
    }
}
