//! The column builder: a [`serde::de::DeserializeSeed`] that writes every
//! JSON value into the node for its path, creating nodes on first sight.

use crate::error::{Error, Result};
use crate::model::{Kind, NodeName};
use crate::schema::colspill::{Buffers, ColumnSpill, Counts, Fields, Segment};
use crate::schema::distinct::DistinctSketch;
use crate::schema::idx::Idx;
use crate::schema::interner::{IdMaps, Interner, SpillPolicy, SpillStats, Strings};
use crate::timestamp::{self, Timestamp};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Limits enforced while building (SPEC.md, "Limits").
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Maximum number of rows.
    pub max_rows: u64,
    /// Maximum number of nodes (columns of every kind, the root included);
    /// at most [`crate::format::footer::MAX_NODES`] (2^20).
    pub max_columns: usize,
    /// Maximum length of one string in bytes.
    pub max_string_len: usize,
    /// Maximum number of distinct strings.
    pub max_strings: usize,
    /// Maximum number of items in one node (rows or array elements).
    pub max_items: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: u32::MAX as u64,
            max_columns: 65_535,
            max_string_len: 64 << 20,
            max_strings: (u32::MAX - 1) as usize,
            max_items: u32::MAX as u64,
        }
    }
}

/// One node while building. Items are stored sparsely: `idx[i]` is the item
/// index of the i-th present (non-absent) item and `kinds[i]` its kind.
#[derive(Debug, Default)]
pub struct NodeBuf {
    /// Parent node (0 for top-level fields; the root's parent is itself).
    pub parent: u32,
    /// How the node hangs off its parent.
    pub name: Option<NodeName>,
    /// `Key` children in first-seen order.
    pub children: Vec<u32>,
    child_index: std::collections::HashMap<Box<str>, u32, foldhash::quality::RandomState>,
    /// The `Elem` child, once an array was seen.
    pub elem: Option<u32>,
    /// Item index of every present item, increasing.
    pub idx: Idx,
    /// Kind of every present item.
    pub kinds: Vec<u8>,
    /// Payload of `Int` items.
    pub ints: Vec<i64>,
    /// Payload of `UInt` items.
    pub uints: Vec<u64>,
    /// Payload of `Float` items.
    pub floats: Vec<f64>,
    /// Payload of `Str` items: provisional ids while building, table ids after `finish`.
    pub strs: Vec<u32>,
    /// Bytes of the text of every `Str` item (repeats counted).
    pub str_bytes: u64,
    /// Under an array (an element, or a field of one, at any depth): more
    /// than one item a row, none of them a grid cell of its own.
    pub in_array: bool,
    /// Distinct `Str` texts, estimated, for a node `in_array` with strings
    /// (the writer's nested-text rule: SPEC.md 7.5).
    pub str_sketch: Option<DistinctSketch>,
    /// Payload of `Time` items.
    pub times: Vec<Timestamp>,
    /// Element count of `Array` items.
    pub lens: Vec<u32>,
    /// Payload of `NumText` items: integer literals outside `[-2^63,
    /// 2^64)`, as written (never spilled: [`NUM_TEXT_BYTES`] at most).
    pub num_texts: Vec<Box<str>>,
    /// Items in the node's domain (set by `finish`).
    pub domain_len: u64,
    /// Sum of `lens`, spilled ones included.
    pub lens_sum: u64,
    /// The node's spilled buffers, in order: its column is these
    /// segments followed by the buffers above ([`ColumnsBuilder::load`]).
    pub segments: Vec<Segment>,
    /// What the segments hold.
    pub spilled: Counts,
}

impl NodeBuf {
    /// `Str` items, spilled ones included.
    pub fn n_strs(&self) -> u64 {
        self.spilled.strs + self.strs.len() as u64
    }

    /// `Int` items, spilled ones included.
    pub fn n_ints(&self) -> u64 {
        self.spilled.ints + self.ints.len() as u64
    }

    /// `Time` items, spilled ones included.
    pub fn n_times(&self) -> u64 {
        self.spilled.times + self.times.len() as u64
    }

    /// Present items, spilled ones included.
    pub fn n_items(&self) -> u64 {
        self.spilled.items + self.idx.len() as u64
    }

    /// Move the buffers out (leaving them empty).
    fn take_buffers(&mut self) -> Buffers {
        Buffers {
            idx: std::mem::take(&mut self.idx),
            kinds: std::mem::take(&mut self.kinds),
            ints: std::mem::take(&mut self.ints),
            uints: std::mem::take(&mut self.uints),
            floats: std::mem::take(&mut self.floats),
            strs: std::mem::take(&mut self.strs),
            times: std::mem::take(&mut self.times),
            lens: std::mem::take(&mut self.lens),
        }
    }

    fn set_buffers(&mut self, b: Buffers) {
        self.idx = b.idx;
        self.kinds = b.kinds;
        self.ints = b.ints;
        self.uints = b.uints;
        self.floats = b.floats;
        self.strs = b.strs;
        self.times = b.times;
        self.lens = b.lens;
    }
}

