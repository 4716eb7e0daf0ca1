//! Compression-ratio report and CI gate: `cargo bench -p colsnap-bench --bench ratio [-- FILES...]`.
//!
//! For every data set (fixtures/*.json|*.ndjson, ../shared/data/*.zst when
//! present, paths in `COLSNAP_RATIO_INPUTS` (separated by `:`), and paths
//! given after `--`) it builds a snapshot with default options and prints
//! JSON bytes, gzip -9 and zstd -19 sizes of the JSON, the snapshot size, the
//! ratios, the "grid bytes" (what a table view of the 50 most recently
//! updated rows must read: header, footer and trailer, every section of every
//! column that is not long text, and the short-string chunks those rows
//! use), the "page bytes" (the same for the columns the browser grid shows
//! on its first page only, chosen as web/www/app.js chooses them, and the
//! streams their derived streams read: what the page reads before its first
//! rows, less its code) and the build speed. The
//! same goes to `target/ratio-report.json`.
//!
//! It exits non-zero when a data set named in `benches/ratio-floors.json`
//! compresses worse than its floor (minimum JSON/colsnap ratio, maximum
//! colsnap/zstd-19 ratio) or its grid or page bytes pass their ceiling
//! (maximum percent of the file). Compression is deterministic, so any drop below a
//! floor is a real regression.

use colsnap::encoding::Encoding;
use colsnap::model::{ColumnType, Kind, NodeName};
use colsnap::query::{Engine, SnapshotSource};
use colsnap::raw::format::footer::TABLE_LONG_TEXT;
use colsnap::raw::format::{Role, STREAM_ROLES};
use colsnap::{BuildOptions, Snapshot};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const GRID_ROWS: usize = 50;

fn inputs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    let root = colsnap_bench::repo_root();
    let mut globbed = |dir: &Path, ok: &dyn Fn(&str) -> bool| {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.file_name().is_some_and(|n| ok(&n.to_string_lossy())))
                .collect();
            files.sort();
            v.extend(files);
        }
    };
    globbed(&root.join("fixtures"), &|n| {
        n.ends_with(".json") || n.ends_with(".ndjson")
    });
    globbed(&root.join("../shared/data"), &|n| n.ends_with(".zst"));
    if let Ok(list) = std::env::var("COLSNAP_RATIO_INPUTS") {
        v.extend(list.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    // cargo bench passes `--bench`; everything else that is not a flag is a file.
    v.extend(
        std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .map(PathBuf::from),
    );
    v
}

/// The JSON text of a data set (zstd and gzip files are decompressed).
fn json_text(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(&raw[..])
            .and_then(|mut d| d.read_to_end(&mut out))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out
    } else {
        raw
    }
}

fn gzip9(b: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip").len()
}

fn zstd19(b: &[u8]) -> usize {
    zstd::bulk::compress(b, 19).expect("zstd").len()
}

/// Items of `node` that belong to the rows `rows` (recursing through arrays).
fn items_of(
    s: &Snapshot,
    node: u32,
    rows: &[usize],
    memo: &mut HashMap<u32, Vec<usize>>,
) -> Vec<usize> {
    if let Some(v) = memo.get(&node) {
        return v.clone();
    }
    let meta = &s.footer().nodes[node as usize];
    let items = if node == 0 {
        rows.to_vec()
    } else if meta.name == NodeName::Elem {
        let parent = meta.parent;
        let pitems = items_of(s, parent, rows, memo);
        let pd = s.node_data(parent).expect("node");
        pitems
            .iter()
            .filter_map(|&i| pd.elements(i))
            .flat_map(|r| r.start as usize..r.end as usize)
            .collect()
    } else {
        items_of(s, meta.parent, rows, memo)
    };
    memo.insert(node, items.clone());
    items
}

