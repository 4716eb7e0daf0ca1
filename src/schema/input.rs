//! Input detection and the streaming row reader.
//!
//! Accepts a JSON array of objects or NDJSON (objects separated by
//! whitespace, usually newlines), optionally gzip- or zstd-compressed,
//! detected by magic bytes. A UTF-8 byte order mark is skipped.

use super::builder::ColumnsBuilder;
use super::frame::{Batch, Framer, SIZES, Sizes, Step};
use crate::error::{Error, Result};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the input turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// `[ {...}, {...} ]`
    JsonArray,
    /// `{...}\n{...}\n`
    Ndjson,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Counts bytes as they are read, into a shared counter (for progress bars
/// and throughput figures).
struct Counting<R> {
    inner: R,
    counter: Option<Arc<AtomicU64>>,
    total: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total.set(self.total.get() + n as u64);
        if let Some(c) = &self.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Tracks whether serde_json consumed anything but whitespace since the last
/// mark, so that an end-of-input error after the last NDJSON row is told
/// apart from a truncated row.
///
/// It also keeps the length of the line before the current one: serde_json
/// reads one byte at a time from it, so when serde_json reports an error at
/// column 0 of a line (just after consuming a newline) the position can be
/// moved back to the end of the line that holds the offending value.
///
/// And it measures every string, key and number token as serde_json reads it
/// (serde_json reads one byte at a time from it), failing the read as soon
/// as one grows past the limit: serde_json buffers a whole token before
/// handing it over, so a compressed input holding a 10 GiB string would
/// otherwise be inflated into memory before any limit could be checked.
struct Track<R> {
    inner: R,
    content: Rc<Cell<bool>>,
    lines: Rc<RefCell<LineLens>>,
    tokens: TokenScan,
}

/// Lines whose length [`LineLens`] keeps.
const LINE_HISTORY: usize = 64;

/// Bytes in the current line so far, how many newlines were read, and the
/// length of the last [`LINE_HISTORY`] lines: serde_json may read past an
/// error before reporting it (the whitespace after an object whose content
/// failed), so an error "just after a newline" needs the length of a line
/// that is not the last one read.
#[derive(Debug)]
struct LineLens {
    current: usize,
    newlines: usize,
    /// The length of line `k` (1-based) at `k % LINE_HISTORY`.
    ends: [usize; LINE_HISTORY],
}

impl Default for LineLens {
    fn default() -> Self {
        LineLens {
            current: 0,
            newlines: 0,
            ends: [0; LINE_HISTORY],
        }
    }
}

impl LineLens {
    fn newline(&mut self) {
        self.newlines += 1;
        self.ends[self.newlines % LINE_HISTORY] = self.current;
        self.current = 0;
    }

    /// The length of line `line` (1-based), if it is one of the last lines
    /// read.
    fn length(&self, line: usize) -> Option<usize> {
        (line >= 1 && line <= self.newlines && self.newlines - line < LINE_HISTORY)
            .then(|| self.ends[line % LINE_HISTORY])
    }
}

/// Where the scanner is in the JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    /// Between tokens (or inside `true`, `false`, `null`).
    Outside,
    /// Inside a string (or key).
    Str,
    /// Just after a backslash inside a string.
    Escape,
    /// Inside a `\uXXXX` escape, with the digits read so far and their value.
    Unicode(u8, u32),
    /// Inside a number.
    Number,
}

/// Measures the decoded length of string and key tokens and the length of
/// number tokens while they are read (see [`Track`]).
struct TokenScan {
    state: Lex,
    /// Decoded bytes of the current string, or bytes of the current number.
    len: usize,
    /// The limit (`max_string_len`), for messages.
    max: usize,
    /// A token is refused when it grows past this many bytes: twice the
    /// limit, so that a string or key just over the limit is still read
    /// whole and refused by the builder with its field path and exact size,
    /// while memory stays bounded by a small multiple of the limit.
    stop: usize,
}

impl TokenScan {
    fn new(max: usize) -> Self {
        TokenScan {
            state: Lex::Outside,
            len: 0,
            max,
            stop: max.saturating_mul(2),
        }
    }

    /// Feed one byte; `Err` names the token that grew past the limit.
    #[inline]
    fn feed(&mut self, b: u8) -> std::result::Result<(), &'static str> {
        match self.state {
            Lex::Outside => match b {
                b'"' => {
                    self.state = Lex::Str;
                    self.len = 0;
                }
                b'-' | b'0'..=b'9' => {
                    self.state = Lex::Number;
                    self.len = 1;
                }
                _ => {}
            },
            Lex::Str => match b {
                b'"' => self.state = Lex::Outside,
                b'\\' => self.state = Lex::Escape,
                _ => self.len += 1,
            },
            Lex::Escape => {
                if b == b'u' {
                    self.state = Lex::Unicode(0, 0);
                } else {
                    self.len += 1;
                    self.state = Lex::Str;
                }
            }
            Lex::Unicode(n, v) => match (b as char).to_digit(16) {
                Some(d) if n < 3 => self.state = Lex::Unicode(n + 1, v << 4 | d),
                Some(d) => {
                    // UTF-8 length of the code point; each half of a
                    // surrogate pair counts 2 (4 for the pair).
                    let cp = v << 4 | d;
                    self.len += match cp {
                        0..0x80 => 1,
                        0x80..0x800 => 2,
                        0xD800..0xE000 => 2,
                        _ => 3,
                    };
                    self.state = Lex::Str;
                }
                // Not an escape serde_json accepts: it reports the error.
                None => self.state = Lex::Str,
            },
            Lex::Number => match b {
                b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' => self.len += 1,
                b'"' => {
                    self.state = Lex::Str;
                    self.len = 0;
                }
                _ => self.state = Lex::Outside,
            },
        }
        if self.len > self.stop {
            return Err(match self.state {
                Lex::Number => "a number",
                _ => "a string or key",
            });
        }
        Ok(())
    }
}

