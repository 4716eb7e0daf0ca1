//! Stable multi-key sort over typed arrays. Values first, then nulls, then
//! absent values, whatever the direction; ties keep row order.

use super::loaded::{Cell, Class, Column, Values};
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
    let mut out: Vec<u32> = if rest.is_empty() && k0.exact() && k0.narrow() {
        // One 32-bit key: sort plain u64s (key, row).
        let mut packed: Vec<u64> = vals.iter().map(|&(e, r)| e << 32 | r as u64).collect();
        drop(vals);
        packed.sort_unstable();
        packed.into_iter().map(|p| p as u32).collect()
    } else if rest.is_empty() && k0.exact() {
        // One exact 64-bit key (ints, timestamps without fractions): the
        // (key, row) pairs' own order is the result, ties by row.
        vals.sort_unstable();
        vals.into_iter().map(|(_, r)| r).collect()
    } else {
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
