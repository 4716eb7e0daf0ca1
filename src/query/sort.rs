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
        [k0] if k0.exact() => {
            let mut heap = std::collections::BinaryHeap::with_capacity(k + 1);
            for &r in &rows {
                let c = k0.col.sort_cell(r as usize);
                let class = c.class();
                let e = if class == Class::Value { k0.enc(c) } else { 0 };
                let t = (class, e, r);
                if heap.len() < k {
                    heap.push(t);
                } else if let Some(mut worst) = heap.peek_mut()
                    && t < *worst
                {
                    *worst = t;
                }
            }
            heap.into_iter().map(|(_, _, r)| r).collect()
        }
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
        // (MAX - lo) - v in the low 32 bits.
        let from = u32::MAX.wrapping_sub(lo32);
        match (&k.col.values, &k.col.offsets, k.desc) {
            (Values::Str(v), None, false) => radix_sort(&mut rows, &Asc(v, lo32), bits),
            (Values::Str(v), None, true) => radix_sort(&mut rows, &Desc(v, from), bits),
            (Values::Int { v, .. }, None, false) | (Values::Time { secs: v, .. }, None, false) => {
                radix_sort(&mut rows, &Asc(v, lo32), bits)
            }
            (Values::Int { v, .. }, None, true) | (Values::Time { secs: v, .. }, None, true) => {
                radix_sort(&mut rows, &Desc(v, from), bits)
            }
            _ => radix_sort(&mut rows, &Enc(|r| (enc(r) - lo) as u32), bits),
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

/// Ascending: the value less the smallest encoding.
struct Asc<'a, T>(&'a [T], u32);

impl<T: Low32> RowKey for Asc<'_, T> {
    #[inline(always)]
    fn key(&self, r: u32) -> u32 {
        self.0[r as usize].low32().wrapping_sub(self.1)
    }
}

/// Descending: (MAX less the smallest encoding) less the value.
struct Desc<'a, T>(&'a [T], u32);

impl<T: Low32> RowKey for Desc<'_, T> {
    #[inline(always)]
    fn key(&self, r: u32) -> u32 {
        self.1.wrapping_sub(self.0[r as usize].low32())
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

/// Stable LSD radix sort of `rows` by `key.key(row)`, whose values have
/// `bits` bits (11 bits a pass; a pass whose digit is the same for every
/// row is skipped).
fn radix_sort(rows: &mut Vec<u32>, key: &impl RowKey, bits: u32) {
    const BITS: u32 = 11;
    let mut tmp = vec![0u32; rows.len()];
    let mut count = vec![0usize; 1 << BITS];
    let mut shift = 0;
    while shift < bits {
        let width = BITS.min(bits - shift);
        let mask = (1u32 << width) - 1;
        let count = &mut count[..1 << width];
        count.fill(0);
        for &r in rows.iter() {
            count[((key.key(r) >> shift) & mask) as usize] += 1;
        }
        if count.contains(&rows.len()) {
            shift += width;
            continue;
        }
        let mut at = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = at;
            at += n;
        }
        for &r in rows.iter() {
            let d = ((key.key(r) >> shift) & mask) as usize;
            tmp[count[d]] = r;
            count[d] += 1;
        }
        std::mem::swap(rows, &mut tmp);
        shift += width;
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
