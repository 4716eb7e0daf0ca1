//! Conformance files (`fixtures/conformance/`, SPEC.md section 14): small
//! snapshots that together use every part of the format, each with its input
//! and its expected export. Every file must open, verify and export exactly
//! the expected NDJSON; rebuilding the input with the case's options must
//! reproduce the file byte for byte; and the set as a whole must contain
//! every (role, encoding, codec) combination the writer produces. Every case
//! exists once per format version: `NAME.colsnap` is version 1 (framed
//! sections), `v2/NAME.colsnap` version 2 (sections without frames),
//! `v3/NAME.colsnap` version 3 (small node streams inline in the footer),
//! `v4/NAME.colsnap` version 4 (the footer's nodes field by field), all
//! built from the same input with the same options and exporting the same
//! rows. Version 5 adds one kind (`NumText`: integer literals outside
//! `[-2^63, 2^64)` kept as text), and its writer writes version 4 for any
//! input without one: its cases (`V5_CASES`, `v5/NAME.colsnap`) are those
//! of that kind alone.
//!
//! Regenerate (only when a case is added or the writer deliberately changes
//! its output) with
//! `COLSNAP_REGEN_CONFORMANCE=1 cargo test --test conformance`.

mod common;

use colsnap::format::footer::{Footer, Role, TABLE_FRONT_CODED, TABLE_LONG_TEXT};
use colsnap::{
    BuildOptions, Codec, CodecChoice, CompressOptions, ExportOptions, LongTextCodec, Snapshot,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

/// One conformance file: its name, the options it is built with, and its
/// input (NDJSON text, so that number spellings are kept).
struct Case {
    name: &'static str,
    /// The stem of the input and expected files (cases built from one input
    /// with different options share them).
    stem: &'static str,
    opts: fn() -> BuildOptions,
    input: fn() -> String,
    /// Rewrites the writer's output (for pairs only readers know).
    post: Option<fn(Vec<u8>) -> Vec<u8>>,
}

fn dir() -> PathBuf {
    common::fixture("conformance")
}

fn forced(c: Codec) -> BuildOptions {
    BuildOptions {
        chunk_size: 96,
        // The files predate row-ordered long text (SPEC.md 7.6) and
        // table 0's dictionary (7.5).
        long_text_row_order: false,
        short_dict_size: 0,
        compress: CompressOptions {
            choice: CodecChoice::Force(c),
            level: 19,
        },
        ..Default::default()
    }
}

fn codec_none() -> BuildOptions {
    forced(Codec::None)
}
fn codec_gzip() -> BuildOptions {
    forced(Codec::Gzip)
}
fn codec_zstd() -> BuildOptions {
    forced(Codec::Zstd)
}
fn plain_chunks() -> BuildOptions {
    BuildOptions {
        front_coding: false,
        chunk_size: 48,
        ..forced(Codec::None)
    }
}
fn front_chunks() -> BuildOptions {
    BuildOptions {
        chunk_size: 48,
        ..forced(Codec::None)
    }
}
fn strings_dict() -> BuildOptions {
    BuildOptions {
        chunk_size: 256,
        short_dict_size: 32 << 10,
        // Its `url` ids stay `plain-u32` under zstd, a pair no other file
        // has (`all-zstd`'s ids grow or repeat: differences, dict, mapped).
        delta_string_ids: false,
        ..forced(Codec::Zstd)
    }
}
/// `all-none` without string-id differences: the streams that
/// `ids-plain-gzip` re-encodes.
fn codec_none_no_deltas() -> BuildOptions {
    BuildOptions {
        delta_string_ids: false,
        ..forced(Codec::None)
    }
}
fn long_dict() -> BuildOptions {
    BuildOptions {
        long_chunk_size: 512,
        chunk_size: 256,
        long_text_min_avg: 64,
        long_text_row_order: false,
        // The files predate PPMd long text (codec 3) and table 0's
        // dictionary (SPEC.md 7.5).
        long_text_codec: LongTextCodec::Zstd,
        short_dict_size: 0,
        ..Default::default()
    }
}
fn long_rows() -> BuildOptions {
    BuildOptions {
        long_text_row_order: true,
        ..long_dict()
    }
}
fn long_ppmd() -> BuildOptions {
    BuildOptions {
        long_text_codec: LongTextCodec::Ppmd,
        ..long_rows()
    }
}

fn ndjson(rows: &[Value]) -> String {
    let mut s = String::new();
    for r in rows {
        writeln!(s, "{r}").unwrap();
    }
    s
}

/// A deterministic pseudo-random sequence (64-bit LCG, high bits).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const ALL_ROWS: u64 = 112;

const NAMES: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

/// Small values alternating in sign, `-k, k` for `k = 0, 1, ...`, with a
/// period of a little more than half the rows: one-byte zigzag varints,
/// two-byte deltas, too many distinct values for `dict` and a repetition
/// that compresses.
fn alternating(i: u64) -> i64 {
    let period = 2 * (ALL_ROWS / 4 + 2);
    let i = i % period;
    let k = (i / 2) as i64;
    if i.is_multiple_of(2) { -k } else { k }
}

/// Seconds around the epoch, alternating in sign: zigzag varints
/// of one byte, deltas of two, too many distinct values for `dict`.
fn alternating_secs(i: u64) -> String {
    let v = alternating(i);
    if v < 0 {
        format!("1969-12-31T23:59:{:02}Z", 60 + v)
    } else {
        format!("1970-01-01T00:00:{v:02}Z")
    }
}

/// Every stream encoding the writer produces, with enough values that each
/// section is worth compressing (built three times, once per codec).
fn all_encodings() -> String {
    let mut r = Lcg(7);
    let mut objects = 0u64;
    let rows: Vec<Value> = (0..ALL_ROWS)
        .map(|i| {
            let login = format!("user{:02}", r.next(48));
            let k: u64 = login[4..].parse().unwrap();
            let label = NAMES[r.next(8) as usize];
            let n_labels = r.next(3);
            let labels: Vec<Value> = (0..n_labels)
                .map(|j| {
                    let name = NAMES[((i + j) % 8) as usize];
                    json!({"name": name, "color": format!("c{}", name.len() * 1111)})
                })
                .collect();
            let day = 1 + r.next(28);
            let frac = r.next(1000) * 1_000_000;
            let digits = (i % 4 * 3) as usize;
            let fracs = format!("{frac:09}");
            let styles = ["Z", "+05:30", "-0800", "-00:00", "-0000", "+00:00"];
            let style = styles[(i % 6) as usize];
            let t = if digits == 0 {
                format!("2024-03-{day:02}T12:34:56{style}")
            } else {
                format!("2024-03-{day:02}T12:34:56.{}{style}", &fracs[..digits])
            };
            let mut row = json!({
                "id": 1_000_000 + i * 7,
                "alt": alternating(i),
                "few": ([100_000, 250_000, 999_999][r.next(3) as usize]),
                "big": u64::MAX - r.next(1000),
                "f": (r.next(1000) as f64) / 8.0,
                "user": {"login": login, "id": 10_000 + k * 20, "url": format!("https://ex.com/u/{login}"),
                    // A function of the login in another order: `mapped`.
                    "name": format!("n{:02}", (k * 29) % 48)},
                "title": format!("t{}", r.next(1_000_000)),
                "label": label,
                "labels": labels,
                "t": t,
                "td": format!("2024-01-01T{:02}:00:00+05:00", i % 24),
                "tr": alternating_secs(i),
                // Mostly `t`'s instant or a little after: a `based` stream.
                "tb": if i % 3 == 0 { t.clone() } else { format!("2024-03-{day:02}T12:{:02}:56Z", 34 + i % 20) },
            });
            // Mostly the title again: one of the two is `based` on the other.
            row["title2"] = if i % 7 == 0 {
                json!(format!("u{i}"))
            } else {
                row["title"].clone()
            };
            // A key under a parent that is sometimes not an object.
            row["m"] = if r.next(8) == 0 {
                Value::Null
            } else {
                objects += 1;
                // Ten kinds under the objects, in a short period: a
                // 4-bit parent-masked kinds stream that compresses.
                match objects % 10 {
                    0 => json!({"a": i % 5}),
                    1 => json!({"a": null}),
                    2 => json!({"b": true}),
                    3 => json!({"a": true}),
                    4 => json!({"a": false}),
                    5 => json!({"a": 0.5}),
                    6 => json!({"a": u64::MAX}),
                    7 => json!({"a": {}}),
                    8 => json!({"a": []}),
                    _ => json!({"a": "s"}),
                }
            };
            // A column of every kind.
            row["x"] = match i % 9 {
                0 => Value::Null,
                1 => json!(true),
                2 => json!(false),
                3 => json!(-3),
                4 => json!(u64::MAX),
                5 => json!(2.5),
                6 => json!("s"),
                7 => json!({"k": 1}),
                _ => json!([1, 2]),
            };
            // A count under two names, a few rows apart: the second is
            // `based` on the first (ints, 4.9).
            let stars = 1_000 + (i as i64 * 7_919 * 31) % 900_000;
            row["stars"] = json!(stars);
            row["stars_count"] = json!(stars + i64::from(i % 5 == 0));
            // Sequential keys, sorting like the rows: string ids that grow
            // by one, stored as differences (`delta-zigzag-varint`, 4.2).
            row["seq"] = json!(format!("k{:05}", 100 + i * 3));
            if i % 2 == 1 {
                row.as_object_mut().unwrap().remove("big");
            }
            if i % 4 == 1 {
                row.as_object_mut().unwrap().remove("label");
            }
            row
        })
        .collect();
    ndjson(&rows)
}

fn absent_null() -> String {
    "{\"a\":1,\"b\":null}\n{\"b\":2}\n{\"a\":null}\n{}\n{\"a\":3,\"b\":{\"c\":null}}\n".into()
}

fn numbers() -> String {
    // Int, UInt, Float and their spellings: `1.0`, `1e2` and `-0` (the JSON
    // text decides: only an integer literal is Int/UInt).
    concat!(
        "{\"i\":-9223372036854775808,\"u\":18446744073709551615,\"f\":1.0,\"n\":1,\"z\":-0,\"iu\":1}\n",
        "{\"i\":9223372036854775807,\"u\":9223372036854775808,\"f\":1e2,\"n\":2.5,\"z\":0.0,\"iu\":18446744073709551615}\n",
        "{\"i\":0,\"u\":9223372036854775809,\"f\":-0.0,\"n\":18446744073709551615,\"z\":-0.0,\"iu\":0}\n",
        "{\"i\":-1,\"f\":0.1,\"n\":-7,\"z\":0,\"big\":123456789012345678901234567890}\n",
    )
    .into()
}

fn timestamps() -> String {
    concat!(
        "{\"t\":\"2024-01-02T03:04:05Z\",\"same\":\"2024-01-01T00:00:00Z\",\"mixed\":\"2024-01-01T00:00:00Z\"}\n",
        "{\"t\":\"2024-01-02T03:04:05.5+01:00\",\"same\":\"2024-01-02T00:00:00Z\",\"mixed\":\"not a time\"}\n",
        "{\"t\":\"2024-01-02T03:04:05.123456789-0800\",\"same\":\"1969-12-31T23:59:59Z\",\"mixed\":\"2024-01-01T00:00:00z\"}\n",
        "{\"t\":\"2024-01-02T03:04:05-00:00\",\"same\":\"0001-01-01T00:00:00Z\"}\n",
        "{\"t\":\"2024-01-02T03:04:05.000-0000\",\"same\":\"9999-12-31T23:59:59Z\"}\n",
        "{\"t\":\"2024-01-02T03:04:05+00:00\",\"same\":\"2024-02-29T12:00:00Z\"}\n",
        "{\"t\":\"2024-01-02T03:04:05.12+0000\",\"same\":\"2024-01-01T00:00:00Z\"}\n",
    )
    .into()
}

fn arrays() -> String {
    let rows = vec![
        json!({"tags": ["a", "b"], "labels": [{"name": "bug", "ids": [1, 2]}, {"name": "ui"}], "empty": [], "grid": [[1, 2], [], [3]]}),
        json!({"tags": [], "labels": [], "empty": [], "grid": []}),
        json!({"tags": ["c"], "labels": [{"name": "bug", "ids": []}, 5, null], "empty": [], "grid": [[4]]}),
        json!({"labels": [{"ids": [3]}], "empty": []}),
    ];
    ndjson(&rows)
}

fn empty() -> String {
    // No rows: a JSON array (an input without any value is an error).
    "[]\n".into()
}

fn strings() -> String {
    let words = [
        "https://example.com/a",
        "https://example.com/ab",
        "https://example.com/abc",
        "https://example.com/b",
        "https://example.com/ba",
        "https://example.org/x",
        "https://example.org/xy",
        "plain",
        "plainer",
        "plainest",
        "zeta",
        "",
        "\u{e9}t\u{e9}",
        "\u{1f600}",
    ];
    let rows: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"s": w, "again": words[(i * 5) % words.len()]}))
        .collect();
    ndjson(&rows)
}

