//! Section frames. Every section describes itself, so that it can be
//! fetched, checked and decoded alone (e.g. as a content-addressed object).
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

/// Bytes of padding after `len` bytes to reach the next multiple of [`ALIGN`].
pub fn padding(len: u64) -> u64 {
    (ALIGN as u64 - len % ALIGN as u64) % ALIGN as u64
}
