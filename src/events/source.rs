//! The query engine over an overlay: [`OverlaySource`] implements
//! [`RowSource`], so `colsnap query --events` runs the same engine as a
//! plain snapshot, with results equal to those on a snapshot rebuilt from
//! the replayed JSON.
//!
//! String cells of the overlay are table ids or composite ids of new
//! strings ([`super::strkey`]). For each loaded string column the source
//! collects the distinct strings the view references, sorts them with the
//! 3-case rule (rank `2t+1` for table id `t`, `2i` plus the text for a new
//! string with insertion point `i`) and numbers them densely from 0: that is
//! the column's key space. Filters and searches map table lookups and new
//! strings into it. Timestamps of a column that also holds other strings
//! become strings there, as in a rebuilt snapshot.
//!
//! Limitation: columns inside arrays (`labels[].name`) can only be queried
//! while no event has been applied; otherwise loading one is an
//! [`Error::Invalid`]. Output (`--fields`) may still select them.

use super::overlay::{Overlay, is_timestamp};
use super::path::{join_path, parse_path};
use super::strkey::StrKey;
use crate::error::{Error, Result};
use crate::model::{ColumnType, KIND_COUNT, Kind, push_key};
use crate::query::bits::Bits;
use crate::query::loaded::{ABSENT, BOOL_ABSENT, BOOL_NULL, Cell, Column, Missing, NULL, Values};
use crate::query::source::{FieldInfo, RowSource, SnapshotSource, contains_folded, search_tables};
use crate::timestamp;
use serde_json::Value;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

/// One string of a key space: its 3-case rank and, for strings outside the
/// table (even ranks), its text.
type Entry = (u64, Option<Box<str>>);

/// A column's dense key space: key `k` is `entries[k]`, in string order.
#[derive(Debug)]
struct KeySpace {
    table: Option<u32>,
    entries: Vec<Entry>,
}

/// A cell before string keys are made dense.
#[derive(Clone, Debug)]
enum Raw {
    Cell(Cell),
    Str(Entry),
    Time(timestamp::Timestamp),
}

/// A scanned column: cells, string table index, per-kind counts, and
/// whether a negative integer occurs.
type Scan = (Vec<Raw>, Option<u32>, [u64; KIND_COUNT], bool);

/// [`RowSource`] over an [`Overlay`]: the rows of its view, in view order.
/// It owns the overlay (which owns a handle on its snapshot), so it can be
/// moved into an [`crate::query::Engine`] and shared between threads.
pub struct OverlaySource {
    ov: Overlay,
    slots: Vec<u32>,
    /// The snapshot under the overlay: writes its rows, and answers
    /// everything when no event changed the view (`plain`).
    base: SnapshotSource,
    /// No event changed the view: everything goes to `base`.
    plain: bool,
    fields: OnceLock<Vec<FieldInfo>>,
    spaces: Mutex<Vec<Arc<KeySpace>>>,
}

impl std::fmt::Debug for OverlaySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlaySource")
            .field("rows", &self.slots.len())
            .finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::Invalid("a lock was poisoned by an earlier panic".into())
}

impl OverlaySource {
    /// Query the current view of `ov` (later events need a new source).
    pub fn new(mut ov: Overlay) -> Self {
        let snap = ov.snapshot().clone();
        let plain = ov.overridden() == 0 && ov.len() as u64 == snap.rows();
        // Snapshot rows are written by `base` from now on.
        ov.release_emitter();
        OverlaySource {
            slots: ov.slots(),
            ov,
            base: SnapshotSource::new(snap),
            plain,
            fields: OnceLock::new(),
            spaces: Mutex::new(Vec::new()),
        }
    }

    /// The overlay back.
    pub fn into_inner(self) -> Overlay {
        self.ov
    }

    /// The overlay.
    pub fn overlay(&self) -> &Overlay {
        &self.ov
    }

