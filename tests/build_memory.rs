//! A build's snapshot does not depend on its memory budget (issue 16): a
//! tiny budget spills the string table to sorted runs in temporary files,
//! merged at the end, and the column buffers to segment files, read back
//! one node at a time, and gives the same bytes as the default budget, with
//! any thread count; the temporary files are gone afterwards, whether the
//! build succeeded or failed.
#![cfg(feature = "write")]

mod common;

use colsnap::write::build;
use colsnap::{BuildOptions, Snapshot, build_to_vec};
use colsnap_testdata::{GenOptions, write_ndjson};
use std::path::Path;

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

/// Small chunks (many chunks, two tables, a dictionary), a memory budget
/// and a directory for the spills.
fn opts(threads: usize, memory: usize, tmp: &Path) -> BuildOptions {
    BuildOptions {
        chunk_size: 2 << 10,
        long_chunk_size: 16 << 10,
        long_text_min_avg: 64,
        threads,
        memory,
        tmp_dir: Some(tmp.to_path_buf()),
        ..BuildOptions::default()
    }
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// Files spilled into the spill directories under `dir` (each holds a
/// `.lock` besides them).
fn spilled_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read_dir(e.ok()?.path()).ok())
        .map(|d| d.flatten().filter(|f| f.file_name() != ".lock").count())
        .sum()
}

/// Build `input` under `o`; the bytes and the number of string runs spilled.
fn build_counting(input: &[u8], o: &BuildOptions) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let report = build(input, &mut out, o).unwrap();
    assert_eq!(report.output_bytes, out.len() as u64);
    (out, report.spill.string_runs)
}

#[test]
fn tiny_budget_spills_and_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(400);
    let (reference, runs) =
        build_counting(&input, &opts(1, BuildOptions::default().memory, tmp.path()));
    assert_eq!(runs, 0, "the default budget holds 400 issues in memory");
    // Unbounded (0) is the default's bytes too.
    assert!(reference == build_counting(&input, &opts(2, 0, tmp.path())).0);
    for threads in [1, 2] {
        for memory in [64 << 10, 8 << 10, 1] {
            let (bytes, runs) = build_counting(&input, &opts(threads, memory, tmp.path()));
            assert!(
                runs >= 2,
                "a budget of {memory} bytes spills ({runs} runs, {threads} threads)"
            );
            assert!(
                bytes == reference,
                "budget {memory}, {threads} threads: {} bytes, default {} bytes",
                bytes.len(),
                reference.len()
            );
            assert_eq!(entries(tmp.path()), 0, "spill files removed");
        }
    }
    // Budget 1 spills after every row: as many runs as rows with new strings.
    assert!(build_counting(&input, &opts(1, 1, tmp.path())).1 >= 390);
    let snap = Snapshot::from_bytes(reference).unwrap();
    snap.verify().unwrap();
    assert_eq!(snap.rows(), 400);
}

/// Build `input` under `o`; the bytes and what was spilled.
fn build_spilling(
    input: &[u8],
    o: &BuildOptions,
) -> (Vec<u8>, colsnap::schema::interner::SpillStats) {
    let mut out = Vec::new();
    let report = build(input, &mut out, o).unwrap();
    assert_eq!(report.output_bytes, out.len() as u64);
    (out, report.spill)
}

#[test]
fn column_spills_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(1500);
    let reference = build_to_vec(&input[..], &opts(2, 0, tmp.path())).unwrap();
    for threads in [1, 2] {
        for memory in [1 << 20, 256 << 10, 16 << 10] {
            let (bytes, spill) = build_spilling(&input, &opts(threads, memory, tmp.path()));
            assert!(
                spill.column_runs >= 2,
                "a budget of {memory} bytes spills columns ({spill:?}, {threads} threads)"
            );
            assert!(
                bytes == reference,
                "budget {memory}, {threads} threads: {} bytes, unbounded {} bytes",
                bytes.len(),
                reference.len()
            );
            assert_eq!(entries(tmp.path()), 0, "spill files removed");
        }
    }
    let snap = Snapshot::from_bytes(reference).unwrap();
    snap.verify().unwrap();
    assert_eq!(snap.rows(), 1500);
}

