//! `colsnap diff OLD NEW [-o EVENTS]`: the events that turn OLD into NEW.

use crate::common::{self, lib};
use colsnap::events::{diff, write_events};
use std::path::PathBuf;

/// Write the events (NDJSON) that turn snapshot OLD into snapshot NEW: same
/// rows, same order, same values.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot clients have.
    pub old: PathBuf,
    /// The snapshot to reach.
    pub new: PathBuf,
    /// Write the events here (atomically) instead of stdout; `-` is stdout.
    /// Must be a regular file or a new path (not a directory or a device node).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The key field that identifies rows in both snapshots.
    #[arg(long, default_value = "id")]
    pub key: String,
    /// Sequence number of the first event.
    #[arg(long, default_value_t = 1)]
    pub first_seq: u64,
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<()> {
    if a.old.as_os_str() == "-" && a.new.as_os_str() == "-" {
        return Err(common::usage("only one of OLD and NEW can be `-` (stdin)"));
    }
    let output = a.output.as_ref().filter(|p| p.as_os_str() != "-");
    if let Some(p) = output {
        common::output_file(p)?;
    }
    let nname = a.new.display().to_string();
    let old = common::open_snapshot(&a.old)?;
    let new = common::open_snapshot(&a.new)?;
    let oname = a.old.display().to_string();
    // A rule broken by the old rows (a key missing or repeated) names OLD.
    let events = diff(&old, &new, &a.key, a.first_seq).map_err(|e| match &e {
        colsnap::Error::Value { message, .. } if message.starts_with("the old ") => lib(&oname, e),
        _ => lib(&nname, e),
    })?;
    match output {
        Some(p) => colsnap::write::write_atomically(p, |w| write_events(w, &events))
            .map_err(|e| lib(&p.display().to_string(), e))?,
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            write_events(&mut lock, &events).map_err(|e| lib("stdout", e))?;
        }
    }
    eprintln!("{} events", events.len());
    Ok(())
}
