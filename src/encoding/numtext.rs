//! The `num-text` stream (role 11, format version 5): the text of every
//! `NumText` item, an integer literal outside `[-2^63, 2^64)` kept as it was
//! written (SPEC.md 1.3, 4.10). Encoding 0 (`raw`): `count` times a LEB128
//! length and that many ASCII bytes.
//!
//! A reader writes these texts into exported JSON as they are, so it checks
//! each one: an optional `-`, then digits without a leading zero, and a
//! value outside `[-2^63, 2^64)` (any other number has a kind of its own).

use super::Encoding;
use super::varint::{self, Reader};
use crate::error::{Error, Result};

/// `2^63`, the magnitude past which a negative integer is outside i64.
const MIN_I64_DIGITS: &[u8] = b"9223372036854775808";
/// `2^64 - 1`, the largest u64.
const MAX_U64_DIGITS: &[u8] = b"18446744073709551615";

/// Whether `text` is an integer literal (`-?[1-9][0-9]*`) whose value is
/// outside `[-2^63, 2^64)`: what a `NumText` item holds.
pub fn is_num_text(text: &[u8]) -> bool {
    let (neg, digits) = match text.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, text),
    };
    if digits.is_empty() || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let max = if neg { MIN_I64_DIGITS } else { MAX_U64_DIGITS };
    // No leading zeros: the digit count orders the values.
    digits.len() > max.len() || (digits.len() == max.len() && digits > max)
}

/// An integer kept as text, as the nearest binary64, for comparisons:
/// finite (past binary64's range, the largest of its sign), so it orders
/// with every other number.
pub fn value(t: &str) -> f64 {
    t.parse::<f64>().unwrap_or(0.0).clamp(-f64::MAX, f64::MAX)
}

/// The JSON text `row` with every integer literal outside `[-2^63, 2^64)`
/// (what a JSON value holds as its nearest binary64) written as the string
/// `"{mark}{literal}"`, so that a value parsed from it keeps the literal;
/// `None` when `row` holds no such literal. `mark` must not need escaping
/// in a JSON string.
pub(crate) fn mark_texts(row: &[u8], mark: &str) -> Option<Vec<u8>> {
    let spans: Vec<(usize, usize)> = crate::schema::input::number_spans(row)
        .into_iter()
        .filter(|&(a, z)| is_num_text(&row[a..z]))
        .collect();
    if spans.is_empty() {
        return None;
    }
    let mut t = Vec::with_capacity(row.len() + spans.len() * (mark.len() + 2));
    let mut at = 0;
    for &(a, z) in &spans {
        t.extend_from_slice(&row[at..a]);
        t.push(b'"');
        t.extend_from_slice(mark.as_bytes());
        t.extend_from_slice(&row[a..z]);
        t.push(b'"');
        at = z;
    }
    t.extend_from_slice(&row[at..]);
    Some(t)
}

/// Append the stream of `texts` to `out`: each text's length, then its bytes.
pub fn encode<'a>(texts: impl IntoIterator<Item = &'a str>, out: &mut Vec<u8>) -> Encoding {
    for t in texts {
        varint::put_u64(out, t.len() as u64);
        out.extend_from_slice(t.as_bytes());
    }
    Encoding::Raw
}

/// Decode `count` texts from the stream `b` (encoding `e`), checking each.
pub fn decode(e: Encoding, b: &[u8], count: usize, what: &str) -> Result<Vec<Box<str>>> {
    if e != Encoding::Raw {
        return Err(Error::corrupt(
            what,
            0,
            format!("encoding {} is not allowed here (raw only)", e.name()),
        ));
    }
    // Each text takes two bytes at least: no more texts than that.
    if count > b.len() / 2 {
        return Err(Error::corrupt(
            what,
            0,
            format!("{count} number texts cannot fit in {} bytes", b.len()),
        ));
    }
    let mut r = Reader::new(b);
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.pos();
        let len = r.u64(what)?;
        let text = usize::try_from(len)
            .ok()
            .and_then(|n| r.bytes(n, what).ok())
            .ok_or_else(|| {
                Error::corrupt(what, at as u64, "a number text past the stream's end")
            })?;
        if !is_num_text(text) {
            return Err(Error::corrupt(
                what,
                at as u64,
                "not an integer literal outside [-2^63, 2^64)",
            ));
        }
        // ASCII digits: valid UTF-8.
        out.push(String::from_utf8_lossy(text).into());
    }
    if r.pos() != b.len() {
        return Err(Error::corrupt(
            what,
            r.pos() as u64,
            format!("{} bytes left over", b.len() - r.pos()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_outside_the_integer_range_only() {
        for t in [
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "-100000000000000000000",
        ] {
            assert!(is_num_text(t.as_bytes()), "{t}");
        }
        for t in [
            "18446744073709551615",
            "-9223372036854775808",
            "0",
            "-0",
            "",
            "-",
            "012345678901234567890123",
            "1e400",
            "1.5",
            "+18446744073709551616",
            " 18446744073709551616",
            "18446744073709551616 ",
        ] {
            assert!(!is_num_text(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let texts = ["18446744073709551616", "-9223372036854775809"];
        let mut b = Vec::new();
        assert_eq!(encode(texts, &mut b), Encoding::Raw);
        let got = decode(Encoding::Raw, &b, 2, "t").unwrap();
        assert_eq!(got.iter().map(|s| &**s).collect::<Vec<_>>(), texts);
        // Too few, too many, a cut, another encoding, a text that is not one.
        assert!(decode(Encoding::Raw, &b, 1, "t").is_err());
        assert!(decode(Encoding::Raw, &b, 3, "t").is_err());
        assert!(decode(Encoding::Raw, &b[..b.len() - 1], 2, "t").is_err());
        assert!(decode(Encoding::Varint, &b, 2, "t").is_err());
        let mut bad = Vec::new();
        encode(["1234"], &mut bad);
        assert!(decode(Encoding::Raw, &bad, 1, "t").is_err());
        let mut bad = Vec::new();
        encode(["18446744073709551616\"}"], &mut bad);
        assert!(decode(Encoding::Raw, &bad, 1, "t").is_err());
        // A length past the end, and a huge claimed count, are errors.
        assert!(decode(Encoding::Raw, &[0xff, 0xff, 0xff, 0xff, 0x0f], 1, "t").is_err());
        assert!(decode(Encoding::Raw, &b, usize::MAX, "t").is_err());
    }

    #[test]
    fn values_are_finite_binary64s() {
        assert_eq!(value("18446744073709551616"), 18446744073709551616.0);
        assert_eq!(value("-9223372036854775809"), -9223372036854775808.0);
        let huge = format!("1{}", "0".repeat(400));
        assert_eq!(value(&huge), f64::MAX);
        assert_eq!(value(&format!("-{huge}")), -f64::MAX);
    }
}
