//! Full integrity check: every checksum, every structural invariant.

use super::Snapshot;
use super::node::{Decoder, Kinds, NodeData};
use crate::error::{Error, Result};
use crate::format::{self, Role};
use crate::model::{Kind, NodeName};
use std::collections::HashSet;
use std::sync::Arc;

/// What `verify` checked.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Sections whose checksum and frame were checked and that decompressed.
    pub sections: usize,
    /// Bytes covered by checksums (sections, footer, trailer).
    pub bytes_checked: u64,
    /// Nodes decoded and checked.
    pub columns: usize,
    /// Rows.
    pub rows: u64,
    /// Strings checked for order and uniqueness.
    pub strings: u64,
    /// String chunks decoded.
    pub chunks: usize,
    /// One line per family of checks that passed.
    pub checks: Vec<String>,
}

impl Snapshot {
    /// Check every checksum and structural invariant. Returns the first
    /// problem found, naming the section or column and the byte offset.
    pub fn verify(&self) -> Result<VerifyReport> {
        // The graph of mapped streams first: a cycle or an over-deep chain
        // is named as such, before any column is decoded.
        super::node::check_mapped_chains(self)?;
        let mut rep = VerifyReport {
            rows: self.rows(),
            ..Default::default()
        };
        let f = self.footer();
        rep.bytes_checked += (f.sections.last().map_or(format::HEADER_LEN as u64, |_| 0))
            + (self.file_len() - self.footer_offset());

        // Sections: frames, checksums, padding, decompression, single use.
        // Each is checked apart, on the decode threads; the first problem in
        // section order is the one reported, whatever the thread count.
        let mut used = vec![0u32; f.sections.len()];
        let threads = self
            .inner
            .opts
            .decode_threads
            .clamp(1, f.sections.len().max(1));
        if threads <= 1 {
            for i in 0..f.sections.len() {
                self.verify_section(i)?;
            }
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let failed = std::sync::atomic::AtomicUsize::new(usize::MAX);
            let first: Option<(usize, Error)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            let mut err: Option<(usize, Error)> = None;
                            loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                // Past the end, or past a failed section.
                                if i >= f.sections.len()
                                    || i > failed.load(std::sync::atomic::Ordering::Relaxed)
                                {
                                    return err;
                                }
                                if let Err(e) = self.verify_section(i) {
                                    failed.fetch_min(i, std::sync::atomic::Ordering::Relaxed);
                                    err = Some((i, e));
                                    return err;
                                }
                            }
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().ok().flatten())
                    .min_by_key(|(i, _)| *i)
            });
            if let Some((_, e)) = first {
                return Err(e);
            }
        }
        for e in &f.sections {
            rep.sections += 1;
            if !e.inline {
                // Inline sections (version 3) are footer bytes, counted.
                rep.bytes_checked += e.end() - e.offset;
            }
        }
        rep.bytes_checked += format::HEADER_LEN as u64;
        rep.checks.push(if self.header().version == format::VERSION_1 {
            format!(
                "{} sections: frame headers match the directory, crc32c, zero padding, decompression",
                rep.sections
            )
        } else {
            let inline = f.sections.iter().filter(|e| e.inline).count();
            format!(
                "{} sections: tile the file, crc32c, decompression{}",
                rep.sections,
                if inline > 0 {
                    format!(" ({inline} inline in the footer, covered by its crc32c)")
                } else {
                    String::new()
                }
            )
        });

        // Nodes. Each is decoded with its own decoder (within the budget)
        // and dropped once checked; only kinds and element totals are kept
        // for the children's checks (sparse kinds stay small).
        let mut keys: HashSet<(u32, &str)> = HashSet::new();
        // Kinds are kept for nodes that have children only: a dense node of
        // millions of items holds 5 bytes an item, and a leaf's are never
        // looked at again.
        let mut has_children = vec![false; f.nodes.len()];
        for m in f.nodes.iter().skip(1) {
            if let Some(p) = has_children.get_mut(m.parent as usize) {
                *p = true;
            }
        }
        let mut kinds: Vec<Option<Arc<Kinds>>> = Vec::with_capacity(f.nodes.len());
        let mut elements: Vec<u64> = Vec::with_capacity(f.nodes.len());
        for (i, m) in f.nodes.iter().enumerate() {
            let path = self.path(i as u32).to_string();
            let corrupt = |d: String| Error::corrupt(format!("column `{path}`"), 0, d);
            if let NodeName::Key(k) = &m.name
                && !keys.insert((m.parent, k.as_str()))
            {
                return Err(corrupt("duplicate key under one parent".into()));
            }
            for s in m.streams.iter().flatten() {
                used[*s as usize] += 1;
            }
            let d = Decoder::new(self, None).node(i as u32)?;
            if i > 0 {
                let p = kinds[m.parent as usize]
                    .as_ref()
                    .ok_or_else(|| corrupt("its parent comes after it".into()))?;
                match m.name {
                    NodeName::Elem => {
                        let total = elements[m.parent as usize];
                        if total != m.items {
                            return Err(corrupt(format!(
                                "{} elements, but the parent's arrays hold {total}",
                                m.items
                            )));
                        }
                    }
                    _ if matches!(*d.kinds, Kinds::Const(Kind::Absent, _))
                        || matches!(**p, Kinds::Const(Kind::Object, _)) => {}
                    _ => {
                        let mut h = 0;
                        for it in d.kinds.present() {
                            let pk = p.get_hinted(it, &mut h);
                            if pk != Kind::Object {
                                return Err(corrupt(format!(
                                    "item {it} is present but its parent is a {}",
                                    pk.name()
                                )));
                            }
                        }
                    }
                }
            }
            if m.count(Kind::Array) > 0
                && !f
                    .nodes
                    .iter()
                    .any(|n| n.parent == i as u32 && n.name == NodeName::Elem)
                && d.list_starts.last() != Some(&0)
            {
                return Err(corrupt("arrays with elements but no element column".into()));
            }
            check_stats(m, &d).map_err(corrupt)?;
            kinds.push(has_children[i].then(|| d.kinds.clone()));
            elements.push(d.list_starts.last().copied().map_or(0, u64::from));
            rep.columns += 1;
        }
        rep.columns -= 1;
        rep.checks.push(format!(
            "{} columns: kind counts, value counts, ids in range, nesting consistent, statistics exact",
            rep.columns
        ));

        // String tables.
        for (t, meta) in f.tables.iter().enumerate() {
            let table = self.table(t as u32)?;
            for k in 0..meta.chunk_counts.len() {
                used[meta.first_chunk as usize + k] += 1;
            }
            if let Some(s) = meta.index_section {
                used[s as usize] += 1;
            }
            if let Some(s) = meta.dict_section {
                used[s as usize] += 1;
            }
            if table.row_ordered() {
                // Row order: every chunk decodes, and no string is there
                // twice. Checked on hashes (12 bytes a string, where
                // building the order would hold every string: the long text
                // of ten million rows is gigabytes), comparing the strings
                // themselves only where two hashes are equal.
                let n_chunks = meta.chunk_counts.len();
                rep.strings += distinct_row_ordered(&table, t, n_chunks)?;
                rep.chunks += n_chunks;
                continue;
            }
            let seps = self.string_index(t as u32)?;
            let mut prev: Option<String> = None;
            for k in 0..meta.chunk_counts.len() {
                let c = table.chunk(k)?;
                rep.chunks += 1;
                if k > 0 {
                    let sep = &seps.seps[k - 1];
                    let last = prev.as_deref().unwrap_or("");
                    if !(sep.as_ref() > last.as_bytes() && sep.as_ref() <= c.get(0).as_bytes()) {
                        return Err(Error::corrupt(
                            format!("string table {t} index"),
                            0,
                            format!(
                                "separator {} does not split chunks {} and {k}",
                                k - 1,
                                k - 1
                            ),
                        ));
                    }
                }
                for i in 0..c.len() {
                    let s = c.get(i);
                    if let Some(p) = &prev
                        && p.as_bytes() >= s.as_bytes()
                    {
                        return Err(Error::corrupt(
                            format!("string table {t} chunk {k}"),
                            f.sections[meta.first_chunk as usize + k].offset,
                            format!(
                                "string {i} is not greater than the one before it (table must be sorted and unique)"
                            ),
                        ));
                    }
                    prev = Some(s.to_string());
                    rep.strings += 1;
                }
            }
        }
        rep.checks.push(format!(
            "{} strings in {} chunks: valid UTF-8, strictly increasing (row-ordered tables: distinct), separators exact",
            rep.strings, rep.chunks
        ));
        if let Some(i) = used.iter().position(|&u| u != 1) {
            return Err(Error::corrupt(
                format!("section {i}"),
                f.sections[i].offset,
                format!("referenced {} times (must be exactly once)", used[i]),
            ));
        }
        rep.checks
            .push("every section referenced exactly once".into());
        rep.checks
            .push("header, trailer and footer checksums".into());
        Ok(rep)
    }

    /// Check section `i`: its checksum and decompression (both made when
    /// it is read), its decoded length and, in version 1, its padding.
    fn verify_section(&self, i: usize) -> Result<()> {
        let e = &self.footer().sections[i];
        let raw = self.section(i as u32)?;
        if raw.len() != e.raw_len as usize {
            return Err(Error::corrupt(
                format!("section {i}"),
                e.offset,
                format!("decoded to {} bytes, expected {}", raw.len(), e.raw_len),
            ));
        }
        // Version 1: the padding after the frame and payload (the frame
        // itself was compared with the entry when it was read).
        let end = e.range().end;
        let pad = e.end() - end;
        if pad > 0 && self.read_range(end..end + pad)?.iter().any(|&x| x != 0) {
            return Err(Error::corrupt(
                format!("section {i} padding"),
                end,
                "padding bytes must be zero",
            ));
        }
        Ok(())
    }

    /// Where the stored footer starts.
    pub fn footer_offset(&self) -> u64 {
        self.inner.footer_offset
    }

    /// Check that the snapshot holds exactly the rows of `input` (JSON array
    /// or NDJSON, optionally compressed), as JSON values, with integers
    /// outside `[-2^63, 2^64)` compared by their digits.
    /// Returns the rows compared; a difference is an [`Error::Mismatch`]
    /// naming the row and the first differing path.
    pub fn verify_against(&self, input: impl std::io::Read) -> Result<u64> {
        let mut emitter = super::export::Emitter::new(self, None)?;
        let mut buf = Vec::new();
        let mut n = 0u64;
        let mark = number_mark();
        crate::schema::input::for_each_row(input, |i, text| {
            if i >= self.rows() {
                return Err(Error::Mismatch {
                    row: i,
                    detail: format!(
                        "the input has more rows than the snapshot's {}",
                        self.rows()
                    ),
                });
            }
            let expected = exact_value(text.as_bytes(), &mark)
                .map_err(|e| Error::Invalid(format!("row {i}: {e}")))?;
            buf.clear();
            emitter.row(i, &mut buf)?;
            let got =
                exact_value(&buf, &mark).map_err(|e| Error::corrupt("row", i, e.to_string()))?;
            if got != expected {
                return Err(Error::Mismatch {
                    row: i,
                    detail: format!(
                        "differs at {}",
                        unmark(&first_difference(&expected, &got), &mark)
                    ),
                });
            }
            n += 1;
            Ok(())
        })?;
        if n != self.rows() {
            return Err(Error::Mismatch {
                row: n,
                detail: format!("the input has {n} rows, the snapshot {}", self.rows()),
            });
        }
        Ok(n)
    }
}

