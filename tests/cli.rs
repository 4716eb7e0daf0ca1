//! End-to-end tests of the `colsnap` program and the `snapshot-*` programs:
//! every subcommand, every exit code, compressed and stdin input, JSON
//! outputs parsed back, atomic writes and error messages.

mod common;

use assert_cmd::Command;
use common::{colsnap, fixture, rows_of};
use predicates::prelude::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Build `input` into `dir/name`, returning the snapshot path.
fn build(dir: &Path, input: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    colsnap()
        .arg("build")
        .arg(input)
        .arg("-o")
        .arg(&out)
        .arg("--quiet")
        .assert()
        .success()
        .stdout("");
    out
}

fn export_values(snap: &Path, extra: &[&str]) -> Vec<Value> {
    let out = colsnap()
        .arg("export")
        .arg(snap)
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    rows_of(&out)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn help_has_examples_and_version_works() {
    colsnap()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:").and(predicate::str::contains("build")));
    for sub in ["build", "inspect", "verify", "export"] {
        colsnap().args([sub, "--help"]).assert().success().stdout(
            predicate::str::contains("Examples:")
                .and(predicate::str::contains(format!("colsnap {sub}"))),
        );
    }
    colsnap()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    colsnap().assert().code(2);
    colsnap().arg("frobnicate").assert().code(2);
    colsnap()
        .args(["build", "x.json"]) // no -o
        .assert()
        .code(2);
    colsnap()
        .args(["build", "x.json", "-o", "y", "--level", "99"])
        .assert()
        .code(2);
    colsnap()
        .args(["build", "x.json", "-o", "y", "--chunk-size", "lots"])
        .assert()
        .code(2);
}

#[test]
fn missing_input_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    colsnap()
        .arg("build")
        .arg(&missing)
        .arg("-o")
        .arg(dir.path().join("out.colsnap"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("colsnap: error: ")
                .and(predicate::str::contains("nope.json")),
        );
    for sub in ["inspect", "verify", "export"] {
        colsnap().arg(sub).arg(&missing).assert().code(2);
    }
    assert_eq!(names_in(dir.path()), Vec::<String>::new());
}

#[test]
fn build_prints_one_summary_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.colsnap");
    let assert = colsnap()
        .arg("build")
        .arg(fixture("github-sample.ndjson"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("40 rows"), "{stdout}");
    assert!(stdout.contains("ratio"), "{stdout}");
    assert!(stdout.contains("MB/s"), "{stdout}");
    // Not a terminal: no progress bar on stderr.
    assert!(assert.get_output().stderr.is_empty());
}

#[test]
fn build_json_summary_is_parseable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.colsnap");
    let input = fixture("github-sample.ndjson");
    let stdout = colsnap()
        .arg("build")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&stdout).unwrap();
    let in_len = std::fs::metadata(&input).unwrap().len();
    let out_len = std::fs::metadata(&out).unwrap().len();
    assert_eq!(v["rows"], 40);
    assert_eq!(v["format"], "ndjson");
    assert_eq!(v["input_bytes"], in_len);
    assert_eq!(v["json_bytes"], in_len);
    assert_eq!(v["output_bytes"], out_len);
    let ratio = v["ratio"].as_f64().unwrap();
    let expected = in_len as f64 / out_len as f64;
    assert!((ratio - expected).abs() < 0.01, "{ratio} vs {expected}");
    assert!(v["columns"].as_u64().unwrap() > 10);
    assert!(v["seconds"].is_number() && v["mb_per_s"].is_number());
}

