//! The footer: directory of sections (column-wise), string tables, schema
//! nodes with their streams and statistics. Stored after the last section,
//! optionally zstd-compressed, and located by the trailer.
//!
//! ```text
//! FOOTER    := rows:varint DIRECTORY TABLES NODES
//! DIRECTORY := n:varint offset_delta:varint*n stored_len:varint*n raw_len:varint*n
//!              codec:u8*n encoding:u8*n role:u8*n crc32c:u32le*n
//! TABLES    := n:varint TABLE*n
//! TABLE     := flags:u8 n_strings:varint n_chunks:varint first_chunk:varint
//!              chunk_count:varint*n_chunks index:varint dict:varint   (index/dict: section+1, 0 = none)
//! NODES     := n:varint NODE*n
//! NODE      := [parent:varint name_tag:u8 (key:len-bytes if tag=1)]   (absent for node 0)
//!              items:varint kinds_mask:varint count:varint*popcount(kinds_mask)
//!              streams_mask:varint section:varint*popcount(streams_mask)
//!              [table:varint if Str] [ts_layout:u8 if Time and no TsLayout stream]
//!              distinct:varint STATS
//! STATS     := for Int: min,max zigzag; UInt: min,max varint; Float: min,max f64le;
//!              Str: min,max varint; Time: min,max zigzag    (only kinds present)
//! ```
//!
//! Version 3 adds the inline sections (SPEC.md 5.4); version 4 writes the
//! same NODES field by field (every node's parent distance, then every
//! name, items, kinds masks, counts, streams masks, stream section deltas,
//! tables, ts layouts, statistics as min and span: SPEC.md 5.3 `NODES_V4`).

use crate::compress::Codec;
use crate::encoding::Encoding;
use crate::encoding::varint::{self, Reader};
use crate::error::{Error, Result};
use crate::model::{KIND_COUNT, Kind, NodeName};

/// What a section holds. Values are part of the file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Role {
    /// Kind of every item of a node (absent when the node has one kind).
    Kinds = 1,
    /// i64 payloads of `Int` items.
    Ints = 2,
    /// u64 payloads of `UInt` items.
    UInts = 3,
    /// f64 payloads of `Float` items.
    Floats = 4,
    /// String ids of `Str` items.
    Strs = 5,
    /// UTC seconds of `Time` items.
    TsSecs = 6,
    /// Nanoseconds of `Time` items.
    TsNanos = 7,
    /// Layout byte of `Time` items.
    TsLayout = 8,
    /// Offset minutes of `Time` items.
    TsOffset = 9,
    /// Element counts of `Array` items.
    Lens = 10,
    /// The text of `NumText` items (version 5).
    NumText = 11,
    /// One chunk of a string table.
    StrChunk = 16,
    /// The separator index of a string table.
    StrIndex = 17,
    /// A zstd dictionary shared by a string table's chunks.
    StrDict = 18,
}

/// The per-node streams, in the order of the footer's `streams_mask` bits.
pub const STREAM_ROLES: [Role; 11] = [
    Role::Kinds,
    Role::Ints,
    Role::UInts,
    Role::Floats,
    Role::Strs,
    Role::TsSecs,
    Role::TsNanos,
    Role::TsLayout,
    Role::TsOffset,
    Role::Lens,
    Role::NumText,
];

impl Role {
    /// Decode a role byte.
    pub fn from_u8(b: u8) -> Option<Role> {
        STREAM_ROLES
            .iter()
            .copied()
            .find(|r| *r as u8 == b)
            .or(match b {
                16 => Some(Role::StrChunk),
                17 => Some(Role::StrIndex),
                18 => Some(Role::StrDict),
                _ => None,
            })
    }

    /// Position in [`STREAM_ROLES`] for per-node streams.
    pub fn stream_index(self) -> Option<usize> {
        STREAM_ROLES.iter().position(|r| *r == self)
    }

    /// Name used by `inspect` and errors.
    pub fn name(self) -> &'static str {
        match self {
            Role::Kinds => "kinds",
            Role::Ints => "ints",
            Role::UInts => "uints",
            Role::Floats => "floats",
            Role::Strs => "string-ids",
            Role::TsSecs => "ts-secs",
            Role::TsNanos => "ts-nanos",
            Role::TsLayout => "ts-layout",
            Role::TsOffset => "ts-offset",
            Role::Lens => "list-lengths",
            Role::NumText => "number-text",
            Role::StrChunk => "string-chunk",
            Role::StrIndex => "string-index",
            Role::StrDict => "string-dict",
        }
    }
}

/// One directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEntry {
    /// Where the section starts in the file: its frame (format version 1)
    /// or its payload (version 2).
    pub offset: u64,
    /// Payload length as stored.
    pub stored_len: u32,
    /// Payload length decompressed.
    pub raw_len: u32,
    /// Codec.
    pub codec: Codec,
    /// Encoding of the decompressed payload.
    pub encoding: Encoding,
    /// Role byte.
    pub role: u8,
    /// crc32c of the stored payload.
    pub crc: u32,
    /// Format version 1 layout: the section starts with a 16-byte frame
    /// (equal to this entry) and is zero-padded to a multiple of 8, and a
    /// zstd payload is a whole frame. Version 2 (`false`): the section is
    /// its payload alone, and a zstd payload lacks the frame's 4-byte magic
    /// (SPEC.md sections 2.2 and 3).
    pub framed: bool,
    /// Version 3: the section is **inline**, its raw payload kept in the
    /// footer ([`Footer::inline`], from byte `offset` of it) rather than in
    /// the file's sections: stored raw (codec none), without a checksum of
    /// its own (the footer's covers it), and never fetched (SPEC.md 5.4).
    /// Its `range` and `end` are not byte ranges of the file.
    pub inline: bool,
}

impl SectionEntry {
    /// Bytes before the payload: the frame in version 1, none in version 2.
    pub fn frame_len(&self) -> u64 {
        if self.framed {
            super::SECTION_HEADER_LEN as u64
        } else {
            0
        }
    }

    /// Where the stored payload starts.
    pub fn payload_offset(&self) -> u64 {
        self.offset + self.frame_len()
    }

    /// The bytes a reader fetches for this section: frame and payload
    /// (version 1; the padding need not be read) or the payload (version 2).
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.payload_offset() + self.stored_len as u64
    }

    /// Where the next section (or the footer) starts: the end of
    /// [`SectionEntry::range`], plus the padding to 8 in version 1.
    pub fn end(&self) -> u64 {
        let end = self.range().end;
        if self.framed {
            end + super::section::padding(end - self.offset)
        } else {
            end
        }
    }
}

/// A string table.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TableMeta {
    /// Bit 0: long-text table (large chunks); bit 1: chunks are front-coded;
    /// bit 2: strings in row order (ids do not order like their strings).
    pub flags: u8,
    /// Strings in the table.
    pub n_strings: u64,
    /// Section index of the first chunk; chunks are consecutive sections.
    pub first_chunk: u32,
    /// Strings in each chunk.
    pub chunk_counts: Vec<u32>,
    /// Section holding the chunk separators (absent when there is one chunk or none).
    pub index_section: Option<u32>,
    /// Section holding the zstd dictionary of the chunks.
    pub dict_section: Option<u32>,
}

