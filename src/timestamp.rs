//! RFC 3339 timestamps stored as integers, reproduced byte for byte.
//!
//! A JSON string is stored as a [`Timestamp`] only when [`format()`] of the
//! parsed value gives back the original text exactly. The accepted shape is
//! `YYYY-MM-DDTHH:MM:SS[.F{1..9}](Z|+HH:MM|-HH:MM|+HHMM|-HHMM)` with a
//! 4-digit year in `0000..=9999` (proleptic Gregorian calendar), no leap
//! seconds, and uppercase `T` and `Z` only. Everything else stays a string.
//!
//! The civil-date arithmetic follows Howard Hinnant's `days_from_civil` and
//! `civil_from_days` algorithms. Every function is total: no input, however
//! hostile, makes it panic or overflow.

/// Seconds in a day.
const SECS_PER_DAY: i64 = 86_400;

/// Largest absolute offset that can be written: `23:59`, in minutes.
const MAX_OFFSET_MINUTES: i64 = 23 * 60 + 59;

/// Longest accepted text: 19 (date-time) + 10 (`.` and 9 digits) + 6 (`+HH:MM`).
const MAX_LEN: usize = 35;

/// Shortest accepted text: 19 (date-time) + 1 (`Z`).
const MIN_LEN: usize = 20;

/// Powers of ten, `POW10[i] == 10^i`, for `i` in `0..=9`.
const POW10: [u32; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// First local second that can be written: `0000-01-01T00:00:00`.
const MIN_LOCAL_SECS: i64 = days_from_civil(0, 1, 1) * SECS_PER_DAY;

/// Last local second that can be written: `9999-12-31T23:59:59`.
const MAX_LOCAL_SECS: i64 = days_from_civil(9999, 12, 31) * SECS_PER_DAY + SECS_PER_DAY - 1;

/// Offset style: `Z`.
const STYLE_Z: u8 = 0;
/// Offset style: `+HH:MM` / `-HH:MM`.
const STYLE_COLON: u8 = 1;
/// Offset style: `+HHMM` / `-HHMM`.
const STYLE_COMPACT: u8 = 2;
/// Offset style: `-00:00` (negative zero, colon).
const STYLE_NEG_ZERO_COLON: u8 = 3;
/// Offset style: `-0000` (negative zero, no colon).
const STYLE_NEG_ZERO_COMPACT: u8 = 4;

/// How the text was laid out, so it can be reproduced byte for byte.
///
/// Packed in one byte: `frac_digits` (0..=9) + 10 * `offset_style`, with
/// `offset_style` in 0..=4:
/// 0 = `Z`, 1 = `+HH:MM`/`-HH:MM`, 2 = `+HHMM`/`-HHMM`,
/// 3 = `-00:00` (negative zero, colon), 4 = `-0000` (negative zero, no colon).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Layout(u8);

impl Layout {
    /// The largest valid packed byte: 9 fraction digits, offset style 4.
    pub const MAX: u8 = 49;

    /// Unpacks a layout byte; `None` if `b > Layout::MAX`.
    pub fn from_byte(b: u8) -> Option<Layout> {
        (b <= Self::MAX).then_some(Layout(b))
    }

    /// The packed byte: `frac_digits + 10 * offset_style`.
    pub fn to_byte(self) -> u8 {
        self.0
    }

    /// Number of fraction digits written after the `.` (0 means no `.`).
    pub fn frac_digits(self) -> u8 {
        self.0 % 10
    }

    /// How the offset is written (0..=4, see [`Layout`]).
    pub fn offset_style(self) -> u8 {
        self.0 / 10
    }
}

/// A parsed timestamp: the UTC instant plus what is needed to reproduce the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z of the UTC instant.
    pub secs: i64,
    /// The fraction scaled to nanoseconds, in `0..1_000_000_000`.
    pub nanos: u32,
    /// The written offset in minutes (local = UTC + offset); 0 for `Z`.
    pub offset_minutes: i16,
    /// How the text was laid out.
    pub layout: Layout,
}

/// The RFC 3339 text, exactly as `export` writes it (the input's layout:
/// fraction digits, `Z` or offset). Fields that cannot be formatted (see
/// [`validate`]) are a formatting error.
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        if !format(self, &mut s) {
            return Err(std::fmt::Error);
        }
        f.write_str(&s)
    }
}

