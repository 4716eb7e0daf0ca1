//! Published snapshots: immutable content-addressed objects and a manifest
//! (SPEC.md section 15).
//!
//! [`publish_file`] cuts a snapshot file into **objects** at section
//! boundaries (small sections grouped, see [`PublishOptions::min_object`]),
//! names each by the SHA-256 of its bytes (`objects/HEX`), and writes a
//! **manifest** (`manifests/HEX.json`, named by its own SHA-256) that lists
//! them with their offsets, lengths and hashes, holds the file's header and
//! its footer and trailer inline (what a reader needs to start), the
//! snapshot's identity and its event-log segments. A small mutable pointer
//! (`NAME.latest.json`) names the newest manifest. Objects and manifests never
//! change once written, so a CDN can cache them forever; publishing a newer
//! snapshot writes only the objects that do not exist yet.
//!
//! [`ManifestSource`] reads a published snapshot back: a [`ByteSource`] over
//! the *original file's* byte ranges that fetches the objects holding them,
//! checks each object's SHA-256 before any of its bytes is used, and so lets
//! the whole reader and query stack work unchanged. [`open`] opens any
//! location: a snapshot file path, a manifest or pointer (path or URL), or
//! an `http(s)://` URL of a snapshot file.

use crate::error::{Error, Result};
use crate::read::{OpenOptions, Snapshot};
use crate::source::{ByteSource, NetCounters, NetStats, parallel_map};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The manifest format this library writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Default smallest object: consecutive sections are grouped until an
/// object holds at least this many bytes (16 KiB).
///
/// Measured on 200,000 generated issues (61 MB) served by nginx, first page
/// of 50 rows sorted by `-updated_at` (7 fields; the local reader reads
/// 4.03 MB) and one row's detail (6.33 MB): 16 KiB objects (379) fetch
/// 3.81 MB in 82 requests and 6.80 MB in 78; 64 KiB (239) 4.92 MB in 46
/// and 7.28 MB in 45; 256 KiB (183) 6.44 MB in 25 and 8.40 MB in 30; 1 MiB
/// (54) 9.15 MB in 10 and 11.52 MB in 12. Republishing after 1% of the rows
/// changed (20,000 rows) writes 13.8% of the bytes at 16 KiB, 17.2% at
/// 64 KiB, 16.4% at 256 KiB. Small objects cost requests, which HTTP/2
/// multiplexes over one connection and a CDN serves from cache; large ones
/// cost bytes a client never uses: 16 KiB keeps the bytes within the
/// reader's own (merged) reads and reuses the most.
pub const DEFAULT_MIN_OBJECT: u64 = 16 << 10;

/// The reader's merge gap over HTTP (see [`open`]): 4 KiB.
#[cfg(feature = "http")]
const HTTP_READER_GAP: u64 = 4 << 10;

/// The least fetch cache of a snapshot read over a network (see [`open`]):
/// 64 MiB, so that the columns of a first page over a million rows (about
/// 17 MB: the sort column, the page's columns and the siblings they are
/// mapped from) are fetched in one round trip and kept until decoded.
const REMOTE_FETCH_CACHE: usize = 64 << 20;

/// The reading options over HTTP: ranges a few KiB apart cost one part of
/// a multi-range request, not a round trip, so the reader merges less (the
/// source still merges by `coalesce_gap` when the server takes one range a
/// request); a larger fetch cache ([`REMOTE_FETCH_CACHE`]).
#[cfg(feature = "http")]
fn remote_options(opts: OpenOptions) -> OpenOptions {
    OpenOptions {
        coalesce_gap: opts.coalesce_gap.min(HTTP_READER_GAP),
        fetch_cache_bytes: opts.fetch_cache_bytes.max(REMOTE_FETCH_CACHE),
        ..opts
    }
}

/// Lowercase hex SHA-256 of `b`.
pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// The snapshot a manifest describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotId {
    /// SHA-256 of the whole file (lowercase hex): the snapshot's identity.
    pub sha256: String,
    /// File length in bytes.
    pub len: u64,
    /// Rows.
    pub rows: u64,
    /// Format version (the header's).
    pub format_version: u16,
}

/// One object: bytes `offset..offset+len` of the snapshot file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// SHA-256 of the object's bytes (lowercase hex); the object is stored
    /// at `objects/SHA256`.
    pub sha256: String,
    /// Where its bytes start in the snapshot file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// The bytes a reader needs to start, inline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tail {
    /// Where the footer starts (the trailer's `footer_offset`).
    pub offset: u64,
    /// Bytes `offset..len` (footer and trailer), base64 (RFC 4648, padded).
    pub data: String,
}

/// One published event-log segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSegment {
    /// SHA-256 of the segment's bytes; stored at `objects/SHA256`.
    pub sha256: String,
    /// Its length in bytes.
    pub len: u64,
    /// `seq` of its first event.
    pub first_seq: u64,
    /// `seq` of its last event.
    pub last_seq: u64,
}

/// A manifest (SPEC.md section 15.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_VERSION`].
    pub colsnap_manifest: u32,
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// Bytes `0..16` of the file, base64.
    pub head: String,
    /// Footer and trailer.
    pub tail: Tail,
    /// The objects, in file order, tiling `0..len` exactly.
    pub objects: Vec<ObjectRef>,
    /// Event-log segments recorded after the snapshot, in `seq` order.
    pub events: Vec<EventSegment>,
}

/// The mutable pointer `NAME.latest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The manifest's path relative to the publish root
    /// (`manifests/HEX.json`).
    pub manifest: String,
    /// SHA-256 of the manifest's bytes.
    pub sha256: String,
    /// The snapshot's identity (its file's SHA-256).
    pub snapshot: String,
    /// Rows of the snapshot.
    pub rows: u64,
}

impl Manifest {
    /// Parse and check a manifest: known version, objects that tile the
    /// file in order, hashes in lowercase hex, inline head and tail that
    /// fit.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("manifest", 0, format!("not a colsnap manifest: {e}")))?;
        let bad = |d: String| Err(Error::corrupt("manifest", 0, d));
        if m.colsnap_manifest != MANIFEST_VERSION {
            return bad(format!(
                "manifest version {} (this reader knows {MANIFEST_VERSION})",
                m.colsnap_manifest
            ));
        }
        if !is_hash(&m.snapshot.sha256) {
            return bad("snapshot.sha256 is not 64 lowercase hex digits".into());
        }
        let mut at = 0u64;
        for (i, o) in m.objects.iter().enumerate() {
            if !is_hash(&o.sha256) {
                return bad(format!("object {i}: sha256 is not 64 lowercase hex digits"));
            }
            if o.offset != at || o.len == 0 {
                return bad(format!(
                    "object {i} covers {}..{} but the objects so far end at {at}",
                    o.offset,
                    o.offset.saturating_add(o.len)
                ));
            }
            at = match at.checked_add(o.len) {
                Some(end) => end,
                None => return bad(format!("object {i} ends past 2^64 bytes")),
            };
        }
        if at != m.snapshot.len {
            return bad(format!(
                "the objects cover {at} bytes, the snapshot has {}",
                m.snapshot.len
            ));
        }
        for (i, e) in m.events.iter().enumerate() {
            if !is_hash(&e.sha256) || e.first_seq > e.last_seq {
                return bad(format!("event segment {i} is malformed"));
            }
        }
        let head = m.head_bytes()?;
        let tail = m.tail_bytes()?;
        if head.len() as u64 != m.snapshot.len.min(16)
            || m.tail.offset.checked_add(tail.len() as u64) != Some(m.snapshot.len)
        {
            return bad("inline head or tail does not fit the snapshot's length".into());
        }
        Ok(m)
    }

    /// The inline header bytes.
    pub fn head_bytes(&self) -> Result<Vec<u8>> {
        B64.decode(&self.head)
            .map_err(|e| Error::corrupt("manifest", 0, format!("head: {e}")))
    }

    /// The inline footer and trailer bytes.
    pub fn tail_bytes(&self) -> Result<Vec<u8>> {
        B64.decode(&self.tail.data)
            .map_err(|e| Error::corrupt("manifest", 0, format!("tail: {e}")))
    }

    /// The manifest's bytes as published (compact JSON, a final newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Where object boundaries go: ranges tiling `0..len` that start at section
