//! Section codecs: none, gzip (flate2), zstd and PPMd (`ppmd-rust`), chosen
//! per section.
//!
//! A codec never makes a section larger: when compression does not save
//! bytes the section is stored raw (`Codec::None`). Decompression output is
//! capped by the raw length declared in the section header, so a hostile
//! file cannot make the reader allocate more than it declares (and the
//! declared length itself is capped by the caller against limits).
//!
//! Backends: compression needs the feature `write` (the C zstd library and
//! flate2). zstd decompression uses the C library when `write` is compiled
//! in, else the pure-Rust `ruzstd` decoder (feature `ruzstd`), which reads
//! the same frames, table dictionaries included (SPEC.md section 7: the
//! dictionaries are in the `ZDICT` format, the frames carry no dictionary
//! id). gzip is always pure Rust (flate2's inflater; the member's header and
//! trailer are read by `gzip.rs`). PPMd (variant H, 7-Zip's `Ppmd7`, for
//! long-text chunks: issue 15) is pure Rust in both directions (`ppmd.rs`).

mod gzip;
mod ppmd;

pub use ppmd::{PPMD_DECODE_MEMORY, PPMD_MAX_MEM, PPMD_MIN_MEM, PPMD_ORDER, ppmd_mem_for};

use crate::error::{Error, Result};
use std::io::Read;
#[cfg(feature = "write")]
use std::io::Write;

/// The one-byte codec tag of a section (SPEC.md, "Codecs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    /// Stored as is.
    None = 0,
    /// A gzip member (RFC 1952) produced by flate2.
    Gzip = 1,
    /// A zstd frame (RFC 8878), optionally with the file's shared dictionary.
    Zstd = 2,
    /// PPMd variant H (7-Zip's `Ppmd7` with its range coder) behind a
    /// 5-byte header: model order and memory size (SPEC.md section 3).
    Ppmd = 3,
}

impl Codec {
    /// Decode the tag byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Zstd),
            3 => Some(Codec::Ppmd),
            _ => None,
        }
    }

    /// Name used by `inspect` and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Ppmd => "ppmd",
        }
    }
}

/// How the writer picks a codec for each section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecChoice {
    /// The smallest of none, gzip and zstd for this section (PPMd only
    /// when forced: the writer forces it for long-text chunks).
    Auto,
    /// The smallest of none, gzip, zstd and PPMd: what the writer tries for
    /// the chunk of a short-string table of one chunk (at most 64 KiB raw,
    /// decoded once by a reader in a few milliseconds).
    AutoPpmd,
    /// Always this codec (still stored raw when it would grow the section).
    Force(Codec),
}

/// Compression settings.
#[derive(Clone, Copy, Debug)]
pub struct CompressOptions {
    /// Codec selection.
    pub choice: CodecChoice,
    /// zstd level (1..=22); gzip uses `min(level, 9)`.
    pub level: i32,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            choice: CodecChoice::Auto,
            level: 19,
        }
    }
}

#[cfg(feature = "write")]
/// Below this raw size a section is not worth a codec's frame header.
const MIN_COMPRESS: usize = 32;
#[cfg(feature = "write")]
/// gzip is only tried on small sections, where zstd's frame overhead can lose.
const GZIP_TRY_MAX: usize = 4096;

#[cfg(feature = "write")]
/// The zstd level a section is compressed at first when the level asked
/// for is higher (and no dictionary is used): a section it shrinks at
/// least [`QUICK_RATIO`] times keeps that frame. On such repetitive bytes
/// (runs, sparse bitmaps, a column of one value) zstd's optimal parser
/// (levels 16 and up) takes 30 to 400 times as long as level 9 and saves
/// next to nothing, often nothing at all (docs/design.md, "Repetitive
/// sections at level 9"); on other bytes the extra level-9 pass costs a few
/// percent of the level-19 one.
const QUICK_LEVEL: i32 = 9;
#[cfg(feature = "write")]
/// See [`QUICK_LEVEL`].
const QUICK_RATIO: usize = 8;

#[cfg(feature = "write")]
/// Compress `raw` and return the codec used and the stored bytes.
pub fn compress(
    raw: &[u8],
    opts: &CompressOptions,
    dict: Option<&[u8]>,
) -> Result<(Codec, Vec<u8>)> {
    compress_by(raw, opts, dict.is_none(), |level| {
        zstd_compress(raw, level, dict)
    })
}

#[cfg(feature = "write")]
/// [`compress`] at exactly `opts.level`, without the level-9 first pass
/// (`QUICK_LEVEL`): for a section whose every byte counts and that is
/// compressed once, such as the footer (one section per file, read by
/// every reader, and large only in files of many columns).
pub fn compress_at_level(raw: &[u8], opts: &CompressOptions) -> Result<(Codec, Vec<u8>)> {
    compress_by(raw, opts, false, |level| zstd_compress(raw, level, None))
}

/// A zstd dictionary prepared once for one level: its match tables are
/// built once, not again for every section compressed with it (a 1 MiB
/// dictionary at level 19 costs about as much as compressing 1 MiB).
#[cfg(feature = "write")]
pub struct EncoderDict {
    cdict: zstd::dict::EncoderDictionary<'static>,
}

#[cfg(feature = "write")]
impl EncoderDict {
    /// Prepare `dict` for sections compressed at `level`.
    pub fn new(dict: &[u8], level: i32) -> Self {
        EncoderDict {
            cdict: zstd::dict::EncoderDictionary::copy(dict, level.clamp(1, 22)),
        }
    }
}

#[cfg(feature = "write")]
/// [`compress`] with a prepared dictionary: zstd compresses at the
/// dictionary's level (gzip, tried on small sections, at `opts.level`).
pub fn compress_prepared(
    raw: &[u8],
    opts: &CompressOptions,
    dict: &EncoderDict,
) -> Result<(Codec, Vec<u8>)> {
    compress_by(raw, opts, false, |_| {
        let mut c = zstd::bulk::Compressor::with_prepared_dictionary(&dict.cdict)
            .map_err(|e| codec_err("zstd", e))?;
        c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(false))
            .map_err(|e| codec_err("zstd", e))?;
        c.set_parameter(zstd::zstd_safe::CParameter::DictIdFlag(false))
            .map_err(|e| codec_err("zstd", e))?;
        c.compress(raw).map_err(|e| codec_err("zstd", e))
    })
}

