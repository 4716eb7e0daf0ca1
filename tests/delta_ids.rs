//! String ids stored as differences from the item before
//! (`delta-zigzag-varint` on a string-ids stream, SPEC.md 4.2). Built from
//! rows whose ids grow (sequential keys, a row-ordered long-text table):
//! the writer picks the encoding and every read path decodes it (export,
//! picked pages, sorting, filters). Crafted byte by byte: a running id
//! below 0 or past the table is corruption naming the column, never a
//! panic or a wrapped id, and other u32 streams still refuse differences.

mod common;

use colsnap::encoding::{Encoding, varint};
use colsnap::format::{Footer, Role, Stats, TableMeta};
use colsnap::model::{Kind, NodeName};
use colsnap::{BuildOptions, ExportOptions, Snapshot};
use common::craft::*;
use common::{cli_on_bytes as cli, corrupt_detail, encoding_of, query_rows};
use serde_json::{Value, json};

/// 300 rows: `key` sequential (`K-00000`, ...), `title` in no order, and a
/// `body` long enough for the long-text table (row-ordered: its ids follow
/// the rows).
fn rows() -> Vec<Value> {
    (0..300u64)
        .map(|i| {
            let word = ["parser", "crash", "docs", "build", "lsp"][(i * 7 % 5) as usize];
            json!({
                "key": format!("K-{i:05}"),
                "title": format!("{word} issue {}", (i * 7_919) % 1_000),
                "body": format!("Steps {i}: {}", "open the file, run the command, see the error. ".repeat(8)),
            })
        })
        .collect()
}

