//! The overlay: an open snapshot plus events applied in memory.

use super::columns::Columns;
use super::event::{
    Event, EventOp, apply_update, count_inexact_integers, event_error, get_path, key_text,
    touches_key,
};
use super::order::Order;
use super::path::{join_path, parse_path};
use super::strkey::{Composite, MAX_EVENTS, MAX_FIELDS, StrKey};
use super::touch::Touches;
use crate::error::{Error, Result};
use crate::model::Kind;
use crate::read::{Emitter, ExportOptions, Snapshot};
use crate::strings::StringTable;
use crate::timestamp;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::sync::Arc;

/// A hasher for row slots: one multiplication, its well-mixed high bits
/// folded into the low ones (which pick a bucket), far
/// cheaper than SipHash for the maps keyed by slot, which a query looks
/// up once per changed row. Slots are the overlay's own numbers, not
/// input an attacker picks.
#[derive(Clone, Copy, Default)]
pub(crate) struct SlotHasher(u64);

impl std::hash::Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0 ^ u64::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by row slot ([`SlotHasher`]).
pub(crate) type SlotMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<SlotHasher>>;

/// The slot of each snapshot row that has a key, by the key's text
/// ([`key_text`]).
#[derive(Debug)]
enum KeyIndex {
    /// Every key is an `Int`: the keys sorted, with their slots.
    Ints(Vec<(i64, u32)>),
    /// Any keys, by text.
    Text(HashMap<Box<str>, u32>),
}

impl KeyIndex {
    fn get(&self, kt: &str) -> Option<u32> {
        match self {
            // An integer's key text is its decimal digits (`5`, `-3`):
            // any other text (`5.0`, `"5"`) is no `Int` key.
            KeyIndex::Ints(keys) => {
                let k: i64 = kt.parse().ok().filter(|k: &i64| k.to_string() == kt)?;
                keys.binary_search_by_key(&k, |&(x, _)| x)
                    .ok()
                    .map(|i| keys[i].1)
            }
            KeyIndex::Text(m) => m.get(kt).copied(),
        }
    }
}

/// The default key field.
pub const DEFAULT_KEY_FIELD: &str = "id";

/// A snapshot with events applied in memory. The snapshot's string tables
/// are never rewritten: strings the events bring are represented by
/// composite ids ([`super::strkey`]). Every row lives in a *slot*: slots
/// `0..rows` are the snapshot's rows, created rows get the next slots. A
/// slot is either the snapshot's row or an overridden row held as JSON.
///
/// The overlay owns a handle on its snapshot (a cheap clone), so it can be
/// kept, moved between threads and wrapped in an
/// [`OverlaySource`](super::OverlaySource) for the query engine.
pub struct Overlay {
    snap: Snapshot,
    key_path: Vec<String>,
    n_snap: u32,
    order: Order,
    /// The snapshot slots deleted, in slot order (where the snapshot's
    /// rows stop being consecutive in the view: see `ViewMap`), but for
    /// those in `gone_recent`.
    gone: Vec<u32>,
    /// The snapshot slots deleted last, in the order deleted: merged into
    /// `gone` once they are a quarter of it, so that deletes in any order
    /// cost O(log rows) each amortised (an insert into the sorted list
    /// moved it all: 100,000 deletes in descending order took 0.89 s).
    gone_recent: Vec<u32>,
    /// Overridden snapshot rows and created rows, by slot.
    rows: SlotMap<Value>,
    /// Key text -> slot of every snapshot row that has a key (built on
    /// first use, never changed after: shared by clones).
    keys: Option<Arc<KeyIndex>>,
    /// Keys the events created (`Some(slot)`) or deleted (`None`): they
    /// take precedence over `keys`.
    key_changes: HashMap<String, Option<u32>>,
    /// New strings of each string-bringing event, by field index.
    new_strings: Vec<Vec<Box<str>>>,
    /// Sequence number of each string-bringing event.
    new_string_seqs: Vec<u64>,
    /// Where each new string was defined: (event index, field index).
    introduced: HashMap<Box<str>, (u32, u32)>,
    /// Index of the first string of each block of new strings among all
    /// new strings (`flat`).
    block_start: Vec<u32>,
    /// Every new string, as (event index, field index), in the order brought.
    flat: Vec<(u32, u32)>,
    /// Snapshot rows changed only at the top level, not held as JSON: their
    /// top-level sets (`Some`) and removes (`None`), in order. The row is the
    /// snapshot's with these replayed (so an update costs no row decoding).
    patches: SlotMap<Vec<(Arc<str>, Option<Value>)>>,
    /// The keys of `patches`' changes, one `Arc` per distinct key: a
    /// reader finds a column's changes in a patch by comparing pointers
    /// ([`Overlay::patch_key`]), never the keys' text.
    patch_keys: HashSet<Arc<str>>,
    /// Paths set or removed by updates of each overridden snapshot row (the
    /// row's other fields still equal the snapshot's), as a list of
    /// `touches`: rows whose updates touched the same paths share one
    /// list, so asking whether a row's updates touched a column is one
    /// lookup and a look at a flag per list.
    touched: SlotMap<u32>,
    touches: Touches,
    /// The view's columns (made on the first event), so that no event
    /// makes more than a compaction may write.
    columns: Option<Columns>,
    /// Per string table: where each of `flat` falls in it (`find`), for the
    /// first `len` of them (extended on demand).
    placed: std::sync::Mutex<HashMap<u32, Vec<std::result::Result<u32, u32>>>>,
    last_seq: Option<u64>,
    applied: u64,
    emitter: Option<Emitter>,
    /// Integers outside `[-2^63, 2^64)` in events read from text.
    inexact: crate::schema::builder::InexactIntegers,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("rows", &self.len())
            .field("applied", &self.applied)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

/// A copy of the overlay's state (its snapshot handle and the key index of
/// the snapshot's rows are shared): apply more events to the copy while
/// the original keeps serving. Costs one pass over the row order (8 bytes
/// a row) plus the events' own data; the caches (string placements, the
/// row emitter) start empty in the copy.
impl Clone for Overlay {
    fn clone(&self) -> Overlay {
        Overlay {
            snap: self.snap.clone(),
            key_path: self.key_path.clone(),
            n_snap: self.n_snap,
            order: self.order.clone(),
            gone: self.gone.clone(),
            gone_recent: self.gone_recent.clone(),
            rows: self.rows.clone(),
            keys: self.keys.clone(),
            key_changes: self.key_changes.clone(),
            new_strings: self.new_strings.clone(),
            new_string_seqs: self.new_string_seqs.clone(),
            introduced: self.introduced.clone(),
            block_start: self.block_start.clone(),
            flat: self.flat.clone(),
            patches: self.patches.clone(),
            patch_keys: self.patch_keys.clone(),
            touched: self.touched.clone(),
            touches: self.touches.clone(),
            columns: self.columns.clone(),
            placed: std::sync::Mutex::new(HashMap::new()),
            last_seq: self.last_seq,
            applied: self.applied,
            emitter: None,
            inexact: self.inexact,
        }
    }
}

/// Is `s` a string the builder would store as a timestamp?
pub(crate) fn is_timestamp(s: &str) -> bool {
    timestamp::looks_like(s) && timestamp::parse(s).is_some()
}

pub(crate) fn walk_strings<'v>(v: &'v Value, out: &mut impl FnMut(&'v str)) {
    match v {
        Value::String(s) => out(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| walk_strings(x, out)),
        _ => {}
    }
}

impl Overlay {
    /// An overlay with no events; rows are identified by the (possibly
    /// nested, display-path) field `key_field`. Pass a clone of `snap` to
    /// keep using it.
    pub fn new(snap: Snapshot, key_field: &str) -> Result<Overlay> {
        let key_path =
            parse_path(key_field).map_err(|m| Error::Invalid(format!("key field: {m}")))?;
        let n_snap = u32::try_from(snap.rows()).map_err(|_| Error::Limit {
            what: "rows",
            got: snap.rows(),
            max: u32::MAX as u64,
        })?;
        // The row order takes 8 bytes a row (a slot and its block) before any
        // event: refuse a row count the file claims without holding it.
        let budget = crate::read::default_budget(&snap);
        let need = (n_snap as u64).saturating_mul(8);
        if need > budget {
            return Err(Error::Budget {
                what: format!("an overlay over {n_snap} rows"),
                need,
                budget,
            });
        }
        Ok(Overlay {
            snap,
            key_path,
            n_snap,
            order: Order::new(n_snap),
            gone: Vec::new(),
            gone_recent: Vec::new(),
            rows: SlotMap::default(),
            keys: None,
            key_changes: HashMap::new(),
            new_strings: Vec::new(),
            new_string_seqs: Vec::new(),
            introduced: HashMap::new(),
            block_start: Vec::new(),
            flat: Vec::new(),
            patches: SlotMap::default(),
            patch_keys: HashSet::new(),
            touched: SlotMap::default(),
            touches: Touches::default(),
            columns: None,
            placed: std::sync::Mutex::new(HashMap::new()),
            last_seq: None,
            applied: 0,
            emitter: None,
            inexact: Default::default(),
        })
    }

