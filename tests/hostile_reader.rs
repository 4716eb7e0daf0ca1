//! Hostile resources on the read side (issue 11 items 2, 4, 5, 6, 14) and
//! row-aligned typed access.
//!
//! Every hostile file is crafted here by a generator, with valid checksums,
//! so that what it claims is what the reader must judge. The CLI cases run
//! under a 1 GiB address-space limit and a timeout (`ulimit -v`, `timeout`):
//! a reader that tried to allocate what a file claims would abort there.

mod common;

use colsnap::compress::{self, Codec};
use colsnap::encoding::{Encoding, bitpack, dict, mapped, varint};
use colsnap::format::{self, Footer, Role, Stats, TableMeta, Trailer};
use colsnap::model::{Kind, NodeName};
use colsnap::{BuildOptions, Error, ExportOptions, Snapshot, build_to_vec};
use common::craft::*;
use common::limits;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- crafting

fn key(k: &str) -> NodeName {
    NodeName::Key(k.into())
}

/// Rewrite the footer of a well-formed snapshot with `edit` (sections kept).
fn rewrite_footer(bytes: &[u8], edit: impl FnOnce(&mut Footer)) -> Vec<u8> {
    let s = Snapshot::from_bytes(bytes.to_vec()).expect("a valid snapshot");
    let mut f = s.footer().clone();
    edit(&mut f);
    let end = f
        .sections
        .iter()
        .rfind(|e| !e.inline)
        .map_or(format::HEADER_LEN as u64, |e| e.end());
    let mut out = bytes[..end as usize].to_vec();
    let footer_raw = f.to_bytes(s.header().version);
    let t = Trailer {
        footer_offset: out.len() as u64,
        footer_stored_len: footer_raw.len() as u32,
        footer_raw_len: footer_raw.len() as u32,
        footer_crc: format::crc32c(&footer_raw),
        footer_codec: Codec::None,
        version: s.header().version,
    };
    out.extend_from_slice(&footer_raw);
    out.extend_from_slice(&t.to_bytes());
    out
}

fn corrupt_detail(r: colsnap::Result<Snapshot>) -> String {
    match r {
        Err(Error::Corrupt { what, detail, .. }) => format!("{what}: {detail}"),
        Err(e) => panic!("expected a corrupt-snapshot error, got {e}"),
        Ok(_) => panic!("a hostile file was accepted"),
    }
}

// ------------------------------------------------- running under a limit

/// Write `bytes` to a temporary file and run `colsnap ARGS FILE` under a
/// 1 GiB address-space limit and a 60 s timeout. Returns (exit code, stderr);
/// a signal (an abort on a failed allocation, a kill) fails the test.
fn run_limited(bytes: &[u8], args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hostile.colsnap");
    std::fs::write(&file, bytes).expect("write");
    run_limited_path(&file, args)
}

fn run_limited_path(file: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_colsnap"));
    cmd.args(args).arg(file).stdout(std::process::Stdio::null());
    let r = limits::run_limited(&cmd, limits::AS_LIMIT, 60);
    let stderr = r.stderr();
    let code = r.code().unwrap_or_else(|| {
        panic!(
            "colsnap {args:?} was killed by a signal ({:?}): {stderr}",
            r.output.status
        )
    });
    assert!(
        !stderr.contains("memory allocation") && !stderr.contains("panicked"),
        "colsnap {args:?}: {stderr}"
    );
    (code, stderr)
}

// ------------------------------------- item 2: chained `mapped` streams

/// 20 rows; node 1 (`b`) holds string ids 0..20 of a 20-string table; nodes
/// `c1..cN` alternate kinds: odd chain nodes are `Int` at items 0..10 and
/// `Str` at 10..20, even ones the reverse. The ints of chain node k are
/// mapped from node k-1 and its string ids from node k-2 (the base `b`
/// stands in before the chain), so without memoising, decoding node k decodes
/// node k-1 and node k-2 again: Fibonacci work in the chain length.
/// `source_of` may redirect a chain node's int source (to make a cycle).
fn mapped_chain(len: usize, source_of: impl Fn(u32) -> u32) -> Vec<u8> {
    const N: usize = 20;
    let mut secs = Vec::new();
    let mut chunk = Vec::new();
    for i in 0..N {
        varint::put_bytes(&mut chunk, format!("s{i:02}").as_bytes());
    }
    secs.push(raw(Role::StrChunk, Encoding::Raw, chunk)); // 0
    let ids: Vec<u8> = (0..N as u32).flat_map(|i| i.to_le_bytes()).collect();
    secs.push(raw(Role::Strs, Encoding::PlainU32, ids)); // 1
    let mut nodes = vec![root(N as u64)];
    let mut b = with_stream(
        node(0, key("b"), N as u64, &[(Kind::Str, N as u64)]),
        Role::Strs,
        1,
    );
    b.stats = Stats {
        distinct: N as u64,
        str: Some((0, N as u32 - 1)),
        ..Default::default()
    };
    nodes.push(b);
    // Node index of chain node k (1-based) is k + 1; the base is node 1.
    let node_of = |k: usize| if k == 0 { 1 } else { k as u32 + 1 };
    let int_first = |k: usize| k % 2 == 1;
    for k in 1..=len {
        let kinds: Vec<u8> = (0..N)
            .map(|i| {
                if (i < N / 2) == int_first(k) {
                    Kind::Int as u8
                } else {
                    Kind::Str as u8
                }
            })
            .collect();
        let mut kb = Vec::new();
        bitpack::encode(&kinds, &mut kb);
        let int_items: Vec<u32> = (0..N as u32)
            .filter(|&i| kinds[i as usize] == Kind::Int as u8)
            .collect();
        let str_items: Vec<u32> = (0..N as u32)
            .filter(|&i| kinds[i as usize] == Kind::Str as u8)
            .collect();
        // Every node's string id at item i is i (the base's, passed on).
        let isrc = source_of(node_of(k - 1));
        let ssrc = node_of(k.saturating_sub(2));
        let im = mapped::build(isrc, int_items.iter().map(|&i| (i, 100 + i as i64)))
            .expect("a function");
        let sm = mapped::build(ssrc, str_items.iter().map(|&i| (i, i as i64))).expect("a function");
        let (mut ib, mut sb) = (Vec::new(), Vec::new());
        mapped::encode(&im, &mut ib);
        mapped::encode(&sm, &mut sb);
        let s0 = secs.len() as u32;
        secs.push(raw(Role::Kinds, Encoding::BitPacked, kb));
        secs.push(raw(Role::Ints, Encoding::Mapped, ib));
        secs.push(raw(Role::Strs, Encoding::Mapped, sb));
        let mut n = node(
            0,
            key(&format!("c{k}")),
            N as u64,
            &[(Kind::Int, 10), (Kind::Str, 10)],
        );
        n = with_stream(n, Role::Kinds, s0);
        n = with_stream(n, Role::Ints, s0 + 1);
        n = with_stream(n, Role::Strs, s0 + 2);
        n.stats = Stats {
            distinct: N as u64,
            int: Some((
                100 + *int_items.first().expect("ints") as i64,
                100 + *int_items.last().expect("ints") as i64,
            )),
            str: Some((
                *str_items.first().expect("strs"),
                *str_items.last().expect("strs"),
            )),
            ..Default::default()
        };
        nodes.push(n);
    }
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
        nodes,
        inline: Vec::new(),
    })
}

