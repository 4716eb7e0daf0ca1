//! The query engine against a straightforward reference over decoded JSON
//! rows: same rows, same order, same totals, same pages.

use colsnap::query::{
    Engine, Filter, Literal, Num, Op, Paging, Query, Search, SnapshotSource, SortKey, parse_num,
    parse_time,
};
use colsnap::{BuildOptions, Snapshot, build_to_vec};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::cmp::Ordering;

const STRS: &[&str] = &[
    "", "a", "ab", "abc", "abd", "Ab", "b", "ÄB", "äbc", "é", "İx", "zz",
];
const TIMES: &[&str] = &[
    "2024-01-02T03:04:05Z",
    "2024-01-02T03:04:05.5Z",
    "2024-01-02T04:04:05+01:00",
    "2023-12-31T23:59:59Z",
    "2024-01-02T00:00:00Z",
];
const FIELDS: &[&str] = &[
    "s", "n", "t", "b", "f", "u", "u.login", "l", "l[].name", "tags[]",
];

/// A value for a slot: `None` means absent.
fn slot(v: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![3 => v.prop_map(Some), 1 => Just(Some(Value::Null)), 1 => Just(None)].boxed()
}

fn str_val() -> impl Strategy<Value = Value> {
    prop::sample::select(STRS).prop_map(|s| json!(s))
}

fn row() -> impl Strategy<Value = Value> {
    let s = slot(str_val());
    let n = slot((-3i64..4).prop_map(|v| json!(v)));
    let t = slot(prop::sample::select(TIMES).prop_map(|s| json!(s)));
    let b = slot(any::<bool>().prop_map(|v| json!(v)));
    let f = slot(prop_oneof![
        (-2i64..3).prop_map(|v| json!(v)),
        Just(json!(1.0)),
        Just(json!(0.5)),
        Just(json!("1")),
        Just(json!("x")),
        Just(json!(true)),
    ]);
    let u = slot(slot(str_val()).prop_map(|l| match l {
        Some(v) => json!({ "login": v }),
        None => json!({}),
    }));
    let label = prop_oneof![
        4 => str_val().prop_map(|s| json!({ "name": s })),
        1 => Just(json!({ "name": null })),
        1 => Just(json!({})),
    ];
    let l = slot(prop::collection::vec(label, 0..3).prop_map(Value::Array));
    let tags = slot(prop::collection::vec(str_val(), 0..3).prop_map(Value::Array));
    (s, n, t, b, f, u, l, tags).prop_map(|(s, n, t, b, f, u, l, tags)| {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("s", s),
            ("n", n),
            ("t", t),
            ("b", b),
            ("f", f),
            ("u", u),
            ("l", l),
            ("tags", tags),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    })
}

/// Row 0 gives every field a value so that every column exists with its type.
fn first_row() -> Value {
    json!({"s": "ab", "n": 1, "t": TIMES[0], "b": true, "f": 2, "u": {"login": "a"},
           "l": [{"name": "b"}], "tags": ["zz"]})
}

// ---- reference ----

#[derive(Clone, Debug)]
enum RC {
    Absent,
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
    Time(i64, u32),
    Object,
    Array(usize),
}

impl RC {
    fn class(&self) -> u8 {
        match self {
            RC::Absent => 2,
            RC::Null => 1,
            _ => 0,
        }
    }
    fn rank(&self) -> u8 {
        match self {
            RC::Bool(_) => 0,
            RC::Num(_) => 1,
            RC::Str(_) => 2,
            RC::Time(..) => 3,
            RC::Object => 4,
            RC::Array(_) => 5,
            _ => 6,
        }
    }
    fn cmp_value(&self, o: &RC) -> Ordering {
        match (self, o) {
            (RC::Bool(a), RC::Bool(b)) => a.cmp(b),
            (RC::Num(a), RC::Num(b)) => a.cmp_num(b),
            (RC::Str(a), RC::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (RC::Time(a, x), RC::Time(b, y)) => (a, x).cmp(&(b, y)),
            (RC::Array(a), RC::Array(b)) => a.cmp(b),
            _ => self.rank().cmp(&o.rank()),
        }
    }
}

/// Raw items of `path` in `row` (`None` = absent).
fn items<'a>(row: &'a Value, path: &str) -> Vec<Option<&'a Value>> {
    let get = |v: &'a Value, k: &str| v.as_object().and_then(|o| o.get(k));
    match path {
        "u.login" => vec![get(row, "u").and_then(|u| get(u, "login"))],
        "l[].name" => match get(row, "l") {
            Some(Value::Array(a)) => a.iter().map(|e| get(e, "name")).collect(),
            _ => vec![],
        },
        "tags[]" => match get(row, "tags") {
            Some(Value::Array(a)) => a.iter().map(Some).collect(),
            _ => vec![],
        },
        p => vec![get(row, p)],
    }
}

