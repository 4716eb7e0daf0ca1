//! Where the engine's data comes from: the [`RowSource`] trait, and its
//! implementation over an open snapshot.

use super::bits::Bits;
use super::loaded::{ABSENT, BOOL_ABSENT, BOOL_NULL, Cell, Column, Missing, NULL, Values};
use crate::error::{Error, Result};
use crate::model::{ColumnType, Kind, NodeName};
#[cfg(not(target_arch = "wasm32"))]
use crate::read::StringWindow;
use crate::read::{NodeData, RowWriter, Snapshot, TableOrder};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// A column the source offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// Display path (`user.login`, `labels[].name`).
    pub path: String,
    /// Column type.
    pub ty: ColumnType,
    /// True when the column lies inside an array (several items per row).
    pub list: bool,
}

/// Everything the query engine needs from its data. The engine works on
/// typed arrays only; strings are represented by `u32` *order keys*: within
/// one key space (`Column::keyspace`) keys compare like the strings they
/// stand for (byte-wise) and equal keys mean equal strings. A snapshot uses
/// its string ids (ids of a row-ordered table do not order like their
/// strings: the source gives their ranks, [`RowSource::str_order`]); a source that adds strings the tables lack (an events
/// overlay) can re-rank table ids and new strings into one dense key space.
///
/// Sources are `Send + Sync`: one [`crate::query::Engine`] over a source
/// answers queries from many threads.
pub trait RowSource: Send + Sync {
    /// Number of rows.
    fn rows(&self) -> usize;

    /// Bytes of the columns decoded to write rows (see
    /// [`SnapshotSource::writer_bytes`]); 0 when the source does not say.
    fn writer_bytes(&self) -> u64 {
        0
    }

    /// The memory, in bytes, one query may take for its per-row arrays
    /// (row lists, bitmaps, sort keys). A row count read from a file can
    /// claim far more rows than the file holds bytes; the engine refuses a
    /// query whose per-row arrays would not fit (an [`Error::Budget`]).
    fn memory_budget(&self) -> u64 {
        crate::read::DEFAULT_MEMORY_BUDGET
    }

    /// The columns, in schema order.
    fn fields(&self) -> Vec<FieldInfo>;

    /// Does the source have the column `path` (one of [`RowSource::fields`])?
    /// A source whose field list is costly (an events overlay types every
    /// field) answers for one field alone.
    fn has_field(&self, path: &str) -> bool {
        self.fields().iter().any(|f| f.path == path)
    }

    /// The type of the column `path` (`None`: no such column), as
    /// [`RowSource::fields`] lists it; a source whose field list is costly
    /// types that field alone.
    fn field_type(&self, path: &str) -> Option<ColumnType> {
        self.fields()
            .into_iter()
            .find(|f| f.path == path)
            .map(|f| f.ty)
    }

    /// Fetch ahead what writing `rows` (restricted to `fields`) needs,
    /// where fetching ahead pays (a remote snapshot: a few parallel rounds
    /// instead of one read per section). Nothing by default.
    fn prefetch(&self, rows: &[u32], fields: Option<&[String]>) -> Result<()> {
        let _ = (rows, fields);
        Ok(())
    }

    /// Load one column's typed values (no string is decoded).
    fn load(&self, path: &str) -> Result<Column>;

    /// Sort `rows` (in increasing order) by the one column `path`, without
    /// loading it, when the source can do it faster than the engine (an
    /// overlay merging its few changed rows into a cached order of its
    /// base's rows). The answer must be exactly the engine's: values, then
    /// nulls, then absent values, ties in row order. `None` (the default):
    /// the engine loads the column and sorts.
    fn sort_by_one(&self, rows: &[u32], path: &str, desc: bool) -> Result<Option<Vec<u32>>> {
        let _ = (rows, path, desc);
        Ok(None)
    }

    /// Whether [`RowSource::sort_by_one`] or [`RowSource::sort_page`] may
    /// answer a sort by the one column `path` without the engine loading
    /// it (an events overlay's merged orders). The engine loads a sort's
    /// columns ahead, on a second thread while it filters, only when this
    /// is `false` (the default), so a source that sorts from an order it
    /// keeps is never made to load the column.
    fn keeps_order(&self, path: &str) -> bool {
        let _ = path;
        false
    }

