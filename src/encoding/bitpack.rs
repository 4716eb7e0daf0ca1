//! Bit-packing of small codes behind a palette.
//!
//! ```text
//! BITPACKED := palette_len(u8) palette(u8 * palette_len) packed_bits
//! ```
//! Each value is replaced by its index in the palette, written with
//! `width = ceil(log2(palette_len))` bits (0 when the palette has one entry),
//! least-significant bit first, value after value; the last byte is
//! zero-padded. With a two-entry palette this is a plain bitmap.

use crate::error::{Error, Result};

/// Bits needed to index a palette of `n` entries.
pub fn width_for(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// Encode `values` (each < 256) with a sorted palette of the values present.
pub fn encode(values: &[u8], out: &mut Vec<u8>) {
    let mut present = [false; 256];
    for &v in values {
        present[v as usize] = true;
    }
    let mut palette: Vec<u8> = (0..=255u8).filter(|&v| present[v as usize]).collect();
    if palette.is_empty() {
        palette.push(0); // no values: a one-entry palette, zero bits each
    }
    let mut index = [0u8; 256];
    for (i, &p) in palette.iter().enumerate() {
        index[p as usize] = i as u8;
    }
    // A palette of all 256 byte values has length 256, which does not fit
    // the u8 length: store 0 to mean 256 (an empty palette cannot carry values).
    out.push(palette.len() as u8);
    out.extend_from_slice(&palette);
    let width = width_for(palette.len());
    if width == 0 {
        return;
    }
    let mut acc: u64 = 0;
    let mut nbits = 0u32;
    for &v in values {
        acc |= (index[v as usize] as u64) << nbits;
        nbits += width;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
}

/// The most leading bytes of a bit-packed stream that reading the values
/// at positions up to `last` needs, if `head` holds its first byte.
pub fn prefix_len(head: &[u8], last: usize) -> Option<usize> {
    let plen = match *head.first()? {
        0 => 256,
        n => n as usize,
    };
    let width = width_for(plen) as usize;
    let bits = last.checked_add(1)?.checked_mul(width)?.div_ceil(8);
    Some(1 + plen + bits + 1)
}

/// The palette, the packed bits (checked to hold `count` values) and the
/// width of a bit-packed buffer.
fn head<'a>(buf: &'a [u8], count: usize, what: &str) -> Result<(&'a [u8], &'a [u8], usize)> {
    head_in(buf, buf.len(), count, what)
}

/// [`head`] of a prefix `buf` of the stream's `whole` bytes: the bits are
/// checked against `whole`, and those returned are what `buf` holds.
fn head_in<'a>(
    buf: &'a [u8],
    whole: usize,
    count: usize,
    what: &str,
) -> Result<(&'a [u8], &'a [u8], usize)> {
    let err = |d: String| Error::corrupt(what, 0, d);
    let (&plen, rest) = buf
        .split_first()
        .ok_or_else(|| err("empty bit-packed section".into()))?;
    let plen = if plen == 0 { 256 } else { plen as usize };
    if rest.len() < plen {
        return Err(err(format!(
            "palette of {plen} entries but {} bytes",
            rest.len()
        )));
    }
    let (palette, bits) = rest.split_at(plen);
    let width = width_for(plen) as usize;
    let need = count
        .checked_mul(width)
        .map(|b| b.div_ceil(8))
        .ok_or_else(|| err("count overflows".into()))?;
    let have = whole.saturating_sub(1 + plen);
    if have != need {
        return Err(err(format!(
            "{count} values of {width} bits need {need} bytes, section has {have}"
        )));
    }
    Ok((palette, bits, width))
}

/// The palette index at position `p` of packed `bits` of `width` (1 to 8).
#[inline]
fn code_at(bits: &[u8], width: usize, p: usize) -> usize {
    let bit = p * width;
    let lo = bits.get(bit / 8).copied().unwrap_or(0) as u32;
    let hi = bits.get(bit / 8 + 1).copied().unwrap_or(0) as u32;
    ((((hi << 8) | lo) >> (bit % 8)) & ((1u32 << width) - 1)) as usize
}

/// Decode `count` values; the buffer must be exactly what `encode` wrote.
pub fn decode(buf: &[u8], count: usize, what: &str) -> Result<Vec<u8>> {
    let err = |d: String| Error::corrupt(what, 0, d);
    let (palette, bits, width) = head(buf, count, what)?;
    if width == 0 {
        if count > 0 && palette.len() != 1 {
            return Err(err("empty palette".into()));
        }
        return Ok(vec![palette.first().copied().unwrap_or(0); count]);
    }
    let mut out = Vec::with_capacity(count);
    let mask = (1u64 << width) - 1;
    let mut acc: u64 = 0;
    let mut nbits = 0usize;
    let mut it = bits.iter();
    for _ in 0..count {
        while nbits < width {
            acc |= (*it.next().unwrap_or(&0) as u64) << nbits;
            nbits += 8;
        }
        let idx = (acc & mask) as usize;
        acc >>= width;
        nbits -= width;
        out.push(
            *palette
                .get(idx)
                .ok_or_else(|| err(format!("palette index {idx} out of range")))?,
        );
    }
    Ok(out)
}