/// Many short strings sharing words and URL prefixes: a table 0 of many
/// small chunks that share a dictionary.
fn strings_many() -> String {
    let mut r = Lcg(7);
    let words = [
        "crash", "when", "opening", "large", "file", "fix", "typo", "in", "docs", "add", "support",
        "for", "unicode", "paths", "build", "fails", "on", "windows",
    ];
    let rows: Vec<Value> = (0..160u64)
        .map(|i| {
            let title: Vec<&str> = (0..3 + r.next(5))
                .map(|_| words[r.next(18) as usize])
                .collect();
            json!({
                "title": title.join(" "),
                "url": format!("https://example.com/repos/acme/widgets/issues/{}", 1000 + i * 7),
                "user": format!("https://example.com/users/{}", NAMES[r.next(8) as usize]),
            })
        })
        .collect();
    ndjson(&rows)
}

fn long_text() -> String {
    let mut r = Lcg(3);
    let vocab = [
        "the",
        "issue",
        "crash",
        "when",
        "opening",
        "a",
        "file",
        "with",
        "unicode",
        "name",
        "steps",
        "to",
        "reproduce",
        "expected",
        "behaviour",
        "actual",
        "stack",
        "trace",
        "version",
        "linux",
        "macos",
        "windows",
        "please",
        "fix",
        "thanks",
    ];
    let rows: Vec<Value> = (0..16)
        .map(|i| {
            let mut body = String::from("## Description\n\nSteps to reproduce:\n1. ");
            for _ in 0..60 {
                body.push_str(vocab[r.next(vocab.len() as u64) as usize]);
                body.push(' ');
            }
            write!(body, "\n\n## Environment\nversion 0.{i}.{}\n", r.next(10)).unwrap();
            json!({"n": i, "body": body})
        })
        .collect();
    ndjson(&rows)
}

