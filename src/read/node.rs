//! Decoding one node's streams into typed vectors, and the row-aligned
//! [`ColumnView`] built on them.
//!
//! Every decode goes through a [`Decoder`]: it decodes each node (and each
//! node's kinds) at most once per operation, however many `mapped` streams
//! or parent-masked kinds refer to it, and charges every allocation sized
//! by the file to a memory budget before making it.

use super::Snapshot;
use crate::encoding::{self, Encoding};
use crate::error::{Error, Result};
use crate::format::{Role, SectionEntry};
use crate::model::{KIND_COUNT, Kind, NodeName};
use crate::timestamp::{self, Layout, Timestamp};
use std::sync::Arc;

/// The default memory budget of one read operation (a node decode, an
/// export, a verify): 1 GiB, or 64 bytes per byte of the file when that is
/// more. Allocations sized by counts in the file are charged to it before
/// they are made; going over is an [`Error::Budget`] that says how many bytes
/// the operation would need.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;

/// The longest chain of `mapped` streams (a column mapped from a column
/// mapped from ...) a reader follows; longer chains and cycles are refused
/// when the snapshot is opened.
pub const MAX_MAPPED_CHAIN: usize = 64;

/// The memory budget of a read operation on `snap` when none is given:
/// [`DEFAULT_MEMORY_BUDGET`], or 64 bytes per byte of the file when that is more.
pub fn default_budget(snap: &Snapshot) -> u64 {
    DEFAULT_MEMORY_BUDGET.max((snap.file_len()).saturating_mul(64))
}

/// A node with at least this many items keeps its kinds sparse when at most
/// one in [`SPARSE_SHARE`] of them differs from the most common kind.
const SPARSE_MIN_ITEMS: usize = 64;

/// Sparse kinds answer a lookup by binary search over the exceptions, dense
/// kinds by indexing: sparse pays only where it saves most of the memory
/// (9 bytes an exception against 5 bytes an item), so a column whose
/// exceptions are more than 1/16 of its items stays dense.
const SPARSE_SHARE: usize = 16;

/// Per-item kinds: one kind for all items, one byte per item, or the
/// exceptions to one dominant kind.
#[derive(Clone, Debug)]
pub enum Kinds {
    /// Every item has this kind.
    Const(Kind, usize),
    /// Kind tag of each item, and its rank among the items of its kind.
    Dense {
        /// Kind tag of each item.
        kinds: Vec<u8>,
        /// Rank of each item among the items of its kind.
        ranks: Vec<u32>,
    },
    /// Most items have one kind; the others are listed (a sparse column
    /// costs memory in proportion to its present items).
    Sparse(SparseKinds),
}

/// Kinds of a node whose items mostly have one kind.
#[derive(Clone, Debug)]
pub struct SparseKinds {
    len: usize,
    base: Kind,
    /// Items whose kind is not `base`, increasing.
    at: Vec<u32>,
    /// Kind of each listed item.
    kinds: Vec<u8>,
    /// Rank of each listed item among the items of its kind.
    ranks: Vec<u32>,
    /// `blocks[b]`: index into `at` of the first item at or past
    /// `b << BLOCK_SHIFT`; one more entry than blocks. A lookup in any
    /// order then searches only its block's few exceptions (at most
    /// 2^BLOCK_SHIFT, about 2^BLOCK_SHIFT / SPARSE_SHARE on average):
    /// a sorted page visits rows in random order, where a binary search over
    /// every exception costs a cache miss a step.
    blocks: Vec<u32>,
}

/// Items a block of [`SparseKinds::blocks`] spans (log2).
const BLOCK_SHIFT: u32 = 8;

impl SparseKinds {
    fn new(len: usize, base: Kind, at: Vec<u32>, kinds: Vec<u8>, ranks: Vec<u32>) -> SparseKinds {
        let nblocks = len.div_ceil(1 << BLOCK_SHIFT);
        let mut blocks = Vec::with_capacity(nblocks + 1);
        let mut j = 0;
        for b in 0..nblocks {
            let start = b << BLOCK_SHIFT;
            while j < at.len() && (at[j] as usize) < start {
                j += 1;
            }
            blocks.push(j as u32);
        }
        blocks.push(at.len() as u32);
        SparseKinds {
            len,
            base,
            at,
            kinds,
            ranks,
            blocks,
        }
    }

    /// Index into `at` of item `i` (`i < len`), or where it would be,
    /// searching only `i`'s block.
    #[inline]
    fn find_in_block(&self, i: usize) -> std::result::Result<usize, usize> {
        let b = i >> BLOCK_SHIFT;
        let (lo, hi) = match (self.blocks.get(b), self.blocks.get(b + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, (hi as usize).min(self.at.len())),
            _ => return self.at.binary_search_by(|&a| (a as usize).cmp(&i)),
        };
        let lo = lo.min(hi);
        let seg = &self.at[lo..hi];
        if seg.len() <= 16 {
            for (k, &a) in seg.iter().enumerate() {
                let a = a as usize;
                if a >= i {
                    return if a == i { Ok(lo + k) } else { Err(lo + k) };
                }
            }
            Err(hi)
        } else {
            match seg.binary_search_by(|&a| (a as usize).cmp(&i)) {
                Ok(k) => Ok(lo + k),
                Err(k) => Err(lo + k),
            }
        }
    }

    /// Index into `at` of item `i`, or where it would be. `hint` speeds up
    /// increasing lookups (it is where the last lookup ended).
    #[inline]
    fn find(&self, i: usize, hint: &mut usize) -> std::result::Result<usize, usize> {
        let at = &self.at;
        let h = (*hint).min(at.len());
        let r = if h == 0 || (at[h - 1] as usize) < i {
            match at.get(h).map(|&a| a as usize) {
                None => Err(h),
                Some(a) if a > i => Err(h),
                Some(a) if a == i => Ok(h),
                _ => match at.get(h + 1).map(|&a| a as usize) {
                    None => Err(h + 1),
                    Some(a) if a > i => Err(h + 1),
                    Some(a) if a == i => Ok(h + 1),
                    _ => self.find_in_block(i),
                },
            }
        } else {
            self.find_in_block(i)
        };
        *hint = match r {
            Ok(j) | Err(j) => j,
        };
        r
    }

    /// The kind most items have.
    pub fn base(&self) -> Kind {
        self.base
    }

    /// The items whose kind is not the base kind, increasing.
    pub fn exceptions(&self) -> &[u32] {
        &self.at
    }
}

impl Kinds {
    /// Build from one kind byte per item (already checked to be known kinds),
    /// choosing the cheaper representation.
    pub(super) fn from_dense(v: Vec<u8>) -> Kinds {
        let mut counts = [0usize; KIND_COUNT];
        for &k in &v {
            counts[k as usize] += 1;
        }
        let (base, nbase) = counts
            .iter()
            .enumerate()
            .max_by_key(|&(k, &c)| (c, std::cmp::Reverse(k)))
            .map(|(k, &c)| (k as u8, c))
            .unwrap_or((0, 0));
        let n = v.len();
        let mut next = [0u32; KIND_COUNT];
        if n >= SPARSE_MIN_ITEMS && (n - nbase) * SPARSE_SHARE <= n {
            // (The same rule as `sparse_base`, on the decoded counts.)
            let m = n - nbase;
            let mut at = Vec::with_capacity(m);
            let mut kinds = Vec::with_capacity(m);
            let mut ranks = Vec::with_capacity(m);
            for (i, &k) in v.iter().enumerate() {
                if k != base {
                    at.push(i as u32);
                    kinds.push(k);
                    ranks.push(next[k as usize]);
                    next[k as usize] += 1;
                }
            }
            return Kinds::Sparse(SparseKinds::new(
                n,
                Kind::from_u8(base).unwrap_or(Kind::Absent),
                at,
                kinds,
                ranks,
            ));
        }
        let ranks = v
            .iter()
            .map(|&k| {
                let p = next[k as usize];
                next[k as usize] += 1;
                p
            })
            .collect();
        Kinds::Dense { kinds: v, ranks }
    }

