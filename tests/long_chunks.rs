//! Long-text chunks are cut by stored size: reading one long text fetches
//! at most `long_chunk_fetch` stored bytes (its chunk plus the table's
//! dictionary), whatever the ratio of the text.

mod common;

use colsnap::raw::format::footer::TABLE_LONG_TEXT;
use colsnap::{BuildOptions, LongTextCodec, Snapshot};
use serde_json::{Value, json};

/// Deterministic pseudo-random words: compressible (few distinct words) or
/// not (random letters), so chunks of the same raw size store very
/// differently.
fn text(seed: u64, len: usize, random: bool) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let words = [
        "colsnap", "chunk", "the", "reader", "fetches", "one", "body", "of", "text",
    ];
    let mut s = String::new();
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if random {
            s.push((b'a' + (x % 26) as u8) as char);
        } else {
            s.push_str(words[(x % words.len() as u64) as usize]);
            s.push(' ');
        }
    }
    s
}

fn rows(n: usize, len: usize, random: bool) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"id": i, "body": text(i as u64 + 1, len, random)}))
        .collect()
}

/// Stored bytes of every chunk (and the dictionary) of the long-text table,
/// after checking that every body reads back and is found.
fn long_table(snap: &Snapshot, rows: &[Value]) -> (Vec<(u32, u64, u64)>, u64) {
    let t = long_text_index(snap);
    let table = snap.table(t as u32).unwrap();
    for r in rows {
        let body = r["body"].as_str().unwrap();
        // `find` answers ranks (ids in a sorted table, SPEC.md 7.6).
        let rank = table.find(body).unwrap().expect("every body is found");
        assert_eq!(table.get(table.id_at(rank).unwrap()).unwrap(), body);
    }
    chunk_sizes(snap)
}

/// The verified snapshot's long-text table.
fn long_text_index(snap: &Snapshot) -> usize {
    snap.verify().unwrap();
    snap.footer()
        .tables
        .iter()
        .position(|t| t.flags & TABLE_LONG_TEXT != 0)
        .expect("a long-text table")
}

/// String count, raw and stored bytes of every chunk of the long-text
/// table, and the stored bytes of its dictionary.
fn chunk_sizes(snap: &Snapshot) -> (Vec<(u32, u64, u64)>, u64) {
    let foot = snap.footer();
    let meta = &foot.tables[long_text_index(snap)];
    let dict = meta
        .dict_section
        .map_or(0, |d| foot.sections[d as usize].stored_len as u64);
    let chunks = meta
        .chunk_counts
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let e = &foot.sections[meta.first_chunk as usize + k];
            (n, e.raw_len as u64, e.stored_len as u64)
        })
        .collect();
    (chunks, dict)
}

#[test]
fn compressible_long_text_gets_raw_chunks_larger_than_the_fetch_bound() {
    let rows = rows(400, 3000, false);
    let fetch = 16 << 10;
    let opts = BuildOptions {
        long_chunk_fetch: fetch,
        long_dict_size: 0,
        long_text_codec: LongTextCodec::Zstd,
        ..Default::default()
    };
    let snap = common::snapshot_of(&rows, &opts);
    let (chunks, _) = long_table(&snap, &rows);
    assert!(chunks.len() > 1, "{chunks:?}");
    for &(_, _, stored) in &chunks {
        assert!(stored <= fetch as u64, "{chunks:?}");
    }
    // The ratio is several times: raw chunks are several times the bound.
    assert!(
        chunks.iter().any(|&(_, raw, _)| raw > 3 * fetch as u64),
        "{chunks:?}"
    );
    // Compared with chunks cut at the bound's raw size, fewer and smaller.
    let fixed = common::snapshot_of(
        &rows,
        &BuildOptions {
            long_chunk_fetch: 0,
            long_chunk_size: fetch,
            long_dict_size: 0,
            long_text_codec: LongTextCodec::Zstd,
            ..Default::default()
        },
    );
    let (fixed_chunks, _) = long_table(&fixed, &rows);
    let total = |c: &[(u32, u64, u64)]| c.iter().map(|x| x.2).sum::<u64>();
    assert!(total(&chunks) < total(&fixed_chunks));
    assert!(chunks.len() < fixed_chunks.len());
}

