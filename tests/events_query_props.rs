//! The query engine over an overlay ([`OverlaySource`]) gives the results it
//! gives over a snapshot rebuilt from the replayed JSON: same rows in the
//! same order, same totals, same pages.

mod common;

use colsnap::Snapshot;
use colsnap::events::{Event, EventOp as Op, Overlay, OverlaySource, parse_path};
use colsnap::query::{Engine, Filter, Literal, Op as QOp, Paging, Query, Search, SortKey};
use common::tiny_opts;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

thread_local! {
    /// Set: snapshots put every string column of more than a byte a string
    /// into the long-text table, row-ordered (`Some(true)`) or sorted.
    static LONG: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

fn snapshot(rows: &[Value]) -> Snapshot {
    let opts = match LONG.get() {
        None => tiny_opts(),
        Some(row_order) => colsnap::BuildOptions {
            long_text_min_avg: 1,
            long_text_row_order: row_order,
            ..tiny_opts()
        },
    };
    common::snapshot_of(rows, &opts)
}

const POOL: &[&str] = &[
    "",
    "a",
    "ab",
    "abc",
    "b",
    "ba",
    "bug",
    "bugs",
    "Bug",
    "c",
    "é",
    "É",
    "日本",
    "日本語",
    "z",
];

const TIMES: &[&str] = &[
    "2024-01-02T03:04:05Z",
    "2023-12-31T23:59:59+01:00",
    "2024-01-02T03:04:05.5Z",
    "2020-02-29T00:00:00Z",
];

/// A string near the pool: equal, just before, just after, between.
fn string() -> impl Strategy<Value = String> {
    (0..POOL.len(), 0..5u8).prop_map(|(i, m)| {
        let s = POOL[i];
        match m {
            0 | 1 => s.to_string(),
            2 => {
                let mut t = s.to_string();
                t.pop();
                t
            }
            3 => format!("{s}\u{0}"),
            _ => format!("{s}m"),
        }
    })
}

fn time() -> impl Strategy<Value = String> {
    prop::sample::select(TIMES).prop_map(String::from)
}

/// Labels: objects with a name (a string or a timestamp), sometimes a bare string or an empty object.
fn labels() -> BoxedStrategy<Value> {
    prop::collection::vec(
        prop_oneof![
            4 => string().prop_map(|s| json!({ "name": s })),
            1 => time().prop_map(|s| json!({ "name": s })),
            1 => string().prop_map(Value::from),
            1 => Just(json!({})),
        ],
        0..3,
    )
    .prop_map(Value::Array)
    .boxed()
}

/// A value of field `f` (0: t string, 1: ts timestamp, 2: n int, 3: b bool,
/// 4: user object, 5: labels list).
fn value(f: usize) -> BoxedStrategy<Value> {
    let main: BoxedStrategy<Value> = match f {
        0 => string().prop_map(Value::from).boxed(),
        1 => time().prop_map(Value::from).boxed(),
        2 => (-3i64..4).prop_map(Value::from).boxed(),
        3 => any::<bool>().prop_map(Value::Bool).boxed(),
        5 => labels(),
        7 => string().prop_map(Value::from).boxed(),
        _ => string().prop_map(|s| json!({ "login": s })).boxed(),
    };
    prop_oneof![
        8 => main,
        1 => Just(Value::Null),
        1 => string().prop_map(Value::from),
    ]
    .boxed()
}

/// Top-level keys: `""` holds objects like `user`, so `.login` (SPEC.md
/// 1.6) lies beside `user.login` and a top-level `login`.
const FIELDS: &[&str] = &["t", "ts", "n", "b", "user", "labels", "", "login"];

fn body() -> impl Strategy<Value = Vec<(usize, Value)>> {
    prop::collection::vec(
        (0..FIELDS.len()).prop_flat_map(|f| value(f).prop_map(move |v| (f, v))),
        0..5,
    )
}

fn make_row(id: i64, body: &[(usize, Value)]) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    for (f, v) in body {
        m.insert(FIELDS[*f].into(), v.clone());
    }
    Value::Object(m)
}

#[derive(Clone, Debug)]
enum Act {
    Create(Vec<(usize, Value)>, Option<usize>),
    Update(usize, Vec<(usize, Value)>, Vec<usize>),
    SetLogin(usize, String),
    Delete(usize),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (body(), prop::option::of(any::<usize>())).prop_map(|(b, at)| Act::Create(b, at)),
        4 => (any::<usize>(), body(), prop::collection::vec(0..FIELDS.len(), 0..2))
            .prop_map(|(k, s, r)| Act::Update(k, s, r)),
        2 => (any::<usize>(), string()).prop_map(|(k, s)| Act::SetLogin(k, s)),
        2 => any::<usize>().prop_map(Act::Delete),
    ]
}

/// Apply `a` to the plain rows and return the event (None when it does not apply).
/// The snapshot of `bodies` (ids 0, 2, 4, ...) with every applicable
/// action of `acts` applied as an event: the expected rows (the model) and
/// the overlay that replayed the same events.
fn replay_all(bodies: &[Vec<(usize, Value)>], acts: &[Act]) -> (Vec<Value>, Overlay) {
    let old: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| make_row(i as i64 * 2, b))
        .collect();
    let snap = snapshot(&old);
    let mut model = snap.to_values().unwrap();
    let mut view = Overlay::new(snap, "id").unwrap();
    let mut next_id = 1000;
    let mut seq = 1;
    for a in acts {
        if let Some(e) = event(&mut model, a, seq, &mut next_id) {
            view.apply(&e, seq).unwrap();
            seq += 1;
        }
    }
    (model, view)
}

fn event(model: &mut Vec<Value>, a: &Act, seq: u64, next_id: &mut i64) -> Option<Event> {
    let pick = |k: usize| (!model.is_empty()).then(|| k % model.len());
    match a {
        Act::Create(b, at) => {
            *next_id += 1;
            let at = at.map(|x| x % (model.len() + 1));
            let row = make_row(*next_id, b);
            model.insert(at.unwrap_or(model.len()), row.clone());
            Some(Event {
                seq,
                key: json!(*next_id),
                op: Op::Create {
                    row: row.as_object().unwrap().clone(),
                    at: at.map(|a| a as u64),
                },
            })
        }
        Act::Update(k, s, r) => {
            let p = pick(*k)?;
            if s.is_empty() && r.is_empty() {
                return None;
            }
            // An event sets a path once (a path set twice is refused).
            let mut seen = std::collections::HashSet::new();
            let s: Vec<&(usize, Value)> = s.iter().filter(|(f, _)| seen.insert(*f)).collect();
            let o = model[p].as_object_mut().unwrap();
            for (f, v) in &s {
                o.insert(FIELDS[*f].into(), v.clone());
            }
            for f in r {
                o.shift_remove(FIELDS[*f]);
            }
            Some(Event {
                seq,
                key: model[p]["id"].clone(),
                op: Op::Update {
                    set: s
                        .iter()
                        .map(|(f, v)| (parse_path(FIELDS[*f]).unwrap(), v.clone()))
                        .collect(),
                    remove: r.iter().map(|f| parse_path(FIELDS[*f]).unwrap()).collect(),
                },
            })
        }
        Act::SetLogin(k, s) => {
            let p = pick(*k)?;
            let o = model[p].as_object_mut().unwrap();
            let user = o.entry("user").or_insert_with(|| json!({}));
            user.as_object_mut()?.insert("login".into(), json!(s));
            Some(Event {
                seq,
                key: model[p]["id"].clone(),
                op: Op::Update {
                    set: vec![(parse_path("user.login").unwrap(), json!(s))],
                    remove: vec![],
                },
            })
        }
        Act::Delete(k) => {
            let p = pick(*k)?;
            let key = model.remove(p)["id"].clone();
            Some(Event {
                seq,
                key,
                op: Op::Delete,
            })
        }
    }
}

