//! [`RangeStore`]: a synchronous byte source over the ranges fetched so far.
//!
//! The browser fetches asynchronously, the reader decodes synchronously.
//! The store bridges the two without an async runtime: every decode runs
//! against the bytes already fetched; a read of bytes not fetched yet fails
//! and records the range, the caller (JavaScript) fetches the recorded
//! ranges with `Range` requests, [`RangeStore::insert`]s them and runs the
//! decode again. Planned reads ([`crate::Viewer::plan_columns`],
//! [`crate::Viewer::plan_rows`]) fetch most bytes ahead in one round, so
//! the retry loop is the exception, not the rule.

use bytes::Bytes;
use colsnap::source::ByteSource;
use colsnap::{Error, Result};
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Copies the bytes of a range the host holds (see [`RangeStore::lend`]).
pub type Host = Box<dyn Fn(u64, u64) -> Option<Vec<u8>> + Send + Sync>;

/// Fetched byte ranges of one file of known length.
pub struct RangeStore {
    len: u64,
    /// Ranges whose bytes the host keeps until a read asks for them.
    lent: Mutex<Vec<Range<u64>>>,
    host: Option<Host>,
    /// (start, bytes) of each range, by start, one per start (a sorted
    /// vector: no B-tree code in the module for a few hundred ranges).
    got: Mutex<Vec<(u64, Bytes)>>,
    /// The longest range ever inserted: a read looks only at the ranges
    /// starting at most this far before it (not at every range held).
    longest: AtomicU64,
    missing: Mutex<Vec<Range<u64>>>,
}

/// The length and how many ranges are held (not their bytes: a
/// `ByteSource` must be `Debug`, and the bytes' own formatting is code the
/// page would download for nothing).
impl std::fmt::Debug for RangeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranges = self.got.lock().map(|g| g.len()).unwrap_or(0);
        f.debug_struct("RangeStore")
            .field("len", &self.len)
            .field("ranges", &ranges)
            .finish_non_exhaustive()
    }
}

impl RangeStore {
    /// An empty store for a file of `len` bytes.
    pub fn new(len: u64) -> RangeStore {
        RangeStore {
            len,
            lent: Mutex::new(Vec::new()),
            host: None,
            got: Mutex::new(Vec::new()),
            longest: AtomicU64::new(0),
            missing: Mutex::new(Vec::new()),
        }
    }

    /// An empty store whose `host` copies in the bytes of ranges it
    /// lends ([`RangeStore::lend`]).
    pub fn with_host(len: u64, host: Host) -> RangeStore {
        RangeStore {
            host: Some(host),
            ..RangeStore::new(len)
        }
    }

    /// The host holds the file's bytes `start..end` (clipped to the file's
    /// length) and copies them in when a read asks for them (a section,
    /// while it is decoded): they enter the memory after what the decode
    /// allocates first (a column's arrays), not before. Without a host,
    /// nothing is lent.
    pub fn lend(&self, start: u64, end: u64) {
        let end = end.min(self.len);
        if self.host.is_none() || start >= end {
            return;
        }
        if let Ok(mut l) = self.lent.lock() {
            l.push(start..end);
        }
    }

    /// A copy of the lent bytes of `r`, when one lent range holds them.
    fn borrow(&self, r: &Range<u64>) -> Option<Bytes> {
        let host = self.host.as_ref()?;
        if !self.lends(r) {
            return None;
        }
        let v = host(r.start, r.end)?;
        (v.len() as u64 == r.end - r.start).then(|| Bytes::from(v))
    }

    /// True when one lent range holds `r`.
    fn lends(&self, r: &Range<u64>) -> bool {
        self.lent
            .lock()
            .is_ok_and(|l| l.iter().any(|x| x.start <= r.start && r.end <= x.end))
    }

    /// Keep `bytes`, the file's bytes from offset `start` on (clipped to
    /// the file's length).
    pub fn insert(&self, start: u64, bytes: Bytes) {
        if start >= self.len || bytes.is_empty() {
            return;
        }
        let keep = (self.len - start).min(bytes.len() as u64) as usize;
        if let Ok(mut g) = self.got.lock() {
            let kept = bytes.slice(..keep);
            match g.binary_search_by_key(&start, |e| e.0) {
                Ok(i) if g[i].1.len() < keep => g[i].1 = kept,
                Ok(_) => return,
                Err(i) => g.insert(i, (start, kept)),
            }
            self.longest.fetch_max(keep as u64, Ordering::Relaxed);
        }
    }

