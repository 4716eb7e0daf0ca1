//! Functional-dependency ("mapped") encoding of a stream: the values of a
//! node's `Str` ids or `Int`s are a function of the string id of another
//! node's item at the same index (`user.id` of `user.login`,
//! `labels[].color` of `labels[].name`), so only the function is stored.
//!
//! ```text
//! MAPPED := source:varint  n:varint  key_first:varint  key_gap:varint*(n-1)
//!           value:zigzag-varint*n        (value k - value k-1; value -1 = 0)
//! ```
//! `source` is the node index of the key column: another node with the same
//! item count and the same domain (the same nearest enclosing array element
//! node). Writers pick a preceding sibling or the sibling group's key column
//! (which is never mapped itself), so sources never form a cycle; readers
//! bound the recursion and report a cycle as corruption. The keys are the distinct string
//! ids of the source's items at the positions of this stream's items,
//! strictly increasing (gaps >= 1). Value `k` belongs to key `k`; string ids
//! are stored as i64. Item `i` of this stream's kind decodes to the value of
//! the key equal to the source's string id at item `i`; the source item must
//! be a `Str` item whose id is a key.

use super::varint::{self, Reader};
use crate::error::{Error, Result};

/// The decoded header and function of a mapped stream.
#[derive(Debug, PartialEq)]
pub struct Mapping {
    /// Key node.
    pub source: u32,
    /// Strictly increasing key string ids.
    pub keys: Vec<u32>,
    /// Value of each key.
    pub values: Vec<i64>,
}

impl Mapping {
    /// Value for a key string id.
    pub fn get(&self, key: u32) -> Option<i64> {
        self.keys.binary_search(&key).ok().map(|k| self.values[k])
    }
}

/// Many lookups in one [`Mapping`] (decoding a stream looks up every
/// item): the keys' positions bucketed by their high bits (about one key
/// a bucket, at most 2^16 buckets), so a lookup searches a few keys
/// instead of a binary search over all of them (a cache miss a step for
/// the hundreds of thousands of keys of a login or URL column).
#[derive(Debug)]
pub struct Lookup<'m> {
    m: &'m Mapping,
    lo: u32,
    shift: u32,
    /// `starts[b]`: the first key in bucket `b` or after; one more than buckets.
    starts: Vec<u32>,
    /// When the keys are many and not too spread out (the ids of a URL or
    /// login column among the other strings of their table): per 64 ids
    /// from `lo`, which are keys (bits) and how many keys come before (a
    /// rank), so a lookup is one load, a population count and the value:
    /// no search. Empty otherwise.
    words: Vec<RankWord>,
}

/// 64 ids of a [`Lookup`]'s range: which are keys, and the number of keys
/// before them.
#[derive(Clone, Copy, Debug, Default)]
struct RankWord {
    bits: u64,
    rank: u32,
}

/// The fewest keys for which [`Lookup`] makes rank words (below, the
/// buckets are as fast), and the most ids of its range per key (memory: at
/// most 16 bytes of words per 64 ids, so 16 bytes a key at this spread).
const WORDS_MIN_KEYS: usize = 4096;
const WORDS_SPAN_PER_KEY: u64 = 64;

impl Lookup<'_> {
    /// Value for a key string id (as [`Mapping::get`]).
    #[inline]
    pub fn get(&self, key: u32) -> Option<i64> {
        let d = key.checked_sub(self.lo)?;
        if !self.words.is_empty() {
            let w = self.words.get((d / 64) as usize)?;
            let bit = 1u64 << (d % 64);
            if w.bits & bit == 0 {
                return None;
            }
            let k = w.rank as usize + (w.bits & (bit - 1)).count_ones() as usize;
            return self.m.values.get(k).copied();
        }
        let b = (d >> self.shift) as usize;
        let (&from, &to) = (self.starts.get(b)?, self.starts.get(b + 1)?);
        let (from, to) = (from as usize, to as usize);
        let seg = self.m.keys.get(from..to)?;
        seg.binary_search(&key)
            .ok()
            .and_then(|k| self.m.values.get(from + k).copied())
    }
}

