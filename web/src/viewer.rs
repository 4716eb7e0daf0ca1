//! [`Viewer`]: one snapshot opened over a [`RangeStore`], its query engine,
//! and the events applied on top; the plain-Rust core of the browser API
//! (the `wasm-bindgen` layer in `lib.rs` only converts types).

use crate::store::RangeStore;
use bytes::Bytes;
use colsnap::events::{Overlay, OverlaySource};
use colsnap::query::loaded::Class;
use colsnap::query::{
    Cell, Column, Engine, Query, RowSource, Search, SnapshotSource, Values, parse,
};
use colsnap::read::Plan;
use colsnap::read::StringTable;
use colsnap::{Error, OpenOptions, Result, Snapshot};
use serde_json::{Value, json};
use std::ops::Range;
use std::sync::Arc;

/// Bytes fetched from the end of the file to open it: the trailer and, for
/// most files, the whole footer (a larger footer's start is then fetched
/// as a miss, one more request: the 45 KB footer of the shared pull
/// requests fits, the 210 KB of 300,000 generated issues does not).
/// 64 KiB, as the library's default: 256 KiB read a quarter of a megabyte
/// of long text with every footer of a few kilobytes.
pub const TAIL_BYTES: u64 = 64 << 10;

/// What a query asks, as JSON: `{"sort": "-updated_at,title", "where":
/// ["state=open"], "search": "crash", "in": ["title"]}`; the strings use
/// the CLI's grammar (docs/query.md).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct QuerySpec {
    /// `--sort`.
    pub sort: Option<String>,
    /// `--where`, each.
    pub filters: Vec<String>,
    /// `--search`.
    pub search: Option<String>,
    /// `--in`.
    pub search_in: Vec<String>,
}

impl QuerySpec {
    /// Read the JSON form.
    pub fn from_json(text: &str) -> Result<QuerySpec> {
        let v: Value = serde_json::from_slice(text.as_bytes()).map_err(|e| {
            // JSON.stringify writes a lone UTF-16 surrogate as `\ud800`,
            // which is no Unicode text.
            // serde_json says "lone leading surrogate" or, when text
            // follows it, "unexpected end of hex escape".
            let m = e.to_string();
            if m.contains("surrogate") || m.contains("end of hex escape") {
                Error::Invalid(format!(
                    "a query value holds a lone UTF-16 surrogate (a JavaScript string that is not Unicode text: String.prototype.isWellFormed() is false), which no cell holds ({e})"
                ))
            } else {
                Error::Invalid(format!("query JSON: {e}"))
            }
        })?;
        let strs = |k: &str| -> Vec<String> {
            match v.get(k) {
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .filter(|s| !s.is_empty())
                    .collect(),
                _ => Vec::new(),
            }
        };
        let one = |k: &str| {
            let v = strs(k);
            (!v.is_empty()).then(|| v.join(","))
        };
        Ok(QuerySpec {
            sort: one("sort"),
            filters: strs("where"),
            search: v
                .get("search")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            search_in: strs("in"),
        })
    }

    /// The engine's query.
    pub fn to_query(&self) -> Result<Query> {
        let mut q = Query::default();
        for w in &self.filters {
            q.filters.push(parse::parse_where(w)?);
        }
        if let Some(s) = &self.sort {
            q.sort = parse::parse_sort(s)?;
        }
        if let Some(text) = &self.search {
            q.search = Some(Search {
                text: text.clone(),
                fields: self.search_in.clone(),
            });
        }
        Ok(q)
    }
}

