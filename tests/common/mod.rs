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

/// The whole NDJSON export of `snap` (`colsnap export --ndjson`), as text.
pub fn ndjson_export(snap: &colsnap::Snapshot) -> String {
    let mut out = Vec::new();
    snap.export(
        &mut out,
        &colsnap::ExportOptions {
            ndjson: true,
            ..Default::default()
        },
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

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

/// The JSON `colsnap ARGS...` prints, which must succeed.
#[cfg(feature = "cli")]
pub fn cli_json(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
    let out = colsnap()
        .args(args.iter().map(|a| a.as_ref()))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("JSON on stdout")
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

/// The "what: detail" of the corruption error `r` must be (a panic when it
/// is another error or a success: a hostile file was accepted).
#[cfg(feature = "write")]
pub fn corrupt_detail<T>(r: colsnap::Result<T>) -> String {
    match r {
        Err(colsnap::Error::Corrupt { what, detail, .. }) => format!("{what}: {detail}"),
        Err(e) => panic!("expected a corrupt-snapshot error, got {e}"),
        Ok(_) => panic!("a hostile file was accepted"),
    }
}

/// `colsnap ARGS FILE` on a snapshot of `bytes` written to a temporary
/// file: (exit code, stderr); a panic fails the test.
#[cfg(feature = "cli")]
pub fn cli_on_bytes(bytes: &[u8], args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crafted.colsnap");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_colsnap"))
        .args(args)
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.code().expect("exited"), err)
}

/// The rows of `colsnap query FILE ARGS`'s page (which must succeed).
#[cfg(feature = "cli")]
pub fn query_rows(file: &Path, args: &[&str]) -> Vec<Value> {
    let out = succeeded(
        std::process::Command::new(env!("CARGO_BIN_EXE_colsnap"))
            .arg("query")
            .arg(file)
            .args(args)
            .output()
            .unwrap(),
    );
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    page["data"].as_array().expect("a page of rows").clone()
}

/// `rows` built with the default options and with `off` (a writer choice
/// turned off), as (bytes, snapshot) each, once both are checked: each
/// exports `rows` exactly, the default build verifies and is the smaller.
#[cfg(feature = "write")]
pub fn built_with_and_without(
    rows: &[Value],
    off: &BuildOptions,
) -> ((Vec<u8>, Snapshot), (Vec<u8>, Snapshot)) {
    let input = serde_json::to_vec(rows).unwrap();
    let build = |opts: &BuildOptions| {
        let bytes = build_to_vec(&input[..], opts).unwrap();
        let snap = Snapshot::from_bytes(bytes.clone()).unwrap();
        assert_eq!(snap.to_values().unwrap(), rows);
        (bytes, snap)
    };
    let (on, off) = (build(&BuildOptions::default()), build(off));
    on.1.verify().expect("verifies");
    assert!(
        on.0.len() < off.0.len(),
        "{} vs {}",
        on.0.len(),
        off.0.len()
    );
    (on, off)
}

/// The encoding of column `path`'s stream of role `role` (which it must have).
#[cfg(feature = "write")]
pub fn encoding_of(
    s: &Snapshot,
    path: &str,
    role: colsnap::format::Role,
) -> colsnap::encoding::Encoding {
    let c = s.column(path).expect("column");
    let f = s.footer();
    let sec = f.nodes[c.node() as usize]
        .stream(role)
        .expect("a stream of the role");
    f.sections[sec as usize].encoding
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