    /// The rows matching the one filter `f` (on a column the source has),
    /// when the source can answer without the engine loading the column
    /// (an events overlay: the filter over its base's column, the few
    /// changed rows tested alone). The answer must be exactly the engine's,
    /// errors included. `None` (the default): the engine loads the column
    /// and filters.
    fn filter_rows(&self, f: &super::Filter) -> Result<Option<Bits>> {
        let _ = f;
        Ok(None)
    }

    /// The rows at positions `range` (clamped to the rows) of every row
    /// sorted by the one column `path`, exactly as the engine's sort of
    /// all rows would place them, when the source keeps that order and
    /// can answer touching only the page's rows (an events overlay's kept
    /// merged order). `None` (the default): the engine sorts every row.
    fn sort_page(&self, path: &str, desc: bool, range: Range<usize>) -> Result<Option<Vec<u32>>> {
        let _ = (path, desc, range);
        Ok(None)
    }

    /// When the keys of `col` (a column it loaded) do **not** order like
    /// their strings, the rank of each key: a snapshot's row-ordered
    /// long-text table (SPEC.md 7.6), whose order is built by decoding
    /// the whole table once. `None` (the default): keys order like their
    /// strings. [`RowSource::find_str`] and [`RowSource::prefix_keys`]
    /// answer in ranks for such a column; [`RowSource::search_keys`] and
    /// the writers take the keys as loaded.
    fn str_order(&self, col: &Column) -> Result<Option<Arc<TableOrder>>> {
        let _ = col;
        Ok(None)
    }

    /// Where `s` falls among the keys of `col`'s key space: `Ok(key)` when
    /// present, else `Err(k)` with `k` the first key of a greater string
    /// (ranks for a column with a [`RowSource::str_order`]).
    fn find_str(&self, col: &Column, s: &str) -> Result<std::result::Result<u32, u32>>;

    /// The contiguous range of keys of `col`'s key space whose strings start with `prefix`.
    fn prefix_keys(&self, col: &Column, prefix: &str) -> Result<Range<u32>>;

    /// For each column, the keys whose strings contain `needle_lower` once
    /// lowercased (Unicode `to_lowercase`). `needle_lower` is already lowercase.
    fn search_keys(&self, cols: &[&Column], needle_lower: &str) -> Result<Vec<Bits>>;

    /// The given rows as JSON objects, restricted to `fields` (all when `None`).
    fn rows_json(&self, rows: &[u32], fields: Option<&[String]>) -> Result<Vec<serde_json::Value>>;

    /// The given rows as compact JSON objects separated by commas, appended
    /// to `out` (no brackets). The default goes through [`RowSource::rows_json`].
    fn write_rows_json(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        for (n, v) in self.rows_json(rows, fields)?.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, v).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        Ok(())
    }

    /// `rows` in groups of `group` rows, for a stream of events: for each
    /// group, `open(out, end)` (`end`: rows of `rows` written once the
    /// group is), the group as by [`RowSource::write_rows_json`], then
    /// `close`. A source may read the strings of all groups together (each
    /// string chunk once for all of them) and keep none of them in its
    /// caches (a stream passes each row once). The default writes group by
    /// group.
    ///
    /// This and the window methods below serve streams (`colsnap serve`);
    /// the browser build (`wasm32`) leaves them out, which keeps their code
    /// out of the page's wasm (a trait object's vtable keeps every method).
    #[cfg(not(target_arch = "wasm32"))]
    fn write_row_groups(
        &self,
        rows: &[u32],
        group: usize,
        fields: Option<&[String]>,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        let mut end = 0;
        for g in rows.chunks(group.max(1)) {
            end += g.len();
            open(out, end);
            self.write_rows_json(g, fields, out)?;
            out.extend_from_slice(close);
        }
        Ok(())
    }

    /// Read the strings of `rows` (restricted to `fields`) ahead, each
    /// string chunk once for all of them, for
    /// [`RowSource::write_row_groups_with`] to write these rows, in this
    /// order, over one or more calls (a stream: a window of many rows read
    /// ahead, written a batch of events at a time). `None` (the default):
    /// the source reads no window, and writes with
    /// [`RowSource::write_row_groups`].
    #[cfg(not(target_arch = "wasm32"))]
    fn read_strings(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
    ) -> Result<Option<StringWindow>> {
        let _ = (rows, fields);
        Ok(None)
    }

    /// [`RowSource::write_row_groups`], the strings taken from `window`
    /// (from [`RowSource::read_strings`], for rows of which `rows` come
    /// next) when there is one.
    #[allow(clippy::too_many_arguments)]
    #[cfg(not(target_arch = "wasm32"))]
    fn write_row_groups_with(
        &self,
        rows: &[u32],
        group: usize,
        fields: Option<&[String]>,
        window: Option<&mut StringWindow>,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        let _ = window;
        self.write_row_groups(rows, group, fields, out, open, close)
    }
}