#[cfg(feature = "write")]
fn compress_by(
    raw: &[u8],
    opts: &CompressOptions,
    quick: bool,
    zstd_at: impl Fn(i32) -> Result<Vec<u8>>,
) -> Result<(Codec, Vec<u8>)> {
    if raw.len() < MIN_COMPRESS || opts.choice == CodecChoice::Force(Codec::None) {
        return Ok((Codec::None, raw.to_vec()));
    }
    let mut best: Option<(Codec, Vec<u8>)> = None;
    let mut consider = |c: Codec, bytes: Vec<u8>| {
        if bytes.len() < raw.len() && best.as_ref().is_none_or(|(_, b)| bytes.len() < b.len()) {
            best = Some((c, bytes));
        }
    };
    let want_zstd = matches!(
        opts.choice,
        CodecChoice::Auto | CodecChoice::AutoPpmd | CodecChoice::Force(Codec::Zstd)
    );
    let want_gzip = match opts.choice {
        CodecChoice::Force(Codec::Gzip) => true,
        CodecChoice::Auto | CodecChoice::AutoPpmd => raw.len() <= GZIP_TRY_MAX,
        _ => false,
    };
    if want_zstd {
        // zstd's output buffer is allocated for the worst case, about the
        // raw size: trimmed, a compressed section holds its own bytes only
        // (issue 16: a build holds a few nodes' sections at once).
        let mut z = match quick && opts.level > QUICK_LEVEL {
            true => Some(zstd_at(QUICK_LEVEL)?)
                .filter(|q| q.len().saturating_mul(QUICK_RATIO) <= raw.len()),
            false => None,
        }
        .map_or_else(|| zstd_at(opts.level), Ok)?;
        z.shrink_to_fit();
        consider(Codec::Zstd, z);
    }
    if want_gzip {
        consider(Codec::Gzip, gzip_compress(raw, opts.level)?);
    }
    if matches!(
        opts.choice,
        CodecChoice::Force(Codec::Ppmd) | CodecChoice::AutoPpmd
    ) {
        consider(Codec::Ppmd, ppmd::compress(raw)?);
    }
    Ok(best.unwrap_or_else(|| (Codec::None, raw.to_vec())))
}

#[cfg(feature = "write")]
fn codec_err(codec: &'static str, detail: impl ToString) -> Error {
    Error::Codec {
        codec,
        what: "section".into(),
        detail: detail.to_string(),
    }
}

#[cfg(feature = "write")]
fn zstd_compress(raw: &[u8], level: i32, dict: Option<&[u8]>) -> Result<Vec<u8>> {
    let level = level.clamp(1, 22);
    let mut c = match dict {
        Some(d) => zstd::bulk::Compressor::with_dictionary(level, d),
        None => zstd::bulk::Compressor::new(level),
    }
    .map_err(|e| codec_err("zstd", e))?;
    // No content checksum (the section has a crc32c) and no dictionary id:
    // the dictionary is implied by the file.
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(false))
        .map_err(|e| codec_err("zstd", e))?;
    c.set_parameter(zstd::zstd_safe::CParameter::DictIdFlag(false))
        .map_err(|e| codec_err("zstd", e))?;
    c.compress(raw).map_err(|e| codec_err("zstd", e))
}

/// Bytes of `raw` compressed by zstd with cheap settings of the optimal
/// parser (`btopt`, one search step, small tables): about six times faster
/// than level 19 and, unlike the fast levels, it ranks encodings the way
/// level 19 does (the fast levels miss the 4-byte matches of fixed-width
/// ids, which level 19 finds: issue #16). Meant for comparing candidate
/// encodings of one stream before compressing the winner for real.
#[cfg(feature = "write")]
pub fn trial_len(raw: &[u8]) -> Result<usize> {
    use zstd::zstd_safe::{CParameter as P, Strategy};
    if raw.len() < MIN_COMPRESS {
        return Ok(raw.len());
    }
    // The level only sets the defaults the parameters below override.
    let mut c = zstd::bulk::Compressor::new(19).map_err(|e| codec_err("zstd", e))?;
    for p in [
        P::Strategy(Strategy::ZSTD_btopt),
        P::WindowLog(22),
        P::ChainLog(16),
        P::HashLog(16),
        P::SearchLog(1),
        P::MinMatch(3),
        P::TargetLength(8),
    ] {
        c.set_parameter(p).map_err(|e| codec_err("zstd", e))?;
    }
    c.set_parameter(P::ChecksumFlag(false))
        .map_err(|e| codec_err("zstd", e))?;
    Ok(c.compress(raw)
        .map_err(|e| codec_err("zstd", e))?
        .len()
        .min(raw.len()))
}

/// Bytes of `raw` compressed by zstd level 3 with an 8 MiB window (level
/// 19's): on text about a hundred times faster than level 19, and a share
/// of its size that changes little from one long-text chunk to the next.
/// Predicts how much long text a chunk can hold within a stored size.
#[cfg(feature = "write")]
pub fn fast_len(raw: &[u8]) -> Result<usize> {
    use zstd::zstd_safe::CParameter as P;
    if raw.len() < MIN_COMPRESS {
        return Ok(raw.len());
    }
    let mut c = zstd::bulk::Compressor::new(3).map_err(|e| codec_err("zstd", e))?;
    for p in [P::WindowLog(23), P::ChecksumFlag(false)] {
        c.set_parameter(p).map_err(|e| codec_err("zstd", e))?;
    }
    Ok(c.compress(raw)
        .map_err(|e| codec_err("zstd", e))?
        .len()
        .min(raw.len()))
}

#[cfg(feature = "write")]
fn gzip_compress(raw: &[u8], level: i32) -> Result<Vec<u8>> {
    let level = level.clamp(1, 9) as u32;
    let mut e = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(level));
    e.write_all(raw).map_err(|e| codec_err("gzip", e))?;
    e.finish().map_err(|e| codec_err("gzip", e))
}

/// The most bytes allocated up front for decompressing `stored_len` bytes:
/// generous for real sections, small for hostile declarations. Output past
/// it is still accepted (up to the declared length), just not preallocated.
pub(crate) fn plausible_len(stored_len: usize) -> usize {
    stored_len.saturating_mul(64).max(1 << 20)
}

/// The most bytes one section may decompress to: 1 GiB, or 1032 times its
/// stored length when that is more (zstd's largest ratio on ordinary
/// blocks). A section declaring more is refused before anything is
/// decompressed.
pub const SECTION_RAW_LIMIT: u64 = 1 << 30;

/// The decompressed size allowed for `stored_len` stored bytes.
pub fn section_limit(stored_len: usize) -> u64 {
    SECTION_RAW_LIMIT.max((stored_len as u64).saturating_mul(1032))
}

/// Decompress `stored` into exactly `raw_len` bytes, refusing a `raw_len`
/// over [`section_limit`]. Memory use is bounded by `raw_len` and by what
/// the stored bytes actually expand to, never by `raw_len` alone.
pub fn decompress(
    codec: Codec,
    stored: &[u8],
    raw_len: usize,
    dict: Option<&[u8]>,
    what: &str,
) -> Result<Vec<u8>> {
    decompress_limited(
        codec,
        stored,
        raw_len,
        dict,
        section_limit(stored.len()),
        what,
    )
}

