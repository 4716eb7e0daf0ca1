//! Stable multi-key sort over typed arrays. Values first, then nulls, then
//! absent values, whatever the direction; ties keep row order.

use super::loaded::{ABSENT, Cell, Class, Column, NULL, Values};
use std::cmp::Ordering;

/// One resolved sort key.
pub(crate) struct Key<'c> {
    pub col: &'c Column,
    pub desc: bool,
}

impl Key<'_> {
    /// Full comparison of rows `a` and `b` by this key.
    #[inline]
    fn cmp(&self, a: u32, b: u32) -> Ordering {
        let (x, y) = (
            self.col.sort_cell(a as usize),
            self.col.sort_cell(b as usize),
        );
        match x.class().cmp(&y.class()) {
            Ordering::Equal if x.class() == Class::Value => {
                let o = x.cmp_value(&y);
                if self.desc { o.reverse() } else { o }
            }
            o => o,
        }
    }

    /// True when [`Key::enc`] orders values exactly (no tie-break needed
    /// beyond equal encodings meaning equal values).
    fn exact(&self) -> bool {
        match &self.col.values {
            Values::Str(_) | Values::Int { .. } | Values::Bool(_) => true,
            Values::Object(_) | Values::List(_) => true,
            Values::Time { nanos, .. } => nanos.is_empty(),
            Values::Any(_) => false,
        }
    }

    /// True when encodings fit in 32 bits.
    fn narrow(&self) -> bool {
        matches!(
            self.col.values,
            Values::Str(_) | Values::Bool(_) | Values::Object(_) | Values::List(_)
        )
    }

    /// An order-preserving `u64` for a value cell (direction applied).
    #[inline]
    fn enc(&self, c: Cell) -> u64 {
        let v = match c {
            _ if matches!(self.col.values, Values::Any(_)) => c.rank() as u64,
            Cell::Str(k) => k as u64,
            Cell::Bool(b) => b as u64,
            Cell::Array(n) => n as u64,
            Cell::Object => 0,
            Cell::Int(i) => (i as u64) ^ (1 << 63),
            Cell::Time(s, _) => (s as u64) ^ (1 << 63),
            other => other.rank() as u64,
        };
        if self.desc {
            if self.narrow() {
                u32::MAX as u64 - v
            } else {
                !v
            }
        } else {
            v
        }
    }
}