    /// The source over the snapshot when no event changed the view.
    fn plain(&self) -> Option<&SnapshotSource> {
        self.plain.then_some(&self.base)
    }

    fn space(&self, col: &Column) -> Result<Arc<KeySpace>> {
        self.spaces
            .lock()
            .map_err(|_| poisoned())?
            .get(col.keyspace as usize)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("column `{}` has no key space", col.path)))
    }

    /// The rank entry of `s` in a column compared in `table`.
    fn probe(&self, table: Option<u32>, s: &str) -> Result<Entry> {
        Ok(match table {
            Some(t) => match self.ov.snapshot().table(t)?.find(s)? {
                Ok(id) => (2 * id as u64 + 1, None),
                Err(ins) => (2 * ins as u64, Some(s.into())),
            },
            None => (0, Some(s.into())),
        })
    }

    /// The cells of the row-domain column `keys` for every row of the view,
    /// plus per-kind counts (timestamps among other strings already count
    /// as strings) and whether a negative integer occurs.
    fn scan(&self, keys: &[String]) -> Result<Scan> {
        let ov = &self.ov;
        let snap = ov.snapshot();
        let node = snap.node_by_path(&join_path(keys));
        let data = node.map(|n| snap.node_data(n)).transpose()?;
        let table = ov.table_for(node);
        let tidx = if snap.footer().tables.is_empty() {
            None
        } else {
            Some(node.map_or(0, |n| snap.footer().nodes[n as usize].table))
        };
        let str_entry = |k: StrKey| -> Entry {
            match k {
                StrKey::Table(t) => (2 * t as u64 + 1, None),
                StrKey::New(c) => (2 * c.insertion() as u64, Some(ov.new_string(c).into())),
            }
        };
        let mut cells = Vec::with_capacity(self.slots.len());
        let mut counts = [0u64; KIND_COUNT];
        let mut neg = false;
        for &slot in &self.slots {
            let raw = match ov.overridden_row(slot) {
                Some(row) => match super::event::get_path(row, keys) {
                    None => Raw::Cell(Cell::Absent),
                    Some(Value::Null) => Raw::Cell(Cell::Null),
                    Some(Value::Bool(b)) => Raw::Cell(Cell::Bool(*b)),
                    Some(Value::Number(n)) => Raw::Cell(if let Some(i) = n.as_i64() {
                        Cell::Int(i)
                    } else if let Some(u) = n.as_u64() {
                        Cell::UInt(u)
                    } else {
                        Cell::Float(n.as_f64().unwrap_or(f64::NAN))
                    }),
                    Some(Value::String(s)) if is_timestamp(s) => match timestamp::parse(s) {
                        Some(ts) => Raw::Time(ts),
                        None => Raw::Str(str_entry(ov.str_key(table.as_ref(), s)?)),
                    },
                    Some(Value::String(s)) => Raw::Str(str_entry(ov.str_key(table.as_ref(), s)?)),
                    Some(Value::Object(_)) => Raw::Cell(Cell::Object),
                    Some(Value::Array(a)) => {
                        Raw::Cell(Cell::Array(a.len().min(NULL as usize - 1) as u32))
                    }
                },
                None => match &data {
                    None => Raw::Cell(Cell::Absent),
                    Some(d) => {
                        let i = slot as usize;
                        let p = d.pos(i);
                        match d.kind(i) {
                            Kind::Absent => Raw::Cell(Cell::Absent),
                            Kind::Null => Raw::Cell(Cell::Null),
                            Kind::False => Raw::Cell(Cell::Bool(false)),
                            Kind::True => Raw::Cell(Cell::Bool(true)),
                            Kind::Int => Raw::Cell(Cell::Int(d.ints[p])),
                            Kind::UInt => Raw::Cell(Cell::UInt(d.uints[p])),
                            Kind::Float => Raw::Cell(Cell::Float(d.floats[p])),
                            Kind::Str => Raw::Str((2 * d.strs[p] as u64 + 1, None)),
                            Kind::Time => Raw::Time(d.timestamp(p)),
                            Kind::Object => Raw::Cell(Cell::Object),
                            Kind::Array => Raw::Cell(Cell::Array(d.lens[p])),
                        }
                    }
                },
            };
            let kind = match &raw {
                Raw::Str(_) => Kind::Str,
                Raw::Time(_) => Kind::Time,
                Raw::Cell(c) => match c {
                    Cell::Absent => Kind::Absent,
                    Cell::Null => Kind::Null,
                    Cell::Bool(false) => Kind::False,
                    Cell::Bool(true) => Kind::True,
                    Cell::Int(i) => {
                        neg |= *i < 0;
                        Kind::Int
                    }
                    Cell::UInt(_) => Kind::UInt,
                    Cell::Float(_) => Kind::Float,
                    Cell::Object => Kind::Object,
                    _ => Kind::Array,
                },
            };
            counts[kind as usize] += 1;
            cells.push(raw);
        }
        // A column whose strings are all timestamps is a timestamp column
        // (the snapshot may hold them as strings because of a row since
        // changed); one whose strings are not is a string column.
        let text_of = |e: &Entry| -> Result<String> {
            match (&e.1, &table) {
                (Some(t), _) => Ok(t.to_string()),
                (None, Some(t)) => t.get(((e.0 - 1) / 2) as u32),
                (None, None) => Err(Error::corrupt("overlay", 0, "string id without a table")),
            }
        };
        if counts[Kind::Str as usize] > 0 {
            let mut seen = std::collections::HashSet::new();
            let mut all_ts = true;
            // Texts first: they need no decoding.
            let mut strs: Vec<&Entry> = cells
                .iter()
                .filter_map(|c| match c {
                    Raw::Str(e) => Some(e),
                    _ => None,
                })
                .collect();
            strs.sort_by_key(|e| e.1.is_none());
            for e in strs {
                if seen.insert(e) && !is_timestamp(&text_of(e)?) {
                    all_ts = false;
                    break;
                }
            }
            if all_ts {
                counts[Kind::Time as usize] += std::mem::take(&mut counts[Kind::Str as usize]);
                for c in cells.iter_mut() {
                    if let Raw::Str(e) = c {
                        let text = text_of(e)?;
                        *c = Raw::Time(timestamp::parse(&text).ok_or_else(|| {
                            Error::corrupt("overlay", 0, format!("timestamp {text:?}"))
                        })?);
                    }
                }
            }
        }
        if counts[Kind::Str as usize] > 0 && counts[Kind::Time as usize] > 0 {
            counts[Kind::Str as usize] += std::mem::take(&mut counts[Kind::Time as usize]);
            let mut text = String::new();
            for c in cells.iter_mut() {
                if let Raw::Time(ts) = c {
                    text.clear();
                    timestamp::format(ts, &mut text);
                    let e = match &table {
                        Some(t) => match t.find(&text)? {
                            Ok(id) => (2 * id as u64 + 1, None),
                            Err(ins) => (2 * ins as u64, Some(text.as_str().into())),
                        },
                        None => (0, Some(text.as_str().into())),
                    };
                    *c = Raw::Str(e);
                }
            }
        }
        Ok((cells, tidx, counts, neg))
    }

    /// Row-domain paths of the overridden rows that the snapshot lacks.
    fn new_paths(&self) -> Result<Vec<String>> {
        fn walk(o: &serde_json::Map<String, Value>, at: &str, out: &mut Vec<String>) {
            for (k, v) in o {
                let mut p = at.to_string();
                push_key(&mut p, k);
                if !out.contains(&p) {
                    out.push(p.clone());
                }
                if let Value::Object(c) = v {
                    walk(c, &p, out);
                }
            }
        }
        let ov = &self.ov;
        let mut out = Vec::new();
        for &s in &self.slots {
            if let Some(row) = ov.overridden_row(s) {
                walk(row, "", &mut out);
            }
        }
        let snap = ov.snapshot();
        out.retain(|p| snap.node_by_path(p).is_none());
        Ok(out)
    }

    fn compute_fields(&self) -> Result<Vec<FieldInfo>> {
        let mut out = Vec::new();
        let snap_fields = self.base.fields();
        let paths = snap_fields
            .into_iter()
            .chain(self.new_paths()?.into_iter().map(|p| FieldInfo {
                path: p,
                ty: ColumnType::Null,
                list: false,
            }));
        for f in paths {
            if f.list {
                out.push(f);
                continue;
            }
            let keys = parse_path(&f.path).map_err(Error::Invalid)?;
            let (_, _, counts, neg) = self.scan(&keys)?;
            if counts.iter().sum::<u64>() == counts[Kind::Absent as usize] {
                continue; // no row of the view has it
            }
            out.push(FieldInfo {
                ty: ColumnType::from_counts(&counts, neg),
                ..f
            });
        }
        Ok(out)
    }
}

