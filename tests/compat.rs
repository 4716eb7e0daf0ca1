//! Golden files: every format version's snapshot stays readable forever.
//!
//! `fixtures/golden/v1.colsnap` was written by format version 1 from
//! `v1-input.ndjson`; `v1-expected.ndjson` is its export.
//! `fixtures/golden/v2.colsnap` was written by format version 2 (sections
//! without frames, SPEC.md section 8) from the same input, and exports the
//! same rows, and `fixtures/golden/v3.colsnap` by format version 3 (small
//! node streams inline in the footer, SPEC.md 5.4), and
//! `fixtures/golden/v4.colsnap` by format version 4 (the footer's nodes
//! field by field, SPEC.md 5.3). Regenerate the newest
//! version's golden file (only when
//! deliberately creating a new version) with
//! `COLSNAP_REGEN_GOLDEN=1 cargo test --test compat`.

mod common;

use colsnap::Snapshot;
use common::ndjson_export as export;
use std::path::PathBuf;

fn golden(name: &str) -> PathBuf {
    common::fixture("golden").join(name)
}

/// Open, verify and export `file` (format `version`), compare with the
/// expected export and the input.
fn check(file: &str, version: u16) {
    let snap = Snapshot::open(golden(file)).expect("open golden");
    assert_eq!(&snap.read_range(0..8).unwrap()[..], b"COLSNAP\0");
    assert_eq!(snap.header().version, version);
    snap.verify().expect("verify golden");
    let expected = std::fs::read_to_string(golden("v1-expected.ndjson")).unwrap();
    assert_eq!(export(&snap), expected, "{file}");
    // And the export is the input, value for value.
    let input = std::fs::File::open(golden("v1-input.ndjson")).unwrap();
    assert_eq!(snap.verify_against(input).unwrap(), snap.rows());
}

#[test]
fn v1_golden_reads_verifies_and_exports() {
    check("v1.colsnap", 1);
}

#[test]
fn v2_golden_reads_verifies_and_exports() {
    check("v2.colsnap", 2);
    // Sections without frames: the first starts right after the header.
    let snap = Snapshot::open(golden("v2.colsnap")).unwrap();
    let first = &snap.footer().sections[0];
    assert!(!first.framed);
    assert!(snap.footer().sections.iter().all(|e| !e.inline));
    assert_eq!(first.offset, colsnap::format::HEADER_LEN as u64);
}

#[test]
fn v3_golden_reads_verifies_and_exports() {
    // (Regenerating needs the writer; reading the golden file does not, so
    // CI also runs this test with only the pure-Rust zstd decoder.)
    #[cfg(feature = "write")]
    if std::env::var_os("COLSNAP_REGEN_GOLDEN").is_some() {
        let input = std::fs::read(golden("v1-input.ndjson")).unwrap();
        let opts = colsnap::BuildOptions {
            format_version: 3,
            ..Default::default()
        };
        let bytes = colsnap::build_to_vec(&input[..], &opts).unwrap();
        std::fs::write(golden("v3.colsnap"), &bytes).unwrap();
    }
    check("v3.colsnap", 3);
    // Some streams inline, numbered after the sections in the file, which
    // start right after the header.
    let snap = Snapshot::open(golden("v3.colsnap")).unwrap();
    let f = snap.footer();
    let n_file = f.file_sections();
    assert!(n_file > 0 && n_file < f.sections.len());
    assert!(f.sections[n_file..].iter().all(|e| e.inline));
    assert_eq!(f.sections[0].offset, colsnap::format::HEADER_LEN as u64);
}

#[test]
fn v4_golden_reads_verifies_and_exports() {
    #[cfg(feature = "write")]
    if std::env::var_os("COLSNAP_REGEN_GOLDEN").is_some() {
        let input = std::fs::read(golden("v1-input.ndjson")).unwrap();
        let bytes = colsnap::build_to_vec(&input[..], &colsnap::BuildOptions::default()).unwrap();
        std::fs::write(golden("v4.colsnap"), &bytes).unwrap();
    }
    check("v4.colsnap", 4);
    // The same sections and node metadata as the version 3 file, in a
    // smaller footer.
    let (s3, s4) = (
        Snapshot::open(golden("v3.colsnap")).unwrap(),
        Snapshot::open(golden("v4.colsnap")).unwrap(),
    );
    let (f3, f4) = (s3.footer(), s4.footer());
    assert_eq!(f3.file_sections(), f4.file_sections());
    assert_eq!(f3.sections.len(), f4.sections.len());
    assert_eq!((&f3.tables, f3.nodes.len()), (&f4.tables, f4.nodes.len()));
    assert!(f4.sections[f4.file_sections()..].iter().all(|e| e.inline));
    assert!(
        s4.file_len() < s3.file_len(),
        "{} {}",
        s4.file_len(),
        s3.file_len()
    );
}