/// A node with its whole column: borrowed from the builder when nothing
/// of it was spilled, else read back ([`ColumnsBuilder::load`]).
#[derive(Debug)]
pub enum NodeRef<'a> {
    /// Held in memory.
    Mem(&'a NodeBuf),
    /// Read back from the spill files.
    Loaded(Box<NodeBuf>),
}

impl std::ops::Deref for NodeRef<'_> {
    type Target = NodeBuf;
    fn deref(&self) -> &NodeBuf {
        match self {
            NodeRef::Mem(n) => n,
            NodeRef::Loaded(n) => n,
        }
    }
}

/// The integers of a node at every item of its domain ([`ColumnsBuilder::dense_ints`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseInts {
    values: Vec<i64>,
    /// Bit `j % 64` of word `j / 64`: item `j` is an integer.
    present: Vec<u64>,
}

impl DenseInts {
    /// The items, integers or not.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the domain is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The integer at item `j`, if it is one (`None` past the end too).
    pub fn get(&self, j: usize) -> Option<i64> {
        let bit = self.present.get(j / 64)? >> (j % 64) & 1;
        (bit == 1).then(|| self.values[j])
    }
}

/// The whole column store being built.
#[derive(Debug)]
pub struct ColumnsBuilder {
    /// Every node; node 0 is the row.
    pub nodes: Vec<NodeBuf>,
    interner: Interner,
    /// Rows seen.
    pub rows: u64,
    limits: Limits,
    /// Strings by provisional id (or their spilled runs), filled by `finish`.
    pub strings: Strings,
    /// An error of a spill while rows were read (reported to serde as a
    /// message; the caller takes the real one with [`Self::take_failure`]).
    failure: Option<Error>,
    /// Bytes held by the column buffers, as last counted.
    column_bytes: usize,
    /// Column buffers past this many bytes are spilled (`usize::MAX`: never).
    column_cap: usize,
    /// Where the spilled column buffers are (once spilled).
    column_spill: Option<ColumnSpill>,
    /// Directory for spills.
    spill_base: Option<std::path::PathBuf>,
    /// Spilled segments of timestamps turned into strings at the end
    /// (their ids are of two runs).
    converted_spilled: bool,
    /// Numbers of the row being read that were read as an integral binary64
    /// of magnitude 2^63 or more: perhaps integer literals outside
    /// `[-2^63, 2^64)`, which the row's text then tells
    /// ([`Self::keep_num_texts`]).
    row_big: Vec<BigFloat>,
    /// Numbers read so far in the row (their order is their text's).
    row_numbers: usize,
    /// Offsets in the row's text of the integer literals outside
    /// `[-2^63, 2^64)` that the row holds as binary64 (not kept as text).
    pub(crate) row_inexact: Vec<usize>,
    /// Keep integer literals outside `[-2^63, 2^64)` as their text (kind
    /// `NumText`, format version 5), up to [`NUM_TEXT_BYTES`] bytes of them.
    pub keep_num_texts: bool,
    /// Bytes of the texts kept so far.
    num_text_bytes: usize,
    /// Integer literals outside `[-2^63, 2^64)` read as their nearest
    /// binary64 (SPEC.md 1.3), and where the first one is (line, column).
    pub inexact_integers: InexactIntegers,
}

/// Integer literals outside `[-2^63, 2^64)` kept as text, in bytes, at
/// most (they are held in memory until written; the rest are held as their
/// nearest binary64, with the warning).
pub const NUM_TEXT_BYTES: usize = 16 << 20;

/// A float of a row that may be an integer literal outside the integer
/// range: where its item and value are.
#[derive(Clone, Copy, Debug)]
struct BigFloat {
    node: u32,
    /// Index of its item in the node's `kinds`.
    kind_at: usize,
    /// Index of its value in the node's `floats`.
    float_at: usize,
    /// How many numbers of the row come before it.
    number: usize,
}

/// Integer literals of the input outside `[-2^63, 2^64)`, which a snapshot
/// holds as their nearest binary64 (SPEC.md 1.3): export writes them as
/// floats (`1.2345678901234568e+29`), so they do not come back exactly.
/// Counted in the rows the framed reader reads (every row but those the
/// streaming reader takes over after an odd byte: a row past 64 MiB, or
/// nested past 100 levels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InexactIntegers {
    /// How many.
    pub count: u64,
    /// The first one's line and column (1-based).
    pub first: Option<(usize, usize)>,
}

/// Rows between two counts of the column buffers' bytes (every row under
/// a budget of less than [`SMALL_BUDGET`] bytes).
const COUNT_EVERY: u64 = 1024;

/// See [`COUNT_EVERY`].
const SMALL_BUDGET: usize = 64 << 20;

/// The column buffers get `1 / COLUMN_SHARE` of the budget; past it they
/// are spilled.
pub const COLUMN_SHARE: usize = 2;

