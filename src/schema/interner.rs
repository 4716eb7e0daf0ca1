//! The string interner of a build, bounded by a memory budget.
//!
//! Every distinct string gets a provisional id while rows are read. When the
//! strings held exceed the budget, they are sorted and written to a
//! temporary file (a *run*) and forgotten: a string seen again later gets a
//! new provisional id. At the end, [`Strings::sort_tables`] k-way merges the
//! runs into each table's sorted, distinct strings (a temporary file per
//! table) and maps every provisional id to its final id in its table, which
//! is the id an all-in-memory sort gives: the snapshot is the same whatever
//! the budget.

use crate::error::{Error, Result};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Bytes a held string costs beyond its text (hash table slot, allocation).
pub const ENTRY_OVERHEAD: usize = 64;

/// Attempts of [`remove_spill_dirs`] at one directory.
const REMOVE_TRIES: usize = 100;

/// Spill directories that exist right now (see [`remove_spill_dirs`]).
static LIVE_SPILL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live_spill() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE_SPILL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps every other thread from creating a spill directory while it lives.
pub struct SpillDirsHeld {
    _guard: MutexGuard<'static, Vec<PathBuf>>,
}

impl std::fmt::Debug for SpillDirsHeld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpillDirsHeld")
    }
}

/// Remove every spill directory of a build in progress in this process and
/// return how many, with a guard that keeps another from being created
/// until it is dropped (for a signal handler that then ends the process).
pub fn remove_spill_dirs() -> (usize, SpillDirsHeld) {
    let mut g = live_spill();
    let mut n = 0;
    for p in g.drain(..) {
        // A build may be writing a file into it meanwhile (removing the
        // directory then fails as not empty): try again until it is gone.
        for _ in 0..REMOVE_TRIES {
            if std::fs::remove_dir_all(&p).is_ok() {
                n += 1;
                break;
            }
            if !p.exists() {
                break;
            }
        }
    }
    (n, SpillDirsHeld { _guard: g })
}

/// A temporary directory for spilled data, removed (with everything in it)
/// when dropped, and by [`remove_spill_dirs`].
#[derive(Debug)]
pub struct SpillDir {
    path: PathBuf,
    /// `.lock` inside it, locked while the build runs
    /// ([`leftovers`](super::leftovers)).
    _lock: Option<std::fs::File>,
}

/// The file inside a spill directory whose lock marks it as in use.
const SPILL_LOCK: &str = ".lock";

impl SpillDir {
    /// A new, empty directory `.colsnap-spill.*` in `base`.
    pub fn new(base: &Path) -> Result<SpillDir> {
        // Those of builds killed outright, first.
        super::leftovers::sweep(base, true, SPILL_LOCK, |n| n.starts_with(".colsnap-spill."));
        let mut live = live_spill();
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for k in 0u32..1000 {
            let path = base.join(format!(".colsnap-spill.{pid}.{nanos:x}.{k}"));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    live.push(path.clone());
                    let lock = std::fs::File::create(path.join(SPILL_LOCK)).ok();
                    if let Some(f) = &lock {
                        super::leftovers::hold(f);
                    }
                    return Ok(SpillDir { path, _lock: lock });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(Some(base), e)),
            }
        }
        Err(Error::Invalid(format!(
            "cannot create a temporary directory in {}",
            base.display()
        )))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let mut live = live_spill();
        live.retain(|p| *p != self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Where and when an [`Interner`] spills.
#[derive(Clone, Debug)]
pub struct SpillPolicy {
    /// Bytes that the strings and the other holders of memory share: the
    /// held strings (text plus [`ENTRY_OVERHEAD`] each) spill once they
    /// exceed what the others leave of it, or an eighth of it, whichever
    /// is more ([`Interner::over_budget`]).
    pub budget: usize,
    /// Directory in which the spill directory is created.
    pub dir: PathBuf,
}

/// Counters of what a build spilled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpillStats {
    /// Sorted runs of strings written.
    pub string_runs: u64,
    /// Files of column buffers written.
    pub column_runs: u64,
    /// Bytes written to temporary files.
    pub bytes: u64,
}

/// Distinct strings to provisional ids.
#[derive(Debug, Default)]
pub struct Interner {
    /// foldhash's quality hasher, seeded at random per map as std's
    /// SipHash is (so crafted input cannot aim at collisions), and faster:
    /// SipHash was 9% of a `--fast` build; 200,000 generated issues build
    /// in 12.4-12.6 s instead of 14.8-15.1 s.
    map: std::collections::HashMap<Box<str>, u32, foldhash::quality::RandomState>,
    held: usize,
    /// Provisional ids given so far (strings held plus spilled).
    next: u64,
    policy: Option<SpillPolicy>,
    dir: Option<Arc<SpillDir>>,
    runs: Vec<PathBuf>,
    /// Bytes of the longest string of each run.
    longest: Vec<usize>,
    /// First provisional id of each run: run `r` holds the ids from
    /// `starts[r]` up to the next run's first (the ids of the strings held
    /// between two spills follow each other).
    starts: Vec<u64>,
    stats: SpillStats,
}