const COLS: &[&str] = &[
    "t",
    "ts",
    "n",
    "b",
    "user.login",
    "id",
    "labels[].name",
    "labels[]",
    ".login",
    "login",
];

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        string(),
        time(),
        Just("2024-01-02".to_string()),
        (-3i64..4).prop_map(|v| v.to_string()),
        Just("true".to_string()),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let op = prop::sample::select(vec![
        QOp::Eq,
        QOp::Ne,
        QOp::In,
        QOp::Lt,
        QOp::Ge,
        QOp::Prefix,
        QOp::IsNull,
        QOp::NotAbsent,
    ]);
    (
        prop::sample::select(COLS),
        op,
        prop::collection::vec(literal(), 1..4),
    )
        .prop_map(|(p, op, vals)| Filter {
            path: p.into(),
            op,
            values: match op {
                QOp::IsNull | QOp::NotAbsent => vec![],
                QOp::In => vals.into_iter().map(Literal::Text).collect(),
                _ => vec![Literal::Text(vals[0].clone())],
            },
        })
}

/// One case of the overlay-vs-rebuilt properties: rows, events, queries
/// and the page asked.
type Case = (Vec<Vec<(usize, Value)>>, Vec<Act>, Vec<Query>, Paging);

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(body(), 1..12),
        prop::collection::vec(act(), 0..16),
        prop::collection::vec(query(), 1..5),
        1usize..4,
        1usize..6,
    )
        .prop_map(|(b, a, q, page, limit)| (b, a, q, Paging::page(page, limit).unwrap()))
}

fn query() -> impl Strategy<Value = Query> {
    let sort = prop::collection::vec(
        (prop::sample::select(COLS), any::<bool>()).prop_map(|(p, desc)| SortKey {
            path: p.into(),
            desc,
        }),
        0..3,
    );
    let search = prop::option::of((
        prop::sample::select(vec!["a", "B", "bug", "é", "本", "m", "2024"]),
        prop::sample::subsequence(vec!["t", "user.login", "labels[].name"], 0..4),
    ))
    .prop_map(|o| {
        o.map(|(t, f)| Search {
            text: t.into(),
            fields: f.into_iter().map(String::from).collect(),
        })
    });
    (prop::collection::vec(filter(), 0..2), search, sort).prop_map(|(filters, search, sort)| {
        Query {
            filters,
            search,
            sort,
        }
    })
}

/// The result of a query: rows' ids in order and the page, or the error kind.
fn run(
    engine: &Engine,
    q: &Query,
    p: Paging,
    fields: Option<&[String]>,
) -> Result<(Vec<Value>, Value), String> {
    let rows = engine
        .run(q)
        .map_err(|e| format!("{e:?}").chars().take(7).collect::<String>())?;
    let ids: Vec<Value> = engine
        .page(
            &rows,
            Paging {
                offset: 0,
                limit: rows.len().max(1),
            },
            Some(&["id".to_string()]),
        )
        .map_err(|e| e.to_string())?
        .data;
    let mut out = Vec::new();
    engine
        .page_json(&rows, p, fields, false, &mut out)
        .map_err(|e| format!("{e:?}").chars().take(7).collect::<String>())?;
    // The page asked as a page (`Engine::run_page`, `Engine::query_page`:
    // a one-key sort read from a kept order at the page alone) is the
    // same page.
    let (part, total) = engine.run_page(q, p).map_err(|e| e.to_string())?;
    let (a, b) = (
        p.offset.min(rows.len()),
        (p.offset + p.limit).min(rows.len()),
    );
    if (&part[..], total) != (&rows[a..b], rows.len()) {
        return Err(format!("run_page {part:?} of {total}, run {rows:?}"));
    }
    let page = engine.query_page(q, p, fields).map_err(|e| e.to_string())?;
    if page != engine.page(&rows, p, fields).map_err(|e| e.to_string())? {
        return Err(format!("query_page differs: {page:?}"));
    }
    Ok((ids, serde_json::from_slice(&out).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn engine_over_overlay_equals_rebuilt(
        (bodies, acts, qs, p) in case(),
        proj in prop::option::of(prop::sample::subsequence(vec!["id", "t", "user.login", "user"], 1..3)),
    ) {
        let (model, view) = replay_all(&bodies, &acts);
        let rebuilt = snapshot(&model);
        let want_engine = Engine::new(colsnap::query::SnapshotSource::new(rebuilt));
        // A cold engine over a copy of the view, asked the queries before
        // its field list: each field is typed alone when a query names it
        // (`RowSource::has_field`), each one-key sort merged into a fresh
        // base order.
        let cold_engine = Engine::new(OverlaySource::new(view.clone()));
        let got_engine = Engine::new(OverlaySource::new(view));
        // The field list and types equal the rebuilt snapshot's (typed
        // from kind counts and the delta, without building view columns).
        let sorted = |e: &Engine| {
            let mut f: Vec<String> = e.fields().iter().map(|f| format!("{} {} {}", f.path, f.ty, f.list)).collect();
            f.sort();
            f
        };
        prop_assert_eq!(sorted(&got_engine), sorted(&want_engine), "rows {}", serde_json::to_string(&model).unwrap());
        let fields: Option<Vec<String>> = proj.map(|p| p.into_iter().map(String::from).collect());
        for q in &qs {
            let cold = run(&cold_engine, q, p, fields.as_deref());
            let got = run(&got_engine, q, p, fields.as_deref());
            let want = run(&want_engine, q, p, fields.as_deref());
            prop_assert_eq!(&got, &want, "query {:?}\nrows {}", q, serde_json::to_string(&model).unwrap());
            prop_assert_eq!(&cold, &want, "cold, query {:?}\nrows {}", q, serde_json::to_string(&model).unwrap());
        }
        prop_assert_eq!(sorted(&cold_engine), sorted(&want_engine));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// An overlay over a snapshot whose long-text table is row-ordered
    /// (SPEC.md 7.6), its events bringing new strings before, between and
    /// after the table's, answers like the rebuilt snapshot with the
    /// long-text table sorted (and in row order).
    #[test]
    fn overlay_over_row_ordered_long_text_equals_rebuilt_sorted(
        (bodies, acts, qs, p) in case(),
    ) {
        LONG.set(Some(true));
        let (model, view) = replay_all(&bodies, &acts);
        prop_assert!(view.snapshot().footer().tables.get(1).is_none_or(|t| t.flags & 4 != 0));
        let rebuilt_rows = snapshot(&model);
        LONG.set(Some(false));
        let rebuilt_sorted = snapshot(&model);
        LONG.set(None);
        let got = Engine::new(OverlaySource::new(view));
        let sorted = Engine::new(colsnap::query::SnapshotSource::new(rebuilt_sorted));
        let rows = Engine::new(colsnap::query::SnapshotSource::new(rebuilt_rows));
        for q in &qs {
            let want = run(&sorted, q, p, None);
            prop_assert_eq!(&run(&got, q, p, None), &want, "query {:?}\nrows {}", q, serde_json::to_string(&model).unwrap());
            prop_assert_eq!(&run(&rows, q, p, None), &want, "query {:?}", q);
        }
    }
}

/// Strings placed just before, just after and between table strings sort
/// and filter like the strings themselves.
#[test]
fn new_strings_interleave_with_table_strings() {
    let old: Vec<Value> = ["b", "d", "f"]
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i, "t": s}))
        .collect();
    let snap = snapshot(&old);
    let mut view = Overlay::new(snap.clone(), "id").unwrap();
    for (i, s) in ["a", "c", "d", "e", "g", "b\u{0}"].iter().enumerate() {
        let row = json!({"id": 10 + i, "t": s});
        let e = Event {
            seq: i as u64,
            key: json!(10 + i),
            op: Op::Create {
                row: row.as_object().unwrap().clone(),
                at: None,
            },
        };
        view.apply(&e, 1).unwrap();
    }
    let engine = Engine::new(OverlaySource::new(view));
    let q = Query {
        sort: vec![SortKey {
            path: "t".into(),
            desc: false,
        }],
        filters: vec![Filter {
            path: "t".into(),
            op: QOp::Ge,
            values: vec![Literal::Text("b".into())],
        }],
        search: None,
    };
    let rows = engine.run(&q).unwrap();
    let page = engine
        .page(
            &rows,
            Paging {
                offset: 0,
                limit: 100,
            },
            Some(&["t".to_string()]),
        )
        .unwrap();
    let ts: Vec<&str> = page.data.iter().map(|v| v["t"].as_str().unwrap()).collect();
    assert_eq!(ts, ["b", "b\u{0}", "c", "d", "d", "e", "f", "g"]);
}