/// An open snapshot, its engine and the events applied.
pub struct Viewer {
    store: Arc<RangeStore>,
    snap: Snapshot,
    engine: Engine,
    /// Event lines applied so far (replayed from the start when a replay
    /// must fetch bytes, so a retry never applies an event twice).
    events: Vec<String>,
    key_field: String,
    result: Vec<u32>,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("rows", &self.engine.rows())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

fn open_options() -> OpenOptions {
    OpenOptions {
        tail_bytes: TAIL_BYTES,
        // Decoded string chunks kept: a page's memory is the user's (the
        // rows on screen of a random order use a few dozen chunks).
        cache_bytes: 6 << 20,
        // No sections read ahead of a decode: the store holds them (or the
        // page lends them) already, and read one at a time they enter the
        // memory after the arrays the decode keeps (see `Reader::lend`).
        fetch_cache_bytes: 0,
        // Sections more than 512 bytes apart are separate ranges (about
        // what a part of a multipart answer costs in headers); the page
        // asks for the ranges of one step in one multi-range request. With
        // the library's 64 KiB, the string chunks of the rows on screen (a
        // few hundred bytes each, far apart in the sorted table) came with
        // every chunk between them: the first page of neovim's issues read
        // 795 KB in 23 requests; 280 KB in 48 with 4 KiB, the 64 KiB tail
        // and a request per range; 219 KB in 11 now (issue 15).
        coalesce_gap: 512,
        ..OpenOptions::default()
    }
}

impl Viewer {
    /// Open the snapshot whose bytes `store` holds (at least its head and
    /// tail: the longest range it holds that ends at the file's end; when
    /// the footer starts before it, the error is a miss the store recorded).
    pub fn open(store: Arc<RangeStore>) -> Result<Viewer> {
        let mut opts = open_options();
        // The tail the page fetched, whatever its length: a published
        // snapshot's manifest gives the footer and trailer alone, and
        // opening with TAIL_BYTES would read the bytes before them, so the
        // page fetched whatever object held them (on neovim's issues a
        // 334 KB long-text chunk, before the first rows; issue 15).
        let held = store.held_tail();
        if held > 0 {
            opts.tail_bytes = held;
        }
        let snap = Snapshot::from_source_with(store.clone(), opts)?;
        let engine = Engine::new(SnapshotSource::new(snap.clone()));
        Ok(Viewer {
            store,
            snap,
            engine,
            events: Vec::new(),
            key_field: colsnap::events::DEFAULT_KEY_FIELD.to_string(),
            result: Vec::new(),
        })
    }

    /// The byte store (to add fetched ranges, take the misses).
    pub fn store(&self) -> &Arc<RangeStore> {
        &self.store
    }

    /// The snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// The engine over the current view (snapshot plus events).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Rows in the current view.
    pub fn rows(&self) -> usize {
        self.engine.rows()
    }

    /// `{"rows", "fileLen", "events", "fields": [{"path", "type", "list"}]}`.
    pub fn schema_json(&self) -> String {
        let fields: Vec<Value> = self
            .engine
            .fields()
            .iter()
            .map(|f| json!({"path": f.path, "type": f.ty.name(), "list": f.list}))
            .collect();
        json!({
            "rows": self.rows(),
            "fileLen": self.snap.file_len(),
            "events": self.events.len(),
            "fields": fields,
        })
        .to_string()
    }

    /// True while the view is the snapshot's own (no event applied): string
    /// keys are then the snapshot's string ids.
    pub fn plain(&self) -> bool {
        self.events.is_empty()
    }

    /// Node of a column path, and the nodes above it.
    fn chain(&self, path: &str) -> Vec<u32> {
        let Some(mut n) = self.snap.node_by_path(path) else {
            return Vec::new();
        };
        let nodes = &self.snap.footer().nodes;
        let mut out = vec![n];
        while n != 0 && (nodes[n as usize].parent as usize) < nodes.len() {
            let p = nodes[n as usize].parent;
            if p >= n {
                break;
            }
            out.push(p);
            n = p;
        }
        out
    }

    /// Byte ranges still to fetch before the columns `paths` load (their
    /// streams and those of the nodes above them). Mapped streams name
    /// their source node in their bytes; those come as misses.
    pub fn plan_columns(&self, paths: &[String]) -> Vec<Range<u64>> {
        let mut plan = Plan::new();
        for p in paths {
            if self.is_loaded(p) {
                continue;
            }
            for n in self.chain(p) {
                self.snap.plan_node(&mut plan, n);
            }
        }
        self.store.not_held(&self.snap.plan_ranges(&plan))
    }

    /// Add the string chunks holding `ids` of table `table` to `plan`.
    fn plan_ids(&self, plan: &mut Plan, table: u32, ids: impl Iterator<Item = u32>) {
        let Ok(t) = self.snap.table(table) else {
            return;
        };
        let mut chunks: Vec<usize> = ids
            .filter_map(|id| t.locate(id).ok().map(|(k, _)| k))
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        for k in chunks {
            self.snap.plan_chunk(plan, table, k);
        }
    }

    /// String ids of loaded string column `c` in rows `rows` (all rows when `None`).
    fn ids_of(c: &Column, rows: Option<&[u32]>) -> Vec<u32> {
        let Values::Str(v) = &c.values else {
            return Vec::new();
        };
        let sentinel =
            |k: u32| k == colsnap::query::loaded::NULL || k == colsnap::query::loaded::ABSENT;
        match rows {
            None => v.iter().copied().filter(|&k| !sentinel(k)).collect(),
            Some(rows) => {
                let mut out = Vec::new();
                // A row past the end plans nothing: writing it then says
                // "row not found".
                for &r in rows.iter().filter(|&&r| (r as usize) < c.rows()) {
                    let Some(items) = v.get(c.items(r as usize)) else {
                        continue;
                    };
                    out.extend(items.iter().copied().filter(|&k| !sentinel(k)));
                }
                out
            }
        }
    }

