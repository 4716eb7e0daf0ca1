//! The logical model shared by the writer, the reader and the query engine.
//!
//! A snapshot is a tree of *nodes*. Node 0 is the row itself. Every other node
//! is either a field of an object (`Key`) or the elements of an array
//! (`Elem`). Each node holds one *item* per member of its *domain*: the rows
//! for the root and for fields reached through objects only, or the elements
//! of the nearest enclosing array. Every item has a [`Kind`]; its payload lives
//! in the dense stream for that kind. Because the kind is recorded per item,
//! any JSON value fits losslessly: absent and null differ, and a field whose
//! type drifts between rows becomes a `mixed` column with every value still
//! typed.

use std::fmt;

/// What one item of a node is. The numbers are part of the file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// The key is not present in that object.
    Absent = 0,
    /// JSON `null`.
    Null = 1,
    /// JSON `false`.
    False = 2,
    /// JSON `true`.
    True = 3,
    /// An integer in `i64` range.
    Int = 4,
    /// An integer above `i64::MAX` (up to `u64::MAX`).
    UInt = 5,
    /// Any other number (binary64).
    Float = 6,
    /// A string, by id into the node's string table.
    Str = 7,
    /// A string that is an RFC 3339 timestamp reproduced byte for byte.
    Time = 8,
    /// An object; its fields are the node's `Key` children.
    Object = 9,
    /// An array; its elements are the node's `Elem` child.
    Array = 10,
    /// An integer literal outside `[-2^63, 2^64)`, kept as its text (format
    /// version 5; SPEC.md 1.3).
    NumText = 11,
}

/// Number of kinds; kinds are `0..KIND_COUNT`.
pub const KIND_COUNT: usize = 12;

impl Kind {
    /// All kinds in tag order.
    pub const ALL: [Kind; KIND_COUNT] = [
        Kind::Absent,
        Kind::Null,
        Kind::False,
        Kind::True,
        Kind::Int,
        Kind::UInt,
        Kind::Float,
        Kind::Str,
        Kind::Time,
        Kind::Object,
        Kind::Array,
        Kind::NumText,
    ];

    /// Decode a tag byte.
    pub fn from_u8(b: u8) -> Option<Kind> {
        Kind::ALL.get(b as usize).copied()
    }

    /// Name used in error messages and `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Absent => "absent",
            Kind::Null => "null",
            Kind::False => "false",
            Kind::True => "true",
            Kind::Int => "int",
            Kind::UInt => "uint",
            Kind::Float => "float",
            Kind::Str => "string",
            Kind::Time => "timestamp",
            Kind::Object => "object",
            Kind::Array => "array",
            Kind::NumText => "number-text",
        }
    }
}

/// How a node hangs off its parent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeName {
    /// The row (node 0 only).
    Root,
    /// A field of the parent's object items.
    Key(String),
    /// The elements of the parent's array items.
    Elem,
}

/// The type a column presents to users, derived from the kinds it holds
/// (absent and null aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// Only nulls (or nothing at all).
    Null,
    /// `true`/`false`.
    Bool,
    /// Integers in `i64` range.
    I64,
    /// Non-negative integers, some above `i64::MAX`.
    U64,
    /// Floats.
    F64,
    /// Mixed integers and floats (compared numerically).
    Number,
    /// Strings (ids into a sorted table).
    String,
    /// Timestamps.
    Timestamp,
    /// Objects (a struct: its fields are other columns).
    Object,
    /// Arrays (a list: its elements are another column).
    List,
    /// Several of the above: the lossless variant column.
    Mixed,
}

