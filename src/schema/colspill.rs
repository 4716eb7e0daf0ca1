//! Column buffers of a build spilled to temporary files (issue 16).
//!
//! When the column buffers of a [`ColumnsBuilder`](super::ColumnsBuilder)
//! exceed their share of the memory budget (between two rows), every node's
//! buffers are appended to a new file of the spill directory as one
//! *segment* per node and the buffers are emptied. A node's column is then
//! its segments, in order, followed by what its buffers still hold; the
//! writer loads one node at a time ([`ColumnSpill::load`]), so the
//! snapshot is the same as the one of an all-in-memory build.
//!
//! A segment is the node's vectors one after the other, little-endian:
//! `idx:u32*items kinds:u8*items ints:i64* uints:u64* floats:f64*
//! strs:u32* times:(secs:i64 nanos:u32 offset:i16 layout:u8)* lens:u32*`.

use super::idx::Idx;
use super::interner::SpillDir;
use crate::error::{Error, Result};
use crate::timestamp::{Layout, Timestamp};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Bytes of one spilled timestamp.
const TIME_BYTES: u64 = 15;

/// What one segment (or a node's whole spilled part) holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Present items (entries of `idx` and `kinds`).
    pub items: u64,
    /// `Int` payloads.
    pub ints: u64,
    /// `UInt` payloads.
    pub uints: u64,
    /// `Float` payloads.
    pub floats: u64,
    /// `Str` payloads.
    pub strs: u64,
    /// `Time` payloads.
    pub times: u64,
    /// `Array` lengths.
    pub lens: u64,
}

impl Counts {
    /// Add `o`'s counts.
    pub fn add(&mut self, o: &Counts) {
        self.items += o.items;
        self.ints += o.ints;
        self.uints += o.uints;
        self.floats += o.floats;
        self.strs += o.strs;
        self.times += o.times;
        self.lens += o.lens;
    }

    /// Byte offsets in a segment of each vector: idx, kinds, ints, uints,
    /// floats, strs, times, lens, end.
    fn offsets(&self) -> [u64; 9] {
        let sizes = [
            self.items * 4,
            self.items,
            self.ints * 8,
            self.uints * 8,
            self.floats * 8,
            self.strs * 4,
            self.times * TIME_BYTES,
            self.lens * 4,
        ];
        let mut out = [0u64; 9];
        for (k, s) in sizes.iter().enumerate() {
            out[k + 1] = out[k] + s;
        }
        out
    }

    /// Bytes of a segment.
    pub fn bytes(&self) -> u64 {
        self.offsets()[8]
    }
}

/// One node's buffers written at one spill.
#[derive(Clone, Copy, Debug, Default)]
pub struct Segment {
    /// Index of the file in [`ColumnSpill`].
    pub file: u32,
    /// Byte offset in it.
    pub offset: u64,
    /// What it holds.
    pub n: Counts,
    /// The string run whose provisional ids its strings have (issue 16:
    /// the strings spilled, the column buffers are spilled too, so every
    /// segment's ids are those of one run; the timestamps of a mixed
    /// node turned into strings at the end have ids of the last run too).
    pub epoch: u32,
}

/// String ids read or rewritten at once by [`ColumnSpill::visit_strs`]
/// and [`ColumnSpill::remap_with`].
const STR_PIECE: u64 = 1 << 18;

/// Which vectors [`ColumnSpill::load`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields(u8);

impl Fields {
    /// `idx` and `kinds`.
    pub const ITEMS: Fields = Fields(1);
    /// `strs`.
    pub const STRS: Fields = Fields(2);
    /// Every vector.
    pub const ALL: Fields = Fields(0xff);

    /// Both.
    pub const fn with(self, o: Fields) -> Fields {
        Fields(self.0 | o.0)
    }

    /// Whether `o`'s vectors are among these.
    pub fn has(self, o: Fields) -> bool {
        self.0 & o.0 != 0
    }
}

/// The buffers of one node, as held in memory by the builder.
#[derive(Debug, Default)]
pub struct Buffers {
    /// Item index of every present item.
    pub idx: Idx,
    /// Kind of every present item.
    pub kinds: Vec<u8>,
    /// `Int` payloads.
    pub ints: Vec<i64>,
    /// `UInt` payloads.
    pub uints: Vec<u64>,
    /// `Float` payloads.
    pub floats: Vec<f64>,
    /// `Str` payloads.
    pub strs: Vec<u32>,
    /// `Time` payloads.
    pub times: Vec<Timestamp>,
    /// `Array` lengths.
    pub lens: Vec<u32>,
}