    /// Integers outside `[-2^63, 2^64)` in the events applied from text
    /// ([`Overlay::apply_reader`], log segments): each was applied as its
    /// nearest binary64 (events are read as JSON values). The first one's
    /// line and column are those of its log (or segment).
    pub fn inexact_integers(&self) -> crate::schema::builder::InexactIntegers {
        self.inexact
    }

    /// Count the integers of event text `line` (line `lno`) that
    /// [`Overlay::inexact_integers`] reports.
    pub(crate) fn note_event_text(&mut self, line: &str, lno: u64) {
        count_inexact_integers(line, lno, &mut self.inexact);
    }

    /// The snapshot under the overlay.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// The key field as a display path.
    pub fn key_field(&self) -> String {
        join_path(&self.key_path)
    }

    /// Rows in the current view.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when the view has no rows.
    pub fn is_empty(&self) -> bool {
        self.order.len() == 0
    }

    /// Events applied so far.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Sequence number of the last applied event.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Rows held as JSON (overridden or created).
    pub fn overridden(&self) -> usize {
        self.rows.len() + self.patches.len()
    }

    /// The event indexes of composite ids in use: one per string-bringing
    /// event and per [`MAX_FIELDS`] new strings it brought (at most
    /// [`MAX_EVENTS`]).
    pub fn string_events(&self) -> usize {
        self.new_strings.len()
    }

    /// The slots of the view, in row order.
    pub fn slots(&self) -> Vec<u32> {
        self.order.to_vec()
    }

    /// The text of a new string.
    pub fn new_string(&self, c: Composite) -> &str {
        &self.new_strings[c.event() as usize][c.field() as usize]
    }

    /// Sequence number of the event that defined a new string.
    pub fn defining_seq(&self, c: Composite) -> u64 {
        self.new_string_seqs[c.event() as usize]
    }

    fn emitter(&mut self) -> Result<&mut Emitter> {
        if self.emitter.is_none() {
            self.emitter = Some(Emitter::new(&self.snap, None)?);
        }
        Ok(self.emitter.as_mut().expect("just set"))
    }

    /// Append the row in `slot` as compact JSON to `out`.
    pub fn row_json(&mut self, slot: u32, out: &mut Vec<u8>) -> Result<()> {
        if let Some(v) = self.rows.get(&slot) {
            serde_json::to_writer(&mut *out, v).map_err(|e| Error::Invalid(e.to_string()))?;
            return Ok(());
        }
        if slot >= self.n_snap {
            return Err(Error::NotFound {
                what: "row slot",
                name: slot.to_string(),
            });
        }
        if self.patches.contains_key(&slot) {
            let mut buf = Vec::new();
            self.emitter()?.row(slot as u64, &mut buf)?;
            let ops = self.patches.get(&slot).map_or(&[][..], |o| &o[..]);
            return replay_text(&buf, ops, slot, out);
        }
        self.emitter()?.row(slot as u64, out)
    }

    /// The row in `slot` as JSON.
    pub fn row_value(&mut self, slot: u32) -> Result<Value> {
        if let Some(v) = self.rows.get(&slot) {
            return Ok(v.clone());
        }
        let mut out = Vec::new();
        self.row_json(slot, &mut out)?;
        serde_json::from_slice(&out).map_err(|e| Error::corrupt("row", slot as u64, e.to_string()))
    }

    /// Check that the view holds exactly the rows of `input` (a JSON array
    /// or NDJSON), in the view's order, as JSON values (integers outside
    /// `[-2^63, 2^64)` by their digits): what
    /// [`Snapshot::verify_against`](crate::Snapshot::verify_against) checks
    /// for a snapshot, after the events. Returns the rows compared; a
    /// difference is an [`Error::Mismatch`] naming the row and the first
    /// differing path.
    pub fn verify_against(&mut self, input: impl std::io::Read) -> Result<u64> {
        use crate::read::verify::{exact_value, first_difference, number_mark, unmark};
        let slots = self.slots();
        let mut n = 0u64;
        let mark = number_mark();
        let mut buf = Vec::new();
        crate::schema::input::for_each_row(input, |i, text| {
            let Some(&slot) = slots.get(i as usize) else {
                return Err(Error::Mismatch {
                    row: i,
                    detail: format!(
                        "the input has more rows than the {} after the events",
                        slots.len()
                    ),
                });
            };
            let expected = exact_value(text.as_bytes(), &mark)
                .map_err(|e| Error::Invalid(format!("row {i}: {e}")))?;
            buf.clear();
            self.row_json(slot, &mut buf)?;
            let got = exact_value(&buf, &mark)
                .map_err(|e| Error::corrupt("row", slot as u64, e.to_string()))?;
            if got != expected {
                return Err(Error::Mismatch {
                    row: i,
                    detail: format!(
                        "differs at {}",
                        unmark(&first_difference(&expected, &got), &mark)
                    ),
                });
            }
            n += 1;
            Ok(())
        })?;
        if n != slots.len() as u64 {
            return Err(Error::Mismatch {
                row: n,
                detail: format!(
                    "the input has {n} rows, the view after the events {}",
                    slots.len()
                ),
            });
        }
        Ok(n)
    }

