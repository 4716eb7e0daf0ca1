//! Sort, filter, search and page a snapshot without decoding strings.
//!
//! The engine loads each column it needs once, as typed arrays
//! ([`loaded::Values`]): string cells are `u32` order keys (the string ids of
//! the snapshot's sorted tables), so sorting and filtering compare integers
//! only. String literals are resolved to key ranges once
//! ([`RowSource::find_str`], [`RowSource::prefix_keys`]); a search scans each
//! searched string table once. Only the rows of the requested page are
//! turned into JSON, decoding only the string chunks they reference.
//!
//! The engine reads its data through the [`RowSource`] trait, so the same
//! code runs over a plain snapshot ([`SnapshotSource`]) or any other source
//! of typed columns (an overlay of edit events, for instance).
//!
//! Semantics (ordering, nulls, lists, case folding, CLI grammar) are
//! documented in `docs/query.md`.

pub mod bits;
mod filter;
pub mod loaded;
pub mod parse;
mod search;
mod sort;
pub mod source;

pub use bits::Bits;
pub use filter::{parse_num, parse_time};
pub use loaded::{Cell, Column, Num, Values};
pub use source::{FieldInfo, RowSource, SnapshotSource, contains_folded};

use crate::error::{Error, Result};
use crate::timestamp::Timestamp;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A filter operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Equal to the value.
    Eq,
    /// Not equal: every row that `Eq` does not match (nulls included).
    Ne,
    /// Equal to any of the values.
    In,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// A string starting with the value.
    Prefix,
    /// No value: null or absent (for lists: no element has a value).
    IsNull,
    /// Has a value.
    NotNull,
    /// Absent (for lists: no element is present).
    IsAbsent,
    /// Present (null counts as present).
    NotAbsent,
}

impl Op {
    /// The operator as written on the command line.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::In => "in",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Prefix => "^=",
            Op::IsNull => "=null",
            Op::NotNull => "!=null",
            Op::IsAbsent => "=absent",
            Op::NotAbsent => "!=absent",
        }
    }
}

/// A filter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// Text typed by the column: a string for string columns, a number for
    /// numeric ones, `true`/`false` for bools, RFC 3339 or `YYYY-MM-DD` for
    /// timestamps (every applicable reading for mixed columns).
    Text(String),
    /// Always a string (matches string cells, and timestamps it parses as).
    Str(String),
    /// An integer.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp (compared by instant).
    Time(Timestamp),
}

impl Literal {
    /// The literal for messages.
    pub fn display(&self) -> String {
        match self {
            Literal::Text(s) => format!("`{s}`"),
            Literal::Str(s) => format!("\"{s}\""),
            Literal::Int(v) => v.to_string(),
            Literal::UInt(v) => v.to_string(),
            Literal::Float(v) => v.to_string(),
            Literal::Bool(v) => v.to_string(),
            Literal::Time(t) => {
                let mut s = String::new();
                crate::timestamp::format(t, &mut s);
                s
            }
        }
    }
}

/// One condition on one column.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// Column path.
    pub path: String,
    /// Operator.
    pub op: Op,
    /// Values (none for the null/absent tests, one or more for `In`, one otherwise).
    pub values: Vec<Literal>,
}

/// A sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    /// Column path.
    pub path: String,
    /// Descending.
    pub desc: bool,
}

/// A case-insensitive substring search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    /// The text to find.
    pub text: String,
    /// Columns to search; empty for every string column.
    pub fields: Vec<String>,
}

/// Filters (all must hold), an optional search, and sort keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Conjunction of filters.
    pub filters: Vec<Filter>,
    /// Search.
    pub search: Option<Search>,
    /// Sort keys, most significant first.
    pub sort: Vec<SortKey>,
}

/// Which slice of the result to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// Rows to skip.
    pub offset: usize,
    /// Rows per page (at least 1).
    pub limit: usize,
}

impl Paging {
    /// `limit` rows after skipping `offset`. Refused when `limit` is 0 or
    /// when the page number (`offset / limit + 1`) would not fit a `usize`.
    pub fn new(offset: usize, limit: usize) -> Result<Paging> {
        if limit == 0 {
            return Err(Error::Invalid("limit starts at 1 (got limit 0)".into()));
        }
        if offset / limit == usize::MAX {
            return Err(Error::Invalid(format!(
                "offset {offset} with limit {limit} is past the last page any result can have"
            )));
        }
        Ok(Paging { offset, limit })
    }