/// [`decompress`] with an explicit limit on `raw_len`: over it is an
/// [`Error::Budget`]. Output beyond what is preallocated grows in bounded
/// steps, each reservation checked (a failed one is an error, not an abort).
pub fn decompress_limited(
    codec: Codec,
    stored: &[u8],
    raw_len: usize,
    dict: Option<&[u8]>,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>> {
    decompress_parts(codec, &[], stored, raw_len, dict, limit, what)
}

/// [`decompress`] of a zstd frame stored without its magic number (a
/// version 2 payload, SPEC.md): the magic is read apart, so the pure-Rust
/// decoder (the browser's) never copies the stored bytes, which are most
/// of a column's memory while it loads.
pub fn decompress_bare_zstd(
    stored: &[u8],
    raw_len: usize,
    dict: Option<&[u8]>,
    what: &str,
) -> Result<Vec<u8>> {
    let limit = section_limit(stored.len() + crate::format::section::ZSTD_MAGIC.len());
    let magic = &crate::format::section::ZSTD_MAGIC[..];
    decompress_parts(Codec::Zstd, magic, stored, raw_len, dict, limit, what)
}

/// [`decompress_limited`] of the bytes of `head` then `stored` (`head` is
/// empty but for a zstd magic read apart).
fn decompress_parts(
    codec: Codec,
    head: &[u8],
    stored: &[u8],
    raw_len: usize,
    dict: Option<&[u8]>,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let err = |c: &'static str, d: String| Error::Codec {
        codec: c,
        what: what.to_string(),
        detail: d,
    };
    if codec != Codec::None && raw_len as u64 > limit {
        return Err(Error::Budget {
            what: format!("decompressing {what}"),
            need: raw_len as u64,
            budget: limit,
        });
    }
    let out = match codec {
        Codec::None => [head, stored].concat(),
        Codec::Zstd => zstd_decompress(head, stored, raw_len, dict).map_err(|d| err("zstd", d))?,
        Codec::Gzip if !head.is_empty() => return Err(err("gzip", "a split payload".into())),
        Codec::Gzip => gzip::Member::new(stored)
            .and_then(|m| read_bounded(m, raw_len, plausible_len(stored.len())))
            .map_err(|e| err("gzip", e.to_string()))?,
        Codec::Ppmd if !head.is_empty() => return Err(err("ppmd", "a split payload".into())),
        Codec::Ppmd => ppmd::decompress(stored, raw_len).map_err(|d| err("ppmd", d))?,
    };
    if out.len() != raw_len {
        return Err(err(
            codec.name(),
            format!(
                "decompressed to {} bytes, header declares {raw_len}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Read at most `raw_len + 1` bytes, reserving in steps (at most doubling,
/// starting from `first`), each checked with `try_reserve_exact`.
fn read_bounded(mut r: impl Read, raw_len: usize, first: usize) -> std::io::Result<Vec<u8>> {
    let cap = raw_len.saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    let mut step = first.min(cap);
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                break;
            }
            let add = step.min(cap - out.len()).max(1);
            out.try_reserve_exact(add)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::OutOfMemory, e))?;
            step = out.capacity();
        }
        let len = out.len();
        let room = out.capacity().min(cap) - len;
        out.resize(len + room, 0);
        let n = loop {
            match r.read(&mut out[len..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match n {
            Ok(n) => {
                out.truncate(len + n);
                if n == 0 {
                    break;
                }
            }
            Err(e) => {
                out.truncate(len);
                return Err(e);
            }
        }
    }
    Ok(out)
}

#[cfg(feature = "write")]
thread_local! {
    /// Each thread's zstd decompression context for sections without a
    /// dictionary (a context is about 100 KB to set up; a frame starts
    /// afresh in it, so reuse changes no output).
    static BARE_DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    /// Each thread's context with the dictionary it last loaded, and a copy
    /// of that dictionary: a table's chunks are decoded one after another
    /// with the same dictionary, and loading it (its entropy tables and
    /// content) costs more than decoding a 1 KiB chunk. Reused only for the
    /// same bytes (compared whole, never by address).
    static DICT_DCTX: std::cell::RefCell<Option<(Vec<u8>, zstd::bulk::Decompressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// zstd decompression with the C library: `stored` into at most `raw_len`
/// bytes (more is an error, reported by the caller as a length mismatch).
#[cfg(feature = "write")]
fn zstd_decompress(
    head: &[u8],
    stored: &[u8],
    raw_len: usize,
    dict: Option<&[u8]>,
) -> std::result::Result<Vec<u8>, String> {
    // The C library reads one contiguous frame: a magic read apart is put
    // back (a copy of the stored bytes, natively).
    let joined;
    let stored = if head.is_empty() {
        stored
    } else {
        joined = [head, stored].concat();
        &joined[..]
    };
    if raw_len <= plausible_len(stored.len()) {
        // Capacity is the declared raw length: a frame that expands
        // further is an error, never a bigger allocation.
        match dict {
            Some(dict) => DICT_DCTX.with(|slot| {
                let mut slot = slot.borrow_mut();
                let d = match slot.as_mut() {
                    Some((d, ctx)) if d[..] == dict[..] => ctx,
                    _ => {
                        let ctx = zstd::bulk::Decompressor::with_dictionary(dict)
                            .map_err(|e| e.to_string())?;
                        &mut slot.insert((dict.to_vec(), ctx)).1
                    }
                };
                d.decompress(stored, raw_len).map_err(|e| e.to_string())
            }),
            // Without a dictionary, this thread's context, made once (a
            // page decodes a few hundred sections on each thread).
            None => BARE_DCTX.with(|slot| {
                let mut slot = slot.borrow_mut();
                let d = match slot.as_mut() {
                    Some(d) => d,
                    None => {
                        slot.insert(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?)
                    }
                };
                d.decompress(stored, raw_len).map_err(|e| e.to_string())
            }),
        }
    } else {
        // A declared length far beyond what the stored bytes plausibly
        // hold: never allocate it up front (a 40-byte hostile section may
        // declare 4 GiB); grow with the output actually produced, which
        // is still capped by the declared length.
        let d = match dict {
            Some(dict) => zstd::stream::read::Decoder::with_dictionary(stored, dict),
            None => zstd::stream::read::Decoder::with_buffer(stored),
        }
        .map_err(|e| e.to_string())?;
        read_bounded(d, raw_len, plausible_len(stored.len())).map_err(|e| e.to_string())
    }
}

#[cfg(all(not(feature = "write"), feature = "ruzstd"))]
use ruzstd_decompress_parts as zstd_decompress;

/// Without a zstd decoder compiled in, zstd sections cannot be read.
#[cfg(not(any(feature = "write", feature = "ruzstd")))]
fn zstd_decompress(
    _head: &[u8],
    _stored: &[u8],
    _raw_len: usize,
    _dict: Option<&[u8]>,
) -> std::result::Result<Vec<u8>, String> {
    Err("no zstd decoder compiled in (enable the `write` or `ruzstd` feature)".into())
}

/// zstd decompression with the pure-Rust `ruzstd` decoder, same contract as
/// the C path: every frame of `stored` (skippable frames skipped), at most
/// `raw_len + 1` bytes produced, so an overlong frame is a length mismatch
/// and never an allocation beyond the declared length.
///
/// The dictionary must be in the `ZDICT` format (magic `0xEC30A437`), which
/// is what the writer stores (`zstd::dict::from_samples`). The frames carry
/// no dictionary id, so the dictionary is forced onto each frame.
#[cfg(test)] // tests compare the two decoders
fn ruzstd_decompress(
    stored: &[u8],
    raw_len: usize,
    dict: Option<&[u8]>,
) -> std::result::Result<Vec<u8>, String> {
    ruzstd_decompress_parts(&[], stored, raw_len, dict)
}

/// [`ruzstd_decompress`] of the bytes of `head` then `stored`, never
/// joined: the first frame's header is read through both.
#[cfg(any(feature = "ruzstd", test))]
#[cfg_attr(any(feature = "write", not(feature = "ruzstd")), allow(dead_code))] // tests compare
fn ruzstd_decompress_parts(
    head: &[u8],
    stored: &[u8],
    raw_len: usize,
    dict: Option<&[u8]>,
) -> std::result::Result<Vec<u8>, String> {
    use ruzstd::decoding::{Dictionary, FrameDecoder};
    let Some(d) = dict else {
        return ruzstd_frames(&mut FrameDecoder::new(), None, head, stored, raw_len);
    };
    // The thread's decoder with this dictionary (the same bytes), or a new
    // one; kept again after a frame decoded without error.
    let cached = RUZSTD_DICT_DEC
        .with(|s| s.borrow_mut().take())
        .filter(|c| c.0[..] == d[..]);
    let (bytes, id, mut dec) = match cached {
        Some(c) => c,
        None => {
            let dd = Dictionary::decode_dict(d).map_err(|e| format!("dictionary: {e}"))?;
            let id = dd.id;
            let mut dec = FrameDecoder::new();
            dec.add_dict(dd).map_err(|e| e.to_string())?;
            (d.to_vec(), id, dec)
        }
    };
    let out = ruzstd_frames(&mut dec, Some(id), head, stored, raw_len)?;
    RUZSTD_DICT_DEC.with(|s| *s.borrow_mut() = Some((bytes, id, dec)));
    Ok(out)
}

#[cfg(any(feature = "ruzstd", test))]
thread_local! {
    /// Each thread's pure-Rust decoder with the dictionary it last loaded
    /// (its bytes and id): a table's chunks are decoded one after another
    /// with one dictionary, and decoding it costs more than a 1 KiB chunk.
    static RUZSTD_DICT_DEC: std::cell::RefCell<
        Option<(Vec<u8>, u32, ruzstd::decoding::FrameDecoder)>,
    > = const { std::cell::RefCell::new(None) };
}

/// The frames of `head` then `stored` decoded by `dec` (with dictionary
/// `dict_id` forced onto each) into at most `raw_len + 1` bytes.
#[cfg(any(feature = "ruzstd", test))]
#[cfg_attr(any(feature = "write", not(feature = "ruzstd")), allow(dead_code))] // tests compare
fn ruzstd_frames(
    dec: &mut ruzstd::decoding::FrameDecoder,
    dict_id: Option<u32>,
    head: &[u8],
    stored: &[u8],
    raw_len: usize,
) -> std::result::Result<Vec<u8>, String> {
    use ruzstd::decoding::BlockDecodingStrategy;
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};

    // A frame's window is what it keeps in memory; the writer's frames
    // declare their content size, so their window is at most that.
    let max_window = (raw_len as u64)
        .saturating_mul(2)
        .clamp(1 << 20, ruzstd::decoding::DEFAULT_MAX_WINDOW_SIZE);
    dec.set_max_window_size(max_window);
    let cap = raw_len.saturating_add(1);
    let mut out = Vec::with_capacity(raw_len.min(plausible_len(stored.len())));
    let (mut head, mut input) = (head, stored);
    // The decoder keeps a frame's content in its window until the frame
    // ends, growing its buffer by doubling up to it (each step a new
    // allocation beside the last: about twice the window at the peak, and
    // holes a WebAssembly memory never gives back). Reading the first
    // frame's header twice makes it reserve the window once instead, when
    // the window is at most twice the declared output (a single-segment
    // frame's window is its content).
    let byte = |k: usize| match head.get(k) {
        Some(b) => Some(*b),
        None => input.get(k - head.len()).copied(),
    };
    let window = match byte(4) {
        Some(d) if d & 0x20 != 0 => Some(raw_len as u64),
        Some(_) => byte(5).map(|w| {
            let base = 1u64 << (10 + (w >> 3));
            base + (base >> 3) * u64::from(w & 7)
        }),
        None => None,
    };
    if window.is_some_and(|w| w <= (raw_len as u64).saturating_mul(2)) {
        let _ = dec.reset(&mut std::io::Read::chain(head, input));
    }
    while !head.is_empty() || !input.is_empty() {
        // Every header is read through the one reader type (one copy of
        // the decoder's header code in the browser's module).
        let reset = match narrowed_header(head, input, raw_len, max_window) {
            // A frame that declares a window wider than the section's
            // output can use (`zstd` writing to a pipe declares 8 MiB for
            // a few bytes) is read with a window of that output: the
            // decoder reserves its window up front.
            Some((patched, rest)) => {
                let mut both = std::io::Read::chain(&patched[..], rest);
                let reset = dec.reset(&mut both);
                let (h, rest) = both.into_inner();
                if !h.is_empty() && reset.is_ok() {
                    return Err("frame header shorter than its magic".into());
                }
                (head, input) = (&[], rest);
                reset
            }
            None => {
                let mut both = std::io::Read::chain(head, input);
                let reset = dec.reset(&mut both);
                (head, input) = both.into_inner();
                reset
            }
        };
        match reset {
            Ok(()) if head.is_empty() => {}
            Ok(()) => return Err("frame header shorter than its magic".into()),
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                let h = (length as usize).min(head.len());
                head = &head[h..];
                input = input
                    .get(length as usize - h..)
                    .ok_or("truncated skippable frame")?;
                continue;
            }
            Err(e) => return Err(e.to_string()),
        }
        if let Some(id) = dict_id {
            dec.force_dict(id).map_err(|e| e.to_string())?;
        }
        loop {
            // Decode at most what may still be kept, then drain it.
            let room = cap - out.len();
            dec.decode_blocks(
                &mut input,
                BlockDecodingStrategy::UptoBytes(room.clamp(1, 1 << 20)),
            )
            .map_err(|e| e.to_string())?;
            let have = dec.can_collect();
            let take = have.min(room);
            let start = out.len();
            out.resize(start + take, 0);
            let n = dec.read(&mut out[start..]).map_err(|e| e.to_string())?;
            out.truncate(start + n);
            if out.len() >= cap {
                // Past the declared length: the caller reports the mismatch.
                return Ok(out);
            }
            if dec.is_finished() && dec.can_collect() == 0 {
                break;
            }
        }
    }
    Ok(out)
}

/// When the zstd frame at the start of `head` then `input` declares a
/// window (Window_Descriptor, RFC 8878 3.1.1.1.2) wider than `max`: its
/// header's first bytes with the window narrowed to the smallest power of
/// two of at least `raw_len` (and 1 KiB), and the rest of `input` after
/// them. A frame's matches reach back at most over its own output (and
/// its dictionary, which does not count against the window while the
/// output is within it), which is at most `raw_len` bytes: such a frame
/// decodes the same, and a frame whose matches reach further is an error
/// either way.
#[cfg(any(feature = "ruzstd", test))]
#[cfg_attr(any(feature = "write", not(feature = "ruzstd")), allow(dead_code))]
fn narrowed_header<'a>(
    head: &[u8],
    input: &'a [u8],
    raw_len: usize,
    max: u64,
) -> Option<(Vec<u8>, &'a [u8])> {
    let k = 6usize.saturating_sub(head.len());
    let first: Vec<u8> = head.iter().chain(input.get(..k)?).copied().collect();
    if first[..4] != [0x28, 0xB5, 0x2F, 0xFD] || first[4] & 0x20 != 0 {
        return None;
    }
    let w = first[5];
    let base = 1u64 << (10 + (w >> 3));
    if base + (base >> 3) * u64::from(w & 7) <= max {
        return None;
    }
    let need = (raw_len as u64).max(1 << 10).next_power_of_two();
    let exponent = need.trailing_zeros().saturating_sub(10);
    if exponent > 31 {
        return None;
    }
    let mut first = first;
    first[5] = (exponent as u8) << 3;
    Some((first, &input[k..]))
}

/// The first `n` bytes (or fewer, when it is shorter) that `stored`
/// decompresses to, decompressing no more than that.
pub fn decompress_prefix(codec: Codec, stored: &[u8], n: usize, what: &str) -> Result<Vec<u8>> {
    let err = |c: &'static str, d: String| Error::Codec {
        codec: c,
        what: what.to_string(),
        detail: d,
    };
    let mut out = Vec::with_capacity(n);
    match codec {
        Codec::None => out.extend_from_slice(&stored[..n.min(stored.len())]),
        Codec::Zstd => {
            zstd_reader(stored)?
                .take(n as u64)
                .read_to_end(&mut out)
                .map_err(|e| err("zstd", e.to_string()))?;
        }
        Codec::Gzip => {
            gzip::Member::new(stored)
                .map_err(|e| err("gzip", e.to_string()))?
                .take(n as u64)
                .read_to_end(&mut out)
                .map_err(|e| err("gzip", e.to_string()))?;
        }
        Codec::Ppmd => {
            ppmd::reader(stored)
                .map_err(|e| err("ppmd", e))?
                .take(n as u64)
                .read_to_end(&mut out)
                .map_err(|e| err("ppmd", e.to_string()))?;
        }
    }
    Ok(out)
}

/// A zstd dictionary prepared once for many decompressions (with the C
/// library: its digested form, so a lookup does not load the dictionary
/// again; else the bytes).
pub struct PreparedDict {
    #[cfg(feature = "write")]
    ddict: zstd::dict::DecoderDictionary<'static>,
    #[cfg(not(feature = "write"))]
    bytes: Vec<u8>,
}

impl PreparedDict {
    /// Prepare `dict` (copied).
    pub fn new(dict: &[u8]) -> PreparedDict {
        PreparedDict {
            #[cfg(feature = "write")]
            ddict: zstd::dict::DecoderDictionary::copy(dict),
            #[cfg(not(feature = "write"))]
            bytes: dict.to_vec(),
        }
    }
}

/// The content size a zstd frame's header declares (the frame: `head`, a
/// magic read apart or nothing, then `stored`), if it declares one and
/// this build can read it (the C library's header parser).
pub fn zstd_content_size(head: &[u8], stored: &[u8]) -> Option<u64> {
    #[cfg(feature = "write")]
    {
        // A frame header is at most 18 bytes.
        let mut h = head.to_vec();
        h.extend_from_slice(&stored[..stored.len().min(18)]);
        zstd::zstd_safe::get_frame_content_size(&h).ok().flatten()
    }
    #[cfg(not(feature = "write"))]
    {
        let _ = (head, stored);
        None
    }
}

/// A reader of what `stored` decompresses to (at most `raw_len` bytes),
/// for a caller that needs only a prefix of a large section: a lookup of
/// one string of a long-text chunk stops decompressing at that string.
/// Without the C zstd library, a zstd section is decompressed whole first.
pub fn decompress_reader<'a>(
    codec: Codec,
    stored: &'a [u8],
    raw_len: usize,
    dict: Option<&'a PreparedDict>,
    what: &str,
) -> Result<Box<dyn Read + 'a>> {
    // The same bound as a whole decompression ([`decompress`]).
    let budget = section_limit(stored.len());
    if codec != Codec::None && raw_len as u64 > budget {
        return Err(Error::Budget {
            what: format!("decompressing {what}"),
            need: raw_len as u64,
            budget,
        });
    }
    let limit = raw_len as u64;
    Ok(match codec {
        Codec::None => Box::new(stored.take(limit)),
        // A lookup stops decoding at its string: half a chunk on average.
        Codec::Ppmd => Box::new(
            ppmd::reader(stored)
                .map_err(|e| Error::Codec {
                    codec: "ppmd",
                    what: what.to_string(),
                    detail: e,
                })?
                .take(limit),
        ),
        // The crate's own member reader (not flate2's GzDecoder): in the
        // browser build it checks the CRC-32 with the 1 KiB table, where
        // GzDecoder would link crc32fast's 16 KiB one and its header parser.
        Codec::Gzip => Box::new(
            gzip::Member::new(stored)
                .map_err(|e| Error::Codec {
                    codec: "gzip",
                    what: what.to_string(),
                    detail: e.to_string(),
                })?
                .take(limit),
        ),
        #[cfg(feature = "write")]
        Codec::Zstd => {
            let d = match dict {
                Some(dict) => {
                    zstd::stream::read::Decoder::with_prepared_dictionary(stored, &dict.ddict)
                }
                None => zstd::stream::read::Decoder::with_buffer(stored),
            }
            .map_err(|e| Error::Codec {
                codec: "zstd",
                what: what.to_string(),
                detail: e.to_string(),
            })?;
            Box::new(d.take(limit))
        }
        #[cfg(not(feature = "write"))]
        Codec::Zstd => Box::new(std::io::Cursor::new(decompress(
            codec,
            stored,
            raw_len,
            dict.map(|d| d.bytes.as_slice()),
            what,
        )?)),
    })
}

