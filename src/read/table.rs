//! The handle on one string table of an open snapshot: lookups by id, by
//! value and by prefix. Chunks are fetched and decoded on demand through the
//! snapshot's shared cache; the decoding itself is `crate::strings::reader`.

use super::Snapshot;
use crate::error::{Error, Result};
use crate::format::TableMeta;
use crate::strings::Chunk;
use std::sync::Arc;

/// A handle on one string table of an open snapshot. Chunks are decoded on
/// demand and cached by the snapshot. It owns a clone of the snapshot (a
/// cheap, shared handle), so it can be kept, stored and sent between threads.
#[derive(Clone, Debug)]
pub struct StringTable {
    pub(crate) snap: Snapshot,
    pub(crate) index: u32,
}

impl StringTable {
    /// The table's footer entry.
    pub fn meta(&self) -> &TableMeta {
        &self.snap.footer().tables[self.index as usize]
    }

    /// The table's index in the footer.
    pub fn meta_index(&self) -> u32 {
        self.index
    }

    /// Number of strings.
    pub fn len(&self) -> u64 {
        self.meta().n_strings
    }

    /// True when the table has no strings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.meta().chunk_counts.len()
    }

    /// First id of every chunk, plus the total at the end.
    pub fn chunk_starts(&self) -> &[u64] {
        self.snap.chunk_starts(self.index)
    }

    /// Chunk holding `id` and the position inside it.
    pub fn locate(&self, id: u32) -> Result<(usize, usize)> {
        let starts = self.chunk_starts();
        if id as u64 >= self.len() {
            return Err(Error::NotFound {
                what: "string id",
                name: format!("{id} (table {} has {} strings)", self.index, self.len()),
            });
        }
        let k = starts.partition_point(|&s| s <= id as u64) - 1;
        Ok((k, (id as u64 - starts[k]) as usize))
    }

    /// Decode (or fetch from cache) chunk `k`.
    pub fn chunk(&self, k: usize) -> Result<Arc<Chunk>> {
        self.snap.string_chunk(self.index, k)
    }

    /// The string with id `id`; decodes only the chunk that holds it.
    pub fn get(&self, id: u32) -> Result<String> {
        let (k, i) = self.locate(id)?;
        Ok(self.chunk(k)?.get(i).to_string())
    }

    /// Call `f` with the string `id` without copying it.
    pub fn with<T>(&self, id: u32, f: impl FnOnce(&str) -> T) -> Result<T> {
        let (k, i) = self.locate(id)?;
        Ok(f(self.chunk(k)?.get(i)))
    }

    /// True when the table stores its strings in row order (table flag
    /// bit 2, SPEC.md 7.6): ids do not order like their strings.
    pub fn row_ordered(&self) -> bool {
        self.meta().flags & crate::format::footer::TABLE_ROW_ORDER != 0
    }

    /// The string order of a row-ordered table (`None` for a sorted one,
    /// whose ids are their ranks). Built on first use by decoding every
    /// chunk of the table, then kept by the snapshot.
    pub fn order(&self) -> Result<Option<Arc<TableOrder>>> {
        if !self.row_ordered() {
            return Ok(None);
        }
        self.snap.table_order(self.index).map(Some)
    }

    /// The rank of string `id`: its position in byte-wise order (the id
    /// itself in a sorted table).
    pub fn rank(&self, id: u32) -> Result<u32> {
        self.locate(id)?;
        Ok(match self.order()? {
            Some(o) => o.ranks[id as usize],
            None => id,
        })
    }

    /// The id of the string of rank `rank` (see [`StringTable::rank`]).
    pub fn id_at(&self, rank: u32) -> Result<u32> {
        if rank as u64 >= self.len() {
            return Err(Error::NotFound {
                what: "string rank",
                name: format!("{rank} (table {} has {} strings)", self.index, self.len()),
            });
        }
        Ok(match self.order()? {
            Some(o) => o.ids[rank as usize],
            None => rank,
        })
    }

    /// `Ok(rank)` when `s` is in the table, else `Err(insertion_point)`:
    /// the rank of the first string greater than `s` (or `len()`). Ranks
    /// are positions in byte-wise order; in a sorted table they are the
    /// ids, and this decodes at most one chunk. A row-ordered table builds
    /// its order first ([`StringTable::order`]). [`StringTable::find_id`]
    /// gives the id.
    pub fn find(&self, s: &str) -> Result<std::result::Result<u32, u32>> {
        self.finder()?.find(s)
    }

    /// [`StringTable::find`] for many strings: what every lookup shares
    /// (a row-ordered table's order, the chunk separators) is taken from
    /// the snapshot's caches once, not once per string.
    pub fn finder(&self) -> Result<Finder<'_>> {
        let order = self.order()?;
        let seps = match (&order, self.chunk_count()) {
            (None, n) if n > 0 => Some(self.snap.string_index(self.index)?),
            _ => None,
        };
        Ok(Finder {
            table: self,
            order,
            seps,
        })
    }

    /// The id of `s`, when the table holds it.
    pub fn find_id(&self, s: &str) -> Result<Option<u32>> {
        match self.find(s)? {
            Ok(r) => self.id_at(r).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The rank range of every string starting with `prefix` (contiguous,
    /// because ranks order like the strings). In a sorted table the ranks
    /// are ids and this decodes at most two chunks.
    pub fn prefix_range(&self, prefix: &str) -> Result<std::ops::Range<u32>> {
        let lo = match self.find(prefix)? {
            Ok(i) | Err(i) => i,
        };
        // The first string not starting with `prefix` is the insertion point
        // of the smallest string greater than every extension of prefix.
        let hi = match successor(prefix) {
            Some(next) => match self.find(&next)? {
                Ok(i) | Err(i) => i,
            },
            None => self.len() as u32,
        };
        Ok(lo..hi.max(lo))
    }
}

/// Lookups by value in one table ([`StringTable::finder`]).
#[derive(Debug)]
pub struct Finder<'t> {
    table: &'t StringTable,
    order: Option<Arc<TableOrder>>,
    seps: Option<Arc<ChunkIndex>>,
}

impl Finder<'_> {
    /// [`StringTable::find`]: `Ok(rank)` when `s` is in the table, else
    /// `Err(insertion_point)`.
    pub fn find(&self, s: &str) -> Result<std::result::Result<u32, u32>> {
        let t = self.table;
        if let Some(o) = &self.order {
            return o.find(t, s);
        }
        let Some(seps) = &self.seps else {
            return Ok(Err(0));
        };
        let k = seps.chunk_of(s.as_bytes());
        let base = t.chunk_starts()[k] as u32;
        Ok(match t.chunk(k)?.search(s) {
            Ok(i) => Ok(base + i as u32),
            Err(i) => Err(base + i as u32),
        })
    }
}

