//! Integer literals outside `[-2^63, 2^64)` are kept as their text (kind
//! `NumText`, format version 5, SPEC.md 1.3): every way of reading a
//! snapshot gives them back as written, queries order them as numbers, and
//! events and compaction keep them.

mod common;

use colsnap::{BuildOptions, ExportOptions, Snapshot};
use common::colsnap;
use common::ndjson_export as export;

/// NDJSON rows holding such integers everywhere a number can be: alone,
/// beside every other number kind in one column, in arrays and nested
/// objects, negative; and strings and keys that look like them.
fn input(rows: usize) -> String {
    let mut s = String::new();
    for i in 0..rows {
        let big = format!(
            "{}{}",
            18446744073709551616u128 + i as u128 * 7919,
            "0".repeat(i % 5)
        );
        let neg = format!("-{}", 9223372036854775809u128 + i as u128);
        let n = match i % 4 {
            0 => big.clone(),
            1 => "18446744073709551615".to_string(),
            2 => "-9223372036854775808".to_string(),
            _ => "2.5".to_string(),
        };
        s.push_str(&format!(
            r#"{{"id":{i},"n":{n},"a":[{big},{neg},1,{big}],"o":{{"x":{neg},"y":"{big}"}},"{big}":{i}}}"#
        ));
        s.push('\n');
    }
    s
}

