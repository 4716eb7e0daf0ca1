//! `colsnap`: columnar snapshots of issue-tracker JSON exports.
//! (Query branch: only the `query` subcommand; the full CLI lives on main.)

#[allow(dead_code)]
mod common;
mod query;

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
    /// Sort, filter, search and page a snapshot's rows (JSON on stdout).
    Query(query::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::exit(match cli.command {
        Command::Query(a) => query::run(a),
    })
}
