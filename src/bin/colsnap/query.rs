//! `colsnap query`: sort, filter, search and page a snapshot, printing one
//! page of rows as JSON. Strings are decoded only for the rows printed.

use crate::common::{self, lib, usage};
use colsnap::events::OverlaySource;
use colsnap::query::{Engine, Pagination, Paging, SnapshotSource, parse};
use std::io::IsTerminal;
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
  colsnap query issues.colsnap --where state=open --count
  colsnap query issues.colsnap --where state=open --facet 'labels[].name' --facet user.login --format table
  colsnap query issues.colsnap --where state=open --all --ndjson | colsnap build - -o open.colsnap
  colsnap query issues.colsnap --events events.ndjson --sort title

--where FIELD OP VALUE, OP one of = != < <= > >= ^= (prefix) and `in` (comma
list). VALUE `null` / `absent` tests for null-or-absent / absent (with = and
!=); a JSON string (\"null\", \"a,b\") is always a string. Conditions on list
fields (labels[].name) hold when any element matches. Sort: comma list, `-`
for descending; null and absent values sort last either way. `==`, `<>`, `~`
are refused with a hint; an unknown field gets a \"did you mean\".

Output (--format): `json` (the default when stdout is not a terminal): one
line, {\"data\": [rows], \"pagination\": {page, limit, total, totalPages,
hasMore}}; `ndjson` (or --ndjson): one row per line and nothing else, the
pagination object goes to stderr; `table` (the default on a terminal): a table
fitted to the terminal's width (or $COLUMNS); `csv`: a header line then the
page's rows (RFC 4180 quoting; nested values as JSON, list fields picked out
with --fields joined by \", \"). Fields appear in the order of
--fields. --count prints the number of matching rows only. --facet FIELD
(repeatable) counts the rows per value of FIELD over the whole result (top
--facet-size values, then the rest): a \"facets\" array after \"pagination\"
in json, tables after the rows in table, one JSON line on stderr in ndjson.
Semantics: docs/query.md.";

/// Arguments of `colsnap query`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Snapshot file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Sort keys, comma-separated, `-` for descending (`-updated_at,number`);
    /// a field named again is dropped (it never decides).
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// A condition (repeatable; all must hold): `state=open`, `comments>=5`.
    #[arg(long = "where", value_name = "COND")]
    pub filters: Vec<String>,
    /// Case-insensitive substring to search for.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Fields to search, comma-separated (default: every field holding
    /// strings); an object or list field searches the string fields under it.
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
    /// Rows per page, or `all`.
    #[arg(long, default_value = "50", value_parser = parse_limit)]
    pub limit: Limit,
    /// Every matching row on one page (same as `--limit all`; with
    /// --offset, every row from there).
    #[arg(long, conflicts_with_all = ["limit", "page"])]
    pub all: bool,
    /// Count rows per value of this field over the result (repeatable).
    #[arg(long, value_name = "FIELD")]
    pub facet: Vec<String>,
    /// Values listed per facet.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub facet_size: usize,
    /// Print only the number of matching rows.
    #[arg(long, conflicts_with_all = ["fields", "ndjson", "format", "all"])]
    pub count: bool,
    /// Output format (default: `table` on a terminal, `json` otherwise);
    /// `csv` writes the page with a header line.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Rows only, one per line (same as `--format ndjson`); the pagination
    /// object goes to stderr.
    #[arg(long, conflicts_with = "format")]
    pub ndjson: bool,
    /// Event log (NDJSON) to apply first: query the snapshot with the events.
    #[arg(long, value_name = "EVENTS")]
    pub events: Option<PathBuf>,
    /// Key field identifying rows in the events (of --events, or those a
    /// published snapshot carries); default `id`.
    #[arg(long, value_name = "FIELD")]
    pub key: Option<String>,
}

/// `--limit`: a row count or every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// At most this many rows.
    Rows(usize),
    /// Every row.
    All,
}

fn parse_limit(s: &str) -> Result<Limit, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(Limit::All);
    }
    match s.parse::<usize>() {
        Ok(0) => Err("limit starts at 1 (use --count for the number of rows only)".into()),
        Ok(n) => Ok(Limit::Rows(n)),
        Err(_) => Err(format!("`{s}` is not a row count or `all`")),
    }
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `{"data": [...], "pagination": {...}}` on one line.
    Json,
    /// One row per line; pagination on stderr.
    Ndjson,
    /// A table fitted to the terminal.
    Table,
    /// CSV (RFC 4180 quoting, `\n` line ends): a header line, then one
    /// line per row of the page.
    Csv,
}