impl ColumnsBuilder {
    /// A builder with no rows.
    pub fn new(limits: Limits) -> Self {
        // The format stores item indexes, string ids and node ids as u32,
        // and a snapshot has at most `MAX_NODES` nodes: larger limits are
        // clamped to what the format can hold.
        let limits = Limits {
            max_rows: limits.max_rows.min(u32::MAX as u64),
            max_columns: limits.max_columns.min(crate::format::footer::MAX_NODES),
            max_string_len: limits.max_string_len.min(u32::MAX as usize),
            max_strings: limits.max_strings.min((u32::MAX - 1) as usize),
            max_items: limits.max_items.min(u32::MAX as u64),
        };
        let root = NodeBuf {
            name: Some(NodeName::Root),
            ..Default::default()
        };
        ColumnsBuilder {
            nodes: vec![root],
            interner: Interner::default(),
            rows: 0,
            limits,
            strings: Strings::default(),
            failure: None,
            column_bytes: 0,
            column_cap: usize::MAX,
            column_spill: None,
            spill_base: None,
            converted_spilled: false,
            row_big: Vec::new(),
            row_numbers: 0,
            row_inexact: Vec::new(),
            keep_num_texts: false,
            num_text_bytes: 0,
            inexact_integers: InexactIntegers::default(),
        }
    }

    /// A builder that stays within `policy.budget` bytes: its column
    /// buffers are spilled to a temporary directory in `policy.dir` once
    /// they exceed half of it ([`COLUMN_SHARE`]), and its string interner
    /// spills sorted runs once the strings exceed what the columns leave.
    /// The snapshot written is the same as without spilling.
    pub fn with_spill(limits: Limits, policy: SpillPolicy) -> Self {
        let mut b = ColumnsBuilder::new(limits);
        b.column_cap = policy.budget / COLUMN_SHARE;
        b.spill_base = Some(policy.dir.clone());
        b.interner = Interner::new(Some(policy));
        b
    }

    /// What was spilled so far.
    pub fn spill_stats(&self) -> SpillStats {
        let mut s = self.interner.stats();
        if let Some(c) = &self.column_spill {
            s.column_runs = c.files() as u64;
            s.bytes += c.bytes;
        }
        s
    }

    /// Whether column buffers were spilled.
    pub fn columns_spilled(&self) -> bool {
        self.column_spill.is_some()
    }

    /// Write every node's buffers as a segment of a new spill file and
    /// empty them.
    pub fn spill_columns(&mut self) -> Result<()> {
        if self
            .nodes
            .iter()
            .all(|n| n.idx.is_empty() && n.lens.is_empty())
        {
            return Ok(());
        }
        if self.column_spill.is_none() {
            let base = self.spill_base.clone().unwrap_or_else(std::env::temp_dir);
            self.column_spill = Some(ColumnSpill::new(&base)?);
        }
        let spill = self.column_spill.as_mut().expect("created above");
        let mut w = spill.writer(self.interner.runs())?;
        for n in self.nodes.iter_mut() {
            if n.idx.is_empty() && n.lens.is_empty() {
                continue;
            }
            let bufs = n.take_buffers();
            let seg = w.push(&bufs)?;
            n.spilled.add(&seg.n);
            n.segments.push(seg);
        }
        w.finish()?;
        self.column_bytes = self.column_bytes();
        Ok(())
    }

