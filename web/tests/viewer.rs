//! The browser core, natively: a snapshot read only through the ranges the
//! viewer asks for answers like the whole file.

use bytes::Bytes;
use colsnap::query::{Engine, Paging, SnapshotSource};
use colsnap_web::{QuerySpec, RangeStore, Viewer, store_of};
use std::sync::Arc;

fn snapshot(count: usize) -> Bytes {
    let opts = colsnap_testdata::GenOptions {
        count,
        ..Default::default()
    };
    let mut nd = Vec::new();
    colsnap_testdata::write_ndjson(&opts, &mut nd).unwrap();
    Bytes::from(colsnap::build_to_vec(&nd[..], &Default::default()).unwrap())
}

/// Fetches what the store misses from `file`, counting rounds and bytes.
struct Net {
    file: Bytes,
    rounds: usize,
    bytes: usize,
}

impl Net {
    fn new(file: &Bytes) -> Net {
        Net {
            file: file.clone(),
            rounds: 0,
            bytes: 0,
        }
    }

    fn fetch(&mut self, store: &RangeStore, ranges: &[std::ops::Range<u64>]) {
        if ranges.is_empty() {
            return;
        }
        self.rounds += 1;
        for r in ranges {
            self.bytes += (r.end - r.start) as usize;
            store.insert(r.start, self.file.slice(r.start as usize..r.end as usize));
        }
    }

    /// Run `op` until it stops missing bytes (the JavaScript loop).
    fn run<T>(&mut self, store: &RangeStore, mut op: impl FnMut() -> colsnap::Result<T>) -> T {
        for _ in 0..200 {
            match op() {
                Ok(v) => return v,
                Err(e) => {
                    let miss = store.take_missing();
                    assert!(!miss.is_empty(), "failed without a miss: {e}");
                    self.fetch(store, &miss);
                }
            }
        }
        panic!("no progress after 200 rounds");
    }
}

fn open_remote(file: &Bytes, net: &mut Net) -> Viewer {
    let len = file.len() as u64;
    let store = Arc::new(RangeStore::new(len));
    let tail = len.saturating_sub(colsnap_web::TAIL_BYTES);
    net.fetch(&store, &[0..len.min(1024), tail..len]);
    net.run(&store.clone(), || Viewer::open(store.clone()))
}

#[test]
fn opens_on_a_published_tail_without_reading_before_it() {
    // A published snapshot's manifest holds the header and the footer with
    // the trailer (SPEC.md 15.2), no more: the viewer opens on them alone.
    let file = snapshot(3000);
    let full = colsnap::Snapshot::from_bytes(file.clone()).unwrap();
    let footer_at = full.footer_offset();
    let len = file.len() as u64;
    assert!(len - footer_at < colsnap_web::TAIL_BYTES && footer_at > colsnap_web::TAIL_BYTES);
    let mut net = Net::new(&file);
    let store = Arc::new(RangeStore::new(len));
    net.fetch(&store, &[0..16, footer_at..len]);
    let v = net.run(&store.clone(), || Viewer::open(store.clone()));
    assert_eq!(v.rows(), 3000);
    assert_eq!(
        (net.rounds, net.bytes as u64),
        (1, 16 + len - footer_at),
        "opened on the head and the footer alone"
    );
}

