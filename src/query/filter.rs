//! Filters: literals typed by the column, string predicates resolved to key
//! ranges once, then integer-only column scans.

use super::bits::Bits;
use super::loaded::{Cell, Class, Column, Num, Values};
use super::source::RowSource;
use super::{Filter, Literal, Op};
use crate::error::{Error, Result};
use crate::model::ColumnType;
use crate::timestamp;
use std::cmp::Ordering;
use std::ops::Range;

/// A comparison against one literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    #[inline]
    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
        }
    }
}

/// A positive item predicate: an item matches when any alternative holds.
#[derive(Debug, Default)]
struct Pred {
    strs: Vec<Range<u32>>,
    nums: Vec<(Cmp, Num)>,
    bools: Vec<(Cmp, bool)>,
    times: Vec<(Cmp, (i64, u32))>,
}

impl Pred {
    #[inline]
    fn matches(&self, c: Cell) -> bool {
        match c {
            Cell::Str(k) => self.strs.iter().any(|r| r.contains(&k)),
            Cell::Bool(b) => self.bools.iter().any(|&(op, v)| op.holds(b.cmp(&v))),
            Cell::Time(s, n) => self.times.iter().any(|&(op, v)| op.holds((s, n).cmp(&v))),
            Cell::Int(_) | Cell::UInt(_) | Cell::Float(_) => match c.num() {
                Some(x) => self.nums.iter().any(|&(op, v)| op.holds(x.cmp_num(&v))),
                None => false,
            },
            _ => false,
        }
    }
}

/// Which literal families a column's values can hold.
#[derive(Clone, Copy, Debug)]
struct Families {
    str: bool,
    num: bool,
    bool: bool,
    time: bool,
}

fn families(col: &Column) -> Families {
    let none = Families {
        str: false,
        num: false,
        bool: false,
        time: false,
    };
    match &col.values {
        Values::Str(_) => Families { str: true, ..none },
        Values::Int { .. } => Families { num: true, ..none },
        Values::Time { .. } => Families { time: true, ..none },
        Values::Bool(_) => Families { bool: true, ..none },
        Values::Object(_) | Values::List(_) => none,
        Values::Any(_) => match col.ty {
            ColumnType::U64 | ColumnType::F64 | ColumnType::Number | ColumnType::I64 => {
                Families { num: true, ..none }
            }
            ColumnType::Mixed => Families {
                str: true,
                num: true,
                bool: true,
                time: true,
            },
            _ => none,
        },
    }
}

/// Parse a number literal: `i64`, then `u64`, then a finite `f64`.
pub fn parse_num(s: &str) -> Option<Num> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(Num::Int(v));
    }
    if let Ok(v) = s.parse::<u64>() {
        return Some(Num::UInt(v));
    }
    parse_float(s).map(Num::Float)
}

/// A finite decimal number in Rust's float syntax (`1.5`, `-.5`, `+2.`,
/// `1e-3`, `007.25`; not `inf` or `NaN`), read exactly by serde_json's
/// parser after rewriting it in JSON's syntax: the browser build then
/// carries one exact float parser, not two.
fn parse_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut json = String::with_capacity(s.len() + 2);
    let mut i = 0;
    if let Some(&c @ (b'+' | b'-')) = b.first() {
        if c == b'-' {
            json.push('-');
        }
        i = 1;
    }
    let int_end = digits(i);
    let int = &s[i..int_end];
    i = int_end;
    let mut frac = "";
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        frac = &s[i + 1..end];
        i = end;
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp = "";
    if let Some(b'e' | b'E') = b.get(i) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let end = digits(i + 1 + sign);
        if end == i + 1 + sign {
            return None;
        }
        exp = &s[i..end];
        i = end;
    }
    if i != b.len() {
        return None;
    }
    let int = int.trim_start_matches('0');
    json.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        json.push('.');
        json.push_str(frac);
    }
    json.push_str(exp);
    serde_json::from_str::<f64>(&json)
        .ok()
        .filter(|v| v.is_finite())
}