/// The error [`Track`] fails a read with when a token is too long.
#[derive(Debug)]
struct TokenTooLong {
    what: &'static str,
    read: usize,
    max: usize,
}

impl fmt::Display for TokenTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of more than {} bytes (not read further) exceeds the limit of {} bytes (max_string_len)",
            self.what, self.read, self.max
        )
    }
}

impl std::error::Error for TokenTooLong {}

impl<R: Read> Read for Track<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut l = self.lines.borrow_mut();
        for &b in &buf[..n] {
            if b == b'\n' {
                l.newline();
            } else {
                l.current += 1;
            }
            if let Err(what) = self.tokens.feed(b) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    TokenTooLong {
                        what,
                        read: self.tokens.stop,
                        max: self.tokens.max,
                    },
                ));
            }
        }
        drop(l);
        if buf[..n]
            .iter()
            .any(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.content.set(true);
        }
        Ok(n)
    }
}

/// Statistics of one read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadStats {
    /// Bytes read from the caller's reader (compressed, if it was).
    pub input_bytes: u64,
    /// Bytes of JSON text after decompression.
    pub json_bytes: u64,
}

/// An input after compression and format detection, positioned at its
/// first significant byte.
struct Opened<'a> {
    reader: BufReader<Counting<Box<dyn Read + 'a>>>,
    format: InputFormat,
    line_skip: usize,
    col_skip: usize,
    raw_total: Rc<Cell<u64>>,
    json_total: Rc<Cell<u64>>,
}

impl Opened<'_> {
    /// Where the text after the skipped BOM and whitespace starts.
    fn skip(&self) -> Skip {
        Skip {
            line: self.line_skip,
            col: self.col_skip,
            prefix: 0,
        }
    }
}

/// Where the text a streaming reader reads starts in the file: after
/// `line` newlines and `col` bytes of its line, with `prefix` bytes put
/// before it (a `[`, when an array's rows are read from one of its rows).
#[derive(Clone, Copy, Debug, Default)]
struct Skip {
    line: usize,
    col: usize,
    prefix: usize,
}