/// Rows whose long texts come back (a body repeated in a later row, a
/// comment equal to an earlier body), in an order unlike their sorted order.
fn long_text_rows() -> String {
    let mut r = Lcg(11);
    let words = [
        "zebra", "crash", "after", "update", "broken", "build", "on", "macos", "works", "again",
    ];
    let mut text = |head: &str, n: usize| {
        let mut t = String::from(head);
        for _ in 0..n {
            t.push(' ');
            t.push_str(words[r.next(words.len() as u64) as usize]);
        }
        t
    };
    let bodies: Vec<String> = ["Zed", "Bee", "Ant", "Moth", "Cat", "Yak"]
        .iter()
        .map(|h| text(h, 24))
        .collect();
    let comments: Vec<String> = (0..6).map(|i| text(&format!("c{}", 6 - i), 16)).collect();
    let rows: Vec<Value> = (0..12usize)
        .map(|i| {
            json!({
                "n": i,
                "body": bodies[i % 6],
                "comments": [comments[(i * 5) % 6], bodies[(i + 3) % 6]],
            })
        })
        .collect();
    ndjson(&rows)
}

fn mapped() -> String {
    let rows: Vec<Value> = (0..24u64)
        .map(|i| {
            let login = NAMES[(i * 5 % 8) as usize];
            json!({"login": login, "uid": 100 + login.len() as u64 * 10 + (i * 5 % 8), "home": format!("/home/{login}")})
        })
        .collect();
    ndjson(&rows)
}

/// Three timestamp columns: `updated_at` mostly equal to `created_at` or a
/// few minutes after it, `closed_at` (on 18 of 24 rows) equal to
/// `updated_at` or an hour after it: `based` ts-secs streams (4.9).
fn based() -> String {
    let fmt = |secs: i64| {
        let d = secs / 86_400;
        let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
        format!("2024-05-{:02}T{h:02}:{m:02}:{s:02}Z", 1 + d)
    };
    let rows: Vec<Value> = (0..24i64)
        .map(|i| {
            let created = i * 3600 + i * i * 37;
            let updated = created + if i % 3 == 0 { 0 } else { 60 * i };
            let mut row = json!({"created_at": fmt(created), "updated_at": fmt(updated)});
            if i % 4 != 0 {
                row["closed_at"] = json!(fmt(updated + if i % 5 == 0 { 3600 } else { 0 }));
            }
            row
        })
        .collect();
    ndjson(&rows)
}

fn dict() -> String {
    let rows: Vec<Value> = (0..24u64)
        .map(|i| json!({"v": ([-5_000_000i64, 7, 1 << 40][(i % 3) as usize]), "s": (["open", "closed"][(i % 5 == 0) as usize])}))
        .collect();
    ndjson(&rows)
}

fn parent_masked() -> String {
    let rows: Vec<Value> = (0..12u64)
        .map(|i| match i % 4 {
            0 => json!({"user": null}),
            1 => json!({"user": {"login": "ann", "admin": true}}),
            2 => json!({"user": "ghost"}),
            _ => json!({"user": {"login": "bo"}}),
        })
        .collect();
    ndjson(&rows)
}

fn reader_only() -> String {
    concat!(
        "{\"k\":1,\"u\":18446744073709551615,\"t\":\"2024-01-02T03:04:05.5+01:00\",\"a\":[1,2],\"b\":[[]],\"s\":\"x\"}\n",
        "{\"k\":null,\"u\":9223372036854775808,\"t\":\"2024-01-02T03:04:05-0800\",\"a\":[],\"b\":[[1],[2,3]],\"s\":\"y\"}\n",
        "{\"u\":9223372036854775808,\"t\":\"2024-01-02T03:04:05.123Z\",\"a\":[3],\"s\":\"x\"}\n",
    )
    .into()
}

/// Re-encodes the streams of a snapshot (every section stored raw) in the
/// encodings readers accept but the writer never writes (SPEC.md section
/// 4.1, `r`): kinds and ts-layout as `plain-u8`; uints, ts-nanos and
/// ts-offset as `dict`; the first list-lengths stream as `plain-u32`, the
/// others as `dict`; string ids as `plain-u32`. The footer is stored raw.
fn reader_only_rewrite(bytes: Vec<u8>) -> Vec<u8> {
    use colsnap::encoding::{self, Encoding, dict};
    let snap = Snapshot::from_bytes(bytes).unwrap();
    let f = snap.footer().clone();
    let mut payloads = raw_payloads(&snap);
    let mut lens_seen = 0;
    for n in &f.nodes {
        let times = n.count(colsnap::model::Kind::Time) as usize;
        for role in colsnap::format::STREAM_ROLES {
            let Some(s) = n.stream(role) else { continue };
            let (enc, raw) = &payloads[s as usize];
            let what = "rewrite";
            let new = match (role, *enc) {
                (Role::Kinds, Encoding::BitPacked) => Some((
                    Encoding::PlainU8,
                    encoding::decode_u8s(*enc, raw, n.items as usize, what).unwrap(),
                )),
                (Role::TsLayout, Encoding::BitPacked) => Some((
                    Encoding::PlainU8,
                    encoding::decode_u8s(*enc, raw, times, what).unwrap(),
                )),
                (Role::UInts | Role::TsNanos, _) => {
                    let count = if role == Role::UInts {
                        n.count(colsnap::model::Kind::UInt) as usize
                    } else {
                        times
                    };
                    let v = encoding::decode_u64s(*enc, raw, count, what).unwrap();
                    Some((
                        Encoding::Dict,
                        dict::encode_if_useful(v.iter().copied(), v.len()).unwrap(),
                    ))
                }
                (Role::TsOffset, _) => {
                    let v = encoding::decode_i64s(*enc, raw, times, what).unwrap();
                    let keys = v.iter().map(|&x| dict::to_ordered_i64(x));
                    Some((
                        Encoding::Dict,
                        dict::encode_if_useful(keys, v.len()).unwrap(),
                    ))
                }
                (Role::Lens, _) => {
                    let count = n.count(colsnap::model::Kind::Array) as usize;
                    let v = encoding::decode_u32s(*enc, raw, count, what).unwrap();
                    lens_seen += 1;
                    if lens_seen == 1 {
                        let mut out = Vec::new();
                        encoding::encode_u32s(&v, &mut out);
                        Some((Encoding::PlainU32, out))
                    } else {
                        let keys = v.iter().map(|&x| x as u64);
                        Some((
                            Encoding::Dict,
                            dict::encode_if_useful(keys, v.len()).unwrap(),
                        ))
                    }
                }
                (Role::Strs, Encoding::Varint) => {
                    let count = n.count(colsnap::model::Kind::Str) as usize;
                    let v = encoding::decode_u32s(*enc, raw, count, what).unwrap();
                    let mut out = Vec::new();
                    encoding::encode_u32s(&v, &mut out);
                    Some((Encoding::PlainU32, out))
                }
                _ => None,
            };
            if let Some(p) = new {
                payloads[s as usize] = p;
            }
        }
    }
    serialize(f, payloads, Codec::None, snap.header().version)
}

