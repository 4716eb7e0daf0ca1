//! The row store: every row of a snapshot as the JSON text a page prints,
//! kept in a file of small compressed blocks, so that a page of whole rows
//! at random places costs a few block reads instead of a string chunk
//! decoded per string.
//!
//! A snapshot keeps its strings in sorted tables cut into chunks (the
//! format's choice: small to transfer, fast to sort). A page of 50 whole
//! rows sorted by any column touches ~50 long-text chunks and hundreds of
//! short-string chunks, each decoded for one string. The server therefore
//! writes, once per snapshot version, every row's JSON (exactly the bytes
//! the row writer prints for the row, written with the stream's string
//! windows, each string chunk read once for many rows) into blocks of about
//! [`BLOCK_BYTES`], compressed with zstd and a dictionary trained on the
//! rows. A page then reads and decompresses one small block per row.
//!
//! The file is the server's own cache, never part of a snapshot:
//!
//! ```text
//! "CSROWS01"  identity_len:u32 identity  dict_len:u32 dict  block...
//! index: blocks:u32, then per block first_row:u32 offset:u64 stored:u32 raw:u32 crc32c:u32,
//!        rows:u32, crc32c of the index:u32
//! index_offset:u64 "CSROWEND"
//! ```
//!
//! A block's raw bytes are `n + 1` little-endian u32 offsets (relative to
//! the end of the offset list) and then its `n` rows' JSON back to back.
//! Every block is checked (CRC-32C of its stored bytes, exact raw length,
//! offsets in order) before a byte of it is served; a store that fails a
//! check is dropped and its pages are written from the snapshot again.

use colsnap::Snapshot;
use colsnap::query::{Bits, Column, FieldInfo, RowSource, SnapshotSource};
use colsnap::read::StringWindow;
use std::collections::HashMap;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

const MAGIC: &[u8; 8] = b"CSROWS01";
const END: &[u8; 8] = b"CSROWEND";
/// Raw bytes of a block (rows are whole: a block ends with the row that
/// reaches this size). Small enough that a row costs little to decode.
pub(crate) const BLOCK_BYTES: usize = 16 << 10;
/// zstd level of the blocks (fast to write; the dictionary does most of
/// the work: every row repeats the same field names).
const LEVEL: i32 = 3;
/// Size of the trained dictionary, and the row bytes it is trained on.
const DICT_BYTES: usize = 64 << 10;
const DICT_SAMPLE_BYTES: usize = 8 << 20;
/// Rows of the first string window of the build.
const FIRST_WINDOW_ROWS: usize = 1024;
/// Idle decompression contexts kept per store.
const IDLE_CONTEXTS: usize = 8;
/// An index entry's bytes.
const ENTRY: usize = 4 + 8 + 4 + 4 + 4;

/// When the server builds a snapshot's row store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowStoreMode {
    /// Never: whole rows are written from the snapshot's columns and
    /// string chunks.
    Off,
    /// In the background after start: whole rows are written from the
    /// snapshot until the store is ready.
    #[default]
    Background,
    /// Before the server answers (its start waits for the build).
    Startup,
}

impl std::str::FromStr for RowStoreMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(RowStoreMode::Off),
            "background" => Ok(RowStoreMode::Background),
            "startup" => Ok(RowStoreMode::Startup),
            _ => Err(format!(
                "`{s}`: the row store is `off`, `background` or `startup`"
            )),
        }
    }
}

/// Where and when row stores are built.
#[derive(Debug, Clone, Default)]
pub struct RowStoreConfig {
    /// When to build.
    pub mode: RowStoreMode,
    /// A directory where stores are kept across restarts (named after the
    /// snapshot and its version; a store of the same version is reused,
    /// those of other versions of the same name are removed once the new
    /// one is complete). `None`: a private temporary directory removed at
    /// exit.
    pub dir: Option<PathBuf>,
    /// Bytes of strings the build reads ahead at once (its memory besides
    /// the decoded columns).
    pub window_bytes: usize,
    /// A program that builds a store when run as `PROGRAM
    /// __build-row-store SNAPSHOT OUT VERSION WINDOW_BYTES` (see
    /// [`builder_main`]): the server's own binary. The build decodes every
    /// column of the snapshot; in a process of its own that memory goes
    /// back to the system when it ends. `None`: built on a thread of this
    /// process.
    pub builder: Option<PathBuf>,
}

