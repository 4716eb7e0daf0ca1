//! `snapshot-build`: the same program as `colsnap build`.

#[path = "colsnap/build.rs"]
mod build;
#[allow(dead_code)]
#[path = "colsnap/common.rs"]
mod common;

use std::process::ExitCode;

/// The same as `colsnap build`.
#[derive(Debug, clap::Parser)]
#[command(name = "snapshot-build", version, about)]
struct Cli {
    #[command(flatten)]
    args: build::Args,
}

fn main() -> ExitCode {
    match common::parse_args::<Cli>() {
        Ok(cli) => {
            common::remove_temp_files_on_signals();
            common::exit(build::run(cli.args))
        }
        Err(code) => code,
    }
}