    /// Byte ranges still to fetch before rows `rows` of the columns
    /// `fields` are written as JSON: the string chunks their cells use
    /// (the columns must be loaded; others are left to misses).
    pub fn plan_rows(&self, rows: &[u32], fields: &[String]) -> Vec<Range<u64>> {
        if !self.plain() {
            return Vec::new();
        }
        let mut plan = Plan::new();
        for f in fields {
            if let Some(c) = self.loaded(f) {
                self.plan_ids(
                    &mut plan,
                    c.keyspace,
                    Self::ids_of(&c, Some(rows)).into_iter(),
                );
            }
        }
        self.store.not_held(&self.snap.plan_ranges(&plan))
    }

    /// Byte ranges still to fetch before a search in `fields` (every
    /// string column when empty) runs: the chunks holding the strings the
    /// columns use (the columns must be loaded).
    pub fn plan_search(&self, fields: &[String]) -> Vec<Range<u64>> {
        if !self.plain() {
            return Vec::new();
        }
        let all: Vec<String>;
        let fields = if fields.is_empty() {
            all = self
                .engine
                .fields()
                .iter()
                .filter(|f| f.ty == colsnap::model::ColumnType::String)
                .map(|f| f.path.clone())
                .collect();
            &all
        } else {
            fields
        };
        let mut plan = Plan::new();
        for f in fields {
            if let Some(c) = self.loaded(f) {
                self.plan_ids(&mut plan, c.keyspace, Self::ids_of(&c, None).into_iter());
                self.snap.plan_index(&mut plan, c.keyspace);
            }
        }
        self.store.not_held(&self.snap.plan_ranges(&plan))
    }

    /// Byte ranges still to fetch before a query's filters and sort run
    /// (the columns they name, the search's columns).
    pub fn plan_query(&self, spec: &QuerySpec) -> Result<Vec<Range<u64>>> {
        let q = spec.to_query()?;
        let mut paths: Vec<String> = q.filters.iter().map(|f| f.path.clone()).collect();
        paths.extend(q.sort.iter().map(|k| k.path.clone()));
        // Sorting or filtering by a column of a row-ordered table ranks its
        // strings: every chunk of that table (SPEC.md 7.6).
        let mut plan = Plan::new();
        for p in &paths {
            if let Some(t) = self
                .snap
                .node_by_path(p)
                .and_then(|n| self.snap.table_of(n).ok())
                && t.row_ordered()
            {
                for k in 0..t.chunk_count() {
                    self.snap.plan_chunk(&mut plan, t.meta_index(), k);
                }
            }
        }
        if let Some(s) = &q.search {
            paths.extend(s.fields.iter().cloned());
        }
        let mut out = self.plan_columns(&paths);
        out.extend(self.store.not_held(&self.snap.plan_ranges(&plan)));
        Ok(out)
    }

    fn is_loaded(&self, path: &str) -> bool {
        self.engine.loaded_columns().iter().any(|p| p == path)
    }

    fn loaded(&self, path: &str) -> Option<Arc<Column>> {
        if !self.is_loaded(path) {
            return None;
        }
        self.engine.column(path).ok()
    }

    /// Load column `path` (its bytes fetched: see [`Viewer::plan_columns`]).
    pub fn column(&self, path: &str) -> Result<Arc<Column>> {
        self.engine.column(path)
    }

    /// Run a query; keeps its rows (see [`Viewer::result`]) and returns
    /// how many matched.
    pub fn query(&mut self, spec: &QuerySpec) -> Result<usize> {
        let q = spec.to_query()?;
        // The sort's columns are loaded before the query makes its row
        // list: their arrays then lie below it in the wasm memory, which
        // never shrinks, and the list's space frees into one region with
        // the rest of the query's (with events applied, the overlay sorts
        // from its own kept orders and loads nothing for it).
        if self.events.is_empty() {
            for k in &q.sort {
                let _ = self.engine.ordered_column(&k.path);
            }
        }
        self.result = self.engine.run(&q)?;
        Ok(self.result.len())
    }

    /// Rows of the last query, in result order.
    pub fn result(&self) -> &[u32] {
        &self.result
    }

