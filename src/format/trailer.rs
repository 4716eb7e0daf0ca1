//! The fixed 32-byte trailer at the end of the file. A reader fetches the
//! tail of the file, parses the trailer, then the footer just before it.
//!
//! ```text
//! offset size field
//!   0     8   footer_offset      u64 LE, where the stored footer starts
//!   8     4   footer_stored_len  u32 LE
//!  12     4   footer_raw_len     u32 LE
//!  16     4   footer_crc32c      u32 LE, of the stored footer bytes
//!  20     1   footer_codec       0 none, 2 zstd
//!  21     1   reserved           0
//!  22     2   version            u16 LE, equal to the header's
//!  24     4   trailer_crc32c     u32 LE, of trailer bytes 0..24
//!  28     4   magic              "CSNP"
//! ```
//! The stored footer ends exactly where the trailer begins.

use super::crc32c;
use super::header::{VERSION, is_known_version};
use crate::compress::Codec;
use crate::error::{Error, Result};

/// Size of the trailer.
pub const TRAILER_LEN: usize = 32;
/// The last four bytes of every snapshot.
pub const TRAILER_MAGIC: [u8; 4] = *b"CSNP";

/// The parsed trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Where the stored footer starts.
    pub footer_offset: u64,
    /// Stored footer length.
    pub footer_stored_len: u32,
    /// Footer length after decompression.
    pub footer_raw_len: u32,
    /// crc32c of the stored footer.
    pub footer_crc: u32,
    /// Codec of the footer.
    pub footer_codec: Codec,
    /// Format version (equal to the header's).
    pub version: u16,
}

impl Trailer {
    /// The trailer bytes.
    pub fn to_bytes(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&self.footer_offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.footer_stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.footer_raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.footer_crc.to_le_bytes());
        b[20] = self.footer_codec as u8;
        b[22..24].copy_from_slice(&self.version.to_le_bytes());
        let crc = crc32c(&b[..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        b[28..32].copy_from_slice(&TRAILER_MAGIC);
        b
    }

    /// Parse the trailer from the last [`TRAILER_LEN`] bytes of a file of
    /// `file_len` bytes, and check that the footer it points to fits.
    pub fn parse(b: &[u8], file_len: u64) -> Result<Trailer> {
        let start = file_len.saturating_sub(TRAILER_LEN as u64);
        if b.len() != TRAILER_LEN || file_len < TRAILER_LEN as u64 {
            return Err(Error::Truncated {
                what: "trailer".into(),
                start,
                end: file_len,
                len: file_len.min(b.len() as u64),
            });
        }
        if b[28..32] != TRAILER_MAGIC {
            return Err(Error::BadMagic { offset: start + 28 });
        }
        let stored = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
        let actual = crc32c(&b[..24]);
        if stored != actual {
            return Err(Error::Checksum {
                what: "trailer".into(),
                offset: start,
                expected: stored,
                got: actual,
            });
        }
        let version = u16::from_le_bytes([b[22], b[23]]);
        if !is_known_version(version) {
            return Err(Error::Version {
                got: version,
                supported: VERSION,
            });
        }
        if b[21] != 0 {
            return Err(Error::corrupt(
                "trailer",
                start + 21,
                "reserved byte must be zero",
            ));
        }
        let footer_codec = Codec::from_u8(b[20]).ok_or_else(|| {
            Error::corrupt(
                "trailer",
                start + 20,
                format!("unknown footer codec {}", b[20]),
            )
        })?;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let t = Trailer {
            footer_offset: u64::from_le_bytes(b[0..8].try_into().unwrap_or_default()),
            footer_stored_len: u32_at(8),
            footer_raw_len: u32_at(12),
            footer_crc: u32_at(16),
            footer_codec,
            version,
        };
        if t.footer_offset.checked_add(t.footer_stored_len as u64) != Some(start) {
            return Err(Error::corrupt(
                "trailer",
                start,
                format!(
                    "footer at {} + {} bytes does not end where the trailer starts ({start})",
                    t.footer_offset, t.footer_stored_len
                ),
            ));
        }
        if t.footer_offset < super::HEADER_LEN as u64 {
            return Err(Error::corrupt(
                "trailer",
                start,
                "footer overlaps the header",
            ));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bit_flip_is_detected() {
        let t = Trailer {
            footer_offset: 100,
            footer_stored_len: 20,
            footer_raw_len: 40,
            footer_crc: 7,
            footer_codec: Codec::Zstd,
            version: VERSION,
        };
        let b = t.to_bytes();
        assert_eq!(Trailer::parse(&b, 152).unwrap(), t);
        for bit in 0..TRAILER_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(Trailer::parse(&c, 152).is_err(), "bit {bit}");
        }
    }
}
