//! `snapshot-inspect`: the same program as `colsnap inspect`.

#[allow(dead_code)]
#[path = "colsnap/common.rs"]
mod common;
#[path = "colsnap/inspect.rs"]
mod inspect;

use std::process::ExitCode;

/// The same as `colsnap inspect`.
#[derive(Debug, clap::Parser)]
#[command(name = "snapshot-inspect", version, about)]
struct Cli {
    #[command(flatten)]
    args: inspect::Args,
}

fn main() -> ExitCode {
    match common::parse_args::<Cli>() {
        Ok(cli) => {
            common::remove_temp_files_on_signals();
            common::exit(inspect::run(cli.args))
        }
        Err(code) => code,
    }
}
