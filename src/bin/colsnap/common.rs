//! Shared pieces of the command-line programs: exit codes, error lines,
//! stdout writing that treats a closed pipe as success.
//!
//! Exit codes (documented in README.md):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | bad data: invalid input JSON, a corrupt or truncated snapshot, a failed verify, an I/O failure while working |
//! | 2 | usage: bad arguments, a missing input file, OUTPUT == INPUT, an unknown column, a bad `--rows` range |

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Exit code for bad data.
pub const EXIT_DATA: u8 = 1;
/// Exit code for usage errors.
pub const EXIT_USAGE: u8 = 2;

/// An error that knows its exit code. The message is one line, already
/// naming the file and the place.
#[derive(Debug)]
pub struct Fail {
    /// Process exit code.
    pub code: u8,
    /// The message printed after `PROGRAM: error: `.
    pub message: String,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

/// A usage error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Fail {
        code: EXIT_USAGE,
        message: message.into(),
    }
    .into()
}

/// A data error (exit 1).
pub fn data(message: impl Into<String>) -> anyhow::Error {
    Fail {
        code: EXIT_DATA,
        message: message.into(),
    }
    .into()
}

/// Turn a library error about `file` into a one-line [`Fail`] with the
/// right exit code: data errors exit 1, usage errors (`Invalid`,
/// `NotFound`) exit 2, I/O failures exit 1.
pub fn lib(file: &str, e: colsnap::Error) -> anyhow::Error {
    let code = if e.is_data_error() {
        EXIT_DATA
    } else if matches!(
        e,
        colsnap::Error::Invalid(_) | colsnap::Error::NotFound { .. }
    ) {
        EXIT_USAGE
    } else {
        EXIT_DATA
    };
    let message = match &e {
        // The I/O error already names its path.
        colsnap::Error::Io { path: Some(_), .. } => e.to_string(),
        _ => format!("{file}: {e}"),
    };
    Fail { code, message }.into()
}

/// True when `e` is (or wraps) a broken pipe: the reader of our stdout went
/// away (`colsnap export x | head`), which is not an error.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(
                c.downcast_ref::<colsnap::Error>(),
                Some(colsnap::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe
            )
    })
}

/// Check that an input path names a readable file; a missing file is a
/// usage error (exit 2). `-` (stdin) is accepted when `allow_stdin`.
pub fn input_file(path: &Path, allow_stdin: bool) -> anyhow::Result<()> {
    if allow_stdin && path.as_os_str() == "-" {
        return Ok(());
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(usage(format!("{}: is a directory", path.display()))),
        Ok(_) => Ok(()),
        Err(e) => Err(usage(format!("{}: {e}", path.display()))),
    }
}

/// Write `text` to stdout; a closed pipe is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(data(format!("stdout: {e}"))),
    }
}

/// The program's name for error lines (`colsnap`, `snapshot-build`, ...).
pub fn program() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "colsnap".into())
}

/// Finish a command: print the error line (if any) and pick the exit code.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Fail>().map_or(EXIT_DATA, |f| f.code);
            // One line: the outermost message (which already names the file
            // and the place); no backtrace, no Debug dump.
            let msg = e.to_string().replace('\n', " ");
            eprintln!("{}: error: {msg}", program());
            ExitCode::from(code)
        }
    }
}

/// Human-readable byte count: `174,827` style with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Parse a byte size: `65536`, `64K`, `64KiB`, `1M`, `1MiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a byte size (examples: 65536, 64K, 1M)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("`{s}`: unknown unit (use K or M)")),
    };
    let v = n
        .checked_mul(mult)
        .filter(|v| *v > 0 && *v <= u32::MAX as usize)
        .ok_or_else(|| format!("`{s}` must be between 1 byte and 4 GiB"))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("3Q").is_err());
    }

    #[test]
    fn separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