/// Columns inside arrays work with events: sorted by their first element,
/// filtered by any element, new strings included.
#[test]
fn list_columns_work_with_events() {
    let snap = snapshot(&[
        json!({"id": 1, "labels": [{"name": "bug"}, {"name": "ui"}]}),
        json!({"id": 2, "labels": [{"name": "docs"}]}),
        json!({"id": 3, "labels": []}),
    ]);
    let mut view = Overlay::new(snap.clone(), "id").unwrap();
    let evs = [
        Event {
            seq: 1,
            key: json!(3),
            op: Op::Update {
                set: vec![(vec!["labels".into()], json!([{"name": "crash"}]))],
                remove: vec![],
            },
        },
        Event {
            seq: 2,
            key: json!(4),
            op: Op::Create {
                row: json!({"id": 4, "labels": [{"name": "a11y"}, {"name": "bug"}]})
                    .as_object()
                    .unwrap()
                    .clone(),
                at: Some(0),
            },
        },
        Event {
            seq: 3,
            key: json!(2),
            op: Op::Delete,
        },
    ];
    for e in &evs {
        view.apply(e, e.seq).unwrap();
    }
    let engine = Engine::new(OverlaySource::new(view));
    let ids = |q: Query| -> Vec<i64> {
        let rows = engine.run(&q).unwrap();
        let page = engine
            .page(
                &rows,
                Paging {
                    offset: 0,
                    limit: 10,
                },
                Some(&["id".to_string()]),
            )
            .unwrap();
        page.data
            .iter()
            .map(|v| v["id"].as_i64().unwrap())
            .collect()
    };
    let sort = vec![SortKey {
        path: "labels[].name".into(),
        desc: false,
    }];
    assert_eq!(
        ids(Query {
            sort,
            ..Default::default()
        }),
        [4, 1, 3]
    );
    let bug = Filter {
        path: "labels[].name".into(),
        op: QOp::Eq,
        values: vec![Literal::Text("bug".into())],
    };
    assert_eq!(
        ids(Query {
            filters: vec![bug],
            ..Default::default()
        }),
        [4, 1]
    );
    let search = Search {
        text: "RAS".into(),
        fields: vec!["labels[].name".into()],
    };
    assert_eq!(
        ids(Query {
            search: Some(search),
            ..Default::default()
        }),
        [3]
    );
}

