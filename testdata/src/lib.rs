//! Deterministic generator of realistic GitHub REST API issue objects.
//!
//! The generator produces `serde_json::Value` objects shaped like the items
//! returned by `GET /repos/{owner}/{repo}/issues` (issues and pull requests
//! mixed, with the `pull_request` and `draft` keys present only on pull
//! requests), for benchmarks and tests of any size.
//!
//! # Stability
//!
//! The output is a pure function of [`GenOptions`]: the same seed, count and
//! repository always give byte-identical NDJSON. To keep that promise across
//! platforms and crate versions the module uses its own PRNG (SplitMix64
//! seeding xoshiro256\*\*) and its own `ln`/`exp` built from IEEE-754 basic
//! operations only (no platform `libm`), and it inserts object keys in sorted
//! order so the output is the same whether or not `serde_json`'s
//! `preserve_order` feature is enabled. Changing anything in this file that
//! alters the stream of random draws changes the output; don't, or bump the
//! fixtures that depend on it.
//!
//! Issue `i` depends only on `(seed, count, repo, i)`: every issue gets its
//! own PRNG seeded from `(seed, i)`, and `count` only scales the timeline
//! (ids and timestamps spread over 2014–2026 in number order), the number of
//! milestones and the size of the user pool. [`issue`] is therefore O(1).
//!
//! # Shape
//!
//! Every object has the keys of a REST issue (`url`, `id`, `node_id`,
//! `number`, `title`, `user`, `labels`, `state`, `assignee(s)`, `milestone`,
//! `comments`, `created_at`/`updated_at`/`closed_at`, `body`, `reactions`,
//! `state_reason`, ...), serialized in sorted key order. About 30% are pull
//! requests and carry `pull_request` and `draft`; on the others those keys
//! are absent, not null. Roughly: 25% open (more among recent numbers), 10%
//! null bodies, bodies up to 4,000 bytes with a heavy tail (issue templates,
//! lists, code blocks, CRLF line ends on a third of them, the odd non-ASCII
//! word or emoji), 80% without milestone, 0–4 labels from a fixed set of 40,
//! a geometric-ish comment count with mean ~5, authors drawn with a Zipf skew
//! from `count / 20 + 50` users (1% bots), words drawn with a Zipf skew from
//! a 2,000-word vocabulary. Title and body text is word salad with realistic
//! statistics, not prose.
//!
//! [`write_ndjson`] writes JSON text directly, without building `Value`s
//! (well over 100k issues/s on one core); `examples/gen_issues.rs` wraps it.

use serde_json::{Map, Value};
use std::io::{self, Write};
use std::iter::FusedIterator;
use std::sync::OnceLock;

/// Settings for generated issues.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Seed of the pseudo-random generator; different seeds give different data.
    pub seed: u64,
    /// How many issues to generate; they are numbered `1..=count`.
    pub count: usize,
    /// The `owner/name` of the repository the issues belong to, e.g. `"acme/widgets"`.
    pub repo: String,
}

impl Default for GenOptions {
    /// Seed 42, 1000 issues, repository `acme/widgets`.
    fn default() -> Self {
        GenOptions {
            seed: 42,
            count: 1000,
            repo: "acme/widgets".to_string(),
        }
    }
}

/// Iterator over generated issues (`serde_json::Value` objects), in order.
///
/// Created by [`issues`]. It is an [`ExactSizeIterator`], and `nth` jumps
/// in O(1).
#[derive(Clone, Debug)]
pub struct Issues {
    ctx: Ctx,
    next: usize,
    end: usize,
}

impl Iterator for Issues {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if self.next >= self.end {
            return None;
        }
        let v = self.ctx.issue_value(self.next);
        self.next += 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }

    fn nth(&mut self, n: usize) -> Option<Value> {
        self.next = self.next.saturating_add(n).min(self.end);
        self.next()
    }
}

impl ExactSizeIterator for Issues {}

impl FusedIterator for Issues {}

impl DoubleEndedIterator for Issues {
    fn next_back(&mut self) -> Option<Value> {
        if self.next >= self.end {
            return None;
        }
        self.end -= 1;
        Some(self.ctx.issue_value(self.end))
    }
}

/// Iterator over generated issues (`serde_json::Value` objects), in order.
///
/// Yields `opts.count` issues numbered `1..=opts.count`.
pub fn issues(opts: &GenOptions) -> Issues {
    Issues {
        ctx: Ctx::new(opts),
        next: 0,
        end: opts.count,
    }
}

