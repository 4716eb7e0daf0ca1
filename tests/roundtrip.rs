//! Whole-snapshot round trips: generated JSON, edge cases, determinism, and
//! every real export in ../shared/data when it is present.

mod common;

use colsnap::compress::{Codec, CodecChoice, CompressOptions};
use colsnap::{BuildOptions, Snapshot};
use common::tiny_opts;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn build(json: &[u8], opts: &BuildOptions) -> Snapshot {
    let bytes = colsnap::build_to_vec(json, opts).expect("build");
    Snapshot::from_bytes(bytes).expect("open")
}

fn roundtrip(rows: &[Value], opts: &BuildOptions) {
    let text = serde_json::to_vec(rows).unwrap();
    let snap = build(&text, opts);
    snap.verify().expect("verify");
    assert_eq!(snap.rows(), rows.len() as u64);
    assert_eq!(snap.to_values().unwrap(), rows);
    // Rows one at a time and a page of every other row in reverse
    // (writers for those rows only: columns read at their items).
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(&snap.row(i as u64).unwrap(), r);
    }
    let page: Vec<u64> = (0..rows.len() as u64).rev().step_by(2).collect();
    let want: Vec<Value> = page.iter().map(|&i| rows[i as usize].clone()).collect();
    assert_eq!(snap.rows_json(&page, None).unwrap(), want);
    // NDJSON of the same rows gives the same snapshot.
    let mut nd = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut nd, r).unwrap();
        nd.push(b'\n');
    }
    if !rows.is_empty() {
        assert_eq!(
            colsnap::build_to_vec(&nd[..], opts).unwrap(),
            snap.read_range(0..snap.file_len()).unwrap()
        );
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1)].prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop_oneof![Just(0.1), Just(-0.0), Just(1e300), Just(5e-324), Just(1.0)].prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        prop_oneof![
            Just(""),
            Just("e\u{301}"),
            Just("😀 astral"),
            Just("a\u{0}b"),
            Just("\"quoted\\"),
            Just("2024-02-03T01:01:09Z"),
            Just("2024-02-03T01:01:09.120+0530"),
            Just("2024-02-30T01:01:09Z"),
            Just("2024-02-03t01:01:09Z"),
        ]
        .prop_map(Value::from),
        "20[0-2][0-9]-0[1-9]-[01][1-9]T[01][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]0[0-9]:?[0-5][0-9])".prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a"),
        Just("b"),
        Just("c"),
        Just("d.e"),
        Just("x[0]"),
        Just(""),
        Just("ü")
    ]
    .prop_map(String::from)
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn rows() -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec(
        proptest::collection::btree_map(key(), value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        0..12,
    )
}