    /// Kind of item `i` (`Absent` past the end).
    #[inline]
    pub fn get(&self, i: usize) -> Kind {
        self.get_hinted(i, &mut 0)
    }

    /// Like [`Kinds::get`], faster for increasing `i` when `hint` is kept
    /// between calls (start it at 0).
    #[inline]
    pub fn get_hinted(&self, i: usize, hint: &mut usize) -> Kind {
        match self {
            Kinds::Const(k, n) => {
                if i < *n {
                    *k
                } else {
                    Kind::Absent
                }
            }
            Kinds::Dense { kinds, .. } => kinds
                .get(i)
                .and_then(|&b| Kind::from_u8(b))
                .unwrap_or(Kind::Absent),
            Kinds::Sparse(s) => {
                if i >= s.len {
                    return Kind::Absent;
                }
                match s.find(i, hint) {
                    Ok(j) => Kind::from_u8(s.kinds[j]).unwrap_or(Kind::Absent),
                    Err(_) => s.base,
                }
            }
        }
    }

    /// Kind of item `i` and its rank among the items of its kind, with one
    /// lookup (`hint` as for [`Kinds::get_hinted`]; `Absent` past the end).
    #[inline]
    pub fn get_and_rank(&self, i: usize, hint: &mut usize) -> (Kind, usize) {
        match self {
            Kinds::Const(k, n) => (if i < *n { *k } else { Kind::Absent }, i),
            Kinds::Dense { kinds, ranks } => (
                kinds
                    .get(i)
                    .and_then(|&b| Kind::from_u8(b))
                    .unwrap_or(Kind::Absent),
                ranks.get(i).map_or(0, |&r| r as usize),
            ),
            Kinds::Sparse(s) => {
                if i >= s.len {
                    return (Kind::Absent, 0);
                }
                match s.find(i, hint) {
                    Ok(j) => (
                        Kind::from_u8(s.kinds[j]).unwrap_or(Kind::Absent),
                        s.ranks[j] as usize,
                    ),
                    Err(j) => (s.base, i - j),
                }
            }
        }
    }

    /// Rank of item `i` among the items of its kind (`i < len`).
    #[inline]
    pub fn rank(&self, i: usize) -> usize {
        match self {
            Kinds::Const(..) => i,
            Kinds::Dense { ranks, .. } => ranks.get(i).map_or(0, |&r| r as usize),
            Kinds::Sparse(s) => match s.find(i, &mut 0) {
                Ok(j) => s.ranks[j] as usize,
                Err(j) => i - j,
            },
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            Kinds::Const(_, n) => *n,
            Kinds::Dense { kinds, .. } => kinds.len(),
            Kinds::Sparse(s) => s.len,
        }
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every item that is not `Absent`, increasing. Walks only the listed
    /// items of a sparse node whose base kind is `Absent`.
    pub fn present(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        match self {
            Kinds::Const(Kind::Absent, _) => Box::new(std::iter::empty()),
            Kinds::Const(_, n) => Box::new(0..*n),
            Kinds::Dense { kinds, .. } => Box::new(
                kinds
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| **k != Kind::Absent as u8)
                    .map(|(i, _)| i),
            ),
            Kinds::Sparse(s) if s.base == Kind::Absent => Box::new(
                s.at.iter()
                    .zip(&s.kinds)
                    .filter(|(_, k)| **k != Kind::Absent as u8)
                    .map(|(&i, _)| i as usize),
            ),
            Kinds::Sparse(s) => {
                let mut h = 0;
                Box::new((0..s.len).filter(move |&i| self.get_hinted(i, &mut h) != Kind::Absent))
            }
        }
    }

    /// Every item of kind `kind`, increasing.
    pub fn items_of(&self, kind: Kind) -> Box<dyn Iterator<Item = usize> + '_> {
        let k8 = kind as u8;
        match self {
            Kinds::Const(k, n) if *k == kind => Box::new(0..*n),
            Kinds::Const(..) => Box::new(std::iter::empty()),
            Kinds::Dense { kinds, .. } => Box::new(
                kinds
                    .iter()
                    .enumerate()
                    .filter(move |(_, k)| **k == k8)
                    .map(|(i, _)| i),
            ),
            Kinds::Sparse(s) if s.base != kind => Box::new(
                s.at.iter()
                    .zip(&s.kinds)
                    .filter(move |(_, k)| **k == k8)
                    .map(|(&i, _)| i as usize),
            ),
            Kinds::Sparse(s) => {
                let mut h = 0;
                Box::new((0..s.len).filter(move |&i| s.find(i, &mut h).is_err()))
            }
        }
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Kinds::Const(..) => 0,
            Kinds::Dense { kinds, .. } => kinds.len() * 5,
            Kinds::Sparse(s) => s.at.len() * 9 + s.blocks.len() * 4,
        }
    }
}

/// Every stream of one node, decoded. This is the low-level, per-kind
/// packed form: payload vectors are dense per kind, so the payload of item
/// `i` of kind `k` is at index [`NodeData::pos`]`(i)` of that kind's vector,
/// not at index `i`. For values by row, use [`ColumnView`]
/// ([`Snapshot::column`]).
#[derive(Clone, Debug)]
pub struct NodeData {
    /// The node.
    pub node: u32,
    /// Kinds of the items.
    pub kinds: Arc<Kinds>,
    /// `Int` payloads.
    pub ints: Vec<i64>,
    /// `UInt` payloads.
    pub uints: Vec<u64>,
    /// `Float` payloads.
    pub floats: Vec<f64>,
    /// `Str` payloads (ids into the node's table).
    pub strs: Vec<u32>,
    /// `Time` payloads: UTC seconds.
    pub ts_secs: Vec<i64>,
    /// `Time` payloads: nanoseconds (empty when all zero).
    pub ts_nanos: Vec<u32>,
    /// `Time` payloads: layout bytes (empty when all equal `ts_layout_const`).
    pub ts_layout: Vec<u8>,
    /// The layout of every `Time` item when `ts_layout` is empty.
    pub ts_layout_const: u8,
    /// `Time` payloads: offset minutes (empty when all zero).
    pub ts_offset: Vec<i16>,
    /// `Array` payloads: element counts.
    pub lens: Vec<u32>,
    /// First element of each array item, plus the total at the end (an
    /// element column has at most 2^32-1 items: `u32`s, half the memory).
    pub list_starts: Vec<u32>,
    /// `NumText` payloads: integer literals outside `[-2^63, 2^64)`, as
    /// written (format version 5).
    pub num_texts: Vec<Box<str>>,
}

/// Decodes nodes of one snapshot for one operation: each node and each
/// node's kinds at most once, every file-sized allocation charged to a
/// memory budget first.
pub(crate) struct Decoder {
    snap: Snapshot,
    budget: u64,
    used: u64,
    kinds: Vec<Option<Arc<Kinds>>>,
    nodes: Vec<Option<Arc<NodeData>>>,
    /// Nodes being decoded (on the current chain of mapped sources): meeting
    /// one again is a cycle.
    decoding: Vec<bool>,
    /// Length of the longest chain of mapped streams ending at each decoded
    /// node (0 without mapped streams): the same whatever order nodes are
    /// decoded in, so a chain over the limit is refused however it is met.
    chain: Vec<usize>,
    /// Keep the source nodes of mapped streams decoded for the rest of the
    /// operation (other nodes may map from them). Off for a one-node decode
    /// ([`NodeData::decode`]): each source is dropped once the node mapped
    /// from it is decoded, so a chain of mapped streams holds two nodes'
    /// payloads at a time, not every node of the chain.
    keep_sources: bool,
}

