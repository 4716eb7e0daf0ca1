//! Integer, float, id and bitmap encodings used inside sections.
//!
//! Every encoder appends to a `Vec<u8>`; every decoder takes the exact payload
//! and the number of values it must hold (known from the footer), checks that
//! the payload can hold that many values *before* allocating, and fails if
//! bytes are left over. Byte order is little-endian everywhere.

pub mod at;
pub mod based;
pub mod bitpack;
pub mod dict;
pub mod mapped;
pub mod numtext;
pub mod varint;

use crate::error::{Error, Result};

/// The one-byte encoding tag written into every section header and the
/// directory. Values are part of the file format (SPEC.md, "Encodings").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Encoding {
    /// Opaque bytes whose structure is given by the section's role.
    Raw = 0,
    /// Unsigned LEB128 varints.
    Varint = 1,
    /// Signed values, zigzag-mapped, then LEB128.
    ZigzagVarint = 2,
    /// Signed values: first value, then successive differences, each zigzag LEB128.
    DeltaZigzagVarint = 3,
    /// Fixed-width little-endian u32 (viewable in place when uncompressed).
    PlainU32 = 4,
    /// Fixed-width little-endian IEEE-754 binary64 bit patterns.
    PlainF64 = 5,
    /// Small codes bit-packed LSB-first after a palette (see `bitpack`).
    BitPacked = 6,
    /// Fixed-width u8 values.
    PlainU8 = 7,
    /// Sorted distinct values, then one fixed-width index per value (see [`dict`]).
    Dict = 8,
    /// Kinds of only the items whose parent item is an `Object`, bit-packed
    /// (every other item is `Absent`); only for the kinds of `Key` children.
    ParentMasked = 9,
    /// A function of another node's string ids (see [`mapped`]); only for
    /// `Str` id and `Int` streams.
    Mapped = 10,
    /// Payloads as differences from another node's at the same items (see
    /// [`based`]); only for `ints`, `string-ids` and `ts-secs` streams.
    Based = 11,
}

impl Encoding {
    /// Decode the tag byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Encoding::Raw,
            1 => Encoding::Varint,
            2 => Encoding::ZigzagVarint,
            3 => Encoding::DeltaZigzagVarint,
            4 => Encoding::PlainU32,
            5 => Encoding::PlainF64,
            6 => Encoding::BitPacked,
            7 => Encoding::PlainU8,
            8 => Encoding::Dict,
            9 => Encoding::ParentMasked,
            10 => Encoding::Mapped,
            11 => Encoding::Based,
            _ => return None,
        })
    }

    /// Human-readable name used by `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Varint => "varint",
            Encoding::ZigzagVarint => "zigzag-varint",
            Encoding::DeltaZigzagVarint => "delta-zigzag-varint",
            Encoding::PlainU32 => "plain-u32",
            Encoding::PlainF64 => "plain-f64",
            Encoding::BitPacked => "bitpacked",
            Encoding::PlainU8 => "plain-u8",
            Encoding::Dict => "dict",
            Encoding::ParentMasked => "parent-masked",
            Encoding::Mapped => "mapped",
            Encoding::Based => "based",
        }
    }

    /// Whether a stream of this encoding starts with the index of another
    /// node it is decoded from (`mapped`, `based`): a source to decode
    /// first, and an edge of the graph whose cycles and chains readers
    /// bound (SPEC.md 4.7).
    pub fn has_source(self) -> bool {
        matches!(self, Encoding::Mapped | Encoding::Based)
    }
}

fn check_exact(what: &str, consumed: usize, len: usize) -> Result<()> {
    if consumed != len {
        return Err(Error::corrupt(
            what,
            consumed as u64,
            format!("{} trailing bytes after the last value", len - consumed),
        ));
    }
    Ok(())
}

fn check_count(what: &str, count: usize, len: usize, min_bytes_per_value: usize) -> Result<()> {
    // A hostile footer may claim billions of values: refuse before allocating.
    if count.saturating_mul(min_bytes_per_value) > len {
        return Err(Error::corrupt(
            what,
            0,
            format!("{count} values cannot fit in {len} bytes"),
        ));
    }
    Ok(())
}

/// Encode signed integers, choosing between plain zigzag and delta zigzag by
/// whichever is smaller before compression. Returns the encoding used.
/// Only the smaller is written (their lengths are counted first: issue 16,
/// not two whole encodings of a column held at once).
pub fn encode_i64s(values: &[i64], out: &mut Vec<u8>) -> Encoding {
    encode_i64s_of(|| values.iter().copied(), out)
}

