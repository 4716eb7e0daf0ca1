//! The snapshot writer: JSON in, snapshot out.
//!
//! Rows are streamed into a [`ColumnsBuilder`]; then strings are assigned to
//! tables, sorted and given ids; then every node's streams and every table's
//! chunks are written as sections, followed by the footer and the trailer.

use crate::compress::{self, Codec, CompressOptions};
use crate::encoding::{self, Encoding, bitpack};
use crate::error::{Error, Result};
use crate::format::footer::{TABLE_FRONT_CODED, TABLE_LONG_TEXT, TABLE_ROW_ORDER};
use crate::format::{
    self, Footer, Header, NodeMeta, Role, SectionEntry, SectionHeader, Stats, TableMeta, Trailer,
    VERSION,
};
use crate::model::{KIND_COUNT, Kind, NodeName};
use crate::schema::colspill::Fields;
use crate::schema::input::read_rows_threaded;
use crate::schema::interner::{IdSet, SortedTable, SpillPolicy, SpillStats, Strings};
use crate::schema::memtrace;
use crate::schema::{ColumnsBuilder, InputFormat, Limits, NodeBuf};
use crate::strings::{ChunkBuilder, TablePolicy};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// Options of a build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Codec choice and level for every section.
    pub compress: CompressOptions,
    /// Target raw bytes per chunk of the short-string table (0, the
    /// default: [`auto_chunk_size`] of the table's size).
    pub chunk_size: usize,
    /// Most raw bytes per chunk of the long-text table.
    pub long_chunk_size: usize,
    /// Most stored bytes a reader fetches to read one long text: its chunk
    /// plus the table's dictionary. Long-text chunks are cut to fit: their
    /// raw size is estimated from the compression ratio of a sample, and a
    /// chunk that still stores more is split in two (0: chunks are cut at
    /// `long_chunk_size` raw bytes only).
    pub long_chunk_fetch: usize,
    /// A string column whose strings average more than this many bytes goes
    /// to the long-text table (0 disables the long-text table). Default
    /// 128: comment bodies and commit messages (prose averaging 150-250
    /// bytes) compress in row order beside their row's other texts, where
    /// sorted among identifiers in small chunks they did not (docs/design.md,
    /// "Medium-length prose as long text").
    pub long_text_min_avg: usize,
    /// A string column under an array (a comment's text, a document tree's
    /// text nodes: several a row, no grid cell of its own) whose strings
    /// average more than this many bytes, and of which at least 3 in 10
    /// are distinct, also goes to the long-text table when it is
    /// row-ordered (0: only `long_text_min_avg` decides). Default 32:
    /// fragments of prose kept beside their row's other texts compress
    /// there, where sorted among identifiers they did not; labels and
    /// other repeated values stay sorted (docs/design.md, "Nested
    /// fragments of prose").
    pub nested_text_min_avg: usize,
    /// Front-code the short-string table's chunks.
    pub front_coding: bool,
    /// Store the long-text table's strings in row order (the order the rows
    /// first use them: the texts of one row compress together) rather than
    /// sorted (SPEC.md 7.6), in either format version. Readers that predate
    /// it reject table flag bit 2: `colsnap build --format-version 1` (for
    /// old readers) turns it off.
    pub long_text_row_order: bool,
    /// Codec of the long-text table's chunks: PPMd (codec 3, SPEC.md
    /// section 3) in chunks of at most [`PPMD_CHUNK`] raw bytes without a
    /// dictionary, or zstd with a trained one. [`LongTextCodec::Auto`] (the
    /// default) is PPMd for tables of at most [`PPMD_AUTO_MAX`] bytes of
    /// text. PPMd only with the automatic codec choice (`compress.choice`),
    /// in either format version: readers that predate codec 3 reject it, so
    /// `colsnap build --format-version 1` asks for zstd, and so does
    /// `--fast`. Where it allows PPMd, the short-string table of a small
    /// export (one chunk under automatic chunking, at most
    /// [`SHORT_ONE_CHUNK`] raw bytes) is PPMd too when that is smaller
    /// (from format version 2).
    pub long_text_codec: LongTextCodec,
    /// Let a column's timestamp seconds or string ids be stored as
    /// differences from another column's (`based`, SPEC.md 4.9) where that
    /// is smaller, in either format version. Readers that predate it reject
    /// encoding 11: `colsnap build --format-version 1` turns it off.
    pub based_streams: bool,
    /// Let a column's string ids be stored as differences from the item
    /// before (`delta-zigzag` on a string-ids stream, SPEC.md 4.2) where
    /// that is smaller, in either format version: ids that grow in item
    /// order (a row-ordered table's, sequential keys) then take a byte or
    /// less each. Readers that predate it reject the pair:
    /// `colsnap build --format-version 1` turns it off.
    pub delta_string_ids: bool,
    /// Most bytes of the zstd dictionary trained for a long-text table of
    /// at least 4 chunks (0: no dictionary).
    pub long_dict_size: usize,
    /// Most bytes of the zstd dictionary trained for the short-string table
    /// when it has at least [`SHORT_DICT_MIN_CHUNKS`] chunks and the
    /// dictionary pays for itself (0: no dictionary; [`SHORT_DICT_SIZE`] by
    /// default; at most a sixteenth of the table's raw chunks).
    pub short_dict_size: usize,
    /// Input limits.
    pub limits: Limits,
    /// Receives the count of input bytes read so far (for progress bars).
    pub progress: Option<Arc<AtomicU64>>,
    /// Threads that encode and compress (0: every available core). The
    /// snapshot is the same whatever the count.
    pub threads: usize,
    /// Memory budget in bytes (0: none). Half is for reading rows (the
    /// memory it used stays with the process: the allocator keeps it), a
    /// quarter for encoding nodes in parallel, the rest for the string
    /// tables' work (the long-text dictionary, or the PPMd models: as many
    /// long-text chunks compress at once as a quarter of the budget holds
    /// models of 24 times a chunk's raw size, 48 MiB for 2 MiB chunks,
    /// always at least one) and slack. The column
    /// buffers get half of the reading share and past it are spilled to
    /// temporary files, read back one node at a time when the snapshot is
    /// written. The distinct strings get what the column buffers leave of
    /// the reading share (at least an eighth of it) and past it are spilled
    /// to temporary files as sorted runs, merged when the string tables are
    /// written. Nodes are encoded together only while their estimated
    /// peaks fit the encoding share (a larger one alone: the whole column
    /// of a node of 10 million items and its candidate encodings are some
    /// 300 MB). The snapshot is the same whatever the budget.
    pub memory: usize,
    /// Directory of the temporary files of spills (a directory
    /// `.colsnap-spill.*` in it, removed at the end): by default the
    /// output's directory for [`build_file`], else the system's.
    pub tmp_dir: Option<PathBuf>,
    /// Format version written: [`format::VERSION`] (5, the default:
    /// version 4 plus integer literals outside `[-2^63, 2^64)` kept as their
    /// text; written as version 4 when the input has none),
    /// [`format::VERSION_4`] (the footer's nodes field by field; such
    /// integers as the nearest binary64), [`format::VERSION_3`] (small node
    /// streams inline in the footer, for readers that predate version 4),
    /// [`format::VERSION_2`] (sections
    /// without frames, for readers that predate version 3) or
    /// [`format::VERSION_1`] (every section framed and 8-aligned, for
    /// readers that predate version 2).
    pub format_version: u16,
    /// Version 3 and later: a node stream whose payload would be stored in at most
    /// this many bytes, and is at most [`INLINE_RAW_MAX`] bytes raw, is
    /// written inline, its raw payload in the footer (SPEC.md 5.4); 0 writes
    /// none inline. Default [`INLINE_MAX`].
    pub inline_max: usize,
}

/// Default [`BuildOptions::inline_max`]: streams stored in at most 64
/// bytes (docs/design.md, "Inline sections").
pub const INLINE_MAX: usize = 64;
/// The largest raw payload written inline: the footer every reader
/// decompresses holds at most this much per inline stream.
pub const INLINE_RAW_MAX: usize = 1024;

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            compress: CompressOptions::default(),
            chunk_size: 0,
            long_chunk_size: 16 << 20,
            long_chunk_fetch: 1 << 20,
            long_text_min_avg: 128,
            nested_text_min_avg: 32,
            front_coding: true,
            long_text_row_order: true,
            long_text_codec: LongTextCodec::Auto,
            based_streams: true,
            delta_string_ids: true,
            long_dict_size: 1 << 20,
            short_dict_size: SHORT_DICT_SIZE,
            limits: Limits::default(),
            progress: None,
            threads: 0,
            memory: DEFAULT_MEMORY,
            tmp_dir: None,
            format_version: VERSION,
            inline_max: INLINE_MAX,
        }
    }
}

/// Default [`BuildOptions::memory`]: 1 GiB.
pub const DEFAULT_MEMORY: usize = 1 << 30;

impl BuildOptions {
    /// Whether the long-text table is written in row order.
    pub fn row_ordered_long_text(&self) -> bool {
        self.long_text_row_order
    }

    /// Whether the chunks of a long-text table of `text_bytes` bytes of
    /// strings are PPMd ([`Self::long_text_codec`]).
    pub fn ppmd_long_text(&self, text_bytes: u64) -> bool {
        self.compress.choice == compress::CodecChoice::Auto
            && match self.long_text_codec {
                LongTextCodec::Ppmd => true,
                LongTextCodec::Zstd => false,
                LongTextCodec::Auto => text_bytes <= PPMD_AUTO_MAX,
            }
    }

    /// The column builder of a build under these options: integer literals
    /// outside `[-2^63, 2^64)` are kept as text from format version 5 on.
    fn builder(&self) -> ColumnsBuilder {
        let mut b = if self.memory == 0 {
            ColumnsBuilder::new(self.limits)
        } else {
            let dir = self.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
            ColumnsBuilder::with_spill(
                self.limits,
                SpillPolicy {
                    budget: self.memory / 2,
                    dir,
                },
            )
        };
        b.keep_num_texts = self.format_version >= format::VERSION_5;
        b
    }
}

/// How the long-text table's chunks are compressed ([`BuildOptions::long_text_codec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LongTextCodec {
    /// PPMd when the table holds at most [`PPMD_AUTO_MAX`] bytes of text
    /// (and the codec choice is automatic), else zstd: at the long-text
    /// level up to [`LARGE_LONG_TEXT`] bytes (a forced codec), at most
    /// [`LARGE_LONG_LEVEL`] past it.
    #[default]
    Auto,
    /// PPMd (codec 3): 10-20% less long text than zstd at level 19 and
    /// about five times faster to write, but it decodes at about 10 MB/s,
    /// a hundred times slower than zstd: a text search over every long
    /// text, or a page of rows with their long text scattered over the
    /// table, costs that much more.
    Ppmd,
    /// zstd at the long-text level (whatever the table's size), with a
    /// trained dictionary from 4 chunks.
    Zstd,
}

/// Most bytes of text (the sum of its strings' lengths) of a long-text
/// table that [`LongTextCodec::Auto`] stores with PPMd: 256 MiB, as
/// [`LARGE_LONG_TEXT`], so `auto` has two tiers: PPMd, then zstd at level
/// [`LARGE_LONG_LEVEL`] at most. Up to it PPMd is 8-10% smaller than zstd
/// at level 19 and two to four times faster to build (at level 19 the
/// build of a large Jira export is slower than DuckDB writing Parquet);
/// the cost is reading: decoding all of it (a text search over every long
/// text) takes about 26 s of one core, spread over the decode threads,
/// and a page of rows with their long text decodes a part of up to one
/// chunk per row (docs/design.md, "PPMd up to 256 MiB"). Past it zstd's
/// decoding speed matters more than PPMd's bytes (at a million generated
/// issues, 735 MB of text: a search takes 128 s of one core with PPMd and
/// 6.5 s with zstd).
pub const PPMD_AUTO_MAX: u64 = LARGE_LONG_TEXT;

/// Most raw bytes of a PPMd long-text chunk (also at most
/// [`BuildOptions::long_chunk_size`]): 2 MiB. PPMd decodes at about 10
/// MB/s, so a long text costs about a fifth of a second to read at most;
/// larger chunks store less (jira's long text: 2,839,098 bytes in 2 MiB
/// chunks, 2,684,067 in 5 MiB ones, 2,990,810 in 1 MiB ones).
pub const PPMD_CHUNK: usize = 2 << 20;

/// zstd level of [`BuildOptions::fast`].
pub const FAST_LEVEL: i32 = 3;

impl BuildOptions {
    /// The `--fast` preset: zstd level [`FAST_LEVEL`] (long text three
    /// levels more, as always) and no long-text dictionary (the short-string
    /// table's is kept: its training is a few seconds of a million rows'
    /// 50, and without it 1 KiB chunks store about half again as much: 196,591
    /// bytes more on neovim's issues). Larger snapshots,
    /// several times faster to build; readers see no difference.
    pub fn fast() -> Self {
        BuildOptions {
            compress: CompressOptions {
                level: FAST_LEVEL,
                ..CompressOptions::default()
            },
            long_dict_size: 0,
            long_text_codec: LongTextCodec::Zstd,
            ..BuildOptions::default()
        }
    }
}

/// What a build did.
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// Rows written.
    pub rows: u64,
    /// Schema nodes (the root excluded).
    pub columns: usize,
    /// Distinct strings.
    pub strings: u64,
    /// Bytes read from the input (compressed, if it was).
    pub input_bytes: u64,
    /// Bytes of JSON text.
    pub json_bytes: u64,
    /// Bytes written.
    pub output_bytes: u64,
    /// Array or NDJSON.
    pub format: InputFormat,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// What was spilled to temporary files to stay within the memory budget.
    pub spill: SpillStats,
    /// Integer literals outside `[-2^63, 2^64)`, held as their nearest
    /// binary64 (SPEC.md 1.3): the rows do not come back exactly.
    pub inexact_integers: crate::schema::builder::InexactIntegers,
}

/// Build a snapshot from JSON read from `input`, writing it to `out`.
pub fn build<R: Read, W: Write>(input: R, out: W, opts: &BuildOptions) -> Result<BuildReport> {
    let t0 = Instant::now();
    let mut b = opts.builder();
    let max_token = opts.limits.max_string_len.min(u32::MAX as usize);
    let threads = effective_threads(opts.threads);
    let (format, stats) =
        match read_rows_threaded(input, &mut b, opts.progress.clone(), max_token, threads) {
            Ok(r) => r,
            // A failed spill is reported as itself, not as a JSON error.
            Err(e) => return Err(b.take_failure().unwrap_or(e)),
        };
    memtrace::mark("rows read");
    b.finish()?;
    memtrace::mark("finish");
    let mut w = Writer::new(out, opts)?;
    let (columns, strings) = write_snapshot(&mut b, &mut w, opts)?;
    Ok(BuildReport {
        rows: b.rows,
        columns,
        strings,
        input_bytes: stats.input_bytes,
        json_bytes: stats.json_bytes,
        output_bytes: w.pos,
        format,
        seconds: t0.elapsed().as_secs_f64(),
        spill: b.spill_stats(),
        inexact_integers: b.inexact_integers,
    })
}

/// Build a snapshot from rows fed by `feed` into a fresh [`ColumnsBuilder`]
/// (for example with [`push_value`]), writing it to `out`. Used by event
/// compaction, which has rows in hand rather than JSON text.
pub fn build_with<W: Write>(
    out: W,
    opts: &BuildOptions,
    feed: impl FnOnce(&mut ColumnsBuilder) -> Result<()>,
) -> Result<BuildReport> {
    let t0 = Instant::now();
    let mut b = opts.builder();
    if let Err(e) = feed(&mut b) {
        return Err(b.take_failure().unwrap_or(e));
    }
    b.finish()?;
    let mut w = Writer::new(out, opts)?;
    let (columns, strings) = write_snapshot(&mut b, &mut w, opts)?;
    Ok(BuildReport {
        rows: b.rows,
        columns,
        strings,
        input_bytes: 0,
        json_bytes: 0,
        output_bytes: w.pos,
        format: InputFormat::Ndjson,
        seconds: t0.elapsed().as_secs_f64(),
        spill: b.spill_stats(),
        inexact_integers: b.inexact_integers,
    })
}

/// Add one row, given as a JSON value (which must be an object), to `b`.
/// Object keys are taken in the value's order.
pub fn push_value(b: &mut ColumnsBuilder, row: &serde_json::Value) -> Result<()> {
    use serde::de::DeserializeSeed;
    let n = b.rows;
    b.row_seed().deserialize(row).map_err(|e| Error::Value {
        row: n,
        path: String::new(),
        message: e.to_string(),
    })
}

/// Build a snapshot from rows given as JSON values: the same snapshot as
/// building from those rows written out as JSON text.
pub fn build_from_values<W: Write>(
    rows: impl IntoIterator<Item = serde_json::Value>,
    out: W,
    opts: &BuildOptions,
) -> Result<BuildReport> {
    build_with(out, opts, |b| {
        for r in rows {
            push_value(b, &r)?;
        }
        Ok(())
    })
}

/// Build into memory.
pub fn build_to_vec(input: impl Read, opts: &BuildOptions) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    build(input, &mut out, opts)?;
    Ok(out)
}

