//! One query engine shared by 8 threads: 10,000 page queries (filters,
//! sorts, searches, pages, field selections) against one engine over one
//! snapshot, and again over an overlay with events. Every column is loaded
//! exactly once, however many threads ask for it at the same moment, and
//! every answer is byte for byte the answer of a single-threaded engine.

use colsnap::events::{Event, EventOp, Overlay, OverlaySource};
use colsnap::query::{Engine, Paging, Query, Search, SnapshotSource, parse};
use colsnap::source::ByteSource;
use colsnap::{BuildOptions, Snapshot, build_to_vec};
use colsnap_testdata::{GenOptions, issue, issues};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Instant;

const THREADS: usize = 8;
const QUERIES: usize = 10_000;
const ROWS: usize = 600;
/// Distinct query specs; the 10,000 requests cycle through them.
const SPECS: usize = 240;

fn gen_opts() -> GenOptions {
    GenOptions {
        seed: 7,
        count: ROWS,
        ..Default::default()
    }
}

fn snapshot() -> Snapshot {
    let rows: Vec<Value> = issues(&gen_opts()).collect();
    let opts = BuildOptions {
        chunk_size: 256,
        ..Default::default()
    };
    Snapshot::from_bytes(build_to_vec(&serde_json::to_vec(&rows).unwrap()[..], &opts).unwrap())
        .unwrap()
}

const WHERE: &[&str] = &[
    "state=open",
    "state!=closed",
    "comments>=5",
    "comments<3",
    "locked=false",
    "milestone=null",
    "milestone!=null",
    "user.login^=a",
    "created_at>=2021-01-01",
    "author_association in MEMBER,OWNER,NONE",
    "title^=Crash",
    "number<=500",
];
/// Conditions on columns inside arrays (refused with events applied).
const WHERE_LIST: &[&str] = &["labels[].name=bug", "assignees[].login^=b"];
const SORT: &[&str] = &[
    "",
    "-updated_at",
    "number",
    "title",
    "-comments,number",
    "user.login,-created_at",
    "state,-number",
];
const SEARCH: &[(&str, &[&str])] = &[
    ("crash", &["title"]),
    ("error", &["title", "milestone.title"]),
    ("a", &["user.login"]),
];
const FIELDS: &[Option<&[&str]>] = &[
    None,
    Some(&["number", "title", "state"]),
    Some(&["id", "user.login", "labels"]),
];

/// One request: a query, a page and the fields to print.
#[derive(Clone, Debug)]
struct Spec {
    query: Query,
    paging: Paging,
    fields: Option<Vec<String>>,
}

/// A deterministic spread of query specs (`lists`: use list columns).
fn specs(lists: bool) -> Vec<Spec> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    (0..SPECS)
        .map(|i| {
            let mut filters = Vec::new();
            if i == 0 {
                // Every thread starts with this one at the same moment: the
                // columns it needs are asked for by 8 threads at once.
                filters.push(parse::parse_where("state=open").unwrap());
                filters.push(parse::parse_where("comments>=1").unwrap());
            }
            for _ in 0..next(3) {
                filters.push(parse::parse_where(WHERE[next(WHERE.len())]).unwrap());
            }
            if lists && next(4) == 0 {
                filters.push(parse::parse_where(WHERE_LIST[next(WHERE_LIST.len())]).unwrap());
            }
            let sort = match i {
                0 => parse::parse_sort("-updated_at,title").unwrap(),
                _ => match SORT[next(SORT.len())] {
                    "" => Vec::new(),
                    s => parse::parse_sort(s).unwrap(),
                },
            };
            let search = (i == 0 || next(3) == 0).then(|| {
                let (text, fields) = SEARCH[if i == 0 { 0 } else { next(SEARCH.len()) }];
                Search {
                    text: text.into(),
                    fields: fields.iter().map(|f| f.to_string()).collect(),
                }
            });
            let limit = [3, 5, 10, 20][next(4)];
            Spec {
                query: Query {
                    filters,
                    search,
                    sort,
                },
                paging: Paging::page(1 + next(4), limit).unwrap(),
                fields: FIELDS[next(FIELDS.len())]
                    .map(|f| f.iter().map(|s| s.to_string()).collect()),
            }
        })
        .collect()
}

