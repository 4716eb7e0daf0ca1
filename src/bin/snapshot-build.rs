//! `snapshot-build`: the same program as `colsnap build`.

#[path = "colsnap/build.rs"]
mod build;
#[allow(dead_code)]
#[path = "colsnap/common.rs"]
mod common;

use clap::Parser;
use std::process::ExitCode;

/// The same as `colsnap build`.
#[derive(Debug, Parser)]
#[command(name = "snapshot-build", version, about)]
struct Cli {
    #[command(flatten)]
    args: build::Args,
}

fn main() -> ExitCode {
    common::exit(build::run(Cli::parse().args))
}
