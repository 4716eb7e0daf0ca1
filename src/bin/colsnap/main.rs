//! `colsnap`: build, inspect, verify and export columnar snapshots of
//! issue-tracker JSON exports. Each subcommand lives in its own module;
//! `snapshot-build`, `snapshot-inspect` and `snapshot-verify` reuse them.

mod build;
mod common;
mod compact;
mod diff;
mod events;
mod export;
mod inspect;
mod publish;
mod query;
mod serve;
mod verify;

use clap::{CommandFactory, Subcommand};
use std::process::ExitCode;

/// jemalloc returns the memory a build frees, so a build stays within its
/// `--memory` budget (glibc's malloc kept up to 64 MiB a thread; issue 16).
/// On Linux it is built asking for transparent huge pages and one arena
/// per CPU (`thp:always,percpu_arena:percpu`, `.cargo/config.toml`): fewer
/// page faults for decoded columns.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const EXAMPLES: &str = "\
Examples:
  colsnap build issues.ndjson -o issues.colsnap
  colsnap inspect issues.colsnap
  colsnap verify issues.colsnap --against issues.ndjson
  colsnap export issues.colsnap --ndjson --columns number,title --rows 0..10
  colsnap query issues.colsnap --where state=open --sort -updated_at --fields number,title --limit 20
  colsnap compact issues.colsnap events.ndjson -o new.colsnap
  colsnap diff old.colsnap new.colsnap -o events.ndjson
  colsnap events split events.ndjson segments/
  colsnap publish issues.colsnap site/ && colsnap query https://cdn.example/issues.latest.json --stats
  colsnap serve issues.colsnap --addr 127.0.0.1:8080
  colsnap completions bash > /etc/bash_completion.d/colsnap
  colsnap man > colsnap.1

Exit status: 0 success, 1 bad data (invalid JSON, corrupt snapshot, failed
verify, a limit exceeded, an I/O failure while working), 2 usage error (bad
arguments, missing input file, OUTPUT == INPUT, OUTPUT a directory, a device
node or in a missing directory). On SIGINT, SIGTERM or SIGHUP the temporary
output file is removed before the program ends.
Run `colsnap help <command>` for a command's options and examples.";

/// Columnar snapshots of issue-tracker JSON exports.
#[derive(Debug, clap::Parser)]
#[command(name = "colsnap", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print on stderr, when the command ends, the bytes the reader read
    /// and, for a remote snapshot (an `http(s)://` URL, a manifest), the
    /// requests and bytes that cost.
    #[arg(long, global = true)]
    stats: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a snapshot from a JSON array or NDJSON (optionally gzip/zstd).
    Build(build::Args),
    /// Show columns, types, encodings, sizes and string tables of a snapshot.
    Inspect(inspect::Args),
    /// Check every checksum and invariant (and optionally the source rows).
    Verify(verify::Args),
    /// Write a snapshot's rows as JSON to stdout.
    Export(export::Args),
    /// Sort, filter, search and page rows without decoding strings.
    Query(query::Args),
    /// Apply an event log to a snapshot and write a new snapshot.
    Compact(compact::Args),
    /// Write the events that turn one snapshot into another.
    Diff(diff::Args),
    /// Event-log tools: `events split` cuts a log into segment files.
    Events(events::Args),
    /// Publish a snapshot as content-addressed objects and a manifest.
    Publish(publish::Args),
    /// Serve snapshots as an HTTP API (runs the program colsnap-serve).
    Serve(serve::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `colsnap man | man -l -`).
    Man,
}

fn main() -> ExitCode {
    let cli = match common::parse_args::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Before any signal handler: the server takes this process over.
    let command = match cli.command {
        Command::Serve(a) => return serve::run(a),
        c => c,
    };
    common::remove_temp_files_on_signals();
    let stats = cli.stats;
    let code = common::exit(match command {
        Command::Build(a) => build::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Export(a) => export::run(a),
        Command::Query(a) => query::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Events(a) => events::run(a),
        Command::Publish(a) => publish::run(a),
        Command::Serve(_) => unreachable!("handled above"),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "colsnap", &mut out);
            String::from_utf8(out)
                .map_err(anyhow::Error::from)
                .and_then(|s| common::print(&s))
        }
        Command::Man => {
            let mut out = Vec::new();
            let cmd =
                Cli::command().long_version(&*Box::leak(common::long_version().into_boxed_str()));
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(anyhow::Error::from)
                .and_then(|()| Ok(String::from_utf8(out)?))
                .and_then(|s| common::print(&s))
        }
    });
    if stats {
        common::print_stats();
    }
    code
}