impl Buffers {
    /// Empty every vector, keeping its allocation.
    pub fn clear(&mut self) {
        self.idx.clear();
        self.kinds.clear();
        self.ints.clear();
        self.uints.clear();
        self.floats.clear();
        self.strs.clear();
        self.times.clear();
        self.lens.clear();
    }

    /// What they hold.
    pub fn counts(&self) -> Counts {
        Counts {
            items: self.idx.len() as u64,
            ints: self.ints.len() as u64,
            uints: self.uints.len() as u64,
            floats: self.floats.len() as u64,
            strs: self.strs.len() as u64,
            times: self.times.len() as u64,
            lens: self.lens.len() as u64,
        }
    }
}

/// The files of spilled column segments.
#[derive(Debug)]
pub struct ColumnSpill {
    dir: Arc<SpillDir>,
    files: Vec<(PathBuf, Mutex<File>)>,
    /// Bytes written.
    pub bytes: u64,
}

/// Appends segments to one new file.
pub struct SegmentWriter<'a> {
    spill: &'a mut ColumnSpill,
    epoch: u32,
    file: u32,
    path: PathBuf,
    w: BufWriter<File>,
    pos: u64,
}

impl ColumnSpill {
    /// Spill files in a new directory in `base`.
    pub fn new(base: &Path) -> Result<ColumnSpill> {
        Ok(ColumnSpill {
            dir: Arc::new(SpillDir::new(base)?),
            files: Vec::new(),
            bytes: 0,
        })
    }

    /// Files written.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// A new file to append segments to, whose string ids are those of
    /// string run `epoch`.
    pub fn writer(&mut self, epoch: usize) -> Result<SegmentWriter<'_>> {
        let path = self.dir.path().join(format!("cols-{}", self.files.len()));
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(Some(&path), e))?;
        let file = self.files.len() as u32;
        Ok(SegmentWriter {
            spill: self,
            epoch: epoch as u32,
            file,
            path,
            w: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
        })
    }

    fn read_at(&self, file: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        let (path, f) = &self.files[file as usize];
        let mut f = f.lock().unwrap_or_else(PoisonError::into_inner);
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(buf))
            .map_err(|e| Error::io(Some(path), e))
    }

    fn write_at(&self, file: u32, offset: u64, buf: &[u8]) -> Result<()> {
        let (path, f) = &self.files[file as usize];
        let mut f = f.lock().unwrap_or_else(PoisonError::into_inner);
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.write_all(buf))
            .map_err(|e| Error::io(Some(path), e))
    }

    /// Append the `fields` of `segs`, in order, to `out`.
    pub fn load(&self, segs: &[Segment], fields: Fields, out: &mut Buffers) -> Result<()> {
        let mut raw = Vec::new();
        for s in segs {
            let o = s.n.offsets();
            // One read per segment: the wanted vectors lie between these.
            let (lo, hi) = if fields == Fields::ITEMS {
                (o[0], o[2])
            } else if fields == Fields::STRS {
                (o[5], o[6])
            } else if fields == Fields::ITEMS.with(Fields::STRS) {
                (o[0], o[6])
            } else {
                (o[0], o[8])
            };
            raw.clear();
            raw.resize((hi - lo) as usize, 0);
            self.read_at(s.file, s.offset + lo, &mut raw)?;
            let part = |k: usize| &raw[(o[k] - lo) as usize..(o[k + 1] - lo) as usize];
            if fields.has(Fields::ITEMS) {
                out.idx.extend(
                    part(0)
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
                );
                out.kinds.extend_from_slice(part(1));
            }
            if fields == Fields::ALL {
                out.ints.extend(
                    part(2)
                        .chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))),
                );
                out.uints.extend(
                    part(3)
                        .chunks_exact(8)
                        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
                );
                out.floats.extend(
                    part(4)
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))),
                );
            }
            if fields.has(Fields::STRS) {
                out.strs.extend(
                    part(5)
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
                );
            }
            if fields == Fields::ALL {
                for c in part(6).chunks_exact(TIME_BYTES as usize) {
                    out.times.push(Timestamp {
                        secs: i64::from_le_bytes(c[0..8].try_into().expect("8 bytes")),
                        nanos: u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")),
                        offset_minutes: i16::from_le_bytes(c[12..14].try_into().expect("2 bytes")),
                        layout: Layout::from_byte(c[14]).ok_or_else(|| {
                            Error::Invalid("a spilled timestamp has a bad layout byte".into())
                        })?,
                    });
                }
                out.lens.extend(
                    part(7)
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
                );
            }
        }
        Ok(())
    }

    /// Call `f` with the string ids of `seg`, a piece at a time.
    pub fn visit_strs(&self, seg: &Segment, mut f: impl FnMut(&[u32])) -> Result<()> {
        let o = seg.n.offsets();
        let mut raw = Vec::new();
        let mut ids = Vec::new();
        let mut at = 0;
        while at < seg.n.strs {
            let k = STR_PIECE.min(seg.n.strs - at);
            raw.resize((k * 4) as usize, 0);
            self.read_at(seg.file, seg.offset + o[5] + at * 4, &mut raw)?;
            ids.clear();
            ids.extend(
                raw.chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
            );
            f(&ids);
            at += k;
        }
        Ok(())
    }

    /// Replace every string id `id` of `seg` with `f(id)`, a piece at a time.
    pub fn remap_with(&self, seg: &Segment, mut f: impl FnMut(u32) -> Result<u32>) -> Result<()> {
        let o = seg.n.offsets();
        let mut raw = Vec::new();
        let mut at = 0;
        while at < seg.n.strs {
            let k = STR_PIECE.min(seg.n.strs - at);
            raw.resize((k * 4) as usize, 0);
            let pos = seg.offset + o[5] + at * 4;
            self.read_at(seg.file, pos, &mut raw)?;
            for c in raw.chunks_exact_mut(4) {
                let id = u32::from_le_bytes((&*c).try_into().expect("4 bytes"));
                c.copy_from_slice(&f(id)?.to_le_bytes());
            }
            self.write_at(seg.file, pos, &raw)?;
            at += k;
        }
        Ok(())
    }

    /// Replace every string id `id` of `segs` with `map[id]`.
    pub fn remap_strs(&self, segs: &[Segment], map: &[u32]) -> Result<()> {
        for s in segs {
            self.remap_with(s, |id| {
                map.get(id as usize).copied().ok_or_else(|| {
                    Error::Invalid(format!("a spilled string id {id} is past the id map"))
                })
            })?;
        }
        Ok(())
    }
}