impl Interner {
    /// An interner that keeps every string in memory (`policy` None) or
    /// spills past `policy.budget`.
    pub fn new(policy: Option<SpillPolicy>) -> Self {
        Interner {
            policy,
            ..Default::default()
        }
    }

    /// The provisional id of `s`, if it is held.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }

    /// Provisional ids given so far.
    pub fn ids(&self) -> u64 {
        self.next
    }

    /// Whether strings were spilled.
    pub fn spilled(&self) -> bool {
        !self.runs.is_empty()
    }

    /// Runs spilled so far: the strings held now will be run number this
    /// (their ids are its ids).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Give `s` (not held) the next provisional id.
    pub fn insert(&mut self, s: &str) -> u32 {
        let id = self.next as u32;
        self.next += 1;
        self.held += s.len() + ENTRY_OVERHEAD;
        self.map.insert(s.into(), id);
        id
    }

    /// Whether the held strings exceed their share of the budget when
    /// other holders use `others` bytes of it.
    pub fn over_budget(&self, others: usize) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|p| self.held > p.budget.saturating_sub(others).max(p.budget / 8))
    }

    /// Write the held strings, sorted, as a run and forget them.
    pub fn spill(&mut self) -> Result<()> {
        if self.map.is_empty() {
            return Ok(());
        }
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => {
                let d = Arc::new(SpillDir::new(&policy.dir)?);
                self.dir = Some(d.clone());
                d
            }
        };
        let first = self.next - self.map.len() as u64;
        let mut entries: Vec<(Box<str>, u32)> = std::mem::take(&mut self.map).into_iter().collect();
        self.held = 0;
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let path = dir.path().join(format!("run-{}", self.runs.len()));
        let f = File::create(&path).map_err(|e| Error::io(Some(&path), e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut bytes = 0u64;
        let longest = entries.iter().map(|e| e.0.len()).max().unwrap_or(0);
        for (s, id) in &entries {
            write_entry(&mut w, s.as_bytes(), *id).map_err(|e| Error::io(Some(&path), e))?;
            bytes += 8 + s.len() as u64;
        }
        w.flush().map_err(|e| Error::io(Some(&path), e))?;
        self.runs.push(path);
        self.longest.push(longest);
        self.starts.push(first);
        self.stats.string_runs += 1;
        self.stats.bytes += bytes;
        Ok(())
    }

    /// Every string by provisional id, or the spilled runs (the held
    /// strings spilled last).
    pub fn finish(&mut self) -> Result<Strings> {
        if self.runs.is_empty() {
            let mut strings: Vec<Box<str>> = vec![Box::from(""); self.map.len()];
            for (s, id) in std::mem::take(&mut self.map) {
                strings[id as usize] = s;
            }
            self.held = 0;
            return Ok(Strings::Mem(strings));
        }
        self.spill()?;
        Ok(Strings::Runs {
            dir: self.dir.clone().expect("a run was spilled"),
            runs: std::mem::take(&mut self.runs),
            longest: std::mem::take(&mut self.longest),
            starts: std::mem::take(&mut self.starts),
            ids: self.next,
            merge_buffers: self
                .policy
                .as_ref()
                .map_or(MERGE_BUFFERS, |p| (p.budget / 8).min(MERGE_BUFFERS)),
        })
    }

    /// What was spilled so far.
    pub fn stats(&self) -> SpillStats {
        self.stats
    }
}

fn write_entry(w: &mut impl Write, s: &[u8], id: u32) -> std::io::Result<()> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s)?;
    w.write_all(&id.to_le_bytes())
}

fn read_u32(r: &mut impl Read) -> std::io::Result<Option<u32>> {
    let mut b = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut b[got..])?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    Ok(Some(u32::from_le_bytes(b)))
}

/// Read one length-prefixed string into `buf`; false at the end.
fn read_str(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let Some(len) = read_u32(r)? else {
        return Ok(false);
    };
    buf.clear();
    buf.resize(len as usize, 0);
    r.read_exact(buf)?;
    Ok(true)
}