/// Does `hay` lowercased contain `needle_lower`? `buf` is scratch space.
pub fn contains_folded(hay: &str, needle_lower: &str, buf: &mut String) -> bool {
    buf.clear();
    if hay.is_ascii() {
        if !needle_lower.is_ascii() {
            return false;
        }
        // Compared in place, byte by byte ignoring ASCII case: no
        // lowercased copy (building one char by char was most of a search
        // over every string of a large snapshot).
        return contains_ascii_folded(hay.as_bytes(), needle_lower.as_bytes());
    } else {
        for c in hay.chars() {
            // (ASCII chars, most of any text, skip the Unicode tables.)
            if c.is_ascii() {
                buf.push(c.to_ascii_lowercase());
            } else {
                buf.extend(c.to_lowercase());
            }
        }
    }
    buf.contains(needle_lower)
}

/// Does ASCII `hay`, lowercased, contain `needle` (ASCII, lowercase)?
fn contains_ascii_folded(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let Some(last) = hay.len().checked_sub(needle.len()) else {
        return false;
    };
    let upper = first.to_ascii_uppercase();
    let mut i = 0;
    while i <= last {
        // The next place the needle's first byte (either case) starts.
        let Some(p) = hay[i..=last].iter().position(|&b| b == first || b == upper) else {
            return false;
        };
        let at = i + p;
        if hay[at + 1..at + needle.len()].eq_ignore_ascii_case(rest) {
            return true;
        }
        i = at + 1;
    }
    false
}

type Offsets = Arc<Vec<u32>>;

/// The row writers of one field selection: a template with every column
/// decoded, forked (sharing those columns) for each thread writing at the
/// same time, and the idle forks.
#[derive(Default)]
struct Writers {
    template: Option<RowWriter>,
    idle: Vec<RowWriter>,
    /// The last writer made for a few rows only
    /// ([`Snapshot::row_writer_for`]) and its rows, sorted and distinct (a
    /// page's prefetch and its writing share it), and how many such
    /// writers were made.
    picked: Option<(Vec<u32>, RowWriter)>,
    picked_made: u32,
}

/// Pages of at most this many rows of a local snapshot are written, while
/// the selection has no template yet, by a writer that reads the columns at
/// those rows only.
const PICKED_MAX_ROWS: usize = 1000;

/// Writers made for a few rows before the template (every column decoded
/// whole) is made. A picked writer costs about one pass over each column's
/// kinds and varints; the template costs the whole decode once, after
/// which pages cost their rows. Renting until the rent paid nears the price
/// of buying: the first pages of a cold source (a CLI query, a server's
/// first requests) answer in a fraction of the whole decode, and a source
/// asked for many pages pays at most about twice what the template alone
/// would have cost.
const PICKED_WRITERS: u32 = 8;

type WriterSlot = Arc<Mutex<Writers>>;

/// Idle writers kept per field selection (more are dropped when returned).
const IDLE_WRITERS: usize = 16;

/// [`RowSource`] over an open [`Snapshot`]: string keys are string ids.
/// The source owns a handle on the snapshot (a cheap clone), so it can be
/// moved into an [`crate::query::Engine`] and shared between threads.
pub struct SnapshotSource {
    snap: Snapshot,
    offsets: Mutex<HashMap<u32, Offsets>>,
    writers: Mutex<HashMap<Option<Vec<String>>, WriterSlot>>,
}