/// Parse a timestamp literal: RFC 3339 (as stored) or a date `YYYY-MM-DD`
/// (midnight UTC). Returns the UTC instant.
pub fn parse_time(s: &str) -> Option<(i64, u32)> {
    let ts = if s.len() == 10 {
        timestamp::parse(&format!("{s}T00:00:00Z"))
    } else {
        timestamp::parse(s)
    }?;
    Some((ts.secs, ts.nanos))
}

/// The typed forms a literal takes in a column's families.
#[derive(Debug, Default)]
struct Typed {
    str: Option<String>,
    num: Option<Num>,
    bool: Option<bool>,
    time: Option<(i64, u32)>,
}

fn type_literal(col: &Column, lit: &Literal) -> Result<Typed> {
    let f = families(col);
    let mut t = Typed::default();
    match lit {
        Literal::Text(s) => {
            if f.str {
                t.str = Some(s.clone());
            }
            if f.num {
                t.num = parse_num(s);
            }
            if f.bool {
                t.bool = match s.as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                };
            }
            if f.time {
                t.time = parse_time(s);
            }
        }
        Literal::Str(s) => {
            if f.str {
                t.str = Some(s.clone());
            }
            if f.time {
                t.time = parse_time(s);
            }
        }
        Literal::Int(v) if f.num => t.num = Some(Num::Int(*v)),
        Literal::UInt(v) if f.num => t.num = Some(Num::UInt(*v)),
        Literal::Float(v) if f.num && v.is_finite() => t.num = Some(Num::Float(*v)),
        Literal::Bool(v) if f.bool => t.bool = Some(*v),
        Literal::Time(ts) if f.time => t.time = Some((ts.secs, ts.nanos)),
        _ => {}
    }
    if t.str.is_none() && t.num.is_none() && t.bool.is_none() && t.time.is_none() {
        let want = if f.time {
            "a timestamp (RFC 3339, or a date YYYY-MM-DD)"
        } else if f.num {
            "a number"
        } else if f.bool {
            "true or false"
        } else if f.str {
            "a string"
        } else {
            // No value compares with it (a list, an object, all nulls).
            return Err(Error::Invalid(format!(
                "field `{}` is {}: it takes only the null/absent tests (=null, !=null, =absent, !=absent), not {}{}",
                col.path,
                col.ty,
                lit.display(),
                if col.ty == crate::model::ColumnType::List {
                    format!(" (its elements are `{}[]`)", col.path)
                } else {
                    String::new()
                }
            )));
        };
        return Err(Error::Invalid(format!(
            "field `{}` is {}: {} is not {want}",
            col.path,
            col.ty,
            lit.display()
        )));
    }
    Ok(t)
}

/// Where strings fall among a column's string keys: the source's key
/// space of the column, or a few strings of their own ([`TextKeys`]).
trait Keys {
    /// `Ok(key)` when `s` has a key, else `Err(k)`, `k` the first key of a
    /// greater string.
    fn find(&self, s: &str) -> Result<std::result::Result<u32, u32>>;
    /// The keys of the strings starting with `prefix`.
    fn prefix(&self, prefix: &str) -> Result<Range<u32>>;
}

/// The key space of `col` in its source.
struct SourceKeys<'a> {
    src: &'a dyn RowSource,
    col: &'a Column,
}

impl Keys for SourceKeys<'_> {
    fn find(&self, s: &str) -> Result<std::result::Result<u32, u32>> {
        self.src.find_str(self.col, s)
    }
    fn prefix(&self, prefix: &str) -> Result<Range<u32>> {
        self.src.prefix_keys(self.col, prefix)
    }
}

/// A key space of its own: key `i` is the `i`th of a few distinct strings
/// in byte order.
pub(crate) struct TextKeys<'a>(pub &'a [&'a str]);

impl Keys for TextKeys<'_> {
    fn find(&self, s: &str) -> Result<std::result::Result<u32, u32>> {
        Ok(match self.0.binary_search(&s) {
            Ok(i) => Ok(i as u32),
            Err(i) => Err(i as u32),
        })
    }
    fn prefix(&self, prefix: &str) -> Result<Range<u32>> {
        // Strings starting with `prefix` follow it, together.
        let lo = self.0.partition_point(|t| *t < prefix);
        let len = self.0[lo..].partition_point(|t| t.starts_with(prefix));
        Ok(lo as u32..(lo + len) as u32)
    }
}