impl Decoder {
    /// A decoder with `budget` bytes (the snapshot's default when `None`).
    pub(crate) fn new(snap: &Snapshot, budget: Option<u64>) -> Self {
        let n = snap.footer().nodes.len();
        Decoder {
            snap: snap.clone(),
            budget: budget.unwrap_or_else(|| default_budget(snap)),
            used: 0,
            kinds: vec![None; n],
            nodes: vec![None; n],
            decoding: vec![false; n],
            chain: vec![0; n],
            keep_sources: true,
        }
    }

    /// A decoder sharing every node and kinds this one decoded so far (the
    /// same `Arc`s), with the same budget and charge.
    pub(crate) fn fork(&self) -> Decoder {
        Decoder {
            snap: self.snap.clone(),
            budget: self.budget,
            used: self.used,
            kinds: self.kinds.clone(),
            nodes: self.nodes.clone(),
            decoding: vec![false; self.decoding.len()],
            chain: self.chain.clone(),
            keep_sources: self.keep_sources,
        }
    }

    /// Bytes charged to this decoder (the decoded nodes it holds).
    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    /// Bytes of the budget not charged yet.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn left(&self) -> u64 {
        self.budget.saturating_sub(self.used)
    }

    /// [`Decoder::fork`] allowed `extra` bytes more than this one has used
    /// (a share of what is left, for a fork working beside others).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn fork_within(&self, extra: u64) -> Decoder {
        let mut f = self.fork();
        f.budget = self.used.saturating_add(extra).min(self.budget);
        f
    }

    /// Take what fork `f` (made at `base` bytes used) decoded where this
    /// one has nothing, and what it charged since.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn absorb(&mut self, f: Decoder, base: u64) {
        for (m, t) in self.kinds.iter_mut().zip(f.kinds) {
            if m.is_none() {
                *m = t;
            }
        }
        for (m, t) in self.nodes.iter_mut().zip(f.nodes) {
            if m.is_none() {
                *m = t;
            }
        }
        for (c, t) in self.chain.iter_mut().zip(f.chain) {
            *c = (*c).max(t);
        }
        self.used = self.used.saturating_add(f.used.saturating_sub(base));
    }

    /// Refuse an allocation of `bytes` that would take the operation over
    /// its budget (without charging it: for buffers that are dropped soon).
    pub(super) fn fits(&self, bytes: u64, what: &str) -> Result<()> {
        let need = self.used.saturating_add(bytes);
        if need > self.budget {
            return Err(Error::Budget {
                what: what.to_string(),
                need,
                budget: self.budget,
            });
        }
        Ok(())
    }

    /// Charge `bytes` kept for the rest of the operation.
    pub(super) fn charge(&mut self, bytes: u64, what: &str) -> Result<()> {
        self.fits(bytes, what)?;
        self.used += bytes;
        Ok(())
    }

    /// The kinds of `node`, decoded once.
    pub(crate) fn kinds(&mut self, node: u32) -> Result<Arc<Kinds>> {
        self.kinds_at(node, 0)
    }

    /// Every stream of `node`, decoded once.
    pub(crate) fn node(&mut self, node: u32) -> Result<Arc<NodeData>> {
        self.node_at(node, 0)
    }

    /// The footer (a shared handle, so a node's metadata can be held while
    /// the decoder's caches are updated).
    fn footer(&self) -> Arc<crate::format::Footer> {
        self.snap.footer_arc().clone()
    }

    fn meta(footer: &crate::format::Footer, node: u32) -> Result<&crate::format::NodeMeta> {
        footer
            .nodes
            .get(node as usize)
            .ok_or_else(|| Error::NotFound {
                what: "node",
                name: node.to_string(),
            })
    }

    fn kinds_at(&mut self, node: u32, depth: usize) -> Result<Arc<Kinds>> {
        let footer = self.footer();
        let meta = Self::meta(&footer, node)?;
        if let Some(k) = &self.kinds[node as usize] {
            return Ok(k.clone());
        }
        let k = Arc::new(self.decode_kinds(node, meta, depth)?);
        self.charge(
            k.heap_bytes() as u64,
            &format!("column `{}` kinds", self.snap.path(node)),
        )?;
        self.kinds[node as usize] = Some(k.clone());
        Ok(k)
    }

    fn node_at(&mut self, node: u32, depth: usize) -> Result<Arc<NodeData>> {
        let footer = self.footer();
        let meta = Self::meta(&footer, node)?;
        if let Some(d) = &self.nodes[node as usize] {
            return Ok(d.clone());
        }
        if depth > MAX_MAPPED_CHAIN {
            return Err(Error::corrupt(
                format!("column `{}`", self.snap.path(node)),
                0,
                format!("mapped streams chained deeper than {MAX_MAPPED_CHAIN}"),
            ));
        }
        if self.decoding[node as usize] {
            return Err(Error::corrupt(
                format!("column `{}`", self.snap.path(node)),
                0,
                format!("mapped streams form a cycle through node {node}"),
            ));
        }
        let plan = self.snap.prefetch_node(node)?;
        self.snap.expect_node(node)?;
        self.decoding[node as usize] = true;
        let d = self.decode_node(node, meta, depth);
        self.decoding[node as usize] = false;
        if let Some(p) = plan {
            self.snap.release_fetched(&p);
        }
        let d = Arc::new(d?);
        self.nodes[node as usize] = Some(d.clone());
        Ok(d)
    }

    fn decode_node(
        &mut self,
        node: u32,
        meta: &crate::format::NodeMeta,
        depth: usize,
    ) -> Result<NodeData> {
        let snap = self.snap.clone();
        let snap = &snap;
        if meta.items > u32::MAX as u64 {
            return Err(Error::corrupt(
                format!("node {node}"),
                0,
                format!("{} items exceed the limit of 2^32-1", meta.items),
            ));
        }
        let path = snap.path(node).to_string();
        let what = |role: Role| format!("column `{path}` {} stream", role.name());
        let count = |k: Kind| meta.count(k) as usize;
        let load = |role: Role| -> Result<Option<(Encoding, bytes::Bytes)>> {
            match meta.stream(role) {
                None => Ok(None),
                Some(s) => {
                    let e: &SectionEntry = &snap.footer().sections[s as usize];
                    Ok(Some((e.encoding, snap.section(s)?)))
                }
            }
        };
        let kinds = self.kinds_at(node, depth)?;
        // Payload vectors: charged before they are allocated (a dictionary
        // of one value holds any count in zero bytes).
        for (role, kind, size) in [
            (Role::Ints, Kind::Int, 8),
            (Role::UInts, Kind::UInt, 8),
            (Role::Floats, Kind::Float, 8),
            (Role::Strs, Kind::Str, 4),
            (Role::TsSecs, Kind::Time, 8 + 4 + 1 + 2),
            (Role::Lens, Kind::Array, 4 + 4),
            (Role::NumText, Kind::NumText, 16 + 16),
        ] {
            if meta.stream(role).is_some() {
                self.charge(meta.count(kind).saturating_mul(size), &what(role))?;
            }
        }
        // Each payload's vector is allocated before any section is read:
        // a column's arrays are what a reader keeps, and allocated ahead of
        // the compressed bytes, the decompressed stream and the decoder's
        // window they sit below them, so those free into one region that
        // the next column reuses (a WebAssembly memory never shrinks: a
        // hole left under a kept array costs until the page closes).
        let mut ints: Vec<i64> = presized(snap, meta, Role::Ints, count(Kind::Int), 0);
        let mut uints: Vec<u64> = presized(snap, meta, Role::UInts, count(Kind::UInt), 0);
        let mut floats: Vec<f64> = presized(snap, meta, Role::Floats, count(Kind::Float), 0);
        let mut strs: Vec<u32> = presized(snap, meta, Role::Strs, count(Kind::Str), 0);
        let mut ts_secs: Vec<i64> = presized(snap, meta, Role::TsSecs, count(Kind::Time), 0);
        // An array node's starts before its lengths: the starts are what
        // its element columns keep (their row offsets), the lengths what a
        // list column keeps; each is made from the other's stream.
        let mut list_starts: Vec<u32> = presized(snap, meta, Role::Lens, count(Kind::Array), 1);
        let mut lens: Vec<u32> = presized(snap, meta, Role::Lens, count(Kind::Array), 0);
        match load(Role::Ints)? {
            Some((Encoding::Mapped, b)) => {
                ints = self.mapped(node, &kinds, Kind::Int, &b, depth, &what(Role::Ints), Ok)?
            }
            Some((Encoding::Based, b)) => self.based(
                node,
                &kinds,
                Kind::Int,
                &b,
                count(Kind::Int),
                depth,
                &what(Role::Ints),
                &mut ints,
            )?,
            Some((e, b)) => {
                encoding::decode_i64s_into(e, &b, count(Kind::Int), &what(Role::Ints), &mut ints)?
            }
            None => {}
        }
        if let Some((e, b)) = load(Role::UInts)? {
            encoding::decode_u64s_into(e, &b, count(Kind::UInt), &what(Role::UInts), &mut uints)?;
        }
        if let Some((e, b)) = load(Role::Floats)? {
            encoding::decode_f64s_into(
                e,
                &b,
                count(Kind::Float),
                &what(Role::Floats),
                &mut floats,
            )?;
        }
        match load(Role::Strs)? {
            Some((Encoding::Mapped, b)) => {
                strs = self.mapped_ids(node, &kinds, &b, depth, &what(Role::Strs))?
            }
            Some((Encoding::Based, b)) => {
                let w = what(Role::Strs);
                let mut v = Vec::new();
                self.based(
                    node,
                    &kinds,
                    Kind::Str,
                    &b,
                    count(Kind::Str),
                    depth,
                    &w,
                    &mut v,
                )?;
                strs = string_ids(v, &w)?;
            }
            Some((e, b)) => encoding::decode_str_ids_into(
                e,
                &b,
                count(Kind::Str),
                &what(Role::Strs),
                &mut strs,
            )?,
            None => {}
        }
        let nt = count(Kind::Time);
        match load(Role::TsSecs)? {
            Some((Encoding::Based, b)) => self.based(
                node,
                &kinds,
                Kind::Time,
                &b,
                nt,
                depth,
                &what(Role::TsSecs),
                &mut ts_secs,
            )?,
            Some((e, b)) => {
                encoding::decode_i64s_into(e, &b, nt, &what(Role::TsSecs), &mut ts_secs)?
            }
            None => {}
        }
        let ts_nanos = match load(Role::TsNanos)? {
            Some((e, b)) => nanos(
                encoding::decode_u64s(e, &b, nt, &what(Role::TsNanos))?,
                &what(Role::TsNanos),
            )?,
            None => Vec::new(),
        };
        let ts_layout = match load(Role::TsLayout)? {
            Some((e, b)) => encoding::decode_u8s(e, &b, nt, &what(Role::TsLayout))?,
            None => Vec::new(),
        };
        let ts_offset = match load(Role::TsOffset)? {
            Some((e, b)) => offsets(
                encoding::decode_i64s(e, &b, nt, &what(Role::TsOffset))?,
                &what(Role::TsOffset),
            )?,
            None => Vec::new(),
        };
        if let Some((e, b)) = load(Role::Lens)? {
            encoding::decode_u32s_into(e, &b, count(Kind::Array), &what(Role::Lens), &mut lens)?;
        }
        let num_texts = match load(Role::NumText)? {
            Some((e, b)) => {
                self.charge(b.len() as u64, &what(Role::NumText))?;
                encoding::numtext::decode(e, &b, count(Kind::NumText), &what(Role::NumText))?
            }
            None => Vec::new(),
        };
        list_starts.reserve_exact(lens.len() + 1);
        let mut acc = 0u32;
        list_starts.push(0);
        for &l in &lens {
            acc = acc.checked_add(l).ok_or_else(|| {
                Error::corrupt(what(Role::Lens), 0, "arrays hold more than 2^32-1 elements")
            })?;
            list_starts.push(acc);
        }
        if !lens.is_empty() {
            // The arrays' lengths must add up to the element column's items
            // (a footer forged with valid checksums otherwise moved
            // elements from row to row).
            let held = match snap.children(node).1 {
                Some(e) => snap.footer().nodes.get(e as usize).map_or(0, |m| m.items),
                None => 0,
            };
            if u64::from(acc) != held {
                return Err(Error::corrupt(
                    what(Role::Lens),
                    0,
                    format!("the arrays hold {acc} elements, but the element column has {held}"),
                ));
            }
        }
        let data = NodeData {
            node,
            kinds,
            ints,
            uints,
            floats,
            strs,
            ts_secs,
            ts_nanos,
            ts_layout,
            ts_layout_const: meta.ts_layout,
            ts_offset,
            lens,
            list_starts,
            num_texts,
        };
        data.check_payloads(snap, meta, &what, None)?;
        Ok(data)
    }

    /// Decode the kinds of `node` (through the parent's kinds for
    /// `ParentMasked` kinds).
    fn decode_kinds(
        &mut self,
        node: u32,
        meta: &crate::format::NodeMeta,
        depth: usize,
    ) -> Result<Kinds> {
        let snap = self.snap.clone();
        let snap = &snap;
        let items = usize::try_from(meta.items)
            .map_err(|_| Error::corrupt(format!("node {node}"), 0, "too many items"))?;
        let path = snap.path(node).to_string();
        let what = |role: Role| format!("column `{path}` {} stream", role.name());
        if let Some(k) = meta.const_kind() {
            return Ok(Kinds::Const(k, items));
        }
        let present = meta.counts.iter().filter(|&&c| c > 0).count();
        let s = meta
            .stream(Role::Kinds)
            .ok_or_else(|| Error::corrupt(what(Role::Kinds), 0, "missing"))?;
        let e = &snap.footer().sections[s as usize];
        let need =
            1 + present + (items * encoding::bitpack::width_for(present) as usize).div_ceil(8);
        if e.encoding == Encoding::BitPacked && e.raw_len as usize != need {
            return Err(Error::corrupt(
                what(Role::Kinds),
                e.offset,
                format!("raw length {} but {items} items need {need}", e.raw_len),
            ));
        }
        let enc = e.encoding;
        // A node whose items mostly share one kind (the footer's counts say
        // so) is decoded straight into its exceptions when the stream is a
        // bitmap over all items.
        if let Some(base) = sparse_base(&meta.counts, items) {
            let direct = match enc {
                Encoding::BitPacked => true,
                Encoding::ParentMasked => matches!(
                    *self.masked_parent(node, meta, depth, &what(Role::Kinds))?,
                    Kinds::Const(Kind::Object, _)
                ),
                _ => false,
            };
            if direct {
                let b = snap.section(s)?;
                let (at, kinds) =
                    encoding::bitpack::decode_except(&b, items, base as u8, &what(Role::Kinds))?;
                return sparse_checked(items, base, at, kinds, &meta.counts, &what(Role::Kinds));
            }
        }
        // One byte per item while decoding, then a rank per item unless the
        // kinds turn out sparse: 5 bytes per item at most.
        self.fits(meta.items.saturating_mul(5), &what(Role::Kinds))?;
        let b = snap.section(s)?;
        let v = if enc == Encoding::ParentMasked {
            self.parent_masked(node, meta, items, &b, depth, &what(Role::Kinds))?
        } else {
            encoding::decode_u8s(enc, &b, items, &what(Role::Kinds))?
        };
        drop(b);
        let mut got = [0u64; KIND_COUNT];
        for &k in &v {
            if k as usize >= KIND_COUNT {
                return Err(Error::corrupt(
                    what(Role::Kinds),
                    0,
                    format!("unknown kind {k}"),
                ));
            }
            got[k as usize] += 1;
        }
        if got != meta.counts {
            return Err(Error::corrupt(
                what(Role::Kinds),
                0,
                format!(
                    "kind counts {got:?} differ from the footer's {:?}",
                    meta.counts
                ),
            ));
        }
        Ok(Kinds::from_dense(v))
    }

    /// Decode a `Mapped` stream: the payload of every item of kind `kind` is
    /// the mapping's value for the source node's string id at the same item,
    /// converted by `conv` as it is read (into the payload vector's own
    /// type, allocated once at its final size: no `i64` vector in between).
    #[allow(clippy::too_many_arguments)]
    fn mapped<T>(
        &mut self,
        node: u32,
        kinds: &Kinds,
        kind: Kind,
        b: &[u8],
        depth: usize,
        what: &str,
        conv: impl Fn(i64) -> Result<T>,
    ) -> Result<Vec<T>> {
        let (m, src) = self.mapped_source(node, kinds.len(), b, depth, what)?;
        // The footer's count of the kind (charged to the budget before the
        // decode); a wrong count only costs a reallocation.
        let n = self.snap.footer().nodes[node as usize].count(kind);
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(kinds.len()));
        let mut h = 0;
        let look = m.lookup();
        for i in kinds.items_of(kind) {
            let (k, r) = src.kinds.get_and_rank(i, &mut h);
            let v = (k == Kind::Str)
                .then(|| src.strs.get(r).copied())
                .flatten()
                .and_then(|id| look.get(id))
                .ok_or_else(|| no_mapped_value(what, i))?;
            out.push(conv(v)?);
        }
        if !self.keep_sources {
            self.nodes[m.source as usize] = None;
        }
        Ok(out)
    }

    /// [`Decoder::mapped`] for string ids. When this node's items and its
    /// source's are all strings and the source was decoded for this stream
    /// alone, the source's ids are replaced by their mapped values where
    /// they lie: no second vector per link of a chain of mappings
    /// (`user.login` mapped from a URL column mapped from another ...).
    fn mapped_ids(
        &mut self,
        node: u32,
        kinds: &Kinds,
        b: &[u8],
        depth: usize,
        what: &str,
    ) -> Result<Vec<u32>> {
        let id = |v: i64, what: &str| {
            u32::try_from(v)
                .map_err(|_| Error::corrupt(what, 0, format!("string id {v} out of range")))
        };
        let items = kinds.len();
        if !self.keep_sources && matches!(kinds, Kinds::Const(Kind::Str, _)) {
            let (m, src) = self.mapped_source(node, items, b, depth, what)?;
            if matches!(*src.kinds, Kinds::Const(Kind::Str, _)) && src.strs.len() == items {
                self.nodes[m.source as usize] = None;
                match Arc::try_unwrap(src) {
                    Ok(d) => {
                        let mut ids = d.strs;
                        let look = m.lookup();
                        for (i, v) in ids.iter_mut().enumerate() {
                            *v = id(look.get(*v).ok_or_else(|| no_mapped_value(what, i))?, what)?;
                        }
                        return Ok(ids);
                    }
                    // Held elsewhere too: kept, and read as below.
                    Err(src) => self.nodes[m.source as usize] = Some(src),
                }
            }
        }
        self.mapped(node, kinds, Kind::Str, b, depth, what, |v| id(v, what))
    }

    /// The mapping of a mapped stream of `node` (`items` items) and its
    /// source node, decoded (once: a second call answers from the decoded
    /// nodes), the chain of mappings checked.
    fn mapped_source(
        &mut self,
        node: u32,
        items: usize,
        b: &[u8],
        depth: usize,
        what: &str,
    ) -> Result<(encoding::mapped::Mapping, Arc<NodeData>)> {
        let m = encoding::mapped::decode(b, items, what)?;
        let src = self.source_at(node, m.source, depth, what)?;
        Ok((m, src))
    }

    /// The source node of a stream of `node` that names one (`mapped`,
    /// `based`), decoded (once: a second call answers from the decoded
    /// nodes), after checking it may be a source and the chain it ends.
    fn source_at(
        &mut self,
        node: u32,
        source: u32,
        depth: usize,
        what: &str,
    ) -> Result<Arc<NodeData>> {
        check_source(&self.snap, node, source).map_err(|d| Error::corrupt(what, 0, d))?;
        let src = self.node_at(source, depth + 1)?;
        let c = self.chain[source as usize] + 1;
        if c > MAX_MAPPED_CHAIN {
            return Err(Error::corrupt(
                what,
                0,
                format!("mapped streams chained {c} deep (the limit is {MAX_MAPPED_CHAIN})"),
            ));
        }
        let slot = &mut self.chain[node as usize];
        *slot = (*slot).max(c);
        Ok(src)
    }

    /// Decode a `based` stream of the payloads of `node`'s items of kind
    /// `kind` (Int, Str or Time): each is the source node's payload at the
    /// same item (an item of the same kind) plus the item's delta.
    #[allow(clippy::too_many_arguments)]
    fn based(
        &mut self,
        node: u32,
        kinds: &Kinds,
        kind: Kind,
        b: &[u8],
        count: usize,
        depth: usize,
        what: &str,
        out: &mut Vec<i64>,
    ) -> Result<()> {
        let (source, rest) = encoding::based::split(b, what)?;
        let src = self.source_at(node, source, depth, what)?;
        encoding::decode_i64s_into(Encoding::ZigzagVarint, rest, count, what, out)?;
        let mut h = 0;
        for (d, i) in out.iter_mut().zip(kinds.items_of(kind)) {
            let (k, r) = src.kinds.get_and_rank(i, &mut h);
            let base = (k == kind)
                .then(|| src.payload(kind, r))
                .flatten()
                .ok_or_else(|| no_base(what, kind, i))?;
            *d = encoding::based::apply(base, *d, what, i)?;
        }
        if !self.keep_sources {
            self.nodes[source as usize] = None;
        }
        Ok(())
    }

    /// The kinds of the parent of `node`, whose kinds are parent-masked,
    /// after checking that the node may have such kinds.
    fn masked_parent(
        &mut self,
        node: u32,
        meta: &crate::format::NodeMeta,
        depth: usize,
        what: &str,
    ) -> Result<Arc<Kinds>> {
        if node == 0 || !matches!(meta.name, NodeName::Key(_)) || depth > 256 {
            return Err(Error::corrupt(
                what,
                0,
                "parent-masked kinds on a node that is not an object field",
            ));
        }
        let parent = meta.parent;
        if parent >= node || self.snap.footer().nodes[parent as usize].items != meta.items {
            return Err(Error::corrupt(what, 0, "parent has a different item count"));
        }
        self.kinds_at(parent, depth + 1)
    }

    /// Expand `ParentMasked` kinds: bit-packed kinds of the items whose
    /// parent item is an object; every other item is `Absent`.
    fn parent_masked(
        &mut self,
        node: u32,
        meta: &crate::format::NodeMeta,
        items: usize,
        b: &[u8],
        depth: usize,
        what: &str,
    ) -> Result<Vec<u8>> {
        let parent = meta.parent;
        let pk = self.masked_parent(node, meta, depth, what)?;
        let under = self.snap.footer().nodes[parent as usize].count(Kind::Object) as usize;
        let sub = encoding::bitpack::decode(b, under, what)?;
        let mut out = vec![Kind::Absent as u8; items];
        for (i, k) in pk.items_of(Kind::Object).zip(sub) {
            out[i] = k;
        }
        Ok(out)
    }
}

