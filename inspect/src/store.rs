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

/// Files up to this size are read whole, in one sequential read, the first time a
/// [`FileStore`] is read; larger ones are read piece by piece as asked.
///
/// Filesystem drivers find a file's blocks from its start on every positioned read
/// (ext4-view walks its block map from the beginning at each seek), so a reader that
/// visits every page of a database in b-tree order would pay that walk per page: for a
/// 9 MB rpm database, 1,274 reads at about 32 µs each in process, ten times that in an
/// emulated guest. The stores read whole (the package databases) are visited nearly in
/// full anyway; registry hives, which can be larger, usually are not.
pub const READ_WHOLE: u64 = 16 << 20;

/// A regular file of a filesystem as a [`Store`].
pub struct FileStore<'a> {
    fs: &'a dyn FileSystem,
    path: String,
    size: u64,
    /// The whole file, once read (files up to [`READ_WHOLE`]).
    whole: core::cell::RefCell<Option<alloc::vec::Vec<u8>>>,
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
            whole: core::cell::RefCell::new(None),
        })
    }

    /// Fills `buf` from the file at `offset`, piece by piece through the filesystem.
    fn read_through(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
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

impl Store for FileStore<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let end = offset.checked_add(buf.len() as u64);
        let out_of_range = || StoreError::OutOfRange {
            offset,
            len: buf.len(),
            size: self.size,
        };
        let Some(end) = end.filter(|&e| e <= self.size) else {
            return Err(out_of_range());
        };
        if self.size > READ_WHOLE {
            return self.read_through(offset, buf);
        }
        let mut whole = self.whole.borrow_mut();
        if whole.is_none() {
            // `size` is at most READ_WHOLE, so this fits in usize and in memory.
            let mut all = alloc::vec![0u8; self.size as usize];
            self.read_through(0, &mut all)?;
            *whole = Some(all);
        }
        let all = whole.as_deref().unwrap_or_default();
        let src = all
            .get(offset as usize..end as usize)
            .ok_or_else(out_of_range)?;
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

    #[test]
    fn file_stores_read_whole_or_through() {
        use crate::inspect::testfs::TestFs;
        let data: alloc::vec::Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let fs = TestFs::new()
            .file("/db", &data)
            .broken("/small-bad", 1 << 20)
            .broken("/big-bad", READ_WHOLE + 1)
            .dir("/dir");
        let store = FileStore::open(&fs, "/db", 1 << 20).unwrap();
        assert_eq!(store.size(), 10_000);
        let mut buf = [0u8; 300];
        store.read_exact_at(9_700, &mut buf).unwrap();
        assert_eq!(&buf[..], &data[9_700..]);
        store.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..], &data[..300]);
        assert!(store.read_exact_at(9_701, &mut buf).is_err());
        assert!(store.read_exact_at(u64::MAX, &mut buf).is_err());
        assert!(matches!(
            FileStore::open(&fs, "/db", 9_999),
            Err(FsError::TooLarge(_))
        ));
        assert!(matches!(
            FileStore::open(&fs, "/dir", 1 << 20),
            Err(FsError::NotAFile(_))
        ));
        // Unreadable files: read whole or through, the error comes back.
        for path in ["/small-bad", "/big-bad"] {
            let store = FileStore::open(&fs, path, u64::MAX).unwrap();
            assert!(matches!(
                store.read_exact_at(0, &mut buf),
                Err(StoreError::Io(_))
            ));
        }
    }
}
