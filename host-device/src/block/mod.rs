//! A read-only virtio-blk device (virtio 1.x 5.2).
//!
//! - [`backend`]: where the bytes come from ([`BlockBackend`]: a raw file, memory, later
//!   image formats);
//! - [`image`]: which format an image file holds (raw, qcow2 through imago), and a backend
//!   for it;
//! - [`request`]: the request wire format and how one descriptor chain is served.
//!
//! The device offers VIRTIO_BLK_F_RO and cannot write: [`Block::open`] opens the image with
//! read access only and [`BlockBackend`] has no write method, so whatever the guest sends, the
//! image is never modified. Write requests are answered VIRTIO_BLK_S_IOERR (5.2.6.2), flushes
//! succeed (there is nothing to flush), VIRTIO_BLK_T_GET_ID answers the configured serial
//! number, and every other request type is VIRTIO_BLK_S_UNSUPP.
//!
//! An image whose size is not a multiple of 512 bytes is exposed rounded *down* to whole
//! sectors (QEMU rounds up and reads zeros past the end of the file); the tail is logged and
//! never readable. Images smaller than one sector are refused.
//!
//! Everything the guest hands over is checked: addresses and chains by virtio-queue and
//! vm-memory, the chain's shape (looping or cut short, readable after writable, more than
//! [`SEG_MAX`] data segments, no status byte, short header) and every read range here, before
//! the image is touched. A read request is served whole or not at all: reads past the end, not
//! a whole number of sectors or over [`MAX_REQUEST_BYTES`] are refused with IOERR without
//! writing any data. Chains with no writable status byte are returned with a used length of 0
//! and counted in [`BlockStats::bad_chains`].
//!
//! The device processes requests synchronously when the driver notifies the queue and
//! interrupts once per batch. It does not offer VIRTIO_F_RING_EVENT_IDX.

pub mod backend;
pub mod image;
pub mod request;

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use backend::{BlockBackend, FileBackend};

use crate::active::{ActiveQueues, pop_chain};
use crate::snapshot::{Decoder, SnapshotError, section_header};
use crate::virtio::{
    ActivateContext, ActivateError, DeviceState, VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC,
    VirtioDevice, read_config_bytes,
};
use request::{Engine, ID_BYTES};

/// The virtio device id of a block device.
pub const DEVICE_ID: u32 = virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
/// VIRTIO_BLK_F_SIZE_MAX: the largest segment is in `size_max`.
pub const F_SIZE_MAX: u64 = 1 << 1;
/// VIRTIO_BLK_F_SEG_MAX: the most segments per request is in `seg_max`.
pub const F_SEG_MAX: u64 = 1 << 2;
/// VIRTIO_BLK_F_RO: the device is read-only.
pub const F_RO: u64 = 1 << 5;
/// VIRTIO_BLK_F_BLK_SIZE: the block size is in `blk_size`.
pub const F_BLK_SIZE: u64 = 1 << 6;
/// VIRTIO_BLK_F_FLUSH: the device takes VIRTIO_BLK_T_FLUSH.
pub const F_FLUSH: u64 = 1 << 9;
/// Entries in the request queue.
pub const QUEUE_SIZE: u16 = 256;
/// Bytes in a sector: the unit of capacity and of request offsets.
pub const SECTOR_SIZE: usize = 512;
/// Data segments per request the driver is told it may use (`seg_max`).
pub const SEG_MAX: u32 = 128;
/// Bytes per data segment the driver is told it may use (`size_max`).
pub const SIZE_MAX: u32 = 8192;
/// Largest read served, in bytes: [`SEG_MAX`] × [`SIZE_MAX`], so a driver within the
/// advertised limits is never refused, and a guest cannot make one request read without bound.
pub const MAX_REQUEST_BYTES: usize = SEG_MAX as usize * SIZE_MAX as usize;
/// Bytes of configuration space (`virtio_blk_config` up to the secure erase fields).
pub const CONFIG_LEN: usize = 60;

/// Snapshot section magic and version.
const SNAPSHOT_MAGIC: &[u8; 4] = b"VBLK";
/// The version [`VirtioDevice::save`] writes: [`BlockSnapshot`] in postcard. Version 1 (still
/// read) was the capacity as a little-endian u64.
const SNAPSHOT_VERSION: u32 = 2;

/// The block device's own state, as saved: only what must match on the destination (the
/// queue's position travels in the transport's section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct BlockSnapshot {
    /// The disk's capacity in sectors.
    capacity: u64,
}

