//! Diff: the events that turn one snapshot into another.

use super::event::{Event, EventOp, apply_update, get_path, key_text};
use super::path::parse_path;
use crate::error::{Error, Result};
use crate::read::{RowWriter, Snapshot};
use serde_json::{Map, Value};

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

/// Every row's key (a string or a number, distinct) as its JSON text, in
/// one buffer, with an index by that text: about 40 bytes a row for a
/// numeric key, where JSON values and a map of their text took 170-280.
struct Keys {
    /// The texts one after another.
    text: String,
    /// Where each row's text ends in `text`.
    ends: Vec<usize>,
    /// (hash of a row's text, row), sorted: rows of equal hashes are
    /// together, in row order.
    by_hash: Vec<(u64, usize)>,
    hasher: std::hash::RandomState,
}

impl Keys {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Row `i`'s key as JSON text.
    fn text(&self, i: usize) -> &str {
        let from = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[from..self.ends[i]]
    }

    /// Row `i`'s key.
    fn value(&self, i: usize) -> Result<Value> {
        serde_json::from_str(self.text(i))
            .map_err(|e| Error::Invalid(format!("key {}: {e}", self.text(i))))
    }

    fn hash(&self, text: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, text)
    }

    /// The row whose key's text is `text`.
    fn get(&self, text: &str) -> Option<usize> {
        let h = self.hash(text);
        let from = self.by_hash.partition_point(|&(x, _)| x < h);
        self.by_hash[from..]
            .iter()
            .take_while(|&&(x, _)| x == h)
            .map(|&(_, i)| i)
            .find(|&i| self.text(i) == text)
    }

    /// Index the rows so far; the first row (`i`) whose key an earlier row
    /// (`j`) has, as `(j, i)`.
    fn index(&mut self) -> Option<(usize, usize)> {
        let mut by_hash: Vec<(u64, usize)> = (0..self.len())
            .map(|i| (self.hash(self.text(i)), i))
            .collect();
        by_hash.sort_unstable();
        let mut first: Option<(usize, usize)> = None;
        for run in by_hash.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
            // In row order: the first row with an equal one before it.
            let found = run.iter().enumerate().skip(1).find_map(|(p, &(_, i))| {
                run[..p]
                    .iter()
                    .find(|&&(_, j)| self.text(j) == self.text(i))
                    .map(|&(_, j)| (j, i))
            });
            if let Some((j, i)) = found
                && first.is_none_or(|(_, f)| i < f)
            {
                first = Some((j, i));
            }
        }
        self.by_hash = by_hash;
        first
    }

    /// Forget the index (the old side needs only the texts).
    fn without_index(mut self) -> Keys {
        self.by_hash = Vec::new();
        self
    }
}