    /// Node `i` with the `fields` of its whole column (the other vectors
    /// empty when it was spilled): borrowed when nothing of it was spilled.
    pub fn load(&self, i: usize, fields: Fields) -> Result<NodeRef<'_>> {
        let n = &self.nodes[i];
        let Some(spill) = self
            .column_spill
            .as_ref()
            .filter(|_| !n.segments.is_empty())
        else {
            return Ok(NodeRef::Mem(n));
        };
        let mut bufs = Buffers::default();
        spill.load(&n.segments, fields, &mut bufs)?;
        if fields.has(Fields::ITEMS) {
            bufs.idx.extend(n.idx.iter());
            bufs.kinds.extend_from_slice(&n.kinds);
        }
        if fields.has(Fields::STRS) {
            bufs.strs.extend_from_slice(&n.strs);
        }
        if fields == Fields::ALL {
            bufs.ints.extend_from_slice(&n.ints);
            bufs.uints.extend_from_slice(&n.uints);
            bufs.floats.extend_from_slice(&n.floats);
            bufs.times.extend_from_slice(&n.times);
            bufs.lens.extend_from_slice(&n.lens);
        }
        let mut out = NodeBuf {
            parent: n.parent,
            name: n.name.clone(),
            children: n.children.clone(),
            child_index: Default::default(),
            elem: n.elem,
            str_bytes: n.str_bytes,
            in_array: n.in_array,
            domain_len: n.domain_len,
            lens_sum: n.lens_sum,
            num_texts: if fields == Fields::ALL {
                n.num_texts.clone()
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        out.set_buffers(bufs);
        Ok(NodeRef::Loaded(Box::new(out)))
    }

    /// The seconds of every item of node `i` that is a timestamp
    /// (`i64::MIN`, never a valid timestamp's, for the other items), its
    /// spilled segments read one at a time.
    pub fn dense_secs(&self, i: usize) -> Result<Vec<i64>> {
        let n = &self.nodes[i];
        self.dense(
            i,
            Kind::Time,
            Fields::ALL,
            i64::MIN,
            |b| &b.times,
            &n.times,
            |t| t.secs,
            None,
            None,
        )
    }

    /// The value of every item of node `i` that is an integer, its spilled
    /// segments read one at a time: 8 bytes and a bit an item (issue 16: an
    /// `Option<i64>` is 16, and a based ints stream reads its bases so).
    pub fn dense_ints(&self, i: usize) -> Result<DenseInts> {
        let n = &self.nodes[i];
        let mut present = Vec::new();
        let values = self.dense(
            i,
            Kind::Int,
            Fields::ALL,
            0,
            |b| &b.ints,
            &n.ints,
            |&v| v,
            None,
            Some(&mut present),
        )?;
        Ok(DenseInts { values, present })
    }

    /// [`ColumnsBuilder::dense_ints`] at the domain positions `at` only
    /// (ascending), in that order; all of them when `None`.
    pub fn ints_at(&self, i: usize, at: Option<&[u32]>) -> Result<Vec<Option<i64>>> {
        let n = &self.nodes[i];
        self.dense(
            i,
            Kind::Int,
            Fields::ALL,
            None,
            |b| &b.ints,
            &n.ints,
            |&v| Some(v),
            at,
            None,
        )
    }

    /// The string id of every item of node `i` (`u32::MAX` for items that
    /// are not strings), its spilled segments read one at a time (issue 16:
    /// not its whole column as well).
    pub fn dense_str_ids(&self, i: usize) -> Result<Vec<u32>> {
        let n = &self.nodes[i];
        self.dense(
            i,
            Kind::Str,
            Fields::ITEMS.with(Fields::STRS),
            u32::MAX,
            |b| &b.strs,
            &n.strs,
            |&id| id,
            None,
            None,
        )
    }

    /// `value` of the payload of every item of node `i` of kind `kind`
    /// (`absent` for the other items), from its spilled segments (`fields`
    /// of each, read one at a time, their payloads `spilled`) and the
    /// payloads it holds (`held`). With `at` (domain positions, ascending),
    /// only the items at those positions, in that order: a sample costs
    /// its own size, not the column's. With `present`, it is made a bitmap
    /// (bit `j % 64` of word `j / 64`) of the positions `j` of those items.
    #[allow(clippy::too_many_arguments)]
    fn dense<V, T: Clone>(
        &self,
        i: usize,
        kind: Kind,
        fields: Fields,
        absent: T,
        spilled: impl Fn(&Buffers) -> &[V],
        held: &[V],
        value: impl Fn(&V) -> T,
        at: Option<&[u32]>,
        mut present: Option<&mut Vec<u64>>,
    ) -> Result<Vec<T>> {
        let n = &self.nodes[i];
        let len = at.map_or(n.domain_len as usize, <[u32]>::len);
        if let Some(p) = present.as_deref_mut() {
            p.clear();
            p.resize(len.div_ceil(64), 0);
        }
        let mut dense = vec![absent.clone(); len];
        let slot = |ix: u32| match at {
            None => Some(ix as usize),
            Some(a) => a.binary_search(&ix).ok(),
        };
        let mut fill = |idx: &Idx, kinds: &[u8], payloads: &[V]| {
            let mut p = payloads.iter();
            for (ix, &k) in idx.iter().zip(kinds) {
                if k == kind as u8 {
                    let v = p.next();
                    let Some(j) = slot(ix).filter(|&j| j < len) else {
                        continue;
                    };
                    dense[j] = v.map_or_else(|| absent.clone(), &value);
                    if let (Some(p), Some(_)) = (present.as_deref_mut(), v) {
                        p[j / 64] |= 1 << (j % 64);
                    }
                }
            }
        };
        if let Some(spill) = &self.column_spill {
            let mut b = Buffers::default();
            for seg in &n.segments {
                b.clear();
                spill.load(std::slice::from_ref(seg), fields, &mut b)?;
                fill(&b.idx, &b.kinds, spilled(&b));
            }
        }
        fill(&n.idx, &n.kinds, held);
        Ok(dense)
    }

    /// Replace the provisional string id of every `Str` item of node `i`
    /// with `map[id]` (in memory and in its spilled segments).
    pub fn remap_strs(&mut self, i: usize, map: &[u32]) -> Result<()> {
        let n = &mut self.nodes[i];
        for id in n.strs.iter_mut() {
            *id = map[*id as usize];
        }
        if let Some(spill) = &self.column_spill {
            spill.remap_strs(&n.segments, map)?;
        }
        Ok(())
    }

    /// The error of a spill that stopped the reading of rows, if any.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    /// The limits this builder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Seed that deserializes one row (which must be an object).
    pub fn row_seed(&mut self) -> RowSeed<'_> {
        RowSeed {
            b: self,
            text: None,
        }
    }

    /// [`Self::row_seed`] for a row whose JSON text is `text`: its integer
    /// literals outside `[-2^63, 2^64)` are kept as text when
    /// [`Self::keep_num_texts`] is set, and their offsets in `text` are
    /// left in `row_inexact` when they are held as binary64.
    pub fn row_seed_text<'a>(&'a mut self, text: &'a [u8]) -> RowSeed<'a> {
        RowSeed {
            b: self,
            text: Some(text),
        }
    }