#[test]
fn build_options_are_applied_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("github-sample.ndjson");
    let expected = rows_of(&std::fs::read(&input).unwrap());
    for (i, opts) in [
        vec!["--codec", "none"],
        vec!["--codec", "gzip", "--level", "3"],
        vec![
            "--codec",
            "zstd",
            "--chunk-size",
            "1K",
            "--long-chunk-size",
            "4096",
        ],
        vec!["--no-front-coding"],
        vec!["--format-version", "1"],
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("o{i}.colsnap"));
        colsnap()
            .arg("build")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .arg("-q")
            .args(opts)
            .assert()
            .success();
        assert_eq!(export_values(&out, &[]), expected, "options {opts:?}");
        let rep: Value = serde_json::from_slice(
            &colsnap()
                .arg("inspect")
                .arg(&out)
                .arg("--json")
                .assert()
                .success()
                .get_output()
                .stdout,
        )
        .unwrap();
        let codecs: Vec<&str> = rep["columns"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["codecs"].as_array().unwrap())
            .map(|c| c.as_str().unwrap())
            .collect();
        match opts[..] {
            // Inline streams (format version 3) are raw too, in the footer.
            ["--codec", "none"] => assert!(codecs.iter().all(|c| *c == "none" || *c == "inline")),
            ["--codec", "gzip", ..] => assert!(codecs.iter().all(|c| *c != "zstd")),
            ["--codec", "zstd", ..] => {
                assert!(codecs.iter().all(|c| *c != "gzip"));
                assert!(rep["string_tables"][0]["chunks"].as_u64().unwrap() > 1);
            }
            ["--format-version", v] => assert_eq!(rep["format_version"].to_string(), v),
            _ => assert_eq!(rep["string_tables"][0]["front_coded"], false),
        }
    }
}

#[test]
fn build_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stdin.colsnap");
    let text = std::fs::read(fixture("tiny.json")).unwrap();
    colsnap()
        .args(["build", "-", "-o"])
        .arg(&out)
        .arg("--json")
        .write_stdin(text.clone())
        .assert()
        .success()
        .stdout(predicate::str::contains("\"input\":\"<stdin>\""));
    assert_eq!(export_values(&out, &[]), rows_of(&text));
}

#[test]
fn build_gzip_and_zstd_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(fixture("tiny.json")).unwrap();
    let expected = rows_of(&text);

    let gz = dir.path().join("tiny.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&text).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();

    let zst = dir.path().join("tiny.json.zst");
    std::fs::write(&zst, zstd::encode_all(&text[..], 3).unwrap()).unwrap();

    for input in [&gz, &zst] {
        let out = build(dir.path(), input, "c.colsnap");
        assert_eq!(export_values(&out, &[]), expected);
        colsnap()
            .arg("verify")
            .arg(&out)
            .arg("--against")
            .arg(input)
            .assert()
            .success();
    }
    // Compressed stdin too.
    let out = dir.path().join("zstdin.colsnap");
    colsnap()
        .args(["build", "-", "-q", "-o"])
        .arg(&out)
        .write_stdin(std::fs::read(&zst).unwrap())
        .assert()
        .success();
    assert_eq!(export_values(&out, &[]), expected);
}

#[test]
fn tiny_fixture_round_trips_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("tiny.json");
    let out = build(dir.path(), &input, "tiny.colsnap");
    let expected = rows_of(&std::fs::read(&input).unwrap());
    assert_eq!(export_values(&out, &[]), expected);
    assert_eq!(export_values(&out, &["--ndjson"]), expected);
    // Extremes survive as exact integers.
    let got = export_values(&out, &[]);
    assert_eq!(got[0]["big"].as_u64(), Some(u64::MAX));
    assert_eq!(got[1]["user"]["id"].as_i64(), Some(i64::MIN));
    // Null and absent differ.
    assert!(got[0]["milestone"].is_null() && got[0].get("milestone").is_some());
    assert!(got[1].get("milestone").is_none());
}

#[test]
fn invalid_json_names_line_and_column_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"a\": 1}\n{\"a\": 2}\n{\"a\": tru}\n").unwrap();
    let out = dir.path().join("bad.colsnap");
    colsnap()
        .arg("build")
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::starts_with("colsnap: error: ")
                .and(predicate::str::contains("bad.ndjson"))
                .and(predicate::str::contains("line 3"))
                .and(predicate::str::contains("column"))
                .and(predicate::str::contains("\n").count(1)),
        );
    assert!(!out.exists());
    assert_eq!(names_in(dir.path()), vec!["bad.ndjson".to_string()]);

    // Not an array of objects.
    std::fs::write(&bad, "42").unwrap();
    colsnap()
        .arg("build")
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 1"));
}

