//! Decoding one node's streams into typed vectors.

use super::Snapshot;
use crate::encoding::{self, Encoding};
use crate::error::{Error, Result};
use crate::format::{Role, SectionEntry};
use crate::model::{KIND_COUNT, Kind};
use crate::timestamp::{self, Layout, Timestamp};

/// Per-item kinds: one kind for all items, or one byte per item.
#[derive(Clone, Debug)]
pub enum Kinds {
    /// Every item has this kind.
    Const(Kind, usize),
    /// Kind tag of each item.
    Dense(Vec<u8>),
}

impl Kinds {
    /// Kind of item `i` (`Absent` past the end).
    #[inline]
    pub fn get(&self, i: usize) -> Kind {
        match self {
            Kinds::Const(k, n) => {
                if i < *n {
                    *k
                } else {
                    Kind::Absent
                }
            }
            Kinds::Dense(v) => v
                .get(i)
                .and_then(|&b| Kind::from_u8(b))
                .unwrap_or(Kind::Absent),
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            Kinds::Const(_, n) => *n,
            Kinds::Dense(v) => v.len(),
        }
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every stream of one node, decoded. Payload vectors are dense per kind:
/// the payload of item `i` of kind `k` is at index `pos(i)` of that kind's vector.
#[derive(Clone, Debug)]
pub struct NodeData {
    /// The node.
    pub node: u32,
    /// Kinds of the items.
    pub kinds: Kinds,
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
    /// First element of each array item, plus the total at the end.
    pub list_starts: Vec<u64>,
    /// Rank of each item among the items of its kind (empty for `Const` kinds,
    /// where the rank is the item index).
    pub pos: Vec<u32>,
}

impl NodeData {
    /// Decode node `node` of `snap`. Every count is checked against the
    /// footer before anything is allocated.
    pub fn decode(snap: &Snapshot, node: u32) -> Result<NodeData> {
        Self::decode_at(snap, node, 0)
    }

    fn decode_at(snap: &Snapshot, node: u32, depth: usize) -> Result<NodeData> {
        let meta = snap
            .footer
            .nodes
            .get(node as usize)
            .ok_or_else(|| Error::NotFound {
                what: "node",
                name: node.to_string(),
            })?;
        usize::try_from(meta.items)
            .map_err(|_| Error::corrupt(format!("node {node}"), 0, "too many items"))?;
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
                    let e: &SectionEntry = &snap.footer.sections[s as usize];
                    Ok(Some((e.encoding, snap.section(s)?)))
                }
            }
        };
        let kinds = decode_kinds(snap, node, 0)?;
        let ints = match load(Role::Ints)? {
            Some((Encoding::Mapped, b)) => {
                mapped(snap, node, &kinds, Kind::Int, &b, depth, &what(Role::Ints))?
            }
            Some((e, b)) => encoding::decode_i64s(e, &b, count(Kind::Int), &what(Role::Ints))?,
            None => Vec::new(),
        };
        let uints = match load(Role::UInts)? {
            Some((e, b)) => encoding::decode_u64s(e, &b, count(Kind::UInt), &what(Role::UInts))?,
            None => Vec::new(),
        };
        if uints.iter().any(|&u| u <= i64::MAX as u64) {
            return Err(Error::corrupt(
                what(Role::UInts),
                0,
                "uint value within i64 range",
            ));
        }
        let floats = match load(Role::Floats)? {
            Some((e, b)) => encoding::decode_f64s(e, &b, count(Kind::Float), &what(Role::Floats))?,
            None => Vec::new(),
        };
        if floats.iter().any(|f| !f.is_finite()) {
            return Err(Error::corrupt(
                what(Role::Floats),
                0,
                "NaN or infinite float",
            ));
        }
        let strs = match load(Role::Strs)? {
            Some((Encoding::Mapped, b)) => {
                mapped(snap, node, &kinds, Kind::Str, &b, depth, &what(Role::Strs))?
                    .into_iter()
                    .map(|v| {
                        u32::try_from(v).map_err(|_| {
                            Error::corrupt(
                                what(Role::Strs),
                                0,
                                format!("string id {v} out of range"),
                            )
                        })
                    })
                    .collect::<Result<_>>()?
            }
            Some((e, b)) => encoding::decode_u32s(e, &b, count(Kind::Str), &what(Role::Strs))?,
            None => Vec::new(),
        };
        if !strs.is_empty() {
            let n = snap.footer.tables[meta.table as usize].n_strings;
            if let Some(bad) = strs.iter().find(|&&id| id as u64 >= n) {
                return Err(Error::corrupt(
                    what(Role::Strs),
                    0,
                    format!("string id {bad} out of range (table has {n})"),
                ));
            }
        }
        let nt = count(Kind::Time);
        let ts_secs = match load(Role::TsSecs)? {
            Some((e, b)) => encoding::decode_i64s(e, &b, nt, &what(Role::TsSecs))?,
            None => Vec::new(),
        };
        let ts_nanos = match load(Role::TsNanos)? {
            Some((e, b)) => encoding::decode_u64s(e, &b, nt, &what(Role::TsNanos))?
                .into_iter()
                .map(|v| {
                    u32::try_from(v)
                        .map_err(|_| Error::corrupt(what(Role::TsNanos), 0, "nanos exceed u32"))
                })
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let ts_layout = match load(Role::TsLayout)? {
            Some((e, b)) => encoding::decode_u8s(e, &b, nt, &what(Role::TsLayout))?,
            None => Vec::new(),
        };
        let ts_offset = match load(Role::TsOffset)? {
            Some((e, b)) => encoding::decode_i64s(e, &b, nt, &what(Role::TsOffset))?
                .into_iter()
                .map(|v| {
                    i16::try_from(v)
                        .map_err(|_| Error::corrupt(what(Role::TsOffset), 0, "offset exceeds i16"))
                })
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let lens: Vec<u32> = match load(Role::Lens)? {
            Some((e, b)) => encoding::decode_u32s(e, &b, count(Kind::Array), &what(Role::Lens))?,
            None => Vec::new(),
        };
        let mut list_starts = Vec::with_capacity(lens.len() + 1);
        let mut acc = 0u64;
        list_starts.push(0);
        for &l in &lens {
            acc += l as u64;
            list_starts.push(acc);
        }
        let pos = match &kinds {
            Kinds::Const(..) => Vec::new(),
            Kinds::Dense(v) => {
                let mut next = [0u32; KIND_COUNT];
                v.iter()
                    .map(|&k| {
                        let p = next[k as usize];
                        next[k as usize] += 1;
                        p
                    })
                    .collect()
            }
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
            pos,
        };
        // Every timestamp must be formattable.
        if nt > 0
            && (meta.ts_layout > Layout::MAX || data.ts_layout.iter().any(|&l| l > Layout::MAX))
        {
            return Err(Error::corrupt(
                what(Role::TsLayout),
                0,
                "unknown timestamp layout",
            ));
        }
        for i in 0..nt {
            if !timestamp::validate(&data.timestamp(i)) {
                return Err(Error::corrupt(
                    what(Role::TsSecs),
                    0,
                    format!("timestamp {i} cannot be formatted"),
                ));
            }
        }
        Ok(data)
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

    /// Rank of item `i` among the items of its kind.
    #[inline]
    pub fn pos(&self, i: usize) -> usize {
        if self.pos.is_empty() {
            i
        } else {
            self.pos[i] as usize
        }
    }

    /// The `j`-th timestamp payload.
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
            self.list_starts[p]..self.list_starts[p + 1]
        })
    }

    /// Bytes held by the decoded vectors.
    pub fn heap_bytes(&self) -> usize {
        let k = match &self.kinds {
            Kinds::Const(..) => 0,
            Kinds::Dense(v) => v.len(),
        };
        k + self.ints.len() * 8
            + self.uints.len() * 8
            + self.floats.len() * 8
            + self.strs.len() * 4
            + self.ts_secs.len() * 8
            + self.ts_nanos.len() * 4
            + self.ts_layout.len()
            + self.ts_offset.len() * 2
            + self.lens.len() * 4
            + self.list_starts.len() * 8
            + self.pos.len() * 4
    }
}

