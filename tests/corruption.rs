//! Corruption: every byte of a snapshot is covered by a checksum or a check.
//!
//! A small snapshot (several column kinds, a short-string table split into
//! many chunks, a long-text table, timestamps, arrays) is damaged in every
//! possible place; `verify` must report each damage, and reading everything
//! (columns, strings, export) must never panic.
//!
//! Run with `--nocapture` to see the counts.

use colsnap::compress::{Codec, CodecChoice, CompressOptions};
use colsnap::{BuildOptions, ExportOptions, Snapshot};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/hardening/mixed.ndjson"
);

fn opts(choice: CodecChoice) -> BuildOptions {
    BuildOptions {
        compress: CompressOptions { choice, level: 3 },
        chunk_size: 96,
        long_chunk_size: 1024,
        ..BuildOptions::default()
    }
}

fn build(choice: CodecChoice) -> Vec<u8> {
    build_version(choice, colsnap::format::VERSION)
}

/// [`build`] in format `version` (1: framed sections; 2, the default: none).
fn build_version(choice: CodecChoice, version: u16) -> Vec<u8> {
    let input = std::fs::read(FIXTURE).expect("fixture");
    let o = BuildOptions {
        format_version: version,
        ..opts(choice)
    };
    let bytes = colsnap::build_to_vec(&input[..], &o).expect("build");
    let s = Snapshot::from_bytes(bytes.clone()).expect("open");
    s.verify().expect("the undamaged snapshot verifies");
    let f = s.footer();
    assert!(f.tables.len() >= 2, "expected a long-text table");
    assert!(
        f.tables[0].chunk_counts.len() >= 2,
        "expected strings in several chunks"
    );
    bytes
}

/// Read everything a reader can read; results are ignored, panics are not.
fn read_everything(s: &Snapshot) {
    let f = s.footer();
    for i in 0..f.nodes.len() as u32 {
        let _ = s.path(i);
        let _ = s.column_type(i);
        if let Ok(d) = s.node_data(i) {
            for it in 0..d.len() {
                let _ = d.kind(it);
                let _ = d.str_id(it);
                let _ = d.elements(it);
            }
        }
    }
    let _ = s.columns();
    for t in 0..f.tables.len() as u32 {
        if let Ok(table) = s.table(t) {
            for id in 0..table.len().min(1 << 16) as u32 {
                let _ = table.get(id);
            }
            for probe in ["", "a", "user1", "zzz", "\u{10FFFF}"] {
                let _ = table.find(probe);
                let _ = table.prefix_range(probe);
            }
        }
    }
    let _ = s.export(&mut std::io::sink(), &ExportOptions::default());
    let _ = s.export(
        &mut std::io::sink(),
        &ExportOptions {
            ndjson: true,
            columns: Some(vec!["user.login".into(), "labels[].name".into()]),
            rows: Some(1..5),
            ..Default::default()
        },
    );
    let _ = s.to_values();
}

/// True when the damaged bytes are refused by `from_bytes` or by `verify`.
fn detected(bytes: Vec<u8>) -> bool {
    match Snapshot::from_bytes(bytes) {
        Err(_) => true,
        Ok(s) => {
            read_everything(&s);
            s.verify().is_err()
        }
    }
}

fn flip_every_byte(bytes: &[u8], name: &str, damage: impl Fn(u8) -> u8) {
    let mut total = 0usize;
    let mut missed = Vec::new();
    for i in 0..bytes.len() {
        let new = damage(bytes[i]);
        if new == bytes[i] {
            continue;
        }
        total += 1;
        let mut c = bytes.to_vec();
        c[i] = new;
        if !detected(c) {
            missed.push(i);
        }
    }
    eprintln!(
        "{name}: {} of {total} damaged bytes detected ({} byte file)",
        total - missed.len(),
        bytes.len()
    );
    assert!(total > 0);
    assert!(
        missed.is_empty(),
        "{name}: undetected at offsets {missed:?}"
    );
}

