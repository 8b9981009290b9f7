//! Random access to one file's bytes, for the readers of formats too large to read whole
//! (package databases, registry hives): a [`Store`] reads exactly the bytes asked for, from
//! memory ([`Bytes`]) or from a file of a [`FileSystem`] ([`FileStore`]).

use alloc::format;
use alloc::string::{String, ToString};

use vmchannel_proto::FileKind;

use crate::fs::{FileSystem, FsError};

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

/// Random access to one file (a database, a hive).
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

/// A regular file of a filesystem as a [`Store`].
pub struct FileStore<'a> {
    fs: &'a dyn FileSystem,
    path: String,
    size: u64,
}

impl<'a> FileStore<'a> {
    /// Opens regular file `path` of `fs`, refusing one larger than `max` bytes.
    pub fn open(fs: &'a dyn FileSystem, path: &str, max: u64) -> Result<FileStore<'a>, FsError> {
        let st = fs.stat(path)?;
        if st.kind != FileKind::File {
            return Err(FsError::NotAFile(String::from(path)));
        }
        if st.size > max {
            return Err(FsError::TooLarge(format!(
                "{path}: {} bytes (limit {max})",
                st.size
            )));
        }
        Ok(FileStore {
            fs,
            path: String::from(path),
            size: st.size,
        })
    }
}

impl Store for FileStore<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(StoreError::OutOfRange {
                offset,
                len: buf.len(),
                size: self.size,
            });
        }
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .fs
                .read_at(&self.path, offset + done as u64, &mut buf[done..])
                .map_err(|e| StoreError::Io(e.to_string()))?;
            if n == 0 {
                // The file is shorter than its inode said.
                return Err(StoreError::OutOfRange {
                    offset,
                    len: buf.len(),
                    size: offset + done as u64,
                });
            }
            done += n;
        }
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