/// [`encode_i64s`] of the values that `values` lists (twice: once to
/// count, once to write), so that a column need not be copied into a
/// slice first (the seconds of a column of timestamps).
pub fn encode_i64s_of<I: Iterator<Item = i64>>(
    values: impl Fn() -> I,
    out: &mut Vec<u8>,
) -> Encoding {
    let (mut plain, mut delta) = (0usize, 0usize);
    let mut prev = 0i64;
    for v in values() {
        plain += varint::len_i64(v);
        delta += varint::len_i64(v.wrapping_sub(prev));
        prev = v;
    }
    if delta < plain {
        out.reserve(delta);
        let mut prev = 0i64;
        for v in values() {
            varint::put_i64(out, v.wrapping_sub(prev));
            prev = v;
        }
        Encoding::DeltaZigzagVarint
    } else {
        out.reserve(plain);
        for v in values() {
            varint::put_i64(out, v);
        }
        Encoding::ZigzagVarint
    }
}

/// What a decoder appending to a vector gives into a new one.
fn into_new<T>(decode: impl FnOnce(&mut Vec<T>) -> Result<()>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    decode(&mut out)?;
    Ok(out)
}

/// Decode `count` signed integers written by [`encode_i64s`] (either encoding).
pub fn decode_i64s(enc: Encoding, buf: &[u8], count: usize, what: &str) -> Result<Vec<i64>> {
    into_new(|out| decode_i64s_into(enc, buf, count, what, out))
}

/// [`decode_i64s`] appending to `out`: a vector allocated before its
/// section was read keeps its place in memory, below the decode's
/// temporaries (what a reader keeps is allocated first). On error `out`
/// may hold some of the values.
pub fn decode_i64s_into(
    enc: Encoding,
    buf: &[u8],
    count: usize,
    what: &str,
    out: &mut Vec<i64>,
) -> Result<()> {
    if enc == Encoding::Dict {
        return dict::decode_as_into(buf, count, what, |k| Some(dict::from_ordered_i64(k)), out);
    }
    check_count(what, count, buf.len(), 1)?;
    let mut r = varint::Reader::new(buf);
    out.reserve(count);
    match enc {
        Encoding::ZigzagVarint => {
            for _ in 0..count {
                out.push(r.i64(what)?);
            }
        }
        Encoding::DeltaZigzagVarint => {
            let mut prev = 0i64;
            for _ in 0..count {
                prev = prev.wrapping_add(r.i64(what)?);
                out.push(prev);
            }
        }
        other => return Err(bad_encoding(what, other)),
    }
    check_exact(what, r.pos(), buf.len())
}

/// Candidate encodings of signed integers: the smaller of plain/delta zigzag
/// varints, and the dictionary encoding. The writer keeps whichever
/// compresses smallest.
pub fn i64_candidates(values: &[i64]) -> Vec<(Encoding, Vec<u8>)> {
    let mut a = Vec::new();
    let e = encode_i64s(values, &mut a);
    let mut out = vec![(e, a)];
    if let Some(d) = dict::encode_if_useful(
        values.iter().map(|&v| dict::to_ordered_i64(v)),
        values.len(),
    ) {
        out.push((Encoding::Dict, d));
    }
    out
}

/// Candidate encodings of string ids: plain u32, varint, dictionary and
/// differences ([`encode_str_id_deltas`]).
pub fn u32_candidates(values: &[u32]) -> Vec<(Encoding, Vec<u8>)> {
    let mut a = Vec::new();
    let e = encode_u32s(values, &mut a);
    let mut out = vec![(e, a)];
    let mut v = Vec::new();
    let e = encode_u64s(values.iter().map(|&x| x as u64), &mut v);
    out.push((e, v));
    if let Some(d) = dict::encode_u32s_if_useful(values) {
        out.push((Encoding::Dict, d));
    }
    let mut d = Vec::new();
    let e = encode_str_id_deltas(values, &mut d);
    out.push((e, d));
    out
}

/// Encode string ids as zigzag varints of their differences (`delta-zigzag`
/// on a string-ids stream, SPEC.md 4.2): ids that grow in item order (a
/// row-ordered table's, sequential keys) take a byte or less each.
pub fn encode_str_id_deltas(values: &[u32], out: &mut Vec<u8>) -> Encoding {
    let mut prev = 0i64;
    for &v in values {
        varint::put_i64(out, v as i64 - prev);
        prev = v as i64;
    }
    Encoding::DeltaZigzagVarint
}

