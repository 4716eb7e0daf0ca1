//! Reading a gzip member (RFC 1952) of a section: the header, the raw
//! deflate stream (flate2's inflater), then the trailer, checked.
//!
//! ```text
//! MEMBER := ID1(0x1f) ID2(0x8b) CM(8) FLG MTIME(4) XFL OS
//!           [XLEN(u16 LE) EXTRA] [FNAME\0] [FCOMMENT\0] [CRC16(2)]
//!           DEFLATE CRC32(u32 LE, of the output) ISIZE(u32 LE, output length mod 2^32)
//! ```
//!
//! Same verdicts as flate2's `GzDecoder` (one member; bytes after it are
//! not read). Written here so that the CRC-32 of the output can be computed
//! with a 1 KiB table in the browser build (wasm32) rather than
//! crc32fast's 16 KiB one, a twentieth of what the page downloads; native
//! builds use crc32fast (faster).

use std::io::{self, Read};

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
/// FLG bits 5 to 7 are reserved and must be zero (RFC 1952, 2.3.1).
const FRESERVED: u8 = 0xe0;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {what}"))
}

/// The decompressed bytes of the gzip member at the start of `stored`.
pub(crate) struct Member<'a> {
    inflate: flate2::bufread::DeflateDecoder<&'a [u8]>,
    crc: Crc32,
    len: u32,
    checked: bool,
}

impl<'a> Member<'a> {
    /// Parse the header; the deflate stream is read by `read`.
    pub(crate) fn new(stored: &'a [u8]) -> io::Result<Self> {
        let mut r = stored;
        let mut take = |n: usize| -> io::Result<&'a [u8]> {
            if r.len() < n {
                return Err(bad("truncated header"));
            }
            let (h, t) = r.split_at(n);
            r = t;
            Ok(h)
        };
        let h = take(10)?;
        if h[0] != 0x1f || h[1] != 0x8b {
            return Err(bad("invalid header (not gzip)"));
        }
        if h[2] != 8 {
            return Err(bad("unsupported compression method"));
        }
        let flg = h[3];
        if flg & FRESERVED != 0 {
            return Err(bad("reserved header flags set"));
        }
        if flg & FEXTRA != 0 {
            let x = take(2)?;
            take(u16::from_le_bytes([x[0], x[1]]) as usize)?;
        }
        for flag in [FNAME, FCOMMENT] {
            if flg & flag != 0 {
                // A zero-terminated string.
                while take(1)?[0] != 0 {}
            }
        }
        if flg & FHCRC != 0 {
            let c = take(2)?;
            let want = u16::from_le_bytes([c[0], c[1]]);
            let head = &stored[..stored.len() - r.len() - 2];
            let mut crc = Crc32::new();
            crc.update(head);
            if crc.sum() as u16 != want {
                return Err(bad("header CRC mismatch"));
            }
        }
        Ok(Member {
            inflate: flate2::bufread::DeflateDecoder::new(r),
            crc: Crc32::new(),
            len: 0,
            checked: false,
        })
    }

    /// At the end of the deflate stream: the trailer's CRC-32 and length.
    fn check_trailer(&mut self) -> io::Result<()> {
        // What the inflater left of the input: the trailer, then bytes
        // after the member (not read).
        let t: &[u8] = self.inflate.get_ref();
        if t.len() < 8 {
            return Err(bad("truncated trailer"));
        }
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let len = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
        if crc != self.crc.sum() {
            return Err(bad("CRC-32 mismatch"));
        }
        if len != self.len {
            return Err(bad("length mismatch"));
        }
        self.checked = true;
        Ok(())
    }
}

impl Read for Member<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.checked || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inflate.read(buf)?;
        if n == 0 {
            self.check_trailer()?;
            return Ok(0);
        }
        self.crc.update(&buf[..n]);
        self.len = self.len.wrapping_add(n as u32);
        Ok(n)
    }
}

/// CRC-32 (ISO-HDLC, gzip's) of the output: crc32fast natively.
#[cfg(not(target_arch = "wasm32"))]
struct Crc32(crc32fast::Hasher);

