//! Typed handles for device registers (I/O ports, MMIO windows) and identity-mapped physical
//! memory access.

use x86_64::instructions::port::Port;

use super::ring3;
use crate::acpi::{AddressSpace, PhysMemory, RegisterWrite};

/// A device's I/O ports: `count` ports from `base`. Every access is checked to stay inside
/// them, so code holding a handle can reach its own device and nothing else. In ring 3 each
/// access is a core call (kvm-pvm does not pass IOPL 3 on to the hardware).
#[derive(Debug, Clone, Copy)]
pub struct IoPorts {
    base: u16,
    count: u16,
}

impl IoPorts {
    /// The ports `base..base + count`.
    ///
    /// # Safety
    /// The ports must belong to one device that the caller drives, and no other handle may
    /// drive it at the same time: port writes can reprogram the interrupt controllers and
    /// timers, reset the machine or switch it off, which no type can make safe.
    pub const unsafe fn new(base: u16, count: u16) -> Self {
        assert!(
            base as u32 + count as u32 <= 0x1_0000,
            "I/O ports past 0xffff"
        );
        Self { base, count }
    }

    fn port(&self, offset: u16, width: u16) -> u16 {
        assert!(
            offset
                .checked_add(width)
                .is_some_and(|end| end <= self.count),
            "I/O port access at +{offset} outside {} ports at {:#x}",
            self.count,
            self.base
        );
        self.base + offset
    }

    /// Reads the byte at `offset`.
    pub fn read8(&self, offset: u16) -> u8 {
        port_in(self.port(offset, 1), 1) as u8
    }

    /// Writes the byte at `offset`.
    pub fn write8(&self, offset: u16, value: u8) {
        port_out(self.port(offset, 1), 1, u32::from(value))
    }

    /// Writes the word at `offset`.
    pub fn write16(&self, offset: u16, value: u16) {
        port_out(self.port(offset, 2), 2, u32::from(value))
    }

    /// Reads the doubleword at `offset`.
    pub fn read32(&self, offset: u16) -> u32 {
        port_in(self.port(offset, 4), 4)
    }

    /// Writes the doubleword at `offset`.
    pub fn write32(&self, offset: u16, value: u32) {
        port_out(self.port(offset, 4), 4, value)
    }
}

fn port_in(port: u16, width: u8) -> u32 {
    if ring3::active() {
        ring3::call2(
            ring3::Call::PortIo,
            u64::from(port) | u64::from(width) << 16,
            0,
        ) as u32
    } else {
        cpl0_in(port, width)
    }
}

fn port_out(port: u16, width: u8, value: u32) {
    if ring3::active() {
        ring3::call2(
            ring3::Call::PortIo,
            u64::from(port) | u64::from(width) << 16 | 1 << 24,
            u64::from(value),
        );
    } else {
        cpl0_out(port, width, value)
    }
}

/// A port read at CPL0 (the core, or the kernel under `ring0`).
pub(super) fn cpl0_in(port: u16, width: u8) -> u32 {
    // SAFETY: port reads have no memory effects; callers only read ports of devices they own.
    unsafe {
        match width {
            1 => u32::from(Port::<u8>::new(port).read()),
            2 => u32::from(Port::<u16>::new(port).read()),
            _ => Port::<u32>::new(port).read(),
        }
    }
}

/// A port write at CPL0.
pub(super) fn cpl0_out(port: u16, width: u8, value: u32) {
    // SAFETY: port writes cannot break memory safety; callers only write ports they own.
    unsafe {
        match width {
            1 => Port::<u8>::new(port).write(value as u8),
            2 => Port::<u16>::new(port).write(value as u16),
            _ => Port::<u32>::new(port).write(value),
        }
    }
}

/// Physical memory as the boot page tables map it: identity, low 4 GiB only.
pub struct IdentityMemory;

/// Top of the identity map set up by the bootloader.
pub const IDENTITY_LIMIT: u64 = 1 << 32;

