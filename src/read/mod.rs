//! Opening and reading snapshots.
//!
//! Reading is layered: [`Trailer::parse`] on the last 32 bytes, then
//! [`Footer::parse`] on the footer bytes, then lazy per-section access and
//! per-node decoding. `open` reads only the header, trailer and footer (one
//! read of the file's tail, a second one only when the footer is larger);
//! integrity of everything else is checked when a section is read (its
//! crc32c) and, in full, by [`Snapshot::verify`].
//!
//! Every byte is read through a [`ByteSource`] (memory, file, memory map,
//! or an [`AsyncByteSource`] for remote sources). Reads follow *plan, then
//! fetch, then decode*: a [`Plan`] lists the sections that some nodes or
//! string chunks need, [`Snapshot::fetch`] (or [`Snapshot::fetch_async`])
//! reads their byte ranges in one call, merging close ones, and keeps the
//! fetched bytes in a bounded cache; decoding then reads from that cache.

mod cache;
mod export;
mod flight;
mod node;
#[cfg(not(target_arch = "wasm32"))]
mod pick;
mod table;
pub(crate) mod verify;

pub(crate) use export::Emitter;
pub use export::{DEFAULT_STRING_BUDGET, ExportOptions, RowWriter, StringWindow};
pub use node::{
    ColumnView, DEFAULT_MEMORY_BUDGET, Kinds, MAX_MAPPED_CHAIN, NodeData, SparseKinds,
    default_budget,
};
pub use table::{Finder, StringTable, TableOrder};
pub use verify::VerifyReport;

use crate::compress::{self, Codec};
use crate::error::{Error, Result};
use crate::format::{
    self, Footer, HEADER_LEN, Header, Role, SECTION_HEADER_LEN, SectionEntry, SectionHeader,
    TRAILER_LEN, Trailer,
};
use crate::model::{ColumnType, Kind, NodeName};
use crate::source::{AsyncByteSource, ByteSource, MemorySource, coalesce_ranges, split_coalesced};
use crate::strings::reader::{Chunk, decode_chunk, decode_index};
use bytes::Bytes;
pub(crate) use cache::memo;
use cache::{Lru, poisoned};
use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The most bytes all column paths together may take (see `from_source`).
pub const MAX_PATH_BYTES: u64 = 256 << 20;

/// Decoded separators of a string table's index.
type Separators = Arc<table::ChunkIndex>;

/// Accounted size of one cache entry beyond its bytes (keys, bookkeeping).
const ENTRY_OVERHEAD: usize = 64;

/// Chunks of at least this many raw bytes are decompressed only as far as
/// a lookup needs (a stream, read through a buffer); smaller ones at once.
const PARTIAL_DECOMPRESS_MIN: usize = 256 << 10;

/// Strings wanted from a chunk from which it is decompressed whole rather
/// than up to the last one wanted: of k strings at random positions the
/// last lies at k/(k+1) of the chunk on average (8: 89%), and a whole
/// chunk decompresses in one call, without a stream's copies.
const WHOLE_CHUNK_WANTED: usize = 8;

/// How a snapshot is opened: cache budgets and read sizes.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Byte budget of the decoded string chunks shared by every handle on
    /// the snapshot; the least recently used chunks go first. Default 64 MiB.
    pub cache_bytes: usize,
    /// Byte budget of single strings kept apart from their chunks, shared
    /// by every handle on the snapshot: a string read from a chunk that is
    /// not worth decoding whole (a long-text chunk, or a chunk met once
    /// among many) is kept here, so rows read again (the pages a server is
    /// asked for most) find their strings without a decode. Default 32 MiB.
    pub string_cache_bytes: usize,
    /// Byte budget of fetched (stored, not yet decoded) section bytes kept
    /// between [`Snapshot::fetch`] and the decode that follows. Default 16 MiB.
    pub fetch_cache_bytes: usize,
    /// Byte ranges at most this far apart are read as one. Default 64 KiB.
    pub coalesce_gap: u64,
    /// Bytes read from the end of the file on open, in the hope that they
    /// hold the whole footer. Default 64 KiB.
    pub tail_bytes: u64,
    /// Threads that decode the columns and string chunks of a few rows at
    /// once (a page of rows out of a local snapshot: each column and each
    /// chunk is decoded on its own, and the output is the same whatever
    /// the count); 1 decodes everything on the calling thread. Default: the
    /// machine's cores, at most 8 (1 in WebAssembly).
    pub decode_threads: usize,
}

/// String chunks read for one pass over many of them (a search over a
/// table, the rank order of one): each from the chunk cache, else decoded,
/// and kept in the cache only while what the pass holds there stays within
/// three quarters of it. A pass over more than the cache holds would, kept
/// whole, push out every other chunk (a grid's pages) and still find none
/// of its own there the next time, the least recently used going first; so
/// its first chunks stay for the next pass and the rest are dropped.
pub(crate) struct ChunkPass<'s> {
    snap: &'s Snapshot,
    held: AtomicU64,
    budget: u64,
}

impl ChunkPass<'_> {
    /// Chunk `k` of table `t`.
    pub(crate) fn chunk(&self, t: u32, k: usize) -> Result<Arc<Chunk>> {
        let c = self.snap.string_chunk_keeping(t, k, false)?;
        let size = (c.heap_bytes() + ENTRY_OVERHEAD) as u64;
        if self.held.fetch_add(size, Ordering::Relaxed) + size <= self.budget {
            self.snap
                .inner
                .chunks
                .lock()
                .map_err(|_| poisoned())?
                .insert((t, k), c.clone(), size as usize);
        }
        Ok(c)
    }
}

/// The default [`OpenOptions::decode_threads`].
fn default_decode_threads() -> usize {
    #[cfg(target_arch = "wasm32")]
    return 1;
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            cache_bytes: 64 << 20,
            string_cache_bytes: 32 << 20,
            fetch_cache_bytes: 16 << 20,
            coalesce_gap: 64 << 10,
            tail_bytes: 64 << 10,
            decode_threads: default_decode_threads(),
        }
    }
}

/// Counters of the work a snapshot did since open (or the last reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Calls to the byte source's `read_ranges` (each may cover many ranges).
    pub reads: u64,
    /// Byte ranges read (after merging close ones).
    pub ranges: u64,
    /// Bytes read from the source.
    pub bytes: u64,
    /// String chunks decoded.
    pub chunks_decoded: u64,
    /// String chunks read in part (walked up to the strings wanted, not
    /// decoded whole).
    pub partial_reads: u64,
    /// zstd dictionaries of string tables decoded.
    pub dicts_decoded: u64,
    /// Column sections decompressed only as far as the rows read need (a
    /// page near the start of a long column), not whole.
    pub sections_in_part: u64,
}

/// The sections some reads need: built with [`Snapshot::plan_node`] and
/// [`Snapshot::plan_chunk`], read with [`Snapshot::fetch`] or
/// [`Snapshot::fetch_async`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Section indexes, increasing (a sorted vector: the browser build
    /// then carries no B-tree of its own).
    sections: Vec<u32>,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Add one section by index.
    pub fn add_section(&mut self, idx: u32) {
        // Usually past the last one: a push.
        if let Err(i) = self.sections.binary_search(&idx) {
            self.sections.insert(i, idx);
        }
    }

    /// The planned sections, in file order.
    pub fn sections(&self) -> impl Iterator<Item = u32> + '_ {
        self.sections.iter().copied()
    }

    /// True when nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

