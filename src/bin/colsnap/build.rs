//! `colsnap build`: JSON (array or NDJSON, optionally gzip/zstd) to a snapshot.

use crate::common::{self, lib, usage};
use colsnap::compress::{Codec, CodecChoice, CompressOptions};
use colsnap::schema::InputFormat;
use colsnap::write::{BuildOptions, LongTextCodec, build, write_atomically};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Examples shown by `--help`.
pub const EXAMPLES: &str = "\
Examples:
  colsnap build issues.ndjson -o issues.colsnap
  colsnap build issues.json.gz -o issues.colsnap --codec zstd --level 9
  colsnap build issues.ndjson -o issues.colsnap --fast --threads 2
  zstd -dc issues.ndjson.zst | colsnap build - -o issues.colsnap --json
  snapshot-build issues.ndjson -o issues.colsnap --quiet

The input is a JSON array of objects or NDJSON, optionally gzip- or
zstd-compressed (detected from its first bytes). OUTPUT is written to a
temporary file next to it and renamed into place only when the build
succeeded: a failed or interrupted build (SIGINT, SIGTERM, SIGHUP) leaves no
partial file and an existing OUTPUT untouched. OUTPUT must be a regular file
or not exist: a directory, a device node such as /dev/null, a FIFO or `-` is
refused (exit 2); a symbolic link to a regular file is written through (the
file it points to is replaced, the link stays).";

/// Section codec choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecArg {
    /// The smallest of none, gzip and zstd, per section.
    Auto,
    /// zstd for every section (raw when it would not save bytes).
    Zstd,
    /// gzip for every section (raw when it would not save bytes).
    Gzip,
    /// No compression.
    None,
}

/// Codec of the long-text table's chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LongTextCodecArg {
    /// PPMd when the table holds at most 256 MiB of text, else zstd at
    /// level 12 at most, seven to nine times faster to build than 19 for
    /// 8-9% more long text and fast to search (the default, except with
    /// --fast). Past 256 MiB, text like Jira's then makes the file about 4%
    /// larger than `xz -9` of the JSON: build such an export with `ppmd`
    /// (smallest) or `zstd` (level 19) where size matters.
    Auto,
    /// PPMd in chunks of at most 2 MiB: 10-20% less long text and several
    /// times faster to build than zstd at level 19, but it decodes about a
    /// hundred times slower (a long text up to about 0.2 s; a search over
    /// every body decodes them all).
    Ppmd,
    /// zstd with a trained dictionary, in chunks cut to --long-chunk-fetch,
    /// at the long-text level whatever the table's size (19 by default):
    /// larger, fast to read (the default with --fast).
    Zstd,
}