/// The strings of a build once rows are read.
#[derive(Debug)]
pub enum Strings {
    /// Every string, by provisional id.
    Mem(Vec<Box<str>>),
    /// Sorted runs of (string, provisional id) in temporary files.
    Runs {
        /// Holds the files.
        dir: Arc<SpillDir>,
        /// The runs.
        runs: Vec<PathBuf>,
        /// Bytes of the longest string of each run.
        longest: Vec<usize>,
        /// First provisional id of each run.
        starts: Vec<u64>,
        /// Provisional ids given.
        ids: u64,
        /// Bytes of the read buffers of the runs merged at once (an
        /// eighth of the budget, at most [`MERGE_BUFFERS`]).
        merge_buffers: usize,
    },
}

impl Default for Strings {
    fn default() -> Self {
        Strings::Mem(Vec::new())
    }
}

/// One table's strings in sorted order, without duplicates.
#[derive(Debug)]
pub struct SortedTable {
    /// Strings in the table.
    pub len: usize,
    /// Bytes of their text.
    pub text_bytes: u64,
    src: TableSrc,
}

#[derive(Debug)]
enum TableSrc {
    /// Provisional ids in sorted order ([`Strings::Mem`]).
    Ids(Vec<u32>),
    /// A file of length-prefixed strings.
    File(PathBuf),
}

/// Membership of provisional ids in one table.
#[derive(Clone, Debug)]
pub struct IdSet {
    bits: Vec<u64>,
}

impl IdSet {
    /// An empty set of ids below `n`.
    pub fn new(n: u64) -> Self {
        IdSet {
            bits: vec![0; n.div_ceil(64) as usize],
        }
    }
    /// Add `id`.
    pub fn insert(&mut self, id: u32) {
        self.bits[(id / 64) as usize] |= 1 << (id % 64);
    }
    /// Whether `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        self.bits[(id / 64) as usize] & (1 << (id % 64)) != 0
    }
}

/// Most windows of [`IdMaps::Windows`] (files written at once while the
/// runs are merged).
const MAX_WINDOWS: u64 = 64;

/// The final id of every provisional id in each table (`u32::MAX` where
/// the string is not in the table), from [`Strings::sort_tables`].
#[derive(Debug)]
pub enum IdMaps {
    /// By table, indexed by provisional id.
    Dense(Vec<Vec<u32>>),
    /// Spilled strings: one file for each window of consecutive runs, so
    /// that only the ids of a window are mapped in memory at once (a
    /// dense map of every provisional id of 10 million rows is some
    /// 500 MB a table: issue 16).
    Windows(Vec<MapWindow>),
}

/// The final ids of the provisional ids of some consecutive runs.
#[derive(Debug)]
pub struct MapWindow {
    /// First provisional id.
    pub lo: u64,
    /// One past the last.
    pub hi: u64,
    /// The runs (their provisional ids are `lo..hi`).
    pub runs: std::ops::Range<usize>,
    tables: usize,
    path: PathBuf,
    /// Per table, the row-order id of each sorted id (tables in row order
    /// only), set once the runs are merged.
    remaps: Arc<Vec<Option<Vec<u32>>>>,
}

impl IdMaps {
    /// Every window loaded into one map per table over `ids` provisional
    /// ids (for tests: as much memory as an unspilled build).
    pub fn to_dense(&self, ids: u64) -> Result<Vec<Vec<u32>>> {
        match self {
            IdMaps::Dense(m) => Ok(m.clone()),
            IdMaps::Windows(ws) => {
                let mut out: Vec<Vec<u32>> = Vec::new();
                for w in ws {
                    let part = w.load()?;
                    out.resize_with(part.len(), || vec![u32::MAX; ids as usize]);
                    for (t, m) in part.iter().enumerate() {
                        out[t][w.lo as usize..w.hi as usize].copy_from_slice(m);
                    }
                }
                Ok(out)
            }
        }
    }
}

impl MapWindow {
    /// By table, the final id of provisional id `lo + k` at `k`; removes
    /// the file.
    pub fn load(&self) -> Result<Vec<Vec<u32>>> {
        let len = (self.hi - self.lo) as usize;
        let mut maps: Vec<Vec<u32>> = (0..self.tables).map(|_| vec![u32::MAX; len]).collect();
        let path = &self.path;
        let io = |e| Error::io(Some(path), e);
        let f = File::open(path).map_err(io)?;
        let mut r = BufReader::with_capacity(1 << 20, f);
        while let Some(k) = read_u32(&mut r).map_err(io)? {
            for m in maps.iter_mut() {
                let v = read_u32(&mut r)
                    .map_err(io)?
                    .ok_or_else(|| io(std::io::ErrorKind::UnexpectedEof.into()))?;
                let slot = m.get_mut(k as usize).ok_or_else(|| {
                    Error::Invalid(format!("a spilled id map holds id {k} past {len}"))
                })?;
                *slot = v;
            }
        }
        drop(r);
        let _ = std::fs::remove_file(path);
        for (m, remap) in maps.iter_mut().zip(self.remaps.iter()) {
            if let Some(remap) = remap {
                for v in m.iter_mut().filter(|v| **v != u32::MAX) {
                    *v = remap[*v as usize];
                }
            }
        }
        Ok(maps)
    }
}