/// Build from the file `input` into the file `output`, atomically: the
/// snapshot is written to a temporary file in the output's directory, synced,
/// then renamed over `output`. On any error no partial output exists and an
/// existing `output` is untouched. Refuses `output == input`.
pub fn build_file(input: &Path, output: &Path, opts: &BuildOptions) -> Result<BuildReport> {
    let f = std::fs::File::open(input).map_err(|e| Error::io(Some(input), e))?;
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize())
        && a == b
    {
        return Err(Error::Invalid(format!(
            "output {} is the input file",
            output.display()
        )));
    }
    let mut opts = opts.clone();
    if opts.tmp_dir.is_none() {
        let target = check_output_path(output)?;
        opts.tmp_dir = Some(match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
    }
    write_atomically(output, |w| build(std::io::BufReader::new(f), w, &opts))
}

/// Where [`write_atomically`] puts `output`, checked before anything is
/// written (so a bad `-o` fails before a long build, not after it):
///
/// - a path ending in a separator, an existing directory, or a path whose
///   directory does not exist is refused;
/// - an existing output that is not a regular file (a device node such as
///   `/dev/null`, a FIFO, a socket) is refused: renaming over it would
///   replace the device with a file;
/// - a symbolic link is followed: the file it points to (which must be a
///   regular file) is replaced atomically and the link stays; a link to
///   nothing, or to something that is not a regular file, is refused.
///
/// Returns the path that will be replaced (the link's target for a link).
/// A missing directory is [`Error::Io`] (`NotFound`), every other refusal
/// [`Error::Invalid`].
pub fn check_output_path(output: &Path) -> Result<std::path::PathBuf> {
    let shown = output.display();
    let text = output.as_os_str().to_string_lossy();
    if text.is_empty() {
        return Err(Error::Invalid("the output path is empty".into()));
    }
    if text.ends_with(std::path::MAIN_SEPARATOR) || text.ends_with('/') {
        return Err(Error::Invalid(format!(
            "{shown}: the output names a directory; give a file name"
        )));
    }
    let meta = match std::fs::symlink_metadata(output) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(Some(output), e)),
    };
    let target = match &meta {
        Some(m) if m.file_type().is_symlink() => {
            let tm = std::fs::metadata(output).map_err(|_| {
                Error::Invalid(format!(
                    "{shown}: the output is a symbolic link to a missing file; refusing to follow it"
                ))
            })?;
            if !tm.is_file() {
                return Err(Error::Invalid(format!(
                    "{shown}: the output is a symbolic link to {}, not to a regular file; refusing to replace it",
                    file_kind(&tm)
                )));
            }
            std::fs::canonicalize(output).map_err(|e| Error::io(Some(output), e))?
        }
        Some(m) if !m.is_file() => {
            return Err(Error::Invalid(format!(
                "{shown}: the output exists and is {}, not a regular file; refusing to replace it",
                file_kind(m)
            )));
        }
        _ => output.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            Some(&target),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the directory {} does not exist", dir.display()),
            ),
        ));
    }
    Ok(target)
}

/// What a file is, for messages.
fn file_kind(m: &std::fs::Metadata) -> &'static str {
    let t = m.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Temporary files of [`write_atomically`] that exist right now, so that a
/// program interrupted by a signal can remove them
/// ([`remove_temp_files`]). Held while a temporary file is renamed into
/// place, so a cleanup never races a rename.
static LIVE_TEMPS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

fn live_temps() -> std::sync::MutexGuard<'static, Vec<std::path::PathBuf>> {
    LIVE_TEMPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps every other thread from creating or renaming a temporary file of
/// [`write_atomically`] while it lives (see [`remove_temp_files`]).
pub struct TempFilesHeld {
    _guard: std::sync::MutexGuard<'static, Vec<std::path::PathBuf>>,
    _spill: crate::schema::interner::SpillDirsHeld,
}

impl std::fmt::Debug for TempFilesHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TempFilesHeld")
    }
}

/// Remove every temporary file that a [`write_atomically`] in progress in
/// this process has created, and every spill directory of a build in
/// progress ([`BuildOptions::memory`]), and return how many, with a guard
/// that keeps any other thread from creating or renaming one until it is
/// dropped.
/// Meant for a signal-handling thread that then ends the process (holding
/// the guard until it exits): no `.NAME.XXXX.tmp` file is left behind and
/// no output is replaced after the cleanup.
pub fn remove_temp_files() -> (usize, TempFilesHeld) {
    let mut g = live_temps();
    let mut n = 0;
    for p in g.drain(..) {
        if std::fs::remove_file(&p).is_ok() {
            n += 1;
        }
    }
    // The spill directories of builds in progress, too.
    let (dirs, spill) = crate::schema::interner::remove_spill_dirs();
    (
        n + dirs,
        TempFilesHeld {
            _guard: g,
            _spill: spill,
        },
    )
}

/// Run `write` against a temporary file next to `output` and rename it into
/// place only when `write` succeeded. The output is checked first
/// ([`check_output_path`]): a device node, a FIFO, a directory or a missing
/// directory is refused before `write` runs; a symbolic link to a regular
/// file is written through (its target is replaced, the link stays).
pub fn write_atomically<T>(
    output: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T>,
) -> Result<T> {
    let target = check_output_path(output)?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // tempfile creates files readable by the owner only; a snapshot gets
        // the permissions a plain `File::create` would give it (0666 less
        // the umask), or those of the file it replaces.
        use std::os::unix::fs::PermissionsExt;
        let perms = match std::fs::metadata(&target) {
            Ok(m) if m.is_file() => m.permissions(),
            _ => std::fs::Permissions::from_mode(0o666),
        };
        builder.permissions(perms);
    }
    // What a writer of this output killed outright left behind
    // (schema::leftovers): `.{name}.` and tempfile's six random
    // characters, then `.tmp`.
    crate::schema::leftovers::sweep(dir, false, "", |n| {
        n.len() == prefix.len() + 6 + 4 && n.starts_with(&prefix) && n.ends_with(".tmp")
    });
    let tmp = {
        let mut live = live_temps();
        let tmp = builder
            .tempfile_in(dir)
            .map_err(|e| Error::io(Some(dir), e))?;
        crate::schema::leftovers::hold(tmp.as_file());
        live.push(tmp.path().to_path_buf());
        tmp
    };
    let tmp_path = tmp.path().to_path_buf();
    let forget = |live: &mut Vec<std::path::PathBuf>| live.retain(|p| *p != tmp_path);
    let mut bw = std::io::BufWriter::with_capacity(1 << 20, tmp);
    let result = (|| {
        let out = write(&mut bw)?;
        let tmp = bw
            .into_inner()
            .map_err(|e| Error::io(Some(output), e.into_error()))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(Some(output), e))?;
        let mut live = live_temps();
        if !live.contains(&tmp_path) {
            // A signal handler removed it: the process is ending.
            return Err(Error::io(
                Some(output),
                std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"),
            ));
        }
        let persisted = tmp.persist(&target);
        forget(&mut live);
        persisted.map_err(|e| Error::io(Some(output), e.error))?;
        Ok(out)
    })();
    if result.is_err() {
        // The temporary file (dropped above) is gone already.
        forget(&mut live_temps());
    }
    result
}

/// Long text is most of the file: three zstd levels more, up to 19 (3 -> 6;
/// 19 stays 19: on chunks of a few MiB, 22 saved 0.1% at half the speed,
/// issue #15), never less than the level asked for; but at most
/// [`LARGE_LONG_LEVEL`] for a table of more than [`LARGE_LONG_TEXT`] bytes
/// of text under [`LongTextCodec::Auto`].
fn long_opts(opts: &BuildOptions, text_bytes: u64) -> CompressOptions {
    let o = &opts.compress;
    let mut level = (o.level + 3).min(19).max(o.level);
    if opts.long_text_codec == LongTextCodec::Auto && text_bytes > LARGE_LONG_TEXT {
        level = level.min(LARGE_LONG_LEVEL);
    }
    CompressOptions { level, ..*o }
}

/// Bytes of text of a long-text table past which [`LongTextCodec::Auto`]
/// compresses it at no more than [`LARGE_LONG_LEVEL`]: 256 MiB, about a
/// minute of level 19 on two cores (real bodies compress at 4-5 MB/s per
/// core at level 19, generated ones at 2.5). Past it level 19 is most of
/// the build's time for 8-9% of the long text (a million generated issues:
/// 735 MB of text, 155 s of a 225 s build).
pub const LARGE_LONG_TEXT: u64 = 256 << 20;

/// The most zstd level of a long-text table of more than
/// [`LARGE_LONG_TEXT`] bytes of text under [`LongTextCodec::Auto`]: 12, the
/// last level before zstd's binary-tree match finders, seven to nine times
/// faster than 19 for 8-9% more long text (the `zstd` CLI on 5 MB of jira's
/// long text: 774,892 bytes in 0.14 s against 718,204 in 1.23 s; neovim's
/// 957,122 in 0.16 s against 884,869 in 1.46 s). Reading is as fast at
/// either level. [`LongTextCodec::Zstd`] keeps the full level.
pub const LARGE_LONG_LEVEL: i32 = 12;

/// Chunks compressed with and without a trained dictionary are compared on
/// this many leading chunks before the dictionary is kept.
const DICT_SAMPLE_CHUNKS: usize = 2;

/// Whether a dictionary pays for itself: on the first chunks, the bytes
/// saved must exceed their share of the dictionary's stored size. Guards
/// against a dictionary that training made useless (it happens, e.g. on
/// neovim with a 1 MiB target size). `plain` and `with`: the first chunks'
/// stored bytes without and with it; `stored`: the dictionary's.
fn dict_pays(plain: usize, with: usize, stored: usize, k: usize, n_chunks: usize) -> bool {
    k > 0 && with + stored * k / n_chunks < plain
}