#[test]
fn ranged_reads_answer_like_the_whole_file() {
    let file = snapshot(3000);
    let mut net = Net::new(&file);
    let mut v = open_remote(&file, &mut net);
    let store = v.store().clone();
    let full = Engine::new(SnapshotSource::new(
        colsnap::Snapshot::from_bytes(file.clone()).unwrap(),
    ));
    assert_eq!(v.rows(), 3000);

    let spec = QuerySpec::from_json(
        r#"{"sort": "title,-number", "where": ["state=open"], "search": "a", "in": ["title"]}"#,
    )
    .unwrap();
    let ahead = v.plan_query(&spec).unwrap();
    net.fetch(&store, &ahead);
    for f in ["title", "number", "state"] {
        net.run(&store, || v.column(f).map(|_| ()));
    }
    let s = v.plan_search(&["title".to_string()]);
    net.fetch(&store, &s);
    let total = net.run(&store, || v.query(&spec));
    let expect = full.run(&spec.to_query().unwrap()).unwrap();
    assert_eq!(total, expect.len());
    assert_eq!(v.result(), &expect[..]);
    assert!(total > 0 && total < 3000);

    // The first page's rows, as the grid asks for them.
    let fields: Vec<String> = ["number", "title", "state", "user.login", "labels[].name"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let page: Vec<u32> = v.result()[..40.min(total)].to_vec();
    for f in &fields {
        net.run(&store, || v.column(f).map(|_| ()));
    }
    let ahead = v.plan_rows(&page, &fields);
    net.fetch(&store, &ahead);
    let before = net.rounds;
    let got = net.run(&store, || v.rows_json(&page, Some(&fields)));
    assert_eq!(
        net.rounds, before,
        "the plan fetched every string the rows needed"
    );
    let want = full
        .page(&expect, Paging::new(0, 40).unwrap(), Some(&fields))
        .unwrap()
        .data;
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got, serde_json::Value::Array(want));

    // The same rows as cells keyed by display path, written from the
    // loaded columns: nothing fetched beyond the plan.
    let held = store.held_bytes();
    let before = net.rounds;
    let cells = net.run(&store, || v.cells_json(&page, &fields));
    assert_eq!(
        net.rounds, before,
        "cells need nothing the plan did not fetch"
    );
    assert_eq!(store.held_bytes(), held);
    let cells: serde_json::Value = serde_json::from_str(&cells).unwrap();
    let want_rows = got.as_array().unwrap();
    assert_eq!(cells.as_array().unwrap().len(), want_rows.len());
    for (c, w) in cells.as_array().unwrap().iter().zip(want_rows) {
        assert_eq!(c["number"], w["number"]);
        assert_eq!(c["title"], w["title"]);
        assert_eq!(c.get("state"), w.get("state"));
        assert_eq!(c.get("user.login"), w["user"].get("login"));
        let names: Vec<serde_json::Value> = w["labels"]
            .as_array()
            .map(|a| a.iter().map(|l| l["name"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(c["labels[].name"], serde_json::Value::Array(names));
    }

    // Far less than the file was read.
    assert!(
        net.bytes < file.len() * 3 / 4,
        "{} of {} bytes",
        net.bytes,
        file.len()
    );

    // Strings by id, only their chunks.
    let c = v.column("title").unwrap();
    let colsnap::query::Values::Str(ids) = &c.values else {
        panic!("title is a string column")
    };
    let some = vec![ids[0], ids[2999]];
    let ahead = v.plan_strings("title", &some);
    net.fetch(&store, &ahead);
    let s = v.strings("title", &some).unwrap();
    let titles: Vec<String> = serde_json::from_str(&s).unwrap();
    let row0 = full
        .page(
            &[0, 2999],
            Paging::new(0, 2).unwrap(),
            Some(&["title".into()]),
        )
        .unwrap();
    assert_eq!(titles[0], row0.data[0]["title"]);
    assert_eq!(titles[1], row0.data[1]["title"]);
}

#[test]
fn events_change_the_view_and_retry_safely() {
    let file = snapshot(500);
    let mut net = Net::new(&file);
    let mut v = open_remote(&file, &mut net);
    let store = v.store().clone();
    let id0 = net.run(&store, || v.rows_json(&[0], Some(&["id".to_string()])));
    let id0: serde_json::Value = serde_json::from_str(&id0).unwrap();
    let id = id0[0]["id"].clone();
    let ev = format!(
        r#"{{"seq": 1, "op": "update", "key": {id}, "set": {{"title": "Edited in the browser"}}}}"#
    );
    let n = net.run(&store, || v.apply_events(&ev));
    assert_eq!(n, 1);
    let spec = QuerySpec::from_json(r#"{"where": ["title=Edited in the browser"]}"#).unwrap();
    let total = net.run(&store, || v.query(&spec));
    assert_eq!(total, 1);
    let row = net.run(&store, || {
        v.rows_json(v.result(), Some(&["id".into(), "title".into()]))
    });
    let row: serde_json::Value = serde_json::from_str(&row).unwrap();
    assert_eq!(row[0]["id"], id);
    assert_eq!(row[0]["title"], "Edited in the browser");

    // With events, cells come from the row writer (nested objects).
    let cells = net.run(&store, || v.cells_json(&[0], &["title".into()]));
    let cells: serde_json::Value = serde_json::from_str(&cells).unwrap();
    assert!(cells[0]["title"].is_string());

    // A memory store answers at once.
    let w = Viewer::open(store_of(file)).unwrap();
    assert_eq!(w.rows(), 500);
}

#[test]
fn cells_of_timestamps_are_utc_text_and_released_bytes_come_back() {
    assert_eq!(colsnap_web::utc_text(0, 0), "1970-01-01T00:00:00Z");
    assert_eq!(
        colsnap_web::utc_text(951_782_400, 0),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(colsnap_web::utc_text(-1, 0), "1969-12-31T23:59:59Z");
    assert_eq!(
        colsnap_web::utc_text(1_714_564_800, 500_000_000),
        "2024-05-01T12:00:00.5Z"
    );
    assert_eq!(
        colsnap_web::utc_text(4_102_444_799, 0),
        "2099-12-31T23:59:59Z"
    );

    let file = snapshot(800);
    let mut net = Net::new(&file);
    let v = open_remote(&file, &mut net);
    let store = v.store().clone();
    let fields = vec!["created_at".to_string(), "comments".to_string()];
    let plan = v.plan_columns(&fields);
    net.fetch(&store, &plan);
    for f in &fields {
        net.run(&store, || v.column(f).map(|_| ()));
    }
    // Decoded: every fetched byte can go; the cells of these (string-free)
    // columns still answer without a fetch.
    let held = store.held_bytes();
    assert_eq!(
        store.release(std::slice::from_ref(&(0..file.len() as u64))),
        held
    );
    assert_eq!(store.held_bytes(), 0);
    let rows: Vec<u32> = (0..800).step_by(37).collect();
    let before = net.rounds;
    let cells = net.run(&store, || v.cells_json(&rows, &fields));
    assert_eq!(net.rounds, before);
    let cells: serde_json::Value = serde_json::from_str(&cells).unwrap();
    let want = net.run(&store, || v.rows_json(&rows, Some(&fields)));
    let want: serde_json::Value = serde_json::from_str(&want).unwrap();
    for (c, w) in cells
        .as_array()
        .unwrap()
        .iter()
        .zip(want.as_array().unwrap())
    {
        assert_eq!(c.get("comments"), w.get("comments"));
        // The generator writes UTC seconds, as the cells do.
        assert_eq!(c.get("created_at"), w.get("created_at"));
    }
}

/// Rows past the end and `strings` of a column that holds no strings are
/// errors, not a panic (in the browser a panic is a trap that leaves the
/// module unusable: every later call failed).
#[test]
fn rows_past_the_end_and_strings_of_other_columns_are_errors() {
    let file = snapshot(300);
    let mut net = Net::new(&file);
    let v = open_remote(&file, &mut net);
    let store = v.store().clone();
    let fields: Vec<String> = ["title", "labels[].name", "number"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for f in &fields {
        net.run(&store, || v.column(f).map(|_| ()));
    }
    for rows in [vec![300u32], vec![0, u32::MAX], vec![299, 300, 301]] {
        let ahead = v.plan_rows(&rows, &fields);
        net.fetch(&store, &ahead);
        let e = v.rows_json(&rows, Some(&fields)).unwrap_err().to_string();
        assert!(e.contains("not found"), "{rows:?}: {e}");
    }
    // The viewer still answers.
    let ok = net.run(&store, || v.rows_json(&[299], Some(&fields)));
    assert!(ok.contains("title"), "{ok}");
    // What JSON.stringify writes for a lone surrogate.
    for text in [r#"{"search": "a\ud800b"}"#, r#"{"search": "a\ud800"}"#] {
        let e = QuerySpec::from_json(text).err().unwrap().to_string();
        assert!(e.contains("lone UTF-16 surrogate"), "{e}");
    }
    let e = v.strings("number", &[0]).unwrap_err().to_string();
    assert!(e.contains("not a string column"), "{e}");
    assert!(v.strings("labels[].name", &[0]).is_ok());
}
