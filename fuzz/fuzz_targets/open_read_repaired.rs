//! Like `open_read`, but every checksum is recomputed before opening, so
//! that mutations reach the footer parser and the column, string and index
//! decoders instead of stopping at a crc32c mismatch.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    colsnap_fuzz::harness::open_read_repaired(data);
});