/// Parse `s`; returns `Some` only if [`format()`] of the result equals `s` exactly.
pub fn parse(s: &str) -> Option<Timestamp> {
    if !looks_like(s) {
        return None;
    }
    let b = s.as_bytes();
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    // Optional fraction: '.' followed by 1 to 9 digits.
    let mut i = 19;
    let mut frac_digits = 0usize;
    let mut frac = 0u32;
    if b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            if frac_digits == 9 {
                return None;
            }
            frac = frac * 10 + u32::from(b[i] - b'0');
            frac_digits += 1;
            i += 1;
        }
        if frac_digits == 0 {
            return None;
        }
    }
    let nanos = frac * POW10[9 - frac_digits];

    // Offset.
    let (offset_minutes, style) = match &b[i..] {
        [b'Z'] => (0i64, STYLE_Z),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let off = offset_value(*h1, *h2, *m1, *m2)?;
            signed_offset(*sign, off, STYLE_COLON, STYLE_NEG_ZERO_COLON)
        }
        [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let off = offset_value(*h1, *h2, *m1, *m2)?;
            signed_offset(*sign, off, STYLE_COMPACT, STYLE_NEG_ZERO_COMPACT)
        }
        _ => return None,
    };

    // All values are range-checked above, so none of this can overflow.
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let local =
        days * SECS_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    let ts = Timestamp {
        secs: local - offset_minutes * 60,
        nanos,
        offset_minutes: i16::try_from(offset_minutes).ok()?,
        // frac_digits <= 9 and style <= 4, so this is at most 49.
        layout: Layout(frac_digits as u8 + 10 * style),
    };

    // Guarantee the contract: the stored value reproduces the text exactly.
    let mut buf = [0u8; MAX_LEN];
    let n = render(&ts, &mut buf)?;
    (buf[..n] == *b).then_some(ts)
}

/// Append the text of `ts` to `out`.
///
/// Never panics: the fields are checked with [`validate`] first; for invalid
/// input nothing is written and `false` is returned.
pub fn format(ts: &Timestamp, out: &mut String) -> bool {
    let mut buf = [0u8; MAX_LEN];
    match render(ts, &mut buf) {
        Some(n) => {
            // `render` writes ASCII bytes only.
            out.extend(buf[..n].iter().map(|&c| char::from(c)));
            true
        }
        None => false,
    }
}

/// True when the fields can be formatted.
///
/// That is: the layout byte is valid, `nanos < 1e9` and divisible by
/// `10^(9 - frac_digits)`, the offset is within ±(23*60+59) minutes and is 0
/// for offset styles 0, 3 and 4, and the local date-time (UTC + offset) lies
/// within years 0000..=9999.
pub fn validate(ts: &Timestamp) -> bool {
    local_secs(ts).is_some()
}

/// What [`validate`] says of a timestamp at `secs` with no fraction and a
/// zero offset, whatever its layout: the only check left is the range. A
/// column with no nanosecond and no offset stream checks its seconds with
/// this alone.
#[inline]
pub fn valid_plain_secs(secs: i64) -> bool {
    (MIN_LOCAL_SECS..=MAX_LOCAL_SECS).contains(&secs)
}

/// Quick pre-check used on every string before [`parse`] (cheap): length
/// 20..=35 bytes, bytes 4 and 7 are `-` and byte 10 is `T`.
pub fn looks_like(s: &str) -> bool {
    let b = s.as_bytes();
    (MIN_LEN..=MAX_LEN).contains(&b.len()) && b[4] == b'-' && b[7] == b'-' && b[10] == b'T'
}

/// The local time (UTC + offset) in seconds since the epoch if `ts` is
/// valid (see [`validate`]), computed without overflow.
fn local_secs(ts: &Timestamp) -> Option<i64> {
    if ts.layout.0 > Layout::MAX || ts.nanos >= POW10[9] {
        return None;
    }
    let frac_digits = usize::from(ts.layout.frac_digits());
    if ts.nanos.checked_rem(POW10[9 - frac_digits]) != Some(0) {
        return None;
    }
    let offset = i64::from(ts.offset_minutes);
    if offset.abs() > MAX_OFFSET_MINUTES {
        return None;
    }
    match ts.layout.offset_style() {
        STYLE_Z | STYLE_NEG_ZERO_COLON | STYLE_NEG_ZERO_COMPACT if offset != 0 => return None,
        _ => {}
    }
    let local = ts.secs.checked_add(offset * 60)?;
    (MIN_LOCAL_SECS..=MAX_LOCAL_SECS)
        .contains(&local)
        .then_some(local)
}

