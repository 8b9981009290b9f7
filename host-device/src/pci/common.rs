//! The virtio common configuration structure (virtio 1.x 4.1.4.3): feature negotiation, device
//! status and the registers the driver programs each queue through.
//!
//! Each register is accessed at its natural width (8, 16 or 32 bits; the 64-bit queue
//! addresses also as two 32-bit halves). An access of any other width or alignment reads as
//! zero and writes nothing. Queue registers of a queue that does not exist (`queue_select` out
//! of range) read as zero (`queue_size` 0 tells the driver the queue is unavailable) and ignore
//! writes.
//!
//! What needs the device (reset, activation) is returned to the caller as an [`Action`]; the
//! MSI-X vector registers live in [`Interrupts`] because the device reads them when it signals.

use super::interrupt::Interrupts;
use super::msix::NO_VECTOR;
use crate::virtio::{VIRTIO_F_VERSION_1, status};

/// The size of the structure (up to and including `queue_device_hi`).
pub(super) const COMMON_LEN: u64 = 0x38;

/// A register of the common configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    DeviceFeatureSelect,
    DeviceFeature,
    DriverFeatureSelect,
    DriverFeature,
    ConfigMsixVector,
    NumQueues,
    DeviceStatus,
    ConfigGeneration,
    QueueSelect,
    QueueSize,
    QueueMsixVector,
    QueueEnable,
    QueueNotifyOff,
    QueueDesc(Half),
    QueueDriver(Half),
    QueueDevice(Half),
}

/// Which part of a 64-bit register an access covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Half {
    Lo,
    Hi,
    Both,
}

impl Half {
    fn read(self, v: u64) -> u64 {
        match self {
            Half::Lo => v & 0xffff_ffff,
            Half::Hi => v >> 32,
            Half::Both => v,
        }
    }

    fn write(self, old: u64, v: u64) -> u64 {
        match self {
            Half::Lo => (old & !0xffff_ffff) | (v & 0xffff_ffff),
            Half::Hi => (old & 0xffff_ffff) | (v << 32),
            Half::Both => v,
        }
    }
}

/// The register an access of `len` bytes at `offset` hits, if it is a well-formed access.
fn decode(offset: u64, len: usize) -> Option<Reg> {
    use Half::*;
    use Reg::*;
    Some(match (offset, len) {
        (0x00, 4) => DeviceFeatureSelect,
        (0x04, 4) => DeviceFeature,
        (0x08, 4) => DriverFeatureSelect,
        (0x0c, 4) => DriverFeature,
        (0x10, 2) => ConfigMsixVector,
        (0x12, 2) => NumQueues,
        (0x14, 1) => DeviceStatus,
        (0x15, 1) => ConfigGeneration,
        (0x16, 2) => QueueSelect,
        (0x18, 2) => QueueSize,
        (0x1a, 2) => QueueMsixVector,
        (0x1c, 2) => QueueEnable,
        (0x1e, 2) => QueueNotifyOff,
        (0x20, 4) => QueueDesc(Lo),
        (0x24, 4) => QueueDesc(Hi),
        (0x20, 8) => QueueDesc(Both),
        (0x28, 4) => QueueDriver(Lo),
        (0x2c, 4) => QueueDriver(Hi),
        (0x28, 8) => QueueDriver(Both),
        (0x30, 4) => QueueDevice(Lo),
        (0x34, 4) => QueueDevice(Hi),
        (0x30, 8) => QueueDevice(Both),
        _ => return None,
    })
}

/// What the transport has to do after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Nothing.
    None,
    /// The driver wrote 0 to `device_status`: reset the device and the transport.
    Reset,
    /// The driver set DRIVER_OK (after FEATURES_OK): activate the device.
    Activate,
}

/// What the driver programmed for one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct QueueRegs {
    /// The device's maximum size (what `queue_size` resets to).
    pub max_size: u16,
    /// `queue_size`.
    pub size: u16,
    /// `queue_enable`.
    pub enabled: bool,
    /// `queue_desc`.
    pub desc: u64,
    /// `queue_driver` (the available ring).
    pub driver: u64,
    /// `queue_device` (the used ring).
    pub device: u64,
}

impl QueueRegs {
    /// The registers after reset.
    pub fn new(max_size: u16) -> Self {
        QueueRegs {
            max_size,
            size: max_size,
            enabled: false,
            desc: 0,
            driver: 0,
            device: 0,
        }
    }
}

