//! Everyday use of the command line (issue 19): output fitted to the
//! terminal width, column filters, stdin snapshots, typo guards, progress.

mod common;

use common::{colsnap, fixture};
use std::path::{Path, PathBuf};

fn build(dir: &Path, input: &Path) -> PathBuf {
    let out = dir.join("s.colsnap");
    colsnap()
        .arg("build")
        .arg(input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    out
}

fn stdout_of(args: &[&str], snap: &Path, columns: Option<&str>) -> (i32, String, String) {
    let mut c = colsnap();
    c.arg(args[0]).arg(snap).args(&args[1..]);
    match columns {
        Some(w) => c.env("COLUMNS", w),
        None => c.env_remove("COLUMNS"),
    };
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// Display width, counting a ZWJ emoji sequence as 2 columns the way a
/// terminal does (the test does not trust the code under test).
fn width(l: &str) -> usize {
    let mut w = 0;
    let mut joined = false;
    for c in l.chars() {
        if c == '\u{200d}' {
            joined = true;
            continue;
        }
        if joined {
            joined = false;
            continue;
        }
        w += if (c as u32) >= 0x1F000 || ('\u{3000}'..='\u{9fff}').contains(&c) {
            2
        } else if c == '\u{fe0f}' {
            0
        } else {
            1
        };
    }
    w
}

#[test]
fn inspect_fits_80_and_120_columns() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"));
    for cols in ["80", "120"] {
        let (code, out, err) = stdout_of(&["inspect"], &snap, Some(cols));
        assert_eq!(code, 0, "{err}");
        let max: usize = cols.parse().unwrap();
        for l in out.lines() {
            assert!(width(l) <= max, "{cols}: {l:?}");
        }
        assert!(
            out.contains("user.login") && out.contains("100.0%"),
            "{out}"
        );
    }
    // --wide keeps every statistic (encodings, codecs, ratios).
    let (_, out, _) = stdout_of(&["inspect", "--wide"], &snap, Some("80"));
    assert!(out.contains("encoding") && out.contains("codec"), "{out}");
}

#[test]
fn inspect_column_filter_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"));
    let (code, out, _) = stdout_of(&["inspect", "--columns", "user.*"], &snap, Some("100"));
    assert_eq!(code, 0);
    assert!(out.contains("18 of 106 columns"), "{out}");
    assert!(
        out.contains("user.login") && !out.contains("\ntitle "),
        "{out}"
    );
    // A bare name keeps what lies under it; --schema is the short view.
    let (_, out, _) = stdout_of(&["inspect", "--schema", "--columns", "labels"], &snap, None);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["column", "type", "nulls", "absent", "distinct"]
    );
    assert!(
        lines.iter().any(|l| l.starts_with("labels[].name ")),
        "{out}"
    );
    assert!(!out.contains("string table"), "{out}");
    // --json honours the filter.
    let (_, out, _) = stdout_of(
        &["inspect", "--json", "--columns", "number,title"],
        &snap,
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let paths: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["number", "title"]);
    // An unknown column: exit 2, one short line with a suggestion.
    let (code, _, err) = stdout_of(&["inspect", "--columns", "titel"], &snap, None);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `title`?"), "{err}");
    assert!(err.len() < 300, "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn zwj_emoji_keep_tables_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}\u{200d}\u{1f466}";
    let input = dir.path().join("rows.ndjson");
    let rows: String = (0..4)
        .map(|i| {
            let label = if i == 0 {
                format!("{family} family")
            } else {
                format!("label {i}")
            };
            format!(
                "{{\"number\":{i},\"label\":\"{label}\",\"body\":\"{}\"}}\n",
                "x".repeat(90)
            )
        })
        .collect();
    std::fs::write(&input, rows).unwrap();
    let snap = build(dir.path(), &input);
    let (code, out, err) = stdout_of(
        &["query", "--format", "table", "--sort", "number"],
        &snap,
        Some("60"),
    );
    assert_eq!(code, 0, "{err}");
    // Every table line starts its third column at the same display column.
    let starts: Vec<usize> = out
        .lines()
        .take(6)
        .enumerate()
        .filter(|&(i, _)| i != 1)
        .map(|(_, l)| {
            let at = l.find("xxx").or_else(|| l.find("body")).unwrap();
            width(&l[..at])
        })
        .collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{starts:?}\n{out}");
    for l in out.lines() {
        assert!(width(l) <= 60, "{l:?}");
    }
    // inspect's min/max cells too: the label column holds the emoji.
    let (_, out, _) = stdout_of(&["inspect", "--columns", "label"], &snap, Some("80"));
    for l in out.lines() {
        assert!(width(l) <= 80, "{l:?}");
    }
}

