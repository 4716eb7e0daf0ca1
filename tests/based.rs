//! `based` streams (SPEC.md 4.9): timestamps, string ids and integers
//! stored as differences from another column's. Built from real rows (the
//! writer picks them, every read path decodes them: export, picked pages,
//! sorting, filters) and crafted byte by byte (a base without a timestamp
//! or an integer, a cycle, an overflow, the encoding on another role),
//! which must fail with a corruption error naming the column, never a panic
//! or a wrong value.

mod common;

use colsnap::encoding::{Encoding, based, varint};
use colsnap::format::{Footer, Role, Stats};
use colsnap::model::{Kind, NodeName};
use colsnap::{BuildOptions, ExportOptions, Snapshot, build_to_vec};
use common::craft::*;
use common::{cli_on_bytes as cli, corrupt_detail, encoding_of, query_rows};
use serde_json::{Value, json};

/// `2024-05-DDTHH:MM:SS` plus `tail` for `secs` seconds into May 2024.
fn stamp(secs: i64, tail: &str) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    format!("2024-05-{:02}T{h:02}:{m:02}:{s:02}{tail}", 1 + d)
}

/// 60 issues: `updated_at` equal to `created_at` or minutes later (some
/// with a fraction and an offset, so the column keeps its own nanos, layout
/// and offset streams), `closed_at` on two rows in three, equal to
/// `updated_at` or an hour later.
fn issues() -> Vec<Value> {
    (0..60i64)
        .map(|i| {
            let created = i * 7_000 + (i * i * 53) % 3_000;
            let updated = created + if i % 4 == 0 { 0 } else { 60 * (i % 9) };
            let tail = if i % 5 == 2 { ".250+02:00" } else { "Z" };
            let author = format!("user{}", (i * 7) % 50);
            let editor = if i % 5 == 0 {
                format!("user{}", (i * 7 + 1) % 50)
            } else {
                author.clone()
            };
            let mut row = json!({
                "number": i,
                "created_at": stamp(created, "Z"),
                "updated_at": stamp(updated, tail),
                "author": author,
                "editor": editor,
            });
            if i % 3 != 0 {
                row["closed_at"] = json!(stamp(updated + if i % 7 == 0 { 3600 } else { 0 }, "Z"));
            }
            row
        })
        .collect()
}

fn ts_secs_encoding(s: &Snapshot, path: &str) -> Encoding {
    encoding_of(s, path, Role::TsSecs)
}

