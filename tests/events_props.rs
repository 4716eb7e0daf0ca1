//! Property tests of events: the overlay, compaction and diff agree with a
//! snapshot rebuilt from the replayed JSON.

mod common;

use colsnap::events::{
    Event, EventOp as Op, Overlay, OverlaySource, compact_to_vec, diff, diff_values, write_events,
};
use colsnap::query::{
    Engine, Filter, Literal, Op as QOp, Paging, Query, Search, SnapshotSource, SortKey,
};
use colsnap::{Error, Snapshot, build_to_vec};
use common::tiny_opts;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn snapshot(rows: &[Value]) -> Snapshot {
    common::snapshot_of(rows, &tiny_opts())
}

/// Order-sensitive text of rows.
fn text(rows: &[Value]) -> String {
    serde_json::to_string(rows).unwrap()
}

const POOL: &[&str] = &[
    "",
    "a",
    "ab",
    "b",
    "ba",
    "bug",
    "bugs",
    "c",
    "é",
    "日本",
    "z",
    "zz",
    "2024-01-02T03:04:05Z",
    "2023-12-31T23:59:59+01:00",
    "2024-01-02T03:04:05.5Z",
];

/// A string near the pool: equal, just before, just after, between.
fn string() -> impl Strategy<Value = String> {
    (0..POOL.len(), 0..5u8).prop_map(|(i, m)| {
        let s = POOL[i];
        match m {
            0 | 1 => s.to_string(),
            2 => {
                // just before: drop the last char (or "" stays "")
                let mut t = s.to_string();
                t.pop();
                t
            }
            3 => format!("{s}\u{0}"), // just after
            _ => format!("{s}m"),     // between it and its neighbours
        }
    })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => string().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => (-3i64..3).prop_map(Value::from),
        1 => prop_oneof![Just(json!(1.5)), Just(json!(-0.0)), Just(json!(u64::MAX))],
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => proptest::collection::vec(string().prop_map(Value::from), 0..3).prop_map(Value::Array),
        1 => (string(), scalar()).prop_map(|(a, b)| json!({"login": a, "x": b})),
    ]
}

/// Display paths events set and remove. The top-level key `""` (path ``)
/// holds objects like `user` does (`.login`, `.x`), beside a top-level `x`
/// (SPEC.md 1.6: `.x` and `x` are different fields).
const FIELDS: &[&str] = &[
    "t",
    "ts",
    "n",
    "user",
    "user.login",
    "labels",
    "new",
    "",
    ".login",
    "x",
];

/// Top-level keys of created rows.
const ROW_KEYS: &[&str] = &["t", "ts", "n", "user", "", "x"];

fn row_body() -> impl Strategy<Value = Vec<(usize, Value)>> {
    proptest::collection::vec((0..ROW_KEYS.len(), field_value()), 0..4)
}

fn make_row(id: i64, body: &[(usize, Value)]) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    for (f, v) in body {
        m.insert(ROW_KEYS[*f].into(), v.clone());
    }
    Value::Object(m)
}

#[derive(Clone, Debug)]
enum Act {
    Create(Vec<(usize, Value)>, Option<usize>),
    Update(usize, Vec<(usize, Value)>, Vec<usize>),
    Delete(usize),
    DeleteMissing,
    UpdateMissing,
    CreateExisting(usize),
    Gap,
}

fn act() -> impl Strategy<Value = Act> {
    let body = proptest::collection::vec((0..FIELDS.len(), field_value()), 0..3);
    prop_oneof![
        3 => (any::<usize>(), row_body(), proptest::option::of(any::<usize>()))
            .prop_map(|(_, b, at)| Act::Create(b, at)),
        5 => (any::<usize>(), body, proptest::collection::vec(0..FIELDS.len(), 0..2))
            .prop_map(|(k, s, r)| Act::Update(k, s, r)),
        2 => any::<usize>().prop_map(Act::Delete),
        1 => Just(Act::DeleteMissing),
        1 => Just(Act::UpdateMissing),
        1 => any::<usize>().prop_map(Act::CreateExisting),
        1 => Just(Act::Gap),
    ]
}