/// A reader of a zstd stream (for zstd-compressed JSON input): the C
/// library's streaming decoder when compiled in, else `ruzstd`'s.
pub(crate) fn zstd_reader<'a, R: std::io::BufRead + 'a>(r: R) -> Result<Box<dyn Read + 'a>> {
    #[cfg(feature = "write")]
    {
        Ok(Box::new(
            zstd::stream::read::Decoder::with_buffer(r).map_err(|e| Error::io(None, e))?,
        ))
    }
    #[cfg(all(not(feature = "write"), feature = "ruzstd"))]
    {
        Ok(Box::new(
            ruzstd::decoding::StreamingDecoder::new(r).map_err(|e| {
                Error::io(
                    None,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?,
        ))
    }
    #[cfg(not(any(feature = "write", feature = "ruzstd")))]
    {
        let _ = r;
        Err(Error::io(
            None,
            std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "zstd-compressed input needs the `write` or `ruzstd` feature",
            ),
        ))
    }
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_choices() -> Vec<CompressOptions> {
        [
            CodecChoice::Auto,
            CodecChoice::Force(Codec::None),
            CodecChoice::Force(Codec::Gzip),
            CodecChoice::Force(Codec::Zstd),
        ]
        .into_iter()
        .map(|choice| CompressOptions { choice, level: 3 })
        .collect()
    }

    /// A section level 9 already shrinks eightfold keeps level 9's frame
    /// (level 19's optimal parser takes hundreds of times as long on such
    /// bytes); other sections, and [`compress_at_level`], get the level
    /// asked for. Both decompress to the bytes.
    #[test]
    fn repetitive_sections_keep_the_level_9_frame() {
        let mut sparse = vec![0u8; 64 << 10];
        for i in (0..sparse.len()).step_by(997) {
            sparse[i] = (i % 251) as u8 | 1;
        }
        // Bytes zstd shrinks less than eightfold: a varint-like stream.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mixed: Vec<u8> = (0..8 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 40) as u8
            })
            .collect();
        let o = CompressOptions {
            choice: CodecChoice::Force(Codec::Zstd),
            level: 19,
        };
        let at = |raw: &[u8], level| zstd_compress(raw, level, None).unwrap();
        let (c, quick) = compress(&sparse, &o, None).unwrap();
        assert_eq!(c, Codec::Zstd);
        assert!(quick.len() * QUICK_RATIO <= sparse.len(), "{}", quick.len());
        assert_eq!(quick, at(&sparse, QUICK_LEVEL));
        assert_eq!(compress_at_level(&sparse, &o).unwrap().1, at(&sparse, 19));
        assert_ne!(at(&sparse, QUICK_LEVEL), at(&sparse, 19));
        let (_, full) = compress(&mixed, &o, None).unwrap();
        assert!(at(&mixed, QUICK_LEVEL).len() * QUICK_RATIO > mixed.len());
        assert_eq!(full, at(&mixed, 19));
        for (raw, stored) in [(&sparse, &quick), (&mixed, &full)] {
            assert_eq!(
                &decompress(Codec::Zstd, stored, raw.len(), None, "t").unwrap(),
                raw
            );
        }
        // At level 9 or below, one pass at that level.
        let o9 = CompressOptions { level: 5, ..o };
        assert_eq!(compress(&sparse, &o9, None).unwrap().1, at(&sparse, 5));
    }

    /// A thread's zstd context is reused from section to section: after
    /// a damaged frame, a truncated one and a frame longer than declared
    /// go through it, the next good frame still decompresses to its bytes.
    #[test]
    fn a_reused_context_forgets_failed_frames() {
        let a: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let b: Vec<u8> = (0..30_000u32)
            .flat_map(|i| (i * 7 % 13).to_le_bytes())
            .collect();
        let o = CompressOptions {
            choice: CodecChoice::Force(Codec::Zstd),
            level: 3,
        };
        let (ca, sa) = compress(&a, &o, None).unwrap();
        let (cb, sb) = compress(&b, &o, None).unwrap();
        assert_eq!((ca, cb), (Codec::Zstd, Codec::Zstd));
        let mut damaged = sa.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x5a;
        for _ in 0..2 {
            // (zstd may also decode a damaged frame to other bytes: the
            // section's CRC-32C is what catches that.)
            assert!(decompress(Codec::Zstd, &damaged, a.len(), None, "t").ok() != Some(a.clone()));
            assert!(decompress(Codec::Zstd, &sa[..sa.len() - 3], a.len(), None, "t").is_err());
            assert!(decompress(Codec::Zstd, &sa, a.len() - 1, None, "t").is_err());
            assert_eq!(decompress(Codec::Zstd, &sb, b.len(), None, "t").unwrap(), b);
            assert_eq!(decompress(Codec::Zstd, &sa, a.len(), None, "t").unwrap(), a);
        }
    }

    /// The thread's dictionary context is reused only for the same
    /// dictionary bytes: frames of two dictionaries decoded in turn, and a
    /// failed frame between them, each decode as they would alone.
    #[test]
    fn a_reused_dictionary_context_is_keyed_by_the_dictionary_bytes() {
        let samples: Vec<Vec<u8>> = (0..400u32)
            .map(|i| {
                format!("https://example.com/repos/acme/widgets/issues/{i}/comments").into_bytes()
            })
            .collect();
        let other: Vec<Vec<u8>> = (0..400u32)
            .map(|i| format!("user-{}-login-{}", i * 13 % 97, i % 7).into_bytes())
            .collect();
        let d1 = zstd::dict::from_samples(&samples, 1024).unwrap();
        let d2 = zstd::dict::from_samples(&other, 1024).unwrap();
        assert_ne!(d1, d2);
        let o = CompressOptions {
            choice: CodecChoice::Force(Codec::Zstd),
            level: 19,
        };
        let a = samples[7..40].concat();
        let b = other[3..50].concat();
        let (_, sa) = compress(&a, &o, Some(&d1)).unwrap();
        let (_, sb) = compress(&b, &o, Some(&d2)).unwrap();
        let mut damaged = sa.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x5a;
        // The C library's context and the pure-Rust decoder (the
        // browser's) keep one each.
        let c = |s: &[u8], n: usize, d: &[u8]| zstd_decompress(&[], s, n, Some(d)).ok();
        let r = |s: &[u8], n: usize, d: &[u8]| ruzstd_decompress(s, n, Some(d)).ok();
        for dec in [c, r] {
            for _ in 0..2 {
                assert_eq!(dec(&sa, a.len(), &d1), Some(a.clone()));
                assert!(dec(&damaged, a.len(), &d1) != Some(a.clone()));
                assert_eq!(dec(&sb, b.len(), &d2), Some(b.clone()));
                // The wrong dictionary never decodes to the right bytes.
                assert!(dec(&sa, a.len(), &d2) != Some(a.clone()));
                assert_eq!(dec(&sa, a.len(), &d1), Some(a.clone()));
            }
        }
    }

    /// Sections compressed with a prepared dictionary decompress with the
    /// plain dictionary and are no larger (within 1%) than with the
    /// dictionary loaded for each section. (On the real exports and the
    /// generated issues the bytes were identical; zstd may attach a prepared
    /// dictionary instead of copying it on mid-sized inputs like this one.)
    #[test]
    fn prepared_dictionary_gives_the_same_bytes() {
        let text = |seed: u64, n: usize| -> Vec<u8> {
            let words = [
                "issue ",
                "build ",
                "fails ",
                "when ",
                "the ",
                "snapshot ",
                "is ",
            ];
            let mut x = seed;
            let mut out = Vec::new();
            while out.len() < n {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                out.extend_from_slice(words[(x >> 60) as usize % words.len()].as_bytes());
                out.extend_from_slice((x >> 40).to_string().as_bytes());
            }
            out
        };
        let dict = text(7, 20_000);
        let raw = text(9, 300_000);
        for level in [3, 19] {
            let o = CompressOptions {
                choice: CodecChoice::Auto,
                level,
            };
            let loaded = compress(&raw, &o, Some(&dict)).unwrap();
            let prepared = compress_prepared(&raw, &o, &EncoderDict::new(&dict, level)).unwrap();
            assert!(prepared.1.len() <= loaded.1.len() + loaded.1.len() / 100);
            let back = decompress(prepared.0, &prepared.1, raw.len(), Some(&dict), "t").unwrap();
            assert_eq!(back, raw);
        }
    }

    /// The trial size never exceeds the raw size, and ranks repetitive
    /// ids below noise as level 19 does.
    #[test]
    fn trial_len_is_bounded_and_ranks_like_level_19() {
        let mut x = 1u64;
        let mut ids = Vec::new();
        let mut noise = Vec::new();
        while ids.len() < 40_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ids.extend_from_slice(&((x >> 33) as u32 % 700 + 200).to_le_bytes());
            noise.push((x >> 56) as u8);
        }
        let at19 = |raw: &[u8]| {
            compress(raw, &CompressOptions::default(), None)
                .unwrap()
                .1
                .len()
        };
        let (t_ids, t_noise) = (trial_len(&ids).unwrap(), trial_len(&noise).unwrap());
        assert!(t_ids < ids.len() / 2, "{t_ids}");
        assert!(t_noise <= noise.len());
        assert_eq!(t_ids < t_noise, at19(&ids) < at19(&noise));
        assert_eq!(trial_len(&ids[..8]).unwrap(), 8);
    }

    proptest! {
        #[test]
        fn roundtrip_never_grows(raw in proptest::collection::vec(0u8..4, 0..3000)) {
            for o in all_choices() {
                let (c, stored) = compress(&raw, &o, None).unwrap();
                prop_assert!(stored.len() <= raw.len());
                prop_assert_eq!(decompress(c, &stored, raw.len(), None, "t").unwrap(), raw.clone());
            }
        }
        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..100), n in 0usize..1000, c in 0u8..3) {
            let _ = decompress(Codec::from_u8(c).unwrap(), &b, n, None, "t");
        }
    }

    #[test]
    fn declared_length_caps_output() {
        let raw = vec![7u8; 100_000];
        for o in all_choices() {
            let (c, stored) = compress(&raw, &o, None).unwrap();
            if c != Codec::None {
                assert!(decompress(c, &stored, 1000, None, "t").is_err());
                assert!(decompress(c, &stored, 200_000, None, "t").is_err());
            }
        }
    }

    /// `decompress_reader` gives what `decompress` does (a gzip section
    /// through the crate's member reader), stops at the declared length,
    /// and rejects a damaged gzip header or CRC-32.
    #[test]
    fn reader_matches_decompress() {
        let raw: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for o in all_choices() {
            let (c, stored) = compress(&raw, &o, None).unwrap();
            let mut got = Vec::new();
            decompress_reader(c, &stored, raw.len(), None, "t")
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(got, raw, "{c:?}");
            let mut head = Vec::new();
            decompress_reader(c, &stored, 10, None, "t")
                .unwrap()
                .read_to_end(&mut head)
                .unwrap();
            assert_eq!(head, raw[..10], "{c:?}");
            if c == Codec::Gzip {
                let mut bad = stored.clone();
                bad[0] ^= 1;
                assert!(decompress_reader(c, &bad, raw.len(), None, "t").is_err());
                let mut bad = stored.clone();
                let n = bad.len();
                bad[n - 8] ^= 1;
                let mut sink = Vec::new();
                // (A limit past the end: the trailer is read.)
                let r = decompress_reader(c, &bad, raw.len() + 1, None, "t")
                    .unwrap()
                    .read_to_end(&mut sink);
                assert!(r.is_err());
            }
        }
    }

    #[test]
    fn dictionary_roundtrip() {
        let dict = b"hello world this is a dictionary of common words".repeat(4);
        let raw = b"hello world this is a section".repeat(3);
        let o = CompressOptions {
            choice: CodecChoice::Force(Codec::Zstd),
            level: 3,
        };
        let (c, stored) = compress(&raw, &o, Some(&dict)).unwrap();
        assert_eq!(
            decompress(c, &stored, raw.len(), Some(&dict), "t").unwrap(),
            raw
        );
    }
}

