//! `colsnap events split LOG DIR`: cut an event log into immutable,
//! named segment files (SPEC.md 13.5) that `--events DIR` reads.

use crate::common::{self, lib};
use colsnap::events::{read_events, split_segments, store_segments};
use std::path::PathBuf;

/// Segment size when `--per-segment` is not given.
pub const DEFAULT_PER_SEGMENT: u64 = 1024;

const SPLIT_EXAMPLES: &str = "\
Examples:
  colsnap events split events.ndjson segments/
  colsnap events split events.ndjson segments/ --per-segment 100 --json
  colsnap query issues.colsnap --events segments/ --where state=open --count";

/// Event-log tools.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

/// The `events` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Split an event log into segment files (SPEC.md 13.5): files already
    /// there are kept, only new segments are written.
    #[command(after_help = SPLIT_EXAMPLES)]
    Split(SplitArgs),
}

/// `colsnap events split` arguments.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// The event log (NDJSON, one event per line; see SPEC.md, "Event log").
    pub log: PathBuf,
    /// The directory of segments (created if absent).
    pub dir: PathBuf,
    /// Events per segment: segments end before every multiple of N of the
    /// sequence number, so a longer log split again rewrites only the last.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PER_SEGMENT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub per_segment: u64,
    /// Print a JSON report instead of one line per segment.
    #[arg(long)]
    pub json: bool,
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<()> {
    match a.command {
        Sub::Split(a) => split(a),
    }
}

fn split(a: SplitArgs) -> anyhow::Result<()> {
    common::input_file(&a.log, false)?;
    let logname = a.log.display().to_string();
    let dirname = a.dir.display().to_string();
    // DIR, or the nearest of its parents that exists, is a directory (as
    // `publish` checks its DIR): a file there is a usage error, before
    // the log is read.
    if let Some(p) = a.dir.ancestors().find(|p| p.exists())
        && !p.is_dir()
    {
        return Err(common::usage(format!("{}: not a directory", p.display())));
    }
    let f = std::fs::File::open(&a.log).map_err(|e| common::usage(format!("{logname}: {e}")))?;
    // Every event is read and checked before anything is written.
    let events = read_events(std::io::BufReader::new(f)).map_err(|e| lib(&logname, e))?;
    let segs = split_segments(&events, a.per_segment).map_err(|e| lib(&logname, e))?;
    let stored = store_segments(&a.dir, &segs).map_err(|e| match e {
        // A same-named file with other bytes: bad data, not bad usage.
        colsnap::Error::Invalid(m) => common::data(m),
        e => lib(&dirname, e),
    })?;
    let written = stored.iter().filter(|(_, new)| *new).count();
    let reused = stored.len() - written;
    if a.json {
        let list: Vec<serde_json::Value> = segs
            .iter()
            .zip(&stored)
            .map(|(s, (p, new))| {
                serde_json::json!({
                    "path": p.display().to_string(),
                    "first": s.first,
                    "last": s.last,
                    "events": s.last - s.first + 1,
                    "bytes": s.bytes.len(),
                    "new": new,
                })
            })
            .collect();
        let report = serde_json::json!({"segments": list, "written": written, "reused": reused});
        return common::print(&format!("{report}\n"));
    }
    let mut out = String::new();
    for (s, (p, new)) in segs.iter().zip(&stored) {
        out.push_str(&format!(
            "{}  {} events  {} bytes  {}\n",
            p.display(),
            common::thousands(s.last - s.first + 1),
            common::thousands(s.bytes.len() as u64),
            if *new { "new" } else { "present" }
        ));
    }
    common::print(&out)?;
    eprintln!(
        "{dirname}: {} events in {} segments ({written} written, {reused} already present)",
        common::thousands(events.len() as u64),
        stored.len()
    );
    Ok(())
}