/// The reference model: apply an event to plain rows (independent of the overlay).
fn reference_apply(rows: &mut Vec<Value>, e: &Event) -> bool {
    let pos = rows.iter().position(|r| r["id"] == e.key);
    match (&e.op, pos) {
        (Op::Create { row, at }, None) => {
            let at = at.map(|a| a as usize).unwrap_or(rows.len());
            if at > rows.len() {
                return false;
            }
            rows.insert(at, Value::Object(row.clone()));
        }
        (Op::Update { set, remove }, Some(p)) => {
            let mut r = rows[p].clone();
            for (path, v) in set {
                let mut o = r.as_object_mut().unwrap();
                for k in &path[..path.len() - 1] {
                    let slot = o.entry(k.clone()).or_insert_with(|| json!({}));
                    match slot.as_object_mut() {
                        Some(x) => o = x,
                        None => return false,
                    }
                }
                o.insert(path.last().unwrap().clone(), v.clone());
            }
            for path in remove {
                let mut o = r.as_object_mut();
                for k in &path[..path.len() - 1] {
                    o = o.and_then(|o| o.get_mut(k)).and_then(|v| v.as_object_mut());
                }
                if let Some(o) = o {
                    o.shift_remove(path.last().unwrap());
                }
            }
            rows[p] = r;
        }
        (Op::Delete, Some(p)) => {
            rows.remove(p);
        }
        _ => return false,
    }
    true
}

/// A query of the engine plus the page to take.
#[derive(Clone, Debug)]
struct Q {
    query: Query,
    offset: usize,
    limit: Option<usize>,
}

/// An equality filter on a JSON scalar, as the engine takes it.
fn eq_filter(path: &str, v: &Value) -> Filter {
    let (op, values) = match v {
        Value::Null => (QOp::IsNull, vec![]),
        Value::Bool(b) => (QOp::Eq, vec![Literal::Bool(*b)]),
        Value::String(s) => (QOp::Eq, vec![Literal::Str(s.clone())]),
        Value::Number(n) => (
            QOp::Eq,
            vec![if let Some(i) = n.as_i64() {
                Literal::Int(i)
            } else if let Some(u) = n.as_u64() {
                Literal::UInt(u)
            } else {
                Literal::Float(n.as_f64().unwrap())
            }],
        ),
        _ => unreachable!("scalars only"),
    };
    Filter {
        path: path.into(),
        op,
        values,
    }
}

fn queries() -> impl Strategy<Value = Vec<Q>> {
    let col = prop_oneof![
        Just("t"),
        Just("ts"),
        Just("n"),
        Just("user.login"),
        Just("new"),
        Just("user"),
        // Columns inside arrays: items of the snapshot's and the events' rows.
        Just("t[]"),
        Just("ts[]"),
        Just("labels[]"),
        Just("user.x"),
        // The top-level key "" and what lies under it, beside `x`.
        Just(""),
        Just(".login"),
        Just(".x"),
        Just("x")
    ];
    let filter = prop_oneof![
        (col.clone(), scalar()).prop_map(|(c, v)| eq_filter(c, &v)),
        (
            prop_oneof![Just("t"), Just("ts"), Just("user.login"), Just(".login")],
            string()
        )
            .prop_map(|(c, s)| {
                Filter {
                    path: c.into(),
                    op: QOp::Prefix,
                    values: vec![Literal::Str(s)],
                }
            }),
    ];
    let texts = prop_oneof![Just("t"), Just("user.login"), Just("t[]"), Just("labels[]")];
    let search = proptest::option::of((texts, string())).prop_map(|o| {
        o.map(|(c, text)| Search {
            text,
            fields: vec![c.into()],
        })
    });
    let q = (
        proptest::collection::vec(filter, 0..2),
        search,
        proptest::collection::vec((col, any::<bool>()), 0..2),
        0..4usize,
        proptest::option::of(1..6usize),
    )
        .prop_map(|(filters, search, sort, offset, limit)| Q {
            query: Query {
                filters,
                search,
                sort: sort
                    .into_iter()
                    .map(|(p, desc)| SortKey {
                        path: p.into(),
                        desc,
                    })
                    .collect(),
            },
            offset,
            limit,
        });
    proptest::collection::vec(q, 1..6)
}

/// What a query gives: every matching row in order, and the page as JSON
/// text; or the kind of error.
fn run(engine: &Engine, q: &Q) -> Result<(Vec<Value>, Value), String> {
    let kind = |e: Error| format!("{e:?}").chars().take(7).collect::<String>();
    let rows = engine.run(&q.query).map_err(kind)?;
    let all = engine
        .page(
            &rows,
            Paging {
                offset: 0,
                limit: rows.len().max(1),
            },
            None,
        )
        .map_err(kind)?
        .data;
    let p = Paging {
        offset: q.offset,
        limit: q.limit.unwrap_or(usize::MAX),
    };
    let mut out = Vec::new();
    engine
        .page_json(&rows, p, None, false, &mut out)
        .map_err(kind)?;
    Ok((all, serde_json::from_slice(&out).unwrap()))
}

