//! Shared pieces of the command-line programs: exit codes, error lines,
//! stdout writing that treats a closed pipe as success.
//!
//! Exit codes (documented in README.md):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | bad data: invalid input JSON, a corrupt or truncated snapshot, a failed verify, an I/O failure while working |
//! | 2 | usage: bad arguments, a missing input file, OUTPUT == INPUT, OUTPUT a directory / device node / FIFO / in a missing directory, an unknown column, a bad `--rows` range, a page past any result |
//!
//! `--help` and `--version` exit 0, or 1 when their text cannot be written.
//! SIGINT, SIGTERM and SIGHUP remove the temporary output file, then end the
//! process as the signal would have.

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
    let inner = match &e {
        colsnap::Error::InFile { source, .. } => source.as_ref(),
        e => e,
    };
    let code = if e.is_data_error() {
        EXIT_DATA
    } else if matches!(
        inner,
        colsnap::Error::Invalid(_) | colsnap::Error::NotFound { .. }
    ) {
        EXIT_USAGE
    } else {
        EXIT_DATA
    };
    let message = match &e {
        // The I/O error already names its path, a remote error its URL.
        colsnap::Error::Io { path: Some(_), .. } => e.to_string(),
        // A usage error that names the location already.
        colsnap::Error::Invalid(m) if m.starts_with(file) => m.clone(),
        // An error in another file (an event log beside its snapshot)
        // names that file.
        colsnap::Error::InFile { .. } => e.to_string(),
        colsnap::Error::Remote { url, .. } | colsnap::Error::Changed { url, .. } if url == file => {
            e.to_string()
        }
        // Valid JSON that is not rows (`[123]`, `true`): not "invalid JSON".
        colsnap::Error::Json {
            line,
            column,
            message,
        } if message.contains("every row must be an object")
            || message.starts_with("expected a JSON array of objects") =>
        {
            format!("{file}: not rows at line {line}, column {column}: {message}")
        }
        // A file that starts like a snapshot but lacks its end was cut
        // short (an interrupted copy or download).
        colsnap::Error::BadMagic { offset } if *offset > 0 && starts_like_snapshot(file) => {
            format!(
                "{file}: truncated snapshot: it starts with the colsnap header but its trailer is missing (bad magic at byte offset {offset})"
            )
        }
        _ => format!("{file}: {e}"),
    };
    Fail { code, message }.into()
}

/// True when the file `name` starts with the snapshot magic.
fn starts_like_snapshot(name: &str) -> bool {
    let mut head = [0u8; 8];
    let n = colsnap::format::FILE_MAGIC.len().min(head.len());
    std::fs::File::open(name)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head[..n]))
        .is_ok()
        && head[..n] == colsnap::format::FILE_MAGIC[..n]
}

/// Like [`lib`], for errors met while reading a snapshot that opened fine:
/// a missing string, column or row there means the file is corrupt (exit
/// 1), not that the user asked for something absent.
pub fn lib_data(file: &str, e: colsnap::Error) -> anyhow::Error {
    match e {
        colsnap::Error::Io { .. } => lib(file, e),
        e => Fail {
            code: EXIT_DATA,
            message: format!("{file}: {e}"),
        }
        .into(),
    }
}