/// The first argument that runs a server binary as a row-store builder.
pub const BUILDER_ARG: &str = "__build-row-store";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The row-store builder process (`PROGRAM __build-row-store SNAPSHOT OUT
/// VERSION WINDOW_BYTES`, the arguments after [`BUILDER_ARG`]): builds the
/// store of SNAPSHOT into OUT, after checking that the file is still the
/// version VERSION (hex) the server opened.
pub fn builder_main(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let [file, out, version, window] = args else {
        anyhow::bail!("usage: colsnap-serve {BUILDER_ARG} SNAPSHOT OUT VERSION WINDOW_BYTES");
    };
    let file = Path::new(file);
    let identity = version
        .to_str()
        .and_then(unhex)
        .ok_or_else(|| anyhow::anyhow!("VERSION is not hex"))?;
    let window: usize = window
        .to_str()
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("WINDOW_BYTES is not a number"))?;
    let changed = || {
        anyhow::anyhow!(
            "{}: the file changed since the server opened it",
            file.display()
        )
    };
    let mut f = std::fs::File::open(file)?;
    let meta = f.metadata()?;
    if crate::file_version(&mut f, meta.len())? != identity {
        return Err(changed());
    }
    let snap = Snapshot::open(file)?;
    if crate::FileSig::of(&meta) != crate::FileSig::of(&std::fs::metadata(file)?) {
        return Err(changed());
    }
    build(
        &SnapshotSource::new(snap),
        Path::new(out),
        &identity,
        window,
        &|| true,
    )?;
    Ok(())
}

/// [`build`] in the process `prog` (see [`RowStoreConfig::builder`]),
/// killed when `keep_going` says no.
fn build_in_child(
    prog: &Path,
    file: &Path,
    out: &Path,
    identity: &[u8],
    window: usize,
    keep_going: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    let mut child = std::process::Command::new(prog)
        .arg(BUILDER_ARG)
        .arg(file)
        .arg(out)
        .arg(hex(identity))
        .arg(window.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if !keep_going() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("row store build cancelled"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let msg = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "the builder process failed ({status}): {}",
            msg.trim()
        )));
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// An open, checked row store.
pub(crate) struct RowStore {
    path: PathBuf,
    file: std::fs::File,
    /// First row of each block, then the row count.
    first: Vec<u32>,
    /// Of each block: file offset, stored and raw length, CRC-32C.
    blocks: Vec<(u64, u32, u32, u32)>,
    /// Idle decompression contexts, each with its copy of the dictionary
    /// loaded (making one costs more than decompressing a block).
    contexts: Mutex<Vec<zstd::bulk::Decompressor<'static>>>,
    /// The dictionary (empty: none).
    dict: Vec<u8>,
    /// Remove the file when the store is dropped (a temporary store).
    temporary: bool,
    /// Bytes of the file.
    pub(crate) file_bytes: u64,
}

impl std::fmt::Debug for RowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStore")
            .field("path", &self.path)
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

impl Drop for RowStore {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_at(f: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
    }
    #[cfg(not(unix))]
    {
        let mut g = f;
        g.seek(SeekFrom::Start(at))?;
        g.read_exact(buf)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl RowStore {
    /// Open the store at `path`, which must be of the snapshot `identity`
    /// with `rows` rows; every structural field is checked (blocks are
    /// checked when read).
    pub(crate) fn open(
        path: &Path,
        identity: &[u8],
        rows: u64,
        temporary: bool,
    ) -> std::io::Result<RowStore> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let mut head = [0u8; 12];
        if len < (head.len() + 16) as u64 {
            return Err(bad("too short for a row store"));
        }
        file.read_exact(&mut head)?;
        if &head[..8] != MAGIC {
            return Err(bad("not a row store (magic)"));
        }
        let id_len = u32_at(&head, 8) as usize;
        if id_len != identity.len() {
            return Err(bad("a row store of another snapshot version"));
        }
        let mut id = vec![0u8; id_len];
        file.read_exact(&mut id)?;
        if id != identity {
            return Err(bad("a row store of another snapshot version"));
        }
        let mut tail = [0u8; 16];
        read_at(&file, &mut tail, len - 16)?;
        if &tail[8..] != END {
            return Err(bad("incomplete row store (no end mark)"));
        }
        let index_at = u64_at(&tail, 0);
        if index_at > len - 16 || (len - 16 - index_at) < 12 {
            return Err(bad("index offset out of range"));
        }
        let mut index = vec![0u8; (len - 16 - index_at) as usize];
        read_at(&file, &mut index, index_at)?;
        let (body, crc) = index.split_at(index.len() - 4);
        if crc32c::crc32c(body) != u32_at(crc, 0) {
            return Err(bad("index checksum mismatch"));
        }
        let n = u32_at(body, 0) as usize;
        if body.len() != 4 + n * ENTRY + 4 {
            return Err(bad("index length does not match its block count"));
        }
        let mut first = Vec::with_capacity(n + 1);
        let mut blocks = Vec::with_capacity(n);
        let mut d = 4;
        for _ in 0..n {
            first.push(u32_at(body, d));
            blocks.push((
                u64_at(body, d + 4),
                u32_at(body, d + 12),
                u32_at(body, d + 16),
                u32_at(body, d + 20),
            ));
            d += ENTRY;
        }
        let total = u32_at(body, d);
        first.push(total);
        if u64::from(total) != rows {
            return Err(bad("row count differs from the snapshot's"));
        }
        // Blocks tile the bytes between the dictionary and the index, in
        // row order, each with at least one row.
        let mut dl = [0u8; 4];
        file.seek(SeekFrom::Start((12 + id_len) as u64))?;
        file.read_exact(&mut dl)?;
        let dict_len = u32::from_le_bytes(dl) as u64;
        let mut at = 16 + id_len as u64 + dict_len;
        if at > index_at {
            return Err(bad("dictionary runs past the index"));
        }
        for (i, &(off, stored, raw, _)) in blocks.iter().enumerate() {
            if off != at || first[i] >= first[i + 1] || raw < 4 * (first[i + 1] - first[i] + 1) {
                return Err(bad(format!("block {i} out of place")));
            }
            at += u64::from(stored);
        }
        if at != index_at || first.first().is_some_and(|&f| f != 0) || (n == 0 && total != 0) {
            return Err(bad("blocks do not cover the rows"));
        }
        let mut dict = vec![0u8; dict_len as usize];
        file.read_exact(&mut dict)?;
        Ok(RowStore {
            path: path.to_path_buf(),
            file,
            first,
            blocks,
            contexts: Mutex::new(Vec::new()),
            dict,
            temporary,
            file_bytes: len,
        })
    }

    /// Check every block's stored bytes against its checksum (a store
    /// kept from an earlier run, before it is used again).
    fn check_blocks(&self) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for (b, &(off, stored, _, crc)) in self.blocks.iter().enumerate() {
            buf.resize(stored as usize, 0);
            read_at(&self.file, &mut buf, off)?;
            if crc32c::crc32c(&buf) != crc {
                return Err(bad(format!("block {b}: checksum mismatch")));
            }
        }
        Ok(())
    }

