//! `colsnap export`: a snapshot back to JSON (array or NDJSON) on stdout.

use crate::common::{self, lib, usage};
use colsnap::ExportOptions;
use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "\
Examples:
  colsnap export issues.colsnap > issues.json
  colsnap export issues.colsnap --ndjson | head -3
  colsnap export issues.colsnap --columns number,title,user.login --rows 0..10
  colsnap export issues.colsnap --rows 100..        # row 100 to the end
  colsnap export issues.colsnap --rows ..5 --ndjson # rows 0 to 4
  colsnap export issues.colsnap --events events.ndjson --ndjson
  colsnap export issues.colsnap --where state=open --sort -updated_at > open.json
  colsnap export issues.colsnap --search crash --in title --ndjson --columns number,title

Rows count from 0 and END is excluded. A column keeps what is under it:
--columns user keeps user.login, user.id, ... and the fields above it for
it: --columns user.login writes each user object with its login alone (a
user that is a list writes [], one that is a string or null writes it as
it is). --where, --search and --sort
take the syntax of `colsnap query` (docs/query.md); --rows then counts
within the result.";

/// Arguments of `colsnap export`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Snapshot file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// One JSON object per line instead of a JSON array.
    #[arg(long)]
    pub ndjson: bool,
    /// Only these column paths, comma-separated (`number,user.login`); `*`
    /// matches any text (`user.*`, as in `inspect --columns`; `\*` is a key
    /// named `*`).
    #[arg(long, value_name = "PATHS", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Only these rows: START..END (END excluded), START.., ..END or N.
    #[arg(long, value_name = "RANGE", value_parser = parse_rows)]
    pub rows: Option<Range<u64>>,
    /// Event log (NDJSON) to apply first: export the snapshot with the events.
    #[arg(long, value_name = "EVENTS", conflicts_with = "columns")]
    pub events: Option<PathBuf>,
    /// Key field identifying rows in the events (of --events, or those a
    /// published snapshot carries); default `id`.
    #[arg(long, value_name = "FIELD")]
    pub key: Option<String>,
    /// Only rows meeting this condition (repeatable), as in `colsnap query`.
    #[arg(long = "where", value_name = "COND")]
    pub filters: Vec<String>,
    /// Only rows with a string containing TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Fields to search, comma-separated (default: every string field).
    #[arg(long = "in", value_name = "FIELDS", requires = "search")]
    pub search_in: Option<String>,
    /// Sort keys, comma-separated, `-` for descending.
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Memory for decoded string chunks (e.g. 64M, 1G; default 256M).
    /// Strings of chunks past it are written in batches: slower, same
    /// output.
    #[arg(long, value_name = "SIZE", value_parser = common::parse_memory)]
    pub string_memory: Option<u64>,
}

/// Parse `START..END`, `START..`, `..END`, `..` or `N`.
pub fn parse_rows(s: &str) -> Result<Range<u64>, String> {
    let bad = || format!("`{s}` is not a row range (use START..END, START.., ..END or N)");
    let num = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
    let r = match s.split_once("..") {
        Some((a, b)) => {
            let start = if a.trim().is_empty() { 0 } else { num(a)? };
            let end = if b.trim().is_empty() {
                u64::MAX
            } else {
                num(b)?
            };
            start..end
        }
        None => {
            let n = num(s)?;
            n..n.saturating_add(1)
        }
    };
    if r.start > r.end {
        return Err(format!("`{s}`: START is after END"));
    }
    Ok(r)
}

/// Say on stderr (the export itself stays empty and succeeds, as a slice
/// past the end is) when `--rows` starts past the last of `total` rows: a
/// range that selects nothing because of a typo should not look like an
/// empty snapshot.
fn past_the_end(name: &str, r: &Range<u64>, total: u64, what: &str) {
    if r.start >= total && r.start < r.end {
        let rows = match total {
            0 => "no rows".to_string(),
            1 => "1 row (row 0)".to_string(),
            n => format!("{} rows (0..{})", common::thousands(n), n),
        };
        let end = if r.end == u64::MAX {
            String::new()
        } else {
            r.end.to_string()
        };
        eprintln!(
            "colsnap: note: {name}: --rows {}..{end} starts past the end: {what} has {rows}; nothing exported",
            r.start
        );
    }
}

