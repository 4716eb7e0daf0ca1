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
//! [`Engine`] owns its source and is `Send + Sync` and cheap to clone: one
//! engine serves many threads, sharing its loaded columns, and loads each
//! column exactly once ([`Engine::column_loads`] counts the loads).
//!
//! Semantics (ordering, nulls, lists, case folding, CLI grammar) are
//! documented in `docs/query.md`.

pub mod bits;
mod facet;
pub(crate) mod filter;
pub mod loaded;
pub mod parse;
mod search;
mod sort;
pub mod source;

pub use bits::Bits;
pub use facet::{Facet, FacetValue};
pub use filter::{parse_num, parse_time};
pub use loaded::{Cell, Column, Num, Values};
pub use source::{FieldInfo, RowSource, SnapshotSource, contains_folded};

use crate::error::{Error, Result};
use crate::timestamp::Timestamp;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Columns to search; empty for every column of strings or of mixed
    /// types.
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

/// One column's loading slot: the first thread to ask loads the column
/// while holding the slot's lock; the others wait on it and share the
/// result.
type Slot = Arc<Mutex<Option<Arc<Column>>>>;

/// Orders of all rows by one column, by (path, descending).
type Orders = HashMap<(String, bool), Arc<RowOrder>>;

/// Every row of a source in the order of one column, as
/// [`Engine::sorted_rows`] keeps it (the cell each row sorts by is
/// [`Column::sort_cell`] of the column: a list's first item, null for an
/// empty list).
#[derive(Clone, Debug)]
pub struct RowOrder {
    /// The rows, in order.
    pub rows: Vec<u32>,
}

/// What every clone of an [`Engine`] shares.
struct Shared {
    src: Arc<dyn RowSource>,
    /// The source's field list, asked for on first use: a query names its
    /// fields, which [`RowSource::has_field`] checks one by one (an events
    /// overlay types a field only when asked).
    fields: std::sync::OnceLock<Vec<FieldInfo>>,
    /// Loaded (or loading) columns by path.
    cols: Mutex<HashMap<String, Slot>>,
    /// Calls of [`RowSource::load`] so far.
    loads: AtomicU64,
    /// Orders of all rows by one column, by (path, descending).
    orders: Mutex<Orders>,
    /// Columns whose keys the source re-keys to order like their strings
    /// ([`RowSource::str_order`]), by path.
    ordered: Mutex<HashMap<String, Arc<Column>>>,
}

/// The query engine over a [`RowSource`]. Columns are loaded on first use
/// and kept, each exactly once however many threads ask for it at the same
/// time.
///
/// The engine owns its source and is cheap to clone (an `Arc` inside):
/// clones share the source and the loaded columns, and the engine is
/// `Send + Sync`, so one engine can answer queries from many threads.
///
/// ```
/// # fn main() -> colsnap::Result<()> {
/// use colsnap::query::{Engine, Paging, Query, SnapshotSource};
/// let json = br#"[{"id": 1, "title": "b"}, {"id": 2, "title": "a"}]"#;
/// let snap = colsnap::Snapshot::from_bytes(colsnap::build_to_vec(&json[..], &Default::default())?)?;
/// let engine = Engine::new(SnapshotSource::new(snap));
/// let handles: Vec<_> = (0..4)
///     .map(|_| {
///         let engine = engine.clone();
///         std::thread::spawn(move || -> colsnap::Result<usize> {
///             let q = Query { sort: colsnap::query::parse::parse_sort("title")?, ..Default::default() };
///             let rows = engine.run(&q)?;
///             Ok(engine.page(&rows, Paging::page(1, 10)?, None)?.data.len())
///         })
///     })
///     .collect();
/// for h in handles {
///     assert_eq!(h.join().unwrap()?, 2);
/// }
/// assert_eq!(engine.column_loads(), 1); // `title`, loaded once for all threads
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("fields", &self.shared.fields.get().map(Vec::len))
            .field("column_loads", &self.column_loads())
            .finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::Invalid("a lock was poisoned by an earlier panic".into())
}