impl ColumnType {
    /// Derive the type from per-kind counts.
    pub fn from_counts(counts: &[u64; KIND_COUNT], has_negative_int: bool) -> ColumnType {
        let has = |k: Kind| counts[k as usize] > 0;
        let bools = has(Kind::False) || has(Kind::True);
        let ints = has(Kind::Int);
        let uints = has(Kind::UInt);
        let floats = has(Kind::Float);
        let texts = has(Kind::NumText);
        let numeric = ints || uints || floats || texts;
        let groups = [
            bools,
            numeric,
            has(Kind::Str),
            has(Kind::Time),
            has(Kind::Object),
            has(Kind::Array),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if groups == 0 {
            return ColumnType::Null;
        }
        if groups > 1 {
            return ColumnType::Mixed;
        }
        if bools {
            ColumnType::Bool
        } else if numeric {
            match (ints, uints, floats, texts) {
                (_, false, false, false) => ColumnType::I64,
                (_, true, false, false) if !has_negative_int => ColumnType::U64,
                (false, false, true, false) => ColumnType::F64,
                _ => ColumnType::Number,
            }
        } else if has(Kind::Str) {
            ColumnType::String
        } else if has(Kind::Time) {
            ColumnType::Timestamp
        } else if has(Kind::Object) {
            ColumnType::Object
        } else {
            ColumnType::List
        }
    }

    /// Name used by `inspect` and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Null => "null",
            ColumnType::Bool => "bool",
            ColumnType::I64 => "i64",
            ColumnType::U64 => "u64",
            ColumnType::F64 => "f64",
            ColumnType::Number => "number",
            ColumnType::String => "string",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Object => "object",
            ColumnType::List => "list",
            ColumnType::Mixed => "mixed",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Append `key` to `path`, the display path of the node it is a key of
/// (`top`: that node is the root, whose path is empty), escaping `.`, `[`,
/// `]` and `\` so that paths stay unambiguous (`a\.b` is the key "a.b").
/// A key below any other node always follows a `.`, so an empty key keeps
/// its place (SPEC.md 1.6): the top-level key `""` has the empty path, the
/// key `x` inside it `.x`, while the top-level key `x` is `x`.
pub fn push_key(path: &mut String, top: bool, key: &str) {
    if !top {
        path.push('.');
    }
    for c in key.chars() {
        if matches!(c, '.' | '[' | ']' | '\\') {
            path.push('\\');
        }
        path.push(c);
    }
}

/// The display path of the top-level key `key` (a row's field).
pub fn top_key_path(key: &str) -> String {
    let mut p = String::new();
    push_key(&mut p, true, key);
    p
}

/// One segment of a display path: an object's key or an array's elements (`[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    /// An object's key (its text unescaped).
    Key(String),
    /// An array's elements.
    Elem,
}

/// The display path of segments, the first of them a key of the root (a
/// row's field): the inverse of [`split_path`].
pub fn join_segments(segs: &[PathSeg]) -> String {
    let mut p = String::new();
    for (i, s) in segs.iter().enumerate() {
        match s {
            PathSeg::Key(k) => push_key(&mut p, i == 0, k),
            PathSeg::Elem => p.push_str("[]"),
        }
    }
    p
}

/// Split a display path into its segments (SPEC.md 1.6): a path opens with
/// a key (possibly empty: the empty path is the top-level key ""), then
/// each `.` opens another key and each `[]` stands for an array's elements. `\`
/// escapes the next character. An unescaped `]` outside `[]`, a `[` not
/// followed by `]`, a character right after `[]`, and a lone trailing
/// `\` are errors.
pub fn split_path(path: &str) -> std::result::Result<Vec<PathSeg>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    // Whether a key is being read (else the last segment was `[]`).
    let mut in_key = true;
    let mut chars = path.chars();
    loop {
        match chars.next() {
            None => {
                if in_key {
                    out.push(PathSeg::Key(cur));
                }
                return Ok(out);
            }
            Some('\\') if in_key => match chars.next() {
                Some(c) => cur.push(c),
                None => return Err(format!("path `{path}` ends with a lone `\\`")),
            },
            Some('.') => {
                if in_key {
                    out.push(PathSeg::Key(std::mem::take(&mut cur)));
                }
                in_key = true;
            }
            Some('[') => {
                if chars.next() != Some(']') {
                    return Err(format!(
                        "path `{path}` has a `[` not followed by `]` (escape `[` and `]` in keys as `\\[` `\\]`)"
                    ));
                }
                if in_key {
                    out.push(PathSeg::Key(std::mem::take(&mut cur)));
                }
                out.push(PathSeg::Elem);
                in_key = false;
            }
            Some(']') if in_key => {
                return Err(format!(
                    "path `{path}` has a `]` outside `[]` (escape it in a key as `\\]`)"
                ));
            }
            Some(c) if in_key => cur.push(c),
            Some(c) => {
                return Err(format!(
                    "path `{path}` has `{c}` right after `[]` (a key after `[]` follows a `.`)"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_tags_roundtrip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_u8(k as u8), Some(k));
        }
        assert_eq!(Kind::from_u8(KIND_COUNT as u8), None);
    }

    #[test]
    fn types_from_counts() {
        let mut c = [0u64; KIND_COUNT];
        assert_eq!(ColumnType::from_counts(&c, false), ColumnType::Null);
        c[Kind::Int as usize] = 3;
        assert_eq!(ColumnType::from_counts(&c, false), ColumnType::I64);
        c[Kind::UInt as usize] = 1;
        assert_eq!(ColumnType::from_counts(&c, false), ColumnType::U64);
        assert_eq!(ColumnType::from_counts(&c, true), ColumnType::Number);
        c[Kind::Str as usize] = 1;
        assert_eq!(ColumnType::from_counts(&c, false), ColumnType::Mixed);
        // Integers kept as text are numbers: alone or beside others.
        let mut c = [0u64; KIND_COUNT];
        c[Kind::NumText as usize] = 1;
        assert_eq!(ColumnType::from_counts(&c, false), ColumnType::Number);
        c[Kind::Int as usize] = 1;
        assert_eq!(ColumnType::from_counts(&c, false), ColumnType::Number);
    }

    #[test]
    fn key_escaping() {
        let mut p = String::new();
        push_key(&mut p, true, "user");
        push_key(&mut p, false, "a.b[0]");
        assert_eq!(p, r"user.a\.b\[0\]");
    }

    fn key(k: &str) -> PathSeg {
        PathSeg::Key(k.to_string())
    }

    #[test]
    fn empty_keys_keep_their_place_in_display_paths() {
        use PathSeg::Elem;
        let cases: Vec<(Vec<PathSeg>, &str)> = vec![
            (vec![key("")], ""),
            (vec![key(""), key("x")], ".x"),
            (vec![key("x")], "x"),
            (vec![key("x"), key("")], "x."),
            (vec![key("a"), key(""), key("b")], "a..b"),
            (vec![key(""), key("")], "."),
            (vec![key(""), Elem], "[]"),
            (vec![key(""), Elem, key("")], "[]."),
            (vec![key("labels"), Elem, key("name")], "labels[].name"),
            (vec![key("x"), Elem, Elem, key("a[b")], r"x[][].a\[b"),
            (vec![key("a.b"), key(r"c\")], r"a\.b.c\\"),
        ];
        for (segs, path) in cases {
            assert_eq!(join_segments(&segs), path);
            assert_eq!(split_path(path).unwrap(), segs, "{path}");
        }
        for bad in ["a[", "a[x]", "a]", "a[]b", r"a\", r"a[]\."] {
            assert!(split_path(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn display_paths_split_into_the_segments_they_join(
            segs in proptest::collection::vec(
                proptest::option::of("[a.\\[\\]\\\\]{0,3}"),
                1..6,
            )
        ) {
            let mut segs: Vec<PathSeg> = segs
                .into_iter()
                .map(|k| k.map_or(PathSeg::Elem, PathSeg::Key))
                .collect();
            if segs[0] == PathSeg::Elem {
                segs[0] = key("");
            }
            let p = join_segments(&segs);
            proptest::prop_assert_eq!(split_path(&p).unwrap(), segs);
        }
    }
}