/// An empty vector with room for the `count` values of `node`'s stream
/// `role` and `extra` more, allocated before its section is read (see
/// `decode_node`). Room only for a count the section can plausibly hold:
/// every value takes at least a byte once decompressed, and the
/// decompressed length must be one the decompressor would allocate up
/// front for the stored bytes, so a hostile footer's count is never
/// allocated ahead of its section (a constant dictionary, whose values
/// take no byte, decodes as before).
fn presized<T>(
    snap: &Snapshot,
    meta: &crate::format::NodeMeta,
    role: Role,
    count: usize,
    extra: usize,
) -> Vec<T> {
    let mut v = Vec::new();
    if let Some(e) = meta
        .stream(role)
        .and_then(|s| snap.footer().sections.get(s as usize))
        && !e.encoding.has_source()
        && count as u64 <= u64::from(e.raw_len)
        && e.raw_len as usize <= crate::compress::plausible_len(e.stored_len as usize)
    {
        // A refused reservation leaves the vector to grow as it decodes.
        let _ = v.try_reserve_exact(count.saturating_add(extra));
    }
    v
}

/// A mapped stream's item whose source value has no mapping.
fn no_mapped_value(what: &str, i: usize) -> Error {
    Error::corrupt(what, 0, format!("item {i} has no mapped value"))
}

