//! `colsnap query`: sort, filter, search and page a snapshot, printing one
//! page of rows as JSON. Strings are decoded only for the rows printed.

use crate::common::{self, lib, usage};
use colsnap::Snapshot;
use colsnap::events::OverlaySource;
use colsnap::query::{Engine, Paging, Query, Search, SnapshotSource, parse};
use std::path::PathBuf;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "\
Examples:
  colsnap query issues.colsnap --sort -updated_at,number --limit 20
  colsnap query issues.colsnap --where state=open --where 'labels[].name=bug'
  colsnap query issues.colsnap --where 'title^=Crash' --where 'comments>=5'
  colsnap query issues.colsnap --where milestone=null --where 'state in open,closed'
  colsnap query issues.colsnap --where 'created_at>=2024-01-01' --sort -created_at
  colsnap query issues.colsnap --search crash --in title,body --fields number,title,state
  colsnap query issues.colsnap --page 2 --limit 50 --ndjson
  colsnap query issues.colsnap --events events.ndjson --sort title

--where FIELD OP VALUE, OP one of = != < <= > >= ^= (prefix) and `in` (comma
list). VALUE `null` / `absent` tests for null-or-absent / absent (with = and
!=); a JSON string (\"null\", \"a,b\") is always a string. Conditions on list
fields (labels[].name) hold when any element matches. Sort: comma list, `-`
for descending; null and absent values sort last either way. Output: {\"data\":
[rows], \"pagination\": {page, limit, total, totalPages, hasMore}}; with --ndjson
one row per line, then the pagination object on the last line.
Semantics: docs/query.md.";

/// Arguments of `colsnap query`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Snapshot file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Sort keys, comma-separated, `-` for descending (`-updated_at,number`).
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// A condition (repeatable; all must hold): `state=open`, `comments>=5`.
    #[arg(long = "where", value_name = "COND")]
    pub filters: Vec<String>,
    /// Case-insensitive substring to search for.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Fields to search, comma-separated (default: every string field).
    #[arg(long = "in", value_name = "FIELDS", requires = "search")]
    pub search_in: Option<String>,
    /// Only these fields in the output, comma-separated.
    #[arg(long, value_name = "FIELDS")]
    pub fields: Option<String>,
    /// Page number, from 1.
    #[arg(long, default_value_t = 1, conflicts_with = "offset")]
    pub page: usize,
    /// Rows to skip (instead of --page).
    #[arg(long)]
    pub offset: Option<usize>,
    /// Rows per page.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One row per line, then the pagination object.
    #[arg(long)]
    pub ndjson: bool,
    /// Event log (NDJSON) to apply first: query the snapshot with the events.
    #[arg(long, value_name = "EVENTS")]
    pub events: Option<PathBuf>,
    /// Key field identifying rows in the events.
    #[arg(long, value_name = "FIELD", default_value = colsnap::events::DEFAULT_KEY_FIELD, requires = "events")]
    pub key: String,
}

/// Run `colsnap query`.
pub fn run(a: Args) -> anyhow::Result<()> {
    common::input_file(&a.file, false)?;
    let file = a.file.display().to_string();
    let snap = Snapshot::open(&a.file).map_err(|e| lib(&file, e))?;
    let bad = |e: colsnap::Error| match e {
        colsnap::Error::Invalid(m) => usage(m),
        e => lib(&file, e),
    };
    let mut q = Query::default();
    for w in &a.filters {
        q.filters.push(parse::parse_where(w).map_err(bad)?);
    }
    if let Some(s) = &a.sort {
        q.sort = parse::parse_sort(s).map_err(bad)?;
    }
    if let Some(text) = &a.search {
        q.search = Some(Search {
            text: text.clone(),
            fields: match &a.search_in {
                Some(f) => parse::parse_fields(f).map_err(bad)?,
                None => Vec::new(),
            },
        });
    }
    let fields = a
        .fields
        .as_deref()
        .map(parse::parse_fields)
        .transpose()
        .map_err(bad)?;
    let paging = match a.offset {
        Some(o) => Paging::new(o, a.limit).map_err(bad)?,
        None => Paging::page(a.page, a.limit).map_err(bad)?,
    };
    let engine = match &a.events {
        Some(ev) => {
            common::input_file(ev, false)?;
            let evname = ev.display().to_string();
            let ov =
                colsnap::events::load_overlay(snap, ev, &a.key).map_err(|e| lib(&evname, e))?;
            Engine::new(OverlaySource::new(ov))
        }
        None => Engine::new(SnapshotSource::new(snap)),
    };
    let rows = engine.run(&q).map_err(bad)?;
    let mut out = Vec::new();
    engine
        .page_json(&rows, paging, fields.as_deref(), a.ndjson, &mut out)
        .map_err(bad)?;
    common::print(&String::from_utf8(out)?)
}