/// Arguments of `colsnap build` / `snapshot-build`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Input JSON file (array or NDJSON, optionally .gz/.zst), or `-` for stdin.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Snapshot file to write.
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: PathBuf,
    /// Section codec.
    #[arg(long, value_enum, default_value_t = CodecArg::Auto)]
    pub codec: CodecArg,
    /// Compression level (zstd 1..=22; gzip uses min(level, 9)) [default: 19, or 3 with --fast].
    /// Above 9, a section that zstd level 9 already shrinks eightfold keeps
    /// its level-9 frame: on such repetitive bytes the higher levels cost
    /// 30-400 times the time for next to no bytes.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub level: Option<i32>,
    /// A quick build for iterating: zstd level 3 (unless --level is given)
    /// and long text in zstd without a dictionary; larger files, several
    /// times faster.
    #[arg(long)]
    pub fast: bool,
    /// Codec of the long-text table's chunks [default: auto, or zstd with
    /// --fast]. PPMd only with --codec auto and format version 2 or later (readers
    /// before codec 3 reject it): otherwise zstd or the forced codec. Where
    /// long text may be PPMd, a short-string table of one chunk (a small
    /// export) is PPMd too when that is smaller; `zstd` keeps it zstd.
    #[arg(long, value_enum, value_name = "CODEC")]
    pub long_text_codec: Option<LongTextCodecArg>,
    /// Threads that encode and compress (default: every available core).
    /// The snapshot is byte-identical whatever the count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Target raw bytes per chunk of the short-string table (e.g. 65536,
    /// 64K, 1M). Default: one chunk up to 64 KiB, else 1 KiB chunks, larger
    /// past 64 MiB so that a table stays within about 65,536 chunks (at most
    /// 64 KiB); they share a trained dictionary from 8 chunks on.
    #[arg(long, value_name = "BYTES", value_parser = common::parse_size)]
    pub chunk_size: Option<usize>,
    /// Most raw bytes per chunk of the long-text table.
    #[arg(long, value_name = "BYTES", value_parser = common::parse_size)]
    pub long_chunk_size: Option<usize>,
    /// Most stored bytes read to fetch one long text (its chunk plus the
    /// table's dictionary; default 1M; 0: cut chunks at --long-chunk-size).
    #[arg(long, value_name = "BYTES", value_parser = common::parse_size_or_zero)]
    pub long_chunk_fetch: Option<usize>,
    /// Store string chunks without front coding.
    #[arg(long)]
    pub no_front_coding: bool,
    /// Store the long-text table sorted, as files before row-ordered long
    /// text did (readers that predate it reject table flag bit 2; always so
    /// with --format-version 1). Larger files; sorts by a long-text field
    /// then need no whole-table decode.
    #[arg(long)]
    pub long_text_sorted: bool,
    /// Snapshot format version: 5 (the default: version 4 plus integers
    /// outside [-2^63, 2^64) kept as their text; a file without one is
    /// written as version 4), 4 (the footer's column metadata field by
    /// field; such integers as the nearest binary64, with a warning) for
    /// readers older than version 5, 3 (small column streams inline in the footer)
    /// for readers older than version 4, 2 (sections without frames) for
    /// readers older than version 3, or 1 (every section framed and 8-aligned) for readers
    /// older than version 2 (long text then sorted, as with
    /// --long-text-sorted, in zstd, and no `based` streams or string ids as
    /// differences).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=5))]
    pub format_version: Option<u16>,
    /// Version 3 and later: keep a column stream in the footer (inline, without a
    /// checksum and byte range of its own) when it would be stored in at
    /// most this many bytes and is at most 1 KiB raw; 0 for none.
    #[arg(long, value_name = "BYTES", default_value_t = colsnap::write::INLINE_MAX)]
    pub inline_max: usize,
    /// Memory budget (e.g. 512M, 2G; 0 for none): half of it is for
    /// reading rows, of which the column buffers get half (a quarter of
    /// the budget) and past that are spilled to temporary files (read back
    /// one column at a time when the snapshot is written); the distinct
    /// strings get what the column buffers leave of that half and past it
    /// are spilled as sorted runs, merged at the end. A quarter is for
    /// encoding columns in parallel. The snapshot is byte-identical
    /// whatever the budget.
    #[arg(long, value_name = "SIZE", value_parser = common::parse_memory, default_value = "1G")]
    pub memory: u64,
    /// Directory of the temporary files of spills [default: OUTPUT's directory].
    /// They are removed when the build ends, fails or is interrupted.
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// Print nothing on success.
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
    /// Print the summary as a JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// The summary printed after a build.
#[derive(Debug, serde::Serialize)]
struct Summary {
    input: String,
    output: String,
    format: &'static str,
    rows: u64,
    columns: usize,
    strings: u64,
    input_bytes: u64,
    json_bytes: u64,
    output_bytes: u64,
    ratio: f64,
    seconds: f64,
    mb_per_s: f64,
    /// Sorted runs of strings spilled to temporary files (0: none).
    spilled_runs: u64,
    /// Files of column buffers spilled to temporary files (0: none).
    spilled_column_runs: u64,
    /// Bytes written to temporary files.
    spilled_bytes: u64,
    /// Integer literals outside `[-2^63, 2^64)`, held as the nearest
    /// binary64 (SPEC.md 1.3; 0: none).
    inexact_integers: u64,
}

