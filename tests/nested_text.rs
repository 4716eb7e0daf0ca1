//! Which table a column's strings go to (SPEC.md 7.5): under an array,
//! strings averaging over 32 bytes of which most are distinct (the text
//! nodes of a document tree) are long text, in row order; repeated values
//! under arrays (label URLs), short ones, top-level columns under 128 bytes
//! and small columns stay in the sorted short table. The choice is the same
//! whatever the memory budget, and queries answer the same either way.
#![cfg(all(feature = "write", feature = "cli"))]

mod common;

use colsnap::raw::format::footer::TABLE_LONG_TEXT;
use colsnap::write::build;
use colsnap::{BuildOptions, Snapshot, build_to_vec};
use serde_json::{Value, json};

/// A sentence of about 60 bytes, different for each `i` (a few repeat).
fn fragment(i: usize) -> String {
    let words = [
        "the", "reader", "fetches", "chunk", "grid", "sorts", "column", "issue", "when", "after",
    ];
    let mut x = (i as u64 % 900).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut s = String::new();
    while s.len() < 56 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(words[(x % 10) as usize]);
        s.push(' ');
    }
    s.push_str(&format!("#{}", i % 900));
    s
}

/// `n` issues, each with a document tree of three paragraphs' text nodes,
/// two labels (of five) by URL, short tags and a title.
fn rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "id": i,
                "title": format!("Title of issue {i}: {}", &fragment(i + 7)[..20]),
                "doc": {"type": "doc", "content": (0..3).map(|p| json!({
                    "type": "paragraph",
                    "content": [{"type": "text", "text": fragment(3 * i + p)}],
                })).collect::<Vec<_>>()},
                "labels": [
                    {"url": format!("https://tracker.example/api/labels/label-number-{}", i % 5)},
                    {"url": format!("https://tracker.example/api/labels/label-number-{}", (i + 2) % 5)},
                ],
                "tags": [format!("t{i}"), format!("u{i}")],
            })
        })
        .collect()
}

fn bytes_of(rows: &[Value], o: &BuildOptions) -> Vec<u8> {
    build_to_vec(&serde_json::to_vec(rows).unwrap()[..], o).unwrap()
}

/// Whether column `path` keeps its strings in the long-text table.
fn long(s: &Snapshot, path: &str) -> bool {
    let n = s.node_by_path(path).unwrap_or_else(|| panic!("{path}"));
    let t = s.footer().nodes[n as usize].table;
    s.footer().tables[t as usize].flags & TABLE_LONG_TEXT != 0
}

#[test]
fn prose_fragments_under_arrays_are_long_text_and_repeated_values_stay_sorted() {
    let rows = rows(300);
    let s = Snapshot::from_bytes(bytes_of(&rows, &BuildOptions::default())).unwrap();
    s.verify().unwrap();
    assert!(long(&s, "doc.content[].content[].text"));
    for short in [
        "title",
        "labels[].url",
        "tags[]",
        "doc.content[].type",
        "doc.content[].content[].type",
    ] {
        assert!(!long(&s, short), "{short} is not long text");
    }
    assert_eq!(s.to_values().unwrap(), rows);

    // Off: the same rows, every column in the short table.
    let off = BuildOptions {
        nested_text_min_avg: 0,
        ..BuildOptions::default()
    };
    let t = Snapshot::from_bytes(bytes_of(&rows, &off)).unwrap();
    assert!(!long(&t, "doc.content[].content[].text"));
    // A sorted long-text table (for old readers) gains nothing from them.
    let sorted = BuildOptions {
        long_text_row_order: false,
        ..BuildOptions::default()
    };
    let u = Snapshot::from_bytes(bytes_of(&rows, &sorted)).unwrap();
    assert!(!long(&u, "doc.content[].content[].text"));

    // Sorting and filtering by the moved column (by rank) answer as the
    // sorted table does.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.colsnap"), dir.path().join("b.colsnap"));
    std::fs::write(&a, bytes_of(&rows, &BuildOptions::default())).unwrap();
    std::fs::write(&b, bytes_of(&rows, &off)).unwrap();
    let text = "doc.content[].content[].text";
    for q in [
        vec!["--sort", text],
        vec!["--sort", "-doc.content[].content[].text"],
        vec!["--where", "doc.content[].content[].text^=the grid"],
        vec![
            "--where",
            "doc.content[].content[].text>=sorts",
            "--sort",
            "id",
        ],
        vec!["--search", "reader fetches"],
    ] {
        let mut args = q.clone();
        args.extend(["--fields", "id", "--limit", "1000"]);
        let got = common::query_rows(&a, &args);
        assert!(!got.is_empty(), "{q:?}");
        assert_eq!(got, common::query_rows(&b, &args), "{q:?}");
    }
}

#[test]
fn a_few_nested_strings_stay_in_the_short_table() {
    // 20 rows: 60 text nodes, all distinct, fewer than 64.
    let s = Snapshot::from_bytes(bytes_of(&rows(20), &BuildOptions::default())).unwrap();
    assert!(!long(&s, "doc.content[].content[].text"));
    // 30 rows: 90 of them.
    let s = Snapshot::from_bytes(bytes_of(&rows(30), &BuildOptions::default())).unwrap();
    assert!(long(&s, "doc.content[].content[].text"));
}

#[test]
fn the_choice_does_not_depend_on_the_memory_budget() {
    let rows = rows(400);
    let input = serde_json::to_vec(&rows).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let reference = bytes_of(&rows, &BuildOptions::default());
    for memory in [1, 16 << 10] {
        let o = BuildOptions {
            memory,
            tmp_dir: Some(tmp.path().to_path_buf()),
            ..BuildOptions::default()
        };
        let mut out = Vec::new();
        let report = build(&input[..], &mut out, &o).unwrap();
        assert!(report.spill.string_runs >= 2, "budget {memory} spills");
        assert!(out == reference, "budget {memory}: other bytes");
    }
    let s = Snapshot::from_bytes(reference).unwrap();
    assert!(long(&s, "doc.content[].content[].text"));
}