/// Write them as NDJSON (one compact object per line) to `w`.
///
/// Output is buffered internally, so `w` need not be a `BufWriter`. The
/// JSON is written directly, without building `Value`s, and is byte for byte
/// `serde_json::to_writer` of each item of [`issues`].
pub fn write_ndjson(opts: &GenOptions, w: &mut impl Write) -> io::Result<()> {
    const FLUSH_AT: usize = 1 << 16;
    let ctx = Ctx::new(opts);
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + (FLUSH_AT >> 1));
    for i in 0..opts.count {
        ctx.issue(
            i,
            &mut JsonOut {
                buf: &mut buf,
                comma: false,
            },
        );
        buf.push(b'\n');
        if buf.len() >= FLUSH_AT {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()
}

/// The i-th issue alone (same as `issues(opts).nth(i)`), for random access in tests.
///
/// # Panics
///
/// If `i >= opts.count`.
pub fn issue(opts: &GenOptions, i: usize) -> Value {
    assert!(
        i < opts.count,
        "issue index {i} out of range for count {}",
        opts.count
    );
    Ctx::new(opts).issue_value(i)
}

// ---------------------------------------------------------------------------
// Pseudo-random numbers and deterministic floating point
// ---------------------------------------------------------------------------

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mix64(x: u64) -> u64 {
    let mut s = x;
    splitmix64(&mut s)
}

/// Stream domains, so that issues, users, labels... draw independent numbers.
const D_ISSUE: u64 = 1;
const D_USER: u64 = 2;
const D_LABEL: u64 = 3;
const D_MILESTONE: u64 = 4;
const D_LOGIN: u64 = 5;

/// xoshiro256** seeded with SplitMix64.
#[derive(Clone, Debug)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64, domain: u64, index: u64) -> Rng {
        let mut sm = mix64(seed ^ domain.wrapping_mul(GOLDEN))
            .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (0 when `n == 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Exponential with the given mean.
    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * det_ln(1.0 - self.unit())
    }

    /// Standard normal (Marsaglia polar method).
    fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * det_ln(s) / s).sqrt();
            }
        }
    }

    /// Log-normal with the given median and shape.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * det_exp(sigma * self.normal())
    }
}

const LN_2: f64 = std::f64::consts::LN_2;

/// Natural logarithm from basic IEEE operations only, so it gives the same
/// bits on every platform (`f64::ln` calls the platform `libm`). `x` must be
/// positive, finite and normal.
fn det_ln(x: f64) -> f64 {
    debug_assert!(x.is_normal() && x > 0.0);
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(t), |t| < 0.172.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut term = t;
    let mut sum = t;
    let mut k = 3.0;
    for _ in 0..10 {
        term *= t2;
        sum += term / k;
        k += 2.0;
    }
    e as f64 * LN_2 + 2.0 * sum
}

/// `e^x` from basic IEEE operations only (see [`det_ln`]).
fn det_exp(x: f64) -> f64 {
    if x < -700.0 {
        return 0.0;
    }
    if x > 700.0 {
        return f64::MAX;
    }
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = x - k * LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..=14 {
        term *= r / f64::from(n);
        sum += term;
    }
    sum * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}

/// Zipf-like ranks in `0..n`: a bounded continuous power law with exponent
/// `s` (density ∝ x^-s on `[1, n+1)`), floored. Rank 0 is the most common.
#[derive(Clone, Debug)]
struct Zipf {
    n: u64,
    one: bool,
    a: f64,
    inv: f64,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let n = n.max(1);
        let ln_n1 = det_ln((n + 1) as f64);
        if (s - 1.0).abs() < 1e-9 {
            Zipf {
                n,
                one: true,
                a: ln_n1,
                inv: 0.0,
            }
        } else {
            Zipf {
                n,
                one: false,
                a: det_exp((1.0 - s) * ln_n1) - 1.0,
                inv: 1.0 / (1.0 - s),
            }
        }
    }

    fn sample(&self, r: &mut Rng) -> usize {
        let u = r.unit();
        let x = if self.one {
            det_exp(u * self.a)
        } else {
            det_exp(self.inv * det_ln(1.0 + u * self.a))
        };
        ((x as u64).saturating_sub(1)).min(self.n - 1) as usize
    }
}

// ---------------------------------------------------------------------------
// Small string helpers
// ---------------------------------------------------------------------------

/// Seconds since the Unix epoch → `YYYY-MM-DDTHH:MM:SSZ`.
fn format_timestamp(t: i64) -> [u8; 20] {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut b = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, v: i64| {
        let mut v = v;
        for k in (at..at + width).rev() {
            b[k] = b'0' + v.rem_euclid(10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, secs / 3600);
    put(14, 2, secs / 60 % 60);
    put(17, 2, secs % 60);
    b
}

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 with padding (`alphabet` = standard or URL-safe).
fn push_base64(out: &mut String, data: &[u8], alphabet: &[u8; 64], pad: bool) {
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..4 {
            if k < chars {
                out.push(char::from(alphabet[(n >> (18 - 6 * k) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
}

/// GitHub's legacy global node id: base64 of `"{len:02}:{Type}{id}"`.
fn legacy_node_id(type_name: &str, id: u64) -> String {
    let raw = format!("{:02}:{type_name}{id}", type_name.len());
    let mut s = String::with_capacity(raw.len() * 4 / 3 + 4);
    push_base64(&mut s, raw.as_bytes(), B64_STD, true);
    s
}

/// GitHub's newer node id: `"{prefix}_kgDO"` + URL-safe base64 of the id.
fn new_node_id(prefix: &str, id: u64) -> String {
    let mut s = String::with_capacity(prefix.len() + 20);
    s.push_str(prefix);
    s.push_str("_kgDO");
    let bytes = (id as u32).to_be_bytes();
    push_base64(&mut s, &bytes, B64_URL, false);
    s
}

/// `prefix` + `n` random URL-safe base64 characters.
fn random_node_id(r: &mut Rng, prefix: &str, n: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    for _ in 0..n {
        s.push(char::from(B64_URL[r.below(64) as usize]));
    }
    s
}

/// Percent-encode a URL path segment the way GitHub's API URLs do.
fn push_path_segment(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

fn push_capitalized(out: &mut String, w: &str) {
    let mut chars = w.chars();
    if let Some(c) = chars.next() {
        out.push(c.to_ascii_uppercase());
        out.push_str(chars.as_str());
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

// ---------------------------------------------------------------------------
// JSON output: one generator, two sinks
// ---------------------------------------------------------------------------
//
// The generator describes each issue as a stream of events (keys in sorted
// order, values). `ValueOut` turns them into a `serde_json::Value`;
// `JsonOut` writes compact JSON text straight into a byte buffer, byte for
// byte what `serde_json::to_writer` would print for that `Value`, without
// building it (that is what makes `write_ndjson` fast). A test checks the
// two agree.

trait Out {
    fn begin_object(&mut self);
    fn end_object(&mut self);
    fn begin_array(&mut self);
    fn end_array(&mut self);
    /// The next key of the current object; keys must come in sorted order.
    fn key(&mut self, k: &'static str);
    fn str(&mut self, v: &str);
    /// The concatenation of `parts`, as one string.
    fn concat(&mut self, parts: &[&str]);
    fn u64(&mut self, v: u64);
    fn bool(&mut self, v: bool);
    fn null(&mut self);

    fn string(&mut self, v: String) {
        self.str(&v);
    }

    fn timestamp(&mut self, t: Option<i64>) {
        match t {
            Some(t) => {
                let b = format_timestamp(t);
                self.str(std::str::from_utf8(&b).unwrap_or_default());
            }
            None => self.null(),
        }
    }
}

/// Builds a `serde_json::Value`.
#[derive(Default)]
struct ValueOut {
    stack: Vec<Frame>,
    root: Option<Value>,
}

enum Frame {
    Object(Map<String, Value>, Option<&'static str>),
    Array(Vec<Value>),
}

impl ValueOut {
    fn push(&mut self, v: Value) {
        match self.stack.last_mut() {
            Some(Frame::Object(m, k)) => {
                let k = k.take().expect("generator bug: value without key");
                m.insert(k.to_string(), v);
            }
            Some(Frame::Array(a)) => a.push(v),
            None => self.root = Some(v),
        }
    }

    fn finish(self) -> Value {
        debug_assert!(self.stack.is_empty());
        self.root.unwrap_or(Value::Null)
    }
}

impl Out for ValueOut {
    fn begin_object(&mut self) {
        self.stack.push(Frame::Object(Map::new(), None));
    }

    fn end_object(&mut self) {
        match self.stack.pop() {
            Some(Frame::Object(m, _)) => self.push(Value::Object(m)),
            _ => unreachable!("generator bug: unbalanced object"),
        }
    }

    fn begin_array(&mut self) {
        self.stack.push(Frame::Array(Vec::new()));
    }

    fn end_array(&mut self) {
        match self.stack.pop() {
            Some(Frame::Array(a)) => self.push(Value::Array(a)),
            _ => unreachable!("generator bug: unbalanced array"),
        }
    }

    fn key(&mut self, k: &'static str) {
        if let Some(Frame::Object(_, slot)) = self.stack.last_mut() {
            *slot = Some(k);
        }
    }

    fn str(&mut self, v: &str) {
        self.push(Value::String(v.to_string()));
    }

    fn string(&mut self, v: String) {
        self.push(Value::String(v));
    }

    fn concat(&mut self, parts: &[&str]) {
        self.push(Value::String(parts.concat()));
    }

    fn u64(&mut self, v: u64) {
        self.push(Value::from(v));
    }

    fn bool(&mut self, v: bool) {
        self.push(Value::Bool(v));
    }

    fn null(&mut self) {
        self.push(Value::Null);
    }
}

/// Writes compact JSON text, exactly as `serde_json` would.
struct JsonOut<'a> {
    buf: &'a mut Vec<u8>,
    comma: bool,
}

impl JsonOut<'_> {
    fn before_value(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    /// Escape `s` like `serde_json` (short escapes where JSON has them,
    /// `\u00xx` with lowercase hex for other control characters).
    fn escape(&mut self, s: &str) {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
        // Whether any of 8 bytes is < 0x20, '"' or '\\' (SWAR).
        let special = |chunk: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            (x.wrapping_sub(LO * 0x20) & !x & HI)
                | has_zero(x ^ (LO * u64::from(b'"')))
                | has_zero(x ^ (LO * u64::from(b'\\')))
                != 0
        };
        let bytes = s.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            while i + 8 <= bytes.len() && !special(&bytes[i..i + 8]) {
                i += 8;
            }
            let stop = (i + 8).min(bytes.len());
            while i < stop {
                let b = bytes[i];
                let short: &[u8] = match b {
                    b'"' => b"\\\"",
                    b'\\' => b"\\\\",
                    b'\n' => b"\\n",
                    b'\r' => b"\\r",
                    b'\t' => b"\\t",
                    0x08 => b"\\b",
                    0x0C => b"\\f",
                    0x00..=0x1F => b"",
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                self.buf.extend_from_slice(&bytes[start..i]);
                if short.is_empty() {
                    self.buf.extend_from_slice(b"\\u00");
                    self.buf.push(HEX[usize::from(b >> 4)]);
                    self.buf.push(HEX[usize::from(b & 15)]);
                } else {
                    self.buf.extend_from_slice(short);
                }
                i += 1;
                start = i;
            }
        }
        self.buf.extend_from_slice(&bytes[start..]);
    }
}

impl Out for JsonOut<'_> {
    fn begin_object(&mut self) {
        self.before_value();
        self.buf.push(b'{');
        self.comma = false;
    }

    fn end_object(&mut self) {
        self.buf.push(b'}');
        self.comma = true;
    }

    fn begin_array(&mut self) {
        self.before_value();
        self.buf.push(b'[');
        self.comma = false;
    }

    fn end_array(&mut self) {
        self.buf.push(b']');
        self.comma = true;
    }

    fn key(&mut self, k: &'static str) {
        self.before_value();
        // Keys are this module's own constants and need no escaping.
        debug_assert!(k.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'));
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.comma = false;
    }

    fn str(&mut self, v: &str) {
        self.concat(&[v]);
    }

    fn concat(&mut self, parts: &[&str]) {
        self.before_value();
        self.buf.push(b'"');
        for p in parts {
            self.escape(p);
        }
        self.buf.push(b'"');
        self.comma = true;
    }

    fn u64(&mut self, v: u64) {
        self.before_value();
        let mut b = [0u8; 20];
        self.buf.extend_from_slice(format_u64(v, &mut b).as_bytes());
        self.comma = true;
    }

    fn bool(&mut self, v: bool) {
        self.before_value();
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self.comma = true;
    }

    fn null(&mut self) {
        self.before_value();
        self.buf.extend_from_slice(b"null");
        self.comma = true;
    }
}

/// Decimal digits of `v`, in `b`.
fn format_u64(mut v: u64, b: &mut [u8; 20]) -> &str {
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&b[i..]).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Fixed vocabularies
// ---------------------------------------------------------------------------

/// About 2,000 words, roughly most-frequent first (the Zipf rank order).
const VOCAB_TEXT: &str = r#"
the to a is and in it of i this when not be with on that for error we but have are as can from
an use if or using at there should would file by no so do which was my does like after version
set get new also some work only one all run code see any been what how just more issue has will
need then same working other way it's don't can't doesn't i'm here into about because now seems
problem could these out up than case build test support add fix example make following still
default type value output time first expected behavior current there's even they their them our
your you he she his her its were being did done where why who whom whose while before since
until though although however therefore instead either neither both each every many much most
few less least very too quite rather really actually already again always never sometimes often
usually maybe perhaps probably possible possibly likely unlikely please thanks thank hello hi
sorry okay yes sure well simply exactly currently recently previously finally initially later
earlier soon once twice per via without within between across against along around over under
above below behind beyond inside outside near far through throughout toward upon off down back
forward function method class struct enum trait module package crate library binary project
repository branch commit merge release tag changelog config configuration option options setting
settings flag flags argument arguments parameter parameters variable variables constant field
fields property properties attribute attributes macro macros generic generics lifetime lifetimes
reference references pointer pointers slice slices array arrays vector vectors string strings
integer integers float floats boolean booleans number numbers list lists map maps dictionary
sets queue queues stack heap tree trees graph graphs node nodes edge edges key keys index
indices table tables column columns row rows record records schema schemas server client request
response header headers body payload status endpoint api rest http https url uri path paths
query queries route routes router handler handlers middleware session sessions cookie cookies
token tokens auth authentication authorization login logout user users account accounts
permission permissions role roles group groups team teams organization admin database connection
connections pool transaction transactions migration migrations driver drivers cursor statement
statements insert update delete select join postgres mysql sqlite redis cache caching cached
memory disk storage bucket object objects blob blobs compile compiler compiling compiled builds
building built link linker linking linked runtime panic panics panicked crash crashes crashed
crashing hang hangs hanging freeze freezes stuck deadlock race leak leaks leaking overflow
underflow timeout timeouts slow slower slowness fast faster performance regression regressions
benchmark benchmarks profile profiling latency throughput install installed installing
installation uninstall upgrade upgraded upgrading downgrade downgraded updated updating
dependency dependencies lockfile cargo npm pip yarn pnpm docker container containers image
images kubernetes cluster helm terraform ansible windows linux macos ubuntu debian fedora arch
alpine wsl android ios browser chrome firefox safari terminal shell bash zsh fish powershell cmd
console editor vscode vim neovim emacs intellij ide plugin plugins extension extensions parse
parser parsing parsed lexer lexing tokenizer syntax grammar ast semantic semantics type-check
checker analysis analyzer lint linter linting format formatter formatting formatted highlight
highlighting completion completions hover diagnostic diagnostics rename refactor refactoring
inlay hint hints lsp language protocol read write reads writes reading writing open close opens
closes opening closing save saves saving load loads loading loaded unload start starts starting
started stop stops stopping stopped restart restarts restarting reload reloads create creates
creating created remove removes removing removed deletes deleting deleted renames renaming
renamed move moves moving moved copy copies copying copied replace replaces replacing replaced
show shows showing shown hide hides hiding hidden display displays displaying displayed render
renders rendering rendered print prints printing printed log logs logging logged trace traces
tracing debug debugging warn warning warnings info fail fails failing failed failure failures
break breaks breaking broke broken pass passes passing passed succeed succeeds success
successful ignore ignores ignoring ignored skip skips skipping skipped call calls calling called
return returns returning returned throw throws throwing thrown catch catches catching caught
handle handles handling handled raise raises raising raised emit emits emitting emitted allow
allows allowing allowed prevent prevents preventing prevented enable enables enabling enabled
disable disables disabling disabled require requires requiring required expect expects expecting
change changes changing changed improve improves improving improved implement implements
implementing implemented introduce introduces introducing introduced deprecate deprecated
deprecation behaviour behaviours expectation expectations result results outcome message
messages text content contents line lines word words character characters byte bytes bit bits
char chars unicode utf-8 ascii encoding decoding encode decode document documentation docs
readme guide tutorial examples sample samples snippet snippets comment comments description
descriptions note notes section sections page pages links website site homepage tests testing
tested unit integration e2e fixture fixtures mock mocks snapshot snapshots assertion assertions
coverage ci pipeline pipelines workflow workflows action actions job jobs step steps runner
runners matrix issues bug bugs feature features requests proposal proposals idea ideas question
questions discussion discussions feedback suggestion suggestions improvement improvements
enhancement enhancements task tasks todo user-facing public private internal external global
local remote upstream downstream origin fork forks clone clones mirror mirrors large small big
tiny huge empty full partial complete incomplete missing extra duplicate duplicated unique
single multiple several various different similar separate specific general common rare unusual
strange weird odd unexpected unclear confusing misleading wrong correct incorrect invalid valid
proper improper old newer older latest stable nightly beta alpha preview experimental unstable
legacy modern recent outdated obsolete second third last next previous final initial original
existing high low higher lower highest lowest maximum minimum max min limit limits bound bounds
range ranges size sizes length lengths width height depth count counts total sum average day
days week weeks month months year years hour hours minute minutes seconds millisecond
milliseconds moment today yesterday tomorrow thing things part parts piece pieces kind kinds
sort level levels layer layers stage stages phase phases mode modes state states point points
place places area areas region regions zone zones space spaces position positions location
locations people person someone anyone everyone nobody somebody developer developers maintainer
maintainers contributor contributors reviewer reviewers author authors owner owners look looks
looking looked seem seeming seemed appear appears appearing appeared happen happens happening
happened occur occurs occurring occurred try tries trying tried attempt attempts attempting
attempted want wants wanting wanted needs needing needed know knows knowing knew known think
thinks thinking thought find finds finding found search searches searching searched match
matches matching matched filter filters filtering filtered sorts sorting sorted go goes going
went gone come comes coming came take takes taking took taken give gives giving gave given keep
keeps keeping kept let lets letting put puts putting say says saying said tell tells telling
told ask asks asking asked answer answers answering answered mean means meaning meant understand
understands understanding understood explain explains explaining explained describe describes
describing described mention mentions mentioned adds adding added fixes fixing fixed check
checks checking checked verify verifies verifying verified validate validates validating
validated configure configures configuring configured setup initialize initializes initializing
initialized init reset resets resetting clear clears clearing cleared convert converts
converting converted transform transforms transforming transformed mapping mapped serialize
serializes serializing serialized deserialize deserializing deserialized generate generates
generating generated export exports exporting exported import imports importing imported include
includes including included exclude excludes excluding excluded supports supporting supported
provide provides providing provided accept accepts accepting accepted reject rejects rejecting
rejected resolve resolves resolving resolved detect detects detecting detected report reports
reporting reported track tracks tracking tracked apply applies applying applied uses used usage
wrap wraps wrapping wrapped unwrap unwraps unwrapping unwrapped contain contains containing
contained depend depends depending depended affect affects affecting affected cause causes
causing caused reproduce reproduces reproducing reproduced reproduction repro minimal workaround
workarounds solution solutions approach approaches environment environments platform platforms
system systems machine machines device devices hardware software cpu gpu core cores thread
threads process processes network networking socket sockets port ports address addresses host
hosts hostname domain domains proxy proxies dns tls ssl certificate certificates security
vulnerability vulnerabilities exploit cve audit sandbox secret secrets password passwords hash
hashes hashing signature signatures async await future futures promise promises callback
callbacks event events listener listeners loop loops channel channels lock locks mutex atomic
iterator iterators closure closures lambda lambdas borrow borrows borrowed ownership owned dyn
impl impls derive derived json yaml toml xml csv html css markdown svg png jpeg pdf zip tar gzip
zstd utf16 protobuf grpc graphql websocket file-system filesystem directory directories folder
folders symlink symlinks tmp temp temporary cwd home dotfile command commands cli subcommand
subcommands prompt prompts input inputs interactive batch script scripts hook hooks alias
aliases window tab tabs panel panels sidebar menu menus button buttons dialog dialogs popup
toolbar statusbar theme themes color colors font fonts icon icons dark light keyboard shortcut
shortcuts mouse click clicks scroll scrolling drag drop focus selection caret undo redo
clipboard paste roadmap milestone milestones backlog priority priorities blocker blockers triage
label labels assignee assignees great good bad better worse best worst nice awesome cool amazing
excellent terrible annoying helpful useful useless painful easy easier hard harder difficult
simple simpler complex complicated important critical major minor trivial serious severe urgent
blocking nonblocking optional mandatory necessary unnecessary redundant able unable unsure
certain uncertain aware unaware happy unhappy glad right left top bottom middle center end
beginning ending front rear side sides meanwhile otherwise anyway besides furthermore moreover
nevertheless nonetheless thus hence accordingly zero two three four five six seven eight nine
ten hundred thousand million half double triple works worked semver patch patches rust python
javascript typescript java kotlin swift ruby php scala haskell elixir erlang clojure lua perl r
julia zig nim dart c cpp tokio serde hyper axum actix reqwest clap rayon anyhow thiserror regex
chrono uuid rand itertools env_logger react vue angular svelte deno bun webpack vite rollup
esbuild babel eslint prettier jest mocha pytest unittest django flask fastapi rails spring
github gitlab bitbucket jira slack discord email twitter stackoverflow reddit blog forum wiki
git checkout rebase cherry-pick stash diff blame bisect submodule submodules worktree allocation
allocations allocator allocate allocated deallocate buffer buffers buffered unbuffered stream
streams streaming chunk chunks chunked block blocks blocked offset offsets alignment aligned
unaligned padding endian endianness little big-endian varint zigzag delta compression compressed
decompress decompression ratio columnar dump dumps backup backups restore restores archive
archives timestamp timestamps date dates datetime timezone timezones utc duration durations
interval intervals epoch calendar clock null nil none undefined nan infinity negative positive
signed unsigned decimal hex hexadecimal octal precision rounding truncation truncated truncate
apparently obviously clearly basically essentially generally specifically particularly
especially mostly mainly partly fully completely entirely totally slightly correctly incorrectly
properly automatically manually explicitly implicitly silently randomly consistently
intermittently occasionally frequently rarely repeatedly immediately eventually quickly slowly
easily hardly nearly almost roughly approximately world house water family child children life
school student students company business market money price cost costs service services product
products customer customers order orders payment payments invoice invoices shipping information
data dataset datasets model models training inference prediction predictions metric metrics
dashboard dashboards chart charts plot plots audio video sound music picture pictures photo
photos camera screen screens screenshot screenshots recording city country languages locale
locales translation translations currency currencies history past present plan plans goal goals
reason reasons purpose context detail details summary overview background motivation rationale
design designs architecture structure structures pattern patterns abstraction abstractions
interface interfaces implementation implementations component components widget widgets element
elements signal signals interrupt interrupts kernel firmware bios boot booting cloud aws azure
gcp instance instances vm vms serverless deployment deployments deploy deploys deploying
deployed tagging tagged tags aggregate aggregates aggregation subquery subqueries seed seeds
random determinism deterministic nondeterministic flaky flakiness retry retries retrying retried
backoff worker workers scheduler scheduling schedule scheduled cron daemon notification
notifications alert alerts subscription subscriptions webhook webhooks paragraph sentence
sentences spelling typo typos wording phrasing fine perfect perfectly wrongly help helps helping
helped learn learns
"#;

struct Vocab {
    words: Vec<&'static str>,
    /// Zipf–Mandelbrot weights `1 / (rank + 2.7)`: "the" is about 5% of words.
    table: Table,
}

fn vocab() -> &'static Vocab {
    static VOCAB: OnceLock<Vocab> = OnceLock::new();
    VOCAB.get_or_init(|| {
        let words: Vec<&'static str> = VOCAB_TEXT.split_whitespace().collect();
        let table = Table::new(
            &(0..words.len())
                .map(|k| 1.0 / (k as f64 + 2.7))
                .collect::<Vec<_>>(),
        );
        Vocab { words, table }
    })
}

/// A discrete distribution as cumulative 64-bit thresholds, with a guide
/// table on the top bits so a draw usually costs one or two comparisons.
/// Built with additions and divisions only, so it is the same everywhere.
struct Table {
    thresholds: Vec<u64>,
    guide: Vec<u32>,
}

impl Table {
    const GUIDE_BITS: u32 = 12;

    fn new(weights: &[f64]) -> Table {
        let total: f64 = weights.iter().sum();
        let mut cum = 0.0;
        let thresholds: Vec<u64> = weights
            .iter()
            .map(|w| {
                cum += w;
                (cum / total * 18_446_744_073_709_551_616.0) as u64
            })
            .collect();
        let guide = (0..1u64 << Self::GUIDE_BITS)
            .map(|j| {
                let lo = j << (64 - Self::GUIDE_BITS);
                thresholds.partition_point(|&t| t <= lo) as u32
            })
            .collect();
        Table { thresholds, guide }
    }

    /// Index `k` with probability `weights[k] / total`.
    fn sample(&self, r: &mut Rng) -> usize {
        let x = r.next_u64();
        let last = self.thresholds.len() - 1;
        let mut k = self.guide[(x >> (64 - Self::GUIDE_BITS)) as usize] as usize;
        while k < last && self.thresholds[k] <= x {
            k += 1;
        }
        k.min(last)
    }
}

const FIRST_NAMES: &[&str] = &[
    "alex", "sam", "maria", "john", "li", "wei", "anna", "david", "sarah", "mike", "chris", "emma",
    "lucas", "sofia", "noah", "mia", "ivan", "olga", "yuki", "hiro", "raj", "priya", "ahmed",
    "fatima", "carlos", "ana", "pedro", "julia", "tom", "kate", "ben", "lena", "max", "nina",
    "oscar", "eva", "paul", "rosa", "tim", "zoe", "jan", "eric", "jonas", "lea", "felix", "hannah",
    "leo", "chloe", "omar", "aisha", "kenji", "mei", "arjun", "sven", "ingrid", "marco", "giulia",
    "diego", "lucia", "andre", "nadia", "dmitri", "katya", "tobias", "mila", "adam", "grace",
    "ryan", "laura", "kevin", "jess", "nick", "amy", "dan", "ruth",
];

const LAST_NAMES: &[&str] = &[
    "smith", "chen", "wang", "kim", "lee", "garcia", "mueller", "schmidt", "rossi", "dubois",
    "silva", "santos", "kowalski", "novak", "ivanov", "tanaka", "sato", "suzuki", "patel", "shah",
    "khan", "nguyen", "tran", "jones", "brown", "miller", "davis", "wilson", "taylor", "martin",
    "moreau", "lopez", "gonzalez", "hansen", "larsen", "berg", "fischer", "weber", "wagner",
    "becker", "ito", "park", "choi", "zhang", "liu", "yang", "huang", "zhao", "kumar", "singh",
    "ali", "hassan", "cohen", "levi", "murphy", "kelly", "walsh", "ward", "fox", "stone",
];

/// Bots: (login, account id, app id).
const BOTS: &[(&str, u64, u64)] = &[
    ("dependabot[bot]", 49_699_333, 29_110),
    ("github-actions[bot]", 41_898_282, 15_368),
    ("renovate[bot]", 29_139_614, 2_740),
    ("pre-commit-ci[bot]", 66_853_113, 68_672),
    ("stale[bot]", 26_384_082, 1_724),
    ("codecov[bot]", 22_429_695, 254),
    ("mergify[bot]", 37_929_162, 10_562),
    ("allcontributors[bot]", 46_447_321, 23_186),
];

/// Labels: (name, color, description, default), most used first.
const LABELS: &[(&str, &str, Option<&str>, bool)] = &[
    ("bug", "d73a4a", Some("Something isn't working"), true),
    (
        "enhancement",
        "a2eeef",
        Some("New feature or request"),
        true,
    ),
    (
        "documentation",
        "0075ca",
        Some("Improvements or additions to documentation"),
        true,
    ),
    (
        "question",
        "d876e3",
        Some("Further information is requested"),
        true,
    ),
    (
        "good first issue",
        "7057ff",
        Some("Good for newcomers"),
        true,
    ),
    (
        "help wanted",
        "008672",
        Some("Extra attention is needed"),
        true,
    ),
    ("area:lsp", "c5def5", Some("Language server"), false),
    (
        "dependencies",
        "0366d6",
        Some("Pull requests that update a dependency file"),
        false,
    ),
    (
        "duplicate",
        "cfd3d7",
        Some("This issue or pull request already exists"),
        true,
    ),
    ("area:parser", "c5def5", None, false),
    (
        "status: needs triage",
        "ededed",
        Some("Not yet looked at by a maintainer"),
        false,
    ),
    ("area:cli", "c5def5", Some("Command-line interface"), false),
    ("priority:high", "b60205", None, false),
    (
        "wontfix",
        "ffffff",
        Some("This will not be worked on"),
        true,
    ),
    ("invalid", "e4e669", Some("This doesn't seem right"), true),
    ("area:formatter", "c5def5", None, false),
    (
        "regression",
        "e11d21",
        Some("Something that used to work"),
        false,
    ),
    ("performance", "fbca04", Some("Speed or memory use"), false),
    ("priority:medium", "d93f0b", None, false),
    (
        "status: needs repro",
        "ededed",
        Some("Needs a minimal reproduction"),
        false,
    ),
    ("area:build", "c5def5", None, false),
    ("priority:low", "0e8a16", None, false),
    (
        "breaking-change",
        "b60205",
        Some("Changes public API or behavior"),
        false,
    ),
    ("area:windows", "1d76db", Some("Specific to Windows"), false),
    ("area:ci", "c5def5", Some("Continuous integration"), false),
    ("stale", "fef2c0", Some("No activity for a while"), false),
    ("status: in progress", "0e8a16", None, false),
    (
        "needs-info",
        "d4c5f9",
        Some("More information is needed from the reporter"),
        false,
    ),
    ("area:docs", "c5def5", None, false),
    ("security", "ee0701", Some("Security-related issue"), false),
    ("area:macos", "1d76db", Some("Specific to macOS"), false),
    ("tests", "bfd4f2", Some("Adding or fixing tests"), false),
    ("refactor", "fef2c0", None, false),
    (
        "status: blocked",
        "000000",
        Some("Waiting on something else"),
        false,
    ),
    ("area:linux", "1d76db", Some("Specific to Linux"), false),
    ("ux", "f9d0c4", Some("User experience"), false),
    ("area:perf", "c5def5", None, false),
    (
        "i18n",
        "bfdadc",
        Some("Internationalization and translations"),
        false,
    ),
    ("accessibility", "5319e7", Some("a11y"), false),
    (
        "💬 discussion",
        "cc317c",
        Some("Open-ended discussion — no action yet"),
        false,
    ),
];

const NON_ASCII: &[&str] = &[
    "é",
    "café",
    "naïve",
    "über",
    "Größe",
    "façade",
    "中文",
    "日本語",
    "한국어",
    "🎉",
    "👍",
    "🚀",
    "❤️",
    "😅",
    "—",
    "…",
    "→",
    "Привет",
    "señor",
    "Ω",
];

const OSES: &[&str] = &[
    "Ubuntu 22.04",
    "Ubuntu 24.04",
    "Windows 11",
    "Windows 10",
    "macOS 14.4 (arm64)",
    "macOS 13.6",
    "Debian 12",
    "Fedora 40",
    "Arch Linux",
    "NixOS 24.05",
    "WSL2 (Ubuntu 20.04)",
];

/// Code templates: `@` = word, `^` = Capitalized word, `~` = number.
const CODE_RUST: &[&str] = &[
    "let @ = @::@(&@);",
    "fn @_@(&self) -> Result<^, Error> {",
    "    self.@.@(@)?;",
    "    let @: Vec<^> = @.iter().map(|x| x.@()).collect();",
    "}",
    "use @::@::^;",
    "#[derive(Debug, Clone, PartialEq)]",
    "struct ^^ {",
    "    @: Option<^>,",
    "impl ^ for ^^ {",
    "    assert_eq!(@.len(), ~);",
    "    match @ {",
    "        Some(@) => @(@),",
    "        None => return Ok(()),",
];
const CODE_CONSOLE: &[&str] = &[
    "$ @ @ --@",
    "$ cargo run --release -- @ @.json",
    "error: could not @ `@`",
    "thread 'main' panicked at src/@.rs:~:~:",
    "called `Result::unwrap()` on an `Err` value: ^ { @: ~ }",
    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
    "warning: unused variable: `@`",
    "  --> src/@/@.rs:~:~",
    "Error: ^^Error(\"@ @\")",
    "   Compiling @ v0.~.~",
    "    Finished `release` profile [optimized] target(s) in ~.~s",
];
const CODE_PYTHON: &[&str] = &[
    "Traceback (most recent call last):",
    "  File \"@/@.py\", line ~, in @",
    "    @ = @.@(@)",
    "^Error: @ @ @",
    "import @",
    "from @ import ^",
    "def @_@(@, @=None):",
    "    return @.@(@)",
    "print(@)",
];
const CODE_JSON: &[&str] = &[
    "  \"@\": \"@\",",
    "  \"@\": ~,",
    "  \"@\": null,",
    "  \"@\": [~, ~, ~],",
    "  \"@\": { \"@\": true },",
];

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

/// 2014-01-01T00:00:00Z
const T_START: i64 = 1_388_534_400;
/// 2026-06-01T00:00:00Z: issues are created in `T_START..T_CREATED_END`.
const T_CREATED_END: i64 = 1_780_272_000;
/// 2026-12-31T23:59:59Z: no timestamp goes past this.
const T_HORIZON: i64 = 1_798_761_599;

const DAY: f64 = 86_400.0;

const USERS_API: &str = "https://api.github.com/users/";

/// Everything an issue needs besides its own random stream. Cheap to build.
#[derive(Clone, Debug)]
struct Ctx {
    seed: u64,
    count: u64,
    /// `https://api.github.com/repos/{repo}`
    api_repo: String,
    /// `https://github.com/{repo}`
    html_repo: String,
    /// Number of distinct authors (`count / 20 + 50`).
    pool: u64,
    users: Zipf,
    labels: Zipf,
    milestones: u64,
}

/// A user from the pool.
struct UserInfo {
    login: String,
    id: u64,
    /// The GitHub App id, for bots.
    bot: Option<u64>,
    association: &'static str,
}

/// Label names as they appear in label URLs.
fn label_paths() -> &'static [String] {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS.get_or_init(|| {
        LABELS
            .iter()
            .map(|l| {
                let mut p = String::new();
                push_path_segment(&mut p, l.0);
                p
            })
            .collect()
    })
}