/// The most nodes (columns of every kind, the root included) a snapshot
/// may hold, and the most string tables (a table no node uses is useless;
/// writers make two at most): 2^20. A reader keeps a few hundred bytes of metadata per
/// node, so this bounds what a footer can make it allocate (about 350 MB)
/// whatever count it claims; the builder's `max_columns` (65,535 by
/// default) cannot be raised past it.
pub const MAX_NODES: usize = 1 << 20;

/// The most rows (and items in one node) a snapshot may hold: item indexes
/// and string ids are u32.
pub const MAX_ITEMS: u64 = u32::MAX as u64;
/// The deepest a node may hang below the root; nodes this deep hold no
/// objects or arrays. The builder refuses rows nesting more than
/// `schema::builder::MAX_NESTING` (126) objects and arrays, so a built
/// snapshot never exceeds this; the bound keeps readers' recursion and
/// column paths small, and every exported row readable by serde_json again.
pub const MAX_DEPTH: usize = 126;

/// Table flag: long-text table.
pub const TABLE_LONG_TEXT: u8 = 1;
/// Table flag: chunks are front-coded.
pub const TABLE_FRONT_CODED: u8 = 2;
/// Table flag: the strings are stored in the order the rows first use
/// them, not in byte-wise order, so ids do not order like their strings
/// (SPEC.md 7.6); such a table has no separator index.
pub const TABLE_ROW_ORDER: u8 = 4;

/// Per-node statistics.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Stats {
    /// Distinct non-null scalar values.
    pub distinct: u64,
    /// Min and max of `Int` items.
    pub int: Option<(i64, i64)>,
    /// Min and max of `UInt` items.
    pub uint: Option<(u64, u64)>,
    /// Min and max of `Float` items.
    pub float: Option<(f64, f64)>,
    /// Min and max string ids of `Str` items.
    pub str: Option<(u32, u32)>,
    /// Min and max UTC seconds of `Time` items.
    pub time: Option<(i64, i64)>,
}

/// One schema node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeMeta {
    /// Parent node (node 0 is its own parent).
    pub parent: u32,
    /// How the node hangs off its parent.
    pub name: NodeName,
    /// Items in the node's domain.
    pub items: u64,
    /// Items of each kind.
    pub counts: [u64; KIND_COUNT],
    /// Section of each stream in [`STREAM_ROLES`] order.
    pub streams: [Option<u32>; STREAM_ROLES.len()],
    /// String table of `Str` items.
    pub table: u32,
    /// Layout of every `Time` item when there is no `TsLayout` stream.
    pub ts_layout: u8,
    /// Statistics.
    pub stats: Stats,
}

impl NodeMeta {
    /// The single kind of every item, when the node has no kinds stream.
    pub fn const_kind(&self) -> Option<Kind> {
        let mut present = Kind::ALL.iter().filter(|k| self.counts[**k as usize] > 0);
        match (present.next(), present.next()) {
            (Some(k), None) => Some(*k),
            (None, None) => Some(Kind::Absent),
            _ => None,
        }
    }

    /// Section of a stream.
    pub fn stream(&self, role: Role) -> Option<u32> {
        role.stream_index().and_then(|i| self.streams[i])
    }

    /// Items of kind `k`.
    pub fn count(&self, k: Kind) -> u64 {
        self.counts[k as usize]
    }
}

/// The decoded footer.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Footer {
    /// Rows in the snapshot.
    pub rows: u64,
    /// Every section, in file order.
    pub sections: Vec<SectionEntry>,
    /// String tables.
    pub tables: Vec<TableMeta>,
    /// Schema nodes; node 0 is the row.
    pub nodes: Vec<NodeMeta>,
    /// Version 3: the payloads of the inline sections (the last sections of
    /// [`Footer::sections`]), one after another (SPEC.md 5.4).
    pub inline: Vec<u8>,
}

fn put_opt(out: &mut Vec<u8>, v: Option<u32>) {
    varint::put_u64(out, v.map_or(0, |x| x as u64 + 1));
}

fn put_name(o: &mut Vec<u8>, name: &NodeName) {
    match name {
        NodeName::Key(k) => {
            o.push(1);
            varint::put_bytes(o, k.as_bytes());
        }
        _ => o.push(2),
    }
}

fn kinds_mask(n: &NodeMeta) -> u64 {
    (0..KIND_COUNT)
        .filter(|&k| n.counts[k] > 0)
        .map(|k| 1 << k)
        .sum()
}

fn streams_mask(n: &NodeMeta) -> u64 {
    (0..STREAM_ROLES.len())
        .filter(|&i| n.streams[i].is_some())
        .map(|i| 1 << i)
        .sum()
}

/// `kinds_mask` and the counts (versions 1-3).
fn put_counts(o: &mut Vec<u8>, n: &NodeMeta) {
    varint::put_u64(o, kinds_mask(n));
    for &c in n.counts.iter().filter(|&&c| c > 0) {
        varint::put_u64(o, c);
    }
}

/// The streams: versions 1-3 `streams_mask` and the section numbers;
/// version 4 (`prev` given) only the numbers, each as the zigzag difference
/// from the previous one.
fn put_streams(o: &mut Vec<u8>, n: &NodeMeta, prev: Option<&mut u32>) {
    match prev {
        None => {
            varint::put_u64(o, streams_mask(n));
            for s in n.streams.iter().flatten() {
                varint::put_u64(o, *s as u64);
            }
        }
        Some(prev) => {
            for &s in n.streams.iter().flatten() {
                varint::put_i64(o, s as i64 - *prev as i64);
                *prev = s;
            }
        }
    }
}

fn put_table_layout(o: &mut Vec<u8>, n: &NodeMeta) {
    if n.count(Kind::Str) > 0 {
        varint::put_u64(o, n.table as u64);
    }
    if n.count(Kind::Time) > 0 && n.stream(Role::TsLayout).is_none() {
        o.push(n.ts_layout);
    }
}

/// `distinct` and STATS: versions 1-3 give each kind's min and max;
/// version 4 (`span`) its min and `max - min` (wrapping, as a varint).
fn put_stats(o: &mut Vec<u8>, n: &NodeMeta, span: bool) {
    let st = &n.stats;
    varint::put_u64(o, st.distinct);
    let signed = |o: &mut Vec<u8>, (a, b): (i64, i64)| {
        varint::put_i64(o, a);
        if span {
            varint::put_u64(o, (b as u64).wrapping_sub(a as u64));
        } else {
            varint::put_i64(o, b);
        }
    };
    let unsigned = |o: &mut Vec<u8>, (a, b): (u64, u64)| {
        varint::put_u64(o, a);
        varint::put_u64(o, if span { b.wrapping_sub(a) } else { b });
    };
    if n.count(Kind::Int) > 0 {
        signed(o, st.int.unwrap_or_default());
    }
    if n.count(Kind::UInt) > 0 {
        unsigned(o, st.uint.unwrap_or_default());
    }
    if n.count(Kind::Float) > 0 {
        let (a, b) = st.float.unwrap_or_default();
        o.extend_from_slice(&a.to_bits().to_le_bytes());
        o.extend_from_slice(&b.to_bits().to_le_bytes());
    }
    if n.count(Kind::Str) > 0 {
        let (a, b) = st.str.unwrap_or_default();
        let b = if span { b.wrapping_sub(a) } else { b };
        varint::put_u64(o, a as u64);
        varint::put_u64(o, b as u64);
    }
    if n.count(Kind::Time) > 0 {
        signed(o, st.time.unwrap_or_default());
    }
}

