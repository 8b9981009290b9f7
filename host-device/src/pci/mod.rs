//! A modern (virtio 1.x, non-transitional) virtio-pci transport for any [`VirtioDevice`].
//!
//! [`VirtioPciDevice`] is one PCI function: configuration space (`config.rs`), a 64-bit memory
//! BAR0 holding the virtio structures (`common.rs` for the common configuration), MSI-X
//! (`msix.rs`) and INTx. `interrupt.rs` decides where an interrupt goes and `state.rs` holds the
//! snapshot format. The VMM forwards configuration space accesses to
//! [`VirtioPciDevice::config_read`] and [`VirtioPciDevice::config_write`] and MMIO accesses
//! inside BAR0 to [`VirtioPciDevice::bar_read`] and [`VirtioPciDevice::bar_write`]; interrupts
//! come out of the [`InterruptSink`] it passed in.
//!
//! BAR0 (64 KiB, [`VirtioPciDevice::bar_size`]), each structure in its own 4 KiB page:
//!
//! | offset | length | what |
//! |---|---|---|
//! | 0x0000 | 0x38 | common configuration |
//! | 0x1000 | 1 | ISR status (reading clears it) |
//! | 0x2000 | 0x1000 | device-specific configuration (forwarded to the device) |
//! | 0x3000 | 4 × queues | notifications: queue n at 0x3000 + 4 × n (at most 1024 queues) |
//! | 0x4000 | 16 × vectors | MSI-X table (up to 2048 vectors) |
//! | 0xc000 | 8 per 64 vectors | MSI-X pending bit array |
//!
//! Configuration space: vendor 0x1af4, device 0x1040 + the virtio device type, revision 1,
//! subsystem 0x1af4:0x1100, class code 0x078000 for a console, 0x010000 for a block device and
//! 0xff0000 otherwise, interrupt pin INTA. The capability list holds MSI-X (when there are
//! vectors), then the virtio COMMON, NOTIFY, ISR, DEVICE and PCI_CFG capabilities; see
//! `config.rs` for the offsets.
//!
//! Everything the guest writes is treated as hostile: no access, at any offset, of any width,
//! with any value, panics or allocates.
//!
//! The transport answers every access the VMM forwards: the command register's memory space
//! and bus master bits are stored for the guest but gate neither BAR accesses nor MSI-X
//! messages (routing MMIO only while memory space is enabled is the VMM's job).

mod common;
mod config;
pub mod driver;
mod interrupt;
mod msix;
mod state;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::snapshot::SnapshotError;
use crate::virtio::{
    ActivateContext, ActivateError, InterruptSink, VIRTIO_RING_F_EVENT_IDX, VirtioDevice,
    VirtioInterrupt, status,
};
use common::{Action, COMMON_LEN, CommonConfig, QueueRegs};
use config::{
    COMMAND_INTX_DISABLE, CONFIG_SIZE, ConfigSpace, MSIX_ENABLE, MSIX_FUNCTION_MASK, PCI_CFG_DATA,
    STATUS, STATUS_INTERRUPT,
};
use interrupt::{Interrupts, IrqState};

/// The size of BAR0.
const BAR_SIZE: u64 = 0x1_0000;
/// Where the common configuration sits in BAR0.
const COMMON_OFFSET: u64 = 0x0000;
/// Where the ISR sits in BAR0.
const ISR_OFFSET: u64 = 0x1000;
/// The ISR is one byte.
const ISR_LEN: u64 = 1;
/// Where the device-specific configuration sits in BAR0.
const DEVICE_OFFSET: u64 = 0x2000;
/// The window onto the device-specific configuration.
const DEVICE_LEN: u64 = 0x1000;
/// Where the notification addresses start in BAR0.
const NOTIFY_OFFSET: u64 = 0x3000;
/// Bytes between two queues' notification addresses (`notify_off_multiplier`).
const NOTIFY_MULTIPLIER: u64 = 4;
/// The page the notification addresses live in.
const NOTIFY_SPACE: u64 = 0x1000;
/// The most queues the notification page has room for.
const MAX_QUEUES: u16 = (NOTIFY_SPACE / NOTIFY_MULTIPLIER) as u16;
/// Where the MSI-X table sits in BAR0 (room for 2048 entries).
const MSIX_TABLE_OFFSET: u64 = 0x4000;
/// Where the MSI-X PBA sits in BAR0.
const MSIX_PBA_OFFSET: u64 = 0xc000;