/// A job of [`train_dict`]'s: training, or compressing a chunk (`None`:
/// the dictionary itself) without or with the dictionary.
enum DictJob<'a> {
    Train,
    Plain(&'a [u8]),
    With(Option<&'a [u8]>),
}

/// Long-text tables with fewer chunks get no dictionary.
const LONG_DICT_MIN_CHUNKS: usize = 4;

/// Most bytes of long text a dictionary is trained on (about 100 times the
/// largest dictionary, zstd's advice).
const DICT_SAMPLE_MAX_BYTES: usize = 100 << 20;

/// String chunks are compressed in batches of at most this many raw bytes
/// (a bound on the raw chunks held at once)...
const CHUNK_BATCH_BYTES: usize = 8 << 20;
/// ...or this many chunks per thread.
const CHUNK_BATCH_COUNT: usize = 4;

/// The zstd dictionary of a long-text table (`ids`: its strings in sorted
/// order), if one is wanted (`long_dict_size`, at least
/// [`LONG_DICT_MIN_CHUNKS`] chunks) and pays for itself ([`dict_pays`]),
/// and what the trial measured ([`DictTrial`]).
fn train_dict(
    strings: &Strings,
    table: &SortedTable,
    opts: &BuildOptions,
    policy: TablePolicy,
) -> Result<DictTrial> {
    if opts.long_dict_size == 0 {
        return Ok(DictTrial::default());
    }
    let mut cb = ChunkBuilder::new(policy);
    let mut first = Vec::new();
    let (mut n_chunks, mut total) = (0usize, 0usize);
    let mut seen = |c: Vec<u8>| {
        n_chunks += 1;
        total += c.len();
        if first.len() < DICT_SAMPLE_CHUNKS {
            first.push(c);
        }
    };
    // Training copies its samples into one buffer and its time grows with
    // them: past DICT_SAMPLE_MAX_BYTES, every k-th string (in sorted order)
    // is a sample, about that many bytes spread over the whole table.
    let text = table.text_bytes as usize;
    let step = text.div_ceil(DICT_SAMPLE_MAX_BYTES).max(1);
    let mut samples: Vec<u8> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    strings.visit(table, |k, s| {
        if let Some((c, _)) = cb.push(s) {
            seen(c);
        }
        if k % step == 0 {
            samples.extend_from_slice(s);
            sizes.push(s.len());
        }
        Ok(())
    })?;
    if let Some((c, _)) = cb.finish() {
        seen(c);
    }
    if n_chunks < LONG_DICT_MIN_CHUNKS {
        return Ok(DictTrial::default());
    }
    let size = opts.long_dict_size.min(total / 16);
    // Level-19 compressions of a few MiB each are most of a mid-sized
    // build's time: the first chunks are compressed without the dictionary
    // while it is trained, then with it beside the dictionary's own, each
    // step's jobs on the build's threads (the decision, and so the bytes,
    // are the same whatever their count).
    let o = long_opts(opts, table.text_bytes);
    let threads = effective_threads(opts.threads);
    let k = DICT_SAMPLE_CHUNKS.min(first.len());
    let len = |c: &[u8], d: Option<&[u8]>| compress::compress(c, &o, d).ok().map(|x| x.1.len());
    let mut jobs = vec![DictJob::Train];
    jobs.extend(first[..k].iter().map(|c| DictJob::Plain(c)));
    let mut dict = None;
    let mut plain = Some(0usize);
    let mut plains = Vec::new();
    for (job, out) in jobs.iter().zip(par_map(threads, &jobs, |j| match j {
        DictJob::Train => (
            zstd::dict::from_continuous(&samples, &sizes, size).ok(),
            None,
        ),
        DictJob::Plain(c) => (None, len(c, None)),
        DictJob::With(_) => (None, None),
    })) {
        match job {
            DictJob::Train => dict = out.0,
            _ => {
                plains.push(out.1);
                plain = plain.zip(out.1).map(|(a, b)| a + b);
            }
        }
    }
    // The first chunk as the long-text level stores it (with the
    // dictionary when it is kept): the scale of the fill's first
    // prediction, closer than the scattered sample's.
    let first_fill = |stored: Option<usize>| -> Result<Option<(u128, u128, u128)>> {
        let (Some(c), Some(stored)) = (first.first(), stored) else {
            return Ok(None);
        };
        let fast = compress::fast_len(c)?.max(1) as u128;
        Ok(Some((c.len() as u128, stored.max(1) as u128, fast)))
    };
    let plain_first = plains.first().copied().flatten();
    let (Some(dict), Some(plain)) = (dict, plain) else {
        return Ok(DictTrial {
            first: first_fill(plain_first)?,
            ..Default::default()
        });
    };
    let mut jobs = vec![DictJob::With(None)];
    jobs.extend(first[..k].iter().map(|c| DictJob::With(Some(c))));
    let (mut stored, mut with) = (None, Some(0usize));
    let mut with_first = None;
    let mut packed_dict = None;
    for (job, out) in jobs.iter().zip(par_map(threads, &jobs, |j| match j {
        DictJob::With(None) => {
            let c = compress::compress(&dict, &o, None).ok();
            (c.as_ref().map(|c| c.1.len()), c)
        }
        DictJob::With(Some(c)) => (len(c, Some(&dict)), None),
        _ => (None, None),
    })) {
        let (out, bytes) = out;
        match job {
            DictJob::With(None) => (stored, packed_dict) = (out, bytes),
            _ => {
                if with_first.is_none() {
                    with_first = Some(out);
                }
                with = with.zip(out).map(|(a, b)| a + b);
            }
        }
    }
    Ok(match (stored, with) {
        (Some(stored), Some(with)) if dict_pays(plain, with, stored, k, n_chunks) => DictTrial {
            dict: Some((dict, stored)),
            packed_dict,
            first: first_fill(plain_first)?,
            first_with: first_fill(with_first.flatten())?,
        },
        _ => DictTrial {
            first: first_fill(plain_first)?,
            ..Default::default()
        },
    })
}

/// How the short-string table is chunked, and its dictionary.
struct ShortPlan {
    chunk_size: usize,
    dict: Option<Vec<u8>>,
    /// Automatic chunking found the table one chunk (at most
    /// [`SHORT_ONE_CHUNK`] raw bytes).
    one_chunk: bool,
}

/// The short-string table's [`ShortPlan`]: the chunk size asked for, or
/// [`auto_chunk_size`] of its chunks' raw bytes (front-coded as the table
/// will be), and its dictionary ([`train_short_dict`]).
fn plan_short(strings: &Strings, table: &SortedTable, opts: &BuildOptions) -> Result<ShortPlan> {
    let mut one_chunk = false;
    let chunk_size = match opts.chunk_size {
        0 => {
            let mut cb = ChunkBuilder::new(TablePolicy {
                chunk_size: SHORT_CHUNK_MAX,
                front_coding: opts.front_coding,
            });
            let mut raw = 0u64;
            strings.visit(table, |_, s| {
                if let Some((c, _)) = cb.push(s) {
                    raw += c.len() as u64;
                }
                Ok(())
            })?;
            raw += cb.finish().map_or(0, |c| c.0.len() as u64);
            one_chunk = raw <= SHORT_ONE_CHUNK;
            auto_chunk_size(raw)
        }
        n => n,
    };
    let policy = TablePolicy {
        chunk_size,
        front_coding: opts.front_coding,
    };
    Ok(ShortPlan {
        chunk_size,
        dict: train_short_dict(strings, table, opts, policy)?,
        one_chunk,
    })
}

/// The zstd dictionary of a short-string table (`policy`: its chunking), if
/// one is wanted (`short_dict_size`, at least [`SHORT_DICT_MIN_CHUNKS`]
/// chunks) and pays for itself on a spread sample of the chunks.
fn train_short_dict(
    strings: &Strings,
    table: &SortedTable,
    opts: &BuildOptions,
    policy: TablePolicy,
) -> Result<Option<Vec<u8>>> {
    let size = opts.short_dict_size;
    if size == 0 {
        return Ok(None);
    }
    let budget = size.saturating_mul(SHORT_DICT_SAMPLE_FACTOR).max(1);
    let estimate = table.text_bytes as usize + 2 * table.len;
    let step = estimate.div_ceil(budget).max(1);
    let mut cb = ChunkBuilder::new(policy);
    let (mut n_chunks, mut total) = (0usize, 0usize);
    let mut samples: Vec<u8> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    // Chunks the dictionary is tried on: when it is trained on a sample,
    // chunks between the samples (not trained on), else the table's own.
    let mut held_out: Vec<Vec<u8>> = Vec::new();
    let mut seen = |c: Vec<u8>| {
        total += c.len();
        if n_chunks % step == 0 {
            samples.extend_from_slice(&c);
            sizes.push(c.len());
        } else if n_chunks % step == step / 2 {
            held_out.push(c);
        }
        n_chunks += 1;
    };
    strings.visit(table, |_, s| {
        if let Some((c, _)) = cb.push(s) {
            seen(c);
        }
        Ok(())
    })?;
    if let Some((c, _)) = cb.finish() {
        seen(c);
    }
    if n_chunks < SHORT_DICT_MIN_CHUNKS {
        return Ok(None);
    }
    let size = size.min(total / 16).max(256);
    let Ok(dict) = zstd::dict::from_continuous(&samples, &sizes, size) else {
        return Ok(None);
    };
    // Pays for itself: the tried chunks' savings, scaled to the table,
    // exceed the dictionary's stored bytes.
    let o = opts.compress;
    let stored = compress::compress(&dict, &o, None)?.1.len();
    let prepared = compress::EncoderDict::new(&dict, o.level);
    let tried: Vec<&[u8]> = if held_out.is_empty() {
        let mut at = 0;
        sizes
            .iter()
            .map(|&n| {
                at += n;
                &samples[at - n..at]
            })
            .collect()
    } else {
        held_out.iter().map(Vec::as_slice).collect()
    };
    let pick: Vec<&[u8]> = tried
        .iter()
        .step_by(tried.len().div_ceil(SHORT_DICT_TRIAL_CHUNKS).max(1))
        .copied()
        .collect();
    let threads = effective_threads(opts.threads);
    let lens = par_map(threads, &pick, |c| -> Result<(usize, usize)> {
        Ok((
            compress::compress(c, &o, None)?.1.len(),
            compress::compress_prepared(c, &o, &prepared)?.1.len(),
        ))
    });
    let (mut plain, mut with) = (0u128, 0u128);
    for l in lens {
        let (p, w) = l?;
        plain += p as u128;
        with += w as u128;
    }
    let saved = plain.saturating_sub(with) * n_chunks as u128 / pick.len().max(1) as u128;
    Ok((saved > stored as u128).then_some(dict))
}

/// Short-string tables with fewer chunks get no dictionary.
pub const SHORT_DICT_MIN_CHUNKS: usize = 8;
/// Default [`BuildOptions::short_dict_size`]: 32 KiB (neovim's issues at
/// 1 KiB chunks: 16 KiB stores 18 KB more, 64 KiB 11 KB less but the grid
/// fetches it whole).
pub const SHORT_DICT_SIZE: usize = 32 << 10;

/// A short-string table of at most this many raw bytes is one chunk.
pub const SHORT_ONE_CHUNK: u64 = 64 << 10;
/// Smallest automatic chunk of the short-string table.
pub const SHORT_CHUNK_MIN: usize = 1 << 10;
/// Largest automatic chunk of the short-string table (a short string is
/// reached by decoding at most this many bytes).
pub const SHORT_CHUNK_MAX: usize = 64 << 10;
/// Automatic chunks grow past [`SHORT_CHUNK_MIN`] to keep a table within
/// about this many chunks (the footer holds a directory entry and the
/// index a separator for each).
pub const SHORT_CHUNKS_TARGET: u64 = 1 << 16;

/// The automatic chunk size of a short-string table of `raw` bytes of
/// chunks ([`BuildOptions::chunk_size`] 0): one chunk up to
/// [`SHORT_ONE_CHUNK`], else the table over [`SHORT_CHUNKS_TARGET`] chunks,
/// rounded up to a power of two, within [`SHORT_CHUNK_MIN`] and
/// [`SHORT_CHUNK_MAX`]. Small chunks let a page of rows decode the few
/// strings it shows instead of most of the table (SPEC.md 7.3).
pub fn auto_chunk_size(raw: u64) -> usize {
    if raw <= SHORT_ONE_CHUNK {
        return SHORT_CHUNK_MAX;
    }
    let each = raw.div_ceil(SHORT_CHUNKS_TARGET).next_power_of_two();
    (each.min(SHORT_CHUNK_MAX as u64) as usize).max(SHORT_CHUNK_MIN)
}

/// A short-string dictionary is trained on about this many times its size
/// of chunks (every k-th chunk).
const SHORT_DICT_SAMPLE_FACTOR: usize = 100;
/// Chunks compressed with and without the dictionary to decide whether it
/// pays for itself.
const SHORT_DICT_TRIAL_CHUNKS: usize = 64;

/// What [`train_dict`] found: the dictionary kept, with its stored bytes
/// at the long-text level ([`long_opts`]), and the first chunk's raw,
/// stored and [`compress::fast_len`] bytes, stored without the dictionary
/// (`first`) and with the one kept (`first_with`).
#[derive(Default)]
struct DictTrial {
    dict: Option<(Vec<u8>, usize)>,
    /// The dictionary compressed at the long-text level.
    packed_dict: Option<(Codec, Vec<u8>)>,
    first: Option<(u128, u128, u128)>,
    first_with: Option<(u128, u128, u128)>,
}

/// Raw bytes of long text compressed to estimate the table's ratio.
const LONG_SAMPLE_BYTES: usize = 1 << 20;

/// The share (in percent) of the sample's ratio a long-text chunk's raw
/// size is planned with: larger chunks compress better than the scattered
/// sample, so most chunks land just under the fetch bound and few split.
const LONG_RATIO_PERCENT: u128 = 100;

/// Stored bytes of a section's framing (header and padding) counted
/// against [`BuildOptions::long_chunk_fetch`].
const SECTION_FRAMING: usize = 24;

/// How a long-text table is chunked.
struct LongPlan {
    /// Raw target of a chunk.
    chunk_size: usize,
    /// Most stored bytes of a chunk (a chunk of two strings or more that
    /// stores more is split in two).
    cap: usize,
    /// The table's zstd dictionary.
    dict: Option<Vec<u8>>,
    /// Raw and stored bytes of the sample ((1, 1) when unknown).
    ratio: (u128, u128),
    /// Stored and [`compress::fast_len`] bytes of the sample ((1, 1) when
    /// unknown).
    scale: (u128, u128),
    /// Whether `ratio` and `scale` were measured on the table's first chunk
    /// (by [`train_dict`]) rather than on the scattered sample.
    measured: bool,
    /// The dictionary compressed at the build's level, when the trial's
    /// level is that level (its section then needs no compression again).
    packed_dict: Option<(Codec, Vec<u8>)>,
}

/// A long-text table cut to a fetch bound is chunked in runs of this many
/// planned chunks, each cut by [`pack_fill`] into pieces that fill the
/// bound: only a run's last piece is short.
const LONG_RUN_CHUNKS: usize = 8;

impl LongPlan {
    /// Raw bytes of a run handed to [`pack_fill`] (`max_raw`: the most raw
    /// bytes of a chunk). Without a fetch bound, when chunks are not filled
    /// (`fills`), or when the planned size is already `max_raw`, a run is
    /// one planned chunk.
    fn run_size(&self, max_raw: usize, fills: bool) -> usize {
        if self.cap == usize::MAX || !fills || self.chunk_size >= max_raw {
            self.chunk_size
        } else {
            self.chunk_size.saturating_mul(LONG_RUN_CHUNKS)
        }
    }
}

/// Raw bytes over stored bytes of every k-th long text, about
/// [`LONG_SAMPLE_BYTES`] of them, as (raw, stored, [`compress::fast_len`]).
fn long_sample_ratio(
    strings: &Strings,
    table: &SortedTable,
    o: &CompressOptions,
) -> Result<Option<(u128, u128, u128)>> {
    let step = (table.text_bytes as usize)
        .div_ceil(LONG_SAMPLE_BYTES)
        .max(1);
    let mut buf = Vec::new();
    strings.visit(table, |k, s| {
        if k % step == 0 {
            encoding::varint::put_bytes(&mut buf, s);
        }
        Ok(())
    })?;
    let fast = compress::fast_len(&buf)?.max(1) as u128;
    Ok(compress::compress(&buf, o, None)
        .ok()
        .map(|(_, stored)| (buf.len() as u128, stored.len().max(1) as u128, fast)))
}

/// Chunk size, stored-size cap and dictionary of a long-text table (`ids`:
/// its strings in sorted order): the raw size of a chunk is the fetch bound
/// (less the dictionary's stored bytes) times the ratio of a sample, at most
/// `long_chunk_size`.
fn plan_long(strings: &Strings, table: &SortedTable, opts: &BuildOptions) -> Result<LongPlan> {
    let max = opts.long_chunk_size.max(1);
    let fetch = opts.long_chunk_fetch;
    if opts.ppmd_long_text(table.text_bytes) {
        // PPMd chunks are cut at a raw size (they decode at about 10 MB/s)
        // and need no dictionary; one that stores more than the fetch bound
        // (a rare, barely compressible text) is split.
        return Ok(LongPlan {
            chunk_size: max.min(PPMD_CHUNK),
            cap: if fetch == 0 {
                usize::MAX
            } else {
                fetch.saturating_sub(SECTION_FRAMING).max(1)
            },
            dict: None,
            ratio: (1, 1),
            scale: (1, 1),
            measured: false,
            packed_dict: None,
        });
    }
    if fetch == 0 {
        let policy = TablePolicy {
            chunk_size: max,
            front_coding: false,
        };
        return Ok(LongPlan {
            chunk_size: max,
            cap: usize::MAX,
            dict: train_dict(strings, table, opts, policy)?.dict.map(|d| d.0),
            ratio: (1, 1),
            scale: (1, 1),
            measured: false,
            packed_dict: None,
        });
    }
    let ratio = long_sample_ratio(strings, table, &long_opts(opts, table.text_bytes))?;
    let fill_of = |(raw, stored, fast)| ((raw, stored), (stored, fast));
    let (mut fill_ratio, mut fill_scale) = ratio.map_or(((1, 1), (1, 1)), fill_of);
    let size_for = |cap: usize| match ratio {
        Some((raw, stored, _)) => {
            let est = cap as u128 * raw * LONG_RATIO_PERCENT / (stored * 100);
            (est.min(max as u128) as usize).max(1)
        }
        None => max,
    };
    let cap = fetch.saturating_sub(2 * SECTION_FRAMING).max(1);
    let policy = TablePolicy {
        chunk_size: size_for(cap),
        front_coding: false,
    };
    let trial = train_dict(strings, table, opts, policy)?;
    let measured = trial.first.is_some();
    if let Some(first) = trial.first {
        (fill_ratio, fill_scale) = fill_of(first);
    }
    let first_with = trial.first_with;
    let mut dict = None;
    if let Some((d, long_stored)) = trial.dict {
        // The dictionary is fetched with the chunk: chunks shrink to fit.
        // (Its size at the long-text level is known from training; at
        // levels where that is the build's level, it is this size.)
        let same_level = long_opts(opts, table.text_bytes).level == opts.compress.level;
        let stored = if same_level {
            long_stored
        } else {
            compress::compress(&d, &opts.compress, None).map_or(usize::MAX, |c| c.1.len())
        };
        let packed_dict = trial.packed_dict.filter(|_| same_level);
        dict = Some(d);
        if stored.saturating_mul(2) <= cap {
            let cap = cap - stored - SECTION_FRAMING;
            let (ratio, scale) = first_with.map_or((fill_ratio, fill_scale), fill_of);
            return Ok(LongPlan {
                chunk_size: size_for(cap),
                cap,
                dict,
                ratio,
                scale,
                measured: first_with.is_some(),
                packed_dict,
            });
        }
        dict = None;
    }
    Ok(LongPlan {
        chunk_size: policy.chunk_size,
        cap,
        dict,
        ratio: fill_ratio,
        scale: fill_scale,
        measured,
        packed_dict: None,
    })
}

/// Byte offsets of the entries of a plain (not front-coded) chunk.
fn plain_entries(raw: &[u8]) -> Vec<(usize, usize)> {
    let mut r = encoding::varint::Reader::new(raw);
    let mut out = Vec::new();
    while !r.is_empty() {
        let start = r.pos();
        let n = r.u64("chunk").unwrap_or(0) as usize;
        let end = r.pos() + n;
        out.push((start, end));
        if end > raw.len() || r.bytes(n, "chunk").is_err() {
            break;
        }
    }
    out
}

/// A long-text chunk compressed; one that stores more than `cap` bytes and
/// holds two strings or more is split (at the entry nearest its middle) and
/// each half packed again. The pieces in order: packed, string count and
/// byte range in `raw`.
fn pack_within(
    raw: &[u8],
    n: u32,
    cap: usize,
    o: &CompressOptions,
    dict: Option<&compress::EncoderDict>,
) -> Result<Vec<(Packed, u32, std::ops::Range<usize>)>> {
    raw_len_of(raw)?;
    let p = match dict {
        Some(d) => packed(
            Role::StrChunk,
            Encoding::Raw,
            raw,
            compress::compress_prepared(raw, o, d)?,
        )?,
        None => pack(Role::StrChunk, Encoding::Raw, raw, o, None)?,
    };
    if p.stored.len() <= cap || n < 2 {
        return Ok(vec![(p, n, 0..raw.len())]);
    }
    drop(p);
    let entries = plain_entries(raw);
    if entries.len() < 2 {
        return pack_within(raw, 1, cap, o, dict);
    }
    let k = entries
        .iter()
        .position(|&(_, end)| end * 2 >= raw.len())
        .unwrap_or(0)
        .clamp(1, entries.len() - 1);
    let mid = entries[k].0;
    let mut out = pack_within(&raw[..mid], k as u32, cap, o, dict)?;
    for (p, c, r) in pack_within(&raw[mid..], n - k as u32, cap, o, dict)? {
        out.push((p, c, r.start + mid..r.end + mid));
    }
    Ok(out)
}

/// Tries at the long-text level of one piece of [`pack_fill`] before it
/// keeps the largest that fit (or, when none did, falls back to halving).
const FILL_TRIES: usize = 3;

/// Fast trials ([`compress::fast_len`]) of one prediction of [`pack_fill`].
const FILL_FAST_TRIES: usize = 8;

/// A piece of [`pack_fill`] that stores at least this share (in percent)
/// of the cap is kept without a larger try.
const FILL_GOOD_PERCENT: u128 = 90;

/// The share (in percent) of the cap a piece is aimed at, so that most
/// predictions land just under the cap.
const FILL_AIM_PERCENT: u128 = 98;

/// Pieces of [`pack_fill`] predicted at once and compressed in parallel.
const FILL_GROUP: usize = 4;

/// A fast prediction within this share (per mille) of the aim is taken
/// without another fast trial.
const FILL_CLOSE_PERMILLE: u128 = 995;

/// How [`pack_fill`] cuts a long-text table's runs.
#[derive(Clone, Copy, Debug)]
struct FillPlan {
    /// Whether runs are cut to fill the cap (else a run is one planned
    /// chunk, split only when it stores more than the cap).
    fills: bool,
    /// Most stored bytes of a piece (`usize::MAX`: no bound, one piece per run).
    cap: usize,
    /// Raw and stored bytes a run's first piece is planned with (the sample's).
    ratio: (u128, u128),
    /// Stored bytes at the long-text level and [`compress::fast_len`] bytes
    /// a run's first piece is predicted with (the sample's).
    scale: (u128, u128),
    /// Most raw bytes of a piece.
    max_raw: usize,
    /// Pieces predicted at once at the run's start: 1 (the first cut
    /// alone) unless the scale was measured on the run's own text.
    first_group: usize,
}

/// A long-text run of plain entries (`raw`, `n` strings) cut into pieces
/// that each store at most `cap` bytes and close to it. The end of a piece
/// is predicted at a fast zstd level ([`compress::fast_len`], about a
/// hundred times cheaper than level 19): the last entry whose prefix's fast
/// size, scaled by stored over fast bytes of the previous try (at first the
/// sample's), stays within [`FILL_AIM_PERCENT`] of the cap. The piece is
/// then compressed for real; one that stores more than the cap, or less
/// than [`FILL_GOOD_PERCENT`] of it, is predicted again with its own scale
/// (at most [`FILL_TRIES`] real tries; when none fit, the last is halved).
/// A run's first piece is cut alone; after it, [`FILL_GROUP`] pieces are
/// predicted at once (each with the scale of the last piece kept) and
/// compressed in parallel (`threads`), kept in order up to the first that
/// is not, which is tried again alone. No piece exceeds `max_raw` raw
/// bytes. The pieces in order: packed, string count and byte range in
/// `raw`. Deterministic: depends only on `raw` and the plan, not on
/// `threads`.
fn pack_fill(
    raw: &[u8],
    n: u32,
    plan: &FillPlan,
    o: &CompressOptions,
    dict: Option<&compress::EncoderDict>,
    threads: usize,
) -> Result<Vec<(Packed, u32, std::ops::Range<usize>)>> {
    if plan.cap == usize::MAX || !plan.fills {
        return pack_within(raw, n, plan.cap, o, dict);
    }
    let entries = plain_entries(raw);
    if entries.len() != n as usize || entries.last().is_some_and(|e| e.1 != raw.len()) {
        return pack_within(raw, n, plan.cap, o, dict);
    }
    let cap = plan.cap as u128;
    let aim = cap * FILL_AIM_PERCENT / 100;
    let count = entries.len();
    let base_of = |start: usize| entries[start].0;
    let raw_of = |start: usize, end: usize| entries[end - 1].1 - base_of(start);
    // The entry index after the last entry that ends within `bytes` of
    // entry `start` (at least one entry).
    let end_for = |start: usize, bytes: u128| -> usize {
        let limit = bytes.min(plan.max_raw as u128) as usize + base_of(start);
        start
            + entries[start..]
                .partition_point(|&(_, e)| e <= limit)
                .max(1)
    };
    let piece =
        |start: usize, end: usize| &raw[base_of(start)..base_of(start) + raw_of(start, end)];
    // The last end in (lo, hi) of a piece from `start` whose fast size,
    // scaled, fits the aim.
    let predict = |start: usize, scale: (u128, u128), ratio: (u128, u128), lo: usize, hi: usize| {
        let est = |e: usize| -> Result<u128> {
            Ok(compress::fast_len(piece(start, e))? as u128 * scale.0 / scale.1.max(1))
        };
        let mut e = end_for(start, aim * ratio.0 / ratio.1.max(1)).clamp(lo + 1, hi - 1);
        // The largest end estimated to fit and the smallest not to, with
        // their estimates.
        let mut fit: Option<(usize, u128)> = None;
        let mut over: Option<(usize, u128)> = None;
        for _ in 0..FILL_FAST_TRIES {
            let s = est(e)?;
            if s <= aim {
                fit = Some((e, s));
                if e + 1 >= hi || s * 1000 >= aim * FILL_CLOSE_PERMILLE {
                    break;
                }
            } else {
                over = Some((e, s));
                if e <= lo + 1 {
                    break;
                }
            }
            let next = match (fit, over) {
                (Some((l, _)), Some((h, _))) if h <= l + 1 => break,
                (Some((l, ls)), Some((h, hs))) => {
                    let (rl, rh) = (raw_of(start, l) as u128, raw_of(start, h) as u128);
                    end_for(start, rl + (rh - rl) * (aim - ls) / (hs - ls).max(1))
                        .clamp(l + 1, h - 1)
                }
                (Some((l, ls)), None) => {
                    end_for(start, raw_of(start, l) as u128 * aim / ls.max(1)).clamp(l + 1, hi - 1)
                }
                (None, Some((h, hs))) => {
                    end_for(start, raw_of(start, h) as u128 * aim / hs.max(1)).clamp(lo + 1, h - 1)
                }
                (None, None) => break,
            };
            if next == e {
                break;
            }
            e = next;
        }
        Ok::<usize, Error>(fit.map_or(e, |f| f.0))
    };
    let pack_piece = |start: usize, end: usize| -> Result<Packed> {
        let pc = piece(start, end);
        match dict {
            Some(d) => packed(
                Role::StrChunk,
                Encoding::Raw,
                pc,
                compress::compress_prepared(pc, o, d)?,
            ),
            None => pack(Role::StrChunk, Encoding::Raw, pc, o, None),
        }
    };
    // Whether a try is kept without another: it fits and is full enough,
    // or it is the run's (or the raw bound's) last.
    let keeps = |start: usize, end: usize, stored: u128| {
        stored <= cap
            && (stored * 100 >= cap * FILL_GOOD_PERCENT
                || end == count
                || raw_of(start, end) >= plan.max_raw)
    };
    let (mut ratio, mut scale) = (plan.ratio, plan.scale);
    let mut out = Vec::new();
    let mut start = 0usize;
    // A run's first piece is cut alone (the sample's scale is a rough
    // guess; the table's first run, whose first chunk the dictionary trial
    // measured, starts with a group); then groups of FILL_GROUP pieces are
    // predicted with the scale of the last piece kept and compressed in
    // parallel, kept in order up to the first that is not: that one is
    // tried again alone. The cuts do not depend on the thread count.
    let mut group = plan.first_group.max(1);
    while start < count {
        let mut cuts = Vec::new();
        let mut a = start;
        while cuts.len() < group && a < count {
            let e = predict(a, scale, ratio, a, count + 1)?;
            cuts.push((a, e));
            a = e;
        }
        let packs = par_map(threads, &cuts, |&(a, e)| pack_piece(a, e));
        // The first try that was not kept, to try again alone.
        let mut retry: Option<(usize, Packed)> = None;
        for (&(a, e), p) in cuts.iter().zip(packs) {
            if retry.is_some() {
                break;
            }
            let p = p?;
            let stored = p.stored.len().max(1) as u128;
            let fast = compress::fast_len(piece(a, e))?.max(1) as u128;
            scale = (stored, fast);
            ratio = (raw_of(a, e) as u128, stored);
            if keeps(a, e, stored) {
                out.push((p, (e - a) as u32, base_of(a)..base_of(a) + raw_of(a, e)));
                start = e;
            } else {
                retry = Some((e, p));
            }
        }
        group = FILL_GROUP;
        let Some((mut end, first)) = retry else {
            continue;
        };
        // Ends known to fit (`lo`, `start` when none) and not to (`hi`).
        let (mut lo, mut hi) = (start, count + 1);
        let mut fit: Option<(Packed, usize)> = None;
        let mut p = Some(first);
        for t in 0..FILL_TRIES {
            let p = match p.take() {
                Some(p) => p,
                None => {
                    let p = pack_piece(start, end)?;
                    let stored = p.stored.len().max(1) as u128;
                    scale = (
                        stored,
                        compress::fast_len(piece(start, end))?.max(1) as u128,
                    );
                    ratio = (raw_of(start, end) as u128, stored);
                    p
                }
            };
            let stored = p.stored.len().max(1) as u128;
            if stored <= cap || end - start == 1 {
                let done = keeps(start, end, stored) || stored > cap;
                lo = end;
                fit = Some((p, end));
                if done {
                    break;
                }
            } else {
                hi = end;
            }
            if hi <= lo + 1 || t + 1 == FILL_TRIES {
                break;
            }
            end = predict(start, scale, ratio, lo, hi)?;
        }
        match fit {
            Some((p, end)) => {
                let stored = p.stored.len().max(1) as u128;
                ratio = (raw_of(start, end) as u128, stored);
                out.push((
                    p,
                    (end - start) as u32,
                    base_of(start)..base_of(start) + raw_of(start, end),
                ));
                start = end;
            }
            None => {
                // Every try stored more than the cap: halve the smallest.
                let end = hi.min(count);
                let r = base_of(start)..base_of(start) + raw_of(start, end);
                for (p, c, q) in
                    pack_within(&raw[r.clone()], (end - start) as u32, plan.cap, o, dict)?
                {
                    out.push((p, c, q.start + r.start..q.end + r.start));
                }
                start = end;
            }
        }
    }
    Ok(out)
}

/// Appends the separator of a plain chunk (`raw`) to `index`, by the rule
/// of [`ChunkBuilder`]: the shortest prefix of the chunk's first string
/// that sorts after the previous chunk's last string (`last`, then set to
/// this chunk's last string).
fn push_separator(index: &mut Vec<u8>, last: &mut Option<Vec<u8>>, raw: &[u8]) {
    let es = plain_entries(raw);
    let (Some(&f), Some(&l)) = (es.first(), es.last()) else {
        return;
    };
    let entry = |e: (usize, usize)| -> &[u8] {
        let mut r = encoding::varint::Reader::new(&raw[e.0..e.1]);
        r.len_bytes("chunk").unwrap_or(&[])
    };
    let first = entry(f);
    if let Some(prev) = last {
        let shared = prev.iter().zip(first).take_while(|(a, b)| a == b).count();
        encoding::varint::put_bytes(index, &first[..(shared + 1).min(first.len())]);
    }
    *last = Some(entry(l).to_vec());
}

/// From this zstd level on, candidate encodings of a stream are first
/// ranked by [`compress::trial_len`] (at level 19 every candidate of every
/// stream was compressed in full: most of a default build's time, issue
/// #16); below it, compressing each at the real level is cheap enough.
const TRIAL_FROM_LEVEL: i32 = 16;

/// Candidates whose trial size is within this many per mille of the
/// smallest trial are compressed at the real level, the smallest kept.
const TRIAL_MARGIN_PERMILLE: usize = 10;

/// Streams whose candidates are all at most this many raw bytes skip the
/// trial: each is compressed at the real level (cheap at that size).
const TRIAL_MIN_BYTES: usize = 16 << 10;

/// A section compressed and ready to be written.
struct Packed {
    role: Role,
    encoding: Encoding,
    codec: Codec,
    raw_len: u32,
    stored: Vec<u8>,
    /// The source node of a `mapped` or `based` stream (its first varint).
    source: Option<u32>,
}

/// Compress one section's raw bytes.
fn pack(
    role: Role,
    encoding: Encoding,
    raw: &[u8],
    opts: &CompressOptions,
    dict: Option<&[u8]>,
) -> Result<Packed> {
    raw_len_of(raw)?;
    packed(role, encoding, raw, compress::compress(raw, opts, dict)?)
}

/// The raw length of a section, which must fit a u32.
fn raw_len_of(raw: &[u8]) -> Result<u32> {
    u32::try_from(raw.len()).map_err(|_| Error::Limit {
        what: "section raw bytes",
        got: raw.len() as u64,
        max: u32::MAX as u64,
    })
}

/// A section of `raw` bytes compressed to `c`.
fn packed(role: Role, encoding: Encoding, raw: &[u8], c: (Codec, Vec<u8>)) -> Result<Packed> {
    let raw_len = raw_len_of(raw)?;
    let (codec, stored) = c;
    let source = if encoding.has_source() {
        let s = encoding::varint::Reader::new(raw).u64("a stream's source")?;
        Some(u32::try_from(s).map_err(|_| Error::Invalid(format!("source node {s}")))?)
    } else {
        None
    };
    Ok(Packed {
        role,
        encoding,
        codec,
        raw_len,
        stored,
        source,
    })
}

/// A candidate encoding of a stream, made when it is compared (`None`:
/// the encoding does not apply), so that the candidates of a whole column
/// are not all held at once (issue 16).
type MakeCand<'a> = Box<dyn FnOnce() -> Option<(Encoding, Vec<u8>)> + 'a>;

/// A candidate already made.
fn ready<'a>(e: Encoding, raw: Vec<u8>) -> MakeCand<'a> {
    Box::new(move || Some((e, raw)))
}

/// The candidate encodings of signed integers (those of
/// [`encoding::i64_candidates`], in its order), made one at a time:
/// the `count` values that `values` lists, whose distinct values are
/// `distinct` ([`Distinct::of`] them). Listed, not a slice: the seconds of
/// a column of timestamps are not copied out (issue 16).
fn i64_cands<'a, I: Iterator<Item = i64> + 'a>(
    values: impl Fn() -> I + Copy + 'a,
    count: usize,
    distinct: &'a Distinct,
) -> Vec<MakeCand<'a>> {
    vec![
        Box::new(move || {
            let mut a = Vec::new();
            let e = encoding::encode_i64s_of(values, &mut a);
            Some((e, a))
        }),
        Box::new(move || {
            let sorted = distinct.sorted.as_deref()?;
            encoding::dict::encode_i64s_with(values(), count, sorted).map(|d| (Encoding::Dict, d))
        }),
    ]
}

