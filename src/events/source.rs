//! The query engine over an overlay: [`OverlaySource`] implements
//! [`RowSource`], so `colsnap query --events` runs the same engine as a
//! plain snapshot, with results equal to those on a snapshot rebuilt from
//! the replayed JSON.
//!
//! **Base and delta.** The source keeps the snapshot's columns as loaded by
//! an engine over the snapshot alone (the *base*, shared by every source
//! built with [`OverlaySource::with_base`], so a column is decoded once for
//! a whole stream of events) and takes from the events only the *delta*:
//! created rows, the fields updates touched in overridden rows, deleted
//! rows, and the new strings. Loading a column copies the base cells of the
//! view's rows, replaces the few cells of the delta, and re-keys strings:
//! nothing is rebuilt per string and no string is decoded.
//!
//! **Key space.** A column's string keys number the strings of its table
//! and the new strings the events brought (those the table lacks) together
//! in string order: table id `t` becomes `t + (new strings sorting before
//! it)`, new string `j` (in order) `i + j` where `i` is its insertion
//! point. This is the 3-case rule of [`super::strkey::compare`] made dense.
//! Filters and searches map table lookups and new strings into it.
//! Timestamps of a column that also holds other strings become strings
//! there, as in a rebuilt snapshot.
//!
//! Columns inside arrays (`labels[].name`) work the same way: their items
//! are the base items of the view's rows plus the items of the delta rows.
//!
//! **Live.** [`OverlaySource::apply`] applies one more event and keeps
//! what the source learned: the view's rows are edited where the event
//! changed them, the delta's kind counts take the changed row out and put
//! it back, field types are typed again only where the event can change
//! them, and each one-key sort keeps its typed delta (keyed by row slot,
//! strings as table ids or insertion point and text, so no key depends on
//! the other new strings) and its merged order of the whole view, in which
//! the changed row is moved. A column whose typing changes (its last text
//! gone, say) is typed again on its next sort.

use super::event::{Event, EventOp};
use super::order::Order;
use super::overlay::{Held, Overlay, SlotMap, is_timestamp, replay};
use crate::error::{Error, Result};
use crate::model::{ColumnType, KIND_COUNT, Kind, PathSeg as Seg, push_key, top_key_path};
use crate::query::bits::Bits;
use crate::query::filter::{self, TextKeys};
use crate::query::loaded::{
    ABSENT, BOOL_ABSENT, BOOL_NULL, Cell, Class, Column, Missing, NULL, Values,
};
use crate::query::source::{FieldInfo, RowSource, SnapshotSource, contains_folded, search_tables};
use crate::query::{Engine, Filter};
#[cfg(not(target_arch = "wasm32"))]
use crate::read::StringWindow;
use crate::strings::StringTable;
use crate::timestamp;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

/// A column's key space: the table's strings and the column's new strings,
/// in string order.
#[derive(Debug)]
struct KeySpace {
    table: Option<u32>,
    /// Strings in the table.
    n: u32,
    /// New strings (not in the table), sorted; new string `j` has key
    /// `news[j].0 + j`, `news[j].0` being its insertion point.
    news: Vec<(u32, Box<str>)>,
    /// Insertion points of `news`, in order.
    ins: Vec<u32>,
    /// `ins` bucketed by `id >> shift`: the first index of each bucket.
    buckets: Vec<u32>,
    shift: u32,
}

impl KeySpace {
    fn new(table: Option<u32>, n: u32, mut news: Vec<(u32, Box<str>)>) -> KeySpace {
        news.sort_unstable();
        news.dedup();
        let ins: Vec<u32> = news.iter().map(|(i, _)| *i).collect();
        // About four buckets per new string, so a lookup scans a few.
        let want = (ins.len() as u64 * 4).next_power_of_two().max(1);
        let mut shift = 0;
        while (n as u64 + 1) >> shift > want {
            shift += 1;
        }
        let nb = ((n as u64) >> shift) as usize + 2;
        let mut buckets = Vec::with_capacity(if ins.is_empty() { 0 } else { nb });
        if !ins.is_empty() {
            let mut j = 0usize;
            for b in 0..nb {
                let lo = (b as u64) << shift;
                while j < ins.len() && (ins[j] as u64) < lo {
                    j += 1;
                }
                buckets.push(j as u32);
            }
        }
        KeySpace {
            table,
            n,
            news,
            ins,
            buckets,
            shift,
        }
    }

    fn len(&self) -> usize {
        self.n as usize + self.news.len()
    }

    /// Key of table id `id`: the id plus the new strings sorting before it
    /// (insertion point at most `id`).
    #[inline]
    fn table_key(&self, id: u32) -> u32 {
        if self.ins.is_empty() {
            return id;
        }
        let b = ((id >> self.shift) as usize).min(self.buckets.len() - 2);
        let (lo, hi) = (self.buckets[b] as usize, self.buckets[b + 1] as usize);
        let mut j = lo;
        while j < hi && self.ins[j] <= id {
            j += 1;
        }
        if j == hi {
            j += self.ins[hi..].partition_point(|&x| x <= id);
        }
        id + j as u32
    }

    /// Key (or insertion key) of a string the table lacks, `ins` being its
    /// insertion point.
    fn new_key(&self, ins: u32, s: &str) -> std::result::Result<u32, u32> {
        match self.news.binary_search_by(|(_, t)| (**t).cmp(s)) {
            Ok(j) => Ok(ins + j as u32),
            Err(j) => Err(ins + j as u32),
        }
    }
}

/// Split a display path (`labels[].name`, `a\.b`) into segments.
fn segments(path: &str) -> Result<Vec<Seg>> {
    crate::model::split_path(path).map_err(Error::Invalid)
}

/// The keys before the first array segment.
fn lead_keys(segs: &[Seg]) -> Vec<&str> {
    segs.iter()
        .map_while(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Elem => None,
        })
        .collect()
}

/// A patch's change of top-level key `k0`: the last one (`None`: the row
/// leaves it alone; `Some(None)`: removed).
fn change<'v>(ops: &'v [(Arc<str>, Option<Value>)], k0: &Arc<str>) -> Option<Option<&'v Value>> {
    ops.iter()
        .rev()
        .find(|(k, _)| Arc::ptr_eq(k, k0))
        .map(|(_, v)| v.as_ref())
}

/// The value of a JSON row at `segs`, a path of keys alone (`None`: absent).
fn key_value<'v>(row: Option<&'v Value>, segs: &[Seg]) -> Option<&'v Value> {
    let mut v = row;
    for s in segs {
        if let Seg::Key(k) = s {
            v = v.and_then(|v| v.as_object()).and_then(|o| o.get(k));
        }
    }
    v
}

/// [`key_value`] of one of many rows alike: each key is first looked for
/// at the place `hints` says it had in the row before (an object keeps
/// its keys' order, and rows written alike have them in the same places),
/// which spares hashing the key and probing the object's index; where it
/// is not there, the object's keys are searched and the hint follows.
fn key_value_at<'v>(row: &'v Value, segs: &[Seg], hints: &mut [usize]) -> Option<&'v Value> {
    let mut v = row;
    for (s, hint) in segs.iter().zip(hints.iter_mut()) {
        let Seg::Key(k) = s else {
            return None;
        };
        let o = v.as_object()?;
        v = match o.iter().nth(*hint) {
            Some((key, x)) if key == k => x,
            _ => {
                let (at, (_, x)) = o.iter().enumerate().find(|(_, (key, _))| *key == k)?;
                *hint = at;
                x
            }
        };
    }
    Some(v)
}

/// The items of a JSON row at `segs` (`None`: absent).
fn json_items<'v>(row: Option<&'v Value>, segs: &[Seg], out: &mut Vec<Option<&'v Value>>) {
    // Keys alone (no array): one item, found without a buffer.
    if !segs.contains(&Seg::Elem) {
        out.push(key_value(row, segs));
        return;
    }
    let mut cur: Vec<Option<&Value>> = vec![row];
    for s in segs {
        cur = match s {
            Seg::Key(k) => cur
                .into_iter()
                .map(|v| v.and_then(|v| v.as_object()).and_then(|o| o.get(k)))
                .collect(),
            Seg::Elem => cur
                .into_iter()
                .flat_map(|v| match v {
                    Some(Value::Array(a)) => a.iter().map(Some).collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .collect(),
        };
    }
    out.extend(cur);
}

/// Where a held row's cells at a column come from ([`OverlaySource::delta`]).
#[derive(Clone, Copy)]
enum Src<'v> {
    /// Its cells there are the snapshot's.
    Skip,
    /// Top-level changes of a snapshot row.
    Patch(&'v [(Arc<str>, Option<Value>)]),
    /// A row held as JSON.
    Row(&'v Value),
    /// Touched but held no more (no cells).
    Gone,
}

/// A delta cell: strings keep their text until the column is typed.
#[derive(Clone, Copy, Debug)]
enum Item<'v> {
    Cell(Cell),
    Str(&'v str),
}

fn item_of(v: Option<&Value>) -> Item<'_> {
    Item::Cell(match v {
        None => Cell::Absent,
        Some(Value::Null) => Cell::Null,
        Some(Value::Bool(b)) => Cell::Bool(*b),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Cell::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cell::UInt(u)
            } else {
                Cell::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Some(Value::String(s)) => return Item::Str(s),
        Some(Value::Object(_)) => Cell::Object,
        Some(Value::Array(a)) => Cell::Array(a.len().min(NULL as usize - 1) as u32),
    })
}

fn kind_of(c: &Cell) -> Kind {
    match c {
        Cell::Absent => Kind::Absent,
        Cell::Null => Kind::Null,
        Cell::Bool(false) => Kind::False,
        Cell::Bool(true) => Kind::True,
        Cell::Int(_) => Kind::Int,
        Cell::UInt(_) => Kind::UInt,
        Cell::Float(_) => Kind::Float,
        Cell::Str(_) => Kind::Str,
        Cell::Time(..) => Kind::Time,
        Cell::Object => Kind::Object,
        Cell::Array(_) => Kind::Array,
    }
}

/// Does an update of `touched` paths change the column whose leading keys are `lead`?
fn touches<'a>(mut touched: impl Iterator<Item = &'a [String]>, lead: &[&str]) -> bool {
    touched.any(|p| touches_one(p, lead))
}

/// Does an update of `path` change the column whose leading keys are `lead`?
fn touches_one(path: &[String], lead: &[&str]) -> bool {
    path.iter().zip(lead.iter()).all(|(a, b)| a.as_str() == *b)
}

/// What typing a column of the view starts from
/// ([`OverlaySource::typing`]).
struct Typing<'v> {
    /// The base column (or the one standing for a path the snapshot
    /// lacks), whether it is the path's own, and whether its items stand
    /// for the path's items ([`OverlaySource::base_column`]).
    base: Option<Arc<Column>>,
    own: bool,
    items: bool,
    /// The snapshot node of the path (its own column only).
    node: Option<u32>,
    /// The column's string table.
    table: Option<(u32, StringTable)>,
    delta: Delta<'v>,
    /// Kinds of the base items still in the view.
    counts: [u64; KIND_COUNT],
    /// Snapshot slots whose base items left the view.
    removed: Bits,
    /// Strings of the view's column read as text (else all as timestamps).
    live_text: bool,
    /// A snapshot slot in the view whose base string reads as text.
    witness: Option<u32>,
}

/// What a column's delta holds: the rows whose cells come from JSON, by
/// view row, with their items.
struct Delta<'v> {
    /// (view row, end of its items in `items`) of created rows and of
    /// overridden rows whose update touched the column, in view order
    /// ([`Delta::rows`]).
    rows: Vec<(u32, u32)>,
    /// The items of `rows`, one after the other.
    items: Vec<Item<'v>>,
    /// The slot of each of `rows`.
    row_slots: Vec<u32>,
    /// Slots taking their cells from JSON.
    json: Bits,
    /// Snapshot slots whose base cells left the view (deleted, or touched).
    removed: Vec<u32>,
}

impl<'v> Delta<'v> {
    /// (view row, items) of each delta row, in view order.
    fn rows(&self) -> impl ExactSizeIterator<Item = (u32, &[Item<'v>])> + '_ {
        let mut from = 0usize;
        self.rows.iter().map(move |&(r, end)| {
            let end = end as usize;
            let its = &self.items[from..end];
            from = end;
            (r, its)
        })
    }
}

/// What the delta's values are, at one display path.
#[derive(Clone, Copy, Debug, Default)]
struct PathKinds {
    kinds: [bool; KIND_COUNT],
    /// A string not reading as a timestamp.
    text: bool,
    /// A string reading as a timestamp.
    time: bool,
    /// A negative integer.
    neg: bool,
}

/// How many of the delta's values at one display path are of each kind
/// (counts, so that a changed row's values can be taken out again).
#[derive(Clone, Copy, Debug, Default)]
struct PathCounts {
    kinds: [u64; KIND_COUNT],
    text: u64,
    time: u64,
    neg: u64,
}

/// The delta's kinds by display path, and how many overridden rows each
/// top-level key was changed in: counts over the held rows, kept up to
/// date row by row across events.
#[derive(Clone, Debug, Default)]
struct DeltaKinds {
    paths: HashMap<String, PathCounts>,
    touched: HashMap<String, u64>,
}

/// Count one more (`add`) or one less.
fn bump(x: &mut u64, add: bool) {
    *x = if add { *x + 1 } else { x.saturating_sub(1) };
}

impl DeltaKinds {
    /// The kinds at `path` (none when no held value has it).
    fn kinds(&self, path: &str) -> PathKinds {
        let Some(c) = self.paths.get(path) else {
            return PathKinds::default();
        };
        let mut k = PathKinds {
            text: c.text > 0,
            time: c.time > 0,
            neg: c.neg > 0,
            ..Default::default()
        };
        for (b, n) in k.kinds.iter_mut().zip(c.kinds) {
            *b = n > 0;
        }
        k
    }

    /// Count `v` and the values under it at display path `path` (a
    /// buffer: extended for the values under it, then restored).
    fn walk(&mut self, v: &Value, path: &mut String, add: bool) {
        let e = match self.paths.get_mut(path.as_str()) {
            Some(e) => e,
            None => self.paths.entry(path.clone()).or_default(),
        };
        match item_of(Some(v)) {
            Item::Str(s) if is_timestamp(s) => bump(&mut e.time, add),
            Item::Str(_) => bump(&mut e.text, add),
            Item::Cell(c) => {
                bump(&mut e.kinds[kind_of(&c) as usize], add);
                if matches!(c, Cell::Int(i) if i < 0) {
                    bump(&mut e.neg, add);
                }
            }
        }
        let n = path.len();
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    push_key(path, false, k);
                    self.walk(x, path, add);
                    path.truncate(n);
                }
            }
            Value::Array(a) => {
                path.push_str("[]");
                for x in a {
                    self.walk(x, path, add);
                }
                path.truncate(n);
            }
            _ => {}
        }
    }
}

/// Slots per bucket of [`ViewMap::buckets`] (2^10).
const VIEW_BUCKET_BITS: u32 = 10;
/// Slots per granule of [`ViewMap::granules`] (2^4): 4 bytes per 16 rows,
/// so the table stays in cache, and granules with a run boundary are few.
const VIEW_GRANULE_BITS: u32 = 4;
/// A granule that is not inside one run.
const MIXED: i32 = i32::MIN;

/// The view row of every live slot without a per-row array: the
/// snapshot's rows keep their relative order in the view (an event
/// creates, deletes or changes a row in place), so they fall in runs of
/// consecutive slots at consecutive view rows, one run per stretch between
/// deletes and creates; created slots are listed alone. A few thousand
/// runs for thousands of events, so a lookup stays in cache where a
/// 4-byte-a-row map would not.
#[derive(Clone, Debug, Default)]
struct ViewMap {
    /// (first slot, first view row, length) of each run of snapshot
    /// slots, in view order (so in slot order).
    runs: Vec<(u32, u32, u32)>,
    /// Per bucket of 2^[`VIEW_BUCKET_BITS`] snapshot slots: the index of
    /// the last run starting at or before the bucket's first slot (0 when
    /// none).
    buckets: Vec<u32>,
    /// Per granule of 2^[`VIEW_GRANULE_BITS`] snapshot slots inside one
    /// run: view row minus slot ([`MIXED`]: look in `runs`). Most slots
    /// are found here with no search (a predictable branch). Made on first
    /// need ([`ViewMap::with_granules`]: a lookup of every row).
    granules: OnceLock<Vec<i32>>,
    n_snap: u32,
    /// View row of created slot `n_snap + i` (`u32::MAX`: deleted).
    created: Vec<u32>,
}

/// The index of the first slot in `slots[from..]` at `n` or past it: 16
/// slots at a time (one test over all 16, which the compiler turns into
/// vector code), then one by one in the 16 that hold it.
fn first_at_least(slots: &[u32], from: usize, n: u32) -> Option<usize> {
    let mut i = from;
    while let Some(c) = slots.get(i..i + 16) {
        if c.iter().fold(false, |a, &x| a | (x >= n)) {
            break;
        }
        i += 16;
    }
    slots.get(i..)?.iter().position(|&x| x >= n).map(|p| p + i)
}

