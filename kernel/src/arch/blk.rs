//! virtio-blk disks through virtio-drivers' driver over the modern PCI transport, as the
//! appliance's [`BlockDevice`]s.
//!
//! Requests are synchronous and polled (one in flight): the appliance reads metadata in
//! small pieces through its cache and file data in large aligned runs, and the host answers
//! from its event loop, so the driver's busy-wait is short and needs no interrupt.

use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ops::Range;

use virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::pci::PciTransport;

use super::pci::PciConfig;
use super::virtio::{self, KernelHal, place_bars};
use crate::pci::ShadowConfig;
use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};

/// Largest request sent to the device.
const MAX_REQUEST: usize = 256 * 1024;

/// One virtio-blk disk.
pub struct VirtioDisk {
    blk: RefCell<VirtIOBlk<KernelHal, PciTransport>>,
    size: u64,
}

impl VirtioDisk {
    fn read_sectors(&self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let mut blk = self.blk.borrow_mut();
        for (i, piece) in buf.chunks_mut(MAX_REQUEST).enumerate() {
            let at = sector + (i * MAX_REQUEST / SECTOR_SIZE) as u64;
            blk.read_blocks(at as usize, piece)
                .map_err(|e| DiskError::Device(e.to_string()))?;
        }
        Ok(())
    }
}

impl BlockDevice for VirtioDisk {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        read_in_blocks(offset, buf, SECTOR_SIZE, |sector, piece| {
            self.read_sectors(sector, piece)
        })
    }
}

/// Reads `buf` at byte `offset` through `read`, which fills whole `block`-byte blocks from a
/// block index: directly when aligned, else through a bounce buffer covering the blocks.
pub(super) fn read_in_blocks(
    offset: u64,
    buf: &mut [u8],
    block: usize,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), DiskError>,
) -> Result<(), DiskError> {
    let s = block as u64;
    if offset.is_multiple_of(s) && buf.len().is_multiple_of(block) {
        return read(offset / s, buf);
    }
    let first = offset / s;
    let end = (offset + buf.len() as u64).div_ceil(s);
    let mut bounce = vec![0u8; ((end - first) * s) as usize];
    read(first, &mut bounce)?;
    let skip = (offset - first * s) as usize;
    buf.copy_from_slice(&bounce[skip..skip + buf.len()]);
    Ok(())
}

/// Places the BARs of the virtio function `f` (unassigned ones in `window`, clear of
/// `reserved` and of every other function's BARs), enables it, and opens its modern PCI
/// transport.
pub(super) fn transport(
    f: &crate::pci::PciFunction,
    window: Range<u64>,
    reserved: &[Range<u64>],
) -> Result<PciTransport, String> {
    let cfg = PciConfig;
    let bars = place_bars(&cfg, f, window, reserved.to_vec()).map_err(|e| e.to_string())?;
    let shadow = ShadowConfig::new(&cfg, f, bars);
    virtio::transport(&shadow).map_err(|e| e.to_string())
}

/// Opens every virtio-blk function, in bus order (`/dev/sda` first). Unassigned BARs go in
/// `window`, clear of `reserved` and of every other function's BARs. A disk that fails to
/// start is logged and skipped.
pub fn open_disks(window: Range<u64>, reserved: &[Range<u64>]) -> Vec<Rc<dyn BlockDevice>> {
    let functions = super::pci::functions();
    let mut disks: Vec<Rc<dyn BlockDevice>> = Vec::new();
    for f in functions.iter().filter(|f| f.is_virtio_blk()) {
        let opened = transport(f, window.clone(), reserved)
            .and_then(|t| VirtIOBlk::new(t).map_err(|e| e.to_string()));
        match opened {
            Ok(mut blk) => {
                blk.disable_interrupts();
                let size = blk.capacity().saturating_mul(SECTOR_SIZE as u64);
                log::info!(
                    "virtio-blk at {}: {} MiB{}",
                    f.bdf,
                    size >> 20,
                    if blk.readonly() { ", read-only" } else { "" }
                );
                disks.push(Rc::new(VirtioDisk {
                    blk: RefCell::new(blk),
                    size,
                }));
            }
            Err(e) => log::warn!("virtio-blk at {}: {e}", f.bdf),
        }
    }
    disks
}
