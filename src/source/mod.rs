//! Byte sources: where a snapshot's bytes live, and the one way they are read.
//!
//! Every read of a snapshot goes through [`ByteSource::read_ranges`]: a set
//! of byte ranges in, one shared buffer ([`Bytes`]) per range out. The
//! reader never asks for the whole file, so the same reader works over
//! memory ([`MemorySource`]), a file read with positional reads
//! ([`FileSource`]), a memory map ([`MmapSource`]) and, through the
//! [`AsyncByteSource`] twin, over sources that fetch by byte range from
//! elsewhere (an HTTP server, an object store, a browser's `fetch`).
//!
//! A source reports its length once (the length it had when it was opened)
//! and, where it can, a version tag (like an HTTP `ETag`) that changes when
//! the bytes change. A read past the length is an [`Error::Truncated`]; a
//! source that changed underneath shows up as a checksum mismatch when the
//! reader checks the section it read.

use crate::error::{Error, Result};
use bytes::Bytes;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(target_arch = "wasm32"))]
mod file;
#[cfg(not(target_arch = "wasm32"))]
mod mmap;

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "s3")]
mod s3;

#[cfg(not(target_arch = "wasm32"))]
pub use file::FileSource;
#[cfg(feature = "http")]
pub use http::{HttpClient, HttpOptions, HttpSource};
#[cfg(not(target_arch = "wasm32"))]
pub use mmap::MmapSource;
#[cfg(feature = "s3")]
pub use s3::{Listed, S3Client, S3Source, parse_s3_url};

/// A boxed future that can be sent between threads: what the async methods
/// of [`AsyncByteSource`] return (the trait stays object-safe and the library
/// needs no async runtime).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Random access to the bytes of one snapshot, synchronously.
///
/// Object-safe: a snapshot holds an `Arc<dyn ByteSource>`.
pub trait ByteSource: Send + Sync + std::fmt::Debug {
    /// Length of the source in bytes.
    fn len(&self) -> u64;

    /// True when the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of each range, in the order asked. A range that reaches
    /// past [`ByteSource::len`], or that the source can no longer deliver
    /// in full, is an [`Error::Truncated`].
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>>;

    /// The bytes of one range.
    fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        let mut v = self.read_ranges(std::slice::from_ref(&range))?;
        v.pop()
            .ok_or_else(|| truncated("byte range", &range, self.len()))
    }

    /// A tag that changes when the bytes change (an `ETag`; for a file, its
    /// size and modification time when opened), if the source knows one.
    fn version(&self) -> Option<String> {
        None
    }

    /// True for a source where each read is a round trip (HTTP, an object
    /// store): opening it then reads only the file's tail, and the 16-byte
    /// header is checked with the first read that follows (it rides along
    /// with that read) instead of costing a request of its own.
    fn is_remote(&self) -> bool {
        false
    }

    /// Reads of `ranges` are coming (the sections of a node about to be
    /// decoded). A source that holds only some of its bytes and fails a
    /// read of the others (the browser's store of fetched ranges, whose
    /// caller fetches what a call missed and runs it again) answers now,
    /// without reading, with the error such a read would give, so that the
    /// decode fails before it allocates for those bytes. Every other
    /// source: `Ok(())` (the default).
    fn expect_reads(&self, ranges: &[Range<u64>]) -> Result<()> {
        let _ = ranges;
        Ok(())
    }
}

impl<S: ByteSource + ?Sized> ByteSource for Arc<S> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        (**self).read_ranges(ranges)
    }
    fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        (**self).read_range(range)
    }
    fn version(&self) -> Option<String> {
        (**self).version()
    }
    fn is_remote(&self) -> bool {
        (**self).is_remote()
    }
    fn expect_reads(&self, ranges: &[Range<u64>]) -> Result<()> {
        (**self).expect_reads(ranges)
    }
}

/// Random access to the bytes of one snapshot, asynchronously: the twin of
/// [`ByteSource`] for sources that fetch over a network. Object-safe
/// (`Arc<dyn AsyncByteSource>`); every method returns a [`BoxFuture`].
///
/// Any [`ByteSource`] is also an async source through [`AsAsync`].
pub trait AsyncByteSource: Send + Sync + std::fmt::Debug {
    /// Length of the source in bytes.
    fn len(&self) -> BoxFuture<'_, Result<u64>>;