#[test]
fn a_chain_of_mapped_streams_decodes_each_node_once() {
    // 40 levels: about 10^8 decodes without memoising (the issue's case ran
    // forever); each node once now.
    let bytes = mapped_chain(40, |s| s);
    assert!(bytes.len() < 20_000, "{} bytes", bytes.len());
    let s = Snapshot::from_bytes(bytes.clone()).expect("a chain of 40 is within the limit");
    let t = Instant::now();
    s.verify().expect("valid");
    let rows = s.to_values().expect("export");
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[3]["c40"], serde_json::json!("s03"));
    assert_eq!(rows[13]["c40"], serde_json::json!(113));
    assert_eq!(rows[13]["c39"], serde_json::json!("s13"));
    // The sources named in the streams' first bytes: ints from the node
    // before, string ids from the one before that.
    let roles: Vec<(Role, u32)> = s
        .stream_sources(41)
        .expect("sources")
        .into_iter()
        .map(|(r, e, src)| {
            assert_eq!(e, Encoding::Mapped);
            (r, src)
        })
        .collect();
    assert_eq!(roles, vec![(Role::Ints, 40), (Role::Strs, 39)]);
    assert_eq!(s.stream_sources(1).expect("the base"), vec![]);
    let c40 = s.column("c40").expect("column");
    assert_eq!(
        (c40.i64(13), c40.str_id(3), c40.i64(3)),
        (Some(113), Some(3), None)
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    // And through the CLI, under the memory limit and the timeout.
    for args in [&["verify"][..], &["export"], &["query", "--limit", "3"]] {
        let (code, err) = run_limited(&bytes, args);
        assert_eq!(code, 0, "colsnap {args:?}: {err}");
    }
}