impl Mapping {
    /// An index for many lookups (see [`Lookup`]).
    pub fn lookup(&self) -> Lookup<'_> {
        let (Some(&lo), Some(&hi)) = (self.keys.first(), self.keys.last()) else {
            return Lookup {
                m: self,
                lo: 0,
                shift: 0,
                starts: vec![0],
                words: Vec::new(),
            };
        };
        let span = u64::from(hi - lo) + 1;
        if self.keys.len() >= WORDS_MIN_KEYS && span <= WORDS_SPAN_PER_KEY * self.keys.len() as u64
        {
            let mut words = vec![RankWord::default(); span.div_ceil(64) as usize];
            for &k in &self.keys {
                let d = k - lo;
                words[(d / 64) as usize].bits |= 1 << (d % 64);
            }
            let mut rank = 0u32;
            for w in &mut words {
                w.rank = rank;
                rank += w.bits.count_ones();
            }
            return Lookup {
                m: self,
                lo,
                shift: 0,
                starts: Vec::new(),
                words,
            };
        }
        let span_bits = 32 - (hi - lo).leading_zeros();
        let bucket_bits = (usize::BITS - self.keys.len().leading_zeros()).min(16);
        let shift = span_bits.saturating_sub(bucket_bits);
        let buckets = ((hi - lo) >> shift) as usize + 1;
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut k = 0usize;
        for b in 0..buckets {
            while k < self.keys.len() && (((self.keys[k] - lo) >> shift) as usize) < b {
                k += 1;
            }
            starts.push(k as u32);
        }
        starts.push(self.keys.len() as u32);
        Lookup {
            m: self,
            lo,
            shift,
            starts,
            words: Vec::new(),
        }
    }
}

