//! Build a snapshot file with `colsnap::build_file` (atomic: temp file,
//! sync, rename). Used by `tests/atomic.rs` (killed mid-write) and
//! `fuzz/seed.sh`.
//!
//! ```text
//! cargo run --release --example build_file -- INPUT OUTPUT [--chunk-size N] [--codec auto|none|gzip|zstd] [--level L] [--plain-footer yes]
//! ```
//! `--plain-footer yes` rewrites the footer uncompressed (a valid snapshot
//! whose footer fields a fuzzer can mutate directly).

use colsnap::BuildOptions;
use colsnap::{Codec, CodecChoice};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: build_file INPUT OUTPUT [--chunk-size N] [--codec auto|none|gzip|zstd] [--level L] [--plain-footer yes]";
    if args.len() < 2 {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    let mut opts = BuildOptions::default();
    let mut plain_footer = false;
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
            ("--plain-footer", v) => plain_footer = v == "yes",
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
        Ok(r) if plain_footer => match rewrite_plain_footer(&args[1]) {
            Ok(n) => {
                println!("{} rows, {n} bytes (plain footer)", r.rows);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
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

/// Rewrite the snapshot at `path` with its footer stored uncompressed.
fn rewrite_plain_footer(path: &str) -> colsnap::Result<usize> {
    use colsnap::raw::format::{TRAILER_LEN, Trailer, crc32c};
    let bytes = std::fs::read(path)?;
    let footer = colsnap::read::read_footer(&bytes, bytes.len() as u64)?;
    let n = bytes.len();
    let t = Trailer::parse(&bytes[n - TRAILER_LEN..], n as u64)?;
    let raw = footer.to_bytes(t.version);
    let mut out = bytes[..t.footer_offset as usize].to_vec();
    let trailer = Trailer {
        footer_offset: t.footer_offset,
        footer_stored_len: raw.len() as u32,
        footer_raw_len: raw.len() as u32,
        footer_crc: crc32c(&raw),
        footer_codec: Codec::None,
        version: t.version,
    };
    out.extend_from_slice(&raw);
    out.extend_from_slice(&trailer.to_bytes());
    colsnap::write::write_atomically(path.as_ref(), |w| {
        w.write_all(&out)?;
        Ok(out.len())
    })
}
