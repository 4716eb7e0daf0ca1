//! Opening and reading snapshots.
//!
//! Reading is layered: [`Trailer::parse`] on the last 32 bytes, then
//! [`Footer::parse`] on the footer bytes, then lazy per-section access and
//! per-node decoding. `open` reads only the trailer and footer; integrity
//! of everything else is checked when a section is read (its crc32c) and,
//! in full, by [`Snapshot::verify`].

mod export;
mod mmap;
mod node;
mod table;
mod verify;

pub(crate) use export::Emitter;
pub use export::{ExportOptions, RowWriter};
pub use node::{
    ColumnView, DEFAULT_MEMORY_BUDGET, Kinds, MAX_MAPPED_CHAIN, NodeData, SparseKinds,
    default_budget,
};
pub use table::StringTable;
pub use verify::VerifyReport;

use crate::compress::{self, Codec};
use crate::error::{Error, Result};
use crate::format::{self, Footer, HEADER_LEN, Header, Role, SectionHeader, TRAILER_LEN, Trailer};
use crate::model::{ColumnType, Kind, NodeName};
use crate::strings::reader::{Chunk, decode_chunk, decode_index};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The most bytes all column paths together may take (see `from_source`).
pub const MAX_PATH_BYTES: u64 = 256 << 20;

/// Decoded separators of a string table's index.
type Separators = Arc<Vec<Box<[u8]>>>;

/// Where the snapshot's bytes live.
enum Source {
    Bytes(Vec<u8>),
    Mmap(memmap2::Mmap),
}

impl Source {
    fn bytes(&self) -> &[u8] {
        match self {
            Source::Bytes(b) => b,
            Source::Mmap(m) => m,
        }
    }
}

/// A summary of one column for listings.
#[derive(Clone, Debug)]
pub struct ColumnInfo {
    /// Node index.
    pub node: u32,
    /// Display path (`user.login`, `labels[].name`).
    pub path: String,
    /// Type derived from the kinds present.
    pub ty: ColumnType,
}

/// An open snapshot: a cheap, shareable handle (`Clone` copies two `Arc`s;
/// every clone shares the footer and the caches), `Send + Sync`.
#[derive(Clone)]
pub struct Snapshot {
    footer: Arc<Footer>,
    inner: Arc<Inner>,
}

/// What every clone of a [`Snapshot`] shares.
struct Inner {
    source: Source,
    path: Option<PathBuf>,
    paths: Vec<String>,
    chunk_starts: Vec<Vec<u64>>,
    chunk_cache: Mutex<HashMap<(u32, usize), Arc<Chunk>>>,
    index_cache: Mutex<HashMap<u32, Separators>>,
    chunks_decoded: AtomicU64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("path", &self.inner.path)
            .field("rows", &self.footer.rows)
            .finish_non_exhaustive()
    }
}