#[test]
fn snapshots_can_come_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"));
    let bytes = std::fs::read(&snap).unwrap();
    colsnap()
        .args(["query", "-", "--count"])
        .write_stdin(bytes.clone())
        .assert()
        .success()
        .stdout("40\n");
    colsnap()
        .args(["inspect", "-", "--schema"])
        .write_stdin(bytes.clone())
        .assert()
        .success()
        .stdout(predicates::str::contains("user.login"));
    colsnap()
        .args(["verify", "-"])
        .write_stdin(bytes)
        .assert()
        .success();
    // Where stdin cannot be used, a clear usage error.
    colsnap()
        .args(["diff", "-", "-"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("only one of OLD and NEW"));
    colsnap()
        .arg("compact")
        .arg(&snap)
        .args(["-", "-o"])
        .arg(dir.path().join("x.colsnap"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("stdin) is not supported"));
}

#[test]
fn unknown_fields_get_the_same_short_suggestion_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"));
    for args in [
        &["query", "--fields", "nubmer"][..],
        &["query", "--where", "nubmer=1"],
        &["query", "--sort", "-nubmer"],
        &["export", "--columns", "nubmer"],
        &["inspect", "--columns", "nubmer"],
    ] {
        let (code, out, err) = stdout_of(args, &snap, None);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.contains("did you mean `number`?"), "{args:?}: {err}");
        assert!(err.contains("106"), "{args:?}: {err}");
        assert!(err.len() < 250, "{args:?}: {} bytes: {err}", err.len());
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn one_error_prefix_and_exit_code_rule() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"));
    // clap's usage errors carry the same prefix as every other error line.
    for args in [&["querx"][..], &["query", "--limit", "x", "f"]] {
        let o = colsnap().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("colsnap: error: "), "{args:?}: {err}");
    }
    // A missing event log is a usage error (2) in compact, query and export.
    let missing = dir.path().join("missing.ndjson");
    let out = dir.path().join("o.colsnap");
    for args in [
        vec![
            "compact".into(),
            snap.clone(),
            missing.clone(),
            "-o".into(),
            out.clone(),
        ],
        vec![
            "query".into(),
            snap.clone(),
            "--events".into(),
            missing.clone(),
        ],
        vec![
            "export".into(),
            snap.clone(),
            "--events".into(),
            missing.clone(),
        ],
    ] {
        let o = colsnap().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn truncated_snapshots_and_non_row_json_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"));
    let bytes = std::fs::read(&snap).unwrap();
    let cut = dir.path().join("cut.colsnap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    colsnap()
        .arg("inspect")
        .arg(&cut)
        .assert()
        .code(1)
        .stderr(predicates::str::contains("truncated snapshot"));
    // The same bytes on stdin are told the same way (they were "not a
    // colsnap snapshot: bad magic").
    colsnap()
        .args(["inspect", "-"])
        .write_stdin(&bytes[..bytes.len() / 2])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("stdin: truncated snapshot"));
    for input in ["[123]", "true", "{\"a\":1}\n5\n"] {
        let o = colsnap()
            .args(["build", "-", "-o"])
            .arg(dir.path().join("x.colsnap"))
            .write_stdin(input)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{input}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.contains("not rows at line"), "{input}: {err}");
        assert!(!err.contains("invalid JSON"), "{input}: {err}");
    }
    // Really invalid JSON is still called that.
    colsnap()
        .args(["build", "-", "-o"])
        .arg(dir.path().join("x.colsnap"))
        .write_stdin("{\"a\":")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("invalid JSON"));
}

#[test]
fn verify_json_and_short_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("github-sample.ndjson");
    let snap = build(dir.path(), &input);
    let o = colsnap()
        .arg("verify")
        .arg(&snap)
        .arg("--json")
        .arg("--against")
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["rows"], 40);
    assert_eq!(v["against"]["rows"], 40);
    assert!(v["bytes_checked"].as_u64().unwrap() > 0);
    // A mismatch in a long body: one short line, not two whole bodies.
    let text = std::fs::read_to_string(&input).unwrap();
    let mut rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows[0]["body"] = serde_json::Value::String("z".repeat(5000));
    let other = dir.path().join("other.ndjson");
    std::fs::write(
        &other,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let o = colsnap()
        .arg("verify")
        .arg(&snap)
        .arg("--against")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("mismatch at row 0") && err.contains("`body`"),
        "{err}"
    );
    assert!(err.len() < 600, "{} bytes: {err}", err.len());
}

#[test]
fn counts_use_thousands_separators_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..1500).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let input = dir.path().join("rows.ndjson");
    std::fs::write(&input, rows).unwrap();
    let out = dir.path().join("s.colsnap");
    colsnap()
        .arg("build")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicates::str::contains(": 1,500 rows, 1 columns"));
    colsnap()
        .arg("verify")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicates::str::contains("ok: 1,500 rows"));
}

