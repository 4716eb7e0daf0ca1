//! Payloads stored against another column's ("based" encoding): the
//! seconds of a node's `Time` items, the ids of its `Str` items or the
//! values of its `Int` items as differences from those of another node's
//! items of the same kind at the same index (`updated_at` from
//! `created_at`, `closed_at` from `updated_at`, `forks_count` from
//! `forks`: mostly equal or close, so the differences are mostly zeros and
//! small numbers).
//!
//! ```text
//! BASED := source:varint  delta:zigzag-varint*count
//! ```
//! `source` is the node index of the base column: another node with the
//! same item count and the same domain (like a mapped stream's source,
//! SPEC.md 4.7). `count` is the node's number of items of the stream's kind
//! `S` (`Time`, `Str` or `Int`); the `k`-th delta belongs to the `k`-th `S`
//! item, at item index `i`, whose payload is the payload of the source's
//! item `i` (which must be an `S` item) plus the delta (an overflow is
//! corruption). Writers only base a node on a node that ranks before it
//! (SPEC.md 4.9), so sources never form a cycle; readers reject cycles and
//! bound the chain as for mapped streams.

use super::varint::{self, Reader};
use crate::error::{Error, Result};

/// Append a based stream: the source node, then each delta.
pub fn encode(source: u32, deltas: impl IntoIterator<Item = i64>, out: &mut Vec<u8>) {
    varint::put_u64(out, source as u64);
    for d in deltas {
        varint::put_i64(out, d);
    }
}

/// The source node of a based stream and the bytes of its deltas (a
/// `zigzag-varint` payload of the node's count of the stream's kind).
pub fn split<'a>(buf: &'a [u8], what: &str) -> Result<(u32, &'a [u8])> {
    let mut r = Reader::new(buf);
    let source = u32::try_from(r.u64(what)?)
        .map_err(|_| Error::corrupt(what, 0, "source node out of range"))?;
    Ok((source, &buf[r.pos()..]))
}

/// The payload of an item whose source item's payload is `base` (seconds,
/// a string id or an integer).
pub fn apply(base: i64, delta: i64, what: &str, item: usize) -> Result<i64> {
    base.checked_add(delta).ok_or_else(|| {
        Error::corrupt(
            what,
            0,
            format!("item {item}: base {base} plus {delta} overflows"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_what_it_encodes() {
        let mut out = Vec::new();
        encode(300, [0, -1, 1 << 40, 0], &mut out);
        let (s, rest) = split(&out, "t").unwrap();
        assert_eq!(s, 300);
        let d = crate::encoding::decode_i64s(crate::encoding::Encoding::ZigzagVarint, rest, 4, "t")
            .unwrap();
        assert_eq!(d, vec![0, -1, 1 << 40, 0]);
        // No source at all, or one past u32.
        assert!(split(&[], "t").is_err());
        let mut big = Vec::new();
        varint::put_u64(&mut big, 1 << 33);
        assert!(split(&big, "t").is_err());
        assert!(apply(i64::MAX, 1, "t", 0).is_err());
        assert_eq!(apply(-5, 7, "t", 0).unwrap(), 2);
    }
}
