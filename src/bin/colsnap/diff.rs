//! `colsnap diff OLD NEW [-o EVENTS]`: the events that turn OLD into NEW.

use crate::common::{self, lib};
use colsnap::events::{Event, diff_each};
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
    /// Must be a regular file or a new path (not a directory or a device
    /// node), and neither OLD nor NEW.
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
        common::not_an_input(p, &a.old, "OLD")?;
        common::not_an_input(p, &a.new, "NEW")?;
    }
    let nname = a.new.display().to_string();
    let old = common::open_snapshot(&a.old)?;
    let new = common::open_snapshot(&a.new)?;
    let oname = a.old.display().to_string();
    common::check_key_field(&old, &a.key, &oname)?;
    common::check_key_field(&new, &a.key, &nname)?;
    let named = |e: colsnap::Error| match &e {
        colsnap::Error::Value { message, .. } if message.starts_with("the old ") => lib(&oname, e),
        _ => lib(&nname, e),
    };
    // Each event written as it is made (memory follows the keys, not the
    // events), into the output's temporary file or, for stdout, a
    // temporary file copied out once the diff is whole: an error part way
    // leaves no part of a log.
    let write_failed = std::cell::Cell::new(false);
    let run = |w: &mut dyn std::io::Write| {
        diff_each(&old, &new, &a.key, a.first_seq, &mut |e: Event| {
            let line = e.to_json();
            w.write_all(line.as_bytes())
                .and_then(|_| w.write_all(b"\n"))
                .map_err(|e| {
                    write_failed.set(true);
                    colsnap::Error::from(e)
                })
        })
    };
    // A failed write names where it wrote; any other error, the snapshot.
    let failed = |place: &str, e| {
        if write_failed.get() {
            lib(place, e)
        } else {
            named(e)
        }
    };
    let count = match output {
        Some(p) => colsnap::write::write_atomically(p, |w| run(w))
            .map_err(|e| failed(&p.display().to_string(), e))?,
        None => {
            use std::io::{Seek, Write};
            let spool = tempfile::tempfile()
                .map_err(|e| lib("a temporary file", colsnap::Error::from(e)))?;
            let mut w = std::io::BufWriter::new(spool);
            let count = run(&mut w).map_err(|e| failed("a temporary file", e))?;
            let io = |e| lib("a temporary file", colsnap::Error::from(e));
            let mut spool = w.into_inner().map_err(|e| io(e.into_error()))?;
            spool.rewind().map_err(io)?;
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            std::io::copy(&mut spool, &mut lock)
                .and_then(|_| lock.flush())
                .map_err(|e| lib("stdout", colsnap::Error::from(e)))?;
            count
        }
    };
    eprintln!("{count} events");
    Ok(())
}