impl SegmentWriter<'_> {
    /// The spill (to read segments of the files written before).
    pub fn spill(&self) -> &ColumnSpill {
        self.spill
    }

    /// Append `b` as one segment.
    pub fn push(&mut self, b: &Buffers) -> Result<Segment> {
        let n = b.counts();
        let path = &self.path;
        let io = |e| Error::io(Some(path), e);
        let w = &mut self.w;
        let mut put = |bytes: &[u8]| w.write_all(bytes).map_err(io);
        for v in b.idx.iter() {
            put(&v.to_le_bytes())?;
        }
        put(&b.kinds)?;
        for v in &b.ints {
            put(&v.to_le_bytes())?;
        }
        for v in &b.uints {
            put(&v.to_le_bytes())?;
        }
        for v in &b.floats {
            put(&v.to_le_bytes())?;
        }
        for v in &b.strs {
            put(&v.to_le_bytes())?;
        }
        for t in &b.times {
            let mut c = [0u8; TIME_BYTES as usize];
            c[0..8].copy_from_slice(&t.secs.to_le_bytes());
            c[8..12].copy_from_slice(&t.nanos.to_le_bytes());
            c[12..14].copy_from_slice(&t.offset_minutes.to_le_bytes());
            c[14] = t.layout.to_byte();
            put(&c)?;
        }
        for v in &b.lens {
            put(&v.to_le_bytes())?;
        }
        let seg = Segment {
            file: self.file,
            offset: self.pos,
            n,
            epoch: self.epoch,
        };
        self.pos += n.bytes();
        Ok(seg)
    }

    /// Flush the file; its segments can be read from now on.
    pub fn finish(self) -> Result<()> {
        let f = self
            .w
            .into_inner()
            .map_err(|e| Error::io(Some(&self.path), e.into_error()))?;
        self.spill.bytes += self.pos;
        self.spill.files.push((self.path, Mutex::new(f)));
        Ok(())
    }
}
