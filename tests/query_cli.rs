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
    // Rows only on stdout; the pagination object on stderr.
    assert_eq!(lines.len(), 1);
    let p: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(p["pagination"]["total"], 1);
}

#[test]
fn fields_keep_the_order_asked() {
    let (code, out, err) = run(&["--fields", "title,number,state", "--limit", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{\"data\":[{\"title\":\"Crash item 0\",\"number\":0,\"state\":\"open\"}],\
         \"pagination\":{\"page\":1,\"limit\":1,\"total\":30,\"totalPages\":30,\"hasMore\":true}}\n"
    );
    let (_, out, _) = run(&[
        "--fields",
        "state,labels[].name,number",
        "--limit",
        "1",
        "--ndjson",
    ]);
    assert_eq!(
        out,
        "{\"state\":\"open\",\"labels\":[{\"name\":\"bug\"}],\"number\":0}\n"
    );
}

#[test]
fn default_json_output_is_unchanged() {
    // The default output (not a terminal) is the one-line JSON document the
    // HTTP API mirrors, byte for byte.
    let (code, out, _) = run(&["--where", "number<2"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\"data\":[{\"number\":0,\"title\":\"Crash item 0\",\"state\":\"open\",\"labels\":[{\"name\":\"bug\"}],\"milestone\":null},\
         {\"number\":1,\"title\":\"Feature item 1\",\"state\":\"closed\",\"labels\":[],\"milestone\":\"v1\"}],\
         \"pagination\":{\"page\":1,\"limit\":50,\"total\":2,\"totalPages\":1,\"hasMore\":false}}\n"
    );
}

#[test]
fn count_and_all() {
    let (code, out, _) = run(&["--where", "state=open", "--count"]);
    assert_eq!((code, out.as_str()), (0, "15\n"));
    let (code, out, _) = run(&["--where", "state=nope", "--count"]);
    assert_eq!((code, out.as_str()), (0, "0\n"));
    for all in [&["--all"][..], &["--limit", "all"]] {
        let mut args = vec!["--ndjson", "--fields", "number"];
        args.extend_from_slice(all);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 30, "{all:?}");
    }
    // --limit 0 points at --count.
    let (code, _, err) = run(&["--limit", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--count"), "{err}");
}

#[test]
fn ndjson_pipes_into_build_without_an_extra_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = snapshot(&dir);
    let q = colsnap()
        .args(["query"])
        .arg(&p)
        .args(["--where", "state=open", "--all", "--ndjson"])
        .output()
        .unwrap();
    assert!(q.status.success());
    let out = dir.path().join("open.colsnap");
    colsnap()
        .args(["build", "-", "-o"])
        .arg(&out)
        .write_stdin(q.stdout)
        .assert()
        .success();
    let (code, n, _) = {
        let o = colsnap()
            .arg("query")
            .arg(&out)
            .arg("--count")
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8(o.stdout).unwrap(), ())
    };
    assert_eq!((code, n.as_str()), (Some(0), "15\n"));
}

#[test]
fn table_format_fits_the_width() {
    let dir = tempfile::tempdir().unwrap();
    let p = snapshot(&dir);
    for width in ["40", "80", "120"] {
        let o = colsnap()
            .arg("query")
            .arg(&p)
            .args(["--format", "table", "--limit", "3"])
            .env("COLUMNS", width)
            .output()
            .unwrap();
        assert!(o.status.success());
        let text = String::from_utf8(o.stdout).unwrap();
        let w: usize = width.parse().unwrap();
        for l in text.lines().take(5) {
            assert!(l.chars().count() <= w, "{width}: {l:?}");
        }
        assert!(text.contains("rows 1-3 of 30"), "{text}");
    }
    let o = colsnap()
        .arg("query")
        .arg(&p)
        .args([
            "--format",
            "table",
            "--fields",
            "number,labels[].name",
            "--where",
            "number<1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("number  labels[].name\n"), "{text}");
    let table = |args: &[&str]| {
        let o = colsnap()
            .arg("query")
            .arg(&p)
            .args(["--format", "table"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(table(&["--where", "number<0"]), "no matching rows\n");
    assert_eq!(
        table(&["--page", "9", "--limit", "10"]),
        "no rows on page 9: 30 rows in 3 pages\n"
    );
    // --offset: the summary counts from the offset.
    let t = table(&["--offset", "3", "--limit", "2", "--fields", "number"]);
    assert!(t.contains("\n3\n4\nrows 4-5 of 30"), "{t}");
    assert!(text.contains("0       bug"), "{text}");
}

#[test]
fn operator_typos_are_usage_errors_with_a_hint() {
    for (w, hint) in [
        ("state==open", "did you mean `state=open`?"),
        ("state<>open", "did you mean `state!=open`?"),
        ("title~crash", "--search"),
    ] {
        let (code, out, err) = run(&["--where", w]);
        assert_eq!(code, 2, "{w}: {err}");
        assert!(out.is_empty());
        assert!(err.contains(hint), "{w}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    // An unknown field: a short suggestion, not a list of every field.
    let (code, _, err) = run(&["--fields", "titel,number"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `title`?"), "{err}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for (args, needle) in [
        (vec!["--where", "nope=1"], "unknown field `nope`"),
        (vec!["--where", "number=abc"], "not a number"),
        (vec!["--where", "number"], "expected FIELD OP VALUE"),
        (vec!["--sort", "titel"], "did you mean `title`?"),
        (
            vec!["--fields", "number,,title"],
            "--fields `number,,title`: name 2 of 3 is empty",
        ),
        (vec!["--fields", "number,"], "name 2 of 2 is empty"),
        (
            vec!["--search", "x", "--in", ",title"],
            "--in `,title`: name 1 of 2",
        ),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn facets_count_rows_per_value_under_the_filters() {
    let (code, out, err) = run(&[
        "--where",
        "state=open",
        "--facet",
        "labels[].name",
        "--facet",
        "milestone",
        "--facet-size",
        "1",
        "--limit",
        "1",
        "--fields",
        "number",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // The page and pagination are those of the query without --facet.
    assert_eq!(v["data"], json!([{"number": 0}]));
    assert_eq!(v["pagination"]["total"], 15);
    // open: even numbers; bug: multiples of 5 -> 0, 10, 20 (3 rows);
    // milestone v1 unless a multiple of 4 (null).
    assert_eq!(
        v["facets"],
        json!([
            {"field": "labels[].name", "values": [{"value": "bug", "count": 3}],
             "otherRows": 0, "distinct": 1, "missingRows": 12},
            {"field": "milestone", "values": [{"value": "v1", "count": 7}],
             "otherRows": 0, "distinct": 1, "missingRows": 8}
        ])
    );
    // Without --facet the document has no `facets` key (unchanged).
    let (_, out, _) = run(&["--limit", "1"]);
    assert!(!out.contains("facets"));
    // Table: one small table per facet after the rows.
    let (_, out, _) = run(&["--facet", "state", "--format", "table", "--limit", "1"]);
    assert!(out.contains("state   rows\n"), "{out}");
    assert!(
        out.contains("closed    15\n") && out.contains("open      15\n"),
        "{out}"
    );
    // ndjson: rows on stdout, facets with the pagination on stderr.
    let (_, out, err) = run(&["--facet", "state", "--ndjson", "--limit", "2"]);
    assert_eq!(out.lines().count(), 2);
    let e: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(e["facets"][0]["distinct"], 2);
    // An unknown facet field: exit 2 with a suggestion.
    let (code, _, err) = run(&["--facet", "sate"]);
    assert_eq!(code, 2);
    assert!(err.contains("did you mean `state`?"), "{err}");
}

#[test]
fn csv_format() {
    let (code, out, err) = run(&[
        "--format",
        "csv",
        "--where",
        "number<2",
        "--fields",
        "title,number,labels[].name,milestone",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "title,number,labels[].name,milestone\nCrash item 0,0,bug,null\nFeature item 1,1,,v1\n"
    );
}