/// Writes a snapshot of format `version` whose sections hold `payloads`
/// (raw, encoded as each says), each compressed with `codec` when that makes
/// it smaller (as the writer does), with `f`'s entries updated and the
/// footer stored raw.
fn serialize(
    mut f: Footer,
    payloads: Vec<(colsnap::encoding::Encoding, Vec<u8>)>,
    codec: Codec,
    version: u16,
) -> Vec<u8> {
    use colsnap::format::{self, Header, SectionHeader, Trailer};
    let framed = version == format::VERSION_1;
    let mut out = Header { version }.to_bytes().to_vec();
    for (e, (enc, raw)) in f.sections.iter_mut().zip(payloads) {
        let (used, mut stored) = compress_as(codec, &raw);
        if used == Codec::Zstd && !framed {
            stored = format::section::strip_zstd_magic(stored).unwrap();
        }
        e.framed = framed;
        // Every section goes to the file: none inline (version 3).
        e.inline = false;
        e.offset = out.len() as u64;
        e.encoding = enc;
        e.codec = used;
        e.raw_len = raw.len() as u32;
        e.stored_len = stored.len() as u32;
        e.crc = format::crc32c(&stored);
        let h = SectionHeader {
            codec: used,
            encoding: enc,
            role: e.role,
            raw_len: e.raw_len,
            stored_len: e.stored_len,
            crc: e.crc,
        };
        if framed {
            out.extend_from_slice(&h.to_bytes());
        }
        out.extend_from_slice(&stored);
        out.resize(e.end() as usize, 0);
    }
    f.inline.clear();
    let footer = f.to_bytes(version);
    let t = Trailer {
        footer_offset: out.len() as u64,
        footer_stored_len: footer.len() as u32,
        footer_raw_len: footer.len() as u32,
        footer_crc: format::crc32c(&footer),
        footer_codec: Codec::None,
        version,
    };
    out.extend_from_slice(&footer);
    out.extend_from_slice(&t.to_bytes());
    out
}

/// `raw` compressed with `codec` where that is smaller (as the writer does).
#[cfg(feature = "write")]
fn compress_as(codec: Codec, raw: &[u8]) -> (Codec, Vec<u8>) {
    let opts = CompressOptions {
        choice: CodecChoice::Force(codec),
        level: 9,
    };
    colsnap::compress::compress(raw, &opts, None).unwrap()
}

/// Without the writer only the raw form exists (files are rewritten only
/// when regenerated, which needs the `write` feature).
#[cfg(not(feature = "write"))]
fn compress_as(codec: Codec, raw: &[u8]) -> (Codec, Vec<u8>) {
    assert_eq!(codec, Codec::None, "compressing needs the write feature");
    (Codec::None, raw.to_vec())
}

/// The sections of a snapshot built with every section stored raw, as
/// (encoding, raw payload).
fn raw_payloads(snap: &Snapshot) -> Vec<(colsnap::encoding::Encoding, Vec<u8>)> {
    let f = snap.footer();
    (0..f.sections.len() as u32)
        .map(|i| {
            let e = &f.sections[i as usize];
            assert_eq!(e.codec, Codec::None);
            (e.encoding, snap.section(i).unwrap().to_vec())
        })
        .collect()
}

/// String ids stored `plain-u32` under gzip: the writer picks `plain-u32`
/// for a string-id stream only when every id is at least 2^21 (tables of
/// millions of strings), too large for a conformance file, so this file
/// re-encodes the id streams of a raw build as `plain-u32` and compresses
/// every section with gzip where gzip is smaller, as the writer would.
fn ids_plain_gzip_rewrite(bytes: Vec<u8>) -> Vec<u8> {
    use colsnap::encoding::{self, Encoding};
    let snap = Snapshot::from_bytes(bytes).unwrap();
    let f = snap.footer().clone();
    let mut payloads = raw_payloads(&snap);
    for n in &f.nodes {
        let Some(s) = n.stream(Role::Strs) else {
            continue;
        };
        let (enc, raw) = &payloads[s as usize];
        if *enc != Encoding::Varint {
            continue;
        }
        let count = n.count(colsnap::model::Kind::Str) as usize;
        let v = encoding::decode_u32s(*enc, raw, count, "rewrite").unwrap();
        let mut out = Vec::new();
        encoding::encode_u32s(&v, &mut out);
        payloads[s as usize] = (Encoding::PlainU32, out);
    }
    serialize(f, payloads, Codec::Gzip, snap.header().version)
}