/// The common configuration registers (except the MSI-X vectors, see [`Interrupts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CommonConfig {
    /// `device_feature_select`.
    pub device_feature_select: u32,
    /// `driver_feature_select`.
    pub driver_feature_select: u32,
    /// The driver's feature words as written (bits the device did not offer included, so that
    /// FEATURES_OK can refuse them).
    pub driver_features: [u32; 2],
    /// `device_status`.
    pub status: u8,
    /// `queue_select`.
    pub queue_select: u16,
    /// Per-queue registers.
    pub queues: Vec<QueueRegs>,
}

impl CommonConfig {
    /// The registers after reset for queues of the given maximum sizes.
    pub fn new(max_sizes: &[u16]) -> Self {
        CommonConfig {
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: [0; 2],
            status: 0,
            queue_select: 0,
            queues: max_sizes.iter().map(|&m| QueueRegs::new(m)).collect(),
        }
    }

    /// Back to the state after reset.
    pub fn reset(&mut self) {
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.driver_features = [0; 2];
        self.status = 0;
        self.queue_select = 0;
        for q in &mut self.queues {
            *q = QueueRegs::new(q.max_size);
        }
    }

    /// The number of queues.
    pub fn num_queues(&self) -> u16 {
        u16::try_from(self.queues.len()).unwrap_or(u16::MAX)
    }

    /// Everything the driver wrote to `driver_feature`.
    fn driver_features_raw(&self) -> u64 {
        (u64::from(self.driver_features[1]) << 32) | u64::from(self.driver_features[0])
    }

    /// The features both sides agreed on.
    pub fn acked_features(&self, device_features: u64) -> u64 {
        self.driver_features_raw() & device_features
    }

    /// Whether the driver's features can be accepted: only offered ones, and VERSION_1 if the
    /// device offers it (this transport has no legacy interface).
    fn features_acceptable(&self, device_features: u64) -> bool {
        let driver = self.driver_features_raw();
        driver & !device_features == 0
            && (device_features & VIRTIO_F_VERSION_1 == 0 || driver & VIRTIO_F_VERSION_1 != 0)
    }

    /// Records that the device failed: DEVICE_NEEDS_RESET.
    pub fn set_needs_reset(&mut self) {
        self.status |= status::DEVICE_NEEDS_RESET;
    }

    fn selected(&self) -> Option<&QueueRegs> {
        self.queues.get(usize::from(self.queue_select))
    }

    /// The selected queue, if the driver may still program it (it exists, is not enabled, and
    /// the device is not live).
    fn selected_programmable(&mut self) -> Option<&mut QueueRegs> {
        let live = self.status & status::DRIVER_OK != 0;
        self.queues
            .get_mut(usize::from(self.queue_select))
            .filter(|q| !q.enabled && !live)
    }

    /// Reads the register at `offset`; malformed accesses read as zero.
    pub fn read(&self, offset: u64, data: &mut [u8], device_features: u64, irq: &Interrupts) {
        data.fill(0);
        let Some(reg) = decode(offset, data.len()) else {
            log::debug!(
                "virtio-pci: common cfg read of {} bytes at {offset:#x}",
                data.len()
            );
            return;
        };
        let q = self.selected();
        let v: u64 = match reg {
            Reg::DeviceFeatureSelect => self.device_feature_select.into(),
            Reg::DeviceFeature => match self.device_feature_select {
                0 => device_features & 0xffff_ffff,
                1 => device_features >> 32,
                _ => 0,
            },
            Reg::DriverFeatureSelect => self.driver_feature_select.into(),
            Reg::DriverFeature => match self.driver_feature_select {
                0 => self.acked_features(device_features) & 0xffff_ffff,
                1 => self.acked_features(device_features) >> 32,
                _ => 0,
            },
            Reg::ConfigMsixVector => irq.config_vector().into(),
            Reg::NumQueues => self.num_queues().into(),
            Reg::DeviceStatus => self.status.into(),
            Reg::ConfigGeneration => irq.config_generation().into(),
            Reg::QueueSelect => self.queue_select.into(),
            Reg::QueueSize => q.map_or(0, |q| q.size).into(),
            Reg::QueueMsixVector => match q {
                Some(_) => irq.queue_vector(self.queue_select).into(),
                None => NO_VECTOR.into(),
            },
            Reg::QueueEnable => q.map_or(0, |q| u64::from(q.enabled)),
            Reg::QueueNotifyOff => q.map_or(0, |_| self.queue_select).into(),
            Reg::QueueDesc(h) => q.map_or(0, |q| h.read(q.desc)),
            Reg::QueueDriver(h) => q.map_or(0, |q| h.read(q.driver)),
            Reg::QueueDevice(h) => q.map_or(0, |q| h.read(q.device)),
        };
        let bytes = v.to_le_bytes();
        data.copy_from_slice(&bytes[..data.len()]);
    }

