//! XDR (RFC 4506) primitives as libguestfs uses them: big-endian 4-byte units, variable-length
//! data padded to a multiple of 4 with zero bytes, `bool` as a 4-byte 0/1.
//!
//! [`Decoder`] reads from a byte slice and never panics; a length field is checked against the
//! bytes that remain *before* anything is allocated, so a decode allocates at most a small
//! constant factor of its input. [`Encoder`] appends to a `Vec<u8>`.

use alloc::vec::Vec;
use core::fmt;

/// A byte string: libguestfs strings are C strings on the wire, not necessarily UTF-8 (file names
/// in a guest are bytes).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The string as UTF-8, if it is.
    pub fn to_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Bytes(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Bytes {
    fn from(s: &[u8]) -> Self {
        Bytes(s.to_vec())
    }
}

impl From<alloc::string::String> for Bytes {
    fn from(s: alloc::string::String) -> Self {
        Bytes(s.into_bytes())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

/// Why an XDR decode failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XdrError {
    /// The input ended inside an item.
    #[error("XDR input truncated: needed {needed} bytes at offset {offset}, {remaining} left")]
    Truncated {
        /// Offset of the item.
        offset: usize,
        /// Bytes the item needs.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A variable-length item is longer than its declared maximum.
    #[error("XDR length {len} exceeds the bound {max}")]
    TooLong {
        /// The length on the wire.
        len: u32,
        /// The bound.
        max: u32,
    },
    /// A string containing a NUL byte. A C string cannot hold one (libguestfs's daemon would
    /// silently cut the string there); we refuse it rather than act on a shortened path.
    #[error("XDR string contains a NUL byte")]
    NulInString,
}

/// Reads XDR items from a byte slice. Never panics; never allocates more than the input holds.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes not consumed yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        if n > self.remaining() {
            return Err(XdrError::Truncated {
                offset: self.pos,
                needed: n,
                remaining: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// An `unsigned int`.
    pub fn u32(&mut self) -> Result<u32, XdrError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An `int`.
    pub fn i32(&mut self) -> Result<i32, XdrError> {
        Ok(self.u32()? as i32)
    }

    /// An `unsigned hyper` (`uint64_t`).
    pub fn u64(&mut self) -> Result<u64, XdrError> {
        let hi = self.u32()? as u64;
        let lo = self.u32()? as u64;
        Ok(hi << 32 | lo)
    }

    /// A `hyper` (`int64_t`).
    pub fn i64(&mut self) -> Result<i64, XdrError> {
        Ok(self.u64()? as i64)
    }

    /// A `float` (IEEE single, big-endian).
    pub fn f32(&mut self) -> Result<f32, XdrError> {
        Ok(f32::from_bits(self.u32()?))
    }

    /// A `char` (an `int` on the wire, truncated to 8 bits as rpcgen's `xdr_char` does).
    pub fn char(&mut self) -> Result<u8, XdrError> {
        Ok(self.u32()? as u8)
    }

    /// A `bool`: like glibc's and libtirpc's `xdr_bool`, any non-zero value is true.
    pub fn bool(&mut self) -> Result<bool, XdrError> {
        Ok(self.u32()? != 0)
    }

    /// Fixed-length `opaque[n]`, padded to 4.
    pub fn fixed_opaque(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        let padded = n.div_ceil(4) * 4;
        let s = self.take(padded)?;
        Ok(&s[..n])
    }

    /// Variable-length `opaque<max>` (borrowed), length checked against `max` and the input.
    pub fn opaque_ref(&mut self, max: u32) -> Result<&'a [u8], XdrError> {
        let len = self.u32()?;
        if len > max {
            return Err(XdrError::TooLong { len, max });
        }
        self.fixed_opaque(len as usize)
    }

    /// Variable-length `opaque<max>`, copied.
    pub fn opaque(&mut self, max: u32) -> Result<Vec<u8>, XdrError> {
        Ok(self.opaque_ref(max)?.to_vec())
    }

    /// `string<max>`: bytes without a NUL.
    pub fn string(&mut self, max: u32) -> Result<Bytes, XdrError> {
        let s = self.opaque_ref(max)?;
        if s.contains(&0) {
            return Err(XdrError::NulInString);
        }
        Ok(Bytes(s.to_vec()))
    }

    /// An optional item (`T *x`): a `bool` discriminant (non-zero: present) then the item.
    pub fn optional<T>(
        &mut self,
        item: impl FnOnce(&mut Self) -> Result<T, XdrError>,
    ) -> Result<Option<T>, XdrError> {
        if self.bool()? {
            item(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A variable-length array `T<max>` whose items each take at least `min_item` bytes: the
    /// count is checked against `max` and against what the remaining input could hold before
    /// anything is allocated.
    pub fn array<T>(
        &mut self,
        max: u32,
        min_item: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, XdrError>,
    ) -> Result<Vec<T>, XdrError> {
        let n = self.u32()?;
        if n > max {
            return Err(XdrError::TooLong { len: n, max });
        }
        let needed = (n as usize).saturating_mul(min_item.max(1));
        if needed > self.remaining() {
            return Err(XdrError::Truncated {
                offset: self.pos,
                needed,
                remaining: self.remaining(),
            });
        }
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            v.push(item(self)?);
        }
        Ok(v)
    }

    /// A list of unbounded strings (`guestfs_str list<>`).
    pub fn string_list(&mut self) -> Result<Vec<Bytes>, XdrError> {
        self.array(u32::MAX, 4, |d| d.string(u32::MAX))
    }
}

/// Appends XDR items to a byte vector.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder appending to `buf`.
    pub fn with_vec(buf: Vec<u8>) -> Self {
        Encoder { buf }
    }

    /// The bytes encoded.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes encoded so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes encoded so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Nothing encoded yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// An `unsigned int`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// An `int`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.u32(v as u32)
    }

    /// An `unsigned hyper`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A `hyper`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(v as u64)
    }

    /// A `float`.
    pub fn f32(&mut self, v: f32) -> &mut Self {
        self.u32(v.to_bits())
    }

    /// A `char` (sign-extended to an `int`, as rpcgen's `xdr_char` does with a signed `char`).
    pub fn char(&mut self, c: u8) -> &mut Self {
        self.i32(c as i8 as i32)
    }

    /// A `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u32(v as u32)
    }

    /// Fixed-length `opaque[n]` (the caller gives exactly n bytes), padded to 4.
    pub fn fixed_opaque(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        let pad = (4 - data.len() % 4) % 4;
        self.buf.extend_from_slice(&[0; 3][..pad]);
        self
    }

    /// Variable-length `opaque<>` / `string<>`: length, bytes, padding. The caller keeps the
    /// length within the item's bound (see [`crate::frame`] for the message bound).
    pub fn opaque(&mut self, data: &[u8]) -> &mut Self {
        self.u32(data.len() as u32);
        self.fixed_opaque(data)
    }

    /// A string (same wire form as `opaque<>`).
    pub fn string(&mut self, s: &[u8]) -> &mut Self {
        self.opaque(s)
    }

    /// A list of strings.
    pub fn string_list<S: AsRef<[u8]>>(&mut self, items: &[S]) -> &mut Self {
        self.u32(items.len() as u32);
        for s in items {
            self.string(s.as_ref());
        }
        self
    }

    /// An optional item's discriminant and item.
    pub fn optional<T>(&mut self, v: Option<T>, item: impl FnOnce(&mut Self, T)) -> &mut Self {
        match v {
            None => self.u32(0),
            Some(t) => {
                self.u32(1);
                item(self, t);
                self
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip_primitives() {
        let mut e = Encoder::new();
        e.u32(0xdead_beef)
            .i32(-2)
            .u64(0x0102_0304_0506_0708)
            .i64(-3)
            .bool(true)
            .string(b"abcde")
            .opaque(b"")
            .char(b'd')
            .f32(-1.0)
            .optional(Some(7u32), |e, v| {
                e.u32(v);
            })
            .optional(None::<u32>, |_, _| {});
        let v = e.into_vec();
        assert_eq!(v.len(), 4 + 4 + 8 + 8 + 4 + 12 + 4 + 4 + 4 + 8 + 4);
        let mut d = Decoder::new(&v);
        assert_eq!(d.u32().unwrap(), 0xdead_beef);
        assert_eq!(d.i32().unwrap(), -2);
        assert_eq!(d.u64().unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(d.i64().unwrap(), -3);
        assert!(d.bool().unwrap());
        assert_eq!(d.string(5).unwrap(), Bytes::from("abcde"));
        assert_eq!(d.opaque(0).unwrap(), vec![]);
        assert_eq!(d.char().unwrap(), b'd');
        assert_eq!(d.f32().unwrap(), -1.0);
        assert_eq!(d.optional(|d| d.u32()).unwrap(), Some(7));
        assert_eq!(d.optional(|d| d.u32()).unwrap(), None);
        assert_eq!(d.remaining(), 0);
    }

    #[test]
    fn padding_is_zero_and_counted() {
        let mut e = Encoder::new();
        e.string(b"a");
        assert_eq!(e.as_slice(), &[0, 0, 0, 1, b'a', 0, 0, 0]);
    }

    #[test]
    fn bounds_and_truncation() {
        let mut e = Encoder::new();
        e.string(b"abcdef");
        let v = e.into_vec();
        assert_eq!(
            Decoder::new(&v).string(5),
            Err(XdrError::TooLong { len: 6, max: 5 })
        );
        assert!(matches!(
            Decoder::new(&v[..9]).string(100),
            Err(XdrError::Truncated { .. })
        ));
        // A huge length with nothing behind it: an error before any allocation.
        let huge = [0xff, 0xff, 0xff, 0xf0];
        assert!(matches!(
            Decoder::new(&huge).string(u32::MAX),
            Err(XdrError::Truncated { .. })
        ));
        assert!(matches!(
            Decoder::new(&huge).string_list(),
            Err(XdrError::Truncated { .. })
        ));
        assert_eq!(Decoder::new(&[0, 0, 0, 2]).bool(), Ok(true));
        let mut e = Encoder::new();
        e.string(b"a\0b");
        assert_eq!(
            Decoder::new(e.as_slice()).string(10),
            Err(XdrError::NulInString)
        );
    }
}
