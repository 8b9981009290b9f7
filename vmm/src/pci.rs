//! A PCI bus behind configuration mechanism #1 (ports 0xCF8/0xCFC) and ECAM (an MMIO window,
//! [`ECAM_BASE`], named by the ACPI MCFG table): a host bridge at 00:00.0 and the virtio
//! functions, with BARs placed by the VMM and MMIO dispatched to them.
//!
//! Each virtio function's queue notifications are KVM ioeventfds at `BAR0 + notify_offset(q)`,
//! registered while memory decoding is on and moved when the guest moves the BAR, so a guest
//! kick reaches the event loop without a vCPU exit.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use host_device::pci::VirtioPciDevice;
use host_device::virtio::{Interest, VirtioDevice};
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::layout::{BAR_BASE, BAR_END, ECAM_BASE, ECAM_SIZE};

/// Devices on bus 0 (function 0 only).
pub const MAX_SLOTS: usize = 32;
const COMMAND: u16 = 0x04;
const COMMAND_MEMORY: u16 = 1 << 1;
/// `device_status` in the virtio common configuration (BAR0 offset 0).
const DEVICE_STATUS: u64 = host_device::pci::driver::common_cfg::DEVICE_STATUS;

/// Why the bus could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PciError {
    /// All 31 device slots are taken.
    #[error("no free PCI slot")]
    NoSlot,
    /// The BAR window is full.
    #[error("no room for another BAR below {BAR_END:#x}")]
    NoBarSpace,
    /// An eventfd could not be created.
    #[error("creating an eventfd: {0}")]
    EventFd(std::io::Error),
}

/// One PCI function as the bus sees it.
pub trait PciFunction: Send {
    /// Reads configuration space.
    fn config_read(&self, offset: u16, data: &mut [u8]);
    /// Writes configuration space.
    fn config_write(&mut self, offset: u16, data: &[u8]);
    /// BAR0's address and size while memory decoding is enabled.
    fn bar_window(&self) -> Option<(u64, u64)>;
    /// Reads BAR0 at `offset`.
    fn bar_read(&mut self, offset: u64, data: &mut [u8]);
    /// Writes BAR0 at `offset`.
    fn bar_write(&mut self, offset: u64, data: &[u8]);
    /// Places BAR0.
    fn set_bar_address(&mut self, address: u64);
    /// Queue `queue` was notified (an ioeventfd fired).
    fn queue_notify(&mut self, queue: u16);
    /// Whether the function has host-side backends whose descriptors the event loop waits on.
    fn has_backends(&self) -> bool {
        false
    }
    /// Appends the descriptors its backends wait on now, with what for.
    fn backend_fds(&self, _fds: &mut Vec<(RawFd, Interest)>) {}
    /// Serves its ready backends; returns whether anything moved.
    fn poll_backends(&mut self) -> bool {
        false
    }
}

fn memory_enabled(f: &dyn PciFunction) -> bool {
    let mut cmd = [0u8; 2];
    f.config_read(COMMAND, &mut cmd);
    u16::from_le_bytes(cmd) & COMMAND_MEMORY != 0
}

impl<D: VirtioDevice> PciFunction for VirtioPciDevice<D> {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        VirtioPciDevice::config_read(self, offset, data)
    }
    fn config_write(&mut self, offset: u16, data: &[u8]) {
        VirtioPciDevice::config_write(self, offset, data)
    }
    fn bar_window(&self) -> Option<(u64, u64)> {
        let addr = self.bar_address()?;
        memory_enabled(self).then_some((addr, Self::bar_size()))
    }
    fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        VirtioPciDevice::bar_read(self, offset, data)
    }
    fn bar_write(&mut self, offset: u64, data: &[u8]) {
        VirtioPciDevice::bar_write(self, offset, data)
    }
    fn set_bar_address(&mut self, address: u64) {
        VirtioPciDevice::set_bar_address(self, address)
    }
    fn queue_notify(&mut self, queue: u16) {
        VirtioPciDevice::queue_notify(self, queue)
    }
    fn has_backends(&self) -> bool {
        VirtioPciDevice::has_backends(self)
    }
    fn backend_fds(&self, fds: &mut Vec<(RawFd, Interest)>) {
        VirtioPciDevice::backend_fds(self, fds)
    }
    fn poll_backends(&mut self) -> bool {
        VirtioPciDevice::poll_backends(self)
    }
}