/// boundaries. Consecutive sections (the first one with the header) are
/// grouped until a group holds at least `min_object` bytes; a section of
/// `min_object` bytes or more starts an object of its own; the footer and
/// trailer (`footer_offset..len`) are always one object.
pub fn object_ranges(snapshot: &Snapshot, min_object: u64) -> Vec<Range<u64>> {
    let len = snapshot.file_len();
    let footer_offset = snapshot
        .footer()
        .sections
        .iter()
        // Inline sections (version 3) lie in the footer.
        .filter(|e| !e.inline)
        .map(|e| e.offset)
        .chain(std::iter::once(footer_offset_of(snapshot)))
        .collect::<Vec<_>>();
    // Section i covers starts[i]..starts[i+1] (padding included).
    let starts = footer_offset;
    let foot = *starts.last().unwrap_or(&len);
    let mut out = Vec::new();
    let mut cur = 0u64;
    for w in starts.windows(2) {
        let (s, e) = (w[0], w[1]);
        if e - s >= min_object && s > cur && s - cur > crate::format::HEADER_LEN as u64 {
            out.push(cur..s);
            cur = s;
        }
        if e - cur >= min_object {
            out.push(cur..e);
            cur = e;
        }
    }
    if foot > cur {
        out.push(cur..foot);
    }
    if len > foot {
        out.push(foot..len);
    }
    out
}

fn footer_offset_of(s: &Snapshot) -> u64 {
    s.footer_offset()
}

/// How [`publish_file`] publishes.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// The pointer's name: `NAME.latest.json`.
    pub name: String,
    /// Smallest object (see [`object_ranges`]). Default [`DEFAULT_MIN_OBJECT`].
    pub min_object: u64,
    /// Event-log files to publish as segments after the snapshot.
    pub events: Vec<PathBuf>,
    /// The key field of the events' rows (checked to apply before anything
    /// is written). Default [`crate::events::DEFAULT_KEY_FIELD`].
    pub key: String,
}

/// What [`publish_file`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PublishReport {
    /// The manifest's path relative to the publish root.
    pub manifest: String,
    /// The pointer's path relative to the publish root.
    pub pointer: String,
    /// The snapshot's identity (SHA-256 of the file).
    pub snapshot: String,
    /// Objects the manifest lists (snapshot objects and event segments).
    pub objects: usize,
    /// Objects written now (the others existed already).
    pub objects_written: usize,
    /// Bytes of the objects and the manifest written now.
    pub bytes_written: u64,
    /// Bytes of listed objects that existed already.
    pub bytes_reused: u64,
    /// Bytes of the snapshot file.
    pub snapshot_bytes: u64,
}

/// Write `bytes` to `path` unless it holds them already (content-addressed:
/// same name, same bytes), through a temporary file and a rename. True when
/// written. A file of other bytes under the name is not the object (damaged
/// since, cut short by hand): it is replaced. What is there is read back to
/// tell, since reading is cheaper than writing and a file's length alone
/// does not say it is whole.
fn put_immutable(path: &Path, bytes: &[u8]) -> Result<bool> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
        && std::fs::read(path).is_ok_and(|b| b == bytes)
    {
        return Ok(false);
    }
    put_atomic(path, bytes)?;
    Ok(true)
}

/// Replace `path` by `bytes` atomically (temporary file, fsync, rename).
fn put_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(Some(dir), e))?;
    // A short temporary name (a name near the file system's limit must
    // not fail only here, after the objects were written), unique within
    // this process; `.colsnap-tmp.PID.N` is what an interrupted run leaves.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{TMP_PREFIX}{}.{n}", std::process::id()));
    let write = || -> std::io::Result<()> {
        // Created and registered under the registry's lock: a signal's
        // cleanup either finds the file or comes before it exists, and
        // then holds the lock so that it never comes into being.
        let mut f = {
            let mut live = tmps();
            let f = std::fs::File::create(&tmp)?;
            live.push(tmp.clone());
            f
        };
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    let r = write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(Some(path), e)
    });
    tmps().retain(|x| *x != tmp);
    r
}

/// The start of the temporary names of a publish.
pub const TMP_PREFIX: &str = ".colsnap-tmp.";

/// Temporary files being written now, for [`remove_temporary_files`].
static TMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn tmps() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    TMPS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps every other thread from creating or renaming a temporary file of
/// a publish while it lives (see [`remove_temporary_files`]).
pub struct PublishTempsHeld {
    _guard: std::sync::MutexGuard<'static, Vec<PathBuf>>,
}

impl std::fmt::Debug for PublishTempsHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublishTempsHeld")
    }
}

/// Remove the temporary files a publish in this process is writing now,
/// and return how many, with a guard that keeps any other thread from
/// creating or renaming one until it is dropped. Meant for a signal-handling
/// thread that then ends the process (the command-line tool's SIGINT,
/// SIGTERM and SIGHUP): nothing is left under a temporary name, and every
/// name that exists is complete (each is renamed into place whole).
pub fn remove_temporary_files() -> (usize, PublishTempsHeld) {
    let mut g = tmps();
    let mut n = 0;
    for p in g.drain(..) {
        if std::fs::remove_file(&p).is_ok() {
            n += 1;
        }
    }
    (n, PublishTempsHeld { _guard: g })
}

/// The first and last `seq` of an event log (NDJSON): every line an event
/// (SPEC.md 13), their `seq`s consecutive, as a reader of the published
/// segments will require. A malformed event or a break in the `seq`s is an
/// [`Error::Event`] naming the line; a log without events or not UTF-8 is
/// [`Error::Invalid`].
pub fn event_log_seqs(bytes: &[u8]) -> Result<(u64, u64)> {
    let bad = |line: u64, seq: Option<u64>, message: String| Error::Event { line, seq, message };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        Error::Event {
            line,
            seq: None,
            message: "the line is not valid UTF-8 (an event log is UTF-8 NDJSON)".into(),
        }
    })?;
    let mut range: Option<(u64, u64)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let lno = i as u64 + 1;
        let e = crate::events::Event::parse(lno, line)?;
        range = match range {
            None => Some((e.seq, e.seq)),
            Some((a, b)) if b.checked_add(1) == Some(e.seq) => Some((a, e.seq)),
            Some((_, b)) => {
                return Err(bad(
                    lno,
                    Some(e.seq),
                    format!("seq {} does not follow seq {b}", e.seq),
                ));
            }
        };
    }
    range.ok_or_else(|| Error::Invalid("not an event log (no events)".into()))
}

/// [`event_log_seqs`] of the log at `path`, its errors naming the path.
fn event_seqs(bytes: &[u8], path: &Path) -> Result<(u64, u64)> {
    event_log_seqs(bytes).map_err(|e| Error::in_file(path, e))
}

/// Check that segments with these `(first_seq, last_seq)` follow one
/// another: each next one starts at the seq after the previous one's last
/// (SPEC.md 15.2: "in `seq` order"; a reader applies them in turn). The
/// error is the index of the first segment that does not.
pub fn check_segment_order(seqs: &[(u64, u64)]) -> std::result::Result<(), usize> {
    match seqs
        .windows(2)
        .position(|w| w[0].1.checked_add(1) != Some(w[1].0))
    {
        Some(i) => Err(i + 1),
        None => Ok(()),
    }
}

