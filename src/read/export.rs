//! Turning columns back into JSON text.

use super::Snapshot;
use super::node::{Decoder, Kinds, NodeData};
#[cfg(not(target_arch = "wasm32"))]
use super::pick::Picked;
use crate::error::{Error, Result};
use crate::model::Kind;
use crate::strings::Chunk;
use crate::timestamp;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

/// JSON strings back to back, and each deferred reference's span in them.
type Arena = (Vec<u8>, Vec<(usize, usize)>);

/// One chunk's wanted strings as JSON: their arena, the indices wanted
/// (increasing), and each one's span in the arena.
type ChunkJson = (Vec<u8>, Vec<usize>, Vec<Option<(usize, usize)>>);

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// One object per line instead of a JSON array.
    pub ndjson: bool,
    /// Only these column paths (and what is under them); `None` for all.
    pub columns: Option<Vec<String>>,
    /// Only these rows (clamped to the row count); `None` for all.
    pub rows: Option<Range<u64>>,
    /// Memory budget of the export in bytes; `None` for the default
    /// (`DEFAULT_MEMORY_BUDGET`, or 64 bytes per byte of the file when that
    /// is more).
    pub memory_budget: Option<u64>,
    /// Bytes of decoded string chunks an export keeps; `None` for the
    /// default ([`DEFAULT_STRING_BUDGET`]). Chunks are kept as the export
    /// first needs them while they fit; once they do not, strings of other
    /// chunks are written in batches: a batch of rows is emitted with
    /// placeholders, its strings are looked up chunk by chunk in id order
    /// (each chunk decoded once a batch), and the batch goes out. The output
    /// is the same whatever the budget.
    pub string_budget: Option<u64>,
}

/// Default bytes of decoded string chunks an export keeps (256 MiB).
pub const DEFAULT_STRING_BUDGET: u64 = 256 << 20;

/// Export output is handed to the writer once it holds this many bytes.
const SPILL_AT: usize = 1 << 16;

/// Receives (and drains) the output buffer when it is full.
pub(crate) type Spill<'s> = &'s mut dyn FnMut(&mut Vec<u8>) -> Result<()>;

/// Decoded nodes plus string chunks, for emitting many rows. Nodes are
/// decoded when a row first needs them: an object's children only their
/// kinds (to see which keys are present), a child's values only once one of
/// its items is written. Sparse kinds are looked up with a cursor per node,
/// so emitting rows in order costs no search.
pub(crate) struct Emitter {
    snap: Snapshot,
    dec: Dec,
    kinds: Vec<Option<Arc<Kinds>>>,
    nodes: Vec<Option<Arc<NodeData>>>,
    hints: Vec<usize>,
    fields: Vec<Option<Fields>>,
    keys: Vec<Vec<u32>>,
    elem: Vec<Option<u32>>,
    /// Whether the node has an element column in the file (kept or not).
    has_elem: Vec<bool>,
    keep: Vec<bool>,
    /// Kept chunks by table, then chunk number.
    chunks: Vec<Vec<Option<Arc<Chunk>>>>,
    /// While planning a prefetch: the string chunks rows need, recorded
    /// instead of read (their strings are written empty).
    record: Option<Vec<(u32, usize)>>,
    tmp: String,
    /// Decoded bytes of the chunks in `chunks`, and the most they may
    /// hold; past it, strings of other chunks come through the snapshot's
    /// cache (or, batched, are deferred).
    kept: u64,
    keep_budget: u64,
    /// Set for a batched export: what is pending.
    batch: Option<Batch>,
    /// Output size from which [`Emitter::spill_if_full`] looks further
    /// ([`SPILL_AT`]; never while [`Emitter::row`] writes a row).
    spill_at: usize,
    /// `"key":` of each kept `Key` node, escaped once.
    key_json: Vec<Vec<u8>>,
    /// Vectors for [`Emitter::present_fields`], and its scratch order.
    pool: Vec<Vec<u32>>,
    order: Vec<u32>,
    /// Strings not found in a cache are deferred to `deferred` (position
    /// in the output, table, id) and read together, chunk by chunk, once
    /// the rows are written ([`Emitter::resolve_into`]).
    lazy: bool,
    deferred: Vec<(usize, u32, u32)>,
    /// While reading a window's strings ahead ([`RowWriter::read_strings`]):
    /// every string written, as (table, id), in the order written (the
    /// strings themselves are not written).
    collect: Option<Vec<(u32, u32)>>,
    /// While writing rows whose strings were read ahead: the window, whose
    /// cursor gives each string in turn.
    window: Option<StringWindow>,
}

/// Where an [`Emitter`] gets its nodes: whole (any row), or at the items
/// under a few rows only ([`Picked`]: a page of 50 rows out of millions).
enum Dec {
    Whole(Decoder),
    #[cfg(not(target_arch = "wasm32"))]
    Picked(Box<Picked>),
}

impl Dec {
    fn kinds(&mut self, node: u32) -> Result<Arc<Kinds>> {
        match self {
            Dec::Whole(d) => d.kinds(node),
            #[cfg(not(target_arch = "wasm32"))]
            Dec::Picked(p) => p.kinds(node),
        }
    }

    fn node(&mut self, node: u32) -> Result<Arc<NodeData>> {
        match self {
            Dec::Whole(d) => d.node(node),
            #[cfg(not(target_arch = "wasm32"))]
            Dec::Picked(p) => p.node(node),
        }
    }

    fn fork(&self) -> Dec {
        match self {
            Dec::Whole(d) => Dec::Whole(d.fork()),
            #[cfg(not(target_arch = "wasm32"))]
            Dec::Picked(p) => Dec::Picked(Box::new(p.fork())),
        }
    }

    fn used(&self) -> u64 {
        match self {
            Dec::Whole(d) => d.used(),
            #[cfg(not(target_arch = "wasm32"))]
            Dec::Picked(p) => p.used(),
        }
    }

    /// The root's item of `row`: the row itself, or its place among the
    /// picked rows.
    fn root_item(&self, row: usize) -> Result<usize> {
        match self {
            Dec::Whole(_) => Ok(row),
            #[cfg(not(target_arch = "wasm32"))]
            Dec::Picked(p) => p.root_item(row),
        }
    }
}

/// The strings of a run of rows read ahead, each string chunk once for all
/// of them, in the order a [`RowWriter`] writes them: a stream writes rows
/// in any order (sorted by a column), whose strings lie spread over every
/// chunk of the tables; reading them window by window decodes each chunk
/// once a window instead of once per batch of events, and holds only the
/// window's strings, not the rows' JSON.
///
/// Made by [`RowWriter::read_strings`] for some rows, spent by
/// [`RowWriter::write_row_groups_with`] writing the same rows in the same
/// order (over one or more calls).
#[derive(Debug, Default)]
pub struct StringWindow {
    /// The distinct strings, as JSON strings back to back.
    arena: Vec<u8>,
    /// Of each distinct string: its span in `arena`, and its id (checked
    /// against the id written).
    spans: Vec<(u32, u32)>,
    ids: Vec<u32>,
    /// Of each string written, in order: its distinct string.
    refs: Vec<u32>,
    /// Strings written so far.
    next: usize,
}