/// Writes the text of `ts` into `buf` and returns its length, or `None`
/// (writing nothing meaningful) if `ts` is invalid.
fn render(ts: &Timestamp, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let local = local_secs(ts)?;
    let days = local.div_euclid(SECS_PER_DAY);
    let sod = local.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);

    let mut w = Writer { buf, len: 0 };
    w.num(year, 4);
    w.byte(b'-');
    w.num(month, 2);
    w.byte(b'-');
    w.num(day, 2);
    w.byte(b'T');
    w.num(sod / 3600, 2);
    w.byte(b':');
    w.num(sod / 60 % 60, 2);
    w.byte(b':');
    w.num(sod % 60, 2);

    let frac_digits = usize::from(ts.layout.frac_digits());
    if frac_digits > 0 {
        w.byte(b'.');
        w.num(i64::from(ts.nanos / POW10[9 - frac_digits]), frac_digits);
    }

    let offset = i64::from(ts.offset_minutes);
    let sign = if offset < 0 { b'-' } else { b'+' };
    let (hh, mm) = (offset.abs() / 60, offset.abs() % 60);
    match ts.layout.offset_style() {
        STYLE_Z => w.byte(b'Z'),
        STYLE_COLON => {
            w.byte(sign);
            w.num(hh, 2);
            w.byte(b':');
            w.num(mm, 2);
        }
        STYLE_COMPACT => {
            w.byte(sign);
            w.num(hh, 2);
            w.num(mm, 2);
        }
        STYLE_NEG_ZERO_COLON => w.bytes(b"-00:00"),
        _ => w.bytes(b"-0000"),
    }
    Some(w.len)
}