/// Decode the kinds of node `node` (recursing into the parent for
/// `ParentMasked` kinds; `depth` bounds the recursion on hostile files).
pub(crate) fn decode_kinds(snap: &Snapshot, node: u32, depth: usize) -> Result<Kinds> {
    let meta = snap
        .footer
        .nodes
        .get(node as usize)
        .ok_or_else(|| Error::NotFound {
            what: "node",
            name: node.to_string(),
        })?;
    let items = usize::try_from(meta.items)
        .map_err(|_| Error::corrupt(format!("node {node}"), 0, "too many items"))?;
    let path = snap.path(node).to_string();
    let what = |role: Role| format!("column `{path}` {} stream", role.name());
    let load = |role: Role| -> Result<Option<(Encoding, bytes::Bytes)>> {
        match meta.stream(role) {
            None => Ok(None),
            Some(s) => {
                let e: &SectionEntry = &snap.footer.sections[s as usize];
                Ok(Some((e.encoding, snap.section(s)?)))
            }
        }
    };
    let kinds = match meta.const_kind() {
        Some(k) => Kinds::Const(k, items),
        None => {
            let present = meta.counts.iter().filter(|&&c| c > 0).count();
            let e = &snap.footer.sections[meta.stream(Role::Kinds).unwrap_or(0) as usize];
            let need =
                1 + present + (items * encoding::bitpack::width_for(present) as usize).div_ceil(8);
            if e.encoding == Encoding::BitPacked && e.raw_len as usize != need {
                return Err(Error::corrupt(
                    what(Role::Kinds),
                    e.offset,
                    format!("raw length {} but {items} items need {need}", e.raw_len),
                ));
            }
            let (enc, b) = load(Role::Kinds)?
                .ok_or_else(|| Error::corrupt(what(Role::Kinds), 0, "missing"))?;
            let v = if enc == Encoding::ParentMasked {
                parent_masked(snap, node, meta, items, &b, depth, &what(Role::Kinds))?
            } else {
                encoding::decode_u8s(enc, &b, items, &what(Role::Kinds))?
            };
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
            Kinds::Dense(v)
        }
    };
    Ok(kinds)
}

