//! Section layout. In format version 2 a section is its stored payload
//! alone: the footer's directory entry is its only description (offset,
//! lengths, codec, encoding, role, crc32c), and a zstd payload omits the
//! 4-byte frame magic ([`ZSTD_MAGIC`]), which readers put back before
//! decoding. Version 1 sections (still read) start with a 16-byte frame
//! repeating the directory entry and are zero-padded to a multiple of 8:
//!
//! ```text
//! offset size field
//!   0     1   codec       0 none, 1 gzip, 2 zstd
//!   1     1   encoding    see `encoding::Encoding`
//!   2     1   role        see `footer::Role`
//!   3     1   reserved    0
//!   4     4   raw_len     u32 LE, payload length after decompression
//!   8     4   stored_len  u32 LE, payload length as stored
//!  12     4   crc32c      u32 LE, of the stored payload
//!  16     ..  payload     stored_len bytes
//!   ..    ..  padding     zero bytes up to the next multiple of 8
//! ```

use crate::compress::Codec;
use crate::encoding::Encoding;
use crate::error::{Error, Result};

/// Size of a section frame header. A multiple of [`ALIGN`], so payloads are
/// 8-aligned too and an uncompressed fixed-width payload can be viewed in place.
pub const SECTION_HEADER_LEN: usize = 16;
/// Sections start at multiples of this.
pub const ALIGN: usize = 8;

/// A section frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionHeader {
    /// Codec of the payload.
    pub codec: Codec,
    /// Encoding of the decompressed payload.
    pub encoding: Encoding,
    /// What the section holds.
    pub role: u8,
    /// Decompressed length.
    pub raw_len: u32,
    /// Stored length.
    pub stored_len: u32,
    /// crc32c of the stored payload.
    pub crc: u32,
}

impl SectionHeader {
    /// The frame header bytes.
    pub fn to_bytes(&self) -> [u8; SECTION_HEADER_LEN] {
        let mut b = [0u8; SECTION_HEADER_LEN];
        b[0] = self.codec as u8;
        b[1] = self.encoding as u8;
        b[2] = self.role;
        b[4..8].copy_from_slice(&self.raw_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Parse a frame header found at byte `offset` of the file.
    pub fn parse(b: &[u8], offset: u64) -> Result<SectionHeader> {
        let what = || format!("section header at {offset}");
        if b.len() < SECTION_HEADER_LEN {
            return Err(Error::Truncated {
                what: what(),
                start: offset,
                end: offset + SECTION_HEADER_LEN as u64,
                len: offset + b.len() as u64,
            });
        }
        let codec = Codec::from_u8(b[0])
            .ok_or_else(|| Error::corrupt(what(), offset, format!("unknown codec {}", b[0])))?;
        let encoding = Encoding::from_u8(b[1]).ok_or_else(|| {
            Error::corrupt(what(), offset + 1, format!("unknown encoding {}", b[1]))
        })?;
        if b[3] != 0 {
            return Err(Error::corrupt(
                what(),
                offset + 3,
                "reserved byte must be zero",
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(SectionHeader {
            codec,
            encoding,
            role: b[2],
            raw_len: u32_at(4),
            stored_len: u32_at(8),
            crc: u32_at(12),
        })
    }
}

/// Bytes of padding after `len` bytes to reach the next multiple of [`ALIGN`]
/// (format version 1).
pub fn padding(len: u64) -> u64 {
    (ALIGN as u64 - len % ALIGN as u64) % ALIGN as u64
}

/// The first four bytes of every zstd frame (RFC 8878: `0xFD2FB528`, LE).
/// Format version 2 stores zstd payloads (sections and footer) without them.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A zstd frame as version 2 stores it: without its magic. `frame` is what
/// the compressor produced; a frame not starting with the magic is a bug.
pub fn strip_zstd_magic(mut frame: Vec<u8>) -> Result<Vec<u8>> {
    if !frame.starts_with(&ZSTD_MAGIC) {
        return Err(Error::Invalid(
            "zstd produced a frame without its magic".into(),
        ));
    }
    frame.drain(..ZSTD_MAGIC.len());
    Ok(frame)
}

/// The zstd frame a version 2 payload stands for: the magic, then `stored`.
pub fn with_zstd_magic(stored: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ZSTD_MAGIC.len() + stored.len());
    v.extend_from_slice(&ZSTD_MAGIC);
    v.extend_from_slice(stored);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_magic_strips_and_comes_back() {
        let frame = vec![0x28, 0xB5, 0x2F, 0xFD, 1, 2, 3];
        let bare = strip_zstd_magic(frame.clone()).unwrap();
        assert_eq!(bare, [1, 2, 3]);
        assert_eq!(with_zstd_magic(&bare), frame);
        assert!(strip_zstd_magic(vec![1, 2, 3, 4, 5]).is_err());
        assert!(strip_zstd_magic(vec![0x28]).is_err());
    }
}