/// A sorted table's chunk index: the first string of every chunk but
/// the first (the separators), and the first 8 bytes of each as one
/// integer, so that finding a string's chunk compares integers held
/// together and reads a separator only among those with its 8 bytes.
#[derive(Debug)]
pub(crate) struct ChunkIndex {
    pub(crate) seps: Vec<Box<[u8]>>,
    keys: Vec<u64>,
}

impl ChunkIndex {
    pub(crate) fn new(seps: Vec<Box<[u8]>>) -> ChunkIndex {
        let keys = seps.iter().map(|s| prefix_key(s)).collect();
        ChunkIndex { seps, keys }
    }

    /// The chunk that holds `s` or would: the number of separators at or
    /// below it.
    pub(crate) fn chunk_of(&self, s: &[u8]) -> usize {
        // `prefix_key(a) < prefix_key(b)` implies `a < b`: separators
        // with a smaller key are below `s`, with a larger one above it.
        let q = prefix_key(s);
        let lo = self.keys.partition_point(|&k| k < q);
        let hi = lo + self.keys[lo..].partition_point(|&k| k == q);
        lo + self.seps[lo..hi].partition_point(|sep| sep.as_ref() <= s)
    }
}

/// The byte-wise order of a row-ordered table's strings: the rank of each
/// id, the id of each rank, and the first 8 bytes of each string by rank
/// (so that `find` decodes strings only to break ties between equal
/// prefixes).
#[derive(Debug)]
pub struct TableOrder {
    ranks: Vec<u32>,
    ids: Vec<u32>,
    keys: Vec<u64>,
}

