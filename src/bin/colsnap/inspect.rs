//! `colsnap inspect`: what is in a snapshot and where its bytes go.
//!
//! Per-column byte counts come from the footer's section directory: every
//! node lists its stream sections, and every directory entry carries its
//! stored and raw lengths, codec and encoding.

use crate::common;
use colsnap::Snapshot;
use colsnap::format::{self, SectionEntry};
use colsnap::model::{ColumnType, Kind};
use colsnap::read::Plan;
use colsnap::timestamp::{self, Layout, Timestamp};
use comfy_table::{CellAlignment, Table, presets};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "\
Examples:
  colsnap inspect issues.colsnap
  colsnap inspect issues.colsnap --schema
  colsnap inspect issues.colsnap --columns 'user.*'
  colsnap inspect issues.colsnap --wide --strings 5
  colsnap inspect issues.colsnap --json | jq '.columns[] | {path, stored_bytes}'
  snapshot-inspect issues.colsnap

The default table fits the terminal's width (or $COLUMNS): column, type,
nulls, distinct, stored bytes, min and max; --wide adds encodings, codecs,
raw bytes, ratio and absent counts at full width; --schema prints the short
schema only (path, type, nulls, absent, distinct).

Only the header, footer and trailer are read (plus the string chunks that
hold string minimums and maximums, and those needed by --strings; with
--sources the mapped and based streams), the chunks and streams in one read:
one request for a snapshot over HTTP.";

/// Arguments of `colsnap inspect` / `snapshot-inspect`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Snapshot file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print a JSON object instead of tables (stable keys, see README).
    #[arg(long)]
    pub json: bool,
    /// Also list the first N strings of each string table.
    #[arg(long, value_name = "N")]
    pub strings: Option<usize>,
    /// Every statistic of every column, at full width.
    #[arg(long, short = 'v', visible_alias = "verbose")]
    pub wide: bool,
    /// Only the schema: path, type, nulls, absent, distinct.
    #[arg(long, conflicts_with_all = ["wide", "strings"])]
    pub schema: bool,
    /// Also name the column each `mapped` or `based` stream is derived
    /// from, in place of min and max (--wide: beside them); reads the first
    /// bytes of those streams.
    #[arg(long, conflicts_with = "schema")]
    pub sources: bool,
    /// Only columns matching these patterns, comma-separated: `*` matches
    /// any text (`user.*`; `\*` is a key named `*`), a bare name also matches what lies under it
    /// (`user` keeps `user.login`).
    #[arg(long, value_name = "PATTERNS")]
    pub columns: Option<String>,
}

/// The JSON document printed by `inspect --json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The file as given.
    pub file: String,
    /// Format version from the header.
    pub format_version: u16,
    /// Rows.
    pub rows: u64,
    /// File size in bytes.
    pub file_bytes: u64,
    /// Every column (schema node but the row itself), in schema order.
    pub columns: Vec<ColumnReport>,
    /// String tables.
    pub string_tables: Vec<TableReport>,
    /// Where the file's bytes go.
    pub totals: Totals,
}

/// One column.
#[derive(Debug, Serialize)]
pub struct ColumnReport {
    /// Display path (`user.login`, `labels[].name`).
    pub path: String,
    /// Column type (`i64`, `string`, `timestamp`, `mixed`, ...).
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// Items in the column's domain (rows, or array elements).
    pub items: u64,
    /// Encodings of its stream sections.
    pub encodings: Vec<&'static str>,
    /// Codecs of its stream sections.
    pub codecs: Vec<&'static str>,
    /// Stream sections.
    pub sections: usize,
    /// Decompressed bytes of its streams.
    pub raw_bytes: u64,
    /// Stored bytes of its streams (payloads, frames excluded) in the
    /// file's sections: its inline streams (format version 3) are not
    /// counted, their bytes are the footer's.
    pub stored_bytes: u64,
    /// Its streams kept inline in the footer (format version 3).
    pub inline_sections: usize,
    /// raw_bytes / stored_bytes (1 when nothing is stored).
    pub ratio: f64,
    /// Items that are JSON `null`.
    pub nulls: u64,
    /// Items whose key is absent from the object.
    pub absent: u64,
    /// Distinct non-null scalar values.
    pub distinct: u64,
    /// Smallest value (a number, string, RFC 3339 timestamp or bool), or null.
    pub min: Value,
    /// Largest value, or null.
    pub max: Value,
    /// String table of its string items, when it has any.
    pub string_table: Option<u32>,
    /// With `--sources`: the streams derived from another column (absent
    /// otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceReport>>,
    /// Its node index.
    #[serde(skip)]
    pub node: u32,
}

