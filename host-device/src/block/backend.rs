//! Where a block device's bytes come from.
//!
//! [`BlockBackend`] is all the device model needs from an image: its length and positioned
//! reads. [`FileBackend`] serves a raw image file opened read-only; a `Vec<u8>` serves an
//! in-memory image (tests, generated disks); an image format such as qcow2 plugs in by
//! implementing the trait.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A read-only source of image bytes.
///
/// Implementations are called with ranges the device has already checked against
/// [`BlockBackend::len`]; they must fill the whole buffer or fail.
pub trait BlockBackend: Send {
    /// The image's size in bytes.
    fn len(&self) -> u64;

    /// Whether the image holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` with the image's bytes from `offset`; an error if any of them cannot be
    /// read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

/// A raw image in a file, read with positioned reads (`pread`), so there is no shared file
/// position to keep straight.
#[derive(Debug)]
pub struct FileBackend {
    file: File,
    len: u64,
}

impl FileBackend {
    /// Serves `file`, which is `len` bytes long. The file is only ever read.
    pub fn new(file: File, len: u64) -> Self {
        FileBackend { file, len }
    }

    /// Serves `file`, sized by seeking to its end (which also sizes block devices, whose
    /// metadata says 0).
    pub fn open(file: File) -> io::Result<Self> {
        use std::io::{Seek, SeekFrom};
        let len = (&file).seek(SeekFrom::End(0))?;
        Ok(FileBackend { file, len })
    }
}

impl BlockBackend for FileBackend {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// An in-memory image.
impl BlockBackend for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.get(range))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
