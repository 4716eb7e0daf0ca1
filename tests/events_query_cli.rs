//! `colsnap query --events` and `colsnap export --events` agree with the
//! same commands on the compacted snapshot.

mod common;

use colsnap::{BuildOptions, build_to_vec};
use common::colsnap;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const LOG: &str = r#"{"seq":5,"op":"update","key":2,"set":{"title":"c","user.login":"zoe"}}
{"seq":6,"op":"create","key":4,"at":0,"row":{"id":4,"title":"a","state":"open"}}
{"seq":7,"op":"delete","key":3}
{"seq":8,"op":"create","key":5,"row":{"id":5,"title":"bb","state":"closed"}}
"#;

fn setup(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let rows = vec![
        json!({"id": 1, "title": "b", "state": "open"}),
        json!({"id": 2, "title": "d", "state": "open"}),
        json!({"id": 3, "title": "f", "state": "closed"}),
    ];
    let old = dir.join("old.colsnap");
    let bytes = build_to_vec(
        &serde_json::to_vec(&rows).unwrap()[..],
        &BuildOptions::default(),
    )
    .unwrap();
    std::fs::write(&old, bytes).unwrap();
    let log = dir.join("events.ndjson");
    std::fs::write(&log, LOG).unwrap();
    let new = dir.join("new.colsnap");
    colsnap_ok(&[
        "compact",
        old.to_str().unwrap(),
        log.to_str().unwrap(),
        "-o",
        new.to_str().unwrap(),
    ]);
    (old, log, new)
}

fn colsnap_ok(args: &[&str]) -> Vec<u8> {
    let out = colsnap().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn query_with_events_equals_query_on_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let (old, log, new) = setup(dir.path());
    let (old, log, new) = (
        old.to_str().unwrap(),
        log.to_str().unwrap(),
        new.to_str().unwrap(),
    );
    let queries: &[&[&str]] = &[
        &["--sort", "title"],
        &["--sort", "-title", "--limit", "2", "--page", "2"],
        &["--where", "state=open", "--sort", "-id"],
        &["--where", "title^=b", "--fields", "id,title"],
        &["--search", "ZO", "--in", "user.login"],
        &["--where", "title in a,c,f", "--ndjson"],
    ];
    for q in queries {
        let mut with_events = vec!["query", old, "--events", log, "--key", "id"];
        with_events.extend_from_slice(q);
        let mut compacted = vec!["query", new];
        compacted.extend_from_slice(q);
        let a = colsnap_ok(&with_events);
        let b = colsnap_ok(&compacted);
        if q.contains(&"--ndjson") {
            let lines = |b: &[u8]| -> Vec<Value> {
                String::from_utf8(b.to_vec())
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect()
            };
            assert_eq!(lines(&a), lines(&b), "{q:?}");
        } else {
            assert_eq!(json_of(&a), json_of(&b), "{q:?}");
            assert!(json_of(&a)["pagination"]["total"].as_u64().is_some());
        }
    }
}

#[test]
fn export_with_events_equals_export_of_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let (old, log, new) = setup(dir.path());
    let (old, log, new) = (
        old.to_str().unwrap(),
        log.to_str().unwrap(),
        new.to_str().unwrap(),
    );
    let a = colsnap_ok(&["export", old, "--events", log]);
    let b = colsnap_ok(&["export", new]);
    assert_eq!(json_of(&a), json_of(&b));
    assert_eq!(json_of(&a).as_array().unwrap().len(), 4);
    let a = colsnap_ok(&["export", old, "--events", log, "--ndjson", "--rows", "1..3"]);
    let b = colsnap_ok(&["export", new, "--ndjson", "--rows", "1..3"]);
    assert_eq!(a, b);
}

#[test]
fn bad_events_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _, _) = setup(dir.path());
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"seq\":1,\"op\":\"delete\",\"key\":1}\n{oops\n").unwrap();
    for cmd in ["query", "export"] {
        let out = colsnap()
            .args([
                cmd,
                old.to_str().unwrap(),
                "--events",
                bad.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "{cmd}: partial output");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.ndjson") && err.contains("line 2"),
            "{cmd}: {err}"
        );
    }
    // Missing file, --key without --events, --columns with --events.
    let missing = dir.path().join("missing.ndjson");
    for args in [
        vec![
            "query",
            old.to_str().unwrap(),
            "--events",
            missing.to_str().unwrap(),
        ],
        vec!["query", old.to_str().unwrap(), "--key", "id"],
        vec![
            "export",
            old.to_str().unwrap(),
            "--events",
            missing.to_str().unwrap(),
            "--columns",
            "id",
        ],
    ] {
        let out = colsnap().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