impl StringWindow {
    /// Bytes the window holds.
    pub fn bytes(&self) -> usize {
        self.arena.capacity()
            + self.spans.capacity() * 8
            + self.ids.capacity() * 4
            + self.refs.capacity() * 4
    }

    /// Bytes of its strings (as JSON).
    pub fn string_bytes(&self) -> usize {
        self.arena.len()
    }

    /// True once every string of the window was written.
    pub fn is_spent(&self) -> bool {
        self.next >= self.refs.len()
    }

    /// The next string, which must be `(t, id)`.
    fn take(&mut self, t: u32, id: u32) -> Result<&[u8]> {
        let u = self.refs.get(self.next).copied();
        let Some(u) = u.filter(|&u| self.ids.get(u as usize) == Some(&id)) else {
            return Err(Error::Invalid(format!(
                "string window out of step at string {} (table {t}, id {id}): the rows written are not those read ahead",
                self.next
            )));
        };
        self.next += 1;
        let (a, b) = self.spans[u as usize];
        Ok(&self.arena[a as usize..b as usize])
    }
}

/// Strings deferred to the end of a batch (see
/// [`ExportOptions::string_budget`]).
struct Batch {
    /// Output bytes a batch may reach before its strings are resolved.
    flush_at: usize,
    /// Deferred strings: (position in the output, table, id), in output
    /// order.
    refs: Vec<(usize, u32, u32)>,
    /// Estimated bytes of the deferred strings (their chunks' mean string
    /// length each): a batch of few rows can defer long bodies, which
    /// count towards its size as much as the output does.
    pending: u64,
}

/// A batch's deferred strings are resolved once this many are pending,
/// whatever the output size.
const MAX_REFS: usize = 1 << 22;

impl Emitter {
    /// An emitter of `columns` (all when `None`) within the default budget.
    pub(crate) fn new(snap: &Snapshot, columns: Option<&[String]>) -> Result<Self> {
        Self::with_budget(snap, columns, None)
    }

