//! Input detection and the streaming row reader.
//!
//! Accepts a JSON array of objects or NDJSON (objects separated by
//! whitespace, usually newlines), optionally gzip- or zstd-compressed,
//! detected by magic bytes. A UTF-8 byte order mark is skipped.

use super::builder::ColumnsBuilder;
use crate::error::{Error, Result};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use std::cell::Cell;
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
    lines: Rc<Cell<LineLens>>,
    tokens: TokenScan,
}

/// Bytes in the current line so far and in the line before it, and how
/// many newlines were read.
#[derive(Clone, Copy, Default)]
struct LineLens {
    current: usize,
    previous: usize,
    newlines: usize,
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
        let mut l = self.lines.get();
        for &b in &buf[..n] {
            if b == b'\n' {
                l.previous = l.current;
                l.current = 0;
                l.newlines += 1;
            } else {
                l.current += 1;
            }
            if let Err(what) = self.tokens.feed(b) {
                self.lines.set(l);
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
        self.lines.set(l);
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
    /// Convert a serde_json error to ours, with the file's line and column.
    fn error(&self, e: serde_json::Error, lines: &Cell<LineLens>) -> Error {
        if e.is_io() {
            // serde_json has no position for a failed read (it says "line
            // 0, column 0"): report where the reader stopped, and the
            // cause (a corrupt gzip or zstd stream, a token over the limit).
            let l = lines.get();
            let line = l.newlines + 1;
            let column = l.current.max(1);
            let column = if line == 1 {
                column + self.col_skip
            } else {
                column
            };
            let io = std::io::Error::from(e);
            let message = match io.get_ref().and_then(|r| r.downcast_ref::<TokenTooLong>()) {
                Some(t) => t.to_string(),
                None => format!("cannot read the input: {io}"),
            };
            return Error::Json {
                line: line + self.line_skip,
                column,
                message,
            };
        }
        let (mut line, mut column) = (e.line(), e.column());
        if column == 0 && line > 1 {
            // serde_json stopped just after a newline: report the end of
            // the line before, right after the offending value.
            line -= 1;
            column = lines.get().previous + 1;
        }
        let message = strip_position(&e.to_string());
        let column = if line == 1 {
            column + self.col_skip
        } else {
            column
        };
        Error::Json {
            line: line + self.line_skip,
            column,
            message,
        }
    }

    fn stats(&self) -> ReadStats {
        ReadStats {
            input_bytes: self.raw_total.get(),
            json_bytes: self.json_total.get(),
        }
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
    let opened = open_json(input, progress)?;
    let Opened {
        reader,
        format,
        line_skip,
        col_skip,
        raw_total,
        json_total,
    } = opened;
    let opened = Opened {
        reader: BufReader::new(Counting {
            inner: Box::new(std::io::empty()),
            counter: None,
            total: Rc::new(Cell::new(0)),
        }),
        format,
        line_skip,
        col_skip,
        raw_total,
        json_total,
    };
    let content = Rc::new(Cell::new(false));
    let lines = Rc::new(Cell::new(LineLens::default()));
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
                .map_err(|e| opened.error(e, &lines))?;
            de.end().map_err(|e| opened.error(e, &lines))?;
        }
        InputFormat::Ndjson => loop {
            content.set(false);
            match builder.row_seed().deserialize(&mut de) {
                Ok(()) => {}
                Err(e) if e.is_eof() && !content.get() => break,
                Err(e) => return Err(opened.error(e, &lines)),
            }
        },
    }
    Ok((format, opened.stats()))
}

/// Call `f` with every row of `input` as a `serde_json::Value` (one row in
/// memory at a time), with the same input detection and the same token
/// limit (the default `max_string_len`) as [`read_rows`].
pub fn for_each_value<'a, R: Read + 'a>(
    input: R,
    mut f: impl FnMut(u64, serde_json::Value) -> Result<()>,
) -> Result<()> {
    let opened = open_json(input, None)?;
    let Opened {
        reader,
        format,
        line_skip,
        col_skip,
        raw_total,
        json_total,
    } = opened;
    let opened = Opened {
        reader: BufReader::new(Counting {
            inner: Box::new(std::io::empty()),
            counter: None,
            total: Rc::new(Cell::new(0)),
        }),
        format,
        line_skip,
        col_skip,
        raw_total,
        json_total,
    };
    let content = Rc::new(Cell::new(false));
    let lines = Rc::new(Cell::new(LineLens::default()));
    let mut de = serde_json::Deserializer::from_reader(Track {
        inner: reader,
        content: content.clone(),
        lines: lines.clone(),
        tokens: TokenScan::new(super::Limits::default().max_string_len),
    });
    let mut failure: Option<Error> = None;
    let mut i = 0u64;
    let mut call = |v: serde_json::Value, failure: &mut Option<Error>| -> bool {
        if !v.is_object() {
            *failure = Some(Error::Invalid(format!("row {i} is not a JSON object")));
            return false;
        }
        match f(i, v) {
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
            struct V<'a, F: FnMut(serde_json::Value, &mut Option<Error>) -> bool>(
                &'a mut F,
                &'a mut Option<Error>,
            );
            impl<'de, F: FnMut(serde_json::Value, &mut Option<Error>) -> bool> Visitor<'de> for V<'_, F> {
                type Value = ();
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON array of objects")
                }
                fn visit_seq<A: SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> std::result::Result<(), A::Error> {
                    while let Some(v) = seq.next_element::<serde_json::Value>()? {
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
            r.map_err(|e| opened.error(e, &lines))?;
            de.end().map_err(|e| opened.error(e, &lines))?;
        }
        InputFormat::Ndjson => loop {
            content.set(false);
            match <serde_json::Value as serde::Deserialize>::deserialize(&mut de) {
                Ok(v) => {
                    if !call(v, &mut failure) {
                        return Err(failure.unwrap_or_else(|| Error::Invalid("stopped".into())));
                    }
                }
                Err(e) if e.is_eof() && !content.get() => break,
                Err(e) => return Err(opened.error(e, &lines)),
            }
        },
    }
    Ok(())
}

/// serde_json appends " at line L column C" to its messages; we report the
/// position in structured fields instead.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
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
}