impl std::fmt::Debug for SnapshotSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotSource")
            .field("snap", &self.snap)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::Invalid("a lock was poisoned by an earlier panic".into())
}

impl SnapshotSource {
    /// A source over `snap` (pass a clone to keep using the snapshot).
    pub fn new(snap: Snapshot) -> Self {
        SnapshotSource {
            snap,
            offsets: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// The snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    fn parent(&self, node: u32) -> u32 {
        self.snap.footer().nodes[node as usize].parent
    }

    /// Row offsets of the domain `node` lives in; `None` for the row domain.
    fn domain_offsets(&self, node: u32) -> Result<Option<Offsets>> {
        let mut n = node;
        while n != 0 {
            if self.snap.footer().nodes[n as usize].name == NodeName::Elem {
                return self.elem_offsets(n).map(Some);
            }
            n = self.parent(n);
        }
        Ok(None)
    }

    /// Row offsets into the items of the `Elem` node `e`.
    fn elem_offsets(&self, e: u32) -> Result<Offsets> {
        if let Some(o) = self.offsets.lock().map_err(|_| poisoned())?.get(&e) {
            return Ok(o.clone());
        }
        let p = self.parent(e);
        let outer = self.domain_offsets(p)?;
        let mut pd = self.snap.node_data(p)?;
        // cum[i] = elements of the parent's items before item i: the
        // parent's `list_starts` as they are (moved, not copied) when every
        // item is an array, as in most snapshots.
        let all_arrays = matches!(*pd.kinds, crate::read::Kinds::Const(Kind::Array, _));
        let cum = if all_arrays && pd.list_starts.len() == pd.len() + 1 {
            std::mem::take(&mut pd.list_starts)
        } else {
            let mut cum = Vec::with_capacity(pd.len() + 1);
            let mut arrays = 0usize;
            cum.push(0u32);
            for i in 0..pd.len() {
                if pd.kind(i) == Kind::Array {
                    arrays += 1;
                }
                cum.push(pd.list_starts.get(arrays).copied().unwrap_or(0));
            }
            cum
        };
        drop(pd);
        let rows = self.snap.rows() as usize;
        let at = |i: usize| {
            cum.get(i)
                .copied()
                .ok_or_else(|| Error::corrupt(self.snap.path(e), 0, "element offsets out of range"))
        };
        let off = match &outer {
            // The row domain: the offsets are `cum` itself.
            None if cum.len() == rows + 1 => cum,
            None => {
                let mut off = Vec::with_capacity(rows + 1);
                for r in 0..=rows {
                    off.push(at(r)?);
                }
                off
            }
            Some(o) => {
                let mut off = Vec::with_capacity(o.len());
                for &i in o.iter() {
                    off.push(at(i as usize)?);
                }
                off
            }
        };
        let off = Arc::new(off);
        self.offsets
            .lock()
            .map_err(|_| poisoned())?
            .insert(e, off.clone());
        Ok(off)
    }

    /// Run `f` with a row writer for `fields`: an idle one, or a fork of
    /// the selection's template (made, with every column it writes
    /// decoded, on first use), so threads writing the same selection at
    /// once share its columns without waiting for each other.
    fn with_writer<T>(
        &self,
        fields: Option<&[String]>,
        rows: Option<&[u32]>,
        f: impl FnOnce(&mut RowWriter) -> Result<T>,
    ) -> Result<T> {
        let key = fields.map(|f| f.to_vec());
        let slot = self
            .writers
            .lock()
            .map_err(|_| poisoned())?
            .entry(key)
            .or_default()
            .clone();
        // (Local sources only: over a remote one each picked writer would
        // fetch the columns' sections again, where the template fetches
        // them once. Not in the browser build, whose sources are remote.)
        let local = cfg!(not(target_arch = "wasm32")) && !self.snap.is_remote();
        if let Some(rows) = rows.filter(|r| local && r.len() <= PICKED_MAX_ROWS) {
            let mut sorted = rows.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            let kept = {
                let mut g = slot.lock().map_err(|_| poisoned())?;
                if g.template.is_some() {
                    None
                } else if g.picked.as_ref().is_some_and(|(k, _)| *k == sorted) {
                    g.picked.take().map(|(_, w)| Some(w))
                } else if g.picked_made < PICKED_WRITERS {
                    g.picked_made += 1;
                    Some(None)
                } else {
                    None
                }
            };
            if let Some(kept) = kept {
                let mut w = match kept {
                    Some(w) => w,
                    None => {
                        if let Some(fs) = fields {
                            for p in fs {
                                self.node_of(p)?;
                            }
                        }
                        #[cfg(not(target_arch = "wasm32"))]
                        let w = self.snap.row_writer_for(
                            fields,
                            &sorted.iter().map(|&r| r as u64).collect::<Vec<_>>(),
                        )?;
                        #[cfg(target_arch = "wasm32")]
                        let w = self.snap.row_writer(fields)?;
                        w
                    }
                };
                let r = f(&mut w);
                if let Ok(mut g) = slot.lock() {
                    g.picked = Some((sorted, w));
                }
                return r;
            }
        }
        let mut w = {
            let mut g = slot.lock().map_err(|_| poisoned())?;
            match g.idle.pop() {
                Some(w) => w,
                None => {
                    if g.template.is_none() {
                        if let Some(fs) = fields {
                            for p in fs {
                                self.node_of(p)?;
                            }
                        }
                        let mut t = self.snap.row_writer(fields)?;
                        t.prime()?;
                        g.template = Some(t);
                    }
                    g.template
                        .as_ref()
                        .ok_or_else(|| Error::Invalid("row writer cache".into()))?
                        .fork()
                }
            }
        };
        let r = f(&mut w);
        if let Ok(mut g) = slot.lock()
            && g.idle.len() < IDLE_WRITERS
        {
            g.idle.push(w);
        }
        r
    }

    /// Bytes of the columns decoded for writing rows, every field
    /// selection written so far together (shared by the threads writing).
    pub fn writer_bytes(&self) -> u64 {
        let slots: Vec<WriterSlot> = self
            .writers
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        slots
            .iter()
            .filter_map(|s| s.lock().ok()?.template.as_ref().map(|t| t.column_bytes()))
            .sum()
    }

    fn node_of(&self, path: &str) -> Result<u32> {
        self.snap.node_by_path(path).ok_or_else(|| {
            let avail: Vec<String> = self.fields().into_iter().map(|f| f.path).collect();
            Error::NotFound {
                what: "field",
                name: format!("`{path}` (available: {})", avail.join(", ")),
            }
        })
    }
}

/// Typed values of a decoded node whose items all have one kind (no null,
/// no absent item): its payload vector is the column as it is, taken out
/// of `d` without a copy (no second array the size of the column, no pass
/// over the items). `None` (and `d` untouched) otherwise.
fn values_of_const(d: &mut NodeData, table_len: u64) -> Option<Values> {
    use crate::read::Kinds;
    let n = d.len();
    let Kinds::Const(kind, _) = *d.kinds else {
        return None;
    };
    let none = |n| Missing {
        null: Bits::new(n),
        absent: Bits::new(n),
    };
    Some(match kind {
        Kind::Str if d.strs.len() == n && table_len < NULL as u64 => {
            Values::Str(std::mem::take(&mut d.strs))
        }
        Kind::Int if d.ints.len() == n => Values::Int {
            v: std::mem::take(&mut d.ints),
            missing: none(n),
        },
        Kind::Time if d.ts_secs.len() == n && (d.ts_nanos.is_empty() || d.ts_nanos.len() == n) => {
            Values::Time {
                secs: std::mem::take(&mut d.ts_secs),
                nanos: std::mem::take(&mut d.ts_nanos),
                missing: none(n),
            }
        }
        Kind::Array if d.lens.len() == n && d.lens.iter().all(|&l| l < NULL) => {
            Values::List(std::mem::take(&mut d.lens))
        }
        _ => return None,
    })
}

/// Typed values of a decoded node.
fn values_of(d: &NodeData, counts: &[u64; crate::model::KIND_COUNT], table_len: u64) -> Values {
    let n = d.len();
    let present: Vec<Kind> = Kind::ALL
        .iter()
        .copied()
        .filter(|&k| counts[k as usize] > 0 && k != Kind::Absent && k != Kind::Null)
        .collect();
    let only = |ks: &[Kind]| !present.is_empty() && present.iter().all(|k| ks.contains(k));
    let missing = || {
        let mut m = Missing {
            null: Bits::new(n),
            absent: Bits::new(n),
        };
        for i in 0..n {
            match d.kind(i) {
                Kind::Null => m.null.set(i),
                Kind::Absent => m.absent.set(i),
                _ => {}
            }
        }
        m
    };
    if only(&[Kind::Str]) && table_len < NULL as u64 {
        let mut h = 0;
        Values::Str(
            (0..n)
                .map(|i| match d.kinds.get_and_rank(i, &mut h) {
                    (Kind::Str, r) => d.strs[r],
                    (Kind::Null, _) => NULL,
                    _ => ABSENT,
                })
                .collect(),
        )
    } else if only(&[Kind::Int]) {
        Values::Int {
            v: (0..n)
                .map(|i| match d.kind(i) {
                    Kind::Int => d.ints[d.pos(i)],
                    _ => 0,
                })
                .collect(),
            missing: missing(),
        }
    } else if only(&[Kind::Time]) {
        let has_nanos = !d.ts_nanos.is_empty();
        let mut secs = Vec::with_capacity(n);
        let mut nanos = Vec::with_capacity(if has_nanos { n } else { 0 });
        for i in 0..n {
            let (s, ns) = match d.kind(i) {
                Kind::Time => {
                    let p = d.pos(i);
                    (d.ts_secs[p], d.ts_nanos.get(p).copied().unwrap_or(0))
                }
                _ => (0, 0),
            };
            secs.push(s);
            if has_nanos {
                nanos.push(ns);
            }
        }
        Values::Time {
            secs,
            nanos,
            missing: missing(),
        }
    } else if only(&[Kind::False, Kind::True]) {
        Values::Bool(
            (0..n)
                .map(|i| match d.kind(i) {
                    Kind::False => 0,
                    Kind::True => 1,
                    Kind::Null => BOOL_NULL,
                    _ => BOOL_ABSENT,
                })
                .collect(),
        )
    } else if present.is_empty() || only(&[Kind::Object]) {
        Values::Object(
            (0..n)
                .map(|i| match d.kind(i) {
                    Kind::Object => 0,
                    Kind::Null => BOOL_NULL,
                    _ => BOOL_ABSENT,
                })
                .collect(),
        )
    } else if only(&[Kind::Array]) && d.lens.iter().all(|&l| l < NULL) {
        Values::List(
            (0..n)
                .map(|i| match d.kind(i) {
                    Kind::Array => d.lens[d.pos(i)],
                    Kind::Null => NULL,
                    _ => ABSENT,
                })
                .collect(),
        )
    } else {
        Values::Any((0..n).map(|i| cell_of(d, i)).collect())
    }
}

fn cell_of(d: &NodeData, i: usize) -> Cell {
    let p = d.pos(i);
    match d.kind(i) {
        Kind::Absent => Cell::Absent,
        Kind::Null => Cell::Null,
        Kind::False => Cell::Bool(false),
        Kind::True => Cell::Bool(true),
        Kind::Int => Cell::Int(d.ints[p]),
        Kind::UInt => Cell::UInt(d.uints[p]),
        Kind::Float => Cell::Float(d.floats[p]),
        // Compared and sorted as its nearest binary64 (docs/query.md).
        Kind::NumText => Cell::Float(crate::encoding::numtext::value(&d.num_texts[p])),
        Kind::Str => Cell::Str(d.strs[p]),
        Kind::Time => Cell::Time(d.ts_secs[p], d.ts_nanos.get(p).copied().unwrap_or(0)),
        Kind::Object => Cell::Object,
        Kind::Array => Cell::Array(d.lens[p]),
    }
}

impl RowSource for SnapshotSource {
    fn writer_bytes(&self) -> u64 {
        SnapshotSource::writer_bytes(self)
    }