/// How the bytes are reached.
enum Access {
    /// Any read can be served at once.
    Sync(Arc<dyn ByteSource>),
    /// Reads must be fetched ahead ([`Snapshot::fetch_async`]); decoding
    /// finds them in the fetch cache.
    Async(Arc<dyn AsyncByteSource>),
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

/// An open snapshot: a cheap, shareable handle. `Clone` copies two `Arc`s,
/// and every clone shares the footer, the byte source and the caches; it
/// is `Send + Sync`, so threads can share one snapshot.
#[derive(Clone)]
pub struct Snapshot {
    footer: Arc<Footer>,
    inner: Arc<Inner>,
}

/// What every clone of a [`Snapshot`] shares.
struct Inner {
    access: Access,
    opts: OpenOptions,
    file_len: u64,
    header: Header,
    footer_offset: u64,
    version: Option<String>,
    path: Option<PathBuf>,
    paths: Vec<String>,
    chunk_starts: Vec<Vec<u64>>,
    /// Fetched sections' bytes ([`SectionEntry::range`]: the stored payload,
    /// after its frame in format version 1), by index.
    fetched: Mutex<Lru<u32, Bytes>>,
    /// Sections a thread is reading from a remote source, which other
    /// threads wait for instead of reading them again.
    flights: flight::Flights,
    /// Decoded string chunks, by (table, chunk).
    chunks: Mutex<Lru<(u32, usize), Arc<Chunk>>>,
    /// Single strings, by (table, id) (see [`OpenOptions::string_cache_bytes`]).
    strings: Mutex<Lru<(u32, u32), Arc<str>>>,
    /// zstd dictionaries prepared for partial chunk reads, by table.
    prepared: Mutex<HashMap<u32, Arc<compress::PreparedDict>>>,
    index_cache: Mutex<HashMap<u32, Separators>>,
    /// String order of row-ordered tables (built on first use), by table.
    orders: Mutex<HashMap<u32, Arc<table::TableOrder>>>,
    /// Decompressed zstd dictionaries, by table.
    dicts: Mutex<HashMap<u32, Bytes>>,
    chunks_decoded: AtomicU64,
    partial_reads: AtomicU64,
    dicts_decoded: AtomicU64,
    sections_in_part: AtomicU64,
    /// The header is still to be checked (a remote open read only the
    /// tail): the next read fetches it along.
    header_pending: AtomicBool,
    reads: AtomicU64,
    ranges: AtomicU64,
    bytes_read: AtomicU64,
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
    // The footer's raw length is capped at 1 GiB, what the writer writes at
    // most (SPEC.md 10.1). Not by its ratio: a footer of one long,
    // repetitive key compresses past 1032x (zstd's RLE blocks reach
    // 32,768x), and decompression is bounded by what the stored bytes
    // expand to, never by the declared length alone.
    let cap = compress::SECTION_RAW_LIMIT;
    if t.footer_raw_len as u64 > cap.max(t.footer_stored_len as u64) {
        return Err(Error::corrupt(
            "trailer",
            file_len - TRAILER_LEN as u64,
            format!("footer raw length {} is implausible", t.footer_raw_len),
        ));
    }
    // Version 2 stores a zstd footer without the frame's magic.
    let framed;
    let stored = if t.footer_codec == Codec::Zstd && t.version != format::VERSION_1 {
        framed = format::section::with_zstd_magic(stored);
        &framed[..]
    } else {
        stored
    };
    let raw = compress::decompress(
        t.footer_codec,
        stored,
        t.footer_raw_len as usize,
        None,
        "footer",
    )?;
    Footer::parse(&raw, t.footer_offset, t.version)
}

/// The ranges an open reads first: the header and the last `tail` bytes.
fn first_ranges(len: u64, tail: u64) -> [Range<u64>; 2] {
    let tail = tail.max(TRAILER_LEN as u64).min(len);
    [0..len.min(HEADER_LEN as u64), len - tail..len]
}

/// Where the footer starts when it starts before `tail` (so it must be
/// fetched); `None` when the tail holds it, or when the trailer is bad (and
/// [`read_footer`] on the tail says why).
fn footer_before_tail(tail: &[u8], len: u64) -> Option<u64> {
    if tail.len() < TRAILER_LEN || len < (HEADER_LEN + TRAILER_LEN) as u64 {
        return None;
    }
    let t = Trailer::parse(&tail[tail.len() - TRAILER_LEN..], len).ok()?;
    (t.footer_offset < len - tail.len() as u64).then_some(t.footer_offset)
}

/// Header and footer from what an open read.
struct Opened {
    header: Header,
    footer: Footer,
    footer_offset: u64,
}

fn parse_opened(head: &[u8], tail: &[u8], len: u64) -> Result<Opened> {
    let header = Header::parse(head)?;
    let footer = read_footer(tail, len)?;
    let trailer = Trailer::parse(&tail[tail.len() - TRAILER_LEN..], len)?;
    if trailer.version != header.version {
        return Err(Error::corrupt(
            "header",
            8,
            format!(
                "version {} differs from the trailer's {}",
                header.version, trailer.version
            ),
        ));
    }
    let footer_offset = trailer.footer_offset;
    Ok(Opened {
        header,
        footer,
        footer_offset,
    })
}

impl Snapshot {
    /// Open a snapshot file, reading it with positional reads. Reads only
    /// the header, trailer and footer. A file rewritten or truncated while
    /// it is read gives an error (truncated, or a checksum mismatch), never
    /// a crash.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Snapshot> {
        Snapshot::open_with(path, OpenOptions::default())
    }

