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
        // A field sorted by again never decides: rows tied on every key
        // before it are tied on it too. Dropped, so that a long list of the
        // same few fields costs what the few cost.
        if out.iter().any(|k: &SortKey| k.path == path) {
            continue;
        }
        out.push(SortKey {
            path: path.to_string(),
            desc,
        });
    }
    Ok(out)
}

/// Levenshtein distance between `a` and `b`, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidates closest to `name` (at most three, best first): by edit
/// distance (up to a third of the name's length, at least 2), then those
/// that end with `.name` / `[].name` or contain `name`.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let max = (name.chars().count() / 3).max(2);
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let cl = c.to_lowercase();
            let d = edit_distance(&lower, &cl);
            if d <= max {
                Some((d, c))
            } else if cl.ends_with(&format!(".{lower}")) || cl.ends_with(&format!("]{lower}")) {
                Some((max + 1, c))
            } else if lower.len() >= 3 && cl.contains(&lower) {
                Some((max + 2, c))
            } else {
                None
            }
        })
        .collect();
    scored.sort_by_key(|&(d, c)| (d, c.len()));
    scored.dedup_by_key(|x| x.1);
    scored.into_iter().take(3).map(|x| x.1).collect()
}

/// `unknown field `x``, then `; did you mean `y`?` when some field is
/// close, then the whole list when there are at most 12 fields, or their
/// number otherwise (a snapshot can have hundreds).
pub fn unknown_field_message<'a>(
    what: &str,
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    // Names come from the command line and from the file: control
    // characters are written escaped (`\0`, `\n`), never raw to a terminal.
    let shown = |s: &str| -> String {
        if s.chars().any(char::is_control) {
            s.escape_debug().to_string()
        } else {
            s.to_string()
        }
    };
    let mut m = format!("unknown {what} `{}`", shown(name));
    let close = did_you_mean(name, candidates.clone());
    if !close.is_empty() {
        let list: Vec<String> = close.iter().map(|c| format!("`{}`", shown(c))).collect();
        m.push_str(&format!("; did you mean {}?", list.join(" or ")));
    }
    let all: Vec<String> = candidates.into_iter().map(shown).collect();
    if all.len() <= 12 {
        m.push_str(&format!("; available {what}s: {}", all.join(", ")));
    } else {
        m.push_str(&format!(
            " ({} {what}s; `colsnap inspect FILE --schema` lists them)",
            all.len()
        ));
    }
    m
}

/// Parse a `--fields` list: `number,title,user.login` (each name trimmed).
/// An empty name (`a,,b`, a trailing comma, or nothing at all) is an error
/// naming its place: it names no field, and ignoring it would hide a typo.
pub fn parse_fields(s: &str) -> Result<Vec<String>> {
    let v: Vec<String> = s.split(',').map(|p| p.trim().to_string()).collect();
    if v.iter().all(|p| p.is_empty()) {
        return Err(Error::Invalid(format!(
            "`{s}` names no field (a comma-separated list: `number,title,user.login`)"
        )));
    }
    if let Some(i) = v.iter().position(|p| p.is_empty()) {
        return Err(Error::Invalid(format!(
            "`{s}`: name {} of {} is empty (a comma-separated list: `number,title,user.login`)",
            i + 1,
            v.len()
        )));
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
        let hint = if s.contains('~') {
            " (`~` is not an operator: use --search TEXT --in FIELD for a substring, ^= for a prefix)"
        } else {
            ""
        };
        Error::Invalid(format!(
            "cannot parse `--where {s}`: expected FIELD OP VALUE, OP one of {OPERATORS}{hint}"
        ))
    })?;
    let path = s[..a].trim().to_string();
    // Operators that other languages have and a typo makes: `==`, `!==`,
    // `<>`, `=~`. Unquoted, they would silently search for a value starting
    // with `=`, `>` or `~`; quote the value to mean that.
    let after = s[b..].trim_start();
    let typo = match (op, after.chars().next()) {
        (Op::Eq | Op::Ne | Op::Le | Op::Ge | Op::Prefix, Some('=')) => {
            Some(format!("`{}=`", op.symbol()))
        }
        (Op::Lt, Some('>')) => Some("`<>`".to_string()),
        (Op::Eq, Some('~')) => Some("`=~`".to_string()),
        _ => None,
    };
    if let Some(typo) = typo {
        let fix = match op {
            Op::Lt => format!("`{path}!={}`", &after[1..]),
            Op::Eq if after.starts_with('~') => {
                format!("--search {} --in {path}", &after[1..])
            }
            _ => format!("`{path}{}{}`", op.symbol(), &after[1..]),
        };
        return Err(Error::Invalid(format!(
            "`--where {s}`: {typo} is not an operator; did you mean {fix}? (quote the value, \"{after}\", to match text starting with `{}`)",
            &after[..1]
        )));
    }
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
    fn operator_typos_are_refused_with_a_hint() {
        for (w, hint) in [
            ("state==open", "did you mean `state=open`?"),
            ("state!==open", "did you mean `state!=open`?"),
            ("a>==1", "did you mean `a>=1`?"),
            ("state<>open", "did you mean `state!=open`?"),
            ("title=~crash", "--search crash --in title"),
            ("title~crash", "`~` is not an operator"),
        ] {
            let e = parse_where(w).unwrap_err().to_string();
            assert!(e.contains(hint), "{w}: {e}");
        }
        // Quoted, the value may start with `=`.
        let f = parse_where("state=\"=open\"").unwrap();
        assert_eq!(f.values, vec![Literal::Str("=open".into())]);
    }

    #[test]
    fn suggestions() {
        let fields = ["title", "number", "user.login", "labels[].name", "state"];
        assert_eq!(did_you_mean("titel", fields), ["title"]);
        assert_eq!(did_you_mean("login", fields), ["user.login"]);
        assert_eq!(did_you_mean("name", fields), ["labels[].name"]);
        assert!(did_you_mean("zzzzzzz", fields).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let m = unknown_field_message("field", "titel", fields);
        assert!(
            m.starts_with("unknown field `titel`; did you mean `title`?"),
            "{m}"
        );
        let many: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
        let m = unknown_field_message("field", "zz", many.iter().map(|s| s.as_str()));
        assert!(m.contains("40 fields") && m.len() < 120, "{m}");
        // Control characters (from a file's keys) are written escaped.
        let m = unknown_field_message("field", "updated_at", ["u\0dated_at", "a\nb"]);
        assert!(!m.chars().any(char::is_control), "{m:?}");
        assert!(m.contains("`u\\0dated_at`") && m.contains("a\\nb"), "{m}");
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
        // A field sorted by again is dropped, whatever its direction.
        let k = parse_sort(
            "state,-title,title,-state,"
                .repeat(300)
                .trim_end_matches(','),
        )
        .unwrap();
        assert_eq!(
            k.iter()
                .map(|k| (k.path.as_str(), k.desc))
                .collect::<Vec<_>>(),
            [("state", false), ("title", true)]
        );
        assert_eq!(parse_fields("a, b").unwrap(), ["a", "b"]);
        assert!(parse_fields(" , ").is_err());
        assert!(parse_fields("").is_err());
        // An empty name is an error that says which one.
        for (list, what) in [
            ("a,,b", "name 2 of 3"),
            ("a,b,", "name 3 of 3"),
            (",a", "name 1 of 2"),
        ] {
            let e = parse_fields(list).unwrap_err().to_string();
            assert!(e.contains(what) && e.contains(list), "{list}: {e}");
        }
    }
}