/// The first 8 bytes of `s`, big-endian, zero-padded: `key(a) < key(b)`
/// implies `a < b`.
fn prefix_key(s: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s[..n]);
    u64::from_be_bytes(b)
}

/// Bytes of each string a rank order of a large table holds while it
/// sorts (see [`TableOrder::build`]).
const ORDER_PREFIX: usize = 256;

/// Bytes of text past which a rank order holds prefixes of its strings
/// rather than the strings.
const ORDER_WHOLE: usize = 128 << 20;

impl TableOrder {
    /// Decode every chunk of `t` and sort its ids by their strings; a
    /// table holding a string twice is corrupt. Past [`ORDER_WHOLE`]
    /// bytes of text, only the first [`ORDER_PREFIX`] bytes of each string
    /// are held while sorting (200,000 bodies of 1.53 GB of text held whole
    /// peaked at 2.69 GB), except for strings whose prefix repeats (a
    /// template), held whole within as many bytes more; cut strings whose
    /// prefixes are equal are then ordered by a second pass over the chunks
    /// that hold them, which keeps them alone.
    pub(crate) fn build(t: &StringTable) -> Result<TableOrder> {
        Self::build_with(t, ORDER_PREFIX, ORDER_WHOLE)
    }

    /// Call `f` with each id of `t` and its string, in id order, decoding
    /// the chunks on the snapshot's decode threads; the strings must be
    /// as many as the footer declares.
    fn each_string(t: &StringTable, f: impl FnMut(u32, &[u8])) -> Result<()> {
        Self::each_string_in(t, None, f)
    }

    /// [`TableOrder::each_string`], of the chunks `only` names (all when
    /// `None`; the count is then checked by the caller's earlier pass).
    fn each_string_in(
        t: &StringTable,
        only: Option<&[bool]>,
        mut f: impl FnMut(u32, &[u8]),
    ) -> Result<()> {
        let n = t.len() as usize;
        // The chunks decode on the snapshot's decode threads, a batch of
        // as many at a time (a PPMd chunk decodes at about 10 MB/s), and
        // are visited in order.
        let ks: Vec<usize> = (0..t.chunk_count())
            .filter(|&k| only.is_none_or(|o| o[k]))
            .collect();
        let starts = t.chunk_starts();
        let pass = t.snap.chunk_pass();
        let read = |k: usize| pass.chunk(t.index, k);
        #[cfg(not(target_arch = "wasm32"))]
        let threads = t.snap.options().decode_threads.max(1);
        #[cfg(target_arch = "wasm32")]
        let threads = 1;
        let mut id = 0usize;
        for batch in ks.chunks(threads) {
            #[cfg(not(target_arch = "wasm32"))]
            let got = crate::source::parallel_map(batch, threads, |&k| read(k))?;
            #[cfg(target_arch = "wasm32")]
            let got = batch.iter().map(|&k| read(k)).collect::<Result<Vec<_>>>()?;
            for (&k, c) in batch.iter().zip(got) {
                if only.is_some() {
                    id = starts[k] as usize;
                }
                for i in 0..c.len() {
                    // Past the declared count the ids would not fit: the
                    // count check below refuses the table.
                    if id < n {
                        f(id as u32, c.get(i).as_bytes());
                    }
                    id += 1;
                }
            }
        }
        if only.is_none() && id != n {
            return Err(Error::corrupt(
                format!("string table {}", t.index),
                0,
                format!("{id} strings decoded, {n} declared"),
            ));
        }
        Ok(())
    }