/// Add the runs of `seg` (snapshot slots, strictly increasing, the first
/// at view row `r0`) to `runs`, the first one joining the last run when it
/// continues it. `gone` (the deleted snapshot slots, in order) says where
/// a run ends: at the next deleted slot past its first, or the end of
/// `seg`; one look at the slot there confirms it (strictly increasing
/// slots that end `k` past the first are the `k` consecutive ones), else
/// the run's end is searched for. `next` is where in `gone` to start: the
/// snapshot's slots increase along the view, so one cursor serves a
/// whole pass.
fn add_runs(runs: &mut Vec<(u32, u32, u32)>, seg: &[u32], r0: u32, gone: &[u32], next: &mut usize) {
    let mut i = 0usize;
    while i < seg.len() {
        let s0 = seg[i];
        while gone.get(*next).is_some_and(|&g| g <= s0) {
            *next += 1;
        }
        let rest = seg.len() - i;
        let hint = gone
            .get(*next)
            .map_or(rest, |&g| ((g - s0) as usize).min(rest));
        if hint > 0 && seg[i + hint - 1].wrapping_sub(s0) as usize == hint - 1 {
            push_run(runs, s0, r0 + i as u32, hint as u32);
            i += hint;
            continue;
        }
        // Strictly increasing slots: `seg[i + k] - s0 == k` holds for a
        // prefix of `k` (the run), found by galloping then bisecting.
        let ok = |k: usize| seg[i + k].wrapping_sub(s0) as usize == k;
        let (mut lo, mut step) = (1usize, 1usize);
        let mut hi = rest;
        while lo + step - 1 < rest {
            if ok(lo + step - 1) {
                lo += step;
                step *= 2;
            } else {
                hi = lo + step - 1;
                break;
            }
        }
        // `ok` holds below `lo`, fails at `hi` (or `hi` is the end).
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if ok(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        push_run(runs, s0, r0 + i as u32, lo as u32);
        i += lo;
    }
}

/// Add the run of `len` slots from `s0` at view row `r` to `runs`,
/// joining the last run when it continues it.
fn push_run(runs: &mut Vec<(u32, u32, u32)>, s0: u32, r: u32, len: u32) {
    match runs.last_mut() {
        Some(last) if last.0 + last.2 == s0 && last.1 + last.2 == r => last.2 += len,
        _ => runs.push((s0, r, len)),
    }
}

impl ViewMap {
    /// One pass over the overlay's block order, touching about one slot
    /// per run and per created slot: a stretch of snapshot slots (no
    /// created slot between them) increases strictly along the view, so
    /// the end of each run of consecutive slots in it is found by a
    /// galloping search instead of a look at every slot.
    fn new(ov: &Overlay) -> ViewMap {
        let n_snap = ov.snapshot_rows();
        let mut runs: Vec<(u32, u32, u32)> = Vec::new();
        let mut created = vec![u32::MAX; ov.slot_count().saturating_sub(n_snap as usize)];
        let mut r = 0u32;
        let gone = ov.deleted_snapshot_slots();
        let (gone, mut next) = (&gone[..], 0usize);
        for (blk, created_in) in ov.blocks_with_created() {
            if created_in == 0 {
                add_runs(&mut runs, blk, r, gone, &mut next);
            } else {
                // Snapshot stretches between the created slots (the scan
                // stops at the last of them).
                let (mut start, mut left) = (0usize, created_in);
                while left > 0
                    && let Some(k) = first_at_least(blk, start, n_snap)
                {
                    left -= 1;
                    add_runs(&mut runs, &blk[start..k], r + start as u32, gone, &mut next);
                    if let Some(x) = created.get_mut((blk[k] - n_snap) as usize) {
                        *x = r + k as u32;
                    }
                    start = k + 1;
                }
                add_runs(&mut runs, &blk[start..], r + start as u32, gone, &mut next);
            }
            r += blk.len() as u32;
        }
        let nb = (n_snap >> VIEW_BUCKET_BITS) as usize + 1;
        let mut buckets = Vec::with_capacity(nb);
        let mut i = 0usize;
        for b in 0..nb {
            let first = (b as u64) << VIEW_BUCKET_BITS;
            while i + 1 < runs.len() && u64::from(runs[i + 1].0) <= first {
                i += 1;
            }
            buckets.push(i as u32);
        }
        ViewMap {
            runs,
            buckets,
            granules: OnceLock::new(),
            n_snap,
            created,
        }
    }

    /// The map with its granules made (for lookups of many slots; a few
    /// lookups search the runs from their bucket instead).
    fn with_granules(&self) -> &ViewMap {
        self.granules.get_or_init(|| {
            let g = 1u32 << VIEW_GRANULE_BITS;
            let mut granules = vec![MIXED; self.n_snap.div_ceil(g) as usize];
            for &(s0, r0, len) in &self.runs {
                let off = i64::from(r0) - i64::from(s0);
                let Ok(off) = i32::try_from(off) else {
                    continue;
                };
                // Granules wholly inside the run.
                let (first, end) = (s0.div_ceil(g), (s0 + len) / g);
                for x in granules.iter_mut().take(end as usize).skip(first as usize) {
                    *x = off;
                }
            }
            granules
        });
        self
    }

    /// The view row of `slot` (`None`: not in the view).
    #[inline]
    fn row(&self, slot: u32) -> Option<u32> {
        if slot >= self.n_snap {
            return self
                .created
                .get((slot - self.n_snap) as usize)
                .copied()
                .filter(|&r| r != u32::MAX);
        }
        if let Some(g) = self.granules.get() {
            let off = *g.get((slot >> VIEW_GRANULE_BITS) as usize)?;
            if off != MIXED {
                return Some((i64::from(slot) + i64::from(off)) as u32);
            }
        }
        let mut i = *self.buckets.get((slot >> VIEW_BUCKET_BITS) as usize)? as usize;
        while i + 1 < self.runs.len() && self.runs[i + 1].0 <= slot {
            i += 1;
        }
        let &(s0, r0, len) = self.runs.get(i)?;
        (slot >= s0 && slot - s0 < len).then(|| r0 + (slot - s0))
    }

    /// The view row of every snapshot slot, in slot order (`u32::MAX`: not
    /// in the view, or set in `json`, a bitmap over slots): one pass over
    /// the runs, 4 bytes a snapshot row.
    fn dense_rows(&self, json: &Bits) -> Vec<u32> {
        // One sequential pass: runs are in slot order, gaps between them
        // (slots that left the view) are `u32::MAX`.
        let n = self.n_snap as usize;
        let mut out = Vec::with_capacity(n);
        for &(s0, r0, len) in &self.runs {
            let (s0, len) = (s0 as usize, len as usize);
            if s0 < out.len() || s0 + len > n {
                continue;
            }
            out.resize(s0, u32::MAX);
            out.extend(r0..r0 + len as u32);
        }
        out.resize(n, u32::MAX);
        for s in json.ones() {
            if let Some(x) = out.get_mut(s) {
                *x = u32::MAX;
            }
        }
        out
    }

    /// [`ViewMap::dense_rows`] as offsets: the view row of each snapshot
    /// slot less the slot (`i16::MIN`: not in the view, or set in `json`);
    /// `None` when some run's offset does not fit an `i16`.
    fn dense_offsets(&self, json: &Bits) -> Option<Vec<i16>> {
        let n = self.n_snap as usize;
        let mut out: Vec<i16> = Vec::with_capacity(n);
        for &(s0, r0, len) in &self.runs {
            let off = i16::try_from(i64::from(r0) - i64::from(s0))
                .ok()
                .filter(|&o| o != i16::MIN)?;
            let (s0, len) = (s0 as usize, len as usize);
            if s0 < out.len() || s0 + len > n {
                continue;
            }
            out.resize(s0, i16::MIN);
            out.resize(s0 + len, off);
        }
        out.resize(n, i16::MIN);
        for s in json.ones() {
            if let Some(x) = out.get_mut(s) {
                *x = i16::MIN;
            }
        }
        Some(out)
    }

    /// The snapshot slot at view row `row` (`None`: a created row, or
    /// past the view).
    fn snapshot_slot_at(&self, row: u32) -> Option<u32> {
        let i = self.runs.partition_point(|x| x.1 <= row).checked_sub(1)?;
        let (s0, r0, len) = self.runs[i];
        (row - r0 < len).then(|| s0 + (row - r0))
    }

    /// Snapshot slots not in the view (between runs), in order.
    fn deleted(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut next = 0u32;
        for &(s0, _, len) in &self.runs {
            out.extend(next..s0);
            next = s0 + len;
        }
        out.extend(next..self.n_snap);
        out
    }
}

/// The merged order's last pass: the base order's slots (`order`) turned
/// into view rows by `view_row` (`u32::MAX`: the slot's base cell does not
/// stay) and kept when `member`, each delta row `(row, place)` put before
/// the base slot at `place` (places increasing).
fn merge_pass(
    order: &[u32],
    places: &[(u32, usize)],
    count: usize,
    member: impl Fn(u32) -> bool,
    view_row: impl Fn(u32) -> u32,
) -> Vec<u32> {
    let mut out = Vec::with_capacity(count);
    let mut from = 0usize;
    let push_base = |slots: &[u32], out: &mut Vec<u32>| {
        for &s in slots {
            let v = view_row(s);
            if v != u32::MAX && member(v) {
                out.push(v);
            }
        }
    };
    for &(r, i) in places {
        push_base(&order[from..i], &mut out);
        out.push(r);
        from = i;
    }
    push_base(&order[from..], &mut out);
    out
}

/// [`RowSource`] over an [`Overlay`]: the rows of its view, in view order.
/// It owns the overlay (which owns a handle on its snapshot), so it can be
/// moved into an [`crate::query::Engine`] and shared between threads.
pub struct OverlaySource {
    ov: Overlay,
    /// The slot of each view row, built on first use (dropped when an
    /// event creates or deletes a row: the overlay's block order is the
    /// truth, see [`Self::slot_list`]).
    slots: OnceLock<Vec<u32>>,
    /// View row of each live held (overridden or created) slot, in view order.
    held: Vec<(u32, u32)>,
    /// Snapshot slots no longer in the view.
    deleted: Vec<u32>,
    /// The engine over the snapshot alone: its columns are the base.
    base: Engine,
    /// No event changed the view: everything goes to the base.
    plain: bool,
    fields: OnceLock<Vec<FieldInfo>>,
    /// Types of single fields asked for before the whole list
    /// ([`RowSource::has_field`]; `None`: no row of the view has it),
    /// cleared by every event.
    field_types: Mutex<HashMap<String, Option<ColumnType>>>,
    kinds: OnceLock<DeltaKinds>,
    /// The delta's kinds under one top-level key, by key: what typing one
    /// field needs while `kinds` (every field's) is not made; kept up to
    /// date by events as `kinds` is.
    key_kinds: Mutex<HashMap<String, DeltaKinds>>,
    spaces: Mutex<Vec<Arc<KeySpace>>>,
    /// View row of each live slot, built on first use (dropped when an
    /// event creates or deletes a row).
    view_of: OnceLock<ViewMap>,
    /// Typed deltas for one-key sorts, by path.
    sort_deltas: Mutex<HashMap<String, Option<Arc<SortDelta>>>>,
    /// Deltas for filters, by path (`None`: the engine loads the column),
    /// cleared by every event.
    filter_deltas: Mutex<HashMap<String, Option<Arc<FilterDelta>>>>,
    /// Per snapshot node: its table ids that may read as a timestamp
    /// ([`Self::text_left`]), counted once.
    digits: Mutex<HashMap<u32, u64>>,
    /// Per snapshot field: the kinds of the base items that left the view
    /// (rows deleted, or whose update touched the field), counted once
    /// per source, then kept up to date by [`OverlaySource::apply`] for
    /// the changed row alone ([`Self::removed_kinds`]).
    removed: Mutex<HashMap<String, Removed>>,
}

/// The base items of one snapshot field that left the view.
#[derive(Clone, Debug)]
struct Removed {
    /// The field's leading keys (what an update must touch).
    lead: Vec<String>,
    /// How many of each kind.
    kinds: [u64; KIND_COUNT],
}

/// The fields whose type an event can change.
enum Affected {
    /// Every field (a delete: any kind may lose its last item).
    All,
    /// Fields under these top-level keys (an update).
    Keys(Vec<String>),
    /// Fields at these display paths (a created row's).
    Paths(HashSet<String>),
}

/// What [`OverlaySource::view`] gives.
enum Got {
    Column(Column),
    /// The typed delta for merging into the base order (`None`: the base
    /// order cannot be reused, the engine sorts).
    Delta(Option<Arc<SortDelta>>),
}

/// The sort cell of a delta row: the engine's cell with strings kept as
/// table ids, or for a string the column's table lacks, its insertion point
/// and text. Ordered by the three-case rule of [`super::strkey::compare`]
/// (both in the table: ids; one new: insertion point against id; both new:
/// insertion point, then text), so no key depends on the other new strings
/// and one changed row is typed alone.
#[derive(Clone, Debug, PartialEq)]
enum SortCell {
    Cell(Cell),
    New(u32, Arc<str>),
}

impl SortCell {
    fn class(&self) -> Class {
        match self {
            SortCell::Cell(c) => c.class(),
            SortCell::New(..) => Class::Value,
        }
    }

    /// The order of two values (class [`Class::Value`]), as the engine's
    /// order of the same cells over a rebuilt snapshot.
    fn cmp_value(&self, o: &SortCell) -> std::cmp::Ordering {
        use std::cmp::Ordering::{Greater, Less};
        /// Rank of strings among kinds ([`Cell::rank`]).
        const STR_RANK: u8 = 2;
        match (self, o) {
            (SortCell::Cell(a), SortCell::Cell(b)) => a.cmp_value(b),
            (SortCell::New(i, a), SortCell::New(j, b)) => (i, a).cmp(&(j, b)),
            (SortCell::Cell(Cell::Str(id)), SortCell::New(ins, _)) => {
                if ins <= id {
                    Greater
                } else {
                    Less
                }
            }
            (SortCell::New(ins, _), SortCell::Cell(Cell::Str(id))) => {
                if ins <= id {
                    Less
                } else {
                    Greater
                }
            }
            (SortCell::Cell(a), SortCell::New(..)) => a.rank().cmp(&STR_RANK),
            (SortCell::New(..), SortCell::Cell(b)) => STR_RANK.cmp(&b.rank()),
        }
    }
}

/// A column's delta typed for sorting, kept by the source and carried
/// across events ([`OverlaySource::apply`] re-types only the changed
/// row): a query over the view merges it into the base engine's order.
#[derive(Clone, Debug)]
struct SortDelta {
    /// Strings of the column read as text (else all as timestamps).
    live_text: bool,
    /// A snapshot slot whose base string (still in the view) reads as
    /// text: while it stays, the column stays text.
    witness: Option<u32>,
    /// The snapshot's column holds no string.
    base_no_str: bool,
    /// The column's string table.
    table: Option<StringTable>,
    /// Snapshot slots taking their cells from JSON.
    json: Bits,
    /// Sort cell of each delta slot, and how many of its items are
    /// strings not reading as timestamps.
    cells: SlotMap<(SortCell, u32)>,
    /// Sum of the text items of `cells`.
    text_items: u64,
    /// (sort cell, view row) of the delta rows in the engine's order,
    /// ascending and descending (on first use after each event).
    sorted: [OnceLock<Vec<(SortCell, u32)>>; 2],
    /// The slot of every row of the view in the engine's order,
    /// ascending and descending: the merge's result, kept up to date
    /// across events by moving the changed row ([`OverlaySource::apply`]).
    /// Slots, in blocks: a create or delete elsewhere leaves the relative
    /// order of the other rows as it was, so nothing is renumbered, and
    /// moving a row costs O(rows / block + block).
    merged: [OnceLock<Order>; 2],
    /// `merged` as view rows, made on the first sort after each event
    /// (every event resets it: a create or delete shifts view rows).
    merged_rows: [OnceLock<Vec<u32>>; 2],
    /// Set when every row was first asked in this direction: the first
    /// such query takes the merge's order as its answer (no copy kept),
    /// a second one keeps the order for the queries and events after it.
    asked_all: [OnceLock<()>; 2],
}

/// A column's delta for filters ([`OverlaySource::filter_rows`]), for a
/// column of one item per row that the snapshot and the view both hold as
/// strings alone (with nulls and absent values): a base row matches a
/// filter in the view exactly as it does in the snapshot (string keys
/// order like the strings in both), so only the delta rows are tested,
/// their strings keyed among the delta's own.
#[derive(Debug)]
struct FilterDelta {
    /// View rows of the delta, in view order.
    rows: Vec<u32>,
    /// The delta rows' cells (keys into `strs`), typed as the view's column.
    col: Column,
    /// The delta's distinct strings, in order.
    strs: Vec<Box<str>>,
}

/// Where an event moved its row in the view: created at a view row,
/// deleted from one, or changed in place.
#[derive(Clone, Copy, Debug)]
enum Move {
    Create(u32),
    Delete,
    Update(u32),
}

/// Up to this many distinct strings in a column's delta are placed in its
/// table one by one; more take the overlay's placements of every string
/// the events brought ([`Overlay::placed`], kept across sources).
const FEW_STRINGS: usize = 256;

/// The longest page [`OverlaySource::sort_page`] answers by turning each
/// kept slot into its view row alone (O(rows / block + block) each), and
/// at most a quarter of the view; longer ranges map the whole kept order
/// once.
const PAGE_LOOKUPS: usize = 256;

/// The engine's total order of (sort cell, view row) pairs of one column.
#[inline]
fn order_cmp(desc: bool, a: (&SortCell, u32), b: (&SortCell, u32)) -> std::cmp::Ordering {
    match a.0.class().cmp(&b.0.class()) {
        std::cmp::Ordering::Equal if a.0.class() == Class::Value => {
            let o = a.0.cmp_value(b.0);
            if desc { o.reverse() } else { o }
        }
        o => o,
    }
    .then(a.1.cmp(&b.1))
}

/// The sort cell of a delta row whose items at the column are `items`
/// (a list sorts by its first item, null when empty), and how many of
/// them are strings not reading as timestamps.
fn sort_entry(
    items: &[Item<'_>],
    live_text: bool,
    table: Option<&crate::read::Finder<'_>>,
) -> Result<(SortCell, u32)> {
    let text = items
        .iter()
        .filter(|it| matches!(it, Item::Str(s) if !is_timestamp(s)))
        .count() as u32;
    let cell = match items.first() {
        None => SortCell::Cell(Cell::Null),
        Some(Item::Cell(c)) => SortCell::Cell(*c),
        Some(Item::Str(s)) if live_text => match table {
            Some(t) => match t.find(s)? {
                Ok(id) => SortCell::Cell(Cell::Str(id)),
                Err(ins) => SortCell::New(ins, (*s).into()),
            },
            None => SortCell::New(0, (*s).into()),
        },
        Some(Item::Str(s)) => {
            let ts = timestamp::parse(s)
                .ok_or_else(|| Error::corrupt("overlay", 0, format!("timestamp {s:?}")))?;
            SortCell::Cell(Cell::Time(ts.secs, ts.nanos))
        }
    };
    Ok((cell, text))
}

/// The tie key of each held row (`held`: view row and slot, in view
/// order; `slot_at`: the snapshot slot at a view row): a snapshot row in slot `s`
/// has `2s + 1`; a created row `2(p + 1)`, `p` being the slot of the last
/// snapshot row before it in the view (0 when none). Snapshot rows keep
/// their relative order in the view, so tie keys do not decrease along
/// the view, and equal ones are created rows with no snapshot row between
/// them. Rows that are not held are snapshot rows.
fn tie_keys(held: &[(u32, u32)], slot_at: impl Fn(u32) -> Option<u32>, n_snap: u32) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::with_capacity(held.len());
    for (i, &(r, s)) in held.iter().enumerate() {
        let t = if s < n_snap {
            2 * u64::from(s) + 1
        } else if r == 0 {
            0
        } else if i > 0 && held[i - 1].0 == r - 1 {
            // The row before is held: its key, or past it when a snapshot row.
            let (prev, ps) = (out[i - 1], held[i - 1].1);
            if ps < n_snap { prev + 1 } else { prev }
        } else {
            // The row before is a snapshot row, not held.
            let p = slot_at(r - 1).unwrap_or(0);
            2 * (u64::from(p) + 1)
        };
        out.push(t);
    }
    out
}

impl SortDelta {
    /// The delta rows of the view (`held`: view row and slot of every
    /// held slot, in view order) in the engine's order.
    fn sorted(&self, desc: bool, held: &[(u32, u32)]) -> &[(SortCell, u32)] {
        self.sorted[desc as usize].get_or_init(|| {
            let mut v: Vec<(SortCell, u32)> = held
                .iter()
                .filter_map(|&(r, s)| self.cells.get(&s).map(|(c, _)| (c.clone(), r)))
                .collect();
            v.sort_unstable_by(|a, b| order_cmp(desc, (&a.0, a.1), (&b.0, b.1)));
            v
        })
    }

    /// Replace the entry of `slot` (`None`: its cells are the base's).
    fn set(&mut self, slot: u32, entry: Option<(SortCell, u32)>) {
        if let Some((_, t)) = self.cells.remove(&slot) {
            self.text_items -= u64::from(t);
        }
        if let Some(e) = entry {
            self.text_items += u64::from(e.1);
            if (slot as usize) < self.json.len() {
                self.json.set(slot as usize);
            }
            self.cells.insert(slot, e);
        }
        self.sorted = Default::default();
    }
}

/// A copy of the source (its overlay copied, see [`Overlay`]'s `Clone`;
/// the base engine shared): apply more events to the copy with
/// [`OverlaySource::apply`] while the original keeps serving. Costs a pass
/// over the view's rows (its row order and slot map) plus the events'
/// own data; what the source learned (field types, the delta's kinds,
/// typed sort deltas) comes along, so the copy's next sorted query
/// merges as the original's would.
impl Clone for OverlaySource {
    fn clone(&self) -> OverlaySource {
        OverlaySource {
            ov: self.ov.clone(),
            slots: self.slots.clone(),
            held: self.held.clone(),
            deleted: self.deleted.clone(),
            base: self.base.clone(),
            plain: self.plain,
            fields: self.fields.clone(),
            field_types: Mutex::new(lock_clone(&self.field_types)),
            kinds: self.kinds.clone(),
            key_kinds: Mutex::new(lock_clone(&self.key_kinds)),
            // Key spaces belong to the columns of engines over this source.
            spaces: Mutex::new(Vec::new()),
            view_of: self.view_of.clone(),
            sort_deltas: Mutex::new(lock_clone(&self.sort_deltas)),
            filter_deltas: Mutex::new(lock_clone(&self.filter_deltas)),
            digits: Mutex::new(lock_clone(&self.digits)),
            removed: Mutex::new(lock_clone(&self.removed)),
        }
    }
}

impl std::fmt::Debug for OverlaySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlaySource")
            .field("rows", &self.ov.len())
            .finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::Invalid("a lock was poisoned by an earlier panic".into())
}