/// Run `build`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let stdin = args.input.as_os_str() == "-";
    let in_name = if stdin {
        "<stdin>".to_string()
    } else {
        args.input.display().to_string()
    };
    let out_name = args.output.display().to_string();
    common::input_file(&args.input, true)?;
    check_output(&args.input, &args.output, stdin)?;
    if let Some(d) = &args.tmp_dir
        && !d.is_dir()
    {
        return Err(usage(format!(
            "--tmp-dir {}: not an existing directory",
            d.display()
        )));
    }

    let base = if args.fast {
        BuildOptions::fast()
    } else {
        BuildOptions::default()
    };
    let mut opts = BuildOptions {
        compress: CompressOptions {
            choice: match args.codec {
                CodecArg::Auto => CodecChoice::Auto,
                CodecArg::Zstd => CodecChoice::Force(Codec::Zstd),
                CodecArg::Gzip => CodecChoice::Force(Codec::Gzip),
                CodecArg::None => CodecChoice::Force(Codec::None),
            },
            level: args.level.unwrap_or(base.compress.level),
        },
        front_coding: !args.no_front_coding,
        long_text_row_order: !args.long_text_sorted && args.format_version.is_none_or(|v| v >= 2),
        based_streams: args.format_version.is_none_or(|v| v >= 2),
        delta_string_ids: args.format_version.is_none_or(|v| v >= 2),
        long_text_codec: match args.long_text_codec {
            _ if args.format_version.is_some_and(|v| v < 2) => LongTextCodec::Zstd,
            Some(LongTextCodecArg::Auto) => LongTextCodec::Auto,
            Some(LongTextCodecArg::Ppmd) => LongTextCodec::Ppmd,
            Some(LongTextCodecArg::Zstd) => LongTextCodec::Zstd,
            None => base.long_text_codec,
        },
        format_version: args.format_version.unwrap_or(base.format_version),
        inline_max: args.inline_max,
        threads: args.threads.map_or(0, usize::from),
        memory: usize::try_from(args.memory).unwrap_or(usize::MAX),
        tmp_dir: Some(match &args.tmp_dir {
            Some(d) => d.clone(),
            None => match args.output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }),
        ..base
    };
    if let Some(c) = args.chunk_size {
        opts.chunk_size = c;
    }
    if let Some(c) = args.long_chunk_size {
        opts.long_chunk_size = c;
    }
    if let Some(c) = args.long_chunk_fetch {
        opts.long_chunk_fetch = c;
    }

    let (reader, total): (Box<dyn Read>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = std::fs::File::open(&args.input).map_err(|e| usage(format!("{in_name}: {e}")))?;
        let len = f.metadata().map(|m| m.len()).ok();
        (Box::new(f), len)
    };

    let show = !args.quiet
        && std::io::stderr().is_terminal()
        && (stdin || total.is_some_and(|t| t >= PROGRESS_MIN_BYTES));
    let progress = show.then(|| Arc::new(AtomicU64::new(0)));
    opts.progress = progress.clone();
    let written = Arc::new(AtomicU64::new(0));
    let bar = progress.map(|p| Progress::start(p, written.clone(), total));

    let t0 = Instant::now();
    let result = write_atomically(&args.output, |w| {
        let w = Counting {
            inner: w,
            n: &written,
        };
        build(std::io::BufReader::with_capacity(1 << 20, reader), w, &opts)
    });
    if let Some(b) = bar {
        b.stop();
    }
    let report = result.map_err(|e| lib(&in_name, e))?;
    let seconds = t0.elapsed().as_secs_f64().max(report.seconds);
    // Said even with --quiet: these numbers will not come back as written.
    if let Some((line, column)) = report.inexact_integers.first {
        let n = report.inexact_integers.count;
        eprintln!(
            "colsnap: warning: {in_name}: {} integer{} outside [-2^63, 2^64) (the first at line {line}, column {column}) {} held as the nearest binary64 and will be exported as {} (SPEC.md 1.3)",
            common::thousands(n),
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" },
            if n == 1 { "a float" } else { "floats" },
        );
    }

    if args.quiet {
        return Ok(());
    }
    let s = Summary {
        input: in_name,
        output: out_name,
        format: match report.format {
            InputFormat::JsonArray => "json-array",
            InputFormat::Ndjson => "ndjson",
        },
        rows: report.rows,
        columns: report.columns,
        strings: report.strings,
        input_bytes: report.input_bytes,
        json_bytes: report.json_bytes,
        output_bytes: report.output_bytes,
        ratio: round(
            report.json_bytes as f64 / report.output_bytes.max(1) as f64,
            2,
        ),
        seconds: round(seconds, 3),
        mb_per_s: round(report.json_bytes as f64 / 1e6 / seconds.max(1e-9), 1),
        spilled_runs: report.spill.string_runs,
        spilled_column_runs: report.spill.column_runs,
        spilled_bytes: report.spill.bytes,
        inexact_integers: report.inexact_integers.count,
    };
    if args.json {
        let mut line = serde_json::to_string(&s)?;
        line.push('\n');
        common::print(&line)
    } else {
        common::print(&format!(
            "{}: {} rows, {} columns, {} -> {} bytes ({} input bytes, {}), ratio {:.2}x, {:.2} s, {:.1} MB/s\n",
            s.output,
            common::thousands(s.rows),
            common::thousands(s.columns as u64),
            common::thousands(s.json_bytes),
            common::thousands(s.output_bytes),
            common::thousands(s.input_bytes),
            s.format,
            s.ratio,
            s.seconds,
            s.mb_per_s,
        ))
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// Refuse an OUTPUT that cannot be written atomically
/// ([`common::output_file`]: `-`, a directory, a device node, a FIFO, a
/// missing directory) and an OUTPUT that is the INPUT (by any spelling, hard
/// link or symbolic link); all exit 2, before anything is read.
fn check_output(input: &Path, output: &Path, stdin: bool) -> anyhow::Result<()> {
    common::output_file(output)?;
    if stdin {
        return Ok(());
    }
    common::not_an_input(output, input, "INPUT")
}

/// Counts the bytes written to the output (for the progress bar's last
/// phase).
struct Counting<'a, W: ?Sized> {
    inner: &'a mut W,
    n: &'a AtomicU64,
}