    /// The row just read (whose text is `text`) holds the floats of
    /// `row_big`: each that was written as an integer literal outside
    /// `[-2^63, 2^64)` becomes a `NumText` item holding that literal, or,
    /// when texts are not kept (or past [`NUM_TEXT_BYTES`]), stays the
    /// nearest binary64 with its offset noted in `row_inexact`.
    fn settle_big_numbers(&mut self, text: &[u8]) {
        let spans = crate::schema::input::number_spans(text);
        let big = std::mem::take(&mut self.row_big);
        // In document order: a node's texts go in item order.
        let mut kept: Vec<BigFloat> = Vec::new();
        for f in &big {
            let Some(&(a, z)) = spans.get(f.number) else {
                continue;
            };
            let lit = &text[a..z];
            if !crate::encoding::numtext::is_num_text(lit) {
                continue;
            }
            if self.keep_num_texts && self.num_text_bytes + lit.len() <= NUM_TEXT_BYTES {
                self.num_text_bytes += lit.len();
                let n = &mut self.nodes[f.node as usize];
                n.kinds[f.kind_at] = Kind::NumText as u8;
                // ASCII digits.
                n.num_texts.push(String::from_utf8_lossy(lit).into());
                kept.push(*f);
            } else {
                self.row_inexact.push(a);
            }
        }
        // Their floats leave, the last first (a node's come in order).
        for f in kept.iter().rev() {
            self.nodes[f.node as usize].floats.remove(f.float_at);
        }
        self.row_big = big;
    }

    fn intern(&mut self, s: &str) -> std::result::Result<u32, String> {
        intern_in(&mut self.interner, &self.limits, s)
    }

    /// Bytes held by the column buffers (their capacity).
    pub fn column_bytes(&self) -> usize {
        use std::mem::size_of;
        self.nodes
            .iter()
            .map(|n| {
                n.idx.bytes()
                    + n.kinds.capacity()
                    + n.ints.capacity() * 8
                    + n.uints.capacity() * 8
                    + n.floats.capacity() * 8
                    + n.strs.capacity() * 4
                    + n.times.capacity() * size_of::<Timestamp>()
                    + n.lens.capacity() * 4
                    + n.str_sketch.as_ref().map_or(0, DistinctSketch::bytes)
                    + size_of::<NodeBuf>()
            })
            .sum()
    }

    /// Spill the interner's strings if they are over their share of the
    /// budget, what the column buffers leave of it (between rows).
    fn maybe_spill(&mut self) -> std::result::Result<(), String> {
        if self.rows.is_multiple_of(COUNT_EVERY) || self.column_cap < SMALL_BUDGET {
            self.column_bytes = self.column_bytes();
        }
        let r = if self.column_bytes > self.column_cap {
            self.spill_columns()
        } else {
            Ok(())
        };
        let r = r.and_then(|()| {
            if self.interner.over_budget(self.column_bytes) {
                // The columns go first: then the string ids of every column
                // segment are those of one run, mapped to final ids a run
                // at a time (`remap_all`).
                self.spill_columns()?;
                self.interner.spill()
            } else {
                Ok(())
            }
        });
        r.map_err(|e| {
            let m = e.to_string();
            self.failure = Some(e);
            m
        })
    }

    /// The most distinct strings (the clamped `max_strings` limit).
    pub fn max_strings(&self) -> usize {
        self.limits.max_strings
    }

    fn child(&mut self, parent: u32, key: &str) -> std::result::Result<u32, String> {
        if let Some(&c) = self.nodes[parent as usize].child_index.get(key) {
            return Ok(c);
        }
        if key.len() > self.limits.max_string_len {
            return Err(format!(
                "a key of {} bytes exceeds the limit of {} bytes (max_string_len)",
                key.len(),
                self.limits.max_string_len
            ));
        }
        let id = self
            .new_node(parent, NodeName::Key(key.to_string()))
            .map_err(|m| {
                let mut p = self.path(parent);
                crate::model::push_key(&mut p, parent == 0, key);
                format!("new column `{p}`: {m}")
            })?;
        let p = &mut self.nodes[parent as usize];
        p.child_index.insert(key.into(), id);
        p.children.push(id);
        Ok(id)
    }

    fn elem(&mut self, parent: u32) -> std::result::Result<u32, String> {
        if let Some(e) = self.nodes[parent as usize].elem {
            return Ok(e);
        }
        let id = self
            .new_node(parent, NodeName::Elem)
            .map_err(|m| format!("new column `{}[]`: {m}", self.path(parent)))?;
        self.nodes[parent as usize].elem = Some(id);
        Ok(id)
    }