fn str_range(keys: &dyn Keys, cmp: Cmp, s: &str) -> Result<Range<u32>> {
    let f = keys.find(s)?;
    let (at, found) = match f {
        Ok(i) => (i, true),
        Err(i) => (i, false),
    };
    Ok(match cmp {
        Cmp::Eq => {
            if found {
                at..at + 1
            } else {
                0..0
            }
        }
        Cmp::Lt => 0..at,
        Cmp::Le => 0..at + found as u32,
        Cmp::Gt => at + found as u32..u32::MAX - 1,
        Cmp::Ge => at..u32::MAX - 1,
    })
}

fn compile(keys: &dyn Keys, col: &Column, f: &Filter) -> Result<Pred> {
    let mut p = Pred::default();
    let one = || -> Result<&Literal> {
        match f.values.as_slice() {
            [v] => Ok(v),
            _ => Err(Error::Invalid(format!(
                "operator `{}` on `{}` takes exactly one value, got {}",
                f.op.symbol(),
                f.path,
                f.values.len()
            ))),
        }
    };
    let cmp = match f.op {
        Op::Eq | Op::Ne | Op::In => Cmp::Eq,
        Op::Lt => Cmp::Lt,
        Op::Le => Cmp::Le,
        Op::Gt => Cmp::Gt,
        Op::Ge => Cmp::Ge,
        Op::Prefix => {
            let s = match one()? {
                Literal::Text(s) | Literal::Str(s) => s,
                other => {
                    return Err(Error::Invalid(format!(
                        "prefix `^=` needs a string, got {}",
                        other.display()
                    )));
                }
            };
            if !families(col).str {
                return Err(Error::Invalid(format!(
                    "prefix `^=` applies to string fields; `{}` is {}",
                    col.path, col.ty
                )));
            }
            p.strs.push(keys.prefix(s)?);
            return Ok(p);
        }
        Op::IsNull | Op::NotNull | Op::IsAbsent | Op::NotAbsent => return Ok(p),
    };
    let lits: Vec<&Literal> = match f.op {
        Op::In => {
            if f.values.is_empty() {
                return Err(Error::Invalid(format!(
                    "`in` on `{}` needs at least one value",
                    f.path
                )));
            }
            f.values.iter().collect()
        }
        _ => vec![one()?],
    };
    for lit in lits {
        let t = type_literal(col, lit)?;
        if let Some(s) = &t.str {
            let r = str_range(keys, cmp, s)?;
            if !r.is_empty() {
                p.strs.push(r);
            }
        }
        if let Some(n) = t.num {
            p.nums.push((cmp, n));
        }
        if let Some(b) = t.bool {
            p.bools.push((cmp, b));
        }
        if let Some(ts) = t.time {
            p.times.push((cmp, ts));
        }
    }
    Ok(p)
}

/// Items matching a positive predicate.
fn item_matches(col: &Column, p: &Pred) -> Bits {
    let n = col.values.len();
    let mut out = Bits::new(n);
    match &col.values {
        Values::Str(keys) => {
            if p.strs.len() == 1 {
                let r = &p.strs[0];
                let (lo, w) = (r.start, r.end.saturating_sub(r.start));
                for (i, &k) in keys.iter().enumerate() {
                    if k.wrapping_sub(lo) < w {
                        out.set(i);
                    }
                }
            } else if !p.strs.is_empty() {
                for (i, &k) in keys.iter().enumerate() {
                    if p.strs.iter().any(|r| r.contains(&k)) {
                        out.set(i);
                    }
                }
            }
        }
        Values::Int { v, missing } if p.nums.iter().all(|(_, n)| matches!(n, Num::Int(_))) => {
            let lits: Vec<(Cmp, i64)> = p
                .nums
                .iter()
                .map(|&(c, n)| (c, if let Num::Int(x) = n { x } else { 0 }))
                .collect();
            for (i, &x) in v.iter().enumerate() {
                if lits.iter().any(|&(c, y)| c.holds(x.cmp(&y))) && missing.class(i) == Class::Value
                {
                    out.set(i);
                }
            }
        }
        _ => {
            for i in 0..n {
                if p.matches(col.values.cell(i)) {
                    out.set(i);
                }
            }
        }
    }
    out
}