    /// Every row of the view as JSON values, in order.
    pub fn to_values(&mut self) -> Result<Vec<Value>> {
        let slots = self.slots();
        slots.into_iter().map(|s| self.row_value(s)).collect()
    }

    /// Write the view as JSON (an array or NDJSON), like [`Snapshot::export`].
    /// Column selection is not supported with events.
    pub fn export(&mut self, w: &mut dyn Write, opts: &ExportOptions) -> Result<u64> {
        if opts.columns.is_some() {
            return Err(Error::Invalid(
                "selecting columns is not supported together with events".into(),
            ));
        }
        let slots = self.slots();
        let n = slots.len() as u64;
        let r = opts.rows.clone().unwrap_or(0..n);
        let r = r.start.min(n)..r.end.min(n);
        let io = |e: std::io::Error| Error::io(None, e);
        let mut out = Vec::with_capacity(1 << 16);
        if !opts.ndjson {
            out.push(b'[');
        }
        for (i, &slot) in slots[r.start as usize..r.end as usize].iter().enumerate() {
            if !opts.ndjson {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'\n');
            }
            self.row_json(slot, &mut out)?;
            if opts.ndjson {
                out.push(b'\n');
            }
            if out.len() > 1 << 16 {
                w.write_all(&out).map_err(io)?;
                out.clear();
            }
        }
        if !opts.ndjson {
            if !r.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(b"]\n");
        }
        w.write_all(&out).map_err(io)?;
        w.flush().map_err(io)?;
        Ok(r.end - r.start)
    }