/// Under a budget smaller than the encoding of the largest nodes, nodes
/// are encoded one at a time or a few small ones together, their source
/// columns read back a segment at a time and their candidate encodings
/// made one at a time: the bytes of an unbounded build at both levels
/// (the trial ranking of level 19, every candidate compressed at level 3),
/// with 1 and 3 threads.
#[test]
fn gated_node_encoding_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(600);
    for base in [BuildOptions::default(), BuildOptions::fast()] {
        let with = |threads, memory| BuildOptions {
            threads,
            memory,
            tmp_dir: Some(tmp.path().to_path_buf()),
            ..base.clone()
        };
        let reference = build_to_vec(&input[..], &with(2, 0)).unwrap();
        for threads in [1, 3] {
            for memory in [1 << 20, 64 << 10] {
                let (bytes, spill) = build_spilling(&input, &with(threads, memory));
                assert!(spill.column_runs >= 1, "{spill:?}");
                assert!(bytes == reference, "budget {memory}, {threads} threads");
            }
        }
        let snap = Snapshot::from_bytes(reference).unwrap();
        snap.verify().unwrap();
        assert_eq!(snap.rows(), 600);
    }
    assert_eq!(entries(tmp.path()), 0);
}

/// Rows of every kind: timestamps mixed with other strings in one column
/// (turned into strings when the build ends), big unsigned integers,
/// floats, nested arrays of objects, absent and null fields.
fn mixed_rows(count: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..count {
        let t = if i % 7 == 3 {
            format!("\"not a time {}\"", i % 5)
        } else {
            format!(
                "\"2024-01-{:02}T10:{:02}:00.{}Z\"",
                1 + i % 28,
                i % 60,
                i % 10
            )
        };
        let big = u64::MAX - (i as u64 % 3);
        let tags: Vec<String> = (0..i % 4)
            .map(|k| {
                format!(
                    "{{\"name\":\"t{}\",\"n\":{},\"at\":\"2023-05-0{}T00:00:00+02:00\"}}",
                    (i + k) % 9,
                    k,
                    1 + k
                )
            })
            .collect();
        let extra = if i % 3 == 0 {
            format!(",\"opt\":{}", i % 11)
        } else if i % 3 == 1 {
            ",\"opt\":null".to_string()
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{{\"id\":{i},\"t\":{t},\"big\":{big},\"f\":{},\"ok\":{},\"key\":\"k{}\",\"val\":\"v{}\",\"tags\":[{}]{extra}}}\n",
            i as f64 * 0.25,
            i % 2 == 0,
            i % 13,
            i % 13,
            tags.join(",")
        ));
    }
    out.into_bytes()
}

#[test]
fn spilled_columns_of_every_kind_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = mixed_rows(700);
    for base in [BuildOptions::default(), BuildOptions::fast()] {
        let with = |threads, memory| BuildOptions {
            threads,
            memory,
            tmp_dir: Some(tmp.path().to_path_buf()),
            ..base.clone()
        };
        let reference = build_to_vec(&input[..], &with(1, 0)).unwrap();
        for threads in [1, 2] {
            for memory in [32 << 10, 1] {
                let (bytes, spill) = build_spilling(&input, &with(threads, memory));
                assert!(spill.column_runs >= 2, "{spill:?}");
                // A budget of 1 byte spills strings after every row: more
                // runs than id-map windows (64), so a window maps several
                // runs, and the timestamps turned into strings at the end
                // (ids of the last run in every earlier segment) are mapped
                // with the last window.
                if memory == 1 {
                    assert!(spill.string_runs > 64, "{spill:?}");
                }
                assert!(bytes == reference, "budget {memory}, {threads} threads");
            }
        }
        let snap = Snapshot::from_bytes(reference).unwrap();
        snap.verify().unwrap();
        assert_eq!(snap.rows(), 700);
    }
    assert_eq!(entries(tmp.path()), 0);
}

