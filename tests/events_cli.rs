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