/// The distinct values of a column of integers (or of seconds), counted
/// from one sorted copy, which is kept only when a dictionary of them may
/// pay ([`encoding::dict::pays`]). The statistics, the sources of a mapped
/// ints stream and the dictionary candidate all take this one count
/// (issue 16: each sorted a copy of the column, 8 bytes an item, and the
/// dictionary's copy was made while another candidate was held).
struct Distinct {
    n: usize,
    sorted: Option<Vec<i64>>,
}

impl Distinct {
    fn of(values: impl Iterator<Item = i64>) -> Self {
        let mut v: Vec<i64> = values.collect();
        let count = v.len();
        v.sort_unstable();
        v.dedup();
        let n = v.len();
        let sorted = encoding::dict::pays(n, count).then(|| {
            v.shrink_to_fit();
            v
        });
        Distinct { n, sorted }
    }
}

/// The candidate encodings of string ids (those of
/// [`encoding::u32_candidates`], in its order, differences only with
/// `deltas`), made one at a time. `distinct` is how many distinct ids they
/// hold (counted before): without a dictionary that may pay, none is
/// tried (it would sort a copy of them only to find that out).
fn u32_cands(values: &[u32], distinct: usize, deltas: bool) -> Vec<MakeCand<'_>> {
    let mut c: Vec<MakeCand<'_>> = vec![
        Box::new(move || {
            let mut a = Vec::new();
            let e = encoding::encode_u32s(values, &mut a);
            Some((e, a))
        }),
        Box::new(move || {
            let mut v = Vec::new();
            let e = encoding::encode_u64s(values.iter().map(|&x| x as u64), &mut v);
            Some((e, v))
        }),
        Box::new(move || {
            if !encoding::dict::pays(distinct, values.len()) {
                return None;
            }
            encoding::dict::encode_u32s_if_useful(values).map(|d| (Encoding::Dict, d))
        }),
    ];
    if deltas {
        c.push(Box::new(move || {
            let mut d = Vec::new();
            let e = encoding::encode_str_id_deltas(values, &mut d);
            Some((e, d))
        }));
    }
    c
}

/// Compress the candidate encoding of a stream that compresses smallest.
///
/// From level [`TRIAL_FROM_LEVEL`] on, candidates are first ranked by
/// [`compress::trial_len`] (unless all are small, [`TRIAL_MIN_BYTES`]);
/// the ones within [`TRIAL_MARGIN_PERMILLE`] of the smallest are then
/// compressed at the real level and the smallest kept (the first on ties).
/// Candidates are made in order and only the finalists so far are held
/// (below the trial level, only the best compressed so far).
fn pack_best(role: Role, cands: Vec<MakeCand<'_>>, opts: &CompressOptions) -> Result<Packed> {
    let mut best: Option<Packed> = None;
    let mut consider = |p: Packed| {
        if best
            .as_ref()
            .is_none_or(|b| p.stored.len() < b.stored.len())
        {
            best = Some(p);
        }
    };
    if opts.level < TRIAL_FROM_LEVEL {
        for make in cands {
            if let Some((e, raw)) = make() {
                consider(pack(role, e, &raw, opts, None)?);
            }
        }
    } else {
        // (encoding, raw, trial size once ranked), in the candidates' order.
        let mut held: Vec<(Encoding, Vec<u8>, Option<usize>)> = Vec::new();
        let (mut made, mut big, mut min) = (0usize, false, usize::MAX);
        for make in cands {
            let Some((e, raw)) = make() else { continue };
            made += 1;
            big |= raw.len() > TRIAL_MIN_BYTES;
            held.push((e, raw, None));
            // One candidate alone is compressed without a trial.
            if big && made >= 2 {
                for h in held.iter_mut().filter(|h| h.2.is_none()) {
                    let t = compress::trial_len(&h.1)?;
                    min = min.min(t);
                    h.2 = Some(t);
                }
                let bound = min + min * TRIAL_MARGIN_PERMILLE / 1000;
                held.retain(|h| h.2.is_some_and(|t| t <= bound));
            }
        }
        for (e, raw, _) in held {
            consider(pack(role, e, &raw, opts, None)?);
        }
    }
    best.ok_or_else(|| Error::Invalid(format!("no encoding of a {role:?} stream")))
}

/// The sections of one node, compressed away from the writer (on any
/// thread); their indexes are local until [`Writer::emit`] places them.
struct Packs {
    opts: CompressOptions,
    out: Vec<Packed>,
}

impl Packs {
    fn new(opts: CompressOptions) -> Self {
        Packs {
            opts,
            out: Vec::new(),
        }
    }

    fn section(
        &mut self,
        role: Role,
        encoding: Encoding,
        raw: &[u8],
        dict: Option<&[u8]>,
    ) -> Result<u32> {
        self.out.push(pack(role, encoding, raw, &self.opts, dict)?);
        Ok((self.out.len() - 1) as u32)
    }

    fn section_best(&mut self, role: Role, cands: Vec<MakeCand<'_>>) -> Result<u32> {
        self.out.push(pack_best(role, cands, &self.opts)?);
        Ok((self.out.len() - 1) as u32)
    }
}

