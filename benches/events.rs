//! Events overlay benchmark: 10,000 events applied to a snapshot of generated
//! issues, then the query engine over the overlay (`OverlaySource`) against
//! the engine over the snapshot alone (`SnapshotSource`), in the same run:
//! sort by a string (`title`), a timestamp (`created_at`) and a list column
//! (`labels[].name`), a filter (`state = open`), a page (50 rows of the
//! title order); the cost of applying events (the 10,000, and one at a time
//! on a live view, followed by the next sorted page: once with a new source
//! per event, once with `OverlaySource::apply` on one live source, which
//! carries its typed sort delta, merged order and field types and re-types
//! only the changed row; wall time and CPU time per event); the cost of
//! copying the overlay (a server POST's copy); the cost of opening the
//! overlay source (no column read).
//!
//! ```text
//! cargo bench -p colsnap-bench --bench events                       # 1,000,000 rows
//! COLSNAP_BENCH_ROWS=200000 cargo bench -p colsnap-bench --bench events
//! COLSNAP_BENCH_RUNS=2 cargo bench -p colsnap-bench --bench events  # best of 2, 40 live events
//! ```
//!
//! The snapshot is built once per size and cached under
//! `target/bench-data/issues-seed42-N.colsnap` (the query bench's file; a
//! 1M-row build takes minutes).
//!
//! Every engine timing uses a fresh engine, so each query loads its columns:
//! over the snapshot alone that is a decode; over the overlay it is the
//! base column (decoded once per snapshot, kept by the base engine that
//! every overlay source of a live view shares) plus the delta. One-key
//! sorts over the overlay merge the source's typed delta (typed on the
//! source's first sort by the column, kept by the source) into the base
//! engine's cached order, so its best-of timings are the merge. "first" is
//! the overlay with a fresh base (decode, base order and typing included);
//! the live row (a new source per event) includes typing the delta and the
//! field types again.

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

/// Best of `k` runs (at most [`runs`]), in seconds.
fn best(k: usize, mut f: impl FnMut()) -> f64 {
    (0..k.min(runs()))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// CPU seconds (user + system) of this process so far, from
/// `/proc/self/stat` (clock ticks of 10 ms; 0 where unreadable): the live
/// loops report CPU time per event, steadier than wall time on a loaded
/// machine.
fn cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): state is the
    // 1st, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
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
    let snap = Snapshot::open(&path).expect("open");
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
    // (field types from kind counts plus the delta).
    let base = Engine::new(SnapshotSource::new(snap.clone()));
    let t = Instant::now();
    let src = Arc::new(OverlaySource::with_base(ov, base.clone()));
    let open_src = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fields = src.fields().len();
    let open_fields = t.elapsed().as_secs_f64();

    let plain: Arc<dyn RowSource> = Arc::new(SnapshotSource::new(snap.clone()));
    let over: Arc<dyn RowSource> = src.clone();
    let run = |s: &Arc<dyn RowSource>, q: &Query| {
        let e = Engine::from_source(s.clone());
        e.run(q).expect("query").len()
    };
    let filter = Query {
        filters: vec![parse_where("state=open").expect("filter")],
        ..Default::default()
    };
    let cases: Vec<(&str, Query)> = vec![
        ("sort title (string)", sort_query("title")),
        ("sort created_at (timestamp)", sort_query("created_at")),
        ("sort labels[].name (list)", sort_query("labels[].name")),
        ("filter state=open", filter),
    ];
    let mut table = Vec::new();
    for (name, q) in &cases {
        // The overlay's first query of a column decodes its base column.
        let t = Instant::now();
        run(&over, q);
        let first = t.elapsed().as_secs_f64();
        let a = best(5, || {
            run(&plain, q);
        });
        let b = best(5, || {
            run(&over, q);
        });
        table.push((name.to_string(), a, b, first));
    }
    // A page: 50 rows of the title order as JSON (the sort done before).
    {
        let q = sort_query("title");
        let page = |s: &Arc<dyn RowSource>| {
            let e = Engine::from_source(s.clone());
            let rows = e.run(&q).expect("query");
            best(5, || {
                let mut out = Vec::new();
                e.page_json(
                    &rows,
                    Paging::page(3, 50).expect("paging"),
                    None,
                    false,
                    &mut out,
                )
                .expect("page");
            })
        };
        let (a, b) = (page(&plain), page(&over));
        table.push(("page 3 of 50 rows, by title".into(), a, b, f64::NAN));
    }

    // Live: one more event, a new source over the same base, the next
    // sorted page (title order) reflecting it.
    drop(over);
    let mut ov = Arc::try_unwrap(src).expect("sole owner").into_inner();
    // A copy of the overlay (what a server POST applies its events to).
    let t = Instant::now();
    let ov_copy = ov.clone();
    let clone_ov = t.elapsed().as_secs_f64();
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
    let mut last_page = None;
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
        last_page = Some(p.data);
    }
    let inc_stream = stream.elapsed().as_secs_f64();
    let inc_cpu = cpu_s() - cpu1;
    {
        // Both ways end on the same page.
        let fresh = Engine::new(OverlaySource::with_base(ov.clone(), base.clone()));
        let rows = fresh.run(&q).expect("query");
        let p = fresh
            .page(&rows, Paging::page(1, 50).expect("paging"), None)
            .expect("page");
        assert_eq!(Some(p.data), last_page, "incremental page differs");
    }
    inc_apply.sort_by(f64::total_cmp);
    inc_page.sort_by(f64::total_cmp);
    apply_one.sort_by(f64::total_cmp);
    next_page.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];

    println!();
    println!(
        "events bench, {n} rows, {total} events ({} rows after, {} held as JSON)",
        ov.len(),
        ov.overridden()
    );
    println!("| case | snapshot alone | overlay | ratio | overlay, first query (fresh base) |");
    println!("|---|---|---|---|---|");
    for (name, a, b, first) in &table {
        let first = if first.is_nan() {
            "-".into()
        } else {
            ms(*first)
        };
        println!(
            "| {name} | {} | {} | {:.2}x | {first} |",
            ms(*a),
            ms(*b),
            b / a
        );
    }
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
        "| clone the overlay (a server POST's copy) | | {} | | |",
        ms(clone_ov)
    );
    println!("| open: source over the view | | {} | | |", ms(open_src));
    println!("| open: {fields} field types | | {} | | |", ms(open_fields));
}

criterion_group!(benches, bench);
criterion_main!(benches);