impl Ctx {
    fn new(opts: &GenOptions) -> Ctx {
        let count = opts.count.max(1) as u64;
        let pool = count / 20 + 50;
        Ctx {
            seed: opts.seed,
            count,
            api_repo: format!("https://api.github.com/repos/{}", opts.repo),
            html_repo: format!("https://github.com/{}", opts.repo),
            pool,
            users: Zipf::new(pool, 0.9),
            labels: Zipf::new(LABELS.len() as u64, 1.0),
            milestones: (count / 250).clamp(4, 40),
        }
    }

    fn word(&self, r: &mut Rng) -> &'static str {
        let v = vocab();
        v.words[v.table.sample(r)]
    }

    // -- users --------------------------------------------------------------

    fn user(&self, idx: u64) -> UserInfo {
        let mut r = Rng::new(self.seed, D_USER, idx);
        if r.chance(0.01) {
            let &(login, id, app) = r.pick(BOTS);
            return UserInfo {
                login: login.to_string(),
                id,
                bot: Some(app),
                association: "NONE",
            };
        }
        let first = *r.pick(FIRST_NAMES);
        let last = *r.pick(LAST_NAMES);
        let words = &vocab().words;
        let mut login = String::with_capacity(24);
        match r.below(8) {
            0 => {
                login.push_str(first);
                login.push_str(last);
            }
            1 => {
                login.push_str(first);
                login.push('-');
                login.push_str(last);
            }
            2 => {
                login.push_str(first);
                login.push_str(&r.below(10_000).to_string());
            }
            3 => {
                login.push_str(&first[..1]);
                login.push_str(last);
                login.push_str(&r.below(100).to_string());
            }
            4 => {
                push_capitalized(&mut login, first);
                push_capitalized(&mut login, last);
            }
            5 => {
                login.push_str(first);
                login.push('-');
                login.push_str(self.word(&mut r));
            }
            6 => {
                login.push_str(r.pick::<&str>(words));
                login.push('-');
                login.push_str(r.pick::<&str>(words));
            }
            _ => {
                login.push_str(first);
                login.push_str(last);
                login.push_str(&r.range(1, 2024).to_string());
            }
        }
        // GitHub logins are ASCII letters, digits and single inner hyphens.
        login.retain(|c| c.is_ascii_alphanumeric() || c == '-');
        // Everything else derives from the login, so a login that happens to
        // come up twice in the pool always describes the same account.
        let h = mix64(fnv1a(login.as_bytes()) ^ mix64(self.seed ^ D_LOGIN));
        let id = 1_000 + h % 180_000_000;
        let association = match (idx, (h >> 32) % 5) {
            (0, _) => "OWNER",
            (1..=3, _) => "MEMBER",
            (4..=8, _) => "COLLABORATOR",
            (_, 0) => "CONTRIBUTOR",
            _ => "NONE",
        };
        UserInfo {
            login,
            id,
            bot: None,
            association,
        }
    }

    fn emit_user(&self, o: &mut impl Out, u: &UserInfo) {
        let encoded;
        let enc: &str = if u.bot.is_some() {
            let mut e = String::with_capacity(u.login.len() + 8);
            push_path_segment(&mut e, &u.login);
            encoded = e;
            &encoded
        } else {
            &u.login
        };
        let mut id_buf = [0u8; 20];
        let id = format_u64(u.id, &mut id_buf);
        let mut app_buf = [0u8; 20];
        o.begin_object();
        o.key("avatar_url");
        match u.bot {
            Some(app) => o.concat(&[
                "https://avatars.githubusercontent.com/in/",
                format_u64(app, &mut app_buf),
                "?v=4",
            ]),
            None => o.concat(&["https://avatars.githubusercontent.com/u/", id, "?v=4"]),
        }
        o.key("events_url");
        o.concat(&[USERS_API, enc, "/events{/privacy}"]);
        o.key("followers_url");
        o.concat(&[USERS_API, enc, "/followers"]);
        o.key("following_url");
        o.concat(&[USERS_API, enc, "/following{/other_user}"]);
        o.key("gists_url");
        o.concat(&[USERS_API, enc, "/gists{/gist_id}"]);
        o.key("gravatar_id");
        o.str("");
        o.key("html_url");
        match u.bot {
            Some(_) => o.concat(&[
                "https://github.com/apps/",
                u.login.trim_end_matches("[bot]"),
            ]),
            None => o.concat(&["https://github.com/", &u.login]),
        }
        o.key("id");
        o.u64(u.id);
        o.key("login");
        o.str(&u.login);
        o.key("node_id");
        o.string(match u.bot {
            Some(_) => legacy_node_id("Bot", u.id),
            None if u.id < 80_000_000 => legacy_node_id("User", u.id),
            None => new_node_id("U", u.id),
        });
        o.key("organizations_url");
        o.concat(&[USERS_API, enc, "/orgs"]);
        o.key("received_events_url");
        o.concat(&[USERS_API, enc, "/received_events"]);
        o.key("repos_url");
        o.concat(&[USERS_API, enc, "/repos"]);
        o.key("site_admin");
        o.bool(false);
        o.key("starred_url");
        o.concat(&[USERS_API, enc, "/starred{/owner}{/repo}"]);
        o.key("subscriptions_url");
        o.concat(&[USERS_API, enc, "/subscriptions"]);
        o.key("type");
        o.str(if u.bot.is_some() { "Bot" } else { "User" });
        o.key("url");
        o.concat(&[USERS_API, enc]);
        o.end_object();
    }

    /// One of the first few users of the pool (the project's maintainers),
    /// skewed toward the owner.
    fn maintainer(&self, r: &mut Rng) -> u64 {
        let n = self.pool.min(9);
        let a = r.below(n);
        let b = r.below(n);
        a.min(b)
    }

    // -- labels and milestones ----------------------------------------------

    fn emit_label(&self, o: &mut impl Out, idx: usize) {
        let (name, color, description, default) = LABELS[idx];
        let mut r = Rng::new(self.seed, D_LABEL, idx as u64);
        let id = 100_000_000 + r.below(6_000_000_000);
        let node_id = random_node_id(&mut r, "LA_kwDO", 16);
        o.begin_object();
        o.key("color");
        o.str(color);
        o.key("default");
        o.bool(default);
        o.key("description");
        match description {
            Some(d) => o.str(d),
            None => o.null(),
        }
        o.key("id");
        o.u64(id);
        o.key("name");
        o.str(name);
        o.key("node_id");
        o.string(node_id);
        o.key("url");
        o.concat(&[&self.api_repo, "/labels/", &label_paths()[idx]]);
        o.end_object();
    }

    /// Creation-time window `[start, end)` of milestone `n` (1-based).
    fn milestone_window(&self, n: u64) -> (i64, i64) {
        let span = (T_CREATED_END - T_START) as u64;
        let start = T_START + (span * (n - 1) / self.milestones) as i64;
        let end = T_START + (span * n / self.milestones) as i64;
        (start, end)
    }

    fn emit_milestone(&self, o: &mut impl Out, n: u64) {
        let mut r = Rng::new(self.seed, D_MILESTONE, n);
        let (w_start, w_end) = self.milestone_window(n);
        let open = n + 2 > self.milestones;
        let id = 1_000_000 + n * 97_331 + r.below(90_000);
        let created = (w_start - r.below(20 * 86_400) as i64).max(T_START);
        let due_on = r
            .chance(0.7)
            .then(|| w_end - w_end.rem_euclid(86_400) + 7 * 3600);
        let closed_at = (!open).then(|| (w_end + r.below(10 * 86_400) as i64).min(T_HORIZON));
        let updated = match closed_at {
            Some(c) => c,
            None => (w_end + r.below(5 * 86_400) as i64).clamp(created, T_HORIZON),
        };
        let open_issues = if open { r.range(1, 40) } else { 0 };
        let closed_issues = r.range(5, 120);
        let description = (!r.chance(0.4)).then(|| {
            let mut d = String::new();
            self.push_sentence(&mut r, &mut d, 4, 12);
            d
        });
        let creator = self.user(self.maintainer(&mut r).min(2));
        let mut nb = [0u8; 20];
        let num = format_u64(n, &mut nb);

        o.begin_object();
        o.key("closed_at");
        o.timestamp(closed_at);
        o.key("closed_issues");
        o.u64(closed_issues);
        o.key("created_at");
        o.timestamp(Some(created));
        o.key("creator");
        self.emit_user(o, &creator);
        o.key("description");
        match description {
            Some(d) => o.string(d),
            None => o.null(),
        }
        o.key("due_on");
        o.timestamp(due_on);
        o.key("html_url");
        o.concat(&[&self.html_repo, "/milestone/", num]);
        o.key("id");
        o.u64(id);
        o.key("labels_url");
        o.concat(&[&self.api_repo, "/milestones/", num, "/labels"]);
        o.key("node_id");
        o.string(legacy_node_id("Milestone", id));
        o.key("number");
        o.u64(n);
        o.key("open_issues");
        o.u64(open_issues);
        o.key("state");
        o.str(if open { "open" } else { "closed" });
        o.key("title");
        o.concat(&["v0.", num]);
        o.key("updated_at");
        o.timestamp(Some(updated));
        o.key("url");
        o.concat(&[&self.api_repo, "/milestones/", num]);
        o.end_object();
    }

    // -- text ---------------------------------------------------------------

    fn push_words(&self, r: &mut Rng, out: &mut String, n: u64) {
        for k in 0..n {
            if k > 0 {
                out.push(' ');
            }
            out.push_str(self.word(r));
        }
    }

    /// A sentence of `lo..=hi` words, capitalized, with the odd inline code
    /// span, version, issue reference or non-ASCII word.
    fn push_sentence(&self, r: &mut Rng, out: &mut String, lo: u64, hi: u64) {
        let n = r.range(lo, hi);
        for k in 0..n {
            if k > 0 {
                out.push(' ');
            }
            let w = self.word(r);
            if k == 0 {
                push_capitalized(out, w);
                continue;
            }
            match r.below(100) {
                0..=3 => {
                    out.push('`');
                    out.push_str(w);
                    out.push('_');
                    out.push_str(self.word(r));
                    out.push_str("()`");
                }
                4 => {
                    out.push_str(w);
                    out.push_str(&format!(" v{}.{}.{}", r.below(3), r.below(40), r.below(12)));
                }
                5 if r.chance(0.5) => {
                    out.push_str(w);
                    out.push(' ');
                    out.push_str(r.pick::<&str>(NON_ASCII));
                }
                6 if r.chance(0.3) => {
                    out.push_str(w);
                    out.push_str(&format!(" #{}", r.range(1, self.count)));
                }
                7 if r.chance(0.1) => {
                    out.push_str(w);
                    out.push_str(&format!(
                        " {}/issues/{}",
                        self.html_repo,
                        r.range(1, self.count)
                    ));
                }
                _ => out.push_str(w),
            }
        }
        out.push(match r.below(20) {
            0 | 1 => '?',
            2 => '!',
            _ => '.',
        });
    }

    fn push_paragraph(&self, r: &mut Rng, out: &mut String) {
        let n = r.range(1, 5);
        for k in 0..n {
            if k > 0 {
                out.push(' ');
            }
            self.push_sentence(r, out, 4, 18);
        }
        out.push_str("\n\n");
    }

    fn push_bullets(&self, r: &mut Rng, out: &mut String, numbered: bool) {
        let n = r.range(2, 6);
        let checkbox = !numbered && r.chance(0.2);
        for k in 1..=n {
            if numbered {
                out.push_str(&k.to_string());
                out.push_str(". ");
            } else if checkbox {
                out.push_str(if r.chance(0.5) { "- [x] " } else { "- [ ] " });
            } else {
                out.push_str("- ");
            }
            if numbered && r.chance(0.3) {
                out.push_str("Run `");
                out.push_str(self.word(r));
                out.push(' ');
                out.push_str(self.word(r));
                out.push('`');
            } else {
                push_capitalized(out, self.word(r));
                let w = r.range(1, 9);
                out.push(' ');
                self.push_words(r, out, w);
            }
            out.push('\n');
        }
        out.push('\n');
    }

    fn push_code_block(&self, r: &mut Rng, out: &mut String) {
        let (lang, lines): (&str, &[&str]) = match r.below(6) {
            0 | 1 => ("rust", CODE_RUST),
            2 => ("console", CODE_CONSOLE),
            3 => ("", CODE_CONSOLE),
            4 => ("python", CODE_PYTHON),
            _ => ("json", CODE_JSON),
        };
        out.push_str("```");
        out.push_str(lang);
        out.push('\n');
        if lang == "json" {
            out.push_str("{\n");
        }
        let n = r.range(2, 12);
        for _ in 0..n {
            let template = r.pick(lines);
            for c in template.chars() {
                match c {
                    '@' => out.push_str(self.word(r)),
                    '^' => push_capitalized(out, self.word(r)),
                    '~' => out.push_str(&r.below(500).to_string()),
                    c => out.push(c),
                }
            }
            out.push('\n');
        }
        if lang == "json" {
            out.push_str("}\n");
        }
        out.push_str("```\n\n");
    }

    /// A free-form block: mostly paragraphs, some lists and code.
    fn push_block(&self, r: &mut Rng, out: &mut String) {
        match r.below(10) {
            0 => self.push_bullets(r, out, false),
            1 => self.push_code_block(r, out),
            _ => self.push_paragraph(r, out),
        }
    }

    fn body(&self, r: &mut Rng, number: u64, is_pr: bool, bot: bool) -> Option<String> {
        const MAX: usize = 4000;
        if r.chance(0.1) {
            return None;
        }
        if r.chance(0.02) {
            return Some(String::new());
        }
        let target = (r.lognormal(380.0, 1.0) as usize).min(MAX);
        let mut b = String::with_capacity(target + 256);
        if bot {
            b.push_str("Bumps ");
            b.push_str(self.word(r));
            b.push_str(&format!(
                " from {}.{}.{} to {}.{}.{}.\n\n",
                r.below(3),
                r.below(30),
                r.below(10),
                r.below(3),
                r.below(30),
                r.below(10)
            ));
            b.push_str("<details>\n<summary>Release notes</summary>\n\n");
            self.push_bullets(r, &mut b, false);
            b.push_str("</details>\n\n");
        } else if is_pr {
            if r.chance(0.5) {
                b.push_str("## Summary\n\n");
                self.push_paragraph(r, &mut b);
                b.push_str("## Changes\n\n");
                self.push_bullets(r, &mut b, false);
                if r.chance(0.5) {
                    b.push_str("## Test plan\n\n");
                    self.push_paragraph(r, &mut b);
                }
            }
            if number > 1 && r.chance(0.6) {
                b.push_str(&format!("Fixes #{}\n\n", r.range(1, number - 1)));
            }
        } else {
            match r.below(10) {
                0..=2 => {
                    b.push_str("### Describe the bug\n\n");
                    self.push_paragraph(r, &mut b);
                    b.push_str("### Steps to reproduce\n\n");
                    self.push_bullets(r, &mut b, true);
                    b.push_str("### Expected behavior\n\n");
                    self.push_paragraph(r, &mut b);
                    if r.chance(0.5) {
                        b.push_str("### Actual behavior\n\n");
                        self.push_code_block(r, &mut b);
                    }
                    b.push_str("### Environment\n\n- OS: ");
                    b.push_str(r.pick::<&str>(OSES));
                    b.push_str(&format!(
                        "\n- Version: {}.{}.{}\n\n",
                        r.below(2),
                        r.below(40),
                        r.below(10)
                    ));
                }
                3 | 4 => {
                    b.push_str(
                        "**Is your feature request related to a problem? Please describe.**\n",
                    );
                    self.push_paragraph(r, &mut b);
                    b.push_str("**Describe the solution you'd like**\n");
                    self.push_paragraph(r, &mut b);
                    if r.chance(0.4) {
                        b.push_str("**Describe alternatives you've considered**\n");
                        self.push_paragraph(r, &mut b);
                    }
                }
                _ => {}
            }
        }
        while b.len() < target {
            self.push_block(r, &mut b);
        }
        while b.ends_with('\n') {
            b.pop();
        }
        if r.chance(0.35) {
            // Bodies typed into the web form come with CRLF line ends.
            b = b.replace('\n', "\r\n");
        }
        if b.len() > MAX {
            let mut cut = MAX;
            while !b.is_char_boundary(cut) {
                cut -= 1;
            }
            b.truncate(cut);
        }
        Some(b)
    }

    fn title(&self, r: &mut Rng, is_pr: bool, bot: bool) -> String {
        let mut t = String::with_capacity(80);
        if bot {
            t.push_str(&format!(
                "chore(deps): bump {} from {}.{}.{} to {}.{}.{}",
                self.word(r),
                r.below(3),
                r.below(30),
                r.below(10),
                r.below(3),
                r.below(30),
                r.below(10)
            ));
            return t;
        }
        let n = 3 + r.below(5) + r.below(6);
        let roll = r.below(100);
        let (prefix, capitalize) = if is_pr {
            match roll {
                0..=9 => ("fix: ", false),
                10..=17 => ("feat: ", false),
                18..=21 => ("docs: ", false),
                22..=24 => ("refactor: ", false),
                25..=26 => ("[WIP] ", true),
                _ => ("", true),
            }
        } else {
            match roll {
                0..=5 => ("[Bug] ", true),
                6..=10 => ("Feature request: ", false),
                11..=14 => ("Crash when ", false),
                15..=16 => ("RFC: ", true),
                17 => ("[Question] ", true),
                _ => ("", true),
            }
        };
        t.push_str(prefix);
        let code_at = if r.chance(0.06) { r.below(n) } else { n };
        for k in 0..n {
            if k > 0 {
                t.push(' ');
            }
            let w = self.word(r);
            if k == code_at {
                t.push('`');
                t.push_str(w);
                t.push('`');
            } else if k == 0 && capitalize {
                push_capitalized(&mut t, w);
            } else {
                t.push_str(w);
            }
        }
        if r.chance(0.005) {
            t.push(' ');
            t.push_str(r.pick::<&str>(NON_ASCII));
        }
        if r.chance(0.03) {
            t.push('?');
        }
        t
    }

    // -- the issue ----------------------------------------------------------

    /// Generate issue `i` (0-based) into `o`. Every random draw comes from
    /// the issue's own stream, in a fixed order; values are computed first
    /// and then emitted in sorted key order.
    fn issue(&self, i: usize, o: &mut impl Out) {
        let i = i as u64;
        let n = self.count;
        let number = i + 1;
        let mut r = Rng::new(self.seed, D_ISSUE, i);

        // Ids and creation times grow with the number.
        const ID_SPAN: u64 = 2_000_000_000;
        let id = 1_000_000_000
            + i
            + (u128::from(i) * u128::from(ID_SPAN) / u128::from(n)) as u64
            + r.below(ID_SPAN / n);
        let t_span = (T_CREATED_END - T_START) as u64;
        let created = T_START
            + (u128::from(i) * u128::from(t_span) / u128::from(n)) as i64
            + r.below(t_span / n) as i64;
        let frac = i as f64 / n as f64;

        let author = self.user(self.users.sample(&mut r) as u64);
        let bot = author.bot.is_some();
        let is_pr = bot || r.chance(0.29);
        // Older issues are more likely closed; about 25% open overall.
        let open = r.chance(0.12 + 0.5 * frac * frac * frac);
        let locked = r.chance(0.012);

        let comments = {
            let mean = match r.below(100) {
                0..=84 => 3.9,
                85..=96 => 10.5,
                _ => 32.0,
            };
            (r.exponential(mean) as u64).min(if bot { 3 } else { 500 })
        };

        let (closed_at, updated) = if open {
            let upd = if comments == 0 && r.chance(0.3) {
                created
            } else {
                created + r.lognormal(2.0 * DAY, 2.0) as i64
            };
            (None, upd.min(T_HORIZON))
        } else {
            let median = if is_pr { 1.0 } else { 4.0 } * DAY;
            let closed = (created + r.lognormal(median, 2.2) as i64).min(T_HORIZON);
            let upd = if r.chance(0.6) {
                closed + r.below(300) as i64
            } else {
                closed + r.lognormal(DAY, 2.5) as i64
            };
            (Some(closed), upd.min(T_HORIZON))
        };

        let state_reason = if is_pr {
            None
        } else if open {
            r.chance(0.05).then_some("reopened")
        } else {
            match r.below(100) {
                0..=77 => Some("completed"),
                78..=92 => Some("not_planned"),
                _ => None,
            }
        };

        // Labels: 0-4 distinct, sorted by name.
        let n_labels = if bot {
            1
        } else {
            match r.below(100) {
                0..=29 => 0,
                30..=64 => 1,
                65..=84 => 2,
                85..=94 => 3,
                _ => 4,
            }
        };
        let mut labels: Vec<usize> = Vec::with_capacity(4);
        if bot {
            labels.push(7); // "dependencies"
        }
        let mut tries = 0;
        while labels.len() < n_labels && tries < 32 {
            let l = self.labels.sample(&mut r);
            if !labels.contains(&l) {
                labels.push(l);
            }
            tries += 1;
        }
        labels.sort_unstable_by_key(|&l| LABELS[l].0);

        // Assignees: 0-2 distinct maintainers.
        let n_assignees = match r.below(100) {
            0..=64 => 0,
            65..=94 => 1,
            _ => 2,
        };
        let mut assignees: Vec<u64> = Vec::with_capacity(2);
        let mut tries = 0;
        while assignees.len() < n_assignees && tries < 16 {
            let a = self.maintainer(&mut r);
            if !assignees.contains(&a) {
                assignees.push(a);
            }
            tries += 1;
        }
        let assignees: Vec<UserInfo> = assignees.into_iter().map(|a| self.user(a)).collect();

        let milestone = r.chance(0.2).then(|| {
            let m = (frac * self.milestones as f64) as u64 + 1 + u64::from(r.chance(0.2));
            m.min(self.milestones)
        });

        let title = self.title(&mut r, is_pr, bot);
        let body = self.body(&mut r, number, is_pr, bot);
        let node_id = random_node_id(&mut r, "I_kwDO", 16);

        // Reactions, in key order: "+1" < "-1" < letters.
        const REACTIONS: [(&str, f64, f64); 8] = [
            ("+1", 0.14, 4.0),
            ("-1", 0.015, 1.5),
            ("confused", 0.01, 1.5),
            ("eyes", 0.02, 1.5),
            ("heart", 0.03, 1.5),
            ("hooray", 0.015, 1.5),
            ("laugh", 0.01, 1.5),
            ("rocket", 0.02, 1.5),
        ];
        let mut reactions = [0u64; 8];
        for (slot, &(_, p, mean)) in reactions.iter_mut().zip(&REACTIONS) {
            if r.chance(p) {
                *slot = 1 + r.exponential(mean) as u64;
            }
        }

        // Pull requests: (merged_at, draft).
        let pull_request = is_pr.then(|| {
            let merged = closed_at.filter(|_| r.chance(0.75));
            let draft = if open { r.chance(0.25) } else { r.chance(0.03) };
            (merged, draft)
        });

        let mut nb = [0u8; 20];
        let num = format_u64(number, &mut nb);
        let api = [self.api_repo.as_str(), "/issues/", num];

        o.begin_object();
        o.key("active_lock_reason");
        o.null();
        o.key("assignee");
        match assignees.first() {
            Some(u) => self.emit_user(o, u),
            None => o.null(),
        }
        o.key("assignees");
        o.begin_array();
        for u in &assignees {
            self.emit_user(o, u);
        }
        o.end_array();
        o.key("author_association");
        o.str(author.association);
        o.key("body");
        match body {
            Some(b) => o.string(b),
            None => o.null(),
        }
        o.key("closed_at");
        o.timestamp(closed_at);
        o.key("comments");
        o.u64(comments);
        o.key("comments_url");
        o.concat(&[api[0], api[1], api[2], "/comments"]);
        o.key("created_at");
        o.timestamp(Some(created));
        if let Some((_, draft)) = pull_request {
            o.key("draft");
            o.bool(draft);
        }
        o.key("events_url");
        o.concat(&[api[0], api[1], api[2], "/events"]);
        o.key("html_url");
        if is_pr {
            o.concat(&[&self.html_repo, "/pull/", num]);
        } else {
            o.concat(&[&self.html_repo, "/issues/", num]);
        }
        o.key("id");
        o.u64(id);
        o.key("labels");
        o.begin_array();
        for &l in &labels {
            self.emit_label(o, l);
        }
        o.end_array();
        o.key("labels_url");
        o.concat(&[api[0], api[1], api[2], "/labels{/name}"]);
        o.key("locked");
        o.bool(locked);
        o.key("milestone");
        match milestone {
            Some(m) => self.emit_milestone(o, m),
            None => o.null(),
        }
        o.key("node_id");
        o.string(node_id);
        o.key("number");
        o.u64(number);
        o.key("performed_via_github_app");
        o.null();
        if let Some((merged, _)) = pull_request {
            let html = [self.html_repo.as_str(), "/pull/", num];
            o.key("pull_request");
            o.begin_object();
            o.key("diff_url");
            o.concat(&[html[0], html[1], html[2], ".diff"]);
            o.key("html_url");
            o.concat(&html);
            o.key("merged_at");
            o.timestamp(merged);
            o.key("patch_url");
            o.concat(&[html[0], html[1], html[2], ".patch"]);
            o.key("url");
            o.concat(&[&self.api_repo, "/pulls/", num]);
            o.end_object();
        }
        o.key("reactions");
        o.begin_object();
        for (&(k, _, _), &v) in REACTIONS.iter().zip(&reactions) {
            o.key(k);
            o.u64(v);
        }
        o.key("total_count");
        o.u64(reactions.iter().sum());
        o.key("url");
        o.concat(&[api[0], api[1], api[2], "/reactions"]);
        o.end_object();
        o.key("repository_url");
        o.str(&self.api_repo);
        o.key("state");
        o.str(if open { "open" } else { "closed" });
        o.key("state_reason");
        match state_reason {
            Some(s) => o.str(s),
            None => o.null(),
        }
        o.key("timeline_url");
        o.concat(&[api[0], api[1], api[2], "/timeline"]);
        o.key("title");
        o.string(title);
        o.key("updated_at");
        o.timestamp(Some(updated));
        o.key("url");
        o.concat(&api);
        o.key("user");
        self.emit_user(o, &author);
        o.end_object();
    }

    fn issue_value(&self, i: usize) -> Value {
        let mut o = ValueOut::default();
        self.issue(i, &mut o);
        o.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.to_string())
    }

    fn small(count: usize) -> GenOptions {
        GenOptions {
            count,
            ..GenOptions::default()
        }
    }

    fn ndjson(opts: &GenOptions) -> Vec<u8> {
        let mut out = Vec::new();
        write_ndjson(opts, &mut out).unwrap();
        out
    }

    const ISSUE_KEYS: &[&str] = &[
        "url",
        "repository_url",
        "labels_url",
        "comments_url",
        "events_url",
        "html_url",
        "id",
        "node_id",
        "number",
        "title",
        "user",
        "labels",
        "state",
        "locked",
        "assignee",
        "assignees",
        "milestone",
        "comments",
        "created_at",
        "updated_at",
        "closed_at",
        "author_association",
        "active_lock_reason",
        "body",
        "reactions",
        "timeline_url",
        "performed_via_github_app",
        "state_reason",
    ];

    const USER_KEYS: &[&str] = &[
        "login",
        "id",
        "node_id",
        "avatar_url",
        "gravatar_id",
        "url",
        "html_url",
        "followers_url",
        "following_url",
        "gists_url",
        "starred_url",
        "subscriptions_url",
        "organizations_url",
        "repos_url",
        "events_url",
        "received_events_url",
        "type",
        "site_admin",
    ];

    fn assert_keys(v: &Value, keys: &[&str], what: &str) {
        let m = v
            .as_object()
            .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
        for k in keys {
            assert!(m.contains_key(*k), "{what} lacks {k}: {v}");
        }
    }

    fn assert_user(v: &Value) {
        assert_keys(v, USER_KEYS, "user");
        assert_eq!(v.as_object().unwrap().len(), USER_KEYS.len());
        let login = v["login"].as_str().unwrap();
        let name = login.strip_suffix("[bot]").unwrap_or(login);
        assert!(!name.is_empty() && !name.starts_with('-') && !name.ends_with('-'));
        assert!(
            name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'),
            "{login}"
        );
        let kind = v["type"].as_str().unwrap();
        assert!(kind == "User" || kind == "Bot");
        assert_eq!(v["type"] == "Bot", login.ends_with("[bot]"));
        assert_eq!(v["site_admin"], false);
        assert_eq!(v["gravatar_id"], "");
        let url = v["url"].as_str().unwrap();
        assert!(url.starts_with("https://api.github.com/users/"));
        assert_eq!(v["repos_url"].as_str().unwrap(), format!("{url}/repos"));
        assert!(v["id"].as_u64().unwrap() > 0);
    }

    fn assert_timestamp(v: &Value) -> &str {
        let t = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
        let b = t.as_bytes();
        assert_eq!(b.len(), 20, "{t}");
        for (k, &c) in b.iter().enumerate() {
            match k {
                4 | 7 => assert_eq!(c, b'-', "{t}"),
                10 => assert_eq!(c, b'T', "{t}"),
                13 | 16 => assert_eq!(c, b':', "{t}"),
                19 => assert_eq!(c, b'Z', "{t}"),
                _ => assert!(c.is_ascii_digit(), "{t}"),
            }
        }
        assert!(("2014".."2027").contains(&&t[..4]), "{t}");
        t
    }

    #[test]
    fn deterministic() {
        let opts = small(500);
        let a = ndjson(&opts);
        let b = ndjson(&opts);
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|&&c| c == b'\n').count(), 500);
        let all: Vec<Value> = issues(&opts).collect();
        assert_eq!(all, issues(&opts).collect::<Vec<_>>());
        assert_eq!(issues(&opts).len(), 500);
        for (line, v) in a.split(|&c| c == b'\n').zip(&all) {
            assert_eq!(&serde_json::from_slice::<Value>(line).unwrap(), v);
        }
        for i in [0, 1, 2, 17, 250, 498, 499] {
            assert_eq!(issue(&opts, i), all[i], "issue {i}");
            assert_eq!(issues(&opts).nth(i).as_ref(), Some(&all[i]), "nth {i}");
        }
        assert_eq!(issues(&opts).nth(500), None);
        assert_eq!(issues(&opts).next_back().as_ref(), all.last());
        // Other seeds and repositories give other data.
        let other = GenOptions {
            seed: 43,
            ..opts.clone()
        };
        assert_ne!(issue(&other, 0), all[0]);
        let repo = GenOptions {
            repo: "octo/cat".into(),
            ..opts.clone()
        };
        let v = issue(&repo, 3);
        assert_eq!(v["repository_url"], "https://api.github.com/repos/octo/cat");
        assert_eq!(v["title"], all[3]["title"]);
    }

    /// The bytes must never change: update only on purpose, knowing that
    /// fixtures and benchmarks built from the generator change with them.
    #[test]
    fn output_is_pinned() {
        let bytes = ndjson(&small(300));
        assert_eq!(
            (bytes.len(), fnv1a(&bytes)),
            (PINNED_LEN, PINNED_HASH),
            "generated output changed"
        );
    }
    const PINNED_LEN: usize = 1_239_572;
    const PINNED_HASH: u64 = 680_946_644_743_294_480;

    #[test]
    fn shape() {
        let opts = small(2000);
        let (mut prs, mut plain) = (0, 0);
        for (i, v) in issues(&opts).enumerate() {
            assert_keys(&v, ISSUE_KEYS, "issue");
            let m = v.as_object().unwrap();
            let number = i as u64 + 1;
            assert_eq!(v["number"], number);
            let api = format!("https://api.github.com/repos/acme/widgets/issues/{number}");
            assert_eq!(v["url"], api.as_str());
            assert_eq!(v["comments_url"], format!("{api}/comments").as_str());
            assert!(v["node_id"].as_str().unwrap().starts_with("I_kwDO"));
            assert_eq!(v["node_id"].as_str().unwrap().len(), 22);
            assert_user(&v["user"]);
            match m.get("pull_request") {
                Some(pr) => {
                    prs += 1;
                    assert!(pr.is_object(), "pull_request must not be null");
                    assert!(v["draft"].is_boolean());
                    assert_eq!(m.len(), ISSUE_KEYS.len() + 2);
                    let html = pr["html_url"].as_str().unwrap();
                    assert_eq!(v["html_url"], html);
                    assert_eq!(pr["diff_url"], format!("{html}.diff").as_str());
                    if !pr["merged_at"].is_null() {
                        assert_eq!(pr["merged_at"], v["closed_at"]);
                    }
                }
                None => {
                    plain += 1;
                    assert!(!m.contains_key("draft"));
                    assert_eq!(m.len(), ISSUE_KEYS.len());
                    assert!(
                        v["html_url"]
                            .as_str()
                            .unwrap()
                            .ends_with(&format!("/issues/{number}"))
                    );
                }
            }
            let labels = v["labels"].as_array().unwrap();
            assert!(labels.len() <= 4);
            for l in labels {
                assert_keys(
                    l,
                    &[
                        "id",
                        "node_id",
                        "url",
                        "name",
                        "color",
                        "default",
                        "description",
                    ],
                    "label",
                );
                assert!(l["description"].is_string() || l["description"].is_null());
            }
            let assignees = v["assignees"].as_array().unwrap();
            assert!(assignees.len() <= 2);
            assert_eq!(
                v["assignee"],
                assignees.first().cloned().unwrap_or(Value::Null)
            );
            assignees.iter().for_each(assert_user);
            if !v["milestone"].is_null() {
                let ms = &v["milestone"];
                assert_keys(
                    ms,
                    &[
                        "url",
                        "html_url",
                        "labels_url",
                        "id",
                        "node_id",
                        "number",
                        "title",
                        "description",
                        "creator",
                        "open_issues",
                        "closed_issues",
                        "state",
                        "created_at",
                        "updated_at",
                        "due_on",
                        "closed_at",
                    ],
                    "milestone",
                );
                assert_user(&ms["creator"]);
                assert!(ms["title"].as_str().unwrap().starts_with("v0."));
            }
            let state = v["state"].as_str().unwrap();
            assert!(state == "open" || state == "closed");
            assert!(v["locked"].is_boolean());
            assert!(v["active_lock_reason"].is_null());
            assert!(v["performed_via_github_app"].is_null());
            assert!(
                [Value::Null, s("completed"), s("not_planned"), s("reopened")]
                    .contains(&v["state_reason"])
            );
            assert!(
                ["NONE", "CONTRIBUTOR", "MEMBER", "COLLABORATOR", "OWNER"]
                    .contains(&v["author_association"].as_str().unwrap())
            );
            let reactions = &v["reactions"];
            let sum: u64 = [
                "+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes",
            ]
            .iter()
            .map(|k| reactions[*k].as_u64().unwrap())
            .sum();
            assert_eq!(reactions["total_count"], sum);
            if let Some(body) = v["body"].as_str() {
                assert!(body.chars().count() <= 4000);
            } else {
                assert!(v["body"].is_null());
            }
            let title = v["title"].as_str().unwrap();
            let words = title.split(' ').count();
            assert!((3..=20).contains(&words), "{title}");
        }
        assert!(prs > 0 && plain > 0);
    }

    #[test]
    fn timestamps_and_ids_ordered() {
        let opts = small(3000);
        let mut prev_created = String::new();
        let mut prev_id = 0;
        for v in issues(&opts) {
            let created = assert_timestamp(&v["created_at"]);
            let updated = assert_timestamp(&v["updated_at"]);
            assert!(updated >= created, "{v}");
            assert!(
                created >= prev_created.as_str(),
                "created_at goes back: {v}"
            );
            prev_created = created.to_string();
            match v["state"].as_str().unwrap() {
                "open" => assert!(v["closed_at"].is_null()),
                _ => {
                    let closed = assert_timestamp(&v["closed_at"]);
                    assert!(closed >= created && updated >= closed, "{v}");
                }
            }
            let id = v["id"].as_u64().unwrap();
            assert!(id > prev_id && (1_000_000_000..3_100_000_000).contains(&id));
            prev_id = id;
            if let Some(ms) = v["milestone"].as_object() {
                let c = assert_timestamp(&ms["created_at"]);
                assert!(assert_timestamp(&ms["updated_at"]) >= c);
                if !ms["due_on"].is_null() {
                    assert_timestamp(&ms["due_on"]);
                }
            }
        }
        assert!(prev_created.as_str() < "2026-06-01");
        assert!(prev_created.as_str() > "2026-05-01");
    }

    #[test]
    fn distributions_look_real() {
        let n = 20_000;
        let opts = small(n);
        let (mut open, mut prs, mut null_body, mut milestones, mut comments) = (0, 0, 0, 0, 0);
        let (mut bots, mut locked, mut non_ascii, mut crlf) = (0, 0, 0, 0);
        let mut max_comments = 0;
        let mut body_len = 0;
        let mut logins = std::collections::HashMap::new();
        for v in issues(&opts) {
            open += usize::from(v["state"] == "open");
            prs += usize::from(v.get("pull_request").is_some());
            null_body += usize::from(v["body"].is_null());
            milestones += usize::from(!v["milestone"].is_null());
            bots += usize::from(v["user"]["type"] == "Bot");
            locked += usize::from(v["locked"] == true);
            let c = v["comments"].as_u64().unwrap();
            comments += c;
            max_comments = max_comments.max(c);
            if let Some(b) = v["body"].as_str() {
                body_len += b.len();
                non_ascii += usize::from(!b.is_ascii());
                crlf += usize::from(b.contains("\r\n"));
            }
            *logins
                .entry(v["user"]["login"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        let pct = |k: usize| k * 100 / n;
        assert!((20..=30).contains(&pct(open)), "open {open}");
        assert!((26..=34).contains(&pct(prs)), "prs {prs}");
        assert!(
            (7..=13).contains(&pct(null_body)),
            "null bodies {null_body}"
        );
        assert!(
            (16..=24).contains(&pct(milestones)),
            "milestones {milestones}"
        );
        assert!((1..=300).contains(&locked), "locked {locked}");
        assert!(bots > 0 && pct(bots) < 3, "bots {bots}");
        let mean = comments as f64 / n as f64;
        assert!((4.0..6.0).contains(&mean), "mean comments {mean}");
        assert!(
            (100..=500).contains(&max_comments),
            "max comments {max_comments}"
        );
        assert!(non_ascii > 0 && crlf > 0);
        let mean_body = body_len / (n - null_body);
        assert!((300..1500).contains(&mean_body), "mean body {mean_body}");
        // Zipf-ish authors: many distinct, some prolific.
        let top = *logins.values().max().unwrap();
        assert!(logins.len() > 300, "{} logins", logins.len());
        assert!(top > n / 100, "top author has {top}");
    }

    #[test]
    fn keys_are_inserted_in_sorted_order() {
        // Trivially true with serde_json's default BTreeMap; with its
        // `preserve_order` feature this checks the output does not change.
        fn check(v: &Value) {
            match v {
                Value::Object(m) => {
                    let keys: Vec<&String> = m.keys().collect();
                    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
                    m.values().for_each(check);
                }
                Value::Array(a) => a.iter().for_each(check),
                _ => {}
            }
        }
        issues(&small(300)).for_each(|v| check(&v));
    }

    #[test]
    fn json_writer_matches_serde_json() {
        let opts = GenOptions {
            count: 3000,
            seed: 9,
            repo: "we\"ird/re\\po".into(),
        };
        let ctx = Ctx::new(&opts);
        let mut buf = Vec::new();
        for i in 0..opts.count {
            buf.clear();
            ctx.issue(
                i,
                &mut JsonOut {
                    buf: &mut buf,
                    comma: false,
                },
            );
            let v = ctx.issue_value(i);
            assert_eq!(
                String::from_utf8_lossy(&buf),
                serde_json::to_string(&v).unwrap(),
                "issue {i}"
            );
        }
        // Every escape serde_json knows about.
        let nasty: String = (0u8..0x80)
            .map(char::from)
            .chain("é中🎉\u{2028}".chars())
            .collect();
        for v in [nasty.as_str(), "", "plain", "\"\\/"] {
            let mut buf = Vec::new();
            let mut o = JsonOut {
                buf: &mut buf,
                comma: false,
            };
            o.begin_array();
            o.str(v);
            o.concat(&[v, v]);
            o.u64(u64::MAX);
            o.u64(0);
            o.bool(true);
            o.null();
            o.begin_object();
            o.key("k");
            o.begin_array();
            o.end_array();
            o.end_object();
            o.end_array();
            let expected =
                serde_json::json!([v, format!("{v}{v}"), u64::MAX, 0, true, null, {"k": []}]);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
        }
    }

    #[test]
    fn throughput_smoke() {
        let opts = GenOptions {
            count: 10_000,
            seed: 7,
            ..GenOptions::default()
        };
        let mut sink = io::sink();
        write_ndjson(&opts, &mut sink).unwrap();
        assert_eq!(issues(&opts).count(), 10_000);
    }

    #[test]
    fn tiny_counts() {
        for count in [0, 1, 2, 3] {
            let opts = small(count);
            assert_eq!(issues(&opts).count(), count);
            assert_eq!(ndjson(&opts).iter().filter(|&&c| c == b'\n').count(), count);
        }
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn issue_out_of_range_panics() {
        issue(&small(10), 10);
    }

    #[test]
    fn helpers() {
        let ts = |t| String::from_utf8(format_timestamp(t).to_vec()).unwrap();
        assert_eq!(ts(0), "1970-01-01T00:00:00Z");
        assert_eq!(ts(T_START), "2014-01-01T00:00:00Z");
        assert_eq!(ts(T_CREATED_END), "2026-06-01T00:00:00Z");
        assert_eq!(ts(T_HORIZON), "2026-12-31T23:59:59Z");
        assert_eq!(ts(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(ts(1_709_210_096), "2024-02-29T12:34:56Z");
        // Real GitHub ids: octocat and the User node id scheme.
        assert_eq!(legacy_node_id("User", 583_231), "MDQ6VXNlcjU4MzIzMQ==");
        assert_eq!(legacy_node_id("User", 1), "MDQ6VXNlcjE=");
        assert_eq!(new_node_id("U", 0x0102_0304), "U_kgDOAQIDBA");
        let mut seg = String::new();
        push_path_segment(&mut seg, "good first issue");
        assert_eq!(seg, "good%20first%20issue");
        for x in [
            1e-300, 1e-9, 0.001, 0.3, 0.5, 1.0, 1.5, 2.0, 10.0, 12345.678, 1e300,
        ] {
            let rel = (det_ln(x) - x.ln()).abs() / x.ln().abs().max(1.0);
            assert!(rel < 1e-13, "ln {x}: {} vs {}", det_ln(x), x.ln());
        }
        for x in [
            -700.0, -50.0, -1.0, -1e-6, 0.0, 1e-6, 0.5, 1.0, 3.3, 20.0, 700.0,
        ] {
            let e: f64 = x;
            let rel = (det_exp(x) - e.exp()).abs() / e.exp();
            assert!(rel < 1e-13, "exp {x}: {} vs {}", det_exp(x), e.exp());
        }
        // The PRNG is fixed forever.
        let mut r = Rng::new(42, D_ISSUE, 0);
        let first = r.next_u64();
        assert_eq!(first, Rng::new(42, D_ISSUE, 0).next_u64());
        assert_ne!(first, Rng::new(42, D_ISSUE, 1).next_u64());
        assert_ne!(first, Rng::new(42, D_USER, 0).next_u64());
        let words = &vocab().words;
        assert_eq!(words.len(), 2000);
        let distinct: std::collections::HashSet<_> = words.iter().collect();
        assert_eq!(distinct.len(), words.len());
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(100, 0.9);
        let mut r = Rng::new(1, 99, 0);
        let mut hist = [0u32; 100];
        for _ in 0..100_000 {
            hist[z.sample(&mut r)] += 1;
        }
        assert!(hist[0] > hist[1] && hist[1] > hist[10] && hist[10] > hist[99]);
        assert!(hist.iter().all(|&h| h > 0));
    }
}
