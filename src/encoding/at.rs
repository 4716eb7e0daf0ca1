//! Values at chosen positions of a stream, without decoding the others into
//! memory: what a page of a few rows needs from columns of millions.
//!
//! Each function takes the same arguments as its whole-stream decoder in
//! [`super`] plus `positions`, increasing (repeats allowed), each below
//! `count`, and returns the values there, in that order: exactly the
//! whole decode's values at those positions. Fixed-width, bit-packed and
//! dictionary streams are read where the values sit; varint streams are
//! walked up to the last position asked for (their lengths vary), keeping
//! nothing else. The checks that do not need the rest of the stream are
//! the whole decode's (a count that cannot fit, a section of the wrong
//! size, a value out of range); bytes past the last position asked for are
//! not parsed (the section's checksum has covered them).
//!
//! `whole` is the stream's length. `buf` may be a prefix of it, from a
//! section decompressed only as far as [`prefix_len`] says the positions
//! need (a page near the start of millions of rows): the checks use
//! `whole`, the values come from `buf`.

use super::{Encoding, bad_encoding, bitpack, check_count, dict, varint};
use crate::error::{Error, Result};

/// The most leading bytes of a stream of encoding `enc` that reading
/// values at positions up to `last` needs, given `head` (what is known of
/// the stream's first bytes): varints are at most 10 bytes, fixed-width
/// values sit at their places, a dictionary's indexes after its values,
/// packed codes after their palette (`None` when `head` does not hold
/// those yet: more is needed to
/// know; a bit-packed stream's palette length is its first byte). `None`
/// for other streams, read whole.
pub fn prefix_len(enc: Encoding, head: &[u8], last: usize) -> Option<usize> {
    let n = last.checked_add(1)?;
    match enc {
        Encoding::Varint | Encoding::ZigzagVarint | Encoding::DeltaZigzagVarint => {
            n.checked_mul(10)
        }
        Encoding::PlainU32 => n.checked_mul(4),
        Encoding::PlainF64 => n.checked_mul(8),
        Encoding::PlainU8 => Some(n),
        Encoding::Dict => {
            let (at, width) = dict::head_len(head)?;
            n.checked_mul(width)?.checked_add(at)
        }
        Encoding::BitPacked => bitpack::prefix_len(head, last),
        _ => None,
    }
}

/// Whether [`prefix_len`] can bound the bytes that positions of a stream
/// of encoding `enc` need (with enough of its first bytes for a dictionary).
pub fn reads_a_prefix(enc: Encoding) -> bool {
    matches!(
        enc,
        Encoding::Varint
            | Encoding::ZigzagVarint
            | Encoding::DeltaZigzagVarint
            | Encoding::PlainU32
            | Encoding::PlainF64
            | Encoding::PlainU8
            | Encoding::Dict
            | Encoding::BitPacked
    )
}

/// Refuse positions that are not increasing or not below `count`.
fn check_positions(positions: &[usize], count: usize, what: &str) -> Result<()> {
    let mut prev = 0;
    for &p in positions {
        if p >= count || p < prev {
            return Err(Error::corrupt(
                what,
                0,
                format!("position {p} asked of {count} values (or out of order)"),
            ));
        }
        prev = p;
    }
    Ok(())
}

/// How [`walk`] reads a stream's varints.
#[derive(Clone, Copy, PartialEq)]
enum Walk {
    /// Unsigned values.
    Plain,
    /// Zigzag values (as `u64` bits).
    Zigzag,
    /// Zigzag differences: each value is the running sum (as `u64` bits).
    Delta,
}

