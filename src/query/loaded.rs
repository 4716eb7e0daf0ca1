//! Typed per-column arrays, loaded once per column and never holding a
//! decoded string: string cells are `u32` order keys.

use super::bits::Bits;
use crate::model::ColumnType;
use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

/// String key of an absent cell.
pub const ABSENT: u32 = u32::MAX;
/// String key of a null cell.
pub const NULL: u32 = u32::MAX - 1;
/// Bool cell value for null.
pub const BOOL_NULL: u8 = 2;
/// Bool cell value for absent.
pub const BOOL_ABSENT: u8 = 3;

/// One cell of any kind. String cells carry their order key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// The key is not there.
    Absent,
    /// JSON null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer in `i64` range.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string, by order key.
    Str(u32),
    /// A timestamp: UTC seconds and nanoseconds.
    Time(i64, u32),
    /// An object (objects compare equal to each other).
    Object,
    /// An array of this many elements (arrays compare by length).
    Array(u32),
}

/// Where a cell sorts: values first, then null, then absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Has a value.
    Value = 0,
    /// JSON null (or an empty list).
    Null = 1,
    /// Absent.
    Absent = 2,
}

impl Cell {
    /// The cell's class.
    pub fn class(&self) -> Class {
        match self {
            Cell::Absent => Class::Absent,
            Cell::Null => Class::Null,
            _ => Class::Value,
        }
    }

    /// Rank of the kind family among values: bool < number < string <
    /// timestamp < object < array.
    pub fn rank(&self) -> u8 {
        match self {
            Cell::Bool(_) => 0,
            Cell::Int(_) | Cell::UInt(_) | Cell::Float(_) => 1,
            Cell::Str(_) => 2,
            Cell::Time(..) => 3,
            Cell::Object => 4,
            Cell::Array(_) => 5,
            Cell::Null => 6,
            Cell::Absent => 7,
        }
    }

    /// Order of two cells of class `Value`, ascending (kind rank, then value).
    pub fn cmp_value(&self, o: &Cell) -> Ordering {
        match (self, o) {
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Str(a), Cell::Str(b)) => a.cmp(b),
            (Cell::Time(a, an), Cell::Time(b, bn)) => (a, an).cmp(&(b, bn)),
            (Cell::Array(a), Cell::Array(b)) => a.cmp(b),
            (Cell::Object, Cell::Object) => Ordering::Equal,
            _ => match (self.num(), o.num()) {
                (Some(a), Some(b)) => a.cmp_num(&b),
                _ => self.rank().cmp(&o.rank()),
            },
        }
    }

    /// The number in a numeric cell.
    pub fn num(&self) -> Option<Num> {
        match *self {
            Cell::Int(v) => Some(Num::Int(v)),
            Cell::UInt(v) => Some(Num::UInt(v)),
            Cell::Float(v) => Some(Num::Float(v)),
            _ => None,
        }
    }
}

/// A JSON number, compared exactly across representations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// In `i64` range.
    Int(i64),
    /// Above `i64::MAX`.
    UInt(u64),
    /// Binary64 (finite).
    Float(f64),
}

impl Num {
    /// Exact numeric order (`1` equals `1.0`).
    pub fn cmp_num(&self, o: &Num) -> Ordering {
        match (self.int(), o.int()) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(a), None) => cmp_int_float(a, o.float()),
            (None, Some(b)) => cmp_int_float(b, self.float()).reverse(),
            // As numbers: `-0.0` equals `0.0` as both equal `0`, so that
            // the order is total (with `total_cmp`, -0.0 < 0.0 while both
            // equalled 0: a sort could order them either way, or panic).
            // JSON has no NaN.
            (None, None) => {
                let (a, b) = (self.float(), o.float());
                a.partial_cmp(&b).unwrap_or_else(|| a.total_cmp(&b))
            }
        }
    }

    fn int(&self) -> Option<i128> {
        match *self {
            Num::Int(v) => Some(v as i128),
            Num::UInt(v) => Some(v as i128),
            Num::Float(_) => None,
        }
    }

    fn float(&self) -> f64 {
        match *self {
            Num::Int(v) => v as f64,
            Num::UInt(v) => v as f64,
            Num::Float(v) => v,
        }
    }
}