/// Convert a serde_json error to ours, with the file's line and column.
fn json_error(e: serde_json::Error, lines: &RefCell<LineLens>, skip: Skip) -> Error {
    let on_first = |line: usize, column: usize| {
        if line == 1 {
            (column + skip.col).saturating_sub(skip.prefix).max(1)
        } else {
            column
        }
    };
    if e.is_io() {
        // serde_json has no position for a failed read (it says "line
        // 0, column 0"): report where the reader stopped, and the
        // cause (a corrupt gzip or zstd stream, a token over the limit).
        let l = lines.borrow();
        let line = l.newlines + 1;
        let column = on_first(line, l.current).max(1);
        let io = std::io::Error::from(e);
        let message = match io.get_ref().and_then(|r| r.downcast_ref::<TokenTooLong>()) {
            Some(t) => t.to_string(),
            None => format!("cannot read the input: {io}"),
        };
        return Error::Json {
            line: line + skip.line,
            column,
            message,
        };
    }
    let (mut line, mut column) = (e.line(), e.column());
    if column == 0 && line > 1 {
        // serde_json stopped just after a newline: report the end of
        // the line before, right after the offending value.
        line -= 1;
        column = lines.borrow().length(line).map_or(1, |n| n + 1);
    }
    let message = crate::error::json_message(&e.to_string());
    Error::Json {
        line: line + skip.line,
        column: on_first(line, column),
        message,
    }
}

fn open_json<'a, R: Read + 'a>(input: R, progress: Option<Arc<AtomicU64>>) -> Result<Opened<'a>> {
    let raw_total = Rc::new(Cell::new(0u64));
    let counted = Counting {
        inner: input,
        counter: progress,
        total: raw_total.clone(),
    };
    let mut r = BufReader::with_capacity(1 << 16, counted);
    let head = r.fill_buf().map_err(|e| Error::io(None, e))?;
    let decoded: Box<dyn Read + 'a> = if head.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(&ZSTD_MAGIC) {
        crate::compress::zstd_reader(r)?
    } else {
        Box::new(r)
    };
    let json_total = Rc::new(Cell::new(0u64));
    let mut r = BufReader::with_capacity(
        1 << 16,
        Counting {
            inner: decoded,
            counter: None,
            total: json_total.clone(),
        },
    );

    // Skip a BOM and leading whitespace, remembering where we are so that
    // serde_json's positions can be shifted back to the file's.
    let mut line_skip = 0usize;
    let mut col_skip = 0usize;
    let mut first = None;
    let mut bom_checked = false;
    loop {
        let buf = r.fill_buf().map_err(|e| Error::Json {
            line: line_skip + 1,
            column: col_skip + 1,
            message: format!("cannot read the input: {e}"),
        })?;
        if buf.is_empty() {
            break;
        }
        let mut used = 0;
        if !bom_checked {
            bom_checked = true;
            if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                used = 3;
            }
        }
        while used < buf.len() {
            match buf[used] {
                b'\n' => {
                    line_skip += 1;
                    col_skip = 0;
                }
                b' ' | b'\t' | b'\r' => col_skip += 1,
                b => {
                    first = Some(b);
                    break;
                }
            }
            used += 1;
        }
        r.consume(used);
        if first.is_some() {
            break;
        }
    }
    let format = match first {
        None => {
            return Err(Error::Json {
                line: line_skip + 1,
                column: col_skip + 1,
                message: "empty input: expected a JSON array of objects or NDJSON".into(),
            });
        }
        Some(b'[') => InputFormat::JsonArray,
        Some(b'{') => InputFormat::Ndjson,
        Some(b) => {
            let shown = if b.is_ascii_graphic() {
                format!("`{}`", b as char)
            } else {
                format!("byte 0x{b:02x}")
            };
            return Err(Error::Json {
                line: line_skip + 1,
                column: col_skip + 1,
                message: format!(
                    "expected a JSON array of objects or NDJSON objects, found {shown}"
                ),
            });
        }
    };
    Ok(Opened {
        reader: r,
        format,
        line_skip,
        col_skip,
        raw_total,
        json_total,
    })
}

/// Read every row of `input` into `builder`, with the default
/// [`Limits::max_string_len`](super::Limits) for every string, key and
/// number token.
pub fn read_rows<'a, R: Read + 'a>(
    input: R,
    builder: &mut ColumnsBuilder,
    progress: Option<Arc<AtomicU64>>,
) -> Result<(InputFormat, ReadStats)> {
    read_rows_limited(
        input,
        builder,
        progress,
        super::Limits::default().max_string_len,
    )
}

