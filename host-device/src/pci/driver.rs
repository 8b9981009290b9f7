//! The driver's view of the transport: where a driver finds the virtio structures (by walking
//! the capability list, virtio 1.x 4.1.4) and the offsets of the common configuration registers
//! (4.1.4.3). Used by everything here that plays the guest: the in-process transport the kernel
//! driver runs over, the fuzz driver and the tests.

use super::VirtioPciDevice;
use crate::virtio::VirtioDevice;

/// Offsets of the common configuration registers.
pub mod common_cfg {
    /// le32: which 32 feature bits `DEVICE_FEATURE` shows.
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    /// le32: the device's features (read-only).
    pub const DEVICE_FEATURE: u64 = 0x04;
    /// le32: which 32 feature bits `DRIVER_FEATURE` takes.
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    /// le32: the features the driver accepts.
    pub const DRIVER_FEATURE: u64 = 0x0c;
    /// le16: MSI-X vector for configuration changes.
    pub const CONFIG_MSIX_VECTOR: u64 = 0x10;
    /// le16: number of queues (read-only).
    pub const NUM_QUEUES: u64 = 0x12;
    /// u8: device status.
    pub const DEVICE_STATUS: u64 = 0x14;
    /// u8: configuration generation (read-only).
    pub const CONFIG_GENERATION: u64 = 0x15;
    /// le16: which queue the queue registers address.
    pub const QUEUE_SELECT: u64 = 0x16;
    /// le16: queue size.
    pub const QUEUE_SIZE: u64 = 0x18;
    /// le16: the queue's MSI-X vector.
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1a;
    /// le16: queue enabled.
    pub const QUEUE_ENABLE: u64 = 0x1c;
    /// le16: the queue's notify offset, in notify multipliers (read-only).
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    /// le64: descriptor table address.
    pub const QUEUE_DESC: u64 = 0x20;
    /// le64: available ring address.
    pub const QUEUE_DRIVER: u64 = 0x28;
    /// le64: used ring address.
    pub const QUEUE_DEVICE: u64 = 0x30;
}

/// PCI capability id of vendor-specific (virtio) capabilities.
pub const CAP_VENDOR: u8 = 0x09;
/// PCI capability id of MSI-X.
pub const CAP_MSIX: u8 = 0x11;
/// virtio capability types.
pub mod cfg_type {
    /// Common configuration.
    pub const COMMON: u8 = 1;
    /// Notifications.
    pub const NOTIFY: u8 = 2;
    /// ISR status.
    pub const ISR: u8 = 3;
    /// Device-specific configuration.
    pub const DEVICE: u8 = 4;
}

/// Where the virtio structures are in BAR0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioLayout {
    /// Common configuration.
    pub common: u64,
    /// Notification area.
    pub notify: u64,
    /// Bytes between two queues' notify addresses (per `queue_notify_off` unit).
    pub notify_multiplier: u64,
    /// ISR status byte.
    pub isr: u64,
    /// Device-specific configuration.
    pub device: u64,
}

fn cfg<D: VirtioDevice>(dev: &VirtioPciDevice<D>, off: u16, n: usize) -> u32 {
    let mut b = [0u8; 4];
    dev.config_read(off, &mut b[..n.min(4)]);
    u32::from_le_bytes(b)
}

/// The configuration-space offset of the first capability with `id` (and, given, virtio
/// `cfg_type`), following the list with a guard against loops.
pub fn find_capability<D: VirtioDevice>(
    dev: &VirtioPciDevice<D>,
    id: u8,
    cfg_type: Option<u8>,
) -> Option<u16> {
    let mut ptr = cfg(dev, 0x34, 1) as u16 & !3;
    for _ in 0..48 {
        if ptr == 0 {
            return None;
        }
        if cfg(dev, ptr, 1) == u32::from(id)
            && cfg_type.is_none_or(|t| cfg(dev, ptr + 3, 1) == u32::from(t))
        {
            return Some(ptr);
        }
        ptr = cfg(dev, ptr + 1, 1) as u16 & !3;
    }
    None
}

impl VirtioLayout {
    /// Finds the four structures, or says which capability type is missing.
    pub fn find<D: VirtioDevice>(dev: &VirtioPciDevice<D>) -> Result<Self, u8> {
        let at = |t: u8| find_capability(dev, CAP_VENDOR, Some(t)).ok_or(t);
        let offset = |cap: u16| u64::from(cfg(dev, cap + 8, 4));
        let notify = at(cfg_type::NOTIFY)?;
        Ok(VirtioLayout {
            common: offset(at(cfg_type::COMMON)?),
            notify: offset(notify),
            notify_multiplier: u64::from(cfg(dev, notify + 16, 4)),
            isr: offset(at(cfg_type::ISR)?),
            device: offset(at(cfg_type::DEVICE)?),
        })
    }
}