    fn new_node(&mut self, parent: u32, name: NodeName) -> std::result::Result<u32, String> {
        if self.nodes.len() >= self.limits.max_columns {
            return Err(format!(
                "more than {} columns (the max_columns limit)",
                self.limits.max_columns
            ));
        }
        let in_array = self.nodes[parent as usize].in_array || name == NodeName::Elem;
        self.nodes.push(NodeBuf {
            parent,
            name: Some(name),
            in_array,
            ..Default::default()
        });
        Ok((self.nodes.len() - 1) as u32)
    }

    /// Record the kind of `item` in `node`; fails on a repeated item (a duplicate key).
    fn start(&mut self, node: u32, item: u32, kind: Kind) -> std::result::Result<(), String> {
        let n = &mut self.nodes[node as usize];
        if n.idx.last().is_some_and(|last| last >= item) {
            return Err(match &n.name {
                Some(NodeName::Key(k)) => {
                    format!("duplicate key `{k}` in one object (duplicate keys are rejected)")
                }
                _ => "duplicate value".to_string(),
            });
        }
        n.idx.push(item);
        n.kinds.push(kind as u8);
        Ok(())
    }

    /// Finish: fill domain lengths and move the interned strings out, indexed
    /// by provisional id. Also turns the timestamps of a node that holds
    /// other strings back into strings, so that a column is `timestamp` only
    /// when every one of its strings is a timestamp.
    pub fn finish(&mut self) -> Result<()> {
        // Once columns were spilled, all of them are: the memory is left
        // to the string tables and to the writer, which loads one node at
        // a time.
        if self.column_spill.is_some() {
            self.spill_columns()?;
        }
        // Domain lengths top-down (parents always precede children).
        self.nodes[0].domain_len = self.rows;
        for i in 1..self.nodes.len() {
            let p = self.nodes[i].parent as usize;
            let len = match self.nodes[i].name {
                Some(NodeName::Elem) => self.nodes[p].lens_sum,
                _ => self.nodes[p].domain_len,
            };
            if len > self.limits.max_items {
                return Err(Error::Limit {
                    what: "items in one column",
                    got: len,
                    max: self.limits.max_items,
                });
            }
            self.nodes[i].domain_len = len;
        }
        // Timestamps mixed with plain strings become strings: in memory, or
        // a spilled segment at a time (each written again as one segment).
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.n_times() == 0 || n.n_strs() == 0 {
                continue;
            }
            let segments = std::mem::take(&mut self.nodes[i].segments);
            let mut added = 0u64;
            let mut spilled = Counts::default();
            let mut out_segs = Vec::with_capacity(segments.len());
            if let (Some(spill), false) = (self.column_spill.as_mut(), segments.is_empty()) {
                let mut w = spill.writer(0)?;
                for seg in &segments {
                    let mut b = Buffers::default();
                    w.spill()
                        .load(std::slice::from_ref(seg), Fields::ALL, &mut b)?;
                    added += times_to_strs(&mut self.interner, &self.limits, &mut b)?;
                    let mut s = w.push(&b)?;
                    s.epoch = seg.epoch;
                    spilled.add(&s.n);
                    out_segs.push(s);
                }
                w.finish()?;
            }
            let mut tail = self.nodes[i].take_buffers();
            added += times_to_strs(&mut self.interner, &self.limits, &mut tail)?;
            let n = &mut self.nodes[i];
            n.set_buffers(tail);
            n.str_bytes += added;
            if !segments.is_empty() {
                n.segments = out_segs;
                n.spilled = spilled;
                self.converted_spilled = true;
            }
        }
        self.strings = self.interner.finish()?;
        Ok(())
    }

    /// Call `f` with the (provisional or final) string ids of node `i`, in
    /// order, a piece at a time (a spilled node is not read back whole).
    pub fn visit_strs(&self, i: usize, mut f: impl FnMut(&[u32])) -> Result<()> {
        let n = &self.nodes[i];
        if let Some(spill) = &self.column_spill {
            for s in &n.segments {
                spill.visit_strs(s, &mut f)?;
            }
        }
        f(&n.strs);
        Ok(())
    }

    /// Replace the provisional string ids of every node with their final
    /// ids in its table (`table_of[i]` for node `i`). With spilled strings
    /// the maps are read a window of runs at a time and each column segment
    /// remapped with the window of its run (the ids of a segment are those
    /// of one run, and the last run's for timestamps turned into strings).
    pub fn remap_all(&mut self, table_of: &[u32], maps: &IdMaps) -> Result<()> {
        let windows = match maps {
            IdMaps::Dense(maps) => {
                for (i, &t) in table_of.iter().enumerate() {
                    if self.nodes[i].n_strs() > 0 {
                        self.remap_strs(i, &maps[t as usize])?;
                    }
                }
                return Ok(());
            }
            IdMaps::Windows(w) => w,
        };
        let lost = |id: u32| Error::Invalid(format!("string id {id} has no final id"));
        // The last run's window, for converted timestamps.
        let last = match windows.last() {
            Some(w) if self.converted_spilled && windows.len() > 1 => Some((w.lo, w.load()?)),
            _ => None,
        };
        for (k, win) in windows.iter().enumerate() {
            let map = if k + 1 == windows.len() && last.is_some() {
                None
            } else {
                Some(win.load()?)
            };
            let map = map
                .as_ref()
                .or(last.as_ref().map(|l| &l.1))
                .expect("loaded above");
            for (i, &t) in table_of.iter().enumerate() {
                let n = &self.nodes[i];
                if n.n_strs() == 0 {
                    continue;
                }
                if !n.strs.is_empty() {
                    return Err(Error::Invalid(
                        "strings spilled while column buffers are held".into(),
                    ));
                }
                let spill = self
                    .column_spill
                    .as_ref()
                    .expect("columns spill with strings");
                let (m, lm) = (
                    &map[t as usize],
                    last.as_ref().map(|l| (l.0, &l.1[t as usize])),
                );
                for s in n
                    .segments
                    .iter()
                    .filter(|s| win.runs.contains(&(s.epoch as usize)))
                {
                    spill.remap_with(s, |id| {
                        let id64 = id as u64;
                        let f = if (win.lo..win.hi).contains(&id64) {
                            m[(id64 - win.lo) as usize]
                        } else if let Some((lo, lm)) = lm.filter(|(lo, _)| id64 >= *lo) {
                            lm.get((id64 - lo) as usize).copied().unwrap_or(u32::MAX)
                        } else {
                            u32::MAX
                        };
                        if f == u32::MAX { Err(lost(id)) } else { Ok(f) }
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Display path of a node (`user.login`, `labels[].name`).
    pub fn path(&self, node: u32) -> String {
        let mut chain = Vec::new();
        let mut n = node;
        while n != 0 {
            chain.push(n);
            n = self.nodes[n as usize].parent;
        }
        let mut out = String::new();
        for &c in chain.iter().rev() {
            match &self.nodes[c as usize].name {
                Some(NodeName::Key(k)) => {
                    crate::model::push_key(&mut out, self.nodes[c as usize].parent == 0, k)
                }
                Some(NodeName::Elem) => out.push_str("[]"),
                _ => {}
            }
        }
        out
    }
}

/// Turn the timestamps of `b` into strings (interned); returns the bytes
/// of text added.
fn times_to_strs(interner: &mut Interner, limits: &Limits, b: &mut Buffers) -> Result<u64> {
    let (mut si, mut ti) = (0usize, 0usize);
    let mut strs = Vec::with_capacity(b.strs.len() + b.times.len());
    let mut text = String::new();
    let mut added = 0u64;
    for k in b.kinds.iter_mut() {
        if *k == Kind::Str as u8 {
            strs.push(b.strs[si]);
            si += 1;
        } else if *k == Kind::Time as u8 {
            text.clear();
            timestamp::format(&b.times[ti], &mut text);
            ti += 1;
            let id = intern_in(interner, limits, &text).map_err(Error::Invalid)?;
            added += text.len() as u64;
            strs.push(id);
            *k = Kind::Str as u8;
        }
    }
    b.strs = strs;
    b.times.clear();
    Ok(added)
}

fn intern_in(
    interner: &mut Interner,
    limits: &Limits,
    s: &str,
) -> std::result::Result<u32, String> {
    if let Some(id) = interner.get(s) {
        return Ok(id);
    }
    if s.len() > limits.max_string_len {
        return Err(format!(
            "a string of {} bytes exceeds the limit of {} bytes (max_string_len)",
            s.len(),
            limits.max_string_len
        ));
    }
    // Once strings were spilled, provisional ids count a string once
    // per run: the limit on distinct strings is checked when the runs
    // are merged, and here only what ids can hold.
    let id = interner.ids();
    let max = if interner.spilled() {
        (u32::MAX - 1) as usize
    } else {
        limits.max_strings
    };
    if id >= max as u64 {
        return Err(format!(
            "more than {max} distinct strings (the max_strings limit)"
        ));
    }
    Ok(interner.insert(s))
}

/// Deserializes one row into the builder.
pub struct RowSeed<'a> {
    b: &'a mut ColumnsBuilder,
    /// The row's JSON text, when the caller has it: integer literals
    /// outside `[-2^63, 2^64)` are then kept as their text.
    text: Option<&'a [u8]>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        // The max_rows limit is checked once a row has begun (in the
        // visitor), so that input ending right at the limit is fine.
        let item =
            u32::try_from(self.b.rows).map_err(|_| de::Error::custom("more than 2^32-1 rows"))?;
        self.b.row_big.clear();
        self.b.row_numbers = 0;
        self.b.row_inexact.clear();
        d.deserialize_any(RowVisitor { b: self.b, item })?;
        if let Some(text) = self.text
            && !self.b.row_big.is_empty()
        {
            self.b.settle_big_numbers(text);
        }
        self.b.rows += 1;
        self.b.maybe_spill().map_err(de::Error::custom)?;
        Ok(())
    }
}

struct RowVisitor<'a> {
    b: &'a mut ColumnsBuilder,
    item: u32,
}

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (every row must be an object)")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<(), A::Error> {
        if self.b.rows >= self.b.limits.max_rows {
            return Err(de::Error::custom(format!(
                "more than {} rows (the max_rows limit)",
                self.b.limits.max_rows
            )));
        }
        ValueSeed {
            b: self.b,
            node: 0,
            item: self.item,
            level: 1,
        }
        .visit_map(map)
    }
}