/// Built as NDJSON or as one array, on one thread or two, spilled under a
/// tiny memory budget or not: the same file, version 5, whose export is
/// the input byte for byte; rows read one at a time (at their items) too.
#[test]
fn they_round_trip_as_written_under_every_build_option() {
    let text = input(300);
    let array = format!("[{}]", text.lines().collect::<Vec<_>>().join(",\n"));
    let dir = tempfile::tempdir().unwrap();
    let reference = colsnap::build_to_vec(text.as_bytes(), &BuildOptions::default()).unwrap();
    for (i, opts) in [
        BuildOptions {
            threads: 1,
            ..Default::default()
        },
        BuildOptions {
            threads: 2,
            memory: 1 << 14,
            tmp_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
    ]
    .iter()
    .enumerate()
    {
        for input in [&text, &array] {
            let mut out = Vec::new();
            let report = colsnap::build(input.as_bytes(), &mut out, opts).unwrap();
            assert_eq!(report.inexact_integers.count, 0);
            assert!(out == reference, "options {i}: another file");
        }
    }
    let snap = Snapshot::from_bytes(reference).unwrap();
    assert_eq!(snap.header().version, 5);
    snap.verify().unwrap();
    assert_eq!(export(&snap), text);
    assert_eq!(snap.verify_against(text.as_bytes()).unwrap(), 300);
    let lines: Vec<&str> = text.lines().collect();
    for r in [0u64, 3, 150, 299] {
        let mut one = Vec::new();
        snap.export(
            &mut one,
            &ExportOptions {
                ndjson: true,
                rows: Some(r..r + 1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(one).unwrap(),
            format!("{}\n", lines[r as usize])
        );
    }
    // The column that mixes them with every other number is a `number`.
    let n = snap.node_by_path("n").unwrap();
    assert_eq!(snap.column_type(n), colsnap::model::ColumnType::Number);
}

/// Asked for format version 4, the writer holds them as the nearest
/// binary64 and says so; without such integers, version 5 is version 4.
#[test]
fn version_4_holds_them_as_binary64_with_the_warning() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(&input, input_text()).unwrap();
    let out = dir.path().join("v4.colsnap");
    let o = colsnap()
        .arg("build")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(["--format-version", "4", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("outside [-2^63, 2^64)"), "{err}");
    let snap = Snapshot::open(&out).unwrap();
    assert_eq!(snap.header().version, 4);
    assert!(export(&snap).contains("1.8446744073709552e+19"));
    // The change the warning told of is a difference to `verify --against`.
    let e = snap.verify_against(input_text().as_bytes()).unwrap_err();
    assert!(
        matches!(&e, colsnap::Error::Mismatch { row: 0, detail }
            if detail == "differs at `n`: expected 18446744073709551616, got 1.8446744073709552e+19"),
        "{e}"
    );
    // The default: no warning, version 5, exact.
    let out = dir.path().join("v5.colsnap");
    let o = colsnap()
        .arg("build")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    assert_eq!(export(&Snapshot::open(&out).unwrap()), input_text());
}

fn input_text() -> String {
    input(8)
}

/// Queries compare and sort them as numbers (their nearest binary64) and
/// print them as written.
#[test]
fn queries_order_them_as_numbers_and_print_them_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        "{\"n\":5}\n{\"n\":-99999999999999999999}\n{\"n\":123456789012345678901234567890}\n{\"n\":1e25}\n{\"n\":18446744073709551615}\n",
    )
    .unwrap();
    let snap = dir.path().join("s.colsnap");
    common::cli_build(&input, &snap, &[]);
    let q = |args: &[&str]| -> String {
        let o = colsnap()
            .arg("query")
            .arg(&snap)
            .args(args)
            .args(["--ndjson", "--all"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(
        q(&["--sort", "n"]),
        "{\"n\":-99999999999999999999}\n{\"n\":5}\n{\"n\":18446744073709551615}\n{\"n\":1e+25}\n{\"n\":123456789012345678901234567890}\n"
    );
    assert_eq!(
        q(&["--where", "n>2e19"]),
        "{\"n\":123456789012345678901234567890}\n{\"n\":1e+25}\n"
    );
    assert_eq!(q(&["--where", "n<0"]), "{\"n\":-99999999999999999999}\n");
}

/// What the CLI makes of snapshot rows `input` and event log `log`:
/// `export --events --ndjson` and `compact` (each an output, its stdout
/// or the compacted snapshot, and its stderr), and the snapshot's path
/// (in `dir`).
struct WithEvents {
    snap: std::path::PathBuf,
    export: std::process::Output,
    compact: std::process::Output,
    compacted: std::path::PathBuf,
}

fn with_events(dir: &std::path::Path, input: &str, log: &str) -> WithEvents {
    let input_path = dir.join("in.ndjson");
    std::fs::write(&input_path, input).unwrap();
    let snap = dir.join("s.colsnap");
    common::cli_build(&input_path, &snap, &[]);
    let events = dir.join("e.ndjson");
    std::fs::write(&events, log).unwrap();
    let export = colsnap()
        .arg("export")
        .arg(&snap)
        .arg("--events")
        .arg(&events)
        .arg("--ndjson")
        .output()
        .unwrap();
    let compacted = dir.join("next.colsnap");
    let compact = colsnap()
        .arg("compact")
        .arg(&snap)
        .arg(&events)
        .arg("-o")
        .arg(&compacted)
        .output()
        .unwrap();
    WithEvents {
        snap,
        export,
        compact,
        compacted,
    }
}

/// Export with events and compaction keep them, in rows the events left
/// alone and in rows they changed (an update of another field).
#[test]
fn events_and_compaction_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let r = with_events(
        dir.path(),
        "{\"id\":1,\"n\":123456789012345678901234567890,\"a\":[-99999999999999999999999,1]}\n{\"id\":2,\"n\":18446744073709551616}\n{\"id\":3,\"n\":5}\n",
        "{\"seq\":1,\"op\":\"update\",\"key\":1,\"set\":{\"t\":\"x\"}}\n{\"seq\":2,\"op\":\"update\",\"key\":3,\"set\":{\"n\":6}}\n",
    );
    let want = "{\"id\":1,\"n\":123456789012345678901234567890,\"a\":[-99999999999999999999999,1],\"t\":\"x\"}\n{\"id\":2,\"n\":18446744073709551616}\n{\"id\":3,\"n\":6}\n";
    assert!(r.export.status.success());
    assert_eq!(String::from_utf8(r.export.stdout).unwrap(), want);
    assert!(
        r.compact.status.success(),
        "{}",
        String::from_utf8_lossy(&r.compact.stderr)
    );
    let next = Snapshot::open(&r.compacted).unwrap();
    assert_eq!(next.header().version, 5);
    assert_eq!(export(&next), want);
}

/// `verify --against` compares these integers by their digits: an input
/// that differs from the snapshot only in a last digit (the same nearest
/// binary64) is a difference, named at its path with both literals, for a
/// snapshot and for a snapshot with events.
#[test]
fn verify_against_tells_integers_with_the_same_binary64_apart() {
    let text = input(40);
    let bytes = colsnap::build_to_vec(text.as_bytes(), &BuildOptions::default()).unwrap();
    let snap = Snapshot::from_bytes(bytes).unwrap();
    assert_eq!(snap.verify_against(text.as_bytes()).unwrap(), 40);
    let big = (18446744073709551616u128 + 3 * 7919).to_string();
    let near = (18446744073709551616u128 + 3 * 7919 + 1).to_string();
    assert_eq!(
        big.parse::<f64>().unwrap(),
        near.parse::<f64>().unwrap(),
        "the same binary64"
    );
    // Row 3's `o.x`, then its `a[0]`, moved by one.
    for (from, to, path) in [
        (
            "\"x\":-9223372036854775812",
            "\"x\":-9223372036854775813",
            "o.x",
        ),
        (
            &*format!("\"a\":[{big}"),
            &*format!("\"a\":[{near}"),
            "a[0]",
        ),
    ] {
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 3 {
                    l.replacen(from, to, 1)
                } else {
                    l.to_string()
                }
            })
            .collect();
        let changed = lines.join("\n");
        assert_ne!(changed.trim_end(), text.trim_end(), "{from}");
        let e = snap.verify_against(changed.as_bytes()).unwrap_err();
        match &e {
            colsnap::Error::Mismatch { row: 3, detail } => {
                assert!(
                    detail.starts_with(&format!("differs at `{path}`: expected ")),
                    "{e}"
                );
                assert!(!detail.contains('\u{fdd0}'), "{e}");
            }
            _ => panic!("{e}"),
        }
    }
    // With an event that changes row 0 (whose integers then pass through
    // a JSON value): its digits, not its binary64.
    let first = text.lines().next().unwrap();
    assert!(first.contains(r#""n":18446744073709551616,"#), "{first}");
    let after = first.trim_end_matches('}').to_string() + r#","t":"x"}"#;
    let rest: Vec<&str> = text.lines().skip(1).collect();
    for (row0, ok) in [
        (after.clone(), true),
        (
            after.replacen("18446744073709551616", "18446744073709551617", 1),
            false,
        ),
    ] {
        let mut o = colsnap::events::Overlay::new(snap.clone(), "id").unwrap();
        o.apply_reader(&b"{\"seq\":1,\"op\":\"update\",\"key\":0,\"set\":{\"t\":\"x\"}}\n"[..])
            .unwrap();
        let expected = format!("{row0}\n{}\n", rest.join("\n"));
        match o.verify_against(expected.as_bytes()) {
            Ok(n) => assert!(ok && n == 40),
            Err(e) => assert!(
                !ok && matches!(&e, colsnap::Error::Mismatch { row: 0, detail }
                    if detail == "differs at `n`: expected 18446744073709551617, got 18446744073709551616"),
                "{e}"
            ),
        }
    }
}

/// `diff` compares rows by these integers' digits, and refuses an event
/// that would carry one (events are JSON values: binary64), naming the
/// new row and the field; a change elsewhere in such a row is an event.
#[test]
fn diff_refuses_events_that_would_carry_them() {
    let snap = |text: &str| {
        Snapshot::from_bytes(
            colsnap::build_to_vec(text.as_bytes(), &BuildOptions::default()).unwrap(),
        )
        .unwrap()
    };
    let old = snap("{\"id\":1,\"n\":123456789012345678901234567890}\n{\"id\":2,\"n\":5}\n");
    // The digits alone (the same binary64): before, no event at all.
    let digits = snap("{\"id\":1,\"n\":123456789012345678901234567891}\n{\"id\":2,\"n\":5}\n");
    let e = colsnap::events::diff(&old, &digits, "id", 1).unwrap_err();
    assert!(
        matches!(&e, colsnap::Error::Value { row: 0, path, message }
            if path == "n" && message.starts_with("the new row holds 123456789012345678901234567891, an integer outside")),
        "{e}"
    );
    // Another field of that row changes: an event without the integer.
    let other =
        snap("{\"id\":1,\"n\":123456789012345678901234567890,\"t\":\"a\"}\n{\"id\":2,\"n\":5}\n");
    let events = colsnap::events::diff(&old, &other, "id", 1).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].to_json(),
        r#"{"seq":1,"op":"update","key":1,"set":{"t":"a"}}"#
    );
    // A created row holding one, deep in it.
    let created = snap(
        "{\"id\":1,\"n\":123456789012345678901234567890}\n{\"id\":2,\"n\":5}\n{\"id\":3,\"a\":[1,{\"b\":-99999999999999999999999}]}\n",
    );
    let e = colsnap::events::diff(&old, &created, "id", 1).unwrap_err();
    assert!(
        matches!(&e, colsnap::Error::Value { row: 2, path, .. } if path == "a[1].b"),
        "{e}"
    );
    // Its deletion needs no value: one event.
    assert_eq!(
        colsnap::events::diff(&created, &old, "id", 1)
            .unwrap()
            .len(),
        1
    );
}

/// Events are read as JSON values: their own integers outside
/// `[-2^63, 2^64)` are applied as the nearest binary64, and every command
/// that applies a log says so on stderr with where the first one is (the
/// overlay and compaction count them).
#[test]
fn events_integers_past_64_bits_are_applied_as_binary64_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let log = "{\"seq\":1,\"op\":\"update\",\"key\":2,\"set\":{\"n\":123456789012345678901234567891}}\n{\"seq\":2,\"op\":\"create\",\"key\":9,\"row\":{\"id\":9,\"é\":\"x\",\"m\":[-99999999999999999999999]}}\n";
    let r = with_events(
        dir.path(),
        "{\"id\":1,\"n\":123456789012345678901234567890}\n{\"id\":2,\"n\":5}\n",
        log,
    );
    let want = "{\"id\":1,\"n\":123456789012345678901234567890}\n{\"id\":2,\"n\":1.2345678901234568e+29}\n{\"id\":9,\"é\":\"x\",\"m\":[-1e+23]}\n";
    let warning = "e.ndjson: 2 integers outside [-2^63, 2^64) in events (the first at line 1, column 43) are applied as the nearest binary64";
    assert!(r.export.status.success());
    assert_eq!(String::from_utf8(r.export.stdout).unwrap(), want);
    let err = String::from_utf8(r.export.stderr).unwrap();
    assert!(err.contains(warning), "{err}");
    assert!(r.compact.status.success());
    let err = String::from_utf8(r.compact.stderr).unwrap();
    assert!(err.contains(warning), "{err}");
    assert_eq!(export(&Snapshot::open(&r.compacted).unwrap()), want);
    let snap = r.snap;
    // The library's counts; a log without any: none, and no warning.
    let s = Snapshot::open(&snap).unwrap();
    let mut ov = colsnap::events::Overlay::new(s.clone(), "id").unwrap();
    ov.apply_reader(log.as_bytes()).unwrap();
    let n = ov.inexact_integers();
    assert_eq!((n.count, n.first), (2, Some((1, 43))));
    let plain = "{\"seq\":1,\"op\":\"update\",\"key\":2,\"set\":{\"n\":18446744073709551615}}\n";
    let compacted = |log: &str| {
        colsnap::events::compact(&s, log.as_bytes(), &Default::default(), Vec::new())
            .unwrap()
            .inexact_integers
    };
    assert_eq!(compacted(plain).count, 0);
    assert_eq!(compacted(log).first, Some((1, 43)));
    assert_eq!(compacted(log).count, 2);
}
