//! `snapshot-verify`: the same program as `colsnap verify`.

#[allow(dead_code)]
#[path = "colsnap/common.rs"]
mod common;
#[path = "colsnap/verify.rs"]
mod verify;

use clap::Parser;
use std::process::ExitCode;

/// The same as `colsnap verify`.
#[derive(Debug, Parser)]
#[command(name = "snapshot-verify", version, about)]
struct Cli {
    #[command(flatten)]
    args: verify::Args,
}

fn main() -> ExitCode {
    common::exit(verify::run(Cli::parse().args))
}