    /// The bytes of `r` when one fetched range holds them.
    pub fn get(&self, r: &Range<u64>) -> Option<Bytes> {
        let g = self.got.lock().ok()?;
        let from = r.end.saturating_sub(self.longest.load(Ordering::Relaxed));
        if from > r.start {
            return None; // longer than every range held
        }
        // The ranges starting in `from..=r.start`, the last first.
        let hi = g.partition_point(|e| e.0 <= r.start);
        let lo = g[..hi].partition_point(|e| e.0 < from);
        g[lo..hi].iter().rev().find_map(|(s, b)| {
            let end = s + b.len() as u64;
            (end >= r.end).then(|| b.slice((r.start - s) as usize..(r.end - s) as usize))
        })
    }

    /// True when every byte of `r` is held or lent.
    pub fn has(&self, r: &Range<u64>) -> bool {
        r.is_empty() || self.get(r).is_some() || self.lends(r)
    }

    /// Ranges that reads asked for and did not find since the last call,
    /// sorted and merged.
    pub fn take_missing(&self) -> Vec<Range<u64>> {
        let v = self
            .missing
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default();
        colsnap::source::coalesce_ranges(&v, 0)
    }

    /// Of `ranges`, those not held yet.
    pub fn not_held(&self, ranges: &[Range<u64>]) -> Vec<Range<u64>> {
        ranges.iter().filter(|r| !self.has(r)).cloned().collect()
    }

    /// Drop the fetched ranges lying inside `ranges` (once decoded, the
    /// bytes of a column are not needed: a later read of them misses and
    /// is fetched again, from the browser's cache). Returns the bytes
    /// dropped.
    pub fn release(&self, ranges: &[Range<u64>]) -> u64 {
        if let Ok(mut l) = self.lent.lock() {
            l.retain(|x| !ranges.iter().any(|r| r.start <= x.start && x.end <= r.end));
        }
        let Ok(mut g) = self.got.lock() else {
            return 0;
        };
        let mut dropped = 0;
        for r in ranges {
            // Emptied rather than removed (no entry ever ends past an
            // empty one's start, so reads are unchanged; an insert at the
            // same start replaces it).
            let lo = g.partition_point(|e| e.0 < r.start);
            let hi = lo + g[lo..].partition_point(|e| e.0 < r.end);
            for (s, b) in &mut g[lo..hi] {
                if *s + b.len() as u64 <= r.end {
                    dropped += b.len() as u64;
                    *b = Bytes::new();
                }
            }
        }
        dropped
    }

