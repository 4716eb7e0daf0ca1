//! The command-line syntax of queries: `--where`, `--sort`, `--fields`.
//!
//! ```text
//! WHERE  := PATH OP VALUE | PATH " in " VALUE ("," VALUE)*
//! OP     := "=" | "!=" | "<" | "<=" | ">" | ">=" | "^="
//! VALUE  := "null" | "absent" | JSON-STRING | BARE-TEXT
//! SORT   := ["-" | "+"] PATH ("," ["-" | "+"] PATH)*
//! FIELDS := PATH ("," PATH)*
//! ```
//! `null` and `absent` are the null/absent tests (with `=` and `!=` only);
//! a JSON string (`"null"`, `"a,b"`) is always a string; bare text is typed
//! by the column.

use super::{Filter, Literal, Op, SortKey};
use crate::error::{Error, Result};

/// The operators, as listed in messages.
pub const OPERATORS: &str = "=, !=, <, <=, >, >=, ^= (prefix), in (list: `state in open,closed`); values null and absent test for null/absent";

/// Parse a `--sort` list: `-updated_at,number`.
pub fn parse_sort(s: &str) -> Result<Vec<SortKey>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (desc, path) = if let Some(p) = part.strip_prefix('-') {
            (true, p)
        } else if let Some(p) = part.strip_prefix('+') {
            (false, p)
        } else {
            (false, part)
        };
        if path.is_empty() {
            return Err(Error::Invalid(format!(
                "empty sort key in `{s}` (expected FIELD or -FIELD, comma-separated)"
            )));
        }
        out.push(SortKey {
            path: path.to_string(),
            desc,
        });
    }
    Ok(out)
}

/// Parse a `--fields` list: `number,title,user.login`.
pub fn parse_fields(s: &str) -> Result<Vec<String>> {
    let v: Vec<String> = s
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if v.is_empty() {
        return Err(Error::Invalid("--fields needs at least one field".into()));
    }
    Ok(v)
}

/// Find the operator: returns (start, end, op) of the first one.
fn find_op(s: &str) -> Option<(usize, usize, Op)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b' ' | b'\t' => {
                let rest = &s[i..];
                let t = rest.trim_start();
                if let Some(after) = t.strip_prefix("in")
                    && after.starts_with([' ', '\t'])
                {
                    let end = s.len() - after.len();
                    return Some((i, end, Op::In));
                }
            }
            b'^' if b.get(i + 1) == Some(&b'=') => return Some((i, i + 2, Op::Prefix)),
            b'!' if b.get(i + 1) == Some(&b'=') => return Some((i, i + 2, Op::Ne)),
            b'<' if b.get(i + 1) == Some(&b'=') => return Some((i, i + 2, Op::Le)),
            b'>' if b.get(i + 1) == Some(&b'=') => return Some((i, i + 2, Op::Ge)),
            b'<' => return Some((i, i + 1, Op::Lt)),
            b'>' => return Some((i, i + 1, Op::Gt)),
            b'=' => return Some((i, i + 1, Op::Eq)),
            _ => {}
        }
        i += 1;
    }
    None
}

/// One value: a JSON string, or bare text up to `stop` (a comma in lists).
/// Returns the literal (None for `null`/`absent` keywords: see `keyword`) and the rest.
fn value(s: &str, list: bool) -> Result<(Literal, &str)> {
    let s = s.trim_start();
    if s.starts_with('"') {
        let mut it = serde_json::Deserializer::from_str(s).into_iter::<String>();
        match it.next() {
            Some(Ok(v)) => {
                let used = it.byte_offset();
                return Ok((Literal::Str(v), &s[used..]));
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "bad quoted value `{s}` (use a JSON string: \"...\")"
                )));
            }
        }
    }
    let end = if list {
        s.find(',').unwrap_or(s.len())
    } else {
        s.len()
    };
    Ok((Literal::Text(s[..end].trim_end().to_string()), &s[end..]))
}