/// The answer to a request: the page as JSON text, or the error.
fn answer(engine: &Engine, s: &Spec) -> Result<Vec<u8>, String> {
    let rows = engine.run(&s.query).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    engine
        .page_json(&rows, s.paging, s.fields.as_deref(), false, &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Answer `QUERIES` requests from `THREADS` threads on one `shared` engine,
/// checking each against the single-threaded answers `want`.
fn hammer(shared: &Engine, specs: &[Spec], want: &[Result<Vec<u8>, String>]) -> f64 {
    let barrier = Arc::new(Barrier::new(THREADS));
    let t = Instant::now();
    std::thread::scope(|scope| {
        for th in 0..THREADS {
            let engine = shared.clone();
            let barrier = barrier.clone();
            scope.spawn(move || {
                barrier.wait();
                for r in (th..QUERIES).step_by(THREADS) {
                    // Request 0 of every thread is spec 0.
                    let i = if r < THREADS {
                        0
                    } else {
                        (r * 37) % specs.len()
                    };
                    let got = answer(&engine, &specs[i]);
                    assert!(
                        got == want[i],
                        "thread {th}, request {r}, spec {i} ({:?}): {:?} != {:?}",
                        specs[i],
                        got.as_ref()
                            .map(|b| String::from_utf8_lossy(b).into_owned()),
                        want[i]
                            .as_ref()
                            .map(|b| String::from_utf8_lossy(b).into_owned()),
                    );
                }
            });
        }
    });
    t.elapsed().as_secs_f64()
}

/// Columns the specs read (filters, sorts, searches; every string column
/// for a search without fields).
fn columns_used(engine: &Engine, specs: &[Spec]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in specs {
        out.extend(s.query.filters.iter().map(|f| f.path.clone()));
        out.extend(s.query.sort.iter().map(|k| k.path.clone()));
        if let Some(se) = &s.query.search {
            if se.fields.is_empty() {
                out.extend(
                    engine
                        .fields()
                        .iter()
                        .filter(|f| f.ty == colsnap::model::ColumnType::String)
                        .map(|f| f.path.clone()),
                );
            } else {
                out.extend(se.fields.iter().cloned());
            }
        }
    }
    out
}

/// `all_used`: every column the specs read is loaded (a snapshot); an
/// overlay may answer a filter from its snapshot's engine without loading
/// the column in its own (`RowSource::filter_rows`), so there only the
/// loaded columns must be among those read.
fn check(name: &str, shared: Engine, reference: Engine, specs: &[Spec], all_used: bool) {
    let t = Instant::now();
    let want: Vec<_> = specs.iter().map(|s| answer(&reference, s)).collect();
    let single = t.elapsed().as_secs_f64();
    let ok = want.iter().filter(|w| w.is_ok()).count();
    assert!(ok * 10 >= specs.len() * 9, "{name}: only {ok} specs answer");
    let secs = hammer(&shared, specs, &want);
    let used = columns_used(&shared, specs);
    let loaded: BTreeSet<String> = shared.loaded_columns().into_iter().collect();
    if all_used {
        assert_eq!(loaded, used, "{name}: loaded columns");
    } else {
        assert!(
            loaded.is_subset(&used),
            "{name}: loaded columns {loaded:?} not among those read {used:?}"
        );
        assert!(!loaded.is_empty(), "{name}: no column loaded");
    }
    assert_eq!(
        shared.column_loads(),
        loaded.len() as u64,
        "{name}: a column was loaded more than once"
    );
    let ref_loaded = reference.loaded_columns().len() as u64;
    assert_eq!(reference.column_loads(), ref_loaded);
    assert_eq!(
        ref_loaded,
        loaded.len() as u64,
        "{name}: reference loaded other columns"
    );
    eprintln!(
        "{name}: {QUERIES} queries on {THREADS} threads in {secs:.2}s ({SPECS} distinct, \
         single-threaded reference {single:.2}s); {} columns loaded, {} loads",
        loaded.len(),
        shared.column_loads()
    );
}

#[test]
fn eight_threads_one_engine_over_a_snapshot() {
    let snap = snapshot();
    let specs = specs(true);
    let shared = Engine::new(SnapshotSource::new(snap.clone()));
    let reference = Engine::new(SnapshotSource::new(snap));
    check("snapshot", shared, reference, &specs, true);
}

/// 300 events: title/state updates bringing new strings, creates, deletes.
fn events(snap: &Snapshot) -> Vec<Event> {
    let ids = snap.column("id").unwrap();
    let key = |i: usize| json!(ids.i64(i).expect("every generated issue has an integer id"));
    let mut deleted = BTreeSet::new();
    let mut out = Vec::new();
    for seq in 0..300u64 {
        let i = (seq as usize * 7919) % ROWS;
        let op = match seq % 10 {
            0..=5 if !deleted.contains(&i) => EventOp::Update {
                set: vec![
                    (
                        vec!["title".into()],
                        json!(format!("Event {seq}: crash when {} opens", seq * 31 % 97)),
                    ),
                    (vec!["state".into()], json!("closed")),
                ],
                remove: vec![],
            },
            6 | 7 => {
                let more = GenOptions {
                    count: 2 * ROWS,
                    ..gen_opts()
                };
                let row = issue(&more, ROWS + seq as usize);
                out.push(Event {
                    seq,
                    key: row["id"].clone(),
                    op: EventOp::Create {
                        row: row.as_object().unwrap().clone(),
                        at: Some(seq % 50),
                    },
                });
                continue;
            }
            _ if deleted.insert(i) => EventOp::Delete,
            _ => EventOp::Update {
                set: vec![(vec!["comments".into()], json!(seq))],
                remove: vec![],
            },
        };
        out.push(Event {
            seq,
            key: key(i),
            op,
        });
    }
    out
}

fn overlay(snap: &Snapshot, evs: &[Event]) -> Overlay {
    let mut o = Overlay::new(snap.clone(), "id").unwrap();
    for (n, e) in evs.iter().enumerate() {
        o.apply(e, n as u64 + 1).unwrap();
    }
    o
}

#[test]
fn eight_threads_one_engine_over_an_overlay() {
    let snap = snapshot();
    let evs = events(&snap);
    // Columns inside arrays cannot be queried with events applied (and a
    // failed load is tried again), so the specs stay outside them.
    let specs = specs(false);
    let shared = Engine::new(OverlaySource::new(overlay(&snap, &evs)));
    let reference = Engine::new(OverlaySource::new(overlay(&snap, &evs)));
    assert_eq!(shared.rows(), ROWS); // 60 creates, 60 deletes
    check("overlay", shared, reference, &specs, false);
}

/// The engine, its sources and the overlay can cross threads.
#[test]
fn engine_and_sources_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Engine>();
    both::<SnapshotSource>();
    both::<OverlaySource>();
    both::<Overlay>();
}

/// A source whose loads are slow and counted by the source itself, each
/// recorded with the thread that asked; with `keeps`, it claims to keep
/// every column's order ([`RowSource::keeps_order`]) and answers one-key
/// sorts in row order without loading anything.
#[derive(Default)]
struct SlowSource {
    inner: Option<SnapshotSource>,
    loads: std::sync::atomic::AtomicU64,
    by: std::sync::Mutex<Vec<(String, std::thread::ThreadId)>>,
    keeps: bool,
}

impl SlowSource {
    fn new(keeps: bool) -> Self {
        SlowSource {
            inner: Some(SnapshotSource::new(snapshot())),
            keeps,
            ..Default::default()
        }
    }
    fn inner(&self) -> &SnapshotSource {
        self.inner.as_ref().expect("a snapshot")
    }
    fn loads_by(&self) -> Vec<(String, std::thread::ThreadId)> {
        self.by.lock().unwrap().clone()
    }
}

impl colsnap::query::RowSource for SlowSource {
    fn rows(&self) -> usize {
        self.inner().rows()
    }
    fn fields(&self) -> Vec<colsnap::query::FieldInfo> {
        self.inner().fields()
    }
    fn load(&self, path: &str) -> colsnap::Result<colsnap::query::Column> {
        self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.by
            .lock()
            .unwrap()
            .push((path.to_string(), std::thread::current().id()));
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.inner().load(path)
    }
    fn find_str(&self, col: &colsnap::query::Column, s: &str) -> colsnap::Result<Result<u32, u32>> {
        self.inner().find_str(col, s)
    }
    fn prefix_keys(
        &self,
        col: &colsnap::query::Column,
        prefix: &str,
    ) -> colsnap::Result<std::ops::Range<u32>> {
        self.inner().prefix_keys(col, prefix)
    }
    fn search_keys(
        &self,
        cols: &[&colsnap::query::Column],
        needle_lower: &str,
    ) -> colsnap::Result<Vec<colsnap::query::Bits>> {
        self.inner().search_keys(cols, needle_lower)
    }
    fn keeps_order(&self, _path: &str) -> bool {
        self.keeps
    }
    fn sort_by_one(
        &self,
        rows: &[u32],
        _path: &str,
        _desc: bool,
    ) -> colsnap::Result<Option<Vec<u32>>> {
        Ok(self.keeps.then(|| rows.to_vec()))
    }
    fn rows_json(&self, rows: &[u32], fields: Option<&[String]>) -> colsnap::Result<Vec<Value>> {
        self.inner().rows_json(rows, fields)
    }
}

/// 8 threads asking for the same columns at the same moment, while the
/// first load is still running: one load each, every thread gets it.
#[test]
fn a_column_asked_for_by_8_threads_at_once_is_loaded_once() {
    let src = Arc::new(SlowSource::new(false));
    let engine = Engine::from_source(src.clone());
    let barrier = Barrier::new(THREADS);
    let cols: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let a = engine.column("title").unwrap();
                    let b = engine.column("number").unwrap();
                    (a, b)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(src.loads.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(engine.column_loads(), 2);
    assert_eq!(engine.loaded_columns(), ["number", "title"]);
    for (a, b) in &cols {
        assert!(Arc::ptr_eq(a, &cols[0].0) && Arc::ptr_eq(b, &cols[0].1));
    }
    // Unknown fields are refused before the source is asked.
    assert!(engine.column("nope").is_err());
    assert_eq!(
        engine.column_loads(),
        2,
        "unknown fields never reach the source"
    );
}

/// A cold query that filters and sorts loads the sort's column on a second
/// thread while it filters (where the machine has two cores), and answers
/// exactly what an engine with both columns loaded first answers; nothing
/// is loaded twice, and a column already loaded is not loaded again.
#[test]
fn a_sort_column_loads_while_the_filter_runs() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let reference = Engine::new(SnapshotSource::new(snapshot()));
    for (filter, sort) in [
        ("state=open", "-updated_at"),
        ("comments>=5", "title"),
        ("state=nothing-matches", "number"),
    ] {
        let q = Query {
            filters: vec![parse::parse_where(filter).unwrap()],
            sort: parse::parse_sort(sort).unwrap(),
            ..Default::default()
        };
        let src = Arc::new(SlowSource::new(false));
        let engine = Engine::from_source(src.clone());
        for p in [Paging::page(1, 10).unwrap(), Paging::page(3, 7).unwrap()] {
            assert_eq!(
                engine.run_page(&q, p).unwrap(),
                reference.run_page(&q, p).unwrap(),
                "{filter} {sort} {p:?}"
            );
        }
        assert_eq!(engine.run(&q).unwrap(), reference.run(&q).unwrap());
        let by = src.loads_by();
        let (fpath, spath) = (&q.filters[0].path, &q.sort[0].path);
        assert_eq!(by.len(), 2, "{filter} {sort}: {by:?}");
        let thread_of = |p: &str| by.iter().find(|(q, _)| q == p).map(|(_, t)| *t);
        let (ft, st) = (thread_of(fpath).unwrap(), thread_of(spath).unwrap());
        assert_eq!(ft, std::thread::current().id(), "the filter runs here");
        if cores >= 2 {
            assert_ne!(st, ft, "{sort} loaded on a second thread");
        } else {
            assert_eq!(st, ft, "one core: one thread");
        }
        assert_eq!(engine.column_loads(), 2);
    }

    // A filter on an unknown field is refused before anything loads.
    let src = Arc::new(SlowSource::new(false));
    let engine = Engine::from_source(src.clone());
    let q = Query {
        filters: vec![parse::parse_where("nope=1").unwrap()],
        sort: parse::parse_sort("number").unwrap(),
        ..Default::default()
    };
    assert!(engine.run_page(&q, Paging::page(1, 5).unwrap()).is_err());
    assert!(engine.run(&q).is_err());
    assert_eq!(engine.column_loads(), 0);

    // Sort column loaded already: the filter's column alone is loaded.
    let src = Arc::new(SlowSource::new(false));
    let engine = Engine::from_source(src.clone());
    engine.column("number").unwrap();
    let q = Query {
        filters: vec![parse::parse_where("state=open").unwrap()],
        sort: parse::parse_sort("number").unwrap(),
        ..Default::default()
    };
    engine.run_page(&q, Paging::page(1, 5).unwrap()).unwrap();
    let loaded: Vec<String> = src.loads_by().into_iter().map(|(p, _)| p).collect();
    assert_eq!(loaded, ["number", "state"]);
}

/// A source that keeps a column's order answers the sort without the
/// column: the engine does not load it ahead. A sort by two keys loads
/// both keys' columns whatever the source keeps.
#[test]
fn a_kept_order_is_not_loaded_ahead() {
    let src = Arc::new(SlowSource::new(true));
    let engine = Engine::from_source(src.clone());
    let q = Query {
        filters: vec![parse::parse_where("state=open").unwrap()],
        sort: parse::parse_sort("-updated_at").unwrap(),
        ..Default::default()
    };
    let (rows, total) = engine.run_page(&q, Paging::page(1, 5).unwrap()).unwrap();
    assert!(total > 5 && rows.len() == 5);
    assert_eq!(engine.loaded_columns(), ["state"]);
    let q2 = Query {
        sort: parse::parse_sort("-updated_at,number").unwrap(),
        ..q
    };
    engine.run_page(&q2, Paging::page(1, 5).unwrap()).unwrap();
    assert_eq!(engine.loaded_columns(), ["number", "state", "updated_at"]);
    assert_eq!(src.loads.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// A remote source: every read takes 50 ms (a round trip), and the ranges
/// asked are recorded.
#[derive(Debug)]
struct RemoteSource {
    bytes: colsnap::source::MemorySource,
    asked: std::sync::Mutex<Vec<std::ops::Range<u64>>>,
}

impl ByteSource for RemoteSource {
    fn len(&self) -> u64 {
        self.bytes.len()
    }
    fn read_ranges(&self, ranges: &[std::ops::Range<u64>]) -> colsnap::Result<Vec<bytes::Bytes>> {
        self.asked.lock().unwrap().extend_from_slice(ranges);
        std::thread::sleep(std::time::Duration::from_millis(50));
        self.bytes.read_ranges(ranges)
    }
    fn is_remote(&self) -> bool {
        true
    }
}

/// Eight threads reading the same strings of one snapshot on a remote
/// source at the same moment read each string chunk from it once: a thread
/// that needs a chunk another is reading waits for that read.
#[test]
fn eight_threads_over_a_remote_snapshot_read_each_section_once() {
    let rows: Vec<Value> = issues(&gen_opts()).collect();
    let opts = BuildOptions {
        chunk_size: 256,
        ..Default::default()
    };
    let file = build_to_vec(&serde_json::to_vec(&rows).unwrap()[..], &opts).unwrap();
    let src = Arc::new(RemoteSource {
        bytes: colsnap::source::MemorySource::new(file),
        asked: Default::default(),
    });
    let snap = Snapshot::from_source(src.clone()).unwrap();
    let table = snap.table(0).unwrap();
    assert!(table.chunk_count() >= 8, "{} chunks", table.chunk_count());
    // A string from each of 8 chunks spread over the table.
    let ids: Vec<u32> = (0..8u64).map(|k| (k * table.len() / 8) as u32).collect();
    src.asked.lock().unwrap().clear();
    let barrier = Barrier::new(THREADS);
    let got: Vec<Vec<String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    ids.iter().map(|&id| table.get(id).unwrap()).collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(got.iter().all(|g| g == &got[0]));
    let local = Snapshot::from_bytes(src.bytes.read_range(0..src.bytes.len()).unwrap()).unwrap();
    let want: Vec<String> = ids
        .iter()
        .map(|&id| local.table(0).unwrap().get(id).unwrap())
        .collect();
    assert_eq!(got[0], want);
    // No byte past the header was asked twice.
    let mut asked: Vec<_> = src
        .asked
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.start >= 16)
        .cloned()
        .collect();
    asked.sort_by_key(|r| r.start);
    assert!(!asked.is_empty());
    for w in asked.windows(2) {
        assert!(
            w[0].end <= w[1].start,
            "asked twice: {:?} and {:?} (all: {asked:?})",
            w[0],
            w[1]
        );
    }
}
