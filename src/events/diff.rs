//! Diff: the events that turn one snapshot into another.

use super::event::{Event, EventOp, apply_update, get_path, key_text};
use super::path::parse_path;
use crate::error::{Error, Result};
use crate::read::Snapshot;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Order-sensitive equality (object key order and `-0.0` count), so that
/// applying a diff reproduces the new rows byte for byte.
fn exact_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && exact_eq(va, vb))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| exact_eq(p, q))
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
        }
        _ => a == b,
    }
}

/// Field-level patch turning `old` into `new`.
fn patch(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    prefix: &mut Vec<String>,
    set: &mut Vec<(Vec<String>, Value)>,
    remove: &mut Vec<Vec<String>>,
) {
    for k in old.keys() {
        if !new.contains_key(k) {
            prefix.push(k.clone());
            remove.push(prefix.clone());
            prefix.pop();
        }
    }
    for (k, nv) in new {
        prefix.push(k.clone());
        match (old.get(k), nv) {
            (Some(ov), nv) if exact_eq(ov, nv) => {}
            (Some(Value::Object(o)), Value::Object(n)) if !n.is_empty() => {
                patch(o, n, prefix, set, remove)
            }
            _ => set.push((prefix.clone(), nv.clone())),
        }
        prefix.pop();
    }
}

fn keyed(rows: &[Value], key_path: &[String], which: &str) -> Result<HashMap<String, usize>> {
    let mut m = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let k = r
            .as_object()
            .and_then(|o| get_path(o, key_path))
            .filter(|v| matches!(v, Value::String(_) | Value::Number(_)))
            .ok_or_else(|| Error::Value {
                row: i as u64,
                path: super::path::join_path(key_path),
                message: format!("the {which} row has no string or number key"),
            })?;
        if let Some(j) = m.insert(key_text(k), i) {
            return Err(Error::Value {
                row: i as u64,
                path: super::path::join_path(key_path),
                message: format!(
                    "the {which} rows {j} and {i} have the same key {}",
                    key_text(k)
                ),
            });
        }
    }
    Ok(m)
}

/// Indexes (into `seq`) of a longest strictly increasing subsequence.
fn lis(seq: &[usize]) -> Vec<usize> {
    let mut tails: Vec<usize> = Vec::new(); // index into seq of the tail of each length
    let mut prev = vec![usize::MAX; seq.len()];
    for i in 0..seq.len() {
        let p = tails.partition_point(|&t| seq[t] < seq[i]);
        if p > 0 {
            prev[i] = tails[p - 1];
        }
        if p == tails.len() {
            tails.push(i);
        } else {
            tails[p] = i;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut cur = tails.last().copied().unwrap_or(usize::MAX);
    while cur != usize::MAX {
        out.push(cur);
        cur = prev[cur];
    }
    out.reverse();
    out
}

/// The events that turn the rows `old` into the rows `new` (same rows, same
/// order, same values, same key order), numbered from `first_seq`. Rows are
/// matched by `key_field`; rows that keep their relative order (a longest
/// increasing run) stay in place and get field-level updates; removed rows
/// are deleted; new rows, and the fewest rows that must move, are created
/// (a moved row is deleted, then created at its new position with `at`).
pub fn diff_values(
    old: &[Value],
    new: &[Value],
    key_field: &str,
    first_seq: u64,
) -> Result<Vec<Event>> {
    let key_path = parse_path(key_field).map_err(|m| Error::Invalid(format!("key field: {m}")))?;
    keyed(old, &key_path, "old")?;
    let nk = keyed(new, &key_path, "new")?;
    // Common rows in old order, with their new positions.
    let common: Vec<(usize, usize)> = old
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let k = key_text(get_path(r.as_object()?, &key_path)?);
            nk.get(&k).map(|&j| (i, j))
        })
        .collect();
    let new_pos: Vec<usize> = common.iter().map(|&(_, j)| j).collect();
    let mut kept_old = vec![false; old.len()];
    let mut kept_new = vec![false; new.len()];
    let mut updates = Vec::new();
    for ci in lis(&new_pos) {
        let (i, j) = common[ci];
        let (Some(o), Some(n)) = (old[i].as_object(), new[j].as_object()) else {
            continue;
        };
        if !exact_eq(&old[i], &new[j]) {
            let (mut set, mut remove) = (Vec::new(), Vec::new());
            patch(o, n, &mut Vec::new(), &mut set, &mut remove);
            let mut check = o.clone();
            let exact = apply_update(&mut check, &set, &remove, &key_path).is_ok()
                && exact_eq(&Value::Object(check), &new[j]);
            if !exact {
                continue; // key order cannot be reproduced in place: move the row
            }
            updates.push((j, set, remove));
        }
        kept_old[i] = true;
        kept_new[j] = true;
    }
    let mut events = Vec::new();
    let mut seq = first_seq;
    let key_of = |r: &Value| {
        r.as_object()
            .and_then(|o| get_path(o, &key_path))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut len = 0usize;
    for (i, r) in old.iter().enumerate() {
        if kept_old[i] {
            len += 1;
        } else {
            events.push(Event {
                seq,
                key: key_of(r),
                op: EventOp::Delete,
            });
            seq += 1;
        }
    }
    updates.sort_by_key(|u| u.0);
    for (j, set, remove) in updates {
        events.push(Event {
            seq,
            key: key_of(&new[j]),
            op: EventOp::Update { set, remove },
        });
        seq += 1;
    }
    for (j, r) in new.iter().enumerate() {
        if kept_new[j] {
            continue;
        }
        let row = r.as_object().cloned().unwrap_or_default();
        let at = (j != len).then_some(j as u64);
        events.push(Event {
            seq,
            key: key_of(r),
            op: EventOp::Create { row, at },
        });
        seq += 1;
        len += 1;
    }
    Ok(events)
}

/// [`diff_values`] between two snapshots.
pub fn diff(old: &Snapshot, new: &Snapshot, key_field: &str, first_seq: u64) -> Result<Vec<Event>> {
    diff_values(&old.to_values()?, &new.to_values()?, key_field, first_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lis_is_longest_and_increasing() {
        let s = [3, 1, 4, 5, 2, 6, 0];
        let l = lis(&s);
        assert_eq!(l.len(), 4);
        assert!(l.windows(2).all(|w| w[0] < w[1] && s[w[0]] < s[w[1]]));
        assert!(lis(&[]).is_empty());
    }
}
