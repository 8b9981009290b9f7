//! Package databases read from untrusted disks, portable and `no_std + alloc`.
//!
//! The on-disk stores rpm has used for its database, each yielding the rpm header blobs it
//! holds, and the header format itself:
//! - [`sqlite`]: the SQLite file format (rpm >= 4.16, `rpmdb.sqlite`), with its `-wal` file;
//! - [`bdb`]: Berkeley DB hash databases (`Packages`, rpm <= 4.15, RHEL/CentOS <= 8);
//! - [`ndb`]: rpm's own ndb format (`Packages.db`, SUSE since 15.3);
//! - [`rpmheader`]: the rpm header blob (index entries and data store) and the tags
//!   inspection reads.
//!
//! No crate reads these in `no_std` (../shared/FIELD-NOTES.md, "Crates for the readers"), so
//! they are written here, each small and fuzzed (`kernel/fuzz`). Every reader works over a
//! [`Store`], reading pages on demand rather than the whole file, bounds every loop by the
//! size of the file (cycles in page chains are detected, not followed), and hands each blob
//! to a callback as it is found: a corrupt database yields the blobs read before the damage,
//! then an error.

pub mod bdb;
pub mod ndb;
pub mod rpmheader;
pub mod sqlite;

use alloc::string::String;

/// The largest blob (an rpm header) any reader hands out or allocates for. Real headers are
/// kilobytes to a few megabytes (a kernel's file list); the appliance runs in 128 MiB, so a
/// forged length must not make it allocate anywhere near that.
pub const MAX_BLOB: u64 = 16 << 20;

/// Why a [`Store`] read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The range asked for is not inside the store.
    #[error("read of {len} bytes at {offset} is past the end ({size} bytes)")]
    OutOfRange {
        /// Where the read started.
        offset: u64,
        /// How many bytes it asked for.
        len: usize,
        /// The store's size.
        size: u64,
    },
    /// The underlying file could not be read.
    #[error("I/O error: {0}")]
    Io(String),
}

/// Random access to one database file.
pub trait Store {
    /// The file's size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` with the bytes at `offset`; [`StoreError::OutOfRange`] when any of them
    /// is past the end.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError>;
}

/// A file held in memory (tests, fuzzing, small files).
#[derive(Clone, Copy, Debug)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Store for Bytes<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let out_of_range = StoreError::OutOfRange {
            offset,
            len: buf.len(),
            size: self.0.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| out_of_range.clone())?;
        let end = start.checked_add(buf.len()).ok_or(out_of_range.clone())?;
        let src = self.0.get(start..end).ok_or(out_of_range)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_store_bounds() {
        let data = [1u8, 2, 3, 4];
        let store: &dyn Store = &Bytes(&data);
        let mut buf = [0u8; 2];
        store.read_exact_at(2, &mut buf).unwrap();
        assert_eq!(buf, [3, 4]);
        assert!(store.read_exact_at(3, &mut buf).is_err());
        assert!(store.read_exact_at(u64::MAX, &mut buf).is_err());
        let mut empty = [0u8; 0];
        store.read_exact_at(4, &mut empty).unwrap();
    }
}
