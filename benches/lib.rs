//! colsnap's benchmarks live in this package's `[[bench]]` targets:
//! `cargo bench -p colsnap-bench --bench ratio|query|events`.
//! The package is a workspace member outside `default-members`, so the
//! root `cargo test` never builds criterion.

use std::path::{Path, PathBuf};

/// The repository root (this package sits in `benches/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ sits inside the repository")
        .to_path_buf()
}