    #[cfg(feature = "write")]
    /// Feed every row of the view, in order, to a snapshot builder: the
    /// snapshot's rows as their exported JSON, the others as values.
    pub(crate) fn feed(&mut self, b: &mut crate::schema::ColumnsBuilder) -> Result<()> {
        use serde::de::DeserializeSeed;
        let mut buf = Vec::new();
        for slot in self.slots() {
            if let Some(v) = self.rows.get(&slot) {
                crate::write::push_value(b, v)?;
                continue;
            }
            // The snapshot's rows, patched or not, as their JSON text: an
            // integer kept as text (SPEC.md 1.3) stays one.
            buf.clear();
            self.row_json(slot, &mut buf)?;
            let n = b.rows;
            let mut de = serde_json::Deserializer::from_slice(&buf);
            b.row_seed_text(&buf)
                .deserialize(&mut de)
                .map_err(|e| Error::Value {
                    row: n,
                    path: String::new(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    fn ensure_keys(&mut self) -> Result<()> {
        self.ensure_keys_within(crate::read::default_budget(&self.snap))
    }

    /// [`Self::ensure_keys`] charging the index, with the row order, to
    /// `budget`: a few hundred bytes of file may claim ten million rows,
    /// whose index would take gigabytes.
    fn ensure_keys_within(&mut self, budget: u64) -> Result<()> {
        if self.keys.is_some() {
            return Ok(());
        }
        let n = self.n_snap as u64;
        let over = |need: u64| Error::Budget {
            what: format!("the key index of an overlay over {n} rows"),
            need,
            budget,
        };
        let path = join_path(&self.key_path);
        let Some(node) = self.snap.node_by_path(&path) else {
            self.keys = Some(Arc::new(KeyIndex::Text(HashMap::new())));
            return Ok(());
        };
        let data = self.snap.node_data(node)?;
        // Integer keys (issue numbers, ids: the usual case) are kept
        // sorted, 16 bytes a row with the row's 8 of order; others as text.
        let ints = (0..self.n_snap as usize).all(|i| {
            !matches!(
                data.kind(i),
                Kind::UInt | Kind::Float | Kind::NumText | Kind::Str | Kind::Time
            )
        });
        if ints {
            let need = n.saturating_mul(8 + 16);
            if need > budget {
                return Err(over(need));
            }
            let mut keys: Vec<(i64, u32)> = (0..self.n_snap as usize)
                .filter(|&i| data.kind(i) == Kind::Int)
                .map(|i| (data.ints[data.pos(i)], i as u32))
                .collect();
            keys.sort_unstable();
            // A repeated key: the first row holding a key an earlier row
            // holds, as a walk in row order finds it.
            let twice = keys
                .windows(2)
                .filter(|w| w[0].0 == w[1].0)
                .min_by_key(|w| w[1].1);
            if let Some(w) = twice {
                return Err(Error::Value {
                    row: w[1].1 as u64,
                    path,
                    message: format!(
                        "the key {} is also the key of row {}; events need a unique key field (choose another with key_field)",
                        w[1].0, w[0].1
                    ),
                });
            }
            self.keys = Some(Arc::new(KeyIndex::Ints(keys)));
            return Ok(());
        }
        // A row takes 8 bytes of order and a map entry (a key's `Box<str>`
        // and its slot, 24 bytes, at the map's load and power-of-two
        // capacity: up to 48), and its key's text (its allocation at least
        // 16 bytes, and 16 of the allocator's): charged before the map is
        // made and as the texts are made.
        let fixed = n.saturating_mul(8 + 48);
        if fixed > budget {
            return Err(over(fixed.saturating_add(n.saturating_mul(32))));
        }
        let mut texts: u64 = 0;
        let mut keys = HashMap::with_capacity(self.n_snap as usize);
        let table = self.snap.table_of(node).ok();
        let mut text = String::new();
        for i in 0..self.n_snap as usize {
            let p = data.pos(i);
            let v = match data.kind(i) {
                Kind::Int => Value::from(data.ints[p]),
                Kind::UInt => Value::from(data.uints[p]),
                // An event's key is read as JSON (serde_json: the nearest
                // binary64), so a key kept as text is its binary64 here.
                Kind::NumText => serde_json::Number::from_f64(crate::encoding::numtext::value(
                    &data.num_texts[p],
                ))
                .map(Value::Number)
                .unwrap_or(Value::Null),
                Kind::Float => serde_json::Number::from_f64(data.floats[p])
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                Kind::Str => match &table {
                    Some(t) => Value::String(t.get(data.strs[p])?),
                    None => continue,
                },
                Kind::Time => {
                    text.clear();
                    timestamp::format(&data.timestamp(p), &mut text);
                    Value::String(text.clone())
                }
                _ => continue,
            };
            let kt = key_text(&v);
            texts += 16 + kt.len().max(16) as u64;
            if fixed + texts > budget {
                // What the whole index would take, at the rows' mean so far.
                let all = texts / (i as u64 + 1) * n;
                return Err(over(fixed.saturating_add(all)));
            }
            // (`key_text`'s `String` has room for 128 bytes: 144 of
            // the allocator's a row before it is cut to its length.)
            if let Some(prev) = keys.insert(kt.into_boxed_str(), i as u32) {
                return Err(Error::Value {
                    row: i as u64,
                    path,
                    message: format!(
                        "the key {} is also the key of row {prev}; events need a unique key field (choose another with key_field)",
                        key_text(&v)
                    ),
                });
            }
        }
        self.keys = Some(Arc::new(KeyIndex::Text(keys)));
        Ok(())
    }

    /// The slot of the live row whose key text is `kt` (keys built).
    fn key_slot(&self, kt: &str) -> Option<u32> {
        match self.key_changes.get(kt) {
            Some(s) => *s,
            None => self.keys.as_ref().and_then(|k| k.get(kt)),
        }
    }

    /// The slot of the live row with key `key`.
    pub fn slot_of(&mut self, key: &Value) -> Result<Option<u32>> {
        self.ensure_keys()?;
        Ok(self.key_slot(&key_text(key)))
    }

    /// Apply one event. `line` is where it came from (for errors; 0 if
    /// none). The event is checked completely before anything changes: on
    /// error the view is exactly as before.
    pub fn apply(&mut self, ev: &Event, line: u64) -> Result<()> {
        let err = |m: String| event_error(line, Some(ev.seq), m);
        if let Some(last) = self.last_seq
            && last.checked_add(1) != Some(ev.seq)
        {
            return Err(err(super::event::sequence_message(last, ev.seq)));
        }
        ev.check().map_err(&err)?;
        self.ensure_keys()?;
        // The columns the event adds: no more than `compact` may write.
        let (plan, fits) = self.column_plan(ev);
        fits.map_err(&err)?;
        let kt = key_text(&ev.key);
        let existing = self.key_slot(&kt);
        match &ev.op {
            EventOp::Create { row, at } => {
                if existing.is_some() {
                    return Err(err(format!("create of the existing key {kt}")));
                }
                match get_path(row, &self.key_path) {
                    Some(v) if key_text(v) == kt => {}
                    Some(v) => {
                        return Err(err(format!(
                            "the row's `{}` is {} but the event's key is {kt}",
                            self.key_field(),
                            key_text(v)
                        )));
                    }
                    None => {
                        return Err(err(format!(
                            "the row has no key field `{}`",
                            self.key_field()
                        )));
                    }
                }
                let at = match *at {
                    None => self.order.len(),
                    Some(a) if a <= self.order.len() as u64 => a as usize,
                    Some(a) => {
                        return Err(err(format!(
                            "`at` {a} is past the end of the {} rows",
                            self.order.len()
                        )));
                    }
                };
                if self.order.slots() >= u32::MAX as usize {
                    return Err(err(
                        "too many rows: compact the snapshot first (`colsnap compact`)".into(),
                    ));
                }
                let row = Value::Object(row.clone());
                let fresh = self.fresh_strings(std::slice::from_ref(&row), &err)?;
                // Commit.
                let slot = self.order.slots() as u32;
                self.order.insert(at, slot);
                self.rows.insert(slot, row);
                self.key_changes.insert(kt, Some(slot));
                self.commit_strings(fresh, ev.seq);
            }
            EventOp::Update { set, remove } => {
                if set.is_empty() && remove.is_empty() {
                    return Err(err("an update needs `set` or `remove`".into()));
                }
                let slot =
                    existing.ok_or_else(|| err(format!("update of the missing key {kt}")))?;
                let values: Vec<Value> = set.iter().map(|(_, v)| v.clone()).collect();
                let top =
                    set.iter().all(|(p, _)| p.len() == 1) && remove.iter().all(|p| p.len() == 1);
                if slot < self.n_snap && top && !self.rows.contains_key(&slot) {
                    // Top-level changes of a snapshot row: kept as a patch
                    // (checked on an empty row: only the key rule applies).
                    apply_update(&mut Map::new(), set, remove, &self.key_path).map_err(&err)?;
                    let fresh = self.fresh_strings(&values, &err)?;
                    let changes = set
                        .iter()
                        .map(|(p, v)| (&p[0], Some(v)))
                        .chain(remove.iter().map(|p| (&p[0], None)));
                    let ops = self.patches.entry(slot).or_default();
                    for (k, v) in changes {
                        let k = match self.patch_keys.get(k.as_str()) {
                            Some(a) => a.clone(),
                            None => {
                                let a: Arc<str> = k.as_str().into();
                                self.patch_keys.insert(a.clone());
                                a
                            }
                        };
                        ops.push((k, v.cloned()));
                    }
                    self.commit_strings(fresh, ev.seq);
                } else if let Some(Value::Object(held)) = self.rows.get(&slot)
                    && update_cannot_fail(held, set, remove, &self.key_path)
                {
                    // A row held as JSON that the update cannot fail on
                    // (see `update_cannot_fail`) changes in place, without
                    // a copy: copying the top-level field a nested path
                    // touches made n updates of a growing field cost n².
                    let fresh = self.fresh_strings(&values, &err)?;
                    if let Some(Value::Object(row)) = self.rows.get_mut(&slot) {
                        apply_update(row, set, remove, &self.key_path).map_err(&err)?;
                    }
                    self.commit_strings(fresh, ev.seq);
                } else if let Some(Value::Object(held)) = self.rows.get(&slot) {
                    // Else a row held as JSON changes in place: the update runs
                    // on a copy of the top-level fields it touches alone
                    // (copying the whole row cost 2.2 ms an update for a
                    // row holding 200,000 numbers), then is merged.
                    let mut part = Map::new();
                    for p in set.iter().map(|(p, _)| p).chain(remove) {
                        if let Some(v) = held.get(&p[0])
                            && !part.contains_key(&p[0])
                        {
                            part.insert(p[0].clone(), v.clone());
                        }
                    }
                    let had: HashSet<String> = part.keys().cloned().collect();
                    apply_update(&mut part, set, remove, &self.key_path).map_err(&err)?;
                    let fresh = self.fresh_strings(&values, &err)?;
                    // Commit: fields the update removed leave, in place;
                    // kept ones change in place; new ones come last, in
                    // the order the update made them.
                    if let Some(Value::Object(row)) = self.rows.get_mut(&slot) {
                        for k in &had {
                            if !part.contains_key(k) {
                                row.shift_remove(k);
                            }
                        }
                        for (k, v) in part {
                            row.insert(k, v);
                        }
                    }
                    self.commit_strings(fresh, ev.seq);
                } else {
                    let mut row = self.row_value(slot)?;
                    let obj = row
                        .as_object_mut()
                        .ok_or_else(|| err("row is not an object".into()))?;
                    apply_update(obj, set, remove, &self.key_path).map_err(&err)?;
                    let fresh = self.fresh_strings(&values, &err)?;
                    self.rows.insert(slot, row);
                    self.patches.remove(&slot);
                    self.commit_strings(fresh, ev.seq);
                }
                if slot < self.n_snap {
                    let was = self.touched.get(&slot).copied();
                    let paths = set.iter().map(|(p, _)| p).chain(remove);
                    if let Some(list) = self.touches.extend(was, paths) {
                        self.touched.insert(slot, list);
                    }
                }
            }
            EventOp::Delete => {
                let slot =
                    existing.ok_or_else(|| err(format!("delete of the missing key {kt}")))?;
                self.order.remove(slot);
                if slot < self.n_snap {
                    self.gone_recent.push(slot);
                    if self.gone_recent.len() > 64.max(self.gone.len() / 4) {
                        self.gone = self.deleted_snapshot_slots().into_owned();
                        self.gone_recent.clear();
                    }
                }
                self.rows.remove(&slot);
                self.patches.remove(&slot);
                self.touched.remove(&slot);
                self.key_changes.insert(kt, None);
            }
        }
        if let Some(c) = self.columns.as_mut() {
            c.commit(plan);
        }
        self.last_seq = Some(ev.seq);
        self.applied += 1;
        Ok(())
    }

    /// The columns `ev` would add to the view, and whether the view may
    /// take them (the message when not).
    fn column_plan<'v>(
        &mut self,
        ev: &'v Event,
    ) -> (super::columns::Plan<'v>, std::result::Result<(), String>) {
        let cols = self.columns.get_or_insert_with(|| {
            Columns::of(&self.snap, crate::schema::Limits::default().max_columns)
        });
        let mut plan = cols.plan();
        match &ev.op {
            EventOp::Create { row, .. } => cols.walk_row(&mut plan, row),
            EventOp::Update { set, .. } => {
                for (p, v) in set {
                    cols.walk_set(&mut plan, p, v);
                }
            }
            EventOp::Delete => {}
        }
        let fits = cols.check(&plan);
        (plan, fits)
    }

    /// Whether the view may take the columns `ev` brings (see
    /// [`Columns`]): when not after earlier events, a compaction writes
    /// the view so far first, whose columns are only those its rows hold.
    #[cfg(feature = "write")]
    pub(crate) fn columns_fit(&mut self, ev: &Event) -> bool {
        self.column_plan(ev).1.is_ok()
    }

    /// The strings of `values` no earlier event brought, deduplicated, in order.
    fn fresh_strings(
        &self,
        values: &[Value],
        err: &dyn Fn(String) -> Error,
    ) -> Result<Vec<Box<str>>> {
        let mut fresh: Vec<Box<str>> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for v in values {
            walk_strings(v, &mut |s| {
                if !self.introduced.contains_key(s) && seen.insert(s) {
                    fresh.push(s.into());
                }
            });
        }
        // An event takes one event index per MAX_FIELDS new strings, so an
        // event may bring any number of them.
        let need = (fresh.len() as u64).div_ceil(MAX_FIELDS);
        if self.new_strings.len() as u64 + need > MAX_EVENTS {
            return Err(err(format!(
                "the event brings {} new strings, which need {need} of the {MAX_EVENTS} event indexes composite ids can address, and {} are in use: compact the snapshot with the events so far (`colsnap compact`) and apply the rest to the new snapshot",
                fresh.len(),
                self.new_strings.len()
            )));
        }
        Ok(fresh)
    }

    fn commit_strings(&mut self, fresh: Vec<Box<str>>, seq: u64) {
        for chunk in fresh.chunks(MAX_FIELDS as usize) {
            let ev = self.new_strings.len() as u32;
            self.block_start.push(self.flat.len() as u32);
            for (f, s) in chunk.iter().enumerate() {
                self.introduced.insert(s.clone(), (ev, f as u32));
                self.flat.push((ev, f as u32));
            }
            self.new_strings.push(chunk.to_vec());
            self.new_string_seqs.push(seq);
        }
    }

    /// Apply every event of an NDJSON event log (blank lines are skipped).
    /// Stops at the first bad event: the events before it stay applied, the
    /// view is as after them, and the error names the line and seq.
    pub fn apply_reader(&mut self, r: impl BufRead) -> Result<u64> {
        let mut n = 0;
        for (i, line) in r.lines().enumerate() {
            let lno = i as u64 + 1;
            let line = line.map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => {
                    event_error(lno, None, "the line is not valid UTF-8")
                }
                _ => Error::io(None, e),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let ev = Event::parse(lno, &line)?;
            self.apply(&ev, lno)?;
            self.note_event_text(&line, lno);
            n += 1;
        }
        Ok(n)
    }

    /// The text of a string cell of a column with `table`, passed to `f`.
    pub fn with_text<T>(
        &self,
        table: Option<&StringTable>,
        k: StrKey,
        f: impl FnOnce(&str) -> T,
    ) -> Result<T> {
        match k {
            StrKey::New(c) => Ok(f(self.new_string(c))),
            StrKey::Table(id) => match table {
                Some(t) => t.with(id, f),
                None => Err(Error::NotFound {
                    what: "string table",
                    name: "0".into(),
                }),
            },
        }
    }

    /// Whether `slot` holds the snapshot's own row (not overridden).
    pub fn is_snapshot_row(&self, slot: u32) -> bool {
        slot < self.n_snap && !self.rows.contains_key(&slot) && !self.patches.contains_key(&slot)
    }
}

/// An overridden or created row.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Held<'a> {
    /// Held as JSON.
    Row(&'a Value),
    /// The snapshot's row with these top-level sets and removes replayed.
    Patch(&'a [(Arc<str>, Option<Value>)]),
}

/// Marks an integer kept as text (SPEC.md 1.3) while a patched row is a
/// JSON value: U+FDD0, a noncharacter ("for internal use"), then a tag.
const NUM_MARK: &str = "\u{fdd0}colsnap-num:";

/// The snapshot row `row` (its exported JSON) with `ops` replayed, written
/// to `out` as JSON. Its integers outside `[-2^63, 2^64)` (which a JSON
/// value would hold as binary64) pass through the value as marked strings
/// and come back as written; should the row or an operation already hold
/// the mark (never in practice), they are left to the value.
fn replay_text(
    row: &[u8],
    ops: &[(Arc<str>, Option<Value>)],
    slot: u32,
    out: &mut Vec<u8>,
) -> Result<()> {
    let corrupt = |e: serde_json::Error| Error::corrupt("row", slot as u64, e.to_string());
    let mark = NUM_MARK.as_bytes();
    let holds_mark = |b: &[u8]| b.windows(mark.len()).any(|w| w == mark);
    let marked_text = crate::encoding::numtext::mark_texts(row, NUM_MARK).filter(|_| {
        !holds_mark(row)
            && !ops.iter().any(|(k, v)| {
                holds_mark(k.as_bytes())
                    || v.as_ref()
                        .is_some_and(|v| holds_mark(v.to_string().as_bytes()))
            })
    });
    let marked = marked_text.is_some();
    let text: std::borrow::Cow<[u8]> = match marked_text {
        Some(t) => t.into(),
        None => row.into(),
    };
    let mut v: Value = serde_json::from_slice(&text).map_err(corrupt)?;
    if let Some(o) = v.as_object_mut() {
        replay(o, ops);
    }
    if !marked {
        return serde_json::to_writer(&mut *out, &v).map_err(|e| Error::Invalid(e.to_string()));
    }
    let mut t = Vec::with_capacity(text.len());
    serde_json::to_writer(&mut t, &v).map_err(|e| Error::Invalid(e.to_string()))?;
    // `"MARKdigits"` back to `digits` (serde_json writes U+FDD0 as itself).
    let mut quoted = Vec::with_capacity(mark.len() + 1);
    quoted.push(b'"');
    quoted.extend_from_slice(mark);
    let mut i = 0;
    while i < t.len() {
        if t[i..].starts_with(&quoted) {
            let start = i + quoted.len();
            let end = t[start..]
                .iter()
                .position(|&b| b == b'"')
                .map_or(t.len(), |n| start + n);
            out.extend_from_slice(&t[start..end]);
            i = end + 1;
        } else {
            out.push(t[i]);
            i += 1;
        }
    }
    Ok(())
}

/// Replay top-level sets and removes on a row, as an update does.
pub(crate) fn replay(o: &mut Map<String, Value>, ops: &[(Arc<str>, Option<Value>)]) {
    for (k, v) in ops {
        match v {
            Some(v) => {
                o.insert(k.to_string(), v.clone());
            }
            None => {
                o.shift_remove(&**k);
            }
        }
    }
}

/// Open the event log at `events` and apply it to `snap`: what
/// `colsnap query --events` and `colsnap export --events` use. A directory
/// is read as log segments ([`Overlay::catch_up`]).
pub fn load_overlay(
    snap: Snapshot,
    events: impl AsRef<std::path::Path>,
    key_field: &str,
) -> Result<Overlay> {
    let path = events.as_ref();
    let mut o = Overlay::new(snap, key_field)?;
    if path.is_dir() {
        // A directory of log segments (SPEC.md 13.5).
        o.catch_up(path)?;
        return Ok(o);
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(Some(path), e))?;
    o.apply_reader(std::io::BufReader::new(f))?;
    Ok(o)
}

impl Overlay {
    /// Rows of the view whose key is in `keys` (for tests and tools).
    pub fn has_key(&mut self, key: &Value) -> Result<bool> {
        Ok(self.slot_of(key)?.is_some())
    }

    /// The snapshot's rows count.
    pub fn snapshot_rows(&self) -> u32 {
        self.n_snap
    }

    /// Whether `slot` is in the view.
    pub fn contains_slot(&self, slot: u32) -> bool {
        self.order.contains(slot)
    }

    /// The paths updates set or removed in the overridden snapshot row
    /// `slot` (`None` for rows that are not overridden snapshot rows).
    pub(crate) fn touched(&self, slot: u32) -> Option<impl Iterator<Item = &[String]> + '_> {
        self.touched_list(slot).map(|l| self.touches.paths(l))
    }

    /// The list of the paths updates of `slot` touched (`None`: no update
    /// touched it). A list names the same paths for the overlay's life.
    pub(crate) fn touched_list(&self, slot: u32) -> Option<u32> {
        self.touched.get(&slot).copied()
    }

    /// The paths of a list from [`Self::touched_list`].
    pub(crate) fn touch_list(&self, list: u32) -> impl Iterator<Item = &[String]> + '_ {
        self.touches.paths(list)
    }

    /// For every list of touched paths, whether one of its paths
    /// satisfies `hit` (indexed by [`Self::touched_list`]).
    pub(crate) fn touch_hits(&self, hit: impl Fn(&[String]) -> bool) -> Vec<bool> {
        self.touches.hits(hit)
    }

    /// The view row of live `slot` (O(rows / block + block)).
    pub(crate) fn position(&self, slot: u32) -> Option<u32> {
        self.order.position(slot).map(|p| p as u32)
    }

    /// The slot at view row `row` (O(rows / block)).
    pub(crate) fn slot_at(&self, row: u32) -> Option<u32> {
        self.order.at(row as usize)
    }

    /// The view's slots, block by block, in view order.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.order.blocks()
    }

    /// [`Self::blocks`], each with how many slots past the snapshot's
    /// (created rows) it holds.
    pub(crate) fn blocks_with_created(&self) -> impl Iterator<Item = (&[u32], u32)> + '_ {
        self.order.blocks_holding_from(self.snapshot_rows())
    }

    /// The snapshot slots deleted, in slot order (O(deleted) when some
    /// were deleted since the list was last merged).
    pub(crate) fn deleted_snapshot_slots(&self) -> std::borrow::Cow<'_, [u32]> {
        if self.gone_recent.is_empty() {
            return std::borrow::Cow::Borrowed(&self.gone);
        }
        let mut recent = self.gone_recent.clone();
        recent.sort_unstable();
        let mut all = Vec::with_capacity(self.gone.len() + recent.len());
        let (mut i, mut j) = (0, 0);
        while i < self.gone.len() && j < recent.len() {
            if self.gone[i] < recent[j] {
                all.push(self.gone[i]);
                i += 1;
            } else {
                all.push(recent[j]);
                j += 1;
            }
        }
        all.extend_from_slice(&self.gone[i..]);
        all.extend_from_slice(&recent[j..]);
        std::borrow::Cow::Owned(all)
    }

