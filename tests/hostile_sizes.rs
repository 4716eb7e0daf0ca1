//! Hostile sizes: tiny files that claim enormous counts, lengths and offsets
//! are refused at once with a precise error, before anything that size is
//! allocated; legitimately huge claims (billions of empty rows) stream.
//!
//! Files are crafted with the library's own format types, with valid
//! checksums, so that the claims themselves are what the reader must judge.

use colsnap::compress::{self, Codec, CodecChoice, CompressOptions};
use colsnap::encoding::{Encoding, varint};
use colsnap::format::{self, Footer, Header, Role, TableMeta, Trailer, VERSION_1};
use colsnap::model::{Kind, NodeName};
use colsnap::{Error, ExportOptions, Snapshot};
use std::io::Write;

mod common;

use common::craft::*;

fn corrupt_detail(r: colsnap::Result<Snapshot>) -> String {
    match r {
        Err(Error::Corrupt { what, detail, .. }) => format!("{what}: {detail}"),
        Err(e) => panic!("expected a corrupt-snapshot error, got {e}"),
        Ok(_) => panic!("a hostile file was accepted"),
    }
}

/// A writer that refuses more than `left` bytes.
struct Capped(usize);

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if b.len() > self.0 {
            return Err(std::io::Error::other("cap reached"));
        }
        self.0 -= b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn two_to_the_40_rows_is_refused_at_open() {
    let rows = 1u64 << 40;
    let bytes = assemble(Vec::new(), |d| footer(rows, d, vec![root(rows)]));
    assert!(bytes.len() < 100, "{} bytes", bytes.len());
    let d = corrupt_detail(Snapshot::from_bytes(bytes));
    assert!(d.contains("1099511627776 rows exceed the limit"), "{d}");
}

#[test]
fn u32_max_empty_rows_are_valid_and_stream() {
    // A legitimately tiny file: 2^32-1 empty objects.
    let rows = u32::MAX as u64;
    let bytes = assemble(Vec::new(), |d| footer(rows, d, vec![root(rows)]));
    let s = Snapshot::from_bytes(bytes).expect("open");
    assert_eq!(s.rows(), rows);
    s.verify()
        .expect("verify is not proportional to empty rows");
    let mut out = Vec::new();
    let n = s
        .export(
            &mut out,
            &ExportOptions {
                ndjson: true,
                rows: Some(rows - 2..rows + 5),
                ..Default::default()
            },
        )
        .expect("export a range");
    assert_eq!((n, out.as_slice()), (2, &b"{}\n{}\n"[..]));
    // The whole export streams: a capped writer stops it, nothing huge is held.
    let err = s
        .export(&mut Capped(1 << 20), &ExportOptions::default())
        .expect_err("cap");
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

fn lens_section(len: u64) -> Sec {
    let mut p = Vec::new();
    varint::put_u64(&mut p, len);
    raw(Role::Lens, Encoding::Varint, p)
}

#[test]
fn a_node_of_two_to_the_32_items_is_refused_at_open() {
    let items = 1u64 << 32;
    let bytes = assemble(vec![lens_section(items)], |d| {
        footer(
            1,
            d,
            vec![
                root(1),
                with_stream(
                    node(0, NodeName::Key("a".into()), 1, &[(Kind::Array, 1)]),
                    Role::Lens,
                    0,
                ),
                node(1, NodeName::Elem, items, &[(Kind::Null, items)]),
            ],
        )
    });
    let d = corrupt_detail(Snapshot::from_bytes(bytes));
    assert!(
        d.contains("node 2") && d.contains("4294967296 items exceed"),
        "{d}"
    );
}

#[test]
fn one_row_of_four_billion_elements_streams() {
    // [{"a": [null × (2^32-1)]}] in a few hundred bytes: valid, and export
    // must stream it rather than build the row in memory.
    let items = u32::MAX as u64;
    let bytes = assemble(vec![lens_section(items)], |d| {
        footer(
            1,
            d,
            vec![
                root(1),
                with_stream(
                    node(0, NodeName::Key("a".into()), 1, &[(Kind::Array, 1)]),
                    Role::Lens,
                    0,
                ),
                node(1, NodeName::Elem, items, &[(Kind::Null, items)]),
            ],
        )
    });
    assert!(bytes.len() < 300);
    let s = Snapshot::from_bytes(bytes).expect("open");
    s.verify().expect("valid");
    let err = s
        .export(&mut Capped(4 << 20), &ExportOptions::default())
        .expect_err("the capped writer stops the export");
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

fn string_file(chunk: Vec<u8>) -> Vec<u8> {
    let ids = 0u32.to_le_bytes().to_vec();
    assemble(
        vec![
            raw(Role::Strs, Encoding::PlainU32, ids),
            raw(Role::StrChunk, Encoding::Raw, chunk),
        ],
        |d| {
            let mut s = with_stream(
                node(0, NodeName::Key("s".into()), 1, &[(Kind::Str, 1)]),
                Role::Strs,
                0,
            );
            s.stats.distinct = 1;
            s.stats.str = Some((0, 0));
            Footer {
                rows: 1,
                sections: d,
                tables: vec![TableMeta {
                    flags: 0,
                    n_strings: 1,
                    first_chunk: 1,
                    chunk_counts: vec![1],
                    index_section: None,
                    dict_section: None,
                }],
                nodes: vec![root(1), s],
                inline: Vec::new(),
            }
        },
    )
}

#[test]
fn a_four_gib_string_claim_is_refused() {
    // The control: a real one-string table reads back.
    let mut ok = Vec::new();
    varint::put_bytes(&mut ok, b"abc");
    let s = Snapshot::from_bytes(string_file(ok)).expect("open");
    s.verify().expect("valid");
    assert_eq!(s.table(0).expect("table").get(0).expect("string"), "abc");

    for claim in [1u64 << 32, u32::MAX as u64, 1 << 62] {
        let mut chunk = Vec::new();
        varint::put_u64(&mut chunk, claim);
        chunk.extend_from_slice(b"abc");
        let s = Snapshot::from_bytes(string_file(chunk)).expect("the footer is fine");
        let err = s.table(0).expect("table").get(0).expect_err("4 GiB string");
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Corrupt { .. })
                && msg.contains(&format!("length {claim} exceeds")),
            "{msg}"
        );
        assert!(s.verify().is_err());
        assert!(
            s.export(&mut std::io::sink(), &ExportOptions::default())
                .is_err()
        );
    }
}