/// Ids of `q`'s rows, or the error kind.
fn ids_of(engine: &Engine, q: &Query) -> Result<Vec<Value>, String> {
    run(engine, q, Paging::page(1, 1).unwrap(), None).map(|(ids, _)| ids)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// One-key sorts, which the overlay answers by merging its changed rows
    /// into the base engine's cached order of the snapshot rows, equal the
    /// rebuilt snapshot's and the engine's own sort of the loaded column (a
    /// sort by the same key twice), with many events, over all rows and a
    /// filtered subset, on every column and in both directions; then again
    /// after more events, on a new source sharing the base (cached orders).
    #[test]
    fn one_key_sorts_merge_exactly(
        bodies in prop::collection::vec(body(), 8..40),
        acts in prop::collection::vec(act(), 0..48),
        more in prop::collection::vec(act(), 1..16),
        f in prop::option::of(filter()),
    ) {
        let old: Vec<Value> = bodies.iter().enumerate().map(|(i, b)| make_row(i as i64 * 2, b)).collect();
        let snap = snapshot(&old);
        let mut model = snap.to_values().unwrap();
        let mut view = Overlay::new(snap.clone(), "id").unwrap();
        let base = Engine::new(colsnap::query::SnapshotSource::new(snap.clone()));
        let mut next_id = 1000;
        let mut seq = 1;
        for batch in [&acts, &more] {
            for a in batch {
                if let Some(e) = event(&mut model, a, seq, &mut next_id) {
                    view.apply(&e, seq).unwrap();
                    seq += 1;
                }
            }
            let want_engine = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&model)));
            let src = std::sync::Arc::new(OverlaySource::with_base(view, base.clone()));
            let got_engine = Engine::from_source(src.clone());
            for path in COLS {
                for desc in [false, true] {
                    let key = SortKey { path: path.to_string(), desc };
                    for filters in [vec![], f.clone().into_iter().collect::<Vec<_>>()] {
                        let q = Query { filters, sort: vec![key.clone()], ..Default::default() };
                        let twice = Query { sort: vec![key.clone(), key.clone()], ..q.clone() };
                        let got = ids_of(&got_engine, &q);
                        prop_assert_eq!(&got, &ids_of(&want_engine, &q), "query {:?}\nrows {}", q, serde_json::to_string(&model).unwrap());
                        prop_assert_eq!(&got, &ids_of(&got_engine, &twice), "query {:?}", q);
                    }
                }
            }
            drop(got_engine);
            view = std::sync::Arc::try_unwrap(src).expect("sole owner").into_inner();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A live view: events applied one at a time, each followed by a new
    /// source sharing the base; its field list, its one-key sorts (typed
    /// delta kept by the source: a second engine over the same source only
    /// merges) and a page of rows equal the rebuilt snapshot's after every
    /// event.
    #[test]
    fn live_events_one_at_a_time_equal_rebuilt(
        bodies in prop::collection::vec(body(), 4..24),
        acts in prop::collection::vec(act(), 1..12),
    ) {
        let old: Vec<Value> = bodies.iter().enumerate().map(|(i, b)| make_row(i as i64 * 2, b)).collect();
        let snap = snapshot(&old);
        let mut model = snap.to_values().unwrap();
        let mut view = Overlay::new(snap.clone(), "id").unwrap();
        let base = Engine::new(colsnap::query::SnapshotSource::new(snap.clone()));
        let mut next_id = 1000;
        let mut seq = 1;
        for a in &acts {
            let Some(e) = event(&mut model, a, seq, &mut next_id) else { continue };
            view.apply(&e, seq).unwrap();
            seq += 1;
            let want = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&model)));
            let src = std::sync::Arc::new(OverlaySource::with_base(view, base.clone()));
            let fields = |e: &Engine| {
                let mut f: Vec<String> = e.fields().iter().map(|f| format!("{} {} {}", f.path, f.ty, f.list)).collect();
                f.sort();
                f
            };
            let first = Engine::from_source(src.clone());
            prop_assert_eq!(fields(&first), fields(&want));
            for path in COLS {
                for desc in [false, true] {
                    let q = Query { sort: vec![SortKey { path: path.to_string(), desc }], ..Default::default() };
                    let w = run(&want, &q, Paging::page(1, 3).unwrap(), None);
                    prop_assert_eq!(&run(&first, &q, Paging::page(1, 3).unwrap(), None), &w, "query {:?}\nrows {}", q, serde_json::to_string(&model).unwrap());
                    let again = Engine::from_source(src.clone());
                    prop_assert_eq!(&run(&again, &q, Paging::page(1, 3).unwrap(), None), &w, "query {:?} again", q);
                }
            }
            drop(first);
            view = std::sync::Arc::try_unwrap(src).expect("sole owner").into_inner();
        }
    }
}

/// With events applied, the overlay answers a one-key sort on a string, a
/// timestamp and a list column without loading the column (the merge into
/// the base's cached order), giving the engine's own order.
#[test]
fn one_key_sorts_skip_the_column_load() {
    use colsnap::query::RowSource;
    let rows: Vec<Value> = (0..60)
        .map(|i| {
            json!({
                "id": i,
                "t": format!("t{:02}", (i * 7) % 30),
                "ts": format!("2024-01-{:02}T00:00:00Z", 1 + i % 28),
                "labels": [{"name": POOL[i as usize % POOL.len()]}],
            })
        })
        .collect();
    let snap = snapshot(&rows);
    let mut view = Overlay::new(snap, "id").unwrap();
    let update = |seq: u64, id: i64, path: &str, v: Value| Event {
        seq,
        key: json!(id),
        op: Op::Update {
            set: vec![(parse_path(path).unwrap(), v)],
            remove: vec![],
        },
    };
    let evs = [
        update(1, 5, "t", json!("t05a")),
        update(2, 6, "t", json!("t03")),
        update(3, 7, "ts", json!("2023-06-01T00:00:00Z")),
        update(4, 8, "labels", json!([{"name": "bugz"}, {"name": "a"}])),
        update(5, 9, "labels", json!([])),
        Event {
            seq: 6,
            key: json!(100),
            op: Op::Create {
                row: json!({"id": 100, "t": "a new", "ts": "2024-01-03T00:00:00Z"})
                    .as_object()
                    .unwrap()
                    .clone(),
                at: Some(3),
            },
        },
        Event {
            seq: 7,
            key: json!(10),
            op: Op::Delete,
        },
        update(8, 11, "t", Value::Null),
    ];
    for e in &evs {
        view.apply(e, e.seq).unwrap();
    }
    let src = std::sync::Arc::new(OverlaySource::new(view));
    let engine = Engine::from_source(src.clone());
    let all: Vec<u32> = (0..engine.rows() as u32).collect();
    let some: Vec<u32> = all.iter().copied().filter(|r| r % 3 != 1).collect();
    for path in ["t", "ts", "labels[].name"] {
        for desc in [false, true] {
            for rows in [&all, &some] {
                let merged = src
                    .sort_by_one(rows, path, desc)
                    .unwrap()
                    .expect("answered by the merge");
                if rows.len() == all.len() && !desc {
                    assert!(
                        !engine.loaded_columns().contains(&path.to_string()),
                        "{path}: not loaded"
                    );
                }
                let k = SortKey {
                    path: path.into(),
                    desc,
                };
                let full = engine.sort(rows.clone(), &[k.clone(), k]).unwrap();
                assert_eq!(merged, full, "{path} desc {desc}");
            }
        }
    }
}

