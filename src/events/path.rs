//! Field paths of events: display paths (`user.login`, `a\.b`) split into keys.

use crate::model::push_key;

/// Split a display path into its keys. Keys are separated by `.`; `\`
/// escapes the next character (`a\.b` is the single key `a.b`). Array paths
/// (`labels[]`) cannot be addressed by events: an unescaped `[` or `]` is an
/// error, as are empty keys and a trailing `\`.
pub fn parse_path(path: &str) -> std::result::Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(format!("path `{path}` ends with a lone `\\`")),
            },
            '.' => {
                if cur.is_empty() {
                    return Err(format!("path `{path}` has an empty key"));
                }
                keys.push(std::mem::take(&mut cur));
            }
            '[' | ']' => {
                return Err(format!(
                    "path `{path}` addresses array elements; events set whole arrays (escape `[` and `]` in keys as `\\[` `\\]`)"
                ));
            }
            c => cur.push(c),
        }
    }
    if !any || cur.is_empty() {
        return Err(format!("path `{path}` has an empty key"));
    }
    keys.push(cur);
    Ok(keys)
}

/// Join keys into a display path (the inverse of [`parse_path`]).
pub fn join_path(keys: &[String]) -> String {
    let mut p = String::new();
    for k in keys {
        push_key(&mut p, k);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_join() {
        assert_eq!(parse_path("a.b").unwrap(), vec!["a", "b"]);
        assert_eq!(parse_path(r"a\.b.c\\").unwrap(), vec!["a.b", r"c\"]);
        assert_eq!(join_path(&parse_path(r"x\[0\].y").unwrap()), r"x\[0\].y");
        for bad in ["", "a.", ".a", "a..b", "labels[]", "a\\"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }
}