/// The pure-Rust decoder against the C library: same bytes out, same
/// errors, on plain sections and on dictionary-compressed string chunks of
/// real snapshots. Runs in every `cargo test` (ruzstd is a dev-dependency).
#[cfg(all(test, feature = "write"))]
mod ruzstd_tests {
    use super::*;
    use crate::format::Role;
    use crate::{BuildOptions, Snapshot, build_to_vec};
    use proptest::prelude::*;

    /// Both decoders on one section: identical results, or both errors.
    fn same(stored: &[u8], raw_len: usize, dict: Option<&[u8]>) -> Option<Vec<u8>> {
        let c = zstd_decompress(&[], stored, raw_len, dict);
        let r = ruzstd_decompress(stored, raw_len, dict);
        split_agrees(stored, raw_len, dict, &c, &r);
        match (c, r) {
            (Ok(c), Ok(r)) => {
                assert_eq!(c.len(), r.len(), "lengths differ");
                assert!(c == r, "contents differ");
                Some(c)
            }
            (Err(_), Err(_)) => None,
            // C stops at `raw_len` with an error where ruzstd returns
            // `raw_len + 1` bytes; both are rejected by `decompress`.
            (Err(_), Ok(r)) if r.len() > raw_len => None,
            (c, r) => panic!(
                "decoders disagree: C {:?}, ruzstd {:?}",
                c.map(|v| v.len()),
                r.map(|v| v.len())
            ),
        }
    }