    /// [`Snapshot::open`] with options.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_with(path: impl AsRef<std::path::Path>, opts: OpenOptions) -> Result<Snapshot> {
        let path = path.as_ref();
        let source = crate::source::FileSource::open(path)?;
        Snapshot::build(Arc::new(source), opts, Some(path.to_path_buf()))
    }

    /// Open a snapshot file by memory-mapping it: slightly faster for many
    /// small reads, but if another process truncates the file while it is
    /// mapped, the reading process is killed by `SIGBUS`. Use it only for
    /// files that are replaced by rename, never rewritten in place.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_mmap(path: impl AsRef<std::path::Path>) -> Result<Snapshot> {
        let path = path.as_ref();
        let source = crate::source::MmapSource::open(path)?;
        Snapshot::build(
            Arc::new(source),
            OpenOptions::default(),
            Some(path.to_path_buf()),
        )
    }

    /// Open a snapshot held in memory (a `Vec<u8>`, a `Bytes`, ...).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Snapshot> {
        Snapshot::from_source(Arc::new(MemorySource::new(bytes)))
    }

    /// Open a snapshot read through any byte source.
    pub fn from_source(source: Arc<dyn ByteSource>) -> Result<Snapshot> {
        Snapshot::from_source_with(source, OpenOptions::default())
    }

    /// [`Snapshot::from_source`] with options.
    pub fn from_source_with(source: Arc<dyn ByteSource>, opts: OpenOptions) -> Result<Snapshot> {
        Snapshot::build(source, opts, None)
    }

    fn build(
        source: Arc<dyn ByteSource>,
        opts: OpenOptions,
        path: Option<PathBuf>,
    ) -> Result<Snapshot> {
        let len = source.len();
        let ranges = first_ranges(len, opts.tail_bytes);
        if source.is_remote() && ranges[1].start > 0 {
            return Snapshot::build_remote(source, opts, path, ranges[1].clone());
        }
        let (head, mut tail, mut stats) = if ranges[1].start == 0 {
            // The tail is the whole file, the header in it: one range
            // (two would read, and count, the header twice).
            let all = source.read_range(ranges[1].clone())?;
            let n = all.len() as u64;
            (all.slice(..ranges[0].end as usize), all, (1, 1, n))
        } else {
            let mut got = source.read_ranges(&ranges)?;
            let stats = (1, 2, got.iter().map(|b| b.len() as u64).sum::<u64>());
            (got.remove(0), got.remove(0), stats)
        };
        if let Some(at) = footer_before_tail(&tail, len) {
            tail = source.read_range(at..len)?;
            stats = (stats.0 + 1, stats.1 + 1, stats.2 + tail.len() as u64);
        }
        let opened = parse_opened(&head, &tail, len)?;
        let version = source.version();
        let s = Snapshot::assemble(opened, Access::Sync(source), opts, len, version, path)?;
        s.count_read(stats.0, stats.1, stats.2);
        Ok(s)
    }

    /// Open over a remote source by its tail alone (a second read only when
    /// the footer starts before it); the header is checked with the first
    /// read that follows ([`ByteSource::is_remote`]).
    fn build_remote(
        source: Arc<dyn ByteSource>,
        opts: OpenOptions,
        path: Option<PathBuf>,
        tail_range: Range<u64>,
    ) -> Result<Snapshot> {
        let len = source.len();
        let mut tail = source.read_range(tail_range)?;
        let mut stats = (1, 1, tail.len() as u64);
        if let Some(at) = footer_before_tail(&tail, len) {
            tail = source.read_range(at..len)?;
            stats = (2, 2, stats.2 + tail.len() as u64);
        }
        let footer = read_footer(&tail, len)?;
        let trailer = Trailer::parse(&tail[tail.len() - TRAILER_LEN..], len)?;
        let footer_offset = trailer.footer_offset;
        let opened = Opened {
            // Provisional until the header is read: the trailer's version,
            // which the header must equal.
            header: Header {
                version: trailer.version,
            },
            footer,
            footer_offset,
        };
        let version = source.version();
        let s = Snapshot::assemble(opened, Access::Sync(source), opts, len, version, path)?;
        s.inner.header_pending.store(true, Ordering::Relaxed);
        s.count_read(stats.0, stats.1, stats.2);
        Ok(s)
    }

    /// Open a snapshot over an async byte source (a remote one): reads the
    /// tail once (and the footer's range when it starts before the tail).
    /// Everything else must be fetched with [`Snapshot::fetch_async`] before
    /// it is decoded; a decode that needs bytes not fetched is an error.
    pub async fn open_async(
        source: Arc<dyn AsyncByteSource>,
        opts: OpenOptions,
    ) -> Result<Snapshot> {
        let (mut tail, len) = source
            .read_tail(opts.tail_bytes.max(TRAILER_LEN as u64))
            .await?;
        let mut stats = (1, 1, tail.len() as u64);
        let mut need = Vec::with_capacity(2);
        let tail_start = len.saturating_sub(tail.len() as u64);
        let head_in_tail = tail_start == 0;
        if !head_in_tail {
            need.push(0..len.min(HEADER_LEN as u64));
        }
        let footer_at = footer_before_tail(&tail, len);
        if let Some(at) = footer_at {
            need.push(at..len);
        }
        let mut head = tail.slice(..tail.len().min(HEADER_LEN));
        if !need.is_empty() {
            let got = source.read_ranges(&need).await?;
            stats = (2, 1 + need.len() as u64, stats.2);
            stats.2 += got.iter().map(|b| b.len() as u64).sum::<u64>();
            let mut it = got.into_iter();
            if !head_in_tail {
                head = it.next().unwrap_or_default();
            }
            if footer_at.is_some() {
                tail = it.next().unwrap_or_default();
            }
        }
        let opened = parse_opened(&head, &tail, len)?;
        let version = source.version();
        let s = Snapshot::assemble(opened, Access::Async(source), opts, len, version, None)?;
        s.count_read(stats.0, stats.1, stats.2);
        Ok(s)
    }

    fn assemble(
        opened: Opened,
        access: Access,
        opts: OpenOptions,
        file_len: u64,
        version: Option<String>,
        path: Option<PathBuf>,
    ) -> Result<Snapshot> {
        let Opened {
            header,
            footer,
            footer_offset,
        } = opened;
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
                NodeName::Key(k) => crate::model::push_key(&mut p, n.parent == 0, k),
                NodeName::Elem => p.push_str("[]"),
                NodeName::Root => {}
            }
            paths.push(p);
        }
        let snap = Snapshot {
            footer: Arc::new(footer),
            inner: Arc::new(Inner {
                access,
                file_len,
                header,
                footer_offset,
                version,
                path,
                paths,
                chunk_starts,
                fetched: Mutex::new(Lru::new(opts.fetch_cache_bytes)),
                flights: flight::Flights::default(),
                chunks: Mutex::new(Lru::new(opts.cache_bytes)),
                strings: Mutex::new(Lru::new(opts.string_cache_bytes)),
                prepared: Mutex::new(HashMap::new()),
                opts,
                index_cache: Mutex::new(HashMap::new()),
                orders: Mutex::new(HashMap::new()),
                dicts: Mutex::new(HashMap::new()),
                chunks_decoded: AtomicU64::new(0),
                partial_reads: AtomicU64::new(0),
                dicts_decoded: AtomicU64::new(0),
                sections_in_part: AtomicU64::new(0),
                header_pending: AtomicBool::new(false),
                reads: AtomicU64::new(0),
                ranges: AtomicU64::new(0),
                bytes_read: AtomicU64::new(0),
            }),
        };
        Ok(snap)
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.inner.file_len
    }

    /// The file header.
    pub fn header(&self) -> Header {
        self.inner.header
    }

    /// The version tag of the byte source when opened (see
    /// [`ByteSource::version`]), if it has one.
    pub fn source_version(&self) -> Option<&str> {
        self.inner.version.as_deref()
    }

    /// True when the snapshot reads through a remote source (see
    /// [`ByteSource::is_remote`]), where fetching ahead in parallel rounds
    /// pays.
    pub fn is_remote(&self) -> bool {
        match &self.inner.access {
            Access::Sync(s) => s.is_remote(),
            Access::Async(_) => true,
        }
    }

    /// The options the snapshot was opened with.
    pub fn options(&self) -> &OpenOptions {
        &self.inner.opts
    }

    /// Bytes `range` of the file, read through the byte source (for tools
    /// that look at the file's layout; decoding never needs this).
    pub fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        self.read_ranges(std::slice::from_ref(&range))?
            .pop()
            .ok_or_else(|| Error::Truncated {
                what: "byte range".into(),
                start: range.start,
                end: range.end,
                len: self.file_len(),
            })
    }

    /// Read ranges through the synchronous source, counting.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        match &self.inner.access {
            Access::Sync(s) if self.inner.header_pending.load(Ordering::Relaxed) => {
                // The header rides along with the first read after open.
                let mut with_head = Vec::with_capacity(ranges.len() + 1);
                with_head.push(0..HEADER_LEN as u64);
                with_head.extend_from_slice(ranges);
                let mut got = s.read_ranges(&with_head)?;
                if got.len() != with_head.len() {
                    return Err(Error::Invalid(format!(
                        "the byte source returned {} ranges for {}",
                        got.len(),
                        with_head.len()
                    )));
                }
                let head = got.remove(0);
                let header = Header::parse(&head)?;
                if header != self.inner.header {
                    return Err(Error::corrupt(
                        "header",
                        8,
                        format!("version {} differs from the trailer's", header.version),
                    ));
                }
                self.inner.header_pending.store(false, Ordering::Relaxed);
                self.count_read(
                    1,
                    with_head.len() as u64,
                    (head.len() as u64) + got.iter().map(|b| b.len() as u64).sum::<u64>(),
                );
                Ok(got)
            }
            Access::Sync(s) => {
                let got = s.read_ranges(ranges)?;
                self.count_read(
                    1,
                    ranges.len() as u64,
                    got.iter().map(|b| b.len() as u64).sum(),
                );
                Ok(got)
            }
            Access::Async(_) => Err(Error::Invalid(format!(
                "bytes {} of a snapshot opened over an async source were not fetched: \
                 fetch them first (Snapshot::fetch_async)",
                ranges
                    .iter()
                    .map(|r| format!("{}..{}", r.start, r.end))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn count_read(&self, reads: u64, ranges: u64, bytes: u64) {
        self.inner.reads.fetch_add(reads, Ordering::Relaxed);
        self.inner.ranges.fetch_add(ranges, Ordering::Relaxed);
        self.inner.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// What the snapshot read and decoded since open (or the last reset).
    pub fn stats(&self) -> ReadStats {
        let i = &self.inner;
        ReadStats {
            reads: i.reads.load(Ordering::Relaxed),
            ranges: i.ranges.load(Ordering::Relaxed),
            bytes: i.bytes_read.load(Ordering::Relaxed),
            chunks_decoded: i.chunks_decoded.load(Ordering::Relaxed),
            partial_reads: i.partial_reads.load(Ordering::Relaxed),
            dicts_decoded: i.dicts_decoded.load(Ordering::Relaxed),
            sections_in_part: i.sections_in_part.load(Ordering::Relaxed),
        }
    }

    /// Reset every counter of [`Snapshot::stats`] (the caches are kept).
    pub fn reset_stats(&self) {
        let i = &self.inner;
        for c in [
            &i.reads,
            &i.ranges,
            &i.bytes_read,
            &i.chunks_decoded,
            &i.partial_reads,
            &i.dicts_decoded,
            &i.sections_in_part,
        ] {
            c.store(0, Ordering::Relaxed);
        }
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
        // The root's path is empty too, and is no column: a top-level key
        // "" is (SPEC.md 1.6).
        self.inner
            .paths
            .iter()
            .skip(1)
            .position(|p| p == path)
            .map(|i| i as u32 + 1)
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

    fn entry(&self, idx: u32) -> Result<&SectionEntry> {
        self.footer
            .sections
            .get(idx as usize)
            .ok_or_else(|| Error::NotFound {
                what: "section",
                name: idx.to_string(),
            })
    }

    /// The byte range a read of section `idx` fetches: its stored payload
    /// (with the frame before it in format version 1).
    fn frame_range(e: &SectionEntry) -> Range<u64> {
        e.range()
    }

    /// The bytes of section `idx` (frame, in version 1, and stored
    /// payload): from the fetch cache, else read now.
    fn frame(&self, idx: u32, e: &SectionEntry) -> Result<Bytes> {
        if e.inline {
            // Version 3: in the footer, read with it.
            return Ok(Bytes::copy_from_slice(self.footer.inline_payload(e)));
        }
        let cached = || -> Result<Option<Bytes>> {
            Ok(self.inner.fetched.lock().map_err(|_| poisoned())?.get(&idx))
        };
        if let Some(b) = cached()? {
            return Ok(b);
        }
        // Another thread is reading it (`fetch`): its bytes, once kept.
        if self.sync_remote() {
            let waits = self.inner.flights.of(idx);
            if !waits.is_empty() {
                waits.wait();
                if let Some(b) = cached()? {
                    return Ok(b);
                }
            }
        }
        self.read_range(Self::frame_range(e))
    }

    /// A synchronous source where each read is a round trip: reads of a
    /// section by several threads at once become one (`flight`).
    fn sync_remote(&self) -> bool {
        matches!(&self.inner.access, Access::Sync(s) if s.is_remote())
    }

    /// The stored bytes of section `idx` (in version 1 the frame checked
    /// against the directory; the checksum verified), not decompressed. A
    /// zstd payload is returned as a whole zstd frame: version 2 stores it
    /// without the magic, which is put back here.
    pub fn section_stored(&self, idx: u32) -> Result<Bytes> {
        let (stored, bare) = self.section_payload(idx)?;
        Ok(if bare {
            Bytes::from(format::section::with_zstd_magic(&stored))
        } else {
            stored
        })
    }

    /// The stored bytes of section `idx` as the file holds them, checked
    /// ([`Snapshot::section_stored`]), and whether they are a zstd frame
    /// without its magic (version 2), which is not put back here.
    fn section_payload(&self, idx: u32) -> Result<(Bytes, bool)> {
        let e = self.entry(idx)?;
        let what = || {
            format!(
                "section {idx} ({})",
                Role::from_u8(e.role).map_or("?", |r| r.name())
            )
        };
        let frame = self.frame(idx, e)?;
        if e.inline {
            // Raw, and checked with the footer (its CRC-32C covers it).
            return Ok((frame, false));
        }
        if !e.framed {
            let p = e.offset;
            if frame.len() != e.stored_len as usize {
                return Err(Error::Truncated {
                    what: what(),
                    start: p,
                    end: p + e.stored_len as u64,
                    len: self.file_len(),
                });
            }
            let crc = format::crc32c(&frame);
            if crc != e.crc {
                return Err(Error::Checksum {
                    what: what(),
                    offset: p,
                    expected: e.crc,
                    got: crc,
                });
            }
            return Ok((frame, e.codec == Codec::Zstd));
        }
        let h = SectionHeader::parse(&frame, e.offset)?;
        // The first field that disagrees, named with both values.
        let differ = [
            ("codec", format!("{:?}", h.codec), format!("{:?}", e.codec)),
            (
                "encoding",
                format!("{:?}", h.encoding),
                format!("{:?}", e.encoding),
            ),
            ("role", h.role.to_string(), e.role.to_string()),
            ("raw length", h.raw_len.to_string(), e.raw_len.to_string()),
            (
                "stored length",
                h.stored_len.to_string(),
                e.stored_len.to_string(),
            ),
            (
                "CRC-32C",
                format!("{:#010x}", h.crc),
                format!("{:#010x}", e.crc),
            ),
        ]
        .into_iter()
        .find(|(_, a, b)| a != b);
        if let Some((field, frame_says, footer_says)) = differ {
            return Err(Error::corrupt(
                what(),
                e.offset,
                format!(
                    "the section's frame header gives {field} {frame_says}, the footer's directory {footer_says}"
                ),
            ));
        }
        let p = e.offset + SECTION_HEADER_LEN as u64;
        if frame.len() != SECTION_HEADER_LEN + e.stored_len as usize {
            return Err(Error::Truncated {
                what: what(),
                start: p,
                end: p + e.stored_len as u64,
                len: self.file_len(),
            });
        }
        let stored = frame.slice(SECTION_HEADER_LEN..);
        let crc = format::crc32c(&stored);
        if crc != e.crc {
            return Err(Error::Checksum {
                what: what(),
                offset: p,
                expected: e.crc,
                got: crc,
            });
        }
        Ok((stored, false))
    }

    /// The decompressed payload of section `idx` (shared with the fetched
    /// bytes when stored raw).
    pub fn section(&self, idx: u32) -> Result<Bytes> {
        let (stored, bare) = self.section_payload(idx)?;
        self.decompress_payload(idx, stored, bare)
    }

    /// Section `idx` decompressed from its checked stored bytes
    /// ([`Snapshot::section_payload`]).
    fn decompress_payload(&self, idx: u32, stored: Bytes, bare: bool) -> Result<Bytes> {
        let e = &self.footer.sections[idx as usize];
        if e.codec == Codec::None {
            return Ok(stored);
        }
        let dict = self.dict_for_section(idx)?;
        let what = format!("section {idx} at byte offset {}", e.offset);
        let raw = e.raw_len as usize;
        if bare {
            compress::decompress_bare_zstd(&stored, raw, dict.as_deref(), &what)
        } else {
            compress::decompress(e.codec, &stored, raw, dict.as_deref(), &what)
        }
        .map(Bytes::from)
    }

    /// The first bytes of section `idx` decompressed, as many as `need`
    /// says (given the bytes so far, how many it needs in all; `None`: more
    /// to know), or more: the whole section where the need reaches half of
    /// its raw length, where it is not zstd, has a dictionary or a frame
    /// that does not declare that length, or in a build without the C zstd
    /// library. Its stored bytes are read
    /// and checked as for [`Snapshot::section`]; only the decompression
    /// stops early (a page of rows near the start of a column of millions).
    /// Where the shortened decompression fails or would not pay, the whole
    /// one is run on the same stored bytes (read once), so its error is the
    /// one reported. (Picked rows are its only user, and the browser
    /// build decodes whole columns.)
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn section_prefix(
        &self,
        idx: u32,
        need: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Bytes> {
        /// Bytes decompressed first when `need` cannot tell yet.
        const FIRST: usize = 256;
        let e = self.entry(idx)?;
        let raw = e.raw_len as usize;
        let worth = |n: usize| n.saturating_mul(2) < raw;
        let mut want = need(&[]).unwrap_or(FIRST);
        if !worth(want) || e.codec != Codec::Zstd || self.dict_table_of(idx).is_some() {
            return self.section(idx);
        }
        let (stored, bare) = self.section_payload(idx)?;
        let magic: &[u8] = if bare {
            // Read apart in version 2: chained before the stored bytes,
            // not copied in front of them.
            &format::section::ZSTD_MAGIC[..]
        } else {
            &[]
        };
        // The frame must declare the section's raw length, which the whole
        // decompression checks and a shortened one cannot.
        if compress::zstd_content_size(magic, &stored) != Some(raw as u64) {
            return self.decompress_payload(idx, stored, bare);
        }
        let whole = || self.decompress_payload(idx, stored.clone(), bare);
        let Ok(mut r) = compress::zstd_reader(std::io::Read::chain(magic, &stored[..])) else {
            return whole();
        };
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let more = want - buf.len().min(want);
            let read =
                std::io::Read::read_to_end(&mut std::io::Read::take(&mut r, more as u64), &mut buf);
            if read.is_err() || buf.len() < want {
                // A damaged frame, or one shorter than its declared length:
                // the whole decompression reports it.
                return whole();
            }
            match need(&buf) {
                Some(n) if n <= buf.len() => {
                    self.inner.sections_in_part.fetch_add(1, Ordering::Relaxed);
                    return Ok(Bytes::from(buf));
                }
                Some(n) => want = n,
                None => want = want.saturating_mul(2),
            }
            if !worth(want) {
                return whole();
            }
        }
    }

    /// The node a `mapped` stream's section `idx` maps from (its first
    /// varint), decompressing no more than the first block of it.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn mapped_source(&self, idx: u32) -> Result<u32> {
        let e = self.entry(idx)?;
        let what = format!("section {idx} at byte offset {}", e.offset);
        let stored = self.section_stored(idx)?;
        let mut r = compress::decompress_reader(e.codec, &stored, e.raw_len as usize, None, &what)?;
        let mut head = [0u8; 10];
        let mut got = 0;
        while got < head.len() {
            match std::io::Read::read(&mut r, &mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(err) => {
                    return Err(Error::Codec {
                        codec: "zstd",
                        what,
                        detail: err.to_string(),
                    });
                }
            }
        }
        let v = crate::encoding::varint::Reader::new(&head[..got]).u64(&what)?;
        u32::try_from(v).map_err(|_| Error::corrupt(&what, 0, "source node out of range"))
    }

    /// The table whose chunks include section `idx` and that has a
    /// dictionary, with the dictionary's section.
    fn dict_table_of(&self, idx: u32) -> Option<(u32, u32)> {
        self.footer.tables.iter().enumerate().find_map(|(t, m)| {
            let d = m.dict_section?;
            let n = m.chunk_counts.len() as u32;
            (idx >= m.first_chunk && idx - m.first_chunk < n).then_some((t as u32, d))
        })
    }

    /// The zstd dictionary for section `idx`, decoded once per table.
    fn dict_for_section(&self, idx: u32) -> Result<Option<Bytes>> {
        let Some((t, d)) = self.dict_table_of(idx) else {
            return Ok(None);
        };
        // Held while the dictionary is read: a thread that needs it
        // meanwhile waits and takes it here, where between this thread's
        // dropping its stored bytes and keeping it decoded it would have
        // read the section again.
        let mut dicts = self.inner.dicts.lock().map_err(|_| poisoned())?;
        if let Some(b) = dicts.get(&t) {
            return Ok(Some(b.clone()));
        }
        // The dictionary's own section has none (it is no chunk).
        let dict = self.section(d)?;
        self.inner.dicts_decoded.fetch_add(1, Ordering::Relaxed);
        dicts.insert(t, dict.clone());
        if let Ok(mut f) = self.inner.fetched.lock() {
            f.remove(&d);
        }
        Ok(Some(dict))
    }

    /// The column each `mapped` or `based` stream of node `node` is
    /// derived from (SPEC.md 4.7, 4.9): `(stream role, encoding, source
    /// node)`, in role order (ints, string ids, timestamp seconds). The
    /// source sits in the stream's bytes, so this reads the first bytes of
    /// those streams (a few bytes decompressed each), checked as decoding
    /// checks them. Empty for a node whose streams name no source.
    pub fn stream_sources(&self, node: u32) -> Result<Vec<(Role, crate::encoding::Encoding, u32)>> {
        let mut out = Vec::new();
        for role in node::SOURCE_ROLES {
            if let Some((e, src)) = node::stream_source(self, node, role)? {
                out.push((role, e, src));
            }
        }
        Ok(out)
    }

    /// [`Snapshot::stream_sources`] of each of `nodes`, the streams that
    /// name a source fetched first in one read (one request over HTTP,
    /// close ranges merged) rather than one read each.
    pub fn stream_sources_of(
        &self,
        nodes: &[u32],
    ) -> Result<Vec<Vec<(Role, crate::encoding::Encoding, u32)>>> {
        let mut plan = Plan::new();
        for &n in nodes {
            let Some(m) = self.footer.nodes.get(n as usize) else {
                continue;
            };
            for role in node::SOURCE_ROLES {
                let named = m.stream(role).filter(|&s| {
                    self.footer
                        .sections
                        .get(s as usize)
                        .is_some_and(|e| e.encoding.has_source())
                });
                if let Some(s) = named {
                    plan.add_section(s);
                }
            }
        }
        self.fetch(&plan)?;
        let out = nodes.iter().map(|&n| self.stream_sources(n)).collect();
        self.release_fetched(&plan);
        out
    }

    /// The nodes that may be the sources of `node`'s streams that name one
    /// (`mapped`, `based`: the source sits in the stream's bytes), for a
    /// reader that fetches them in the same round as the node: for a
    /// mapped stream every sibling (the source is one as a rule:
    /// `user.login` of `user.id`); for a based one the siblings that could
    /// be its base (with timestamps for ts-secs, with strings of the same
    /// table for string ids, with integers for ints), not every column of
    /// the row. Empty for a node
    /// whose streams name no source. A source elsewhere comes in a later
    /// round.
    pub fn likely_sources(&self, node: u32) -> Vec<u32> {
        let nodes = &self.footer.nodes;
        let Some(m) = nodes.get(node as usize).filter(|_| node > 0) else {
            return Vec::new();
        };
        let enc = |role: Role| {
            m.stream(role)
                .and_then(|s| self.footer.sections.get(s as usize))
                .map(|e| e.encoding)
        };
        use crate::encoding::Encoding;
        let mapped = m.streams.iter().flatten().any(|&s| {
            self.footer
                .sections
                .get(s as usize)
                .is_some_and(|e| e.encoding == Encoding::Mapped)
        });
        let time = enc(Role::TsSecs) == Some(Encoding::Based);
        let strs = enc(Role::Strs) == Some(Encoding::Based);
        let ints = enc(Role::Ints) == Some(Encoding::Based);
        if !(mapped || time || strs || ints) {
            return Vec::new();
        }
        nodes
            .iter()
            .enumerate()
            .filter(|&(j, n)| {
                j > 0
                    && j != node as usize
                    && n.parent == m.parent
                    && (mapped
                        || (time && n.count(Kind::Time) > 0)
                        || (strs && n.count(Kind::Str) > 0 && n.table == m.table)
                        || (ints && n.count(Kind::Int) > 0))
            })
            .map(|(j, _)| j as u32)
            .collect()
    }

    /// Add every stream of `node` to `plan` (and, for kinds stored relative
    /// to the parent's, the parent's kinds, up the chain). Streams mapped
    /// from another node name that node inside their bytes, so it is read
    /// when the mapping is decoded.
    pub fn plan_node(&self, plan: &mut Plan, node: u32) {
        let nodes = &self.footer.nodes;
        let Some(m) = nodes.get(node as usize) else {
            return;
        };
        for s in m.streams.iter().flatten() {
            plan.add_section(*s);
        }
        let masked = |n: u32| {
            nodes[n as usize]
                .stream(Role::Kinds)
                .and_then(|s| self.footer.sections.get(s as usize))
                .is_some_and(|e| e.encoding == crate::encoding::Encoding::ParentMasked)
        };
        let mut n = node;
        for _ in 0..nodes.len() {
            let parent = nodes[n as usize].parent;
            if !masked(n) || parent >= n {
                return;
            }
            n = parent;
            if let Some(s) = nodes[n as usize].stream(Role::Kinds) {
                plan.add_section(s);
            }
        }
    }

    /// Add chunk `k` of string table `table` to `plan` (with the table's
    /// dictionary when it has one not decoded yet), unless the chunk is
    /// already decoded in the cache.
    pub fn plan_chunk(&self, plan: &mut Plan, table: u32, k: usize) {
        let Some(m) = self.footer.tables.get(table as usize) else {
            return;
        };
        if k >= m.chunk_counts.len()
            || self
                .inner
                .chunks
                .lock()
                .is_ok_and(|c| c.contains(&(table, k)))
        {
            return;
        }
        plan.add_section(m.first_chunk + k as u32);
        if let Some(d) = m.dict_section
            && !self
                .inner
                .dicts
                .lock()
                .is_ok_and(|c| c.contains_key(&table))
        {
            plan.add_section(d);
        }
    }

    /// Add a string table's separator index (what [`StringTable::find`]
    /// reads first) to `plan`.
    pub fn plan_index(&self, plan: &mut Plan, table: u32) {
        if let Some(s) = self
            .footer
            .tables
            .get(table as usize)
            .and_then(|m| m.index_section)
        {
            plan.add_section(s);
        }
    }

    /// The byte ranges `plan` still needs (sections not in the fetch
    /// cache), merged where they lie at most [`OpenOptions::coalesce_gap`]
    /// apart, with the planned frames that they hold.
    pub fn plan_ranges(&self, plan: &Plan) -> Vec<Range<u64>> {
        let frames = self.missing(plan);
        coalesce_ranges(
            &frames.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
            self.inner.opts.coalesce_gap,
        )
    }

    fn missing(&self, plan: &Plan) -> Vec<(u32, Range<u64>)> {
        // A table's dictionary, once decoded, is kept apart and its stored
        // bytes dropped: a plan made before that (another thread decoded
        // it meanwhile) does not read it again.
        let loaded: Vec<u32> = match self.inner.dicts.lock() {
            Ok(d) if !d.is_empty() => d
                .keys()
                .filter_map(|&t| self.footer.tables.get(t as usize)?.dict_section)
                .collect(),
            _ => Vec::new(),
        };
        let cached = self.inner.fetched.lock();
        let frames: Vec<(u32, Range<u64>)> = plan
            .sections()
            .filter(|s| !loaded.contains(s))
            .filter(|s| !cached.as_ref().is_ok_and(|c| c.contains(s)))
            .filter_map(|s| {
                let e = self.footer.sections.get(s as usize)?;
                // Inline sections came with the footer.
                (!e.inline).then(|| (s, Self::frame_range(e)))
            })
            .collect();
        frames
    }

    /// Read every section of `plan` not already fetched, in one call to the
    /// byte source (close ranges merged), and keep the bytes for the
    /// decodes that follow.
    ///
    /// From a remote source, a section that another thread is reading is
    /// not read again: this call reads the others, then waits for those
    /// reads to end (their bytes are then in the cache; if one failed, the
    /// decode that follows reads the section itself).
    pub fn fetch(&self, plan: &Plan) -> Result<()> {
        let frames = self.missing(plan);
        if frames.is_empty() {
            return Ok(());
        }
        if !self.sync_remote() {
            return self.fetch_frames(&frames);
        }
        let (claim, waits, mine) = self.claim_frames(frames);
        let read = if mine.is_empty() {
            Ok(())
        } else {
            self.fetch_frames(&mine)
        };
        // Released (waiters woken) once the bytes are kept, or the read failed.
        drop(claim);
        read?;
        waits.wait();
        Ok(())
    }

    /// Claim the sections of `frames` that no one else is reading (see
    /// `flight`): the claim, the reads of others to wait for, and the
    /// frames this caller reads.
    fn claim_frames(
        &self,
        frames: Vec<(u32, Range<u64>)>,
    ) -> (flight::Claim<'_>, flight::Waits, Vec<(u32, Range<u64>)>) {
        let (claim, waits) = self.inner.flights.claim(frames.iter().map(|(s, _)| *s));
        // A section that another thread read between `missing` and this
        // claim is kept now (a read keeps its bytes before it lets its
        // claim go): it is not read again.
        let cached = self.inner.fetched.lock();
        let mine = frames
            .into_iter()
            .filter(|(s, _)| claim.holds(*s))
            .filter(|(s, _)| !cached.as_ref().is_ok_and(|c| c.contains(s)))
            .collect();
        drop(cached);
        (claim, waits, mine)
    }

    /// Read `frames` in one call to the byte source (close ranges merged)
    /// and keep their bytes.
    fn fetch_frames(&self, frames: &[(u32, Range<u64>)]) -> Result<()> {
        let asked: Vec<Range<u64>> = frames.iter().map(|(_, r)| r.clone()).collect();
        let merged = coalesce_ranges(&asked, self.inner.opts.coalesce_gap);
        let got = self.read_ranges(&merged)?;
        self.keep_fetched(frames, &asked, &merged, &got)
    }

    /// [`Snapshot::fetch`] through the async source the snapshot was opened
    /// over (or, for a synchronous source, [`Snapshot::fetch`] at once).
    ///
    /// Tasks sharing the snapshot read each section once: a section that
    /// another task is reading is not read again; this call reads the
    /// others, then awaits those reads (without blocking its thread). If
    /// one failed, or its task was dropped, this call reads the section
    /// itself, so it returns with every section of `plan` fetched or an
    /// error of its own read.
    pub async fn fetch_async(&self, plan: &Plan) -> Result<()> {
        let source = match &self.inner.access {
            // Synchronous claims never outlive the call that made them, so
            // waiting on one cannot wait on this task.
            Access::Sync(_) => return self.fetch(plan),
            Access::Async(s) => s.clone(),
        };
        let frames = self.missing(plan);
        if frames.is_empty() {
            return Ok(());
        }
        let (claim, waits, mine) = self.claim_frames(frames);
        let read = if mine.is_empty() {
            Ok(())
        } else {
            self.fetch_frames_async(&*source, &mine).await
        };
        // Released (waiters woken) once the bytes are kept, or the read
        // failed; also when this future is dropped while reading.
        drop(claim);
        read?;
        if waits.is_empty() {
            return Ok(());
        }
        waits.landed().await;
        // What another task failed to read (or dropped, or what the cache
        // already let go): read here.
        let left = self.missing(plan);
        if left.is_empty() {
            Ok(())
        } else {
            self.fetch_frames_async(&*source, &left).await
        }
    }

    /// [`Snapshot::fetch_frames`] through an async source.
    async fn fetch_frames_async(
        &self,
        source: &dyn AsyncByteSource,
        frames: &[(u32, Range<u64>)],
    ) -> Result<()> {
        let asked: Vec<Range<u64>> = frames.iter().map(|(_, r)| r.clone()).collect();
        let merged = coalesce_ranges(&asked, self.inner.opts.coalesce_gap);
        let got = source.read_ranges(&merged).await?;
        self.count_read(
            1,
            merged.len() as u64,
            got.iter().map(|b| b.len() as u64).sum(),
        );
        self.keep_fetched(frames, &asked, &merged, &got)
    }

    /// Fetch, through the async source, everything that decoding `nodes`
    /// needs: their streams (see [`Snapshot::plan_node`]), then the nodes
    /// their `mapped` streams are mapped from, and so on; one request per
    /// round. Afterwards [`Snapshot::node_data`] decodes them without reading.
    pub async fn fetch_nodes_async(&self, nodes: &[u32]) -> Result<()> {
        let n_nodes = self.footer.nodes.len() as u32;
        let mut planned = vec![false; n_nodes as usize];
        let mut todo: Vec<u32> = nodes.iter().copied().filter(|&n| n < n_nodes).collect();
        // The decoder follows at most 64 mappings in a chain.
        for _ in 0..=64 {
            todo.retain(|&n| !std::mem::replace(&mut planned[n as usize], true));
            if todo.is_empty() {
                break;
            }
            let mut plan = Plan::new();
            for &n in &todo {
                self.plan_node(&mut plan, n);
            }
            self.fetch_async(&plan).await?;
            let mut next = Vec::new();
            for &n in &todo {
                for &s in self.footer.nodes[n as usize].streams.iter().flatten() {
                    let mapped = self
                        .footer
                        .sections
                        .get(s as usize)
                        .is_some_and(|e| e.encoding.has_source());
                    if mapped {
                        // The payload starts with the source node.
                        let raw = self.section(s)?;
                        let what = format!("section {s} (mapped)");
                        let src = crate::encoding::varint::Reader::new(&raw).u64(&what)?;
                        if src < n_nodes as u64 {
                            next.push(src as u32);
                        }
                    }
                }
            }
            todo = next;
        }
        Ok(())
    }

    /// Fetch what node `node` needs through the async source
    /// ([`Snapshot::fetch_nodes_async`]), then decode it.
    pub async fn node_async(&self, node: u32) -> Result<NodeData> {
        self.fetch_nodes_async(&[node]).await?;
        self.node_data(node)
    }

    fn keep_fetched(
        &self,
        frames: &[(u32, Range<u64>)],
        asked: &[Range<u64>],
        merged: &[Range<u64>],
        got: &[Bytes],
    ) -> Result<()> {
        if got.len() != merged.len() {
            return Err(Error::Invalid(format!(
                "the byte source returned {} ranges for {}",
                got.len(),
                merged.len()
            )));
        }
        let parts = split_coalesced(asked, merged, got)?;
        let mut cache = self.inner.fetched.lock().map_err(|_| poisoned())?;
        for ((s, _), b) in frames.iter().zip(parts) {
            let size = b.len() + ENTRY_OVERHEAD;
            cache.insert(*s, b, size);
        }
        Ok(())
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

    /// Chunk start ids of table `t` (`None` past the tables).
    pub(crate) fn inner_chunk_starts(&self, t: u32) -> Option<&[u64]> {
        self.inner
            .chunk_starts
            .get(t as usize)
            .map(|v| v.as_slice())
    }

    pub(crate) fn chunk_starts(&self, t: u32) -> &[u64] {
        &self.inner.chunk_starts[t as usize]
    }

    pub(crate) fn string_chunk(&self, t: u32, k: usize) -> Result<Arc<Chunk>> {
        self.string_chunk_keeping(t, k, true)
    }

    /// A reader of string chunks for one pass over many of them (a search,
    /// a rank order): see [`ChunkPass`].
    pub(crate) fn chunk_pass(&self) -> ChunkPass<'_> {
        ChunkPass {
            snap: self,
            held: AtomicU64::new(0),
            budget: self.inner.opts.cache_bytes as u64 / 4 * 3,
        }
    }

    /// Chunk `k` of table `t` if the chunk cache holds it.
    fn cached_chunk(&self, t: u32, k: usize) -> Result<Option<Arc<Chunk>>> {
        Ok(self
            .inner
            .chunks
            .lock()
            .map_err(|_| poisoned())?
            .get(&(t, k)))
    }

    /// Chunk `k` of table `t`: from the chunk cache, else decoded, and
    /// kept there with `keep`.
    pub(crate) fn string_chunk_keeping(&self, t: u32, k: usize, keep: bool) -> Result<Arc<Chunk>> {
        if let Some(c) = self.cached_chunk(t, k)? {
            return Ok(c);
        }
        let meta = &self.footer.tables[t as usize];
        let count = *meta.chunk_counts.get(k).ok_or_else(|| Error::NotFound {
            what: "string chunk",
            name: k.to_string(),
        })?;
        let mut plan = Plan::new();
        self.plan_chunk(&mut plan, t, k);
        if matches!(self.inner.access, Access::Sync(_)) {
            self.fetch(&plan)?;
            // Another thread read it meanwhile (this one waited for that
            // read) and may have decoded it already.
            if let Some(c) = self.cached_chunk(t, k)? {
                return Ok(c);
            }
        }
        let sec = meta.first_chunk + k as u32;
        let raw = self.section(sec)?;
        let fc = meta.flags & format::footer::TABLE_FRONT_CODED != 0;
        let what = format!("string table {t} chunk {k} (section {sec})");
        let chunk = Arc::new(decode_chunk(&raw, count, fc, &what)?);
        self.inner.chunks_decoded.fetch_add(1, Ordering::Relaxed);
        // A local chunk's stored bytes are not needed again once it is
        // decoded. A remote one's stay in the (bounded) fetch cache, as in
        // `chunk_strings`: threads that waited for this read take them
        // there rather than read them again.
        if !self.is_remote()
            && let Ok(mut f) = self.inner.fetched.lock()
        {
            f.remove(&sec);
        }
        if keep {
            let size = chunk.heap_bytes() + ENTRY_OVERHEAD;
            self.inner
                .chunks
                .lock()
                .map_err(|_| poisoned())?
                .insert((t, k), chunk.clone(), size);
        }
        Ok(chunk)
    }

    /// String `i` of chunk `k` of table `t` when a cache holds it (the
    /// decoded chunk, or the string alone), without reading anything.
    pub(crate) fn cached_string<T>(
        &self,
        t: u32,
        k: usize,
        i: usize,
        f: impl FnOnce(&str) -> T,
    ) -> Option<T> {
        if let Some(c) = self.inner.chunks.lock().ok()?.get(&(t, k)) {
            return (i < c.len()).then(|| f(c.get(i)));
        }
        let id = self.chunk_starts(t).get(k)? + i as u64;
        let s = self.inner.strings.lock().ok()?.get(&(t, id as u32))?;
        Some(f(&s))
    }
    /// Whether [`Snapshot::chunk_strings`] of `want` in chunk `k` of
    /// table `t` finds them all in the caches (nothing to decode).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn strings_held(&self, t: u32, k: usize, want: &[usize]) -> bool {
        if self.inner.chunks.lock().is_ok_and(|c| c.contains(&(t, k))) {
            return true;
        }
        let Some(&base) = self
            .inner
            .chunk_starts
            .get(t as usize)
            .and_then(|c| c.get(k))
        else {
            return false;
        };
        self.inner.strings.lock().is_ok_and(|sc| {
            want.iter()
                .all(|&i| sc.contains(&(t, (base + i as u64) as u32)))
        })
    }

    /// Strings `want` (ascending positions in chunk `k` of table `t`),
    /// each handed to `f(position, string)`: from the decoded chunk when
    /// cached, else from the string cache; the rest from the chunk itself,
    /// walked up to the last string wanted and decompressed no further
    /// (a long-text chunk is megabytes, a page wants one string of it;
    /// decoded whole, a chunk would also push others out of the chunk
    /// cache). With `keep`, the strings read are kept in the string cache.
    pub(crate) fn chunk_strings(
        &self,
        t: u32,
        k: usize,
        want: &[usize],
        keep: bool,
        f: &mut dyn FnMut(usize, &str),
    ) -> Result<()> {
        let meta = self
            .footer
            .tables
            .get(t as usize)
            .ok_or_else(|| Error::NotFound {
                what: "string table",
                name: t.to_string(),
            })?;
        let count = *meta.chunk_counts.get(k).ok_or_else(|| Error::NotFound {
            what: "string chunk",
            name: k.to_string(),
        })?;
        if let Some(c) = self.cached_chunk(t, k)? {
            for &i in want {
                if i < c.len() {
                    f(i, c.get(i));
                }
            }
            return Ok(());
        }
        let base = self.chunk_starts(t)[k] as u32;
        let mut missing = Vec::with_capacity(want.len());
        {
            let mut sc = self.inner.strings.lock().map_err(|_| poisoned())?;
            for &i in want {
                match sc.get(&(t, base + i as u32)) {
                    Some(s) => f(i, &s),
                    None => missing.push(i),
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let sec = meta.first_chunk + k as u32;
        let mut plan = Plan::new();
        self.plan_chunk(&mut plan, t, k);
        if matches!(self.inner.access, Access::Sync(_)) {
            self.fetch(&plan)?;
        }
        let e = &self.footer.sections[sec as usize];
        let what = format!("string table {t} chunk {k} (section {sec})");
        let fc = meta.flags & format::footer::TABLE_FRONT_CODED != 0;
        let mut found: Vec<(u32, Arc<str>)> = Vec::new();
        let mut on = |i: usize, s: &str| {
            f(i, s);
            if keep {
                found.push((base + i as u32, Arc::from(s)));
            }
        };
        use crate::strings::reader::scan_chunk as scan;
        // Without the C zstd library (the browser build) a zstd chunk is
        // decompressed whole either way (see `compress::decompress_reader`):
        // read at once. A PPMd chunk always streams, in every build: it
        // decodes a hundred times slower than zstd, byte after byte, so
        // stopping at the last string wanted saves that share of the work.
        let whole = match e.codec {
            Codec::Ppmd => false,
            _ => {
                cfg!(not(feature = "write"))
                    || e.raw_len as usize <= PARTIAL_DECOMPRESS_MIN
                    || missing.len() >= WHOLE_CHUNK_WANTED
            }
        };
        if whole {
            // A small chunk is one zstd block: decompressed at once, faster
            // than through a stream; only the walk stops early. So is a
            // chunk of which many strings are wanted (a stream's window):
            // the last of them lies near its end.
            let raw = self.section(sec)?;
            // The chunk is in memory: its string count is checked whole
            // (the walk stops at the last string wanted).
            crate::strings::reader::check_extent(&raw, count, fc, &what)?;
            scan(
                &mut &raw[..],
                e.raw_len as u64,
                count,
                fc,
                &missing,
                &what,
                &mut on,
            )?;
        } else {
            let stored = self.section_stored(sec)?;
            let dict = match e.codec {
                Codec::Zstd => self.prepared_dict(t, sec)?,
                _ => None,
            };
            let r = compress::decompress_reader(
                e.codec,
                &stored,
                e.raw_len as usize,
                dict.as_deref(),
                &what,
            )?;
            let mut r = std::io::BufReader::with_capacity(32 << 10, r);
            scan(
                &mut r,
                e.raw_len as u64,
                count,
                fc,
                &missing,
                &what,
                &mut on,
            )?;
        }
        self.inner.partial_reads.fetch_add(1, Ordering::Relaxed);
        // A local chunk is read again cheaply; a remote one stays in the
        // (bounded) fetch cache, since other strings of it may be wanted
        // next (another field group of the same page) and refetching costs
        // a round trip.
        if !self.is_remote()
            && let Ok(mut fc) = self.inner.fetched.lock()
        {
            fc.remove(&sec);
        }
        if !found.is_empty() {
            let mut sc = self.inner.strings.lock().map_err(|_| poisoned())?;
            for (id, s) in found {
                let size = s.len() + ENTRY_OVERHEAD;
                sc.insert((t, id), s, size);
            }
        }
        Ok(())
    }

    /// Table `t`'s zstd dictionary prepared for decompressing its chunk
    /// `sec` (none when the table has no dictionary).
    fn prepared_dict(&self, t: u32, sec: u32) -> Result<Option<Arc<compress::PreparedDict>>> {
        if let Some(d) = self.inner.prepared.lock().map_err(|_| poisoned())?.get(&t) {
            return Ok(Some(d.clone()));
        }
        let Some(bytes) = self.dict_for_section(sec)? else {
            return Ok(None);
        };
        cache::memo(&self.inner.prepared, t, || {
            Ok(Arc::new(compress::PreparedDict::new(&bytes)))
        })
        .map(Some)
    }

    /// Bytes held by the single-string cache (at most
    /// [`OpenOptions::string_cache_bytes`]).
    pub fn string_cache_single_bytes(&self) -> usize {
        self.inner.strings.lock().map_or(0, |c| c.used())
    }

    /// The string order of row-ordered table `t`, built on first use
    /// (decodes every chunk of the table once) and kept.
    pub(crate) fn table_order(&self, t: u32) -> Result<Arc<table::TableOrder>> {
        cache::memo(&self.inner.orders, t, || {
            Ok(Arc::new(table::TableOrder::build(&self.table(t)?)?))
        })
    }

    pub(crate) fn string_index(&self, t: u32) -> Result<Separators> {
        cache::memo(&self.inner.index_cache, t, || {
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
            Ok(Arc::new(table::ChunkIndex::new(seps)))
        })
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
        if let Ok(mut c) = self.inner.chunks.lock() {
            c.clear();
        }
        if let Ok(mut c) = self.inner.strings.lock() {
            c.clear();
        }
    }

    /// Bytes held by the decoded string chunk cache (at most
    /// [`OpenOptions::cache_bytes`]).
    pub fn string_cache_bytes(&self) -> usize {
        self.inner.chunks.lock().map_or(0, |c| c.used())
    }

    /// Before decoding `node`: fetch all of its sections in one read (see
    /// [`Snapshot::plan_node`]) on a synchronous source, unless they would
    /// not fit the fetch cache (then each stream is read when decoded;
    /// fetching it whole would only read it twice). Returns the plan whose
    /// stored bytes [`Snapshot::release_fetched`] drops after the decode.
    pub(crate) fn prefetch_node(&self, node: u32) -> Result<Option<Plan>> {
        if !matches!(self.inner.access, Access::Sync(_)) {
            return Ok(None);
        }
        let mut plan = Plan::new();
        self.plan_node(&mut plan, node);
        let size: u64 = self
            .missing(&plan)
            .iter()
            .map(|(_, r)| r.end - r.start + ENTRY_OVERHEAD as u64)
            .sum();
        if size == 0 || size > self.inner.opts.fetch_cache_bytes as u64 / 2 {
            return Ok(None);
        }
        self.fetch(&plan)?;
        Ok(Some(plan))
    }

    /// Tell the source that the sections of `node` are about to be read
    /// ([`ByteSource::expect_reads`]): one that lacks some fails now,
    /// before the decode allocates for them.
    pub(crate) fn expect_node(&self, node: u32) -> Result<()> {
        let Access::Sync(s) = &self.inner.access else {
            return Ok(());
        };
        let mut plan = Plan::new();
        self.plan_node(&mut plan, node);
        let frames: Vec<Range<u64>> = self.missing(&plan).into_iter().map(|(_, r)| r).collect();
        if frames.is_empty() {
            return Ok(());
        }
        s.expect_reads(&frames)
    }

    /// Drop the stored bytes fetched for one decode only.
    pub(crate) fn release_fetched(&self, plan: &Plan) {
        if let Ok(mut f) = self.inner.fetched.lock() {
            for s in plan.sections() {
                f.remove(&s);
            }
        }
    }

    /// Count of items of kind `k` in a node (from the footer).
    pub fn kind_count(&self, node: u32, k: Kind) -> u64 {
        self.footer.nodes[node as usize].count(k)
    }
}