/// Writes sections and keeps the directory.
struct Writer<W> {
    out: W,
    pos: u64,
    opts: CompressOptions,
    sections: Vec<SectionEntry>,
    /// The format version written (1: framed sections).
    version: u16,
    /// [`BuildOptions::inline_max`] (used from version 3 on).
    inline_max: usize,
    /// Inline sections so far (version 3): entries (offsets into
    /// `inline_bytes`) and payloads. They are numbered after the file's
    /// sections once those are all written; until then [`Writer::emit_stream`]
    /// returns `INLINE_TAG | k` for the `k`-th.
    inline: Vec<SectionEntry>,
    inline_bytes: Vec<u8>,
}

/// Marks the provisional index of an inline section (see `Writer::inline`).
const INLINE_TAG: u32 = 1 << 31;

impl<W: Write> Writer<W> {
    fn new(out: W, build: &BuildOptions) -> Result<Self> {
        let (opts, version) = (build.compress, build.format_version);
        if !format::is_known_version(version) {
            return Err(Error::Invalid(format!(
                "format version {version}: this writer writes versions {} to {VERSION}",
                format::VERSION_1
            )));
        }
        Ok(Writer {
            out,
            pos: 0,
            opts,
            sections: Vec::new(),
            version,
            inline_max: build.inline_max,
            inline: Vec::new(),
            inline_bytes: Vec::new(),
        })
    }

    /// Write one node stream: inline (version 3 and later, small enough: see
    /// [`BuildOptions::inline_max`]), returning `INLINE_TAG | k`, or as
    /// [`Writer::emit`] does.
    fn emit_stream(&mut self, p: Packed) -> Result<u32> {
        let stored = match p.codec {
            // The magic is not stored from version 2 on.
            Codec::Zstd => p.stored.len().saturating_sub(format::ZSTD_MAGIC.len()),
            _ => p.stored.len(),
        };
        if self.version < format::VERSION_3
            || stored > self.inline_max
            || p.raw_len as usize > INLINE_RAW_MAX
            || p.role.stream_index().is_none()
        {
            return self.emit(p);
        }
        let raw = if p.codec == Codec::None {
            p.stored
        } else {
            compress::decompress(
                p.codec,
                &p.stored,
                p.raw_len as usize,
                None,
                "inline stream",
            )?
        };
        self.inline.push(SectionEntry {
            offset: self.inline_bytes.len() as u64,
            stored_len: p.raw_len,
            raw_len: p.raw_len,
            codec: Codec::None,
            encoding: p.encoding,
            role: p.role as u8,
            crc: 0,
            framed: false,
            inline: true,
        });
        self.inline_bytes.extend_from_slice(&raw);
        Ok(INLINE_TAG | (self.inline.len() - 1) as u32)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(|e| Error::io(None, e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Compress and write one section; returns its index.
    fn section(
        &mut self,
        role: Role,
        encoding: Encoding,
        raw: &[u8],
        dict: Option<&[u8]>,
    ) -> Result<u32> {
        let p = pack(role, encoding, raw, &self.opts, dict)?;
        self.emit(p)
    }

    /// Write one compressed section; returns its index. Version 2: the
    /// payload alone (a zstd frame without its magic); version 1: a frame,
    /// the payload and zero padding to 8.
    fn emit(&mut self, p: Packed) -> Result<u32> {
        let framed = self.version == format::VERSION_1;
        let stored = if !framed && p.codec == Codec::Zstd {
            format::section::strip_zstd_magic(p.stored)?
        } else {
            p.stored
        };
        let h = SectionHeader {
            codec: p.codec,
            encoding: p.encoding,
            role: p.role as u8,
            raw_len: p.raw_len,
            stored_len: stored.len() as u32,
            crc: format::crc32c(&stored),
        };
        let offset = self.pos;
        if framed {
            self.put(&h.to_bytes())?;
        }
        self.put(&stored)?;
        let e = SectionEntry {
            offset,
            stored_len: h.stored_len,
            raw_len: p.raw_len,
            codec: p.codec,
            encoding: p.encoding,
            role: p.role as u8,
            crc: h.crc,
            framed,
            inline: false,
        };
        let pad = e.end() - self.pos;
        self.put(&[0u8; 8][..pad as usize])?;
        self.sections.push(e);
        Ok((self.sections.len() - 1) as u32)
    }
}

/// Threads a build uses: `requested`, or every available core for 0.
pub fn effective_threads(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// `f` over every item on up to `threads` threads; the results in the
/// items' order (so whatever the thread count, the same results).
fn par_map<T: Sync, R: Send>(threads: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .expect("every item was mapped")
        })
        .collect()
}

/// `f` over every item on up to `threads` threads, `sink` given the results
/// of `items[lead..]` in the items' order as they come (on the calling
/// thread); the results of the first `lead` items are returned. A worker
/// waits before starting an item more than `window` places past the next
/// one to hand to `sink`, so that at most about `window` results are held
/// at once (issue 16: a build's node streams are not all held until the
/// last is compressed). The calls of `sink`, and so what it writes, are the
/// same whatever the thread count.
fn par_map_ordered<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    lead: usize,
    window: usize,
    f: impl Fn(&T) -> R + Sync,
    mut sink: impl FnMut(R) -> Result<()>,
) -> Result<Vec<R>> {
    use std::sync::{Condvar, Mutex, PoisonError};
    let threads = threads.min(items.len());
    let lead = lead.min(items.len());
    if threads <= 1 {
        let mut led = Vec::with_capacity(lead);
        for (k, it) in items.iter().enumerate() {
            let r = f(it);
            if k < lead {
                led.push(r);
            } else {
                sink(r)?;
            }
        }
        return Ok(led);
    }
    struct State<R> {
        done: Vec<Option<R>>,
        /// Items handed to `sink` (past `lead`).
        emitted: usize,
        stop: bool,
    }
    let st = Mutex::new(State {
        done: items.iter().map(|_| None).collect(),
        emitted: 0,
        stop: false,
    });
    let cv = Condvar::new();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let lock = || st.lock().unwrap_or_else(PoisonError::into_inner);
    let window = window.max(1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    {
                        let mut g = lock();
                        while !g.stop && i >= lead && i - lead >= g.emitted + window {
                            g = cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                        }
                        if g.stop {
                            break;
                        }
                    }
                    let r = f(item);
                    lock().done[i] = Some(r);
                    cv.notify_all();
                }
            });
        }
        let mut out = Ok(());
        for i in lead..items.len() {
            let r = {
                let mut g = lock();
                loop {
                    if let Some(r) = g.done[i].take() {
                        break r;
                    }
                    g = cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                }
            };
            out = sink(r);
            let mut g = lock();
            g.emitted = i + 1 - lead;
            g.stop = out.is_err();
            cv.notify_all();
            if g.stop {
                break;
            }
        }
        out
    })?;
    let mut g = st.into_inner().unwrap_or_else(PoisonError::into_inner);
    Ok(g.done[..lead]
        .iter_mut()
        .map(|r| r.take().expect("every leading item was mapped"))
        .collect())
}

/// Bytes shared by jobs that run at once: a job waits until its bytes
/// fit beside those of the jobs running, or until none runs (so a job
/// larger than the whole runs alone, and every job runs).
struct MemGate {
    cap: usize,
    used: std::sync::Mutex<usize>,
    cv: std::sync::Condvar,
}

/// Bytes held from a [`MemGate`] until dropped.
struct MemLease<'a> {
    gate: &'a MemGate,
    bytes: usize,
}

impl MemGate {
    fn new(cap: usize) -> Self {
        MemGate {
            cap,
            used: std::sync::Mutex::new(0),
            cv: std::sync::Condvar::new(),
        }
    }

    fn acquire(&self, bytes: usize) -> MemLease<'_> {
        // (At least 1: under a budget of nothing, one job at a time.)
        let bytes = bytes.clamp(1, self.cap.max(1));
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *used > 0 && *used + bytes > self.cap {
            used = self
                .cv
                .wait(used)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *used += bytes;
        MemLease { gate: self, bytes }
    }
}

impl Drop for MemLease<'_> {
    fn drop(&mut self) {
        let mut used = self
            .gate
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *used -= self.bytes;
        self.gate.cv.notify_all();
    }
}

/// About the most bytes the encoding of node `i` holds at once: its whole
/// column loaded and its parent's kinds; a source's dense string ids and
/// the sorted pairs of a mapping, or the candidate encodings of a stream
/// (with the trial of the next); zstd's tables at `level` (smaller for
/// small inputs).
fn node_mem_estimate(b: &ColumnsBuilder, i: usize, level: i32) -> usize {
    let n = &b.nodes[i];
    let c = |spilled: u64, held: usize| spilled as usize + held;
    let items = n.n_items() as usize;
    let (ints, uints, floats) = (
        c(n.spilled.ints, n.ints.len()),
        c(n.spilled.uints, n.uints.len()),
        c(n.spilled.floats, n.floats.len()),
    );
    let (strs, times, lens) = (
        n.n_strs() as usize,
        n.n_times() as usize,
        c(n.spilled.lens, n.lens.len()),
    );
    let domain = n.domain_len as usize;
    let column = 5 * items + 8 * (ints + uints + floats) + 4 * strs + 16 * times + 4 * lens;
    // Based candidates (4.9): a base's seconds or ids at every item, and
    // the deltas of the best two and the one being made, a few bytes each.
    let bases = if times > 0 {
        8 * domain + 15 * times
    } else {
        0
    } + if strs > 0 { 4 * domain + 15 * strs } else { 0 }
        + if ints > 0 && strs == 0 && times == 0 {
            16 * domain + 15 * ints
        } else {
            0
        };
    let work = 9 * domain + 16 * ints.max(strs) + 24 * times + bases;
    let zstd = if level >= TRIAL_FROM_LEVEL {
        96 << 20
    } else if level >= 10 {
        32 << 20
    } else {
        4 << 20
    };
    column
        .saturating_add(work)
        .saturating_add(zstd.min(8 * items.max(domain)))
}

/// Of the strings of a column under an array, the share that must be
/// distinct (estimated) for [`BuildOptions::nested_text_min_avg`] to move
/// it to the long-text table: categorical values (labels, states, authors'
/// URLs) stay sorted, where filters and facets find them without decoding
/// the long text. And at least [`NESTED_TEXT_MIN_STRINGS`] distinct
/// strings: in a few rows nearly every value is distinct, categorical or
/// not (an assignee's URL in 40 rows), and a few strings cost little in
/// either table.
const NESTED_TEXT_MIN_DISTINCT: (u64, u64) = (3, 10);
/// See [`NESTED_TEXT_MIN_DISTINCT`].
const NESTED_TEXT_MIN_STRINGS: u64 = 64;

/// Decide which table each string node uses: 0 = short strings, 1 = long
/// text (SPEC.md 7.5).
fn assign_tables(b: &ColumnsBuilder, opts: &BuildOptions) -> Vec<u32> {
    let nested = opts.nested_text_min_avg > 0 && opts.row_ordered_long_text();
    b.nodes
        .iter()
        .map(|n| {
            let strs = n.n_strs();
            if strs == 0 || opts.long_text_min_avg == 0 {
                return 0;
            }
            let avg = n.str_bytes / strs;
            if avg > opts.long_text_min_avg as u64 {
                return 1;
            }
            let (num, den) = NESTED_TEXT_MIN_DISTINCT;
            let distinct = n.str_sketch.as_ref().map_or(0, |s| s.estimate());
            if nested
                && n.in_array
                && avg > opts.nested_text_min_avg as u64
                && distinct >= NESTED_TEXT_MIN_STRINGS
                && distinct.saturating_mul(den) >= strs.saturating_mul(num)
            {
                return 1;
            }
            0
        })
        .collect()
}

/// The chains of `mapped` and `based` streams of a snapshot being written,
/// node by node in file order, kept within what readers follow
/// ([`crate::read::MAX_MAPPED_CHAIN`] links). Each node's sources are
/// chosen apart (in parallel, by compressed size), so a chain is only known
/// as its nodes are written; a node that would lengthen one past the bound
/// is encoded without sources instead, before it is written. Chains are
/// counted with the nodes not yet written as ends (none of their sources
/// known), so every chain stays within the bound as it grows from both
/// ends: columns that each refine the one before, ninety deep, are written
/// readable; real exports never come near it.
struct SourceChains {
    /// The sources of each written node.
    sources: Vec<Vec<u32>>,
    /// The written nodes with a stream on each node.
    users: Vec<Vec<u32>>,
}

/// Links of the longest chain from `n` along `links` (each node's
/// neighbours one way: its sources, or its users).
fn longest_chain(links: &[Vec<u32>], n: u32, memo: &mut HashMap<u32, usize>) -> usize {
    if let Some(&d) = memo.get(&n) {
        return d;
    }
    let d = links[n as usize]
        .iter()
        .map(|&m| longest_chain(links, m, memo) + 1)
        .max()
        .unwrap_or(0);
    memo.insert(n, d);
    d
}

impl SourceChains {
    fn new(nodes: usize) -> Self {
        SourceChains {
            sources: vec![Vec::new(); nodes],
            users: vec![Vec::new(); nodes],
        }
    }

    /// Record node `n`, about to be written, with streams on `sources`;
    /// false (nothing recorded) when a chain through it would be too long.
    fn add(&mut self, n: usize, sources: &[u32]) -> bool {
        if sources.is_empty() {
            return true;
        }
        // Above it: its users, theirs...; below: its sources, theirs...
        let up = longest_chain(&self.users, n as u32, &mut HashMap::new());
        let mut memo = HashMap::new();
        let down = sources
            .iter()
            .map(|&s| longest_chain(&self.sources, s, &mut memo) + 1)
            .max()
            .unwrap_or(0);
        if up + down > crate::read::MAX_MAPPED_CHAIN {
            return false;
        }
        for &s in sources {
            self.users[s as usize].push(n as u32);
        }
        self.sources[n] = sources.to_vec();
        true
    }
}