#[test]
fn chunks_over_the_bound_are_split_and_the_index_still_finds_every_string() {
    // Random letters: the sample promises some ratio, yet the bound is
    // small next to single strings, so chunks are split (recursively).
    let mut rows = rows(300, 700, true);
    rows.extend(self::rows(100, 5000, false));
    for (fetch, ppmd) in [
        (1 << 10, true),
        (3 << 10, true),
        (20 << 10, true),
        (3 << 10, false),
    ] {
        for threads in [1, 3] {
            let opts = BuildOptions {
                long_chunk_fetch: fetch,
                long_text_codec: if ppmd {
                    LongTextCodec::Ppmd
                } else {
                    LongTextCodec::Zstd
                },
                threads,
                ..Default::default()
            };
            let snap = common::snapshot_of(&rows, &opts);
            let (chunks, dict) = long_table(&snap, &rows);
            for &(n, _, stored) in &chunks {
                assert!(
                    n == 1 || stored + dict <= fetch as u64,
                    "{fetch}: {chunks:?}"
                );
            }
        }
    }
}

#[test]
fn the_same_bytes_whatever_the_thread_count() {
    let mut rows = rows(200, 900, true);
    rows.extend(self::rows(200, 4000, false));
    let build = |threads, ppmd| {
        colsnap::build_to_vec(
            &serde_json::to_vec(&rows).unwrap()[..],
            &BuildOptions {
                long_chunk_fetch: 8 << 10,
                long_text_codec: if ppmd {
                    LongTextCodec::Ppmd
                } else {
                    LongTextCodec::Zstd
                },
                threads,
                ..Default::default()
            },
        )
        .unwrap()
    };
    for ppmd in [true, false] {
        assert_eq!(build(1, ppmd), build(4, ppmd));
    }
}

#[test]
fn ppmd_chunks_hold_at_most_2_mib_and_store_less_than_zstd() {
    // About 6 MB of compressible long text: PPMd chunks of at most 2 MiB
    // raw, each stored with codec 3 within the fetch bound, no dictionary;
    // the same rows with zstd chunks store more.
    let rows = rows(2000, 3000, false);
    let snap = common::snapshot_of(&rows, &BuildOptions::default());
    let (chunks, dict) = long_table(&snap, &rows);
    assert_eq!(dict, 0, "no dictionary");
    assert!(chunks.len() >= 3, "{chunks:?}");
    for &(n, raw, stored) in &chunks {
        assert!(n == 1 || raw <= colsnap::PPMD_CHUNK as u64, "{chunks:?}");
        assert!(stored <= 1 << 20, "{chunks:?}");
    }
    let foot = snap.footer();
    let t = &foot.tables[long_text_index(&snap)];
    let first = t.first_chunk as usize;
    for s in &foot.sections[first..first + t.chunk_counts.len()] {
        assert_eq!(s.codec, colsnap::Codec::Ppmd);
    }
    let zstd = common::snapshot_of(
        &rows,
        &BuildOptions {
            long_text_codec: LongTextCodec::Zstd,
            ..Default::default()
        },
    );
    let (zchunks, zdict) = long_table(&zstd, &rows);
    let total = |c: &[(u32, u64, u64)]| c.iter().map(|x| x.2).sum::<u64>();
    assert!(
        total(&chunks) < total(&zchunks) + zdict,
        "ppmd {} vs zstd {} + {zdict}",
        total(&chunks),
        total(&zchunks)
    );
}

