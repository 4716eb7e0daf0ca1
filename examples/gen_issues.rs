//! Write generated GitHub-style issues as NDJSON.
//!
//! ```text
//! cargo run --release --example gen_issues -- --count N [--seed S] [--repo OWNER/NAME] [--out FILE]
//! ```
//!
//! Without `--out` the NDJSON goes to stdout. A summary (count, bytes, rate)
//! goes to stderr.

use colsnap_testdata::{GenOptions, write_ndjson};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: gen_issues --count N [--seed S] [--repo OWNER/NAME] [--out FILE]";

/// Counts the bytes that pass through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn parse_args() -> Result<(GenOptions, Option<String>), String> {
    let mut opts = GenOptions::default();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--count" | "-n" => {
                let v = value()?;
                opts.count = v
                    .replace('_', "")
                    .parse()
                    .map_err(|e| format!("bad --count {v:?}: {e}"))?;
            }
            "--seed" | "-s" => {
                let v = value()?;
                opts.seed = v.parse().map_err(|e| format!("bad --seed {v:?}: {e}"))?;
            }
            "--repo" => opts.repo = value()?,
            "--out" | "-o" => out = Some(value()?),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok((opts, out))
}

fn run(opts: &GenOptions, out: Option<&str>) -> io::Result<u64> {
    match out {
        Some(path) if path != "-" => {
            let mut w = Counting {
                inner: BufWriter::new(File::create(path)?),
                bytes: 0,
            };
            write_ndjson(opts, &mut w)?;
            Ok(w.bytes)
        }
        _ => {
            let mut w = Counting {
                inner: io::stdout().lock(),
                bytes: 0,
            };
            write_ndjson(opts, &mut w)?;
            Ok(w.bytes)
        }
    }
}

fn main() -> ExitCode {
    let (opts, out) = match parse_args() {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    match run(&opts, out.as_deref()) {
        Ok(bytes) => {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "gen_issues: {} issues, {:.1} MB in {:.2} s ({:.0} issues/s, {:.0} MB/s)",
                opts.count,
                bytes as f64 / 1e6,
                secs,
                opts.count as f64 / secs.max(1e-9),
                bytes as f64 / 1e6 / secs.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_issues: {e}");
            ExitCode::FAILURE
        }
    }
}