/// Filters on a string column, which the overlay answers without the
/// view's column (the snapshot's answer moved to the view's rows, the
/// changed and created rows tested alone), equal the rebuilt snapshot's:
/// new strings before, between and after the table's and prefixes of
/// them, table strings, timestamps among text, nulls, absent values,
/// deletes. With an integer among the strings the engine loads the column
/// (and still agrees).
#[test]
fn string_filters_test_only_the_changed_rows() {
    let table = ["b", "bug", "bugs", "d", "f", "日本"];
    let bodies: Vec<Vec<(usize, Value)>> = (0..40)
        .map(|i| match i % 9 {
            7 => vec![(0, Value::Null), (2, json!(i))],
            8 => vec![(2, json!(i))],
            _ => vec![(0, json!(table[i % table.len()])), (2, json!(i % 4))],
        })
        .collect();
    let t = |s: &str| vec![(0usize, json!(s))];
    let acts = vec![
        Act::Update(1, t("a"), vec![]),
        Act::Update(2, t("c"), vec![]),
        Act::Update(3, t("zz"), vec![]),
        Act::Update(4, t("bu"), vec![]),
        Act::Update(5, t("b\u{0}"), vec![]),
        Act::Update(6, t("d"), vec![]),
        Act::Update(7, t("2024-01-02T03:04:05Z"), vec![]),
        Act::Update(11, vec![(0, Value::Null)], vec![]),
        Act::Update(13, vec![], vec![0]),
        Act::Update(14, vec![(2, json!(9))], vec![]),
        Act::SetLogin(15, "c".into()),
        Act::Create(t("c"), Some(0)),
        Act::Create(t("f"), Some(17)),
        Act::Create(vec![(2, json!(1))], None),
        Act::Create(vec![(0, Value::Null)], Some(5)),
        Act::Delete(12),
        Act::Delete(0),
        Act::Delete(30),
        Act::Update(2, t("bugs"), vec![]),
        // More than eight distinct strings in the delta, the later ones
        // repeated (the filter delta finds the first eight by a look at
        // each, the others in a map).
        Act::Update(16, t("bugs"), vec![]),
        Act::Update(18, t("e"), vec![]),
        Act::Update(19, t("bugs"), vec![]),
        Act::Update(20, t("e"), vec![]),
    ];
    let lits = [
        "", "a", "b", "b\u{0}", "bu", "bug", "bugz", "c", "d", "e", "zz", "zzz", "日", "日本",
    ];
    let mut filters = Vec::new();
    for op in [
        QOp::Eq,
        QOp::Ne,
        QOp::Lt,
        QOp::Le,
        QOp::Gt,
        QOp::Ge,
        QOp::Prefix,
    ] {
        for l in lits {
            filters.push(Filter {
                path: "t".into(),
                op,
                values: vec![Literal::Text(l.into())],
            });
        }
    }
    for op in [QOp::IsNull, QOp::NotNull, QOp::IsAbsent, QOp::NotAbsent] {
        filters.push(Filter {
            path: "t".into(),
            op,
            values: vec![],
        });
    }
    filters.push(Filter {
        path: "t".into(),
        op: QOp::In,
        values: ["zz", "a", "bug", "nope"]
            .iter()
            .map(|s| Literal::Text(s.to_string()))
            .collect(),
    });
    // A literal the column cannot take: the same error.
    filters.push(Filter {
        path: "t".into(),
        op: QOp::Eq,
        values: vec![Literal::Int(3)],
    });
    for with_int in [false, true] {
        let mut acts = acts.clone();
        if with_int {
            acts.push(Act::Update(9, vec![(0, json!(5))], vec![]));
        }
        let (model, view) = replay_all(&bodies, &acts);
        let want = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&model)));
        let got = Engine::new(OverlaySource::new(view));
        let n_ge_1 = Filter {
            path: "n".into(),
            op: QOp::Ge,
            values: vec![Literal::Text("1".into())],
        };
        for f in &filters {
            for (extra, sort) in [(false, false), (true, false), (false, true)] {
                let mut q = Query {
                    filters: vec![f.clone()],
                    ..Default::default()
                };
                if extra {
                    q.filters.insert(0, n_ge_1.clone());
                }
                if sort {
                    q.sort = vec![SortKey {
                        path: "n".into(),
                        desc: true,
                    }];
                }
                assert_eq!(
                    ids_of(&got, &q),
                    ids_of(&want, &q),
                    "with_int {with_int}, {q:?}"
                );
            }
        }
        assert_eq!(
            got.loaded_columns().contains(&"t".to_string()),
            with_int,
            "the column is loaded only with an integer among its strings"
        );
    }
}

/// Field types of an overlay after deleting `gone` (ids) equal a snapshot
/// of the rows left, including when the counts alone leave the question
/// open (the shortcuts of the field typing must stay exact).
fn fields_after_deletes(rows: &[Value], gone: &[i64]) {
    let snap = snapshot(rows);
    let mut view = Overlay::new(snap, "id").unwrap();
    for (i, id) in gone.iter().enumerate() {
        let e = Event {
            seq: i as u64 + 1,
            key: json!(id),
            op: Op::Delete,
        };
        view.apply(&e, e.seq).unwrap();
    }
    let left: Vec<Value> = rows
        .iter()
        .filter(|r| !gone.contains(&r["id"].as_i64().unwrap()))
        .cloned()
        .collect();
    let list = |e: &Engine| {
        let mut f: Vec<String> = e
            .fields()
            .iter()
            .map(|f| format!("{} {} {}", f.path, f.ty, f.list))
            .collect();
        f.sort();
        f
    };
    let over = Engine::new(OverlaySource::new(view));
    let rebuilt = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&left)));
    assert_eq!(list(&over), list(&rebuilt), "deleted {gone:?}");
}

#[test]
fn field_types_after_deletes_equal_rebuilt() {
    // A string column: many texts (some starting with a digit) and one
    // timestamp; a list column of ints with one negative and one float,
    // and of colors, some starting with a digit.
    let mut rows = Vec::new();
    for i in 0..12i64 {
        let s = match i {
            0 => json!("2024-01-02T03:04:05Z"),
            1 => json!("1 apple"),
            _ => json!(format!("text {i}")),
        };
        let tags = match i {
            3 => json!([{"v": -5}, {"v": 18446744073709551615u64}]),
            4 => json!([{"v": 1.5}]),
            5 => json!([]),
            _ => json!([{"v": i, "c": format!("{i}f{i}")}, {"v": i + 1, "c": "ff0000"}]),
        };
        rows.push(json!({"id": i, "s": s, "tags": tags, "flag": i == 7, "n": if i == 8 { json!(null) } else { json!(i) }}));
    }
    // Texts outnumber the removals: text left without a column read.
    fields_after_deletes(&rows, &[2]);
    fields_after_deletes(&rows, &[2, 3, 4]);
    // Every text removed: the timestamp is left alone.
    fields_after_deletes(&rows, &(1..12).collect::<Vec<_>>());
    // The digit text alone left with the timestamp.
    fields_after_deletes(&rows, &(2..12).collect::<Vec<_>>());
    // The negative int, the float, the only true, the null removed.
    fields_after_deletes(&rows, &[3]);
    fields_after_deletes(&rows, &[4]);
    fields_after_deletes(&rows, &[3, 4, 7, 8]);
    // Every list item removed (the arrays left are empty or gone).
    fields_after_deletes(&rows, &(0..12).filter(|&i| i != 5).collect::<Vec<_>>());
    fields_after_deletes(&rows, &[0, 1, 2, 3, 4, 6, 7, 8, 9, 10]);
}

