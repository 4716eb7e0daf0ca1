//! Facets: how many rows of a result hold each value of a column (the
//! sidebar of a grid view, as in Datasette). Counted on the typed arrays:
//! string values are counted by order key, and only the strings of the top
//! values are decoded (from one row holding each).

use super::Engine;
use super::loaded::Cell;
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// The counts of one field's values over a result. Serialized with
/// camelCase keys, like [`super::Pagination`] in the same query document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facet {
    /// The field (display path).
    pub field: String,
    /// The most frequent values, most rows first (ties: in value order).
    pub values: Vec<FacetValue>,
    /// Rows holding one of the values not listed (each once, however many
    /// such values its list holds).
    pub other_rows: usize,
    /// Distinct values in the result.
    pub distinct: usize,
    /// Rows with no value (null, absent, or an empty list).
    pub missing_rows: usize,
}

/// One value and the number of rows holding it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FacetValue {
    /// The value, as JSON.
    pub value: Value,
    /// Rows of the result holding it (a list counts once per row).
    pub count: usize,
}

/// A hashable stand-in for a value cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(u64),
    Str(u32),
    Time(i64, u32),
    Object,
    Array(u32),
}

fn key(c: Cell) -> Option<Key> {
    Some(match c {
        Cell::Absent | Cell::Null => return None,
        Cell::Bool(b) => Key::Bool(b),
        Cell::Int(v) => Key::Int(v),
        Cell::UInt(v) => Key::UInt(v),
        Cell::Float(v) => Key::Float(v.to_bits()),
        Cell::Str(k) => Key::Str(k),
        Cell::Time(s, n) => Key::Time(s, n),
        Cell::Object => Key::Object,
        Cell::Array(n) => Key::Array(n),
    })
}

/// One step of a display path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Each,
}

/// `labels[].name` as `[Key(labels), Each, Key(name)]`; `\` escapes.
fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut it = path.chars();
    let mut pending = false;
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                if let Some(n) = it.next() {
                    cur.push(n);
                    pending = true;
                }
            }
            '.' => {
                if pending || !cur.is_empty() {
                    out.push(Step::Key(std::mem::take(&mut cur)));
                }
                pending = false;
            }
            '[' => {
                if pending || !cur.is_empty() {
                    out.push(Step::Key(std::mem::take(&mut cur)));
                }
                pending = false;
                if it.next() == Some(']') {
                    out.push(Step::Each);
                }
            }
            c => {
                cur.push(c);
                pending = true;
            }
        }
    }
    if pending || !cur.is_empty() {
        out.push(Step::Key(cur));
    }
    out
}

/// The values `steps` lead to in `v`, in document order: one per item of
/// the column (an `[]` step maps over the array's elements; a key missing
/// from an element yields `None` there).
fn walk<'v>(v: Option<&'v Value>, steps: &[Step], out: &mut Vec<Option<&'v Value>>) {
    match steps.split_first() {
        None => out.push(v),
        Some((Step::Key(k), rest)) => walk(v.and_then(|v| v.get(k)), rest, out),
        Some((Step::Each, rest)) => {
            if let Some(Value::Array(items)) = v {
                for i in items {
                    walk(Some(i), rest, out);
                }
            }
        }
    }
}

impl Engine {
    /// Count the values of `path` over `rows` (a result of [`Engine::run`]):
    /// the `top` most frequent values with their row counts, the rows
    /// holding other values, the distinct count and the rows without a
    /// value. A row counts once per distinct value (`labels[].name` with
    /// two labels counts for both). No string is decoded but those of the
    /// `top` values shown.
    pub fn facet(&self, rows: &[u32], path: &str, top: usize) -> Result<Facet> {
        let col = self.ordered_column(path)?;
        let mut counts: HashMap<Key, (usize, u32, usize, usize)> = HashMap::new();
        let mut missing = 0usize;
        let mut seen: Vec<Key> = Vec::new();
        for (pos, &r) in rows.iter().enumerate() {
            let items = col.items(r as usize);
            seen.clear();
            for (k, i) in items.clone().enumerate() {
                if let Some(key) = key(col.values.cell(i))
                    && !seen.contains(&key)
                {
                    seen.push(key);
                    counts.entry(key).or_insert((0, r, k, pos)).0 += 1;
                }
            }
            if seen.is_empty() {
                missing += 1;
            }
        }
        let distinct = counts.len();
        let mut all: Vec<(Key, (usize, u32, usize, usize))> = counts.into_iter().collect();
        // Most rows first; ties in value order (keys compare like values
        // within one column's key space); values that compare equal (`0`
        // and `-0.0`, `1` and `1.0`) by where they first appear in `rows`,
        // never by the map's order.
        all.sort_by(|a, b| {
            b.1.0
                .cmp(&a.1.0)
                .then_with(|| Cell::from_key(a.0).cmp_value(&Cell::from_key(b.0)))
                .then_with(|| (a.1.3, a.1.2).cmp(&(b.1.3, b.1.2)))
        });
        let shown = all.len().min(top);
        // A row counts once, however many unlisted values it holds.
        let other_rows = if shown == all.len() {
            0
        } else {
            let listed: std::collections::HashSet<Key> = all[..shown].iter().map(|x| x.0).collect();
            rows.iter()
                .filter(|&&r| {
                    col.items(r as usize)
                        .any(|i| key(col.values.cell(i)).is_some_and(|k| !listed.contains(&k)))
                })
                .count()
        };
        let steps = steps(path);
        let mut values = Vec::with_capacity(shown);
        let field = [path.to_string()];
        for (_, (count, row, item, _)) in &all[..shown] {
            let json = self
                .source()
                .rows_json(&[*row], Some(&field))?
                .pop()
                .unwrap_or(Value::Null);
            let mut found = Vec::new();
            walk(Some(&json), &steps, &mut found);
            let value = found
                .get(*item)
                .copied()
                .flatten()
                .cloned()
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "facet of `{path}`: row {row} has no item {item} in its JSON"
                    ))
                })?;
            values.push(FacetValue {
                value,
                count: *count,
            });
        }
        Ok(Facet {
            field: path.to_string(),
            values,
            other_rows,
            distinct,
            missing_rows: missing,
        })
    }
}

