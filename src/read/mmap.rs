//! The one place that maps a file into memory.

/// Map `file` read-only.
#[expect(
    unsafe_code,
    reason = "memory-mapping a file is inherently unsafe; see SAFETY"
)]
pub(super) fn map(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. If another
    // process truncates or rewrites the file while it is mapped, reads may
    // see changed bytes or fault; every byte read is still bounds-checked and
    // checksummed, so changed bytes surface as errors. Snapshots are written
    // by rename (never in place), which keeps mapped files stable in practice.
    unsafe { memmap2::Mmap::map(file) }
}
