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

/// The sum of the 8 one-byte varints in `w` ([`Reader::peek_8_small`]).
#[inline]
pub fn byte_sum(w: u64) -> u64 {
    // Pairs of bytes in 16-bit lanes (each at most 254), then the lanes
    // summed by one multiplication (at most 1016, in the top lane).
    const LOW: u64 = 0x00ff_00ff_00ff_00ff;
    let pairs = (w & LOW) + ((w >> 8) & LOW);
    pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48
}

/// Whether one of the 8 bytes of `w` (one-byte varints) is zero.
#[inline]
pub fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(0x0101_0101_0101_0101) & !w & 0x8080_8080_8080_8080 != 0
}

/// The sum of the 8 one-byte zigzag varints in `w`
/// ([`Reader::peek_8_small`]): a byte `b` is `b / 2` when even and
/// `-(b / 2) - 1` when odd.
#[inline]
pub fn zigzag_sum(w: u64) -> i64 {
    let halves = (w >> 1) & 0x7f7f_7f7f_7f7f_7f7f;
    let odd = w & 0x0101_0101_0101_0101;
    let odd_halves = halves & odd.wrapping_mul(0xff);
    byte_sum(halves) as i64 - 2 * byte_sum(odd_halves) as i64 - i64::from(odd.count_ones())
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

    /// The next 8 bytes (little-endian) when they are 8 one-byte varints
    /// (no continuation bit), not consumed: what a walk to a far position
    /// passes over 8 values at a time ([`byte_sum`], [`zigzag_sum`]).
    #[inline]
    pub fn peek_8_small(&self) -> Option<u64> {
        let b: [u8; 8] = self.buf.get(self.pos..self.pos + 8)?.try_into().ok()?;
        let w = u64::from_le_bytes(b);
        (w & 0x8080_8080_8080_8080 == 0).then_some(w)
    }

    /// Consume the 8 bytes [`Reader::peek_8_small`] returned.
    #[inline]
    pub fn skip_8(&mut self) {
        self.pos = (self.pos + 8).min(self.buf.len());
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

    /// A varint of one or two bytes (the common values of most streams),
    /// read without the general decoder (`None`: longer, or cut short).
    #[inline]
    fn small(&mut self) -> Option<u64> {
        let b = *self.buf.get(self.pos)?;
        if b < 0x80 {
            self.pos += 1;
            return Some(u64::from(b));
        }
        let c = *self.buf.get(self.pos + 1)?;
        if c < 0x80 {
            self.pos += 2;
            return Some(u64::from(b & 0x7f) | u64::from(c) << 7);
        }
        None
    }

    /// Read an unsigned varint.
    #[inline]
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        if let Some(v) = self.small() {
            return Ok(v);
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
        // Zigzag: one byte holds -64..=63, two bytes -8192..=8191.
        if let Some(v) = self.small() {
            return Ok((v >> 1) as i64 ^ -((v & 1) as i64));
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

    proptest! {
        /// Whatever the bytes, the fast paths read what the general
        /// decoder reads (value and length), or fail where it fails.
        #[test]
        fn fast_paths_are_the_general_decoder(
            b in proptest::collection::vec(prop_oneof![any::<u8>(), 0x80u8..=0xff], 0..14),
        ) {
            let general = |n: Option<(u64, usize)>| n.filter(|&(_, n)| n > 0 && n <= 10);
            let mut r = Reader::new(&b);
            let got = r.u64("t").ok().map(|v| (v, r.pos()));
            prop_assert_eq!(got, general(u64::decode_var(&b)));
            let mut r = Reader::new(&b);
            let got = r.i64("t").ok().map(|v| (v, r.pos()));
            let want = i64::decode_var(&b).filter(|&(_, n)| n > 0 && n <= 10);
            prop_assert_eq!(got, want);
        }

        /// The sums of 8 one-byte varints taken at once are the sums of
        /// the values read one by one.
        #[test]
        fn eight_small_varints_at_once_are_eight_read_alone(raw in any::<[u8; 8]>()) {
            let b = raw.map(|x| x & 0x7f);
            let r = Reader::new(&b);
            let w = r.peek_8_small().expect("one-byte varints");
            let mut one = Reader::new(&b);
            let (mut sum, mut zsum) = (0u64, 0i64);
            for _ in 0..8 {
                let at = one.pos;
                sum += one.u64("t").unwrap();
                let mut z = Reader::new(&b[at..]);
                zsum += z.i64("t").unwrap();
            }
            prop_assert_eq!(byte_sum(w), sum);
            prop_assert_eq!(zigzag_sum(w), zsum);
            prop_assert_eq!(has_zero_byte(w), b.contains(&0));
            // A continuation bit anywhere: not eight one-byte varints.
            let mut c = b;
            c[(raw[0] % 8) as usize] |= 0x80;
            prop_assert_eq!(Reader::new(&c).peek_8_small(), None);
            prop_assert_eq!(Reader::new(&b[..7]).peek_8_small(), None);
        }
    }

    /// The one- and two-byte fast paths read what the general decoder
    /// reads (every such varint, canonical or not), and a varint cut short
    /// after its first byte is an error.
    #[test]
    fn one_byte_values_are_the_general_decoders() {
        for b in 0u8..0x80 {
            let one = [b];
            let (mut u, mut i) = (Reader::new(&one), Reader::new(&one));
            assert_eq!(u.u64("t").unwrap(), u64::decode_var(&[b]).unwrap().0);
            assert_eq!(i.i64("t").unwrap(), i64::decode_var(&[b]).unwrap().0, "{b}");
            assert_eq!((u.pos(), i.pos()), (1, 1));
        }
        for b in 0x80u8..=0xff {
            for c in 0u8..0x80 {
                let two = [b, c, 0x55];
                let (mut u, mut i) = (Reader::new(&two), Reader::new(&two));
                assert_eq!(u.u64("t").unwrap(), u64::decode_var(&two).unwrap().0);
                assert_eq!(
                    i.i64("t").unwrap(),
                    i64::decode_var(&two).unwrap().0,
                    "{b} {c}"
                );
                assert_eq!((u.pos(), i.pos()), (2, 2));
            }
            assert!(Reader::new(&[b]).u64("t").is_err());
            assert!(Reader::new(&[b]).i64("t").is_err());
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

    /// A tenth byte past bit 63 is not a u64 (SPEC.md conventions): the
    /// general decoder refuses it, and so does the reader.
    #[test]
    fn a_varint_past_64_bits_is_refused() {
        let mut max = vec![0xffu8; 9];
        max.push(0x01);
        assert_eq!(Reader::new(&max).u64("t").unwrap(), u64::MAX);
        assert_eq!(Reader::new(&max).i64("t").unwrap(), i64::MIN);
        for last in [0x02u8, 0x7f] {
            let mut b = vec![0xffu8; 9];
            b.push(last);
            assert!(Reader::new(&b).u64("t").is_err(), "{last:#x}");
            assert!(Reader::new(&b).i64("t").is_err(), "{last:#x}");
        }
    }
}