/// Field list as "path type list" lines, in the source's order.
fn field_lines(e: &Engine) -> Vec<String> {
    e.fields()
        .iter()
        .map(|f| format!("{} {} {}", f.path, f.ty, f.list))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A live source followed event by event with `OverlaySource::apply`
    /// (typed sort deltas and field types carried, the changed row alone
    /// typed again): after every event, its field list, every one-key sort
    /// in both directions (alone and after a filter) and a page equal those
    /// of a snapshot rebuilt from the replayed JSON, and the field list
    /// equals a fresh source's, order included (or, in half the cases, each
    /// field's type alone, the field list asked only at the end). The sorts of the first
    /// step type every column's delta, so later steps take the
    /// incremental way. A refused event changes nothing.
    #[test]
    fn live_source_apply_equals_rebuilt_at_each_step(
        bodies in prop::collection::vec(body(), 4..24),
        acts in prop::collection::vec(act(), 1..16),
        f in prop::option::of(filter()),
        fields_each_step in any::<bool>(),
    ) {
        use std::sync::Arc;
        let old: Vec<Value> = bodies.iter().enumerate().map(|(i, b)| make_row(i as i64 * 2, b)).collect();
        let snap = snapshot(&old);
        let mut model = snap.to_values().unwrap();
        let base = Engine::new(colsnap::query::SnapshotSource::new(snap.clone()));
        let mut src = Arc::new(OverlaySource::with_base(Overlay::new(snap.clone(), "id").unwrap(), base.clone()));
        let mut next_id = 1000;
        let mut seq = 1;
        let sorted = |mut v: Vec<String>| { v.sort(); v };
        for (i, a) in acts.iter().enumerate() {
            let Some(e) = event(&mut model, a, seq, &mut next_id) else { continue };
            if i % 4 == 3 {
                // Refused: the row is missing; the source is as before.
                let bad = Event { seq, key: json!("no such row"), op: Op::Delete };
                prop_assert!(Arc::get_mut(&mut src).unwrap().apply(&bad, seq).is_err());
            }
            Arc::get_mut(&mut src).unwrap().apply(&e, seq).unwrap();
            seq += 1;
            let want = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&model)));
            let got = Engine::from_source(src.clone());
            let fresh = Engine::new(OverlaySource::with_base(src.overlay().clone(), base.clone()));
            if fields_each_step {
                prop_assert_eq!(sorted(field_lines(&got)), sorted(field_lines(&want)));
                prop_assert_eq!(field_lines(&got), field_lines(&fresh));
            } else {
                // The field list never asked: each field typed alone, from
                // the kinds under its top-level key kept across events.
                for path in COLS {
                    prop_assert_eq!(got.field_type(path), want.field_type(path), "field {}", path);
                }
            }
            for path in COLS {
                for desc in [false, true] {
                    let key = SortKey { path: path.to_string(), desc };
                    for filters in [vec![], f.clone().into_iter().collect::<Vec<_>>()] {
                        let q = Query { filters, sort: vec![key.clone()], ..Default::default() };
                        let w = run(&want, &q, Paging::page(1, 3).unwrap(), None);
                        prop_assert_eq!(&run(&got, &q, Paging::page(1, 3).unwrap(), None), &w, "query {:?}\nrows {}", q, serde_json::to_string(&model).unwrap());
                    }
                }
            }
            drop(got);
        }
        let want = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&model)));
        prop_assert_eq!(sorted(field_lines(&Engine::from_source(src.clone()))), sorted(field_lines(&want)));
    }
}

/// Events applied one by one to a live source (`OverlaySource::apply`)
/// keep its one-key sorts on the merge (the typed delta carried, the
/// changed row alone typed again): after each event the merge answers, in
/// the engine's full-sort order, for a string (new strings before, between
/// and equal to table strings), a timestamp and a list column.
#[test]
fn applied_events_keep_the_merge() {
    use colsnap::query::RowSource;
    use std::sync::Arc;
    let rows: Vec<Value> = (0..40)
        .map(|i| {
            json!({
                "id": i,
                "t": format!("t{:02}", (i * 7) % 30),
                "ts": format!("2024-01-{:02}T00:00:00Z", 1 + i % 28),
                "labels": [{"name": POOL[i as usize % POOL.len()]}],
            })
        })
        .collect();
    let snap = snapshot(&rows);
    let mut src = Arc::new(OverlaySource::new(Overlay::new(snap, "id").unwrap()));
    let update = |seq: u64, id: i64, path: &str, v: Value| Event {
        seq,
        key: json!(id),
        op: Op::Update {
            set: vec![(parse_path(path).unwrap(), v)],
            remove: vec![],
        },
    };
    let create = |seq: u64, id: i64, t: &str, at: u64| Event {
        seq,
        key: json!(id),
        op: Op::Create {
            row: json!({"id": id, "t": t, "ts": "2024-01-03T00:00:00Z", "labels": [{"name": t}]})
                .as_object()
                .unwrap()
                .clone(),
            at: Some(at),
        },
    };
    let evs = [
        update(1, 5, "t", json!("t05a")),
        update(2, 6, "t", json!("t03")),
        create(3, 100, "t04", 3),
        update(4, 7, "ts", json!("2023-06-01T00:00:00Z")),
        update(5, 8, "labels", json!([{"name": "bugz"}, {"name": "a"}])),
        Event {
            seq: 6,
            key: json!(10),
            op: Op::Delete,
        },
        create(7, 101, "", 0),
        update(8, 100, "t", json!("t05a")),
        update(9, 11, "t", Value::Null),
        Event {
            seq: 10,
            key: json!(100),
            op: Op::Delete,
        },
        update(11, 5, "t", json!("zz")),
        create(12, 102, "t04", 38),
    ];
    let paths = ["t", "ts", "labels[].name"];
    let check = |src: &Arc<OverlaySource>, after: u64| {
        let engine = Engine::from_source(src.clone());
        let all: Vec<u32> = (0..engine.rows() as u32).collect();
        let fresh = OverlaySource::new(src.overlay().clone());
        for path in paths {
            for desc in [false, true] {
                let merged = src
                    .sort_by_one(&all, path, desc)
                    .unwrap()
                    .unwrap_or_else(|| panic!("{path}: merge after event {after}"));
                let k = SortKey {
                    path: path.into(),
                    desc,
                };
                let full = engine.sort(all.clone(), &[k.clone(), k]).unwrap();
                assert_eq!(merged, full, "{path} desc {desc} after event {after}");
                assert_eq!(Some(merged), fresh.sort_by_one(&all, path, desc).unwrap());
            }
        }
    };
    // The first sorts type the deltas; each event then re-types one row.
    check(&src, 0);
    for e in &evs {
        Arc::get_mut(&mut src).unwrap().apply(e, e.seq).unwrap();
        check(&src, e.seq);
    }
}