impl Strings {
    /// Provisional ids given.
    pub fn ids(&self) -> u64 {
        match self {
            Strings::Mem(v) => v.len() as u64,
            Strings::Runs { ids, .. } => *ids,
        }
    }

    /// Bytes of the string with provisional id `id` (in memory only).
    pub fn len_of(&self, id: u32) -> Option<usize> {
        match self {
            Strings::Mem(v) => Some(v[id as usize].len()),
            Strings::Runs { .. } => None,
        }
    }

    /// Sort each table's strings (`used[t]`: the provisional ids of table
    /// `t`): returns the tables and, for each, the final id of every
    /// provisional id in it (`u32::MAX` for the others): held in memory for
    /// strings in memory, else in files, a window of runs each
    /// ([`IdMaps`]). `max_strings` bounds the distinct strings of all
    /// tables together. Spilled runs are removed once merged: call it once.
    ///
    /// A table `t` with `row_order[t]` keeps its strings in the order of
    /// their first provisional id (the order the rows first use them)
    /// instead: the same order whatever was spilled.
    pub fn sort_tables(
        &self,
        used: &[IdSet],
        row_order: &[bool],
        max_strings: usize,
    ) -> Result<(Vec<SortedTable>, IdMaps)> {
        match self {
            Strings::Mem(strings) => {
                let mut tables = Vec::new();
                let mut maps = Vec::new();
                for (t, set) in used.iter().enumerate() {
                    let mut ids: Vec<u32> = (0..strings.len() as u32)
                        .filter(|&i| set.contains(i))
                        .collect();
                    if !row_order.get(t).copied().unwrap_or(false) {
                        ids.sort_unstable_by(|&x, &y| {
                            strings[x as usize]
                                .as_bytes()
                                .cmp(strings[y as usize].as_bytes())
                        });
                    }
                    let mut map = vec![u32::MAX; strings.len()];
                    for (new, &old) in ids.iter().enumerate() {
                        map[old as usize] = new as u32;
                    }
                    let text_bytes = ids.iter().map(|&i| strings[i as usize].len() as u64).sum();
                    maps.push(map);
                    tables.push(SortedTable {
                        len: ids.len(),
                        text_bytes,
                        src: TableSrc::Ids(ids),
                    });
                }
                Ok((tables, IdMaps::Dense(maps)))
            }
            Strings::Runs {
                dir,
                runs,
                longest,
                starts,
                ids,
                merge_buffers,
            } => merge_runs(
                dir,
                runs,
                longest,
                starts,
                *ids,
                used,
                row_order,
                max_strings,
                *merge_buffers,
            ),
        }
    }

    /// Call `f` with every string of `table` in order.
    pub fn visit(
        &self,
        table: &SortedTable,
        mut f: impl FnMut(usize, &[u8]) -> Result<()>,
    ) -> Result<()> {
        match (&table.src, self) {
            (TableSrc::Ids(ids), Strings::Mem(strings)) => {
                for (k, &i) in ids.iter().enumerate() {
                    f(k, strings[i as usize].as_bytes())?;
                }
                Ok(())
            }
            (TableSrc::File(path), _) => {
                let file = File::open(path).map_err(|e| Error::io(Some(path), e))?;
                let mut r = BufReader::with_capacity(1 << 20, file);
                let mut buf = Vec::new();
                for k in 0..table.len {
                    if !read_str(&mut r, &mut buf).map_err(|e| Error::io(Some(path), e))? {
                        return Err(Error::io(
                            Some(path),
                            std::io::ErrorKind::UnexpectedEof.into(),
                        ));
                    }
                    f(k, &buf)?;
                }
                Ok(())
            }
            (TableSrc::Ids(_), Strings::Runs { .. }) => {
                unreachable!("a table sorted in memory comes from strings in memory")
            }
        }
    }
}

/// The next entry of one run.
struct RunReader {
    r: BufReader<File>,
    path: PathBuf,
}

impl RunReader {
    fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<u32>> {
        let more = read_str(&mut self.r, buf).map_err(|e| Error::io(Some(&self.path), e))?;
        if !more {
            return Ok(None);
        }
        let id = read_u32(&mut self.r)
            .map_err(|e| Error::io(Some(&self.path), e))?
            .ok_or_else(|| Error::io(Some(&self.path), std::io::ErrorKind::UnexpectedEof.into()))?;
        Ok(Some(id))
    }
}