/// Rows of related integer columns, enough of them for `based` ints
/// streams (SPEC.md 4.9): `a` (any i64, extremes included), `b` near `a` or
/// past the i64 range from it, sometimes absent or null, `c` on some rows
/// only (no base for a column with more integers), `o.x` equal to `a`
/// under another parent, and `d` an integer or a string (never based).
fn related_ints() -> impl Strategy<Value = Vec<Value>> {
    let row = (
        prop_oneof![
            any::<i64>(),
            -1_000i64..1_000,
            Just(i64::MIN),
            Just(i64::MAX)
        ],
        prop_oneof![4 => -70i64..70, 1 => any::<i64>()],
        0u8..8,
        any::<i64>(),
        any::<bool>(),
    )
        .prop_map(|(a, delta, shape, c, d_str)| {
            let mut o = Map::new();
            o.insert("a".into(), json!(a));
            match shape {
                0 => {}
                1 => {
                    o.insert("b".into(), Value::Null);
                }
                _ => {
                    o.insert("b".into(), json!(a.wrapping_add(delta)));
                }
            }
            if shape % 3 == 0 {
                o.insert("c".into(), json!(c));
            }
            o.insert("o".into(), json!({"x": a}));
            o.insert("d".into(), if d_str { json!("s") } else { json!(a) });
            Value::Object(o)
        });
    proptest::collection::vec(row, 16..80)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn related_integer_columns_roundtrip(rows in related_ints()) {
        roundtrip(&rows, &BuildOptions::default());
    }

    #[test]
    fn generated_json_roundtrips(rows in rows()) {
        roundtrip(&rows, &BuildOptions::default());
    }

    #[test]
    fn generated_json_roundtrips_with_tiny_chunks(rows in rows()) {
        roundtrip(&rows, &tiny_opts());
    }

    #[test]
    fn every_codec_roundtrips(rows in rows(), codec in 0u8..3) {
        let c = Codec::from_u8(codec).unwrap();
        let opts = BuildOptions { compress: CompressOptions { choice: CodecChoice::Force(c), level: 3 }, ..tiny_opts() };
        roundtrip(&rows, &opts);
    }

    #[test]
    fn string_table_find_and_get(words in proptest::collection::btree_set("\\PC{0,8}", 1..60), probe in "\\PC{0,8}") {
        let rows: Vec<Value> = words.iter().map(|w| json!({ "w": w })).collect();
        let snap = build(&serde_json::to_vec(&rows).unwrap(), &tiny_opts());
        let t = snap.table_of(snap.node_by_path("w").unwrap()).unwrap();
        let sorted: Vec<&String> = words.iter().collect(); // BTreeSet: byte-wise order
        prop_assert_eq!(t.len(), sorted.len() as u64);
        for (i, w) in sorted.iter().enumerate() {
            prop_assert_eq!(&t.get(i as u32).unwrap(), *w);
            prop_assert_eq!(t.find(w).unwrap(), Ok(i as u32));
        }
        let expect = sorted.binary_search(&&probe).map(|i| i as u32).map_err(|i| i as u32);
        prop_assert_eq!(t.find(&probe).unwrap(), expect);
        // A prefix selects a contiguous id range.
        let p: String = probe.chars().take(1).collect();
        let r = t.prefix_range(&p).unwrap();
        let want: Vec<u32> = sorted.iter().enumerate().filter(|(_, w)| w.starts_with(&p)).map(|(i, _)| i as u32).collect();
        prop_assert_eq!((r.start..r.end).collect::<Vec<_>>(), want);
    }
}

#[test]
fn edge_cases_roundtrip() {
    let rows = vec![
        json!({}),
        json!({"a": null, "b": [], "c": {}, "d": [[]], "e": [{}], "f": ""}),
        json!({"a": 1, "b": [1, "x", null, true, 2.5, [3, [4]], {"k": u64::MAX}]}),
        json!({"a": "1", "c": {"x": i64::MIN}, "big": u64::MAX, "neg": i64::MIN, "f": -0.0}),
        json!({"a": 1.5, "nested": {"deep": {"deeper": {"deepest": [{"z": "ß"}]}}}}),
        json!({"t": "2024-01-01T00:00:00Z", "u": "2024-01-01T00:00:00Z"}),
        json!({"t": "not a time", "u": "2024-01-01T00:00:00.000+0000"}),
    ];
    roundtrip(&rows, &BuildOptions::default());
    roundtrip(&rows, &tiny_opts());
}

/// A footer that compresses past 1032x (one long, repetitive key: 42,279
/// bytes of `k` gave an 89-byte file that every reader refused as an
/// "implausible" footer) opens, in every format version; so do keys and
/// values of every kind repeated at length.
#[test]
fn a_footer_that_compresses_past_1032x_opens() {
    let long = "k".repeat(1 << 20);
    let rows = vec![
        json!({ long.as_str(): 1 }),
        json!({ long.as_str(): [long.len()] }),
    ];
    roundtrip(&rows, &BuildOptions::default());
    for v in 1..=4 {
        roundtrip(
            &rows,
            &BuildOptions {
                format_version: v,
                ..BuildOptions::default()
            },
        );
    }
}

#[test]
fn empty_array_is_zero_rows() {
    let snap = build(b"[]", &BuildOptions::default());
    assert_eq!(snap.rows(), 0);
    snap.verify().unwrap();
    assert_eq!(snap.to_values().unwrap(), Vec::<Value>::new());
}

#[test]
fn absent_and_null_differ() {
    let rows = vec![json!({"a": null}), json!({})];
    let snap = build(
        &serde_json::to_vec(&rows).unwrap(),
        &BuildOptions::default(),
    );
    assert_eq!(snap.row(0).unwrap(), json!({"a": null}));
    assert_eq!(snap.row(1).unwrap(), json!({}));
}