#[test]
fn golden_and_fixture_inputs_are_budget_independent() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [
        "golden/v1-input.ndjson",
        "github-sample.ndjson",
        "tiny.json",
    ] {
        let input = std::fs::read(common::fixture(name)).unwrap();
        for base in [BuildOptions::default(), BuildOptions::fast()] {
            let with = |threads, memory| BuildOptions {
                threads,
                memory,
                tmp_dir: Some(tmp.path().to_path_buf()),
                ..base.clone()
            };
            let reference = build_to_vec(&input[..], &with(1, 0)).unwrap();
            for threads in [1, 2] {
                let (bytes, runs) = build_counting(&input, &with(threads, 256));
                assert!(runs >= 1, "{name}: spilled");
                assert!(bytes == reference, "{name}, {threads} threads");
            }
        }
    }
    // The golden file itself is what a spilling build writes today.
    let input = std::fs::read(common::fixture("golden/v1-input.ndjson")).unwrap();
    let golden = std::fs::read(common::fixture("golden/v1.colsnap")).unwrap();
    let today = build_to_vec(&input[..], &BuildOptions::default()).unwrap();
    if today == golden {
        let o = BuildOptions {
            memory: 4 << 10,
            tmp_dir: Some(tmp.path().to_path_buf()),
            ..BuildOptions::default()
        };
        assert!(build_counting(&input, &o).0 == golden);
    }
    assert_eq!(entries(tmp.path()), 0);
}

#[test]
fn limits_hold_with_spills() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(60);
    let mut o = opts(1, 1, tmp.path());
    // Distinct strings are counted when the runs are merged: the limit
    // refuses exactly what an in-memory build refuses.
    let (bytes, _) = build_counting(&input, &o);
    // (The verify count holds a string of both tables twice.)
    let strings = Snapshot::from_bytes(bytes)
        .unwrap()
        .verify()
        .unwrap()
        .strings as usize;
    let mut mem = o.clone();
    mem.memory = 0;
    let mut limit = strings;
    loop {
        mem.limits.max_strings = limit;
        if build(&input[..], Vec::new(), &mem).is_err() {
            break;
        }
        limit -= 1;
    }
    o.limits.max_strings = limit;
    let err = build(&input[..], Vec::new(), &o).unwrap_err();
    assert!(err.to_string().contains("max_strings"), "{err}");
    o.limits.max_strings = limit + 1;
    build(&input[..], Vec::new(), &o).unwrap();
    assert_eq!(entries(tmp.path()), 0);
}

#[test]
fn failed_builds_leave_no_spill_files() {
    let tmp = tempfile::tempdir().unwrap();
    // Bad JSON after many spills.
    let mut text = generated(100);
    text.extend_from_slice(b"{\"broken\": tru\n");
    let err = build(&text[..], Vec::new(), &opts(2, 1, tmp.path())).unwrap_err();
    assert!(err.to_string().contains("line 101"), "{err}");
    assert_eq!(entries(tmp.path()), 0);
    // A spill directory that cannot be created is an I/O error, not a JSON one.
    let missing = tmp.path().join("missing");
    let err = build(&generated(20)[..], Vec::new(), &opts(1, 1, &missing)).unwrap_err();
    assert!(matches!(err, colsnap::Error::Io { .. }), "{err:?}");
    assert_eq!(entries(tmp.path()), 0);
}

#[test]
fn cli_memory_and_tmp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, generated(150)).unwrap();
    let run = |out: &str, args: &[&str]| -> serde_json::Value {
        let o = common::colsnap()
            .arg("build")
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join(out))
            .args(args)
            .arg("--json")
            .assert()
            .success();
        serde_json::from_slice(&o.get_output().stdout).unwrap()
    };
    let plain = run("a.colsnap", &[]);
    assert_eq!(plain["spilled_runs"], 0);
    let tmp = spill.path().to_str().unwrap();
    let small = run(
        "b.colsnap",
        &["--memory", "16K", "--tmp-dir", tmp, "--threads", "2"],
    );
    assert!(small["spilled_runs"].as_u64().unwrap() >= 2, "{small}");
    assert!(small["spilled_bytes"].as_u64().unwrap() > 0);
    // Next to the output by default.
    let beside = run("c.colsnap", &["--memory", "16K", "--threads", "1"]);
    assert!(beside["spilled_runs"].as_u64().unwrap() >= 2);
    let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
    assert!(read("a.colsnap") == read("b.colsnap"));
    assert!(read("a.colsnap") == read("c.colsnap"));
    assert_eq!(entries(spill.path()), 0);
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["a.colsnap", "b.colsnap", "c.colsnap", "in.ndjson"]);
    common::colsnap()
        .arg("build")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("d.colsnap"))
        .args(["--tmp-dir", "/nonexistent/dir"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--tmp-dir"));
    common::colsnap()
        .arg("build")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("d.colsnap"))
        .args(["--memory", "12Q"])
        .assert()
        .code(2);
}