/// Walk `count` varints (checked to fit first) up to the last of
/// `positions`, keeping the value at each. Eight one-byte varints before
/// the next position are passed over at once (a difference stream adds
/// their sum); any other varint is read alone, with every check.
fn walk(
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
    how: Walk,
) -> Result<Vec<u64>> {
    check_count(what, count, whole, 1)?;
    check_positions(positions, count, what)?;
    let mut out = Vec::with_capacity(positions.len());
    let mut r = varint::Reader::new(buf);
    // The running sum of a difference stream.
    let mut sum = 0i64;
    let read = |r: &mut varint::Reader<'_>, sum: &mut i64| -> Result<u64> {
        Ok(match how {
            Walk::Plain => r.u64(what)?,
            Walk::Zigzag => r.i64(what)? as u64,
            Walk::Delta => {
                *sum = sum.wrapping_add(r.i64(what)?);
                *sum as u64
            }
        })
    };
    let (mut i, mut last) = (0usize, 0u64);
    for &p in positions {
        while i < p {
            if i + 8 <= p
                && let Some(w) = r.peek_8_small()
            {
                if how == Walk::Delta {
                    sum = sum.wrapping_add(varint::zigzag_sum(w));
                }
                r.skip_8();
                i += 8;
            } else {
                read(&mut r, &mut sum)?;
                i += 1;
            }
        }
        if i == p {
            last = read(&mut r, &mut sum)?;
            i += 1;
        }
        out.push(last);
    }
    Ok(out)
}