const CASES: &[Case] = &[
    Case {
        name: "reader-only",
        stem: "reader-only",
        opts: codec_none,
        input: reader_only,
        post: Some(reader_only_rewrite),
    },
    Case {
        name: "absent-null",
        stem: "absent-null",
        opts: codec_none,
        input: absent_null,
        post: None,
    },
    Case {
        name: "numbers",
        stem: "numbers",
        opts: codec_none,
        input: numbers,
        post: None,
    },
    Case {
        name: "timestamps",
        stem: "timestamps",
        opts: codec_none,
        input: timestamps,
        post: None,
    },
    Case {
        name: "arrays",
        stem: "arrays",
        opts: codec_none,
        input: arrays,
        post: None,
    },
    Case {
        name: "empty",
        stem: "empty",
        opts: codec_none,
        input: empty,
        post: None,
    },
    Case {
        name: "strings-plain",
        stem: "strings-plain",
        opts: plain_chunks,
        input: strings,
        post: None,
    },
    Case {
        name: "strings-front-coded",
        stem: "strings-front-coded",
        opts: front_chunks,
        input: strings,
        post: None,
    },
    Case {
        name: "dict",
        stem: "dict",
        opts: codec_none,
        input: dict,
        post: None,
    },
    Case {
        name: "mapped",
        stem: "mapped",
        opts: codec_none,
        input: mapped,
        post: None,
    },
    Case {
        name: "based",
        stem: "based",
        opts: codec_none,
        input: based,
        post: None,
    },
    Case {
        name: "parent-masked",
        stem: "parent-masked",
        opts: codec_none,
        input: parent_masked,
        post: None,
    },
    Case {
        name: "strings-dict",
        stem: "strings-dict",
        opts: strings_dict,
        input: strings_many,
        post: None,
    },
    Case {
        name: "long-text-dict",
        stem: "long-text-dict",
        opts: long_dict,
        input: long_text,
        post: None,
    },
    Case {
        name: "long-text-rows",
        stem: "long-text-rows",
        opts: long_rows,
        input: long_text_rows,
        post: None,
    },
    Case {
        name: "long-text-ppmd",
        stem: "long-text-rows",
        opts: long_ppmd,
        input: long_text_rows,
        post: None,
    },
    Case {
        name: "all-none",
        stem: "all",
        opts: codec_none,
        input: all_encodings,
        post: None,
    },
    Case {
        name: "all-gzip",
        stem: "all",
        opts: codec_gzip,
        input: all_encodings,
        post: None,
    },
    Case {
        name: "ids-plain-gzip",
        stem: "all",
        opts: codec_none_no_deltas,
        input: all_encodings,
        post: Some(ids_plain_gzip_rewrite),
    },
    Case {
        name: "all-zstd",
        stem: "all",
        opts: codec_zstd,
        input: all_encodings,
        post: None,
    },
];

/// Integer literals outside `[-2^63, 2^64)` (SPEC.md 1.3, format version
/// 5): alone, beside every other number kind, in arrays and in objects,
/// enough of them that their stream is a section of its own.
fn num_text() -> String {
    let mut rng = Lcg(0x6e75_6d74);
    let rows: Vec<String> = (0..40u64)
        .map(|i| {
            let digits = 20 + rng.next(30) as usize;
            let mut big = String::from(if i % 3 == 0 { "-" } else { "" });
            big.push(char::from(b'1' + rng.next(9) as u8));
            for _ in 1..digits {
                big.push(char::from(b'0' + rng.next(10) as u8));
            }
            let other = match i % 4 {
                0 => "18446744073709551615".to_string(),
                1 => "-9223372036854775808".to_string(),
                2 => "2.5".to_string(),
                _ => big.clone(),
            };
            format!(
                r#"{{"id":{i},"n":{big},"m":[{other},{big},7],"o":{{"x":{other}}},"s":"{big}"}}"#
            )
        })
        .collect();
    rows.join("\n") + "\n"
}

/// The version 5 cases: one input whose `num-text` stream is stored with
/// each codec.
const V5_CASES: &[Case] = &[
    Case {
        name: "num-text-none",
        stem: "num-text",
        opts: codec_none,
        input: num_text,
        post: None,
    },
    Case {
        name: "num-text-gzip",
        stem: "num-text",
        opts: codec_gzip,
        input: num_text,
        post: None,
    },
    Case {
        name: "num-text-zstd",
        stem: "num-text",
        opts: codec_zstd,
        input: num_text,
        post: None,
    },
];

/// Open, verify and export each version 5 case; rebuild it byte for byte;
/// its export is its input, byte for byte (the integers as written).
#[test]
fn version_5_files_keep_integers_as_their_text() {
    ready();
    for c in V5_CASES {
        let p = snapshot_path(c, colsnap::format::VERSION_5);
        let snap = Snapshot::open(&p).unwrap_or_else(|e| panic!("{}: open: {e}", c.name));
        assert_eq!(snap.header().version, 5, "{}", c.name);
        snap.verify()
            .unwrap_or_else(|e| panic!("{}: verify: {e}", c.name));
        let input = std::fs::read_to_string(path(c.stem, "input.json")).unwrap();
        assert_eq!(input, (c.input)(), "{}: input file", c.name);
        assert_eq!(export(&snap), input, "{}: export", c.name);
        let expected = std::fs::read_to_string(path(c.stem, "expected.ndjson")).unwrap();
        assert_eq!(export(&snap), expected, "{}: expected", c.name);
        // The stream is a section in the file, with the case's codec.
        let f = snap.footer();
        let s = f
            .sections
            .iter()
            .find(|s| s.role == Role::NumText as u8)
            .expect("a num-text stream");
        assert!(!s.inline, "{}", c.name);
        #[cfg(feature = "write")]
        assert!(
            build_case(c, input.as_bytes(), colsnap::format::VERSION_5)
                == std::fs::read(&p).unwrap(),
            "{}: rebuilt file differs",
            c.name
        );
    }
}

fn export(snap: &Snapshot) -> String {
    let mut out = Vec::new();
    snap.export(
        &mut out,
        &ExportOptions {
            ndjson: true,
            ..Default::default()
        },
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

fn path(name: &str, ext: &str) -> PathBuf {
    dir().join(format!("{name}.{ext}"))
}

/// The format versions every case is built in.
const VERSIONS: [u16; 4] = [
    colsnap::format::VERSION_1,
    colsnap::format::VERSION_2,
    colsnap::format::VERSION_3,
    colsnap::format::VERSION_4,
];

/// The snapshot of case `c` in format `version`: version 1 files are
/// `NAME.colsnap`, later ones `vN/NAME.colsnap`.
fn snapshot_path(c: &Case, version: u16) -> PathBuf {
    if version == colsnap::format::VERSION_1 {
        path(c.name, "colsnap")
    } else {
        dir()
            .join(format!("v{version}"))
            .join(format!("{}.colsnap", c.name))
    }
}

/// Case `c` built from `input` in format `version`.
#[cfg(feature = "write")]
fn build_case(c: &Case, input: &[u8], version: u16) -> Vec<u8> {
    let opts = BuildOptions {
        format_version: version,
        ..(c.opts)()
    };
    let bytes = colsnap::build_to_vec(input, &opts).unwrap();
    match c.post {
        Some(post) => post(bytes),
        None => bytes,
    }
}

#[cfg(feature = "write")]
fn regenerate() {
    for c in V5_CASES {
        let input = (c.input)();
        std::fs::write(path(c.stem, "input.json"), &input).unwrap();
        let bytes = build_case(c, input.as_bytes(), colsnap::format::VERSION_5);
        let p = snapshot_path(c, colsnap::format::VERSION_5);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &bytes).unwrap();
        let snap = Snapshot::from_bytes(bytes).unwrap();
        std::fs::write(path(c.stem, "expected.ndjson"), export(&snap)).unwrap();
    }
    for c in CASES {
        let input = (c.input)();
        std::fs::write(path(c.stem, "input.json"), &input).unwrap();
        for version in VERSIONS {
            let bytes = build_case(c, input.as_bytes(), version);
            let p = snapshot_path(c, version);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &bytes).unwrap();
            let snap = Snapshot::from_bytes(bytes).unwrap();
            std::fs::write(path(c.stem, "expected.ndjson"), export(&snap)).unwrap();
        }
    }
}