/// Nanoseconds of timestamps, each checked to fit a `u32`.
pub(super) fn nanos(v: Vec<u64>, what: &str) -> Result<Vec<u32>> {
    v.into_iter()
        .map(|v| u32::try_from(v).map_err(|_| Error::corrupt(what, 0, "nanos exceed u32")))
        .collect()
}

/// Offsets (minutes) of timestamps, each checked to fit an `i16`.
pub(super) fn offsets(v: Vec<i64>, what: &str) -> Result<Vec<i16>> {
    v.into_iter()
        .map(|v| i16::try_from(v).map_err(|_| Error::corrupt(what, 0, "offset exceeds i16")))
        .collect()
}

impl NodeData {
    /// The `rank`-th payload of kind `kind` (Int, Str as its id, Time as
    /// its seconds) as an `i64` (what a `based` stream adds to).
    pub(super) fn payload(&self, kind: Kind, rank: usize) -> Option<i64> {
        match kind {
            Kind::Int => self.ints.get(rank).copied(),
            Kind::Str => self.strs.get(rank).map(|&id| id as i64),
            Kind::Time => self.ts_secs.get(rank).copied(),
            _ => None,
        }
    }

    /// The checks of the payloads read (whole, or at the `ranks` of a few
    /// `Time` items): uints above the i64 range, finite floats, string ids
    /// in the table, known and formattable timestamps.
    pub(super) fn check_payloads(
        &self,
        snap: &Snapshot,
        meta: &crate::format::NodeMeta,
        what: &dyn Fn(Role) -> String,
        ranks: Option<&[usize]>,
    ) -> Result<()> {
        if self.uints.iter().any(|&u| u <= i64::MAX as u64) {
            return Err(Error::corrupt(
                what(Role::UInts),
                0,
                "uint value within i64 range",
            ));
        }
        if self.floats.iter().any(|f| !f.is_finite()) {
            return Err(Error::corrupt(
                what(Role::Floats),
                0,
                "NaN or infinite float",
            ));
        }
        if !self.strs.is_empty() {
            let n = snap
                .footer()
                .tables
                .get(meta.table as usize)
                .map_or(0, |t| t.n_strings);
            if let Some(bad) = self.strs.iter().find(|&&id| id as u64 >= n) {
                return Err(Error::corrupt(
                    what(Role::Strs),
                    0,
                    format!("string id {bad} out of range (table has {n})"),
                ));
            }
        }
        let nt = ranks.map_or(meta.count(Kind::Time) as usize, <[usize]>::len);
        if meta.count(Kind::Time) > 0
            && (meta.ts_layout > Layout::MAX || self.ts_layout.iter().any(|&l| l > Layout::MAX))
        {
            return Err(Error::corrupt(
                what(Role::TsLayout),
                0,
                "unknown timestamp layout",
            ));
        }
        // No nanosecond and no offset stream (the common case): every
        // timestamp is valid exactly when its seconds are in range, whatever
        // its layout (checked above), so only the seconds are scanned.
        let plain = self.ts_nanos.is_empty() && self.ts_offset.is_empty();
        let first_bad = if plain {
            self.ts_secs
                .iter()
                .take(nt)
                .position(|&s| !timestamp::valid_plain_secs(s))
        } else {
            (0..nt).find(|&i| !timestamp::validate(&self.timestamp(i)))
        };
        if let Some(i) = first_bad {
            let at = ranks.and_then(|r| r.get(i).copied()).unwrap_or(i);
            return Err(Error::corrupt(
                what(Role::TsSecs),
                0,
                format!("timestamp {at} cannot be formatted"),
            ));
        }
        Ok(())
    }
}