    /// Rows stored.
    pub(crate) fn rows(&self) -> usize {
        self.first.last().copied().unwrap_or(0) as usize
    }

    fn block_of(&self, row: u32) -> usize {
        self.first.partition_point(|&f| f <= row) - 1
    }

    /// Block `b`'s raw bytes, checked.
    fn block(&self, b: usize) -> std::io::Result<Vec<u8>> {
        let (off, stored, raw, crc) = self.blocks[b];
        let mut buf = vec![0u8; stored as usize];
        read_at(&self.file, &mut buf, off)?;
        if crc32c::crc32c(&buf) != crc {
            return Err(bad(format!("block {b}: checksum mismatch")));
        }
        let idle = self.contexts.lock().ok().and_then(|mut c| c.pop());
        let mut d = match idle {
            Some(d) => d,
            None => zstd::bulk::Decompressor::with_dictionary(&self.dict)?,
        };
        let out = d.decompress(&buf, raw as usize)?;
        if let Ok(mut c) = self.contexts.lock()
            && c.len() < IDLE_CONTEXTS
        {
            c.push(d);
        }
        if out.len() != raw as usize {
            return Err(bad(format!("block {b}: wrong decompressed length")));
        }
        let n = (self.first[b + 1] - self.first[b]) as usize;
        let base = 4 * (n + 1);
        let mut last = 0;
        for i in 0..=n {
            let o = u32_at(&out, 4 * i) as usize;
            if o < last || base + o > out.len() {
                return Err(bad(format!("block {b}: row offsets out of order")));
            }
            last = o;
        }
        if base + last != out.len() {
            return Err(bad(format!("block {b}: rows do not fill the block")));
        }
        Ok(out)
    }

    /// Row `row` of the decoded block `b` (`raw`).
    fn row_in<'a>(&self, b: usize, raw: &'a [u8], row: u32) -> &'a [u8] {
        let n = (self.first[b + 1] - self.first[b]) as usize;
        let i = (row - self.first[b]) as usize;
        let base = 4 * (n + 1);
        &raw[base + u32_at(raw, 4 * i) as usize..base + u32_at(raw, 4 * i + 4) as usize]
    }

    /// `rows` as [`RowSource::write_rows_json`] writes them (whole rows,
    /// separated by commas), appended to `out`. On an error `out` is left
    /// as it was.
    pub(crate) fn write_rows(&self, rows: &[u32], out: &mut Vec<u8>) -> std::io::Result<()> {
        let mark = out.len();
        let r = self.write_rows_inner(rows, out);
        if r.is_err() {
            out.truncate(mark);
        }
        r
    }

    fn write_rows_inner(&self, rows: &[u32], out: &mut Vec<u8>) -> std::io::Result<()> {
        let total = self.rows();
        if let Some(&r) = rows.iter().find(|&&r| r as usize >= total) {
            return Err(bad(format!("row {r} is past the store's {total} rows")));
        }
        // Each block once, however the rows are ordered.
        let mut decoded: HashMap<usize, Vec<u8>> = HashMap::new();
        let mut last: Option<(usize, Vec<u8>)> = None;
        for (n, &r) in rows.iter().enumerate() {
            let b = self.block_of(r);
            if last.as_ref().is_none_or(|(lb, _)| *lb != b) {
                if let Some((lb, raw)) = last.take() {
                    decoded.insert(lb, raw);
                }
                let raw = match decoded.remove(&b) {
                    Some(raw) => raw,
                    None => self.block(b)?,
                };
                last = Some((b, raw));
            }
            if n > 0 {
                out.push(b',');
            }
            if let Some((_, raw)) = &last {
                out.extend_from_slice(self.row_in(b, raw, r));
            }
        }
        Ok(())
    }
}

