//! `colsnap compact SNAPSHOT EVENTS -o NEW`: apply an event log and write a
//! new snapshot (atomically).

use crate::common::{self, lib};
use colsnap::BuildOptions;
use colsnap::events::{CompactOptions, compact};
use std::path::PathBuf;

/// Apply an event log (NDJSON) to a snapshot and write the result as a new snapshot.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot the events follow.
    pub snapshot: PathBuf,
    /// The event log: one event per line (see SPEC.md, "Event log").
    pub events: PathBuf,
    /// The new snapshot (written atomically; may be SNAPSHOT itself, never
    /// EVENTS; a regular file or a new path, not `-`, a directory or a
    /// device node).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The key field events address rows by (a display path such as `id` or `issue.id`).
    #[arg(long, default_value = "id")]
    pub key: String,
}

/// Run the command.
pub fn run(a: Args) -> anyhow::Result<()> {
    common::input_file(&a.events, false)?;
    common::output_file(&a.output)?;
    // OUTPUT may be SNAPSHOT (the new snapshot replaces it), never EVENTS.
    common::not_an_input(&a.output, &a.events, "EVENTS")?;
    let name = a.snapshot.display().to_string();
    let evname = a.events.display().to_string();
    let snap = common::open_snapshot(&a.snapshot)?;
    common::check_key_field(&snap, &a.key, &name)?;
    let f = std::fs::File::open(&a.events).map_err(|e| common::usage(format!("{evname}: {e}")))?;
    let opts = CompactOptions {
        key_field: a.key.clone(),
        build: BuildOptions::default(),
    };
    let report = colsnap::write::write_atomically(&a.output, |w| {
        compact(&snap, std::io::BufReader::new(f), &opts, w)
    })
    .map_err(|e| match e {
        e @ colsnap::Error::Event { .. } => lib(&evname, e),
        e => lib(&name, e),
    })?;
    common::warn_inexact_event_integers(&evname, report.inexact_integers);
    eprintln!(
        "{}: {} rows, {} columns, {} strings, {} bytes",
        a.output.display(),
        common::thousands(report.rows),
        common::thousands(report.columns as u64),
        common::thousands(report.strings),
        common::thousands(report.output_bytes)
    );
    Ok(())
}
