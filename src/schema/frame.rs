//! Cutting JSON text into whole rows, so that each row is parsed from a
//! slice (serde_json's fast path) rather than from a reader one byte at a
//! time, and so that reading and decompressing the input overlaps parsing.
//!
//! The framer tracks only strings, escapes and bracket depth. Whatever it
//! does not recognise as a plain sequence of objects (NDJSON separated by
//! whitespace, or an array with commas) is not judged here: the rest of the
//! input, from the start of the row before the irregularity, is handed to
//! the streaming reader ([`super::input`]), which parses it exactly as it
//! would have parsed the whole input: the same rows, the same errors at the
//! same positions. So are a row longer than 64 MiB (memory stays
//! bounded) and a string or number token that might pass the token limit.

use std::io::Read;

use super::input::InputFormat;

/// Rows are handed over in batches of about 1 MiB of text, read 256 KiB at
/// a time; a row longer than 64 MiB is read by the streaming reader (with
/// the rest of the input after it), so the framer never holds more than
/// that in one row (see [`Framer::with_sizes`]).
pub(super) const SIZES: Sizes = Sizes {
    batch: 1 << 20,
    read: 256 << 10,
    max_row: 64 << 20,
};

/// How much text a batch holds, how much is read at a time, and the
/// longest row the framer cuts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sizes {
    pub batch: usize,
    pub read: usize,
    pub max_row: usize,
}

/// A row nested deeper than this is read by the streaming reader, which
/// meets serde_json's recursion limit (128) at the same place whether the
/// row is inside an array or not.
const MAX_DEPTH: usize = 100;

/// Whole rows cut from the input text.
pub(super) struct Batch {
    /// The text: rows and what separates them.
    pub text: Vec<u8>,
    /// Start and end (exclusive) of each row in `text`.
    pub rows: Vec<(usize, usize)>,
    /// Newlines in the file before `text[0]`.
    pub newlines: usize,
    /// Bytes between the last of those newlines and `text[0]`.
    pub column: usize,
}

impl Batch {
    /// Newlines in the file before `text[at]`, and the bytes between the
    /// last of them and `text[at]`.
    pub fn position(&self, at: usize) -> (usize, usize) {
        position_in(&self.text[..at], self.newlines, self.column)
    }
}

/// Newlines before the end of `text`, and bytes after the last, where
/// `text` starts `column` bytes after the `newlines`-th newline.
pub(super) fn position_in(text: &[u8], newlines: usize, column: usize) -> (usize, usize) {
    match memchr::memrchr(b'\n', text) {
        Some(last) => (
            newlines + 1 + memchr::memchr_iter(b'\n', &text[..last]).count(),
            text.len() - last - 1,
        ),
        None => (newlines, column + text.len()),
    }
}

/// What the framer found next.
pub(super) enum Step {
    /// More whole rows (possibly none, at the end).
    Batch(Batch),
    /// The input ended after the last row, as it should.
    End,
    /// The streaming reader takes over at `buf[at]` (see [`Framer::rest`]):
    /// with a `[` before it when the input is an array whose row starts
    /// there (`prefix`).
    Handover { at: usize, prefix: bool },
}

/// The input after what the framer read: the rest of it, or the failure
/// that stopped the framer's reading (returned once, then the end).
pub(super) enum Tail<R> {
    Input(R),
    Failed(Option<std::io::Error>),
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Tail::Input(r) => r.read(buf),
            Tail::Failed(e) => e.take().map_or(Ok(0), Err),
        }
    }
}

/// Where the framer is between rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Top {
    /// Before the `[` of an array.
    Start,
    /// NDJSON, between rows.
    Between,
    /// Just inside the array's `[`.
    Open,
    /// After a row of the array.
    AfterRow,
    /// After a comma of the array.
    AfterComma,
    /// After the array's `]`.
    Closed,
}