/// Regenerates the files first when asked to (once, before any test reads
/// them).
fn ready() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "write")]
        if std::env::var_os("COLSNAP_REGEN_CONFORMANCE").is_some() {
            regenerate();
        }
    });
}

#[test]
fn every_conformance_file_reads_verifies_and_exports() {
    ready();
    for (c, version) in CASES.iter().flat_map(|c| VERSIONS.map(|v| (c, v))) {
        let snap = Snapshot::open(snapshot_path(c, version))
            .unwrap_or_else(|e| panic!("{} v{version}: open: {e}", c.name));
        assert_eq!(snap.header().version, version, "{}", c.name);
        snap.verify()
            .unwrap_or_else(|e| panic!("{}: verify: {e}", c.name));
        let expected = std::fs::read_to_string(path(c.stem, "expected.ndjson")).unwrap();
        assert_eq!(export(&snap), expected, "{}: export", c.name);
        // The stored input is the case's input, and the export equals it
        // value for value, except for an integer outside [-2^63, 2^64)
        // before version 5 (held as its nearest binary64).
        let input = std::fs::read_to_string(path(c.stem, "input.json")).unwrap();
        assert_eq!(input, (c.input)(), "{}: input file", c.name);
        if snap.rows() > 0 {
            // (An empty input is refused: a zero-row case has none.)
            assert_eq!(
                snap.verify_against(expected.as_bytes()).unwrap(),
                snap.rows(),
                "{}",
                c.name
            );
        }
        match snap.verify_against(input.as_bytes()) {
            Ok(n) => assert_eq!(n, snap.rows(), "{}", c.name),
            Err(colsnap::Error::Mismatch { detail, .. })
                if version < 5
                    && detail.ends_with(
                        "expected 123456789012345678901234567890, got 1.2345678901234568e+29",
                    ) => {}
            Err(e) => panic!("{} v{version}: {e}", c.name),
        }
    }
}

#[cfg(feature = "write")]
#[test]
fn rebuilding_each_input_reproduces_its_file_byte_for_byte() {
    ready();
    for c in CASES {
        let input = std::fs::read(path(c.stem, "input.json")).unwrap();
        for version in VERSIONS {
            let bytes = build_case(c, &input, version);
            let stored = std::fs::read(snapshot_path(c, version)).unwrap();
            assert!(
                bytes == stored,
                "{} v{version}: rebuilt file differs",
                c.name
            );
        }
    }
}

/// A version 2 file holds the same sections as its version 1 twin, each
/// without its frame and padding, and a zstd payload without the frame's
/// 4-byte magic; the decoded payloads are equal.
#[test]
fn version_2_files_are_version_1_without_frames() {
    ready();
    use colsnap::format::{HEADER_LEN, SECTION_HEADER_LEN, ZSTD_MAGIC};
    for c in CASES {
        let v1 = std::fs::read(snapshot_path(c, 1)).unwrap();
        let v2 = std::fs::read(snapshot_path(c, 2)).unwrap();
        let (s1, s2) = (
            Snapshot::from_bytes(v1.clone()).unwrap(),
            Snapshot::from_bytes(v2.clone()).unwrap(),
        );
        let (f1, f2) = (s1.footer(), s2.footer());
        assert_eq!(f1.sections.len(), f2.sections.len(), "{}", c.name);
        let mut at = HEADER_LEN as u64;
        for (i, (a, b)) in f1.sections.iter().zip(&f2.sections).enumerate() {
            assert!(a.framed && !b.framed);
            assert_eq!(b.offset, at, "{} section {i}: v2 sections tile", c.name);
            at += b.stored_len as u64;
            assert_eq!(
                (a.codec, a.encoding, a.role, a.raw_len),
                (b.codec, b.encoding, b.role, b.raw_len),
                "{} section {i}",
                c.name
            );
            let p1 = &v1[a.range().start as usize + SECTION_HEADER_LEN..a.range().end as usize];
            let p2 = &v2[b.range().start as usize..b.range().end as usize];
            if a.codec == Codec::Zstd {
                assert_eq!(&p1[..4], ZSTD_MAGIC);
                assert_eq!(&p1[4..], p2, "{} section {i}", c.name);
            } else {
                assert_eq!(p1, p2, "{} section {i}", c.name);
            }
            assert_eq!(s1.section(i as u32).unwrap(), s2.section(i as u32).unwrap());
        }
        assert_eq!(at, s2.footer_offset(), "{}", c.name);
        assert!(v2.len() < v1.len() || f1.sections.is_empty(), "{}", c.name);
        assert_eq!(
            (f1.rows, &f1.tables, &f1.nodes),
            (f2.rows, &f2.tables, &f2.nodes)
        );
    }
}

/// A version 3 file holds the sections of its version 2 twin, the small
/// node streams inline (raw, in the footer, numbered after the others) and
/// the rest byte for byte; every section decodes to the same payload, and
/// the file is no larger.
#[test]
fn version_3_files_are_version_2_with_inline_streams() {
    ready();
    use colsnap::format::HEADER_LEN;
    let mut inline = 0;
    for c in CASES {
        let v2 = std::fs::read(snapshot_path(c, 2)).unwrap();
        let v3 = std::fs::read(snapshot_path(c, 3)).unwrap();
        let (s2, s3) = (
            Snapshot::from_bytes(v2.clone()).unwrap(),
            Snapshot::from_bytes(v3.clone()).unwrap(),
        );
        let (f2, f3) = (s2.footer(), s3.footer());
        assert_eq!(f2.sections.len(), f3.sections.len(), "{}", c.name);
        assert_eq!(
            (f2.rows, f2.tables.len(), f2.nodes.len()),
            (f3.rows, f3.tables.len(), f3.nodes.len()),
            "{}",
            c.name
        );
        // The tables hold the same chunks, index and dictionary (numbered
        // apart: in version 3 the inline sections come last).
        for (a, b) in f2.tables.iter().zip(&f3.tables) {
            assert_eq!(
                (a.flags, a.n_strings, &a.chunk_counts),
                (b.flags, b.n_strings, &b.chunk_counts),
                "{}",
                c.name
            );
            let secs = |t: &colsnap::format::TableMeta| -> Vec<u32> {
                (t.first_chunk..t.first_chunk + t.chunk_counts.len() as u32)
                    .chain(t.index_section)
                    .chain(t.dict_section)
                    .collect()
            };
            for (x, y) in secs(a).into_iter().zip(secs(b)) {
                assert!(!f3.sections[y as usize].inline);
                assert_eq!(s2.section(x).unwrap(), s3.section(y).unwrap());
            }
        }
        // Node by node, stream by stream: the same payloads, in place or
        // inline.
        let mut at = HEADER_LEN as u64;
        let n_file = f3.file_sections();
        for (i, (a, b)) in f2.nodes.iter().zip(&f3.nodes).enumerate() {
            assert_eq!(
                (a.items, a.counts, a.stats, a.table),
                (b.items, b.counts, b.stats, b.table),
                "{} node {i}",
                c.name
            );
            for (sa, sb) in a.streams.iter().zip(&b.streams) {
                assert_eq!(sa.is_some(), sb.is_some(), "{} node {i}", c.name);
                let (Some(sa), Some(sb)) = (sa, sb) else {
                    continue;
                };
                let (ea, eb) = (&f2.sections[*sa as usize], &f3.sections[*sb as usize]);
                assert_eq!((ea.encoding, ea.role), (eb.encoding, eb.role));
                assert_eq!(eb.inline, *sb as usize >= n_file, "{}", c.name);
                if eb.inline {
                    inline += 1;
                    assert_eq!(eb.codec, Codec::None);
                    assert!(ea.stored_len <= 64, "{}: the default inline_max", c.name);
                } else {
                    assert_eq!(
                        &v2[ea.range().start as usize..ea.range().end as usize],
                        &v3[eb.range().start as usize..eb.range().end as usize],
                        "{} node {i}",
                        c.name
                    );
                }
                assert_eq!(s2.section(*sa).unwrap(), s3.section(*sb).unwrap());
            }
        }
        for e in &f3.sections[..n_file] {
            assert_eq!(e.offset, at, "{}: v3 file sections tile", c.name);
            at += e.stored_len as u64;
        }
        assert!(f3.sections[n_file..].iter().all(|e| e.inline));
        assert_eq!(at, s3.footer_offset(), "{}", c.name);
        assert!(v3.len() <= v2.len() + 1, "{}", c.name);
    }
    assert!(inline > 0, "no conformance file has an inline section");
}