/// A cursor writing ASCII into a fixed buffer that is always large enough
/// for a valid timestamp; writes past the end are dropped rather than panic.
struct Writer<'a> {
    buf: &'a mut [u8; MAX_LEN],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, c: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }

    fn bytes(&mut self, s: &[u8]) {
        for &c in s {
            self.byte(c);
        }
    }

    /// Writes the non-negative `v` zero-padded to exactly `width` digits.
    fn num(&mut self, v: i64, width: usize) {
        let mut v = v.unsigned_abs();
        let start = self.len;
        for _ in 0..width {
            self.byte(b'0');
        }
        for k in (start..self.len).rev() {
            self.buf[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
}

/// Parses `len` ASCII digits of `b` starting at `start`.
fn digits(b: &[u8], start: usize, len: usize) -> Option<u32> {
    b.get(start..start + len)?.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Parses the offset digits `HH` and `MM` into minutes (hours 00-23, minutes 00-59).
fn offset_value(h1: u8, h2: u8, m1: u8, m2: u8) -> Option<i64> {
    let hours = digits(&[h1, h2], 0, 2)?;
    let minutes = digits(&[m1, m2], 0, 2)?;
    (hours <= 23 && minutes <= 59).then(|| i64::from(hours * 60 + minutes))
}

/// Applies the sign to an offset and picks the style: a negative zero gets
/// its own style so that it is written back as `-00:00` / `-0000`.
fn signed_offset(sign: u8, off: i64, style: u8, neg_zero_style: u8) -> (i64, u8) {
    match (sign, off) {
        (b'-', 0) => (0, neg_zero_style),
        (b'-', _) => (-off, style),
        _ => (off, style),
    }
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
fn is_leap(year: u32) -> bool {
    // Divisible by 4 but not by 100, or divisible by 400.
    matches!((year % 4, year % 100, year % 400), (0, 1.., _) | (_, _, 0))
}

/// Number of days in `month` (1..=12) of `year`.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of the civil date `y-m-d` (Hinnant's
/// `days_from_civil`). Callers pass a year in 0..=9999, month 1..=12 and
/// day 1..=31, far from any overflow.
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of `z` days since 1970-01-01
/// (Hinnant's `civil_from_days`). Callers pass days within years
/// 0000..=9999, far from any overflow.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {

    #[test]
    fn plain_secs_check_is_validate_with_zero_nanos_and_offset() {
        let edges = [MIN_LOCAL_SECS, MAX_LOCAL_SECS];
        let mut secs: Vec<i64> = vec![i64::MIN, i64::MAX, 0, -1, 1];
        for e in edges {
            secs.extend([e - 1, e, e + 1]);
        }
        for s in secs {
            for b in 0..=Layout::MAX {
                let Some(layout) = Layout::from_byte(b) else {
                    continue;
                };
                let ts = Timestamp {
                    secs: s,
                    nanos: 0,
                    offset_minutes: 0,
                    layout,
                };
                assert_eq!(validate(&ts), valid_plain_secs(s), "{s} layout {b}");
            }
        }
    }
    use super::*;
    use proptest::prelude::*;

    fn fmt(ts: &Timestamp) -> String {
        let mut s = String::new();
        assert!(format(ts, &mut s));
        s
    }

    fn roundtrip(s: &str) -> Timestamp {
        let ts = parse(s).unwrap_or_else(|| panic!("{s:?} should parse"));
        assert!(looks_like(s));
        assert!(validate(&ts));
        assert_eq!(fmt(&ts), s);
        ts
    }

    fn layout(frac_digits: u8, style: u8) -> Layout {
        Layout::from_byte(frac_digits + 10 * style).unwrap()
    }

    #[test]
    fn examples_round_trip_with_correct_values() {
        let ts = roundtrip("2024-02-03T01:01:09Z");
        assert_eq!(
            ts,
            Timestamp {
                secs: 1_706_922_069,
                nanos: 0,
                offset_minutes: 0,
                layout: layout(0, 0),
            }
        );

        let ts = roundtrip("2024-02-29T23:59:59.123456789+05:30");
        assert_eq!(
            ts,
            Timestamp {
                secs: 1_709_251_199 - 330 * 60,
                nanos: 123_456_789,
                offset_minutes: 330,
                layout: layout(9, 1),
            }
        );

        let ts = roundtrip("2021-03-04T05:06:07.000+0000");
        assert_eq!(
            ts,
            Timestamp {
                secs: 1_614_834_367,
                nanos: 0,
                offset_minutes: 0,
                layout: layout(3, 2),
            }
        );

        // 2000-01-01T07:59:59Z.
        let ts = roundtrip("1999-12-31T23:59:59-08:00");
        assert_eq!(ts.secs, 946_713_599);
        assert_eq!(ts.offset_minutes, -480);
        assert_eq!(ts.layout, layout(0, 1));

        let ts = roundtrip("0000-01-01T00:00:00Z");
        assert_eq!(ts.secs, -62_167_219_200);
        assert_eq!(ts.secs, MIN_LOCAL_SECS);

        let ts = roundtrip("9999-12-31T23:59:59.9Z");
        assert_eq!(ts.secs, 253_402_300_799);
        assert_eq!(ts.secs, MAX_LOCAL_SECS);
        assert_eq!(ts.nanos, 900_000_000);
        assert_eq!(ts.layout, layout(1, 0));

        let ts = roundtrip("1970-01-01T00:00:00-00:00");
        assert_eq!(
            (ts.secs, ts.offset_minutes, ts.layout),
            (0, 0, layout(0, 3))
        );
        let ts = roundtrip("1970-01-01T00:00:00-0000");
        assert_eq!(
            (ts.secs, ts.offset_minutes, ts.layout),
            (0, 0, layout(0, 4))
        );
        let ts = roundtrip("1970-01-01T00:00:00+00:00");
        assert_eq!(
            (ts.secs, ts.offset_minutes, ts.layout),
            (0, 0, layout(0, 1))
        );
        let ts = roundtrip("1970-01-01T00:00:00.500+0000");
        assert_eq!((ts.nanos, ts.layout), (500_000_000, layout(3, 2)));

        // Extremes of the offset and of the local range.
        let ts = roundtrip("0000-01-01T00:00:00+23:59");
        assert_eq!(ts.secs, MIN_LOCAL_SECS - 1439 * 60);
        let ts = roundtrip("9999-12-31T23:59:59.000000001-2359");
        assert_eq!(ts.secs, MAX_LOCAL_SECS + 1439 * 60);
        assert_eq!(ts.nanos, 1);
        roundtrip("2000-02-29T12:00:00Z");
        roundtrip("1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn rejections() {
        for s in [
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567890Z",
            "2024-01-01T00:00:00+0500x",
            "2024-01-01T00:00:00Zx",
            "2024-01-01T00:00:00+05",
            "2024-01-01T00:00:00+5:00",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+00:60",
            "2024-01-01T00:00:00+05:0",
            "2024-01-01T00:00:00+05-00",
            "2024-01-01T00:00:00 Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00Z",
            "2024-01-02",
            "+2024-01-01T00:00:00Z",
            "-024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "2024-01-01T0a:00:00Z",
            "2024-01-01T00-00:00Z",
            "2024-01-01T00:00:00,5Z",
            "2024-01-01T00:00:00.5.5Z",
            "2024-01-01T00:00:00Z\n",
            "２024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.１Z",
            "2024-01-01T00:00:00+０5:00",
            "2024-01-01T00:00:00é",
            "",
        ] {
            assert_eq!(parse(s), None, "{s:?} must not parse");
        }
    }

    #[test]
    fn looks_like_checks() {
        assert!(looks_like("2024-01-01T00:00:00Z"));
        assert!(looks_like("2024-01-01T00:00:00.123456789+05:30"));
        assert!(!looks_like("2024-01-01T00:00:00.1234567890+05:30"));
        assert!(!looks_like("2024-01-01T00:00:0Z"));
        assert!(!looks_like("2024/01/01T00:00:00Z"));
        assert!(!looks_like("2024-01-01 00:00:00Z"));
        assert!(!looks_like(""));
        assert!(!looks_like("é"));
    }

    #[test]
    fn layout_packing() {
        assert_eq!(Layout::from_byte(50), None);
        assert_eq!(Layout::from_byte(255), None);
        let l = Layout::from_byte(Layout::MAX).unwrap();
        assert_eq!((l.frac_digits(), l.offset_style(), l.to_byte()), (9, 4, 49));
        let l = Layout::from_byte(23).unwrap();
        assert_eq!((l.frac_digits(), l.offset_style()), (3, 2));
    }

    #[test]
    fn validate_rejects_bad_fields_without_overflow() {
        let ok = Timestamp {
            secs: 0,
            nanos: 0,
            offset_minutes: 0,
            layout: layout(0, 0),
        };
        assert!(validate(&ok));
        let bad = [
            Timestamp { nanos: 1, ..ok },
            Timestamp {
                nanos: 1_000_000_000,
                layout: layout(9, 0),
                ..ok
            },
            Timestamp {
                nanos: 10,
                layout: layout(7, 0),
                ..ok
            },
            Timestamp {
                offset_minutes: 60,
                ..ok
            },
            Timestamp {
                offset_minutes: 60,
                layout: layout(0, 3),
                ..ok
            },
            Timestamp {
                offset_minutes: -60,
                layout: layout(0, 4),
                ..ok
            },
            Timestamp {
                offset_minutes: 1440,
                layout: layout(0, 1),
                ..ok
            },
            Timestamp {
                offset_minutes: i16::MIN,
                layout: layout(0, 2),
                ..ok
            },
            Timestamp {
                layout: Layout(50),
                ..ok
            },
            Timestamp {
                layout: Layout(u8::MAX),
                ..ok
            },
            Timestamp {
                secs: MAX_LOCAL_SECS + 1,
                ..ok
            },
            Timestamp {
                secs: MIN_LOCAL_SECS - 1,
                ..ok
            },
            Timestamp {
                secs: i64::MAX,
                offset_minutes: 1439,
                layout: layout(0, 1),
                ..ok
            },
            Timestamp {
                secs: i64::MIN,
                offset_minutes: -1439,
                layout: layout(0, 2),
                ..ok
            },
            Timestamp {
                secs: i64::MIN,
                ..ok
            },
        ];
        for ts in bad {
            assert!(!validate(&ts), "{ts:?}");
            let mut out = String::from("keep");
            assert!(!format(&ts, &mut out));
            assert_eq!(out, "keep");
        }
        // Out of range in UTC but in range locally is fine, and vice versa.
        let ts = Timestamp {
            secs: MAX_LOCAL_SECS + 60,
            offset_minutes: -1,
            layout: layout(0, 1),
            ..ok
        };
        assert_eq!(fmt(&ts), "9999-12-31T23:59:59-00:01");
        let ts = Timestamp {
            secs: MAX_LOCAL_SECS - 59,
            offset_minutes: 1,
            layout: layout(0, 1),
            ..ok
        };
        assert!(!validate(&ts));
    }

    #[test]
    fn format_appends() {
        let mut out = String::from("x=");
        let ts = parse("2024-02-03T01:01:09Z").unwrap();
        assert!(format(&ts, &mut out));
        assert_eq!(out, "x=2024-02-03T01:01:09Z");
    }

    #[test]
    fn civil_conversions_agree_over_whole_range() {
        let mut days = days_from_civil(0, 1, 1);
        assert_eq!(days, -719_528);
        for y in 0..=9999u32 {
            for m in 1..=12u32 {
                for d in 1..=days_in_month(y, m) {
                    let (y, m, d) = (i64::from(y), i64::from(m), i64::from(d));
                    assert_eq!(days_from_civil(y, m, d), days);
                    assert_eq!(civil_from_days(days), (y, m, d));
                    days += 1;
                }
            }
        }
        assert_eq!(days - 1, days_from_civil(9999, 12, 31));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    /// Independent reference: seconds since the epoch by naive day counting.
    fn naive_epoch_secs(f: &Fields) -> i64 {
        fn days_since_year0(y: u32, m: u32, d: u32) -> i64 {
            let mut days = 0i64;
            for yy in 0..y {
                days += if is_leap(yy) { 366 } else { 365 };
            }
            for mm in 1..m {
                days += i64::from(days_in_month(y, mm));
            }
            days + i64::from(d) - 1
        }
        let days = days_since_year0(f.year, f.month, f.day) - days_since_year0(1970, 1, 1);
        days * 86_400 + i64::from(f.hour * 3600 + f.minute * 60 + f.second)
            - i64::from(f.offset) * 60
    }

    /// Field values of a valid timestamp text.
    #[derive(Clone, Debug)]
    struct Fields {
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        frac_digits: u8,
        frac: u32,
        style: u8,
        offset: i16,
    }

    impl Fields {
        /// Independent formatter for the test.
        fn text(&self) -> String {
            let mut s = std::format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                self.year,
                self.month,
                self.day,
                self.hour,
                self.minute,
                self.second
            );
            if self.frac_digits > 0 {
                s += &std::format!(".{:0w$}", self.frac, w = usize::from(self.frac_digits));
            }
            let sign = if self.offset < 0 { '-' } else { '+' };
            let (h, m) = (
                self.offset.unsigned_abs() / 60,
                self.offset.unsigned_abs() % 60,
            );
            s += &match self.style {
                0 => "Z".to_string(),
                1 => std::format!("{sign}{h:02}:{m:02}"),
                2 => std::format!("{sign}{h:02}{m:02}"),
                3 => "-00:00".to_string(),
                _ => "-0000".to_string(),
            };
            s
        }

        fn nanos(&self) -> u32 {
            self.frac * POW10[9 - usize::from(self.frac_digits)]
        }

        /// The instant in nanoseconds since the epoch, by naive arithmetic.
        fn instant(&self) -> i128 {
            i128::from(naive_epoch_secs(self)) * 1_000_000_000 + i128::from(self.nanos())
        }
    }

    fn fields() -> impl Strategy<Value = Fields> {
        (
            (
                0u32..=9999,
                1u32..=12,
                1u32..=31,
                0u32..24,
                0u32..60,
                0u32..60,
            ),
            (0u8..=9, any::<u32>(), 0u8..=4, -1439i16..=1439),
        )
            .prop_map(
                |((year, month, day, hour, minute, second), (frac_digits, raw, style, off))| {
                    Fields {
                        year,
                        month,
                        day: 1 + (day - 1) % days_in_month(year, month),
                        hour,
                        minute,
                        second,
                        frac_digits,
                        frac: raw % POW10[usize::from(frac_digits)],
                        style,
                        offset: if matches!(style, 1 | 2) { off } else { 0 },
                    }
                },
            )
    }

    /// Strings close to the accepted shape, to reach deep into the parser.
    fn near_timestamp() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?(Z|z|[+-][0-9]{2}:?[0-9]{2}|[+-][0-9]{1,3}|.)?.?",
            "[0-2][0-9]{3}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\\.[0-9]{1,9})?(Z|[+-][0-2][0-9]:?[0-6][0-9])",
            fields().prop_map(|f| f.text()),
        ]
    }

    fn any_timestamp() -> impl Strategy<Value = Timestamp> {
        (
            prop_oneof![
                any::<i64>(),
                (MIN_LOCAL_SECS - 100_000)..(MAX_LOCAL_SECS + 100_000),
                Just(i64::MAX),
                Just(i64::MIN),
            ],
            prop_oneof![any::<u32>(), (0u32..1000).prop_map(|n| n * 1_000_000)],
            prop_oneof![any::<i16>(), -1500i16..1500, Just(0i16)],
            prop_oneof![any::<u8>(), 0u8..=Layout::MAX],
        )
            .prop_map(|(secs, nanos, offset_minutes, layout)| Timestamp {
                secs,
                nanos,
                offset_minutes,
                layout: Layout(layout),
            })
    }

    proptest! {
        #[test]
        fn valid_fields_round_trip(f in fields()) {
            let text = f.text();
            let ts = parse(&text);
            prop_assert!(ts.is_some(), "{} should parse", text);
            let ts = ts.unwrap();
            prop_assert_eq!(fmt(&ts), text);
            prop_assert_eq!(ts.secs, naive_epoch_secs(&f));
            prop_assert_eq!(ts.nanos, f.nanos());
            prop_assert_eq!(ts.offset_minutes, f.offset);
            prop_assert_eq!(ts.layout.frac_digits(), f.frac_digits);
            prop_assert_eq!(ts.layout.offset_style(), f.style);
        }

        #[test]
        fn secs_nanos_order_is_chronological(a in fields(), b in fields(), same_day in any::<bool>()) {
            let b = if same_day {
                Fields { year: a.year, month: a.month, day: a.day, ..b }
            } else {
                b
            };
            let ta = parse(&a.text()).unwrap();
            let tb = parse(&b.text()).unwrap();
            prop_assert_eq!(
                (ta.secs, ta.nanos).cmp(&(tb.secs, tb.nanos)),
                a.instant().cmp(&b.instant())
            );
            if a.instant() == b.instant() {
                prop_assert_eq!((ta.secs, ta.nanos), (tb.secs, tb.nanos));
            }
        }

        #[test]
        fn parse_never_panics_and_round_trips(s in near_timestamp()) {
            if let Some(ts) = parse(&s) {
                prop_assert!(looks_like(&s));
                prop_assert!(validate(&ts));
                prop_assert_eq!(fmt(&ts), s);
            }
        }

        #[test]
        fn format_and_validate_never_panic(ts in any_timestamp()) {
            let mut out = String::from("prefix");
            let valid = validate(&ts);
            prop_assert_eq!(format(&ts, &mut out), valid);
            if valid {
                let text = &out["prefix".len()..];
                prop_assert!(looks_like(text));
                prop_assert_eq!(parse(text), Some(ts));
            } else {
                prop_assert_eq!(out, "prefix");
            }
        }
    }

    #[test]
    fn ordering_of_mixed_offsets() {
        let texts = [
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T01:00:00+01:00",
            "1970-01-01T00:00:00.000000001Z",
            "1969-12-31T19:00:00.5-05:00",
        ];
        let mut v: Vec<Timestamp> = texts.iter().map(|s| parse(s).unwrap()).collect();
        v.sort_by_key(|t| (t.secs, t.nanos));
        let sorted: Vec<String> = v.iter().map(fmt).collect();
        assert_eq!(
            sorted,
            [
                "1969-12-31T23:59:59.999999999Z",
                "1970-01-01T01:00:00+01:00",
                "1970-01-01T00:00:00.000000001Z",
                "1969-12-31T19:00:00.5-05:00",
            ]
        );
    }
}