    /// Page `page` (from 1) of `limit` rows. Refused when page or limit is
    /// 0, or when the page's first row (`(page - 1) * limit`) would not fit
    /// a `usize`.
    pub fn page(page: usize, limit: usize) -> Result<Paging> {
        if page == 0 || limit == 0 {
            return Err(Error::Invalid(format!(
                "page and limit start at 1 (got page {page}, limit {limit})"
            )));
        }
        let offset = (page - 1).checked_mul(limit).ok_or_else(|| {
            Error::Invalid(format!(
                "page {page} of {limit} rows starts past the last row any result can have"
            ))
        })?;
        Ok(Paging { offset, limit })
    }
}

/// Where a page lies in the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Page number, from 1 (`offset / limit + 1`).
    pub page: usize,
    /// Rows per page.
    pub limit: usize,
    /// Rows matching the query.
    pub total: usize,
    /// `ceil(total / limit)`.
    pub total_pages: usize,
    /// True when rows follow this page.
    pub has_more: bool,
}

impl Pagination {
    /// Pagination of `p` over `total` rows.
    pub fn new(p: Paging, total: usize) -> Pagination {
        Pagination {
            // Saturating: a hand-made `Paging` past `Paging::new`'s bound
            // reports the last representable page rather than wrapping to 0.
            page: (p.offset / p.limit.max(1)).saturating_add(1),
            limit: p.limit,
            total,
            total_pages: total.div_ceil(p.limit.max(1)),
            has_more: p.offset.saturating_add(p.limit) < total,
        }
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page {
    /// The rows of the page, as JSON objects.
    pub data: Vec<serde_json::Value>,
    /// Where the page lies.
    pub pagination: Pagination,
}

/// The query engine over a [`RowSource`]. Columns are loaded on first use
/// and kept.
pub struct Engine<'s> {
    src: &'s dyn RowSource,
    fields: Vec<FieldInfo>,
    cols: RefCell<HashMap<String, Rc<Column>>>,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

impl<'s> Engine<'s> {
    /// An engine reading from `src`.
    pub fn new(src: &'s dyn RowSource) -> Self {
        Engine {
            fields: src.fields(),
            src,
            cols: RefCell::new(HashMap::new()),
        }
    }

    /// The source's columns.
    pub fn fields(&self) -> &[FieldInfo] {
        &self.fields
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.src.rows()
    }

    fn unknown(&self, path: &str) -> Error {
        Error::Invalid(format!(
            "unknown field `{path}`; available fields: {}",
            self.fields
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The column at `path`, loaded on first use.
    pub fn column(&self, path: &str) -> Result<Rc<Column>> {
        if let Some(c) = self.cols.borrow().get(path) {
            return Ok(c.clone());
        }
        if !self.fields.iter().any(|f| f.path == path) {
            return Err(self.unknown(path));
        }
        let c = Rc::new(self.src.load(path)?);
        self.cols.borrow_mut().insert(path.to_string(), c.clone());
        Ok(c)
    }

    /// Bytes held by loaded columns (row offsets shared by list columns are
    /// counted once).
    pub fn loaded_bytes(&self) -> usize {
        let cols = self.cols.borrow();
        let mut seen = std::collections::HashSet::new();
        cols.values()
            .map(|c| {
                let off = match &c.offsets {
                    Some(o) if seen.insert(std::sync::Arc::as_ptr(o)) => o.len() * 4,
                    _ => 0,
                };
                c.values.heap_bytes() + off
            })
            .sum()
    }

    /// Rows matching every filter.
    pub fn filter(&self, filters: &[Filter]) -> Result<Bits> {
        let mut acc = Bits::full(self.rows());
        for f in filters {
            let col = self.column(&f.path)?;
            acc.and_with(&filter::eval(self.src, &col, f)?);
        }
        Ok(acc)
    }

    /// Rows matching a search.
    pub fn search(&self, s: &Search) -> Result<Bits> {
        let paths: Vec<String> = if s.fields.is_empty() {
            self.fields
                .iter()
                .filter(|f| f.ty == crate::model::ColumnType::String)
                .map(|f| f.path.clone())
                .collect()
        } else {
            s.fields.clone()
        };
        let mut cols = Vec::with_capacity(paths.len());
        for p in &paths {
            let c = self.column(p)?;
            let ok = match &c.values {
                Values::Str(_) => true,
                Values::Any(_) => c.ty == crate::model::ColumnType::Mixed,
                _ => false,
            };
            if !ok {
                return Err(Error::Invalid(format!(
                    "cannot search `{p}`: it is {}, not a string field",
                    c.ty
                )));
            }
            cols.push(c);
        }
        let refs: Vec<&Column> = cols.iter().map(|c| c.as_ref()).collect();
        search::search_rows(self.src, &refs, &s.text)
    }

    /// Sort `rows` (in increasing order) by `keys`: stable, values before
    /// nulls before absent values in both directions.
    pub fn sort(&self, rows: Vec<u32>, keys: &[SortKey]) -> Result<Vec<u32>> {
        let cols = keys
            .iter()
            .map(|k| self.column(&k.path))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<sort::Key<'_>> = cols
            .iter()
            .zip(keys)
            .map(|(c, k)| sort::Key {
                col: c,
                desc: k.desc,
            })
            .collect();
        Ok(sort::sort_rows(rows, &keys))
    }

    /// Every row matching the query, in result order.
    pub fn run(&self, q: &Query) -> Result<Vec<u32>> {
        let mut set = self.filter(&q.filters)?;
        if let Some(s) = &q.search {
            set.and_with(&self.search(s)?);
        }
        self.sort(set.to_vec(), &q.sort)
    }

    /// One page as JSON text, `{"data":[...],"pagination":{...}}` (or,
    /// with `ndjson`, one row per line then `{"pagination":{...}}`), written
    /// straight from the columns without building `serde_json::Value`s.
    pub fn page_json(
        &self,
        rows: &[u32],
        p: Paging,
        fields: Option<&[String]>,
        ndjson: bool,
        out: &mut Vec<u8>,
    ) -> Result<Pagination> {
        let (slice, pagination) = self.page_slice(rows, p, fields)?;
        let pag = serde_json::to_string(&pagination).map_err(|e| Error::Invalid(e.to_string()))?;
        if ndjson {
            for &r in slice {
                self.src.write_rows_json(&[r], fields, out)?;
                out.push(b'\n');
            }
            out.extend_from_slice(b"{\"pagination\":");
            out.extend_from_slice(pag.as_bytes());
            out.extend_from_slice(b"}\n");
        } else {
            out.extend_from_slice(b"{\"data\":[");
            self.src.write_rows_json(slice, fields, out)?;
            out.extend_from_slice(b"],\"pagination\":");
            out.extend_from_slice(pag.as_bytes());
            out.extend_from_slice(b"}\n");
        }
        Ok(pagination)
    }

    fn page_slice<'r>(
        &self,
        rows: &'r [u32],
        p: Paging,
        fields: Option<&[String]>,
    ) -> Result<(&'r [u32], Pagination)> {
        if p.limit == 0 {
            return Err(Error::Invalid("limit must be at least 1".into()));
        }
        if let Some(fs) = fields
            && let Some(bad) = fs
                .iter()
                .find(|f| !self.fields.iter().any(|x| &x.path == *f))
        {
            return Err(self.unknown(bad));
        }
        let start = p.offset.min(rows.len());
        let end = p.offset.saturating_add(p.limit).min(rows.len());
        Ok((&rows[start..end], Pagination::new(p, rows.len())))
    }

    /// One page of `rows` as JSON objects restricted to `fields`.
    pub fn page(&self, rows: &[u32], p: Paging, fields: Option<&[String]>) -> Result<Page> {
        let (slice, pagination) = self.page_slice(rows, p, fields)?;
        Ok(Page {
            data: self.src.rows_json(slice, fields)?,
            pagination,
        })
    }
}

#[cfg(test)]
mod paging_tests {
    use super::*;

    #[test]
    fn paging_at_the_ends_of_usize() {
        assert!(Paging::new(usize::MAX, 1).is_err());
        assert!(Paging::new(0, 0).is_err());
        let p = Paging::new(usize::MAX - 1, 1).unwrap();
        assert_eq!(Pagination::new(p, 3).page, usize::MAX);
        let p = Paging::new(usize::MAX, 2).unwrap();
        assert_eq!(Pagination::new(p, 3).page, usize::MAX / 2 + 1);
        assert!(Paging::page(1 << 63, 50).is_err());
        assert!(Paging::page(0, 1).is_err());
        let p = Paging::page(1 << 63, 1).unwrap();
        assert_eq!(p.offset, (1 << 63) - 1);
        assert_eq!(Pagination::new(p, 10).page, 1 << 63);
        let p = Paging::page(3, 10).unwrap();
        let pg = Pagination::new(p, 25);
        assert_eq!((pg.page, pg.total_pages, pg.has_more), (3, 3, false));
    }
}