/// Mostly creates at positions and deletes, some updates.
fn churn() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (body(), any::<usize>()).prop_map(|(b, at)| Act::Create(b, Some(at))),
        4 => any::<usize>().prop_map(Act::Delete),
        2 => (any::<usize>(), body(), prop::collection::vec(0..FIELDS.len(), 0..2))
            .prop_map(|(k, s, r)| Act::Update(k, s, r)),
        1 => (any::<usize>(), string()).prop_map(|(k, s)| Act::SetLogin(k, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Many creates and deletes in the middle of a live source's view
    /// (`OverlaySource::apply`): its kept sorted orders are blocks of
    /// slots (about sqrt(rows) each, so at this size they split and join
    /// on the way) and view rows are derived from block offsets. After
    /// every event, every one-key sort of the whole view in both
    /// directions lists the rows of the rebuilt snapshot's, in the same
    /// order; the source's merge, whenever it answers, equals the engine's
    /// full sort over the same source and a fresh source's merge.
    #[test]
    fn live_orders_follow_creates_and_deletes_in_the_middle(
        bodies in prop::collection::vec(body(), 40..120),
        acts in prop::collection::vec(churn(), 20..60),
    ) {
        use colsnap::query::RowSource;
        use std::sync::Arc;
        let old: Vec<Value> = bodies.iter().enumerate().map(|(i, b)| make_row(i as i64 * 2, b)).collect();
        let snap = snapshot(&old);
        let mut model = snap.to_values().unwrap();
        let base = Engine::new(colsnap::query::SnapshotSource::new(snap.clone()));
        let mut src = Arc::new(OverlaySource::with_base(Overlay::new(snap.clone(), "id").unwrap(), base.clone()));
        let mut next_id = 1000;
        let mut seq = 1;
        let mut merged = 0;
        let mut pages = 0;
        for a in &acts {
            let Some(e) = event(&mut model, a, seq, &mut next_id) else { continue };
            Arc::get_mut(&mut src).unwrap().apply(&e, seq).unwrap();
            seq += 1;
            let want = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&model)));
            let got = Engine::from_source(src.clone());
            let all: Vec<u32> = (0..got.rows() as u32).collect();
            let fresh = OverlaySource::with_base(src.overlay().clone(), base.clone());
            // Field types kept across the events (removed base items
            // counted row by row) equal the rebuilt and a fresh source's.
            let mut lines = field_lines(&got);
            prop_assert_eq!(&lines, &field_lines(&Engine::from_source(std::sync::Arc::new(fresh.clone()))));
            lines.sort();
            let mut w = field_lines(&want);
            w.sort();
            prop_assert_eq!(&lines, &w);
            for path in ["t", "ts", "labels[].name", "n", "user.login"] {
                for desc in [false, true] {
                    let key = SortKey { path: path.to_string(), desc };
                    let q = Query { sort: vec![key.clone()], ..Default::default() };
                    // A column no live row has any more (every label
                    // removed) is in neither field list (checked above):
                    // nothing to sort by.
                    if !w.iter().any(|l| l.starts_with(&format!("{path} "))) {
                        continue;
                    }
                    // Pages asked as pages first (`Engine::run_page`, `query_page`:
                    // the kept order read at the page alone) equal the
                    // rebuilt snapshot's pages, the last one and past it too.
                    let n = want.rows();
                    let wrows = want.run(&q).unwrap();
                    for (page, limit) in [(1, 1), (1, 5), (2, 7), (n.div_ceil(3).max(1), 3), (n + 2, 1), (1, n + 1)] {
                        let p = Paging::page(page, limit).unwrap();
                        let (rows, total) = got.run_page(&q, p).unwrap();
                        prop_assert_eq!(total, n);
                        let gp = got.query_page(&q, p, Some(&["id".to_string()])).unwrap();
                        let wp = want.page(&wrows, p, Some(&["id".to_string()])).unwrap();
                        prop_assert_eq!(&gp, &wp, "{:?} page {} of {}", q, page, limit);
                        prop_assert_eq!(rows.len(), wp.data.len());
                        if all.len() >= 2 && got.fields().iter().any(|f| f.path == path) {
                            let start = p.offset.min(n);
                            let end = (p.offset + p.limit).min(n);
                            if let Some(part) = src.sort_page(path, desc, p.offset..p.offset + p.limit).unwrap() {
                                pages += 1;
                                let full = got.sort(all.clone(), &[key.clone(), key.clone()]).unwrap();
                                prop_assert_eq!(&part, &full[start..end]);
                                prop_assert_eq!(&part, &rows);
                            }
                        }
                    }
                    prop_assert_eq!(ids_of(&got, &q), ids_of(&want, &q), "{:?}\nrows {}", q, serde_json::to_string(&model).unwrap());
                    if all.len() < 2 || !got.fields().iter().any(|f| f.path == path) {
                        continue;
                    }
                    if let Some(m) = src.sort_by_one(&all, path, desc).unwrap() {
                        merged += 1;
                        let full = got.sort(all.clone(), &[key.clone(), key]).unwrap();
                        prop_assert_eq!(&m, &full, "{} desc {}", path, desc);
                        prop_assert_eq!(Some(m), fresh.sort_by_one(&all, path, desc).unwrap());
                    }
                }
            }
        }
        // The sorts went the merge way (kept orders moved row by row), and
        // pages were read from the kept orders.
        prop_assert!(merged > 0 || model.len() < 2);
        prop_assert!(pages > 0 || model.len() < 2);
    }
}

/// Whole rows or `fields` of `rows` written as a stream writes them: string
/// windows of `window` rows (`RowSource::read_strings`), each written in
/// calls of `call` rows (`RowSource::write_row_groups_with`, groups of
/// `group`); and the same calls without a window (`write_row_groups`).
/// Returns (windowed, unwindowed, whether every window was read), or the
/// errors of both ways (a field no row has).
fn stream_both(
    src: &OverlaySource,
    rows: &[u32],
    fields: Option<&[String]>,
    window: usize,
    call: usize,
    group: usize,
) -> Result<(String, String, bool), (String, String)> {
    use colsnap::query::RowSource;
    let mut open =
        |out: &mut Vec<u8>, end: usize| out.extend_from_slice(format!("<{end}[").as_bytes());
    let mut all_read = true;
    let mut windowed = || -> colsnap::Result<Vec<u8>> {
        let mut with = Vec::new();
        for win_rows in rows.chunks(window.max(1)) {
            let mut strings = src.read_strings(win_rows, fields)?;
            all_read &= strings.is_some();
            for c in win_rows.chunks(call.max(1)) {
                src.write_row_groups_with(
                    c,
                    group,
                    fields,
                    strings.as_mut(),
                    &mut with,
                    &mut open,
                    b"]>",
                )?;
            }
            if let Some(s) = &strings {
                assert!(s.is_spent(), "window not spent");
            }
        }
        Ok(with)
    };
    let with = windowed();
    let mut without = Vec::new();
    let plain = rows
        .chunks(window.max(1))
        .flat_map(|w| w.chunks(call.max(1)))
        .try_for_each(|c| {
            src.write_row_groups(
                c,
                group,
                fields,
                &mut without,
                &mut |out: &mut Vec<u8>, end: usize| {
                    out.extend_from_slice(format!("<{end}[").as_bytes())
                },
                b"]>",
            )
        });
    match (with, plain) {
        (Ok(w), Ok(())) => Ok((
            String::from_utf8(w).unwrap(),
            String::from_utf8(without).unwrap(),
            all_read,
        )),
        (w, p) => Err((format!("{:?}", w.map(|_| ())), format!("{p:?}"))),
    }
}