#[test]
fn interrupted_build_removes_its_spill_files() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, generated(3000)).unwrap();
    let out = dir.path().join("out.colsnap");
    for sig in ["INT", "TERM"] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_colsnap"))
            .arg("build")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--memory", "64K", "--quiet", "--tmp-dir"])
            .arg(spill.path())
            .spawn()
            .unwrap();
        // Wait for a run file in the spill directory.
        let t0 = std::time::Instant::now();
        while spilled_files(spill.path()) < 2 {
            assert!(t0.elapsed().as_secs() < 120, "no spill appeared");
            assert!(child.try_wait().unwrap().is_none(), "the build ended early");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        assert!(!child.wait().unwrap().success());
        assert_eq!(entries(spill.path()), 0, "{sig}: spill directory removed");
        assert!(!out.exists());
        assert_eq!(entries(dir.path()), 1, "{sig}: no temporary output");
    }
}

/// A build killed outright (SIGKILL) leaves its spill directory; the next
/// build that spills into the same directory removes it once it is a few
/// seconds old and no live build holds it (`schema::leftovers`).
#[test]
fn the_next_build_removes_the_spill_directory_of_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, generated(3000)).unwrap();
    let out = dir.path().join("out.colsnap");
    let build = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_colsnap"));
        c.arg("build")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--memory", "64K", "--quiet", "--tmp-dir"])
            .arg(spill.path());
        c
    };
    let mut child = build().spawn().unwrap();
    let t0 = std::time::Instant::now();
    while spilled_files(spill.path()) < 1 {
        assert!(t0.elapsed().as_secs() < 120, "no spill appeared");
        assert!(child.try_wait().unwrap().is_none(), "the build ended early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(spill.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // (The strings and the columns spill each into a directory.)
    assert!(!left.is_empty(), "SIGKILL leaves the spill directories");
    // Made an hour old, they are removed by the next build, which succeeds.
    for d in &left {
        std::fs::OpenOptions::new()
            .write(true)
            .open(d.join(".lock"))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }
    assert!(build().status().unwrap().success());
    assert_eq!(
        entries(spill.path()),
        0,
        "the leftovers are removed: {left:?}"
    );
    Snapshot::open(&out).unwrap().verify().unwrap();
}

/// The automatic chunk size of table 0 and its dictionary (SPEC.md 7.3,
/// 7.5) are planned from the spilled runs as from memory: the same bytes
/// under a tiny budget, with one thread or two.
#[test]
fn automatic_short_chunks_and_their_dictionary_do_not_depend_on_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let input = generated(1000);
    let auto = |threads: usize, memory: usize| BuildOptions {
        threads,
        memory,
        tmp_dir: Some(tmp.path().to_path_buf()),
        ..BuildOptions::default()
    };
    let (reference, runs) = build_counting(&input, &auto(2, BuildOptions::default().memory));
    assert_eq!(runs, 0);
    let snap = Snapshot::from_bytes(reference.clone()).unwrap();
    let t0 = &snap.footer().tables[0];
    assert!(
        t0.chunk_counts.len() >= 64,
        "{} chunks",
        t0.chunk_counts.len()
    );
    assert!(t0.dict_section.is_some());
    for threads in [1, 2] {
        let (bytes, runs) = build_counting(&input, &auto(threads, 16 << 10));
        assert!(runs >= 2, "{runs} runs");
        assert!(
            bytes == reference,
            "{threads} threads: {} bytes",
            bytes.len()
        );
        assert_eq!(entries(tmp.path()), 0, "spill files removed");
    }
}
