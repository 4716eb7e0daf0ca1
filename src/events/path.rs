//! Field paths of events: display paths (`user.login`, `a\.b`) split into keys.

use crate::model::{PathSeg, push_key, split_path};

/// Split a display path into its keys (SPEC.md 1.6). Keys are separated by
/// `.`; `\` escapes the next character (`a\.b` is the single key `a.b`);
/// keys may be empty (the empty path is the top-level key "", `.x` the key
/// `x` inside it). Array paths (`labels[]`) cannot be addressed by events:
/// an unescaped `[` or `]` is an error, as is a trailing `\`.
pub fn parse_path(path: &str) -> std::result::Result<Vec<String>, String> {
    let arrays = || {
        format!(
            "path `{path}` addresses array elements; events set whole arrays (escape `[` and `]` in keys as `\\[` `\\]`)"
        )
    };
    let segs = split_path(path).map_err(|m| {
        if path.contains(['[', ']']) && !path.ends_with('\\') {
            arrays()
        } else {
            m
        }
    })?;
    segs.into_iter()
        .map(|s| match s {
            PathSeg::Key(k) => Ok(k),
            PathSeg::Elem => Err(arrays()),
        })
        .collect()
}

/// Join keys into a display path (the inverse of [`parse_path`]).
pub fn join_path(keys: &[String]) -> String {
    let mut p = String::new();
    for (i, k) in keys.iter().enumerate() {
        push_key(&mut p, i == 0, k);
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
        for bad in ["labels[]", "labels[].name", "a\\", "a[", "a]"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert!(parse_path("labels[]").unwrap_err().contains("whole arrays"));
        // Empty keys are keys: the top-level "" and what lies under it.
        for (path, keys) in [
            ("", vec![""]),
            (".a", vec!["", "a"]),
            ("a.", vec!["a", ""]),
            ("a..b", vec!["a", "", "b"]),
        ] {
            assert_eq!(parse_path(path).unwrap(), keys, "{path}");
            assert_eq!(join_path(&parse_path(path).unwrap()), path);
        }
    }
}
