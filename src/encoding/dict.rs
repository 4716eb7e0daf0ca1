//! Dictionary encoding of integers: the sorted distinct values, then one
//! fixed-width little-endian index per value.
//!
//! ```text
//! DICT  := n:varint  first:varint  gap:varint*(n-1)  index:(width bytes LE)*count
//! width := 0 if n <= 1, 1 if n <= 2^8, 2 if n <= 2^16, 3 if n <= 2^24, else 4
//! ```
//! Values are unsigned 64-bit keys; `first` is the smallest, each `gap` is the
//! difference to the previous distinct value (>= 1, so the list is strictly
//! increasing). Signed integers use the order-preserving key
//! `(v as u64) ^ 2^63`. Byte-aligned indexes compress better under zstd than
//! bit-packed ones; the writer only keeps this encoding when it compresses
//! smaller than the alternatives.

use super::varint::{self, Reader};
use crate::error::{Error, Result};

/// Order-preserving map of i64 onto u64.
#[inline]
pub fn to_ordered_i64(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// Inverse of [`to_ordered_i64`].
#[inline]
pub fn from_ordered_i64(k: u64) -> i64 {
    (k ^ (1 << 63)) as i64
}

fn width_for(n: usize) -> usize {
    match n {
        0 | 1 => 0,
        2..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        0x1_0001..=0x100_0000 => 3,
        _ => 4,
    }
}

/// Encode `values`; `None` when there are more than 2^32 distinct values or
/// the dictionary is no smaller than 4 bytes per value would be.
pub fn encode_if_useful(
    values: impl Iterator<Item = u64> + Clone,
    count: usize,
) -> Option<Vec<u8>> {
    let mut distinct: Vec<u64> = values.clone().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if !pays(distinct.len(), count) {
        return None;
    }
    let mut out = Vec::new();
    encode_with(values, &distinct, |k| k, &mut out);
    Some(out)
}

/// Whether a dictionary of `n` distinct values may pay for `count` values:
/// not when they are mostly unique (it would only repeat them) nor past
/// 2^32 of them.
pub fn pays(n: usize, count: usize) -> bool {
    !(n as u64 > u32::MAX as u64 || (n > 0 && n * 2 > count.max(1) + 1 && count > 16))
}

/// [`encode_if_useful`] of signed integers whose distinct values the
/// caller has sorted already (`distinct`, ascending, no repeats: the
/// writer counts them once for its statistics too), the same bytes.
pub fn encode_i64s_with(
    values: impl Iterator<Item = i64>,
    count: usize,
    distinct: &[i64],
) -> Option<Vec<u8>> {
    if !pays(distinct.len(), count) {
        return None;
    }
    let mut out = Vec::new();
    encode_with(values, distinct, to_ordered_i64, &mut out);
    Some(out)
}

/// [`encode_if_useful`] of `u32` values (string ids): the distinct values
/// sorted as `u32`s (issue 16: half the memory of `u64`s for a column of
/// ids), the same bytes.
pub fn encode_u32s_if_useful(values: &[u32]) -> Option<Vec<u8>> {
    let count = values.len();
    let mut distinct: Vec<u32> = values.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if !pays(distinct.len(), count) {
        return None;
    }
    distinct.shrink_to_fit();
    let mut out = Vec::new();
    encode_with(values.iter().copied(), &distinct, u64::from, &mut out);
    Some(out)
}

/// The dictionary of `distinct` (ascending, as their `key`s are too), then
/// the index of every value.
fn encode_with<T: Copy + Ord>(
    values: impl Iterator<Item = T>,
    distinct: &[T],
    key: impl Fn(T) -> u64,
    out: &mut Vec<u8>,
) {
    varint::put_u64(out, distinct.len() as u64);
    let mut prev: Option<u64> = None;
    for &d in distinct {
        let d = key(d);
        match prev {
            None => varint::put_u64(out, d),
            Some(p) => varint::put_u64(out, d - p),
        }
        prev = Some(d);
    }
    let width = width_for(distinct.len());
    out.reserve(width * values.size_hint().0);
    for v in values {
        let ix = distinct.binary_search(&v).unwrap_or(0) as u32;
        out.extend_from_slice(&ix.to_le_bytes()[..width]);
    }
}

/// Decode `count` values; the buffer must be exactly what the encoder wrote.
pub fn decode(buf: &[u8], count: usize, what: &str) -> Result<Vec<u64>> {
    decode_as(buf, count, what, Some)
}

/// Decode `count` values straight into `T`s (no `u64` vector in between:
/// a column of a million `u32` string ids is 4 MB, not 8 + 4): `conv` maps
/// each dictionary value once; a value it refuses is an error where an
/// index refers to it.
pub fn decode_as<T: Copy>(
    buf: &[u8],
    count: usize,
    what: &str,
    conv: impl Fn(u64) -> Option<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    decode_as_into(buf, count, what, conv, &mut out)?;
    Ok(out)
}

/// [`decode_as`] appending to `out` (a vector allocated before the
/// section was read keeps its place).
pub fn decode_as_into<T: Copy>(
    buf: &[u8],
    count: usize,
    what: &str,
    conv: impl Fn(u64) -> Option<T>,
    out: &mut Vec<T>,
) -> Result<()> {
    let (distinct, width, rest) = decode_head(buf, buf.len(), count, what)?;
    let mapped: Vec<Option<T>> = distinct.iter().map(|&v| conv(v)).collect();
    let value = |ix: usize| -> Result<T> {
        match mapped.get(ix) {
            Some(Some(v)) => Ok(*v),
            _ => Err(bad_index(&distinct, ix, what)),
        }
    };
    if width == 0 {
        if count > 0 {
            out.resize(out.len() + count, value(0)?);
        }
        return Ok(());
    }
    out.reserve(count);
    // One loop per index width, so that each reads its indexes with fixed
    // loads (no copy of a variable length per value).
    match width {
        1 => {
            for &b in rest {
                out.push(value(usize::from(b))?);
            }
        }
        2 => {
            for c in rest.chunks_exact(2) {
                out.push(value(usize::from(u16::from_le_bytes([c[0], c[1]])))?);
            }
        }
        _ => {
            for c in rest.chunks_exact(width) {
                let mut b = [0u8; 4];
                b[..width].copy_from_slice(c);
                out.push(value(u32::from_le_bytes(b) as usize)?);
            }
        }
    }
    Ok(())
}

/// The bytes a [`decode_as`] buffer's dictionary takes and the width of its
/// indexes, if `buf` (a prefix of the stream) holds the whole dictionary:
/// with it, where index `p` lies. Nothing is checked here.
pub fn head_len(buf: &[u8]) -> Option<(usize, usize)> {
    let mut r = Reader::new(buf);
    let n = r.u64("").ok()?;
    for _ in 0..n {
        r.u64("").ok()?;
    }
    Some((r.pos(), width_for(usize::try_from(n).ok()?)))
}

/// The dictionary of a [`decode_as`] buffer, the width of its indexes, and
/// the indexes' bytes (checked to be `count` of that width in the stream's
/// `whole` bytes; `buf` may be a prefix of them holding the dictionary).
/// Not generic: one copy in the browser build for all the types decoded
/// into.
pub(super) fn decode_head<'a>(
    buf: &'a [u8],
    whole: usize,
    count: usize,
    what: &str,
) -> Result<(Vec<u64>, usize, &'a [u8])> {
    let err = |at: usize, d: String| Error::corrupt(what, at as u64, d);
    let mut r = Reader::new(buf);
    let n = r.u64(what)?;
    if n > count as u64 || (count > 0 && n == 0) || n > r.remaining() as u64 {
        return Err(err(0, format!("{n} dictionary values for {count} items")));
    }
    let n = n as usize;
    let mut distinct = Vec::with_capacity(n);
    let mut prev: Option<u64> = None;
    for _ in 0..n {
        let x = r.u64(what)?;
        let v = match prev {
            None => x,
            Some(p) => {
                if x == 0 {
                    return Err(err(r.pos(), "dictionary not strictly increasing".into()));
                }
                p.checked_add(x)
                    .ok_or_else(|| err(r.pos(), "dictionary value overflows".into()))?
            }
        };
        distinct.push(v);
        prev = Some(v);
    }
    let width = width_for(n);
    let rest = &buf[r.pos()..];
    let indexes = whole.saturating_sub(r.pos());
    if indexes != count.saturating_mul(width) {
        return Err(err(
            r.pos(),
            format!(
                "{count} indexes of {width} bytes need {} bytes, section has {indexes}",
                count.saturating_mul(width),
            ),
        ));
    }
    Ok((distinct, width, rest))
}