/// Parse the trailer and footer from the tail of a file: `tail` holds the
/// last `tail.len()` bytes of a file of `file_len` bytes. A remote reader
/// fetches, say, the last 16 KiB and calls this; when the footer starts
/// before the tail, the error says which byte range is needed.
pub fn read_footer(tail: &[u8], file_len: u64) -> Result<Footer> {
    if tail.len() < TRAILER_LEN
        || file_len < (HEADER_LEN + TRAILER_LEN) as u64
        || tail.len() as u64 > file_len
    {
        return Err(Error::Truncated {
            what: "snapshot".into(),
            start: 0,
            end: (HEADER_LEN + TRAILER_LEN) as u64,
            len: file_len.min(tail.len() as u64),
        });
    }
    let t = Trailer::parse(&tail[tail.len() - TRAILER_LEN..], file_len)?;
    let tail_start = file_len - tail.len() as u64;
    if t.footer_offset < tail_start {
        return Err(Error::Truncated {
            what: format!("footer (fetch bytes {}..{file_len})", t.footer_offset),
            start: t.footer_offset,
            end: file_len,
            len: tail.len() as u64,
        });
    }
    let at = (t.footer_offset - tail_start) as usize;
    let stored = &tail[at..at + t.footer_stored_len as usize];
    let crc = format::crc32c(stored);
    if crc != t.footer_crc {
        return Err(Error::Checksum {
            what: "footer".into(),
            offset: t.footer_offset,
            expected: t.footer_crc,
            got: crc,
        });
    }
    // The footer's raw length is capped: a footer cannot plausibly expand
    // more than 1032x (zstd's maximum ratio), nor exceed 1 GiB.
    let cap = (t.footer_stored_len as u64)
        .saturating_mul(1032)
        .min(1 << 30);
    if t.footer_raw_len as u64 > cap.max(t.footer_stored_len as u64) {
        return Err(Error::corrupt(
            "trailer",
            file_len - TRAILER_LEN as u64,
            format!("footer raw length {} is implausible", t.footer_raw_len),
        ));
    }
    let raw = compress::decompress(
        t.footer_codec,
        stored,
        t.footer_raw_len as usize,
        None,
        "footer",
    )?;
    Footer::parse(&raw, t.footer_offset)
}

