//! Event logs read from text, and the `compact` / `diff` commands.

mod common;

use colsnap::events::{Overlay, load_overlay};
use colsnap::{BuildOptions, Error, Snapshot, build_to_vec};
use common::{colsnap, write_snapshot};
use serde_json::{Value, json};

fn rows() -> Vec<Value> {
    vec![
        json!({"id": 1, "title": "b", "state": "open"}),
        json!({"id": 2, "title": "d", "state": "open"}),
        json!({"id": 3, "title": "f", "state": "closed"}),
    ]
}

const LOG: &str = r#"{"seq":5,"op":"update","key":2,"set":{"title":"c","user.login":"zoe"}}

{"seq":6,"op":"create","key":4,"at":0,"row":{"id":4,"title":"a"}}
{"seq":7,"op":"delete","key":3}
"#;

#[test]
fn a_log_replays_and_bad_lines_name_line_and_seq() {
    let snap = Snapshot::from_bytes(
        build_to_vec(
            &serde_json::to_vec(&rows()).unwrap()[..],
            &BuildOptions::default(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut o = Overlay::new(snap.clone(), "id").unwrap();
    assert_eq!(o.apply_reader(LOG.as_bytes()).unwrap(), 3);
    let got = o.to_values().unwrap();
    assert_eq!(
        got,
        vec![
            json!({"id": 4, "title": "a"}),
            json!({"id": 1, "title": "b", "state": "open"}),
            json!({"id": 2, "title": "c", "state": "open", "user": {"login": "zoe"}}),
        ]
    );
    let cases = [
        (
            "{\"seq\":8,\"op\":\"delete\",\"key\":1}\n{oops\n",
            2,
            None,
            "malformed JSON",
        ),
        (
            "{\"seq\":9,\"op\":\"delete\",\"key\":1}\n",
            1,
            Some(9),
            "sequence gap",
        ),
        (
            "{\"seq\":7,\"op\":\"delete\",\"key\":1}\n",
            1,
            Some(7),
            "not after",
        ),
        (
            "{\"seq\":8,\"op\":\"delete\",\"key\":3}\n",
            1,
            Some(8),
            "delete of the missing key 3",
        ),
        (
            "{\"seq\":8,\"op\":\"update\",\"key\":9,\"set\":{\"a\":1}}\n",
            1,
            Some(8),
            "update of the missing key 9",
        ),
        (
            "{\"seq\":8,\"op\":\"create\",\"key\":1,\"row\":{\"id\":1}}\n",
            1,
            Some(8),
            "existing key 1",
        ),
        (
            "{\"seq\":8,\"op\":\"create\",\"key\":8,\"row\":{\"id\":9}}\n",
            1,
            Some(8),
            "event's key is 8",
        ),
        (
            "{\"seq\":8,\"op\":\"create\",\"key\":8,\"at\":9,\"row\":{\"id\":8}}\n",
            1,
            Some(8),
            "past the end",
        ),
        (
            "{\"seq\":8,\"op\":\"move\",\"key\":1}\n",
            1,
            Some(8),
            "unknown operation `move`",
        ),
        (
            "{\"seq\":8,\"op\":\"update\",\"key\":1,\"set\":{\"id\":5}}\n",
            1,
            Some(8),
            "key field",
        ),
        (
            "{\"seq\":8,\"op\":\"update\",\"key\":1,\"set\":{\"title.x\":5}}\n",
            1,
            Some(8),
            "not an object",
        ),
    ];
    for (log, line, seq, msg) in cases {
        let mut o2 = Overlay::new(snap.clone(), "id").unwrap();
        o2.apply_reader(LOG.as_bytes()).unwrap();
        let before = serde_json::to_string(&o2.to_values().unwrap()).unwrap();
        let applied_before = o2.applied();
        match o2.apply_reader(log.as_bytes()) {
            Err(Error::Event {
                line: l,
                seq: s,
                message,
            }) => {
                // The good events before the bad line stay applied; count them.
                let good = line - 1;
                assert_eq!(l, line, "{log}");
                assert_eq!(s, seq, "{log}");
                assert!(message.contains(msg), "{log}: {message}");
                if good == 0 {
                    assert_eq!(
                        serde_json::to_string(&o2.to_values().unwrap()).unwrap(),
                        before,
                        "{log}"
                    );
                    assert_eq!(o2.applied(), applied_before);
                }
            }
            other => panic!("{log}: {other:?}"),
        }
    }
}

#[test]
fn cli_compact_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let old = write_snapshot(dir.path(), "old.colsnap", &rows());
    let log = dir.path().join("events.ndjson");
    std::fs::write(&log, LOG).unwrap();
    let new = dir.path().join("new.colsnap");
    colsnap()
        .args([
            "compact",
            old.to_str().unwrap(),
            log.to_str().unwrap(),
            "-o",
            new.to_str().unwrap(),
        ])
        .assert()
        .success();
    let snap = Snapshot::open(&old).unwrap();
    let mut o = load_overlay(snap.clone(), &log, "id").unwrap();
    let mut expect = Vec::new();
    o.write_snapshot(&mut expect, &BuildOptions::default())
        .unwrap();
    assert_eq!(std::fs::read(&new).unwrap(), expect);
    assert_eq!(
        Snapshot::open(&new).unwrap().to_values().unwrap(),
        o.to_values().unwrap()
    );

    // diff OLD NEW, then compact OLD with it: NEW again, byte for byte.
    let d = dir.path().join("diff.ndjson");
    colsnap()
        .args([
            "diff",
            old.to_str().unwrap(),
            new.to_str().unwrap(),
            "-o",
            d.to_str().unwrap(),
        ])
        .assert()
        .success();
    let again = dir.path().join("again.colsnap");
    colsnap()
        .args([
            "compact",
            old.to_str().unwrap(),
            d.to_str().unwrap(),
            "-o",
            again.to_str().unwrap(),
        ])
        .assert()
        .success();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&new).unwrap());
    // stdout by default
    let out = colsnap()
        .args(["diff", old.to_str().unwrap(), new.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(&d).unwrap()
    );
    // A stdout that cannot take them: an error naming it, not a panic.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_colsnap"))
            .args(["diff", old.to_str().unwrap(), new.to_str().unwrap()])
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("stdout"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    // A bad event: exit 1, the error names line and seq, no output file.
    std::fs::write(
        &log,
        "{\"seq\":1,\"op\":\"delete\",\"key\":1}\n{\"seq\":3,\"op\":\"delete\",\"key\":2}\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.colsnap");
    let out = colsnap()
        .args([
            "compact",
            old.to_str().unwrap(),
            log.to_str().unwrap(),
            "-o",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("seq 3") && err.contains("gap"),
        "{err}"
    );
    assert!(!bad.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        5,
        "no temporary file left"
    );
}

/// A snapshot of 12 rows and a log of events `1..=n` over it: updates,
/// creates and deletes, each valid after the ones before.
/// A top-level key `""` holding `x`, beside a top-level `x` (SPEC.md 1.6):
/// their paths are `.x` and `x`, and `diff`, `compact`, `query` and
/// `inspect` keep them apart (both were `x`: a diff of the inner one
/// compacted into the outer one).
#[test]
fn an_empty_top_level_key_is_a_field_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let a = vec![
        json!({"id": 1, "": {"x": 1}, "x": 5}),
        json!({"id": 2, "": {"x": 3}}),
        json!({"id": 3, "": 7, "x": 0}),
    ];
    let b = vec![
        json!({"id": 1, "": {"x": 2}, "x": 5}),
        json!({"id": 2, "": {"x": 3, "": "e"}}),
        json!({"id": 3, "": 8, "x": 0}),
    ];
    let old = write_snapshot(dir.path(), "a.colsnap", &a);
    let new = write_snapshot(dir.path(), "b.colsnap", &b);
    let paths: Vec<String> = Snapshot::open(&new)
        .unwrap()
        .columns()
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(paths, ["id", "", ".x", "x", "."]);

    let d = dir.path().join("d.ndjson");
    let (o, n, dp) = (
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        d.to_str().unwrap(),
    );
    colsnap().args(["diff", o, n, "-o", dp]).assert().success();
    let log = std::fs::read_to_string(&d).unwrap();
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{log}");
    assert_eq!(events[0]["set"], json!({".x": 2}), "{log}");
    let c = dir.path().join("c.colsnap");
    colsnap()
        .args(["compact", o, dp, "-o", c.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(Snapshot::open(&c).unwrap().to_values().unwrap(), b);

    // Events naming the fields by hand, then queries by those paths.
    let hand = dir.path().join("hand.ndjson");
    std::fs::write(
        &hand,
        concat!(
            r#"{"seq":1,"op":"update","key":2,"set":{".x":9,"x":4}}"#,
            "\n",
            r#"{"seq":2,"op":"update","key":3,"set":{"":{"x":0}},"remove":["x"]}"#,
            "\n",
        ),
    )
    .unwrap();
    let snap = Snapshot::open(&old).unwrap();
    let mut o2 = load_overlay(snap, &hand, "id").unwrap();
    assert_eq!(
        o2.to_values().unwrap(),
        vec![
            json!({"id": 1, "": {"x": 1}, "x": 5}),
            json!({"id": 2, "": {"x": 9}, "x": 4}),
            json!({"id": 3, "": {"x": 0}}),
        ]
    );
    let ids = |args: &[&str]| -> Vec<Value> {
        common::query_rows(&old, args)
            .into_iter()
            .map(|r| r["id"].clone())
            .collect()
    };
    assert_eq!(ids(&["--sort", "-.x"]), [json!(2), json!(1), json!(3)]);
    assert_eq!(ids(&["--where", ".x=3"]), [json!(2)]);
    assert_eq!(ids(&["--where", "x=5"]), [json!(1)]);
    assert_eq!(
        common::query_rows(&old, &["--fields", ".x", "--where", "id=1"]),
        [json!({"": {"x": 1}})]
    );
    let cols = common::cli_json(&[&"inspect", &old, &"--json", &"--columns", &".x"]);
    assert_eq!(cols["columns"].as_array().unwrap().len(), 1, "{cols}");
    assert_eq!(cols["columns"][0]["path"], ".x");
}

fn split_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let rows: Vec<Value> = (1..=12)
        .map(|i| json!({"id": i, "title": format!("t{i:02}"), "state": if i % 3 == 0 { "closed" } else { "open" }}))
        .collect();
    write_snapshot(dir, "base.colsnap", &rows)
}

fn gen_events(from: u64, to: u64) -> String {
    let mut out = String::new();
    for seq in from..=to {
        let e = match seq % 4 {
            0 => json!({"seq": seq, "op": "create", "key": 100 + seq,
                        "row": {"id": 100 + seq, "title": format!("new{seq}"), "state": "open"}}),
            1 => json!({"seq": seq, "op": "update", "key": 1 + seq % 12,
                        "set": {"title": format!("u{seq}"), "state": if seq % 3 == 0 { "open" } else { "closed" }}}),
            // Delete the row created three events before.
            3 if seq > 4 => json!({"seq": seq, "op": "delete", "key": 100 + seq - 3}),
            _ => {
                json!({"seq": seq, "op": "update", "key": 1 + seq % 12, "set": {"user.login": format!("l{seq}")}})
            }
        };
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

fn split_json(log: &std::path::Path, dir: &std::path::Path, n: &str) -> Value {
    let out = common::succeeded(
        colsnap()
            .args([
                "events",
                "split",
                log.to_str().unwrap(),
                dir.to_str().unwrap(),
            ])
            .args(["--per-segment", n, "--json"])
            .output()
            .unwrap(),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn query_out(snap: &std::path::Path, events: &std::path::Path, q: &[&str]) -> String {
    let out = common::succeeded(
        colsnap()
            .args([
                "query",
                snap.to_str().unwrap(),
                "--events",
                events.to_str().unwrap(),
            ])
            .args(q)
            .output()
            .unwrap(),
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ranges(report: &Value) -> Vec<(u64, u64, bool)> {
    report["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["first"].as_u64().unwrap(),
                s["last"].as_u64().unwrap(),
                s["new"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn events_split_segments_query_like_the_log_and_grow() {
    let dir = tempfile::tempdir().unwrap();
    let snap = split_fixture(dir.path());
    let log = dir.path().join("events.ndjson");
    let segs = dir.path().join("segs");
    std::fs::write(&log, gen_events(1, 30)).unwrap();
    let r = split_json(&log, &segs, "8");
    assert_eq!(
        ranges(&r),
        [(1, 7, true), (8, 15, true), (16, 23, true), (24, 30, true)]
    );
    assert_eq!(
        (r["written"].as_u64(), r["reused"].as_u64()),
        (Some(4), Some(0))
    );
    for s in r["segments"].as_array().unwrap() {
        let p = std::path::Path::new(s["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(p).unwrap().len(),
            s["bytes"].as_u64().unwrap()
        );
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("events-0000000000000000") && name.ends_with(".ndjson"),
            "{name}"
        );
        assert_eq!(
            s["events"].as_u64().unwrap(),
            s["last"].as_u64().unwrap() - s["first"].as_u64().unwrap() + 1
        );
    }
    let queries: [&[&str]; 3] = [
        &["--where", "state=open", "--count"],
        &[
            "--sort",
            "title",
            "--fields",
            "id,title,state,user.login",
            "--format",
            "json",
        ],
        &["--where", "state=closed", "--sort", "-id", "--limit", "5"],
    ];
    for q in queries {
        assert_eq!(
            query_out(&snap, &segs, q),
            query_out(&snap, &log, q),
            "{q:?}"
        );
    }

    // A longer log: the full segments are reused, only new ones written
    // (the old partial one stays, covered by the longer one).
    std::fs::write(&log, gen_events(1, 40)).unwrap();
    let before: Vec<_> = std::fs::read_dir(&segs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = colsnap()
        .args([
            "events",
            "split",
            log.to_str().unwrap(),
            segs.to_str().unwrap(),
        ])
        .args(["--per-segment", "8"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let states: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit("  ").next().unwrap())
        .collect();
    assert_eq!(
        states,
        ["present", "present", "present", "new", "new", "new"],
        "{text}"
    );
    assert!(
        text.lines().next().unwrap().contains("  7 events  "),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 written, 3 already present"), "{err}");
    let after = std::fs::read_dir(&segs).unwrap().count();
    assert_eq!(after, before.len() + 3);
    // Again: nothing new.
    let r = split_json(&log, &segs, "8");
    assert_eq!(
        (r["written"].as_u64(), r["reused"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(
        ranges(&r)
            .iter()
            .map(|&(a, b, _)| (a, b))
            .collect::<Vec<_>>(),
        [(1, 7), (8, 15), (16, 23), (24, 31), (32, 39), (40, 40)]
    );
    for q in queries {
        assert_eq!(
            query_out(&snap, &segs, q),
            query_out(&snap, &log, q),
            "{q:?}"
        );
    }

    // A same-named file with other bytes: an error, nothing written.
    let victim = std::path::PathBuf::from(r["segments"][1]["path"].as_str().unwrap());
    std::fs::write(&victim, b"damaged\n").unwrap();
    std::fs::write(&log, gen_events(1, 50)).unwrap();
    let n = std::fs::read_dir(&segs).unwrap().count();
    let out = colsnap()
        .args([
            "events",
            "split",
            log.to_str().unwrap(),
            segs.to_str().unwrap(),
        ])
        .args(["--per-segment", "8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other bytes") && err.contains("events-"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&segs).unwrap().count(), n);
}

#[test]
fn events_split_refuses_a_bad_log_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.ndjson");
    let segs = dir.path().join("segs");
    for (text, want) in [
        (
            format!("{}{{oops\n", gen_events(1, 4)),
            ["line 5", "malformed JSON"],
        ),
        (
            format!("{}{}", gen_events(1, 2), gen_events(4, 4)),
            ["line 3", "seq 4"],
        ),
        (
            format!(
                "{}\n{{\"seq\":3,\"op\":\"fly\",\"key\":1}}\n",
                gen_events(1, 2)
            ),
            ["line 4", "seq 3"],
        ),
    ] {
        std::fs::write(&log, &text).unwrap();
        let out = colsnap()
            .args([
                "events",
                "split",
                log.to_str().unwrap(),
                segs.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(want.iter().all(|w| err.contains(w)), "{want:?}: {err}");
        assert!(err.contains("events.ndjson"), "{err}");
        assert!(out.stdout.is_empty());
        assert!(!segs.exists(), "nothing written");
    }
    // A missing log is a usage error; --per-segment 0 is refused.
    let out = colsnap()
        .args(["events", "split", "missing.ndjson", segs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = colsnap()
        .args([
            "events",
            "split",
            log.to_str().unwrap(),
            segs.to_str().unwrap(),
        ])
        .args(["--per-segment", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!segs.exists());
    // DIR is a file (or lies under one): a usage error naming it.
    std::fs::write(&log, gen_events(1, 2)).unwrap();
    for target in [log.clone(), log.join("segs")] {
        let out = colsnap()
            .args(["events", "split", log.to_str().unwrap()])
            .arg(&target)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}: not a directory", log.display())),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), gen_events(1, 2));
}

/// A key rule broken by OLD's rows (two rows with one key) is named by
/// OLD's path, NEW's by NEW's.
#[test]
fn diff_names_the_file_whose_rows_break_the_key_rule() {
    let d = tempfile::tempdir().unwrap();
    let mut dup = rows();
    dup.push(json!({"id": 1, "title": "again"}));
    let twice = write_snapshot(d.path(), "twice.colsnap", &dup);
    let plain = write_snapshot(d.path(), "plain.colsnap", &rows());
    for (old, new, named, says) in [
        (&twice, &plain, "twice.colsnap", "the old rows"),
        (&plain, &twice, "twice.colsnap", "the new rows"),
    ] {
        let o = colsnap()
            .args(["diff", old.to_str().unwrap(), new.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("{named}: row 3")), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

/// A `--key` that names no column of a snapshot with rows is a usage error
/// naming the snapshot and the closest columns, in every command that
/// takes one; it used to pass and fail at the first update as "the missing
/// key", which hid the typo. A snapshot without rows has no columns yet: any
/// key is taken there.
#[test]
fn a_key_field_that_is_no_column_is_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write_snapshot(dir.path(), "s.colsnap", &rows());
    let log = dir.path().join("events.ndjson");
    std::fs::write(&log, LOG).unwrap();
    let (s, l) = (snap.to_str().unwrap(), log.to_str().unwrap());
    let out = dir.path().join("o.colsnap");
    let o = out.to_str().unwrap();
    let site = dir.path().join("site");
    let site = site.to_str().unwrap();
    let runs: [&[&str]; 5] = [
        &["compact", s, l, "-o", o, "--key", "idd"],
        &["query", s, "--events", l, "--key", "idd", "--count"],
        &["export", s, "--events", l, "--key", "idd"],
        &["diff", s, s, "--key", "idd"],
        &["publish", s, site, "--events", l, "--key", "idd"],
    ];
    for args in runs {
        let r = colsnap().args(args).assert().code(2);
        let err = String::from_utf8_lossy(&r.get_output().stderr).to_string();
        assert!(
            err.contains("s.colsnap: --key: unknown column `idd`; did you mean `id`?"),
            "{args:?}: {err}"
        );
    }
    assert!(!out.exists() && !std::path::Path::new(site).exists());
    // A path events cannot key by is a usage error too, not the file's.
    let r = colsnap()
        .args(["diff", s, s, "--key", "labels[].name"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&r.get_output().stderr).to_string();
    assert!(err.contains("--key `labels[].name`:"), "{err}");
    // No rows, no columns: the key is whatever the events create.
    let empty = write_snapshot(dir.path(), "e.colsnap", &[]);
    std::fs::write(
        &log,
        "{\"seq\":1,\"op\":\"create\",\"key\":\"a\",\"row\":{\"k\":\"a\"}}\n",
    )
    .unwrap();
    colsnap()
        .args(["compact", empty.to_str().unwrap(), l, "-o", o, "--key", "k"])
        .assert()
        .success();
}