/// Where [`publish_to`] writes: a directory, or a prefix in an object store.
///
/// Keys are paths relative to the publish root (`objects/HEX`,
/// `manifests/HEX.json`, `NAME.latest.json`).
pub trait PublishTarget: Send + Sync + std::fmt::Debug {
    /// Store the immutable `bytes` at `key` unless an object is there
    /// already (content-addressed: same name, same bytes). True when written.
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool>;
    /// Store `bytes` at `key`, replacing what is there (the pointer).
    fn put_replace(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// Where `key` is, for messages and reports.
    fn locate(&self, key: &str) -> String;
    /// Writes in flight at once.
    fn parallel(&self) -> usize {
        4
    }
}

/// A publish root on the local file system: temporary file, fsync, rename.
#[derive(Debug)]
pub struct DirTarget {
    root: PathBuf,
}

impl DirTarget {
    /// The publish root `root` (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> DirTarget {
        DirTarget { root: root.into() }
    }
}

impl PublishTarget for DirTarget {
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        put_immutable(&self.root.join(key), bytes)
    }
    fn put_replace(&self, key: &str, bytes: &[u8]) -> Result<()> {
        put_atomic(&self.root.join(key), bytes)
    }
    fn locate(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

/// Publish the snapshot file `file` into the directory `dir` (SPEC.md
/// section 15): its objects, its manifest and the pointer
/// `NAME.latest.json`. Objects that exist already are not written again.
pub fn publish_file(file: &Path, dir: &Path, opts: &PublishOptions) -> Result<PublishReport> {
    publish_to(file, &DirTarget::new(dir), opts)
}

/// Publish `file` to `dest`: a directory, or (feature `s3`) an
/// `s3://bucket/prefix` URL.
pub fn publish_to_location(
    file: &Path,
    dest: &str,
    opts: &PublishOptions,
) -> Result<PublishReport> {
    if dest.starts_with("s3://") {
        #[cfg(feature = "s3")]
        return publish_to(file, &S3Target::new(dest)?, opts);
        #[cfg(not(feature = "s3"))]
        return Err(Error::Invalid(format!(
            "{dest}: publishing to S3 needs the `s3` feature"
        )));
    }
    publish_file(file, Path::new(dest), opts)
}

/// Publish `file` to `target` (see [`publish_file`]): the objects first
/// (only those that do not exist yet, several at a time), then the
/// manifest, then the pointer, so that a reader who follows the pointer
/// finds everything it names.
pub fn publish_to(
    file: &Path,
    target: &dyn PublishTarget,
    opts: &PublishOptions,
) -> Result<PublishReport> {
    let snap = Snapshot::open(file)?;
    // Everything is checked before anything is written: the event logs
    // (each a log, all in seq order) and the snapshot (every checksum and
    // invariant: a damaged file must never become the latest version).
    // A log without events (empty, or blank lines only: what `query`,
    // `compact` and `events split` read as no change) adds no segment.
    let mut logs = Vec::with_capacity(opts.events.len());
    let mut paths = Vec::with_capacity(opts.events.len());
    for p in &opts.events {
        let b = std::fs::read(p).map_err(|e| Error::io(Some(p), e))?;
        if b.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let seqs = event_seqs(&b, p)?;
        logs.push((b, seqs));
        paths.push(p);
    }
    let seqs: Vec<(u64, u64)> = logs.iter().map(|(_, s)| *s).collect();
    check_segment_order(&seqs).map_err(|i| {
        Error::in_file(
            paths[i],
            Error::Invalid(format!(
                "its first seq is {}, but {}, given before it, ends at seq {}: give the logs in seq order, each continuing the one before",
                seqs[i].0,
                paths[i - 1].display(),
                seqs[i - 1].1
            )),
        )
    })?;
    snap.verify()?;
    // The logs apply over the snapshot, in turn (a log that does not is
    // not this snapshot's: every reader would refuse the publication).
    if !logs.is_empty() {
        let mut o = crate::events::Overlay::new(snap.clone(), &opts.key)?;
        for ((b, _), p) in logs.iter().zip(&paths) {
            o.apply_reader(&b[..]).map_err(|e| Error::in_file(p, e))?;
        }
    }
    let source = crate::source::FileSource::open(file)?;
    let len = snap.file_len();
    let mut report = PublishReport {
        snapshot_bytes: len,
        ..PublishReport::default()
    };
    let mut whole = Sha256::new();
    let mut objects = Vec::new();
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let footer_offset = snap.footer_offset();
    // The objects, hashed; what to store is stored afterwards, in
    // parallel, each distinct object once.
    let mut todo: Vec<(String, Range<u64>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in object_ranges(&snap, opts.min_object.max(1)) {
        let b = source.read_range(r.clone())?;
        whole.update(&b);
        if r.start == 0 {
            head = b[..b.len().min(crate::format::HEADER_LEN)].to_vec();
        }
        if r.start == footer_offset {
            tail = b.to_vec();
        }
        let sha256 = sha256_hex(&b);
        if seen.insert(sha256.clone()) {
            todo.push((sha256.clone(), r.clone()));
        }
        report.objects += 1;
        objects.push(ObjectRef {
            sha256,
            offset: r.start,
            len: r.end - r.start,
        });
    }
    let snapshot_sha = hex(&whole.finalize());
    let written = parallel_map(&todo, target.parallel(), |(h, r)| {
        let b = source.read_range(r.clone())?;
        if sha256_hex(&b) != *h {
            return Err(Error::Invalid(format!(
                "{} changed while it was published",
                file.display()
            )));
        }
        target.put_new(&format!("objects/{h}"), &b)
    })?;
    let mut new_bytes = 0u64;
    for ((_, r), w) in todo.iter().zip(&written) {
        if *w {
            report.objects_written += 1;
            new_bytes += r.end - r.start;
        }
    }
    report.bytes_written += new_bytes;
    report.bytes_reused += len - new_bytes;
    // The file must not have changed while it was read.
    if crate::source::FileSource::open(file)?.len() != len {
        return Err(Error::Invalid(format!(
            "{} changed while it was published",
            file.display()
        )));
    }
    let mut events = Vec::new();
    for (b, (first_seq, last_seq)) in logs {
        let sha256 = sha256_hex(&b);
        if target.put_new(&format!("objects/{sha256}"), &b)? {
            report.objects_written += 1;
            report.bytes_written += b.len() as u64;
        } else {
            report.bytes_reused += b.len() as u64;
        }
        report.objects += 1;
        events.push(EventSegment {
            sha256,
            len: b.len() as u64,
            first_seq,
            last_seq,
        });
    }
    let m = Manifest {
        colsnap_manifest: MANIFEST_VERSION,
        snapshot: SnapshotId {
            sha256: snapshot_sha.clone(),
            len,
            rows: snap.rows(),
            format_version: snap.header().version,
        },
        head: B64.encode(&head),
        tail: Tail {
            offset: footer_offset,
            data: B64.encode(&tail),
        },
        objects,
        events,
    };
    let mb = m.to_bytes();
    let mh = sha256_hex(&mb);
    let mpath = format!("manifests/{mh}.json");
    if target.put_new(&mpath, &mb)? {
        report.bytes_written += mb.len() as u64;
    }
    let pointer = Pointer {
        manifest: mpath.clone(),
        sha256: mh,
        snapshot: snapshot_sha.clone(),
        rows: snap.rows(),
    };
    let mut pb = serde_json::to_vec_pretty(&pointer).unwrap_or_default();
    pb.push(b'\n');
    let ppath = format!("{}.latest.json", opts.name);
    target.put_replace(&ppath, &pb)?;
    report.manifest = mpath;
    report.pointer = ppath;
    report.snapshot = snapshot_sha;
    Ok(report)
}

/// A publish root in an S3-compatible store: `s3://bucket/prefix`. What
/// exists is listed once (`prefix/objects/`, `prefix/manifests/`), so
/// republishing sends a request only for the objects it uploads.
#[cfg(feature = "s3")]
#[derive(Debug)]
pub struct S3Target {
    client: crate::source::S3Client,
    prefix: String,
    /// The objects and manifests there, by key, with their sizes and
    /// `ETag`s.
    existing: std::collections::HashMap<String, crate::source::Listed>,
}

#[cfg(feature = "s3")]
impl S3Target {
    /// The publish root at `url` (`s3://bucket/prefix`), with a client from
    /// the `AWS_*` environment variables.
    pub fn new(url: &str) -> Result<S3Target> {
        let (bucket, prefix) = crate::source::parse_s3_url(url)?;
        // `s3://b/site/` is the prefix `site`.
        let prefix = prefix.strip_suffix('/').unwrap_or(&prefix).to_string();
        let client = crate::source::S3Client::from_env(&bucket)?;
        let mut existing = std::collections::HashMap::new();
        for dir in ["objects", "manifests"] {
            existing.extend(client.list(&join_key(&prefix, dir))?);
        }
        Ok(S3Target {
            client,
            prefix,
            existing,
        })
    }

    /// The requests made so far (the listing and the uploads).
    pub fn stats(&self) -> NetStats {
        self.client.counters().get()
    }
}

/// `prefix/key`, or `key` for the bucket's root.
#[cfg(feature = "s3")]
fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

#[cfg(feature = "s3")]
impl PublishTarget for S3Target {
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool> {
        let k = join_key(&self.prefix, key);
        // What is under the name is kept only if it is the object (same
        // name, same bytes): one damaged since, or cut short, is replaced.
        // Its MD5 `ETag` tells; another `ETag` (a store that encrypts with
        // KMS) means reading it back.
        if let Some(listed) = self.existing.get(&k) {
            let same = match listed.holds(bytes) {
                Some(same) => same,
                None => self
                    .client
                    .get_at_most(&k, bytes.len() as u64)
                    .is_ok_and(|b| b == bytes),
            };
            if same {
                return Ok(false);
            }
        }
        self.client.put(&k, Bytes::copy_from_slice(bytes))?;
        Ok(true)
    }
    fn put_replace(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.client
            .put(&join_key(&self.prefix, key), Bytes::copy_from_slice(bytes))
    }
    fn locate(&self, key: &str) -> String {
        self.client.url(&join_key(&self.prefix, key))
    }
    fn parallel(&self) -> usize {
        8
    }
}

/// Where published objects are read from: a directory or a base URL.
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// The whole object at `key` (a path relative to the publish root,
    /// `objects/HEX`).
    fn get(&self, key: &str) -> Result<Bytes>;
    /// [`ObjectStore::get`] of an object of at most `max` bytes: a longer
    /// one is an error before its bytes are read (or as they come), so that
    /// a broken or hostile store cannot fill the memory.
    fn get_at_most(&self, key: &str, max: u64) -> Result<Bytes> {
        let b = self.get(key)?;
        if b.len() as u64 > max {
            return Err(too_large(&self.locate(key), b.len() as u64, max));
        }
        Ok(b)
    }
    /// Where `key` is, for messages.
    fn locate(&self, key: &str) -> String;
    /// The requests and bytes so far.
    fn counters(&self) -> Arc<NetCounters>;
    /// Requests in flight at once.
    fn parallel(&self) -> usize {
        8
    }
}

/// The error of an object longer than the reader takes.
fn too_large(at: &str, n: u64, max: u64) -> Error {
    Error::Remote {
        url: at.into(),
        status: None,
        detail: format!("an object of {n} bytes or more where at most {max} can come"),
    }
}

/// Pointers are read up to this size (they are about 200 bytes).
const POINTER_MAX: u64 = 1 << 20;
/// Manifests are read up to this size (about 100 bytes an object: 670,000
/// objects).
const MANIFEST_MAX: u64 = 64 << 20;

/// A publish root on the local file system.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    counters: Arc<NetCounters>,
}