impl Snapshot {
    /// Open a snapshot file by memory-mapping it. Reads only the header,
    /// trailer and footer.
    pub fn open(path: impl AsRef<Path>) -> Result<Snapshot> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(Some(path), e))?;
        let len = file.metadata().map_err(|e| Error::io(Some(path), e))?.len();
        let source = if len == 0 {
            Source::Bytes(Vec::new())
        } else {
            Source::Mmap(mmap::map(&file).map_err(|e| Error::io(Some(path), e))?)
        };
        Snapshot::from_source(source, Some(path.to_path_buf()))
    }

    /// Open a snapshot held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Snapshot> {
        Snapshot::from_source(Source::Bytes(bytes), None)
    }

    fn from_source(source: Source, path: Option<PathBuf>) -> Result<Snapshot> {
        let b = source.bytes();
        Header::parse(b)?;
        let footer = read_footer(b, b.len() as u64)?;
        let chunk_starts = footer
            .tables
            .iter()
            .map(|t| {
                let mut v = Vec::with_capacity(t.chunk_counts.len() + 1);
                let mut acc = 0u64;
                v.push(0);
                for &c in &t.chunk_counts {
                    acc += c as u64;
                    v.push(acc);
                }
                v
            })
            .collect();
        let mut paths: Vec<String> = Vec::with_capacity(footer.nodes.len());
        // Every path repeats its parent's: a hostile footer of long keys on
        // deep chains could ask for far more memory than it occupies.
        let mut path_bytes = 0u64;
        for (i, n) in footer.nodes.iter().enumerate() {
            let extra = match &n.name {
                NodeName::Key(k) => {
                    1 + k.len()
                        + k.chars()
                            .filter(|c| matches!(c, '.' | '[' | ']' | '\\'))
                            .count()
                }
                NodeName::Elem => 2,
                NodeName::Root => 0,
            };
            let parent_len = if i == 0 {
                0
            } else {
                paths[n.parent as usize].len()
            };
            path_bytes += (parent_len + extra) as u64;
            if path_bytes > MAX_PATH_BYTES {
                return Err(Error::corrupt(
                    format!("node {i}"),
                    0,
                    format!("column paths need more than {MAX_PATH_BYTES} bytes"),
                ));
            }
            let mut p = match n.name {
                NodeName::Root => String::new(),
                _ => paths[n.parent as usize].clone(),
            };
            match &n.name {
                NodeName::Key(k) => crate::model::push_key(&mut p, k),
                NodeName::Elem => p.push_str("[]"),
                NodeName::Root => {}
            }
            paths.push(p);
        }
        let snap = Snapshot {
            footer: Arc::new(footer),
            inner: Arc::new(Inner {
                source,
                path,
                paths,
                chunk_starts,
                chunk_cache: Mutex::new(HashMap::new()),
                index_cache: Mutex::new(HashMap::new()),
                chunks_decoded: AtomicU64::new(0),
            }),
        };
        node::check_mapped_chains(&snap)?;
        Ok(snap)
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.inner.source.bytes()
    }

    /// The decoded footer.
    pub(crate) fn footer_arc(&self) -> &Arc<Footer> {
        &self.footer
    }

    /// The decoded footer.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// Rows in the snapshot.
    pub fn rows(&self) -> u64 {
        self.footer.rows
    }

    /// Display path of node `i`.
    pub fn path(&self, node: u32) -> &str {
        &self.inner.paths[node as usize]
    }

    /// Node index of a display path (`user.login`, `labels[].name`).
    pub fn node_by_path(&self, path: &str) -> Option<u32> {
        self.inner
            .paths
            .iter()
            .position(|p| p == path)
            .filter(|&i| i > 0)
            .map(|i| i as u32)
    }

    /// Every column (node) but the root, in schema order.
    pub fn columns(&self) -> Vec<ColumnInfo> {
        (1..self.footer.nodes.len() as u32)
            .map(|i| ColumnInfo {
                node: i,
                path: self.inner.paths[i as usize].clone(),
                ty: self.column_type(i),
            })
            .collect()
    }

    /// The type of a column.
    pub fn column_type(&self, node: u32) -> ColumnType {
        let n = &self.footer.nodes[node as usize];
        ColumnType::from_counts(&n.counts, n.stats.int.is_some_and(|(lo, _)| lo < 0))
    }

    /// Children of a node: its `Key` children in schema order and its `Elem` child.
    pub fn children(&self, node: u32) -> (Vec<u32>, Option<u32>) {
        let mut keys = Vec::new();
        let mut elem = None;
        for (i, n) in self.footer.nodes.iter().enumerate().skip(1) {
            if n.parent == node {
                match n.name {
                    NodeName::Elem => elem = Some(i as u32),
                    _ => keys.push(i as u32),
                }
            }
        }
        (keys, elem)
    }

    /// The stored bytes of section `idx` (frame header checked against the
    /// directory, checksum verified), not decompressed.
    pub fn section_stored(&self, idx: u32) -> Result<&[u8]> {
        let e = self
            .footer
            .sections
            .get(idx as usize)
            .ok_or_else(|| Error::NotFound {
                what: "section",
                name: idx.to_string(),
            })?;
        let b = self.bytes();
        let start = e.offset as usize;
        let what = || {
            format!(
                "section {idx} ({})",
                Role::from_u8(e.role).map_or("?", |r| r.name())
            )
        };
        let h = SectionHeader::parse(&b[start..], e.offset)?;
        if h.codec != e.codec
            || h.encoding != e.encoding
            || h.role != e.role
            || h.raw_len != e.raw_len
            || h.stored_len != e.stored_len
            || h.crc != e.crc
        {
            return Err(Error::corrupt(
                what(),
                e.offset,
                format!("frame header {h:?} disagrees with the directory entry {e:?}"),
            ));
        }
        let p = start + format::SECTION_HEADER_LEN;
        let stored = &b[p..p + e.stored_len as usize];
        let crc = format::crc32c(stored);
        if crc != e.crc {
            return Err(Error::Checksum {
                what: what(),
                offset: p as u64,
                expected: e.crc,
                got: crc,
            });
        }
        Ok(stored)
    }

    /// The decompressed payload of section `idx`. Borrowed when stored raw.
    pub fn section(&self, idx: u32) -> Result<Cow<'_, [u8]>> {
        let stored = self.section_stored(idx)?;
        let e = &self.footer.sections[idx as usize];
        if e.codec == Codec::None {
            return Ok(Cow::Borrowed(stored));
        }
        let dict = self.dict_for_section(idx)?;
        let what = format!("section {idx} at byte offset {}", e.offset);
        compress::decompress(e.codec, stored, e.raw_len as usize, dict.as_deref(), &what)
            .map(Cow::Owned)
    }

    fn dict_for_section(&self, idx: u32) -> Result<Option<Vec<u8>>> {
        for t in &self.footer.tables {
            if let Some(d) = t.dict_section {
                let n = t.chunk_counts.len() as u32;
                if idx >= t.first_chunk && idx < t.first_chunk + n {
                    return Ok(Some(self.section(d)?.into_owned()));
                }
            }
        }
        Ok(None)
    }

    /// A string table.
    pub fn table(&self, t: u32) -> Result<StringTable> {
        if t as usize >= self.footer.tables.len() {
            return Err(Error::NotFound {
                what: "string table",
                name: t.to_string(),
            });
        }
        Ok(StringTable {
            snap: self.clone(),
            index: t,
        })
    }

    /// The string table used by a node's string items.
    pub fn table_of(&self, node: u32) -> Result<StringTable> {
        self.table(self.footer.nodes[node as usize].table)
    }

    pub(crate) fn chunk_starts(&self, t: u32) -> &[u64] {
        &self.inner.chunk_starts[t as usize]
    }

    pub(crate) fn string_chunk(&self, t: u32, k: usize) -> Result<Arc<Chunk>> {
        if let Some(c) = self
            .inner
            .chunk_cache
            .lock()
            .map_err(|_| poisoned())?
            .get(&(t, k))
        {
            return Ok(c.clone());
        }
        let meta = &self.footer.tables[t as usize];
        let count = *meta.chunk_counts.get(k).ok_or_else(|| Error::NotFound {
            what: "string chunk",
            name: k.to_string(),
        })?;
        let sec = meta.first_chunk + k as u32;
        let raw = self.section(sec)?;
        let fc = meta.flags & format::footer::TABLE_FRONT_CODED != 0;
        let what = format!("string table {t} chunk {k} (section {sec})");
        let chunk = Arc::new(decode_chunk(&raw, count, fc, &what)?);
        self.inner.chunks_decoded.fetch_add(1, Ordering::Relaxed);
        self.inner
            .chunk_cache
            .lock()
            .map_err(|_| poisoned())?
            .insert((t, k), chunk.clone());
        Ok(chunk)
    }

    pub(crate) fn string_index(&self, t: u32) -> Result<Separators> {
        if let Some(c) = self
            .inner
            .index_cache
            .lock()
            .map_err(|_| poisoned())?
            .get(&t)
        {
            return Ok(c.clone());
        }
        let meta = &self.footer.tables[t as usize];
        let n = meta.chunk_counts.len().saturating_sub(1);
        let seps = match meta.index_section {
            Some(s) => decode_index(&self.section(s)?, n, &format!("string table {t} index"))?,
            None if n == 0 => Vec::new(),
            None => {
                return Err(Error::corrupt(
                    format!("string table {t}"),
                    0,
                    "several chunks but no index",
                ));
            }
        };
        let seps = Arc::new(seps);
        self.inner
            .index_cache
            .lock()
            .map_err(|_| poisoned())?
            .insert(t, seps.clone());
        Ok(seps)
    }

    /// How many string chunks were decoded since open (or the last reset).
    pub fn chunks_decoded(&self) -> u64 {
        self.inner.chunks_decoded.load(Ordering::Relaxed)
    }

    /// Reset the decoded-chunk counter (the cache is kept).
    pub fn reset_chunks_decoded(&self) {
        self.inner.chunks_decoded.store(0, Ordering::Relaxed);
    }

    /// Drop every cached string chunk.
    pub fn clear_string_cache(&self) {
        if let Ok(mut c) = self.inner.chunk_cache.lock() {
            c.clear();
        }
    }

    /// Count of items of kind `k` in a node (from the footer).
    pub fn kind_count(&self, node: u32, k: Kind) -> u64 {
        self.footer.nodes[node as usize].count(k)
    }
}

fn poisoned() -> Error {
    Error::Invalid("a cache lock was poisoned by a panic in another thread".into())
}
