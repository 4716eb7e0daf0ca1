//! Writers for a few rows (`Snapshot::row_writer_for`: each column read at
//! the items under those rows, not decoded whole) write exactly what the
//! whole writer writes, for every conformance and golden file (every
//! encoding: mapped, parent-masked, dictionaries, arrays, timestamps, long
//! text), in any order, with repeats and field selections, and refuse rows
//! they were not made for.

mod common;

use colsnap::Snapshot;
use common::fixture;

fn files() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for dir in ["conformance", "conformance/v2", "golden"] {
        for e in std::fs::read_dir(fixture(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "colsnap") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 30, "conformance files missing: {v:?}");
    v
}

fn whole(snap: &Snapshot, fields: Option<&[String]>, rows: &[u64]) -> Vec<u8> {
    let mut w = snap.row_writer(fields).unwrap();
    let mut out = Vec::new();
    w.write_rows(rows, &mut out).unwrap();
    out
}

fn picked(snap: &Snapshot, fields: Option<&[String]>, made_for: &[u64], rows: &[u64]) -> Vec<u8> {
    let mut w = snap.row_writer_for(fields, made_for).unwrap();
    let mut out = Vec::new();
    w.write_rows(rows, &mut out).unwrap();
    out
}

/// Row sets of a snapshot of `n` rows: all, each one, every third
/// reversed, the first and last with repeats.
fn picks(n: u64) -> Vec<Vec<u64>> {
    let mut v = vec![(0..n).collect::<Vec<_>>()];
    v.extend((0..n.min(40)).map(|i| vec![i]));
    v.push((0..n).rev().step_by(3).collect());
    if n > 0 {
        v.push(vec![n - 1, 0, n - 1, n / 2, 0]);
    }
    v
}

/// The snapshot at `p` opened to decode a few rows on one thread and on
/// four (`OpenOptions::decode_threads`: each column and string chunk of a
/// page on a thread of its own).
fn on_threads(p: &std::path::Path) -> Vec<(usize, Snapshot)> {
    [1, 4]
        .into_iter()
        .map(|t| {
            let opts = colsnap::OpenOptions {
                decode_threads: t,
                ..Default::default()
            };
            (t, Snapshot::open_with(p, opts).unwrap())
        })
        .collect()
}

#[test]
fn picked_rows_are_the_whole_writers_rows() {
    let mut checked = 0;
    for p in files() {
        let snap = Snapshot::open(&p).unwrap();
        let n = snap.rows();
        let threaded = on_threads(&p);
        for rows in picks(n) {
            let want = whole(&snap, None, &rows);
            for (t, s) in &threaded {
                assert_eq!(
                    String::from_utf8_lossy(&picked(s, None, &rows, &rows)),
                    String::from_utf8_lossy(&want),
                    "{} rows {rows:?} on {t} threads",
                    p.display()
                );
            }
            checked += 1;
        }
        // One field at a time (and what is under it).
        let all: Vec<u64> = (0..n).rev().collect();
        for c in snap.columns() {
            let f = [c.path.clone()];
            let write = |mut w: colsnap::read::RowWriter| {
                let mut out = Vec::new();
                w.write_rows(&all, &mut out)
                    .map(|()| out)
                    .map_err(|e| e.to_string())
            };
            let want = write(snap.row_writer(Some(&f)).unwrap());
            for (t, s) in &threaded {
                assert_eq!(
                    write(s.row_writer_for(Some(&f), &all).unwrap()),
                    want,
                    "{} field {} on {t} threads",
                    p.display(),
                    c.path
                );
            }
        }
        // `Snapshot::row` (a writer for that row) and `rows_json`.
        for i in 0..n.min(20) {
            let v: serde_json::Value = serde_json::from_slice(&whole(&snap, None, &[i])).unwrap();
            assert_eq!(snap.row(i).unwrap(), v);
        }
    }
    assert!(checked > 100);
}

#[test]
fn rows_not_picked_are_refused() {
    let snap = Snapshot::open(fixture("golden/v2.colsnap")).unwrap();
    assert!(snap.rows() > 3);
    let mut w = snap.row_writer_for(None, &[1, 3]).unwrap();
    let mut out = Vec::new();
    w.write_rows(&[3, 1], &mut out).unwrap();
    let before = out.clone();
    let e = w.write_rows(&[1, 2], &mut out).unwrap_err();
    assert!(e.to_string().contains("row"), "{e}");
    assert_eq!(out, before, "a refused page leaves the output as it was");
    assert!(snap.row_writer_for(None, &[snap.rows()]).is_err());
}