/// Typed values from cells, as [`SnapshotSource`] builds them.
fn values_of(cells: Vec<Cell>, counts: &[u64; KIND_COUNT], keys: usize) -> Values {
    let present: Vec<Kind> = Kind::ALL
        .iter()
        .copied()
        .filter(|&k| counts[k as usize] > 0 && k != Kind::Absent && k != Kind::Null)
        .collect();
    let only = |ks: &[Kind]| !present.is_empty() && present.iter().all(|k| ks.contains(k));
    let missing = |cells: &[Cell]| {
        let mut m = Missing {
            null: Bits::new(cells.len()),
            absent: Bits::new(cells.len()),
        };
        for (i, c) in cells.iter().enumerate() {
            match c {
                Cell::Null => m.null.set(i),
                Cell::Absent => m.absent.set(i),
                _ => {}
            }
        }
        m
    };
    let sentinel = |c: &Cell| if *c == Cell::Null { NULL } else { ABSENT };
    let small = |c: &Cell| {
        if *c == Cell::Null {
            BOOL_NULL
        } else {
            BOOL_ABSENT
        }
    };
    if only(&[Kind::Str]) && keys < NULL as usize {
        Values::Str(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Str(k) => *k,
                    c => sentinel(c),
                })
                .collect(),
        )
    } else if only(&[Kind::Int]) {
        let v = cells
            .iter()
            .map(|c| if let Cell::Int(i) = c { *i } else { 0 })
            .collect();
        Values::Int {
            v,
            missing: missing(&cells),
        }
    } else if only(&[Kind::Time]) {
        let secs = cells
            .iter()
            .map(|c| if let Cell::Time(s, _) = c { *s } else { 0 })
            .collect();
        let nanos: Vec<u32> = cells
            .iter()
            .map(|c| if let Cell::Time(_, n) = c { *n } else { 0 })
            .collect();
        Values::Time {
            secs,
            nanos: if nanos.iter().any(|&n| n > 0) {
                nanos
            } else {
                Vec::new()
            },
            missing: missing(&cells),
        }
    } else if only(&[Kind::False, Kind::True]) {
        Values::Bool(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Bool(b) => *b as u8,
                    c => small(c),
                })
                .collect(),
        )
    } else if present.is_empty() || only(&[Kind::Object]) {
        Values::Object(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Object => 0,
                    c => small(c),
                })
                .collect(),
        )
    } else if only(&[Kind::Array]) {
        Values::List(
            cells
                .iter()
                .map(|c| match c {
                    Cell::Array(n) => *n,
                    c => sentinel(c),
                })
                .collect(),
        )
    } else {
        Values::Any(cells)
    }
}