fn cmp_rows(keys: &[Key<'_>], a: u32, b: u32) -> Ordering {
    for k in keys {
        match k.cmp(a, b) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    a.cmp(&b)
}

/// Sort `rows` (in increasing row order) by `keys`.
///
/// Null and absent rows are sorted by the remaining keys; a group of fewer
/// than two rows is already sorted, so the work stays linear in the number
/// of keys (never a recursion into empty groups, which doubled per key).
pub(crate) fn sort_rows(rows: Vec<u32>, keys: &[Key<'_>]) -> Vec<u32> {
    if rows.len() < 2 {
        return rows;
    }
    let Some((k0, rest)) = keys.split_first() else {
        return rows;
    };
    if rest.is_empty() && k0.exact() {
        return sort_one_exact(rows, k0);
    }
    let mut vals: Vec<(u64, u32)> = Vec::with_capacity(rows.len());
    let mut nulls = Vec::new();
    let mut absents = Vec::new();
    for r in rows {
        let c = k0.col.sort_cell(r as usize);
        match c.class() {
            Class::Value => vals.push((k0.enc(c), r)),
            Class::Null => nulls.push(r),
            Class::Absent => absents.push(r),
        }
    }
    let mut out: Vec<u32> = {
        let exact = k0.exact();
        vals.sort_unstable_by(|x, y| {
            x.0.cmp(&y.0).then_with(|| {
                let o = if exact {
                    Ordering::Equal
                } else {
                    k0.cmp(x.1, y.1)
                };
                o.then_with(|| cmp_rows(rest, x.1, y.1))
            })
        });
        vals.into_iter().map(|(_, r)| r).collect()
    };
    out.extend(sort_rows(nulls, rest));
    out.extend(sort_rows(absents, rest));
    out
}

/// The first `k` rows of [`sort_rows`]`(rows, keys)`, in that order,
/// without sorting every row: what a page near the start of a sorted
/// result needs (`colsnap query --sort title --page 3` reads 150 of a
/// million rows). The sort's order is total (keys, then row order), so the
/// `k` smallest rows under it are exactly the full sort's first `k`.
/// One exact key: a bounded max-heap of `(class, encoding, row)` over one
/// pass (most rows cost one comparison with the heap's top); other keys:
/// a selection by the full comparison. Then the `k` rows are sorted.
pub(crate) fn top_rows(rows: Vec<u32>, keys: &[Key<'_>], k: usize) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    if keys.is_empty() || rows.len() <= k {
        let mut out = sort_rows(rows, keys);
        out.truncate(k);
        return out;
    }
    let mut top: Vec<u32> = match keys {
        [k0] if k0.exact() => match (&k0.col.offsets, &k0.col.values) {
            // One string a row: class and key packed in one integer, read
            // straight from the keys (the order of the general case).
            (None, Values::Str(ks)) => {
                let desc = k0.desc;
                heap_top(&rows, k, |r| match ks[r as usize] {
                    ABSENT => (Class::Absent as u64) << 32,
                    NULL => (Class::Null as u64) << 32,
                    key => u64::from(if desc { u32::MAX - key } else { key }),
                })
            }
            _ => heap_top(&rows, k, |r| {
                let c = k0.col.sort_cell(r as usize);
                let class = c.class();
                let e = if class == Class::Value { k0.enc(c) } else { 0 };
                (class, e)
            }),
        },
        _ => {
            let mut rows = rows;
            rows.select_nth_unstable_by(k - 1, |&a, &b| cmp_rows(keys, a, b));
            rows.truncate(k);
            rows
        }
    };
    // `sort_rows` takes rows in increasing order (its ties keep it).
    top.sort_unstable();
    sort_rows(top, keys)
}

/// The `k` rows of least `(key(row), row)`, in no order: one pass with a
/// heap of `k` (most rows cost one comparison with its top).
fn heap_top<T: Ord>(rows: &[u32], k: usize, key: impl Fn(u32) -> T) -> Vec<u32> {
    let mut heap = std::collections::BinaryHeap::with_capacity(k + 1);
    for &r in rows {
        let t = (key(r), r);
        if heap.len() < k {
            heap.push(t);
        } else if let Some(mut worst) = heap.peek_mut()
            && t < *worst
        {
            *worst = t;
        }
    }
    heap.into_iter().map(|(_, r)| r).collect()
}

/// Keep in `rows` those whose cell under `k` is a value (the least and
/// greatest encodings into `lo`, `hi`), the others moved to `nulls` and
/// `absents`, each in row order.
fn classify(
    rows: &mut Vec<u32>,
    k: &Key<'_>,
    nulls: &mut Vec<u32>,
    absents: &mut Vec<u32>,
    lo: &mut u64,
    hi: &mut u64,
) {
    rows.retain(|&r| {
        let c = k.col.sort_cell(r as usize);
        match c.class() {
            Class::Value => {
                let e = k.enc(c);
                *lo = (*lo).min(e);
                *hi = (*hi).max(e);
                true
            }
            Class::Null => {
                nulls.push(r);
                false
            }
            Class::Absent => {
                absents.push(r);
                false
            }
        }
    });
}

/// Sort `rows` (in increasing row order) by one key whose encoding orders
/// values exactly: values (by encoding, ties in row order), then nulls,
/// then absent values. When the encodings (less the smallest) fit 32
/// bits, the rows are radix-sorted: a stable counting sort per 11-bit
/// digit of the row's key keeps the rows' order among equal keys, in a
/// few linear passes (a comparison sort of a million rows takes several
/// times longer, in WebAssembly most of all), and its memory is the rows,
/// one buffer of rows (the keys are read from the column).
fn sort_one_exact(mut rows: Vec<u32>, k: &Key<'_>) -> Vec<u32> {
    // Every row of the column, in order (a query without a filter): the
    // rows can be made again from their count and the null and absent
    // ones, so the sort writes into this one buffer (a browser's memory,
    // which never shrinks, grows by the sort's peak).
    let all = k.col.offsets.is_none()
        && rows.len() == k.col.values.len()
        && rows.iter().enumerate().all(|(i, &r)| r as usize == i);
    let mut nulls = Vec::new();
    let mut absents = Vec::new();
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    if let (Values::Str(v), None) = (&k.col.values, &k.col.offsets) {
        // A string column's cells are ids, NULL and ABSENT: classified
        // from the ids themselves in one tight pass (no cell built per
        // row); `enc` is `k.enc(Cell::Str(id))` with its tests hoisted.
        let (desc, narrow) = (k.desc, k.narrow());
        let enc = |id: u32| match (desc, narrow) {
            (false, _) => u64::from(id),
            (true, true) => u64::from(u32::MAX - id),
            (true, false) => !u64::from(id),
        };
        let mut kept = 0usize;
        for i in 0..rows.len() {
            let r = rows[i];
            match v[r as usize] {
                ABSENT => absents.push(r),
                NULL => nulls.push(r),
                id => {
                    let e = enc(id);
                    lo = lo.min(e);
                    hi = hi.max(e);
                    rows[kept] = r;
                    kept += 1;
                }
            }
        }
        rows.truncate(kept);
    } else {
        classify(&mut rows, k, &mut nulls, &mut absents, &mut lo, &mut hi);
    }
    let enc = |r: u32| k.enc(k.col.sort_cell(r as usize));
    if rows.len() < 256 || hi - lo > u64::from(u32::MAX) {
        // Few rows, or keys wider than 32 bits: a stable comparison sort.
        rows.sort_by_key(|&r| enc(r));
    } else {
        // Each pass reads a row's key from the column itself (no array of
        // keys: 4 bytes a row less at the sort's peak, in a browser's
        // memory that never shrinks); every row left is a value. The low
        // 32 bits of an encoding less `lo` are the key (it fits 32 bits).
        let bits = 32 - ((hi - lo) as u32).leading_zeros();
        let lo32 = lo as u32;
        // Descending: enc = MAX - v (32-bit keys) or !v, so enc - lo is
        // (MAX - lo) - v = !v - lo in the low 32 bits.
        let flip = if k.desc { u32::MAX } else { 0 };
        let skip = [&nulls[..], &absents[..]];
        match (&k.col.values, &k.col.offsets) {
            (Values::Str(v), None) => radix(&mut rows, all, skip, &Lin(v, flip, lo32), bits),
            (Values::Int { v, .. }, None) | (Values::Time { secs: v, .. }, None) => {
                radix(&mut rows, all, skip, &Lin(v, flip, lo32), bits)
            }
            _ => radix(&mut rows, all, skip, &Enc(|r| (enc(r) - lo) as u32), bits),
        }
    }
    rows.extend(nulls);
    rows.extend(absents);
    rows
}

/// A row's 32-bit radix key.
trait RowKey {
    fn key(&self, r: u32) -> u32;
}

/// Values whose low 32 bits order them once the smallest is taken away
/// (`u32` string keys; `i64` values and seconds, whose encoding flips the
/// sign bit, outside the low 32 bits).
trait Low32: Copy {
    fn low32(self) -> u32;
}

impl Low32 for u32 {
    #[inline(always)]
    fn low32(self) -> u32 {
        self
    }
}

impl Low32 for i64 {
    #[inline(always)]
    fn low32(self) -> u32 {
        self as u32
    }
}

/// The value's low 32 bits, complemented when descending (`.1` is
/// `u32::MAX`), less the smallest encoding's (`.2`): one key type for both
/// directions (one copy of the sort's code each).
struct Lin<'a, T>(&'a [T], u32, u32);

impl<T: Low32> RowKey for Lin<'_, T> {
    #[inline(always)]
    fn key(&self, r: u32) -> u32 {
        (self.0[r as usize].low32() ^ self.1).wrapping_sub(self.2)
    }
}

/// Any other column: through the cell's encoding.
struct Enc<F>(F);

impl<F: Fn(u32) -> u32> RowKey for Enc<F> {
    #[inline(always)]
    fn key(&self, r: u32) -> u32 {
        (self.0)(r)
    }
}

/// Stable radix sort of `rows` by `key.key(row)` (`bits` bits): when
/// `all`, `rows` are every row below their count plus those of `skip`,
/// less those, and are made again rather than read, so that their buffer
/// takes the result; else any rows in increasing order, read from `rows`
/// into a second buffer that becomes the result.
fn radix(rows: &mut Vec<u32>, all: bool, skip: [&[u32]; 2], key: &impl RowKey, bits: u32) {
    if all {
        let n = (rows.len() + skip[0].len() + skip[1].len()) as u32;
        radix_msd(rows, Rows::All { n, skip }, key, bits);
    } else {
        let mut out = vec![0u32; rows.len()];
        radix_msd(&mut out, Rows::Listed(rows), key, bits);
        *rows = out;
    }
}

/// The rows a radix sort reads, in increasing order.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// Every row below `n` but those of `skip` (each list increasing).
    All { n: u32, skip: [&'a [u32]; 2] },
    /// These rows.
    Listed(&'a [u32]),
}

impl Rows<'_> {
    /// Call `f` with every row, in increasing order.
    #[inline(always)]
    fn each(self, mut f: impl FnMut(u32)) {
        match self {
            Rows::All { n, skip } => {
                let (mut a, mut b) = (0, 0);
                for r in 0..n {
                    if skip[0].get(a) == Some(&r) {
                        a += 1;
                    } else if skip[1].get(b) == Some(&r) {
                        b += 1;
                    } else {
                        f(r);
                    }
                }
            }
            Rows::Listed(rows) => rows.iter().for_each(|&r| f(r)),
        }
    }
}

/// Buckets of at most this many rows are finished by sorting (low key,
/// row) pairs; larger ones by LSD passes through a buffer of their size.
const SMALL_BUCKET: usize = 4096;

/// Stable radix sort by `key.key(row)` (`bits` bits) of `rows` into `out`
/// (as long): one counting pass and one scatter by the top digit (11
/// bits), then each bucket by the remaining bits, small buckets as sorted
/// (key, row) pairs, larger ones by LSD passes through a buffer of the
/// largest one's size. Memory beyond `out` (and the rows when listed):
/// that buffer, nothing for keys of 11 bits or fewer, little when the keys
/// spread (a million titles: buckets of a few hundred rows).
fn radix_msd(out: &mut [u32], rows: Rows<'_>, key: &impl RowKey, bits: u32) {
    const BITS: u32 = 11;
    let top = BITS.min(bits);
    let shift = bits - top;
    let mask = (1u32 << top) - 1;
    let digit = |r: u32| ((key.key(r) >> shift) & mask) as usize;
    let mut start = vec![0usize; (1 << top) + 1];
    rows.each(|r| start[digit(r) + 1] += 1);
    for d in 0..1 << top {
        start[d + 1] += start[d];
    }
    let mut at = start.clone();
    rows.each(|r| {
        let d = digit(r);
        out[at[d]] = r;
        at[d] += 1;
    });
    if shift == 0 {
        return;
    }
    let low = (1u32 << shift) - 1;
    let largest = start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let mut pairs: Vec<u64> = Vec::with_capacity(largest.min(SMALL_BUCKET));
    let mut tmp: Vec<u32> = Vec::new();
    for w in start.windows(2) {
        let bucket = &mut out[w[0]..w[1]];
        if bucket.len() < 2 {
            continue;
        }
        if bucket.len() <= SMALL_BUCKET {
            // Rows are unique, so the pairs' order is the stable order.
            pairs.clear();
            pairs.extend(
                bucket
                    .iter()
                    .map(|&r| (u64::from(key.key(r) & low) << 32) | u64::from(r)),
            );
            pairs.sort_unstable();
            for (slot, p) in bucket.iter_mut().zip(&pairs) {
                *slot = *p as u32;
            }
        } else {
            tmp.resize(bucket.len(), 0);
            lsd(bucket, &mut tmp, &|r| key.key(r) & low, shift);
        }
    }
}

/// Stable LSD radix sort of `rows` by `key(row)` (`bits` bits, 11 a pass,
/// a pass whose digit is the same for every row skipped) through `tmp`,
/// as long as `rows`. Only for large buckets: one copy of the code for
/// every key (a call through a pointer per row and pass).
fn lsd(rows: &mut [u32], tmp: &mut [u32], key: &dyn Fn(u32) -> u32, bits: u32) {
    const BITS: u32 = 11;
    let mut count = vec![0usize; 1 << BITS];
    let (mut from, mut to) = (&mut *rows, &mut *tmp);
    let mut in_tmp = false;
    let mut shift = 0;
    while shift < bits {
        let width = BITS.min(bits - shift);
        let mask = (1u32 << width) - 1;
        let count = &mut count[..1 << width];
        count.fill(0);
        for &r in from.iter() {
            count[((key(r) >> shift) & mask) as usize] += 1;
        }
        if count.contains(&from.len()) {
            shift += width;
            continue;
        }
        let mut at = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = at;
            at += n;
        }
        for &r in from.iter() {
            let d = ((key(r) >> shift) & mask) as usize;
            to[count[d]] = r;
            count[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        in_tmp = !in_tmp;
        shift += width;
    }
    if in_tmp {
        rows.copy_from_slice(tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::bits::Bits;
    use crate::query::loaded::Missing;
    use proptest::prelude::*;

    fn column(values: Values) -> Column {
        Column {
            path: "c".into(),
            ty: crate::model::ColumnType::String,
            values,
            offsets: None,
            keyspace: 0,
        }
    }

    /// The comparison sort every exact single key used before the radix sort.
    fn reference(rows: &[u32], k: &Key<'_>) -> Vec<u32> {
        let mut v = rows.to_vec();
        v.sort_by(|&a, &b| k.cmp(a, b).then(a.cmp(&b)));
        v
    }

    proptest! {
        #[test]
        fn radix_sort_of_strings_is_the_comparison_sort(
            ids in proptest::collection::vec(prop_oneof![8 => 0u32..40, 1 => Just(NULL), 1 => Just(ABSENT), 1 => 0u32..4_000_000], 0..900),
            desc in any::<bool>(),
            keep in any::<u64>(),
        ) {
            let c = column(Values::Str(ids.clone()));
            let k = Key { col: &c, desc };
            let rows: Vec<u32> = (0..ids.len() as u32).filter(|r| keep >> (r % 64) & 1 == 1 || keep == 0).collect();
            prop_assert_eq!(sort_rows(rows.clone(), std::slice::from_ref(&k)), reference(&rows, &k));
        }

        #[test]
        fn radix_sort_of_integers_is_the_comparison_sort(
            v in proptest::collection::vec(prop_oneof![4 => -50i64..50, 2 => any::<i64>(), 1 => Just(i64::MIN), 1 => Just(i64::MAX)], 0..900),
            miss in proptest::collection::vec(0u8..6, 900),
            desc in any::<bool>(),
        ) {
            let n = v.len();
            let mut m = Missing { null: Bits::new(n), absent: Bits::new(n) };
            for (i, &x) in miss.iter().enumerate().take(n) {
                match x { 0 => m.null.set(i), 1 => m.absent.set(i), _ => {} }
            }
            let c = column(Values::Int { v: v.clone(), missing: m });
            let k = Key { col: &c, desc };
            let rows: Vec<u32> = (0..n as u32).collect();
            prop_assert_eq!(sort_rows(rows.clone(), std::slice::from_ref(&k)), reference(&rows, &k));
        }
    }

    proptest! {
        #[test]
        fn top_rows_are_the_sorts_first_rows(
            ids in proptest::collection::vec(prop_oneof![8 => 0u32..40, 1 => Just(NULL), 1 => Just(ABSENT)], 0..600),
            v in proptest::collection::vec(prop_oneof![4 => -5i64..5, 1 => any::<i64>()], 600),
            miss in proptest::collection::vec(0u8..6, 600),
            desc in any::<bool>(),
            desc2 in any::<bool>(),
            two in any::<bool>(),
            keep in any::<u64>(),
            k in 0usize..700,
        ) {
            let n = ids.len();
            let mut m = Missing { null: Bits::new(n), absent: Bits::new(n) };
            for (i, &x) in miss.iter().enumerate().take(n) {
                match x { 0 => m.null.set(i), 1 => m.absent.set(i), _ => {} }
            }
            let a = column(Values::Str(ids.clone()));
            let b = column(Values::Int { v: v[..n].to_vec(), missing: m });
            let mut keys = vec![Key { col: &a, desc }];
            if two {
                keys.push(Key { col: &b, desc: desc2 });
            }
            let rows: Vec<u32> = (0..n as u32).filter(|r| keep >> (r % 64) & 1 == 1 || keep == 0).collect();
            let mut full = sort_rows(rows.clone(), &keys);
            full.truncate(k);
            prop_assert_eq!(top_rows(rows.clone(), &keys, k), full.clone());
            // The integer key alone (exact, 64-bit encodings).
            let kb = [Key { col: &b, desc: desc2 }];
            let mut full_b = sort_rows(rows.clone(), &kb);
            full_b.truncate(k);
            prop_assert_eq!(top_rows(rows, &kb, k), full_b);
        }
    }

    #[test]
    fn keys_wider_than_32_bits_sort_by_comparison() {
        let n = 1000u32;
        let v: Vec<i64> = (0..n).map(|i| (i64::from(i % 37) - 18) << 40).collect();
        let mut m = Missing {
            null: Bits::new(n as usize),
            absent: Bits::new(n as usize),
        };
        m.null.set(5);
        m.absent.set(7);
        let c = column(Values::Int { v, missing: m });
        for desc in [false, true] {
            let k = Key { col: &c, desc };
            let rows: Vec<u32> = (0..n).collect();
            assert_eq!(
                sort_rows(rows.clone(), std::slice::from_ref(&k)),
                reference(&rows, &k)
            );
        }
    }

    #[test]
    fn sorting_every_row_in_one_buffer_is_the_comparison_sort() {
        // Every row (the one-buffer sort) and every third row (two
        // buffers): a top-digit bucket past SMALL_BUCKET (LSD passes
        // through a buffer), many small ones (sorted pairs), keys of 11
        // bits or fewer (the scatter alone), nulls and absent values among
        // them, ties in row order, both directions.
        let n = 30_000u32;
        let spread = |i: u32| -> u32 {
            match i % 10 {
                0..=5 => 1 << 24 | (i.wrapping_mul(2_654_435_761) >> 12), // one top bucket
                6 => NULL,
                7 => ABSENT,
                _ => i.wrapping_mul(40_503) % (1 << 25),
            }
        };
        let narrow = |i: u32| -> u32 {
            match i % 7 {
                0 => NULL,
                _ => i.wrapping_mul(7_919) % 1_500,
            }
        };
        for ids in [
            (0..n).map(spread).collect::<Vec<u32>>(),
            (0..n).map(narrow).collect(),
        ] {
            let c = column(Values::Str(ids));
            for desc in [false, true] {
                let k = Key { col: &c, desc };
                for rows in [(0..n).collect::<Vec<u32>>(), (0..n).step_by(3).collect()] {
                    assert_eq!(
                        sort_rows(rows.clone(), std::slice::from_ref(&k)),
                        reference(&rows, &k)
                    );
                }
            }
        }
    }

    #[test]
    fn radix_sort_of_many_rows_with_wide_keys() {
        // Past the small-input shortcut, several 11-bit passes, ties kept in row order.
        let n = 5000u32;
        let v: Vec<i64> = (0..n)
            .map(|i| (i64::from(i) * 7_919 % 1_013) << 20)
            .collect();
        let m = Missing {
            null: Bits::new(n as usize),
            absent: Bits::new(n as usize),
        };
        let c = column(Values::Int { v, missing: m });
        for desc in [false, true] {
            let k = Key { col: &c, desc };
            let rows: Vec<u32> = (0..n).collect();
            assert_eq!(
                sort_rows(rows.clone(), std::slice::from_ref(&k)),
                reference(&rows, &k)
            );
        }
    }
}