/// A stream derived from another column (`inspect --sources`).
#[derive(Debug, Serialize)]
pub struct SourceReport {
    /// The stream (`ints`, `string-ids`, `ts-secs`).
    pub stream: &'static str,
    /// Its encoding: `mapped` (a function of the source's strings) or
    /// `based` (differences from the source's values at the same items).
    pub encoding: &'static str,
    /// The source column's display path.
    pub source: String,
}

/// One string table.
#[derive(Debug, Serialize)]
pub struct TableReport {
    /// Table index.
    pub index: u32,
    /// Strings in the table.
    pub strings: u64,
    /// Chunks.
    pub chunks: usize,
    /// Decompressed bytes of its sections (chunks, index, dictionary).
    pub raw_bytes: u64,
    /// Stored bytes of its sections.
    pub stored_bytes: u64,
    /// raw_bytes / stored_bytes.
    pub ratio: f64,
    /// The long-text table (large chunks for long strings).
    pub long_text: bool,
    /// Chunks are front-coded.
    pub front_coded: bool,
    /// Strings in the order rows first use them, not sorted (SPEC.md 7.6).
    pub row_order: bool,
    /// Stored bytes of the zstd dictionary its chunks share (0: none;
    /// included in `stored_bytes`).
    pub dictionary_bytes: u64,
    /// The codecs its chunks are stored with (`ppmd`, `zstd`, `gzip`,
    /// `none`), by name: PPMd long text decodes about a hundred times
    /// slower than zstd (a search over it decodes it all).
    pub codecs: Vec<&'static str>,
    /// The first N strings, with `--strings N` (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_strings: Option<Vec<String>>,
}

/// Totals: the parts add up to the file size.
#[derive(Debug, Serialize)]
pub struct Totals {
    /// Sections in the file, inline ones included.
    pub sections: usize,
    /// Decompressed bytes of every section stored in the file's sections
    /// (not inline).
    pub raw_bytes: u64,
    /// Stored payload bytes of every section stored in the file's sections.
    pub stored_bytes: u64,
    /// Format version 3: sections kept raw in the footer (inline), counted
    /// in `sections`, and their bytes (raw, before the footer is
    /// compressed; the file's share of them is in `metadata`).
    pub inline_sections: usize,
    /// Raw bytes of the inline sections.
    pub inline_bytes: u64,
    /// Where the file's bytes go: columns, string_tables, metadata.
    pub parts: Vec<Part>,
    /// The stored footer's bytes (part of `metadata`).
    pub footer_bytes: u64,
}

/// A share of the file.
#[derive(Debug, Serialize)]
pub struct Part {
    /// `columns` (column stream payloads), `string_tables` (string table
    /// payloads) or `metadata` (header, footer, trailer, and in format
    /// version 1 the section frames and padding).
    pub part: &'static str,
    /// Bytes.
    pub bytes: u64,
    /// bytes / file_bytes.
    pub share: f64,
}

fn ratio(raw: u64, stored: u64) -> f64 {
    if stored == 0 {
        1.0
    } else {
        (raw as f64 / stored as f64 * 100.0).round() / 100.0
    }
}

