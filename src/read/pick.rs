//! Decoding nodes at a few rows: what writing a page of 50 rows out of
//! millions needs, without a whole-column vector per node.
//!
//! A [`Picked`] decoder is made for a set of rows. Each node's *picked
//! items* are the items under those rows: the rows themselves for the
//! root, the parent's for an object field (same items), and the elements
//! of the parent's picked arrays for an element node. Its [`NodeData`] and
//! [`Kinds`] are *compact*: item `j` of the compact data is the node's
//! `j`-th picked item, so a writer walks the compact data exactly as it
//! walks a whole node (object fields share their parent's compact items,
//! and an array's compact `list_starts` index its element node's compact
//! items), having mapped a row to its place among the picked rows once.
//!
//! Values are read at their positions ([`crate::encoding::at`]): fixed
//! width, bit-packed and dictionary streams where the values sit, varint
//! streams walked to the last position needed. A node's kinds are decoded
//! whole (once per decoder) for the kind and rank of each picked item;
//! every value read is checked as the whole decode checks it.

use super::Snapshot;
use super::node::{
    Decoder, Kinds, MAX_MAPPED_CHAIN, NodeData, check_source, nanos, no_base, offsets, string_ids,
};
use crate::encoding::{self, Encoding, at};
use crate::error::{Error, Result};
use crate::format::{NodeMeta, Role};
use crate::model::{KIND_COUNT, Kind, NodeName};
use std::sync::Arc;

/// Per node: the compact data once decoded.
type Slots<T> = Vec<Option<Arc<T>>>;

/// Of each kind, the ranks among the node's items of that kind of its
/// picked items of that kind, increasing.
type Ranks = Vec<Vec<usize>>;

/// The bytes of bit-packed section `s` that positions up to `last` need
/// (a prefix where that is less than half of it, see
/// [`Snapshot::section_prefix`]; the whole section when `last` is `None`
/// or far down),
/// and the section's raw length.
fn bits_upto(snap: &Snapshot, s: u32, last: Option<usize>) -> Result<(bytes::Bytes, usize)> {
    let whole = snap
        .footer()
        .sections
        .get(s as usize)
        .map_or(0, |e| e.raw_len as usize);
    let b = match last {
        // A value takes a bit or more: far down, the whole section.
        Some(last) if (last / 8).saturating_mul(2) < whole => {
            snap.section_prefix(s, |head| encoding::bitpack::prefix_len(head, last))?
        }
        _ => snap.section(s)?,
    };
    Ok((b, whole))
}

/// Decodes the nodes of one snapshot at the items under a set of rows (see
/// the module documentation).
pub(crate) struct Picked {
    snap: Snapshot,
    /// The rows, increasing and distinct.
    rows: Arc<Vec<u32>>,
    /// Whole kinds of each node (and the memory budget).
    full: Decoder,
    items: Slots<Vec<u32>>,
    kinds: Slots<Kinds>,
    ranks: Slots<Ranks>,
    nodes: Slots<NodeData>,
    /// Of a node holding arrays: (first element, element count) of each
    /// picked array, in the element node's items.
    spans: Slots<Vec<(u32, u32)>>,
    /// The element node of each node holding arrays.
    elem: Vec<Option<u32>>,
    /// Nodes being decoded (a cycle of mapped streams meets one again), and
    /// the longest chain of mapped streams ending at each decoded node.
    decoding: Vec<bool>,
    chain: Vec<usize>,
}

