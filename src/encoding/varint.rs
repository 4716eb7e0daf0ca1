//! LEB128 varints (unsigned) and zigzag varints (signed), via `integer-encoding`.
//!
//! Zigzag maps 0, -1, 1, -2, ... to 0, 1, 2, 3, ... so small magnitudes of
//! either sign take one byte.

use crate::error::{Error, Result};
use integer_encoding::VarInt;

/// Append `v` as an unsigned LEB128 varint (1 to 10 bytes).
#[inline]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 10];
    let n = v.encode_var(&mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// Append `v` zigzag-mapped as a varint.
#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 10];
    let n = v.encode_var(&mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// Bytes of `v` written by [`put_i64`].
#[inline]
pub fn len_i64(v: i64) -> usize {
    v.required_space()
}

/// Append a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked cursor over a byte slice. Every read returns an error
/// instead of panicking when the bytes run out or a varint is malformed.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Start reading at the first byte of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn err(&self, what: &str, detail: &str) -> Error {
        Error::corrupt(what, self.pos as u64, detail)
    }

    /// Read an unsigned varint.
    #[inline]
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        // Fast path for one-byte values.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(b as u64);
            }
        }
        match u64::decode_var(&self.buf[self.pos..]) {
            Some((v, n)) if n > 0 && n <= 10 => {
                self.pos += n;
                Ok(v)
            }
            _ => Err(self.err(what, "truncated or malformed varint")),
        }
    }

    /// Read a zigzag varint.
    #[inline]
    pub fn i64(&mut self, what: &str) -> Result<i64> {
        // Fast path for one-byte values (zigzag: -64..=63).
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(i64::from(b >> 1) ^ -i64::from(b & 1));
            }
        }
        match i64::decode_var(&self.buf[self.pos..]) {
            Some((v, n)) if n > 0 && n <= 10 => {
                self.pos += n;
                Ok(v)
            }
            _ => Err(self.err(what, "truncated or malformed varint")),
        }
    }

    /// Read a varint that must fit a `usize` and be at most `max`.
    pub fn len(&mut self, what: &str, max: u64) -> Result<usize> {
        let at = self.pos;
        let v = self.u64(what)?;
        if v > max {
            return Err(Error::corrupt(
                what,
                at as u64,
                format!("length {v} exceeds the limit {max}"),
            ));
        }
        usize::try_from(v)
            .map_err(|_| Error::corrupt(what, at as u64, "length does not fit in memory"))
    }

    /// Read exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(what, &format!("needs {n} bytes, {} left", self.remaining())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Read a length-prefixed byte string.
    pub fn len_bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.len(what, self.remaining() as u64)?;
        self.bytes(n, what)
    }

    /// Read a length-prefixed UTF-8 string.
    pub fn str(&mut self, what: &str) -> Result<&'a str> {
        let at = self.pos;
        let b = self.len_bytes(what)?;
        std::str::from_utf8(b)
            .map_err(|e| Error::corrupt(what, at as u64, format!("invalid UTF-8: {e}")))
    }

    /// Read one byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Read a little-endian u32.
    pub fn u32_le(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The one-byte fast paths read what the general decoder reads.
    #[test]
    fn one_byte_values_are_the_general_decoders() {
        for b in 0u8..0x80 {
            let one = [b];
            let (mut u, mut i) = (Reader::new(&one), Reader::new(&one));
            assert_eq!(u.u64("t").unwrap(), u64::decode_var(&[b]).unwrap().0);
            assert_eq!(i.i64("t").unwrap(), i64::decode_var(&[b]).unwrap().0, "{b}");
            assert_eq!((u.pos(), i.pos()), (1, 1));
        }
    }

    proptest! {
        #[test]
        fn varint_roundtrip(u in any::<u64>(), i in any::<i64>(), s in ".*") {
            let mut b = Vec::new();
            put_u64(&mut b, u);
            put_i64(&mut b, i);
            put_bytes(&mut b, s.as_bytes());
            let mut r = Reader::new(&b);
            prop_assert_eq!(r.u64("t").unwrap(), u);
            prop_assert_eq!(r.i64("t").unwrap(), i);
            prop_assert_eq!(r.str("t").unwrap(), s.as_str());
            prop_assert!(r.is_empty());
        }

        #[test]
        fn reader_never_panics(b in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut r = Reader::new(&b);
            let _ = r.u64("t");
            let _ = r.i64("t");
            let _ = r.str("t");
            let _ = r.len("t", 10);
            let _ = r.u32_le("t");
        }
    }

    #[test]
    fn zigzag_small_values_take_one_byte() {
        for v in [-64i64, -1, 0, 1, 63] {
            let mut b = Vec::new();
            put_i64(&mut b, v);
            assert_eq!(b.len(), 1, "{v}");
        }
    }
}
