//! Section codecs: none, gzip (flate2) and zstd, chosen per section.
//!
//! A codec never makes a section larger: when compression does not save
//! bytes the section is stored raw (`Codec::None`). Decompression output is
//! capped by the raw length declared in the section header, so a hostile
//! file cannot make the reader allocate more than it declares (and the
//! declared length itself is capped by the caller against limits).

use crate::error::{Error, Result};
use std::io::{Read, Write};

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
}

impl Codec {
    /// Decode the tag byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// Name used by `inspect` and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// How the writer picks a codec for each section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecChoice {
    /// The smallest of none, gzip and zstd for this section.
    Auto,
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

/// Below this raw size a section is not worth a codec's frame header.
const MIN_COMPRESS: usize = 32;
/// gzip is only tried on small sections, where zstd's frame overhead can lose.
const GZIP_TRY_MAX: usize = 4096;

/// Compress `raw` and return the codec used and the stored bytes.
pub fn compress(
    raw: &[u8],
    opts: &CompressOptions,
    dict: Option<&[u8]>,
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
        CodecChoice::Auto | CodecChoice::Force(Codec::Zstd)
    );
    let want_gzip = match opts.choice {
        CodecChoice::Force(Codec::Gzip) => true,
        CodecChoice::Auto => raw.len() <= GZIP_TRY_MAX,
        _ => false,
    };
    if want_zstd {
        consider(Codec::Zstd, zstd_compress(raw, opts.level, dict)?);
    }
    if want_gzip {
        consider(Codec::Gzip, gzip_compress(raw, opts.level)?);
    }
    Ok(best.unwrap_or_else(|| (Codec::None, raw.to_vec())))
}

fn codec_err(codec: &'static str, detail: impl ToString) -> Error {
    Error::Codec {
        codec,
        what: "section".into(),
        detail: detail.to_string(),
    }
}

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

fn gzip_compress(raw: &[u8], level: i32) -> Result<Vec<u8>> {
    let level = level.clamp(1, 9) as u32;
    let mut e = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(level));
    e.write_all(raw).map_err(|e| codec_err("gzip", e))?;
    e.finish().map_err(|e| codec_err("gzip", e))
}

/// The most bytes allocated up front for decompressing `stored_len` bytes:
/// generous for real sections, small for hostile declarations. Output past
/// it is still accepted (up to the declared length), just not preallocated.
fn plausible_len(stored_len: usize) -> usize {
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
        Codec::None => stored.to_vec(),
        Codec::Zstd if raw_len <= plausible_len(stored.len()) => {
            let mut d = match dict {
                Some(dict) => zstd::bulk::Decompressor::with_dictionary(dict),
                None => zstd::bulk::Decompressor::new(),
            }
            .map_err(|e| err("zstd", e.to_string()))?;
            // Capacity is the declared raw length: a frame that expands
            // further is an error, never a bigger allocation.
            d.decompress(stored, raw_len)
                .map_err(|e| err("zstd", e.to_string()))?
        }
        Codec::Zstd => {
            // A declared length far beyond what the stored bytes plausibly
            // hold: never allocate it up front (a 40-byte hostile section may
            // declare 4 GiB); grow with the output actually produced, which
            // is still capped by the declared length.
            let d = match dict {
                Some(dict) => zstd::stream::read::Decoder::with_dictionary(stored, dict),
                None => zstd::stream::read::Decoder::with_buffer(stored),
            }
            .map_err(|e| err("zstd", e.to_string()))?;
            read_bounded(d, raw_len, plausible_len(stored.len()))
                .map_err(|e| err("zstd", e.to_string()))?
        }
        Codec::Gzip => read_bounded(
            flate2::read::GzDecoder::new(stored),
            raw_len,
            plausible_len(stored.len()),
        )
        .map_err(|e| err("gzip", e.to_string()))?,
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
            zstd::stream::read::Decoder::with_buffer(stored)
                .map_err(|e| err("zstd", e.to_string()))?
                .take(n as u64)
                .read_to_end(&mut out)
                .map_err(|e| err("zstd", e.to_string()))?;
        }
        Codec::Gzip => {
            flate2::read::GzDecoder::new(stored)
                .take(n as u64)
                .read_to_end(&mut out)
                .map_err(|e| err("gzip", e.to_string()))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
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
