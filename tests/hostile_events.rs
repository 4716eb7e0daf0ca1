//! Hostile event logs and the diff/compact contract (issue 11, items 9-12):
//! events are checked by the rules `build` applies to its input, and what
//! `diff` writes always applies, with `compact` and with an overlay
//! (`query --events`).

use colsnap::events::{
    CompactOptions, Event, EventOp, Overlay, compact_to_vec, diff, write_events,
};
use colsnap::{BuildOptions, Error, Snapshot};
use serde_json::{Value, json};

fn snap_of(rows: &[Value]) -> Snapshot {
    let text: String = rows.iter().map(|r| r.to_string() + "\n").collect();
    Snapshot::from_bytes(colsnap::build_to_vec(text.as_bytes(), &BuildOptions::default()).unwrap())
        .unwrap()
}

fn base() -> Snapshot {
    snap_of(&[json!({"id": 1, "t": "a"}), json!({"id": 2, "t": "b"})])
}

/// Apply `log` to `base()` through an overlay; the error message if any.
fn overlay_err(log: &str) -> Option<String> {
    let s = base();
    let mut o = Overlay::new(s.clone(), "id").unwrap();
    match o.apply_reader(log.as_bytes()) {
        Ok(_) => None,
        Err(e @ Error::Event { .. }) => Some(e.to_string()),
        Err(e) => panic!("not an event error: {e:?}"),
    }
}

/// Items 10: an event that would nest a row deeper than `build` allows (126
/// levels, the row being 1) is refused on its own line, through a `set`
/// path, a `set` value or a created row; 126 levels are accepted and
/// compact.
#[test]
fn events_nest_no_deeper_than_build_allows() {
    let path = |n: usize| vec!["a"; n].join(".");
    let nested = |n: usize| {
        let mut v = json!(1);
        for _ in 0..n {
            v = json!({ "a": v });
        }
        v
    };
    let refused = [
        // 201 path segments: the overlay accepted it, compact then failed.
        json!({"seq": 1, "op": "update", "key": 1, "set": {path(201): 1}}),
        json!({"seq": 1, "op": "update", "key": 1, "set": {path(127): 1}}),
        json!({"seq": 1, "op": "update", "key": 1, "set": {path(60): nested(67)}}),
    ];
    for ev in refused {
        let m = overlay_err(&ev.to_string()).expect("refused");
        assert!(m.contains("levels deep") && m.contains("line 1"), "{m}");
    }
    // A row too deep for an event log line (JSON allows 127 levels) still
    // reaches the overlay from a program: it is refused there too.
    let s = base();
    let mut o = Overlay::new(s.clone(), "id").unwrap();
    let Value::Object(row) = json!({"id": 3, "x": nested(126)}) else {
        unreachable!()
    };
    let ev = Event {
        seq: 1,
        key: json!(3),
        op: EventOp::Create { row, at: None },
    };
    let m = o.apply(&ev, 0).unwrap_err().to_string();
    assert!(m.contains("127 levels deep"), "{m}");
    for ev in [
        json!({"seq": 1, "op": "update", "key": 1, "set": {path(126): 1}}),
        json!({"seq": 1, "op": "update", "key": 1, "set": {path(60): nested(66)}}),
        json!({"seq": 1, "op": "create", "key": 3, "row": {"id": 3, "x": nested(125)}}),
    ] {
        assert_eq!(overlay_err(&ev.to_string()), None, "{ev}");
        let out = compact_to_vec(
            &base(),
            ev.to_string().as_bytes(),
            &CompactOptions::default(),
        );
        assert!(out.is_ok(), "{ev}: {out:?}");
    }
}

