//! PCI enumeration and the virtio-pci capabilities, over any configuration-space accessor.
//!
//! The bus is walked from bus 0 through PCI-PCI bridges (not all 256 buses: every config
//! access is a VM exit, tens of microseconds under nested KVM). Capability lists are followed
//! with a bound, so a looping or hostile list cannot hang the kernel.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

/// Bus, device, function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub device: u8,
    /// Function number (0..8).
    pub function: u8,
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Reads and writes PCI configuration space (dword-aligned offsets).
pub trait ConfigAccess {
    /// Reads the dword at `offset` (a multiple of 4) of `bdf`'s configuration space.
    fn read32(&self, bdf: Bdf, offset: u8) -> u32;
    /// Writes the dword at `offset`.
    fn write32(&self, bdf: Bdf, offset: u8, value: u32);
}

/// The virtio vendor id.
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// Modern virtio-console (0x1040 + device type 3).
pub const VIRTIO_CONSOLE_MODERN: u16 = 0x1043;
/// Transitional virtio-console.
pub const VIRTIO_CONSOLE_TRANSITIONAL: u16 = 0x1003;
/// Capability id of vendor-specific capabilities (virtio uses them).
pub const CAP_VENDOR: u8 = 0x09;
/// Capability id of MSI-X.
pub const CAP_MSIX: u8 = 0x11;
const MAX_CAPS: usize = 48;

/// The kind of a virtio-pci capability (`cfg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioCapKind {
    /// Common configuration.
    Common,
    /// Queue notifications (with its offset multiplier).
    Notify(u32),
    /// ISR status.
    Isr,
    /// Device-specific configuration.
    Device,
    /// The PCI configuration access window.
    PciCfg,
    /// Shared memory and anything newer.
    Other(u8),
}

/// A virtio-pci capability: where in which BAR a structure lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioCap {
    /// What the structure is.
    pub kind: VirtioCapKind,
    /// The BAR index.
    pub bar: u8,
    /// Offset inside the BAR.
    pub offset: u32,
    /// Length of the structure.
    pub length: u32,
}

/// One function found on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunction {
    /// Where it is.
    pub bdf: Bdf,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class, subclass, programming interface.
    pub class: (u8, u8, u8),
    /// Header type without the multi-function bit.
    pub header_type: u8,
    /// Raw BAR registers (type 0 headers have 6, bridges 2).
    pub bars: [u32; 6],
    /// (capability id, offset) in list order.
    pub capabilities: Vec<(u8, u8)>,
    /// Interrupt pin (0 none, 1 INTA ...) and line.
    pub interrupt: (u8, u8),
}

impl PciFunction {
    /// True for virtio-console (modern or transitional).
    pub fn is_virtio_console(&self) -> bool {
        self.vendor == VIRTIO_VENDOR
            && matches!(
                self.device,
                VIRTIO_CONSOLE_MODERN | VIRTIO_CONSOLE_TRANSITIONAL
            )
    }

    /// True for virtio-blk (modern or transitional).
    pub fn is_virtio_blk(&self) -> bool {
        self.vendor == VIRTIO_VENDOR && matches!(self.device, 0x1042 | 0x1001)
    }

    /// A virtio SCSI host adapter (modern or transitional device id).
    pub fn is_virtio_scsi(&self) -> bool {
        self.vendor == VIRTIO_VENDOR && matches!(self.device, 0x1048 | 0x1004)
    }