/// Items with a value (`absent_only`: items that are not absent).
fn item_present(col: &Column, absent_only: bool) -> Bits {
    let n = col.values.len();
    let mut out = Bits::new(n);
    for i in 0..n {
        let c = col.values.cell(i).class();
        if c == Class::Value || (absent_only && c == Class::Null) {
            out.set(i);
        }
    }
    out
}

/// Rows having at least one matching item.
fn rows_any(col: &Column, items: Bits, rows: usize) -> Bits {
    match &col.offsets {
        None => items,
        Some(o) => {
            let mut out = Bits::new(rows);
            for r in 0..rows {
                if (o[r]..o[r + 1]).any(|i| items.get(i as usize)) {
                    out.set(r);
                }
            }
            out
        }
    }
}

/// Rows of `col` matching filter `f`.
pub(crate) fn eval(src: &dyn RowSource, col: &Column, f: &Filter) -> Result<Bits> {
    eval_keys(&SourceKeys { src, col }, col, f, src.rows())
}

/// Rows of `col` (a column of its own, of `rows` rows, whose string keys
/// are those of `keys`: [`TextKeys`]) matching filter `f`, exactly as
/// [`eval`] of the same values in a source's key space.
pub(crate) fn eval_texts(
    keys: &TextKeys<'_>,
    col: &Column,
    f: &Filter,
    rows: usize,
) -> Result<Bits> {
    eval_keys(keys, col, f, rows)
}

fn eval_keys(keys: &dyn Keys, col: &Column, f: &Filter, rows: usize) -> Result<Bits> {
    let (items, negate) = match f.op {
        Op::IsNull => (item_present(col, false), true),
        Op::NotNull => (item_present(col, false), false),
        Op::IsAbsent => (item_present(col, true), true),
        Op::NotAbsent => (item_present(col, true), false),
        _ => {
            let p = compile(keys, col, f)?;
            (item_matches(col, &p), f.op == Op::Ne)
        }
    };
    let mut r = rows_any(col, items, rows);
    if negate {
        r.negate();
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `parse_num` read before: Rust's own float parser, finite,
    /// not `inf` or NaN.
    fn std_float(s: &str) -> Option<f64> {
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && !s.eq_ignore_ascii_case("inf") && !s.contains(['n', 'N']) => {
                Some(v)
            }
            _ => None,
        }
    }

    #[test]
    fn floats_read_as_rust_reads_them() {
        for s in [
            "1.5",
            "-.5",
            "+.5",
            "+2.",
            "2.",
            ".",
            "+",
            "-",
            "",
            "1e5",
            "1E+5",
            "1.e-3",
            "e5",
            "1e",
            "1e+",
            "007.250",
            "-0.0",
            "1e400",
            "1e-400",
            "0e99999999999999999999",
            "123456789012345678901234567890.5",
            "2.2250738585072011e-308",
            "inf",
            "NaN",
            "1_0",
            " 1",
            "1 ",
            "0x10",
            "1.5.5",
            "--1",
            "+-1",
        ] {
            assert_eq!(
                parse_float(s).map(f64::to_bits),
                std_float(s).map(f64::to_bits),
                "{s:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn float_syntax_agrees_with_std(s in "[-+]?[0-9]{0,20}(\\.[0-9]{0,20})?([eE][-+]?[0-9]{0,4})?") {
            prop_assert_eq!(parse_float(&s).map(f64::to_bits), std_float(&s).map(f64::to_bits), "{:?}", s);
        }

        #[test]
        fn any_text_agrees_with_std(s in "[-+.eE0-9a-z ]{0,12}") {
            prop_assert_eq!(parse_float(&s).map(f64::to_bits), std_float(&s).map(f64::to_bits), "{:?}", s);
        }
    }
}