/// Which parts of a row `--fields` keeps.
#[derive(Default, Debug)]
struct Select {
    all: bool,
    keys: Vec<(String, Select)>,
    elem: Option<Box<Select>>,
}

impl Select {
    fn add(&mut self, path: &str) {
        let mut node = self;
        let mut cur = String::new();
        let mut chars = path.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                '.' | '[' => {
                    if !cur.is_empty() {
                        node = node.key(std::mem::take(&mut cur));
                    }
                    if c == '[' {
                        chars.next(); // `]`
                        node = node.elem.get_or_insert_with(Default::default);
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            node = node.key(cur);
        }
        node.all = true;
    }

    fn key(&mut self, k: String) -> &mut Select {
        let i = match self.keys.iter().position(|(x, _)| *x == k) {
            Some(i) => i,
            None => {
                self.keys.push((k, Select::default()));
                self.keys.len() - 1
            }
        };
        &mut self.keys[i].1
    }

    fn apply(&self, v: &Value) -> Value {
        if self.all {
            return v.clone();
        }
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .filter_map(|(k, x)| {
                        let s = self.keys.iter().find(|(n, _)| n == k)?;
                        Some((k.clone(), s.1.apply(x)))
                    })
                    .collect(),
            ),
            Value::Array(a) => match &self.elem {
                Some(e) => Value::Array(a.iter().map(|x| e.apply(x)).collect()),
                None => Value::Array(Vec::new()),
            },
            v => v.clone(),
        }
    }
}