/// Item 11: a key repeated in any object of an event is refused, as `build`
/// refuses it: at the top level, inside `row`, inside `set`, inside values.
#[test]
fn duplicate_keys_are_refused_everywhere() {
    for line in [
        r#"{"seq":1,"op":"delete","op":"update","key":1,"set":{"t":"x"}}"#,
        r#"{"seq":1,"seq":2,"op":"delete","key":1}"#,
        r#"{"seq":1,"op":"delete","key":1,"key":2}"#,
        r#"{"seq":1,"op":"create","key":3,"row":{"id":3,"t":"x","t":"y"}}"#,
        r#"{"seq":1,"op":"update","key":1,"set":{"t":"x","t":"y"}}"#,
        r#"{"seq":1,"op":"update","key":1,"set":{"u":{"v":1,"v":2}}}"#,
        r#"{"seq":1,"op":"create","key":3,"row":{"id":3,"l":[{"a":1,"a":1}]}}"#,
    ] {
        let m = overlay_err(line).unwrap_or_else(|| panic!("accepted: {line}"));
        assert!(m.contains("duplicate key"), "{line}: {m}");
        assert!(Event::parse(1, line).is_err());
    }
    // The same keys once each are fine.
    assert_eq!(
        overlay_err(r#"{"seq":1,"op":"update","key":1,"set":{"t":"x","u":{"v":1}}}"#),
        None
    );
}

/// Item 12: sequence numbers do not wrap.
#[test]
fn seq_does_not_wrap() {
    let log = format!(
        "{}\n{}\n",
        json!({"seq": u64::MAX, "op": "update", "key": 1, "set": {"t": "x"}}),
        json!({"seq": 0, "op": "update", "key": 1, "set": {"t": "y"}})
    );
    let m = overlay_err(&log).expect("refused");
    assert!(m.contains("line 2") && m.contains("not after"), "{m}");
    let r = compact_to_vec(&base(), log.as_bytes(), &CompactOptions::default());
    assert!(matches!(r, Err(Error::Event { line: 2, .. })), "{r:?}");
}

/// Diff the snapshots of `old` and `new` (as `colsnap diff` does), then
/// apply the events to the old snapshot both ways (compaction; an overlay,
/// as `query --events` does) and check both give exactly the new
/// snapshot's rows.
#[track_caller]
fn diff_applies(old: &[Value], new: &[Value], first_seq: u64) {
    let (old_s, new_s) = (snap_of(old), snap_of(new));
    let events = diff(&old_s, &new_s, "id", first_seq).unwrap();
    let want = serde_json::to_string(&new_s.to_values().unwrap()).unwrap();
    let mut log = Vec::new();
    write_events(&mut log, &events).unwrap();
    let out = compact_to_vec(&old_s, &log[..], &CompactOptions::default())
        .unwrap_or_else(|e| panic!("compact refused the diff: {e}"));
    let got = Snapshot::from_bytes(out).unwrap().to_values().unwrap();
    assert_eq!(serde_json::to_string(&got).unwrap(), want);
    let mut o = Overlay::new(old_s.clone(), "id").unwrap();
    o.apply_reader(&log[..])
        .unwrap_or_else(|e| panic!("the overlay refused the diff: {e}"));
    let got = o.to_values().unwrap();
    assert_eq!(serde_json::to_string(&got).unwrap(), want);
}

/// Item 9: one row gaining 5,000 (and 20,000) new strings: the diff applies.
#[test]
fn a_row_bringing_thousands_of_new_strings_applies() {
    let old = vec![
        json!({"id": 1, "tags": ["a"]}),
        json!({"id": 2, "tags": []}),
    ];
    for n in [5_000, 20_000] {
        let tags: Vec<String> = (0..n).map(|i| format!("tag-{i}")).collect();
        let new = vec![
            json!({"id": 1, "tags": tags}),
            json!({"id": 2, "tags": []}),
            json!({"id": 3, "more": tags.iter().map(|t| format!("{t}!")).collect::<Vec<_>>()}),
        ];
        diff_applies(&old, &new, 1);
    }
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn value(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(r.below(2) == 0),
        2 => json!(r.below(1000) as i64 - 500),
        3 => json!(r.below(1000) as f64 / 8.0),
        4 => json!(format!("s{}", r.below(40))),
        5 => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.below(4) {
                m.insert(format!("f{}", r.below(5)), value(r, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn row(r: &mut Rng, id: u64, big: bool) -> Value {
    let mut m = serde_json::Map::new();
    // The key is not always first, fields come in varying order.
    let fields = r.below(5);
    let key_at = r.below(fields + 1);
    for i in 0..fields {
        if i == key_at {
            m.insert("id".into(), json!(id));
        }
        m.insert(format!("k{}", r.below(6)), value(r, 0));
    }
    if !m.contains_key("id") {
        m.insert("id".into(), json!(id));
    }
    if big {
        let n = 4_000 + r.below(6_000);
        let salt = r.next();
        m.insert(
            "many".into(),
            Value::Array((0..n).map(|i| json!(format!("m{salt}-{i}"))).collect()),
        );
    }
    Value::Object(m)
}

/// Item 9, property-style: the diff of random snapshot pairs (deletes,
/// moves, edits at any depth, new rows, now and then a row with thousands
/// of new strings) always applies, by compaction and by an overlay.
#[test]
fn diffs_of_random_pairs_always_apply() {
    let mut r = Rng(0x5EED);
    for case in 0..40 {
        let n_old = r.below(12);
        let old: Vec<Value> = (0..n_old).map(|i| row(&mut r, i, false)).collect();
        let mut new: Vec<Value> = Vec::new();
        for (i, o) in old.iter().enumerate() {
            match r.below(4) {
                0 => {}                   // deleted
                1 => new.push(o.clone()), // unchanged
                _ => {
                    let big = case % 10 == 3 && r.below(3) == 0;
                    new.push(row(&mut r, i as u64, big))
                }
            }
        }
        for j in 0..r.below(5) {
            let big = case % 10 == 7 && j == 0;
            new.push(row(&mut r, 100 + j, big));
        }
        // Shuffle some rows (moves).
        for _ in 0..r.below(3) {
            if new.len() > 1 {
                let (a, b) = (r.below(new.len() as u64), r.below(new.len() as u64));
                new.swap(a as usize, b as usize);
            }
        }
        if old.is_empty() || new.is_empty() {
            continue; // a snapshot of no rows has no key column to diff by
        }
        diff_applies(&old, &new, 1 + r.below(1000));
    }
}

/// Every log an overlay accepts compacts (SPEC.md 13.1), also at the
/// build's `max_columns`: the view's columns (the snapshot's and every
/// path events bring, nested objects and arrays, empty arrays too) are
/// counted as `build` counts them. A create of 70,000 columns was accepted
/// and `compact` then refused it (a review by a helper session).
#[test]
fn events_make_no_more_columns_than_compact_may_write() {
    let max = colsnap::schema::Limits::default().max_columns;
    // base(): the row, `id` and `t`: 3 columns. This row adds `t` (no),
    // `a`, `a.b`, `a.b[]`, `a.b[].c`, `e`, `e[]`: 6, then the fillers.
    let row = |fillers: usize| {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(3));
        m.insert("t".into(), json!("c"));
        m.insert("a".into(), json!({"b": [{"c": 1}]}));
        m.insert("e".into(), json!([]));
        for i in 0..fillers {
            m.insert(format!("k{i}"), json!(i));
        }
        m
    };
    let log = |fillers: usize| {
        let ev = json!({"seq": 1, "op": "create", "key": 3, "row": row(fillers)});
        let upd = json!({"seq": 2, "op": "update", "key": 1, "set": {"a.b": [{"c": 2}], "e": [1]}});
        format!("{ev}\n{upd}\n")
    };
    let fits = max - 3 - 6;
    // At the limit: the overlay applies it and it compacts, to the rows
    // `build` makes of the same JSON.
    let s = base();
    let mut o = Overlay::new(s.clone(), "id").unwrap();
    let e_nested = "{\"seq\":3,\"op\":\"update\",\"key\":2,\"set\":{\"e\":[[1]]}}\n";
    o.apply_reader(log(fits).as_bytes()).unwrap();
    let compacted = compact_to_vec(&s, log(fits).as_bytes(), &CompactOptions::default()).unwrap();
    assert_eq!(
        Snapshot::from_bytes(compacted)
            .unwrap()
            .footer()
            .nodes
            .len(),
        max
    );
    // One column more, by the create or by a later update (`e[][]`):
    // refused, naming the limit, and the overlay is unchanged.
    match o.apply_reader(e_nested.as_bytes()) {
        Err(e @ Error::Event { .. }) => {
            assert!(e.to_string().contains("max_columns"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.len(), 3);
    let m = overlay_err(&log(fits + 1)).expect("refused");
    assert!(m.contains("max_columns") && m.contains("line 1"), "{m}");
    let m = overlay_err(&format!(
        "{}\n",
        json!({"seq": 1, "op": "create", "key": 3, "row": row(70_000)})
    ))
    .expect("refused");
    assert!(m.contains("more than the 65535"), "{m}");
    // `build` refuses the same rows at one column more.
    let mut text = String::new();
    for r in [
        json!({"id": 1, "t": "a"}),
        json!({"id": 2, "t": "b"}),
        Value::Object(row(fits + 1)),
    ] {
        text.push_str(&format!("{r}\n"));
    }
    let built = colsnap::build_to_vec(text.as_bytes(), &BuildOptions::default());
    assert!(built.is_err());
}

/// No string or key longer than `build` takes (`max_string_len`, 64 MiB)
/// reaches the overlay: `compact` would refuse it.
#[test]
fn events_bring_no_string_longer_than_build_takes() {
    let max = colsnap::schema::Limits::default().max_string_len;
    let long = "x".repeat(max + 1);
    let evs = [
        EventOp::Update {
            set: vec![(vec!["t".into()], json!(long))],
            remove: vec![],
        },
        EventOp::Update {
            set: vec![(vec!["n".into()], json!({ long.as_str(): 1 }))],
            remove: vec![],
        },
        EventOp::Update {
            set: vec![(vec![long.clone()], json!(1))],
            remove: vec![],
        },
        EventOp::Update {
            set: vec![],
            remove: vec![vec![long.clone()]],
        },
    ];
    for op in evs {
        let mut o = Overlay::new(base(), "id").unwrap();
        let ev = Event {
            seq: 1,
            key: json!(1),
            op,
        };
        match o.apply(&ev, 7) {
            Err(e @ Error::Event { .. }) => {
                assert!(e.to_string().contains("max_string_len"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(o.applied(), 0);
    }
    // The longest string `build` takes is accepted.
    let mut o = Overlay::new(base(), "id").unwrap();
    let ev = Event {
        seq: 1,
        key: json!(1),
        op: EventOp::Update {
            set: vec![(vec!["t".into()], json!("y".repeat(max)))],
            remove: vec![],
        },
    };
    o.apply(&ev, 1).unwrap();
}

/// A misspelled `set` is named as the unexpected field it is, and one
/// path spelled twice in a `set` (`title` and `titl\e`) is refused rather
/// than keeping the last value silently.
#[test]
fn an_update_names_a_misspelled_set_and_refuses_a_path_set_twice() {
    let m = overlay_err(r#"{"seq":1,"op":"update","key":1,"sett":{"t":"x"}}"#).expect("refused");
    assert!(m.contains("unexpected field `sett`"), "{m}");
    let m = overlay_err(r#"{"seq":1,"op":"update","key":1,"set":{"t":"x","\\t":"y"}}"#)
        .expect("refused");
    assert!(m.contains("names the path `t` twice"), "{m}");
    // A path and one inside it are two paths, applied in order.
    assert_eq!(
        overlay_err(r#"{"seq":1,"op":"update","key":1,"set":{"n":{"a":1},"n.b":2}}"#),
        None
    );
}

/// The overlay's column count never falls (a replaced object's paths stay
/// counted), so it refuses a log whose rows would fit; `compact` compacts
/// the events before such an event first, and takes the log (a review by
/// a helper session: it refused it too).
#[test]
fn compact_takes_a_log_the_column_count_alone_refuses() {
    let wide = |p: &str, n: usize| {
        let m: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("{p}{i}"), json!(1))).collect();
        Value::Object(m)
    };
    let log = [
        json!({"seq": 1, "op": "update", "key": 1, "set": {"o": wide("k", 40_000)}}),
        json!({"seq": 2, "op": "update", "key": 1, "set": {"o": 1}}),
        json!({"seq": 3, "op": "update", "key": 1, "set": {"p": wide("q", 30_000)}}),
    ]
    .iter()
    .map(|e| format!("{e}\n"))
    .collect::<String>();
    let s = base();
    let m = {
        let mut o = Overlay::new(s.clone(), "id").unwrap();
        match o.apply_reader(log.as_bytes()) {
            Err(e @ Error::Event { line: 3, .. }) => e.to_string(),
            other => panic!("{other:?}"),
        }
    };
    assert!(
        m.contains("max_columns") && m.contains("colsnap compact"),
        "{m}"
    );
    let c = Snapshot::from_bytes(
        compact_to_vec(&s, log.as_bytes(), &CompactOptions::default()).unwrap(),
    )
    .unwrap();
    // The row, `id`, `t`, `o`, `p` and `p`'s 30,000 keys.
    assert_eq!(c.footer().nodes.len(), 30_005);
    let first = c.rows_json(&[0], None).unwrap().pop().unwrap();
    assert_eq!(first["o"], json!(1));
    assert_eq!(first["p"], wide("q", 30_000));
}
