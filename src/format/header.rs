//! The 16-byte file header.
//!
//! ```text
//! offset size field
//!   0     8   magic     "COLSNAP\0"
//!   8     2   version   u16 LE, 1 to 5 (section and footer layout, SPEC.md section 8)
//!  10     2   flags     u16 LE, 0 (reserved; readers reject other values)
//!  12     4   reserved  0
//! ```

use crate::error::{Error, Result};

/// The first eight bytes of every snapshot.
pub const FILE_MAGIC: [u8; 8] = *b"COLSNAP\0";
/// The format version this crate writes by default, and the newest it reads:
/// [`VERSION_5`].
pub const VERSION: u16 = VERSION_5;
/// Version 5: version 4 plus the item kind `NumText` (11), an integer
/// literal outside `[-2^63, 2^64)` kept as its text, with its stream (role
/// 11, SPEC.md 1.3). A writer asked for version 5 writes version 4 when no
/// item is `NumText`, so that readers of version 4 read every such file.
pub const VERSION_5: u16 = 5;
/// Version 4: version 3 with the footer's nodes written field by field
/// (every node's parent, then every name, ...) rather than node by node, so
/// that like values sit together for the footer's compression (SPEC.md
/// 5.3). Still written on request: version 3.
pub const VERSION_4: u16 = 4;
/// Version 3: version 2 plus **inline sections**, small node streams kept
/// raw in the footer, without a checksum or directory entry of their own
/// (SPEC.md 5.4). Still written on request.
pub const VERSION_3: u16 = 3;
/// Version 2 stores each section as its payload alone (no frame, no padding)
/// and zstd payloads without the frame magic; see [`VERSION_1`].
pub const VERSION_2: u16 = 2;
/// The first format version: every section starts with a 16-byte frame
/// repeating its directory entry and is zero-padded to a multiple of 8.
/// Still read, and still written on request (`BuildOptions::format_version`).
pub const VERSION_1: u16 = 1;

/// Whether this crate reads format version `v`.
pub fn is_known_version(v: u16) -> bool {
    (VERSION_1..=VERSION).contains(&v)
}
/// Size of the header; sections start here (8-aligned).
pub const HEADER_LEN: usize = 16;

/// The parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u16,
}

impl Header {
    /// The header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&FILE_MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b
    }

    /// Parse and validate the first [`HEADER_LEN`] bytes of a file.
    pub fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "header".into(),
                start: 0,
                end: HEADER_LEN as u64,
                len: b.len() as u64,
            });
        }
        if b[..8] != FILE_MAGIC {
            return Err(Error::BadMagic { offset: 0 });
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !is_known_version(version) {
            return Err(Error::Version {
                got: version,
                supported: VERSION,
            });
        }
        if b[10..16].iter().any(|&x| x != 0) {
            return Err(Error::corrupt(
                "header",
                10,
                "flags and reserved bytes must be zero",
            ));
        }
        Ok(Header { version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejections() {
        for version in [VERSION_1, VERSION_2, VERSION_3, VERSION_4] {
            let h = Header { version };
            let b = h.to_bytes();
            assert_eq!(Header::parse(&b).unwrap(), h);
            for i in 0..HEADER_LEN {
                let mut c = b;
                c[i] ^= 0x10;
                assert!(Header::parse(&c).is_err(), "flip at {i} accepted");
            }
            assert!(Header::parse(&b[..10]).is_err());
        }
        for version in [0, VERSION + 1] {
            let b = Header { version }.to_bytes();
            assert!(matches!(Header::parse(&b), Err(Error::Version { got, .. }) if got == version));
        }
    }
}
