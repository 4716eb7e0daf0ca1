//! Query-string parameters: decoded strictly (UTF-8, known names, numbers
//! in range), each error naming its parameter.

use crate::error::ApiError;
use colsnap::query::{Engine, Query, Search, parse};
use percent_encoding::percent_decode;

/// One `key=value` pair: decoded key and value, and the raw text as sent.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Decoded name.
    pub key: String,
    /// Decoded value.
    pub value: String,
    /// The pair as it appeared in the query string.
    pub raw: String,
}

fn decode(s: &str, what: &str) -> Result<String, ApiError> {
    let plus = s.replace('+', " ");
    percent_decode(plus.as_bytes())
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::bad(what, format!("`{what}` is not UTF-8 once percent-decoded")))
}

/// Split and decode a raw query string. Only names in `allowed` are accepted;
/// names in `repeatable` may appear more than once.
pub fn pairs(raw: &str, allowed: &[&str], repeatable: &[&str]) -> Result<Vec<Pair>, ApiError> {
    let mut out: Vec<Pair> = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let key = decode(k, "query")?;
        if !allowed.contains(&key.as_str()) {
            let takes = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(ApiError::bad(
                &key,
                format!("unknown parameter `{key}`; this endpoint takes {takes}"),
            ));
        }
        let value = decode(v, &key)?;
        if !repeatable.contains(&key.as_str()) && out.iter().any(|p| p.key == key) {
            return Err(ApiError::bad(
                &key,
                format!("`{key}` is given more than once"),
            ));
        }
        out.push(Pair {
            key,
            value,
            raw: part.to_string(),
        });
    }
    Ok(out)
}

/// The value of a single-valued parameter.
pub fn get<'a>(ps: &'a [Pair], key: &str) -> Option<&'a str> {
    ps.iter().find(|p| p.key == key).map(|p| p.value.as_str())
}

/// A whole number in `min..=max`.
pub fn number(ps: &[Pair], key: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
    let Some(v) = get(ps, key) else {
        return Ok(None);
    };
    // Digits only (`u64::parse` also takes a leading `+`).
    let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let n: u64 = v.parse().ok().filter(|_| digits).ok_or_else(|| {
        ApiError::bad(
            key,
            format!("`{key}` must be a whole number from {min} to {max} (got `{v}`)"),
        )
    })?;
    if n < min || n > max {
        return Err(ApiError::bad(
            key,
            format!("`{key}` must be from {min} to {max} (got {n})"),
        ));
    }
    Ok(Some(n))
}

/// What selects and orders rows: filters, search, sort (paging aside),
/// and the output fields.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The engine query.
    pub query: Query,
    /// Output fields (all when `None`).
    pub fields: Option<Vec<String>>,
    /// A canonical text of the query (not the fields), naming its result.
    pub canonical: String,
}

fn check_field(engine: &Engine, param: &str, path: &str) -> Result<(), ApiError> {
    if engine.fields().iter().any(|f| f.path == path) {
        return Ok(());
    }
    let known: Vec<&str> = engine.fields().iter().map(|f| f.path.as_str()).collect();
    Err(ApiError::bad(
        param,
        format!(
            "unknown field `{path}`; available fields: {}",
            known.join(", ")
        ),
    ))
}

/// Most different fields one `sort` may name: each is a column loaded and
/// compared (a field named again is dropped, as it never decides).
pub const MAX_SORT_KEYS: usize = 32;

/// Parse `where` (repeated), `sort`, `search`, `in` and `fields`, checking
/// every field name against the snapshot.
pub fn selection(ps: &[Pair], engine: &Engine) -> Result<Selection, ApiError> {
    let mut q = Query::default();
    // Each part is its name, its length and its text: no value (which may
    // hold any character, NUL included) can end one part and start another,
    // so two queries never share a text (nor a cached answer or a cursor).
    let mut canonical = String::new();
    let mut part = |name: &str, text: &str| {
        canonical.push_str(&format!("{name}:{}:{text};", text.len()));
    };
    for p in ps.iter().filter(|p| p.key == "where") {
        let f = parse::parse_where(&p.value).map_err(|e| ApiError::lib(Some("where"), e))?;
        check_field(engine, "where", &f.path)?;
        q.filters.push(f);
        part("where", &p.value);
    }
    if let Some(s) = get(ps, "sort") {
        q.sort = parse::parse_sort(s).map_err(|e| ApiError::lib(Some("sort"), e))?;
        if q.sort.len() > MAX_SORT_KEYS {
            return Err(ApiError::bad(
                "sort",
                format!(
                    "{} sort fields; at most {MAX_SORT_KEYS} different ones",
                    q.sort.len()
                ),
            ));
        }
        for k in &q.sort {
            check_field(engine, "sort", &k.path)?;
        }
        part("sort", s);
    }
    let search_in = get(ps, "in");
    match get(ps, "search") {
        Some(text) => {
            let fields = match search_in {
                Some(f) => parse::parse_fields(f).map_err(|e| ApiError::lib(Some("in"), e))?,
                None => Vec::new(),
            };
            for f in &fields {
                check_field(engine, "in", f)?;
            }
            part("search", text);
            for f in &fields {
                part("in", f);
            }
            q.search = Some(Search {
                text: text.to_string(),
                fields,
            });
        }
        None if search_in.is_some() => {
            return Err(ApiError::bad("in", "`in` needs `search`"));
        }
        None => {}
    }
    let fields = match get(ps, "fields") {
        Some(f) => {
            let v = parse::parse_fields(f).map_err(|e| ApiError::lib(Some("fields"), e))?;
            for x in &v {
                check_field(engine, "fields", x)?;
            }
            Some(v)
        }
        None => None,
    };
    Ok(Selection {
        query: q,
        fields,
        canonical,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode_and_refuse() {
        let ps = pairs(
            "where=a%3D1&where=b+%3E+2&page=3",
            &["where", "page"],
            &["where"],
        )
        .unwrap();
        assert_eq!(ps.len(), 3);
        assert_eq!(ps[0].value, "a=1");
        assert_eq!(ps[1].value, "b > 2");
        assert_eq!(ps[1].raw, "where=b+%3E+2");
        assert_eq!(number(&ps, "page", 1, 10).unwrap(), Some(3));
        assert!(number(&ps, "page", 4, 10).is_err());
        let e = pairs("page=1&page=2", &["page"], &[]).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("page"));
        let e = pairs("where=%FF", &["where"], &["where"]).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("where"));
        let e = pairs("bogus=1", &["where"], &[]).unwrap_err();
        assert_eq!(e.parameter.as_deref(), Some("bogus"));
        let ps = pairs("page=99999999999999999999999", &["page"], &[]).unwrap();
        assert!(number(&ps, "page", 1, u64::MAX).is_err());
    }
}
