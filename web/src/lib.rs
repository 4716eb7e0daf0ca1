//! colsnap in the browser: the read, query and event-overlay core of
//! colsnap compiled to `wasm32-unknown-unknown` (pure-Rust zstd), behind a
//! small `wasm-bindgen` API that `web/js/colsnap.js` wraps.
//!
//! The wasm side never fetches: it decodes from a [`RangeStore`] of the
//! byte ranges fetched so far, and says which ranges it is missing. The
//! JavaScript side fetches them (`Range` requests, the Cache API) and runs
//! the call again. Planning calls (`planColumns`, `planRows`, ...) name the
//! ranges an operation needs ahead of it, so most operations need one
//! round of requests at most.
//!
//! Typed arrays are handed over without copying: a column's descriptor
//! gives pointers into the wasm memory, and the JavaScript module makes
//! `Uint32Array`/`BigInt64Array`/`Float64Array` views over them. The views
//! stay valid until events are applied (which replaces the engine).

mod store;
mod viewer;

pub use store::RangeStore;
pub use viewer::{QuerySpec, TAIL_BYTES, Viewer, store_of, utc_text};

use bytes::Bytes;
use colsnap::query::{Cell, Column, Values};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

fn flat(ranges: &[Range<u64>]) -> Vec<f64> {
    ranges
        .iter()
        .flat_map(|r| [r.start as f64, r.end as f64])
        .collect()
}