    /// The virtio-pci capabilities, read from the vendor capabilities.
    pub fn virtio_caps(&self, cfg: &dyn ConfigAccess) -> Vec<VirtioCap> {
        let dword = |off: u8| cfg.read32(self.bdf, off & !3);
        self.capabilities
            .iter()
            .filter(|(id, _)| *id == CAP_VENDOR)
            .filter_map(|&(_, at)| {
                // cap_vndr, cap_next, cap_len, cfg_type | bar, id, padding | offset | length
                let head = dword(at);
                let cap_len = (head >> 16) as u8;
                if cap_len < 16 || at > 0xff - 16 {
                    return None;
                }
                let cfg_type = (head >> 24) as u8;
                let bar = dword(at + 4) as u8;
                let offset = dword(at + 8);
                let length = dword(at + 12);
                let kind = match cfg_type {
                    1 => VirtioCapKind::Common,
                    2 if cap_len >= 20 && at <= 0xff - 20 => VirtioCapKind::Notify(dword(at + 16)),
                    2 => return None,
                    3 => VirtioCapKind::Isr,
                    4 => VirtioCapKind::Device,
                    5 => VirtioCapKind::PciCfg,
                    other => VirtioCapKind::Other(other),
                };
                (bar < 6).then_some(VirtioCap {
                    kind,
                    bar,
                    offset,
                    length,
                })
            })
            .collect()
    }
}

fn read_function(cfg: &dyn ConfigAccess, bdf: Bdf) -> Option<PciFunction> {
    let id = cfg.read32(bdf, 0);
    let vendor = id as u16;
    if vendor == 0xffff || vendor == 0 {
        return None;
    }
    let class = cfg.read32(bdf, 8);
    let header_type = (cfg.read32(bdf, 0x0c) >> 16) as u8 & 0x7f;
    let nbars = match header_type {
        0 => 6,
        1 => 2,
        _ => 0,
    };
    let mut bars = [0u32; 6];
    for (i, bar) in bars.iter_mut().enumerate().take(nbars) {
        *bar = cfg.read32(bdf, 0x10 + 4 * i as u8);
    }
    let status = (cfg.read32(bdf, 4) >> 16) as u16;
    let mut capabilities = Vec::new();
    if status & (1 << 4) != 0 {
        let mut at = cfg.read32(bdf, 0x34) as u8 & !3;
        while at >= 0x40 && capabilities.len() < MAX_CAPS {
            let head = cfg.read32(bdf, at);
            if capabilities.iter().any(|&(_, seen)| seen == at) {
                break; // a loop
            }
            capabilities.push((head as u8, at));
            at = (head >> 8) as u8 & !3;
        }
    }
    let irq = cfg.read32(bdf, 0x3c);
    Some(PciFunction {
        bdf,
        vendor,
        device: (id >> 16) as u16,
        class: ((class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8),
        header_type,
        bars,
        capabilities,
        interrupt: ((irq >> 8) as u8, irq as u8),
    })
}

/// Every function reachable from bus 0, in bus order.
pub fn enumerate(cfg: &dyn ConfigAccess) -> Vec<PciFunction> {
    let mut found = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut scanned = [false; 256];
    while let Some(bus) = buses.pop() {
        if core::mem::replace(&mut scanned[usize::from(bus)], true) {
            continue;
        }
        for device in 0..32 {
            let f0 = Bdf {
                bus,
                device,
                function: 0,
            };
            let Some(first) = read_function(cfg, f0) else {
                continue;
            };
            let multi = (cfg.read32(f0, 0x0c) >> 16) & 0x80 != 0;
            let functions = if multi { 8 } else { 1 };
            let mut add = |f: PciFunction| {
                if f.header_type == 1 {
                    // Secondary bus number of a PCI-PCI bridge.
                    buses.push((cfg.read32(f.bdf, 0x18) >> 8) as u8);
                }
                found.push(f);
            };
            add(first);
            for function in 1..functions {
                if let Some(f) = read_function(
                    cfg,
                    Bdf {
                        bus,
                        device,
                        function,
                    },
                ) {
                    add(f);
                }
            }
        }
    }
    found.sort_by_key(|f| f.bdf);
    found
}

/// Command register bits: memory space decoding and bus mastering.
pub const COMMAND_MEMORY: u32 = 1 << 1;
/// Bus-master enable (the device may DMA).
pub const COMMAND_BUS_MASTER: u32 = 1 << 2;

/// A memory BAR of a type-0 function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemBar {
    /// BAR index (0..6); a 64-bit BAR also uses `index + 1`.
    pub index: u8,
    /// Base address (0 when unassigned).
    pub address: u64,
    /// Size in bytes (a power of two).
    pub size: u64,
    /// True for a 64-bit BAR.
    pub is64: bool,
}