/// Run `colsnap query`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let file = a.file.display().to_string();
    let snap = common::open_snapshot(&a.file)?;
    let bad = |e: colsnap::Error| match e {
        colsnap::Error::Invalid(m) => usage(m.replace("FILE", &file)),
        e => lib(&file, e),
    };
    let q = common::parse_query(
        &file,
        &a.filters,
        a.sort.as_deref(),
        a.search.as_deref(),
        a.search_in.as_deref(),
    )?;
    let fields = a
        .fields
        .as_deref()
        .map(parse::parse_fields)
        .transpose()
        .map_err(|e| bad(common::flag_error("--fields", e)))?;
    let engine = match common::events_overlay(&snap, a.events.as_deref(), a.key.as_deref())? {
        Some(ov) => Engine::new(OverlaySource::new(ov)),
        None => {
            // Over a remote snapshot: the columns of the filters, the sort
            // and the page in one round trip.
            let mut keys: Vec<&str> = q.filters.iter().map(|f| f.path.as_str()).collect();
            keys.extend(q.sort.iter().map(|k| k.path.as_str()));
            let page: Option<&[String]> = if a.count {
                Some(&[])
            } else {
                fields.as_deref()
            };
            common::warm_remote(&snap, &keys, page).map_err(|e| lib(&file, e))?;
            Engine::new(SnapshotSource::new(snap))
        }
    };
    // A bounded page without facets: only the page's rows are placed
    // (`Engine::run_page` selects the rows up to the page's end instead of
    // sorting every row); otherwise every matching row, in order.
    if a.limit == Limit::All && a.page > 1 {
        return Err(common::usage(format!(
            "--page {} with --limit all: every row is on page 1 (--offset N skips rows)",
            a.page
        )));
    }
    let bounded = match (a.all, a.limit) {
        (false, Limit::Rows(n)) if !a.count && a.facet.is_empty() => Some(n),
        _ => None,
    };
    let paging_of = |limit: usize| match a.offset {
        Some(o) => Paging::new(o, limit),
        None => Paging::page(a.page, limit),
    };
    let (rows, paging, pagination) = match bounded {
        Some(limit) => {
            let paging = paging_of(limit).map_err(bad)?;
            let (page, total) = engine.run_page(&q, paging).map_err(bad)?;
            (page, paging, Some(Pagination::new(paging, total)))
        }
        None => {
            let rows = engine.run(&q).map_err(bad)?;
            if a.count {
                return common::print(&format!("{}\n", rows.len()));
            }
            let limit = match (a.all, a.limit) {
                (true, _) | (_, Limit::All) => rows.len().max(1),
                (false, Limit::Rows(n)) => n,
            };
            (rows, paging_of(limit).map_err(bad)?, None)
        }
    };
    let facets = a
        .facet
        .iter()
        .map(|f| engine.facet(&rows, f, a.facet_size))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    // The page as JSON text / as objects, from the page's rows when only
    // they were placed.
    let page_json = |ndjson: bool, out: &mut Vec<u8>| match pagination {
        Some(pag) => engine
            .page_json_of(&rows, pag, fields.as_deref(), ndjson, out)
            .map(|()| pag),
        None => engine.page_json(&rows, paging, fields.as_deref(), ndjson, out),
    };
    let page = || match pagination {
        Some(pag) => engine.page_of(&rows, pag, fields.as_deref()),
        None => engine.page(&rows, paging, fields.as_deref()),
    };
    let format = match (a.ndjson, a.format) {
        (true, _) => Format::Ndjson,
        (false, Some(f)) => f,
        (false, None) if std::io::stdout().is_terminal() => Format::Table,
        (false, None) => Format::Json,
    };
    match format {
        Format::Json => {
            let mut out = Vec::new();
            page_json(false, &mut out).map_err(bad)?;
            if !facets.is_empty() {
                // `..."pagination":{...}}\n` becomes `...,"facets":[...]}\n`.
                out.truncate(out.len() - 2);
                out.extend_from_slice(b",\"facets\":");
                serde_json::to_writer(&mut out, &facets)?;
                out.extend_from_slice(b"}\n");
            }
            common::print(&String::from_utf8(out)?)
        }
        Format::Ndjson => {
            let mut out = Vec::new();
            let pagination = page_json(true, &mut out).map_err(bad)?;
            // The engine ends with the pagination line: rows go to stdout,
            // pagination to stderr, so a pipe sees rows only.
            let body = String::from_utf8(out)?;
            let cut = body.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
            common::print(&body[..cut])?;
            if facets.is_empty() {
                eprintln!("{}", serde_json::json!({ "pagination": pagination }));
            } else {
                eprintln!(
                    "{}",
                    serde_json::json!({ "pagination": pagination, "facets": facets })
                );
            }
            Ok(())
        }
        Format::Csv => {
            let page = page().map_err(bad)?;
            let (cols, cells) = grid(&page, fields.as_deref());
            let mut out = String::new();
            for line in std::iter::once(&cols).chain(cells.iter()) {
                let fields: Vec<String> = line.iter().map(|c| csv_field(c)).collect();
                out.push_str(&fields.join(","));
                out.push('\n');
            }
            common::print(&out)
        }
        Format::Table => {
            let page = page().map_err(bad)?;
            let mut out = table(&page, fields.as_deref(), paging.offset);
            for f in &facets {
                out.push('\n');
                out.push_str(&facet_table(f));
            }
            common::print(&out)
        }
    }
}