/// The error for index `ix` of a [`decode_as`] buffer: past the
/// dictionary, or a value the conversion refused.
#[cold]
fn bad_index(distinct: &[u64], ix: usize, what: &str) -> Error {
    let d = match distinct.get(ix) {
        Some(v) => format!("value {v} out of range"),
        None => format!(
            "dictionary index {ix} out of range ({} values)",
            distinct.len()
        ),
    };
    Error::corrupt(what, 0, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &[u64]) -> Vec<u8> {
        let mut d = v.to_vec();
        d.sort_unstable();
        d.dedup();
        let mut out = Vec::new();
        encode_with(v.iter().copied(), &d, |k| k, &mut out);
        out
    }

    proptest! {
        #[test]
        fn roundtrip(v in proptest::collection::vec(prop_oneof![any::<u64>(), 0u64..20], 0..400)) {
            let b = enc(&v);
            prop_assert_eq!(decode(&b, v.len(), "t").unwrap(), v.clone());
            let mut junk = b.clone();
            junk.push(0);
            prop_assert!(decode(&junk, v.len(), "t").is_err());
            // (A single distinct value has 0-byte indexes: the count comes from the footer.)
            if v.iter().any(|&x| x != v[0]) {
                prop_assert!(decode(&b, v.len() + 1, "t").is_err());
            }
        }
        /// The `u32` path writes what the `u64` path writes.
        #[test]
        fn u32s_like_u64s(v in proptest::collection::vec(prop_oneof![any::<u32>(), 0u32..20], 0..400)) {
            prop_assert_eq!(
                encode_u32s_if_useful(&v),
                encode_if_useful(v.iter().map(|&x| x as u64), v.len())
            );
        }
        /// Signed integers with their distinct values sorted by the caller
        /// write what the general path writes.
        #[test]
        fn i64s_with_their_distinct_like_u64s(v in proptest::collection::vec(prop_oneof![any::<i64>(), -10i64..10], 0..400)) {
            let mut d = v.clone();
            d.sort_unstable();
            d.dedup();
            prop_assert_eq!(
                encode_i64s_with(v.iter().copied(), v.len(), &d),
                encode_if_useful(v.iter().map(|&x| to_ordered_i64(x)), v.len())
            );
        }
        #[test]
        fn many_distinct(n in 250usize..700) {
            let v: Vec<u64> = (0..n as u64).map(|i| i * 7919 % 1000).collect();
            let b = enc(&v);
            prop_assert_eq!(decode(&b, v.len(), "t").unwrap(), v);
        }
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..60), n in 0usize..200) {
            let _ = decode(&b, n, "t");
        }
        #[test]
        fn ordered_i64(a in any::<i64>(), b in any::<i64>()) {
            prop_assert_eq!(a.cmp(&b), to_ordered_i64(a).cmp(&to_ordered_i64(b)));
            prop_assert_eq!(from_ordered_i64(to_ordered_i64(a)), a);
        }
    }

    #[test]
    fn zero_gap_refused() {
        // n=2, first=5, gap=0, indexes
        assert!(decode(&[2, 5, 0, 0, 1], 2, "t").is_err());
    }
}
