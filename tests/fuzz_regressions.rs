//! Replays every input the fuzz targets ever failed on (`tests/regressions/`)
//! and the committed fuzz seeds (`fuzz/seeds/`) through the very checks the
//! fuzzer runs (`fuzz/src/harness.rs`, compiled in here), so that `cargo
//! test` keeps them fixed without cargo-fuzz.

#[allow(dead_code)]
#[path = "../fuzz/src/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn files(dirs: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten())
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    v.sort();
    v
}

#[test]
fn open_read_regressions() {
    let inputs = files(&[
        "tests/regressions/open_read",
        "fuzz/seeds/open_read",
        "fuzz/seeds/open_read_repaired",
    ]);
    assert!(inputs.len() >= 3, "no inputs found");
    let mut verified = 0;
    for p in &inputs {
        let data = std::fs::read(p).expect("read");
        eprintln!("open_read {}", p.display());
        harness::open_read(&data);
        harness::open_read_repaired(&data);
        if let Some(fixed) = harness::repair_checksums(&data) {
            // Repairing a valid snapshot keeps it valid.
            let valid =
                colsnap::Snapshot::from_bytes(data.clone()).is_ok_and(|s| s.verify().is_ok());
            if valid {
                let s = colsnap::Snapshot::from_bytes(fixed).expect("repaired opens");
                s.verify().expect("repaired verifies");
            }
        }
        if colsnap::Snapshot::from_bytes(data).is_ok_and(|s| harness::read_all(&s)) {
            verified += 1;
        }
    }
    eprintln!(
        "{} inputs replayed, {verified} of them valid snapshots",
        inputs.len()
    );
    assert!(verified >= 3, "the seeds are valid snapshots");
}

#[test]
fn open_read_repaired_regressions() {
    let inputs = files(&["tests/regressions/open_read_repaired"]);
    for p in &inputs {
        eprintln!("open_read_repaired {}", p.display());
        harness::open_read_repaired(&std::fs::read(p).expect("read"));
    }
    eprintln!("{} inputs replayed", inputs.len());
}

#[test]
fn build_json_regressions() {
    let inputs = files(&["tests/regressions/build_json", "fuzz/seeds/build_json"]);
    assert!(inputs.len() >= 3, "no inputs found");
    for p in &inputs {
        eprintln!("build_json {}", p.display());
        harness::build_json(&std::fs::read(p).expect("read"));
    }
}

#[test]
fn roundtrip_regressions() {
    let inputs = files(&["tests/regressions/roundtrip"]);
    assert!(!inputs.is_empty(), "no inputs found");
    for p in &inputs {
        eprintln!("roundtrip {}", p.display());
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p).expect("read")).expect("JSON");
        let sel = v["sel"].as_u64().expect("sel") as u8;
        let rows = v["rows"].as_array().expect("rows");
        harness::roundtrip(rows, sel);
        // Every build-option selector, not only the one that failed.
        for sel in 0..=255u8 {
            harness::roundtrip(rows, sel);
        }
    }
}