/// Blocks being written: rows are added whole; a block is compressed and
/// written once it holds [`BLOCK_BYTES`].
struct Blocks<'a, W: Write> {
    out: W,
    comp: zstd::bulk::Compressor<'a>,
    /// File offset of the next block.
    offset: u64,
    /// The index so far (entries only).
    index: Vec<u8>,
    count: u32,
    /// The block being filled: its first row, row offsets, bytes.
    first: u32,
    offs: Vec<u32>,
    body: Vec<u8>,
    raw: Vec<u8>,
}

impl<W: Write> Blocks<'_, W> {
    fn push(&mut self, row: u32, json: &[u8]) -> std::io::Result<()> {
        if self.offs.len() == 1 {
            self.first = row;
        }
        self.body.extend_from_slice(json);
        self.offs.push(self.body.len() as u32);
        if self.body.len() >= BLOCK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.offs.len() == 1 {
            return Ok(());
        }
        self.raw.clear();
        for o in &self.offs {
            self.raw.extend_from_slice(&o.to_le_bytes());
        }
        self.raw.extend_from_slice(&self.body);
        let stored = self.comp.compress(&self.raw)?;
        self.out.write_all(&stored)?;
        for v in [
            &self.first.to_le_bytes()[..],
            &self.offset.to_le_bytes(),
            &(stored.len() as u32).to_le_bytes(),
            &(self.raw.len() as u32).to_le_bytes(),
            &crc32c::crc32c(&stored).to_le_bytes(),
        ] {
            self.index.extend_from_slice(v);
        }
        self.offset += stored.len() as u64;
        self.count += 1;
        self.offs.clear();
        self.offs.push(0);
        self.body.clear();
        Ok(())
    }
}

/// The dictionary for rows whose JSON is `json`, cut at `starts`:
/// trained on up to [`DICT_SAMPLE_BYTES`] of them (empty when too few).
fn train(json: &[u8], starts: &[usize]) -> Vec<u8> {
    let mut sizes = Vec::new();
    let mut sample = 0usize;
    for p in starts.windows(2) {
        if sample + (p[1] - p[0]) > DICT_SAMPLE_BYTES {
            break;
        }
        sample += p[1] - p[0];
        sizes.push(p[1] - p[0]);
    }
    if sizes.len() < 8 {
        return Vec::new();
    }
    zstd::dict::from_continuous(&json[..sample], &sizes, DICT_BYTES).unwrap_or_default()
}

/// Write the row store of `src`'s snapshot into `file`.
fn write_store(
    src: &SnapshotSource,
    file: &std::fs::File,
    identity: &[u8],
    window_bytes: usize,
    keep_going: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    let rows = u32::try_from(src.rows()).map_err(|_| bad("more rows than a row store holds"))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(MAGIC)?;
    w.write_all(&(identity.len() as u32).to_le_bytes())?;
    w.write_all(identity)?;
    let io = |e: colsnap::Error| std::io::Error::other(e.to_string());
    let all: Vec<u32> = (0..rows).collect();
    let mut json = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut w = Some(w);
    let mut blocks: Option<Blocks<'static, _>> = None;
    let mut at = 0usize;
    let mut window_rows = FIRST_WINDOW_ROWS;
    while at < rows as usize {
        if !keep_going() {
            return Err(std::io::Error::other("row store build cancelled"));
        }
        let end = (at + window_rows).min(rows as usize);
        let mut win = src.read_strings(&all[at..end], None).map_err(io)?;
        let held = win.as_ref().map_or(0, StringWindow::bytes);
        json.clear();
        starts.clear();
        let mut open = |out: &mut Vec<u8>, _end: usize| starts.push(out.len());
        src.write_row_groups_with(
            &all[at..end],
            1,
            None,
            win.as_mut(),
            &mut json,
            &mut open,
            b"",
        )
        .map_err(io)?;
        drop(win);
        starts.push(json.len());
        if starts.len() != end - at + 1 {
            return Err(bad("the row writer wrote another number of rows"));
        }
        let b = match &mut blocks {
            Some(b) => b,
            None => {
                // The dictionary, trained on this first window's rows.
                let dict = train(&json, &starts);
                let mut out = w.take().ok_or_else(|| bad("no output"))?;
                out.write_all(&(dict.len() as u32).to_le_bytes())?;
                out.write_all(&dict)?;
                blocks.insert(Blocks {
                    comp: zstd::bulk::Compressor::with_dictionary(LEVEL, &dict)?,
                    offset: (16 + identity.len() + dict.len()) as u64,
                    out,
                    index: Vec::new(),
                    count: 0,
                    first: 0,
                    offs: vec![0],
                    body: Vec::with_capacity(BLOCK_BYTES * 2),
                    raw: Vec::with_capacity(BLOCK_BYTES * 2),
                })
            }
        };
        for (i, p) in starts.windows(2).enumerate() {
            b.push((at + i) as u32, &json[p[0]..p[1]])?;
        }
        // The next window holds about `window_bytes` of strings.
        let per = (held / (end - at).max(1)).max(1);
        window_rows = (window_bytes / per).clamp(FIRST_WINDOW_ROWS, 1 << 20);
        at = end;
    }
    let (count, index, offset, mut w) = match blocks {
        Some(mut b) => {
            b.flush()?;
            (b.count, b.index, b.offset, b.out)
        }
        None => {
            // No rows: no dictionary, no block.
            let mut w = w.take().ok_or_else(|| bad("no output"))?;
            w.write_all(&0u32.to_le_bytes())?;
            (0, Vec::new(), (16 + identity.len()) as u64, w)
        }
    };
    let mut idx = count.to_le_bytes().to_vec();
    idx.extend_from_slice(&index);
    idx.extend_from_slice(&rows.to_le_bytes());
    let crc = crc32c::crc32c(&idx);
    w.write_all(&idx)?;
    w.write_all(&crc.to_le_bytes())?;
    w.write_all(&offset.to_le_bytes())?;
    w.write_all(END)?;
    w.flush()?;
    Ok(())
}