/// Parse a `--where` condition: `state=open`, `labels[].name=bug`,
/// `title^=Crash`, `comments>=5`, `milestone=null`, `state in open,closed`.
pub fn parse_where(s: &str) -> Result<Filter> {
    let (a, b, op) = find_op(s).ok_or_else(|| {
        Error::Invalid(format!(
            "cannot parse `--where {s}`: expected FIELD OP VALUE, OP one of {OPERATORS}"
        ))
    })?;
    let path = s[..a].trim().to_string();
    if path.is_empty() {
        return Err(Error::Invalid(format!(
            "`--where {s}`: missing field name before `{}`",
            op.symbol()
        )));
    }
    let rest = &s[b..];
    let mut values = Vec::new();
    if op == Op::In {
        let mut r = rest;
        loop {
            let (v, after) = value(r, true)?;
            if matches!(&v, Literal::Text(t) if t.is_empty()) {
                return Err(Error::Invalid(format!(
                    "`--where {s}`: empty value in the `in` list"
                )));
            }
            values.push(v);
            let after = after.trim_start();
            if after.is_empty() {
                break;
            }
            r = after.strip_prefix(',').ok_or_else(|| {
                Error::Invalid(format!("`--where {s}`: expected `,` before `{after}`"))
            })?;
        }
    } else {
        let (v, after) = value(rest, false)?;
        if !after.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "`--where {s}`: unexpected `{}` after the quoted value",
                after.trim()
            )));
        }
        let kw = match &v {
            Literal::Text(t) if t == "null" || t == "absent" => Some(t.as_str()),
            _ => None,
        };
        if let Some(kw) = kw {
            let op = match (op, kw) {
                (Op::Eq, "null") => Op::IsNull,
                (Op::Ne, "null") => Op::NotNull,
                (Op::Eq, _) => Op::IsAbsent,
                (Op::Ne, _) => Op::NotAbsent,
                _ => {
                    return Err(Error::Invalid(format!(
                        "`--where {s}`: `{kw}` only works with = and != (quote it, \"{kw}\", for the string)"
                    )));
                }
            };
            return Ok(Filter {
                path,
                op,
                values: Vec::new(),
            });
        }
        values.push(v);
    }
    Ok(Filter { path, op, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Literal {
        Literal::Text(s.into())
    }

    #[test]
    fn wheres() {
        let f = parse_where("labels[].name=bug").unwrap();
        assert_eq!(
            (f.path.as_str(), f.op, f.values),
            ("labels[].name", Op::Eq, vec![t("bug")])
        );
        assert_eq!(parse_where("title^=Crash").unwrap().op, Op::Prefix);
        let f = parse_where("comments>=5").unwrap();
        assert_eq!((f.op, f.values), (Op::Ge, vec![t("5")]));
        assert_eq!(parse_where("a<5").unwrap().op, Op::Lt);
        assert_eq!(parse_where("a!=x").unwrap().op, Op::Ne);
        assert_eq!(parse_where("milestone=null").unwrap().op, Op::IsNull);
        assert_eq!(parse_where("milestone!=absent").unwrap().op, Op::NotAbsent);
        let f = parse_where("milestone=\"null\"").unwrap();
        assert_eq!(f.values, vec![Literal::Str("null".into())]);
        let f = parse_where("state in open, \"a,b\" ,closed").unwrap();
        assert_eq!(
            (f.op, f.values),
            (
                Op::In,
                vec![t("open"), Literal::Str("a,b".into()), t("closed")]
            )
        );
        assert!(parse_where("state").is_err());
        assert!(parse_where("=x").is_err());
        assert!(parse_where("a<null").is_err());
        assert!(parse_where("a in x,,y").is_err());
        assert!(parse_where("a=\"x\" y").is_err());
    }

    #[test]
    fn sorts_and_fields() {
        let k = parse_sort("-updated_at, number,+x").unwrap();
        assert_eq!(
            k.iter().map(|k| k.desc).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(k[1].path, "number");
        assert!(parse_sort("a,,b").is_err());
        assert_eq!(parse_fields("a, b").unwrap(), ["a", "b"]);
        assert!(parse_fields(" , ").is_err());
    }
}
