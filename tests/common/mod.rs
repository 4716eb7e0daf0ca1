//! Helpers shared by the integration tests. Every file under `tests/` is a
//! crate of its own that takes what it needs with `mod common;`, so a helper
//! unused by one of them is not dead code.
#![allow(dead_code)]

#[cfg(feature = "write")]
pub mod craft;
pub mod limits;
pub mod servers;

#[cfg(feature = "cli")]
use assert_cmd::Command;
#[cfg(feature = "write")]
use colsnap::{BuildOptions, Snapshot, build_to_vec};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `fixtures/NAME` of the crate (NAME may hold a folder: `golden/v1.colsnap`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The `colsnap` program under test.
#[cfg(feature = "cli")]
pub fn colsnap() -> Command {
    Command::new(env!("CARGO_BIN_EXE_colsnap"))
}

/// `colsnap build INPUT -o OUT ARGS... --quiet`, which must succeed.
#[cfg(feature = "cli")]
pub fn cli_build(input: &Path, out: &Path, args: &[&str]) {
    colsnap()
        .arg("build")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(args)
        .arg("--quiet")
        .assert()
        .success();
}

/// `out`, the output of a command that must have succeeded (its stderr is
/// the failure's message).
pub fn succeeded(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The rows of a JSON array or NDJSON text.
pub fn rows_of(text: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Array(v)) => v,
        _ => serde_json::Deserializer::from_slice(text)
            .into_iter::<Value>()
            .map(|v| v.expect("valid NDJSON"))
            .collect(),
    }
}

#[cfg(feature = "write")]
/// Small options that force many chunks and the long-text table: tables
/// span several chunks.
pub fn tiny_opts() -> BuildOptions {
    BuildOptions {
        chunk_size: 24,
        long_chunk_size: 64,
        long_text_min_avg: 12,
        ..Default::default()
    }
}

#[cfg(feature = "write")]
/// `rows` (as one JSON array) built with `opts` and opened from memory.
pub fn snapshot_of(rows: &[Value], opts: &BuildOptions) -> Snapshot {
    Snapshot::from_bytes(build_to_vec(&serde_json::to_vec(rows).unwrap()[..], opts).unwrap())
        .unwrap()
}

#[cfg(feature = "write")]
/// `rows` built with the default options into the file `dir/name`.
pub fn write_snapshot(dir: &Path, name: &str, rows: &[Value]) -> PathBuf {
    let p = dir.join(name);
    let bytes = build_to_vec(
        &serde_json::to_vec(rows).unwrap()[..],
        &BuildOptions::default(),
    )
    .unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}