/// Write the row store of `src`'s snapshot to `path` (through a temporary
/// file renamed at the end). `keep_going` is asked between windows: the
/// build stops (an error) when it says no.
pub(crate) fn build(
    src: &SnapshotSource,
    path: &Path,
    identity: &[u8],
    window_bytes: usize,
    keep_going: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    write_store(src, tmp.as_file(), identity, window_bytes, keep_going)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A dataset's row store: absent, being built, ready, or dropped after an
/// error (then whole rows come from the snapshot again).
#[derive(Debug, Default)]
pub(crate) struct StoreSlot {
    store: OnceLock<Arc<RowStore>>,
    /// 0: none (off or not started), 1: building, 2: ready, 3: failed.
    state: AtomicU8,
    failed: AtomicBool,
    message: Mutex<Option<String>>,
    /// Rows written from the store.
    pub(crate) rows_served: AtomicU64,
}

impl StoreSlot {
    /// Is the store there to write whole rows from?
    pub(crate) fn is_ready(&self) -> bool {
        self.ready().is_some()
    }

    fn ready(&self) -> Option<&Arc<RowStore>> {
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        self.store.get()
    }

    fn fail(&self, why: String) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            tracing::warn!(error = %why, "row store dropped: whole rows are written from the snapshot again");
            self.state.store(3, Ordering::SeqCst);
            if let Ok(mut m) = self.message.lock() {
                *m = Some(why);
            }
        }
    }

    /// The state for `/healthz`.
    pub(crate) fn status(&self) -> serde_json::Value {
        let state = match self.state.load(Ordering::SeqCst) {
            0 => "off",
            1 => "building",
            2 => "ready",
            _ => "failed",
        };
        let mut v = serde_json::json!({"state": state});
        if let Some(s) = self.ready() {
            v["fileBytes"] = s.file_bytes.into();
            v["blocks"] = s.blocks.len().into();
        }
        v["rowsServed"] = self.rows_served.load(Ordering::Relaxed).into();
        if let Some(m) = self.message.lock().ok().and_then(|m| m.clone()) {
            v["error"] = m.into();
        }
        v
    }
}

/// Start (or reuse) the row store of `snap` for the dataset `name`,
/// per `cfg`; `slot` receives it. With [`RowStoreMode::Startup`] this
/// returns when the store is ready (or failed); with
/// [`RowStoreMode::Background`] at once.
pub(crate) fn start(
    cfg: &RowStoreConfig,
    tmp_dir: &Path,
    (name, file, file_identity): (&str, &Path, &str),
    identity: Vec<u8>,
    snap: &Snapshot,
    slot: &Arc<StoreSlot>,
) {
    if cfg.mode == RowStoreMode::Off {
        return;
    }
    let (dir, temporary) = match &cfg.dir {
        Some(d) => (d.clone(), false),
        None => (tmp_dir.to_path_buf(), true),
    };
    // One file per snapshot version; a name safe on any file system.
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{safe}-{file_identity}.rows"));
    slot.state.store(1, Ordering::SeqCst);
    let rows = snap.rows();
    if !temporary
        && let Ok(s) = RowStore::open(&path, &identity, rows, false)
        && s.check_blocks().is_ok()
    {
        tracing::info!(name, path = %path.display(), "row store reused");
        let _ = slot.store.set(Arc::new(s));
        slot.state.store(2, Ordering::SeqCst);
        return;
    }
    let weak: Weak<StoreSlot> = Arc::downgrade(slot);
    let snap = snap.clone();
    let window = cfg.window_bytes.max(1 << 20);
    let name = name.to_string();
    let slot_name = name.clone();
    let builder = cfg.builder.clone();
    let file = file.to_path_buf();
    let job = move || {
        let t = std::time::Instant::now();
        let keep_going = || weak.strong_count() > 0;
        let r = std::fs::create_dir_all(&dir)
            .and_then(|_| match &builder {
                Some(prog) => build_in_child(prog, &file, &path, &identity, window, &keep_going),
                None => {
                    // A source of its own: the columns it decodes go when it does.
                    let src = SnapshotSource::new(snap);
                    build(&src, &path, &identity, window, &keep_going)
                }
            })
            .and_then(|_| RowStore::open(&path, &identity, rows, temporary));
        let Some(slot) = weak.upgrade() else {
            if temporary {
                let _ = std::fs::remove_file(&path);
            }
            return;
        };
        match r {
            Ok(s) => {
                tracing::info!(name, rows, bytes = s.file_bytes, seconds = t.elapsed().as_secs_f64(), path = %path.display(), "row store ready");
                let _ = slot.store.set(Arc::new(s));
                slot.state.store(2, Ordering::SeqCst);
                if !temporary {
                    remove_other_versions(&dir, &safe, &path);
                }
            }
            Err(e) => {
                if temporary {
                    let _ = std::fs::remove_file(&path);
                }
                slot.fail(format!("building {}: {e}", path.display()));
            }
        }
    };
    match cfg.mode {
        RowStoreMode::Startup => job(),
        _ => {
            if let Err(e) = std::thread::Builder::new()
                .name(format!("rowstore-{}", slot_name))
                .spawn(job)
            {
                slot.fail(format!("no thread to build the row store: {e}"));
            }
        }
    }
}