/// `fixtures/golden/v5.colsnap`: format version 5, integer literals
/// outside `[-2^63, 2^64)` kept as their text (kind `NumText`, SPEC.md
/// 1.3), from `v5-input.ndjson`, whose export it is byte for byte.
#[test]
fn v5_golden_reads_verifies_and_exports_its_input_exactly() {
    #[cfg(feature = "write")]
    if std::env::var_os("COLSNAP_REGEN_GOLDEN").is_some() {
        let input = std::fs::read(golden("v5-input.ndjson")).unwrap();
        let bytes = colsnap::build_to_vec(&input[..], &colsnap::BuildOptions::default()).unwrap();
        std::fs::write(golden("v5.colsnap"), &bytes).unwrap();
    }
    let snap = Snapshot::open(golden("v5.colsnap")).expect("open golden");
    assert_eq!(snap.header().version, 5);
    snap.verify().expect("verify golden");
    let input = std::fs::read_to_string(golden("v5-input.ndjson")).unwrap();
    assert_eq!(export(&snap), input);
    assert_eq!(snap.verify_against(input.as_bytes()).unwrap(), snap.rows());
    // Without such integers, version 5 writes version 4's bytes.
    #[cfg(feature = "write")]
    {
        let v1 = std::fs::read(golden("v1-input.ndjson")).unwrap();
        let with = |format_version| colsnap::BuildOptions {
            format_version,
            ..Default::default()
        };
        let (a, b) = (
            colsnap::build_to_vec(&v1[..], &with(5)).unwrap(),
            colsnap::build_to_vec(&v1[..], &with(4)).unwrap(),
        );
        assert!(a == b, "version 5 without such integers is version 4");
        // Asked for version 4, the same integers are binary64 (and counted).
        let opts = colsnap::BuildOptions {
            format_version: 4,
            ..Default::default()
        };
        let mut out = Vec::new();
        let report = colsnap::build(input.as_bytes(), &mut out, &opts).unwrap();
        assert!(report.inexact_integers.count > 0);
        let v4 = Snapshot::from_bytes(out).unwrap();
        assert_eq!(v4.header().version, 4);
        assert_ne!(export(&v4), input);
    }
}

/// The writer still writes versions 1 to 3 on request, and what it writes is
/// read like the golden file.
#[cfg(feature = "write")]
#[test]
fn the_writer_writes_older_versions_on_request() {
    let input = std::fs::read(golden("v1-input.ndjson")).unwrap();
    let opts = colsnap::BuildOptions {
        format_version: 1,
        ..Default::default()
    };
    let v1 = colsnap::build_to_vec(&input[..], &opts).unwrap();
    let opts = colsnap::BuildOptions {
        format_version: 2,
        ..Default::default()
    };
    let v2 = colsnap::build_to_vec(&input[..], &opts).unwrap();
    let opts = colsnap::BuildOptions {
        format_version: 3,
        ..Default::default()
    };
    let v3 = colsnap::build_to_vec(&input[..], &opts).unwrap();
    let v4 = colsnap::build_to_vec(&input[..], &Default::default()).unwrap();
    assert!(v2.len() < v1.len());
    assert!(v3.len() < v2.len());
    assert!(v4.len() < v3.len());
    for (bytes, version) in [(v1, 1), (v2, 2), (v3, 3), (v4, 4)] {
        let snap = Snapshot::from_bytes(bytes).unwrap();
        assert_eq!(snap.header().version, version);
        snap.verify().unwrap();
        let expected = std::fs::read_to_string(golden("v1-expected.ndjson")).unwrap();
        assert_eq!(export(&snap), expected);
    }
    let bad = colsnap::BuildOptions {
        format_version: 6,
        ..Default::default()
    };
    assert!(colsnap::build_to_vec(&input[..], &bad).is_err());
}

/// The conformance files that use zstd, with and without a table
/// dictionary, in both versions (v2 stores zstd payloads without the frame
/// magic): read here as well because CI also runs this file with only the
/// pure-Rust zstd decoder.
#[test]
fn zstd_conformance_files_read_in_both_versions() {
    let dir = common::fixture("conformance");
    for (name, stem) in [("all-zstd", "all"), ("long-text-dict", "long-text-dict")] {
        let expected =
            std::fs::read_to_string(dir.join(format!("{stem}.expected.ndjson"))).unwrap();
        for (sub, version) in [("", 1), ("v2/", 2), ("v3/", 3), ("v4/", 4)] {
            let snap = Snapshot::open(dir.join(format!("{sub}{name}.colsnap"))).unwrap();
            assert_eq!(snap.header().version, version);
            snap.verify().unwrap_or_else(|e| panic!("{sub}{name}: {e}"));
            assert_eq!(export(&snap), expected, "{sub}{name}");
        }
    }
}