impl MemBar {
    /// The address range it decodes.
    pub fn range(&self) -> Range<u64> {
        self.address..self.address.saturating_add(self.size)
    }
}

/// What can go wrong assigning BARs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PciError {
    /// No room left in the window.
    #[error(
        "{bdf}: no room for BAR{index} ({size:#x} bytes) in {window_start:#x}..{window_end:#x}"
    )]
    NoSpace {
        /// The function.
        bdf: Bdf,
        /// BAR index.
        index: u8,
        /// Its size.
        size: u64,
        /// Window start.
        window_start: u64,
        /// Window end.
        window_end: u64,
    },
}

/// Sizes the memory BARs of a type-0 function by the standard all-ones probe. Memory decoding
/// is switched off while probing and restored after, so the device never decodes a bogus
/// address.
pub fn memory_bars(cfg: &dyn ConfigAccess, bdf: Bdf) -> Vec<MemBar> {
    let command = cfg.read32(bdf, 4);
    cfg.write32(bdf, 4, command & 0xffff & !(COMMAND_MEMORY | 1));
    let mut bars = Vec::new();
    let mut index = 0u8;
    while index < 6 {
        let off = 0x10 + 4 * index;
        let low = cfg.read32(bdf, off);
        if low & 1 != 0 {
            index += 1; // I/O BAR: virtio does not need it
            continue;
        }
        let is64 = (low >> 1) & 3 == 2 && index < 5;
        cfg.write32(bdf, off, u32::MAX);
        let mask_low = cfg.read32(bdf, off) & !0xf;
        cfg.write32(bdf, off, low);
        let (address, mask) = if is64 {
            let high = cfg.read32(bdf, off + 4);
            cfg.write32(bdf, off + 4, u32::MAX);
            let mask_high = cfg.read32(bdf, off + 4);
            cfg.write32(bdf, off + 4, high);
            (
                u64::from(high) << 32 | u64::from(low & !0xf),
                u64::from(mask_high) << 32 | u64::from(mask_low),
            )
        } else {
            (
                u64::from(low & !0xf),
                0xffff_ffff_0000_0000 | u64::from(mask_low),
            )
        };
        if mask_low != 0 || (is64 && mask >> 32 != 0) {
            let size = (!mask).wrapping_add(1);
            if size.is_power_of_two() {
                bars.push(MemBar {
                    index,
                    address,
                    size,
                    is64,
                });
            }
        }
        index += if is64 { 2 } else { 1 };
    }
    cfg.write32(bdf, 4, command & 0xffff);
    bars
}

/// Gives each unassigned memory BAR of `bdf` the lowest address in `window` that is aligned
/// to its size and clear of `used` (which grows with what is assigned), then enables memory
/// decoding and bus mastering. Firmware (SeaBIOS) assigns BARs on QEMU's pc and q35; a
/// minimal VMM may not.
pub fn assign_and_enable(
    cfg: &dyn ConfigAccess,
    bdf: Bdf,
    window: Range<u64>,
    used: &mut Vec<Range<u64>>,
) -> Result<Vec<MemBar>, PciError> {
    let bars = memory_bars(cfg, bdf);
    assign_sized_and_enable(cfg, bdf, bars, window, used)
}

/// [`assign_and_enable`] for BARs already sized by [`memory_bars`] (each configuration
/// access is a VM exit: sizing twice doubles them). Returns the BARs as placed.
pub fn assign_sized_and_enable(
    cfg: &dyn ConfigAccess,
    bdf: Bdf,
    mut bars: Vec<MemBar>,
    window: Range<u64>,
    used: &mut Vec<Range<u64>>,
) -> Result<Vec<MemBar>, PciError> {
    for bar in bars.iter_mut().filter(|b| b.address == 0) {
        let mut at = window.start.next_multiple_of(bar.size);
        loop {
            let end = at.saturating_add(bar.size);
            if end > window.end || (!bar.is64 && end > 1 << 32) {
                return Err(PciError::NoSpace {
                    bdf,
                    index: bar.index,
                    size: bar.size,
                    window_start: window.start,
                    window_end: window.end,
                });
            }
            match used.iter().find(|r| r.start < end && at < r.end) {
                Some(r) => at = r.end.next_multiple_of(bar.size),
                None => break,
            }
        }
        bar.address = at;
        let off = 0x10 + 4 * bar.index;
        cfg.write32(bdf, off, at as u32);
        if bar.is64 {
            cfg.write32(bdf, off + 4, (at >> 32) as u32);
        }
        used.push(bar.range());
    }
    let command = cfg.read32(bdf, 4) & 0xffff;
    let enabled = command | COMMAND_MEMORY | COMMAND_BUS_MASTER;
    if enabled != command {
        cfg.write32(bdf, 4, enabled);
    }
    Ok(bars)
}

