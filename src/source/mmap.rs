//! The one place that maps a file into memory (the crate's only `unsafe`).

use super::{ByteSource, slice_ranges};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::ops::Range;
use std::path::Path;

/// A file mapped into memory: reads are zero-copy slices of the map.
///
/// Faster than [`super::FileSource`] for many small reads, with one caveat:
/// if another process truncates the file while it is mapped, touching the
/// lost pages kills the process with `SIGBUS`. Use it only for files that
/// are replaced by rename (as colsnap writes them), never rewritten in place.
#[derive(Debug, Clone)]
pub struct MmapSource {
    bytes: Bytes,
}

impl MmapSource {
    /// Map the file at `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<MmapSource> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(Some(path), e))?;
        let len = file.metadata().map_err(|e| Error::io(Some(path), e))?.len();
        // An empty file cannot be mapped on every platform.
        if len == 0 {
            return Ok(MmapSource {
                bytes: Bytes::new(),
            });
        }
        let map = map(&file).map_err(|e| Error::io(Some(path), e))?;
        Ok(MmapSource {
            bytes: Bytes::from_owner(map),
        })
    }
}

impl ByteSource for MmapSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        slice_ranges(&self.bytes, ranges)
    }
}

/// Map `file` read-only.
#[expect(
    unsafe_code,
    reason = "memory-mapping a file is inherently unsafe; see SAFETY"
)]
fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. If another
    // process truncates or rewrites the file while it is mapped, reads may
    // see changed bytes or fault (SIGBUS); every byte read is still
    // bounds-checked and checksummed, so changed bytes surface as errors.
    // Snapshots are written by rename (never in place), which keeps mapped
    // files stable in practice; `Snapshot::open` reads with positional reads
    // instead, and only `Snapshot::open_mmap` (documented caveat) maps.
    unsafe { memmap2::Mmap::map(file) }
}
