//! A virtio-drivers [`Transport`] that reaches a host-device [`VirtioPciDevice`] through its
//! PCI configuration space and BAR registers by function call: the guest driver's accesses,
//! without the MMIO.
//!
//! It finds the common, notify, ISR and device configuration structures by walking the
//! capability list, as the guest's PCI transport does, so the device's real register layout
//! is what the driver talks to.

use std::sync::{Arc, Mutex, MutexGuard};

use host_device::pci::VirtioPciDevice;
use host_device::pci::driver::{VirtioLayout, common_cfg as common};
use host_device::virtio::VirtioDevice;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A virtio capability is missing.
    #[error("the device has no virtio capability of type {0}")]
    MissingCapability(u8),
    /// The PCI device id names no virtio device type virtio-drivers knows.
    #[error("PCI device id {0:#x} is not a known virtio device")]
    UnknownDevice(u16),
}

/// The device a transport talks to, shared with the host side of a test.
pub type SharedDevice<D> = Arc<Mutex<VirtioPciDevice<D>>>;

/// The in-process transport.
pub struct InProcTransport<D: VirtioDevice> {
    dev: SharedDevice<D>,
    common: u64,
    notify: u64,
    notify_mult: u64,
    isr: u64,
    device_cfg: u64,
    device_type: DeviceType,
}

impl<D: VirtioDevice> InProcTransport<D> {
    /// Finds the device's virtio structures through its capability list.
    pub fn new(dev: SharedDevice<D>) -> Result<Self, TransportError> {
        let (layout, device_id) = {
            let d = dev.lock().unwrap_or_else(|e| e.into_inner());
            let mut id = [0u8; 2];
            d.config_read(2, &mut id);
            let layout = VirtioLayout::find(&d).map_err(TransportError::MissingCapability)?;
            (layout, u16::from_le_bytes(id))
        };
        Ok(InProcTransport {
            dev,
            common: layout.common,
            notify: layout.notify,
            notify_mult: layout.notify_multiplier,
            isr: layout.isr,
            device_cfg: layout.device,
            device_type: DeviceType::try_from(device_id.wrapping_sub(0x1040))
                .map_err(|_| TransportError::UnknownDevice(device_id))?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, VirtioPciDevice<D>> {
        self.dev.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self, off: u64, buf: &mut [u8]) {
        self.lock().bar_read(off, buf);
    }

    fn write(&self, off: u64, buf: &[u8]) {
        self.lock().bar_write(off, buf);
    }

    fn r8(&self, off: u64) -> u8 {
        let mut b = [0u8];
        self.read(self.common + off, &mut b);
        b[0]
    }

    fn r16(&self, off: u64) -> u16 {
        let mut b = [0u8; 2];
        self.read(self.common + off, &mut b);
        u16::from_le_bytes(b)
    }

    fn r32(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.read(self.common + off, &mut b);
        u32::from_le_bytes(b)
    }

    fn w8(&self, off: u64, v: u8) {
        self.write(self.common + off, &[v]);
    }

    fn w16(&self, off: u64, v: u16) {
        self.write(self.common + off, &v.to_le_bytes());
    }

    fn w32(&self, off: u64, v: u32) {
        self.write(self.common + off, &v.to_le_bytes());
    }

    fn w64(&self, off: u64, v: u64) {
        self.w32(off, v as u32);
        self.w32(off + 4, (v >> 32) as u32);
    }
}

impl<D: VirtioDevice> Transport for InProcTransport<D> {
    fn device_type(&self) -> DeviceType {
        self.device_type
    }

    fn read_device_features(&mut self) -> u64 {
        self.w32(common::DEVICE_FEATURE_SELECT, 0);
        let lo = self.r32(common::DEVICE_FEATURE) as u64;
        self.w32(common::DEVICE_FEATURE_SELECT, 1);
        let hi = self.r32(common::DEVICE_FEATURE) as u64;
        lo | hi << 32
    }

    fn write_driver_features(&mut self, f: u64) {
        self.w32(common::DRIVER_FEATURE_SELECT, 0);
        self.w32(common::DRIVER_FEATURE, f as u32);
        self.w32(common::DRIVER_FEATURE_SELECT, 1);
        self.w32(common::DRIVER_FEATURE, (f >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.w16(common::QUEUE_SELECT, queue);
        self.r16(common::QUEUE_SIZE) as u32
    }

    fn notify(&mut self, queue: u16) {
        self.w16(common::QUEUE_SELECT, queue);
        let off = self.r16(common::QUEUE_NOTIFY_OFF) as u64;
        self.write(self.notify + off * self.notify_mult, &queue.to_le_bytes());
    }

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(self.r8(common::DEVICE_STATUS) as u32)
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.w8(common::DEVICE_STATUS, status.bits() as u8);
    }

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {}

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.w16(common::QUEUE_SELECT, queue);
        self.w16(common::QUEUE_SIZE, size as u16);
        self.w64(common::QUEUE_DESC, descriptors);
        self.w64(common::QUEUE_DRIVER, driver_area);
        self.w64(common::QUEUE_DEVICE, device_area);
        self.w16(common::QUEUE_ENABLE, 1);
    }

    fn queue_unset(&mut self, queue: u16) {
        self.w16(common::QUEUE_SELECT, queue);
        self.w16(common::QUEUE_ENABLE, 0);
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.w16(common::QUEUE_SELECT, queue);
        self.r16(common::QUEUE_ENABLE) == 1
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        let mut b = [0u8];
        self.lock().bar_read(self.isr, &mut b);
        InterruptStatus::from_bits_truncate(b[0] as u32)
    }

    fn read_config_generation(&self) -> u32 {
        self.r8(common::CONFIG_GENERATION) as u32
    }

    fn read_config_space<T: FromBytes + IntoBytes>(&self, offset: usize) -> Result<T, Error> {
        let mut buf = vec![0u8; size_of::<T>()];
        self.read(self.device_cfg + offset as u64, &mut buf);
        T::read_from_bytes(&buf).map_err(|_| Error::ConfigSpaceTooSmall)
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<(), Error> {
        self.write(self.device_cfg + offset as u64, value.as_bytes());
        Ok(())
    }
}