    fn memory_budget(&self) -> u64 {
        crate::read::default_budget(&self.snap)
    }

    fn rows(&self) -> usize {
        self.snap.rows() as usize
    }

    fn fields(&self) -> Vec<FieldInfo> {
        self.snap
            .columns()
            .into_iter()
            .map(|c| {
                let mut n = c.node;
                let mut list = false;
                while n != 0 {
                    list |= self.snap.footer().nodes[n as usize].name == NodeName::Elem;
                    n = self.parent(n);
                }
                FieldInfo {
                    path: c.path,
                    ty: c.ty,
                    list,
                }
            })
            .collect()
    }

    fn has_field(&self, path: &str) -> bool {
        self.snap.node_by_path(path).is_some()
    }

    fn load(&self, path: &str) -> Result<Column> {
        let node = self.node_of(path)?;
        let mut d = self.snap.node_data(node)?;
        let meta = &self.snap.footer().nodes[node as usize];
        let table = self.snap.table_of(node)?;
        let values = match values_of_const(&mut d, table.len()) {
            Some(v) => v,
            None => values_of(&d, &meta.counts, table.len()),
        };
        let offsets = self.domain_offsets(node)?;
        let rows = self.rows();
        let items = values.len();
        let ok = match &offsets {
            None => items == rows,
            Some(o) => o.len() == rows + 1 && o.last().is_some_and(|&l| l as usize == items),
        };
        if !ok {
            return Err(Error::corrupt(
                format!("column `{path}`"),
                0,
                format!("{items} items do not fit the {rows} rows of its domain"),
            ));
        }
        Ok(Column {
            path: path.to_string(),
            ty: self.snap.column_type(node),
            values,
            offsets,
            keyspace: meta.table,
        })
    }