impl Cell {
    fn from_key(k: Key) -> Cell {
        match k {
            Key::Bool(b) => Cell::Bool(b),
            Key::Int(v) => Cell::Int(v),
            Key::UInt(v) => Cell::UInt(v),
            Key::Float(b) => Cell::Float(f64::from_bits(b)),
            Key::Str(k) => Cell::Str(k),
            Key::Time(s, n) => Cell::Time(s, n),
            Key::Object => Cell::Object,
            Key::Array(n) => Cell::Array(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Query, SnapshotSource, parse};
    use serde_json::json;

    fn engine(rows: &[Value]) -> Engine {
        let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
        let snap = crate::Snapshot::from_bytes(
            crate::build_to_vec(text.as_bytes(), &Default::default()).unwrap(),
        )
        .unwrap();
        Engine::new(SnapshotSource::new(snap))
    }

    #[test]
    fn steps_of_paths() {
        assert_eq!(
            steps("labels[].name"),
            [
                Step::Key("labels".into()),
                Step::Each,
                Step::Key("name".into())
            ]
        );
        assert_eq!(
            steps("a\\.b.c"),
            [Step::Key("a.b".into()), Step::Key("c".into())]
        );
    }

    /// Values that compare equal but are distinct (`0`, `-0.0`, `0.0`)
    /// come out in the order they first appear in the rows, every time.
    #[test]
    fn ties_between_equal_values_are_in_row_order() {
        for rows in [
            [json!({"x": 0}), json!({"x": -0.0}), json!({"x": 0.0})],
            [json!({"x": 0.0}), json!({"x": 0}), json!({"x": -0.0})],
        ] {
            let e = engine(&rows);
            let all = e.run(&Query::default()).unwrap();
            let want: Vec<Value> = rows.iter().map(|r| r["x"].clone()).collect();
            for _ in 0..20 {
                let f = e.facet(&all, "x", 10).unwrap();
                let got: Vec<Value> = f.values.iter().map(|v| v.value.clone()).collect();
                assert_eq!(got, want);
                // In reverse row order, the other way round.
                let rev: Vec<u32> = all.iter().rev().copied().collect();
                let f = e.facet(&rev, "x", 10).unwrap();
                let got: Vec<Value> = f.values.iter().rev().map(|v| v.value.clone()).collect();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn counts_values_lists_and_missing() {
        let e = engine(&[
            json!({"state": "open", "labels": [{"name": "bug"}, {"name": "ui"}, {"name": "bug"}], "n": 1}),
            json!({"state": "closed", "labels": [{"name": "bug"}], "n": 1}),
            json!({"state": "open", "labels": [], "n": 2.5}),
            json!({"state": null, "labels": [{"x": 1}, {"name": "api"}], "n": 1}),
            json!({"labels": [{"name": "ui"}]}),
        ]);
        let all = e.run(&Query::default()).unwrap();
        let f = e.facet(&all, "state", 10).unwrap();
        assert_eq!(
            f.values,
            [
                FacetValue {
                    value: json!("open"),
                    count: 2
                },
                FacetValue {
                    value: json!("closed"),
                    count: 1
                }
            ]
        );
        assert_eq!((f.distinct, f.missing_rows, f.other_rows), (2, 2, 0));
        // A list: once per row per value; the element without `name` is skipped.
        let f = e.facet(&all, "labels[].name", 2).unwrap();
        assert_eq!(
            f.values,
            [
                FacetValue {
                    value: json!("bug"),
                    count: 2
                },
                FacetValue {
                    value: json!("ui"),
                    count: 2
                }
            ]
        );
        assert_eq!((f.distinct, f.other_rows, f.missing_rows), (3, 1, 1));
        // Rows holding several unlisted values count once.
        let e2 = engine(&[
            json!({"l": ["a", "b", "c"]}),
            json!({"l": ["a"]}),
            json!({"l": ["d", "b"]}),
        ]);
        let all2 = e2.run(&Query::default()).unwrap();
        let f = e2.facet(&all2, "l[]", 1).unwrap();
        assert_eq!(f.values[0].value, json!("a"));
        assert_eq!((f.distinct, f.other_rows, f.missing_rows), (4, 2, 0));
        // Mixed numbers, under a filter.
        let q = Query {
            filters: vec![parse::parse_where("state=open").unwrap()],
            ..Default::default()
        };
        let open = e.run(&q).unwrap();
        let f = e.facet(&open, "n", 10).unwrap();
        assert_eq!(
            f.values,
            [
                FacetValue {
                    value: json!(1),
                    count: 1
                },
                FacetValue {
                    value: json!(2.5),
                    count: 1
                }
            ]
        );
        assert!(
            e.facet(&all, "nope", 3)
                .unwrap_err()
                .to_string()
                .contains("unknown field")
        );
    }
}
