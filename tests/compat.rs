//! Golden files: every format version's snapshot stays readable forever.
//!
//! `fixtures/golden/v1.colsnap` was written by format version 1 from
//! `v1-input.ndjson`; `v1-expected.ndjson` is its export. Regenerate (only
//! when deliberately creating a new version's golden files) with
//! `COLSNAP_REGEN_GOLDEN=1 cargo test --test compat`.

mod common;

use colsnap::{ExportOptions, Snapshot};
use std::path::PathBuf;

fn golden(name: &str) -> PathBuf {
    common::fixture("golden").join(name)
}

#[test]
fn v1_golden_reads_verifies_and_exports() {
    // (Regenerating needs the writer; reading the golden file does not, so
    // CI also runs this test with only the pure-Rust zstd decoder.)
    #[cfg(feature = "write")]
    if std::env::var_os("COLSNAP_REGEN_GOLDEN").is_some() {
        let input = std::fs::read(golden("v1-input.ndjson")).unwrap();
        let bytes = colsnap::build_to_vec(&input[..], &colsnap::BuildOptions::default()).unwrap();
        std::fs::write(golden("v1.colsnap"), &bytes).unwrap();
        let snap = Snapshot::from_bytes(bytes).unwrap();
        let mut out = Vec::new();
        snap.export(
            &mut out,
            &ExportOptions {
                ndjson: true,
                ..Default::default()
            },
        )
        .unwrap();
        std::fs::write(golden("v1-expected.ndjson"), out).unwrap();
    }
    let snap = Snapshot::open(golden("v1.colsnap")).expect("open v1 golden");
    assert_eq!(&snap.read_range(0..8).unwrap()[..], b"COLSNAP\0");
    assert_eq!(snap.header().version, 1);
    snap.verify().expect("verify v1 golden");
    let mut out = Vec::new();
    snap.export(
        &mut out,
        &ExportOptions {
            ndjson: true,
            ..Default::default()
        },
    )
    .unwrap();
    let expected = std::fs::read(golden("v1-expected.ndjson")).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(expected).unwrap()
    );
    // And the export is the input, value for value.
    let input = std::fs::File::open(golden("v1-input.ndjson")).unwrap();
    assert_eq!(snap.verify_against(input).unwrap(), snap.rows());
}