#[test]
fn version_names_the_format_and_the_codecs() {
    let o = colsnap().arg("--version").output().unwrap();
    assert!(o.status.success());
    let v = String::from_utf8(o.stdout).unwrap();
    assert!(
        v.starts_with(&format!("colsnap {}\n", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(
        v.contains(&format!("format version {}", colsnap::format::VERSION)),
        "{v}"
    );
    assert!(v.contains("zstd 1."), "{v}");
    // -V stays one line.
    colsnap()
        .arg("-V")
        .assert()
        .success()
        .stdout(format!("colsnap {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn export_takes_where_sort_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let snap = build(dir.path(), &fixture("github-sample.ndjson"));
    let q = ["--where", "labels[].name=activerecord", "--sort", "-number"];
    let (code, exported, err) =
        stdout_of(&[&["export"][..], &q, &["--ndjson"]].concat(), &snap, None);
    assert_eq!(code, 0, "{err}");
    let (_, queried, _) = stdout_of(
        &[&["query"][..], &q, &["--all", "--ndjson"]].concat(),
        &snap,
        None,
    );
    assert_eq!(exported, queried);
    assert_eq!(exported.lines().count(), 12);
    // The JSON array form, --columns and --rows (counted within the result).
    let (code, out, _) = stdout_of(
        &[
            &["export"][..],
            &q,
            &["--columns", "number", "--rows", "1..3"],
        ]
        .concat(),
        &snap,
        None,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all: Vec<serde_json::Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        v,
        serde_json::json!([{"number": all[1]["number"]}, {"number": all[2]["number"]}])
    );
    let (_, out, _) = stdout_of(&["export", "--where", "number<0"], &snap, None);
    assert_eq!(out, "[]\n");
    // Typos are caught the same way as in query.
    let (code, _, err) = stdout_of(&["export", "--where", "state==open"], &snap, None);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `state=open`?"), "{err}");
}

#[test]
fn csv_quotes_commas_quotes_and_line_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.ndjson");
    std::fs::write(
        &input,
        "{\"n\":1,\"t\":\"a, \\\"b\\\"\",\"u\":{\"x\":1}}\n{\"n\":2,\"t\":\"line\\nbreak\"}\n",
    )
    .unwrap();
    let snap = build(dir.path(), &input);
    let (code, out, err) = stdout_of(&["query", "--format", "csv", "--sort", "n"], &snap, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "n,t,u\n1,\"a, \"\"b\"\"\",\"{\"\"x\"\":1}\"\n2,\"line\nbreak\",\n"
    );
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let o = colsnap().args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}");
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(
            text.contains("query") && text.contains("facet-size"),
            "{shell}"
        );
    }
    colsnap().args(["completions", "nope"]).assert().code(2);
    let o = colsnap().arg("man").output().unwrap();
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains(".TH colsnap 1"), "{text}");
    assert!(
        text.contains("inspect") && text.contains("compact"),
        "{text}"
    );
}

/// `--long-chunk-fetch 0` means what its help says (chunks cut at
/// `--long-chunk-size`); a size of 0 elsewhere is refused.
#[test]
fn long_chunk_fetch_takes_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("z.colsnap");
    let run = |extra: &[&str]| {
        colsnap()
            .arg("build")
            .arg(fixture("github-sample.ndjson"))
            .arg("-o")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--long-chunk-fetch", "0", "--long-chunk-size", "4K"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(colsnap::Snapshot::open(&out).unwrap().verify().is_ok());
    let bad = run(&["--long-chunk-size", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("between 1 byte and 4 GiB"));
}

/// Keys and values holding control characters (a newline, NUL, an ANSI
/// escape, C1 controls, the line separator) can neither break a table's
/// lines nor reach the terminal: every human-readable view shows them as
/// spaces or control pictures.
#[test]
fn control_characters_in_keys_and_values_are_shown_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ctl.ndjson");
    std::fs::write(
        &input,
        r#"{"a\nb":1,"\u0000":2,"x\u001b[31mred":"v\u001b[0m\u0085","\u2028":3,"s":"\u0007"}"#,
    )
    .unwrap();
    let snap = build(dir.path(), &input);
    for args in [
        &["inspect"][..],
        &["inspect", "--wide", "--strings", "5"],
        &["inspect", "--schema"],
        &["inspect", "--sources"],
        &["query", "--format", "table"],
    ] {
        let (code, out, err) = stdout_of(args, &snap, Some("200"));
        assert_eq!(code, 0, "{args:?}: {err}");
        let bad: Vec<char> = out
            .chars()
            .filter(|&c| {
                (c < ' ' && c != '\n') || ('\u{7f}'..='\u{9f}').contains(&c) || c == '\u{2028}'
            })
            .collect();
        assert!(bad.is_empty(), "{args:?}: {bad:?} in\n{out}");
        assert!(out.contains('␛'), "{args:?}:\n{out}");
    }
    // The data itself is untouched.
    let (code, out, _) = stdout_of(&["export", "--ndjson"], &snap, None);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["x\u{1b}[31mred"], "v\u{1b}[0m\u{85}");
}
