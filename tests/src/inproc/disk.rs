//! A disk image file as the appliance's block device, for the in-process guest.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};

/// An image opened read-only; reads are `pread`s.
pub struct FileDisk {
    file: File,
    size: u64,
}

impl FileDisk {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok(Self { file, size })
    }
}

impl BlockDevice for FileDisk {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| DiskError::Device(e.to_string()))
    }
}