fn write_snapshot<W: Write>(
    b: &mut ColumnsBuilder,
    w: &mut Writer<W>,
    opts: &BuildOptions,
) -> Result<(usize, u64)> {
    // Version 5 is version 4 plus `NumText` items: without them, version
    // 4's bytes, which readers of version 4 read.
    if w.version >= format::VERSION_5 && b.nodes.iter().all(|n| n.num_texts.is_empty()) {
        w.version = format::VERSION_4;
    }
    w.put(&Header { version: w.version }.to_bytes())?;
    // Tables: collect each table's strings, sort, and remap provisional ids.
    let table_of = assign_tables(b, opts);
    let n_tables = if table_of.contains(&1) { 2 } else { 1 };
    let mut used: Vec<IdSet> = (0..n_tables).map(|_| IdSet::new(b.strings.ids())).collect();
    for (i, &t) in table_of.iter().enumerate() {
        let set = &mut used[t as usize];
        b.visit_strs(i, |ids| ids.iter().for_each(|&id| set.insert(id)))?;
    }
    memtrace::mark("used-id sets");
    // In memory, or merged from the spilled runs: the same tables.
    let row_order = [false, opts.row_ordered_long_text()];
    let (sorted, maps) = b.strings.sort_tables(&used, &row_order, b.max_strings())?;
    drop(used);
    memtrace::mark("string tables sorted");
    b.remap_all(&table_of, &maps)?;
    drop(maps);
    memtrace::mark("ids remapped");

    // Node streams.
    let mut metas: Vec<NodeMeta> = Vec::with_capacity(b.nodes.len());
    // The domain of each node: the nearest root or array-element ancestor.
    let mut domains: Vec<u32> = Vec::with_capacity(b.nodes.len());
    for (i, n) in b.nodes.iter().enumerate() {
        let d = match n.name {
            Some(NodeName::Key(_)) if i > 0 && (n.parent as usize) < i => {
                domains[n.parent as usize]
            }
            _ => i as u32,
        };
        domains.push(d);
    }
    let threads = effective_threads(opts.threads);
    let b: &ColumnsBuilder = b;
    let all: Vec<usize> = (0..b.nodes.len()).collect();
    let distinct_ids = par_map(threads, &all, |&i| -> Result<usize> {
        distinct_strs(b, i, sorted[table_of[i] as usize].len)
    })
    .into_iter()
    .collect::<Result<Vec<usize>>>()?;
    memtrace::mark("distinct ids");
    let sketches = if opts.based_streams {
        par_map(threads, &all, |&i| int_sketch(b, i))
            .into_iter()
            .collect::<Result<Vec<_>>>()?
    } else {
        vec![Vec::new(); b.nodes.len()]
    };
    memtrace::mark("integer sketches");
    let policy_of = |t: usize| {
        let long = t == 1;
        TablePolicy {
            chunk_size: if long {
                opts.long_chunk_size
            } else {
                opts.chunk_size
            }
            .max(1),
            front_coding: !long && opts.front_coding,
        }
    };
    // Every node's streams are encoded and compressed apart (in parallel),
    // then written in node order; the string tables' dictionaries are
    // trained meanwhile (the lead jobs, first so that they start at once).
    enum Job {
        Long,
        Short,
        Node(usize),
    }
    let mut jobs: Vec<Job> = Vec::with_capacity(b.nodes.len() + 2);
    if n_tables > 1 {
        jobs.push(Job::Long);
    }
    jobs.push(Job::Short);
    let lead = jobs.len();
    jobs.extend((0..b.nodes.len()).map(Job::Node));
    enum Done {
        Dict(LongPlan),
        Short(ShortPlan),
        Node(Box<Result<(NodeMeta, Vec<Packed>)>>),
    }
    // Nodes are encoded in parallel while their estimated peaks fit a
    // quarter of the memory budget together; a node whose estimate alone
    // exceeds it is encoded with no other beside it (issue 16).
    let gate = MemGate::new(if opts.memory == 0 {
        usize::MAX
    } else {
        opts.memory / 4
    });
    // Node `i`'s sections (with `sources`: its streams may be mapped or
    // based on other nodes').
    let encode_node = |i: usize, sources: bool| -> Result<(NodeMeta, Vec<Packed>)> {
        let _lease = gate.acquire(node_mem_estimate(b, i, opts.compress.level));
        // A spilled node is read back whole, one node per thread.
        let n = b.load(i, Fields::ALL)?;
        let ints = Distinct::of(n.ints.iter().copied());
        // Its parent's kinds mask its own when they have the same domain
        // (and it stores kinds: it has more than one).
        let parent = match n.name {
            Some(NodeName::Key(_))
                if i > 0
                    && b.nodes[n.parent as usize].domain_len == n.domain_len
                    && stores_kinds(&kind_counts(&n)) =>
            {
                Some(b.load(n.parent as usize, Fields::ITEMS)?)
            }
            _ => None,
        };
        let maps = if sources {
            [
                mapping_for(b, &n, i, Kind::Int, &distinct_ids, ints.n, &domains)?,
                mapping_for(b, &n, i, Kind::Str, &distinct_ids, ints.n, &domains)?,
                based_times(b, &n, i, &domains, opts)?,
                based_strs(b, &n, i, &domains, &distinct_ids, &table_of, opts)?,
                based_ints(b, &n, i, &domains, &sketches)?,
            ]
        } else {
            Default::default()
        };
        let mut packs = Packs::new(opts.compress);
        let meta = write_node(
            &mut packs,
            &n,
            parent.as_deref(),
            maps,
            i,
            StrsOf {
                table: table_of[i],
                distinct: distinct_ids[i],
                deltas: opts.delta_string_ids,
            },
            &ints,
        )?;
        memtrace::mark_detail(|| format!("node {i} {} ({} items)", b.path(i as u32), n.n_items()));
        Ok((meta, packs.out))
    };
    let mut chains = SourceChains::new(b.nodes.len());
    // Node results are written in node order as they come: at most a few
    // nodes' compressed streams are held at once.
    let mut emit_node = |d: Result<Done>| -> Result<()> {
        let Done::Node(r) = d? else {
            unreachable!("only the first job trains the dictionary")
        };
        let (mut meta, mut packs) = (*r)?;
        let i = metas.len();
        let sources: Vec<u32> = packs.iter().filter_map(|p| p.source).collect();
        if !chains.add(i, &sources) {
            // A chain of mapped and based streams through this node would
            // be longer than readers follow: it is encoded on its own.
            (meta, packs) = encode_node(i, false)?;
            chains.add(i, &[]);
        }
        let mut at = Vec::with_capacity(packs.len());
        for p in packs {
            at.push(w.emit_stream(p)?);
        }
        for s in meta.streams.iter_mut().flatten() {
            *s = at[*s as usize];
        }
        metas.push(meta);
        Ok(())
    };
    let led = par_map_ordered(
        threads,
        &jobs,
        lead,
        2 * threads,
        |job| -> Result<Done> {
            Ok(match *job {
                Job::Long => Done::Dict(plan_long(&b.strings, &sorted[1], opts)?),
                Job::Short => Done::Short(plan_short(&b.strings, &sorted[0], opts)?),
                Job::Node(i) => Done::Node(Box::new(encode_node(i, true))),
            })
        },
        &mut emit_node,
    )?;
    memtrace::mark("node streams encoded");
    let mut long_plan = None;
    let mut short_plan = None;
    for d in led {
        match d? {
            Done::Dict(d) => long_plan = Some(d),
            Done::Short(d) => short_plan = Some(d),
            Done::Node(_) => {}
        }
    }
    memtrace::mark("node streams written");
    // String tables.
    let mut tables = Vec::new();
    let mut total_strings = 0u64;
    for (t, table) in sorted.iter().enumerate() {
        let long = t == 1;
        let ppmd = long && opts.ppmd_long_text(table.text_bytes);
        let mut policy = policy_of(t);
        // Long text spread over several chunks shares one trained zstd
        // dictionary (SPEC.md section 7: it wins from 4 chunks on); its
        // chunks are cut to fit the fetch bound (`long_chunk_fetch`).
        let plan = if long { long_plan.take() } else { None };
        let mut one_chunk = false;
        let short_dict = match short_plan.take() {
            Some(p) if !long => {
                policy.chunk_size = p.chunk_size;
                one_chunk = p.one_chunk;
                p.dict
            }
            _ => None,
        };
        let mut first_group = 1;
        let mut packed_dict = None;
        let (dict, fill) = match plan {
            Some(plan) => {
                // Below the trial level the level-3 predictions cost too
                // much next to the compression itself (--fast: +33% CPU
                // for -0.4% on jira): planned chunks are kept.
                let fills = !ppmd && long_opts(opts, table.text_bytes).level >= TRIAL_FROM_LEVEL;
                policy.chunk_size = plan.run_size(opts.long_chunk_size.max(1), fills);
                let fill = FillPlan {
                    fills,
                    cap: plan.cap,
                    ratio: plan.ratio,
                    scale: plan.scale,
                    max_raw: opts.long_chunk_size.max(1),
                    first_group: 1,
                };
                first_group = if plan.measured { FILL_GROUP } else { 1 };
                packed_dict = plan.packed_dict;
                (plan.dict, fill)
            }
            None => (
                short_dict,
                FillPlan {
                    fills: false,
                    cap: usize::MAX,
                    ratio: (1, 1),
                    scale: (1, 1),
                    max_raw: usize::MAX,
                    first_group: 1,
                },
            ),
        };
        // The long-text table's index is rebuilt from its final chunks (a
        // chunk may be split); table 0's is the chunk builder's.
        let mut long_index = (Vec::new(), None);
        let dict_section = match (&dict, packed_dict) {
            (Some(d), Some(c)) => Some(w.emit(packed(Role::StrDict, Encoding::Raw, d, c)?)?),
            (Some(d), None) => Some(w.section(Role::StrDict, Encoding::Raw, d, None)?),
            (None, _) => None,
        };
        let first_chunk = w.sections.len() as u32;
        let copts = match long {
            true if ppmd => CompressOptions {
                choice: compress::CodecChoice::Force(Codec::Ppmd),
                ..w.opts
            },
            true => long_opts(opts, table.text_bytes),
            // A short-string table of one chunk (a small export) also tries
            // PPMd where long text may use it: decoding at most 64 KiB
            // costs a reader a few milliseconds, once (SPEC.md 3).
            false
                if one_chunk
                    && dict.is_none()
                    && opts.ppmd_long_text(0)
                    && w.version >= format::VERSION_2 =>
            {
                CompressOptions {
                    choice: compress::CodecChoice::AutoPpmd,
                    ..w.opts
                }
            }
            false => w.opts,
        };
        // Prepared once: loading the dictionary costs about as much as
        // compressing its size (issue #16).
        let prepared = dict
            .as_deref()
            .map(|d| compress::EncoderDict::new(d, copts.level));
        // Chunks are compressed in batches (in parallel) as the table is
        // chunked: only one batch of raw chunks is held at a time.
        let mut counts = Vec::new();
        let mut batch: Vec<(Vec<u8>, u32, usize)> = Vec::new();
        let mut batch_bytes = 0usize;
        // A long-text table's runs are large: a batch holds one per thread
        // (within a quarter of the memory budget) so that they are cut in
        // parallel.
        let budget = if opts.memory == 0 {
            usize::MAX
        } else {
            opts.memory / 4
        };
        // A PPMd chunk's model (24 times its raw bytes) is allocated while
        // it compresses: as many at once as that share of the budget
        // holds, at least one (the output does not depend on it).
        let threads = if long && ppmd {
            let each = (compress::ppmd_mem_for(policy.chunk_size) as usize)
                .saturating_add(policy.chunk_size.saturating_mul(2));
            threads.min(budget / each.max(1)).max(1)
        } else {
            threads
        };
        let batch_limit = if long {
            policy
                .chunk_size
                .saturating_mul(threads)
                .min(budget)
                .max(CHUNK_BATCH_BYTES)
        } else {
            CHUNK_BATCH_BYTES
        };
        // What compressing one run of long text in PPMd may hold: its
        // model (a run of one string longer than a chunk gets a larger
        // one), the run and its output.
        let run_memory = |len: usize| -> usize {
            if long && ppmd {
                (compress::ppmd_mem_for(len) as usize).saturating_add(len.saturating_mul(2))
            } else {
                0
            }
        };
        let mut flush = |w: &mut Writer<W>, batch: &mut Vec<(Vec<u8>, u32, usize)>| -> Result<()> {
            // Runs are compressed together only while their memory fits
            // the share of the budget (one at least): a batch of strings
            // of 30 MB each held two 256 MiB models at once.
            let mut start = 0;
            while start < batch.len() {
                let mut end = start + 1;
                let mut held = run_memory(batch[start].0.len());
                while end < batch.len() {
                    let more = run_memory(batch[end].0.len());
                    if held.saturating_add(more) > budget {
                        break;
                    }
                    held += more;
                    end += 1;
                }
                let group = &batch[start..end];
                // Threads left over by the group's runs cut within a run.
                let inner = (threads / group.len()).max(1);
                let packs = par_map(threads, group, |(c, n, g)| {
                    let fill = FillPlan {
                        first_group: *g,
                        ..fill
                    };
                    pack_fill(c, *n, &fill, &copts, prepared.as_ref(), inner)
                });
                for (p, (c, _, _)) in packs.into_iter().zip(group) {
                    for (p, n, r) in p? {
                        if long {
                            push_separator(&mut long_index.0, &mut long_index.1, &c[r]);
                        }
                        counts.push(n);
                        w.emit(p)?;
                    }
                }
                start = end;
            }
            batch.clear();
            Ok(())
        };
        let mut cb = ChunkBuilder::new(policy);
        let mut chunk = |w: &mut Writer<W>, c: Vec<u8>, n: u32| -> Result<()> {
            batch_bytes += c.len();
            // The table's first run starts with a group when its first
            // chunk was measured.
            batch.push((c, n, std::mem::replace(&mut first_group, 1)));
            if batch_bytes >= batch_limit || batch.len() >= CHUNK_BATCH_COUNT * threads {
                flush(w, &mut batch)?;
                batch_bytes = 0;
            }
            Ok(())
        };
        b.strings.visit(table, |_, s| {
            if let Some((c, n)) = cb.push(s) {
                chunk(w, c, n)?;
            }
            Ok(())
        })?;
        if let Some((c, n)) = cb.finish() {
            chunk(w, c, n)?;
        }
        flush(w, &mut batch)?;
        let n_chunks = counts.len();
        let index = if long { &long_index.0 } else { &cb.index };
        let rows_order = long && opts.row_ordered_long_text();
        let index_section = if n_chunks > 1 && !rows_order {
            Some(w.section(Role::StrIndex, Encoding::Raw, index, None)?)
        } else {
            None
        };
        let mut flags = 0;
        if long {
            flags |= TABLE_LONG_TEXT;
        }
        if rows_order {
            flags |= TABLE_ROW_ORDER;
        }
        if policy.front_coding {
            flags |= TABLE_FRONT_CODED;
        }
        total_strings += table.len as u64;
        tables.push(TableMeta {
            flags,
            n_strings: table.len as u64,
            first_chunk: if n_chunks == 0 { 0 } else { first_chunk },
            chunk_counts: counts,
            index_section,
            dict_section,
        });
        memtrace::mark(if long {
            "long-text table"
        } else {
            "string table"
        });
    }

    // The inline sections follow the others (version 3), from version 4
    // grouped by role and encoding (in node order within a group), so that
    // like payloads sit together for the footer's compression.
    let n_file = w.sections.len() as u32;
    let mut at: Vec<u32> = (0..w.inline.len() as u32).collect();
    if w.version >= format::VERSION_4 {
        let mut order = at.clone();
        order.sort_by_key(|&k| {
            let e = &w.inline[k as usize];
            (e.role, e.encoding as u8)
        });
        let (mut entries, mut bytes) = (Vec::with_capacity(order.len()), Vec::new());
        for (pos, &k) in order.iter().enumerate() {
            at[k as usize] = pos as u32;
            let mut e = w.inline[k as usize];
            let a = e.offset as usize;
            e.offset = bytes.len() as u64;
            bytes.extend_from_slice(&w.inline_bytes[a..a + e.stored_len as usize]);
            entries.push(e);
        }
        w.inline = entries;
        w.inline_bytes = bytes;
    }
    for m in &mut metas {
        for s in m.streams.iter_mut().flatten() {
            if *s & INLINE_TAG != 0 {
                *s = n_file + at[(*s & !INLINE_TAG) as usize];
            }
        }
    }
    let mut sections = std::mem::take(&mut w.sections);
    sections.append(&mut w.inline);
    let footer = Footer {
        rows: b.rows,
        sections,
        tables,
        nodes: metas,
        inline: std::mem::take(&mut w.inline_bytes),
    };
    let raw = footer.to_bytes(w.version);
    // Readers take a footer of at most 1 GiB (SPEC.md 10.1).
    let raw_len = u32::try_from(raw.len())
        .ok()
        .filter(|&n| u64::from(n) <= compress::SECTION_RAW_LIMIT)
        .ok_or(Error::Limit {
            what: "footer bytes",
            got: raw.len() as u64,
            max: compress::SECTION_RAW_LIMIT,
        })?;
    let fopts = CompressOptions {
        choice: compress::CodecChoice::Force(Codec::Zstd),
        level: 19,
    };
    let (codec, mut stored) = compress::compress_at_level(&raw, &fopts)?;
    if codec == Codec::Zstd && w.version != format::VERSION_1 {
        stored = format::section::strip_zstd_magic(stored)?;
    }
    let footer_offset = w.pos;
    w.put(&stored)?;
    let t = Trailer {
        footer_offset,
        footer_stored_len: stored.len() as u32,
        footer_raw_len: raw_len,
        footer_crc: format::crc32c(&stored),
        footer_codec: codec,
        version: w.version,
    };
    w.put(&t.to_bytes())?;
    w.out.flush().map_err(|e| Error::io(None, e))?;
    memtrace::mark("footer");
    Ok((b.nodes.len() - 1, total_strings))
}

fn min_max<T: Copy + PartialOrd>(v: &[T]) -> Option<(T, T)> {
    min_max_of(v.iter().copied())
}

fn min_max_of<T: Copy + PartialOrd>(mut it: impl Iterator<Item = T>) -> Option<(T, T)> {
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), x| {
        (if x < lo { x } else { lo }, if x > hi { x } else { hi })
    }))
}

fn distinct<T: Ord + Copy>(v: impl Iterator<Item = T>) -> u64 {
    let mut v: Vec<T> = v.collect();
    v.sort_unstable();
    v.dedup();
    v.len() as u64
}

/// Distinct (final) string ids of node `i`, whose table holds `table_len`
/// strings: read a piece at a time, counted by sorting when there are few
/// and in a bitmap of the table's ids when there are many (issue 16: not a
/// copy of a whole column of ids per thread).
fn distinct_strs(b: &ColumnsBuilder, i: usize, table_len: usize) -> Result<usize> {
    let n = b.nodes[i].n_strs();
    if n == 0 {
        return Ok(0);
    }
    if n.saturating_mul(32) <= table_len as u64 + (1 << 16) {
        let mut v = Vec::with_capacity(n as usize);
        b.visit_strs(i, |ids| v.extend_from_slice(ids))?;
        return Ok(distinct(v.into_iter()) as usize);
    }
    let mut bits = vec![0u64; table_len.div_ceil(64)];
    let mut past = false;
    b.visit_strs(i, |ids| {
        for &id in ids {
            match bits.get_mut(id as usize / 64) {
                Some(w) => *w |= 1 << (id % 64),
                None => past = true,
            }
        }
    })?;
    if past {
        return Err(Error::Invalid(format!(
            "a string id of column {} is past its table",
            b.path(i as u32)
        )));
    }
    Ok(bits.iter().map(|w| w.count_ones() as usize).sum())
}

/// Mapped candidates of a stream compared by compressed size.
const MAP_KEEP: usize = 4;

/// Most source nodes tried as the key of a mapped stream.
const MAP_CANDIDATES: usize = 32;

/// `(item index, value)` of every item of `n` of kind `kind` (Int or Str,
/// a string as its id).
fn kind_values(n: &NodeBuf, kind: Kind) -> impl Iterator<Item = (u32, i64)> + Clone + '_ {
    let mut ints = n.ints.iter();
    let mut strs = n.strs.iter();
    n.idx.iter().zip(&n.kinds).filter_map(move |(ix, &k)| {
        if k == Kind::Int as u8 {
            ints.next().map(|&v| (ix, v))
        } else if k == Kind::Str as u8 {
            strs.next().map(|&v| (ix, v as i64))
        } else {
            None
        }
        .filter(|_| k == kind as u8)
    })
}