/// Many rows with nested arrays of objects, sparse fields and mapped
/// streams (`url` from `id`): pages of any rows agree with the whole writer.
#[test]
fn pages_of_generated_rows_agree() {
    let rows: Vec<serde_json::Value> = (0..3000u64)
        .map(|i| {
            let mut o = serde_json::json!({
                "id": i * 7 % 2999,
                "url": format!("https://x.test/{}", i * 7 % 2999),
                "title": format!("t{}", i % 97),
                "created_at": format!("2024-0{}-1{}T0{}:00:00Z", 1 + i % 9, i % 10, i % 10),
                "labels": (0..i % 4).map(|j| serde_json::json!({"name": format!("l{j}"), "n": j})).collect::<Vec<_>>(),
                "score": (i as f64) / 8.0,
            });
            if i % 50 == 0 {
                o["rare"] = serde_json::json!({"deep": [i, null, "x", [true]]});
            }
            if i % 7 == 0 {
                o["title"] = serde_json::Value::Null;
            }
            o
        })
        .collect();
    let snap = common::snapshot_of(&rows, &Default::default());
    let mut x = 12345u64;
    for len in [1usize, 2, 50, 50, 200] {
        let page: Vec<u64> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % 3000
            })
            .collect();
        let want = whole(&snap, None, &page);
        assert_eq!(picked(&snap, None, &page, &page), want);
        let v: Vec<serde_json::Value> = page.iter().map(|&r| rows[r as usize].clone()).collect();
        assert_eq!(snap.rows_json(&page, None).unwrap(), v);
    }
}

