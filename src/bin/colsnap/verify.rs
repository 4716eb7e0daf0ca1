//! `colsnap verify`: every checksum and structural rule, optionally a
//! row-by-row comparison with the JSON the snapshot was built from.

use crate::common::{self, data, lib, usage};
use std::io::Read;
use std::path::PathBuf;

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "\
Examples:
  colsnap verify issues.colsnap
  colsnap verify issues.colsnap --against issues.ndjson.zst
  colsnap verify site/issues.latest.json
  zstd -dc issues.ndjson.zst | colsnap verify issues.colsnap --against -
  snapshot-verify issues.colsnap

A published snapshot (a pointer or a manifest) is checked as a file, and
every object is fetched and checked against its hash (the footer's too),
and its event segments are applied over it.

Exit status: 0 when every check passed, 1 when the snapshot is corrupt or
differs from --against (the error line names the section or column, the
byte offset and what was expected), 2 on usage errors.";

/// Arguments of `colsnap verify` / `snapshot-verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Snapshot file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Also check that the snapshot holds exactly the rows of this JSON
    /// input (array or NDJSON, optionally gzip/zstd; `-` for stdin). For a
    /// publication, its rows: the snapshot's with its event segments
    /// applied.
    #[arg(long, value_name = "INPUT")]
    pub against: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the report as one JSON object (snake_case keys, like
    /// `inspect --json`); failures are still an error line and exit 1.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Key field of the event segments a published snapshot (a pointer or
    /// a manifest) carries, applied over it to check them; default `id`.
    #[arg(long, value_name = "FIELD")]
    pub key: Option<String>,
}

/// Run `verify`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(a) = &args.against {
        common::input_file(a, true)?;
        if a.as_os_str() == "-" && args.file.as_os_str() == "-" {
            return Err(common::usage(
                "FILE and --against cannot both be `-` (stdin)",
            ));
        }
    }
    let name = args.file.display().to_string();
    let snap = common::open_snapshot(&args.file)?;
    let rep = snap.verify().map_err(|e| lib(&name, e))?;
    let mut out = format!(
        "{name}: ok: {} rows, {} columns, {} sections, {} strings in {} chunks, {} bytes checked\n",
        common::thousands(rep.rows),
        common::thousands(rep.columns as u64),
        common::thousands(rep.sections as u64),
        common::thousands(rep.strings),
        common::thousands(rep.chunks as u64),
        common::thousands(rep.bytes_checked)
    );
    for c in &rep.checks {
        out.push_str(&format!("  ok  {c}\n"));
    }
    // A publication: every object fetched and checked against its hash
    // (the footer's too, which the open took from the manifest), and the
    // event segments it carries applied over the snapshot.
    let mut published = serde_json::Value::Null;
    let mut overlay = None;
    if let Some(p) = common::published().filter(|p| p.manifest.is_some()) {
        let (objects, bytes) = p.check_objects().map_err(|e| lib(&name, e))?;
        out.push_str(&format!(
            "  ok  {} objects ({} bytes) hash to their names\n",
            common::thousands(objects as u64),
            common::thousands(bytes)
        ));
        overlay = common::events_overlay(&snap, None, args.key.as_deref())?;
        let events = overlay.as_ref().map_or(0, |o| o.applied());
        if events > 0 {
            out.push_str(&format!(
                "  ok  {} events of its segments apply over the snapshot\n",
                common::thousands(events)
            ));
        }
        published = serde_json::json!({
            "objects": objects,
            "bytes": bytes,
            "events": events,
            "rows": overlay.as_ref().map_or(rep.rows, |o| o.len() as u64),
        });
    }
    if args.key.is_some() && overlay.is_none() {
        return Err(usage(
            "--key names the key field of a publication's event segments: FILE carries none",
        ));
    }
    let mut against = serde_json::Value::Null;
    if let Some(a) = &args.against {
        let stdin = a.as_os_str() == "-";
        let aname = if stdin {
            "<stdin>".to_string()
        } else {
            a.display().to_string()
        };
        let reader: Box<dyn Read> = if stdin {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(a).map_err(|e| usage(format!("{aname}: {e}")))?)
        };
        let input = std::io::BufReader::with_capacity(1 << 20, reader);
        // A publication's rows are the snapshot's with its segments
        // applied (SPEC.md 15.4).
        let compared = match overlay.as_mut() {
            Some(o) => o.verify_against(input),
            None => snap.verify_against(input),
        };
        let rows = compared.map_err(|e| match e {
            // A mismatch is a failed verification (exit 1), not a usage error.
            colsnap::Error::Mismatch { row, detail } => data(format!(
                "{name}: does not match {aname}: mismatch at row {row}: {}",
                short_detail(&detail)
            )),
            e if e.is_data_error() => lib(&aname, e),
            e => lib(&name, e),
        })?;
        out.push_str(&format!(
            "  ok  {} rows equal to the rows of {aname} (as JSON values)\n",
            common::thousands(rows as u64)
        ));
        against = serde_json::json!({ "input": aname, "rows": rows });
    }
    if args.quiet {
        return Ok(());
    }
    if args.json {
        let mut v = serde_json::json!({
            "file": name,
            "ok": true,
            "rows": rep.rows,
            "columns": rep.columns,
            "sections": rep.sections,
            "strings": rep.strings,
            "chunks": rep.chunks,
            "bytes_checked": rep.bytes_checked,
            "checks": rep.checks,
            "against": against,
            "published": published,
        });
        if let Some(r) = common::remote_stats() {
            v["remote"] = r;
        }
        return common::print(&format!("{v}\n"));
    }
    common::print(&out)
}

/// A mismatch's detail with long values cut: `` `body`: expected "...",
/// got "..." `` keeps the path and the first 80 columns of each value.
fn short_detail(detail: &str) -> String {
    const MAX: usize = 80;
    if let Some(at) = detail.find(": expected ")
        && let Some(got) = detail.rfind(", got ")
        && got > at
    {
        let exp = &detail[at + ": expected ".len()..got];
        let g = &detail[got + ", got ".len()..];
        return format!(
            "{}: expected {}, got {}",
            &detail[..at],
            common::cut(exp, MAX),
            common::cut(g, MAX)
        );
    }
    common::cut(detail, 4 * MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_values_are_cut() {
        let long = format!("\"{}\"", "b".repeat(5000));
        let d = format!("`body`: expected {long}, got {long}");
        let s = super::short_detail(&d);
        assert!(s.starts_with("`body`: expected \"bbb"), "{s}");
        assert!(s.contains("…, got \"bbb") && s.len() < 300, "{s}");
        assert_eq!(
            super::short_detail("`a`: expected 1, got 2"),
            "`a`: expected 1, got 2"
        );
    }
}