/// A version 4 file is its version 3 twin with the footer's nodes written
/// field by field: the file's sections are the same bytes, the nodes the
/// same metadata, and every node stream decodes to the same payload (the
/// inline ones grouped by role and encoding, so numbered apart).
#[test]
fn version_4_files_are_version_3_with_nodes_by_field() {
    ready();
    for c in CASES {
        let v3 = std::fs::read(snapshot_path(c, 3)).unwrap();
        let v4 = std::fs::read(snapshot_path(c, 4)).unwrap();
        let (s3, s4) = (
            Snapshot::from_bytes(v3.clone()).unwrap(),
            Snapshot::from_bytes(v4.clone()).unwrap(),
        );
        let (f3, f4) = (s3.footer(), s4.footer());
        let n_file = f3.file_sections();
        assert_eq!(n_file, f4.file_sections(), "{}", c.name);
        assert_eq!(f3.sections.len(), f4.sections.len(), "{}", c.name);
        // (A rewritten case lays its sections out in its own order.)
        if c.post.is_none() {
            assert_eq!(&f3.sections[..n_file], &f4.sections[..n_file], "{}", c.name);
            let end = s3.footer_offset() as usize;
            assert_eq!(
                &v3[16..end],
                &v4[16..end],
                "{}: the file's sections",
                c.name
            );
        }
        assert_eq!((f3.rows, &f3.tables), (f4.rows, &f4.tables), "{}", c.name);
        assert_eq!(f3.nodes.len(), f4.nodes.len(), "{}", c.name);
        for (i, (a, b)) in f3.nodes.iter().zip(&f4.nodes).enumerate() {
            assert_eq!(
                (a.parent, &a.name, a.items, a.counts, a.table, a.ts_layout),
                (b.parent, &b.name, b.items, b.counts, b.table, b.ts_layout),
                "{} node {i}",
                c.name
            );
            // Compared as printed, so that -0.0 and 0.0 differ.
            assert_eq!(format!("{:?}", a.stats), format!("{:?}", b.stats));
            for (sa, sb) in a.streams.iter().zip(&b.streams) {
                assert_eq!(sa.is_some(), sb.is_some(), "{} node {i}", c.name);
                if let (Some(sa), Some(sb)) = (sa, sb) {
                    let (ea, eb) = (&f3.sections[*sa as usize], &f4.sections[*sb as usize]);
                    assert_eq!(
                        (ea.inline, ea.encoding, ea.role),
                        (eb.inline, eb.encoding, eb.role)
                    );
                    assert_eq!(s3.section(*sa).unwrap(), s4.section(*sb).unwrap());
                }
            }
        }
        // Inline payloads by role, then encoding.
        let keys: Vec<_> = f4.sections[n_file..]
            .iter()
            .map(|e| (e.role, e.encoding as u8))
            .collect();
        assert!(keys.is_sorted(), "{}", c.name);
        assert_eq!(f3.inline.len(), f4.inline.len(), "{}", c.name);
        assert!(
            v4.len() <= v3.len() + 8,
            "{}: {} > {}",
            c.name,
            v4.len(),
            v3.len()
        );
    }
}

/// The (role, encoding) pairs the writer produces (src/write.rs).
const WRITER_PAIRS: &[(u8, &str)] = &[
    (1, "bitpacked"),
    (1, "parent-masked"),
    (2, "zigzag-varint"),
    (2, "delta-zigzag-varint"),
    (2, "dict"),
    (2, "mapped"),
    (2, "based"),
    (3, "varint"),
    (4, "plain-f64"),
    (5, "plain-u32"),
    (5, "varint"),
    (5, "dict"),
    (5, "delta-zigzag-varint"),
    (5, "mapped"),
    (5, "based"),
    (6, "zigzag-varint"),
    (6, "delta-zigzag-varint"),
    (6, "dict"),
    (6, "based"),
    (7, "varint"),
    (8, "bitpacked"),
    (9, "zigzag-varint"),
    (9, "delta-zigzag-varint"),
    (10, "varint"),
    (11, "raw"),
    (16, "raw"),
    (17, "raw"),
    (18, "raw"),
];

/// The (role, encoding) pairs readers accept and the writer never writes
/// (SPEC.md section 4.1, `r`); `reader-only.colsnap` holds each.
const READER_ONLY_PAIRS: &[(u8, &str)] = &[
    (1, "plain-u8"),
    (3, "dict"),
    (7, "dict"),
    (8, "plain-u8"),
    (9, "dict"),
    (10, "plain-u32"),
    (10, "dict"),
];

/// Combinations the writer cannot produce in a small file (README.md says
/// why); a reader must still accept them.
const NOT_PRODUCED: &[(u8, &str, &str)] = &[
    // A table dictionary is kept only when zstd chunks compressed with it
    // are smaller; with the codec forced to none or gzip no chunk can use
    // it, so it is never written, and the writer compresses the dictionary
    // section itself with zstd whenever that is smaller.
    (18, "raw", "none"),
    (18, "raw", "gzip"),
];

fn footers() -> Vec<(&'static str, Footer)> {
    CASES
        .iter()
        .flat_map(|c| VERSIONS.map(|v| (c, v)))
        .chain(V5_CASES.iter().map(|c| (c, colsnap::format::VERSION_5)))
        .map(|(c, v)| {
            let snap = Snapshot::open(snapshot_path(c, v)).unwrap();
            (c.name, snap.footer().clone())
        })
        .collect()
}

