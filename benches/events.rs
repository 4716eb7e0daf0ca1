//! Events overlay benchmark: apply 10,000 events to a snapshot of generated
//! issues, then sort by a string column with the query engine over the
//! overlay (`OverlaySource`), compared in the same run with the engine over
//! the snapshot alone (`SnapshotSource`).
//!
//! `COLSNAP_BENCH_ROWS` sets the number of issues (default 1,000,000).

use colsnap::events::{Event, EventOp as Op, Overlay, OverlaySource};
use colsnap::query::{Engine, RowSource, SnapshotSource, SortKey};
use colsnap::{BuildOptions, Snapshot};
use colsnap_testdata::{GenOptions, issues};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

fn rows() -> usize {
    std::env::var("COLSNAP_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn snapshot(n: usize) -> Snapshot {
    let opts = GenOptions {
        count: n,
        ..Default::default()
    };
    let mut out = Vec::new();
    // zstd level 3: the data set is built once per run, and the level does not
    // change what is measured (event application and sorting never touch
    // compressed bytes except to decode a string chunk).
    let build_opts = BuildOptions {
        compress: colsnap::CompressOptions {
            level: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    colsnap::write::build_with(&mut out, &build_opts, |b| {
        for v in issues(&opts) {
            colsnap::write::push_value(b, &v)?;
        }
        Ok(())
    })
    .expect("build");
    Snapshot::from_bytes(out).expect("open")
}

/// 10,000 events: 70% title/state updates bringing new strings, 20%
/// creates, 10% deletes, with consecutive sequence numbers.
fn events(snap: &Snapshot) -> Vec<Event> {
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
    let mut out = Vec::with_capacity(10_000);
    let mut deleted = std::collections::HashSet::new();
    for seq in 0..10_000u64 {
        let r = next();
        let op = match r % 10 {
            0..=6 => {
                let mut i = (next() % n as u64) as usize;
                while deleted.contains(&i) {
                    i = (i + 1) % n;
                }
                let title = format!("Event {seq}: crash when {} opens", next() % 1000);
                out.push(Event {
                    seq,
                    key: key(i),
                    op: Op::Update {
                        set: vec![
                            (vec!["title".into()], Value::from(title)),
                            (vec!["state".into()], Value::from("closed")),
                        ],
                        remove: vec![],
                    },
                });
                continue;
            }
            7 | 8 => {
                let id = 10_000_000_000u64 + seq;
                let row = json!({"id": id, "title": format!("New issue {seq}"), "state": "open"});
                Op::Create {
                    row: row.as_object().cloned().unwrap_or_default(),
                    at: None,
                }
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
                continue;
            }
        };
        let id = 10_000_000_000u64 + seq;
        out.push(Event {
            seq,
            key: json!(id),
            op,
        });
    }
    out
}

fn apply(snap: &Snapshot, evs: &[Event]) -> Overlay {
    let mut o = Overlay::new(snap.clone(), "id").expect("overlay");
    for (i, e) in evs.iter().enumerate() {
        o.apply(e, i as u64 + 1).expect("apply");
    }
    o
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let t = Instant::now();
    let snap = snapshot(n);
    eprintln!(
        "built {n} generated issues in {:.1}s ({} bytes)",
        t.elapsed().as_secs_f64(),
        snap.file_len()
    );
    let evs = events(&snap);
    let mut g = c.benchmark_group(format!("events_{n}_rows"));
    g.sample_size(10);
    g.bench_function("apply_10k_events", |b| {
        b.iter_batched(|| (), |_| apply(&snap, &evs).len(), BatchSize::PerIteration)
    });
    // Sorting goes through the query engine: over the snapshot alone
    // (SnapshotSource) and over the snapshot with the overlay in place
    // (OverlaySource). A fresh engine each time, so the column is loaded
    // (and, for the overlay, its dense key space built) every iteration.
    let plain: Arc<dyn RowSource> = Arc::new(SnapshotSource::new(snap.clone()));
    let t = Instant::now();
    let over: Arc<dyn RowSource> = Arc::new(OverlaySource::new(apply(&snap, &evs)));
    {
        let t2 = Instant::now();
        let f = over.fields().len();
        let s = t2.elapsed().as_secs_f64();
        eprintln!(
            "overlay source: {f} fields typed in {s:.3}s (once per source; {:.3}s with apply)",
            t.elapsed().as_secs_f64()
        );
    }
    let sort = |src: &Arc<dyn RowSource>| {
        let e = Engine::from_source(src.clone());
        let rows: Vec<u32> = (0..src.rows() as u32).collect();
        e.sort(
            rows,
            &[SortKey {
                path: "title".into(),
                desc: false,
            }],
        )
        .expect("sort")
        .len()
    };
    g.bench_function("sort_title_snapshot_alone", |b| b.iter(|| sort(&plain)));
    g.bench_function("sort_title_with_overlay", |b| b.iter(|| sort(&over)));
    g.finish();
    // The ratio, measured here too (best of 5 each).
    let best = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let a = best(&mut || {
        sort(&plain);
    });
    let b = best(&mut || {
        sort(&over);
    });
    let t = Instant::now();
    let o = apply(&snap, &evs);
    let applied = t.elapsed().as_secs_f64();
    eprintln!(
        "rows {n}: apply 10,000 events {applied:.3}s ({} rows after, {} overridden); engine sort by title (load + sort): snapshot alone {a:.3}s, with overlay {b:.3}s, ratio {:.2}x",
        o.len(),
        o.overridden(),
        b / a
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