    /// Bytes held at the end of the file: the longest fetched range that
    /// ends at its length (0 when none does).
    pub fn held_tail(&self) -> u64 {
        self.got
            .lock()
            .map(|g| {
                g.iter()
                    .filter(|(s, b)| s + b.len() as u64 == self.len)
                    .map(|(s, _)| self.len - s)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Bytes held (ranges fetched more than once count each time).
    pub fn held_bytes(&self) -> u64 {
        self.got
            .lock()
            .map(|g| g.iter().map(|(_, b)| b.len() as u64).sum())
            .unwrap_or(0)
    }
}

impl ByteSource for RangeStore {
    fn len(&self) -> u64 {
        self.len
    }

    /// The ranges neither held nor lent are recorded as missing and the
    /// call fails, as a read of them would, before the decode allocates.
    fn expect_reads(&self, ranges: &[Range<u64>]) -> Result<()> {
        let absent: Vec<Range<u64>> = ranges
            .iter()
            .filter(|r| r.end <= self.len && !self.has(r))
            .cloned()
            .collect();
        if absent.is_empty() {
            return Ok(());
        }
        Err(self.miss(absent))
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(ranges.len());
        let mut absent = Vec::new();
        for r in ranges {
            if r.start > r.end || r.end > self.len {
                return Err(Error::Truncated {
                    what: "byte range".into(),
                    start: r.start,
                    end: r.end,
                    len: self.len,
                });
            }
            match self.get(r).or_else(|| self.borrow(r)) {
                Some(b) => out.push(b),
                None if r.is_empty() => out.push(Bytes::new()),
                None => absent.push(r.clone()),
            }
        }
        if absent.is_empty() {
            return Ok(out);
        }
        Err(self.miss(absent))
    }
}

impl RangeStore {
    /// Record `absent` as missing; the error a read of them gives.
    fn miss(&self, absent: Vec<Range<u64>>) -> Error {
        let msg = format!(
            "bytes {} not fetched yet",
            absent
                .iter()
                .map(|r| format!("{}..{}", r.start, r.end))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Ok(mut m) = self.missing.lock() {
            m.extend(absent);
        }
        Error::Invalid(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_slices_of_fetched_ranges_and_records_the_rest() {
        let s = RangeStore::new(100);
        s.insert(10, Bytes::from_static(&[1, 2, 3, 4, 5]));
        assert_eq!(s.read_range(11..13).unwrap().as_ref(), &[2, 3]);
        assert!(s.read_ranges(&[11..13, 14..16, 40..50]).is_err());
        assert_eq!(s.take_missing(), vec![14..16, 40..50]);
        assert!(s.take_missing().is_empty());
        assert!(s.read_range(90..101).is_err());
        assert!(s.take_missing().is_empty(), "past the end is not missing");
        // Clipped to the length.
        assert_eq!(s.held_tail(), 0);
        s.insert(95, Bytes::from(vec![7; 20]));
        assert_eq!(s.read_range(95..100).unwrap().len(), 5);
        assert_eq!(s.held_tail(), 5);
        assert_eq!(s.not_held(&[10..15, 9..12, 96..100]), vec![9..12]);
        // Released: only ranges wholly inside, then read again as misses.
        assert_eq!(s.release(std::slice::from_ref(&(11..100))), 5);
        assert_eq!(s.release(std::slice::from_ref(&(0..14))), 0);
        assert_eq!(s.release(std::slice::from_ref(&(10..15))), 5);
        assert!(s.read_range(11..13).is_err());
        assert_eq!(s.take_missing(), vec![11..13]);
        assert_eq!(s.held_bytes(), 0);
    }

    #[test]
    fn lent_ranges_are_copied_in_when_read_and_dropped_on_release() {
        use std::sync::atomic::AtomicUsize;
        static COPIES: AtomicUsize = AtomicUsize::new(0);
        let file: Vec<u8> = (0..200u8).collect();
        let s = RangeStore::with_host(
            200,
            Box::new(move |a, b| {
                COPIES.fetch_add(1, Ordering::Relaxed);
                file.get(a as usize..b as usize).map(<[u8]>::to_vec)
            }),
        );
        s.lend(50, 120);
        assert_eq!(COPIES.load(Ordering::Relaxed), 0, "lending copies nothing");
        assert!(s.has(&(60..70)) && !s.has(&(40..60)));
        assert_eq!(s.not_held(&[55..65, 110..130]), vec![110..130]);
        assert_eq!(s.read_range(60..63).unwrap().as_ref(), &[60, 61, 62]);
        assert_eq!(COPIES.load(Ordering::Relaxed), 1);
        assert_eq!(s.held_bytes(), 0, "a copy read is not kept");
        // Partly outside every lent range: missing, as for fetched ranges.
        assert!(s.read_range(100..130).is_err());
        assert_eq!(s.take_missing(), vec![100..130]);
        // A decode told what it will read fails first when any is absent,
        // copying nothing.
        let copies = COPIES.load(Ordering::Relaxed);
        assert!(s.expect_reads(&[55..60, 60..100]).is_ok());
        assert!(s.expect_reads(&[55..60, 130..140]).is_err());
        assert_eq!(s.take_missing(), vec![130..140]);
        assert_eq!(COPIES.load(Ordering::Relaxed), copies);
        s.release(std::slice::from_ref(&(50..120)));
        assert!(s.read_range(60..63).is_err());
        assert_eq!(s.take_missing(), vec![60..63]);
        // Without a host nothing is lent.
        let plain = RangeStore::new(200);
        plain.lend(0, 10);
        assert!(!plain.has(&(0..5)));
    }
}