    /// Both decoders refuse a wrong declared length (an error, or more
    /// bytes than declared, which `decompress` turns into an error).
    fn rejects(stored: &[u8], raw_len: usize, dict: Option<&[u8]>) -> bool {
        same(stored, raw_len, dict).is_none_or(|v| v.len() != raw_len)
    }

    fn zstd_opts(level: i32) -> CompressOptions {
        CompressOptions {
            choice: CodecChoice::Force(Codec::Zstd),
            level,
        }
    }

    /// Every zstd section of a snapshot, with its table dictionary where it
    /// has one, through both decoders. Returns how many chunks used a
    /// dictionary.
    fn check_snapshot(bytes: Vec<u8>) -> usize {
        let snap = Snapshot::from_bytes(bytes).unwrap();
        let footer = snap.footer();
        let mut with_dict = 0;
        for (idx, e) in footer.sections.iter().enumerate() {
            if e.codec != Codec::Zstd {
                continue;
            }
            let idx = idx as u32;
            let dict = footer.tables.iter().find_map(|t| {
                let chunks = t.first_chunk..t.first_chunk + t.chunk_counts.len() as u32;
                t.dict_section
                    .filter(|_| chunks.contains(&idx))
                    .map(|d| snap.section(d).unwrap().to_vec())
            });
            if let Some(d) = &dict {
                assert_eq!(&d[..4], &0xEC30A437u32.to_le_bytes(), "ZDICT magic");
                assert_eq!(e.role, Role::StrChunk as u8);
                with_dict += 1;
            }
            let stored = &snap.section_stored(idx).unwrap()[..];
            let raw = same(stored, e.raw_len as usize, dict.as_deref())
                .unwrap_or_else(|| panic!("section {idx} does not decode"));
            assert_eq!(raw.len(), e.raw_len as usize);
            // And through the public entry point, as the reader calls it.
            assert_eq!(
                decompress(Codec::Zstd, stored, raw.len(), dict.as_deref(), "t").unwrap(),
                raw
            );
            // A wrong declared length is an error for both.
            assert!(rejects(stored, raw.len() - 1, dict.as_deref()));
            assert!(rejects(stored, raw.len() + 1, dict.as_deref()));
        }
        with_dict
    }