impl Picked {
    /// A decoder at `rows` (any order, repeats allowed; each must be a row
    /// of the snapshot) within `budget` bytes (the snapshot's default when
    /// `None`).
    pub(crate) fn new(snap: &Snapshot, rows: &[u64], budget: Option<u64>) -> Result<Picked> {
        let n = snap.rows();
        let mut r = Vec::with_capacity(rows.len());
        for &x in rows {
            if x >= n {
                return Err(Error::NotFound {
                    what: "row",
                    name: format!("{x} (the snapshot has {n} rows)"),
                });
            }
            r.push(x as u32);
        }
        r.sort_unstable();
        r.dedup();
        let nodes = snap.footer().nodes.len();
        let mut elem = vec![None; nodes];
        for (i, m) in snap.footer().nodes.iter().enumerate().skip(1) {
            if m.name == NodeName::Elem && (m.parent as usize) < i {
                elem[m.parent as usize] = Some(i as u32);
            }
        }
        Ok(Picked {
            snap: snap.clone(),
            rows: Arc::new(r),
            full: Decoder::new(snap, budget),
            items: vec![None; nodes],
            kinds: vec![None; nodes],
            ranks: vec![None; nodes],
            nodes: vec![None; nodes],
            spans: vec![None; nodes],
            elem,
            decoding: vec![false; nodes],
            chain: vec![0; nodes],
        })
    }

    /// A decoder sharing everything this one decoded so far.
    pub(crate) fn fork(&self) -> Picked {
        Picked {
            snap: self.snap.clone(),
            rows: self.rows.clone(),
            full: self.full.fork(),
            items: self.items.clone(),
            kinds: self.kinds.clone(),
            ranks: self.ranks.clone(),
            nodes: self.nodes.clone(),
            spans: self.spans.clone(),
            elem: self.elem.clone(),
            decoding: vec![false; self.decoding.len()],
            chain: self.chain.clone(),
        }
    }