    /// Number of slots ever allocated (snapshot rows, then created rows).
    pub(crate) fn slot_count(&self) -> usize {
        self.order.slots()
    }

    /// The text of new string `g` (in the order brought).
    pub(crate) fn new_text(&self, g: usize) -> &str {
        let (e, f) = self.flat[g];
        &self.new_strings[e as usize][f as usize]
    }

    /// The index (in the order brought) of a string an event brought.
    pub(crate) fn new_index(&self, s: &str) -> Option<usize> {
        self.introduced
            .get(s)
            .map(|&(e, f)| self.block_start[e as usize] as usize + f as usize)
    }

    /// Where every string the events brought falls in string table `tidx`
    /// (`Ok(id)` when the table holds it, else `Err(insertion point)`),
    /// in the order brought. Computed once per table and string.
    pub(crate) fn placed(
        &self,
        tidx: u32,
        table: &StringTable,
    ) -> Result<Vec<std::result::Result<u32, u32>>> {
        let mut m = self
            .placed
            .lock()
            .map_err(|_| Error::Invalid("a lock was poisoned by an earlier panic".into()))?;
        let v = m.entry(tidx).or_default();
        if v.len() < self.flat.len() {
            let finder = table.finder()?;
            while v.len() < self.flat.len() {
                v.push(finder.find(self.new_text(v.len()))?);
            }
        }
        Ok(v.clone())
    }

