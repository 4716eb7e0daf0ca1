//! `snapshot-build`: the same program as `colsnap build`.

#[path = "colsnap/build.rs"]
mod build;
#[allow(dead_code)]
#[path = "colsnap/common.rs"]
mod common;

use std::process::ExitCode;

/// jemalloc returns the memory a build frees, so a build stays within its
/// `--memory` budget (glibc's malloc kept up to 64 MiB a thread; issue 16).
/// On Linux it is built asking for transparent huge pages and one arena
/// per CPU (`thp:always,percpu_arena:percpu`, `.cargo/config.toml`): fewer
/// page faults for decoded columns.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