    /// Decode `nodes` ahead of their first use, on up to `threads`
    /// threads: level by level of the tree (an element node's items come
    /// from its parent's arrays, a parent-masked field's kinds from its
    /// parent's), within a level the nodes with a mapped stream last
    /// (their source nodes are mostly decoded by then; one mapped from
    /// another of them, as its stream's first varint says, in a later
    /// round), each thread on a fork of its own taking the next node when
    /// done with one. Every
    /// fork gets an equal share of what is left of the budget. What the
    /// forks decoded is taken back; a node that failed is left for
    /// [`Picked::node`] to decode again, and report, when it is needed,
    /// so the outcome is the same as without the prefetch.
    pub(crate) fn decode_ahead(&mut self, nodes: &[u32], threads: usize) {
        if threads <= 1 || nodes.len() <= 1 {
            return;
        }
        let footer = self.snap.footer_arc().clone();
        let metas = &footer.nodes;
        let mut depth = vec![0usize; metas.len()];
        for (i, m) in metas.iter().enumerate().skip(1) {
            if (m.parent as usize) < i {
                depth[i] = depth[m.parent as usize] + 1;
            }
        }
        // The sections of a node's mapped streams.
        let mapped = |n: u32| -> Vec<u32> {
            let m = &metas[n as usize];
            [Role::Ints, Role::Strs, Role::TsSecs]
                .into_iter()
                .filter_map(|r| m.stream(r))
                .filter(|&s| {
                    footer
                        .sections
                        .get(s as usize)
                        .is_some_and(|e| e.encoding.has_source())
                })
                .collect()
        };
        let mut order: Vec<(usize, bool, u32)> = nodes
            .iter()
            .filter(|&&n| (n as usize) < metas.len())
            .map(|&n| (depth[n as usize], !mapped(n).is_empty(), n))
            .collect();
        order.sort_unstable();
        order.dedup();
        for wave in order.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let todo: Vec<u32> = wave
                .iter()
                .map(|&(_, _, n)| n)
                .filter(|&n| self.nodes[n as usize].is_none())
                .collect();
            if !wave[0].1 {
                self.decode_wave(&todo, threads);
                continue;
            }
            // Nodes mapped from nodes of the wave (a chain of mapped
            // siblings) wait for a later round, so that no two threads
            // decode the same source. A source that cannot be read, or a
            // cycle, is left to the decode when the node is needed.
            let mut left: Vec<(u32, Vec<u32>)> = Vec::with_capacity(todo.len());
            for &n in &todo {
                let srcs: Result<Vec<u32>> = mapped(n)
                    .into_iter()
                    .map(|s| self.snap.mapped_source(s))
                    .collect();
                if let Ok(srcs) = srcs {
                    left.push((n, srcs));
                }
            }
            while !left.is_empty() {
                let waiting: std::collections::HashSet<u32> = left.iter().map(|x| x.0).collect();
                let (ready, wait): (Vec<_>, Vec<_>) = left
                    .into_iter()
                    .partition(|(_, srcs)| srcs.iter().all(|s| !waiting.contains(s)));
                if ready.is_empty() {
                    break;
                }
                let ready: Vec<u32> = ready.into_iter().map(|x| x.0).collect();
                self.decode_wave(&ready, threads);
                left = wait;
            }
        }
    }

    /// Decode `todo` (nodes independent of each other) on up to
    /// `threads` forks (see [`Picked::decode_ahead`]).
    fn decode_wave(&mut self, todo: &[u32], threads: usize) {
        if todo.len() <= 1 {
            // One node: decoded when it is needed.
            return;
        }
        let forks = threads.min(todo.len());
        let base = self.full.used();
        let share = self.full.left() / forks as u64;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let next = &next;
        let done: Vec<Picked> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..forks)
                .map(|_| {
                    let mut f = self.fork_within(share);
                    s.spawn(move || {
                        while let Some(&n) =
                            todo.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                        {
                            // A failure is met again when the node is needed.
                            let _ = f.node(n);
                        }
                        f
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for f in done {
            self.absorb(f, base);
        }
    }

    /// [`Picked::fork`] allowed `extra` bytes more than this one has used.
    fn fork_within(&self, extra: u64) -> Picked {
        let mut f = self.fork();
        f.full = self.full.fork_within(extra);
        f
    }

    /// Take what a fork made at `base` bytes used decoded since (where
    /// this one has nothing), and its charges.
    fn absorb(&mut self, f: Picked, base: u64) {
        fn fill<T>(mine: &mut Slots<T>, theirs: Slots<T>) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                if m.is_none() {
                    *m = t;
                }
            }
        }
        fill(&mut self.items, f.items);
        fill(&mut self.kinds, f.kinds);
        fill(&mut self.ranks, f.ranks);
        fill(&mut self.nodes, f.nodes);
        fill(&mut self.spans, f.spans);
        for (c, t) in self.chain.iter_mut().zip(f.chain) {
            *c = (*c).max(t);
        }
        self.full.absorb(f.full, base);
    }

    /// The place of `row` among the picked rows: its item in the root's
    /// compact data.
    pub(crate) fn root_item(&self, row: usize) -> Result<usize> {
        u32::try_from(row)
            .ok()
            .and_then(|r| self.rows.binary_search(&r).ok())
            .ok_or_else(|| Error::NotFound {
                what: "row",
                name: format!("{row} (not among the rows this writer was made for)"),
            })
    }

    /// Bytes charged to the decoder.
    pub(crate) fn used(&self) -> u64 {
        self.full.used()
    }

    fn meta(&self, node: u32) -> Result<&NodeMeta> {
        self.snap
            .footer()
            .nodes
            .get(node as usize)
            .ok_or_else(|| Error::NotFound {
                what: "node",
                name: node.to_string(),
            })
    }

    fn corrupt(&self, node: u32, detail: String) -> Error {
        Error::corrupt(format!("column `{}`", self.snap.path(node)), 0, detail)
    }

    /// The picked items of `node`, increasing.
    fn items(&mut self, node: u32) -> Result<Arc<Vec<u32>>> {
        if let Some(i) = self.items.get(node as usize).and_then(|s| s.clone()) {
            return Ok(i);
        }
        let (name, parent) = {
            let m = self.meta(node)?;
            (m.name.clone(), m.parent)
        };
        let items = if node == 0 {
            self.rows.clone()
        } else if parent >= node {
            return Err(self.corrupt(node, format!("parent {parent} not before the node")));
        } else if name == NodeName::Elem {
            self.node(parent)?;
            let spans = self.spans[parent as usize].clone().unwrap_or_default();
            let total: u64 = spans.iter().map(|&(_, l)| l as u64).sum();
            self.full
                .charge(total.saturating_mul(4), "picked array elements")?;
            let mut v = Vec::with_capacity(total as usize);
            for &(s, l) in spans.iter() {
                v.extend(s..s + l);
            }
            Arc::new(v)
        } else {
            self.items(parent)?
        };
        self.items[node as usize] = Some(items.clone());
        Ok(items)
    }

    /// The compact kinds of `node`, and the rank among its kind (in the
    /// whole node) of each picked item of each kind.
    fn scan(&mut self, node: u32) -> Result<(Arc<Kinds>, Arc<Ranks>)> {
        if let (Some(k), Some(r)) = (&self.kinds[node as usize], &self.ranks[node as usize]) {
            return Ok((k.clone(), r.clone()));
        }
        let items = self.items(node)?;
        let pairs = self.kinds_at(node, &items)?;
        let mut ks = Vec::with_capacity(items.len());
        let mut ranks = vec![Vec::new(); KIND_COUNT];
        let snap = self.snap.clone();
        let meta = &snap.footer().nodes[node as usize];
        for (k, r) in pairs {
            // The whole decode compares every kind count with the footer's;
            // a picked item's rank must at least lie within its kind's
            // count, on which the streams present depend (SPEC.md 5.3): an
            // array the footer does not count has no length to read.
            let n = meta.count(k);
            if r as u64 >= n {
                return Err(self.corrupt(
                    node,
                    format!(
                        "kind counts differ from the footer's: {} item {r} of {n}",
                        k.name()
                    ),
                ));
            }
            ks.push(k as u8);
            ranks[k as usize].push(r);
        }
        let kinds = Arc::new(Kinds::from_dense(ks));
        let ranks = Arc::new(ranks);
        self.kinds[node as usize] = Some(kinds.clone());
        self.ranks[node as usize] = Some(ranks.clone());
        Ok((kinds, ranks))
    }

    /// The kind of each of `items` of `node`, and its rank among the
    /// node's items of that kind: from the footer for one kind, from the
    /// kinds' bitmap where it is one (bit-packed, or parent-masked under
    /// the parent's picked kinds: population counts, nothing decoded
    /// whole), else from the node's whole kinds.
    fn kinds_at(&mut self, node: u32, items: &[u32]) -> Result<Vec<(Kind, usize)>> {
        let snap = self.snap.clone();
        let meta = &snap.footer().nodes[node as usize];
        let n = meta.items;
        if let Some(&bad) = items.iter().find(|&&i| i as u64 >= n) {
            return Err(self.corrupt(node, format!("item {bad} past the {n} items")));
        }
        let what = format!("column `{}` {} stream", snap.path(node), Role::Kinds.name());
        if let Some(k) = meta.const_kind() {
            return Ok(items.iter().map(|&i| (k, i as usize)).collect());
        }
        let stream = meta.stream(Role::Kinds).and_then(|s| {
            snap.footer()
                .sections
                .get(s as usize)
                .map(|e| (s, e.encoding))
        });
        let kind = |b: u8| {
            Kind::from_u8(b)
                .filter(|_| (b as usize) < KIND_COUNT)
                .ok_or_else(|| Error::corrupt(&what, 0, format!("unknown kind {b}")))
        };
        match stream {
            Some((s, Encoding::BitPacked)) => {
                let pos: Vec<usize> = items.iter().map(|&i| i as usize).collect();
                let (b, whole) = bits_upto(&snap, s, pos.last().copied())?;
                encoding::bitpack::ranks_at(&b, whole, n as usize, &pos, &what)?
                    .into_iter()
                    .map(|(k, r)| Ok((kind(k)?, r)))
                    .collect()
            }
            Some((s, Encoding::ParentMasked)) => {
                let parent = meta.parent;
                if !matches!(meta.name, NodeName::Key(_))
                    || parent >= node
                    || snap.footer().nodes[parent as usize].items != n
                {
                    return Err(Error::corrupt(
                        &what,
                        0,
                        "parent-masked kinds on a node that is not an object field",
                    ));
                }
                // The node's items are its parent's: the parent's picked
                // objects give the positions in the bitmap of the fields
                // under objects.
                let (pk, pr) = self.scan(parent)?;
                let under = snap.footer().nodes[parent as usize].count(Kind::Object) as usize;
                let objects = &pr[Kind::Object as usize];
                let (b, whole) = bits_upto(&snap, s, objects.last().copied())?;
                let sub = encoding::bitpack::ranks_at(&b, whole, under, objects, &what)?;
                let mut sub = sub.into_iter();
                let mut hint = 0;
                (0..items.len())
                    .map(|j| {
                        if pk.get_hinted(j, &mut hint) != Kind::Object {
                            return Ok((Kind::Absent, 0));
                        }
                        let (k, r) = sub
                            .next()
                            .ok_or_else(|| Error::corrupt(&what, 0, "object items miscounted"))?;
                        Ok((kind(k)?, r))
                    })
                    .collect()
            }
            _ => {
                let whole = self.full.kinds(node)?;
                let mut hint = 0;
                Ok(items
                    .iter()
                    .map(|&i| whole.get_and_rank(i as usize, &mut hint))
                    .collect())
            }
        }
    }

    /// The compact kinds of `node`.
    pub(crate) fn kinds(&mut self, node: u32) -> Result<Arc<Kinds>> {
        if let Some(k) = self.kinds.get(node as usize).and_then(|s| s.clone()) {
            return Ok(k);
        }
        Ok(self.scan(node)?.0)
    }

    /// The compact data of `node`.
    pub(crate) fn node(&mut self, node: u32) -> Result<Arc<NodeData>> {
        self.node_at(node, 0)
    }

    fn node_at(&mut self, node: u32, depth: usize) -> Result<Arc<NodeData>> {
        self.meta(node)?;
        if let Some(d) = &self.nodes[node as usize] {
            return Ok(d.clone());
        }
        if depth > MAX_MAPPED_CHAIN {
            return Err(self.corrupt(
                node,
                format!("mapped streams chained deeper than {MAX_MAPPED_CHAIN}"),
            ));
        }
        if self.decoding[node as usize] {
            return Err(self.corrupt(
                node,
                format!("mapped streams form a cycle through node {node}"),
            ));
        }
        let plan = self.snap.prefetch_node(node)?;
        self.decoding[node as usize] = true;
        let d = self.decode(node, depth);
        self.decoding[node as usize] = false;
        if let Some(p) = plan {
            self.snap.release_fetched(&p);
        }
        let d = Arc::new(d?);
        self.nodes[node as usize] = Some(d.clone());
        Ok(d)
    }

    fn decode(&mut self, node: u32, depth: usize) -> Result<NodeData> {
        let snap = self.snap.clone();
        let meta = &snap.footer().nodes[node as usize];
        let path = snap.path(node).to_string();
        let what = |role: Role| format!("column `{path}` {} stream", role.name());
        let count = |k: Kind| meta.count(k) as usize;
        // A stream is read only for picked items of its kind: none, and
        // its section is not even decompressed.
        let (kinds, ranks) = self.scan(node)?;
        // A stream read at positions near its start is decompressed only
        // as far as they need (at::prefix_len), when that is less than
        // half of it (Snapshot::section_prefix): `whole` is its length.
        let load = |role: Role| -> Result<Option<(Encoding, bytes::Bytes, usize)>> {
            let kind = match role {
                Role::Ints => Kind::Int,
                Role::UInts => Kind::UInt,
                Role::Floats => Kind::Float,
                Role::Strs => Kind::Str,
                Role::Lens => Kind::Array,
                Role::NumText => Kind::NumText,
                Role::TsSecs | Role::TsNanos | Role::TsLayout | Role::TsOffset => Kind::Time,
                _ => return Ok(None),
            };
            let Some(&last) = ranks[kind as usize].last() else {
                return Ok(None);
            };
            match meta.stream(role) {
                None => Ok(None),
                Some(s) => {
                    let e = snap.footer().sections.get(s as usize).ok_or_else(|| {
                        Error::corrupt(what(role), 0, format!("section {s} missing"))
                    })?;
                    let whole = e.raw_len as usize;
                    let enc = e.encoding;
                    let b = match enc {
                        // The source's varint, then zigzag differences.
                        Encoding::Based => snap.section_prefix(s, |_| {
                            at::prefix_len(Encoding::ZigzagVarint, &[], last)
                                .map(|n| n.saturating_add(10))
                        })?,
                        // Values take a byte or more: rows far down read
                        // the section whole without trying.
                        enc if at::reads_a_prefix(enc) && (last + 1).saturating_mul(2) < whole => {
                            snap.section_prefix(s, |head| at::prefix_len(enc, head, last))?
                        }
                        _ => snap.section(s)?,
                    };
                    Ok(Some((e.encoding, b, whole)))
                }
            }
        };
        self.full.charge(
            (kinds.len() as u64).saturating_mul(16),
            &format!("column `{path}` picked items"),
        )?;
        let at = |k: Kind| &ranks[k as usize][..];
        let ints = match load(Role::Ints)? {
            Some((Encoding::Mapped, b, _)) => {
                self.mapped(node, &kinds, Kind::Int, &b, depth, &what(Role::Ints), Ok)?
            }
            Some((Encoding::Based, b, whole)) => self.based(
                node,
                &kinds,
                Kind::Int,
                &b,
                whole,
                count(Kind::Int),
                at(Kind::Int),
                depth,
                &what(Role::Ints),
            )?,
            Some((e, b, w)) => {
                at::i64s_at(e, &b, w, count(Kind::Int), at(Kind::Int), &what(Role::Ints))?
            }
            None => Vec::new(),
        };
        let uints = match load(Role::UInts)? {
            Some((e, b, w)) => at::u64s_at(
                e,
                &b,
                w,
                count(Kind::UInt),
                at(Kind::UInt),
                &what(Role::UInts),
            )?,
            None => Vec::new(),
        };
        let floats = match load(Role::Floats)? {
            Some((e, b, w)) => at::f64s_at(
                e,
                &b,
                w,
                count(Kind::Float),
                at(Kind::Float),
                &what(Role::Floats),
            )?,
            None => Vec::new(),
        };
        let strs = match load(Role::Strs)? {
            Some((Encoding::Mapped, b, _)) => {
                let w = what(Role::Strs);
                self.mapped(node, &kinds, Kind::Str, &b, depth, &w, |v| {
                    u32::try_from(v)
                        .map_err(|_| Error::corrupt(&w, 0, format!("string id {v} out of range")))
                })?
            }
            Some((Encoding::Based, b, whole)) => {
                let w = what(Role::Strs);
                let v = self.based(
                    node,
                    &kinds,
                    Kind::Str,
                    &b,
                    whole,
                    count(Kind::Str),
                    at(Kind::Str),
                    depth,
                    &w,
                )?;
                string_ids(v, &w)?
            }
            Some((e, b, w)) => {
                at::str_ids_at(e, &b, w, count(Kind::Str), at(Kind::Str), &what(Role::Strs))?
            }
            None => Vec::new(),
        };
        let nt = count(Kind::Time);
        let tr = at(Kind::Time);
        let ts_secs = match load(Role::TsSecs)? {
            Some((Encoding::Based, b, whole)) => self.based(
                node,
                &kinds,
                Kind::Time,
                &b,
                whole,
                nt,
                tr,
                depth,
                &what(Role::TsSecs),
            )?,
            Some((e, b, w)) => at::i64s_at(e, &b, w, nt, tr, &what(Role::TsSecs))?,
            None => Vec::new(),
        };
        let ts_nanos = match load(Role::TsNanos)? {
            Some((e, b, w)) => nanos(
                at::u64s_at(e, &b, w, nt, tr, &what(Role::TsNanos))?,
                &what(Role::TsNanos),
            )?,
            None => Vec::new(),
        };
        let ts_layout = match load(Role::TsLayout)? {
            Some((e, b, w)) => at::u8s_at(e, &b, w, nt, tr, &what(Role::TsLayout))?,
            None => Vec::new(),
        };
        let ts_offset = match load(Role::TsOffset)? {
            Some((e, b, w)) => offsets(
                at::i64s_at(e, &b, w, nt, tr, &what(Role::TsOffset))?,
                &what(Role::TsOffset),
            )?,
            None => Vec::new(),
        };
        let (lens, list_starts) = match load(Role::Lens)? {
            Some((e, b, w)) => self.arrays(node, e, &b, w, count(Kind::Array), at(Kind::Array))?,
            None => (Vec::new(), vec![0]),
        };
        // Raw (never a prefix): every text is checked, the picked kept.
        let num_texts = match load(Role::NumText)? {
            Some((e, b, _)) => {
                let w = what(Role::NumText);
                self.full.fits((b.len() as u64).saturating_mul(3), &w)?;
                let all = encoding::numtext::decode(e, &b, count(Kind::NumText), &w)?;
                at(Kind::NumText).iter().map(|&r| all[r].clone()).collect()
            }
            None => Vec::new(),
        };
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
        data.check_payloads(&snap, meta, &what, Some(tr))?;
        Ok(data)
    }

    /// The element counts of the picked arrays (at `ranks` of the node's
    /// `n` arrays) and their compact starts; records where each picked
    /// array's elements lie in the element node (for its picked items).
    fn arrays(
        &mut self,
        node: u32,
        enc: Encoding,
        b: &[u8],
        whole: usize,
        n: usize,
        ranks: &[usize],
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        let what = format!(
            "column `{}` {} stream",
            self.snap.path(node),
            Role::Lens.name()
        );
        // Every count up to the last picked array (their sum places each
        // array's elements): four bytes per array, briefly. From a prefix
        // of the stream (`b` shorter than `whole`), only those; else every
        // count, as the whole decode reads them.
        let all = match ranks.last() {
            Some(&last) if b.len() < whole => {
                self.full.fits((last as u64 + 1).saturating_mul(4), &what)?;
                let upto: Vec<usize> = (0..=last).collect();
                at::u32s_at(enc, b, whole, n, &upto, &what)?
            }
            _ => {
                self.full.fits((n as u64).saturating_mul(4), &what)?;
                encoding::decode_u32s(enc, b, n, &what)?
            }
        };
        let elems = self
            .elem
            .get(node as usize)
            .copied()
            .flatten()
            .map_or(0, |e| self.snap.footer().nodes[e as usize].items);
        let mut spans = Vec::with_capacity(ranks.len());
        let mut lens = Vec::with_capacity(ranks.len());
        let mut starts = Vec::with_capacity(ranks.len() + 1);
        starts.push(0u32);
        let (mut acc, mut compact, mut next) = (0u64, 0u32, 0usize);
        for (r, &l) in all.iter().enumerate() {
            while ranks.get(next) == Some(&r) {
                if acc + l as u64 > elems {
                    return Err(Error::corrupt(
                        &what,
                        0,
                        format!("array {r} ends past the {elems} elements"),
                    ));
                }
                spans.push((acc as u32, l));
                lens.push(l);
                compact = compact.checked_add(l).ok_or_else(|| {
                    Error::corrupt(&what, 0, "arrays hold more than 2^32-1 elements")
                })?;
                starts.push(compact);
                next += 1;
            }
            acc += l as u64;
        }
        if acc > u32::MAX as u64 {
            return Err(Error::corrupt(
                &what,
                0,
                "arrays hold more than 2^32-1 elements",
            ));
        }
        if next != ranks.len() {
            return Err(Error::corrupt(&what, 0, "array rank past the arrays"));
        }
        self.spans[node as usize] = Some(Arc::new(spans));
        Ok((lens, starts))
    }

    /// The source node of a stream of `node` that names one (`mapped`,
    /// `based`), decoded for the same picked items, after checking it may
    /// be a source and the chain it ends; and the node's picked items.
    fn source_at(
        &mut self,
        node: u32,
        source: u32,
        depth: usize,
        what: &str,
    ) -> Result<(Arc<NodeData>, Arc<Vec<u32>>)> {
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
        let (mine, theirs) = (self.items(node)?, self.items(source)?);
        if !Arc::ptr_eq(&mine, &theirs) && mine != theirs {
            return Err(Error::corrupt(what, 0, "mapped from other items"));
        }
        Ok((src, mine))
    }

    /// The payloads of the picked items of kind `kind` (Int, Str or Time;
    /// at `ranks` of the node's `count`) of a `based` stream: the source's
    /// payload at the same item plus the item's delta.
    #[allow(clippy::too_many_arguments)]
    fn based(
        &mut self,
        node: u32,
        kinds: &Kinds,
        kind: Kind,
        b: &[u8],
        whole: usize,
        count: usize,
        ranks: &[usize],
        depth: usize,
        what: &str,
    ) -> Result<Vec<i64>> {
        let (source, rest) = encoding::based::split(b, what)?;
        let (src, mine) = self.source_at(node, source, depth, what)?;
        // `b` may be a prefix of the stream's `whole` bytes.
        let rest_whole = whole.saturating_sub(b.len() - rest.len());
        let mut out = at::i64s_at(Encoding::ZigzagVarint, rest, rest_whole, count, ranks, what)?;
        let mut h = 0;
        for (d, j) in out.iter_mut().zip(kinds.items_of(kind)) {
            let (k, r) = src.kinds.get_and_rank(j, &mut h);
            let item = mine.get(j).copied().unwrap_or(0) as usize;
            let base = (k == kind)
                .then(|| src.payload(kind, r))
                .flatten()
                .ok_or_else(|| no_base(what, kind, item))?;
            *d = encoding::based::apply(base, *d, what, item)?;
        }
        Ok(out)
    }

    /// The payloads of the picked items of kind `kind` from a `mapped`
    /// stream: the mapping's value at the source node's string id at the
    /// same item (the source shares the node's domain, so its picked items
    /// are the node's).
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
        let items = self.meta(node)?.items as usize;
        let source = u32::try_from(encoding::varint::Reader::new(b).u64(what)?)
            .map_err(|_| Error::corrupt(what, 0, "source node out of range"))?;
        let (src, mine) = self.source_at(node, source, depth, what)?;
        // The source's string id at each picked item of the kind, then the
        // mapping's values at those ids (one pass over its keys).
        let mut h = 0;
        let ids: Vec<Option<u32>> = kinds
            .items_of(kind)
            .map(|j| {
                let (k, r) = src.kinds.get_and_rank(j, &mut h);
                (k == Kind::Str).then(|| src.strs.get(r).copied()).flatten()
            })
            .collect();
        let mut wanted: Vec<u32> = ids.iter().flatten().copied().collect();
        wanted.sort_unstable();
        wanted.dedup();
        let (_, values) = encoding::mapped::values_at(b, items, &wanted, what)?;
        let mut out = Vec::with_capacity(ids.len());
        for (n, id) in ids.into_iter().enumerate() {
            let v = id
                .and_then(|id| wanted.binary_search(&id).ok())
                .and_then(|w| values[w])
                .ok_or_else(|| {
                    let j = kinds.items_of(kind).nth(n).unwrap_or(0);
                    Error::corrupt(
                        what,
                        0,
                        format!(
                            "item {} has no mapped value",
                            mine.get(j).copied().unwrap_or(0)
                        ),
                    )
                })?;
            out.push(conv(v)?);
        }
        Ok(out)
    }
}