/// Cuts the text read from `r` into batches of whole rows.
pub(super) struct Framer<R> {
    r: R,
    /// Text read and not yet handed over; `buf[0]` is at `newlines`/`column`.
    buf: Vec<u8>,
    newlines: usize,
    column: usize,
    /// Bytes of `buf` scanned.
    scan: usize,
    top: Top,
    /// Open objects and arrays of the current row.
    depth: usize,
    in_str: bool,
    escape: bool,
    /// Raw bytes of the current string, or of the current run of number
    /// characters.
    run: usize,
    /// Start of the current row (while `depth > 0`).
    row_start: usize,
    /// An array's whole row whose separator after it is not yet seen.
    pending: Option<(usize, usize)>,
    /// Where the streaming reader takes over, once the rows before it are
    /// handed over.
    handed: Option<(usize, bool)>,
    /// The input's read failure, for the streaming reader to meet.
    failed: Option<std::io::Error>,
    /// Whole rows of `buf` ready to hand over.
    rows: Vec<(usize, usize)>,
    /// A token with more raw bytes than this might pass the token limit.
    stop: usize,
    eof: bool,
    sizes: Sizes,
}

impl<R: Read> Framer<R> {
    /// A framer over `r`, whose first byte (a `[` or a `{`, as detected) is
    /// `column` bytes after the `newlines`-th newline of the file.
    pub fn new(
        r: R,
        format: InputFormat,
        newlines: usize,
        column: usize,
        max_token: usize,
    ) -> Self {
        Framer {
            r,
            buf: Vec::with_capacity(SIZES.batch + SIZES.read),
            newlines,
            column,
            scan: 0,
            top: match format {
                InputFormat::JsonArray => Top::Start,
                InputFormat::Ndjson => Top::Between,
            },
            depth: 0,
            in_str: false,
            escape: false,
            run: 0,
            row_start: 0,
            pending: None,
            handed: None,
            failed: None,
            rows: Vec::new(),
            stop: max_token.saturating_mul(2),
            eof: false,
            sizes: SIZES,
        }
    }

    /// The same framer with other batch and read sizes (tests use tiny
    /// ones, so that every row crosses reads and batches).
    pub fn with_sizes(mut self, sizes: Sizes) -> Self {
        self.sizes = sizes;
        self
    }

