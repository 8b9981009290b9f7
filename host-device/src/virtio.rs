//! What a virtio device model and its transport say to each other.
//!
//! A device model ([`VirtioDevice`]) knows its feature bits, queues and configuration space and
//! processes its queues; a transport (virtio-pci in [`crate::pci`]) owns the registers the
//! driver programs and hands the device its queues when the driver sets DRIVER_OK. The device
//! raises interrupts through [`VirtioInterrupt`]; the transport turns them into MSI-X messages
//! or the INTx line and reports those to the VMM's [`InterruptSink`].

use std::os::fd::RawFd;
use std::sync::Arc;

use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1 as VERSION_1_BIT;
use virtio_bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX as EVENT_IDX_BIT, VIRTIO_RING_F_INDIRECT_DESC as INDIRECT_DESC_BIT,
};
use virtio_queue::{Queue, QueueState};
use vm_memory::GuestMemoryMmap;

/// VIRTIO_F_VERSION_1: the modern interface (virtio 1.x).
pub const VIRTIO_F_VERSION_1: u64 = 1 << VERSION_1_BIT;
/// VIRTIO_RING_F_INDIRECT_DESC: indirect descriptor tables (virtio-queue follows them).
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << INDIRECT_DESC_BIT;
/// VIRTIO_RING_F_EVENT_IDX: used and available event indexes (the transport tells the queues
/// when it was negotiated).
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << EVENT_IDX_BIT;

/// Device status bits (virtio 1.x, 2.1), from virtio-bindings as the byte the status register
/// holds.
pub mod status {
    use virtio_bindings::virtio_config as c;

    /// The guest found the device.
    pub const ACKNOWLEDGE: u8 = c::VIRTIO_CONFIG_S_ACKNOWLEDGE as u8;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = c::VIRTIO_CONFIG_S_DRIVER as u8;
    /// The driver is ready: queues may be used.
    pub const DRIVER_OK: u8 = c::VIRTIO_CONFIG_S_DRIVER_OK as u8;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = c::VIRTIO_CONFIG_S_FEATURES_OK as u8;
    /// The device needs a reset.
    pub const DEVICE_NEEDS_RESET: u8 = c::VIRTIO_CONFIG_S_NEEDS_RESET as u8;
    /// The driver gave up on the device.
    pub const FAILED: u8 = c::VIRTIO_CONFIG_S_FAILED as u8;
}

/// What a file descriptor of a device's host-side backend should be watched for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interest {
    /// Wake when readable (or a connection is waiting).
    pub read: bool,
    /// Wake when writable.
    pub write: bool,
}

/// Where a device sends its interrupts: implemented by the transport.
pub trait VirtioInterrupt: Send + Sync {
    /// The device put buffers in the used ring of `queue`.
    fn signal_queue(&self, queue: u16);
    /// The device configuration changed.
    fn signal_config(&self);
}

/// Where a transport delivers interrupts: implemented by the VMM (irqfd, a counter in tests).
pub trait InterruptSink: Send + Sync {
    /// Deliver an MSI (an MSI-X table entry that is enabled and not masked).
    fn msi(&self, address: u64, data: u32);
    /// Raise (`true`) or lower the legacy INTx line.
    fn set_intx(&self, level: bool);
}

/// What the transport hands a device when the driver sets DRIVER_OK.
pub struct ActivateContext {
    /// Guest memory, shared with the driver.
    pub mem: GuestMemoryMmap,
    /// One queue per [`VirtioDevice::queue_max_sizes`] entry, as the driver programmed it (a
    /// queue the driver did not enable has `ready() == false`).
    pub queues: Vec<Queue>,
    /// The features the driver accepted.
    pub acked_features: u64,
    /// How to raise interrupts.
    pub interrupt: Arc<dyn VirtioInterrupt>,
}

/// Why a device refused to start or to restore.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// A queue the device needs is not usable (not enabled, or outside guest memory).
    #[error("queue {0} is not valid")]
    BadQueue(u16),
    /// The driver did not accept a feature the device requires.
    #[error("the driver did not accept required features {0:#x}")]
    MissingFeatures(u64),
    /// A saved state could not be decoded or does not fit this device.
    #[error("bad device state: {0}")]
    BadState(String),
}

/// A virtio device model, independent of the transport.
pub trait VirtioDevice: Send {
    /// The virtio device id (3 for console, 2 for block).
    fn device_type(&self) -> u32;
    /// The features the device offers, VIRTIO_F_VERSION_1 included.
    fn device_features(&self) -> u64;
    /// The largest size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> Vec<u16>;
    /// Reads the device configuration space; bytes beyond its end read as zero.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes the device configuration space; writes to read-only fields are ignored.
    fn write_config(&mut self, offset: u64, data: &[u8]);
    /// The driver set DRIVER_OK: start using the queues.
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError>;
    /// The driver wrote 0 to the status register: drop the queues and return to the state
    /// before activation (host-side port state such as connections survives, as in QEMU).
    fn reset(&mut self);
    /// The driver notified `queue` (a write to the notify region, or an ioeventfd firing).
    fn queue_notify(&mut self, queue: u16);
    /// The device's state, for a snapshot: its queues (empty before activation) and an opaque
    /// device-specific blob that [`VirtioDevice::restore`] reads back.
    fn save(&self) -> DeviceState;
    /// Restores a state saved by [`VirtioDevice::save`]. `ctx` is given when the device was
    /// active, with the queues rebuilt from the saved [`DeviceState::queues`].
    fn restore(&mut self, blob: &[u8], ctx: Option<ActivateContext>) -> Result<(), ActivateError>;

    /// Whether the device has host-side backends with file descriptors (sockets) that an event
    /// loop must wait on and then call [`VirtioDevice::poll_backends`] for. None by default.
    fn has_backends(&self) -> bool {
        false
    }

    /// Appends the descriptors the backends wait on now, with what to wait for. The set
    /// changes as connections come and go and as room appears or runs out.
    fn backend_fds(&self, _fds: &mut Vec<(RawFd, Interest)>) {}

    /// Does the backend work that is ready (accepting, reading, writing); returns whether
    /// anything moved. Called when a descriptor from [`VirtioDevice::backend_fds`] is ready.
    fn poll_backends(&mut self) -> bool {
        false
    }
}

/// Copies the bytes of a configuration space `cfg` at `offset` into `data`, for
/// [`VirtioDevice::read_config`]: bytes beyond its end (or at an offset that overflows) read
/// as zero.
pub fn read_config_bytes(cfg: &[u8], offset: u64, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| cfg.get(o).copied())
            .unwrap_or(0);
    }
}

/// A device's saved state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// The device's queues when active (their positions in the rings included).
    pub queues: Vec<QueueState>,
    /// Device-specific state.
    pub blob: Vec<u8>,
}