/// A stream over an overlay reads the strings of the snapshot's own rows a
/// window at a time and writes the bytes it writes without a window: rows
/// created and updated by events (JSON) between unchanged rows (window),
/// whole rows and a field subset, windows split over several calls.
#[test]
fn overlay_stream_windows_write_the_same_bytes() {
    let long = |i: usize| format!("a long body of issue {i}: {}", "text ".repeat(8 + i % 5));
    let old: Vec<Value> = (0..60)
        .map(|i| {
            json!({"id": i, "t": POOL[i % POOL.len()], "body": long(i), "n": i % 7,
                   "user": {"login": format!("u{}", i % 9)}, "labels": [{"name": POOL[(i * 3) % POOL.len()]}]})
        })
        .collect();
    let snap = snapshot(&old);
    let mut view = Overlay::new(snap.clone(), "id").unwrap();
    let evs = [
        Op::Update {
            set: vec![(parse_path("t").unwrap(), json!("updated ✓"))],
            remove: vec![parse_path("body").unwrap()],
        },
        Op::Delete,
        Op::Create {
            row:
                json!({"id": 100, "t": "created", "body": long(100), "user": {"login": "new\u{1}"}})
                    .as_object()
                    .unwrap()
                    .clone(),
            at: Some(5),
        },
        Op::Update {
            set: vec![(parse_path("user.login").unwrap(), json!("renamed"))],
            remove: vec![],
        },
        Op::Delete,
        Op::Create {
            row: json!({"id": 101, "t": "b", "extra": [1, "x"]})
                .as_object()
                .unwrap()
                .clone(),
            at: None,
        },
    ];
    let keys = [3, 4, 100, 17, 40, 101];
    for (seq, (op, key)) in evs.into_iter().zip(keys).enumerate() {
        let e = Event {
            seq: seq as u64 + 1,
            key: json!(key),
            op,
        };
        view.apply(&e, seq as u64 + 1).unwrap();
    }
    let src = OverlaySource::new(view);
    let n = colsnap::query::RowSource::rows(&src) as u32;
    assert_eq!(n, 60);
    let in_order: Vec<u32> = (0..n).collect();
    // Another order (a sort): strings of rows far apart in one window.
    let shuffled: Vec<u32> = (0..n).map(|i| (i * 37) % n).collect();
    let subset: Vec<String> = ["id", "t", "user.login", "body"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for rows in [&in_order, &shuffled] {
        for fields in [None, Some(&subset[..])] {
            for (window, call, group) in [(256, 1000, 1000), (7, 3, 2), (16, 5, 1), (9, 9, 4)] {
                let (with, without, read) =
                    stream_both(&src, rows, fields, window, call, group).unwrap();
                assert!(read, "the overlay reads string windows");
                assert_eq!(
                    with, without,
                    "window {window} call {call} group {group} fields {fields:?}"
                );
            }
        }
        let (with, ..) = stream_both(&src, rows, None, 7, 3, 2).unwrap();
        assert!(
            with.contains("updated ✓")
                && with.contains("renamed")
                && with.contains("\"extra\":[1,\"x\"]")
        );
        assert!(with.contains(&long(10)) && !with.contains("\"id\":4,"));
    }
    // A field only the events brought: no window (rows go through JSON),
    // the same bytes.
    let extra = vec!["id".to_string(), "extra".to_string()];
    let (with, without, read) = stream_both(&src, &shuffled, Some(&extra), 7, 3, 2).unwrap();
    assert!(!read);
    assert_eq!(with, without);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Streams over any overlay write the same bytes with string windows as
    /// without, in any row order, for whole rows and field subsets.
    #[test]
    fn overlay_stream_windows_equal_unwindowed(
        bodies in prop::collection::vec(body(), 1..12),
        acts in prop::collection::vec(act(), 0..16),
        seed in any::<u32>(),
        window in 1usize..8,
        call in 1usize..5,
        group in 1usize..4,
        proj in prop::option::of(prop::sample::subsequence(vec!["id", "t", "user.login", "user", "labels"], 1..4)),
    ) {
        let (model, view) = replay_all(&bodies, &acts);
        let src = OverlaySource::new(view);
        let n = model.len() as u32;
        let step = if n == 0 { 1 } else { (seed % n) | 1 };
        let rows: Vec<u32> = (0..n).map(|i| (i * step + seed) % n.max(1)).collect();
        let fields: Option<Vec<String>> = proj.map(|p| p.into_iter().map(String::from).collect());
        match stream_both(&src, &rows, fields.as_deref(), window, call, group) {
            Ok((with, without, _)) => prop_assert_eq!(&with, &without, "rows {}", serde_json::to_string(&model).unwrap()),
            // A field no row has: an error both ways.
            Err((with, without)) => prop_assert!(with.starts_with("Err") && without.starts_with("Err"), "{} / {}", with, without),
        }
        // And the whole rows equal the replayed JSON.
        let (whole, ..) = stream_both(&src, &rows, None, window, call, rows.len().max(1)).unwrap();
        let got: Vec<Value> = whole
            .split("]>")
            .filter(|s| !s.is_empty())
            .flat_map(|s| serde_json::from_str::<Vec<Value>>(&format!("{}]", &s[s.find('[').unwrap()..])).unwrap())
            .collect();
        let want: Vec<Value> = rows.iter().map(|&r| model[r as usize].clone()).collect();
        prop_assert_eq!(got, want);
    }
}

/// A live source asked for one field's type after each event (the field
/// list never made) keeps that field's kinds as events add and take out
/// values: a value of another kind set, then set back, or its row
/// deleted, changes the type and changes it back, as a rebuilt snapshot's.
#[test]
fn one_field_types_follow_events() {
    use std::sync::Arc;
    let mut model: Vec<Value> = (0..6)
        .map(|i| json!({"id": i, "x": format!("s{i}"), "l": [{"n": i}]}))
        .collect();
    let snap = snapshot(&model);
    let mut src = Arc::new(OverlaySource::new(Overlay::new(snap, "id").unwrap()));
    let steps: Vec<(i64, &str, Option<Value>)> = vec![
        (0, "x", Some(json!(5))),
        (0, "x", Some(json!("back"))),
        (1, "l", Some(json!([{"n": "text"}]))),
        (1, "l", Some(json!([{"n": 7}]))),
        (2, "x", Some(json!(true))),
        (2, "x", None),
        (3, "x", Some(json!(1.5))),
        (3, "", None),
    ];
    for (seq, (id, key, v)) in steps.into_iter().enumerate() {
        let seq = seq as u64 + 1;
        let op = match (key, v) {
            ("", _) => Op::Delete,
            (k, Some(v)) => Op::Update {
                set: vec![(parse_path(k).unwrap(), v)],
                remove: vec![],
            },
            (k, None) => Op::Update {
                set: vec![],
                remove: vec![parse_path(k).unwrap()],
            },
        };
        let e = Event {
            seq,
            key: json!(id),
            op,
        };
        // The model: the same change.
        let at = model.iter().position(|r| r["id"] == json!(id)).unwrap();
        match &e.op {
            Op::Delete => {
                model.remove(at);
            }
            Op::Update { set, remove } => {
                let o = model[at].as_object_mut().unwrap();
                for (p, v) in set {
                    o.insert(p[0].clone(), v.clone());
                }
                for p in remove {
                    o.remove(&p[0]);
                }
            }
            _ => unreachable!(),
        }
        // Ask before the event too, so the kinds under each key are kept.
        let got = Engine::from_source(src.clone());
        for p in ["x", "l[].n", "l[]"] {
            got.field_type(p);
        }
        drop(got);
        Arc::get_mut(&mut src).unwrap().apply(&e, seq).unwrap();
        let want = Engine::new(colsnap::query::SnapshotSource::new(snapshot(&model)));
        let got = Engine::from_source(src.clone());
        for p in ["x", "l[].n", "l[]"] {
            assert_eq!(
                got.field_type(p),
                want.field_type(p),
                "{p} after event {seq}"
            );
        }
    }
}