/// One function's configuration space as a driver that probes it again sees it, without
/// reaching the device: reads come from a cache filled by the first real read of each dword
/// (and seeded with what enumeration found); the memory BARs answer sizing probes from their
/// known sizes; command-register writes (drivers switch decoding off around sizing) are
/// dropped, so the function stays as it was set up. Other writes go to the device and drop
/// the cached dword.
///
/// Used to give a driver library (virtio-drivers' PCI transport, which sizes each BAR it
/// uses again) a function already sized, placed and enabled: under kvm-pvm each real access
/// costs tens of microseconds.
pub struct ShadowConfig<'a> {
    cfg: &'a dyn ConfigAccess,
    bdf: Bdf,
    bars: Vec<MemBar>,
    cache: core::cell::RefCell<[Option<u32>; 64]>,
    /// BAR registers (by index) that were last written all ones (a sizing probe).
    probing: core::cell::Cell<u8>,
}

impl<'a> ShadowConfig<'a> {
    /// A shadow of `f`, whose memory BARs are `bars` (as [`memory_bars`] or
    /// [`assign_sized_and_enable`] returned them), over the real accessor `cfg`.
    pub fn new(cfg: &'a dyn ConfigAccess, f: &PciFunction, bars: Vec<MemBar>) -> Self {
        let mut cache = [None; 64];
        cache[0] = Some(u32::from(f.device) << 16 | u32::from(f.vendor));
        Self {
            cfg,
            bdf: f.bdf,
            bars,
            cache: core::cell::RefCell::new(cache),
            probing: core::cell::Cell::new(0),
        }
    }

    /// The function it shadows.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The BAR register at `index`, as the shadow answers it: the memory BAR's address (or its
    /// size mask while probed) with its type bits; 0 (unimplemented) for any other BAR.
    fn bar_register(&self, index: u8) -> u32 {
        let probing = self.probing.get() & (1 << index) != 0;
        for b in &self.bars {
            let mask = !(b.size - 1);
            if b.index == index {
                let kind = if b.is64 { 0x4 } else { 0 };
                return if probing {
                    mask as u32 | kind
                } else {
                    b.address as u32 | kind
                };
            }
            if b.is64 && b.index + 1 == index {
                return if probing {
                    (mask >> 32) as u32
                } else {
                    (b.address >> 32) as u32
                };
            }
        }
        0
    }
}