/// One facet as a small table: value, rows, then the rest and the rows
/// without a value.
fn facet_table(f: &colsnap::query::Facet) -> String {
    let headers = vec![f.field.clone(), "rows".to_string()];
    let mut rows: Vec<Vec<String>> = f
        .values
        .iter()
        .map(|v| {
            let text = match &v.value {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            vec![text, common::thousands(v.count as u64)]
        })
        .collect();
    if f.values.len() < f.distinct {
        rows.push(vec![
            format!(
                "({} other values)",
                common::thousands((f.distinct - f.values.len()) as u64)
            ),
            common::thousands(f.other_rows as u64),
        ]);
    }
    if f.missing_rows > 0 {
        rows.push(vec![
            "(no value)".to_string(),
            common::thousands(f.missing_rows as u64),
        ]);
    }
    common::fit_table(&headers, &rows, &[1])
}

/// A page as a table fitted to the terminal: one line per row, cells cut
/// to their share of the width (by display width), then a summary line.
/// A CSV field: quoted when it holds a comma, a quote, or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn table(page: &colsnap::query::Page, fields: Option<&[String]>, offset: usize) -> String {
    let (cols, cells) = grid(page, fields);
    let p = &page.pagination;
    let shown = page.data.len();
    let first = offset;
    let summary = if p.total == 0 {
        "no matching rows\n".to_string()
    } else if shown == 0 {
        format!(
            "no rows on page {}: {} rows in {} pages\n",
            p.page,
            common::thousands(p.total as u64),
            p.total_pages
        )
    } else {
        format!(
            "rows {}-{} of {} (page {} of {}{})\n",
            common::thousands(first as u64 + 1),
            common::thousands((first + shown) as u64),
            common::thousands(p.total as u64),
            p.page,
            p.total_pages,
            if p.has_more {
                "; --page N for more, --all for every row"
            } else {
                ""
            }
        )
    };
    if page.data.is_empty() {
        return summary;
    }
    format!(
        "{}{summary}",
        common::fit_table_flex(&cols, &cells, &[], &[], "--fields")
    )
}

/// The page as text cells: one column per `--fields` entry (nested values
/// picked out, list values joined by ", ") or per top-level key; strings
/// as they are, other values as JSON, null as `null`, absent as nothing.
fn grid(page: &colsnap::query::Page, fields: Option<&[String]>) -> (Vec<String>, Vec<Vec<String>>) {
    use serde_json::Value;
    let mut cols: Vec<String> = Vec::new();
    for row in &page.data {
        if let Value::Object(m) = row {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    // With --fields, one column per field, nested values picked out
    // (`user.login`, `labels[].name` joined by ", ").
    if let Some(fs) = fields {
        cols = fs.to_vec();
    }
    let cell = |v: Option<&Value>| match v {
        None => String::new(),
        Some(Value::Null) => "null".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let cells: Vec<Vec<String>> = page
        .data
        .iter()
        .map(|row| {
            cols.iter()
                .map(|c| match fields {
                    Some(_) => pick(row, c).map_or_else(String::new, |v| match v {
                        Value::Array(items) => items
                            .iter()
                            .map(|i| cell(Some(i)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        v => cell(Some(&v)),
                    }),
                    None => cell(row.get(c)),
                })
                .collect()
        })
        .collect();
    (cols, cells)
}

/// The value at a display path (`user.login`, `labels[].name`; a `[]`
/// step maps over the array). Escapes are not handled: a key holding `.`
/// or `[` shows as absent in the table (the JSON formats are exact).
fn pick(v: &serde_json::Value, path: &str) -> Option<serde_json::Value> {
    use serde_json::Value;
    let (head, rest) = match path.find(['.', '[']) {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    let x = v.get(head)?;
    if let Some(r) = rest.strip_prefix("[]") {
        let r = r.strip_prefix('.').unwrap_or(r);
        let items = x.as_array()?;
        return Some(Value::Array(
            items
                .iter()
                .filter_map(|i| {
                    if r.is_empty() {
                        Some(i.clone())
                    } else {
                        pick(i, r)
                    }
                })
                .collect(),
        ));
    }
    match rest.strip_prefix('.') {
        Some(r) => pick(x, r),
        None => Some(x.clone()),
    }
}