/// Check that row-ordered table `t` (of `n_chunks` chunks) holds no string
/// twice, in memory proportional to its string count, not its bytes: every
/// string's hash (foldhash's quality hasher, seeded at random, so no input
/// can be made to collide on purpose) is sorted with its id, and only ids
/// whose hashes are equal have their strings compared. Returns the strings
/// checked; a repeated string is corrupt, named by its two ids.
fn distinct_row_ordered(table: &super::StringTable, t: usize, n_chunks: usize) -> Result<u64> {
    use std::hash::BuildHasher;
    let state = foldhash::quality::RandomState::default();
    // The count is the footer's claim, checked below: reserved only up to
    // a million, grown past it as the chunks decode.
    let mut hashes: Vec<(u64, u32)> = Vec::with_capacity((table.len() as usize).min(1 << 20));
    for k in 0..n_chunks {
        let c = table.chunk(k)?;
        for i in 0..c.len() {
            let id = hashes.len() as u32;
            hashes.push((state.hash_one(c.get(i).as_bytes()), id));
        }
    }
    if hashes.len() as u64 != table.len() {
        return Err(Error::corrupt(
            format!("string table {t}"),
            0,
            format!("{} strings decoded, {} declared", hashes.len(), table.len()),
        ));
    }
    hashes.sort_unstable();
    let mut start = 0;
    while start < hashes.len() {
        let mut end = start + 1;
        while end < hashes.len() && hashes[end].0 == hashes[start].0 {
            end += 1;
        }
        // A run of equal hashes (almost never more than one string):
        // compare each pair of its strings.
        if end - start > 1 {
            for a in start..end {
                let sa = table.get(hashes[a].1)?;
                for b in &hashes[a + 1..end] {
                    if table.with(b.1, |sb| sb == sa)? {
                        return Err(Error::corrupt(
                            format!("string table {t}"),
                            0,
                            format!(
                                "strings {} and {} are equal (a table holds each string once)",
                                hashes[a].1, b.1
                            ),
                        ));
                    }
                }
            }
        }
        start = end;
    }
    Ok(hashes.len() as u64)
}

