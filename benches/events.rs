//! Events overlay benchmark: 10,000 events applied to a snapshot of generated
//! issues, then the query engine over the overlay (`OverlaySource`) against
//! the engine over the snapshot alone (`SnapshotSource`), in the same run:
//! sort by a string (`title`), a timestamp (`created_at`) and a list column
//! (`labels[].name`), a filter (`state = open`), each followed by its first
//! page of 50 rows as JSON, and page 3 of the title order; the cost of
//! applying events (the 10,000, and one at a time on a live view, followed
//! by the next sorted page: once with a new source per event, once with
//! `OverlaySource::apply` on one live source, which carries its typed sort
//! delta, merged order and field types and re-types only the changed row;
//! wall time and CPU time per event); the cost of copying the overlay (a
//! server POST's copy); the cost of opening the overlay source. The
//! goal's stream: 10,000 events each applied to one live source and
//! followed by the next sorted page asked as a page (`Engine::run_page`,
//! which reads only the page's rows from the kept order, then the page as
//! JSON text), CPU time per event and per phase.
//!
//! ```text
//! cargo bench -p colsnap-bench --bench events                       # 1,000,000 rows
//! COLSNAP_BENCH_ROWS=200000 cargo bench -p colsnap-bench --bench events
//! COLSNAP_BENCH_RUNS=2 cargo bench -p colsnap-bench --bench events  # best of 2, 40 live events
//! COLSNAP_BENCH_STREAM=2000 cargo bench -p colsnap-bench --bench events  # a shorter apply stream
//! COLSNAP_BENCH_TABLE_ONLY=1 cargo bench -p colsnap-bench --bench events # the query table alone
//! COLSNAP_BENCH_CASES=title,filter ...                               # only these table rows
//! COLSNAP_BENCH_COLD_RUNS=20 ...      # cold runs per side per table row (default 5)
//! COLSNAP_BENCH_SIDE=overlay ...      # only the overlay's cold runs (or `snapshot`), for profiling
//! ```
//!
//! The snapshot is built once per size and cached under
//! `target/bench-data/issues-seed42-N.colsnap` (the query bench's file; a
//! 1M-row build takes minutes).
//!
//! The query table compares like with like, in CPU time of the querying
//! thread (the ratio's basis, `CLOCK_THREAD_CPUTIME_ID`; wall time beside
//! it), the least of the runs, the cold runs of the two alternating:
//! - **cold**: everything fresh for each run. The snapshot alone: a new
//!   engine (column decode, sort, page). The overlay: a new base engine
//!   over the snapshot, a new source over a copy of the 10,000-event
//!   overlay (the copy untimed) and a new engine over it (field types),
//!   then the query and its page: decode, typing of the delta, the base
//!   order and the merge all count. Both sides make the same untimed copy
//!   before each cold run and drop it untimed after (the snapshot's side
//!   just holds it), so each starts from a heap in the same state: where
//!   fresh column buffers land, and so their page faults, do not favour
//!   one side.
//! - **warm**: the same engine asked again. The snapshot alone keeps its
//!   columns and sorts again; the overlay keeps its columns and the merged
//!   order its source made.
//!
//! The live rows use a fresh engine per event over a base engine that
//! every overlay source of the live view shares (its columns and orders
//! decoded once).

use colsnap::Snapshot;
use colsnap::events::{Event, EventOp as Op, Overlay, OverlaySource};
use colsnap::query::{
    Engine, Paging, Query, RowSource, SnapshotSource, SortKey, parse::parse_where,
};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