#[test]
fn an_over_deep_mapped_chain_is_refused() {
    let limit = colsnap::read::MAX_MAPPED_CHAIN;
    let ok = Snapshot::from_bytes(mapped_chain(limit, |s| s)).expect("opens");
    ok.verify().expect("a chain at the limit verifies");
    ok.export(&mut std::io::sink(), &ExportOptions::default())
        .expect("a chain at the limit exports");
    // Opening reads only the tail: the chain is refused by verify (which
    // checks the whole graph first) and by any decode that follows it.
    let bytes = mapped_chain(limit + 1, |s| s);
    let s = Snapshot::from_bytes(bytes.clone()).expect("open reads only the tail");
    let d = corrupt_detail(s.verify().map(|_| s.clone()));
    assert!(d.contains("chained 65 deep (the limit is 64)"), "{d}");
    let e = s.export(&mut std::io::sink(), &ExportOptions::default());
    assert!(matches!(e, Err(Error::Corrupt { .. })), "{e:?}");
    let (code, err) = run_limited(&bytes, &["export"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("chained 65 deep (the limit is 64)"), "{err}");
}

#[test]
fn a_mapped_source_out_of_range_fails_inspect_sources_only() {
    // Chain node 1 (node 2) takes its ints from node 99, which is not there.
    let bytes = mapped_chain(2, |s| if s == 1 { 99 } else { s });
    let s = Snapshot::from_bytes(bytes.clone()).expect("open reads only the tail");
    let d = corrupt_detail(s.stream_sources(2).map(|_| s.clone()));
    assert!(d.contains("c1") && d.contains("ints"), "{d}");
    assert!(s.stream_sources(1).expect("the base").is_empty());
    // `inspect` reads the footer only; `--sources` reads the stream's first
    // bytes and names the damage.
    let (code, err) = run_limited(&bytes, &["inspect"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run_limited(&bytes, &["inspect", "--sources"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`c1` ints stream"), "{err}");
}

#[test]
fn a_cycle_of_mapped_streams_is_refused() {
    // Chain node 1 (node 2) takes its ints from chain node 3 (node 4), whose
    // ints come from node 3, whose ints come from node 2: a cycle.
    let bytes = mapped_chain(3, |s| if s == 1 { 4 } else { s });
    let s = Snapshot::from_bytes(bytes.clone()).expect("open reads only the tail");
    let d = corrupt_detail(s.verify().map(|_| s.clone()));
    assert!(d.contains("form a cycle"), "{d}");
    // Decoding meets the cycle at once (no walk to the depth limit).
    let d = corrupt_detail(s.node_data(2).map(|_| s.clone()));
    assert!(d.contains("form a cycle"), "{d}");
    for args in [&["verify"][..], &["export"], &["query", "--sort", "c1"]] {
        let (code, err) = run_limited(&bytes, args);
        assert_eq!(code, 1, "colsnap {args:?}: {err}");
        assert!(err.contains("cycle"), "colsnap {args:?}: {err}");
    }
}

// ------------------------ picked rows: a kind the footer does not count

/// Node `a` (2 rows): the footer counts one null and one integer, but its
/// kinds stream says the first item is an array, and an array has no length to
/// read (the footer lists no list-lengths stream).
fn kinds_beyond_the_footer() -> Vec<u8> {
    let mut kb = Vec::new();
    bitpack::encode(&[Kind::Array as u8, Kind::Null as u8], &mut kb);
    let mut ints = Vec::new();
    varint::put_i64(&mut ints, 5);
    let secs = vec![
        raw(Role::Kinds, Encoding::BitPacked, kb),
        raw(Role::Ints, Encoding::ZigzagVarint, ints),
    ];
    let mut a = node(0, key("a"), 2, &[(Kind::Null, 1), (Kind::Int, 1)]);
    a = with_stream(a, Role::Kinds, 0);
    a = with_stream(a, Role::Ints, 1);
    a.stats = Stats {
        distinct: 1,
        int: Some((5, 5)),
        ..Default::default()
    };
    assemble(secs, |d| Footer {
        rows: 2,
        sections: d,
        tables: vec![empty_table()],
        nodes: vec![root(2), a],
        inline: Vec::new(),
    })
}

#[test]
fn a_picked_item_of_a_kind_the_footer_does_not_count_is_corruption() {
    // Found by fuzzing (open_read_repaired): a page decoded only its rows'
    // items, took the kinds stream's word for an array, and indexed array
    // lengths that were never there (a panic). The whole decode compares
    // every kind count with the footer's; a picked item must lie within
    // its kind's count.
    let bytes = kinds_beyond_the_footer();
    let s = Snapshot::from_bytes(bytes.clone()).expect("open reads only the tail");
    let d = corrupt_detail(s.row(0).map(|_| s.clone()));
    assert!(d.contains("`a`") && d.contains("array item 0 of 0"), "{d}");
    let d = corrupt_detail(s.verify().map(|_| s.clone()));
    assert!(d.contains("kind counts"), "{d}");
    for args in [
        &["query", "--limit", "1"][..],
        &["query", "--sort", "-a", "--limit", "1"],
        &["export"],
        &["verify"],
    ] {
        let (code, err) = run_limited(&bytes, args);
        assert_eq!(code, 1, "colsnap {args:?}: {err}");
        assert!(err.contains("kind counts"), "colsnap {args:?}: {err}");
    }
}

/// A footer (checksums valid) whose element column claims more items than
/// the arrays' lengths add up to: `export` moved elements from row to row
/// (only `verify` compared the two). Every whole-column decode compares
/// them.
#[test]
fn arrays_that_do_not_add_up_to_their_element_column_are_corruption() {
    let good = build_to_vec(
        &b"{\"a\": [1, 2], \"b\": \"x\"}\n{\"a\": [3], \"b\": \"y\"}\n"[..],
        &BuildOptions::default(),
    )
    .unwrap();
    // The list lengths [2, 1] of `a` (a stream kept in the footer) made
    // [1, 1], their checksum made right: 2 elements where `a[]` has 3.
    let bytes = rewrite_footer(&good, |f| {
        let lens = format::STREAM_ROLES
            .iter()
            .position(|r| *r == format::Role::Lens)
            .unwrap();
        let a = f.nodes.iter().position(|n| n.name == key("a")).unwrap();
        let s = f.nodes[a].streams[lens].unwrap() as usize;
        let e = f.sections[s];
        assert!(e.inline && e.codec == Codec::None, "{e:?}");
        let at = e.offset as usize..e.offset as usize + e.stored_len as usize;
        assert_eq!(f.inline[at.clone()], [2, 1], "{e:?}");
        f.inline[at.start] = 1;
        f.sections[s].crc = format::crc32c(&f.inline[at]);
    });
    for args in [&["export"][..], &["query", "--sort", "-a", "--limit", "1"]] {
        let (code, err) = run_limited(&bytes, args);
        assert_eq!(code, 1, "colsnap {args:?}: {err}");
        assert!(
            err.contains("the arrays hold 2 elements, but the element column has 3"),
            "colsnap {args:?}: {err}"
        );
    }
}

/// Footers (checksums valid) that only `verify` refused while `export` and
/// `query` printed other rows: elements under a parent that holds no
/// arrays (the column vanished from every row), one section named by two
/// streams (a node read another's kinds), chunk counts shifted with their
/// sum kept (a page's ids mapped onto their neighbours' strings). Found by
/// a helper's footer fuzzing against `verify`.
#[test]
fn footers_that_only_verify_refused_are_refused_by_every_reader() {
    let good = build_to_vec(
        &b"{\"a\": [1, 2], \"b\": true, \"c\": 5}\n{\"a\": [3], \"b\": false, \"c\": 6}\n"[..],
        &BuildOptions::default(),
    )
    .unwrap();
    let node = |f: &Footer, name: &str| f.nodes.iter().position(|n| n.name == key(name)).unwrap();
    let elem_under_root = rewrite_footer(&good, |f| {
        let b = node(f, "b");
        f.nodes[b].name = NodeName::Elem;
    });
    let e = Snapshot::from_bytes(elem_under_root)
        .unwrap_err()
        .to_string();
    assert!(e.contains("which holds no arrays"), "{e}");
    let ints = format::STREAM_ROLES
        .iter()
        .position(|r| *r == Role::Ints)
        .unwrap();
    let shared = rewrite_footer(&good, |f| {
        let (a, c) = (
            f.nodes
                .iter()
                .position(|n| n.name == NodeName::Elem)
                .unwrap(),
            node(f, "c"),
        );
        f.nodes[c].streams[ints] = f.nodes[a].streams[ints];
    });
    let e = Snapshot::from_bytes(shared).unwrap_err().to_string();
    assert!(e.contains("is also another stream's"), "{e}");

    // Two chunks of 1 KiB or so; the first claims one string more, the
    // second one fewer.
    let text: String = (0..400)
        .map(|i| format!("{{\"s\": \"string number {i:05} of the table\"}}\n"))
        .collect();
    let opts = BuildOptions {
        chunk_size: 1024,
        ..BuildOptions::default()
    };
    let good = build_to_vec(text.as_bytes(), &opts).unwrap();
    let s = Snapshot::from_bytes(good.clone()).unwrap();
    assert!(s.footer().tables[0].chunk_counts.len() > 2);
    let shifted = rewrite_footer(&good, |f| {
        let c = &mut f.tables[0].chunk_counts;
        c[0] += 1;
        c[1] -= 1;
    });
    for args in [&["query", "--limit", "3", "--fields", "s"][..], &["export"]] {
        let (code, err) = run_limited(&shifted, args);
        assert_eq!(code, 1, "colsnap {args:?}: {err}");
        assert!(
            err.contains("string table 0 chunk"),
            "colsnap {args:?}: {err}"
        );
    }
    let s = Snapshot::from_bytes(shifted).unwrap();
    for r in [0u64, 60, 399] {
        match s.row(r) {
            Err(e) => assert!(e.to_string().contains("string"), "{e}"),
            Ok(v) => assert_eq!(
                v["s"],
                format!("string number {r:05} of the table"),
                "row {r}"
            ),
        }
    }
    assert!(s.row(60).is_err() || s.row(0).is_err());
}

// ------------------------------------------ item 14: duplicate sibling keys

#[test]
fn two_siblings_with_one_name_are_refused_at_open() {
    let good = build_to_vec(
        &b"{\"url\": \"a\", \"uri\": \"b\"}\n{\"url\": \"c\", \"uri\": \"d\"}\n"[..],
        &BuildOptions::default(),
    )
    .expect("build");
    let bytes = rewrite_footer(&good, |f| {
        for n in &mut f.nodes {
            if n.name == key("uri") {
                n.name = key("url");
            }
        }
    });
    let d = corrupt_detail(Snapshot::from_bytes(bytes.clone()));
    assert!(d.contains("duplicate key \"url\" under node 0"), "{d}");
    let (code, err) = run_limited(&bytes, &["export"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("duplicate key"), "{err}");
    // The same names under different parents are fine.
    build_to_vec(
        &b"{\"a\": {\"url\": 1}, \"b\": {\"url\": 2}, \"url\": 3}\n"[..],
        &BuildOptions::default(),
    )
    .map(|b| Snapshot::from_bytes(b).expect("open"))
    .expect("build");
}

// ------------------------------------- item 5: counts that need no bytes

/// `u32::MAX` rows of `{"a": 7}`: the ints are a one-value dictionary with
/// zero-width indexes, so the file is tiny; decoding the column needs 34 GB.
fn one_value_dict_rows() -> Vec<u8> {
    let rows = u32::MAX as u64;
    let mut p = Vec::new();
    varint::put_u64(&mut p, 1);
    varint::put_u64(&mut p, dict::to_ordered_i64(7));
    assemble(vec![raw(Role::Ints, Encoding::Dict, p)], |d| {
        let mut a = with_stream(node(0, key("a"), rows, &[(Kind::Int, rows)]), Role::Ints, 0);
        a.stats = Stats {
            distinct: 1,
            int: Some((7, 7)),
            ..Default::default()
        };
        Footer {
            rows,
            sections: d,
            tables: Vec::new(),
            nodes: vec![root(rows), a],
            inline: Vec::new(),
        }
    })
}

#[test]
fn a_count_that_needs_no_bytes_is_refused_by_the_budget() {
    let bytes = one_value_dict_rows();
    assert!(bytes.len() < 200, "{} bytes", bytes.len());
    let s = Snapshot::from_bytes(bytes.clone()).expect("open reads only the footer");
    for r in [
        s.node_data(1).map(|_| ()),
        s.column("a").map(|_| ()),
        s.verify().map(|_| ()),
        s.export(&mut std::io::sink(), &ExportOptions::default())
            .map(|_| ()),
    ] {
        match r {
            Err(Error::Budget { what, need, budget }) => {
                assert!(what.contains("column `a` ints"), "{what}");
                assert_eq!(need, (u32::MAX as u64) * 8);
                assert_eq!(budget, colsnap::read::DEFAULT_MEMORY_BUDGET);
            }
            other => panic!("expected a budget error, got {other:?}"),
        }
    }
    for args in [
        &["verify"][..],
        &["export"],
        &["export", "--rows", "0..1000000000"],
    ] {
        let (code, err) = run_limited(&bytes, args);
        assert_ne!(code, 0, "colsnap {args:?}");
        assert!(err.contains("34359738360 bytes of memory"), "{err}");
    }
    // A few rows are read at their items: the one value, no column decoded.
    let mut one = Vec::new();
    let opts = ExportOptions {
        rows: Some(0..1),
        ndjson: true,
        ..Default::default()
    };
    s.export(&mut one, &opts).unwrap();
    assert_eq!(one, b"{\"a\":7}\n");
    let (code, err) = run_limited(&bytes, &["export", "--rows", "4294967290..", "--ndjson"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run_limited(&bytes, &["inspect"]);
    assert_eq!(code, 0, "{err}");
    // The query engine's per-row arrays are charged too: 2^32-1 rows need
    // a 16 GiB row list before any column is read.
    for args in [
        &["query", "--limit", "1"][..],
        &["query", "--search", "x"],
        &["query", "--sort", "a"],
    ] {
        let (code, err) = run_limited(&bytes, args);
        assert_eq!(code, 1, "colsnap {args:?}: {err}");
        assert!(err.contains("a query over 4294967295 rows needs"), "{err}");
    }
}

/// `u32::MAX` empty rows: 70-odd bytes, nothing to decode, yet a query
/// would need a row list of 16 GiB.
#[test]
fn empty_rows_without_bytes_are_refused_by_the_query_budget() {
    let rows = u32::MAX as u64;
    let bytes = assemble(Vec::new(), |d| Footer {
        rows,
        sections: d,
        tables: Vec::new(),
        nodes: vec![root(rows)],
        inline: Vec::new(),
    });
    assert!(bytes.len() < 200, "{} bytes", bytes.len());
    let s = Snapshot::from_bytes(bytes.clone()).expect("a valid file");
    let engine = colsnap::query::Engine::new(colsnap::query::SnapshotSource::new(s));
    match engine.run(&colsnap::query::Query::default()) {
        Err(Error::Budget { need, budget, .. }) => {
            assert_eq!(need, rows * 24);
            assert_eq!(budget, colsnap::read::DEFAULT_MEMORY_BUDGET);
        }
        other => panic!("expected a budget error, got {other:?}"),
    }
    for args in [&["query"][..], &["query", "--search", "x"]] {
        let (code, err) = run_limited(&bytes, args);
        assert_eq!(code, 1, "colsnap {args:?}: {err}");
        assert!(err.contains("over the budget"), "{err}");
    }
    // Compaction of the same file under the 1 GiB limit: a clean error, no output.
    let dir = tempfile::tempdir().expect("tempdir");
    let (snap, log, out) = (
        dir.path().join("empty.colsnap"),
        dir.path().join("events.ndjson"),
        dir.path().join("out.colsnap"),
    );
    std::fs::write(&snap, &bytes).expect("write");
    std::fs::write(&log, "{\"seq\":1,\"op\":\"delete\",\"key\":1}\n").expect("write");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_colsnap"));
    cmd.arg("compact").args([&snap, &log]).arg("-o").arg(&out);
    let r = limits::run_limited(&cmd, limits::AS_LIMIT, 60);
    let err = r.stderr();
    assert_eq!(r.code(), Some(1), "{err}");
    assert!(!err.contains("memory allocation"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_budget_option_is_honoured() {
    let ndjson: String = (0..1000).map(|i| format!("{{\"n\": {i}}}\n")).collect();
    let s = Snapshot::from_bytes(
        build_to_vec(ndjson.as_bytes(), &BuildOptions::default()).expect("build"),
    )
    .expect("open");
    let opts = |b| ExportOptions {
        memory_budget: Some(b),
        ..Default::default()
    };
    let err = s
        .export(&mut std::io::sink(), &opts(1000))
        .expect_err("8,000 bytes of ints over a 1,000-byte budget");
    assert!(
        matches!(
            &err,
            Error::Budget {
                need: 8000,
                budget: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        s.export(&mut std::io::sink(), &opts(8000)).expect("fits"),
        1000
    );
}

// ------------------------------- item 6: a section that really inflates

/// A zstd frame of RLE blocks that decompresses to `len` zero bytes in
/// about 4 bytes per 128 KiB.
fn zstd_rle_frame(len: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    let mut f = 0xFD2F_B528u32.to_le_bytes().to_vec();
    f.push(0x00); // frame header descriptor: no content size, window descriptor follows
    f.push(7 << 3); // window 2^17
    let mut left = len;
    while left > 0 {
        let n = left.min(BLOCK);
        left -= n;
        let h = (n << 3) as u32 | (1 << 1) | (left == 0) as u32;
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

fn inflating_file(raw_len: u32, real: u64) -> Vec<u8> {
    let stored = zstd_rle_frame(real);
    assemble(
        vec![Sec {
            role: Role::Lens,
            enc: Encoding::Varint,
            codec: Codec::Zstd,
            raw_len,
            stored,
        }],
        |d| Footer {
            rows: 1,
            sections: d,
            tables: Vec::new(),
            nodes: vec![
                root(1),
                with_stream(node(0, key("a"), 1, &[(Kind::Array, 1)]), Role::Lens, 0),
            ],
            inline: Vec::new(),
        },
    )
}

#[test]
fn the_rle_frame_generator_is_right() {
    let f = zstd_rle_frame(300_000);
    let got = compress::decompress(Codec::Zstd, &f, 300_000, None, "t").expect("decodes");
    assert!(got.len() == 300_000 && got.iter().all(|&b| b == 0));
}

#[test]
fn a_section_inflating_to_four_gib_is_refused_in_bounded_memory() {
    let bytes = inflating_file(u32::MAX, u32::MAX as u64);
    assert!(bytes.len() < 200_000, "{} bytes", bytes.len());
    let s = Snapshot::from_bytes(bytes.clone()).expect("open");
    match s.section(0) {
        Err(Error::Budget { need, .. }) => assert_eq!(need, u32::MAX as u64),
        other => panic!("expected a budget error, got {other:?}"),
    }
    for args in [&["verify"][..], &["export"], &["inspect"]] {
        let (code, err) = run_limited(&bytes, args);
        if args[0] != "inspect" {
            assert_eq!(code, 1, "colsnap {args:?}: {err}");
            assert!(err.contains("4294967295 bytes of memory"), "{err}");
        }
    }
    // A section that declares 64 MiB but inflates to 4 GiB stops one byte
    // past its declaration.
    let bytes = inflating_file(64 << 20, u32::MAX as u64);
    let s = Snapshot::from_bytes(bytes.clone()).expect("open");
    let t = Instant::now();
    let err = s.section(0).expect_err("longer than declared");
    assert!(
        err.to_string().contains("header declares 67108864"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    let (code, err) = run_limited(&bytes, &["verify"]);
    assert_eq!(code, 1, "{err}");
}

// ------------------- node counts: what a footer can make a reader allocate

/// A file of format `version` whose footer (stored raw) is `nodes` after
/// an empty directory and no tables: rows 0, no sections, no inline
/// sections (v3, v4), no tables, then NODES as given.
fn footer_of_nodes(version: u16, nodes: &[u8]) -> Vec<u8> {
    footer_of_tables(version, &[&[0u8][..], nodes].concat())
}

/// The same from the table count on.
fn footer_of_tables(version: u16, tables: &[u8]) -> Vec<u8> {
    let mut raw = vec![0u8, 0];
    if version >= format::VERSION_3 {
        raw.push(0);
    }
    raw.extend_from_slice(tables);
    let mut out = format::Header { version }.to_bytes().to_vec();
    let t = Trailer {
        footer_offset: out.len() as u64,
        footer_stored_len: raw.len() as u32,
        footer_raw_len: raw.len() as u32,
        footer_crc: format::crc32c(&raw),
        footer_codec: Codec::None,
        version,
    };
    out.extend_from_slice(&raw);
    out.extend_from_slice(&t.to_bytes());
    out
}

/// A footer claiming as many nodes as its bytes allowed at 3 bytes a node
/// (2.8 million in 16 MiB) made a reader reserve or fill 940 MB of node
/// metadata before reading the first node; at 1 GiB of footer it aborted
/// on a 120 GB allocation. Now a node takes at least 6 bytes, a snapshot
/// at most `MAX_NODES` (2^20) of them, and nodes are made as their bytes
/// are read.
#[test]
fn a_footer_cannot_make_the_reader_allocate_for_nodes_or_tables_it_does_not_hold() {
    let body = 16 << 20;
    for version in [format::VERSION_3, format::VERSION_4] {
        let mut nodes = Vec::new();
        varint::put_u64(&mut nodes, (body as u64) / 6);
        nodes.resize(nodes.len() + body, 0);
        let bytes = footer_of_nodes(version, &nodes);
        let d = corrupt_detail(Snapshot::from_bytes(bytes.clone()));
        assert!(
            d.contains("node count") && d.contains(&format!("limit {}", format::footer::MAX_NODES)),
            "v{version}: {d}"
        );
        // As many as a snapshot may hold, all zeros: node 1 is bad.
        let mut nodes = Vec::new();
        varint::put_u64(&mut nodes, format::footer::MAX_NODES as u64);
        nodes.resize(nodes.len() + body, 0);
        let bytes = footer_of_nodes(version, &nodes);
        let d = corrupt_detail(Snapshot::from_bytes(bytes.clone()));
        assert!(d.starts_with("node 1"), "v{version}: {d}");
        let (code, err) = run_limited(&bytes, &["inspect"]);
        assert_eq!(code, 1, "v{version}: {err}");
    }
    // 2^20 nodes whose every field is valid (a chain of array elements,
    // no items): all of them are made (about 350 MB) before the depth
    // rule refuses them, within the 1 GiB the hostile tests allow.
    let n = format::footer::MAX_NODES;
    let mut nodes = Vec::new();
    varint::put_u64(&mut nodes, n as u64);
    nodes.extend(std::iter::repeat_n(1u8, n - 1)); // parent distances
    nodes.extend(std::iter::repeat_n(2u8, n - 1)); // Elem names
    nodes.extend(std::iter::repeat_n(0u8, 4 * n)); // items, kinds, streams, distinct
    let bytes = footer_of_nodes(format::VERSION_4, &nodes);
    let d = corrupt_detail(Snapshot::from_bytes(bytes.clone()));
    assert!(d.contains("deeper than"), "{d}");
    let (code, err) = run_limited(&bytes, &["inspect"]);
    assert_eq!(code, 1, "{err}");
    // Tables: at most 2^20 too, made as they are read (an empty table
    // takes 6 bytes: 16 MiB of zeros once reserved 180 MB of them).
    let mut tables = Vec::new();
    varint::put_u64(&mut tables, (body as u64) / 6);
    tables.resize(tables.len() + body, 0);
    let d = corrupt_detail(Snapshot::from_bytes(footer_of_tables(
        format::VERSION_4,
        &tables,
    )));
    assert!(
        d.contains("table count") && d.contains(&format!("limit {}", format::footer::MAX_NODES)),
        "{d}"
    );
    let mut tables = Vec::new();
    varint::put_u64(&mut tables, format::footer::MAX_NODES as u64);
    tables.resize(tables.len() + 6 * format::footer::MAX_NODES + 64, 0);
    let bytes = footer_of_tables(format::VERSION_4, &tables);
    let d = corrupt_detail(Snapshot::from_bytes(bytes.clone()));
    assert!(d.contains("root"), "{d}");
    let (code, err) = run_limited(&bytes, &["inspect"]);
    assert_eq!(code, 1, "{err}");
}

// ------------- string chunks that claim more than they hold (a review)

/// `raw` as a PPMd payload (order 16, 1 MiB model).
fn ppmd_payload(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = vec![16u8];
    out.extend_from_slice(&(1u32 << 20).to_le_bytes());
    let mut e = ppmd_rust::Ppmd7Encoder::new(out, 16, 1 << 20).unwrap();
    e.write_all(raw).unwrap();
    e.finish(false).unwrap()
}

fn zstd_payload(raw: &[u8]) -> Vec<u8> {
    let opts = compress::CompressOptions {
        choice: compress::CodecChoice::Force(Codec::Zstd),
        level: 3,
    };
    compress::compress(raw, &opts, None).unwrap().1
}

/// One table of the one chunk `chunk` (`flags`, `counts`, `n_strings`) and
/// a column `s` of the string ids `ids`.
fn one_chunk_file(chunk: Sec, flags: u8, counts: Vec<u32>, n_strings: u64, ids: &[u32]) -> Vec<u8> {
    let rows = ids.len() as u64;
    let mut secs = vec![chunk];
    if rows > 0 {
        let idb: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
        secs.push(raw(Role::Strs, Encoding::PlainU32, idb));
    }
    assemble(secs, |dir| {
        let mut nodes = vec![root(rows)];
        if rows > 0 {
            let mut d = ids.to_vec();
            d.sort();
            d.dedup();
            let mut s = with_stream(node(0, key("s"), rows, &[(Kind::Str, rows)]), Role::Strs, 1);
            s.stats = Stats {
                distinct: d.len() as u64,
                str: Some((d[0], d[d.len() - 1])),
                ..Default::default()
            };
            nodes.push(s);
        }
        let mut f = footer(rows, dir, nodes);
        f.tables = vec![TableMeta {
            flags,
            n_strings,
            first_chunk: 0,
            chunk_counts: counts,
            index_section: None,
            dict_section: None,
        }];
        f
    })
}

/// Files of 100-200 bytes that aborted the reader (under 1 GiB) or were
/// read differently by a lookup and by a whole decode: a string claiming
/// 900 MiB of a chunk declaring 1 GiB (PPMd and zstd), a front-coded chunk
/// of 65,537 strings each sharing all of a 64 KiB one (4 GiB decoded), a
/// row-ordered table claiming 2^32-2 strings in a 2-byte chunk, and chunks
/// holding a string more, or fewer bytes, than declared. Each is now a
/// clean error for every command that reads the strings.
#[test]
fn string_chunks_claiming_more_than_they_hold_are_clean_errors() {
    let mut huge = Vec::new();
    varint::put_u64(&mut huge, 900 << 20);
    huge.extend_from_slice(&[b'x'; 67]);
    // A string chunk section, as the footer declares it.
    let chunk = |codec, raw_len: usize, stored| Sec {
        role: Role::StrChunk,
        enc: Encoding::Raw,
        codec,
        raw_len: raw_len as u32,
        stored,
    };
    let claim = |codec, stored| chunk(codec, 1 << 30, stored);
    let l = 65_535usize;
    let mut fc = Vec::new();
    varint::put_u64(&mut fc, 0);
    varint::put_bytes(&mut fc, &vec![b'a'; l]);
    for _ in 0..=l {
        varint::put_u64(&mut fc, l as u64);
        varint::put_u64(&mut fc, 0);
    }
    let n = l as u32 + 2;
    let bomb = chunk(Codec::Zstd, fc.len(), zstd_payload(&fc));
    let mut one = Vec::new();
    varint::put_bytes(&mut one, b"a");
    let row_ordered = raw(Role::StrChunk, Encoding::Raw, one);
    let mut three = Vec::new();
    for s in ["a", "b", "c"] {
        varint::put_bytes(&mut three, s.as_bytes());
    }
    let more = chunk(Codec::Ppmd, three.len(), ppmd_payload(&three));
    let fewer = chunk(Codec::Ppmd, 1000, ppmd_payload(&three[..4]));
    let all: &[&[&str]] = &[
        &["export"],
        &["query", "--fields", "s"],
        &["verify"],
        &["query", "--sort", "s"],
    ];
    type Case<'a> = (&'a str, Vec<u8>, &'a [&'a [&'a str]]);
    let cases: Vec<Case> = vec![
        (
            "900 MiB string, PPMd",
            one_chunk_file(claim(Codec::Ppmd, ppmd_payload(&huge)), 0, vec![1], 1, &[0]),
            all,
        ),
        (
            "900 MiB string, zstd",
            one_chunk_file(claim(Codec::Zstd, zstd_payload(&huge)), 0, vec![1], 1, &[0]),
            all,
        ),
        // A lookup of string 0 stops at it; reading them all decodes the chunk.
        (
            "front-coded bomb",
            one_chunk_file(bomb, 2, vec![n], n as u64, &[0]),
            &[&["export"], &["verify"]],
        ),
        (
            "row order, 2^32-2 strings",
            one_chunk_file(
                row_ordered,
                4,
                vec![u32::MAX - 1],
                (u32::MAX - 1) as u64,
                &[0],
            ),
            &[&["export"], &["verify"], &["query", "--sort", "s"]],
        ),
        (
            "a string more",
            one_chunk_file(more, 0, vec![2], 2, &[0, 1]),
            all,
        ),
        (
            "bytes fewer",
            one_chunk_file(fewer, 0, vec![2], 2, &[0, 1]),
            all,
        ),
    ];
    for (what, bytes, cmds) in cases {
        for args in cmds {
            let (code, err) = run_limited(&bytes, args);
            assert_eq!(code, 1, "{what}, colsnap {args:?}: {err}");
        }
    }
}

// ----------------------- item 4: sparse columns cost what they hold

/// NDJSON where row i is `{"k<i % keys>": i}`.
fn sparse_ndjson(rows: usize, keys: usize) -> String {
    (0..rows)
        .map(|i| format!("{{\"k{}\": {i}}}\n", i % keys))
        .collect()
}

#[test]
fn sparse_columns_cost_memory_in_proportion_to_their_values() {
    let (rows, keys) = (20_000, 2_000);
    let bytes = build_to_vec(
        sparse_ndjson(rows, keys).as_bytes(),
        &BuildOptions::default(),
    )
    .expect("build");
    let s = Snapshot::from_bytes(bytes.clone()).expect("open");
    // Dense kinds would take 5 bytes x 20,000 items x 2,000 columns = 200 MB;
    // 20,000 present values take about 20,000 x (9 + 8) bytes.
    let budget = 1 << 20;
    let opts = |rows| ExportOptions {
        ndjson: true,
        rows,
        memory_budget: Some(budget),
        ..Default::default()
    };
    let mut out = Vec::new();
    assert_eq!(
        s.export(&mut out, &opts(None)).expect("export"),
        rows as u64
    );
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(text.lines().nth(4321), Some("{\"k321\":4321}"));
    let mut one = Vec::new();
    s.export(&mut one, &opts(Some(7..8))).expect("one row");
    assert_eq!(one, b"{\"k7\":7}\n");
    let n = s.node_by_path("k5").expect("k5");
    match &*s.node_data(n).expect("node").kinds {
        colsnap::read::Kinds::Sparse(k) => {
            assert_eq!(k.base(), Kind::Absent);
            assert_eq!(k.exceptions().len(), rows / keys);
        }
        other => panic!("expected sparse kinds, got {other:?}"),
    }
    let input = sparse_ndjson(rows, keys);
    assert_eq!(
        s.verify_against(input.as_bytes())
            .expect("verify --against"),
        rows as u64
    );
    s.verify().expect("verify");
    let (code, err) = run_limited(&bytes, &["export", "--rows", "0..1"]);
    assert_eq!(code, 0, "{err}");
}

// ------------------------------------------- typed, row-aligned access

#[test]
fn column_views_are_row_aligned_with_nulls_absent_and_mixed_kinds() {
    let ndjson = r#"
{"n": 5, "t": "2024-01-02T03:04:05Z", "f": 1.5, "b": true, "s": "x", "l": [1, 2]}
{"n": null, "t": null, "f": 2, "b": null, "s": null, "l": null}
{"s": 3}
{"n": -7, "t": "2024-05-06T07:08:09.123+02:00", "f": -0.25, "b": false, "s": "y", "l": []}
{"n": 18446744073709551615, "t": 17, "f": null, "s": "x", "l": [3]}
"#;
    let s = Snapshot::from_bytes(
        build_to_vec(ndjson.as_bytes(), &BuildOptions::default()).expect("build"),
    )
    .expect("open");
    let n = s.column("n").expect("n");
    let got: Vec<_> = (0..6).map(|r| n.i64(r)).collect();
    assert_eq!(got, [Some(5), None, None, Some(-7), None, None]);
    let got: Vec<_> = (0..5).map(|r| n.u64(r)).collect();
    assert_eq!(got, [Some(5), None, None, None, Some(u64::MAX)]);
    let kinds: Vec<_> = (0..6).map(|r| n.kind(r)).collect();
    assert_eq!(
        kinds,
        [
            Kind::Int,
            Kind::Null,
            Kind::Absent,
            Kind::Int,
            Kind::UInt,
            Kind::Absent
        ]
    );
    assert!(n.is_null(1) && n.is_null(2) && !n.is_null(0));

    let t = s.column("t").expect("t");
    let got: Vec<_> = (0..5)
        .map(|r| t.timestamp(r).map(|ts| ts.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            Some("2024-01-02T03:04:05Z".to_string()),
            None,
            None,
            Some("2024-05-06T07:08:09.123+02:00".to_string()),
            None
        ]
    );
    // Row 3's timestamp is the second timestamp: packed per kind it sits at
    // index 1, which a row index would miss.
    assert_eq!(t.node_data().ts_secs.len(), 2);
    assert_eq!(t.i64(4), Some(17));

    let f = s.column("f").expect("f");
    let got: Vec<_> = (0..5).map(|r| f.f64(r)).collect();
    assert_eq!(got, [Some(1.5), Some(2.0), None, Some(-0.25), None]);
    let b = s.column("b").expect("b");
    let got: Vec<_> = (0..5).map(|r| b.bool(r)).collect();
    assert_eq!(got, [Some(true), None, None, Some(false), None]);

    let sc = s.column("s").expect("s");
    let table = s.table_of(sc.node()).expect("table");
    let got: Vec<_> = (0..5)
        .map(|r| sc.str_id(r).map(|id| table.get(id).expect("string")))
        .collect();
    let x = Some("x".to_string());
    assert_eq!(got, [x.clone(), None, None, Some("y".into()), x]);
    assert_eq!(sc.i64(2), Some(3));

    let l = s.column("l").expect("l");
    let got: Vec<_> = (0..5).map(|r| l.elements(r)).collect();
    assert_eq!(got, [Some(0..2), None, None, Some(2..2), Some(2..3)]);
    let e = s.column("l[]").expect("elements");
    assert_eq!((e.len(), e.i64(2)), (3, Some(3)));
    assert!(matches!(
        s.column("nope"),
        Err(Error::NotFound { what: "column", .. })
    ));
}

#[test]
fn sparse_and_dense_kinds_agree_on_every_item() {
    // One column present in every 20th row (sparse: at most 1/16 of items differ), one in every other row
    // (dense), both with nulls among the values.
    let ndjson: String = (0..1000)
        .map(|i| {
            let mut o = serde_json::Map::new();
            if i % 20 == 0 {
                o.insert(
                    "rare".into(),
                    if i % 60 == 0 {
                        serde_json::Value::Null
                    } else {
                        i.into()
                    },
                );
            }
            if i % 2 == 0 {
                o.insert(
                    "half".into(),
                    if i % 6 == 0 {
                        serde_json::Value::Null
                    } else {
                        (i * 2).into()
                    },
                );
            }
            o.insert("all".into(), i.into());
            format!("{}\n", serde_json::Value::Object(o))
        })
        .collect();
    let s = Snapshot::from_bytes(
        build_to_vec(ndjson.as_bytes(), &BuildOptions::default()).expect("build"),
    )
    .expect("open");
    let rare = s.column("rare").expect("rare");
    let half = s.column("half").expect("half");
    assert!(matches!(
        &*rare.node_data().kinds,
        colsnap::read::Kinds::Sparse(_)
    ));
    for r in 0..1000usize {
        let want_rare = (r % 20 == 0 && r % 60 != 0).then_some(r as i64);
        let want_half = (r % 2 == 0 && r % 6 != 0).then_some(r as i64 * 2);
        assert_eq!(rare.i64(r), want_rare, "row {r}");
        assert_eq!(half.i64(r), want_half, "row {r}");
        let k = if r % 60 == 0 {
            Kind::Null
        } else if r % 20 == 0 {
            Kind::Int
        } else {
            Kind::Absent
        };
        assert_eq!(rare.kind(r), k, "row {r}");
    }
    assert_eq!(
        s.verify_against(ndjson.as_bytes()).expect("round trip"),
        1000
    );
}

#[test]
fn objects_with_many_sparse_and_dense_fields_export_exactly() {
    // 60 fields: f0..f39 sparse (one row in 40), d0..d9 in every other row,
    // n0..n9 null in most rows (sparse with a non-absent base kind).
    let row = |i: usize| {
        let mut o = serde_json::Map::new();
        o.insert(format!("f{}", i % 40), i.into());
        for d in 0..10 {
            if (i + d).is_multiple_of(2) {
                o.insert(format!("d{d}"), format!("v{}", i % 7).into());
            }
        }
        for n in 0..10 {
            let v = if (i + n).is_multiple_of(50) {
                i.into()
            } else {
                serde_json::Value::Null
            };
            o.insert(format!("n{n}"), v);
        }
        serde_json::Value::Object(o)
    };
    let ndjson: String = (0..2000).map(|i| format!("{}\n", row(i))).collect();
    let s = Snapshot::from_bytes(
        build_to_vec(ndjson.as_bytes(), &BuildOptions::default()).expect("build"),
    )
    .expect("open");
    assert_eq!(s.verify_against(ndjson.as_bytes()).expect("in order"), 2000);
    // Out of order, repeated and skipping rows.
    let rows = [1999u64, 3, 3, 0, 1234, 41, 40, 1998, 5];
    let got = s.rows_json(&rows, None).expect("rows");
    for (r, v) in rows.iter().zip(got) {
        let want = row(*r as usize);
        assert_eq!(v, want, "row {r}");
        // The key order of the export is the schema's, as before.
        let mut w = s.row_writer(None).expect("writer");
        let mut out = Vec::new();
        w.write_row(*r, &mut out).expect("row");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).expect("json"),
            want
        );
    }
    let mut out = Vec::new();
    s.export(
        &mut out,
        &ExportOptions {
            ndjson: true,
            rows: Some(700..703),
            ..Default::default()
        },
    )
    .expect("range");
    let want: String = (700..703).map(|i| format!("{}\n", row(i))).collect();
    let a: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("ndjson");
    let b: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&want)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("ndjson");
    assert_eq!(a, b);
}

// ------------------------------------------- format version 2 (no frames)

/// A version 2 file has no section frames: its directory alone says where
/// each section lies, so a directory whose sections leave a gap, overlap,
/// include an empty section or do not end at the footer is refused at open,
/// and a version 2 file relabelled as version 1 is refused too (its
/// sections have no frames).
#[test]
fn a_version_2_directory_must_tile_the_file() {
    directory_must_tile(format::VERSION_2);
}

/// The same in version 3, whose file sections (all but the inline ones)
/// tile the file as in version 2.
#[test]
fn a_version_3_directory_must_tile_the_file() {
    directory_must_tile(format::VERSION_3);
}

/// And in version 4, whose directory is version 3's.
#[test]
fn a_version_4_directory_must_tile_the_file() {
    directory_must_tile(format::VERSION_4);
}

fn directory_must_tile(version: u16) {
    let input = std::fs::read(common::fixture("github-sample.ndjson")).unwrap();
    let opts = BuildOptions {
        format_version: version,
        ..BuildOptions::default()
    };
    let bytes = build_to_vec(&input[..], &opts).unwrap();
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    assert_eq!(s.header().version, version);
    assert!(s.footer().file_sections() > 4);
    if version >= format::VERSION_3 {
        assert!(s.footer().sections.iter().any(|e| e.inline));
    }
    // The unchanged footer, rewritten raw, is accepted.
    Snapshot::from_bytes(rewrite_footer(&bytes, |_| {}))
        .unwrap()
        .verify()
        .unwrap();
    type Edit = fn(&mut Footer);
    let cases: [(&str, Edit); 4] = [
        ("a gap", |f| f.sections[2].offset += 1),
        ("an overlap", |f| f.sections[2].offset -= 1),
        ("a longer section", |f| f.sections[2].stored_len += 1),
        ("an empty section", |f| {
            let e = &mut f.sections[2];
            (e.stored_len, e.raw_len, e.codec) = (0, 0, Codec::None);
        }),
    ];
    for (what, edit) in cases {
        let r = Snapshot::from_bytes(rewrite_footer(&bytes, edit));
        let d = corrupt_detail(r);
        assert!(
            d.contains("starts at")
                || d.contains("sections end at")
                || d.contains("empty")
                || d.contains("past the footer")
                // A raw section that grows no longer matches its raw length.
                || d.contains("!= raw_len"),
            "{what}: {d}"
        );
    }
    // A last section one byte shorter (the footer moved up to it) tiles,
    // but its bytes no longer have its checksum.
    let shorter = rewrite_footer(&bytes, |f| {
        let last = f.file_sections() - 1;
        f.sections[last].stored_len -= 1
    });
    let err = Snapshot::from_bytes(shorter)
        .and_then(|s| s.verify())
        .expect_err("a shorter section was accepted");
    assert!(err.is_data_error(), "{err}");
    // Relabelled as version 1 (header and trailer), the bytes are read as
    // frames and refused.
    let mut v1 = bytes.clone();
    v1[8] = 1;
    let n = v1.len();
    let t = Trailer::parse(&bytes[n - 32..], n as u64).unwrap();
    v1[n - 32..].copy_from_slice(&Trailer { version: 1, ..t }.to_bytes());
    assert!(Snapshot::from_bytes(v1).and_then(|s| s.verify()).is_err());
    // Header and trailer versions that differ are refused at open.
    let mut mixed = bytes.clone();
    mixed[8] = 1;
    assert!(Snapshot::from_bytes(mixed).is_err());
}

/// Version 3 inline sections (SPEC.md 5.4): a directory whose inline part
/// lies (a string chunk inline, an empty payload, payload bytes missing or
/// left over) is refused at open, and inline payloads that decode to
/// nonsense (the footer's checksum recomputed over them) are errors, never
/// panics.
#[test]
fn inline_sections_are_checked() {
    let input = std::fs::read(common::fixture("github-sample.ndjson")).unwrap();
    let bytes = build_to_vec(&input[..], &BuildOptions::default()).unwrap();
    let s = Snapshot::from_bytes(bytes.clone()).unwrap();
    let n_file = s.footer().file_sections();
    let last = s.footer().sections.len() - 1;
    assert!(n_file < last, "no inline sections");
    type Edit = fn(&mut Footer);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "a string chunk inline",
            |f| f.sections.last_mut().unwrap().role = Role::StrChunk as u8,
            "cannot be inline",
        ),
        (
            "an empty inline section",
            |f| {
                let e = f.sections.last_mut().unwrap();
                let len = e.raw_len as usize;
                (e.raw_len, e.stored_len) = (0, 0);
                let keep = f.inline.len() - len;
                f.inline.truncate(keep);
            },
            "empty section",
        ),
        (
            "payload bytes missing",
            |f| {
                f.inline.pop();
            },
            "inline sections",
        ),
        ("a byte left over", |f| f.inline.push(0), "trailing bytes"),
    ];
    for (what, edit, want) in cases {
        let d = corrupt_detail(Snapshot::from_bytes(rewrite_footer(&bytes, edit)));
        assert!(d.contains(want), "{what}: {d}");
    }
    // Every byte of the inline payloads flipped in turn (the footer's
    // checksum made valid again): open, verify and export end in a value
    // or an error.
    let len = s.footer().inline.len();
    for k in (0..len).step_by(len.div_ceil(200).max(1)) {
        let b = rewrite_footer(&bytes, |f| f.inline[k] ^= 0x55);
        if let Ok(s) = Snapshot::from_bytes(b) {
            let _ = s.verify();
            let _ = s.export(&mut std::io::sink(), &ExportOptions::default());
        }
    }
}

/// A three-row snapshot whose one string column `s` holds ids 0, 1, 2 of a
/// row-ordered table (one plain chunk) of `strings`.
fn row_ordered_table(strings: [&str; 3]) -> Vec<u8> {
    let mut chunk = Vec::new();
    for s in strings {
        varint::put_bytes(&mut chunk, s.as_bytes());
    }
    let ids: Vec<u8> = [0u32, 1, 2].iter().flat_map(|i| i.to_le_bytes()).collect();
    let secs = vec![
        raw(Role::Strs, Encoding::PlainU32, ids),
        raw(Role::StrChunk, Encoding::Raw, chunk),
    ];
    let mut s = with_stream(node(0, key("s"), 3, &[(Kind::Str, 3)]), Role::Strs, 0);
    s.stats = Stats {
        distinct: 3,
        str: Some((0, 2)),
        ..Default::default()
    };
    assemble(secs, |d| Footer {
        rows: 3,
        sections: d,
        tables: vec![TableMeta {
            flags: format::footer::TABLE_ROW_ORDER,
            n_strings: 3,
            first_chunk: 1,
            chunk_counts: vec![3],
            index_section: None,
            dict_section: None,
        }],
        nodes: vec![root(3), s],
        inline: Vec::new(),
    })
}

#[test]
fn a_row_ordered_table_holding_a_string_twice_fails_verify() {
    // The same file with distinct strings verifies and sorts.
    let ok = Snapshot::from_bytes(row_ordered_table(["b", "c", "a"])).expect("opens");
    let rep = ok.verify().expect("distinct strings verify");
    assert_eq!((rep.strings, rep.chunks), (3, 1));
    let (code, err) = run_limited(&row_ordered_table(["b", "c", "a"]), &["verify"]);
    assert_eq!(code, 0, "{err}");
    // Verify checks distinctness on hashes (bounded memory), comparing the
    // strings where hashes are equal; the sort's order finds it too.
    let bytes = row_ordered_table(["a", "b", "a"]);
    let s = Snapshot::from_bytes(bytes.clone()).expect("open reads only the tail");
    let d = corrupt_detail(s.verify().map(|_| s.clone()));
    assert!(
        d.contains("strings 0 and 2 are equal (a table holds each string once)"),
        "{d}"
    );
    let (code, err) = run_limited(&bytes, &["verify"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("string table 0") && err.contains("are equal"),
        "{err}"
    );
    let (code, err) = run_limited(&bytes, &["query", "--sort", "s"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("are equal"), "{err}");
}

#[test]
fn verify_names_the_first_damaged_section_whatever_the_threads() {
    let rows: Vec<serde_json::Value> = (0..300)
        .map(|i| serde_json::json!({"n": i * 7919 % 1000, "s": format!("text {i}"), "t": i % 3 == 0}))
        .collect();
    let text: Vec<u8> = rows
        .iter()
        .flat_map(|r| format!("{r}\n").into_bytes())
        .collect();
    // Every stream in the file (inline ones have no bytes of their own).
    let opts = BuildOptions {
        inline_max: 0,
        ..BuildOptions::default()
    };
    let good = build_to_vec(&text[..], &opts).expect("build");
    let n = Snapshot::from_bytes(good.clone())
        .expect("opens")
        .footer()
        .file_sections();
    assert!(n >= 4, "{n} sections");
    // Damage the second section and the last: the second is named.
    let mut bad = good.clone();
    let f = Snapshot::from_bytes(good).expect("opens").footer().clone();
    for i in [1, n - 1] {
        bad[f.sections[i].offset as usize] ^= 0x55;
    }
    for threads in [1, 2, 4] {
        let opts = colsnap::OpenOptions {
            decode_threads: threads,
            ..Default::default()
        };
        let s = Snapshot::from_source_with(
            std::sync::Arc::new(colsnap::source::MemorySource::new(bad.clone())),
            opts,
        )
        .expect("open reads only the tail");
        let e = s.verify().expect_err("damaged");
        let msg = e.to_string();
        assert!(msg.contains("section 1 "), "{threads} threads: {msg}");
    }
}