/// The dictionary values at `positions` of a [`dict`] stream.
fn dict_at(
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<u64>> {
    check_positions(positions, count, what)?;
    let (distinct, width, rest) = dict::decode_head(buf, whole, count, what)?;
    if let Some(&last) = positions.last()
        && (last + 1) * width > rest.len()
    {
        return Err(Error::corrupt(
            what,
            0,
            format!("index {last} past the {} bytes read", buf.len()),
        ));
    }
    positions
        .iter()
        .map(|&p| {
            let ix = if width == 0 {
                0
            } else {
                let mut b = [0u8; 4];
                b[..width].copy_from_slice(&rest[p * width..p * width + width]);
                u32::from_le_bytes(b) as usize
            };
            distinct.get(ix).copied().ok_or_else(|| {
                Error::corrupt(
                    what,
                    0,
                    format!(
                        "dictionary index {ix} out of range ({} values)",
                        distinct.len()
                    ),
                )
            })
        })
        .collect()
}

/// Fixed-width little-endian values of `width` bytes at `positions`.
fn fixed_at(
    buf: &[u8],
    whole: usize,
    count: usize,
    width: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<u64>> {
    if whole != count.saturating_mul(width) {
        return Err(Error::corrupt(
            what,
            0,
            format!(
                "{count} values of {width} bytes need {} bytes, section has {}",
                count.saturating_mul(width),
                whole
            ),
        ));
    }
    check_positions(positions, count, what)?;
    if let Some(&last) = positions.last()
        && (last + 1) * width > buf.len()
    {
        return Err(Error::corrupt(
            what,
            0,
            format!("value {last} past the {} bytes read", buf.len()),
        ));
    }
    Ok(positions
        .iter()
        .map(|&p| {
            let mut b = [0u8; 8];
            b[..width].copy_from_slice(&buf[p * width..p * width + width]);
            u64::from_le_bytes(b)
        })
        .collect())
}

/// Signed integers at `positions` (as [`super::decode_i64s`]).
pub fn i64s_at(
    enc: Encoding,
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<i64>> {
    Ok(match enc {
        Encoding::Dict => dict_at(buf, whole, count, positions, what)?
            .into_iter()
            .map(dict::from_ordered_i64)
            .collect(),
        Encoding::ZigzagVarint => walk(buf, whole, count, positions, what, Walk::Zigzag)?
            .into_iter()
            .map(|v| v as i64)
            .collect(),
        Encoding::DeltaZigzagVarint => walk(buf, whole, count, positions, what, Walk::Delta)?
            .into_iter()
            .map(|v| v as i64)
            .collect(),
        other => return Err(bad_encoding(what, other)),
    })
}

/// Unsigned integers at `positions` (as [`super::decode_u64s`]).
pub fn u64s_at(
    enc: Encoding,
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<u64>> {
    match enc {
        Encoding::Dict => dict_at(buf, whole, count, positions, what),
        Encoding::Varint => walk(buf, whole, count, positions, what, Walk::Plain),
        other => Err(bad_encoding(what, other)),
    }
}

/// `u32` values at `positions` (as [`super::decode_u32s`]).
pub fn u32s_at(
    enc: Encoding,
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<u32>> {
    let wide = match enc {
        Encoding::PlainU32 => fixed_at(buf, whole, count, 4, positions, what)?,
        Encoding::Dict => dict_at(buf, whole, count, positions, what)?,
        Encoding::Varint => walk(buf, whole, count, positions, what, Walk::Plain)?,
        other => return Err(bad_encoding(what, other)),
    };
    wide.into_iter()
        .map(|x| {
            u32::try_from(x).map_err(|_| Error::corrupt(what, 0, format!("value {x} exceeds u32")))
        })
        .collect()
}

/// String ids at `positions` (as [`super::decode_str_ids`]).
pub fn str_ids_at(
    enc: Encoding,
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<u32>> {
    if enc != Encoding::DeltaZigzagVarint {
        return u32s_at(enc, buf, whole, count, positions, what);
    }
    walk(buf, whole, count, positions, what, Walk::Delta)?
        .into_iter()
        .map(|v| {
            let v = v as i64;
            u32::try_from(v)
                .map_err(|_| Error::corrupt(what, 0, format!("string id {v} out of range")))
        })
        .collect()
}

/// Floats at `positions` (as [`super::decode_f64s`]).
pub fn f64s_at(
    enc: Encoding,
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<f64>> {
    if enc != Encoding::PlainF64 {
        return Err(bad_encoding(what, enc));
    }
    Ok(fixed_at(buf, whole, count, 8, positions, what)?
        .into_iter()
        .map(f64::from_bits)
        .collect())
}

/// Bytes at `positions` (as [`super::decode_u8s`]).
pub fn u8s_at(
    enc: Encoding,
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<u8>> {
    match enc {
        Encoding::PlainU8 => Ok(fixed_at(buf, whole, count, 1, positions, what)?
            .into_iter()
            .map(|v| v as u8)
            .collect()),
        Encoding::BitPacked => {
            check_positions(positions, count, what)?;
            bitpack::decode_at(buf, whole, count, positions, what)
        }
        other => Err(bad_encoding(what, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use proptest::prelude::*;

    /// Sorted positions (with repeats) into `n` values, from raw picks.
    fn positions(n: usize, picks: &[usize]) -> Vec<usize> {
        if n == 0 {
            return Vec::new();
        }
        let mut p: Vec<usize> = picks.iter().map(|&x| x % n).collect();
        p.sort_unstable();
        p
    }

    fn pick<T: Copy>(v: &[T], p: &[usize]) -> Vec<T> {
        p.iter().map(|&i| v[i]).collect()
    }

    proptest! {
        /// Every encoding of every type: the values at the positions are
        /// the whole decode's.
        #[test]
        fn values_at_positions_are_the_whole_decodes(
            v in proptest::collection::vec(prop_oneof![any::<i64>(), -5i64..5, 0i64..300], 0..300),
            picks in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            let p = positions(v.len(), &picks);
            for (e, b) in i64_candidates(&v) {
                prop_assert_eq!(i64s_at(e, &b, b.len(), v.len(), &p, "t").unwrap(), pick(&v, &p));
            }
            let u: Vec<u32> = v.iter().map(|&x| x as u32).collect();
            for (e, b) in u32_candidates(&u) {
                prop_assert_eq!(str_ids_at(e, &b, b.len(), u.len(), &p, "t").unwrap(), pick(&u, &p));
            }
            let w: Vec<u64> = v.iter().map(|&x| x as u64).collect();
            let mut b = Vec::new();
            let e = encode_u64s(w.iter().copied(), &mut b);
            prop_assert_eq!(u64s_at(e, &b, b.len(), w.len(), &p, "t").unwrap(), pick(&w, &p));
            if let Some(d) = dict::encode_if_useful(w.iter().copied(), w.len()) {
                prop_assert_eq!(u64s_at(Encoding::Dict, &d, d.len(), w.len(), &p, "t").unwrap(), pick(&w, &p));
            }
            let f: Vec<f64> = v.iter().map(|&x| x as f64 / 3.0).collect();
            let mut b = Vec::new();
            let e = encode_f64s(&f, &mut b);
            prop_assert_eq!(f64s_at(e, &b, b.len(), f.len(), &p, "t").unwrap(), pick(&f, &p));
            for modulus in [1u8, 2, 3, 5, 17, 255] {
                let small: Vec<u8> = v.iter().map(|&x| (x as u8) % modulus).collect();
                let mut b = Vec::new();
                let e = encode_u8s(&small, &mut b);
                prop_assert_eq!(u8s_at(e, &b, b.len(), small.len(), &p, "t").unwrap(), pick(&small, &p));
                let mut b = Vec::new();
                bitpack::encode(&small, &mut b);
                prop_assert_eq!(u8s_at(Encoding::BitPacked, &b, b.len(), small.len(), &p, "t").unwrap(), pick(&small, &p));
            }
        }

        /// Read from the prefix [`prefix_len`] names (a section
        /// decompressed only that far): the whole decode's values.
        #[test]
        fn values_from_a_prefix_are_the_whole_decodes(
            v in proptest::collection::vec(prop_oneof![any::<i64>(), -5i64..5, 0i64..300], 1..300),
            picks in proptest::collection::vec(any::<usize>(), 1..20),
            near in 0usize..40,
        ) {
            // Positions near the start, as a first page's are.
            let near = near.min(v.len() - 1) + 1;
            let p = positions(near, &picks);
            let last = *p.last().unwrap();
            let cut = |e: Encoding, b: &[u8]| prefix_len(e, b, last).map_or(b.len(), |n| n.min(b.len()));
            for (e, b) in i64_candidates(&v) {
                let k = cut(e, &b);
                prop_assert_eq!(i64s_at(e, &b[..k], b.len(), v.len(), &p, "t").unwrap(), pick(&v, &p));
            }
            let u: Vec<u32> = v.iter().map(|&x| x as u32).collect();
            for (e, b) in u32_candidates(&u) {
                let k = cut(e, &b);
                prop_assert_eq!(str_ids_at(e, &b[..k], b.len(), u.len(), &p, "t").unwrap(), pick(&u, &p));
            }
            let w: Vec<u64> = v.iter().map(|&x| x as u64).collect();
            let mut b = Vec::new();
            let e = encode_u64s(w.iter().copied(), &mut b);
            let k = cut(e, &b);
            prop_assert_eq!(u64s_at(e, &b[..k], b.len(), w.len(), &p, "t").unwrap(), pick(&w, &p));
            let f: Vec<f64> = v.iter().map(|&x| x as f64 / 3.0).collect();
            let mut b = Vec::new();
            let e = encode_f64s(&f, &mut b);
            let k = cut(e, &b);
            prop_assert_eq!(f64s_at(e, &b[..k], b.len(), f.len(), &p, "t").unwrap(), pick(&f, &p));
            let small: Vec<u8> = v.iter().map(|&x| x as u8).collect();
            let mut b = Vec::new();
            let e = encode_u8s(&small, &mut b);
            let k = cut(e, &b);
            prop_assert_eq!(u8s_at(e, &b[..k], b.len(), small.len(), &p, "t").unwrap(), pick(&small, &p));
            for modulus in [1u8, 2, 3, 5, 17] {
                let small: Vec<u8> = v.iter().map(|&x| (x as u8) % modulus).collect();
                let mut b = Vec::new();
                bitpack::encode(&small, &mut b);
                let k = cut(Encoding::BitPacked, &b);
                prop_assert_eq!(u8s_at(Encoding::BitPacked, &b[..k], b.len(), small.len(), &p, "t").unwrap(), pick(&small, &p));
                let ranks = bitpack::ranks_at(&b, b.len(), small.len(), &p, "t").unwrap();
                prop_assert_eq!(bitpack::ranks_at(&b[..k], b.len(), small.len(), &p, "t").unwrap(), ranks);
            }
            if let Some(d) = dict::encode_if_useful(w.iter().copied(), w.len()) {
                let k = cut(Encoding::Dict, &d);
                prop_assert_eq!(u64s_at(Encoding::Dict, &d[..k], d.len(), w.len(), &p, "t").unwrap(), pick(&w, &p));
            }
        }

        /// Runs of small values (eight one-byte varints are passed over
        /// at once) and their running sums (a difference stream), plain
        /// and zigzag: the values at the positions are the whole decode's.
        #[test]
        fn walks_over_runs_of_small_values_are_the_whole_decodes(
            steps in proptest::collection::vec(prop_oneof![20 => -64i64..64, 1 => any::<i64>()], 0..700),
            picks in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let p = positions(steps.len(), &picks);
            let sums: Vec<i64> = steps
                .iter()
                .scan(0i64, |s, &d| {
                    *s = s.wrapping_add(d);
                    Some(*s)
                })
                .collect();
            for v in [&steps, &sums] {
                for (e, b) in i64_candidates(v) {
                    prop_assert_eq!(i64s_at(e, &b, b.len(), v.len(), &p, "t").unwrap(), pick(v, &p));
                    prop_assert_eq!(decode_i64s(e, &b, v.len(), "t").unwrap(), v.clone());
                }
                let w: Vec<u64> = v.iter().map(|&x| x.unsigned_abs() % 200).collect();
                let mut b = Vec::new();
                let e = encode_u64s(w.iter().copied(), &mut b);
                prop_assert_eq!(u64s_at(e, &b, b.len(), w.len(), &p, "t").unwrap(), pick(&w, &p));
            }
            // Delta-coded on purpose (the encoder may pick plain): the
            // running sums of the steps.
            let mut b = Vec::new();
            for &d in &steps {
                varint::put_i64(&mut b, d);
            }
            prop_assert_eq!(
                i64s_at(Encoding::DeltaZigzagVarint, &b, b.len(), steps.len(), &p, "t").unwrap(),
                pick(&sums, &p)
            );
            // A stream too short to reach the last position (a varint is
            // a byte at least) is an error.
            if let Some(&last) = p.last() {
                let cut = &b[..b.len().min(last)];
                prop_assert!(i64s_at(Encoding::DeltaZigzagVarint, cut, cut.len(), steps.len(), &p, "t").is_err());
            }
        }

        /// Damaged streams and bad positions are errors, never panics.
        #[test]
        fn never_panic(
            buf in proptest::collection::vec(any::<u8>(), 0..64),
            n in 0usize..100,
            tag in 0u8..11,
            picks in proptest::collection::vec(0usize..120, 0..8),
        ) {
            let e = Encoding::from_u8(tag).unwrap();
            let _ = i64s_at(e, &buf, buf.len(), n, &picks, "t");
            let _ = u64s_at(e, &buf, buf.len(), n, &picks, "t");
            let _ = u32s_at(e, &buf, buf.len(), n, &picks, "t");
            let _ = str_ids_at(e, &buf, buf.len(), n, &picks, "t");
            let _ = f64s_at(e, &buf, buf.len(), n, &picks, "t");
            let _ = u8s_at(e, &buf, buf.len(), n, &picks, "t");
            // A prefix shorter than the positions need.
            let k = picks.first().copied().unwrap_or(0) % (buf.len() + 1);
            let _ = i64s_at(e, &buf[..k], buf.len(), n, &picks, "t");
            let _ = u32s_at(e, &buf[..k], buf.len(), n, &picks, "t");
            let _ = str_ids_at(e, &buf[..k], buf.len(), n, &picks, "t");
            let _ = f64s_at(e, &buf[..k], buf.len(), n, &picks, "t");
            let _ = u8s_at(e, &buf[..k], buf.len(), n, &picks, "t");
        }
    }

    #[test]
    fn positions_out_of_range_or_order_are_refused() {
        let mut b = Vec::new();
        let e = encode_u32s(&[1, 2, 3], &mut b);
        assert!(u32s_at(e, &b, b.len(), 3, &[3], "t").is_err());
        assert!(u32s_at(e, &b, b.len(), 3, &[2, 1], "t").is_err());
        assert_eq!(
            u32s_at(e, &b, b.len(), 3, &[0, 2, 2], "t").unwrap(),
            vec![1, 3, 3]
        );
        assert!(i64s_at(Encoding::ZigzagVarint, &[0, 0], 2, 1 << 40, &[0], "t").is_err());
    }
}