/// [`build`], sorting each pair packed into one `u64` (key, value less the
/// smallest value) when the values span less than 2^32 (string ids always
/// do): half the memory of sorting `(u32, i64)` pairs, the same mapping
/// (issue 16: a million-item column's pairs are 16 MB, not 8, per thread).
pub fn build_packed(
    source: u32,
    pairs: impl Iterator<Item = (u32, i64)> + Clone,
) -> Option<Mapping> {
    let Some((lo, hi)) = pairs
        .clone()
        .fold(None, |acc: Option<(i64, i64)>, (_, v)| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
    else {
        return build(source, pairs);
    };
    if (hi as i128 - lo as i128) > u32::MAX as i128 {
        return build(source, pairs);
    }
    let mut v: Vec<u64> = pairs
        .map(|(k, x)| ((k as u64) << 32) | (x.wrapping_sub(lo) as u64 & 0xffff_ffff))
        .collect();
    v.sort_unstable();
    v.dedup();
    if v.windows(2).any(|w| w[0] >> 32 == w[1] >> 32) {
        return None;
    }
    let keys = v.iter().map(|&p| (p >> 32) as u32).collect();
    // In place: the pairs become the values.
    let mut values: Vec<i64> = v
        .into_iter()
        .map(|p| lo.wrapping_add((p & 0xffff_ffff) as i64))
        .collect();
    values.shrink_to_fit();
    Some(Mapping {
        source,
        keys,
        values,
    })
}

/// Build the mapping from `(key, value)` pairs (one per item), or `None` when
/// some key has two different values.
pub fn build(source: u32, pairs: impl Iterator<Item = (u32, i64)>) -> Option<Mapping> {
    let mut v: Vec<(u32, i64)> = pairs.collect();
    v.sort_unstable();
    v.dedup();
    if v.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(Mapping {
        source,
        keys: v.iter().map(|p| p.0).collect(),
        values: v.iter().map(|p| p.1).collect(),
    })
}

/// Serialize a mapping.
pub fn encode(m: &Mapping, out: &mut Vec<u8>) {
    varint::put_u64(out, m.source as u64);
    varint::put_u64(out, m.keys.len() as u64);
    let mut prev: Option<u32> = None;
    for &k in &m.keys {
        varint::put_u64(out, (k - prev.unwrap_or(0)) as u64);
        prev = Some(k);
    }
    let mut pv = 0i64;
    for &v in &m.values {
        varint::put_i64(out, v.wrapping_sub(pv));
        pv = v;
    }
}

/// The source node and key count of a mapping (at most `max_keys`, and
/// two bytes each at least).
fn header(r: &mut Reader<'_>, max_keys: usize, what: &str) -> Result<(u32, usize)> {
    let err = |at: usize, d: &str| Error::corrupt(what, at as u64, d.to_string());
    let source = u32::try_from(r.u64(what)?).map_err(|_| err(0, "source node out of range"))?;
    let n = r.u64(what)?;
    if n > max_keys as u64 || n.saturating_mul(2) > r.remaining() as u64 {
        return Err(err(r.pos(), "more keys than items or bytes"));
    }
    Ok((source, n as usize))
}

/// The key after `prev` (the first key when `None`): a gap of at least 1.
fn next_key(r: &mut Reader<'_>, prev: Option<u32>, what: &str) -> Result<u32> {
    let g = r.u64(what)?;
    match prev {
        None => u32::try_from(g).ok(),
        Some(p) if g > 0 => u32::try_from(g).ok().and_then(|g| p.checked_add(g)),
        Some(_) => None,
    }
    .ok_or_else(|| {
        Error::corrupt(
            what,
            r.pos() as u64,
            "keys not strictly increasing u32 ids".to_string(),
        )
    })
}

/// Parse a mapping; `max_keys` bounds the key count before allocating.
pub fn decode(buf: &[u8], max_keys: usize, what: &str) -> Result<Mapping> {
    let mut r = Reader::new(buf);
    let (source, n) = header(&mut r, max_keys, what)?;
    let mut keys = Vec::with_capacity(n);
    let mut prev: Option<u32> = None;
    for _ in 0..n {
        let k = next_key(&mut r, prev, what)?;
        keys.push(k);
        prev = Some(k);
    }
    let mut values = Vec::with_capacity(n);
    let mut pv = 0i64;
    for _ in 0..n {
        pv = pv.wrapping_add(r.i64(what)?);
        values.push(pv);
    }
    if r.pos() != buf.len() {
        return Err(Error::corrupt(
            what,
            r.pos() as u64,
            "trailing bytes after the mapping".to_string(),
        ));
    }
    Ok(Mapping {
        source,
        keys,
        values,
    })
}

/// The source node of a mapping, and the value of each of `ids`
/// (increasing, repeats allowed) that is a key (`None` for the others),
/// with the checks of [`decode`] on the keys and values read: what a few
/// items need, without the key and value vectors of the whole mapping.
/// Values are read up to the last key found.
pub fn values_at(
    buf: &[u8],
    max_keys: usize,
    ids: &[u32],
    what: &str,
) -> Result<(u32, Vec<Option<i64>>)> {
    let mut r = Reader::new(buf);
    let (source, n) = header(&mut r, max_keys, what)?;
    // The key index of each id, found in one pass over the keys.
    let mut index: Vec<Option<usize>> = vec![None; ids.len()];
    let mut next = 0usize;
    let mut prev: Option<u32> = None;
    let mut k = 0usize;
    while k < n {
        // Eight one-byte gaps (each at least 1) whose keys stay below the
        // next id (and within u32): passed over at once, with the checks
        // reading them one by one would make.
        if let Some(p) = prev
            && k + 8 <= n
            && let Some(w) = r.peek_8_small()
            && !varint::has_zero_byte(w)
        {
            let end = u64::from(p) + varint::byte_sum(w);
            let below = ids.get(next).is_none_or(|&id| end < u64::from(id));
            if below && let Ok(end) = u32::try_from(end) {
                r.skip_8();
                prev = Some(end);
                k += 8;
                continue;
            }
        }
        let key = next_key(&mut r, prev, what)?;
        prev = Some(key);
        while let Some(&id) = ids.get(next) {
            if id > key {
                break;
            }
            if id == key {
                index[next] = Some(k);
            }
            next += 1;
        }
        k += 1;
    }
    // The values walked up to the last key found, each kept only when
    // asked for (the key indexes increase with the ids).
    let mut out: Vec<Option<i64>> = vec![None; ids.len()];
    let mut asked = index
        .iter()
        .enumerate()
        .filter_map(|(j, k)| k.map(|k| (k, j)))
        .peekable();
    let (mut pv, mut k) = (0i64, 0usize);
    while let Some(&(want, _)) = asked.peek() {
        while k <= want {
            if k + 8 <= want
                && let Some(w) = r.peek_8_small()
            {
                pv = pv.wrapping_add(varint::zigzag_sum(w));
                r.skip_8();
                k += 8;
                continue;
            }
            pv = pv.wrapping_add(r.i64(what)?);
            k += 1;
        }
        while let Some((_, j)) = asked.next_if(|&(x, _)| x == want) {
            out[j] = Some(pv);
        }
    }
    Ok((source, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(keys in proptest::collection::vec(0u32..50, 0..200), f in any::<i64>()) {
            let pairs: Vec<(u32, i64)> = keys.iter().map(|&k| (k, (k as i64).wrapping_mul(f))).collect();
            let m = build(3, pairs.iter().copied()).unwrap();
            let mut b = Vec::new();
            encode(&m, &mut b);
            let back = decode(&b, keys.len(), "t").unwrap();
            prop_assert_eq!(&back, &m);
            let look = back.lookup();
            for (k, v) in pairs {
                prop_assert_eq!(back.get(k), Some(v));
                prop_assert_eq!(look.get(k), Some(v));
            }
            let mut ids: Vec<u32> = keys.iter().map(|&k| k + k % 3).chain(0..5).collect();
            ids.sort_unstable();
            let (src, at) = values_at(&b, keys.len(), &ids, "t").unwrap();
            prop_assert_eq!(src, 3);
            prop_assert_eq!(at, ids.iter().map(|&i| back.get(i)).collect::<Vec<_>>());
            b.push(0);
            prop_assert!(decode(&b, keys.len(), "t").is_err());
        }
        /// Keys close together and small values (eight one-byte varints
        /// are passed over at once), near 0 and near `u32::MAX`: the
        /// values at any ids are the mapping's.
        #[test]
        fn values_at_over_runs_of_small_gaps_and_values(
            keys in proptest::collection::btree_set(0u32..2500, 0..600),
            vals in proptest::collection::vec(prop_oneof![20 => -64i64..64, 1 => any::<i64>()], 600),
            ids in proptest::collection::vec(0u32..2600, 0..40),
            high in any::<bool>(),
        ) {
            let base = if high { u32::MAX - 2600 } else { 0 };
            let mut v = 0i64;
            let pairs: Vec<(u32, i64)> = keys
                .iter()
                .zip(&vals)
                .map(|(&k, &d)| {
                    v = v.wrapping_add(d);
                    (base + k, v)
                })
                .collect();
            let m = build(3, pairs.iter().copied()).unwrap();
            let mut b = Vec::new();
            encode(&m, &mut b);
            let mut ids: Vec<u32> = ids.iter().map(|&i| base + i).collect();
            ids.sort_unstable();
            let (src, at) = values_at(&b, keys.len(), &ids, "t").unwrap();
            prop_assert_eq!(src, 3);
            prop_assert_eq!(at, ids.iter().map(|&i| m.get(i)).collect::<Vec<_>>());
        }

        /// Packed pairs give the mapping (or the refusal) of plain pairs,
        /// narrow and wide values, functions or not.
        #[test]
        fn packed_is_plain(
            pairs in proptest::collection::vec((0u32..40, prop_oneof![-3i64..3, any::<i64>(), (u32::MAX as i64 - 2)..(u32::MAX as i64 + 2)]), 0..200),
            f in prop_oneof![Just(0i64), any::<i64>()],
        ) {
            prop_assert_eq!(build_packed(5, pairs.iter().copied()), build(5, pairs.iter().copied()));
            let func: Vec<(u32, i64)> = pairs.iter().map(|&(k, _)| (k, (k as i64).wrapping_mul(f))).collect();
            prop_assert_eq!(build_packed(5, func.iter().copied()), build(5, func.iter().copied()));
        }
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..60), n in 0usize..100) {
            let _ = decode(&b, n, "t");
        }
    }

    /// A gap of 0 or a key past `u32::MAX` inside a run of one-byte gaps
    /// is refused as the whole decode refuses it, whatever ids are asked.
    #[test]
    fn bad_keys_inside_runs_of_small_gaps_are_refused() {
        let stream = |first: u64, gaps: &[u64]| {
            let mut b = Vec::new();
            varint::put_u64(&mut b, 3);
            varint::put_u64(&mut b, gaps.len() as u64 + 1);
            varint::put_u64(&mut b, first);
            for &g in gaps {
                varint::put_u64(&mut b, g);
            }
            for _ in 0..=gaps.len() {
                varint::put_i64(&mut b, 1);
            }
            b
        };
        let ok = stream(5, &[1; 20]);
        assert!(decode(&ok, 21, "t").is_ok());
        let (_, at) = values_at(&ok, 21, &[5, 25, 26], "t").unwrap();
        assert_eq!(at, vec![Some(1), Some(21), None]);
        let mut zero = [1u64; 20];
        zero[9] = 0;
        let over = stream(u64::from(u32::MAX) - 12, &[1; 20]);
        for b in [stream(5, &zero), over] {
            assert!(decode(&b, 21, "t").is_err());
            for ids in [&[][..], &[5][..], &[1_000_000][..], &[u32::MAX][..]] {
                assert!(values_at(&b, 21, ids, "t").is_err(), "{ids:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn lookup_is_get(keys in proptest::collection::btree_set(prop_oneof![0u32..3000, any::<u32>()], 0..3000), probes in proptest::collection::vec(any::<u32>(), 0..200)) {
            lookup_agrees(&keys, &probes)?;
        }

        /// Many keys close together: the rank words.
        #[test]
        fn dense_lookup_is_get(
            base in any::<u32>(),
            stride in prop_oneof![Just(1u32), 1u32..70],
            holes in proptest::collection::btree_set(0u32..12_000, 0..4000),
            probes in proptest::collection::vec(0u32..13_000 * 70, 0..300),
        ) {
            let base = base.min(u32::MAX - 13_000 * 70);
            let keys: std::collections::BTreeSet<u32> = (0..12_000u32)
                .filter(|k| !holes.contains(k))
                .map(|k| base + k * stride)
                .collect();
            let probes: Vec<u32> = probes.iter().map(|&p| base + p).collect();
            lookup_agrees(&keys, &probes)?;
            let m = build(1, keys.iter().map(|&k| (k, i64::from(k) * 3))).unwrap();
            let span = match (keys.first(), keys.last()) {
                (Some(&a), Some(&b)) => u64::from(b - a) + 1,
                _ => 0,
            };
            let words = keys.len() >= WORDS_MIN_KEYS && span <= WORDS_SPAN_PER_KEY * keys.len() as u64;
            prop_assert_eq!(!m.lookup().words.is_empty(), words);
        }
    }

    fn lookup_agrees(
        keys: &std::collections::BTreeSet<u32>,
        probes: &[u32],
    ) -> std::result::Result<(), TestCaseError> {
        {
            let m = build(1, keys.iter().map(|&k| (k, i64::from(k) * 3))).unwrap();
            let look = m.lookup();
            for k in keys
                .iter()
                .copied()
                .chain(probes.iter().copied())
                .chain([0, u32::MAX])
            {
                prop_assert_eq!(look.get(k), m.get(k));
            }
        }
        Ok(())
    }

    #[test]
    fn not_a_function() {
        assert!(build(0, [(1, 2), (1, 3)].into_iter()).is_none());
        assert!(build(0, [(1, 2), (1, 2), (2, 2)].into_iter()).is_some());
    }
}