/// The kind to keep implicit when a node of `items` items with these kind
/// counts is kept sparse: the most common kind, when at least 3/4 of the
/// items have it.
fn sparse_base(counts: &[u64; KIND_COUNT], items: usize) -> Option<Kind> {
    let (k, &c) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(k, &c)| (c, std::cmp::Reverse(k)))?;
    let rest = (items as u64).checked_sub(c)?;
    (items >= SPARSE_MIN_ITEMS && rest * SPARSE_SHARE as u64 <= items as u64)
        .then(|| Kind::from_u8(k as u8))
        .flatten()
}

/// Sparse kinds from the items that differ from `base`, checked against
/// the footer's counts.
fn sparse_checked(
    items: usize,
    base: Kind,
    at: Vec<u32>,
    kinds: Vec<u8>,
    counts: &[u64; KIND_COUNT],
    what: &str,
) -> Result<Kinds> {
    let mut got = [0u64; KIND_COUNT];
    let mut ranks = Vec::with_capacity(kinds.len());
    for &k in &kinds {
        if k as usize >= KIND_COUNT {
            return Err(Error::corrupt(what, 0, format!("unknown kind {k}")));
        }
        ranks.push(got[k as usize] as u32);
        got[k as usize] += 1;
    }
    got[base as usize] = (items - at.len()) as u64;
    if &got != counts {
        return Err(Error::corrupt(
            what,
            0,
            format!("kind counts {got:?} differ from the footer's {counts:?}"),
        ));
    }
    Ok(Kinds::Sparse(SparseKinds::new(
        items, base, at, kinds, ranks,
    )))
}

