//! Sorting, filtering and paging the overlay's view, with results equal to
//! those on a snapshot rebuilt from the replayed JSON.
//!
//! Semantics (the same for a plain snapshot, seen through an overlay with
//! no events):
//! - Filters keep rows in view order. `Eq` compares a cell with a JSON
//!   scalar (strings by text, numbers by JSON kind and value, `null`, bools);
//!   `Prefix` and `Contains` match the text of string and timestamp cells.
//! - `Sort` orders by value and keeps view order among equal values
//!   (stable). Groups in ascending order: booleans (false < true), numbers
//!   (numerically), strings (byte-wise), timestamps (chronologically),
//!   objects, arrays, null, absent. Descending reverses the value order.
//!   A column whose strings are all timestamps sorts chronologically;
//!   once it holds any other string every timestamp sorts by its text, as
//!   in a rebuilt snapshot (where such a column is stored as strings).
//! - Paging takes `limit` rows after skipping `offset`.

use super::overlay::{Cell, Overlay, is_timestamp};
use super::strkey::StrKey;
use crate::error::{Error, Result};
use crate::timestamp;
use serde_json::Value;
use std::cmp::Ordering;

/// A row filter on a column (a row-domain display path).
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// The cell equals a JSON scalar.
    Eq(String, Value),
    /// The cell is a string (or timestamp) starting with the text.
    Prefix(String, String),
    /// The cell is a string (or timestamp) containing the text.
    Contains(String, String),
}

/// A sort order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sort {
    /// Column path.
    pub path: String,
    /// Descending.
    pub desc: bool,
}

/// A query: filters (all must hold), an optional sort, a page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Sort order; view order when `None`.
    pub sort: Option<Sort>,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return at most.
    pub limit: Option<usize>,
}

/// Sort key of one cell. `Str`: the 3-case rank plus, for new strings,
/// an index into the query's texts.
#[derive(Clone, Copy, Debug)]
enum SortKey {
    Bool(bool),
    Num(f64, u8, i128),
    Str(u64, u32),
    Time(i64, u32),
    Object,
    Array,
    Null,
    Absent,
}

const NO_TEXT: u32 = u32::MAX;

impl SortKey {
    fn group(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Num(..) => 1,
            SortKey::Str(..) => 2,
            SortKey::Time(..) => 3,
            SortKey::Object => 4,
            SortKey::Array => 5,
            SortKey::Null => 6,
            SortKey::Absent => 7,
        }
    }

    fn cmp(&self, o: &SortKey, texts: &[Box<str>]) -> Ordering {
        match (self, o) {
            (SortKey::Bool(a), SortKey::Bool(b)) => a.cmp(b),
            (SortKey::Num(a, ka, ia), SortKey::Num(b, kb, ib)) => {
                a.total_cmp(b).then(ka.cmp(kb)).then(ia.cmp(ib))
            }
            (SortKey::Str(ra, ta), SortKey::Str(rb, tb)) => ra.cmp(rb).then_with(|| {
                if *ta == NO_TEXT || *tb == NO_TEXT || ta == tb {
                    Ordering::Equal
                } else {
                    texts[*ta as usize].cmp(&texts[*tb as usize])
                }
            }),
            (SortKey::Time(sa, na), SortKey::Time(sb, nb)) => sa.cmp(sb).then(na.cmp(nb)),
            _ => self.group().cmp(&o.group()),
        }
    }
}

fn num_key(c: Cell) -> Option<SortKey> {
    Some(match c {
        Cell::Int(i) => SortKey::Num(i as f64, 0, i as i128),
        Cell::UInt(u) => SortKey::Num(u as f64, 0, u as i128),
        Cell::Float(f) => SortKey::Num(f, 1, 0),
        _ => return None,
    })
}