    /// An emitter of `columns` (all when `None`) within `budget` bytes.
    pub(crate) fn with_budget(
        snap: &Snapshot,
        columns: Option<&[String]>,
        budget: Option<u64>,
    ) -> Result<Self> {
        let n = snap.footer().nodes.len();
        let mut keep = vec![columns.is_none(); n];
        keep[0] = true;
        if let Some(cols) = columns {
            for c in cols {
                let id = snap.node_by_path(c).ok_or_else(|| Error::NotFound {
                    what: "column",
                    name: format!(
                        "{c} (available: {})",
                        snap.columns()
                            .iter()
                            .map(|c| c.path.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
                // The column, its ancestors and its descendants.
                let mut a = id;
                while a != 0 {
                    keep[a as usize] = true;
                    a = snap.footer().nodes[a as usize].parent;
                }
                for i in (id as usize + 1)..n {
                    if keep[snap.footer().nodes[i].parent as usize]
                        && is_descendant(snap, i as u32, id)
                    {
                        keep[i] = true;
                    }
                }
            }
        }
        let mut keys = vec![Vec::new(); n];
        let mut elem = vec![None; n];
        let mut key_json = vec![Vec::new(); n];
        let mut has_elem = vec![false; n];
        for (i, m) in snap.footer().nodes.iter().enumerate().skip(1) {
            if m.name == crate::model::NodeName::Elem {
                has_elem[m.parent as usize] = true;
            }
            if !keep[i] {
                continue;
            }
            match &m.name {
                crate::model::NodeName::Elem => elem[m.parent as usize] = Some(i as u32),
                name => {
                    // (The footer allows `Root` only for node 0.)
                    if let crate::model::NodeName::Key(k) = name {
                        write_json_str(&mut key_json[i], k);
                    }
                    key_json[i].push(b':');
                    keys[m.parent as usize].push(i as u32);
                }
            }
        }
        Ok(Emitter {
            snap: snap.clone(),
            dec: Dec::Whole(Decoder::new(snap, budget)),
            kinds: vec![None; n],
            nodes: vec![None; n],
            hints: vec![0; n],
            fields: (0..n).map(|_| None).collect(),
            keys,
            elem,
            has_elem,
            keep,
            chunks: Vec::new(),
            record: None,
            tmp: String::new(),
            kept: 0,
            keep_budget: DEFAULT_STRING_BUDGET / 2,
            batch: None,
            spill_at: SPILL_AT,
            key_json,
            pool: Vec::new(),
            order: Vec::new(),
            lazy: false,
            deferred: Vec::new(),
            collect: None,
            window: None,
        })
    }

    /// An emitter of `columns` (all when `None`) for `rows` only: nodes
    /// decoded at the items under these rows ([`Picked`]); any other row
    /// is refused.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn picked(
        snap: &Snapshot,
        columns: Option<&[String]>,
        rows: &[u64],
        budget: Option<u64>,
    ) -> Result<Self> {
        let mut e = Self::with_budget(snap, columns, budget)?;
        e.dec = Dec::Picked(Box::new(Picked::new(snap, rows, budget)?));
        Ok(e)
    }

    /// An emitter of the same columns sharing every node decoded so far
    /// (the same `Arc`s: no copy), with fresh cursors and no kept chunks.
    pub(crate) fn fork(&self) -> Emitter {
        let n = self.nodes.len();
        Emitter {
            snap: self.snap.clone(),
            dec: self.dec.fork(),
            kinds: self.kinds.clone(),
            nodes: self.nodes.clone(),
            hints: vec![0; n],
            fields: (0..n).map(|_| None).collect(),
            keys: self.keys.clone(),
            elem: self.elem.clone(),
            has_elem: self.has_elem.clone(),
            keep: self.keep.clone(),
            chunks: Vec::new(),
            record: None,
            tmp: String::new(),
            kept: 0,
            keep_budget: self.keep_budget,
            batch: None,
            spill_at: SPILL_AT,
            key_json: self.key_json.clone(),
            pool: Vec::new(),
            order: Vec::new(),
            lazy: self.lazy,
            deferred: Vec::new(),
            collect: None,
            window: None,
        }
    }

    /// Decode every node the emitter writes now rather than when a row
    /// first needs it (so that forks share them all).
    pub(crate) fn prime(&mut self) -> Result<()> {
        for n in 0..self.nodes.len() {
            if self.keep[n] && self.nodes[n].is_none() {
                self.kinds[n] = Some(self.dec.kinds(n as u32)?);
                self.nodes[n] = Some(self.dec.node(n as u32)?);
            }
        }
        Ok(())
    }

    /// Decode the nodes the emitter writes ahead, on the snapshot's
    /// decode threads ([`Picked::decode_ahead`]; a picked emitter only: a
    /// whole decode is one column at a time, as the memory budget wants).
    #[cfg(not(target_arch = "wasm32"))]
    fn decode_ahead(&mut self) {
        if let Dec::Picked(p) = &mut self.dec {
            let nodes: Vec<u32> = (0..self.nodes.len() as u32)
                .filter(|&n| self.keep[n as usize])
                .collect();
            p.decode_ahead(&nodes, self.snap.options().decode_threads);
        }
    }

    /// Bytes of decoded nodes the emitter holds (shared with its forks).
    pub(crate) fn node_bytes(&self) -> u64 {
        self.dec.used()
    }

    /// Read the strings of `refs` ((position, table, id) each), every
    /// chunk once ([`Snapshot::chunk_strings`]), as JSON strings back to
    /// back in an arena; returns the arena and each ref's span in it.
    fn resolve(&self, refs: &[(usize, u32, u32)], keep: bool) -> Result<Arena> {
        let mut order: Vec<u32> = (0..refs.len() as u32).collect();
        order.sort_unstable_by_key(|&r| (refs[r as usize].1, refs[r as usize].2));
        // The refs of each chunk: (table, chunk, its first id, their run
        // in `order`).
        let mut groups: Vec<(u32, usize, u64, Range<usize>)> = Vec::new();
        let mut g = 0;
        while g < order.len() {
            let (t, id0) = (refs[order[g] as usize].1, refs[order[g] as usize].2);
            let (k, _) = self.locate(t, id0)?;
            let starts = self.snap.chunk_starts(t);
            let (lo, hi) = (starts[k], starts[k + 1]);
            let mut h = g;
            while h < order.len()
                && refs[order[h] as usize].1 == t
                && (refs[order[h] as usize].2 as u64) < hi
            {
                h += 1;
            }
            groups.push((t, k, lo, g..h));
            g = h;
        }
        // Each chunk's strings as JSON in an arena of its own, the chunks
        // not in the caches decoded on threads of their own (see
        // `OpenOptions::decode_threads`), then put together in order.
        let snap = &self.snap;
        let want_of = |(_, _, lo, run): &(u32, usize, u64, Range<usize>)| {
            let mut want: Vec<usize> = order[run.clone()]
                .iter()
                .map(|&r| (refs[r as usize].2 as u64 - lo) as usize)
                .collect();
            want.dedup();
            want
        };
        let read = |grp: &(u32, usize, u64, Range<usize>)| -> Result<ChunkJson> {
            let want = want_of(grp);
            let mut arena = Vec::new();
            let mut got: Vec<Option<(usize, usize)>> = vec![None; want.len()];
            snap.chunk_strings(grp.0, grp.1, &want, keep, &mut |i, s| {
                if let Ok(j) = want.binary_search(&i) {
                    let a = arena.len();
                    write_json_str(&mut arena, s);
                    got[j] = Some((a, arena.len()));
                }
            })?;
            Ok((arena, want, got))
        };
        let mut parts: Vec<Option<ChunkJson>> = (0..groups.len()).map(|_| None).collect();
        #[cfg(not(target_arch = "wasm32"))]
        {
            let threads = snap.options().decode_threads;
            let cold: Vec<usize> = (0..groups.len())
                .filter(|&i| {
                    threads > 1
                        && !snap.strings_held(groups[i].0, groups[i].1, &want_of(&groups[i]))
                })
                .collect();
            if cold.len() > 1 {
                let got = crate::source::parallel_map(&cold, threads, |&i| read(&groups[i]))?;
                for (i, p) in cold.into_iter().zip(got) {
                    parts[i] = Some(p);
                }
            }
        }
        for (grp, p) in groups.iter().zip(parts.iter_mut()) {
            if p.is_none() {
                *p = Some(read(grp)?);
            }
        }
        let mut arena = Vec::new();
        let mut spans = vec![(0usize, 0usize); refs.len()];
        for ((t, k, lo, run), part) in groups.iter().zip(parts) {
            let (a, want, got) =
                part.ok_or_else(|| Error::Invalid("string chunks miscounted".into()))?;
            let base = arena.len();
            arena.extend_from_slice(&a);
            for &r in &order[run.clone()] {
                let i = (refs[r as usize].2 as u64 - lo) as usize;
                let j = want.binary_search(&i).unwrap_or(0);
                let (a, b) = got[j].ok_or_else(|| {
                    Error::corrupt(
                        format!("string table {t} chunk {k}"),
                        0,
                        format!("string {i} missing"),
                    )
                })?;
                spans[r as usize] = (base + a, base + b);
            }
        }
        Ok((arena, spans))
    }

    /// The strings `refs` ((table, id) each, in the order written) read
    /// into a window: every chunk once, each distinct string once.
    fn read_window(&self, refs: Vec<(u32, u32)>) -> Result<StringWindow> {
        let too_big = || Error::Invalid("a string window of 4 GiB or more".into());
        let n = u32::try_from(refs.len()).map_err(|_| too_big())?;
        // (table, id, index) packed in one integer: sorting them is a sort
        // of plain integers, not of indices looked up.
        let mut sorted: Vec<u128> = refs
            .iter()
            .zip(0..n)
            .map(|(&(t, id), i)| (t as u128) << 64 | (id as u128) << 32 | i as u128)
            .collect();
        drop(refs);
        sorted.sort_unstable();
        let key = |x: u128| ((x >> 64) as u32, (x >> 32) as u32);
        let idx = |x: u128| x as u32 as usize;
        let mut w = StringWindow {
            refs: vec![0; sorted.len()],
            ..Default::default()
        };
        let mut want: Vec<usize> = Vec::new();
        let mut got: Vec<Option<(usize, usize)>> = Vec::new();
        let mut g = 0;
        while g < sorted.len() {
            let (t, id0) = key(sorted[g]);
            let (k, _) = self.locate(t, id0)?;
            let starts = self.snap.chunk_starts(t);
            let (lo, hi) = (starts[k], starts[k + 1]);
            let first = w.ids.len();
            want.clear();
            let mut h = g;
            while h < sorted.len() {
                let (th, id) = key(sorted[h]);
                if th != t || id as u64 >= hi {
                    break;
                }
                let i = (id as u64 - lo) as usize;
                if want.last() != Some(&i) {
                    want.push(i);
                    w.ids.push(id);
                }
                w.refs[idx(sorted[h])] = (first + want.len() - 1) as u32;
                h += 1;
            }
            got.clear();
            got.resize(want.len(), None);
            let arena = &mut w.arena;
            self.snap.chunk_strings(t, k, &want, false, &mut |i, s| {
                if let Ok(j) = want.binary_search(&i) {
                    let a = arena.len();
                    write_json_str(arena, s);
                    got[j] = Some((a, arena.len()));
                }
            })?;
            for (j, span) in got.iter().enumerate() {
                let (a, b) = span.ok_or_else(|| {
                    Error::corrupt(
                        format!("string table {t} chunk {k}"),
                        0,
                        format!("string {} missing", want[j]),
                    )
                })?;
                let a = u32::try_from(a).map_err(|_| too_big())?;
                let b = u32::try_from(b).map_err(|_| too_big())?;
                w.spans.push((a, b));
            }
            g = h;
        }
        // Grown by doubling: give back what is not used (large blocks are
        // remapped, not copied).
        w.arena.shrink_to_fit();
        w.spans.shrink_to_fit();
        w.ids.shrink_to_fit();
        Ok(w)
    }

    /// Put the deferred strings in place in `out` (written since the
    /// first deferred position), keeping those read in the snapshot's
    /// string cache with `keep`.
    pub(crate) fn resolve_into(&mut self, out: &mut Vec<u8>, keep: bool) -> Result<()> {
        let refs = std::mem::take(&mut self.deferred);
        let Some(&(first, _, _)) = refs.first() else {
            return Ok(());
        };
        let (arena, spans) = self.resolve(&refs, keep)?;
        let tail = out.split_off(first);
        out.reserve(tail.len() + arena.len());
        let mut at = first;
        for (r, &(pos, _, _)) in refs.iter().enumerate() {
            out.extend_from_slice(&tail[at - first..pos - first]);
            let (a, b) = spans[r];
            out.extend_from_slice(&arena[a..b]);
            at = pos;
        }
        out.extend_from_slice(&tail[at - first..]);
        Ok(())
    }

    /// Keep at most half of `budget` in decoded string chunks and defer the
    /// strings of other chunks to batches of up to an eighth of it in
    /// output (the rest is for the batch's strings) (for [`Emitter::row_spilling`]
    /// followed by [`Emitter::spill_if_full`] and [`Emitter::flush`]).
    pub(crate) fn batched(&mut self, budget: u64) {
        self.keep_budget = budget / 2;
        self.batch = Some(Batch {
            flush_at: usize::try_from(budget / 2)
                .unwrap_or(usize::MAX)
                .max(SPILL_AT),
            refs: Vec::new(),
            pending: 0,
        });
    }

    /// Hands `out` to `spill` when it is full: past [`SPILL_AT`] bytes, or
    /// for a batched emitter past the batch size (its deferred strings
    /// resolved first).
    #[inline]
    pub(crate) fn spill_if_full(&mut self, out: &mut Vec<u8>, spill: Spill<'_>) -> Result<()> {
        let pending = self.batch.as_ref().map_or(0, |b| b.pending);
        if out.len() < self.spill_at && pending < SPILL_AT as u64 {
            return Ok(());
        }
        let full = match &self.batch {
            Some(b) if !b.refs.is_empty() => {
                (out.len() as u64).saturating_add(b.pending) >= b.flush_at as u64
                    || b.refs.len() >= MAX_REFS
            }
            _ => out.len() >= self.spill_at,
        };
        if full { self.flush(out, spill) } else { Ok(()) }
    }

    /// Hands everything in `out` to `spill`, deferred strings resolved.
    pub(crate) fn flush(&mut self, out: &mut Vec<u8>, spill: Spill<'_>) -> Result<()> {
        let refs = match &mut self.batch {
            Some(b) if !b.refs.is_empty() => {
                b.pending = 0;
                std::mem::take(&mut b.refs)
            }
            _ => return spill(out),
        };
        // Each chunk read once per batch, its strings not kept (an export
        // passes each row once).
        let (arena, spans) = self.resolve(&refs, false)?;
        // Stitch the output and the strings together, handing out pieces
        // as they fill.
        let skeleton = std::mem::take(out);
        let mut at = 0;
        for (r, &(pos, _, _)) in refs.iter().enumerate() {
            out.extend_from_slice(&skeleton[at..pos]);
            let (a, b) = spans[r];
            out.extend_from_slice(&arena[a..b]);
            at = pos;
            if out.len() >= SPILL_AT {
                spill(out)?;
            }
        }
        out.extend_from_slice(&skeleton[at..]);
        spill(out)
    }

    /// The chunk of table `t` holding string `id`, and the string's index
    /// in it.
    fn locate(&self, t: u32, id: u32) -> Result<(usize, usize)> {
        let starts = self
            .snap
            .inner_chunk_starts(t)
            .ok_or_else(|| Error::NotFound {
                what: "string table",
                name: t.to_string(),
            })?;
        let total = starts.last().copied().unwrap_or(0);
        if id as u64 >= total {
            return Err(Error::NotFound {
                what: "string id",
                name: format!("{id} (table {t} has {total} strings)"),
            });
        }
        let k = starts.partition_point(|&s| s <= id as u64) - 1;
        Ok((k, (id as u64 - starts[k]) as usize))
    }

    /// The kinds of node `c`, decoded on first use.
    fn kinds_of(&mut self, c: u32) -> Result<&Kinds> {
        let slot = &mut self.kinds[c as usize];
        if slot.is_none() {
            *slot = Some(self.dec.kinds(c)?);
        }
        Ok(self.kinds[c as usize].as_deref().unwrap_or(&EMPTY_KINDS))
    }

    /// The `Key` children of `node` present at `item`, in schema order.
    /// Objects with many fields track their sparse fields in a heap of next
    /// present items, so a row costs its present fields, not every field.
    /// The returned vector comes from a pool: give it back with
    /// [`Emitter::recycle`] (a row visits dozens of objects; allocating a
    /// vector for each showed in profiles).
    fn present_fields(&mut self, node: u32, item: usize) -> Result<Vec<u32>> {
        let n = node as usize;
        let keys = std::mem::take(&mut self.keys[n]);
        let mut present = self.pool.pop().unwrap_or_default();
        present.clear();
        let r = self.present_fields_of(n, &keys, item, &mut present);
        self.keys[n] = keys;
        r.map(|()| present)
    }

    /// Gives a vector of [`Emitter::present_fields`] back to the pool.
    fn recycle(&mut self, v: Vec<u32>) {
        if self.pool.len() < 256 {
            self.pool.push(v);
        }
    }

    fn present_fields_of(
        &mut self,
        n: usize,
        keys: &[u32],
        item: usize,
        present: &mut Vec<u32>,
    ) -> Result<()> {
        if keys.len() < MANY_FIELDS {
            for &c in keys {
                let mut hint = self.hints[c as usize];
                if self.kinds_of(c)?.get_hinted(item, &mut hint) != Kind::Absent {
                    present.push(c);
                }
                self.hints[c as usize] = hint;
            }
            return Ok(());
        }
        if self.fields[n].is_none() {
            let mut f = Fields::default();
            for (j, &c) in keys.iter().enumerate() {
                let k = self.dec.kinds(c)?;
                match &*k {
                    Kinds::Const(Kind::Absent, _) => {}
                    Kinds::Sparse(s) if s.base() == Kind::Absent => {
                        f.sparse.push((j as u32, k.clone()));
                        f.cursor.push(0);
                    }
                    _ => f.dense.push(j as u32),
                }
                self.kinds[c as usize] = Some(k);
            }
            self.fields[n] = Some(f);
        }
        let f = self.fields[n]
            .as_mut()
            .ok_or_else(|| Error::corrupt("schema", 0, "object fields not prepared".to_string()))?;
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        f.advance(item, &mut order);
        for &j in &f.dense {
            let c = keys[j as usize];
            let mut hint = self.hints[c as usize];
            let k = self.kinds[c as usize]
                .as_deref()
                .unwrap_or(&EMPTY_KINDS)
                .get_hinted(item, &mut hint);
            self.hints[c as usize] = hint;
            if k != Kind::Absent {
                order.push(j);
            }
        }
        order.sort_unstable();
        present.extend(order.iter().map(|&j| keys[j as usize]));
        self.order = order;
        Ok(())
    }

    /// Over a remote source, fetch what writing `rows` needs in two rounds
    /// of parallel, merged reads instead of one read per section: first
    /// the streams of every column written, then the string chunks those
    /// rows hold (found by a dry run that records chunks instead of
    /// reading them). Each round is capped at half the fetch cache; what
    /// does not fit is read when used, as without a prefetch. Does nothing
    /// over a local source.
    pub(crate) fn prefetch(&mut self, rows: &[u64]) -> Result<()> {
        if !self.snap.is_remote() || rows.is_empty() {
            return Ok(());
        }
        let cap = (self.snap.options().fetch_cache_bytes / 2) as u64;
        let snap = self.snap.clone();
        let sections = &snap.footer().sections;
        let size = |s: u32| {
            sections
                .get(s as usize)
                .map_or(0, |e| 16 + e.stored_len as u64)
        };
        let nodes = &snap.footer().nodes;
        // The columns written and the siblings that may be their streams'
        // sources ([`Snapshot::likely_sources`]), so that a source rides
        // along; one elsewhere comes in the rounds below.
        let mut want: Vec<u32> = Vec::new();
        let mut planned = vec![false; nodes.len()];
        for (i, _) in self.keep.iter().enumerate().filter(|(_, k)| **k) {
            want.push(i as u32);
            planned[i] = true;
        }
        for i in want.clone() {
            for j in self.snap.likely_sources(i) {
                if !planned[j as usize] {
                    planned[j as usize] = true;
                    want.push(j);
                }
            }
        }
        let mut bytes = 0u64;
        // Then the sources of mapped streams not planned yet, one round per
        // link of the chain (the decoder follows at most 64).
        for _ in 0..=64 {
            let mut plan = super::Plan::new();
            for &i in &want {
                let mut p = super::Plan::new();
                self.snap.plan_node(&mut p, i);
                let b: u64 = p.sections().map(size).sum();
                if bytes + b > cap {
                    continue;
                }
                bytes += b;
                p.sections().for_each(|s| plan.add_section(s));
            }
            self.snap.fetch(&plan)?;
            let mut next = Vec::new();
            for &i in &want {
                for &s in nodes[i as usize].streams.iter().flatten() {
                    let is_mapped = sections
                        .get(s as usize)
                        .is_some_and(|e| e.encoding.has_source());
                    if !is_mapped || !plan.sections().any(|p| p == s) {
                        continue;
                    }
                    let raw = self.snap.section(s)?;
                    let what = format!("section {s} (mapped)");
                    let src = crate::encoding::varint::Reader::new(&raw).u64(&what)?;
                    if let Some(p) = planned.get_mut(src as usize).filter(|p| !**p) {
                        *p = true;
                        next.push(src as u32);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            want = next;
        }
        self.record = Some(Default::default());
        let mut scratch = Vec::new();
        let mut dry = Ok(());
        for &r in rows {
            scratch.clear();
            dry = self.value(0, r as usize, &mut scratch, 0, &mut |o| {
                o.clear();
                Ok(())
            });
            if dry.is_err() {
                break;
            }
        }
        let mut wanted = self.record.take().unwrap_or_default();
        dry?;
        wanted.sort_unstable();
        wanted.dedup();
        let mut plan = super::Plan::new();
        let mut bytes = 0u64;
        for (t, k) in wanted {
            let mut p = super::Plan::new();
            self.snap.plan_chunk(&mut p, t, k);
            let b: u64 = p.sections().map(size).sum();
            if bytes + b > cap {
                break;
            }
            bytes += b;
            p.sections().for_each(|s| plan.add_section(s));
        }
        self.snap.fetch(&plan)
    }

    /// Append row `row` as compact JSON to `out`.
    pub(crate) fn row(&mut self, row: u64, out: &mut Vec<u8>) -> Result<()> {
        self.spill_at = usize::MAX;
        let r = self.value(0, row as usize, out, 0, &mut |_| Ok(()));
        self.spill_at = SPILL_AT;
        r
    }

    /// Like [`Emitter::row`], but hands `out` to `spill` whenever it grows
    /// past [`SPILL_AT`] bytes, even in the middle of the row: a tiny file
    /// may hold one row of billions of elements, which must stream out
    /// rather than be held in memory.
    pub(crate) fn row_spilling(
        &mut self,
        row: u64,
        out: &mut Vec<u8>,
        spill: Spill<'_>,
    ) -> Result<()> {
        self.value(0, row as usize, out, 0, spill)
    }

    fn string(&mut self, node: u32, id: u32, out: &mut Vec<u8>) -> Result<()> {
        // Located here rather than through a `StringTable` handle: a handle
        // holds a snapshot clone, and a page writes thousands of strings.
        let t = self.snap.footer().nodes[node as usize].table;
        if let Some(w) = self.window.as_mut() {
            out.extend_from_slice(w.take(t, id)?);
            return Ok(());
        }
        if let Some(c) = self.collect.as_mut() {
            c.push((t, id));
            return Ok(());
        }
        let (k, i) = self.locate(t, id)?;
        if let Some(c) = self
            .chunks
            .get(t as usize)
            .and_then(|v| v.get(k))
            .and_then(|c| c.as_ref())
        {
            write_json_str(out, c.get(i));
            return Ok(());
        }
        if let Some(r) = self.record.as_mut() {
            r.push((t, k));
            write_json_str(out, "");
            return Ok(());
        }
        if self.lazy {
            if self
                .snap
                .cached_string(t, k, i, |s| write_json_str(out, s))
                .is_none()
            {
                self.deferred.push((out.len(), t, id));
            }
            return Ok(());
        }
        let chunk = {
            {
                let meta = &self.snap.footer().tables[t as usize];
                let size = self.chunk_raw_len(t, k);
                if self.kept + size <= self.keep_budget {
                    self.kept += size;
                    let n = self.snap.footer().tables.len();
                    if self.chunks.len() < n {
                        self.chunks.resize_with(n, Vec::new);
                    }
                    let n_chunks = meta.chunk_counts.len();
                    let ahead = self.read_ahead(t, k);
                    let per = &mut self.chunks[t as usize];
                    if per.len() <= k {
                        per.resize_with(n_chunks.max(k + 1), || None);
                    }
                    let c = match ahead {
                        Some(got) => {
                            let mut first = None;
                            for (j, c) in got {
                                if j == k {
                                    first = Some(c.clone());
                                }
                                per[j] = Some(c);
                            }
                            first.ok_or_else(|| {
                                Error::Invalid("a chunk read ahead went missing".into())
                            })?
                        }
                        None => self.snap.string_chunk(t, k)?,
                    };
                    per[k] = Some(c.clone());
                    c
                } else if self.batch.is_some() {
                    let starts = self.snap.chunk_starts(t);
                    let count = (starts[k + 1] - starts[k]).max(1);
                    if let Some(b) = &mut self.batch {
                        b.refs.push((out.len(), t, id));
                        b.pending = b.pending.saturating_add(size / count + 2);
                    }
                    return Ok(());
                } else {
                    // Through the snapshot's LRU cache: bounded, and a
                    // page's rows mostly share chunks.
                    self.snap.string_chunk(t, k)?
                }
            }
        };
        write_json_str(out, chunk.get(i));
        Ok(())
    }

    /// Decoded bytes of chunk `k` of table `t` (its section's raw length).
    fn chunk_raw_len(&self, t: u32, k: usize) -> u64 {
        let foot = self.snap.footer();
        foot.tables
            .get(t as usize)
            .and_then(|m| foot.sections.get(m.first_chunk as usize + k))
            .map_or(0, |e| e.raw_len as u64)
    }

    /// Chunk `k` of row-ordered table `t` and the chunks after it, decoded
    /// together on the decode threads, when a whole decode (an export of
    /// every row, a compaction, a stream) meets it first: its rows use the
    /// table's strings in chunk order, and a PPMd chunk decodes at about 10
    /// MB/s. As many chunks as the threads, not yet kept, within the kept
    /// budget (charged here; chunk `k` already is). `None`: chunk `k` alone
    /// (a sorted table, picked rows, one thread, the browser build).
    fn read_ahead(&mut self, t: u32, k: usize) -> Option<Vec<(usize, Arc<Chunk>)>> {
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (t, k);
            None
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let threads = self.snap.options().decode_threads;
            let meta = &self.snap.footer().tables[t as usize];
            if threads < 2
                || !matches!(self.dec, Dec::Whole(_))
                || meta.flags & crate::format::footer::TABLE_ROW_ORDER == 0
            {
                return None;
            }
            let held = |j: usize| {
                self.chunks
                    .get(t as usize)
                    .and_then(|v| v.get(j))
                    .is_some_and(|c| c.is_some())
            };
            let mut ks = vec![k];
            let mut extra = 0u64;
            for j in k + 1..meta.chunk_counts.len() {
                if ks.len() == threads {
                    break;
                }
                if held(j) {
                    continue;
                }
                let size = self.chunk_raw_len(t, j);
                if self.kept + extra + size > self.keep_budget {
                    break;
                }
                extra += size;
                ks.push(j);
            }
            if ks.len() < 2 {
                return None;
            }
            let snap = &self.snap;
            // A failure is met again when its chunk is read alone.
            let got =
                crate::source::parallel_map(&ks, threads, |&j| snap.string_chunk(t, j)).ok()?;
            self.kept += extra;
            Some(ks.into_iter().zip(got).collect())
        }
    }

    fn value(
        &mut self,
        node: u32,
        item: usize,
        out: &mut Vec<u8>,
        depth: usize,
        spill: Spill<'_>,
    ) -> Result<()> {
        // The footer already refuses deeper schemas; this keeps the
        // recursion bounded whatever the caller did.
        if depth > crate::format::footer::MAX_DEPTH {
            return Err(Error::corrupt(
                "schema",
                0,
                format!(
                    "nesting deeper than {} levels",
                    crate::format::footer::MAX_DEPTH
                ),
            ));
        }
        let item = if depth == 0 {
            self.dec.root_item(item)?
        } else {
            item
        };
        // The node's data is moved out of its slot while the value is
        // written (children are other nodes) and put back after: no
        // reference count touched per value.
        let data = match self.nodes[node as usize].take() {
            Some(d) => d,
            None => self.dec.node(node)?,
        };
        let r = self.value_of(&data, node, item, out, depth, spill);
        self.nodes[node as usize] = Some(data);
        r
    }

    fn value_of(
        &mut self,
        data: &NodeData,
        node: u32,
        item: usize,
        out: &mut Vec<u8>,
        depth: usize,
        spill: Spill<'_>,
    ) -> Result<()> {
        let corrupt =
            |d: String| Error::corrupt(format!("column `{}`", self.snap.path(node)), 0, d);
        if item >= data.len() {
            return Err(corrupt(format!(
                "item {item} past the {} items",
                data.len()
            )));
        }
        let (kind, p) = data
            .kinds
            .get_and_rank(item, &mut self.hints[node as usize]);
        match kind {
            Kind::Absent => out.extend_from_slice(b"null"),
            Kind::Null => out.extend_from_slice(b"null"),
            Kind::False => out.extend_from_slice(b"false"),
            Kind::True => out.extend_from_slice(b"true"),
            Kind::Int => write_display(out, data.ints[p]),
            Kind::UInt => write_display(out, data.uints[p]),
            Kind::Float => {
                let v = serde_json::Number::from_f64(data.floats[p])
                    .ok_or_else(|| corrupt("non-finite float".into()))?;
                write_display(out, v);
            }
            Kind::Str => {
                let id = data.strs[p];
                self.string(node, id, out)?;
            }
            // Checked as an integer literal when decoded: valid JSON as is.
            Kind::NumText => out.extend_from_slice(data.num_texts[p].as_bytes()),
            Kind::Time => {
                let ts = data.timestamp(p);
                self.tmp.clear();
                if !timestamp::format(&ts, &mut self.tmp) {
                    return Err(corrupt(format!("timestamp {p} cannot be formatted")));
                }
                write_json_str(out, &self.tmp);
            }
            Kind::Object => {
                out.push(b'{');
                let mut first = true;
                let present = self.present_fields(node, item)?;
                for &c in &present {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(&self.key_json[c as usize]);
                    self.value(c, item, out, depth + 1, spill)?;
                    self.spill_if_full(out, spill)?;
                }
                self.recycle(present);
                out.push(b'}');
            }
            Kind::Array => {
                let range = data.list_starts[p]..data.list_starts[p + 1];
                out.push(b'[');
                match self.elem[node as usize] {
                    Some(e) => {
                        for (j, el) in range.enumerate() {
                            if j > 0 {
                                out.push(b',');
                            }
                            self.value(e, el as usize, out, depth + 1, spill)?;
                            self.spill_if_full(out, spill)?;
                        }
                    }
                    // Kept for a column selected under it that is not
                    // under its items (`a.b` keeps `a`, not `a[]`): its
                    // lists show without items, as its objects show without
                    // their fields not selected.
                    None if range.is_empty() || !self.keep[node as usize] => {}
                    None if self.has_elem[node as usize] => {}
                    None => return Err(corrupt("array elements but no element column".into())),
                }
                out.push(b']');
            }
        }
        Ok(())
    }
}

/// Objects with at least this many fields find their present fields
/// through [`Fields`] rather than by asking every field. Asking costs one
/// lookup a field (an index for dense kinds), cheaper than the heap for the
/// few dozen fields of a typical issue, whose rows a sorted page visits in
/// any order; the heap pays off on wide, sparse objects (thousands of keys
/// each present in few rows).
const MANY_FIELDS: usize = 128;

/// The fields of one object node, for finding those present at an item:
/// sparse fields (absent in most items) by a heap of their next present
/// item, the others by asking each.
#[derive(Default)]
struct Fields {
    /// Schema-order index of every field that is not sparse.
    dense: Vec<u32>,
    /// Schema-order index and kinds of every sparse field.
    sparse: Vec<(u32, Arc<Kinds>)>,
    /// Next exception of each sparse field.
    cursor: Vec<usize>,
    /// (next present item, sparse field) of every sparse field with one.
    heap: BinaryHeap<Reverse<(u32, u32)>>,
    /// The last item asked for; `None` before the first.
    last: Option<usize>,
}

impl Fields {
    fn exceptions(k: &Kinds) -> &[u32] {
        match k {
            Kinds::Sparse(s) => s.exceptions(),
            _ => &[],
        }
    }

    /// Push the schema-order index of every sparse field present at `item`.
    fn advance(&mut self, item: usize, order: &mut Vec<u32>) {
        if self.last.is_none_or(|l| item <= l) {
            // First call, or not increasing: seek every field.
            self.heap.clear();
            for (s, (_, k)) in self.sparse.iter().enumerate() {
                let at = Self::exceptions(k);
                let c = at.partition_point(|&a| (a as usize) < item);
                self.cursor[s] = c;
                if let Some(&a) = at.get(c) {
                    self.heap.push(Reverse((a, s as u32)));
                }
            }
        }
        self.last = Some(item);
        while let Some(&Reverse((a, s))) = self.heap.peek() {
            if a as usize > item {
                break;
            }
            self.heap.pop();
            let (j, k) = &self.sparse[s as usize];
            let at = Self::exceptions(k);
            if a as usize == item {
                order.push(*j);
                self.cursor[s as usize] += 1;
            } else {
                // Items were skipped: seek this field forward.
                let from = self.cursor[s as usize];
                self.cursor[s as usize] =
                    from + at[from..].partition_point(|&x| (x as usize) < item);
                if let Some(&x) = at.get(self.cursor[s as usize])
                    && x as usize == item
                {
                    order.push(*j);
                    self.cursor[s as usize] += 1;
                }
            }
            if let Some(&x) = at.get(self.cursor[s as usize]) {
                self.heap.push(Reverse((x, s)));
            }
        }
    }
}

static EMPTY_KINDS: Kinds = Kinds::Const(Kind::Absent, 0);

fn is_descendant(snap: &Snapshot, mut n: u32, ancestor: u32) -> bool {
    while n != 0 {
        if n == ancestor {
            return true;
        }
        n = snap.footer().nodes[n as usize].parent;
    }
    false
}

fn write_display(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    use std::io::Write as _;
    let _ = write!(out, "{v}");
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's string escaping; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

impl Snapshot {
    /// Row `i` as a JSON value.
    pub fn row(&self, i: u64) -> Result<serde_json::Value> {
        if i >= self.rows() {
            return Err(Error::NotFound {
                what: "row",
                name: format!("{i} (the snapshot has {} rows)", self.rows()),
            });
        }
        // (The browser build decodes whole columns: its pages come from
        // the template of a remote source, and the picked reader's code
        // would only add to the page's weight.)
        #[cfg(not(target_arch = "wasm32"))]
        let mut e = Emitter::picked(self, None, &[i], None)?;
        #[cfg(target_arch = "wasm32")]
        let mut e = Emitter::new(self, None)?;
        let mut out = Vec::new();
        e.row(i, &mut out)?;
        serde_json::from_slice(&out).map_err(|err| Error::corrupt("row", i, err.to_string()))
    }

    /// Every row as JSON values.
    pub fn to_values(&self) -> Result<Vec<serde_json::Value>> {
        let mut e = Emitter::new(self, None)?;
        let mut out = Vec::new();
        // The row count comes from the file: never trust it for a reservation.
        let mut v = Vec::with_capacity(self.rows().min(1 << 16) as usize);
        for i in 0..self.rows() {
            out.clear();
            e.row(i, &mut out)?;
            v.push(
                serde_json::from_slice(&out)
                    .map_err(|err| Error::corrupt("row", i, err.to_string()))?,
            );
        }
        Ok(v)
    }

    /// Write rows as JSON (an array, or NDJSON) to `w`. Returns rows written.
    pub fn export(&self, w: &mut dyn Write, opts: &ExportOptions) -> Result<u64> {
        let rows = opts.rows.clone().unwrap_or(0..self.rows());
        let rows = rows.start.min(self.rows())..rows.end.min(self.rows());
        // A few rows of many: their columns are read at these rows only
        // (10 rows of 2M: 241 MB and 1.0 s decoding every column whole).
        #[cfg(not(target_arch = "wasm32"))]
        let few = rows.end - rows.start <= PICK_ROWS && (rows.end - rows.start) * 4 < self.rows();
        #[cfg(not(target_arch = "wasm32"))]
        let mut e = match few {
            true => {
                let picked: Vec<u64> = rows.clone().collect();
                Emitter::picked(self, opts.columns.as_deref(), &picked, opts.memory_budget)?
            }
            false => Emitter::with_budget(self, opts.columns.as_deref(), opts.memory_budget)?,
        };
        #[cfg(target_arch = "wasm32")]
        let mut e = Emitter::with_budget(self, opts.columns.as_deref(), opts.memory_budget)?;
        e.batched(opts.string_budget.unwrap_or(DEFAULT_STRING_BUDGET));
        // A few rows of a remote snapshot (a detail view, a page): fetch
        // what they need in parallel rounds first.
        if rows.end - rows.start <= PREFETCH_ROWS {
            e.prefetch(&rows.clone().collect::<Vec<_>>())?;
        }
        let mut out = Vec::with_capacity(SPILL_AT + (SPILL_AT >> 2));
        let mut spill = |out: &mut Vec<u8>| -> Result<()> {
            w.write_all(out).map_err(|e| Error::io(None, e))?;
            out.clear();
            Ok(())
        };
        if !opts.ndjson {
            out.push(b'[');
        }
        for (n, i) in rows.clone().enumerate() {
            if !opts.ndjson && n > 0 {
                out.push(b',');
            }
            if !opts.ndjson {
                out.push(b'\n');
            }
            e.row_spilling(i, &mut out, &mut spill)?;
            if opts.ndjson {
                out.push(b'\n');
            }
            e.spill_if_full(&mut out, &mut spill)?;
        }
        if !opts.ndjson {
            if !rows.is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(b"]\n");
        }
        e.flush(&mut out, &mut spill)?;
        w.flush().map_err(|e| Error::io(None, e))?;
        Ok(rows.end - rows.start)
    }
}

/// Writes chosen rows as JSON, decoding the needed columns once and string
/// chunks lazily: a row decodes only the chunks holding its own strings.
/// It owns a clone of the snapshot (no borrow), so it can be stored and
/// moved between threads.
pub struct RowWriter {
    emitter: Emitter,
}

impl std::fmt::Debug for RowWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowWriter").finish_non_exhaustive()
    }
}

/// The most rows of an export read at their items only ([`Emitter::picked`])
/// rather than by decoding the columns whole (when they are also less than
/// a quarter of the snapshot).
#[cfg(not(target_arch = "wasm32"))]
const PICK_ROWS: u64 = 10_000;

/// The most rows an export or a page prefetches for (see
/// [`RowWriter::prefetch`]).
const PREFETCH_ROWS: u64 = 1000;

impl RowWriter {
    /// Over a remote source, fetch in two parallel rounds what writing
    /// `rows` needs (the streams of the columns written, then the string
    /// chunks of these rows) instead of one read per section. Does nothing
    /// over a local source, nor for more than 1,000 rows.
    pub fn prefetch(&mut self, rows: &[u64]) -> Result<()> {
        if rows.len() as u64 > PREFETCH_ROWS {
            return Ok(());
        }
        let n = self.emitter.snap.rows();
        let rows: Vec<u64> = rows.iter().copied().filter(|&r| r < n).collect();
        self.emitter.prefetch(&rows)
    }

    /// Append row `row` as compact JSON to `out`.
    pub fn write_row(&mut self, row: u64, out: &mut Vec<u8>) -> Result<()> {
        self.write_rows(&[row], out)
    }

    /// Append `rows` as compact JSON objects separated by commas to `out`.
    /// Strings found in the snapshot's caches are written at once; the
    /// others are read after the rows are written, each chunk once for all
    /// of them (a page of rows sorted by one column holds strings spread
    /// over the whole table).
    pub fn write_rows(&mut self, rows: &[u64], out: &mut Vec<u8>) -> Result<()> {
        self.write_grouped(rows, rows.len(), out, &mut |_, _| {}, b"", true)
    }

    /// [`RowWriter::write_rows`] in groups of `group` rows, each group
    /// opened by `open(out, end)` (`end`: rows written once the group is)
    /// and closed by `close`; the strings of every group are read together
    /// at the end, each chunk once, and not kept in the snapshot's string
    /// cache (for a stream, which passes each row once).
    pub fn write_row_groups(
        &mut self,
        rows: &[u64],
        group: usize,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        self.write_grouped(rows, group, out, open, close, false)
    }

    /// Rows in groups (see [`RowWriter::write_row_groups`]), the deferred
    /// strings read at the end and kept in the string cache with `keep`;
    /// on error `out` is left as it was.
    fn write_grouped(
        &mut self,
        rows: &[u64],
        group: usize,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
        keep: bool,
    ) -> Result<()> {
        let n = self.emitter.snap.rows();
        if let Some(&bad) = rows.iter().find(|&&r| r >= n) {
            return Err(Error::NotFound {
                what: "row",
                name: format!("{bad} (the snapshot has {n} rows)"),
            });
        }
        self.emitter.deferred.clear();
        let mark = out.len();
        let r = self
            .emit_groups(rows, group, out, open, close)
            .and_then(|()| self.emitter.resolve_into(out, keep));
        if r.is_err() {
            self.emitter.deferred.clear();
            out.truncate(mark);
        }
        r
    }

    /// `rows` in groups of `group`: `open(out, rows written so far after
    /// this group)`, the group's rows separated by commas, `close`.
    fn emit_groups(
        &mut self,
        rows: &[u64],
        group: usize,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        let mut end = 0;
        for g in rows.chunks(group.max(1)) {
            end += g.len();
            open(out, end);
            for (j, &row) in g.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                self.emitter.row(row, out)?;
            }
            out.extend_from_slice(close);
        }
        Ok(())
    }

    /// Read the strings of `rows` ahead, each string chunk once for all of
    /// them, into a window for [`RowWriter::write_row_groups_with`] (which
    /// must then write these rows in this order). Keeps nothing in the
    /// snapshot's string caches.
    pub fn read_strings(&mut self, rows: &[u64]) -> Result<StringWindow> {
        self.check_rows(rows)?;
        self.emitter.collect = Some(Vec::new());
        let mut scratch = Vec::new();
        let r = (|| -> Result<()> {
            for &row in rows {
                scratch.clear();
                self.emitter.row(row, &mut scratch)?;
            }
            Ok(())
        })();
        let refs = self.emitter.collect.take().unwrap_or_default();
        r?;
        self.emitter.read_window(refs)
    }

    /// [`RowWriter::write_row_groups`] with the strings taken from `window`
    /// (made by [`RowWriter::read_strings`] for rows of which `rows` come
    /// next): nothing is read from the string tables. On error `out` is
    /// left as it was.
    pub fn write_row_groups_with(
        &mut self,
        rows: &[u64],
        group: usize,
        window: &mut StringWindow,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> Result<()> {
        self.check_rows(rows)?;
        self.emitter.window = Some(std::mem::take(window));
        let mark = out.len();
        let r = self.emit_groups(rows, group, out, open, close);
        *window = self.emitter.window.take().unwrap_or_default();
        if r.is_err() {
            out.truncate(mark);
        }
        r
    }

    fn check_rows(&self, rows: &[u64]) -> Result<()> {
        let n = self.emitter.snap.rows();
        match rows.iter().find(|&&r| r >= n) {
            Some(&bad) => Err(Error::NotFound {
                what: "row",
                name: format!("{bad} (the snapshot has {n} rows)"),
            }),
            None => Ok(()),
        }
    }

    /// A writer of the same columns sharing every column decoded so far
    /// (no copy): for another thread writing rows at the same time.
    pub fn fork(&self) -> RowWriter {
        RowWriter {
            emitter: self.emitter.fork(),
        }
    }

    /// Decode every column the writer writes now, so that forks made
    /// afterwards share them all.
    pub fn prime(&mut self) -> Result<()> {
        self.emitter.prime()
    }

    /// Bytes of decoded columns the writer holds (shared with its forks).
    pub fn column_bytes(&self) -> u64 {
        self.emitter.node_bytes()
    }

    /// Row `row` as a JSON value.
    pub fn row_json(&mut self, row: u64) -> Result<serde_json::Value> {
        let mut out = Vec::new();
        self.write_row(row, &mut out)?;
        serde_json::from_slice(&out).map_err(|err| Error::corrupt("row", row, err.to_string()))
    }
}

impl Snapshot {
    /// A writer for rows restricted to `columns` (column paths and what is
    /// under them; all when `None`). Decodes only the nodes needed.
    pub fn row_writer(&self, columns: Option<&[String]>) -> Result<RowWriter> {
        let mut emitter = Emitter::new(self, columns)?;
        // Strings come from the snapshot's shared caches (bounded), not
        // from chunks the writer would keep for its whole life.
        emitter.lazy = true;
        emitter.keep_budget = 0;
        Ok(RowWriter { emitter })
    }

    /// A writer like [`Snapshot::row_writer`] for `rows` only (any order,
    /// repeats allowed): each column is read at the items under these rows
    /// (fixed-width, bit-packed and dictionary values where they sit,
    /// varint streams walked to the last one needed) instead of decoded
    /// whole, so a page of 50 rows out of millions costs its rows, not its
    /// columns. Writing any other row is an error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn row_writer_for(&self, columns: Option<&[String]>, rows: &[u64]) -> Result<RowWriter> {
        let mut emitter = Emitter::picked(self, columns, rows, None)?;
        emitter.lazy = true;
        emitter.keep_budget = 0;
        emitter.decode_ahead();
        Ok(RowWriter { emitter })
    }

    /// The given rows as JSON values, restricted to `columns` (all when
    /// `None`). Only the string chunks referenced by these rows are decoded.
    pub fn rows_json(
        &self,
        rows: &[u64],
        columns: Option<&[String]>,
    ) -> Result<Vec<serde_json::Value>> {
        #[cfg(not(target_arch = "wasm32"))]
        let mut w = self.row_writer_for(columns, rows)?;
        #[cfg(target_arch = "wasm32")]
        let mut w = self.row_writer(columns)?;
        rows.iter().map(|&r| w.row_json(r)).collect()
    }
}
