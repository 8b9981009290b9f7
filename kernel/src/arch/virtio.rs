//! virtio-pci glue: finds the virtio-console, gives it BARs if firmware did not, routes its
//! queues to one MSI-X vector, and wraps it in virtio-drivers' modern PCI transport.

use alloc::alloc::{alloc_zeroed, dealloc, handle_alloc_error};
use alloc::vec::Vec;
use core::alloc::Layout;
use core::fmt;
use core::ops::Range;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, VirtioPciError};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::apic;
use super::io::Mmio;
use super::pci::PciConfig;
use crate::pci::{
    self, Bdf, CAP_MSIX, ConfigAccess, MemBar, PciError, PciFunction, ShadowConfig, VirtioCapKind,
};
use crate::virtio_console::device::{CONFIG_EMERG_WR, ConsoleDevice, DeviceError, Features};

/// The IDT vector every virtio queue interrupts on.
pub const VECTOR: u8 = 0x40;

/// DMA memory from the kernel heap: the heap is identity-mapped, so physical = virtual.
pub struct KernelHal;

// SAFETY: `dma_alloc` returns fresh, zeroed, page-aligned heap memory that nothing else
// references; physical addresses equal virtual ones in the identity map, and the heap never
// starts at 0 (it lies above the kernel image at 1 MiB).
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let layout = Layout::from_size_align(pages.max(1) * PAGE_SIZE, PAGE_SIZE)
            .unwrap_or_else(|_| panic!("DMA allocation of {pages} pages"));
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            handle_alloc_error(layout)
        };
        (ptr.as_ptr() as PhysAddr, ptr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = Layout::from_size_align(pages.max(1) * PAGE_SIZE, PAGE_SIZE)
            .unwrap_or_else(|_| panic!("DMA free of {pages} pages"));
        // SAFETY: the caller passes back what `dma_alloc` returned for the same page count.
        unsafe { dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // SAFETY: only used to check the range; virtio-drivers maps a BAR region it was given.
        match unsafe { Mmio::new(paddr, size as u64) } {
            Some(_) => NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling()),
            None => panic!("BAR region {paddr:#x}+{size:#x} is outside the identity map"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr().cast::<u8>() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// virtio-drivers' view of a function's configuration space: the [`ShadowConfig`] of a
/// function this module already sized, placed and enabled, so the transport's own probing
/// (it sizes every BAR a capability names again) costs no VM exits.
#[derive(Clone, Copy)]
pub struct ShadowCam<'a>(&'a ShadowConfig<'a>);

fn bdf(df: DeviceFunction) -> Bdf {
    Bdf {
        bus: df.bus,
        device: df.device,
        function: df.function,
    }
}

impl ConfigurationAccess for ShadowCam<'_> {
    fn read_word(&self, df: DeviceFunction, register_offset: u8) -> u32 {
        self.0.read32(bdf(df), register_offset)
    }

    fn write_word(&mut self, df: DeviceFunction, register_offset: u8, data: u32) {
        self.0.write32(bdf(df), register_offset, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}

/// Sizes the memory BARs of `f`, places the unassigned ones in `window` (clear of `reserved`
/// and of the other functions' BARs, which are only read when something must be placed),
/// and enables memory decoding and bus mastering. Returns the BARs as placed.
pub fn place_bars(
    cfg: &PciConfig,
    f: &PciFunction,
    window: Range<u64>,
    reserved: Vec<Range<u64>>,
) -> Result<Vec<MemBar>, PciError> {
    let bars = pci::memory_bars(cfg, f.bdf);
    let mut used = reserved;
    if bars.iter().any(|b| b.address == 0) {
        used.extend(bars_in_use(cfg, super::pci::functions(), f.bdf));
        used.extend(super::pci::ecam_range());
    }
    pci::assign_sized_and_enable(cfg, f.bdf, bars, window, &mut used)
}

/// virtio-drivers' modern PCI transport for the function `shadow` stands for.
pub fn transport(shadow: &ShadowConfig<'_>) -> Result<PciTransport, VirtioPciError> {
    let mut root = PciRoot::new(ShadowCam(shadow));
    let at = shadow.bdf();
    let df = DeviceFunction {
        bus: at.bus,
        device: at.device,
        function: at.function,
    };
    PciTransport::new::<KernelHal, ShadowCam<'_>>(&mut root, df)
}

/// The guest's console device.
pub type Console = ConsoleDevice<KernelHal, ConsoleTransport>;

/// Common configuration registers (virtio 1.x, 4.1.4.3).
mod common_cfg {
    pub const MSIX_CONFIG: u64 = 0x10;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_MSIX_VECTOR: u64 = 0x1a;
    pub const QUEUE_ENABLE: u64 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

/// The console's transport: virtio-drivers' [`PciTransport`] with the queue registers driven
/// here, in fewer accesses (each an MMIO exit, tens of microseconds under kvm-pvm): the
/// selected queue is remembered rather than selected again for every register; a queue is
/// known to be off after a reset without asking; the queue size is only written when it is
/// not the device's maximum; each queue gets MSI-X entry 0 as it is set up (no second pass);
/// and its notification offset is read once, at set-up, so a kick is one write (virtio-drivers
/// selects the queue and reads the offset again on every kick).
pub struct ConsoleTransport {
    inner: PciTransport,
    common: Mmio,
    notify: Mmio,
    multiplier: u32,
    /// The queue `queue_select` holds, when known.
    selected: Option<u16>,
    /// Queue sizes the device offers, as read by `max_queue_size`.
    max_sizes: Vec<(u16, u16)>,
    /// Notification offsets, by queue.
    notify_offsets: Vec<(u16, u16)>,
    /// True between a reset and the first queue set-up: every queue is off.
    fresh: bool,
}

impl ConsoleTransport {
    fn select(&mut self, queue: u16) {
        if self.selected != Some(queue) {
            self.common.write16(common_cfg::QUEUE_SELECT, queue);
            self.selected = Some(queue);
        }
    }
}

impl Transport for ConsoleTransport {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.inner.read_device_features()
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.inner.write_driver_features(driver_features)
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.select(queue);
        let max = self.common.read16(common_cfg::QUEUE_SIZE);
        self.max_sizes.retain(|(q, _)| *q != queue);
        self.max_sizes.push((queue, max));
        u32::from(max)
    }

    fn notify(&mut self, queue: u16) {
        let off = match self.notify_offsets.iter().find(|(q, _)| *q == queue) {
            Some((_, off)) => *off,
            None => {
                self.select(queue);
                self.common.read16(common_cfg::QUEUE_NOTIFY_OFF)
            }
        };
        let at = u64::from(off) * u64::from(self.multiplier);
        if at + 2 <= self.notify.size() {
            self.notify.write16(at, queue);
        } else {
            log::error!("virtio-console: queue {queue}'s notification offset {at:#x} is outside");
        }
    }

    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.common
            .write8(common_cfg::DEVICE_STATUS, status.bits() as u8);
        if status.is_empty() {
            // A reset: every queue is off and queue_select is back to 0.
            self.fresh = true;
            self.selected = None;
            self.max_sizes.clear();
            self.notify_offsets.clear();
        }
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.select(queue);
        let max = self
            .max_sizes
            .iter()
            .find(|(q, _)| *q == queue)
            .map(|m| m.1);
        if max.map(u32::from) != Some(size) {
            self.common.write16(common_cfg::QUEUE_SIZE, size as u16);
        }
        self.common.write64(common_cfg::QUEUE_DESC, descriptors);
        self.common.write64(common_cfg::QUEUE_DRIVER, driver_area);
        self.common.write64(common_cfg::QUEUE_DEVICE, device_area);
        // Every queue interrupts through MSI-X table entry 0 (see `route_msix`).
        self.common.write16(common_cfg::QUEUE_MSIX_VECTOR, 0);
        if self.common.read16(common_cfg::QUEUE_MSIX_VECTOR) != 0 {
            log::warn!("virtio-console: queue {queue} refused MSI-X vector 0");
        }
        let off = self.common.read16(common_cfg::QUEUE_NOTIFY_OFF);
        self.notify_offsets.retain(|(q, _)| *q != queue);
        self.notify_offsets.push((queue, off));
        self.common.write16(common_cfg::QUEUE_ENABLE, 1);
    }

    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue);
        self.selected = None;
        self.notify_offsets.retain(|(q, _)| *q != queue);
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        if self.fresh {
            return false;
        }
        self.select(queue);
        self.common.read16(common_cfg::QUEUE_ENABLE) == 1
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }

    fn read_config_space<T: FromBytes + IntoBytes>(
        &self,
        offset: usize,
    ) -> virtio_drivers::Result<T> {
        self.inner.read_config_space(offset)
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> virtio_drivers::Result<()> {
        self.inner.write_config_space(offset, value)
    }
}

/// Why the console could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// There is no virtio-console on the bus.
    #[error("no virtio-console on the PCI bus")]
    NoDevice,
    /// BAR assignment failed.
    #[error(transparent)]
    Pci(#[from] PciError),
    /// The function has no MSI-X capability (INTx is not supported).
    #[error("{0}: no MSI-X capability")]
    NoMsix(Bdf),
    /// A capability points at a BAR that is not a usable memory BAR.
    #[error("{bdf}: capability in BAR{bar} which is not an assigned memory BAR")]
    BadBar {
        /// The function.
        bdf: Bdf,
        /// The BAR index.
        bar: u8,
    },
    /// virtio-drivers refused the transport.
    #[error("virtio-pci: {0}")]
    Transport(#[from] VirtioPciError),
    /// Device start-up failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
}

static EMERG_WR: AtomicU64 = AtomicU64::new(0);

/// Finds the first virtio-console and starts it. Unassigned BARs go in `window`, clear of
/// `reserved` (the memory map) and of other devices' BARs.
pub fn open_console(window: Range<u64>, reserved: Vec<Range<u64>>) -> Result<Console, OpenError> {
    let cfg = PciConfig;
    let _ = super::pci::ecam_range(); // reads the MCFG (timed apart from enumeration)
    super::boot::milestone("ACPI MCFG");
    let functions = super::pci::functions();
    super::boot::milestone("pci enumerated");
    let f = functions
        .iter()
        .find(|f| f.is_virtio_console())
        .ok_or(OpenError::NoDevice)?;
    let bars = place_bars(&cfg, f, window, reserved)?;
    super::boot::milestone("console BARs");
    let shadow = ShadowConfig::new(&cfg, f, bars.clone());
    let bar = |index: u8, offset: u64, len: u64| {
        bars.iter()
            .find(|b| b.index == index && offset.saturating_add(len) <= b.size)
            // SAFETY: a window inside a BAR of the console, which this driver assigned and is
            // the only one to drive.
            .and_then(|b| unsafe { Mmio::new(b.address + offset, len) })
            .ok_or(OpenError::BadBar {
                bdf: f.bdf,
                bar: index,
            })
    };

    let apic_id = apic::id();
    route_msix(f, &shadow, &bar, apic_id)?;
    super::boot::milestone("MSI-X routed");

    let caps = f.virtio_caps(&shadow);
    let region = |kind: VirtioCapKind, min: u64| {
        caps.iter()
            .find(|c| core::mem::discriminant(&c.kind) == core::mem::discriminant(&kind))
            .map(|c| bar(c.bar, u64::from(c.offset), u64::from(c.length).max(min)))
    };
    let common = region(VirtioCapKind::Common, 0x38)
        .ok_or(OpenError::Transport(VirtioPciError::MissingCommonConfig))??;
    let device_cfg = region(VirtioCapKind::Device, 12).transpose()?;
    super::boot::milestone("virtio capabilities");

    let transport = transport(&shadow)?;
    let notify_cap = caps
        .iter()
        .find_map(|c| match c.kind {
            VirtioCapKind::Notify(multiplier) => Some((c, multiplier)),
            _ => None,
        })
        .ok_or(OpenError::Transport(VirtioPciError::MissingNotifyConfig))?;
    let notify = bar(
        notify_cap.0.bar,
        u64::from(notify_cap.0.offset),
        u64::from(notify_cap.0.length).max(2),
    )?;
    let transport = ConsoleTransport {
        inner: transport,
        common,
        notify,
        multiplier: notify_cap.1,
        selected: None,
        max_sizes: Vec::new(),
        notify_offsets: Vec::new(),
        fresh: false,
    };
    super::boot::milestone("transport");
    // Common configuration: msix_config at 0x10 (config changes use MSI-X table entry 0, as
    // every queue does: `ConsoleTransport::queue_set`).
    let console = ConsoleDevice::new(transport, |t, _| {
        super::boot::milestone("queues set up");
        t.common.write16(common_cfg::MSIX_CONFIG, 0);
    })?;
    super::boot::milestone("console DRIVER_OK");
    let info = console.info();
    if info.features.contains(Features::EMERG_WRITE)
        && let Some(dev) = device_cfg
    {
        EMERG_WR.store(dev.base() + CONFIG_EMERG_WR as u64, Ordering::Release);
    }
    log::info!(
        "virtio-console at {}: {:?}, max_nr_ports {}",
        f.bdf,
        info.features,
        info.max_nr_ports
    );
    Ok(console)
}

/// The assigned memory BARs of every function but `except` (where a new BAR must not go).
pub fn bars_in_use(cfg: &PciConfig, functions: &[PciFunction], except: Bdf) -> Vec<Range<u64>> {
    functions
        .iter()
        .filter(|o| o.bdf != except && o.header_type == 0)
        .flat_map(|o| pci::memory_bars(cfg, o.bdf))
        .filter(|b| b.address != 0)
        .map(|b| b.range())
        .collect()
}

/// Points MSI-X table entry 0 at `VECTOR` on this CPU and enables MSI-X.
fn route_msix(
    f: &PciFunction,
    cfg: &dyn ConfigAccess,
    bar: &dyn Fn(u8, u64, u64) -> Result<Mmio, OpenError>,
    apic_id: u8,
) -> Result<(), OpenError> {
    let at = f
        .capabilities
        .iter()
        .find(|(id, _)| *id == CAP_MSIX)
        .map(|(_, at)| *at)
        .ok_or(OpenError::NoMsix(f.bdf))?;
    let head = cfg.read32(f.bdf, at);
    let table = cfg.read32(f.bdf, at + 4);
    let entries = u64::from((head >> 16) & 0x7ff) + 1;
    let table = bar((table & 7) as u8, u64::from(table & !7), entries * 16)?;
    // As Linux does: enable MSI-X with the whole function masked, program the entry, then
    // unmask, so the hypervisor sees the entry change while MSI-X is on.
    let control = (head >> 16) as u16;
    let write_control = |c: u16| cfg.write32(f.bdf, at, (head & 0xffff) | u32::from(c) << 16);
    write_control(control | 1 << 15 | 1 << 14);
    table.write32(
        0,
        (apic::MSI_ADDRESS_BASE | u64::from(apic_id) << 12) as u32,
    );
    table.write32(4, 0);
    table.write32(8, u32::from(VECTOR));
    table.write32(12, 0); // entry unmasked
    write_control((control | 1 << 15) & !(1 << 14));
    Ok(())
}

struct Emergency(u64);

impl fmt::Write for Emergency {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: the console's device-specific emergency-write register, recorded when the
        // console opened; the panic path is its only writer.
        if let Some(reg) = unsafe { Mmio::new(self.0, 4) } {
            for b in s.bytes() {
                reg.write32(0, u32::from(b));
            }
        }
        Ok(())
    }
}

/// Writes to the console's `emerg_wr` register (after EMERG_WRITE was negotiated); does
/// nothing otherwise. Safe from a panic: no locks, no allocation.
pub fn emergency_write(args: fmt::Arguments<'_>) {
    let addr = EMERG_WR.load(Ordering::Acquire);
    if addr != 0 {
        let _ = fmt::Write::write_fmt(&mut Emergency(addr), args);
    }
}
