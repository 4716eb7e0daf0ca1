//! The one error type of the library.
//!
//! Every variant carries structured fields so that callers (and the CLI) can
//! say *where* something went wrong: a JSON line and column, a byte offset in
//! a snapshot, a section index, a field path.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, opening, reading or
/// verifying a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error, with the path when one is known.
    #[error("{}: {source}", path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "i/o".into()))]
    Io {
        /// The file involved, when known.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The input is not valid JSON, or not an array of objects / NDJSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the input.
        line: usize,
        /// 1-based column of the input.
        column: usize,
        /// The parser's message.
        message: String,
    },

    /// The input is valid JSON but cannot be represented (e.g. a limit).
    #[error("row {row}, field `{path}`: {message}")]
    Value {
        /// 0-based row of the input.
        row: u64,
        /// Dotted path of the field.
        path: String,
        /// What is wrong with the value.
        message: String,
    },

    /// A configured limit was exceeded while building.
    #[error("limit exceeded: {what} is {got}, the maximum is {max}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// How many there were.
        got: u64,
        /// The most allowed.
        max: u64,
    },

    /// Reading would need more memory than the operation's budget allows
    /// (counts in a file can claim far more than its bytes hold).
    #[error("{what} needs {need} bytes of memory, over the budget of {budget} bytes")]
    Budget {
        /// What would need the memory (a column's stream, a query, an overlay).
        what: String,
        /// Bytes it would need.
        need: u64,
        /// The operation's budget in bytes.
        budget: u64,
    },

    /// The bytes do not start or end with the snapshot magic.
    #[error("not a colsnap snapshot: bad magic at byte offset {offset}")]
    BadMagic {
        /// Where the magic was expected.
        offset: u64,
    },

    /// The snapshot was written by a format version this reader does not know.
    #[error("unsupported format version {got} (this reader supports versions 1 to {supported})")]
    Version {
        /// The file's format version.
        got: u16,
        /// The newest version this reader supports.
        supported: u16,
    },

    /// A checksum did not match.
    #[error(
        "checksum mismatch in {what} at byte offset {offset}: expected {expected:#010x}, got {got:#010x}"
    )]
    Checksum {
        /// The structure whose checksum failed.
        what: String,
        /// Byte offset of the checked bytes.
        offset: u64,
        /// The stored checksum.
        expected: u32,
        /// The checksum of the bytes read.
        got: u32,
    },

    /// The file is shorter than a structure inside it claims.
    #[error("truncated: {what} needs bytes {start}..{end} but the file has {len}")]
    Truncated {
        /// The structure that does not fit.
        what: String,
        /// First byte it needs.
        start: u64,
        /// One past the last byte it needs.
        end: u64,
        /// Length of the file.
        len: u64,
    },

    /// A structural rule of the format is broken.
    #[error("corrupt snapshot: {what} (byte offset {offset}): {detail}")]
    Corrupt {
        /// The structure that breaks the rule.
        what: String,
        /// Byte offset of that structure.
        offset: u64,
        /// The rule broken.
        detail: String,
    },

    /// A codec failed to compress or decompress a section.
    #[error("codec {codec} failed on {what}: {detail}")]
    Codec {
        /// Codec name (`gzip`, `zstd`).
        codec: &'static str,
        /// The section involved.
        what: String,
        /// The codec's message.
        detail: String,
    },

    /// Asked for something that does not exist (column path, row, string id).
    #[error("{what} not found: {name}")]
    NotFound {
        /// What was looked for (`column`, `row`, ...).
        what: &'static str,
        /// Its name or number.
        name: String,
    },

    /// A snapshot does not hold what it was compared against.
    #[error("mismatch at row {row}: {detail}")]
    Mismatch {
        /// 0-based row.
        row: u64,
        /// What differs.
        detail: String,
    },

    /// An event of an event log is malformed or cannot be applied. `line` is
    /// the 1-based line of the event log (0 when the event did not come from
    /// a log), `seq` its sequence number when it could be read.
    #[error("event at line {line}{}: {message}", seq.map(|s| format!(" (seq {s})")).unwrap_or_default())]
    Event {
        /// 1-based line of the event log, 0 when not from a log.
        line: u64,
        /// Sequence number of the event, when it could be read.
        seq: Option<u64>,
        /// What is wrong with the event.
        message: String,
    },

    /// A remote source (HTTP server, object store) failed: the request
    /// could not be made, timed out, or the server answered with an error
    /// status, after the retries the source allows.
    #[error("{url}: {}{detail}", status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Remote {
        /// The URL (or object) asked for.
        url: String,
        /// The HTTP status of the last answer, when there was one.
        status: Option<u16>,
        /// What went wrong (the last attempt's error, the attempts made).
        detail: String,
    },

    /// A remote file changed while it was read: its `ETag` or length
    /// differs from the one it had when it was opened, or the server
    /// answered `412 Precondition Failed`, `416 Range Not Satisfiable` or a
    /// whole `200` to a single-range request (a `200` to a multi-range
    /// request with the same `ETag` and length is read as the whole file).
    /// Nothing read from two versions is ever combined; open the snapshot
    /// again to read the new version.
    #[error("{url} changed while it was read ({detail}); open it again")]
    Changed {
        /// The URL of the file.
        url: String,
        /// How the change showed (`ETag "a" is now "b"`, `HTTP 412`, ...).
        detail: String,
    },

    /// A published object's bytes do not hash to the name the manifest
    /// gives it (a corrupted or replaced object).
    #[error("object {object}: SHA-256 is {got}, the manifest says {expected}")]
    ObjectHash {
        /// The object's location.
        object: String,
        /// The hash the manifest lists (hex).
        expected: String,
        /// The hash of the bytes read (hex).
        got: String,
    },

    /// A usage error: an argument or option is not valid.
    #[error("invalid argument: {0}")]
    Invalid(String),

    /// An error in a file other than the one the operation is named after
    /// (an event log given to `publish` beside its snapshot): the error,
    /// and the file it is in.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file the error is in.
        path: PathBuf,
        /// The error.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub(crate) fn io(path: Option<&std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.map(|p| p.to_path_buf()),
            source,
        }
    }

    #[cfg_attr(
        not(all(feature = "publish", not(target_arch = "wasm32"))),
        allow(dead_code)
    )]
    pub(crate) fn in_file(path: &std::path::Path, source: Error) -> Self {
        match source {
            // An I/O error names its path already.
            Error::Io { path: Some(_), .. } => source,
            _ => Error::InFile {
                path: path.to_path_buf(),
                source: Box::new(source),
            },
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// True for errors that mean "the data is bad" (as opposed to usage or I/O).
    pub fn is_data_error(&self) -> bool {
        if let Error::InFile { source, .. } = self {
            return source.is_data_error();
        }
        !matches!(
            self,
            Error::Io { .. } | Error::Invalid(_) | Error::NotFound { .. }
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: None, source }
    }
}

/// A serde_json message as colsnap tells it: without the " at line L
/// column C" serde_json appends (errors carry the position in their own
/// fields or words). Its two messages for a `\u`
/// escape of half a UTF-16 surrogate pair name neither the cause nor the
/// half (a lone `\udc00` is a "lone leading surrogate"): they become one
/// that does. Other messages are unchanged.
pub(crate) fn json_message(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    match msg {
        "unexpected end of hex escape" | "lone leading surrogate in hex escape" => {
            "an unpaired UTF-16 surrogate escape (`\\ud800`-`\\udfff` not in a high-low \
             pair): a string holds Unicode text, which has no such character"
                .to_string()
        }
        _ => msg.to_string(),
    }
}
