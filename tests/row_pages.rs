//! Pages of whole rows through a `RowWriter` (what `colsnap serve` and
//! `colsnap query` write): strings missing from the caches are read after
//! the rows, each chunk once and only as far as needed (long-text chunks
//! through a stream), and kept in the snapshot's string cache. Whatever the
//! caches hold, the rows are those of `Snapshot::row`.

mod common;

use colsnap::{BuildOptions, OpenOptions, Snapshot};
use serde_json::{Value, json};

/// Rows with short strings (unique per row and shared), a long body, and
/// nested values.
fn rows(n: usize) -> Vec<Value> {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"];
    (0..n)
        .map(|i| {
            let mut body = String::new();
            let mut x = i as u64 * 2654435761 + 1;
            while body.len() < 700 + i % 300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.push_str(words[(x % 7) as usize]);
                body.push(if x.is_multiple_of(11) { '\n' } else { ' ' });
            }
            json!({
                "id": i,
                "title": format!("issue {} {}", words[i % 7], i * 7919 % 1000),
                "url": format!("https://example.com/issues/{i}"),
                "body": if i % 13 == 0 { Value::Null } else { Value::String(body) },
                "user": {"login": format!("user{}", i % 17), "site_admin": i % 5 == 0},
                "labels": (0..i % 3).map(|j| json!({"name": words[j]})).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// Long-text chunks of about 300 KiB raw (decompressed as a stream by a
/// lookup), short chunks of 256 bytes.
fn opts() -> BuildOptions {
    BuildOptions {
        chunk_size: 256,
        long_chunk_size: 300 << 10,
        long_chunk_fetch: 0,
        ..Default::default()
    }
}

fn open(bytes: &[u8], dir: &std::path::Path, o: OpenOptions) -> Snapshot {
    let p = dir.join("s.colsnap");
    std::fs::write(&p, bytes).unwrap();
    Snapshot::open_with(&p, o).unwrap()
}

fn expected(snap: &Snapshot, pick: &[u64]) -> Vec<Value> {
    pick.iter().map(|&r| snap.row(r).unwrap()).collect()
}

fn page(w: &mut colsnap::read::RowWriter, pick: &[u64]) -> Vec<Value> {
    let mut out = b"[".to_vec();
    w.write_rows(pick, &mut out).unwrap();
    out.push(b']');
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn pages_equal_rows_whatever_the_caches() {
    let data = rows(2000);
    let bytes = colsnap::build_to_vec(&serde_json::to_vec(&data).unwrap()[..], &opts()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reference = open(&bytes, dir.path(), OpenOptions::default());
    // Rows spread over every chunk, some twice, in no order.
    let pick: Vec<u64> = (0..120u64).map(|i| (i * 7919 + 13) % 2000).collect();
    let want = expected(&reference, &pick);
    for (chunks, strings) in [(0, 0), (0, 1 << 20), (64 << 20, 0), (1 << 10, 4 << 10)] {
        let snap = open(
            &bytes,
            dir.path(),
            OpenOptions {
                cache_bytes: chunks,
                string_cache_bytes: strings,
                ..Default::default()
            },
        );
        let mut w = snap.row_writer(None).unwrap();
        assert_eq!(page(&mut w, &pick), want, "caches {chunks}/{strings}");
        let first = snap.stats();
        assert!(first.partial_reads > 0 || chunks > 0);
        // Again, and from a fork (sharing the decoded columns).
        let mut f = w.fork();
        assert_eq!(page(&mut f, &pick), want);
        assert_eq!(page(&mut w, &pick[..1]), want[..1]);
        if strings >= 1 << 20 {
            // Every string of the page was kept: nothing read again.
            assert_eq!(snap.stats().partial_reads, first.partial_reads);
            assert!(snap.string_cache_single_bytes() > 0);
        }
    }
}

#[test]
fn row_groups_read_strings_once_and_keep_none() {
    let data = rows(600);
    let bytes = colsnap::build_to_vec(&serde_json::to_vec(&data).unwrap()[..], &opts()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snap = open(&bytes, dir.path(), OpenOptions::default());
    let pick: Vec<u64> = (0..600u64).rev().collect();
    let want = expected(&snap, &pick);
    let mut w = snap
        .row_writer(Some(&["title".into(), "body".into()]))
        .unwrap();
    let mut out = Vec::new();
    let mut opened = Vec::new();
    w.write_row_groups(
        &pick,
        100,
        &mut out,
        &mut |o: &mut Vec<u8>, end: usize| {
            opened.push(end);
            o.extend_from_slice(b"[");
        },
        b"]\n",
    )
    .unwrap();
    assert_eq!(opened, vec![100, 200, 300, 400, 500, 600]);
    let got: Vec<Value> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .flat_map(|l| serde_json::from_slice::<Vec<Value>>(l).unwrap())
        .collect();
    let want: Vec<Value> = want
        .iter()
        .map(|r| json!({"title": r["title"], "body": r["body"]}))
        .collect();
    assert_eq!(got, want);
    // A stream keeps nothing in the string cache.
    assert_eq!(snap.string_cache_single_bytes(), 0);
    // A row past the end is an error and writes nothing.
    let mut out = b"x".to_vec();
    assert!(
        w.write_row_groups(&[0, 600], 10, &mut out, &mut |_, _| {}, b"")
            .is_err()
    );
    assert_eq!(out, b"x");
}

/// A stream's string windows: the strings of many rows read ahead (each
/// chunk once), then the rows written from them over several calls, give
/// the rows of `Snapshot::row`, whole or restricted; rows other than those
/// read ahead are an error, never other strings.
#[test]
fn string_windows_write_the_rows_read_ahead() {
    let data = rows(900);
    let bytes = colsnap::build_to_vec(&serde_json::to_vec(&data).unwrap()[..], &opts()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snap = open(&bytes, dir.path(), OpenOptions::default());
    // Rows in no order, some twice (a stream sorted by a column).
    let pick: Vec<u64> = (0..900u64).map(|i| (i * 7919 + 5) % 900).collect();
    for fields in [None, Some(vec!["title".to_string(), "labels".to_string()])] {
        let mut w = snap.row_writer(fields.as_deref()).unwrap();
        let mut got: Vec<Value> = Vec::new();
        // Windows of 400 rows, each written in calls of 150 rows.
        for win in pick.chunks(400) {
            let mut strings = w.read_strings(win).unwrap();
            assert!(strings.string_bytes() > 0);
            for part in win.chunks(150) {
                let mut out = Vec::new();
                w.write_row_groups_with(
                    part,
                    60,
                    &mut strings,
                    &mut out,
                    &mut |o: &mut Vec<u8>, _| o.push(b'['),
                    b"]\n",
                )
                .unwrap();
                for l in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    got.extend(serde_json::from_slice::<Vec<Value>>(l).unwrap());
                }
            }
            assert!(strings.is_spent());
        }
        let want: Vec<Value> = match &fields {
            None => expected(&snap, &pick),
            Some(_) => expected(&snap, &pick)
                .iter()
                .map(|r| json!({"title": r["title"], "labels": r["labels"]}))
                .collect(),
        };
        assert_eq!(got, want, "fields {fields:?}");
    }
    // Nothing kept in the string cache.
    assert_eq!(snap.string_cache_single_bytes(), 0);
    // Writing rows other than those read ahead is an error, and writes
    // nothing.
    let mut w = snap.row_writer(None).unwrap();
    let mut strings = w.read_strings(&[1, 2, 3]).unwrap();
    let mut out = b"x".to_vec();
    assert!(
        w.write_row_groups_with(&[4], 1, &mut strings, &mut out, &mut |_, _| {}, b"")
            .is_err()
    );
    assert_eq!(out, b"x");
    // A row past the end is an error.
    assert!(w.read_strings(&[0, 900]).is_err());
}