impl RowSource for OverlaySource {
    fn rows(&self) -> usize {
        self.slots.len()
    }

    fn fields(&self) -> Vec<FieldInfo> {
        if let Some(p) = self.plain() {
            return p.fields();
        }
        if let Some(f) = self.fields.get() {
            return f.clone();
        }
        // An unreadable column shows up when it is loaded.
        let f = self.compute_fields().unwrap_or_default();
        self.fields.get_or_init(|| f).clone()
    }

    fn load(&self, path: &str) -> Result<Column> {
        if let Some(p) = self.plain() {
            return p.load(path);
        }
        let info = self
            .fields()
            .into_iter()
            .find(|f| f.path == path)
            .ok_or_else(|| Error::NotFound {
                what: "field",
                name: path.to_string(),
            })?;
        if info.list {
            return Err(Error::Invalid(format!(
                "`{path}` lies inside arrays: with events applied, only fields outside arrays can be filtered, sorted or searched (compact the snapshot first: `colsnap compact`)"
            )));
        }
        let keys = parse_path(path).map_err(Error::Invalid)?;
        let (raw, table, counts, _) = self.scan(&keys)?;
        let mut entries: Vec<Entry> = raw
            .iter()
            .filter_map(|c| match c {
                Raw::Str(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        entries.sort_unstable();
        entries.dedup();
        let cells = raw
            .into_iter()
            .map(|c| match c {
                Raw::Cell(c) => c,
                Raw::Time(ts) => Cell::Time(ts.secs, ts.nanos),
                Raw::Str(e) => Cell::Str(entries.binary_search(&e).unwrap_or(0) as u32),
            })
            .collect();
        let values = values_of(cells, &counts, entries.len());
        let mut spaces = self.spaces.lock().map_err(|_| poisoned())?;
        let keyspace = u32::try_from(spaces.len())
            .map_err(|_| Error::Invalid("too many loaded columns".into()))?;
        spaces.push(Arc::new(KeySpace { table, entries }));
        Ok(Column {
            path: path.to_string(),
            ty: info.ty,
            values,
            offsets: None,
            keyspace,
        })
    }

    fn find_str(&self, col: &Column, s: &str) -> Result<std::result::Result<u32, u32>> {
        if let Some(p) = self.plain() {
            return p.find_str(col, s);
        }
        let ks = self.space(col)?;
        let probe = self.probe(ks.table, s)?;
        Ok(match ks.entries.binary_search(&probe) {
            Ok(k) => Ok(k as u32),
            Err(k) => Err(k as u32),
        })
    }

    fn prefix_keys(&self, col: &Column, prefix: &str) -> Result<Range<u32>> {
        if let Some(p) = self.plain() {
            return p.prefix_keys(col, prefix);
        }
        let ks = self.space(col)?;
        let lo = match self.find_str(col, prefix)? {
            Ok(k) | Err(k) => k as usize,
        };
        let ids = match ks.table {
            Some(t) => self.ov.snapshot().table(t)?.prefix_range(prefix)?,
            None => 0..0,
        };
        let n = ks.entries[lo..].partition_point(|(rank, text)| match text {
            None => ids.contains(&(((rank - 1) / 2) as u32)),
            Some(t) => t.starts_with(prefix),
        });
        Ok(lo as u32..(lo + n) as u32)
    }

    fn search_keys(&self, cols: &[&Column], needle_lower: &str) -> Result<Vec<Bits>> {
        if let Some(p) = self.plain() {
            return p.search_keys(cols, needle_lower);
        }
        let spaces = cols
            .iter()
            .map(|c| self.space(c))
            .collect::<Result<Vec<_>>>()?;
        // Table strings: every chunk holding a referenced id is scanned once.
        let ov = &self.ov;
        let mut wanted: HashMap<u32, Bits> = HashMap::new();
        for ks in &spaces {
            if let Some(t) = ks.table {
                let len = ov.snapshot().table(t)?.len() as usize;
                let w = wanted.entry(t).or_insert_with(|| Bits::new(len));
                for (rank, text) in &ks.entries {
                    if text.is_none() && (((rank - 1) / 2) as usize) < len {
                        w.set(((rank - 1) / 2) as usize);
                    }
                }
            }
        }
        let mut buf = String::new();
        let found = search_tables(ov.snapshot(), &wanted, needle_lower)?;
        Ok(spaces
            .iter()
            .map(|ks| {
                let mut b = Bits::new(ks.entries.len());
                for (k, (rank, text)) in ks.entries.iter().enumerate() {
                    let hit = match text {
                        Some(t) => contains_folded(t, needle_lower, &mut buf),
                        None => ks
                            .table
                            .and_then(|t| found.get(&t))
                            .is_some_and(|f| f.get(((rank - 1) / 2) as usize)),
                    };
                    if hit {
                        b.set(k);
                    }
                }
                b
            })
            .collect())
    }

    fn rows_json(&self, rows: &[u32], fields: Option<&[String]>) -> Result<Vec<Value>> {
        if let Some(p) = self.plain() {
            return p.rows_json(rows, fields);
        }
        let sel = fields.map(|fs| {
            let mut s = Select::default();
            fs.iter().for_each(|f| s.add(f));
            s
        });
        let slots = rows
            .iter()
            .map(|&r| {
                self.slots
                    .get(r as usize)
                    .copied()
                    .ok_or_else(|| Error::NotFound {
                        what: "row",
                        name: r.to_string(),
                    })
            })
            .collect::<Result<Vec<u32>>>()?;
        // The snapshot's rows in one go: the shared writer is held only
        // while writing; parsing happens outside its lock.
        let from_snap: Vec<u32> = slots
            .iter()
            .copied()
            .filter(|&s| self.ov.held_row(s).is_none())
            .collect();
        let mut snap_rows = if from_snap.is_empty() {
            Vec::new()
        } else {
            let mut buf = vec![b'['];
            self.base.write_rows_json(&from_snap, None, &mut buf)?;
            buf.push(b']');
            serde_json::from_slice::<Vec<Value>>(&buf)
                .map_err(|e| Error::corrupt("row", from_snap[0] as u64, e.to_string()))?
        }
        .into_iter();
        slots
            .iter()
            .map(|&slot| match self.ov.held_row(slot) {
                Some(row) => Ok(match &sel {
                    Some(s) => s.apply(row),
                    None => row.clone(),
                }),
                None => {
                    let v = snap_rows.next().ok_or_else(|| {
                        Error::corrupt("overlay", slot as u64, "snapshot row missing")
                    })?;
                    Ok(match &sel {
                        Some(s) => s.apply(&v),
                        None => v,
                    })
                }
            })
            .collect()
    }
}