#[test]
fn failed_build_leaves_existing_output_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(dir.path(), &fixture("tiny.json"), "keep.colsnap");
    let before = std::fs::read(&out).unwrap();

    // A larger input whose only problem is at the very end.
    let good = std::fs::read_to_string(fixture("github-sample.ndjson")).unwrap();
    let mut text = String::new();
    for _ in 0..5 {
        text.push_str(&good);
    }
    text.push_str("{\"id\": 1, \"title\": nope}\n");
    let lines = text.lines().count();
    let bad = dir.path().join("big.ndjson");
    std::fs::write(&bad, &text).unwrap();

    colsnap()
        .arg("build")
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("line {lines}, column ")));
    assert_eq!(std::fs::read(&out).unwrap(), before, "OUTPUT changed");
    assert_eq!(
        names_in(dir.path()),
        vec!["big.ndjson".to_string(), "keep.colsnap".to_string()],
        "temporary files left behind"
    );
}

#[test]
fn output_equal_to_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::copy(fixture("tiny.json"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let spellings = [
        input.clone(),
        sub.join("..").join("in.ndjson"),
        dir.path().join(".").join("in.ndjson"),
    ];
    for out in spellings {
        colsnap()
            .arg("build")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("INPUT"));
    }
    // A hard link is the same file too.
    let link = dir.path().join("link.ndjson");
    if std::fs::hard_link(&input, &link).is_ok() {
        colsnap()
            .arg("build")
            .arg(&input)
            .arg("-o")
            .arg(&link)
            .assert()
            .code(2);
    }
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

/// `diff -o` and `compact -o` refuse an OUTPUT that is a file they read
/// (they replaced it and exited 0: a snapshot overwritten by its events, an
/// event log by a snapshot); `compact` may still replace its SNAPSHOT.
#[test]
fn diff_and_compact_never_overwrite_what_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let old = build(dir.path(), &fixture("tiny.json"), "old.colsnap");
    let rows = dir.path().join("new.ndjson");
    let text = std::fs::read_to_string(fixture("tiny.json")).unwrap();
    let mut v: Vec<Value> = serde_json::from_str(&text).unwrap();
    v.truncate(v.len() - 1);
    std::fs::write(&rows, serde_json::to_string(&v).unwrap()).unwrap();
    let new = build(dir.path(), &rows, "new.colsnap");
    let events = dir.path().join("events.ndjson");
    std::fs::write(
        &events,
        "{\"seq\":1,\"op\":\"update\",\"key\":1,\"set\":{\"title\":\"x\"}}\n",
    )
    .unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let before: Vec<Vec<u8>> = [&old, &new, &events]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut outs = vec![
        (old.clone(), "OLD"),
        (sub.join("..").join("old.colsnap"), "OLD"),
        (new.clone(), "NEW"),
    ];
    #[cfg(unix)]
    {
        let link = dir.path().join("link.colsnap");
        std::os::unix::fs::symlink(&old, &link).unwrap();
        outs.push((link, "OLD"));
    }
    for (out, what) in outs {
        colsnap()
            .arg("diff")
            .arg(&old)
            .arg(&new)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "OUTPUT is the {what} file"
            )));
    }
    for out in [events.clone(), sub.join("..").join("events.ndjson")] {
        colsnap()
            .arg("compact")
            .arg(&old)
            .arg(&events)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("OUTPUT is the EVENTS file"));
    }
    let after: Vec<Vec<u8>> = [&old, &new, &events]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(before == after, "an input was changed");
    // Replacing the snapshot compacted is still allowed.
    colsnap()
        .arg("compact")
        .arg(&old)
        .arg(&events)
        .arg("-o")
        .arg(&old)
        .assert()
        .success();
    assert_ne!(std::fs::read(&old).unwrap(), before[0]);
}