/// Build the report.
pub fn report(snap: &Snapshot, file: &str, strings: Option<usize>) -> colsnap::Result<Report> {
    let f = snap.footer();
    let header = snap.header();
    let file_bytes = snap.file_len();
    let entry = |i: u32| -> &SectionEntry { &f.sections[i as usize] };

    // The chunks that hold the string minimums and maximums, in one read
    // (one request over HTTP, not one or two per column).
    let mut plan = Plan::new();
    for n in &f.nodes {
        if let (Some((lo, hi)), Ok(t)) = (n.stats.str, snap.table(n.table)) {
            for id in [lo, hi] {
                if let Ok((k, _)) = t.locate(id) {
                    snap.plan_chunk(&mut plan, n.table, k);
                }
            }
        }
    }
    snap.fetch(&plan)?;

    let mut columns = Vec::new();
    let mut columns_stored = 0u64;
    for (i, n) in f.nodes.iter().enumerate() {
        let secs: Vec<&SectionEntry> = n.streams.iter().flatten().map(|&s| entry(s)).collect();
        let raw: u64 = secs.iter().map(|e| e.raw_len as u64).sum();
        // Inline streams (version 3) are footer bytes: stored as 0 here.
        let stored: u64 = secs
            .iter()
            .filter(|e| !e.inline)
            .map(|e| e.stored_len as u64)
            .sum();
        columns_stored += stored;
        if i == 0 {
            continue;
        }
        let node = i as u32;
        let ty = snap.column_type(node);
        let encodings: BTreeSet<&'static str> = secs.iter().map(|e| e.encoding.name()).collect();
        let codecs: BTreeSet<&'static str> = secs
            .iter()
            .map(|e| if e.inline { "inline" } else { e.codec.name() })
            .collect();
        let (min, max) = min_max(snap, node, ty)?;
        columns.push(ColumnReport {
            path: snap.path(node).to_string(),
            ty: ty.name(),
            items: n.items,
            encodings: encodings.into_iter().collect(),
            codecs: codecs.into_iter().collect(),
            sections: secs.len(),
            raw_bytes: raw,
            stored_bytes: stored,
            inline_sections: secs.iter().filter(|e| e.inline).count(),
            ratio: ratio(raw, stored),
            nulls: n.count(Kind::Null),
            absent: n.count(Kind::Absent),
            distinct: n.stats.distinct,
            min,
            max,
            string_table: (n.count(Kind::Str) > 0).then_some(n.table),
            sources: None,
            node,
        });
    }

    let mut tables = Vec::new();
    let mut tables_stored = 0u64;
    for (t, m) in f.tables.iter().enumerate() {
        let n = m.chunk_counts.len() as u32;
        let mut secs: Vec<u32> = (m.first_chunk..m.first_chunk + n).collect();
        secs.extend(m.index_section);
        secs.extend(m.dict_section);
        let raw: u64 = secs.iter().map(|&s| entry(s).raw_len as u64).sum();
        let stored: u64 = secs.iter().map(|&s| entry(s).stored_len as u64).sum();
        tables_stored += stored;
        let first_strings = match strings {
            Some(k) => {
                let table = snap.table(t as u32)?;
                let k = (k as u64).min(table.len()) as u32;
                Some(
                    (0..k)
                        .map(|id| table.get(id))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            None => None,
        };
        tables.push(TableReport {
            index: t as u32,
            strings: m.n_strings,
            chunks: m.chunk_counts.len(),
            raw_bytes: raw,
            stored_bytes: stored,
            ratio: ratio(raw, stored),
            long_text: m.flags & format::footer::TABLE_LONG_TEXT != 0,
            front_coded: m.flags & format::footer::TABLE_FRONT_CODED != 0,
            row_order: m.flags & format::footer::TABLE_ROW_ORDER != 0,
            dictionary_bytes: m.dict_section.map_or(0, |d| entry(d).stored_len as u64),
            codecs: (m.first_chunk..m.first_chunk + n)
                .map(|s| entry(s).codec.name())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            first_strings,
        });
    }

    let share = |b: u64| (b as f64 / file_bytes.max(1) as f64 * 10_000.0).round() / 10_000.0;
    let metadata = file_bytes.saturating_sub(columns_stored + tables_stored);
    let file_secs = || f.sections.iter().filter(|e| !e.inline);
    let footer_bytes = file_bytes - format::TRAILER_LEN as u64 - snap.footer_offset();
    Ok(Report {
        file: file.to_string(),
        format_version: header.version,
        rows: snap.rows(),
        file_bytes,
        columns,
        string_tables: tables,
        totals: Totals {
            sections: f.sections.len(),
            raw_bytes: file_secs().map(|e| e.raw_len as u64).sum(),
            stored_bytes: file_secs().map(|e| e.stored_len as u64).sum(),
            inline_sections: f.sections.iter().filter(|e| e.inline).count(),
            inline_bytes: f.inline.len() as u64,
            parts: vec![
                Part {
                    part: "columns",
                    bytes: columns_stored,
                    share: share(columns_stored),
                },
                Part {
                    part: "string_tables",
                    bytes: tables_stored,
                    share: share(tables_stored),
                },
                Part {
                    part: "metadata",
                    bytes: metadata,
                    share: share(metadata),
                },
            ],
            footer_bytes,
        },
    })
}

/// A column's stored bytes, or `inline` when all of its streams are kept
/// in the footer (format version 3).
fn stored_cell(c: &ColumnReport) -> String {
    if c.stored_bytes == 0 && c.inline_sections > 0 {
        "inline".into()
    } else {
        common::thousands(c.stored_bytes)
    }
}

/// Minimum and maximum of a column from the footer statistics: numbers as
/// numbers, strings looked up in the string table, timestamps formatted
/// (UTC), bools from the kind counts. For a mixed column, the first family
/// present among numbers, strings, timestamps, bools.
fn min_max(snap: &Snapshot, node: u32, ty: ColumnType) -> colsnap::Result<(Value, Value)> {
    let n = &snap.footer().nodes[node as usize];
    let s = &n.stats;
    // Numbers: (sort key, value) candidates.
    let mut nums: Vec<(f64, Value)> = Vec::new();
    if let Some((lo, hi)) = s.int {
        nums.push((lo as f64, lo.into()));
        nums.push((hi as f64, hi.into()));
    }
    if let Some((lo, hi)) = s.uint {
        nums.push((lo as f64, lo.into()));
        nums.push((hi as f64, hi.into()));
    }
    if let Some((lo, hi)) = s.float {
        for x in [lo, hi] {
            nums.push((
                x,
                serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
            ));
        }
    }
    // Integers kept as text have no statistics: read from their stream
    // (rare, and small), given as their text.
    if n.count(Kind::NumText) > 0 {
        for t in &snap.node_data(node)?.num_texts {
            nums.push((
                colsnap::encoding::numtext::value(t),
                Value::String(t.to_string()),
            ));
        }
    }
    if !nums.is_empty() {
        let lo = nums
            .iter()
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|x| x.1.clone());
        let hi = nums
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|x| x.1.clone());
        return Ok((lo.unwrap_or(Value::Null), hi.unwrap_or(Value::Null)));
    }
    if let Some((lo, hi)) = s.str {
        let t = snap.table_of(node)?;
        return Ok((Value::String(t.get(lo)?), Value::String(t.get(hi)?)));
    }
    if let Some((lo, hi)) = s.time {
        // The statistics hold whole seconds: a column with fractions is
        // read (its time streams, small) for the exact instants.
        if n.stream(format::Role::TsNanos).is_some() {
            let d = snap.node_data(node)?;
            let at = |j: usize| (d.ts_secs[j], d.ts_nanos.get(j).copied().unwrap_or(0));
            let lo = (0..d.ts_secs.len()).map(at).min();
            let hi = (0..d.ts_secs.len()).map(at).max();
            if let (Some(lo), Some(hi)) = (lo, hi) {
                return Ok((utc(lo.0, lo.1), utc(hi.0, hi.1)));
            }
        }
        return Ok((utc(lo, 0), utc(hi, 0)));
    }
    if ty == ColumnType::Bool || n.count(Kind::False) + n.count(Kind::True) > 0 {
        let (f, t) = (n.count(Kind::False) > 0, n.count(Kind::True) > 0);
        return Ok((Value::Bool(!f), Value::Bool(t)));
    }
    Ok((Value::Null, Value::Null))
}