/// The host bridge at 00:00.0, so the bus looks like a PC's to a guest that expects one.
struct HostBridge {
    config: [u8; 64],
}

impl HostBridge {
    fn new() -> Self {
        let mut config = [0u8; 64];
        config[0..2].copy_from_slice(&0x1b36u16.to_le_bytes()); // Red Hat, as QEMU's gpex
        config[2..4].copy_from_slice(&0x0008u16.to_le_bytes()); // PCIe host bridge
        config[0x0a] = 0x00; // subclass: host bridge
        config[0x0b] = 0x06; // class: bridge
        HostBridge { config }
    }
}

impl PciFunction for HostBridge {
    fn config_read(&self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self
                .config
                .get(usize::from(offset) + i)
                .copied()
                .unwrap_or(0);
        }
    }
    fn config_write(&mut self, _: u16, _: &[u8]) {}
    fn bar_window(&self) -> Option<(u64, u64)> {
        None
    }
    fn bar_read(&mut self, _: u64, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn bar_write(&mut self, _: u64, _: &[u8]) {}
    fn set_bar_address(&mut self, _: u64) {}
    fn queue_notify(&mut self, _: u16) {}
}

/// A shared PCI function.
pub type SharedFunction = Arc<Mutex<dyn PciFunction>>;

/// Locks a function; a poisoned lock (a panic elsewhere) still gives the data, since every
/// operation leaves the device consistent between register accesses.
pub fn lock(f: &SharedFunction) -> MutexGuard<'_, dyn PciFunction + 'static> {
    f.lock().unwrap_or_else(|e| e.into_inner())
}

/// A virtio function's queue-notification eventfds and where they are registered.
pub struct Notifiers {
    /// One eventfd per queue, in queue order.
    pub events: Vec<EventFd>,
    /// The BAR address they are registered at, if any.
    registered: Option<u64>,
    notify_offsets: Vec<u64>,
}

impl Notifiers {
    fn new(queues: u16, notify_offset: fn(u16) -> u64) -> Result<Self, PciError> {
        let events = (0..queues)
            .map(|_| EventFd::new(EFD_NONBLOCK).map_err(PciError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Notifiers {
            events,
            registered: None,
            notify_offsets: (0..queues).map(notify_offset).collect(),
        })
    }

    /// Moves the ioeventfds to a BAR that is decoded at a new, plausible address.
    ///
    /// They stay where they are while decoding is off or the BAR holds a sizing pattern:
    /// unregistering an ioeventfd waits for an SRCU grace period in KVM, 3 to 8 ms each under
    /// this nested KVM, and guests toggle decoding around BAR sizing. A kick written to the old
    /// address meanwhile only makes the device look at its queues once more.
    fn follow(&mut self, vm: &VmFd, window: Option<(u64, u64)>) {
        let Some((base, size)) = window else { return };
        if self.registered == Some(base) || base < BAR_BASE || base.saturating_add(size) > BAR_END {
            return;
        }
        if let Some(old) = self.registered.take() {
            for (ev, off) in self.events.iter().zip(&self.notify_offsets) {
                let addr = IoEventAddress::Mmio(old + off);
                if let Err(e) = vm.unregister_ioevent(ev, &addr, NoDatamatch) {
                    log::warn!("unregistering ioeventfd at {:#x}: {e}", old + off);
                }
            }
        }
        for (ev, off) in self.events.iter().zip(&self.notify_offsets) {
            let addr = IoEventAddress::Mmio(base + off);
            if let Err(e) = vm.register_ioevent(ev, &addr, NoDatamatch) {
                // The notify write then exits to the vCPU loop and reaches the device there.
                log::warn!("registering ioeventfd at {:#x}: {e}", base + off);
            }
        }
        self.registered = Some(base);
    }
}

struct Slot {
    function: SharedFunction,
    notifiers: Option<Arc<Mutex<Notifiers>>>,
}

/// What the event loop needs from one virtio function.
pub struct VirtioHandle {
    /// The function.
    pub function: SharedFunction,
    /// Its notification eventfds (cloned for the event loop).
    pub events: Vec<EventFd>,
}

/// The bus: configuration mechanism #1 plus MMIO dispatch to BARs.
pub struct PciBus {
    vm: Arc<VmFd>,
    wake: Option<EventFd>,
    address: u32,
    slots: Vec<Option<Slot>>,
    next_bar: u64,
}

impl PciBus {
    /// A bus with only the host bridge.
    pub fn new(vm: Arc<VmFd>) -> Self {
        let mut slots: Vec<Option<Slot>> = (0..MAX_SLOTS).map(|_| None).collect();
        slots[0] = Some(Slot {
            function: Arc::new(Mutex::new(HostBridge::new())),
            notifiers: None,
        });
        PciBus {
            vm,
            wake: None,
            address: 0,
            slots,
            next_bar: BAR_BASE,
        }
    }

