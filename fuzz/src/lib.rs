//! Support code of the fuzz targets. The checks themselves live in
//! `harness.rs`, which `tests/fuzz_regressions.rs` of the main crate also
//! compiles, so that every crash found here replays under `cargo test`.

pub mod harness;