/// The key of every row (a string or a number, distinct), indexed by its
/// text. The first fault in row order is the error: a row without a key,
/// or a key an earlier row has.
fn keyed(
    keys: impl Iterator<Item = Result<Option<Value>>>,
    key_path: &[String],
    which: &str,
) -> Result<Keys> {
    let mut out = Keys {
        text: String::new(),
        ends: Vec::new(),
        by_hash: Vec::new(),
        hasher: std::hash::RandomState::new(),
    };
    let mut missing = None;
    for (i, k) in keys.enumerate() {
        match k? {
            Some(k @ (Value::String(_) | Value::Number(_))) => {
                out.text.push_str(&key_text(&k));
                out.ends.push(out.text.len());
            }
            _ => {
                missing = Some(i);
                break;
            }
        }
    }
    if let Some((j, i)) = out.index() {
        return Err(Error::Value {
            row: i as u64,
            path: super::path::join_path(key_path),
            message: format!(
                "the {which} rows {j} and {i} have the same key {}",
                out.text(i)
            ),
        });
    }
    if let Some(i) = missing {
        return Err(Error::Value {
            row: i as u64,
            path: super::path::join_path(key_path),
            message: format!("the {which} row has no string or number key"),
        });
    }
    out.ends.shrink_to_fit();
    out.text.shrink_to_fit();
    Ok(out)
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

/// What the diff asks of the two sides: whether old row `i` and new row
/// `j` are certainly equal (a cheap test; `false` only means "compare
/// them"), and a row's value when it must be compared or created.
trait Sides {
    fn same(&mut self, i: usize, j: usize) -> bool;
    /// Every row [`Sides::old_rows`] and [`Sides::new_rows`] may ask for
    /// (increasing), told once before them.
    fn will_ask(&mut self, _old: &[usize], _new: &[usize]) -> Result<()> {
        Ok(())
    }
    /// Old rows `rows` (increasing), read together.
    fn old_rows(&mut self, rows: &[usize]) -> Result<Vec<Value>>;
    /// New rows `rows` (increasing), read together.
    fn new_rows(&mut self, rows: &[usize]) -> Result<Vec<Value>>;
    /// The mark of integers outside `[-2^63, 2^64)` in the rows, when they
    /// come as marked strings (`read::verify::exact_value`) so that they
    /// compare by their digits.
    fn mark(&self) -> Option<&str> {
        None
    }
}

/// The first integer outside `[-2^63, 2^64)` that `v` (at display path
/// `path`) holds as a string marked with `mark`: its path and literal.
fn marked_at(v: &Value, mark: &str, path: &str) -> Option<(String, String)> {
    match v {
        Value::String(t) => t
            .strip_prefix(mark)
            .map(|digits| (path.to_string(), digits.to_string())),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| marked_at(x, mark, &format!("{path}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            let mut p = path.to_string();
            crate::model::push_key(&mut p, path.is_empty(), k);
            marked_at(x, mark, &p)
        }),
        _ => None,
    }
}

/// The error of an event that would carry an integer outside
/// `[-2^63, 2^64)`: events hold numbers as JSON values (binary64), so the
/// clients would not get its digits.
fn carried_big_integer(row: usize, path: String, digits: &str) -> Error {
    Error::Value {
        row: row as u64,
        path,
        message: format!(
            "the new row holds {digits}, an integer outside [-2^63, 2^64) that events cannot carry \
             (they are read as JSON values, binary64: it would arrive as {}); publish the new snapshot instead",
            serde_json::Number::from_f64(crate::encoding::numtext::value(digits))
                .map_or_else(|| digits.to_string(), |n| n.to_string())
        ),
    }
}

/// Rows read from a side at once: each string chunk is read once for all
/// of them (a PPMd chunk of bodies streamed once per group, not once per
/// row), and memory holds a group's rows, not every changed row.
const ROWS_AT_ONCE: usize = 512;

/// The diff over the rows' keys; rows are asked of `sides` only where they
/// may differ, so memory follows the keys and the changed rows.
fn diff_keys(
    old_keys: &Keys,
    new_keys: &Keys,
    sides: &mut dyn Sides,
    key_path: &[String],
    first_seq: u64,
    emit: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<u64> {
    // Common rows in old order, with their new positions.
    let common: Vec<(usize, usize)> = (0..old_keys.len())
        .filter_map(|i| new_keys.get(old_keys.text(i)).map(|j| (i, j)))
        .collect();
    let new_pos: Vec<usize> = common.iter().map(|&(_, j)| j).collect();
    let mut kept_old = vec![false; old_keys.len()];
    let mut kept_new = vec![false; new_keys.len()];
    let mut updates = Vec::new();
    let pairs: Vec<(usize, usize)> = lis(&new_pos).into_iter().map(|ci| common[ci]).collect();
    {
        // Rows compared (their hashes differ) and rows that may be
        // created (not in the run, or moved once compared).
        let mut in_run = vec![false; new_keys.len()];
        let mut old_asked = Vec::new();
        let mut new_asked = Vec::new();
        for &(i, j) in &pairs {
            in_run[j] = true;
            if !sides.same(i, j) {
                old_asked.push(i);
                new_asked.push(j);
            }
        }
        new_asked.extend((0..new_keys.len()).filter(|&j| !in_run[j]));
        new_asked.sort_unstable();
        sides.will_ask(&old_asked, &new_asked)?;
    }
    for group in pairs.chunks(ROWS_AT_ONCE) {
        let check: Vec<(usize, usize)> = group
            .iter()
            .copied()
            .filter(|&(i, j)| !sides.same(i, j))
            .collect();
        let olds = sides.old_rows(&check.iter().map(|p| p.0).collect::<Vec<_>>())?;
        let news = sides.new_rows(&check.iter().map(|p| p.1).collect::<Vec<_>>())?;
        // Rows whose update cannot be made in place: moved instead.
        let mut moved = std::collections::HashSet::new();
        for (&(i, j), (old, new)) in check.iter().zip(olds.into_iter().zip(news)) {
            let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
                moved.insert(i);
                continue;
            };
            if !exact_eq(&old, &new) {
                let (mut set, mut remove) = (Vec::new(), Vec::new());
                patch(o, n, &mut Vec::new(), &mut set, &mut remove);
                let mut check = o.clone();
                let exact = apply_update(&mut check, &set, &remove, key_path).is_ok()
                    && exact_eq(&Value::Object(check), &new);
                if !exact {
                    moved.insert(i); // key order cannot be reproduced in place
                    continue;
                }
                if let Some(mark) = sides.mark() {
                    for (p, v) in &set {
                        if let Some((at, digits)) = marked_at(v, mark, &super::path::join_path(p)) {
                            return Err(carried_big_integer(j, at, &digits));
                        }
                    }
                }
                updates.push((j, set, remove));
            }
        }
        for &(i, j) in group {
            if !moved.contains(&i) {
                kept_old[i] = true;
                kept_new[j] = true;
            }
        }
    }
    let mut seq = first_seq;
    let mut len = 0usize;
    for (i, &kept) in kept_old.iter().enumerate() {
        if kept {
            len += 1;
        } else {
            emit(Event {
                seq,
                key: old_keys.value(i)?,
                op: EventOp::Delete,
            })?;
            seq += 1;
        }
    }
    updates.sort_by_key(|u| u.0);
    for (j, set, remove) in updates {
        emit(Event {
            seq,
            key: new_keys.value(j)?,
            op: EventOp::Update { set, remove },
        })?;
        seq += 1;
    }
    let created: Vec<usize> = (0..new_keys.len()).filter(|&j| !kept_new[j]).collect();
    for group in created.chunks(ROWS_AT_ONCE) {
        for (&j, row) in group.iter().zip(sides.new_rows(group)?) {
            if let Some((at, digits)) = sides.mark().and_then(|m| marked_at(&row, m, "")) {
                return Err(carried_big_integer(j, at, &digits));
            }
            let row = match row {
                Value::Object(o) => o,
                _ => Map::new(),
            };
            let at = (j != len).then_some(j as u64);
            emit(Event {
                seq,
                key: new_keys.value(j)?,
                op: EventOp::Create { row, at },
            })?;
            seq += 1;
            len += 1;
        }
    }
    Ok(seq - first_seq)
}

struct ValueSides<'a> {
    old: &'a [Value],
    new: &'a [Value],
}