struct ValueSeed<'a> {
    b: &'a mut ColumnsBuilder,
    node: u32,
    item: u32,
    /// Nesting level of the value if it is an object or array (the row is 1).
    level: usize,
}

/// The most objects and arrays nested in one row, the row itself included.
/// serde_json refuses more than 127 levels of input; one less leaves room
/// for the array around rows, so every snapshot exports to JSON (array or
/// NDJSON) that reads back. Matches `format::footer::MAX_DEPTH`.
pub const MAX_NESTING: usize = 126;

fn check_level<E: de::Error>(level: usize) -> std::result::Result<(), E> {
    if level > MAX_NESTING {
        return Err(E::custom(format!(
            "objects and arrays nested deeper than {MAX_NESTING} levels in one row"
        )));
    }
    Ok(())
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        self.b
            .start(self.node, self.item, Kind::Null)
            .map_err(E::custom)
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<(), E> {
        let k = if v { Kind::True } else { Kind::False };
        self.b.start(self.node, self.item, k).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.b.row_numbers += 1;
        self.b
            .start(self.node, self.item, Kind::Int)
            .map_err(E::custom)?;
        self.b.nodes[self.node as usize].ints.push(v);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<(), E> {
        if let Ok(i) = i64::try_from(v) {
            return self.visit_i64(i);
        }
        self.b.row_numbers += 1;
        self.b
            .start(self.node, self.item, Kind::UInt)
            .map_err(E::custom)?;
        self.b.nodes[self.node as usize].uints.push(v);
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<(), E> {
        if !v.is_finite() {
            return Err(E::custom("number out of range"));
        }
        let number = self.b.row_numbers;
        self.b.row_numbers += 1;
        self.b
            .start(self.node, self.item, Kind::Float)
            .map_err(E::custom)?;
        let n = &mut self.b.nodes[self.node as usize];
        n.floats.push(v);
        // serde_json reads an integer past u64 as a float: the row's text
        // tells whether this one was (`ColumnsBuilder::settle_big_numbers`).
        if v.abs() >= 9_223_372_036_854_775_808.0 && v.fract() == 0.0 {
            let (kind_at, float_at) = (n.kinds.len() - 1, n.floats.len() - 1);
            self.b.row_big.push(BigFloat {
                node: self.node,
                kind_at,
                float_at,
                number,
            });
        }
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<(), E> {
        if timestamp::looks_like(v)
            && let Some(ts) = timestamp::parse(v)
        {
            self.b
                .start(self.node, self.item, Kind::Time)
                .map_err(E::custom)?;
            self.b.nodes[self.node as usize].times.push(ts);
            return Ok(());
        }
        self.b
            .start(self.node, self.item, Kind::Str)
            .map_err(E::custom)?;
        let id = self
            .b
            .intern(v)
            .map_err(|m| E::custom(format!("field `{}`: {m}", self.b.path(self.node))))?;
        let n = &mut self.b.nodes[self.node as usize];
        n.strs.push(id);
        n.str_bytes += v.len() as u64;
        if n.in_array {
            n.str_sketch.get_or_insert_default().insert(v);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let ValueSeed {
            b,
            node,
            item,
            level,
        } = self;
        check_level(level)?;
        b.start(node, item, Kind::Object)
            .map_err(de::Error::custom)?;
        while let Some(child) = map.next_key_seed(KeySeed {
            b,
            parent: node,
            item,
        })? {
            map.next_value_seed(ValueSeed {
                b,
                node: child,
                item,
                level: level + 1,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let ValueSeed {
            b,
            node,
            item,
            level,
        } = self;
        check_level(level)?;
        b.start(node, item, Kind::Array)
            .map_err(de::Error::custom)?;
        let elem = b.elem(node).map_err(de::Error::custom)?;
        let mut count: u32 = 0;
        loop {
            let e = b.nodes[elem as usize].n_items();
            let e = u32::try_from(e)
                .map_err(|_| de::Error::custom("more than 2^32 array elements in one column"))?;
            if seq
                .next_element_seed(ValueSeed {
                    b,
                    node: elem,
                    item: e,
                    level: level + 1,
                })?
                .is_none()
            {
                break;
            }
            count += 1;
        }
        let n = &mut b.nodes[node as usize];
        n.lens.push(count);
        n.lens_sum += count as u64;
        Ok(())
    }
}

struct KeySeed<'a> {
    b: &'a mut ColumnsBuilder,
    parent: u32,
    item: u32,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = u32;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<u32, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<u32, E> {
        let c = self.b.child(self.parent, v).map_err(E::custom)?;
        // Refuse a duplicate key as soon as it is read, so that the error
        // points at the key rather than after its value.
        if self.b.nodes[c as usize].idx.last() == Some(self.item) {
            return Err(E::custom(format!(
                "duplicate key `{v}` in one object (duplicate keys are rejected)"
            )));
        }
        Ok(c)
    }
}