impl Engine {
    /// An engine owning `src`.
    pub fn new(src: impl RowSource + 'static) -> Self {
        Engine::from_source(Arc::new(src))
    }

    /// An engine over a shared source.
    pub fn from_source(src: Arc<dyn RowSource>) -> Self {
        Engine {
            shared: Arc::new(Shared {
                fields: std::sync::OnceLock::new(),
                src,
                cols: Mutex::new(HashMap::new()),
                loads: AtomicU64::new(0),
                orders: Mutex::new(HashMap::new()),
                ordered: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The source the engine reads.
    pub fn source(&self) -> &Arc<dyn RowSource> {
        &self.shared.src
    }

    fn src(&self) -> &dyn RowSource {
        self.shared.src.as_ref()
    }

    /// The source's columns (asked of the source on first use).
    pub fn fields(&self) -> &[FieldInfo] {
        self.shared.fields.get_or_init(|| self.src().fields())
    }

    /// Does the source have the column `path`? From the field list when
    /// it was asked for, else from the source alone
    /// ([`RowSource::has_field`]).
    pub fn has_field(&self, path: &str) -> bool {
        match self.shared.fields.get() {
            Some(f) => f.iter().any(|f| f.path == path),
            None => self.src().has_field(path),
        }
    }

    /// The type of the column `path` (`None`: no such column): from the
    /// field list when it was asked for, else from the source alone
    /// ([`RowSource::field_type`]: an events overlay types that field only).
    pub fn field_type(&self, path: &str) -> Option<crate::model::ColumnType> {
        match self.shared.fields.get() {
            Some(f) => f.iter().find(|f| f.path == path).map(|f| f.ty),
            None => self.src().field_type(path),
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.src().rows()
    }

    /// How many times a column was loaded from the source ([`RowSource::load`]
    /// calls, failed ones included) by this engine and its clones. Every
    /// column is loaded at most once, so after a successful load this equals
    /// [`Engine::loaded_columns`]`.len()`.
    pub fn column_loads(&self) -> u64 {
        self.shared.loads.load(Ordering::Relaxed)
    }

    /// Paths of the columns loaded so far, sorted.
    pub fn loaded_columns(&self) -> Vec<String> {
        let slots: Vec<(String, Slot)> = match self.shared.cols.lock() {
            Ok(c) => c.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return Vec::new(),
        };
        let mut out: Vec<String> = slots
            .into_iter()
            .filter(|(_, s)| s.lock().is_ok_and(|c| c.is_some()))
            .map(|(k, _)| k)
            .collect();
        out.sort();
        out
    }

    fn unknown(&self, path: &str) -> Error {
        Error::Invalid(parse::unknown_field_message(
            "field",
            path,
            self.fields().iter().map(|f| f.path.as_str()),
        ))
    }

    /// The column at `path`, loaded on first use. When several threads ask
    /// for a column not loaded yet, one loads it and the others wait for
    /// it. A failed load is not kept: the next call tries again.
    pub fn column(&self, path: &str) -> Result<Arc<Column>> {
        if !self.has_field(path) {
            return Err(self.unknown(path));
        }
        let slot = self
            .shared
            .cols
            .lock()
            .map_err(|_| poisoned())?
            .entry(path.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().map_err(|_| poisoned())?;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        self.shared.loads.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(self.src().load(path)?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// The column at `path` with string keys that order like their strings:
    /// the loaded column itself, unless its source says its keys do not
    /// ([`RowSource::str_order`]: a row-ordered long-text table), then a
    /// copy with each key replaced by its rank, made on first use and
    /// kept. Sorts, filters and facets compare keys through this.
    pub fn ordered_column(&self, path: &str) -> Result<Arc<Column>> {
        let c = self.column(path)?;
        if !matches!(c.values, Values::Str(_) | Values::Any(_)) {
            return Ok(c);
        }
        if let Some(o) = self
            .shared
            .ordered
            .lock()
            .map_err(|_| poisoned())?
            .get(path)
        {
            return Ok(o.clone());
        }
        let Some(order) = self.src().str_order(&c)? else {
            return Ok(c);
        };
        let ranks = order.ranks();
        let rank = |k: u32| ranks.get(k as usize).copied().unwrap_or(k);
        let values = match &c.values {
            Values::Str(v) => Values::Str(
                v.iter()
                    .map(|&k| match k {
                        loaded::NULL | loaded::ABSENT => k,
                        k => rank(k),
                    })
                    .collect(),
            ),
            Values::Any(v) => Values::Any(
                v.iter()
                    .map(|&x| match x {
                        Cell::Str(k) => Cell::Str(rank(k)),
                        x => x,
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        let o = Arc::new(Column {
            values,
            ..(*c).clone()
        });
        self.shared
            .ordered
            .lock()
            .map_err(|_| poisoned())?
            .insert(path.to_string(), o.clone());
        Ok(o)
    }

    /// Bytes held by loaded columns (row offsets shared by list columns are
    /// counted once).
    pub fn loaded_bytes(&self) -> usize {
        let slots: Vec<Slot> = match self.shared.cols.lock() {
            Ok(c) => c.values().cloned().collect(),
            Err(_) => return 0,
        };
        let mut seen = std::collections::HashSet::new();
        slots
            .iter()
            .filter_map(|s| s.lock().ok().and_then(|c| c.clone()))
            .map(|c| {
                let off = match &c.offsets {
                    Some(o) if seen.insert(Arc::as_ptr(o)) => o.len() * 4,
                    _ => 0,
                };
                c.values.heap_bytes() + off
            })
            .sum()
    }

    /// Refuse a query whose per-row arrays cannot fit the source's memory
    /// budget: a result is a row list (4 bytes a row), a sort adds its keys
    /// (up to 16 bytes a row) and each filter a bitmap (1 bit a row).
    fn check_rows_fit(&self) -> Result<()> {
        let budget = self.src().memory_budget();
        let need = (self.rows() as u64).saturating_mul(24);
        if need > budget {
            return Err(Error::Budget {
                what: format!("a query over {} rows", self.rows()),
                need,
                budget,
            });
        }
        Ok(())
    }

    /// Rows matching every filter.
    pub fn filter(&self, filters: &[Filter]) -> Result<Bits> {
        self.check_rows_fit()?;
        let mut acc = Bits::full(self.rows());
        for f in filters {
            if !self.has_field(&f.path) {
                return Err(self.unknown(&f.path));
            }
            // The source's answer when it has one (no column to load).
            if let Some(b) = self.src().filter_rows(f)? {
                acc.and_with(&b);
                continue;
            }
            let col = self.ordered_column(&f.path)?;
            acc.and_with(&filter::eval(self.src(), &col, f)?);
        }
        Ok(acc)
    }

    /// Rows matching a search.
    pub fn search(&self, s: &Search) -> Result<Bits> {
        self.check_rows_fit()?;
        let paths: Vec<String> = if s.fields.is_empty() {
            self.fields()
                .iter()
                // Strings in a column of mixed types too: one number in
                // `tags[]` must not hide its strings from a search.
                .filter(|f| {
                    matches!(
                        f.ty,
                        crate::model::ColumnType::String | crate::model::ColumnType::Mixed
                    )
                })
                .map(|f| f.path.clone())
                .collect()
        } else {
            s.fields.clone()
        };
        // An object or list field names the string fields under it
        // (`fields.description`, a document tree: every text in it).
        let stringy = |t: crate::model::ColumnType| {
            matches!(
                t,
                crate::model::ColumnType::String | crate::model::ColumnType::Mixed
            )
        };
        let mut expanded = Vec::with_capacity(paths.len());
        for p in paths {
            let ty = self.fields().iter().find(|f| f.path == p).map(|f| f.ty);
            if !matches!(
                ty,
                Some(crate::model::ColumnType::Object | crate::model::ColumnType::List)
            ) {
                expanded.push(p);
                continue;
            }
            let under: Vec<String> = self
                .fields()
                .iter()
                .filter(|f| {
                    stringy(f.ty)
                        && f.path
                            .strip_prefix(p.as_str())
                            .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
                })
                .map(|f| f.path.clone())
                .collect();
            if under.is_empty() {
                return Err(Error::Invalid(format!(
                    "cannot search `{p}`: it is {}, with no string field under it",
                    ty.expect("matched above")
                )));
            }
            expanded.extend(under);
        }
        let mut seen = std::collections::HashSet::new();
        expanded.retain(|p| seen.insert(p.clone()));
        let paths = expanded;
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
        search::search_rows(self.src(), &refs, &s.text)
    }

    /// Sort `rows` (in increasing order) by `keys`: stable, values before
    /// nulls before absent values in both directions.
    pub fn sort(&self, rows: Vec<u32>, keys: &[SortKey]) -> Result<Vec<u32>> {
        self.sort_with(rows, keys, usize::MAX, sort::sort_rows)
    }

    /// `rows` by `keys`, the first `k` of them: a one-key sort from the
    /// source when it has one ([`RowSource::sort_by_one`]), else `by` over
    /// the ordered columns of the keys.
    fn sort_with(
        &self,
        rows: Vec<u32>,
        keys: &[SortKey],
        k: usize,
        by: impl FnOnce(Vec<u32>, &[sort::Key<'_>]) -> Vec<u32>,
    ) -> Result<Vec<u32>> {
        if let [key] = keys {
            if !self.has_field(&key.path) {
                return Err(self.unknown(&key.path));
            }
            if let Some(mut out) = self.src().sort_by_one(&rows, &key.path, key.desc)? {
                out.truncate(k);
                return Ok(out);
            }
        }
        let cols = keys
            .iter()
            .map(|k| self.ordered_column(&k.path))
            .collect::<Result<Vec<_>>>()?;
        let skeys: Vec<sort::Key<'_>> = cols
            .iter()
            .zip(keys)
            .map(|(c, k)| sort::Key {
                col: c,
                desc: k.desc,
            })
            .collect();
        let mut out = by(rows, &skeys);
        out.truncate(k);
        Ok(out)
    }

    /// Every row in the order of the one column `path` (as
    /// [`Engine::sort`] gives it), computed on first use
    /// and kept: a source
    /// built over this engine (an events overlay) merges its changed rows
    /// into it instead of sorting every row again.
    pub fn sorted_rows(&self, path: &str, desc: bool) -> Result<Arc<RowOrder>> {
        crate::read::memo(&self.shared.orders, (path.to_string(), desc), || {
            let all: Vec<u32> = (0..self.rows() as u32).collect();
            let rows = self.sort(
                all,
                &[SortKey {
                    path: path.to_string(),
                    desc,
                }],
            )?;
            Ok(Arc::new(RowOrder { rows }))
        })
    }

    /// Every row matching the query, in result order.
    pub fn run(&self, q: &Query) -> Result<Vec<u32>> {
        // Every row by one column: the source's kept order when it keeps
        // one (no row list to build and check first).
        if let ([k], [], None) = (q.sort.as_slice(), q.filters.as_slice(), &q.search) {
            if !self.has_field(&k.path) {
                return Err(self.unknown(&k.path));
            }
            self.check_rows_fit()?;
            if let Some(rows) = self.src().sort_page(&k.path, k.desc, 0..self.rows())? {
                return Ok(rows);
            }
        }
        let set = self.matching_while_loading(q)?;
        self.sort(set.to_vec(), &q.sort)
    }

    /// The rows of page `p` of the query's result, in result order, and
    /// how many rows match: [`Engine::run`] cut to the page. A query with
    /// one sort key and no filter or search is answered from the source's
    /// kept order when it keeps one ([`RowSource::sort_page`]: an events
    /// overlay that follows a stream of events), touching only the page's
    /// rows instead of every row.
    pub fn run_page(&self, q: &Query, p: Paging) -> Result<(Vec<u32>, usize)> {
        if p.limit == 0 {
            return Err(Error::Invalid("limit must be at least 1".into()));
        }
        if let ([k], [], None) = (q.sort.as_slice(), q.filters.as_slice(), &q.search) {
            if !self.has_field(&k.path) {
                return Err(self.unknown(&k.path));
            }
            self.check_rows_fit()?;
            let end = p.offset.saturating_add(p.limit);
            if let Some(rows) = self.src().sort_page(&k.path, k.desc, p.offset..end)? {
                return Ok((rows, self.rows()));
            }
        }
        if let Some(k) = q.sort.iter().find(|k| !self.has_field(&k.path)) {
            return Err(self.unknown(&k.path));
        }
        if q.sort.is_empty() && q.filters.is_empty() && q.search.is_none() {
            // Every row in row order: the page's rows, without a list of
            // every row first (40 MB at 10M rows).
            self.check_rows_fit()?;
            let total = self.rows();
            let start = p.offset.min(total) as u32;
            let end = p.offset.saturating_add(p.limit).min(total) as u32;
            return Ok(((start..end).collect(), total));
        }
        let rows = self.matching_while_loading(q)?.to_vec();
        let total = rows.len();
        let start = p.offset.min(total);
        let end = p.offset.saturating_add(p.limit).min(total);
        if start == end {
            return Ok((Vec::new(), total));
        }
        // A page in the first eighth of the result: select its rows and
        // those before it instead of sorting every row (the same rows:
        // the sort's order is total).
        let rows = if end <= total / 8 {
            self.sort_top(rows, &q.sort, end)?
        } else {
            self.sort(rows, &q.sort)?
        };
        Ok((rows[start..end].to_vec(), total))
    }

    /// The rows matching the query's filters and search, while, on a
    /// second thread, the columns its sort will read are loaded: a cold
    /// `--where state=open --sort -updated_at` decodes `state` and
    /// `updated_at` at the same time instead of one after the other.
    /// Columns already loaded (or loading), and a one-key sort the source
    /// answers from an order it keeps ([`RowSource::keeps_order`]), are
    /// not loaded ahead; neither is anything on a machine with one core or
    /// where threads cannot start (WebAssembly). A column that fails to
    /// load ahead is not kept, so the sort loads it again and reports the
    /// error. The sort's column is loaded even when no row matches (the
    /// sort would not have loaded it): the price of not waiting for the
    /// filter.
    fn matching_while_loading(&self, q: &Query) -> Result<Bits> {
        let matching = || -> Result<Bits> {
            let mut set = self.filter(&q.filters)?;
            if let Some(s) = &q.search {
                set.and_with(&self.search(s)?);
            }
            Ok(set)
        };
        let ahead: Vec<&str> = match q.sort.as_slice() {
            [k] if self.src().keeps_order(&k.path) => Vec::new(),
            keys => keys
                .iter()
                .map(|k| k.path.as_str())
                .filter(|p| self.has_field(p) && !self.is_loaded(p))
                .collect(),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if ahead.is_empty()
            || (q.filters.is_empty() && q.search.is_none())
            || cores < 2
            || q.filters.iter().any(|f| !self.has_field(&f.path))
        {
            // (An unknown field is refused before anything loads.)
            return matching();
        }
        // So is a query refused for its size.
        self.check_rows_fit()?;
        std::thread::scope(|s| {
            let loader = std::thread::Builder::new().spawn_scoped(s, || {
                for p in &ahead {
                    if self.ordered_column(p).is_err() {
                        break;
                    }
                }
            });
            let set = matching();
            if let Ok(h) = loader {
                // A panic there poisons the column's slot, which the sort
                // then reports.
                let _ = h.join();
            }
            set
        })
    }

    /// Is the column `path` loaded, or being loaded by another thread?
    fn is_loaded(&self, path: &str) -> bool {
        let slot = match self.shared.cols.lock() {
            Ok(c) => c.get(path).cloned(),
            Err(_) => return true,
        };
        slot.is_some_and(|s| s.try_lock().map_or(true, |c| c.is_some()))
    }

    /// The first `k` rows of [`Engine::sort`]`(rows, keys)`, selected
    /// without sorting the others.
    pub fn sort_top(&self, rows: Vec<u32>, keys: &[SortKey], k: usize) -> Result<Vec<u32>> {
        self.sort_with(rows, keys, k, |rows, keys| sort::top_rows(rows, keys, k))
    }

    /// Page `p` of the query's result as JSON objects restricted to
    /// `fields`: [`Engine::run`] then [`Engine::page`], but through
    /// [`Engine::run_page`], so a one-key sort over a source that keeps
    /// its order touches only the page's rows.
    pub fn query_page(&self, q: &Query, p: Paging, fields: Option<&[String]>) -> Result<Page> {
        self.check_fields(fields)?;
        let (rows, total) = self.run_page(q, p)?;
        self.page_rows(&rows, Pagination::new(p, total), fields)
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
        self.write_page_json(slice, pagination, fields, ndjson, out)?;
        Ok(pagination)
    }

    /// A page's rows `slice` (as [`Engine::run_page`] gives them) as JSON
    /// text with `pagination`, as [`Engine::page_json`] writes a page.
    pub fn page_json_of(
        &self,
        slice: &[u32],
        pagination: Pagination,
        fields: Option<&[String]>,
        ndjson: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.check_fields(fields)?;
        self.write_page_json(slice, pagination, fields, ndjson, out)
    }

    /// A page's rows `slice` as objects with `pagination`, as
    /// [`Engine::page`] gives a page.
    pub fn page_of(
        &self,
        slice: &[u32],
        pagination: Pagination,
        fields: Option<&[String]>,
    ) -> Result<Page> {
        self.check_fields(fields)?;
        self.page_rows(slice, pagination, fields)
    }

    fn check_fields(&self, fields: Option<&[String]>) -> Result<()> {
        if let Some(fs) = fields
            && let Some(bad) = fs.iter().find(|f| !self.has_field(f))
        {
            return Err(self.unknown(bad));
        }
        Ok(())
    }

    fn write_page_json(
        &self,
        slice: &[u32],
        pagination: Pagination,
        fields: Option<&[String]>,
        ndjson: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.src().prefetch(slice, fields)?;
        let pag = serde_json::to_string(&pagination).map_err(|e| Error::Invalid(e.to_string()))?;
        let groups = fields.map(field_groups).filter(|g| g.len() > 1);
        // Every row of the page is written in one call per field group, so
        // that the writer reads each string chunk once for the page (not
        // once per row), then the rows are cut apart where needed.
        if let Some(groups) = &groups {
            // Fields in the order asked: each top-level key's fields are
            // written on their own and the objects spliced together.
            let mut parts = Vec::with_capacity(groups.len());
            for g in groups {
                let mut part = Vec::new();
                self.src().write_rows_json(slice, Some(g), &mut part)?;
                let spans = object_spans(&part, slice.len())?;
                parts.push((part, spans));
            }
            if !ndjson {
                out.extend_from_slice(b"{\"data\":[");
            }
            for n in 0..slice.len() {
                if n > 0 && !ndjson {
                    out.push(b',');
                }
                out.push(b'{');
                let mut first = true;
                for (part, spans) in &parts {
                    let r = spans[n].clone();
                    let inner = &part[r.start + 1..r.end - 1];
                    if !inner.is_empty() {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        out.extend_from_slice(inner);
                    }
                }
                out.push(b'}');
                if ndjson {
                    out.push(b'\n');
                }
            }
            if ndjson {
                out.extend_from_slice(b"{\"pagination\":");
            } else {
                out.extend_from_slice(b"],\"pagination\":");
            }
            out.extend_from_slice(pag.as_bytes());
            out.extend_from_slice(b"}\n");
        } else if ndjson {
            let mut part = Vec::new();
            self.src().write_rows_json(slice, fields, &mut part)?;
            for r in object_spans(&part, slice.len())? {
                out.extend_from_slice(&part[r]);
                out.push(b'\n');
            }
            out.extend_from_slice(b"{\"pagination\":");
            out.extend_from_slice(pag.as_bytes());
            out.extend_from_slice(b"}\n");
        } else {
            out.extend_from_slice(b"{\"data\":[");
            self.src().write_rows_json(slice, fields, out)?;
            out.extend_from_slice(b"],\"pagination\":");
            out.extend_from_slice(pag.as_bytes());
            out.extend_from_slice(b"}\n");
        }
        Ok(())
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
        self.check_fields(fields)?;
        let start = p.offset.min(rows.len());
        let end = p.offset.saturating_add(p.limit).min(rows.len());
        Ok((&rows[start..end], Pagination::new(p, rows.len())))
    }

    /// One page of `rows` as JSON objects restricted to `fields`.
    pub fn page(&self, rows: &[u32], p: Paging, fields: Option<&[String]>) -> Result<Page> {
        let (slice, pagination) = self.page_slice(rows, p, fields)?;
        self.page_rows(slice, pagination, fields)
    }

    /// The page's rows `slice` as JSON objects restricted to `fields`
    /// (checked by the caller).
    fn page_rows(
        &self,
        slice: &[u32],
        pagination: Pagination,
        fields: Option<&[String]>,
    ) -> Result<Page> {
        let mut data = self.src().rows_json(slice, fields)?;
        if let Some(groups) = fields.map(field_groups).filter(|g| g.len() > 1) {
            let keys: Vec<String> = groups.iter().map(|g| unescape(top_key(&g[0]))).collect();
            for v in &mut data {
                if let serde_json::Value::Object(m) = v {
                    let mut old = std::mem::take(m);
                    for k in &keys {
                        if let Some((k, x)) = old.shift_remove_entry(k) {
                            m.insert(k, x);
                        }
                    }
                    m.append(&mut old);
                }
            }
        }
        Ok(Page { data, pagination })
    }
}

/// The top-level key of a display path, still escaped: `user` of
/// `user.login`, `labels` of `labels[].name`.
fn top_key(path: &str) -> &str {
    let mut it = path.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => {
                it.next();
            }
            '.' | '[' => return &path[..i],
            _ => {}
        }
    }
    path
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        if c == '\\' && !esc {
            esc = true;
            continue;
        }
        esc = false;
        out.push(c);
    }
    out
}

/// `fields` grouped by top-level key, groups in the order their first
/// field was asked for (`title,user.login,number,user.id` gives
/// `[title] [user.login, user.id] [number]`).
/// The byte spans of the `n` JSON objects that `write_rows_json` wrote
/// back to back, separated by commas (strings may hold any brace).
fn object_spans(buf: &[u8], n: usize) -> Result<Vec<std::ops::Range<usize>>> {
    let mut spans = Vec::with_capacity(n);
    let (mut depth, mut in_str, mut esc, mut start) = (0usize, false, false, 0usize);
    for (i, &b) in buf.iter().enumerate() {
        if in_str {
            match b {
                _ if esc => esc = false,
                b'\\' => esc = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    spans.push(start..i + 1);
                }
            }
            _ => {}
        }
    }
    if spans.len() != n || spans.iter().any(|r| buf[r.start] != b'{') {
        return Err(Error::Invalid(format!(
            "a page of {n} rows was written as {} JSON objects",
            spans.len()
        )));
    }
    Ok(spans)
}

fn field_groups(fields: &[String]) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    for f in fields {
        match groups.iter_mut().find(|g| top_key(&g[0]) == top_key(f)) {
            Some(g) => g.push(f.clone()),
            None => groups.push(vec![f.clone()]),
        }
    }
    groups
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

#[cfg(test)]
mod object_span_tests {
    use super::object_spans;

    #[test]
    fn spans_cut_rows_whatever_their_strings_hold() {
        let buf = br#"{"a":"},{\"","b":[1,{"c":2}]},{},{"d":"\\"}"#;
        let spans = object_spans(buf, 3).unwrap();
        let got: Vec<&[u8]> = spans.iter().map(|r| &buf[r.clone()]).collect();
        assert_eq!(
            got,
            vec![
                &br#"{"a":"},{\"","b":[1,{"c":2}]}"#[..],
                &b"{}"[..],
                &br#"{"d":"\\"}"#[..]
            ]
        );
        assert!(object_spans(buf, 2).is_err());
        assert!(object_spans(b"[1],[2]", 2).is_err());
        assert_eq!(object_spans(b"", 0).unwrap(), vec![]);
    }
}