/// A mark for [`exact_value`] that no input can hold: U+FDD0 (a
/// noncharacter) and a random tag.
pub(crate) fn number_mark() -> String {
    use std::hash::BuildHasher;
    let tag = foldhash::quality::RandomState::default().hash_one(0u64);
    format!("\u{fdd0}num-{tag:016x}:")
}

/// The row `text` as a JSON value that compares exactly: an integer
/// literal outside `[-2^63, 2^64)` (a `NumText` item, SPEC.md 1.3), which a
/// plain value would hold as its nearest binary64, is the string
/// `"{mark}{literal}"` ([`number_mark`]), so that
/// `123456789012345678901234567890` and `123456789012345678901234567891`
/// differ.
pub(crate) fn exact_value(text: &[u8], mark: &str) -> serde_json::Result<serde_json::Value> {
    match crate::encoding::numtext::mark_texts(text, mark) {
        Some(t) => serde_json::from_slice(&t),
        None => serde_json::from_slice(text),
    }
}

/// `detail` with each `"{mark}{literal}"` of [`exact_value`] written back
/// as the literal.
pub(crate) fn unmark(detail: &str, mark: &str) -> String {
    let quoted = format!("\"{mark}");
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    while let Some(at) = rest.find(&quoted) {
        out.push_str(&rest[..at]);
        let after = &rest[at + quoted.len()..];
        let end = after.find('"').unwrap_or(after.len());
        out.push_str(&after[..end]);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Describe the first place where two rows differ, as a display path
/// (SPEC.md 1.6) with array indexes (`labels[2].name`).
pub fn first_difference(a: &serde_json::Value, b: &serde_json::Value) -> String {
    difference_at(a, b, String::new(), true)
}

/// [`first_difference`] of values at `path` (`top`: the rows themselves).
fn difference_at(a: &serde_json::Value, b: &serde_json::Value, path: String, top: bool) -> String {
    use serde_json::Value;
    let key_path = |k: &str| {
        let mut p = path.clone();
        crate::model::push_key(&mut p, top, k);
        p
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let p = key_path(k);
                match y.get(k) {
                    None => return format!("`{p}` missing"),
                    Some(w) if w != v => return difference_at(v, w, p, false),
                    _ => {}
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) {
                    return format!("`{}` unexpected", key_path(k));
                }
            }
            format!("`{path}`")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return difference_at(v, w, format!("{path}[{i}]"), false);
                }
            }
            format!("`{path}`")
        }
        _ => format!("`{path}`: expected {a}, got {b}"),
    }
}