    /// Every overridden or created slot (live or not), in no order.
    pub(crate) fn held_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.rows.keys().chain(self.patches.keys()).copied()
    }

    /// The top-level changes of snapshot row `slot` when it is held as a
    /// patch (one lookup: the changes' keys are the paths its updates
    /// touched).
    pub(crate) fn patch(&self, slot: u32) -> Option<&[(Arc<str>, Option<Value>)]> {
        self.patches.get(&slot).map(Vec::as_slice)
    }

    /// The shared key of patches' changes of top-level key `k` (`None`:
    /// no patch changes it): compare a change's key to it with
    /// [`Arc::ptr_eq`].
    pub(crate) fn patch_key(&self, k: &str) -> Option<&Arc<str>> {
        self.patch_keys.get(k)
    }

    /// The overridden or created row in `slot`, if it is one: held as
    /// JSON, or as top-level changes of the snapshot's row.
    pub(crate) fn held(&self, slot: u32) -> Option<Held<'_>> {
        // A slot is in one of the two maps at most; only snapshot rows
        // have patches (the usual update: one lookup).
        if slot < self.n_snap
            && let Some(p) = self.patches.get(&slot)
        {
            return Some(Held::Patch(p));
        }
        self.rows.get(&slot).map(Held::Row)
    }

    /// The JSON of the overridden or created row in `slot`, if it is held
    /// as JSON (a snapshot row changed only at the top level is held as its
    /// changes: see [`Overlay::row_value`]).
    pub fn overridden_row(&self, slot: u32) -> Option<&Map<String, Value>> {
        self.rows.get(&slot).and_then(|v| v.as_object())
    }
}

