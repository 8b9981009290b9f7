//! The guest's side of the virtio-pci transport: registers of the common configuration found
//! through the capability list, and the steps of bringing a device up.

use vm_memory::GuestMemoryMmap;

use super::GuestQueue;
use crate::pci::VirtioPciDevice;
use crate::pci::driver::VirtioLayout;
use crate::pci::driver::common_cfg::{
    DEVICE_FEATURE, DEVICE_FEATURE_SELECT, DEVICE_STATUS, DRIVER_FEATURE, DRIVER_FEATURE_SELECT,
    QUEUE_DESC, QUEUE_DEVICE, QUEUE_DRIVER, QUEUE_ENABLE, QUEUE_NOTIFY_OFF, QUEUE_SELECT,
    QUEUE_SIZE,
};
use crate::virtio::{VirtioDevice, status};

/// A device on its transport, driven through BAR0 as a guest driver would.
pub struct PciDriver<D: VirtioDevice> {
    /// The device and its transport.
    pub dev: VirtioPciDevice<D>,
    /// Guest memory, shared with the device.
    pub mem: GuestMemoryMmap,
    /// Where the virtio structures are in BAR0.
    pub layout: VirtioLayout,
}

impl<D: VirtioDevice> PciDriver<D> {
    /// Walks `dev`'s capabilities. Panics when a virtio structure is missing.
    pub fn new(dev: VirtioPciDevice<D>, mem: GuestMemoryMmap) -> Self {
        let layout = VirtioLayout::find(&dev)
            .unwrap_or_else(|t| panic!("virtio capability type {t} missing"));
        PciDriver { dev, mem, layout }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        self.dev.device()
    }

    /// The device model, mutably.
    pub fn device_mut(&mut self) -> &mut D {
        self.dev.device_mut()
    }

    /// Writes raw bytes at `off` in the common configuration.
    pub fn write_common(&mut self, off: u64, v: &[u8]) {
        self.dev.bar_write(self.layout.common + off, v);
    }

    /// Reads raw bytes at `off` in the common configuration.
    pub fn read_common(&mut self, off: u64, v: &mut [u8]) {
        self.dev.bar_read(self.layout.common + off, v);
    }

    /// Writes a u8 register.
    pub fn w8(&mut self, off: u64, v: u8) {
        self.write_common(off, &[v]);
    }

    /// Writes a le16 register.
    pub fn w16(&mut self, off: u64, v: u16) {
        self.write_common(off, &v.to_le_bytes());
    }

    /// Writes a le32 register.
    pub fn w32(&mut self, off: u64, v: u32) {
        self.write_common(off, &v.to_le_bytes());
    }

    /// Writes a le64 register as two le32 halves, low first.
    pub fn w64(&mut self, off: u64, v: u64) {
        self.w32(off, v as u32);
        self.w32(off + 4, (v >> 32) as u32);
    }

    /// Reads a u8 register.
    pub fn r8(&mut self, off: u64) -> u8 {
        let mut b = [0u8; 1];
        self.read_common(off, &mut b);
        b[0]
    }

    /// Reads a le16 register.
    pub fn r16(&mut self, off: u64) -> u16 {
        let mut b = [0u8; 2];
        self.read_common(off, &mut b);
        u16::from_le_bytes(b)
    }

    /// Reads a le32 register.
    pub fn r32(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read_common(off, &mut b);
        u32::from_le_bytes(b)
    }

    /// The 64 feature bits the device offers.
    pub fn device_features(&mut self) -> u64 {
        self.w32(DEVICE_FEATURE_SELECT, 0);
        let lo = self.r32(DEVICE_FEATURE);
        self.w32(DEVICE_FEATURE_SELECT, 1);
        let hi = self.r32(DEVICE_FEATURE);
        u64::from(lo) | u64::from(hi) << 32
    }

    /// ACKNOWLEDGE, DRIVER, `features` accepted, FEATURES_OK. Panics if the device refuses
    /// the features.
    pub fn negotiate(&mut self, features: u64) {
        self.w8(DEVICE_STATUS, status::ACKNOWLEDGE);
        self.w8(DEVICE_STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.w32(DRIVER_FEATURE_SELECT, 0);
        self.w32(DRIVER_FEATURE, features as u32);
        self.w32(DRIVER_FEATURE_SELECT, 1);
        self.w32(DRIVER_FEATURE, (features >> 32) as u32);
        let features_ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.w8(DEVICE_STATUS, features_ok);
        assert_eq!(self.r8(DEVICE_STATUS), features_ok, "features refused");
    }

    /// Programs the selected queue `q` with `ring`'s addresses and size (its size must be
    /// what the queue takes) and enables it.
    pub fn program_queue(&mut self, q: u16, ring: &GuestQueue) {
        self.w16(QUEUE_SELECT, q);
        self.w16(QUEUE_SIZE, ring.size);
        self.w64(QUEUE_DESC, ring.desc);
        self.w64(QUEUE_DRIVER, ring.avail);
        self.w64(QUEUE_DEVICE, ring.used);
        self.w16(QUEUE_ENABLE, 1);
    }

    /// Sets DRIVER_OK and checks the device went live.
    pub fn driver_ok(&mut self) {
        let features_ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.w8(DEVICE_STATUS, features_ok | status::DRIVER_OK);
        assert_eq!(
            self.r8(DEVICE_STATUS),
            features_ok | status::DRIVER_OK,
            "the device did not go live"
        );
    }

    /// Writes 0 to the status register (a device reset).
    pub fn reset(&mut self) {
        self.w8(DEVICE_STATUS, 0);
    }

    /// The BAR0 offset of queue `q`'s notify address, as the driver computes it from
    /// `queue_notify_off`.
    pub fn notify_address(&mut self, q: u16) -> u64 {
        self.w16(QUEUE_SELECT, q);
        self.layout.notify + self.layout.notify_multiplier * u64::from(self.r16(QUEUE_NOTIFY_OFF))
    }

    /// Notifies queue `q` at `at` (from [`PciDriver::notify_address`]).
    pub fn notify_at(&mut self, at: u64, q: u16) {
        self.dev.bar_write(at, &q.to_le_bytes());
    }

    /// Reads (and so clears) the ISR.
    pub fn read_isr(&mut self) -> u8 {
        let mut b = [0u8; 1];
        self.dev.bar_read(self.layout.isr, &mut b);
        b[0]
    }
}
