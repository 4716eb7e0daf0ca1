//! `colsnap diff OLD NEW [-o EVENTS]`: the events that turn OLD into NEW.

use colsnap::Snapshot;
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
    /// Write the events here (atomically) instead of stdout.
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
    let old = Snapshot::open(&a.old)?;
    let new = Snapshot::open(&a.new)?;
    let events = diff(&old, &new, &a.key, a.first_seq)?;
    match &a.output {
        Some(p) => colsnap::write::write_atomically(p, |w| write_events(w, &events))?,
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            write_events(&mut lock, &events)?;
        }
    }
    eprintln!("{} events", events.len());
    Ok(())
}