impl PhysMemory for IdentityMemory {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = paddr.checked_add(buf.len() as u64) else {
            return false;
        };
        if paddr == 0 || end > IDENTITY_LIMIT {
            return false;
        }
        // SAFETY: the range lies inside the identity map, and reading firmware tables or RAM
        // through a raw byte copy has no side effects.
        unsafe { core::ptr::copy_nonoverlapping(paddr as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }
}

/// Performs a register write described by the ACPI tables.
pub fn write_register(w: &RegisterWrite) {
    match w.space {
        AddressSpace::Io => {
            let Ok(port) = u16::try_from(w.address) else {
                log::warn!("ACPI I/O register {:#x} is past port 0xffff", w.address);
                return;
            };
            // SAFETY: the FADT names this register for power-off or reset, which is what the
            // caller is doing; nothing else drives it.
            let ports = unsafe { IoPorts::new(port, u16::from((w.width / 8).clamp(1, 4))) };
            match w.width {
                8 => ports.write8(0, w.value as u8),
                32 => ports.write32(0, w.value),
                _ => ports.write16(0, w.value as u16),
            }
        }
        AddressSpace::Memory if w.address < IDENTITY_LIMIT => {
            // SAFETY: the FADT names this MMIO register for power-off or reset, inside the
            // identity map; nothing maps it as memory.
            let Some(reg) = (unsafe { Mmio::new(w.address, 4) }) else {
                log::warn!("ACPI register {:#x} is not usable MMIO", w.address);
                return;
            };
            match w.width {
                16 => reg.write16(0, w.value as u16),
                32 => reg.write32(0, w.value),
                _ => reg.write8(0, w.value as u8),
            }
        }
        AddressSpace::Memory => {
            log::warn!("ACPI register {:#x} is outside the identity map", w.address)
        }
    }
}

/// A memory-mapped register block in the identity map (BARs, the local APIC).
#[derive(Debug, Clone, Copy)]
pub struct Mmio {
    base: u64,
    len: u64,
}

impl Mmio {
    /// The block at `base` (physical = virtual), `len` bytes; `None` if it leaves the
    /// identity map or starts at 0.
    ///
    /// # Safety
    /// The block must be one device's registers (a BAR the kernel assigned, the local APIC, an
    /// ACPI register), not RAM that Rust code uses as memory, and the caller must be the one
    /// driver of that device: reads and writes there have device effects (DMA included) that
    /// no type can check.
    pub unsafe fn new(base: u64, len: u64) -> Option<Self> {
        let end = base.checked_add(len)?;
        (base != 0 && end <= IDENTITY_LIMIT).then_some(Self { base, len })
    }

    /// Its physical base address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }

    fn at<T>(&self, offset: u64) -> *mut T {
        let size = core::mem::size_of::<T>() as u64;
        assert!(
            offset.is_multiple_of(size) && offset + size <= self.len,
            "MMIO access at {offset:#x} outside a {:#x}-byte block",
            self.len
        );
        (self.base + offset) as *mut T
    }

    /// Reads a 32-bit register.
    pub fn read32(&self, offset: u64) -> u32 {
        // SAFETY: `new` checked the block is inside the identity map, and its caller promised
        // it is one device's registers; `at` keeps the access aligned and inside the block.
        unsafe { self.at::<u32>(offset).read_volatile() }
    }

    /// Writes a 32-bit register.
    pub fn write32(&self, offset: u64, value: u32) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u32>(offset).write_volatile(value) }
    }

    /// Reads a 16-bit register.
    pub fn read16(&self, offset: u64) -> u16 {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u16>(offset).read_volatile() }
    }

    /// Writes a 16-bit register.
    pub fn write16(&self, offset: u64, value: u16) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u16>(offset).write_volatile(value) }
    }

    /// Writes a 64-bit register (one access).
    pub fn write64(&self, offset: u64, value: u64) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u64>(offset).write_volatile(value) }
    }

    /// Writes an 8-bit register.
    pub fn write8(&self, offset: u64, value: u8) {
        // SAFETY: as in `read32`.
        unsafe { self.at::<u8>(offset).write_volatile(value) }
    }
}
