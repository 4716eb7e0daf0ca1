//! `colsnap` (events branch): the event-log commands. The lead wires these
//! subcommands into the full CLI.

mod compact;
mod diff;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Columnar snapshots of issue-tracker JSON exports.
#[derive(Debug, Parser)]
#[command(name = "colsnap", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply an event log to a snapshot and write a new snapshot.
    Compact(compact::Args),
    /// Write the events that turn one snapshot into another.
    Diff(diff::Args),
}

fn main() -> ExitCode {
    let r = match Cli::parse().command {
        Command::Compact(a) => compact::run(a),
        Command::Diff(a) => diff::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let data = e
                .downcast_ref::<colsnap::Error>()
                .is_some_and(|e| e.is_data_error());
            ExitCode::from(if data { 1 } else { 2 })
        }
    }
}