#[test]
fn every_byte_flip_is_detected() {
    for (choice, label) in [
        (CodecChoice::Auto, "auto codecs"),
        (CodecChoice::Force(Codec::None), "uncompressed"),
    ] {
        let bytes = build(choice);
        flip_every_byte(&bytes, &format!("{label}, xor 0xFF"), |b| b ^ 0xFF);
        flip_every_byte(&bytes, &format!("{label}, xor 0x01"), |b| b ^ 0x01);
    }
    // Format version 1 (frames and padding) stays covered.
    let bytes = build_version(CodecChoice::Auto, colsnap::format::VERSION_1);
    flip_every_byte(&bytes, "version 1, xor 0xFF", |b| b ^ 0xFF);
    // Version 5: integers kept as text, their stream raw in a section of its
    // own and inline in the footer.
    for name in ["conformance/v5/num-text-none.colsnap", "golden/v5.colsnap"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        let bytes = std::fs::read(path).unwrap();
        flip_every_byte(&bytes, &format!("{name}, xor 0x01"), |b| b ^ 0x01);
    }
}

#[test]
fn other_byte_patterns_are_detected() {
    let bytes = build(CodecChoice::Auto);
    flip_every_byte(&bytes, "xor 0x80", |b| b ^ 0x80);
    flip_every_byte(&bytes, "set to 0x00", |_| 0x00);
    flip_every_byte(&bytes, "set to 0xFF", |_| 0xFF);
}

#[test]
fn every_bit_of_footer_and_trailer_is_covered() {
    for choice in [CodecChoice::Auto, CodecChoice::Force(Codec::None)] {
        let bytes = build(choice);
        let s = Snapshot::from_bytes(bytes.clone()).expect("open");
        let start = s.footer_offset() as usize;
        let mut missed = Vec::new();
        let bits = (bytes.len() - start) * 8;
        for bit in 0..bits {
            let mut c = bytes.clone();
            c[start + bit / 8] ^= 1 << (bit % 8);
            if !detected(c) {
                missed.push(bit);
            }
        }
        eprintln!(
            "{} of {bits} flipped footer/trailer bits detected ({} footer+trailer bytes)",
            bits - missed.len(),
            bytes.len() - start
        );
        assert!(missed.is_empty(), "undetected bits {missed:?}");
    }
}

#[test]
fn every_truncation_is_a_clean_error() {
    let bytes = build(CodecChoice::Auto);
    let mut refused = 0usize;
    for n in 0..bytes.len() {
        let r = Snapshot::from_bytes(bytes[..n].to_vec()).and_then(|s| {
            read_everything(&s);
            s.verify()
        });
        let err = r.expect_err("a truncated snapshot was accepted");
        assert!(err.is_data_error(), "length {n}: {err}");
        assert!(!err.to_string().is_empty());
        refused += 1;
    }
    eprintln!(
        "{refused} of {} truncations refused ({} byte file)",
        bytes.len(),
        bytes.len()
    );
    // Bytes appended after the trailer are refused too.
    for extra in [&[0u8][..], &[0; 8], b"CSNP", &bytes[bytes.len() - 32..]] {
        let mut c = bytes.clone();
        c.extend_from_slice(extra);
        assert!(detected(c), "{} appended bytes accepted", extra.len());
    }
}

#[test]
fn truncated_files_on_disk_are_clean_errors() {
    let bytes = build(CodecChoice::Auto);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.colsnap");
    // Every length through the mmap path would be slow; a spread suffices.
    for n in (0..bytes.len())
        .step_by(97)
        .chain([0, 1, 15, 16, 31, 32, 33])
    {
        std::fs::write(&path, &bytes[..n]).expect("write");
        let r = Snapshot::open(&path).and_then(|s| s.verify());
        assert!(r.is_err(), "length {n} accepted");
    }
}

/// A short-string table whose chunks share a dictionary (the conformance
/// file `strings-dict`, both versions): damage to the dictionary or to any
/// chunk is detected, and reading never panics.
#[test]
fn short_table_dictionary_damage_is_detected() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/conformance");
    for file in ["strings-dict.colsnap", "v2/strings-dict.colsnap"] {
        let bytes = std::fs::read(format!("{dir}/{file}")).expect("conformance file");
        let s = Snapshot::from_bytes(bytes.clone()).expect("open");
        assert!(s.footer().tables[0].dict_section.is_some());
        flip_every_byte(&bytes, &format!("{file}, xor 0xFF"), |b| b ^ 0xFF);
        flip_every_byte(&bytes, &format!("{file}, xor 0x01"), |b| b ^ 0x01);
    }
}
