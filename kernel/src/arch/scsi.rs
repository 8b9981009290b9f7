//! Disks behind virtio-scsi adapters (`virtio-scsi-pci` with `scsi-hd`, as libguestfs and
//! many QEMU users attach them), as the appliance's [`BlockDevice`]s, after the virtio-blk
//! ones. The driver is `crate::virtio_scsi`; this module finds the adapters and wraps their
//! disks.

use alloc::rc::Rc;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::ops::Range;

use virtio_drivers::transport::pci::PciTransport;

use super::blk::{read_in_blocks, transport};
use super::virtio::KernelHal;
use crate::virtio_scsi::{Unit, VirtioScsi};
use vmchannel_inspect::disk::{BlockDevice, DiskError, check_range};

type Adapter = VirtioScsi<KernelHal, PciTransport>;

/// One disk (LUN 0 of a target) of an adapter.
pub struct ScsiDisk {
    adapter: Rc<RefCell<Adapter>>,
    unit: Unit,
    size: u64,
}

impl BlockDevice for ScsiDisk {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        check_range(offset, buf.len(), self.size)?;
        let block = self.unit.capacity.block_size as usize;
        let mut adapter = self.adapter.borrow_mut();
        // Whole blocks, at most one transfer per command.
        let chunk = (adapter.max_transfer() / block).max(1) * block;
        read_in_blocks(offset, buf, block, |lba, blocks| {
            for (i, piece) in blocks.chunks_mut(chunk).enumerate() {
                let at = lba + (i * chunk / block) as u64;
                adapter
                    .read_blocks(&self.unit, at, piece)
                    .map_err(|e| DiskError::Device(e.to_string()))?;
            }
            Ok(())
        })
    }
}

/// Opens every virtio-scsi adapter, in bus order, and returns its disks in target order.
/// Unassigned BARs go in `window`, clear of `reserved` and of every other function's BARs.
/// An adapter or a target that fails is logged and skipped.
pub fn open_disks(window: Range<u64>, reserved: &[Range<u64>]) -> Vec<Rc<dyn BlockDevice>> {
    let mut disks: Vec<Rc<dyn BlockDevice>> = Vec::new();
    for f in super::pci::functions()
        .iter()
        .filter(|f| f.is_virtio_scsi())
    {
        let adapter = match transport(f, window.clone(), reserved)
            .and_then(|t| Adapter::new(t).map_err(|e| e.to_string()))
        {
            Ok(a) => a,
            Err(e) => {
                log::warn!("virtio-scsi at {}: {e}", f.bdf);
                continue;
            }
        };
        let adapter = Rc::new(RefCell::new(adapter));
        let (units, failures) = adapter.borrow_mut().scan();
        for (target, e) in failures {
            log::warn!("virtio-scsi at {} target {target}: {e}", f.bdf);
        }
        for unit in units {
            let size = unit.capacity.bytes().unwrap_or(0);
            log::info!(
                "virtio-scsi at {} target {}: {} MiB, {}-byte blocks",
                f.bdf,
                unit.target,
                size >> 20,
                unit.capacity.block_size
            );
            disks.push(Rc::new(ScsiDisk {
                adapter: adapter.clone(),
                unit,
                size,
            }));
        }
    }
    disks
}