fn check_stats(m: &crate::format::NodeMeta, d: &NodeData) -> std::result::Result<(), String> {
    fn mm<T: Copy + PartialOrd>(v: &[T]) -> Option<(T, T)> {
        let mut it = v.iter().copied();
        let f = it.next()?;
        Some(it.fold((f, f), |(a, b), x| {
            (if x < a { x } else { a }, if x > b { x } else { b })
        }))
    }
    fn distinct<T: Ord>(mut v: Vec<T>) -> u64 {
        v.sort_unstable();
        v.dedup();
        v.len() as u64
    }
    let st = &m.stats;
    let ok = mm(&d.ints) == st.int
        && mm(&d.uints) == st.uint
        && mm(&d.floats).map(|(a, b)| (a.to_bits(), b.to_bits()))
            == st.float.map(|(a, b)| (a.to_bits(), b.to_bits()))
        && mm(&d.strs) == st.str
        && mm(&d.ts_secs) == st.time;
    if !ok {
        return Err("min/max statistics do not match the values".into());
    }
    let nt = d.ts_secs.len();
    let times: Vec<(i64, u32)> = (0..nt)
        .map(|j| (d.ts_secs[j], d.ts_nanos.get(j).copied().unwrap_or(0)))
        .collect();
    let bools = (m.count(Kind::False) > 0) as u64 + (m.count(Kind::True) > 0) as u64;
    let dist = bools
        + distinct(d.ints.clone())
        + distinct(d.uints.clone())
        + distinct(
            d.floats
                .iter()
                .map(|f| if *f == 0.0 { 0 } else { f.to_bits() })
                .collect(),
        )
        + distinct(d.strs.clone())
        + distinct(times)
        + distinct(d.num_texts.clone());
    if dist != st.distinct {
        return Err(format!(
            "distinct count {} but the values have {dist}",
            st.distinct
        ));
    }
    let _ = Role::Kinds;
    Ok(())
}