/// Version 4 NODES after the count (SPEC.md 5.3): field by field, each
/// field of every node before the next field, so that like values sit
/// together for the footer's compression.
fn put_nodes_by_field(o: &mut Vec<u8>, nodes: &[NodeMeta]) {
    for (i, n) in nodes.iter().enumerate().skip(1) {
        varint::put_u64(o, (i as u64).wrapping_sub(n.parent as u64));
    }
    for n in nodes.iter().skip(1) {
        put_name(o, &n.name);
    }
    for n in nodes {
        varint::put_u64(o, n.items);
    }
    for n in nodes {
        varint::put_u64(o, kinds_mask(n));
    }
    for n in nodes {
        for &c in n.counts.iter().filter(|&&c| c > 0) {
            varint::put_u64(o, c);
        }
    }
    for n in nodes {
        varint::put_u64(o, streams_mask(n));
    }
    let mut prev = 0u32;
    for n in nodes {
        put_streams(o, n, Some(&mut prev));
    }
    for n in nodes.iter().filter(|n| n.count(Kind::Str) > 0) {
        varint::put_u64(o, n.table as u64);
    }
    for n in nodes {
        if n.count(Kind::Time) > 0 && n.stream(Role::TsLayout).is_none() {
            o.push(n.ts_layout);
        }
    }
    for n in nodes {
        put_stats(o, n, true);
    }
}

/// What node fields refer to: the sections (with inline ones) and the
/// number of string tables.
struct NodeRefs<'a> {
    sections: &'a [SectionEntry],
    tables: usize,
    /// The file's format version: `NumText` items and their stream exist
    /// from version 5 on.
    version: u16,
}

impl NodeRefs<'_> {
    /// Kinds this version has (`NumText` from version 5).
    fn kinds(&self) -> usize {
        if self.version >= super::VERSION_5 {
            KIND_COUNT
        } else {
            KIND_COUNT - 1
        }
    }

    /// Streams this version has (`num-text` from version 5).
    fn streams(&self) -> usize {
        if self.version >= super::VERSION_5 {
            STREAM_ROLES.len()
        } else {
            STREAM_ROLES.len() - 1
        }
    }
}

/// An error in node `i`'s fields, at byte `at` of the raw footer.
fn node_err(i: usize, at: usize, d: impl Into<String>) -> Error {
    Error::corrupt(format!("node {i}"), at as u64, d.into())
}

/// A reader error (a truncated field, a bad varint) named after node `i`:
/// "node items" becomes "node 7 items", "stat" "node 7 stat".
fn in_node(i: usize) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Corrupt {
            what,
            offset,
            detail,
        } if !what.starts_with(&format!("node {i}")) => Error::Corrupt {
            what: match what.strip_prefix("node ") {
                Some(rest) => format!("node {i} {rest}"),
                None => format!("node {i} {what}"),
            },
            offset,
            detail,
        },
        e => e,
    }
}

fn read_name(r: &mut Reader, i: usize) -> Result<NodeName> {
    match r.u8("node name tag")? {
        1 => Ok(NodeName::Key(r.str("node key")?.to_string())),
        2 => Ok(NodeName::Elem),
        t => Err(node_err(i, r.pos(), format!("unknown name tag {t}"))),
    }
}

fn read_items(r: &mut Reader, i: usize) -> Result<u64> {
    let items = r.u64("node items")?;
    if items > MAX_ITEMS {
        return Err(node_err(
            i,
            r.pos(),
            format!("{items} items exceed the limit of {MAX_ITEMS} (2^32-1)"),
        ));
    }
    Ok(items)
}

fn read_kinds_mask(r: &mut Reader, i: usize, refs: &NodeRefs) -> Result<u64> {
    let mask = r.u64("node kinds mask")?;
    if mask >> refs.kinds() != 0 {
        return Err(node_err(
            i,
            r.pos(),
            format!("unknown kinds in mask {mask:#x}"),
        ));
    }
    Ok(mask)
}

/// The counts of the kinds in `mask`, which add up to `items`.
fn read_counts(r: &mut Reader, i: usize, mask: u64, items: u64) -> Result<[u64; KIND_COUNT]> {
    let mut counts = [0u64; KIND_COUNT];
    let mut sum = 0u64;
    for (k, c) in counts.iter_mut().enumerate() {
        if mask & (1 << k) != 0 {
            *c = r.u64("node kind count")?;
            let at = r.pos();
            if *c == 0 {
                return Err(node_err(i, at, "zero count for a kind in the mask"));
            }
            sum = sum
                .checked_add(*c)
                .ok_or_else(|| node_err(i, at, "counts overflow"))?;
        }
    }
    if sum != items {
        return Err(node_err(
            i,
            r.pos(),
            format!("kind counts add up to {sum}, node has {items} items"),
        ));
    }
    Ok(counts)
}

fn read_streams_mask(r: &mut Reader, i: usize, refs: &NodeRefs) -> Result<u64> {
    let smask = r.u64("node streams mask")?;
    if smask >> refs.streams() != 0 {
        return Err(node_err(
            i,
            r.pos(),
            format!("unknown streams in mask {smask:#x}"),
        ));
    }
    Ok(smask)
}

/// The sections of the streams in `smask`: versions 1-3 number them,
/// version 4 (`prev` given) gives each as the zigzag difference from the
/// previous stream's number.
fn read_streams(
    r: &mut Reader,
    i: usize,
    smask: u64,
    refs: &NodeRefs,
    mut prev: Option<&mut u32>,
) -> Result<[Option<u32>; STREAM_ROLES.len()]> {
    let n = refs.sections.len();
    let mut streams = [None; STREAM_ROLES.len()];
    for (s, slot) in streams.iter_mut().enumerate() {
        if smask & (1 << s) == 0 {
            continue;
        }
        let v = match prev.as_deref_mut() {
            None => r.u64("node stream")?,
            Some(p) => {
                let d = r.i64("node stream")?;
                let v = (*p as i64).checked_add(d).filter(|v| *v >= 0);
                let at = r.pos();
                let v = v.ok_or_else(|| {
                    node_err(
                        i,
                        at,
                        format!("stream section {} + {d} is negative or overflows", *p),
                    )
                })?;
                v as u64
            }
        };
        if v >= n as u64 {
            return Err(node_err(
                i,
                r.pos(),
                format!("section {v} does not exist ({n} sections)"),
            ));
        }
        let sec = v as u32;
        if let Some(p) = prev.as_deref_mut() {
            *p = sec;
        }
        if refs.sections[v as usize].role != STREAM_ROLES[s] as u8 {
            return Err(node_err(
                i,
                r.pos(),
                format!("section {sec} is not a {} stream", STREAM_ROLES[s].name()),
            ));
        }
        *slot = Some(sec);
    }
    Ok(streams)
}

fn read_table(r: &mut Reader, i: usize, refs: &NodeRefs) -> Result<u32> {
    let table = r.u64("node table")?;
    if table >= refs.tables as u64 {
        return Err(node_err(
            i,
            r.pos(),
            format!("string table {table} does not exist"),
        ));
    }
    Ok(table as u32)
}