    /// True when the source holds no bytes.
    fn is_empty(&self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move { Ok(self.len().await? == 0) })
    }

    /// The bytes of each range, in the order asked (see
    /// [`ByteSource::read_ranges`]). A source may fetch them in parallel.
    fn read_ranges<'a>(&'a self, ranges: &'a [Range<u64>]) -> BoxFuture<'a, Result<Vec<Bytes>>>;

    /// The last `n` bytes (all of them when the source is shorter) and the
    /// source's length: one suffix-range request for a remote source, which
    /// learns the length from the same answer. The default asks for the
    /// length first.
    fn read_tail(&self, n: u64) -> BoxFuture<'_, Result<(Bytes, u64)>> {
        Box::pin(async move {
            let len = self.len().await?;
            let range = len.saturating_sub(n)..len;
            let mut v = self.read_ranges(std::slice::from_ref(&range)).await?;
            let tail = v.pop().ok_or_else(|| truncated("tail", &range, len))?;
            Ok((tail, len))
        })
    }

    /// A tag that changes when the bytes change (see [`ByteSource::version`]).
    fn version(&self) -> Option<String> {
        None
    }
}

/// Any synchronous source, seen as an async one (each future is ready at
/// once).
#[derive(Debug, Clone)]
pub struct AsAsync<S: ?Sized>(pub Arc<S>);

impl<S: ByteSource + ?Sized> AsyncByteSource for AsAsync<S> {
    fn len(&self) -> BoxFuture<'_, Result<u64>> {
        let n = self.0.len();
        Box::pin(async move { Ok(n) })
    }
    fn read_ranges<'a>(&'a self, ranges: &'a [Range<u64>]) -> BoxFuture<'a, Result<Vec<Bytes>>> {
        let r = self.0.read_ranges(ranges);
        Box::pin(async move { r })
    }
    fn version(&self) -> Option<String> {
        self.0.version()
    }
}

/// A snapshot held in memory. Reads are zero-copy slices.
#[derive(Debug, Clone)]
pub struct MemorySource {
    bytes: Bytes,
}

impl MemorySource {
    /// A source over `bytes` (a `Vec<u8>`, a `Bytes`, a `&'static [u8]`).
    pub fn new(bytes: impl Into<Bytes>) -> MemorySource {
        MemorySource {
            bytes: bytes.into(),
        }
    }
}

impl ByteSource for MemorySource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        slice_ranges(&self.bytes, ranges)
    }
}

/// Zero-copy slices of `whole` (shared by the memory and mmap sources).
pub(crate) fn slice_ranges(whole: &Bytes, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
    let len = whole.len() as u64;
    ranges
        .iter()
        .map(|r| {
            check_range(r, len)?;
            Ok(whole.slice(r.start as usize..r.end as usize))
        })
        .collect()
}

/// Refuse a range that is reversed or reaches past `len`.
pub(crate) fn check_range(r: &Range<u64>, len: u64) -> Result<()> {
    if r.start > r.end || r.end > len {
        return Err(truncated("byte range", r, len));
    }
    Ok(())
}

/// The reads of a remote source that fetched the file's tail when it opened:
/// each range checked against `len`; what the tail (from `tail_start`) holds,
/// and empty ranges, cost nothing; the rest is asked of `fetch` at once, in
/// order.
#[cfg(any(feature = "http", feature = "s3"))]
pub(crate) fn read_with_tail(
    ranges: &[Range<u64>],
    len: u64,
    tail_start: u64,
    tail: &Bytes,
    fetch: impl FnOnce(&[Range<u64>]) -> Result<Vec<Bytes>>,
) -> Result<Vec<Bytes>> {
    for r in ranges {
        check_range(r, len)?;
    }
    let in_tail = |r: &Range<u64>| r.start >= tail_start || r.start == r.end;
    let need: Vec<Range<u64>> = ranges.iter().filter(|r| !in_tail(r)).cloned().collect();
    let mut fetched = fetch(&need)?.into_iter();
    ranges
        .iter()
        .map(|r| {
            if r.start == r.end {
                Ok(Bytes::new())
            } else if in_tail(r) {
                let at = (r.start - tail_start) as usize;
                Ok(tail.slice(at..at + (r.end - r.start) as usize))
            } else {
                fetched
                    .next()
                    .ok_or_else(|| truncated("byte range", r, len))
            }
        })
        .collect()
}

fn truncated(what: &str, r: &Range<u64>, len: u64) -> Error {
    Error::Truncated {
        what: what.into(),
        start: r.start,
        end: r.end,
        len,
    }
}

/// What remote sources did: shared by the sources that one reader uses
/// (a manifest and its objects count into the same counters).
#[derive(Debug, Default)]
pub struct NetCounters {
    requests: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
}

