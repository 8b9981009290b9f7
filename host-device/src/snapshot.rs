//! The versioned binary format of snapshots.
//!
//! Each section starts with a 4-byte magic and a little-endian u32 version. A body is either a
//! serde struct encoded with postcard (the console's, from version 2: [`Decoder::postcard`],
//! [`Blob`] for byte strings) or little-endian fixed-width integers and length-prefixed byte
//! strings written field by field ([`Encoder`], [`Decoder`]: the transport's and the block
//! device's sections, and the console's version 1, which is still read). Either way every
//! length is treated as hostile (a snapshot may come from another host): nothing is allocated
//! for a length the remaining input cannot hold.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The data ended early.
    #[error("snapshot truncated at byte {0}")]
    Truncated(usize),
    /// The section does not start with the expected magic.
    #[error("not a {0} snapshot")]
    BadMagic(&'static str),
    /// The section was written by a newer version.
    #[error("{section} snapshot version {found} is newer than {supported}")]
    Version {
        /// Which section.
        section: &'static str,
        /// The version in the data.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A field holds a value that cannot be right.
    #[error("bad snapshot field {0}")]
    BadField(&'static str),
    /// Bytes were left over after the section.
    #[error("{0} trailing bytes after the snapshot")]
    Trailing(usize),
    /// A postcard body could not be decoded.
    #[error("bad snapshot body: {0}")]
    Body(#[from] postcard::Error),
}

/// The start of a section: `magic` and `version`.
pub fn section_header(magic: &[u8; 4], version: u32) -> Vec<u8> {
    Encoder::new(magic, version).finish()
}

/// A byte string in a serde snapshot struct, encoded as one length and the bytes (not as a
/// sequence of separate integers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl<'de> Visitor<'de> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(BlobVisitor)
    }
}

/// Builds a snapshot section.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts a section with its magic (4 bytes) and version.
    pub fn new(magic: &[u8; 4], version: u32) -> Self {
        let mut e = Encoder { buf: Vec::new() };
        e.buf.extend_from_slice(magic);
        e.u32(version);
        e
    }
    /// Appends a byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Appends a boolean as one byte.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    /// Appends a little-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a little-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a little-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
    /// Appends a length-prefixed string.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    /// The finished section.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads a snapshot section, checking every length against what is left.
#[derive(Debug)]
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Opens a section: checks the magic and that the version is at most `supported`, and
    /// returns the decoder and the section's version.
    pub fn new(
        data: &'a [u8],
        magic: &[u8; 4],
        section: &'static str,
        supported: u32,
    ) -> Result<(Self, u32), SnapshotError> {
        let mut d = Decoder { data, pos: 0 };
        if d.take(4)? != magic {
            return Err(SnapshotError::BadMagic(section));
        }
        let found = d.u32()?;
        if found > supported {
            return Err(SnapshotError::Version {
                section,
                found,
                supported,
            });
        }
        Ok((d, found))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(SnapshotError::Truncated(self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// Reads a byte.
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take(1)?[0])
    }
    /// Reads a boolean (0 or 1).
    pub fn bool(&mut self, field: &'static str) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::BadField(field)),
        }
    }
    /// Reads a little-endian u16.
    pub fn u16(&mut self) -> Result<u16, SnapshotError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    /// Reads a little-endian u32.
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Reads a little-endian u64.
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| SnapshotError::Truncated(self.pos))?;
        self.take(n)
    }
    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, SnapshotError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| SnapshotError::BadField(field))
    }
    /// Reads a count of items that each take at least `min_item` bytes, refusing counts the
    /// remaining data cannot hold (so a hostile count cannot make us allocate).
    pub fn count(&mut self, min_item: usize) -> Result<usize, SnapshotError> {
        let n = self.u64()?;
        let left = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(min_item.max(1) as u64) > left {
            return Err(SnapshotError::Truncated(self.pos));
        }
        Ok(n as usize)
    }
    /// Decodes the rest of the section as one postcard-encoded `T`, which must use all of it.
    pub fn postcard<T: DeserializeOwned>(self) -> Result<T, SnapshotError> {
        let (value, rest) = postcard::take_from_bytes(&self.data[self.pos..])?;
        match rest.len() {
            0 => Ok(value),
            n => Err(SnapshotError::Trailing(n)),
        }
    }

    /// Checks that the whole input was read.
    pub fn end(self) -> Result<(), SnapshotError> {
        match self.data.len() - self.pos {
            0 => Ok(()),
            n => Err(SnapshotError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = Encoder::new(b"TEST", 2);
        e.u8(7);
        e.bool(true);
        e.u16(0xbeef);
        e.u32(0xdead_beef);
        e.u64(u64::MAX - 1);
        e.str("org.libguestfs.channel.0");
        e.bytes(&[1, 2, 3]);
        let data = e.finish();
        let (mut d, v) = Decoder::new(&data, b"TEST", "test", 2).unwrap();
        assert_eq!(v, 2);
        assert_eq!(d.u8().unwrap(), 7);
        assert!(d.bool("b").unwrap());
        assert_eq!(d.u16().unwrap(), 0xbeef);
        assert_eq!(d.u32().unwrap(), 0xdead_beef);
        assert_eq!(d.u64().unwrap(), u64::MAX - 1);
        assert_eq!(d.str("s").unwrap(), "org.libguestfs.channel.0");
        assert_eq!(d.bytes().unwrap(), &[1, 2, 3]);
        d.end().unwrap();
    }

    #[test]
    fn hostile_input_is_an_error() {
        let data = Encoder::new(b"TEST", 3).finish();
        assert!(matches!(
            Decoder::new(&data, b"TEST", "test", 2),
            Err(SnapshotError::Version { found: 3, .. })
        ));
        assert_eq!(
            Decoder::new(&data, b"NOPE", "nope", 9).unwrap_err(),
            SnapshotError::BadMagic("nope")
        );
        let mut e = Encoder::new(b"TEST", 1);
        e.u64(u64::MAX);
        let data = e.finish();
        let (mut d, _) = Decoder::new(&data, b"TEST", "test", 1).unwrap();
        assert!(d.bytes().is_err());
        let (mut d, _) = Decoder::new(&data, b"TEST", "test", 1).unwrap();
        assert!(d.count(1).is_err());
        assert!(Decoder::new(&data[..3], b"TEST", "test", 1).is_err());
    }
}