#[test]
fn chunks_fill_the_fetch_bound() {
    // Compressible words and random letters interleave in sorted order
    // (by first letter), so the ratio changes from chunk to chunk.
    let mut rows = rows(600, 3000, false);
    rows.extend(self::rows(200, 2000, true));
    let fetch = 16 << 10;
    let opts = BuildOptions {
        long_chunk_fetch: fetch,
        long_dict_size: 0,
        long_text_codec: LongTextCodec::Zstd,
        ..Default::default()
    };
    let snap = common::snapshot_of(&rows, &opts);
    let (chunks, _) = long_table(&snap, &rows);
    assert!(chunks.len() >= 8, "{chunks:?}");
    let stored: u64 = chunks.iter().map(|c| c.2).sum();
    for &(n, _, s) in &chunks {
        assert!(n == 1 || s <= fetch as u64, "{chunks:?}");
    }
    // Only a run's last piece may be short: on average chunks fill at
    // least three quarters of the bound.
    assert!(
        stored * 4 >= 3 * fetch as u64 * chunks.len() as u64,
        "{stored} in {} chunks: {chunks:?}",
        chunks.len()
    );
    // Pieces are predicted in groups and compressed in parallel: the cuts
    // do not depend on the thread count.
    let json = serde_json::to_vec(&rows).unwrap();
    let build = |threads| {
        colsnap::build_to_vec(
            &json[..],
            &BuildOptions {
                threads,
                ..opts.clone()
            },
        )
        .unwrap()
    };
    assert_eq!(build(1), build(3));
}

#[test]
fn chunks_fill_the_fetch_bound_after_the_dictionary_trial() {
    // The dictionary trial compresses the table's first chunks (here it
    // keeps no dictionary); what it measured on the first one sets the
    // first prediction's scale. Every chunk keeps within the bound and
    // they fill it, for bounds of a few chunks to tens of them.
    let mut rows = rows(600, 3000, false);
    rows.extend(self::rows(200, 2000, true));
    for fetch in [16 << 10, 48 << 10] {
        let opts = BuildOptions {
            long_chunk_fetch: fetch,
            long_text_codec: LongTextCodec::Zstd,
            ..Default::default()
        };
        let snap = common::snapshot_of(&rows, &opts);
        let (chunks, dict) = long_table(&snap, &rows);
        assert!(chunks.len() >= 4, "{chunks:?}");
        let room = fetch as u64 - dict;
        for &(n, _, s) in &chunks {
            assert!(n == 1 || s <= room, "{fetch} {dict}: {chunks:?}");
        }
        let stored: u64 = chunks.iter().map(|c| c.2).sum();
        assert!(
            stored * 4 >= 3 * room * chunks.len() as u64,
            "{fetch} {dict}: {stored} in {} chunks: {chunks:?}",
            chunks.len()
        );
    }
}

/// The codecs of the long-text table's chunks of a snapshot file.
fn long_codecs(path: &std::path::Path) -> Vec<colsnap::Codec> {
    let snap = Snapshot::open(path).unwrap();
    let foot = snap.footer();
    let t = &foot.tables[long_text_index(&snap)];
    let first = t.first_chunk as usize;
    (first..first + t.chunk_counts.len())
        .map(|i| foot.sections[i].codec)
        .collect()
}

#[test]
fn cli_long_text_codec() {
    use colsnap::Codec;
    let dir = tempfile::tempdir().unwrap();
    let input = common::fixture("github-sample.ndjson");
    let mut sizes = Vec::new();
    for (args, want) in [
        (vec![], Codec::Ppmd),
        (vec!["--long-text-codec", "auto"], Codec::Ppmd),
        (vec!["--long-text-codec", "ppmd"], Codec::Ppmd),
        (vec!["--long-text-codec", "zstd"], Codec::Zstd),
        (vec!["--fast"], Codec::Zstd),
        (vec!["--fast", "--long-text-codec", "ppmd"], Codec::Ppmd),
        // Readers of version 1 predate codec 3.
        (
            vec!["--format-version", "1", "--long-text-codec", "ppmd"],
            Codec::Zstd,
        ),
        (
            vec!["--codec", "gzip", "--long-text-codec", "ppmd"],
            Codec::Gzip,
        ),
    ] {
        let out = dir.path().join(format!("out{}.colsnap", sizes.len()));
        common::cli_build(&input, &out, &args);
        let codecs = long_codecs(&out);
        assert!(!codecs.is_empty());
        assert!(codecs.iter().all(|&c| c == want), "{args:?}: {codecs:?}");
        sizes.push(std::fs::metadata(&out).unwrap().len());
    }
    assert!(sizes[0] == sizes[2] && sizes[0] < sizes[3], "{sizes:?}");
    common::colsnap()
        .args(["build", "x.json", "-o", "y", "--long-text-codec", "lzma"])
        .assert()
        .code(2);
}
