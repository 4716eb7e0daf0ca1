//! The checks behind the fuzz targets. Shared, through `#[path]`, with
//! `tests/fuzz_regressions.rs` of the main crate: keep this file free of
//! dependencies other than `colsnap` and `serde_json`.

use colsnap::{BuildOptions, ExportOptions, Snapshot};
use colsnap::{Codec, CodecChoice, CompressOptions};
use serde_json::Value;
use std::io::Write;

/// Work caps, so that a tiny file that legitimately describes billions of
/// empty rows or elements cannot stall a fuzzer (the library streams such
/// exports; the harness just stops early).
const EXPORT_CAP: usize = 8 << 20;
const ITEM_WALK_CAP: usize = 1 << 16;
const VALUES_ITEMS_CAP: u64 = 1 << 16;

/// A writer that fails once more than `left` bytes were written.
pub struct Capped {
    /// Bytes still accepted.
    pub left: usize,
    /// What was written, when kept.
    pub kept: Option<Vec<u8>>,
}

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if b.len() > self.left {
            return Err(std::io::Error::other("harness export cap reached"));
        }
        self.left -= b.len();
        if let Some(k) = &mut self.kept {
            k.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Build options for fuzzing: fast compression, tiny chunks so that string
/// tables have several chunks and an index.
pub fn fuzz_build_options(sel: u8) -> BuildOptions {
    let choice = match sel % 4 {
        0 => CodecChoice::Auto,
        1 => CodecChoice::Force(Codec::None),
        2 => CodecChoice::Force(Codec::Gzip),
        _ => CodecChoice::Force(Codec::Zstd),
    };
    BuildOptions {
        compress: CompressOptions { choice, level: 1 },
        chunk_size: [1, 16, 64, 4096][(sel as usize >> 2) % 4],
        long_chunk_size: [1, 64, 1024, 1 << 20][(sel as usize >> 4) % 4],
        long_text_min_avg: [0, 8, 256][(sel as usize >> 6) % 3],
        front_coding: sel & 0x80 == 0 || sel & 0x01 == 0,
        ..BuildOptions::default()
    }
}

/// Total items of every node: how much work reading everything costs.
fn total_items(s: &Snapshot) -> u64 {
    s.footer()
        .nodes
        .iter()
        .fold(0u64, |a, n| a.saturating_add(n.items))
}

/// Arbitrary bytes as a snapshot.
pub fn open_read(data: &[u8]) {
    if let Ok(s) = Snapshot::from_bytes(data.to_vec()) {
        read_all(&s);
    }
}

/// Read everything; when the snapshot verifies, every read must succeed.
/// Returns whether it verified.
pub fn read_all(s: &Snapshot) -> bool {
    let f = s.footer();
    let mut all_nodes_ok = true;
    for i in 0..f.nodes.len() as u32 {
        let _ = s.path(i);
        let _ = s.column_type(i);
        let _ = s.children(i);
        match s.node_data(i) {
            Ok(d) => {
                for it in 0..d.len().min(ITEM_WALK_CAP) {
                    let _ = d.kind(it);
                    let _ = d.pos(it);
                    let _ = d.str_id(it);
                    let _ = d.elements(it);
                }
                for j in 0..d.ts_secs.len().min(ITEM_WALK_CAP) {
                    let mut out = String::new();
                    let _ = colsnap::timestamp::format(&d.timestamp(j), &mut out);
                }
            }
            Err(_) => all_nodes_ok = false,
        }
    }
    for c in s.columns() {
        let _ = s.node_by_path(&c.path);
    }
    let mut all_strings_ok = true;
    let mut strings: Vec<(u32, u32, String)> = Vec::new();
    for t in 0..f.tables.len() as u32 {
        let Ok(table) = s.table(t) else {
            all_strings_ok = false;
            continue;
        };
        let starts = table.chunk_starts();
        for (k, &start) in starts.iter().take(table.chunk_count()).enumerate() {
            match table.chunk(k) {
                Ok(c) => {
                    for i in 0..c.len() {
                        let id = (start + i as u64) as u32;
                        match table.get(id) {
                            Ok(st) => {
                                if strings.len() < ITEM_WALK_CAP {
                                    strings.push((t, id, st));
                                }
                            }
                            Err(_) => all_strings_ok = false,
                        }
                    }
                }
                Err(_) => all_strings_ok = false,
            }
        }
        for probe in ["", "a", "m", "user", "\u{7f}", "\u{10FFFF}"] {
            let _ = table.find(probe);
            let _ = table.prefix_range(probe);
        }
        let _ = table.get(u32::MAX);
        let _ = table.locate(table.len().min(u32::MAX as u64) as u32);
    }
    let rows = s.rows().min(100_000);
    let small = total_items(s) <= VALUES_ITEMS_CAP;
    let mut sink = Capped {
        left: EXPORT_CAP,
        kept: small.then(Vec::new),
    };
    let exported = s.export(
        &mut sink,
        &ExportOptions {
            ndjson: false,
            columns: None,
            rows: Some(0..rows),
            ..Default::default()
        },
    );
    let _ = s.export(
        &mut Capped {
            left: EXPORT_CAP,
            kept: None,
        },
        &ExportOptions {
            ndjson: true,
            columns: None,
            rows: Some(rows / 2..rows),
            ..Default::default()
        },
    );
    if let Some(c) = s.columns().into_iter().rev().find(|c| c.path.contains('.')) {
        let _ = s.export(
            &mut Capped {
                left: EXPORT_CAP,
                kept: None,
            },
            &ExportOptions {
                ndjson: true,
                columns: Some(vec![c.path]),
                rows: Some(0..rows),
                ..Default::default()
            },
        );
    }
    let mut values = None;
    let mut picked = None;
    let pick: Vec<u64> = match s.rows() {
        0 => Vec::new(),
        n => vec![n - 1, 0, n / 2, n - 1],
    };
    if small {
        let _ = s.row(0);
        let _ = s.row(s.rows());
        values = Some(s.to_values());
        // A writer for a few rows (columns read at those rows' items).
        picked = Some(s.rows_json(&pick, None));
    }
    let verified = s.verify();
    if let Ok(rep) = &verified {
        // A snapshot that verifies is readable through and through.
        assert!(all_nodes_ok, "verified, but a column does not decode");
        assert!(all_strings_ok, "verified, but a string does not decode");
        assert_eq!(rep.rows, s.rows());
        for (t, id, st) in &strings {
            let table = s.table(*t).expect("table");
            // `find` answers in ranks (ids only in a sorted table; a
            // row-ordered one, SPEC.md 7.6, has its own order): the id
            // comes through `find_id`.
            assert_eq!(
                table.find_id(st).expect("find"),
                Some(*id),
                "verified, but string {id} of table {t} is not found by value"
            );
        }
        if small {
            let exported = exported.expect("verified, but export failed");
            assert_eq!(exported, rows);
            let text = sink.kept.take().expect("kept");
            let parsed: Value = serde_json::from_slice(&text).expect("export is JSON");
            let values = values
                .expect("computed")
                .expect("verified, but to_values failed");
            assert_eq!(parsed, Value::Array(values.clone()));
            let picked = picked
                .expect("computed")
                .expect("verified, but the rows of a picked writer failed");
            let want: Vec<Value> = pick.iter().map(|&r| values[r as usize].clone()).collect();
            assert_eq!(
                picked, want,
                "a picked writer's rows differ from the whole rows"
            );
            // What was exported rebuilds into a snapshot holding the same rows.
            let again = colsnap::build_to_vec(&text[..], &fuzz_build_options(0))
                .expect("exported JSON rebuilds");
            let again = Snapshot::from_bytes(again).expect("reopen");
            assert_eq!(again.to_values().expect("values"), values);
        }
    }
    verified.is_ok()
}

/// Arbitrary bytes as JSON input.
pub fn build_json(data: &[u8]) {
    let sel = data.first().copied().unwrap_or(0);
    let opts = fuzz_build_options(sel);
    let Ok(bytes) = colsnap::build_to_vec(data, &opts) else {
        return;
    };
    let s = Snapshot::from_bytes(bytes).expect("a built snapshot opens");
    if let Err(e) = s.verify() {
        panic!("a built snapshot does not verify: {e}");
    }
    match s.verify_against(data) {
        Ok(n) => assert_eq!(n, s.rows()),
        Err(e) => panic!("the snapshot differs from its input: {e}"),
    }
    assert!(read_all(&s));
}

/// Rows (JSON objects) through a build and an export: what comes back must
/// equal what went in.
pub fn roundtrip(rows: &[Value], sel: u8) {
    let ndjson = sel & 1 == 1 && !rows.is_empty();
    let mut input = Vec::new();
    if ndjson {
        for r in rows {
            serde_json::to_writer(&mut input, r).expect("serialize");
            input.push(b'\n');
        }
    } else {
        serde_json::to_writer(&mut input, rows).expect("serialize");
    }
    let opts = fuzz_build_options(sel.rotate_right(1));
    let bytes = match colsnap::build_to_vec(&input[..], &opts) {
        Ok(b) => b,
        Err(e) => panic!(
            "valid input refused: {e}\ninput: {}",
            String::from_utf8_lossy(&input)
        ),
    };
    let s = Snapshot::from_bytes(bytes).expect("open");
    if let Err(e) = s.verify() {
        panic!("does not verify: {e}");
    }
    let mut out = Vec::new();
    s.export(
        &mut out,
        &ExportOptions {
            ndjson,
            ..ExportOptions::default()
        },
    )
    .expect("export");
    let back: Vec<Value> = if ndjson {
        serde_json::Deserializer::from_slice(&out)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .expect("exported NDJSON parses")
    } else {
        serde_json::from_slice(&out).expect("exported JSON parses")
    };
    assert_eq!(back.len(), rows.len(), "row count changed");
    for (i, (a, b)) in rows.iter().zip(&back).enumerate() {
        assert_eq!(
            a,
            b,
            "row {i} changed\nin:  {a}\nout: {b}\ninput: {}",
            String::from_utf8_lossy(&input)
        );
    }
    assert_eq!(
        s.verify_against(&input[..]).expect("verify_against"),
        s.rows()
    );
}

/// Recompute every checksum of `data` (each section's crc32c, in its frame
/// (format version 1) and in the directory; the footer's; the trailer's)
/// and store the footer
/// uncompressed, so that mutated bytes get past the checksums and reach the
/// decoders behind them. `None` when the footer cannot be located or parsed
/// (then plain `open_read` covers the input).
pub fn repair_checksums(data: &[u8]) -> Option<Vec<u8>> {
    use colsnap::raw::format::{self, Footer, TRAILER_LEN, Trailer};
    let len = data.len();
    if len < format::HEADER_LEN + TRAILER_LEN {
        return None;
    }
    let t = &data[len - TRAILER_LEN..];
    let u32_at = |i: usize| u32::from_le_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    let stored_len = u32_at(8) as usize;
    let raw_len = u32_at(12) as usize;
    let fo = (len - TRAILER_LEN).checked_sub(stored_len)?;
    if fo < format::HEADER_LEN || raw_len > 1 << 24 {
        return None;
    }
    let codec = Codec::from_u8(t[20])?;
    let version = u16::from_le_bytes([t[22], t[23]]);
    if !format::is_known_version(version) {
        return None;
    }
    let mut stored = data[fo..len - TRAILER_LEN].to_vec();
    if codec == Codec::Zstd && version != format::VERSION_1 {
        // Version 2 stores a zstd footer without the frame's magic.
        stored.splice(0..0, format::ZSTD_MAGIC);
    }
    let raw = colsnap::raw::compress::decompress(codec, &stored, raw_len, None, "footer").ok()?;
    let mut footer = Footer::parse(&raw, fo as u64, version).ok()?;
    let mut out = data[..fo].to_vec();
    for e in footer.sections.iter_mut().filter(|e| !e.inline) {
        let p = e.payload_offset() as usize;
        let payload = out.get(p..p + e.stored_len as usize)?;
        e.crc = format::crc32c(payload);
        if e.framed {
            out[p - 4..p].copy_from_slice(&e.crc.to_le_bytes());
        }
    }
    let raw = footer.to_bytes(version);
    let trailer = Trailer {
        footer_offset: fo as u64,
        footer_stored_len: raw.len() as u32,
        footer_raw_len: raw.len() as u32,
        footer_crc: format::crc32c(&raw),
        footer_codec: Codec::None,
        version,
    };
    out.extend_from_slice(&raw);
    out.extend_from_slice(&trailer.to_bytes());
    Some(out)
}

/// Arbitrary bytes as a snapshot, checksums repaired first.
pub fn open_read_repaired(data: &[u8]) {
    if let Some(fixed) = repair_checksums(data) {
        open_read(&fixed);
    }
}