/// Pages near the start of long columns decompress their sections only as
/// far as those rows need (`ReadStats::sections_in_part`), in every
/// encoding that allows it (varints, differences, fixed widths,
/// dictionaries, bit-packed and parent-masked kinds, array lengths, based
/// timestamps), and write exactly what the whole writer writes; rows far
/// down read whole sections, with the same result.
#[test]
fn first_pages_of_long_columns_read_sections_in_part() {
    let n = 40_000u64;
    let rows: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            let created = 1_600_000_000 + i * 3_600 + h % 600;
            let mut o = serde_json::json!({
                "number": i + 1,
                "id": h,
                "title": format!("issue {h:x} about {}", i % 311),
                "state": if h % 3 == 0 { "open" } else { "closed" },
                "created_at": format!("{}", ts(created)),
                "labels": (0..h % 3).map(|j| serde_json::json!({"name": format!("l{}", (h + j) % 17)})).collect::<Vec<_>>(),
                "score": (h % 1000) as f64 / 7.0,
                "comments": h % 40,
            });
            if h % 3 != 0 {
                o["closed_at"] = serde_json::json!(ts(created + 86_400 + h % 5_000));
            }
            if h % 5 == 0 {
                o["milestone"] = serde_json::json!({"title": format!("m{}", h % 9), "due": null});
            } else {
                o["milestone"] = serde_json::Value::Null;
            }
            o
        })
        .collect();
    fn ts(s: u64) -> String {
        let days = s / 86_400;
        let (y, d) = (1970 + days / 365, days % 365);
        let _ = y;
        let secs = s % 86_400;
        format!(
            "2021-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            1 + d % 12,
            1 + d % 28,
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
    let bytes = colsnap::build_to_vec(
        &serde_json::to_vec(&rows).unwrap()[..],
        &colsnap::BuildOptions::fast(),
    )
    .unwrap();
    let snap = Snapshot::from_bytes(bytes.clone()).unwrap();
    let pages: [Vec<u64>; 4] = [
        (0..50).collect(),
        (100..150).collect(),
        vec![3, 0, 41, 7, 41],
        (n - 50..n).collect(),
    ];
    for (k, page) in pages.iter().enumerate() {
        let want = whole(&snap, None, page);
        // Opened again: nothing decoded yet.
        let fresh = Snapshot::from_bytes(bytes.clone()).unwrap();
        assert_eq!(picked(&fresh, None, page, page), want, "page {k}");
        let in_part = fresh.stats().sections_in_part;
        if k < 3 {
            assert!(in_part >= 10, "page {k}: {in_part} sections read in part");
        } else {
            assert_eq!(in_part, 0, "the last rows need every section whole");
        }
        let v: Vec<serde_json::Value> = page.iter().map(|&r| rows[r as usize].clone()).collect();
        assert_eq!(snap.rows_json(page, None).unwrap(), v);
        let fields = vec!["milestone.title".to_string(), "closed_at".to_string()];
        assert_eq!(
            picked(&snap, Some(&fields), page, page),
            whole(&snap, Some(&fields), page)
        );
    }
}

/// A source's first pages come from writers for their rows (no column
/// decoded whole: `writer_bytes` stays 0); past a few pages the source
/// makes its template (every column decoded once) and later pages share
/// it. Every page is the whole writer's.
#[test]
fn a_sources_first_pages_are_picked_then_its_template_serves() {
    use colsnap::query::{Engine, Paging, SnapshotSource};
    let rows: Vec<serde_json::Value> = (0..500u64)
        .map(|i| serde_json::json!({"id": i, "t": format!("x{}", i % 13), "a": (0..i % 3).collect::<Vec<_>>()}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_snapshot(dir.path(), "s.colsnap", &rows);
    let snap = Snapshot::open(&path).unwrap();
    let src = std::sync::Arc::new(SnapshotSource::new(snap.clone()));
    let engine = Engine::from_source(src.clone());
    let all: Vec<u32> = (0..500).rev().collect();
    let mut templated = None;
    for page in 0..12 {
        let mut out = Vec::new();
        engine
            .page_json(
                &all,
                Paging::new(page * 20, 20).unwrap(),
                None,
                false,
                &mut out,
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let want: Vec<serde_json::Value> = all[page * 20..page * 20 + 20]
            .iter()
            .map(|&r| rows[r as usize].clone())
            .collect();
        assert_eq!(v["data"], serde_json::Value::Array(want), "page {page}");
        if src.writer_bytes() > 0 && templated.is_none() {
            templated = Some(page);
        }
    }
    assert_eq!(templated, Some(8), "eight picked pages, then the template");
}

/// `export` of a few rows of many (`ExportOptions::rows`, read at those
/// rows only) writes the lines of the whole export, as NDJSON and as an
/// array, with and without a field selection.
#[test]
fn an_export_of_a_few_rows_is_those_rows_of_the_whole_export() {
    let export = |snap: &Snapshot,
                  rows: Option<std::ops::Range<u64>>,
                  ndjson: bool,
                  columns: Option<Vec<String>>| {
        let mut out = Vec::new();
        let opts = colsnap::ExportOptions {
            ndjson,
            rows,
            columns,
            ..Default::default()
        };
        snap.export(&mut out, &opts).unwrap();
        out
    };
    let mut checked = 0;
    for p in files() {
        let snap = Snapshot::open(&p).unwrap();
        let n = snap.rows();
        let first = snap.columns().into_iter().next().map(|c| vec![c.path]);
        for columns in [None, first] {
            let all = export(&snap, None, true, columns.clone());
            let lines: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(lines.len() as u64, n, "{}", p.display());
            // Ranges of at most a quarter of the rows are the picked ones.
            for (a, b) in [
                (0, 1),
                (n / 2, n / 2 + 2),
                (n.saturating_sub(3), n),
                (1, 1 + n / 5),
            ] {
                let (a, b) = (a.min(n), b.min(n));
                let got = export(&snap, Some(a..b), true, columns.clone());
                assert_eq!(
                    got,
                    lines[a as usize..b as usize].concat(),
                    "{} rows {a}..{b}",
                    p.display()
                );
                let arr = export(&snap, Some(a..b), false, columns.clone());
                // "[", each row after a newline (a comma before all but
                // the first), "\n]\n" ("[]\n" for none).
                let rows: Vec<&[u8]> = lines[a as usize..b as usize]
                    .iter()
                    .map(|l| &l[..l.len() - 1])
                    .collect();
                let want = match rows.is_empty() {
                    true => b"[]\n".to_vec(),
                    false => [b"[\n".to_vec(), rows.join(&b",\n"[..]), b"\n]\n".to_vec()].concat(),
                };
                assert_eq!(
                    String::from_utf8_lossy(&arr),
                    String::from_utf8_lossy(&want),
                    "{} rows {a}..{b} as an array",
                    p.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 200, "{checked}");
}