impl<W: std::io::Write + ?Sized> std::io::Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n.fetch_add(k as u64, Ordering::Relaxed);
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The phase a build is in, as the progress bar sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading and parsing the input.
    Reading,
    /// The input is read; strings are being sorted and columns encoded.
    Encoding,
    /// Sections are being compressed and written.
    Writing,
}

/// Which phase the counters say the build is in: writing once sections
/// follow the file header, encoding once the whole input (of known size) is
/// read.
fn phase(read: u64, written: u64, total: Option<u64>) -> Phase {
    if written > colsnap::format::HEADER_LEN as u64 {
        Phase::Writing
    } else if total.is_some_and(|t| read >= t) {
        Phase::Encoding
    } else {
        Phase::Reading
    }
}

/// A progress bar on stderr (only when stderr is a terminal), fed from
/// `BuildOptions::progress` and the output's byte count by a thread:
/// reading (a bar over the input's size, or a byte counter for stdin), then
/// encoding (a spinner with the time spent), then compressing and writing
/// (a spinner with the bytes written).
struct Progress {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Progress {
    fn start(counter: Arc<AtomicU64>, written: Arc<AtomicU64>, total: Option<u64>) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let thread = std::thread::spawn(move || {
            // Stay quiet for quick builds (stdin of unknown size).
            let t0 = Instant::now();
            while total.is_none() && t0.elapsed() < Duration::from_millis(800) {
                if d.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let style = |t: &str| {
                indicatif::ProgressStyle::with_template(t)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
            };
            let bar = match total {
                Some(t) => indicatif::ProgressBar::new(t).with_style(style(
                    "reading   {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )),
                None => indicatif::ProgressBar::new_spinner()
                    .with_style(style("reading   {spinner} {bytes} read {bytes_per_sec}")),
            };
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            let mut shown = Phase::Reading;
            let mut since = Instant::now();
            while !d.load(Ordering::Relaxed) {
                let (r, w) = (
                    counter.load(Ordering::Relaxed),
                    written.load(Ordering::Relaxed),
                );
                let now = phase(r, w, total);
                if now != shown {
                    shown = now;
                    since = Instant::now();
                    bar.set_length(u64::MAX);
                    bar.set_style(style("{msg} {spinner}"));
                }
                match shown {
                    Phase::Reading => bar.set_position(r),
                    Phase::Encoding => bar.set_message(format!(
                        "encoding  {} read, sorting strings and encoding columns ({}s)",
                        common::thousands(r),
                        since.elapsed().as_secs()
                    )),
                    Phase::Writing => bar.set_message(format!(
                        "writing   encoding and compressing columns, {} bytes written ({}s)",
                        common::thousands(w),
                        since.elapsed().as_secs()
                    )),
                }
                bar.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Progress { done, thread }
    }

    fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        assert_eq!(phase(10, 0, Some(100)), Phase::Reading);
        assert_eq!(phase(100, 0, Some(100)), Phase::Encoding);
        // The file header alone is written before strings are sorted.
        assert_eq!(phase(100, 16, Some(100)), Phase::Encoding);
        assert_eq!(phase(100, 500, Some(100)), Phase::Writing);
        // stdin: reading until sections are written.
        assert_eq!(phase(1 << 30, 16, None), Phase::Reading);
        assert_eq!(phase(1 << 30, 17, None), Phase::Writing);
        let n = AtomicU64::new(0);
        let mut v = Vec::new();
        let mut c = Counting {
            inner: &mut v,
            n: &n,
        };
        std::io::Write::write_all(&mut c, b"abc").unwrap();
        assert_eq!(n.load(Ordering::Relaxed), 3);
    }
}