/// Parse the command line. `--help` and `--version` print to stdout and
/// exit 0, unless their text cannot be written (`--help > /dev/full`: exit
/// 1; a closed pipe is not an error); a usage error prints clap's message
/// and exits 2.
pub fn parse_args<P: clap::Parser>() -> Result<P, ExitCode> {
    // Leaked once: clap keeps static strings unless its `string` feature is on.
    let cmd = P::command().long_version(&*Box::leak(long_version().into_boxed_str()));
    let parsed = cmd
        .try_get_matches()
        .and_then(|mut m| P::from_arg_matches_mut(&mut m));
    match parsed {
        Ok(p) => Ok(p),
        Err(e) if e.use_stderr() => {
            // The same `PROGRAM: error: ` prefix as every other error line.
            let text = e.render().to_string();
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            eprint!("{}: error: {text}", program());
            Err(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => {
            let text = e.render().to_string();
            match print(&text) {
                Ok(()) => Err(ExitCode::SUCCESS),
                Err(err) => {
                    eprintln!("{}: error: {err}", program());
                    Err(ExitCode::from(EXIT_DATA))
                }
            }
        }
    }
}

/// What `--version` prints after the program's name: the crate version,
/// the snapshot format version it reads and writes, and the codec
/// libraries compiled in (`-V` prints the crate version only).
pub fn long_version() -> String {
    format!(
        "{}\nformat version {} (SPEC.md)\nzstd {} (C library, compression and decompression)\ngzip: flate2 (miniz_oxide)",
        env!("CARGO_PKG_VERSION"),
        colsnap::format::VERSION,
        zstd::zstd_safe::version_string(),
    )
}

/// Remove the temporary output file of a write in progress when SIGINT,
/// SIGTERM or SIGHUP arrives, then end the process as the signal would have
/// (so a shell sees "killed by SIGTERM", not a normal exit).
pub fn remove_temp_files_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                // Keep the guard until the process ends: no other thread
                // may create or rename a temporary file after this.
                let (_, held) = colsnap::write::remove_temp_files();
                let (_, published) = colsnap::publish::remove_temporary_files();
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                drop((held, published));
                std::process::exit(128 + sig);
            }
        });
}