/// `distinct` and STATS for a node with `counts`: versions 1-3 give min and
/// max, version 4 (`span`) min and the wrapping `max - min`.
/// String ids, and so their statistics, fit u32: a larger value is refused.
fn read_stats(r: &mut Reader, i: usize, counts: &[u64; KIND_COUNT], span: bool) -> Result<Stats> {
    let has = |k: Kind| counts[k as usize] > 0;
    let mut stats = Stats {
        distinct: r.u64("node distinct")?,
        ..Default::default()
    };
    let signed = |r: &mut Reader| -> Result<(i64, i64)> {
        let a = r.i64("stat")?;
        let b = if span {
            (a as u64).wrapping_add(r.u64("stat")?) as i64
        } else {
            r.i64("stat")?
        };
        Ok((a, b))
    };
    if has(Kind::Int) {
        stats.int = Some(signed(r)?);
    }
    if has(Kind::UInt) {
        let a = r.u64("stat")?;
        let b = r.u64("stat")?;
        stats.uint = Some((a, if span { a.wrapping_add(b) } else { b }));
    }
    if has(Kind::Float) {
        let a = f64::from_bits(u64::from_le_bytes(
            r.bytes(8, "stat")?.try_into().unwrap_or_default(),
        ));
        let b = f64::from_bits(u64::from_le_bytes(
            r.bytes(8, "stat")?.try_into().unwrap_or_default(),
        ));
        stats.float = Some((a, b));
    }
    if has(Kind::Str) {
        let id = |r: &mut Reader, what: &str| -> Result<u32> {
            let v = r.u64("stat")?;
            u32::try_from(v)
                .map_err(|_| node_err(i, r.pos(), format!("{what} {v} does not fit u32")))
        };
        let a = id(r, "str_min")?;
        let b = id(r, if span { "str_span" } else { "str_max" })?;
        stats.str = Some((a, if span { a.wrapping_add(b) } else { b }));
    }
    if has(Kind::Time) {
        stats.time = Some(signed(r)?);
    }
    Ok(stats)
}

/// Versions 1-3: NODES node by node (after the count `nn`). The nodes are
/// kept as they are read: a count that the bytes do not back allocates
/// nothing.
fn read_nodes_by_node(r: &mut Reader, nn: usize, refs: &NodeRefs) -> Result<Vec<NodeMeta>> {
    let mut nodes: Vec<NodeMeta> = Vec::new();
    for i in 0..nn {
        nodes.push(read_node(r, i, refs).map_err(in_node(i))?);
    }
    Ok(nodes)
}

/// Node `i` of a version 1-3 footer.
fn read_node(r: &mut Reader, i: usize, refs: &NodeRefs) -> Result<NodeMeta> {
    let (parent, name) = if i == 0 {
        (0, NodeName::Root)
    } else {
        let p = r.u64("node parent")?;
        if p >= i as u64 {
            return Err(node_err(
                i,
                r.pos(),
                format!("parent {p} does not precede the node"),
            ));
        }
        (p as u32, read_name(r, i)?)
    };
    let items = read_items(r, i)?;
    let mask = read_kinds_mask(r, i, refs)?;
    let counts = read_counts(r, i, mask, items)?;
    let smask = read_streams_mask(r, i, refs)?;
    let streams = read_streams(r, i, smask, refs, None)?;
    let has = |k: Kind| counts[k as usize] > 0;
    let table = if has(Kind::Str) {
        read_table(r, i, refs)?
    } else {
        0
    };
    let ts_layout = if has(Kind::Time) && streams[7].is_none() {
        r.u8("node ts layout")?
    } else {
        0
    };
    let stats = read_stats(r, i, &counts, false)?;
    Ok(NodeMeta {
        parent,
        name,
        items,
        counts,
        streams,
        table,
        ts_layout,
        stats,
    })
}

/// Version 4: NODES field by field (SPEC.md 5.3), after the count `nn`.
/// The nodes are made as their parents and names are read: a count that
/// the bytes do not back allocates nothing.
fn read_nodes_by_field(r: &mut Reader, nn: usize, refs: &NodeRefs) -> Result<Vec<NodeMeta>> {
    let mut parents: Vec<u32> = vec![0];
    for i in 1..nn {
        let d = r.u64("node parent").map_err(in_node(i))?;
        if d == 0 || d > i as u64 {
            return Err(node_err(
                i,
                r.pos(),
                format!("parent distance {d} is not in 1..={i}"),
            ));
        }
        parents.push((i as u64 - d) as u32);
    }
    let mut nodes: Vec<NodeMeta> = Vec::new();
    for (i, parent) in parents.into_iter().enumerate() {
        let name = if i == 0 {
            NodeName::Root
        } else {
            read_name(r, i).map_err(in_node(i))?
        };
        nodes.push(NodeMeta {
            parent,
            name,
            items: 0,
            counts: [0; KIND_COUNT],
            streams: [None; STREAM_ROLES.len()],
            table: 0,
            ts_layout: 0,
            stats: Stats::default(),
        });
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        n.items = read_items(r, i).map_err(in_node(i))?;
    }
    let mut masks = Vec::with_capacity(nn);
    for i in 0..nn {
        masks.push(read_kinds_mask(r, i, refs).map_err(in_node(i))?);
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        n.counts = read_counts(r, i, masks[i], n.items).map_err(in_node(i))?;
    }
    masks.clear();
    for i in 0..nn {
        masks.push(read_streams_mask(r, i, refs).map_err(in_node(i))?);
    }
    let mut prev = 0u32;
    for (i, n) in nodes.iter_mut().enumerate() {
        n.streams = read_streams(r, i, masks[i], refs, Some(&mut prev)).map_err(in_node(i))?;
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        if n.count(Kind::Str) > 0 {
            n.table = read_table(r, i, refs).map_err(in_node(i))?;
        }
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        if n.count(Kind::Time) > 0 && n.streams[7].is_none() {
            n.ts_layout = r.u8("node ts layout").map_err(in_node(i))?;
        }
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        n.stats = read_stats(r, i, &n.counts, true).map_err(in_node(i))?;
    }
    Ok(nodes)
}