#[test]
fn output_in_missing_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    colsnap()
        .arg("build")
        .arg(fixture("tiny.json"))
        .arg("-o")
        .arg(dir.path().join("no/such/dir/x.colsnap"))
        .assert()
        .code(2);
}

#[test]
fn inspect_json_describes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("tiny.json"), "t.colsnap");
    let stdout = colsnap()
        .arg("inspect")
        .arg(&snap)
        .args(["--json", "--strings", "3"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let r: Value = serde_json::from_slice(&stdout).unwrap();
    let file_bytes = std::fs::metadata(&snap).unwrap().len();
    // Version 5 without an integer kept as text is written as version 4.
    assert_eq!(r["format_version"], colsnap::format::VERSION_4);
    assert_eq!(r["rows"], 5);
    assert_eq!(r["file_bytes"], file_bytes);
    let cols = r["columns"].as_array().unwrap();
    let col = |p: &str| {
        cols.iter()
            .find(|c| c["path"] == p)
            .unwrap_or_else(|| panic!("no column {p}"))
    };
    assert_eq!(col("id")["type"], "i64");
    assert_eq!(col("id")["min"], 1);
    assert_eq!(col("id")["max"], 5);
    assert_eq!(col("user.login")["type"], "string");
    assert_eq!(col("user.login")["min"], "alice");
    assert_eq!(col("user.login")["max"], "dave");
    assert_eq!(col("big")["type"], "u64");
    assert_eq!(col("big")["max"].as_u64(), Some(u64::MAX));
    assert_eq!(col("closed_at")["type"], "timestamp");
    assert_eq!(col("closed_at")["min"], "2024-02-04T00:00:00Z");
    assert_eq!(col("closed_at")["nulls"], 1);
    assert_eq!(col("closed_at")["absent"], 3);
    assert_eq!(col("score")["type"], "mixed");
    assert_eq!(col("labels[].name")["distinct"], 3);
    for c in cols {
        assert!(c["raw_bytes"].as_u64().is_some() && c["stored_bytes"].as_u64().is_some());
    }
    let tables = r["string_tables"].as_array().unwrap();
    assert!(!tables.is_empty());
    let first: Vec<&str> = tables[0]["first_strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0] < w[1]), "sorted: {first:?}");
    let parts = r["totals"]["parts"].as_array().unwrap();
    let sum: u64 = parts.iter().map(|p| p["bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum, file_bytes);
    let columns_part = parts.iter().find(|p| p["part"] == "columns").unwrap();
    let col_sum: u64 = cols
        .iter()
        .map(|c| c["stored_bytes"].as_u64().unwrap())
        .sum();
    assert!(columns_part["bytes"].as_u64().unwrap() >= col_sum);
}

/// A timestamp column's min and max are exact instants, fractions and
/// offsets included (the footer's statistics hold whole UTC seconds).
#[test]
fn inspect_gives_timestamp_extremes_with_their_fractions() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.ndjson");
    std::fs::write(
        &input,
        concat!(
            "{\"t\":\"2024-01-01T00:00:00.5Z\",\"w\":\"2024-01-01T00:00:00Z\"}\n",
            "{\"t\":\"2024-01-01T00:00:00.25+01:00\",\"w\":\"2024-01-02T00:00:00Z\"}\n",
            "{\"t\":\"2023-12-31T23:00:00.125Z\",\"w\":\"2024-01-01T10:00:00+01:00\"}\n",
            "{\"t\":\"2024-01-01T00:00:00Z\",\"w\":null}\n",
        ),
    )
    .unwrap();
    let snap = dir.path().join("t.colsnap");
    common::cli_build(&input, &snap, &[]);
    let r = common::cli_json(&[&"inspect", &snap, &"--json"]);
    let col = |p: &str| {
        r["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == p)
            .unwrap()
            .clone()
    };
    // 00:00:00.25+01:00 is 23:00:00.25Z, after 23:00:00.125Z.
    assert_eq!(col("t")["min"], "2023-12-31T23:00:00.125Z");
    assert_eq!(col("t")["max"], "2024-01-01T00:00:00.5Z");
    assert_eq!(col("w")["min"], "2024-01-01T00:00:00Z");
    assert_eq!(col("w")["max"], "2024-01-02T00:00:00Z");
}

#[test]
fn inspect_human_output() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"), "s.colsnap");
    colsnap()
        .arg("inspect")
        .arg(&snap)
        .args(["--strings", "2"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("40 rows")
                .and(predicate::str::contains("user.login"))
                .and(predicate::str::contains("timestamp"))
                .and(predicate::str::contains("string table"))
                .and(predicate::str::contains("first 2 strings"))
                .and(predicate::str::contains("100.0%")),
        );
}

/// The tables list names the codecs of each table's chunks: PPMd long
/// text by default (and the sample's one-chunk short-string table, which
/// PPMd makes smaller), zstd when the build asks for it.
#[test]
fn inspect_names_the_codecs_of_each_string_table() {
    let dir = tempfile::tempdir().unwrap();
    let sample = fixture("github-sample.ndjson");
    let ppmd = build(dir.path(), &sample, "p.colsnap");
    let zstd = dir.path().join("z.colsnap");
    common::cli_build(&sample, &zstd, &["--long-text-codec", "zstd"]);
    let codecs = |snap: &Path| -> Vec<Vec<String>> {
        common::cli_json(&[&"inspect", &snap, &"--json"])["string_tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t["codecs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    };
    assert_eq!(codecs(&ppmd), [vec!["ppmd"], vec!["ppmd"]]);
    assert_eq!(codecs(&zstd), [vec!["zstd"], vec!["zstd"]]);
    let text = colsnap()
        .arg("inspect")
        .arg(&ppmd)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    let long = text
        .lines()
        .find(|l| l.contains("long text, rows"))
        .unwrap_or_else(|| panic!("no long-text table in\n{text}"));
    assert!(long.contains("ppmd"), "{long}");
}

#[test]
fn inspect_sources_name_what_mapped_and_based_streams_derive_from() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"), "s.colsnap");
    let json = |extra: &[&str]| -> Value {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"inspect", &snap, &"--json"];
        args.extend(extra.iter().map(|e| e as &dyn AsRef<std::ffi::OsStr>));
        common::cli_json(&args)
    };
    let r = json(&["--sources"]);
    let cols = r["columns"].as_array().unwrap();
    let sources = |p: &str| -> Vec<(String, String, String)> {
        let c = cols.iter().find(|c| c["path"] == p).unwrap();
        c["sources"]
            .as_array()
            .unwrap_or_else(|| panic!("{p}: {c}"))
            .iter()
            .map(|s| {
                let f = |k: &str| s[k].as_str().unwrap().to_string();
                (f("stream"), f("encoding"), f("source"))
            })
            .collect()
    };
    let one = |a: &str, b: &str, c: &str| vec![(a.to_string(), b.to_string(), c.to_string())];
    // What the writer chose for the 40 rows (SPEC.md 4.7, 4.9).
    assert_eq!(
        sources("user.url"),
        one("string-ids", "mapped", "user.login")
    );
    assert_eq!(
        sources("user.events_url"),
        one("string-ids", "based", "user.url")
    );
    assert_eq!(sources("updated_at"), one("ts-secs", "based", "created_at"));
    assert_eq!(sources("number"), vec![]);
    // Every listed stream is one of the column's encodings, and its source
    // is a column of the file; every mapped or based column lists one.
    let paths: Vec<&str> = cols.iter().map(|c| c["path"].as_str().unwrap()).collect();
    let mut derived = 0;
    for c in cols {
        let encs: Vec<&str> = c["encodings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let list = c["sources"].as_array().unwrap();
        for s in list {
            assert!(encs.contains(&s["encoding"].as_str().unwrap()), "{c}");
            assert!(paths.contains(&s["source"].as_str().unwrap()), "{c}");
            assert_ne!(s["source"], c["path"], "{c}");
        }
        let has = encs.iter().any(|e| *e == "mapped" || *e == "based");
        assert_eq!(has, !list.is_empty(), "{c}");
        derived += list.len();
    }
    assert!(derived > 10, "{derived} derived streams");
    // Without the flag the key is absent (only the footer is read).
    let plain = json(&[]);
    assert!(plain["columns"][0].get("sources").is_none());
    // The table views name them too.
    for view in [&["--sources"][..], &["--sources", "--wide"]] {
        colsnap()
            .arg("inspect")
            .arg(&snap)
            .args(view)
            .args(["--columns", "user.url,updated_at"])
            .env("COLUMNS", "200")
            .assert()
            .success()
            .stdout(
                predicate::str::contains("derived from")
                    .and(predicate::str::contains("user.login (mapped)"))
                    .and(predicate::str::contains("created_at (based)")),
            );
    }
}

#[test]
fn verify_reports_checks_and_compares_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("github-sample.ndjson");
    let snap = build(dir.path(), &input, "s.colsnap");
    colsnap()
        .arg("verify")
        .arg(&snap)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("ok: 40 rows")
                .and(predicate::str::contains("crc32c"))
                .and(predicate::str::contains("sections")),
        );
    colsnap()
        .arg("verify")
        .arg(&snap)
        .arg("--against")
        .arg(&input)
        .assert()
        .success()
        .stdout(predicate::str::contains("40 rows equal"));
    // stdin as the source.
    colsnap()
        .arg("verify")
        .arg(&snap)
        .args(["--against", "-"])
        .write_stdin(std::fs::read(&input).unwrap())
        .assert()
        .success();
    // A different source: exit 1, naming what differs.
    colsnap()
        .arg("verify")
        .arg(&snap)
        .arg("--against")
        .arg(fixture("tiny.json"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does not match"));
    colsnap()
        .arg("verify")
        .arg(&snap)
        .arg("-q")
        .assert()
        .success()
        .stdout("");
}

/// Flip one byte inside the payload of section `k` of a snapshot.
fn corrupt_section(path: &Path, k: usize) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let s = colsnap::Snapshot::from_bytes(bytes.clone()).unwrap();
    let e = s.footer().sections[k];
    let at = e.payload_offset() as usize + e.stored_len as usize / 2;
    let mut bytes = bytes;
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
    e.offset
}

#[test]
fn corrupt_snapshot_fails_verify_naming_the_section() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"), "s.colsnap");
    corrupt_section(&snap, 3);
    colsnap()
        .arg("verify")
        .arg(&snap)
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::starts_with("colsnap: error: ")
                .and(predicate::str::contains("s.colsnap"))
                .and(predicate::str::contains("section 3"))
                .and(predicate::str::contains("offset"))
                .and(predicate::str::contains("expected"))
                .and(predicate::str::contains("\n").count(1)),
        );
    // Export of the damaged file fails too (exit 1), without a panic.
    colsnap()
        .arg("export")
        .arg(&snap)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn not_a_snapshot_and_truncated_snapshot_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["inspect", "verify", "export"] {
        colsnap()
            .arg(sub)
            .arg(fixture("tiny.json"))
            .assert()
            .code(1)
            .stderr(predicate::str::contains("tiny.json"));
    }
    let snap = build(dir.path(), &fixture("tiny.json"), "t.colsnap");
    let bytes = std::fs::read(&snap).unwrap();
    std::fs::write(&snap, &bytes[..bytes.len() - 7]).unwrap();
    for sub in ["inspect", "verify", "export"] {
        colsnap().arg(sub).arg(&snap).assert().code(1);
    }
}

#[test]
fn export_rows_columns_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("tiny.json");
    let all = rows_of(&std::fs::read(&input).unwrap());
    let snap = build(dir.path(), &input, "t.colsnap");

    assert_eq!(
        export_values(&snap, &["--rows", "1..3"]),
        all[1..3].to_vec()
    );
    assert_eq!(export_values(&snap, &["--rows", "3.."]), all[3..].to_vec());
    assert_eq!(export_values(&snap, &["--rows", "..2"]), all[..2].to_vec());
    assert_eq!(export_values(&snap, &["--rows", "4"]), all[4..5].to_vec());
    assert_eq!(
        export_values(&snap, &["--rows", "2..2"]),
        Vec::<Value>::new()
    );
    assert_eq!(
        export_values(&snap, &["--rows", "3..100"]),
        all[3..].to_vec()
    );
    // A range past the end exports nothing, succeeds (a slice past the
    // end is empty) and says so on stderr; one that reaches the end does not.
    for (rows, sort) in [("100..101", None), ("5..", None), ("9", Some("-id"))] {
        let mut cmd = colsnap();
        cmd.arg("export")
            .arg(&snap)
            .args(["--ndjson", "--rows", rows]);
        if let Some(s) = sort {
            cmd.args(["--sort", s]);
        }
        cmd.assert().success().stdout("").stderr(
            predicate::str::contains("starts past the end").and(predicate::str::contains(format!(
                "has {} rows (0..{})",
                all.len(),
                all.len()
            ))),
        );
    }
    colsnap()
        .arg("export")
        .arg(&snap)
        .args(["--ndjson", "--rows", "4.."])
        .assert()
        .success()
        .stderr("");

    // Default is a JSON array; --ndjson is one object per line.
    let arr = colsnap()
        .arg("export")
        .arg(&snap)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(serde_json::from_slice::<Value>(&arr).unwrap().is_array());
    let nd = colsnap()
        .arg("export")
        .arg(&snap)
        .arg("--ndjson")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(nd).unwrap();
    assert_eq!(text.lines().count(), all.len());
    for (line, row) in text.lines().zip(&all) {
        assert_eq!(&serde_json::from_str::<Value>(line).unwrap(), row);
    }

    // Columns: only those paths (and what is under them).
    let got = export_values(&snap, &["--columns", "id,user.login"]);
    assert_eq!(got.len(), all.len());
    for (g, a) in got.iter().zip(&all) {
        assert_eq!(g["id"], a["id"]);
        let keys: Vec<&String> = g.as_object().unwrap().keys().collect();
        assert!(keys.iter().all(|k| *k == "id" || *k == "user"), "{keys:?}");
        if let Some(Value::Object(u)) = g.get("user") {
            assert!(u.keys().all(|k| k == "login"));
            assert_eq!(u.get("login"), a["user"].get("login"));
        }
    }
    let got = export_values(&snap, &["--columns", "labels", "--rows", "0..1"]);
    assert_eq!(got[0]["labels"], all[0]["labels"]);
    // A pattern, as `inspect --columns` takes: `user.*` is every field of
    // `user`, which `user` (everything under it) writes too.
    let got = export_values(&snap, &["--columns", "id,user.*"]);
    assert_eq!(got, export_values(&snap, &["--columns", "id,user"]));
    assert!(got.iter().zip(&all).all(|(g, a)| g["user"] == a["user"]));
}

