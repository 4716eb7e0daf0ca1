//! Query engine benchmarks on generated issues (default 1,000,000 rows;
//! `COLSNAP_BENCH_ROWS` scales it). Each engine case is paired with the
//! naive way (decode the strings, then sort/filter/search them); the ratio
//! is printed after the run.
//!
//! `cargo bench -p colsnap-bench --bench query` (the snapshot is cached under target/).

use colsnap::Snapshot;
use colsnap::query::{Engine, Paging, Search, SnapshotSource, SortKey, parse::parse_where};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};

fn rows() -> usize {
    std::env::var("COLSNAP_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn label(n: usize) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Decode every string of a string column (the naive way's first step).
fn decode_strings(snap: &Snapshot, path: &str) -> Vec<Option<String>> {
    let d = snap.column(path).unwrap();
    let t = snap.table_of(d.node()).unwrap();
    (0..d.len())
        .map(|i| d.str_id(i).map(|id| t.get(id).unwrap()))
        .collect()
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let l = label(n);
    let snap = Snapshot::open(colsnap_bench::snapshot_path(n)).unwrap();
    let engine = Engine::new(SnapshotSource::new(snap.clone()));
    let all: Vec<u32> = (0..n as u32).collect();
    let by = |p: &str, desc| {
        vec![SortKey {
            path: p.into(),
            desc,
        }]
    };
    for p in ["user.login", "title", "updated_at"] {
        engine.column(p).unwrap();
    }
    let prefix = parse_where("title^=Crash").unwrap();
    let search = Search {
        text: "crash".into(),
        fields: vec!["title".into()],
    };
    let mut ratios = Vec::new();
    let mut g = c.benchmark_group("query");
    g.sample_size(10).measurement_time(Duration::from_secs(5));

    g.bench_function(format!("sort_string/{l}"), |b| {
        b.iter(|| engine.sort(all.clone(), &by("user.login", false)).unwrap())
    });
    g.bench_function(format!("sort_timestamp/{l}"), |b| {
        b.iter(|| engine.sort(all.clone(), &by("updated_at", true)).unwrap())
    });
    g.bench_function(format!("filter_prefix/{l}"), |b| {
        b.iter(|| {
            engine
                .filter(std::slice::from_ref(&prefix))
                .unwrap()
                .count()
        })
    });
    g.bench_function(format!("search/{l}"), |b| {
        b.iter(|| engine.search(&search).unwrap().count())
    });
    let sorted = engine.sort(all.clone(), &by("updated_at", true)).unwrap();
    let p = Paging::page(3, 50).unwrap();
    engine.page(&sorted, p, None).unwrap();
    g.bench_function(format!("page50_values/{l}"), |b| {
        b.iter(|| engine.page(&sorted, p, None).unwrap().data.len())
    });
    g.bench_function(format!("page50/{l}"), |b| {
        b.iter(|| {
            let mut out = Vec::new();
            engine.page_json(&sorted, p, None, false, &mut out).unwrap();
            out.len()
        })
    });
    g.finish();

    // Engine vs naive, timed once each (chunk caches cleared first).
    snap.clear_string_cache();
    let (_, t_eng) = time(|| engine.sort(all.clone(), &by("user.login", false)).unwrap());
    let (_, t_naive) = time(|| {
        let s = decode_strings(&snap, "user.login");
        let mut idx = all.clone();
        idx.sort_by(|&a, &b| match (&s[a as usize], &s[b as usize]) {
            (Some(x), Some(y)) => x.cmp(y),
            (x, y) => y.is_some().cmp(&x.is_some()),
        });
        idx
    });
    ratios.push(("sort_string user.login", t_eng, t_naive));
    snap.clear_string_cache();
    let (cnt, t_eng) = time(|| {
        engine
            .filter(std::slice::from_ref(&prefix))
            .unwrap()
            .count()
    });
    let (cnt2, t_naive) = time(|| {
        decode_strings(&snap, "title")
            .iter()
            .filter(|s| s.as_deref().is_some_and(|s| s.starts_with("Crash")))
            .count()
    });
    assert_eq!(cnt, cnt2);
    ratios.push(("filter_prefix title^=Crash", t_eng, t_naive));
    snap.clear_string_cache();
    let (cnt, t_eng) = time(|| engine.search(&search).unwrap().count());
    snap.clear_string_cache();
    let (cnt2, t_naive) = time(|| {
        decode_strings(&snap, "title")
            .iter()
            .filter(|s| {
                s.as_deref()
                    .is_some_and(|s| s.to_lowercase().contains("crash"))
            })
            .count()
    });
    assert_eq!(cnt, cnt2);
    ratios.push(("search title ~ crash", t_eng, t_naive));
    snap.clear_string_cache();
    let page_json = || {
        let mut out = Vec::new();
        engine.page_json(&sorted, p, None, false, &mut out).unwrap();
        out
    };
    let (_, t_cold) = time(page_json);
    let (_, t_warm) = time(page_json);
    eprintln!("\nquery engine vs naive, {n} rows (single run each):");
    for (name, e, nv) in &ratios {
        eprintln!(
            "  {name:<28} engine {:>9.2?}  naive {:>9.2?}  naive/engine {:>7.1}x",
            e,
            nv,
            nv.as_secs_f64() / e.as_secs_f64()
        );
    }
    eprintln!("  page of 50 rows: cold chunks {t_cold:.2?}, cached {t_warm:.2?}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