/// Refuse (exit 2) an OUTPUT that is the file `input` (named `what` in
/// the message) under any spelling, a hard link or a symbolic link to it:
/// replacing it would lose the input, and the command would still succeed.
pub fn not_an_input(output: &Path, input: &Path, what: &str) -> anyhow::Result<()> {
    if input.as_os_str() == "-" {
        return Ok(());
    }
    let same = match (std::fs::metadata(input), std::fs::metadata(output)) {
        (Ok(a), Ok(b)) => same_file(&a, &b),
        _ => false,
    } || matches!(
        (input.canonicalize(), output.canonicalize()),
        (Ok(a), Ok(b)) if a == b
    );
    if same {
        return Err(usage(format!(
            "{}: OUTPUT is the {what} file; refusing to overwrite it",
            output.display()
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Check an OUTPUT path before any work: `-` is refused (a snapshot is
/// written atomically, never to stdout), then the library's rules
/// ([`colsnap::write::check_output_path`]): not a directory, a device node,
/// a FIFO or a socket, in a directory that exists; a symbolic link must lead
/// to a regular file. Any refusal exits 2.
pub fn output_file(path: &Path) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        return Err(usage(
            "OUTPUT must be a file: a snapshot is written atomically, not to stdout",
        ));
    }
    colsnap::write::check_output_path(path)
        .map(|_| ())
        .map_err(|e| match e {
            colsnap::Error::Invalid(m) => usage(m),
            // The OUTPUT argument is unusable (its directory is missing or
            // cannot be looked at): a usage error too.
            colsnap::Error::Io { source, .. } => usage(format!("{}: {source}", path.display())),
            e => lib(&path.display().to_string(), e),
        })
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
    if path.as_os_str() == "-" {
        return if allow_stdin {
            Ok(())
        } else {
            Err(usage(
                "`-` (stdin) is not supported for this input: give a file",
            ))
        };
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(usage(format!("{}: is a directory", path.display()))),
        Ok(_) => Ok(()),
        Err(e) => Err(usage(format!("{}: {e}", path.display()))),
    }
}

/// Open a snapshot file, or read one from stdin when `path` is `-` (held
/// in memory: `cat x.colsnap | colsnap inspect -`). A missing file is a
/// usage error (exit 2), a bad one a data error (exit 1).
pub fn open_snapshot(path: &Path) -> anyhow::Result<colsnap::Snapshot> {
    let name = path.display().to_string();
    // An `http(s)://` URL (a snapshot file or a manifest) or a published
    // manifest / `NAME.latest.json` pointer (see `colsnap publish`).
    if colsnap::publish::is_location(&name) {
        if !name.contains("://") {
            input_file(path, false)?;
        }
        let o = colsnap::publish::open(&name, colsnap::OpenOptions::default())
            .map_err(|e| lib(&name, e))?;
        let _ = OPENED.set((name, o.snapshot.clone(), o.net.clone()));
        let snap = o.snapshot.clone();
        let _ = PUBLISHED.set(o);
        return Ok(snap);
    }
    input_file(path, true)?;
    if path.as_os_str() != "-" {
        let snap = colsnap::Snapshot::open(path).map_err(|e| lib(&name, e))?;
        let _ = OPENED.set((name, snap.clone(), None));
        return Ok(snap);
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
        .map_err(|e| data(format!("stdin: {e}")))?;
    let magic = colsnap::format::FILE_MAGIC;
    let starts_like = bytes.len() >= magic.len() && bytes[..magic.len()] == magic[..];
    colsnap::Snapshot::from_bytes(bytes).map_err(|e| match e {
        // Cut short, as [`lib`] tells a file that is.
        colsnap::Error::BadMagic { offset } if offset > 0 && starts_like => data(format!(
            "stdin: truncated snapshot: it starts with the colsnap header but its trailer is missing (bad magic at byte offset {offset})"
        )),
        e => lib("stdin", e),
    })
}

/// The snapshot this run opened, its location, and the counters of its
/// remote source (`None` for a local file).
type Opened = (
    String,
    colsnap::Snapshot,
    Option<std::sync::Arc<colsnap::source::NetCounters>>,
);
static OPENED: std::sync::OnceLock<Opened> = std::sync::OnceLock::new();

/// What [`open_snapshot`] opened through a pointer, a manifest or a URL.
static PUBLISHED: std::sync::OnceLock<colsnap::publish::Opened> = std::sync::OnceLock::new();

/// The published snapshot this run opened (its manifest and store), if any.
pub fn published() -> Option<&'static colsnap::publish::Opened> {
    PUBLISHED.get()
}

/// Refuse (exit 2) a key field (`--key`) that cannot be a key of `snap`:
/// not a field path, or, when the snapshot has rows and columns, none of
/// them. No event could then address one of its rows, and the first
/// update would fail as an "update of the missing key", hiding the typo.
/// `file` names the snapshot in the message.
pub fn check_key_field(snap: &colsnap::Snapshot, field: &str, file: &str) -> anyhow::Result<()> {
    let keys =
        colsnap::events::parse_path(field).map_err(|m| usage(format!("--key `{field}`: {m}")))?;
    let columns = snap.columns();
    // Rows of no columns (`{}` each) have nothing to suggest: the events
    // meet what they meet.
    if snap.rows() == 0
        || columns.is_empty()
        || snap
            .node_by_path(&colsnap::events::join_path(&keys))
            .is_some()
    {
        return Ok(());
    }
    let names = columns.iter().map(|c| c.path.as_str());
    Err(usage(format!(
        "{file}: --key: {}",
        colsnap::query::parse::unknown_field_message("column", field, names)
    )))
}

/// The name of the snapshot this run opened (its path or location).
fn opened_name() -> String {
    OPENED
        .get()
        .map_or_else(|| "the snapshot".to_string(), |o| o.0.clone())
}

/// The overlay a command reads through: the event log `events` (a file or
/// a directory of segments) over `snap` when given, else the event segments
/// of the published snapshot opened (its manifest's `events`, SPEC.md 15.4),
/// each applied in turn, else none. `key` is the rows' key field (default
/// `id`); given without any events to apply, it is a usage error. Errors
/// name the log, or the segment and the line in it.
pub fn events_overlay(
    snap: &colsnap::Snapshot,
    events: Option<&Path>,
    key: Option<&str>,
) -> anyhow::Result<Option<colsnap::events::Overlay>> {
    let field = key.unwrap_or(colsnap::events::DEFAULT_KEY_FIELD);
    if let Some(ev) = events {
        check_key_field(snap, field, &opened_name())?;
        if !ev.is_dir() {
            input_file(ev, false)?; // a directory holds log segments
        }
        let evname = ev.display().to_string();
        let o =
            colsnap::events::load_overlay(snap.clone(), ev, field).map_err(|e| lib(&evname, e))?;
        warn_inexact_event_integers(&evname, o.inexact_integers());
        return Ok(Some(o));
    }
    let segments: Vec<(String, bytes::Bytes)> = match (published(), OPENED.get()) {
        (Some(p), Some((loc, _, _))) => p
            .event_segments()
            .map_err(|e| lib(loc, e))?
            .into_iter()
            .map(|(at, b)| (format!("{loc}: {at}"), b))
            .collect(),
        _ => Vec::new(),
    };
    if segments.is_empty() {
        if key.is_some() {
            return Err(usage(
                "--key names the key field of events: give --events LOG (or read a publication that carries event segments)",
            ));
        }
        return Ok(None);
    }
    check_key_field(snap, field, &opened_name())?;
    let mut o =
        colsnap::events::Overlay::new(snap.clone(), field).map_err(|e| lib(&segments[0].0, e))?;
    // The segment of the first integer past 64 bits, which its line is of.
    let mut first_in = None;
    for (at, b) in &segments {
        o.apply_reader(&b[..]).map_err(|e| lib(at, e))?;
        if first_in.is_none() && o.inexact_integers().count > 0 {
            first_in = Some(at);
        }
    }
    if let Some(at) = first_in {
        warn_inexact_event_integers(at, o.inexact_integers());
    }
    Ok(Some(o))
}

/// Say on stderr (even with --quiet) that events of `log` held integers
/// outside `[-2^63, 2^64)`, applied as their nearest binary64 (events are
/// read as JSON values), with where the first was.
pub fn warn_inexact_event_integers(log: &str, n: colsnap::schema::builder::InexactIntegers) {
    if let Some((line, column)) = n.first
        && n.count > 0
    {
        eprintln!(
            "colsnap: warning: {log}: {} integer{} outside [-2^63, 2^64) in events (the first at line {line}, column {column}) {} applied as the nearest binary64: events are read as JSON values (SPEC.md 1.3)",
            thousands(n.count),
            if n.count == 1 { "" } else { "s" },
            if n.count == 1 { "is" } else { "are" },
        );
    }
}

/// What the remote snapshot of this run cost so far (`requests`, `bytes`,
/// `retries`), `None` for a local one: for `--json` reports.
pub fn remote_stats() -> Option<serde_json::Value> {
    let (loc, _, net) = OPENED.get()?;
    let s = net.as_ref()?.get();
    Some(serde_json::json!({
        "location": loc, "requests": s.requests, "bytes": s.bytes, "retries": s.retries
    }))
}

/// `--stats`: one line on stderr with what the reader read (reads and
/// bytes asked of the source) and, for a remote snapshot, the requests
/// and bytes that cost.
pub fn print_stats() {
    if let Some((loc, snap, net)) = OPENED.get() {
        let r = snap.stats();
        let mut line = format!(
            "{loc}: read {} bytes in {} reads",
            thousands(r.bytes),
            thousands(r.reads)
        );
        if let Some(n) = net {
            let s = n.get();
            line.push_str(&format!(
                "; fetched {} bytes in {} requests ({} retries)",
                thousands(s.bytes),
                thousands(s.requests),
                thousands(s.retries)
            ));
        }
        eprintln!("{line}");
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
            let code = match (e.downcast_ref::<Fail>(), e.downcast_ref::<colsnap::Error>()) {
                (Some(f), _) => f.code,
                (None, Some(colsnap::Error::Invalid(_) | colsnap::Error::NotFound { .. })) => {
                    EXIT_USAGE
                }
                _ => EXIT_DATA,
            };
            // One line: the messages of the chain, outermost first, each
            // left out when an outer one already says it (an I/O error's
            // text names its cause, "(os error 2)", once); no backtrace, no
            // Debug dump.
            let mut msg = String::new();
            for c in e.chain() {
                let text = c.to_string();
                if msg.contains(&text) {
                    continue;
                }
                if !msg.is_empty() {
                    msg.push_str(": ");
                }
                msg.push_str(&text);
            }
            let msg = msg.replace('\n', " ");
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
        if i > 0 && (s.len() - i).is_multiple_of(3) {
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

/// [`parse_size`], or 0 (for an option where 0 means "none").
pub fn parse_size_or_zero(s: &str) -> Result<usize, String> {
    if s.trim().parse::<u64>() == Ok(0) {
        return Ok(0);
    }
    parse_size(s)
}

/// The width to fit tables to: the terminal's when stdout is one, else
/// `$COLUMNS` when set, else none (no fitting).
pub fn term_width() -> Option<usize> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal()
        && let Some(w) = comfy_table::Table::new().width()
    {
        return Some(w as usize);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&w| w > 0)
}

/// Display width of `s` in a terminal (East Asian wide characters and
/// emoji, ZWJ sequences included, count 2; combining marks 0).
pub fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` for a terminal line: newlines, tabs and the line and paragraph
/// separators as spaces, other C0 controls and DEL as their control
/// pictures (`␀`, `␛`, `␡`) and C1 controls as `\u{85}`, so that text from
/// a file (a key, a value) can neither break a table nor send the terminal
/// an escape sequence.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => out.push(' '),
            '\0'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
            '\u{7f}' => out.push('\u{2421}'),
            '\u{80}'..='\u{9f}' => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// `s` on one line ([`one_line`]), cut to at most `max` display columns
/// with a trailing `…`. Cuts between grapheme-ish units: a zero-width
/// joiner keeps the next character with it.
pub fn cut(s: &str, max: usize) -> String {
    let s = one_line(s);
    if display_width(&s) <= max {
        return s;
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        // One unit: a character, its variation selectors / combining marks,
        // and whatever a zero-width joiner glues on.
        let mut unit = String::from(c);
        while let Some(&n) = chars.peek() {
            let join = unit.ends_with('\u{200d}');
            if join || n == '\u{200d}' || unicode_width::UnicodeWidthChar::width(n) == Some(0) {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let uw = display_width(&unit);
        if w + uw > max - 1 {
            break;
        }
        w += uw;
        out.push_str(&unit);
    }
    out.push('…');
    out
}

/// A plain table (two spaces between columns, a rule under the header),
/// fitted to [`term_width`]: the widest columns shrink first (down to 8
/// columns of text), then columns that still do not fit are left out and
/// counted. Columns listed in `right` are right-aligned.
pub fn fit_table(headers: &[String], rows: &[Vec<String>], right: &[usize]) -> String {
    fit_table_to(headers, rows, right, &[], term_width(), "")
}

/// [`fit_table`], shrinking the columns in `flex` first; the note on
/// columns left out names `more`, the option that shows them (`--wide`,
/// `--fields`), when it is not empty.
pub fn fit_table_flex(
    headers: &[String],
    rows: &[Vec<String>],
    right: &[usize],
    flex: &[usize],
    more: &str,
) -> String {
    fit_table_to(headers, rows, right, flex, term_width(), more)
}

/// [`fit_table_flex`] for a given width.
pub fn fit_table_to(
    headers: &[String],
    rows: &[Vec<String>],
    right: &[usize],
    flex: &[usize],
    width: Option<usize>,
    more: &str,
) -> String {
    let clean = one_line;
    let mut widths: Vec<usize> = headers.iter().map(|h| display_width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(display_width(&clean(c)));
            }
        }
    }
    let mut shown = widths.len();
    if let Some(max) = width {
        let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        loop {
            let w = &mut widths[..shown];
            if total(w) <= max {
                break;
            }
            // Shrink the widest column by one (the widest of `flex` while
            // one is above its floor), down to 8 (or its header).
            let floor = |i: usize| 8.max(display_width(&headers[i]).min(12));
            let flexible = w
                .iter()
                .enumerate()
                .filter(|&(i, x)| flex.contains(&i) && *x > floor(i))
                .max_by_key(|&(i, x)| (*x, usize::MAX - i));
            let (i, &big) = flexible
                .or_else(|| {
                    w.iter()
                        .enumerate()
                        .max_by_key(|&(i, x)| (*x, usize::MAX - i))
                })
                .unwrap_or((0, &0));
            let floor = floor(i);
            if big > floor {
                w[i] = big - 1;
            } else if shown > 1 {
                shown -= 1;
            } else {
                break;
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate().take(shown) {
            let c = cut(c, widths[i]);
            let pad = widths[i].saturating_sub(display_width(&c));
            if i > 0 {
                l.push_str("  ");
            }
            if right.contains(&i) {
                l.push_str(&" ".repeat(pad));
                l.push_str(&c);
            } else {
                l.push_str(&c);
                if i + 1 < shown {
                    l.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    line(widths.iter().map(|&w| "─".repeat(w)).collect(), &mut out);
    for r in rows {
        line(r.clone(), &mut out);
    }
    if shown < headers.len() {
        let left: Vec<&str> = headers[shown..].iter().map(|h| h.as_str()).collect();
        let how = match more {
            "" => "a wider terminal or COLUMNS=200 shows them".to_string(),
            m => format!("a wider terminal, COLUMNS=200 or {m} show them"),
        };
        out.push_str(&format!(
            "({} more columns not shown: {}; {how})\n",
            left.len(),
            cut(&left.join(", "), 60)
        ));
    }
    out
}

/// The query of `--where` (repeated), `--sort`, `--search` and `--search-in`,
/// shared by `query` and `export`: a parse error is a usage error naming
/// `file` (exit 2).
pub fn parse_query(
    file: &str,
    filters: &[String],
    sort: Option<&str>,
    search: Option<&str>,
    search_in: Option<&str>,
) -> anyhow::Result<colsnap::query::Query> {
    use colsnap::query::{Query, Search, parse};
    let bad = |e: colsnap::Error| match e {
        colsnap::Error::Invalid(m) => usage(m.replace("FILE", file)),
        e => lib(file, e),
    };
    let mut q = Query::default();
    for w in filters {
        q.filters.push(parse::parse_where(w).map_err(bad)?);
    }
    if let Some(s) = sort {
        q.sort = parse::parse_sort(s).map_err(bad)?;
    }
    if let Some(text) = search {
        q.search = Some(Search {
            text: text.to_string(),
            fields: match search_in {
                Some(f) => parse::parse_fields(f).map_err(|e| bad(flag_error("--in", e)))?,
                None => Vec::new(),
            },
        });
    }
    Ok(q)
}

/// `e` with the flag it is about in front of its message, when it is
/// invalid input (`--fields \`a,,b\`: ...`).
pub fn flag_error(flag: &str, e: colsnap::Error) -> colsnap::Error {
    match e {
        colsnap::Error::Invalid(m) => colsnap::Error::Invalid(format!("{flag} {m}")),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_patterns() {
        assert!(column_matches("user.*", "user.login"));
        assert!(column_matches("user", "user.login"));
        assert!(column_matches("labels", "labels[].name"));
        assert!(!column_matches("user", "users"));
        assert!(column_matches("*_url", "html_url"));
        assert!(column_matches("a*b*c", "a.xbyc"));
        // `\*` is a key named `*`, not a wildcard.
        assert!(!is_pattern("\\*"));
        assert!(column_matches("\\*", "*"));
        assert!(column_matches("\\*", "*.x"));
        assert!(!column_matches("\\*", "["));
        assert!(column_matches("a\\**", "a*b"));
        assert!(!column_matches("a\\**", "ab"));
        // Other escapes stay as display paths write them.
        assert!(column_matches("a\\.b", "a\\.b"));
        assert!(column_matches("a\\.*", "a\\.b"));
        assert!(!column_matches("a\\.*", "a.b"));
        assert_eq!(pattern_parts("x\\"), ["x\\"]);
    }

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
    fn widths_and_cuts() {
        // A ZWJ family is one glyph two columns wide.
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
        assert_eq!(display_width(family), 2);
        assert_eq!(display_width("日本"), 4);
        assert_eq!(cut("abcdef", 4), "abc…");
        // Control characters are shown, never sent to the terminal.
        assert_eq!(one_line("a\nb\tc\u{2028}d"), "a b c d");
        assert_eq!(one_line("\u{1b}[31m\0\u{7f}\u{85}"), "␛[31m␀␡\\u{85}");
        assert_eq!(cut("\u{1b}\u{1b}\u{1b}", 2), "␛…");
        assert_eq!(cut("日本語", 4), "日…");
        let s = format!("{family}{family}{family}");
        let c = cut(&s, 5);
        assert_eq!(c, format!("{family}{family}…"));
        assert!(display_width(&c) <= 5);
        let rows = vec![
            vec![format!("a{family}b"), "x".repeat(50)],
            vec!["plain".into(), "y".into()],
        ];
        let t = fit_table_to(
            &["label".into(), "text".into()],
            &rows,
            &[],
            &[],
            Some(30),
            "",
        );
        for l in t.lines() {
            assert!(display_width(l) <= 30, "{l:?}");
        }
        // The second column starts at the same display column on every line.
        let starts: Vec<usize> = t
            .lines()
            .take(4)
            .map(|l| {
                let b = l.find("  ").unwrap();
                display_width(&l[..b]) + l[b..].len() - l[b..].trim_start().len()
            })
            .collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{t}");
    }

    #[test]
    fn columns_left_out_name_the_option_that_shows_them() {
        let headers: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let rows = vec![vec!["x".repeat(12), "y".repeat(12), "z".repeat(12)]];
        let t = fit_table_to(&headers, &rows, &[], &[], Some(20), "");
        assert!(
            t.contains("(1 more columns not shown: c; a wider terminal or COLUMNS=200 shows them)"),
            "{t}"
        );
        let t = fit_table_to(&headers, &rows, &[], &[], Some(20), "--wide");
        assert!(
            t.contains("a wider terminal, COLUMNS=200 or --wide show them"),
            "{t}"
        );
        let t = fit_table_to(&headers, &rows, &[], &[], Some(200), "--wide");
        assert!(!t.contains("not shown"), "{t}");
    }

    #[test]
    fn separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}

/// A byte size: a number with an optional `K`, `M`, `G` or `T` suffix
/// (powers of 1024; `KiB`/`KB`/`k` spellings accepted), e.g. `512M`.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a size such as 512M or 2G"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        u => return Err(format!("`{s}`: unknown unit `{u}` (use K, M, G or T)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}`: too large"))
}

#[cfg(test)]
mod memory_tests {
    use super::parse_memory as parse_size;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(parse_size("").is_err());
        assert!(parse_size("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("-1").is_err());
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
    }
}

/// Over a remote snapshot, fetch in one round trip the streams of every
/// column that a query's filters and sort keys (`keys`) and its page's
/// `fields` (every column when `None`) decode, so that filtering, sorting
/// and the page's first prefetch round read from the fetch cache instead of
/// costing a round trip each. A column whose stream is mapped from a
/// sibling (`user.login` from `user.id`) brings its siblings along.
/// Nothing happens over a local snapshot, nor when the columns would take
/// more than half the fetch cache (each read then fetches its own).
pub fn warm_remote(
    snap: &colsnap::Snapshot,
    keys: &[&str],
    fields: Option<&[String]>,
) -> Result<(), colsnap::Error> {
    if !snap.is_remote() {
        return Ok(());
    }
    let footer = snap.footer();
    let nodes = &footer.nodes;
    let under = |path: &str, p: &str| {
        path == p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    let mut want = vec![false; nodes.len()];
    for c in snap.columns() {
        let hit = keys.contains(&c.path.as_str())
            || fields.is_none_or(|f| f.iter().any(|p| under(&c.path, p)));
        want[c.node as usize] = hit;
    }
    // A field is written through its ancestors (an object's kinds, an
    // array's lengths).
    for i in (1..nodes.len()).rev() {
        if want[i] {
            let mut p = nodes[i].parent as usize;
            for _ in 0..nodes.len() {
                if p == 0 || p >= nodes.len() || want[p] {
                    break;
                }
                want[p] = true;
                p = nodes[p].parent as usize;
            }
        }
    }
    // And the siblings that may be the sources of their mapped or based
    // streams, so that a source rides along in the same round.
    for i in 1..nodes.len() {
        if want[i] {
            for j in snap.likely_sources(i as u32) {
                want[j as usize] = true;
            }
        }
    }
    let mut plan = colsnap::read::Plan::new();
    for (i, _) in want.iter().enumerate().filter(|(_, w)| **w) {
        snap.plan_node(&mut plan, i as u32);
    }
    // The read merges close sections, so the sections that lie inside a
    // merged span come along at no cost: keep them too (a mapped stream's
    // source, a sibling), so that they cost no round trip later.
    let frame = |e: &colsnap::raw::format::SectionEntry| e.range();
    let spans: Vec<std::ops::Range<u64>> = plan
        .sections()
        .filter_map(|s| footer.sections.get(s as usize))
        .filter(|e| !e.inline)
        .map(frame)
        .collect();
    let spans = colsnap::source::coalesce_ranges(&spans, snap.options().coalesce_gap);
    for (i, e) in footer
        .sections
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.inline)
    {
        let r = frame(e);
        let at = spans.partition_point(|m| m.start <= r.start);
        if at > 0 && r.end <= spans[at - 1].end {
            plan.add_section(i as u32);
        }
    }
    let bytes: u64 = plan
        .sections()
        .filter_map(|s| footer.sections.get(s as usize))
        .filter(|e| !e.inline)
        .map(|e| e.range().end - e.range().start)
        .sum();
    if bytes > snap.options().fetch_cache_bytes as u64 / 2 {
        return Ok(());
    }
    snap.fetch(&plan)
}

/// The pieces of a column pattern between its wildcards: `*` is any text,
/// `\*` a literal `*` (a key named `*`); every other escape of a display
/// path (`\.`, `\\`, ...) is kept as it is, since paths are matched as
/// display text. One piece (no wildcard) is a column name.
pub fn pattern_parts(pat: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = pat.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('*') => parts.last_mut().unwrap().push('*'),
                Some(n) => {
                    let p = parts.last_mut().unwrap();
                    p.push('\\');
                    p.push(n);
                }
                None => parts.last_mut().unwrap().push('\\'),
            },
            '*' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

/// Whether `pat` has a wildcard (`*` not escaped as `\*`).
pub fn is_pattern(pat: &str) -> bool {
    pattern_parts(pat).len() > 1
}

/// True when `path` matches `pat`: `*` is any text (`\*` a literal `*`);
/// without `*`, the path itself or anything under it (`user` matches
/// `user.login`, `labels` matches `labels[].name`).
pub fn column_matches(pat: &str, path: &str) -> bool {
    let parts = pattern_parts(pat);
    if parts.len() == 1 {
        let name = &parts[0];
        return path == name
            || path
                .strip_prefix(name.as_str())
                .is_some_and(|r| r.starts_with('.') || r.starts_with('['));
    }
    let mut rest = path;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part.as_str());
        } else {
            match rest.find(part.as_str()) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}