impl DirStore {
    /// The publish root `root`.
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore {
            root: root.into(),
            counters: Arc::default(),
        }
    }
}

impl ObjectStore for DirStore {
    fn get(&self, key: &str) -> Result<Bytes> {
        self.get_at_most(key, u64::MAX)
    }
    fn get_at_most(&self, key: &str, max: u64) -> Result<Bytes> {
        use std::io::Read;
        let p = self.root.join(key);
        self.counters.add_request();
        // A regular file only: opening a FIFO would wait for a writer.
        let m = std::fs::metadata(&p).map_err(|e| Error::io(Some(&p), e))?;
        if !m.is_file() {
            return Err(Error::io(
                Some(&p),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let f = std::fs::File::open(&p).map_err(|e| Error::io(Some(&p), e))?;
        let mut b = Vec::new();
        // At most max + 1 bytes, whatever the file (a device, a file growing).
        f.take(max.saturating_add(1))
            .read_to_end(&mut b)
            .map_err(|e| Error::io(Some(&p), e))?;
        self.counters.add_bytes(b.len() as u64);
        if b.len() as u64 > max {
            return Err(too_large(&p.display().to_string(), b.len() as u64, max));
        }
        Ok(b.into())
    }
    fn locate(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
    fn counters(&self) -> Arc<NetCounters> {
        self.counters.clone()
    }
}

/// A publish root on an HTTP(S) server (`base` ends with `/`).
#[cfg(feature = "http")]
#[derive(Debug)]
pub struct HttpStore {
    base: String,
    http: crate::source::HttpClient,
}

#[cfg(feature = "http")]
impl HttpStore {
    /// The publish root at `base` (a URL; a missing final `/` is added).
    pub fn new(base: &str, http: crate::source::HttpClient) -> HttpStore {
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        HttpStore { base, http }
    }
}

#[cfg(feature = "http")]
impl ObjectStore for HttpStore {
    fn get(&self, key: &str) -> Result<Bytes> {
        self.http.get_object(&self.locate(key))
    }
    fn get_at_most(&self, key: &str, max: u64) -> Result<Bytes> {
        self.http.get_object_at_most(&self.locate(key), max)
    }
    fn locate(&self, key: &str) -> String {
        format!("{}{key}", self.base)
    }
    fn counters(&self) -> Arc<NetCounters> {
        self.http.counters().clone()
    }
    fn parallel(&self) -> usize {
        self.http.options().parallel
    }
}

/// A publish root in an S3-compatible store (`s3://bucket/prefix/`).
#[cfg(feature = "s3")]
#[derive(Debug)]
pub struct S3Store {
    client: crate::source::S3Client,
    prefix: String,
}

#[cfg(feature = "s3")]
impl S3Store {
    /// The publish root `prefix` (a key prefix, no leading or final `/`)
    /// in `client`'s bucket.
    pub fn new(client: crate::source::S3Client, prefix: &str) -> S3Store {
        S3Store {
            client,
            prefix: prefix.trim_matches('/').to_string(),
        }
    }
}

#[cfg(feature = "s3")]
impl ObjectStore for S3Store {
    fn get(&self, key: &str) -> Result<Bytes> {
        self.client.get(&join_key(&self.prefix, key))
    }
    fn get_at_most(&self, key: &str, max: u64) -> Result<Bytes> {
        self.client.get_at_most(&join_key(&self.prefix, key), max)
    }
    fn locate(&self, key: &str) -> String {
        self.client.url(&join_key(&self.prefix, key))
    }
    fn counters(&self) -> Arc<NetCounters> {
        self.client.counters().clone()
    }
    fn parallel(&self) -> usize {
        self.client.parallel()
    }
}

/// Verified objects kept by a [`ManifestSource`], least recently fetched
/// first out.
#[derive(Debug, Default)]
struct ObjectCache {
    map: HashMap<usize, Bytes>,
    order: VecDeque<usize>,
    used: usize,
    budget: usize,
}

impl ObjectCache {
    fn insert(&mut self, i: usize, b: Bytes) {
        if self.map.contains_key(&i) {
            return;
        }
        self.used += b.len();
        self.map.insert(i, b);
        self.order.push_back(i);
        while self.used > self.budget && self.order.len() > 1 {
            if let Some(old) = self.order.pop_front()
                && let Some(b) = self.map.remove(&old)
            {
                self.used -= b.len();
            }
        }
    }
}

/// Check an object's bytes against the hash and the length the manifest
/// gives it: a wrong hash is [`Error::ObjectHash`]; bytes that hash right
/// but are not `len` long (the manifest's length is wrong) say so.
fn check_object(b: &[u8], sha256: &str, len: u64, at: impl Fn() -> String) -> Result<()> {
    let got = sha256_hex(b);
    if got != sha256 {
        return Err(Error::ObjectHash {
            object: at(),
            expected: sha256.into(),
            got,
        });
    }
    if b.len() as u64 != len {
        return Err(Error::corrupt(
            "manifest",
            0,
            format!(
                "object {}: {} bytes, the manifest says {len}",
                at(),
                b.len()
            ),
        ));
    }
    Ok(())
}

/// A published snapshot seen as its original file (see the module
/// documentation): every object is checked against its SHA-256 before use.
#[derive(Debug)]
pub struct ManifestSource {
    manifest: Manifest,
    manifest_sha256: String,
    store: Arc<dyn ObjectStore>,
    head: Bytes,
    tail: Bytes,
    cache: Mutex<ObjectCache>,
}

impl ManifestSource {
    /// A source over the objects of `manifest` (whose bytes hash to
    /// `manifest_sha256`) in `store`. The inline tail must hash to the
    /// manifest's last object.
    pub fn new(
        manifest: Manifest,
        manifest_sha256: String,
        store: Arc<dyn ObjectStore>,
    ) -> Result<ManifestSource> {
        let head = Bytes::from(manifest.head_bytes()?);
        let tail = Bytes::from(manifest.tail_bytes()?);
        let last = manifest.objects.last();
        if let Some(o) = last.filter(|o| o.offset == manifest.tail.offset) {
            let got = sha256_hex(&tail);
            if got != o.sha256 {
                return Err(Error::ObjectHash {
                    object: "the manifest's inline tail".into(),
                    expected: o.sha256.clone(),
                    got,
                });
            }
        } else if !tail.is_empty() {
            return Err(Error::corrupt(
                "manifest",
                0,
                "the inline tail is not the last object",
            ));
        }
        Ok(ManifestSource {
            manifest,
            manifest_sha256,
            store,
            head,
            tail,
            cache: Mutex::new(ObjectCache {
                budget: 32 << 20,
                ..ObjectCache::default()
            }),
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The requests and bytes of the object store so far.
    pub fn stats(&self) -> NetStats {
        self.store.counters().get()
    }

    /// Fetch object `i` and check its hash.
    fn object(&self, i: usize) -> Result<Bytes> {
        let o = &self.manifest.objects[i];
        let key = format!("objects/{}", o.sha256);
        let b = self.store.get_at_most(&key, o.len)?;
        check_object(&b, &o.sha256, o.len, || self.store.locate(&key))?;
        Ok(b)
    }

    /// Indices of the objects overlapping `r` (not empty).
    fn objects_of(&self, r: &Range<u64>) -> Range<usize> {
        let objs = &self.manifest.objects;
        let first = objs.partition_point(|o| o.offset + o.len <= r.start);
        let end = objs.partition_point(|o| o.offset < r.end);
        first..end.max(first)
    }
}

impl ByteSource for ManifestSource {
    fn len(&self) -> u64 {
        self.manifest.snapshot.len
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let len = self.len();
        let tail_at = self.manifest.tail.offset;
        let inline = |r: &Range<u64>| r.start >= tail_at || r.end <= self.head.len() as u64;
        for r in ranges {
            crate::source::check_range(r, len)?;
        }
        // The objects to fetch, each once, in parallel.
        let mut need: Vec<usize> = Vec::new();
        {
            let cache = self.cache.lock().map_err(|_| poisoned())?;
            for r in ranges.iter().filter(|r| r.start < r.end && !inline(r)) {
                for i in self.objects_of(r) {
                    if !cache.map.contains_key(&i) && !need.contains(&i) {
                        need.push(i);
                    }
                }
            }
        }
        need.sort_unstable();
        let got = parallel_map(&need, self.store.parallel(), |&i| self.object(i))?;
        let mut fetched: HashMap<usize, Bytes> = need.iter().copied().zip(got).collect();
        let mut cache = self.cache.lock().map_err(|_| poisoned())?;
        let out = ranges
            .iter()
            .map(|r| {
                if r.start == r.end {
                    return Ok(Bytes::new());
                }
                if r.start >= tail_at {
                    let a = (r.start - tail_at) as usize;
                    return Ok(self.tail.slice(a..a + (r.end - r.start) as usize));
                }
                if r.end <= self.head.len() as u64 {
                    return Ok(self.head.slice(r.start as usize..r.end as usize));
                }
                let objs = self.objects_of(r);
                let mut parts = Vec::with_capacity(objs.len());
                for i in objs {
                    let o = &self.manifest.objects[i];
                    let b = match fetched.get(&i).or_else(|| cache.map.get(&i)) {
                        Some(b) => b.clone(),
                        None => self.object(i)?,
                    };
                    let a = r.start.max(o.offset) - o.offset;
                    let e = r.end.min(o.offset + o.len) - o.offset;
                    parts.push(b.slice(a as usize..e as usize));
                }
                if parts.len() == 1 {
                    return Ok(parts.remove(0));
                }
                let mut m = BytesMut::with_capacity((r.end - r.start) as usize);
                for p in parts {
                    m.extend_from_slice(&p);
                }
                Ok(m.freeze())
            })
            .collect();
        for (i, b) in fetched.drain() {
            cache.insert(i, b);
        }
        out
    }

    fn version(&self) -> Option<String> {
        Some(self.manifest_sha256.clone())
    }

    fn is_remote(&self) -> bool {
        true
    }
}

fn poisoned() -> Error {
    Error::Invalid("a lock was poisoned by a panic".into())
}

/// True when `b` is a JSON object with a `colsnap_manifest` key.
fn looks_like_manifest(b: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(b)
        .ok()
        .is_some_and(|v| v.get("colsnap_manifest").is_some())
}

/// A snapshot opened by [`open`], with the counters of its remote reads.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Requests and bytes of the remote source (`None` for a local file).
    pub net: Option<Arc<NetCounters>>,
    /// The manifest, when a published snapshot was opened.
    pub manifest: Option<Arc<Manifest>>,
    /// The store of the publish root, when a published snapshot was opened.
    store: Option<Arc<dyn ObjectStore>>,
}

impl Opened {
    /// Fetch object `sha256` of `len` bytes from the publish root and
    /// check its hash and length.
    fn checked_object(
        &self,
        store: &Arc<dyn ObjectStore>,
        sha256: &str,
        len: u64,
    ) -> Result<Bytes> {
        let key = format!("objects/{sha256}");
        let b = store.get_at_most(&key, len)?;
        check_object(&b, sha256, len, || store.locate(&key))?;
        Ok(b)
    }

    /// The event-log segments a published snapshot carries (its
    /// manifest's `events`, SPEC.md 15.2), in order, each with where it is
    /// (for messages): every segment fetched and checked against its hash
    /// and length, its events checked to run from its `first_seq` to its
    /// `last_seq`, each continuing the one before. Empty when the manifest
    /// lists none or a plain snapshot was opened. A reader applies them in
    /// turn over the snapshot (SPEC.md 15.4 step 5): the published rows are
    /// the snapshot's with these events.
    pub fn event_segments(&self) -> Result<Vec<(String, Bytes)>> {
        let (Some(m), Some(store)) = (&self.manifest, &self.store) else {
            return Ok(Vec::new());
        };
        let seqs: Vec<(u64, u64)> = m.events.iter().map(|e| (e.first_seq, e.last_seq)).collect();
        if let Err(i) = check_segment_order(&seqs) {
            return Err(Error::corrupt(
                "manifest",
                0,
                format!(
                    "event segment {i} starts at seq {}, but segment {} ends at seq {}: segments must follow one another",
                    seqs[i].0,
                    i - 1,
                    seqs[i - 1].1
                ),
            ));
        }
        let mut out = Vec::with_capacity(m.events.len());
        for (i, e) in m.events.iter().enumerate() {
            let b = self.checked_object(store, &e.sha256, e.len)?;
            let at = format!(
                "event segment {i} ({})",
                store.locate(&format!("objects/{}", e.sha256))
            );
            let (first, last) = event_log_seqs(&b)
                .map_err(|x| Error::corrupt("event segment", 0, format!("{at}: {x}")))?;
            if (first, last) != (e.first_seq, e.last_seq) {
                return Err(Error::corrupt(
                    "manifest",
                    0,
                    format!(
                        "{at} holds seqs {first}..={last}, the manifest says {}..={}",
                        e.first_seq, e.last_seq
                    ),
                ));
            }
            out.push((at, b));
        }
        Ok(out)
    }

    /// Fetch every object of a published snapshot, the last one (the
    /// footer and trailer, otherwise read from the manifest's inline copy)
    /// and the event segments included, and check each against its hash
    /// and length: what `colsnap verify` adds for a publication, so that a
    /// damaged or missing object is found before a reader needs it.
    /// Returns the objects and bytes checked; `(0, 0)` for a plain snapshot.
    pub fn check_objects(&self) -> Result<(usize, u64)> {
        let (Some(m), Some(store)) = (&self.manifest, &self.store) else {
            return Ok((0, 0));
        };
        let mut all: Vec<(&str, u64)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (h, n) in m
            .objects
            .iter()
            .map(|o| (o.sha256.as_str(), o.len))
            .chain(m.events.iter().map(|e| (e.sha256.as_str(), e.len)))
        {
            if seen.insert(h) {
                all.push((h, n));
            }
        }
        let got = parallel_map(&all, store.parallel(), |(h, n)| {
            self.checked_object(store, h, *n).map(|b| b.len() as u64)
        })?;
        Ok((all.len(), got.iter().sum()))
    }
}

/// True for a location [`open`] reads remotely or as a manifest.
pub fn is_location(loc: &str) -> bool {
    is_url(loc) || loc.ends_with(".json")
}

fn is_url(loc: &str) -> bool {
    loc.starts_with("http://") || loc.starts_with("https://") || loc.starts_with("s3://")
}

/// The store of the publish root `root` (a URL ending in `/`).
fn url_store(root: &str, opts: &OpenOptions) -> Result<Arc<dyn ObjectStore>> {
    if root.starts_with("s3://") {
        #[cfg(feature = "s3")]
        {
            let (bucket, prefix) = crate::source::parse_s3_url(root)?;
            let client = crate::source::S3Client::from_env(&bucket)?;
            return Ok(Arc::new(S3Store::new(client, &prefix)));
        }
        #[cfg(not(feature = "s3"))]
        return Err(Error::Invalid(format!(
            "{root}: reading from S3 needs the `s3` feature"
        )));
    }
    #[cfg(feature = "http")]
    {
        let http = crate::source::HttpClient::new(crate::source::HttpOptions {
            tail_bytes: opts.tail_bytes,
            merge_gap: opts.coalesce_gap,
            ..Default::default()
        })?;
        Ok(Arc::new(HttpStore::new(root, http)))
    }
    #[cfg(not(feature = "http"))]
    {
        let _ = opts;
        Err(Error::Invalid(format!(
            "{root}: reading over HTTP needs the `http` feature"
        )))
    }
}

/// The publish root of a local manifest `m` when it lies in a directory
/// `manifests` (SPEC.md 15.1: the directory above it), however the path is
/// spelled: `a/manifests/./X.json`, `a/manifests//X.json`, or `X.json` from
/// inside `manifests` (the working directory's own name is looked up).
fn local_manifest_root(m: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut parts: Vec<Component> = m
        .parent()?
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    match parts.last() {
        Some(Component::Normal(n)) if *n == "manifests" => {
            parts.pop();
            let root: PathBuf = parts.iter().collect();
            Some(if root.as_os_str().is_empty() {
                ".".into()
            } else {
                root
            })
        }
        // Only `..` and the like, or nothing: the real directory's name.
        _ if parts.iter().all(|c| !matches!(c, Component::Normal(_))) => {
            let dir: PathBuf = if parts.is_empty() {
                ".".into()
            } else {
                parts.iter().collect()
            };
            let real = std::fs::canonicalize(dir).ok()?;
            (real.file_name()? == "manifests").then(|| real.parent().map(Path::to_path_buf))?
        }
        _ => None,
    }
}

/// The directory of a location (`a/b/c.json` -> `a/b/`).
fn parent(loc: &str) -> String {
    match loc.rfind('/') {
        Some(i) => loc[..=i].to_string(),
        None => String::new(),
    }
}

/// Open a snapshot from anywhere:
/// - a path or `http(s)://` URL ending in `.json`: a manifest
///   (`ROOT/manifests/HEX.json`, one read) or a pointer (`ROOT/NAME.latest.json`,
///   then its manifest, checked against the pointer's hash);
/// - an `http(s)://` URL of a snapshot file: [`crate::source::HttpSource`]
///   (one suffix-range request);
/// - any other string: a snapshot file path.
pub fn open(loc: &str, opts: OpenOptions) -> Result<Opened> {
    if !loc.ends_with(".json") {
        if loc.starts_with("s3://") {
            #[cfg(feature = "s3")]
            {
                let (bucket, key) = crate::source::parse_s3_url(loc)?;
                let client =
                    crate::source::S3Client::from_env(&bucket)?.with_merge_gap(opts.coalesce_gap);
                let src = crate::source::S3Source::open_with(client, &key, opts.tail_bytes)?;
                let net = src.counters().clone();
                let opts = OpenOptions {
                    fetch_cache_bytes: opts.fetch_cache_bytes.max(REMOTE_FETCH_CACHE),
                    ..opts
                };
                let snapshot = Snapshot::from_source_with(Arc::new(src), opts)?;
                return Ok(Opened {
                    snapshot,
                    net: Some(net),
                    manifest: None,
                    store: None,
                });
            }
            #[cfg(not(feature = "s3"))]
            return Err(Error::Invalid(format!(
                "{loc}: reading from S3 needs the `s3` feature"
            )));
        }
        if is_url(loc) {
            #[cfg(feature = "http")]
            {
                let http = crate::source::HttpClient::new(crate::source::HttpOptions {
                    tail_bytes: opts.tail_bytes,
                    merge_gap: opts.coalesce_gap,
                    ..Default::default()
                })?;
                let src = crate::source::HttpSource::open_with(loc, http)?;
                let net = src.counters().clone();
                let opts = remote_options(opts);
                let snapshot = Snapshot::from_source_with(Arc::new(src), opts)?;
                return Ok(Opened {
                    snapshot,
                    net: Some(net),
                    manifest: None,
                    store: None,
                });
            }
            #[cfg(not(feature = "http"))]
            return Err(Error::Invalid(format!(
                "{loc}: reading over HTTP needs the `http` feature"
            )));
        }
        return Ok(Opened {
            snapshot: Snapshot::open_with(loc, opts)?,
            net: None,
            manifest: None,
            store: None,
        });
    }
    let store: Arc<dyn ObjectStore> = if is_url(loc) {
        url_store(&parent(loc), &opts)?
    } else {
        let p = Path::new(loc);
        let dir = p.parent().unwrap_or(Path::new(".")).to_path_buf();
        Arc::new(DirStore::new(dir))
    };
    let name = loc.rsplit('/').next().unwrap_or(loc).to_string();
    let first = store.get_at_most(&name, MANIFEST_MAX)?;
    let mut pointer = None;
    let (store, mbytes, mhash) = match serde_json::from_slice::<Pointer>(&first) {
        Ok(p) => {
            // A pointer: its directory is the publish root, its manifest
            // `manifests/SHA256.json` (SPEC.md 15.3), nothing else.
            if first.len() as u64 > POINTER_MAX
                || !is_hash(&p.sha256)
                || p.manifest != format!("manifests/{}.json", p.sha256)
            {
                return Err(Error::corrupt(
                    "pointer",
                    0,
                    "the manifest must be manifests/SHA256.json, SHA256 its sha256".to_string(),
                ));
            }
            let b = store.get_at_most(&p.manifest, MANIFEST_MAX)?;
            let got = sha256_hex(&b);
            if got != p.sha256 {
                return Err(Error::ObjectHash {
                    object: store.locate(&p.manifest),
                    expected: p.sha256,
                    got,
                });
            }
            let at = store.locate(&p.manifest);
            pointer = Some((p, at));
            (store, b, got)
        }
        Err(perr) if !looks_like_manifest(&first) => {
            // Neither: a local file is read as a snapshot, a URL is an
            // error. A file that is not a snapshot either (a broken
            // pointer, most likely, by its name) says all three.
            let neither = || {
                Error::corrupt(
                    "pointer",
                    0,
                    format!("neither a colsnap pointer ({perr}), a manifest nor a snapshot"),
                )
            };
            if is_url(loc) {
                return Err(neither());
            }
            let snapshot = match Snapshot::open_with(loc, opts) {
                Ok(s) => s,
                Err(Error::BadMagic { offset: 0 } | Error::Truncated { .. }) => {
                    return Err(neither());
                }
                Err(e) => return Err(e),
            };
            return Ok(Opened {
                snapshot,
                net: None,
                manifest: None,
                store: None,
            });
        }
        Err(_) => {
            // A manifest: the publish root is the directory above
            // `manifests/`; its name, when a hash, is checked.
            let got = sha256_hex(&first);
            if let Some(h) = name.strip_suffix(".json").filter(|h| is_hash(h))
                && h != got
            {
                return Err(Error::ObjectHash {
                    object: loc.into(),
                    expected: h.into(),
                    got,
                });
            }
            // A local manifest's directory, spelled any way
            // (`manifests/./X.json`, `X.json` from inside it).
            let local_root = if is_url(loc) {
                None
            } else {
                local_manifest_root(Path::new(loc))
            };
            let root_store: Arc<dyn ObjectStore> = if let Some(root) = local_root {
                Arc::new(DirStore::new(root))
            } else if parent(loc).ends_with("manifests/") {
                let up = parent(parent(loc).trim_end_matches('/'));
                if is_url(loc) {
                    url_store(&up, &opts)?
                } else {
                    Arc::new(DirStore::new(if up.is_empty() { ".".into() } else { up }))
                }
            } else {
                store
            };
            // The first read counts with the store that does the rest.
            root_store.counters().add_request();
            root_store.counters().add_bytes(first.len() as u64);
            (root_store, first, got)
        }
    };
    // Errors name where the manifest is when it is not `loc` itself (which
    // the caller names).
    let mloc = pointer.as_ref().map(|(_, at)| at.clone());
    let located = |e: Error| match (e, &mloc) {
        (
            Error::Corrupt {
                what,
                offset,
                detail,
            },
            Some(mloc),
        ) => Error::Corrupt {
            what,
            offset,
            detail: format!("{mloc}: {detail}"),
        },
        (e, _) => e,
    };
    let manifest = Manifest::parse(&mbytes).map_err(located)?;
    if let Some((p, _)) = &pointer
        && (p.snapshot != manifest.snapshot.sha256 || p.rows != manifest.snapshot.rows)
    {
        return Err(Error::corrupt(
            "pointer",
            0,
            format!(
                "names snapshot {} of {} rows, the manifest {} of {}",
                p.snapshot, p.rows, manifest.snapshot.sha256, manifest.snapshot.rows
            ),
        ));
    }
    let net = store.counters();
    let src = ManifestSource::new(manifest.clone(), mhash, store.clone()).map_err(located)?;
    // The open reads the inline footer and trailer, nothing more.
    let opts = OpenOptions {
        tail_bytes: manifest.snapshot.len - manifest.tail.offset,
        fetch_cache_bytes: if is_url(loc) {
            opts.fetch_cache_bytes.max(REMOTE_FETCH_CACHE)
        } else {
            opts.fetch_cache_bytes
        },
        ..opts
    };
    let snapshot = Snapshot::from_source_with(Arc::new(src), opts)?;
    if snapshot.rows() != manifest.snapshot.rows {
        return Err(Error::corrupt(
            "manifest",
            0,
            format!(
                "{}lists {} rows, the footer {}",
                mloc.map(|m| format!("{m}: ")).unwrap_or_default(),
                manifest.snapshot.rows,
                snapshot.rows()
            ),
        ));
    }
    Ok(Opened {
        snapshot,
        net: Some(net),
        manifest: Some(Arc::new(manifest)),
        store: Some(store),
    })
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use super::*;

    fn build(rows: usize, edit: Option<usize>) -> Vec<u8> {
        let mut s = String::new();
        for i in 0..rows {
            let title = if Some(i) == edit {
                format!("edited title {i}")
            } else {
                format!("title of issue {i} with some words {}", i * 7919 % 1000)
            };
            s.push_str(&format!(
                "{{\"id\":{i},\"title\":\"{title}\",\"state\":\"{}\",\"n\":{}}}\n",
                if i % 3 == 0 { "open" } else { "closed" },
                i * 31 % 977
            ));
        }
        crate::write::build_to_vec(s.as_bytes(), &crate::write::BuildOptions::default()).unwrap()
    }

    #[test]
    fn publish_then_read_back_equals_the_file() {
        let (_t, f, dir, r) = published();
        let opts = publish_opts();
        assert!(r.objects > 2, "{r:?}");
        assert_eq!(r.bytes_reused, 0);
        let o = open(
            dir.join("s.latest.json").to_str().unwrap(),
            OpenOptions::default(),
        )
        .unwrap();
        let local = Snapshot::open(&f).unwrap();
        let mut a = Vec::new();
        let mut b = Vec::new();
        let eo = crate::ExportOptions::default();
        local.export(&mut a, &eo).unwrap();
        o.snapshot.export(&mut b, &eo).unwrap();
        assert!(!a.is_empty());
        assert_eq!(a, b);
        o.snapshot.verify().unwrap();
        // Republishing the same file writes nothing but the pointer.
        let r2 = publish_file(&f, &dir, &opts).unwrap();
        assert_eq!((r2.objects_written, r2.bytes_written), (0, 0));
        assert_eq!(r2.manifest, r.manifest);
        // The manifest opens by its own path too, with one read.
        let m = open(
            dir.join(&r.manifest).to_str().unwrap(),
            OpenOptions::default(),
        )
        .unwrap();
        assert_eq!(m.net.as_ref().unwrap().get().requests, 1);
        assert_eq!(m.snapshot.rows(), 3000);
    }

    #[test]
    fn objects_tile_the_file_at_section_boundaries() {
        let s = Snapshot::from_bytes(build(2000, None)).unwrap();
        for min in [1, 100, 4096, 1 << 30] {
            let rs = object_ranges(&s, min);
            assert_eq!(rs[0].start, 0);
            assert_eq!(rs.last().unwrap().end, s.file_len());
            assert_eq!(rs.last().unwrap().start, s.footer_offset());
            for w in rs.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            let starts: Vec<u64> = s
                .footer()
                .sections
                .iter()
                .filter(|e| !e.inline)
                .map(|e| e.offset)
                .collect();
            for r in &rs[1..rs.len() - 1] {
                assert!(starts.contains(&r.start), "{r:?}");
            }
        }
    }

    #[test]
    fn a_corrupted_object_is_detected_before_use() {
        let (_t, _, dir, r) = published();
        let m = Manifest::parse(&std::fs::read(dir.join(&r.manifest)).unwrap()).unwrap();
        // Flip one byte of every object but the tail's (inline).
        for o in &m.objects[..m.objects.len() - 1] {
            let p = dir.join("objects").join(&o.sha256);
            let mut b = std::fs::read(&p).unwrap();
            let k = b.len() / 2;
            b[k] ^= 1;
            std::fs::write(&p, b).unwrap();
        }
        let o = open(
            dir.join("s.latest.json").to_str().unwrap(),
            OpenOptions::default(),
        )
        .unwrap();
        let e = o.snapshot.verify().unwrap_err();
        assert!(matches!(e, Error::ObjectHash { .. }), "{e:?}");
        // A corrupted manifest is refused by the pointer's hash.
        let mp = dir.join(&r.manifest);
        let mut b = std::fs::read(&mp).unwrap();
        b[20] ^= 1;
        std::fs::write(&mp, b).unwrap();
        let e = open(
            dir.join("s.latest.json").to_str().unwrap(),
            OpenOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::ObjectHash { .. }), "{e:?}");
    }

    #[test]
    fn manifests_that_do_not_tile_are_refused() {
        let s = build(100, None);
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("s.colsnap");
        std::fs::write(&f, &s).unwrap();
        let r = publish_file(
            &f,
            t.path(),
            &PublishOptions {
                name: "s".into(),
                min_object: 64,
                events: vec![],
                key: crate::events::DEFAULT_KEY_FIELD.into(),
            },
        )
        .unwrap();
        let good = Manifest::parse(&std::fs::read(t.path().join(&r.manifest)).unwrap()).unwrap();
        let mut m = good.clone();
        m.objects[1].offset += 1;
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        let mut m = good.clone();
        m.snapshot.len += 1;
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        let mut m = good.clone();
        m.objects[0].sha256 = "AB".repeat(32);
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        let mut m = good.clone();
        m.colsnap_manifest = 2;
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        // Objects whose lengths add up past 2^64 (the sum wrapped before
        // and a read came back empty).
        let mut m = good;
        m.snapshot.len = u64::MAX;
        m.objects = vec![
            ObjectRef {
                sha256: "a".repeat(64),
                offset: 0,
                len: u64::MAX,
            },
            ObjectRef {
                sha256: sha256_hex(b""),
                offset: u64::MAX,
                len: 1,
            },
        ];
        m.tail.offset = u64::MAX;
        m.tail.data = String::new();
        let e = Manifest::parse(&m.to_bytes()).unwrap_err().to_string();
        assert!(e.contains("past 2^64"), "{e}");
    }

    /// A snapshot of 3000 rows published as `s` in 4 KiB objects: the
    /// temporary directory (dropped with it), the file, the publish root
    /// and the report.
    fn published() -> (tempfile::TempDir, PathBuf, PathBuf, PublishReport) {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("s.colsnap");
        std::fs::write(&f, build(3000, None)).unwrap();
        let dir = t.path().join("pub");
        let r = publish_file(&f, &dir, &publish_opts()).unwrap();
        (t, f, dir, r)
    }

    /// What [`published`] publishes with: name `s`, 4 KiB objects.
    fn publish_opts() -> PublishOptions {
        PublishOptions {
            name: "s".into(),
            min_object: 4096,
            events: vec![],
            key: crate::events::DEFAULT_KEY_FIELD.into(),
        }
    }

    #[test]
    fn pointers_and_objects_that_are_not_what_they_say_are_refused() {
        let (t, _, dir, r) = published();
        let ptr = dir.join("s.latest.json");
        let good: Pointer = serde_json::from_slice(&std::fs::read(&ptr).unwrap()).unwrap();
        let open_err = |p: &Pointer| {
            std::fs::write(&ptr, serde_json::to_vec(p).unwrap()).unwrap();
            open(ptr.to_str().unwrap(), OpenOptions::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        // The manifest must be manifests/SHA256.json: not a path elsewhere,
        // even one whose bytes hash right.
        std::fs::create_dir_all(t.path().join("elsewhere")).unwrap();
        std::fs::copy(dir.join(&r.manifest), t.path().join("elsewhere/m.json")).unwrap();
        let mut p = good.clone();
        p.manifest = "manifests/../../elsewhere/m.json".into();
        assert!(open_err(&p).contains("must be manifests/SHA256.json"));
        // Its snapshot and rows must be the manifest's.
        let mut p = good.clone();
        p.rows += 1;
        assert!(open_err(&p).contains("rows"), "{}", open_err(&p));
        let mut p = good.clone();
        p.snapshot = "b".repeat(64);
        assert!(open_err(&p).contains("names snapshot"));
        assert_eq!(open_err(&good), "");
        // An object longer than the manifest says is refused unread.
        let m = Manifest::parse(&std::fs::read(dir.join(&r.manifest)).unwrap()).unwrap();
        let o = &m.objects[0];
        let op = dir.join("objects").join(&o.sha256);
        let mut b = std::fs::read(&op).unwrap();
        b.extend(vec![0u8; 1 << 20]);
        std::fs::write(&op, b).unwrap();
        let s = open(ptr.to_str().unwrap(), OpenOptions::default()).unwrap();
        let e = s.snapshot.verify().unwrap_err().to_string();
        assert!(e.contains("where at most"), "{e}");
        // A manifest that breaks a rule names where it is.
        let mp = dir.join(&r.manifest);
        let mut bad = m.clone();
        bad.objects[1].offset += 1;
        let bytes = bad.to_bytes();
        std::fs::write(&mp, &bytes).unwrap();
        let mut p = good;
        p.sha256 = sha256_hex(&bytes);
        p.manifest = format!("manifests/{}.json", p.sha256);
        std::fs::write(dir.join(&p.manifest), &bytes).unwrap();
        let e = open_err(&p);
        assert!(e.contains(&p.manifest) && e.contains("object 1"), "{e}");
    }

    /// An event log is checked whole before it is published: every line
    /// an event, the seqs consecutive (a review published a log with a
    /// garbage middle line and seqs 1 then 9).
    #[test]
    fn only_a_whole_event_log_is_published() {
        let p = Path::new("events.ndjson");
        let ev = |seq: u64| format!(r#"{{"seq":{seq},"op":"delete","key":{seq}}}"#);
        let ok = format!("{}\n\n{}\n", ev(1), ev(2));
        assert_eq!(event_seqs(ok.as_bytes(), p).unwrap(), (1, 2));
        for bad in [
            format!("{}\ngarbage\n{}\n", ev(1), ev(2)),
            format!("{}\n{}\n", ev(1), ev(9)),
            format!("{}\n{}\n", ev(2), ev(1)),
            "\n \n".to_string(),
        ] {
            let e = event_seqs(bad.as_bytes(), p).unwrap_err().to_string();
            assert!(e.contains("events.ndjson: "), "{e}");
        }
    }
}