/// Compare an integer with a finite float exactly.
fn cmp_int_float(i: i128, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Less;
    }
    if f >= 1.7e38 {
        return Ordering::Less;
    }
    if f <= -1.7e38 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    match i.cmp(&(t as i128)) {
        Ordering::Equal => {
            if f > t {
                Ordering::Less
            } else if f < t {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        o => o,
    }
}

/// Null and absent bitmaps of a typed column.
#[derive(Clone, Debug)]
pub struct Missing {
    /// Items that are JSON null.
    pub null: Bits,
    /// Items that are absent.
    pub absent: Bits,
}

impl Missing {
    /// Class of item `i`.
    #[inline]
    pub fn class(&self, i: usize) -> Class {
        if self.absent.get(i) {
            Class::Absent
        } else if self.null.get(i) {
            Class::Null
        } else {
            Class::Value
        }
    }
}

/// One typed array per column; one entry per item of the column's domain.
#[derive(Clone, Debug)]
pub enum Values {
    /// Strings: order keys, with [`NULL`] and [`ABSENT`] sentinels (4 bytes a cell).
    Str(Vec<u32>),
    /// `i64` integers (8 bytes a cell) plus null/absent bitmaps.
    Int {
        /// Values (0 where missing).
        v: Vec<i64>,
        /// Which items are null or absent.
        missing: Missing,
    },
    /// Timestamps by UTC instant.
    Time {
        /// UTC seconds (0 where missing).
        secs: Vec<i64>,
        /// Nanoseconds; empty when every value has none.
        nanos: Vec<u32>,
        /// Which items are null or absent.
        missing: Missing,
    },
    /// Booleans: 0, 1, [`BOOL_NULL`], [`BOOL_ABSENT`].
    Bool(Vec<u8>),
    /// Objects: 0 = an object, [`BOOL_NULL`], [`BOOL_ABSENT`] (also null-only columns).
    Object(Vec<u8>),
    /// Arrays: element counts, with [`NULL`] and [`ABSENT`] sentinels.
    List(Vec<u32>),
    /// Everything else (`u64`, `f64`, mixed numbers, mixed kinds, objects,
    /// arrays, null-only): one [`Cell`] per item.
    Any(Vec<Cell>),
}

impl Values {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            Values::Str(v) => v.len(),
            Values::Int { v, .. } => v.len(),
            Values::Time { secs, .. } => secs.len(),
            Values::Bool(v) => v.len(),
            Values::Object(v) => v.len(),
            Values::List(v) => v.len(),
            Values::Any(v) => v.len(),
        }
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Item `i` as a cell.
    #[inline]
    pub fn cell(&self, i: usize) -> Cell {
        match self {
            Values::Str(v) => match v[i] {
                ABSENT => Cell::Absent,
                NULL => Cell::Null,
                k => Cell::Str(k),
            },
            Values::Int { v, missing } => match missing.class(i) {
                Class::Value => Cell::Int(v[i]),
                Class::Null => Cell::Null,
                Class::Absent => Cell::Absent,
            },
            Values::Time {
                secs,
                nanos,
                missing,
            } => match missing.class(i) {
                Class::Value => Cell::Time(secs[i], nanos.get(i).copied().unwrap_or(0)),
                Class::Null => Cell::Null,
                Class::Absent => Cell::Absent,
            },
            Values::Bool(v) => match v[i] {
                0 => Cell::Bool(false),
                1 => Cell::Bool(true),
                BOOL_NULL => Cell::Null,
                _ => Cell::Absent,
            },
            Values::Object(v) => match v[i] {
                0 => Cell::Object,
                BOOL_NULL => Cell::Null,
                _ => Cell::Absent,
            },
            Values::List(v) => match v[i] {
                ABSENT => Cell::Absent,
                NULL => Cell::Null,
                n => Cell::Array(n),
            },
            Values::Any(v) => v[i],
        }
    }

    /// Bytes held by the arrays.
    pub fn heap_bytes(&self) -> usize {
        let m = |m: &Missing| m.null.heap_bytes() + m.absent.heap_bytes();
        match self {
            Values::Str(v) => v.len() * 4,
            Values::Int { v, missing } => v.len() * 8 + m(missing),
            Values::Time {
                secs,
                nanos,
                missing,
            } => secs.len() * 8 + nanos.len() * 4 + m(missing),
            Values::Bool(v) | Values::Object(v) => v.len(),
            Values::List(v) => v.len() * 4,
            Values::Any(v) => v.len() * std::mem::size_of::<Cell>(),
        }
    }
}