/// Why an image could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The image's size could not be found.
    #[error("cannot find the size of {path}: {source}", path = path.display())]
    Size {
        /// The image.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The path names a directory.
    #[error("{path} is a directory", path = path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The image holds less than one sector.
    #[error("{image} holds {len} bytes, less than one {SECTOR_SIZE}-byte sector")]
    Empty {
        /// The image (its path, or what kind of backend).
        image: String,
        /// Its size in bytes.
        len: u64,
    },
    /// The image format could not be read.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// The serial number does not fit the 20 bytes VIRTIO_BLK_T_GET_ID answers with.
    #[error("serial number {0:?} is longer than {ID_BYTES} bytes")]
    Serial(String),
}

/// Device settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockConfig {
    /// The serial number VIRTIO_BLK_T_GET_ID answers (at most 20 bytes; zero-padded). `None`
    /// answers 20 zero bytes.
    pub serial: Option<String>,
}

/// Device counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Descriptor chains taken from the queue, well-formed or not.
    pub requests: u64,
    /// Image bytes copied to the guest.
    pub bytes_read: u64,
    /// Write requests refused.
    pub write_refused: u64,
    /// Chains that were malformed: no status byte, buffers outside guest memory, looping or
    /// cut short, readable after writable, too many descriptors, short header, data in the
    /// wrong direction.
    pub bad_chains: u64,
    /// Requests of a type the device does not know.
    pub unsupported: u64,
    /// Read requests refused (past the end, not whole sectors, too large) or failed.
    pub io_errors: u64,
}

/// The read-only virtio-blk device.
pub struct Block {
    engine: Engine,
    active: Option<ActiveQueues>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("capacity", &self.engine.capacity)
            .field("active", &self.active.is_some())
            .field("stats", &self.engine.stats)
            .finish()
    }
}

/// The GET_ID answer for `serial`.
fn device_id(serial: Option<&str>) -> Result<[u8; ID_BYTES], BlockError> {
    let mut id = [0u8; ID_BYTES];
    if let Some(s) = serial {
        let dst = id
            .get_mut(..s.len())
            .ok_or_else(|| BlockError::Serial(s.to_owned()))?;
        dst.copy_from_slice(s.as_bytes());
    }
    Ok(id)
}

impl Block {
    /// Attaches the image at `path` (raw or qcow2, told from its contents; see [`image`]),
    /// opened read-only: the device can never write to it. A block device node works as well
    /// as a file. A qcow2's backing files are followed only beside it
    /// ([`image::BackingPolicy::Beside`]).
    pub fn open(path: &Path, config: BlockConfig) -> Result<Self, BlockError> {
        Self::open_with(path, config, image::BackingPolicy::default())
    }

    /// As [`Block::open`], following a qcow2's backing files as `backing` allows.
    pub fn open_with(
        path: &Path,
        config: BlockConfig,
        backing: image::BackingPolicy,
    ) -> Result<Self, BlockError> {
        let opened = image::open_with(path, backing)?;
        Self::build(opened.backend, &path.display().to_string(), config)
    }

    /// Attaches an image file the caller opened. The device only ever reads it; open it
    /// read-only (as [`Block::open`] does) to make sure nothing else can write through it.
    pub fn from_file(file: File, config: BlockConfig) -> Result<Self, BlockError> {
        Self::file_backed(file, Path::new("<file>"), config)
    }

    fn file_backed(file: File, path: &Path, config: BlockConfig) -> Result<Self, BlockError> {
        let size_err = |source| BlockError::Size {
            path: path.to_owned(),
            source,
        };
        if file.metadata().map_err(size_err)?.is_dir() {
            return Err(BlockError::IsDirectory {
                path: path.to_owned(),
            });
        }
        // Seeking to the end also sizes block devices, whose metadata says 0.
        let len = (&file).seek(SeekFrom::End(0)).map_err(size_err)?;
        Self::build(
            Box::new(FileBackend::new(file, len)),
            &path.display().to_string(),
            config,
        )
    }

    /// Attaches any backend (an in-memory image, an image format).
    pub fn with_backend(
        backend: Box<dyn BlockBackend>,
        config: BlockConfig,
    ) -> Result<Self, BlockError> {
        Self::build(backend, "the backend", config)
    }

    fn build(
        backend: Box<dyn BlockBackend>,
        image: &str,
        config: BlockConfig,
    ) -> Result<Self, BlockError> {
        let id = device_id(config.serial.as_deref())?;
        let len = backend.len();
        let sector = SECTOR_SIZE as u64;
        let capacity = len / sector;
        if capacity == 0 {
            return Err(BlockError::Empty {
                image: image.to_owned(),
                len,
            });
        }
        if !len.is_multiple_of(sector) {
            log::warn!(
                "virtio-blk: {image} is {len} bytes, not whole sectors: the last {} bytes are not \
                 exposed",
                len % sector
            );
        }
        Ok(Block {
            engine: Engine::new(backend, capacity, id),
            active: None,
        })
    }