/// Decode the string ids of a string-ids stream: what [`decode_u32s_into`]
/// accepts, plus `delta-zigzag` (SPEC.md 4.2: the running sum, wrapping
/// i64, must lie in 0..2^32 at every item).
pub fn decode_str_ids_into(
    enc: Encoding,
    buf: &[u8],
    count: usize,
    what: &str,
    out: &mut Vec<u32>,
) -> Result<()> {
    if enc != Encoding::DeltaZigzagVarint {
        return decode_u32s_into(enc, buf, count, what, out);
    }
    check_count(what, count, buf.len(), 1)?;
    let mut r = varint::Reader::new(buf);
    out.reserve(count);
    let mut prev = 0i64;
    for _ in 0..count {
        prev = prev.wrapping_add(r.i64(what)?);
        out.push(u32::try_from(prev).map_err(|_| {
            Error::corrupt(
                what,
                r.pos() as u64,
                format!("string id {prev} out of range"),
            )
        })?);
    }
    check_exact(what, r.pos(), buf.len())
}

/// [`decode_str_ids_into`] into a new vector.
pub fn decode_str_ids(enc: Encoding, buf: &[u8], count: usize, what: &str) -> Result<Vec<u32>> {
    into_new(|out| decode_str_ids_into(enc, buf, count, what, out))
}

/// Encode unsigned integers as LEB128 varints.
pub fn encode_u64s(values: impl IntoIterator<Item = u64>, out: &mut Vec<u8>) -> Encoding {
    for v in values {
        varint::put_u64(out, v);
    }
    Encoding::Varint
}

/// Decode `count` unsigned varints.
pub fn decode_u64s(enc: Encoding, buf: &[u8], count: usize, what: &str) -> Result<Vec<u64>> {
    into_new(|out| decode_u64s_into(enc, buf, count, what, out))
}

/// [`decode_u64s`] appending to `out` (see [`decode_i64s_into`]).
pub fn decode_u64s_into(
    enc: Encoding,
    buf: &[u8],
    count: usize,
    what: &str,
    out: &mut Vec<u64>,
) -> Result<()> {
    if enc == Encoding::Dict {
        return dict::decode_as_into(buf, count, what, Some, out);
    }
    if enc != Encoding::Varint {
        return Err(bad_encoding(what, enc));
    }
    check_count(what, count, buf.len(), 1)?;
    let mut r = varint::Reader::new(buf);
    out.reserve(count);
    for _ in 0..count {
        out.push(r.u64(what)?);
    }
    check_exact(what, r.pos(), buf.len())
}

