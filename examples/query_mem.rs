//! Memory of the query engine's typed arrays: load every non-string column
//! and every string-id column, report bytes per row (counted) and the RSS
//! growth (/proc/self/statm).
//!
//! `cargo run --release --example query_mem -- [SNAPSHOT | --generate N]`

use colsnap::query::{Engine, SnapshotSource};
use colsnap::{BuildOptions, Snapshot};
use colsnap_testdata::{GenOptions, write_ndjson};

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let snap = match args.as_slice() {
        [flag, n] if flag == "--generate" => {
            let opts = GenOptions {
                seed: 42,
                count: n.parse()?,
                ..Default::default()
            };
            let mut json = Vec::new();
            write_ndjson(&opts, &mut json)?;
            Snapshot::from_bytes(colsnap::build_to_vec(&json[..], &BuildOptions::default())?)?
        }
        [path] => Snapshot::open(path)?,
        _ => return Err("usage: query_mem SNAPSHOT | --generate N".into()),
    };
    let engine = Engine::new(SnapshotSource::new(snap.clone()));
    let rows = engine.rows().max(1);
    let before = rss();
    let mut cols = 0;
    for f in engine.fields().to_vec() {
        engine.column(&f.path)?;
        cols += 1;
    }
    let after = rss();
    let bytes = engine.loaded_bytes();
    let mut by: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for f in engine.fields() {
        let c = engine.column(&f.path)?;
        let k = match &c.values {
            colsnap::query::Values::Str(_) => "string ids",
            colsnap::query::Values::Int { .. } => "i64",
            colsnap::query::Values::Time { .. } => "timestamp",
            colsnap::query::Values::Bool(_) => "bool",
            colsnap::query::Values::Object(_) => "object",
            colsnap::query::Values::List(_) => "list lengths",
            colsnap::query::Values::Any(_) => "other (cells)",
        };
        let e = by.entry(k).or_default();
        e.0 += 1;
        e.1 += c.values.heap_bytes();
    }
    for (k, (n, b)) in &by {
        println!(
            "  {k:<14} {n:>4} columns {:>8.1} bytes/row",
            *b as f64 / rows as f64
        );
    }
    println!("rows: {rows}, columns loaded: {cols}");
    println!(
        "typed arrays: {bytes} bytes = {:.1} bytes/row",
        bytes as f64 / rows as f64
    );
    println!(
        "RSS growth:   {} bytes = {:.1} bytes/row (includes decoder temporaries kept by the allocator)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / rows as f64
    );
    println!("string chunks decoded: {}", snap.chunks_decoded());
    Ok(())
}
