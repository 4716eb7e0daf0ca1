//! Arbitrary bytes as a snapshot: open, read every column, every string,
//! every row, verify. Nothing may panic; a snapshot that verifies must be
//! fully readable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    colsnap_fuzz::harness::open_read(data);
});