/// A UTC instant as `YYYY-MM-DDTHH:MM:SSZ`, with as many fraction digits
/// as `nanos` needs (`.5`, `.123456789`).
fn utc(secs: i64, nanos: u32) -> Value {
    let mut digits = 9u8;
    let mut rest = nanos;
    while digits > 0 && rest.is_multiple_of(10) {
        rest /= 10;
        digits -= 1;
    }
    let ts = Timestamp {
        secs,
        nanos,
        offset_minutes: 0,
        layout: Layout::from_byte(digits).unwrap_or_else(|| unreachable!("layout 0..=9 is valid")),
    };
    let mut out = String::new();
    if timestamp::format(&ts, &mut out) {
        Value::String(out)
    } else {
        Value::from(secs)
    }
}

/// Run `inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let snap = common::open_snapshot(&args.file)?;
    let mut r = report(&snap, &name, args.strings).map_err(|e| common::lib_data(&name, e))?;
    let all_columns = r.columns.len();
    if let Some(pats) = &args.columns {
        let pats: Vec<&str> = pats
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        for p in &pats {
            if !r.columns.iter().any(|c| common::column_matches(p, &c.path)) {
                return Err(common::usage(format!(
                    "{name}: {}",
                    colsnap::query::parse::unknown_field_message(
                        "column",
                        p,
                        r.columns.iter().map(|c| c.path.as_str())
                    )
                    .replace("FILE", &name)
                )));
            }
        }
        r.columns
            .retain(|c| pats.iter().any(|p| common::column_matches(p, &c.path)));
    }
    if args.sources {
        // One read for every column's streams (one request over HTTP).
        let nodes: Vec<u32> = r.columns.iter().map(|c| c.node).collect();
        let found = snap
            .stream_sources_of(&nodes)
            .map_err(|e| common::lib_data(&name, e))?;
        for (c, found) in r.columns.iter_mut().zip(found) {
            c.sources = Some(
                found
                    .into_iter()
                    .map(|(role, enc, src)| SourceReport {
                        stream: role.name(),
                        encoding: enc.name(),
                        source: snap.path(src).to_string(),
                    })
                    .collect(),
            );
        }
    }
    if args.json {
        let mut v = serde_json::to_value(&r)?;
        if let (Some(o), Some(remote)) = (v.as_object_mut(), common::remote_stats()) {
            o.insert("remote".into(), remote);
        }
        let mut s = serde_json::to_string_pretty(&v)?;
        s.push('\n');
        return common::print(&s);
    }
    if args.schema {
        return common::print(&schema(&r, all_columns));
    }
    if args.wide {
        return common::print(&human(&r, all_columns));
    }
    common::print(&compact(&r, all_columns))
}

