//! Arbitrary bytes as JSON input. A build either fails cleanly or yields a
//! snapshot that opens, verifies, exports, and holds exactly the input rows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    colsnap_fuzz::harness::build_json(data);
});
