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
    // Front coding can make a few bytes stand for a long string: what the
    // strings claim is checked before anything is allocated.
    let limit = decoded_limit(raw.len());
    let claimed = decoded_len(raw, count, front_coded);
    let over = |need: u64| Error::Budget {
        what: format!("decoding {what}"),
        need,
        budget: limit,
    };
    if claimed.is_some_and(|c| c > limit) {
        return Err(over(claimed.unwrap_or(0)));
    }
    let mut r = Reader::new(raw);
    let mut data: Vec<u8> =
        Vec::with_capacity(claimed.unwrap_or(raw.len() as u64).min(limit) as usize);
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
            if (data.len() + shared) as u64 > limit {
                return Err(over((data.len() + shared) as u64));
            }
            data.extend_from_within(prev_start..prev_start + shared);
        }
        let suffix = r.len_bytes(what)?;
        if (data.len() + suffix.len()) as u64 > limit {
            return Err(over((data.len() + suffix.len()) as u64));
        }
        data.extend_from_slice(suffix);
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

/// The most bytes a chunk of `raw_len` raw bytes may decode to: 64 times
/// its raw bytes, at least 64 MiB, at most 4 GiB (SPEC.md 10.1). Only
/// front coding expands; a writer's chunk holds its target of string bytes
/// plus one string, far below this.
pub fn decoded_limit(raw_len: usize) -> u64 {
    (raw_len as u64)
        .saturating_mul(64)
        .max(64 << 20)
        .min(u32::MAX as u64)
}

/// The bytes the `count` strings of `raw` take decoded, read from their
/// lengths alone (the claims of their shared prefixes, checked by the
/// decode), so that the decoded chunk is allocated once at its size, and
/// a chunk claiming more than [`decoded_limit`] is refused before any is
/// allocated (front-coded strings decode to several times the raw bytes:
/// grown by doubling, the vector would be copied a few times and keep up
/// to half its capacity spare in the decoded-chunk cache, which counts the
/// strings' bytes). `None` for a malformed chunk, which the decode then
/// reports.
fn decoded_len(raw: &[u8], count: usize, front_coded: bool) -> Option<u64> {
    if !front_coded {
        return Some(raw.len() as u64);
    }
    let mut r = Reader::new(raw);
    let mut total = 0u64;
    for _ in 0..count {
        let (Ok(shared), Ok(suffix)) = (r.len("", u32::MAX as u64), r.len_bytes("")) else {
            return None;
        };
        total = total
            .saturating_add(shared as u64)
            .saturating_add(suffix.len() as u64);
    }
    Some(total)
}

/// Read one unsigned LEB128 varint from `r` (at most 10 bytes), adding the
/// bytes it took to `consumed`.
fn read_varint(
    r: &mut impl std::io::BufRead,
    what: &str,
    at: u64,
    consumed: &mut u64,
) -> Result<u64> {
    let truncated = |e: std::io::Error| Error::corrupt(what, at, format!("truncated varint: {e}"));
    // Most varints lie whole in the buffer: read there.
    let buf = r.fill_buf().map_err(truncated)?;
    if let Some(end) = buf.iter().take(10).position(|&b| b < 0x80) {
        let mut v = 0u64;
        for (k, &b) in buf[..=end].iter().enumerate() {
            v |= u64::from(b & 0x7f).checked_shl(7 * k as u32).unwrap_or(0);
        }
        r.consume(end + 1);
        *consumed += end as u64 + 1;
        return Ok(v);
    }
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).map_err(truncated)?;
        *consumed += 1;
        v |= u64::from(b[0] & 0x7f).checked_shl(shift).unwrap_or(0);
        if b[0] < 0x80 {
            return Ok(v);
        }
    }
    Err(Error::corrupt(what, at, "malformed varint"))
}