/// A copy of [`NetCounters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Requests that were retries of a failed one.
    pub retries: u64,
}

impl NetCounters {
    /// The counts so far.
    pub fn get(&self) -> NetStats {
        NetStats {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    /// Count one request.
    pub fn add_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one retry.
    pub fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Count bytes received.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Set every count to zero.
    pub fn reset(&self) {
        for c in [&self.requests, &self.bytes, &self.retries] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Run `f` on every item, at most `parallel` at a time (on scoped
/// threads, each taking the next item when it is done with one, so one
/// slow item does not hold the others back); the results in order, or the
/// error of the first item (in order) that failed. After a failure no
/// item is started.
#[cfg(not(target_arch = "wasm32"))]
pub fn parallel_map<I: Sync, T: Send>(
    items: &[I],
    parallel: usize,
    f: impl Fn(&I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if items.len() <= 1 || parallel <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let got: Option<Vec<(usize, Result<T>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..parallel.min(items.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    // Every item before one taken was taken (and runs to
                    // its end): the first failure in order is among those
                    // that ran.
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            break;
                        };
                        let r = f(item);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        mine.push((i, r));
                    }
                    mine
                })
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for h in handles {
            all.extend(h.join().ok()?);
        }
        Some(all)
    });
    let mut got = got.ok_or_else(|| Error::Invalid("a worker thread panicked".into()))?;
    got.sort_unstable_by_key(|&(i, _)| i);
    got.into_iter().map(|(_, r)| r).collect()
}

/// Merge ranges whose gap is at most `max_gap` bytes (overlapping and
/// touching ones always), so that one read serves several nearby ranges.
/// Returns the merged ranges, sorted by start. Reversed ranges are kept as
/// they are (the source refuses them).
pub fn coalesce_ranges(ranges: &[Range<u64>], max_gap: u64) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.to_vec();
    sorted.sort_unstable_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last)
                if r.start >= last.start
                    && last.start <= last.end
                    && r.start <= r.end
                    && r.start <= last.end.saturating_add(max_gap) =>
            {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// Read `ranges` through `source` with nearby ranges merged (gap at most
/// `max_gap`): one `read_ranges` call; each asked range comes back as a
/// zero-copy slice of the merged read that holds it.
pub fn read_coalesced(
    source: &dyn ByteSource,
    ranges: &[Range<u64>],
    max_gap: u64,
) -> Result<Vec<Bytes>> {
    let merged = coalesce_ranges(ranges, max_gap);
    let got = source.read_ranges(&merged)?;
    split_coalesced(ranges, &merged, &got)
}

/// Cut the asked `ranges` back out of the merged reads.
pub(crate) fn split_coalesced(
    ranges: &[Range<u64>],
    merged: &[Range<u64>],
    got: &[Bytes],
) -> Result<Vec<Bytes>> {
    ranges
        .iter()
        .map(|r| {
            let i = merged.partition_point(|m| m.start <= r.start);
            let m = i
                .checked_sub(1)
                .map(|i| (&merged[i], &got[i]))
                .filter(|(m, _)| r.start <= r.end && r.end <= m.end);
            match m {
                Some((m, b)) if b.len() as u64 == m.end - m.start => {
                    Ok(b.slice((r.start - m.start) as usize..(r.end - m.start) as usize))
                }
                _ => Err(truncated("byte range", r, 0)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_order_and_reports_the_first_failure() {
        let items: Vec<u64> = (0..40).collect();
        // Uneven work: later items finish first.
        let slow = |&i: &u64| -> Result<u64> {
            std::thread::sleep(std::time::Duration::from_micros((40 - i) * 50));
            Ok(i * i)
        };
        for threads in [1, 2, 3, 8, 64] {
            let got = parallel_map(&items, threads, slow).expect("no failure");
            assert_eq!(got, items.iter().map(|i| i * i).collect::<Vec<_>>());
        }
        // Items 7 and 20 fail; 20 may fail first in time, 7 is first in order.
        let failing = |&i: &u64| -> Result<u64> {
            std::thread::sleep(std::time::Duration::from_micros((40 - i) * 50));
            if i == 7 || i == 20 {
                return Err(Error::Invalid(format!("item {i}")));
            }
            Ok(i)
        };
        for threads in [1, 2, 3, 8, 64] {
            let e = parallel_map(&items, threads, failing).expect_err("a failure");
            assert_eq!(e.to_string(), Error::Invalid("item 7".into()).to_string());
        }
        let none: Vec<u64> = Vec::new();
        assert!(parallel_map(&none, 4, slow).expect("empty").is_empty());
    }

    #[test]
    fn coalesce_merges_close_and_overlapping_ranges() {
        assert_eq!(coalesce_ranges(&[], 10), Vec::<Range<u64>>::new());
        assert_eq!(coalesce_ranges(&[0..5, 1..2], 10), vec![0..5]);
        // Gap of 5 <= 10: merged; gap of 11 > 10: kept apart.
        assert_eq!(coalesce_ranges(&[0..5, 10..20], 10), vec![0..20]);
        assert_eq!(coalesce_ranges(&[0..5, 16..20], 10), vec![0..5, 16..20]);
        // Unsorted input, overlaps, containment, duplicates.
        assert_eq!(
            coalesce_ranges(&[40..50, 0..10, 5..8, 8..12, 40..50, 100..101], 0),
            vec![0..12, 40..50, 100..101]
        );
        // Touching ranges merge even with no gap allowed.
        assert_eq!(coalesce_ranges(&[0..5, 5..9], 0), vec![0..9]);
        // Empty ranges are harmless.
        assert_eq!(coalesce_ranges(&[3..3, 0..2], 1), vec![0..3]);
        // No overflow at the top of the range.
        assert_eq!(
            coalesce_ranges(&[0..u64::MAX, 5..6], u64::MAX),
            vec![0..u64::MAX]
        );
    }

    #[test]
    fn coalesce_covers_every_input_range() {
        // A small exhaustive-ish check: every input is inside one output,
        // outputs are sorted and separated by more than the gap.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..500 {
            let n = (next() % 8) as usize;
            let gap = next() % 6;
            let rs: Vec<Range<u64>> = (0..n)
                .map(|_| {
                    let s = next() % 100;
                    s..s + next() % 10
                })
                .collect();
            let out = coalesce_ranges(&rs, gap);
            for r in &rs {
                assert!(out.iter().any(|o| o.start <= r.start && r.end <= o.end));
            }
            for w in out.windows(2) {
                assert!(w[1].start > w[0].end + gap, "{out:?} gap {gap}");
            }
        }
    }

    #[test]
    fn memory_source_reads_and_refuses_out_of_range() {
        let s = MemorySource::new((0u8..100).collect::<Vec<u8>>());
        assert_eq!(s.len(), 100);
        let v = s.read_ranges(&[0..3, 97..100, 50..50]).unwrap();
        assert_eq!(&v[0][..], &[0, 1, 2]);
        assert_eq!(&v[1][..], &[97, 98, 99]);
        assert!(v[2].is_empty());
        assert!(matches!(
            s.read_range(99..101),
            Err(Error::Truncated {
                start: 99,
                end: 101,
                len: 100,
                ..
            })
        ));
        #[expect(clippy::reversed_empty_ranges, reason = "testing a reversed range")]
        let reversed = 5..4;
        assert!(s.read_range(reversed).is_err());
    }

    #[test]
    fn read_coalesced_slices_each_asked_range() {
        let s = MemorySource::new((0u8..=255).collect::<Vec<u8>>());
        let asked = [200..210, 0..4, 2..6, 100..101, 6..6];
        let got = read_coalesced(&s, &asked, 16).unwrap();
        for (r, b) in asked.iter().zip(&got) {
            let want: Vec<u8> = (r.start as u8..r.end as u8).collect();
            assert_eq!(&b[..], &want[..]);
        }
        assert!(read_coalesced(&s, &[0..1, 250..300], 0).is_err());
    }

    #[test]
    fn sync_sources_are_async_sources() {
        let s: Arc<dyn ByteSource> = Arc::new(MemorySource::new(vec![1u8, 2, 3, 4, 5]));
        let a: Arc<dyn AsyncByteSource> = Arc::new(AsAsync(s));
        let (tail, len) = block_on(a.read_tail(2)).unwrap();
        assert_eq!((&tail[..], len), (&[4u8, 5][..], 5));
        let (tail, _) = block_on(a.read_tail(99)).unwrap();
        assert_eq!(&tail[..], &[1, 2, 3, 4, 5]);
        let v = block_on(a.read_ranges(&[1..2, 4..5])).unwrap();
        assert_eq!((&v[0][..], &v[1][..]), (&[2u8][..], &[5u8][..]));
        assert!(!block_on(a.is_empty()).unwrap());
    }

    /// Poll a future that never waits (the sync adapter's) to completion.
    pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