/// The node whose items define `node`'s domain: the nearest ancestor that is
/// the root or an array element node.
fn domain_of(snap: &Snapshot, mut node: u32) -> u32 {
    for _ in 0..snap.footer.nodes.len() {
        let m = &snap.footer.nodes[node as usize];
        if node == 0 || m.name == crate::model::NodeName::Elem || m.parent >= node {
            return node;
        }
        node = m.parent;
    }
    node
}

/// Decode a `Mapped` stream: the payload of every item of kind `kind` is the
/// mapping's value for the source node's string id at the same item.
fn mapped(
    snap: &Snapshot,
    node: u32,
    kinds: &Kinds,
    kind: Kind,
    b: &[u8],
    depth: usize,
    what: &str,
) -> Result<Vec<i64>> {
    let items = kinds.len();
    let m = encoding::mapped::decode(b, items, what)?;
    let nodes = &snap.footer.nodes;
    // A mapping's source is a preceding node or its sibling group's key
    // column; the depth bound turns a cycle in a hostile file into an error.
    if m.source == node
        || m.source as usize >= nodes.len()
        || nodes[m.source as usize].items != nodes[node as usize].items
        || domain_of(snap, m.source) != domain_of(snap, node)
        || depth > 64
    {
        return Err(Error::corrupt(
            what,
            0,
            format!("mapped from node {} outside this column's domain", m.source),
        ));
    }
    let src = NodeData::decode_at(snap, m.source, depth + 1)?;
    let mut out = Vec::new();
    for i in 0..items {
        if kinds.get(i) == kind {
            let v = src
                .str_id(i)
                .and_then(|id| m.get(id))
                .ok_or_else(|| Error::corrupt(what, 0, format!("item {i} has no mapped value")))?;
            out.push(v);
        }
    }
    Ok(out)
}

/// Expand `ParentMasked` kinds: bit-packed kinds of the items whose parent
/// item is an object; every other item is `Absent`.
fn parent_masked(
    snap: &Snapshot,
    node: u32,
    meta: &crate::format::NodeMeta,
    items: usize,
    b: &[u8],
    depth: usize,
    what: &str,
) -> Result<Vec<u8>> {
    if node == 0 || !matches!(meta.name, crate::model::NodeName::Key(_)) || depth > 256 {
        return Err(Error::corrupt(
            what,
            0,
            "parent-masked kinds on a node that is not an object field",
        ));
    }
    let parent = meta.parent;
    if parent >= node || snap.footer.nodes[parent as usize].items != meta.items {
        return Err(Error::corrupt(what, 0, "parent has a different item count"));
    }
    let pk = decode_kinds(snap, parent, depth + 1)?;
    let under = (0..items).filter(|&i| pk.get(i) == Kind::Object).count();
    let sub = encoding::bitpack::decode(b, under, what)?;
    let mut it = sub.into_iter();
    Ok((0..items)
        .map(|i| {
            if pk.get(i) == Kind::Object {
                it.next().unwrap_or(Kind::Absent as u8)
            } else {
                Kind::Absent as u8
            }
        })
        .collect())
}

/// Layout 0 (`Z`, no fraction); only used for bytes that `decode` rejected.
fn default_layout() -> Layout {
    Layout::from_byte(0).unwrap_or_else(default_layout)
}