/// The structural rules that need only the footer (SPEC.md 5.3): the root,
/// depths, items against the parent's, and which streams are present.
fn check_nodes(nodes: &[NodeMeta], rows: u64) -> Result<()> {
    let mut depth: Vec<usize> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        let what = format!("node {i}");
        let has = |k: Kind| node.count(k) > 0;
        if i == 0 {
            depth.push(0);
            if node.items != rows || node.count(Kind::Object) != rows {
                return Err(Error::corrupt(
                    &what,
                    0,
                    format!("the root must have {rows} object items"),
                ));
            }
        } else {
            let parent = node.parent as usize;
            if depth[parent] >= MAX_DEPTH {
                return Err(Error::corrupt(
                    &what,
                    0,
                    format!("nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            depth.push(depth[parent] + 1);
            let p = &nodes[parent];
            let expect = match node.name {
                NodeName::Elem => None,
                _ => Some(p.items),
            };
            if let Some(e) = expect {
                if node.items != e {
                    return Err(Error::corrupt(
                        &what,
                        0,
                        format!("{} items but its parent has {e}", node.items),
                    ));
                }
                if node.items - node.count(Kind::Absent) > p.count(Kind::Object) {
                    return Err(Error::corrupt(
                        &what,
                        0,
                        "more present items than the parent has objects",
                    ));
                }
            } else if node.count(Kind::Absent) > 0 {
                return Err(Error::corrupt(&what, 0, "array elements cannot be absent"));
            }
        }
        if depth[i] == MAX_DEPTH && (has(Kind::Object) || has(Kind::Array)) {
            return Err(Error::corrupt(
                &what,
                0,
                format!("objects or arrays nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let needs_kinds = node.const_kind().is_none();
        if needs_kinds != node.stream(Role::Kinds).is_some() {
            return Err(Error::corrupt(
                &what,
                0,
                "kinds stream present exactly when the node has several kinds",
            ));
        }
        for (role, kind) in [
            (Role::Ints, Kind::Int),
            (Role::UInts, Kind::UInt),
            (Role::Floats, Kind::Float),
            (Role::Strs, Kind::Str),
            (Role::TsSecs, Kind::Time),
            (Role::Lens, Kind::Array),
            (Role::NumText, Kind::NumText),
        ] {
            if has(kind) != node.stream(role).is_some() {
                return Err(Error::corrupt(
                    &what,
                    0,
                    format!(
                        "{} stream present exactly when there are {} items",
                        role.name(),
                        kind.name()
                    ),
                ));
            }
        }
        for role in [Role::TsNanos, Role::TsLayout, Role::TsOffset] {
            if node.stream(role).is_some() && !has(Kind::Time) {
                return Err(Error::corrupt(
                    &what,
                    0,
                    format!("{} stream without timestamps", role.name()),
                ));
            }
        }
    }
    Ok(())
}

impl Footer {
    /// The sections stored in the file (every section before version 3;
    /// in version 3 those before the inline ones).
    pub fn file_sections(&self) -> usize {
        self.sections.iter().take_while(|e| !e.inline).count()
    }

    /// The payload of inline section entry `e` (empty for another).
    pub fn inline_payload(&self, e: &SectionEntry) -> &[u8] {
        if !e.inline {
            return &[];
        }
        let a = e.offset as usize;
        self.inline
            .get(a..a + e.stored_len as usize)
            .unwrap_or_default()
    }

    /// Serialize (before compression) for format `version`: inline sections
    /// (which must follow every other) exist only in version 3 and later.
    pub fn to_bytes(&self, version: u16) -> Vec<u8> {
        let mut o = Vec::new();
        varint::put_u64(&mut o, self.rows);
        let n_file = self.file_sections();
        let (s, inl) = self.sections.split_at(n_file);
        debug_assert!(inl.iter().all(|e| e.inline));
        debug_assert!(inl.is_empty() || version >= super::VERSION_3);
        varint::put_u64(&mut o, s.len() as u64);
        let mut prev = 0u64;
        for e in s {
            varint::put_u64(&mut o, e.offset - prev);
            prev = e.offset;
        }
        for e in s {
            varint::put_u64(&mut o, e.stored_len as u64);
        }
        for e in s {
            varint::put_u64(&mut o, e.raw_len as u64);
        }
        o.extend(s.iter().map(|e| e.codec as u8));
        o.extend(s.iter().map(|e| e.encoding as u8));
        o.extend(s.iter().map(|e| e.role));
        for e in s {
            o.extend_from_slice(&e.crc.to_le_bytes());
        }
        if version >= super::VERSION_3 {
            varint::put_u64(&mut o, inl.len() as u64);
            for e in inl {
                varint::put_u64(&mut o, e.raw_len as u64);
            }
            o.extend(inl.iter().map(|e| e.encoding as u8));
            o.extend(inl.iter().map(|e| e.role));
        }
        varint::put_u64(&mut o, self.tables.len() as u64);
        for t in &self.tables {
            o.push(t.flags);
            varint::put_u64(&mut o, t.n_strings);
            varint::put_u64(&mut o, t.chunk_counts.len() as u64);
            varint::put_u64(&mut o, t.first_chunk as u64);
            for &c in &t.chunk_counts {
                varint::put_u64(&mut o, c as u64);
            }
            put_opt(&mut o, t.index_section);
            put_opt(&mut o, t.dict_section);
        }
        varint::put_u64(&mut o, self.nodes.len() as u64);
        if version >= super::VERSION_4 {
            put_nodes_by_field(&mut o, &self.nodes);
        } else {
            for (i, n) in self.nodes.iter().enumerate() {
                if i > 0 {
                    varint::put_u64(&mut o, n.parent as u64);
                    put_name(&mut o, &n.name);
                }
                varint::put_u64(&mut o, n.items);
                put_counts(&mut o, n);
                put_streams(&mut o, n, None);
                put_table_layout(&mut o, n);
                put_stats(&mut o, n, false);
            }
        }
        if version >= super::VERSION_3 {
            o.extend_from_slice(&self.inline);
        }
        o
    }

    /// Parse footer bytes (after decompression), validating every count
    /// against the bytes that remain before allocating, and every reference
    /// against what exists. `footer_offset` is where the footer starts in the
    /// file; every section must end before it. `version` (the file's format
    /// version, already checked) says how sections are laid out: in both, the
    /// sections tile the file from the header to the footer.
    pub fn parse(b: &[u8], footer_offset: u64, version: u16) -> Result<Footer> {
        let framed = version == super::VERSION_1;
        let mut r = Reader::new(b);
        let rows = r.u64("footer rows")?;
        if rows > MAX_ITEMS {
            return Err(Error::corrupt(
                "footer",
                0,
                format!("{rows} rows exceed the limit of {MAX_ITEMS} (2^32-1)"),
            ));
        }
        let n = r.len("footer section count", (r.remaining() / 9) as u64)?;
        let mut offsets = Vec::with_capacity(n);
        let mut prev = 0u64;
        for _ in 0..n {
            let d = r.u64("section offset")?;
            prev = prev
                .checked_add(d)
                .ok_or_else(|| Error::corrupt("directory", 0, "section offset overflows"))?;
            offsets.push(prev);
        }
        let mut stored = Vec::with_capacity(n);
        for _ in 0..n {
            stored.push(
                u32::try_from(r.u64("section stored_len")?)
                    .map_err(|_| Error::corrupt("directory", 0, "stored_len exceeds u32"))?,
            );
        }
        let mut raw = Vec::with_capacity(n);
        for _ in 0..n {
            raw.push(
                u32::try_from(r.u64("section raw_len")?)
                    .map_err(|_| Error::corrupt("directory", 0, "raw_len exceeds u32"))?,
            );
        }
        let codecs = r.bytes(n, "section codecs")?;
        let encs = r.bytes(n, "section encodings")?;
        let roles = r.bytes(n, "section roles")?;
        let crcs = r.bytes(n * 4, "section checksums")?;
        let mut sections = Vec::with_capacity(n);
        let mut end = super::HEADER_LEN as u64;
        for i in 0..n {
            let what = |d: String| Error::corrupt(format!("directory entry {i}"), offsets[i], d);
            let codec = Codec::from_u8(codecs[i])
                .ok_or_else(|| what(format!("unknown codec {}", codecs[i])))?;
            let encoding = Encoding::from_u8(encs[i])
                .ok_or_else(|| what(format!("unknown encoding {}", encs[i])))?;
            if Role::from_u8(roles[i]).is_none() {
                return Err(what(format!("unknown role {}", roles[i])));
            }
            if offsets[i] != end {
                return Err(what(format!(
                    "section starts at {} but the previous one ends at {end}",
                    offsets[i]
                )));
            }
            if !framed && stored[i] == 0 {
                // Version 2: a section is its payload, and no valid payload
                // is empty (so every section is a non-empty byte range).
                return Err(what("empty section".into()));
            }
            if codec == Codec::None && stored[i] != raw[i] {
                return Err(what(format!(
                    "uncompressed section with stored_len {} != raw_len {}",
                    stored[i], raw[i]
                )));
            }
            let c = &crcs[i * 4..i * 4 + 4];
            let entry = SectionEntry {
                offset: offsets[i],
                stored_len: stored[i],
                raw_len: raw[i],
                codec,
                encoding,
                role: roles[i],
                crc: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                framed,
                inline: false,
            };
            end = entry.end();
            if end > footer_offset {
                return Err(what(format!(
                    "section ends at {end}, past the footer at {footer_offset}"
                )));
            }
            sections.push(entry);
        }
        if end != footer_offset {
            return Err(Error::corrupt(
                "directory",
                end,
                format!("sections end at {end} but the footer starts at {footer_offset}"),
            ));
        }
        // Version 3: the inline sections, numbered after the others, their
        // payloads at the footer's end (checked once the nodes are read).
        let mut inline_len = 0u64;
        if version >= super::VERSION_3 {
            let m = r.len("inline section count", (r.remaining() / 3) as u64)?;
            let mut raw = Vec::with_capacity(m);
            for _ in 0..m {
                raw.push(
                    u32::try_from(r.u64("inline section raw_len")?).map_err(|_| {
                        Error::corrupt("directory", 0, "inline raw_len exceeds u32")
                    })?,
                );
            }
            let encs = r.bytes(m, "inline section encodings")?;
            let roles = r.bytes(m, "inline section roles")?;
            for k in 0..m {
                let i = n + k;
                let what = |d: String| Error::corrupt(format!("directory entry {i}"), 0, d);
                let encoding = Encoding::from_u8(encs[k])
                    .ok_or_else(|| what(format!("unknown encoding {}", encs[k])))?;
                let role = Role::from_u8(roles[k])
                    .ok_or_else(|| what(format!("unknown role {}", roles[k])))?;
                if role.stream_index().is_none() {
                    return Err(what(format!(
                        "a {} section cannot be inline (only node streams are)",
                        role.name()
                    )));
                }
                if raw[k] == 0 {
                    return Err(what("empty section".into()));
                }
                sections.push(SectionEntry {
                    offset: inline_len,
                    stored_len: raw[k],
                    raw_len: raw[k],
                    codec: Codec::None,
                    encoding,
                    role: roles[k],
                    crc: 0,
                    framed: false,
                    inline: true,
                });
                inline_len += raw[k] as u64;
            }
            if inline_len > r.remaining() as u64 {
                return Err(Error::corrupt(
                    "directory",
                    0,
                    format!(
                        "inline sections of {inline_len} bytes, {} footer bytes left",
                        r.remaining()
                    ),
                ));
            }
        }
        let n = sections.len();
        let section_ref = |v: u64, what: &str| -> Result<u32> {
            if v >= n as u64 {
                return Err(Error::corrupt(
                    what,
                    0,
                    format!("section {v} does not exist ({n} sections)"),
                ));
            }
            Ok(v as u32)
        };
        let opt_ref = |v: u64, what: &str| -> Result<Option<u32>> {
            if v == 0 {
                Ok(None)
            } else {
                section_ref(v - 1, what).map(Some)
            }
        };
        let nt = r.len(
            "table count",
            (MAX_NODES as u64).min(r.remaining() as u64 / 6),
        )?;
        // Grown as tables are read (a table's metadata is ten times its
        // least bytes): a count the bytes do not back allocates nothing.
        let mut tables = Vec::new();
        for t in 0..nt {
            let flags = r.u8("table flags")?;
            if flags & !(TABLE_LONG_TEXT | TABLE_FRONT_CODED | TABLE_ROW_ORDER) != 0 {
                return Err(Error::corrupt(
                    format!("table {t}"),
                    0,
                    format!("unknown flags {flags:#x}"),
                ));
            }
            let n_strings = r.u64("table string count")?;
            let nc = r.len("table chunk count", r.remaining() as u64)?;
            let first_chunk = r.u64("table first chunk")?;
            if nc > 0
                && first_chunk
                    .checked_add(nc as u64)
                    .is_none_or(|e| e > n as u64)
            {
                return Err(Error::corrupt(
                    format!("table {t}"),
                    0,
                    "chunks past the last section",
                ));
            }
            let mut chunk_counts = Vec::new();
            let mut total = 0u64;
            for _ in 0..nc {
                let c = r.u64("chunk string count")?;
                if c == 0 || c > u32::MAX as u64 {
                    return Err(Error::corrupt(
                        format!("table {t}"),
                        0,
                        format!("chunk of {c} strings"),
                    ));
                }
                total += c;
                chunk_counts.push(c as u32);
            }
            if total != n_strings {
                return Err(Error::corrupt(
                    format!("table {t}"),
                    0,
                    format!("chunks hold {total} strings, table declares {n_strings}"),
                ));
            }
            if n_strings > u32::MAX as u64 - 1 {
                return Err(Error::corrupt(
                    format!("table {t}"),
                    0,
                    "more than 2^32-2 strings",
                ));
            }
            let index_section = opt_ref(r.u64("table index")?, "table index")?;
            let dict_section = opt_ref(r.u64("table dict")?, "table dict")?;
            if flags & TABLE_ROW_ORDER != 0 && index_section.is_some() {
                return Err(Error::corrupt(
                    format!("table {t}"),
                    0,
                    "a table in row order has no separator index",
                ));
            }
            for c in 0..nc as u32 {
                let s = first_chunk as u32 + c;
                if sections[s as usize].role != Role::StrChunk as u8 {
                    return Err(Error::corrupt(
                        format!("table {t}"),
                        0,
                        format!("section {s} is not a string chunk"),
                    ));
                }
            }
            for (s, role) in [
                (index_section, Role::StrIndex),
                (dict_section, Role::StrDict),
            ] {
                if let Some(s) = s
                    && sections[s as usize].role != role as u8
                {
                    return Err(Error::corrupt(
                        format!("table {t}"),
                        0,
                        format!("section {s} is not a {}", role.name()),
                    ));
                }
            }
            tables.push(TableMeta {
                flags,
                n_strings,
                first_chunk: first_chunk as u32,
                chunk_counts,
                index_section,
                dict_section,
            });
        }
        // Every node takes at least 6 bytes (parent, name tag, items, kinds
        // mask, streams mask, distinct), the root 4.
        let nn = r.len(
            "node count",
            (MAX_NODES as u64).min((r.remaining() as u64 + 2) / 6),
        )?;
        if nn == 0 {
            return Err(Error::corrupt("footer", 0, "no root node"));
        }
        let refs = NodeRefs {
            sections: &sections,
            tables: tables.len(),
            version,
        };
        let nodes = if version >= super::VERSION_4 {
            read_nodes_by_field(&mut r, nn, &refs)?
        } else {
            read_nodes_by_node(&mut r, nn, &refs)?
        };
        check_nodes(&nodes, rows)?;
        // Elem nodes: at most one per parent, and items equal to ... checked at verify
        // (needs the parent's lens). Each parent has at most one Elem child,
        // and no two `Key` children of one parent share a name (an export
        // would write an object with a duplicate key).
        let mut has_elem = vec![false; nodes.len()];
        let mut keys: std::collections::HashSet<(u32, &str)> = std::collections::HashSet::new();
        for (i, n) in nodes.iter().enumerate().skip(1) {
            if let NodeName::Key(k) = &n.name
                && !keys.insert((n.parent, k.as_str()))
            {
                return Err(Error::corrupt(
                    format!("node {i}"),
                    0,
                    format!("duplicate key {k:?} under node {}", n.parent),
                ));
            }
            if n.name == NodeName::Elem {
                if has_elem[n.parent as usize] {
                    return Err(Error::corrupt(
                        "schema",
                        0,
                        format!("node {} has two element children", n.parent),
                    ));
                }
                has_elem[n.parent as usize] = true;
                // Elements under a parent that holds no arrays belong to
                // no row: a reader never visits them (export dropped the
                // column silently; only verify added up the lengths).
                let p = &nodes[n.parent as usize];
                if p.count(Kind::Array) == 0 && n.items > 0 {
                    return Err(Error::corrupt(
                        format!("node {i}"),
                        0,
                        format!(
                            "{} array elements under node {}, which holds no arrays",
                            n.items, n.parent
                        ),
                    ));
                }
            }
        }
        // Each section holds one stream, chunk, index or dictionary: one
        // named twice would be read as two things (a node reading another's
        // kinds exported shifted rows; only verify counted the references).
        let mut used = vec![false; sections.len()];
        let mut claim = |s: u32, by: String| -> Result<()> {
            match used.get_mut(s as usize) {
                Some(u) if *u => Err(Error::corrupt(
                    by,
                    0,
                    format!("section {s} is also another stream's, chunk's or dictionary's"),
                )),
                Some(u) => {
                    *u = true;
                    Ok(())
                }
                None => Ok(()), // past the sections: refused where it is read
            }
        };
        for (i, n) in nodes.iter().enumerate() {
            for s in n.streams.iter().flatten() {
                claim(*s, format!("node {i}"))?;
            }
        }
        for (t, m) in tables.iter().enumerate() {
            for k in 0..m.chunk_counts.len() as u64 {
                let s = (m.first_chunk as u64).saturating_add(k);
                claim(
                    u32::try_from(s).unwrap_or(u32::MAX),
                    format!("string table {t}"),
                )?;
            }
            for s in [m.index_section, m.dict_section].into_iter().flatten() {
                claim(s, format!("string table {t}"))?;
            }
        }
        let inline = if inline_len > 0 {
            r.bytes(inline_len as usize, "inline sections")?.to_vec()
        } else {
            Vec::new()
        };
        if !r.is_empty() {
            return Err(Error::corrupt(
                "footer",
                r.pos() as u64,
                format!("{} trailing bytes", r.remaining()),
            ));
        }
        Ok(Footer {
            rows,
            sections,
            tables,
            nodes,
            inline,
        })
    }
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use super::*;
    use crate::format::{VERSION_3, VERSION_4};

    /// A built snapshot's footer and where it starts: nested objects,
    /// arrays, every scalar kind, long and short strings, small streams
    /// inline.
    fn built() -> (Footer, u64) {
        let mut text = String::new();
        for i in 0..60i64 {
            text.push_str(
                &serde_json::json!({
                    "id": i * 7 - 100,
                    "u": u64::MAX - i as u64,
                    "f": i as f64 / 3.0,
                    "ok": i % 3 == 0,
                    "s": format!("name-{}", i % 9),
                    "t": format!("2024-01-{:02}T10:00:00Z", 1 + i % 28),
                    "o": {"a": [i, i + 1], "b": if i % 2 == 0 { serde_json::Value::Null } else { "x".into() }},
                    "mixed": if i % 4 == 0 { serde_json::json!(1) } else { serde_json::json!("one") },
                })
                .to_string(),
            );
            text.push('\n');
        }
        let bytes = crate::build_to_vec(text.as_bytes(), &Default::default()).unwrap();
        let s = crate::Snapshot::from_bytes(bytes).unwrap();
        (s.footer().clone(), s.footer_offset())
    }

    #[test]
    fn every_version_round_trips_the_nodes() {
        let (f, at) = built();
        assert!(f.nodes.len() > 10 && f.sections.iter().any(|e| e.inline));
        for v in [VERSION_3, VERSION_4] {
            let raw = f.to_bytes(v);
            assert_eq!(Footer::parse(&raw, at, v).unwrap(), f, "v{v}");
        }
        // Field by field, the nodes compress smaller.
        let z = |raw: &[u8]| {
            let o = crate::compress::CompressOptions {
                choice: crate::compress::CodecChoice::Force(Codec::Zstd),
                level: 19,
            };
            crate::compress::compress(raw, &o, None).unwrap().1.len()
        };
        let (a, b) = (z(&f.to_bytes(VERSION_3)), z(&f.to_bytes(VERSION_4)));
        assert!(b < a, "v3 {a} v4 {b}");
    }

    /// Version 4 stores each min with the wrapping span to the max: the
    /// extremes survive.
    #[test]
    fn version_4_statistics_keep_their_extremes() {
        let (mut f, at) = built();
        for n in &mut f.nodes {
            let st = &mut n.stats;
            st.int = st.int.map(|_| (i64::MIN, i64::MAX));
            st.uint = st.uint.map(|_| (u64::MAX, 0));
            st.str = st.str.map(|_| (u32::MAX - 1, 0));
            st.time = st.time.map(|_| (i64::MAX, i64::MIN));
        }
        let raw = f.to_bytes(VERSION_4);
        assert_eq!(Footer::parse(&raw, at, VERSION_4).unwrap(), f);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any statistics (every pair of values, min above max included),
        /// counts and layouts round-trip through both node layouts.
        #[test]
        fn any_statistics_round_trip_in_versions_3_and_4(
            seed in proptest::collection::vec(
                (
                    proptest::prelude::any::<(i64, i64)>(),
                    proptest::prelude::any::<(u64, u64)>(),
                    proptest::prelude::any::<(u64, u64)>(),
                    proptest::prelude::any::<(u32, u32)>(),
                    proptest::prelude::any::<(i64, i64)>(),
                    proptest::prelude::any::<(u64, u8)>(),
                ),
                1..40,
            ),
        ) {
            let (mut f, at) = built();
            for (n, (int, uint, float, s, time, (distinct, layout))) in
                f.nodes.iter_mut().zip(seed.iter().cycle())
            {
                let st = &mut n.stats;
                st.distinct = *distinct;
                st.int = st.int.map(|_| *int);
                st.uint = st.uint.map(|_| *uint);
                st.float = st
                    .float
                    .map(|_| (f64::from_bits(float.0), f64::from_bits(float.1)));
                st.str = st.str.map(|_| *s);
                st.time = st.time.map(|_| *time);
                if n.count(Kind::Time) > 0 && n.stream(Role::TsLayout).is_none() {
                    n.ts_layout = *layout;
                }
            }
            for v in [VERSION_3, VERSION_4] {
                let g = Footer::parse(&f.to_bytes(v), at, v).unwrap();
                // Floats bit for bit (NaN payloads, -0.0), the rest as printed.
                let bits = |f: &Footer| -> Vec<Option<(u64, u64)>> {
                    f.nodes
                        .iter()
                        .map(|n| n.stats.float.map(|(a, b)| (a.to_bits(), b.to_bits())))
                        .collect()
                };
                proptest::prop_assert_eq!(bits(&g), bits(&f));
                proptest::prop_assert_eq!(format!("{g:?}"), format!("{f:?}"));
            }
        }
    }

    /// A version 4 footer cut short anywhere, or with any byte of its nodes
    /// changed, is an error or a footer, never a panic; the node fields'
    /// own rules name the node.
    #[test]
    fn hostile_version_4_nodes_are_errors() {
        let (f, at) = built();
        let raw = f.to_bytes(VERSION_4);
        for cut in 0..raw.len() {
            assert!(
                Footer::parse(&raw[..cut], at, VERSION_4).is_err(),
                "cut {cut}"
            );
        }
        for i in 0..raw.len() {
            for x in [1u8, 0x80, 0xff] {
                let mut b = raw.clone();
                b[i] ^= x;
                let _ = Footer::parse(&b, at, VERSION_4);
            }
        }
        let detail = |g: &Footer| match Footer::parse(&g.to_bytes(VERSION_4), at, VERSION_4) {
            Err(Error::Corrupt { what, detail, .. }) => format!("{what}: {detail}"),
            other => panic!("accepted or another error: {other:?}"),
        };
        let mut g = f.clone();
        g.nodes[3].parent = 3;
        assert_eq!(detail(&g), "node 3: parent distance 0 is not in 1..=3");
        let mut g = f.clone();
        g.nodes[3].parent = 7;
        assert!(
            detail(&g).starts_with("node 3: parent distance"),
            "{}",
            detail(&g)
        );
        let mut g = f.clone();
        let n = g.sections.len() as u32;
        let s = g
            .nodes
            .iter_mut()
            .find_map(|n| n.streams[1].as_mut())
            .unwrap();
        *s = n;
        assert!(detail(&g).contains("does not exist"), "{}", detail(&g));
        let mut g = f.clone();
        let (i, n) = g
            .nodes
            .iter_mut()
            .enumerate()
            .find(|(_, n)| n.count(Kind::Str) > 0)
            .unwrap();
        n.table = 9;
        assert_eq!(
            detail(&g),
            format!("node {i}: string table 9 does not exist")
        );
    }

    /// A footer claiming more nodes than its bytes can hold (6 each, the
    /// root 4), or more than `MAX_NODES`, is refused before any node is
    /// made; one whose count its bytes could hold but whose nodes are
    /// garbage fails at the first bad node (a 16 MiB footer of zeros once
    /// made 1.8 GB of nodes first).
    #[test]
    fn node_counts_are_bounded_before_anything_is_allocated() {
        for v in [VERSION_3, VERSION_4] {
            // rows 0, no sections, no inline sections, no tables: then NODES.
            let head = [0u8, 0, 0, 0];
            let with = |nn: u64, body: usize| {
                let mut b = head.to_vec();
                crate::encoding::varint::put_u64(&mut b, nn);
                b.resize(b.len() + body, 0);
                b
            };
            let err = |b: &[u8]| match Footer::parse(b, 16, v) {
                Err(Error::Corrupt { what, detail, .. }) => format!("{what}: {detail}"),
                other => panic!("v{v}: accepted or another error: {other:?}"),
            };
            // The count and 65 bytes hold at most 11 nodes.
            assert!(
                err(&with(11, 65)).starts_with("node "),
                "{}",
                err(&with(11, 65))
            );
            assert_eq!(
                err(&with(12, 65)),
                "node count: length 12 exceeds the limit 11"
            );
            let big = 16 << 20;
            assert_eq!(
                err(&with(MAX_NODES as u64 + 1, big)),
                format!(
                    "node count: length {} exceeds the limit {MAX_NODES}",
                    MAX_NODES + 1
                )
            );
            let e = err(&with(MAX_NODES as u64, big));
            assert!(e.starts_with("node 1"), "v{v}: {e}");
        }
    }

    /// String ids fit u32, so do their statistics: a `str_min` or a span
    /// (v1-v3: `str_max`) past it is refused, not clamped or wrapped.
    #[test]
    fn string_statistics_past_u32_are_refused() {
        let (f, at) = built();
        let i = f.nodes.iter().position(|n| n.count(Kind::Str) > 0).unwrap();
        let put = |v: u64| {
            let mut b = Vec::new();
            crate::encoding::varint::put_u64(&mut b, v);
            b
        };
        const MIN: u32 = 0x5A5A_5A5A;
        for v in [VERSION_3, VERSION_4] {
            let mut g = f.clone();
            g.nodes[i].stats.str = Some((MIN, MIN + 1));
            let raw = g.to_bytes(v);
            assert!(Footer::parse(&raw, at, v).is_ok());
            // The second value: the span 1 (v4) or the max (v3).
            let second = if v == VERSION_4 {
                put(1)
            } else {
                put(MIN as u64 + 1)
            };
            let pair = [put(MIN as u64), second.clone()].concat();
            let pos = raw
                .windows(pair.len())
                .position(|w| w == pair.as_slice())
                .expect("the statistics");
            for (at_min, bad) in [(true, 5u64 << 32), (false, (1u64 << 32) + 1)] {
                let mut b = raw[..pos].to_vec();
                if at_min {
                    b.extend(put(bad));
                    b.extend(&second);
                } else {
                    b.extend(put(MIN as u64));
                    b.extend(put(bad));
                }
                b.extend(&raw[pos + pair.len()..]);
                match Footer::parse(&b, at, v) {
                    Err(Error::Corrupt { what, detail, .. }) => {
                        assert_eq!(what, format!("node {i}"));
                        assert!(
                            detail.contains(&format!("{bad} does not fit u32")),
                            "{detail}"
                        );
                    }
                    other => panic!("v{v}: {other:?}"),
                }
            }
        }
    }

    /// Errors of node fields name the node and where in the footer they are.
    #[test]
    fn node_errors_name_the_node_and_the_offset() {
        let (f, at) = built();
        // A malformed varint in a node's statistics: the reader's own
        // error ("stat") names the node.
        let i = f.nodes.iter().position(|n| n.count(Kind::Str) > 0).unwrap();
        let mut g = f.clone();
        g.nodes[i].stats.str = Some((0x5A5A_5A5A, 0x5A5A_5A5B));
        let raw = g.to_bytes(VERSION_4);
        let mut min = Vec::new();
        crate::encoding::varint::put_u64(&mut min, 0x5A5A_5A5A);
        let pos = raw.windows(min.len()).position(|w| w == min).unwrap();
        let mut b = raw[..pos].to_vec();
        b.extend([0xff; 11]);
        b.extend(&raw[pos + min.len()..]);
        match Footer::parse(&b, at, VERSION_4) {
            Err(Error::Corrupt { what, offset, .. }) => {
                assert_eq!(what, format!("node {i} stat"));
                assert!(offset as usize >= pos, "{offset} {pos}");
            }
            other => panic!("{other:?}"),
        }
        let mut g = f.clone();
        g.nodes[3].parent = 3;
        match Footer::parse(&g.to_bytes(VERSION_4), at, VERSION_4) {
            Err(Error::Corrupt { what, offset, .. }) => {
                assert_eq!(what, "node 3");
                assert!(offset > 0);
            }
            other => panic!("{other:?}"),
        }
    }
}