#[test]
fn a_section_past_the_end_is_refused_at_open() {
    let payload = vec![7u8; 8];
    for (grow, what) in [(1u32, "past the footer"), (1 << 30, "past the footer")] {
        let bytes = assemble(
            vec![raw(Role::Lens, Encoding::Varint, payload.clone())],
            |mut d| {
                d[0].stored_len += grow;
                d[0].raw_len += grow;
                footer(0, d, vec![root(0)])
            },
        );
        let d = corrupt_detail(Snapshot::from_bytes(bytes));
        assert!(d.contains(what), "{d}");
    }
    // A section that starts past the file.
    let bytes = assemble(vec![raw(Role::Lens, Encoding::Varint, payload)], |mut d| {
        d[0].offset = u64::MAX / 2;
        footer(0, d, vec![root(0)])
    });
    let d = corrupt_detail(Snapshot::from_bytes(bytes));
    assert!(d.contains("starts at"), "{d}");
}

#[test]
fn huge_counts_in_the_footer_are_refused_before_allocating() {
    let header = Header { version: VERSION_1 }.to_bytes().to_vec();
    // rows 0, then 2^60 sections.
    let mut f = Vec::new();
    varint::put_u64(&mut f, 0);
    varint::put_u64(&mut f, 1 << 60);
    let d = corrupt_detail(Snapshot::from_bytes(finish(
        header.clone(),
        &f,
        Codec::None,
    )));
    assert!(
        d.contains("section count") && d.contains("exceeds the limit"),
        "{d}"
    );
    // rows 0, no sections, 2^40 tables.
    let mut f = Vec::new();
    varint::put_u64(&mut f, 0);
    varint::put_u64(&mut f, 0);
    varint::put_u64(&mut f, 1 << 40);
    let d = corrupt_detail(Snapshot::from_bytes(finish(
        header.clone(),
        &f,
        Codec::None,
    )));
    assert!(d.contains("table count"), "{d}");
    // rows 0, no sections, no tables, 2^40 nodes.
    let mut f = Vec::new();
    varint::put_u64(&mut f, 0);
    varint::put_u64(&mut f, 0);
    varint::put_u64(&mut f, 0);
    varint::put_u64(&mut f, 1 << 40);
    let d = corrupt_detail(Snapshot::from_bytes(finish(header, &f, Codec::None)));
    assert!(d.contains("node count"), "{d}");
}

#[test]
fn an_implausible_footer_length_is_refused() {
    let mut bytes = assemble(Vec::new(), |d| footer(0, d, vec![root(0)]));
    let n = bytes.len();
    let t = Trailer::parse(&bytes[n - 32..], n as u64).expect("trailer");
    let t = Trailer {
        footer_raw_len: 1 << 31,
        footer_codec: Codec::Zstd,
        ..t
    };
    bytes[n - 32..].copy_from_slice(&t.to_bytes());
    let d = corrupt_detail(Snapshot::from_bytes(bytes));
    assert!(d.contains("implausible"), "{d}");
}