    fn str_order(&self, col: &Column) -> Result<Option<Arc<TableOrder>>> {
        if col.keyspace as usize >= self.snap.footer().tables.len() {
            return Ok(None);
        }
        self.snap.table(col.keyspace)?.order()
    }

    fn find_str(&self, col: &Column, s: &str) -> Result<std::result::Result<u32, u32>> {
        self.snap.table(col.keyspace)?.find(s)
    }

    fn prefix_keys(&self, col: &Column, prefix: &str) -> Result<Range<u32>> {
        self.snap.table(col.keyspace)?.prefix_range(prefix)
    }

    fn search_keys(&self, cols: &[&Column], needle_lower: &str) -> Result<Vec<Bits>> {
        // Per table: the ids the searched columns reference, then one pass
        // over the chunks holding any of them, testing only those ids.
        let mut wanted: HashMap<u32, Bits> = HashMap::new();
        for c in cols {
            let t = self.snap.table(c.keyspace)?;
            let w = wanted
                .entry(c.keyspace)
                .or_insert_with(|| Bits::new(t.len() as usize));
            for i in 0..c.values.len() {
                if let Cell::Str(k) = c.values.cell(i)
                    && (k as usize) < w.len()
                {
                    w.set(k as usize);
                }
            }
        }
        let found = search_tables(&self.snap, &wanted, needle_lower)?;
        Ok(cols
            .iter()
            .map(|c| {
                found
                    .get(&c.keyspace)
                    .cloned()
                    .unwrap_or_else(|| Bits::new(0))
            })
            .collect())
    }