/// `*` in `--columns` is any text; `\*` names a key `*`, in `export` and
/// `inspect` alike.
#[test]
fn a_key_named_star_is_named_by_an_escaped_star() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, br#"{"*":1,"[":2,"\\":3,"a":{"*":4,"b":5}}"#).unwrap();
    let snap = build(dir.path(), &input, "s.colsnap");
    assert_eq!(
        export_values(&snap, &["--columns", "\\*"]),
        [json!({"*": 1})]
    );
    assert_eq!(
        export_values(&snap, &["--columns", "a.\\*"]),
        [json!({"a": {"*": 4}})]
    );
    assert_eq!(
        export_values(&snap, &["--columns", "*"]),
        [json!({"*": 1, "[": 2, "\\": 3, "a": {"*": 4, "b": 5}})]
    );
    let out = colsnap()
        .args(["inspect", "--schema", "--columns", "\\*"])
        .arg(&snap)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("1 of 6 columns"), "{out}");
}

#[test]
fn export_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("tiny.json"), "t.colsnap");
    for bad in ["5..2", "a..b", "1...3", "-1..2", ""] {
        colsnap()
            .arg("export")
            .arg(&snap)
            .arg(format!("--rows={bad}"))
            .assert()
            .code(2)
            .stdout("");
    }
    colsnap()
        .arg("export")
        .arg(&snap)
        .args(["--columns", "id,no.such"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("unknown column `no.such`"));
    for (cols, says) in [
        ("id,nope*", "--columns `nope*` matches no column"),
        ("id,,title", "an empty column name"),
    ] {
        colsnap()
            .arg("export")
            .arg(&snap)
            .args(["--columns", cols])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(says));
    }
}