impl Sides for ValueSides<'_> {
    fn same(&mut self, i: usize, j: usize) -> bool {
        exact_eq(&self.old[i], &self.new[j])
    }
    fn old_rows(&mut self, rows: &[usize]) -> Result<Vec<Value>> {
        Ok(rows.iter().map(|&i| self.old[i].clone()).collect())
    }
    fn new_rows(&mut self, rows: &[usize]) -> Result<Vec<Value>> {
        Ok(rows.iter().map(|&j| self.new[j].clone()).collect())
    }
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
    let key_of = |r: &Value| Ok(r.as_object().and_then(|o| get_path(o, &key_path)).cloned());
    let old_keys = keyed(old.iter().map(key_of), &key_path, "old")?.without_index();
    let new_keys = keyed(new.iter().map(key_of), &key_path, "new")?;
    let mut sides = ValueSides { old, new };
    let mut events = Vec::new();
    diff_keys(
        &old_keys,
        &new_keys,
        &mut sides,
        &key_path,
        first_seq,
        &mut |e| {
            events.push(e);
            Ok(())
        },
    )?;
    Ok(events)
}

/// One snapshot's side of a diff: each row's exact JSON text hashed (128
/// bits) in one pass, rows read again only where they differ.
struct SnapshotSide {
    snap: Snapshot,
    writer: RowWriter,
    hashes: Vec<u128>,
}