/// `--columns` with each pattern (`user.*`: `*` is any text, as in
/// `inspect --columns`) replaced by the columns it matches, in schema
/// order; a pattern that matches none, or an empty entry, is a usage
/// error. Names without `*` are kept as given.
fn expand_columns(
    snap: &colsnap::Snapshot,
    cols: &[String],
    name: &str,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for c in cols {
        // The empty path names a top-level `""` key, where there is one.
        if c.is_empty() && snap.node_by_path(c).is_none() {
            return Err(usage(format!(
                "{name}: --columns {:?}: an empty column name, and no top-level \"\" key",
                cols.join(",")
            )));
        }
        if !common::is_pattern(c) {
            // `\*` names a key `*`.
            out.extend(common::pattern_parts(c).pop());
            continue;
        }
        let matched: Vec<String> = snap
            .columns()
            .into_iter()
            .map(|i| i.path)
            .filter(|p| common::column_matches(c, p))
            .collect();
        if matched.is_empty() {
            return Err(usage(format!(
                "{name}: --columns `{c}` matches no column (`colsnap inspect {name} --schema` lists them)"
            )));
        }
        out.extend(matched);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    Ok(out)
}

/// Run `export`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let snap = common::open_snapshot(&args.file)?;
    let mut args = args;
    if let Some(cols) = &args.columns {
        args.columns = Some(expand_columns(&snap, cols, &name)?);
    }
    if let Some(cols) = &args.columns {
        for c in cols {
            if snap.node_by_path(c).is_none() {
                let have: Vec<String> = snap.columns().into_iter().map(|c| c.path).collect();
                let msg = colsnap::query::parse::unknown_field_message(
                    "column",
                    c,
                    have.iter().map(|h| h.as_str()),
                )
                .replace("FILE", &name);
                return Err(usage(format!("{name}: {msg}")));
            }
        }
    }
    if !args.filters.is_empty() || args.search.is_some() || args.sort.is_some() {
        return export_query(args, snap, &name);
    }
    if let Some(r) = &args.rows {
        past_the_end(&name, r, snap.rows(), "the snapshot");
    }
    // Over a remote snapshot, a few rows (a row's detail): their columns
    // in one round trip.
    if args.events.is_none() && args.rows.as_ref().is_some_and(|r| r.end - r.start <= 1000) {
        common::warm_remote(&snap, &[], args.columns.as_deref()).map_err(|e| lib(&name, e))?;
    }
    let opts = ExportOptions {
        ndjson: args.ndjson,
        columns: args.columns,
        rows: args.rows,
        string_budget: args.string_memory,
        ..Default::default()
    };
    let mut overlay = common::events_overlay(&snap, args.events.as_deref(), args.key.as_deref())?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let done = match &mut overlay {
        Some(o) => o.export(&mut w, &opts),
        None => snap.export(&mut w, &opts),
    }
    .and_then(|_| w.flush().map_err(colsnap::Error::from));
    match done {
        // The reader went away (`| head`): not an error.
        Err(colsnap::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        // Only an error without a path is the output's: one with a path
        // is the input's (a published object gone missing).
        Err(colsnap::Error::Io { source, path: None }) => {
            Err(common::data(format!("writing to stdout: {source}")))
        }
        Err(e) => Err(lib(&name, e)),
        Ok(()) => Ok(()),
    }
}

/// `export` with `--where`, `--search` or `--sort`: the query engine picks
/// and orders the rows, which are then written like a plain export.
fn export_query(args: Args, snap: colsnap::Snapshot, name: &str) -> anyhow::Result<()> {
    use colsnap::query::{Engine, SnapshotSource};
    let bad = |e: colsnap::Error| match e {
        colsnap::Error::Invalid(m) => usage(m.replace("FILE", name)),
        e => lib(name, e),
    };
    let q = common::parse_query(
        name,
        &args.filters,
        args.sort.as_deref(),
        args.search.as_deref(),
        args.search_in.as_deref(),
    )?;
    let engine = match common::events_overlay(&snap, args.events.as_deref(), args.key.as_deref())? {
        Some(ov) => Engine::new(colsnap::events::OverlaySource::new(ov)),
        None => Engine::new(SnapshotSource::new(snap)),
    };
    let rows = engine.run(&q).map_err(bad)?;
    let rows = match &args.rows {
        Some(r) => {
            past_the_end(name, r, rows.len() as u64, "the result");
            let start = (r.start.min(rows.len() as u64)) as usize;
            let end = (r.end.min(rows.len() as u64)) as usize;
            &rows[start..end]
        }
        None => &rows[..],
    };
    let fields = args.columns.as_deref();
    let mut out = Vec::with_capacity(1 << 16);
    if !args.ndjson {
        out.extend_from_slice(if rows.is_empty() { b"[" } else { b"[\n" });
    }
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let mut flush = |out: &mut Vec<u8>| -> anyhow::Result<()> {
        match w.write_all(out) {
            Ok(()) => {
                out.clear();
                Ok(())
            }
            Err(e) => Err(anyhow::Error::from(e)),
        }
    };
    for (i, &r) in rows.iter().enumerate() {
        engine
            .source()
            .write_rows_json(&[r], fields, &mut out)
            .map_err(|e| common::lib_data(name, e))?;
        if args.ndjson {
            out.push(b'\n');
        } else {
            out.extend_from_slice(if i + 1 < rows.len() { b",\n" } else { b"\n" });
        }
        if out.len() >= 1 << 16 {
            flush(&mut out)?;
        }
    }
    if !args.ndjson {
        out.extend_from_slice(b"]\n");
    }
    flush(&mut out)?;
    w.flush().map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::parse_rows;

    #[test]
    fn row_ranges() {
        assert_eq!(parse_rows("2..5"), Ok(2..5));
        assert_eq!(parse_rows("3.."), Ok(3..u64::MAX));
        assert_eq!(parse_rows("..4"), Ok(0..4));
        assert_eq!(parse_rows("7"), Ok(7..8));
        assert!(parse_rows("5..2").is_err());
        assert!(parse_rows("a..b").is_err());
        assert!(parse_rows("1...2").is_err());
    }
}