fn header(r: &Report, all: usize) -> String {
    let cols = if all == r.columns.len() {
        format!("{} columns", common::thousands(all as u64))
    } else {
        format!(
            "{} of {} columns",
            common::thousands(r.columns.len() as u64),
            common::thousands(all as u64)
        )
    };
    format!(
        "{}: colsnap format v{}, {} rows, {cols}, {} bytes\n\n",
        r.file,
        r.format_version,
        common::thousands(r.rows),
        common::thousands(r.file_bytes)
    )
}

/// The short schema view.
fn schema(r: &Report, all: usize) -> String {
    let headers: Vec<String> = ["column", "type", "nulls", "absent", "distinct"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<String>> = r
        .columns
        .iter()
        .map(|c| {
            vec![
                c.path.clone(),
                c.ty.to_string(),
                common::thousands(c.nulls),
                common::thousands(c.absent),
                common::thousands(c.distinct),
            ]
        })
        .collect();
    format!(
        "{}{}",
        header(r, all),
        common::fit_table(&headers, &rows, &[2, 3, 4])
    )
}

/// The default view: one line per column fitted to the width, then the
/// string tables and the totals (both narrow).
fn compact(r: &Report, all: usize) -> String {
    let mut headers: Vec<String> = [
        "column", "type", "nulls", "distinct", "stored", "min", "max",
    ]
    .map(String::from)
    .to_vec();
    // In place of min and max (--wide shows both).
    let with_sources = r.columns.iter().any(|c| c.sources.is_some());
    if with_sources {
        headers.truncate(5);
        headers.push("derived from".into());
    }
    let rows: Vec<Vec<String>> = r
        .columns
        .iter()
        .map(|c| {
            let mut row = vec![
                c.path.clone(),
                c.ty.to_string(),
                common::thousands(c.nulls),
                common::thousands(c.distinct),
                stored_cell(c),
                shorten(&c.min, 28),
                shorten(&c.max, 28),
            ];
            if with_sources {
                row.truncate(5);
                row.push(derived_from(c));
            }
            row
        })
        .collect();
    let mut out = header(r, all);
    let flex: &[usize] = if with_sources { &[5] } else { &[5, 6] };
    out.push_str(&common::fit_table_flex(
        &headers,
        &rows,
        &[2, 3, 4],
        flex,
        "--wide",
    ));
    out.push('\n');
    out.push_str(&tables_and_totals(r));
    out.push_str("(--wide: encodings, codecs, raw bytes, ratios; --schema: the schema only)\n");
    out
}

/// `--sources`, one cell: `user.login (mapped)`, the stream named when the
/// column has values of more than one kind (`ints: id (based)`), `-` for
/// none.
fn derived_from(c: &ColumnReport) -> String {
    let Some(s) = &c.sources else {
        return String::new();
    };
    if s.is_empty() {
        return "-".into();
    }
    let name_stream = c.ty == ColumnType::Mixed.name() || s.len() > 1;
    s.iter()
        .map(|s| match name_stream {
            true => format!(
                "{}: {} ({})",
                s.stream,
                common::one_line(&s.source),
                s.encoding
            ),
            false => format!("{} ({})", common::one_line(&s.source), s.encoding),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn shorten(v: &Value, max: usize) -> String {
    let s = match v {
        Value::Null => return "-".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let s = common::one_line(&s);
    if s.chars().count() > max {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    } else {
        s
    }
}

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn right(t: &mut Table, cols: &[usize]) {
    for &c in cols {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// The human-readable rendering.
fn human(r: &Report, all: usize) -> String {
    let mut out = header(r, all);

    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    let mut head = vec![
        "column", "type", "encoding", "codec", "raw", "stored", "ratio", "nulls", "absent",
        "distinct", "min", "max",
    ];
    let with_sources = r.columns.iter().any(|c| c.sources.is_some());
    if with_sources {
        head.push("derived from");
    }
    t.set_header(head);
    for c in &r.columns {
        let mut row = vec![
            common::one_line(&c.path),
            c.ty.to_string(),
            c.encodings.join(","),
            c.codecs.join(","),
            common::thousands(c.raw_bytes),
            stored_cell(c),
            format!("{:.2}", c.ratio),
            common::thousands(c.nulls),
            common::thousands(c.absent),
            common::thousands(c.distinct),
            shorten(&c.min, 28),
            shorten(&c.max, 28),
        ];
        if with_sources {
            row.push(derived_from(c));
        }
        t.add_row(row);
    }
    right(&mut t, &[4, 5, 6, 7, 8, 9]);
    out.push_str(&format!("{t}\n\n"));
    out.push_str(&tables_and_totals(r));
    out
}

/// The string tables (with their first strings) and where the bytes go.
fn tables_and_totals(r: &Report) -> String {
    let mut out = String::new();

    let headers: Vec<String> = [
        "table", "strings", "chunks", "raw", "stored", "ratio", "layout", "codecs", "dict",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    for s in &r.string_tables {
        rows.push(vec![
            s.index.to_string(),
            common::thousands(s.strings),
            s.chunks.to_string(),
            common::thousands(s.raw_bytes),
            common::thousands(s.stored_bytes),
            format!("{:.2}", s.ratio),
            {
                let layout = match (s.long_text, s.front_coded) {
                    (true, _) => "long text",
                    (false, true) => "front-coded",
                    (false, false) => "plain",
                };
                match s.row_order {
                    true => format!("{layout}, rows"),
                    false => layout.to_string(),
                }
            },
            match s.codecs.is_empty() {
                true => "-".to_string(),
                false => s.codecs.join(", "),
            },
            match s.dictionary_bytes {
                0 => "-".to_string(),
                n => common::thousands(n),
            },
        ]);
    }
    out.push_str(&common::fit_table(&headers, &rows, &[1, 2, 3, 4, 5, 8]));
    for s in &r.string_tables {
        if let Some(first) = &s.first_strings {
            out.push_str(&format!(
                "\nstring table {}, first {} strings:\n",
                s.index,
                first.len()
            ));
            for (i, v) in first.iter().enumerate() {
                out.push_str(&format!(
                    "  {i:>6}  {}\n",
                    shorten(&Value::String(v.clone()), 70)
                ));
            }
        }
    }

    let headers: Vec<String> = ["part", "bytes", "share"].map(String::from).to_vec();
    let mut rows = Vec::new();
    for p in &r.totals.parts {
        let name = match p.part {
            "columns" => "columns",
            "string_tables" => "string tables",
            // Format version 2 sections have no frames.
            _ if r.format_version == colsnap::format::VERSION_1 => "header+frames+footer+trailer",
            _ => "header+footer+trailer",
        };
        rows.push(vec![
            name.to_string(),
            common::thousands(p.bytes),
            pct(p.share),
        ]);
    }
    rows.push(vec![
        "total".to_string(),
        common::thousands(r.file_bytes),
        "100.0%".to_string(),
    ]);
    let t = common::fit_table(&headers, &rows, &[1, 2]);
    out.push_str(&format!(
        "\n{t}{} sections, {} raw bytes stored in {} (ratio {:.2}); footer {} bytes\n{}",
        r.totals.sections,
        common::thousands(r.totals.raw_bytes),
        common::thousands(r.totals.stored_bytes),
        ratio(r.totals.raw_bytes, r.totals.stored_bytes),
        common::thousands(r.totals.footer_bytes),
        match r.totals.inline_sections {
            0 => String::new(),
            n => format!(
                "{n} of them inline, {} raw bytes kept in the footer\n",
                common::thousands(r.totals.inline_bytes)
            ),
        },
    ));
    out
}