/// Why a transport could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// The snapshot is malformed, truncated, or from a newer version.
    #[error("bad virtio-pci snapshot: {0}")]
    Snapshot(#[from] SnapshotError),
    /// The snapshot was taken of another kind of device.
    #[error("snapshot of virtio device type {found}, restoring into type {expected}")]
    DeviceType {
        /// The device type in the snapshot.
        found: u32,
        /// The device type of the device restored into.
        expected: u32,
    },
    /// A saved queue cannot be rebuilt.
    #[error("saved queue {index} is invalid: {source}")]
    Queue {
        /// The queue's index.
        index: u16,
        /// What virtio-queue said.
        source: virtio_queue::Error,
    },
    /// The device refused its saved state.
    #[error("device restore failed: {0}")]
    Device(#[from] ActivateError),
}

/// A virtio device on the PCI bus: configuration space, BAR0 registers and interrupts.
pub struct VirtioPciDevice<D: VirtioDevice> {
    device: D,
    mem: GuestMemoryMmap,
    config: ConfigSpace,
    common: CommonConfig,
    irq: Arc<Interrupts>,
    /// The device accepted its queues (DRIVER_OK and a successful activation).
    activated: bool,
}

/// The per-queue maximum sizes the transport exposes: the device's, capped at [`MAX_QUEUES`].
fn exposed_queue_sizes<D: VirtioDevice>(device: &D) -> Vec<u16> {
    let mut sizes = device.queue_max_sizes();
    if sizes.len() > usize::from(MAX_QUEUES) {
        log::error!(
            "virtio-pci: device has {} queues, exposing the first {MAX_QUEUES}",
            sizes.len()
        );
        sizes.truncate(usize::from(MAX_QUEUES));
    }
    sizes
}

/// The length of the notification region for `queues` queues (at least one slot).
fn notify_len(queues: u16) -> u32 {
    (u64::from(queues.max(1)) * NOTIFY_MULTIPLIER) as u32
}

/// Whether an access of `len` bytes at `offset` lies inside `[start, start + size)`.
fn within(offset: u64, len: usize, start: u64, size: u64) -> bool {
    offset >= start
        && offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= start + size)
}