/// A copy of what a mutex holds (a cache: empty when poisoned).
fn lock_clone<T: Clone + Default>(m: &Mutex<T>) -> T {
    m.lock().map(|g| g.clone()).unwrap_or_default()
}

/// An applied event's row that the source could not find.
fn lost(key: &Value) -> Error {
    Error::corrupt(
        "overlay",
        0,
        format!("the row of key {key} is not in the view"),
    )
}

impl OverlaySource {
    /// Query the current view of `ov` (later events need a new source).
    pub fn new(ov: Overlay) -> Self {
        let base = Engine::new(SnapshotSource::new(ov.snapshot().clone()));
        Self::with_base(ov, base)
    }

    /// Query the current view of `ov`, taking the snapshot's columns from
    /// `base`, an engine over `ov`'s snapshot alone ([`OverlaySource::base`]
    /// of an earlier source): the columns it loaded are not decoded again.
    /// A live view follows a stream of events with
    /// [`OverlaySource::apply`] on one source (what it learned is kept and
    /// only the changed row is typed again); a new source with the same
    /// base also works, and types the delta again on its first queries.
    /// Building a source costs one pass over the row order (no column is
    /// read until a query needs it).
    ///
    /// An engine over another snapshot is not used (a fresh base is made).
    pub fn with_base(ov: Overlay, base: Engine) -> Self {
        let snap = ov.snapshot().clone();
        let base =
            if base.rows() == snap.rows() as usize && base.fields().len() == snap.columns().len() {
                base
            } else {
                Engine::new(SnapshotSource::new(snap.clone()))
            };
        let plain = ov.overridden() == 0 && ov.len() as u64 == snap.rows();
        // One pass over the block order: the view rows of the snapshot's
        // rows as runs (no per-row array), so the held rows' view rows
        // and the deleted snapshot rows come from lookups.
        let map = ViewMap::new(&ov);
        // Sorted as one integer each (view row high, slot low): the same
        // order as the pairs, cheaper to compare.
        let mut keys: Vec<u64> = ov
            .held_slots()
            .filter_map(|s| map.row(s).map(|r| u64::from(r) << 32 | u64::from(s)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let held: Vec<(u32, u32)> = keys.iter().map(|&k| ((k >> 32) as u32, k as u32)).collect();
        let deleted = map.deleted();
        OverlaySource {
            slots: OnceLock::new(),
            held,
            deleted,
            ov,
            base,
            plain,
            fields: OnceLock::new(),
            field_types: Mutex::new(HashMap::new()),
            kinds: OnceLock::new(),
            key_kinds: Mutex::new(HashMap::new()),
            spaces: Mutex::new(Vec::new()),
            view_of: OnceLock::from(map),
            sort_deltas: Mutex::new(HashMap::new()),
            filter_deltas: Mutex::new(HashMap::new()),
            digits: Mutex::new(HashMap::new()),
            removed: Mutex::new(HashMap::new()),
        }
    }

    /// The engine over the snapshot alone that holds the base columns (a
    /// cheap clone), for [`OverlaySource::with_base`].
    pub fn base(&self) -> Engine {
        self.base.clone()
    }

    /// The overlay back.
    pub fn into_inner(self) -> Overlay {
        self.ov
    }

    /// Apply one more event to the overlay ([`Overlay::apply`]) and bring
    /// the source up to date with it, keeping what it learned: the view's
    /// row order and changed rows are edited where the event changed them,
    /// and each typed sort delta re-types only the changed row, so the
    /// next sorted query merges as before instead of typing every changed
    /// row again. Equal to a new source over the overlay after the event
    /// ([`OverlaySource::with_base`]). Make a new engine over the source
    /// for the next queries (an engine keeps the columns it loaded). On
    /// error nothing changes.
    pub fn apply(&mut self, ev: &Event, line: u64) -> Result<()> {
        let before = match ev.op {
            EventOp::Create { .. } => None,
            _ => self.ov.slot_of(&ev.key)?,
        };
        let len = self.ov.len();
        // The view row of `before`, while the view is still as before.
        let pos = match before {
            Some(s) => self.position(s),
            None => None,
        };
        // What the event can change the type of.
        let row_paths = |row: &serde_json::Map<String, Value>| {
            let mut t = DeltaKinds::default();
            for (k, v) in row {
                let mut p = top_key_path(k);
                t.walk(v, &mut p, true);
            }
            Affected::Paths(t.paths.into_keys().collect())
        };
        let affected = match &ev.op {
            EventOp::Create { row, .. } => row_paths(row),
            EventOp::Update { set, remove } => Affected::Keys(
                set.iter()
                    .map(|(p, _)| p)
                    .chain(remove)
                    .filter_map(|p| p.first().cloned())
                    .collect(),
            ),
            // A delete of a row held as JSON: the fields where it has a
            // value (a kind may lose its last item there); a field the
            // row lacks keeps its items, so its type. Of a snapshot row:
            // every field (its base items are not read here; typing a
            // field takes the removed base items' kinds, kept counted).
            EventOp::Delete => match before.and_then(|s| self.ov.held(s)) {
                Some(Held::Row(Value::Object(row))) => row_paths(row),
                _ => Affected::All,
            },
        };
        let had_new = before.is_some_and(|s| !self.new_paths(Some(s)).is_empty());
        // The changed snapshot row's touched paths before the event (its
        // base items left the fields they touch).
        // (A list of touched paths never changes: its id is enough.)
        let touched_before: Option<Option<u32>> = before
            .filter(|&s| s < self.ov.snapshot_rows())
            .map(|s| self.ov.touched_list(s));
        self.settle_orders()?;
        let mut kinds = self.kinds.take();
        let mut key_kinds = std::mem::take(self.key_kinds.get_mut().map_err(|_| poisoned())?);
        let old_fields = self.fields.take();
        if let Some(s) = before {
            if let Some(d) = kinds.as_mut() {
                self.count_slot(d, s, false);
            }
            for (k, d) in &mut key_kinds {
                self.count_slot_key(d, s, k, false);
            }
        }
        if let Err(e) = self.ov.apply(ev, line) {
            if let Some(s) = before {
                if let Some(d) = kinds.as_mut() {
                    self.count_slot(d, s, true);
                }
                for (k, d) in &mut key_kinds {
                    self.count_slot_key(d, s, k, true);
                }
            }
            *self.key_kinds.get_mut().map_err(|_| poisoned())? = key_kinds;
            self.kinds = kinds.map(OnceLock::from).unwrap_or_default();
            self.fields = old_fields.map(OnceLock::from).unwrap_or_default();
            return Err(e);
        }
        let n_snap = self.ov.snapshot_rows();
        let mv;
        let slot = match &ev.op {
            EventOp::Create { at, .. } => {
                let slot = self.ov.slot_count() as u32 - 1;
                let at = at.map_or(len, |a| a as usize);
                for h in &mut self.held {
                    if h.0 as usize >= at {
                        h.0 += 1;
                    }
                }
                let i = self.held.partition_point(|h| (h.0 as usize) < at);
                self.held.insert(i, (at as u32, slot));
                mv = Move::Create(at as u32);
                // The overlay's block order is the truth; the flat maps
                // are built again when a query needs them.
                self.slots = OnceLock::new();
                self.view_of = OnceLock::new();
                slot
            }
            EventOp::Update { .. } => {
                let (slot, r) = before.zip(pos).ok_or_else(|| lost(&ev.key))?;
                let i = self.held.partition_point(|h| h.0 < r);
                if self.held.get(i).is_none_or(|h| h.0 != r) {
                    self.held.insert(i, (r, slot));
                }
                mv = Move::Update(r);
                slot
            }
            EventOp::Delete => {
                let (slot, r) = before.zip(pos).ok_or_else(|| lost(&ev.key))?;
                mv = Move::Delete;
                self.held.retain(|h| h.1 != slot);
                for h in &mut self.held {
                    if h.0 > r {
                        h.0 -= 1;
                    }
                }
                self.slots = OnceLock::new();
                self.view_of = OnceLock::new();
                if slot < n_snap {
                    let i = self.deleted.partition_point(|&d| d < slot);
                    self.deleted.insert(i, slot);
                }
                slot
            }
        };
        self.plain = self.ov.overridden() == 0 && self.ov.len() as u64 == n_snap as u64;
        self.spaces.get_mut().map_err(|_| poisoned())?.clear();
        self.filter_deltas
            .get_mut()
            .map_err(|_| poisoned())?
            .clear();
        self.field_types.get_mut().map_err(|_| poisoned())?.clear();
        // The removed base items: the changed snapshot row's, in the
        // fields where it left (or came back to) the view.
        if let (Some(s), Some(tb)) = (before, touched_before.as_ref()) {
            let mut removed = std::mem::take(self.removed.get_mut().map_err(|_| poisoned())?);
            let live = self.ov.contains_slot(s);
            let now = self.ov.touched_list(s);
            let mut failed = false;
            for (path, r) in removed.iter_mut() {
                let lead: Vec<&str> = r.lead.iter().map(String::as_str).collect();
                let was = tb.is_some_and(|l| touches(self.ov.touch_list(l), &lead));
                let is = !live || now.is_some_and(|l| touches(self.ov.touch_list(l), &lead));
                if was == is {
                    continue;
                }
                let Ok(col) = self.base.column(path) else {
                    failed = true;
                    break;
                };
                for i in col.items(s as usize) {
                    let k = &mut r.kinds[kind_of(&col.values.cell(i)) as usize];
                    *k = if is { *k + 1 } else { k.saturating_sub(1) };
                }
            }
            if failed {
                removed.clear();
            }
            *self.removed.get_mut().map_err(|_| poisoned())? = removed;
        }
        // The delta's kinds: the changed row counted again. Field types:
        // those the event can change typed again, the others kept (all of
        // them again when the row has fields the snapshot lacks).
        if let Some(d) = kinds.as_mut() {
            self.count_slot(d, slot, true);
        }
        for (k, d) in &mut key_kinds {
            self.count_slot_key(d, slot, k, true);
        }
        self.kinds = kinds.map(OnceLock::from).unwrap_or_default();
        *self.key_kinds.get_mut().map_err(|_| poisoned())? = key_kinds;
        let has_new = !self.new_paths(Some(slot)).is_empty();
        if let Some(old) = old_fields
            && !had_new
            && !has_new
            && !self.plain
            && let Ok(f) = self.update_fields(&old, &affected)
        {
            self.fields = OnceLock::from(f);
        }
        // Each typed sort delta re-types the changed slot alone while the
        // column's typing (text or timestamps) stays; else it is typed
        // again on its next sort.
        let mut deltas = std::mem::take(self.sort_deltas.get_mut().map_err(|_| poisoned())?);
        deltas.retain(|path, d| {
            // Shared with a clone of the source: copied first.
            let Some(sd) = d.as_mut().map(Arc::make_mut) else {
                return false;
            };
            self.retype_slot(path, sd, slot, mv).unwrap_or(false)
        });
        *self.sort_deltas.get_mut().map_err(|_| poisoned())? = deltas;
        Ok(())
    }

    /// The field list after an event that changed only what `affected`
    /// names (and brought no field the snapshot lacks), from the list
    /// before it: exactly [`Self::compute_fields`].
    fn update_fields(&self, old: &[FieldInfo], affected: &Affected) -> Result<Vec<FieldInfo>> {
        let snap = self.ov.snapshot();
        let before: HashMap<&str, &FieldInfo> = old.iter().map(|f| (f.path.as_str(), f)).collect();
        let mut out = Vec::with_capacity(old.len());
        for f in self.base.fields() {
            let hit = match affected {
                Affected::All => true,
                Affected::Keys(ks) => {
                    let segs = segments(&f.path)?;
                    lead_keys(&segs)
                        .first()
                        .is_some_and(|k| ks.iter().any(|x| x == k))
                }
                // An array's element path also follows the array.
                Affected::Paths(ps) => {
                    ps.contains(&f.path)
                        || f.path.strip_suffix("[]").is_some_and(|p| ps.contains(p))
                }
            };
            if hit {
                let node = snap
                    .node_by_path(&f.path)
                    .ok_or_else(|| Error::corrupt("overlay", 0, format!("field `{}`", f.path)))?;
                if let Some(ty) = self.field_type(&f.path, Some((node, f.list)))? {
                    out.push(FieldInfo { ty, ..f.clone() });
                }
            } else if let Some(&o) = before.get(f.path.as_str()) {
                out.push(o.clone());
            }
        }
        out.extend(
            old.iter()
                .filter(|f| snap.node_by_path(&f.path).is_none())
                .cloned(),
        );
        Ok(out)
    }

    /// The view row of live `slot`: from the flat map when a query built
    /// it, else from the overlay's block order (O(rows / block + block)).
    fn position(&self, slot: u32) -> Option<u32> {
        match self.view_of.get() {
            Some(v) => v.row(slot),
            None => self.ov.position(slot),
        }
    }

    /// The slot of each view row, in view order (built once after each
    /// create or delete).
    fn slot_list(&self) -> &[u32] {
        self.slots.get_or_init(|| self.ov.slots())
    }

    /// The slots of view rows `rows`: from the flat list when built (or
    /// when many rows are asked), else each from the block order.
    fn slots_of(&self, rows: &[u32]) -> Result<Vec<u32>> {
        let flat = self.slots.get().is_some() || rows.len() > 64;
        rows.iter()
            .map(|&r| {
                let s = if flat {
                    self.slot_list().get(r as usize).copied()
                } else {
                    self.ov.slot_at(r)
                };
                s.ok_or_else(|| Error::NotFound {
                    what: "row",
                    name: r.to_string(),
                })
            })
            .collect()
    }

    /// Re-type `slot` in the sort delta of `path`; false when the column's
    /// typing may have changed (the delta is then typed again).
    fn retype_slot(&self, path: &str, sd: &mut SortDelta, slot: u32, mv: Move) -> Result<bool> {
        sd.merged_rows = Default::default();
        let segs = segments(path)?;
        let lead = lead_keys(&segs);
        let mut buf = Vec::new();
        let items = self.slot_items(slot, &segs, &lead, &mut buf);
        let entry = match items {
            Some(its) => {
                let finder = sd.table.as_ref().map(StringTable::finder).transpose()?;
                Some(sort_entry(&its, sd.live_text, finder.as_ref())?)
            }
            None => None,
        };
        // A row changed in place whose sort cell stays keeps its place.
        let stays = matches!(mv, Move::Update(_))
            && sd.cells.get(&slot).map(|e| &e.0) == entry.as_ref().map(|e| &e.0);
        sd.set(slot, entry);
        // The typing stays while its reason does: text in the delta, the
        // witness's base string still in the view, or no string at all.
        let gone = |s: u32| {
            !self.ov.contains_slot(s) || self.ov.touched(s).is_some_and(|t| touches(t, &lead))
        };
        if sd.witness.is_some_and(gone) {
            sd.witness = None;
        }
        let live_text = if sd.text_items > 0 || sd.witness.is_some() {
            true
        } else if sd.base_no_str {
            false
        } else {
            return Ok(false);
        };
        if live_text != sd.live_text {
            return Ok(false);
        }
        if stays {
            return Ok(true);
        }
        // The kept orders of the whole view (slots): the row taken out and
        // put back where its cell goes. A create or delete elsewhere keeps
        // the other rows' relative order, so nothing is renumbered.
        let n_snap = self.ov.snapshot_rows();
        let SortDelta { cells, merged, .. } = sd;
        let mut col = None;
        for (desc, m) in [false, true].into_iter().zip(merged.iter_mut()) {
            let Some(m) = m.get_mut() else {
                continue;
            };
            if let Move::Delete | Move::Update(_) = mv
                && !m.remove(slot)
            {
                return Ok(false);
            }
            let (Move::Create(r) | Move::Update(r)) = mv else {
                continue;
            };
            let col = match &col {
                Some(c) => c,
                None => col.insert(self.base.column(path)?),
            };
            let cell = |s: u32| -> Option<SortCell> {
                Some(match cells.get(&s) {
                    Some((c, _)) => c.clone(),
                    None if s < n_snap => SortCell::Cell(col.sort_cell(s as usize)),
                    None => return None,
                })
            };
            let Some(me) = cell(slot) else {
                return Ok(false);
            };
            let mut bad = false;
            // (class, value in direction, view row) of `x` before `me`;
            // the view row is looked up only on equal cells.
            let i = m.partition_point(|x| {
                let Some(c) = cell(x) else {
                    bad = true;
                    return false;
                };
                let o = match c.class().cmp(&me.class()) {
                    std::cmp::Ordering::Equal if c.class() == Class::Value => {
                        let o = c.cmp_value(&me);
                        if desc { o.reverse() } else { o }
                    }
                    o => o,
                };
                match o {
                    std::cmp::Ordering::Equal => match self.position(x) {
                        Some(p) => p < r,
                        None => {
                            bad = true;
                            false
                        }
                    },
                    o => o == std::cmp::Ordering::Less,
                }
            });
            if bad {
                return Ok(false);
            }
            m.insert(i, slot);
        }
        Ok(true)
    }

    /// The items at `segs` of `slot` when its cells there come from JSON
    /// (a created row, or an overridden row whose update touched the
    /// column), else `None`: as [`Self::delta`] takes them.
    fn slot_items<'a>(
        &'a self,
        slot: u32,
        segs: &[Seg],
        lead: &[&str],
        buf: &mut Vec<Option<&'a Value>>,
    ) -> Option<Vec<Item<'a>>> {
        if !self.ov.contains_slot(slot) {
            return None;
        }
        if slot < self.ov.snapshot_rows()
            && !self.ov.touched(slot).is_some_and(|t| touches(t, lead))
        {
            return None;
        }
        buf.clear();
        match self.ov.held(slot)? {
            Held::Row(row) => json_items(Some(row), segs, buf),
            Held::Patch(ops) => {
                let (Seg::Key(k0), rest) = segs.split_first()? else {
                    return None;
                };
                let v = ops
                    .iter()
                    .rev()
                    .find(|(k, _)| **k == **k0)
                    .map(|(_, v)| v.as_ref())?;
                json_items(v, rest, buf);
            }
        }
        Some(buf.iter().map(|v| item_of(*v)).collect())
    }