impl Overlay<'_> {
    fn column_table(&self, path: &str) -> Option<crate::strings::StringTable> {
        let node = super::path::parse_path(path)
            .ok()
            .and_then(|k| self.snapshot().node_by_path(&super::path::join_path(&k)));
        self.table_for(node)
    }

    /// Which rows (by index into `cells`) pass `f`.
    fn filter_mask(&mut self, f: &Filter) -> Result<Vec<bool>> {
        let path = match f {
            Filter::Eq(p, _) | Filter::Prefix(p, _) | Filter::Contains(p, _) => p,
        };
        let (_, cells) = self.column(path)?;
        let table = self.column_table(path);
        let mut tmp = String::new();
        let mut text_of =
            |o: &Overlay<'_>, c: Cell, f: &mut dyn FnMut(&str) -> bool| -> Result<bool> {
                match c {
                    Cell::Str(k) => o.with_text(table.as_ref(), k, |s| f(s)),
                    Cell::Time(ts) => {
                        tmp.clear();
                        timestamp::format(&ts, &mut tmp);
                        Ok(f(&tmp))
                    }
                    _ => Ok(false),
                }
            };
        let mut mask = Vec::with_capacity(cells.len());
        match f {
            Filter::Eq(_, Value::String(lit)) => {
                let found = match &table {
                    Some(t) => t.find(lit)?,
                    None => Err(0),
                };
                let lit_ts = is_timestamp(lit).then(|| timestamp::parse(lit)).flatten();
                for &c in &cells {
                    mask.push(match c {
                        Cell::Str(StrKey::Table(id)) => found == Ok(id),
                        Cell::Str(k @ StrKey::New(_)) => {
                            found.is_err() && self.with_text(table.as_ref(), k, |s| s == lit)?
                        }
                        Cell::Time(ts) => lit_ts == Some(ts),
                        _ => false,
                    });
                }
            }
            Filter::Eq(_, lit) => {
                for &c in &cells {
                    mask.push(match (c, lit) {
                        (Cell::Null, Value::Null) => true,
                        (Cell::Bool(a), Value::Bool(b)) => a == *b,
                        (Cell::Int(a), Value::Number(n)) => n.is_i64() && n.as_i64() == Some(a),
                        (Cell::UInt(a), Value::Number(n)) => {
                            !n.is_i64() && n.is_u64() && n.as_u64() == Some(a)
                        }
                        (Cell::Float(a), Value::Number(n)) => n.is_f64() && n.as_f64() == Some(a),
                        (_, Value::Array(_) | Value::Object(_)) => {
                            return Err(Error::Invalid(
                                "equality filters take a string, number, boolean or null".into(),
                            ));
                        }
                        _ => false,
                    });
                }
            }
            Filter::Prefix(_, p) => {
                let range = match &table {
                    Some(t) => t.prefix_range(p)?,
                    None => 0..0,
                };
                for &c in &cells {
                    mask.push(match c {
                        Cell::Str(StrKey::Table(id)) => range.contains(&id),
                        c => text_of(self, c, &mut |s| s.starts_with(p.as_str()))?,
                    });
                }
            }
            Filter::Contains(_, n) => {
                for &c in &cells {
                    mask.push(text_of(self, c, &mut |s| s.contains(n.as_str()))?);
                }
            }
        }
        Ok(mask)
    }

    /// Sort keys of a column, with the texts new strings refer to.
    fn sort_keys(&mut self, path: &str) -> Result<(Vec<SortKey>, Vec<Box<str>>)> {
        let (slots, cells) = self.column(path)?;
        let table = self.column_table(path);
        // Does the view hold a string that is not a timestamp? Then every
        // timestamp of the column sorts as text (a rebuilt snapshot stores
        // the column as strings).
        let mut text_mode = false;
        for (&slot, &c) in slots.iter().zip(&cells) {
            if let Cell::Str(k) = c {
                if !self.is_snapshot_row(slot) {
                    // Strings of JSON rows that are timestamps became Time cells.
                    text_mode = true;
                    break;
                }
                if !self.with_text(table.as_ref(), k, is_timestamp)? {
                    text_mode = true;
                    break;
                }
            }
        }
        let mut texts: Vec<Box<str>> = Vec::new();
        let mut keys = Vec::with_capacity(cells.len());
        let mut tmp = String::new();
        for c in cells {
            let k = match c {
                Cell::Absent => SortKey::Absent,
                Cell::Null => SortKey::Null,
                Cell::Bool(b) => SortKey::Bool(b),
                Cell::Int(_) | Cell::UInt(_) | Cell::Float(_) => num_key(c).expect("number"),
                Cell::Object => SortKey::Object,
                Cell::Array => SortKey::Array,
                Cell::Str(k) if text_mode => match k {
                    StrKey::Table(_) => SortKey::Str(k.rank(), NO_TEXT),
                    StrKey::New(n) => {
                        texts.push(self.new_string(n).into());
                        SortKey::Str(k.rank(), (texts.len() - 1) as u32)
                    }
                },
                Cell::Str(k) => {
                    let ts = self
                        .with_text(table.as_ref(), k, timestamp::parse)?
                        .ok_or_else(|| Error::corrupt("overlay", 0, "timestamp expected"))?;
                    SortKey::Time(ts.secs, ts.nanos)
                }
                Cell::Time(ts) if text_mode => {
                    tmp.clear();
                    timestamp::format(&ts, &mut tmp);
                    let found = match &table {
                        Some(t) => t.find(&tmp)?,
                        None => Err(0),
                    };
                    match found {
                        Ok(id) => SortKey::Str(StrKey::Table(id).rank(), NO_TEXT),
                        Err(ins) => {
                            texts.push(tmp.as_str().into());
                            SortKey::Str(2 * ins as u64, (texts.len() - 1) as u32)
                        }
                    }
                }
                Cell::Time(ts) => SortKey::Time(ts.secs, ts.nanos),
            };
            keys.push(k);
        }
        Ok((keys, texts))
    }

    /// The slots of the view in the order of column `path` (stable).
    pub fn sorted_slots(&mut self, path: &str, desc: bool) -> Result<Vec<u32>> {
        let q = Query {
            sort: Some(Sort {
                path: path.into(),
                desc,
            }),
            ..Default::default()
        };
        self.query(&q)
    }

    /// Run a query; returns the slots of the page's rows, in order.
    pub fn query(&mut self, q: &Query) -> Result<Vec<u32>> {
        let slots = self.slots();
        let mut keep: Vec<usize> = (0..slots.len()).collect();
        for f in &q.filters {
            let mask = self.filter_mask(f)?;
            keep.retain(|&i| mask[i]);
        }
        if let Some(s) = &q.sort {
            let (keys, texts) = self.sort_keys(&s.path)?;
            if s.desc {
                keep.sort_by(|&a, &b| keys[b].cmp(&keys[a], &texts));
            } else {
                keep.sort_by(|&a, &b| keys[a].cmp(&keys[b], &texts));
            }
        }
        let end = match q.limit {
            Some(l) => q.offset.saturating_add(l).min(keep.len()),
            None => keep.len(),
        };
        let start = q.offset.min(end);
        Ok(keep[start..end].iter().map(|&i| slots[i]).collect())
    }

    /// Run a query; returns the page's rows as JSON.
    pub fn query_rows(&mut self, q: &Query) -> Result<Vec<Value>> {
        let slots = self.query(q)?;
        slots.into_iter().map(|s| self.row_value(s)).collect()
    }
}