    /// [`TableOrder::build`] holding strings whole up to `whole` bytes of
    /// text, past it `prefix` bytes (8 at least: the keys are the first 8)
    /// of each, except that strings whose prefix another string has are
    /// held whole while that costs at most `whole` bytes more (a body
    /// template: their order is then known without a second pass).
    fn build_with(t: &StringTable, prefix: usize, whole: usize) -> Result<TableOrder> {
        let prefix = prefix.max(8);
        let n = t.len() as usize;
        let dup = |a: u32, b: u32| {
            Error::corrupt(
                format!("string table {}", t.index),
                0,
                format!("strings {a} and {b} are equal (a table holds each string once)"),
            )
        };
        let hasher = std::hash::RandomState::new();
        let hash = |p: &[u8]| std::hash::BuildHasher::hash_one(&hasher, p);
        // What is held of every string (the whole of it, or its first
        // `prefix` bytes), whether it is longer than `prefix` and whether
        // it was cut.
        let mut data: Vec<u8> = Vec::new();
        // The count is the footer's claim, checked as the chunks decode:
        // reserved only up to a million, grown past it.
        let mut ends: Vec<usize> = Vec::with_capacity(n.min(1 << 20));
        let mut long: Vec<bool> = Vec::with_capacity(n.min(1 << 20));
        let mut cut: Vec<bool> = Vec::with_capacity(n.min(1 << 20));
        let mut prefixes_mode = false;
        // Prefixes of the long strings seen since the switch to prefixes.
        let mut seen: std::collections::HashSet<u64> = Default::default();
        // Bytes held past the prefixes of the strings held whole since.
        let mut extra = 0usize;
        Self::each_string(t, |_, s| {
            let is_long = s.len() > prefix;
            let held = if !prefixes_mode || !is_long {
                s
            } else if !seen.insert(hash(&s[..prefix])) && extra + s.len() - prefix <= whole {
                extra += s.len() - prefix;
                s
            } else {
                &s[..prefix]
            };
            data.extend_from_slice(held);
            ends.push(data.len());
            long.push(is_long);
            cut.push(held.len() < s.len());
            if !prefixes_mode && data.len() > whole {
                // Too much text: keep the prefixes of what is held, and
                // the whole of the strings whose prefix repeats.
                prefixes_mode = true;
                let span = |i: usize| (if i == 0 { 0 } else { ends[i - 1] })..ends[i];
                let mut times: std::collections::HashMap<u64, u32> = Default::default();
                for i in (0..ends.len()).filter(|&i| long[i]) {
                    *times.entry(hash(&data[span(i)][..prefix])).or_default() += 1;
                }
                let mut short = Vec::new();
                let mut new_ends = Vec::with_capacity(ends.len());
                for i in 0..ends.len() {
                    let str = &data[span(i)];
                    let keep_whole = !long[i] || {
                        let h = hash(&str[..prefix]);
                        seen.insert(h);
                        times[&h] > 1 && extra + str.len() - prefix <= whole
                    };
                    if keep_whole {
                        extra += str.len().saturating_sub(prefix);
                        short.extend_from_slice(str);
                    } else {
                        short.extend_from_slice(&str[..prefix]);
                        cut[i] = true;
                    }
                    new_ends.push(short.len());
                }
                data = short;
                ends = new_ends;
            }
        })?;
        let at = |id: u32| -> &[u8] {
            let i = id as usize;
            &data[if i == 0 { 0 } else { ends[i - 1] }..ends[i]]
        };
        let head = |id: u32| -> &[u8] {
            let s = at(id);
            &s[..s.len().min(prefix)]
        };
        // By prefix, a string that ends within it first: a total order
        // whatever is held; runs of long strings of one prefix are then
        // ordered by the rest.
        let cmp = |a: u32, b: u32| {
            head(a)
                .cmp(head(b))
                .then(long[a as usize].cmp(&long[b as usize]))
        };
        let mut ids: Vec<u32> = (0..n as u32).collect();
        ids.sort_unstable_by(|&a, &b| cmp(a, b));
        // Runs of long strings of one prefix with a cut one among them,
        // by their range in `ids`: ordered by a second pass.
        let mut ties: Vec<std::ops::Range<usize>> = Vec::new();
        let mut r = 0;
        while r + 1 < ids.len() {
            let (a, b) = (ids[r], ids[r + 1]);
            if cmp(a, b) != std::cmp::Ordering::Equal {
                r += 1;
                continue;
            }
            if !long[a as usize] {
                return Err(dup(a, b));
            }
            let mut e = r + 2;
            while e < ids.len() && cmp(a, ids[e]) == std::cmp::Ordering::Equal {
                e += 1;
            }
            let group = &mut ids[r..e];
            if group.iter().any(|&id| cut[id as usize]) {
                ties.push(r..e);
            } else {
                group.sort_unstable_by(|&x, &y| at(x).cmp(at(y)));
                if let Some(w) = group.windows(2).find(|w| at(w[0]) == at(w[1])) {
                    return Err(dup(w[0], w[1]));
                }
            }
            r = e;
        }
        let keys: Vec<u64> = ids.iter().map(|&id| prefix_key(at(id))).collect();
        if !ties.is_empty() {
            // The cut strings of those runs, in full, from the chunks that
            // hold them alone.
            let starts = t.chunk_starts();
            let mut wanted = vec![false; n];
            let mut chunks = vec![false; t.chunk_count()];
            for g in &ties {
                for &id in &ids[g.clone()] {
                    if cut[id as usize] {
                        wanted[id as usize] = true;
                        chunks[starts.partition_point(|&s| s <= u64::from(id)) - 1] = true;
                    }
                }
            }
            let mut full: std::collections::HashMap<u32, Box<[u8]>> = Default::default();
            Self::each_string_in(t, Some(&chunks), |id, s| {
                if wanted[id as usize] {
                    full.insert(id, s.into());
                }
            })?;
            let text = |id: &u32| -> &[u8] { full.get(id).map_or_else(|| at(*id), |b| &b[..]) };
            for g in ties {
                let group = &mut ids[g];
                group.sort_unstable_by(|a, b| text(a).cmp(text(b)));
                if let Some(w) = group.windows(2).find(|w| text(&w[0]) == text(&w[1])) {
                    return Err(dup(w[0], w[1]));
                }
            }
        }
        drop(data);
        drop(ends);
        let mut ranks = vec![0u32; n];
        for (r, &id) in ids.iter().enumerate() {
            ranks[id as usize] = r as u32;
        }
        Ok(TableOrder { ranks, ids, keys })
    }