    /// Sets the eventfd written after the guest writes a device's registers, so the event loop
    /// looks again at what the devices wait for.
    pub fn set_wake(&mut self, wake: EventFd) {
        self.wake = Some(wake);
    }

    fn wake(&self) {
        if let Some(w) = &self.wake {
            let _ = w.write(1);
        }
    }

    /// Adds a virtio function in the next free slot, with BAR0 placed, memory decoding left to
    /// the guest, and one ioeventfd per queue. Returns its slot and what the event loop needs.
    pub fn add_virtio<D: VirtioDevice + 'static>(
        &mut self,
        device: Arc<Mutex<VirtioPciDevice<D>>>,
        queues: u16,
    ) -> Result<(u8, VirtioHandle), PciError> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(PciError::NoSlot)?;
        let size = VirtioPciDevice::<D>::bar_size();
        let bar = self.next_bar.next_multiple_of(size);
        if bar + size > BAR_END {
            return Err(PciError::NoBarSpace);
        }
        self.next_bar = bar + size;
        device
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_bar_address(bar);
        let notifiers = Notifiers::new(queues, VirtioPciDevice::<D>::notify_offset)?;
        let events = notifiers
            .events
            .iter()
            .map(|e| e.try_clone().map_err(PciError::EventFd))
            .collect::<Result<Vec<_>, _>>()?;
        let function: SharedFunction = device;
        self.slots[slot] = Some(Slot {
            function: function.clone(),
            notifiers: Some(Arc::new(Mutex::new(notifiers))),
        });
        Ok((slot as u8, VirtioHandle { function, events }))
    }

    fn target(&self) -> Option<(&Slot, u16)> {
        let a = self.address;
        let enabled = a & 0x8000_0000 != 0;
        let bus = (a >> 16) & 0xff;
        let device = (a >> 11) & 0x1f;
        let function = (a >> 8) & 0x7;
        if !enabled || bus != 0 || function != 0 {
            return None;
        }
        let slot = self.slots.get(device as usize)?.as_ref()?;
        Some((slot, (a & 0xfc) as u16))
    }

    /// A read from CONFIG_ADDRESS or CONFIG_DATA (`offset` 0..4 within 0xCFC).
    pub fn config_address_read(&self, data: &mut [u8]) {
        let bytes = self.address.to_le_bytes();
        for (d, b) in data.iter_mut().zip(bytes) {
            *d = b;
        }
    }

    /// A write to CONFIG_ADDRESS (only dword writes latch, as on real hardware).
    pub fn config_address_write(&mut self, data: &[u8]) {
        if let Ok(bytes) = <[u8; 4]>::try_from(data) {
            self.address = u32::from_le_bytes(bytes);
        }
    }

    /// A read from CONFIG_DATA at byte `offset` (0..4): all-ones where no function answers.
    pub fn config_data_read(&self, offset: u16, data: &mut [u8]) {
        match self.target() {
            Some((slot, reg)) if usize::from(offset) + data.len() <= 4 => {
                lock(&slot.function).config_read(reg + offset, data)
            }
            _ => data.fill(0xff),
        }
    }

    /// A write to CONFIG_DATA at byte `offset`; the function's ioeventfds follow its BAR.
    pub fn config_data_write(&mut self, offset: u16, data: &[u8]) {
        let Some((slot, reg)) = self.target() else {
            return;
        };
        if usize::from(offset) + data.len() > 4 {
            return;
        }
        self.config_write_to(slot, reg + offset, data);
    }

    fn config_write_to(&self, slot: &Slot, reg: u16, data: &[u8]) {
        let window = {
            let mut f = lock(&slot.function);
            f.config_write(reg, data);
            f.bar_window()
        };
        if let Some(n) = &slot.notifiers {
            n.lock()
                .unwrap_or_else(|e| e.into_inner())
                .follow(&self.vm, window);
        }
    }

    /// For an access of `len` bytes at `addr` inside the ECAM window: the function it reaches
    /// (`None` for an empty slot or function) and the register, or `Err` when the access is
    /// not naturally aligned within one dword.
    fn ecam_target(&self, addr: u64, len: usize) -> Option<Result<Option<(&Slot, u16)>, ()>> {
        let offset = addr.checked_sub(ECAM_BASE).filter(|o| *o < ECAM_SIZE)?;
        let reg = (offset & 0xfff) as u16;
        if !matches!(len, 1 | 2 | 4) || usize::from(reg) % len != 0 {
            return Some(Err(()));
        }
        let device = (offset >> 15) & 0x1f;
        let function = (offset >> 12) & 0x7;
        if function != 0 {
            return Some(Ok(None));
        }
        let slot = self.slots.get(device as usize).and_then(Option::as_ref);
        Some(Ok(slot.map(|s| (s, reg))))
    }

    fn mmio_target(&self, addr: u64, len: usize) -> Option<(SharedFunction, u64)> {
        self.slots.iter().flatten().find_map(|slot| {
            let (base, size) = lock(&slot.function).bar_window()?;
            let end = addr.checked_add(len as u64)?;
            (addr >= base && end <= base + size).then(|| (slot.function.clone(), addr - base))
        })
    }

    /// An MMIO read; false if neither the ECAM window nor a BAR covers it.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) -> bool {
        if let Some(target) = self.ecam_target(addr, data.len()) {
            match target {
                // Registers past the first 256 bytes (PCIe extended space) read as zero.
                Ok(Some((slot, reg))) if reg < 0x100 => lock(&slot.function).config_read(reg, data),
                Ok(Some(_)) => data.fill(0),
                Ok(None) | Err(()) => data.fill(0xff),
            }
            return true;
        }
        match self.mmio_target(addr, data.len()) {
            Some((f, offset)) => {
                lock(&f).bar_read(offset, data);
                true
            }
            None => false,
        }
    }

    /// An MMIO write; false if neither the ECAM window nor a BAR covers it.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) -> bool {
        if let Some(target) = self.ecam_target(addr, data.len()) {
            if let Ok(Some((slot, reg))) = target
                && reg < 0x100
            {
                self.config_write_to(slot, reg, data);
            }
            return true;
        }
        match self.mmio_target(addr, data.len()) {
            Some((f, offset)) => {
                lock(&f).bar_write(offset, data);
                // Only a status change (DRIVER_OK, reset) changes what the backends wait for;
                // queue kicks reach the event loop through the ioeventfds. Waking it on every
                // register write would make it fight the vCPU for the device lock during
                // the guest's queue set-up.
                if offset == DEVICE_STATUS {
                    self.wake();
                }
                true
            }
            None => false,
        }
    }
}