    /// Writes the register at `offset`; malformed accesses and read-only registers are
    /// ignored.
    pub fn write(
        &mut self,
        offset: u64,
        data: &[u8],
        device_features: u64,
        irq: &Interrupts,
    ) -> Action {
        let Some(reg) = decode(offset, data.len()) else {
            log::debug!(
                "virtio-pci: common cfg write of {} bytes at {offset:#x}",
                data.len()
            );
            return Action::None;
        };
        let mut bytes = [0u8; 8];
        bytes[..data.len()].copy_from_slice(data);
        let v = u64::from_le_bytes(bytes);
        // The value truncated to the register's width (decode guarantees it fits).
        let v16 = v as u16;
        let v32 = v as u32;
        match reg {
            Reg::DeviceFeatureSelect => self.device_feature_select = v32,
            Reg::DriverFeatureSelect => self.driver_feature_select = v32,
            Reg::DriverFeature => {
                if self.status & status::FEATURES_OK != 0 {
                    log::debug!("virtio-pci: driver features written after FEATURES_OK");
                } else if let Some(w) = self
                    .driver_features
                    .get_mut(self.driver_feature_select as usize)
                {
                    *w = v32;
                }
            }
            Reg::ConfigMsixVector => irq.set_config_vector(v16),
            Reg::DeviceStatus => return self.write_status(v as u8, device_features),
            Reg::QueueSelect => self.queue_select = v16,
            Reg::QueueSize => {
                if let Some(q) = self.selected_programmable() {
                    if v16 != 0 && v16.is_power_of_two() && v16 <= q.max_size {
                        q.size = v16;
                    } else {
                        log::debug!("virtio-pci: ignoring queue size {v16} (max {})", q.max_size);
                    }
                }
            }
            Reg::QueueMsixVector => {
                if self.selected().is_some() {
                    irq.set_queue_vector(self.queue_select, v16);
                }
            }
            Reg::QueueEnable => {
                // Writing 0 is not allowed; reset is how a queue is disabled.
                if v16 == 1
                    && let Some(q) = self.selected_programmable()
                {
                    q.enabled = true;
                }
            }
            Reg::QueueDesc(h) => {
                if let Some(q) = self.selected_programmable() {
                    q.desc = h.write(q.desc, v);
                }
            }
            Reg::QueueDriver(h) => {
                if let Some(q) = self.selected_programmable() {
                    q.driver = h.write(q.driver, v);
                }
            }
            Reg::QueueDevice(h) => {
                if let Some(q) = self.selected_programmable() {
                    q.device = h.write(q.device, v);
                }
            }
            Reg::DeviceFeature | Reg::NumQueues | Reg::ConfigGeneration | Reg::QueueNotifyOff => {}
        }
        Action::None
    }

    /// A write to `device_status`. Bits only accumulate until a reset (the driver never clears
    /// one); FEATURES_OK sticks only if the features are acceptable; DRIVER_OK without
    /// FEATURES_OK is a driver bug and earns DEVICE_NEEDS_RESET instead of an activation.
    fn write_status(&mut self, v: u8, device_features: u64) -> Action {
        if v == 0 {
            return Action::Reset;
        }
        let old = self.status;
        // DEVICE_NEEDS_RESET is the device's to set.
        let mut new = old | (v & !status::DEVICE_NEEDS_RESET);
        if new & status::FEATURES_OK != 0
            && old & status::FEATURES_OK == 0
            && !self.features_acceptable(device_features)
        {
            log::warn!(
                "virtio-pci: refusing driver features {:#x} (device offers {device_features:#x})",
                self.driver_features_raw()
            );
            new &= !status::FEATURES_OK;
        }
        let mut action = Action::None;
        if new & status::DRIVER_OK != 0 && old & status::DRIVER_OK == 0 {
            if new & status::FEATURES_OK != 0 {
                action = Action::Activate;
            } else {
                log::warn!("virtio-pci: DRIVER_OK without FEATURES_OK");
                new |= status::DEVICE_NEEDS_RESET;
            }
        }
        self.status = new;
        action
    }
}
