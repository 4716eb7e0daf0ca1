//! `colsnap serve ARGS...`: run the HTTP server, the program `colsnap-serve`
//! (the workspace member `server/`), with ARGS, the way git and cargo run
//! their external subcommands. The server is its own program so that the
//! library and this CLI do not depend on tokio and axum.
//!
//! The program is looked for next to this executable first (a `cargo build
//! --workspace` puts both in `target/<profile>/`), then on `PATH`. On unix
//! this process is replaced by it (`exec`): the same process id, so Ctrl-C,
//! SIGTERM and the exit status go to and come from the server itself.

use crate::common::{EXIT_DATA, EXIT_USAGE};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The server program's file name.
const PROGRAM: &str = "colsnap-serve";

/// What `colsnap serve` passes through (everything after `serve`).
#[derive(Debug, clap::Args)]
#[command(
    disable_help_flag = true,
    after_help = "Runs the program colsnap-serve (found next to colsnap, else on PATH) with the same arguments; `colsnap serve --help` prints its options.\nBuild it with `cargo build --release --workspace` (or install it: `cargo install --path server`)."
)]
pub struct Args {
    /// Arguments for colsnap-serve: FILE... [--addr ADDR] [--events NAME=LOG]
    /// [--rate-limit N] [--cors ORIGIN] [--write-token-file F] ...
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<OsString>,
}

/// The program to run: beside the current executable when there, else the
/// bare name (looked up on `PATH`).
fn program() -> PathBuf {
    let name = format!("{PROGRAM}{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn not_found(prog: &std::path::Path, e: &std::io::Error) -> ExitCode {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
        .unwrap_or_else(|| "this program's directory".into());
    if e.kind() == std::io::ErrorKind::NotFound {
        eprintln!(
            "colsnap: error: `colsnap serve` runs the program {PROGRAM}, which is neither in {beside} nor on PATH: build it with `cargo build --release --workspace` (then run target/release/colsnap serve ...) or install it with `cargo install --path server`"
        );
        ExitCode::from(EXIT_USAGE)
    } else {
        eprintln!("colsnap: error: cannot run {}: {e}", prog.display());
        ExitCode::from(EXIT_DATA)
    }
}

/// Run the server with `a.args`; returns only when it could not be started
/// (unix) or when it ended (elsewhere), with its exit status.
pub fn run(a: Args) -> ExitCode {
    let prog = program();
    let mut cmd = Command::new(&prog);
    cmd.args(&a.args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Returns only on failure.
        let e = cmd.exec();
        not_found(&prog, &e)
    }
    #[cfg(not(unix))]
    {
        match cmd.status() {
            Ok(s) => ExitCode::from(s.code().map_or(EXIT_DATA, |c| c.clamp(0, 255) as u8)),
            Err(e) => not_found(&prog, &e),
        }
    }
}