/// Read every row of `input` into `builder`. A string, key or number token
/// longer than twice `max_token_len` bytes (strings and keys counted
/// decoded) is an error as soon as the reader passes that, before it is
/// buffered: memory stays bounded whatever the input inflates to. (A string
/// or key between the limit and twice it is read, then refused by the
/// builder with its field path; a number is refused only past twice the
/// limit.)
pub fn read_rows_limited<'a, R: Read + 'a>(
    input: R,
    builder: &mut ColumnsBuilder,
    progress: Option<Arc<AtomicU64>>,
    max_token_len: usize,
) -> Result<(InputFormat, ReadStats)> {
    read_rows_threaded(input, builder, progress, max_token_len, 1)
}

/// [`read_rows_limited`], with the input read and cut into rows on the
/// calling thread while the rows are parsed into `builder` on another when
/// `threads` is 2 or more. The rows, and any error, are the same whatever
/// `threads` is.
pub fn read_rows_threaded<'a, R: Read + 'a>(
    input: R,
    builder: &mut ColumnsBuilder,
    progress: Option<Arc<AtomicU64>>,
    max_token_len: usize,
    threads: usize,
) -> Result<(InputFormat, ReadStats)> {
    read_rows_framed(input, builder, progress, max_token_len, threads, SIZES)
}

/// [`read_rows_threaded`] with the framer's batch and read sizes.
fn read_rows_framed<'a, R: Read + 'a>(
    input: R,
    builder: &mut ColumnsBuilder,
    progress: Option<Arc<AtomicU64>>,
    max_token_len: usize,
    threads: usize,
    sizes: Sizes,
) -> Result<(InputFormat, ReadStats)> {
    let opened = open_json(input, progress)?;
    let skip = opened.skip();
    let Opened {
        reader,
        format,
        raw_total,
        json_total,
        ..
    } = opened;
    let stats = || ReadStats {
        input_bytes: raw_total.get(),
        json_bytes: json_total.get(),
    };
    let mut framer =
        Framer::new(reader, format, skip.line, skip.col, max_token_len).with_sizes(sizes);
    let handover = if threads <= 1 {
        loop {
            match framer.next() {
                Step::Batch(b) => parse_batch(builder, &b, max_token_len)?,
                Step::End => break None,
                Step::Handover { at, prefix } => break Some((at, prefix)),
            }
        }
    } else {
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(2);
            let worker = std::thread::Builder::new()
                .name("colsnap-parse".into())
                .stack_size(PARSE_STACK)
                .spawn_scoped(s, || -> Result<()> {
                    for b in rx {
                        parse_batch(builder, &b, max_token_len)?;
                    }
                    Ok(())
                })
                .map_err(|e| Error::io(None, e))?;
            let step = loop {
                match framer.next() {
                    // A send fails when the parser stopped at an error.
                    Step::Batch(b) => {
                        if tx.send(b).is_err() {
                            break None;
                        }
                    }
                    Step::End => break None,
                    Step::Handover { at, prefix } => break Some((at, prefix)),
                }
            };
            drop(tx);
            match worker.join() {
                Ok(r) => r?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
            Ok::<_, Error>(step)
        })?
    };
    if let Some((at, prefix)) = handover {
        let (rest, tail, line, col) = framer.rest(at);
        let skip = Skip {
            line,
            col,
            prefix: usize::from(prefix),
        };
        let head: &[u8] = if prefix { b"[" } else { b"" };
        let reader = head.chain(std::io::Cursor::new(rest)).chain(tail);
        stream_rows(reader, format, builder, max_token_len, skip)?;
    }
    Ok((format, stats()))
}

/// Stack of the thread that parses rows (serde_json and the builder recurse
/// once per nesting level, at most 128 levels).
const PARSE_STACK: usize = 8 << 20;

/// Parse the rows of `batch` into `b`.
fn parse_batch(b: &mut ColumnsBuilder, batch: &Batch, max_token_len: usize) -> Result<()> {
    for &(s, e) in &batch.rows {
        let row = &batch.text[s..e];
        let mut de = serde_json::Deserializer::from_slice(row);
        if let Err(err) = b.row_seed_text(row).deserialize(&mut de) {
            return Err(row_error(b, batch, (s, e), err, max_token_len));
        }
        for k in 0..b.row_inexact.len() {
            let at = b.row_inexact[k];
            let n = &mut b.inexact_integers;
            n.count += 1;
            if n.first.is_none() {
                let (newlines, column) = batch.position(s + at);
                n.first = Some((newlines + 1, column + 1));
            }
        }
    }
    Ok(())
}