#[test]
fn export_to_a_closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"), "s.colsnap");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_colsnap"))
        .arg("export")
        .arg(&snap)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    out.read_exact(&mut first).unwrap();
    drop(out); // like `| head -c 16`
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(&first[..1], b"[");
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(err, "");
}

#[test]
fn snapshot_programs_take_the_same_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.colsnap");
    Command::new(env!("CARGO_BIN_EXE_snapshot-build"))
        .arg(fixture("tiny.json"))
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .assert()
        .success()
        .stdout(predicate::str::contains("\"rows\":5"));
    Command::new(env!("CARGO_BIN_EXE_snapshot-inspect"))
        .arg(&out)
        .arg("--json")
        .assert()
        .success()
        .stdout(predicate::str::contains("\"rows\": 5"));
    Command::new(env!("CARGO_BIN_EXE_snapshot-verify"))
        .arg(&out)
        .arg("--against")
        .arg(fixture("tiny.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains("5 rows equal"));
    for bin in [
        env!("CARGO_BIN_EXE_snapshot-build"),
        env!("CARGO_BIN_EXE_snapshot-inspect"),
        env!("CARGO_BIN_EXE_snapshot-verify"),
    ] {
        Command::new(bin)
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"));
        Command::new(bin).arg("--version").assert().success();
        Command::new(bin).assert().code(2);
    }
    Command::new(env!("CARGO_BIN_EXE_snapshot-verify"))
        .arg(dir.path().join("missing.colsnap"))
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("snapshot-verify: error: "));
}

