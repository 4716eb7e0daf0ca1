//! `colsnap query` end to end.

mod common;

use common::colsnap;
use serde_json::{Value, json};

fn snapshot(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let rows: Vec<Value> = (0..30)
        .map(|i| {
            json!({
                "number": i,
                "title": format!("{} item {i}", if i % 3 == 0 { "Crash" } else { "Feature" }),
                "state": if i % 2 == 0 { "open" } else { "closed" },
                "labels": if i % 5 == 0 { json!([{"name": "bug"}]) } else { json!([]) },
                "milestone": if i % 4 == 0 { Value::Null } else { json!("v1") },
            })
        })
        .collect();
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let bytes = colsnap::build_to_vec(text.as_bytes(), &Default::default()).unwrap();
    let p = dir.path().join("s.colsnap");
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = snapshot(&dir);
    let out = colsnap().arg("query").arg(&p).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn filters_sorts_and_pages() {
    let (code, out, err) = run(&[
        "--where",
        "state=open",
        "--where",
        "title^=Crash",
        "--sort",
        "-number",
        "--fields",
        "number,title",
        "--limit",
        "2",
        "--page",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // open & Crash: numbers 0, 6, 12, 18, 24 -> descending 24, 18, 12, 6, 0.
    assert_eq!(
        v["data"],
        json!([{"number": 12, "title": "Crash item 12"}, {"number": 6, "title": "Crash item 6"}])
    );
    assert_eq!(
        v["pagination"],
        json!({"page": 2, "limit": 2, "total": 5, "totalPages": 3, "hasMore": true})
    );
}

#[test]
fn lists_nulls_search_and_ndjson() {
    let (code, out, err) = run(&[
        "--where",
        "labels[].name=bug",
        "--where",
        "milestone!=null",
        "--search",
        "CRASH",
        "--in",
        "title",
        "--fields",
        "number",
        "--ndjson",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // bug: 0,5,10,15,20,25; milestone not null: not multiple of 4; Crash: multiple of 3 -> 15.
    assert_eq!(lines[0], json!({"number": 15}));
    assert_eq!(lines[1]["pagination"]["total"], 1);
    assert_eq!(lines.len(), 2);
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for (args, needle) in [
        (vec!["--where", "nope=1"], "unknown field `nope`"),
        (vec!["--where", "number=abc"], "not a number"),
        (vec!["--where", "number"], "expected FIELD OP VALUE"),
        (vec!["--sort", "titel"], "did you mean `title`?"),
        (vec!["--limit", "0"], "limit"),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