    /// The overlay.
    pub fn overlay(&self) -> &Overlay {
        &self.ov
    }

    fn base_src(&self) -> &dyn RowSource {
        self.base.source().as_ref()
    }

    /// The source over the snapshot when no event changed the view.
    fn plain(&self) -> Option<&dyn RowSource> {
        self.plain.then(|| self.base_src())
    }

    fn space(&self, col: &Column) -> Result<Arc<KeySpace>> {
        self.spaces
            .lock()
            .map_err(|_| poisoned())?
            .get(col.keyspace as usize)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("column `{}` has no key space", col.path)))
    }

    /// The table index and table of the column at `node`.
    fn table_of(&self, node: Option<u32>) -> Result<Option<(u32, StringTable)>> {
        let snap = self.ov.snapshot();
        if snap.footer().tables.is_empty() {
            return Ok(None);
        }
        let t = node.map_or(0, |n| snap.footer().nodes[n as usize].table);
        Ok(Some((t, snap.table(t)?)))
    }

    /// The delta of the column at `segs`.
    fn delta(&self, segs: &[Seg]) -> Delta<'_> {
        let lead = lead_keys(segs);
        // Whether each distinct list of touched paths touches the column.
        let hits: Vec<bool> = self.ov.touch_hits(|p| touches_one(p, &lead));
        let n_snap = self.ov.snapshot_rows();
        // The column's first key and what follows it, and the patches'
        // shared key of it (`None`: no patch changes the column).
        let first = match segs.split_first() {
            Some((Seg::Key(k0), rest)) => Some((self.ov.patch_key(k0), rest)),
            _ => None,
        };
        // 1. Where each held row's cells at the column come from: the
        // lookups alone, in a loop of their own so that their cache misses
        // overlap. A snapshot row held as a patch (the usual update) needs
        // one: its touched paths are its changes' keys.
        let src: Vec<Src<'_>> = self
            .held
            .iter()
            .map(|&(_, s)| {
                if s < n_snap {
                    if first.is_some()
                        && let Some(ops) = self.ov.patch(s)
                    {
                        return Src::Patch(ops);
                    }
                    match self.ov.touched_list(s) {
                        Some(i) if hits.get(i as usize) == Some(&true) => {}
                        _ => return Src::Skip,
                    }
                }
                match self.ov.held(s) {
                    Some(Held::Row(row)) => Src::Row(row),
                    Some(Held::Patch(ops)) => Src::Patch(ops),
                    None => Src::Gone,
                }
            })
            .collect();
        // 2. A column with one item per row (no array on its path): the
        // value at it of each row held as JSON, looked up in the order of
        // the rows' addresses rather than the view's, and at the place
        // its key had in the row before. Such rows are objects of their
        // own, allocated as events came: in view order each lookup is a
        // few cache misses (the object's index, its entries, the key's
        // text), in address order the next row is near the last.
        let mut looked: Vec<Option<Option<&Value>>> = Vec::new();
        if !segs.contains(&Seg::Elem) {
            let mut by_addr: Vec<(usize, u32)> = src
                .iter()
                .enumerate()
                .filter_map(|(i, s)| match *s {
                    Src::Row(row) => Some((std::ptr::from_ref(row).addr(), i as u32)),
                    _ => None,
                })
                .collect();
            by_addr.sort_unstable();
            looked = vec![None; src.len()];
            let mut hints = vec![0usize; segs.len()];
            for (_, i) in by_addr {
                if let Src::Row(row) = src[i as usize] {
                    looked[i as usize] = Some(key_value_at(row, segs, &mut hints));
                }
            }
        }
        // 3. The values at the column, one run per delta row.
        let mut json = Bits::new(self.ov.slot_count());
        let mut removed = self.deleted.clone();
        let mut vals: Vec<Option<&Value>> = Vec::with_capacity(src.len());
        let mut ends: Vec<(u32, u32, usize)> = Vec::with_capacity(src.len());
        for (i, (&(r, s), src)) in self.held.iter().zip(&src).enumerate() {
            match (*src, looked.get(i)) {
                (Src::Skip, _) => continue,
                (Src::Gone, _) => {}
                (Src::Row(_), Some(&Some(v))) => vals.push(v),
                (Src::Patch(ops), _) => {
                    // Only top-level changes: the value of the column's
                    // first key is the last change of it.
                    let Some((Some(k0), rest)) = first else {
                        if s < n_snap && first.is_none() {
                            removed.push(s);
                            json.set(s as usize);
                        }
                        continue;
                    };
                    let Some(v) = change(ops, k0) else {
                        continue;
                    };
                    json_items(v, rest, &mut vals);
                }
                (Src::Row(row), _) => json_items(Some(row), segs, &mut vals),
            }
            if s < n_snap {
                removed.push(s);
            }
            json.set(s as usize);
            if !matches!(src, Src::Gone) {
                ends.push((r, s, vals.len()));
            }
        }
        // 4. Their items.
        let items: Vec<Item<'_>> = vals.iter().map(|v| item_of(*v)).collect();
        let rows = ends.iter().map(|&(r, _, end)| (r, end as u32)).collect();
        let row_slots = ends.iter().map(|&(_, s, _)| s).collect();
        Delta {
            rows,
            items,
            row_slots,
            json,
            removed,
        }
    }

    /// The base column of `path`, or for a path the snapshot lacks, the
    /// column whose items stand for its items (each absent) in snapshot
    /// rows (`None`: one absent item per row, or none when the path goes
    /// through an array the snapshot never had).
    fn base_column(&self, segs: &[Seg], path: &str) -> Result<(Option<Arc<Column>>, bool, bool)> {
        let has = |p: &str| self.base.fields().iter().any(|f| f.path == p);
        // String keys that order like their strings (ranks for a
        // row-ordered table): the view's key space merges them with new strings.
        if has(path) {
            return Ok((Some(self.base.ordered_column(path)?), true, true));
        }
        // The longest prefix the snapshot has, and what follows it.
        for k in (1..segs.len()).rev() {
            let p = display(&segs[..k]);
            if has(&p) {
                let col = self.base.ordered_column(&p)?;
                let items = segs[k] != Seg::Elem;
                return Ok((Some(col), false, items));
            }
        }
        // Nothing of the path: one item per row unless it goes through arrays.
        Ok((None, false, !segs.contains(&Seg::Elem)))
    }

    /// Load the view's column at `path` from the base and the delta.
    fn load_view(&self, path: &str) -> Result<Column> {
        match self.view(path, false)? {
            Got::Column(c) => Ok(c),
            Got::Delta(_) => Err(Error::Invalid(format!("column `{path}` was not loaded"))),
        }
    }

    /// The typed delta of `path` for one-key sorts (typed once per source).
    fn sort_delta(&self, path: &str) -> Result<Option<Arc<SortDelta>>> {
        if let Some(d) = self.sort_deltas.lock().map_err(|_| poisoned())?.get(path) {
            return Ok(d.clone());
        }
        let d = match self.view(path, true)? {
            Got::Delta(d) => d,
            Got::Column(_) => None,
        };
        self.sort_deltas
            .lock()
            .map_err(|_| poisoned())?
            .insert(path.to_string(), d.clone());
        Ok(d)
    }

    /// The delta of `path` for filters (made once per source and event;
    /// `None`: the column is not one [`FilterDelta`] serves).
    fn filter_delta(&self, path: &str) -> Result<Option<Arc<FilterDelta>>> {
        if let Some(d) = self.filter_deltas.lock().map_err(|_| poisoned())?.get(path) {
            return Ok(d.clone());
        }
        let d = self.make_filter_delta(path)?.map(Arc::new);
        self.filter_deltas
            .lock()
            .map_err(|_| poisoned())?
            .insert(path.to_string(), d.clone());
        Ok(d)
    }

    fn make_filter_delta(&self, path: &str) -> Result<Option<FilterDelta>> {
        let segs = segments(path)?;
        if segs.contains(&Seg::Elem) {
            return Ok(None);
        }
        let t = self.typing(&segs, path)?;
        let base_str = t
            .base
            .as_ref()
            .is_some_and(|b| t.own && b.offsets.is_none() && matches!(b.values, Values::Str(_)));
        if !base_str || !t.live_text {
            return Ok(None);
        }
        // The view's kinds: the base's left in the view and the delta's.
        let mut counts = t.counts;
        // The distinct strings, and the one of each row (its first item):
        // the delta repeats a few values over thousands of rows, so each is
        // first looked for among the last few seen, then in a map.
        let mut strs: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, u32> = HashMap::new();
        let mut row_str: Vec<u32> = Vec::with_capacity(t.delta.rows.len());
        for (_, its) in t.delta.rows() {
            row_str.push(match its.first() {
                Some(&Item::Str(s)) => match strs.iter().take(8).position(|&d| d == s) {
                    Some(i) => i as u32,
                    None => {
                        let next = strs.len() as u32;
                        let i = *index.entry(s).or_insert(next);
                        if i == next {
                            strs.push(s);
                        }
                        i
                    }
                },
                _ => u32::MAX,
            });
            for it in its {
                match *it {
                    Item::Str(_) => counts[Kind::Str as usize] += 1,
                    Item::Cell(c) => counts[kind_of(&c) as usize] += 1,
                }
            }
        }
        let (str, null, absent) = (
            counts[Kind::Str as usize],
            counts[Kind::Null as usize],
            counts[Kind::Absent as usize],
        );
        if str == 0 || str + null + absent != counts.iter().sum::<u64>() {
            return Ok(None);
        }
        // Keys are ranks among the sorted distinct strings.
        let mut by_text: Vec<u32> = (0..strs.len() as u32).collect();
        by_text.sort_unstable_by(|&a, &b| strs[a as usize].cmp(strs[b as usize]));
        let mut rank = vec![0u32; strs.len()];
        for (k, &i) in by_text.iter().enumerate() {
            rank[i as usize] = k as u32;
        }
        let mut rows = Vec::with_capacity(t.delta.rows.len());
        let mut keys = Vec::with_capacity(t.delta.rows.len());
        for ((r, its), &d) in t.delta.rows().zip(&row_str) {
            rows.push(r);
            keys.push(match its.first() {
                Some(Item::Str(_)) => rank.get(d as usize).copied().unwrap_or(ABSENT),
                Some(Item::Cell(Cell::Null)) => NULL,
                _ => ABSENT,
            });
        }
        let strs: Vec<&str> = by_text.iter().map(|&i| strs[i as usize]).collect();
        Ok(Some(FilterDelta {
            rows,
            col: Column {
                path: path.to_string(),
                ty: ColumnType::from_counts(&counts, false),
                values: Values::Str(keys),
                offsets: None,
                keyspace: 0,
            },
            strs: strs.into_iter().map(Box::from).collect(),
        }))
    }

    /// What typing the view's column at `segs` starts from (see [`Typing`]).
    fn typing(&self, segs: &[Seg], path: &str) -> Result<Typing<'_>> {
        let ov = &self.ov;
        let snap = ov.snapshot();
        let n_snap = ov.snapshot_rows() as usize;
        let (base, own, items) = self.base_column(segs, path)?;
        let node = if own { snap.node_by_path(path) } else { None };
        let table = self.table_of(node)?;
        let delta = self.delta(segs);
        // Base items of snapshot row `s`, and the base cell of item `i`.
        let base_items = |s: usize| -> Range<usize> {
            match (&base, items) {
                (Some(b), true) => b.items(s),
                (None, true) => s..s + 1,
                _ => 0..0,
            }
        };
        let base_cell = |i: usize| -> Cell {
            match &base {
                Some(b) if own => b.values.cell(i),
                _ => Cell::Absent,
            }
        };
        // Kinds of the base items still in the view.
        let mut counts = [0u64; KIND_COUNT];
        match (&base, own) {
            (Some(_), true) => {
                let n = node.expect("own column");
                counts = snap.footer().nodes[n as usize].counts;
            }
            _ => {
                let total = match (&base, items) {
                    (Some(b), true) => b.values.len(),
                    (None, true) => n_snap,
                    _ => 0,
                };
                counts[Kind::Absent as usize] = total as u64;
            }
        }
        // When every base item is of one kind (a column of strings, say),
        // each removed item is of it: counted without a look at its cell
        // (a random access into the column per removed row).
        let only = {
            let mut kinds = (0..KIND_COUNT).filter(|&k| counts[k] > 0);
            match (kinds.next(), kinds.next()) {
                (Some(k), None) => Some(k),
                _ => None,
            }
        };
        let mut removed = Bits::new(n_snap);
        for &s in &delta.removed {
            removed.set(s as usize);
            match only {
                Some(k) => {
                    let n = base_items(s as usize).len() as u64;
                    counts[k] = counts[k].saturating_sub(n);
                }
                None => {
                    for i in base_items(s as usize) {
                        let k = kind_of(&base_cell(i)) as usize;
                        counts[k] = counts[k].saturating_sub(1);
                    }
                }
            }
        }
        // Strings of the delta: timestamps or not.
        let mut held_text = false;
        for (_, its) in delta.rows() {
            for it in its {
                if let Item::Str(s) = it
                    && !is_timestamp(s)
                {
                    held_text = true;
                }
            }
        }
        let tbl = table.as_ref().map(|(_, t)| t);
        // Base string cells are ranks (see `base_column`).
        let text_of = |rank: u32| -> Result<String> {
            match tbl {
                Some(t) => t.get(t.id_at(rank)?),
                None => Err(Error::corrupt("overlay", 0, "string id without a table")),
            }
        };
        // Does a string of the base, still in the view, not read as a
        // timestamp? (The first such row is kept as the witness.)
        let mut witness = None;
        let live_text = held_text
            || (counts[Kind::Str as usize] > 0 && {
                let mut seen = HashSet::new();
                'rows: for s in 0..n_snap {
                    if removed.get(s) {
                        continue;
                    }
                    for i in base_items(s) {
                        if let Cell::Str(id) = base_cell(i)
                            && seen.insert(id)
                            && !is_timestamp(&text_of(id)?)
                        {
                            witness = Some(s as u32);
                            break 'rows;
                        }
                    }
                }
                witness.is_some()
            });
        Ok(Typing {
            base,
            own,
            items,
            node,
            table,
            delta,
            counts,
            removed,
            live_text,
            witness,
        })
    }

    /// The view's column at `path` (`sort: false`), or its delta typed for
    /// merging into the base order (`sort: true`, see [`Self::merge_sort`]):
    /// both type the delta the same way.
    fn view(&self, path: &str, sort: bool) -> Result<Got> {
        let segs = segments(path)?;
        let ov = &self.ov;
        let snap = ov.snapshot();
        let n_snap = ov.snapshot_rows() as usize;
        let Typing {
            base,
            own,
            items,
            node,
            table,
            delta,
            mut counts,
            removed,
            live_text,
            witness,
        } = self.typing(&segs, path)?;
        // Base items of snapshot row `s`, and the base cell of item `i`.
        let base_items = |s: usize| -> Range<usize> {
            match (&base, items) {
                (Some(b), true) => b.items(s),
                (None, true) => s..s + 1,
                _ => 0..0,
            }
        };
        let base_cell = |i: usize| -> Cell {
            match &base {
                Some(b) if own => b.values.cell(i),
                _ => Cell::Absent,
            }
        };
        let tbl = table.as_ref().map(|(_, t)| t);
        // Base string cells are ranks (see `base_column`).
        let text_of = |rank: u32| -> Result<String> {
            match tbl {
                Some(t) => t.get(t.id_at(rank)?),
                None => Err(Error::corrupt("overlay", 0, "string id without a table")),
            }
        };
        let base_time = counts[Kind::Time as usize] > 0;
        if sort && tbl.is_some_and(|t| t.row_ordered()) {
            // A row-ordered table: the engine sorts the loaded view.
            return Ok(Got::Delta(None));
        }
        if sort {
            // Base cells keep their order when string ids stay table ids:
            // no string read as a timestamp, no timestamp turned into text.
            let snap_counts = node.map(|n| snap.footer().nodes[n as usize].counts);
            let kept = snap_counts.is_some_and(|c| {
                (c[Kind::Str as usize] == 0 || live_text)
                    && (c[Kind::Time as usize] == 0 || !live_text)
            });
            if !(base.is_some() && own && kept) {
                return Ok(Got::Delta(None));
            }
            let mut sd = SortDelta {
                live_text,
                witness,
                base_no_str: snap_counts.is_some_and(|c| c[Kind::Str as usize] == 0),
                table: tbl.cloned(),
                json: Bits::new(n_snap),
                cells: SlotMap::with_capacity_and_hasher(delta.rows.len(), Default::default()),
                text_items: 0,
                sorted: Default::default(),
                merged: Default::default(),
                merged_rows: Default::default(),
                asked_all: Default::default(),
            };
            let finder = tbl.map(StringTable::finder).transpose()?;
            for ((_, its), &s) in delta.rows().zip(&delta.row_slots) {
                let e = sort_entry(its, live_text, finder.as_ref())?;
                sd.set(s, Some(e));
            }
            return Ok(Got::Delta(Some(Arc::new(sd))));
        }
        // The key space: the table's strings, the strings events brought
        // that it lacks, and (when timestamps become text) their texts.
        let (tidx, n) = match &table {
            Some((t, tb)) => (Some(*t), u32::try_from(tb.len()).unwrap_or(u32::MAX)),
            None => (None, 0),
        };
        // Where each distinct string of the column's delta falls in its
        // table, looked up once (only this column's strings: not every
        // string the events brought).
        let mut placed: HashMap<&str, std::result::Result<u32, u32>> = HashMap::new();
        let mut news: Vec<(u32, Box<str>)> = Vec::new();
        if live_text {
            // Only the new strings this column holds: keys need not be
            // dense, only ordered.
            let mut seen: HashSet<&str> = HashSet::new();
            let mut distinct: Vec<&str> = Vec::new();
            for (_, its) in delta.rows() {
                for it in its {
                    if let Item::Str(s) = *it
                        && seen.insert(s)
                    {
                        distinct.push(s);
                    }
                }
            }
            // Many strings: the overlay's placements of every string the
            // events brought (made once per overlay and table, shared by
            // the sources over it); a few: looked up alone.
            let all = match &table {
                Some((t, tb)) if distinct.len() > FEW_STRINGS => Some(ov.placed(*t, tb)?),
                _ => None,
            };
            for s in distinct {
                let at = match (tbl, &all, ov.new_index(s)) {
                    (Some(_), Some(p), Some(g)) => p[g],
                    (Some(t), _, _) => t.find(s)?,
                    (None, _, _) => Err(0),
                };
                if tbl.is_some() {
                    placed.insert(s, at);
                }
                if let Err(ins) = at {
                    news.push((ins, s.into()));
                }
            }
        }
        // Timestamps that become text keep their original text (layout and offset).
        let mut ts_text: HashMap<usize, Box<str>> = HashMap::new();
        if live_text && base_time && own && !sort {
            let nd = snap.node_data(node.expect("own column"))?;
            let mut text = String::new();
            for s in 0..n_snap {
                if removed.get(s) {
                    continue;
                }
                for i in base_items(s) {
                    if nd.kind(i) == Kind::Time {
                        text.clear();
                        timestamp::format(&nd.timestamp(nd.pos(i)), &mut text);
                        match tbl {
                            Some(tb) => {
                                if let Err(ins) = tb.find(&text)? {
                                    news.push((ins, text.as_str().into()));
                                }
                            }
                            None => news.push((0, text.as_str().into())),
                        }
                        ts_text.insert(i, text.as_str().into());
                    }
                }
            }
        }
        let ks = KeySpace::new(tidx, n, news);
        let key_of = |s: &str| -> Result<u32> {
            if let Some(&at) = placed.get(s) {
                return Ok(match at {
                    Ok(id) => ks.table_key(id),
                    Err(ins) => ks.new_key(ins, s).unwrap_or_else(|k| k),
                });
            }
            Ok(match tbl {
                Some(t) => match t.find(s)? {
                    Ok(id) => ks.table_key(id),
                    Err(ins) => ks.new_key(ins, s).map_err(|_| {
                        Error::corrupt("overlay", 0, format!("string {s:?} has no key"))
                    })?,
                },
                None => ks.new_key(0, s).map_err(|_| {
                    Error::corrupt("overlay", 0, format!("string {s:?} has no key"))
                })?,
            })
        };
        let parse_ts = |s: &str| -> Result<Cell> {
            let ts = timestamp::parse(s)
                .ok_or_else(|| Error::corrupt("overlay", 0, format!("timestamp {s:?}")))?;
            Ok(Cell::Time(ts.secs, ts.nanos))
        };
        let mut decoded: HashMap<u32, Cell> = HashMap::new();
        let mut conv_base = |i: usize, c: Cell| -> Result<Cell> {
            Ok(match c {
                Cell::Str(id) if live_text => Cell::Str(ks.table_key(id)),
                Cell::Str(id) => match decoded.get(&id) {
                    Some(c) => *c,
                    None => {
                        let c = parse_ts(&text_of(id)?)?;
                        decoded.insert(id, c);
                        c
                    }
                },
                Cell::Time(..) if live_text => {
                    let t = ts_text
                        .get(&i)
                        .ok_or_else(|| Error::corrupt("overlay", 0, "timestamp text missing"))?;
                    Cell::Str(key_of(t)?)
                }
                c => c,
            })
        };
        let conv_item = |it: &Item<'_>| -> Result<Cell> {
            match *it {
                Item::Cell(c) => Ok(c),
                Item::Str(s) if live_text => Ok(Cell::Str(key_of(s)?)),
                Item::Str(s) => parse_ts(s),
            }
        };
        // Final kinds: the base's (timestamps and strings moved as decided)
        // plus the delta's.
        if live_text {
            counts[Kind::Str as usize] += std::mem::take(&mut counts[Kind::Time as usize]);
        } else {
            counts[Kind::Time as usize] += std::mem::take(&mut counts[Kind::Str as usize]);
        }
        let mut delta_cells: Vec<(u32, Vec<Cell>)> = Vec::with_capacity(delta.rows.len());
        let mut neg = false;
        for (r, its) in delta.rows() {
            let cells = its.iter().map(&conv_item).collect::<Result<Vec<Cell>>>()?;
            for c in &cells {
                counts[kind_of(c) as usize] += 1;
                neg |= matches!(c, Cell::Int(i) if *i < 0);
            }
            delta_cells.push((r, cells));
        }
        let has = |k: Kind| counts[k as usize] > 0;
        if has(Kind::Int)
            && has(Kind::UInt)
            && !has(Kind::Float)
            && !neg
            && let Some(b) = &base
            && own
            && node.is_some_and(|n| {
                snap.footer().nodes[n as usize]
                    .stats
                    .int
                    .is_some_and(|(lo, _)| lo < 0)
            })
        {
            neg = (0..n_snap).filter(|&s| !removed.get(s)).any(|s| {
                b.items(s)
                    .any(|i| matches!(b.values.cell(i), Cell::Int(v) if v < 0))
            });
        }
        let ty = ColumnType::from_counts(&counts, neg);
        // The view's cells: base cells of the view's snapshot rows, delta
        // cells of the others, in view order.
        let rows = self.ov.len();
        let list = segs.contains(&Seg::Elem);
        let mut offsets: Vec<u32> = Vec::new();
        let mut next = delta_cells.iter().peekable();
        let str_only = !list
            && live_text
            && (counts[Kind::Str as usize]
                + counts[Kind::Null as usize]
                + counts[Kind::Absent as usize])
                == counts.iter().sum::<u64>()
            && counts[Kind::Str as usize] > 0
            && ks.len() < NULL as usize;
        let values = match base.as_ref().map(|b| &b.values) {
            Some(Values::Str(ids)) if own && str_only && ks.news.is_empty() => {
                // No string the table lacks: keys are table ids, so the
                // snapshot's rows of the view are runs of base ids, copied
                // whole; the delta's rows (created rows between the runs,
                // changed rows inside them) are written over.
                let map = self.view_rows();
                let mut out: Vec<u32> = Vec::with_capacity(rows);
                let mut in_runs = 0usize;
                for &(s0, r0, len) in &map.runs {
                    let part = ids.get(s0 as usize..(s0 + len) as usize).ok_or_else(|| {
                        Error::corrupt("overlay", u64::from(s0), "run past the column")
                    })?;
                    out.resize(r0 as usize, ABSENT);
                    out.extend_from_slice(part);
                    in_runs += len as usize;
                }
                out.resize(rows, ABSENT);
                let created = delta
                    .row_slots
                    .iter()
                    .filter(|&&s| s >= n_snap as u32)
                    .count();
                if in_runs + created != rows || out.len() != rows {
                    return Err(Error::corrupt("overlay", 0, "view rows do not add up"));
                }
                for (r, cells) in &delta_cells {
                    let x = out.get_mut(*r as usize).ok_or_else(|| {
                        Error::corrupt("overlay", u64::from(*r), "delta row past the view")
                    })?;
                    *x = match cells.first() {
                        Some(Cell::Str(k)) => *k,
                        Some(Cell::Null) => NULL,
                        _ => ABSENT,
                    };
                }
                Values::Str(out)
            }
            Some(Values::Str(ids)) if own && str_only => {
                let mut out = Vec::with_capacity(rows);
                for (r, &s) in self.ov.blocks().flatten().enumerate() {
                    if delta.json.get(s as usize) {
                        let (_, cells) = next
                            .next()
                            .filter(|(dr, _)| *dr as usize == r)
                            .ok_or_else(|| {
                                Error::corrupt("overlay", r as u64, "delta row out of order")
                            })?;
                        out.push(match cells.first() {
                            Some(Cell::Str(k)) => *k,
                            Some(Cell::Null) => NULL,
                            _ => ABSENT,
                        });
                    } else {
                        out.push(match ids[s as usize] {
                            k @ (NULL | ABSENT) => k,
                            id => ks.table_key(id),
                        });
                    }
                }
                Values::Str(out)
            }
            _ => {
                let mut cells: Vec<Cell> = Vec::with_capacity(rows);
                if list {
                    offsets.reserve(rows + 1);
                    offsets.push(0);
                }
                for (r, &s) in self.ov.blocks().flatten().enumerate() {
                    if delta.json.get(s as usize) {
                        let (_, dc) =
                            next.next()
                                .filter(|(dr, _)| *dr as usize == r)
                                .ok_or_else(|| {
                                    Error::corrupt("overlay", r as u64, "delta row out of order")
                                })?;
                        cells.extend_from_slice(dc);
                    } else {
                        for i in base_items(s as usize) {
                            cells.push(conv_base(i, base_cell(i))?);
                        }
                    }
                    if list {
                        offsets.push(
                            u32::try_from(cells.len())
                                .map_err(|_| Error::corrupt(path, 0, "more than 2^32 items"))?,
                        );
                    }
                }
                values_of(cells, &counts, ks.len())
            }
        };
        let mut spaces = self.spaces.lock().map_err(|_| poisoned())?;
        let keyspace = u32::try_from(spaces.len())
            .map_err(|_| Error::Invalid("too many loaded columns".into()))?;
        spaces.push(Arc::new(ks));
        Ok(Got::Column(Column {
            path: path.to_string(),
            ty,
            values,
            offsets: list.then(|| Arc::new(offsets)),
            keyspace,
        }))
    }

    /// The view row of every live slot (built once after each create or
    /// delete: one pass over the block order).
    fn view_rows(&self) -> &ViewMap {
        self.view_of.get_or_init(|| ViewMap::new(&self.ov))
    }

    /// The view's `rows` (increasing) sorted by the column `path` whose
    /// typed delta is `sd`: the base engine's cached order of the snapshot
    /// rows, less the changed and deleted ones, merged with the delta rows
    /// sorted alone (kept by `sd`).
    ///
    /// Exact by construction: the base order is sorted by the engine's
    /// total order (class, value in direction, row), and base rows keep
    /// their relative order in the view (an event creates, deletes or
    /// changes a row in place, it never moves one), so it is also sorted
    /// by (class, value, [`tie`] key). Each delta row's place in it is
    /// found by a binary search on that order, then one pass over the
    /// base order writes the view rows, integers only. With `rows` `None`
    /// (every row) and `keep`, the order is only kept (`sd.merged_rows`)
    /// and an empty vector returned; without `keep`, it is returned and
    /// not kept (a query of every row takes the order itself: no copy).
    fn merge_sort(
        &self,
        path: &str,
        sd: &SortDelta,
        rows: Option<&[u32]>,
        desc: bool,
        keep: bool,
    ) -> Result<Option<Vec<u32>>> {
        let count = rows.map_or(self.ov.len(), <[u32]>::len);
        let all = count == self.ov.len();
        let mut want = Bits::new(if all { 0 } else { self.ov.len() });
        if let Some(rows) = rows.filter(|_| !all) {
            for &r in rows {
                want.set(r as usize);
            }
        }
        let member = |r: u32| all || want.get(r as usize);
        // The kept order of the whole view, less the rows not asked for:
        // as view rows since the last event, else as slots.
        if let Some(kept) = self.merged_rows(sd, desc)? {
            let out: Vec<u32> = if all {
                kept.to_vec()
            } else {
                kept.iter().copied().filter(|&r| member(r)).collect()
            };
            return Ok((out.len() == count).then_some(out));
        }
        let order = self.base.sorted_rows(path, desc)?;
        let col = self.base.column(path)?;
        let n_snap = self.ov.snapshot_rows();
        let col_rows = col
            .offsets
            .as_ref()
            .map_or(col.values.len(), |o| o.len().saturating_sub(1));
        if order.rows.len() != n_snap as usize || col_rows != n_snap as usize {
            return Ok(None);
        }
        let view_of = self.view_rows();
        // The delta rows asked for, in order, with their tie keys.
        let ties = tie_keys(&self.held, |r| view_of.snapshot_slot_at(r), n_snap);
        let tie = |r: u32| -> Option<u64> {
            let i = self.held.binary_search_by_key(&r, |h| h.0).ok()?;
            Some(ties[i])
        };
        let mut delta: Vec<(&SortCell, u32, u64)> = Vec::new();
        for (c, r) in sd.sorted(desc, &self.held) {
            if member(*r) {
                let Some(t) = tie(*r) else {
                    return Ok(None);
                };
                delta.push((c, *r, t));
            }
        }
        // Where each goes in the base order: before the first base row
        // that does not sort before it.
        // Places only increase: each search gallops from the previous
        // place (probes at +1, +2, +4, ...), then bisects the last step,
        // so a place about `g` rows on costs about 2 log2(g) probes, each
        // a base cell read at a random slot.
        let n = order.rows.len();
        let mut at = Vec::with_capacity(delta.len());
        let mut lo = 0usize;
        for &(c, _, t) in &delta {
            let before = |s: u32| {
                let bc = SortCell::Cell(col.sort_cell(s as usize));
                let o = match bc.class().cmp(&c.class()) {
                    std::cmp::Ordering::Equal if bc.class() == Class::Value => {
                        let o = bc.cmp_value(c);
                        if desc { o.reverse() } else { o }
                    }
                    o => o,
                };
                o.then((2 * u64::from(s) + 1).cmp(&t)) == std::cmp::Ordering::Less
            };
            // Every row before `k` sorts before the delta row.
            let (mut k, mut step) = (lo, 1usize);
            let end = loop {
                let j = lo.saturating_add(step - 1);
                if j >= n {
                    break n;
                }
                if !before(order.rows[j]) {
                    break j;
                }
                k = j + 1;
                step = step.saturating_mul(2);
            };
            let i = k + order.rows[k..end].partition_point(|&s| before(s));
            at.push(i);
            lo = i;
        }
        // The view row of each snapshot slot whose base cell stays
        // (`u32::MAX`: left the view, or held as JSON), made in slot order
        // from the runs; the pass over the sorted base order then reads one
        // array at each slot instead of a bitmap and the view map.
        // Two bytes a slot (its view row less the slot) when every offset
        // fits, as it does unless tens of thousands of rows were created
        // or deleted: half the array to write and to read at random.
        let places: Vec<(u32, usize)> = delta.iter().zip(&at).map(|(d, &i)| (d.1, i)).collect();
        let out = match view_of.dense_offsets(&sd.json) {
            Some(off) => merge_pass(&order.rows, &places, count, member, |s| {
                match off.get(s as usize) {
                    Some(&o) if o != i16::MIN => (i64::from(s) + i64::from(o)) as u32,
                    _ => u32::MAX,
                }
            }),
            None => {
                let view_row = view_of.dense_rows(&sd.json);
                merge_pass(&order.rows, &places, count, member, |s| {
                    view_row.get(s as usize).copied().unwrap_or(u32::MAX)
                })
            }
        };
        if out.len() != count {
            return Ok(None);
        }
        if all && keep {
            // Kept as view rows until the next event, which first turns
            // them into slots ([`Self::settle_orders`]).
            if rows.is_none() {
                let _ = sd.merged_rows[desc as usize].set(out);
                return Ok(Some(Vec::new()));
            }
            let _ = sd.merged_rows[desc as usize].set(out.clone());
        }
        Ok(Some(out))
    }

    /// The kept merged order of the whole view as view rows: as made
    /// since the last event, else mapped from the kept slots (and kept
    /// until the next event); `None` when no order is kept.
    fn merged_rows<'a>(&self, sd: &'a SortDelta, desc: bool) -> Result<Option<&'a [u32]>> {
        if let Some(v) = sd.merged_rows[desc as usize].get() {
            return Ok(Some(v));
        }
        let Some(m) = sd.merged[desc as usize].get() else {
            return Ok(None);
        };
        let view_of = self.view_rows().with_granules();
        let mut v = Vec::with_capacity(m.len());
        for s in m.iter() {
            match view_of.row(s) {
                Some(r) => v.push(r),
                None => return Ok(None),
            }
        }
        Ok(Some(sd.merged_rows[desc as usize].get_or_init(|| v)))
    }

    /// The view rows at positions `range` of the whole view sorted by the
    /// column `path` whose typed delta is `sd` ([`RowSource::sort_page`]):
    /// from the kept merged order, touching only the page's rows (its
    /// slots read from the block order, each turned into its view row,
    /// O(rows / block + block)), or, when no order is kept yet, the whole
    /// merge ([`Self::merge_sort`], kept for the next page).
    fn merged_page(
        &self,
        path: &str,
        sd: &SortDelta,
        desc: bool,
        range: Range<usize>,
    ) -> Result<Option<Vec<u32>>> {
        let n = self.ov.len();
        let cut = |v: &[u32]| {
            let (a, b) = (range.start.min(n), range.end.min(n));
            v[a..b].to_vec()
        };
        if let Some(v) = sd.merged_rows[desc as usize].get() {
            return Ok((v.len() == n).then(|| cut(v)));
        }
        if let Some(m) = sd.merged[desc as usize].get() {
            if m.len() != n {
                return Ok(None);
            }
            // A long range (every row, say): the whole order as view rows
            // (kept until the next event) rather than a lookup per slot.
            if range.end.min(n).saturating_sub(range.start) > PAGE_LOOKUPS.min(n / 4) {
                return Ok(self.merged_rows(sd, desc)?.map(cut));
            }
            return Ok(m
                .range(range)
                .into_iter()
                .map(|s| self.position(s))
                .collect());
        }
        if range.start == 0 && range.end >= n && sd.asked_all[desc as usize].set(()).is_ok() {
            // Every row, asked for the first time: the merge's order is
            // the answer, not kept (keeping costs a copy of every row).
            return self.merge_sort(path, sd, None, desc, false);
        }
        if self.merge_sort(path, sd, None, desc, true)?.is_none() {
            return Ok(None);
        }
        Ok(sd.merged_rows[desc as usize].get().map(|v| cut(v)))
    }

    /// Turn each kept merged order held as view rows alone (a query's
    /// merge) into slots, while view rows still name the same rows: an
    /// event moves rows in the kept slot order ([`Self::retype_slot`]).
    fn settle_orders(&mut self) -> Result<()> {
        let deltas = self.sort_deltas.get_mut().map_err(|_| poisoned())?;
        if !deltas.values().flatten().any(|d| {
            (0..2).any(|k| d.merged[k].get().is_none() && d.merged_rows[k].get().is_some())
        }) {
            return Ok(());
        }
        let slots = self.slots.get_or_init(|| self.ov.slots());
        for d in deltas.values_mut().flatten() {
            for k in 0..2 {
                if d.merged[k].get().is_some() {
                    continue;
                }
                let Some(rows) = d.merged_rows[k].get() else {
                    continue;
                };
                let kept: Option<Vec<u32>> = rows
                    .iter()
                    .map(|&r| slots.get(r as usize).copied())
                    .collect();
                let Some(kept) = kept else {
                    continue;
                };
                let m = Order::from_slots(&kept);
                // Shared with a clone of the source: copied first.
                let _ = Arc::make_mut(d).merged[k].set(m);
            }
        }
        Ok(())
    }

    /// Display paths (with their list flag) of the delta rows' fields the
    /// snapshot lacks (of the held row in slot `only` alone when given).
    fn new_paths(&self, only: Option<u32>) -> Vec<(String, bool)> {
        /// The paths found so far, in the order found, and a set of them
        /// (a scan of the list for each path was quadratic in the paths:
        /// 60,000 created rows of a new field each took 7 s to sort).
        #[derive(Default)]
        struct Found {
            out: Vec<(String, bool)>,
            seen: HashSet<String>,
        }
        impl Found {
            fn add(&mut self, p: &str, list: bool) {
                if !self.seen.contains(p) {
                    self.seen.insert(p.to_string());
                    self.out.push((p.to_string(), list));
                }
            }
        }
        /// `at`: the display path of `v`, None for a row.
        fn walk(v: &Value, at: Option<&str>, list: bool, f: &mut Found) {
            match v {
                Value::Object(o) => {
                    for (k, x) in o {
                        let mut p = at.unwrap_or_default().to_string();
                        push_key(&mut p, at.is_none(), k);
                        f.add(&p, list);
                        walk(x, Some(&p), list, f);
                    }
                }
                Value::Array(a) => {
                    let p = format!("{}[]", at.unwrap_or_default());
                    if !a.is_empty() || !f.seen.contains(&p) {
                        f.add(&p, true);
                        for x in a {
                            walk(x, Some(&p), true, f);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut out = Found::default();
        let slots: Vec<u32> = match only {
            Some(s) => vec![s],
            None => self.held.iter().map(|h| h.1).collect(),
        };
        for s in slots {
            match self.ov.held(s) {
                Some(Held::Row(row)) => walk(row, None, false, &mut out),
                Some(Held::Patch(ops)) => {
                    let mut o = serde_json::Map::new();
                    for (k, v) in ops {
                        if let Some(v) = v {
                            o.insert(k.to_string(), v.clone());
                        }
                    }
                    walk(&Value::Object(o), None, false, &mut out);
                }
                None => {}
            }
        }
        let snap = self.ov.snapshot();
        let mut out = out.out;
        out.retain(|(p, _)| snap.node_by_path(p).is_none());
        out
    }

    /// The type of the view's column `f` (`None`: no row of the view has
    /// it), from the snapshot's kind counts and the delta when that
    /// settles it, else by loading the column.
    fn field_type(&self, path: &str, snap_ty: Option<(u32, bool)>) -> Result<Option<ColumnType>> {
        let segs = segments(path)?;
        let ov = &self.ov;
        if let Some((node, list)) = snap_ty {
            let meta = &ov.snapshot().footer().nodes[node as usize];
            let lead = lead_keys(&segs);
            let (touched_rows, pk) = self.delta_kinds_at(path, lead.first().copied())?;
            let removed_rows = self.deleted.len() as u64 + touched_rows;
            let removed = if list && removed_rows > 0 {
                self.removed_items(&segs, &lead)?
            } else {
                removed_rows
            };
            let pk = &pk;
            let held = pk.kinds;
            let (text, time, neg) = (pk.text, pk.time, pk.neg);
            let c = &meta.counts;
            let stays = |k: Kind| c[k as usize] > removed;
            // Every answer the removals leave possible: a kind whose items
            // may all have left is tried both present and absent, the base
            // strings left as text, all timestamps or gone, a negative
            // integer left or not. When every possibility gives one type,
            // that is the type and no column is read.
            let mut open: Vec<Kind> = Vec::new();
            let mut known = [false; KIND_COUNT];
            for k in Kind::ALL {
                if matches!(k, Kind::Absent | Kind::Str) {
                    continue;
                }
                if held[k as usize] || stays(k) {
                    known[k as usize] = true;
                } else if c[k as usize] > 0 {
                    open.push(k);
                }
            }
            let mut base_strs = Vec::new();
            if c[Kind::Str as usize] == 0 {
                base_strs.push(BaseStrs::Gone);
            } else if removed == 0 || (!text && self.text_left(node, c, removed)?) {
                base_strs.push(BaseStrs::Text);
            } else if text {
                // The delta's text makes the column text: only whether a
                // base string is left could matter, and text is present.
                base_strs.push(BaseStrs::Gone);
            } else {
                base_strs.extend([BaseStrs::Text, BaseStrs::Times]);
                if !stays(Kind::Str) {
                    base_strs.push(BaseStrs::Gone);
                }
            }
            let snap_neg = meta.stats.int.is_some_and(|(lo, _)| lo < 0);
            let negs: &[bool] = if neg || !snap_neg {
                &[neg]
            } else {
                &[false, true]
            };
            let settled = settle(&known, &open, &base_strs, negs, text, time);
            if let Some(ty) = settled {
                return Ok(Some(ty));
            }
            if let Some(ty) = self.exact_type(path, &segs, node, pk)? {
                return Ok(ty);
            }
        }
        let col = self.load_view(path)?;
        // A column exists when a row has it: an array node when an item of
        // its parent is an array (even empty), a key when an item has it.
        let present =
            |c: &Column, f: &dyn Fn(Cell) -> bool| (0..c.values.len()).any(|i| f(c.values.cell(i)));
        let any = match segs.split_last() {
            Some((Seg::Elem, parent)) if !parent.is_empty() => {
                let p = self.load_view(&display(parent))?;
                present(&p, &|c| matches!(c, Cell::Array(_)))
            }
            _ => present(&col, &|c| c != Cell::Absent),
        };
        Ok(any.then_some(col.ty))
    }

    /// Does `fields` name a field only the events brought (one the
    /// snapshot's writer cannot select)?
    fn events_only_field(&self, fields: Option<&[String]>) -> bool {
        let snap = self.ov.snapshot();
        fields.is_some_and(|fs| fs.iter().any(|f| snap.node_by_path(f).is_none()))
    }

    /// [`RowSource::write_row_groups_with`] over a changed view: in each
    /// group, runs of the snapshot's own rows (`slots` of `rows`) are
    /// written by the base from `window`, held rows from their JSON values,
    /// the same bytes as [`RowSource::write_rows_json`] of the group.
    #[cfg(not(target_arch = "wasm32"))]
    #[allow(clippy::too_many_arguments)]
    fn write_groups_windowed(
        &self,
        rows: &[u32],
        slots: &[u32],
        group: usize,
        fields: Option<&[String]>,
        window: &mut StringWindow,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        let base = self.base_src();
        let mut run: Vec<u32> = Vec::new();
        let flush = |run: &mut Vec<u32>,
                     window: &mut StringWindow,
                     out: &mut Vec<u8>,
                     first: &mut bool|
         -> Result<()> {
            if !run.is_empty() {
                if !*first {
                    out.push(b',');
                }
                *first = false;
                base.write_row_groups_with(
                    run,
                    run.len(),
                    fields,
                    Some(window),
                    out,
                    &mut |_, _| {},
                    b"",
                )?;
                run.clear();
            }
            Ok(())
        };
        let group = group.max(1);
        let mut end = 0;
        for (g, gs) in rows.chunks(group).zip(slots.chunks(group)) {
            end += g.len();
            open(out, end);
            let mut first = true;
            for (&r, &slot) in g.iter().zip(gs) {
                if self.ov.held(slot).is_none() {
                    run.push(slot);
                    continue;
                }
                flush(&mut run, window, out, &mut first)?;
                if !first {
                    out.push(b',');
                }
                first = false;
                self.write_values(&[r], fields, out)?;
            }
            flush(&mut run, window, out, &mut first)?;
            out.extend_from_slice(close);
        }
        Ok(())
    }

    fn write_values(
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

    /// The type of the snapshot column `path` (at `node`) from exact kind
    /// counts: the snapshot's, less the base items of the rows that left
    /// the view or whose update touched the column (read from the base
    /// column, decoded once per base and shared by every source over it),
    /// plus the delta's kinds `pk`. No view column is built (whether the
    /// base strings left all read as timestamps, or a negative integer is
    /// left, is read from the base column when counts leave it open).
    /// `None` when an array node has no item left (whether an empty array
    /// still holds it takes the parent): the column is then loaded.
    fn exact_type(
        &self,
        path: &str,
        segs: &[Seg],
        node: u32,
        pk: &PathKinds,
    ) -> Result<Option<Option<ColumnType>>> {
        let snap = self.ov.snapshot();
        let meta = &snap.footer().nodes[node as usize];
        let mut c = meta.counts;
        let lead = lead_keys(segs);
        let n_snap = self.ov.snapshot_rows();
        let gone = self.removed_kinds(path, &lead)?;
        for (x, g) in c.iter_mut().zip(gone) {
            *x = x.saturating_sub(g);
        }
        let str_removed = gone[Kind::Str as usize] > 0;
        let held = pk.kinds;
        let live = |k: Kind| c[k as usize] > 0 || held[k as usize];
        // The base items still in the view, in order (for the rare
        // questions counts leave open).
        let removed = || {
            let mut b = Bits::new(n_snap as usize);
            for &s in &self.deleted {
                b.set(s as usize);
            }
            for &(_, s) in &self.held {
                if s < n_snap && self.ov.touched(s).is_some_and(|t| touches(t, &lead)) {
                    b.set(s as usize);
                }
            }
            b
        };
        // The base column is read only here (counts settle most fields).
        let live_cells = |f: &mut dyn FnMut(Cell) -> Result<bool>| -> Result<bool> {
            let base = self.base.column(path)?;
            let gone = removed();
            for s in 0..n_snap as usize {
                if gone.get(s) {
                    continue;
                }
                for i in base.items(s) {
                    if f(base.values.cell(i))? {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        };
        // Base strings left read as text unless they all read as
        // timestamps (the snapshot stored them as strings because of some
        // text: when none of it was removed, it is still there).
        let base_str = c[Kind::Str as usize] > 0;
        let live_text = pk.text
            || (base_str
                && (!str_removed
                    || self.no_timestamp_strings(node)?
                    || self.text_left(node, &meta.counts, gone[Kind::Str as usize])?
                    || {
                        let t = snap.table_of(node)?;
                        let mut seen = HashSet::new();
                        live_cells(&mut |cell| {
                            Ok(match cell {
                                Cell::Str(id) if seen.insert(id) => !is_timestamp(&t.get(id)?),
                                _ => false,
                            })
                        })?
                    }));
        let mut counts = [0u64; KIND_COUNT];
        for k in Kind::ALL {
            counts[k as usize] = live(k) as u64;
        }
        let strs = live(Kind::Str) || live(Kind::Time) || pk.text || pk.time;
        counts[Kind::Str as usize] = (live_text && strs) as u64;
        counts[Kind::Time as usize] = (!live_text && strs) as u64;
        let has = |k: Kind| counts[k as usize] > 0;
        let snap_neg = meta.stats.int.is_some_and(|(lo, _)| lo < 0);
        let neg = pk.neg
            || (has(Kind::Int)
                && has(Kind::UInt)
                && !has(Kind::Float)
                && snap_neg
                && live_cells(&mut |cell| Ok(matches!(cell, Cell::Int(v) if v < 0)))?);
        let present = Kind::ALL.iter().any(|&k| k != Kind::Absent && live(k)) || pk.text || pk.time;
        if !present {
            // An array node exists when its parent holds an array, even
            // an empty one: that takes the parent column.
            return Ok(match segs.last() {
                Some(Seg::Elem) => None,
                _ => Some(None),
            });
        }
        Ok(Some(Some(ColumnType::from_counts(&counts, neg))))
    }

    /// The kinds of the delta's values by display path (computed once,
    /// then kept up to date by [`OverlaySource::apply`]).
    fn delta_kinds(&self) -> Result<&DeltaKinds> {
        if let Some(d) = self.kinds.get() {
            return Ok(d);
        }
        let mut d = DeltaKinds::default();
        for &(_, s) in &self.held {
            self.count_slot(&mut d, s, true);
        }
        Ok(self.kinds.get_or_init(|| d))
    }

    /// How many overridden rows changed top-level key `key`, and the
    /// delta's kinds at `path` (under `key`): from every field's kinds
    /// when made, else from the kinds under `key` alone (counted over the
    /// held rows' values under it on first use, then kept).
    fn delta_kinds_at(&self, path: &str, key: Option<&str>) -> Result<(u64, PathKinds)> {
        let of = |d: &DeltaKinds| {
            let t = key.and_then(|k| d.touched.get(k)).copied().unwrap_or(0);
            (t, d.kinds(path))
        };
        if let Some(d) = self.kinds.get() {
            return Ok(of(d));
        }
        let Some(key) = key else {
            return Ok(of(self.delta_kinds()?));
        };
        let mut m = self.key_kinds.lock().map_err(|_| poisoned())?;
        if let Some(d) = m.get(key) {
            return Ok(of(d));
        }
        let mut d = DeltaKinds::default();
        for &(_, s) in &self.held {
            self.count_slot_key(&mut d, s, key, true);
        }
        let r = of(&d);
        m.insert(key.to_string(), d);
        Ok(r)
    }

    /// [`Self::count_slot`] for the fields under top-level key `key` alone.
    fn count_slot_key(&self, d: &mut DeltaKinds, s: u32, key: &str, add: bool) {
        if s < self.ov.snapshot_rows()
            && let Some(t) = self.ov.touched(s)
        {
            // A snapshot row's untouched fields are the base's.
            if !t.into_iter().any(|p| p.first().is_some_and(|f| f == key)) {
                return;
            }
            bump(d.touched.entry(key.to_string()).or_default(), add);
        }
        let v = match self.ov.held(s) {
            Some(Held::Row(Value::Object(o))) => o.get(key),
            Some(Held::Patch(ops)) => ops
                .iter()
                .rev()
                .find(|(k, _)| &**k == key)
                .and_then(|(_, v)| v.as_ref()),
            _ => None,
        };
        if let Some(v) = v {
            let mut p = top_key_path(key);
            d.walk(v, &mut p, add);
        }
    }

    /// Add (or take out) the held row in `slot` to the delta's kinds: its
    /// changed top-level keys, and the values of its fields that come
    /// from JSON. A slot that is not held counts nothing.
    fn count_slot(&self, d: &mut DeltaKinds, s: u32, add: bool) {
        let n_snap = self.ov.snapshot_rows();
        // The first keys of the paths updates touched, sorted.
        let firsts: Option<Vec<&str>> =
            (s < n_snap).then(|| self.ov.touched(s)).flatten().map(|t| {
                let mut firsts: Vec<&str> =
                    t.filter_map(|p| p.first()).map(|k| k.as_str()).collect();
                firsts.sort_unstable();
                firsts.dedup();
                firsts
            });
        for k in firsts.iter().flatten() {
            bump(d.touched.entry(k.to_string()).or_default(), add);
        }
        match self.ov.held(s) {
            Some(Held::Row(Value::Object(o))) => {
                for (k, v) in o {
                    let mut p = top_key_path(k);
                    // A snapshot row's untouched fields are the base's.
                    if let Some(t) = &firsts
                        && t.binary_search(&k.as_str()).is_err()
                    {
                        continue;
                    }
                    d.walk(v, &mut p, add);
                }
            }
            Some(Held::Patch(ops)) => {
                for (i, (k, v)) in ops.iter().enumerate() {
                    if ops[i + 1..].iter().any(|(k2, _)| k2 == k) {
                        continue; // a later change of the same key wins
                    }
                    if let Some(v) = v {
                        let mut p = top_key_path(k);
                        d.walk(v, &mut p, add);
                    }
                }
            }
            _ => {}
        }
    }

    /// True when the column at `node` holds no string that could read as
    /// a timestamp: its string ids (footer stats) lie outside the table's
    /// strings starting with a digit (as every timestamp does).
    fn no_timestamp_strings(&self, node: u32) -> Result<bool> {
        let snap = self.ov.snapshot();
        let Some((lo, hi)) = snap.footer().nodes[node as usize].stats.str else {
            return Ok(false);
        };
        let t = snap.table_of(node)?;
        if t.row_ordered() {
            // Statistics are ids, not ranks: no shortcut.
            return Ok(false);
        }
        let at = |s: &str| -> Result<u32> {
            Ok(match t.find(s)? {
                Ok(k) | Err(k) => k,
            })
        };
        Ok(hi < at("0")? || lo >= at(":")?)
    }

    /// The base items of a list column (segments `segs`) in the rows that
    /// left the view or whose update touched the column: the items of its
    /// domain, the last array's elements (SPEC 1.1: a node below an Elem
    /// node has one item per item of it), in those rows. The domain column
    /// is decoded once per base and serves all its fields.
    fn removed_items(&self, segs: &[Seg], lead: &[&str]) -> Result<u64> {
        let Some(last) = segs.iter().rposition(|s| matches!(s, Seg::Elem)) else {
            return Ok(u64::MAX);
        };
        Ok(self
            .removed_kinds(&display(&segs[..=last]), lead)?
            .iter()
            .sum())
    }

    /// The kinds of the base items of the snapshot field `path` (leading
    /// keys `lead`) in the rows that left the view or whose update touched
    /// it: counted once per source over those rows (the base column is
    /// decoded once per base), then kept up to date by
    /// [`OverlaySource::apply`].
    fn removed_kinds(&self, path: &str, lead: &[&str]) -> Result<[u64; KIND_COUNT]> {
        if let Some(r) = self.removed.lock().map_err(|_| poisoned())?.get(path) {
            return Ok(r.kinds);
        }
        let n_snap = self.ov.snapshot_rows();
        let mut kinds = [0u64; KIND_COUNT];
        let snap = self.ov.snapshot();
        // A field outside arrays has one item per row, its kind in the
        // node's kinds: read those alone (no value of the column decoded).
        let per_row = snap.node_by_path(path).filter(|&n| {
            !segments(path).is_ok_and(|s| s.contains(&Seg::Elem))
                && snap.footer().nodes.get(n as usize).map(|m| m.items) == Some(u64::from(n_snap))
        });
        if let Some(node) = per_row {
            let k = snap.node_kinds(node)?;
            let mut hint = 0;
            for &s in &self.deleted {
                kinds[k.get_hinted(s as usize, &mut hint) as usize] += 1;
            }
            let mut hint = 0;
            for &(_, s) in &self.held {
                if s < n_snap && self.ov.touched(s).is_some_and(|t| touches(t, lead)) {
                    kinds[k.get_hinted(s as usize, &mut hint) as usize] += 1;
                }
            }
        } else {
            let base = self.base.column(path)?;
            let mut add = |s: u32| {
                for i in base.items(s as usize) {
                    kinds[kind_of(&base.values.cell(i)) as usize] += 1;
                }
            };
            for &s in &self.deleted {
                add(s);
            }
            for &(_, s) in &self.held {
                if s < n_snap && self.ov.touched(s).is_some_and(|t| touches(t, lead)) {
                    add(s);
                }
            }
        }
        self.removed.lock().map_err(|_| poisoned())?.insert(
            path.to_string(),
            Removed {
                lead: lead.iter().map(|k| k.to_string()).collect(),
                kinds,
            },
        );
        Ok(kinds)
    }

    /// True when some string of the column at `node` that does not read
    /// as a timestamp surely outlives the removal of `removed` items: all
    /// its strings are text and one is left (`counts`), or its distinct
    /// strings (footer stats, less at most one per value of another kind)
    /// outnumber, beyond the table ids in its range that may read as a
    /// timestamp, the items removed. Those are the ids of strings starting
    /// with a digit (as every timestamp does), or when they are at most
    /// [`READ_DIGIT_STRINGS`], those of them that read as timestamps.
    fn text_left(&self, node: u32, counts: &[u64; KIND_COUNT], removed: u64) -> Result<bool> {
        let snap = self.ov.snapshot();
        let stats = &snap.footer().nodes[node as usize].stats;
        let Some((lo, hi)) = stats.str else {
            return Ok(false);
        };
        let t = snap.table_of(node)?;
        if t.row_ordered() {
            // Statistics are ids, not ranks: no shortcut.
            return Ok(false);
        }
        let at = |s: &str| -> Result<u32> {
            Ok(match t.find(s)? {
                Ok(k) | Err(k) => k,
            })
        };
        let cached = self
            .digits
            .lock()
            .map_err(|_| poisoned())?
            .get(&node)
            .copied();
        let digits = match cached {
            Some(d) => d,
            None => {
                let (d0, d1) = (at("0")?, at(":")?);
                let (from, to) = (d0.max(lo), d1.min(hi.saturating_add(1)));
                let mut digits = u64::from(to.saturating_sub(from));
                // A few such strings are read: those that do not read as
                // timestamps are text.
                if digits > 0 && digits <= READ_DIGIT_STRINGS {
                    digits = 0;
                    for id in from..to {
                        digits += u64::from(is_timestamp(&t.get(id)?));
                    }
                }
                self.digits
                    .lock()
                    .map_err(|_| poisoned())?
                    .insert(node, digits);
                digits
            }
        };
        if digits == 0 {
            return Ok(counts[Kind::Str as usize] > removed);
        }
        let n = |k: Kind| counts[k as usize];
        let others = u64::from(n(Kind::False) > 0)
            + u64::from(n(Kind::True) > 0)
            + n(Kind::Int)
            + n(Kind::UInt)
            + n(Kind::Float)
            + n(Kind::NumText)
            + n(Kind::Time);
        let text = stats.distinct.saturating_sub(others).saturating_sub(digits);
        Ok(text > removed)
    }

    /// The type of the view's field `path` alone (`None`: no row of the
    /// view has it), as [`Self::compute_fields`] types it, kept until the
    /// next event.
    fn field_type_of(&self, path: &str) -> Result<Option<ColumnType>> {
        if let Some(t) = self.field_types.lock().map_err(|_| poisoned())?.get(path) {
            return Ok(*t);
        }
        let snap = self.ov.snapshot();
        let ty = match snap.node_by_path(path) {
            Some(node) => {
                let list = self
                    .base
                    .fields()
                    .iter()
                    .find(|f| f.path == path)
                    .is_some_and(|f| f.list);
                self.field_type(path, Some((node, list)))?
            }
            None => match self.new_paths(None).into_iter().find(|(p, _)| p == path) {
                Some(_) => self.field_type(path, None)?,
                None => None,
            },
        };
        self.field_types
            .lock()
            .map_err(|_| poisoned())?
            .insert(path.to_string(), ty);
        Ok(ty)
    }

    fn compute_fields(&self) -> Result<Vec<FieldInfo>> {
        // Every field's kinds at once (one walk over the held rows).
        self.delta_kinds()?;
        let mut out = Vec::new();
        let snap = self.ov.snapshot();
        for f in self.base.fields() {
            let node = snap
                .node_by_path(&f.path)
                .ok_or_else(|| Error::corrupt("overlay", 0, format!("field `{}`", f.path)))?;
            if let Some(ty) = self.field_type(&f.path, Some((node, f.list)))? {
                out.push(FieldInfo { ty, ..f.clone() });
            }
        }
        for (p, list) in self.new_paths(None) {
            if let Some(ty) = self.field_type(&p, None)? {
                out.push(FieldInfo { path: p, ty, list });
            }
        }
        Ok(out)
    }
}

/// The most table strings starting with a digit that field typing reads
/// to learn which of them read as timestamps.
const READ_DIGIT_STRINGS: u64 = 256;

/// What the base strings left in a column read as.
#[derive(Clone, Copy, Debug, PartialEq)]
enum BaseStrs {
    /// Some string left does not read as a timestamp.
    Text,
    /// Strings are left and all read as timestamps.
    Times,
    /// No string is left.
    Gone,
}

/// The one type every possibility gives, or `None` when they differ (or
/// one leaves the column without items). `known`: kinds surely present
/// (strings aside); `open`: kinds maybe present; `strs`: what the base
/// strings left may read as; `negs`: whether a negative integer may be
/// left; `text`, `time`: the delta holds a string not reading / reading
/// as a timestamp.
fn settle(
    known: &[bool; KIND_COUNT],
    open: &[Kind],
    strs: &[BaseStrs],
    negs: &[bool],
    text: bool,
    time: bool,
) -> Option<ColumnType> {
    if open.len() > 12 {
        return None;
    }
    let mut out: Option<ColumnType> = None;
    for mask in 0u32..1 << open.len() {
        let mut has = *known;
        for (i, &k) in open.iter().enumerate() {
            has[k as usize] |= mask >> i & 1 == 1;
        }
        for &s in strs {
            let live_text = text || s == BaseStrs::Text;
            let any_str = live_text || time || s == BaseStrs::Times || has[Kind::Time as usize];
            let mut counts = [0u64; KIND_COUNT];
            for k in Kind::ALL {
                counts[k as usize] = u64::from(has[k as usize]);
            }
            counts[Kind::Str as usize] = u64::from(live_text && any_str);
            counts[Kind::Time as usize] = u64::from(!live_text && any_str);
            if Kind::ALL
                .iter()
                .all(|&k| k == Kind::Absent || counts[k as usize] == 0)
            {
                return None;
            }
            for &neg in negs {
                let ty = ColumnType::from_counts(&counts, neg);
                match out {
                    Some(t) if t != ty => return None,
                    _ => out = Some(ty),
                }
            }
        }
    }
    out
}

/// The display path of segments.
fn display(segs: &[Seg]) -> String {
    crate::model::join_segments(segs)
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
        self.ov.len()
    }

    fn memory_budget(&self) -> u64 {
        self.base_src().memory_budget()
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

    fn has_field(&self, path: &str) -> bool {
        if let Some(p) = self.plain() {
            return p.has_field(path);
        }
        if let Some(f) = self.fields.get() {
            return f.iter().any(|f| f.path == path);
        }
        // A snapshot column of one item per row keeps a value while it
        // has more present items than rows left the view or were changed.
        let snap = self.ov.snapshot();
        if let Some(node) = snap.node_by_path(path)
            && self.base.fields().iter().any(|f| f.path == path && !f.list)
        {
            let c = &snap.footer().nodes[node as usize].counts;
            let present: u64 = c.iter().sum::<u64>() - c[Kind::Absent as usize];
            if present > (self.deleted.len() + self.held.len()) as u64 {
                return true;
            }
        }
        // An unreadable column shows up when it is loaded.
        self.field_type_of(path).ok().flatten().is_some()
    }

    fn field_type(&self, path: &str) -> Option<ColumnType> {
        if let Some(p) = self.plain() {
            return p.field_type(path);
        }
        if let Some(f) = self.fields.get() {
            return f.iter().find(|f| f.path == path).map(|f| f.ty);
        }
        self.field_type_of(path).ok().flatten()
    }

    fn load(&self, path: &str) -> Result<Column> {
        if let Some(p) = self.plain() {
            return p.load(path);
        }
        if !self.has_field(path) {
            return Err(Error::NotFound {
                what: "field",
                name: path.to_string(),
            });
        }
        self.load_view(path)
    }

    fn sort_by_one(&self, rows: &[u32], path: &str, desc: bool) -> Result<Option<Vec<u32>>> {
        // Only distinct rows of the view, in increasing order (the engine's
        // filter results); anything else goes the engine's way.
        let in_view = rows.last().is_some_and(|&r| (r as usize) < self.ov.len());
        if rows.len() < 2
            || !in_view
            || !rows.windows(2).all(|w| w[0] < w[1])
            || !self.has_field(path)
        {
            return Ok(None);
        }
        let d = self.sort_delta(path)?;
        match d {
            Some(sd) => self.merge_sort(path, &sd, Some(rows), desc, true),
            None => Ok(None),
        }
    }

    fn keeps_order(&self, path: &str) -> bool {
        match self.plain() {
            Some(p) => p.keeps_order(path),
            // `sort_by_one` answers from the merged order when there is one.
            None => self.has_field(path),
        }
    }

    fn filter_rows(&self, f: &Filter) -> Result<Option<Bits>> {
        if self.plain || !self.has_field(&f.path) {
            return Ok(None);
        }
        let Some(fd) = self.filter_delta(&f.path)? else {
            return Ok(None);
        };
        // The snapshot's rows as the snapshot alone answers, moved to
        // their view rows a run at a time; then the delta rows.
        let on_base = self.base.filter(std::slice::from_ref(f))?;
        let texts: Vec<&str> = fd.strs.iter().map(|s| &**s).collect();
        let on_delta = filter::eval_texts(&TextKeys(&texts), &fd.col, f, fd.rows.len())?;
        let rows = self.ov.len();
        let mut out = Bits::new(rows);
        for &(s0, r0, len) in &self.view_rows().runs {
            let (s0, r0, len) = (s0 as usize, r0 as usize, len as usize);
            if s0 + len > on_base.len() || r0 + len > rows {
                return Err(Error::corrupt("overlay", s0 as u64, "run past the view"));
            }
            out.copy_range(&on_base, s0, r0, len);
        }
        for (i, &r) in fd.rows.iter().enumerate() {
            if r as usize >= rows {
                return Err(Error::corrupt(
                    "overlay",
                    u64::from(r),
                    "delta row past the view",
                ));
            }
            out.assign(r as usize, on_delta.get(i));
        }
        Ok(Some(out))
    }

    fn sort_page(&self, path: &str, desc: bool, range: Range<usize>) -> Result<Option<Vec<u32>>> {
        if let Some(p) = self.plain() {
            return p.sort_page(path, desc, range);
        }
        if self.ov.len() < 2 || !self.has_field(path) {
            return Ok(None);
        }
        match self.sort_delta(path)? {
            Some(sd) => self.merged_page(path, &sd, desc, range),
            None => Ok(None),
        }
    }

    fn str_order(&self, col: &Column) -> Result<Option<Arc<crate::read::TableOrder>>> {
        match self.plain() {
            Some(p) => p.str_order(col),
            // The view's key spaces order like their strings.
            None => Ok(None),
        }
    }

    fn find_str(&self, col: &Column, s: &str) -> Result<std::result::Result<u32, u32>> {
        if let Some(p) = self.plain() {
            return p.find_str(col, s);
        }
        let ks = self.space(col)?;
        match ks.table {
            Some(t) => Ok(match self.ov.snapshot().table(t)?.find(s)? {
                Ok(id) => Ok(ks.table_key(id)),
                Err(ins) => ks.new_key(ins, s),
            }),
            None => Ok(ks.new_key(0, s)),
        }
    }

    fn prefix_keys(&self, col: &Column, prefix: &str) -> Result<Range<u32>> {
        if let Some(p) = self.plain() {
            return p.prefix_keys(col, prefix);
        }
        let ks = self.space(col)?;
        let lo = match self.find_str(col, prefix)? {
            Ok(k) | Err(k) => k,
        };
        let ids = match ks.table {
            Some(t) => self.ov.snapshot().table(t)?.prefix_range(prefix)?,
            None => 0..0,
        };
        let j = ks.news.partition_point(|(_, t)| **t < *prefix);
        let m = ks.news[j..].partition_point(|(_, t)| t.starts_with(prefix));
        Ok(lo..lo + (ids.end - ids.start) + m as u32)
    }

    fn search_keys(&self, cols: &[&Column], needle_lower: &str) -> Result<Vec<Bits>> {
        if let Some(p) = self.plain() {
            return p.search_keys(cols, needle_lower);
        }
        let spaces = cols
            .iter()
            .map(|c| self.space(c))
            .collect::<Result<Vec<_>>>()?;
        // Per column: the keys it references, then the table ids among
        // them; each table chunk holding one is scanned once.
        let used: Vec<Bits> = cols
            .iter()
            .zip(&spaces)
            .map(|(c, ks)| {
                let mut b = Bits::new(ks.len());
                for i in 0..c.values.len() {
                    if let Cell::Str(k) = c.values.cell(i)
                        && (k as usize) < ks.len()
                    {
                        b.set(k as usize);
                    }
                }
                b
            })
            .collect();
        let snap = self.ov.snapshot();
        let mut wanted: HashMap<u32, Bits> = HashMap::new();
        // Keys of table strings are ranks; the tables are searched by id.
        let mut orders = HashMap::new();
        for ks in &spaces {
            if let Some(t) = ks.table {
                orders.insert(t, snap.table(t)?.order()?);
            }
        }
        let id_of = |t: u32, rank: u32| match orders.get(&t) {
            Some(Some(o)) => o.ids()[rank as usize],
            _ => rank,
        };
        for (ks, u) in spaces.iter().zip(&used) {
            if let Some(t) = ks.table {
                let w = wanted.entry(t).or_insert_with(|| Bits::new(ks.n as usize));
                for r in 0..ks.n {
                    if u.get(ks.table_key(r) as usize) {
                        w.set(id_of(t, r) as usize);
                    }
                }
            }
        }
        let found = search_tables(snap, &wanted, needle_lower)?;
        let mut buf = String::new();
        Ok(spaces
            .iter()
            .zip(&used)
            .map(|(ks, u)| {
                let mut b = Bits::new(ks.len());
                if let Some((t, f)) = ks.table.and_then(|t| Some((t, found.get(&t)?))) {
                    for r in 0..ks.n {
                        if f.get(id_of(t, r) as usize) {
                            b.set(ks.table_key(r) as usize);
                        }
                    }
                }
                for (j, (ins, text)) in ks.news.iter().enumerate() {
                    let k = *ins as usize + j;
                    if u.get(k) && contains_folded(text, needle_lower, &mut buf) {
                        b.set(k);
                    }
                }
                b
            })
            .collect())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn read_strings(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
    ) -> Result<Option<StringWindow>> {
        if let Some(p) = self.plain() {
            return p.read_strings(rows, fields);
        }
        if self.events_only_field(fields) {
            // Every row goes through JSON values: no window to read.
            return Ok(None);
        }
        // The window of the snapshot's own rows among `rows`, in order:
        // [`RowSource::write_row_groups_with`] writes them from it and the
        // held rows from their JSON, as [`RowSource::write_rows_json`].
        let base: Vec<u32> = self
            .slots_of(rows)?
            .into_iter()
            .filter(|&s| self.ov.held(s).is_none())
            .collect();
        self.base_src().read_strings(&base, fields)
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
        if let Some(p) = self.plain() {
            return p.write_row_groups_with(rows, group, fields, window, out, open, close);
        }
        let window = match window {
            Some(w) if !self.events_only_field(fields) => w,
            _ => return self.write_row_groups(rows, group, fields, out, open, close),
        };
        let slots = self.slots_of(rows)?;
        let mark = out.len();
        let r = self.write_groups_windowed(rows, &slots, group, fields, window, out, open, close);
        if r.is_err() {
            out.truncate(mark);
        }
        r
    }

    fn write_rows_json(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(p) = self.plain() {
            return p.write_rows_json(rows, fields, out);
        }
        if self.events_only_field(fields) {
            // A field only the events brought: the snapshot's writer cannot
            // select it.
            return self.write_values(rows, fields, out);
        }
        // Runs of the snapshot's own rows are written by the base straight
        // from the columns; only held rows go through JSON values.
        let mut run: Vec<u32> = Vec::new();
        let mut first = true;
        let flush = |run: &mut Vec<u32>, out: &mut Vec<u8>, first: &mut bool| -> Result<()> {
            if !run.is_empty() {
                if !*first {
                    out.push(b',');
                }
                *first = false;
                self.base_src().write_rows_json(run, fields, out)?;
                run.clear();
            }
            Ok(())
        };
        let slots = self.slots_of(rows)?;
        for (&r, &slot) in rows.iter().zip(&slots) {
            if self.ov.held(slot).is_none() {
                run.push(slot);
                continue;
            }
            flush(&mut run, out, &mut first)?;
            if !first {
                out.push(b',');
            }
            first = false;
            self.write_values(&[r], fields, out)?;
        }
        flush(&mut run, out, &mut first)
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
        let slots = self.slots_of(rows)?;
        // The snapshot's rows in one go: the shared writer is held only
        // while writing; parsing happens outside its lock.
        let from_snap: Vec<u32> = slots
            .iter()
            .copied()
            .filter(|&s| !matches!(self.ov.held(s), Some(Held::Row(_))))
            .collect();
        let mut snap_rows = if from_snap.is_empty() {
            Vec::new()
        } else {
            let mut buf = vec![b'['];
            self.base_src()
                .write_rows_json(&from_snap, None, &mut buf)?;
            buf.push(b']');
            serde_json::from_slice::<Vec<Value>>(&buf)
                .map_err(|e| Error::corrupt("row", from_snap[0] as u64, e.to_string()))?
        }
        .into_iter();
        slots
            .iter()
            .map(|&slot| match self.ov.held(slot) {
                Some(Held::Row(row)) => Ok(match &sel {
                    Some(s) => s.apply(row),
                    None => row.clone(),
                }),
                held => {
                    let mut v = snap_rows.next().ok_or_else(|| {
                        Error::corrupt("overlay", slot as u64, "snapshot row missing")
                    })?;
                    if let (Some(Held::Patch(ops)), Some(o)) = (held, v.as_object_mut()) {
                        replay(o, ops);
                    }
                    Ok(match &sel {
                        Some(s) => s.apply(&v),
                        None => v,
                    })
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The type every possibility gives, or none when two differ.
    #[test]
    fn settle_types_only_what_every_possibility_agrees_on() {
        let mut known = [false; KIND_COUNT];
        use BaseStrs::*;
        // Base text surely left, or maybe only timestamps.
        assert_eq!(
            settle(&known, &[], &[Text], &[false], false, false),
            Some(ColumnType::String)
        );
        assert_eq!(
            settle(&known, &[], &[Text, Times], &[false], false, false),
            None
        );
        // The delta's text makes it text whatever the base leaves.
        assert_eq!(
            settle(&known, &[Kind::Time], &[Gone], &[false], true, false),
            Some(ColumnType::String)
        );
        // A null that may leave does not change a text column.
        assert_eq!(
            settle(&known, &[Kind::Null], &[Text], &[false], false, false),
            Some(ColumnType::String)
        );
        // A column that may lose every item is left open.
        assert_eq!(
            settle(
                &known,
                &[Kind::False, Kind::True],
                &[Gone],
                &[false],
                false,
                false
            ),
            None
        );
        known[Kind::True as usize] = true;
        assert_eq!(
            settle(&known, &[Kind::False], &[Gone], &[false], false, false),
            Some(ColumnType::Bool)
        );
        // A negative int matters next to a UInt, not next to a float.
        let mut nums = [false; KIND_COUNT];
        nums[Kind::Int as usize] = true;
        nums[Kind::UInt as usize] = true;
        assert_eq!(
            settle(&nums, &[], &[Gone], &[false, true], false, false),
            None
        );
        assert_eq!(
            settle(&nums, &[], &[Gone], &[true], false, false),
            Some(ColumnType::Number)
        );
        nums[Kind::Float as usize] = true;
        assert_eq!(
            settle(&nums, &[], &[Gone], &[false, true], false, false),
            Some(ColumnType::Number)
        );
        // A kind that may leave next to another changes the type.
        assert_eq!(
            settle(&nums, &[Kind::Object], &[Gone], &[true], false, false),
            None
        );
    }

    /// Keys of table ids and new strings order like the strings (the
    /// three-case rule made dense), whatever the bucketing.
    #[test]
    fn key_space_orders_table_and_new_strings() {
        let table: Vec<String> = (0..500).map(|i| format!("s{:04}", i * 3)).collect();
        let news: Vec<String> = (0..120)
            .map(|i| format!("s{:04}", (i * 37) % 1500))
            .filter(|s| table.binary_search(s).is_err())
            .chain(["", "a", "zz", "s0000\u{0}"].map(String::from))
            .collect();
        let entries: Vec<(u32, Box<str>)> = news
            .iter()
            .map(|s| (table.partition_point(|t| t < s) as u32, s.as_str().into()))
            .collect();
        let ks = KeySpace::new(Some(0), table.len() as u32, entries);
        let mut all: Vec<(u32, &str)> = table
            .iter()
            .enumerate()
            .map(|(id, s)| (ks.table_key(id as u32), s.as_str()))
            .collect();
        for s in &news {
            let ins = table.partition_point(|t| t < s) as u32;
            all.push((ks.new_key(ins, s).unwrap(), s.as_str()));
        }
        all.sort();
        let keys: Vec<u32> = all.iter().map(|(k, _)| *k).collect();
        let mut texts: Vec<&str> = all.iter().map(|(_, s)| *s).collect();
        assert_eq!(keys, (0..keys.len() as u32).collect::<Vec<_>>(), "dense");
        let sorted = {
            let mut t = texts.clone();
            t.sort();
            t
        };
        assert_eq!(texts, sorted, "string order");
        texts.dedup();
        assert_eq!(texts.len(), keys.len());
        // A string in neither: its insertion key is the first greater key.
        let ins = table.partition_point(|t| t.as_str() < "s0001") as u32;
        let k = ks.new_key(ins, "s0001").unwrap_err();
        assert_eq!(all[k as usize].1, "s0003");
    }

    /// The two-byte offsets give every slot the view row of the four-byte
    /// array (rows created between slots, deleted runs, JSON-held slots),
    /// and offsets too large for two bytes leave the four-byte array.
    #[test]
    fn dense_offsets_are_the_dense_rows() {
        let n = 1000u32;
        let rows: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"id":{i},"t":"x{i}"}}"#))
            .collect();
        let bytes = crate::write::build_to_vec(
            format!("[{}]", rows.join(",")).as_bytes(),
            &Default::default(),
        )
        .unwrap();
        let snap = crate::read::Snapshot::from_bytes(bytes).unwrap();
        let mut ov = Overlay::new(snap, "id").unwrap();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut live: Vec<u64> = (0..u64::from(n)).collect();
        for seq in 0..400u64 {
            let line = if next() % 2 == 0 {
                let k = 10_000 + seq;
                let at = next() % (live.len() as u64 + 1);
                live.push(k);
                format!(
                    r#"{{"seq":{seq},"op":"create","key":{k},"at":{at},"row":{{"id":{k},"t":"n"}}}}"#
                )
            } else {
                let k = live.swap_remove((next() % live.len() as u64) as usize);
                format!(r#"{{"seq":{seq},"op":"delete","key":{k}}}"#)
            };
            ov.apply(&Event::parse(1, &line).unwrap(), seq + 1).unwrap();
        }
        let map = ViewMap::new(&ov);
        // Every slot's view row, by the runs alone and with granules.
        for s in 0..ov.slot_count() as u32 {
            assert_eq!(map.row(s), ov.position(s), "slot {s}");
        }
        let fine = map.clone();
        for s in 0..ov.slot_count() as u32 {
            assert_eq!(fine.with_granules().row(s), ov.position(s), "slot {s}");
        }
        // The runs are maximal: no run continues the one before.
        for w in map.runs.windows(2) {
            assert!(
                w[0].0 + w[0].2 != w[1].0 || w[0].1 + w[0].2 != w[1].1,
                "{w:?}"
            );
        }
        let mut json = Bits::new(n as usize);
        for s in (0..n).step_by(7) {
            json.set(s as usize);
        }
        let rows = map.dense_rows(&json);
        let off = map.dense_offsets(&json).expect("offsets fit");
        assert_eq!(rows.len(), off.len());
        for (s, (&r, &o)) in rows.iter().zip(&off).enumerate() {
            let want = ov.position(s as u32).filter(|_| !json.get(s));
            assert_eq!((r != u32::MAX).then_some(r), want, "rows, slot {s}");
            let got = (o != i16::MIN).then(|| (s as i64 + i64::from(o)) as u32);
            assert_eq!(got, want, "offsets, slot {s}");
        }
        // 40,000 snapshot rows, the first 33,000 gone: an offset of -33,000.
        let far = ViewMap {
            runs: vec![(33_000, 0, 7_000)],
            n_snap: 40_000,
            ..ViewMap::default()
        };
        assert!(far.dense_offsets(&Bits::new(40_000)).is_none());
        assert_eq!(far.dense_rows(&Bits::new(40_000))[33_001], 1);
    }

    #[test]
    fn runs_end_where_the_deleted_slots_say_and_survive_wrong_hints() {
        // Snapshot slots 0..100 less 10, 11, 50 and 99, in one segment.
        let gone = [10u32, 11, 50, 99];
        let seg: Vec<u32> = (0..100).filter(|s| !gone.contains(s)).collect();
        let want = vec![(0, 0, 10), (12, 10, 38), (51, 48, 48)];
        let runs_with = |hints: &[u32]| {
            let (mut runs, mut next) = (Vec::new(), 0usize);
            // Two segments, as two blocks: the second run joins across them.
            add_runs(&mut runs, &seg[..30], 0, hints, &mut next);
            add_runs(&mut runs, &seg[30..], 30, hints, &mut next);
            runs
        };
        assert_eq!(runs_with(&gone), want);
        // No hint, too few, and slots that are not gone: the same runs.
        assert_eq!(runs_with(&[]), want);
        assert_eq!(runs_with(&[50]), want);
        assert_eq!(runs_with(&[3, 10, 20, 50, 60, 61, 98]), want);
    }

    #[test]
    fn segments_of_display_paths() {
        assert_eq!(
            segments("labels[].name").unwrap(),
            [
                Seg::Key("labels".into()),
                Seg::Elem,
                Seg::Key("name".into())
            ]
        );
        assert_eq!(segments("a\\.b").unwrap(), [Seg::Key("a.b".into())]);
        assert_eq!(display(&segments("x[][].a\\[b").unwrap()), "x[][].a\\[b");
    }
}