/// Why `source` cannot be the source of a mapped stream of `node`, if it
/// cannot: it must be another existing node with the same item count and
/// the same domain.
pub(super) fn check_source(
    snap: &Snapshot,
    node: u32,
    source: u32,
) -> std::result::Result<(), String> {
    let nodes = &snap.footer().nodes;
    if source == node
        || source as usize >= nodes.len()
        || nodes[source as usize].items != nodes[node as usize].items
        || domain_of(snap, source) != domain_of(snap, node)
    {
        return Err(format!(
            "mapped from node {source} outside this column's domain"
        ));
    }
    Ok(())
}

/// The error of a `based` stream whose source has no payload of `kind` at
/// item `item`.
pub(super) fn no_base(what: &str, kind: Kind, item: usize) -> Error {
    let of = match kind {
        Kind::Time => "timestamp",
        Kind::Int => "integer",
        _ => "string",
    };
    Error::corrupt(what, 0, format!("item {item} has no {of} in its base"))
}

/// Decoded string ids as `u32`s (the table range is checked with the
/// node's other payloads).
pub(super) fn string_ids(v: Vec<i64>, what: &str) -> Result<Vec<u32>> {
    v.into_iter()
        .map(|x| {
            u32::try_from(x)
                .map_err(|_| Error::corrupt(what, 0, format!("string id {x} out of range")))
        })
        .collect()
}

/// The roles of the streams that may name a source (SPEC.md 4.7, 4.9).
pub(crate) const SOURCE_ROLES: [Role; 3] = [Role::Ints, Role::Strs, Role::TsSecs];

/// The encoding and the source node of node `node`'s `role` stream, when
/// that stream is `mapped` or `based`; the source checked as decoding
/// checks it (it exists, is not the node, and has the node's domain).
/// Reads the stream's first bytes only.
pub(crate) fn stream_source(
    snap: &Snapshot,
    node: u32,
    role: Role,
) -> Result<Option<(Encoding, u32)>> {
    let f = snap.footer();
    let Some(s) = f.nodes.get(node as usize).and_then(|m| m.stream(role)) else {
        return Ok(None);
    };
    let e = &f.sections[s as usize];
    if !e.encoding.has_source() {
        return Ok(None);
    }
    let what = format!("column `{}` {} stream", snap.path(node), role.name());
    let stored = snap.section_stored(s)?;
    let head = crate::compress::decompress_prefix(e.codec, &stored, 10, &what)?;
    let src = encoding::varint::Reader::new(&head).u64(&what)?;
    let src = u32::try_from(src)
        .map_err(|_| Error::corrupt(&what, e.offset, "source node out of range"))?;
    check_source(snap, node, src).map_err(|d| Error::corrupt(&what, e.offset, d))?;
    Ok(Some((e.encoding, src)))
}