#[test]
fn the_writer_bases_timestamps_and_every_read_path_decodes_them() {
    let rows = issues();
    let input = serde_json::to_vec(&rows).unwrap();
    let on =
        Snapshot::from_bytes(build_to_vec(&input[..], &BuildOptions::default()).unwrap()).unwrap();
    let off_opts = BuildOptions {
        based_streams: false,
        ..Default::default()
    };
    let off = Snapshot::from_bytes(build_to_vec(&input[..], &off_opts).unwrap()).unwrap();
    assert_eq!(
        ts_secs_encoding(&on, "created_at"),
        Encoding::DeltaZigzagVarint
    );
    assert_eq!(ts_secs_encoding(&on, "updated_at"), Encoding::Based);
    assert_eq!(ts_secs_encoding(&on, "closed_at"), Encoding::Based);
    // `editor` is `author` but on every fifth row (equal distinct counts:
    // the lower node, `author`, is the base).
    assert_eq!(encoding_of(&on, "editor", Role::Strs), Encoding::Based);
    for p in ["updated_at", "closed_at"] {
        assert_ne!(ts_secs_encoding(&off, p), Encoding::Based, "{p}");
    }
    assert_ne!(encoding_of(&off, "editor", Role::Strs), Encoding::Based);
    on.verify().expect("verifies");
    // Nothing lost: the export is the input, and the same without based
    // streams.
    assert_eq!(on.to_values().unwrap(), rows);
    assert_eq!(off.to_values().unwrap(), rows);
    // Picked pages (the query engine decodes only the rows it shows) and
    // sorting and filtering by a based column, through the CLI.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("issues.colsnap");
    std::fs::write(
        &file,
        build_to_vec(&input[..], &BuildOptions::default()).unwrap(),
    )
    .unwrap();
    let query = |args: &[&str]| query_rows(&file, args);
    let page = query(&[
        "--page",
        "2",
        "--limit",
        "7",
        "--fields",
        "number,closed_at,updated_at",
    ]);
    let want: Vec<Value> = rows[7..14]
        .iter()
        .map(|r| {
            let mut o = json!({"number": r["number"], "updated_at": r["updated_at"]});
            if let Some(c) = r.get("closed_at") {
                o["closed_at"] = c.clone();
            }
            o
        })
        .collect();
    assert_eq!(page, want);
    // Newest close first (every closed_at is `Z`: the text orders like the
    // instant); rows without one come last.
    let sorted = query(&["--sort", "-closed_at", "--limit", "5", "--fields", "number"]);
    let mut closed: Vec<(&str, i64)> = rows
        .iter()
        .filter_map(|r| Some((r.get("closed_at")?.as_str()?, r["number"].as_i64()?)))
        .collect();
    closed.sort_by(|a, b| b.0.cmp(a.0).then(a.1.cmp(&b.1)));
    let numbers: Vec<i64> = sorted
        .iter()
        .map(|r| r["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, closed[..5].iter().map(|c| c.1).collect::<Vec<_>>());
    // `--format-version 1` is for readers that predate encoding 11.
    let v1 = dir.path().join("v1.colsnap");
    let input_file = dir.path().join("issues.json");
    std::fs::write(&input_file, &input).unwrap();
    common::cli_build(&input_file, &v1, &["--format-version", "1"]);
    let v1 = Snapshot::open(&v1).unwrap();
    for p in ["created_at", "updated_at", "closed_at"] {
        assert_ne!(ts_secs_encoding(&v1, p), Encoding::Based, "{p}");
    }
    assert_eq!(v1.to_values().unwrap(), rows);
    // Sorting and filtering by a based string column compare its ids.
    let by_editor = query(&["--sort", "editor", "--fields", "number,editor"]);
    let mut editors: Vec<(String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["editor"].as_str().unwrap().to_string(),
                r["number"].as_i64().unwrap(),
            )
        })
        .collect();
    editors.sort();
    let got: Vec<(String, i64)> = by_editor
        .iter()
        .map(|r| {
            (
                r["editor"].as_str().unwrap().to_string(),
                r["number"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 50.min(rows.len()));
    assert_eq!(got, editors[..got.len()]);
    let who = rows[5]["editor"].as_str().unwrap();
    let n = query(&["--where", &format!("editor={who}"), "--fields", "number"]).len();
    assert_eq!(n, rows.iter().filter(|r| r["editor"] == who).count());
    let since = rows[40]["closed_at"].as_str().unwrap();
    let n = query(&[
        "--where",
        &format!("closed_at>={since}"),
        "--fields",
        "number",
    ])
    .len();
    assert_eq!(n, closed.iter().filter(|c| c.0 >= since).count());
}

// ---------------------------------------------------------------- crafted

const N: usize = 20;
const BASE: i64 = 1_700_000_000;

fn key(k: &str) -> NodeName {
    NodeName::Key(k.into())
}

/// A timestamp column `name` whose ts-secs stream is section `sec`.
fn ts_node(name: &str, sec: u32, secs: &[i64], kinds: &[(Kind, u64)]) -> colsnap::format::NodeMeta {
    let mut n = with_stream(node(0, key(name), N as u64, kinds), Role::TsSecs, sec);
    n.stats = Stats {
        distinct: secs.len() as u64,
        time: Some((
            *secs.iter().min().expect("secs"),
            *secs.iter().max().expect("secs"),
        )),
        ..Default::default()
    };
    n
}

fn zigzag(values: &[i64]) -> Vec<u8> {
    let mut b = Vec::new();
    for &v in values {
        varint::put_i64(&mut b, v);
    }
    b
}

/// `a` (node 1): N plain timestamps; `b` (node 2): based on `b_source`
/// with deltas `i % 3` (`delta_of` may change one); `c` (node 3): b's
/// expected seconds stored plainly. `a_null_at` makes one item of `a` null.
fn crafted(
    b_source: u32,
    a_source: Option<u32>,
    a_null_at: Option<usize>,
    last_delta: i64,
) -> Vec<u8> {
    let a: Vec<i64> = (0..N as i64).map(|i| BASE + 100 * i).collect();
    let mut deltas: Vec<i64> = (0..N as i64).map(|i| i % 3).collect();
    deltas[N - 1] = last_delta;
    let b: Vec<i64> = a
        .iter()
        .zip(&deltas)
        .map(|(x, d)| x.wrapping_add(*d))
        .collect();
    let mut secs = Vec::new();
    let mut a_node;
    let a_times: Vec<i64> = match a_null_at {
        Some(j) => a
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != j)
            .map(|x| *x.1)
            .collect(),
        None => a.clone(),
    };
    match a_source {
        // `a` based on another node (a cycle when that node is based on `a`).
        Some(src) => {
            let mut p = Vec::new();
            based::encode(src, a.iter().map(|_| 0), &mut p);
            secs.push(raw(Role::TsSecs, Encoding::Based, p));
        }
        None => secs.push(raw(Role::TsSecs, Encoding::ZigzagVarint, zigzag(&a_times))),
    }
    match a_null_at {
        Some(j) => {
            let kinds: Vec<u8> = (0..N)
                .map(|i| {
                    if i == j {
                        Kind::Null as u8
                    } else {
                        Kind::Time as u8
                    }
                })
                .collect();
            let mut kb = Vec::new();
            colsnap::encoding::bitpack::encode(&kinds, &mut kb);
            secs.push(raw(Role::Kinds, Encoding::BitPacked, kb));
            a_node = ts_node(
                "a",
                0,
                &a_times,
                &[(Kind::Time, N as u64 - 1), (Kind::Null, 1)],
            );
            a_node = with_stream(a_node, Role::Kinds, 1);
        }
        None => a_node = ts_node("a", 0, &a_times, &[(Kind::Time, N as u64)]),
    }
    let sb = secs.len() as u32;
    let mut p = Vec::new();
    based::encode(b_source, deltas.iter().copied(), &mut p);
    secs.push(raw(Role::TsSecs, Encoding::Based, p));
    secs.push(raw(Role::TsSecs, Encoding::ZigzagVarint, zigzag(&b)));
    let nodes = vec![
        root(N as u64),
        a_node,
        ts_node("b", sb, &b, &[(Kind::Time, N as u64)]),
        ts_node("c", sb + 1, &b, &[(Kind::Time, N as u64)]),
    ];
    assemble(secs, |d| Footer {
        tables: vec![empty_table()],
        ..footer(N as u64, d, nodes)
    })
}

#[test]
fn a_crafted_based_stream_decodes_to_its_base_plus_the_deltas() {
    let bytes = crafted(1, None, None, 2);
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    s.verify().expect("valid");
    let rows = s.to_values().unwrap();
    for r in &rows {
        assert_eq!(r["b"], r["c"], "{r}");
    }
    assert_ne!(rows[1]["a"], rows[1]["b"]);
    for args in [
        &["verify"][..],
        &["export"],
        &["query", "--sort", "b", "--limit", "3"],
    ] {
        let (code, err) = cli(&bytes, args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
}

#[test]
fn a_base_item_that_is_not_a_timestamp_is_corruption() {
    let bytes = crafted(1, None, Some(7), 2);
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    let d = corrupt_detail(s.verify());
    assert!(
        d.contains("column `b`") && d.contains("item 7 has no timestamp in its base"),
        "{d}"
    );
    let d = corrupt_detail(
        s.export(&mut std::io::sink(), &ExportOptions::default())
            .map(|_| ()),
    );
    assert!(d.contains("item 7 has no timestamp in its base"), "{d}");
    for args in [&["verify"][..], &["export"], &["query", "--fields", "b"]] {
        let (code, err) = cli(&bytes, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("no timestamp in its base"), "{args:?}: {err}");
    }
}

#[test]
fn based_streams_in_a_cycle_are_corruption() {
    // `b` on `a`, `a` on `b`.
    let bytes = crafted(1, Some(2), None, 2);
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    assert!(corrupt_detail(s.verify()).contains("form a cycle"));
    assert!(corrupt_detail(s.node_data(2).map(|_| ())).contains("form a cycle"));
    // A node based on itself, or on a node past the footer.
    for src in [2, 9] {
        let s = Snapshot::from_bytes(crafted(src, None, None, 2)).unwrap();
        let d = corrupt_detail(s.verify());
        assert!(d.contains("outside this column's domain"), "{src}: {d}");
    }
    let (code, err) = cli(&bytes, &["export"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn a_based_sum_that_overflows_or_leaves_the_range_is_corruption() {
    let s = Snapshot::from_bytes(crafted(1, None, None, i64::MAX)).unwrap();
    let d = corrupt_detail(s.verify());
    assert!(d.contains("overflow"), "{d}");
    // In range of i64, out of the timestamp range (year 9999).
    let s = Snapshot::from_bytes(crafted(1, None, None, 1 << 40)).unwrap();
    assert!(s.verify().is_err());
    assert!(s.to_values().is_err());
}

/// `a` (node 1): N timestamps; `i` (node 2): N items of `kind` (UInt or
/// Int: u64s or i64s `0..N`) whose stream claims `based` on node 1.
fn based_on_a_timestamp(kind: Kind) -> Vec<u8> {
    let mut p = Vec::new();
    based::encode(1, [0i64; N], &mut p);
    let role = if kind == Kind::UInt {
        Role::UInts
    } else {
        Role::Ints
    };
    let mut n = with_stream(node(0, key("i"), N as u64, &[(kind, N as u64)]), role, 1);
    n.stats = Stats {
        distinct: N as u64,
        int: (kind == Kind::Int).then_some((0, N as i64 - 1)),
        uint: (kind == Kind::UInt).then_some((0, N as u64 - 1)),
        ..Default::default()
    };
    let a: Vec<i64> = (0..N as i64).map(|i| BASE + i).collect();
    let secs = vec![
        raw(Role::TsSecs, Encoding::ZigzagVarint, zigzag(&a)),
        raw(role, Encoding::Based, p),
    ];
    let nodes = vec![
        root(N as u64),
        ts_node("a", 0, &a, &[(Kind::Time, N as u64)]),
        n,
    ];
    assemble(secs, |d| Footer {
        rows: N as u64,
        sections: d,
        tables: vec![empty_table()],
        nodes,
        inline: Vec::new(),
    })
}

#[test]
fn the_based_encoding_on_another_role_is_refused() {
    // A uints stream claiming `based`: readers accept it on ints, string
    // ids and ts-secs only.
    let s = Snapshot::from_bytes(based_on_a_timestamp(Kind::UInt)).unwrap();
    assert!(corrupt_detail(s.verify()).contains("based"));
    assert!(s.to_values().is_err());
}

#[test]
fn an_ints_stream_based_on_a_column_without_integers_is_corruption() {
    let bytes = based_on_a_timestamp(Kind::Int);
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    let d = corrupt_detail(s.verify());
    assert!(
        d.contains("column `i`") && d.contains("item 0 has no integer in its base"),
        "{d}"
    );
    assert!(s.to_values().is_err());
    for args in [&["export"][..], &["query", "--fields", "i", "--limit", "2"]] {
        let (code, err) = cli(&bytes, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("no integer in its base"), "{args:?}: {err}");
    }
}

/// 300 pull requests: a repository's counts under two names (`forks` and
/// `forks_count`, equal; `watchers` and `stargazers_count`, equal but on a
/// few rows), a head owner's id equal to the author's but on every tenth
/// row, and a count of reactions that is mostly 0 (never worth a base).
fn pulls() -> Vec<Value> {
    (0..300i64)
        .map(|i| {
            let forks = (i * 7_919 * 31) % 90_000;
            let stars = 100_000 + (i * 104_729) % 900_000;
            let author = 10_000_000 + (i * 48_271) % 5_000_000;
            let owner = if i % 10 == 3 { author + 977 } else { author };
            json!({
                "number": 1_000 + i,
                "user": {"id": author},
                "base": {"repo": {
                    "stargazers_count": stars,
                    "forks_count": forks,
                    "size": (i * 3_571) % 70_000,
                    "forks": forks,
                    "watchers": if i % 50 == 7 { stars + 1 } else { stars },
                }},
                "head": {"repo": {"owner": {"id": owner}}},
                "reactions": {"total": i64::from(i % 17 == 0), "heart": 0},
            })
        })
        .collect()
}

#[test]
fn the_writer_bases_integers_on_equal_columns_and_every_read_path_decodes_them() {
    let rows = pulls();
    let off_opts = BuildOptions {
        based_streams: false,
        ..Default::default()
    };
    // Both export the rows; the based streams make the file smaller.
    let ((bytes, on), (_, off)) = common::built_with_and_without(&rows, &off_opts);
    let ints = |s: &Snapshot, p: &str| encoding_of(s, p, Role::Ints);
    for p in [
        "base.repo.forks",
        "base.repo.watchers",
        "head.repo.owner.id",
    ] {
        assert_eq!(ints(&on, p), Encoding::Based, "{p}");
        assert_ne!(ints(&off, p), Encoding::Based, "{p}");
    }
    // Nothing ranks before the first column (as many integers, a lower
    // node), and differences from another column do not beat counts that
    // are mostly 0 (a column is based only where that is smaller).
    for p in ["number", "reactions.total", "reactions.heart"] {
        assert_ne!(ints(&on, p), Encoding::Based, "{p}");
    }
    // Picked pages, sorting and filtering by a based column, in the CLI.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pulls.colsnap");
    std::fs::write(&file, &bytes).unwrap();
    let query = |args: &[&str]| query_rows(&file, args);
    let page = query(&[
        "--page",
        "3",
        "--limit",
        "9",
        "--fields",
        "number,base.repo.watchers,head.repo.owner.id",
    ]);
    let want: Vec<Value> = rows[18..27]
        .iter()
        .map(|r| {
            json!({
                "number": r["number"],
                "base": {"repo": {"watchers": r["base"]["repo"]["watchers"]}},
                "head": {"repo": {"owner": {"id": r["head"]["repo"]["owner"]["id"]}}},
            })
        })
        .collect();
    assert_eq!(page, want);
    let mut by: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["base"]["repo"]["watchers"].as_i64().unwrap(),
                r["number"].as_i64().unwrap(),
            )
        })
        .collect();
    by.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let got: Vec<i64> = query(&[
        "--sort",
        "-base.repo.watchers",
        "--limit",
        "6",
        "--fields",
        "number",
    ])
    .iter()
    .map(|r| r["number"].as_i64().unwrap())
    .collect();
    assert_eq!(got, by[..6].iter().map(|b| b.1).collect::<Vec<_>>());
    let cut = by[100].0;
    let n = query(&[
        "--where",
        &format!("base.repo.watchers>={cut}"),
        "--fields",
        "number",
        "--limit",
        "500",
    ])
    .len();
    assert_eq!(n, by.iter().filter(|b| b.0 >= cut).count());
}

/// The longest chain of `mapped` and `based` streams in `s`, in links (a
/// stream's source is the first varint of its payload).
fn longest_chain(s: &Snapshot) -> usize {
    let f = s.footer();
    let sources: Vec<Vec<usize>> = f
        .nodes
        .iter()
        .map(|m| {
            m.streams
                .iter()
                .flatten()
                .filter(|&&sec| f.sections[sec as usize].encoding.has_source())
                .map(|&sec| {
                    let raw = s.section(sec).unwrap();
                    varint::Reader::new(&raw).u64("source").unwrap() as usize
                })
                .collect()
        })
        .collect();
    // Sources rank before their nodes (no cycles): memoised depth.
    fn depth(n: usize, sources: &[Vec<usize>], memo: &mut Vec<Option<usize>>) -> usize {
        if let Some(d) = memo[n] {
            return d;
        }
        let d = sources[n]
            .iter()
            .map(|&c| depth(c, sources, memo) + 1)
            .max()
            .unwrap_or(0);
        memo[n] = Some(d);
        d
    }
    let mut memo = vec![None; sources.len()];
    (0..sources.len())
        .map(|n| depth(n, &sources, &mut memo))
        .max()
        .unwrap_or(0)
}

/// Ninety string columns, each a coarser function of the one before (as
/// many distinct values less 3.5% a step): every column's cheapest source
/// is the one before, a chain longer than readers follow (64 links). The
/// writer keeps every chain within the bound (a node that would lengthen
/// one past it is written without a source), so the snapshot opens,
/// verifies and exports the input; it used to be written and then refused.
#[test]
fn chains_of_mapped_columns_stay_within_what_readers_follow() {
    const ROWS: usize = 4096;
    const COLS: usize = 90;
    let mut cols: Vec<Vec<usize>> = Vec::with_capacity(COLS);
    // A fixed permutation of the rows, so the first column's ids are not
    // in row order.
    let mut cur: Vec<usize> = (0..ROWS).map(|r| r * 2_654_435_761 % ROWS).collect();
    let mut d = ROWS;
    cols.push(cur.clone());
    for _ in 1..COLS {
        let nd = (d * 965 / 1000).max(2);
        cur = cur.iter().map(|&v| v * nd / d).collect();
        d = nd;
        cols.push(cur.clone());
    }
    let rows: Vec<Value> = (0..ROWS)
        .map(|r| {
            let mut o = serde_json::Map::new();
            for (k, c) in cols.iter().enumerate() {
                o.insert(
                    format!("c{k:02}"),
                    json!(format!("x{}", c[r] * 7919 % 100_003)),
                );
            }
            Value::Object(o)
        })
        .collect();
    let input = serde_json::to_vec(&rows).unwrap();
    let s =
        Snapshot::from_bytes(build_to_vec(&input[..], &BuildOptions::default()).unwrap()).unwrap();
    s.verify().unwrap();
    assert_eq!(s.to_values().unwrap(), rows);
    let f = s.footer();
    let with_source = f
        .nodes
        .iter()
        .filter(|m| {
            m.streams
                .iter()
                .flatten()
                .any(|&sec| f.sections[sec as usize].encoding.has_source())
        })
        .count();
    // The input does call for a chain past the bound...
    assert!(with_source > 64, "{with_source} columns mapped or based");
    // ...and the one written reaches it but no further.
    let longest = longest_chain(&s);
    assert!((60..=64).contains(&longest), "longest chain {longest}");
}