fn is_list(path: &str) -> bool {
    path.contains("[]")
}

struct Col {
    cells: Vec<Vec<RC>>,
    fam: [bool; 4], // str, num, bool, time
}

fn column(rows: &[Value], path: &str) -> Col {
    let raw: Vec<Vec<Option<&Value>>> = rows.iter().map(|r| items(r, path)).collect();
    let all_ts = raw
        .iter()
        .flatten()
        .flatten()
        .filter_map(|v| v.as_str())
        .all(|s| colsnap::timestamp::parse(s).is_some());
    let conv = |v: &Option<&Value>| match v {
        None => RC::Absent,
        Some(Value::Null) => RC::Null,
        Some(Value::Bool(b)) => RC::Bool(*b),
        Some(Value::Number(n)) => RC::Num(if let Some(i) = n.as_i64() {
            Num::Int(i)
        } else if let Some(u) = n.as_u64() {
            Num::UInt(u)
        } else {
            Num::Float(n.as_f64().unwrap())
        }),
        Some(Value::String(s)) if all_ts => {
            let t = colsnap::timestamp::parse(s).unwrap();
            RC::Time(t.secs, t.nanos)
        }
        Some(Value::String(s)) => RC::Str(s.clone()),
        Some(Value::Object(_)) => RC::Object,
        Some(Value::Array(a)) => RC::Array(a.len()),
    };
    let cells: Vec<Vec<RC>> = raw.iter().map(|r| r.iter().map(conv).collect()).collect();
    let mut g = [false; 6];
    for c in cells.iter().flatten() {
        match c {
            RC::Str(_) => g[0] = true,
            RC::Num(_) => g[1] = true,
            RC::Bool(_) => g[2] = true,
            RC::Time(..) => g[3] = true,
            RC::Object => g[4] = true,
            RC::Array(_) => g[5] = true,
            _ => {}
        }
    }
    let groups = g.iter().filter(|b| **b).count();
    let fam = if groups > 1 {
        [true; 4]
    } else {
        [g[0], g[1], g[2], g[3]]
    };
    Col { cells, fam }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

fn holds(c: Cmp, o: Ordering) -> bool {
    match c {
        Cmp::Eq => o == Ordering::Equal,
        Cmp::Lt => o == Ordering::Less,
        Cmp::Le => o != Ordering::Greater,
        Cmp::Gt => o == Ordering::Greater,
        Cmp::Ge => o != Ordering::Less,
    }
}

/// Typed alternatives of a literal, or `Err` when none applies.
fn typed(col: &Col, lit: &Literal) -> Result<Vec<RC>, ()> {
    let mut v = Vec::new();
    let [fs, fnum, fb, ft] = col.fam;
    match lit {
        Literal::Text(s) => {
            if fs {
                v.push(RC::Str(s.clone()));
            }
            if fnum && let Some(n) = parse_num(s) {
                v.push(RC::Num(n));
            }
            if fb && (s == "true" || s == "false") {
                v.push(RC::Bool(s == "true"));
            }
            if ft && let Some((a, b)) = parse_time(s) {
                v.push(RC::Time(a, b));
            }
        }
        _ => unreachable!(),
    }
    if v.is_empty() { Err(()) } else { Ok(v) }
}

fn ref_filter(rows: &[Value], f: &Filter) -> Result<Vec<bool>, ()> {
    let col = column(rows, &f.path);
    let any = |pred: &dyn Fn(&RC) -> bool| -> Vec<bool> {
        col.cells.iter().map(|r| r.iter().any(pred)).collect()
    };
    let neg = |v: Vec<bool>| v.into_iter().map(|b| !b).collect();
    Ok(match f.op {
        Op::IsNull => neg(any(&|c| c.class() == 0)),
        Op::NotNull => any(&|c| c.class() == 0),
        Op::IsAbsent => neg(any(&|c| c.class() != 2)),
        Op::NotAbsent => any(&|c| c.class() != 2),
        Op::Prefix => {
            if !col.fam[0] {
                return Err(());
            }
            let Literal::Text(p) = &f.values[0] else {
                unreachable!()
            };
            any(&|c| matches!(c, RC::Str(s) if s.starts_with(p.as_str())))
        }
        op => {
            let cmp = match op {
                Op::Lt => Cmp::Lt,
                Op::Le => Cmp::Le,
                Op::Gt => Cmp::Gt,
                Op::Ge => Cmp::Ge,
                _ => Cmp::Eq,
            };
            let mut alts = Vec::new();
            for l in &f.values {
                alts.extend(typed(&col, l)?);
            }
            let m = any(&|c| {
                c.class() == 0
                    && alts
                        .iter()
                        .any(|a| a.rank() == c.rank() && holds(cmp, c.cmp_value(a)))
            });
            if op == Op::Ne { neg(m) } else { m }
        }
    })
}

fn ref_search(rows: &[Value], s: &Search) -> Vec<bool> {
    let needle = s.text.to_lowercase();
    let cols: Vec<Col> = s.fields.iter().map(|p| column(rows, p)).collect();
    (0..rows.len())
        .map(|r| {
            cols.iter().any(|c| {
                c.cells[r]
                    .iter()
                    .any(|x| matches!(x, RC::Str(t) if t.to_lowercase().contains(&needle)))
            })
        })
        .collect()
}

fn ref_sort(rows: &[Value], keys: &[SortKey], idx: &mut [usize]) {
    let cols: Vec<(Col, bool, bool)> = keys
        .iter()
        .map(|k| (column(rows, &k.path), k.desc, is_list(&k.path)))
        .collect();
    let key = |c: &Col, list: bool, r: usize| -> RC {
        match c.cells[r].first() {
            Some(x) => x.clone(),
            None if list => RC::Null,
            None => RC::Absent,
        }
    };
    idx.sort_by(|&a, &b| {
        for (c, desc, list) in &cols {
            let (x, y) = (key(c, *list, a), key(c, *list, b));
            let o = match x.class().cmp(&y.class()) {
                Ordering::Equal if x.class() == 0 => {
                    let o = x.cmp_value(&y);
                    if *desc { o.reverse() } else { o }
                }
                o => o,
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

fn reference(rows: &[Value], q: &Query) -> Result<Vec<usize>, ()> {
    let mut keep = vec![true; rows.len()];
    for f in &q.filters {
        for (k, m) in keep.iter_mut().zip(ref_filter(rows, f)?) {
            *k &= m;
        }
    }
    if let Some(s) = &q.search {
        for (k, m) in keep.iter_mut().zip(ref_search(rows, s)) {
            *k &= m;
        }
    }
    let mut idx: Vec<usize> = (0..rows.len()).filter(|&i| keep[i]).collect();
    ref_sort(rows, &q.sort, &mut idx);
    Ok(idx)
}

// ---- queries ----

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(STRS).prop_map(String::from),
        (-3i64..4).prop_map(|v| v.to_string()),
        Just("0.5".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        prop::sample::select(TIMES).prop_map(String::from),
        Just("2024-01-02".to_string()),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let path = prop::sample::select(FIELDS);
    let op = prop::sample::select(vec![
        Op::Eq,
        Op::Ne,
        Op::In,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::Prefix,
        Op::IsNull,
        Op::NotNull,
        Op::IsAbsent,
        Op::NotAbsent,
    ]);
    (path, op, prop::collection::vec(literal(), 1..4)).prop_map(|(p, op, vals)| {
        let values: Vec<Literal> = match op {
            Op::IsNull | Op::NotNull | Op::IsAbsent | Op::NotAbsent => vec![],
            Op::In => vals.into_iter().map(Literal::Text).collect(),
            _ => vec![Literal::Text(vals[0].clone())],
        };
        Filter {
            path: p.to_string(),
            op,
            values,
        }
    })
}

fn query() -> impl Strategy<Value = Query> {
    let sort = prop::collection::vec(
        (prop::sample::select(FIELDS), any::<bool>()).prop_map(|(p, d)| SortKey {
            path: p.into(),
            desc: d,
        }),
        0..3,
    );
    let search = prop::option::of((
        prop::sample::select(vec!["a", "AB", "b", "ä", "i", "x", "é"]),
        prop::sample::subsequence(vec!["s", "u.login", "l[].name", "tags[]"], 1..4),
    ))
    .prop_map(|o| {
        o.map(|(t, f)| Search {
            text: t.into(),
            fields: f.into_iter().map(String::from).collect(),
        })
    });
    (prop::collection::vec(filter(), 0..3), search, sort).prop_map(|(filters, search, sort)| {
        Query {
            filters,
            search,
            sort,
        }
    })
}

fn snapshot(rows: &[Value], chunk: usize) -> Snapshot {
    snapshot_with(
        rows,
        &BuildOptions {
            chunk_size: chunk,
            ..Default::default()
        },
    )
}

fn snapshot_with(rows: &[Value], opts: &BuildOptions) -> Snapshot {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    Snapshot::from_bytes(build_to_vec(text.as_bytes(), opts).unwrap()).unwrap()
}

/// Every string column of more than one byte a string goes to the
/// long-text table, in row order or sorted, cut into chunks of `chunk`
/// raw bytes.
fn long_opts(chunk: usize, row_order: bool) -> BuildOptions {
    BuildOptions {
        chunk_size: chunk,
        long_text_min_avg: 1,
        long_chunk_size: chunk,
        long_chunk_fetch: 0,
        long_text_row_order: row_order,
        ..Default::default()
    }
}

/// The rows of a query, a page of them and the facets of every field.
type Answers = (Vec<u32>, Vec<Value>, Vec<String>);

/// Everything a query answers over `engine`: the rows, a page, and the
/// facets of every field over them (or the error).
fn answers(engine: &Engine, q: &Query) -> Result<Answers, String> {
    let rows = engine.run(q).map_err(|e| e.to_string())?;
    let page = engine
        .page(&rows, Paging::page(1, 7).unwrap(), None)
        .map_err(|e| e.to_string())?
        .data;
    // Not `f`: its `1` and `1.0` are equal values whose facet order is the
    // hash map's (a tie the facet does not break).
    let facets = FIELDS
        .iter()
        .filter(|f| **f != "f")
        .map(|f| match engine.facet(&rows, f, 3) {
            Ok(x) => serde_json::to_string(&x).unwrap(),
            Err(e) => e.to_string(),
        })
        .collect();
    Ok((rows, page, facets))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn engine_matches_reference(
        rest in prop::collection::vec(row(), 0..60),
        q in query(),
        page in 1usize..4,
        limit in 1usize..6,
        chunk in prop::sample::select(vec![8usize, 64, 65536]),
    ) {
        let mut rows = vec![first_row()];
        rows.extend(rest);
        let snap = snapshot(&rows, chunk);
        let engine = Engine::new(SnapshotSource::new(snap.clone()));
        let got = engine.run(&q);
        let want = reference(&rows, &q);
        match (got, want) {
            (Ok(got), Ok(want)) => {
                let got: Vec<usize> = got.iter().map(|&r| r as usize).collect();
                prop_assert_eq!(&got, &want);
                let p = Paging::page(page, limit).unwrap();
                let pg = engine.page(&got.iter().map(|&r| r as u32).collect::<Vec<_>>(), p, None).unwrap();
                let expect: Vec<Value> = want.iter().skip(p.offset).take(limit).map(|&i| rows[i].clone()).collect();
                prop_assert_eq!(&pg.data, &expect);
                prop_assert_eq!(pg.pagination.total, want.len());
                prop_assert_eq!(pg.pagination.total_pages, want.len().div_ceil(limit));
                prop_assert_eq!(pg.pagination.has_more, p.offset + limit < want.len());
                // The page asked as a page (a fresh engine: `run_page`
                // selects the rows up to the page's end when the page lies
                // in the first eighth of the result).
                let fresh = Engine::new(SnapshotSource::new(snap.clone()));
                let (part, total) = fresh.run_page(&q, p).unwrap();
                let part: Vec<usize> = part.iter().map(|&r| r as usize).collect();
                let cut: Vec<usize> = want.iter().skip(p.offset).take(limit).copied().collect();
                prop_assert_eq!(part, cut);
                prop_assert_eq!(total, want.len());
                prop_assert_eq!(fresh.query_page(&q, p, None).unwrap(), pg.clone());
            }
            (Err(e), Err(())) => prop_assert!(matches!(e, colsnap::Error::Invalid(_)), "{e}"),
            (g, w) => prop_assert!(false, "engine {:?} vs reference {:?}", g.map(|v| v.len()), w.map(|v| v.len())),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A long-text table in row order (SPEC.md 7.6) answers every sort,
    /// filter (equality, ranges, prefixes, `in`), search, page and facet
    /// exactly like the same table sorted, and like the reference.
    #[test]
    fn row_ordered_long_text_answers_like_sorted(
        rest in prop::collection::vec(row(), 0..25),
        qs in prop::collection::vec(query(), 1..4),
        chunk in prop::sample::select(vec![8usize, 64, 65536]),
    ) {
        let mut rows = vec![first_row()];
        rows.extend(rest);
        let sorted = snapshot_with(&rows, &long_opts(chunk, false));
        let by_row = snapshot_with(&rows, &long_opts(chunk, true));
        by_row.verify().unwrap();
        prop_assert_eq!(sorted.to_values().unwrap(), by_row.to_values().unwrap());
        if let (Some(long), Some(old)) = (by_row.footer().tables.get(1), sorted.footer().tables.get(1)) {
            prop_assert!(long.flags & 4 != 0 && long.index_section.is_none());
            prop_assert!(old.flags & 4 == 0);
        }
        let (a, b) = (
            Engine::new(SnapshotSource::new(sorted)),
            Engine::new(SnapshotSource::new(by_row)),
        );
        for q in &qs {
            let (x, y) = (answers(&a, q), answers(&b, q));
            prop_assert_eq!(&x, &y, "query {:?}", q);
            if let (Ok((got, ..)), Ok(want)) = (&y, reference(&rows, q)) {
                let got: Vec<usize> = got.iter().map(|&r| r as usize).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}

/// In a row-ordered table `find` and `prefix_range` answer in ranks, and
/// ranks and ids map both ways.
#[test]
fn row_ordered_table_finds_by_rank() {
    let words = [
        "pear",
        "apple",
        "fig",
        "banana",
        "apple pie",
        "cherry",
        "fig",
    ];
    let rows: Vec<Value> = words.iter().map(|w| json!({ "w": w })).collect();
    let snap = snapshot_with(&rows, &long_opts(8, true));
    let t = snap.table(1).unwrap();
    assert!(t.row_ordered() && t.chunk_count() > 1);
    // Ids in first-use order.
    let by_id: Vec<String> = (0..t.len() as u32).map(|i| t.get(i).unwrap()).collect();
    assert_eq!(
        by_id,
        ["pear", "apple", "fig", "banana", "apple pie", "cherry"]
    );
    let mut sorted = by_id.clone();
    sorted.sort();
    for (r, w) in sorted.iter().enumerate() {
        let r = r as u32;
        assert_eq!(t.find(w).unwrap(), Ok(r));
        assert_eq!(t.get(t.id_at(r).unwrap()).unwrap(), *w);
        assert_eq!(t.rank(t.id_at(r).unwrap()).unwrap(), r);
        assert_eq!(t.find_id(w).unwrap(), Some(t.id_at(r).unwrap()));
    }
    assert_eq!(t.find("b").unwrap(), Err(2));
    assert_eq!(t.find("zzz").unwrap(), Err(6));
    assert_eq!(t.find("").unwrap(), Err(0));
    assert_eq!(t.find_id("b").unwrap(), None);
    assert_eq!(t.prefix_range("apple").unwrap(), 0..2);
    assert_eq!(t.prefix_range("c").unwrap(), 3..4);
    assert_eq!(t.prefix_range("q").unwrap(), 6..6);
    assert!(t.id_at(6).is_err());
}

#[test]
fn string_sort_and_filter_decode_no_chunks() {
    let rows: Vec<Value> = (0..500)
        .map(|i| json!({"s": format!("v{:04}", (i * 7919) % 500), "l": [{"name": format!("n{}", i % 13)}]}))
        .collect();
    let snap = snapshot(&rows, 64);
    let engine = Engine::new(SnapshotSource::new(snap.clone()));
    engine.column("s").unwrap();
    engine.column("l[].name").unwrap();
    snap.reset_chunks_decoded();
    let sorted = engine
        .sort(
            (0..500).collect(),
            &[SortKey {
                path: "s".into(),
                desc: true,
            }],
        )
        .unwrap();
    assert_eq!(snap.chunks_decoded(), 0, "sorting decoded string chunks");
    assert_eq!(sorted.len(), 500);
    let f = colsnap::query::parse::parse_where("s^=v01").unwrap();
    let hits = engine.filter(&[f]).unwrap();
    assert_eq!(hits.count(), 100);
    assert!(
        snap.chunks_decoded() <= 2,
        "prefix decoded {}",
        snap.chunks_decoded()
    );
    snap.reset_chunks_decoded();
    let f = colsnap::query::parse::parse_where("l[].name=n3").unwrap();
    assert_eq!(
        engine.filter(&[f]).unwrap().count(),
        rows.iter().filter(|r| r["l"][0]["name"] == "n3").count()
    );
    assert!(snap.chunks_decoded() <= 1);

    // Search: each chunk of the table at most once, even on a second search.
    snap.clear_string_cache();
    snap.reset_chunks_decoded();
    let total_chunks: usize = (0..snap.footer().tables.len() as u32)
        .map(|t| snap.table(t).unwrap().chunk_count())
        .sum();
    let s = Search {
        text: "V00".into(),
        fields: vec!["s".into(), "l[].name".into()],
    };
    assert_eq!(engine.search(&s).unwrap().count(), 100);
    engine.search(&s).unwrap();
    assert!(snap.chunks_decoded() as usize <= total_chunks);

    // A page reads only the chunks its rows reference (whole or, for the
    // strings not cached, walked up to the last string wanted).
    snap.clear_string_cache();
    snap.reset_chunks_decoded();
    let partial0 = snap.stats().partial_reads;
    let page = engine
        .page(
            &sorted,
            Paging::page(1, 3).unwrap(),
            Some(&["s".to_string()]),
        )
        .unwrap();
    assert_eq!(page.data.len(), 3);
    assert_eq!(page.data[0], json!({"s": "v0499"}));
    let touched = snap.chunks_decoded() + (snap.stats().partial_reads - partial0);
    assert!((1..=3).contains(&touched), "page read {touched} chunks");
}

#[test]
fn bad_fields_and_types_are_invalid() {
    let rows = vec![json!({"n": 1, "s": "x"})];
    let snap = snapshot(&rows, 64);
    let engine = Engine::new(SnapshotSource::new(snap.clone()));
    let q = |w: &str| Query {
        filters: vec![colsnap::query::parse::parse_where(w).unwrap()],
        ..Default::default()
    };
    for w in ["nope=1", "n=abc", "n^=1", "s>=\"a\"x"] {
        if let Ok(f) = colsnap::query::parse::parse_where(w) {
            let e = engine
                .run(&Query {
                    filters: vec![f],
                    ..Default::default()
                })
                .unwrap_err();
            assert!(matches!(e, colsnap::Error::Invalid(_)), "{w}: {e}");
        }
    }
    let e = engine.run(&q("nope=1")).unwrap_err().to_string();
    assert!(e.contains("available fields: n, s"), "{e}");
    assert_eq!(engine.run(&q("n>=1")).unwrap(), vec![0]);
}

/// A search over a long-text table of many PPMd chunks, the order a sort
/// by it builds and a whole export decode them on the snapshot's decode
/// threads: with one thread or several they find the reference's rows, in
/// its order, decode each chunk once, and export every row. A search keeps
/// the chunks in the cache only when the whole table fits it.
#[test]
fn search_over_many_ppmd_chunks_is_the_same_on_any_number_of_threads() {
    let words = ["alpha", "Beta", "gamma", "DELTA", "epsilon", "zeta"];
    let rows: Vec<Value> = (0..400)
        .map(|i| {
            let body: Vec<&str> = (0..80).map(|j| words[(i * 7 + j * j) % 6]).collect();
            let tail = if i % 37 == 0 { " Needle" } else { "" };
            json!({"n": i, "body": format!("{} {i}{tail}", body.join(" "))})
        })
        .collect();
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let opts = BuildOptions {
        long_chunk_size: 2048,
        long_chunk_fetch: 0,
        ..Default::default()
    };
    let bytes = build_to_vec(text.as_bytes(), &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.colsnap");
    std::fs::write(&path, &bytes).unwrap();
    let whole = Snapshot::from_bytes(bytes).unwrap();
    let long = &whole.footer().tables[1];
    assert!(
        long.chunk_counts.len() > 8,
        "{} chunks",
        long.chunk_counts.len()
    );
    assert_eq!(
        whole.footer().sections[long.first_chunk as usize].codec,
        colsnap::Codec::Ppmd
    );
    for threads in [1, 2, 5] {
        let snap = Snapshot::open_with(
            &path,
            colsnap::OpenOptions {
                decode_threads: threads,
                ..Default::default()
            },
        )
        .unwrap();
        let engine = Engine::new(SnapshotSource::new(snap.clone()));
        for needle in ["needle", "DELTA 1", "zeta 39", "absent"] {
            snap.reset_chunks_decoded();
            let s = Search {
                text: needle.into(),
                fields: vec!["body".into()],
            };
            let got: Vec<usize> = engine.search(&s).unwrap().ones().collect();
            let want = ref_search(&rows, &s);
            let want: Vec<usize> = (0..rows.len()).filter(|&i| want[i]).collect();
            assert_eq!(got, want, "{needle:?} on {threads} threads");
            assert_eq!(want.is_empty(), needle == "absent", "{needle:?}");
            assert!(snap.chunks_decoded() as usize <= long.chunk_counts.len() + 1);
        }
        // Sorting by the row-ordered long text builds its order from every
        // chunk, decoded the same way.
        snap.clear_string_cache();
        let sorted = engine
            .sort(
                (0..rows.len() as u32).collect(),
                &[SortKey {
                    path: "body".into(),
                    desc: false,
                }],
            )
            .unwrap();
        let mut want: Vec<u32> = (0..rows.len() as u32).collect();
        want.sort_by_key(|&i| rows[i as usize]["body"].as_str().unwrap().to_string());
        assert_eq!(sorted, want, "sorted by body on {threads} threads");
        // A whole export reads the row-ordered chunks ahead on the same
        // threads, as far as its string budget lets it: every budget gives
        // the rows back.
        for budget in [None, Some(8 << 10), Some(1)] {
            snap.clear_string_cache();
            let mut out = Vec::new();
            let opts = colsnap::ExportOptions {
                ndjson: true,
                string_budget: budget,
                ..Default::default()
            };
            snap.export(&mut out, &opts).unwrap();
            let back: Vec<Value> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(back, rows, "export, budget {budget:?}, {threads} threads");
        }
    }
    // A search over a table larger than the chunk cache keeps its first
    // chunks there, within three quarters of it (kept whole, it would push
    // every other chunk out and find none of its own the next time): a
    // second search decodes only the others. One that fits keeps them all,
    // and a second search decodes nothing.
    for (cache, whole) in [(16usize << 10, false), (64 << 20, true)] {
        let snap = Snapshot::open_with(
            &path,
            colsnap::OpenOptions {
                cache_bytes: cache,
                ..Default::default()
            },
        )
        .unwrap();
        let engine = Engine::new(SnapshotSource::new(snap.clone()));
        let s = Search {
            text: "needle".into(),
            fields: vec!["body".into()],
        };
        snap.reset_chunks_decoded();
        let first = engine.search(&s).unwrap().count();
        let decoded = snap.chunks_decoded();
        assert_eq!(decoded as usize, long.chunk_counts.len());
        let held = snap.string_cache_bytes();
        assert!(
            held > 0 && held <= cache / 4 * 3,
            "{held} bytes kept of {cache}"
        );
        snap.reset_chunks_decoded();
        let s = Search {
            text: "zeta".into(),
            fields: vec!["body".into()],
        };
        assert!(engine.search(&s).unwrap().count() > first);
        let again = snap.chunks_decoded();
        match whole {
            true => assert_eq!(again, 0),
            false => assert!(
                again > 0 && again < decoded,
                "{again} of {decoded} decoded again"
            ),
        }
    }
}

/// A search with no fields named looks in every column that holds strings,
/// those of mixed types included: one number in `tags[]` does not hide its
/// strings (it did, while `--in tags[]` found them).
#[test]
fn a_search_of_every_field_finds_strings_in_mixed_columns() {
    let rows = vec![
        json!({"id": 1, "title": "x", "tags": ["crash", 1]}),
        json!({"id": 2, "title": "crash here", "tags": []}),
        json!({"id": 3, "title": "y", "note": "Crash"}),
        json!({"id": 4, "title": "z", "note": 5}),
    ];
    let engine = Engine::new(SnapshotSource::new(snapshot(&rows, 4096)));
    let every = Search {
        text: "crash".into(),
        fields: vec![],
    };
    let found: Vec<usize> = engine.search(&every).unwrap().ones().collect();
    assert_eq!(found, [0, 1, 2]);
    let named = Search {
        text: "crash".into(),
        fields: vec!["title".into(), "tags[]".into(), "note".into()],
    };
    assert_eq!(
        engine
            .search(&named)
            .unwrap()
            .ones()
            .collect::<Vec<usize>>(),
        found
    );
}

/// `--in` an object or list field searches the string fields under it (a
/// document tree's texts, a list of tags); one with none under it, or a
/// scalar that is not a string, is refused naming it.
#[test]
fn a_search_in_an_object_or_list_field_searches_the_strings_under_it() {
    let rows = vec![
        json!({"id": 1, "d": {"type": "doc", "content": [{"text": "a crash"}]}, "tags": ["x"]}),
        json!({"id": 2, "d": {"type": "doc", "content": [{"text": "fine"}]}, "tags": ["Crash"]}),
        json!({"id": 3, "d": {"n": 5}, "tags": []}),
    ];
    let engine = Engine::new(SnapshotSource::new(snapshot(&rows, 4096)));
    let find = |fields: &[&str]| {
        engine
            .search(&Search {
                text: "crash".into(),
                fields: fields.iter().map(|f| f.to_string()).collect(),
            })
            .map(|b| b.ones().collect::<Vec<usize>>())
    };
    assert_eq!(find(&["d"]).unwrap(), [0]);
    assert_eq!(find(&["d.content"]).unwrap(), [0]);
    assert_eq!(find(&["tags"]).unwrap(), [1]);
    assert_eq!(find(&["d", "tags", "d.content[].text"]).unwrap(), [0, 1]);
    let e = find(&["id"]).unwrap_err().to_string();
    assert!(e.contains("cannot search `id`"), "{e}");
    let rows = vec![json!({"o": {"n": 1}})];
    let engine = Engine::new(SnapshotSource::new(snapshot(&rows, 4096)));
    let e = engine
        .search(&Search {
            text: "x".into(),
            fields: vec!["o".into()],
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("no string field under it"), "{e}");
}