    fn prefetch(&self, rows: &[u32], fields: Option<&[String]>) -> Result<()> {
        if !self.snap.is_remote() {
            return Ok(());
        }
        self.with_writer(fields, Some(rows), |w| {
            w.prefetch(&rows.iter().map(|&r| r as u64).collect::<Vec<_>>())
        })
    }

    fn rows_json(&self, rows: &[u32], fields: Option<&[String]>) -> Result<Vec<serde_json::Value>> {
        self.with_writer(fields, Some(rows), |w| {
            rows.iter().map(|&r| w.row_json(r as u64)).collect()
        })
    }

    fn write_rows_json(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let wide: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
        self.with_writer(fields, Some(rows), |w| w.write_rows(&wide, out))
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn write_row_groups(
        &self,
        rows: &[u32],
        group: usize,
        fields: Option<&[String]>,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        let rows: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
        self.with_writer(fields, None, |w| {
            w.write_row_groups(&rows, group, out, open, close)
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_strings(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
    ) -> Result<Option<StringWindow>> {
        let rows: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
        self.with_writer(fields, None, |w| w.read_strings(&rows))
            .map(Some)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn write_row_groups_with(
        &self,
        rows: &[u32],
        group: usize,
        fields: Option<&[String]>,
        window: Option<&mut StringWindow>,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        let rows: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
        match window {
            Some(win) => self.with_writer(fields, None, |w| {
                w.write_row_groups_with(&rows, group, win, out, open, close)
            }),
            None => self.with_writer(fields, None, |w| {
                w.write_row_groups(&rows, group, out, open, close)
            }),
        }
    }
}

/// Case-insensitive substring search over the `wanted` ids of each string
/// table (table index -> ids to test). Each chunk holding a wanted id is
/// decoded once; ids of other chunks are never looked at. Returns, per
/// table, the wanted ids whose string contains `needle_lower`.
pub(crate) fn search_tables(
    snap: &Snapshot,
    wanted: &HashMap<u32, Bits>,
    needle_lower: &str,
) -> Result<HashMap<u32, Bits>> {
    let mut found: HashMap<u32, Bits> = HashMap::new();
    // One pass over the tables: what it keeps in the chunk cache is bounded.
    let pass = snap.chunk_pass();
    for (&tid, w) in wanted {
        let t = snap.table(tid)?;
        let starts = t.chunk_starts();
        let todo: Vec<usize> = (0..t.chunk_count())
            .filter(|&k| w.any_in(starts[k] as usize..starts[k + 1] as usize))
            .collect();
        let read = |k: usize| pass.chunk(tid, k);
        // The ids of chunk `k` that match.
        let scan = |&k: &usize| -> Result<Vec<u32>> {
            let lo = starts[k] as usize;
            let chunk = read(k)?;
            let hi = (starts[k + 1] as usize).min(lo + chunk.len());
            let mut buf = String::new();
            Ok((lo..hi)
                .filter(|&id| {
                    w.get(id) && contains_folded(chunk.get(id - lo), needle_lower, &mut buf)
                })
                .map(|id| id as u32)
                .collect())
        };
        // Chunks decode on the snapshot's decode threads: a search over
        // long text decodes the whole table, and a PPMd chunk decodes at
        // about 10 MB/s.
        #[cfg(not(target_arch = "wasm32"))]
        let hits = crate::source::parallel_map(&todo, snap.options().decode_threads, scan)?;
        #[cfg(target_arch = "wasm32")]
        let hits = todo.iter().map(scan).collect::<Result<Vec<_>>>()?;
        let mut set = Bits::new(t.len() as usize);
        for id in hits.into_iter().flatten() {
            set.set(id as usize);
        }
        found.insert(tid, set);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::contains_folded;

    /// The lowercased copy the search compared against before.
    fn reference(hay: &str, needle_lower: &str) -> bool {
        let lower: String = hay.chars().flat_map(char::to_lowercase).collect();
        lower.contains(needle_lower)
    }

    #[test]
    fn contains_folded_is_a_lowercased_contains() {
        let hays = [
            "",
            "a",
            "Bug",
            "DEBUGGER",
            "a bUg here",
            "bu",
            "xbugx",
            "BUGbug",
            "é Bug",
            "KELVIN \u{212A}",
            "ÀÉÎ",
            "İstanbul",
            "b",
            "bbbug",
            "ab\nBUG\t",
            "rocket 🚀 BUG",
        ];
        let needles = [
            "", "b", "bug", "bugs", "g", "x", "é", "k", "àéî", "i\u{307}", "🚀", "bbu",
        ];
        let mut buf = String::new();
        for h in hays {
            for n in needles {
                assert_eq!(
                    contains_folded(h, n, &mut buf),
                    reference(h, n),
                    "{h:?} contains {n:?}"
                );
            }
        }
    }
}