/// Append `n` bytes of `r` to `out`, as they come: memory follows the
/// bytes the input really holds, not a length it claims. False when the
/// input ends first.
fn read_append(
    r: &mut impl std::io::BufRead,
    mut n: u64,
    out: &mut Vec<u8>,
) -> std::io::Result<bool> {
    while n > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let k = (buf.len() as u64).min(n) as usize;
        out.extend_from_slice(&buf[..k]);
        r.consume(k);
        n -= k as u64;
    }
    Ok(true)
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
    // Bytes of the chunk taken so far.
    let mut read: u64 = 0;
    for i in 0..=last {
        let wanted = want[next] == i;
        if front_coded {
            let at = read;
            let shared = read_varint(r, what, at, &mut read)?;
            if shared > cur.len() as u64 || (i == 0 && shared > 0) {
                return Err(Error::corrupt(
                    what,
                    at,
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
        let at = read;
        let len = read_varint(r, what, at, &mut read)?;
        if len > raw_len.saturating_sub(read) {
            return Err(Error::corrupt(
                what,
                at,
                format!("string of {len} bytes in a chunk of {raw_len}"),
            ));
        }
        if front_coded || wanted {
            let whole = read_append(r, len, &mut cur)
                .map_err(|e| Error::corrupt(what, at, format!("truncated string: {e}")))?;
            if !whole {
                return Err(Error::corrupt(what, at, "truncated string"));
            }
        } else {
            skip(r, len)
                .map_err(|e| Error::corrupt(what, at, e.to_string()))
                .and_then(|n| {
                    if n == len {
                        Ok(())
                    } else {
                        Err(Error::corrupt(what, at, "truncated string"))
                    }
                })?;
        }
        read += len;
        if wanted {
            let s = std::str::from_utf8(&cur)
                .map_err(|e| Error::corrupt(what, at, format!("invalid UTF-8: {e}")))?;
            f(i, s);
            next += 1;
        }
    }
    // A walk to the chunk's last string checks what a whole decode does:
    // its strings end exactly at its declared size (no string more, no
    // byte less).
    if last + 1 == count as usize && read != raw_len {
        return Err(Error::corrupt(
            what,
            read,
            format!("the chunk's {count} strings end at byte {read} of its {raw_len}"),
        ));
    }
    Ok(())
}

/// Check that the raw chunk `raw` holds exactly `count` strings, which end
/// at its last byte, without decoding them: what a [`scan_chunk`] that
/// stopped before the chunk's last string leaves unchecked. A footer
/// whose chunk counts are shifted (their sum kept) otherwise mapped the
/// ids of a page onto their neighbours' strings.
pub fn check_extent(raw: &[u8], count: u32, front_coded: bool, what: &str) -> Result<()> {
    let mut r = Reader::new(raw);
    for i in 0..count {
        let at = r.pos() as u64;
        let bad = |_| Error::corrupt(what, at, format!("string {i} of {count} is cut short"));
        if front_coded {
            r.len(what, u32::MAX as u64).map_err(bad)?;
        }
        r.len_bytes(what).map_err(bad)?;
    }
    if !r.is_empty() {
        return Err(Error::corrupt(
            what,
            r.pos() as u64,
            format!(
                "the chunk's {count} strings end at byte {} of its {}",
                r.pos(),
                raw.len()
            ),
        ));
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

    /// A front-coded chunk whose few bytes claim gigabytes (every string
    /// sharing all of a 64 KiB previous one) is refused before decoding.
    #[test]
    fn a_front_coded_chunk_claiming_too_much_is_refused_first() {
        let mut raw = Vec::new();
        crate::encoding::varint::put_u64(&mut raw, 0);
        crate::encoding::varint::put_bytes(&mut raw, &vec![b'a'; 65_535]);
        for _ in 0..65_536 {
            crate::encoding::varint::put_u64(&mut raw, 65_535);
            crate::encoding::varint::put_u64(&mut raw, 0);
        }
        match decode_chunk(&raw, 65_537, true, "t") {
            Err(Error::Budget { need, budget, .. }) => {
                assert_eq!(need, 65_535 * 65_537, "every string 64 KiB");
                assert_eq!(budget, decoded_limit(raw.len()));
            }
            other => panic!("{other:?}"),
        }
        // Within the limit, such a chunk decodes (equal strings are the
        // verifier's to refuse).
        let small = &raw[..raw.len() - 4 * 65_000];
        let c = decode_chunk(small, 537, true, "t").unwrap();
        assert_eq!(c.len(), 537);
    }

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