/// Encode u32 values (string ids): fixed width little-endian, so that an
/// uncompressed section can be viewed in place as `&[u32]`.
pub fn encode_u32s(values: &[u32], out: &mut Vec<u8>) -> Encoding {
    out.reserve(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Encoding::PlainU32
}

/// Decode `count` u32 values (plain or varint).
pub fn decode_u32s(enc: Encoding, buf: &[u8], count: usize, what: &str) -> Result<Vec<u32>> {
    into_new(|out| decode_u32s_into(enc, buf, count, what, out))
}

/// [`decode_u32s`] appending to `out` (see [`decode_i64s_into`]).
pub fn decode_u32s_into(
    enc: Encoding,
    buf: &[u8],
    count: usize,
    what: &str,
    out: &mut Vec<u32>,
) -> Result<()> {
    match enc {
        Encoding::PlainU32 => {
            if buf.len() != count.saturating_mul(4) {
                return Err(Error::corrupt(
                    what,
                    0,
                    format!(
                        "{count} u32 values need {} bytes, section has {}",
                        count.saturating_mul(4),
                        buf.len()
                    ),
                ));
            }
            out.extend(
                buf.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            Ok(())
        }
        // Straight into `u32`s: no `u64` vector twice the size in between.
        Encoding::Dict => dict::decode_as_into(buf, count, what, |x| u32::try_from(x).ok(), out),
        Encoding::Varint => {
            check_count(what, count, buf.len(), 1)?;
            let mut r = varint::Reader::new(buf);
            out.reserve(count);
            for _ in 0..count {
                let x = r.u64(what)?;
                out.push(u32::try_from(x).map_err(|_| {
                    Error::corrupt(what, r.pos() as u64, format!("value {x} exceeds u32"))
                })?);
            }
            check_exact(what, r.pos(), buf.len())
        }
        other => Err(bad_encoding(what, other)),
    }
}

/// Encode f64 values as their little-endian bit patterns (exact round trip,
/// including -0.0; NaN cannot occur in JSON).
pub fn encode_f64s(values: &[f64], out: &mut Vec<u8>) -> Encoding {
    for v in values {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    Encoding::PlainF64
}

/// Decode `count` f64 values.
pub fn decode_f64s(enc: Encoding, buf: &[u8], count: usize, what: &str) -> Result<Vec<f64>> {
    into_new(|out| decode_f64s_into(enc, buf, count, what, out))
}

/// [`decode_f64s`] appending to `out` (see [`decode_i64s_into`]).
pub fn decode_f64s_into(
    enc: Encoding,
    buf: &[u8],
    count: usize,
    what: &str,
    out: &mut Vec<f64>,
) -> Result<()> {
    if enc != Encoding::PlainF64 {
        return Err(bad_encoding(what, enc));
    }
    if buf.len() != count.saturating_mul(8) {
        return Err(Error::corrupt(
            what,
            0,
            format!(
                "{count} f64 values need {} bytes, section has {}",
                count.saturating_mul(8),
                buf.len()
            ),
        ));
    }
    out.extend(
        buf.chunks_exact(8)
            .map(|c| f64::from_bits(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))),
    );
    Ok(())
}

/// Encode u8 values verbatim.
pub fn encode_u8s(values: &[u8], out: &mut Vec<u8>) -> Encoding {
    out.extend_from_slice(values);
    Encoding::PlainU8
}

/// Decode `count` u8 values (plain or bit-packed).
pub fn decode_u8s(enc: Encoding, buf: &[u8], count: usize, what: &str) -> Result<Vec<u8>> {
    match enc {
        Encoding::PlainU8 => {
            if buf.len() != count {
                return Err(Error::corrupt(
                    what,
                    0,
                    format!(
                        "{count} u8 values need {count} bytes, section has {}",
                        buf.len()
                    ),
                ));
            }
            Ok(buf.to_vec())
        }
        Encoding::BitPacked => bitpack::decode(buf, count, what),
        other => Err(bad_encoding(what, other)),
    }
}

pub(crate) fn bad_encoding(what: &str, enc: Encoding) -> Error {
    Error::corrupt(
        what,
        0,
        format!("encoding {} is not valid here", enc.name()),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Shared round-trip harness: encode, decode, and check that a decoder
    /// given junk after the payload refuses it (consumes exactly its bytes).
    pub(crate) fn roundtrip<T: PartialEq + std::fmt::Debug>(
        values: &[T],
        enc: impl Fn(&[T], &mut Vec<u8>) -> Encoding,
        dec: impl Fn(Encoding, &[u8], usize) -> Result<Vec<T>>,
    ) {
        let mut buf = Vec::new();
        let e = enc(values, &mut buf);
        let back = dec(e, &buf, values.len()).expect("decode");
        assert_eq!(back, values);
        let mut junk = buf.clone();
        junk.push(0x01);
        assert!(
            dec(e, &junk, values.len()).is_err(),
            "junk after payload accepted"
        );
        if !values.is_empty() {
            assert!(
                dec(e, &buf, values.len() + 1).is_err(),
                "missing value accepted"
            );
        }
    }

    proptest! {
        #[test]
        fn i64s_roundtrip(v in proptest::collection::vec(any::<i64>(), 0..200)) {
            roundtrip(&v, encode_i64s, |e, b, n| decode_i64s(e, b, n, "t"));
        }
        #[test]
        fn i64s_sorted_roundtrip(mut v in proptest::collection::vec(-1_000_000i64..1_000_000, 0..200)) {
            v.sort();
            roundtrip(&v, encode_i64s, |e, b, n| decode_i64s(e, b, n, "t"));
        }
        #[test]
        fn u64s_roundtrip(v in proptest::collection::vec(any::<u64>(), 0..200)) {
            roundtrip(&v, |v, o| encode_u64s(v.iter().copied(), o), |e, b, n| decode_u64s(e, b, n, "t"));
        }
        #[test]
        fn u32s_roundtrip(v in proptest::collection::vec(any::<u32>(), 0..200)) {
            roundtrip(&v, encode_u32s, |e, b, n| decode_u32s(e, b, n, "t"));
        }
        /// `u32`s stored as varints or a dictionary (string ids, list
        /// lengths) decode straight to `u32`s: the values of `decode_u64s`,
        /// and an error exactly when one of them exceeds `u32`.
        #[test]
        fn u32s_from_varints_and_dicts_are_the_u64s_checked(
            v in proptest::collection::vec(prop_oneof![8 => 0u64..20, 2 => any::<u32>().prop_map(u64::from), 1 => (1u64 << 32)..u64::MAX], 0..200),
        ) {
            let mut encoded = Vec::new();
            let mut b = Vec::new();
            let e = encode_u64s(v.iter().copied(), &mut b);
            encoded.push((e, b));
            if let Some(d) = dict::encode_if_useful(v.iter().copied(), v.len()) {
                encoded.push((Encoding::Dict, d));
            }
            for (e, b) in encoded {
                let wide = decode_u64s(e, &b, v.len(), "t").unwrap();
                let got = decode_u32s(e, &b, v.len(), "t");
                if wide.iter().all(|&x| x <= u64::from(u32::MAX)) {
                    prop_assert_eq!(got.unwrap(), wide.iter().map(|&x| x as u32).collect::<Vec<_>>());
                } else {
                    prop_assert!(got.is_err());
                }
            }
        }
        #[test]
        fn f64s_roundtrip(v in proptest::collection::vec(any::<f64>().prop_filter("no NaN", |f| !f.is_nan()), 0..200)) {
            roundtrip(&v, encode_f64s, |e, b, n| decode_f64s(e, b, n, "t"));
        }
        #[test]
        fn u8s_roundtrip(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            roundtrip(&v, encode_u8s, |e, b, n| decode_u8s(e, b, n, "t"));
        }
        #[test]
        fn candidates_roundtrip(v in proptest::collection::vec(prop_oneof![any::<i64>(), -5i64..5], 0..300)) {
            for (e, b) in i64_candidates(&v) {
                prop_assert_eq!(decode_i64s(e, &b, v.len(), "t").unwrap(), v.clone());
            }
            let u: Vec<u32> = v.iter().map(|&x| x as u32).collect();
            for (e, b) in u32_candidates(&u) {
                prop_assert_eq!(decode_str_ids(e, &b, u.len(), "t").unwrap(), u.clone());
                let mut junk = b.clone();
                junk.push(1);
                prop_assert!(decode_str_ids(e, &junk, u.len(), "t").is_err());
            }
        }
        #[test]
        fn decoders_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..100, tag in 0u8..11) {
            let e = Encoding::from_u8(tag).unwrap();
            let _ = decode_i64s(e, &buf, n, "t");
            let _ = decode_u64s(e, &buf, n, "t");
            let _ = decode_u32s(e, &buf, n, "t");
            let _ = decode_str_ids(e, &buf, n, "t");
            let _ = decode_f64s(e, &buf, n, "t");
            let _ = decode_u8s(e, &buf, n, "t");
        }
    }

    #[test]
    fn string_id_differences_stay_within_u32() {
        let ids = [0u32, 5, 4, u32::MAX, 0, 7];
        let mut b = Vec::new();
        assert_eq!(
            encode_str_id_deltas(&ids, &mut b),
            Encoding::DeltaZigzagVarint
        );
        assert_eq!(
            decode_str_ids(Encoding::DeltaZigzagVarint, &b, 6, "t").unwrap(),
            ids
        );
        // Increasing ids take a byte each.
        let up: Vec<u32> = (1000..1100).collect();
        let mut b = Vec::new();
        encode_str_id_deltas(&up, &mut b);
        assert_eq!(b.len(), 2 + 99);
        // A sum below 0 or past u32::MAX is corruption, not a wrap.
        for steps in [&[3i64, -4][..], &[u32::MAX as i64, 1], &[i64::MAX, 1]] {
            let mut b = Vec::new();
            for &d in steps {
                varint::put_i64(&mut b, d);
            }
            let e = decode_str_ids(Encoding::DeltaZigzagVarint, &b, steps.len(), "t").unwrap_err();
            assert!(e.to_string().contains("out of range"), "{e}");
        }
        // list-lengths and other u32 streams still refuse differences.
        assert!(decode_u32s(Encoding::DeltaZigzagVarint, &[0], 1, "t").is_err());
    }

    #[test]
    fn extremes() {
        let v = vec![i64::MIN, i64::MAX, 0, -1, 1, i64::MIN, i64::MAX];
        roundtrip(&v, encode_i64s, |e, b, n| decode_i64s(e, b, n, "t"));
        let v = vec![u64::MAX, 0, u64::MAX];
        roundtrip(
            &v,
            |v, o| encode_u64s(v.iter().copied(), o),
            |e, b, n| decode_u64s(e, b, n, "t"),
        );
    }

    #[test]
    fn huge_count_refused_before_allocating() {
        assert!(decode_i64s(Encoding::ZigzagVarint, &[0, 0], 1 << 40, "t").is_err());
        assert!(decode_u32s(Encoding::PlainU32, &[0; 8], 1 << 40, "t").is_err());
    }
}