    #[test]
    fn real_snapshot_with_long_text_dictionary() {
        let input = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/github-sample.ndjson"
        ))
        .unwrap();
        // Default options: the sample's long text fits in fewer than 4
        // chunks, so no dictionary; every zstd section still must match.
        check_snapshot(build_to_vec(&input[..], &BuildOptions::default()).unwrap());
        // Small zstd long-text chunks: the table gets a trained dictionary.
        let opts = BuildOptions {
            long_chunk_size: 8 << 10,
            long_text_codec: crate::LongTextCodec::Zstd,
            ..BuildOptions::default()
        };
        let with_dict = check_snapshot(build_to_vec(&input[..], &opts).unwrap());
        assert!(with_dict >= 4, "only {with_dict} dictionary chunks");
    }

    #[test]
    fn generated_issues_with_dictionary() {
        let mut input = Vec::new();
        let gen_opts = colsnap_testdata::GenOptions {
            count: 2000,
            ..Default::default()
        };
        colsnap_testdata::write_ndjson(&gen_opts, &mut input).unwrap();
        let opts = BuildOptions {
            long_chunk_size: 128 << 10,
            compress: zstd_opts(3),
            ..BuildOptions::default()
        };
        let with_dict = check_snapshot(build_to_vec(&input[..], &opts).unwrap());
        assert!(with_dict >= 4, "only {with_dict} dictionary chunks");
    }

    #[test]
    fn trained_dictionary_roundtrip_all_levels() {
        let samples: Vec<Vec<u8>> = (0..400)
            .map(|i| {
                format!(
                    "issue {i}: the build fails on {} with error E{}",
                    i % 7,
                    i * 31
                )
                .into_bytes()
            })
            .collect();
        let dict = zstd::dict::from_samples(&samples, 4096).unwrap();
        let raw: Vec<u8> = samples[..50].concat();
        for level in [1, 3, 19, 22] {
            let (c, stored) = compress(&raw, &zstd_opts(level), Some(&dict)).unwrap();
            assert_eq!(c, Codec::Zstd);
            assert_eq!(same(&stored, raw.len(), Some(&dict)).unwrap(), raw);
            // Without the dictionary the frame does not decode to the input.
            assert!(ruzstd_decompress(&stored, raw.len(), None).map_or(true, |v| v != raw));
        }
    }

    #[test]
    fn frames_declaring_a_window_wider_than_their_output_decode() {
        // What `zstd -19` writing to a pipe makes: no content size, an
        // 8 MiB window for a few kilobytes. The pure-Rust decoder refused
        // it ("window_size is too big"); the C decoder reads it.
        use std::io::Write;
        let raw: Vec<u8> = (0..3000u32)
            .flat_map(|i| format!("row {} title {}\n", i % 97, i * 7).into_bytes())
            .collect();
        let samples: Vec<Vec<u8>> = raw.chunks(500).map(|c| c.to_vec()).collect();
        let dict = zstd::dict::from_samples(&samples, 4096).unwrap();
        for (window_log, dict) in [(23, None), (27, None), (23, Some(&dict[..]))] {
            let mut e = match dict {
                Some(d) => zstd::stream::Encoder::with_dictionary(Vec::new(), 19, d).unwrap(),
                None => zstd::stream::Encoder::new(Vec::new(), 19).unwrap(),
            };
            e.include_contentsize(false).unwrap();
            e.include_dictid(false).unwrap();
            e.window_log(window_log).unwrap();
            e.write_all(&raw).unwrap();
            let stored = e.finish().unwrap();
            assert_eq!(stored[4] & 0x20, 0, "single segment");
            assert_eq!(stored[5] >> 3, window_log as u8 - 10);
            let got = ruzstd_decompress(&stored, raw.len(), dict).unwrap();
            assert_eq!(got, raw, "window log {window_log}");
            // Split anywhere in its header, too.
            for cut in 0..=6 {
                let out = ruzstd_decompress_parts(&stored[..cut], &stored[cut..], raw.len(), dict);
                assert_eq!(out.unwrap(), raw, "cut {cut}");
            }
            // A shorter declared length is an error or more bytes than it
            // declares (the caller's length mismatch), never its length.
            let short = ruzstd_decompress(&stored, raw.len() / 2, dict);
            assert!(short.map_or(true, |v| v.len() != raw.len() / 2));
        }
    }

    #[test]
    fn raw_content_dictionary_is_a_clean_error() {
        // The format stores ZDICT dictionaries (SPEC.md section 7); a
        // dictionary without the magic is refused, never misdecoded.
        let dict = b"plain bytes used as a raw-content dictionary ".repeat(8);
        let raw = b"plain bytes used as a section ".repeat(4);
        let (_, stored) = compress(&raw, &zstd_opts(3), Some(&dict)).unwrap();
        let e = ruzstd_decompress(&stored, raw.len(), Some(&dict)).unwrap_err();
        assert!(e.contains("dictionary"), "{e}");
    }

    #[test]
    fn large_declared_length_streams() {
        // The C path switches to its streaming decoder past plausible_len.
        let raw = vec![42u8; 3 << 20];
        let (_, stored) = compress(&raw, &zstd_opts(19), None).unwrap();
        assert!(raw.len() > plausible_len(stored.len()));
        assert_eq!(same(&stored, raw.len(), None).unwrap(), raw);
        assert!(rejects(&stored, raw.len() - 1, None));
        assert!(rejects(&stored, raw.len() + 1, None));
        assert!(decompress(Codec::Zstd, &stored, raw.len() - 1, None, "t").is_err());
    }

    /// The bytes read apart after their first four (a version 2 payload's
    /// magic): each decoder answers as it does for the whole.
    fn split_agrees(
        stored: &[u8],
        raw_len: usize,
        dict: Option<&[u8]>,
        c: &std::result::Result<Vec<u8>, String>,
        r: &std::result::Result<Vec<u8>, String>,
    ) {
        if stored.len() < 4 {
            return;
        }
        let (head, rest) = stored.split_at(4);
        let split_r = ruzstd_decompress_parts(head, rest, raw_len, dict);
        assert_eq!(split_r.as_ref().ok(), r.as_ref().ok(), "ruzstd, read apart");
        let split_c = zstd_decompress(head, rest, raw_len, dict);
        assert_eq!(split_c.as_ref().ok(), c.as_ref().ok(), "C, read apart");
    }

    #[test]
    fn bare_frames_decompress_as_whole_ones() {
        let raw: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (_, stored) = compress(&raw, &zstd_opts(3), None).unwrap();
        let bare = crate::format::section::strip_zstd_magic(stored.clone()).unwrap();
        assert_eq!(
            decompress_bare_zstd(&bare, raw.len(), None, "t").unwrap(),
            raw
        );
        assert_eq!(
            ruzstd_decompress_parts(&stored[..4], &bare, raw.len(), None).unwrap(),
            raw
        );
        // A wrong length or a damaged magic is refused as for the whole frame.
        assert!(decompress_bare_zstd(&bare, raw.len() - 1, None, "t").is_err());
        assert!(
            ruzstd_decompress_parts(&[0x28, 0xB5, 0x2F, 0xFE], &bare, raw.len(), None).is_err()
        );
    }

    proptest! {
        #[test]
        fn same_as_c(raw in proptest::collection::vec(0u8..6, 0..20_000), level in 1i32..20) {
            let (_, stored) = compress(&raw, &zstd_opts(level), None).unwrap();
            if raw.len() >= MIN_COMPRESS && stored.len() < raw.len() {
                prop_assert_eq!(same(&stored, raw.len(), None).unwrap(), raw);
            }
        }
        #[test]
        fn garbage_same_verdict(b in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..1000) {
            // Hostile bytes: neither decoder panics; when both succeed they agree.
            let c = zstd_decompress(&[], &b, n, None);
            let r = ruzstd_decompress(&b, n, None);
            split_agrees(&b, n, None, &c, &r);
            if let (Ok(c), Ok(r)) = (c, r) {
                prop_assert_eq!(&c[..c.len().min(n)], &r[..r.len().min(n)]);
            }
        }
    }
}