/// Whether [`apply_update`] of `set` and `remove` on `row` cannot fail,
/// so that it may run on the row itself: no path touches the key, no `set`
/// path is a proper prefix of another (where one `set` could put a value
/// that is not an object along another's path), and along each `set`
/// path the row holds objects or nothing (where the `set` makes objects).
/// `remove` fails only on the key.
fn update_cannot_fail(
    row: &Map<String, Value>,
    set: &[(Vec<String>, Value)],
    remove: &[Vec<String>],
    key_path: &[String],
) -> bool {
    if set
        .iter()
        .map(|(p, _)| p)
        .chain(remove)
        .any(|p| touches_key(p, key_path))
    {
        return false;
    }
    // Sorted, a path's extensions follow it directly.
    let mut paths: Vec<&Vec<String>> = set.iter().map(|(p, _)| p).collect();
    paths.sort_unstable();
    if paths
        .windows(2)
        .any(|w| w[1].len() > w[0].len() && w[1][..w[0].len()] == w[0][..])
    {
        return false;
    }
    set.iter().all(|(p, _)| {
        let mut obj = row;
        for k in &p[..p.len().saturating_sub(1)] {
            match obj.get(k) {
                None => return true,
                Some(Value::Object(o)) => obj = o,
                Some(_) => return false,
            }
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key index is charged to the budget, before the map is made and
    /// as the keys' texts are made; the error says what the whole index
    /// would take.
    #[test]
    fn the_key_index_is_charged_to_the_budget() {
        let rows: String = (0..10_000)
            .map(|i| format!("{{\"id\":\"key-{i:026}\"}}\n"))
            .collect();
        let bytes = crate::write::build_to_vec(rows.as_bytes(), &Default::default()).unwrap();
        let snap = Snapshot::from_bytes(bytes).unwrap();
        // 56 bytes a row fixed, 16 + 32 a key's text (`"key-..."`, quoted).
        let whole = 10_000 * (56 + 48);
        // Refused before the map is made (at least 32 bytes a text), then
        // refused a quarter of the way through.
        for (budget, least) in [(500_000, 10_000 * (56 + 32)), (700_000, whole)] {
            let mut o = Overlay::new(snap.clone(), "id").unwrap();
            match o.ensure_keys_within(budget) {
                Err(Error::Budget {
                    need, budget: b, ..
                }) => {
                    assert_eq!(b, budget);
                    assert_eq!(need, least);
                }
                other => panic!("{other:?}"),
            }
            assert!(o.keys.is_none());
        }
        let mut o = Overlay::new(snap, "id").unwrap();
        o.ensure_keys_within(whole).unwrap();
        assert_eq!(o.key_slot("\"key-00000000000000000000009999\""), Some(9999));
        assert!(matches!(o.keys.as_deref(), Some(KeyIndex::Text(_))));
    }

    /// An update of a row held as JSON changes it in place, as an update
    /// of a whole copy would: the same fields in the same order (new
    /// ones last, in the order made; removed ones gone, the rest in
    /// place), and a refused update changes nothing.
    #[test]
    fn updates_of_a_held_row_change_it_as_a_whole_copy_would() {
        let rows = br#"[{"id":1,"t":"a"}]"#;
        let bytes = crate::write::build_to_vec(&rows[..], &Default::default()).unwrap();
        let snap = Snapshot::from_bytes(bytes).unwrap();
        let mut o = Overlay::new(snap, "id").unwrap();
        let create = r#"{"seq":1,"op":"create","key":9,"row":{"id":9,"a":1,"b":{"c":1},"d":2,"big":[1,2,3]}}"#;
        o.apply(&Event::parse(1, create).unwrap(), 1).unwrap();
        let mut want = serde_json::from_str::<Value>(create).unwrap()["row"].clone();
        let updates = [
            r#"{"set":{"b.e":3,"n1":1,"a":5},"remove":["d"]}"#,
            r#"{"set":{"n2":{"x":1},"n1":null},"remove":["b.c","zz","n2.x"]}"#,
            r#"{"remove":["a","b"]}"#,
            r#"{"set":{"a":[1],"b.q.r":2,"d":0}}"#,
            // Refused: `a` is an array; nothing changes.
            r#"{"set":{"z":1,"a.b":1}}"#,
            r#"{"set":{"id":10}}"#,
            // In place: nested paths into objects the row holds.
            r#"{"set":{"b.q.s":3,"b.w":[2]},"remove":["b.q.r"]}"#,
            // One path under another: on a copy.
            r#"{"set":{"p":{"x":1},"p.y":2}}"#,
            r#"{"set":{"b.q.t":1,"b.q":5}}"#,
            // Refused after a first `set` that would have been made.
            r#"{"set":{"m":1,"m.k":2}}"#,
            r#"{"set":{"n9":1,"b.q.u":1}}"#,
            r#"{"set":{"b.k":1},"remove":["id"]}"#,
        ];
        let mut in_place = 0;
        for (i, u) in updates.iter().enumerate() {
            let seq = o.last_seq().unwrap() + 1;
            let line = format!(r#"{{"seq":{seq},"op":"update","key":9,{}"#, &u[1..]);
            let ev = Event::parse(1, &line).unwrap();
            let EventOp::Update { set, remove } = &ev.op else {
                unreachable!()
            };
            let mut copy = want.clone();
            let expect = apply_update(copy.as_object_mut().unwrap(), set, remove, &o.key_path);
            if update_cannot_fail(want.as_object().unwrap(), set, remove, &o.key_path) {
                assert!(expect.is_ok(), "update {i}");
                in_place += 1;
            }
            let got = o.apply(&ev, 1);
            assert_eq!(got.is_ok(), expect.is_ok(), "update {i}");
            if expect.is_ok() {
                want = copy;
            }
            let slot = o.key_slot("9").unwrap();
            let row = o.row_value(slot).unwrap();
            assert_eq!(row.to_string(), want.to_string(), "update {i}");
        }
        assert_eq!(in_place, 5);
        assert_eq!(
            want.to_string(),
            r#"{"id":9,"big":[1,2,3],"n1":null,"n2":{},"a":[1],"b":{"q":5,"w":[2]},"d":0,"p":{"x":1,"y":2}}"#
        );
    }

    /// Integer keys are kept sorted (24 bytes a row with the order, charged
    /// before anything is made): found by their key text only, and a
    /// repeated one named as a walk in row order names it.
    #[test]
    fn integer_keys_are_a_sorted_index() {
        let ids = [5i64, -3, 40, 0, i64::MAX, i64::MIN, 7];
        let rows: String = ids
            .iter()
            .map(|i| format!("{{\"id\":{i}}}\n"))
            .chain(["{\"x\":1}\n".to_string(), "{\"id\":null}\n".to_string()])
            .collect();
        let snap = Snapshot::from_bytes(
            crate::write::build_to_vec(rows.as_bytes(), &Default::default()).unwrap(),
        )
        .unwrap();
        let mut o = Overlay::new(snap.clone(), "id").unwrap();
        assert!(matches!(
            o.ensure_keys_within(9 * 24 - 1),
            Err(Error::Budget { need: 216, .. })
        ));
        o.ensure_keys_within(9 * 24).unwrap();
        assert!(matches!(o.keys.as_deref(), Some(KeyIndex::Ints(_))));
        for (slot, i) in ids.iter().enumerate() {
            assert_eq!(o.key_slot(&i.to_string()), Some(slot as u32));
        }
        for other in [
            "5.0",
            "\"5\"",
            "05",
            "+5",
            "-0",
            "1",
            "",
            "x",
            "99999999999999999999",
        ] {
            assert_eq!(o.key_slot(other), None, "{other}");
        }
        let rows = "{\"id\":3}\n{\"id\":9}\n{\"id\":1}\n{\"id\":9}\n{\"id\":3}\n";
        let snap = Snapshot::from_bytes(
            crate::write::build_to_vec(rows.as_bytes(), &Default::default()).unwrap(),
        )
        .unwrap();
        let mut o = Overlay::new(snap, "id").unwrap();
        match o.ensure_keys() {
            Err(Error::Value {
                row: 3, message, ..
            }) => {
                assert!(
                    message.contains("the key 9 is also the key of row 1"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Deletes in any order (here scrambled, then descending) keep the
    /// deleted snapshot slots in slot order, recent ones merged or not,
    /// and the view is the snapshot's rows without them, creates at the
    /// end; a clone taken between merges holds the same.
    #[test]
    fn deleted_slots_stay_in_order_whatever_order_rows_are_deleted_in() {
        let n = 1000u32;
        let rows: String = (0..n).map(|i| format!("{{\"id\":{i}}}\n")).collect();
        let bytes = crate::write::build_to_vec(rows.as_bytes(), &Default::default()).unwrap();
        let snap = Snapshot::from_bytes(bytes).unwrap();
        let mut o = Overlay::new(snap, "id").unwrap();
        let mut order: Vec<u32> = (0..700).map(|i| i * 617 % n).collect();
        let rest: Vec<u32> = (0..n)
            .rev()
            .filter(|i| !order.contains(i))
            .take(200)
            .collect();
        order.extend(rest);
        let (mut deleted, mut seq) = (std::collections::BTreeSet::new(), 0u64);
        let mut ev = |o: &mut Overlay, line: String| {
            seq += 1;
            let line = line.replace("SEQ", &seq.to_string());
            o.apply(&Event::parse(seq, &line).unwrap(), seq).unwrap();
        };
        for (k, &i) in order.iter().enumerate() {
            ev(&mut o, format!(r#"{{"seq":SEQ,"op":"delete","key":{i}}}"#));
            deleted.insert(i);
            if k % 97 == 0 {
                ev(
                    &mut o,
                    format!(
                        r#"{{"seq":SEQ,"op":"create","key":{},"row":{{"id":{}}}}}"#,
                        n + k as u32,
                        n + k as u32
                    ),
                );
            }
            if k % 61 == 0 || k + 1 == order.len() {
                let want: Vec<u32> = deleted.iter().copied().collect();
                assert_eq!(&o.deleted_snapshot_slots()[..], &want[..], "after {k}");
                assert_eq!(&o.clone().deleted_snapshot_slots()[..], &want[..]);
                let view = o.order.to_vec();
                let kept: Vec<u32> = view.iter().copied().filter(|&s| s < n).collect();
                let want_kept: Vec<u32> = (0..n).filter(|i| !deleted.contains(i)).collect();
                assert_eq!(kept, want_kept);
                assert!(view[kept.len()..].iter().all(|&s| s >= n));
            }
        }
        assert!(o.gone_recent.len() <= 64.max(o.gone.len() / 4));
        assert_eq!(
            o.len(),
            (n as usize - order.len()) + order.len().div_ceil(97)
        );
    }

    #[test]
    fn a_clone_takes_later_events_alone() {
        let rows = br#"[{"id":1,"t":"a"},{"id":2,"t":"b"},{"id":3,"t":"c"}]"#;
        let bytes = crate::write::build_to_vec(&rows[..], &Default::default()).unwrap();
        let snap = Snapshot::from_bytes(bytes).unwrap();
        let ev = |line: &str| Event::parse(1, line).unwrap();
        let mut a = Overlay::new(snap.clone(), "id").unwrap();
        a.apply(
            &ev(r#"{"seq":1,"op":"update","key":2,"set":{"t":"new"}}"#),
            1,
        )
        .unwrap();
        let mut b = a.clone();
        b.apply(&ev(r#"{"seq":2,"op":"delete","key":1}"#), 2)
            .unwrap();
        b.apply(
            &ev(r#"{"seq":3,"op":"create","key":9,"row":{"id":9,"t":"zz"}}"#),
            3,
        )
        .unwrap();
        assert_eq!(a.applied(), 1);
        assert_eq!(a.len(), 3, "the original is untouched");
        // The clone equals a fresh overlay given every event.
        let mut fresh = Overlay::new(snap, "id").unwrap();
        for (i, l) in [
            r#"{"seq":1,"op":"update","key":2,"set":{"t":"new"}}"#,
            r#"{"seq":2,"op":"delete","key":1}"#,
            r#"{"seq":3,"op":"create","key":9,"row":{"id":9,"t":"zz"}}"#,
        ]
        .into_iter()
        .enumerate()
        {
            fresh.apply(&ev(l), i as u64 + 1).unwrap();
        }
        assert_eq!(b.to_values().unwrap(), fresh.to_values().unwrap());
        assert_eq!((b.applied(), b.last_seq()), (3, Some(3)));
        assert_eq!(a.to_values().unwrap()[1]["t"], "new");
    }
}
