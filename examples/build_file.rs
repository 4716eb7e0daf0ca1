//! Build a snapshot file with `colsnap::build_file` (atomic: temp file,
//! sync, rename). Used by `tests/atomic.rs` (killed mid-write) and
//! `fuzz/seed.sh`.
//!
//! ```text
//! cargo run --release --example build_file -- INPUT OUTPUT [--chunk-size N] [--codec auto|none|gzip|zstd] [--level L]
//! ```

use colsnap::BuildOptions;
use colsnap::compress::{Codec, CodecChoice};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: build_file INPUT OUTPUT [--chunk-size N] [--codec auto|none|gzip|zstd] [--level L]";
    if args.len() < 2 {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    let mut opts = BuildOptions::default();
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let Some(value) = rest.next() else {
            eprintln!("{flag} needs a value\n{usage}");
            return ExitCode::from(2);
        };
        match (flag.as_str(), value.as_str()) {
            ("--chunk-size", v) => match v.parse() {
                Ok(n) => opts.chunk_size = n,
                Err(e) => {
                    eprintln!("--chunk-size {v}: {e}");
                    return ExitCode::from(2);
                }
            },
            ("--level", v) => match v.parse() {
                Ok(n) => opts.compress.level = n,
                Err(e) => {
                    eprintln!("--level {v}: {e}");
                    return ExitCode::from(2);
                }
            },
            ("--codec", v) => {
                opts.compress.choice = match v {
                    "auto" => CodecChoice::Auto,
                    "none" => CodecChoice::Force(Codec::None),
                    "gzip" => CodecChoice::Force(Codec::Gzip),
                    "zstd" => CodecChoice::Force(Codec::Zstd),
                    _ => {
                        eprintln!("unknown codec {v}\n{usage}");
                        return ExitCode::from(2);
                    }
                }
            }
            _ => {
                eprintln!("unknown option {flag}\n{usage}");
                return ExitCode::from(2);
            }
        }
    }
    match colsnap::build_file(args[0].as_ref(), args[1].as_ref(), &opts) {
        Ok(r) => {
            println!("{} rows, {} bytes", r.rows, r.output_bytes);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