impl SnapshotSide {
    /// Keys and row hashes of every row of `snap`, one row in memory at a time.
    fn read(
        snap: &Snapshot,
        key_field: &str,
        key_path: &[String],
        which: &str,
    ) -> Result<(Self, Keys)> {
        let writer = snap.row_writer(None)?;
        if snap.rows() == 0 {
            // No rows, so perhaps no key column to select.
            let side = SnapshotSide {
                snap: snap.clone(),
                writer,
                hashes: Vec::new(),
            };
            let keys = keyed(std::iter::empty(), key_path, which)?;
            return Ok((side, keys));
        }
        // The rows' text hashed as an export writes it: each string chunk
        // read once a batch (a row at a time would stream a PPMd chunk of
        // bodies from its start for every row), memory bounded.
        let mut lines = LineHashes::default();
        snap.export(
            &mut lines,
            &crate::read::ExportOptions {
                ndjson: true,
                ..Default::default()
            },
        )?;
        let hashes = lines.hashes;
        if hashes.len() as u64 != snap.rows() || !lines.line.is_empty() {
            return Err(Error::corrupt(
                "rows",
                0,
                format!("{} rows exported of {}", hashes.len(), snap.rows()),
            ));
        }
        let mut keys = snap.row_writer(Some(&[key_field.to_string()]))?;
        let rows = (0..snap.rows()).map(|i| {
            let k = keys.row_json(i)?;
            Ok(k.as_object().and_then(|o| get_path(o, key_path)).cloned())
        });
        let k = keyed(rows, key_path, which)?;
        let side = SnapshotSide {
            snap: snap.clone(),
            writer,
            hashes,
        };
        Ok((side, k))
    }
}

impl SnapshotSide {
    /// Read only `rows` (increasing) from now on: when they are under a
    /// quarter of the snapshot, its columns are read at their items
    /// rather than decoded whole (5,000 changed rows of 1M).
    fn will_ask(&mut self, rows: &[usize]) -> Result<()> {
        if rows.is_empty() || (rows.len() as u64).saturating_mul(4) >= self.snap.rows() {
            return Ok(());
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let rows: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
            self.writer = self.snap.row_writer_for(None, &rows)?;
        }
        Ok(())
    }

    /// Rows `rows` (increasing) as values, each string chunk read once;
    /// integers outside `[-2^63, 2^64)` as strings marked with `mark`.
    fn rows(&mut self, rows: &[usize], mark: &str) -> Result<Vec<Value>> {
        let rows: Vec<u64> = rows.iter().map(|&r| r as u64).collect();
        let mut out = Vec::new();
        // One row a line: compact JSON holds no raw newline.
        self.writer
            .write_row_groups(&rows, 1, &mut out, &mut |_, _| {}, b"\n")?;
        let mut lines = out.split(|&b| b == b'\n');
        rows.iter()
            .map(|&r| {
                let line = lines.next().unwrap_or_default();
                crate::read::verify::exact_value(line, mark)
                    .map_err(|e| Error::corrupt("row", r, e.to_string()))
            })
            .collect()
    }
}

/// A writer of NDJSON rows that keeps the hash of each line.
#[derive(Default)]
struct LineHashes {
    hashes: Vec<u128>,
    /// The line so far.
    line: Vec<u8>,
}