#[test]
fn build_is_deterministic_across_input_compression() {
    let rows: Vec<Value> = (0..200)
        .map(|i| json!({"id": i, "title": format!("issue {}", i % 37), "labels": [{"name": format!("l{}", i % 5)}], "at": "2024-02-03T01:01:09Z"}))
        .collect();
    let text = serde_json::to_vec(&rows).unwrap();
    let opts = BuildOptions::default();
    let a = colsnap::build_to_vec(&text[..], &opts).unwrap();
    let b = colsnap::build_to_vec(&text[..], &opts).unwrap();
    assert_eq!(a, b);
    let z = zstd::encode_all(&text[..], 3).unwrap();
    assert_eq!(colsnap::build_to_vec(&z[..], &opts).unwrap(), a);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &text).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(colsnap::build_to_vec(&gz[..], &opts).unwrap(), a);
}

#[test]
fn types_are_inferred() {
    use colsnap::model::ColumnType as T;
    let rows = vec![
        json!({"i": 1, "u": u64::MAX, "f": 1.5, "s": "x", "t": "2024-01-01T00:00:00Z", "b": true, "m": 1, "o": {"k": 1}, "l": [1]}),
        json!({"i": -1, "u": 3, "f": 2.5, "s": null, "t": null, "b": false, "m": "one", "o": null, "l": []}),
    ];
    let snap = build(
        &serde_json::to_vec(&rows).unwrap(),
        &BuildOptions::default(),
    );
    let ty = |p: &str| snap.column_type(snap.node_by_path(p).unwrap());
    assert_eq!(ty("i"), T::I64);
    assert_eq!(ty("u"), T::U64);
    assert_eq!(ty("f"), T::F64);
    assert_eq!(ty("s"), T::String);
    assert_eq!(ty("t"), T::Timestamp);
    assert_eq!(ty("b"), T::Bool);
    assert_eq!(ty("m"), T::Mixed);
    assert_eq!(ty("o"), T::Object);
    assert_eq!(ty("l"), T::List);
    assert_eq!(ty("l[]"), T::I64);
}

/// Every real export beside the repository round-trips to identical JSON.
#[test]
fn shared_data_roundtrips() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "NOTICE: {} not found; skipping the real-data round trip",
            dir.display()
        );
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zst"))
        .collect();
    files.sort();
    for f in files {
        let snap = {
            let r = std::io::BufReader::new(std::fs::File::open(&f).unwrap());
            build_reader(r)
        };
        snap.verify()
            .unwrap_or_else(|e| panic!("{}: verify: {e}", f.display()));
        let r = std::io::BufReader::new(std::fs::File::open(&f).unwrap());
        let n = snap
            .verify_against(r)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        eprintln!(
            "{}: {n} rows, {} columns, {} bytes: identical JSON",
            f.display(),
            snap.columns().len(),
            snap.file_len()
        );
    }
}

fn build_reader(r: impl std::io::Read) -> Snapshot {
    Snapshot::from_bytes(colsnap::build_to_vec(r, &BuildOptions::default()).unwrap()).unwrap()
}

/// An export whose string chunks do not fit its string budget writes the
/// strings of the chunks past the budget in batches (rows with
/// placeholders, then the strings chunk by chunk): the output is the same
/// as with every chunk kept, for arrays and NDJSON, all columns or some,
/// whole snapshots or row ranges, and the chunks are decoded once a batch
/// rather than once a string.
#[test]
fn export_within_a_tiny_string_budget_equals_the_default_export() {
    use colsnap::ExportOptions;
    let rows: Vec<Value> = colsnap_testdata::issues(&colsnap_testdata::GenOptions {
        count: 600,
        ..Default::default()
    })
    .collect();
    let opts = BuildOptions {
        chunk_size: 512,
        long_chunk_size: 2048,
        ..Default::default()
    };
    let snap = common::snapshot_of(&rows, &opts);
    let tables: usize = snap
        .footer()
        .tables
        .iter()
        .map(|t| t.chunk_counts.len())
        .sum();
    assert!(tables > 50, "the test wants many chunks, got {tables}");
    let export = |o: &ExportOptions| {
        let mut out = Vec::new();
        let n = snap.export(&mut out, o).unwrap();
        (n, out)
    };
    for ndjson in [false, true] {
        for columns in [None, Some(vec!["title".to_string(), "labels".to_string()])] {
            for range in [None, Some(17..451)] {
                let base = ExportOptions {
                    ndjson,
                    columns: columns.clone(),
                    rows: range.clone(),
                    ..Default::default()
                };
                let (n, want) = export(&base);
                for budget in [0, 4096, 64 << 10] {
                    let before = snap.stats().chunks_decoded;
                    let (m, got) = export(&ExportOptions {
                        string_budget: Some(budget),
                        ..base.clone()
                    });
                    assert_eq!(m, n);
                    assert!(
                        got == want,
                        "budget {budget}, ndjson {ndjson}, columns {columns:?}, rows {range:?}"
                    );
                    let decoded = snap.stats().chunks_decoded - before;
                    assert!(
                        decoded as usize <= 4 * tables,
                        "budget {budget}: {decoded} chunk decodes for {tables} chunks"
                    );
                }
            }
        }
    }
    // The whole export is the rows, value for value.
    let (_, all) = export(&ExportOptions {
        string_budget: Some(0),
        ..Default::default()
    });
    assert_eq!(serde_json::from_slice::<Vec<Value>>(&all).unwrap(), rows);
}