/// Remove `dir`'s stores of the name `safe` other than `keep`.
fn remove_other_versions(dir: &Path, safe: &str, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Some(f) = p.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(rest) = f.strip_prefix(safe).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        // `{safe}-{16 hex digits}.rows` only.
        let ours = rest.len() == 21
            && rest.ends_with(".rows")
            && rest[..16].bytes().all(|b| b.is_ascii_hexdigit());
        if ours && p != keep {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// A [`SnapshotSource`] whose whole rows come from the row store once it
/// is ready. Every [`RowSource`] method is passed on (a default method
/// left to its default would hide the snapshot source's own). Everything else (typed columns, sorts, searches, rows of a
/// field list) is the snapshot source's. Whole rows written before the
/// store is ready use a source of their own, dropped (with the columns it
/// decoded) once the store is.
pub(crate) struct StoredSource {
    inner: SnapshotSource,
    whole: Mutex<Option<Arc<SnapshotSource>>>,
    slot: Arc<StoreSlot>,
}

impl StoredSource {
    pub(crate) fn new(snap: Snapshot, slot: Arc<StoreSlot>) -> Self {
        StoredSource {
            inner: SnapshotSource::new(snap.clone()),
            whole: Mutex::new(Some(Arc::new(SnapshotSource::new(snap)))),
            slot,
        }
    }

    /// The source for whole rows while there is no store.
    fn whole(&self) -> Arc<SnapshotSource> {
        let mut g = match self.whole.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.get_or_insert_with(|| Arc::new(SnapshotSource::new(self.inner.snapshot().clone())))
            .clone()
    }

    /// Whole `rows` from the store into `out`: `false` when there is no
    /// store (or it failed now: dropped, and `out` as it was).
    fn write_stored(&self, rows: &[u32], out: &mut Vec<u8>) -> bool {
        let Some(s) = self.slot.ready() else {
            return false;
        };
        // The columns decoded for whole rows before the store was ready
        // are no longer needed.
        if let Ok(mut g) = self.whole.lock()
            && g.is_some()
        {
            *g = None;
        }
        match s.write_rows(rows, out) {
            Ok(()) => {
                self.slot
                    .rows_served
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.slot.fail(format!("reading {}: {e}", s.path.display()));
                false
            }
        }
    }
}

impl RowSource for StoredSource {
    fn rows(&self) -> usize {
        self.inner.rows()
    }
    fn writer_bytes(&self) -> u64 {
        let whole = self
            .whole
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|w| w.writer_bytes()))
            .unwrap_or(0);
        self.inner.writer_bytes() + whole
    }
    fn memory_budget(&self) -> u64 {
        self.inner.memory_budget()
    }
    fn fields(&self) -> Vec<FieldInfo> {
        self.inner.fields()
    }
    fn has_field(&self, path: &str) -> bool {
        self.inner.has_field(path)
    }
    fn field_type(&self, path: &str) -> Option<colsnap::model::ColumnType> {
        self.inner.field_type(path)
    }
    fn prefetch(&self, rows: &[u32], fields: Option<&[String]>) -> colsnap::Result<()> {
        self.inner.prefetch(rows, fields)
    }
    fn load(&self, path: &str) -> colsnap::Result<Column> {
        self.inner.load(path)
    }
    fn sort_by_one(
        &self,
        rows: &[u32],
        path: &str,
        desc: bool,
    ) -> colsnap::Result<Option<Vec<u32>>> {
        self.inner.sort_by_one(rows, path, desc)
    }
    fn keeps_order(&self, path: &str) -> bool {
        self.inner.keeps_order(path)
    }
    fn sort_page(
        &self,
        path: &str,
        desc: bool,
        range: Range<usize>,
    ) -> colsnap::Result<Option<Vec<u32>>> {
        self.inner.sort_page(path, desc, range)
    }
    fn filter_rows(&self, f: &colsnap::query::Filter) -> colsnap::Result<Option<Bits>> {
        self.inner.filter_rows(f)
    }
    // Every method the trait gives a default for is passed on: a default
    // here would answer differently from the snapshot (a long-text
    // column's keys do not order like their strings without this one).
    fn str_order(&self, col: &Column) -> colsnap::Result<Option<Arc<colsnap::read::TableOrder>>> {
        self.inner.str_order(col)
    }
    fn find_str(&self, col: &Column, s: &str) -> colsnap::Result<Result<u32, u32>> {
        self.inner.find_str(col, s)
    }
    fn prefix_keys(&self, col: &Column, prefix: &str) -> colsnap::Result<Range<u32>> {
        self.inner.prefix_keys(col, prefix)
    }
    fn search_keys(&self, cols: &[&Column], needle_lower: &str) -> colsnap::Result<Vec<Bits>> {
        self.inner.search_keys(cols, needle_lower)
    }
    fn rows_json(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
    ) -> colsnap::Result<Vec<serde_json::Value>> {
        if fields.is_none() {
            let mut out = Vec::new();
            if self.write_stored(rows, &mut out) {
                // The store's rows are the row writer's exact text.
                let text = [b"[".as_slice(), &out, b"]"].concat();
                return serde_json::from_slice(&text)
                    .map_err(|e| colsnap::Error::Invalid(format!("row store: {e}")));
            }
            return self.whole().rows_json(rows, None);
        }
        self.inner.rows_json(rows, fields)
    }
    fn write_rows_json(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
        out: &mut Vec<u8>,
    ) -> colsnap::Result<()> {
        if fields.is_none() {
            if self.write_stored(rows, out) {
                return Ok(());
            }
            return self.whole().write_rows_json(rows, None, out);
        }
        self.inner.write_rows_json(rows, fields, out)
    }
    fn write_row_groups(
        &self,
        rows: &[u32],
        group: usize,
        fields: Option<&[String]>,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> colsnap::Result<()> {
        if fields.is_none() {
            if self.slot.ready().is_some() {
                let mark = out.len();
                let mut end = 0;
                let mut ok = true;
                for g in rows.chunks(group.max(1)) {
                    end += g.len();
                    open(out, end);
                    if !self.write_stored(g, out) {
                        ok = false;
                        break;
                    }
                    out.extend_from_slice(close);
                }
                if ok {
                    return Ok(());
                }
                out.truncate(mark);
            }
            return self
                .whole()
                .write_row_groups(rows, group, None, out, open, close);
        }
        self.inner
            .write_row_groups(rows, group, fields, out, open, close)
    }
    fn read_strings(
        &self,
        rows: &[u32],
        fields: Option<&[String]>,
    ) -> colsnap::Result<Option<StringWindow>> {
        if fields.is_none() {
            if self.slot.ready().is_some() {
                // Whole rows come from the store: no window to read.
                return Ok(None);
            }
            return self.whole().read_strings(rows, None);
        }
        self.inner.read_strings(rows, fields)
    }
    fn write_row_groups_with(
        &self,
        rows: &[u32],
        group: usize,
        fields: Option<&[String]>,
        window: Option<&mut StringWindow>,
        out: &mut Vec<u8>,
        open: &mut dyn FnMut(&mut Vec<u8>, usize),
        close: &[u8],
    ) -> colsnap::Result<()> {
        match (fields, window) {
            // A window read before the store was ready is spent by the
            // source that read it.
            (None, Some(w)) => {
                self.whole()
                    .write_row_groups_with(rows, group, None, Some(w), out, open, close)
            }
            (None, None) => self.write_row_groups(rows, group, None, out, open, close),
            (f, w) => self
                .inner
                .write_row_groups_with(rows, group, f, w, out, open, close),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(dir: &Path, rows: usize) -> Snapshot {
        let mut text = String::new();
        for i in 0..rows {
            text.push_str(&format!(
                "{{\"id\":{i},\"title\":\"issue number {i} about {}\",\"body\":\"{}\",\"labels\":[{{\"name\":\"l{}\"}}]}}\n",
                i % 7,
                "some long text ".repeat(i % 50),
                i % 3
            ));
        }
        let bytes =
            colsnap::build_to_vec(text.as_bytes(), &colsnap::BuildOptions::default()).unwrap();
        let p = dir.join("t.colsnap");
        std::fs::write(&p, bytes).unwrap();
        Snapshot::open(&p).unwrap()
    }

    fn expected(snap: &Snapshot, rows: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        SnapshotSource::new(snap.clone())
            .write_rows_json(rows, None, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn stored_rows_are_the_row_writers_bytes_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot(dir.path(), 700);
        let path = dir.path().join("t.rows");
        let src = SnapshotSource::new(snap.clone());
        // A tiny window: many windows, blocks across their bounds.
        build(&src, &path, b"id", 1, &|| true).unwrap();
        let s = RowStore::open(&path, b"id", 700, false).unwrap();
        assert!(s.blocks.len() > 1, "{} blocks", s.blocks.len());
        let orders: Vec<Vec<u32>> = vec![
            (0..700).collect(),
            (0..700).rev().collect(),
            (0..700).map(|i| (i * 337) % 700).collect(),
            vec![5, 5, 699, 0, 5],
            vec![],
        ];
        for rows in orders {
            let mut out = Vec::new();
            s.write_rows(&rows, &mut out).unwrap();
            assert_eq!(out, expected(&snap, &rows), "rows {rows:?}");
        }
        let mut out = b"x".to_vec();
        assert!(s.write_rows(&[700], &mut out).is_err());
        assert_eq!(out, b"x");
    }

    #[test]
    fn a_store_of_another_version_or_damaged_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot(dir.path(), 300);
        let path = dir.path().join("t.rows");
        build(
            &SnapshotSource::new(snap.clone()),
            &path,
            b"v1",
            64 << 20,
            &|| true,
        )
        .unwrap();
        assert!(RowStore::open(&path, b"v2", 300, false).is_err());
        assert!(RowStore::open(&path, b"v1", 301, false).is_err());
        let good = std::fs::read(&path).unwrap();
        // Every byte of the index and trailer is checked at open.
        let s = RowStore::open(&path, b"v1", 300, false).unwrap();
        let index_at = u64_at(&good, good.len() - 16) as usize;
        for at in index_at..good.len() {
            let mut b = good.clone();
            b[at] ^= 0x40;
            std::fs::write(&path, &b).unwrap();
            assert!(
                RowStore::open(&path, b"v1", 300, false).is_err(),
                "byte {at}"
            );
        }
        // A damaged block is an error when read, never other rows.
        let (off, stored, _, _) = s.blocks[s.blocks.len() / 2];
        let mut b = good.clone();
        b[off as usize + stored as usize / 2] ^= 1;
        std::fs::write(&path, &b).unwrap();
        let d = RowStore::open(&path, b"v1", 300, false).unwrap();
        let all: Vec<u32> = (0..300).collect();
        let mut out = Vec::new();
        assert!(d.write_rows(&all, &mut out).is_err());
        assert!(out.is_empty());
        // A cancelled build leaves no file.
        let p2 = dir.path().join("c.rows");
        assert!(build(&SnapshotSource::new(snap), &p2, b"v1", 1, &|| false).is_err());
        assert!(!p2.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn the_stored_source_falls_back_when_its_store_fails() {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot(dir.path(), 200);
        let slot = Arc::new(StoreSlot::default());
        let cfg = RowStoreConfig {
            mode: RowStoreMode::Startup,
            dir: Some(dir.path().join("stores")),
            window_bytes: 1 << 20,
            builder: None,
        };
        let snap_path = dir.path().join("t.colsnap");
        let at = ("t", snap_path.as_path(), "00000000000000aa");
        start(&cfg, dir.path(), at, b"x".to_vec(), &snap, &slot);
        assert_eq!(slot.status()["state"], "ready");
        let src = StoredSource::new(snap.clone(), slot.clone());
        let rows: Vec<u32> = (0..200).rev().collect();
        let mut out = Vec::new();
        src.write_rows_json(&rows, None, &mut out).unwrap();
        assert_eq!(out, expected(&snap, &rows));
        assert_eq!(slot.rows_served.load(Ordering::Relaxed), 200);
        // Damage every block: the next page is still right, from the snapshot.
        let p = dir.path().join("stores/t-00000000000000aa.rows");
        let mut b = std::fs::read(&p).unwrap();
        let s = slot.ready().unwrap().clone();
        for &(off, stored, _, _) in &s.blocks {
            b[off as usize + stored as usize - 1] ^= 0xff;
        }
        drop(s);
        std::fs::write(&p, &b).unwrap();
        let mut out = Vec::new();
        src.write_rows_json(&rows, None, &mut out).unwrap();
        assert_eq!(out, expected(&snap, &rows));
        assert_eq!(slot.status()["state"], "failed");
        // Rebuilt when damaged (every block is checked before a reuse),
        // reused across restarts when whole.
        // An older version of the same name goes once the new one is built;
        // another name's store stays.
        let old = dir.path().join("stores/t-00000000000000bb.rows");
        let other = dir.path().join("stores/tt-00000000000000bb.rows");
        std::fs::write(&old, b"old").unwrap();
        std::fs::write(&other, b"other").unwrap();
        let slot2 = Arc::new(StoreSlot::default());
        start(&cfg, dir.path(), at, b"x".to_vec(), &snap, &slot2);
        assert_eq!(slot2.status()["state"], "ready");
        let mut out = Vec::new();
        StoredSource::new(snap.clone(), slot2.clone())
            .write_rows_json(&rows, None, &mut out)
            .unwrap();
        assert_eq!(out, expected(&snap, &rows));
        assert!(!old.exists() && other.exists());
        let served = slot2.rows_served.load(Ordering::Relaxed);
        assert_eq!(served, 200, "the rebuilt store served the rows");
        let built = std::fs::metadata(&p).unwrap().modified().unwrap();
        let slot3 = Arc::new(StoreSlot::default());
        start(&cfg, dir.path(), at, b"x".to_vec(), &snap, &slot3);
        assert_eq!(slot3.status()["state"], "ready");
        assert_eq!(
            std::fs::metadata(&p).unwrap().modified().unwrap(),
            built,
            "reused"
        );
    }
}