    /// Free the rows of the last query (once copied out).
    pub fn clear_result(&mut self) {
        self.result = Vec::new();
    }

    /// Rows as a JSON array of objects, restricted to `fields` when given.
    pub fn rows_json(&self, rows: &[u32], fields: Option<&[String]>) -> Result<String> {
        let n = self.rows();
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= n) {
            return Err(Error::NotFound {
                what: "row",
                name: format!("{bad} (the view has {n} rows)"),
            });
        }
        if let Some(fs) = fields
            && let Some(bad) = fs
                .iter()
                .find(|f| !self.engine.fields().iter().any(|x| &x.path == *f))
        {
            return Err(Error::NotFound {
                what: "field",
                name: bad.clone(),
            });
        }
        let mut out = b"[".to_vec();
        self.engine
            .source()
            .write_rows_json(rows, fields, &mut out)?;
        out.push(b']');
        String::from_utf8(out).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// The cells of `rows` in the columns `fields`, as a JSON array of
    /// objects keyed by display path (`{"number": 7, "labels[].name":
    /// ["bug"], "created_at": "2024-05-01T12:00:00Z"}`; absent cells left
    /// out), written from the engine's loaded columns and the strings of
    /// the rows only: no row writer decodes the columns a second time (the
    /// grid's rows). Timestamps come as UTC RFC 3339, cells of mixed
    /// columns as numbers, strings, `{}` for objects and the length for
    /// arrays. With events applied the view's keys are not string ids:
    /// the rows come from the row writer ([`Viewer::rows_json`], nested
    /// objects) instead.
    pub fn cells_json(&self, rows: &[u32], fields: &[String]) -> Result<String> {
        if !self.plain() {
            return self.rows_json(rows, Some(fields));
        }
        let n = self.rows();
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= n) {
            return Err(Error::NotFound {
                what: "row",
                name: format!("{bad} (the view has {n} rows)"),
            });
        }
        let mut cols = Vec::with_capacity(fields.len());
        for f in fields {
            let c = self.engine.column(f)?;
            let table = match &c.values {
                Values::Str(_) => Some(self.snap.table(c.keyspace)?),
                Values::Any(cells) if cells.iter().any(|x| matches!(x, Cell::Str(_))) => {
                    Some(self.snap.table(c.keyspace)?)
                }
                _ => None,
            };
            cols.push((c, table));
        }
        let mut out = String::from("[");
        for (n, &r) in rows.iter().enumerate() {
            out.push_str(if n > 0 { ",{" } else { "{" });
            let mut first = true;
            for (c, table) in &cols {
                let items = c.items(r as usize);
                let at = out.len();
                if !first {
                    out.push(',');
                }
                json_str(&c.path, &mut out);
                out.push(':');
                let present = if c.is_list() {
                    out.push('[');
                    for (k, i) in items.enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        if !write_cell(c, table.as_ref(), i, &mut out)? {
                            out.push_str("null");
                        }
                    }
                    out.push(']');
                    true
                } else {
                    write_cell(c, table.as_ref(), items.start, &mut out)?
                };
                if present {
                    first = false;
                } else {
                    out.truncate(at);
                }
            }
            out.push('}');
        }
        out.push(']');
        Ok(out)
    }

    /// Byte ranges still to fetch before [`Viewer::strings`] of `ids` of
    /// column `path`.
    pub fn plan_strings(&self, path: &str, ids: &[u32]) -> Vec<Range<u64>> {
        let Some(node) = self.snap.node_by_path(path) else {
            return Vec::new();
        };
        let table = self.snap.footer().nodes[node as usize].table;
        let mut plan = Plan::new();
        self.plan_ids(&mut plan, table, ids.iter().copied());
        self.store.not_held(&self.snap.plan_ranges(&plan))
    }

    /// The strings of `ids` in the string table of column `path`, as a
    /// JSON array (null for the null and absent sentinels).
    pub fn strings(&self, path: &str, ids: &[u32]) -> Result<String> {
        let node = self
            .snap
            .node_by_path(path)
            .ok_or_else(|| Error::NotFound {
                what: "field",
                name: path.to_string(),
            })?;
        let holds_strings = self
            .snap
            .footer()
            .nodes
            .get(node as usize)
            .is_some_and(|n| n.counts[colsnap::model::Kind::Str as usize] > 0);
        if !holds_strings {
            return Err(Error::Invalid(format!(
                "`{path}` is not a string column: its cells are not string ids"
            )));
        }
        let t = self.snap.table_of(node)?;
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            if id == colsnap::query::loaded::NULL || id == colsnap::query::loaded::ABSENT {
                out.push(Value::Null);
            } else {
                out.push(Value::String(t.get(id)?));
            }
        }
        Ok(Value::Array(out).to_string())
    }

    /// Apply the events of an NDJSON event log after those applied before.
    /// Returns how many events the view now holds. On a miss (bytes not
    /// fetched) nothing changes: fetch and call again.
    pub fn apply_events(&mut self, ndjson: &str) -> Result<usize> {
        let mut all = self.events.clone();
        all.extend(
            ndjson
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
        let mut ov = Overlay::new(self.snap.clone(), &self.key_field)?;
        let text = all.join("\n");
        ov.apply_reader(text.as_bytes())?;
        let src = OverlaySource::new(ov);
        // The source computes its fields once and keeps an empty list when
        // that read missed bytes: refuse it, so the caller fetches and the
        // next call builds a new source.
        if src.fields().is_empty() && !self.engine.fields().is_empty() {
            return Err(Error::Invalid(
                "the fields of the view need bytes not fetched yet".into(),
            ));
        }
        self.engine = Engine::new(src);
        self.events = all;
        self.result.clear();
        Ok(self.events.len())
    }

    /// Use `field` as the events' key field (default `id`).
    pub fn set_key_field(&mut self, field: &str) {
        self.key_field = field.to_string();
    }

    /// Bytes of the loaded columns' typed arrays.
    pub fn loaded_bytes(&self) -> usize {
        self.engine.loaded_bytes()
    }
}

