//! Case-insensitive substring search: one pass over each searched string
//! table collects the matching keys, then rows are filtered by key.

use super::bits::Bits;
use super::loaded::{Cell, Column, Values};
use super::source::RowSource;
use crate::error::Result;

/// Rows where any of `cols` holds a string containing `needle`
/// (both lowercased with Unicode `to_lowercase`).
pub(crate) fn search_rows(src: &dyn RowSource, cols: &[&Column], needle: &str) -> Result<Bits> {
    let rows = src.rows();
    let lower = needle.to_lowercase();
    let sets = src.search_keys(cols, &lower)?;
    let mut out = Bits::new(rows);
    for (col, set) in cols.iter().zip(&sets) {
        let hit = |i: usize| match &col.values {
            Values::Str(keys) => set.get(keys[i] as usize),
            v => matches!(v.cell(i), Cell::Str(k) if set.get(k as usize)),
        };
        match &col.offsets {
            None => {
                for r in 0..rows {
                    if hit(r) {
                        out.set(r);
                    }
                }
            }
            Some(o) => {
                for r in 0..rows {
                    if (o[r]..o[r + 1]).any(|i| hit(i as usize)) {
                        out.set(r);
                    }
                }
            }
        }
    }
    Ok(out)
}