#[test]
fn conformance_set_covers_every_role_encoding_and_codec() {
    ready();
    let mut seen = BTreeSet::new();
    let mut table_kinds = BTreeSet::new();
    for (_, f) in footers() {
        for s in &f.sections {
            seen.insert((s.role, s.encoding.name(), s.codec.name()));
        }
        for t in &f.tables {
            table_kinds.insert((
                t.flags & TABLE_LONG_TEXT != 0,
                t.flags & TABLE_FRONT_CODED != 0,
                t.index_section.is_some(),
                t.dict_section.is_some(),
            ));
        }
    }
    let mut missing = Vec::new();
    for &(role, enc) in WRITER_PAIRS {
        for codec in ["none", "gzip", "zstd"] {
            if !seen.contains(&(role, enc, codec)) && !NOT_PRODUCED.contains(&(role, enc, codec)) {
                let name = Role::from_u8(role).map_or("?", |r| r.name());
                missing.push(format!("{name}/{enc}/{codec}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no conformance file has: {}",
        missing.join(", ")
    );
    // And nothing outside the list (a new writer choice needs a file and a
    // line above); the rewritten file holds exactly the reader-only pairs.
    let mut reader_only = BTreeSet::new();
    for (name, f) in footers() {
        for s in &f.sections {
            let pair = (s.role, s.encoding.name());
            if name == "reader-only" && !WRITER_PAIRS.contains(&pair) {
                reader_only.insert(pair);
            } else {
                assert!(
                    WRITER_PAIRS.contains(&pair),
                    "{name}: role {} with {} is not in WRITER_PAIRS",
                    pair.0,
                    pair.1
                );
            }
        }
    }
    let want: BTreeSet<(u8, &str)> = READER_ONLY_PAIRS.iter().copied().collect();
    assert_eq!(reader_only, want, "reader-only pairs");
    // Tables: short plain and front-coded with an index, long text with a
    // dictionary.
    for want in [
        (false, false, true, false),
        (false, true, true, false),
        (true, false, true, true),
    ] {
        assert!(table_kinds.contains(&want), "no table {want:?}");
    }
}

#[test]
fn readme_lists_every_conformance_file() {
    ready();
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for c in CASES.iter().chain(V5_CASES) {
        assert!(
            readme.contains(&format!("`{}.colsnap`", c.name)),
            "README.md does not list {}",
            c.name
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        if n == "README.md" {
            continue;
        }
        if let Some(v) = ["v2", "v3", "v4"].iter().position(|d| *d == n) {
            // The version 2, 3 and 4 twins of the files here.
            let version = v as u16 + 2;
            assert!(
                readme.contains(&format!("`{n}/`")),
                "README.md does not describe {n}/"
            );
            for c in CASES {
                assert!(
                    snapshot_path(c, version).exists(),
                    "{n}/{}.colsnap missing",
                    c.name
                );
            }
            let count = std::fs::read_dir(dir().join(&n)).unwrap().count();
            assert_eq!(count, CASES.len(), "{n}/ holds a file of no case");
            continue;
        }
        if n == "v5" {
            assert!(readme.contains("`v5/`"), "README.md does not describe v5/");
            for c in V5_CASES {
                assert!(
                    snapshot_path(c, 5).exists(),
                    "v5/{}.colsnap missing",
                    c.name
                );
            }
            let count = std::fs::read_dir(dir().join(&n)).unwrap().count();
            assert_eq!(count, V5_CASES.len(), "v5/ holds a file of no case");
            continue;
        }
        if n == "events" {
            // Event-log segments (tests/conformance_segments.rs).
            assert!(
                readme.contains("`events/`"),
                "README.md does not describe events/"
            );
            continue;
        }
        let base = n
            .trim_end_matches(".colsnap")
            .trim_end_matches(".input.json")
            .trim_end_matches(".expected.ndjson");
        assert!(
            CASES
                .iter()
                .chain(V5_CASES)
                .any(|c| c.name == base || c.stem == base),
            "{n} belongs to no case"
        );
    }
}

fn hex(b: &[u8], max: usize) -> String {
    let mut s: String = b.iter().take(max).map(|x| format!("{x:02x} ")).collect();
    if b.len() > max {
        s.push_str("...");
    }
    s
}

/// Prints every section of every conformance file (`cargo test --test
/// conformance dump -- --ignored --nocapture`), for the README.
#[test]
#[ignore]
fn dump() {
    for (c, v) in CASES.iter().flat_map(|c| VERSIONS.map(|v| (c, v))) {
        let snap = Snapshot::open(snapshot_path(c, v)).unwrap();
        let f = snap.footer();
        println!("== {} v{v} ({} bytes)", c.name, snap.file_len());
        for (i, n) in f.nodes.iter().enumerate() {
            for role in colsnap::format::footer::STREAM_ROLES {
                if let Some(s) = n.stream(role) {
                    let e = &f.sections[s as usize];
                    println!(
                        "  {:16} {:12} {:20} {:5} raw {:5} stored {:5} section {s} {}",
                        snap.path(i as u32),
                        role.name(),
                        e.encoding.name(),
                        e.codec.name(),
                        e.raw_len,
                        e.stored_len,
                        hex(&snap.section(s).unwrap(), 48)
                    );
                }
            }
        }
        for (t, tm) in f.tables.iter().enumerate() {
            println!(
                "  table {t}: flags {} strings {} chunks {:?} index {:?} dict {:?}",
                tm.flags, tm.n_strings, tm.chunk_counts, tm.index_section, tm.dict_section
            );
            for k in 0..tm.chunk_counts.len() as u32 {
                let s = tm.first_chunk + k;
                println!(
                    "    chunk section {s}: {}",
                    hex(&snap.section(s).unwrap(), 48)
                );
            }
            if let Some(s) = tm.index_section {
                println!(
                    "    index section {s}: {}",
                    hex(&snap.section(s).unwrap(), 48)
                );
            }
        }
        println!(
            "  footer raw: {}",
            hex(&f.to_bytes(snap.header().version), 400)
        );
    }
}

/// `strings-dict` is what it says: a front-coded table 0 of several chunks
/// with a dictionary, in both versions.
#[test]
fn strings_dict_has_a_front_coded_table_0_with_a_dictionary() {
    ready();
    for v in VERSIONS {
        let c = CASES.iter().find(|c| c.name == "strings-dict").unwrap();
        let snap = Snapshot::open(snapshot_path(c, v)).unwrap();
        let t = &snap.footer().tables[0];
        assert!(t.flags & TABLE_FRONT_CODED != 0 && t.flags & TABLE_LONG_TEXT == 0);
        assert!(t.chunk_counts.len() >= 8, "{} chunks", t.chunk_counts.len());
        let d = t.dict_section.expect("a dictionary");
        assert_eq!(snap.footer().sections[d as usize].role, Role::StrDict as u8);
    }
}
