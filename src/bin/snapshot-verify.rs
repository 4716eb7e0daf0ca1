//! `snapshot-verify`: the same program as `colsnap verify`.

#[allow(dead_code)]
#[path = "colsnap/common.rs"]
mod common;
#[path = "colsnap/verify.rs"]
mod verify;

use std::process::ExitCode;

/// The same as `colsnap verify`.
#[derive(Debug, clap::Parser)]
#[command(name = "snapshot-verify", version, about)]
struct Cli {
    #[command(flatten)]
    args: verify::Args,
}

fn main() -> ExitCode {
    match common::parse_args::<Cli>() {
        Ok(cli) => {
            common::remove_temp_files_on_signals();
            common::exit(verify::run(cli.args))
        }
        Err(code) => code,
    }
}