/// The values at `positions` (each below `count`; checked by the caller)
/// of a stream of `count` values, with the checks of [`decode`]. `buf` may
/// be a prefix of the stream's `whole` bytes holding what [`prefix_len`]
/// says the positions need.
pub fn decode_at(
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<u8>> {
    let err = |d: String| Error::corrupt(what, 0, d);
    let (palette, bits, width) = head_in(buf, whole, count, what)?;
    short_prefix(bits, width, positions, what)?;
    if width == 0 && count > 0 && palette.len() != 1 {
        return Err(err("empty palette".into()));
    }
    positions
        .iter()
        .map(|&p| {
            let idx = if width == 0 {
                0
            } else {
                code_at(bits, width, p)
            };
            palette
                .get(idx)
                .copied()
                .ok_or_else(|| err(format!("palette index {idx} out of range")))
        })
        .collect()
}

/// Refuse a prefix of packed `bits` that does not reach the last of
/// `positions` (increasing, checked by the caller).
fn short_prefix(bits: &[u8], width: usize, positions: &[usize], what: &str) -> Result<()> {
    match positions.last() {
        Some(&p) if width > 0 && (p * width) / 8 >= bits.len() => Err(Error::corrupt(
            what,
            0,
            format!("value {p} past the {} bytes read", bits.len()),
        )),
        _ => Ok(()),
    }
}

/// The value at each of `positions` (increasing, each below `count`:
/// others are an error) of a stream of `count` values, and how many
/// values before it are equal to it, with the checks of [`decode`]: the
/// kind and rank of a few items without decoding the others (a bitmap's
/// ranks are population counts).
/// `buf` may be a prefix of the stream's `whole` bytes holding what
/// [`prefix_len`] says the positions need.
pub fn ranks_at(
    buf: &[u8],
    whole: usize,
    count: usize,
    positions: &[usize],
    what: &str,
) -> Result<Vec<(u8, usize)>> {
    let err = |d: String| Error::corrupt(what, 0, d);
    let (palette, bits, width) = head_in(buf, whole, count, what)?;
    if positions.windows(2).any(|w| w[0] > w[1]) || positions.last().is_some_and(|&p| p >= count) {
        return Err(err(format!(
            "positions out of order or past the {count} values"
        )));
    }
    short_prefix(bits, width, positions, what)?;
    let value = |idx: usize| {
        palette
            .get(idx)
            .copied()
            .ok_or_else(|| err(format!("palette index {idx} out of range")))
    };
    let mut out = Vec::with_capacity(positions.len());
    match width {
        0 => {
            if count > 0 && palette.len() != 1 {
                return Err(err("empty palette".into()));
            }
            for &p in positions {
                out.push((value(0)?, p));
            }
        }
        1 => {
            // Ones before bit p: whole bytes counted once, as p grows.
            let (mut ones, mut byte) = (0usize, 0usize);
            for &p in positions {
                while byte < p / 8 {
                    ones += bits[byte].count_ones() as usize;
                    byte += 1;
                }
                let b = bits.get(p / 8).copied().unwrap_or(0);
                let before = ones + (b & ((1u8 << (p % 8)) - 1)).count_ones() as usize;
                if (b >> (p % 8)) & 1 == 1 {
                    out.push((value(1)?, before));
                } else {
                    out.push((value(0)?, p - before));
                }
            }
        }
        _ => {
            let mut seen = [0usize; 256];
            let mut next = 0usize;
            for &p in positions {
                while next < p {
                    seen[code_at(bits, width, next)] += 1;
                    next += 1;
                }
                let idx = code_at(bits, width, p);
                out.push((value(idx)?, seen[idx]));
            }
        }
    }
    Ok(out)
}

/// Decode `count` values, keeping only those that differ from `base`: their
/// positions and values, increasing. Runs of `base` cost one byte
/// comparison per byte when the width divides 8 (a sparse column's bitmap is
/// mostly zero bytes). Checks exactly what [`decode`] checks.
pub fn decode_except(
    buf: &[u8],
    count: usize,
    base: u8,
    what: &str,
) -> Result<(Vec<u32>, Vec<u8>)> {
    let err = |d: String| Error::corrupt(what, 0, d);
    if count > u32::MAX as usize {
        return Err(err(format!("{count} values exceed 2^32-1")));
    }
    let (palette, bits, width) = head(buf, count, what)?;
    let (mut at, mut vals) = (Vec::new(), Vec::new());
    if width == 0 {
        if count > 0 && palette.len() != 1 {
            return Err(err("empty palette".into()));
        }
        let v = palette.first().copied().unwrap_or(0);
        if v != base && count > 0 {
            at = (0..count as u32).collect();
            vals = vec![v; count];
        }
        return Ok((at, vals));
    }
    // The byte holding 8/width copies of base's code, when both exist.
    let skip = palette
        .iter()
        .position(|&p| p == base)
        .filter(|_| 8 % width == 0)
        .map(|code| {
            let mut b = 0u8;
            for k in 0..8 / width {
                b |= (code as u8) << (k * width);
            }
            b
        });
    let per_byte = if 8 % width == 0 { 8 / width } else { 0 };
    let mask = (1u64 << width) - 1;
    let mut acc: u64 = 0;
    let mut nbits = 0usize;
    let mut pos = 0usize; // next byte of `bits`
    let mut i = 0usize;
    while i < count {
        if nbits == 0 && i + per_byte <= count && skip == Some(bits[pos]) {
            pos += 1;
            i += per_byte;
            continue;
        }
        while nbits < width {
            acc |= (bits.get(pos).copied().unwrap_or(0) as u64) << nbits;
            pos += 1;
            nbits += 8;
        }
        let idx = (acc & mask) as usize;
        acc >>= width;
        nbits -= width;
        let v = *palette
            .get(idx)
            .ok_or_else(|| err(format!("palette index {idx} out of range")))?;
        if v != base {
            at.push(i as u32);
            vals.push(v);
        }
        i += 1;
    }
    Ok((at, vals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_at_refuses_positions_out_of_range_or_order() {
        let mut b = Vec::new();
        encode(&[0, 1, 1, 0, 2], &mut b);
        assert_eq!(
            ranks_at(&b, b.len(), 5, &[1, 4], "t").unwrap(),
            vec![(1, 0), (2, 0)]
        );
        assert!(ranks_at(&b, b.len(), 5, &[5], "t").is_err());
        assert!(ranks_at(&b, b.len(), 5, &[2, 1], "t").is_err());
    }

    proptest! {
        /// Each position's value and how many equal values precede it,
        /// for palettes of 1 to 256 entries.
        #[test]
        fn ranks_at_counts_the_equal_values_before(
            v in proptest::collection::vec(any::<u8>(), 0..600),
            modulus in prop_oneof![Just(1u16), Just(2), Just(3), Just(4), Just(16), Just(17), Just(256)],
            picks in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let v: Vec<u8> = v.iter().map(|&x| (x as u16 % modulus) as u8).collect();
            let mut b = Vec::new();
            encode(&v, &mut b);
            let mut p: Vec<usize> = if v.is_empty() { Vec::new() } else { picks.iter().map(|&x| x % v.len()).collect() };
            p.sort_unstable();
            let want: Vec<(u8, usize)> = p.iter().map(|&i| (v[i], v[..i].iter().filter(|&&x| x == v[i]).count())).collect();
            prop_assert_eq!(ranks_at(&b, b.len(), v.len(), &p, "t").unwrap(), want);
            prop_assert_eq!(decode_at(&b, b.len(), v.len(), &p, "t").unwrap(), p.iter().map(|&i| v[i]).collect::<Vec<_>>());
        }
        #[test]
        fn roundtrip(v in proptest::collection::vec(0u8..12, 0..500)) {
            let mut b = Vec::new();
            encode(&v, &mut b);
            prop_assert_eq!(decode(&b, v.len(), "t").unwrap(), v.clone());
            b.push(0);
            prop_assert!(decode(&b, v.len(), "t").is_err() || v.is_empty());
        }
        #[test]
        fn any_bytes(v in proptest::collection::vec(any::<u8>(), 0..500)) {
            let mut b = Vec::new();
            encode(&v, &mut b);
            prop_assert_eq!(decode(&b, v.len(), "t").unwrap(), v);
        }
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..40), n in 0usize..300) {
            let _ = decode(&b, n, "t");
            let _ = decode_except(&b, n, 0, "t");
        }
        #[test]
        fn except_agrees_with_decode(
            v in proptest::collection::vec(prop_oneof![8 => Just(0u8), 1 => 0u8..5, 1 => 0u8..40], 0..600),
            base in 0u8..3,
            junk in any::<u8>(),
        ) {
            let mut b = Vec::new();
            encode(&v, &mut b);
            let (at, vals) = decode_except(&b, v.len(), base, "t").unwrap();
            let want: Vec<(u32, u8)> = v.iter().enumerate()
                .filter(|(_, x)| **x != base).map(|(i, x)| (i as u32, *x)).collect();
            prop_assert_eq!(at.into_iter().zip(vals).collect::<Vec<_>>(), want);
            // Whatever the bytes, it fails exactly when `decode` fails.
            if b.len() > 2 {
                let l = b.len() - 1;
                b[l] ^= junk;
                prop_assert_eq!(decode(&b, v.len(), "t").is_ok(), decode_except(&b, v.len(), base, "t").is_ok());
            }
        }
    }

    #[test]
    fn two_values_is_a_bitmap() {
        let v: Vec<u8> = (0..64).map(|i| if i % 3 == 0 { 7 } else { 9 }).collect();
        let mut b = Vec::new();
        encode(&v, &mut b);
        assert_eq!(b.len(), 1 + 2 + 8);
    }
}