/// Most runs merged at once (open files); more are merged in rounds.
const MAX_FAN_IN: usize = 128;

/// Most bytes of the read buffers of the runs merged at once (between
/// 8 KiB and 1 MiB a run); less under a small budget: an eighth of the
/// strings' share.
pub const MERGE_BUFFERS: usize = 64 << 20;

/// The entries of several runs in order of their strings.
struct Merger {
    readers: Vec<RunReader>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize, u32)>>,
    /// A buffer for the next read.
    spare: Vec<u8>,
}

impl Merger {
    /// A merger of `runs` whose read buffers take about `buffers` bytes
    /// together (between 8 KiB and 1 MiB a run).
    fn new(runs: &[PathBuf], buffers: usize) -> Result<Merger> {
        let per_run = (buffers / runs.len().max(1)).clamp(8 << 10, 1 << 20);
        let mut readers = Vec::with_capacity(runs.len());
        let mut heap = BinaryHeap::new();
        for (k, p) in runs.iter().enumerate() {
            let f = File::open(p).map_err(|e| Error::io(Some(p), e))?;
            let mut r = RunReader {
                r: BufReader::with_capacity(per_run, f),
                path: p.clone(),
            };
            let mut buf = Vec::new();
            if let Some(id) = r.next(&mut buf)? {
                heap.push(Reverse((buf, k, id)));
            }
            readers.push(r);
        }
        Ok(Merger {
            readers,
            heap,
            spare: Vec::new(),
        })
    }

    /// The next (string, provisional id); `done` is the string returned
    /// before, handed back for reuse.
    fn next(&mut self, done: Option<Vec<u8>>) -> Result<Option<(Vec<u8>, u32)>> {
        if let Some(b) = done {
            self.spare = b;
        }
        let Some(Reverse((s, k, id))) = self.heap.pop() else {
            return Ok(None);
        };
        let mut buf = std::mem::take(&mut self.spare);
        if let Some(next) = self.readers[k].next(&mut buf)? {
            self.heap.push(Reverse((buf, k, next)));
        }
        Ok(Some((s, id)))
    }
}