#[test]
fn the_writer_stores_growing_ids_as_differences_and_every_read_path_decodes_them() {
    let rows = rows();
    let input = serde_json::to_vec(&rows).unwrap();
    let off_opts = BuildOptions {
        delta_string_ids: false,
        ..Default::default()
    };
    // Both export the rows; the differences make the file smaller.
    let ((on_bytes, on), (_, off)) = common::built_with_and_without(&rows, &off_opts);
    for p in ["key", "body"] {
        assert_eq!(
            encoding_of(&on, p, Role::Strs),
            Encoding::DeltaZigzagVarint,
            "{p}"
        );
        assert_ne!(
            encoding_of(&off, p, Role::Strs),
            Encoding::DeltaZigzagVarint,
            "{p}"
        );
    }
    // Picked pages (the query engine reads only the rows it shows, walking
    // the differences up to them), sorting and filtering, through the CLI.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.colsnap");
    std::fs::write(&file, &on_bytes).unwrap();
    let query = |args: &[&str]| query_rows(&file, args);
    let page = query(&["--page", "3", "--limit", "7", "--fields", "key,body"]);
    let want: Vec<Value> = rows[14..21]
        .iter()
        .map(|r| json!({"key": r["key"], "body": r["body"]}))
        .collect();
    assert_eq!(page, want);
    let last = query(&["--sort", "-key", "--limit", "3", "--fields", "key"]);
    assert_eq!(
        last,
        vec![
            json!({"key": "K-00299"}),
            json!({"key": "K-00298"}),
            json!({"key": "K-00297"})
        ]
    );
    let since = query(&[
        "--where",
        "key>=K-00290",
        "--fields",
        "key",
        "--limit",
        "100",
    ]);
    assert_eq!(since.len(), 10);
    let by_title = query(&[
        "--sort",
        "title,key",
        "--limit",
        "300",
        "--fields",
        "key,title",
    ]);
    let mut want: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["title"].as_str().unwrap().into(),
                r["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    want.sort();
    let got: Vec<(String, String)> = by_title
        .iter()
        .map(|r| {
            (
                r["title"].as_str().unwrap().into(),
                r["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // `--format-version 1` is for readers that predate the pair.
    let v1 = dir.path().join("v1.colsnap");
    let input_file = dir.path().join("keys.json");
    std::fs::write(&input_file, &input).unwrap();
    common::cli_build(&input_file, &v1, &["--format-version", "1"]);
    let v1 = Snapshot::open(&v1).unwrap();
    for p in ["key", "title", "body"] {
        assert_ne!(
            encoding_of(&v1, p, Role::Strs),
            Encoding::DeltaZigzagVarint,
            "{p}"
        );
    }
    assert_eq!(v1.to_values().unwrap(), rows);
}

// ---------------------------------------------------------------- crafted

const N: usize = 20;

fn key(k: &str) -> NodeName {
    NodeName::Key(k.into())
}

/// A table of the `N` strings `s00` .. `s19` (one plain chunk) and node `s`
/// whose `N` string ids are stored as the differences `deltas` (its
/// statistics those of `ids`, what the deltas should sum to).
fn crafted(deltas: &[i64], ids: &[u32]) -> Vec<u8> {
    let mut chunk = Vec::new();
    for i in 0..N {
        varint::put_bytes(&mut chunk, format!("s{i:02}").as_bytes());
    }
    let mut p = Vec::new();
    for &d in deltas {
        varint::put_i64(&mut p, d);
    }
    let secs = vec![
        raw(Role::StrChunk, Encoding::Raw, chunk),
        raw(Role::Strs, Encoding::DeltaZigzagVarint, p),
    ];
    let mut s = with_stream(
        node(0, key("s"), N as u64, &[(Kind::Str, N as u64)]),
        Role::Strs,
        1,
    );
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    s.stats = Stats {
        distinct: distinct.len() as u64,
        str: Some((
            *ids.iter().min().unwrap_or(&0),
            *ids.iter().max().unwrap_or(&0),
        )),
        ..Default::default()
    };
    assemble(secs, |d| Footer {
        rows: N as u64,
        sections: d,
        tables: vec![TableMeta {
            flags: 0,
            n_strings: N as u64,
            first_chunk: 0,
            chunk_counts: vec![N as u32],
            index_section: None,
            dict_section: None,
        }],
        nodes: vec![root(N as u64), s],
        inline: Vec::new(),
    })
}

#[test]
fn crafted_differences_decode_to_their_running_sums() {
    // Up by one, then down: ids 19, 18, ..., 10, then 0, 1, ..., 9.
    let ids: Vec<u32> = (10..20).rev().chain(0..10).collect();
    let mut deltas = Vec::new();
    let mut prev = 0i64;
    for &id in &ids {
        deltas.push(id as i64 - prev);
        prev = id as i64;
    }
    let bytes = crafted(&deltas, &ids);
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    s.verify().expect("a valid file");
    let got: Vec<Value> = s.to_values().unwrap();
    let want: Vec<Value> = ids
        .iter()
        .map(|i| json!({"s": format!("s{i:02}")}))
        .collect();
    assert_eq!(got, want);
    // A page in the middle (picked rows) and a sort by the column.
    let (code, err) = cli(&bytes, &["verify"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.colsnap");
    std::fs::write(&file, &bytes).unwrap();
    let page = query_rows(&file, &["--page", "2", "--limit", "5"]);
    assert_eq!(page, want[5..10]);
    let first = query_rows(&file, &["--sort", "s", "--limit", "2"]);
    assert_eq!(first, vec![json!({"s": "s00"}), json!({"s": "s01"})]);
}

#[test]
fn a_running_id_below_zero_or_past_the_table_is_corruption() {
    // 3, then -1: below zero, which must not wrap to 2^32 - 1 (or to an id).
    let mut below = vec![3i64, -4];
    below.resize(N, 0);
    // 19, then 20: one past the table's 20 strings.
    let mut past = vec![19i64, 1];
    past.resize(N, 0);
    // Past u32: 2^32 exactly.
    let mut wide = vec![u32::MAX as i64, 1];
    wide.resize(N, -1);
    for (deltas, want) in [
        (&below, "string id -1 out of range"),
        (&past, "out of range"),
        (&wide, "string id 4294967296 out of range"),
    ] {
        let bytes = crafted(deltas, &[0]);
        let s = Snapshot::from_bytes(bytes.clone()).unwrap();
        let d = corrupt_detail(s.verify());
        assert!(d.contains("`s`") && d.contains(want), "{d}");
        let d = corrupt_detail(
            s.export(&mut std::io::sink(), &ExportOptions::default())
                .map(|_| ()),
        );
        assert!(d.contains(want), "{d}");
        for args in [
            &["verify"][..],
            &["export"],
            &["query", "--sort", "s"],
            &["query", "--page", "2", "--limit", "3"],
        ] {
            let (code, err) = cli(&bytes, args);
            assert_eq!(code, 1, "{args:?}: {err}");
            assert!(err.contains("out of range"), "{args:?}: {err}");
        }
    }
}

#[test]
fn list_lengths_refuse_differences() {
    // `a`: N arrays of one element each, their lengths stored as
    // differences (valid only for string ids).
    let mut p = Vec::new();
    for i in 0..N {
        varint::put_i64(&mut p, i64::from(i == 0));
    }
    let mut ints = Vec::new();
    for i in 0..N as i64 {
        varint::put_i64(&mut ints, i);
    }
    let secs = vec![
        raw(Role::Lens, Encoding::DeltaZigzagVarint, p),
        raw(Role::Ints, Encoding::ZigzagVarint, ints),
    ];
    let a = with_stream(
        node(0, key("a"), N as u64, &[(Kind::Array, N as u64)]),
        Role::Lens,
        0,
    );
    let mut e = with_stream(
        node(1, NodeName::Elem, N as u64, &[(Kind::Int, N as u64)]),
        Role::Ints,
        1,
    );
    e.stats = Stats {
        distinct: N as u64,
        int: Some((0, N as i64 - 1)),
        ..Default::default()
    };
    let bytes = assemble(secs, |d| Footer {
        rows: N as u64,
        sections: d,
        tables: vec![empty_table()],
        nodes: vec![root(N as u64), a, e],
        inline: Vec::new(),
    });
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    let d = corrupt_detail(s.verify());
    assert!(d.contains("not valid here"), "{d}");
    let (code, err) = cli(&bytes, &["export"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not valid here"), "{err}");
}