/// Check the whole graph of `mapped` streams (for [`Snapshot::verify`]):
/// every source is valid, there is no cycle, and no chain is longer than
/// [`MAX_MAPPED_CHAIN`]. Reads the first bytes (the source node) of each
/// mapped stream. Opening does not run it (open reads only the file's
/// tail); decoding enforces the same rules on the chains it follows.
pub(crate) fn check_mapped_chains(snap: &Snapshot) -> Result<()> {
    let f = snap.footer();
    let mut sources: Vec<[Option<u32>; 3]> = vec![[None; 3]; f.nodes.len()];
    let mut any = false;
    for (i, found) in sources.iter_mut().enumerate() {
        for (j, role) in SOURCE_ROLES.into_iter().enumerate() {
            if let Some((_, src)) = stream_source(snap, i as u32, role)? {
                found[j] = Some(src);
                any = true;
            }
        }
    }
    if !any {
        return Ok(());
    }
    // Longest chain from each node, by depth-first search with colours:
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; f.nodes.len()];
    let mut chain = vec![0usize; f.nodes.len()];
    for start in 0..f.nodes.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (n, ref mut next)) = stack.last_mut() {
            if *next < 3 {
                let j = *next;
                *next += 1;
                if let Some(s) = sources[n][j] {
                    let s = s as usize;
                    match state[s] {
                        0 => {
                            state[s] = 1;
                            stack.push((s, 0));
                        }
                        1 => {
                            return Err(Error::corrupt(
                                format!("column `{}`", snap.path(n as u32)),
                                0,
                                format!("mapped streams form a cycle through node {s}"),
                            ));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let c = sources[n]
                .iter()
                .flatten()
                .map(|&s| chain[s as usize] + 1)
                .max()
                .unwrap_or(0);
            if c > MAX_MAPPED_CHAIN {
                return Err(Error::corrupt(
                    format!("column `{}`", snap.path(n as u32)),
                    0,
                    format!("mapped streams chained {c} deep (the limit is {MAX_MAPPED_CHAIN})"),
                ));
            }
            chain[n] = c;
            state[n] = 2;
            stack.pop();
        }
    }
    Ok(())
}

impl NodeData {
    /// Decode node `node` of `snap` (within the default memory budget).
    pub fn decode(snap: &Snapshot, node: u32) -> Result<NodeData> {
        let mut d = Decoder::new(snap, None);
        d.keep_sources = false;
        let data = d.node(node)?;
        drop(d);
        Ok(Arc::try_unwrap(data).unwrap_or_else(|a| (*a).clone()))
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// True when the node has no items.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// Kind of item `i`.
    #[inline]
    pub fn kind(&self, i: usize) -> Kind {
        self.kinds.get(i)
    }

    /// Rank of item `i` among the items of its kind: the index of its
    /// payload in that kind's vector.
    #[inline]
    pub fn pos(&self, i: usize) -> usize {
        self.kinds.rank(i)
    }

    /// The `j`-th timestamp payload (`j` is a rank, see [`NodeData::pos`]).
    pub fn timestamp(&self, j: usize) -> Timestamp {
        let layout = self
            .ts_layout
            .get(j)
            .copied()
            .unwrap_or(self.ts_layout_const);
        Timestamp {
            secs: self.ts_secs.get(j).copied().unwrap_or(0),
            nanos: self.ts_nanos.get(j).copied().unwrap_or(0),
            offset_minutes: self.ts_offset.get(j).copied().unwrap_or(0),
            layout: Layout::from_byte(layout).unwrap_or_else(default_layout),
        }
    }

    /// String id of item `i` when it is a `Str` item.
    #[inline]
    pub fn str_id(&self, i: usize) -> Option<u32> {
        (self.kind(i) == Kind::Str).then(|| self.strs[self.pos(i)])
    }

    /// Element range of item `i` when it is an `Array` item.
    #[inline]
    pub fn elements(&self, i: usize) -> Option<std::ops::Range<u64>> {
        (self.kind(i) == Kind::Array).then(|| {
            let p = self.pos(i);
            u64::from(self.list_starts[p])..u64::from(self.list_starts[p + 1])
        })
    }

    /// Bytes held by the decoded vectors.
    pub fn heap_bytes(&self) -> usize {
        self.kinds.heap_bytes()
            + self.ints.len() * 8
            + self.uints.len() * 8
            + self.floats.len() * 8
            + self.strs.len() * 4
            + self.ts_secs.len() * 8
            + self.ts_nanos.len() * 4
            + self.ts_layout.len()
            + self.ts_offset.len() * 2
            + self.lens.len() * 4
            + self.list_starts.len() * 4
    }
}

/// One column's values by item: row `i` for a top-level field (`title`,
/// `user.login`), element `i` for a column under an array (`labels[].name`,
/// whose items are the elements of every row's array, in row order).
///
/// Every getter takes an item index and returns `None` when that item does
/// not hold a value of the asked type: a `null`, an absent key, another
/// kind, or an index past the end. A null never reads as zero.
///
/// ```
/// # fn main() -> colsnap::Result<()> {
/// let ndjson = "{\"n\": 5}\n{\"n\": null}\n{}\n{\"n\": -2}\n";
/// let bytes = colsnap::build_to_vec(ndjson.as_bytes(), &Default::default())?;
/// let snap = colsnap::Snapshot::from_bytes(bytes)?;
/// let n = snap.column("n")?;
/// let got: Vec<Option<i64>> = (0..4).map(|r| n.i64(r)).collect();
/// assert_eq!(got, [Some(5), None, None, Some(-2)]);
/// assert_eq!(n.kind(1), colsnap::model::Kind::Null);
/// assert_eq!(n.kind(2), colsnap::model::Kind::Absent);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ColumnView {
    data: Arc<NodeData>,
}

impl ColumnView {
    /// The column's node index (for [`Snapshot::table_of`],
    /// [`Snapshot::path`]).
    pub fn node(&self) -> u32 {
        self.data.node
    }

    /// Number of items (rows for a top-level field).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the column has no items.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Kind of item `i` (`Absent` past the end).
    #[inline]
    pub fn kind(&self, i: usize) -> Kind {
        self.data.kind(i)
    }

    /// True when item `i` holds no value: `null`, absent, or past the end.
    pub fn is_null(&self, i: usize) -> bool {
        matches!(self.kind(i), Kind::Null | Kind::Absent)
    }

    /// The integer at item `i` when it is an integer that fits `i64`.
    pub fn i64(&self, i: usize) -> Option<i64> {
        (self.kind(i) == Kind::Int).then(|| self.data.ints[self.data.pos(i)])
    }

    /// The integer at item `i` when it is a non-negative integer (any
    /// integer in `0..=u64::MAX`).
    pub fn u64(&self, i: usize) -> Option<u64> {
        match self.kind(i) {
            Kind::Int => u64::try_from(self.data.ints[self.data.pos(i)]).ok(),
            Kind::UInt => Some(self.data.uints[self.data.pos(i)]),
            _ => None,
        }
    }

    /// The number at item `i` as `f64`: a float, or an integer converted
    /// (rounded to the nearest `f64` beyond 2^53).
    pub fn f64(&self, i: usize) -> Option<f64> {
        let d = &self.data;
        match self.kind(i) {
            Kind::Float => Some(d.floats[d.pos(i)]),
            Kind::Int => Some(d.ints[d.pos(i)] as f64),
            Kind::UInt => Some(d.uints[d.pos(i)] as f64),
            Kind::NumText => Some(crate::encoding::numtext::value(&d.num_texts[d.pos(i)])),
            _ => None,
        }
    }

    /// The boolean at item `i`.
    pub fn bool(&self, i: usize) -> Option<bool> {
        match self.kind(i) {
            Kind::True => Some(true),
            Kind::False => Some(false),
            _ => None,
        }
    }

    /// The string id at item `i` (ids sort like the strings; the text is
    /// `snap.table_of(view.node())?.get(id)`).
    pub fn str_id(&self, i: usize) -> Option<u32> {
        self.data.str_id(i)
    }

    /// The timestamp at item `i` (its `Display` is the RFC 3339 text the
    /// input had).
    pub fn timestamp(&self, i: usize) -> Option<Timestamp> {
        (self.kind(i) == Kind::Time).then(|| self.data.timestamp(self.data.pos(i)))
    }

    /// The range of element items (in the `PATH[]` column) of item `i` when
    /// it is an array.
    pub fn elements(&self, i: usize) -> Option<std::ops::Range<u64>> {
        self.data.elements(i)
    }

    /// The low-level decoded streams (payloads packed per kind).
    pub fn node_data(&self) -> &NodeData {
        &self.data
    }
}

impl Snapshot {
    /// Decode every stream of a node: the low-level form, whose payload
    /// vectors are packed per kind (index them with [`NodeData::pos`], not
    /// by row). Most callers want [`Snapshot::column`].
    pub fn node_data(&self, node: u32) -> Result<NodeData> {
        NodeData::decode(self, node)
    }

    /// The kinds of a node's items alone (no value decoded): what a caller
    /// needs to count the kinds of some items.
    pub fn node_kinds(&self, node: u32) -> Result<Arc<Kinds>> {
        Decoder::new(self, None).kinds(node)
    }

    /// The column at `path` (`title`, `user.login`, `labels[].name`), with
    /// getters by row (or element) that return `None` for nulls, absent
    /// keys and other kinds.
    pub fn column(&self, path: &str) -> Result<ColumnView> {
        let n = self.node_by_path(path).ok_or_else(|| Error::NotFound {
            what: "column",
            name: path.to_string(),
        })?;
        let mut d = Decoder::new(self, None);
        Ok(ColumnView { data: d.node(n)? })
    }
}

/// The node whose items define `node`'s domain: the nearest ancestor that is
/// the root or an array element node.
fn domain_of(snap: &Snapshot, mut node: u32) -> u32 {
    let nodes = &snap.footer().nodes;
    for _ in 0..nodes.len() {
        let m = &nodes[node as usize];
        if node == 0 || m.name == NodeName::Elem || m.parent >= node {
            return node;
        }
        node = m.parent;
    }
    node
}

/// Layout 0 (`Z`, no fraction); only used for bytes that `decode` rejected.
fn default_layout() -> Layout {
    Layout::from_byte(0).unwrap_or_else(default_layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense kinds of `n` items: mostly `base`, with exceptions placed by a
    /// small pseudo-random generator at about one item in `every`.
    fn kinds_bytes(n: usize, every: u64, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(every) {
                    [Kind::Str, Kind::Int, Kind::Null][(x >> 32) as usize % 3] as u8
                } else {
                    Kind::Absent as u8
                }
            })
            .collect()
    }

    /// Sparse kinds answer every lookup, in increasing, decreasing and
    /// random order, with or without a carried hint, as the dense bytes
    /// say: kind and rank among the items of that kind.
    #[test]
    fn sparse_lookups_agree_with_dense_in_any_order() {
        for (n, every, seed) in [
            (64, 17, 1),
            (1000, 20, 2),
            (5000, 64, 3),
            (70_000, 17, 4),
            (70_000, 997, 5),
            (256 * 3, 1 << 40, 6),
        ] {
            let bytes = kinds_bytes(n, every, seed);
            let sparse = Kinds::from_dense(bytes.clone());
            assert!(matches!(sparse, Kinds::Sparse(_)), "n {n} every {every}");
            let mut counts = [0usize; KIND_COUNT];
            let want: Vec<(Kind, usize)> = bytes
                .iter()
                .map(|&b| {
                    counts[b as usize] += 1;
                    (Kind::from_u8(b).unwrap(), counts[b as usize] - 1)
                })
                .collect();
            let mut order: Vec<usize> = (0..n).collect();
            let check = |order: &[usize], carry: bool| {
                let mut hint = 0;
                for &i in order {
                    if !carry {
                        hint = 0;
                    }
                    assert_eq!(sparse.get_and_rank(i, &mut hint), want[i], "item {i}");
                    assert_eq!(sparse.get(i), want[i].0, "item {i}");
                    assert_eq!(sparse.rank(i), want[i].1, "item {i}");
                }
            };
            check(&order, true);
            order.reverse();
            check(&order, true);
            let mut x = seed * 7 + 3;
            for i in (1..n).rev() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                order.swap(i, (x >> 33) as usize % (i + 1));
            }
            check(&order, true);
            check(&order, false);
            assert_eq!(sparse.get_and_rank(n, &mut 0), (Kind::Absent, 0));
        }
    }
}