    /// Rank of each id.
    pub fn ranks(&self) -> &[u32] {
        &self.ranks
    }

    /// Id of each rank.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// `Ok(rank)` of `s` in table `t` (whose order this is), else
    /// `Err(rank of the first greater string)`.
    fn find(&self, t: &StringTable, s: &str) -> Result<std::result::Result<u32, u32>> {
        let k = prefix_key(s.as_bytes());
        // Ranks whose key is below `k` hold smaller strings, above it greater.
        let mut lo = self.keys.partition_point(|&x| x < k);
        let mut hi = lo + self.keys[lo..].partition_point(|&x| x == k);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match t.with(self.ids[mid], |m| m.as_bytes().cmp(s.as_bytes()))? {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid as u32)),
            }
        }
        Ok(Err(lo as u32))
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.ranks.len() * 4 + self.ids.len() * 4 + self.keys.len() * 8
    }
}

/// The smallest string greater than every string that starts with `p`, if any:
/// increment the last char that can be incremented, dropping what follows.
fn successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(c) = chars.pop() {
        let mut next = c as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(n) = char::from_u32(next) {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{Just, any};

    /// A rank order that holds a few bytes of each string while sorting
    /// (ties of long strings broken by a second pass) equals one that
    /// holds every string whole, and both refuse a table holding a
    /// string twice.
    #[cfg(feature = "write")]
    #[test]
    fn rank_order_from_prefixes_equals_the_whole_strings_order() {
        // Bodies sharing prefixes of every length, one the prefix of another.
        let mut bodies: Vec<String> = Vec::new();
        for i in 0..60u32 {
            let stem = "template: steps to reproduce ".repeat((i % 4) as usize);
            bodies.push(format!("{stem}{}", (i * 37) % 60));
            bodies.push(format!(
                "{stem}{}{}",
                (i * 37) % 60,
                "x".repeat(i as usize % 3)
            ));
        }
        bodies.sort();
        bodies.dedup();
        let mut shuffled = bodies.clone();
        shuffled.sort_by_key(|b| {
            b.bytes()
                .fold(7u32, |h, c| h.wrapping_mul(31).wrapping_add(c as u32))
        });
        let ndjson: String = shuffled
            .iter()
            .map(|b| format!("{}\n", serde_json::json!({ "body": b })))
            .collect();
        let opts = crate::BuildOptions {
            long_text_min_avg: 1,
            long_chunk_size: 200,
            ..Default::default()
        };
        let snap =
            crate::Snapshot::from_bytes(crate::build_to_vec(ndjson.as_bytes(), &opts).unwrap())
                .unwrap();
        let t = (0..snap.footer().tables.len() as u32)
            .map(|i| snap.table(i).unwrap())
            .find(|t| t.row_ordered())
            .expect("a row-ordered long-text table");
        assert!(t.chunk_count() > 3, "{} chunks", t.chunk_count());
        let whole = TableOrder::build_with(&t, 8, usize::MAX).unwrap();
        // Prefixes from the start, or once 3,000 bytes are held.
        // Past few bytes, held strings that share a prefix are kept whole
        // within as many bytes more, the rest cut and ordered by a second
        // pass over their chunks alone.
        for (prefix, past) in [
            (8, 0),
            (10, 0),
            (40, 0),
            (300, 0),
            (8, 3000),
            (40, 3000),
            (8, 200),
            (30, 500),
            (40, 1500),
            (60, 6000),
        ] {
            let o = TableOrder::build_with(&t, prefix, past).unwrap();
            assert_eq!(o.ids, whole.ids, "prefix {prefix} past {past}");
            assert_eq!(o.ranks, whole.ranks, "prefix {prefix} past {past}");
            assert_eq!(o.keys, whole.keys, "prefix {prefix} past {past}");
        }
        let sorted: Vec<String> = whole.ids.iter().map(|&id| t.get(id).unwrap()).collect();
        assert_eq!(sorted, bodies);
    }

    #[test]
    fn successor_orders_after_all_extensions() {
        for p in ["a", "ab", "a\u{10FFFF}", "\u{D7FF}", "zz"] {
            let s = successor(p).unwrap();
            assert!(s.as_str() > p);
            assert!(s.as_str() > format!("{p}\u{10FFFF}\u{10FFFF}").as_str());
        }
        assert_eq!(successor("\u{10FFFF}"), None);
    }

    proptest::proptest! {
        /// The chunk index answers as a search over the separators alone,
        /// with separators and strings that share 8-byte prefixes, end
        /// inside them or hold zero bytes.
        #[test]
        fn chunk_of_is_the_search_over_separators(
            mut seps in proptest::collection::vec(
                proptest::collection::vec(proptest::prop_oneof![Just(0u8), Just(b'a'), Just(b'b'), any::<u8>()], 0..12),
                0..40,
            ),
            probes in proptest::collection::vec(
                proptest::collection::vec(proptest::prop_oneof![Just(0u8), Just(b'a'), Just(b'b'), any::<u8>()], 0..12),
                1..40,
            ),
        ) {
            seps.sort();
            seps.dedup();
            let seps: Vec<Box<[u8]>> = seps.into_iter().map(Vec::into_boxed_slice).collect();
            let idx = ChunkIndex::new(seps.clone());
            for p in probes.iter().chain(seps.iter().map(|s| s.to_vec()).collect::<Vec<_>>().iter()) {
                let want = seps.partition_point(|s| s.as_ref() <= p.as_slice());
                proptest::prop_assert_eq!(idx.chunk_of(p), want);
            }
        }
    }
}