/// Bytes section `idx` takes in the file (format version 1: frame,
/// payload and padding; version 2: the payload; an inline section of
/// version 3 none: its bytes are the footer's).
fn section_bytes(s: &Snapshot, idx: u32) -> u64 {
    let e = &s.footer().sections[idx as usize];
    if e.inline { 0 } else { e.end() - e.offset }
}

/// A role of the browser grid's columns: its names, the types it takes
/// (None: any scalar), and whether it may lie in an array.
type PageRole = (
    &'static [&'static str],
    Option<&'static [&'static str]>,
    bool,
);

/// Columns the browser grid (web/www/app.js, `chooseColumns`) shows, chosen
/// as it chooses them: one per role, a column named by one of the role's
/// names as a path or as its end after a dot, of a type the role takes and
/// outside arrays (but labels), the least nested one, then the earlier
/// name; with fewer than 3 roles found, the first 8 scalar columns. Also
/// the column of the last role (updated): the page sorts by it, newest first.
fn page_columns(s: &Snapshot) -> (Vec<String>, Option<String>) {
    const DATES: &[&str] = &["timestamp", "string", "i64", "u64", "f64", "number"];
    const NUMBERS: &[&str] = &["i64", "u64", "f64", "number"];
    const STRING: &[&str] = &["string"];
    let roles: [PageRole; 8] = [
        (&["number", "iid", "key"], None, false),
        (&["title", "summary", "subject"], Some(STRING), false),
        (&["state", "status.name", "status"], Some(STRING), false),
        (&["labels[].name", "labels[]"], Some(STRING), true),
        (
            &[
                "user.login",
                "author.username",
                "author.login",
                "reporter.displayName",
                "creator.displayName",
                "author.name",
                "reporter.name",
                "creator.name",
            ],
            Some(STRING),
            false,
        ),
        (
            &["comments", "comment.total", "user_notes_count"],
            Some(NUMBERS),
            false,
        ),
        (&["created_at", "created", "createdAt"], Some(DATES), false),
        (&["updated_at", "updated", "updatedAt"], Some(DATES), false),
    ];
    let engine = Engine::new(SnapshotSource::new(s.clone()));
    let fields = engine.fields();
    let scalar =
        |t: ColumnType| !matches!(t, ColumnType::Object | ColumnType::List | ColumnType::Null);
    let depth = |p: &str| p.split('.').count();
    let mut cols: Vec<String> = Vec::new();
    let mut newest = None;
    for (i, (names, types, in_arrays)) in roles.into_iter().enumerate() {
        let mut best: Option<(usize, usize, &str)> = None;
        for (k, n) in names.iter().enumerate() {
            for f in fields {
                let named = f.path == *n || f.path.ends_with(&format!(".{n}"));
                let typed = types.map_or(scalar(f.ty), |t| t.contains(&f.ty.name()));
                if !named || !typed || (f.list && !in_arrays) || cols.contains(&f.path) {
                    continue;
                }
                let d = depth(&f.path) - depth(n);
                if best.is_none_or(|(bd, bk, _)| d < bd || (d == bd && k < bk)) {
                    best = Some((d, k, &f.path));
                }
            }
        }
        if let Some((_, _, p)) = best {
            cols.push(p.to_string());
            // The last role (updated) is the page's sort, newest first.
            if i == 7 {
                newest = Some(p.to_string());
            }
        }
    }
    if cols.len() >= 3 {
        return (cols, newest);
    }
    let first = fields
        .iter()
        .filter(|f| scalar(f.ty))
        .take(8)
        .map(|f| f.path.clone())
        .collect();
    (first, None)
}

/// What reading the columns `paths` needs: their nodes and every node
/// above them (the parents' kinds and array lengths), and the sections
/// their `mapped` and `based` streams are derived from (`user.login`'s ids
/// of `user.events_url`'s, `updated_at` of `created_at`), chains followed.
struct Shown {
    nodes: BTreeSet<u32>,
    sources: BTreeSet<u32>,
}