#[test]
fn decompression_is_capped_by_the_declared_length() {
    // 64 MiB of zeros compress to a few KiB: declaring less is an error,
    // and no more than the declared length is ever produced.
    let bomb = vec![0u8; 64 << 20];
    for codec in [Codec::Zstd, Codec::Gzip] {
        let (c, stored) = compress::compress(
            &bomb,
            &CompressOptions {
                choice: CodecChoice::Force(codec),
                level: 3,
            },
            None,
        )
        .expect("compress");
        assert_eq!(c, codec);
        assert!(stored.len() < 1 << 20);
        let err = compress::decompress(c, &stored, 1 << 20, None, "bomb").expect_err("capped");
        assert!(matches!(err, Error::Codec { .. }), "{err}");
        // Declaring far more than the frame holds: an error, not a 4 GiB buffer.
        let small = compress::compress(
            &[1u8; 1000],
            &CompressOptions {
                choice: CodecChoice::Force(codec),
                level: 3,
            },
            None,
        )
        .expect("compress")
        .1;
        let err = compress::decompress(c, &small, 1 << 30, None, "claim").expect_err("short");
        assert!(
            err.to_string().contains("decompressed to 1000 bytes"),
            "{err}"
        );
        // Past the section limit (1 GiB here): refused before decompressing.
        let err =
            compress::decompress(c, &small, u32::MAX as usize, None, "claim").expect_err("limit");
        assert!(matches!(err, Error::Budget { .. }), "{err}");
    }
    // The same through a file: a 4 GiB claim on a zstd section.
    let (_, stored) = compress::compress(
        &[3u8; 1000],
        &CompressOptions {
            choice: CodecChoice::Force(Codec::Zstd),
            level: 3,
        },
        None,
    )
    .expect("compress");
    let bytes = assemble(
        vec![Sec {
            role: Role::Lens,
            enc: Encoding::Varint,
            codec: Codec::Zstd,
            raw_len: u32::MAX,
            stored,
        }],
        |d| {
            footer(
                1,
                d,
                vec![
                    root(1),
                    with_stream(
                        node(0, NodeName::Key("a".into()), 1, &[(Kind::Array, 1)]),
                        Role::Lens,
                        0,
                    ),
                ],
            )
        },
    );
    let s = Snapshot::from_bytes(bytes).expect("open");
    let err = s.node_data(1).expect_err("claim");
    assert!(matches!(err, Error::Budget { .. }), "{err}");
    assert!(s.verify().is_err());
}

#[test]
fn deep_schemas_are_refused_at_open() {
    let max = format::footer::MAX_DEPTH;
    let chain = |depth: usize, leaf: Kind| {
        assemble(Vec::new(), move |d| {
            let mut nodes = vec![root(1)];
            for i in 1..=depth {
                let k = if i == depth { leaf } else { Kind::Object };
                nodes.push(node(i as u32 - 1, NodeName::Key("k".into()), 1, &[(k, 1)]));
            }
            footer(1, d, nodes)
        })
    };
    let s = Snapshot::from_bytes(chain(max, Kind::Null)).expect("the deepest legal schema");
    s.verify().expect("valid");
    let row = s.row(0).expect("the deepest row reads back as JSON");
    assert!(row.to_string().matches('{').count() == max);
    let d = corrupt_detail(Snapshot::from_bytes(chain(max, Kind::Object)));
    assert!(d.contains("nested deeper"), "{d}");
    let d = corrupt_detail(Snapshot::from_bytes(chain(max + 1, Kind::Null)));
    assert!(d.contains("nested deeper"), "{d}");
    let d = corrupt_detail(Snapshot::from_bytes(chain(100_000, Kind::Null)));
    assert!(d.contains("nested deeper"), "{d}");
}

#[test]
fn column_paths_cannot_explode() {
    // One 300 KB key with 1,000 children: each child's path repeats the key,
    // 300 MB of paths from a footer that zstd stores in a few KB.
    let key = "k".repeat(300_000);
    let bytes = assemble_with(Vec::new(), Codec::Zstd, |d| {
        let mut nodes = vec![root(0), node(0, NodeName::Key(key), 0, &[])];
        for i in 0..1000 {
            nodes.push(node(1, NodeName::Key(format!("c{i}")), 0, &[]));
        }
        footer(0, d, nodes)
    });
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
    let d = corrupt_detail(Snapshot::from_bytes(bytes));
    assert!(d.contains("column paths need more than"), "{d}");
}