/// Mapped encodings of node `i`'s payloads of kind `kind` (Int or Str) as a
/// function of the string ids of another node of the same domain.
/// `n` is node `i` loaded whole, with `int_distinct` distinct integers;
/// the sources are loaded one at a time, and
/// only the [`MAP_KEEP`] best mappings so far are kept, encoded (issue 16:
/// the one-to-one mappings of a million URLs are some 12 MB each).
fn mapping_for(
    b: &ColumnsBuilder,
    n: &NodeBuf,
    i: usize,
    kind: Kind,
    distinct_ids: &[usize],
    int_distinct: usize,
    domains: &[u32],
) -> Result<Vec<Vec<u8>>> {
    if i == 0 || !matches!(n.name, Some(NodeName::Key(_))) {
        return Ok(Vec::new());
    }
    let count = match kind {
        Kind::Int => n.ints.len(),
        Kind::Str => n.strs.len(),
        _ => return Ok(Vec::new()),
    };
    if count < 16 {
        return Ok(Vec::new());
    }
    let values = kind_values(n, kind);
    // The best mappings so far, by (keys, not a sibling, distance) and
    // then the order found: what sorting every mapping found (stably)
    // and keeping the first MAP_KEEP gives.
    let mut best: Vec<((usize, bool, usize), Vec<u8>)> = Vec::new();
    // Sources: string siblings that rank before this node by (more distinct
    // ids, then lower index). The ranking is a strict order, so the graph of
    // mappings is acyclic; a functional dependency needs a source with at
    // least as many distinct values anyway. Fewest keys first.
    let rank = |c: usize| (std::cmp::Reverse(distinct_ids[c]), c);
    // A function of the source has at most as many distinct values (for
    // string ids, those counted before).
    let own_distinct = match kind {
        Kind::Str => distinct_ids[i],
        _ => int_distinct,
    };
    // A node with strings ranks its int stream's sources too: every
    // stream of a node with strings then maps from (or is based on, 4.9)
    // nodes ranked before it, and no cycle can close through its ints.
    let own = if kind == Kind::Str || n.n_strs() > 0 {
        Some(rank(i))
    } else {
        None
    };
    let mut siblings: Vec<u32> = (0..b.nodes.len() as u32)
        .filter(|&c| {
            c as usize != i
                && domains[c as usize] == domains[i]
                && distinct_ids[c as usize] >= own_distinct.max(1)
                && own.is_none_or(|o| rank(c as usize) < o)
        })
        .collect();
    siblings.sort_by_key(|&c| (distinct_ids[c as usize], (c as usize).abs_diff(i)));
    siblings.truncate(MAP_CANDIDATES);
    for c in siblings {
        if b.nodes[c as usize].domain_len != n.domain_len {
            continue;
        }
        // The source's ids, dense, read a segment at a time.
        let keys = b.dense_str_ids(c as usize)?;
        if values.clone().any(|(ix, _)| keys[ix as usize] == u32::MAX) {
            continue;
        }
        let Some(m) =
            encoding::mapped::build_packed(c, values.clone().map(|(ix, v)| (keys[ix as usize], v)))
        else {
            continue;
        };
        drop(keys);
        // Even a one-to-one mapping can win: the ids of `events_url` in
        // the order of `url`'s ids advance in near-constant steps.
        // The few with the fewest keys, siblings and then the nearest
        // first on ties; the writer keeps whichever compresses smallest.
        let sibling = b.nodes[m.source as usize].parent == n.parent;
        let key = (m.keys.len(), !sibling, (m.source as usize).abs_diff(i));
        let at = best.partition_point(|(k, _)| *k <= key);
        if at >= MAP_KEEP {
            continue;
        }
        let mut out = Vec::new();
        encoding::mapped::encode(&m, &mut out);
        drop(m);
        best.insert(at, (key, out));
        best.truncate(MAP_KEEP);
    }
    Ok(best.into_iter().map(|(_, e)| e).collect())
}

/// Most bases of a `based` ts-secs stream compared by compressed size (the
/// ones whose differences take the fewest varint bytes)...
const BASE_KEEP: usize = 2;
/// ...among at most this many nodes tried (the nearest by index).
const BASE_CANDIDATES: usize = 8;

/// A node with this many possible bases in its domain is never based, so a
/// chain of based streams stays well under the readers' bound
/// ([`crate::read::MAX_MAPPED_CHAIN`]).
const BASE_MAX_BELOW: usize = 32;

/// `based` encodings of node `i`'s timestamp seconds (SPEC.md 4.9): their
/// differences from the seconds of another node of the same domain that
/// has a timestamp at every item where `n` has one. A base ranks before
/// the node by (more timestamps, then lower index), a strict order, so
/// based streams form no cycle (`closed_at` on `updated_at`, `updated_at`
/// on `created_at`). `n` is node `i` loaded whole; each base is read a
/// segment at a time.
fn based_times(
    b: &ColumnsBuilder,
    n: &NodeBuf,
    i: usize,
    domains: &[u32],
    opts: &BuildOptions,
) -> Result<Vec<Vec<u8>>> {
    // Only columns without ints or strings take part (as the node or its
    // base): they have no mapped or string-id stream, so these streams,
    // ranked by timestamps, never close a cycle with those ranked by
    // distinct strings.
    let timely = |c: &NodeBuf| c.n_strs() == 0 && c.spilled.ints == 0 && c.ints.is_empty();
    if !opts.based_streams || i == 0 || n.times.len() < 16 || !timely(n) {
        return Ok(Vec::new());
    }
    let rank = |c: usize| (std::cmp::Reverse(b.nodes[c].n_times()), c);
    let mut below: Vec<usize> = (1..b.nodes.len())
        .filter(|&c| {
            c != i
                && domains[c] == domains[i]
                && b.nodes[c].domain_len == n.domain_len
                && b.nodes[c].n_times() > 0
                && timely(&b.nodes[c])
                && rank(c) < rank(i)
        })
        .collect();
    if below.len() >= BASE_MAX_BELOW {
        return Ok(Vec::new());
    }
    below.sort_by_key(|&c| (c.abs_diff(i), c));
    below.truncate(BASE_CANDIDATES);
    let values = || {
        n.idx
            .iter()
            .zip(&n.kinds)
            .filter(|(_, k)| **k == Kind::Time as u8)
            .zip(&n.times)
            .map(|((ix, _), t)| (ix, t.secs))
    };
    let mut best = BestBases::default();
    for c in below {
        let base = b.dense_secs(c)?;
        best.offer(
            c,
            values().map(|(ix, v)| {
                let at = *base.get(ix as usize)?;
                (at != i64::MIN).then(|| v.checked_sub(at)).flatten()
            }),
        );
    }
    Ok(best.into_encoded())
}

/// `based` encodings of node `i`'s string ids (SPEC.md 4.9): their
/// differences from the ids of another string node of the same table and
/// domain that has a string at every item where `n` has one: zero where
/// both hold the same string (a comment's `updateAuthor.name` and its
/// `author.name`, a `_links` URL and the same URL at the top). A base
/// ranks before the node as a mapped stream's source does (more distinct
/// ids, then lower index, SPEC.md 4.7), so string-id streams of both kinds
/// form no cycle; tried: the [`BASE_CANDIDATES`] nodes of the nearest
/// distinct counts (equal strings need about as many), then the highest
/// ranked.
#[allow(clippy::too_many_arguments)]
fn based_strs(
    b: &ColumnsBuilder,
    n: &NodeBuf,
    i: usize,
    domains: &[u32],
    distinct_ids: &[usize],
    table_of: &[u32],
    opts: &BuildOptions,
) -> Result<Vec<Vec<u8>>> {
    if !opts.based_streams || i == 0 || n.strs.len() < 16 {
        return Ok(Vec::new());
    }
    let rank = |c: usize| (std::cmp::Reverse(distinct_ids[c]), c);
    let mut below: Vec<usize> = (1..b.nodes.len())
        .filter(|&c| {
            c != i
                && domains[c] == domains[i]
                && table_of[c] == table_of[i]
                && b.nodes[c].domain_len == n.domain_len
                && b.nodes[c].n_strs() >= n.strs.len() as u64
                && rank(c) < rank(i)
        })
        .collect();
    // Nearest distinct counts first, then the highest ranked: of equally
    // good bases the first offered is kept, so a family of columns (the
    // URLs of a user) leans on its top column rather than each on the one
    // before it: a reader of one decodes one more column, not a chain.
    below.sort_by_key(|&c| (distinct_ids[c].abs_diff(distinct_ids[i]), rank(c)));
    below.truncate(BASE_CANDIDATES);
    let mut best = BestBases::default();
    for c in below {
        let ids = b.dense_str_ids(c)?;
        best.offer(
            c,
            kind_values(n, Kind::Str).map(|(ix, v)| {
                let at = *ids.get(ix as usize)?;
                (at != u32::MAX).then(|| v - at as i64)
            }),
        );
    }
    Ok(best.into_encoded())
}

/// Items of a column of integers sampled to rank its possible bases
/// ([`based_ints`]).
const INT_SKETCH: usize = 64;

/// Whether node `n` may take part in a `based` ints stream (as the node or
/// its base): it has no strings or timestamps, so it has no string-id or
/// ts-secs stream, and no other stream names it as a source (string-id
/// streams and the ints of nodes with strings name string nodes; ts-secs
/// streams name nodes without ints). Ranked by integers among themselves,
/// such streams close no cycle with the others.
fn inty(n: &NodeBuf) -> bool {
    n.n_strs() == 0 && n.n_times() == 0
}

/// The integers (or `None`) at [`INT_SKETCH`] items spread over node `i`'s
/// domain, for a node that may be based ([`inty`], with 16 integers or
/// more); empty for any other node.
fn int_sketch(b: &ColumnsBuilder, i: usize) -> Result<Vec<Option<i64>>> {
    let n = &b.nodes[i];
    if i == 0 || !inty(n) || n.n_ints() < 16 {
        return Ok(Vec::new());
    }
    // The sampled items alone (the whole column was 16 bytes an item:
    // 128 MB a thread for 8M rows, for 64 values).
    let len = n.domain_len as usize;
    let k = INT_SKETCH.min(len);
    let at: Vec<u32> = (0..k).map(|j| (j * len / k) as u32).collect();
    b.ints_at(i, Some(&at))
}

/// Varint bytes of `v` zigzagged.
fn zigzag_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (z | 1).leading_zeros() as usize).div_ceil(7)
}

/// `based` encodings of node `i`'s integers (SPEC.md 4.9): their
/// differences from the integers of another node of the same domain that
/// has an integer at every item where `n` has one (`forks` and
/// `forks_count`, a repository owner's id and the pull request author's).
/// Both are [`inty`]; a base ranks before the node by (more integers, then
/// lower index), a strict order, so based streams form no cycle. Of the
/// nodes whose sampled items ([`int_sketch`]) are all integers where the
/// node's are, and whose differences there take fewer varint bytes than
/// the node's own values, the [`BASE_CANDIDATES`] with the most close
/// samples are tried, then [`BASE_KEEP`] compared by compressed size, and
/// only if their differences take fewer varint bytes than the node's own
/// values (or their steps) do.
fn based_ints(
    b: &ColumnsBuilder,
    n: &NodeBuf,
    i: usize,
    domains: &[u32],
    sketches: &[Vec<Option<i64>>],
) -> Result<Vec<Vec<u8>>> {
    let mine = &sketches[i];
    if mine.is_empty() || n.ints.len() < 16 {
        return Ok(Vec::new());
    }
    let rank = |c: usize| (std::cmp::Reverse(b.nodes[c].n_ints()), c);
    let own: usize = mine.iter().flatten().map(|&v| zigzag_len(v)).sum();
    let mut below: Vec<(usize, usize)> = (1..b.nodes.len())
        .filter(|&c| {
            c != i
                && domains[c] == domains[i]
                && b.nodes[c].domain_len == n.domain_len
                && sketches[c].len() == mine.len()
                && rank(c) < rank(i)
        })
        .filter_map(|c| {
            let (mut close, mut cost) = (0, 0);
            for (a, t) in mine.iter().zip(&sketches[c]) {
                match (a, t) {
                    (Some(_), None) => return None,
                    (Some(a), Some(t)) => {
                        let d = a.wrapping_sub(*t);
                        close += usize::from(d.unsigned_abs() < 64);
                        cost += zigzag_len(d);
                    }
                    _ => {}
                }
            }
            (cost < own).then_some((c, close))
        })
        .collect();
    below.sort_by_key(|&(c, close)| (std::cmp::Reverse(close), c.abs_diff(i), c));
    below.truncate(BASE_CANDIDATES);
    if below.is_empty() {
        return Ok(Vec::new());
    }
    // The node's own values take this many varint bytes, as themselves or
    // as steps (the two plain candidates).
    let (mut plain, mut steps, mut prev) = (0usize, 0usize, 0i64);
    for &v in &n.ints {
        plain += zigzag_len(v);
        steps += zigzag_len(v.wrapping_sub(prev));
        prev = v;
    }
    let mut best = BestBases::default();
    for (c, _) in below {
        let base = b.dense_ints(c)?;
        best.offer(
            c,
            kind_values(n, Kind::Int).map(|(ix, v)| v.checked_sub(base.get(ix as usize)?)),
        );
    }
    Ok(best.into_encoded_under(plain.min(steps)))
}

/// The [`BASE_KEEP`] bases whose deltas take the fewest varint bytes, kept
/// encoded (a few bytes an item, not the eight of a delta: issue 16).
#[derive(Default)]
struct BestBases(Vec<(usize, Vec<u8>)>);

impl BestBases {
    /// Offer base `c` with the deltas of every item (`None` where the base
    /// has no value: then it is no base).
    fn offer(&mut self, c: usize, deltas: impl Iterator<Item = Option<i64>>) {
        let mut e = Vec::new();
        encoding::varint::put_u64(&mut e, c as u64);
        let head = e.len();
        for d in deltas {
            let Some(d) = d else { return };
            encoding::varint::put_i64(&mut e, d);
        }
        // Ranked by the deltas' bytes alone, the source's aside.
        let cost = e.len() - head;
        let at = self.0.partition_point(|(k, _)| *k <= cost);
        if at < BASE_KEEP {
            self.0.insert(at, (cost, e));
            self.0.truncate(BASE_KEEP);
        }
    }

    fn into_encoded(self) -> Vec<Vec<u8>> {
        self.into_encoded_under(usize::MAX)
    }

    /// Those whose deltas take fewer than `limit` varint bytes.
    fn into_encoded_under(self, limit: usize) -> Vec<Vec<u8>> {
        self.0
            .into_iter()
            .filter(|(k, _)| *k < limit)
            .map(|(_, e)| e)
            .collect()
    }
}

/// Dense kinds of every item of a node.
fn dense_kinds(n: &NodeBuf) -> Vec<u8> {
    let mut dense = vec![Kind::Absent as u8; n.domain_len as usize];
    for (ix, &k) in n.idx.iter().zip(&n.kinds) {
        dense[ix as usize] = k;
    }
    dense
}

/// What [`write_node`] needs to know of a node's strings beyond its items.
struct StrsOf {
    /// The string table its ids point into.
    table: u32,
    /// Its distinct string ids.
    distinct: usize,
    /// Whether its ids may be stored as differences
    /// ([`BuildOptions::delta_string_ids`]).
    deltas: bool,
}

/// How many items of node `n` are of each kind.
fn kind_counts(n: &NodeBuf) -> [u64; KIND_COUNT] {
    let mut counts = [0u64; KIND_COUNT];
    for &k in &n.kinds {
        counts[k as usize] += 1;
    }
    counts[Kind::Absent as usize] = n.domain_len - n.kinds.len() as u64;
    counts
}

/// Whether a node of these [`kind_counts`] has a kinds stream: it has more
/// than one kind.
fn stores_kinds(counts: &[u64; KIND_COUNT]) -> bool {
    counts.iter().filter(|&&c| c > 0).count() > 1
}