fn shown_of(s: &Snapshot, paths: &[String]) -> Shown {
    let foot = s.footer();
    let mut nodes = BTreeSet::new();
    for p in paths {
        let Some(mut n) = s.node_by_path(p) else {
            continue;
        };
        while nodes.insert(n) && n != 0 {
            n = foot.nodes[n as usize].parent;
        }
    }
    let mut sources = BTreeSet::new();
    let mut todo: Vec<u32> = nodes.iter().copied().collect();
    while let Some(n) = todo.pop() {
        for (role, enc, src) in s.stream_sources(n).expect("stream sources") {
            if nodes.contains(&src) {
                continue;
            }
            // A mapped stream reads its source's string ids (4.7), a based
            // one its source's stream of the same role (4.9); both the
            // source's item kinds, when it has more than one.
            let m = &foot.nodes[src as usize];
            let from = if enc == Encoding::Mapped {
                Role::Strs
            } else {
                role
            };
            let mut new = false;
            for sec in [m.stream(from), m.stream(Role::Kinds)]
                .into_iter()
                .flatten()
            {
                new |= sources.insert(sec);
            }
            if new {
                todo.push(src);
            }
        }
    }
    Shown { nodes, sources }
}

/// Bytes a grid of the `GRID_ROWS` rows last by `sort` (the first rows when
/// `sort` is None or not in the file) must read:
/// every column (`shown` None, issue 15's "grid bytes") or only the nodes
/// `shown` (the browser grid's first page, [`page_columns`]).
fn grid_bytes(s: &Snapshot, file_len: u64, sort: Option<&str>, shown: Option<&Shown>) -> u64 {
    let foot = s.footer();
    let all: u64 = (0..foot.sections.len() as u32)
        .map(|i| section_bytes(s, i))
        .sum();
    let mut total = file_len - all; // header, footer, trailer
    let n = s.rows() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(u) = sort.and_then(|p| s.node_by_path(p)) {
        let d = s.node_data(u).expect("updated_at");
        let key = |i: usize| {
            if d.kind(i) == Kind::Time {
                let t = d.timestamp(d.pos(i));
                (1, t.secs, t.nanos)
            } else {
                (0, i64::MIN, 0)
            }
        };
        order.sort_by_key(|&i| std::cmp::Reverse(key(i)));
    }
    order.truncate(GRID_ROWS);
    let mut memo = HashMap::new();
    let mut chunks: BTreeMap<u32, BTreeSet<usize>> = BTreeMap::new();
    for (i, meta) in foot.nodes.iter().enumerate() {
        let long = meta.count(Kind::Str) > 0
            && foot.tables[meta.table as usize].flags & TABLE_LONG_TEXT != 0;
        if long || shown.is_some_and(|n| !n.nodes.contains(&(i as u32))) {
            continue;
        }
        for (k, sec) in meta.streams.iter().enumerate() {
            if let Some(sec) = sec {
                debug_assert!(STREAM_ROLES[k] != Role::StrChunk);
                total += section_bytes(s, *sec);
            }
        }
        if meta.count(Kind::Str) > 0 {
            let d = s.node_data(i as u32).expect("node");
            let t = s.table(meta.table).expect("table");
            for it in items_of(s, i as u32, &order, &mut memo) {
                if let Some(id) = d.str_id(it) {
                    let (c, _) = t.locate(id).expect("locate");
                    chunks.entry(meta.table).or_default().insert(c);
                }
            }
        }
    }
    if let Some(sh) = shown {
        total += sh
            .sources
            .iter()
            .map(|&sec| section_bytes(s, sec))
            .sum::<u64>();
    }
    for (t, cs) in chunks {
        let tm = &foot.tables[t as usize];
        for c in cs {
            total += section_bytes(s, tm.first_chunk + c as u32);
        }
        for sec in [tm.index_section, tm.dict_section].into_iter().flatten() {
            total += section_bytes(s, sec);
        }
    }
    total
}