/// Merge runs (with the length of their longest string) in rounds until
/// at most [`MAX_FAN_IN`] are left and their longest strings together fit
/// `buffers` bytes: a merge holds one string of each run at once, so that
/// 24 runs of one 60 MB string each held 1.4 GB.
fn reduce_runs(
    dir: &SpillDir,
    mut runs: Vec<(PathBuf, usize)>,
    buffers: usize,
) -> Result<Vec<PathBuf>> {
    let heads =
        |runs: &[(PathBuf, usize)]| runs.iter().map(|r| r.1).fold(0usize, usize::saturating_add);
    let mut round = 0usize;
    while runs.len() > 1 && (runs.len() > MAX_FAN_IN || heads(&runs) > buffers) {
        // The first runs whose longest strings fit together, two at least.
        let mut take = 0;
        let mut held = 0usize;
        while take < runs.len().min(MAX_FAN_IN)
            && (take < 2 || held.saturating_add(runs[take].1) <= buffers)
        {
            held = held.saturating_add(runs[take].1);
            take += 1;
        }
        let rest = runs.split_off(take);
        let longest = runs.iter().map(|r| r.1).max().unwrap_or(0);
        let merged: Vec<PathBuf> = runs.into_iter().map(|r| r.0).collect();
        let path = dir.path().join(format!("merged-{round}"));
        round += 1;
        let f = File::create(&path).map_err(|e| Error::io(Some(&path), e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut m = Merger::new(&merged, buffers)?;
        let mut done = None;
        while let Some((s, id)) = m.next(done.take())? {
            write_entry(&mut w, &s, id).map_err(|e| Error::io(Some(&path), e))?;
            done = Some(s);
        }
        w.flush().map_err(|e| Error::io(Some(&path), e))?;
        drop(m);
        for p in &merged {
            let _ = std::fs::remove_file(p);
        }
        runs = rest;
        runs.push((path, longest));
    }
    Ok(runs.into_iter().map(|r| r.0).collect())
}

/// Windows of consecutive runs of about `ids / MAX_WINDOWS` ids (a run at least).
fn map_windows(dir: &SpillDir, starts: &[u64], ids: u64, tables: usize) -> Vec<MapWindow> {
    let target = (ids / MAX_WINDOWS).max(1);
    let end_of = |r: usize| starts.get(r + 1).copied().unwrap_or(ids);
    let mut out = Vec::new();
    let mut r = 0;
    while r < starts.len() {
        let lo = starts[r];
        let mut e = r + 1;
        while e < starts.len() && end_of(e) - lo <= target {
            e += 1;
        }
        out.push(MapWindow {
            lo,
            hi: end_of(e - 1),
            runs: r..e,
            tables,
            path: dir.path().join(format!("map-{}", out.len())),
            remaps: Arc::new(Vec::new()),
        });
        r = e;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn merge_runs(
    dir: &SpillDir,
    runs: &[PathBuf],
    longest: &[usize],
    starts: &[u64],
    ids: u64,
    used: &[IdSet],
    row_order: &[bool],
    max_strings: usize,
    buffers: usize,
) -> Result<(Vec<SortedTable>, IdMaps)> {
    let mut windows = map_windows(dir, starts, ids, used.len());
    let row = |t: usize| row_order.get(t).copied().unwrap_or(false);
    let mut map_out = Vec::with_capacity(windows.len());
    for win in &windows {
        let f = File::create(&win.path).map_err(|e| Error::io(Some(&win.path), e))?;
        map_out.push(BufWriter::with_capacity(64 << 10, f));
    }
    let mut finals = vec![u32::MAX; used.len()];
    let runs = reduce_runs(
        dir,
        runs.iter().cloned().zip(longest.iter().copied()).collect(),
        buffers,
    )?;
    let mut merger = Merger::new(&runs, buffers)?;
    struct Out {
        w: BufWriter<File>,
        path: PathBuf,
        last: Option<Vec<u8>>,
        len: usize,
        text_bytes: u64,
        /// Row order: the offset of each string in the file and its first
        /// provisional id (of any table).
        at: u64,
        offsets: Vec<u64>,
        firsts: Vec<u32>,
    }
    let mut outs = Vec::with_capacity(used.len());
    for t in 0..used.len() {
        let path = dir.path().join(format!("table-{t}"));
        let f = File::create(&path).map_err(|e| Error::io(Some(&path), e))?;
        outs.push(Out {
            w: BufWriter::with_capacity(1 << 20, f),
            path,
            last: None,
            len: 0,
            text_bytes: 0,
            at: 0,
            offsets: Vec::new(),
            firsts: Vec::new(),
        });
    }
    // The least provisional id of the string being merged (its copies
    // come one after the other, not in id order).
    let mut first_id = u32::MAX;
    let mut distinct = 0usize;
    let mut last_any: Option<Vec<u8>> = None;
    let mut done = None;
    while let Some((s, id)) = merger.next(done.take())? {
        if last_any.as_deref() != Some(&s[..]) {
            first_id = id;
            distinct += 1;
            if distinct > max_strings {
                return Err(Error::Invalid(format!(
                    "more than {max_strings} distinct strings (the max_strings limit)"
                )));
            }
        }
        first_id = first_id.min(id);
        finals.fill(u32::MAX);
        for (t, o) in outs.iter_mut().enumerate() {
            // A row-ordered table's copy of this string, if it has one,
            // takes the least id seen so far.
            if row(t)
                && o.last.as_deref() == Some(&s[..])
                && let Some(f) = o.firsts.last_mut()
            {
                *f = first_id;
            }
        }
        for (t, set) in used.iter().enumerate() {
            if !set.contains(id) {
                continue;
            }
            let o = &mut outs[t];
            if o.last.as_deref() != Some(&s[..]) {
                write_len_str(&mut o.w, &s).map_err(|e| Error::io(Some(&o.path), e))?;
                if row(t) {
                    o.offsets.push(o.at);
                    o.firsts.push(first_id);
                }
                o.at += 4 + s.len() as u64;
                o.len += 1;
                o.text_bytes += s.len() as u64;
                let last = o.last.get_or_insert_with(Vec::new);
                last.clear();
                last.extend_from_slice(&s);
            }
            finals[t] = (o.len - 1) as u32;
        }
        if finals.iter().any(|&f| f != u32::MAX) {
            let k = windows.partition_point(|w| w.hi <= id as u64);
            let win = windows
                .get(k)
                .filter(|w| w.lo <= id as u64)
                .ok_or_else(|| {
                    Error::Invalid(format!("provisional string id {id} is in no spilled run"))
                })?;
            let w = &mut map_out[k];
            let io = |e| Error::io(Some(&win.path), e);
            w.write_all(&((id as u64 - win.lo) as u32).to_le_bytes())
                .map_err(io)?;
            for f in &finals {
                w.write_all(&f.to_le_bytes()).map_err(io)?;
            }
        }
        done = last_any.replace(s);
    }
    for (w, win) in map_out.iter_mut().zip(&windows) {
        w.flush().map_err(|e| Error::io(Some(&win.path), e))?;
    }
    drop(map_out);
    // The runs are not read again (the tables are): free their disk space.
    drop(merger);
    for p in &runs {
        let _ = std::fs::remove_file(p);
    }
    let mut tables = Vec::with_capacity(outs.len());
    let mut remaps = Vec::with_capacity(outs.len());
    for (t, o) in outs.into_iter().enumerate() {
        let Out {
            mut w,
            path,
            len,
            text_bytes,
            offsets,
            firsts,
            ..
        } = o;
        w.flush().map_err(|e| Error::io(Some(&path), e))?;
        drop(w);
        let path = if row(t) {
            let (path, remap) = to_row_order(dir, t, &path, &offsets, &firsts)?;
            remaps.push(Some(remap));
            path
        } else {
            remaps.push(None);
            path
        };
        tables.push(SortedTable {
            len,
            text_bytes,
            src: TableSrc::File(path),
        });
    }
    let remaps = Arc::new(remaps);
    for w in &mut windows {
        w.remaps = remaps.clone();
    }
    Ok((tables, IdMaps::Windows(windows)))
}

/// Rewrite the sorted table file `sorted` (strings at `offsets`) in the
/// order of `firsts` (each string's first provisional id): the new file
/// and the row-order id of each sorted id. Removes `sorted`.
fn to_row_order(
    dir: &SpillDir,
    t: usize,
    sorted: &Path,
    offsets: &[u64],
    firsts: &[u32],
) -> Result<(PathBuf, Vec<u32>)> {
    use std::io::{Seek, SeekFrom};
    let mut order: Vec<u32> = (0..firsts.len() as u32).collect();
    order.sort_unstable_by_key(|&i| firsts[i as usize]);
    let mut remap = vec![0u32; firsts.len()];
    for (pos, &i) in order.iter().enumerate() {
        remap[i as usize] = pos as u32;
    }
    let path = dir.path().join(format!("table-{t}-rows"));
    let io_in = |e| Error::io(Some(sorted), e);
    let mut r = File::open(sorted).map_err(io_in)?;
    let f = File::create(&path).map_err(|e| Error::io(Some(&path), e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut buf = Vec::new();
    for &i in &order {
        r.seek(SeekFrom::Start(offsets[i as usize]))
            .map_err(io_in)?;
        if !read_str(&mut r, &mut buf).map_err(io_in)? {
            return Err(io_in(std::io::ErrorKind::UnexpectedEof.into()));
        }
        write_len_str(&mut w, &buf).map_err(|e| Error::io(Some(&path), e))?;
    }
    w.flush().map_err(|e| Error::io(Some(&path), e))?;
    drop(r);
    let _ = std::fs::remove_file(sorted);
    Ok((path, remap))
}

fn write_len_str(w: &mut impl Write, s: &[u8]) -> std::io::Result<()> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(s: &Strings, t: &SortedTable) -> Vec<String> {
        let mut v = Vec::new();
        s.visit(t, |_, b| {
            v.push(String::from_utf8(b.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        v
    }

    /// Interning the same sequence with and without spills gives the same
    /// tables and the same final id for every occurrence.
    #[test]
    fn spilled_runs_sort_like_memory() {
        let dir = tempfile::tempdir().unwrap();
        let words: Vec<String> = (0..2000u32)
            .map(|i| format!("w{}", (i * 7919) % 613))
            .collect();
        let run = |policy: Option<SpillPolicy>, row: bool| {
            let mut int = Interner::new(policy);
            let mut occ = Vec::new();
            for (k, w) in words.iter().enumerate() {
                let id = match int.get(w) {
                    Some(id) => id,
                    None => int.insert(w),
                };
                occ.push((k % 3 == 0, id));
                if int.over_budget(0) {
                    int.spill().unwrap();
                }
            }
            let spilled = int.spilled();
            let stats = int.stats();
            let strings = int.finish().unwrap();
            let mut used = vec![IdSet::new(strings.ids()), IdSet::new(strings.ids())];
            for &(t, id) in &occ {
                used[t as usize].insert(id);
            }
            let (tables, maps) = strings
                .sort_tables(&used, &[false, row], usize::MAX)
                .unwrap();
            // Spilled, the maps are files, a window of runs each.
            let windows = match &maps {
                IdMaps::Dense(_) => 0,
                IdMaps::Windows(w) => w.len(),
            };
            assert_eq!(windows > 1, spilled, "{windows} windows");
            let maps = maps.to_dense(strings.ids()).unwrap();
            let finals: Vec<u32> = occ
                .iter()
                .map(|&(t, id)| maps[t as usize][id as usize])
                .collect();
            let texts: Vec<Vec<String>> = tables.iter().map(|t| collect(&strings, t)).collect();
            (spilled, stats, finals, texts)
        };
        let policy = Some(SpillPolicy {
            budget: 2000,
            dir: dir.path().to_path_buf(),
        });
        let mem = run(None, false);
        let spill = run(policy.clone(), false);
        assert!(!mem.0);
        assert!(spill.0);
        assert!(spill.1.string_runs > 5, "{:?}", spill.1);
        assert_eq!(mem.2, spill.2);
        assert_eq!(mem.3, spill.3);
        // Table 1 in row order: the order of first use, spilled or not.
        let (mem_rows, spill_rows) = (run(None, true), run(policy, true));
        assert_eq!(mem_rows.2, spill_rows.2);
        assert_eq!(mem_rows.3, spill_rows.3);
        assert_eq!(mem_rows.3[0], mem.3[0]);
        let mut firsts: Vec<String> = Vec::new();
        for (k, w) in words.iter().enumerate() {
            if k % 3 == 0 && !firsts.contains(w) {
                firsts.push(w.clone());
            }
        }
        // A word first used by table 0 comes where table 0 first used it.
        let mut by_first: Vec<String> = Vec::new();
        for w in &words {
            if !by_first.contains(w) {
                by_first.push(w.clone());
            }
        }
        by_first.retain(|w| firsts.contains(w));
        assert_eq!(mem_rows.3[1], by_first);
        let mut all: Vec<&String> = words.iter().collect();
        all.sort();
        all.dedup();
        assert!(mem.3[0].len() + mem.3[1].len() >= all.len());
        // Spill files are gone once everything is dropped.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A merge holds one string of each run: runs whose longest strings
    /// do not fit the merge's buffers together are merged first (two at a
    /// time at least), and the strings come out sorted as before.
    #[test]
    fn runs_of_long_strings_merge_until_their_heads_fit() {
        let dir = tempfile::tempdir().unwrap();
        let spill_dir = SpillDir::new(dir.path()).unwrap();
        let mut int = Interner::new(Some(SpillPolicy {
            budget: 1,
            dir: dir.path().to_path_buf(),
        }));
        // Ten runs of one 100,000-byte string each.
        let long: Vec<String> = (0..10u8)
            .map(|i| char::from(b'a' + (i * 7) % 10).to_string().repeat(100_000))
            .collect();
        for s in &long {
            int.insert(s);
            int.spill().unwrap();
        }
        let Strings::Runs { runs, longest, .. } = int.finish().unwrap() else {
            panic!("spilled");
        };
        assert_eq!(longest, vec![100_000; 10]);
        let pairs = |runs: &[PathBuf]| runs.iter().cloned().zip(longest.iter().copied()).collect();
        // Buffers for every head: nothing to merge.
        let kept = reduce_runs(&spill_dir, pairs(&runs), 1_000_000).unwrap();
        assert_eq!(kept, runs);
        // Buffers for three heads: merged until at most three runs are left.
        let merged = reduce_runs(&spill_dir, pairs(&runs), 300_000).unwrap();
        assert!(merged.len() <= 3, "{} runs", merged.len());
        let mut m = Merger::new(&merged, 1 << 16).unwrap();
        let mut out = Vec::new();
        let mut done = None;
        while let Some((s, id)) = m.next(done.take()).unwrap() {
            out.push((String::from_utf8(s.clone()).unwrap(), id));
            done = Some(s);
        }
        let mut want: Vec<(String, u32)> = long.iter().cloned().zip(0..).collect();
        want.sort();
        assert_eq!(out, want);
        // Buffers for less than two: merged down to one run.
        let short: Vec<(PathBuf, usize)> = merged.iter().cloned().map(|p| (p, 100_000)).collect();
        assert_eq!(reduce_runs(&spill_dir, short, 10).unwrap().len(), 1);
    }

    #[test]
    fn spilled_limit_counts_distinct_strings() {
        let dir = tempfile::tempdir().unwrap();
        let mut int = Interner::new(Some(SpillPolicy {
            budget: 1,
            dir: dir.path().to_path_buf(),
        }));
        let mut set_ids = Vec::new();
        for w in ["a", "b", "a", "c", "b"] {
            set_ids.push(int.insert(w));
            int.spill().unwrap();
        }
        let strings = int.finish().unwrap();
        let mut used = IdSet::new(strings.ids());
        for &i in &set_ids {
            used.insert(i);
        }
        let (t, maps) = strings
            .sort_tables(std::slice::from_ref(&used), &[], 3)
            .unwrap();
        let maps = maps.to_dense(strings.ids()).unwrap();
        assert_eq!(t[0].len, 3);
        assert_eq!(
            set_ids
                .iter()
                .map(|&i| maps[0][i as usize])
                .collect::<Vec<_>>(),
            vec![0, 1, 0, 2, 1]
        );
        assert!(strings.sort_tables(&[used], &[], 2).is_err());
    }
}