impl std::io::Write for LineHashes {
    fn write(&mut self, mut b: &[u8]) -> std::io::Result<usize> {
        let n = b.len();
        while let Some(at) = b.iter().position(|&c| c == b'\n') {
            self.line.extend_from_slice(&b[..at]);
            self.hashes.push(hash128(&self.line));
            self.line.clear();
            b = &b[at + 1..];
        }
        self.line.extend_from_slice(b);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Two independent 64-bit SipHashes of `bytes`.
fn hash128(bytes: &[u8]) -> u128 {
    use std::hash::{DefaultHasher, Hasher};
    let mut a = DefaultHasher::new();
    a.write(bytes);
    let mut b = DefaultHasher::new();
    b.write_u64(0x9e37_79b9_7f4a_7c15);
    b.write(bytes);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

struct SnapshotSides {
    old: SnapshotSide,
    new: SnapshotSide,
    /// Marks integers outside `[-2^63, 2^64)` on both sides.
    mark: String,
}

impl Sides for SnapshotSides {
    fn same(&mut self, i: usize, j: usize) -> bool {
        self.old.hashes[i] == self.new.hashes[j]
    }
    fn will_ask(&mut self, old: &[usize], new: &[usize]) -> Result<()> {
        self.old.will_ask(old)?;
        self.new.will_ask(new)
    }
    fn old_rows(&mut self, rows: &[usize]) -> Result<Vec<Value>> {
        self.old.rows(rows, &self.mark)
    }
    fn new_rows(&mut self, rows: &[usize]) -> Result<Vec<Value>> {
        self.new.rows(rows, &self.mark)
    }
    fn mark(&self) -> Option<&str> {
        Some(&self.mark)
    }
}

/// [`diff_values`] between two snapshots. Memory follows the rows' keys and
/// the rows that changed, not the snapshots' JSON: each side is read once
/// (keys and a hash of each row's text), then the rows whose hashes differ
/// are read again and compared.
pub fn diff(old: &Snapshot, new: &Snapshot, key_field: &str, first_seq: u64) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    diff_each(old, new, key_field, first_seq, &mut |e| {
        events.push(e);
        Ok(())
    })?;
    Ok(events)
}

/// [`diff`], each event handed to `each` as soon as it is made instead of
/// held: memory then follows the keys, the updates (held to be numbered in
/// the new rows' order) and a group of created rows, not every event (a
/// reversed file is a deletion and a creation with its whole row for
/// nearly every row). Returns the number of events. An error can come
/// after some events were handed over (a damaged chunk of a created row):
/// a caller that must not leave part of a log behind writes them
/// somewhere it can discard.
pub fn diff_each(
    old: &Snapshot,
    new: &Snapshot,
    key_field: &str,
    first_seq: u64,
    each: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<u64> {
    let key_path = parse_path(key_field).map_err(|m| Error::Invalid(format!("key field: {m}")))?;
    let (old_side, old_keys) = SnapshotSide::read(old, key_field, &key_path, "old")?;
    let old_keys = old_keys.without_index();
    let (new_side, new_keys) = SnapshotSide::read(new, key_field, &key_path, "new")?;
    let mut sides = SnapshotSides {
        old: old_side,
        new: new_side,
        mark: crate::read::verify::number_mark(),
    };
    diff_keys(&old_keys, &new_keys, &mut sides, &key_path, first_seq, each)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads of string chunks (whole or in part) `snap` made so far.
    fn chunk_reads(snap: &Snapshot) -> u64 {
        let st = snap.stats();
        st.chunks_decoded + st.partial_reads
    }

    /// A diff reads each string chunk about once a batch of rows, not once
    /// a row: with bodies in PPMd (which streams from the chunk's start to
    /// the string wanted), a read a row made a 700-row diff take a minute.
    #[test]
    fn chunks_are_read_once_a_batch_not_once_a_row() {
        use crate::write::{BuildOptions, LongTextCodec, build_to_vec};
        let mut seed = 11u64;
        let mut word = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            format!("w{:x}", seed >> 53)
        };
        let bodies: Vec<String> = (0..400)
            .map(|_| (0..300).map(|_| word()).collect::<Vec<_>>().join(" "))
            .collect();
        let rows = |title: &str| -> Vec<u8> {
            let mut out = Vec::new();
            for (i, body) in bodies.iter().enumerate() {
                let row =
                    serde_json::json!({"id": i, "title": format!("{title} {i}"), "body": body});
                out.extend_from_slice(row.to_string().as_bytes());
                out.push(b'\n');
            }
            out
        };
        let opts = BuildOptions {
            long_text_codec: LongTextCodec::Ppmd,
            ..Default::default()
        };
        let old = Snapshot::from_bytes(build_to_vec(&rows("old")[..], &opts).unwrap()).unwrap();
        let new = Snapshot::from_bytes(build_to_vec(&rows("new")[..], &opts).unwrap()).unwrap();
        let chunks: u64 = old
            .footer()
            .tables
            .iter()
            .map(|t| t.chunk_counts.len() as u64)
            .sum();
        assert!(chunks * 4 < 400, "{chunks} chunks: too many for the test");
        let events = diff(&old, &new, "id", 1).unwrap();
        assert_eq!(events.len(), 400);
        for (side, snap) in [("old", &old), ("new", &new)] {
            let reads = chunk_reads(snap);
            assert!(
                reads <= 3 * chunks,
                "{side}: {reads} chunk reads for {chunks} chunks and 400 rows"
            );
        }
        // Every row differs in its title alone.
        assert!(
            events
                .iter()
                .all(|e| matches!(&e.op, EventOp::Update { set, remove }
            if set.len() == 1 && remove.is_empty()))
        );
    }

    /// A few changed rows of many are read at their items (a picked row
    /// writer each side): the events are those of the rows' diff.
    #[test]
    fn a_few_changes_of_many_rows_diff_like_the_rows() {
        use crate::write::build_to_vec;
        let row = |i: usize, title: &str| serde_json::json!({"id": i, "title": format!("{title} {i}"), "labels": [i % 7], "n": i * 3});
        let old: Vec<Value> = (0..400).map(|i| row(i, "t")).collect();
        let mut new = old.clone();
        for i in [3, 150, 151, 399] {
            new[i] = row(i, "edited");
        }
        new[77]["labels"] = serde_json::json!([]);
        new.remove(200);
        new.insert(10, row(1000, "created"));
        let moved = new.remove(300);
        new.insert(5, moved);
        new.push(row(1001, "last"));
        let snap = |rows: &[Value]| {
            let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
            Snapshot::from_bytes(build_to_vec(text.as_bytes(), &Default::default()).unwrap())
                .unwrap()
        };
        let (a, b) = (snap(&old), snap(&new));
        let lines = |es: &[Event]| es.iter().map(Event::to_json).collect::<Vec<_>>();
        let from_snaps = diff(&a, &b, "id", 1).unwrap();
        let from_rows =
            diff_values(&a.to_values().unwrap(), &b.to_values().unwrap(), "id", 1).unwrap();
        assert_eq!(lines(&from_snaps), lines(&from_rows));
        assert!(from_snaps.len() >= 8, "{} events", from_snaps.len());
    }

    /// Keys are found by their JSON text (`1` and `"1"` are two keys), and
    /// the first fault in row order is the one named.
    #[test]
    fn keys_are_indexed_by_their_text_and_faults_named_in_row_order() {
        use serde_json::json;
        let keys =
            |vals: Vec<Option<Value>>| keyed(vals.into_iter().map(Ok), &["id".into()], "new");
        let k = keys(vec![
            Some(json!(1)),
            Some(json!("1")),
            Some(json!(-0.0)),
            Some(json!("é")),
        ])
        .unwrap();
        assert_eq!(k.len(), 4);
        assert_eq!(k.get("1"), Some(0));
        assert_eq!(k.get("\"1\""), Some(1));
        assert_eq!(k.get("-0.0"), Some(2));
        assert_eq!(k.get("\"é\""), Some(3));
        assert_eq!(k.get("2"), None);
        assert!(exact_eq(&k.value(2).unwrap(), &json!(-0.0)));
        assert_eq!(k.value(1).unwrap(), json!("1"));
        let message = |r: Result<Keys>| match r {
            Err(Error::Value { row, message, .. }) => (row, message),
            other => panic!("{:?}", other.map(|k| k.len())),
        };
        // Rows 2 and 5 repeat keys; row 2 is the first to repeat one.
        let dup = keys(
            ["a", "b", "a", "c", "d", "b"]
                .map(|s| Some(json!(s)))
                .to_vec(),
        );
        assert_eq!(
            message(dup),
            (2, "the new rows 0 and 2 have the same key \"a\"".into())
        );
        // A key missing after a repeat: the repeat; before it: the missing key.
        let late = keys(vec![Some(json!(7)), Some(json!(7)), None]);
        assert_eq!(message(late).0, 1);
        let early = keys(vec![Some(json!(7)), Some(json!([1])), Some(json!(7))]);
        assert_eq!(
            message(early),
            (1, "the new row has no string or number key".into())
        );
    }

    #[test]
    fn lis_is_longest_and_increasing() {
        let s = [3, 1, 4, 5, 2, 6, 0];
        let l = lis(&s);
        assert_eq!(l.len(), 4);
        assert!(l.windows(2).all(|w| w[0] < w[1] && s[w[0]] < s[w[1]]));
        assert!(lis(&[]).is_empty());
    }
}