#[cfg(not(target_arch = "wasm32"))]
impl Crc32 {
    fn new() -> Self {
        Crc32(crc32fast::Hasher::new())
    }
    fn update(&mut self, b: &[u8]) {
        self.0.update(b);
    }
    fn sum(&self) -> u32 {
        self.0.clone().finalize()
    }
}

/// CRC-32 (ISO-HDLC, gzip's) of the output: a byte at a time with a 1 KiB
/// table in the browser build.
#[cfg(any(target_arch = "wasm32", test))]
struct SmallCrc32(u32);

#[cfg(any(target_arch = "wasm32", test))]
impl SmallCrc32 {
    /// The reflected polynomial 0x04c11db7.
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    fn new() -> Self {
        SmallCrc32(!0)
    }
    fn update(&mut self, b: &[u8]) {
        let mut c = self.0;
        for &x in b {
            c = Self::TABLE[((c ^ x as u32) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }
    fn sum(&self) -> u32 {
        !self.0
    }
}

#[cfg(target_arch = "wasm32")]
use SmallCrc32 as Crc32;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(stored: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Member::new(stored)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn gzip(raw: &[u8], b: flate2::GzBuilder) -> Vec<u8> {
        use std::io::Write;
        let mut e = b.write(Vec::new(), flate2::Compression::new(6));
        e.write_all(raw).unwrap();
        e.finish().unwrap()
    }

    proptest! {
        #[test]
        fn small_crc_is_crc32(b in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let mut s = SmallCrc32::new();
            s.update(&b);
            prop_assert_eq!(s.sum(), crc32fast::hash(&b));
        }

        #[test]
        fn same_as_flate2(raw in proptest::collection::vec(0u8..5, 0..5000), junk in proptest::collection::vec(any::<u8>(), 0..20)) {
            let mut z = gzip(&raw, flate2::GzBuilder::new());
            z.extend_from_slice(&junk);
            prop_assert_eq!(read_all(&z).unwrap(), raw);
        }

        #[test]
        fn garbage_same_verdict_as_flate2(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut want = Vec::new();
            let flate = flate2::read::GzDecoder::new(&b[..]).read_to_end(&mut want).is_ok();
            let ours = read_all(&b);
            prop_assert_eq!(ours.is_ok(), flate);
            if let Ok(v) = ours {
                prop_assert_eq!(v, want);
            }
        }
    }

    #[test]
    fn optional_header_fields() {
        let raw = b"issue tracker rows, compressed with every optional header field".repeat(20);
        let b = flate2::GzBuilder::new()
            .filename("rows.json")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4]);
        assert_eq!(read_all(&gzip(&raw, b)).unwrap(), raw);
    }

    #[test]
    fn header_crc_checked() {
        // FHCRC: the low 16 bits of the CRC-32 of the header before it.
        let raw = b"some rows".repeat(10);
        let z = gzip(&raw, flate2::GzBuilder::new());
        let mut h = z[..10].to_vec();
        h[3] |= FHCRC;
        let c = crc32fast::hash(&h) as u16;
        let mut good = h.clone();
        good.extend_from_slice(&c.to_le_bytes());
        good.extend_from_slice(&z[10..]);
        assert_eq!(read_all(&good).unwrap(), raw);
        let mut badh = h;
        badh.extend_from_slice(&(c ^ 1).to_le_bytes());
        badh.extend_from_slice(&z[10..]);
        assert!(
            read_all(&badh)
                .unwrap_err()
                .to_string()
                .contains("header CRC")
        );
    }

    #[test]
    fn trailer_checked() {
        let raw = b"rows that a trailer vouches for".repeat(30);
        let z = gzip(&raw, flate2::GzBuilder::new());
        let n = z.len();
        let mut crc = z.clone();
        crc[n - 8] ^= 1;
        assert!(read_all(&crc).unwrap_err().to_string().contains("CRC-32"));
        let mut len = z.clone();
        len[n - 4] ^= 1;
        assert!(read_all(&len).unwrap_err().to_string().contains("length"));
        assert!(
            read_all(&z[..n - 3])
                .unwrap_err()
                .to_string()
                .contains("trailer")
        );
        let mut reserved = z;
        reserved[3] |= 0x20;
        assert!(read_all(&reserved).is_err());
    }
}