impl ConfigAccess for ShadowConfig<'_> {
    fn read32(&self, bdf: Bdf, offset: u8) -> u32 {
        if bdf != self.bdf {
            return self.cfg.read32(bdf, offset);
        }
        if (0x10..0x28).contains(&offset) {
            return self.bar_register((offset - 0x10) / 4);
        }
        let slot = usize::from(offset / 4);
        if let Some(v) = self.cache.borrow()[slot] {
            return v;
        }
        let v = self.cfg.read32(bdf, offset & !3);
        self.cache.borrow_mut()[slot] = Some(v);
        v
    }

    fn write32(&self, bdf: Bdf, offset: u8, value: u32) {
        if bdf != self.bdf {
            return self.cfg.write32(bdf, offset, value);
        }
        if (0x10..0x28).contains(&offset) {
            let bit = 1u8 << ((offset - 0x10) / 4);
            let probing = self.probing.get();
            self.probing.set(if value == u32::MAX {
                probing | bit
            } else {
                probing & !bit
            });
            return;
        }
        if offset & !3 == 4 {
            return;
        }
        self.cache.borrow_mut()[usize::from(offset / 4)] = None;
        self.cfg.write32(bdf, offset, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fake configuration space: absent functions read as all ones.
    #[derive(Default)]
    struct Fake(HashMap<(Bdf, u8), u32>);

    impl ConfigAccess for Fake {
        fn read32(&self, bdf: Bdf, offset: u8) -> u32 {
            let present = self.0.contains_key(&(bdf, 0));
            self.0
                .get(&(bdf, offset))
                .copied()
                .unwrap_or(if present { 0 } else { u32::MAX })
        }
        fn write32(&self, _: Bdf, _: u8, _: u32) {}
    }

    fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
        Bdf {
            bus,
            device,
            function,
        }
    }

    /// A modern virtio-console as QEMU builds it: MSI-X at 0x98, then the common (0x84),
    /// ISR (0x70), device (0x60) and notify (0x40) capabilities, all in BAR 4.
    fn virtio_console(f: &mut Fake, at: Bdf) {
        let m = &mut f.0;
        m.insert((at, 0), 0x1043_1af4);
        m.insert((at, 4), 1 << 20); // status: capability list present
        m.insert((at, 8), 0x0780_0001);
        m.insert((at, 0x10), 0xfebf_1000);
        m.insert((at, 0x20), 0xfe00_000c);
        m.insert((at, 0x34), 0x98);
        m.insert((at, 0x3c), 0x0000_010b);
        m.insert((at, 0x98), 0x0003_8411); // MSI-X, next 0x84
        // (offset, next, cfg_type, cap_len, offset in BAR)
        let caps = [
            (0x84u8, 0x70u8, 1u32, 16u32, 0u32),
            (0x70, 0x60, 3, 16, 0x1000),
            (0x60, 0x40, 4, 16, 0x2000),
            (0x40, 0, 2, 20, 0x3000),
        ];
        for (cap, next, ty, len, off) in caps {
            m.insert(
                (at, cap),
                ty << 24 | len << 16 | u32::from(next) << 8 | 0x09,
            );
            m.insert((at, cap + 4), 4);
            m.insert((at, cap + 8), off);
            m.insert((at, cap + 12), 0x1000);
        }
        m.insert((at, 0x40 + 16), 4); // notify_off_multiplier
    }

    #[test]
    fn finds_devices_behind_bridges_and_functions() {
        let mut f = Fake::default();
        f.0.insert((bdf(0, 0, 0), 0), 0x1237_8086);
        // Multi-function device 1 with function 3 present.
        f.0.insert((bdf(0, 1, 0), 0), 0x7000_8086);
        f.0.insert((bdf(0, 1, 0), 0x0c), 0x0080_0000);
        f.0.insert((bdf(0, 1, 3), 0), 0x7113_8086);
        // A bridge at 00:1e.0 to bus 5, with the console behind it.
        f.0.insert((bdf(0, 0x1e, 0), 0), 0x244e_8086);
        f.0.insert((bdf(0, 0x1e, 0), 0x0c), 0x0001_0000);
        f.0.insert((bdf(0, 0x1e, 0), 0x18), 0x0005_0500);
        virtio_console(&mut f, bdf(5, 2, 0));
        let found = enumerate(&f);
        let at: Vec<Bdf> = found.iter().map(|d| d.bdf).collect();
        assert_eq!(
            at,
            vec![
                bdf(0, 0, 0),
                bdf(0, 1, 0),
                bdf(0, 1, 3),
                bdf(0, 0x1e, 0),
                bdf(5, 2, 0)
            ]
        );
        let console = found.iter().find(|d| d.is_virtio_console()).unwrap();
        assert_eq!(console.class, (7, 0x80, 0));
        assert_eq!(console.interrupt, (1, 0x0b));
        assert_eq!(console.bars[4], 0xfe00_000c);
    }

    #[test]
    fn reads_the_virtio_capabilities() {
        let mut f = Fake::default();
        virtio_console(&mut f, bdf(0, 3, 0));
        let dev = enumerate(&f).pop().unwrap();
        assert_eq!(
            dev.capabilities.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![0x11, 9, 9, 9, 9]
        );
        let caps = dev.virtio_caps(&f);
        let kinds: Vec<_> = caps.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![
                VirtioCapKind::Common,
                VirtioCapKind::Isr,
                VirtioCapKind::Device,
                VirtioCapKind::Notify(4)
            ]
        );
        assert!(caps.iter().all(|c| c.bar == 4));
        assert!(caps.contains(&VirtioCap {
            kind: VirtioCapKind::Notify(4),
            bar: 4,
            offset: 0x3000,
            length: 0x1000
        }));
        assert!(caps.contains(&VirtioCap {
            kind: VirtioCapKind::Common,
            bar: 4,
            offset: 0,
            length: 0x1000
        }));
    }

    #[test]
    fn looping_capability_list_and_absent_bus_terminate() {
        let mut f = Fake::default();
        let at = bdf(0, 4, 0);
        f.0.insert((at, 0), 0x1043_1af4);
        f.0.insert((at, 4), 1 << 20);
        f.0.insert((at, 0x34), 0x40);
        f.0.insert((at, 0x40), 0x0000_5009);
        f.0.insert((at, 0x50), 0x0000_4009); // points back to 0x40
        let dev = enumerate(&f).pop().unwrap();
        assert_eq!(dev.capabilities, vec![(9, 0x40), (9, 0x50)]);
        assert!(
            dev.virtio_caps(&f).is_empty(),
            "truncated capabilities are refused"
        );
        assert!(enumerate(&Fake::default()).is_empty());
    }

    /// A function with real BAR sizing: BAR0 32-bit 4 KiB, BAR2 I/O, BAR4 64-bit 16 KiB.
    struct Sizing {
        regs: core::cell::RefCell<HashMap<u8, u32>>,
    }

    impl Sizing {
        fn new(bar0: u32, bar4: u32) -> Self {
            let mut m = HashMap::new();
            m.insert(0u8, 0x1043_1af4u32);
            m.insert(4, 0x0010_0000);
            m.insert(0x10, bar0);
            m.insert(0x18, 0xc001);
            m.insert(0x20, bar4 | 0x4);
            m.insert(0x24, 0);
            Self {
                regs: core::cell::RefCell::new(m),
            }
        }
    }

    impl ConfigAccess for Sizing {
        fn read32(&self, _: Bdf, offset: u8) -> u32 {
            self.regs.borrow().get(&offset).copied().unwrap_or(0)
        }
        fn write32(&self, _: Bdf, offset: u8, value: u32) {
            let value = match offset {
                0x10 => value & !0xfff,
                0x18 => (value & !0x1f) | 1,
                0x20 => (value & !0x3fff) | 4,
                0x14 | 0x1c => 0,
                _ => value,
            };
            self.regs.borrow_mut().insert(offset, value);
        }
    }

    #[test]
    fn sizes_bars_and_keeps_firmware_addresses() {
        let cfg = Sizing::new(0xfebf_1000, 0xfe00_0000);
        let bars = memory_bars(&cfg, bdf(0, 3, 0));
        assert_eq!(
            bars,
            vec![
                MemBar {
                    index: 0,
                    address: 0xfebf_1000,
                    size: 0x1000,
                    is64: false
                },
                MemBar {
                    index: 4,
                    address: 0xfe00_0000,
                    size: 0x4000,
                    is64: true
                }
            ]
        );
        let mut used = Vec::new();
        let again = assign_and_enable(&cfg, bdf(0, 3, 0), 0xc000_0000..0xfec0_0000, &mut used);
        assert_eq!(again.unwrap(), bars, "assigned BARs are left alone");
        assert!(used.is_empty());
        assert_eq!(
            cfg.read32(bdf(0, 3, 0), 4) & 6,
            COMMAND_MEMORY | COMMAND_BUS_MASTER
        );
    }

    #[test]
    fn assigns_unassigned_bars_aligned_and_clear_of_others() {
        let cfg = Sizing::new(0, 0);
        let mut used = Vec::new();
        used.push(0xc000_0000u64..0xc000_2000);
        let bars =
            assign_and_enable(&cfg, bdf(0, 3, 0), 0xc000_0000..0xd000_0000, &mut used).unwrap();
        assert_eq!(bars[0].address, 0xc000_2000);
        assert_eq!(bars[1].address, 0xc000_4000);
        assert_eq!(cfg.read32(bdf(0, 3, 0), 0x10), 0xc000_2000);
        assert_eq!(cfg.read32(bdf(0, 3, 0), 0x20), 0xc000_4004);
        assert_eq!(used.len(), 3);
        let full = Sizing::new(0, 0);
        let err = assign_and_enable(
            &full,
            bdf(0, 3, 0),
            0xc000_0000..0xc000_1800,
            &mut Vec::new(),
        );
        assert!(matches!(err, Err(PciError::NoSpace { index: 4, .. })));
    }

    /// Counts the accesses that reach the device.
    struct Counting<'a> {
        inner: &'a Sizing,
        reads: core::cell::Cell<u32>,
        writes: core::cell::Cell<u32>,
    }

    impl ConfigAccess for Counting<'_> {
        fn read32(&self, bdf: Bdf, offset: u8) -> u32 {
            self.reads.set(self.reads.get() + 1);
            self.inner.read32(bdf, offset)
        }
        fn write32(&self, bdf: Bdf, offset: u8, value: u32) {
            self.writes.set(self.writes.get() + 1);
            self.inner.write32(bdf, offset, value)
        }
    }

    #[test]
    fn the_shadow_answers_probes_without_reaching_the_device() {
        let cfg = Sizing::new(0, 0);
        let at = bdf(0, 3, 0);
        let bars = assign_and_enable(&cfg, at, 0xc000_0000..0xd000_0000, &mut Vec::new()).unwrap();
        let counting = Counting {
            inner: &cfg,
            reads: Default::default(),
            writes: Default::default(),
        };
        let f = PciFunction {
            bdf: at,
            vendor: 0x1af4,
            device: 0x1043,
            class: (7, 0x80, 0),
            header_type: 0,
            bars: [0; 6],
            capabilities: Vec::new(),
            interrupt: (0, 0),
        };
        let shadow = ShadowConfig::new(&counting, &f, bars.clone());
        assert_eq!(shadow.read32(at, 0), 0x1043_1af4);
        // A driver's sizing of the 64-bit BAR4: decoding off, all ones, read, restore.
        let command = shadow.read32(at, 4);
        shadow.write32(at, 4, command & !COMMAND_MEMORY);
        assert_eq!(shadow.read32(at, 0x20), bars[1].address as u32 | 4);
        shadow.write32(at, 0x20, u32::MAX);
        shadow.write32(at, 0x24, u32::MAX);
        assert_eq!(shadow.read32(at, 0x20), !(0x4000u32 - 1) | 4);
        assert_eq!(shadow.read32(at, 0x24), u32::MAX);
        shadow.write32(at, 0x20, bars[1].address as u32);
        shadow.write32(at, 0x24, 0);
        assert_eq!(shadow.read32(at, 0x20), bars[1].address as u32 | 4);
        shadow.write32(at, 4, command);
        // An unimplemented BAR reads as 0; the status dword is read once and cached.
        assert_eq!(shadow.read32(at, 0x1c), 0);
        assert_eq!(shadow.read32(at, 4), command);
        assert_eq!((counting.reads.get(), counting.writes.get()), (1, 0));
        // The device kept decoding and its BARs.
        assert_eq!(cfg.read32(at, 4) & COMMAND_MEMORY, COMMAND_MEMORY);
        assert_eq!(cfg.read32(at, 0x20), bars[1].address as u32 | 4);
        // Other writes go through and drop the cached dword.
        shadow.write32(at, 0x3c, 0x0b);
        assert_eq!(shadow.read32(at, 0x3c), 0x0b);
        assert_eq!((counting.reads.get(), counting.writes.get()), (2, 1));
    }
}
