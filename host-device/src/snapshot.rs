//! The versioned binary format of snapshots.
//!
//! Each section starts with a 4-byte magic and a little-endian u32 version
//! ([`section_header`]). The body is a serde struct encoded with postcard
//! ([`Decoder::postcard`], [`Blob`] for byte strings). Version 1 of every section, still read,
//! was written field by field: little-endian fixed-width integers and byte strings after a u64
//! length, which [`Decoder`] reads. Either way every length is treated as hostile (a snapshot
//! may come from another host): nothing is allocated for a length the remaining input cannot
//! hold.

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

/// The start of a section: `magic` and `version` (little-endian).
pub fn section_header(magic: &[u8; 4], version: u32) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.extend_from_slice(&version.to_le_bytes());
    v
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

    /// Writes version 1 fields, as the field-by-field format did.
    #[derive(Default)]
    struct Writer(Vec<u8>);

    impl Writer {
        fn new(magic: &[u8; 4], version: u32) -> Self {
            Writer(section_header(magic, version))
        }
        fn put(&mut self, b: &[u8]) -> &mut Self {
            self.0.extend_from_slice(b);
            self
        }
        fn bytes(&mut self, b: &[u8]) -> &mut Self {
            self.put(&(b.len() as u64).to_le_bytes()).put(b)
        }
    }

    #[test]
    fn round_trip() {
        let mut w = Writer::new(b"TEST", 2);
        w.put(&[7, 1])
            .put(&0xbeef_u16.to_le_bytes())
            .put(&0xdead_beef_u32.to_le_bytes())
            .put(&(u64::MAX - 1).to_le_bytes())
            .bytes(b"org.libguestfs.channel.0")
            .bytes(&[1, 2, 3]);
        let data = w.0;
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
        let data = section_header(b"TEST", 3);
        assert!(matches!(
            Decoder::new(&data, b"TEST", "test", 2),
            Err(SnapshotError::Version { found: 3, .. })
        ));
        assert_eq!(
            Decoder::new(&data, b"NOPE", "nope", 9).unwrap_err(),
            SnapshotError::BadMagic("nope")
        );
        let mut w = Writer::new(b"TEST", 1);
        w.put(&u64::MAX.to_le_bytes());
        let data = w.0;
        let (mut d, _) = Decoder::new(&data, b"TEST", "test", 1).unwrap();
        assert!(d.bytes().is_err());
        let (mut d, _) = Decoder::new(&data, b"TEST", "test", 1).unwrap();
        assert!(d.count(1).is_err());
        assert!(Decoder::new(&data[..3], b"TEST", "test", 1).is_err());
    }

    #[test]
    fn postcard_bodies_are_whole_and_blobs_are_byte_strings() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct S {
            a: u16,
            b: Blob,
        }
        let s = S {
            a: 300,
            b: Blob(vec![9; 3]),
        };
        let data = postcard::to_extend(&s, section_header(b"TEST", 2)).unwrap();
        // The blob is its length and its bytes.
        assert_eq!(&data[8..], [0xac, 0x02, 3, 9, 9, 9]);
        let (d, _) = Decoder::new(&data, b"TEST", "test", 2).unwrap();
        assert_eq!(d.postcard::<S>().unwrap(), s);
        let mut longer = data.clone();
        longer.push(0);
        let (d, _) = Decoder::new(&longer, b"TEST", "test", 2).unwrap();
        assert_eq!(d.postcard::<S>(), Err(SnapshotError::Trailing(1)));
        // A blob longer than what is left.
        let mut lying = data[..11].to_vec();
        lying[10] = 100;
        let (d, _) = Decoder::new(&lying, b"TEST", "test", 2).unwrap();
        assert!(d.postcard::<S>().is_err());
    }
}