impl<D: VirtioDevice> VirtioPciDevice<D> {
    /// A transport for `device` over guest memory `mem`, delivering interrupts to `sink`.
    /// `msix_vectors` is the number of MSI-X table entries (0 = INTx only; at most 2048).
    pub fn new(
        device: D,
        mem: GuestMemoryMmap,
        sink: Arc<dyn InterruptSink>,
        msix_vectors: u16,
    ) -> Self {
        let sizes = exposed_queue_sizes(&device);
        let common = CommonConfig::new(&sizes);
        let queues = common.num_queues();
        let config = ConfigSpace::new(device.device_type(), msix_vectors, notify_len(queues));
        let irq = Arc::new(Interrupts::new(sink, IrqState::new(msix_vectors, queues)));
        VirtioPciDevice {
            device,
            mem,
            config,
            common,
            irq,
            activated: false,
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device model, mutably (for the VMM's host-side operations on it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Reads PCI configuration space (256 bytes) at `offset`; bytes beyond it read as 0xff.
    /// Reading the PCI_CFG capability's data window performs the BAR0 read it describes.
    pub fn config_read(&self, offset: u16, data: &mut [u8]) {
        self.config.read(offset, data);
        let start = usize::from(offset);
        let end = start.saturating_add(data.len());
        // Status bit 3 mirrors the internal INTx state.
        if start <= STATUS && STATUS < end && self.irq.intx_status() {
            data[STATUS - start] |= STATUS_INTERRUPT as u8;
        }
        if start < PCI_CFG_DATA + 4 && PCI_CFG_DATA < end {
            let window = self.pci_cfg_read();
            for (i, &b) in window.iter().enumerate() {
                if let Some(d) = (PCI_CFG_DATA + i)
                    .checked_sub(start)
                    .and_then(|j| data.get_mut(j))
                {
                    *d = b;
                }
            }
        }
    }

    /// Writes PCI configuration space at `offset`. Only the command register (memory space,
    /// bus master, INTx disable), BAR0/BAR1 address bits, the interrupt line, MSI-X enable and
    /// function mask, and the PCI_CFG capability's fields are writable; writing its data
    /// window performs the BAR0 write it describes.
    pub fn config_write(&mut self, offset: u16, data: &[u8]) {
        self.config.write(offset, data);
        let start = usize::from(offset);
        let end = start.saturating_add(data.len());
        if start < CONFIG_SIZE {
            self.sync_pci_control();
        }
        if start < PCI_CFG_DATA + 4 && PCI_CFG_DATA < end {
            self.pci_cfg_write();
        }
    }

    /// Hands the interrupt-related configuration bits to the interrupt state.
    fn sync_pci_control(&self) {
        let control = self.config.msix_control();
        self.irq.set_pci_control(
            control & MSIX_ENABLE != 0,
            control & MSIX_FUNCTION_MASK != 0,
            self.config.command() & COMMAND_INTX_DISABLE != 0,
        );
    }

    /// The BAR0 access the PCI_CFG capability describes, if it is a valid one.
    fn pci_cfg_access(&self) -> Option<(u64, usize)> {
        let (bar, offset, length) = self.config.pci_cfg_window();
        let len = match length {
            1 | 2 | 4 => length as usize,
            _ => return None,
        };
        let offset = u64::from(offset);
        (bar == 0 && within(offset, len, 0, BAR_SIZE)).then_some((offset, len))
    }

    fn pci_cfg_read(&self) -> [u8; 4] {
        let mut window = self.config.pci_cfg_data();
        if let Some((offset, len)) = self.pci_cfg_access() {
            window = [0; 4];
            self.bar_read_shared(offset, &mut window[..len]);
        }
        window
    }

    fn pci_cfg_write(&mut self) {
        if let Some((offset, len)) = self.pci_cfg_access() {
            let window = self.config.pci_cfg_data();
            self.bar_write(offset, &window[..len]);
        }
    }

    /// The size of BAR0 (a power of two).
    pub fn bar_size() -> u64 {
        BAR_SIZE
    }

    /// The address the guest (or the VMM) programmed into BAR0, or `None` while it is 0. During
    /// BAR sizing this is the size mask the guest is reading back.
    pub fn bar_address(&self) -> Option<u64> {
        Some(self.config.bar0()).filter(|&a| a != 0)
    }

    /// Programs BAR0 (for a VMM that assigns BARs itself); bits below the BAR size are dropped.
    pub fn set_bar_address(&mut self, addr: u64) {
        self.config.set_bar0(addr);
    }

    /// Reads BAR0 at `offset`. Reading the ISR clears it, hence `&mut`.
    pub fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        self.bar_read_shared(offset, data);
    }

    /// A BAR0 read; the only side effect (clearing the ISR) goes through the interrupt lock.
    fn bar_read_shared(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let len = data.len();
        if len == 0 {
            return;
        }
        let features = self.device.device_features();
        if within(offset, len, COMMON_OFFSET, COMMON_LEN) {
            self.common
                .read(offset - COMMON_OFFSET, data, features, &self.irq);
        } else if offset == ISR_OFFSET {
            // The ISR is a byte; a wider read sees it in its low byte.
            data[0] = self.irq.take_isr();
        } else if within(offset, len, DEVICE_OFFSET, DEVICE_LEN) {
            self.device.read_config(offset - DEVICE_OFFSET, data);
        } else if within(offset, len, MSIX_TABLE_OFFSET, self.msix_table_len()) {
            self.irq.read_msix_table(offset - MSIX_TABLE_OFFSET, data);
        } else if within(offset, len, MSIX_PBA_OFFSET, self.msix_pba_len()) {
            self.irq.read_pba(offset - MSIX_PBA_OFFSET, data);
        } else {
            log::trace!("virtio-pci: read of {len} bytes at BAR0 {offset:#x} ignored");
        }
    }

    fn msix_table_len(&self) -> u64 {
        u64::from(self.irq.msix_len()) * msix::ENTRY_SIZE
    }

    fn msix_pba_len(&self) -> u64 {
        u64::from(self.irq.msix_len()).div_ceil(64) * 8
    }

    /// Writes BAR0 at `offset`.
    pub fn bar_write(&mut self, offset: u64, data: &[u8]) {
        let len = data.len();
        if len == 0 {
            return;
        }
        if within(offset, len, COMMON_OFFSET, COMMON_LEN) {
            self.common_write(offset - COMMON_OFFSET, data);
        } else if within(offset, len, DEVICE_OFFSET, DEVICE_LEN) {
            self.device.write_config(offset - DEVICE_OFFSET, data);
            self.irq.bump_generation();
        } else if within(offset, len, NOTIFY_OFFSET, NOTIFY_SPACE) {
            let rel = offset - NOTIFY_OFFSET;
            if rel.is_multiple_of(NOTIFY_MULTIPLIER) {
                self.queue_notify((rel / NOTIFY_MULTIPLIER) as u16);
            }
        } else if within(offset, len, MSIX_TABLE_OFFSET, self.msix_table_len()) {
            self.irq.write_msix_table(offset - MSIX_TABLE_OFFSET, data);
        } else {
            log::trace!("virtio-pci: write of {len} bytes at BAR0 {offset:#x} ignored");
        }
    }

    /// A write to the common configuration, and what it sets off.
    fn common_write(&mut self, offset: u64, data: &[u8]) {
        let features = self.device.device_features();
        let before = self.common.status;
        match self.common.write(offset, data, features, &self.irq) {
            Action::None => {}
            Action::Reset => self.reset(),
            Action::Activate => self.activate(),
        }
        let after = self.common.status;
        let newly_broken = after & !before & status::DEVICE_NEEDS_RESET != 0;
        if newly_broken && after & status::DRIVER_OK != 0 {
            // virtio 1.x 2.1.2: tell the driver with a configuration change notification.
            self.irq.signal_config();
        }
    }

    /// Whether the device has backends with descriptors to wait on
    /// ([`VirtioDevice::has_backends`]).
    pub fn has_backends(&self) -> bool {
        self.device.has_backends()
    }

    /// Appends the descriptors the device's backends wait on ([`VirtioDevice::backend_fds`]).
    pub fn backend_fds(&self, fds: &mut Vec<(std::os::fd::RawFd, crate::virtio::Interest)>) {
        self.device.backend_fds(fds);
    }

    /// Serves the device's ready backends ([`VirtioDevice::poll_backends`]).
    pub fn poll_backends(&mut self) -> bool {
        self.device.poll_backends()
    }

    /// The offset within BAR0 of `queue`'s notification address.
    pub fn notify_offset(queue: u16) -> u64 {
        NOTIFY_OFFSET + u64::from(queue) * NOTIFY_MULTIPLIER
    }

    /// The driver notified `queue` (an ioeventfd on [`Self::notify_offset`] fired). Ignored
    /// unless the device is live (DRIVER_OK, activated) and the queue exists.
    pub fn queue_notify(&mut self, queue: u16) {
        if self.activated
            && self.common.status & status::DRIVER_OK != 0
            && queue < self.common.num_queues()
        {
            self.device.queue_notify(queue);
        } else {
            log::trace!("virtio-pci: notify of queue {queue} ignored");
        }
    }

    /// The ISR without clearing it.
    pub fn interrupt_status(&self) -> u8 {
        self.irq.isr()
    }

    /// The driver wrote 0 to the status register.
    fn reset(&mut self) {
        self.device.reset();
        self.common.reset();
        self.irq.reset();
        self.activated = false;
    }

    /// The queues as the driver programmed them.
    fn build_queues(&self, acked: u64) -> Result<Vec<Queue>, (u16, virtio_queue::Error)> {
        (0u16..)
            .zip(&self.common.queues)
            .map(|(i, regs)| build_queue(regs, acked).map_err(|e| (i, e)))
            .collect()
    }

    /// DRIVER_OK: hand the device its queues.
    fn activate(&mut self) {
        let acked = self.common.acked_features(self.device.device_features());
        let queues = match self.build_queues(acked) {
            Ok(q) => q,
            Err((i, e)) => {
                log::error!("virtio-pci: queue {i} is invalid: {e}");
                self.common.set_needs_reset();
                return;
            }
        };
        let ctx = self.activate_context(queues, acked);
        match self.device.activate(ctx) {
            Ok(()) => self.activated = true,
            Err(e) => {
                log::error!("virtio-pci: device activation failed: {e}");
                self.common.set_needs_reset();
            }
        }
    }

    fn activate_context(&self, queues: Vec<Queue>, acked: u64) -> ActivateContext {
        let interrupt: Arc<dyn VirtioInterrupt> = self.irq.clone();
        ActivateContext {
            mem: self.mem.clone(),
            queues,
            acked_features: acked,
            interrupt,
        }
    }

    /// The transport's registers, the MSI-X table and the device's [`VirtioDevice::save`],
    /// as a versioned snapshot (magic `VPCI`, version 2; version 1 is still restored).
    pub fn snapshot(&self) -> Vec<u8> {
        state::encode(self)
    }

    /// Rebuilds a transport from [`Self::snapshot`] around a fresh `device`. If the driver had
    /// DRIVER_OK and the device was active, its queues are rebuilt from the saved
    /// [`crate::virtio::DeviceState::queues`] and the device gets
    /// `restore(blob, Some(ctx))`; otherwise `restore(blob, None)`. If INTx was asserted, the
    /// sink is told again.
    pub fn restore(
        device: D,
        mem: GuestMemoryMmap,
        sink: Arc<dyn InterruptSink>,
        data: &[u8],
    ) -> Result<Self, PciError> {
        state::decode(device, mem, sink, data)
    }
}

/// One [`Queue`] from the registers the driver programmed. A queue the driver did not enable
/// is handed over unready, with default addresses.
fn build_queue(regs: &QueueRegs, acked: u64) -> Result<Queue, virtio_queue::Error> {
    let mut q = Queue::new(regs.max_size)?;
    if regs.enabled {
        q.try_set_size(regs.size)?;
        q.try_set_desc_table_address(GuestAddress(regs.desc))?;
        q.try_set_avail_ring_address(GuestAddress(regs.driver))?;
        q.try_set_used_ring_address(GuestAddress(regs.device))?;
        q.set_event_idx(acked & VIRTIO_RING_F_EVENT_IDX != 0);
        q.set_ready(true);
    }
    Ok(q)
}