fn err(e: colsnap::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn paths(json: &str) -> Result<Vec<String>, JsError> {
    if json.is_empty() {
        return Ok(Vec::new());
    }
    // Parsed as a `Value` from bytes: the library's own instance of the
    // parser (a `from_str::<Vec<String>>` would add another to the module).
    let v: Value = serde_json::from_slice(json.as_bytes())
        .map_err(|e| JsError::new(&format!("field list JSON: {e}")))?;
    match v {
        Value::Array(a) => a
            .into_iter()
            .map(|x| match x {
                Value::String(s) => Ok(s),
                _ => Err(JsError::new("field list JSON: not a string")),
            })
            .collect(),
        _ => Err(JsError::new("field list JSON: not an array")),
    }
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    /// engine.js's copy of bytes it lent (see [`Reader::lend`]).
    #[wasm_bindgen(js_name = __colsnapLent)]
    fn colsnap_lent(reader: u32, start: f64, end: f64) -> Option<Vec<u8>>;
}

/// A store whose lent ranges come from the page (in the browser build).
fn lending_store(len: u64, id: u32) -> RangeStore {
    #[cfg(target_arch = "wasm32")]
    {
        RangeStore::with_host(
            len,
            Box::new(move |a, b| colsnap_lent(id, a as f64, b as f64)),
        )
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = id;
        RangeStore::new(len)
    }
}

/// A column converted for the browser when its values have no plain typed
/// array (mixed numbers): `f64` values and a validity bitmap.
struct Converted {
    values: Vec<f64>,
    valid: Vec<u64>,
}

/// One snapshot read by byte ranges (see the crate documentation).
#[wasm_bindgen]
pub struct Reader {
    store: Arc<RangeStore>,
    viewer: Option<Viewer>,
    converted: HashMap<String, Converted>,
    /// Keeps the columns whose pointers were handed out alive.
    held: HashMap<String, Arc<Column>>,
}

#[wasm_bindgen]
impl Reader {
    /// A reader for a file of `len` bytes, nothing fetched yet; `id` names
    /// it to `globalThis.__colsnapLent` (see [`Reader::lend`]).
    #[wasm_bindgen(constructor)]
    pub fn new(len: f64, id: u32) -> Reader {
        Reader {
            store: Arc::new(lending_store(len as u64, id)),
            viewer: None,
            converted: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Keep fetched bytes: the file's bytes from offset `start` on.
    pub fn provide(&self, start: f64, bytes: Vec<u8>) {
        self.store.insert(start as u64, Bytes::from(bytes));
    }

    /// The page holds the file's bytes `start..end` (a column's section it
    /// fetched) and hands a copy to `globalThis.__colsnapLent(id, start,
    /// end)` when a decode reads them: they enter the wasm memory, which
    /// never shrinks, after the arrays the decode keeps, so that they free
    /// into one region with the decode's other temporaries instead of
    /// leaving a hole below the column.
    pub fn lend(&self, start: f64, end: f64) {
        self.store.lend(start as u64, end as u64);
    }

    /// Drop the fetched ranges lying inside the ranges `flat` (`[start,
    /// end, ...]`): bytes decoded already. Returns the bytes dropped.
    pub fn release(&self, flat: &[f64]) -> f64 {
        let ranges: Vec<Range<u64>> = flat
            .chunks_exact(2)
            .map(|p| p[0] as u64..p[1] as u64)
            .collect();
        self.store.release(&ranges) as f64
    }

    /// The ranges the last failed call missed, flat `[start, end, ...]`
    /// (empty when it failed for another reason).
    pub fn missing(&self) -> Vec<f64> {
        flat(&self.store.take_missing())
    }

    /// Open the snapshot (its head and tail provided).
    pub fn open(&mut self) -> Result<(), JsError> {
        self.viewer = Some(Viewer::open(self.store.clone()).map_err(err)?);
        Ok(())
    }

    fn v(&self) -> Result<&Viewer, JsError> {
        self.viewer
            .as_ref()
            .ok_or_else(|| JsError::new("the snapshot is not open"))
    }

    /// `{"rows", "fileLen", "events", "fields": [{"path", "type", "list"}]}` as JSON.
    pub fn schema(&self) -> Result<String, JsError> {
        Ok(self.v()?.schema_json())
    }

    /// Ranges to fetch before the columns (a JSON array of paths) load.
    #[wasm_bindgen(js_name = planColumns)]
    pub fn plan_columns(&self, paths_json: &str) -> Result<Vec<f64>, JsError> {
        Ok(flat(&self.v()?.plan_columns(&paths(paths_json)?)))
    }

    /// Ranges to fetch before a query (JSON, see [`QuerySpec`]) runs.
    #[wasm_bindgen(js_name = planQuery)]
    pub fn plan_query(&self, query_json: &str) -> Result<Vec<f64>, JsError> {
        let spec = QuerySpec::from_json(query_json).map_err(err)?;
        Ok(flat(&self.v()?.plan_query(&spec).map_err(err)?))
    }

    /// Ranges to fetch before a search in the (loaded) columns runs.
    #[wasm_bindgen(js_name = planSearch)]
    pub fn plan_search(&self, paths_json: &str) -> Result<Vec<f64>, JsError> {
        Ok(flat(&self.v()?.plan_search(&paths(paths_json)?)))
    }

    /// Ranges to fetch before `rows` of the (loaded) columns are written.
    #[wasm_bindgen(js_name = planRows)]
    pub fn plan_rows(&self, rows: &[u32], paths_json: &str) -> Result<Vec<f64>, JsError> {
        Ok(flat(&self.v()?.plan_rows(rows, &paths(paths_json)?)))
    }

    /// Ranges to fetch before `strings(path, ids)`.
    #[wasm_bindgen(js_name = planStrings)]
    pub fn plan_strings(&self, path: &str, ids: &[u32]) -> Result<Vec<f64>, JsError> {
        Ok(flat(&self.v()?.plan_strings(path, ids)))
    }

    /// Load a column; returns its descriptor as JSON: `kind` (`u32` string
    /// ids or list lengths, `i64` integers or timestamp seconds, `u8`
    /// booleans/objects, `f64` other numbers), `len`, `ptr` (byte offset in
    /// the wasm memory), the null/absent bitmaps (`nullPtr`, `absentPtr`,
    /// `validPtr`: 64-bit words, `words` of them; 0 when none), the row
    /// offsets of list columns (`offsetsPtr`, `rows + 1` of them) and the
    /// `sentinels` of `u32`/`u8` columns.
    pub fn column(&mut self, path: &str) -> Result<String, JsError> {
        let c = self.v()?.column(path).map_err(err)?;
        let words = c.values.len().div_ceil(64);
        // Written as text: every field is a number but the path.
        let (mut null_ptr, mut absent_ptr, mut valid_ptr) = (0, 0, 0);
        let (kind, ptr, sentinels) = match &c.values {
            Values::Str(v) | Values::List(v) => (
                "u32",
                v.as_ptr() as usize,
                Some((colsnap::query::loaded::NULL, colsnap::query::loaded::ABSENT)),
            ),
            Values::Int { v, missing }
            | Values::Time {
                secs: v, missing, ..
            } => {
                null_ptr = missing.null.words().as_ptr() as usize;
                absent_ptr = missing.absent.words().as_ptr() as usize;
                ("i64", v.as_ptr() as usize, None)
            }
            Values::Bool(v) | Values::Object(v) => (
                "u8",
                v.as_ptr() as usize,
                Some((
                    u32::from(colsnap::query::loaded::BOOL_NULL),
                    u32::from(colsnap::query::loaded::BOOL_ABSENT),
                )),
            ),
            Values::Any(cells) => {
                let conv = self.converted.entry(path.to_string()).or_insert_with(|| {
                    let mut valid = vec![0u64; words];
                    let values = cells
                        .iter()
                        .enumerate()
                        .map(|(i, cell)| {
                            let x = match *cell {
                                Cell::Int(x) => x as f64,
                                Cell::UInt(x) => x as f64,
                                Cell::Float(x) => x,
                                Cell::Bool(b) => b as u8 as f64,
                                Cell::Time(s, n) => s as f64 + n as f64 * 1e-9,
                                Cell::Array(n) => n as f64,
                                _ => return f64::NAN,
                            };
                            valid[i / 64] |= 1 << (i % 64);
                            x
                        })
                        .collect();
                    Converted { values, valid }
                });
                valid_ptr = conv.valid.as_ptr() as usize;
                ("f64", conv.values.as_ptr() as usize, None)
            }
        };
        let offsets_ptr = c.offsets.as_ref().map_or(0, |o| o.as_ptr() as usize);
        let mut d = format!(
            "{{\"path\":{},\"type\":\"{}\",\"kind\":\"{kind}\",\"len\":{},\"words\":{words},\"ptr\":{ptr},\"nullPtr\":{null_ptr},\"absentPtr\":{absent_ptr},\"validPtr\":{valid_ptr},\"offsetsPtr\":{offsets_ptr}",
            Value::String(c.path.clone()),
            c.ty.name(),
            c.values.len(),
        );
        if let Some((null, absent)) = sentinels {
            d.push_str(&format!(
                ",\"sentinels\":{{\"null\":{null},\"absent\":{absent}}}"
            ));
        }
        d.push('}');
        self.held.insert(path.to_string(), c);
        Ok(d)
    }

    /// Run a query (JSON, see [`QuerySpec`]); returns the number of rows
    /// matched. The rows are at `resultPtr()` (`u32`s, result order).
    pub fn query(&mut self, query_json: &str) -> Result<u32, JsError> {
        let spec = QuerySpec::from_json(query_json).map_err(err)?;
        let v = self
            .viewer
            .as_mut()
            .ok_or_else(|| JsError::new("the snapshot is not open"))?;
        Ok(v.query(&spec).map_err(err)? as u32)
    }

    /// Byte offset of the last query's rows in the wasm memory.
    #[wasm_bindgen(js_name = resultPtr)]
    pub fn result_ptr(&self) -> usize {
        self.viewer
            .as_ref()
            .map_or(0, |v| v.result().as_ptr() as usize)
    }

    /// Rows as a JSON array of objects, restricted to the fields (a JSON
    /// array of paths; all fields when empty).
    pub fn rows(&self, rows: &[u32], paths_json: &str) -> Result<String, JsError> {
        let fields = paths(paths_json)?;
        let fields = (!fields.is_empty()).then_some(fields);
        self.v()?.rows_json(rows, fields.as_deref()).map_err(err)
    }

    /// The cells of rows in the columns `paths_json` (a JSON array of
    /// display paths), as a JSON array of objects keyed by path, written
    /// from the loaded columns (see [`Viewer::cells_json`]).
    pub fn cells(&self, rows: &[u32], paths_json: &str) -> Result<String, JsError> {
        self.v()?.cells_json(rows, &paths(paths_json)?).map_err(err)
    }

    /// Free the rows of the last query (after JavaScript copied them).
    #[wasm_bindgen(js_name = clearResult)]
    pub fn clear_result(&mut self) {
        if let Some(v) = self.viewer.as_mut() {
            v.clear_result();
        }
    }

    /// The strings of `ids` in the string table of column `path` (JSON array).
    pub fn strings(&self, path: &str, ids: &[u32]) -> Result<String, JsError> {
        self.v()?.strings(path, ids).map_err(err)
    }

    /// Apply NDJSON events after those applied before; returns how many
    /// the view holds. Invalidates column views handed out before.
    #[wasm_bindgen(js_name = applyEvents)]
    pub fn apply_events(&mut self, ndjson: &str) -> Result<u32, JsError> {
        let v = self
            .viewer
            .as_mut()
            .ok_or_else(|| JsError::new("the snapshot is not open"))?;
        let n = v.apply_events(ndjson).map_err(err)?;
        self.held.clear();
        self.converted.clear();
        Ok(n as u32)
    }

    /// Set the events' key field (default `id`).
    #[wasm_bindgen(js_name = setKeyField)]
    pub fn set_key_field(&mut self, field: &str) -> Result<(), JsError> {
        self.viewer
            .as_mut()
            .ok_or_else(|| JsError::new("the snapshot is not open"))?
            .set_key_field(field);
        Ok(())
    }

    /// `{"fetchedBytes", "loadedBytes"}` as JSON: bytes held from the file,
    /// bytes of the loaded typed arrays.
    pub fn stats(&self) -> String {
        let loaded = self.viewer.as_ref().map_or(0, |v| v.loaded_bytes())
            + self
                .converted
                .values()
                .map(|c| c.values.len() * 8 + c.valid.len() * 8)
                .sum::<usize>();
        json!({"fetchedBytes": self.store.held_bytes(), "loadedBytes": loaded}).to_string()
    }
}
