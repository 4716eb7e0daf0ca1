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

/// Build (or reuse) the snapshot of `n` generated issues with seed 42, cached
/// under `target/bench-data` and shared by the query and events benches
/// (zstd level 3: the data set is built once, and the level does not change
/// what the queries measure).
pub fn snapshot_path(n: usize) -> PathBuf {
    let dir = repo_root().join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("issues-seed42-{n}.colsnap"));
    if !path.exists() {
        let t = std::time::Instant::now();
        let opts = colsnap_testdata::GenOptions {
            seed: 42,
            count: n,
            ..Default::default()
        };
        let mut json = Vec::new();
        colsnap_testdata::write_ndjson(&opts, &mut json).unwrap();
        let tmp = dir.join(format!("issues-seed42-{n}.tmp"));
        let f = std::fs::File::create(&tmp).unwrap();
        colsnap::build(
            &json[..],
            std::io::BufWriter::new(f),
            &colsnap::BuildOptions {
                compress: colsnap::CompressOptions {
                    level: 3,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        eprintln!("built {n} issues in {:.1}s", t.elapsed().as_secs_f64());
    }
    path
}