/// A loaded column: its typed values plus, for columns inside arrays, the
/// item range of every row.
#[derive(Clone, Debug)]
pub struct Column {
    /// Display path.
    pub path: String,
    /// Column type.
    pub ty: ColumnType,
    /// One value per item.
    pub values: Values,
    /// For columns inside arrays (`labels[].name`): `rows + 1` offsets, the
    /// items of row `r` being `offsets[r]..offsets[r + 1]`. `None` when the
    /// column has one item per row.
    pub offsets: Option<Arc<Vec<u32>>>,
    /// Identifies the key space of string cells: columns with the same
    /// `keyspace` share keys (for a snapshot, the string table).
    pub keyspace: u32,
}

impl Column {
    /// True for columns inside arrays (several items per row).
    pub fn is_list(&self) -> bool {
        self.offsets.is_some()
    }

    /// Rows the column holds.
    pub fn rows(&self) -> usize {
        match &self.offsets {
            None => self.values.len(),
            Some(o) => o.len().saturating_sub(1),
        }
    }

    /// Items of row `r`.
    #[inline]
    pub fn items(&self, r: usize) -> Range<usize> {
        match &self.offsets {
            None => r..r + 1,
            Some(o) => o[r] as usize..o[r + 1] as usize,
        }
    }

    /// The cell a row sorts by: its value, or for list columns the first
    /// element's value (`Null` when the row has no elements).
    #[inline]
    pub fn sort_cell(&self, r: usize) -> Cell {
        match &self.offsets {
            None => self.values.cell(r),
            Some(o) => {
                if o[r] == o[r + 1] {
                    Cell::Null
                } else {
                    self.values.cell(o[r] as usize)
                }
            }
        }
    }

    /// Bytes held by the arrays.
    pub fn heap_bytes(&self) -> usize {
        self.values.heap_bytes() + self.offsets.as_ref().map_or(0, |o| o.len() * 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_exactly() {
        use Num::*;
        assert_eq!(Int(1).cmp_num(&Float(1.0)), Ordering::Equal);
        // A total order: 0, -0.0 and 0.0 are all equal.
        for (a, b) in [
            (Float(-0.0), Float(0.0)),
            (Int(0), Float(-0.0)),
            (Int(0), Float(0.0)),
        ] {
            assert_eq!(a.cmp_num(&b), Ordering::Equal, "{a:?} {b:?}");
            assert_eq!(b.cmp_num(&a), Ordering::Equal, "{a:?} {b:?}");
        }
        assert_eq!(Int(1).cmp_num(&Float(1.5)), Ordering::Less);
        assert_eq!(Float(-0.5).cmp_num(&Int(0)), Ordering::Less);
        assert_eq!(Int(-1).cmp_num(&Float(-1.5)), Ordering::Greater);
        assert_eq!(UInt(u64::MAX).cmp_num(&Int(i64::MAX)), Ordering::Greater);
        assert_eq!(
            Int(i64::MAX).cmp_num(&Float(9_223_372_036_854_775_808.0)),
            Ordering::Less
        );
        assert_eq!(Int(3).cmp_num(&Float(1e300)), Ordering::Less);
    }

    #[test]
    fn cells_rank_then_value() {
        assert_eq!(Cell::Bool(true).cmp_value(&Cell::Int(0)), Ordering::Less);
        assert_eq!(Cell::Str(5).cmp_value(&Cell::Str(2)), Ordering::Greater);
        assert_eq!(
            Cell::Time(1, 5).cmp_value(&Cell::Time(1, 4)),
            Ordering::Greater
        );
        assert_eq!(Cell::Array(2).cmp_value(&Cell::Object), Ordering::Greater);
    }
}
