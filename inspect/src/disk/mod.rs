//! Disks: the block-device interface, a metadata cache, partition tables and device names.
//!
//! Everything here is read-only and hardware-independent: the guest's virtio-blk driver
//! (`arch::blk`) and host tests (images in memory or in files) implement [`BlockDevice`],
//! and the rest works on that.

pub mod cache;
pub mod lvm;
pub mod names;
pub mod partition;

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

/// Bytes per sector on every disk the appliance reads.
pub const SECTOR: u64 = 512;

/// Why a disk read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The read reaches past the end of the device.
    #[error("read of {len} bytes at {offset} is past the end of the device ({size} bytes)")]
    OutOfRange {
        /// First byte asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// Device size.
        size: u64,
    },
    /// The device reported an error.
    #[error("device error: {0}")]
    Device(String),
}

/// A read-only block device addressed in bytes.
///
/// Reads take `&self` so that partitions and filesystems can share one device; devices keep
/// any state they need behind interior mutability (the appliance is single-threaded).
pub trait BlockDevice {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from byte `offset`; fails if any of it is past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;
}

/// Checks that `len` bytes at `offset` lie inside a device of `size` bytes.
pub fn check_range(offset: u64, len: usize, size: u64) -> Result<(), DiskError> {
    let len = len as u64;
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(DiskError::OutOfRange { offset, len, size }),
    }
}

impl BlockDevice for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size())?;
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

/// A window of another device: a partition.
pub struct Slice {
    dev: Rc<dyn BlockDevice>,
    start: u64,
    len: u64,
}

impl Slice {
    /// The `len` bytes of `dev` from `start`; the window is clipped to the device.
    pub fn new(dev: Rc<dyn BlockDevice>, start: u64, len: u64) -> Self {
        let size = dev.size();
        let start = start.min(size);
        let len = len.min(size - start);
        Self { dev, start, len }
    }
}

impl BlockDevice for Slice {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.len)?;
        self.dev.read_at(self.start + offset, buf)
    }
}

/// A little-endian u16 at `at`, or 0 past the end of `b`.
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

/// A little-endian u32 at `at`, or 0 past the end of `b`.
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A little-endian u64 at `at`, or 0 past the end of `b`.
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}