/// Bytes of the whole file, as one fetched range (for tests and for files
/// held in memory).
pub fn store_of(bytes: Bytes) -> Arc<RangeStore> {
    let s = RangeStore::new(bytes.len() as u64);
    s.insert(0, bytes);
    Arc::new(s)
}

/// `s` as a JSON string.
fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let hex = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(hex[(c as usize) >> 4] as char);
                out.push(hex[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Append item `i` of column `c` as JSON; false (nothing written) when absent.
fn write_cell(c: &Column, table: Option<&StringTable>, i: usize, out: &mut String) -> Result<bool> {
    use colsnap::query::loaded::{ABSENT, BOOL_ABSENT, BOOL_NULL, NULL};
    use std::fmt::Write;
    let string = |k: u32, out: &mut String| -> Result<()> {
        match table {
            Some(t) => json_str(&t.get(k)?, out),
            None => out.push_str("null"),
        }
        Ok(())
    };
    match &c.values {
        Values::Int { missing, .. } | Values::Time { missing, .. } => match missing.class(i) {
            Class::Absent => return Ok(false),
            Class::Null => {
                out.push_str("null");
                return Ok(true);
            }
            Class::Value => {}
        },
        _ => {}
    }
    match &c.values {
        Values::Str(v) | Values::List(v) => match v[i] {
            ABSENT => return Ok(false),
            NULL => out.push_str("null"),
            k if matches!(c.values, Values::Str(_)) => string(k, out)?,
            k => {
                let _ = write!(out, "{k}");
            }
        },
        Values::Int { v, .. } => {
            let _ = write!(out, "{}", v[i]);
        }
        Values::Time { secs, nanos, .. } => {
            json_str(&utc_text(secs[i], nanos.get(i).copied().unwrap_or(0)), out)
        }
        Values::Bool(v) | Values::Object(v) => match v[i] {
            BOOL_ABSENT => return Ok(false),
            BOOL_NULL => out.push_str("null"),
            _ if matches!(c.values, Values::Object(_)) => out.push_str("{}"),
            b => out.push_str(if b == 1 { "true" } else { "false" }),
        },
        Values::Any(cells) => match cells[i] {
            Cell::Absent => return Ok(false),
            Cell::Null => out.push_str("null"),
            Cell::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Cell::Int(x) => {
                let _ = write!(out, "{x}");
            }
            Cell::UInt(x) => {
                let _ = write!(out, "{x}");
            }
            Cell::Float(x) => out.push_str(&json!(x).to_string()),
            Cell::Str(k) => string(k, out)?,
            Cell::Time(s, n) => json_str(&utc_text(s, n), out),
            Cell::Object => out.push_str("{}"),
            Cell::Array(n) => {
                let _ = write!(out, "{n}");
            }
        },
    }
    Ok(true)
}

/// `secs` (and `nanos`) after the Unix epoch as RFC 3339 UTC text:
/// `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.5Z`.
pub fn utc_text(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date of a day count (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if nanos > 0 {
        let f = format!("{nanos:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}
