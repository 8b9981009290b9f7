//! What the readers' host tests share: an image file as a block device.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;

use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};

/// An image file read in place (`pread`s).
pub struct FileDev(fs::File, u64);

impl BlockDevice for FileDev {
    fn size(&self) -> u64 {
        self.1
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.1)?;
        self.0
            .read_exact_at(buf, offset)
            .map_err(|e| DiskError::Device(e.to_string()))
    }
}

/// The image at `path` as a block device.
pub fn open_dev(path: &Path) -> Rc<dyn BlockDevice> {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let len = f.metadata().unwrap().len();
    Rc::new(FileDev(f, len))
}