    /// The capacity the guest sees, in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.engine.capacity
    }

    /// Counters.
    pub fn stats(&self) -> BlockStats {
        self.engine.stats
    }

    /// Whether the driver has the device running (DRIVER_OK and activated).
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// The configuration space (virtio 1.x 5.2.4).
    fn config_bytes(&self) -> [u8; CONFIG_LEN] {
        let capacity = self.engine.capacity;
        let (heads, sectors) = (16u8, 63u8);
        let cylinders = (capacity / (u64::from(heads) * u64::from(sectors))).min(0xffff) as u16;
        let mut c = [0u8; CONFIG_LEN];
        c[0..8].copy_from_slice(&capacity.to_le_bytes());
        c[8..12].copy_from_slice(&SIZE_MAX.to_le_bytes());
        c[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        c[16..18].copy_from_slice(&cylinders.to_le_bytes());
        c[18] = heads;
        c[19] = sectors;
        c[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        // topology (24..32) and writeback (32) stay 0: their features are not offered.
        c[34..36].copy_from_slice(&1u16.to_le_bytes());
        c
    }

    /// Takes the queues the driver set up.
    fn start(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        if ctx.queues.len() != 1 {
            return Err(ActivateError::BadState(format!(
                "{} queues, the device has 1",
                ctx.queues.len()
            )));
        }
        ActiveQueues::check(&ctx)?;
        self.active = Some(ActiveQueues::new(ctx, "virtio-blk"));
        Ok(())
    }

    /// Serves every chain in the queue, then interrupts once if any was returned.
    fn process_queue(&mut self) {
        let Some(act) = self.active.as_mut() else {
            return;
        };
        // At most one queue's worth per pass (see ActiveQueues::chain_budget).
        let mut budget = act.chain_budget(0);
        while let Some(chain) = pop_chain(&mut act.queues, &act.mem, 0, &mut budget) {
            let head = chain.head_index();
            let len = self.engine.handle(&act.mem, chain);
            act.add_used(0, head, len);
        }
        act.signal();
    }

    /// Checks a blob from [`VirtioDevice::save`] against this device.
    fn restore_blob(&self, blob: &[u8]) -> Result<(), String> {
        let decode = || -> Result<u64, SnapshotError> {
            let (mut d, version) =
                Decoder::new(blob, SNAPSHOT_MAGIC, "virtio-blk", SNAPSHOT_VERSION)?;
            if version == 1 {
                let capacity = d.u64()?;
                d.end()?;
                return Ok(capacity);
            }
            Ok(d.postcard::<BlockSnapshot>()?.capacity)
        };
        let capacity = decode().map_err(|e| e.to_string())?;
        if capacity != self.engine.capacity {
            return Err(format!(
                "snapshot of a {capacity}-sector disk, this image has {} sectors",
                self.engine.capacity
            ));
        }
        Ok(())
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        DEVICE_ID
    }

    fn device_features(&self) -> u64 {
        VIRTIO_F_VERSION_1
            | VIRTIO_RING_F_INDIRECT_DESC
            | F_SIZE_MAX
            | F_SEG_MAX
            | F_RO
            | F_BLK_SIZE
            | F_FLUSH
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let cfg = self.config_bytes();
        read_config_bytes(&cfg, offset, data);
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        // `writeback` is writable only with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
        log::debug!(
            "virtio-blk: ignoring a {}-byte configuration write at {offset}",
            data.len()
        );
    }

    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.start(ctx)
    }

    fn reset(&mut self) {
        self.active = None;
    }

    fn queue_notify(&mut self, queue: u16) {
        if queue == 0 {
            self.process_queue();
        }
    }

    fn save(&self) -> DeviceState {
        let snap = BlockSnapshot {
            capacity: self.engine.capacity,
        };
        let blob = postcard::to_extend(&snap, section_header(SNAPSHOT_MAGIC, SNAPSHOT_VERSION))
            .expect("a snapshot always encodes");
        ActiveQueues::save(self.active.as_ref(), blob)
    }

    fn restore(&mut self, blob: &[u8], ctx: Option<ActivateContext>) -> Result<(), ActivateError> {
        self.restore_blob(blob).map_err(ActivateError::BadState)?;
        self.active = None;
        if let Some(ctx) = ctx {
            self.start(ctx)?;
            // Requests the driver made available without the source serving them.
            self.process_queue();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