fn main() {
    let root = colsnap_bench::repo_root();
    let floors: Value = std::fs::read(root.join("benches/ratio-floors.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(json!({}));
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    println!(
        "{:<32} {:>7} {:>11} {:>10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>6} {:>9} {:>6} {:>7}",
        "data set",
        "rows",
        "JSON B",
        "gzip-9 B",
        "zstd-19 B",
        "colsnap B",
        "ratio",
        "vs zstd",
        "grid B",
        "grid%",
        "page B",
        "page%",
        "MB/s"
    );
    for path in inputs() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let json = json_text(&path);
        let t = Instant::now();
        let snap = colsnap::build_to_vec(&json[..], &BuildOptions::default())
            .unwrap_or_else(|e| panic!("{name}: build failed: {e}"));
        let secs = t.elapsed().as_secs_f64();
        let len = snap.len() as u64;
        let s = Snapshot::from_bytes(snap).expect("open");
        let grid = grid_bytes(&s, len, Some("updated_at"), None);
        let (shown, newest) = page_columns(&s);
        let page = grid_bytes(&s, len, newest.as_deref(), Some(&shown_of(&s, &shown)));
        let gz = gzip9(&json);
        let zs = zstd19(&json);
        let ratio = json.len() as f64 / len as f64;
        let vs = len as f64 / zs as f64;
        let mbs = json.len() as f64 / 1e6 / secs;
        println!(
            "{:<32} {:>7} {:>11} {:>10} {:>10} {:>10} {:>8.2} {:>8.3} {:>10} {:>5.1}% {:>9} {:>5.1}% {:>7.2}",
            name,
            s.rows(),
            json.len(),
            gz,
            zs,
            len,
            ratio,
            vs,
            grid,
            100.0 * grid as f64 / len as f64,
            page,
            100.0 * page as f64 / len as f64,
            mbs
        );
        if let Some(f) = floors.get(&name) {
            if let Some(min) = f.get("min_ratio").and_then(Value::as_f64)
                && ratio < min
            {
                failures.push(format!("{name}: JSON/colsnap {ratio:.3} < floor {min}"));
            }
            if let Some(max) = f.get("max_vs_zstd19").and_then(Value::as_f64)
                && vs > max
            {
                failures.push(format!("{name}: colsnap/zstd19 {vs:.4} > ceiling {max}"));
            }
            let share = 100.0 * grid as f64 / len as f64;
            if let Some(max) = f.get("max_grid_percent").and_then(Value::as_f64)
                && share > max
            {
                failures.push(format!("{name}: grid bytes {share:.2}% > ceiling {max}%"));
            }
            let share = 100.0 * page as f64 / len as f64;
            if let Some(max) = f.get("max_page_percent").and_then(Value::as_f64)
                && share > max
            {
                failures.push(format!("{name}: page bytes {share:.2}% > ceiling {max}%"));
            }
        }
        rows.push(json!({
            "name": name,
            "rows": s.rows(),
            "json_bytes": json.len(),
            "gzip9_bytes": gz,
            "zstd19_bytes": zs,
            "colsnap_bytes": len,
            "ratio_json_colsnap": ratio,
            "colsnap_vs_zstd19": vs,
            "grid_bytes": grid,
            "grid_percent": 100.0 * grid as f64 / len as f64,
            "page_columns": shown,
            "page_bytes": page,
            "page_percent": 100.0 * page as f64 / len as f64,
            "build_seconds": secs,
            "build_mb_per_s": mbs,
        }));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let _ = std::fs::create_dir_all(&target);
    let out = target.join("ratio-report.json");
    let report = json!({ "schema": "colsnap-ratio/1", "results": rows });
    match std::fs::write(&out, serde_json::to_vec_pretty(&report).expect("json")) {
        Ok(()) => println!("report: {}", out.display()),
        Err(e) => eprintln!("cannot write {}: {e}", out.display()),
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("RATIO REGRESSION: {f}");
        }
        std::process::exit(1);
    }
}
