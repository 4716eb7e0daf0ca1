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
  zstd -dc issues.ndjson.zst | colsnap verify issues.colsnap --against -
  snapshot-verify issues.colsnap

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
    /// input (array or NDJSON, optionally gzip/zstd; `-` for stdin).
    #[arg(long, value_name = "INPUT")]
    pub against: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
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
        rep.rows,
        rep.columns,
        rep.sections,
        rep.strings,
        rep.chunks,
        common::thousands(rep.bytes_checked)
    );
    for c in &rep.checks {
        out.push_str(&format!("  ok  {c}\n"));
    }
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
        let rows = snap
            .verify_against(std::io::BufReader::with_capacity(1 << 20, reader))
            .map_err(|e| match e {
                // A mismatch is a failed verification (exit 1), not a usage error.
                e @ colsnap::Error::Mismatch { .. } => {
                    data(format!("{name}: does not match {aname}: {e}"))
                }
                e if e.is_data_error() => lib(&aname, e),
                e => lib(&name, e),
            })?;
        out.push_str(&format!(
            "  ok  {rows} rows equal to the rows of {aname} (as JSON values)\n"
        ));
    }
    if args.quiet {
        return Ok(());
    }
    common::print(&out)
}