/// The byte ranges in the JSON text `row` of its number literals, in
/// order (strings skipped: a key or a string holding digits is not one).
/// The text is valid JSON (it parsed): a literal is a `-`, digits, a
/// fraction and an exponent, nothing else.
pub(crate) fn number_spans(row: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < row.len() {
        match row[i] {
            b'"' => {
                i += 1;
                while i < row.len() && row[i] != b'"' {
                    i += if row[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < row.len()
                    && matches!(row[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                out.push((start, i));
            }
            _ => i += 1,
        }
    }
    out
}

/// The error of the row `batch.text[s..e]`, at its position in the file.
///
/// Parsed from a slice, serde_json places some errors one column before
/// where its reader-based parser does (a byte it has peeked is not counted
/// as read). So the row is read again alone by the streaming reader, into a
/// scratch builder: its error, when it is the same one, gives the position
/// (errors that depend on what earlier rows built, such as the max_strings
/// limit, keep the slice's).
fn row_error(
    b: &ColumnsBuilder,
    batch: &Batch,
    (s, e): (usize, usize),
    err: serde_json::Error,
    max_token_len: usize,
) -> Error {
    let row = &batch.text[s..e];
    let (line, col) = batch.position(s);
    let skip = Skip {
        line,
        col,
        prefix: 0,
    };
    let message = crate::error::json_message(&err.to_string());
    let mut scratch = ColumnsBuilder::new(b.limits());
    if let Err(again @ Error::Json { .. }) =
        stream_rows(row, InputFormat::Ndjson, &mut scratch, max_token_len, skip)
        && matches!(&again, Error::Json { message: m, .. } if *m == message)
    {
        return again;
    }
    // The length of the row's line before the error's, for the rule about
    // errors just after a newline.
    let mut l = LineLens::default();
    for &b in row {
        if l.newlines + 1 >= err.line() {
            break;
        }
        if b == b'\n' {
            l.newline();
        } else {
            l.current += 1;
        }
    }
    json_error(err, &RefCell::new(l), skip)
}

/// Read rows from `reader` with serde_json's reader-based parser (one byte
/// at a time through [`Track`]): the whole input when it is not cut into
/// rows, or its rest from where the framer handed it over.
fn stream_rows<R: Read>(
    reader: R,
    format: InputFormat,
    builder: &mut ColumnsBuilder,
    max_token_len: usize,
    skip: Skip,
) -> Result<()> {
    let content = Rc::new(Cell::new(false));
    let lines = Rc::new(RefCell::new(LineLens::default()));
    let tracked = Track {
        inner: reader,
        content: content.clone(),
        lines: lines.clone(),
        tokens: TokenScan::new(max_token_len),
    };
    let mut de = serde_json::Deserializer::from_reader(tracked);
    match format {
        InputFormat::JsonArray => {
            de.deserialize_seq_rows(builder)
                .map_err(|e| json_error(e, &lines, skip))?;
            de.end().map_err(|e| json_error(e, &lines, skip))?;
        }
        InputFormat::Ndjson => loop {
            content.set(false);
            match builder.row_seed().deserialize(&mut de) {
                Ok(()) => {}
                Err(e) if e.is_eof() && !content.get() => break,
                Err(e) => return Err(json_error(e, &lines, skip)),
            }
        },
    }
    Ok(())
}

/// Call `f` with every row of `input` as a `serde_json::Value` (one row in
/// memory at a time), with the same input detection and the same token
/// limit (the default `max_string_len`) as [`read_rows`]. An integer
/// literal outside `[-2^63, 2^64)` is its nearest binary64 in the value:
/// [`for_each_row`] gives each row's text.
pub fn for_each_value<'a, R: Read + 'a>(
    input: R,
    mut f: impl FnMut(u64, serde_json::Value) -> Result<()>,
) -> Result<()> {
    for_each_row(input, |i, text| {
        let v = serde_json::from_str(text).map_err(|e| Error::Invalid(e.to_string()))?;
        f(i, v)
    })
}

/// Call `f` with the JSON text of every row of `input` (one row in memory
/// at a time, checked to be valid JSON and an object), with the same input
/// detection and token limit as [`for_each_value`].
pub fn for_each_row<'a, R: Read + 'a>(
    input: R,
    mut f: impl FnMut(u64, &str) -> Result<()>,
) -> Result<()> {
    use serde_json::value::RawValue;
    let opened = open_json(input, None)?;
    let skip = opened.skip();
    let Opened { reader, format, .. } = opened;
    let content = Rc::new(Cell::new(false));
    let lines = Rc::new(RefCell::new(LineLens::default()));
    let mut de = serde_json::Deserializer::from_reader(Track {
        inner: reader,
        content: content.clone(),
        lines: lines.clone(),
        tokens: TokenScan::new(super::Limits::default().max_string_len),
    });
    let mut failure: Option<Error> = None;
    let mut i = 0u64;
    let mut call = |v: Box<RawValue>, failure: &mut Option<Error>| -> bool {
        // The raw text starts at the value's first byte.
        if !v.get().starts_with('{') {
            *failure = Some(Error::Invalid(format!("row {i} is not a JSON object")));
            return false;
        }
        match f(i, v.get()) {
            Ok(()) => {
                i += 1;
                true
            }
            Err(e) => {
                *failure = Some(e);
                false
            }
        }
    };
    match format {
        InputFormat::JsonArray => {
            struct V<'a, F: FnMut(Box<RawValue>, &mut Option<Error>) -> bool>(
                &'a mut F,
                &'a mut Option<Error>,
            );
            impl<'de, F: FnMut(Box<RawValue>, &mut Option<Error>) -> bool> Visitor<'de> for V<'_, F> {
                type Value = ();
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON array of objects")
                }
                fn visit_seq<A: SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> std::result::Result<(), A::Error> {
                    while let Some(v) = seq.next_element::<Box<RawValue>>()? {
                        if !(self.0)(v, self.1) {
                            return Err(de::Error::custom("stopped"));
                        }
                    }
                    Ok(())
                }
            }
            let r = de::Deserializer::deserialize_any(&mut de, V(&mut call, &mut failure));
            if let Some(e) = failure {
                return Err(e);
            }
            r.map_err(|e| json_error(e, &lines, skip))?;
            de.end().map_err(|e| json_error(e, &lines, skip))?;
        }
        InputFormat::Ndjson => loop {
            content.set(false);
            match <Box<RawValue> as serde::Deserialize>::deserialize(&mut de) {
                Ok(v) => {
                    if !call(v, &mut failure) {
                        return Err(failure.unwrap_or_else(|| Error::Invalid("stopped".into())));
                    }
                }
                Err(e) if e.is_eof() && !content.get() => break,
                Err(e) => return Err(json_error(e, &lines, skip)),
            }
        },
    }
    Ok(())
}

trait SeqRows {
    fn deserialize_seq_rows(&mut self, b: &mut ColumnsBuilder) -> serde_json::Result<()>;
}

impl<R: serde_json::de::Read<'static>> SeqRows for serde_json::Deserializer<R> {
    fn deserialize_seq_rows(&mut self, b: &mut ColumnsBuilder) -> serde_json::Result<()> {
        de::Deserializer::deserialize_any(self, RowsVisitor { b })
    }
}