/// An integer literal outside `[-2^63, 2^64)` is held as the nearest
/// binary64 in format version 4 (SPEC.md 1.3; version 5, the default,
/// keeps its text: tests/num_text.rs): the build says so on stderr (how
/// many, where the first is), even with `--quiet`, and counts them in
/// `--json`.
#[test]
fn inexact_integers_are_reported_by_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.ndjson");
    std::fs::write(
        &input,
        "{\"id\":1,\"n\":18446744073709551615}\n{\"id\":2,\"n\":123456789012345678901234567890,\"s\":\"99999999999999999999\"}\n",
    )
    .unwrap();
    let out = dir.path().join("big.colsnap");
    for extra in [&["--quiet"][..], &["--json"]] {
        let o = colsnap()
            .arg("build")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(["--format-version", "4"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("1 integer outside [-2^63, 2^64) (the first at line 2, column 13)"),
            "{err}"
        );
        if extra == ["--json"] {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["inexact_integers"], 1);
        }
    }
    // What the warning says: the number comes back as a float.
    let o = colsnap()
        .args(["export", "--ndjson"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("\"n\":1.2345678901234568e+29"), "{text}");
    // None, no warning.
    let o = colsnap()
        .arg("build")
        .arg(fixture("tiny.json"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty());
}