/// Is `s` a string the builder stores as a timestamp?
fn is_timestamp(s: &str) -> bool {
    colsnap::timestamp::looks_like(s) && colsnap::timestamp::parse(s).is_some()
}

fn event_error_of(r: colsnap::Result<()>) -> (u64, Option<u64>, String) {
    match r {
        Err(Error::Event { line, seq, message }) => (line, seq, message),
        other => panic!("expected an event error, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn overlay_equals_rebuilt(
        bodies in proptest::collection::vec(row_body(), 0..10),
        acts in proptest::collection::vec(act(), 0..16),
        qs in queries(),
    ) {
        let old: Vec<Value> = bodies.iter().enumerate().map(|(i, b)| make_row(i as i64 * 2, b)).collect();
        let snap = snapshot(&old);
        // The snapshot's rows (object keys in schema order) are what events replay onto.
        let old = snap.to_values().unwrap();
        let mut view = Overlay::new(snap.clone(), "id").unwrap();
        let mut model = old.clone();
        let mut log = Vec::new();
        let mut seq = 100u64;
        let mut next_id = 1000i64;
        for (line, a) in acts.iter().enumerate() {
            let line = line as u64 + 1;
            let pick = |k: usize| (!model.is_empty()).then(|| model[k % model.len()]["id"].clone());
            let (e, ok) = match a {
                Act::Create(b, at) => {
                    next_id += 1;
                    let at = at.map(|x| (x % (model.len() + 2)) as u64);
                    let row = make_row(next_id, b).as_object().unwrap().clone();
                    (Event { seq, key: json!(next_id), op: Op::Create { row, at } }, at.is_none_or(|a| a as usize <= model.len()))
                }
                Act::Update(k, s, r) => {
                    let Some(key) = pick(*k) else { continue };
                    let set = s.iter().map(|(f, v)| (colsnap::events::parse_path(FIELDS[*f]).unwrap(), v.clone())).collect();
                    let remove = r.iter().map(|f| colsnap::events::parse_path(FIELDS[*f]).unwrap()).collect();
                    let e = Event { seq, key, op: Op::Update { set, remove } };
                    // One path set twice in an event is refused.
                    let mut seen = std::collections::HashSet::new();
                    let twice = s.iter().any(|(f, _)| !seen.insert(*f));
                    let nothing = s.is_empty() && r.is_empty();
                    let ok = !nothing && !twice && reference_apply(&mut model.clone(), &e);
                    (e, ok)
                }
                Act::Delete(k) => {
                    let Some(key) = pick(*k) else { continue };
                    (Event { seq, key, op: Op::Delete }, true)
                }
                Act::DeleteMissing => (Event { seq, key: json!("missing"), op: Op::Delete }, false),
                Act::UpdateMissing => (Event { seq, key: json!(-7), op: Op::Update { set: vec![(vec!["t".into()], json!("x"))], remove: vec![] } }, false),
                Act::CreateExisting(k) => {
                    let Some(key) = pick(*k) else { continue };
                    let row = json!({"id": key.clone(), "t": "dup"}).as_object().unwrap().clone();
                    (Event { seq, key, op: Op::Create { row, at: None } }, false)
                }
                Act::Gap if log.is_empty() => continue,
                Act::Gap => (Event { seq: seq + 1, key: json!(0), op: Op::Delete }, false),
            };
            if ok {
                prop_assert!(reference_apply(&mut model, &e));
                view.apply(&e, line).unwrap();
                log.push(e);
                seq += 1;
            } else {
                let before = text(&view.to_values().unwrap());
                let (l, s, msg) = event_error_of(view.apply(&e, line));
                prop_assert_eq!(l, line);
                prop_assert_eq!(s, Some(e.seq));
                prop_assert!(!msg.is_empty());
                prop_assert_eq!(text(&view.to_values().unwrap()), before, "a rejected event changed the view");
            }
        }
        // The view is the replayed JSON, key order included.
        prop_assert_eq!(text(&view.to_values().unwrap()), text(&model));
        // Compaction (from the log) writes the same bytes as building the replayed JSON.
        let rebuilt_bytes = build_to_vec(&serde_json::to_vec(&model).unwrap()[..], &tiny_opts()).unwrap();
        let mut nd = Vec::new();
        write_events(&mut nd, &log).unwrap();
        let compacted = compact_to_vec(&snap, &nd[..], &colsnap::events::CompactOptions { key_field: "id".into(), build: tiny_opts() }).unwrap();
        prop_assert!(compacted == rebuilt_bytes, "compacted snapshot differs from the rebuilt one");
        let rebuilt = Snapshot::from_bytes(rebuilt_bytes).unwrap();
        // The query engine over the overlay answers like the engine over the
        // rebuilt snapshot.
        let got_engine = Engine::new(OverlaySource::new(view));
        let want_engine = Engine::new(SnapshotSource::new(rebuilt));
        for q in &qs {
            let a = run(&got_engine, q);
            let b = run(&want_engine, q);
            // Same rows in the same order with the same values (a snapshot
            // keeps object keys in schema order, so key order is not compared).
            prop_assert_eq!(&a, &b, "query {:?}", q);
            // A naive reference for string prefix filters.
            if let (Ok((rows, _)), [f]) = (&a, &q.query.filters[..])
                && f.op == QOp::Prefix
                && q.query.search.is_none()
                && q.query.sort.is_empty()
                && !f.path.contains('.')
            {
                let (c, Literal::Str(p)) = (f.path.as_str(), &f.values[0]) else { unreachable!() };
                // Timestamps are strings there only when the column holds other strings.
                let text_mode = model.iter().any(|r| r[c].as_str().is_some_and(|s| !is_timestamp(s)));
                let naive: Vec<Value> = model
                    .iter()
                    .filter(|r| r[c].as_str().is_some_and(|s| (text_mode || !is_timestamp(s)) && s.starts_with(p.as_str())))
                    .cloned()
                    .collect();
                prop_assert_eq!(rows, &naive);
            }
        }
        // Diff, then apply, reproduces NEW exactly.
        let d = diff_values(&old, &model, "id", 1).unwrap();
        // The snapshots' diff (keys and row hashes, changed rows read again)
        // gives the same events as the diff of their rows.
        let new_snap = snapshot(&model);
        let from_rows = diff_values(&old, &new_snap.to_values().unwrap(), "id", 1).unwrap();
        let from_snaps = diff(&snap, &new_snap, "id", 1).unwrap();
        let lines = |es: &[Event]| es.iter().map(Event::to_json).collect::<Vec<_>>();
        prop_assert_eq!(lines(&from_snaps), lines(&from_rows));
        let mut again = Overlay::new(snap.clone(), "id").unwrap();
        for (i, e) in d.iter().enumerate() {
            again.apply(e, i as u64 + 1).unwrap();
        }
        prop_assert_eq!(text(&again.to_values().unwrap()), text(&model));
    }

    /// Sorting a pure string column agrees with sorting the strings.
    #[test]
    fn string_sort_matches_naive(
        ts in proptest::collection::vec(string(), 0..12),
        news in proptest::collection::vec(string(), 0..12),
        desc in any::<bool>(),
    ) {
        let old: Vec<Value> = ts.iter().enumerate().map(|(i, s)| json!({"id": i, "t": format!("s{s}")})).collect();
        let snap = snapshot(&old);
        let mut view = Overlay::new(snap.clone(), "id").unwrap();
        let mut model = old.clone();
        for (i, s) in news.iter().enumerate() {
            let row = json!({"id": 100 + i, "t": format!("s{s}")});
            let e = Event { seq: i as u64, key: json!(100 + i), op: Op::Create { row: row.as_object().unwrap().clone(), at: None } };
            view.apply(&e, 1).unwrap();
            model.push(row);
        }
        let mut naive = model.clone();
        naive.sort_by(|a, b| {
            let o = a["t"].as_str().unwrap().cmp(b["t"].as_str().unwrap());
            if desc { o.reverse() } else { o }
        });
        if model.is_empty() {
            return Ok(()); // no rows, no column `t`
        }
        let engine = Engine::new(OverlaySource::new(view));
        let rows = engine.run(&Query { sort: vec![SortKey { path: "t".into(), desc }], ..Default::default() }).unwrap();
        let got = engine.page(&rows, Paging { offset: 0, limit: rows.len().max(1) }, None).unwrap().data;
        prop_assert_eq!(text(&got), text(&naive));
    }
}