struct RowsVisitor<'a> {
    b: &'a mut ColumnsBuilder,
}

impl<'de> Visitor<'de> for RowsVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(self.b.row_seed())?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Limits;

    fn scan(text: &[u8], max: usize) -> std::result::Result<(), &'static str> {
        let mut t = TokenScan::new(max);
        t.stop = max;
        text.iter().try_for_each(|&b| t.feed(b))
    }

    #[test]
    fn token_lengths_are_counted_decoded() {
        // 4 decoded bytes each: plain, escapes, \u of 1, 2 and 3 UTF-8 bytes, a pair.
        for s in [
            r#""abcd""#,
            r#""\n\t\"\\""#,
            r#""\u0041\u0042cd""#,
            r#""\u00e9\u00e9""#,
            r#""\u20ac4""#,
            r#""\ud83d\ude00""#,
        ] {
            assert_eq!(scan(s.as_bytes(), 4), Ok(()), "{s}");
            assert_eq!(scan(s.as_bytes(), 3), Err("a string or key"), "{s}");
        }
        assert_eq!(scan(b"[-12.5e+3, 7]", 8), Ok(()));
        assert_eq!(scan(b"[-12.5e+3, 7]", 7), Err("a number"));
        // Literals and structure are not tokens.
        assert_eq!(scan(b"[true, false, null, {}, []]", 1), Ok(()));
        assert_eq!(scan(b"{\"ab\":\"cd\"}", 2), Ok(()));
    }

    /// The limit holds while reading: a long string, key, integer or
    /// fraction is refused at the byte that passes it, in plain, gzip and
    /// zstd input, with the position and no "line 0".
    #[test]
    fn long_tokens_are_refused_while_reading() {
        let limits = Limits {
            max_string_len: 1000,
            ..Limits::default()
        };
        let fill = |c: char| std::iter::repeat_n(c, 5000).collect::<String>();
        let cases = [
            (
                format!("{{\"a\":1}}\n{{\"a\":\"{}\"}}\n", fill('x')),
                "string",
            ),
            (format!("[{{\"{}\":1}}]", fill('k')), "string or key"),
            (format!("{{\"a\":{}}}", fill('9')), "number"),
            (format!("{{\"a\":0.{}}}", fill('3')), "number"),
        ];
        for (text, what) in cases {
            let gz = {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                std::io::Write::write_all(&mut e, text.as_bytes()).unwrap();
                e.finish().unwrap()
            };
            let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
            for input in [text.as_bytes().to_vec(), gz, zst] {
                let mut b = ColumnsBuilder::new(limits);
                match read_rows_limited(&input[..], &mut b, None, limits.max_string_len) {
                    Err(Error::Json {
                        line,
                        column,
                        message,
                    }) => {
                        assert!(message.contains(what), "{message}");
                        assert!(message.contains("max_string_len"), "{message}");
                        assert!(line >= 1 && column > 2000, "{line}:{column}");
                    }
                    other => panic!("{what}: {other:?}"),
                }
            }
        }
        // At the limit exactly, the string is read (and accepted); just
        // over it, the builder refuses it with its field path.
        let text = format!("{{\"a\":\"{}\"}}", "y".repeat(1000));
        let mut b = ColumnsBuilder::new(limits);
        read_rows_limited(text.as_bytes(), &mut b, None, 1000).unwrap();
        let text = format!("{{\"a\":\"{}\"}}", "y".repeat(1500));
        let mut b = ColumnsBuilder::new(limits);
        match read_rows_limited(text.as_bytes(), &mut b, None, 1000) {
            Err(Error::Json { message, .. }) => {
                assert!(
                    message.contains("field `a`: a string of 1500 bytes"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    /// What reading `input` gives: the rows (every node's items, in order)
    /// or the error with its position.
    fn outcome(input: &[u8], max_token: usize, how: Option<(usize, Sizes)>) -> String {
        let limits = Limits {
            max_string_len: max_token,
            ..Limits::default()
        };
        let mut b = ColumnsBuilder::new(limits);
        let r = match how {
            Some((threads, sizes)) => {
                read_rows_framed(input, &mut b, None, max_token, threads, sizes).map(|_| ())
            }
            None => open_json(input, None).and_then(|o| {
                let skip = o.skip();
                stream_rows(o.reader, o.format, &mut b, max_token, skip)
            }),
        };
        match r {
            Err(e) => format!("{e:?}"),
            Ok(()) => {
                let nodes: Vec<String> = b
                    .nodes
                    .iter()
                    .map(|n| {
                        format!(
                            "{} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                            n.parent,
                            n.name,
                            n.children,
                            n.idx,
                            n.kinds,
                            n.ints,
                            n.uints,
                            n.floats,
                            n.strs,
                            n.lens
                        )
                    })
                    .collect();
                format!("{} rows {nodes:?}", b.rows)
            }
        }
    }

    const SEED: &str = "{\"a\":1,\"s\":\"x\\\"}y\",\"n\":[1.5e3,{\"k\":null}],\"t\":true}\n\
                        {\"a\":-2, \"s\":\"\\u00e9]\" ,\"n\":[]}\r\n {\"b\":{\"c\":[[\"deep\"]]}}\n";

    /// Number literals are found by their text, in values and arrays,
    /// never in strings or keys; those outside `[-2^63, 2^64)` are told by
    /// `numtext::is_num_text`, not mistaken for floats with an exponent or
    /// a fraction (also integral ones).
    #[test]
    fn number_literals_are_found_by_their_text() {
        let row = br#"{"a":18446744073709551616,"b":18446744073709551615,"c":-9223372036854775808,"d":-9223372036854775809,"e":"99999999999999999999","99999999999999999999":[1e30,1.0e30,123456789012345678901234567890,-0,0],"f":""x\"}"#;
        let found: Vec<&[u8]> = number_spans(row).iter().map(|&(a, z)| &row[a..z]).collect();
        let text = |v: &[&[u8]]| {
            v.iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(&found),
            [
                "18446744073709551616",
                "18446744073709551615",
                "-9223372036854775808",
                "-9223372036854775809",
                "1e30",
                "1.0e30",
                "123456789012345678901234567890",
                "-0",
                "0"
            ]
        );
        let big: Vec<&[u8]> = found
            .into_iter()
            .filter(|t| crate::encoding::numtext::is_num_text(t))
            .collect();
        assert_eq!(
            text(&big),
            [
                "18446744073709551616",
                "-9223372036854775809",
                "123456789012345678901234567890"
            ]
        );
        assert_eq!(number_spans(br#"{"a":[1,-2,3.5e300]}"#).len(), 3);
    }

    /// The builder counts them, with the first one's line and column in
    /// the file, in both input forms.
    #[test]
    fn a_build_counts_inexact_integers_and_places_the_first() {
        for (text, first) in [
            (
                &b"{\"a\":1}\n{\"b\":[2, 99999999999999999999]}\n{\"c\":-99999999999999999999}\n"[..],
                (2, 10),
            ),
            (
                b"[\n{\"a\":1e19},\n {\"a\":18446744073709551616}, {\"a\":-99999999999999999999}]",
                (3, 7),
            ),
        ] {
            let mut b = ColumnsBuilder::new(Limits::default());
            read_rows(text, &mut b, None).unwrap();
            assert_eq!(b.inexact_integers.count, 2);
            assert_eq!(b.inexact_integers.first, Some(first));
        }
    }

    #[test]
    fn the_seed_is_three_rows() {
        let array = format!(
            "[{}]",
            SEED.lines().map(str::trim).collect::<Vec<_>>().join(",")
        );
        for text in [SEED, &array] {
            for how in [None, Some((1, SIZES)), Some((2, SIZES))] {
                let o = outcome(text.as_bytes(), 40, how);
                assert!(o.starts_with("3 rows"), "{o}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// The framer (rows parsed from slices, on one thread or two) reads
        /// any text exactly as the streaming reader reads it whole: the
        /// same rows, or the same error at the same place.
        #[test]
        fn framed_reading_is_streaming_reading(
            array in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..400, 0usize..3, 0usize..14), 0..4),
            max_token in 3usize..40,
            batch in 1usize..64,
            read in 1usize..16,
            max_row in 1usize..80,
        ) {
            let mut text: Vec<u8> = if array {
                let rows: Vec<&str> = SEED.lines().map(str::trim).collect();
                format!("[{}]\n", rows.join(",\n")).into_bytes()
            } else {
                SEED.as_bytes().to_vec()
            };
            const BYTES: &[u8] = b"{}[],:\"\\ \n0a-e";
            for (at, op, byte) in edits {
                let at = at % (text.len() + 1);
                match op {
                    0 if at < text.len() => {
                        text.remove(at);
                    }
                    1 if at < text.len() => text[at] = BYTES[byte],
                    _ => text.insert(at, BYTES[byte]),
                }
            }
            let whole = outcome(&text, max_token, None);
            for (threads, sizes) in [(1, SIZES), (2, SIZES), (2, Sizes { batch, read, max_row })] {
                let framed = outcome(&text, max_token, Some((threads, sizes)));
                proptest::prop_assert_eq!(
                    &framed,
                    &whole,
                    "threads {} text {:?}",
                    threads,
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }
}
