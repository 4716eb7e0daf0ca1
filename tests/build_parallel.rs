//! A build's snapshot does not depend on how many threads encode and
//! compress it (issue 16): every thread count gives the same bytes, and the
//! `--fast` preset and `--threads` of the CLI do what they say.
#![cfg(feature = "write")]

mod common;

use colsnap::{BuildOptions, Codec, ExportOptions, LongTextCodec, Snapshot, build_to_vec};
use colsnap_testdata::{GenOptions, write_ndjson};

/// Generated issues as NDJSON.
fn generated(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = GenOptions {
        count,
        ..GenOptions::default()
    };
    write_ndjson(&opts, &mut out).unwrap();
    out
}

/// Small chunks so that a small input has many string chunks (several
/// batches) and a long-text table of many chunks: PPMd ones, or zstd ones
/// with a trained dictionary.
fn small_chunks(threads: usize, ppmd: bool) -> BuildOptions {
    BuildOptions {
        chunk_size: 2 << 10,
        long_chunk_size: 16 << 10,
        long_text_min_avg: 64,
        long_text_codec: if ppmd {
            LongTextCodec::Ppmd
        } else {
            LongTextCodec::Zstd
        },
        threads,
        ..BuildOptions::default()
    }
}

/// The snapshot's rows, exported as NDJSON and parsed.
fn export_rows(snap: &Snapshot) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    snap.export(
        &mut out,
        &ExportOptions {
            ndjson: true,
            ..Default::default()
        },
    )
    .unwrap();
    common::rows_of(&out)
}

#[test]
fn output_is_identical_for_every_thread_count() {
    let input = generated(300);
    for ppmd in [true, false] {
        let one = build_to_vec(&input[..], &small_chunks(1, ppmd)).unwrap();
        for threads in [2, 3, 8, 0] {
            let other = build_to_vec(&input[..], &small_chunks(threads, ppmd)).unwrap();
            assert!(
                one == other,
                "ppmd {ppmd}: {threads} threads gave {} bytes, 1 thread {} bytes",
                other.len(),
                one.len()
            );
        }
        // The snapshot holds what was built: two tables, many long-text
        // chunks, in PPMd without a dictionary or in zstd with one.
        let snap = Snapshot::from_bytes(one).unwrap();
        snap.verify().unwrap();
        assert_eq!(snap.rows(), 300);
        let foot = snap.footer();
        assert_eq!(foot.tables.len(), 2);
        let long = &foot.tables[1];
        assert_eq!(
            long.dict_section.is_some(),
            !ppmd,
            "a dictionary with zstd only"
        );
        assert!(long.chunk_counts.len() >= 4);
        let first = long.first_chunk as usize;
        let codecs: Vec<Codec> = (first..first + long.chunk_counts.len())
            .map(|i| foot.sections[i].codec)
            .collect();
        let want = if ppmd { Codec::Ppmd } else { Codec::Zstd };
        assert!(codecs.iter().all(|&c| c == want), "{codecs:?}");
        let expected = common::rows_of(&input);
        assert_eq!(export_rows(&snap), expected);
    }
}

#[test]
fn fast_preset_reads_back_the_same_rows() {
    let input = generated(200);
    let fast = build_to_vec(
        &input[..],
        &BuildOptions {
            threads: 2,
            ..BuildOptions::fast()
        },
    )
    .unwrap();
    let fast1 = build_to_vec(
        &input[..],
        &BuildOptions {
            threads: 1,
            ..BuildOptions::fast()
        },
    )
    .unwrap();
    assert!(fast == fast1, "--fast differs between 1 and 2 threads");
    let snap = Snapshot::from_bytes(fast).unwrap();
    snap.verify().unwrap();
    assert_eq!(export_rows(&snap), common::rows_of(&input));
}

#[test]
fn cli_threads_and_fast() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, generated(150)).unwrap();
    let mut outs = Vec::new();
    for args in [
        vec!["--threads", "1"],
        vec!["--threads", "2"],
        vec![],
        vec!["--fast", "--threads", "2"],
        vec!["--fast", "--threads", "1"],
    ] {
        let out = dir.path().join(format!("out{}.colsnap", outs.len()));
        common::cli_build(&input, &out, &args);
        outs.push(std::fs::read(&out).unwrap());
    }
    assert!(outs[0] == outs[1] && outs[1] == outs[2]);
    assert!(outs[3] == outs[4]);
    assert!(outs[3] != outs[0], "--fast changes the compression");
    common::colsnap()
        .args(["build", "x.json", "-o", "y", "--threads", "0"])
        .assert()
        .code(2);
}

#[test]
fn failed_parallel_build_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.ndjson");
    let mut text = generated(120);
    text.extend_from_slice(b"{\"broken\": tru\n");
    text.extend_from_slice(&generated(20));
    std::fs::write(&input, &text).unwrap();
    let out = dir.path().join("out.colsnap");
    common::colsnap()
        .arg("build")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--threads", "2"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("line 121"));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("bad.ndjson")]);
}