/// A batched export counts the strings it defers towards the batch, not
/// only the rows' other output: rows of long bodies and few other bytes go
/// out a batch at a time, instead of every body being held until the end
/// (an export of 400 MB of bodies within `--string-memory 64M` peaked at
/// 760 MB).
#[test]
fn an_export_of_long_bodies_goes_out_in_batches_within_its_string_budget() {
    use colsnap::ExportOptions;
    let mut seed = 7u64;
    let mut word = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        format!("w{:x}", seed >> 52)
    };
    let rows: Vec<Value> = (0..300)
        .map(|i| {
            let body: Vec<String> = (0..800).map(|_| word()).collect();
            serde_json::json!({"id": i, "body": body.join(" ")})
        })
        .collect();
    let opts = BuildOptions {
        long_chunk_size: 16 << 10,
        ..Default::default()
    };
    let snap = common::snapshot_of(&rows, &opts);
    let long = snap
        .footer()
        .tables
        .iter()
        .find(|t| t.flags & colsnap::format::footer::TABLE_LONG_TEXT != 0)
        .expect("a long-text table");
    let chunks = long.chunk_counts.len() as u64;
    assert!(
        chunks >= 40,
        "the test wants many long-text chunks, got {chunks}"
    );
    /// Notes the most chunks decoded (or read in part) between two
    /// writes: what one batch held.
    struct Watch {
        snap: Snapshot,
        last: u64,
        most: u64,
        out: Vec<u8>,
    }
    impl std::io::Write for Watch {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let st = self.snap.stats();
            let now = st.chunks_decoded + st.partial_reads;
            self.most = self.most.max(now - self.last);
            self.last = now;
            self.out.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Watch {
        snap: snap.clone(),
        last: snap.stats().chunks_decoded + snap.stats().partial_reads,
        most: 0,
        out: Vec::new(),
    };
    snap.export(
        &mut w,
        &ExportOptions {
            ndjson: true,
            string_budget: Some(128 << 10),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        w.most < chunks / 4,
        "{} of {chunks} chunks were decoded between two writes",
        w.most
    );
    let got: Vec<Value> = w
        .out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(got, rows);
}

/// A column decoded alone (`Snapshot::node_data`, what the query engine
/// loads) maps a chain of mapped string columns whose items are all
/// strings in place, through the source's ids; a column decoded with its
/// sources kept (`Snapshot::column`) maps into a new vector. Both give the
/// same ids for every mapped string column of generated issues, and the
/// in-place path is taken (some column is mapped from a column whose items
/// are all strings).
#[test]
fn mapped_string_columns_decoded_alone_equal_the_whole_decode() {
    use colsnap::format::Role;
    use colsnap::model::Kind;
    let rows: Vec<Value> = colsnap_testdata::issues(&colsnap_testdata::GenOptions {
        count: 1500,
        ..Default::default()
    })
    .collect();
    let snap = common::snapshot_of(&rows, &BuildOptions::default());
    let nodes = &snap.footer().nodes;
    let all_strs = |n: usize| nodes[n].items > 0 && nodes[n].count(Kind::Str) == nodes[n].items;
    let (mut mapped, mut chained) = (0, 0);
    for (n, meta) in nodes.iter().enumerate() {
        let Some(s) = meta.stream(Role::Strs) else {
            continue;
        };
        if snap.footer().sections[s as usize].encoding != colsnap::encoding::Encoding::Mapped {
            continue;
        }
        mapped += 1;
        let m =
            colsnap::encoding::mapped::decode(&snap.section(s).unwrap(), meta.items as usize, "t")
                .unwrap();
        if all_strs(n) && all_strs(m.source as usize) {
            chained += 1;
        }
        let path = snap.path(n as u32).to_string();
        let alone = snap.node_data(n as u32).unwrap();
        let whole = snap.column(&path).unwrap();
        let want: Vec<u32> = (0..whole.len()).filter_map(|i| whole.str_id(i)).collect();
        assert_eq!(alone.strs, want, "column `{path}`");
    }
    assert!(
        chained > 0,
        "{mapped} mapped string columns, none all strings from all strings"
    );
}

/// A short-string table larger than one 64 KiB chunk is cut into small
/// chunks (SPEC.md 7.3: 1 KiB at this size) that share a trained
/// dictionary (7.4, 7.5); rows, pages and NDJSON builds still round trip,
/// and without the dictionary the rows are the same.
#[test]
fn short_table_past_one_chunk_is_cut_small_and_shares_a_dictionary() {
    let opts_gen = colsnap_testdata::GenOptions {
        count: 1500,
        ..Default::default()
    };
    let rows: Vec<Value> = colsnap_testdata::issues(&opts_gen).collect();
    let opts = BuildOptions::default();
    roundtrip(&rows, &opts);
    let snap = build(&serde_json::to_vec(&rows).unwrap(), &opts);
    let foot = snap.footer();
    let t0 = &foot.tables[0];
    assert!(
        t0.chunk_counts.len() >= 64,
        "{} chunks",
        t0.chunk_counts.len()
    );
    assert!(t0.dict_section.is_some(), "table 0 has no dictionary");
    for k in 0..t0.chunk_counts.len() {
        let e = &foot.sections[t0.first_chunk as usize + k];
        assert!(
            e.raw_len <= 1024 || t0.chunk_counts[k] == 1,
            "chunk {k}: {} raw bytes",
            e.raw_len
        );
    }
    let plain = build(
        &serde_json::to_vec(&rows).unwrap(),
        &BuildOptions {
            short_dict_size: 0,
            ..Default::default()
        },
    );
    assert!(plain.footer().tables[0].dict_section.is_none());
    assert_eq!(plain.footer().tables[0].chunk_counts, t0.chunk_counts);
    assert_eq!(plain.to_values().unwrap(), rows);
    // A table that fits one 64 KiB chunk stays one chunk, without a
    // dictionary.
    let small = build(&serde_json::to_vec(&rows[..20]).unwrap(), &opts);
    assert_eq!(small.footer().tables[0].chunk_counts.len(), 1);
    assert!(small.footer().tables[0].dict_section.is_none());
}

/// A column selected under a field whose values are of several kinds
/// (`a.b` where `a` is an object in one row and a list or a string in
/// others) keeps `a` for it: its objects show with only the selected
/// fields, its lists without items (no column under them is selected) and
/// its other values as they are. It used to refuse the lists as a corrupt
/// snapshot.
#[test]
fn a_column_under_a_field_of_several_kinds_exports() {
    let lines = |rows: &[&str]| rows.iter().map(|r| format!("{r}\n")).collect::<String>();
    let input = lines(&[
        r#"{"id":1,"a":{"b":2,"c":3}}"#,
        r#"{"id":2,"a":[1,{"b":4}]}"#,
        r#"{"id":3,"a":"s"}"#,
        r#"{"id":4,"a":[]}"#,
        r#"{"id":5}"#,
    ]);
    let bytes = colsnap::build_to_vec(input.as_bytes(), &BuildOptions::default()).unwrap();
    let snap = Snapshot::from_bytes(bytes).unwrap();
    let export = |cols: &[&str]| {
        let mut out = Vec::new();
        snap.export(
            &mut out,
            &colsnap::ExportOptions {
                ndjson: true,
                columns: Some(cols.iter().map(|c| c.to_string()).collect()),
                ..Default::default()
            },
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        export(&["id", "a.b"]),
        lines(&[
            r#"{"id":1,"a":{"b":2}}"#,
            r#"{"id":2,"a":[]}"#,
            r#"{"id":3,"a":"s"}"#,
            r#"{"id":4,"a":[]}"#,
            r#"{"id":5}"#
        ])
    );
    assert_eq!(
        export(&["a[].b"]),
        lines(&[
            r#"{"a":{}}"#,
            r#"{"a":[1,{"b":4}]}"#,
            r#"{"a":"s"}"#,
            r#"{"a":[]}"#,
            "{}"
        ])
    );
    // The whole field, as built.
    assert_eq!(
        export(&["a"]).lines().nth(1).unwrap(),
        r#"{"a":[1,{"b":4}]}"#
    );
}