fn write_node(
    w: &mut Packs,
    n: &NodeBuf,
    parent: Option<&NodeBuf>,
    maps: [Vec<Vec<u8>>; 5],
    i: usize,
    strs: StrsOf,
    int_distinct: &Distinct,
) -> Result<NodeMeta> {
    let StrsOf {
        table,
        distinct: str_distinct,
        deltas: delta_ids,
    } = strs;
    let [int_map, str_map, bases, str_bases, int_bases] = maps;
    let counts = kind_counts(n);
    let mut streams = [None; format::STREAM_ROLES.len()];
    let mut set = |role: Role, s: u32| streams[role.stream_index().unwrap_or(0)] = Some(s);
    let mut buf = Vec::new();
    if stores_kinds(&counts) {
        let dense = dense_kinds(n);
        buf.clear();
        bitpack::encode(&dense, &mut buf);
        let mut cands = vec![ready(Encoding::BitPacked, std::mem::take(&mut buf))];
        // A `Key` child is `Absent` wherever its parent item is not an
        // object: store only the kinds under object items.
        if let Some(p) = parent.filter(|p| p.domain_len == n.domain_len) {
            let pk = dense_kinds(p);
            if pk.iter().any(|&k| k != Kind::Object as u8) {
                let under: Vec<u8> = dense
                    .iter()
                    .zip(&pk)
                    .filter(|(_, p)| **p == Kind::Object as u8)
                    .map(|(k, _)| *k)
                    .collect();
                let mut m = Vec::new();
                bitpack::encode(&under, &mut m);
                cands.push(ready(Encoding::ParentMasked, m));
            }
        }
        set(Role::Kinds, w.section_best(Role::Kinds, cands)?);
    }
    if !n.ints.is_empty() {
        buf.clear();
        let mut c = i64_cands(|| n.ints.iter().copied(), n.ints.len(), int_distinct);
        c.extend(int_map.into_iter().map(|m| ready(Encoding::Mapped, m)));
        c.extend(int_bases.into_iter().map(|m| ready(Encoding::Based, m)));
        set(Role::Ints, w.section_best(Role::Ints, c)?);
    }
    if !n.uints.is_empty() {
        buf.clear();
        let e = encoding::encode_u64s(n.uints.iter().copied(), &mut buf);
        set(Role::UInts, w.section(Role::UInts, e, &buf, None)?);
    }
    if !n.floats.is_empty() {
        buf.clear();
        let e = encoding::encode_f64s(&n.floats, &mut buf);
        set(Role::Floats, w.section(Role::Floats, e, &buf, None)?);
    }
    if !n.strs.is_empty() {
        buf.clear();
        let mut c = u32_cands(&n.strs, str_distinct, delta_ids);
        c.extend(str_map.into_iter().map(|m| ready(Encoding::Mapped, m)));
        c.extend(str_bases.into_iter().map(|m| ready(Encoding::Based, m)));
        set(Role::Strs, w.section_best(Role::Strs, c)?);
    }
    let mut ts_layout = 0u8;
    let nanos = n.times.iter().any(|t| t.nanos != 0);
    // Distinct timestamps: their seconds' when no nanoseconds are stored.
    let mut times_distinct = 0;
    if !n.times.is_empty() {
        let secs = || n.times.iter().map(|t| t.secs);
        let distinct_secs = Distinct::of(secs());
        times_distinct = distinct_secs.n as u64;
        buf.clear();
        let mut c = i64_cands(secs, n.times.len(), &distinct_secs);
        c.extend(bases.into_iter().map(|m| ready(Encoding::Based, m)));
        set(Role::TsSecs, w.section_best(Role::TsSecs, c)?);
        drop(distinct_secs);
        if nanos {
            buf.clear();
            let e = encoding::encode_u64s(n.times.iter().map(|t| t.nanos as u64), &mut buf);
            set(Role::TsNanos, w.section(Role::TsNanos, e, &buf, None)?);
        }
        let layouts: Vec<u8> = n.times.iter().map(|t| t.layout.to_byte()).collect();
        ts_layout = layouts[0];
        if layouts.iter().any(|&l| l != ts_layout) {
            buf.clear();
            bitpack::encode(&layouts, &mut buf);
            set(
                Role::TsLayout,
                w.section(Role::TsLayout, Encoding::BitPacked, &buf, None)?,
            );
            ts_layout = 0;
        }
        if n.times.iter().any(|t| t.offset_minutes != 0) {
            let offs: Vec<i64> = n.times.iter().map(|t| t.offset_minutes as i64).collect();
            buf.clear();
            let e = encoding::encode_i64s(&offs, &mut buf);
            set(Role::TsOffset, w.section(Role::TsOffset, e, &buf, None)?);
        }
    }
    if !n.lens.is_empty() {
        buf.clear();
        let e = encoding::encode_u64s(n.lens.iter().map(|&l| l as u64), &mut buf);
        set(Role::Lens, w.section(Role::Lens, e, &buf, None)?);
    }
    if !n.num_texts.is_empty() {
        buf.clear();
        let e = encoding::numtext::encode(n.num_texts.iter().map(|t| &**t), &mut buf);
        set(Role::NumText, w.section(Role::NumText, e, &buf, None)?);
    }
    if nanos {
        times_distinct = distinct(n.times.iter().map(|t| (t.secs, t.nanos)));
    }
    let bools =
        (counts[Kind::False as usize] > 0) as u64 + (counts[Kind::True as usize] > 0) as u64;
    let stats = Stats {
        distinct: bools
            + int_distinct.n as u64
            + distinct(n.uints.iter().copied())
            + distinct(
                n.floats
                    .iter()
                    .map(|f| if *f == 0.0 { 0 } else { f.to_bits() }),
            )
            + str_distinct as u64
            + times_distinct
            + distinct(n.num_texts.iter()),
        int: min_max(&n.ints),
        uint: min_max(&n.uints),
        float: min_max(&n.floats),
        str: min_max(&n.strs),
        time: min_max_of(n.times.iter().map(|t| t.secs)),
    };
    Ok(NodeMeta {
        parent: n.parent,
        name: n.name.clone().unwrap_or(if i == 0 {
            NodeName::Root
        } else {
            NodeName::Elem
        }),
        items: n.domain_len,
        counts,
        streams,
        table,
        ts_layout,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An integer column's sketch reads the sampled items alone, from the
    /// spilled segments and the held buffers: the same values as sampling
    /// the whole column.
    #[test]
    fn an_integer_sketch_is_the_whole_columns_sample() {
        use crate::schema::interner::SpillPolicy;
        let dir = tempfile::tempdir().unwrap();
        let mut b = ColumnsBuilder::with_spill(
            Limits::default(),
            SpillPolicy {
                budget: 1 << 20,
                dir: dir.path().to_path_buf(),
            },
        );
        for r in 0..1000i64 {
            // `n` is missing, a string or null on some rows.
            let n = match r % 7 {
                0 => serde_json::Value::Null,
                3 => serde_json::json!("x"),
                5 => continue,
                _ => serde_json::json!(r * r - 500),
            };
            push_value(&mut b, &serde_json::json!({"id": r, "n": n})).unwrap();
            if r % 300 == 299 {
                b.spill_columns().unwrap();
            }
        }
        b.finish().unwrap();
        assert!(b.columns_spilled());
        let id = (0..b.nodes.len())
            .find(|&i| b.path(i as u32) == "id")
            .unwrap();
        let n = (0..b.nodes.len())
            .find(|&i| b.path(i as u32) == "n")
            .unwrap();
        let whole = b.dense_ints(n).unwrap();
        let at: Vec<u32> = vec![0, 1, 3, 5, 6, 7, 299, 300, 301, 855, 856];
        assert_eq!(whole.len(), 857);
        let picked: Vec<Option<i64>> = at.iter().map(|&j| whole.get(j as usize)).collect();
        assert_eq!(b.ints_at(n, Some(&at)).unwrap(), picked);
        // Rows 0, 1, 3 and 5 are r = 0 (null), 1, 3 (a string) and 6.
        assert_eq!(picked[..4], [None, Some(-499), None, Some(-464)]);
        let all: Vec<Option<i64>> = (0..whole.len()).map(|j| whole.get(j)).collect();
        assert_eq!(b.ints_at(n, None).unwrap(), all);
        // The sketch: INT_SKETCH items spread over the domain.
        let sketch = int_sketch(&b, id).unwrap();
        assert_eq!(sketch.len(), INT_SKETCH);
        let ids = b.dense_ints(id).unwrap();
        let k = INT_SKETCH;
        assert_eq!(
            sketch,
            (0..k)
                .map(|j| ids.get(j * ids.len() / k))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn long_text_codec_auto_is_ppmd_up_to_256_mib_of_text() {
        let auto = BuildOptions::default();
        assert!(auto.ppmd_long_text(0));
        assert_eq!(PPMD_AUTO_MAX, 256 << 20);
        assert!(auto.ppmd_long_text(PPMD_AUTO_MAX));
        assert!(!auto.ppmd_long_text(PPMD_AUTO_MAX + 1));
        let ppmd = BuildOptions {
            long_text_codec: LongTextCodec::Ppmd,
            ..BuildOptions::default()
        };
        assert!(ppmd.ppmd_long_text(u64::MAX));
        assert!(!BuildOptions::fast().ppmd_long_text(0));
        // A forced codec is used for every section, long text included.
        for c in [Codec::Zstd, Codec::Gzip, Codec::None] {
            let forced = BuildOptions {
                compress: CompressOptions {
                    choice: compress::CodecChoice::Force(c),
                    level: 19,
                },
                ..ppmd.clone()
            };
            assert!(!forced.ppmd_long_text(0));
        }
    }

    /// The short-string table's codec: PPMd competes (and wins on this
    /// text) when automatic chunking makes it one chunk and PPMd is allowed
    /// at all (automatic codec, long text not forced to zstd, version 2 on);
    /// never for a table of several chunks.
    #[test]
    fn a_one_chunk_short_table_may_be_ppmd() {
        // The sample's 40 issues (13 KB of short strings), and the same
        // issues ten times over with every string made distinct (a table
        // of several chunks).
        let small = std::fs::read_to_string("fixtures/github-sample.ndjson").unwrap();
        let large: String = (0..10)
            .flat_map(|k| {
                small
                    .lines()
                    .map(move |l| l.replace(": \"", &format!(": \"{k}")))
            })
            .map(|l| l + "\n")
            .collect();
        let codec = |input: &str, opts: &BuildOptions| {
            let s =
                crate::Snapshot::from_bytes(build_to_vec(input.as_bytes(), opts).unwrap()).unwrap();
            let t = &s.footer().tables[0];
            let codecs: Vec<Codec> = (0..t.chunk_counts.len() as u32)
                .map(|c| s.footer().sections[(t.first_chunk + c) as usize].codec)
                .collect();
            codecs
        };
        assert_eq!(codec(&small, &BuildOptions::default()), [Codec::Ppmd]);
        for opts in [
            BuildOptions::fast(),
            BuildOptions {
                long_text_codec: LongTextCodec::Zstd,
                ..BuildOptions::default()
            },
            BuildOptions {
                format_version: format::VERSION_1,
                ..BuildOptions::default()
            },
            BuildOptions {
                chunk_size: 1 << 16,
                ..BuildOptions::default()
            },
        ] {
            let c = codec(&small, &opts);
            assert!(!c.contains(&Codec::Ppmd), "{c:?}");
        }
        let c = codec(&large, &BuildOptions::default());
        assert!(c.len() > 1 && !c.contains(&Codec::Ppmd), "{c:?}");
    }

    /// Long text is compressed three levels above the build's level, at
    /// most 19; under `auto`, a table of more than LARGE_LONG_TEXT bytes at
    /// most LARGE_LONG_LEVEL; `zstd` keeps the level whatever the size.
    #[test]
    fn long_text_level_drops_past_large_long_text_under_auto() {
        let auto = BuildOptions::default();
        assert_eq!(long_opts(&auto, 0).level, 19);
        assert_eq!(long_opts(&auto, LARGE_LONG_TEXT).level, 19);
        assert_eq!(
            long_opts(&auto, LARGE_LONG_TEXT + 1).level,
            LARGE_LONG_LEVEL
        );
        let zstd = BuildOptions {
            long_text_codec: LongTextCodec::Zstd,
            ..BuildOptions::default()
        };
        assert_eq!(long_opts(&zstd, u64::MAX).level, 19);
        // --fast: level 3, long text 6, below the cap either way.
        let fast = BuildOptions::fast();
        assert_eq!(long_opts(&fast, u64::MAX).level, FAST_LEVEL + 3);
        let fast_auto = BuildOptions {
            long_text_codec: LongTextCodec::Auto,
            ..BuildOptions::fast()
        };
        assert_eq!(long_opts(&fast_auto, u64::MAX).level, FAST_LEVEL + 3);
        // A level asked for above 19 is kept for long text, but not past
        // the large-table cap under auto.
        let high = |codec| BuildOptions {
            compress: CompressOptions {
                level: 22,
                ..CompressOptions::default()
            },
            long_text_codec: codec,
            ..BuildOptions::default()
        };
        assert_eq!(long_opts(&high(LongTextCodec::Zstd), u64::MAX).level, 22);
        assert_eq!(long_opts(&high(LongTextCodec::Auto), 1).level, 22);
        assert_eq!(
            long_opts(&high(LongTextCodec::Auto), u64::MAX).level,
            LARGE_LONG_LEVEL
        );
    }

    #[test]
    fn zigzag_len_is_the_varint_length_of_the_zigzagged_value() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            8192,
            1 << 40,
            i64::MAX,
            i64::MIN,
        ] {
            let mut b = Vec::new();
            encoding::varint::put_i64(&mut b, v);
            assert_eq!(zigzag_len(v), b.len(), "{v}");
        }
    }

    #[test]
    fn auto_chunk_size_is_one_chunk_then_small_then_bounded_in_count() {
        assert_eq!(auto_chunk_size(0), SHORT_CHUNK_MAX);
        assert_eq!(auto_chunk_size(SHORT_ONE_CHUNK), SHORT_CHUNK_MAX);
        // Past one chunk: 1 KiB until the table would pass 65,536 chunks.
        assert_eq!(auto_chunk_size(SHORT_ONE_CHUNK + 1), SHORT_CHUNK_MIN);
        assert_eq!(auto_chunk_size(1_622_001), 1 << 10); // neovim's issues
        assert_eq!(auto_chunk_size(64 << 20), 1 << 10);
        assert_eq!(auto_chunk_size((64 << 20) + 1), 2 << 10);
        assert_eq!(auto_chunk_size(125_349_306), 2 << 10); // a million generated
        assert_eq!(auto_chunk_size(2 << 30), 32 << 10);
        assert_eq!(auto_chunk_size(u64::MAX), SHORT_CHUNK_MAX);
        for raw in [100_000u64, 10 << 20, 300 << 20, 4 << 30] {
            let c = auto_chunk_size(raw) as u64;
            assert!(c.is_power_of_two());
            assert!(raw.div_ceil(c) <= SHORT_CHUNKS_TARGET, "{raw}");
        }
    }

    /// Jobs run together only while their bytes fit the gate; one larger
    /// than the gate runs alone; every job runs.
    #[test]
    fn mem_gate_bounds_what_runs_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let gate = MemGate::new(10);
        let (now, peak, alone_ok) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let jobs: Vec<usize> = (0..40).map(|k| [3, 4, 6, 25][k % 4]).collect();
        let ran = par_map(4, &jobs, |&want| {
            let _l = gate.acquire(want);
            let held = now.fetch_add(want.min(10), SeqCst) + want.min(10);
            peak.fetch_max(held, SeqCst);
            if want > 10 && held == 10 {
                alone_ok.fetch_add(1, SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            now.fetch_sub(want.min(10), SeqCst);
            want
        });
        assert_eq!(ran, jobs);
        assert!(peak.load(SeqCst) <= 10, "{}", peak.load(SeqCst));
        assert_eq!(alone_ok.load(SeqCst), 10, "each 25-byte job ran alone");
    }

    #[test]
    fn source_chains_stop_at_the_readers_bound_from_either_end() {
        let max = crate::read::MAX_MAPPED_CHAIN;
        // Each node on the next, not yet written: the chain grows from its
        // far end; the node that would make it max + 1 links is refused.
        let mut c = SourceChains::new(200);
        for n in 0..max {
            assert!(c.add(n, &[n as u32 + 1]), "node {n}");
        }
        assert!(!c.add(max, &[max as u32 + 1]));
        // Written without a source instead, it ends the chain.
        assert!(c.add(max, &[]));
        // Each node on the one before: refused at max + 1 links too.
        let mut c = SourceChains::new(200);
        for n in 1..=max {
            assert!(c.add(n, &[n as u32 - 1]), "node {n}");
        }
        assert!(!c.add(max + 1, &[max as u32]));
        // Two chains joined in the middle: 40 links above node 100 (nodes
        // 60..100 each on the next) and 30 below node 160 (nodes 131..=160
        // each on the one before, down to 130, not written); 100 on 160
        // would make 71.
        let mut c = SourceChains::new(200);
        for n in 60..100 {
            assert!(c.add(n, &[n as u32 + 1]));
        }
        for n in 131..=160 {
            assert!(c.add(n, &[n as u32 - 1]));
        }
        assert!(!c.add(100, &[160]));
        // On a node of 24 links below it, 65 in all: still too long...
        assert!(!c.add(100, &[154]));
        // ...on one of 23 links, 64: kept.
        assert!(c.add(100, &[153]));
    }

    /// Results reach the sink in the items' order whatever the thread count
    /// and window; the leading items' results are returned; a failing sink
    /// stops the rest.
    #[test]
    fn par_map_ordered_keeps_order() {
        let items: Vec<u64> = (0..200).collect();
        // Uneven work, so that threads finish out of order.
        let work = |&x: &u64| -> u64 {
            let mut h = x;
            for _ in 0..(x % 7) * 2000 {
                h = h.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            x
        };
        for threads in [1, 2, 3] {
            for window in [1, 2, 8] {
                for lead in [0, 1, 3] {
                    let mut got = Vec::new();
                    let led = par_map_ordered(threads, &items, lead, window, work, |r| {
                        got.push(r);
                        Ok(())
                    })
                    .unwrap();
                    assert_eq!(led, items[..lead]);
                    assert_eq!(got, items[lead..]);
                }
            }
        }
        let mut seen = 0;
        let r = par_map_ordered(2, &items, 0, 2, work, |r| {
            seen += 1;
            if r == 10 {
                Err(Error::Invalid("stop".into()))
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert_eq!(seen, 11);
    }
}
