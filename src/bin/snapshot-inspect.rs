//! `snapshot-inspect`: the same program as `colsnap inspect`.

#[allow(dead_code)]
#[path = "colsnap/common.rs"]
mod common;
#[path = "colsnap/inspect.rs"]
mod inspect;

use clap::Parser;
use std::process::ExitCode;

/// The same as `colsnap inspect`.
#[derive(Debug, Parser)]
#[command(name = "snapshot-inspect", version, about)]
struct Cli {
    #[command(flatten)]
    args: inspect::Args,
}

fn main() -> ExitCode {
    common::exit(inspect::run(Cli::parse().args))
}