fn rows() -> usize {
    std::env::var("COLSNAP_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// `count` events: 70% updates (a new title and `closed`; every fifth one
/// also new labels), 20% creates (with a timestamp and labels), 10%
/// deletes, consecutive sequence numbers from 0.
fn events(snap: &Snapshot, count: u64) -> Vec<Event> {
    let ids = snap.column("id").expect("id column");
    let n = ids.len();
    let key = |i: usize| json!(ids.i64(i).expect("an integer id"));
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(count as usize);
    let mut deleted = std::collections::HashSet::new();
    for seq in 0..count {
        let r = next();
        match r % 10 {
            0..=6 => {
                let mut i = (next() % n as u64) as usize;
                while deleted.contains(&i) {
                    i = (i + 1) % n;
                }
                let title = format!("Event {seq}: crash when {} opens", next() % 1000);
                let mut set = vec![
                    (vec!["title".into()], Value::from(title)),
                    (vec!["state".into()], Value::from("closed")),
                ];
                if seq % 5 == 0 {
                    set.push((
                        vec!["labels".into()],
                        json!([{"name": format!("triage-{}", seq % 40)}, {"name": "bug"}]),
                    ));
                }
                out.push(Event {
                    seq,
                    key: key(i),
                    op: Op::Update {
                        set,
                        remove: vec![],
                    },
                });
            }
            7 | 8 => {
                let id = 10_000_000_000u64 + seq;
                let row = json!({
                    "id": id,
                    "title": format!("New issue {seq}"),
                    "state": "open",
                    "created_at": format!("2026-12-01T{:02}:{:02}:{:02}Z", seq / 3600 % 24, seq / 60 % 60, seq % 60),
                    "labels": [{"name": format!("new-{}", seq % 7)}],
                });
                out.push(Event {
                    seq,
                    key: json!(id),
                    op: Op::Create {
                        row: row.as_object().cloned().unwrap_or_default(),
                        at: Some(next() % (n as u64 / 2)),
                    },
                });
            }
            _ => {
                let mut i = (next() % n as u64) as usize;
                while !deleted.insert(i) {
                    i = (i + 1) % n;
                }
                out.push(Event {
                    seq,
                    key: key(i),
                    op: Op::Delete,
                });
            }
        }
    }
    out
}

/// Runs per timing: `COLSNAP_BENCH_RUNS` (default 5; 1 with
/// `COLSNAP_BENCH_ONCE` set, for a run under `valgrind --tool=callgrind`,
/// whose instruction counts are steadier than wall time on a loaded
/// machine).
fn runs() -> usize {
    if std::env::var_os("COLSNAP_BENCH_ONCE").is_some() {
        return 1;
    }
    std::env::var("COLSNAP_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5usize)
        .max(1)
}

/// Cold runs of each side per table row, alternating:
/// `COLSNAP_BENCH_COLD_RUNS` (default: the runs, at most 5).
fn cold_runs() -> usize {
    std::env::var("COLSNAP_BENCH_COLD_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| runs().min(5))
        .max(1)
}

/// CPU seconds (user + system) of this process so far
/// (`CLOCK_PROCESS_CPUTIME_ID`, through the `cpu-time` crate: nanosecond
/// resolution, no tick sampling): the live loops report CPU time per
/// event, steadier than wall time on a loaded machine.
fn cpu_s() -> f64 {
    cpu_time::ProcessTime::try_now().map_or(0.0, |t| t.as_duration().as_secs_f64())
}

/// Wall and CPU seconds of one timed call.
#[derive(Clone, Copy)]
struct Cost {
    wall: f64,
    cpu: f64,
}

/// CPU seconds (user + system) of the calling thread so far
/// (`CLOCK_THREAD_CPUTIME_ID`, through the `cpu-time` crate: exact to the
/// nanosecond, brought up to date when read; NaN where unavailable). The
/// queries run on the calling thread.
fn thread_cpu() -> f64 {
    cpu_time::ThreadTime::try_now().map_or(f64::NAN, |t| t.as_duration().as_secs_f64())
}

/// [`runs`] calls of `f` (at most 5): the least wall time and the least
/// CPU time (an exact clock: the least is the run least disturbed by
/// anything else on the machine), and what the last call returned;
/// `prep` makes each call's input, untimed, and what a call returns is
/// dropped untimed.
fn best_cost_with<T, R>(mut prep: impl FnMut() -> T, mut f: impl FnMut(T) -> R) -> (Cost, R) {
    let k = runs().min(5);
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    let mut last = None;
    for _ in 0..k {
        let x = prep();
        let (t, c) = (Instant::now(), thread_cpu());
        let r = f(x);
        cpu = cpu.min(thread_cpu() - c);
        wall = wall.min(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    let cost = Cost { wall, cpu };
    (cost, last.expect("at least one run"))
}

/// One call of `f` on what `prep` makes (untimed): its CPU and wall time,
/// and what it returned (dropped by the caller, untimed).
fn best_cost_once<T, R>(prep: impl FnOnce() -> T, f: impl FnOnce(T) -> R) -> (Cost, R) {
    let x = prep();
    let (t, c) = (Instant::now(), thread_cpu());
    let r = f(x);
    let cpu = thread_cpu() - c;
    let wall = t.elapsed().as_secs_f64();
    (Cost { wall, cpu }, r)
}

impl Cost {
    fn none() -> Cost {
        Cost {
            wall: f64::INFINITY,
            cpu: f64::INFINITY,
        }
    }

    /// The least wall and the least CPU time of two.
    fn least(self, o: Cost) -> Cost {
        Cost {
            wall: self.wall.min(o.wall),
            cpu: self.cpu.min(o.cpu),
        }
    }
}

fn best_cost<R>(mut f: impl FnMut() -> R) -> (Cost, R) {
    best_cost_with(|| (), |()| f())
}

/// The snapshot alone against the overlay, cold and warm: CPU time (the
/// ratio's basis: the machine may be shared) and wall time.
fn print_table(
    n: usize,
    total: u64,
    view: (usize, usize),
    table: &[(String, Cost, Cost, Cost, Cost)],
) {
    println!();
    println!(
        "events bench, {n} rows, {total} events ({} rows after, {} held as JSON)",
        view.0, view.1
    );
    println!(
        "| query (CPU ms; wall ms; least of the runs) | snapshot alone, cold | overlay, cold | ratio cold | snapshot alone, warm | overlay, warm | ratio warm |"
    );
    println!("|---|---|---|---|---|---|---|");
    let c = |x: &Cost| format!("{:.2}; {:.2}", x.cpu * 1e3, x.wall * 1e3);
    for (name, sc, oc, sw, ow) in table {
        println!(
            "| {name} | {} | {} | {:.2}x | {} | {} | {:.2}x |",
            c(sc),
            c(oc),
            oc.cpu / sc.cpu,
            c(sw),
            c(ow),
            ow.cpu / sw.cpu
        );
    }
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1e3)
}

fn sort_query(path: &str) -> Query {
    Query {
        sort: vec![SortKey {
            path: path.into(),
            desc: false,
        }],
        ..Default::default()
    }
}

fn bench(_c: &mut Criterion) {
    let n = rows();
    let path = colsnap_bench::snapshot_path(n);
    // One decode thread: the table's basis is the querying thread's CPU
    // time, which work on other threads would leave out.
    let opts = colsnap::OpenOptions {
        decode_threads: 1,
        ..Default::default()
    };
    let snap = Snapshot::open_with(&path, opts).expect("open");
    let total = 10_000u64;
    let live = if runs() < 5 { 20 * runs() as u64 } else { 200 };
    let evs = events(&snap, total + live);
    eprintln!("rows {n}: {} ({} bytes)", path.display(), snap.file_len());

    // Applying the 10,000 events to a fresh overlay (key index and row
    // decoding set up on the way), then live events one by one.
    let t = Instant::now();
    let mut ov = Overlay::new(snap.clone(), "id").expect("overlay");
    for (i, e) in evs[..total as usize].iter().enumerate() {
        ov.apply(e, i as u64 + 1).expect("apply");
    }
    let apply_all = t.elapsed().as_secs_f64();

    // Open: a source over the view (no column read) and an engine over it
    // (field types from kind counts plus the delta), over a fresh base.
    let base = Engine::new(SnapshotSource::new(snap.clone()));
    let (t, c) = (Instant::now(), thread_cpu());
    let src = Arc::new(OverlaySource::with_base(ov, base.clone()));
    let open_src = Cost {
        wall: t.elapsed().as_secs_f64(),
        cpu: thread_cpu() - c,
    };
    let (t, c) = (Instant::now(), thread_cpu());
    let fields = src.fields().len();
    let open_fields = Cost {
        wall: t.elapsed().as_secs_f64(),
        cpu: thread_cpu() - c,
    };
    let ov = Arc::try_unwrap(src).expect("sole owner").into_inner();
    let view = (ov.len(), ov.overridden());

    // Snapshot alone against the overlay, each query followed by its page
    // of 50 rows as JSON. Cold: everything fresh (a new engine over the
    // snapshot; for the overlay a new base engine, a new source over a
    // copy of the 10,000-event overlay and a new engine over it, field
    // types included): decode, sort and typing all count. Warm: the same
    // engine asked again (the snapshot alone keeps its columns and sorts
    // again; the overlay keeps its columns and its merged orders).
    let filter = Query {
        filters: vec![parse_where("state=open").expect("filter")],
        ..Default::default()
    };
    let mut cases: Vec<(&str, Query, Option<Paging>)> = vec![
        ("sort title (string)", sort_query("title"), None),
        (
            "sort created_at (timestamp)",
            sort_query("created_at"),
            None,
        ),
        (
            "sort labels[].name (list)",
            sort_query("labels[].name"),
            None,
        ),
        ("filter state=open", filter, None),
        (
            "sort title + page 3 of 50 rows as JSON",
            sort_query("title"),
            Some(Paging::page(3, 50).expect("paging")),
        ),
    ];
    // `COLSNAP_BENCH_CASES=title,filter`: only the cases whose name holds
    // one of these words (for profiling).
    if let Ok(only) = std::env::var("COLSNAP_BENCH_CASES") {
        cases.retain(|c| only.split(',').any(|w| c.0.contains(w)));
    }
    // The rows in order, and the page's JSON when one is asked.
    let query_page = |e: &Engine, q: &Query, p: Option<Paging>| {
        let rows = e.run(q).expect("query");
        let mut out = Vec::new();
        if let Some(p) = p {
            e.page_json(&rows, p, None, false, &mut out).expect("page");
        }
        (rows.len(), out)
    };
    let mut table = Vec::new();
    for (name, q, p) in &cases {
        // The cold runs alternate (snapshot, overlay, snapshot, ...) so
        // that whatever else the machine does falls on both alike.
        let (mut snap_cold, mut over_cold) = (Cost::none(), Cost::none());
        let (mut se, mut oe) = (None, None);
        // `COLSNAP_BENCH_SIDE=snapshot` (or `overlay`): only that side's
        // cold runs, nothing else (to profile one side under callgrind).
        let side = std::env::var("COLSNAP_BENCH_SIDE").ok();
        if let Some(side) = &side {
            for _ in 0..runs() {
                let c = if side == "overlay" {
                    let o = ov.clone();
                    best_cost_once(
                        || (),
                        |()| {
                            let b = Engine::new(SnapshotSource::new(snap.clone()));
                            let e = Engine::new(OverlaySource::with_base(o, b));
                            query_page(&e, q, *p);
                            e
                        },
                    )
                    .0
                } else {
                    best_cost_once(
                        || ov.clone(),
                        |o| {
                            let e = Engine::new(SnapshotSource::new(snap.clone()));
                            query_page(&e, q, *p);
                            (e, o)
                        },
                    )
                    .0
                };
                eprintln!("{name}: {side} cold {} ms CPU", ms(c.cpu));
            }
            continue;
        }
        for _ in 0..cold_runs() {
            // The same preparation on both sides (a copy of the overlay,
            // dropped untimed after the run): the allocator's state, and
            // so the page faults of fresh column buffers, are alike.
            let (c, (e, _copy)) = best_cost_once(
                || ov.clone(),
                |o| {
                    let e = Engine::new(SnapshotSource::new(snap.clone()));
                    query_page(&e, q, *p);
                    (e, o)
                },
            );
            snap_cold = snap_cold.least(c);
            se = Some(e);
            let (c, e) = best_cost_once(
                || ov.clone(),
                |o| {
                    let b = Engine::new(SnapshotSource::new(snap.clone()));
                    let e = Engine::new(OverlaySource::with_base(o, b));
                    query_page(&e, q, *p);
                    e
                },
            );
            over_cold = over_cold.least(c);
            oe = Some(e);
        }
        let (se, oe) = (se.expect("a run"), oe.expect("a run"));
        // Both answer with as many rows as the view has matches (the
        // property tests check the rows themselves).
        let (a, b) = (query_page(&se, q, *p), query_page(&oe, q, *p));
        assert!(a.0 > 0 && b.0 > 0 && a.1.is_empty() == b.1.is_empty());
        let (snap_warm, _) = best_cost(|| query_page(&se, q, *p));
        let (over_warm, _) = best_cost(|| query_page(&oe, q, *p));
        table.push((name.to_string(), snap_cold, over_cold, snap_warm, over_warm));
    }
    if std::env::var_os("COLSNAP_BENCH_TABLE_ONLY").is_some() {
        print_table(n, total, view, &table);
        print_open(&open_src, fields, &open_fields);
        return;
    }

    // Live: one more event, a new source over the same base, the next
    // sorted page (title order) reflecting it.
    let mut ov = ov;
    // A copy of the overlay (what a server POST applies its events to).
    let t = Instant::now();
    let ov_copy = ov.clone();
    let clone_ov = t.elapsed().as_secs_f64();
    let ov_copy2 = ov.clone();
    let mut apply_one = Vec::new();
    let mut next_page = Vec::new();
    let mut phases: Vec<[f64; 4]> = Vec::new();
    let q = sort_query("title");
    let cpu0 = cpu_s();
    for (i, e) in evs[total as usize..].iter().enumerate() {
        let t = Instant::now();
        ov.apply(e, total + i as u64 + 1).expect("apply");
        apply_one.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let s = Arc::new(OverlaySource::with_base(ov, base.clone()));
        let t1 = t.elapsed().as_secs_f64();
        let e = Engine::from_source(s.clone());
        let t2 = t.elapsed().as_secs_f64();
        let rows = e.run(&q).expect("query");
        let t3 = t.elapsed().as_secs_f64();
        let p = e
            .page(&rows, Paging::page(1, 50).expect("paging"), None)
            .expect("page");
        assert_eq!(p.data.len(), 50);
        next_page.push(t.elapsed().as_secs_f64());
        phases.push([t1, t2 - t1, t3 - t2, next_page[next_page.len() - 1] - t3]);
        drop(e);
        ov = Arc::try_unwrap(s).expect("sole owner").into_inner();
    }
    let old_cpu = cpu_s() - cpu0;
    // Live, incremental: the same events applied to one source
    // (`OverlaySource::apply`: its typed sort delta and field types are
    // carried, the changed row alone typed again), a new engine over it,
    // the next sorted page. The source's first sort (typing the delta) is
    // done before, once.
    let mut s = Arc::new(OverlaySource::with_base(ov_copy, base.clone()));
    let t = Instant::now();
    Engine::from_source(s.clone()).run(&q).expect("query");
    let inc_first = t.elapsed().as_secs_f64();
    let mut inc_apply = Vec::new();
    let mut inc_page = Vec::new();
    let mut inc_pages = Vec::new();
    let stream = Instant::now();
    let cpu1 = cpu_s();
    for (i, e) in evs[total as usize..].iter().enumerate() {
        let t = Instant::now();
        Arc::get_mut(&mut s)
            .expect("sole owner")
            .apply(e, total + i as u64 + 1)
            .expect("apply");
        let t1 = t.elapsed().as_secs_f64();
        let eng = Engine::from_source(s.clone());
        let rows = eng.run(&q).expect("query");
        let p = eng
            .page(&rows, Paging::page(1, 50).expect("paging"), None)
            .expect("page");
        assert_eq!(p.data.len(), 50);
        inc_apply.push(t1);
        inc_page.push(t.elapsed().as_secs_f64());
        inc_pages.push(p.data);
    }
    let inc_stream = stream.elapsed().as_secs_f64();
    let inc_cpu = cpu_s() - cpu1;
    let last_page = inc_pages.last().cloned();
    // The same, the page asked as a page (`Engine::query_page`: a one-key
    // sort over a source that keeps its merged order reads only the
    // page's rows, no row list of the whole view).
    let page1 = Paging::page(1, 50).expect("paging");
    let mut s = Arc::new(OverlaySource::with_base(ov_copy2, base.clone()));
    Engine::from_source(s.clone())
        .query_page(&q, page1, None)
        .expect("query");
    let mut pg_page = Vec::new();
    let cpu1 = cpu_s();
    for (i, e) in evs[total as usize..].iter().enumerate() {
        let t = Instant::now();
        Arc::get_mut(&mut s)
            .expect("sole owner")
            .apply(e, total + i as u64 + 1)
            .expect("apply");
        let p = Engine::from_source(s.clone())
            .query_page(&q, page1, None)
            .expect("page");
        pg_page.push(t.elapsed().as_secs_f64());
        assert_eq!(p.data, inc_pages[i], "page API differs");
    }
    let pg_cpu = cpu_s() - cpu1;
    drop(s);
    {
        // Both ways end on the same page.
        let fresh = Engine::new(OverlaySource::with_base(ov.clone(), base.clone()));
        let rows = fresh.run(&q).expect("query");
        let p = fresh
            .page(&rows, Paging::page(1, 50).expect("paging"), None)
            .expect("page");
        assert_eq!(Some(p.data), last_page, "incremental page differs");
    }
    // A stream of events applied one by one to one live source (the
    // goal: at most 1 ms each at 1M rows, amortised over 10,000): a source
    // over the snapshot alone, its field types and title order made first,
    // then the `COLSNAP_BENCH_STREAM` (default 10,000) events with
    // `OverlaySource::apply` alone; CPU time per event. Its next sorted
    // page equals a fresh source's.
    let stream_n = std::env::var("COLSNAP_BENCH_STREAM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(total as usize)
        .min(total as usize);
    let mut s = Arc::new(OverlaySource::with_base(
        Overlay::new(snap.clone(), "id").expect("overlay"),
        base.clone(),
    ));
    // The first event (untimed) leaves the plain view: the field types
    // and the title order are made once, then kept up to date.
    Arc::get_mut(&mut s)
        .expect("sole owner")
        .apply(&evs[0], 1)
        .expect("apply");
    s.fields();
    Engine::from_source(s.clone()).run(&q).expect("query");
    let stream_n = stream_n.max(2) - 1;
    let mut st_apply = Vec::with_capacity(stream_n);
    let st_wall = Instant::now();
    let cpu2 = cpu_s();
    for (i, e) in evs[1..=stream_n].iter().enumerate() {
        let t = Instant::now();
        Arc::get_mut(&mut s)
            .expect("sole owner")
            .apply(e, i as u64 + 2)
            .expect("apply");
        st_apply.push(t.elapsed().as_secs_f64());
    }
    let st_cpu = cpu_s() - cpu2;
    let st_wall = st_wall.elapsed().as_secs_f64();
    let t = Instant::now();
    let st_page = {
        let eng = Engine::from_source(s.clone());
        let rows = eng.run(&q).expect("query");
        eng.page(&rows, Paging::page(1, 50).expect("paging"), None)
            .expect("page")
            .data
    };
    let st_next = t.elapsed().as_secs_f64();
    {
        let ov = Arc::try_unwrap(s).expect("sole owner").into_inner();
        let fresh = Engine::new(OverlaySource::with_base(ov, base.clone()));
        let rows = fresh.run(&q).expect("query");
        let p = fresh
            .page(&rows, Paging::page(1, 50).expect("paging"), None)
            .expect("page");
        assert_eq!(p.data, st_page, "stream page differs");
    }
    // The goal's stream: each event applied to one live source, then
    // the rows of the next sorted page (`Engine::run_page` on a new
    // engine: a one-key sort over a source that keeps its merged order
    // reads only the page's rows) and the page as JSON text
    // (`Engine::page_json`, what a server sends); CPU time per event
    // amortised over the stream, and of each phase (the calling thread's
    // CPU clock, summed). The last page equals a fresh source's.
    let mut s = Arc::new(OverlaySource::with_base(
        Overlay::new(snap.clone(), "id").expect("overlay"),
        base.clone(),
    ));
    Arc::get_mut(&mut s)
        .expect("sole owner")
        .apply(&evs[0], 1)
        .expect("apply");
    Engine::from_source(s.clone())
        .run_page(&q, page1)
        .expect("page");
    let mut sp_each = Vec::with_capacity(stream_n);
    let mut sp_phase = [0.0f64; 3];
    let sp_wall = Instant::now();
    let cpu3 = cpu_s();
    let mut sp_last = Vec::new();
    let mut json = Vec::new();
    for (i, e) in evs[1..=stream_n].iter().enumerate() {
        let (t, c0) = (Instant::now(), thread_cpu());
        Arc::get_mut(&mut s)
            .expect("sole owner")
            .apply(e, i as u64 + 2)
            .expect("apply");
        let c1 = thread_cpu();
        let eng = Engine::from_source(s.clone());
        let (rows, total) = eng.run_page(&q, page1).expect("page");
        let c2 = thread_cpu();
        json.clear();
        let first = Paging::new(0, rows.len().max(1)).expect("paging");
        eng.page_json(&rows, first, None, false, &mut json)
            .expect("page");
        let c3 = thread_cpu();
        sp_each.push(t.elapsed().as_secs_f64());
        for (k, d) in [c1 - c0, c2 - c1, c3 - c2].into_iter().enumerate() {
            sp_phase[k] += d;
        }
        assert_eq!((rows.len(), total), (50, s.rows()));
        sp_last = rows;
    }
    let sp_cpu = cpu_s() - cpu3;
    let sp_wall = sp_wall.elapsed().as_secs_f64();
    {
        let ov = Arc::try_unwrap(s).expect("sole owner").into_inner();
        let fresh = Engine::new(OverlaySource::with_base(ov, base.clone()));
        let rows = fresh.run(&q).expect("query");
        assert_eq!(rows[..50], sp_last[..], "stream page differs");
    }
    sp_each.sort_by(f64::total_cmp);
    pg_page.sort_by(f64::total_cmp);
    st_apply.sort_by(f64::total_cmp);
    inc_apply.sort_by(f64::total_cmp);
    inc_page.sort_by(f64::total_cmp);
    apply_one.sort_by(f64::total_cmp);
    next_page.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];

    print_table(n, total, view, &table);
    println!(
        "| apply 10,000 events (fresh overlay) | | {} | | {:.1} us/event |",
        ms(apply_all),
        apply_all / total as f64 * 1e6
    );
    println!(
        "| apply one live event (median of {live}) | | {:.1} us | | max {:.1} us |",
        median(&apply_one) * 1e6,
        apply_one.last().copied().unwrap_or(0.0) * 1e6
    );
    println!(
        "| live event -> next sorted page (new source + engine + sort + page, median) | | {} | | |",
        ms(median(&next_page))
    );
    println!(
        "| .. CPU time per event (user + sys, {live} events) | | {} | | |",
        ms(old_cpu / live as f64)
    );
    for (k, name) in ["new source", "engine (field types)", "sort", "page"]
        .iter()
        .enumerate()
    {
        let mut v: Vec<f64> = phases.iter().map(|p| p[k]).collect();
        v.sort_by(f64::total_cmp);
        println!("| .. of which {name} (median) | | {} | | |", ms(median(&v)));
    }
    println!(
        "| incremental: apply one live event to the source (median of {live}) | | {} | | max {} |",
        ms(median(&inc_apply)),
        ms(inc_apply.last().copied().unwrap_or(0.0))
    );
    println!(
        "| incremental: live event -> next sorted page (apply + engine + sort + page, median) | | {} | | max {} |",
        ms(median(&inc_page)),
        ms(inc_page.last().copied().unwrap_or(0.0))
    );
    println!(
        "| incremental: stream of {live} events, each followed by its sorted page (amortised) | | {} | | first sort {} |",
        ms(inc_stream / live as f64),
        ms(inc_first)
    );
    println!(
        "| incremental: CPU time per event (user + sys, apply + engine + sort + page) | | {} | | |",
        ms(inc_cpu / live as f64)
    );
    println!(
        "| incremental, page asked as a page (Engine::query_page): CPU time per event (apply + engine + sorted page, {live} events) | | {} | | median wall {} |",
        ms(pg_cpu / live as f64),
        ms(median(&pg_page))
    );
    println!(
        "| stream: apply {stream_n} events one by one to a live source, CPU time per event (user + sys) | | {} | | wall {} per event |",
        ms(st_cpu / stream_n.max(1) as f64),
        ms(st_wall / stream_n.max(1) as f64)
    );
    println!(
        "| stream: apply one event (wall, median / p99 / max) | | {} | | {} / {} |",
        ms(median(&st_apply)),
        ms(st_apply[st_apply.len() * 99 / 100]),
        ms(st_apply.last().copied().unwrap_or(0.0))
    );
    println!(
        "| stream: then the next sorted page (engine + sort + page) | | {} | | |",
        ms(st_next)
    );
    println!(
        "| stream: apply {stream_n} events, each followed by its sorted page (rows + JSON text), CPU time per event (user + sys) | | {} | | wall {} per event |",
        ms(sp_cpu / stream_n.max(1) as f64),
        ms(sp_wall / stream_n.max(1) as f64)
    );
    println!(
        "| stream: apply one event + sorted page (wall, median / p99 / max) | | {} | | {} / {} |",
        ms(median(&sp_each)),
        ms(sp_each[sp_each.len() * 99 / 100]),
        ms(sp_each.last().copied().unwrap_or(0.0))
    );
    for (k, name) in [
        "apply",
        "rows of the page (Engine::run_page)",
        "page as JSON text (Engine::page_json, 50 rows)",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "| .. of which {name}, CPU per event (thread) | | {} | | |",
            ms(sp_phase[k] / stream_n.max(1) as f64)
        );
    }
    println!(
        "| clone the overlay (a server POST's copy) | | {} | | |",
        ms(clone_ov)
    );
    print_open(&open_src, fields, &open_fields);
}

/// The cost of opening the overlay source over a fresh base (CPU; wall).
fn print_open(src: &Cost, fields: usize, types: &Cost) {
    println!(
        "| open: source over the view (fresh base) | | {:.2}; {:.2} ms | | |",
        src.cpu * 1e3,
        src.wall * 1e3
    );
    println!(
        "| open: {fields} field types (fresh base) | | {:.2}; {:.2} ms | | |",
        types.cpu * 1e3,
        types.wall * 1e3
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