    /// The next batch, the end, or where the streaming reader takes over
    /// (after every whole row before that place has been handed over).
    pub fn next(&mut self) -> Step {
        loop {
            if let Some((at, prefix)) = self.handed {
                if let Some(&(_, end)) = self.rows.last() {
                    let b = self.cut(end);
                    self.handed = Some((at - end, prefix));
                    return Step::Batch(b);
                }
                return Step::Handover { at, prefix };
            }
            if let Some(h) = self.scan() {
                self.handed = Some(h);
                continue;
            }
            let ready = self.rows.last().map_or(0, |r| r.1);
            if ready >= self.sizes.batch {
                return Step::Batch(self.cut(ready));
            }
            if self.eof {
                let done = match self.top {
                    Top::Between => self.depth == 0,
                    Top::Closed => true,
                    _ => false,
                };
                if !done {
                    self.handed = Some(self.handover());
                    continue;
                }
                if let Some(p) = self.pending.take() {
                    self.rows.push(p);
                }
                return match self.rows.last() {
                    Some(&(_, end)) => Step::Batch(self.cut(end)),
                    None => Step::End,
                };
            }
            let n = self.buf.len();
            self.buf.resize(n + self.sizes.read, 0);
            let got = loop {
                match self.r.read(&mut self.buf[n..]) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The streaming reader reads what was read before
                        // the failure, then meets it (see [`Tail`]), and
                        // reports it with its position as it would have.
                        self.buf.truncate(n);
                        self.failed = Some(e);
                        self.handed = Some(self.handover());
                        break 0;
                    }
                }
            };
            if self.handed.is_some() {
                continue;
            }
            self.buf.truncate(n + got);
            if got == 0 {
                self.eof = true;
            }
        }
    }

    /// Where the streaming reader takes over: at the row being read (or the
    /// array's row waiting for its separator), or at the first byte that is
    /// not between rows (NDJSON).
    fn handover(&self) -> (usize, bool) {
        let prefix = self.top != Top::Between && self.top != Top::Start;
        match (self.pending, self.depth) {
            (Some((s, _)), _) => (s, prefix),
            (None, d) if d > 0 => (self.row_start, prefix),
            // Nothing read yet but the `[` (or a failure before it), or an
            // empty array: the whole array.
            _ if matches!(self.top, Top::Open | Top::Start | Top::Closed) => (0, false),
            _ => (self.scan, prefix),
        }
    }

    /// Rows of `buf` up to `end` as a batch; the rest stays.
    fn cut(&mut self, end: usize) -> Batch {
        let rest = self.buf[end..].to_vec();
        let mut text = std::mem::replace(&mut self.buf, rest);
        text.truncate(end);
        self.buf.reserve(self.sizes.batch + self.sizes.read);
        let rows = std::mem::take(&mut self.rows);
        let batch = Batch {
            text,
            rows,
            newlines: self.newlines,
            column: self.column,
        };
        (self.newlines, self.column) = position_in(&batch.text, self.newlines, self.column);
        self.scan -= end;
        self.row_start = self.row_start.saturating_sub(end);
        if let Some(p) = &mut self.pending {
            *p = (p.0 - end, p.1 - end);
        }
        batch
    }

    /// What the streaming reader reads after a handover at `at`: the text
    /// from `at` on and the rest of the input, with the position of its
    /// first byte (newlines before it, bytes after the last).
    pub fn rest(self, at: usize) -> (Vec<u8>, Tail<R>, usize, usize) {
        let (newlines, column) = position_in(&self.buf[..at], self.newlines, self.column);
        let mut buf = self.buf;
        buf.drain(..at);
        let tail = match self.failed {
            Some(e) => Tail::Failed(Some(e)),
            None => Tail::Input(self.r),
        };
        (buf, tail, newlines, column)
    }

    /// Scan what was read; `Some` when the streaming reader must take over.
    fn scan(&mut self) -> Option<(usize, bool)> {
        let buf = &self.buf;
        let end = buf.len();
        let mut i = self.scan;
        while i < end {
            if self.in_str {
                if self.escape {
                    self.escape = false;
                    self.run += 1;
                    i += 1;
                } else {
                    match memchr::memchr2(b'"', b'\\', &buf[i..end]) {
                        None => {
                            self.run += end - i;
                            i = end;
                        }
                        Some(k) => {
                            self.run += k;
                            i += k;
                            if buf[i] == b'"' {
                                self.in_str = false;
                            } else {
                                self.escape = true;
                                self.run += 1;
                            }
                            i += 1;
                        }
                    }
                }
                if self.run > self.stop || i - self.row_start > self.sizes.max_row {
                    self.scan = i;
                    return Some(self.handover());
                }
                continue;
            }
            let b = buf[i];
            if self.depth > 0 {
                match b {
                    b'"' => {
                        self.in_str = true;
                        self.run = 0;
                    }
                    b'{' | b'[' => {
                        self.depth += 1;
                        self.run = 0;
                        if self.depth > MAX_DEPTH {
                            self.scan = i;
                            return Some(self.handover());
                        }
                    }
                    b'}' | b']' => {
                        self.depth -= 1;
                        self.run = 0;
                        if self.depth == 0 {
                            let row = (self.row_start, i + 1);
                            match self.top {
                                Top::Between => self.rows.push(row),
                                _ => {
                                    self.pending = Some(row);
                                    self.top = Top::AfterRow;
                                }
                            }
                        }
                    }
                    b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' => {
                        self.run += 1;
                        if self.run > self.stop {
                            self.scan = i;
                            return Some(self.handover());
                        }
                    }
                    _ => self.run = 0,
                }
                if self.depth > 0 && i + 1 - self.row_start > self.sizes.max_row {
                    self.scan = i;
                    return Some(self.handover());
                }
                i += 1;
                continue;
            }
            // Between rows.
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
                continue;
            }
            let next = match (self.top, b) {
                (Top::Start, b'[') => Some(Top::Open),
                (Top::Between | Top::Open, b'{') => Some(self.top),
                (Top::AfterComma, b'{') => {
                    let p = self.pending.take().expect("a row before the comma");
                    self.rows.push(p);
                    Some(Top::AfterComma)
                }
                (Top::Open | Top::AfterRow, b']') => Some(Top::Closed),
                (Top::AfterRow, b',') => Some(Top::AfterComma),
                _ => None,
            };
            match next {
                Some(t) => {
                    self.top = t;
                    if b == b'{' {
                        self.depth = 1;
                        self.row_start = i;
                        self.run = 0;
                    }
                    i += 1;
                }
                None => {
                    self.scan = i;
                    return Some(self.handover());
                }
            }
        }
        self.scan = i;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows framed, and at a handover: the text the streaming reader
    /// reads first, whether a `[` goes before it, and its position.
    type Handed = (String, bool, (usize, usize));

    fn frame(text: &[u8], format: InputFormat) -> (Vec<String>, Option<Handed>) {
        let mut f = Framer::new(text, format, 0, 0, 100);
        let mut rows = Vec::new();
        loop {
            match f.next() {
                Step::Batch(b) => {
                    for &(s, e) in &b.rows {
                        rows.push(String::from_utf8_lossy(&b.text[s..e]).into_owned());
                    }
                }
                Step::End => return (rows, None),
                Step::Handover { at, prefix } => {
                    let (rest, mut tail, line, col) = f.rest(at);
                    let mut text = String::from_utf8(rest).unwrap();
                    tail.read_to_string(&mut text).unwrap();
                    return (rows, Some((text, prefix, (line, col))));
                }
            }
        }
    }

    #[test]
    fn plain_rows_are_cut_whole() {
        let (rows, h) = frame(
            b"{\"a\":\"}\\\"{\"} {\"b\":[1,{}]}\n\n{}\n",
            InputFormat::Ndjson,
        );
        assert_eq!(rows, ["{\"a\":\"}\\\"{\"}", "{\"b\":[1,{}]}", "{}"]);
        assert!(h.is_none());
        let (rows, h) = frame(b"[ {\"a\":1} ,\n{\"b\":\"]\"} ]\n", InputFormat::JsonArray);
        assert_eq!(rows, ["{\"a\":1}", "{\"b\":\"]\"}"]);
        assert!(h.is_none());
        let (rows, h) = frame(b"[ ]", InputFormat::JsonArray);
        assert!(rows.is_empty() && h.is_none());
    }

    #[test]
    fn irregular_text_is_handed_over_at_the_row_before_it() {
        // NDJSON: at the first byte that is not between rows.
        let (rows, h) = frame(b"{\"a\":1}\n7\n", InputFormat::Ndjson);
        assert_eq!((rows.len(), h), (1, Some(("7\n".into(), false, (1, 0)))));
        // Unfinished row: at its start.
        let (rows, h) = frame(b"{\"a\":1}\n{\"a\"", InputFormat::Ndjson);
        assert_eq!((rows.len(), h), (1, Some(("{\"a\"".into(), false, (1, 0)))));
        // Array: at the row before a bad separator, with a `[` before it.
        let (rows, h) = frame(b"[{\"a\":1},{\"b\":2},]", InputFormat::JsonArray);
        assert_eq!(
            (rows.len(), h),
            (1, Some(("{\"b\":2},]".into(), true, (0, 9))))
        );
        let (rows, h) = frame(b"[{\"a\":1}] x", InputFormat::JsonArray);
        assert_eq!(
            (rows.len(), h),
            (0, Some(("{\"a\":1}] x".into(), true, (0, 1))))
        );
        // Nothing but the `[` read: the whole input.
        let (rows, h) = frame(b"[1]", InputFormat::JsonArray);
        assert_eq!((rows.len(), h), (0, Some(("[1]".into(), false, (0, 0)))));
        // A token that might pass the limit (100 here, twice that raw).
        let long = format!("{{\"a\":1}}\n{{\"a\":\"{}\"}}", "x".repeat(300));
        let (rows, h) = frame(long.as_bytes(), InputFormat::Ndjson);
        assert_eq!(
            (rows.len(), h),
            (1, Some((long[8..].into(), false, (1, 0))))
        );
        // Nesting deeper than serde_json's limit allows: the whole row.
        let deep = format!(
            "[{{\"a\":1}},{{\"b\":{}1{}}}]",
            "[".repeat(150),
            "]".repeat(150)
        );
        let (rows, h) = frame(deep.as_bytes(), InputFormat::JsonArray);
        assert_eq!((rows.len(), h), (1, Some((deep[9..].into(), true, (0, 9)))));
    }

    #[test]
    fn positions_count_newlines_and_columns() {
        assert_eq!(position_in(b"ab", 3, 4), (3, 6));
        assert_eq!(position_in(b"a\nbc\nd", 3, 4), (5, 1));
    }
}
